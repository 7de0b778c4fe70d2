"""The analog core's effects that a chip profile switches (on for bss2, off for ideal) against
closed forms or plain references, and their spelling in the netlist."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.optimize import brentq

from chip.die import REFRACTORY_TICK_US, Transfer
from chip.emulator.core import run_thresholds
from chip.emulator.noise import threshold_drift
from chip.emulator.tables import effective_params
from chip.errors import NetlistError
from chip.events import SpikeEvents
from chip.host import HostInterface
from chip.netlist import (ALIFParams, AllToAll, ConstantWeights, LIFParams, MembraneRecord, Netlist, Population,
                          Projection, Record, SpikeInput, dump_netlist, load_netlist_text, netlist_schema)
from chip.profiles import ADAPTATION_MECHANISMS, PROFILES, Nonidealities, get_profile


# ---------------------------------------------------------------------------------------------
# the netlist format
# ---------------------------------------------------------------------------------------------

BASE = "duration: 20 us\npopulations:\n  n: {size: 2, model: ALIF, params: {adapt_increment: 0.1, adapt_coupling: 0.2}}\n"


def test_adaptation_mechanism_loads_round_trips_and_names_a_bad_value():
    nl = load_netlist_text(BASE + "chip: {profile: ideal, adaptation: current}\n")
    assert nl.chip.adaptation == "current" and nl.populations["n"].params.adapt_coupling == 0.2
    text = dump_netlist(nl)
    assert "adaptation: current" in text
    assert load_netlist_text(text).chip == nl.chip
    assert load_netlist_text(BASE).chip.adaptation == "current"  # bss2's
    assert "adaptation" not in dump_netlist(load_netlist_text(BASE))
    with pytest.raises(NetlistError, match=r":4: chip.adaptation: unknown adaptation 'currents'.*"
                                           r"expected one of threshold, current"):
        load_netlist_text(BASE + "chip: {adaptation: currents}\n")
    schema = netlist_schema()["$defs"]["chip"]["properties"]
    assert schema["adaptation"]["enum"] == list(ADAPTATION_MECHANISMS)


def test_analog_core_fields_are_chip_keys():
    nl = load_netlist_text(BASE + "chip:\n  profile: ideal\n  nonidealities: {membrane_rails: on, synaptic_saturation: on}\n"
                           "  membrane_rails: [0.2 V, 1000 mV]\n  synaptic_saturation_exc: 3\n"
                           "  synaptic_saturation_inh: .inf\n  tau_syn_range: [0.5 us, 20 us]\n"
                           "  threshold_drift: 0.02\n  adapt_coupling_range: [0, 2]\n")
    c = nl.chip
    assert c.membrane_rails_v == (0.2, 1.0) and c.synaptic_saturation_exc == 3.0
    assert math.isinf(c.synaptic_saturation_inh) and c.tau_syn_range_us == (0.5, 20.0)
    assert c.threshold_drift == 0.02 and c.adapt_coupling_range == (0.0, 2.0)
    assert load_netlist_text(dump_netlist(nl)).chip == c
    with pytest.raises(NetlistError, match="chip.membrane_rails"):
        load_netlist_text(BASE + "chip: {membrane_rails: [1.0 V, 0.5 V]}\n")
    with pytest.raises(NetlistError, match="chip.synaptic_saturation_exc"):
        load_netlist_text(BASE + "chip: {synaptic_saturation_exc: 0}\n")


def test_every_new_effect_is_off_on_ideal_and_on_on_bss2():
    mine = ("synaptic_saturation", "membrane_rails", "digital_refractory", "batch_drift")
    assert not any(getattr(PROFILES["ideal"].nonidealities, name) for name in mine)
    assert all(getattr(PROFILES["bss2"].nonidealities, name) for name in mine)
    assert (PROFILES["ideal"].adaptation, PROFILES["bss2"].adaptation) == ("threshold", "current")
    assert Nonidealities().off


# ---------------------------------------------------------------------------------------------
# synaptic time constants: the calibrated range
# ---------------------------------------------------------------------------------------------

def test_synaptic_time_constants_have_the_calibrated_range_on_bss2():
    bss2, ideal = Transfer(PROFILES["bss2"]), Transfer(PROFILES["ideal"])
    assert PROFILES["bss2"].tau_syn_range_us == (0.3, 30.0)

    def held(transfer, name, value):
        return float(transfer.to_value(name, transfer.to_code(name, value)))

    for name in ("tau_syn_exc_us", "tau_syn_inh_us"):
        assert held(bss2, name, 45.0) == pytest.approx(30.0)
        assert held(bss2, name, 0.1) == pytest.approx(0.3)
        assert held(ideal, name, 45.0) == 45.0
    assert held(bss2, "tau_mem_us", 45.0) == pytest.approx(45.0, rel=0.01)  # tau_mem keeps 0.5 .. 60
    assert held(bss2, "tau_mem_us", 0.3) == pytest.approx(0.5)


TAU_MEM, TAU_SYN = 10.0, 5.0


def chip(profile="ideal", *, on=(), off=(), **fields):
    """A profile with some of its non-idealities switched on or off and some fields changed."""
    p = get_profile(profile)
    switches = dataclasses.replace(p.nonidealities, **{name: True for name in on}, **{name: False for name in off})
    return p.replace(nonidealities=switches, **fields)


def netlist(profile, *, trains, weight, params=None, sign="excitatory", duration_us=40.0, period_us=None,
            model_size=1):
    """``model_size`` neurons driven all-to-all by one input channel per train (weight each)."""
    params = params or LIFParams(tau_mem_us=TAU_MEM, tau_syn_exc_us=TAU_SYN, tau_syn_inh_us=TAU_SYN,
                                 tau_ref_us=0.0, v_threshold=100.0, weight_full_scale=100.0)
    params = _held(profile, params)
    period = max(profile.step_us, profile.cadc_min_period_us) if period_us is None else period_us
    inp = SpikeInput("in", len(trains), spikes=SpikeEvents.from_lists([list(t) for t in trains]))
    return Netlist(chip=profile, duration_us=duration_us, populations={"n": Population("n", model_size, params)},
                   inputs={"in": inp},
                   projections={"p": Projection("p", "in", "n", AllToAll(), ConstantWeights(weight), sign)},
                   record=Record(spikes=("n",), membrane=(MembraneRecord("n", tuple(range(model_size)), "cadc",
                                                                         period),)))


def _held(profile, params):
    """The parameters as the chip holds them: each clipped to the profile's range (the chip refuses
    a netlist asking for more; these tests mean "as far as it goes", e.g. a threshold never reached)."""
    from chip.die import Transfer

    transfer = Transfer(profile)
    held = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        try:
            lo, hi = transfer._range(f.name)
        except KeyError:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            held[f.name] = min(max(value, lo), hi)
    return dataclasses.replace(params, **held)


# ---------------------------------------------------------------------------------------------
# digital refractory counter
# ---------------------------------------------------------------------------------------------

def _counter_value(tau_us, lo=0.04, hi=32.0):
    """The refractory counter's value nearest to tau: the finest clock scale s (tick 2^s·8 ns)
    whose count fits 8 bits, written out per scale."""
    tau = min(max(tau_us, lo), hi)
    for s in range(16):
        tick = 0.008 * 2 ** s
        n = round(tau / tick)
        if n <= 255:
            return n * tick
    return 255 * 0.008 * 2 ** 15


@pytest.mark.parametrize("tau_us, expected_us", [
    (0.04, 0.04),     # s = 0: 5 ticks of 8 ns
    (1.0, 1.0),       # s = 0, n = 125
    (2.04, 2.04),     # s = 0, n = 255: the largest count at the finest scale
    (2.05, 2.048),    # s = 1 (16 ns): n = 128
    (5.0, 4.992),     # s = 2 (32 ns): n = 156
    (10.0, 9.984),    # s = 3 (64 ns): n = 156
    (20.3, 20.352),   # s = 4 (128 ns): n = 159
    (32.0, 32.0),     # s = 4, n = 250
    (50.0, 32.0),     # clipped to the range
    (0.001, 0.04),    # clipped to the range
])
def test_refractory_times_are_quantized_to_the_counter(tau_us, expected_us):
    transfer = Transfer(PROFILES["bss2"])
    assert transfer.digital_refractory
    value = float(transfer.to_value("tau_ref_us", transfer.to_code("tau_ref_us", tau_us)))
    assert value == pytest.approx(expected_us, abs=1e-12)
    assert value == pytest.approx(_counter_value(tau_us), abs=1e-12)
    code = float(transfer.to_code("tau_ref_us", tau_us))
    assert code == round(code) and value == pytest.approx(code * REFRACTORY_TICK_US)


def test_refractory_quantization_over_many_values_follows_the_rule():
    transfer = Transfer(PROFILES["bss2"])
    taus = np.exp(np.linspace(np.log(0.01), np.log(40.0), 997))
    got = transfer.to_value("tau_ref_us", transfer.to_code("tau_ref_us", taus))
    np.testing.assert_allclose(got, [_counter_value(t) for t in taus], rtol=0, atol=1e-12)
    # the resolution doubles with each scale: within half a tick of the (clipped) value
    tick = 0.008 * 2.0 ** np.maximum(0, np.ceil(np.log2(np.clip(taus, 0.04, 32.0) / 0.008 / 255.5)))
    assert np.all(np.abs(got - np.clip(taus, 0.04, 32.0)) <= tick / 2 + 1e-12)


def test_written_refractory_codes_become_representable_ones():
    host = HostInterface(netlist(PROFILES["bss2"], trains=[[]], weight=0.0, model_size=3))
    codes = host.write_codes("n", "tau_ref_us", [300.0, 1001.0, 1e9])
    # 300 ticks: s = 1, n = 150 (representable); 1001: s = 2, n = 250 → 1000; 1e9: the range's top
    np.testing.assert_array_equal(codes, [300.0, 1000.0, 4000.0])
    np.testing.assert_allclose(host.read_params("n", "tau_ref_us"), [2.4, 8.0, 32.0])
    assert host.write_params("n", "tau_ref_us", 5.0) == pytest.approx([4.992] * 3)


def test_refractory_time_has_no_mismatch_with_the_counter():
    nl = netlist(PROFILES["bss2"], trains=[[]], weight=0.0, model_size=256,
                 params=LIFParams(tau_ref_us=3.0))
    host = HostInterface(nl)
    eff = effective_params(host.die, host.state)["tau_ref_us"][:256]
    nominal = host.read_params("n", "tau_ref_us")
    np.testing.assert_array_equal(eff, nominal)
    assert nominal[0] == pytest.approx(3.008)  # 376 ticks: s = 1, n = 188
    analog = HostInterface(nl.with_chip(chip("bss2", off=("digital_refractory",))))
    spread = effective_params(analog.die, analog.state)["tau_ref_us"][:256]
    assert np.std(spread) / np.mean(spread) > 0.05  # the analog refractory time carries the die's spread


def test_measured_refractory_period_equals_the_counter_value_within_one_clock():
    """A neuron whose leak sits above threshold fires again as soon as it can: its interval is
    τref + the rise from reset to threshold, τm·ln((V_L − V_r)/(V_L − θ)) with its effective
    parameters; so interval − rise is the refractory period, within a clock (spike stamps)."""
    profile = chip("bss2", off=("batch_drift",), noise_membrane=0.0)
    params = LIFParams(tau_mem_us=2.0, tau_ref_us=3.0, v_leak=2.0, v_reset=0.0, v_threshold=1.0)
    nl = netlist(profile, trains=[[]], weight=0.0, params=params, model_size=8, duration_us=60.0, period_us=1.7)

    def measured(host):
        eff = effective_params(host.die, host.state)
        ev = host.run().spikes["n"]
        out = []
        for j in range(8):
            vl, vr, vth, tm = (eff[name][j] for name in ("v_leak", "v_reset", "v_threshold", "tau_mem_us"))
            rise = tm * math.log((vl - vr) / (vl - vth))
            isi = np.diff(ev.time_us[ev.neuron == j])
            assert len(isi) >= 5
            out.append(isi - rise)
        return np.concatenate(out)

    host = HostInterface(nl)
    nominal = float(host.read_params("n", "tau_ref_us")[0])
    assert nominal == pytest.approx(3.008)
    assert np.all(np.abs(measured(host) - nominal) <= profile.clock_us + 1e-9)
    analog = measured(HostInterface(nl.with_chip(chip("bss2", off=("batch_drift", "digital_refractory"),
                                                      noise_membrane=0.0))))
    assert np.abs(analog - nominal).max() > 10 * profile.clock_us


# ---------------------------------------------------------------------------------------------
# batch-to-batch threshold drift
# ---------------------------------------------------------------------------------------------

def test_threshold_offsets_per_run_are_reproducible_with_the_stated_spread():
    profile = PROFILES["bss2"]
    n = 20000
    vth, vl = np.full(n, 1.0), np.zeros(n)
    a = run_thresholds(profile, vth, vl, (1, 0)) - vth
    again = run_thresholds(profile, vth, vl, (1, 0)) - vth
    other_run = run_thresholds(profile, vth, vl, (1, 1)) - vth
    np.testing.assert_array_equal(a, again)
    assert not np.allclose(a, other_run)
    assert abs(np.corrcoef(a, other_run)[0, 1]) < 0.05
    sigma = profile.threshold_drift
    assert sigma == 0.015
    assert np.std(a) == pytest.approx(sigma, abs=4 * sigma / math.sqrt(2 * n))
    assert abs(np.mean(a)) <= 4 * sigma / math.sqrt(n)
    # a fraction of each neuron's threshold − leak
    span = np.linspace(0.5, 2.0, n)
    np.testing.assert_allclose(run_thresholds(profile, vl + span, vl, (1, 0)) - span, a * span)
    # its own stream: not the membrane noise's
    assert not np.allclose(threshold_drift((1, 0), 8), np.random.default_rng([(1, 0), 7]).standard_normal(8))
    # absent when off, and on ideal
    off = chip("bss2", off=("batch_drift",))
    assert run_thresholds(off, vth, vl, (1, 0)) is vth
    assert run_thresholds(PROFILES["ideal"], vth, vl, (1, 0)) is vth


def _drift_net(on=True, noise=0.0):
    profile = chip("ideal", on=("batch_drift",) if on else (), threshold_drift=0.015, noise_membrane=noise)
    params = LIFParams(tau_mem_us=TAU_MEM, tau_syn_exc_us=TAU_SYN, tau_syn_inh_us=TAU_SYN, tau_ref_us=1.0)
    return netlist(profile, trains=[[2.0, 12.0, 22.0]], weight=4.5, params=params, model_size=16, duration_us=40.0)


def test_drift_moves_spikes_from_run_to_run_reproducibly():
    host = HostInterface(_drift_net())
    first, second = host.run().spikes["n"], host.run().spikes["n"]
    assert len(first) >= 16
    assert not np.array_equal(first.time_us, second.time_us)
    again = HostInterface(_drift_net())
    np.testing.assert_array_equal(again.run().spikes["n"].time_us, first.time_us)
    np.testing.assert_array_equal(again.run().spikes["n"].time_us, second.time_us)
    steady = HostInterface(_drift_net(on=False))
    np.testing.assert_array_equal(steady.run().spikes["n"].time_us, steady.run().spikes["n"].time_us)


def test_drift_leaves_the_membrane_noise_unchanged():
    """Below threshold the membrane does not see the threshold: with and without drift the
    noisy traces are the same draws."""
    nl_on, nl_off = _drift_net(noise=0.05), _drift_net(on=False, noise=0.05)
    quiet = {"p": dataclasses.replace(nl_on.projections["p"], weights=ConstantWeights(0.5))}
    a = HostInterface(dataclasses.replace(nl_on, projections=quiet)).run()
    b = HostInterface(dataclasses.replace(nl_off, projections=quiet)).run()
    assert len(a.spikes["n"]) == len(b.spikes["n"]) == 0
    np.testing.assert_array_equal(a.trace("n").values, b.trace("n").values)


def kappa(h, tau, tau_mem=TAU_MEM):
    """Membrane response to a unit current jump at h = 0 that decays with tau (closed form)."""
    h = np.maximum(h, 0.0)
    return tau / (tau - tau_mem) * (np.exp(-h / tau) - np.exp(-h / tau_mem))


T_IN = 2.0  # the input events' time: on a step boundary


# ---------------------------------------------------------------------------------------------
# adaptation: a current (AdEx) or a moving threshold
# ---------------------------------------------------------------------------------------------

TAU_ADAPT, TAU_REF = 20.0, 1.0


def _alif(b=0.0, a=0.0, **extra):
    return ALIFParams(tau_mem_us=TAU_MEM, tau_syn_exc_us=TAU_SYN, tau_syn_inh_us=TAU_SYN, tau_ref_us=TAU_REF,
                      tau_adapt_us=TAU_ADAPT, adapt_increment=b, adapt_coupling=a, **extra)


def test_the_adaptation_current_of_one_spike_matches_the_closed_form():
    """With a = 0, a spike at t_c leaves A = b·e^{−(t − t_c)/τa}: after the hold (τref) the
    membrane is the free one minus A(t_c + τref)·κ_adapt(t − t_c − τref), exactly (superposition),
    so the difference between b > 0 and b = 0 is that term."""
    b, w = 0.5, 6.0
    profile = chip("ideal", adaptation="current")

    def run(increment):
        nl = netlist(profile, trains=[[T_IN]], weight=w, params=_alif(increment), duration_us=60.0)
        return HostInterface(nl).run()

    with_b, without = run(b), run(0.0)
    assert len(with_b.spikes["n"]) == len(without.spikes["n"]) == 1
    assert with_b.spikes["n"].time_us[0] == without.spikes["n"].time_us[0]
    t_c = brentq(lambda x: w * kappa(x - T_IN, TAU_SYN) - 1.0, T_IN + 1e-9, T_IN + 5.0, xtol=1e-13)
    assert 0.0 <= with_b.spikes["n"].time_us[0] - t_c <= profile.clock_us + 1e-9
    t = with_b.trace("n").time_us
    diff = with_b.trace("n").values[0, :, 0] - without.trace("n").values[0, :, 0]
    t_free = t_c + TAU_REF
    expected = np.where(t > t_free, -b * math.exp(-TAU_REF / TAU_ADAPT) * kappa(t - t_free, TAU_ADAPT), 0.0)
    # the crossing is located between 1 ns clock edges by interpolation: ~1e-9 of timing error
    np.testing.assert_allclose(diff, expected, atol=1e-6)
    assert diff.min() < -0.1  # and the effect is there


def _spikes(profile, params, duration_us=200.0):
    nl = netlist(profile, trains=[[]], weight=0.0, params=params, duration_us=duration_us, period_us=1.0)
    return HostInterface(nl).run().spikes["n"].time_us


def _isis(profile, params):
    return np.diff(_spikes(profile, params))


def test_adaptation_current_lengthens_the_interspike_intervals():
    """A neuron driven by its leak above threshold fires regularly without adaptation (τref +
    τm·ln 3 = 11.99 µs); with the adaptation current its intervals grow from spike to spike
    towards a longer steady one."""
    profile = chip("ideal", adaptation="current")
    plain = _spikes(profile, _alif(0.0, v_leak=1.5))
    adapting = _spikes(profile, _alif(0.3, v_leak=1.5))
    assert np.diff(plain) == pytest.approx(TAU_REF + TAU_MEM * math.log(3.0), abs=profile.clock_us)
    assert adapting[0] == plain[0]  # the first spike comes before any adaptation
    isi = np.diff(adapting)
    assert len(isi) >= 8
    assert isi[0] > np.diff(plain)[0] + 1.0
    assert np.all(np.diff(isi[:6]) > 0)
    assert isi[-1] > 1.15 * isi[0]


def test_subthreshold_coupling_matches_the_linear_system_at_step_resolution():
    """No spikes: τm V' = −V − A, τa A' = −A + a·V from V(0) = 1 is linear, its solution a matrix
    exponential. The kernel integrates the coupling a·V at step resolution (A driven by the
    start-of-step V, its effect on V exact): first order in dt, well within 1 % of the excursion
    at dt = 0.1 µs (τ ≥ 10 µs)."""
    a = 0.8
    profile = chip("ideal", adaptation="current")
    params = _alif(0.0, a, v_threshold=100.0)
    nl = netlist(profile, trains=[[]], weight=0.0, params=params, duration_us=60.0)
    nl = dataclasses.replace(nl, populations={"n": dataclasses.replace(nl.populations["n"], v_init=1.0)})
    tr = HostInterface(nl).run().trace("n")
    m = np.array([[-1.0 / TAU_MEM, -1.0 / TAU_MEM], [a / TAU_ADAPT, -1.0 / TAU_ADAPT]])
    ref = np.array([(expm(m * t) @ np.array([1.0, 0.0]))[0] for t in tr.time_us])
    v = tr.values[0, :, 0]
    np.testing.assert_allclose(v, ref, atol=0.01)
    uncoupled = np.exp(-tr.time_us / TAU_MEM)
    assert np.abs(uncoupled - ref).max() > 0.05  # the coupling matters here


def test_threshold_mode_ignores_the_coupling_and_matches_the_current_mode_without_adaptation():
    threshold = chip("ideal")
    assert threshold.adaptation == "threshold"
    a = _isis(threshold, _alif(0.3, v_leak=1.5))
    b = _isis(threshold, _alif(0.3, 0.9, v_leak=1.5))
    np.testing.assert_array_equal(a, b)
    # no adaptation at all: both mechanisms are the plain LIF neuron
    np.testing.assert_array_equal(_isis(threshold, _alif(0.0, v_leak=1.5)),
                                  _isis(chip("ideal", adaptation="current"), _alif(0.0, v_leak=1.5)))


def test_adapt_coupling_is_an_analog_parameter_with_a_transfer_range():
    bss2 = Transfer(PROFILES["bss2"])
    assert PROFILES["bss2"].adapt_coupling_range == (0.0, 1.0)
    assert bss2.to_value("adapt_coupling", bss2.to_code("adapt_coupling", 0.0)) == 0.0
    assert bss2.to_value("adapt_coupling", bss2.to_code("adapt_coupling", 5.0)) == 1.0
    assert bss2.to_value("adapt_coupling", bss2.to_code("adapt_coupling", 0.5)) == pytest.approx(0.5, abs=1e-3)
    host = HostInterface(netlist(PROFILES["bss2"], trains=[[]], weight=0.0, params=_alif(0.1, 0.4)))
    assert host.read_params("n", "adapt_coupling") == pytest.approx([0.4], abs=1e-3)


def test_threshold_bound_holds_with_an_adaptation_current_of_either_sign():
    """The slow path skips clock edges that ``_below_threshold`` keeps below threshold; with an
    adaptation current (which a subthreshold coupling can make negative, and then it raises the
    membrane) the kernel hands it min(I_inh, 0) + A for a negative A. Over random neurons the bound
    must never say "below" when the trajectory with that current reaches the threshold."""
    from chip.emulator import kernel as kernels

    def coeff(ts, tm):
        return ts / (ts - tm) if abs(ts - tm) > 1e-6 * max(ts, tm) else math.nan

    rng = np.random.default_rng(11)
    dt, M = 0.2, 25
    clock = dt / M
    said_below = 0
    for _ in range(2000):
        tm, te, ti, ta = (rng.uniform(2.0, 30.0), rng.uniform(1.0, 20.0), rng.uniform(1.0, 20.0),
                          rng.uniform(5.0, 200.0))
        ce, ci, ca = coeff(te, tm), coeff(ti, tm), coeff(ta, tm)
        VL, Vr = rng.uniform(-0.5, 1.5), rng.uniform(-0.5, 0.5)
        ie0 = rng.exponential(1.0) * (rng.random() < 0.7)
        ii0 = rng.exponential(1.0) * (rng.random() < 0.5)
        ia_s = rng.normal(0.0, 1.0)
        s_free = 0.0 if rng.random() < 0.5 else rng.uniform(0.0, dt)
        v_start = Vr if s_free > 0 else rng.uniform(-0.5, 1.0)
        n = int(rng.integers(0, 4))
        pa = rng.uniform(0.0, dt, n)
        pwe = rng.exponential(0.5, n) * (rng.random(n) < 0.7)
        pwi = rng.exponential(0.5, n) * (rng.random(n) < 0.5)
        ie_s, ii_s, held = kernels._charge(s_free, ie0, ii0, te, ti, pa, pwe, pwi, n)
        tau_max = int(rng.integers(1, M + 1)) * clock
        taus = np.linspace(0.0, tau_max, 201)
        taus = taus[taus > s_free]
        if len(taus) == 0:
            continue
        v = np.array([kernels._v_free(t, s_free, v_start, 0.0, dt, VL, Vr, tm, te, ti, ce, ci, ie_s, ii_s, held,
                                      pa, pwe, pwi, n, ia_s, ta, ca) for t in taus])
        vth = float(v.max()) + rng.uniform(-0.01, 0.05)
        ii_b = ii_s if ia_s >= 0.0 else min(ii_s, 0.0) + ia_s
        if kernels._below_threshold(tau_max, s_free, v_start, 0.0, dt, VL, vth, tm, ie_s, ii_b, held, pa, pwe, n):
            said_below += 1
            assert v.max() < vth, (v.max(), vth, ia_s)
    assert said_below > 200


# ---------------------------------------------------------------------------------------------
# synaptic saturation
# ---------------------------------------------------------------------------------------------

I_SAT_EXC, I_SAT_INH = 4.0, 2.0


def _saturating(on=True):
    return chip("ideal", on=("synaptic_saturation",) if on else (), synaptic_saturation_exc=I_SAT_EXC,
                synaptic_saturation_inh=I_SAT_INH)


def _membrane(profile, k, w, sign="excitatory"):
    tr = HostInterface(netlist(profile, trains=[[T_IN]] * k, weight=w, sign=sign)).run().trace("n")
    return tr.time_us, tr.values[0, :, 0]


def _reference(x0, i_sat, t):
    """τm V' = −V + I_sat·tanh(x(t)/I_sat), x = x0·e^{−(t − T_IN)/τs}, integrated numerically."""
    def rhs(tt, v):
        return [(-v[0] + i_sat * math.tanh(x0 * math.exp(-(tt - T_IN) / TAU_SYN) / i_sat)) / TAU_MEM]

    late = t >= T_IN
    sol = solve_ivp(rhs, (T_IN, t[-1]), [0.0], t_eval=t[late], rtol=1e-11, atol=1e-13, max_step=0.05)
    v = np.zeros_like(t)
    v[late] = sol.y[0]
    return v


