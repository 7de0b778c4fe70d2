"""Rule plugins end to end: the STDP example rule, entry points, failing and ad hoc rules, the docs.

Everything here goes through the public paths a rule author uses: ``rules.manager.RuleSet``,
``rules.training.Trainer``, the ``chipctl`` CLI (in a subprocess), ``chip.host.HostInterface``.
Nothing is pip-installed: the third-party entry point is declared by a ``*.dist-info`` directory
in ``tmp_path`` that a subprocess finds on its ``PYTHONPATH``.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chip.errors import RuleError
from chip.host import HostInterface
from chip.netlist import Record
from chip.netlist import load_netlist, load_netlist_text
from rules.api import Batch, Gradients, Rule, RunRequest
from rules.training.checkpoints import CHECKPOINT_FILE, load_checkpoint
from rules.hookspecs import hookimpl
from rules.manager import RuleSet
from rules.training import Trainer

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = REPO / "examples" / "stdp_rule"
EXAMPLE_FILE = EXAMPLE_DIR / "chipctl_pair_stdp.py"
DOCS = REPO / "docs"

# Two pre channels onto two post neurons (one-to-one, weak), plus a strong "teacher" input that
# makes each post neuron fire: post 0 fires ~2.7 µs AFTER its pre spike (causal pairing), post 1
# ~5 µs BEFORE its pre spike (anti-causal). The pairing repeats every 30 µs, 20 times: on bss2 a
# pair lowers a sensor by half a CADC code, so a rule needs many of them to see anything.
STDP_PAIRINGS = 20


def _every_30_us(first_us: float) -> str:
    return "[" + ", ".join(f"{first_us + 30 * k:g} us" for k in range(STDP_PAIRINGS)) + "]"


STDP_NETLIST = f"""
name: stdp_pairs
duration: {30 * STDP_PAIRINGS} us
batch: 2
chip: {{{{profile: {{profile}}}}}}
populations:
  post: {{{{size: 2, params: {{{{tau_mem: 5 us, tau_syn: 2 us, tau_ref: 10 us, v_threshold: 0.2, weight_full_scale: 2}}}}}}}}
inputs:
  pre:   {{{{size: 2, type: spikes, times: [{_every_30_us(10)}, {_every_30_us(16)}]}}}}
  drive: {{{{size: 2, type: spikes, times: [{_every_30_us(12)}, {_every_30_us(10)}]}}}}
projections:
  plastic: {{{{pre: pre, post: post, connectivity: one_to_one, weights: 0.5}}}}
  teacher: {{{{pre: drive, post: post, connectivity: one_to_one, weights: 2}}}}
"""

# Yin-Yang with duplicate 1 (5 input channels) onto 3 output neurons, one projection, ideal chip.
TRAIN_NETLIST = """
name: yinyang_rules
duration: 30 us
chip: {{profile: ideal, step: 0.2 us}}
populations:
  out: {{size: 3, params: {{tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 4}}}}
inputs:
  in: {{size: 5, type: spikes, times: [[], [], [], [], []]}}
projections:
  in_out: {{pre: in, post: out, weights: {{uniform: {{low: 0.5, high: 1.5}}, seed: 3}}}}
train:
  task: yinyang
  input: in
  output: out
  rules: {rules}
  options:
    pair_stdp: {{projection: in_out, eta: 0.05}}
    exploding: {{fail_epoch: {fail_epoch}}}
  encoding: {{duplicate: 1}}
  epochs: {epochs}
  batch_size: 32
  train_size: {train_size}
  test_size: 32
  seed: 0
