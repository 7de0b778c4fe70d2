"""EventProp numerics: exact forward simulation, first-spike loss and adjoint gradients."""

import time

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

from rules.eventprop import adjoint as em
from rules.eventprop.adjoint import (
    LIFParams,
    eventprop_gradients,
    first_spike_loss,
    first_spike_times,
    kappa,
    membrane_trace,
    simulate_layer,
    simulate_network,
    to_lists,
    to_padded,
)
from rules.tasks.yinyang import latency_encode, yinyang

P = LIFParams(tau_mem_us=12.0, tau_syn_us=6.0, threshold=1.0)
P_EQ = LIFParams(tau_mem_us=8.0, tau_syn_us=8.0, threshold=1.0)


def psp(s, w, p):
    """Independent closed form of one PSP (tau_mem != tau_syn or the limit case)."""
    s = np.asarray(s, dtype=float)
    tm, ts = p.tau_mem_us, p.tau_syn_us
    if tm == ts:
        v = w * s / tm * np.exp(-s / tm)
    else:
        v = w * ts / (ts - tm) * (np.exp(-s / ts) - np.exp(-s / tm))
    return np.where(s > 0, v, 0.0)


# ------------------------------------------------------------------------------------------ kernel


def test_kappa_forms_agree():
    s = np.linspace(0, 60, 301)
    np.testing.assert_allclose(kappa(s, P), psp(s, 1.0, P), rtol=0, atol=1e-15)
    np.testing.assert_allclose(kappa(s, P_EQ), psp(s, 1.0, P_EQ), rtol=0, atol=1e-15)
    # continuity across the limit tau_mem -> tau_syn (both branches of kappa)
    for eps in (1e-2, 1e-4, 1e-7, 1e-12):
        near = LIFParams(8.0 * (1 + eps), 8.0)
        np.testing.assert_allclose(kappa(s, near), kappa(s, P_EQ), rtol=0, atol=10 * eps)
    assert kappa(np.inf, P) == 0.0 and kappa(np.inf, P_EQ) == 0.0


# ------------------------------------------------------------------------------------------ forward


