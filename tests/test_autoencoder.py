"""The autoencoder issue: the regularizer's loss terms and their gradients (against central finite
differences), the digits task and its codes, the surrogate rule's reconstruction loss, the health
statistics, and composition through the loss-terms hook — the surrogate rule trains with and
without the regularizer, and a third-party loss-term plugin installed through an entry point is
picked up the same way."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from chip.errors import RuleError
from chip.host import HostInterface
from chip.netlist import load_netlist, load_netlist_text
from rules import Batch, RuleContext
from rules.autoencoder import (AutoencoderRegularizer, latent_terms, membrane_band_terms, membrane_terms, rate_band_terms,
                               spike_terms)
from rules.manager import available_rules, load_rule
from rules.surrogate import Surrogate
from rules.training import Trainer

pytest.importorskip("sklearn", reason="the digits task reads scikit-learn's bundled digits (the test extra)")


# ------------------------------------------------------------------------- the loss terms


def _central(f, x, index, eps=1e-6):
    plus, minus = x.copy(), x.copy()
    plus[index] += eps
    minus[index] -= eps
    return (f(plus) - f(minus)) / (2 * eps)


def test_spike_terms_gradient_equals_finite_differences():
    rng = np.random.default_rng(0)
    counts = rng.uniform(0.5, 40.0, (3, 5))          # away from |.|'s kink at 0
    l1, l2 = rng.uniform(0.1, 2.0, 5), 3.0           # per neuron and scalar coefficients
    steps = 150.0
    value, grad = spike_terms(counts, steps, l1, l2)
    r = counts / steps
    assert value == pytest.approx(np.sum(l1 * np.abs(r) + l2 * r ** 2) / 3)
    for index in [(0, 0), (1, 3), (2, 4), (2, 1)]:
        fd = _central(lambda c: spike_terms(c, steps, l1, l2)[0], counts, index)
        assert grad[index] == pytest.approx(fd, rel=1e-6)


def test_membrane_terms_gradient_equals_finite_differences_on_both_sides_of_the_reference():
    rng = np.random.default_rng(1)
    u = rng.normal(0.2, 0.6, (2, 7, 4))
    u[0, :, 0] += 2.0                                   # a neuron far above the reference
    u[1, :, 1] -= 2.0                                   # and one far below
    ref = 0.3
    value, grad = membrane_terms(u, 0.7, 1.5, ref)
    m = (u - ref).mean(axis=1)
    assert value == pytest.approx(np.sum(0.7 * np.abs(m) + 1.5 * m ** 2) / 2)
    assert grad.shape == u.shape
    assert grad[0, 0, 0] > 0 and grad[1, 0, 1] < 0      # pull down the high one, up the low one
    for index in [(0, 0, 0), (1, 3, 1), (0, 6, 2), (1, 2, 3)]:
        fd = _central(lambda v: membrane_terms(v, 0.7, 1.5, ref)[0], u, index)
        assert grad[index] == pytest.approx(fd, rel=1e-6)


def test_rate_band_is_zero_inside_and_its_gradient_equals_finite_differences_outside():
    steps = 150.0
    counts = np.array([[0.0, 3.0, 20.0, 1.0], [0.4, 5.0, 24.0, 1.2], [0.2, 1.0, 22.0, 0.8]])
    # neuron 0: mean rate below the band, 1: inside, 2: above, 3: inside
    value, grad = rate_band_terms(counts, steps, 50.0, rate_min=0.005, rate_max=0.1)
    mean = counts.mean(axis=0) / steps
    assert value == pytest.approx(50.0 * ((0.005 - mean[0]) ** 2 + (mean[2] - 0.1) ** 2))
    assert np.all(grad[:, 0] < 0) and np.all(grad[:, 2] > 0)     # raise the silent one, lower the busy one
    assert np.all(grad[:, [1, 3]] == 0)                           # healthy neurons pay nothing
    inside, g_inside = rate_band_terms(counts[:, [1, 3]], steps, 50.0, rate_min=0.005, rate_max=0.1)
    assert inside == 0.0 and not g_inside.any()
    for index in [(0, 0), (2, 0), (1, 2), (0, 1)]:
        fd = _central(lambda c: rate_band_terms(c, steps, 50.0, 0.005, 0.1)[0], counts, index)
        assert grad[index] == pytest.approx(fd, rel=1e-6, abs=1e-12)
    # one-sided bands
    assert rate_band_terms(counts, steps, 50.0, rate_min=0.005)[0] == pytest.approx(50.0 * (0.005 - mean[0]) ** 2)
    assert rate_band_terms(counts, steps, 50.0, rate_max=0.1)[0] == pytest.approx(50.0 * (mean[2] - 0.1) ** 2)


def test_membrane_band_is_zero_inside_and_its_gradient_equals_finite_differences_outside():
    rng = np.random.default_rng(2)
    u = rng.normal(0.3, 0.1, (3, 6, 4))
    u[:, :, 0] -= 0.9                                     # sits below the band (a dying neuron)
    u[:, :, 3] += 1.2                                     # above it
    value, grad = membrane_band_terms(u, 0.4, u_min=0.0, u_max=1.0)
    mean = u.mean(axis=(0, 1))
    assert value == pytest.approx(0.4 * ((0.0 - mean[0]) ** 2 + (mean[3] - 1.0) ** 2))
    assert np.all(grad[..., 0] < 0) and np.all(grad[..., 3] > 0) and not grad[..., 1:3].any()
    for index in [(0, 0, 0), (2, 5, 0), (1, 3, 3), (0, 2, 1)]:
        fd = _central(lambda v: membrane_band_terms(v, 0.4, 0.0, 1.0)[0], u, index)
        assert grad[index] == pytest.approx(fd, rel=1e-6, abs=1e-12)


def test_latent_population_terms_gradient_equals_finite_differences():
    rng = np.random.default_rng(3)
    counts = rng.uniform(0.0, 10.0, (4, 5))
    steps = 150.0
    value, grad = latent_terms(counts, steps, 0.7, 0.2)
    r = counts / steps
    assert value == pytest.approx((0.7 * np.sum(r.sum(axis=1) ** 2) + 0.2 * np.sum(r.sum(axis=0) ** 2)) / 4)
    for index in [(0, 0), (3, 4), (2, 1)]:
        fd = _central(lambda c: latent_terms(c, steps, 0.7, 0.2)[0], counts, index)
        assert grad[index] == pytest.approx(fd, rel=1e-6)


SMALL = """
name: ae_small
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
  hidden_out: {pre: hidden, post: out, sign: signed, weights: {normal: {mean: 0.2, std: 0.3}, seed: 3}}
