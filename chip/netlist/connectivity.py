"""Realize a projection's connectivity and initial weights as dense arrays.

This module turns the declarative ``Connectivity`` and ``WeightInit`` of a netlist projection into
a boolean connection mask and a float weight matrix, both of shape (n_pre, n_post). It knows
nothing about circuits, synapse rows or weight codes: placing the mask on synapses is the job of
``chip.mapping`` and quantizing the weights is the emulator's. Invalid requests raise ``ValueError``
with a plain message; the caller (the mapper) adds file, line and field path.

Everything is deterministic: random draws use ``np.random.default_rng(seed)`` over the full
(n_pre, n_post) matrix, so the value drawn for a pair does not depend on which other pairs exist.
"""

from __future__ import annotations

import numpy as np

from .model import Connectivity, WeightInit

__all__ = ["realize_connectivity", "realize_weights", "CONNECTIVITY_KINDS", "WEIGHT_KINDS", "SIGNS"]

CONNECTIVITY_KINDS = ("all_to_all", "one_to_one", "probability", "explicit")
WEIGHT_KINDS = ("constant", "normal", "uniform", "file")
SIGNS = ("excitatory", "inhibitory", "signed")


def realize_connectivity(conn: Connectivity, n_pre: int, n_post: int, *, same_population: bool) -> np.ndarray:
    """Boolean connection mask, shape (n_pre, n_post); ``mask[i, j]`` means pre i → post j.

    * ``all_to_all``: every pair; with ``same_population`` and ``allow_self`` false the diagonal
      (a neuron onto itself) is cleared.
    * ``one_to_one``: the identity; both sides must have the same size.
    * ``probability``: ``default_rng(seed).random((n_pre, n_post)) < p``; with ``same_population``
      and ``allow_self`` false the diagonal is cleared.
    * ``explicit``: the listed ``pairs`` (int (k, 2): pre, post); duplicates collapse to one
      connection. Self connections are kept exactly as listed.
    """
    n_pre, n_post = int(n_pre), int(n_post)
    if n_pre < 1 or n_post < 1:
        raise ValueError(f"population sizes must be positive, got {n_pre} x {n_post}")
    kind = conn.kind
    if kind == "all_to_all":
        mask = np.ones((n_pre, n_post), dtype=bool)
    elif kind == "one_to_one":
        if n_pre != n_post:
            raise ValueError(f"one_to_one needs equal sizes, got {n_pre} presynaptic and {n_post} postsynaptic neurons")
        return np.eye(n_pre, dtype=bool)
    elif kind == "probability":
        p = float(conn.probability)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"connection probability must be in [0, 1], got {conn.probability!r}")
        mask = _bernoulli_mask(conn.seed, p, n_pre, n_post)
    elif kind == "explicit":
        return _explicit_mask(conn.pairs, n_pre, n_post)
    else:
        raise ValueError(f"unknown connectivity kind {kind!r}; use one of {', '.join(CONNECTIVITY_KINDS)}")
    if same_population and not conn.allow_self:
        np.fill_diagonal(mask, False)
    return mask


# Rows drawn per block by _bernoulli_mask: ~4 MB of doubles, small enough for the allocator to
# recycle the buffer instead of faulting fresh pages for a full (n_pre, n_post) float matrix.
_DRAW_BLOCK_ELEMENTS = 1 << 19


def _bernoulli_mask(seed: int, p: float, n_pre: int, n_post: int) -> np.ndarray:
    """``default_rng(seed).random((n_pre, n_post)) < p``, drawn in row blocks.

    Generator.random consumes the stream one double per element in C order, so consecutive
    row blocks reproduce the single large draw exactly while needing 1/8 of the memory.
    """
    rng = np.random.default_rng(seed)
    mask = np.empty((n_pre, n_post), dtype=bool)
    block = max(1, _DRAW_BLOCK_ELEMENTS // n_post)
    buffer = np.empty((min(block, n_pre), n_post))
    for start in range(0, n_pre, block):
        stop = min(n_pre, start + block)
        draw = buffer[: stop - start]
        rng.random(out=draw)
        np.less(draw, p, out=mask[start:stop])
    return mask


def _explicit_mask(pairs, n_pre: int, n_post: int) -> np.ndarray:
    if pairs is None:
        raise ValueError("explicit connectivity needs pairs (a list of [pre, post])")
    pairs = np.asarray(pairs)
    if pairs.size == 0:
        return np.zeros((n_pre, n_post), dtype=bool)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"explicit pairs must have shape (k, 2), got {pairs.shape}")
    if not np.issubdtype(pairs.dtype, np.integer):
        if not np.all(np.isfinite(pairs)) or np.any(pairs != np.round(pairs)):
            raise ValueError("explicit pairs must be integer neuron indices")
    pairs = pairs.astype(np.int64)
    pre, post = pairs[:, 0], pairs[:, 1]
    bad = (pre < 0) | (pre >= n_pre) | (post < 0) | (post >= n_post)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"explicit pair {k} ({int(pre[k])}, {int(post[k])}) is out of range: "
                         f"pre must be in 0..{n_pre - 1}, post in 0..{n_post - 1}")
    mask = np.zeros((n_pre, n_post), dtype=bool)
    mask[pre, post] = True
    return mask


