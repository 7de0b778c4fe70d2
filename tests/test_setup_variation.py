"""Setup-to-setup variation: each die draws one global synaptic-strength factor, one CADC slope and
one extra delay of the host's input events (switch ``setup_variation``), within the profile's
ranges; the emulator applies them where the chip has them and the host never sees them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from chip.die import Die
from chip.host import HostInterface
from chip.netlist import load_netlist_text
from chip.profiles import get_profile

BSS2 = get_profile("bss2")


def _profile(die_seed: int, on: bool = True, **changes):
    return BSS2.replace(die_seed=die_seed, nonidealities=dataclasses.replace(BSS2.nonidealities, setup_variation=on),
                        **changes)


def test_each_die_draws_its_factors_within_the_ranges():
    draws = [Die(_profile(seed)).setup() for seed in range(400)]
    weight = np.array([d.weight_gain for d in draws])
    trace = np.array([d.trace_gain for d in draws])
    delay = np.array([d.input_delay_us for d in draws])
    assert weight.min() >= 0.74 and weight.max() <= 1.35 and np.std(np.log(weight)) == pytest.approx(0.10, rel=0.15)
    assert trace.min() >= 0.84 and trace.max() <= 1.31 and np.std(np.log(trace)) == pytest.approx(0.08, rel=0.15)
    assert delay.min() >= 0.0 and delay.max() <= 0.08 and np.mean(delay) == pytest.approx(0.04, abs=0.005)
    assert Die(_profile(3)).setup() == Die(_profile(3)).setup()  # a die is a seed
    assert Die(_profile(3)).setup() != Die(_profile(4)).setup()
    assert dataclasses.astuple(Die(_profile(3, on=False)).setup()) == (1.0, 1.0, 0.0)
    assert dataclasses.astuple(Die(get_profile("ideal")).setup()) == (1.0, 1.0, 0.0)


NET = """
duration: 30 us
chip: {{profile: bss2, die_seed: {seed}, mismatch: off, noise: 0,
        nonidealities: {{setup_variation: {on}, cadc_offsets: off, cadc_noise: off, cadc_timing: off,
                        batch_drift: off, synaptic_saturation: off}}}}
populations:
  n: {{size: 1, params: {{tau_mem: 10 us, tau_syn: 5 us, v_leak: 0.2, weight_full_scale: 1.0}}}}
inputs:
  in: {{size: 1, type: spikes, times: [[2 us, 2.2 us, 2.4 us, 2.6 us, 2.8 us, 3 us]]}}
projections:
  p: {{pre: in, post: n, weights: 0.9}}
record:
  spikes: all
  membrane: [{{population: n, adc: cadc, period: 1.7 us}}]
"""


def _run(seed: int, on: bool):
    host = HostInterface(load_netlist_text(NET.format(seed=seed, on="on" if on else "off")))
    return host, host.run()


def test_the_factors_act_where_the_chip_has_them_and_the_host_sees_nominal_values():
    seed = next(s for s in range(1, 200) if Die(_profile(s)).setup().weight_gain > 1.1)  # a strong die
    draw = Die(_profile(seed)).setup()
    on_host, on = _run(seed, True)
    off_host, off = _run(seed, False)
    # the host reads the same nominal weights either way
    np.testing.assert_array_equal(on_host.read_weights("p"), off_host.read_weights("p"))
    # the CADC slope: the resting membrane (before the input) reads gain × its nominal code
    nominal_code = (0.45 + 0.3 * 0.2 - 0.06) / 0.0045
    assert on.traces[0].codes[0, 0, 0] == round(draw.trace_gain * nominal_code)
    assert off.traces[0].codes[0, 0, 0] == round(nominal_code)
    # a die over 10 % stronger: the same inputs make the neuron spike earlier than on the nominal
    # die, although its inputs arrive later by the die's delay
    first_on, first_off = on.spikes["n"].time_us, off.spikes["n"].time_us
    assert len(first_on) >= 1 and len(first_off) >= 1
    assert first_on[0] + 0.1 < first_off[0]


def test_the_input_delay_moves_every_spike_by_the_die_s_delay():
    """With the weight factor at 1 (range pinned), the die's input delay shifts the neuron's spike
    by that delay, to the clock."""
    pinned = dict(setup_weight_gain_range=(1.0, 1.0))
    seed = next(s for s in range(1, 200) if Die(_profile(s, **pinned)).setup().input_delay_us > 0.05)
    delay = Die(_profile(seed, **pinned)).setup().input_delay_us
    text = NET.replace("weights: 0.9", "weights: 1.0").replace(
        "chip: {{profile: bss2,", "chip: {{profile: bss2, setup_weight_gain_range: [1.0, 1.0],")
    on = HostInterface(load_netlist_text(text.format(seed=seed, on="on"))).run().spikes["n"].time_us
    off = HostInterface(load_netlist_text(text.format(seed=seed, on="off"))).run().spikes["n"].time_us
    assert len(on) == len(off) >= 1
    np.testing.assert_allclose(on - off, delay, atol=0.008 + 1e-9)  # within one clock cycle
