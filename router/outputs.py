"""Where the commands write: output paths checked before any work starts, files written atomically.

- A file option (``score --out``, ``signals --out``, ``signals --forecasts-out``) names a file in a folder
  that exists: a missing folder is refused rather than created, so that a mistyped folder name never grows
  a new tree; a path that is a folder is refused.
- A folder option (``frontier --out``, ``demo --out``) names the folder to fill: missing folders are created
  (that is what the option asks for); a path that is an existing file is refused.
- Every file is written to a temporary file beside it, then renamed over the target (``os.replace``), so a
  failure leaves the previous file, or none, never a half-written one.

Each refusal is an InputError (exit 2) naming the option, the path and what was expected.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from router.errors import InputError

__all__ = ["FRONTIER_FILES", "check_dir_target", "check_file_target", "ensure_dir", "write_atomic"]


def check_file_target(path: Path, option: str) -> None:
    """Refuse ``path`` as the file of ``option`` unless it can be written (see the module docstring)."""
    source = f"{option} {path}"
    if path.is_dir():
        raise InputError("is a folder", source=source, expected=f"a file path, e.g. {path / 'out.jsonl'}")
    folder = path.parent
    if not folder.exists():
        raise InputError(
            "the folder does not exist",
            source=source,
            received=str(folder),
            expected=f"a file in an existing folder (create it first: mkdir -p {folder})",
        )
    _check_folder(folder, source)


#: what the folder options hold, for their messages
FRONTIER_FILES = "frontier.json, frontier.csv, frontier.png and breakeven.json"


def check_dir_target(path: Path, option: str, holds: str = FRONTIER_FILES) -> None:
    """Refuse ``path`` as the folder of ``option`` when it is a file or cannot be created or written."""
    source = f"{option} {path}"
    if path.exists() and not path.is_dir():
        raise InputError(
            "is a file, not a folder",
            source=source,
            expected=f"a folder to write {holds} into (created when missing)",
        )
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    _check_folder(existing, source)


def _check_folder(folder: Path, source: str) -> None:
    if not folder.is_dir():
        raise InputError(
            "a parent is a file, not a folder", source=source, received=str(folder), expected="a folder path"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            "the folder is not writable", source=source, received=str(folder), expected="a writable folder"
        )


def ensure_dir(path: Path, option: str) -> Path:
    """Create the folder of ``option`` (and missing parents); InputError when that fails."""
    check_dir_target(path, option)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            "cannot create the folder",
            source=f"{option} {path}",
            received=exc.strerror,
            expected="a writable path",
        ) from None
    return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    tmp: Path | None = None
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode(path))
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise InputError(
            "cannot write the file",
            source=str(path),
            received=exc.strerror,
            expected="a writable file path in an existing folder",
        ) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _mode(path: Path) -> int:
    """The permission bits of the file being replaced, else those a plain ``open`` would give."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