@pytest.mark.parametrize("p", [P, P_EQ], ids=["tm!=ts", "tm==ts"])
def test_subthreshold_psp(p):
    w, t_in = 0.8, 3.0  # peak of the PSP is below 1
    out = simulate_layer([np.array([t_in])], np.array([[w]]), p, 60.0)
    assert out[0].size == 0
    t = np.linspace(0, 60, 121)
    v = membrane_trace(t, [np.array([t_in])], np.array([[w]]), p, out)[:, 0]
    np.testing.assert_allclose(v, psp(t - t_in, w, p), rtol=0, atol=1e-14)
    # and against numerical integration of the ODEs
    sol = solve_ivp(lambda t_, y: [(-y[0] + y[1]) / p.tau_mem_us, -y[1] / p.tau_syn_us], (t_in, 60.0), [0.0, w],
                    t_eval=t[t >= t_in], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(sol.y[0], psp(sol.t - t_in, w, p), rtol=0, atol=1e-9)


@pytest.mark.parametrize("p", [P, P_EQ], ids=["tm!=ts", "tm==ts"])
@pytest.mark.parametrize("delay", [0.0, 0.7])
def test_spike_time_is_root_of_closed_form(p, delay):
    w, t_in = 6.0, 2.0
    out = simulate_layer([np.array([t_in])], np.array([[w]]), p, 40.0, delay_us=delay)[0]
    assert out.size >= 1
    s_peak = np.argmax(psp(np.linspace(0, 40, 40001), w, p)) * 1e-3
    root = brentq(lambda s: psp(s, w, p) - p.threshold, 1e-12, s_peak, xtol=1e-14, rtol=1e-15)
    assert abs(out[0] - (t_in + delay + root)) < 1e-9


def _ode_reference(in_times, W, p, t_max):
    """Spike times by numerical integration (solve_ivp with events), independent of the closed forms."""
    arrivals = sorted((t, i) for i, ts in enumerate(in_times) for t in ts)
    n = W.shape[1]
    out = [[] for _ in range(n)]
    for j in range(n):
        V, I, t0 = 0.0, 0.0, 0.0
        edges = [a for a, _ in arrivals] + [t_max]
        srcs = [i for _, i in arrivals] + [None]
        for t1, src in zip(edges, srcs):
            while t1 > t0:
                ev = lambda t, y: y[0] - p.threshold  # noqa: E731
                ev.terminal, ev.direction = True, 1
                sol = solve_ivp(lambda t, y: [(-y[0] + y[1]) / p.tau_mem_us, -y[1] / p.tau_syn_us], (t0, t1), [V, I],
                                events=ev, rtol=1e-12, atol=1e-13, method="DOP853")
                if sol.t_events[0].size:
                    ts = sol.t_events[0][0]
                    out[j].append(ts)
                    V, I, t0 = 0.0, sol.y_events[0][0][1], ts
                else:
                    V, I, t0 = sol.y[0][-1], sol.y[1][-1], t1
            if src is not None:
                I += W[src, j]
    return [np.array(o) for o in out]


def test_forward_matches_ode_integration_with_several_spikes():
    rng = np.random.default_rng(3)
    in_times = [np.sort(rng.uniform(0, 20, size=k)) for k in (1, 2, 3)]
    W = np.array([[4.0, 1.0], [3.0, 2.5], [-1.0, 3.0]])
    out = simulate_layer(in_times, W, P, 40.0)
    ref = _ode_reference(in_times, W, P, 40.0)
    assert sum(len(o) for o in out) >= 4 and max(len(o) for o in out) >= 2
    for o, r in zip(out, ref):
        assert len(o) == len(r)
        np.testing.assert_allclose(o, r, rtol=0, atol=1e-7)
    # V is exactly at threshold at every spike and below it elsewhere
    t = np.linspace(0, 40, 4001)
    v = membrane_trace(t, in_times, W, P, out)
    assert v.max() <= P.threshold + 1e-12
    for j, o in enumerate(out):
        v_before = membrane_trace(o - 1e-9, in_times, W, P, out)[:, j]
        np.testing.assert_allclose(v_before, P.threshold, atol=1e-8)


def test_batched_forward_equals_per_sample():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 15, size=(5, 6))
    x[1, 2] = np.inf  # a silent input
    Ws = [rng.normal(1.0, 1.0, size=(6, 7)), rng.normal(1.0, 1.0, size=(7, 2))]
    batch = simulate_network(x, Ws, P, 40.0, [0.2, 0.5])
    for b in range(5):
        h = simulate_layer([x[b, i:i + 1][np.isfinite(x[b, i:i + 1])] for i in range(6)], Ws[0], P, 40.0, 0.2)
        o = simulate_layer(h, Ws[1], P, 40.0, 0.5)
        for got, exp in zip(batch[0][b] + batch[1][b], h + o):
            np.testing.assert_array_equal(got, exp)
    padded = simulate_network(x, Ws, P, 40.0, [0.2, 0.5], as_arrays=True)
    for lay, pad in zip(batch, padded):
        assert [[list(a) for a in s] for s in to_lists(pad)] == [[list(a) for a in s] for s in lay]


def test_padding_helpers():
    lists = [[np.array([3.0, 1.0]), np.array([])], [np.array([2.0]), 5.0]]
    pad = to_padded(lists)
    assert pad.shape == (2, 2, 2)
    np.testing.assert_array_equal(pad[0, 0], [1.0, 3.0])
    assert np.all(np.isinf(pad[0, 1]))
    np.testing.assert_array_equal(first_spike_times(lists), [[1.0, np.inf], [2.0, 5.0]])
    assert to_padded(np.array([[1.0, np.inf]])).shape == (1, 2, 1)


def test_padded_from_events_equals_padded_trains():
    """The loop-free conversion of flat events gives exactly the padded array of the listed trains."""
    from chip.events import SpikeEvents

    rng = np.random.default_rng(3)
    for bsz, n, n_ev in ((1, 1, 0), (3, 4, 1), (8, 25, 300), (64, 100, 6000)):
        # clock-like times (ties within a neuron included), unsorted events
        ev = SpikeEvents.from_arrays(rng.integers(0, bsz, n_ev), rng.integers(0, n, n_ev),
                                     np.round(rng.uniform(0, 50, n_ev), 1), n, bsz)
        old = to_padded([ev.trains(b) for b in range(bsz)], n=n)
        new = em.padded_from_events(ev.batch, ev.neuron, ev.time_us, bsz, n)
        np.testing.assert_array_equal(new, old)
        if n_ev == 0:
            assert new.shape == (bsz, n, 1)


