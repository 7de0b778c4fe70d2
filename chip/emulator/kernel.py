"""Compiled inner loop of the emulator: the analog core stepped over a run of steps.

Boundary: ``chip.emulator.core`` builds the tables (``chip.emulator.tables``: parameters, state,
synapse table, calendar, link tables, buffers) and calls :func:`advance` for a run of steps; this
module holds no state of its own and imports nothing from the project but its sibling
``chip.emulator.links`` (the event fabric). It is compiled with numba (cached on disk after the
first call). Setting ``NUMBA_DISABLE_JIT=1`` runs the same code as plain Python, slowly, which is
the way to step through it in a debugger.

A step is spent in phases, one small compiled function each, called from the loop in
:func:`advance`: decay, gathering and delivering the step's events, noise / refractory clamp /
threshold test, the slow path of each marked neuron, ADC samples, emission, and — for the
projections whose correlation sensors a run records — the sensors (:func:`_sense`, after the
emission, so that it also sees the events that arrive within the step they were emitted in).
Status codes returned by :func:`advance` tell the caller to grow a buffer and call again; the
kernel never leaves a step half done.

The analog core's effects that a profile may switch on (``StepConfig``) take their own phases or
variants, so that with all of them off the step is the plain one: an adaptation current
(``_decay_general``: −A enters the membrane like a synaptic current with τ_adapt, exactly; the
subthreshold coupling a·(V − V_L) drives A at step resolution), saturating synaptic inputs
(``_saturate``: a gain per neuron and step on the membrane change due to each input, see
:func:`_sat_gain`; the slow path takes the same gains) and membrane rails (``_clip`` at the end
of the step; the slow path clips its trajectory).

Two things keep the phases as fast as one big loop. They use numpy's error model: no division
here can be by zero (every time constant, the step and the clock are positive), and without the
exception paths that Python's error model adds, numba can drop the reference counting of the
arrays a phase takes from the tables (otherwise atomic operations on every step). And the loop
over the marked neurons stays in :func:`advance`, which takes the arrays it needs once per call:
the per-neuron function it calls gets scalars and the three arrays of the neuron's events.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# the counters' layout is the event fabric's; the caller reads it from here too
from .links import (C_EMITTED, C_EVENTS, C_LOST, C_NEED, C_NEXT, C_SENT, C_SENT_STEP, C_SPIKES,  # noqa: F401
                    emit_spikes, emit_through_links, send_inputs)

DONE = 0
RING_FULL = 1     # an emitted event found its calendar slot full: grow the ring, call again
SPIKES_FULL = 2   # the spike buffer cannot take another step's worth: drain it, call again
EVENTS_FULL = 3   # a step holds more events than the scratch arrays: grow them, call again


@njit(cache=True, error_model="numpy")
def _exact_kernel(h, ts, tm):
    es = math.exp(-h / ts)
    em = math.exp(-h / tm)
    diff = ts - tm
    if abs(diff) < 1e-9 * max(ts, tm):
        return h / tm * em
    return ts / diff * (es - em)


@njit(cache=True, error_model="numpy")
def _kern(h, ts, c, em, tm):
    """κ(h) = c·(e^{−h/τs} − e^{−h/τm}) given em = e^{−h/τm}; the exact form where c is NaN."""
    if c != c:
        return _exact_kernel(h, ts, tm)
    return c * (math.exp(-h / ts) - em)


# The gain s(u) = tanh(u)/u of a saturating synaptic input, tabulated on [0, 8] in steps of 1/256
# and interpolated linearly (relative error below 1.3e-6; two calls of libm's tanh per neuron and
# step would double the step's cost); beyond 8, tanh(u) = 1 within 2.3e-7 and s = 1/u. A constant
# of the compiled code.
_SAT_PER_UNIT = 256
_SAT_TOP = 8.0
_SAT_U = np.arange(int(_SAT_TOP) * _SAT_PER_UNIT + 1) / _SAT_PER_UNIT
_SAT_TABLE = np.ones(len(_SAT_U))
_SAT_TABLE[1:] = np.tanh(_SAT_U[1:]) / _SAT_U[1:]


@njit(cache=True, error_model="numpy")
def _sat_gain(x, scale):
    """Gain g(x̂)/x̂ of a saturating synaptic input, g(x) = I_sat·tanh(x/I_sat) (the synaptic input
    OTA turning the line's linear input x into the current onto the membrane), at x̂ = x·e^{dt/2τs}:
    the input at the step's end (after delivery) carried back to the middle of the step, so that
    within a step of an exponentially decaying input the gain is right to second order in dt/τs.
    ``scale`` is e^{dt/2τs}/I_sat (0: linear). One gain per neuron and step scales that step's
    membrane change due to this input (the step resolution of the effect); x ≥ 0."""
    f = x * scale * _SAT_PER_UNIT
    if f >= _SAT_TOP * _SAT_PER_UNIT:
        return 1.0 / (x * scale)
    i = int(f)
    r = f - i
    return _SAT_TABLE[i] + r * (_SAT_TABLE[i + 1] - _SAT_TABLE[i])


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
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


@njit(cache=True, error_model="numpy")
def _adapt_v(tau, s_free, ia_s, ta, ca, tm):
    """The membrane's response at tau to an adaptation current ia_s at s_free: ia_s·κ_adapt(tau −
    s_free) (exact: it decays with τ_adapt like a synaptic current), 0 before s_free."""
    if not tau > s_free:
        return 0.0
    h = tau - s_free
    return ia_s * _kern(h, ta, ca, math.exp(-h / tm), tm)


@njit(cache=True, error_model="numpy")
def _v_free(tau, s_free, v_start, noise, dt, VL, Vr, tm, te, ti, ce, ci, ie_s, ii_s, held, pa, pwe, pwi, npairs,
            ia_s, ta, ca):
    """``_traj`` with an adaptation current ia_s at s_free, which lowers the membrane. (The edge
    scan of ``_neuron_in_step`` writes this out: a call more per edge costs the slow path ~20 %.)"""
    v = _traj(tau, s_free, v_start, noise, dt, VL, Vr, tm, te, ti, ce, ci, ie_s, ii_s, held, pa, pwe, pwi, npairs)
    if ia_s != 0.0:
        v -= _adapt_v(tau, s_free, ia_s, ta, ca, tm)
    return v


@njit(cache=True, error_model="numpy")
def _below_threshold(tau_max, s_free, v_start, noise, dt, VL, Vth, tm, ie_s, ii_s, held, pa, pwe, npairs):
    """True when the trajectory of ``_traj`` stays below Vth for all tau ≤ tau_max (a sound bound:
    κ(h) = ∫₀ʰ e^{−(h−u)/τm} e^{−u/τs} du/τm ≤ h/τm, κ ≥ 0, inhibition only lowers V, the leak term
    moves monotonically from v_start towards VL, and adaptation only raises the threshold; an
    adaptation current below 0 is handed in as ii_s, since it raises V like negative inhibition)."""
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


@njit(cache=True, error_model="numpy")
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


# ---------------------------------------------------------------------------------- phases


@njit(cache=True, error_model="numpy")
def _decay(nrn, adaptive, V, Ie, Ii, A, V2, Ie2, Ii2, A2):
    """1. Every neuron decays exactly over the step: the end-of-step state without input into
    V2, Ie2, Ii2, A2."""
    VL, am, ae, ai, aa = nrn.v_leak, nrn.decay_mem, nrn.decay_exc, nrn.decay_inh, nrn.decay_adapt
    ke, ki = nrn.kernel_exc, nrn.kernel_inh
    B, N = V.shape
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


@njit(cache=True, error_model="numpy")
def _decay_general(nrn, adaptive, adapt_current, saturation, V, Ie, Ii, A, V2, Ie2, Ii2, A2, VE, VI):
    """1. ``_decay`` with an adaptation current or saturating synaptic inputs. An adaptation
    current A enters the membrane like an inhibitory current with τ_adapt (−A·κ_adapt(dt), exact)
    and is driven by the membrane at step resolution: A ← A·e^{−dt/τa} + a·(V0 − V_L)·(1 − e^{−dt/τa})
    with the start-of-step V0 (exact for a membrane that stays at V0 over the step). With
    saturation, the membrane change due to each synaptic input goes to VE / VI (``_saturate``
    applies the gains), the rest to V2."""
    VL, am, ae, ai, aa = nrn.v_leak, nrn.decay_mem, nrn.decay_exc, nrn.decay_inh, nrn.decay_adapt
    ke, ki, ka, ca = nrn.kernel_exc, nrn.kernel_inh, nrn.kernel_adapt, nrn.adapt_coupling
    B, N = V.shape
    for b in range(B):
        for n in range(N):
            v = V[b, n] - VL[n]
            v *= am[n]
            v += VL[n]
            if adapt_current:
                v -= A[b, n] * ka[n]
                A2[b, n] = A[b, n] * aa[n] + ca[n] * (V[b, n] - VL[n]) * (1.0 - aa[n])
            else:
                A2[b, n] = A[b, n] * aa[n] if adaptive else A[b, n]
            if saturation:
                VE[b, n] = Ie[b, n] * ke[n]
                VI[b, n] = -(Ii[b, n] * ki[n])
            else:
                v += Ie[b, n] * ke[n]
                v -= Ii[b, n] * ki[n]
            V2[b, n] = v
            Ie2[b, n] = Ie[b, n] * ae[n]
            Ii2[b, n] = Ii[b, n] * ai[n]


@njit(cache=True, error_model="numpy")
def _saturate(nrn, Ie2, Ii2, VE, VI, V2):
    """3b. Saturating synaptic inputs: each neuron's membrane change due to its excitatory and
    inhibitory input in this step (VE, VI) enters V2 scaled by the gain of that input at the
    step's end (``_sat_gain``); the inputs themselves (Ie2, Ii2) stay linear."""
    ke, ki = nrn.sat_scale_exc, nrn.sat_scale_inh
    B, N = V2.shape
    for b in range(B):
        for n in range(N):
            V2[b, n] += _sat_gain(Ie2[b, n], ke[n]) * VE[b, n] + _sat_gain(Ii2[b, n], ki[n]) * VI[b, n]