train: {input: in, output: out, rules: [surrogate], decode: max_membrane}
"""


def _ctx(host, rule, **options):
    defaults = {k: v[0] for k, v in rule.options.items()}
    return RuleContext(host=host, options={**defaults, **options}, rng=np.random.default_rng(0), train={},
                       input="in", output="out")


def _run_with(host, *pairs):
    from rules.training.trainer import _merge_requests

    requests = {rule.name: rule.chipctl_run_request(context=ctx, batch=None) for rule, ctx in pairs}
    record, _ = _merge_requests(requests, host.netlist.record, host, "out", "max_membrane")
    return host.run(record=record)


def test_the_plugin_returns_its_terms_on_the_chips_observables():
    host = HostInterface(load_netlist_text(SMALL.replace("PROFILE", "bss2")))
    reg = AutoencoderRegularizer()
    ctx = _ctx(host, reg, layers={"hidden": {"lambda1": 0.5, "lambda2": 4.0, "beta1": 0.2, "beta2": 1.0,
                                             "membrane_ref": 0.4}})
    reg.chipctl_configure(context=ctx)
    assert reg.chipctl_run_request(context=ctx, batch=None).membrane == {"hidden": tuple(range(6))}
    result = _run_with(host, (reg, ctx))
    batch = Batch(inputs={}, labels=np.zeros(2, dtype=int), indices=np.arange(2))
    terms = {t.name: t for t in reg.chipctl_loss_terms(context=ctx, batch=batch, result=result)}
    assert set(terms) == {"autoencoder_regularizer.spikes.hidden", "autoencoder_regularizer.membrane.hidden"}
    steps = round(30 / host.profile.step_us)
    counts = result.spikes["hidden"].counts()
    assert counts.sum() > 0
    value, grad = spike_terms(counts, steps, 0.5, 4.0)
    spikes = terms["autoencoder_regularizer.spikes.hidden"]
    assert spikes.value == pytest.approx(value)
    np.testing.assert_allclose(spikes.grads[("spike_counts", "hidden")], grad)
    trace = result.trace("hidden")
    membrane = terms["autoencoder_regularizer.membrane.hidden"]
    value, grad = membrane_terms(trace.values - host.read_params("hidden", "v_leak")[None, None, :], 0.2, 1.0, 0.4)
    assert membrane.value == pytest.approx(value)
    assert membrane.grads[("membrane", "hidden")].shape == trace.values.shape


def test_the_plugin_returns_its_band_and_latent_terms_on_the_chips_observables():
    host = HostInterface(load_netlist_text(SMALL.replace("PROFILE", "bss2")))
    reg = AutoencoderRegularizer()
    ctx = _ctx(host, reg, layers={"hidden": {"rate_weight": 100.0, "rate_min": 0.02, "rate_max": 0.05,
                                             "membrane_weight": 0.5, "membrane_min": 0.2, "membrane_max": 0.6,
                                             "example2": 0.3, "neuron2": 0.1}})
    reg.chipctl_configure(context=ctx)
    assert reg.chipctl_run_request(context=ctx, batch=None).membrane == {"hidden": tuple(range(6))}
    result = _run_with(host, (reg, ctx))
    batch = Batch(inputs={}, labels=np.zeros(2, dtype=int), indices=np.arange(2))
    terms = {t.name: t for t in reg.chipctl_loss_terms(context=ctx, batch=batch, result=result)}
    assert set(terms) == {"autoencoder_regularizer.rate_band.hidden", "autoencoder_regularizer.membrane_band.hidden",
                          "autoencoder_regularizer.latent.hidden"}
    steps = round(30 / host.profile.step_us)
    counts = result.spikes["hidden"].counts()
    value, grad = rate_band_terms(counts, steps, 100.0, 0.02, 0.05)
    assert terms["autoencoder_regularizer.rate_band.hidden"].value == pytest.approx(value)
    np.testing.assert_allclose(terms["autoencoder_regularizer.rate_band.hidden"].grads[("spike_counts", "hidden")], grad)
    u = result.trace("hidden").values - host.read_params("hidden", "v_leak")[None, None, :]
    value, grad = membrane_band_terms(u, 0.5, 0.2, 0.6)
    assert terms["autoencoder_regularizer.membrane_band.hidden"].value == pytest.approx(value)
    np.testing.assert_allclose(terms["autoencoder_regularizer.membrane_band.hidden"].grads[("membrane", "hidden")], grad)
    value, grad = latent_terms(counts, steps, 0.3, 0.1)
    assert terms["autoencoder_regularizer.latent.hidden"].value == pytest.approx(value)
    np.testing.assert_allclose(terms["autoencoder_regularizer.latent.hidden"].grads[("spike_counts", "hidden")], grad)


@pytest.mark.parametrize("options,message", [
    ({"layers": {"nowhere": {}}}, "option layers: no population 'nowhere'"),
    ({"layers": {"hidden": {"lambda3": 1}}}, r"option layers.hidden: unknown coefficient\(s\) lambda3"),
    ({"lambda2": -1}, "option lambda2: expected a number >= 0"),
    ({"layers": {"hidden": {"beta1": "a lot"}}}, "option layers.hidden.beta1: expected a number"),
    ({"layers": {"hidden": {"rate_min": 0.2, "rate_max": 0.1}}}, "option layers.hidden: rate_min 0.2 is above rate_max"),
    ({"membrane_weight": float("inf")}, "option membrane_weight: expected a finite number"),
    ({"layers": {"hidden": {"neuron2": -1}}}, "option layers.hidden.neuron2: expected a number >= 0"),
])
def test_bad_coefficients_are_named(options, message):
    host = HostInterface(load_netlist_text(SMALL.replace("PROFILE", "ideal")))
    reg = AutoencoderRegularizer()
    with pytest.raises(RuleError, match=message):
        reg.chipctl_configure(context=_ctx(host, reg, **options))


def test_default_layers_are_every_population_but_the_output():
    host = HostInterface(load_netlist_text(SMALL.replace("PROFILE", "ideal")))
    reg = AutoencoderRegularizer()
    reg.chipctl_configure(context=_ctx(host, reg, lambda2=1.0))
    assert list(reg.layers) == ["hidden"] and reg.layers["hidden"]["lambda2"] == 1.0
    assert reg.chipctl_run_request(context=None, batch=None) is None  # no membrane terms: no traces asked


# ------------------------------------------------------------------------- the digits task


def test_digits_task_codes_and_targets():
    from rules.tasks.digits import DigitsTask

    task = DigitsTask(train_size=100, test_size=50)
    x_tr, y_tr = task.data("train")
    x_te, _ = task.data("test")
    assert x_tr.shape == (100, 64) and x_te.shape == (50, 64) and 0 <= x_tr.min() and x_tr.max() <= 1
    _, y_all = DigitsTask(train_size=1437, test_size=360).data("train")
    assert len(y_all) == 1437 and set(y_all) == set(range(10))
    np.testing.assert_array_equal(task.targets(x_tr[:3]), x_tr[:3])
    ev = task.encode(x_tr[:5])
    counts = ev.counts()
    np.testing.assert_array_equal(counts, np.rint(4 * x_tr[:5]))
    assert ev.time_us.min() > 0 and ev.time_us.max() < 20
    lat = DigitsTask(coding="latency").encode(x_tr[:5])
    first = lat.first_spike_times()
    bright = x_tr[:5] > 0.9
    dim = (x_tr[:5] > 0) & (x_tr[:5] < 0.3)
    assert first[bright].max() < first[dim].min()               # bright pixels first
    assert not np.isfinite(first[x_tr[:5] == 0]).any()          # a blank pixel never spikes


def test_a_digits_netlist_with_a_wrong_input_size_is_one_line(tmp_path):
    from chip.errors import NetlistError
    from rules.training.config import validate_train

    text = open("netlists/digits_ae_bss2.yaml").read().replace("    size: 64\n    type: file", "    size: 63\n    type: file")
    (tmp_path / "digits_batch.npz").write_bytes(open("netlists/digits_batch.npz", "rb").read())
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(NetlistError, match="train.input: the digits task needs an input of 64 channels"):
        validate_train(load_netlist(path))


# ------------------------------------------------------------------------- reconstruction loss


def test_reconstruction_loss_matches_finite_differences_of_the_samples():
    from chip.readout import Trace

    host = HostInterface(load_netlist_text(SMALL.replace("PROFILE", "ideal")))
    rule = Surrogate()
    ctx = _ctx(host, rule, loss="reconstruction_mse", window=[3, 20])
    rule.chipctl_configure(context=ctx)
    rng = np.random.default_rng(2)
    times = np.arange(1, 13) * 1.8
    values = rng.normal(0.3, 0.5, (3, 12, 2))
    targets = rng.uniform(0, 1, (3, 2))
    vl = np.full(2, 0.1)
    K = int(np.ceil(30 / rule.dt))

    def value(v):
        return rule.reconstruction_loss(Trace("out", (0, 1), "cadc", times, v, None), targets, vl, K)[0]

    loss, du, recon = rule.reconstruction_loss(Trace("out", (0, 1), "cadc", times, values, None), targets, vl, K)
    keep = (times >= 3) & (times <= 20)
    np.testing.assert_allclose(recon, values[:, keep].mean(axis=1) - vl)
    assert loss == pytest.approx(np.mean((recon - targets) ** 2))
    kk = np.rint(times / rule.dt).astype(int)
    for b, j, n in [(0, 2, 0), (1, 5, 1), (2, 9, 0)]:
        fd = _central(value, values, (b, j, n))
        assert du[b, kk[j], n] == pytest.approx(fd, rel=1e-6)
    assert np.all(du[:, kk[0]] == 0) and np.all(du[:, kk[-1]] == 0)  # outside the window


def test_reconstruction_loss_without_targets_is_named():
    host = HostInterface(load_netlist_text(SMALL.replace("PROFILE", "ideal")))
    rule = Surrogate()
    ctx = _ctx(host, rule, loss="reconstruction_mse")
    rule.chipctl_configure(context=ctx)
    result = _run_with(host, (rule, ctx))
    with pytest.raises(RuleError, match="reconstruction_mse needs a task with targets"):
        rule.chipctl_gradients(context=ctx, batch=Batch(inputs={}, labels=np.zeros(2, dtype=int),
                                                        indices=np.arange(2)), result=result, loss_terms=[])


# ------------------------------------------------------------------------- composition


def _digits_trainer(tmp_path, rules, extra=(), **train):
    nl = load_netlist("netlists/digits_ae_bss2.yaml")
    block = dict(nl.train, **{"rules": list(rules), "train_size": 128, "test_size": 64, "epochs": 2,
                              "checkpoint": None, **train})
    return Trainer(nl.replace(train=block), extra_rules=tuple(extra))


@pytest.mark.parametrize("rules", [["surrogate"], ["surrogate", "autoencoder_regularizer"]])
def test_the_surrogate_rule_trains_an_autoencoder_with_and_without_the_regularizer(tmp_path, rules):
    trainer = _digits_trainer(tmp_path, rules)
    trainer.evaluate("test")
    before = trainer.health["reconstruction_mse"]
    metrics = trainer.fit()
    assert metrics["reconstruction_mse"] < 0.9 * before, (before, metrics["history"])
    for key in ("dead_fraction", "bursting_fraction"):
        assert 0.0 <= metrics[key] <= 1.0
    assert "rule_ignored_loss_terms" not in metrics["history"][-1]


THIRD_PARTY = '''
import numpy as np
from rules import LossTerm, Rule, hookimpl

CALLS = []


class QuietHidden(Rule):
    """Someone else's regularizer: a penalty on the hidden layer's summed spike count."""

    name = "quiet_hidden"
    options = {"weight": (1e-3, "penalty per spike")}

    @hookimpl
    def chipctl_loss_terms(self, context, batch, result):
        counts = result.spikes["hidden"].counts()
        CALLS.append(counts.shape)
        w = float(context.options["weight"])
        return [LossTerm("quiet_hidden", float(w * counts.sum() / len(counts)),
                         {("spike_counts", "hidden"): np.full(counts.shape, w / len(counts))})]
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A distribution installed beside chipctl: its module and a dist-info declaring the rule in
    the chipctl.rules entry-point group, on sys.path (what pip install would leave)."""
    site = tmp_path / "site"
    (site / "quiet_hidden_rule-0.1.dist-info").mkdir(parents=True)
    (site / "quiet_hidden_rule.py").write_text(textwrap.dedent(THIRD_PARTY))
    (site / "quiet_hidden_rule-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: quiet-hidden-rule\nVersion: 0.1\n")
    (site / "quiet_hidden_rule-0.1.dist-info" / "entry_points.txt").write_text(
        "[chipctl.rules]\nquiet_hidden = quiet_hidden_rule:QuietHidden\n")
    monkeypatch.syspath_prepend(str(site))
    yield "quiet_hidden"


