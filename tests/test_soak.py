"""Training survives being killed anywhere, and one checkpoint folder has one trainer at a time.

The soak (``-m slow``) SIGKILLs ``chipctl train`` at random moments — at start-up, mid-batch,
mid-evaluation, while saving — at least 20 times, resuming each time from whatever checkpoint is
there: every checkpoint found is readable, and the final weights, codes, run counter, optimizer
state and history (wall times aside) equal those of an uninterrupted run."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from rules.training.checkpoints import CHECKPOINT_FILE, checkpoint_lock, load_checkpoint
from tests.test_training import _tiny_netlist_file

ROOT = Path(__file__).resolve().parents[1]
CMD = [sys.executable, "-c", "import cli; cli.app()", "train"]


def test_a_second_train_on_the_same_checkpoint_folder_is_refused(tmp_path):
    (tmp_path / "n").mkdir()
    net = _tiny_netlist_file(tmp_path / "n", tmp_path / "ck")
    with checkpoint_lock(tmp_path / "ck"):
        # the folder is held (as by a train in progress): a second one is refused, not interleaved
        for extra in ([], ["--resume"]):
            result = CliRunner().invoke(app, ["train", str(net), "--epochs", "1", *extra])
            assert result.exit_code == 2, result.output
            out = result.output.strip()
            assert "\n" not in out and out.startswith(f"{tmp_path / 'ck'}: another chipctl train (pid "), out
        assert not (tmp_path / "ck" / CHECKPOINT_FILE).exists()


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from rules.training.checkpoints import "
                               "checkpoint_lock\nwith checkpoint_lock(sys.argv[1]):\n print('held', flush=True)\n"
                               " time.sleep(60)", str(tmp_path / "ck")], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    from chip.errors import CheckpointError

    with pytest.raises(CheckpointError, match=rf"pid {holder.pid}\)"):
        with checkpoint_lock(tmp_path / "ck"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with checkpoint_lock(tmp_path / "ck"):
        pass


def _final(ck: Path) -> dict:
    return load_checkpoint(ck)


def _without_wall(history_json: str) -> list[dict]:
    return [{k: v for k, v in h.items() if "wall" not in k} for h in json.loads(history_json)]


def _assert_same_training(a: dict, b: dict) -> None:
    assert int(a["epoch"]) == int(b["epoch"])
    assert int(a["chip"]["runs_done"]) == int(b["chip"]["runs_done"])
    for proj, saved in a["chip"]["projections"].items():
        for key in ("weights", "exc_codes", "inh_codes"):
            np.testing.assert_array_equal(saved[key], b["chip"]["projections"][proj][key], err_msg=f"{proj} {key}")
    for group in ("master", "adam_m", "adam_v"):
        assert a[group].keys() == b[group].keys()
        for key in a[group]:
            np.testing.assert_array_equal(a[group][key], b[group][key], err_msg=f"{group} {key}")
    assert int(a["adam_t"]) == int(b["adam_t"])
    assert _without_wall(a["history_json"]) == _without_wall(b["history_json"])


@pytest.mark.slow
def test_kill_anywhere_soak(tmp_path):
    """At least 20 SIGKILLs at random moments (seeded), resumed each time; the end equals an
    uninterrupted run's. A few minutes."""
    (tmp_path / "straight").mkdir()
    straight = _tiny_netlist_file(tmp_path / "straight", tmp_path / "straight_ck")
    t0 = time.time()
    subprocess.run(CMD + [str(straight)], check=True, capture_output=True, cwd=ROOT)
    uninterrupted_s = time.time() - t0

    (tmp_path / "killed").mkdir()
    net = _tiny_netlist_file(tmp_path / "killed", tmp_path / "killed_ck")
    ck = tmp_path / "killed_ck"
    rng = random.Random(20261130)
    kills, attempts, epochs_seen = 0, 0, []
    while True:
        attempts += 1
        assert attempts < 200, f"no end after {attempts} starts ({kills} kills)"
        resume = (ck / CHECKPOINT_FILE).exists()
        proc = subprocess.Popen(CMD + [str(net)] + (["--resume"] if resume else []), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kills >= 20:
            _, err = proc.communicate(timeout=1800)
            assert proc.returncode == 0, err
            break
        # anywhere from start-up to the end of a whole run
        wait = rng.uniform(0.0, 1.2 * uninterrupted_s)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr.read()
        proc.stderr.close()
        if (ck / CHECKPOINT_FILE).exists():
            saved = load_checkpoint(ck)  # never unreadable, whenever the kill came
            epochs_seen.append(int(saved["epoch"]))
        if proc.returncode == 0 and kills < 20:
            # finished before its kill: start over from scratch to keep killing
            for f in ck.iterdir():
                f.unlink()
    assert kills >= 20
    assert max(epochs_seen, default=0) >= 1, epochs_seen  # the kills did not all land before a checkpoint
    assert not list(ck.glob("*.tmp")) and not list(ck.glob(".*.tmp"))
    _assert_same_training(_final(tmp_path / "straight_ck"), _final(ck))
    print(f"soak: {kills} kills over {attempts} starts, checkpoint epochs seen {epochs_seen}, "
          f"uninterrupted run {uninterrupted_s:.1f} s")


def test_a_save_interrupted_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """Interrupted inside the write (an exception; a SIGKILL cannot clean up, see below): the old
    checkpoint stays whole and the half-written temporary is gone."""
    import rules.training.checkpoints as checkpoints

    checkpoints.save_checkpoint(tmp_path, {"epoch": 1, "w": np.arange(4.0)})
    before = (tmp_path / CHECKPOINT_FILE).read_bytes()

    def half_then_interrupt(fh, **arrays):
        fh.write(before[: len(before) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.np, "savez", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save_checkpoint(tmp_path, {"epoch": 2, "w": np.arange(4.0)})
    monkeypatch.undo()
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_FILE]
    assert int(load_checkpoint(tmp_path)["epoch"]) == 1


def test_the_next_holder_clears_what_a_killed_save_left(tmp_path):
    """A SIGKILL inside the write leaves its temporary file; the next trainer on the folder (which
    holds the lock, so nobody else is writing) removes it."""
    tmp_path.joinpath(f".{CHECKPOINT_FILE}.k3j4x.tmp").write_bytes(b"half")
    with checkpoint_lock(tmp_path):
        assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