@pytest.mark.parametrize("sign, i_sat", [("excitatory", I_SAT_EXC), ("inhibitory", I_SAT_INH)])
def test_saturating_input_matches_a_numerical_integration(sign, i_sat):
    """k simultaneous events of weight w, threshold out of reach, summed input 3·I_sat. The kernel
    applies one gain per step, g(x̂)/x̂ at the step's input carried to the step's middle, so the
    error per step is of second order, ~(dt/τs)²/24 ≈ 2e-5 relative at dt = 0.1 µs, τs = 5 µs:
    the whole trace agrees within 2e-4 of its peak (the linear membrane would be 60 % off)."""
    k = 6
    w = 3.0 * i_sat / k
    signed = w if sign == "excitatory" else -w
    t, v = _membrane(_saturating(), k, signed, sign)
    ref = _reference(k * w, i_sat, t) * (1.0 if sign == "excitatory" else -1.0)
    peak = np.abs(ref).max()
    assert np.abs(v).max() == pytest.approx(peak, rel=2e-4)
    assert np.abs(v - ref).max() <= 2e-4 * peak
    # the effect is large here: without it the membrane is the linear one
    _, linear = _membrane(_saturating(on=False), k, signed, sign)
    assert np.abs(linear).max() > 1.5 * peak


def test_psp_height_bends_like_tanh_of_the_summed_input():
    """Peak against summed input k·w: linear far below I_sat, far below linear at 3·I_sat, and
    the same as the numerical reference at every size."""
    sizes = np.array([0.1, 0.25, 0.5, 1.0, 2.0, 3.0]) * I_SAT_EXC
    k = 4
    peaks, ratios = [], []
    for x0 in sizes:
        t, v = _membrane(_saturating(), k, x0 / k)
        linear = x0 * kappa(t - T_IN, TAU_SYN).max()
        peaks.append(v.max())
        ratios.append(v.max() / linear)
        assert v.max() == pytest.approx(_reference(x0, I_SAT_EXC, t).max(), rel=2e-4)
    ratios = np.array(ratios)
    assert ratios[0] > 0.995                     # linear for small inputs
    assert np.all(np.diff(peaks) > 0)            # still monotone ...
    assert np.all(np.diff(ratios) < 0)           # ... but compressing more and more
    assert ratios[-1] < 0.65                     # far below linear at 3·I_sat


