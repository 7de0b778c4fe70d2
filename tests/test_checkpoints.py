"""Chip configurations and checkpoints through the host: ``export_config`` / ``import_config``.

Everything here uses public host methods only (reads, writes, ``export_config``, ``import_config``,
``read_weight_codes``): a configuration restores exactly on the same die, travels as nominal values
to another die of the same profile, and is refused in one line for another netlist, another kind
of chip or another format. ``chipctl eval`` reports which die trained a checkpoint.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chip.errors import CheckpointError, WriteError
from chip.host import PARAMETERS, HostInterface
from chip.netlist import load_netlist, load_netlist_text
from rules.training import Trainer
from rules.training.checkpoints import load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]

NETLIST = """
name: pair
duration: 40 us
chip: {profile: bss2}
populations:
  out: {size: 3, params: {tau_mem: 10 us, tau_syn: 5 us, weight_full_scale: 2}}
inputs:
  stim: {size: 2, type: spikes, times: [[2 us, 4 us, 6 us], [10 us, 12 us]]}
projections:
  stim_out: {pre: stim, post: out, sign: signed, weights: {array: [[1.5, -0.5, 1.0], [0.75, 1.25, -0.25]]}}
"""

EXCITATORY = NETLIST.replace("sign: signed", "sign: excitatory").replace("-0.5", "0.5").replace("-0.25", "0.25")

# Yin-Yang, 5 input channels onto 3 outputs, on the bss2 chip: a checkpoint in about a second.
TRAIN_NETLIST = """
name: tiny_bss2
duration: 30 us
chip: {profile: bss2}
populations:
  out: {size: 3, params: {tau_mem: 10 us, tau_syn: 5 us, tau_ref: 2 us, weight_full_scale: 2}}
inputs:
  in: {size: 5, type: spikes, times: [[], [], [], [], []]}
projections:
  in_out: {pre: in, post: out, weights: {uniform: {low: 0.5, high: 1.5}, seed: 3}}
train:
  task: yinyang
  input: in
  output: out
  rules: [eventprop]
  encoding: {duplicate: 1}
  epochs: 1
  batch_size: 32
  train_size: 64
  test_size: 32
  optimizer: {name: adam, lr: 0.05}
"""


def _configured(text=NETLIST, **overrides) -> HostInterface:
    """A chip whose configuration is no longer the netlist's: weights, values and raw codes written."""
    host = HostInterface(load_netlist_text(text, **overrides))
    host.write_weights("stim_out", [[2.2, -0.7, 1.3], [0.4, 3.1, -2.6]])
    host.write_params("out", "tau_mem_us", [8.0, 9.0, 11.0])
    host.write_codes("out", "v_threshold", [600, 611, 622])
    return host


def _assert_same_configuration(a: HostInterface, b: HostInterface) -> None:
    for pop in a.populations:
        for name in PARAMETERS:
            np.testing.assert_array_equal(a.read_codes(pop, name), b.read_codes(pop, name), err_msg=name)
    for proj in a.projections:
        np.testing.assert_array_equal(a.read_weights(proj), b.read_weights(proj))
        for x, y in zip(a.read_weight_codes(proj), b.read_weight_codes(proj)):
            np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------------ the same die
def test_same_die_restores_every_code_exactly_and_runs_the_same(tmp_path):
    trained = _configured()
    trained.run()
    config = trained.export_config()
    assert config["format"] == HostInterface.CONFIG_FORMAT and config["runs_done"] == 1
    assert config["netlist"]["name"] == "pair" and config["profile"]["name"] == "bss2"
    assert config["die"]["seed"] == 1
    assert config["netlist"]["projections"]["stim_out"] == {
        "pre": "stim", "post": "out", "sign": "signed", "shape": [2, 3],
        "mask": config["netlist"]["projections"]["stim_out"]["mask"]}
    # through a checkpoint file (arrays in npz, the rest as JSON) and back
    save_checkpoint(tmp_path, {"chip": config})
    restored = HostInterface(load_netlist_text(NETLIST))
    report = restored.import_config(load_checkpoint(tmp_path)["chip"])
    assert report == {"same_die": True, "trained_die_seed": 1, "die_seed": 1, "runs_done": 1}
    _assert_same_configuration(trained, restored)
    assert restored.runs_done == 0  # reported, not set: the caller decides where the noise continues
    restored.runs_done = report["runs_done"]
    a, b = trained.run(), restored.run()
    np.testing.assert_array_equal(a.spikes["out"].time_us, b.spikes["out"].time_us)
    assert len(a.spikes["out"]) > 0


