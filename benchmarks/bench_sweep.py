#!/usr/bin/env python3
"""Sweep throughput: points per minute in this process and in a pool, and what a Dask cluster adds.

    python benchmarks/bench_sweep.py [--points 512] [--tiny-points 200] [--json]

1. Inference: ``chipctl sweep``'s machinery (``sweeps.run_sweep``) on netlists/yinyang_bss2.yaml,
   ``do: run`` (64 Yin-Yang test samples a point, 50 µs each), over ``--points`` derived die seeds,
   with 1 worker (in this process) and with 2 (a pool of two fresh processes; each loads the
   compiled step loop once, which is counted). Points per minute = points / wall time of the sweep.
2. Overhead of the Dask path: the same tiny sweep (netlists/single_neuron.yaml, ``--tiny-points``
   die seeds, a few ms a point) in this process and through a Dask ``LocalCluster`` with one worker
   process (loopback), started before the clock runs; overhead per point = (Dask wall − in-process
   wall) / points. Needs the ``cluster`` extra.

Every sweep writes into a fresh temporary folder; the spec is YAML text written there. The
in-process sweeps run one unmeasured point first so that loading the compiled loop is not counted
for them (the pool's processes load it inside the measurement: that is their real cost).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import sweeps  # noqa: E402
from sweeps import tasks_of  # noqa: E402


def _spec(folder: Path, netlist: Path, points: int, seed: int) -> sweeps.SweepSpec:
    path = folder / f"sweep_{netlist.stem}_{points}_{seed}.yaml"
    path.write_text(f"netlist: {netlist}\ndo: run\nseed: {seed}\naxes:\n  die_seed: {{count: {points}}}\n",
                    encoding="utf-8")
    return sweeps.read_spec(path)


def _timed(spec, out: Path, executor) -> dict:
    start = time.perf_counter()
    result = sweeps.run_sweep(spec, out, executor)
    wall = time.perf_counter() - start
    assert result["summary"]["errors"] == 0, [r["error"] for r in result["rows"] if r["error"]]
    return {"points": result["points"], "wall_s": wall, "points_per_min": 60 * result["points"] / wall,
            "executor": result["executor"], "median_point_s": sorted(r["wall_s"] for r in result["rows"])[
                len(result["rows"]) // 2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=512)
    ap.add_argument("--tiny-points", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
                 "loadavg_start": os.getloadavg(), "python": platform.python_version()}
    yinyang = REPO / "netlists" / "yinyang_bss2.yaml"
    tiny = REPO / "netlists" / "single_neuron.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # warm-up: the compiled loop loaded in this process, off the clock
        sweeps.run_sweep(_spec(tmp, yinyang, 1, 999), tmp / "warm", sweeps.LocalExecutor(1))
        spec = _spec(tmp, yinyang, args.points, 1)
        out["inference"] = {"netlist": "netlists/yinyang_bss2.yaml", "batch": 64,
                            "workers_1": _timed(spec, tmp / "w1", sweeps.LocalExecutor(1)),
                            "workers_2": _timed(spec, tmp / "w2", sweeps.LocalExecutor(2))}
        inf = out["inference"]
        inf["speedup_2_over_1"] = inf["workers_2"]["points_per_min"] / inf["workers_1"]["points_per_min"]

        tiny_spec = _spec(tmp, tiny, args.tiny_points, 2)
        local = _timed(tiny_spec, tmp / "tiny_local", sweeps.LocalExecutor(1))
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            out["dask"] = {"skipped": sweeps.DASK_MISSING}
        else:
            with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster:
                with Client(cluster) as client:  # the worker loads the compiled loop off the clock
                    client.submit(sweeps.run_point, tasks_of(tiny_spec, tiny_spec.points()[:1])[0],
                                  pure=False).result()
                executor = sweeps.DaskExecutor(cluster.scheduler_address)
                try:
                    dask = _timed(tiny_spec, tmp / "tiny_dask", executor)
                finally:
                    executor.close()
            out["dask"] = {"netlist": "netlists/single_neuron.yaml", "in_process": local, "dask_1_worker": dask,
                           "overhead_per_point_ms": 1000 * (dask["wall_s"] - local["wall_s"]) / args.tiny_points}
    out["loadavg_end"] = os.getloadavg()
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        inf = out["inference"]
        print(f"inference sweep ({args.points} points, yinyang_bss2, batch 64): "
              f"{inf['workers_1']['points_per_min']:.1f} points/min with 1 worker, "
              f"{inf['workers_2']['points_per_min']:.1f} with 2 (x{inf['speedup_2_over_1']:.2f})")
        if "overhead_per_point_ms" in out["dask"]:
            print(f"Dask path: {out['dask']['overhead_per_point_ms']:.1f} ms more per point than in-process "
                  f"({args.tiny_points} tiny points)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
