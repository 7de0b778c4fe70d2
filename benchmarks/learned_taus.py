#!/usr/bin/env python3
"""Where the learned time constants went: the distributions of a population's τ_mem and τ_adapt
as read back from trained chips (checkpoints) against the netlist's initial values.

    python benchmarks/learned_taus.py netlists/memory_alif_bss2.yaml runs/memory/memory_alif_bss2-seed*

Reads each checkpoint's chip configuration (the nominal values of the codes the training wrote —
what ``host.read_params`` returns on that chip) and prints, per parameter, the initial value and
the 10th / 50th / 90th percentiles and mean over the population's neurons, per checkpoint and
pooled. ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

PARAMS = ("tau_mem_us", "tau_adapt_us")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("netlist")
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--population", default="hidden")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from chip.host import HostInterface
    from chip.netlist import load_netlist
    from rules.training.checkpoints import load_checkpoint

    nl = load_netlist(args.netlist)
    host = HostInterface(nl)
    adaptive = nl.populations[args.population].model == "ALIF"
    params = PARAMS if adaptive else PARAMS[:1]
    initial = {p: host.read_params(args.population, p) for p in params}
    out = {"netlist": args.netlist, "population": args.population,
           "initial": {p: float(np.mean(v)) for p, v in initial.items()}, "checkpoints": {}, "pooled": {}}
    pooled = {p: [] for p in params}
    for ck in args.checkpoints:
        values = load_checkpoint(ck)["chip"]["populations"][args.population]["values"]
        row = {}
        for p in params:
            v = np.asarray(values[p], dtype=float)
            pooled[p].append(v)
            row[p] = _stats(v, initial[p])
        out["checkpoints"][ck] = row
    for p in params:
        out["pooled"][p] = _stats(np.concatenate(pooled[p]), np.tile(initial[p], len(pooled[p])))
    if args.json:
        print(json.dumps(out))
        return 0
    for p in params:
        print(f"{args.population}.{p}: initial {out['initial'][p]:.2f}")
        for ck, row in out["checkpoints"].items():
            s = row[p]
            print(f"    {ck}: p10 {s['p10']:.2f}  median {s['p50']:.2f}  p90 {s['p90']:.2f}  mean {s['mean']:.2f}")
        s = out["pooled"][p]
        print(f"    pooled: p10 {s['p10']:.2f}  median {s['p50']:.2f}  p90 {s['p90']:.2f}  mean {s['mean']:.2f}  "
              f"(moved up: {100 * s['frac_up']:.0f} % of neurons)")
    return 0


def _stats(v: np.ndarray, initial: np.ndarray) -> dict:
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    return {"p10": float(p10), "p50": float(p50), "p90": float(p90), "mean": float(np.mean(v)),
            "frac_up": float(np.mean(v > initial + 1e-9))}


if __name__ == "__main__":
    sys.exit(main())
