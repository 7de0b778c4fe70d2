"""Surrogate gradients in the loop: the host model's backward pass against central finite
differences (LIF and ALIF, recurrent, weights and time constants), the readout losses, the rule's
configure-time limits, loss terms of other plugins, and a short Yin-Yang training that must learn."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from chip.errors import RuleError
from chip.host import HostInterface
from chip.netlist import load_netlist, load_netlist_text
from rules import Batch, LossTerm, Rule, RuleContext, hookimpl
from rules.surrogate import Surrogate
from rules.surrogate import model as m
from rules.training import Trainer

# ------------------------------------------------------------------------- the host model


def _net(adapt: str, soft: bool, seed: int = 0):
    """in (4) -> hidden (5, recurrent, lag 2) -> readout (3), smooth spikes; 40 steps of 1 µs."""
    rng = np.random.default_rng(seed)
    n_in, n_h, n_o = 4, 5, 3
    hidden = m.Population("h", n_h, tau_mem=rng.uniform(8, 12, n_h), tau_syn=np.full(n_h, 5.0),
                          theta=np.ones(n_h), reset=np.zeros(n_h), tau_ref=np.zeros(n_h), soft_reset=soft,
                          adapt=adapt, tau_adapt=rng.uniform(30, 60, n_h), inc=np.full(n_h, 0.3),
                          coupling=np.full(n_h, 0.2))
    out = m.Population("o", n_o, tau_mem=rng.uniform(8, 12, n_o), tau_syn=np.full(n_o, 5.0), theta=np.full(n_o, 9.0),
                       reset=np.zeros(n_o), tau_ref=np.zeros(n_o), readout=True)
    projections = [m.Projection("in_h", "in", "h", rng.normal(1.0, 1.0, (n_in, n_h))),
                   m.Projection("h_h", "h", "h", rng.normal(0.0, 0.5, (n_h, n_h)), lag=2),
                   m.Projection("h_o", "h", "o", rng.normal(0.5, 1.0, (n_h, n_o)))]
    net = m.Network(1.0, {"h": hidden, "o": out}, projections, {"in": n_in})
    B, K = 3, 40
    arrivals = np.zeros((B, K + 1, n_in))
    arrivals[:, 1:11] = rng.random((B, 10, n_in)) < 0.3
    return net, {"in": arrivals}, K


def _loss(net, arrivals, K, grads=False):
    """A smooth loss of the readout's membrane and the hidden spike counts."""
    tape = m.simulate(net, arrivals, K, relax=0.2)
    u, counts = tape.u["o"], tape.s["h"].sum(axis=1)
    ramp = np.arange(K + 1)[None, :, None] / K
    loss = float(np.sum(np.sin(u) * ramp) + 0.1 * np.sum(counts ** 2))
    if not grads:
        return loss
    du = {"o": np.cos(u) * ramp}
    ds = {"h": np.broadcast_to(0.2 * counts[:, None, :], tape.s["h"].shape).copy()}
    return loss, m.backward(net, tape, du, ds)


def _perturbed(net, what, index, eps):
    other = copy.deepcopy(net)
    if what in ("tau_mem", "tau_adapt"):
        pop, i = index
        getattr(other.populations[pop], what)[i] += eps
    else:
        q = next(q for q in other.projections if q.name == what)
        q.w[index] += eps
    return other


@pytest.mark.parametrize("adapt,soft", [("none", False), ("none", True), ("threshold", False),
                                        ("threshold", True), ("current", False)])
def test_backward_equals_central_finite_differences(adapt, soft):
    """With the spike relaxed to a sigmoid, the gradients of every kind of parameter — input,
    recurrent and readout weights, τ_mem of the hidden and the readout population, τ_adapt — equal
    central finite differences to 1e-4 relative (LIF, adaptive threshold and adaptation current;
    hard and soft reset)."""
    net, arrivals, K = _net(adapt, soft)
    _, (dW, dp) = _loss(net, arrivals, K, grads=True)
    checks = [(q.name, idx, dW[q.name][idx], 1e-6) for q in net.projections for idx in [(0, 0), (1, 2), (2, 1)]]
    checks += [("tau_mem", (pop, i), dp[(pop, "tau_mem_us")][i], 1e-5) for pop in ("h", "o") for i in range(3)]
    if adapt != "none":
        checks += [("tau_adapt", ("h", i), dp[("h", "tau_adapt_us")][i], 1e-4) for i in range(3)]
    spikes = m.simulate(net, arrivals, K, relax=0.2).s["h"].sum()
    assert spikes > 10  # the hidden layer is active: the spike path is exercised
    for what, index, g, eps in checks:
        fd = (_loss(_perturbed(net, what, index, eps), arrivals, K)
              - _loss(_perturbed(net, what, index, -eps), arrivals, K)) / (2 * eps)
        assert abs(g - fd) <= 1e-4 * abs(fd) + 1e-9, (what, index, g, fd)


