"""EventProp in the loop: its gradient against finite differences of the chip's loss, a small training
run that must learn, and checkpoints that resume to the same final weights."""

from __future__ import annotations

import numpy as np
import pytest

from chip.errors import RuleError
from chip.netlist import load_netlist, load_netlist_text
from rules import hookimpl
from rules.api import Batch
from rules.eventprop.adjoint import first_spike_loss
from rules.manager import RuleSet
from rules.training import Trainer

FD_NETLIST = """
name: eventprop_fd
duration: 40 us
chip:
  profile: ideal
  clock: 0.00001 ns      # a very fine clock: spike times are (almost) continuous
  step: 0.05 us
populations:
  hidden: {size: 5, params: {tau_mem: 12 us, tau_syn: 6 us, tau_ref: 0 us}}
  out: {size: 3, params: {tau_mem: 12 us, tau_syn: 6 us, tau_ref: 0 us}}
inputs:
  in: {size: 4, type: spikes, times: [[1 us], [3 us], [6 us], [2 us]]}
projections:
  in_hidden: {pre: in, post: hidden, sign: signed, weights: {array: WEIGHTS1}}
  hidden_out: {pre: hidden, post: out, sign: signed, delay: 0.05 us, weights: {array: WEIGHTS2}}
train: {input: in, output: out, rules: [eventprop]}
"""


def _fd_host():
    rng = np.random.default_rng(5)
    w1 = rng.uniform(1.0, 3.0, (4, 5))
    w2 = rng.uniform(0.5, 2.0, (5, 3))
    text = FD_NETLIST.replace("WEIGHTS1", str(w1.round(4).tolist())).replace("WEIGHTS2", str(w2.round(4).tolist()))
    nl = load_netlist_text(text)
    from chip.host import HostInterface

    return nl, HostInterface(nl)


@pytest.mark.parametrize("loss", ["cross_entropy", "target_time"])
def test_eventprop_gradient_matches_finite_differences_on_the_ideal_chip(loss):
    nl, host = _fd_host()
    rules = RuleSet(["eventprop"], host=host, train=nl.train,
                    options={"eventprop": {"tau0": 3.0, "tau1": 20.0, "alpha": 0.01, "min_drive": 1e-6,
                                           "loss": loss}}, seed=0)
    rules.call("chipctl_configure")
    rule = rules.rules["eventprop"]
    labels = np.array([1])
    batch = Batch(inputs={}, labels=labels, indices=np.array([0]))

    def loss_of(result):
        first = result.spikes["out"].first_spike_times()
        if loss == "target_time":
            return rule._target_time_loss(first, labels, result.duration_us)[0]
        return first_spike_loss(first, labels, rule.tau0, rule.tau1, rule.alpha, result.duration_us)[0]

    result = host.run()
    counts = {p: result.spikes[p].counts() for p in ("hidden", "out")}
    assert counts["out"].min() >= 1 and counts["hidden"].min() >= 1, counts
    grads = rules.call("chipctl_gradients", batch=batch, result=result, loss_terms=[])["eventprop"].weights

    eps = 1e-3  # loss changes ~1e-5: far above the 1e-8 µs clock quantization of spike times
    checked = 0
    for proj in ("in_hidden", "hidden_out"):
        base = host.read_weights(proj)
        for i, j in np.ndindex(base.shape):
            losses = []
            for sign in (1, -1):
                w = base.copy()
                w[i, j] += sign * eps
                host.write_weights(proj, w)
                r = host.run()
                same = all(np.array_equal(r.spikes[p].counts(), counts[p]) for p in counts)
                losses.append(loss_of(r) if same else None)
            host.write_weights(proj, base)
            if None in losses:
                continue  # the perturbation added or removed a spike: no derivative there
            fd = (losses[0] - losses[1]) / (2 * eps)
            g = grads[proj][i, j]
            assert abs(g - fd) <= 1e-3 * abs(fd) + 1e-6, (proj, i, j, g, fd)
            checked += 1
    assert checked >= 25