@pytest.mark.parametrize("p", [P, P_EQ], ids=["tm!=ts", "tm==ts"])
def test_compiled_layer_backward_equals_numpy_reference(p):
    """The compiled adjoint of a layer computes what the array version computes, on random
    (model-inconsistent, several-spike, partly padded) trains, silent arrivals included."""
    rng = np.random.default_rng(5)
    bsz, n_pre, n, k_pre, k = 6, 7, 5, 3, 4
    pre = np.sort(np.where(rng.random((bsz, n_pre, k_pre)) < 0.7, rng.uniform(0, 30, (bsz, n_pre, k_pre)), np.inf), 2)
    post = np.sort(np.where(rng.random((bsz, n, k)) < 0.6, rng.uniform(0, 40, (bsz, n, k)), np.inf), 2)
    c = np.where(np.isfinite(post), rng.normal(size=post.shape), 0.0)
    W = rng.normal(0.4, 0.8, size=(n_pre, n))
    arr_t, arr_src = em._arrivals(pre, 0.3)
    for min_drive in (1e-2, 0.5):
        dW, d_arr = em._layer_backward(post, c, arr_t, arr_src, W, p, min_drive)
        dW_ref, d_arr_ref = em._layer_backward_numpy(post, c, arr_t, arr_src, W, p, min_drive)
        np.testing.assert_allclose(dW, dW_ref, rtol=1e-12, atol=1e-12 * np.abs(dW_ref).max())
        np.testing.assert_allclose(d_arr, d_arr_ref, rtol=1e-12, atol=1e-12 * np.abs(d_arr_ref).max())
        assert np.abs(dW_ref).max() > 0


# ------------------------------------------------------------------------------------------ loss


def _assert_loss_gradient_matches_fd(grad, t, labels, kw, entries):
    """first_spike_loss's gradient at each (sample, neuron) of ``entries`` against central differences."""
    e = 1e-6
    for b, k in entries:
        tp, tm_ = t.copy(), t.copy()
        tp[b, k] += e
        tm_[b, k] -= e
        fd = (first_spike_loss(tp, labels, **kw)[0] - first_spike_loss(tm_, labels, **kw)[0]) / (2 * e)
        assert grad[b, k] == pytest.approx(fd, rel=1e-6, abs=1e-10)


def test_first_spike_loss_value_and_gradient():
    t = np.array([[3.0, 5.0, np.inf], [7.0, 2.0, 4.0]])
    labels = np.array([0, 2])
    kw = dict(tau0_us=3.0, tau1_us=20.0, alpha=0.01, t_max_us=30.0)
    loss, grad = first_spike_loss(t, labels, **kw)
    te = np.where(np.isfinite(t), t, 30.0)
    ref = 0.0
    for b in range(2):
        z = -te[b] / 3.0
        ref += -(z[labels[b]] - np.log(np.exp(z).sum())) + 0.01 * (np.exp(te[b, labels[b]] / 20.0) - 1)
    assert loss == pytest.approx(ref / 2, rel=1e-12)
    assert grad[0, 2] == 0.0  # silent neuron: no spike to move
    _assert_loss_gradient_matches_fd(grad, t, labels, kw, [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)])
    # the penalty pushes the correct neuron earlier
    assert grad[1, 2] > 0


def _first_spike_loss_before_margin(t, labels, tau0_us, tau1_us, alpha, t_max_us):
    """The loss as it was before the margin option, line for line: the margin's 0 must give it bit for bit."""
    t = np.asarray(t, dtype=np.float64)
    bsz = t.shape[0]
    silent = ~np.isfinite(t)
    te = np.where(silent, float(t_max_us), t)
    z = -te / tau0_us
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(bsz)
    t_lab = te[rows, labels]
    per = -logp[rows, labels] + alpha * np.expm1(t_lab / tau1_us)
    prob = np.exp(logp)
    onehot = np.zeros_like(prob)
    onehot[rows, labels] = 1.0
    grad = (onehot - prob) / tau0_us
    grad[rows, labels] += alpha / tau1_us * np.exp(t_lab / tau1_us)
    return float(per.mean()), np.where(silent, 0.0, grad / bsz)


