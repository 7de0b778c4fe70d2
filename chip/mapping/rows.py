"""Synapse rows: every connection onto a synapse (half, row, column), packed by 6-bit labels on
the rows of the bus its source's events arrive on.
"""

from __future__ import annotations

import sys

import numpy as np

from ..netlist import Netlist
from .model import PlacedPopulation, _error, _half_name, _neuron_bus


def _assign_rows(netlist: Netlist, populations: dict[str, PlacedPopulation],
                 connections: dict[str, tuple[np.ndarray, np.ndarray]], occupied_halves: list[int],
                 input_halves: dict[str, list[int]]):
    """Put every connection on a synapse.

    Returns rows_used and bus_rows per half, exc ids and inh ids per projection, and
    ``input_buses[input][half]``: the bus each neuron of an input uses on each half in
    ``input_halves[input]`` (the halves its projections' postsynaptic populations occupy).
    """
    profile = netlist.chip
    nph, rows_per_half, rows_per_bus = profile.neurons_per_half, profile.rows_per_half, profile.rows_per_bus
    n_buses = profile.buses_per_half
    n_conn = {name: len(ii) for name, (ii, _) in connections.items()}
    # ids at the width the chip's synapse count needs: int32 halves them for any chip below 2^31
    id_type = np.int32 if profile.cores * profile.halves_per_core * rows_per_half * nph <= 1 << 31 else np.int64
    exc_ids = {name: _no_synapses(n, netlist.projections[name].sign == "inhibitory", id_type)
               for name, n in n_conn.items()}
    inh_ids = {name: _no_synapses(n, netlist.projections[name].sign == "excitatory", id_type)
               for name, n in n_conn.items()}
    input_buses = {name: {h: np.zeros(netlist.size_of(name), dtype=np.int64) for h in halves}
                   for name, halves in input_halves.items()}

    rows_used: dict[int, tuple[int, int]] = {}
    bus_rows: dict[int, tuple[tuple[int, int], ...]] = {}
    rest = occupied_halves
    if n_buses == 1 and profile.is_ideal:
        # one row per source on every half where that is what the packing below gives, over all
        # halves at once; the halves it leaves (a source sent by two projections of one sign, or
        # more sources than rows) are packed below
        rest = _one_row_per_source(netlist, populations, connections, occupied_halves, exc_ids, inh_ids,
                                   rows_used, bus_rows)
    wanted = set(rest)

    # per half: the connections of each projection that land on it, as their positions in the
    # projection's connection vector, split by target half (contiguous runs of post neurons); the
    # pre and post indices are gathered per half when it is packed
    per_half: dict[int, list[tuple[str, np.ndarray]]] = {h: [] for h in rest}
    for name, proj in netlist.projections.items():
        if not wanted:
            break
        post = populations[proj.post]
        first, last = post.offset // nph, (post.offset + post.size - 1) // nph
        if not wanted.intersection(range(first, last + 1)):
            continue
        ii, jj = connections[name]
        halves = (post.offset + jj) // nph
        # a stable sort of small integers is a radix sort: linear in the connections
        order = np.argsort(halves.astype(np.int16) if halves.size and halves.max() < 1 << 15 else halves,
                           kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(halves - first, minlength=last - first + 1))]
        for half, a, b in zip(range(first, last + 1), bounds[:-1], bounds[1:]):
            if b > a and half in wanted:
                per_half[half].append((name, order[a:b]))
        del halves, order

    for half in rest:
        entries = [(name, connections[name][0][pos], connections[name][1][pos], pos) for name, pos in per_half[half]]
        sign_of = {name: netlist.projections[name].sign for name, *_ in entries}
        exc = _SignPacking(netlist, populations, [e for e in entries if sign_of[e[0]] != "inhibitory"], nph)
        inh = _SignPacking(netlist, populations, [e for e in entries if sign_of[e[0]] != "excitatory"], nph)
        if n_buses == 1:
            # Fast path: with unquantized weights (ideal) and room for everyone, one row per source.
            fast = profile.is_ideal and exc.n_units + inh.n_units <= rows_per_bus
            exc.pack_one_bus(profile.labels_per_row, fast)
            inh.pack_one_bus(profile.labels_per_row, fast)
        else:
            reaching = [name for name, halves in input_halves.items() if half in halves]
            _pack_buses(profile, populations, exc, inh, reaching, half, input_buses)
        per_bus = tuple((exc.rows_on(b), inh.rows_on(b)) for b in range(n_buses))
        _check_rows(netlist, half, per_bus, exc, inh)
        exc.write_ids(exc_ids, half * rows_per_half, [b * rows_per_bus for b in range(n_buses)], nph)
        inh.write_ids(inh_ids, half * rows_per_half, [b * rows_per_bus + e for b, (e, _) in enumerate(per_bus)], nph)
        rows_used[half] = (sum(e for e, _ in per_bus), sum(i for _, i in per_bus))
        bus_rows[half] = per_bus
    rows_used = {half: rows_used[half] for half in occupied_halves}
    bus_rows = {half: bus_rows[half] for half in occupied_halves}
    return rows_used, bus_rows, exc_ids, inh_ids, input_buses


