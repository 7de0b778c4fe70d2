"""Adaptive neurons for surrogate-gradient training: Yin et al.'s adaptive threshold and soft reset
on ``ideal`` against closed forms, the soft reset refused where the chip's circuit cannot do it,
and τ_adapt as a writable, quantized, mismatched parameter on ``bss2``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from chip.emulator.tables import effective_params
from chip.errors import NetlistError
from chip.host import HostInterface
from chip.netlist import dump_netlist, load_netlist_text, netlist_schema
from chip.profiles import PROFILES, RESET_CIRCUITS

TAU_MEM, TAU_SYN, TAU_ADAPT = 10.0, 5.0, 40.0
W, T_IN = 4.0, (2.0, 4.0, 6.0, 8.0)


def kappa(h, tau, tau_mem=TAU_MEM):
    h = np.maximum(h, 0.0)
    return tau / (tau - tau_mem) * (np.exp(-h / tau) - np.exp(-h / tau_mem))


def _netlist(profile="ideal", reset="soft", v_reset=-0.5, inc=0.4, model="ALIF", extra=""):
    adapt = f", tau_adapt: {TAU_ADAPT} us, adapt_increment: {inc}" if model == "ALIF" else ""
    times = ", ".join(f"{t} us" for t in T_IN)
    return f"""
name: yin
duration: 60 us
chip: {{profile: {profile}, clock: 0.001 ns, step: 0.1 us}}
populations:
  n:
    size: 1
    model: {model}
    reset: {reset}
    params: {{tau_mem: {TAU_MEM} us, tau_syn: {TAU_SYN} us, tau_ref: 0 us, v_reset: {v_reset},
              weight_full_scale: 10{adapt}}}
inputs:
  in: {{size: 1, type: spikes, times: [[{times}]]}}
projections:
  p: {{pre: in, post: n, weights: {W}}}
{extra}"""


# the ideal chip's values that bss2 cannot hold (no refractory time of 0, full scale at most 2,
# so no weight of 4)
BSS2_UNHELD, BSS2_HELD = "tau_ref: 0 us, v_reset: -0.5,\n              weight_full_scale: 10", \
    "tau_ref: 2 us, v_reset: -0.5,\n              weight_full_scale: 2"


def _bss2_held(text: str) -> str:
    return text.replace(BSS2_UNHELD, BSS2_HELD).replace(f"weights: {W}}}", "weights: 2}")


def _drive(t):
    """The membrane a unit-free LIF neuron would have from the inputs alone (no reset)."""
    return sum(W * kappa(t - s, TAU_SYN) for s in T_IN)


def _current(t):
    return sum(W * math.exp(-(t - s) / TAU_SYN) for s in T_IN if t >= s)


def test_yin_threshold_and_soft_reset_match_the_closed_form():
    """Yin et al. (θ = b0 + β·b, τ_adp db/dt = −b + spikes, u ← u − θ) with b0 = v_threshold = 1 and
    β/τ_adp = adapt_increment: after the first spike at t1 the membrane is the inputs' drive minus
    the drive it had at t1 carried on by the synaptic current (u ← u − θ leaves u at 0, the current
    goes on), and the second spike is where that meets θ(t) = 1 + inc·e^{−(t − t1)/τ_adp}."""
    inc = 0.4
    spikes = HostInterface(load_netlist_text(_netlist(inc=inc))).run().spikes["n"].time_us
    t1 = brentq(lambda t: _drive(t) - 1.0, 2.0, 20.0, xtol=1e-12)
    i1 = _current(t1)

    def after(t):  # membrane after a reset to 0 at t1: the current at t1 decays on, new inputs add
        late = sum(W * kappa(t - s, TAU_SYN) for s in T_IN if s > t1)
        return i1 * kappa(t - t1, TAU_SYN) + late

    def theta(t):
        return 1.0 + inc * math.exp(-(t - t1) / TAU_ADAPT)

    grid = np.linspace(t1 + 1e-6, 60.0, 60001)
    first = grid[np.argmax([after(t) - theta(t) >= 0 for t in grid])]
    t2 = brentq(lambda t: after(t) - theta(t), first - 0.01, first, xtol=1e-12)
    assert len(spikes) >= 2
    assert spikes[0] == pytest.approx(t1, abs=1e-5) and spikes[1] == pytest.approx(t2, abs=1e-5)
    # the adaptive threshold delays the second spike against the same neuron without adaptation
    plain = HostInterface(load_netlist_text(_netlist(inc=0.0))).run().spikes["n"].time_us
    assert plain[1] < spikes[1] - 0.1


def test_soft_reset_is_a_reset_to_the_leak_whatever_v_reset_says():
    """At the crossing the membrane is θ, so u ← u − θ leaves it at v_leak: the soft reset runs as
    a hard reset to v_reset = v_leak, and not as the hard reset to the netlist's v_reset."""
    soft = HostInterface(load_netlist_text(_netlist(reset="soft", v_reset=-0.5))).run().spikes["n"].time_us
    to_leak = HostInterface(load_netlist_text(_netlist(reset="hard", v_reset=0.0))).run().spikes["n"].time_us
    to_reset = HostInterface(load_netlist_text(_netlist(reset="hard", v_reset=-0.5))).run().spikes["n"].time_us
    np.testing.assert_array_equal(soft, to_leak)
    assert len(soft) > len(to_reset) or soft[1] < to_reset[1]


