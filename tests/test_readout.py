"""The readout models: the CADC (transfer, channel offsets, read noise, compression, sample
times), the MADC, and the correlation sensors, each against a closed form or a plain reference,
and each gone when its switch is off."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chip.die import Die
from chip.host import HostInterface
from chip.netlist import MembraneRecord, Record, load_netlist_text
from chip.profiles import Mismatch, get_profile
from chip.readout import CADC, CorrelationSensors, adc_trace

from .conftest import layer_netlist

BSS2 = get_profile("bss2")
QUIET = dict(mismatch=Mismatch(), noise_membrane=0.0)  # a membrane that rests exactly at its leak


def switches(**changes):
    """bss2's switches with some changed; the die's global CADC slope (setup variation) off unless
    asked for, since these tests check the converter's own transfer code by code."""
    changes.setdefault("setup_variation", False)
    return dataclasses.replace(BSS2.nonidealities, **changes)


def formula_codes(model_value):
    """code = (V − 0.06 V) / 4.5 mV, V = 0.45 V + 0.3 V · model value (the bss2 profile)."""
    return (0.45 + 0.3 * np.asarray(model_value) - 0.06) / 0.0045


def resting(n_out=8, v_leak=None, **chip):
    """A run of resting membranes (no input) read through the CADC every 1.7 µs: the host and
    the trace of all neurons (a leak written above the usual threshold gets a threshold above it)."""
    host = HostInterface(layer_netlist(n_in=1, n_out=n_out, profile="bss2", rate_hz=0.0, duration_us=60.0,
                                       **{**QUIET, **chip}))
    if v_leak is not None:
        host.write_params("out", "v_threshold", 2.5)
        host.write_params("out", "v_leak", v_leak)
    return host, host.run().trace("out")


# ---------------------------------------------------------------------------------- CADC transfer


def test_cadc_reads_a_held_membrane_at_the_code_of_the_formula():
    host, tr = resting(n_out=5, v_leak=[-0.5, 0.0, 0.5, 1.0, 1.5],
                       nonidealities=switches(cadc_offsets=False, cadc_noise=False, cadc_timing=False))
    held = host.read_params("out", "v_leak")  # the nominal value of the written 10-bit codes
    want = np.rint(formula_codes(held))
    np.testing.assert_array_equal(tr.codes, np.broadcast_to(want, tr.codes.shape))
    assert list(want) == [53, 87, 120, 153, 187]  # model 0 (0.45 V) reads 86.7, model 1 (0.75 V) 153.3
    # values: the codes read back through the nominal (linear) transfer
    np.testing.assert_allclose(tr.values, (0.06 + tr.codes * 0.0045 - 0.45) / 0.3, atol=1e-12)
    np.testing.assert_allclose(tr.time_us, 9 * 0.2 * np.arange(1, len(tr.time_us) + 1))  # 1.7 us: every 9 steps


def test_cadc_transfer_on_its_own_clips_to_the_codes_and_reads_back_within_half_a_code():
    profile = BSS2.replace(nonidealities=switches(cadc_nonlinearity=False))
    rec = MembraneRecord("p", (0,), "cadc", 1.7)
    values = np.linspace(-1.5, 2.5, 401).reshape(1, -1, 1)
    tr = adc_trace(profile, rec, np.arange(401.0), values)
    np.testing.assert_array_equal(tr.codes, np.clip(np.rint(formula_codes(values)), 0, 255))
    inside = (tr.codes > 0) & (tr.codes < 255)
    assert inside.sum() > 300
    assert np.max(np.abs(tr.values - values)[inside]) <= 0.015 / 2 + 1e-12  # 4.5 mV = 0.015 model units
    np.testing.assert_array_equal(adc_trace(profile, rec, np.arange(401.0), tr.values).codes, tr.codes)


def test_unquantized_adcs_pass_values_through():
    profile = get_profile("ideal")
    values = np.random.default_rng(1).normal(size=(2, 5, 3))
    for adc in ("cadc", "madc"):
        tr = adc_trace(profile, MembraneRecord("p", (0, 1, 2), adc, 1.7), np.arange(5.0), values)
        assert tr.codes is None and tr.values is values