def test_first_spike_loss_margin_zero_is_the_plain_loss_bit_for_bit():
    rng = np.random.default_rng(3)
    t = rng.uniform(0.0, 24.0, (64, 3))
    t[rng.random((64, 3)) < 0.1] = np.inf
    labels = rng.integers(0, 3, 64)
    kw = dict(tau0_us=0.3, tau1_us=8.0, alpha=0.003, t_max_us=24.0)
    ref_loss, ref_grad = _first_spike_loss_before_margin(t, labels, **kw)
    for loss, grad in (first_spike_loss(t, labels, **kw), first_spike_loss(t, labels, **kw, margin_us=0.0)):
        assert loss == ref_loss
        assert np.array_equal(grad, ref_grad)


def test_first_spike_loss_margin_value_and_gradient():
    t = np.array([[3.0, 3.2, np.inf], [7.0, 2.0, 4.0], [5.0, 9.0, 8.0]])
    labels = np.array([0, 2, 0])
    kw = dict(tau0_us=0.5, tau1_us=20.0, alpha=0.01, t_max_us=30.0, margin_us=0.4)
    loss, grad = first_spike_loss(t, labels, **kw)
    te = np.where(np.isfinite(t), t, 30.0)
    ref = 0.0
    for b in range(3):
        z = -te[b] / 0.5
        z[labels[b]] -= 0.4 / 0.5  # the correct neuron's time enters the softmax 0.4 µs later
        ref += -(z[labels[b]] - np.log(np.exp(z).sum())) + 0.01 * (np.exp(te[b, labels[b]] / 20.0) - 1)
    assert loss == pytest.approx(ref / 3, rel=1e-12)
    assert grad[0, 2] == 0.0  # silent neuron: no spike to move
    _assert_loss_gradient_matches_fd(grad, t, labels, kw,
                                     [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)])
    # sample 0 is right by 0.2 µs, less than the margin: the margin pushes harder on that near-tie
    # than the plain loss does, and it still loses to a sample that leads by 3 µs
    plain = first_spike_loss(t, labels, **{**kw, "margin_us": 0.0})[1]
    assert grad[0, 0] > plain[0, 0] > 0 and grad[0, 1] < plain[0, 1] < 0
    assert grad[0, 0] > 10 * grad[2, 0]


# ------------------------------------------------------------------------------------------ gradients

T_MAX = 40.0
LOSS = dict(tau0_us=3.0, tau1_us=20.0, alpha=0.01, t_max_us=T_MAX)


def _loss(x, labels, Ws, p, delay):
    spikes = simulate_network(x, Ws, p, T_MAX, delay, as_arrays=True)
    loss, dldt = first_spike_loss(first_spike_times(spikes[-1]), labels, **LOSS)
    return loss, dldt, spikes


def _counts(spikes):
    return [np.isfinite(s).sum(axis=2) for s in spikes]


def _find_network(p, delay, seed0):
    """A tiny 4-5-3 network where every neuron of every sample spikes, none grazing the threshold."""
    # weights in units of the inverse PSP peak (0.25 for tau_mem = 2 tau_syn) -> 1-3 spikes per neuron
    scale = 0.25 / kappa(np.linspace(0, 50, 5001), p).max()
    for seed in range(seed0, seed0 + 200):
        rng = np.random.default_rng(seed)
        x = rng.uniform(0.5, 10.0, size=(4, 4))
        Ws = [scale * rng.normal(1.5, 1.0, size=(4, 5)), scale * rng.normal(0.8, 0.8, size=(5, 3))]
        spikes = simulate_network(x, Ws, p, T_MAX, delay, as_arrays=True)
        if any((c == 0).any() for c in _counts(spikes)):
            continue
        if max(np.nanmax(np.where(np.isfinite(s), s, np.nan)) for s in spikes) > T_MAX - 3:
            continue
        # the drive I - theta at each spike sets 1/dV/dt: keep away from grazing crossings
        pre = [to_padded(x)] + spikes[:-1]
        ok = True
        for layer, W in enumerate(Ws):
            arr_t, src = em._arrivals(pre[layer], delay)
            arr_w = np.where(np.isfinite(arr_t)[:, :, None], W[src], 0.0)
            cur = em._synaptic_current_before(spikes[layer], arr_t, arr_w, p)
            if np.any(cur[np.isfinite(spikes[layer])] - p.threshold < 0.2):
                ok = False
        if ok and max(c.max() for c in _counts(spikes)) >= 2:
            return x, rng.integers(0, 3, size=4), Ws
    raise AssertionError("no suitable test network found")


