"""Spike-train metrics: distances and orders computed from spike times alone.

Pure functions on numpy arrays of spike times (µs or clock cycles); they know nothing about
chips, netlists or runs, so regression checks, training reports and pictures share them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["van_rossum", "first_divergence", "winners"]


def van_rossum(a_us: np.ndarray, b_us: np.ndarray, tau_us: float) -> float:
    """Squared van Rossum distance of two spike trains, normalized so that one unmatched spike
    adds 1: D² = (2/τ)∫(f−g)² dt with f, g the trains convolved with e^{−t/τ}. A shift by δ of
    one spike adds 2(1 − e^{−δ/τ})."""
    a = np.asarray(a_us, dtype=float)
    b = np.asarray(b_us, dtype=float)
    if len(a) == len(b) and np.array_equal(a, b):
        return 0.0

    def k(x, y):
        return float(np.exp(-np.abs(x[:, None] - y[None, :]) / tau_us).sum()) if len(x) and len(y) else 0.0

    return max(0.0, k(a, a) + k(b, b) - 2.0 * k(a, b))


def first_divergence(golden: list[tuple[int, int]], actual: list[tuple[int, int]]):
    """Index and the two (cycle, neuron) events where two time-ordered event lists first differ
    (None for a missing event), or None when they are identical."""
    for i in range(max(len(golden), len(actual))):
        g = golden[i] if i < len(golden) else None
        a = actual[i] if i < len(actual) else None
        if g != a:
            return i, g, a
    return None


def winners(first: np.ndarray) -> list[int | None]:
    """Class per sample from first-spike times (batch, neurons): the neuron that spikes first
    (ties: the lowest index), None when none spikes."""
    out = []
    for row in first:
        out.append(int(np.argmin(row)) if np.isfinite(row).any() else None)
    return out
