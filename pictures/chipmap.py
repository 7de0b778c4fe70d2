"""The chip view of a mapping: where a netlist sits on the chip and what its routes carry.

One panel per occupied half (core and half): its synapse array, rows down and neuron columns
across, each synapse coloured by the source whose events it receives (excitatory rows in the
source's colour, inhibitory rows darker), bus boundaries marked, and under it the neuron
circuits coloured by the population placed on them. Then the rows used per bus of every half
(excitatory and inhibitory, with the bus's capacity and how many sources send into it), and the
routing graph's load: per link, how many source neurons send their events over it, with the
link's capacity. Everything comes from ``chip.mapping``'s public result (``map_netlist``,
``graph_summary``); nothing is run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .style import PALETTE, colours, new_figure, save, shade, styled

__all__ = ["chip_figure", "plot_chip", "link_load"]

MAX_ROWS_SHOWN = 1024  # a half with more rows (ideal: 65536) shows the rows in use
MAX_LINKS = 30
MAX_BUS_LABELS = 16
EXC_ROWS, INH_ROWS = "#a6a6a6", "#4d4d4d"


def link_load(mapped) -> np.ndarray:
    """Per link (``mapped.links`` order): source neurons whose events travel over it (a source's
    route tree crosses a shared link once)."""
    n_groups = len(mapped.source_groups)
    sizes = np.zeros(n_groups, dtype=np.int64)
    seen = set()
    for proj in mapped.projections.values():
        if proj.pre not in seen:
            seen.add(proj.pre)
            sizes += np.bincount(np.asarray(proj.pre_group, dtype=np.int64), minlength=n_groups)
    groups_on: dict[int, set[int]] = {}
    for (group, _half), route in mapped.routes.items():
        for link in route.links:
            groups_on.setdefault(int(link), set()).add(int(group))
    load = np.zeros(len(mapped.links), dtype=np.int64)
    for link, groups in groups_on.items():
        load[link] = sum(int(sizes[g]) for g in groups)
    return load


def _sources(mapped) -> list[str]:
    nl = mapped.netlist
    return sorted(nl.populations) + sorted(set(nl.inputs) - set(nl.populations))


def _half_images(mapped, halves: list[int], source_index: dict[str, int]):
    """Per half: (synapse index image (rows shown, columns), neuron band (columns,)); index 0 is
    empty, 1 + 2k source k on an excitatory row, 2 + 2k on an inhibitory row; the band holds
    1 + 2k for population k's circuits."""
    profile = mapped.profile
    nph, rph = profile.neurons_per_half, profile.rows_per_half
    found = {h: [] for h in halves}
    for proj in mapped.projections.values():
        k = source_index[proj.pre]
        for ids, code in ((proj.exc_synapse, 1 + 2 * k), (proj.inh_synapse, 2 + 2 * k)):
            ids = np.asarray(ids)
            ids = ids[ids >= 0]
            if not ids.size:
                continue
            half, row, col = mapped.decode_synapses(ids)
            for h in np.unique(half):
                sel = half == h
                if int(h) in found:
                    found[int(h)].append((row[sel], col[sel], code))
    images = {}
    for h in halves:
        top = max((int(r.max()) + 1 for r, _, _ in found[h]), default=1)
        shown = rph if rph <= MAX_ROWS_SHOWN else top
        img = np.zeros((shown, nph), dtype=np.int16)
        for row, col, code in found[h]:
            img[row, col] = code
        band = np.zeros(nph, dtype=np.int16)
        for name, pop in mapped.populations.items():
            cols = pop.circuits()[pop.halves() == h] % nph
            band[cols] = 1 + 2 * source_index[name]
        images[h] = (img, band)
    return images