@njit(cache=True, error_model="numpy")
def _clip(lo, hi, V2):
    """5c. Membrane rails: the end-of-step membrane clipped to [lo, hi] (model units)."""
    B, N = V2.shape
    for b in range(B):
        for n in range(N):
            v = V2[b, n]
            if v < lo:
                V2[b, n] = lo
            elif v > hi:
                V2[b, n] = hi


@njit(cache=True, error_model="numpy")
def _gather(slot, st0, st1, cal, scr):
    """2. The step's events into the scratch list: its calendar slot (emptied), then the static
    inputs ``st0:st1`` that arrive in it. Returns their number (the caller checked that they fit)."""
    ring_u, ring_b, ring_p, ring_t, ring_n = cal.ring_unit, cal.ring_sample, cal.ring_index, cal.ring_time_us, \
        cal.ring_count
    st_u, st_b, st_p, st_t = cal.static_unit, cal.static_sample, cal.static_index, cal.static_time_us
    ev_u, ev_b, ev_p, ev_t = scr.event_unit, scr.event_sample, scr.event_index, scr.event_time_us
    k = 0
    for j in range(ring_n[slot]):
        ev_u[k] = ring_u[slot, j]
        ev_b[k] = ring_b[slot, j]
        ev_p[k] = ring_p[slot, j]
        ev_t[k] = ring_t[slot, j]
        k += 1
    ring_n[slot] = 0
    for j in range(st0, st1):
        ev_u[k] = st_u[j]
        ev_b[k] = st_b[j]
        ev_p[k] = st_p[j]
        ev_t[k] = st_t[j]
        k += 1
    return k