def test_saturation_is_off_on_ideal_and_on_bss2():
    assert not PROFILES["ideal"].nonidealities.synaptic_saturation
    assert math.isinf(PROFILES["ideal"].synaptic_saturation_exc)
    bss2 = PROFILES["bss2"]
    assert bss2.nonidealities.synaptic_saturation
    assert (bss2.synaptic_saturation_exc, bss2.synaptic_saturation_inh) == (12.0, 4.0)


# ---------------------------------------------------------------------------------------------
# membrane rails
# ---------------------------------------------------------------------------------------------

def _rails_model():
    p = PROFILES["bss2"]
    lo_v, hi_v = p.membrane_rails_v
    span = p.v_model_one_v - p.v_model_zero_v
    return (lo_v - p.v_model_zero_v) / span, (hi_v - p.v_model_zero_v) / span


def _railed(on=True, **fields):
    return chip("ideal", on=("membrane_rails",) if on else (), membrane_rails_v=PROFILES["bss2"].membrane_rails_v,
                **fields)


def test_rails_in_model_units_are_the_closed_form_conversion():
    lo, hi = _rails_model()
    # 0.17 V and 1.09 V with model 0 at 0.45 V and 1 at 0.75 V
    assert (lo, hi) == pytest.approx(((0.17 - 0.45) / 0.3, (1.09 - 0.45) / 0.3))
    assert lo == pytest.approx(-0.9333333333) and hi == pytest.approx(2.1333333333)
    host = HostInterface(netlist(_railed(), trains=[[T_IN]], weight=-20.0, sign="inhibitory"))
    assert host.emulator.tables(host.profile.step_us).rails == pytest.approx((lo, hi))


