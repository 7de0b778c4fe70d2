"""The tasks beyond Yin-Yang: the temporal-memory task (generated offline), the SHD loader (on a
small HDF5 file written here), and the train-block fields they use (decode window, parameter
step sizes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chip.errors import NetlistError
from chip.netlist import load_netlist, load_netlist_text
from rules.tasks import MemoryTask, SHDTask, make_task
from rules.tasks.shd import read_shd
from rules.training import Trainer
from rules.training.config import parse_train, validate_train

ROOT = Path(__file__).resolve().parent.parent


def test_memory_samples_are_reproducible_and_hold_the_class_only_in_the_pattern():
    task = make_task(load_netlist(ROOT / "netlists/memory_alif_bss2.yaml").train,
                     load_netlist(ROOT / "netlists/memory_alif_bss2.yaml"))
    assert isinstance(task, MemoryTask) and task.n_classes == 3 and task.input_size == 20
    x, y = task.data("train")
    x2, y2 = task.data("train")
    np.testing.assert_array_equal(x, x2)
    assert np.bincount(y).tolist() == [len(y) // 3 + (i < len(y) % 3) for i in range(3)]
    assert not np.array_equal(task.data("test")[0][:10], x[:10])
    ev = task.encode(x[:60])
    again = task.encode(x[:60])
    np.testing.assert_array_equal(ev.time_us, again.time_us)
    pats = task.patterns()
    assert pats.sum(axis=1).tolist() == [4, 4, 4] and len({p.tobytes() for p in pats}) == 3
    for b in range(60):
        s = ev.sample(b)
        early = s.neuron[s.time_us < task.pattern_us[1]]
        # in the pattern window only the class's channels fire (noise starts after it)
        assert set(early.tolist()) <= set(np.nonzero(pats[y[b]])[0].tolist()) and len(early) > 0
        cue = s.neuron[(s.time_us >= task.cue_us[0]) & (s.time_us < task.cue_us[1])]
        assert set(cue.tolist()) <= set(range(16, 20)) and len(cue) > 0
        delay = s.neuron[(s.time_us >= task.pattern_us[1]) & (s.time_us < task.cue_us[0])]
        assert len(delay) < 40  # noise: about 20 channels x 60 us x 10 kHz = 12 events
    # the cue carries no class: its spike counts per class are alike
    cue_counts = [np.mean([np.sum((ev.sample(b).time_us >= 70) & (ev.sample(b).time_us < 80))
                           for b in range(60) if y[b] == c]) for c in range(3)]
    assert max(cue_counts) - min(cue_counts) < 4


def _memory_text() -> str:
    text = (ROOT / "netlists/memory_lif_bss2.yaml").read_text()
    return text.replace("path: memory_batch.npz", f"path: {ROOT / 'netlists/memory_batch.npz'}")


def test_memory_fields_are_checked_with_their_lines():
    text = _memory_text().replace("cue_channels: 4", "cue_channels: 5")
    with pytest.raises(NetlistError, match=r"train.input: the memory task needs pattern_channels \+ cue_channels = 21"):
        validate_train(load_netlist_text(text))
    text = _memory_text().replace("cue: [70 us, 80 us]", "cue: [80 us, 70 us]")
    with pytest.raises(NetlistError, match=r":\d+: train.memory.cue: end 70 us is not after start 80 us"):
        validate_train(load_netlist_text(text))
    text = _memory_text().replace("tau_mem: 0.05}", "tau_memory: 0.05}")
    with pytest.raises(NetlistError, match=r"train.optimizer.lr_params.tau_memory: unknown neuron parameter"):
        parse_train(load_netlist_text(text))
    cfg = parse_train(load_netlist(ROOT / "netlists/memory_alif_bss2.yaml"))
    assert cfg.decode_window == (70.0, 90.0)
    assert cfg.lr_params == {"tau_mem_us": 0.05, "tau_adapt_us": 1.0}


def _write_shd(path: Path, n: int, seed: int) -> None:
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        vt = h5py.vlen_dtype(np.dtype("float32"))
        vu = h5py.vlen_dtype(np.dtype("uint16"))
        times = f.create_dataset("spikes/times", (n,), dtype=vt)
        units = f.create_dataset("spikes/units", (n,), dtype=vu)
        for i in range(n):
            k = rng.integers(5, 30)
            times[i] = np.sort(rng.uniform(0.0, 1.2, k)).astype(np.float32)
            units[i] = rng.integers(0, 700, k).astype(np.uint16)
        f.create_dataset("labels", data=rng.integers(0, 20, n).astype(np.uint16))


SHD_NETLIST = """
name: shd_small
duration: 1000 us
chip: {profile: ideal}
populations:
  hidden: {size: 8, params: {tau_mem: 20 us, tau_syn: 10 us, tau_ref: 1 us}}
  out: {size: 20, params: {tau_mem: 20 us, tau_syn: 10 us, v_threshold: 100}}
