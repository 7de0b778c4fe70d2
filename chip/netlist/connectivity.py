"""Realize a projection's connectivity and initial weights.

Job: turn the declarative connectivity (``AllToAll``, ``OneToOne``, ``RandomConnectivity``,
``ExplicitPairs``) and weight initializer (``ConstantWeights``, ``NormalWeights``,
``UniformWeights``, ``ArrayWeights``) of a netlist projection into its connections, two index
vectors (pre, post) in the row-major order of the (n_pre, n_post) connection mask
(``realize_pairs``), and the initial weight of each connection (``realize_weights_at``). The
mapper uses these, so memory grows with the connections present, not with n_pre × n_post; the
dense forms (``realize_connectivity``: the boolean mask, ``realize_weights``: the weight matrix)
are built from them for callers that want a matrix. Each kind is one entry of a dispatch table
(``_PAIRS``, ``_WEIGHTS``); its meaning is in its dataclass's docstring (``chip.netlist.model``).

Boundary: nothing here knows about circuits, synapse rows or weight codes: placing the
connections on synapses is the job of ``chip.mapping`` and quantizing the weights is the
emulator's. What a dataclass checks on its own (ranges, shapes, finiteness) it checks when built;
what needs the sizes (equal sizes, indices in range, array shape) is checked here and raises
``ValueError`` with a plain message; the caller (the mapper) adds file, line and field path.

Everything is deterministic: random draws use ``np.random.default_rng(seed)`` over the full
(n_pre, n_post) matrix, so the value drawn for a pair does not depend on which other pairs exist.
Weights are drawn in blocks of rows, which consume the stream exactly as one large draw does;
random connections come from the same stream, read as raw outputs (``chip.netlist.bernoulli``)
or, for small projections in a process without numba, drawn as doubles in blocks of rows.
"""

from __future__ import annotations

import sys

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

__all__ = ["realize_pairs", "realize_connectivity", "realize_weights_at", "realize_weights"]


# ---------------------------------------------------------------------------------------------
# Connections: (pre, post) index pairs in the row-major order of the mask
# ---------------------------------------------------------------------------------------------


def _all_to_all(conn: AllToAll, n_pre: int, n_post: int, same_population: bool) -> tuple[np.ndarray, np.ndarray]:
    pre = np.repeat(np.arange(n_pre, dtype=np.int64), n_post)
    post = np.tile(np.arange(n_post, dtype=np.int64), n_pre)
    if same_population and not conn.allow_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return pre, post


def _one_to_one(conn: OneToOne, n_pre: int, n_post: int, same_population: bool) -> tuple[np.ndarray, np.ndarray]:
    if n_pre != n_post:
        raise ValueError(f"one_to_one needs equal sizes, got {n_pre} presynaptic and {n_post} postsynaptic neurons")
    return np.arange(n_pre, dtype=np.int64), np.arange(n_post, dtype=np.int64)


def _random(conn: RandomConnectivity, n_pre: int, n_post: int, same_population: bool) -> tuple[np.ndarray, np.ndarray]:
    pre, post = _bernoulli_pairs(conn.seed, float(conn.probability), n_pre, n_post)
    if same_population and not conn.allow_self:
        keep = pre != post
        pre, post = pre[keep], post[keep]
    return pre, post


def _explicit(conn: ExplicitPairs, n_pre: int, n_post: int, same_population: bool) -> tuple[np.ndarray, np.ndarray]:
    pairs = conn.pairs
    if pairs.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pre, post = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    bad = (pre >= n_pre) | (post >= n_post)
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"explicit pair {k} ({int(pre[k])}, {int(post[k])}) is out of range: "
                         f"pre must be in 0..{n_pre - 1}, post in 0..{n_post - 1}")
    flat = np.unique(pre * n_post + post)  # row-major order, a pair listed twice is one connection
    return flat // n_post, flat % n_post


#: connectivity type -> pair builder (conn, n_pre, n_post, same_population)
_PAIRS = {AllToAll: _all_to_all, OneToOne: _one_to_one, RandomConnectivity: _random, ExplicitPairs: _explicit}


