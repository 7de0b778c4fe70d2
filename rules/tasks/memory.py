"""A temporal-memory task generated offline: one of K spike patterns, a long noisy delay, a cue.

Each sample is of class c in 0..K−1. During ``pattern`` (a window at the start) the pattern channels
of class c fire Poisson spikes at ``rate``: class c owns a fixed subset (``active`` of the pattern
channels, drawn once from the task's seed), so the classes differ in *which* channels fire. Then
comes the delay, in which every channel fires Poisson noise at ``noise_rate``. During ``cue`` the
cue channels fire at ``rate`` — the same for every class. A network must report the class while
(or after) the cue: the input at that time says nothing about it, so the class must be held
across the delay, several membrane time constants long. Adaptive neurons can hold it in their
adaptation (the neurons the pattern drove respond less to the cue); LIF neurons have only their
membranes and recurrence.

Samples are a function of (split seed, sample index) only: ``data`` returns (n, 2) integers
(class, sample seed) and the labels; ``encode`` draws the spike trains from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chip.events import SpikeEvents

__all__ = ["MemoryTask"]

_SPLIT_SEEDS = {"train": 11, "test": 12, "validation": 13}


@dataclass(frozen=True)
class MemoryTask:
    """Input channels: ``pattern_channels`` first, then ``cue_channels`` (times in hardware µs,
    rates in Hz of hardware time)."""

    input_size: int
    classes: int = 3
    pattern_channels: int = 16
    cue_channels: int = 4
    active: float = 0.25
    pattern_us: tuple[float, float] = (0.0, 10.0)
    cue_us: tuple[float, float] = (70.0, 80.0)
    rate_hz: float = 300e3
    noise_rate_hz: float = 10e3
    duration_us: float = 90.0
    seed: int = 0
    train_size: int = 1200
    test_size: int = 600
    name: str = "memory"

    @property
    def n_classes(self) -> int:
        return self.classes

    def patterns(self) -> np.ndarray:
        """(classes, pattern_channels) bool: the channels each class drives (fixed by ``seed``;
        every class at least one channel, no two classes alike)."""
        rng = np.random.default_rng([self.seed, 7])
        k = max(1, int(round(self.active * self.pattern_channels)))
        while True:
            out = np.zeros((self.classes, self.pattern_channels), dtype=bool)
            for c in range(self.classes):
                out[c, rng.choice(self.pattern_channels, k, replace=False)] = True
            if len({row.tobytes() for row in out}) == self.classes:
                return out

    def data(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        size = {"train": self.train_size, "test": self.test_size, "validation": self.test_size}[split]
        rng = np.random.default_rng([self.seed, _SPLIT_SEEDS[split]])
        labels = np.arange(size) % self.classes
        rng.shuffle(labels)
        seeds = rng.integers(0, 2 ** 31 - 1, size)
        return np.stack([labels, seeds], axis=1), labels.astype(np.int64)

    def _poisson(self, rng, channels: np.ndarray, window: tuple[float, float], rate_hz: float):
        t0, t1 = window
        times, neurons = [], []
        expect = rate_hz * 1e-6 * max(t1 - t0, 0.0)
        for ch in channels:
            n = rng.poisson(expect)
            times.append(rng.uniform(t0, t1, n))
            neurons.append(np.full(n, ch))
        if not times:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        return np.concatenate(times), np.concatenate(neurons).astype(np.int64)

    def encode(self, x: np.ndarray) -> SpikeEvents:
        x = np.asarray(x, dtype=np.int64).reshape(-1, 2)
        pats = self.patterns()
        cue = np.arange(self.pattern_channels, self.pattern_channels + self.cue_channels)
        every = np.arange(self.input_size)
        batch, neuron, time = [], [], []
        for b, (label, seed) in enumerate(x):
            rng = np.random.default_rng([self.seed, int(seed)])
            parts = [self._poisson(rng, np.nonzero(pats[label])[0], self.pattern_us, self.rate_hz),
                     self._poisson(rng, every, (self.pattern_us[1], self.cue_us[0]), self.noise_rate_hz),
                     self._poisson(rng, cue, self.cue_us, self.rate_hz)]
            t = np.concatenate([p[0] for p in parts])
            n = np.concatenate([p[1] for p in parts])
            keep = (t >= 0) & (t < self.duration_us)
            time.append(t[keep])
            neuron.append(n[keep])
            batch.append(np.full(int(keep.sum()), b))
        return SpikeEvents.from_arrays(np.concatenate(batch).astype(np.int64), np.concatenate(neuron),
                                       np.concatenate(time), self.input_size, len(x))
