"""STDP weight transport: feedback weights learn the forward ones from the correlation sensors.

The angle test runs the rule's alignment phases on a small bss2 network (one forward projection
and its feedback projection) and needs the angle between vec(W) and vec(Bᵀ) to fall from ≈ 90°
well below a loose bar; the same test with the sign of either term flipped must stay above it,
so a broken rule fails here. The rest: options are checked, the learning setup sends the error
through B, ``backprop`` copies Wᵀ, state survives a checkpoint, ``chipctl train --json`` reports
``angles_deg``.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from chip.errors import RuleError
from chip.host import HostInterface
from chip.netlist import load_netlist, load_netlist_text
from cli import app
from rules.api import RuleContext
from rules.manager import RuleSet
from rules.training import Trainer
from rules.weight_transport import WeightTransport, alignment_angle, stdp_update

PAIR_NETLIST = """
name: wt_pair
duration: 50 us
batch: 4
chip: {profile: bss2}
populations:
  a: {size: 12, params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 1.0}}
  b: {size: 8, params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 1.0}}
inputs:
  bg_a: {size: 12, type: poisson, rate: 0 Hz}
  bg_b: {size: 8, type: poisson, rate: 0 Hz}
projections:
  w: {pre: a, post: b, sign: signed, weights: {normal: {mean: 0, std: 0.4}, seed: 2}}
  fb: {pre: b, post: a, sign: signed, weights: {normal: {mean: 0, std: 0.05}, seed: 4}}
  bg_a: {pre: bg_a, post: a, connectivity: one_to_one, weights: 0.6}
  bg_b: {pre: bg_b, post: b, connectivity: one_to_one, weights: 0.6}
