"""The 8×8 handwritten digits that scikit-learn ships (1797 images, 16 grey levels; no download),
for autoencoders: the target of a sample is its own image.

The data come from ``sklearn.datasets.load_digits`` (scikit-learn is the optional extra
``digits``; a netlist that names the task without it fails with a one-line message saying how to
install it). Pixels are scaled to [0, 1]. The split is fixed: the images are shuffled once with
``seed`` and the last ``test_size`` are the test set, the first ``train_size`` the training set.

Codes (``coding``), 64 input channels, one per pixel, within ``window`` (hardware µs):

* ``rate``: pixel value v gives round(v · ``max_spikes``) spikes, evenly spaced over the window
  (a regular train, the same every time the image is shown);
* ``latency``: one spike at t0 + (1 − v)(t1 − t0) for v > 0 (bright pixels early), none for a
  blank pixel.

``targets(x)`` is the image itself (64 values in [0, 1]): the reconstruction a readout of 64
membranes is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chip.errors import ChipctlError
from chip.events import SpikeEvents

__all__ = ["DigitsTask", "load_digits", "encode_pixels", "CODINGS"]

CODINGS = ("rate", "latency")
PIXELS = 64


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 64) in [0, 1], labels (1797,)) from scikit-learn's bundled copy."""
    try:
        from sklearn.datasets import load_digits as _load
    except ImportError:
        raise ChipctlError("the digits task needs scikit-learn, which ships the 8x8 digits "
                           "(pip install 'chipctl[digits]' or pip install scikit-learn)") from None
    data = _load()
    return np.asarray(data.data, dtype=np.float64) / 16.0, np.asarray(data.target, dtype=np.int64)


@dataclass(frozen=True)
class DigitsTask:
    input_size: int = PIXELS
    coding: str = "rate"
    window_us: tuple[float, float] = (0.0, 20.0)
    max_spikes: int = 4
    train_size: int = 1437
    test_size: int = 360
    seed: int = 0
    n_classes: int = 10
    name: str = "digits"

    def data(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images, labels = load_digits()
        order = np.random.default_rng([self.seed, 31]).permutation(len(labels))
        test_idx = order[len(order) - self.test_size:]
        train_idx = order[:min(self.train_size, len(order) - self.test_size)]
        idx = test_idx if split in ("test", "validation") else train_idx
        return images[idx], labels[idx]

    def targets(self, x: np.ndarray) -> np.ndarray:
        """What a reconstruction is compared with: the images themselves, (n, 64) in [0, 1]."""
        return np.asarray(x, dtype=np.float64).reshape(-1, PIXELS)

    def encode(self, x: np.ndarray) -> SpikeEvents:
        return encode_pixels(x, self.coding, self.window_us, self.max_spikes, self.input_size)


def encode_pixels(x: np.ndarray, coding: str, window_us: tuple[float, float], max_spikes: int,
                  size: int) -> SpikeEvents:
    """Images (n, size) in [0, 1] as input spikes, one channel per pixel: ``rate`` (round(v ·
    max_spikes) evenly spaced spikes in the window) or ``latency`` (one spike, bright pixels early,
    none for a blank pixel)."""
    x = np.clip(np.asarray(x, dtype=np.float64).reshape(-1, size), 0.0, 1.0)
    t0, t1 = window_us
    if coding == "latency":
        b, n = np.nonzero(x > 0)
        t = t0 + (1.0 - x[b, n]) * (t1 - t0)
        return SpikeEvents.from_arrays(b.astype(np.int64), n.astype(np.int64), t, size, len(x))
    counts = np.rint(x * max_spikes).astype(np.int64)
    b, n = np.nonzero(counts)
    c = counts[b, n]
    rep_b, rep_n, rep_c = np.repeat(b, c), np.repeat(n, c), np.repeat(c, c)
    starts = np.cumsum(c) - c
    j = np.arange(len(rep_c)) - np.repeat(starts, c)         # the spike's place in its train
    t = t0 + (j + 0.5) * (t1 - t0) / rep_c
    return SpikeEvents.from_arrays(rep_b.astype(np.int64), rep_n.astype(np.int64), t, size, len(x))
