"""``chipctl sweep``: run a sweep spec's points and summarise them per axis.

A thin shell over ``sweeps`` (spec, executors, results folder); registered on the main app by
``register``. Dask is imported only with ``--scheduler``; without it installed that says so in one
line (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

import typer

__all__ = ["register"]


def _value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def print_summary(out: dict, echo: Callable[[str], None]) -> None:
    summary = out["summary"]
    echo(f"{out['spec']}: {out['points']} points ({out['ran']} run, {out['skipped']} already done) on "
         f"{out['executor']} in {out['wall_s']:.1f} s; {summary['ok']} ok, {summary['errors']} failed")
    metric = summary["metric"]
    if metric is None:
        echo("  no numeric metric to summarise")
    else:
        worst = "lowest" if summary["better"] == "higher" else "highest"
        overall = summary["overall"]
        if overall.get("n"):
            echo(f"  {metric}: mean {overall['mean']:.4g}, spread {overall['spread']:.3g}, {worst} "
                 f"{overall['worst']:.4g} at {json.dumps(overall['worst_point'])}")
        for axis, groups in summary["axes"].items():
            echo(f"  by {axis}:")
            width = max([len(_value(g["value"])) for g in groups] + [5])
            for g in groups:
                if g.get("n"):
                    echo(f"    {_value(g['value']):<{width}}  n {g['n']:>3}  mean {g['mean']:.4g}  "
                         f"spread {g['spread']:.3g}  {worst} {g['worst']:.4g}")
    for row in out["rows"]:
        if row["status"] != "ok":
            echo(f"  point {row['index']} {json.dumps(row['values'])}: {row['error']}")
    echo(f"  table: {out['out']}/results.csv, {out['out']}/results.jsonl")
    if out.get("plot"):
        echo(f"  drew {out['plot']}")


def register(app: typer.Typer, guard: Callable, progress_bar: Callable) -> None:
    """Add the command to ``app``; ``guard`` turns chipctl errors into one line and exit 2,
    ``progress_bar(label)`` makes the CLI's progress display."""

    @app.command("sweep")
    def sweep(spec: Path = typer.Argument(..., help="Sweep spec (YAML): netlist, axes, what each point does."),
              out: Path = typer.Option(..., "--out", help="Results folder (rerun into it to finish missing points)."),
              workers: int = typer.Option(1, "--workers", min=1, help="Processes on this machine (1: this process)."),
              scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address "
                                                      "(tcp://HOST:PORT): run the points on that cluster."),
              plot: Optional[str] = typer.Option(None, "--plot", help="Also draw the metric against this axis "
                                                 "(a netlist path or die_seed, noise_seed, profile) into DIR."),
              as_json: bool = typer.Option(False, "--json", help="Print the summary (and every row) as JSON.")):
        """Run a netlist over die seeds, noise seeds, profiles and parameter values; one row per point."""

        def body():
            import sweeps

            parsed = sweeps.read_spec(spec)
            if scheduler is not None and workers != 1:
                _conflict()
            axis = None
            if plot is not None:
                import pictures

                pictures.require()  # before the sweep, not after it
                axis = sweeps.SHORTHANDS.get(plot, plot)
                if axis not in parsed.axis_names:
                    _fail_axis(plot, parsed.axis_names)
            executor = sweeps.make_executor(workers, scheduler)
            bar = progress_bar(f"sweep {spec.name}")

            def progress(done, total, row):
                bar(done / total if total else 1.0, f"{done}/{total}"
                    + (f", last: point {row['index']} {row['status']}" if row else ""))

            try:
                result = sweeps.run_sweep(parsed, out, executor, progress)
            finally:
                bar.close()
                executor.close()
            if axis is not None and result["summary"]["metric"] is not None:
                from pictures.style import use_agg
                from pictures.sweep import plot_sweep

                use_agg()
                result["plot"] = str(plot_sweep(out, axis, result["summary"]["metric"], parsed.better,
                                                title=f"{parsed.description or spec.name}"))
            if as_json:
                typer.echo(json.dumps(result, sort_keys=True, default=str))
            else:
                print_summary(result, typer.echo)

        guard(body)


def _fail_axis(name, axes):
    from chip.errors import ChipctlError

    raise ChipctlError(f"--plot {name}: not an axis of this sweep; its axes: {', '.join(axes)}")


def _conflict():
    from chip.errors import ChipctlError

    raise ChipctlError("--workers is for this machine; with --scheduler the cluster's workers run the points")
