"""What the host has written to the chip: parameter codes per circuit and weight codes per synapse.

This is the chip's configuration memory, nothing more: the emulator reads it (through the die) to
get effective values, the host interface reads and writes it (through the nominal transfer).
Snapshots (``copy``) make transactions and checkpoints cheap and exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ChipState"]


@dataclass(eq=False)
class ChipState:
    """codes[parameter]: (neurons,) float codes (whole numbers on quantized profiles);
    exc_code/inh_code[projection]: weight codes per connection, (n_synapses,) in the order of the
    projection's connection vector (row-major over its mask, see ``chip.mapping.PlacedProjection``);
    adaptive: (neurons,) bool, ALIF neurons; soft_reset: (neurons,) bool, neurons whose reset
    subtracts the threshold (None: none). ``version`` increases on every write."""

    codes: dict[str, np.ndarray]
    adaptive: np.ndarray
    exc_code: dict[str, np.ndarray]
    inh_code: dict[str, np.ndarray]
    version: int = 0
    soft_reset: np.ndarray | None = None

    def copy(self) -> "ChipState":
        return ChipState(
            codes={k: v.copy() for k, v in self.codes.items()},
            adaptive=self.adaptive.copy(),
            exc_code={k: v.copy() for k, v in self.exc_code.items()},
            inh_code={k: v.copy() for k, v in self.inh_code.items()},
            version=self.version,
            soft_reset=None if self.soft_reset is None else self.soft_reset.copy(),
        )

    def restore(self, snapshot: "ChipState") -> None:
        """Put every array back as it was in ``snapshot`` (in place, so views stay valid)."""
        for k, v in snapshot.codes.items():
            self.codes[k][...] = v
        self.adaptive[...] = snapshot.adaptive
        for k, v in snapshot.exc_code.items():
            self.exc_code[k][...] = v
        for k, v in snapshot.inh_code.items():
            self.inh_code[k][...] = v
        self.version += 1

    def touch(self, what: str = "") -> None:
        """Mark the configuration as written (``what`` names the write for the reader; it is not kept)."""
        self.version += 1
