"""The emulator: the analog core and its event fabric, advanced step by step.

``core`` turns the mapped chip, the die and the configuration memory into the kernel's tables and
runs batches; ``kernel`` is the compiled step loop. Only ``chip.host`` uses this package.
"""

from .core import Emulator, LinkStats, RawRun

__all__ = ["Emulator", "RawRun", "LinkStats"]
