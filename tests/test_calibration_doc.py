"""docs/calibration.md runs as written: every command of its command blocks, in the page's order,
in a fresh directory holding the files the page shows (its targets file), and its netlist's chip
section with the calibration those commands wrote. The pycon examples run in tests/test_rules.py."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chip.calibration import Calibration
from chip.host import HostInterface
from chip.netlist import load_netlist
from cli import app

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "calibration.md"
COMMANDS = ("chipctl ", "python ")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


def _commands() -> list[str]:
    """The lines of every plain block that holds commands; a block mixing commands and other text
    fails, so that no command goes unchecked."""
    commands = []
    for block in _blocks(""):
        lines = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
        runnable = [line for line in lines if line.startswith(COMMANDS)]
        assert not runnable or len(runnable) == len(lines), f"a block mixes commands and output:\n{block}"
        commands += runnable
    return commands


def _script_parser(path: Path):
    spec = importlib.util.spec_from_file_location(f"doc_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


def test_the_page_has_commands_of_each_kind():
    commands = _commands()
    assert sum(c.startswith("chipctl calibrate") for c in commands) >= 2
    assert sum(c.startswith("python benchmarks/") for c in commands) >= 3


def test_every_command_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    targets = [b for b in _blocks("yaml") if "tau_mem:" in b and "chip:" not in b]
    assert len(targets) == 1, "the page shows one targets file"
    (tmp_path / "targets.yaml").write_text(targets[0])
    ran = 0
    for command in _commands():
        args = shlex.split(command)
        if args[0] == "chipctl":
            result = CliRunner().invoke(app, args[1:])
            assert result.exit_code == 0, f"{command}\n{result.output}"
            if "--json" in args:
                report = json.loads(result.stdout)
                assert report["circuits"] == 512 and all(row["unreached"] == 0 for row in report["parameters"].values())
            ran += 1
        elif args[:3] == ["python", "-m", "pytest"]:
            # the slow full-core test (minutes): here the files it names hold slow tests
            files = [REPO / a for a in args[3:] if a.endswith(".py")]
            assert files and "-m" in args and args[args.index("-m", 3) + 1] == "slow", command
            assert all("@pytest.mark.slow" in f.read_text(encoding="utf-8") for f in files), command
        else:
            # long benchmarks (minutes to half an hour): here the script exists and takes the
            # arguments as written; benchmarks/test_benchmarks.py runs the calibration benchmark
            assert args[0] == "python" and args[1].startswith("benchmarks/"), command
            script = REPO / args[1]
            assert script.is_file(), command
            _script_parser(script).parse_args(args[2:])
    assert ran >= 2
    # the page's netlist names the calibration the commands wrote
    cal = Calibration.load(tmp_path / "cal.yaml")
    chip = [b for b in _blocks("yaml") if b.startswith("chip:")]
    assert len(chip) == 1, "the page shows one chip section"
    netlist = tmp_path / "net.yaml"
    netlist.write_text("name: doc\nduration: 10 us\n" + chip[0]
                       + "populations:\n  p: {size: 4, params: {tau_mem: 12 us, tau_syn: 6 us}}\n")
    host = HostInterface(load_netlist(netlist))
    assert host.calibration is not None and host.calibration.die["seed"] == cal.die["seed"] == 1
    assert CliRunner().invoke(app, ["validate", str(netlist)]).exit_code == 0


@pytest.mark.parametrize("bad, message", [
    (["--die-seed", "1", "--targets", "missing.yaml", "--out", "cal.yaml"], "missing.yaml"),
    (["--profile", "ideal", "--out", "cal.yaml"], "the ideal chip has no mismatch"),
    (["--profile", "nope", "--out", "cal.yaml"], "unknown chip profile 'nope'"),
])
def test_bad_calibrate_arguments_are_one_line(tmp_path, monkeypatch, bad, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["calibrate", *bad])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
