"""A run's cost is estimated from the netlist and checked before anything is allocated: in
``validate``, before ``run`` and before every batch the host runs (chip.budget)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from chip.budget import BudgetError, Limits, check_run, estimate_run
from chip.host import HostInterface
from chip.netlist import load_netlist
from cli import app

ROOT = Path(__file__).parent.parent
SINGLE = (ROOT / "netlists/single_neuron.yaml").read_text()

POISSON = """\
name: poisson
duration: 10 s
chip: {profile: bss2}
populations:
  n: {size: 4}
inputs:
  p: {size: 50, type: poisson, rate: 1 MHz}
projections:
  d: {pre: p, post: n, weights: 0.1}
"""


def _write(tmp_path, text, name="n.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _one_line(result):
    out = result.output.strip()
    assert result.exit_code == 2, result.output
    assert "\n" not in out and "Traceback" not in out, out
    return out


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("text, line, field, words, limit", [
    (SINGLE.replace("duration: 60 us", "duration: 1000 s"), 5, "duration", "5e+09 steps of 0.2 us", None),
    (SINGLE.replace("duration: 60 us", "duration: 60 us\nbatch: 100000000"), 6, "batch", "batch 100000000", None),
    (POISSON, 7, "inputs.p.rate", "Poisson events", None),
    (SINGLE.replace("duration: 60 us", "duration: 20 s"), 33, "record.membrane.0", "membrane samples", "256M"),
])
def test_too_big_a_run_is_refused_before_it_starts_naming_the_field(tmp_path, monkeypatch, command, text, line,
                                                                    field, words, limit):
    if limit:
        monkeypatch.setenv("CHIPCTL_MAX_MEMORY", limit)
    path = _write(tmp_path, text)
    out = _one_line(CliRunner().invoke(app, [command, str(path)]))
    assert out.startswith(f"{path}:{line}: {field}: "), out
    assert words in out and "--force" in out, out


def test_force_and_the_environment_lift_the_limits(tmp_path, monkeypatch):
    path = _write(tmp_path, SINGLE.replace("duration: 60 us", "duration: 1000 s").split("record:")[0])
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 2
    assert CliRunner().invoke(app, ["validate", "--force", str(path)]).exit_code == 0
    monkeypatch.setenv("CHIPCTL_MAX_STEPS", "1e10")
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0
    monkeypatch.setenv("CHIPCTL_MAX_MEMORY", "lots")
    out = _one_line(CliRunner().invoke(app, ["validate", str(path)]))
    assert "CHIPCTL_MAX_MEMORY" in out


def test_limits_parse_sizes():
    limits = Limits.from_env({"CHIPCTL_MAX_MEMORY": "512M", "CHIPCTL_MAX_STEPS": "2e6"})
    assert limits.max_bytes == 512 * 2**20 and limits.max_steps == 2e6
    assert Limits.from_env({}).max_bytes == 4 * 2**30


def test_estimate_counts_steps_samples_and_events():
    nl = load_netlist(ROOT / "netlists/single_neuron.yaml")
    est = estimate_run(nl)
    assert est.steps == 300  # 60 us of 0.2 us steps
    parts = {p[0]: p for p in est.parts}
    # 4 input spikes, 35 CADC samples of one neuron (every 9 steps = 1.8 us)
    assert "4 input events" in parts["inputs.stimulus"][2]
    assert parts["record.membrane.0"][2].startswith("33.3 membrane samples")
    bigger = {p[0]: p[1] for p in estimate_run(nl, batch=10).parts}
    assert bigger["record.membrane.0"] > 7 * parts["record.membrane.0"][1]
    for key in ("batch", "inputs.stimulus"):
        assert bigger[key] == pytest.approx(10 * parts[key][1])


def test_the_host_checks_every_run_request():
    nl = load_netlist(ROOT / "netlists/single_neuron.yaml")
    host = HostInterface(nl)
    host.limits = Limits(max_bytes=1e6)
    with pytest.raises(BudgetError, match="batch: the run would need"):
        host.run(batch=10_000)
    assert host.runs_done == 0
    host.limits = Limits.none()
    host.run(batch=2, duration_us=10.0)
    with pytest.raises(BudgetError, match="steps"):
        check_run(nl, limits=Limits(max_steps=100))


@pytest.mark.slow
def test_a_long_run_with_nothing_recorded_stays_small_and_reports_progress(tmp_path):
    """10 s of hardware time (5e7 steps) of one neuron with nothing recorded: peak RSS under 300 MB
    (measured 208 MB), and progress lines on a stderr that is not a terminal. About a minute of CPU."""
    import os

    from tests.measure import run_chipctl

    text = SINGLE.replace("duration: 60 us", "duration: 10 s").split("record:")[0] + "record: {spikes: []}\n"
    path = _write(tmp_path, text)
    got = run_chipctl(["run", str(path)], cpu_limit_s=600, env={**os.environ, "CHIPCTL_PROGRESS": ""}, timeout=1800)
    assert got.returncode == 0, got.stderr
    assert got.peak_mb < 300, got.peak_mb
    assert "10000000.000 us emulated" in got.stdout
    progress = [l for l in got.stderr.splitlines() if l.startswith("chipctl: running single_neuron: ")]
    assert len(progress) >= 2, got.stderr
