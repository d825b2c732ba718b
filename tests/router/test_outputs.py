"""Output paths are checked before any work, and files are written whole or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from router.errors import InputError
from router.outputs import check_dir_target, check_file_target, ensure_dir, write_atomic


def test_a_file_in_a_missing_folder_is_refused_naming_the_folder(tmp_path: Path) -> None:
    """A file option whose folder does not exist is refused (not created), naming option, path and folder."""
    target = tmp_path / "nope" / "deeper" / "x.jsonl"
    with pytest.raises(InputError) as info:
        check_file_target(target, "--out")
    msg = info.value.render()
    assert msg.startswith(f"--out {target}: the folder does not exist")
    assert str(target.parent) in msg
    assert "mkdir -p" in msg
    assert not (tmp_path / "nope").exists()


def test_a_folder_is_refused_as_a_file(tmp_path: Path) -> None:
    """A file option naming an existing folder is refused with an example file path."""
    with pytest.raises(InputError) as info:
        check_file_target(tmp_path, "--out")
    assert "is a folder" in info.value.render()
    assert "expected a file path" in info.value.render()


def test_a_file_under_a_file_is_refused(tmp_path: Path) -> None:
    """A path whose parent is a file is refused for both kinds of option."""
    blocker = tmp_path / "f.txt"
    blocker.write_text("x")
    for check in (check_file_target, check_dir_target):
        with pytest.raises(InputError) as info:
            check(blocker / "x", "--out")
        assert "a parent is a file" in info.value.render()


def test_a_file_is_refused_as_a_folder_and_missing_folders_are_created(tmp_path: Path) -> None:
    """A folder option naming a file is refused; a missing folder (and its parents) is created."""
    existing = tmp_path / "existing.txt"
    existing.write_text("keep")
    with pytest.raises(InputError) as info:
        check_dir_target(existing, "--out")
    assert "is a file, not a folder" in info.value.render()
    assert "frontier.json" in info.value.render()
    made = ensure_dir(tmp_path / "a" / "b", "--out")
    assert made.is_dir()


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the final rename fails, the old file is intact, no temporary file is left, and exit-2 error."""
    target = tmp_path / "p.jsonl"
    target.write_bytes(b"old\n")

    def broken(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(InputError) as info:
        write_atomic(target, b"new\n" * 1000)
    assert "No space left on device" in info.value.render()
    assert target.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl"]


def test_an_atomic_write_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    """A successful write replaces the content and keeps the permission bits of the file it replaces."""
    target = tmp_path / "p.jsonl"
    target.write_bytes(b"old\n")
    target.chmod(0o640)
    write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.jsonl"
    write_atomic(fresh, b"x\n")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