def test_a_third_party_loss_term_plugin_is_picked_up_through_its_entry_point(tmp_path, third_party):
    assert available_rules()[third_party] == "quiet_hidden_rule:QuietHidden"
    name, plugin = load_rule(third_party)
    assert name == "quiet_hidden"
    import quiet_hidden_rule

    trainer = _digits_trainer(tmp_path, ["surrogate"], extra=(third_party,), epochs=1)
    assert list(trainer.rules.rules) == ["surrogate", "quiet_hidden"]
    x, y = trainer.x_train, trainer.y_train
    batch = trainer._batch(x, y, np.arange(16), training=True)
    out = trainer.train_step(batch)
    assert quiet_hidden_rule.CALLS == [(16, 32)]
    assert "ignored_loss_terms" not in out["rule_metrics"]
    # the term reaches the weights exactly as the surrogate rule's backward of it: the same run with
    # and without it differs by a nonzero, linear amount
    host = trainer.host
    surrogate = trainer.rules.rules["surrogate"]
    ctx = trainer.rules.contexts["surrogate"]
    from rules.training.trainer import _merge_requests

    requests = trainer.rules.call("chipctl_run_request", batch=batch)
    record, _ = _merge_requests(requests, trainer.netlist.record, host, "out", "max_membrane")
    result = host.run(batch.inputs, batch=batch.size, record=record)
    qctx = trainer.rules.contexts["quiet_hidden"]
    terms = trainer.rules.rules["quiet_hidden"].chipctl_loss_terms(context=qctx, batch=batch, result=result)
    plain = surrogate.chipctl_gradients(context=ctx, batch=batch, result=result, loss_terms=[])
    once = surrogate.chipctl_gradients(context=ctx, batch=batch, result=result, loss_terms=terms)
    twice = surrogate.chipctl_gradients(context=ctx, batch=batch, result=result, loss_terms=terms + terms)
    delta = once.weights["in_hidden"] - plain.weights["in_hidden"]
    assert np.abs(delta).max() > 1e-9
    np.testing.assert_allclose(twice.weights["in_hidden"] - plain.weights["in_hidden"], 2 * delta,
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(once.weights["hidden_out"], plain.weights["hidden_out"], atol=1e-15)


def test_train_json_reports_health_and_writes_the_picture_or_says_why_not(tmp_path):
    import json
    import shutil
    import subprocess
    import sys

    nl = tmp_path / "ae.yaml"
    text = open("netlists/digits_ae_bss2.yaml").read().replace("train_size: 1024", "train_size: 64") \
        .replace("test_size: 256", "test_size: 64")
    nl.write_text(text)
    shutil.copy("netlists/digits_batch.npz", tmp_path / "digits_batch.npz")
    run = subprocess.run([sys.executable, "-c", "import cli; cli.app()", "train", str(nl), "--epochs", "1", "--json",
                          "--checkpoint", str(tmp_path / "ck")], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for key in ("dead_fraction", "bursting_fraction", "reconstruction_mse"):
        assert isinstance(out[key], float), out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert out["picture"] is None and "no reconstruction picture: matplotlib is not installed" in run.stderr
    else:
        assert out["picture"] == str(tmp_path / "ck" / "reconstructions.png")
        assert (tmp_path / "ck" / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------- MNIST from the user's file

MNIST_AE = """
name: mnist_ae
duration: 30 us
batch: 8
chip: {profile: bss2}
populations:
  hidden:
    size: 8
    params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, v_leak: 0, v_reset: 0, v_threshold: 1, weight_full_scale: 1.086}
  out:
    size: 49
    params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, v_leak: 0, v_reset: 0, v_threshold: 2.5, weight_full_scale: 1.086}
inputs:
  in: {size: 49, type: spikes, times: TIMES}
projections:
  in_hidden:  {pre: in, post: hidden, sign: signed, weights: {normal: {mean: 0.1, std: 0.3}, seed: 1}}
  hidden_out: {pre: hidden, post: out, sign: signed, weights: {normal: {mean: 0.05, std: 0.1}, seed: 2}}
train:
  task: mnist
  input: in
  output: out
  mnist: {data: mnist.npz, pool: 4, coding: rate, window: [0 us, 20 us], max_spikes: 4}
  rules: [surrogate, autoencoder_regularizer]
  options:
    surrogate: {loss: reconstruction_mse, window: [10, 30]}
    autoencoder_regularizer: {membrane_weight: 0.1, membrane_min: 0.0, example2: 0.01}
  optimizer: {name: adam, lr: 0.03}
  epochs: 1
  batch_size: 8
  train_size: 16
  test_size: 8
""".replace("TIMES", "[" + ", ".join(["[1 us]"] * 49) + "]")


def _fake_mnist(path, n_train=24, n_test=12):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (n_train + n_test, 28, 28)).astype(np.uint8)
    x[:, :, :10] = 0                                        # some blank pixels
    y = rng.integers(0, 10, n_train + n_test)
    np.savez(path, x_train=x[:n_train], y_train=y[:n_train], x_test=x[n_train:], y_test=y[n_train:])
    return x


def test_mnist_task_reads_the_users_file_and_pools_it(tmp_path):
    from rules.tasks import make_task
    from rules.training.config import validate_train

    x = _fake_mnist(tmp_path / "mnist.npz")
    (tmp_path / "ae.yaml").write_text(MNIST_AE)
    netlist = load_netlist(tmp_path / "ae.yaml")
    task = make_task(validate_train(netlist).raw, netlist)
    assert task.name == "mnist" and task.input_size == 49
    x_tr, y_tr = task.data("train")
    x_te, _ = task.data("test")
    assert x_tr.shape == (16, 49) and x_te.shape == (8, 49) and len(y_tr) == 16
    assert x_tr[0, 0] == pytest.approx(x[0, :4, :4].mean() / 255.0)         # a 4x4 block's mean
    assert x_tr[0, 0 + 3] == pytest.approx(x[0, :4, 12:16].mean() / 255.0)
    assert x_te[0, 48] == pytest.approx(x[24, 24:, 24:].mean() / 255.0)      # the file's own test split
    np.testing.assert_array_equal(task.targets(x_tr[:2]), x_tr[:2])
    np.testing.assert_array_equal(task.encode(x_tr[:3]).counts(), np.rint(4 * x_tr[:3]))


@pytest.mark.parametrize("change,message", [
    (("data: mnist.npz", "data: elsewhere.npz"), "train.mnist.data: no file .*bring your own mnist.npz"),
    (("pool: 4", "pool: 2"), "train.input: the mnist task with pool 2 needs an input of 14x14 = 196 channels"),
    (("pool: 4", "pool: 3"), "train.mnist.pool: expected a divisor of 28"),
    (("train_size: 16", "train_size: 100"), "train.train_size: 100 exceeds the 24 images of x_train"),
    (("data: mnist.npz", "data: broken.npz"), "train.mnist.data: .*no array y_test"),
])
def test_a_bad_mnist_block_or_file_is_one_line_exit_2(tmp_path, change, message):
    import re
    import subprocess
    import sys

    _fake_mnist(tmp_path / "mnist.npz")
    np.savez(tmp_path / "broken.npz", x_train=np.zeros((2, 28, 28)), y_train=np.zeros(2), x_test=np.zeros((2, 28, 28)))
    (tmp_path / "ae.yaml").write_text(MNIST_AE.replace(*change))
    run = subprocess.run([sys.executable, "-c", "import cli; cli.app()", "train", str(tmp_path / "ae.yaml"), "--json"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "ae.yaml:" in lines[0] and re.search(message, lines[0]), run.stderr
    assert "Traceback" not in run.stderr


def test_an_mnist_autoencoder_trains_from_the_users_file_with_band_and_latent_terms(tmp_path):
    import json
    import subprocess
    import sys

    _fake_mnist(tmp_path / "mnist.npz")
    (tmp_path / "ae.yaml").write_text(MNIST_AE)
    run = subprocess.run([sys.executable, "-c", "import cli; cli.app()", "train", str(tmp_path / "ae.yaml"), "--json",
                          "--checkpoint", str(tmp_path / "ck"), "--no-plot"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert 0.0 < out["reconstruction_mse"] < 1.0 and 0.0 <= out["dead_fraction"] <= 1.0
    if out["picture"] is not None:
        assert (tmp_path / "ck" / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