"""

PAIR_OPTIONS = {"feedback": {"fb": "w"}, "noise": {"a": "bg_a", "b": "bg_b"}, "learn_forward": False,
                "phase_batch": 8, "phase_duration": 1000.0, "period": 500.0, "calibration_batch": 32}
ANGLE_BAR = 55.0  # degrees; from ≈ 90 at the start
PHASES = 8


def _aligned_rule(seed=1, **options):
    host = HostInterface(load_netlist_text(PAIR_NETLIST))
    rule = WeightTransport()
    opts = {k: v[0] for k, v in rule.options.items()}
    opts.update(PAIR_OPTIONS, **options)
    ctx = RuleContext(host=host, options=opts, rng=np.random.default_rng(seed), train={}, input="a", output="b")
    rule.chipctl_configure(ctx)
    return host, rule, ctx


@pytest.mark.parametrize("centring", [
    {},                                       # the defaults: the projection's mean drive removed
    {"center": "post", "normalize": "post"},  # the training netlists': per forward post neuron
], ids=["projection", "post"])
@pytest.mark.parametrize("a_causal, a_acausal, aligns", [
    (-1.0, 1.0, True),    # the rule: anti-Hebbian causal, Hebbian acausal
    (1.0, 1.0, False),    # causal term with the wrong sign
    (-1.0, -1.0, False),  # acausal term with the wrong sign
])
def test_feedback_weights_align_only_with_the_rules_signs(a_causal, a_acausal, aligns, centring):
    host, rule, ctx = _aligned_rule(a_causal=a_causal, a_acausal=a_acausal, **centring)
    start = rule.angles(host)["w"]
    assert 75.0 < start < 105.0, start
    for _ in range(PHASES):
        out = rule.run_phase(ctx)
    angle = out["angles_deg"]["w"]
    assert min(out["rates_khz"].values()) > 10.0, out  # the noise drove the network
    if aligns:
        assert angle < ANGLE_BAR, (angle, rule.angle_log)
    else:
        assert angle > ANGLE_BAR, (angle, rule.angle_log)


def test_feedback_synapses_are_off_between_phases_and_on_in_them():
    host, rule, ctx = _aligned_rule()
    assert not host.read_weights("fb").any()
    seen = []
    original = host.read_correlations

    def spy(projection):
        seen.append(np.abs(host.read_weights("fb")).sum())
        return original(projection)

    host.read_correlations = spy
    rule.run_phase(ctx)
    assert seen and all(s > 0 for s in seen)
    assert not host.read_weights("fb").any()
    assert np.abs(rule.b_chip["fb"]).sum() > 0


def test_update_and_angle_helpers():
    causal = np.array([[[2.0]], [[0.0]]])
    acausal = np.array([[[3.0]], [[1.0]]])
    # batch mean of 1·acausal − 1·causal = 1; decay pulls 0.5·B = 0.25 off
    d = stdp_update(causal, acausal, np.array([[0.5]]), eta=0.1, a_causal=-1.0, a_acausal=1.0, decay=0.5)
    np.testing.assert_allclose(d, [[0.075]])
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (3 pre, 2 post)
    assert alignment_angle(w, w.T) == pytest.approx(0.0, abs=1e-6)
    assert alignment_angle(w, -w.T) == pytest.approx(180.0)
    assert alignment_angle(w, np.zeros((2, 3))) == 90.0


def test_centring_modes_remove_row_and_column_common_modes():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 6))                 # what the drive should mirror (B's shape)
    rows, cols = rng.normal(size=(4, 1)), rng.normal(size=(1, 6))
    acausal = (w + rows + cols)[None]           # a post neuron's and a pre neuron's common mode on top
    causal = np.zeros_like(acausal)
    kw = dict(eta=1.0, a_causal=-1.0, a_acausal=1.0, decay=0.0)
    double = w - w.mean(axis=1, keepdims=True) - w.mean(axis=0, keepdims=True) + w.mean()
    np.testing.assert_allclose(stdp_update(causal, acausal, 0 * w, center="both", **kw), double)
    post = stdp_update(causal, acausal, 0 * w, center="post", **kw)
    np.testing.assert_allclose(post.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(post, (w + cols) - (w + cols).mean(axis=1, keepdims=True))
    for old in (True, "projection"):
        d = stdp_update(causal, acausal, 0 * w, center=old, **kw)
        np.testing.assert_allclose(d, acausal[0] - acausal.mean())
    for none in (False, "none"):
        np.testing.assert_allclose(stdp_update(causal, acausal, 0 * w, center=none, **kw), acausal[0])
    # normalize: every row at the drive's overall rms, directions within a row kept
    scaled = acausal * np.array([[1.0], [3.0], [0.5], [2.0]])[None]
    n = stdp_update(causal, scaled, 0 * w, center="none", normalize="post", **kw)
    rms = np.sqrt((n ** 2).mean(axis=1))
    np.testing.assert_allclose(rms, np.sqrt((scaled[0] ** 2).mean()))
    np.testing.assert_allclose(n / rms[:, None], scaled[0] / np.sqrt((scaled[0] ** 2).mean(axis=1, keepdims=True)))
    with pytest.raises(ValueError, match="center"):
        stdp_update(causal, acausal, 0 * w, center="rows", **kw)


def test_phase_schedule_and_phases_between_batches(tmp_path):
    assert WeightTransport.phases_for_epoch(3, 7) == 3
    assert [WeightTransport.phases_for_epoch([6, 4, 2], e) for e in range(5)] == [6, 4, 2, 2, 2]
    nl = _wt_netlist(tmp_path, "stdp_alignment")
    t = dict(nl.train)
    t["options"] = {"weight_transport": dict(t["options"]["weight_transport"], initial_phases=1,
                                             phases_per_epoch=[1, 0], phase_every=1)}
    trainer = Trainer(nl.replace(train=dict(t, epochs=2)))
    trainer.fit()
    rule = trainer.rules.rules["weight_transport"]
    # epoch 1: 1 initial + 1 scheduled; 2 training batches per epoch, one phase before each
    assert rule.phases_done == 2 + 2 * 2
    assert rule.batches_seen == 4
    assert not any(trainer.host.read_weights(b).any() for b in rule.pairs)  # off again after every phase


def _wt_netlist(tmp_path, mode, **train):
    nl = load_netlist("netlists/wt_stdp_bss2.yaml")
    t = dict(nl.train)
    opts = dict(t["options"]["weight_transport"], mode=mode, initial_phases=2, phases_per_epoch=1,
                phase_duration=200.0, period=100.0, phase_batch=4, calibration_batch=4,
                calibration_duration=300.0)
    t.update(options={"weight_transport": opts}, train_size=64, test_size=64, epochs=1, batch_size=32,
             test_batch_size=64, checkpoint=str(tmp_path / "ck"), **train)
    return nl.replace(train=t)


def test_bad_options_are_refused_with_the_rule_named(tmp_path):
    nl = _wt_netlist(tmp_path, "stdp_alignment")
    host = HostInterface(nl)
    for bad, words in (({"mode": "copy"}, "mode"), ({"feedback": {"h2_h1": "in_h1"}}, "does not run back"),
                       ({"feedback": {"nope": "h1_h2"}}, "unknown projection"),
                       ({"noise": {"h1": "bg_h2"}}, "channels"), ({"loss": "hinge"}, "loss"),
                       ({"gradient": "exact"}, "gradient"), ({"center": "rows"}, "center"),
                       ({"normalize": "pre"}, "normalize"), ({"phases_per_epoch": [2, -1]}, "phases_per_epoch"),
                       ({"phases_per_epoch": []}, "phases_per_epoch"), ({"phase_every": 1.5}, "phase_every")):
        opts = dict(nl.train["options"]["weight_transport"], **bad)
        rules = RuleSet(["weight_transport"], host=host, train=nl.train, options={"weight_transport": opts}, seed=0)
        with pytest.raises(RuleError, match=words) as err:
            rules.call("chipctl_configure")
        assert "weight_transport" in str(err.value)


@pytest.mark.parametrize("gradient", ["adjoint", "activation"])
def test_hidden_updates_use_the_feedback_weights_not_the_forward_ones(tmp_path, gradient):
    trainer = Trainer(_wt_netlist(tmp_path, "feedback_alignment"))
    rule = trainer.rules.rules["weight_transport"]
    ctx = trainer.rules.contexts["weight_transport"]
    ctx.options["gradient"] = gradient
    # the netlist's outputs are silent before training (zero-mean W): the adjoint needs them to fire
    trainer.host.write_weights("h2_out", np.clip(np.abs(trainer.host.read_weights("h2_out")) + 0.3, 0, 1))
    x, y = trainer.x_train[:32], trainer.y_train[:32]
    batch = trainer._batch(trainer.x_train, trainer.y_train, np.arange(32), training=True)
    result = trainer.host.run(batch.inputs, batch=32)
    assert result.spikes["out"].counts().sum() > 0
    g1 = rule.chipctl_gradients(ctx, batch, result, [])
    assert set(g1.weights) == {"in_h1", "h1_h2", "h2_out"}
    assert np.abs(g1.weights["in_h1"]).sum() > 0 and np.abs(g1.weights["h1_h2"]).sum() > 0
    rule.b_chip = {b: -v for b, v in rule.b_chip.items()}  # flip B: the hidden gradients flip, the top one stays
    g2 = rule.chipctl_gradients(ctx, batch, result, [])
    np.testing.assert_allclose(g2.weights["h2_out"], g1.weights["h2_out"])
    np.testing.assert_allclose(g2.weights["h1_h2"], -g1.weights["h1_h2"])
    np.testing.assert_allclose(g2.weights["in_h1"], g1.weights["in_h1"])  # two flips


def test_backprop_mode_copies_the_forward_weights(tmp_path):
    trainer = Trainer(_wt_netlist(tmp_path, "backprop"))
    trainer.fit()
    rule = trainer.rules.rules["weight_transport"]
    for angle in rule.angles(trainer.host).values():
        assert angle < 3.0  # Wᵀ through the 6-bit synapses of another neuron's full scale
    assert not any(trainer.host.read_weights(b).any() for b in rule.pairs)


def test_state_survives_a_checkpoint_and_train_reports_angles(tmp_path):
    trainer = Trainer(_wt_netlist(tmp_path, "stdp_alignment"))
    trainer.fit()
    rule = trainer.rules.rules["weight_transport"]
    assert rule.phases_done == 3
    again = Trainer(_wt_netlist(tmp_path, "stdp_alignment"))
    again.resume()
    other = again.rules.rules["weight_transport"]
    assert other.phases_done == 3
    for b in rule.pairs:
        np.testing.assert_array_equal(other.shadow[b], rule.shadow[b])
        np.testing.assert_array_equal(other.b_chip[b], rule.b_chip[b])
        np.testing.assert_array_equal(other.gain[b], rule.gain[b])
        np.testing.assert_array_equal(other.tau_gain[b], rule.tau_gain[b])
    assert rule.calibrated and other.calibrated
    assert any((rule.gain[b] != 1.0).any() for b in rule.pairs)  # the calibration measured something
    assert other.rng.bit_generator.state == rule.rng.bit_generator.state
    assert trainer.history[-1]["angles_deg"] == rule.angles(trainer.host)


def test_train_json_reports_angles(tmp_path):
    path = tmp_path / "wt.yaml"
    text = open("netlists/wt_stdp_bss2.yaml").read()
    for key, value in (("epochs", 1), ("train_size", 32), ("test_size", 32), ("batch_size", 32)):
        text, n = re.subn(rf"\n  {key}: \d+\n", f"\n  {key}: {value}\n", text)
        assert n == 1, key
    text = text.replace("noise: {h1: bg_h1, h2: bg_h2, out: bg_out}",
                        "noise: {h1: bg_h1, h2: bg_h2, out: bg_out}\n      initial_phases: 1\n"
                        "      phase_duration: 200\n      phase_batch: 2\n"
                        "      calibration_batch: 2\n      calibration_duration: 300")
    text, n = re.subn(r"\n      phases_per_epoch: .*\n", "\n      phases_per_epoch: 0\n", text)
    assert n == 1
    path.write_text(text)
    (tmp_path / "yinyang_batch_0to12.npz").write_bytes(open("netlists/yinyang_batch_0to12.npz", "rb").read())
    result = CliRunner().invoke(app, ["train", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["angles_deg"]) == {"h1_h2", "h2_out"}
    assert all(0.0 <= a <= 180.0 for a in out["angles_deg"].values())
    assert "test_accuracy" in out


def test_the_three_mode_netlists_differ_only_in_the_mode_and_fas_fixed_b():
    """A fair comparison: the same network, data, optimizer and rule options in all three."""
    nets = {m: load_netlist(f"netlists/wt_{m}_bss2.yaml") for m in ("bp", "fa", "stdp")}
    opts = {m: dict(nl.train["options"]["weight_transport"]) for m, nl in nets.items()}
    assert {o.pop("mode") for o in opts.values()} == {"backprop", "feedback_alignment", "stdp_alignment"}
    assert opts["bp"] == opts["fa"] == opts["stdp"]
    strip = lambda nl: {k: v for k, v in nl.train.items() if k != "options"}  # noqa: E731
    assert strip(nets["bp"]) == strip(nets["fa"]) == strip(nets["stdp"])
    assert repr(nets["bp"].projections) == repr(nets["stdp"].projections)
    assert repr(nets["bp"].populations) == repr(nets["fa"].populations) == repr(nets["stdp"].populations)
    assert repr(nets["bp"].inputs) == repr(nets["fa"].inputs) == repr(nets["stdp"].inputs)


def test_the_docs_page_matches_the_rule_and_the_netlists():
    """docs/weight-transport.md: its train block is the STDP netlist's, its commands name files
    that exist, every option it names is one of the rule's and the defaults it states are the
    rule's."""
    text = open("docs/weight-transport.md", encoding="utf-8").read()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    assert block in open("netlists/wt_stdp_bss2.yaml", encoding="utf-8").read()
    commands = re.search(r"```\n(chipctl train.*?)```", text, re.S).group(1).strip().splitlines()
    assert len(commands) == 4
    for line in commands:
        for word in line.split():
            if word.endswith((".yaml", ".py")):
                assert open(word), word
    defaults = {k: v[0] for k, v in WeightTransport.options.items()}
    table = text[text.index("## Options"):text.index("## Measured")]
    for row in table.splitlines()[4:]:
        if not row.startswith("| `"):
            continue
        names = re.findall(r"`(\w+)`", row.split("|")[1])
        assert names and all(n in defaults for n in names), row
        stated = [v.strip() for v in row.split("|")[2].split(",")]
        if "required" in row.split("|")[2]:
            continue
        for name, value in zip(names, stated):
            number = re.match(r"[−-]?[\d.]+", value)
            if number:
                assert float(number.group().replace("−", "-")) == float(defaults[name]), (name, value)
            else:
                assert value.strip("`") == str(defaults[name]).lower(), (name, value)


