"""Pictures of runs, trainings and mappings: what ``chipctl plot``, ``run --plot``, ``graph --plot``
and ``train`` draw.

Job: turn what chipctl already writes or knows into figures — a run directory (``run.py``: spike
rasters, membrane traces as the ADC read them, rates, congested links), a training's history
(``training.py``: loss, accuracy, rule metrics and the figures rules contribute through the
``chipctl_figures`` hook), a mapping (``chipmap.py``: circuits and synapse rows per half, rows per
bus, the routing graph's load). Boundary: a client of the chip like the CLI — it reads output
files, checkpoints and ``chip.mapping``'s public result, never the emulator; it computes nothing
the summary or the mapping does not already say. matplotlib (the ``plot`` extra) is imported when
a picture is drawn, never when this package or its modules are imported (``style.py``).
"""

from __future__ import annotations

from .chipmap import chip_figure, plot_chip
from .run import load_run, plot_run, run_figure
from .style import FORMATS, MISSING, PlotError, available, use_agg
from .training import is_training_dir, plot_training, training_figure

__all__ = ["FORMATS", "MISSING", "PlotError", "available", "use_agg", "require", "plot_path", "plot_run",
           "plot_training", "plot_chip", "run_figure", "training_figure", "chip_figure", "load_run"]


def require() -> None:
    """Raise the one-line PlotError now when matplotlib is missing (before a long run)."""
    from .style import mpl

    mpl()


def plot_path(directory, out=None, sample: int = 0):
    """Draw whatever ``directory`` holds: a run (``summary.json``) or a training checkpoint
    (``checkpoint.npz``). Returns the picture's path."""
    from pathlib import Path

    directory = Path(directory)
    if (directory / "summary.json").is_file():
        return plot_run(directory, out, sample=sample)
    if is_training_dir(directory):
        if sample:
            raise PlotError(f"{directory}: --sample picks a sample of a run; this is a training checkpoint")
        return plot_training(directory, out)
    if directory.is_file():
        raise PlotError(f"{directory}: a file; chipctl plot draws a run directory or a checkpoint directory")
    if not directory.is_dir():
        raise PlotError(f"{directory}: no such directory")
    raise PlotError(f"{directory}: neither a run (summary.json, from chipctl run --out) nor a training "
                    "checkpoint (checkpoint.npz, from chipctl train)")

