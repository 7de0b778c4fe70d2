"""Calibration: the built-in plugin cuts the spreads (measured, and in the circuits' true values),
never touches the die, reports what it cannot reach; the file knows its die and refuses others;
netlists and hosts apply it through public writes."""

from __future__ import annotations

import contextlib
import importlib
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from chip.calibration import Calibration
from chip.die import Die
from chip.errors import CalibrationError, MappingError, NetlistError, RuleError, RunError
from chip.host import HostInterface
from chip.netlist import load_netlist, load_netlist_text
from chip.profiles import get_profile
from cli import app
from rules import Rule, hookimpl
from rules.calibration import DEFAULT_TARGETS, bench_netlist, calibrate_die, read_targets, spread_table
from rules.calibration.measure import Transfer, decay_fit, trimmed_std
from rules.calibration.search import bisect_codes, secant_search

#: calix's bars (tests/hw/py/test_neuron_distribution.py): calibrated / uncalibrated spread
BARS = {"v_leak": 0.30, "v_reset": 0.20, "v_threshold": 0.35, "tau_mem_us": 0.45, "tau_syn_exc_us": 0.20,
        "tau_syn_inh_us": 0.20}
SMALL = get_profile("bss2").replace(neurons_per_core=128, die_seed=5)

#: the host interface as documented (docs/host-interface.md); everything else is chipctl's inside
PUBLIC = {"profile", "netlist", "runs_done", "populations", "inputs", "projections", "projection", "run",
          "read_correlations", "reset_correlations", "read_weights", "write_weights", "weight_step",
          "read_params", "write_params", "read_codes", "write_codes", "read_weight_codes", "write_weight_codes",
          "export_config", "import_config", "transaction", "snapshot", "restore", "describe", "circuits",
          "read_cadc_reference"}


class PublicOnly:
    """A host with its internals out of reach: the die, the emulator, the configuration memory,
    the mapping and the transfers raise instead of answering."""

    def __init__(self, host):
        object.__setattr__(self, "_host", host)
        object.__setattr__(self, "touched", [])

    def __getattr__(self, name):
        if name not in PUBLIC:
            self.touched.append(name)
            raise AttributeError(f"host.{name} is not part of the host interface")
        return getattr(self._host, name)

    def __setattr__(self, name, value):
        if name != "runs_done":
            raise AttributeError(f"host.{name} cannot be set through the host interface")
        setattr(self._host, name, value)


@contextlib.contextmanager
def die_guard():
    """Every use of a die (made, or any attribute read) whose caller is not the chip's own code is
    recorded, by module: the die answers the emulator, never a rule, however the rule got at it."""
    outside: list[str] = []
    init, getattribute = Die.__init__, Die.__getattribute__

    def check():
        module = sys._getframe(2).f_globals.get("__name__", "")
        if not module.startswith("chip."):
            outside.append(module)

    def guarded_init(self, *args, **kwargs):
        check()
        init(self, *args, **kwargs)

    def guarded_getattribute(self, name):
        check()
        return getattribute(self, name)

    Die.__init__, Die.__getattribute__ = guarded_init, guarded_getattribute
    try:
        yield outside
    finally:
        Die.__init__, Die.__getattribute__ = init, getattribute


@pytest.fixture(scope="module")
def small():
    """A 128-circuit die calibrated with every internal of its host out of reach and every use of
    its die watched, and the true (effective) parameters of its circuits with nominal and with
    calibrated codes."""
    views = []

    def view(host):
        views.append(PublicOnly(host))
        return views[-1]

    with die_guard() as outside:
        cal = calibrate_die(SMALL, host_view=view)
    host = HostInterface(bench_netlist(SMALL, params=cal.targets))
    before = host.emulator.effective_params()
    host.load_calibration(cal)
    after = host.emulator.effective_params()
    return cal, before, after, views[0], outside


# ------------------------------------------------------------------------------ what it achieves
def test_the_calibration_cuts_every_spread_below_calix_bars(small):
    cal, before, after, *_ = small
    for row in spread_table(cal):
        name = row["parameter"]
        assert row["ratio"] <= BARS[name], row  # measured through the host, as calix's test does
        true_ratio = trimmed_std(after[name]) / trimmed_std(before[name])
        assert true_ratio <= 0.7 * BARS[name], (name, true_ratio)  # and in what the circuits really are
    assert not any(cal.unreached.values()) or sum(len(v) for v in cal.unreached.values()) <= 3