def test_madc_is_linear_over_the_voltage_range_with_ten_bits():
    values = np.linspace(-1.0, 2.0, 301).reshape(1, -1, 1)
    tr = adc_trace(BSS2, MembraneRecord("p", (0,), "madc", 0.033), np.arange(301.0), values)
    np.testing.assert_array_equal(tr.codes, np.rint((0.45 + 0.3 * values) / 1.2 * 1023))
    assert np.max(np.abs(tr.values - values)) <= 1.2 / 1023 / 0.3 / 2 + 1e-12


# ---------------------------------------------------------------------------------- offsets


def test_cadc_offsets_are_fixed_per_die_and_channel_with_the_configured_spread():
    offsets = Die(BSS2).cadc_offsets_lsb()
    assert offsets.shape == (512,)
    np.testing.assert_array_equal(offsets, Die(BSS2).cadc_offsets_lsb())  # same die, same offsets
    other = Die(BSS2.replace(die_seed=2)).cadc_offsets_lsb()
    assert np.corrcoef(offsets, other)[0, 1] < 0.2  # another die: another pattern
    # three codes of spread over 512 channels, within four standard errors of a sample std
    assert np.std(offsets) == pytest.approx(3.0, abs=4 * 3.0 / np.sqrt(2 * 512))
    # the switch does not change any other draw of the die
    assert np.array_equal(Die(BSS2).gain["v_leak"], Die(BSS2.replace(nonidealities=switches(cadc_offsets=False)))
                          .gain["v_leak"])


def test_each_channel_reads_with_its_offset_in_every_sample():
    host, tr = resting(n_out=512, nonidealities=switches(cadc_noise=False, cadc_timing=False))
    x = formula_codes(host.read_params("out", "v_leak"))
    offsets = host.die.cadc_offsets_lsb()[:512]
    np.testing.assert_array_equal(tr.codes, np.broadcast_to(np.rint(x + offsets), tr.codes.shape))
    measured = tr.codes[0, 0] - x  # the host only sees codes: the spread shows as ~3 codes
    assert np.std(measured) == pytest.approx(3.0, abs=4 * 3.0 / np.sqrt(2 * 512) + 0.3)
    # switched off: every channel reads the formula
    _, plain = resting(n_out=512, nonidealities=switches(cadc_offsets=False, cadc_noise=False))
    np.testing.assert_array_equal(plain.codes, np.broadcast_to(np.rint(x), plain.codes.shape))


# ---------------------------------------------------------------------------------- noise


def test_read_noise_is_fresh_per_sample_reproducible_and_one_code_wide():
    chip = dict(n_out=64, nonidealities=switches(cadc_offsets=False, cadc_timing=False))
    host, tr = resting(**chip)
    x = formula_codes(host.read_params("out", "v_leak"))
    err = tr.codes[0] - x  # (samples, neurons) on a constant membrane
    # N(0, 1) rounded: std sqrt(1 + 1/12); 64 × 35 samples
    assert np.std(err) == pytest.approx(np.sqrt(1 + 1 / 12), rel=0.05)
    assert np.mean(np.all(tr.codes[0, 1:] == tr.codes[0, :-1], axis=0)) < 0.01  # differs from sample to sample
    np.testing.assert_array_equal(resting(**chip)[1].codes, tr.codes)  # same seeds: the same noise
    other = HostInterface(layer_netlist(n_in=1, n_out=64, profile="bss2", rate_hz=0.0, duration_us=60.0,
                                        noise_seed=2, **QUIET, nonidealities=chip["nonidealities"])).run()
    assert not np.array_equal(other.trace("out").codes, tr.codes)
    # switched off: a constant membrane reads one code
    _, quiet = resting(n_out=64, nonidealities=switches(cadc_offsets=False, cadc_noise=False))
    assert np.ptp(quiet.codes) == 0


