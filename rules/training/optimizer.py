"""The host-side optimizer of in-the-loop training: Adam on float master copies.

Job: turn summed gradients into new float values, keeping the moments, without touching the chip.
Boundary: ``step`` is pure (it returns the new values and the new state; ``commit`` adopts the
state), so the trainer can throw a batch's step away when a later hook of the batch fails; writing
the values to the chip (where they are quantized) and checkpointing the state are the trainer's.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Adam"]


class Adam:
    """Adam on named float arrays; ``step`` returns new arrays and new state without mutating."""

    def __init__(self, lr: float, betas=(0.9, 0.999), eps=1e-8, clip: float | None = None):
        self.lr, self.b1, self.b2, self.eps = lr, betas[0], betas[1], eps
        # elementwise clip of each gradient to [-clip, clip] before the moments (optax.clip, as in
        # jaxsnn's Yin-Yang recipe); None leaves the gradient as it is
        self.clip = clip
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lrs: dict[str, float] | None = None):
        """One Adam step of every key in ``grads``; ``lrs`` gives some keys a step size of their own."""
        t = self.t + 1
        lrs = lrs or {}
        new_p, new_m, new_v = {}, dict(self.m), dict(self.v)
        for key, g in grads.items():
            if self.clip is not None:
                g = np.clip(g, -self.clip, self.clip)
            m = self.b1 * self.m.get(key, np.zeros_like(g)) + (1 - self.b1) * g
            v = self.b2 * self.v.get(key, np.zeros_like(g)) + (1 - self.b2) * g * g
            m_hat = m / (1 - self.b1 ** t)
            v_hat = v / (1 - self.b2 ** t)
            new_p[key] = params[key] - lrs.get(key, self.lr) * m_hat / (np.sqrt(v_hat) + self.eps)
            new_m[key], new_v[key] = m, v
        return new_p, (new_m, new_v, t)

    def commit(self, state) -> None:
        self.m, self.v, self.t = state

    def state(self) -> dict:
        return {"m": dict(self.m), "v": dict(self.v), "t": self.t}

    def load(self, state: dict) -> None:
        self.m = {k: np.asarray(v) for k, v in state.get("m", {}).items()}
        self.v = {k: np.asarray(v) for k, v in state.get("v", {}).items()}
        self.t = int(state.get("t", 0))