def _one_row_per_source(netlist: Netlist, populations: dict[str, PlacedPopulation],
                        connections: dict[str, tuple[np.ndarray, np.ndarray]], occupied_halves: list[int],
                        exc_ids: dict, inh_ids: dict, rows_used: dict, bus_rows: dict) -> list[int]:
    """The ideal profile's one row per source (``_SignPacking.pack_one_bus(fast=True)``) with
    array operations over whole projections instead of a packing per half.

    On a half, a sign's units are its sources in the order of the projections that first bring
    them (netlist order), each source's neurons in index order, one row each from the sign's first
    row (excitatory rows from row 0, inhibitory ones after them). When every source reaches a half
    through at most one projection per sign, a projection's units there are the runs of its
    connections from one presynaptic neuron onto that half (connections are in row-major order,
    so a neuron's connections onto one half are consecutive): unit k of projection q on half h
    sits on row ``sign base + rows of the projections before q there + k``. Fills the ids,
    ``rows_used`` and ``bus_rows`` of those halves; returns the other halves (a source brought by
    two projections of one sign, whose copies need the packer's ranking, or more sources than
    the bus has rows), which it leaves untouched.
    """
    profile = netlist.chip
    nph, rows_per_half, rows_per_bus = profile.neurons_per_half, profile.rows_per_half, profile.rows_per_bus
    n_halves = max(occupied_halves, default=-1) + 1
    runs: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # per projection: first connection and half of each unit
    count: dict[str, np.ndarray] = {}                    # per projection: its units on each half
    for name, proj in netlist.projections.items():
        ii, jj = connections[name]
        half = jj + populations[proj.post].offset  # a circuit: below 2^31 whenever jj's width is
        half //= nph
        new = np.empty(ii.size, dtype=bool)
        new[:1] = True
        np.not_equal(ii[1:], ii[:-1], out=new[1:])
        new[1:] |= half[1:] != half[:-1]
        starts = np.flatnonzero(new)
        del new
        unit_half = half[starts]
        del half
        runs[name] = (starts, unit_half)
        count[name] = np.bincount(unit_half, minlength=n_halves)

    classes = (("exc", [n for n, p in netlist.projections.items() if p.sign != "inhibitory"]),
               ("inh", [n for n, p in netlist.projections.items() if p.sign != "excitatory"]))
    mixed = np.zeros(n_halves, dtype=bool)
    units = {}
    for cls, names in classes:
        total = np.zeros(n_halves, dtype=np.int64)
        per_pre: dict[str, np.ndarray] = {}
        for name in names:
            pre = netlist.projections[name].pre
            per_pre[pre] = per_pre.get(pre, 0) + (count[name] > 0)
            total += count[name]
        for times in per_pre.values():
            mixed |= times > 1
        units[cls] = total
    mixed |= units["exc"] + units["inh"] > rows_per_bus
    occupied = np.zeros(n_halves, dtype=bool)
    occupied[occupied_halves] = True
    fast = occupied & ~mixed
    for half in np.flatnonzero(fast).tolist():
        e, i = int(units["exc"][half]), int(units["inh"][half])
        rows_used[half] = (e, i)
        bus_rows[half] = ((e, i),)

    for cls, names in classes:
        ids_of = exc_ids if cls == "exc" else inh_ids
        # this sign's first row on each half: inhibitory rows come after the excitatory ones
        base = np.arange(n_halves, dtype=np.int64) * rows_per_half
        if cls == "inh":
            base += units["exc"]
        for name in names:
            starts, unit_half = runs[name]
            ids = ids_of[name]
            if starts.size:
                # each unit's rank among the projection's units on its half (units come neuron by
                # neuron: a stable sort by half ranks them; of small integers, a radix sort)
                order = np.argsort(unit_half.astype(np.int16) if n_halves <= 1 << 15 else unit_half, kind="stable")
                first = np.zeros(n_halves + 1, dtype=np.int64)
                np.cumsum(count[name], out=first[1:])
                rank = np.empty(starts.size, dtype=np.int64)
                rank[order] = np.arange(starts.size) - first[unit_half[order]]
                # the unit's row as a synapse id without its column (the ids' width holds it)
                row_id = ((base[unit_half] + rank) * nph).astype(ids.dtype)
                del order, rank
                ii, jj = connections[name]
                lengths = np.diff(starts, append=ii.size)
                col = jj + populations[netlist.projections[name].post].offset
                col %= nph
                keep = fast[unit_half]
                if keep.all():
                    np.add(np.repeat(row_id, lengths), col, out=ids, casting="unsafe")
                else:
                    at = np.repeat(keep, lengths)
                    ids[at] = np.repeat(row_id, lengths)[at] + col[at]
                del col
            base += count[name]
    return [half for half in occupied_halves if not fast[half]]


