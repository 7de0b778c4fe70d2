"""Netlist YAML: loading, error locations, the schema and round-trips (chip.netlist)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from chip.errors import NetlistError
from chip.events import SpikeEvents
from chip.netlist import (
    ALIFParams,
    AllToAll,
    ArrayWeights,
    ConstantWeights,
    ExplicitPairs,
    FileInput,
    LIFParams,
    Netlist,
    NormalWeights,
    OneToOne,
    PoissonInput,
    Population,
    Projection,
    RandomConnectivity,
    Record,
    SpikeInput,
    UniformWeights,
    dump_netlist,
    load_netlist,
    load_netlist_text,
    netlist_schema,
    netlist_to_dict,
)
from chip.netlist.reader import _read
from chip.netlist.schema import FORM_KEYS
from chip.netlist.writer import chip_to_dict
from chip.profiles import PROFILES, Mismatch, get_profile

MALFORMED = sorted((Path(__file__).parent / "malformed").glob("*.yaml"))

# Every feature of the format at least once (kept in one place so the schema-coverage test can
# check that the validator accepts every key the schema names).
RICH = """\
name: rich
description: every feature of the format
timescale: hardware
duration: 20 ms
batch: 2
chip:
  profile: bss2
  cores: 2
  step: 0.2 us
  clock: 8 ns
  param_bits: null
  die_seed: 7
  noise_seed: 8
  noise: 0.02
  speedup: 1000
  mismatch: {tau_mem: 0.05, weight: 0.02}
  nonidealities: {synaptic_saturation: on, membrane_rails: 'on', cadc_offsets: on, cadc_noise: off, cadc_nonlinearity: on,
                  cadc_timing: on, correlation_spread: on, digital_refractory: on, batch_drift: on, setup_variation: on}
  tau_range: [0.5 us, 80 us]
  v_range: [0 V, 1200 mV]
  v_model_zero: 0.4 V
  weight_full_scale_range: [0.01, 4]
  correlation_tau: 4 us
  bus_capacity: .inf
populations:
  hidden:
    size: 6
    params:
      tau_mem: 20 ms
      tau_syn: 5 us
      tau_ref: 2 us
      v_leak: 0
      v_reset: -0.1
      v_threshold: 1.0
      weight_full_scale: 2
    v_init: 0.1
    reset: hard
  out:
    size: 3
    model: ALIF
    params:
      tau_mem: 10 us
      tau_syn_exc: 4 us
      tau_syn_inh: 6 us
      tau_adapt: 200 us
      adapt_increment: 0.05
      adapt_coupling: 0.1
    v_init: {uniform: [0.0, 0.5], seed: 4}
  other:
    size: 1
    params: {tau_syn_exc: 4 us, tau_syn_inh: 6 us}
    v_init: {uniform: {low: -0.5, high: 0.5}}
  adaptive:
    size: 2
    model: ALIF
    params: {tau_syn: 3 us, tau_ref: 1 us, v_leak: 0.1, v_reset: -0.2, v_threshold: 0.8, weight_full_scale: 3}
inputs:
  in:
    size: 3
    type: spikes
    times: [[1 us, 2 us], [], [3.5 us, 500 ns]]
  in_unit:
    size: 2
    type: spikes
    times: {unit: ms, values: [[0.001, 0.002], [0.0005]]}
  per_sample:
    size: 2
    type: spikes
    batches:
      - [[1 us], [2 us]]
      - {unit: us, values: [[3], []]}
  noise:
    size: 4
    type: poisson
    rate: 20 kHz
    start: 1 us
    stop: 50 us
    seed: 5
  recorded:
    size: 2
    type: file
    path: spikes.npz
  task_in:
    size: 5
    type: spikes
    times: [[], [], [], [], []]
projections:
  in_hidden: {pre: in, post: hidden, weights: 0.5, delay: 1 us}
  unit_hidden: {pre: in_unit, post: hidden, connectivity: all_to_all, weights: -0.25, sign: auto}
  sample_hidden:
    pre: per_sample
    post: hidden
    connectivity: {probability: 0.5, seed: 2, allow_self: false}
    weights: {uniform: {low: -1, high: 1}, seed: 3}
  noise_hidden:
    pre: noise
    post: hidden
    connectivity:
      explicit: [[0, 1], [3, 5]]
    weights: {normal: {mean: 0.1, std: 0.05}, seed: 9}
    sign: signed
  file_out: {pre: recorded, post: out, weights: {file: w.npy}, sign: inhibitory}
  hidden_out:
    pre: hidden
    post: out
    weights:
      array: [[0.1, 0.2, 0.3], [0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5], [2, 0, 1], [0, 1e-3, 0]]
    sign: excitatory
  out_out: {pre: out, post: out, connectivity: one_to_one, weights: {normal: {mean: -0.2, std: 0}}}
  hidden_hidden: {pre: hidden, post: hidden, connectivity: {all_to_all: {allow_self: false}}, weights: -0.1}
record:
  spikes: [hidden, out]
  membrane:
    - {population: out, neurons: [0, 2], adc: cadc}
    - {population: hidden, neurons: all, adc: madc, period: 0.5 us}
  correlations: [in_hidden]
expect:
  profile: bss2
  die_seed: 7
  noise_seed: 8
  duration: 10 us
  batch: 2
  spikes:
    out: {count: ">= 0"}
  first_spike:
    out: {class: null}
  events: {conservation: true}
  membrane:
    out: {max: "< 10"}
  golden: true
  runs:
    - name: every-check
      slow: false
      profile: ideal
      die_seed: 0
      noise_seed: 0
      duration: 20 us
      batch: 2
      spikes:
        out: {count: [0, null], rate: "<= 1 MHz", active: "<= 100%"}
      first_spike:
        out: {order: [0, 2], class: [0, null], labels: [0, 1], accuracy: ">= 0", golden_agreement: ">= 0"}
      events: {offered: ">= 0", dropped: 0, dropped_fraction: 0, conservation: true}
      membrane:
        out: {adc: cadc, neuron: 2, mean: [-10, 10], std: ">= 0", min: "> -10", max: "< 10"}
      golden: {populations: [out], max_distance: 0.5, tau: 5 us, count_tolerance: "2%"}
