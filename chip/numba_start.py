"""Start numba without importing scipy.linalg.

When numba compiles or loads its first function it imports ``numba.np.arraymath``, which imports
``scipy.linalg`` (~0.2-0.3 s and ~14 MB resident) only to learn whether ``np.correlate`` and
``np.convolve`` may use BLAS; without it they use numba's own loop. No compiled code of this
project calls either. ``skip_blas_probe()`` imports that module once with the probe's import
refused, then lifts the refusal: anything imported later is untouched, and ``np.dot`` and
``np.linalg`` in compiled code still import scipy when they are first compiled. It does nothing
when ``scipy.linalg`` or ``numba.np.arraymath`` is already imported (the probe is made or paid).
"""

from __future__ import annotations

import sys

__all__ = ["skip_blas_probe"]

_PROBE = "scipy.linalg.cython_blas"


def skip_blas_probe() -> None:
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules or _PROBE in sys.modules:
        return
    sys.modules[_PROBE] = None  # type: ignore[assignment]  # "import scipy.linalg.cython_blas" raises ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if sys.modules.get(_PROBE, 0) is None:
            del sys.modules[_PROBE]