def realize_pairs(conn: Connectivity, n_pre: int, n_post: int, *,
                  same_population: bool) -> tuple[np.ndarray, np.ndarray]:
    """The connections as two integer vectors (pre index, post index), in the row-major order of
    the mask: exactly ``np.nonzero(realize_connectivity(...))``, without the (n_pre, n_post) mask,
    so memory grows with the connections present. int32 (int64 for populations of 2^31 neurons
    or more): half the memory of int64 for any real netlist.

    ``same_population``: pre and post are one population (``allow_self`` applies).
    """
    n_pre, n_post = int(n_pre), int(n_post)
    if n_pre < 1 or n_post < 1:
        raise ValueError(f"population sizes must be positive, got {n_pre} x {n_post}")
    build = _PAIRS.get(type(conn))
    if build is None:
        raise ValueError(f"unknown connectivity {conn!r}; use one of {', '.join(CONNECTIVITY_KINDS)}")
    index_type = np.int32 if max(n_pre, n_post) < 1 << 31 else np.int64
    pre, post = build(conn, n_pre, n_post, same_population)
    return pre.astype(index_type, copy=False), post.astype(index_type, copy=False)


def realize_connectivity(conn: Connectivity, n_pre: int, n_post: int, *, same_population: bool) -> np.ndarray:
    """Boolean connection mask, shape (n_pre, n_post); ``mask[i, j]`` means pre i → post j.

    ``same_population``: pre and post are one population (``allow_self`` applies).
    """
    pre, post = realize_pairs(conn, n_pre, n_post, same_population=same_population)
    mask = np.zeros((int(n_pre), int(n_post)), dtype=bool)
    mask[pre, post] = True
    return mask


# Rows drawn per block: ~4 MB of doubles, small enough for the allocator to recycle the buffer
# instead of faulting fresh pages for a full (n_pre, n_post) float matrix.
_DRAW_BLOCK_ELEMENTS = 1 << 19


