"""Searching codes for all circuits at once.

Job: two vectorized searches over per-circuit codes, each driving a measurement of every circuit
(``measure(codes) -> values``) towards a target:

- :func:`secant_search` for a measured value that grows with the code (potentials, time
  constants): the first step uses the nominal transfer's slope (as a Newton step), later steps
  the secant through a circuit's last two measurements (when they differ clearly and the secant
  is within a factor 2 of the nominal slope, so that noise cannot send it astray), every step kept inside the bracket the
  measurements so far have established (a bisection step where it would leave it). Mismatch
  that scales a value (the die's) is cancelled in one or two steps; the best code seen is kept.
  Time constants are searched on a log scale, where a scale factor is a shift.
- :func:`bisect_codes` for a yes/no answer that flips once along the codes (a neuron spikes or
  does not): a binary search of each circuit's bracket, widened to the whole code range where the
  starting bracket does not hold the flip.

Boundary: no measuring and no judging of targets; a circuit that ends far from its target is the
caller's to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["secant_search", "bisect_codes", "Search"]


@dataclass
class Search:
    """A search's outcome per circuit: the best ``codes``, the ``values`` measured there, and
    every (codes, values) measured, in order (``history``)."""

    codes: np.ndarray
    values: np.ndarray
    history: list = field(default_factory=list)

    @property
    def steps(self) -> int:
        return len(self.history)


def secant_search(measure, target, start, transfer, *, log: bool = False, iterations: int = 4,
                  stop: float = 0.0) -> Search:
    """Codes that make ``measure(codes)`` (one value per circuit, NaN: not measurable) equal
    ``target`` (scalar or per circuit), starting from ``start``; ``transfer`` gives the nominal
    slope and the code range (``rules.calibration.measure.Transfer``). ``log``: search on log
    values (time constants). Circuits within ``stop`` of the target (in the searched scale) keep
    their code. Returns the best code seen per circuit."""
    codes = np.asarray(start, dtype=np.float64).copy()
    n = len(codes)
    top = transfer.top if transfer.quantized else np.inf
    bottom = 0.0 if transfer.quantized else -np.inf
    scale = np.log if log else (lambda v: v)
    goal = scale(np.broadcast_to(np.asarray(target, dtype=np.float64), (n,)))
    lo = np.full(n, bottom - 1.0)      # codes known to measure below the target
    hi = np.full(n, top + 1.0)         # codes known to measure above it
    history = []
    prev_c = np.full(n, np.nan)
    prev_f = np.full(n, np.nan)
    for _ in range(iterations):
        values = np.asarray(measure(codes), dtype=np.float64)
        history.append((codes.copy(), values.copy()))
        with np.errstate(invalid="ignore", divide="ignore"):
            f = scale(values)
        err = f - goal
        known = np.isfinite(err)
        lo = np.where(known & (err < 0), np.maximum(lo, codes), lo)
        hi = np.where(known & (err > 0), np.minimum(hi, codes), hi)
        nominal = transfer.slope(codes, log=log)
        with np.errstate(invalid="ignore", divide="ignore"):
            secant = (f - prev_f) / (codes - prev_c)
        ratio = secant / nominal
        # a secant through two measurements closer than the noise says more about the noise than
        # about the slope: only a clear difference, and a slope near the nominal one, is used
        clear = np.abs(f - prev_f) > 4.0 * stop
        slope = np.where(np.isfinite(ratio) & clear & (ratio > 0.5) & (ratio < 2.0), secant, nominal)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = -err / slope
        proposal = codes + np.where(np.isfinite(step), step, 0.0)
        if transfer.quantized:
            proposal = np.rint(proposal)
            # a step that rounds to nothing while still off: one code towards the target
            stuck = (proposal == codes) & known & (np.abs(err) > stop)
            proposal = np.where(stuck, codes - np.sign(err), proposal)
        inside = (proposal > lo) & (proposal < hi)
        middle = 0.5 * (np.maximum(lo, bottom) + np.minimum(hi, top))
        middle = np.rint(middle) if transfer.quantized else middle
        proposal = np.where(inside, proposal, middle)
        proposal = np.clip(proposal, bottom, top)
        done = ~known | (np.abs(err) <= stop)
        prev_c, prev_f = np.where(done, prev_c, codes), np.where(done, prev_f, f)
        codes = np.where(done, codes, proposal)
    return _best(history, goal, scale)


def _best(history, goal, scale) -> Search:
    codes = np.stack([c for c, _ in history])
    values = np.stack([v for _, v in history])
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.abs(scale(values) - goal[None, :])
    err = np.where(np.isfinite(err), err, np.inf)
    k = np.argmin(err, axis=0)
    cols = np.arange(codes.shape[1])
    return Search(codes[k, cols], values[k, cols], history)


def bisect_codes(too_low, lo, hi, *, top: float) -> tuple[np.ndarray, np.ndarray]:
    """Per circuit, the lowest code for which ``too_low(codes)`` (a bool per circuit, True at low
    codes, False from some code on) is False, searched in [lo, hi] and, where that bracket does
    not hold the flip, in [0, top]. Returns (codes, found): ``found`` is False where even ``top``
    answers True (the code there is ``top``)."""
    lo = np.asarray(lo, dtype=np.float64).copy()
    hi = np.asarray(hi, dtype=np.float64).copy()
    # the bracket's ends must answer True (lo) and False (hi); widen those that do not
    at_lo, at_hi = too_low(lo), too_low(hi)
    lo = np.where(at_lo, lo, 0.0)
    hi = np.where(at_hi, float(top), hi)
    if np.any(~at_lo) or np.any(at_hi):
        at_lo = np.where(at_lo, True, too_low(lo))
        at_hi = np.where(at_hi, too_low(hi), False)
    found = ~at_hi
    # lo = 0 answering False: the flip is at 0 or below
    hi = np.where(at_lo, hi, lo)
    lo = np.where(at_lo, lo, lo - 1)
    while True:
        open_ = found & (hi - lo > 1)
        if not open_.any():
            break
        mid = np.where(open_, np.floor(0.5 * (lo + hi)), lo)
        answer = too_low(np.where(open_, mid, hi))
        lo = np.where(open_ & answer, mid, lo)
        hi = np.where(open_ & ~answer, mid, hi)
    return np.clip(hi, 0, top), found
