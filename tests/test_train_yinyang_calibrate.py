"""``benchmarks/train_yinyang.py --calibrate``: a partial calibration calibrates exactly the
parameters it names (a targets file's keys), and asking for it without ``--calibrated`` is one
line with exit 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from chip.netlist import load_netlist
from rules.calibration import DEFAULT_TARGETS, targets_of_netlist

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("train_yinyang_cal", ROOT / "benchmarks" / "train_yinyang.py")
train_yinyang = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_yinyang)


@pytest.mark.parametrize("keys, parameters", [
    (None, tuple(DEFAULT_TARGETS)),
    (["v_leak", "v_reset", "v_threshold"], ("v_leak", "v_reset", "v_threshold")),
    (["tau_mem", "tau_syn"], ("tau_mem_us", "tau_syn_exc_us", "tau_syn_inh_us")),
    (["tau_syn_inh"], ("tau_syn_inh_us",)),
])
def test_calibrate_names_exactly_its_parameters(keys, parameters):
    assert train_yinyang.calibrated_parameters(keys) == parameters
    netlist = load_netlist(ROOT / "netlists" / "yinyang_bss2.yaml")
    targets = targets_of_netlist(netlist, train_yinyang.calibrated_parameters(keys))
    assert tuple(targets) == parameters
    assert all(targets[name] == DEFAULT_TARGETS[name] for name in parameters)


def test_calibrate_without_calibrated_is_one_line_and_exit_2():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_yinyang.py"),
                           str(ROOT / "netlists" / "yinyang_bss2.yaml"), "--calibrate", "tau_mem"],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "--calibrated" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