def test_the_sensor_yardstick_is_what_ideal_sensors_hold():
    """``nominal_pairs`` (from spikes alone) against the sensors of the ideal profile, which are
    exact: the calibration's yardstick is the chip's pairing rule."""
    from chip.events import SpikeEvents
    from chip.netlist import Record
    from rules.weight_transport.rule import nominal_pairs

    host = HostInterface(load_netlist_text(PAIR_NETLIST.replace("profile: bss2", "profile: ideal")))
    rng = np.random.default_rng(3)
    inputs = {}
    for name, size in (("bg_a", 12), ("bg_b", 8)):
        n = rng.poisson(0.3 * 200.0, size=(2, size))
        b = np.repeat(np.repeat(np.arange(2), size), n.ravel())
        k = np.repeat(np.tile(np.arange(size), 2), n.ravel())
        inputs[name] = SpikeEvents.from_arrays(b, k, rng.uniform(0, 200.0, len(b)), size, 2)
    res = host.run(inputs, batch=2, duration_us=200.0, record=Record(spikes=("a", "b"), correlations=("fb",)))
    corr = res.correlations["fb"]
    sensed = (corr.causal + corr.acausal).sum(axis=0)
    info = host.projection("fb")
    nominal = nominal_pairs(res.spikes["b"], res.spikes["a"], info.delay_us, host.profile.correlation_tau_us)
    assert sensed.sum() > 50
    np.testing.assert_allclose(nominal, sensed, rtol=0.02, atol=0.05)


