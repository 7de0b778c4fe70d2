"""Smoke tests of the benchmark scripts: they run and print sane JSON. No wall-clock asserts.

Marked ``benchmark`` (deselected by default, and benchmarks/ is not in testpaths); run by hand:

    python -m pytest -m benchmark benchmarks/test_benchmarks.py -q -p no:cacheprovider
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BRIAN_PYTHON = os.environ.get("BRIAN_PYTHON", "brian2-venv/bin/python")

pytestmark = pytest.mark.benchmark


def _run_json(args: list[str], timeout: float) -> dict:
    proc = subprocess.run([sys.executable, *args, "--json"], capture_output=True, text=True,
                          timeout=timeout, cwd=str(HERE.parent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_bench_cuba_smoke():
    out = _run_json([str(HERE / "bench_cuba.py"), "--reps", "1", "--warmup", "0",
                     "--brian-python", BRIAN_PYTHON], timeout=900)
    chip = out["chipctl_median"]
    assert len(out["chipctl_runs"]) == 1
    assert chip["steps"] == 10000
    for key in ("process_wall_s", "wall_s", "run_wall_s", "per_step_us", "maxrss_mb", "cpu_s"):
        assert _positive(chip[key]), key
    assert chip["run_wall_s"] <= chip["wall_s"] <= chip["process_wall_s"] * 1.05
    assert 3.0 < chip["mean_rate_hz"] < 9.0  # CUBA fires at ~5.5 Hz
    if out["brian2_median"] is None:
        assert "skipped" in (out["brian2_note"] or "")
        return
    b2 = out["brian2_median"]
    assert b2["steps"] == 10000
    for key in ("process_wall_s", "first_run_s", "second_run_s", "per_step_us", "maxrss_mb"):
        assert _positive(b2[key]), key
    assert 3.0 < b2["mean_rate_hz"] < 9.0
    assert abs(chip["mean_rate_hz"] - b2["mean_rate_hz"]) < 1.5
    for value in out["ratios_chipctl_over_brian2"].values():
        assert _positive(value)


def test_bench_cuba_missing_brian_is_skipped():
    out = _run_json([str(HERE / "bench_cuba.py"), "--reps", "1", "--warmup", "0",
                     "--brian-python", "/nonexistent/python"], timeout=600)
    assert out["brian2_median"] is None and out["brian2_runs"] == []
    assert "skipped" in out["brian2_note"]
    assert out["ratios_chipctl_over_brian2"] == {}


def test_bench_calibration_smoke():
    out = _run_json([str(HERE / "bench_calibration.py"), "--die-seeds", "1"], timeout=900)
    (die,) = out["dies"]
    assert out["profile"] == "bss2" and die["die_seed"] == 1 and die["circuits"] == 512
    assert _positive(die["calibrate_s"]) and _positive(die["calibrate_and_report_s"]) and die["runs"] > 0
    assert {row["parameter"] for row in die["rows"]} == set(out["bars"])
    for row in die["rows"]:
        assert row["before_spread"] > row["after_spread"] > 0
        assert row["ratio"] <= out["bars"][row["parameter"]], row  # calix's bars, on a whole core
    assert not any(die["unreached"].values())


def test_bench_yinyang_smoke():
    out = _run_json([str(HERE / "bench_yinyang_inference.py"), "--batches", "8,64", "--repeats", "1",
                     "--min-samples", "64"], timeout=600)
    assert out["profile"] == "bss2" and out["mismatch_off"] is False
    assert out["channels"] == 25
    assert set(out["results"]) == {"8", "64"}
    for res in out["results"].values():
        assert _positive(res["samples_per_s"]) and _positive(res["per_step_us"])
        assert res["steps_per_run"] > 0
        assert res["hidden_spikes_per_sample"] > 0  # the network is driven at all
    # the peer figure is quoted, not measured here: it must say so and carry its setup
    peer = out["peer_figures_not_remeasured"]["snntorch"]
    assert "not re-measured" in peer["note"] and peer["setup"]
    assert all(_positive(v) for v in peer["samples_per_s"].values())


def test_ablation_smoke(tmp_path):
    """One epoch of two rows on a reduced data set: the script runs and prints its table."""
    import shutil

    netlist = tmp_path / "yy.yaml"
    text = (HERE.parent / "netlists" / "yinyang_bss2.yaml").read_text()
    text, n = re.subn(r"\n  epochs: \d+\n", "\n  epochs: 1\n  train_size: 64\n  test_size: 64\n", text)
    assert n == 1, "the netlist's train.epochs line moved: the smoke run would train the full recipe"
    netlist.write_text(text)
    for data in ("yinyang_batch.npz", "yinyang_batch_0to12.npz"):
        shutil.copy(HERE.parent / "netlists" / data, tmp_path / data)
    proc = subprocess.run([sys.executable, str(HERE / "ablation.py"), str(netlist), "--seeds", "1", "--rows",
                           "all,ideal", "--jobs", "2", "--out", str(tmp_path / "runs"),
                           "--json-out", str(tmp_path / "a.json")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| `all` |" in proc.stdout and "| `ideal` |" in proc.stdout
    rows = json.loads((tmp_path / "a.json").read_text())["rows"]
    assert set(rows) == {"all", "ideal"} and all(0.0 <= r["mean"] <= 1.0 for r in rows.values())


def test_bench_pictures_smoke():
    """The picture benchmark runs CUBA, draws it both ways and prints sane JSON (no timing asserts)."""
    out = _run_json([str(HERE / "bench_pictures.py"), "--reps", "1", "--warmup", "0", "--formats", "png", "svg"],
                    timeout=600)
    assert out["neurons"] == 4000 and out["spikes_drawn"] > 10000  # CUBA: ~22 000 spikes in 1 s
    assert set(out["formats"]) == {"png", "svg"}
    for res in out["formats"].values():
        for key in ("chipctl_s", "peer_s", "ratio_chipctl_over_peer", "chipctl_bytes", "peer_bytes"):
            assert _positive(res[key]), key
    # rasterized dots: chipctl's SVG holds images, the peer's one vector marker per spike
    assert out["formats"]["svg"]["chipctl_bytes"] < out["formats"]["svg"]["peer_bytes"]
    assert _positive(out["chipctl_plot_process_png_s"])


def test_bench_sensors_smoke():
    out = _run_json([str(HERE / "bench_sensors.py"), "--repeats", "1", "--batch", "2", "--duration-us", "50"],
                    timeout=600)
    assert set(out["median"]) == {"off", "timer", "sensors", "sensors_timer"}
    for case, res in out["median"].items():
        assert _positive(res["loop_s"]) and _positive(res["kernel_s"]), case
        assert res["steps"] == 250 and res["spikes_per_sample"] > 0
    assert out["median"]["sensors_timer"]["reads"] == 10 and out["median"]["sensors_timer"]["read_s"] > 0


def test_wt_alignment_smoke(tmp_path):
    svg = tmp_path / "angles.svg"
    out = _run_json([str(HERE / "wt_alignment.py"), "netlists/wt_stdp_bss2.yaml", "--seeds", "1", "--phases", "2",
                     "--set", "phase_duration=200", "--set", "period=100", "--svg", str(svg)], timeout=600)
    run = out["runs"][0]
    assert len(run["angles_deg"]) == 3 and set(run["final"]) == {"h1_h2", "h2_out"}
    assert all(0.0 <= a <= 180.0 for a in run["final"].values())
    assert svg.read_text().startswith("<svg")


def test_bench_surrogate_snntorch_smoke():
    args = [str(HERE / "bench_surrogate_snntorch.py"), "--batches", "1"]
    snn = os.environ.get("SNNTORCH_PYTHON")
    if snn:
        args += ["--snntorch-python", snn]
    out = _run_json(args, timeout=900)
    assert _positive(out["chipctl"]["s_per_batch"]) and _positive(out["chipctl_epoch_s"])
    assert _positive(out["eventprop_epoch_s"])
    assert set(out["chipctl"]["parts_s_per_batch"]) == {"chip_run", "observations", "tape", "backward",
                                                        "trainer_and_other"}
    if snn:
        assert _positive(out["ratio_chipctl_over_snntorch"])


def test_bench_surrogate_coarser_host_grid_smoke():
    out = _run_json([str(HERE / "bench_surrogate_snntorch.py"), "--batches", "1", "--dt", "0.6", "--skip-eventprop"],
                    timeout=900)
    assert out["dt_us"] == 0.6 and out["eventprop"] is None and out["eventprop_epoch_s"] is None
    assert _positive(out["chipctl"]["s_per_batch"]) and _positive(out["chipctl"]["parts_s_per_batch"]["tape"])


def test_autoencoder_baseline_smoke():
    out = _run_json([str(HERE / "autoencoder_baseline.py"), "netlists/digits_ae_bss2.yaml", "--seeds", "1", "2",
                     "--epochs", "3"], timeout=300)
    assert out["shape"] == [64, 32, 64] and out["epochs"] == 3
    runs = out["seeds"].values()
    assert all(len(r["history"]) == 3 and r["history"][-1] < r["history"][0] for r in runs)  # it learns
    assert 0 < out["mean_test_mse"] < out["mean_image_mse"] * 1.2


def test_bench_scale_smoke():
    """Two small sizes, chipctl only: the table's figures are there and sane, and a size larger
    than the ideal chip's 64 cores is run on more cores rather than refused."""
    out = _run_json([str(HERE / "bench_scale.py"), "--sizes", "200,400", "--reps", "1", "--warmup", "0",
                     "--skip-brian"], timeout=600)
    assert out["sizes"] == [200, 400] and set(out["results"]) == {"200", "400"}
    for res in out["results"].values():
        chip = res["median"]["chipctl"]
        assert "error" not in chip, chip
        for key in ("process_wall_s", "setup_s", "loop_s", "per_step_us", "maxrss_mb"):
            assert _positive(chip[key]), key
        assert chip["setup_s"] + chip["loop_s"] == pytest.approx(chip["process_wall_s"])
        assert chip["steps"] == 10000 and chip["spikes"] > 0
    assert out["results"]["400"]["median"]["chipctl"]["neurons"] == 400
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_scale", HERE / "bench_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    big = bench.scaled_netlist(40000, Path(__import__("tempfile").mkdtemp())).read_text()
    assert "size: 32000" in big and "size: 8000" in big and "cores: 79" in big
    # the full bss2 chip with its rows filled: every half keeps at most 17 rows free, one half none
    from chip.mapping import map_netlist
    from chip.netlist import load_netlist

    mapped = map_netlist(load_netlist(bench.bss2_rows_netlist(Path(__import__("tempfile").mkdtemp()))))
    used = [e + i for e, i in mapped.rows_used.values()]
    assert len(used) == 32 and max(used) == 256 and min(used) >= 239


