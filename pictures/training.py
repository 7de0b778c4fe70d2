"""Training pictures: curves per epoch, drawn into the checkpoint directory as training goes.

``chipctl train`` calls ``TrainingPictures`` after every epoch's checkpoint; ``chipctl plot
CHECKPOINT_DIR`` redraws the same picture from the checkpoint alone. Files in the checkpoint
directory:

- ``training.png``: the training loss, train and test accuracy (%), every scalar metric the rules
  report per epoch (``rule_*`` and what ``chipctl_epoch_finished`` adds: angles, fractions, ...;
  the entries of a reported dict share one panel, a line each),
  a histogram of every metric that is a list of numbers (e.g. learned time constants; last epoch
  filled, first epoch outlined), and the panels rules return as data from ``chipctl_figures``;
- ``training_figures.json``: those panels' data, so that a redraw needs no rule;
- ``training.<rule>.<name>.png``: figures a rule drew itself (matplotlib figures from
  ``chipctl_figures``), replaced every epoch.

A panel is ``{"kind": "lines", "y": {label: values}, "x": values (default: epochs 1..n),
"xlabel": ..., "ylabel": ...}`` or ``{"kind": "hist", "values": {label: values}, "xlabel": ...,
"bins": 20}`` (documented with the hook in ``rules/hookspecs.py``).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from pathlib import Path

import numpy as np

from .style import PALETTE, PlotError, new_figure, save, styled, unit_label

__all__ = ["TrainingPictures", "training_figure", "plot_training", "load_training", "is_training_dir",
           "write_training_pictures", "TRAINING_PICTURE", "FIGURES_FILE"]

TRAINING_PICTURE = "training.png"
FIGURES_FILE = "training_figures.json"
CHECKPOINT_FILE = "checkpoint.npz"  # rules.training.checkpoints names it; read through that module
STANDARD = ("epoch", "train_loss", "train_accuracy", "test_accuracy", "epoch_wall_s")
TRAIN, TEST = PALETTE[0], PALETTE[1]
# the metrics' colours: neither train's nor test's, and not the grey of a first epoch's outline
METRIC_COLOURS = tuple(PALETTE[i] for i in (2, 4, 3, 5, 6, 8, 9))


def is_training_dir(directory: str | os.PathLike) -> bool:
    return (Path(directory) / CHECKPOINT_FILE).is_file()


def _number(value) -> bool:
    """A finite real number, numpy's included (a rule may report ``np.float32``); not a bool."""
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value)))


def _numbers(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.size > 0 and all(_number(v) for v in value)
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_number(v) for v in value)


def flatten(metrics: dict, prefix: str = "") -> dict:
    """One epoch's metrics with nested dicts spelled out: ``{"angle_deg": {"hidden": 40}}`` ->
    ``{"angle_deg.hidden": 40}``, so a rule may report per layer or per population without the
    pictures knowing its names."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metric_groups(scalars: list[str]) -> dict[str, list[str]]:
    """Scalar metrics by panel: the entries of one reported dict (``angle_deg.hidden``,
    ``angle_deg.out``) share the panel of their dict (``angle_deg``), one line each."""
    groups: dict[str, list[str]] = {}
    for key in scalars:
        groups.setdefault(key.partition(".")[0], []).append(key)
    return groups


def metric_kinds(history: list[dict]) -> tuple[list[str], list[str]]:
    """(scalar metrics, list-of-number metrics) in the history beyond the standard ones, in the
    order they first appear; whatever their names (nested dicts already flattened)."""
    scalars, lists = [], []
    for h in history:
        for key, value in h.items():
            if key in STANDARD or key in scalars or key in lists:
                continue
            if _number(value):
                scalars.append(key)
            elif _numbers(value):
                lists.append(key)
    return scalars, lists


def _panel(rule: str, name: str, spec) -> dict:
    """A rule's data panel checked and normalized, or a PlotError naming the rule and figure."""
    where = f"rule {rule!r}: figure {name!r}"
    if not isinstance(spec, dict) or spec.get("kind") not in ("lines", "hist"):
        raise PlotError(f"{where}: a panel is a dict with kind 'lines' or 'hist' (or a matplotlib Figure)")
    key = "y" if spec["kind"] == "lines" else "values"
    series = spec.get(key)
    if not isinstance(series, dict) or not series:
        raise PlotError(f"{where}: {key} must map labels to lists of numbers")
    out = {"kind": spec["kind"], "title": f"{rule}: {name}", key: {}, "xlabel": str(spec.get("xlabel", "")),
           "ylabel": str(spec.get("ylabel", "count" if spec["kind"] == "hist" else ""))}
    for label, values in series.items():
        arr = np.asarray(values, dtype=float).ravel() if np.ndim(values) else np.asarray([values], dtype=float)
        out[key][str(label)] = [float(v) for v in arr]
    if spec["kind"] == "lines":
        n = max(len(v) for v in out["y"].values())
        x = spec.get("x")
        out["x"] = [float(v) for v in np.asarray(x, dtype=float).ravel()] if x is not None else list(range(1, n + 1))
        if any(len(v) != len(out["x"]) for v in out["y"].values()):
            raise PlotError(f"{where}: every series in y needs one value per x ({len(out['x'])})")
        out["xlabel"] = out["xlabel"] or ("epoch" if x is None else "")
    else:
        out["bins"] = int(spec.get("bins", 20))
    return out


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _series(history: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(h.get("epoch", i + 1), h[key]) for i, h in enumerate(history) if _number(h.get(key))]
    if not pts:
        return np.zeros(0), np.zeros(0)
    e, v = zip(*pts)
    return np.asarray(e, dtype=float), np.asarray(v, dtype=float)