def _check_rows(netlist: Netlist, half: int, per_bus, exc: "_SignPacking", inh: "_SignPacking") -> None:
    """The mapping error for the first bus (or, with one bus, the half) that needs too many rows."""
    profile = netlist.chip
    over = [b for b, (e, i) in enumerate(per_bus) if e + i > profile.rows_per_bus]
    if not over:
        return
    b = over[0]
    n_exc, n_inh = per_bus[b]
    on_bus = exc.projections_on(b) | inh.projections_on(b)
    involved = [name for name in netlist.projections if name in on_bus]
    field = f"projections.{involved[0]}" if len(involved) == 1 else "projections"
    where, capacity = f"{_half_name(profile, half)} (global half {half})", "a half"
    if profile.buses_per_half > 1:
        where, capacity = f"{where} bus {b}", "a bus"
    others = f" (so do buses {', '.join(str(o) for o in over[1:])})" if len(over) > 1 else ""
    raise _error(
        netlist, field,
        f"{where} needs {n_exc + n_inh} synapse rows ({n_exc} excitatory + {n_inh} inhibitory) for "
        f"projection{'s' if len(involved) != 1 else ''} {', '.join(involved)}; {capacity} has "
        f"{profile.rows_per_bus} rows; {n_exc + n_inh - profile.rows_per_bus} too many{others}")


def _no_synapses(shape: int, never_filled: bool, id_type=np.int64) -> np.ndarray:
    """An all -1 id vector. When the projection has no rows of this sign it stays -1 forever, so
    a read-only broadcast of one -1 stands in for it: same dtype, shape and values, no memory."""
    if never_filled:
        return np.broadcast_to(id_type(-1), shape)
    return np.full(shape, -1, dtype=id_type)


class _Rows:
    """The rows of one sign on one bus, filled first fit, with rows and columns kept as Python-int
    bitsets: a unit's blocked rows are the OR of its columns' occupancy, its row the lowest zero bit."""

    __slots__ = ("labels", "busy", "full", "load")

    def __init__(self, labels_per_row: int, columns: int):
        self.labels = labels_per_row
        self.busy = [0] * columns  # per column: bitset of rows whose synapse in that column is taken
        self.full = 0              # bitset of rows whose labels are all used
        self.load: list[int] = []  # sources per row

    def place(self, columns: list[int]) -> int:
        """Put a unit needing ``columns`` on the first row free in all of them; returns the row."""
        busy = self.busy
        blocked = self.full
        for c in columns:
            blocked |= busy[c]
        row = (~blocked & (blocked + 1)).bit_length() - 1
        bit = 1 << row
        for c in columns:
            busy[c] |= bit
        if row == len(self.load):
            self.load.append(1)
        else:
            self.load[row] += 1
        if self.load[row] >= self.labels:
            self.full |= bit
        return row

    def rows_after(self, units: list[list[int]]) -> int:
        """Rows in use if these units were placed (in order); nothing changes."""
        if not units:
            return len(self.load)
        busy = self.busy
        saved = [(c, busy[c]) for columns in units for c in columns]
        full, load = self.full, list(self.load)
        for columns in units:
            self.place(columns)
        n = len(self.load)
        for c, bits in reversed(saved):  # a column listed twice gets its oldest value back last
            busy[c] = bits
        self.full, self.load = full, load
        return n


