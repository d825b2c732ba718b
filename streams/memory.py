"""The worker's C heap: glibc's malloc told to give freed memory back, so the resident set follows what lives.

Measured with ``python -m bench.soak_bench`` (which splits the resident set by kind of mapping): at 1k
requests/s, after the dedup memory and the windows had filled, all the growth was in the ``[heap]`` that
glibc's ``malloc`` extends with ``brk``, in steps of ~12 MB plus a slow creep, while NumPy's large arrays
(their own mappings) did not grow. Two glibc behaviours make that heap only grow:

- the mmap threshold is dynamic: once a large block that had its own mapping is freed, blocks up to its
  size come from the heap instead, where a freed large temporary (the re-solve's concatenated window, a
  batch's output columns) leaves a hole that the heap keeps;
- the heap is only trimmed from its top, so one live object above the holes keeps them resident.

``tune_malloc`` fixes the threshold (which turns the dynamic rule off); ``trim_heap``, run on a timer,
returns the free pages inside the heap too (``malloc_trim`` releases whole free pages anywhere in it).
Neither exists outside glibc: there both are no-ops that say so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

__all__ = ["MMAP_THRESHOLD_BYTES", "TRIM_INTERVAL_S", "trim_heap", "tune_malloc"]

#: blocks this large and larger get their own mapping, returned to the system when freed (glibc's starting
#: value; setting it stops glibc from raising it)
MMAP_THRESHOLD_BYTES = 128 * 1024
#: how often the worker returns free heap pages (each trim's time is in ``carbon_router_heap_trim_seconds``)
TRIM_INTERVAL_S = 30.0
_M_MMAP_THRESHOLD = -3


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


_LIBC = _libc()


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold; False when this is not glibc (nothing changed)."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(mmap_threshold)))


def trim_heap() -> float | None:
    """Give the heap's free pages back to the system; the seconds it took, or None when this is not glibc."""
    if _LIBC is None:
        return None
    started = time.perf_counter()
    _LIBC.malloc_trim(ctypes.c_size_t(0))
    return time.perf_counter() - started