def test_time_constants_hit_their_targets_and_potentials_the_dies_median(small):
    cal, before, after, *_ = small
    for name in ("tau_mem_us", "tau_syn_exc_us", "tau_syn_inh_us"):
        # 0.4 %: the inhibitory one came out 0.7 % short while its PSP was bent by the saturation
        assert abs(np.mean(after[name]) / cal.targets[name] - 1) < 0.004, name
    # potentials (anchor median): every circuit at the level the median circuit reads at the
    # target's nominal code, so the die keeps its nominal scale, whatever its CADC's slope
    for name in ("v_leak", "v_reset", "v_threshold"):
        entry = cal.report["parameters"][name]
        assert entry["anchor"] == "median"
        assert abs(entry["after"]["mean"] - entry["level"]) < 0.005
        assert abs(np.mean(after[name]) - np.median(before[name])) < 0.01
    assert np.std(after["v_leak"] - after["v_reset"]) < 0.005


@pytest.mark.parametrize("saturation", [True, False])
def test_the_inhibitory_psp_is_small_enough_that_saturation_does_not_bias_tau_syn(saturation):
    """The inhibitory input saturates (I_sat 4): a PSP of a full-scale synapse is bent enough that
    its decay fit reads tau_syn_inh 0.7 % long, and the calibration would set every circuit 0.7 %
    short. The calibration's PSP (option psp_inh, 0.5, with four times the samples) reads within
    0.3 %. Without the saturation both read true (the control: the bias is the saturation's)."""
    import dataclasses

    from rules.calibration.bench import POPULATION
    from rules.calibration.measure import Bench
    from rules.calibration.plugin import NeuronCalibration

    chip = SMALL if saturation else SMALL.replace(
        nonidealities=dataclasses.replace(SMALL.nonidealities, synaptic_saturation=False))
    host = HostInterface(bench_netlist(chip, params=DEFAULT_TARGETS))
    true = host.emulator.effective_params()["tau_syn_inh_us"][host.circuits(POPULATION)]
    bench = Bench(host, POPULATION, batch=16)
    bench.measure_cadc_offsets()
    psp = NeuronCalibration.options["psp_inh"][0]
    bias = {p: float(np.nanmean(bench.tau_syn("inh", 6.0, psp=p, batch=int(64 / p ** 2)) / true) - 1)
            for p in (1.0, psp)}
    assert abs(bias[psp]) < 0.003, bias
    if saturation:
        assert bias[1.0] > 0.004, bias
    else:
        assert abs(bias[1.0]) < 0.003, bias


def test_the_psp_options_are_checked():
    with pytest.raises(RuleError, match="option psp_inh must be from 0.05 to 2"):
        calibrate_die(SMALL.replace(neurons_per_core=32), targets={"tau_syn_inh_us": 6.0},
                      options={"calibration": {"psp_inh": 0.0}})


def test_the_cadc_anchor_brings_potentials_to_the_cadc_reads_of_their_targets():
    chip = SMALL.replace(neurons_per_core=32)
    cal = calibrate_die(chip, targets={"v_leak": 0.0}, options={"calibration": {"anchor": "cadc"}})
    entry = cal.report["parameters"]["v_leak"]
    assert entry["level"] == 0.0 and abs(entry["after"]["mean"]) < 0.005
    host = HostInterface(bench_netlist(chip, params=cal.targets))
    host.load_calibration(cal)
    # in truth off the target by the die's CADC slope, (0.45 V - 0.06 V) / slope + 0.06 V, and by
    # the offset of the median channel (offsets are measured against it), here 32 channels
    slope = host.die.setup().trace_gain
    truth = ((0.06 + 0.39 / slope) - 0.45) / 0.3
    assert abs(np.mean(host.emulator.effective_params()["v_leak"]) - truth) < 0.015
    assert abs(truth) > 0.02


def test_the_calibration_never_reads_the_die(small):
    _, _, _, view, outside = small
    assert view.touched == []  # the whole calibration ran through the public interface
    assert outside == []  # and the die answered only the chip's own code (the emulator's runs)


