"""Angle curves of STDP weight transport on a netlist's feedback projections, over seeds.

The forward weights stay as the netlist initializes them; only the rule's alignment phases run
(background noise, sensors read on the plasticity timer, B written quantized). A seed is a die
(fixed-pattern mismatch, sensor spread), a noise stream and the rule's own generator. Prints one
line per seed and, with ``--json``, every phase's angles; ``--svg`` draws the curves.

    python benchmarks/wt_alignment.py netlists/wt_align_bss2.yaml --seeds 1 2 3 --phases 60 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chip.host import HostInterface  # noqa: E402
from chip.netlist import load_netlist  # noqa: E402
from rules.api import RuleContext  # noqa: E402
from rules.weight_transport import WeightTransport  # noqa: E402


def align(path: str, seed: int, phases: int, overrides: dict, profile: str | None = None) -> dict:
    nl = load_netlist(path, die_seed=seed, noise_seed=seed, profile=profile)
    host = HostInterface(nl)
    rule = WeightTransport()
    opts = {k: v[0] for k, v in rule.options.items()}
    opts.update(nl.train["options"]["weight_transport"], mode="stdp_alignment", learn_forward=False, **overrides)
    ctx = RuleContext(host=host, options=opts, rng=np.random.default_rng([seed, 0, 17]), train=nl.train,
                      input=nl.train["input"], output=nl.train["output"])
    rule.chipctl_configure(ctx)
    start = time.perf_counter()
    curve = [rule.angles(host)]
    rates = []
    for _ in range(phases):
        out = rule.run_phase(ctx)
        curve.append(out["angles_deg"])
        rates.append(out["rates_khz"])
    return {"seed": seed, "angles_deg": curve, "rates_khz": rates, "final": curve[-1],
            "ratio_b_w": {w: float(np.linalg.norm(rule.b_chip[b]) / np.linalg.norm(host.read_weights(w)))
                          for b, w in rule.pairs.items()},
            "wall_s": time.perf_counter() - start}


def svg(runs: list[dict], path: str, bar: float = 20.0) -> None:
    """Angle against phase, one line per seed and layer (no plotting library needed)."""
    w, h, m = 640, 400, 50
    n = max(len(r["angles_deg"]) for r in runs) - 1
    x = lambda i: m + (w - 2 * m) * i / max(n, 1)  # noqa: E731
    y = lambda a: h - m - (h - 2 * m) * a / 100.0  # noqa: E731
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<line x1="{m}" y1="{y(0)}" x2="{w - m}" y2="{y(0)}" stroke="black"/>',
             f'<line x1="{m}" y1="{y(0)}" x2="{m}" y2="{y(100)}" stroke="black"/>',
             f'<line x1="{m}" y1="{y(bar)}" x2="{w - m}" y2="{y(bar)}" stroke="gray" stroke-dasharray="4"/>',
             f'<text x="{w - m + 4}" y="{y(bar) + 4}">{bar:g}°</text>',
             f'<text x="{w / 2}" y="{h - 10}" text-anchor="middle">alignment phase</text>',
             f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle">angle W, Bᵀ (degrees)</text>']
    for t in (0, 30, 60, 90):
        parts.append(f'<text x="{m - 6}" y="{y(t) + 4}" text-anchor="end">{t}</text>')
    for t in range(0, n + 1, max(1, n // 6)):
        parts.append(f'<text x="{x(t)}" y="{y(0) + 16}" text-anchor="middle">{t}</text>')
    k = 0
    for run in runs:
        for layer in run["angles_deg"][0]:
            pts = " ".join(f"{x(i):.1f},{y(a[layer]):.1f}" for i, a in enumerate(run["angles_deg"]))
            c = colors[k % len(colors)]
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="1.5"/>')
            parts.append(f'<text x="{w - m - 150}" y="{m + 14 * k}" fill="{c}">seed {run["seed"]} {layer}: '
                         f'{run["final"][layer]:.1f}°</text>')
            k += 1
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("netlist")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--phases", type=int, default=60)
    ap.add_argument("--set", action="append", default=[], metavar="OPTION=JSON",
                    help="override a rule option, e.g. --set decay=0")
    ap.add_argument("--profile", help="run on another chip profile (e.g. ideal: no mismatch, noise or quantization)")
    ap.add_argument("--json", action="store_true", help="print every run as one JSON object")
    ap.add_argument("--svg", help="draw the angle curves into this file")
    args = ap.parse_args(argv)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    runs = []
    for seed in args.seeds:
        run = align(args.netlist, seed, args.phases, overrides, args.profile)
        runs.append(run)
        print(f"seed {seed}: " + "  ".join(f"{k} {a0:.1f}° -> {a:.1f}°" for (k, a), a0 in
                                            zip(run["final"].items(), run["angles_deg"][0].values()))
              + f"  ({run['wall_s']:.0f} s)", file=sys.stderr, flush=True)
    if args.svg:
        svg(runs, args.svg)
    if args.json:
        print(json.dumps({"netlist": args.netlist, "profile": args.profile, "phases": args.phases,
                          "overrides": overrides, "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
