"""The event fabric, compiled: from an emitted spike or a sent input to its calendar slot.

Boundary: puts events into the calendar after their route latency and delay, either directly
(links that never congest) or through the link FIFOs of the link model (a FIFO server per link and
sample: capacity per clock cycle, queue depth, drops counted per link). Called by the step loop
(``chip.emulator.kernel``) and compiled with it; holds no state and imports nothing from the
project. The layout of the counters array that the step loop, this module and the caller share
is defined here.

numba's on-disk cache of ``kernel.advance`` is checked against ``kernel.py`` only: after editing
this module, clear the cache (delete ``chip/emulator/__pycache__``) or touch ``kernel.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# counters (int64 array shared with the caller)
C_SPIKES = 0      # spikes in the output buffer
C_EMITTED = 1     # of those, emitted into the calendar
C_SENT = 2        # events sent into the fabric by neurons (one per spike of a source)
C_NEXT = 3        # next step to run
C_EVENTS = 4      # events delivered in the last step run (left in the scratch arrays)
C_NEED = 5        # size asked for with EVENTS_FULL
C_LOST = 6        # events lost on at least one link of their routes (link model)
C_SENT_STEP = 7   # last step whose input events have been sent through the links (link model)


@njit(cache=True)
def _room(ring_n, cap, need):
    """Whether every calendar slot can take ``need`` more events."""
    worst = 0
    for k in range(ring_n.shape[0]):
        worst = max(worst, ring_n[k])
    return worst + need <= cap


@njit(cache=True)
def _need(i0, i1, sp_n, syn):
    """Calendar events the spikes i0..i1 make: one per unit their source feeds."""
    src_ptr, nsrc = syn.source_ptr, syn.neuron_source
    need = 0
    for i in range(i0, i1):
        sid = nsrc[sp_n[i]]
        if sid >= 0:
            need += src_ptr[sid + 1] - src_ptr[sid]
    return need


@njit(cache=True)
def _calendar_put(u, b, p, arrive, s_emit, dt, cal):
    """One event for unit u into the slot of its arrival step (at the earliest the step after
    s_emit, the step it was emitted in); room is checked by the caller."""
    ring_u, ring_b, ring_p, ring_t, ring_n = cal.ring_unit, cal.ring_sample, cal.ring_index, cal.ring_time_us, \
        cal.ring_count
    R = ring_u.shape[0]
    st = max(np.int64(math.floor(arrive / dt + 1e-9)), s_emit + 1)
    if st - s_emit >= R:
        raise RuntimeError("internal: an event arrives beyond the calendar's horizon")
    slot = st % R
    j = ring_n[slot]
    ring_u[slot, j] = u
    ring_b[slot, j] = b
    ring_p[slot, j] = p
    ring_t[slot, j] = arrive
    ring_n[slot] = j + 1


@njit(cache=True)
def emit_spikes(i0, i1, M, clock, dt, sp_b, sp_n, sp_c, syn, cal, counters):
    """Put the spikes i0..i1 of the output buffer (all of one step) into the calendar, one event
    per unit they feed, after their route latency and delay (links never congest). Returns False,
    emitting nothing, when the calendar might not hold them."""
    delay, lat_base, lat = syn.delay_us, syn.latency_base, syn.latency_us
    src_ptr, src_units, nsrc, nlocal = syn.source_ptr, syn.source_units, syn.neuron_source, syn.neuron_index
    need = _need(i0, i1, sp_n, syn)
    if need > 0:
        if not _room(cal.ring_count, cal.ring_unit.shape[1], need):
            return False
        for i in range(i0, i1):
            n = sp_n[i]
            src = nsrc[n]
            if src < 0:
                continue
            s_emit = (sp_c[i] - 1) // M
            t = sp_c[i] * clock
            for k in range(src_ptr[src], src_ptr[src + 1]):
                u = src_units[k]
                arrive = t + lat[lat_base[u] + nlocal[n]] + delay[u]
                _calendar_put(u, sp_b[i], nlocal[n], arrive, s_emit, dt, cal)
            counters[C_SENT] += 1
    counters[C_EMITTED] = i1
    return True


@njit(cache=True)
def _fifo(li, b, idx, ent, cnt, sig, limit, lat, free_at, exit_at, dropped, max_wait, lost):
    """One link as a FIFO server per sample (``sig`` µs per event, a queue of ``limit`` µs of
    work): events idx[:cnt] entering at ent[:cnt]. In order of (sample, entry), each event starts
    when it enters or when the server is free, whichever is later; an event that would wait longer
    than the queue holds is dropped on arrival (tail drop) and takes no service time, so the events
    behind it queue as if it had never come."""
    order_e = np.argsort(ent[:cnt], kind="mergesort")
    bs = np.empty(cnt, dtype=np.int64)
    for r in range(cnt):
        bs[r] = b[idx[order_e[r]]]
    order = order_e[np.argsort(bs, kind="mergesort")]
    n_drop = 0
    for r in range(cnt):
        k = order[r]
        i = idx[k]
        bk = b[i]
        start = ent[k]
        if free_at[li, bk] > start:
            start = free_at[li, bk]
        wait = start - ent[k]
        if wait > limit:
            n_drop += 1
            lost[i] = True
            continue
        free_at[li, bk] = start + sig
        if wait > max_wait[li]:
            max_wait[li] = wait
        exit_at[li, i] = start + sig + lat
    dropped[li] += n_drop


@njit(cache=True)
def _through_links(src, b, p, t, n, s_emit, dt, syn, cal, lnk, counters):
    """Send n events of one source (samples b, source indices p, times t, emitted in step s_emit)
    through the links of their routes, then put each arrival into the calendar, one per unit."""
    delay, lat_base, src_ptr, src_units = syn.delay_us, syn.latency_base, syn.source_ptr, syn.source_units
    pred, order, service, limit, link_lat = lnk.predecessor, lnk.order, lnk.service_us, lnk.limit_us, lnk.latency_us
    free_at, offered, dropped, max_wait = lnk.free_at_us, lnk.offered, lnk.dropped, lnk.max_wait_us
    grp_base, grp, last_link = lnk.group_base, lnk.group, lnk.last_link
    exit_at = np.full((service.shape[0], n), np.nan)
    lost = np.zeros(n, dtype=np.bool_)
    ent = np.empty(n)
    idx = np.empty(n, dtype=np.int64)
    for oi in range(order.shape[0]):
        li = order[oi]
        cnt = 0
        for i in range(n):
            q = pred[grp[grp_base[src] + p[i]], li]
            if q == -2:
                continue
            e = t[i] if q == -1 else exit_at[q, i]
            if e != e:
                continue
            idx[cnt] = i
            ent[cnt] = e
            cnt += 1
        if cnt == 0:
            continue
        offered[li] += cnt
        if service[li] == 0.0:  # never congests
            for k in range(cnt):
                exit_at[li, idx[k]] = ent[k] + link_lat[li]
            continue
        _fifo(li, b, idx, ent, cnt, service[li], limit[li], link_lat[li], free_at, exit_at, dropped,
              max_wait, lost)
    counters[C_SENT] += n
    for i in range(n):
        if lost[i]:
            counters[C_LOST] += 1
    for k in range(src_ptr[src], src_ptr[src + 1]):
        u = src_units[k]
        for i in range(n):
            ll = last_link[lat_base[u] + p[i]]
            a = t[i] if ll < 0 else exit_at[ll, i]
            if a == a:  # not lost on the way
                _calendar_put(u, b[i], p[i], a + delay[u], s_emit, dt, cal)


@njit(cache=True)
def send_inputs(s, dt, syn, cal, lnk, counters):
    """Input events sent in step s go through the links, one source at a time (link model).
    Returns False, sending nothing, when the calendar might not hold them."""
    src_ptr = syn.source_ptr
    ring_u, ring_n = cal.ring_unit, cal.ring_count
    sd_ptr, sd_src, sd_b, sd_p, sd_t = cal.send_ptr, cal.send_source, cal.send_sample, cal.send_index, cal.send_time_us
    if s >= sd_ptr.shape[0] - 1:
        return True
    j0 = sd_ptr[s]
    j1 = sd_ptr[s + 1]
    need = 0
    for j in range(j0, j1):
        need += src_ptr[sd_src[j] + 1] - src_ptr[sd_src[j]]
    if need == 0:
        return True
    if not _room(ring_n, ring_u.shape[1], need):
        return False
    a = j0
    while a < j1:
        z = a
        while z < j1 and sd_src[z] == sd_src[a]:
            z += 1
        _through_links(sd_src[a], sd_b[a:z], sd_p[a:z], sd_t[a:z], z - a, s, dt, syn, cal, lnk, counters)
        a = z
    return True


@njit(cache=True)
def emit_through_links(i0, i1, M, clock, dt, sp_b, sp_n, sp_c, syn, cal, lnk, counters, n_pop_sources):
    """Spikes i0..i1 (all of one step) go through the links, one population at a time, in order.
    Returns False, sending nothing, when the calendar might not hold them."""
    nsrc, nlocal = syn.neuron_source, syn.neuron_index
    ring_u, ring_n = cal.ring_unit, cal.ring_count
    need = _need(i0, i1, sp_n, syn)
    if need > 0:
        if not _room(ring_n, ring_u.shape[1], need):
            return False
        n = i1 - i0
        bb = np.empty(n, dtype=np.int64)
        pp = np.empty(n, dtype=np.int64)
        tt = np.empty(n)
        for sid in range(n_pop_sources):
            k = 0
            for i in range(i0, i1):
                if nsrc[sp_n[i]] == sid:
                    bb[k] = sp_b[i]
                    pp[k] = nlocal[sp_n[i]]
                    tt[k] = sp_c[i] * clock
                    k += 1
            if k > 0:
                _through_links(sid, bb[:k], pp[:k], tt[:k], k, (sp_c[i0] - 1) // M, dt, syn, cal, lnk,
                               counters)
    counters[C_EMITTED] = i1
    return True