@njit(cache=True, error_model="numpy")
def _deliver(n_ev, t1, nrn, syn, scr, VE, VI, Ie2, Ii2):
    """3. Delivery through the synapse table: each event adds w·e^{−h/τs} to I and w·κ(h) to V at
    the step's end (h: from its arrival to the step's end). The membrane's share goes to VE
    (excitatory) and VI (inhibitory): both are V2 itself unless the inputs saturate."""
    tm, te, ti, ce, ci = nrn.tau_mem_us, nrn.tau_syn_exc_us, nrn.tau_syn_inh_us, nrn.coeff_exc, nrn.coeff_inh
    row_base, indptr, cols, w_exc, w_inh = syn.row_base, syn.indptr, syn.cols, syn.w_exc, syn.w_inh
    ustart, uniform = syn.unit_start, syn.uniform
    ev_u, ev_b, ev_p, ev_t = scr.event_unit, scr.event_sample, scr.event_index, scr.event_time_us
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
                    VE[b, n] += we * fve
                if wi != 0.0:
                    Ii2[b, n] += wi * fii
                    VI[b, n] -= wi * fvi
        else:
            for j in range(j0, j1):
                n = cols[j]
                we = w_exc[j]
                wi = w_inh[j]
                em = math.exp(-h / tm[n])
                if we != 0.0:
                    Ie2[b, n] += we * math.exp(-h / te[n])
                    VE[b, n] += we * _kern(h, te[n], ce[n], em, tm[n])
                if wi != 0.0:
                    Ii2[b, n] += wi * math.exp(-h / ti[n])
                    VI[b, n] -= wi * _kern(h, ti[n], ci[n], em, tm[n])


