"""Compiled inner loop of the emulator: the analog core stepped over a run of steps.

Boundary: ``chip.emulator.core`` builds the tables (``chip.emulator.tables``: parameters, state,
synapse table, calendar, link tables, buffers) and calls :func:`advance` for a run of steps; this
module holds no state of its own and imports nothing from the project but its sibling kernel
modules. It is compiled with numba (cached on disk after the first call). Setting
``NUMBA_DISABLE_JIT=1`` runs the same code as plain Python, slowly, which is the way to step
through it in a debugger.

Status codes returned by :func:`advance` tell the caller to grow a buffer and call again; the
kernel never leaves a step half done.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

DONE = 0
RING_FULL = 1     # an emitted event found its calendar slot full: grow the ring, call again
SPIKES_FULL = 2   # the spike buffer cannot take another step's worth: drain it, call again
EVENTS_FULL = 3   # a step holds more events than the scratch arrays: grow them, call again

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
def _exact_kernel(h, ts, tm):
    es = math.exp(-h / ts)
    em = math.exp(-h / tm)
    diff = ts - tm
    if abs(diff) < 1e-9 * max(ts, tm):
        return h / tm * em
    return ts / diff * (es - em)


@njit(cache=True)
def _kern(h, ts, c, em, tm):
    """κ(h) = c·(e^{−h/τs} − e^{−h/τm}) given em = e^{−h/τm}; the exact form where c is NaN."""
    if c != c:
        return _exact_kernel(h, ts, tm)
    return c * (math.exp(-h / ts) - em)


@njit(cache=True)
def _charge(s_free, ie0, ii0, te, ti, pa, pwe, pwi, npairs):
    """Synaptic currents of a neuron at s_free, the end of its hold at reset: the start-of-step
    currents decayed, plus the events that arrived while it was held (they charge the current only)."""
    ie = ie0 * math.exp(-s_free / te)
    ii = ii0 * math.exp(-s_free / ti)
    held = False
    if s_free > 0.0:
        acc_e = 0.0
        acc_i = 0.0
        for p in range(npairs):
            if pa[p] < s_free:
                age = s_free - pa[p]
                acc_e += pwe[p] * math.exp(-age / te)
                acc_i += pwi[p] * math.exp(-age / ti)
                held = True
        if held:
            ie += acc_e
            ii += acc_i
    return ie, ii, held


@njit(cache=True)
def _traj(tau, s_free, v_start, noise, dt, VL, Vr, tm, te, ti, ce, ci, ie_s, ii_s, held,
          pa, pwe, pwi, npairs):
    """Membrane at in-step time tau of a neuron free from s_free on, starting there at v_start."""
    if not tau > s_free:
        return Vr if s_free > 0.0 else v_start
    h = tau - s_free
    em = math.exp(-h / tm)
    v = VL + (v_start - VL) * em + ie_s * _kern(h, te, ce, em, tm) - ii_s * _kern(h, ti, ci, em, tm)
    if npairs > 0:
        acc = 0.0
        for p in range(npairs):
            if held and pa[p] < s_free:
                continue  # arrived during the hold: already in ie_s / ii_s
            he = tau - pa[p]
            if he <= 0.0:
                continue
            emp = math.exp(-he / tm)
            if pwe[p] != 0.0:
                acc += pwe[p] * _kern(he, te, ce, emp, tm)
            if pwi[p] != 0.0:
                acc -= pwi[p] * _kern(he, ti, ci, emp, tm)
        v += acc
    return v + noise * (tau / dt)


@njit(cache=True)
def _below_threshold(tau_max, s_free, v_start, noise, dt, VL, Vth, tm, ie_s, ii_s, held, pa, pwe, npairs):
    """True when the trajectory of ``_traj`` stays below Vth for all tau ≤ tau_max (a sound bound:
    κ(h) = ∫₀ʰ e^{−(h−u)/τm} e^{−u/τs} du/τm ≤ h/τm, κ ≥ 0, inhibition only lowers V, the leak term
    moves monotonically from v_start towards VL, and adaptation only raises the threshold)."""
    hmax = tau_max - s_free
    if hmax <= 0.0:
        return True  # never free at a clock edge of this step: no edge can count as a crossing
    if v_start >= VL:
        ub = v_start
    else:
        ub = VL + (v_start - VL) * math.exp(-hmax / tm)
    g = hmax / tm
    if ie_s > 0.0:
        ub += ie_s * g
    if ii_s < 0.0:
        ub -= ii_s * g
    for p in range(npairs):
        if held and pa[p] < s_free:
            continue
        if pwe[p] > 0.0:
            ub += pwe[p] * max(tau_max - pa[p], 0.0) / tm
    if noise > 0.0:
        ub += noise * (tau_max / dt)
    return ub < Vth - 1e-12 * max(1.0, abs(Vth))


@njit(cache=True)
def _find(cols, lo, hi, n):
    """Index of n in the sorted cols[lo:hi], or −1."""
    while lo < hi:
        mid = (lo + hi) >> 1
        c = cols[mid]
        if c < n:
            lo = mid + 1
        elif c > n:
            hi = mid
        else:
            return mid
    return -1


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
    """One link as a FIFO server per sample (``sig`` µs per event, queue of ``limit`` µs): events
    idx[:cnt] entering at ent[:cnt]. Sorted by (sample, entry), event j of a sample starts at
    j·σ + max(free, max_{i≤j}(e_i − i·σ)); an event that would wait longer than the queue holds is
    dropped, and the others are served again without it."""
    order_e = np.argsort(ent[:cnt], kind="mergesort")
    bs = np.empty(cnt, dtype=np.int64)
    for r in range(cnt):
        bs[r] = b[idx[order_e[r]]]
    order = order_e[np.argsort(bs, kind="mergesort")]
    start = np.empty(cnt)
    keep = np.ones(cnt, dtype=np.bool_)
    for attempt in range(2):
        prev = -1
        j = 0
        run = -np.inf
        any_drop = False
        for r in range(cnt):
            k = order[r]
            if not keep[k]:
                continue
            bk = b[idx[k]]
            if bk != prev:
                prev = bk
                j = 0
                run = -np.inf
            x = ent[k] - j * sig
            if free_at[li, bk] > x:
                x = free_at[li, bk]
            if x > run:
                run = x
            start[k] = run + j * sig
            j += 1
            if attempt == 0 and start[k] - ent[k] > limit:
                any_drop = True
        if attempt == 0:
            if not any_drop:
                break
            for k in range(cnt):
                if start[k] - ent[k] > limit:
                    keep[k] = False
    n_drop = 0
    for k in range(cnt):
        i = idx[k]
        if not keep[k]:
            n_drop += 1
            lost[i] = True
            continue
        depart = start[k] + sig
        bk = b[i]
        if depart > free_at[li, bk]:
            free_at[li, bk] = depart
        wait = start[k] - ent[k]
        if wait > max_wait[li]:
            max_wait[li] = wait
        exit_at[li, i] = depart + lat
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
def _send_inputs(s, dt, syn, cal, lnk, counters):
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
def _emit_through_links(i0, i1, M, clock, dt, sp_b, sp_n, sp_c, syn, cal, lnk, counters, n_pop_sources):
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


@njit(cache=True, nogil=True)
def advance(s_begin, s_end, cfg, nrn, state, syn, cal, lnk, scr, spikes, xi, traces, counters):
    """Run steps s_begin..s_end−1 (or until a buffer asks to grow: see the status codes).

    Per step: exact decay of every neuron; delivery of the step's events (end-of-step effect of each
    by superposition); noise; refractory clamp; threshold test; the slow path for neurons that
    cross or leave refractoriness; trace samples; emission of the step's spikes into the calendar.
    The state is left in ``state.v``, ``.i_exc``, ``.i_inh``, ``.adapt`` on return. ``xi`` holds the
    noise of steps s_begin.. as (steps, B, N) (any shape when ``cfg.has_noise`` is False).
    """
    dt, clock, M, grid = cfg.dt_us, cfg.clock_us, cfg.cycles_per_step, cfg.grid
    adaptive, links, n_pop_sources, has_noise = cfg.adaptive, cfg.link_model, cfg.n_pop_sources, cfg.has_noise
    VL, Vr, Vth, tm, te, ti = nrn.v_leak, nrn.v_reset, nrn.v_threshold, nrn.tau_mem_us, nrn.tau_syn_exc_us, \
        nrn.tau_syn_inh_us
    tref, ta, da = nrn.tau_ref_us, nrn.tau_adapt_us, nrn.adapt_increment
    am, ae, ai, aa = nrn.decay_mem, nrn.decay_exc, nrn.decay_inh, nrn.decay_adapt
    ke, ki, ce, ci, nscale = nrn.kernel_exc, nrn.kernel_inh, nrn.coeff_exc, nrn.coeff_inh, nrn.noise_scale
    V, Ie, Ii, A, ref = state.v, state.i_exc, state.i_inh, state.adapt, state.refractory_until_us
    V2, Ie2, Ii2, A2 = state.v_next, state.i_exc_next, state.i_inh_next, state.adapt_next
    row_base, indptr, cols, w_exc, w_inh = syn.row_base, syn.indptr, syn.cols, syn.w_exc, syn.w_inh
    ustart, uend, uniform = syn.unit_start, syn.unit_end, syn.uniform
    ring_u, ring_b, ring_p, ring_t, ring_n = cal.ring_unit, cal.ring_sample, cal.ring_index, cal.ring_time_us, \
        cal.ring_count
    st_ptr, st_u, st_b, st_p, st_t = cal.static_ptr, cal.static_unit, cal.static_sample, cal.static_index, \
        cal.static_time_us
    ev_u, ev_b, ev_p, ev_t = scr.event_unit, scr.event_sample, scr.event_index, scr.event_time_us
    sl_b, sl_n, pa, pwe, pwi = scr.slow_sample, scr.slow_neuron, scr.pair_time_us, scr.pair_w_exc, scr.pair_w_inh
    ev_by_b, b_ptr, b_fill = scr.event_by_sample, scr.sample_ptr, scr.sample_fill
    sp_b, sp_n, sp_c = spikes.sample, spikes.neuron, spikes.cycle
    tr_idx, tr_every, tr_out = traces.neuron, traces.every_steps, traces.values
    B, N = V.shape
    R = ring_u.shape[0]
    n_static_steps = st_ptr.shape[0] - 1
    V0s, Ie0s, Ii0s, A0s = V, Ie, Ii, A  # the caller's arrays: the state must end up there
    swapped = False
    status = DONE

    # spikes of an earlier call that did not fit into the calendar
    if counters[C_EMITTED] < counters[C_SPIKES]:
        if links:
            ok = _emit_through_links(counters[C_EMITTED], counters[C_SPIKES], M, clock, dt, sp_b, sp_n, sp_c,
                                     syn, cal, lnk, counters, n_pop_sources)
        else:
            ok = emit_spikes(counters[C_EMITTED], counters[C_SPIKES], M, clock, dt, sp_b, sp_n, sp_c,
                             syn, cal, counters)
        if not ok:
            return RING_FULL

    s = s_begin
    while s < s_end:
        slot = s % R
        n_ring = ring_n[slot]
        n_static = 0
        if s < n_static_steps:
            n_static = st_ptr[s + 1] - st_ptr[s]
        if n_ring + n_static > ev_u.shape[0]:
            counters[C_NEED] = n_ring + n_static
            status = EVENTS_FULL
            break
        if counters[C_SPIKES] + B * N > sp_b.shape[0]:
            status = SPIKES_FULL
            break
        if links and counters[C_SENT_STEP] < s:
            # input events sent in this step enter the links now (they act from the next step on)
            if not _send_inputs(s, dt, syn, cal, lnk, counters):
                status = RING_FULL
                break
            counters[C_SENT_STEP] = s
        t0 = s * dt
        t1 = t0 + dt

        # 1. exact decay over the step
        for b in range(B):
            for n in range(N):
                v = V[b, n] - VL[n]
                v *= am[n]
                v += VL[n]
                v += Ie[b, n] * ke[n]
                v -= Ii[b, n] * ki[n]
                V2[b, n] = v
                Ie2[b, n] = Ie[b, n] * ae[n]
                Ii2[b, n] = Ii[b, n] * ai[n]
                A2[b, n] = A[b, n] * aa[n] if adaptive else A[b, n]

        # 2. this step's events: calendar slot, then static inputs
        k = 0
        for j in range(n_ring):
            ev_u[k] = ring_u[slot, j]
            ev_b[k] = ring_b[slot, j]
            ev_p[k] = ring_p[slot, j]
            ev_t[k] = ring_t[slot, j]
            k += 1
        ring_n[slot] = 0
        if n_static > 0:
            for j in range(st_ptr[s], st_ptr[s + 1]):
                ev_u[k] = st_u[j]
                ev_b[k] = st_b[j]
                ev_p[k] = st_p[j]
                ev_t[k] = st_t[j]
                k += 1
        n_ev = k
        counters[C_EVENTS] = n_ev

        # 3. delivery: each event adds w·e^{−h/τs} to I and w·κ(h) to V at the step's end
        for e in range(n_ev):
            u = ev_u[e]
            b = ev_b[e]
            h = t1 - ev_t[e]
            row = row_base[u] + ev_p[e]
            j0 = indptr[row]
            j1 = indptr[row + 1]
            if j0 == j1:
                continue
            if uniform[u]:
                n0 = ustart[u]
                em = math.exp(-h / tm[n0])
                fie = math.exp(-h / te[n0])
                fve = _kern(h, te[n0], ce[n0], em, tm[n0])
                fii = math.exp(-h / ti[n0])
                fvi = _kern(h, ti[n0], ci[n0], em, tm[n0])
                for j in range(j0, j1):
                    n = cols[j]
                    we = w_exc[j]
                    wi = w_inh[j]
                    if we != 0.0:
                        Ie2[b, n] += we * fie
                        V2[b, n] += we * fve
                    if wi != 0.0:
                        Ii2[b, n] += wi * fii
                        V2[b, n] -= wi * fvi
            else:
                for j in range(j0, j1):
                    n = cols[j]
                    we = w_exc[j]
                    wi = w_inh[j]
                    em = math.exp(-h / tm[n])
                    if we != 0.0:
                        Ie2[b, n] += we * math.exp(-h / te[n])
                        V2[b, n] += we * _kern(h, te[n], ce[n], em, tm[n])
                    if wi != 0.0:
                        Ii2[b, n] += wi * math.exp(-h / ti[n])
                        V2[b, n] -= wi * _kern(h, ti[n], ci[n], em, tm[n])

        # 4. noise, refractory clamp, threshold: which neurons need the slow path
        xs = s - s_begin
        n_slow = 0
        for b in range(B):
            for n in range(N):
                v = V2[b, n]
                if has_noise:
                    v += xi[xs, b, n] * nscale[n]
                r = ref[b, n]
                refractory = r > t0
                if refractory:
                    v = Vr[n]
                V2[b, n] = v
                theta = Vth[n] + A2[b, n] if adaptive else Vth[n]
                if v >= theta or (refractory and r < t1):
                    sl_b[n_slow] = b
                    sl_n[n_slow] = n
                    n_slow += 1

        # 5. slow path: the in-step trajectory of those neurons, with this step's events
        sp_first = counters[C_SPIKES]
        if n_slow > 0:
            # the step's events by sample (stable counting sort), so each neuron scans only its own
            for b in range(B + 1):
                b_ptr[b] = 0
            for e in range(n_ev):
                b_ptr[ev_b[e] + 1] += 1
            for b in range(B):
                b_ptr[b + 1] += b_ptr[b]
                b_fill[b] = b_ptr[b]
            for e in range(n_ev):
                b = ev_b[e]
                ev_by_b[b_fill[b]] = e
                b_fill[b] += 1
        for q in range(n_slow):
            b = sl_b[q]
            n = sl_n[q]
            v0 = V[b, n]
            ie0 = Ie[b, n]
            ii0 = Ii[b, n]
            a0 = A[b, n]
            r0 = max(ref[b, n] - t0, 0.0)
            noise = xi[xs, b, n] * nscale[n] if has_noise else 0.0
            # the events of this step that reach this neuron in this sample
            npairs = 0
            for k in range(b_ptr[b], b_ptr[b + 1]):
                e = ev_by_b[k]
                u = ev_u[e]
                if n < ustart[u] or n >= uend[u]:
                    continue
                row = row_base[u] + ev_p[e]
                j = _find(cols, indptr[row], indptr[row + 1], n)
                if j < 0:
                    continue
                if w_exc[j] == 0.0 and w_inh[j] == 0.0:
                    continue
                pa[npairs] = ev_t[e] - t0
                pwe[npairs] = w_exc[j]
                pwi[npairs] = w_inh[j]
                npairs += 1
            vl = VL[n]
            vr = Vr[n]
            vth = Vth[n]
            tmn = tm[n]
            ten = te[n]
            tin = ti[n]
            cen = ce[n]
            cin = ci[n]
            tan = ta[n]
            s_free = min(r0, dt)
            v_start = vr if r0 > 0.0 else v0
            ie_s, ii_s, held = _charge(s_free, ie0, ii0, ten, tin, pa, pwe, pwi, npairs)
            cross = -1
            t_cross = 0.0
            v_end_free = 0.0
            if grid and _below_threshold(M * clock, s_free, v_start, noise, dt, vl, vth, tmn, ie_s, ii_s, held,
                                         pa, pwe, npairs):
                # cannot reach threshold in this step (typically: leaving refractoriness)
                v_end_free = _traj(M * clock, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                                   ie_s, ii_s, held, pa, pwe, pwi, npairs)
            elif grid:
                # skip the clock edges that the bound puts below threshold (it grows with the edge)
                m_lo = 0
                m_hi = M
                while m_lo < m_hi:
                    m_mid = (m_lo + m_hi + 1) >> 1
                    if _below_threshold(m_mid * clock, s_free, v_start, noise, dt, vl, vth, tmn, ie_s, ii_s, held,
                                        pa, pwe, npairs):
                        m_lo = m_mid
                    else:
                        m_hi = m_mid - 1
                f_prev = 0.0
                if m_lo >= 1:
                    tau = m_lo * clock
                    v = _traj(tau, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                              ie_s, ii_s, held, pa, pwe, pwi, npairs)
                    f_prev = v - (vth + a0 * math.exp(-tau / tan) if adaptive else vth)
                    v_end_free = v
                for m in range(m_lo + 1, M + 1):
                    tau = m * clock
                    v = _traj(tau, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                              ie_s, ii_s, held, pa, pwe, pwi, npairs)
                    f = v - (vth + a0 * math.exp(-tau / tan) if adaptive else vth)
                    if f >= 0.0 and tau > s_free + 1e-12:
                        cross = m
                        # the analog reset acts at the crossing, located between grid points by
                        # linear interpolation; the digital stamp is this clock edge
                        f_lo = f_prev
                        if m < 2:
                            f_lo = v0 - vth - (a0 if adaptive else 0.0)
                        t_lo = (m - 1) * clock
                        frac = 1.0
                        if f_lo < 0.0 and t_lo >= s_free and (m >= 2 or s_free == 0.0):
                            frac = -f_lo / (f - f_lo)
                        t_cross = t_lo + frac * clock
                        break
                    f_prev = f
                    v_end_free = v
            else:
                v_end_free = _traj(dt, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                                   ie_s, ii_s, held, pa, pwe, pwi, npairs)
                thr_end = vth + a0 * math.exp(-dt / tan) if adaptive else vth
                if v_end_free >= thr_end:
                    lo = s_free
                    hi = dt
                    iters = int(math.ceil(math.log2(max(M, 2)))) + 2
                    for _ in range(iters):
                        mid = 0.5 * (lo + hi)
                        vm = _traj(mid, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                                   ie_s, ii_s, held, pa, pwe, pwi, npairs)
                        if vm >= (vth + a0 * math.exp(-mid / tan) if adaptive else vth):
                            hi = mid
                        else:
                            lo = mid
                    cross = min(max(np.int64(math.ceil(hi / clock - 1e-9)), 1), M)
                    t_cross = hi
            if cross < 0:
                V2[b, n] = v_end_free
                continue
            # spike: reset at the crossing, held for τref, then free again (maybe within this step)
            s_after = t_cross + tref[n]
            v_end = vr
            if s_after < dt:
                ie_a, ii_a, held_a = _charge(s_after, ie0, ii0, ten, tin, pa, pwe, pwi, npairs)
                v_end = _traj(dt, s_after, vr, 0.0, dt, vl, vr, tmn, ten, tin, cen, cin,
                              ie_a, ii_a, held_a, pa, pwe, pwi, npairs) + noise * (1.0 - s_after / dt)
            ref[b, n] = t0 + t_cross + tref[n]
            V2[b, n] = v_end
            if adaptive:
                A2[b, n] += da[n] * math.exp(-(dt - t_cross) / tan)
            i = counters[C_SPIKES]
            sp_b[i] = b
            sp_n[i] = n
            sp_c[i] = s * M + cross
            counters[C_SPIKES] = i + 1

        # 6. ADC samples of the end-of-step membrane
        for kk in range(tr_idx.shape[0]):
            every = tr_every[kk]
            if (s + 1) % every == 0:
                js = (s + 1) // every - 1
                for b in range(B):
                    tr_out[b, js, kk] = V2[b, tr_idx[kk]]

        # the new state becomes the current one
        V, V2 = V2, V
        Ie, Ie2 = Ie2, Ie
        Ii, Ii2 = Ii2, Ii
        A, A2 = A2, A
        swapped = not swapped
        s += 1
        counters[C_NEXT] = s

        # 7. emission of this step's spikes (events act from the next step on)
        if links:
            ok = _emit_through_links(sp_first, counters[C_SPIKES], M, clock, dt, sp_b, sp_n, sp_c,
                                     syn, cal, lnk, counters, n_pop_sources)
        else:
            ok = emit_spikes(sp_first, counters[C_SPIKES], M, clock, dt, sp_b, sp_n, sp_c, syn, cal, counters)
        if not ok:
            status = RING_FULL
            break

    counters[C_NEXT] = s
    if swapped:
        V0s[:, :] = V
        Ie0s[:, :] = Ie
        Ii0s[:, :] = Ii
        A0s[:, :] = A
    return status