def _small_yinyang(tmp_path, profile="ideal", epochs=2, train_size=320):
    nl = load_netlist("netlists/yinyang_ideal.yaml", profile=profile)
    train = dict(nl.train)
    train.update(train_size=train_size, test_size=200, epochs=epochs, batch_size=32, test_batch_size=200,
                 checkpoint=str(tmp_path / "ck"))
    return nl.replace(train=train)


def test_small_training_run_learns(tmp_path):
    nl = _small_yinyang(tmp_path, epochs=3, train_size=640)
    trainer = Trainer(nl)
    before = trainer.evaluate("test")
    metrics = trainer.fit()
    assert metrics["test_accuracy"] >= 0.55, metrics["history"]
    assert metrics["test_accuracy"] > before + 0.1, (before, metrics["history"])


def _with_optimizer(nl, **changes):
    train = dict(nl.train)
    train["optimizer"] = {**(train.get("optimizer") or {}), **changes}
    return nl.replace(train=train)


@pytest.mark.parametrize("ema", [None, 0.9])
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path, ema):
    def small(path):
        return _with_optimizer(_small_yinyang(path, epochs=2, train_size=96), ema=ema)

    full = Trainer(small(tmp_path / "a"))
    full.fit()

    class Killed(Exception):
        pass

    first = Trainer(small(tmp_path / "b"))
    original = first.train_step
    calls = {"n": 0}

    def dying_step(batch):
        calls["n"] += 1
        if calls["n"] > 3:  # 3 batches per epoch: die in the middle of the second epoch
            raise Killed()
        return original(batch)

    first.train_step = dying_step
    with pytest.raises(Killed):
        first.fit()
    resumed = Trainer(small(tmp_path / "b"))
    resumed.resume()
    assert resumed.epoch == 1
    resumed.fit()
    for proj in ("in_hidden", "hidden_out"):
        np.testing.assert_array_equal(resumed.host.read_weights(proj), full.host.read_weights(proj))
        np.testing.assert_array_equal(resumed.master[f"w:{proj}"], full.master[f"w:{proj}"])
    def without_wall_time(history):
        return [{k: v for k, v in h.items() if k != "epoch_wall_s"} for h in history]

    assert without_wall_time(resumed.history) == without_wall_time(full.history)


class _Exploding:
    name = "exploding"
    description = "writes weights, then raises"

    @hookimpl
    def chipctl_run_finished(self, context, batch, result):
        w = context.host.read_weights("in_hidden")
        context.host.write_weights("in_hidden", w + 0.5)
        raise ValueError("boom")


def test_a_raising_rule_is_named_and_its_writes_roll_back(tmp_path, monkeypatch):
    import sys
    import types

    module = types.ModuleType("exploding_rule_for_test")
    module.Exploding = _Exploding
    monkeypatch.setitem(sys.modules, "exploding_rule_for_test", module)
    trainer = Trainer(_small_yinyang(tmp_path, epochs=1, train_size=32),
                      extra_rules=("exploding_rule_for_test:Exploding",))
    before = {p: trainer.host.read_weights(p) for p in ("in_hidden", "hidden_out")}
    runs_before = trainer.host.runs_done
    with pytest.raises(RuleError, match="exploding.*chipctl_run_finished.*boom"):
        trainer.fit()
    for p, w in before.items():
        np.testing.assert_array_equal(trainer.host.read_weights(p), w)
    assert trainer.host.runs_done == runs_before
    assert trainer.optimizer.t == 0


def _tiny_netlist_file(tmp_path, checkpoint):
    import shutil

    import re

    text = open("netlists/yinyang_ideal.yaml").read()
    text = re.sub(r"\n  epochs: \d+\n", "\n  epochs: 4\n", text)
    text = re.sub(r"\n  checkpoint: \S+\n", f"\n  checkpoint: {checkpoint}\n", text)
    text = re.sub(r"\n  batch_size: \d+\n", "\n  batch_size: 32\n  train_size: 96\n  test_size: 64\n", text)
    assert "epochs: 4" in text and str(checkpoint) in text and "train_size: 96" in text
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    for npz in ("yinyang_batch.npz", "yinyang_batch_0to12.npz"):
        shutil.copy(f"netlists/{npz}", tmp_path / npz)
    return path