@njit(cache=True, error_model="numpy")
def _mark(xs, t0, t1, nrn, has_noise, adaptive, xi, ref, V2, A2, scr):
    """4. Noise, the refractory clamp and the threshold test; marks the neurons that cross or
    leave refractoriness in this step for the slow path. Returns how many."""
    Vr, Vth, nscale = nrn.v_reset, nrn.v_threshold, nrn.noise_scale
    sl_b, sl_n = scr.slow_sample, scr.slow_neuron
    B, N = V2.shape
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
    return n_slow


@njit(cache=True, error_model="numpy")
def _by_sample(n_ev, B, scr):
    """The step's events by sample (a stable counting sort), so a slow neuron scans only its own."""
    ev_b, ev_by_b, b_ptr, b_fill = scr.event_sample, scr.event_by_sample, scr.sample_ptr, scr.sample_fill
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


@njit(cache=True, error_model="numpy")
def _events_reaching(b, n, t0, syn, scr):
    """5a. The events of this step that reach neuron n in sample b, as in-step arrival times and
    amplitudes in ``scr.pair_*``. Returns how many."""
    row_base, indptr, cols, w_exc, w_inh = syn.row_base, syn.indptr, syn.cols, syn.w_exc, syn.w_inh
    ustart, uend = syn.unit_start, syn.unit_end
    ev_u, ev_p, ev_t, ev_by_b, b_ptr = scr.event_unit, scr.event_index, scr.event_time_us, scr.event_by_sample, \
        scr.sample_ptr
    pa, pwe, pwi = scr.pair_time_us, scr.pair_w_exc, scr.pair_w_inh
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
    return npairs


