"""The Yin-Yang classification data set, generated offline, plus a latency (time-to-first-spike) code.

The data set is the one of Kriener, Göltz & Petrovici ("The Yin-Yang dataset", 2021; reference
implementation ``dataset.py`` in github.com/lkriener/yin_yang_data_set). This module reproduces that
generator draw for draw, so the samples are bit-identical to the reference without needing torch:

* ``R = 0.5`` (big circle), ``r = 0.1`` (the two dots); ``rng = numpy.random.RandomState(seed)``.
* For every sample: ``goal = rng.randint(3)``; then draw ``x, y = rng.rand(2) * 2R`` (x first, then y)
  until the point lies inside the big circle (distance to ``(R, R)`` at most ``R``) *and* its class is
  ``goal`` (rejection sampling keeps the classes balanced).
* Class: with ``d_r``/``d_l`` the distances to the right/left dot centres ``(1.5R, R)``/``(0.5R, R)``,
  ``is_yin = d_r <= r or r < d_l <= 0.5R or (y > R and d_r > 0.5R)``;
  class ``2`` ("dot") if ``d_r < r or d_l < r``, else ``int(is_yin)``. (The reference names the classes
  ``['yin', 'yang', 'dot']`` by index although label 1 is the ``is_yin`` region; only the numbers matter.)
* Features ``[x, y, 1 - x, 1 - y]``, all in ``[0, 1]``.
* Standard splits: train 5000 samples (seed 42), validation 1000 (seed 41), test 1000 (seed 40).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from chip.events import SpikeEvents

__all__ = ["SPLITS", "R_BIG", "R_SMALL", "yinyang", "which_class", "latency_encode", "YinYangTask"]

R_BIG = 0.5
R_SMALL = 0.1

#: split name -> (size, seed) of the reference publication
SPLITS: dict[str, tuple[int, int]] = {"train": (5000, 42), "validation": (1000, 41), "test": (1000, 40)}


def which_class(x: float, y: float) -> int:
    """Label of a point inside the big circle: 2 for the dots, else ``int(is_yin)`` (as in the reference)."""
    # d*d, not d**2 via math.pow: the reference squares numpy float64 scalars, which numpy does as x*x
    dxr, dxl, dy = x - 1.5 * R_BIG, x - 0.5 * R_BIG, y - R_BIG
    d_right = np.sqrt(dxr * dxr + dy * dy)
    d_left = np.sqrt(dxl * dxl + dy * dy)
    is_yin = (d_right <= R_SMALL) or (R_SMALL < d_left <= 0.5 * R_BIG) or (y > R_BIG and d_right > 0.5 * R_BIG)
    if d_right < R_SMALL or d_left < R_SMALL:
        return 2
    return int(is_yin)


@lru_cache(maxsize=16)
def _generate(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    feats = np.empty((size, 4), dtype=np.float64)
    labels = np.empty(size, dtype=np.int64)
    for n in range(size):
        goal = rng.randint(3)
        while True:
            # one call drawing two doubles == two consecutive rand() calls: x first, then y
            x, y = rng.rand(2) * 2.0 * R_BIG
            dx, dy = x - R_BIG, y - R_BIG
            if np.sqrt(dx * dx + dy * dy) > R_BIG:
                continue
            c = which_class(x, y)
            if c == goal:
                break
        feats[n] = (x, y, 1.0 - x, 1.0 - y)
        labels[n] = c
    feats.flags.writeable = False
    labels.flags.writeable = False
    return feats, labels


def yinyang(split: str = "train", size: int | None = None, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Samples of one Yin-Yang split.

    Returns ``(features, labels)``: ``features`` of shape ``(n, 4)`` float64 with columns
    ``[x, y, 1-x, 1-y]``, ``labels`` of shape ``(n,)`` int64 in {0, 1, 2} (2 = dots, see module docstring).
    ``size`` and ``seed`` default to the split's reference values (see ``SPLITS``); overriding them
    gives other draws from the same distribution. A smaller ``size`` with the default seed yields a
    prefix of the full split (the generator is sequential). Fresh, writable copies are returned.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown Yin-Yang split {split!r}; use one of {', '.join(SPLITS)}")
    ref_size, ref_seed = SPLITS[split]
    size = ref_size if size is None else int(size)
    seed = ref_seed if seed is None else int(seed)
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    feats, labels = _generate(size, seed)
    return feats.copy(), labels.copy()


def latency_encode(
    features: np.ndarray,
    *,
    t_early_us: float,
    t_late_us: float,
    duplicate: int = 1,
    bias_time_us: float | None = None,
) -> np.ndarray:
    """Time-to-first-spike code: one spike per input neuron, value ``v`` fires at ``t_early + v (t_late - t_early)``.

    ``features`` has shape ``(n, f)`` with values in ``[0, 1]`` (not clipped: values outside map
    linearly outside the window). The ``f`` columns are tiled ``duplicate`` times, i.e. the layout is
    ``[c0..c(f-1), c0..c(f-1), ...]`` (for Yin-Yang ``[x, y, 1-x, 1-y, x, y, ...]``), which gives the
    network more input synapses per feature. With ``bias_time_us`` one more column, a bias spike at
    that fixed time, is appended last. Returns spike times in µs, shape ``(n, f*duplicate [+1])``.
    """
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must have shape (n, f), got {feats.shape}")
    if int(duplicate) < 1:
        raise ValueError(f"duplicate must be >= 1, got {duplicate}")
    times = t_early_us + feats * (t_late_us - t_early_us)
    times = np.tile(times, (1, int(duplicate)))
    if bias_time_us is not None:
        times = np.concatenate([times, np.full((len(times), 1), float(bias_time_us))], axis=1)
    return times


@dataclass(frozen=True)
class YinYangTask:
    """Yin-Yang: 4 features [x, y, 1−x, 1−y] plus a bias, each duplicated, one spike per input
    channel at t_early + v·(t_late − t_early) (hardware µs); 3 classes."""

    input_size: int
    t_early_us: float
    t_late_us: float
    bias_us: float
    duplicate: int
    train_size: int = 5000
    test_size: int = 1000
    n_classes: int = 3
    name: str = "yinyang"

    def data(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        size = {"train": self.train_size, "test": self.test_size, "validation": self.test_size}[split]
        return yinyang(split, size=size)

    def encode(self, features: np.ndarray) -> SpikeEvents:
        times = latency_encode(features, t_early_us=self.t_early_us, t_late_us=self.t_late_us, duplicate=1,
                               bias_time_us=self.bias_us)
        times = np.tile(times, (1, self.duplicate))  # each of the 5 channels repeated: 5 * duplicate inputs
        return SpikeEvents.from_dense_times(times)