class PeekAtTheDie(Rule):
    name = "peek"

    @hookimpl
    def chipctl_calibrate(self, context, targets):
        return {"gains": context.host.die.gain["v_leak"]}


def test_a_calibration_that_reads_the_die_fails_behind_the_public_interface():
    with pytest.raises(RuleError, match=r"rule 'peek' in chipctl_calibrate: .*host\.die is not part"):
        calibrate_die(SMALL.replace(neurons_per_core=32), rules=(f"{__name__}:PeekAtTheDie",), host_view=PublicOnly)


class MakeTheDie(Rule):
    name = "make_the_die"

    @hookimpl
    def chipctl_calibrate(self, context, targets):
        die = importlib.import_module("chip.die").Die(context.host.netlist.chip)  # around the host
        return {"gains": die.gain["v_leak"]}


def test_a_calibration_that_makes_the_die_itself_is_caught():
    with die_guard() as outside:
        calibrate_die(SMALL.replace(neurons_per_core=32), rules=(f"{__name__}:MakeTheDie",), host_view=PublicOnly)
    assert outside and all(module == __name__ for module in outside)


def test_targets_out_of_reach_are_reported_per_circuit_not_clipped(tmp_path):
    chip = SMALL.replace(neurons_per_core=32)
    cal = calibrate_die(chip, targets={"tau_mem_us": 70.0, "v_leak": -1.2},
                        options={"calibration": {"report": False}})
    # a netlist that asks for 70 us without the calibration is refused (nothing clipped silently);
    # one that names the calibration made for it gets what each circuit reached
    with pytest.raises(MappingError, match="tau_mem: 70 us is outside"):
        HostInterface(bench_netlist(chip, params=cal.targets, calibration=tmp_path / "none.yaml"))
    host = HostInterface(bench_netlist(chip, params=cal.targets, calibration=cal.dump(tmp_path / "cal.yaml")))
    true = host.emulator.effective_params()
    # tau_mem: 70 us is above the 60 us the nominal codes give; only circuits whose mismatch makes
    # them slow enough get there, the others are reported one by one, at the top code
    reported = {u["circuit"]: u for u in cal.unreached["tau_mem_us"]}
    assert 16 <= len(reported) < 32
    for circuit in range(32):
        if circuit in reported:
            assert reported[circuit]["code"] == 1022 and true["tau_mem_us"][circuit] < 0.95 * 70.0
            assert abs(reported[circuit]["reached"] / true["tau_mem_us"][circuit] - 1) < 0.03
        else:
            assert abs(true["tau_mem_us"][circuit] / 70.0 - 1) < 0.06
    # v_leak: below the membrane's lower rail, where the CADC cannot read it either: every circuit
    assert {u["circuit"] for u in cal.unreached["v_leak"]} == set(range(32))
    # a circuit that did not reach its target does not read as the target
    values = host.read_params("core", "tau_mem_us")
    assert np.all(values[sorted(reported)] == 60.0)
    assert np.all(values[[c for c in range(32) if c not in reported]] == 70.0)