train:
  task: yinyang
  input: task_in
  output: out
  rules: [eventprop]
  options:
    eventprop: {tau0: 0.6}
  optimizer: {name: adam, lr: 0.005, betas: [0.9, 0.999], eps: 1.0e-8, gamma: 0.9, clip: 0.01, ema: 0.99, lr_params: {tau_mem: 0.05}}
  epochs: 3
  batch_size: 8
  test_batch_size: 8
  seed: 1
  checkpoint: runs/rich
  encoding: {t_early: 2 us, t_late: 22 us, bias: 2 us, duplicate: 1}
  train_size: 16
  test_size: 16
  decode: first_spike
  decode_window: [1 us, 20 us]
  eval_every: 1
  weight_clip: true
  # the other tasks' blocks (read when train.task names them)
  memory: {classes: 2, pattern_channels: 2, cue_channels: 1, active: 0.5, pattern: [0 us, 2 us],
           cue: [10 us, 12 us], rate: 100 kHz, noise_rate: 1 kHz, seed: 3}
  shd: {train: shd_train.h5, test: shd_test.h5, time_scale: 1000 us, t_max: 20 us}
  digits: {coding: latency, window: [0 us, 20 us], max_spikes: 4, seed: 2}
  mnist: {data: mnist.npz, pool: 4, coding: rate, window: [0 us, 20 us], max_spikes: 4}
