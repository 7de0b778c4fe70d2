"""First-fit row packing of one half's buses as one compiled loop (``rows._pack_buses``'s work).

Job: the same placements as the Python packer in ``chip.mapping.rows`` (``_Rows.place``,
``_Rows.rows_after`` driven by ``_pack_buses``), row for row and bus for bus, in a fraction of its
time: on a full 16-core bss2 chip the Python loop makes ~260 000 placements and ~10 000 trial
packings. The Python side prepares plain arrays (each unit's columns, the order units are placed
in, each input neuron's units); this loop keeps the same bitsets (rows busy per column, rows whose
labels are all used, sources per row) as fixed-size words instead of Python ints.

A bitset has ``words`` 64-bit words, room for ``64 * words`` rows: one word more than a bus owns,
so a trial packing that overflows a bus by less than a word still counts its rows exactly. Should
any placement need a row beyond that (a netlist that does not fit, whose error message the Python
packer writes), the loop returns False and the caller runs the Python packer instead.
"""

from __future__ import annotations

import numpy as np

from ..numba_start import skip_blas_probe

skip_blas_probe()  # before this module's first compiled call: numba without scipy.linalg

from numba import njit  # noqa: E402

__all__ = ["pack_half"]

_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True)
def _first_free(busy, full, words, b, cols, start, stop):
    """The lowest row free in every column of ``cols[start:stop]`` and not full on bus ``b``
    (-1 when none of the ``64 * words`` rows is)."""
    for w in range(words):
        blocked = full[b, w]
        for k in range(start, stop):
            blocked |= busy[b, cols[k], w]
        if blocked != _ALL:
            free = ~blocked
            bit = 0
            while (free >> np.uint64(bit)) & np.uint64(1) == 0:
                bit += 1
            return w * 64 + bit
    return -1


@njit(cache=True, nogil=True)
def _place(busy, full, load, nrows, labels, words, b, cols, start, stop):
    """Put a unit needing ``cols[start:stop]`` on its first free row of bus ``b``; returns the
    row (-1: beyond the bitsets)."""
    row = _first_free(busy, full, words, b, cols, start, stop)
    if row < 0:
        return -1
    w, bit = row // 64, np.uint64(1) << np.uint64(row % 64)
    for k in range(start, stop):
        busy[b, cols[k], w] |= bit
    if row == nrows[b]:
        nrows[b] += 1
    load[b, row] += 1
    if load[b, row] >= labels:
        full[b, w] |= bit
    return row


@njit(cache=True, nogil=True)
def _rows_after(busy, full, load, nrows, labels, words, b, cols, ptr, units, u0, u1, saved_c, saved_v):
    """Rows in use on bus ``b`` once ``units[u0:u1]`` are placed there, in order; nothing changes
    (-1: beyond the bitsets)."""
    if u1 == u0:
        return nrows[b]
    n_saved = 0
    for q in range(u0, u1):
        u = units[q]
        for k in range(ptr[u], ptr[u + 1]):
            for w in range(words):
                saved_c[n_saved] = cols[k]
                saved_v[n_saved] = busy[b, cols[k], w]
                n_saved += 1
    full_before = full[b].copy()
    load_before = load[b].copy()
    rows_before = nrows[b]
    result = 0
    for q in range(u0, u1):
        u = units[q]
        if _place(busy, full, load, nrows, labels, words, b, cols, ptr[u], ptr[u + 1]) < 0:
            result = -1
            break
    if result == 0:
        result = nrows[b]
    # a column listed twice gets its oldest value back last
    k = n_saved
    for q in range(u1 - 1, u0 - 1, -1):
        u = units[q]
        for kk in range(ptr[u + 1] - 1, ptr[u] - 1, -1):
            for w in range(words - 1, -1, -1):
                k -= 1
                busy[b, saved_c[k], w] = saved_v[k]
    full[b, :] = full_before
    load[b, :] = load_before
    nrows[b] = rows_before
    return result