def _row_blocks(n_pre: int, n_post: int):
    block = max(1, _DRAW_BLOCK_ELEMENTS // n_post)
    for start in range(0, n_pre, block):
        yield start, min(n_pre, start + block)


#: pairs from which the compiled draw pays for starting numba in a process that has not (a
#: command that maps without running, e.g. validate: ~0.5 s and ~100 MB to start numba; 2^29
#: doubles are 1-2 s of numpy's draw)
_COMPILED_FROM_PAIRS = 1 << 29


def _bernoulli_pairs(seed: int, p: float, n_pre: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero(default_rng(seed).random((n_pre, n_post)) < p)``: Generator.random consumes
    the stream one double per element in C order, so the flat indices of the hits are those of
    one long draw. ``bernoulli.bernoulli_pairs`` finds them without making the doubles (compiled,
    on every core, split into rows and columns as they are found); numpy's draw in row blocks finds the same ones, and is used when numba is not
    loaded yet and the projection is small enough that starting it would cost more."""
    dtype = np.int32 if max(n_pre, n_post) < 1 << 31 else np.int64
    if n_pre * n_post >= _COMPILED_FROM_PAIRS or "numba" in sys.modules:
        from .bernoulli import bernoulli_pairs  # compiled: loaded only when it pays

        return bernoulli_pairs(seed, p, n_pre, n_post, dtype=dtype)
    flat = _bernoulli_flat_numpy(seed, p, n_pre, n_post)
    return (flat // n_post).astype(dtype), (flat % n_post).astype(dtype)


def _bernoulli_flat_numpy(seed: int, p: float, n_pre: int, n_post: int) -> np.ndarray:
    """The flat indices of ``default_rng(seed).random((n_pre, n_post)) < p``, drawn in row blocks
    (consecutive blocks consume the stream exactly as the single large draw does)."""
    rng = np.random.default_rng(seed)
    buffer = np.empty((min(max(1, _DRAW_BLOCK_ELEMENTS // n_post), n_pre), n_post))
    hits = np.empty(buffer.shape, dtype=bool)
    flat = []
    for start, stop in _row_blocks(n_pre, n_post):
        draw, hit = buffer[: stop - start], hits[: stop - start]
        rng.random(out=draw)
        np.less(draw, p, out=hit)
        found = np.flatnonzero(hit)
        found += start * n_post
        flat.append(found)
    return np.concatenate(flat).astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------


def _constant(init: ConstantWeights, pre: np.ndarray, post: np.ndarray, shape, sign: str) -> np.ndarray:
    value = float(init.value)
    _check_sign_of_given(np.array([value]), sign, f"constant weight {value}")
    # one value for every connection: a read-only broadcast, no memory per connection
    return np.broadcast_to(np.float64(value + 0.0), pre.shape)  # + 0.0 turns a -0.0 into 0.0


def _drawn_at(draw, pre: np.ndarray, post: np.ndarray, shape) -> np.ndarray:
    """The values at (pre, post) of one draw over the full (n_pre, n_post) matrix, made in row
    blocks (``draw(size)`` consumes the stream element by element in C order, so the blocks
    reproduce the single large draw; the value of a pair does not depend on the others)."""
    n_pre, n_post = shape
    out = np.empty(pre.size)
    bounds = np.searchsorted(pre, [start for start, _ in _row_blocks(n_pre, n_post)] + [n_pre])
    for k, (start, stop) in enumerate(_row_blocks(n_pre, n_post)):
        block = draw((stop - start, n_post))
        a, b = bounds[k], bounds[k + 1]
        out[a:b] = block[pre[a:b] - start, post[a:b]]
    return out


def _normal(init: NormalWeights, pre: np.ndarray, post: np.ndarray, shape, sign: str) -> np.ndarray:
    rng = np.random.default_rng(init.seed)
    mean, std = float(init.mean), float(init.std)
    return _clip_drawn(_drawn_at(lambda size: rng.normal(mean, std, size=size), pre, post, shape), sign)


def _uniform(init: UniformWeights, pre: np.ndarray, post: np.ndarray, shape, sign: str) -> np.ndarray:
    rng = np.random.default_rng(init.seed)
    low, high = float(init.low), float(init.high)
    return _clip_drawn(_drawn_at(lambda size: rng.uniform(low, high, size=size), pre, post, shape), sign)


def _array(init: ArrayWeights, pre: np.ndarray, post: np.ndarray, shape, sign: str) -> np.ndarray:
    w = np.asarray(init.array, dtype=np.float64)
    if w.shape != tuple(shape):
        raise ValueError(f"weight array has shape {w.shape}, the projection needs {tuple(shape)} (pre, post)")
    values = w[pre, post]  # a copy: the netlist's array stays untouched
    _check_sign_of_given(values, sign, "weight array")
    return values


#: weight initializer type -> (init, pre, post, shape, sign) -> weights at the connections
_WEIGHTS = {ConstantWeights: _constant, NormalWeights: _normal, UniformWeights: _uniform, ArrayWeights: _array}


def realize_weights_at(init: Weights, pre: np.ndarray, post: np.ndarray, shape, sign: str) -> np.ndarray:
    """Initial weights in signed model units of the connections (pre[k], post[k]) of a projection
    of ``shape`` (n_pre, n_post), connections in row-major order (as ``realize_pairs`` gives them):
    ``realize_weights(init, mask, sign)[mask]`` without any (n_pre, n_post) matrix of weights.
    A constant initializer gives a read-only broadcast (copy it to write into it).
    """
    if sign not in SIGNS:
        raise ValueError(f"unknown sign {sign!r}; use one of {', '.join(SIGNS)}")
    build = _WEIGHTS.get(type(init))
    if build is None:
        raise ValueError(f"unknown weight initializer {init!r}; use one of {', '.join(WEIGHT_KINDS)}")
    # indices at their own width (int32 from realize_pairs): a constant needs none of them, and
    # the others index with them as they are
    pre, post = np.asarray(pre), np.asarray(post)
    if pre.dtype.kind not in "iu" or post.dtype.kind not in "iu":
        pre, post = pre.astype(np.int64), post.astype(np.int64)
    return build(init, pre, post, (int(shape[0]), int(shape[1])), sign)


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
    pre, post = np.nonzero(mask)
    w = np.zeros(mask.shape)
    w[pre, post] = realize_weights_at(init, pre, post, mask.shape, sign)
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
