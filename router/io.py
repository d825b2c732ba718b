"""Reading JSONL input files with errors that name the file, the line, the field and the value."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from router.errors import InputError
from router.models import input_error_from_validation

__all__ = ["read_jsonl", "write_jsonl"]

M = TypeVar("M", bound=BaseModel)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with path.open("rb") as fh:
            for no, line in enumerate(fh, start=1):
                if line.strip():
                    yield no, line
    except OSError as exc:
        raise InputError(
            "cannot read file", source=str(path), received=exc.strerror, expected="a readable JSONL file"
        ) from None


def read_jsonl(path: str | Path, model: type[M]) -> list[tuple[int, M]]:
    """Every non-blank line of ``path`` validated as ``model``, with its 1-based line number."""
    p = Path(path)
    out: list[tuple[int, M]] = []
    for no, line in _lines(p):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON ({exc})",
                source=str(p),
                line=no,
                received=line[:120].decode("utf-8", "replace"),
                expected=f"one JSON object per line ({model.__name__})",
            ) from None
        if not isinstance(obj, dict):
            raise InputError(
                "not a JSON object",
                source=str(p),
                line=no,
                received=type(obj).__name__,
                expected=f"one JSON object per line ({model.__name__})",
            )
        try:
            out.append((no, model.model_validate(obj)))
        except ValidationError as exc:
            raise input_error_from_validation(exc, source=str(p), line=no) from None
    return out


def write_jsonl(rows: list[bytes], path: str | Path | None) -> None:
    """Write pre-encoded JSON lines to ``path``, or to stdout when it is None."""
    blob = b"".join(r + b"\n" for r in rows)
    if path is None:
        import sys

        sys.stdout.buffer.write(blob)
        sys.stdout.buffer.flush()
        return
    Path(path).write_bytes(blob)
