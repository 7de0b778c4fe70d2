"""Output paths are checked before the work, files are written whole or not at all, and every
file-system problem is one line naming the path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from chip.errors import OutputError
from chip.output import atomic_write, check_output_dir, check_output_file
from cli import app

ROOT = Path(__file__).parent.parent
NET = str(ROOT / "netlists/single_neuron.yaml")


def _one_line(result, starts):
    out = result.output.strip()
    assert result.exit_code == 2, result.output
    assert "\n" not in out and "Traceback" not in out, out
    assert out.startswith(starts), out
    return out


def test_out_naming_an_existing_file_is_refused_before_the_run(tmp_path, monkeypatch):
    target = tmp_path / "afile"
    target.write_text("mine")
    ran = []
    import chip.host

    monkeypatch.setattr(chip.host.HostInterface, "run", lambda *a, **k: ran.append(1))
    out = _one_line(CliRunner().invoke(app, ["run", NET, "--out", str(target)]), f"{target}: --out: ")
    assert "not a folder" in out
    assert not ran and target.read_text() == "mine"


def test_out_below_a_file_is_refused(tmp_path):
    target = tmp_path / "afile"
    target.write_text("")
    _one_line(CliRunner().invoke(app, ["run", NET, "--out", str(target / "sub")]), f"{target / 'sub'}: --out: ")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_out_in_an_unwritable_folder_is_refused():
    _one_line(CliRunner().invoke(app, ["run", NET, "--out", "/proc/chipctl-out"]), "/proc/chipctl-out: --out: ")


def test_graphml_into_a_missing_folder_or_onto_a_folder(tmp_path):
    missing = tmp_path / "missing" / "g.graphml"
    out = _one_line(CliRunner().invoke(app, ["graph", NET, "--graphml", str(missing)]), f"{missing}: --graphml: ")
    assert "no folder" in out
    _one_line(CliRunner().invoke(app, ["graph", NET, "--graphml", str(tmp_path)]), f"{tmp_path}: --graphml: ")


def test_train_checkpoint_naming_a_file(tmp_path):
    from tests.test_checkpoints import TRAIN_NETLIST

    net = tmp_path / "tiny.yaml"
    net.write_text(TRAIN_NETLIST)
    target = tmp_path / "ck"
    target.write_text("not a folder")
    _one_line(CliRunner().invoke(app, ["train", str(net), "--checkpoint", str(target)]), f"{target}: --checkpoint: ")
    _one_line(CliRunner().invoke(app, ["train", str(net), "--checkpoint", str(target), "--resume"]), f"{target}: is a file")
    _one_line(CliRunner().invoke(app, ["eval", str(net), "--checkpoint", str(target)]), f"{target}: is a file")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    _one_line(CliRunner().invoke(app, ["eval", str(net), "--checkpoint", str(bad)]), f"{bad / 'checkpoint.npz'}: ")
    assert target.read_text() == "not a folder"


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.npz"
    atomic_write(path, lambda fh: np.savez(fh, a=np.arange(3)))
    before = path.read_bytes()

    def boom(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"x.npz: cannot write \(No space left on device\)"):
        atomic_write(path, boom)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]  # no temporary left behind
    from chip.output import _UMASK

    assert path.stat().st_mode & 0o777 == 0o666 & ~_UMASK  # as open() makes files, not mkstemp's 0600


def test_checks_accept_what_can_be_written(tmp_path):
    check_output_dir(tmp_path / "new" / "deeper", "--out")
    check_output_dir(tmp_path, "--out")
    check_output_file(tmp_path / "g.graphml", "--graphml")
    assert list(tmp_path.iterdir()) == []  # checking creates nothing