@njit(cache=True, error_model="numpy")
def _neuron_in_step(dt, clock, M, grid, moving, v0, ie0, ii0, a0, ia0, inc, r0, noise, vl, vr, vth, tmn, ten, tin,
                    cen, cin, tan, can, tref, lo, hi, pa, pwe, pwi, npairs):
    """5b. One marked neuron through the step, from its start-of-step state (refractory for r0 µs
    more) with the step's events that reach it (``pa``, ``pwe``, ``pwi``). Returns (edge, t_cross,
    v_end): edge −1 when it does not cross, else the clock edge the spike is stamped on and the
    in-step time of the crossing, where the membrane resets, is held for τref and then runs free;
    v_end is the membrane at the step's end.

    Adaptation: with ``moving`` the threshold is vth + a0·e^{−τ/τa}; an adaptation current ia0
    (0 when adaptation moves the threshold) lowers the membrane instead and jumps by ``inc`` at the
    spike. The trajectory is clipped to the rails [lo, hi] (±inf: none).

    The crossing is the first clock edge at which V ≥ θ, searched on the clock grid (edges the
    bound keeps below threshold skipped), or bisected when the clock is much finer than the step."""
    s_free = min(r0, dt)
    v_start = vr if r0 > 0.0 else v0
    ie_s, ii_s, held = _charge(s_free, ie0, ii0, ten, tin, pa, pwe, pwi, npairs)
    ia_s = ia0 * math.exp(-s_free / tan) if ia0 != 0.0 else 0.0
    # for the bound, an adaptation current below 0 raises the membrane like a negative inhibitory one
    ii_b = ii_s if ia_s >= 0.0 else min(ii_s, 0.0) + ia_s
    bound = grid and lo < vth  # (a lower rail at or above threshold would defeat the bound)
    cross = -1
    t_cross = 0.0
    v_end_free = 0.0
    if bound and _below_threshold(M * clock, s_free, v_start, noise, dt, vl, vth, tmn, ie_s, ii_b, held,
                                  pa, pwe, npairs):
        # cannot reach threshold in this step (typically: leaving refractoriness)
        v_end_free = _traj(M * clock, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                           ie_s, ii_s, held, pa, pwe, pwi, npairs)
        if ia_s != 0.0:
            v_end_free -= _adapt_v(M * clock, s_free, ia_s, tan, can, tmn)
        v_end_free = min(max(v_end_free, lo), hi)
    elif grid:
        # skip the clock edges that the bound puts below threshold (it grows with the edge)
        m_lo = 0
        m_hi = M
        while bound and m_lo < m_hi:
            m_mid = (m_lo + m_hi + 1) >> 1
            if _below_threshold(m_mid * clock, s_free, v_start, noise, dt, vl, vth, tmn, ie_s, ii_b, held,
                                pa, pwe, npairs):
                m_lo = m_mid
            else:
                m_hi = m_mid - 1
        f_prev = 0.0
        if m_lo >= 1:
            tau = m_lo * clock
            v = _traj(tau, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                      ie_s, ii_s, held, pa, pwe, pwi, npairs)
            if ia_s != 0.0:
                v -= _adapt_v(tau, s_free, ia_s, tan, can, tmn)
            v = min(max(v, lo), hi)
            f_prev = v - (vth + a0 * math.exp(-tau / tan) if moving else vth)
            v_end_free = v
        for m in range(m_lo + 1, M + 1):
            tau = m * clock
            v = _traj(tau, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                      ie_s, ii_s, held, pa, pwe, pwi, npairs)
            if ia_s != 0.0:
                v -= _adapt_v(tau, s_free, ia_s, tan, can, tmn)
            v = min(max(v, lo), hi)
            f = v - (vth + a0 * math.exp(-tau / tan) if moving else vth)
            if f >= 0.0 and tau > s_free + 1e-12:
                cross = m
                # the analog reset acts at the crossing, located between grid points by
                # linear interpolation; the digital stamp is this clock edge
                f_lo = f_prev
                if m < 2:
                    f_lo = v0 - vth - (a0 if moving else 0.0)
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
        if ia_s != 0.0:
            v_end_free -= _adapt_v(dt, s_free, ia_s, tan, can, tmn)
        v_end_free = min(max(v_end_free, lo), hi)
        thr_end = vth + a0 * math.exp(-dt / tan) if moving else vth
        if v_end_free >= thr_end:
            lo_t = s_free
            hi_t = dt
            iters = int(math.ceil(math.log2(max(M, 2)))) + 2
            for _ in range(iters):
                mid = 0.5 * (lo_t + hi_t)
                vm = _traj(mid, s_free, v_start, noise, dt, vl, vr, tmn, ten, tin, cen, cin,
                           ie_s, ii_s, held, pa, pwe, pwi, npairs)
                if ia_s != 0.0:
                    vm -= _adapt_v(mid, s_free, ia_s, tan, can, tmn)
                vm = min(max(vm, lo), hi)
                if vm >= (vth + a0 * math.exp(-mid / tan) if moving else vth):
                    hi_t = mid
                else:
                    lo_t = mid
            cross = min(max(np.int64(math.ceil(hi_t / clock - 1e-9)), 1), M)
            t_cross = hi_t
    if cross < 0:
        return cross, t_cross, v_end_free
    # spike: reset at the crossing, held for τref, then free again (maybe within this step)
    s_after = t_cross + tref
    v_end = vr
    if s_after < dt:
        ie_a, ii_a, held_a = _charge(s_after, ie0, ii0, ten, tin, pa, pwe, pwi, npairs)
        ia_a = 0.0
        if ia0 != 0.0 or inc != 0.0:
            ia_a = ia0 * math.exp(-s_after / tan) + inc * math.exp(-(s_after - t_cross) / tan)
        v_end = _v_free(dt, s_after, vr, 0.0, dt, vl, vr, tmn, ten, tin, cen, cin,
                        ie_a, ii_a, held_a, pa, pwe, pwi, npairs, ia_a, tan, can) + noise * (1.0 - s_after / dt)
    return cross, t_cross, min(max(v_end, lo), hi)


@njit(cache=True, error_model="numpy")
def _sample(s, V2, traces):
    """6. ADC samples of the end-of-step membrane: sample j of a column after its nominal step
    (j + 1)·every − 1, or one step later where ``late`` says so."""
    tr_idx, tr_every, tr_out, tr_late = traces.neuron, traces.every_steps, traces.values, traces.late
    B = V2.shape[0]
    rows = tr_late.shape[0]
    for kk in range(tr_idx.shape[0]):
        every = tr_every[kk]
        js = (s + 1) // every - 1
        if (s + 1) % every == 0 and tr_late[js, kk] == 0:
            for b in range(B):
                tr_out[b, js, kk] = V2[b, tr_idx[kk]]
        js = s // every - 1
        if s % every == 0 and 0 <= js < rows and tr_late[js, kk] != 0:
            for b in range(B):
                tr_out[b, js, kk] = V2[b, tr_idx[kk]]