class _SignPacking:
    """The sources one half receives on rows of one sign, and their packing onto rows.

    A *unit* is what occupies one label slot on one row: (presynaptic name, neuron index, copy).
    Copy k of a source holds the columns that k+1 or more projections connect it to, so duplicate
    connections from different projections get their own synapses. After packing, unit u sits on
    bus ``unit_bus[u]`` at row ``unit_row[u]`` counted from this sign's first row on that bus.
    """

    def __init__(self, netlist: Netlist, populations: dict[str, PlacedPopulation], entries, nph: int):
        self.n_columns = nph
        self.pre_names: list[str] = []
        # per projection: (name, pre, pre index, position, column) of its connections here
        found = []
        for name, ii, jj, pos in entries:
            pre = netlist.projections[name].pre
            if pre not in self.pre_names:
                self.pre_names.append(pre)
            cols = (populations[netlist.projections[name].post].offset + jj) % nph
            found.append((name, pre, ii, pos, cols))

        # Copy k of a (source, column) is its k-th connection in entry order (pairs within one
        # projection are unique): the rank of each connection among the earlier ones with the same
        # (pre index, column), from a stable sort of their keys, without any (size, columns) table.
        copy_of: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(found)
        unit_pre, unit_copy, unit_index, unit_cols, unit_ncols = [], [], [], [], []
        self.copies, self.sizes = {}, {}
        for p, pre in enumerate(self.pre_names):
            mine = [e for e, f in enumerate(found) if f[1] == pre]
            ii = np.concatenate([found[e][2] for e in mine]).astype(np.int64, copy=False)
            cols = np.concatenate([found[e][4] for e in mine]).astype(np.int64, copy=False)
            if len(mine) == 1:  # one projection from this source here: every connection is copy 0
                copy = np.zeros(ii.size, dtype=np.int64)
            else:
                key = ii * nph + cols
                order = np.argsort(key, kind="stable")
                ranked = key[order]
                run_start = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
                rank = np.arange(key.size) - np.repeat(run_start, np.diff(np.r_[run_start, key.size]))
                copy = np.empty(key.size, dtype=np.int64)
                copy[order] = rank
            bounds = np.cumsum([0] + [found[e][2].size for e in mine])
            for k, e in enumerate(mine):
                copy_of[e] = copy[bounds[k]:bounds[k + 1]]
            size = netlist.size_of(pre)
            self.copies[pre] = int(copy.max()) + 1 if copy.size else 0
            self.sizes[pre] = size
            # units in order of copy, then neuron index (each unit's columns: see columns())
            ukey = copy * size + ii
            per_key = np.bincount(ukey, minlength=self.copies[pre] * size)
            keys = np.flatnonzero(per_key)
            unit_pre.append(np.full(keys.size, p, dtype=np.int64))
            unit_copy.append(keys // size)
            unit_index.append(keys % size)
            unit_ncols.append(per_key[keys])
            unit_cols.append((ukey, cols))
        self.connections = [(name, pre, ii, pos, cols, copy_of[e])
                            for e, (name, pre, ii, pos, cols) in enumerate(found)]
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
        self.unit_bus = np.zeros(self.n_units, dtype=np.int64)
        self._rows_per_bus: list[int] = []

    def column_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Each unit's columns, ascending, as ``cols[ptr[u]:ptr[u + 1]]`` (units in unit order:
        copy, then neuron index)."""
        ptr = np.zeros(self.n_units + 1, dtype=np.int64)
        if not self.n_units:
            return ptr, np.zeros(0, dtype=np.int64)
        np.cumsum(self.unit_ncols, out=ptr[1:])
        # (unit key, column) pairs are unique: sorting key * columns + column orders them by unit,
        # then column, and the column is the remainder
        n = self.n_columns
        cols = np.concatenate([np.sort(ukey * n + cols) % n for ukey, cols in self._unit_cols])
        return ptr, cols

    def columns(self) -> list[list[int]]:
        """Each unit's columns, as Python lists (what the row bitsets index)."""
        if not self.n_units:
            return []
        ptr, cols = self.column_arrays()
        cols, starts = cols.tolist(), ptr.tolist()
        return [cols[starts[u]:starts[u + 1]] for u in range(self.n_units)]

    def rows_on(self, bus: int) -> int:
        """Rows of this sign used on ``bus``."""
        return self._rows_per_bus[bus] if bus < len(self._rows_per_bus) else 0

    def pack_one_bus(self, labels_per_row: int, fast: bool) -> None:
        """Every unit on bus 0: one row each (fast), or first fit in order of decreasing width."""
        if fast:
            self.unit_row = np.arange(self.n_units, dtype=np.int64)
            self._rows_per_bus = [self.n_units]
            return
        rows = _Rows(labels_per_row, self.n_columns)
        columns = self.columns()
        unit_row = [0] * self.n_units
        # first fit decreasing: wide sources first pack tighter; stable sort keeps it deterministic
        for u in np.argsort(-self.unit_ncols, kind="stable").tolist():
            unit_row[u] = rows.place(columns[u])
        self.unit_row = np.asarray(unit_row, dtype=np.int64)
        self._rows_per_bus = [len(rows.load)]

    def projections_on(self, bus: int) -> set[str]:
        """Projections with a connection on rows of this sign on ``bus``."""
        table = self._lookup(self.unit_bus)
        return {name for name, pre, ii, _pos, _cols, copy in self.connections
                if np.any(table[pre][copy, ii] == bus)}

    def _lookup(self, per_unit: np.ndarray) -> dict[str, np.ndarray]:
        """Per presynaptic name, a (copies, size) table of a per-unit value (-1: no such unit)."""
        lookup = {}
        for p, pre in enumerate(self.pre_names):
            table = np.full((self.copies[pre], self.sizes[pre]), -1, dtype=np.int64)
            sel = self.unit_pre == p
            table[self.unit_copy[sel], self.unit_index[sel]] = per_unit[sel]
            lookup[pre] = table
        return lookup

    def write_ids(self, ids: dict[str, np.ndarray], half_row_base: int, bus_row_offset: list[int], nph: int) -> None:
        """Fill the global synapse id of every connection into ``ids[projection]``; this sign's
        rows on bus b start at row ``bus_row_offset[b]`` of the half."""
        offsets = np.asarray(bus_row_offset, dtype=np.int64)
        lookup = self._lookup(self.unit_row + offsets[self.unit_bus])
        for name, pre, ii, pos, cols, copy in self.connections:
            ids[name][pos] = (half_row_base + lookup[pre][copy, ii]) * nph + cols


