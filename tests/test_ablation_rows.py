"""The ablation benchmark's rows switch off exactly what they say (benchmarks/ablation.py)."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("ablation", ROOT / "benchmarks" / "ablation.py")
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)

NETLIST = str(ROOT / "netlists" / "yinyang_bss2.yaml")


#: the profile fields each row changes from ``all`` and the switches it leaves on (None: all of them)
CHANGED = {
    "all": (set(), None),
    "no_mismatch": ({"mismatch"}, None),
    "no_noise": ({"noise_membrane"}, None),
    "effects_off": ({"nonidealities", "mismatch", "noise_membrane"}, set()),
    "effects_off_float_weights": ({"nonidealities", "mismatch", "noise_membrane", "weight_bits"}, set()),
    "only_noise_drift": ({"nonidealities", "mismatch"}, {"batch_drift"}),
    "no_noise_drift": ({"nonidealities", "noise_membrane"}, None),
}


@pytest.mark.parametrize("row", list(ablation.ROWS))
def test_each_row_changes_only_its_effect(row, tmp_path):
    base = ablation._netlist(NETLIST, "all", 2, None, str(tmp_path))
    nl = ablation._netlist(NETLIST, row, 2, None, str(tmp_path))
    assert nl.chip.die_seed == nl.chip.noise_seed == 2 and nl.train["seed"] == 2
    assert nl.projections["in_hidden"].weights.seed == base.projections["in_hidden"].weights.seed == 201
    if row in ("ideal", "ideal_6bit"):
        assert nl.chip.name == "ideal"
        assert nl.chip.weight_bits == (6 if row == "ideal_6bit" else None)
        assert nl.chip.nonidealities.off and nl.chip.mismatch.off and nl.chip.noise_membrane == 0
        return
    changed = {f.name for f in dataclasses.fields(base.chip) if getattr(base.chip, f.name) != getattr(nl.chip, f.name)}
    expected, left_on = CHANGED.get(row, ({"nonidealities"}, None))
    assert changed == expected
    if "mismatch" in changed:
        assert nl.chip.mismatch.off
    if "noise_membrane" in changed:
        assert nl.chip.noise_membrane == 0
    if "weight_bits" in changed:
        assert nl.chip.weight_bits is None
    switches = nl.chip.nonidealities
    on = {f.name for f in dataclasses.fields(switches) if getattr(switches, f.name)}
    off = {f.name for f in dataclasses.fields(switches) if not getattr(switches, f.name)}
    if left_on is not None:
        assert on == left_on
    elif "nonidealities" in changed:
        assert off == {k for k, v in ablation.ROWS[row][1]["nonidealities"].items() if not v}


class _Stop(Exception):
    pass


@pytest.mark.parametrize("row", ["no_saturation", "no_setup_variation"])
def test_calibrated_rows_calibrate_their_own_chip(row, tmp_path, monkeypatch):
    """``--calibrated`` calibrates the die the row trains on — with the row's effect off — not the
    netlist's full chip (a calibration's identity does not name these switches, so a calibration
    of the other chip would be accepted silently)."""
    import rules.calibration

    seen = []

    def calibrate_die(chip, **kwargs):
        seen.append((chip, kwargs["targets"]))
        raise _Stop

    monkeypatch.setattr(rules.calibration, "calibrate_die", calibrate_die)
    with pytest.raises(_Stop):
        ablation.train_one(NETLIST, row, 3, 1, str(tmp_path / "run"), calibrated=True)
    (chip, targets), = seen
    assert chip == ablation._netlist(NETLIST, row, 3, 1, str(tmp_path)).chip
    assert chip != ablation._netlist(NETLIST, "all", 3, 1, str(tmp_path)).chip and chip.die_seed == 3
    assert targets == {"v_leak": 0.0, "v_reset": 0.0, "v_threshold": 1.0, "tau_mem_us": 12.0,
                       "tau_syn_exc_us": 6.0, "tau_syn_inh_us": 6.0}
