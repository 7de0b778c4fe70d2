"""``benchmarks/yinyang_errors.py``: errors sorted by the first output spikes as the trainer decodes
them, and a missing checkpoint is one line with exit 2."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("yinyang_errors", ROOT / "benchmarks" / "yinyang_errors.py")
yinyang_errors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(yinyang_errors)

INF = np.inf


def test_errors_are_sorted_by_the_lead_of_the_first_spike():
    first = np.array([
        [1.0, 3.0, 4.0],      # right, lead 2.0
        [1.0, 1.05, INF],     # right, lead 0.05
        [1.2, 1.0, 5.0],      # wrong by 0.2
        [1.0, 1.0, 2.0],      # label 1: a tie, decoded to neuron 0 -> wrong by 0
        [INF, 3.0, 4.0],      # correct neuron silent
        [INF, INF, INF],      # no output spike at all
        [9.0, 2.0, 8.0],      # wrong by 7: confidently wrong
        [2.5, 2.0, INF],      # wrong by 0.5
    ])
    labels = np.array([0, 0, 0, 1, 0, 2, 0, 0])
    right, counts, lead = yinyang_errors.classify(first, labels)
    np.testing.assert_array_equal(right, [True, True, False, False, False, False, False, False])
    assert counts == {"correct_silent": 1, "no_output_spike": 1, "lead_lt_0.1us": 1, "lead_0.1_0.3us": 1,
                      "lead_0.3_1us": 1, "lead_ge_1us": 1, "correct_lead_le_0.1us": 1,
                      "correct_lead_0.1_0.3us": 0, "correct_lead_0.3_1us": 0}
    assert sum(counts[k] for k in yinyang_errors.ERROR_KINDS) == int((~right).sum())
    np.testing.assert_allclose(lead[[0, 1, 2, 3, 6]], [2.0, 0.05, -0.2, 0.0, -7.0])


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "yinyang_errors.py"),
                           str(ROOT / "netlists" / "yinyang_bss2.yaml"), str(tmp_path / "nothing"), "--passes", "0"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_checkpoint_is_reproduced_and_zero_passes_are_allowed(tmp_path):
    """The script puts a training's tested weights back on its die and gets the reported test
    accuracy again; ``--passes 0`` gives that and the quiet pass only."""
    from chip.netlist import load_netlist
    from rules.training import Trainer

    text = (ROOT / "netlists" / "yinyang_bss2.yaml").read_text()
    for old, new in [("  epochs: 45\n", "  epochs: 1\n  train_size: 128\n  test_size: 128\n  test_batch_size: 64\n"),
                     ("checkpoint: runs/yinyang_bss2", f"checkpoint: {tmp_path / 'ck'}"),
                     ("path: yinyang_batch_0to12.npz", f"path: {ROOT / 'netlists' / 'yinyang_batch_0to12.npz'}")]:
        assert old in text, old
        text = text.replace(old, new)
    netlist = tmp_path / "small.yaml"
    netlist.write_text(text)
    reported = Trainer(load_netlist(netlist)).fit()["test_accuracy"]
    row = yinyang_errors.diagnose(str(netlist), str(tmp_path / "ck"), passes=2)
    assert row["reported_test_accuracy"] == reported == row["reproduced_test_accuracy"]
    assert len(row["passes"]["accuracy"]) == 2 and 0.0 <= row["quiet"]["accuracy"] <= 1.0
    row = yinyang_errors.diagnose(str(netlist), str(tmp_path / "ck"), passes=0)
    assert row["reproduced_test_accuracy"] == reported and "passes" not in row
