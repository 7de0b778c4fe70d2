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
    (steps, B, N) draws, as a list with one array. With ``prefetch`` the next chunk is drawn on a
    helper thread while the kernel (which releases the GIL) runs the current one; ``close()``
    stops that thread.

    With ``parts`` (sample bounds 0 = b0 < b1 < … = B of a batch split across threads) the helper
    thread draws every chunk as above and cuts it into one contiguous (steps, b_k+1 − b_k, N) block
    per part, queued per part; ``take(k)`` gives part k its next block, so that the parts never
    wait for each other, only for their noise (at most one chunk ahead per part)."""

    def __init__(self, rng: np.random.Generator, chunks: list[tuple[int, int]], B: int, N: int, prefetch: bool,
                 parts: list[int] | None = None):
        self.rng, self.chunks, self.shape = rng, chunks, (B, N)
        self.parts = parts
        self.k = 0
        self.pool = None
        self.future = None
        self.feeder = None
        if parts is not None:
            import queue
            import threading

            self.queues = [queue.Queue(maxsize=1) for _ in parts[:-1]]
            self.stop = threading.Event()
            self.feeder = threading.Thread(target=self._feed, name="chipctl-noise", daemon=True)
            self.feeder.start()
        elif prefetch:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chipctl-noise")
            self.future = self.pool.submit(self._draw, 0)

    def _draw(self, k: int) -> list[np.ndarray]:
        a, b = self.chunks[k]
        return [self.rng.standard_normal((b - a,) + self.shape)]

    def _feed(self) -> None:
        import queue

        try:
            for a, b in self.chunks:
                xi = self.rng.standard_normal((b - a,) + self.shape)
                for q, lo, hi in zip(self.queues, self.parts[:-1], self.parts[1:]):
                    block = np.ascontiguousarray(xi[:, lo:hi])
                    while True:
                        if self.stop.is_set():
                            return
                        try:
                            q.put(block, timeout=0.05)
                            break
                        except queue.Full:
                            pass
        except BaseException as exc:  # handed to the parts: each raises it from take()
            for q in self.queues:
                try:
                    q.put_nowait(exc)
                except queue.Full:
                    pass

    def take(self, part: int) -> np.ndarray:
        import queue

        while True:
            try:
                item = self.queues[part].get(timeout=0.05)
                break
            except queue.Empty:
                if self.stop.is_set() or not self.feeder.is_alive() and self.queues[part].empty():
                    raise RuntimeError("the run's noise stopped before its last chunk") from None
        if isinstance(item, BaseException):
            raise item
        return item

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
        if self.feeder is not None:
            self.stop.set()
            self.feeder.join()