def test_sigkilled_training_resumes_to_the_same_weights(tmp_path):
    """A real kill (SIGKILL, no chance to clean up) after the first checkpoint, then --resume."""
    import signal
    import subprocess
    import sys
    import time

    from rules.training.checkpoints import CHECKPOINT_FILE, load_checkpoint

    cmd = [sys.executable, "-c", "import cli; cli.app()", "train"]
    (tmp_path / "straight").mkdir()
    straight = _tiny_netlist_file(tmp_path / "straight", tmp_path / "straight_ck")
    subprocess.run(cmd + [str(straight)], check=True, capture_output=True, cwd=".")

    (tmp_path / "killed").mkdir()
    killed = _tiny_netlist_file(tmp_path / "killed", tmp_path / "killed_ck")
    proc = subprocess.Popen(cmd + [str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=".")
    deadline = time.time() + 120
    while not (tmp_path / "killed_ck" / CHECKPOINT_FILE).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(tmp_path / "killed_ck")  # whatever epoch it had reached, it is whole
    assert 1 <= int(saved["epoch"]) <= 4
    done = subprocess.run(cmd + [str(killed), "--resume", "--json"], capture_output=True, text=True, cwd=".")
    assert done.returncode == 0, done.stderr
    a = load_checkpoint(tmp_path / "straight_ck")
    b = load_checkpoint(tmp_path / "killed_ck")
    assert int(a["epoch"]) == int(b["epoch"]) == 4
    for proj in ("in_hidden", "hidden_out"):
        for key in ("weights", "exc_codes", "inh_codes"):
            np.testing.assert_array_equal(a["chip"]["projections"][proj][key], b["chip"]["projections"][proj][key])
    assert int(a["chip"]["runs_done"]) == int(b["chip"]["runs_done"])


@pytest.mark.parametrize("bump", [0.0, 0.5])
def test_revive_hidden_raises_only_the_weights_of_neurons_silent_in_the_batch(tmp_path, bump):
    """EventProp's gradient never reaches a hidden neuron that fired in no sample of the batch; the
    ``revive_hidden`` heuristic (weight bumping) raises its input weights, and touches nothing else."""
    nl = _small_yinyang(tmp_path, epochs=1, train_size=32)
    train = dict(nl.train)
    train["options"] = {"eventprop": {**nl.train["options"]["eventprop"], "revive_hidden": bump}}
    trainer = Trainer(nl.replace(train=train))
    w = trainer.host.read_weights("in_hidden")
    w[:, :10] = -0.5  # neurons 0-9 cannot fire
    trainer.host.write_weights("in_hidden", w)
    before = trainer.host.read_weights("in_hidden")
    idx = np.arange(32)
    trainer.train_step(trainer._batch(trainer.x_train, trainer.y_train, idx, training=True))
    after = trainer.host.read_weights("in_hidden")
    rise = after[:, :10] - before[:, :10]
    if bump:
        assert np.all(rise > 0), rise  # every input fires in every sample: every weight rises
    else:
        np.testing.assert_array_equal(rise, 0.0)  # exact gradient: nothing reaches them


def test_revive_hidden_must_not_be_negative(tmp_path):
    nl = _small_yinyang(tmp_path, epochs=1, train_size=32)
    train = dict(nl.train)
    train["options"] = {"eventprop": {**nl.train["options"]["eventprop"], "revive_hidden": -1}}
    with pytest.raises(RuleError, match="revive_hidden"):
        Trainer(nl.replace(train=train))


@pytest.mark.parametrize("extra, message", [({"margin": -0.1}, "margin must be a time >= 0"),
                                            ({"margin": "wide"}, "margin must be a time >= 0"),
                                            ({"margin": 0.3, "loss": "target_time"}, "target_time loss has none")])
def test_margin_option_is_checked(tmp_path, extra, message):
    nl = _small_yinyang(tmp_path, epochs=1, train_size=32)
    train = dict(nl.train)
    train["options"] = {"eventprop": {**nl.train["options"]["eventprop"], **extra}}
    with pytest.raises(RuleError, match=message):
        Trainer(nl.replace(train=train))


def test_margin_option_reaches_the_loss(tmp_path):
    """The netlist's margin is the one the rule's loss uses: the same batch, a larger loss."""
    losses = []
    for margin in (0.0, 1.0):
        nl = _small_yinyang(tmp_path, epochs=1, train_size=32)
        train = dict(nl.train)
        train["options"] = {"eventprop": {**nl.train["options"]["eventprop"], "margin": margin}}
        trainer = Trainer(nl.replace(train=train))
        assert trainer.rules.rules["eventprop"].margin == margin
        idx = np.arange(32)
        losses.append(trainer.train_step(trainer._batch(trainer.x_train, trainer.y_train, idx, training=True))["loss"])
    assert losses[1] > losses[0]


def test_adam_clip_bounds_each_gradient_element_before_the_moments():
    """``train.optimizer.clip`` clips every element of a gradient to [-clip, clip] before Adam's
    moments (optax.clip); without it the gradient enters unchanged."""
    from rules.training.optimizer import Adam

    g = {"w": np.array([1e-9, -1e-9, 5.0, -3.0, 0.0])}
    p = {"w": np.zeros(5)}
    _, (m, v, _) = Adam(0.1, clip=1e-8).step(p, g)
    np.testing.assert_allclose(m["w"], 0.1 * np.array([1e-9, -1e-9, 1e-8, -1e-8, 0.0]))
    _, (m, v, _) = Adam(0.1).step(p, g)
    np.testing.assert_allclose(m["w"], 0.1 * g["w"])


def test_optimizer_clip_is_read_from_the_netlist(tmp_path):
    nl = _small_yinyang(tmp_path, epochs=1, train_size=32)
    train = dict(nl.train)
    train["optimizer"] = {**(train.get("optimizer") or {}), "clip": 0.01}
    assert Trainer(nl.replace(train=train)).optimizer.clip == 0.01
    assert Trainer(nl).optimizer.clip is None  # the shipped recipe does not clip


def test_one_spike_per_neuron_is_not_bursting(tmp_path):
    # the Yin-Yang netlists hold every neuron refractory for longer than the run: each hidden neuron
    # fires at most once per sample, and firing that once is health, not bursting
    trainer = Trainer(_small_yinyang(tmp_path, epochs=1, train_size=64))
    trainer.evaluate("test")
    health = trainer.health
    assert health["dead_fraction"] < 0.5, health
    assert health["bursting_fraction"] == 0.0, health


def test_weight_averaging_tests_the_averaged_weights_and_leaves_training_alone(tmp_path):
    """``train.optimizer.ema``: training follows the same master weights as without it; every test
    pass and the chip after the last epoch use the moving average, written quantized."""
    plain = Trainer(_with_optimizer(_small_yinyang(tmp_path / "a", epochs=2, train_size=128), ema=None))
    plain.fit()
    assert not plain.average
    avg = Trainer(_with_optimizer(_small_yinyang(tmp_path / "b", epochs=2, train_size=128), ema=0.8))
    avg.fit()
    for proj in ("in_hidden", "hidden_out"):
        key = f"w:{proj}"
        np.testing.assert_array_equal(avg.master[key], plain.master[key])  # the trajectory is untouched
        assert not np.allclose(avg.average[key], avg.master[key])
        # the chip holds the average, quantized as any write (the ideal chip keeps floats)
        fs = avg.host.read_params(avg.host.projection(proj).post, "weight_full_scale")[None, :]
        np.testing.assert_allclose(avg.host.read_weights(proj), np.clip(avg.average[key], -fs, fs))
    # the reported test accuracy is the one of the averaged weights the chip now holds
    assert avg.history[-1]["test_accuracy"] == avg.evaluate("test")
    nl = _small_yinyang(tmp_path / "c", epochs=1, train_size=32)
    train = dict(nl.train)
    train["optimizer"] = {k: v for k, v in train["optimizer"].items() if k != "ema"}
    assert Trainer(nl.replace(train=train)).config.ema is None  # off unless the netlist asks


@pytest.mark.parametrize("bad", [1.0, -0.1, "x"])
def test_weight_averaging_decay_outside_0_1_is_refused(tmp_path, bad):
    from chip.errors import NetlistError

    nl = _with_optimizer(_small_yinyang(tmp_path, epochs=1, train_size=32), ema=bad)
    with pytest.raises(NetlistError, match="train.optimizer.ema"):
        Trainer(nl)


def _saturation_step(tmp_path, profile, saturation, monkeypatch):
    nl = _small_yinyang(tmp_path, profile=profile, epochs=1, train_size=32)
    if profile == "bss2":  # the ideal netlist's operating point is beyond bss2's weight range
        bss2 = load_netlist("netlists/yinyang_bss2.yaml")
        nl = bss2.replace(train={**bss2.train, **{k: nl.train[k] for k in (
            "train_size", "test_size", "epochs", "batch_size", "test_batch_size", "checkpoint")}})
    train = dict(nl.train)
    train["options"] = {"eventprop": {**nl.train["options"]["eventprop"], "saturation": saturation}}
    trainer = Trainer(nl.replace(train=train))
    import rules.eventprop.rule as rule_module
    seen = []
    plain = rule_module.eventprop_gradients
    monkeypatch.setattr(rule_module, "eventprop_gradients", lambda *a, **k: seen.append(plain(*a, **k)) or seen[-1])
    idx = np.arange(32)
    trainer.train_step(trainer._batch(trainer.x_train, trainer.y_train, idx, training=True))
    return trainer, seen[0]


def test_saturation_profile_on_ideal_is_linear(tmp_path, monkeypatch):
    """``ideal``'s inputs do not saturate: ``saturation: profile`` is the linear model, bit for bit."""
    trainer, lin = _saturation_step(tmp_path, "ideal", "linear", monkeypatch)
    assert trainer.rules.rules["eventprop"].saturation is None
    trainer, prof = _saturation_step(tmp_path, "ideal", "profile", monkeypatch)
    assert trainer.rules.rules["eventprop"].saturation is None
    assert len(lin) == len(prof) == 2
    for a, b in zip(lin, prof):
        np.testing.assert_array_equal(a, b)


def test_saturation_profile_takes_the_profiles_i_sat(tmp_path, monkeypatch):
    """On ``bss2`` the option takes the profile's documented I_sat and changes the gradient."""
    trainer, lin = _saturation_step(tmp_path, "bss2", "linear", monkeypatch)
    assert trainer.rules.rules["eventprop"].saturation is None
    trainer, prof = _saturation_step(tmp_path, "bss2", "profile", monkeypatch)
    profile = trainer.host.profile
    assert trainer.rules.rules["eventprop"].saturation == (profile.synaptic_saturation_exc,
                                                           profile.synaptic_saturation_inh) == (12.0, 4.0)
    # the same chip, weights and batch: the saturating model's gradient is another one
    assert all(np.abs(a - b).max() > 0.05 * np.abs(a).max() for a, b in zip(lin, prof))


def test_saturation_option_is_checked(tmp_path):
    nl = _small_yinyang(tmp_path, epochs=1, train_size=32)
    train = dict(nl.train)
    train["options"] = {"eventprop": {**nl.train["options"]["eventprop"], "saturation": "tanh"}}
    with pytest.raises(RuleError, match="saturation must be linear or profile"):
        Trainer(nl.replace(train=train))
