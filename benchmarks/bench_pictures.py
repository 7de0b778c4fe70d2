#!/usr/bin/env python3
"""How long drawing a 4000-neuron CUBA second takes: chipctl's run picture against plain matplotlib.

    python benchmarks/bench_pictures.py [--reps 3] [--warmup 1] [--json] [--run-dir DIR]
        [--netlist benchmarks/cuba_ideal.yaml] [--formats png svg pdf]

First ``chipctl run benchmarks/cuba_ideal.yaml --out DIR`` (4000 LIF, 1 s biological, ~22 000
spikes; skipped with ``--run-dir`` pointing at such a directory). Then, per format, unmeasured
warm-up drawings of each (``--warmup``: the first figure of a process loads fonts), and per
repetition, interleaved (chipctl first in even repetitions, the peer first in odd ones):

  (a) chipctl: ``pictures.plot_run(DIR, out)`` in this process — reading the run directory, both
      rasters (dense, so their dots are rasterized: one image per population in SVG/PDF), the
      population rates, and writing the file;
  (b) the peer, plain matplotlib as a simulator's tutorial draws a raster (Brian2's
      ``plot(t, i, '.k')``): one axes per population, every spike a vector marker, same figure
      width and dpi, the same spikes — and nothing else (no rates panel, no file reading).

Measured: wall time of each (median over the repetitions), the file's size, and the ratio
chipctl / peer (> 1: chipctl slower). Once, outside: ``chipctl plot DIR --out FILE.png`` as a
process, spawn to exit, which adds starting Python and importing matplotlib — what a user waits
for. matplotlib is imported before the first measurement, so neither side pays for it in (a)/(b).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_NETLIST = HERE / "cuba_ideal.yaml"
CHIPCTL = [sys.executable, "-c", "import sys; from cli import app; sys.argv[0] = 'chipctl'; app()"]


def chipctl(*args: str) -> float:
    """Run the chipctl CLI in a child process; its wall time (s). Exits on failure."""
    start = time.perf_counter()
    proc = subprocess.run(CHIPCTL + list(args), cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"chipctl {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return seconds


def peer(run_dir: Path, out: Path) -> None:
    """The raster as plain matplotlib draws it: every spike a vector marker."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with np.load(run_dir / "spikes.npz") as data:
        arrays = {k: data[k] for k in data.files}
    names = list(dict.fromkeys(k.rpartition("/")[0] for k in arrays))
    fig = Figure(figsize=(9.0, 2.5 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, i + 1)
        keep = arrays[f"{name}/batch"] == 0
        ax.plot(arrays[f"{name}/time_us"][keep], arrays[f"{name}/neuron"][keep], ".k", ms=1)
        ax.set_ylabel(f"{name} neuron")
    fig.axes[-1].set_xlabel("time (µs)")
    fig.savefig(out, dpi=120)


def timed(draw) -> float:
    start = time.perf_counter()
    draw()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3, help="measured repetitions per format (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured drawings of each per format (default 1)")
    p.add_argument("--netlist", type=Path, default=DEFAULT_NETLIST, help="netlist to run (default cuba_ideal.yaml)")
    p.add_argument("--run-dir", type=Path, default=None, help="an existing run directory: do not run")
    p.add_argument("--formats", nargs="+", default=["png", "svg", "pdf"], choices=["png", "svg", "pdf"])
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import pictures

    scratch = Path(tempfile.mkdtemp(prefix="bench_pictures_"))
    try:
        run_dir = args.run_dir
        run_s = None
        if run_dir is None:
            run_dir = scratch / "run"
            run_s = chipctl("run", str(args.netlist), "--out", str(run_dir))
        run = pictures.load_run(run_dir)
        spikes = sum(int((s["batch"] == 0).sum()) for s in run.spikes.values())
        neurons = sum(s["size"] for s in run.spikes.values())
        formats = {}
        for fmt in args.formats:
            ours, theirs = [], []
            mine, other = scratch / f"chipctl.{fmt}", scratch / f"peer.{fmt}"
            order = ((ours, lambda: pictures.plot_run(run_dir, mine)), (theirs, lambda: peer(run_dir, other)))
            for _ in range(args.warmup):
                for _, draw in order:
                    draw()
            for rep in range(args.reps):
                for times, draw in (order if rep % 2 == 0 else order[::-1]):
                    times.append(timed(draw))
            a, b = statistics.median(ours), statistics.median(theirs)
            formats[fmt] = {"chipctl_s": a, "peer_s": b, "ratio_chipctl_over_peer": a / b,
                            "chipctl_runs_s": ours, "peer_runs_s": theirs,
                            "chipctl_bytes": mine.stat().st_size, "peer_bytes": other.stat().st_size}
        process_s = chipctl("plot", str(run_dir), "--out", str(scratch / "cli.png"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    netlist = args.netlist.resolve()
    result = {"netlist": str(netlist.relative_to(REPO) if netlist.is_relative_to(REPO) else args.netlist), "neurons": neurons, "spikes_drawn": spikes, "reps": args.reps,
              "warmup": args.warmup,
              "matplotlib": matplotlib.__version__, "run_process_s": run_s,
              "chipctl_plot_process_png_s": process_s, "formats": formats}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{neurons} neurons, {spikes} spikes drawn, matplotlib {matplotlib.__version__}, "
          f"medians of {args.reps} interleaved repetitions")
    print(f"{'format':<7} {'chipctl [s]':>12} {'peer [s]':>10} {'ratio':>7} {'chipctl [KB]':>13} {'peer [KB]':>10}")
    for fmt, r in formats.items():
        print(f"{fmt:<7} {r['chipctl_s']:>12.2f} {r['peer_s']:>10.2f} {r['ratio_chipctl_over_peer']:>7.2f} "
              f"{r['chipctl_bytes'] / 1024:>13.0f} {r['peer_bytes'] / 1024:>10.0f}")
    print(f"chipctl plot RUN_DIR --out FILE.png as a process (Python start, imports, drawing): {process_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