def _line(ax, x, y, colour, label=None) -> None:
    ax.plot(x, y, color=colour, lw=1.5, marker="o" if len(x) <= 40 else None, ms=3, label=label)


def training_figure(history: list[dict], panels: dict[str, dict] | None = None, title: str = ""):
    """The training's figure (a matplotlib Figure) from its history (one metrics dict per epoch)
    and rules' data panels (rule -> figure name -> panel)."""
    if not history:
        raise PlotError("no epoch finished yet: nothing to draw")
    history = [flatten(h) for h in history]
    scalars, lists = metric_kinds(history)
    groups = metric_groups(scalars)
    extra = [_panel(rule, name, spec) for rule, figs in (panels or {}).items() for name, spec in (figs or {}).items()]
    n = 2 + len(groups) + len(lists) + len(extra)
    cols = 2
    rows = math.ceil(n / cols)
    with styled():
        fig = new_figure(10.0, 0.6 + 2.5 * rows)
        axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
        ax = axes[0]
        _line(ax, *_series(history, "train_loss"), TRAIN)
        ax.set_ylabel("training loss")
        ax.set_title("loss", loc="left")
        _epoch_axis(ax)
        ax = axes[1]
        for key, colour, label in (("train_accuracy", TRAIN, "train"), ("test_accuracy", TEST, "test")):
            e, v = _series(history, key)
            if len(e):
                _line(ax, e, 100 * v, colour, label)
        ax.set_ylabel("accuracy (%)")
        ax.set_title("accuracy", loc="left")
        ax.legend(loc="lower right")
        _epoch_axis(ax)
        i = 2
        for name, keys in groups.items():
            ax = axes[i]
            for j, key in enumerate(keys):
                colour = METRIC_COLOURS[(i + j) % len(METRIC_COLOURS)]
                _line(ax, *_series(history, key), colour, key[len(name) + 1:] or None)
            ax.set_ylabel(unit_label(name))
            ax.set_title(name, loc="left")
            if len(keys) > 1:
                ax.legend()
            _epoch_axis(ax)
            i += 1
        for key in lists:
            ax = axes[i]
            epochs = [h for h in history if _numbers(h.get(key))]
            last = np.asarray(epochs[-1][key], dtype=float)
            first = np.asarray(epochs[0][key], dtype=float)
            bins = np.histogram_bin_edges(np.concatenate([first, last]), bins=20)
            if len(epochs) > 1:
                ax.hist(first, bins=bins, histtype="step", color="0.45", lw=1.2,
                        label=f"epoch {epochs[0].get('epoch', 1)}")
            ax.hist(last, bins=bins, color=METRIC_COLOURS[i % len(METRIC_COLOURS)], alpha=0.75,
                    label=f"epoch {epochs[-1].get('epoch', len(history))}")
            ax.set_xlabel(unit_label(key))
            ax.set_ylabel("count")
            ax.set_title(key, loc="left")
            ax.legend(loc="upper right")
            i += 1
        for panel in extra:
            ax = axes[i]
            if panel["kind"] == "lines":
                for j, (label, y) in enumerate(panel["y"].items()):
                    _line(ax, panel["x"], y, PALETTE[j % len(PALETTE)], label)
                if panel["xlabel"] == "epoch":
                    _epoch_axis(ax)
            else:
                values = [np.asarray(v) for v in panel["values"].values()]
                bins = np.histogram_bin_edges(np.concatenate(values), bins=panel["bins"])
                for j, (label, v) in enumerate(panel["values"].items()):
                    ax.hist(v, bins=bins, histtype="stepfilled" if j == 0 else "step", alpha=0.7 if j == 0 else 1,
                            color=PALETTE[j % len(PALETTE)], lw=1.2, label=label)
            ax.set_xlabel(panel["xlabel"] or ax.get_xlabel())
            ax.set_ylabel(panel["ylabel"])
            ax.set_title(panel["title"], loc="left")
            if len(panel.get("y", panel.get("values"))) > 1:
                ax.legend()
            i += 1
        last = history[-1]
        test = f", test {100 * last['test_accuracy']:.1f} %" if _number(last.get("test_accuracy")) else ""
        fig.suptitle(f"{title + ': ' if title else ''}{len(history)} epoch{'s' if len(history) != 1 else ''}, "
                     f"train {100 * last.get('train_accuracy', float('nan')):.1f} %{test}")
    return fig