def test_read_and_membrane_noise_give_calix_leak_noise_target():
    """bss2's membrane noise (0.01 threshold units = 0.67 codes) and read noise (1 code) make a
    resting membrane read about 1.2 codes of std, calix's leak-calibration noise target."""
    host = HostInterface(layer_netlist(n_in=1, n_out=256, profile="bss2", rate_hz=0.0, duration_us=120.0,
                                       mismatch=Mismatch()))
    tr = host.run().trace("out")
    codes = tr.codes[0, tr.time_us > 40.0]  # after the membrane noise reached its stationary std
    per_neuron = np.std(codes, axis=0)
    expected = np.sqrt(1.0 + (0.01 / 0.015) ** 2 + 1 / 12)
    assert np.sqrt(np.mean(per_neuron ** 2)) == pytest.approx(expected, rel=0.08)
    assert 1.1 < expected < 1.3


# ---------------------------------------------------------------------------------- compression


def test_above_the_linear_range_the_ramp_compresses_monotonically():
    cadc_on, cadc_off = CADC(BSS2), CADC(BSS2.replace(nonidealities=switches(cadc_nonlinearity=False)))
    x = np.linspace(-20.0, 400.0, 4201)
    on, off = cadc_on.read(x, None, None), cadc_off.read(x, None, None)
    linear = x <= 210
    np.testing.assert_array_equal(on[linear], off[linear])
    np.testing.assert_array_equal(off, np.clip(np.rint(x), 0, 255))
    assert np.all(np.diff(on) >= 0) and on.max() == 255 and on.min() == 0
    above = (x > 235) & (x < 300)
    assert np.all(on[above] < off[above])
    np.testing.assert_array_equal(on[x > 210], np.rint(210 + 45 * np.tanh((x[x > 210] - 210) / 45)))


def test_a_membrane_held_high_reads_below_its_linear_code():
    value = (0.06 + 250 * 0.0045 - 0.45) / 0.3  # linear code 250
    codes = {}
    for on in (True, False):
        # the rails would hold this membrane below code 229: off, to read the ADC's own compression
        host, tr = resting(n_out=1, v_leak=value, nonidealities=switches(cadc_offsets=False, cadc_noise=False,
                                                                          cadc_nonlinearity=on, membrane_rails=False))
        x = formula_codes(host.read_params("out", "v_leak"))[0]
        codes[on] = int(tr.codes[0, 0, 0])
    assert codes[False] == round(x) and abs(x - 250) < 0.5
    assert codes[True] == round(210 + 45 * np.tanh((x - 210) / 45)) == 242


# ---------------------------------------------------------------------------------- sample times


def _psp_trace(*, timing: bool, period: str = "1.7 us", noise_seed: int = 1):
    """One neuron, one input spike, read through a CADC without offsets or noise."""
    nl = load_netlist_text(f"""
name: psp
duration: 60 us
chip: {{profile: bss2, mismatch: off, noise: 0, noise_seed: {noise_seed}, cadc_min_period: 0.2 us,
        nonidealities: {{cadc_offsets: off, cadc_noise: off, cadc_timing: {'on' if timing else 'off'}}}}}
populations:
  n: {{size: 1, params: {{tau_mem: 10 us, tau_syn: 5 us}}}}
inputs:
  in: {{size: 1, type: spikes, times: [[3 us]]}}
projections:
  p: {{pre: in, post: n, weights: 0.9}}
record:
  membrane: [{{population: n, neurons: [0], adc: cadc, period: {period}}}]
""")
    host = HostInterface(nl)
    return host, host.run().trace("n")


def test_samples_are_taken_at_their_step_or_one_later_and_report_when():
    host, tr = _psp_trace(timing=True)
    dt = host.profile.step_us
    nominal = 9 * dt * np.arange(1, len(tr.time_us) + 1)
    late = np.rint((tr.time_us - nominal) / dt)
    np.testing.assert_allclose(tr.time_us, nominal + late * dt, atol=1e-12)  # on the grid
    assert set(late.tolist()) == {0.0, 1.0}
    # the reported times are the true ones: the same membrane sampled every step, at those times
    _, every_step = _psp_trace(timing=False, period="0.2 us")
    at = np.rint(tr.time_us / dt).astype(int) - 1
    np.testing.assert_allclose(every_step.time_us[at], tr.time_us, atol=1e-12)
    np.testing.assert_array_equal(tr.codes[0, :, 0], every_step.codes[0, at, 0])
    assert np.any(tr.codes[0, :, 0] != every_step.codes[0, at - late.astype(int), 0])  # the late ones show
    # reproducible; another noise seed, other times; switched off, the nominal times
    np.testing.assert_array_equal(_psp_trace(timing=True)[1].time_us, tr.time_us)
    assert not np.array_equal(_psp_trace(timing=True, noise_seed=2)[1].time_us, tr.time_us)
    np.testing.assert_allclose(_psp_trace(timing=False)[1].time_us, nominal, atol=1e-12)