"""


def train_netlist_text(rules, *, epochs=1, train_size=64, fail_epoch=0) -> str:
    return TRAIN_NETLIST.format(rules=json.dumps(list(rules)), epochs=epochs, train_size=train_size,
                                fail_epoch=fail_epoch)


# ------------------------------------------------------------------------------ in-test rules
class ExplodingRule(Rule):
    """Writes weights in chipctl_run_finished, then raises: its batch must be rolled back."""

    name = "exploding"
    description = "Test rule: writes, then raises ValueError."
    options = {"projection": ("in_out", "projection to write"),
               "fail_epoch": (0, "raise from this epoch on (earlier epochs write and succeed)")}

    @hookimpl
    def chipctl_run_finished(self, context, batch, result):
        host, proj = context.host, context.options["projection"]
        host.write_weights(proj, host.read_weights(proj) + 0.25)
        if context.epoch >= context.options["fail_epoch"]:
            raise ValueError("boom after a write")


class Recorder(Rule):
    """Records the hooks it sees, asks for a timer, keeps a little state for checkpoints."""

    name = "recorder"
    description = "Test rule: records hook calls."
    options = {"timer_us": (10.0, "plasticity timer period")}

    def __init__(self):
        self.calls: list[str] = []
        self.loaded = None

    @hookimpl
    def chipctl_configure(self, context):
        self.calls.append("chipctl_configure")

    @hookimpl
    def chipctl_epoch_started(self, context, epoch):
        self.calls.append("chipctl_epoch_started")

    @hookimpl
    def chipctl_run_request(self, context, batch):
        self.calls.append("chipctl_run_request")
        return RunRequest(timer_us=context.options["timer_us"])

    @hookimpl
    def chipctl_during_run(self, context, t_us):
        self.calls.append("chipctl_during_run")

    @hookimpl
    def chipctl_run_finished(self, context, batch, result):
        self.calls.append("chipctl_run_finished")

    @hookimpl
    def chipctl_loss_terms(self, context, batch, result):
        self.calls.append("chipctl_loss_terms")

    @hookimpl
    def chipctl_gradients(self, context, batch, result, loss_terms):
        self.calls.append("chipctl_gradients")

    @hookimpl
    def chipctl_after_update(self, context, batch, written):
        self.calls.append("chipctl_after_update")

    @hookimpl
    def chipctl_epoch_finished(self, context, epoch, metrics):
        self.calls.append("chipctl_epoch_finished")
        return {"recorder_calls": len(self.calls)}

    @hookimpl
    def chipctl_state(self, context):
        self.calls.append("chipctl_state")
        return {"calls": len(self.calls), "trace": np.arange(3.0)}

    @hookimpl
    def chipctl_load_state(self, context, state):
        self.loaded = state


# ------------------------------------------------------------------------------ helpers
def _env(*paths) -> dict:
    env = dict(os.environ)
    env.pop("CHIPCTL_PROGRESS", None)
    parts = [str(p) for p in paths] + [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _chipctl(*args, env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import cli; cli.app()", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _fake_install(site: Path) -> Path:
    """What `pip install` of examples/stdp_rule leaves for importlib.metadata: a dist-info
    directory declaring the entry point (the module itself comes from EXAMPLE_DIR)."""
    info = site / "chipctl_pair_stdp-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chipctl-pair-stdp\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[chipctl.rules]\npair_stdp = chipctl_pair_stdp:PairSTDP\n")
    return site


def _expected_correlations(result, host, projection):
    """Causal / acausal sensor sums recomputed from the spike times the run returned: each post
    spike pairs with the latest pre arrival before it, each pre arrival with the latest post spike
    before it (nearest neighbours)."""
    info = host.projection(projection)
    tau = host.profile.correlation_tau_us
    causal = np.zeros((result.batch, *info.shape))
    acausal = np.zeros_like(causal)
    for b in range(result.batch):
        pre = result.inputs[info.pre].trains(b)
        post = result.spikes[info.post].trains(b)
        for i, j in zip(*np.nonzero(info.mask)):
            arrivals = pre[i] + info.delay_us[i]  # the sensor sees the event when it reaches the synapse
            for tp in post[j]:
                before = arrivals[arrivals < tp]
                causal[b, i, j] += np.exp(-(tp - before.max()) / tau) if len(before) else 0.0
            for ta in arrivals:
                before = post[j][post[j] < ta]
                acausal[b, i, j] += np.exp(-(ta - before.max()) / tau) if len(before) else 0.0
    return causal, acausal


# ------------------------------------------------------------------------------ 1. the example rule
@pytest.mark.parametrize("profile", ["ideal", "bss2"])
def test_pair_stdp_potentiates_causal_and_depresses_acausal(profile, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    host = HostInterface(load_netlist_text(STDP_NETLIST.format(profile=profile)))
    opts = {"projection": "plastic", "eta": 0.025, "a_plus": 1.0, "a_minus": 2.0}
    rules = RuleSet(["chipctl_pair_stdp:PairSTDP"], host=host, train={"input": "pre", "output": "post"},
                    options={"pair_stdp": opts}, seed=0)
    assert list(rules.rules) == ["pair_stdp"]
    assert rules.contexts["pair_stdp"].options == opts

    rules.call("chipctl_configure")
    batch = Batch(inputs={}, labels=np.zeros(2, dtype=np.int64), indices=np.arange(2))
    request = rules.call("chipctl_run_request", batch=batch)["pair_stdp"]
    assert request.correlations == ("plastic",)
    w0 = host.read_weights("plastic")
    result = host.run(batch=2, record=Record(spikes=("post",), correlations=request.correlations))
    rules.call("chipctl_run_finished", batch=batch, result=result)
    w1 = host.read_weights("plastic")

    # the pairing is what the netlist sets up: one post spike per pairing, 0 after its pre, 1 before
    for b in range(2):
        post = result.spikes["post"].trains(b)
        assert [len(t) for t in post] == [STDP_PAIRINGS, STDP_PAIRINGS]
        assert np.all((post[0] % 30 > 10.0) & (post[0] % 30 < 14.0))
        assert np.all((post[1] % 30 > 10.0) & (post[1] % 30 < 14.0))

    corr = result.correlations["plastic"]
    causal, acausal = _expected_correlations(result, host, "plastic")
    assert causal[:, 0, 0].min() > 0.3 * STDP_PAIRINGS and acausal[:, 0, 0].max() < 0.01 * STDP_PAIRINGS
    assert acausal[:, 1, 1].min() > 0.2 * STDP_PAIRINGS and causal[:, 1, 1].max() < 0.01 * STDP_PAIRINGS
    if host.profile.cadc_bits is None:
        # the sensors measured exp(-Δt/τ) of those pairs exactly
        np.testing.assert_allclose(corr.causal, causal, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(corr.acausal, acausal, rtol=1e-12, atol=1e-14)
    else:
        # read through the CADC (half a code per pair, a code of read noise, each synapse's own
        # amplitude): the causal synapse reads causal, the anti-causal one acausal
        assert np.all(corr.causal[:, 0, 0] - corr.acausal[:, 0, 0] > 0.3 * STDP_PAIRINGS)
        assert np.all(corr.acausal[:, 1, 1] - corr.causal[:, 1, 1] > 0.2 * STDP_PAIRINGS)

    # Δw = eta (a_plus causal - a_minus acausal), batch mean, written within one weight step
    dw = opts["eta"] * (opts["a_plus"] * corr.causal - opts["a_minus"] * corr.acausal).mean(axis=0)
    step = host.weight_step("plastic")
    tol = 1e-9 if step is None else step.max() / 2 + 1e-9
    np.testing.assert_allclose(w1, w0 + dw, atol=tol)
    assert w1[0, 0] > w0[0, 0] + 0.2  # causal synapse potentiated
    assert w1[1, 1] < w0[1, 1] - 0.2  # anti-causal synapse depressed
    assert w1[0, 1] == w1[1, 0] == 0.0  # no synapse there: nothing written


def test_pair_stdp_needs_a_projection(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    host = HostInterface(load_netlist_text(STDP_NETLIST.format(profile="ideal")))
    rules = RuleSet(["chipctl_pair_stdp:PairSTDP"], host=host, train={}, options={}, seed=0)
    with pytest.raises(RuleError) as err:
        rules.call("chipctl_configure")
    assert err.value.plugin == "pair_stdp" and err.value.hook == "chipctl_configure"
    assert str(err.value) == ("rule 'pair_stdp' in chipctl_configure: option projection: "
                              "expected one of plastic, teacher, got None")
    with pytest.raises(RuleError, match=r"rule 'pair_stdp': unknown option\(s\) etaa; known: a_minus, a_plus, eta"):
        RuleSet(["chipctl_pair_stdp:PairSTDP"], host=host, train={}, options={"pair_stdp": {"etaa": 1}}, seed=0)


class BadOption(Rule):
    """Raises chipctl's RuleError itself, without saying who it is."""

    name = "bad_option"

    @hookimpl
    def chipctl_configure(self, context):
        raise RuleError("option x: expected a number")