def test_noise_seed_and_noise_level_are_not_part_of_the_identity():
    config = _configured().export_config()
    other = HostInterface(load_netlist_text(NETLIST.replace("profile: bss2", "profile: bss2, noise: 0.05"),
                                            noise_seed=9))
    assert other.import_config(config)["same_die"]
    _assert_same_configuration(_configured(), other)


def test_import_is_one_transaction_of_host_writes():
    config = _configured().export_config()
    broken = {**config, "projections": {"stim_out": {**config["projections"]["stim_out"],
                                                     "exc_codes": np.zeros(2)}}}
    host = HostInterface(load_netlist_text(NETLIST))
    before = host.export_config()
    with pytest.raises(CheckpointError, match=r"^chip configuration does not fit: \(2,\) values for 6 connections$"):
        host.import_config(broken)  # the parameters were written first: rolled back with the rest
    after = host.export_config()
    for pop in before["populations"]:
        for name in PARAMETERS:
            np.testing.assert_array_equal(after["populations"][pop]["codes"][name],
                                          before["populations"][pop]["codes"][name])
    # and an import inside a caller's transaction is rolled back with it
    with pytest.raises(RuntimeError):
        with host.transaction():
            host.import_config(config)
            raise RuntimeError("later in the same batch")
    np.testing.assert_array_equal(host.read_weights("stim_out"), HostInterface(load_netlist_text(NETLIST))
                                  .read_weights("stim_out"))


# ------------------------------------------------------------------------------ another die
def test_another_die_gets_the_trained_nominal_values():
    trained = _configured()
    config = trained.export_config()
    other = HostInterface(load_netlist_text(NETLIST, die_seed=7))
    report = other.import_config(config)
    assert report == {"same_die": False, "trained_die_seed": 1, "die_seed": 7, "runs_done": 0}
    step = other.weight_step("stim_out")
    np.testing.assert_allclose(other.read_weights("stim_out"), trained.read_weights("stim_out"), atol=step.max())
    for name in PARAMETERS:
        np.testing.assert_allclose(other.read_params("out", name), trained.read_params("out", name), rtol=1e-12)
    # the same nominal values: another die, and it behaves differently (its own mismatch)
    assert not np.array_equal(other.run().spikes["out"].time_us, trained.run().spikes["out"].time_us)


def test_other_mismatch_is_another_die():
    config = _configured().export_config()
    other = HostInterface(load_netlist_text(NETLIST.replace("profile: bss2", "profile: bss2, mismatch: off")))
    assert not other.import_config(config)["same_die"]


# ------------------------------------------------------------------------------ refused
REFUSALS = [
    ("another profile", dict(profile="ideal"),
     "the configuration is for chip profile bss2 with weight_bits 6, this chip is ideal with weight_bits null"),
    ("another weight resolution", dict(text=NETLIST.replace("profile: bss2", "profile: bss2, weight_bits: 5")),
     "the configuration is for chip profile bss2 with weight_bits 6, this chip is bss2 with weight_bits 5"),
    ("another voltage mapping", dict(text=NETLIST.replace("profile: bss2", "profile: bss2, v_model_one: 0.8 V")),
     "the configuration is for chip profile bss2 with v_model_one_v 0.75, this chip is bss2 with v_model_one_v 0.8"),
    ("another netlist", dict(text=NETLIST.replace("name: pair", "name: other")),
     "the configuration is for netlist 'pair', this chip is loaded with 'other'"),
    ("another population size", dict(text=NETLIST.replace("size: 3", "size: 4").replace(
        "[[1.5, -0.5, 1.0], [0.75, 1.25, -0.25]]", "[[1.5, -0.5, 1.0, 0.5], [0.75, 1.25, -0.25, 0.5]]")),
     "the configuration is for another netlist named 'pair': population 'out' has size 3 there, 4 here"),
    ("another sign", dict(text=EXCITATORY),
     "the configuration is for another netlist named 'pair': projection 'stim_out' has sign 'signed' there, "
     "'excitatory' here"),
    ("another connectivity", dict(text=NETLIST.replace("sign: signed,", "sign: signed, connectivity: "
                                                                          "{explicit: [[0, 0], [1, 2]]},")),
     "the configuration is for another netlist named 'pair': projection 'stim_out' connects other pairs"),
]