"""

W = np.array([[-0.1, -0.2, 0.0], [-1.0, -0.5, -0.25]])


def write_rich(tmp_path: Path) -> Path:
    np.savez(tmp_path / "spikes.npz", batch=np.array([1, 0, 1]), neuron=np.array([0, 1, 1]),
             time_us=np.array([1.0, 3.0, 1.0]), batch_size=np.int64(2))
    np.save(tmp_path / "w.npy", W)
    path = tmp_path / "rich.yaml"
    path.write_text(RICH, encoding="utf-8")
    return path


@pytest.fixture
def rich_path(tmp_path) -> Path:
    return write_rich(tmp_path)


MINIMAL = "duration: 60 us\npopulations:\n  hidden: {size: 4}\n"


# ---------------------------------------------------------------------------------------------
# Malformed netlists: error, file:line and message
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_netlist_is_reported_at_its_line(path):
    first, second = path.read_text(encoding="utf-8").splitlines()[:2]
    expected = re.fullmatch(r"# expect: (.+)", first).group(1)
    line = int(re.fullmatch(r"# line-of-error: (\d+)", second).group(1))
    with pytest.raises(NetlistError) as info:
        load_netlist(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert expected in message
    assert "\n" not in message
    assert info.value.file == str(path) and info.value.line == line


def test_error_names_field_path_and_file_for_text():
    with pytest.raises(NetlistError) as info:
        load_netlist_text(MINIMAL.replace("{size: 4}", "{size: 4, model: IF}"), filename="net.yaml")
    assert str(info.value).startswith("net.yaml:3: populations.hidden.model: unknown neuron model 'IF'")
    assert info.value.field == "populations.hidden.model"


def test_missing_netlist_file(tmp_path):
    with pytest.raises(NetlistError, match="not found"):
        load_netlist(tmp_path / "nope.yaml")


def test_empty_and_non_mapping_documents():
    with pytest.raises(NetlistError, match="the netlist is empty"):
        load_netlist_text("# nothing\n")
    with pytest.raises(NetlistError, match="expected a mapping of netlist sections"):
        load_netlist_text("- 1\n- 2\n")


def test_weight_file_problems(tmp_path):
    text = ("duration: 60 us\npopulations: {a: {size: 2}, b: {size: 3}}\n"
            "projections:\n  p: {pre: a, post: b, weights: {file: w.npy}}\n")
    (tmp_path / "net.yaml").write_text(text)
    with pytest.raises(NetlistError, match=r"net.yaml:4: projections.p.weights.file: weight file 'w.npy' not found"):
        load_netlist(tmp_path / "net.yaml")
    np.save(tmp_path / "w.npy", np.ones((3, 2)))
    with pytest.raises(NetlistError, match=r"weight array has shape \(3, 2\), expected \(n_pre, n_post\) = \(2, 3\)"):
        load_netlist(tmp_path / "net.yaml")
    np.save(tmp_path / "w.npy", np.full((2, 3), np.nan))
    with pytest.raises(NetlistError, match="NaN or inf"):
        load_netlist(tmp_path / "net.yaml")
    np.save(tmp_path / "w.npy", np.ones((2, 3)))
    assert load_netlist(tmp_path / "net.yaml").projections["p"].sign == "excitatory"


def test_sign_rules():
    base = "duration: 60 us\npopulations: {a: {size: 2}, b: {size: 2}}\nprojections:\n  p: "

    def sign_of(projection: str) -> str:
        return load_netlist_text(base + projection + "\n").projections["p"].sign

    assert sign_of("{pre: a, post: b, weights: 0}") == "excitatory"
    assert sign_of("{pre: a, post: b, weights: -0.1}") == "inhibitory"
    assert sign_of("{pre: a, post: b, weights: {uniform: {low: 0, high: 1}}}") == "excitatory"
    assert sign_of("{pre: a, post: b, weights: {uniform: {low: -1, high: 0}}}") == "inhibitory"
    assert sign_of("{pre: a, post: b, weights: {uniform: {low: -1, high: 1}}}") == "signed"
    assert sign_of("{pre: a, post: b, weights: {normal: {mean: 0.5, std: 0.1}}}") == "signed"
    assert sign_of("{pre: a, post: b, weights: {normal: {mean: 0.5, std: 0}}}") == "excitatory"
    # drawn weights across zero are clipped by the initializer, so an explicit sign is accepted
    assert sign_of("{pre: a, post: b, weights: {normal: {mean: 0.5, std: 0.1}}, sign: excitatory}") == "excitatory"
    assert sign_of("{pre: a, post: b, weights: {uniform: {low: -1, high: 0.2}}, sign: inhibitory}") == "inhibitory"
    # array entries count only where there is a synapse
    arr = "weights: {array: [[0.5, -1], [-1, 0.5]]}"
    assert sign_of(f"{{pre: a, post: b, connectivity: one_to_one, {arr}}}") == "excitatory"
    assert sign_of(f"{{pre: a, post: b, {arr}}}") == "signed"
    with pytest.raises(NetlistError, match="excitatory projection with negative weight array entry -1"):
        sign_of(f"{{pre: a, post: b, {arr}, sign: excitatory}}")
    with pytest.raises(NetlistError, match="excitatory projection with negative weight -0.1"):
        sign_of("{pre: a, post: b, weights: -0.1, sign: excitatory}")
    with pytest.raises(NetlistError, match=r"uniform weights in \[0.1, 1\] are all positive"):
        sign_of("{pre: a, post: b, weights: {uniform: {low: 0.1, high: 1}}, sign: inhibitory}")


def test_explicit_pairs_may_repeat():
    text = ("duration: 60 us\npopulations: {a: {size: 2}}\n"
            "projections:\n  p: {pre: a, post: a, connectivity: {explicit: [[0, 1], [0, 1], [1, 1]]}, weights: 1}\n")
    pairs = load_netlist_text(text).projections["p"].connectivity.pairs
    assert pairs.shape == (3, 2) and pairs.dtype == np.int64


def test_spike_file_problems(tmp_path):
    text = ("duration: 60 us\npopulations: {a: {size: 2}}\n"
            "inputs:\n  f: {type: file, size: 2, path: s.npz}\n")
    (tmp_path / "net.yaml").write_text(text)
    np.savez(tmp_path / "s.npz", neuron=np.array([0, 2]), time_us=np.array([1.0, 2.0]))
    with pytest.raises(NetlistError, match=r"net.yaml:4: inputs.f.path: .*neuron index out of range 0..1"):
        load_netlist(tmp_path / "net.yaml")
    np.savez(tmp_path / "s.npz", neuron=np.array([0, 1]))
    with pytest.raises(NetlistError, match="has no array 'time_us'"):
        load_netlist(tmp_path / "net.yaml")
    np.savez(tmp_path / "s.npz", neuron=np.array([1, 0]), time_us=np.array([2.0, 1.0]))
    spikes = load_netlist(tmp_path / "net.yaml").inputs["f"].spikes
    assert spikes.batch_size == 1
    np.testing.assert_array_equal(spikes.time_us, [1.0, 2.0])
    np.testing.assert_array_equal(spikes.neuron, [0, 1])


def test_overrides_are_checked():
    with pytest.raises(NetlistError, match="unknown chip profile 'nope'"):
        load_netlist_text(MINIMAL, profile="nope")
    with pytest.raises(NetlistError, match="die_seed override must be an integer >= 0"):
        load_netlist_text(MINIMAL, die_seed=-1)
    with pytest.raises(NetlistError, match="batch override must be an integer >= 1"):
        load_netlist_text(MINIMAL, batch=0)


def test_batch_override_must_match_per_sample_inputs(rich_path):
    with pytest.raises(NetlistError, match=r"inputs.per_sample.batches: has 2 samples but batch is 3"):
        load_netlist(rich_path, batch=3)


def test_recursive_alias_is_refused():
    with pytest.raises(NetlistError, match="recursive YAML alias"):
        load_netlist_text(MINIMAL + "expect: &a {x: *a}\n")


def test_mismatch_sigma_keys_and_pairs():
    with pytest.raises(NetlistError, match=r":5: chip.mismatch.tau_mm: unknown field 'tau_mm' \(did you mean 'tau_mem'\?\)"):
        load_netlist_text(MINIMAL + "chip:\n  mismatch: {tau_mm: 0.1}\n")
    with pytest.raises(NetlistError, match=r"chip.tau_range: low 60 is above high 0.5"):
        load_netlist_text(MINIMAL + "chip:\n  tau_range: [60 us, 0.5 us]\n")


# ---------------------------------------------------------------------------------------------
# Valid netlists
# ---------------------------------------------------------------------------------------------


def test_rich_netlist_values(rich_path):
    nl = load_netlist(rich_path)
    assert isinstance(nl, Netlist)
    assert nl.name == "rich" and nl.description == "every feature of the format"
    assert nl.duration_us == 20000.0 and nl.batch == 2 and nl.timescale == "hardware"
    assert nl.source_path == str(rich_path)

    chip = nl.chip
    assert chip.name == "bss2" and chip.cores == 2 and chip.param_bits is None and chip.weight_bits == 6
    assert chip.step_us == 0.2 and chip.clock_ns == 8.0 and chip.speedup == 1000.0
    assert (chip.die_seed, chip.noise_seed, chip.noise_membrane) == (7, 8, 0.02)
    assert chip.mismatch.tau_mem == 0.05 and chip.mismatch.weight == 0.02
    assert chip.mismatch.v_leak == PROFILES["bss2"].mismatch.v_leak  # untouched fields keep the profile's
    assert chip.tau_range_us == (0.5, 80.0) and chip.v_range_v == (0.0, 1.2) and chip.v_model_zero_v == 0.4
    assert chip.weight_full_scale_range == (0.01, 4.0) and chip.correlation_tau_us == 4.0
    assert chip.bus_capacity == float("inf")

    hidden, out = nl.populations["hidden"], nl.populations["out"]
    assert hidden.size == 6 and hidden.model == "LIF" and out.model == "ALIF"
    assert type(hidden.params) is LIFParams and type(out.params) is ALIFParams
    assert hidden.params.tau_mem_us == 20000.0
    assert hidden.params.tau_syn_exc_us == hidden.params.tau_syn_inh_us == 5.0
    assert hidden.params.v_reset == -0.1 and hidden.params.weight_full_scale == 2.0
    # a LIF neuron does not adapt; it answers the settings of a circuit that does not adapt
    assert (hidden.params.tau_adapt_us, hidden.params.adapt_increment) == (100.0, 0.0)
    assert (out.params.tau_syn_exc_us, out.params.tau_syn_inh_us, out.params.tau_adapt_us) == (4.0, 6.0, 200.0)
    assert out.params.adapt_increment == 0.05
    assert hidden.v_init == 0.1 and out.v_init == (0.0, 0.5, 4)
    assert nl.populations["other"].params == LIFParams(tau_syn_exc_us=4.0, tau_syn_inh_us=6.0)
    assert nl.populations["adaptive"].params == ALIFParams(tau_syn_exc_us=3.0, tau_syn_inh_us=3.0, tau_ref_us=1.0,
                                                           v_leak=0.1, v_reset=-0.2, v_threshold=0.8,
                                                           weight_full_scale=3.0)

    src = nl.inputs["in"]
    assert type(src) is SpikeInput and src.size == 3 and src.spikes.batch_size == 1
    assert [list(t) for t in src.spikes.trains(0)] == [[1.0, 2.0], [], [0.5, 3.5]]
    assert [list(t) for t in nl.inputs["in_unit"].spikes.trains(0)] == [[1.0, 2.0], [0.5]]
    per_sample = nl.inputs["per_sample"].spikes
    assert per_sample.batch_size == 2
    assert [list(t) for t in per_sample.trains(0)] == [[1.0], [2.0]]
    assert [list(t) for t in per_sample.trains(1)] == [[3.0], []]
    assert nl.inputs["noise"] == PoissonInput("noise", 4, rate_hz=20000.0, start_us=1.0, stop_us=50.0, seed=5)
    recorded = nl.inputs["recorded"]
    assert type(recorded) is FileInput and recorded.path == "spikes.npz" and recorded.spikes.batch_size == 2
    np.testing.assert_array_equal(recorded.spikes.time_us, [1.0, 1.0, 3.0])
    np.testing.assert_array_equal(recorded.spikes.batch, [1, 1, 0])
    np.testing.assert_array_equal(recorded.spikes.neuron, [0, 1, 1])

    p = nl.projections
    assert p["in_hidden"].sign == "excitatory" and p["in_hidden"].delay_us == 1.0
    assert p["in_hidden"].connectivity == AllToAll() and p["in_hidden"].weights.value == 0.5
    assert p["unit_hidden"].sign == "inhibitory" and p["unit_hidden"].weights.value == -0.25
    c = p["sample_hidden"].connectivity
    assert c == RandomConnectivity(probability=0.5, seed=2, allow_self=False)
    assert p["sample_hidden"].weights == UniformWeights(low=-1.0, high=1.0, seed=3)
    assert p["sample_hidden"].sign == "signed"
    assert type(p["noise_hidden"].connectivity) is ExplicitPairs
    np.testing.assert_array_equal(p["noise_hidden"].connectivity.pairs, [[0, 1], [3, 5]])
    assert p["noise_hidden"].connectivity.pairs.dtype == np.int64
    assert p["noise_hidden"].weights == NormalWeights(mean=0.1, std=0.05, seed=9)
    assert p["noise_hidden"].sign == "signed"
    w = p["file_out"].weights
    assert type(w) is ArrayWeights and w.path == "w.npy" and p["file_out"].sign == "inhibitory"
    np.testing.assert_array_equal(w.array, W)
    w = p["hidden_out"].weights
    assert type(w) is ArrayWeights and w.path is None
    assert w.array.shape == (6, 3) and w.array[5, 1] == 1e-3
    assert p["hidden_out"].sign == "excitatory"
    assert p["out_out"].connectivity == OneToOne() and p["out_out"].sign == "inhibitory"
    assert p["hidden_hidden"].connectivity == AllToAll(allow_self=False) and p["hidden_hidden"].sign == "inhibitory"

    rec = nl.record
    assert rec.spikes == ("hidden", "out") and rec.correlations == ("in_hidden",)
    m0, m1 = rec.membrane
    assert (m0.population, m0.neurons, m0.adc, m0.period_us) == ("out", (0, 2), "cadc", chip.cadc_min_period_us)
    assert (m1.population, m1.neurons, m1.adc, m1.period_us) == ("hidden", tuple(range(6)), "madc", 0.5)

    raw = yaml.safe_load(RICH)
    assert nl.expect == raw["expect"] and nl.train == raw["train"]  # kept as written


def test_lines_are_recorded(rich_path):
    nl = load_netlist(rich_path)
    lines = RICH.splitlines()

    def line_with(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    assert nl.lines["duration"] == line_with("duration:")
    assert nl.lines["projections.in_hidden"] == line_with("in_hidden: {pre: in")
    assert nl.lines["projections.noise_hidden.weights"] == line_with("weights: {normal: {mean: 0.1")
    assert nl.lines["populations.out.params.tau_adapt"] == line_with("tau_adapt: 200 us")
    assert nl.lines["record.membrane.1"] == line_with("{population: hidden, neurons: all")
    assert nl.lines["expect.spikes.out"] == line_with('out: {count: ">= 0"}')
    assert nl.lines["expect.runs.0"] == line_with("- name: every-check")
    assert nl.lines["train.optimizer.lr"] == line_with("optimizer: {name: adam, lr: 0.005")
    assert nl.line_of("projections.noise_hidden.weights.normal.std") == line_with("weights: {normal: {mean: 0.1")
    assert not any(key.startswith("inputs.in.times.") for key in nl.lines)  # spike lists are not indexed


def test_defaults():
    nl = load_netlist_text(MINIMAL)
    assert nl.name == "netlist" and nl.batch == 1 and nl.timescale == "hardware" and nl.description == ""
    assert nl.chip == PROFILES["bss2"]
    assert nl.populations["hidden"].model == "LIF"
    assert nl.populations["hidden"].params == type(nl.populations["hidden"].params)()
    assert nl.record.spikes == ("hidden",) and nl.record.membrane == () and nl.record.correlations == ()
    assert nl.inputs == {} and nl.projections == {} and nl.expect is None and nl.train is None
    assert nl.source_path is None


def test_name_defaults_to_file_stem(tmp_path):
    path = tmp_path / "yinyang.yaml"
    path.write_text(MINIMAL)
    assert load_netlist(path).name == "yinyang"


def test_units_are_converted_to_hardware_microseconds():
    nl = load_netlist_text(MINIMAL.replace("{size: 4}", "{size: 4, params: {tau_mem: 20 ms, tau_ref: 500 ns}}"))
    assert nl.populations["hidden"].params.tau_mem_us == 20000.0
    assert nl.populations["hidden"].params.tau_ref_us == 0.5
    assert load_netlist_text(MINIMAL.replace("60 us", "60 µs")).duration_us == 60.0


def test_biological_timescale():
    text = """\