def _true_sensor_spread(host, name):
    """The die's sensor gains of a projection (a test may look inside; the rule may not)."""
    proj = host.mapped.projections[name]
    ids = np.where(proj.exc_synapse >= 0, proj.exc_synapse, proj.inh_synapse)
    g, h = host.die.correlation_spread(ids)
    gain, tau = np.ones(proj.shape), np.ones(proj.shape)
    gain[proj.pre_index, proj.post_index] = g
    tau[proj.pre_index, proj.post_index] = h
    return gain, tau


def test_the_sensor_calibration_measures_each_sensors_spread():
    """The dedicated calibration (scheduled pairings at three lags, read through the CADC with its
    noise) recovers each feedback sensor's amplitude gain on bss2 from the host's view alone;
    an uncalibrated rule divides by nothing."""
    host, rule, ctx = _aligned_rule()
    assert (rule.gain["fb"] == 1.0).all()
    summary = rule.calibrate(ctx)
    gain, tau = _true_sensor_spread(host, "fb")
    est = np.log(rule.gain["fb"])
    assert np.corrcoef(np.log(gain).ravel(), est.ravel())[0, 1] > 0.9
    assert np.sqrt(np.mean((est - np.log(gain)) ** 2)) < 0.15  # the spread itself is 0.35
    assert np.corrcoef(np.log(tau).ravel(), np.log(rule.tau_gain["fb"]).ravel())[0, 1] > 0.6
    assert 0.8 < summary["fb"]["median_gain"] < 1.25
    assert not host.read_weights("fb").any()  # feedback synapses off again