@pytest.mark.parametrize("what, load, message", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_another_netlist_or_kind_of_chip_is_refused_in_one_line(what, load, message):
    config = _configured().export_config()
    load = dict(load)
    host = HostInterface(load_netlist_text(load.pop("text", NETLIST), **load))
    before = host.export_config()
    with pytest.raises(CheckpointError) as err:
        host.import_config(config)
    assert str(err.value) == message and "\n" not in str(err.value)
    after = host.export_config()
    for proj in before["projections"]:
        np.testing.assert_array_equal(after["projections"][proj]["exc_codes"], before["projections"][proj]["exc_codes"])


def test_another_format_version_is_refused():
    config = _configured().export_config()
    host = HostInterface(load_netlist_text(NETLIST))
    with pytest.raises(CheckpointError, match=r"^chip configuration of format 2; this chipctl reads format 1$"):
        host.import_config({**config, "format": 2})
    with pytest.raises(CheckpointError, match=r"^not a chip configuration \(no format version"):
        host.import_config({"codes": {}, "exc": {}, "inh": {}})  # what checkpoints held before


def test_weight_codes_are_written_exactly_or_not_at_all():
    host = HostInterface(load_netlist_text(EXCITATORY))
    exc, inh = host.read_weight_codes("stim_out")
    assert np.array_equal(exc, np.rint(exc)) and not inh.any()
    stored = host.write_weight_codes("stim_out", exc + 1, inh)
    np.testing.assert_array_equal(stored[0], exc + 1)
    np.testing.assert_allclose(host.read_weights("stim_out"), (exc + 1) * host.weight_step("stim_out"))
    for bad_exc, bad_inh, message in [
        (exc + 0.5, inh, r"excitatory weight codes for 'stim_out' must be whole numbers from 0 to 63"),
        (exc * 0 + 64, inh, r"must be whole numbers from 0 to 63"),
        (exc, inh + 1, r"excitatory projection 'stim_out' has no inhibitory synapses"),
        (exc[:1], inh, r"must have shape \(2, 3\)"),
    ]:
        with pytest.raises(WriteError, match=message):
            host.write_weight_codes("stim_out", bad_exc, bad_inh)
        np.testing.assert_array_equal(host.read_weight_codes("stim_out")[0], exc + 1)


# ------------------------------------------------------------------------------ checkpoints and chipctl eval
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A bss2 netlist trained for one epoch, its checkpoint, and the trainer's final chip."""
    tmp = tmp_path_factory.mktemp("trained")
    net = tmp / "tiny.yaml"
    net.write_text(TRAIN_NETLIST)
    ck = tmp / "ck"
    trainer = Trainer(load_netlist(net), checkpoint=ck)
    w0 = trainer.host.read_weights("in_out")
    trainer.fit()
    assert not np.array_equal(trainer.host.read_weights("in_out"), w0), "training changed no weight"
    return net, ck, trainer


def test_checkpoint_round_trip_through_the_host(trained):
    net, ck, trainer = trained
    resumed = Trainer(load_netlist(net), checkpoint=ck)
    report = resumed.resume()
    assert report["same_die"] and resumed.epoch == 1
    assert resumed.host.runs_done == trainer.host.runs_done == report["runs_done"] == 2
    _assert_same_configuration(trainer.host, resumed.host)


def _eval(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import cli; cli.app()", "eval", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_eval_on_another_die_reports_both_dies(trained):
    net, ck, trainer = trained
    other = Trainer(load_netlist(net, die_seed=7), checkpoint=ck)
    report = other.load_chip(load_checkpoint(ck))
    assert report["trained_die_seed"] == 1 and report["die_seed"] == 7 and not report["same_die"]
    step = other.host.weight_step("in_out")
    np.testing.assert_allclose(other.host.read_weights("in_out"), trainer.host.read_weights("in_out"),
                               atol=step.max())

    proc = _eval(net, "--checkpoint", ck, "--die-seed", "7", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["trained_die_seed"] == 1 and out["die_seed"] == 7 and out["same_die"] is False
    assert 0.0 <= out["test_accuracy"] <= 1.0
    proc = _eval(net, "--checkpoint", ck)
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"tiny_bss2: test accuracy \d\.\d{4} \(32 samples\) on die 1, trained on die 1\n",
                        proc.stdout), proc.stdout


def test_eval_refuses_another_profile_in_one_line(trained):
    net, ck, _ = trained
    proc = _eval(net, "--checkpoint", ck, "--profile", "ideal")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"{ck}: the configuration is for chip profile bss2 with weight_bits 6, this chip is "
                           f"ideal with weight_bits null\n")


def test_eval_refuses_another_netlist_in_one_line(trained, tmp_path):
    net, ck, _ = trained
    other = tmp_path / "other.yaml"
    other.write_text(TRAIN_NETLIST.replace("name: tiny_bss2", "name: other"))
    proc = _eval(other, "--checkpoint", ck)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"{ck}: the configuration is for netlist 'tiny_bss2', this chip is loaded with 'other'\n"