@pytest.mark.parametrize("p", [P, P_EQ], ids=["tm!=ts", "tm==ts"])
@pytest.mark.parametrize("delay", [0.0, 0.1])
def test_gradients_match_finite_differences(p, delay):
    x, labels, Ws = _find_network(p, delay, seed0=10)
    loss, dldt, spikes = _loss(x, labels, Ws, p, delay)
    grads = eventprop_gradients(x, spikes, Ws, p, delay, dldt)
    counts = _counts(spikes)
    eps = 1e-6
    checked = 0
    for layer, W in enumerate(Ws):
        assert grads[layer].shape == W.shape
        for idx in np.ndindex(W.shape):
            res = []
            for sign in (1, -1):
                Wq = [w.copy() for w in Ws]
                Wq[layer][idx] += sign * eps
                lq, _, sq = _loss(x, labels, Wq, p, delay)
                res.append((lq, all(np.array_equal(a, b) for a, b in zip(_counts(sq), counts))))
            if not (res[0][1] and res[1][1]):
                continue  # a spike appeared or vanished: the loss is not differentiable here
            fd = (res[0][0] - res[1][0]) / (2 * eps)
            assert abs(grads[layer][idx] - fd) <= 1e-4 * abs(fd) + 1e-7, (layer, idx, grads[layer][idx], fd)
            checked += 1
        assert np.abs(grads[layer]).max() > 1e-3  # the check is not vacuous
    assert checked >= 0.9 * sum(W.size for W in Ws)


def test_gradient_of_a_loss_on_every_output_spike():
    # L = sum of all output spike times (dL/dt = 1 on every spike) through a hidden layer
    x, _, Ws = _find_network(P, 0.3, seed0=50)
    spikes = simulate_network(x, Ws, P, T_MAX, 0.3, as_arrays=True)
    out = spikes[-1]
    dldt = np.where(np.isfinite(out), 1.0, 0.0)
    grads = eventprop_gradients(x, spikes, Ws, P, 0.3, dldt)

    def total(Wq):
        s = simulate_network(x, Wq, P, T_MAX, 0.3, as_arrays=True)
        return np.where(np.isfinite(s[-1]), s[-1], 0.0).sum(), _counts(s)

    eps = 1e-6
    for layer, W in enumerate(Ws):
        for idx in list(np.ndindex(W.shape))[::2]:
            Wp = [w.copy() for w in Ws]
            Wm = [w.copy() for w in Ws]
            Wp[layer][idx] += eps
            Wm[layer][idx] -= eps
            (lp, cp), (lm, cm) = total(Wp), total(Wm)
            if not all(np.array_equal(a, b) for a, b in zip(cp + cm, _counts(spikes) * 2)):
                continue
            fd = (lp - lm) / (2 * eps)
            assert abs(grads[layer][idx] - fd) <= 1e-4 * abs(fd) + 1e-7


def test_gradients_accept_lists_and_are_summed_over_the_batch():
    x, labels, Ws = _find_network(P, 0.1, seed0=10)
    _, dldt, spikes = _loss(x, labels, Ws, P, 0.1)
    g_pad = eventprop_gradients(x, spikes, Ws, P, 0.1, dldt)
    g_list = eventprop_gradients([[np.array([v]) for v in row] for row in x], [to_lists(s) for s in spikes],
                                 Ws, P, [0.1, 0.1], dldt)
    for a, b in zip(g_pad, g_list):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # summed over samples: the gradient of the batch equals the sum of single-sample gradients
    total = [np.zeros_like(W) for W in Ws]
    for b in range(len(x)):
        g = eventprop_gradients(x[b:b + 1], [s[b:b + 1] for s in spikes], Ws, P, 0.1, dldt[b:b + 1])
        total = [t + gi for t, gi in zip(total, g)]
    for a, b in zip(g_pad, total):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_feedback_matrices_replace_w_only_on_the_way_down():
    """``feedback``: W itself gives the exact gradient; another matrix changes only the layers below
    the one it stands in for, linearly (−W flips the layer below, not the top one)."""
    x, labels, Ws = _find_network(P, 0.1, seed0=10)
    _, dldt, spikes = _loss(x, labels, Ws, P, 0.1)
    exact = eventprop_gradients(x, spikes, Ws, P, 0.1, dldt)
    same = eventprop_gradients(x, spikes, Ws, P, 0.1, dldt, feedback=[None] + [W.copy() for W in Ws[1:]])
    for a, b in zip(exact, same):
        np.testing.assert_array_equal(a, b)
    flipped = eventprop_gradients(x, spikes, Ws, P, 0.1, dldt, feedback=[None] + [-W for W in Ws[1:]])
    np.testing.assert_array_equal(flipped[-1], exact[-1])
    assert np.abs(exact[0]).max() > 1e-3
    np.testing.assert_allclose(flipped[0], -exact[0], rtol=1e-12, atol=1e-15)
    zero = eventprop_gradients(x, spikes, Ws, P, 0.1, dldt, feedback=[None] + [np.zeros_like(W) for W in Ws[1:]])
    assert np.all(zero[0] == 0.0)
    with pytest.raises(ValueError, match="feedback"):
        eventprop_gradients(x, spikes, Ws, P, 0.1, dldt, feedback=[None] + [W.T for W in Ws[1:]])