def test_the_readout_never_changes_the_spikes():
    nl = layer_netlist(n_in=8, n_out=32, profile="bss2", rate_hz=4e5, duration_us=40.0)
    plain = nl.with_chip(nl.chip.replace(nonidealities=switches(cadc_offsets=False, cadc_noise=False,
                                                                cadc_nonlinearity=False, cadc_timing=False,
                                                                setup_variation=True)))
    record = Record(spikes=("out",), membrane=nl.record.membrane, correlations=("w",))
    a, b = (HostInterface(n).run(record=record) for n in (nl, plain))
    assert len(a.spikes["out"]) > 20
    for x, y in zip((a.spikes["out"].neuron, a.spikes["out"].time_us), (b.spikes["out"].neuron, b.spikes["out"].time_us)):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------------- correlation sensors

# Two presynaptic channels onto three neurons (all to all, weak); a teacher input on the chip's
# strongest synapse (2 units of current) fires them about a microsecond after each of its events
# (threshold 0.2). Several presynaptic spikes fall between two postsynaptic spikes and vice versa,
# so nearest-neighbour and all-to-all pairing give different sums. (At threshold 0.3 a post spike
# lands in the step of a pre arrival that acts from the next step on; the sensors pair it at its
# time: see the chain netlist below.)
SENSOR_NETLIST = """
name: pairs
duration: 60 us
batch: 2
chip: {{profile: {profile}, nonidealities: {switches}}}
populations:
  post: {{size: 3, params: {{tau_mem: 5 us, tau_syn: 2 us, tau_ref: 3 us, v_threshold: 0.2, weight_full_scale: 2}}}}
inputs:
  pre:   {{size: 2, type: spikes, times: [[2 us, 5 us, 9 us, 21 us, 24 us, 40 us], [7 us, 13 us, 14 us, 30 us, 33 us]]}}
  drive: {{size: 3, type: spikes, times: [[6 us, 12 us, 25 us, 35 us], [10 us, 11 us, 28 us], [3 us, 20 us, 31 us, 45 us]]}}
projections:
  plastic: {{pre: pre, post: post, weights: 0.1}}
  teacher: {{pre: drive, post: post, connectivity: one_to_one, weights: 2}}
record:
  spikes: all
  correlations: [plastic]
"""


def reference_pairs(result, host, projection, *, gain=None, tau=None, nearest=True):
    """Causal and acausal sums over the run's own spike trains, event by event in plain Python:
    nearest neighbour (each postsynaptic spike with the latest presynaptic arrival strictly before
    it, each arrival with the latest spike strictly before it) or all to all."""
    info = host.projection(projection)
    n_pre, n_post = info.shape
    gain = np.ones(info.shape) if gain is None else gain
    tau = np.full(info.shape, host.profile.correlation_tau_us) if tau is None else tau
    causal = np.zeros((result.batch, n_pre, n_post))
    acausal = np.zeros_like(causal)
    for b in range(result.batch):
        pre, post = result.inputs[info.pre].trains(b), result.spikes[info.post].trains(b)
        for i in range(n_pre):
            for j in range(n_post):
                if not info.mask[i, j]:
                    continue
                arrivals = [t + info.delay_us[i] for t in pre[i]]  # the sensor sees an event at its synapse
                for first, second, out in ((arrivals, post[j], causal), (post[j], arrivals, acausal)):
                    for t in second:
                        earlier = [s for s in first if s < t]
                        for s in (earlier[-1:] if nearest else earlier):
                            out[b, i, j] += gain[i, j] * np.exp(-(t - s) / tau[i, j])
    return causal, acausal