def test_strong_inhibition_holds_the_membrane_at_the_lower_rail():
    """Once the membrane reaches the rail it stays exactly there while the inhibitory current
    pulls harder than the leak does at the rail (I_inh > V_L − lo, V_L = 0), and leaves it after."""
    lo, _ = _rails_model()
    nl = netlist(_railed(), trains=[[T_IN]], weight=-20.0, sign="inhibitory")
    tr = HostInterface(nl).run().trace("n")
    t, v = tr.time_us, tr.values[0, :, 0]
    free = -20.0 * kappa(t - T_IN, TAU_SYN)  # the unbounded membrane
    current = 20.0 * np.exp(-(t - T_IN) / TAU_SYN) * (t >= T_IN)
    reached = np.cumsum(free < lo) > 0
    held = reached & (current > -lo * 1.02)
    assert held.sum() > 100                       # the rail is reached and held for over 10 µs
    assert np.all(v[held] == lo)                  # exactly at the rail, not below
    assert np.all(v >= lo)
    assert np.all(v[reached & (current < -lo * 0.98)] > lo)  # it leaves when the inhibition has decayed
    # without rails it goes below
    off = HostInterface(netlist(_railed(on=False), trains=[[T_IN]], weight=-20.0, sign="inhibitory")).run()
    assert off.trace("n").values[0, :, 0].min() < lo - 1.0


def test_a_threshold_above_the_upper_rail_is_never_reached():
    _, hi = _rails_model()
    params = LIFParams(tau_mem_us=TAU_MEM, tau_syn_exc_us=TAU_SYN, tau_syn_inh_us=TAU_SYN, tau_ref_us=0.0,
                       v_threshold=hi + 0.3, weight_full_scale=100.0)
    trains = [[2.0, 2.5, 3.0, 3.5, 4.0]]
    on = HostInterface(netlist(_railed(), trains=trains, weight=4.0, params=params)).run()
    v = on.trace("n").values[0, :, 0]
    assert len(on.spikes["n"]) == 0 and v.max() == hi
    off = HostInterface(netlist(_railed(on=False), trains=trains, weight=4.0, params=params)).run()
    assert len(off.spikes["n"]) >= 1
