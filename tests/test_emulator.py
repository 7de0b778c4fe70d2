"""The emulator against closed forms, on the ideal chip and the mismatched bss2 chip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import brentq

from chip.emulator.tables import effective_params
from chip.host import HostInterface
from chip.netlist import ALIFParams
from chip.profiles import Mismatch, get_profile

from .conftest import layer_netlist, single_neuron_netlist

TAU_MEM, TAU_SYN, TAU_REF = 10.0, 5.0, 2.0


def psp(h, w, tau_syn=TAU_SYN, tau_mem=TAU_MEM):
    """Membrane response to a current jump w at h = 0 (closed form, V starts at 0)."""
    h = np.maximum(h, 0.0)
    return w * tau_syn / (tau_syn - tau_mem) * (np.exp(-h / tau_syn) - np.exp(-h / tau_mem))


def reference_spikes(inputs, w, t_end, *, tau_ref=TAU_REF, threshold=1.0, adapt=0.0, tau_adapt=50.0):
    """An independent event-by-event solution of the LIF/ALIF neuron: V and I in closed form between
    events, spike times by root finding, reset to 0 and hold for tau_ref."""
    spikes = []
    t, v, i = 0.0, 0.0, 0.0  # state just after time t
    events = sorted(inputs) + [t_end]

    def theta(x):
        return threshold + sum(adapt * np.exp(-(x - s) / tau_adapt) for s in spikes if s <= x)

    def v_at(x, t0, v0, i0):
        h = x - t0
        return v0 * np.exp(-h / TAU_MEM) + i0 * TAU_SYN / (TAU_SYN - TAU_MEM) * (np.exp(-h / TAU_SYN) - np.exp(-h / TAU_MEM))

    free_from = 0.0
    for k, te in enumerate(events):
        # advance from t to te, possibly through several spikes
        while True:
            start = max(t, free_from)
            if start >= te:
                break
            if start > t:  # leave refractoriness: V held at 0, I decayed
                i = i * np.exp(-(start - t) / TAU_SYN)
                v, t = 0.0, start
            grid = np.linspace(t, te, 4001)[1:]
            f = np.array([v_at(x, t, v, i) - theta(x) for x in grid])
            above = np.nonzero(f >= 0)[0]
            if not len(above):
                break
            j = above[0]
            lo = grid[j - 1] if j > 0 else t
            ts = brentq(lambda x: v_at(x, t, v, i) - theta(x), lo, grid[j], xtol=1e-12)
            spikes.append(ts)
            i = i * np.exp(-(ts - t) / TAU_SYN)
            v, t = 0.0, ts
            free_from = ts + tau_ref
        # arrive at te
        if te > t:
            if te >= free_from:
                v = v_at(te, t, v, i) if t >= free_from else 0.0
            i = i * np.exp(-(te - t) / TAU_SYN)
            t = te
        if k < len(inputs):
            i += w
    return np.array(spikes)


def test_subthreshold_membrane_matches_closed_form():
    times = [1.0, 3.0, 20.0]
    host = HostInterface(single_neuron_netlist(times, 0.5))
    result = host.run()
    tr = result.trace("n")
    expected = sum(psp(tr.time_us - t, 0.5) for t in times)
    assert len(result.spikes["n"]) == 0
    np.testing.assert_allclose(tr.values[0, :, 0], expected, rtol=1e-6, atol=1e-9 * expected.max())


@pytest.mark.parametrize("weight", [2.5, 4.0])
def test_spike_times_match_analytic_within_one_clock(weight):
    times = [1.0, 3.0, 6.0, 20.0, 21.0]
    host = HostInterface(single_neuron_netlist(times, weight))
    got = host.run().spikes["n"].time_us
    want = reference_spikes(times, weight, 40.0)
    assert len(want) >= 2, "the stimulus should make several spikes, incl. one during input"
    assert len(got) == len(want)
    clock = host.profile.clock_us
    # stamped on the first clock edge at or after the analytic crossing
    assert np.all(got - want >= -1e-9) and np.all(got - want <= clock + 1e-9), (got, want)


def test_spike_times_independent_of_step():
    times = [1.0, 3.0, 6.0, 20.0, 21.0]
    a = HostInterface(single_neuron_netlist(times, 4.0, step_us=0.1)).run().spikes["n"].time_us
    b = HostInterface(single_neuron_netlist(times, 4.0, step_us=0.5)).run().spikes["n"].time_us
    np.testing.assert_allclose(a, b, atol=1e-3 + 1e-9)


def test_alif_threshold_adaptation_matches_closed_form():
    params = ALIFParams(tau_mem_us=TAU_MEM, tau_syn_exc_us=TAU_SYN, tau_syn_inh_us=TAU_SYN, tau_ref_us=TAU_REF,
                        tau_adapt_us=50.0, adapt_increment=0.4)
    times = [1.0, 2.0, 3.0, 4.0, 10.0, 11.0, 12.0, 25.0, 26.0]
    host = HostInterface(single_neuron_netlist(times, 3.0, model="ALIF", params=params, duration_us=60.0))
    got = host.run().spikes["n"].time_us
    want = reference_spikes(times, 3.0, 60.0, adapt=0.4, tau_adapt=50.0)
    plain = reference_spikes(times, 3.0, 60.0)
    assert len(want) < len(plain) or not np.allclose(want, plain[:len(want)]), "adaptation must matter here"
    assert len(got) == len(want)
    assert np.all(np.abs(got - want) <= host.profile.clock_us + 1e-9), (got, want)


def test_inhibitory_input_hyperpolarizes():
    host = HostInterface(single_neuron_netlist([2.0], -0.5, sign="inhibitory"))
    tr = host.run().trace("n")
    np.testing.assert_allclose(tr.values[0, :, 0], -psp(tr.time_us - 2.0, 0.5), rtol=1e-6, atol=1e-12)


# ---------------------------------------------------------------- mismatch


def _spread(values):
    return float(np.std(values) / np.mean(values))


def test_bss2_mismatch_spread_matches_configuration():
    nl = layer_netlist(n_in=2, n_out=512, profile="bss2")
    host = HostInterface(nl)
    eff = effective_params(host.die, host.state)
    mm = nl.chip.mismatch
    n = 512
    tolerance = 4 / np.sqrt(2 * n)  # four standard errors of a sample standard deviation
    assert _spread(eff["tau_mem_us"]) == pytest.approx(mm.tau_mem, rel=tolerance + 0.02)
    assert _spread(eff["tau_syn_exc_us"]) == pytest.approx(mm.tau_syn, rel=tolerance + 0.02)
    # voltages deviate relative to their physical value (volts)
    phys = host.transfer.physical
    assert _spread(phys("v_threshold", eff["v_threshold"])) == pytest.approx(mm.v_threshold, rel=tolerance + 0.05)
    assert _spread(phys("v_leak", eff["v_leak"])) == pytest.approx(mm.v_leak, rel=tolerance + 0.05)


def test_die_seed_fixes_the_pattern():
    nl = layer_netlist(n_in=2, n_out=64, profile="bss2")
    def tau_mem(netlist):
        host = HostInterface(netlist)
        return effective_params(host.die, host.state)["tau_mem_us"]

    a, b, c = tau_mem(nl), tau_mem(nl), tau_mem(nl.with_chip(nl.chip.replace(die_seed=99)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_ideal_has_no_spread():
    host = HostInterface(layer_netlist(n_in=2, n_out=64, profile="ideal"))
    eff = effective_params(host.die, host.state)
    for name in ("tau_mem_us", "tau_syn_exc_us", "v_threshold", "v_leak"):
        assert np.ptp(eff[name]) == 0.0


def test_leak_mismatch_is_visible_through_the_adc():
    """Without input, each membrane rests at its own effective leak: the CADC sees the spread
    (its channel offsets, read noise and the die's slope off, so that only its quantization is left)."""
    bss2 = get_profile("bss2")
    nl = layer_netlist(n_in=2, n_out=64, profile="bss2", rate_hz=0.0, noise_membrane=0.0,
                       nonidealities=dataclasses.replace(bss2.nonidealities, cadc_offsets=False, cadc_noise=False,
                                                         setup_variation=False))
    host = HostInterface(nl)
    tr = host.run().trace("out")
    rest = tr.values[0, -1, :]
    eff = effective_params(host.die, host.state)["v_leak"][:64]
    lsb = bss2.cadc_lsb_v / (bss2.v_model_one_v - bss2.v_model_zero_v)
    assert np.max(np.abs(rest - eff)) <= lsb / 2 + 1e-9
    assert np.std(rest) > 0


# ---------------------------------------------------------------- noise and reproducibility


def test_same_seeds_give_identical_spikes_and_other_noise_seed_differs():
    nl = layer_netlist(n_in=8, n_out=32, profile="bss2", rate_hz=4e5, duration_us=40.0)
    a = HostInterface(nl).run().spikes["out"]
    b = HostInterface(nl).run().spikes["out"]
    c = HostInterface(nl.with_chip(nl.chip.replace(noise_seed=2))).run().spikes["out"]
    assert len(a) > 20
    np.testing.assert_array_equal(a.time_us, b.time_us)
    np.testing.assert_array_equal(a.neuron, b.neuron)
    assert len(a) != len(c) or not np.array_equal(a.time_us, c.time_us)


def test_membrane_noise_has_configured_stationary_std():
    nl = layer_netlist(n_in=2, n_out=256, profile="bss2", rate_hz=0.0, mismatch=Mismatch(), noise_membrane=0.05,
                       cadc_bits=None, duration_us=80.0)
    tr = HostInterface(nl).run().trace("out")
    late = tr.values[0, tr.time_us > 40.0, :]
    assert np.std(late) == pytest.approx(0.05, rel=0.1)


def test_batch_samples_are_independent_runs():
    nl = layer_netlist(n_in=8, n_out=16, profile="ideal", rate_hz=4e5)
    r = HostInterface(nl).run(batch=3)
    counts = r.spikes["out"].counts()
    assert counts.shape == (3, 16)
    assert not np.array_equal(counts[0], counts[1])  # poisson draws differ per sample


@pytest.mark.parametrize("profile", ["ideal", "bss2"])
def test_buffer_growth_leaves_spikes_unchanged(profile):
    """The kernel stops at a step boundary when a buffer is full and the emulator grows it: with
    every buffer starting at one element (so each grows many times) the spikes are the same."""
    from pathlib import Path

    from chip.emulator import Capacity, Emulator
    from chip.inputs import realize_input

    path = Path(__file__).resolve().parent.parent / "netlists" / "cuba.yaml"
    host = HostInterface.from_file(path, profile=profile)
    nl = host.netlist
    inputs = {name: realize_input(source, nl.batch, 10.0) for name, source in nl.inputs.items()}

    def run(capacity):
        emulator = Emulator(host.mapped, host.die, host.state, capacity=capacity)
        raw = emulator.run(inputs, batch=nl.batch, duration_us=10.0, record=nl.record, noise_seed=(1, 0))
        return raw

    reference = run(Capacity())
    small = run(Capacity(ring_events_per_slot=1, events_per_step=1, spikes=1))
    assert small.buffer_growth["ring"] >= reference.buffer_growth["ring"] + 3
    assert small.buffer_growth["events"] >= 1
    assert small.buffer_growth["spikes"] > reference.buffer_growth["spikes"]
    assert sum(len(v[0]) for v in reference.spikes.values()) > 100
    assert small.offered_events == reference.offered_events
    for name, arrays in reference.spikes.items():
        for a, b in zip(arrays, small.spikes[name]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("profile", ["ideal", "bss2"])
def test_batch_split_across_threads_leaves_spikes_unchanged(profile):
    """A batch split across threads gives the spikes, link counters and event counts of the run in
    one piece, bit for bit: each sample keeps its own noise draws, calendar and link servers
    (bss2: membrane noise, threshold drift and congestible links on)."""
    from chip.emulator import Capacity, Emulator
    from chip.inputs import realize_input
    from chip.netlist import Record

    nl = layer_netlist(n_in=16, n_out=48, profile=profile, rate_hz=4e5, duration_us=30.0)
    host = HostInterface(nl)
    batch = 7
    inputs = {name: realize_input(source, batch, 30.0) for name, source in nl.inputs.items()}
    record = Record(spikes=("out",))  # membranes and sensors keep a run in one piece

    def run(threads, capacity=Capacity()):
        emulator = Emulator(host.mapped, host.die, host.state, capacity=capacity, threads=threads)
        return emulator.run(inputs, batch=batch, duration_us=30.0, record=record, noise_seed=(3, 1))

    one = run(1)
    assert one.threads == 1 and run(2).threads == 2
    assert sum(len(v[0]) for v in one.spikes.values()) > 100
    for other in (run(2), run(3), run(2, Capacity(ring_events_per_slot=1, events_per_step=1, spikes=1))):
        assert other.offered_events == one.offered_events and other.dropped_events == one.dropped_events
        assert [(s.offered, s.dropped, s.max_wait_us) for s in other.links] == \
            [(s.offered, s.dropped, s.max_wait_us) for s in one.links]
        for name, arrays in one.spikes.items():
            for a, b in zip(arrays, other.spikes[name]):
                np.testing.assert_array_equal(a, b)


def test_thread_count_from_the_environment(monkeypatch):
    from chip.errors import NetlistError

    host = HostInterface(layer_netlist(n_in=2, n_out=4, profile="ideal"))
    monkeypatch.setenv("CHIPCTL_THREADS", "1")
    assert host.threads == 1
    monkeypatch.setenv("CHIPCTL_THREADS", "3")
    assert host.threads == 3
    monkeypatch.setenv("CHIPCTL_THREADS", "two")
    with pytest.raises(NetlistError, match="CHIPCTL_THREADS='two' is not a whole number"):
        host.threads
