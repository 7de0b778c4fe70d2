"""Realize a projection's connectivity and initial weights as dense arrays.

Job: turn the declarative connectivity (``AllToAll``, ``OneToOne``, ``RandomConnectivity``,
``ExplicitPairs``) and weight initializer (``ConstantWeights``, ``NormalWeights``,
``UniformWeights``, ``ArrayWeights``) of a netlist projection into a boolean connection mask and a
float weight matrix, both of shape (n_pre, n_post). Each kind is one entry of a dispatch table
(``_MASKS``, ``_WEIGHTS``); its meaning is in its dataclass's docstring (``chip.netlist.model``).

Boundary: nothing here knows about circuits, synapse rows or weight codes: placing the mask on
synapses is the job of ``chip.mapping`` and quantizing the weights is the emulator's. What a
dataclass checks on its own (ranges, shapes, finiteness) it checks when built; what needs the
sizes (equal sizes, indices in range, array shape) is checked here and raises ``ValueError`` with a
plain message; the caller (the mapper) adds file, line and field path.

Everything is deterministic: random draws use ``np.random.default_rng(seed)`` over the full
(n_pre, n_post) matrix, so the value drawn for a pair does not depend on which other pairs exist.
"""

from __future__ import annotations

import numpy as np

from .model import (
    CONNECTIVITY_KINDS,
    SIGNS,
    WEIGHT_KINDS,
    AllToAll,
    ArrayWeights,
    Connectivity,
    ConstantWeights,
    ExplicitPairs,
    NormalWeights,
    OneToOne,
    RandomConnectivity,
    UniformWeights,
    Weights,
)

__all__ = ["realize_connectivity", "realize_weights"]


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------


def _all_to_all(conn: AllToAll, n_pre: int, n_post: int, same_population: bool) -> np.ndarray:
    mask = np.ones((n_pre, n_post), dtype=bool)
    if same_population and not conn.allow_self:
        np.fill_diagonal(mask, False)
    return mask


def _one_to_one(conn: OneToOne, n_pre: int, n_post: int, same_population: bool) -> np.ndarray:
    if n_pre != n_post:
        raise ValueError(f"one_to_one needs equal sizes, got {n_pre} presynaptic and {n_post} postsynaptic neurons")
    return np.eye(n_pre, dtype=bool)


def _random(conn: RandomConnectivity, n_pre: int, n_post: int, same_population: bool) -> np.ndarray:
    mask = _bernoulli_mask(conn.seed, float(conn.probability), n_pre, n_post)
    if same_population and not conn.allow_self:
        np.fill_diagonal(mask, False)
    return mask


def _explicit(conn: ExplicitPairs, n_pre: int, n_post: int, same_population: bool) -> np.ndarray:
    pairs = conn.pairs
    mask = np.zeros((n_pre, n_post), dtype=bool)
    if pairs.size == 0:
        return mask
    pre, post = pairs[:, 0], pairs[:, 1]
    bad = (pre >= n_pre) | (post >= n_post)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"explicit pair {k} ({int(pre[k])}, {int(post[k])}) is out of range: "
                         f"pre must be in 0..{n_pre - 1}, post in 0..{n_post - 1}")
    mask[pre, post] = True
    return mask


#: connectivity type -> mask builder (conn, n_pre, n_post, same_population)
_MASKS = {AllToAll: _all_to_all, OneToOne: _one_to_one, RandomConnectivity: _random, ExplicitPairs: _explicit}


def realize_connectivity(conn: Connectivity, n_pre: int, n_post: int, *, same_population: bool) -> np.ndarray:
    """Boolean connection mask, shape (n_pre, n_post); ``mask[i, j]`` means pre i → post j.

    ``same_population``: pre and post are one population (``allow_self`` applies).
    """
    n_pre, n_post = int(n_pre), int(n_post)
    if n_pre < 1 or n_post < 1:
        raise ValueError(f"population sizes must be positive, got {n_pre} x {n_post}")
    build = _MASKS.get(type(conn))
    if build is None:
        raise ValueError(f"unknown connectivity {conn!r}; use one of {', '.join(CONNECTIVITY_KINDS)}")
    return build(conn, n_pre, n_post, same_population)


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


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def _constant(init: ConstantWeights, mask: np.ndarray, sign: str) -> np.ndarray:
    value = float(init.value)
    _check_sign_of_given(np.array([value]), sign, f"constant weight {value}")
    return np.where(mask, value + 0.0, 0.0)  # + 0.0 turns a -0.0 into 0.0


def _normal(init: NormalWeights, mask: np.ndarray, sign: str) -> np.ndarray:
    return _clip_drawn(np.random.default_rng(init.seed).normal(float(init.mean), float(init.std), size=mask.shape),
                       sign)


def _uniform(init: UniformWeights, mask: np.ndarray, sign: str) -> np.ndarray:
    return _clip_drawn(np.random.default_rng(init.seed).uniform(float(init.low), float(init.high), size=mask.shape),
                       sign)


def _array(init: ArrayWeights, mask: np.ndarray, sign: str) -> np.ndarray:
    w = np.array(init.array, dtype=np.float64)  # a copy: the netlist's array stays untouched
    if w.shape != mask.shape:
        raise ValueError(f"weight array has shape {w.shape}, the projection needs {mask.shape} (pre, post)")
    _check_sign_of_given(w[mask], sign, "weight array")
    return w


#: weight initializer type -> (init, mask, sign) -> weights (entries off the mask are zeroed after)
_WEIGHTS = {ConstantWeights: _constant, NormalWeights: _normal, UniformWeights: _uniform, ArrayWeights: _array}


def realize_weights(init: Weights, mask: np.ndarray, sign: str) -> np.ndarray:
    """Initial weights in signed model units, shape ``mask.shape``, exactly 0 where ``mask`` is False.

    Sign: ``excitatory`` weights are >= 0, ``inhibitory`` weights <= 0, ``signed`` any. A value
    given outright (``ConstantWeights``, ``ArrayWeights``) with the wrong sign is an error, because
    it is almost certainly a mistake in the netlist. A drawn distribution (``NormalWeights``,
    ``UniformWeights``) that reaches across zero is clipped to 0 on the wrong side: the synapse
    exists but starts silent, as a sign-constrained chip synapse would.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if sign not in SIGNS:
        raise ValueError(f"unknown sign {sign!r}; use one of {', '.join(SIGNS)}")
    build = _WEIGHTS.get(type(init))
    if build is None:
        raise ValueError(f"unknown weight initializer {init!r}; use one of {', '.join(WEIGHT_KINDS)}")
    w = build(init, mask, sign)
    w[~mask] = 0.0
    return w


def _clip_drawn(w: np.ndarray, sign: str) -> np.ndarray:
    if sign == "excitatory":
        np.maximum(w, 0.0, out=w)
    elif sign == "inhibitory":
        np.minimum(w, 0.0, out=w)
    return w


def _check_sign_of_given(values: np.ndarray, sign: str, what: str) -> None:
    if sign == "excitatory" and np.any(values < 0):
        raise ValueError(f"{what} is negative but the projection is excitatory (weights must be >= 0)")
    if sign == "inhibitory" and np.any(values > 0):
        raise ValueError(f"{what} is positive but the projection is inhibitory "
                         "(inhibitory weights are written <= 0 in signed model units)")
