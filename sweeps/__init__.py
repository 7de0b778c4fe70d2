"""Sweeps over dies, seeds and parameters: a spec, points, an executor, a results folder.

Job: :func:`run_sweep` reads nothing itself — it takes a checked :class:`SweepSpec`
(``sweeps.spec``), skips the points whose rows a results folder already holds
(``sweeps.results``), runs the others on an executor (``sweeps.executors``: in this process, a
local pool, or a Dask cluster) with :func:`sweeps.point.run_point`, appends each row as its point
finishes and returns every row with the per-axis summary. ``chipctl sweep`` is a thin front.

Boundary: above ``chip/`` like the rules and the regression tests; the chip through the host
interface only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from .executors import DASK_MISSING, DaskExecutor, Executor, LocalExecutor, make_executor
from .point import Task, point_netlist, run_point
from .results import ResultsDir, summarize
from .spec import ACTIONS, SHORTHANDS, Point, SweepSpec, read_spec

__all__ = ["run_sweep", "tasks_of", "read_spec", "SweepSpec", "Point", "Task", "run_point", "point_netlist", "Executor",
           "LocalExecutor", "DaskExecutor", "make_executor", "DASK_MISSING", "ResultsDir", "summarize", "ACTIONS", "SHORTHANDS"]


def tasks_of(spec: SweepSpec, points: list[Point]) -> list[Task]:
    return [Task(netlist=spec.netlist, action=spec.action, index=p.index, key=p.key, values=p.values,
                 epochs=spec.epochs) for p in points]


def run_sweep(spec: SweepSpec, out: str | Path, executor: Executor | None = None,
              progress: Callable[[int, int, dict | None], None] | None = None) -> dict:
    """Run the points of ``spec`` not yet in ``out``; ``progress(done, total, row)`` after each.
    Returns ``{"rows": [...] (point order), "ran": n, "skipped": n, "wall_s": s, "summary": {...}}``."""
    executor = executor or LocalExecutor(1)
    start = time.perf_counter()
    table = ResultsDir(out, spec)
    done = table.open()
    points = spec.points()
    keys = {p.key for p in points}
    rows = [row for key, row in done.items() if key in keys]
    todo = [p for p in points if p.key not in done]
    if progress is not None:
        progress(len(rows), len(points), None)
    for row in executor.run(tasks_of(spec, todo)):
        rows.append(row)
        table.append(row, rows)
        if progress is not None:
            progress(len(rows), len(points), row)
    rows.sort(key=lambda r: r["index"])
    table.finish(rows)
    return {"spec": spec.file, "netlist": spec.netlist, "action": spec.action, "executor": executor.name,
            "out": str(out), "points": len(points), "ran": len(todo), "skipped": len(points) - len(todo),
            "wall_s": time.perf_counter() - start, "rows": rows,
            "summary": summarize(rows, spec.axis_names, spec.metric, spec.better)}