def realize_weights(init: WeightInit, mask: np.ndarray, sign: str) -> np.ndarray:
    """Initial weights in signed model units, shape ``mask.shape``, exactly 0 where ``mask`` is False.

    * ``constant``: ``value`` everywhere.
    * ``normal``: ``default_rng(seed).normal(mean, std)``.
    * ``uniform``: ``default_rng(seed).uniform(low, high)``.
    * ``file``: ``array``, which must have shape (n_pre, n_post).

    Sign: ``excitatory`` weights are >= 0, ``inhibitory`` weights <= 0, ``signed`` any. A value
    given outright (``constant``, ``file``) with the wrong sign is an error, because it is almost
    certainly a mistake in the netlist. A drawn distribution (``normal``, ``uniform``) that reaches
    across zero is clipped to 0 on the wrong side: the synapse exists but starts silent, as a
    sign-constrained chip synapse would.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if sign not in SIGNS:
        raise ValueError(f"unknown sign {sign!r}; use one of {', '.join(SIGNS)}")
    shape = mask.shape
    kind = init.kind
    drawn = False
    if kind == "constant":
        value = _finite(init.value, "constant weight value")
        _check_sign_of_given(np.array([value]), sign, f"constant weight {value}")
        w = np.where(mask, value + 0.0, 0.0)  # + 0.0 turns a -0.0 into 0.0
    elif kind == "normal":
        mean = _finite(init.mean, "normal mean")
        std = _finite(init.std, "normal std")
        if std < 0:
            raise ValueError(f"normal std must be >= 0, got {std}")
        w = np.random.default_rng(init.seed).normal(mean, std, size=shape)
        drawn = True
    elif kind == "uniform":
        low = _finite(init.low, "uniform low")
        high = _finite(init.high, "uniform high")
        if low > high:
            raise ValueError(f"uniform low ({low}) must not exceed high ({high})")
        w = np.random.default_rng(init.seed).uniform(low, high, size=shape)
        drawn = True
    elif kind == "file":
        if init.array is None:
            raise ValueError("file weights need an array")
        w = np.array(init.array, dtype=np.float64)  # a copy: the netlist's array stays untouched
        if w.shape != shape:
            raise ValueError(f"weight array has shape {w.shape}, the projection needs {shape} (pre, post)")
        if not np.all(np.isfinite(w[mask])):
            raise ValueError("weight array holds NaN or inf on connected pairs")
        _check_sign_of_given(w[mask], sign, "weight array")
    else:
        raise ValueError(f"unknown weight kind {kind!r}; use one of {', '.join(WEIGHT_KINDS)}")
    if drawn:
        if sign == "excitatory":
            np.maximum(w, 0.0, out=w)
        elif sign == "inhibitory":
            np.minimum(w, 0.0, out=w)
    if kind != "constant":
        w[~mask] = 0.0
    return w


def _finite(value, what: str) -> float:
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value}")
    return value


def _check_sign_of_given(values: np.ndarray, sign: str, what: str) -> None:
    if sign == "excitatory" and np.any(values < 0):
        raise ValueError(f"{what} is negative but the projection is excitatory (weights must be >= 0)")
    if sign == "inhibitory" and np.any(values > 0):
        raise ValueError(f"{what} is positive but the projection is inhibitory "
                         "(inhibitory weights are written <= 0 in signed model units)")
