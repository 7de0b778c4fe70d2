"""``benchmarks/train_yinyang.py --set``: a screen changes exactly the train entries it names,
never the netlist's own block, and bad input is one line with exit 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("train_yinyang", ROOT / "benchmarks" / "train_yinyang.py")
train_yinyang = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_yinyang)


def test_set_changes_only_the_named_entries():
    train = {"options": {"surrogate": {"loss": "max_ce", "beta": 10.0}}, "optimizer": {"lr": 0.005}, "epochs": 10}
    out = train_yinyang.apply_sets(train, ["train.options.surrogate.dt=0.6", "train.optimizer.lr=0.015",
                                           "train.options.surrogate.spike_informed=true", "train.options.new.x=[1, 2]"])
    assert out == {"options": {"surrogate": {"loss": "max_ce", "beta": 10.0, "dt": 0.6, "spike_informed": True},
                               "new": {"x": [1, 2]}},
                   "optimizer": {"lr": 0.015}, "epochs": 10}
    assert train == {"options": {"surrogate": {"loss": "max_ce", "beta": 10.0}}, "optimizer": {"lr": 0.005},
                     "epochs": 10}


@pytest.mark.parametrize("text, message", [
    ("options.dt=0.6", "expected train.KEY"),
    ("train.epochs", "expected train.KEY"),
    ("train.optimizer.lr=[1", "VALUE is not YAML"),
    ("train.epochs.x=1", "train.epochs is not a mapping"),
])
def test_bad_set_is_one_line_and_exit_2(text, message):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_yinyang.py"),
                           str(ROOT / "netlists" / "yinyang_surrogate_bss2.yaml"), "--set", text],
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