#: units on a half from which the compiled packer pays for starting numba in a process that has
#: not (a command that maps without running; ~0.5 s and ~100 MB to start numba)
_COMPILED_FROM_UNITS = 20_000


def _pack_buses(profile, populations: dict[str, PlacedPopulation], exc: _SignPacking, inh: _SignPacking,
                inputs: list[str], half: int, input_buses: dict[str, dict[int, np.ndarray]]) -> None:
    """Pack one half's units onto the rows of its buses (see ``_pack_buses_python``): with the
    compiled loop of ``chip.mapping.packing`` when numba is loaded (any run) or the half is
    large, else (or when a bus overflows, for the exact error) with the Python packer. Both give
    the same placements (tested on many netlists)."""
    if "numba" in sys.modules or exc.n_units + inh.n_units >= _COMPILED_FROM_UNITS:
        if _pack_buses_compiled(profile, populations, exc, inh, inputs, half, input_buses):
            return
    _pack_buses_python(profile, populations, exc, inh, inputs, half, input_buses)


def _fixed_buses(profile, populations, pk: "_SignPacking", input_buses) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: whether its source is an input (bus chosen later), and the bus of a neuron's."""
    is_input = np.array([pre in input_buses for pre in pk.pre_names], dtype=bool)[pk.unit_pre] \
        if pk.n_units else np.zeros(0, dtype=bool)
    offsets = np.array([0 if pre in input_buses else populations[pre].offset for pre in pk.pre_names],
                       dtype=np.int64)
    bus = np.where(is_input, 0, _neuron_bus(profile, offsets[pk.unit_pre] + pk.unit_index)).astype(np.int64)
    return is_input, bus


