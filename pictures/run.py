"""The picture of one run, drawn from the files ``chipctl run --out`` writes and nothing else.

Panels, top to bottom, on one time axis in the netlist's own time: a spike raster per recorded
population (one sample of the batch), each membrane trace as its ADC read it (sample and hold, so
the ADC's codes show as steps, codes on the right axis), the populations' rates over time, and —
when some link dropped events — events offered, delivered and dropped per congested link.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .style import (DELIVERED, DROPPED, PlotError, colours, new_figure, save, shade, styled, time_scale)

__all__ = ["RunData", "load_run", "run_figure", "plot_run", "RUN_PICTURE"]

RUN_PICTURE = "run.png"
MAX_TRACE_NEURONS = 8
MAX_LINKS = 12


@dataclass
class RunData:
    """What a run directory holds: the summary, spikes per population (``batch``, ``neuron``,
    ``time_us`` in hardware µs) and traces (``population``, ``adc``, ``time_us``, ``values`` of
    shape (batch, samples, neurons), ``neurons``, ``codes`` or None)."""

    directory: Path
    summary: dict
    spikes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    traces: list[dict] = field(default_factory=list)

    @property
    def batch(self) -> int:
        return int(self.summary.get("batch", 1))

    @property
    def duration_us(self) -> float:
        return float(self.summary.get("emulated_us", 0.0))

    @property
    def time_factor_us(self) -> float:
        factor = self.summary.get("time_factor_us")
        if factor is None:  # a summary written before the factor was stored
            return 1.0 if self.summary.get("timescale", "hardware") == "hardware" else 1e-3
        return float(factor)


def _npz(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # a truncated or foreign file
        raise PlotError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None


def _array(arrays: dict, key: str, path: Path, ndim: int) -> np.ndarray:
    if key not in arrays:
        raise PlotError(f"{path}: no array {key!r} (written by another version of chipctl?)")
    value = np.asarray(arrays[key])
    if value.ndim != ndim or not np.issubdtype(value.dtype, np.number):
        raise PlotError(f"{path}: {key} is not a {ndim}-d numeric array")
    return value


def load_run(directory: str | os.PathLike) -> RunData:
    """Read a run directory (``summary.json``, ``spikes.npz``, ``traces.npz`` when traces were
    recorded); a PlotError names the file that is missing or does not fit."""
    directory = Path(directory)
    path = directory / "summary.json"
    if not path.is_file():
        raise PlotError(f"{directory}: not a run directory (no summary.json; write one with chipctl run --out)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlotError(f"{path}: unreadable ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("populations"), dict):
        raise PlotError(f"{path}: not a run summary (no populations)")
    run = RunData(directory, summary)
    arrays = _npz(directory / "spikes.npz") or {}
    order = list(dict.fromkeys(k.rpartition("/")[0] for k in arrays))  # the file's (the netlist's) order
    names = [n for n in order if n in summary["populations"]] + [n for n in summary["populations"] if n not in order]
    for name in names:
        info = summary["populations"][name]
        if f"{name}/time_us" not in arrays:
            raise PlotError(f"{directory / 'spikes.npz'}: no spikes of population {name!r}")
        spikes = {k: _array(arrays, f"{name}/{k}", directory / "spikes.npz", 1) for k in ("batch", "neuron", "time_us")}
        if not len(spikes["batch"]) == len(spikes["neuron"]) == len(spikes["time_us"]):
            raise PlotError(f"{directory / 'spikes.npz'}: {name}: batch, neuron and time_us differ in length")
        spikes["size"] = int(info.get("size", int(spikes["neuron"].max(initial=-1)) + 1))
        run.spikes[name] = spikes
    listed = summary.get("traces") or []
    if listed:
        tpath = directory / "traces.npz"
        arrays = _npz(tpath)
        if arrays is None:
            raise PlotError(f"{tpath}: missing, but summary.json lists {len(listed)} trace(s)")
        for i, tr in enumerate(listed):
            key = f"{tr['population']}/{tr['adc']}{i}"
            values = _array(arrays, f"{key}/values", tpath, 3)
            times = _array(arrays, f"{key}/time_us", tpath, 1)
            if values.shape[1] != len(times):
                raise PlotError(f"{tpath}: {key}: {values.shape[1]} samples of values, {len(times)} times")
            codes = arrays.get(f"{key}/codes")
            run.traces.append({"population": tr["population"], "adc": tr["adc"], "time_us": times, "values": values,
                               "neurons": [int(n) for n in arrays.get(f"{key}/neurons", tr.get("neurons", []))],
                               "codes": None if codes is None else np.asarray(codes)})
    return run


def _raster(ax, spikes: dict, sample: int, scale: float, colour: str, name: str, dense: bool) -> None:
    keep = spikes["batch"] == sample
    t, n = spikes["time_us"][keep] / scale, spikes["neuron"][keep]
    size = spikes["size"]
    if dense:  # thousands of neurons or spikes: dots, drawn as one raster image in SVG/PDF
        ax.plot(t, n, ls="", marker=".", ms=1.2, mew=0, color=colour, rasterized=True)
    else:
        ax.plot(t, n, ls="", marker="|", ms=max(3.0, min(12.0, 120.0 / max(size, 1))), mew=1.2, color=colour,
                rasterized=len(t) > 2000)
    ax.set_ylim(-0.5, size - 0.5)
    if size <= 8:
        ax.set_yticks(range(size))
    ax.set_ylabel(f"{name}\n(neuron index)", color=shade(colour, 0.8))
    if not len(t):
        ax.text(0.5, 0.5, "no spikes", transform=ax.transAxes, ha="center", va="center", color="0.5")


def _code_axis(ax, codes: np.ndarray | None, values: np.ndarray, adc: str) -> None:
    """A right-hand axis in ADC codes, from the nominal transfer the values went through."""
    if codes is None or codes.size < 2:
        return
    c, v = codes.ravel().astype(float), values.ravel().astype(float)
    ok = np.isfinite(v)
    c, v = c[ok], v[ok]
    if len(np.unique(c)) < 2:
        return
    slope, offset = np.polyfit(c, v, 1)
    if not np.isfinite(slope) or abs(slope) < 1e-12:
        return
    sec = ax.secondary_yaxis("right", functions=(lambda y: (y - offset) / slope, lambda k: k * slope + offset))
    sec.set_ylabel(f"{adc.upper()} code")
    if np.ptp(c) <= 40:  # few codes in view: one tick per code makes the quantization readable
        from matplotlib.ticker import MaxNLocator

        sec.yaxis.set_major_locator(MaxNLocator(integer=True))


def _trace(ax, tr: dict, sample: int, scale: float, colour: str) -> None:
    values = tr["values"][sample]  # (samples, neurons)
    t = tr["time_us"] / scale
    neurons = tr["neurons"] or list(range(values.shape[1]))
    shown = min(values.shape[1], MAX_TRACE_NEURONS)
    for j in range(shown):
        tone = shade(colour, 1.0 - 0.45 * j / max(shown - 1, 1)) if shown > 1 else colour
        # sample and hold: each reading holds until the next one, so codes are steps
        ax.step(t, values[:, j], where="post", lw=1.1, color=tone, label=f"neuron {neurons[j]}")
        if len(t) <= 200:
            ax.plot(t, values[:, j], ls="", marker="o", ms=2, color=tone)
    more = f" (first {shown} of {values.shape[1]} neurons)" if values.shape[1] > shown else ""
    ax.set_ylabel("membrane\n(model units)")
    ax.set_title(f"{tr['population']} membrane through the {tr['adc'].upper()}{more}", loc="left")
    if shown > 1:
        ax.legend(loc="upper right", ncols=min(shown, 4))
    codes = tr["codes"][sample] if tr["codes"] is not None else None
    _code_axis(ax, codes, values, tr["adc"])


def _rates(ax, run: RunData, sample: int, scale: float, palette: dict, unit: str) -> None:
    duration = run.duration_us
    n_bins = 50 if duration > 0 else 1
    edges = np.linspace(0.0, duration if duration > 0 else 1.0, n_bins + 1)
    width_s = (edges[1] - edges[0]) / run.time_factor_us * 1e-6  # in the netlist's seconds
    rates = {}
    for name, spikes in run.spikes.items():
        keep = spikes["batch"] == sample
        counts, _ = np.histogram(spikes["time_us"][keep], bins=edges)
        rates[name] = counts / (max(spikes["size"], 1) * width_s)
    peak = max((float(r.max()) for r in rates.values()), default=0.0)
    hz, per = (1e3, "kHz") if peak >= 1e4 else (1.0, "Hz")
    for name, rate in rates.items():
        ax.stairs(rate / hz, edges / scale, baseline=None, color=palette[name], lw=1.3, label=name)
    ax.set_ylim(bottom=0)
    ax.set_ylabel(f"rate per neuron\n({per}{'' if run.time_factor_us >= 1 else ', biological'})")
    ax.set_title(f"population rates ({n_bins} bins of {(edges[1] - edges[0]) / scale:.3g} {unit})", loc="left")
    if len(run.spikes) > 1:
        ax.legend(loc="upper right", ncols=min(len(run.spikes), 4))


def _links(ax, links: list[dict]) -> None:
    shown = sorted(links, key=lambda l: -l["dropped"])[:MAX_LINKS]
    y = np.arange(len(shown))[::-1]
    delivered = np.array([l["delivered"] for l in shown], dtype=float)
    dropped = np.array([l["dropped"] for l in shown], dtype=float)
    ax.barh(y, delivered, color=DELIVERED, label="delivered")
    ax.barh(y, dropped, left=delivered, color=DROPPED, label="dropped")
    for yi, l in zip(y, shown):
        ax.text(l["offered"], yi, f" {l['offered']} offered", va="center", fontsize=7)
    ax.set_yticks(y, [l["name"] for l in shown], fontsize=7)
    ax.set_xlabel("events (whole batch)")
    ax.set_ylabel("link")
    ax.set_xlim(0, max(l["offered"] for l in shown) * 1.25)
    more = f", the {len(shown)} worst of {len(links)}" if len(links) > len(shown) else ""
    ax.set_title(f"congested links: offered = delivered + dropped{more}", loc="left")
    ax.legend(loc="lower right")


def run_figure(run: RunData, sample: int = 0):
    """The run's figure (a matplotlib Figure): rasters, traces, rates, congested links."""
    if not 0 <= sample < run.batch:
        raise PlotError(f"{run.directory}: sample {sample} is not in the batch (0..{run.batch - 1})")
    summary = run.summary
    scale, unit, label = time_scale(run.duration_us, run.time_factor_us)
    palette = colours(run.spikes)
    congested = [l for l in summary.get("links", []) if l.get("dropped", 0) > 0]
    total_spikes = sum(len(s["time_us"]) for s in run.spikes.values())
    shown_spikes = sum(int(np.sum(s["batch"] == sample)) for s in run.spikes.values())
    heights = [float(np.clip(0.55 + 0.45 * np.log10(s["size"] + 1), 0.7, 2.2)) for s in run.spikes.values()]
    heights += [1.4] * len(run.traces) + [1.1]
    if congested:
        heights.append(0.35 * min(len(congested), MAX_LINKS) + 0.6)
    with styled():
        fig = new_figure(9.0, 0.9 + 1.25 * sum(heights))
        grid = fig.add_gridspec(len(heights), 1, height_ratios=heights)
        time_axes = []
        first = None
        for i, (name, spikes) in enumerate(run.spikes.items()):
            ax = fig.add_subplot(grid[i], sharex=first)
            first = first or ax
            dense = spikes["size"] > 256 or total_spikes > 20000
            _raster(ax, spikes, sample, scale, palette[name], name, dense)
            time_axes.append(ax)
        if time_axes:
            time_axes[0].set_title("spikes", loc="left")
        k = len(run.spikes)
        for j, tr in enumerate(run.traces):
            ax = fig.add_subplot(grid[k + j], sharex=first)
            first = first or ax
            _trace(ax, tr, sample, scale, palette.get(tr["population"], "#333333"))
            time_axes.append(ax)
        ax = fig.add_subplot(grid[k + len(run.traces)], sharex=first)
        _rates(ax, run, sample, scale, palette, unit)
        time_axes.append(ax)
        for ax in time_axes[:-1]:
            ax.tick_params(labelbottom=False)
        time_axes[-1].set_xlabel(label)
        time_axes[-1].set_xlim(0, run.duration_us / scale if run.duration_us > 0 else 1.0)
        if congested:
            _links(fig.add_subplot(grid[-1]), congested)
        batch = f", sample {sample} of {run.batch}" if run.batch > 1 else ""
        drops = f", {summary.get('dropped_events', 0)} events dropped" if summary.get("dropped_events") else ""
        fig.suptitle(f"{summary.get('netlist', run.directory.name)} on the {summary.get('profile', '?')} chip"
                     f"{batch}: {shown_spikes} spike{'' if shown_spikes == 1 else 's'}{drops}")
    return fig


def plot_run(directory: str | os.PathLike, out: str | os.PathLike | None = None, sample: int = 0) -> Path:
    """Draw a run directory's picture to ``out`` (default: ``run.png`` in the directory)."""
    run = load_run(directory)
    target = Path(out) if out is not None else Path(directory) / RUN_PICTURE
    with styled():
        return save(run_figure(run, sample), target)
