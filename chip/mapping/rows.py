"""Synapse rows: every connection onto a synapse (half, row, column), packed by 6-bit labels.
"""

from __future__ import annotations


import numpy as np

from ..netlist import Netlist
from .model import PlacedPopulation, _error, _half_name


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
