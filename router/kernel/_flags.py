"""The one place that holds the Numba flags of every kernel function."""

from __future__ import annotations

from typing import Any

__all__ = ["NJIT_FLAGS"]

#: No fastmath: results must match the reference implementation bit for bit.
NJIT_FLAGS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "fastmath": False,
    "error_model": "numpy",
    "boundscheck": False,
}