# ---------------------------------------------------------------------------------- correlation sensors


@njit(cache=True, error_model="numpy")
def _sense(s, dt, clock, n_ev, sp_lo, sp_hi, sp_b, sp_n, sp_c, syn, scr, cal, sen):
    """8. The correlation sensors after step s (its spikes emitted): nearest-neighbour pairs of the
    presynaptic events that reach a recorded synapse in step s and the step's spikes.

    The events of step s are those whose arrival lies in it: the ones delivered in it (the
    scratch list, left there by the step) and the ones that arrive in it but act from the next
    step on, because they were emitted or sent in it (already in the calendar's next slot; as
    the neurons do, the step loop gives them to step s + 1, the sensors see them at their time).
    An event's step is floor(t/dt), as the calendar computes it. A spike pairs with the latest
    arrival strictly before it (causal), an arrival with the latest spike strictly before it
    (acausal); each adds gain·e^{−Δt/τ} of its synapse. With at most one spike per neuron and
    step this is exact: first the acausal pairs and the arrivals before this step's spike of
    their neuron, then the causal pairs, then the arrivals at or after that spike."""
    ubase, unpost, upost0 = sen.unit_base, sen.unit_n_post, sen.unit_post0
    pbase, pnpre, pnpost, ppost0 = sen.proj_base, sen.proj_n_pre, sen.proj_n_post, sen.proj_post0
    mask, gain, tau = sen.mask, sen.gain, sen.tau_us
    causal, acausal, last_pre, last_post, now = sen.causal, sen.acausal, sen.last_pre_us, sen.last_post_us, \
        sen.spike_us
    ustart, uend = syn.unit_start, syn.unit_end
    slot = (s + 1) % cal.ring_count.shape[0]
    for i in range(sp_lo, sp_hi):
        now[sp_b[i], sp_n[i]] = sp_c[i] * clock
    passes = 2 if sp_hi > sp_lo else 1
    for pass_ in range(passes):
        for src in range(2):
            if src == 0:
                ev_u, ev_b, ev_p, ev_t, n = scr.event_unit, scr.event_sample, scr.event_index, scr.event_time_us, n_ev
            else:
                ev_u, ev_b, ev_p, ev_t, n = cal.ring_unit[slot], cal.ring_sample[slot], cal.ring_index[slot], \
                    cal.ring_time_us[slot], cal.ring_count[slot]
            for e in range(n):
                u = ev_u[e]
                base = ubase[u]
                if base < 0:
                    continue
                et = ev_t[e]
                own = np.int64(math.floor(et / dt + 1e-9))
                if (src == 0 and own < s) or (src == 1 and own > s):
                    continue  # sensed in the step before, or arrives in the next step
                b = ev_b[e]
                row = base + ev_p[e] * unpost[u] - upost0[u]
                for j in range(ustart[u], uend[u]):
                    k = row + j
                    if not mask[k]:
                        continue
                    ts = now[b, j]
                    if pass_ == 0:
                        tp = ts if ts < et else last_post[b, j]
                        if tp < et and tp > -math.inf:
                            acausal[b, k] += gain[k] * math.exp(-(et - tp) / tau[k])
                        if et < ts and et > last_pre[b, k]:
                            last_pre[b, k] = et
                    elif et >= ts and et > last_pre[b, k]:
                        last_pre[b, k] = et
        if pass_ == 0:
            for i in range(sp_lo, sp_hi):
                b = sp_b[i]
                n = sp_n[i]
                ts = now[b, n]
                for q in range(pbase.shape[0]):
                    jl = n - ppost0[q]
                    if jl < 0 or jl >= pnpost[q]:
                        continue
                    for pre in range(pnpre[q]):
                        k = pbase[q] + pre * pnpost[q] + jl
                        tp = last_pre[b, k]
                        if mask[k] and tp > -math.inf:
                            causal[b, k] += gain[k] * math.exp(-(ts - tp) / tau[k])
    for i in range(sp_lo, sp_hi):
        b = sp_b[i]
        n = sp_n[i]
        last_post[b, n] = now[b, n]
        now[b, n] = math.inf


# ---------------------------------------------------------------------------------- the loop