def sensor_host(profile, switches="off", **chip):
    """The sensor netlist; on bss2 with links that never queue and without the die's extra input
    delay (setup variation), so that an event reaches its synapse exactly ``ProjectionInfo.delay_us``
    after it was sent (a link serving events one clock cycle at a time adds that cycle; the die's
    delay is what a host does not know)."""
    if profile == "bss2":
        switches = "{setup_variation: off}" if switches == "on" else \
            "off" if switches == "off" else switches[:-1] + ", setup_variation: off}"
    text = SENSOR_NETLIST.format(profile=profile, switches=switches)
    extra = dict(input_link_capacity=".inf", bus_capacity=".inf") if profile == "bss2" else {}
    extra.update(chip)
    if extra:
        text = text.replace(f"profile: {profile},", f"profile: {profile}, " + ", ".join(f"{k}: {v}" for k, v in extra.items()) + ",")
    return HostInterface(load_netlist_text(text))


def test_ideal_sensors_pair_nearest_neighbours_exactly():
    host = sensor_host("ideal")
    result = host.run()
    corr = result.correlations["plastic"]
    assert all(len(t) >= 2 for t in result.spikes["post"].trains(0))
    causal, acausal = reference_pairs(result, host, "plastic")
    np.testing.assert_allclose(corr.causal, causal, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(corr.acausal, acausal, rtol=1e-12, atol=1e-14)
    assert corr.causal_codes is None and corr.causal_baseline_codes is None  # no quantization on ideal
    # the all-to-all rule gives other numbers on the same trains
    all_causal, all_acausal = reference_pairs(result, host, "plastic", nearest=False)
    assert np.abs(all_causal - causal).max() > 0.5 and np.abs(all_acausal - acausal).max() > 0.3


def test_bss2_sensors_read_the_reference_through_the_cadc():
    """Spread and noise off: every code is the nearest-neighbour reference through the CADC model
    (baseline 200 − 0.5 codes per pair, plus the channel's offset, compressed and rounded)."""
    host = sensor_host("bss2", "{cadc_noise: off, correlation_spread: off}")
    result = host.run()
    corr = result.correlations["plastic"]
    causal, acausal = reference_pairs(result, host, "plastic")
    assert causal.max() > 1.5 and acausal.max() > 1.0
    offsets = host.die.cadc_offsets_lsb()[host.mapped.populations["post"].offset + np.arange(3)]
    cadc = CADC(host.profile)
    for pairs, codes, base in ((causal, corr.causal_codes, corr.causal_baseline_codes),
                               (acausal, corr.acausal_codes, corr.acausal_baseline_codes)):
        np.testing.assert_array_equal(codes, np.rint(cadc.compress(200.0 - 0.5 * pairs + offsets)))
        np.testing.assert_array_equal(base, np.broadcast_to(np.rint(cadc.compress(200.0 + offsets)), base.shape))
    np.testing.assert_array_equal(corr.causal, (corr.causal_baseline_codes - corr.causal_codes) / 0.5)
    # what the host gets in pairs is the reference within the quantization of two reads (2 pairs a code)
    assert np.abs(corr.causal - causal).max() <= 2.0 and np.abs(corr.acausal - acausal).max() <= 2.0


def test_sensor_spread_is_fixed_per_die_and_acts_per_synapse():
    die = Die(BSS2)
    ids = np.arange(1 << 16)
    amp, tau = die.correlation_spread(ids)
    for g in (amp, tau):
        assert np.std(np.log(g)) == pytest.approx(0.35, abs=4 * 0.35 / np.sqrt(2 * len(ids)))
        assert np.median(g) == pytest.approx(1.0, abs=0.01)
        assert 0.94 < np.mean((g > 0.5) & (g < 2.0)) < 0.96  # ~95 % within ×2
    np.testing.assert_array_equal(Die(BSS2).correlation_spread(ids[::7])[0], amp[::7])
    assert np.corrcoef(Die(BSS2.replace(die_seed=2)).correlation_spread(ids)[0], amp)[0, 1] < 0.05
    assert np.corrcoef(amp, tau)[0, 1] < 0.05
    # in a run on an unquantized CADC: the reference with each synapse's gain and τ
    # (the teacher's strong weight would saturate the synaptic input: off, to keep the sensor's spikes
    # away from the sensors' step-resolution limit)
    host = sensor_host("bss2", "{synaptic_saturation: off}", cadc_bits="null")
    proj = host.mapped.projections["plastic"]
    g, h = host.die.correlation_spread(proj.exc_synapse)
    gain, tau_syn = np.ones(proj.mask.shape), np.full(proj.mask.shape, 5.0)
    gain[proj.mask], tau_syn[proj.mask] = g, 5.0 * h
    result = host.run()
    corr = result.correlations["plastic"]
    # below the saturation, unquantized: the exact sums, in pairs
    for got, want in zip((corr.causal, corr.acausal), reference_pairs(result, host, "plastic", gain=gain, tau=tau_syn)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    nominal = reference_pairs(result, host, "plastic")
    assert np.abs(corr.causal - nominal[0]).max() > 0.1  # the spread shows
    off = HostInterface(host.netlist.with_chip(host.profile.replace(
        nonidealities=switches(correlation_spread=False, synaptic_saturation=False))))
    result = off.run()
    np.testing.assert_allclose(result.correlations["plastic"].causal, reference_pairs(result, off, "plastic")[0],
                               rtol=1e-12, atol=1e-14)


def test_sensor_saturation_is_soft_above_160_codes():
    sensors = CorrelationSensors.__new__(CorrelationSensors)
    sensors.amplitude, sensors.knee, sensors.baseline = 0.5, 160.0, 200.0
    pairs = np.linspace(0.0, 1000.0, 10001)
    signal = sensors._signal(pairs)
    below = 0.5 * pairs <= 160
    np.testing.assert_array_equal(signal[below], 0.5 * pairs[below])
    assert np.all(np.diff(signal) > 0) and signal.max() < 200.0 and signal[-1] > 199.0
    assert np.all(signal[~below] < 0.5 * pairs[~below])


def test_reading_does_not_clear_and_reset_is_its_own_operation():
    host = sensor_host("ideal")
    reads = []

    def timer(t):
        reads.append(host.read_correlations("plastic").causal.copy())
        if round(t, 6) == 30.0:
            host.reset_correlations("plastic")
            reads.append(host.read_correlations("plastic").causal.copy())

    result = host.run(timer=(15.0, timer))
    at15, at30, after_reset, at45, at60 = reads
    assert at15.max() > 0 and np.all(at30 >= at15) and at30.max() > at15.max()  # reads accumulate
    assert np.all(after_reset == 0.0)
    # after the reset: only the pairs of postsynaptic spikes after 30 µs
    np.testing.assert_allclose(at60, result.correlations["plastic"].causal)
    full, _ = reference_pairs(result, host, "plastic")
    np.testing.assert_allclose(at30 + at60, full, rtol=1e-12, atol=1e-14)

    # on bss2 the reset reads a new baseline, so a read right after it is ~0 pairs (noise only)
    bss2 = sensor_host("bss2", "on")
    after = []

    def bss2_timer(t):
        bss2.reset_correlations("plastic")
        after.append(bss2.read_correlations("plastic"))

    bss2.run(timer=(20.0, bss2_timer))
    for corr in after:
        assert np.abs(corr.causal).max() <= 8.0  # a few codes of read noise, in pairs of 0.5 codes


def test_same_seeds_same_sensor_reads():
    a, b = (sensor_host("bss2", "on").run().correlations["plastic"] for _ in range(2))
    for x, y in ((a.causal_codes, b.causal_codes), (a.acausal_baseline_codes, b.acausal_baseline_codes)):
        np.testing.assert_array_equal(x, y)


# Neurons drive neurons: a population kicked by Poisson inputs into another, both driven hard, with
# the sensors on the neuron-to-neuron projection. On bss2 a neuron's event reaches its synapses 32 ns
# (four clock cycles) after its spike, nearly always within the step it was emitted in: the neurons
# feel it from the next step, the sensors pair it at its time.
CHAIN_NETLIST = """
name: chain
duration: 80 us
batch: 2
chip: {{profile: {profile}, {extra} nonidealities: {switches}}}
populations:
  pre:  {{size: 4, params: {{tau_mem: 5 us, tau_syn: 2 us, tau_ref: 2 us, v_threshold: 0.2, weight_full_scale: 2}}}}
  post: {{size: 3, params: {{tau_mem: 5 us, tau_syn: 2 us, tau_ref: 2 us, v_threshold: {threshold}, weight_full_scale: 2}}}}
inputs:
  drive_pre:  {{size: 4, type: poisson, rate: 150 kHz, seed: 3}}
  drive_post: {{size: 3, type: poisson, rate: 100 kHz, seed: 4}}
projections:
  kick_pre:  {{pre: drive_pre, post: pre, connectivity: one_to_one, weights: 2}}
  kick_post: {{pre: drive_post, post: post, connectivity: one_to_one, weights: 2}}
  chain: {{pre: pre, post: post, sign: signed, weights: {{normal: {{mean: 0.0, std: 0.3}}, seed: 1}}}}
record:
  spikes: all
  correlations: [chain]
"""


def chain_host(profile, threshold):
    """The chain netlist; on bss2 with an unquantized CADC, no read noise or sensor spread, links
    that never queue and no extra input delay, so the sensors must be the exact sums."""
    if profile == "bss2":
        extra = "cadc_bits: null, input_link_capacity: .inf, bus_capacity: .inf, neuron_output_capacity: .inf,"
        switches = "{cadc_noise: off, correlation_spread: off, setup_variation: off}"
    else:
        extra, switches = "", "off"
    return HostInterface(load_netlist_text(CHAIN_NETLIST.format(profile=profile, extra=extra, switches=switches,
                                                                threshold=threshold)))


@pytest.mark.parametrize("profile", ["ideal", "bss2"])
@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_sensors_pair_events_that_arrive_within_their_emission_step(profile, threshold):
    host = chain_host(profile, threshold)
    result = host.run()
    corr = result.correlations["chain"]
    assert len(result.spikes["pre"]) > 50 and len(result.spikes["post"]) > 25
    if profile == "bss2":
        assert 0.0 < host.projection("chain").delay_us.max() < host.profile.step_us
    # the plain reference over the presynaptic population's spikes
    seen = dataclasses.replace(result, inputs={"pre": result.spikes["pre"]})
    causal, acausal = reference_pairs(seen, host, "chain")
    assert causal.sum() > 40 and acausal.sum() > 40
    np.testing.assert_allclose(corr.causal, causal, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(corr.acausal, acausal, rtol=1e-12, atol=1e-12)


def test_sensors_are_unchanged_when_the_kernel_grows_its_buffers():
    """The kernel senses a step after emitting its spikes; when the calendar is full it stops
    there and senses that step on the next call: with every buffer starting at one element the
    sensors read the same as with the usual sizes."""
    from chip.emulator import Capacity, Emulator
    from chip.inputs import realize_input

    host = chain_host("bss2", 0.2)
    nl = host.netlist
    inputs = {name: realize_input(source, nl.batch, 80.0) for name, source in nl.inputs.items()}

    def run(capacity):
        emulator = Emulator(host.mapped, host.die, host.state, capacity=capacity)
        return emulator.run(inputs, batch=nl.batch, duration_us=80.0, record=nl.record, noise_seed=(1, 0))

    reference, small = run(Capacity()), run(Capacity(ring_events_per_slot=1, events_per_step=1, spikes=1))
    assert small.buffer_growth["ring"] >= 1 and small.buffer_growth["spikes"] >= 1
    for kind in ("causal", "acausal"):
        got, want = getattr(small.correlations["chain"], kind), getattr(reference.correlations["chain"], kind)
        assert want.sum() > 40
        np.testing.assert_array_equal(got, want)