def test_the_heaviside_model_runs_as_the_relaxed_one_in_the_limit():
    """simulate without relaxation: 0/1 spikes at um >= ϑ; a hard reset puts u at the reset."""
    net, arrivals, K = _net("threshold", False)
    tape = m.simulate(net, arrivals, K)
    s = tape.s["h"]
    assert set(np.unique(s)) <= {0.0, 1.0} and s.sum() > 0
    assert np.all(tape.u["h"][s > 0] == 0.0)
    assert np.all((tape.um["h"] >= tape.theta_eff["h"])[:, 1:] == (s[:, 1:] > 0))


def test_surrogate_shapes():
    x = np.linspace(-3, 3, 601)
    fast = m.surrogate_derivative("fast_sigmoid", x, 10.0)
    assert fast[300] == 1.0 and fast[0] == pytest.approx(1 / 31 ** 2)
    mg = m.surrogate_derivative("multi_gaussian", x, 0.5)
    assert np.argmax(mg) == 300 and mg.min() < 0  # Yin et al.: negative side lobes
    wide = m.surrogate_derivative("multi_gaussian", np.linspace(-30, 30, 60001), 0.5)
    assert wide.sum() * 0.001 == pytest.approx(1 - 0.15, abs=1e-3)  # (1 + h) - h - h


# ------------------------------------------------------------------------- the rule on a chip

SMALL = """
name: surrogate_small
duration: 30 us
batch: 2
chip: {profile: PROFILE}
populations:
  hidden: {size: 6, params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 2}}
  out: {size: 2, params: {tau_mem: 10 us, tau_syn: 5 us, v_threshold: 2.5, weight_full_scale: 1}}
inputs:
  in: {size: 4, type: spikes, times: [[2 us, 6 us], [3 us], [4 us, 9 us], [5 us]]}
projections:
  in_hidden: {pre: in, post: hidden, weights: {uniform: {low: 0.5, high: 2}, seed: 1}}
  hidden_hidden: {pre: hidden, post: hidden, sign: signed, weights: {normal: {mean: 0, std: 0.3}, seed: 2}}
  hidden_out: {pre: hidden, post: out, sign: signed, weights: {normal: {mean: 0.2, std: 0.3}, seed: 3}}
train: {input: in, output: out, rules: [surrogate], decode: max_membrane}
"""


def _context(host, **options):
    defaults = {k: v[0] for k, v in Surrogate.options.items()}
    return RuleContext(host=host, options={**defaults, **options}, rng=np.random.default_rng(0), train={},
                       input="in", output="out")


def _configured(profile="ideal", **options):
    host = HostInterface(load_netlist_text(SMALL.replace("PROFILE", profile)))
    rule, ctx = Surrogate(), _context(host, **options)
    rule.chipctl_configure(context=ctx)
    return host, rule, ctx


def _run(host, rule, ctx):
    from rules.training.trainer import _merge_requests

    request = rule.chipctl_run_request(context=ctx, batch=None)
    record, _ = _merge_requests({"surrogate": request}, host.netlist.record, host, "out", "max_membrane")
    return host.run(record=record)


def test_the_rule_asks_for_every_trained_membrane_and_trains_every_projection_on_the_path():
    host, rule, ctx = _configured("bss2")
    request = rule.chipctl_run_request(context=ctx, batch=None)
    assert request.membrane == {"hidden": tuple(range(6)), "out": (0, 1)}
    assert request.membrane_period_us is None  # the ADC's minimum
    result = _run(host, rule, ctx)
    assert result.trace("hidden").time_us[0] >= 1.7
    batch = Batch(inputs={}, labels=np.array([0, 1]), indices=np.arange(2))
    grads = rule.chipctl_gradients(context=ctx, batch=batch, result=result, loss_terms=[])
    assert set(grads.weights) == {"in_hidden", "hidden_hidden", "hidden_out"}
    assert grads.weights["hidden_hidden"].shape == (6, 6) and np.abs(grads.weights["hidden_out"]).sum() > 0
    assert grads.params == {} and np.isfinite(grads.loss)


def test_a_sample_period_below_the_adc_fails_at_configure_time_naming_the_limit_and_the_excess():
    with pytest.raises(RuleError, match=r"sample_period: 1 us is below the CADC's minimum sample period 1.7 us "
                                        r"on profile bss2 \(by 0.7 us\)"):
        _configured("bss2", sample_period=1.0)
    host, rule, ctx = _configured("bss2", sample_period=3.4)
    assert abs(_run(host, rule, ctx).trace("out").time_us[0] - 3.4) <= 0.2 + 1e-9


