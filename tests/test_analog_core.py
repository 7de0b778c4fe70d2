"""The analog core's effects that a chip profile switches (on for bss2, off for ideal) against
closed forms or plain references, and their spelling in the netlist."""

from __future__ import annotations

import math

import pytest

from chip.die import Transfer
from chip.errors import NetlistError
from chip.netlist import dump_netlist, load_netlist_text, netlist_schema
from chip.profiles import ADAPTATION_MECHANISMS, PROFILES, Nonidealities


# ---------------------------------------------------------------------------------------------
# the netlist format
# ---------------------------------------------------------------------------------------------

BASE = "duration: 20 us\npopulations:\n  n: {size: 2, model: ALIF, params: {adapt_increment: 0.1}}\n"


def test_adaptation_mechanism_loads_round_trips_and_names_a_bad_value():
    nl = load_netlist_text(BASE + "chip: {profile: ideal, adaptation: current}\n")
    assert nl.chip.adaptation == "current"
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
