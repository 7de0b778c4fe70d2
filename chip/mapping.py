"""Place and route a logical netlist onto a chip profile.

The job: decide which neuron circuit runs each neuron, which synapse (half, row, column) carries
each connection, and which chain of event links (FPGA, crossbars, core links, synapse drivers)
each presynaptic source uses to reach each target half. The result, ``MappedChip``, is everything
the emulator needs to know about *where* things are; it says nothing about parameter codes,
mismatch, weight quantization or timing of events, which are the emulator's business. Reading the
netlist is ``chip.netlist_io``'s; realizing a projection's mask and weights is
``chip.connectivity``'s.

Geometry (profile sizes): circuit ``c`` sits on core ``c // neurons_per_core``, half
``(c % neurons_per_core) // neurons_per_half`` and column ``c % neurons_per_half``; its global half
index is ``c // neurons_per_half`` (= core * halves_per_core + half). Every half has
``rows_per_half`` synapse rows across its columns. A synapse is named by a global id
``((global_half * rows_per_half) + row) * neurons_per_half + column``.

Rows. An event carries a 6-bit label, so one synapse row can serve up to ``labels_per_row``
distinct presynaptic sources, but each synapse (one per row and column) listens to one label:
a column can hear only one source per row. Each row is excitatory or inhibitory; a ``signed``
projection uses one synapse on an excitatory row and one on an inhibitory row per connection.
Per half and sign, the distinct sources (same input or neuron, same sign, across projections)
are packed onto rows greedily, first fit in order of decreasing fan-in, with rows and columns
kept as Python-int bitsets (a source's blocked rows are the OR of its columns' occupancy, the
first free row is the lowest zero bit) — a few microseconds per source. When two projections
connect the same source to the same column with the same sign, the second connection needs a
second synapse; it is packed as an extra copy of the source (same label, another row).
Excitatory rows are numbered first on a half, inhibitory rows after them.

The ``ideal`` profile (unquantized weights, 65536 rows per half) takes a fast path: each source
gets its own row without any search, and only cores that hold neurons appear in the routing graph.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from os import PathLike

import networkx as nx
import numpy as np

from .connectivity import SIGNS, realize_connectivity, realize_weights
from .errors import MappingError
from .netlist import Netlist
from .profiles import ChipProfile

__all__ = [
    "PlacedPopulation",
    "PlacedProjection",
    "Link",
    "Route",
    "MappedChip",
    "map_netlist",
    "graph_summary",
    "write_graphml",
]


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PlacedPopulation:
    """A neuron population on circuits ``offset .. offset + size - 1`` (contiguous).

    ``neurons_per_half`` is the profile's, kept here so ``halves()`` needs no profile.
    """

    name: str
    offset: int
    size: int
    neurons_per_half: int = 256

    def circuits(self) -> np.ndarray:
        """Global circuit index of each neuron, int64 (size,)."""
        return np.arange(self.offset, self.offset + self.size, dtype=np.int64)

    def halves(self) -> np.ndarray:
        """Global half index (core * halves_per_core + half) of each neuron, int64 (size,)."""
        return self.circuits() // self.neurons_per_half


@dataclass(frozen=True, eq=False)
class PlacedProjection:
    """A projection with its realized mask, initial weights and synapse ids.

    Per-connection arrays are vectors over the connections, in the row-major order of ``mask``
    (``pre_index, post_index = np.nonzero(mask)``; ``dense[mask] = vector`` scatters one back):
    ``initial_weights`` (signed model units), ``exc_synapse`` / ``inh_synapse`` the global synapse
    id carrying each connection on an excitatory / inhibitory row, -1 where there is none (a signed
    projection has both). ``pre_group`` indexes ``MappedChip.source_groups``; ``post_half`` is the
    global half of each postsynaptic neuron. ``delay_us`` is the projection's own delay; route
    latency comes on top of it.
    """

    name: str
    pre: str
    post: str
    sign: str
    pre_is_input: bool
    mask: np.ndarray
    pre_index: np.ndarray
    post_index: np.ndarray
    initial_weights: np.ndarray
    exc_synapse: np.ndarray
    inh_synapse: np.ndarray
    delay_us: float
    pre_group: np.ndarray
    post_half: np.ndarray

    @property
    def n_synapses(self) -> int:
        return int(self.pre_index.size)

    def __repr__(self) -> str:  # the arrays would drown the interesting part
        return (f"PlacedProjection({self.name!r}: {self.pre} -> {self.post}, {self.sign}, "
                f"{int(self.mask.sum())} of {self.mask.size} pairs connected, delay {self.delay_us:g} us)")


@dataclass(frozen=True, eq=False)
class Link:
    """One directed event link of the routing graph (an edge)."""

    index: int
    name: str
    source: str
    target: str
    capacity_per_cycle: float  # events per clock cycle; math.inf never congests
    latency_cycles: int
    queue_depth: int


@dataclass(frozen=True, eq=False)
class Route:
    """Links (indices, in order) from a source group's node to a target half's synapse drivers."""

    links: tuple[int, ...]
    latency_cycles: int


@dataclass(frozen=True, eq=False)
class MappedChip:
    """A netlist placed and routed on one chip profile.

    ``source_groups``: "input:<name>" per input, then "<population>@half<g>" per (population,
    global half it occupies). ``routes[(group, half)]``: for every presynaptic group and every
    half its projections' postsynaptic populations occupy (connected or not). ``graph`` edges carry
    ``index`` (into ``links``), ``name``, ``capacity_per_cycle``, ``latency_cycles``,
    ``queue_depth``. ``rows_used[half]`` = (excitatory rows, inhibitory rows) on each half that
    holds neurons; excitatory rows are 0 .. e-1 and inhibitory rows e .. e+i-1.
    """

    profile: ChipProfile
    netlist: Netlist
    populations: dict[str, PlacedPopulation]
    projections: dict[str, PlacedProjection]
    source_groups: list[str]
    links: list[Link]
    routes: dict[tuple[int, int], Route]
    graph: nx.DiGraph
    rows_used: dict[int, tuple[int, int]]
    n_circuits: int

    def __repr__(self) -> str:  # the default would print the netlist, every array and the graph
        return (f"MappedChip(profile={self.profile.name!r}, netlist={self.netlist.name!r}, "
                f"circuits={self.n_circuits}/{self.profile.total_neurons}, populations={len(self.populations)}, "
                f"projections={len(self.projections)}, links={len(self.links)}, routes={len(self.routes)})")

    def half_name(self, half: int) -> str:
        """'core{k}.half{h}' of a global half index."""
        return _half_name(self.profile, half)

    def group_node(self, group: int) -> str:
        """Graph node a source group's events start from ('input:<name>' or 'neurons:core{k}.half{h}')."""
        return _group_node(self.profile, self.source_groups[group])

    def decode_synapses(self, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(global half, row, column) of global synapse ids."""
        ids = np.asarray(ids, dtype=np.int64)
        nph, rows = self.profile.neurons_per_half, self.profile.rows_per_half
        column = ids % nph
        half_row = ids // nph
        return half_row // rows, half_row % rows, column


# --------------------------------------------------------------------------------------------
# Naming helpers
# --------------------------------------------------------------------------------------------

def _half_name(profile: ChipProfile, half: int) -> str:
    core, h = divmod(int(half), profile.halves_per_core)
    return f"core{core}.half{h}"


def _neuron_node(profile: ChipProfile, half: int) -> str:
    return "neurons:" + _half_name(profile, half)


def _group_node(profile: ChipProfile, group_name: str) -> str:
    # "input:<name>" is its own node; "<pop>@half<g>" leaves through its half's shared output link
    if group_name.startswith("input:"):
        return group_name
    return _neuron_node(profile, int(group_name.rsplit("@half", 1)[1]))


def _drivers_node(profile: ChipProfile, half: int) -> str:
    return _half_name(profile, half) + ".drivers"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _error(netlist: Netlist, field: str, message: str) -> MappingError:
    return MappingError(message, file=netlist.source_path, line=netlist.line_of(field), field=field)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

def map_netlist(netlist: Netlist) -> MappedChip:
    """Place populations, realize and place projections on synapse rows, build routes.

    Raises ``MappingError`` (with the netlist's file, line and field path) when the netlist does
    not fit: too many neurons, too many synapse rows on a half, too many MADC channels on a core,
    or a membrane record faster than its ADC.
    """
    profile = netlist.chip
    _check_references(netlist)
    populations = _place_populations(netlist)
    n_circuits = sum(p.size for p in populations.values())
    _check_records(netlist, populations)

    source_groups, pre_groups = _source_groups(netlist, populations)
    post_halves = {name: p.halves() for name, p in populations.items()}

    masks: dict[str, np.ndarray] = {}
    weights: dict[str, np.ndarray] = {}
    for name, proj in netlist.projections.items():
        n_pre, n_post = netlist.size_of(proj.pre), populations[proj.post].size
        try:
            masks[name] = realize_connectivity(proj.connectivity, n_pre, n_post,
                                               same_population=proj.pre == proj.post)
        except ValueError as exc:
            raise _error(netlist, f"projections.{name}.connectivity", str(exc)) from None
        try:
            weights[name] = realize_weights(proj.weights, masks[name], proj.sign)[masks[name]]
        except ValueError as exc:
            raise _error(netlist, f"projections.{name}.weights", str(exc)) from None

    # each projection's connections, (pre index, post index) in the row-major order of its mask
    connections = {name: tuple(ix.astype(np.int64) for ix in np.nonzero(m)) for name, m in masks.items()}
    occupied_halves = sorted({int(h) for p in populations.values() for h in np.unique(p.halves())})
    rows_used, exc_ids, inh_ids = _assign_rows(netlist, populations, connections, occupied_halves)

    graph, links = _build_graph(netlist, occupied_halves)
    pairs: set[tuple[int, int]] = set()
    for proj in netlist.projections.values():
        pairs |= _projection_pairs(pre_groups[proj.pre], post_halves[proj.post])
    routes = _routes(profile, graph, source_groups, sorted(pairs))

    projections = {}
    for name, proj in netlist.projections.items():
        pre_index, post_index = connections[name]
        projections[name] = PlacedProjection(
            name=name,
            pre=proj.pre,
            post=proj.post,
            sign=proj.sign,
            pre_is_input=proj.pre not in netlist.populations,
            mask=masks[name],
            pre_index=pre_index,
            post_index=post_index,
            initial_weights=weights[name],
            exc_synapse=exc_ids[name],
            inh_synapse=inh_ids[name],
            delay_us=float(proj.delay_us),
            pre_group=pre_groups[proj.pre],
            post_half=post_halves[proj.post],
        )
    return MappedChip(
        profile=profile,
        netlist=netlist,
        populations=populations,
        projections=projections,
        source_groups=source_groups,
        links=links,
        routes=routes,
        graph=graph,
        rows_used=rows_used,
        n_circuits=n_circuits,
    )


# --------------------------------------------------------------------------------------------
# Checks and placement
# --------------------------------------------------------------------------------------------

def _check_references(netlist: Netlist) -> None:
    """The loader validates names; this only keeps a hand-built netlist from crashing later."""
    for name, proj in netlist.projections.items():
        field = f"projections.{name}"
        if proj.pre not in netlist.populations and proj.pre not in netlist.inputs:
            raise _error(netlist, field + ".pre", f"unknown presynaptic population or input {proj.pre!r}")
        if proj.post not in netlist.populations:
            raise _error(netlist, field + ".post", f"postsynaptic side {proj.post!r} is not a neuron population")
        if proj.sign not in SIGNS:
            raise _error(netlist, field + ".sign", f"unknown sign {proj.sign!r}; use one of {', '.join(SIGNS)}")
        if not (math.isfinite(proj.delay_us) and proj.delay_us >= 0):
            raise _error(netlist, field + ".delay", f"delay must be finite and >= 0 us, got {proj.delay_us!r}")


def _place_populations(netlist: Netlist) -> dict[str, PlacedPopulation]:
    """Populations in netlist order, contiguously from circuit 0: simple and deterministic."""
    profile = netlist.chip
    needed = sum(p.size for p in netlist.populations.values())
    available = profile.total_neurons
    if needed > available:
        raise _error(
            netlist, "populations",
            f"needs {needed} neuron circuits, the chip has {available} "
            f"({_plural(profile.cores, 'core')} × {profile.neurons_per_core}); {needed - available} too many")
    placed, offset = {}, 0
    for name, pop in netlist.populations.items():
        placed[name] = PlacedPopulation(name=name, offset=offset, size=pop.size,
                                        neurons_per_half=profile.neurons_per_half)
        offset += pop.size
    return placed


def _check_records(netlist: Netlist, populations: dict[str, PlacedPopulation]) -> None:
    """Membrane records: neurons exist, the period is within the ADC, MADC channels suffice.

    MADC channels are a per-core resource shared by all MADC records, so neurons are counted
    across records (a neuron listed twice uses one channel); the record that overflows is blamed.
    """
    profile = netlist.chip
    madc_circuits: dict[int, set[int]] = {}
    for i, rec in enumerate(netlist.record.membrane):
        field = f"record.membrane.{i}"
        if rec.population not in populations:
            raise _error(netlist, field, f"unknown population {rec.population!r}")
        placed = populations[rec.population]
        neurons = np.asarray(rec.neurons, dtype=np.int64).ravel()
        if neurons.size and (neurons.min() < 0 or neurons.max() >= placed.size):
            raise _error(netlist, field, f"neuron indices must be in 0..{placed.size - 1} for {rec.population!r}")
        if rec.adc == "cadc":
            minimum, adc = profile.cadc_min_period_us, "CADC"
        elif rec.adc == "madc":
            minimum, adc = profile.madc_min_period_us, "MADC"
        else:
            raise _error(netlist, field, f"unknown ADC {rec.adc!r}; use cadc or madc")
        period = float(rec.period_us)
        if not (math.isfinite(period) and period > 0):
            raise _error(netlist, field, f"record period must be positive, got {rec.period_us!r} us")
        # tolerate float noise from unit conversion ("1.7 us" vs 1.7000000000000002)
        if period < minimum * (1 - 1e-9):
            raise _error(netlist, field,
                         f"period {period:g} us is below the {adc}'s minimum sample period {minimum:g} us")
        if rec.adc == "madc":
            circuits = placed.offset + neurons
            for core in np.unique(circuits // profile.neurons_per_core):
                used = madc_circuits.setdefault(int(core), set())
                used.update(int(c) for c in circuits[circuits // profile.neurons_per_core == core])
                if len(used) > profile.madc_channels_per_core:
                    raise _error(
                        netlist, field,
                        f"MADC records need {len(used)} channels on core {int(core)}, the core has "
                        f"{profile.madc_channels_per_core}; {len(used) - profile.madc_channels_per_core} too many "
                        "(record fewer neurons per core through the MADC, or use the CADC)")


def _source_groups(netlist: Netlist, populations: dict[str, PlacedPopulation]
                   ) -> tuple[list[str], dict[str, np.ndarray]]:
    """Source groups and, per presynaptic name, the group index of each of its neurons.

    An input is one group (all its events enter through the FPGA); a neuron population has one
    group per half it occupies, because a half's spikes leave through that half's output link.
    """
    groups: list[str] = []
    per_name: dict[str, np.ndarray] = {}
    for name, inp in netlist.inputs.items():
        per_name[name] = np.full(inp.size, len(groups), dtype=np.int64)
        groups.append(f"input:{name}")
    for name, placed in populations.items():
        halves = placed.halves()
        index = np.empty(placed.size, dtype=np.int64)
        for half in np.unique(halves):
            index[halves == half] = len(groups)
            groups.append(f"{name}@half{int(half)}")
        per_name[name] = index
    return groups, per_name


# --------------------------------------------------------------------------------------------
# Synapse rows
# --------------------------------------------------------------------------------------------

def _assign_rows(netlist: Netlist, populations: dict[str, PlacedPopulation],
                 connections: dict[str, tuple[np.ndarray, np.ndarray]], occupied_halves: list[int]):
    """Put every connection on a synapse; returns rows_used, exc ids and inh ids per projection."""
    profile = netlist.chip
    nph, rows_per_half = profile.neurons_per_half, profile.rows_per_half
    n_conn = {name: len(ii) for name, (ii, _) in connections.items()}
    exc_ids = {name: _no_synapses(n, netlist.projections[name].sign == "inhibitory") for name, n in n_conn.items()}
    inh_ids = {name: _no_synapses(n, netlist.projections[name].sign == "excitatory") for name, n in n_conn.items()}

    # per half: the connections of each projection that land on it, as (pre index, post index,
    # position in the projection's connection vector), split by target half (contiguous runs of
    # post neurons)
    per_half: dict[int, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]] = {h: [] for h in occupied_halves}
    for name, proj in netlist.projections.items():
        post = populations[proj.post]
        ii, jj = connections[name]
        halves = (post.offset + jj) // nph
        order = np.argsort(halves, kind="stable")
        ii, jj, halves = ii[order], jj[order], halves[order]
        first, last = post.offset // nph, (post.offset + post.size - 1) // nph
        bounds = np.searchsorted(halves, np.arange(first, last + 2))
        for half, a, b in zip(range(first, last + 1), bounds[:-1], bounds[1:]):
            if b > a:
                per_half[half].append((name, ii[a:b], jj[a:b], order[a:b]))

    rows_used: dict[int, tuple[int, int]] = {}
    for half in occupied_halves:
        entries = per_half[half]
        sign_of = {name: netlist.projections[name].sign for name, *_ in entries}
        exc = _SignPacking(netlist, populations, [e for e in entries if sign_of[e[0]] != "inhibitory"], nph)
        inh = _SignPacking(netlist, populations, [e for e in entries if sign_of[e[0]] != "excitatory"], nph)
        # Fast path: with unquantized weights (ideal) and room for everyone, one row per source.
        fast = profile.is_ideal and exc.n_units + inh.n_units <= rows_per_half
        n_exc = exc.pack(profile.labels_per_row, fast)
        n_inh = inh.pack(profile.labels_per_row, fast)
        if n_exc + n_inh > rows_per_half:
            involved = [name for name, *_ in entries]
            field = f"projections.{involved[0]}" if len(involved) == 1 else "projections"
            raise _error(
                netlist, field,
                f"{_half_name(profile, half)} (global half {half}) needs {n_exc + n_inh} synapse rows "
                f"({n_exc} excitatory + {n_inh} inhibitory) for projection{'s' if len(involved) != 1 else ''} "
                f"{', '.join(involved)}; a half has {rows_per_half} rows; {n_exc + n_inh - rows_per_half} too many")
        base = half * rows_per_half
        exc.write_ids(exc_ids, base, 0, nph)
        inh.write_ids(inh_ids, base, n_exc, nph)
        rows_used[half] = (n_exc, n_inh)
    return rows_used, exc_ids, inh_ids


def _no_synapses(shape: int, never_filled: bool) -> np.ndarray:
    """An all -1 id vector. When the projection has no rows of this sign it stays -1 forever, so
    a read-only broadcast of one -1 stands in for it: same dtype, shape and values, no memory."""
    if never_filled:
        return np.broadcast_to(np.int64(-1), shape)
    return np.full(shape, -1, dtype=np.int64)


class _SignPacking:
    """The sources one half receives on rows of one sign, and their packing onto rows.

    A *unit* is what occupies one label slot on one row: (presynaptic name, neuron index, copy).
    Copy k of a source holds the columns that k+1 or more projections connect it to, so duplicate
    connections from different projections get their own synapses.
    """

    def __init__(self, netlist: Netlist, populations: dict[str, PlacedPopulation], entries, nph: int):
        self.pre_names: list[str] = []
        counts: dict[str, np.ndarray] = {}
        # per projection: (name, pre, pre index, position, column, copy) of its connections here
        self.connections = []
        for name, ii, jj, pos in entries:
            pre = netlist.projections[name].pre
            if pre not in counts:
                self.pre_names.append(pre)
                counts[pre] = np.zeros((netlist.size_of(pre), nph), dtype=np.int32)
            cols = (populations[netlist.projections[name].post].offset + jj) % nph
            # pairs within one projection are unique, so fancy-index += counts each exactly once
            copy = counts[pre][ii, cols]
            counts[pre][ii, cols] += 1
            self.connections.append((name, pre, ii, pos, cols, copy))

        # units: (pre name index, copy, neuron index) and the columns each one needs
        unit_pre, unit_copy, unit_index, unit_cols, unit_ncols = [], [], [], [], []
        for p, pre in enumerate(self.pre_names):
            c = counts[pre]
            for k in range(int(c.max())):
                present = c > k
                neurons = np.flatnonzero(present.any(axis=1))
                sub = present[neurons]
                unit_pre.append(np.full(neurons.size, p, dtype=np.int64))
                unit_copy.append(np.full(neurons.size, k, dtype=np.int64))
                unit_index.append(neurons)
                unit_ncols.append(sub.sum(axis=1))
                unit_cols.append(sub)
        self.copies = {pre: int(counts[pre].max()) for pre in self.pre_names}
        self.sizes = {pre: counts[pre].shape[0] for pre in self.pre_names}
        if unit_pre:
            self.unit_pre = np.concatenate(unit_pre)
            self.unit_copy = np.concatenate(unit_copy)
            self.unit_index = np.concatenate(unit_index)
            self.unit_ncols = np.concatenate(unit_ncols)
            self._unit_cols = unit_cols
        else:
            self.unit_pre = self.unit_copy = self.unit_index = self.unit_ncols = np.zeros(0, dtype=np.int64)
            self._unit_cols = []
        self.n_units = int(self.unit_pre.size)
        self.unit_row = np.zeros(0, dtype=np.int64)

    def pack(self, labels_per_row: int, fast: bool) -> int:
        """Assign each unit a row (relative to this sign's first row); returns the rows used."""
        if fast:
            self.unit_row = np.arange(self.n_units, dtype=np.int64)
            return self.n_units
        if not self.n_units:
            return 0
        # column lists of all units, flattened, with per-unit start offsets
        cols = np.concatenate([np.nonzero(sub)[1] for sub in self._unit_cols]).tolist()
        starts = np.concatenate(([0], np.cumsum(self.unit_ncols))).tolist()
        # first fit decreasing: wide sources first pack tighter; stable sort keeps it deterministic
        order = np.argsort(-self.unit_ncols, kind="stable").tolist()

        busy: dict[int, int] = {}  # column -> bitset of rows whose synapse in that column is taken
        full = 0                   # bitset of rows whose labels are all used
        load: list[int] = []       # sources per row
        rows = [0] * self.n_units
        for u in order:
            unit_columns = cols[starts[u]:starts[u + 1]]
            blocked = full
            for c in unit_columns:
                blocked |= busy.get(c, 0)
            # lowest zero bit of `blocked` = first row free in all of this source's columns
            row = (~blocked & (blocked + 1)).bit_length() - 1
            bit = 1 << row
            for c in unit_columns:
                busy[c] = busy.get(c, 0) | bit
            if row == len(load):
                load.append(1)
            else:
                load[row] += 1
            if load[row] >= labels_per_row:
                full |= bit
            rows[u] = row
        self.unit_row = np.asarray(rows, dtype=np.int64)
        return len(load)

    def write_ids(self, ids: dict[str, np.ndarray], half_row_base: int, row_offset: int, nph: int) -> None:
        """Fill the global synapse id of every connection into ``ids[projection]``."""
        lookup = {}
        for p, pre in enumerate(self.pre_names):
            table = np.full((self.copies[pre], self.sizes[pre]), -1, dtype=np.int64)
            sel = self.unit_pre == p
            table[self.unit_copy[sel], self.unit_index[sel]] = self.unit_row[sel]
            lookup[pre] = table
        for name, pre, ii, pos, cols, copy in self.connections:
            rows = lookup[pre][copy, ii] + row_offset
            ids[name][pos] = (half_row_base + rows) * nph + cols


# --------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------

def _build_graph(netlist: Netlist, occupied_halves: list[int]) -> tuple[nx.DiGraph, list[Link]]:
    """The event network of the profile as a directed graph; links are indexed in creation order."""
    profile = netlist.chip
    hpc = profile.halves_per_core
    if profile.is_ideal:
        # 64 cores of an ideal chip would be mostly empty nodes: keep only cores holding neurons
        cores = sorted({h // hpc for h in occupied_halves})
    else:
        cores = list(range(profile.cores))
    graph = nx.DiGraph(profile=profile.name, netlist=netlist.name)
    links: list[Link] = []

    def add_link(source: str, target: str, capacity: float, latency: int) -> None:
        link = Link(index=len(links), name=f"{source}->{target}", source=source, target=target,
                    capacity_per_cycle=float(capacity), latency_cycles=int(latency),
                    queue_depth=int(profile.queue_depth))
        links.append(link)
        graph.add_edge(source, target, index=link.index, name=link.name,
                       capacity_per_cycle=link.capacity_per_cycle, latency_cycles=link.latency_cycles,
                       queue_depth=link.queue_depth)

    # nodes first, with attributes, so their order in the graph is readable
    for name in netlist.inputs:
        graph.add_node(f"input:{name}", kind="input")
    graph.add_node("fpga", kind="fpga")
    for k in cores:
        graph.add_node(f"core{k}.xbar", kind="crossbar", core=k)
        for h in range(hpc):
            graph.add_node(_neuron_node(profile, k * hpc + h), kind="neurons", core=k, half=h)
            graph.add_node(_drivers_node(profile, k * hpc + h), kind="drivers", core=k, half=h)

    for name in netlist.inputs:
        add_link(f"input:{name}", "fpga", math.inf, 0)  # the host side never congests
    for k in cores:
        add_link("fpga", f"core{k}.xbar", profile.input_links * profile.input_link_capacity,
                 profile.latency_input_cycles)
    for k in cores:
        for h in range(hpc):
            add_link(_neuron_node(profile, k * hpc + h), f"core{k}.xbar", profile.neuron_output_capacity,
                     profile.latency_neuron_out_cycles)
    for k in cores:
        for h in range(hpc):
            add_link(f"core{k}.xbar", _drivers_node(profile, k * hpc + h), profile.bus_capacity,
                     profile.latency_crossbar_cycles)
    if len(cores) > 1:
        for k in cores:
            for m in cores:
                if k != m:
                    add_link(f"core{k}.xbar", f"core{m}.xbar", profile.core_link_capacity,
                             profile.latency_core_link_cycles)
    return graph, links


def _projection_pairs(pre_group: np.ndarray, post_half: np.ndarray) -> set[tuple[int, int]]:
    """Every (source group, target half) pair of a projection, connected or not.

    The emulator and host look a route up for each presynaptic group and each half the
    postsynaptic population occupies, so a pair without any connection still gets its route
    (it costs one path lookup, and events only travel where synapses are).
    """
    return {(int(g), int(h)) for g in np.unique(pre_group) for h in np.unique(post_half)}


def _routes(profile: ChipProfile, graph: nx.DiGraph, source_groups: list[str],
            pairs: list[tuple[int, int]]) -> dict[tuple[int, int], Route]:
    """Lowest-latency path per (group, half); ties go to fewer hops (ideal latencies are all 0)."""
    hop_scale = graph.number_of_edges() + 1  # latency dominates, hop count breaks ties

    def weight(u, v, data):
        return data["latency_cycles"] * hop_scale + 1

    paths_from: dict[str, dict[str, list[str]]] = {}
    routes: dict[tuple[int, int], Route] = {}
    for group, half in pairs:
        source = _group_node(profile, source_groups[group])
        if source not in paths_from:
            paths_from[source] = nx.single_source_dijkstra_path(graph, source, weight=weight)
        path = paths_from[source][_drivers_node(profile, half)]
        edges = [graph.edges[u, v] for u, v in zip(path[:-1], path[1:])]
        routes[(group, half)] = Route(links=tuple(e["index"] for e in edges),
                                      latency_cycles=sum(e["latency_cycles"] for e in edges))
    return routes


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------

def graph_summary(mapped: MappedChip) -> dict:
    """Plain-data overview of a mapping (for ``chipctl map`` and logs).

    Capacities stay floats; ``math.inf`` marks links that never congest.
    """
    profile = mapped.profile
    return {
        "profile": profile.name,
        "nodes": mapped.graph.number_of_nodes(),
        "edges": mapped.graph.number_of_edges(),
        "links": [
            {"index": link.index, "name": link.name, "source": link.source, "target": link.target,
             "capacity_per_cycle": link.capacity_per_cycle, "latency_cycles": link.latency_cycles,
             "queue_depth": link.queue_depth}
            for link in mapped.links
        ],
        "rows_used": {
            half: {"name": _half_name(profile, half), "excitatory": exc, "inhibitory": inh,
                   "total": exc + inh, "available": profile.rows_per_half}
            for half, (exc, inh) in mapped.rows_used.items()
        },
        "circuits_used": mapped.n_circuits,
        "circuits_available": profile.total_neurons,
        "source_groups": len(mapped.source_groups),
        "routes": len(mapped.routes),
        "max_route_latency_cycles": max((r.latency_cycles for r in mapped.routes.values()), default=0),
    }


def write_graphml(mapped: MappedChip, path: str | PathLike) -> None:
    """Write the routing graph as GraphML; infinite capacities become the largest float.

    GraphML has no infinity literal other tools agree on, so math.inf is written as
    ``sys.float_info.max`` (read it back as "unlimited"). Each neuron node lists the source
    groups sitting on it in a ``groups`` attribute.
    """
    graph = mapped.graph.copy()
    for _, _, data in graph.edges(data=True):
        if math.isinf(data["capacity_per_cycle"]):
            data["capacity_per_cycle"] = sys.float_info.max
    on_half: dict[str, list[str]] = {}
    for i, name in enumerate(mapped.source_groups):
        if not name.startswith("input:"):
            on_half.setdefault(mapped.group_node(i), []).append(name)
    for node, names in on_half.items():
        if node in graph:
            graph.nodes[node]["groups"] = ",".join(names)
    nx.write_graphml(graph, path)