@pytest.mark.parametrize("options,message", [
    ({"loss": "mse"}, "option loss must be one of max_ce, sum_softmax_ce"),
    ({"surrogate": "step"}, "option surrogate must be fast_sigmoid or multi_gaussian"),
    ({"learn": ["tau_syn"]}, "option learn: expected any of tau_mem, tau_adapt"),
    ({"learn": ["tau_adapt"]}, "tau_adapt needs an adaptive"),
    ({"readout": "nowhere"}, "option readout: expected a population"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(RuleError, match=message):
        _configured("ideal", **options)


def test_learned_time_constants_come_as_parameter_gradients():
    host, rule, ctx = _configured("bss2", learn=["tau_mem"])
    result = _run(host, rule, ctx)
    grads = rule.chipctl_gradients(context=ctx, batch=Batch(inputs={}, labels=np.array([1, 0]),
                                                            indices=np.arange(2)), result=result, loss_terms=[])
    assert set(grads.params) == {("hidden", "tau_mem_us")} and grads.params[("hidden", "tau_mem_us")].shape == (6,)


@pytest.mark.parametrize("loss", ["max_ce", "sum_softmax_ce"])
def test_readout_losses_match_finite_differences_of_the_samples(loss):
    from chip.readout import Trace

    host, rule, ctx = _configured("ideal", loss=loss, window=[3, 20])
    rng = np.random.default_rng(1)
    times = np.arange(1, 13) * 1.8
    values = rng.normal(0.3, 0.5, (4, 12, 2))
    labels = np.array([0, 1, 1, 0])
    vl = np.zeros(2)
    K = int(np.ceil(30 / rule.dt))

    def value(v):
        return rule.readout_loss(Trace("out", (0, 1), "cadc", times, v, None), labels, vl, K)[0]

    _, du, _ = rule.readout_loss(Trace("out", (0, 1), "cadc", times, values, None), labels, vl, K)
    kk = np.rint(times / rule.dt).astype(int)
    for b, j, n in [(0, 2, 0), (1, 5, 1), (3, 9, 0), (2, 0, 1)]:
        plus, minus = values.copy(), values.copy()
        plus[b, j, n] += 1e-6
        minus[b, j, n] -= 1e-6
        fd = (value(plus) - value(minus)) / 2e-6
        assert du[b, kk[j], n] == pytest.approx(fd, rel=1e-5, abs=1e-9)
    assert np.all(du[:, kk[0]] == 0)  # the first sample (1.8 us) is outside the window


class CountPenalty(Rule):
    """A regularizer of the kind the autoencoder issue adds: lam * mean hidden spike count, and a
    term on the hidden membrane samples; it imports nothing from the surrogate rule."""

    name = "count_penalty"
    options = {"lam": (1.0, "weight")}

    @hookimpl
    def chipctl_loss_terms(self, context, batch, result):
        counts = result.spikes["hidden"].counts()
        lam = context.options["lam"]
        trace = result.trace("hidden").values
        return [LossTerm("counts", float(lam * counts.mean()),
                         {("spike_counts", "hidden"): np.full(counts.shape, lam / counts.size)}),
                LossTerm("membrane", float(lam * trace.mean()),
                         {("membrane", "hidden"): np.full(trace.shape, lam / trace.size)}),
                LossTerm("latency", 0.0, {("first_spike_times", "out"): np.zeros((batch.size, 2))})]


def test_loss_terms_of_other_plugins_are_carried_back():
    """A spike-count and a membrane term on the hidden layer reach the input weights (more input,
    more spikes and membrane: the terms raise d loss / d w); first-spike terms cannot be carried and
    are reported. The contribution is linear: twice the weight, twice the change."""
    host, rule, ctx = _configured("ideal")
    result = _run(host, rule, ctx)
    batch = Batch(inputs={}, labels=np.array([0, 1]), indices=np.arange(2))
    plain = rule.chipctl_gradients(context=ctx, batch=batch, result=result, loss_terms=[])
    penalty = CountPenalty()
    deltas = []
    for lam in (1.0, 2.0):
        pctx = RuleContext(host=host, options={"lam": lam}, rng=np.random.default_rng(0), train={}, input="in",
                           output="out")
        terms = penalty.chipctl_loss_terms(context=pctx, batch=batch, result=result)
        with_terms = rule.chipctl_gradients(context=ctx, batch=batch, result=result, loss_terms=terms)
        deltas.append(with_terms.weights["in_hidden"] - plain.weights["in_hidden"])
        assert with_terms.metrics["ignored_loss_terms"] == ["first_spike_times:out"]
    assert deltas[0].sum() > 0 and np.abs(deltas[0]).max() > 1e-6
    np.testing.assert_allclose(deltas[1], 2 * deltas[0], rtol=1e-9, atol=1e-15)
    assert np.all(deltas[0] >= -1e-15)  # every input weight raises spikes and membrane


# ------------------------------------------------------------------------- training


def test_short_yinyang_training_on_bss2_learns(tmp_path):
    """Two short epochs on the bss2 chip (every imperfection on): well above chance (1/3) and
    above the untrained net. The test passes use the trained weights themselves: the netlist's
    moving average (``ema``) would still hold mostly the initial weights after 20 batches."""
    nl = load_netlist("netlists/yinyang_surrogate_bss2.yaml")
    optimizer = {k: v for k, v in nl.train["optimizer"].items() if k != "ema"}
    train = dict(nl.train, train_size=640, test_size=250, epochs=2, optimizer=optimizer,
                 checkpoint=str(tmp_path / "ck"))
    trainer = Trainer(nl.replace(train=train))
    before = trainer.evaluate("test")
    metrics = trainer.fit()
    assert metrics["test_accuracy"] >= 0.5, metrics["history"]
    assert metrics["test_accuracy"] >= before + 0.15, (before, metrics["history"])


@pytest.mark.parametrize("adapt,soft", [("none", False), ("threshold", True), ("current", False)])
def test_vectorized_tape_and_backward_equal_the_step_by_step_reference(adapt, soft):
    """The vectorized observed tape and backward pass compute the same numbers as the
    step-by-step reference (observed spikes, membranes and holds; readout and spike terms)."""
    net, arrivals, K = _net(adapt, soft)
    sim = m.simulate(net, arrivals, K)  # 0/1 spikes
    rng = np.random.default_rng(3)
    spikes = {name: sim.s[name] for name in net.populations}
    membrane = {name: sim.u[name] + rng.normal(0, 0.05, sim.u[name].shape) for name in net.populations}
    holds = {name: (rng.random(sim.s[name].shape) < 0.1).astype(float) for name in net.populations}
    args = (net, arrivals, K, spikes, membrane, holds, ("fast_sigmoid", 10.0))
    fast, ref = m.observed_tape(*args), m.observed_tape_stepwise(*args)
    for field in ("u", "um", "I", "A", "theta_eff", "s", "h", "psi"):
        for name in net.populations:
            np.testing.assert_allclose(getattr(fast, field)[name], getattr(ref, field)[name], rtol=1e-12, atol=1e-12)
    du = {"o": rng.normal(size=sim.u["o"].shape)}
    ds = {"h": rng.normal(size=sim.s["h"].shape)}
    for detach in (False, True):
        (w1, p1), (w2, p2) = m.backward(net, fast, du, ds, detach), m.backward_stepwise(net, ref, du, ds, detach)
        for key in w2:
            np.testing.assert_allclose(w1[key], w2[key], rtol=1e-10, atol=1e-12)
        assert set(p1) == set(p2)
        for key in p2:
            np.testing.assert_allclose(p1[key], p2[key], rtol=1e-10, atol=1e-12)


def test_spike_informed_reconstruction_rises_to_the_threshold_and_restarts_from_the_reset():
    """Between the samples around a spike the linear interpolation cuts the rise short; with
    spike_informed the grid goes up to θ at the spike and on from the reset."""
    from chip.events import SpikeEvents
    from chip.readout import Trace

    host, rule, ctx = _configured("ideal", spike_informed=True)
    rule.dt = 0.2
    grid = np.arange(26) * 0.2
    trace = Trace("hidden", (0,), "cadc", np.array([1.8, 3.6]), np.array([[[0.5], [0.0]]]), None)
    u = rule._on_grid(trace, "hidden", host, 1, grid, 1)
    assert u[0, 12, 0] == pytest.approx(0.5 * (1 - 0.6 / 1.8))  # linear between the samples
    pop = m.Population("hidden", 1, tau_mem=np.ones(1), tau_syn=np.ones(1), theta=np.ones(1), reset=np.zeros(1),
                       tau_ref=np.zeros(1))
    rule._through_spikes(u, trace, SpikeEvents.from_arrays([0], [0], [3.0], 1, 1), pop, grid)
    assert u[0, 9, 0] == pytest.approx(0.5)                     # the sample itself stays
    assert u[0, 12, 0] == pytest.approx(0.5 + 0.5 * 0.6 / 1.2)  # on the way up to θ at 3.0 us
    assert u[0, 15, 0] == pytest.approx(1.0)                    # the spike
    assert u[0, 16, 0] == pytest.approx(0.0) and u[0, 18, 0] == pytest.approx(0.0)  # from the reset to the sample