def _half_panel(ax, mapped, h: int, img, band, cmap, norm, rows_used, small: bool, ylabel: bool = True,
                xlabel: bool = True) -> None:
    profile = mapped.profile
    shown, nph = img.shape
    gap, height = max(1.0, shown * 0.02), max(2.0, shown * 0.07)
    ax.imshow(img, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest",
              extent=(-0.5, nph - 0.5, shown - 0.5, -0.5))
    ax.imshow(band[None, :], cmap=cmap, norm=norm, aspect="auto", interpolation="nearest",
              extent=(-0.5, nph - 0.5, shown - 0.5 + gap + height, shown - 0.5 + gap))
    ax.set_ylim(shown - 0.5 + gap + height, -0.5)
    ax.set_xlim(-0.5, nph - 0.5)
    ticks, labels = [], []
    if profile.buses_per_half > 1 and shown == profile.rows_per_half:
        rpb = profile.rows_per_bus
        for b in range(profile.buses_per_half):
            if b:
                ax.axhline(b * rpb - 0.5, color="0.55", lw=0.6, ls="--")
            ticks.append(b * rpb + rpb / 2 - 0.5)
            labels.append(f"bus {b}")
    else:
        ticks += [0, shown - 1]
        labels += ["0", str(shown - 1)]
    ticks.append(shown - 0.5 + gap + height / 2)
    labels.append("neurons")
    ax.set_yticks(ticks, labels)
    if xlabel:  # in a grid of many halves, only the outer panels say what the axes are
        ax.set_xlabel("neuron column")
    if ylabel:
        ax.set_ylabel("synapse row")
    exc, inh = rows_used.get(h, (0, 0))
    n = int(np.count_nonzero(band))
    if small:
        title = f"{mapped.half_name(h)}: {n} circuits\n{exc} exc. + {inh} inh. rows"
    else:
        title = f"{mapped.half_name(h)}: {n} circuits\nrows: {exc} exc. + {inh} inh. of {profile.rows_per_half}"
    ax.set_title(title, loc="left", fontsize=7 if small else 8)


def _bus_panel(ax, summary: dict) -> None:
    labels, exc, inh, sources, avail, halves = [], [], [], [], [], []
    per_bus = any(len(half["buses"]) > 1 for half in summary["rows_used"].values())
    for half in summary["rows_used"].values():
        start = len(labels)
        for bus in half["buses"]:
            labels.append(f"{half['name']}\nbus {bus['bus']}" if per_bus else half["name"])
            exc.append(bus["excitatory"])
            inh.append(bus["inhibitory"])
            sources.append(bus["sources"])
            avail.append(bus["available"])
        halves.append((half["name"], start, len(labels)))
    many = len(labels) > MAX_BUS_LABELS  # then one label per half, its buses left to right
    x = np.arange(len(labels))
    exc, inh = np.asarray(exc), np.asarray(inh)
    ax.bar(x, exc, color=EXC_ROWS, label="excitatory rows")
    ax.bar(x, inh, bottom=exc, color=INH_ROWS, label="inhibitory rows")
    top = float((exc + inh).max(initial=0))
    capacity = max(avail, default=0)
    if capacity and top >= capacity / 4:
        ax.axhline(capacity, color=PALETTE[3], lw=1, ls="--", label=f"rows per bus ({capacity})")
        top = max(top, capacity)
    if not many:
        for xi, total, s in zip(x, exc + inh, sources):
            ax.text(xi, total, f"{s}", ha="center", va="bottom", fontsize=6.5, color="0.3")
        ax.set_xticks(x, labels, rotation=90 if len(labels) > 8 else 0, fontsize=7)
    else:
        ax.set_xticks([(a + b - 1) / 2 for _, a, b in halves], [name for name, _, _ in halves],
                      rotation=90 if len(halves) > 8 else 0, fontsize=7)
        for _, a, _ in halves[1:]:
            ax.axvline(a - 0.5, color="0.85", lw=0.6)
    if not len(labels):
        ax.text(0.5, 0.5, "no synapse rows used", transform=ax.transAxes, ha="center", va="center", color="0.5")
    ax.set_ylim(0, top * 1.2 + 1)
    ax.set_ylabel("synapse rows")
    ax.set_xlabel("half (core.half), its buses left to right" if many else
                  "bus of each half (core.half)" if per_bus else "half (core.half)")
    of = "" if capacity and top >= capacity else f", of {capacity} per bus"
    ax.set_title(f"rows per bus{of}" + ("" if many else " (numbers: sources sending into the bus)"), loc="left")
    ax.legend(loc="upper right", ncols=3)