inputs:
  in: {size: 70, type: spikes, times: TIMES}
projections:
  in_hidden: {pre: in, post: hidden, weights: {normal: {mean: 0.2, std: 0.5}, seed: 1}}
  hidden_out: {pre: hidden, post: out, sign: signed, weights: {normal: {mean: 0.0, std: 0.3}, seed: 2}}
train:
  task: shd
  input: in
  output: out
  shd: {train: shd_train.h5, test: shd_test.h5, t_max: 900 us}
  rules: [surrogate]
  options: {surrogate: {dt: 5.0}}
  decode: max_membrane
  epochs: 1
  batch_size: 4
  test_batch_size: 6
  train_size: 8
  test_size: 6
"""


def test_shd_loader_reads_the_files_and_maps_time_and_channels(tmp_path):
    _write_shd(tmp_path / "shd_train.h5", 10, 1)
    _write_shd(tmp_path / "shd_test.h5", 6, 2)
    path = tmp_path / "shd.yaml"
    path.write_text(SHD_NETLIST.replace("TIMES", str([[]] * 70)))
    nl = load_netlist(path)
    task = make_task(nl.train, nl)
    assert isinstance(task, SHDTask) and task.n_classes == 20 and task.t_max_us == 900.0
    times, units, labels = read_shd(tmp_path / "shd_train.h5")
    x, y = task.data("train")
    assert len(y) == 8 and np.array_equal(y, labels[:8])
    ev = task.encode(x[:3])
    for b in range(3):
        t = times[b] * 1000.0  # a second of recording is a millisecond on the chip
        keep = t < 900.0
        s = ev.sample(b)
        np.testing.assert_allclose(np.sort(s.time_us), np.sort(t[keep]), rtol=1e-6)
        assert sorted(s.neuron.tolist()) == sorted((units[b][keep] * 70 // 700).tolist())
    xt, yt = task.data("test")
    assert len(yt) == 6 and task.encode(xt[:2]).size == 70
    # and the whole loop runs on it: one tiny epoch with the surrogate rule
    metrics = Trainer(nl).fit()
    assert metrics["epochs"] == 1 and 0.0 <= metrics["test_accuracy"] <= 1.0


def test_shd_files_that_are_missing_are_named(tmp_path):
    path = tmp_path / "shd.yaml"
    path.write_text(SHD_NETLIST.replace("TIMES", str([[]] * 70)))
    with pytest.raises(NetlistError, match=r"train.shd.train: no file .*shd_train.h5.* bring your own"):
        validate_train(load_netlist(path))


def test_decode_window_and_parameter_steps_in_training(tmp_path):
    """A short memory training: the decode window is the cue's, and the time constants move by
    the step size lr_params gives them (Adam moves each by about its step per batch)."""
    nl = load_netlist(ROOT / "netlists/memory_alif_bss2.yaml")
    train = dict(nl.train, train_size=128, test_size=64, epochs=1, checkpoint=None)
    trainer = Trainer(nl.replace(train=train))
    before = trainer.host.read_params("hidden", "tau_adapt_us").copy()
    trainer.fit()
    moved = np.abs(trainer.host.read_params("hidden", "tau_adapt_us") - before)
    assert 0.2 < np.median(moved) <= 2 * 1.0 + 1.0  # 2 batches of steps of 1 us (+ quantization)
