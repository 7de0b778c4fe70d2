"""Large buffers straight from the operating system, so freed set-up memory leaves the process.

glibc's malloc serves a request of at least ``M_MMAP_THRESHOLD`` bytes with its own memory map and
unmaps it on free, but it raises that threshold to the size of each mapped block freed (up to
32 MB). Set-up frees many such blocks (connection draws, sort orders, per-half gathers), after
which blocks of up to 32 MB come from the heap, stay resident after they are freed, and a zeroed
array made there is written page by page instead of mapped lazily. At 16 000 neurons that is
~20 MB more at the peak. ``keep_large_buffers_mapped()`` fixes the threshold at 16 MB (which also
stops the raising); anything else (another C library, no ``mallopt``) leaves malloc as it is.
16 MB, not lower: the many 1-16 MB temporaries of the set-up (a chunk's weights, a projection's
per-unit arrays) are then reused from the heap instead of mapped and faulted in afresh each time;
at 16 000 neurons 1 MB cost ~45 000 more page faults (~0.15 s of system time) for ~3 MB less at
the peak.
"""

from __future__ import annotations

import os

__all__ = ["keep_large_buffers_mapped"]

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
THRESHOLD = 16 << 20
_done = False


def keep_large_buffers_mapped() -> bool:
    """Fix glibc's mmap threshold at 16 MB (once per process); True when it was set."""
    global _done
    if _done:
        return True
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        import ctypes

        libc = ctypes.CDLL(None)
        _done = bool(libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD))
    except (AttributeError, OSError, ValueError):
        return False
    return _done