@njit(cache=True, nogil=True)
def advance(s_begin, s_end, cfg, nrn, state, syn, cal, lnk, scr, spikes, xi, traces, counters, sen):
    """Run steps s_begin..s_end−1 (or until a buffer asks to grow: see the status codes).

    Per step: exact decay of every neuron; delivery of the step's events (end-of-step effect of each
    by superposition); the gains of saturating inputs; noise; refractory clamp; threshold test; the
    slow path for neurons that cross or leave refractoriness; the rails; trace samples; emission of
    the step's spikes into the calendar; the correlation sensors of the projections in ``sen``
    (none: an empty table).
    The state is left in ``state.v``, ``.i_exc``, ``.i_inh``, ``.adapt`` on return. ``xi`` holds the
    noise of steps s_begin.. as (steps, B, N) (any shape when ``cfg.has_noise`` is False).

    The loop over the marked neurons stays here, with the arrays it reads taken from the tables
    once per call: a phase function that calls a helper numba does not inline (the in-step
    trajectory) would reference-count every array it touches on every step.
    """
    dt, clock, M, grid, adaptive, has_noise = cfg.dt_us, cfg.clock_us, cfg.cycles_per_step, cfg.grid, \
        cfg.adaptive, cfg.has_noise
    adapt_current, saturation, rails = cfg.adapt_current, cfg.saturation, cfg.rails
    moving = adaptive and not adapt_current  # adaptation moves the threshold
    general = adapt_current or saturation    # the step's decay needs more than the plain phase
    rail_lo, rail_hi = (cfg.rail_lo, cfg.rail_hi) if rails else (-math.inf, math.inf)
    V, Ie, Ii, A, ref = state.v, state.i_exc, state.i_inh, state.adapt, state.refractory_until_us
    V2, Ie2, Ii2, A2 = state.v_next, state.i_exc_next, state.i_inh_next, state.adapt_next
    VL, Vr, Vth, tm, te, ti = nrn.v_leak, nrn.v_reset, nrn.v_threshold, nrn.tau_mem_us, nrn.tau_syn_exc_us, \
        nrn.tau_syn_inh_us
    tref, ta, da, ce, ci, nscale = nrn.tau_ref_us, nrn.tau_adapt_us, nrn.adapt_increment, nrn.coeff_exc, \
        nrn.coeff_inh, nrn.noise_scale
    ca, sse, ssi = nrn.coeff_adapt, nrn.sat_scale_exc, nrn.sat_scale_inh
    slow_b, slow_n, pa, pwe, pwi = scr.slow_sample, scr.slow_neuron, scr.pair_time_us, scr.pair_w_exc, scr.pair_w_inh
    sp_b, sp_n, sp_c = spikes.sample, spikes.neuron, spikes.cycle
    ring_n, st_ptr, n_event_room = cal.ring_count, cal.static_ptr, scr.event_unit.shape[0]
    B, N = V.shape
    R = ring_n.shape[0]
    swapped = False
    status = DONE

    sensing = sen.proj_base.shape[0] > 0

    # spikes of an earlier call that did not fit into the calendar
    if counters[C_EMITTED] < counters[C_SPIKES]:
        sp_pending = counters[C_EMITTED]
        if cfg.link_model:
            ok = emit_through_links(counters[C_EMITTED], counters[C_SPIKES], M, clock, dt, sp_b, sp_n, sp_c, syn,
                                    cal, lnk, counters, cfg.n_pop_sources)
        else:
            ok = emit_spikes(counters[C_EMITTED], counters[C_SPIKES], M, clock, dt, sp_b, sp_n, sp_c, syn, cal,
                             counters)
        if not ok:
            return RING_FULL
        if sensing:  # the step those spikes belong to is sensed once they are in the calendar
            _sense(s_begin - 1, dt, clock, counters[C_EVENTS], sp_pending, counters[C_SPIKES], sp_b, sp_n, sp_c,
                   syn, scr, cal, sen)

    s = s_begin
    while s < s_end:
        # room for this step's events and spikes; its inputs sent into the links
        slot = s % R
        st0 = st1 = 0
        if s < st_ptr.shape[0] - 1:
            st0 = st_ptr[s]
            st1 = st_ptr[s + 1]
        if ring_n[slot] + st1 - st0 > n_event_room:
            counters[C_NEED] = ring_n[slot] + st1 - st0
            status = EVENTS_FULL
            break
        if counters[C_SPIKES] + B * N > sp_b.shape[0]:
            status = SPIKES_FULL
            break
        if cfg.link_model and counters[C_SENT_STEP] < s:
            # input events sent in this step enter the links now (they act from the next step on)
            if not send_inputs(s, dt, syn, cal, lnk, counters):
                status = RING_FULL
                break
            counters[C_SENT_STEP] = s
        t0 = s * dt
        t1 = t0 + dt
        xs = s - s_begin

        VE = scr.v_exc if saturation else V2
        VI = scr.v_inh if saturation else V2
        if general:
            _decay_general(nrn, adaptive, adapt_current, saturation, V, Ie, Ii, A, V2, Ie2, Ii2, A2, VE, VI)  # 1.
        else:
            _decay(nrn, adaptive, V, Ie, Ii, A, V2, Ie2, Ii2, A2)                  # 1.
        n_ev = _gather(slot, st0, st1, cal, scr)                                   # 2.
        counters[C_EVENTS] = n_ev
        _deliver(n_ev, t1, nrn, syn, scr, VE, VI, Ie2, Ii2)                        # 3.
        if saturation:
            _saturate(nrn, Ie2, Ii2, VE, VI, V2)
        n_slow = _mark(xs, t0, t1, nrn, has_noise, moving, xi, ref, V2, A2, scr)   # 4.

        # 5. the slow path of the marked neurons
        sp_first = counters[C_SPIKES]
        if n_slow > 0:
            _by_sample(n_ev, B, scr)
        for q in range(n_slow):
            b = slow_b[q]
            n = slow_n[q]
            npairs = _events_reaching(b, n, t0, syn, scr)
            noise = xi[xs, b, n] * nscale[n] if has_noise else 0.0
            ie0 = Ie[b, n]
            ii0 = Ii[b, n]
            if saturation:
                # the same gains as in _saturate, on every current that drives this step's trajectory
                se = _sat_gain(Ie2[b, n], sse[n])
                si = _sat_gain(Ii2[b, n], ssi[n])
                ie0 *= se
                ii0 *= si
                for p in range(npairs):
                    pwe[p] *= se
                    pwi[p] *= si
            ia0 = A[b, n] if adapt_current else 0.0
            inc = da[n] if adapt_current else 0.0
            cross, t_cross, v_end = _neuron_in_step(dt, clock, M, grid, moving, V[b, n], ie0, ii0, A[b, n], ia0,
                                                    inc, max(ref[b, n] - t0, 0.0), noise, VL[n], Vr[n], Vth[n],
                                                    tm[n], te[n], ti[n], ce[n], ci[n], ta[n], ca[n], tref[n],
                                                    rail_lo, rail_hi, pa, pwe, pwi, npairs)
            V2[b, n] = v_end
            if cross >= 0:
                # a spike: stamped on that clock edge; refractory from the crossing on
                ref[b, n] = t0 + t_cross + tref[n]
                if adaptive:
                    A2[b, n] += da[n] * math.exp(-(dt - t_cross) / ta[n])
                i = counters[C_SPIKES]
                sp_b[i] = b
                sp_n[i] = n
                sp_c[i] = s * M + cross
                counters[C_SPIKES] = i + 1

        if rails:
            _clip(rail_lo, rail_hi, V2)
        _sample(s, V2, traces)                                                     # 6.

        # the new state becomes the current one
        V, V2 = V2, V
        Ie, Ie2 = Ie2, Ie
        Ii, Ii2 = Ii2, Ii
        A, A2 = A2, A
        swapped = not swapped
        s += 1
        counters[C_NEXT] = s

        # 7. emission of this step's spikes, through the links or not (they act from the next step on)
        if cfg.link_model:
            ok = emit_through_links(sp_first, counters[C_SPIKES], M, clock, dt, sp_b, sp_n, sp_c, syn, cal, lnk,
                                    counters, cfg.n_pop_sources)
        else:
            ok = emit_spikes(sp_first, counters[C_SPIKES], M, clock, dt, sp_b, sp_n, sp_c, syn, cal, counters)
        if not ok:
            status = RING_FULL
            break
        if sensing:
            _sense(s - 1, dt, clock, n_ev, sp_first, counters[C_SPIKES], sp_b, sp_n, sp_c, syn, scr, cal, sen)  # 8.

    counters[C_NEXT] = s
    if swapped:
        # the caller's arrays must hold the state
        state.v[:, :] = V
        state.i_exc[:, :] = Ie
        state.i_inh[:, :] = Ii
        state.adapt[:, :] = A
    return status
