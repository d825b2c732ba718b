"""The one place that holds the Numba flags of every kernel function."""

from __future__ import annotations

from typing import Any

__all__ = ["NJIT_FLAGS", "NO_RC_FLAGS"]

#: No fastmath: results must match the reference implementation bit for bit.
NJIT_FLAGS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "fastmath": False,
    "error_model": "numpy",
    "boundscheck": False,
}

#: Every kernel function but the two entry points that allocate: compiled without Numba's reference counting
#: (NRT). Reading an array out of a named tuple otherwise increments and decrements its count atomically at
#: every access, which cost about 8 ns per request x region at R = 32 (``make bench``). A function with these
#: flags cannot allocate (Numba refuses to compile it); tests/router/test_kernel_compiled.py checks that the
#: compiled decide loop holds no reference-count call.
NO_RC_FLAGS: dict[str, Any] = {**NJIT_FLAGS, "_nrt": False}
