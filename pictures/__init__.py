"""Pictures of runs, trainings and mappings: what ``chipctl plot``, ``run --plot`` and ``graph
--plot`` draw.

Job: turn what chipctl already writes or knows into figures — a run directory (``run.py``: spike
rasters, membrane traces as the ADC read them, rates, congested links), a mapping (``chipmap.py``: circuits and synapse rows per half, rows per
bus, the routing graph's load). Boundary: a client of the chip like the CLI — it reads output
files and ``chip.mapping``'s public result, never the emulator; it computes nothing
the summary or the mapping does not already say. matplotlib (the ``plot`` extra) is imported when
a picture is drawn, never when this package or its modules are imported (``style.py``).
"""

from __future__ import annotations

from .chipmap import chip_figure, plot_chip
from .run import load_run, plot_run, run_figure
from .style import FORMATS, MISSING, PlotError, available, use_agg

__all__ = ["FORMATS", "MISSING", "PlotError", "available", "use_agg", "require", "plot_path", "plot_run",
           "plot_chip", "run_figure", "chip_figure", "load_run"]


def require() -> None:
    """Raise the one-line PlotError now when matplotlib is missing (before a long run)."""
    from .style import mpl

    mpl()


def plot_path(directory, out=None, sample: int = 0):
    """Draw whatever ``directory`` holds: a run (``summary.json``). Returns the picture's path."""
    from pathlib import Path

    directory = Path(directory)
    if (directory / "summary.json").is_file():
        return plot_run(directory, out, sample=sample)
    if not directory.is_dir():
        raise PlotError(f"{directory}: no such directory")
    raise PlotError(f"{directory}: not a run (summary.json, from chipctl run --out)")

