"""glibc's malloc gives freed memory back (streams/memory.py): the soak's heap creep."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.memory import trim_heap, tune_malloc

pytestmark = pytest.mark.skipif(trim_heap() is None, reason="not glibc: the functions are no-ops")


def _rss_mb() -> float:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def test_trim_returns_the_free_pages_between_live_objects() -> None:
    """Values of ~1 KB (malloc'd, like the dedup memory's placements) freed but for one in 64: the heap
    cannot shrink from its top, and only the trim gives the pages in between back."""
    assert tune_malloc()
    values = [b"%d" % k + bytes(1000) for k in range(200_000)]  # ~200 MB
    keep = values[::64]
    del values
    before = _rss_mb()
    took = trim_heap()
    after = _rss_mb()
    assert took is not None
    assert before - after > 100.0, f"RSS {before:.1f} -> {after:.1f} MB"
    assert len(keep) == 3125
