"""``benchmarks/train_yinyang.py --calibrate``: a partial calibration calibrates exactly the
parameters it names (a targets file's keys), and asking for it without ``--calibrated`` is one
line with exit 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from chip.host import HostInterface
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


@pytest.mark.parametrize("option", [["--calibrate", "tau_mem"], ["--respread", "1"]])
def test_calibration_options_without_calibrated_are_one_line_and_exit_2(option):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_yinyang.py"),
                           str(ROOT / "netlists" / "yinyang_bss2.yaml"), *option],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "--calibrated" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_respread_puts_back_a_fresh_spread_of_the_die_sigmas():
    import numpy as np

    from chip.calibration import Calibration
    from chip.netlist import load_netlist_text

    netlist = load_netlist_text("""
name: spread
duration: 10 us
chip: {profile: bss2, neurons_per_core: 256, die_seed: 3}
populations:
  a: {size: 200, params: {v_threshold: 1, tau_mem: 12 us}}
""")
    chip = netlist.chip
    probe = HostInterface(netlist)
    codes = {}
    for name in ("v_threshold", "tau_mem_us"):
        code = np.zeros(chip.total_neurons)
        code[probe.circuits("a")] = probe.read_codes("a", name)
        codes[name] = code
    cal = Calibration.for_chip(chip, targets={"v_threshold": 1.0, "tau_mem_us": 12.0}, codes=codes)
    same = train_yinyang.respread_calibration(cal, netlist, seed=3, scale=0.0)
    assert all(np.array_equal(same.codes[name], codes[name]) for name in codes)
    spread = train_yinyang.respread_calibration(cal, netlist, seed=3, scale=1.0)
    a = probe.circuits("a")
    probe.write_codes("a", "v_threshold", spread.codes["v_threshold"][a])
    volts = chip.v_model_zero_v + probe.read_params("a", "v_threshold") * (chip.v_model_one_v - chip.v_model_zero_v)
    sigma = chip.mismatch.sigma_of("v_threshold")
    assert abs(np.std(volts / volts.mean()) - sigma) < 0.25 * sigma
    probe.write_codes("a", "tau_mem_us", spread.codes["tau_mem_us"][a])
    tau = probe.read_params("a", "tau_mem_us")
    sigma = chip.mismatch.sigma_of("tau_mem_us")
    assert abs(np.std(tau / 12.0) - sigma) < 0.25 * sigma
    # circuits no population uses keep their codes
    unused = np.setdiff1d(np.arange(chip.total_neurons), a)
    assert np.array_equal(spread.codes["tau_mem_us"][unused], codes["tau_mem_us"][unused])
    # a fresh pattern, fixed by the seed: the same seed gives the same codes, another seed others
    again = train_yinyang.respread_calibration(cal, netlist, seed=3, scale=1.0)
    other = train_yinyang.respread_calibration(cal, netlist, seed=4, scale=1.0)
    assert np.array_equal(again.codes["tau_mem_us"], spread.codes["tau_mem_us"])
    assert not np.array_equal(other.codes["tau_mem_us"], spread.codes["tau_mem_us"])
    assert spread.made_by["respread"]["scale"] == 1.0