timescale: biological
duration: 20 ms
chip: {profile: bss2, step: 0.096 ms, cadc_min_period: 3.4 ms, clock: 8 us}
populations:
  hidden: {size: 2, params: {tau_mem: 10 ms, tau_syn: 5 ms}}
inputs:
  rate: {size: 2, type: poisson, rate: 10 Hz, start: 1 ms, stop: 15 ms}
  fixed: {size: 2, type: spikes, times: [[1 ms], [2.5 ms]]}
  unit: {size: 1, type: spikes, times: {unit: ms, values: [[3]]}}
projections:
  p: {pre: rate, post: hidden, weights: 0.1, delay: 1 ms}
record:
  membrane: [{population: hidden, period: 2 ms}, {population: hidden}]
"""
    nl = load_netlist_text(text)
    assert nl.duration_us == 20.0
    assert nl.populations["hidden"].params.tau_mem_us == 10.0
    assert nl.populations["hidden"].params.tau_syn_inh_us == 5.0
    assert nl.inputs["rate"].rate_hz == 10000.0
    assert (nl.inputs["rate"].start_us, nl.inputs["rate"].stop_us) == (1.0, 15.0)
    assert [list(t) for t in nl.inputs["fixed"].spikes.trains()] == [[1.0], [2.5]]
    assert [list(t) for t in nl.inputs["unit"].spikes.trains()] == [[3.0]]
    assert nl.projections["p"].delay_us == 1.0
    assert nl.record.membrane[0].period_us == 2.0
    # the chip section is converted too: 96 ns = 12 cycles of 8 ns
    assert nl.chip.step_us == pytest.approx(0.096) and nl.chip.clock_ns == 8.0 and nl.chip.cycles_per_step == 12
    assert nl.chip.cadc_min_period_us == 3.4
    assert nl.record.membrane[1].period_us == 3.4  # default: the (converted) profile period
    assert nl.time_factor_us() == 1e-3
    with pytest.raises(NetlistError, match=r"chip.step: step 9.6e-05 us is not a whole number .* divided by the speedup too"):
        load_netlist_text(text.replace("step: 0.096 ms", "step: 0.096 us"))

    faster = load_netlist_text(text.replace("profile: bss2,", "profile: bss2, speedup: 100,").replace("0.096 ms", "16 us"))
    assert faster.duration_us == 200.0 and faster.inputs["rate"].rate_hz == 1000.0
    assert faster.chip.step_us == pytest.approx(0.16) and faster.chip.clock_ns == 80.0


def test_overrides(rich_path):
    nl = load_netlist(rich_path, profile="ideal", die_seed=42, noise_seed=43)
    assert nl.chip.name == "ideal" and nl.chip.weight_bits is None
    assert (nl.chip.die_seed, nl.chip.noise_seed) == (42, 43)
    assert nl.chip.cores == 2  # the file's own overrides still apply to the chosen profile
    assert load_netlist_text(MINIMAL, batch=5).batch == 5
    assert load_netlist_text(MINIMAL + "batch: 2\n", batch=3).batch == 3
    assert load_netlist_text(MINIMAL, profile="ideal").chip == PROFILES["ideal"]


def test_mismatch_off_and_yaml_details():
    nl = load_netlist_text(MINIMAL + "chip: {mismatch: off}\n")
    assert nl.chip.mismatch == Mismatch() and nl.chip.mismatch.off
    assert load_netlist_text(MINIMAL + "chip: {mismatch: 'off'}\n").chip.mismatch.off
    # YAML 1.1 would read 1e-3 as a string; the format reads it as a number
    text = MINIMAL + "projections:\n  p: {pre: hidden, post: hidden, weights: 1e-3}\n"
    assert load_netlist_text(text).projections["p"].weights.value == 1e-3


def test_batches_set_the_batch_size():
    text = MINIMAL + "inputs:\n  in: {size: 1, type: spikes, batches: [[[1 us]], [[2 us]], [[]]]}\n"
    nl = load_netlist_text(text)
    assert nl.batch == 3 and nl.inputs["in"].spikes.batch_size == 3


def test_every_chip_field_is_a_yaml_key():
    for profile in PROFILES.values():
        section = chip_to_dict(profile, None)  # every key, including the mismatch mapping
        text = MINIMAL + yaml.safe_dump({"chip": section})
        assert load_netlist_text(text).chip == profile


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------


def test_schema_shape():
    schema = netlist_schema()
    assert isinstance(schema, dict)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for section in ("populations", "projections", "inputs", "record", "chip", "duration"):
        assert section in schema["properties"]
    assert set(schema["required"]) == {"duration", "populations"}
    assert netlist_schema() is not netlist_schema()  # callers may mutate their copy


def _schema_keys() -> set[tuple[str, str]]:
    schema = netlist_schema()
    forms = {"netlist": schema, **{n: d for n, d in schema["$defs"].items() if "properties" in d}}
    return {(form, key) for form, d in forms.items() for key in d["properties"]}


def test_validator_and_schema_accept_the_same_keys(rich_path):
    from regression.expectations import _Reader as ExpectReader
    from rules.tasks import make_task
    from rules.training.config import TrainReader

    # validator -> schema: the validators' key sets are the schema's, form by form
    assert {(form, key) for form, keys in FORM_KEYS.items() for key in keys} == _schema_keys()
    # schema -> validator: reading the rich example (its train: and expect: blocks with the
    # training and regression readers) plus a chip section with every field accepts every key
    # the schema names (a key a validator refused would raise instead)
    netlist, reader = _read(rich_path.read_text(), filename=str(rich_path), source_path=str(rich_path),
                            base_dir=rich_path.parent, default_name="rich")
    seen = set(reader.seen)
    # (chip.calibration only needs an existing file to be read: the host checks what it holds)
    chip = MINIMAL + yaml.safe_dump({"chip": {**chip_to_dict(PROFILES["bss2"], None), "calibration": str(rich_path)}})
    _, reader = _read(chip, filename="<chip>", source_path=None, base_dir=Path.cwd(), default_name="x")
    seen |= reader.seen
    expect = ExpectReader(netlist)
    assert [run.name for run in expect.read()] == ["every-check"]
    train = TrainReader(netlist)
    raw = train.read().raw
    make_task(raw, netlist, reader=train)
    make_task({**raw, "task": "memory"}, netlist, reader=train)
    for name in ("shd_train.h5", "shd_test.h5"):  # the shd task checks that its files are there
        (rich_path.parent / name).write_bytes(b"")
    make_task({**raw, "task": "shd"}, netlist, reader=train)
    with pytest.raises(NetlistError, match="the digits task needs an input of 64 channels"):
        make_task({**raw, "task": "digits"}, netlist, reader=train)  # its keys are read before the size check
    np.savez(rich_path.parent / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.zeros(2),
             x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.zeros(2))  # the user's file (MNIST is not shipped)
    with pytest.raises(NetlistError, match="the mnist task with pool 4 needs an input of 7x7 = 49 channels"):
        make_task({**raw, "task": "mnist"}, netlist, reader=train)  # its keys are read before the size check
    seen |= expect.seen | train.seen
    assert seen == _schema_keys()


def test_schema_validates_the_examples(rich_path):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(netlist_schema())
    validator.check_schema(netlist_schema())
    validator.validate(yaml.safe_load(RICH.replace("1e-3", "1.0e-3")))
    validator.validate(netlist_to_dict(load_netlist(rich_path)))
    assert not validator.is_valid(yaml.safe_load(MINIMAL + "neurons: 1\n"))
    assert not validator.is_valid(yaml.safe_load(MINIMAL.replace("size: 4", "size: 4, modle: LIF")))
    assert not validator.is_valid(yaml.safe_load(MINIMAL.replace("60 us", "60 parsecs")))


# ---------------------------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------------------------


def assert_same(a, b, where="netlist", approx=False):
    """Field-by-field equality of netlist objects (arrays by value, floats exact unless approx)."""
    if isinstance(a, FileInput) and not isinstance(b, FileInput):  # spike files are written inline
        assert type(b) is SpikeInput and (a.name, a.size) == (b.name, b.size), where
        assert_same(a.spikes, b.spikes, f"{where}.spikes", approx)
    elif isinstance(a, SpikeEvents):
        assert isinstance(b, SpikeEvents), where
        assert (a.size, a.batch_size) == (b.size, b.batch_size), where
        np.testing.assert_array_equal(a.batch, b.batch, err_msg=where)
        np.testing.assert_array_equal(a.neuron, b.neuron, err_msg=where)
        assert_same(a.time_us, b.time_us, f"{where}.time_us", approx)
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            if f.name in ("lines", "source_path") or (isinstance(a, ArrayWeights) and f.name == "path"):
                continue  # where the netlist and its weight files came from (weights are written inline)
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}", approx)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}", approx)
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}.{i}", approx)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype, where
        if approx:
            np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=where)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and approx:
        assert b == pytest.approx(a, rel=1e-12), where
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def test_round_trip_rich(rich_path):
    first = load_netlist(rich_path)
    text = dump_netlist(first)
    assert not re.search(r"\b(path|file):", text)  # file arrays are inlined
    second = load_netlist_text(text)
    assert_same(first, second)
    assert type(second.inputs["recorded"]) is SpikeInput
    # and the dump is a fixed point
    assert dump_netlist(second) == text
    assert yaml.safe_load(text)["chip"] == {
        "profile": "bss2", "cores": 2, "param_bits": None,  # step and clock equal the profile's: omitted
        "v_model_zero": "0.4 V", "tau_range": ["0.5 us", "80.0 us"],
        "weight_full_scale_range": [0.01, 4.0], "mismatch": {"tau_mem": 0.05, "weight": 0.02},
        "nonidealities": {"cadc_noise": "off"}, "noise": 0.02, "die_seed": 7, "noise_seed": 8, "bus_capacity": float("inf"),
        "correlation_tau": "4.0 us"}


def test_round_trip_biological_and_ideal(tmp_path):
    path = write_rich(tmp_path)
    text = path.read_text().replace("timescale: hardware", "timescale: biological")
    first = load_netlist_text(text, filename=str(path), profile="ideal")
    assert first.timescale == "biological" and first.duration_us == 20.0
    second = load_netlist_text(dump_netlist(first))
    assert_same(first, second, approx=True)


def test_nonidealities_switch_all_or_each_and_round_trip():
    bss2 = PROFILES["bss2"].nonidealities
    assert load_netlist_text(MINIMAL + "chip: {nonidealities: off}\n").chip.nonidealities.off
    assert load_netlist_text(MINIMAL + "chip: {profile: ideal, nonidealities: on}\n").chip.nonidealities == bss2
    some = load_netlist_text(MINIMAL + "chip: {nonidealities: {cadc_noise: off, membrane_rails: 'off'}}\n")
    assert not some.chip.nonidealities.cadc_noise and not some.chip.nonidealities.membrane_rails
    assert some.chip.nonidealities.cadc_offsets  # the others keep the profile's
    assert netlist_to_dict(some)["chip"]["nonidealities"] == {"membrane_rails": "off", "cadc_noise": "off"}
    assert load_netlist_text(dump_netlist(some)).chip.nonidealities == some.chip.nonidealities
    with pytest.raises(NetlistError, match=r":5: chip.nonidealities.cadc_nois: unknown field 'cadc_nois' "
                                           r"\(did you mean 'cadc_noise'\?\)"):
        load_netlist_text(MINIMAL + "chip:\n  nonidealities: {cadc_nois: off}\n")
    with pytest.raises(NetlistError, match=r"chip.nonidealities.cadc_noise: expected on or off, got 3"):
        load_netlist_text(MINIMAL + "chip:\n  nonidealities: {cadc_noise: 3}\n")


def test_round_trip_mismatch_off():
    first = load_netlist_text(MINIMAL + "chip: {mismatch: off}\n")
    assert netlist_to_dict(first)["chip"] == {"profile": "bss2", "mismatch": "off"}
    assert load_netlist_text(dump_netlist(first)).chip == first.chip


# ---------------------------------------------------------------------------------------------
# One dataclass per kind: each round-trips through the file format and runs the same
# ---------------------------------------------------------------------------------------------

DRIVE = SpikeEvents.from_lists([[1.0, 2.0, 3.0], [2.0, 4.0], [1.5, 6.0], [3.0, 3.5, 4.0]])
DRIVE_2 = SpikeEvents.from_arrays([0, 0, 0, 1, 1, 1], [0, 1, 2, 1, 2, 3], [1.0, 2.0, 3.0, 1.0, 2.5, 4.0], 4, 2)

# kind -> what it replaces in kind_netlist: the recurrent projection's connectivity or weights,
# the input, or the population's neuron parameters
KINDS = {
    "all_to_all": {"connectivity": AllToAll()},
    "all_to_all_no_self": {"connectivity": AllToAll(allow_self=False)},
    "one_to_one": {"connectivity": OneToOne()},
    "random": {"connectivity": RandomConnectivity(probability=0.5, seed=3, allow_self=False)},
    "explicit": {"connectivity": ExplicitPairs(np.array([[0, 1], [2, 0], [3, 3], [2, 0]]))},
    "constant": {"weights": ConstantWeights(0.6)},
    "normal": {"weights": NormalWeights(mean=0.5, std=0.3, seed=4)},
    "uniform": {"weights": UniformWeights(low=0.2, high=0.9, seed=5)},
    "array": {"weights": ArrayWeights(np.linspace(0.0, 0.9, 16).reshape(4, 4))},
    "array_from_file": {"weights": ArrayWeights(np.linspace(0.9, 0.0, 16).reshape(4, 4), path="w.npy")},
    "spikes": {"source": SpikeInput("in", 4, spikes=DRIVE)},
    "spikes_per_sample": {"source": SpikeInput("in", 4, spikes=DRIVE_2), "batch": 2},
    "poisson": {"source": PoissonInput("in", 4, rate_hz=3e5, start_us=1.0, stop_us=20.0, seed=6)},
    "poisson_to_the_end": {"source": PoissonInput("in", 4, rate_hz=2e5, seed=7)},
    "file": {"source": FileInput("in", 4, path="drive.npz", spikes=DRIVE)},
    "lif": {"params": LIFParams(tau_mem_us=8.0, tau_syn_exc_us=4.0, tau_syn_inh_us=6.0, tau_ref_us=1.0,
                                v_threshold=0.9, weight_full_scale=2.0)},
    "alif": {"params": ALIFParams(tau_adapt_us=50.0, adapt_increment=0.3, weight_full_scale=2.0)},
}


def kind_netlist(*, connectivity=AllToAll(), weights=ConstantWeights(0.6), source=None, params=None,
                 batch=1) -> Netlist:
    """Four input channels all-to-all onto a population ``a`` of four, which projects onto itself."""
    return Netlist(
        chip=get_profile("ideal"), duration_us=30.0, batch=batch,
        populations={"a": Population("a", 4, params or LIFParams(weight_full_scale=2.0))},
        inputs={"in": source or SpikeInput("in", 4, spikes=DRIVE)},
        projections={"in_a": Projection("in_a", "in", "a", AllToAll(), ConstantWeights(1.5)),
                     "a_a": Projection("a_a", "a", "a", connectivity, weights, "excitatory")},
        record=Record(spikes=("a",)))


def the_kind(netlist: Netlist, kind: str):
    """The object of ``netlist`` that KINDS[kind] sets."""
    what = next(iter(KINDS[kind]))
    return {"connectivity": netlist.projections["a_a"].connectivity, "weights": netlist.projections["a_a"].weights,
            "source": netlist.inputs["in"], "params": netlist.populations["a"].params}[what]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_round_trips_to_equal_values(kind):
    first = kind_netlist(**KINDS[kind])
    second = load_netlist_text(dump_netlist(first))
    assert_same(first, second)
    written, read = the_kind(first, kind), the_kind(second, kind)
    if isinstance(written, FileInput):  # spike files are written inline
        assert read == SpikeInput(written.name, written.size, spikes=written.spikes)
    else:
        assert type(read) is type(written) and read == written
    if isinstance(written, ArrayWeights):
        assert read.path is None  # written inline; equal all the same
    # and the plain data is the dump's
    assert load_netlist_text(yaml.safe_dump(netlist_to_dict(first))).projections["a_a"].sign == "excitatory"


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_runs_the_same_after_a_round_trip(kind):
    from chip.host import HostInterface

    first = kind_netlist(**KINDS[kind])
    second = load_netlist_text(dump_netlist(first))
    a, b = HostInterface(first).run().spikes["a"], HostInterface(second).run().spikes["a"]
    assert len(a) > 0, "the test netlist should spike"
    assert (a.size, a.batch_size) == (b.size, b.batch_size)
    for field in ("batch", "neuron", "time_us"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_each_kind_is_written_as_the_schema_says():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(netlist_schema())
    for kind, change in KINDS.items():
        errors = [e.message for e in validator.iter_errors(netlist_to_dict(kind_netlist(**change)))]
        assert not errors, (kind, errors)


@pytest.mark.parametrize("build, message", [
    (lambda: LIFParams(tau_mem_us=0.0), "tau_mem_us must be positive"),
    (lambda: LIFParams(v_leak=float("nan")), "v_leak must be a finite number"),
    (lambda: LIFParams(v_threshold=0.0), "v_threshold must be above v_reset"),
    (lambda: ALIFParams(tau_adapt_us=-1.0), "tau_adapt_us must be positive"),
    (lambda: ALIFParams(adapt_increment=-0.1), "adapt_increment must be >= 0"),
    (lambda: Population("p", 0), "size must be an integer >= 1"),
    (lambda: RandomConnectivity(probability=1.5), r"probability must be in \[0, 1\]"),
    (lambda: RandomConnectivity(probability=0.5, seed=-1), "seed must be an integer >= 0"),
    (lambda: AllToAll(allow_self="no"), "allow_self must be true or false"),
    (lambda: ExplicitPairs(np.array([0, 1, 2])), r"shape \(k, 2\)"),
    (lambda: ExplicitPairs(np.array([[0, -1]])), "indices >= 0"),
    (lambda: ExplicitPairs(np.array([[0.5, 1.0]])), "integer neuron indices"),
    (lambda: ConstantWeights(float("inf")), "value must be a finite number"),
    (lambda: NormalWeights(mean=0.0, std=-1.0), "std must be >= 0"),
    (lambda: UniformWeights(low=1.0, high=0.0), "high 0 is below low 1"),
    (lambda: ArrayWeights(np.zeros(3)), "2-D"),
    (lambda: ArrayWeights(np.array([[0.0, np.nan]])), "NaN or inf"),
    (lambda: SpikeInput("s", 2, spikes=SpikeEvents.empty(3)), "spikes are for 3 neurons but size is 2"),
    (lambda: PoissonInput("p", 2, rate_hz=-1.0), "rate_hz must be >= 0"),
    (lambda: PoissonInput("p", 2, rate_hz=1.0, start_us=5.0, stop_us=2.0), "stop_us must be after start_us"),
])
def test_each_kind_checks_itself(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_kind_vocabularies_come_from_the_dataclasses():
    from chip.netlist import model

    assert model.NEURON_MODELS == ("LIF", "ALIF") and Population("p", 1, ALIFParams()).model == "ALIF"
    assert model.CONNECTIVITY_KINDS == ("all_to_all", "one_to_one", "probability", "explicit")
    assert model.WEIGHT_KINDS == ("constant", "normal", "uniform", "array")
    assert model.INPUT_KINDS == ("spikes", "poisson", "file")
    assert model.SIGNS == ("excitatory", "inhibitory", "signed")  # `auto` is the reader's spelling only
    assert set(netlist_schema()["$defs"]["projection"]["properties"]["sign"]["enum"]) == set(model.SIGNS) | {"auto"}


# ---------------------------------------------------------------------------------------------
# Documentation
# ---------------------------------------------------------------------------------------------


def test_full_example_in_the_docs_loads():
    doc = (Path(__file__).parent.parent / "docs" / "netlist.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Full example"):]
    example = section[section.index("```yaml\n") + 8:section.index("```\n", section.index("```yaml\n") + 8)]
    nl = load_netlist_text(example, filename="example.yaml")
    assert nl.batch == 2 and nl.inputs["cue"].spikes.batch_size == 2
    assert nl.projections["hidden_hidden"].sign == "inhibitory"
    assert nl.projections["hidden_out"].sign == "signed"
    assert nl.populations["hidden"].v_init == (0.0, 0.5, 1)


def test_the_chip_table_in_the_docs_lists_every_chip_key_with_both_profiles_values():
    """Every chip key (they follow ChipProfile's fields) has a row in docs/netlist.md, so a new
    profile field cannot go undocumented."""
    from chip.netlist.schema import CHIP_KEYS

    doc = (Path(__file__).parent.parent / "docs" / "netlist.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip().strip("`"): line for line in doc.splitlines() if line.startswith("| `")}
    missing = [key for key in CHIP_KEYS if key not in rows]
    assert not missing, f"chip keys without a row in docs/netlist.md: {missing}"
    assert all(row.count("|") >= 5 for key, row in rows.items() if key in CHIP_KEYS)  # bss2 and ideal columns


SHIPPED = sorted(p for p in (Path(__file__).parent.parent / "netlists").glob("*.yaml") if ".golden" not in p.name)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_netlists_load_and_round_trip(path):
    first = load_netlist(path)
    assert_same(first, load_netlist_text(dump_netlist(first)), approx=first.timescale == "biological")