def test_sensor_spread_fit_recovers_known_gains():
    from rules.weight_transport.rule import fit_sensor_spread

    grid = np.exp(np.linspace(-1.2, 1.2, 49))
    lags = np.array([0.5, 3.0, 8.0])
    g = np.array([[0.5, 1.0, 2.0]])
    h = np.array([[1.0, grid[10], grid[40]]])
    yard = [100.0 * np.exp(-lag / (5.0 * grid))[:, None, None] * np.ones((1, 1, 3)) for lag in lags]
    sensed = [100.0 * g * np.exp(-lag / (5.0 * h)) for lag in lags]
    gain, tau = fit_sensor_spread(sensed, yard, grid)
    np.testing.assert_allclose(gain, g, rtol=1e-9)
    np.testing.assert_allclose(tau, h, rtol=1e-9)


def test_adjoint_revive_raises_a_silent_correct_outputs_weights(tmp_path):
    """Silent outputs get no adjoint gradient; ``revive`` pushes the correct neuron's weights up from
    the hidden neurons that fired (a heuristic, EventProp's), and nothing else."""
    trainer = Trainer(_wt_netlist(tmp_path, "feedback_alignment"))
    rule = trainer.rules.rules["weight_transport"]
    ctx = trainer.rules.contexts["weight_transport"]
    ctx.options["gradient"] = "adjoint"
    trainer.host.write_weights("h2_out", np.zeros_like(trainer.host.read_weights("h2_out")))
    batch = trainer._batch(trainer.x_train, trainer.y_train, np.arange(32), training=True)
    result = trainer.host.run(batch.inputs, batch=32)
    assert result.spikes["out"].counts().sum() == 0 and result.spikes["h2"].counts().sum() > 0
    ctx.options["revive"] = 0.0
    assert not rule.chipctl_gradients(ctx, batch, result, []).weights["h2_out"].any()
    ctx.options["revive"] = 0.5
    g = rule.chipctl_gradients(ctx, batch, result, []).weights["h2_out"]
    active = (result.spikes["h2"].counts() > 0).astype(float)
    want = np.zeros((32, 3))
    want[np.arange(32), batch.labels] = 1.0
    np.testing.assert_allclose(g, -0.5 * active.T @ want / 32)
    assert (g <= 0).all() and g.min() < 0