# ------------------------------------------------------------------------------ the file
def test_the_file_round_trips_and_knows_its_die(small, tmp_path):
    cal = small[0]
    path = cal.dump(tmp_path / "cal.yaml")
    back = Calibration.load(path)
    assert back.targets == cal.targets and back.die["seed"] == 5 and back.circuits == 128
    for name in cal.codes:
        np.testing.assert_array_equal(back.codes[name], cal.codes[name])
    back.check_chip(SMALL)
    cases = [
        (SMALL.replace(die_seed=6), "calibration made for die seed 5, this chip is die seed 6"),
        (get_profile("bss2").replace(die_seed=5), "calibration made for chip profile bss2 with neurons_per_core 128, "
                                                  "this chip is bss2 with neurons_per_core 512"),
        (get_profile("ideal").replace(die_seed=5, neurons_per_core=128), "calibration made for chip profile bss2 "
                                                                         "with weight_bits 6"),
        (SMALL.replace(mismatch=get_profile("ideal").mismatch), "calibration made for a die with mismatch"),
    ]
    for chip, message in cases:
        with pytest.raises(CalibrationError) as exc:
            back.check_chip(chip)
        assert exc.value.one_line() == str(exc.value) and str(exc.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize("damage, message", [
    (lambda t: t.replace("v_leak: [", "v_leak: [7, ", 1), "corrupted calibration: its content does not match its checksum"),
    (lambda t: t[: len(t) // 2], "corrupted calibration"),
    (lambda t: "kind: [unclosed\n", "corrupted calibration: not YAML at line"),
    (lambda t: "name: a netlist\n", "not a chipctl calibration"),
    (lambda t: t.replace("format: 1", "format: 7"), "calibration of format 7; this chipctl reads format 1"),
])
def test_a_damaged_file_is_refused_in_one_line(small, tmp_path, damage, message):
    path = small[0].dump(tmp_path / "cal.yaml")
    path.write_text(damage(path.read_text()))
    with pytest.raises(CalibrationError) as exc:
        Calibration.load(path)
    assert str(exc.value).startswith(f"{path}: {message}") and "\n" not in str(exc.value)


def test_a_missing_file_is_named():
    with pytest.raises(CalibrationError, match=r"^nowhere\.yaml: calibration file not found$"):
        Calibration.load("nowhere.yaml")


# ------------------------------------------------------------------------------ netlists and hosts
NETLIST = """
name: calibrated
duration: 20 us
chip: {{profile: bss2, neurons_per_core: 128, die_seed: {die}, calibration: {file}}}
populations:
  a: {{size: 10, params: {{tau_mem: {tau_mem}, tau_syn: 6 us, v_threshold: 1}}}}
  b: {{size: 5, params: {{tau_mem: 12 us, tau_syn: 6 us}}}}
inputs:
  in: {{size: 2, type: spikes, times: [[1 us], [2 us]]}}
projections:
  in_a: {{pre: in, post: a, weights: 0.5}}
"""


def _netlist(tmp_path, cal, *, die=5, tau_mem="12 us", file="cal.yaml"):
    cal.dump(tmp_path / "cal.yaml")
    path = tmp_path / "net.yaml"
    path.write_text(NETLIST.format(die=die, file=file, tau_mem=tau_mem))
    return path


def test_a_netlist_names_its_calibration_and_the_host_writes_its_codes(small, tmp_path):
    cal = small[0]
    nl = load_netlist(_netlist(tmp_path, cal))
    assert nl.calibration == str((tmp_path / "cal.yaml").resolve())
    host = HostInterface(nl)
    for pop in ("a", "b"):
        circuits = host.circuits(pop)
        for name in cal.codes:
            np.testing.assert_array_equal(host.read_codes(pop, name), cal.codes[name][circuits])
            # a calibrated code reads as what the circuit was calibrated to measure
            np.testing.assert_array_equal(host.read_params(pop, name), cal.targets[name])
    np.testing.assert_array_equal(host.circuits("b"), np.arange(10, 15))
    # writing the target writes the calibrated codes; another value its nominal code
    host.write_params("a", "tau_mem_us", 20.0)
    assert np.all(host.read_params("a", "tau_mem_us") != 12.0)
    host.write_params("a", "tau_mem_us", 12.0)
    np.testing.assert_array_equal(host.read_codes("a", "tau_mem_us"), cal.codes["tau_mem_us"][:10])
    # the netlist writes back with its calibration, resolved
    from chip.netlist import dump_netlist

    assert load_netlist_text(dump_netlist(nl)).calibration == nl.calibration


def test_a_calibration_for_another_die_or_other_values_is_refused(small, tmp_path):
    cal = small[0]
    path = _netlist(tmp_path, cal)
    file = (tmp_path / "cal.yaml").resolve()
    with pytest.raises(CalibrationError, match=rf"^{file}: calibration made for die seed 5, this chip is die seed 7$"):
        HostInterface(load_netlist(path, die_seed=7))
    with pytest.raises(CalibrationError, match=rf"^{file}: population 'a' has tau_mem 20 us, the calibration was "
                                               r"made for 12 us \(calibrate with --targets for these values\)$"):
        HostInterface(load_netlist(_netlist(tmp_path, cal, tau_mem="20 us")))
    with pytest.raises(NetlistError, match=r"net\.yaml:4: chip\.calibration: calibration file 'other\.yaml' not found"):
        load_netlist(_netlist(tmp_path, cal, file="other.yaml"))
    # the CLI: one line on stderr, exit 2 (validate checks the calibration too)
    result = CliRunner().invoke(app, ["validate", str(_netlist(tmp_path, cal, tau_mem="20 us"))])
    assert result.exit_code == 2 and "population 'a' has tau_mem 20 us" in result.stderr
    path = _netlist(tmp_path, cal)
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0
    result = CliRunner().invoke(app, ["run", str(path), "--die-seed", "7"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{file}: calibration made for die seed 5, this chip is die seed 7"


def test_a_configuration_from_another_die_lands_on_this_dies_calibrated_codes(small, tmp_path):
    cal = small[0]
    trained = HostInterface(load_netlist(_netlist(tmp_path, cal)))
    config = trained.export_config()
    other = calibrate_die(SMALL.replace(die_seed=6), targets={"tau_mem_us": 12.0},
                          options={"calibration": {"report": False, "iterations": 2}})
    other.dump(tmp_path / "other.yaml")
    text = NETLIST.format(die=6, file="other.yaml", tau_mem="12 us")
    (tmp_path / "net6.yaml").write_text(text)
    host = HostInterface(load_netlist(tmp_path / "net6.yaml"))
    report = host.import_config(config)
    assert not report["same_die"]
    np.testing.assert_array_equal(host.read_codes("a", "tau_mem_us"), other.codes["tau_mem_us"][:10])


# ------------------------------------------------------------------------------ the pieces
def test_the_reference_line_shows_the_channel_offsets():
    host = HostInterface(bench_netlist(SMALL, size=128))
    reads = host.read_cadc_reference("core", samples=400)
    assert reads.shape == (400, 128) and reads.dtype == np.int64
    again = host.read_cadc_reference("core", samples=400)
    assert not np.array_equal(reads, again)  # fresh read noise every call
    offsets = reads.mean(0) - np.median(reads.mean(0))
    truth = host.die.cadc_offsets_lsb()[:128]
    assert np.std(offsets - (truth - np.median(truth))) < 0.15
    with pytest.raises(RunError, match="no CADC model"):
        HostInterface(bench_netlist(get_profile("ideal"), size=4)).read_cadc_reference("core")


def test_the_secant_search_cancels_a_scale_in_a_few_steps():
    rng = np.random.default_rng(3)
    host = HostInterface(bench_netlist(SMALL, size=64))
    transfer = Transfer(host, "core", "tau_mem_us")
    gain = 1 + 0.1 * rng.standard_normal(64)
    measure = lambda codes: transfer.value(codes) * gain * (1 + 0.002 * rng.standard_normal(64))  # noqa: E731
    found = secant_search(measure, 12.0, np.full(64, transfer.code(12.0)), transfer, log=True, iterations=3)
    assert np.all(np.abs(transfer.value(found.codes) * gain / 12.0 - 1) < 0.01)
    assert found.steps == 3


def test_bisection_finds_each_flip_and_says_where_there_is_none():
    flip = np.array([3.0, 500.0, 640.0, 700.0, 1022.0, 1100.0])
    codes, found = bisect_codes(lambda c: c < flip, np.full(6, 600.0), np.full(6, 680.0), top=1022.0)
    np.testing.assert_array_equal(codes, [3, 500, 640, 700, 1022, 1022])
    np.testing.assert_array_equal(found, [True, True, True, True, True, False])


def test_the_decay_fit_recovers_time_constants():
    rng = np.random.default_rng(0)
    t = np.linspace(-5, 50, 300)
    taus = 12 * (1 + 0.1 * rng.standard_normal(40))
    y = 0.3 + np.where(t[:, None] >= 0, 0.5 * np.exp(-np.maximum(t, 0)[:, None] / taus), 0.0)
    tau, amp, base = decay_fit(np.where(t < 0, -1.0, t), y, np.ones_like(y), 12 * np.exp(np.linspace(-1.4, 1.4, 97)))
    np.testing.assert_allclose(tau, taus, rtol=1e-3)
    np.testing.assert_allclose(amp, 0.5, rtol=1e-4)
    np.testing.assert_allclose(base, 0.3, atol=1e-4)


def test_targets_files_read_like_netlists(tmp_path):
    path = tmp_path / "targets.yaml"
    path.write_text("tau_mem: 10 us\ntau_syn: 5000 ns\nv_threshold: 0.9\nv_reset: null\n")
    targets = read_targets(path)
    assert targets == {**{k: v for k, v in DEFAULT_TARGETS.items() if k != "v_reset"}, "tau_mem_us": 10.0,
                       "tau_syn_exc_us": 5.0, "tau_syn_inh_us": 5.0, "v_threshold": 0.9}
    path.write_text("tau_mem: 10 us\ntau_m: 3 us\n")
    with pytest.raises(NetlistError, match=r"targets\.yaml:2: tau_m: unknown target 'tau_m'"):
        read_targets(path)
    path.write_text("tau_mem: 10\n")
    with pytest.raises(NetlistError, match=r"targets\.yaml:1: tau_mem: 10 has no unit"):
        read_targets(path)


def test_the_built_in_calibration_is_an_entry_point():
    from rules.manager import available_rules

    assert available_rules()["calibration"] == "rules.calibration:NeuronCalibration"


def test_chipctl_calibrate_writes_the_file_and_reports(tmp_path):
    targets = tmp_path / "targets.yaml"
    targets.write_text("v_reset: null\nv_threshold: null\ntau_mem: null\ntau_syn: null\n")  # the leak only
    out = tmp_path / "cal.yaml"
    result = CliRunner().invoke(app, ["calibrate", "--die-seed", "3", "--targets", str(targets), "--out", str(out),
                                      "--anchor", "cadc", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["die_seed"] == 3 and report["circuits"] == 512 and list(report["parameters"]) == ["v_leak"]
    row = report["parameters"]["v_leak"]
    assert row["ratio"] < BARS["v_leak"] and row["unreached"] == 0 and row["level"] == 0.0
    cal = Calibration.load(out)
    assert cal.die["seed"] == 3 and list(cal.codes) == ["v_leak"]
    text = CliRunner().invoke(app, ["calibrate", "--die-seed", "3", "--targets", str(targets), "--out", str(out)])
    assert text.exit_code == 0 and "v_leak" in text.stdout and "after/before" in text.stdout


@pytest.mark.slow
def test_whole_cores_meet_the_bars(capsys):
    """Full-core figures (by hand: pytest -m slow -s tests/test_calibration.py): measured and
    true ratios for dies 1-3 of bss2."""
    lines = []
    for seed in (1, 2, 3):
        cal = calibrate_die("bss2", die_seed=seed)
        host = HostInterface(bench_netlist("bss2", die_seed=seed, params=cal.targets))
        before = host.emulator.effective_params()
        host.load_calibration(cal)
        after = host.emulator.effective_params()
        for row in spread_table(cal):
            name = row["parameter"]
            true = trimmed_std(after[name]) / trimmed_std(before[name])
            lines.append(f"die {seed} {name:<15} measured {row['ratio']:.3f} true {true:.3f} bar {BARS[name]:.2f} "
                         f"true before {trimmed_std(before[name]):.5f} after {trimmed_std(after[name]):.5f} "
                         f"mean after {np.mean(after[name]):.4f} not reached {row['unreached']}")
            assert row["ratio"] <= BARS[name] and true <= BARS[name]
        lines.append(f"die {seed} wall {cal.made_by['wall_s']:.1f} s, {cal.report['runs']} runs")
    with capsys.disabled():
        print("\n" + "\n".join(lines))


def test_the_summary_shows_an_unreadable_level_as_a_dash(capsys):
    from cli import _print_calibration

    row = {"parameter": "v_leak", "target": -1.2, "level": float("nan"), "before_mean": -0.91, "before_spread": 0.013,
           "after_mean": -0.92, "after_spread": 0.012, "ratio": 0.92, "unreached": 2}
    entry = {"circuit": 0, "target": -1.2, "reached": None, "code": 77, "why": "the target is beyond the membrane's rails"}
    _print_calibration({"profile": "bss2", "die_seed": 1, "circuits": 2, "out": "cal.yaml", "wall_s": 1.0, "runs": 3,
                        "parameters": {"v_leak": row}, "unreached": {"v_leak": [entry, {**entry, "circuit": 1}]}})
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.strip().startswith("v_leak "))
    assert line.split()[:3] == ["v_leak", "-1.2", "-"] and "nan" not in out
    assert "v_leak circuit 1: target -1.2, not measurable, code 77 (the target is beyond the membrane's rails)" in out
