"""Spike events: the one container for input spikes and the spikes a chip returns.

Events are three flat arrays of equal length — sample in the batch, neuron index within its
population, time in µs of hardware time — sorted by time (stable, so simultaneous events keep
their order). Spikes from the chip are stamped on the digital clock: their times are whole clock
cycles, which ``cycle`` keeps exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SpikeEvents"]


@dataclass(frozen=True, eq=False)
class SpikeEvents:
    """Spikes of one population over a batch.

    batch: int64 (n,), sample index; neuron: int64 (n,), index in the population;
    time_us: float64 (n,), hardware time; size: population size; batch_size: samples in the batch.
    """

    batch: np.ndarray
    neuron: np.ndarray
    time_us: np.ndarray
    size: int
    batch_size: int

    def __post_init__(self):
        n = len(self.time_us)
        if not (len(self.batch) == len(self.neuron) == n):
            raise ValueError("batch, neuron and time_us must have the same length")
        if n:
            if self.neuron.min() < 0 or self.neuron.max() >= self.size:
                raise ValueError(f"neuron index out of range 0..{self.size - 1}")
            if self.batch.min() < 0 or self.batch.max() >= self.batch_size:
                raise ValueError(f"batch index out of range 0..{self.batch_size - 1}")
            if not np.all(np.isfinite(self.time_us)):
                raise ValueError("spike times must be finite")

    @classmethod
    def empty(cls, size: int, batch_size: int = 1) -> "SpikeEvents":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z.copy(), np.zeros(0), size, batch_size)

    @classmethod
    def from_arrays(cls, batch, neuron, time_us, size: int, batch_size: int) -> "SpikeEvents":
        batch = np.asarray(batch, dtype=np.int64).ravel()
        neuron = np.asarray(neuron, dtype=np.int64).ravel()
        time_us = np.asarray(time_us, dtype=np.float64).ravel()
        order = np.argsort(time_us, kind="stable")
        return cls(batch[order], neuron[order], time_us[order], int(size), int(batch_size))

    @classmethod
    def from_lists(cls, times_per_neuron, batch_size: int = 1) -> "SpikeEvents":
        """Same spike trains for every sample: ``times_per_neuron[i]`` lists neuron i's times (µs)."""
        size = len(times_per_neuron)
        neuron, times = [], []
        for i, ts in enumerate(times_per_neuron):
            neuron.extend([i] * len(ts))
            times.extend(float(t) for t in ts)
        neuron = np.asarray(neuron, dtype=np.int64)
        times = np.asarray(times, dtype=np.float64)
        batch = np.repeat(np.arange(batch_size, dtype=np.int64), len(times))
        return cls.from_arrays(batch, np.tile(neuron, batch_size), np.tile(times, batch_size), size, batch_size)

    @classmethod
    def from_dense_times(cls, times: np.ndarray) -> "SpikeEvents":
        """One spike per (sample, neuron) at ``times[b, i]`` (µs); NaN or inf means no spike."""
        times = np.asarray(times, dtype=np.float64)
        b, i = np.nonzero(np.isfinite(times))
        return cls.from_arrays(b, i, times[b, i], times.shape[1], times.shape[0])

    def __len__(self) -> int:
        return len(self.time_us)

    def counts(self) -> np.ndarray:
        """Spike counts, shape (batch_size, size)."""
        out = np.zeros((self.batch_size, self.size), dtype=np.int64)
        np.add.at(out, (self.batch, self.neuron), 1)
        return out

    def first_spike_times(self, fill: float = np.inf) -> np.ndarray:
        """First spike time per (sample, neuron) in µs, ``fill`` where a neuron stayed silent."""
        out = np.full((self.batch_size, self.size), np.inf)
        np.minimum.at(out, (self.batch, self.neuron), self.time_us)
        if fill != np.inf:
            out[np.isinf(out)] = fill
        return out

    def sample(self, b: int) -> "SpikeEvents":
        keep = self.batch == b
        return SpikeEvents(np.zeros(int(keep.sum()), dtype=np.int64), self.neuron[keep], self.time_us[keep],
                           self.size, 1)

    def trains(self, b: int = 0) -> list[np.ndarray]:
        """Spike times of each neuron of sample b."""
        keep = self.batch == b
        neuron, times = self.neuron[keep], self.time_us[keep]
        return [times[neuron == i] for i in range(self.size)]

    def to_dict(self) -> dict[str, np.ndarray]:
        return {"batch": self.batch, "neuron": self.neuron, "time_us": self.time_us,
                "size": np.int64(self.size), "batch_size": np.int64(self.batch_size)}
