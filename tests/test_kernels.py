"""The compiled kernel's building blocks against plain references (called directly: numba
functions are callable from Python)."""

from __future__ import annotations

import math

import numpy as np

from chip.emulator import kernel as kernels
from chip.emulator import links


def _coeff(ts, tm):
    return ts / (ts - tm) if abs(ts - tm) > 1e-6 * max(ts, tm) else math.nan


def test_threshold_bound_never_hides_a_crossing():
    """The slow path skips clock edges that ``_below_threshold`` puts below threshold. Over random
    neurons (leak above or below threshold, held at reset or free, excitatory and inhibitory input
    events inside the step, noise) with the threshold placed just above or below the trajectory's
    true maximum, the bound must never say "below" when the trajectory reaches the threshold."""
    rng = np.random.default_rng(7)
    dt, M = 0.2, 25
    clock = dt / M
    said_below = tight = 0
    for _ in range(3000):
        tm, te, ti = rng.uniform(2.0, 30.0), rng.uniform(1.0, 20.0), rng.uniform(1.0, 20.0)
        if rng.random() < 0.1:
            te = tm  # the exact-limit kernel
        ce, ci = _coeff(te, tm), _coeff(ti, tm)
        VL, Vr = rng.uniform(-0.5, 1.5), rng.uniform(-0.5, 0.5)
        ie0 = rng.exponential(1.0) * (rng.random() < 0.7)
        ii0 = rng.exponential(1.0) * (rng.random() < 0.5)
        s_free = 0.0 if rng.random() < 0.5 else rng.uniform(0.0, dt)
        v_start = Vr if s_free > 0 else rng.uniform(-0.5, 1.0)
        n = int(rng.integers(0, 5))
        pa = rng.uniform(0.0, dt, n)
        pwe = rng.exponential(0.5, n) * (rng.random(n) < 0.7)
        pwi = rng.exponential(0.5, n) * (rng.random(n) < 0.5)
        noise = rng.normal(0.0, 0.02)
        ie_s, ii_s, held = kernels._charge(s_free, ie0, ii0, te, ti, pa, pwe, pwi, n)
        m_max = int(rng.integers(1, M + 1))
        tau_max = m_max * clock
        taus = np.linspace(0.0, tau_max, 401)
        taus = taus[taus > s_free]
        if len(taus) == 0:
            continue
        v = np.array([kernels._traj(t, s_free, v_start, noise, dt, VL, Vr, tm, te, ti, ce, ci,
                                    ie_s, ii_s, held, pa, pwe, pwi, n) for t in taus])
        # the threshold just above (bound may say below) or just below the maximum (it must not)
        vth = float(v.max()) + rng.uniform(-0.01, 0.05)
        below = kernels._below_threshold(tau_max, s_free, v_start, noise, dt, VL, vth, tm, ie_s, ii_s,
                                         held, pa, pwe, n)
        if below:
            said_below += 1
            assert v.max() < vth, (v.max(), vth)
            tight += vth - v.max() < 0.01
    # the bound is used, and also close to the threshold
    assert said_below > 300 and tight > 20, (said_below, tight)


def _fifo_reference(b, ent, sig, limit, free):
    """A FIFO server per sample with a bounded queue, written out event by event: in order of
    (sample, entry), each event starts when it arrives or when the server is free, whichever is
    later; one that would wait longer than ``limit`` is dropped on arrival and takes no service."""
    n = len(ent)
    keep = np.ones(n, dtype=bool)
    start = np.full(n, np.nan)
    for sample in np.unique(b):
        t_free = free[sample]
        for k in sorted((k for k in range(n) if b[k] == sample), key=lambda k: (ent[k], k)):
            s = max(ent[k], t_free)
            if s - ent[k] > limit:
                keep[k] = False
                continue
            start[k] = s
            t_free = s + sig
    return start, keep


def test_a_saturated_link_drops_what_its_queue_cannot_hold():
    """40 events, two per cycle, into a server of one per cycle with a queue of 4 events: the
    queue fills after 8 events; from then on every other event finds it full and is dropped, so
    exactly (40 - 8) / 2 = 16 are lost (serving the survivors twice, the old rule, lost 32)."""
    sig = 0.008
    n = 40
    ent = np.arange(n) * sig / 2
    b = np.zeros(n, dtype=np.int64)
    free_at = np.full((1, 1), -np.inf)
    exit_at = np.full((1, n), np.nan)
    dropped = np.zeros(1, dtype=np.int64)
    lost = np.zeros(n, dtype=bool)
    links._fifo(0, b, np.arange(n, dtype=np.int64), ent, n, sig, 4 * sig, 0.0, free_at, exit_at, dropped,
                np.zeros(1), lost)
    assert dropped[0] == 16 and lost.sum() == 16
    kept = np.flatnonzero(~lost)
    np.testing.assert_allclose(np.diff(exit_at[0, kept]), sig)  # the server never idles once busy


def test_link_fifo_matches_an_event_by_event_server():
    rng = np.random.default_rng(3)
    for case in range(200):
        B = int(rng.integers(1, 4))
        n = int(rng.integers(1, 40))
        sig = 0.008 / rng.choice([1.0, 0.5, 0.25])
        limit = (int(rng.integers(0, 6)) + 0.37) * sig  # off the clock grid: no wait equals it exactly
        b = rng.integers(0, B, n)
        # entries on the clock grid (ties) or anywhere
        ent = rng.integers(0, 30, n) * 0.008 if case % 2 else rng.uniform(0.0, 0.3, n)
        free = np.where(rng.random(B) < 0.5, -np.inf, rng.uniform(0.0, 0.2, B))
        lat = 0.016
        free_at = free[None, :].copy()
        exit_at = np.full((1, n), np.nan)
        dropped = np.zeros(1, dtype=np.int64)
        max_wait = np.zeros(1)
        lost = np.zeros(n, dtype=bool)
        idx = np.arange(n, dtype=np.int64)
        links._fifo(0, b.astype(np.int64), idx, ent.astype(np.float64), n, sig, limit, lat,
                      free_at, exit_at, dropped, max_wait, lost)
        start, keep = _fifo_reference(b, ent, sig, limit, free)
        np.testing.assert_array_equal(lost, ~keep)
        assert dropped[0] == int((~keep).sum())
        np.testing.assert_allclose(exit_at[0, keep], start[keep] + sig + lat, rtol=0, atol=1e-12)
        assert np.all(np.isnan(exit_at[0, ~keep]))
        if keep.any():
            assert abs(max_wait[0] - np.max(start[keep] - ent[keep])) < 1e-12
        for sample in range(B):
            mine = keep & (b == sample)
            expected = max(free[sample], (start[mine] + sig).max()) if mine.any() else free[sample]
            assert free_at[0, sample] == expected or abs(free_at[0, sample] - expected) < 1e-12