def _link_panel(ax, mapped) -> None:
    load = link_load(mapped)
    used = [i for i in np.argsort(-load, kind="stable") if load[i] > 0]
    shown = sorted(used[:MAX_LINKS])
    if not shown:
        ax.text(0.5, 0.5, "no link carries events", transform=ax.transAxes, ha="center", va="center", color="0.5")
        ax.set_xlabel("source neurons sending over the link")
        ax.set_yticks([])
        ax.set_title("routing graph: load per link", loc="left")
        return
    y = np.arange(len(shown))[::-1]
    finite = [math.isfinite(mapped.links[i].capacity_per_cycle) for i in shown]
    ax.barh(y, load[shown], color=[INH_ROWS if f else EXC_ROWS for f in finite], height=0.7)
    for yi, i in zip(y, shown):
        cap = mapped.links[i].capacity_per_cycle
        ax.text(load[i], yi, f" {load[i]}  ({'%g/cycle' % cap if math.isfinite(cap) else 'unlimited'})",
                va="center", fontsize=6.5)
    ax.set_yticks(y, [mapped.links[i].name for i in shown], fontsize=6.5)
    ax.set_xlim(0, float(load.max()) * 1.35)
    ax.set_xlabel("source neurons sending over the link")
    ax.set_ylabel("link")
    more = f"; the {len(shown)} busiest of {len(used)}" if len(used) > len(shown) else ""
    ax.set_title(f"routing graph: load per link ({len(used)} of {len(mapped.links)} links carry events{more})\n"
                 "dark: links that can congest (finite events per cycle)", loc="left")


def chip_figure(mapped):
    """The mapping's figure (a matplotlib Figure): halves, rows per bus, link load."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    from chip.mapping import graph_summary

    summary = graph_summary(mapped)
    profile = mapped.profile
    names = _sources(mapped)
    palette = colours(mapped.netlist.populations, mapped.netlist.inputs)
    index = {name: k for k, name in enumerate(names)}
    table = [(1.0, 1.0, 1.0)]
    for name in names:
        table += [shade(palette[name], 1.0), shade(palette[name], 0.55)]
    cmap = ListedColormap(table)
    norm = BoundaryNorm(np.arange(len(table) + 1) - 0.5, len(table))
    halves = sorted({int(h) for p in mapped.populations.values() for h in np.unique(p.halves())})
    images = _half_images(mapped, halves, index)
    ncols = min(max(len(halves), 1), 4)
    nrows = math.ceil(len(halves) / ncols) if halves else 0
    n_links = min(int(np.count_nonzero(link_load(mapped))), MAX_LINKS)
    heights = [2.6 if ncols <= 2 else 2.1] * nrows + [2.4, 0.9 + 0.2 * max(n_links, 1)]
    with styled():
        fig = new_figure(10.0, 1.0 + sum(heights))
        # the halves and the two wide panels in subfigures of their own, so that the link names'
        # margin does not squeeze the halves' grid
        if halves:
            top, bottom = fig.subfigures(2, 1, height_ratios=[sum(heights[:nrows]), sum(heights[nrows:])])
            grid = top.add_gridspec(nrows, ncols)
            small = ncols > 2
            for i, h in enumerate(halves):
                row, col = divmod(i, ncols)
                ax = top.add_subplot(grid[row, col])
                img, band = images[h]
                below = i + ncols < len(halves)  # another half under this one
                _half_panel(ax, mapped, h, img, band, cmap, norm, mapped.rows_used, small=small,
                            ylabel=not small or col == 0, xlabel=not small or not below)
        else:
            bottom = fig
        grid = bottom.add_gridspec(2, 1, height_ratios=heights[nrows:])
        _bus_panel(bottom.add_subplot(grid[0]), summary)
        _link_panel(bottom.add_subplot(grid[1]), mapped)
        handles = [Patch(color=palette[name], label=f"{name} ({'input' if name not in mapped.netlist.populations else 'population'})")
                   for name in names]
        handles.append(Patch(color=shade("#808080", 0.55), label="darker: inhibitory rows"))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))
        rows = sum(e + i for e, i in mapped.rows_used.values())
        fig.suptitle(f"{mapped.netlist.name} on the {profile.name} chip: {mapped.n_circuits} of "
                     f"{profile.total_neurons} circuits, {rows} synapse rows, {len(mapped.links)} links")
    return fig


def plot_chip(netlist, out: str | os.PathLike) -> Path:
    """Draw the chip view of ``netlist`` (a ``Netlist``, mapped here, or what ``map_netlist``
    returned) to ``out``."""
    from chip.mapping import map_netlist

    mapped = netlist if hasattr(netlist, "routes") else map_netlist(netlist)
    with styled():
        return save(chip_figure(mapped), out)