def test_rule_error_raised_by_a_rule_is_named():
    host = HostInterface(load_netlist_text(STDP_NETLIST.format(profile="ideal")))
    rules = RuleSet([f"{__name__}:BadOption"], host=host, train={}, options={}, seed=0)
    with pytest.raises(RuleError) as err:
        rules.call("chipctl_configure")
    assert str(err.value) == "rule 'bad_option' in chipctl_configure: option x: expected a number"


# ------------------------------------------------------------------------------ 2. entry points
def test_entry_point_rule_is_listed_and_trains(tmp_path):
    env = _env(_fake_install(tmp_path / "site"), EXAMPLE_DIR)
    listed = _chipctl("rules", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rules = {item["name"]: item for item in json.loads(listed.stdout)}
    assert "eventprop" in rules and "surrogate" in rules and "error" not in rules["surrogate"]
    assert {"loss", "surrogate", "learn", "sample_period", "dt"} <= set(rules["surrogate"]["options"])
    stdp = rules["pair_stdp"]
    assert stdp["target"] == "chipctl_pair_stdp:PairSTDP" and "error" not in stdp
    assert set(stdp["options"]) == {"projection", "eta", "a_plus", "a_minus"}

    net = tmp_path / "net.yaml"
    net.write_text(train_netlist_text(["pair_stdp"]))
    ck = tmp_path / "ck"
    trained = _chipctl("train", net, "--checkpoint", ck, "--json", env=env)
    assert trained.returncode == 0, trained.stderr
    out = json.loads(trained.stdout)
    assert out["epochs"] == 1 and out["checkpoint"] == str(ck)
    assert out["test_acc"] == out["test_accuracy"] is not None

    initial = HostInterface(load_netlist(net))
    trained = HostInterface(load_netlist(net))
    trained.import_config(load_checkpoint(ck)["chip"])
    final = trained.read_weights("in_out")
    assert final.shape == initial.read_weights("in_out").shape and np.all(np.isfinite(final))
    assert not np.array_equal(final, initial.read_weights("in_out")), "pair_stdp trained but no weight changed"


# ------------------------------------------------------------------------------ 3. a failing rule
def test_failing_rule_is_named_and_its_batch_rolled_back(tmp_path):
    # epoch 0 writes and succeeds, epoch 1 writes and raises
    netlist = load_netlist_text(train_netlist_text([f"{__name__}:ExplodingRule"], epochs=2, train_size=32,
                                                   fail_epoch=1))
    ck = tmp_path / "ck"
    trainer = Trainer(netlist, checkpoint=ck)
    assert trainer.rules.contexts["exploding"].options["fail_epoch"] == 1
    w0 = trainer.host.read_weights("in_out")

    with pytest.raises(RuleError) as err:
        trainer.fit()
    message = str(err.value)
    assert err.value.plugin == "exploding" and err.value.hook == "chipctl_run_finished"
    assert "'exploding'" in message and "chipctl_run_finished" in message and "ValueError: boom" in message

    # epoch 0's write stands, epoch 1's (the failing batch's) is rolled back ...
    np.testing.assert_allclose(trainer.host.read_weights("in_out"), w0 + 0.25, atol=1e-12)
    # ... and the checkpoint of epoch 0 is loadable and holds exactly the chip as it is now
    data = load_checkpoint(ck)
    assert int(data["epoch"]) == 1
    restored = HostInterface(netlist)
    assert restored.import_config(data["chip"])["same_die"]
    np.testing.assert_array_equal(restored.read_weights("in_out"), trainer.host.read_weights("in_out"))
    for a, b in zip(restored.read_weight_codes("in_out"), trainer.host.read_weight_codes("in_out")):
        np.testing.assert_array_equal(a, b)
    assert int(data["chip"]["runs_done"]) == trainer.host.runs_done  # the failed run does not count either


def test_failing_rule_in_train_step_rolls_back_everything():
    netlist = load_netlist_text(train_netlist_text([f"{__name__}:ExplodingRule"], train_size=32))
    trainer = Trainer(netlist)
    host = trainer.host
    before, runs = host.export_config(), host.runs_done
    batch = trainer._batch(trainer.x_train, trainer.y_train, np.arange(8), training=True)
    with pytest.raises(RuleError, match=r"rule 'exploding' in chipctl_run_finished: ValueError"):
        trainer.train_step(batch)
    after = host.export_config()
    for name in ("in_out",):
        for key in ("weights", "exc_codes", "inh_codes"):
            np.testing.assert_array_equal(after["projections"][name][key], before["projections"][name][key])
    assert host.runs_done == runs


def test_failing_rule_via_cli_is_one_line_exit_2(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text(train_netlist_text(["chipctl_pair_stdp:PairSTDP"], train_size=32))
    ck = tmp_path / "ck"
    proc = _chipctl("train", net, "--rule", "tests.test_rules:ExplodingRule", "--checkpoint", ck,
                    env=_env(EXAMPLE_DIR))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "rule 'exploding' in chipctl_run_finished" in lines[0] and "ValueError: boom after a write" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (ck / CHECKPOINT_FILE).exists()  # failed in its first batch: no checkpoint was written


# ------------------------------------------------------------------------------ 4. ad hoc rules, hook order
def test_extra_rule_by_module_class(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    netlist = load_netlist_text(train_netlist_text([f"{__name__}:Recorder"]))
    trainer = Trainer(netlist, extra_rules=("chipctl_pair_stdp:PairSTDP",))
    assert list(trainer.rules.rules) == ["recorder", "pair_stdp"]
    assert trainer.rules.contexts["pair_stdp"].options["projection"] == "in_out"  # from train.options.pair_stdp
    w0 = trainer.host.read_weights("in_out")
    trainer.fit()
    assert not np.array_equal(trainer.host.read_weights("in_out"), w0)


def test_unknown_rule_names_the_choices():
    netlist = load_netlist_text(train_netlist_text(["no_such_rule"]))
    with pytest.raises(RuleError, match=r"unknown rule 'no_such_rule'.*module:Class"):
        Trainer(netlist)
    netlist = load_netlist_text(train_netlist_text(["no_such_module_xyz:Rule"]))
    with pytest.raises(RuleError, match=r"cannot import 'no_such_module_xyz'"):
        Trainer(netlist)


def test_hook_order_epoch_metrics_and_rule_state(tmp_path):
    netlist = load_netlist_text(train_netlist_text([f"{__name__}:Recorder"], epochs=1, train_size=64))
    ck = tmp_path / "ck"
    trainer = Trainer(netlist, checkpoint=ck)
    metrics = trainer.fit()
    calls = trainer.rules.rules["recorder"].calls
    squeezed = [c for i, c in enumerate(calls) if i == 0 or c != calls[i - 1]]  # timer calls come in runs
    per_batch = ["chipctl_run_request", "chipctl_during_run", "chipctl_run_finished", "chipctl_loss_terms",
                 "chipctl_gradients", "chipctl_after_update"]
    assert squeezed == (["chipctl_configure", "chipctl_epoch_started"] + per_batch * 2
                        + ["chipctl_epoch_finished", "chipctl_state"])
    assert calls.count("chipctl_during_run") == 2 * 3  # 30 µs runs, timer every 10 µs, 2 batches
    assert metrics["history"][0]["recorder_calls"] == len(calls) - 1  # returned before chipctl_state

    again = Trainer(netlist, checkpoint=ck, epochs=2)
    again.resume()
    loaded = again.rules.rules["recorder"].loaded
    assert int(loaded["calls"]) == len(calls)
    np.testing.assert_array_equal(loaded["trace"], np.arange(3.0))
    assert again.epoch == 1


# ------------------------------------------------------------------------------ 5. dispatch through pluggy
class Unmarked(Rule):
    """Forgot @hookimpl: pluggy would never call this, so registering it is refused."""

    name = "unmarked"

    def chipctl_gradients(self, context, batch, result, loss_terms):
        raise AssertionError("never called")


class MarkedTypo(Rule):
    """A hook implementation whose name matches no spec."""

    name = "marked_typo"

    @hookimpl
    def chipctl_gradient(self, context, batch, result, loss_terms):
        raise AssertionError("never called")


class UnmarkedTypo(Rule):
    name = "unmarked_typo"

    def chipctl_run_finish(self, context, batch, result):
        raise AssertionError("never called")


class NotAHook(Rule):
    """Attributes named chipctl_* that are not callable are nobody's business."""

    name = "not_a_hook"
    chipctl_version = "1.0"

    @hookimpl
    def chipctl_configure(self, context):
        context.log.append("configured")


@pytest.mark.parametrize("rule, message", [
    ("Unmarked", "rule 'unmarked': method chipctl_gradients is not marked @hookimpl"),
    ("MarkedTypo", "rule 'marked_typo': method chipctl_gradient is marked @hookimpl but there is no such hook "
                   "(did you mean chipctl_gradients?)"),
    ("UnmarkedTypo", "rule 'unmarked_typo': method chipctl_run_finish is not a hook implementation and no hook "
                     "has that name (did you mean chipctl_run_finished?)"),
])
def test_a_method_that_would_never_be_called_is_refused(rule, message):
    host = HostInterface(load_netlist_text(STDP_NETLIST.format(profile="ideal")))
    with pytest.raises(RuleError) as err:
        RuleSet([f"{__name__}:NotAHook", f"{__name__}:{rule}"], host=host, train={}, options={}, seed=0)
    assert str(err.value).startswith(message), str(err.value)
    assert message.startswith(f"rule {err.value.plugin!r}: ")


def test_a_refused_rule_is_listed_as_broken_and_training_refuses_it(tmp_path):
    info = tmp_path / "site" / "unmarked_rule-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unmarked-rule\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[chipctl.rules]\nunmarked = tests.test_rules:Unmarked\n")
    env = _env(tmp_path / "site")
    listed = _chipctl("rules", env=env)
    assert listed.returncode == 0, listed.stderr
    assert ("unmarked  (tests.test_rules:Unmarked)  BROKEN: rule 'unmarked': method chipctl_gradients is not "
            "marked @hookimpl") in listed.stdout
    assert "eventprop  (rules.eventprop:EventProp)\n" in listed.stdout
    net = tmp_path / "net.yaml"
    net.write_text(train_netlist_text(["eventprop"], train_size=32))
    proc = _chipctl("train", net, "--rule", "tests.test_rules:Unmarked", env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("chipctl: rule 'unmarked': method chipctl_gradients is not marked @hookimpl "
                                   "(from rules import hookimpl), so it would never be called")


def test_non_callable_chipctl_attributes_are_fine():
    host = HostInterface(load_netlist_text(STDP_NETLIST.format(profile="ideal")))
    rules = RuleSet([f"{__name__}:NotAHook"], host=host, train={}, options={}, seed=0)
    rules.call("chipctl_configure")
    assert rules.contexts["not_a_hook"].log == ["configured"]


CALLS: list[str] = []


class CalibrateA(Rule):
    name = "cal_a"
    options = {"answer": (True, "return a report (else None: pass)")}

    @hookimpl
    def chipctl_calibrate(self, context, targets):
        CALLS.append(self.name)
        if not context.options["answer"]:
            return None
        # a calibration writes codes through the host and reports
        before = context.host.read_codes("post", "v_threshold")
        after = context.host.write_codes("post", "v_threshold", before + 1)
        return {"v_threshold": {"codes_before": before.tolist(), "codes_after": after.tolist()},
                "targets": targets}


class CalibrateB(Rule):
    name = "cal_b"

    @hookimpl
    def chipctl_calibrate(self, context, targets):
        CALLS.append(self.name)
        return {"by": self.name}


class CalibrateFirst(Rule):
    name = "cal_first"

    @hookimpl(tryfirst=True)
    def chipctl_calibrate(self, context, targets):
        CALLS.append(self.name)
        return {"by": self.name}


class Exploding(Rule):
    name = "cal_exploding"

    @hookimpl
    def chipctl_calibrate(self, context, targets):
        context.host.write_codes("post", "v_threshold", [0, 0])
        raise ValueError("sensor stuck")


def _calibration_rules(names, **options):
    host = HostInterface(load_netlist_text(STDP_NETLIST.format(profile="bss2")))
    return host, RuleSet([f"{__name__}:{n}" for n in names], host=host, train={}, options=options, seed=0)


def test_calibrate_is_firstresult_the_first_report_wins():
    targets = {"post": {"v_threshold": 1.0}}
    host, rules = _calibration_rules(["CalibrateA", "CalibrateB"])
    assert rules.order("chipctl_calibrate") == ["cal_a", "cal_b"]
    codes = host.read_codes("post", "v_threshold")
    CALLS.clear()
    name, report = rules.calibrate(targets)
    assert name == "cal_a" and report["targets"] == targets
    assert CALLS == ["cal_a"]  # cal_b is never called
    np.testing.assert_array_equal(host.read_codes("post", "v_threshold"), codes + 1)

    # the first passes (None): the second is asked and wins
    _, rules = _calibration_rules(["CalibrateA", "CalibrateB"], cal_a={"answer": False})
    CALLS.clear()
    assert rules.calibrate(targets) == ("cal_b", {"by": "cal_b"})
    assert CALLS == ["cal_a", "cal_b"]

    # nobody reports: None, and everyone was asked
    _, rules = _calibration_rules(["CalibrateA"], cal_a={"answer": False})
    CALLS.clear()
    assert rules.calibrate(targets) is None and CALLS == ["cal_a"]


def test_tryfirst_decides_the_order_of_hooks():
    _, rules = _calibration_rules(["CalibrateA", "CalibrateB", "CalibrateFirst"])
    assert rules.order("chipctl_calibrate") == ["cal_first", "cal_a", "cal_b"]
    CALLS.clear()
    assert rules.calibrate({}) == ("cal_first", {"by": "cal_first"})
    assert CALLS == ["cal_first"]
    # without tryfirst, the order the rules were named in
    _, rules = _calibration_rules(["CalibrateB", "CalibrateA"])
    assert rules.order("chipctl_calibrate") == ["cal_b", "cal_a"]
    assert list(rules.call("chipctl_calibrate", targets={})) == ["cal_b"]  # firstresult through call too


def test_a_failing_calibration_is_named_and_rolled_back():
    host, rules = _calibration_rules(["Exploding"])
    codes = host.read_codes("post", "v_threshold")
    with pytest.raises(RuleError, match=r"^rule 'cal_exploding' in chipctl_calibrate: ValueError: sensor stuck$"):
        rules.calibrate({})
    np.testing.assert_array_equal(host.read_codes("post", "v_threshold"), codes)


class Wrapper(Rule):
    """A hook wrapper runs around every rule's implementation, with that rule's context, and sees
    what pluggy gives a wrapper: the list of results (one here)."""

    name = "wrapper"

    @hookimpl(wrapper=True)
    def chipctl_run_request(self, context, batch):
        request = yield
        context.log.append(("wrapped", request))
        return request


def test_hook_wrappers_wrap_each_rule_with_its_context(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    host = HostInterface(load_netlist_text(STDP_NETLIST.format(profile="ideal")))
    rules = RuleSet([f"{__name__}:Wrapper", f"{__name__}:Recorder", "chipctl_pair_stdp:PairSTDP"], host=host,
                    train={}, options={"pair_stdp": {"projection": "plastic"}}, seed=0)
    batch = Batch(inputs={}, labels=np.zeros(1, dtype=int), indices=np.arange(1))
    out = rules.call("chipctl_run_request", batch=batch)
    assert list(out) == ["recorder", "pair_stdp"]  # the wrapper itself returns nothing of its own
    assert rules.contexts["recorder"].log == [("wrapped", [RunRequest(timer_us=10.0)])]
    assert rules.contexts["pair_stdp"].log == [("wrapped", [RunRequest(correlations=("plastic",))])]
    assert rules.contexts["wrapper"].log == []


def test_a_missing_builtin_entry_point_says_to_reinstall(monkeypatch):
    import rules.manager as manager

    class OldInstall:
        version = "0.1.0"
        entry_points = [metadata_entry("chipctl", "cli:app", "console_scripts")]

    monkeypatch.setattr(manager, "_entry_points", lambda: {})
    monkeypatch.setattr(manager.metadata, "distribution", lambda name: OldInstall())
    with pytest.raises(RuleError, match=r"unknown rule 'eventprop'; installed: none .*installed from an older "
                                        r"checkout; reinstall it \(pip install -e \. in the chipctl checkout\)"):
        manager.load_rule("eventprop")


def metadata_entry(name, value, group):
    from importlib.metadata import EntryPoint

    return EntryPoint(name=name, value=value, group=group)


def test_builtin_rules_come_from_the_entry_point_group():
    from importlib.metadata import entry_points

    import rules.manager as manager

    assert not hasattr(manager, "BUILTIN_RULES")
    declared = {ep.name: ep.value for ep in entry_points(group="chipctl.rules")}
    assert declared["eventprop"] == "rules.eventprop:EventProp"
    assert manager.available_rules()["eventprop"] == "rules.eventprop:EventProp"


# ------------------------------------------------------------------------------ the docs
def _code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.S | re.M)


def test_writing_a_rule_shows_the_example_file_verbatim():
    blocks = _code_blocks((DOCS / "writing-a-rule.md").read_text(encoding="utf-8"), "python")
    source = EXAMPLE_FILE.read_text(encoding="utf-8")
    assert source in blocks, "docs/writing-a-rule.md must contain examples/stdp_rule/chipctl_pair_stdp.py verbatim"
    toml = (EXAMPLE_DIR / "pyproject.toml").read_text(encoding="utf-8")
    assert toml in _code_blocks((DOCS / "writing-a-rule.md").read_text(encoding="utf-8"), "toml")


@pytest.mark.parametrize("doc", ["host-interface.md", "writing-a-rule.md", "calibration.md"])
def test_doc_examples_run(doc, monkeypatch):
    """The doc's ```python blocks are definitions: executed first, into one namespace; then every
    ```pycon block, in order, runs as one doctest session in that namespace."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    monkeypatch.chdir(REPO)  # examples name files like netlists/single_neuron.yaml
    text = (DOCS / doc).read_text(encoding="utf-8")
    globs: dict = {"__name__": f"doc_{doc.replace('-', '_').replace('.', '_')}"}
    for i, block in enumerate(_code_blocks(text, "python")):
        exec(compile(block, f"{doc}[python block {i}]", "exec"), globs)
    blocks = _code_blocks(text, "pycon")
    assert blocks, f"{doc} has no pycon examples"
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), globs, doc, str(DOCS / doc), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
    assert runner.tries >= 5


def test_writing_a_rule_netlists_load_and_parse():
    from rules.training import parse_train

    blocks = _code_blocks((DOCS / "writing-a-rule.md").read_text(encoding="utf-8"), "yaml")
    assert blocks
    for block in blocks:
        netlist = load_netlist_text(block, filename="<writing-a-rule.md>")
        config = parse_train(netlist)
        assert config.rules and config.input in netlist.inputs and config.output in netlist.populations
        HostInterface(netlist)  # and it fits the chip


# ------------------------------------------------------------------------------ metrics a rule reports
class MetricReporter(Rule):
    """A gradient rule with nothing to learn that reports metrics of every shape a rule might."""

    name = "metric_reporter"
    description = "Test rule: reports numpy, dict and list metrics."

    @hookimpl
    def chipctl_gradients(self, context, batch, result, loss_terms):
        return Gradients(loss=0.0, metrics={"gain": np.float32(0.5), "per_layer": {"a": np.float32(1.5), "b": 2},
                                            "notes": ["x"]})

    @hookimpl
    def chipctl_epoch_finished(self, epoch, metrics):
        return {"extra": np.float32(0.25)}


def test_numpy_and_per_layer_metrics_reach_the_history_and_the_checkpoint(tmp_path):
    netlist = load_netlist_text(train_netlist_text([f"{__name__}:MetricReporter"], train_size=32))
    trainer = Trainer(netlist, checkpoint=tmp_path / "ck")
    trainer.fit()
    last = trainer.history[-1]
    assert last["rule_gain"] == pytest.approx(0.5) and last["rule_notes"] == ["x"]
    assert last["rule_per_layer"] == {"a": 1.5, "b": 2.0}
    again = Trainer(netlist, checkpoint=tmp_path / "ck")
    again.resume()
    assert again.history[-1]["rule_per_layer"] == {"a": 1.5, "b": 2.0} and again.history[-1]["extra"] == 0.25