JAXSNN_PYTHON = os.environ.get("JAXSNN_PYTHON", str(HERE.parent / "jaxsnn-venv" / "bin" / "python"))


@pytest.mark.skipif(not Path(JAXSNN_PYTHON).exists(), reason="no Python with jaxsnn (set JAXSNN_PYTHON)")
def test_bench_eventprop_jaxsnn_smoke(tmp_path):
    """Two small epochs of each, alternating: sane JSON, the epoch split into its parts, a ratio."""
    out_file = tmp_path / "bench.json"
    out = _run_json([str(HERE / "bench_eventprop_jaxsnn.py"), "--epochs", "2", "--train-size", "128",
                     "--test-size", "64", "--jaxsnn-python", JAXSNN_PYTHON, "--json-out", str(out_file)],
                    timeout=1200)
    assert json.loads(out_file.read_text()) == out
    assert [r["epoch"] for r in out["rows"]] == [1, 2]
    assert _positive(out["chipctl"]["median_epoch_s"]) and _positive(out["jaxsnn"]["median_epoch_s"])
    assert _positive(out["ratio_chipctl_over_jaxsnn"])
    assert set(out["chipctl"]["median_parts_s"]) == {"emulation", "backward", "encoding", "evaluation", "glue"}
    assert out["chipctl"]["train_samples"] == 128 and out["jaxsnn"]["train_samples"] == 128
    for row in out["rows"]:
        assert 0.0 <= row["chipctl"]["test_accuracy"] <= 1.0 and 0.0 <= row["jaxsnn"]["test_accuracy"] <= 1.0
