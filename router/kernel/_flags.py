"""The one place that holds the Numba flags of every kernel function, and the guard of their on-disk cache."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["NJIT_FLAGS", "NO_RC_FLAGS", "drop_stale_cache"]

#: the kernel's sources: the compiled functions call across these modules and fold in their constants
KERNEL_DIR = Path(__file__).resolve().parent
#: the hash of the sources the cached machine code in ``__pycache__`` was compiled from
STAMP = "kernel-sources.sha256"


def drop_stale_cache(kernel_dir: Path = KERNEL_DIR) -> bool:
    """Delete Numba's cached kernels when any source of router/kernel/ changed since they were written
    (True when deleted).

    Numba keys a cached function on its own file only: after an edit to a function it calls, or to a column
    constant, in another module, it would load the old machine code and run the old kernel without a word.
    A cache Numba keeps elsewhere (``NUMBA_CACHE_DIR``, or a read-only install) is not touched; a directory
    that cannot be written is left as it is.
    """
    digest = hashlib.sha256()
    for src in sorted(kernel_dir.glob("*.py")):
        digest.update(src.name.encode() + b"\0" + src.read_bytes())
    cache = kernel_dir / "__pycache__"
    stamp = cache / STAMP
    try:
        if stamp.is_file() and stamp.read_text() == digest.hexdigest():
            return False
        stale = [*cache.glob("*.nbi"), *cache.glob("*.nbc")] if cache.is_dir() else []
        for f in stale:
            f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest.hexdigest())
    except OSError:
        return False
    return bool(stale)


drop_stale_cache()

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
