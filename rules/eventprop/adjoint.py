r"""EventProp (Wunderlich & Pehle 2021) for layered feed-forward LIF networks, in numpy, on spike times.

Model (per layer, per sample, model units; times in µs)
--------------------------------------------------------
Every neuron j of a layer obeys, with no leak potential and no refractory period,

    tau_mem dV/dt = -V + I,        tau_syn dI/dt = -I,        V(0) = I(0) = 0,

and spikes when V reaches the threshold theta, after which V <- 0 (I is not reset; several spikes
per neuron are allowed). A spike of presynaptic neuron i at time t arrives at time a = t + d
(d = ``delay_us``, one constant per layer, also applied to the network inputs) and makes
I_j <- I_j + W[i, j] (``W`` has shape (n_pre, n_post), signed). Everything lives in [0, t_max].

Between events the state has the closed form (s = time since the last event)

    I(s) = I0 e^{-s/ts},      V(s) = V0 e^{-s/tm} + I0 kappa(s),
    kappa(s) = ts/(ts - tm) (e^{-s/ts} - e^{-s/tm})      (-> (s/tm) e^{-s/tm} for tm == ts),

where kappa is the membrane response to a unit current step (computed in a form that is stable for
tm ~ ts). V has at most one extremum per inter-event interval, at
s* = ts r log1p(x)/x with r = 1 - V0/I0 and x = ts (1/tm - 1/ts) r (a maximum when I0 > max(V0, 0)).

Forward (``simulate_layer`` / ``simulate_network``): exact and event driven. Between consecutive input
arrivals a neuron can only reach theta if I0 >= theta (V never exceeds max(V0, I0)); for those
candidates the bracket [0, min(s*, interval)] is searched with a safeguarded (bracketed) Newton
iteration to ~1e-13 µs. All samples of a batch and all neurons of a layer are advanced together; the
Python loop runs over the arrival index only.

Adjoint (``eventprop_gradients``)
---------------------------------
Let L depend on spike times only. We use the *sensitivities* lam_V(t) = dL/dV(t), lam_I(t) = dL/dI(t)
(the derivative of L with respect to a perturbation of the state at time t, future dynamics held
fixed). In reverse time s they obey exactly the linear ODEs of the paper (no l_V term here):

    tm dlam_V/ds = -lam_V,         ts dlam_I/ds = -lam_I + (ts/tm) lam_V,

solved in closed form between events: going back by s from a point with (A, B),
lam_V = A e^{-s/tm},  lam_I = B e^{-s/ts} + A kappa(s)   (the same kappa as in the forward).

Jumps. At a spike of neuron n at t_k (V(t_k^-) = theta, V(t_k^+) = 0, dV/dt^- = (I - theta)/tm), a
perturbation dV before the spike shifts it by dt_k = -dV tm / (I - theta) and leaves V^+ = 0 but moves
the reset: V(t_k + eps) changes by -(I/tm) dt_k. With c_k = dL/dt_k (direct loss term plus the effect
on the next layer, below) this gives

    lam_V^- = lam_V^+ + (theta lam_V^+ - tm c_k) / (I(t_k) - theta),        lam_I^- = lam_I^+.

(The paper's jump (lam_V^- = lam_V^+ + [theta lam_V^+ + ... + dl_p/dt_k] / (tm dV/dt^-)) with our sign
convention for lam.) The spike arrives at a = t_k + d in the next layer; shifting that arrival by dt
perturbs neuron j of the next layer after it by (-W[n,j]/tm, +W[n,j]/ts) dt, so

    dL/da = sum_j W[n, j] (lam_I,j(a)/ts - lam_V,j(a)/tm)      (next layer's adjoint at a),

which is added to c_k of the presynaptic spike: the layers are processed from the output backwards.
Weight gradient: an arrival of neuron i at a adds W[i, j] to I_j, hence

    dL/dW[i, j] = sum_{arrivals a of i} lam_I,j(a)

i.e. the paper's -tau_syn sum lambda_I with their scaling of lambda and of the synaptic input; in this
parametrisation (a spike adds W to I directly, lam = plain sensitivity) the factor is +1.

Saturating synaptic inputs (``eventprop_gradients(..., saturation=(I_sat_exc, I_sat_inh))``)
-------------------------------------------------------------------------------------------
On a chip whose synaptic input circuits saturate, each neuron has two lines, excitatory and
inhibitory, with linear inputs I_e, I_i >= 0 (an arrival of presynaptic i adds W[i, j] to I_e when
W[i, j] > 0 and |W[i, j]| to I_i when W[i, j] < 0), and the membrane sees g_x(I_x) = I_sat,x
tanh(I_x / I_sat,x) of each:

    tm dV/dt = -V + g_e(I_e) - g_i(I_i),        ts dI_x/dt = -I_x        (x = e, i).

With I_sat = inf this is the model above (I = I_e - I_i). Spike times are given (observed), so the
line currents are only needed at events, where they are sums of exponentials (exact); no forward
of V is needed. The sensitivities lam_V, lam_e, lam_i obey, in reverse time s, from
dlam/dt = -(df/dstate)^T lam:

    tm dlam_V/ds = -lam_V,     ts dlam_e/ds = -lam_e + (ts/tm) g_e'(I_e(t)) lam_V,
                               ts dlam_i/ds = -lam_i - (ts/tm) g_i'(I_i(t)) lam_V,

g'(x) = 1 - tanh^2(x / I_sat). Going back by h over an inter-event interval from its end (A = lam_V,
B_x = lam_x there; I_x(end - u) = I_x(end^-) e^{u/ts} exactly):

    lam_V = A e^{-h/tm},   lam_x = B_x e^{-h/ts} +- A (1/tm) int_0^h e^{-(h-u)/ts} e^{-u/tm} g_x'(I_x(end - u)) du,

(+ for e, - for i). With g' = 1 - tanh^2 the integral is kappa(h) minus a tanh^2 term, which is
integrated by Gauss-Legendre (``GL_NODES`` nodes on pieces of at most ``GL_PIECE_TAU`` min(tm, ts);
4 nodes on quarter-tau pieces agree with 16 nodes on eighth-tau pieces to ~1e-11 relative at inputs
several I_sat deep, ``tests/test_eventprop_saturation.py``). The events of one neuron (arrivals and
own spikes, merged in time) are swept once forwards (line currents just before each event) and
once backwards from its last spike (the adjoint is 0 after it).

Jumps, derived as above with G = g_e(I_e(t_k)) - g_i(I_i(t_k)) in place of I: at a spike
dV/dt^- = (G - theta)/tm, so dt_k = -dV tm / (G - theta), and the reset moves V(t_k + eps) by
-(G/tm) dt_k:

    lam_V^- = lam_V^+ + (theta lam_V^+ - tm c_k) / (G - theta),        lam_e, lam_i continuous

(G - theta clipped below at ``min_drive * theta`` as before). An arrival of weight W on line x at a,
shifted later by dt, leaves I_x short of |W| e^{-(t-a)/ts} before a + dt: just after, I_x is higher
by |W| dt/ts (the arrival has decayed less) and V lower by s_x [g_x(I_x(a^-) + |W|) - g_x(I_x(a^-))]
dt/tm (s_e = +1, s_i = -1; in the linear model this is (-W/tm, +W/ts) dt as above), so

    dL/da = sum_j |W[n, j]| lam_x,j(a)/ts - s_x [g_x(I_x,j(a^-) + |W[n, j]|) - g_x(I_x,j(a^-))] lam_V,j(a)/tm

(arrivals at one instant are taken in their sorted order for I_x(a^-)). The arrival adds |W| to
I_x and nothing else, so dL/dW[i, j] = s_x sum_a lam_x,j(a): lam_e for W > 0, -lam_i for W < 0,
and (lam_e - lam_i)/2 at W = 0 (the mean of the two one-sided derivatives; neither line carries
it). Both lam_x and lam_V are continuous at arrivals. Checked against central finite differences
of an independent fine-grid simulation of this model (``tests/test_eventprop_saturation.py``).

Conventions
-----------
* Spike trains: per layer, either a list per sample of a list per neuron of sorted 1-d arrays, or a
  padded array (batch, n, K) of sorted times with ``inf`` for "no spike" (see ``to_padded``). Network
  inputs may also be a (batch, n_in) array (one spike per input, ``inf`` = none).
* ``eventprop_gradients`` is linear in the given dL/dt and *sums* over the samples; ``first_spike_loss``
  returns dL/dt of the *batch-mean* loss, so the two together give the gradient of the mean loss.
* Silent output neurons count as spiking at t_max in the loss, but they have no spike through which a
  gradient could flow: their dL/dt is returned as 0 (as in EventProp).
* Observed (e.g. chip) spikes need not be consistent with the model: the drive I(t_k) - theta in the
  jump is clipped below at ``min_drive * theta`` so that grazing or model-inconsistent spikes cannot
  flip signs or explode. With consistent, non-grazing spikes this clip is inactive and the gradient
  is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numba import njit

__all__ = [
    "LIFParams",
    "kappa",
    "to_padded",
    "padded_from_events",
    "to_lists",
    "first_spike_times",
    "simulate_layer",
    "simulate_network",
    "membrane_trace",
    "first_spike_loss",
    "eventprop_gradients",
]


@dataclass(frozen=True)
class LIFParams:
    """Time constants (µs) and threshold of one layer of current-based LIF neurons (reset to 0)."""

    tau_mem_us: float
    tau_syn_us: float
    threshold: float = 1.0

    def __post_init__(self):
        if not (self.tau_mem_us > 0 and self.tau_syn_us > 0):
            raise ValueError(f"time constants must be > 0, got tau_mem {self.tau_mem_us}, tau_syn {self.tau_syn_us}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")

    @property
    def delta(self) -> float:
        """1/tau_mem - 1/tau_syn (0 in the limit case tau_mem == tau_syn)."""
        return 1.0 / self.tau_mem_us - 1.0 / self.tau_syn_us


# ----------------------------------------------------------------------------------------------
# closed-form pieces


def kappa(s, p: LIFParams):
    """Membrane response to a unit synaptic current at s >= 0: ts/(ts-tm) (e^{-s/ts} - e^{-s/tm}).

    Stable for tm ~ ts (the limit is (s/tm) e^{-s/tm}); 0 for s = inf.
    """
    s = np.asarray(s, dtype=np.float64)
    tm, ts = p.tau_mem_us, p.tau_syn_us
    tmd = tm * p.delta  # = 1 - tm/ts
    with np.errstate(invalid="ignore", over="ignore"):
        if abs(tmd) > 1e-3:
            # well separated time constants: the plain difference loses at most ~3 digits
            out = (np.exp(-s / ts) - np.exp(-s / tm)) / tmd
        else:
            # e^{-s/tm} (s/tm) expm1(s d)/(s d): no cancellation when d -> 0
            x = s * p.delta
            small = np.abs(x) < 1e-8
            phi = np.where(small, 1.0 + 0.5 * x, np.expm1(x) / np.where(small, 1.0, x))
            out = np.exp(-s / tm) * (s / tm) * phi
    return np.where(np.isinf(s), 0.0, out)


def _v_at(s, v0, i0, p: LIFParams):
    return v0 * np.exp(-s / p.tau_mem_us) + i0 * kappa(s, p)


def _peak_time(v0, i0, p: LIFParams):
    """Time of the maximum of V for states with i0 > max(v0, 0) (inf when V rises for ever)."""
    r = 1.0 - v0 / i0  # > 0
    x = p.tau_syn_us * p.delta * r
    small = np.abs(x) < 1e-8
    with np.errstate(invalid="ignore", divide="ignore"):
        lg = np.where(small, 1.0 - 0.5 * x, np.log1p(np.maximum(x, -1.0)) / np.where(small, 1.0, x))
    return np.where(x <= -1.0, np.inf, p.tau_syn_us * r * lg)


def _first_crossing(v0, i0, hi, p: LIFParams, tol=1e-13, max_iter=200):
    """Vectorised root of V(s) = theta in [0, hi] with V(0) < theta <= V(hi): safeguarded Newton.

    Newton steps from the current iterate are taken when they stay inside the bracket, otherwise the
    bracket is bisected; the bracket always keeps V(lo) < theta <= V(hi).
    """
    th = p.threshold
    lo = np.zeros_like(hi)
    hi = hi.copy()
    x = hi.copy()
    active = np.ones(hi.shape, dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        xa, v0a, i0a = x[active], v0[active], i0[active]
        v = _v_at(xa, v0a, i0a, p)
        f = v - th
        lo_a, hi_a = lo[active], hi[active]
        above = f >= 0
        hi_a = np.where(above, xa, hi_a)
        lo_a = np.where(above, lo_a, xa)
        dv = (i0a * np.exp(-xa / p.tau_syn_us) - v) / p.tau_mem_us
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = xa - f / dv
        xn = np.where(f == 0, xa, xn)  # exact hit: stay (a bisection here would move away from the root)
        bad = ~(dv > 0) | ~(xn >= lo_a) | ~(xn <= hi_a) | ~np.isfinite(xn)
        xn = np.where(bad, 0.5 * (lo_a + hi_a), xn)
        done = (np.abs(xn - xa) <= tol) | (hi_a - lo_a <= tol)
        x[active], lo[active], hi[active] = xn, lo_a, hi_a
        idx = np.flatnonzero(active)
        active[idx[done]] = False
    return x


# ----------------------------------------------------------------------------------------------
# spike-train containers


def to_padded(spikes, n: int | None = None) -> np.ndarray:
    """Spike trains as a float array (batch, n, K), sorted per neuron, ``inf``-padded (K >= 1).

    Accepts a (batch, n) array (one spike per neuron, inf = none), a (batch, n, K) array, or a list per
    sample of a list per neuron of spike times (array-like or scalar). ``n`` fixes the neuron count for
    an empty batch.
    """
    if isinstance(spikes, np.ndarray):
        arr = np.asarray(spikes, dtype=np.float64)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"spike array must have shape (batch, n) or (batch, n, K), got {arr.shape}")
        arr = np.sort(np.where(np.isnan(arr), np.inf, arr), axis=2)
        if arr.shape[2] == 0:
            arr = np.full(arr.shape[:2] + (1,), np.inf)
        return arr
    samples = [[np.atleast_1d(np.asarray(t, dtype=np.float64)).ravel() for t in sample] for sample in spikes]
    if not samples:
        return np.full((0, n or 0, 1), np.inf)
    n_neur = len(samples[0])
    if any(len(s) != n_neur for s in samples):
        raise ValueError("every sample must list the same number of neurons")
    k = max([1] + [len(t) for s in samples for t in s])
    out = np.full((len(samples), n_neur, k), np.inf)
    for b, s in enumerate(samples):
        for j, t in enumerate(s):
            out[b, j, : len(t)] = np.sort(t)
    return out


def padded_from_events(sample, neuron, time_us, batch_size: int, size: int) -> np.ndarray:
    """Flat spike events (sample index, neuron index, time) as ``to_padded`` gives them: (batch_size,
    size, K) sorted per neuron, ``inf``-padded, K >= 1. The same array as ``to_padded`` of the trains
    listed per sample and neuron, without a Python loop over them."""
    sample = np.asarray(sample, dtype=np.int64).ravel()
    neuron = np.asarray(neuron, dtype=np.int64).ravel()
    t = np.asarray(time_us, dtype=np.float64).ravel()
    if not (len(sample) == len(neuron) == len(t)):
        raise ValueError("sample, neuron and time_us must have the same length")
    if len(t) == 0:
        return np.full((batch_size, size, 1), np.inf)
    flat = sample * size + neuron
    order = np.lexsort((t, flat))
    flat, t = flat[order], t[order]
    first = np.r_[0, np.flatnonzero(np.diff(flat)) + 1]
    runs = np.diff(np.r_[first, len(flat)])
    rank = np.arange(len(flat)) - np.repeat(first, runs)
    out = np.full((batch_size * size, int(runs.max())), np.inf)
    out[flat, rank] = t
    return out.reshape(batch_size, size, -1)


def to_lists(padded: np.ndarray) -> list[list[np.ndarray]]:
    """Inverse of ``to_padded``: list per sample of list per neuron of finite spike times."""
    return [[row[np.isfinite(row)].copy() for row in sample] for sample in padded]


def first_spike_times(spikes) -> np.ndarray:
    """(batch, n) first spike time per neuron (``inf`` for silent neurons)."""
    padded = to_padded(spikes)
    return padded[:, :, 0].copy() if padded.shape[2] else np.full(padded.shape[:2], np.inf)


def _arrivals(pre: np.ndarray, delay_us: float):
    """Flatten presynaptic spikes (batch, n_pre, K) to arrival times (batch, n_pre*K) and their sources."""
    bsz, n_pre, k = pre.shape
    times = pre.reshape(bsz, n_pre * k) + float(delay_us)
    src = np.repeat(np.arange(n_pre), k)
    return times, np.broadcast_to(src, times.shape)


# ----------------------------------------------------------------------------------------------
# forward


def _simulate_layer_padded(pre: np.ndarray, W: np.ndarray, p: LIFParams, t_max_us: float, delay_us: float,
                           max_spikes: int) -> np.ndarray:
    """Exact forward of one layer for a batch: presynaptic spikes (batch, n_pre, K) -> (batch, n_post, K')."""
    W = np.asarray(W, dtype=np.float64)
    bsz = pre.shape[0]
    n_post = W.shape[1]
    if pre.shape[1] != W.shape[0]:
        raise ValueError(f"{pre.shape[1]} presynaptic neurons but W has shape {W.shape}")
    th, tm, ts = p.threshold, p.tau_mem_us, p.tau_syn_us
    t_max = float(t_max_us)
    times, src = _arrivals(pre, delay_us)
    times = np.where(times <= t_max, times, np.inf)  # arrivals after the window change nothing in it
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    src = np.take_along_axis(src, order, axis=1)
    n_arr = int(np.isfinite(times).sum(axis=1).max()) if times.size else 0
    times, src = times[:, :n_arr], src[:, :n_arr]

    V = np.zeros((bsz, n_post))
    I = np.zeros((bsz, n_post))
    count = np.zeros((bsz, n_post), dtype=np.int64)
    t_prev = np.zeros(bsz)
    rec_b, rec_j, rec_t = [], [], []

    for step in range(n_arr + 1):
        t_next = np.minimum(times[:, step], t_max) if step < n_arr else np.full(bsz, t_max)
        dt = np.maximum(t_next - t_prev, 0.0)
        # V never exceeds max(V0, I0) within an interval, so only I0 >= theta can spike (V0 < theta).
        cand = (I >= th) & (count < max_spikes)
        V_old, I_old = V, I
        # free evolution to the end of the interval (overwritten below for neurons that spiked)
        V = V_old * np.exp(-dt / tm)[:, None] + I_old * kappa(dt, p)[:, None]
        I = I_old * np.exp(-dt / ts)[:, None]
        if cand.any():
            cb, cj = np.nonzero(cand)
            v0, i0 = V_old[cb, cj], I_old[cb, cj]
            rem = dt[cb]
            t0 = t_prev[cb].copy()
            cnt = count[cb, cj]
            spiked_any = np.zeros(len(cb), dtype=bool)
            live = np.ones(len(cb), dtype=bool)
            while live.any():
                li = np.flatnonzero(live)
                v, i, r = v0[li], i0[li], rem[li]
                s_pk = np.where((i > v) & (i > 0), _peak_time(v, i, p), 0.0)
                s_end = np.minimum(s_pk, r)
                v_end, v_rem = _v_at(s_end, v, i, p), _v_at(r, v, i, p)
                immediate = v >= th  # only through rounding; treat as a spike at the interval start
                cross = immediate | (v_end >= th) | (v_rem >= th)
                live[li[~cross]] = False
                if not cross.any():
                    break
                ci = li[cross]
                hi = np.where(v_rem[cross] >= th, r[cross], s_end[cross])
                sc = _first_crossing(v[cross], i[cross], hi, p)
                sc = np.where(immediate[cross], 0.0, sc)
                t0[ci] += sc
                rec_b.append(cb[ci])
                rec_j.append(cj[ci])
                rec_t.append(t0[ci].copy())
                v0[ci] = 0.0
                i0[ci] = i[cross] * np.exp(-sc / ts)
                rem[ci] = np.maximum(r[cross] - sc, 0.0)
                cnt[ci] += 1
                spiked_any[ci] = True
                live[ci[cnt[ci] >= max_spikes]] = False
            count[cb, cj] = cnt
            if spiked_any.any():
                si = np.flatnonzero(spiked_any)
                V[cb[si], cj[si]] = _v_at(rem[si], v0[si], i0[si], p)
                I[cb[si], cj[si]] = i0[si] * np.exp(-rem[si] / ts)
        if step < n_arr:
            ok = np.isfinite(times[:, step])
            if ok.any():
                I[ok] += W[src[ok, step]]
        t_prev = t_next

    k_max = max(1, int(count.max()) if count.size else 1)
    out = np.full((bsz, n_post, k_max), np.inf)
    if rec_b:
        b, j, t = np.concatenate(rec_b), np.concatenate(rec_j), np.concatenate(rec_t)
        o = np.lexsort((t, j, b))
        b, j, t = b[o], j[o], t[o]
        flat = b * n_post + j
        # rank of each spike within its neuron
        first = np.r_[0, np.flatnonzero(np.diff(flat)) + 1]
        rank = np.arange(len(flat)) - np.repeat(first, np.diff(np.r_[first, len(flat)]))
        out[b, j, rank] = t
    return out


def simulate_layer(in_times: Sequence, W: np.ndarray, params: LIFParams, t_max_us: float, delay_us: float = 0.0,
                   max_spikes: int = 1000) -> list[np.ndarray]:
    """Exact event-driven forward of one layer for one sample.

    ``in_times``: per presynaptic neuron a sorted array of spike times (µs). ``W``: (n_pre, n_post).
    Returns per postsynaptic neuron the sorted array of its spike times in [0, t_max_us]. A neuron that
    reaches ``max_spikes`` spikes is not allowed to spike again (guard against runaway drive).
    """
    pre = to_padded([list(in_times)], n=len(in_times))
    if pre.shape[1] == 0:
        pre = np.full((1, np.asarray(W).shape[0], 1), np.inf)
    return to_lists(_simulate_layer_padded(pre, W, params, t_max_us, delay_us, max_spikes))[0]


def membrane_trace(t_us, in_times: Sequence, W: np.ndarray, params: LIFParams, out_times: Sequence | None = None,
                   delay_us: float = 0.0) -> np.ndarray:
    """V(t) of every postsynaptic neuron of one layer for one sample, shape (len(t_us), n_post).

    Uses the linearity of the model: the reset V <- 0 at a spike (where V = theta) equals subtracting
    theta there, so V(t) = sum_arrivals W[i, j] kappa(t - a) - theta sum_{own spikes s < t} e^{-(t-s)/tm}.
    ``out_times`` are the neuron's own spikes (e.g. from ``simulate_layer``); None = no resets.
    For diagnostics and tests (O(len(t) x spikes)).
    """
    t = np.atleast_1d(np.asarray(t_us, dtype=np.float64))
    W = np.asarray(W, dtype=np.float64)
    v = np.zeros((len(t), W.shape[1]))
    for i, times in enumerate(in_times):
        for a in np.atleast_1d(np.asarray(times, dtype=np.float64)) + delay_us:
            s = t - a
            v += np.where(s > 0, kappa(np.maximum(s, 0.0), params), 0.0)[:, None] * W[i][None, :]
    if out_times is not None:
        for j, times in enumerate(out_times):
            for sp in np.atleast_1d(np.asarray(times, dtype=np.float64)):
                s = t - sp
                v[:, j] -= params.threshold * np.where(s > 0, np.exp(-np.maximum(s, 0.0) / params.tau_mem_us), 0.0)
    return v


def _per_layer(value, n_layers: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n_layers:
            raise ValueError(f"{name}: {len(value)} values for {n_layers} layers")
        return list(value)
    return [value] * n_layers


def simulate_network(input_times, weights: Sequence[np.ndarray], params, t_max_us: float, delays_us=0.0,
                     max_spikes: int = 1000, as_arrays: bool = False):
    """Exact forward of a layered network for a batch.

    ``input_times``: (batch, n_in) array (inf = no spike), (batch, n_in, K) array, or a list per sample of
    a list per input neuron of spike times. ``weights``: one (n_pre, n_post) matrix per layer.
    ``params``: one ``LIFParams`` or one per layer; ``delays_us``: one delay or one per layer (the delay
    of layer l applies to the arrivals *into* layer l, i.e. the inputs for l = 0).

    Returns, per layer, the spikes of that layer: a list per sample of a list per neuron of sorted arrays,
    or with ``as_arrays=True`` a padded (batch, n, K) array per layer (see ``to_padded``).
    """
    n_layers = len(weights)
    params_l = _per_layer(params, n_layers, "params")
    delays_l = _per_layer(delays_us, n_layers, "delays_us")
    spikes = to_padded(input_times, n=np.asarray(weights[0]).shape[0])
    out = []
    for W, p, d in zip(weights, params_l, delays_l):
        spikes = _simulate_layer_padded(spikes, W, p, t_max_us, d, max_spikes)
        out.append(spikes)
    return out if as_arrays else [to_lists(s) for s in out]


# ----------------------------------------------------------------------------------------------
# loss


def first_spike_loss(out_first_times, labels, tau0_us: float, tau1_us: float, alpha: float, t_max_us: float,
                     margin_us: float = 0.0):
    """Loss of Wunderlich & Pehle's Yin-Yang experiment on first output spike times.

    L = mean_b [ -log softmax(-t'_b/tau0)[label_b] + alpha (exp(t_b,label/tau1) - 1) ]

    (cross-entropy of the softmax of negative first-spike times, plus a penalty that pushes the correct
    neuron's spike earlier). ``margin_us`` m makes it an additive-margin softmax on times: t' is t with
    the correct neuron's time shifted later by m (t'_b,label = t_b,label + m), so that a sample stops
    contributing only once the correct neuron leads the others by clearly more than m, not merely
    leads; the regulariser keeps the unshifted time. m = 0 is the plain loss, to the last bit.
    Silent neurons (``inf``) are treated as spiking at ``t_max_us``; times are not otherwise clipped.
    Returns ``(loss, dL/dt)`` with dL/dt of shape (batch, n_out) — the exact gradient of this loss
    (the shift is a constant, dt'/dt = 1) — for the batch-mean loss (i.e. already divided by the
    batch size), and 0 for silent neurons (no spike to move; EventProp cannot propagate through them).
    """
    t = np.asarray(out_first_times, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    bsz = t.shape[0]
    silent = ~np.isfinite(t)
    te = np.where(silent, float(t_max_us), t)
    rows = np.arange(bsz)
    shifted = te.copy()
    if margin_us:
        shifted[rows, labels] += float(margin_us)
    z = -shifted / tau0_us
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    t_lab = te[rows, labels]
    per = -logp[rows, labels] + alpha * np.expm1(t_lab / tau1_us)
    prob = np.exp(logp)
    onehot = np.zeros_like(prob)
    onehot[rows, labels] = 1.0
    grad = (onehot - prob) / tau0_us
    grad[rows, labels] += alpha / tau1_us * np.exp(t_lab / tau1_us)
    grad = np.where(silent, 0.0, grad / max(bsz, 1))
    return float(per.mean()) if bsz else 0.0, grad


# ----------------------------------------------------------------------------------------------
# adjoint


def _synaptic_current_before(post: np.ndarray, arr_t: np.ndarray, arr_w: np.ndarray, p: LIFParams) -> np.ndarray:
    """I_j(t_k^-) at every spike (batch, n, K) from arrivals (batch, m) with weights arr_w (batch, m, n)."""
    with np.errstate(invalid="ignore"):
        d = post[:, :, :, None] - arr_t[:, None, None, :]
        e = np.where(d > 0, np.exp(-np.where(d > 0, d, 0.0) / p.tau_syn_us), 0.0)
    return np.einsum("bnkm,bmn->bnk", e, arr_w, optimize=True)


def _layer_backward_numpy(post, c, arr_t, arr_src, W, p: LIFParams, min_drive: float):
    """Adjoint of one layer.

    post: spikes (batch, n, K); c: dL/dt_k of those spikes (batch, n, K); arrivals arr_t (batch, m) with
    source neuron arr_src. Returns dL/dW (summed over the batch) and dL/d(arrival time) (batch, m).
    """
    tm, ts, th = p.tau_mem_us, p.tau_syn_us, p.threshold
    bsz, n, k = post.shape
    valid_arr = np.isfinite(arr_t)
    arr_w = np.where(valid_arr[:, :, None], W[arr_src], 0.0)  # (batch, m, n)
    valid = np.isfinite(post)
    cur = _synaptic_current_before(post, arr_t, arr_w, p)
    drive = np.maximum(cur - th, min_drive * th)

    # backwards through each neuron's own spikes: lam just before spike k
    lam_v = np.zeros((bsz, n, k))
    lam_i = np.zeros((bsz, n, k))
    a_next = np.zeros((bsz, n))
    b_next = np.zeros((bsz, n))
    t_next = np.full((bsz, n), np.inf)
    for kk in range(k - 1, -1, -1):
        v = valid[:, :, kk]
        t = post[:, :, kk]
        with np.errstate(invalid="ignore"):
            gap = np.where(v, t_next - t, np.inf)  # inf when there is no later spike: lam = 0 there
        a_plus = a_next * np.exp(-gap / tm)
        b_plus = b_next * np.exp(-gap / ts) + a_next * kappa(gap, p)
        a_minus = a_plus + (th * a_plus - tm * c[:, :, kk]) / drive[:, :, kk]
        a_next = np.where(v, a_minus, a_next)
        b_next = np.where(v, b_plus, b_next)
        t_next = np.where(v, t, t_next)
        lam_v[:, :, kk] = np.where(v, a_minus, 0.0)
        lam_i[:, :, kk] = np.where(v, b_plus, 0.0)

    # adjoint of every postsynaptic neuron at every arrival (just after it): evolve back from the
    # first own spike strictly after the arrival (zero if there is none)
    with np.errstate(invalid="ignore"):
        nxt = (post[:, :, :, None] <= arr_t[:, None, None, :]).sum(axis=2)  # (batch, n, m)
    pad_t = np.concatenate([post, np.full((bsz, n, 1), np.inf)], axis=2)
    pad_v = np.concatenate([lam_v, np.zeros((bsz, n, 1))], axis=2)
    pad_i = np.concatenate([lam_i, np.zeros((bsz, n, 1))], axis=2)
    tk = np.take_along_axis(pad_t, nxt, axis=2)
    av = np.take_along_axis(pad_v, nxt, axis=2)
    ai = np.take_along_axis(pad_i, nxt, axis=2)
    with np.errstate(invalid="ignore"):
        s = tk - arr_t[:, None, :]
    ok = np.isfinite(s)
    s = np.where(ok, s, np.inf)
    lv_at = np.where(ok, av * np.exp(-s / tm), 0.0)
    li_at = np.where(ok, ai * np.exp(-s / ts) + av * kappa(s, p), 0.0)

    dW = np.zeros_like(W, dtype=np.float64)
    sel = valid_arr
    np.add.at(dW, arr_src[sel], li_at.transpose(0, 2, 1)[sel])
    d_arr = np.einsum("bmn,bnm->bm", arr_w, li_at / ts - lv_at / tm, optimize=True)
    return dW, d_arr


@njit(cache=True, nogil=True)
def _kappa1(s, tm, ts, delta):
    """``kappa`` for one s >= 0 (inf -> 0), the same two forms."""
    if math.isinf(s):
        return 0.0
    tmd = tm * delta
    if abs(tmd) > 1e-3:
        return (math.exp(-s / ts) - math.exp(-s / tm)) / tmd
    x = s * delta
    phi = 1.0 + 0.5 * x if abs(x) < 1e-8 else math.expm1(x) / x
    return math.exp(-s / tm) * (s / tm) * phi


@njit(cache=True, nogil=True)
def _layer_backward_nb(post, c, arr_t, arr_src, W, Wb, tm, ts, th, delta, min_drive):
    bsz, n, k = post.shape
    m = arr_t.shape[1]
    dW = np.zeros(W.shape)
    d_arr = np.zeros((bsz, m))
    lam_v = np.zeros(k)
    lam_i = np.zeros(k)
    for b in range(bsz):
        for j in range(n):
            # lam just before each own spike, backwards through the neuron's spikes
            a_next = 0.0
            b_next = 0.0
            t_next = math.inf
            for kk in range(k - 1, -1, -1):
                t = post[b, j, kk]
                lam_v[kk] = 0.0
                lam_i[kk] = 0.0
                if not math.isfinite(t):
                    continue
                cur = 0.0
                for q in range(m):
                    d = t - arr_t[b, q]
                    if d > 0 and math.isfinite(arr_t[b, q]):
                        cur += math.exp(-d / ts) * W[arr_src[b, q], j]
                drive = max(cur - th, min_drive * th)
                gap = t_next - t
                a_plus = a_next * math.exp(-gap / tm)
                b_plus = b_next * math.exp(-gap / ts) + a_next * _kappa1(gap, tm, ts, delta)
                a_minus = a_plus + (th * a_plus - tm * c[b, j, kk]) / drive
                a_next = a_minus
                b_next = b_plus
                t_next = t
                lam_v[kk] = a_minus
                lam_i[kk] = b_plus
            # adjoint at every arrival: evolved back from the first own spike strictly after it
            for q in range(m):
                a = arr_t[b, q]
                if not math.isfinite(a):
                    continue
                nxt = 0
                while nxt < k and post[b, j, nxt] <= a:
                    nxt += 1
                if nxt == k or not math.isfinite(post[b, j, nxt]):
                    continue
                s = post[b, j, nxt] - a
                av = lam_v[nxt]
                lv = av * math.exp(-s / tm)
                li = lam_i[nxt] * math.exp(-s / ts) + av * _kappa1(s, tm, ts, delta)
                i = arr_src[b, q]
                dW[i, j] += li
                d_arr[b, q] += Wb[i, j] * (li / ts - lv / tm)
    return dW, d_arr


def _layer_backward(post, c, arr_t, arr_src, W, p: LIFParams, min_drive: float, W_back=None):
    """Adjoint of one layer, compiled: the same quantities as ``_layer_backward_numpy``, one neuron
    of one sample at a time (no (batch, n, K, m) temporaries). ``W_back`` (default ``W``) is the
    matrix that carries the adjoint down to the presynaptic spike times: ``W`` is the exact
    gradient; anything else is what feedback synapses of their own would carry (weight transport)."""
    f64 = np.float64
    W_back = W if W_back is None else W_back
    return _layer_backward_nb(np.ascontiguousarray(post, dtype=f64), np.ascontiguousarray(c, dtype=f64),
                              np.ascontiguousarray(arr_t, dtype=f64), np.ascontiguousarray(arr_src, dtype=np.int64),
                              np.ascontiguousarray(W, dtype=f64), np.ascontiguousarray(W_back, dtype=f64),
                              float(p.tau_mem_us), float(p.tau_syn_us),
                              float(p.threshold), float(p.delta), float(min_drive))


# ----------------------------------------------------------------------------------------------
# saturating synaptic inputs (see "Saturating synaptic inputs" in the module docstring)

# Gauss-Legendre rule of the adjoint's quadrature: GL_NODES nodes on every piece of at most
# GL_PIECE_TAU (in units of min(tau_mem, tau_syn)) of an inter-event interval. Chosen by the
# convergence check in tests/test_eventprop_saturation.py (relative change of the gradient below
# 1e-9 against 16 nodes on pieces half as long, at I_sat well below the summed input).
GL_NODES = 4
GL_PIECE_TAU = 0.25


def _gauss_legendre(n: int):
    x, w = np.polynomial.legendre.leggauss(int(n))
    return 0.5 * (x + 1.0), 0.5 * w  # on [0, 1]


@njit(cache=True, nogil=True)
def _g_sat(x, isat):
    """g(x) = I_sat tanh(x / I_sat) (x for I_sat = inf)."""
    if math.isinf(isat):
        return x
    return isat * math.tanh(x / isat)


@njit(cache=True, nogil=True)
def _lam_lines(h, ie_end, ii_end, isat_e, isat_i, tm, ts, delta, gx, gw, piece):
    """For both lines x = e, i: (1/tm) int_0^h e^{-(h-u)/ts} e^{-u/tm} g_x'(I_x,end e^{u/ts}) du, the
    source of the line's adjoint over an inter-event interval of length h per unit of lam_V at its
    end (u runs backwards from the end, where the line's current is I_x,end). With g' = 1 - tanh^2
    this is kappa(h) minus the quadrature of the tanh^2 part (exact for I_sat = inf or a line without
    current); the two lines share the nodes."""
    k = _kappa1(h, tm, ts, delta)
    do_e = not (math.isinf(isat_e) or ie_end == 0.0)
    do_i = not (math.isinf(isat_i) or ii_end == 0.0)
    if h <= 0.0 or not (do_e or do_i):
        return k, k
    n_piece = max(1, int(math.ceil(h / piece)))
    hp = h / n_piece
    corr_e = 0.0
    corr_i = 0.0
    for pc in range(n_piece):
        u0 = pc * hp
        for q in range(gx.shape[0]):
            u = u0 + gx[q] * hp
            grow = math.exp(u / ts)
            wq = gw[q] * hp * math.exp(-(h - u) / ts - u / tm)
            if do_e:
                th = math.tanh(ie_end * grow / isat_e)
                corr_e += wq * th * th
            if do_i:
                th = math.tanh(ii_end * grow / isat_i)
                corr_i += wq * th * th
    return k - corr_e / tm, k - corr_i / tm


@njit(cache=True, nogil=True)
def _layer_backward_sat_nb(post, c, arr_t, arr_src, W, tm, ts, th, delta, min_drive, isat_e, isat_i,
                           gx, gw, piece):
    """``_layer_backward_nb`` for the saturating model; arrivals sorted by time per sample (inf last)."""
    bsz, n, k = post.shape
    m = arr_t.shape[1]
    dW = np.zeros(W.shape)
    d_arr = np.zeros((bsz, m))
    n_ev = m + k
    ev_t = np.empty(n_ev)
    ev_q = np.empty(n_ev, dtype=np.int64)   # arrival index, or -1 - spike index
    ie_b = np.empty(n_ev)                   # line currents just before each event
    ii_b = np.empty(n_ev)
    for b in range(bsz):
        m_b = 0
        while m_b < m and math.isfinite(arr_t[b, m_b]):
            m_b += 1
        for j in range(n):
            k_j = 0
            while k_j < k and math.isfinite(post[b, j, k_j]):
                k_j += 1
            if k_j == 0:
                continue  # no own spike: the adjoint is 0 everywhere
            # merge arrivals and own spikes in time (a spike before an arrival at the same time:
            # the current at a spike counts the arrivals strictly before it)
            qa = 0
            ks = 0
            e = 0
            while qa < m_b or ks < k_j:
                if ks < k_j and (qa == m_b or post[b, j, ks] <= arr_t[b, qa]):
                    ev_t[e] = post[b, j, ks]
                    ev_q[e] = -1 - ks
                    ks += 1
                else:
                    ev_t[e] = arr_t[b, qa]
                    ev_q[e] = qa
                    qa += 1
                e += 1
            n_e = e
            # forward: line currents just before every event
            ie = 0.0
            ii = 0.0
            t_prev = 0.0
            last_spike = 0
            for e in range(n_e):
                dt = ev_t[e] - t_prev
                if dt > 0:
                    ie *= math.exp(-dt / ts)
                    ii *= math.exp(-dt / ts)
                    t_prev = ev_t[e]
                ie_b[e] = ie
                ii_b[e] = ii
                q = ev_q[e]
                if q >= 0:
                    w = W[arr_src[b, q], j]
                    if w > 0:
                        ie += w
                    else:
                        ii -= w
                else:
                    last_spike = e
            # backward from the last own spike (the adjoint is 0 after it)
            lv = 0.0
            le = 0.0
            li = 0.0
            t_next = ev_t[last_spike]
            for e in range(last_spike, -1, -1):
                t = ev_t[e]
                h = t_next - t
                if h > 0:
                    # the interval (t, t_next): currents at its end are those just before event e+1
                    se, si = _lam_lines(h, ie_b[e + 1], ii_b[e + 1], isat_e, isat_i, tm, ts, delta, gx, gw, piece)
                    de = math.exp(-h / ts)
                    le = le * de + lv * se
                    li = li * de - lv * si
                    lv = lv * math.exp(-h / tm)
                    t_next = t
                q = ev_q[e]
                if q < 0:
                    kk = -1 - q
                    g_net = _g_sat(ie_b[e], isat_e) - _g_sat(ii_b[e], isat_i)
                    drive = max(g_net - th, min_drive * th)
                    lv = lv + (th * lv - tm * c[b, j, kk]) / drive
                else:
                    i = arr_src[b, q]
                    w = W[i, j]
                    if w > 0:
                        dW[i, j] += le
                        dg = _g_sat(ie_b[e] + w, isat_e) - _g_sat(ie_b[e], isat_e)
                        d_arr[b, q] += w * le / ts - dg * lv / tm
                    elif w < 0:
                        dW[i, j] -= li
                        dg = _g_sat(ii_b[e] - w, isat_i) - _g_sat(ii_b[e], isat_i)
                        d_arr[b, q] += -w * li / ts + dg * lv / tm
                    else:
                        dW[i, j] += 0.5 * (le - li)
    return dW, d_arr


def _layer_backward_sat(post, c, arr_t, arr_src, W, p: LIFParams, min_drive: float, isat_e: float, isat_i: float,
                        nodes: int | None = None, piece_tau: float | None = None):
    """Adjoint of one layer of the saturating model (same returns as ``_layer_backward``); ``nodes`` and
    ``piece_tau`` default to ``GL_NODES`` and ``GL_PIECE_TAU``."""
    f64 = np.float64
    nodes = GL_NODES if nodes is None else nodes
    piece_tau = GL_PIECE_TAU if piece_tau is None else piece_tau
    arr_t = np.asarray(arr_t, dtype=f64)
    order = np.argsort(arr_t, axis=1, kind="stable")
    t_sorted = np.take_along_axis(arr_t, order, axis=1)
    src_sorted = np.take_along_axis(np.asarray(arr_src, dtype=np.int64), order, axis=1)
    gx, gw = _gauss_legendre(nodes)
    piece = float(piece_tau) * min(p.tau_mem_us, p.tau_syn_us)
    dW, d_sorted = _layer_backward_sat_nb(
        np.ascontiguousarray(post, dtype=f64), np.ascontiguousarray(c, dtype=f64), np.ascontiguousarray(t_sorted),
        np.ascontiguousarray(src_sorted), np.ascontiguousarray(W, dtype=f64), float(p.tau_mem_us),
        float(p.tau_syn_us), float(p.threshold), float(p.delta), float(min_drive), float(isat_e), float(isat_i),
        gx, gw, piece)
    d_arr = np.empty_like(d_sorted)
    np.put_along_axis(d_arr, order, d_sorted, axis=1)
    return dW, d_arr


def eventprop_gradients(input_times, layer_spikes: Sequence, weights: Sequence[np.ndarray], params, delays_us,
                        dL_dt, min_drive: float = 1e-2, feedback: Sequence | None = None,
                        saturation=None) -> list[np.ndarray]:
    """Exact gradients dL/dW of a spike-time loss by the adjoint (EventProp) method.

    ``input_times``: network inputs (formats as in ``simulate_network``). ``layer_spikes``: per layer the
    observed spikes of that layer (list per sample of list per neuron, or padded arrays), e.g. the output
    of ``simulate_network`` or spike times read back from the chip. ``weights``/``params``/``delays_us``
    as in ``simulate_network``. ``dL_dt``: derivative of the loss w.r.t. the output layer's spike times,
    either (batch, n_out) for the *first* spike of each output neuron (what ``first_spike_loss`` returns;
    entries of silent neurons are ignored) or a (batch, n_out, K) array aligned with the padded output
    spikes (``to_padded``) for a loss on every output spike.

    Returns one array per layer shaped like its weights, *summed* over the batch (pass dL/dt of the
    batch-mean loss to get the gradient of the mean). ``min_drive`` clips I(t_k) - theta >= min_drive *
    theta in the spike jump (inactive for consistent, non-grazing spikes; see module docstring).
    ``feedback``: optional per layer a matrix shaped like its weights (or None) that replaces ``W`` where
    the adjoint crosses the layer downwards to the presynaptic spike times (the error feedback path);
    the weight gradients of a layer still use its own ``W`` for the currents at its spikes.
    ``saturation``: None (the linear model), or a pair (I_sat_exc, I_sat_inh) for every layer, or one
    pair or None per layer: the layer's membrane sees g(x) = I_sat tanh(x / I_sat) of each line's
    input, positive weights on the excitatory line, negative ones on the inhibitory (``inf``: that
    line is linear); see "Saturating synaptic inputs" in the module docstring. Not combined with
    ``feedback``.
    """
    n_layers = len(weights)
    if len(layer_spikes) != n_layers:
        raise ValueError(f"{len(layer_spikes)} spike layers for {n_layers} weight matrices")
    params_l = _per_layer(params, n_layers, "params")
    delays_l = _per_layer(delays_us, n_layers, "delays_us")
    weights = [np.asarray(W, dtype=np.float64) for W in weights]
    spikes = [to_padded(input_times, n=weights[0].shape[0])]
    spikes += [to_padded(s, n=W.shape[1]) for s, W in zip(layer_spikes, weights)]
    bsz = spikes[0].shape[0]

    out = spikes[-1]
    g = np.asarray(dL_dt, dtype=np.float64)
    c = np.zeros_like(out)
    if g.ndim == 2:
        if g.shape != out.shape[:2]:
            raise ValueError(f"dL_dt has shape {g.shape}, expected (batch, n_out) = {out.shape[:2]}")
        c[:, :, 0] = np.where(np.isfinite(out[:, :, 0]), g, 0.0)
    elif g.ndim == 3:
        if g.shape[:2] != out.shape[:2] or g.shape[2] > out.shape[2]:
            raise ValueError(f"dL_dt has shape {g.shape}, not aligned with output spikes {out.shape}")
        c[:, :, : g.shape[2]] = np.where(np.isfinite(out[:, :, : g.shape[2]]), g, 0.0)
    else:
        raise ValueError(f"dL_dt must be (batch, n_out) or (batch, n_out, K), got shape {g.shape}")

    if saturation is None or (len(saturation) == 2 and not isinstance(saturation[0], (list, tuple, type(None)))):
        sat_l = [saturation] * n_layers
    else:
        sat_l = _per_layer(list(saturation), n_layers, "saturation")
    sat_l = [None if s is None else (float(s[0]), float(s[1])) for s in sat_l]
    for s in sat_l:
        if s is not None and not (s[0] > 0 and s[1] > 0):
            raise ValueError(f"saturation: I_sat must be > 0 (inf: linear), got {s}")
    if feedback is not None and any(s is not None for s in sat_l):
        raise ValueError("feedback matrices are not defined for the saturating model")

    grads: list[np.ndarray] = [None] * n_layers  # type: ignore[list-item]
    for layer in range(n_layers - 1, -1, -1):
        pre = spikes[layer]
        if pre.shape[1] != weights[layer].shape[0] or spikes[layer + 1].shape[1] != weights[layer].shape[1]:
            raise ValueError(f"layer {layer}: spikes {pre.shape[1]}->{spikes[layer + 1].shape[1]} "
                             f"do not match weights {weights[layer].shape}")
        arr_t, arr_src = _arrivals(pre, delays_l[layer])
        back = None if feedback is None or feedback[layer] is None else np.asarray(feedback[layer], dtype=np.float64)
        if back is not None and back.shape != weights[layer].shape:
            raise ValueError(f"layer {layer}: feedback {back.shape} does not match weights {weights[layer].shape}")
        if sat_l[layer] is None:
            dW, d_arr = _layer_backward(spikes[layer + 1], c, arr_t, arr_src, weights[layer], params_l[layer],
                                        min_drive, W_back=back)
        else:
            dW, d_arr = _layer_backward_sat(spikes[layer + 1], c, arr_t, arr_src, weights[layer], params_l[layer],
                                            min_drive, *sat_l[layer])
        grads[layer] = dW
        # a spike's time enters the next layer only through its arrival time (constant delay)
        c = d_arr.reshape(bsz, pre.shape[1], pre.shape[2])
    return grads
