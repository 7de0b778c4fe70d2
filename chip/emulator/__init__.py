"""The emulator: the analog core and its event fabric, advanced step by step.

``tables`` declares the kernel's tables and builds them from the mapped chip, the die and the
configuration memory; ``core`` runs batches (a run's buffers live only while it runs); ``kernel``
and ``links`` are the compiled step loop and event fabric; ``noise`` draws the membrane noise.
Only ``chip.host`` uses this package.
"""

from ..numba_start import skip_blas_probe

skip_blas_probe()  # before the compiled loop's first load: numba without scipy.linalg

from .core import Capacity, Emulator, LinkStats, RawRun  # noqa: E402

__all__ = ["Emulator", "RawRun", "LinkStats", "Capacity"]
