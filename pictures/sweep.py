"""A sweep's metric against one of its axes: every point, and the mean ± spread per value.

Job: ``sweep_figure(rows, axis, metric)`` draws what a sweep's results folder holds
(``results.jsonl``, one row per point) — each point of the axis value as a dot (other axes
jittered across it), the mean with its spread (sample standard deviation) as a bar, the worst
point marked; ``plot_sweep(directory, axis, metric)`` writes it beside the table. Numbers on the
axis are placed by value, anything else (`3 us`, profile names) in the spec's order. Boundary:
reads the rows; computes only means and spreads of what they say.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .style import PALETTE, PlotError, new_figure, save, styled

__all__ = ["sweep_figure", "plot_sweep", "sweep_picture_name"]


def sweep_picture_name(metric: str, axis: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{metric}_vs_{axis}")
    return f"sweep_{safe}.png"


def _rows(directory: Path) -> list[dict]:
    path = directory / "results.jsonl"
    if not path.is_file():
        raise PlotError(f"{directory}: no results.jsonl (a sweep's results folder, from chipctl sweep --out)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def sweep_figure(rows: list[dict], axis: str, metric: str, better: str = "higher", title: str = ""):
    ok = [r for r in rows if r["status"] == "ok" and isinstance(r["metrics"].get(metric), (int, float))
          and not isinstance(r["metrics"][metric], bool)]
    if not ok:
        raise PlotError(f"no point finished with a numeric {metric!r} to draw")
    if any(axis not in r["values"] for r in ok):
        raise PlotError(f"{axis!r} is not an axis of this sweep; axes: {', '.join(ok[0]['values'])}")
    values: list = []
    for r in sorted(ok, key=lambda r: r["index"]):
        if r["values"][axis] not in values:
            values.append(r["values"][axis])
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    position = {json.dumps(v): (float(v) if numeric else float(k)) for k, v in enumerate(values)}
    steps = sorted(position.values())
    width = min((b - a for a, b in zip(steps, steps[1:])), default=1.0) or 1.0
    fig = new_figure(5.5, 3.4)
    ax = fig.add_subplot()
    groups: dict[str, list[dict]] = {}
    for r in ok:
        groups.setdefault(json.dumps(r["values"][axis]), []).append(r)
    pick = min if better == "higher" else max
    for key, group in groups.items():
        x0 = position[key]
        ys = [r["metrics"][metric] for r in group]
        n = len(ys)
        xs = [x0 + width * 0.25 * ((k + 0.5) / n - 0.5) for k in range(n)]
        ax.scatter(xs, ys, s=14, color=PALETTE[0], alpha=0.7, zorder=2)
        mean = sum(ys) / n
        spread = math.sqrt(sum((y - mean) ** 2 for y in ys) / (n - 1)) if n > 1 else 0.0
        ax.errorbar([x0 + width * 0.2], [mean], yerr=[spread], fmt="s", color=PALETTE[1], capsize=3, zorder=3)
        worst = pick(ys)
        ax.scatter([xs[ys.index(worst)]], [worst], s=40, facecolors="none", edgecolors=PALETTE[3], zorder=4)
    if not numeric:
        ax.set_xticks([position[json.dumps(v)] for v in values], [str(v) for v in values])
    ax.set_xlabel(axis)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} against {axis}: points, mean ± spread (squares), worst (circled)")
    return fig


def plot_sweep(directory: str | os.PathLike, axis: str, metric: str, better: str = "higher",
               out: str | os.PathLike | None = None, title: str = "") -> Path:
    directory = Path(directory)
    target = Path(out) if out is not None else directory / sweep_picture_name(metric, axis)
    with styled():
        return save(sweep_figure(_rows(directory), axis, metric, better, title), target)