def test_silent_output_gets_no_gradient_and_shapes_are_checked():
    x = np.array([[1.0, 2.0]])
    Ws = [np.array([[0.1], [0.1]])]  # far below threshold: silent
    spikes = simulate_network(x, Ws, P, T_MAX, 0.0, as_arrays=True)
    loss, dldt = first_spike_loss(first_spike_times(spikes[-1]), np.array([0]), **LOSS)
    assert np.all(dldt == 0.0)
    assert np.all(eventprop_gradients(x, spikes, Ws, P, 0.0, dldt)[0] == 0.0)
    with pytest.raises(ValueError):
        eventprop_gradients(x, spikes, Ws, P, 0.0, np.zeros((1, 2)))


# ------------------------------------------------------------------------------------------ learning


def test_learning_yinyang_subset():
    """Plain SGD with EventProp gradients on 200 Yin-Yang samples beats chance clearly (how fast:
    ``test_speed_batch64_25_100_3``, marked benchmark)."""
    feats, labels = yinyang("train", size=200)
    x = latency_encode(feats, t_early_us=0.5, t_late_us=20.0, duplicate=2, bias_time_us=0.5)
    p, t_max, delay = P, 40.0, 0.1
    rng = np.random.default_rng(1)
    Ws = [rng.normal(0.8, 0.6, size=(x.shape[1], 20)), rng.normal(0.4, 0.5, size=(20, 3))]
    loss_kw = dict(tau0_us=3.0, tau1_us=8.0, alpha=0.05, t_max_us=t_max)

    def accuracy():
        first = first_spike_times(simulate_network(x, Ws, p, t_max, delay, as_arrays=True)[-1])
        pred = np.where(np.isfinite(first).any(axis=1), np.argmin(first, axis=1), -1)
        return float(np.mean(pred == labels))

    acc0 = accuracy()
    for _ in range(150):
        idx = rng.choice(len(x), 50, replace=False)
        spikes = simulate_network(x[idx], Ws, p, t_max, delay, as_arrays=True)
        _, dldt = first_spike_loss(first_spike_times(spikes[-1]), labels[idx], **loss_kw)
        # a larger drive clip than the exact default keeps rare grazing spikes from dominating a step
        grads = eventprop_gradients(x[idx], spikes, Ws, p, delay, dldt, min_drive=0.2)
        for W, g in zip(Ws, grads):
            W -= 0.5 * g
    acc = accuracy()
    print(f"Yin-Yang subset: accuracy {acc0:.3f} -> {acc:.3f}")
    assert acc > 0.6 and acc > acc0 + 0.15


@pytest.mark.benchmark
def test_speed_batch64_25_100_3():
    """Forward + backward of a 25-100-3 network on 64 Yin-Yang samples (run with -m benchmark)."""
    feats, labels = yinyang("train", size=64)
    x = latency_encode(feats, t_early_us=0.5, t_late_us=20.0, duplicate=6, bias_time_us=0.5)
    rng = np.random.default_rng(0)
    Ws = [rng.normal(0.3, 0.4, size=(25, 100)), rng.normal(0.05, 0.3, size=(100, 3))]
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        spikes = simulate_network(x, Ws, P, 40.0, 0.1, as_arrays=True)
        _, dldt = first_spike_loss(first_spike_times(spikes[-1]), labels, **LOSS)
        eventprop_gradients(x, spikes, Ws, P, 0.1, dldt)
        best = min(best, time.perf_counter() - t0)
    print(f"batch 64, 25-100-3: {best * 1e3:.1f} ms forward+backward; "
          f"{np.isfinite(spikes[0]).sum(2).mean():.2f} spikes/hidden neuron")
    assert best < 0.5