@njit(cache=True, nogil=True)
def _pack(labels, words, n_buses, n_columns,
          ptr0, cols0, fixed0, fixed_bus0, ptr1, cols1, fixed1, fixed_bus1,
          order, src_ptr0, src_units0, src_ptr1, src_units1,
          row0, row1, bus0, bus1, src_bus, nrows0, nrows1):
    """The whole half: fixed units first (sign 0, then 1), then each input neuron in ``order``
    onto its best bus. Fills rows, buses and rows per bus; False if a row beyond the bitsets was
    needed (the caller then packs in Python)."""
    busy0 = np.zeros((n_buses, n_columns, words), dtype=np.uint64)
    busy1 = np.zeros((n_buses, n_columns, words), dtype=np.uint64)
    full0 = np.zeros((n_buses, words), dtype=np.uint64)
    full1 = np.zeros((n_buses, words), dtype=np.uint64)
    load0 = np.zeros((n_buses, 64 * words), dtype=np.int64)
    load1 = np.zeros((n_buses, 64 * words), dtype=np.int64)
    for q in range(fixed0.shape[0]):
        u = fixed0[q]
        r = _place(busy0, full0, load0, nrows0, labels, words, fixed_bus0[q], cols0, ptr0[u], ptr0[u + 1])
        if r < 0:
            return False
        row0[u] = r
    for q in range(fixed1.shape[0]):
        u = fixed1[q]
        r = _place(busy1, full1, load1, nrows1, labels, words, fixed_bus1[q], cols1, ptr1[u], ptr1[u + 1])
        if r < 0:
            return False
        row1[u] = r
    saved_c = np.zeros(max(cols0.shape[0], cols1.shape[0]) * words + 1, dtype=np.int64)
    saved_v = np.zeros(saved_c.shape[0], dtype=np.uint64)
    carried = np.zeros(n_buses, dtype=np.int64)
    for k in range(order.shape[0]):
        src = order[k]
        a0, e0, a1, e1 = src_ptr0[src], src_ptr0[src + 1], src_ptr1[src], src_ptr1[src + 1]
        best, best_rows = -1, 0
        for b in range(n_buses):
            r0 = _rows_after(busy0, full0, load0, nrows0, labels, words, b, cols0, ptr0, src_units0, a0, e0,
                             saved_c, saved_v)
            r1 = _rows_after(busy1, full1, load1, nrows1, labels, words, b, cols1, ptr1, src_units1, a1, e1,
                             saved_c, saved_v)
            if r0 < 0 or r1 < 0:
                return False
            rows = r0 + r1
            # min over (rows, carried, bus index): strictly better only
            if best < 0 or rows < best_rows or (rows == best_rows and carried[b] < carried[best]):
                best, best_rows = b, rows
        for q in range(a0, e0):
            u = src_units0[q]
            r = _place(busy0, full0, load0, nrows0, labels, words, best, cols0, ptr0[u], ptr0[u + 1])
            if r < 0:
                return False
            row0[u] = r
            bus0[u] = best
        for q in range(a1, e1):
            u = src_units1[q]
            r = _place(busy1, full1, load1, nrows1, labels, words, best, cols1, ptr1[u], ptr1[u + 1])
            if r < 0:
                return False
            row1[u] = r
            bus1[u] = best
        carried[best] += 1
        src_bus[src] = best
    return True


def pack_half(labels: int, rows_per_bus: int, n_buses: int, n_columns: int, signs, order: np.ndarray,
              n_sources: int):
    """Pack one half. ``signs``: per sign (exc, inh) a tuple ``(ptr, cols, fixed, fixed_bus,
    src_ptr, src_units, bus)``: each unit's columns ``cols[ptr[u]:ptr[u + 1]]``; the units placed
    first (``fixed``, in placement order) and their buses; per input neuron ``s`` its units
    ``src_units[src_ptr[s]:src_ptr[s + 1]]`` in placement order; ``bus`` the unit buses (updated
    for input units). ``order``: the input neurons in the order they choose a bus.

    Returns (rows per sign, rows used per bus per sign, bus per input neuron), or None when a
    placement needs more rows than the bitsets hold (pack in Python for the exact error)."""
    words = rows_per_bus // 64 + 1
    (ptr0, cols0, fixed0, fbus0, sptr0, sunits0, bus0), (ptr1, cols1, fixed1, fbus1, sptr1, sunits1, bus1) = signs
    row0 = np.zeros(len(ptr0) - 1, dtype=np.int64)
    row1 = np.zeros(len(ptr1) - 1, dtype=np.int64)
    nrows0 = np.zeros(n_buses, dtype=np.int64)
    nrows1 = np.zeros(n_buses, dtype=np.int64)
    src_bus = np.zeros(n_sources, dtype=np.int64)
    i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    ok = _pack(int(labels), int(words), int(n_buses), int(n_columns),
               i64(ptr0), i64(cols0), i64(fixed0), i64(fbus0), i64(ptr1), i64(cols1), i64(fixed1), i64(fbus1),
               i64(order), i64(sptr0), i64(sunits0), i64(sptr1), i64(sunits1),
               row0, row1, bus0, bus1, src_bus, nrows0, nrows1)
    if not ok:
        return None
    return (row0, row1), (nrows0.tolist(), nrows1.tolist()), src_bus