def _atomic_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")  # the rules' order
    os.replace(tmp, path)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "figure"


def write_training_pictures(directory: str | os.PathLike, history: list[dict], figures: dict | None = None,
                            title: str = "") -> list[Path]:
    """Write ``training.png`` (and the rules' figures) into ``directory``; ``figures`` is what
    ``chipctl_figures`` returned per rule. Returns the files written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    panels: dict[str, dict] = {}
    for rule, figs in (figures or {}).items():
        if figs is None:
            continue
        if not isinstance(figs, dict):
            raise PlotError(f"rule {rule!r}: chipctl_figures must return a dict of named figures, "
                            f"not {type(figs).__name__}")
        for name, spec in figs.items():
            if hasattr(spec, "savefig"):  # a figure the rule drew itself
                written.append(save(spec, directory / f"training.{_safe(rule)}.{_safe(name)}.png"))
                _close_if_pyplot(spec)
            else:
                panels.setdefault(str(rule), {})[str(name)] = _panel(rule, name, spec)
    if panels:
        _atomic_json(directory / FIGURES_FILE, panels)
        written.append(directory / FIGURES_FILE)
    with styled():
        written.insert(0, save(training_figure(history, panels, title), directory / TRAINING_PICTURE))
    return written


def _close_if_pyplot(fig) -> None:
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


def load_training(directory: str | os.PathLike) -> tuple[list[dict], dict, str]:
    """(history, the rules' stored panels, a title) from a checkpoint directory."""
    from rules.training.checkpoints import load_checkpoint

    directory = Path(directory)
    data = load_checkpoint(directory)
    try:
        history = json.loads(str(data.get("history_json", "[]")))
    except ValueError:
        raise PlotError(f"{directory / CHECKPOINT_FILE}: its metrics history is unreadable") from None
    panels = {}
    path = directory / FIGURES_FILE
    if path.is_file():
        try:
            panels = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PlotError(f"{path}: unreadable ({exc})") from None
    chip = data.get("chip") if isinstance(data.get("chip"), dict) else {}
    name = (chip.get("netlist") or {}).get("name", directory.name)
    profile = (chip.get("profile") or {}).get("name")
    return history, panels, f"{name} on the {profile} chip" if profile else str(name)


def plot_training(directory: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Redraw a checkpoint directory's training picture to ``out`` (default: its training.png)."""
    history, panels, title = load_training(directory)
    target = Path(out) if out is not None else Path(directory) / TRAINING_PICTURE
    with styled():
        return save(training_figure(history, panels, title), target)


class TrainingPictures:
    """The trainer's ``on_epoch`` callback that keeps the checkpoint directory's pictures current:
    after every epoch it asks the rules for figures (``chipctl_figures``) and writes them."""

    def __init__(self, trainer, title: str = ""):
        self.trainer = trainer
        self.title = title

    def __call__(self, metrics: dict) -> list[Path]:
        trainer = self.trainer
        if trainer.checkpoint_dir is None:
            return []
        figures = trainer.rules.call("chipctl_figures", history=[dict(h) for h in trainer.history])
        return write_training_pictures(trainer.checkpoint_dir, trainer.history, figures, self.title)