def test_soft_reset_is_refused_on_bss2_and_round_trips_on_ideal():
    with pytest.raises(NetlistError, match=r"populations.n.reset: soft reset \(u <- u - theta\) needs a chip whose "
                                           r"reset can subtract the threshold \(reset_circuit: subtractive\); the "
                                           r"bss2 neuron resets to the potential v_reset"):
        load_netlist_text(_netlist(profile="bss2").replace("clock: 0.001 ns, step: 0.1 us", ""))
    nl = load_netlist_text(_netlist())
    assert nl.populations["n"].reset == "soft"
    again = load_netlist_text(dump_netlist(nl))
    assert again.populations["n"].reset == "soft" and "reset: soft" in dump_netlist(nl)
    assert "reset: hard" not in dump_netlist(load_netlist_text(_netlist(reset="hard")))
    assert (PROFILES["bss2"].reset_circuit, PROFILES["ideal"].reset_circuit) == ("potential", "subtractive")
    assert netlist_schema()["$defs"]["chip"]["properties"]["reset_circuit"]["enum"] == list(RESET_CIRCUITS)
    assert HostInterface(nl).neuron_model("n") == {"model": "ALIF", "adaptation": "threshold", "reset": "soft"}
    with pytest.raises(NetlistError, match="populations.n.reset: unknown reset 'gentle'"):
        load_netlist_text(_netlist(reset="gentle"))


def test_a_soft_reset_changes_the_chips_identity_but_not_other_fingerprints():
    soft = HostInterface(load_netlist_text(_netlist())).export_config()
    hard = HostInterface(load_netlist_text(_netlist(reset="hard"))).export_config()
    assert soft["netlist"]["fingerprint"] != hard["netlist"]["fingerprint"]
    assert "reset" not in hard["netlist"]["populations"]["n"]


def test_tau_adapt_is_writable_quantized_and_mismatched_on_bss2():
    text = _netlist(profile="bss2", reset="hard").replace("clock: 0.001 ns, step: 0.1 us", "").replace(
        "    size: 1\n    model", "    size: 8\n    model")
    text = _bss2_held(text)
    host = HostInterface(load_netlist_text(text))
    want = np.linspace(30.0, 400.0, 8)
    got = host.write_params("n", "tau_adapt_us", want)
    # 10-bit codes, log-spaced over 1..2000 us: a step of (2000)^(1/1022) - 1 = 0.75 %
    assert np.all(np.abs(got / want - 1) <= 0.5 * (2000.0 ** (1 / 1022) - 1) + 1e-9) and not np.allclose(got, want)
    np.testing.assert_array_equal(host.read_params("n", "tau_adapt_us"), got)
    effective = effective_params(host.die, host.state)["tau_adapt_us"][:8]
    spread = effective / got - 1
    assert 0.02 < np.std(spread) < 0.3  # the die's 10 % spread of time constants
    assert host.neuron_model("n") == {"model": "ALIF", "adaptation": "current", "reset": "hard"}


def test_a_soft_reset_built_in_python_is_refused_by_a_bss2_host():
    import dataclasses

    from chip.errors import MappingError

    nl = load_netlist_text(_bss2_held(_netlist()))
    bss2 = dataclasses.replace(nl, chip=PROFILES["bss2"])
    with pytest.raises(MappingError, match="populations.n.reset: population 'n': soft reset"):
        HostInterface(bss2)
