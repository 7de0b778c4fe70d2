"""Sweeps: the spec and its errors, points that fail alone, resuming an interrupted sweep, the
in-process pool and a real Dask cluster giving the same rows point by point."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sweeps
from cli import app
from sweeps.spec import derived_seeds

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _spec(tmp_path: Path, body: str, name: str = "sweep.yaml") -> Path:
    shutil.copy(ROOT / "netlists/single_neuron.yaml", tmp_path / "single_neuron.yaml")
    shutil.copy(ROOT / "netlists/single_neuron.golden.yaml", tmp_path / "single_neuron.golden.yaml")
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


SMALL = """\
netlist: single_neuron.yaml
do: run
seed: 5
axes:
  die_seed: {count: 3}
  populations.neuron.params.tau_syn: [3 us, 5 us, -1 us]
metric: spikes.neuron
"""


def _rows(result_or_dir) -> list[dict]:
    """Rows without their wall time, in point order: what must not depend on scheduling."""
    if isinstance(result_or_dir, dict):
        rows = result_or_dir["rows"]
    else:
        rows = [json.loads(l) for l in (Path(result_or_dir) / "results.jsonl").read_text().splitlines() if l]
    return sorted(({k: v for k, v in r.items() if k != "wall_s"} for r in rows), key=lambda r: r["index"])


def _csv(path: Path) -> list[dict]:
    with open(path / "results.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(fh)]


# --- the spec -------------------------------------------------------------------------------------
def test_points_and_derived_seeds_come_from_the_spec_alone(tmp_path):
    spec = sweeps.read_spec(_spec(tmp_path, SMALL))
    points = spec.points()
    assert len(points) == 9 and [p.index for p in points] == list(range(9))
    seeds = [v for _, v in spec.axes][0]
    assert seeds == derived_seeds(5, "chip.die_seed", 3) and len(set(seeds)) == 3
    assert derived_seeds(6, "chip.die_seed", 3) != seeds  # another spec seed, other dies
    zipped = sweeps.read_spec(_spec(tmp_path, SMALL.replace("seed: 5", "seed: 5\ncombine: zip"), "z.yaml"))
    assert [dict(p.values) for p in zipped.points()] == [
        {"chip.die_seed": s, "populations.neuron.params.tau_syn": t} for s, t in zip(seeds, ["3 us", "5 us", "-1 us"])]


@pytest.mark.parametrize("body, where", [
    ("netlist: single_neuron.yaml\naxes: {die_seed: [1]}\nworkers: 2\n", "sweep.yaml:3: workers: unknown field"),
    ("netlist: nope.yaml\naxes: {die_seed: [1]}\n", "sweep.yaml:1: netlist: netlist file 'nope.yaml' not found"),
    ("netlist: single_neuron.yaml\ndo: fit\naxes: {die_seed: [1]}\n", "sweep.yaml:2: do: unknown action 'fit'"),
    ("netlist: single_neuron.yaml\naxes:\n  tau_syn: [1 us]\n", "sweep.yaml:3: axes.tau_syn: axis 'tau_syn' is neither"),
    ("netlist: single_neuron.yaml\naxes:\n  die_seed: [1, -2]\n", "sweep.yaml:3: axes.die_seed.1: must be >= 0"),
    ("netlist: single_neuron.yaml\naxes:\n  chip.mismatch.scale: {count: 3}\n",
     "sweep.yaml:3: axes.chip.mismatch.scale: a derived list is written {count: N} and only for seeds"),
    ("netlist: single_neuron.yaml\ncombine: zip\naxes:\n  die_seed: [1, 2]\n  noise_seed: [1]\n",
     "sweep.yaml:3: axes: combine: zip needs axes of equal length"),
    ("netlist: single_neuron.yaml\naxes:\n  die_seed: [1, 1]\n", "sweep.yaml:3: axes.die_seed: a value is listed twice"),
    ("netlist: single_neuron.yaml\naxes: {die_seed: [1]}\nmetric: spikes.hidden\n",
     "sweep.yaml:3: metric: unknown metric 'spikes.hidden' for do: run (did you mean 'spikes.neuron'?)"),
])
def test_a_bad_spec_is_one_line_naming_file_line_and_field(tmp_path, body, where):
    path = _spec(tmp_path, body)
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(tmp_path / where.split(":")[0])), result.stderr
    assert where.split(":", 1)[1] in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


# --- points ---------------------------------------------------------------------------------------
def test_a_point_with_an_invalid_override_fails_alone_with_its_error_in_the_table(tmp_path):
    spec = sweeps.read_spec(_spec(tmp_path, SMALL))
    result = sweeps.run_sweep(spec, tmp_path / "out")
    bad = [r for r in result["rows"] if r["status"] == "error"]
    assert [r["values"]["populations.neuron.params.tau_syn"] for r in bad] == ["-1 us"] * 3
    line = next(i for i, l in enumerate((tmp_path / "single_neuron.yaml").read_text().splitlines(), 1)
                if "tau_syn" in l)
    assert all(r["error"].endswith(f"single_neuron.yaml:{line}: populations.neuron.params.tau_syn: "
                                   "tau_syn_exc must be positive") for r in bad), bad[0]["error"]
    good = [r for r in result["rows"] if r["status"] == "ok"]
    assert len(good) == 6 and all(r["metrics"]["offered_events"] == 4 for r in good)
    # a longer synaptic time constant integrates the same input into more spikes, on every die
    for seed in {r["values"]["chip.die_seed"] for r in good}:
        by_tau = {r["values"]["populations.neuron.params.tau_syn"]: r["metrics"]["spikes.neuron"]
                  for r in good if r["values"]["chip.die_seed"] == seed}
        assert by_tau["3 us"] <= by_tau["5 us"]
    table = _csv(tmp_path / "out")
    assert [row["status"] for row in table] == ["ok", "ok", "error"] * 3
    assert table[2]["error"] == bad[0]["error"]
    summary = result["summary"]
    assert summary["ok"] == 6 and summary["errors"] == 3 and summary["metric"] == "spikes.neuron"
    assert {g["value"] for g in summary["axes"]["populations.neuron.params.tau_syn"]} == {"3 us", "5 us"}


def test_test_points_judge_the_netlists_expect_checks(tmp_path):
    spec = sweeps.read_spec(_spec(tmp_path, "netlist: single_neuron.yaml\ndo: test\naxes:\n"
                                            "  populations.neuron.params.tau_mem: [10 us, 40 us]\n"))
    rows = sweeps.run_sweep(spec, tmp_path / "out")["rows"]
    same, changed = (r["metrics"] for r in rows)
    assert same["passed"] is True and same["runs_passed"] == 2 and same["failures"] == 0
    assert changed["passed"] is False and changed["failures"] > 0 and changed["first_failure"]


def test_mismatch_scale_multiplies_every_sigma_of_the_chip(tmp_path):
    spec = sweeps.read_spec(_spec(tmp_path, "netlist: single_neuron.yaml\naxes:\n  chip.mismatch.scale: [0, 2]\n"))
    tasks = sweeps.tasks_of(spec, spec.points())
    off, doubled = (sweeps.point_netlist(t).chip.mismatch for t in tasks)
    base = sweeps.point_netlist(sweeps.Task(spec.netlist, "run", 0, "", ())).chip.mismatch
    assert off.off and doubled.tau_mem == pytest.approx(2 * base.tau_mem) and base.tau_mem > 0


# --- resume ---------------------------------------------------------------------------------------
class _KilledAfter(sweeps.LocalExecutor):
    """The in-process executor, interrupted (as by Ctrl-C) after ``n`` points have finished."""

    def __init__(self, n):
        super().__init__(1)
        self.n = n

    def run(self, tasks, fn=sweeps.run_point):
        for k, row in enumerate(super().run(tasks, fn)):
            if k == self.n:
                raise KeyboardInterrupt
            yield row


def test_an_interrupted_sweep_rerun_finishes_only_the_missing_points(tmp_path):
    spec = sweeps.read_spec(_spec(tmp_path, SMALL))
    whole = sweeps.run_sweep(spec, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        sweeps.run_sweep(spec, tmp_path / "cut", _KilledAfter(4))
    assert len(_rows(tmp_path / "cut")) == 4
    # and a kill in the middle of writing a row: the torn row is dropped, its point runs again
    with open(tmp_path / "cut/results.jsonl", "a") as fh:
        fh.write('{"index": 4, "key": "{\\"chip.die')
    ran = []
    rest = sweeps.run_sweep(spec, tmp_path / "cut", progress=lambda d, t, row: row and ran.append(row["index"]))
    assert rest["ran"] == 5 and rest["skipped"] == 4 and sorted(ran) == [4, 5, 6, 7, 8]
    assert _rows(rest) == _rows(whole) == _rows(tmp_path / "cut")
    assert _csv(tmp_path / "cut") == _csv(tmp_path / "whole")
    again = sweeps.run_sweep(spec, tmp_path / "cut")
    assert again["ran"] == 0 and _rows(again) == _rows(whole)


def test_a_results_folder_of_another_sweep_is_refused(tmp_path):
    spec = sweeps.read_spec(_spec(tmp_path, SMALL))
    sweeps.run_sweep(spec, tmp_path / "out")
    other = _spec(tmp_path, SMALL.replace("seed: 5", "seed: 6"), "other.yaml")
    result = CliRunner().invoke(app, ["sweep", str(other), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "holds results of another sweep" in result.stderr


# --- engines --------------------------------------------------------------------------------------
def _dies(task):
    if task.index == 1:
        import os as _os

        _os._exit(3)  # the worker process dies mid-point, as on an out-of-memory kill
    return sweeps.run_point(task)


def test_a_point_whose_worker_dies_is_an_error_row(tmp_path):
    spec = sweeps.read_spec(_spec(tmp_path, "netlist: single_neuron.yaml\naxes: {die_seed: [1, 2, 3, 4, 5, 6, 7]}\n"))
    rows = sorted(sweeps.LocalExecutor(2).run(sweeps.tasks_of(spec, spec.points()), fn=_dies), key=lambda r: r["index"])
    assert [r["index"] for r in rows] == list(range(7))  # every point has its row: the pool was replaced
    assert rows[1]["status"] == "error" and rows[1]["error"].startswith("the point's worker failed: BrokenProcessPool")
    # points the broken pool had in flight are error rows too; the points after them ran on a new pool
    assert all(r["status"] == "ok" for r in rows[4:]), rows


def test_a_local_pool_gives_the_in_process_rows(tmp_path):
    spec = sweeps.read_spec(_spec(tmp_path, SMALL))
    one = sweeps.run_sweep(spec, tmp_path / "one")
    two = sweeps.run_sweep(spec, tmp_path / "two", sweeps.LocalExecutor(2))
    assert _rows(one) == _rows(two)


def test_the_command_prints_a_summary_per_axis_and_json(tmp_path):
    path = _spec(tmp_path, SMALL)
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "9 points (9 run, 0 already done)" in result.stdout and "by chip.die_seed:" in result.stdout
    assert "tau_syn_exc must be positive" in result.stdout
    again = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--json"])
    out = json.loads(again.stdout)
    assert out["ran"] == 0 and out["skipped"] == 9 and out["summary"]["ok"] == 6


def test_without_dask_the_scheduler_option_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    path = _spec(tmp_path, SMALL)
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"),
                                      "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"chipctl: {sweeps.DASK_MISSING}"


def test_a_dask_cluster_gives_the_in_process_rows_point_by_point(tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    spec_path = _spec(tmp_path, SMALL)
    local = sweeps.run_sweep(sweeps.read_spec(spec_path), tmp_path / "local")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.wait_for_workers(2)
            workers = client.scheduler_info()["workers"]
        done = subprocess.run([str(BIN / "chipctl"), "sweep", str(spec_path), "--out", str(tmp_path / "dask"),
                               "--scheduler", cluster.scheduler_address, "--json"],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "CHIPCTL_PROGRESS": "0",
                                                                                "PATH": f"{BIN}:{os.environ['PATH']}"})
        assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["executor"].startswith("Dask cluster at tcp://127.0.0.1:") and len(workers) == 2
    assert _rows(out) == _rows(local) == _rows(tmp_path / "dask")
    assert _csv(tmp_path / "dask") == _csv(tmp_path / "local")


# --- the docs -------------------------------------------------------------------------------------
def _doc_blocks(lang: str) -> list[str]:
    text = (ROOT / "docs/sweeps.md").read_text(encoding="utf-8")
    section = text.split("## Worked example", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


def test_the_worked_example_runs_as_documented(tmp_path):
    (spec_text,), (command,), (shown,) = _doc_blocks("yaml"), _doc_blocks("bash"), _doc_blocks("text")
    shipped = ROOT / "examples/sweeps/single_neuron_dies.yaml"
    assert spec_text == shipped.read_text(encoding="utf-8")
    (tmp_path / "examples/sweeps").mkdir(parents=True)
    (tmp_path / "netlists").mkdir()
    shutil.copy(shipped, tmp_path / "examples/sweeps")
    for name in ("single_neuron.yaml", "single_neuron.golden.yaml"):
        shutil.copy(ROOT / "netlists" / name, tmp_path / "netlists")
    done = subprocess.run(["bash", "-c", command.strip()], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CHIPCTL_PROGRESS": "0", "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr

    def timeless(text):
        return re.sub(r" in [0-9.]+ s;", " in _ s;", text).strip()

    assert timeless(done.stdout) == timeless(shown)
    assert (tmp_path / "runs/single_neuron_dies/results.csv").is_file()


def test_plot_draws_the_metric_against_an_axis(tmp_path):
    pytest.importorskip("matplotlib")
    path = _spec(tmp_path, SMALL)
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--json",
                                      "--plot", "die_seed"])
    assert result.exit_code == 0, result.output
    picture = Path(json.loads(result.stdout)["plot"])
    assert picture.name == "sweep_spikes_neuron_vs_chip_die_seed.png" and picture.stat().st_size > 5000
    wrong = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--plot", "tau_syn"])
    assert wrong.exit_code == 2 and "--plot tau_syn: not an axis of this sweep" in wrong.stderr


def test_a_sweep_killed_mid_way_finishes_on_rerun_with_an_uninterrupted_runs_table(tmp_path):
    import signal
    import time

    path = _spec(tmp_path, "netlist: single_neuron.yaml\nseed: 2\naxes:\n  die_seed: {count: 150}\n")
    command = [str(BIN / "chipctl"), "sweep", str(path), "--out", str(tmp_path / "cut")]
    env = {**os.environ, "CHIPCTL_PROGRESS": "0"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    table = tmp_path / "cut/results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if table.exists() and table.read_text().count("\n") >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = table.read_text().count("\n")
    assert 3 <= finished < 150, finished  # killed mid-way, not before the first rows nor after the last
    rerun = subprocess.run(command + ["--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout)
    assert out["skipped"] == finished and out["ran"] == 150 - finished
    whole = sweeps.run_sweep(sweeps.read_spec(path), tmp_path / "whole")
    assert _rows(tmp_path / "cut") == _rows(whole) and _csv(tmp_path / "cut") == _csv(tmp_path / "whole")