def _pack_buses_compiled(profile, populations, exc: "_SignPacking", inh: "_SignPacking", inputs: list[str],
                         half: int, input_buses) -> bool:
    """``_pack_buses_python``'s placements from arrays and one compiled loop; False (nothing
    changed) when a bus overflows."""
    from .packing import pack_half

    packings = (exc, inh)
    base, n_sources = {}, 0
    for name in inputs:
        base[name] = n_sources
        n_sources += len(input_buses[name][half])
    signs, widths, buses = [], np.zeros(n_sources, dtype=np.int64), []
    for pk in packings:
        is_input, bus = _fixed_buses(profile, populations, pk, input_buses)
        ptr, cols = pk.column_arrays()
        order = np.argsort(-pk.unit_ncols, kind="stable")
        fixed = order[~is_input[order]]
        flex = order[is_input[order]]
        # each input unit's source (input neuron) id, in the order the Python packer lists them
        pre_base = np.array([base.get(pre, 0) for pre in pk.pre_names], dtype=np.int64)
        src = pre_base[pk.unit_pre[flex]] + pk.unit_index[flex] if flex.size else np.zeros(0, dtype=np.int64)
        by_src = np.argsort(src, kind="stable")
        src_units = flex[by_src]
        src_ptr = np.zeros(n_sources + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n_sources), out=src_ptr[1:])
        np.add.at(widths, src, pk.unit_ncols[flex])
        signs.append((ptr, cols, fixed, bus[fixed], src_ptr, src_units, bus))
        buses.append(bus)
    order = np.argsort(-widths, kind="stable")
    packed = pack_half(profile.labels_per_row, profile.rows_per_bus, profile.buses_per_half,
                       profile.neurons_per_half, signs, order, n_sources)
    if packed is None:
        return False
    rows, per_bus, src_bus = packed
    for s, pk in enumerate(packings):
        pk.unit_row = rows[s]
        pk.unit_bus = buses[s]
        pk._rows_per_bus = per_bus[s]
    for name in inputs:
        input_buses[name][half][:] = src_bus[base[name]:base[name] + len(input_buses[name][half])]
    return True


def _pack_buses_python(profile, populations: dict[str, PlacedPopulation], exc: _SignPacking, inh: _SignPacking,
                       inputs: list[str], half: int, input_buses: dict[str, dict[int, np.ndarray]]) -> None:
    """Pack one half's units onto the rows of its buses.

    A neuron's events reach every half on the bus of its event output, so its units go to that
    bus's rows, first fit in order of decreasing width per bus and sign. Then every neuron of each
    input in ``inputs`` (those reaching this half) gets a bus: in order of decreasing width on this
    half (its units of both signs together; ties in netlist order, then by index), each takes the
    bus that has the most rows left once its units are placed there, ties going to the bus that
    carries fewer input neurons so far, then to the lowest index. A neuron without a synapse here
    gets a bus too (its events still reach the half).
    """
    n_buses = profile.buses_per_half
    packings = (exc, inh)
    bins = [[_Rows(profile.labels_per_row, profile.neurons_per_half) for _ in range(n_buses)] for _ in packings]
    columns = [pk.columns() for pk in packings]
    rows = [[0] * pk.n_units for pk in packings]
    flexible: dict[tuple[str, int], list[list[int]]] = {}  # (input, neuron) -> its units per sign
    for s, pk in enumerate(packings):
        is_input = np.array([pk.pre_names[p] in input_buses for p in pk.unit_pre.tolist()], dtype=bool)
        offsets = np.array([0 if pre in input_buses else populations[pre].offset for pre in pk.pre_names],
                           dtype=np.int64)
        bus = np.where(is_input, 0, _neuron_bus(profile, offsets[pk.unit_pre] + pk.unit_index))
        for u in np.argsort(-pk.unit_ncols, kind="stable").tolist():
            if is_input[u]:
                flexible.setdefault((pk.pre_names[pk.unit_pre[u]], int(pk.unit_index[u])), [[], []])[s].append(u)
            else:
                rows[s][u] = bins[s][bus[u]].place(columns[s][u])
        pk.unit_bus = bus

    sources = [(name, i) for name in inputs for i in range(len(input_buses[name][half]))]
    width = [sum(int(packings[s].unit_ncols[u]) for s in (0, 1) for u in flexible.get(src, ((), ()))[s])
             for src in sources]
    carried = [0] * n_buses  # input neurons given each bus
    for k in sorted(range(len(sources)), key=lambda k: -width[k]):
        name, i = sources[k]
        units = flexible.get((name, i), ((), ()))
        need = [[columns[s][u] for u in units[s]] for s in (0, 1)]
        best = min(range(n_buses), key=lambda b: (sum(bins[s][b].rows_after(need[s]) for s in (0, 1)),
                                                  carried[b], b))
        for s in (0, 1):
            for u in units[s]:
                rows[s][u] = bins[s][best].place(columns[s][u])
                packings[s].unit_bus[u] = best
        carried[best] += 1
        input_buses[name][half][i] = best

    for s, pk in enumerate(packings):
        pk.unit_row = np.asarray(rows[s], dtype=np.int64)
        pk._rows_per_bus = [len(b.load) for b in bins[s]]
