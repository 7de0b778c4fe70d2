"""The Spiking Heidelberg Digits (Cramer et al. 2020) from the users' own HDF5 files.

The files (``shd_train.h5``, ``shd_test.h5``) are not shipped and never downloaded: the user
brings them. Their layout (Cramer et al., "The Heidelberg spiking data sets", the data set's
README): ``spikes/times`` — per sample an array of spike times in seconds; ``spikes/units`` — per
sample the channel (0..699) of each spike; ``labels`` — the digit class per sample (0..19).

Mapping onto the chip: a recording's second is ``time_scale`` µs of hardware time (default 1000:
the chip's speed-up, 1 s of biological time is 1 ms on the chip); spikes after ``t_max`` are
dropped; the 700 channels are pooled onto the input's channels (channel u → u · size // 700), as
BrainScaleS-2 experiments reduce them to fit the chip's inputs. Reading needs ``h5py`` (the
``shd`` extra: ``pip install -e '.[shd]'``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chip.events import SpikeEvents

__all__ = ["SHDTask", "read_shd", "SHD_CHANNELS"]

SHD_CHANNELS = 700


def read_shd(path: str | Path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(times in seconds per sample, channels per sample, labels) of an SHD HDF5 file."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("reading SHD files needs h5py: pip install -e '.[shd]' (or pip install h5py)") from None
    with h5py.File(path, "r") as f:
        times = [np.asarray(t, dtype=np.float64) for t in f["spikes"]["times"]]
        units = [np.asarray(u, dtype=np.int64) for u in f["spikes"]["units"]]
        labels = np.asarray(f["labels"], dtype=np.int64)
    if not (len(times) == len(units) == len(labels)):
        raise ValueError(f"{path}: spikes/times, spikes/units and labels disagree on the number of samples "
                         f"({len(times)}, {len(units)}, {len(labels)})")
    return times, units, labels


@dataclass(frozen=True)
class SHDTask:
    """SHD samples from ``train_path`` / ``test_path`` on an input of ``input_size`` channels.
    ``train_size`` / ``test_size``: a prefix of each file (None: all of it)."""

    input_size: int
    train_path: str
    test_path: str
    time_scale_us: float = 1000.0
    t_max_us: float = 1000.0
    train_size: int | None = None
    test_size: int | None = None
    classes: int = 20
    name: str = "shd"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def n_classes(self) -> int:
        return self.classes

    def _load(self, split: str):
        if split not in self._cache:
            path = self.train_path if split == "train" else self.test_path
            times, units, labels = read_shd(path)
            size = self.train_size if split == "train" else self.test_size
            if size is not None:
                times, units, labels = times[:size], units[:size], labels[:size]
            self._cache[split] = (times, units, labels)
        return self._cache[split]

    def data(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(sample indices into the split's file, labels); ``encode`` reads the spikes."""
        split = "test" if split == "validation" else split
        _, _, labels = self._load(split)
        idx = np.arange(len(labels), dtype=np.int64)
        # the split travels with the indices (column 1: 0 train, 1 test)
        return np.stack([idx, np.full(len(idx), 0 if split == "train" else 1)], axis=1), labels.copy()

    def encode(self, x: np.ndarray) -> SpikeEvents:
        x = np.asarray(x, dtype=np.int64).reshape(-1, 2)
        batch, neuron, time = [], [], []
        for b, (i, which) in enumerate(x):
            times, units, _ = self._load("train" if which == 0 else "test")
            t = times[i] * self.time_scale_us
            keep = (t >= 0) & (t < self.t_max_us)
            time.append(t[keep])
            neuron.append(units[i][keep] * self.input_size // SHD_CHANNELS)
            batch.append(np.full(int(keep.sum()), b))
        return SpikeEvents.from_arrays(np.concatenate(batch), np.concatenate(neuron), np.concatenate(time),
                                       self.input_size, len(x))
