"""A picture of an autoencoder's work: originals (top row) above their reconstructions (bottom).

matplotlib is optional (the ``plot`` extra); it is imported only here, only when a picture is
asked for, and :func:`write_reconstructions` returns None without it, so training never depends
on it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_reconstructions"]


def write_reconstructions(path: str | Path, originals: np.ndarray, reconstructions: np.ndarray,
                          shape: tuple[int, int] = (8, 8), title: str = "") -> Path | None:
    """Write a PNG with ``originals`` (n, h·w) in the top row and ``reconstructions`` below them,
    on one grey scale [0, 1]. Returns the path, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n, 2.6), squeeze=False)
    for row, images, label in ((0, originals, "original"), (1, reconstructions, "reconstruction")):
        for i in range(n):
            ax = axes[row][i]
            ax.imshow(np.clip(np.asarray(images[i]).reshape(shape), 0.0, 1.0), cmap="gray_r", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
