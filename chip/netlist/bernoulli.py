"""Random connectivity drawn straight from numpy's PCG64 stream, compiled and split over threads.

Job: ``bernoulli_flat(seed, p, n)`` gives the flat indices k (ascending) with
``np.random.default_rng(seed).random(n)[k] < p``, the same connections as that draw, without the
draw's n doubles and on every core.

Why it is the same draw, value for value:

- ``default_rng(seed)`` is a ``PCG64`` bit generator. Each step multiplies its 128-bit state by a
  fixed constant and adds its increment, then outputs 64 bits (``(hi ^ lo)`` rotated right by the
  top 6 bits of the state). This module implements that step and output; ``Generator.random``
  turns each output x into one double, ``(x >> 11) * 2**-53`` (one output per value, in order).
- ``(x >> 11) * 2**-53 < p`` is exact arithmetic on both sides (k = x >> 11 < 2**53 is a double,
  scaling by a power of two is exact), so it holds iff ``k < p * 2**53``, iff
  ``k < T = ceil(p * 2**53)`` (k is an integer), iff ``x < T * 2**11``: one unsigned comparison.
- The stream is cut into chunks; each chunk starts from a copy of the generator advanced
  (``PCG64.advance``) to its first value, so the chunks can run in any order, on any thread
  (``CHIPCTL_THREADS`` of them, else up to two, as a run's batch).

The tests compare this with numpy's own draw (``tests/test_mapping.py``); if numpy ever seeds
``default_rng`` with another bit generator, ``bernoulli_flat`` falls back to numpy's draw.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..numba_start import skip_blas_probe

skip_blas_probe()  # before this module's first compiled call: numba without scipy.linalg

from llvmlite import ir  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

__all__ = ["bernoulli_flat", "bernoulli_pairs", "default_threads", "threshold_of"]

_MULT_HI = np.uint64(2549297995355413924)  # PCG64's 128-bit multiplier, high and low words
_MULT_LO = np.uint64(4865540595714422341)
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1
_MULT = (int(_MULT_HI) << 64) | int(_MULT_LO)
_MULT2 = _MULT * _MULT & _MASK128  # two steps at once: s -> m2 * s + (m + 1) * i


def _words(value: int) -> tuple[np.uint64, np.uint64]:
    return np.uint64(value >> 64), np.uint64(value & _MASK64)


#: values per chunk: a few ms of work each, so the tens to hundreds of chunks of a large
#: projection share the cores evenly
_CHUNK = 1 << 22


@intrinsic
def _mulhi(typingctx, a, b):
    """High 64 bits of the 128-bit product of two uint64 (one machine multiply)."""
    sig = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _step(s_hi, s_lo, m_hi, m_lo, i_hi, i_lo):
    """state * m + i (mod 2**128), states as (high, low) uint64 words."""
    lo = s_lo * m_lo
    hi = _mulhi(s_lo, m_lo) + s_hi * m_lo + s_lo * m_hi
    new_lo = lo + i_lo
    new_hi = hi + i_hi + (np.uint64(1) if new_lo < lo else np.uint64(0))
    return new_hi, new_lo


@njit(cache=True, nogil=True, inline="always")
def _output(s_hi, s_lo):
    """PCG64's output (XSL RR): (hi ^ lo) rotated right by the state's top 6 bits."""
    x = s_hi ^ s_lo
    r = s_hi >> np.uint64(58)
    return (x >> r) | (x << ((np.uint64(64) - r) & np.uint64(63)))


@njit(cache=True, nogil=True)
def _chunk_hits(s_hi, s_lo, i_hi, i_lo, m2_hi, m2_lo, i2_hi, i2_lo, count, limit, offset, out):
    """Steps PCG64 (state s, increment i) ``count`` times; writes offset + j for each output
    j < ``limit`` into ``out`` and returns how many; -1 if ``out`` is too small.

    Outputs j and j + 1 come from two interleaved streams that each step twice at once
    (multiplier m2 = m**2, increment i2 = (m + 1) * i), so the two multiply chains overlap."""
    n = 0
    cap = out.shape[0]
    a_hi, a_lo = _step(s_hi, s_lo, _MULT_HI, _MULT_LO, i_hi, i_lo)  # the state of output 0
    b_hi, b_lo = _step(a_hi, a_lo, _MULT_HI, _MULT_LO, i_hi, i_lo)  # and of output 1
    j = 0
    while j < count:
        x = _output(a_hi, a_lo)
        if x < limit:
            if n == cap:
                return -1
            out[n] = offset + j
            n += 1
        if j + 1 < count:
            y = _output(b_hi, b_lo)
            if y < limit:
                if n == cap:
                    return -1
                out[n] = offset + j + 1
                n += 1
        a_hi, a_lo = _step(a_hi, a_lo, m2_hi, m2_lo, i2_hi, i2_lo)
        b_hi, b_lo = _step(b_hi, b_lo, m2_hi, m2_lo, i2_hi, i2_lo)
        j += 2
    return n


def default_threads() -> int:
    """Threads the draw uses, as a run does: ``CHIPCTL_THREADS``, else up to two cores (a value
    that is not a whole number is the run's to refuse; the draw then takes the default)."""
    fallback = min(2, os.cpu_count() or 1)
    env = os.environ.get("CHIPCTL_THREADS", "").strip()
    try:
        return max(1, int(env)) if env else fallback
    except ValueError:
        return fallback


def threshold_of(p: float) -> int | None:
    """T * 2**11 with T = ceil(p * 2**53): a raw output x gives a double below p iff x < this.
    None when every value is below p (p > 1 - 2**-53, so x < 2**64 always)."""
    limit = math.ceil(math.ldexp(float(p), 53)) << 11 if p > 0 else 0
    return None if limit > _MASK64 else limit


def _capacity(count: int, p: float) -> int:
    mean = count * min(max(p, 0.0), 1.0)
    return int(min(count, mean + 10.0 * math.sqrt(mean) + 64))


@njit(cache=True, nogil=True)
def _split(flat, n_post, pre, post):
    """Row and column of flat indices in rows of ``n_post``."""
    for k in range(flat.shape[0]):
        row = flat[k] // n_post
        pre[k] = row
        post[k] = flat[k] - row * n_post


def bernoulli_flat(seed, p: float, n: int, threads: int | None = None) -> np.ndarray:
    """Ascending int64 indices k < n with ``default_rng(seed).random(n)[k] < p``."""
    return _draw(seed, p, int(n), threads, None, None)


def bernoulli_pairs(seed, p: float, n_pre: int, n_post: int, threads: int | None = None,
                    dtype=np.int32) -> tuple[np.ndarray, np.ndarray]:
    """``divmod(bernoulli_flat(seed, p, n_pre * n_post), n_post)`` as two ``dtype`` vectors (row,
    column), split on the draw's threads, without the flat int64 vector of all hits."""
    return _draw(seed, p, int(n_pre) * int(n_post), threads, int(n_post), dtype)


def _draw(seed, p: float, n: int, threads: int | None, n_post: int | None, dtype):
    def done(flat: np.ndarray):
        if n_post is None:
            return flat
        return (flat // n_post).astype(dtype), (flat % n_post).astype(dtype)

    bitgen = np.random.default_rng(seed).bit_generator
    if not isinstance(bitgen, np.random.PCG64):  # not the stream this module knows: numpy's own draw
        return done(np.flatnonzero(np.random.default_rng(seed).random(n) < p))
    limit = threshold_of(p)
    if limit is None:
        return done(np.arange(n, dtype=np.int64))
    if limit == 0 or n == 0:
        return done(np.zeros(0, dtype=np.int64))
    state = bitgen.state
    starts = list(range(0, n, _CHUNK))
    # every chunk writes into its slot of one buffer made here: buffers made on the worker threads
    # would come from per-thread heaps that keep their pages after the draw
    caps = [_capacity(min(_CHUNK, n - start), p) for start in starts]
    slots = np.zeros(len(starts) + 1, dtype=np.int64)
    np.cumsum(caps, out=slots[1:])
    out = np.empty(int(slots[-1]), dtype=np.int64)
    if n_post is not None:  # each chunk splits its hits into these right after drawing them
        pre_out, post_out = np.empty(out.size, dtype=dtype), np.empty(out.size, dtype=dtype)
    found = [0] * len(starts)

    def chunk(k: int) -> None:
        start = starts[k]
        copy = np.random.PCG64()
        copy.state = state
        copy.advance(start)
        s = copy.state["state"]
        st, inc = s["state"], s["inc"]
        found[k] = _chunk_hits(*_words(st), *_words(inc), *_words(_MULT2), *_words((_MULT + 1) * inc & _MASK128),
                               min(_CHUNK, n - start), np.uint64(limit), start, out[slots[k]:slots[k + 1]])
        if n_post is not None and found[k] > 0:
            at = slice(slots[k], slots[k] + found[k])
            _split(out[at], n_post, pre_out[at], post_out[at])

    threads = min(len(starts), threads if threads is not None else default_threads())
    if threads <= 1:
        for k in range(len(starts)):
            chunk(k)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(chunk, range(len(starts))))
    parts = []
    for k, start in enumerate(starts):
        if found[k] < 0:  # more hits than the bound allows (never seen): numpy's draw of that chunk
            rng = np.random.PCG64()
            rng.state = state
            rng.advance(start)
            hits = start + np.flatnonzero(np.random.Generator(rng).random(min(_CHUNK, n - start)) < p)
            parts.append(hits if n_post is None else done(hits))
        else:
            at = slice(slots[k], slots[k] + found[k])
            parts.append(out[at] if n_post is None else (pre_out[at], post_out[at]))
    if n_post is None:
        return np.concatenate(parts)
    del out
    return (np.concatenate([pre for pre, _ in parts]).astype(dtype, copy=False),
            np.concatenate([post for _, post in parts]).astype(dtype, copy=False))
