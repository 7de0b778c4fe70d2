"""Smoke tests of the benchmark scripts: they run and print sane JSON. No wall-clock asserts.

Marked ``benchmark`` (deselected by default, and benchmarks/ is not in testpaths); run by hand:

    python -m pytest -m benchmark benchmarks/test_benchmarks.py -q -p no:cacheprovider
"""
from __future__ import annotations

import json
import math
import os
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


def test_autoencoder_baseline_smoke():
    out = _run_json([str(HERE / "autoencoder_baseline.py"), "netlists/digits_ae_bss2.yaml", "--seeds", "1", "2",
                     "--epochs", "3"], timeout=300)
    assert out["shape"] == [64, 32, 64] and out["epochs"] == 3
    runs = out["seeds"].values()
    assert all(len(r["history"]) == 3 and r["history"][-1] < r["history"][0] for r in runs)  # it learns
    assert 0 < out["mean_test_mse"] < out["mean_image_mse"] * 1.2
