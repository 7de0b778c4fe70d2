"""The pictures' common style: matplotlib on demand, one colour per population, files by suffix.

matplotlib is optional (the ``plot`` extra). Nothing here imports it at module level: ``mpl()``
does, the first time a picture is drawn, and turns its absence into one ``PlotError`` line.
Figures are ``matplotlib.figure.Figure`` objects drawn on the non-interactive Agg canvas, never
through pyplot's global state, so drawing works without a display and leaves no windows open.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from chip.errors import ChipctlError

__all__ = ["PlotError", "FORMATS", "MISSING", "mpl", "available", "use_agg", "styled", "new_figure",
           "save", "colours", "time_scale", "unit_label"]

FORMATS = (".png", ".svg", ".pdf")
MISSING = "matplotlib is not installed, and pictures need it: pip install 'chipctl[plot]'"

# matplotlib's tab10, so the colours do not depend on a style sheet
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
DROPPED = "#d62728"
DELIVERED = "#9e9e9e"

RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.titlesize": 10,
    "svg.fonttype": "none",  # text stays text in SVG
}


class PlotError(ChipctlError):
    """A picture that cannot be drawn: matplotlib missing, a directory without the files, a
    format that is not a picture."""


def mpl():
    """The matplotlib module, or a PlotError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise PlotError(MISSING) from None
    return matplotlib


def available() -> bool:
    """Whether matplotlib is installed, found without importing it (an import costs tens of MB
    and a second or so, which a command that then fails on its input should not pay)."""
    import importlib.util
    import sys

    if "matplotlib" in sys.modules:
        return sys.modules["matplotlib"] is not None  # None: blocked (as a test of its absence does)
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def use_agg() -> None:
    """Select the non-interactive backend, for processes that only write files (the CLI)."""
    mpl().use("Agg")


@contextlib.contextmanager
def styled():
    """Draw inside this block to get chipctl's look (artists take the rc values at creation)."""
    with mpl().rc_context(RC):
        yield


def new_figure(width_in: float, height_in: float):
    """An empty figure on the Agg canvas with constrained layout (call inside ``styled()``)."""
    mpl()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def check_suffix(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise PlotError(f"{path}: a picture is written as {', '.join(FORMATS)}, "
                        f"not {path.suffix or 'a file without a suffix'}")
    return path


def save(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG, SVG or PDF (by suffix), atomically: a reader never sees half a file."""
    path = check_suffix(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fig.savefig(tmp, format=path.suffix.lower()[1:], dpi=dpi)
        os.replace(tmp, path)
    except OSError as exc:
        raise PlotError(f"{path}: cannot write the picture ({exc.strerror or exc})") from None
    return path


def colours(populations, inputs=()) -> dict[str, str]:
    """One colour per population (alphabetical order, so every picture of a netlist agrees), then
    one per input source."""
    names = sorted(populations) + sorted(set(inputs) - set(populations))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def shade(colour: str, factor: float) -> tuple[float, float, float]:
    """``colour`` darkened (factor < 1) or lightened towards white (factor > 1)."""
    rgb = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    if factor <= 1:
        return tuple(c * factor for c in rgb)
    return tuple(c + (1 - c) * (1 - 1 / factor) for c in rgb)


def time_scale(duration_us: float, time_factor_us: float) -> tuple[float, str, str]:
    """(divide hardware µs by this, the unit, the axis label) for a run of ``duration_us``
    hardware µs, in the netlist's own time: hardware µs (ms when long), or biological ms (s when
    long)."""
    if time_factor_us >= 1.0:  # hardware time
        if duration_us >= 5000:
            return 1000.0, "ms", "time (ms, hardware)"
        return 1.0, "µs", "time (µs, hardware)"
    if duration_us / time_factor_us >= 5e6:
        return 1e6 * time_factor_us, "s", "time (s, biological)"
    return 1e3 * time_factor_us, "ms", "time (ms, biological)"


_UNITS = (("_us", "µs"), ("_ms", "ms"), ("_hz", "Hz"), ("_deg", "°"), ("_mv", "mV"), ("_s", "s"))


def unit_label(name: str) -> str:
    """An axis label from a metric name: ``rule_angle_deg`` -> ``angle (°)``, ``dead_fraction``
    -> ``dead fraction``, ``angle_deg.hidden`` (a nested metric) -> ``angle, hidden (°)``."""
    label, _, part = name.partition(".")
    label = label[len("rule_"):] if label.startswith("rule_") else label
    unit = ""
    for suffix, symbol in _UNITS:
        if label.lower().endswith(suffix):
            label, unit = label[:-len(suffix)], f" ({symbol})"
            break
    words = label.replace("_", " ") + (f", {part.replace('.', ' ').replace('_', ' ')}" if part else "")
    return words + unit
