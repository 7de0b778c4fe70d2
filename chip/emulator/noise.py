"""Temporal noise of one run: membrane noise drawn chunk by chunk ahead of the step loop, and the
run's threshold drift.

Boundary: draws standard normal numbers from the run's generators in a fixed order and hands them
to the caller; it knows nothing about neurons or the kernel (the caller scales them per neuron).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MembraneNoise", "threshold_drift"]

# the streams of a run, each from (noise seed, run index, stream)
MEMBRANE_STREAM = 7
DRIFT_STREAM = 11


def threshold_drift(noise_seed, n: int) -> np.ndarray:
    """One standard normal draw per neuron for a run's threshold offsets (batch-to-batch drift),
    from the run's noise seed in a stream of its own: the membrane noise is the same with or
    without it."""
    return np.random.default_rng([noise_seed, DRIFT_STREAM]).standard_normal(n)


class MembraneNoise:
    """The membrane noise of each chunk of steps, drawn in chunk order from one generator (so the
    stream does not depend on the chunking's timing): ``next()`` gives the next chunk's
    (steps, B, N) draws, as a list with one array, or with ``parts`` (sample bounds b0 = 0 < b1 <
    … = B) one (steps, b_k+1 − b_k, N) block per part. With ``prefetch`` the next chunk is drawn on a helper thread while the
    kernel (which releases the GIL) runs the current one; ``close()`` stops that thread."""

    def __init__(self, rng: np.random.Generator, chunks: list[tuple[int, int]], B: int, N: int, prefetch: bool,
                 parts: list[int] | None = None):
        self.rng, self.chunks, self.shape = rng, chunks, (B, N)
        self.parts = parts
        self.k = 0
        self.pool = None
        self.future = None
        if prefetch:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chipctl-noise")
            self.future = self.pool.submit(self._draw, 0)

    def _draw(self, k: int) -> list[np.ndarray]:
        a, b = self.chunks[k]
        xi = self.rng.standard_normal((b - a,) + self.shape)
        if self.parts is None:
            return [xi]
        # the same draws, cut into contiguous blocks of samples (one per part of a split batch)
        return [np.ascontiguousarray(xi[:, lo:hi]) for lo, hi in zip(self.parts[:-1], self.parts[1:])]

    def next(self) -> list[np.ndarray]:
        k = self.k
        self.k += 1
        if self.pool is None:
            return self._draw(k)
        xi = self.future.result()
        if k + 1 < len(self.chunks):
            self.future = self.pool.submit(self._draw, k + 1)
        return xi

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
