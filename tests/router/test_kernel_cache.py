"""The guard of Numba's on-disk kernel cache (router/kernel/_flags.py): an edit to any kernel source drops
the cached machine code, since Numba itself notices only edits to a cached function's own file."""

from __future__ import annotations

from pathlib import Path

from router.kernel import _flags


def _kernel(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "_a.py").write_text("X = 1\n")
    (tmp_path / "columns.py").write_text("COL = 3\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    (cache / "_a._f-10.py312.nbi").write_bytes(b"index")
    (cache / "_a._f-10.py312.1.nbc").write_bytes(b"code")
    (cache / "_a.cpython-312.pyc").write_bytes(b"bytecode")
    return tmp_path, cache


def test_an_edit_to_any_kernel_source_drops_the_cached_kernels(tmp_path: Path) -> None:
    kernel, cache = _kernel(tmp_path)
    assert _flags.drop_stale_cache(kernel)  # no stamp yet: whatever is cached is of unknown sources
    assert sorted(p.name for p in cache.iterdir()) == ["_a.cpython-312.pyc", _flags.STAMP]
    (cache / "_a._f-10.py312.nbi").write_bytes(b"index")
    assert not _flags.drop_stale_cache(kernel)  # same sources: the cache stays
    assert (cache / "_a._f-10.py312.nbi").exists()
    (kernel / "columns.py").write_text("COL = 4\n")  # a constant another module folds in
    assert _flags.drop_stale_cache(kernel)
    assert not (cache / "_a._f-10.py312.nbi").exists()
    assert (cache / "_a.cpython-312.pyc").exists()


def test_the_installed_kernel_cache_matches_its_sources() -> None:
    """Importing the kernel stamped its cache with the sources it runs (unless the folder is read-only)."""
    stamp = _flags.KERNEL_DIR / "__pycache__" / _flags.STAMP
    if stamp.exists():
        assert not _flags.drop_stale_cache()
