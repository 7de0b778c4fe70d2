"""EventProp's saturating-input model (``eventprop_gradients(..., saturation=...)``) against an
independent fine-grid forward simulation of that model and central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from rules.eventprop import adjoint as em
from rules.eventprop.adjoint import LIFParams, eventprop_gradients, first_spike_loss, first_spike_times

P = LIFParams(tau_mem_us=12.0, tau_syn_us=6.0, threshold=1.0)
T_MAX = 16.0
DELAY = 0.3
I_SAT = (3.0, 1.5)


def _g(x, isat):
    return x if np.isinf(isat) else isat * np.tanh(x / isat)


def _sim_layer(pre, W, p, isat, t_max=T_MAX, delay=DELAY, dt=0.01):
    """Saturating LIF layer, tm dV/dt = -V + g_e(I_e) - g_i(I_i), on a grid of steps <= dt that
    contains every arrival (the currents are exact, V by RK4); a crossing is located to ~1e-13 by
    bisecting the length of one RK4 step from the grid point before it; reset to 0.
    pre: (batch, n_pre, K) padded spike times. Returns (batch, n_post, K') padded."""
    tm, ts, th = p.tau_mem_us, p.tau_syn_us, p.threshold
    bsz, n_pre, k = pre.shape
    n = W.shape[1]
    out = [[[] for _ in range(n)] for _ in range(bsz)]
    for b in range(bsz):
        arr = pre[b].reshape(-1) + delay
        src = np.repeat(np.arange(n_pre), k)
        ok = arr < t_max
        arr, src = arr[ok], src[ok]
        pts = np.unique(np.concatenate([[0.0, t_max], arr]))
        ie = np.zeros(n)
        ii = np.zeros(n)
        v = np.zeros(n)

        def f(v, ie, ii):
            return (-v + _g(ie, isat[0]) - _g(ii, isat[1])) / tm

        def rk4(v, ie, ii, h):
            e = np.exp(-h / (2 * ts))
            k1 = f(v, ie, ii)
            k2 = f(v + 0.5 * h * k1, ie * e, ii * e)
            k3 = f(v + 0.5 * h * k2, ie * e, ii * e)
            k4 = f(v + h * k3, ie * e * e, ii * e * e)
            return v + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

        for t0, t1 in zip(pts[:-1], pts[1:]):
            at = arr == t0
            for s in np.flatnonzero(at):
                w = W[src[s]]
                ie += np.maximum(w, 0.0)
                ii += np.maximum(-w, 0.0)
            steps = max(1, int(np.ceil((t1 - t0) / dt)))
            h = (t1 - t0) / steps
            t = t0
            for _ in range(steps):
                vn = rk4(v, ie, ii, h)
                for j in np.flatnonzero(vn >= th):
                    lo, hi = 0.0, h  # v(t + lo) < th <= v(t + hi)
                    for _ in range(100):
                        mid = 0.5 * (lo + hi)
                        if rk4(v[j:j + 1], ie[j:j + 1], ii[j:j + 1], mid)[0] >= th:
                            hi = mid
                        else:
                            lo = mid
                        if hi - lo < 1e-14:
                            break
                    out[b][j].append(t + hi)
                    e = np.exp(-hi / ts)
                    vn[j] = rk4(np.zeros(1), ie[j:j + 1] * e, ii[j:j + 1] * e, h - hi)[0]
                v = vn
                ie = ie * np.exp(-h / ts)
                ii = ii * np.exp(-h / ts)
                t += h
    return em.to_padded(out, n=n)


def _sim_network(x, weights, isat, dt=0.02):
    spikes = [em.to_padded(x)]
    for W in weights:
        spikes.append(_sim_layer(spikes[-1], W, P, isat, dt=dt))
    return spikes[1:]


def _loss(x, weights, labels, isat):
    out = _sim_network(x, weights, isat)[-1]
    return first_spike_loss(first_spike_times(out), labels, 1.0, 8.0, 3e-3, T_MAX)[0]


def _problem():
    """4-6-2, 3 samples; with I_SAT the summed line inputs reach 2-4 I_sat (exc) and 1-3.5 I_sat
    (inh) in both layers; 5 of 6 output spikes and half the hidden neurons fire."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 4.0, size=(3, 4))
    W1 = rng.normal(1.8, 2.5, size=(4, 6))
    W2 = rng.normal(2.5, 3.0, size=(6, 2))
    labels = np.array([0, 1, 0])
    return x, [W1, W2], labels


def test_oracle_without_saturation_is_the_exact_forward():
    x, weights, _ = _problem()
    ours = _sim_network(x, weights, (np.inf, np.inf))
    exact = em.simulate_network(x, weights, P, T_MAX, DELAY, as_arrays=True)
    for a, b in zip(ours, exact):
        assert a.shape == b.shape
        assert np.allclose(np.where(np.isfinite(a), a, -1), np.where(np.isfinite(b), b, -1), atol=1e-9)


def _gradients(x, weights, labels, isat, **kw):
    spikes = _sim_network(x, weights, isat)
    _, dl_dt = first_spike_loss(first_spike_times(spikes[-1]), labels, 1.0, 8.0, 3e-3, T_MAX)
    return spikes, eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt, min_drive=1e-6, saturation=isat, **kw)


def test_saturating_gradient_matches_finite_differences():
    isat = I_SAT
    x, weights, labels = _problem()
    spikes, grads = _gradients(x, weights, labels, isat)
    # the test is about saturation: the lines must actually be driven deep into it, and the
    # linear model's gradient must be far from the truth here
    assert np.isfinite(spikes[-1][:, :, 0]).sum() == 5 and np.isfinite(spikes[0][:, :, 0]).sum() == 9
    lin = eventprop_gradients(x, spikes, weights, P, DELAY,
                              first_spike_loss(first_spike_times(spikes[-1]), labels, 1.0, 8.0, 3e-3, T_MAX)[1],
                              min_drive=1e-6)
    eps = 1e-5
    checked = 0
    # the four largest gradients of each layer, on both lines (the problem has weights of both signs)
    picks = [(layer, np.unravel_index(q, grads[layer].shape)) for layer in (0, 1)
             for q in np.argsort(-np.abs(grads[layer]), axis=None)[:4]]
    assert {np.sign(weights[layer][ij]) for layer, ij in picks} == {-1.0, 1.0}
    for layer, (i, j) in picks:
        def loss_at(delta):
            ws = [w.copy() for w in weights]
            ws[layer][i, j] += delta
            return _loss(x, ws, labels, isat)
        fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
        g = grads[layer][i, j]  # dL/dt of the batch-mean loss: the gradient of the mean loss
        assert g == pytest.approx(fd, rel=2e-4, abs=1e-7), (layer, i, j, g, fd, lin[layer][i, j])
        checked += abs(fd) > 1e-4
    assert checked == 8
    rel = [np.abs(g - l).max() / np.abs(g).max() for g, l in zip(grads, lin)]
    assert min(rel) > 0.2, rel


def test_large_i_sat_reproduces_the_linear_gradient():
    x, weights, labels = _problem()
    spikes = em.simulate_network(x, weights, P, T_MAX, DELAY, as_arrays=True)
    _, dl_dt = first_spike_loss(first_spike_times(spikes[-1]), labels, 1.0, 8.0, 3e-3, T_MAX)
    lin = eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt)
    for isat in [(np.inf, np.inf), (1e8, 1e8)]:
        sat = eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt, saturation=isat)
        for a, b in zip(lin, sat):
            assert np.allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(a).max())


def test_quadrature_converged():
    """GL_NODES / GL_PIECE_TAU against 16 nodes on pieces half as long, deep in saturation."""
    x, weights, labels = _problem()
    isat = I_SAT
    spikes = em.simulate_network(x, weights, P, T_MAX, DELAY, as_arrays=True)
    _, dl_dt = first_spike_loss(first_spike_times(spikes[-1]), labels, 1.0, 8.0, 3e-3, T_MAX)
    ref = eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt, saturation=isat)
    old = em.GL_NODES, em.GL_PIECE_TAU
    try:
        em.GL_NODES, em.GL_PIECE_TAU = 16, old[1] / 2
        fine = eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt, saturation=isat)
    finally:
        em.GL_NODES, em.GL_PIECE_TAU = old
    for a, b in zip(ref, fine):
        assert np.abs(a - b).max() <= 1e-9 * np.abs(b).max()


def test_saturation_argument_is_checked():
    x, weights, labels = _problem()
    spikes = em.simulate_network(x, weights, P, T_MAX, DELAY, as_arrays=True)
    _, dl_dt = first_spike_loss(first_spike_times(spikes[-1]), labels, 1.0, 8.0, 3e-3, T_MAX)
    with pytest.raises(ValueError, match="I_sat"):
        eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt, saturation=(0.0, 1.0))
    with pytest.raises(ValueError, match="feedback"):
        eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt, saturation=I_SAT, feedback=[None, weights[1]])
    # one pair per layer, None = linear for that layer
    mixed = eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt, saturation=[None, I_SAT])
    lin = eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt)
    sat = eventprop_gradients(x, spikes, weights, P, DELAY, dl_dt, saturation=I_SAT)
    assert np.array_equal(mixed[1], sat[1])
