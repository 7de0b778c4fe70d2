#!/usr/bin/env python3
"""Dead and bursting neurons and reconstruction MSE of spiking autoencoders over several chips:
each netlist is trained with ``chipctl train --json`` once per die seed (on ``bss2`` a die seed is a
draw of the fixed-pattern mismatch; the noise seed follows it), one training at a time, and the
final ``dead_fraction``, ``bursting_fraction`` and ``reconstruction_mse`` are summarized as mean and
sample standard deviation over the seeds.

    python benchmarks/autoencoder_health.py netlists/digits_ae_bss2.yaml netlists/digits_ae_bss2_noreg.yaml \\
        --seeds 1 2 3 --out runs/autoencoder

``--out`` keeps each run's JSON and checkpoint (with its reconstructions.png); ``--epochs``
overrides the netlists'. ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

KEYS = ("dead_fraction", "bursting_fraction", "reconstruction_mse")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("netlists", nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", default="runs/autoencoder")
    parser.add_argument("--chipctl", default=None, help="command to run chipctl (default: this Python's cli)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = args.chipctl.split() if args.chipctl else [sys.executable, "-c", "import cli; cli.app()"]
    summary = {}
    for netlist in args.netlists:
        runs = {}
        for seed in args.seeds:
            name = f"{Path(netlist).stem}-die{seed}"
            cmd = base + ["train", netlist, "--json", "--die-seed", str(seed), "--noise-seed", str(seed),
                          "--checkpoint", str(out / name)]
            if args.epochs:
                cmd += ["--epochs", str(args.epochs)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            result = json.loads(proc.stdout)
            (out / f"{name}.json").write_text(proc.stdout)
            runs[seed] = {k: result[k] for k in KEYS}
            runs[seed]["wall_s"] = result["wall_s"]
            if not args.json:
                print(f"{name}: " + ", ".join(f"{k} {result[k]:.4f}" for k in KEYS), flush=True)
        stats = {}
        for key in KEYS:
            values = np.array([r[key] for r in runs.values()])
            stats[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
        summary[netlist] = {"runs": runs, **stats}
        if not args.json:
            print(f"{netlist} over die seeds {args.seeds}: " + ", ".join(
                f"{k} {stats[k]['mean']:.4f} ± {stats[k]['std']:.4f}" for k in KEYS), flush=True)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
