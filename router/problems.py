"""One problem with an input, in the user's words: where it is, what is wrong, what came, what was expected.

Every bad file, line or setting the router refuses is described by ``Problem``s; ``router.errors.InputError``
carries one or several and renders one line per problem. ``problems_from_validation`` turns *every* error of a
pydantic ``ValidationError`` into a Problem, in the words of the file rather than of Python:

- field paths use 1-based list indices, ``regions[3].pue`` (the third ``[[regions]]`` entry);
- types are JSON words: a number, an integer, a string, true or false, a list, an object;
- an unknown key (models with ``extra="forbid"``) says which known key it probably meant ("did you mean").

Values are shown with ``repr`` and cut at ``MAX_SHOWN`` characters, so a huge value never floods a terminal.
"""

from __future__ import annotations

import difflib
import types
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

__all__ = ["MAX_SHOWN", "Problem", "field_path", "problems_from_validation", "shown"]

#: Longest value shown in a message, in characters of its ``repr`` (longer ones end in ``...``).
MAX_SHOWN = 120

#: pydantic's phrases, in the words of JSON (the files the router reads are JSON or TOML)
_MSG_WORDS = (
    ("valid tuple", "valid list"),
    ("Tuple should", "List should"),
    ("valid dictionary", "valid object"),
    (" after validation", ""),
)
_TYPE_WORDS = {
    "float": "a number",
    "int": "an integer",
    "string": "a string",
    "bool": "true or false",
    "tuple": "a list",
    "list": "a list",
    "set": "a list",
    "dict": "an object",
    "model": "an object",
}
_OPS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def shown(value: object) -> str:
    """``repr(value)``, cut at MAX_SHOWN characters."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: ``source`` (a file, topic or option; "" when the reader knows it, as
    for a message whose dead letter names its topic), its 1-based ``line`` when it has lines, the ``field``
    path at fault, the ``problem`` in words, the value ``received`` (None: not shown) and what was
    ``expected``. The one type for everything the router refuses: files (``router.errors.InputError``),
    provider payloads (``router.providers``) and messages (``streams.codec``)."""

    source: str
    line: int | None
    field: str | None
    problem: str
    received: object = None
    expected: str | None = None

    @classmethod
    def of(
        cls,
        problem: str,
        field: str | None = None,
        received: object = None,
        expected: str | None = None,
        *,
        source: str = "",
        line: int | None = None,
    ) -> Problem:
        """A problem named by what is wrong first (the order readers of a message think in)."""
        return cls(source, line, field, problem, received, expected)

    @property
    def error(self) -> str:
        """The problem without where it is: ``problem; received v; expected e`` (a dead letter's ``error``,
        whose other fields say where)."""
        text = self.problem
        if self.received is not None:
            text += f"; received {shown(self.received)}"
        if self.expected:
            text += f"; expected {self.expected}"
        return text

    def render(self) -> str:
        """The problem as one line: ``file, line 3, field 'x': problem; received v; expected e``."""
        where = self.source
        if self.line is not None:
            where += f", line {self.line}"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.error}"


def field_path(loc: Sequence[int | str]) -> str | None:
    """A pydantic location as a field path, 1-based: ``('regions', 2, 'pue')`` -> ``regions[3].pue``.

    Keys that are not plain words (ids such as ``aws:us-west-1``) are quoted: ``rtt_ms['fe'].x``.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        elif part == "[key]":
            continue  # pydantic's marker of "the key itself is invalid": the path already ends at the key
        elif part.isidentifier():
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or None


def problems_from_validation(
    exc: ValidationError, source: str, line: int | None = None, *, model: type[BaseModel] | None = None
) -> list[Problem]:
    """Every error of ``exc`` as a Problem, in file order of pydantic's report.

    ``model`` (the class that was validated) lets an unknown key name the closest known one.
    """
    errors = exc.errors(include_url=False)
    locs = [tuple(e.get("loc", ())) for e in errors]
    out: list[Problem] = []
    for err, loc in zip(errors, locs, strict=True):
        kind = str(err.get("type", ""))
        if kind == "too_short" and any(o[: len(loc)] == loc and len(o) > len(loc) for o in locs):
            continue  # "at least 1 item after validation" only because its items failed: they are reported
        out.append(_problem(err, loc, source, line, model))
    return out


def _problem(
    err: Any, loc: tuple[int | str, ...], source: str, line: int | None, model: type[BaseModel] | None
) -> Problem:
    kind = str(err.get("type", ""))
    field = field_path(loc)
    msg = str(err.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    for pydantic_words, json_words in _MSG_WORDS:
        msg = msg.replace(pydantic_words, json_words)
    received = err.get("input")
    if kind == "missing" or field is None:
        received = None  # the input of these errors is the whole enclosing object
    if kind == "extra_forbidden":
        return Problem(source, line, field, "unknown key", received, _known_keys(model, loc))
    if loc and loc[-1] == "[key]":
        msg = f"invalid key: {msg}"
    return Problem(source, line, field, msg, received, expected_from(kind, err.get("ctx") or {}))


#: pydantic error type -> what was expected, filled from the error's context
_PHRASES = {
    "missing": "the field to be present",
    "finite_number": "a finite number (no NaN or inf)",
    "literal_error": "one of {expected}",
    "string_too_short": "a string of at least {min_length} character(s)",
    "string_too_long": "a string of at most {max_length} characters",
    "string_pattern_mismatch": "a string matching {pattern}",
}


def expected_from(kind: str, ctx: dict[str, Any]) -> str | None:
    """A short 'expected ...' phrase for a pydantic error type and its context."""
    if "expected" in ctx and kind not in ("literal_error",):  # the router's own errors say it themselves
        return str(ctx["expected"])
    if kind in _OPS:
        return f"a number {_OPS[kind]} {_number(next(iter(ctx.values()), None))}"
    phrase = _PHRASES.get(kind)
    if phrase is not None:
        return phrase.format_map(defaultdict(lambda: None, ctx))
    if kind in ("too_short", "too_long"):
        least = kind == "too_short"
        count = ctx.get("min_length" if least else "max_length")
        return f"a list of at {'least' if least else 'most'} {count} item(s)"
    if kind == "int_from_float":
        return "an integer"
    for suffix in ("_type", "_parsing"):
        if kind.endswith(suffix):
            return _TYPE_WORDS.get(kind.removesuffix(suffix))
    return None


def _number(bound: object) -> str:
    """A bound as written in a file: 1e6 -> ``1000000``, 0.5 -> ``0.5``."""
    if isinstance(bound, float) and bound.is_integer() and abs(bound) < 1e15:
        return str(int(bound))
    return str(bound)


def _known_keys(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str:
    """'a known key: did you mean ...?' for an unknown key at ``loc`` of ``model``."""
    owner = _model_at(model, loc[:-1]) if model is not None else None
    if owner is None:
        return "only the keys this table defines"
    known = sorted(owner.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"a known key: did you mean '{close[0]}'?"
    return "one of " + ", ".join(known)


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class found at ``loc`` inside ``model``, following fields, list items and dict values."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return None
            tp = tp.model_fields[part].annotation
            continue
        origin, args = get_origin(tp), get_args(tp)
        if origin in (tuple, list, set, frozenset) and args:
            tp = args[0]
        elif origin is dict and len(args) == 2:
            tp = args[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            rest = [a for a in get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp
