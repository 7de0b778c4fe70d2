"""EventProp's two named heuristics for silent neurons (not part of the exact gradient), shared by
the rules that train with the adjoint (``eventprop``, ``weight_transport`` with ``gradient: adjoint``).

``revive_silent_labels``: where the correct output neuron stayed silent, no gradient reaches it, and
the loss would only push the other outputs later — towards silence too. For those samples the push
is dropped and the correct neuron's weights from the neurons that fired are nudged up instead.

``revive_silent_hidden`` (weight bumping, as in Göltz et al. 2021): a hidden neuron silent in every
sample of the batch is out of reach of the exact gradient; its weights from the pre neurons that
fired are raised in proportion to how often they fired. Active neurons keep the exact gradient.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fired_into", "revive_silent_hidden", "revive_silent_labels"]


def fired_into(result, layers, inputs, k: int) -> np.ndarray:
    """(batch, n) per sample, which neurons feeding layer ``k`` fired (the inputs for ``k`` = 0)."""
    if k > 0:
        return result.spikes[layers[k - 1]].counts() > 0
    return np.isfinite(inputs.first_spike_times())


def revive_silent_labels(dl_dt: np.ndarray, out_first: np.ndarray, labels: np.ndarray, strength: float, fired):
    """``(dl_dt, bump)``: ``dl_dt`` without the samples whose correct output stayed silent, and the
    amount to subtract from the output layer's gradient (None when no such sample). ``fired()``
    gives the neurons feeding the output layer that fired per sample (called only when needed)."""
    rows = np.arange(out_first.shape[0])
    silent = ~np.isfinite(out_first[rows, labels])
    if not silent.any():
        return dl_dt, None
    dl_dt = dl_dt.copy()
    dl_dt[silent] = 0.0
    target = np.zeros(out_first.shape)
    target[rows[silent], labels[silent]] = 1.0
    return dl_dt, strength * (fired().T.astype(float) @ target) / out_first.shape[0]


def revive_silent_hidden(grads: list, result, layers, inputs, strength: float) -> None:
    """Subtract the weight bump of every hidden neuron silent over the whole batch from ``grads``
    (one array per layer, in place of the list's entries)."""
    for k, pop in enumerate(layers[:-1]):
        dead = result.spikes[pop].counts().sum(axis=0) == 0
        if not dead.any():
            continue
        bump = np.outer(fired_into(result, layers, inputs, k).mean(axis=0), dead.astype(float))
        grads[k] = grads[k] - strength * bump
