"""Reading JSONL input files with errors that name the file, the line, the field and the value.

A bad file is reported whole: every bad line's problems (one per bad field), up to ``MAX_PROBLEMS``, then a
count of the rest, so a user fixes them all in one go instead of one per run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from router.errors import InputError
from router.outputs import write_atomic
from router.problems import Problem, problems_from_validation

__all__ = ["MAX_PROBLEMS", "read_csv", "read_jsonl", "write_jsonl"]

#: Most problems one refused input file lists; the rest are counted ("... and 35 more not shown").
MAX_PROBLEMS = 20

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


def _line_problems(line: bytes, no: int, source: str, model: type[M]) -> list[Problem] | M:
    """The line as ``model``, or what is wrong with it."""
    expected = f"one JSON object per line ({model.__name__})"
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return [Problem(source, no, None, f"not valid JSON ({exc})", text, expected)]
    if not isinstance(obj, dict):
        return [Problem(source, no, None, "not a JSON object", text, expected)]
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        return problems_from_validation(exc, source, no)


def read_jsonl(path: str | Path, model: type[M]) -> list[tuple[int, M]]:
    """Every non-blank line of ``path`` validated as ``model``, with its 1-based line number.

    Raises one InputError listing the problems of every bad line (at most MAX_PROBLEMS, the rest counted).
    """
    p = Path(path)
    source = str(p)
    out: list[tuple[int, M]] = []
    problems: list[Problem] = []
    omitted = 0
    for no, line in _lines(p):
        got = _line_problems(line, no, source, model)
        if isinstance(got, list):
            keep = got[: max(0, MAX_PROBLEMS - len(problems))]
            problems.extend(keep)
            omitted += len(got) - len(keep)
        elif not problems:
            out.append((no, got))
    if problems:
        raise InputError.from_problems(problems, omitted=omitted)
    return out


def read_csv(path: str | Path, columns: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV file with a header line, as (1-based line number, column -> text); the header must
    hold every name of ``columns`` (other columns are kept). Raises InputError naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 ({exc.reason})"
        raise InputError(
            "cannot read file", source=str(p), received=why, expected="a readable CSV file"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    missing = [c for c in columns if header is None or c not in header]
    if header is None or missing:
        raise InputError(
            f"missing column(s) {missing}",
            source=str(p),
            line=1,
            received=header,
            expected=f"a header line naming {list(columns)}",
        )
    return [(reader.line_num, dict(zip(header, row, strict=False))) for row in reader if any(row)]


def write_jsonl(rows: list[bytes], path: str | Path | None) -> None:
    """Write pre-encoded JSON lines to ``path`` (atomically: all or nothing), or to stdout when it is None."""
    blob = b"".join(r + b"\n" for r in rows)
    if path is None:
        import sys

        sys.stdout.buffer.write(blob)
        sys.stdout.buffer.flush()
        return
    write_atomic(Path(path), blob)
