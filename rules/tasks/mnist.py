"""MNIST from the user's own file, for autoencoders: the target of a sample is its own image.

The file is not shipped and never downloaded: the user brings ``mnist.npz`` in the layout most
copies of MNIST come in (the one Keras distributes) — arrays ``x_train`` (60000, 28, 28) and
``x_test`` (10000, 28, 28) of grey levels 0–255, ``y_train`` and ``y_test`` the digit labels. Any
numbers of images work, as long as they are 28×28 and the labels match. Reading needs numpy only.

Pixels are scaled to [0, 1] and, with ``pool`` k, averaged over k×k blocks (28/k × 28/k pixels,
so that an image fits the chip's inputs: ``pool: 4`` gives 7×7 = 49 channels). ``train_size`` and
``test_size`` take a prefix of the file's splits (its own train/test split is kept). The codes are
the digits task's (``rate``, ``latency``: :func:`.digits.encode_pixels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chip.events import SpikeEvents

from .digits import encode_pixels

__all__ = ["MnistTask", "read_mnist", "SIDE", "POOLS"]

SIDE = 28
POOLS = (1, 2, 4, 7, 14, 28)
KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_mnist(path: str | Path) -> dict[str, np.ndarray]:
    """The four arrays of an ``mnist.npz``; ValueError (naming the file and the array) if the file
    is not one."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise ValueError(f"{path}: no array {', '.join(missing)} (an mnist.npz holds "
                                 f"{', '.join(KEYS)})")
            data = {k: np.asarray(f[k]) for k in KEYS}
    except ValueError:
        raise
    except Exception as exc:  # not a zip/npz at all, or unreadable
        raise ValueError(f"{path}: not an .npz file ({type(exc).__name__})") from None
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE):
            raise ValueError(f"{path}: x_{split} has shape {x.shape}, expected (n, {SIDE}, {SIDE})")
        if y.shape != (len(x),):
            raise ValueError(f"{path}: y_{split} has shape {y.shape}, expected ({len(x)},) like x_{split}")
    return data


def pool_images(x: np.ndarray, pool: int) -> np.ndarray:
    """(n, 28, 28) grey levels 0–255 -> (n, (28/pool)²) in [0, 1], the mean of each pool × pool block."""
    x = np.asarray(x, dtype=np.float64) / 255.0
    side = SIDE // pool
    return x.reshape(len(x), side, pool, side, pool).mean(axis=(2, 4)).reshape(len(x), side * side)


@dataclass(frozen=True)
class MnistTask:
    input_size: int
    path: str
    pool: int = 4
    coding: str = "rate"
    window_us: tuple[float, float] = (0.0, 20.0)
    max_spikes: int = 4
    train_size: int | None = None
    test_size: int | None = None
    n_classes: int = 10
    name: str = "mnist"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def data(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        key = "test" if split in ("test", "validation") else "train"
        if key not in self._cache:
            raw = read_mnist(self.path)
            size = self.test_size if key == "test" else self.train_size
            x, y = raw[f"x_{key}"][:size], raw[f"y_{key}"][:size]
            self._cache[key] = (pool_images(x, self.pool), np.asarray(y, dtype=np.int64))
        return self._cache[key]

    def targets(self, x: np.ndarray) -> np.ndarray:
        """What a reconstruction is compared with: the (pooled) images themselves, in [0, 1]."""
        return np.asarray(x, dtype=np.float64).reshape(-1, self.input_size)

    def encode(self, x: np.ndarray) -> SpikeEvents:
        return encode_pixels(x, self.coding, self.window_us, self.max_spikes, self.input_size)
