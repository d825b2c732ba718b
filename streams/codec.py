"""Bytes on the wire <-> validated messages: orjson + pydantic at the edge, no pickle, no faust Record.

The decoders never raise, whatever the bytes: a message we cannot use becomes a ``router.problems.Problem``
(the reason in words and the field at fault, as a pydantic location such as ``latency_budget_ms``; its
``error`` is the dead letter's text, values cut as every problem cuts them), which the caller turns
into a dead letter with ``dead_letter`` and counts. Size is checked before parsing. Ids that need the
topology (origin, state_region, model, region) are checked by ``check_request_ids`` and ``check_region``.

Dead letters keep the raw value complete when it is at most ``max_raw_bytes`` long (the caller passes its
``max_message_bytes``, so every message that was not refused for its size is kept whole, as UTF-8 text or,
when it is not UTF-8, as base64). A longer value, i.e. one refused for its size, keeps only its first
``RAW_PREFIX_BYTES`` bytes, and the error says so: a dead letter must never be larger than what it reports.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from router.bounds import DEFAULT_MAX_CLOCK_SKEW_S, MAX_TS
from router.clock import ahead_problem
from router.errors import InputError
from router.fastrow import fast_request_row
from router.models import (
    DeadLetter,
    GridForecast,
    GridSignal,
    RegionStatus,
    Request,
    input_error_from_validation,
    strip_unknown,
)
from router.plan import Plan, RequestIds, Row
from router.problems import Problem

__all__ = [
    "DEFAULT_MAX_BYTES",
    "RAW_PREFIX_BYTES",
    "Clock",
    "Problem",
    "ahead_of",
    "check_region",
    "check_request_ids",
    "dead_letter",
    "decode_checked_request",
    "decode_forecast",
    "decode_request",
    "decode_signal",
    "decode_status",
    "encode",
    "rejected_from_input_error",
]

#: The default size limit of the decoders, the same as the default of Settings.max_message_bytes.
DEFAULT_MAX_BYTES = 65536
#: How much of an oversized value a dead letter keeps.
RAW_PREFIX_BYTES = 4096
#: pydantic's names of types, in the words of JSON
_JSON_WORDS = {
    "float value": "a number",
    "int value": "an integer",
    "string value": "a string",
    "bool value": "true or false",
    "tuple value": "a list",
    "valid tuple": "valid list",
}

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Clock:
    """The router's clock and how far ahead of it a timestamp may be (router/clock.py)."""

    now: float
    max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S

    @property
    def latest(self) -> float:
        """The latest timestamp accepted."""
        return min(MAX_TS, self.now + self.max_skew_s)


#: the timestamps of each message that must not be ahead of the router's clock (a forecast's points are
#: ahead by nature; its ``generated_at`` is not)
_CLOCKED = {
    "Request": ("ts",),
    "GridSignal": ("ts", "generated_at"),
    "GridForecast": ("generated_at",),
    "RegionStatus": ("ts",),
    "SharesMessage": ("ts",),
}


def _json_kind(value: object) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _decode(
    raw: bytes | None,
    max_bytes: int,
    model: type[M],
    clock: Clock | None = None,
    allow_extra: bool = False,
) -> M | Problem:
    """Shared decoder: size, JSON, object, the pydantic model (unknown fields refused unless
    ``allow_extra``), then the clock (when given); never raises."""
    if raw is None:
        return Problem.of("message has no value (null or tombstone); expected a JSON object")
    if len(raw) > max_bytes:
        return Problem.of(
            f"message is {len(raw)} bytes, more than the limit of {max_bytes} bytes "
            "(CARBON_ROUTER_MAX_MESSAGE_BYTES)",
            None,
        )
    if not raw.strip():
        return Problem.of("message is empty; expected a JSON object")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Problem.of(_json_problem(raw, exc))
    if not isinstance(obj, dict):
        return Problem.of(f"message is {_json_kind(obj)}, not a JSON object")
    try:
        msg = model.model_validate(strip_unknown(obj, model) if allow_extra else obj)
    except ValidationError as exc:
        return _from_validation(exc)
    except (ValueError, TypeError, RecursionError) as exc:  # a validator bug must not stop the stream
        return Problem.of(f"message could not be validated: {type(exc).__name__}")
    return msg if clock is None else (ahead_of(msg, clock) or msg)


def ahead_of(msg: BaseModel, clock: Clock) -> Problem | None:
    """None when no timestamp of ``msg`` is ahead of the router's clock, else why (naming the field)."""
    for name in _CLOCKED.get(type(msg).__name__, ()):
        ts = getattr(msg, name)
        if ts is not None:
            ahead = ahead_problem(ts, clock.now, clock.max_skew_s)
            if ahead is not None:
                return Problem.of(f"{ahead[0]}; expected {ahead[1]}", name)
    return None


def _json_problem(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as uexc:
        return f"message is not UTF-8 text (invalid byte at offset {uexc.start}); expected a JSON object"
    msg = str(exc.msg)
    if "depth" in msg or "recursion" in msg:
        return "message is not valid JSON: nested deeper than 1024 levels"
    return f"message is not valid JSON ({msg} at character {exc.pos}); expected a JSON object"


def _from_validation(exc: ValidationError) -> Problem:
    """The first pydantic error as a Problem: field is the pydantic location, error says what and why."""
    rej = rejected_from_input_error(input_error_from_validation(exc, source="message"))
    text = rej.error
    for pydantic_word, json_word in _JSON_WORDS.items():
        text = text.replace(pydantic_word, json_word)
    return Problem.of(text or "invalid message", rej.field)


def decode_request(
    raw: bytes | None, max_bytes: int, *, clock: Clock | None = None, allow_extra: bool = False
) -> Request | Problem:
    """One ``inference.requests`` value as a Request, or why it cannot be used; never raises."""
    return _decode(raw, max_bytes, Request, clock, allow_extra)


def decode_signal(
    raw: bytes | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    clock: Clock | None = None,
    allow_extra: bool = False,
) -> GridSignal | Problem:
    """One ``grid.signals`` value as a GridSignal, or why it cannot be used; never raises."""
    return _decode(raw, max_bytes, GridSignal, clock, allow_extra)


def decode_forecast(
    raw: bytes | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    clock: Clock | None = None,
    allow_extra: bool = False,
) -> GridForecast | Problem:
    """One ``grid.forecasts`` value as a GridForecast, or why it cannot be used; never raises."""
    return _decode(raw, max_bytes, GridForecast, clock, allow_extra)


def decode_status(
    raw: bytes | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    clock: Clock | None = None,
    allow_extra: bool = False,
) -> RegionStatus | Problem:
    """One ``region.status`` value as a RegionStatus, or why it cannot be used; never raises."""
    return _decode(raw, max_bytes, RegionStatus, clock, allow_extra)


def rejected_from_input_error(exc: InputError) -> Problem:
    """An InputError (e.g. from Plan.request_row) as the message's problem: field, value and expectation."""
    return Problem.of(exc.problem, exc.field, exc.received, exc.expected)


def decode_checked_request(
    raw: bytes | None,
    plan: Plan,
    max_bytes: int,
    arrival_ts: float,
    *,
    clock: Clock | None = None,
    allow_extra: bool = False,
) -> tuple[RequestIds, Row] | Problem:
    """Decode one request record and build its kernel row (at its ``ts``, else ``arrival_ts``, never
    later than the clock), or why not.

    Plainly valid records take ``router.fastrow`` (no pydantic model); anything else takes the full path,
    which accepts it or names what is wrong.
    """
    if clock is not None:
        arrival_ts = min(arrival_ts, clock.now)
    if raw is not None and len(raw) <= max_bytes and raw.strip():
        latest = MAX_TS if clock is None else clock.latest
        try:
            fast = fast_request_row(plan, orjson.loads(raw), arrival_ts, latest, allow_extra)
        except orjson.JSONDecodeError:
            fast = None
        if fast is not None:
            return fast
    got = decode_request(raw, max_bytes, clock=clock, allow_extra=allow_extra)
    if isinstance(got, Problem):
        return got
    try:
        return got, plan.request_row(got, ts=got.ts if got.ts is not None else arrival_ts, source="message")
    except InputError as exc:
        return rejected_from_input_error(exc)


def check_request_ids(req: Request, plan: Plan) -> Problem | None:
    """None when the request's origin, state_region and model are in the plan's topology, else why not."""
    try:
        plan.request_row(req, ts=0.0 if req.ts is None else req.ts, source="message")
    except InputError as exc:
        return rejected_from_input_error(exc)
    return None


def check_region(region_id: str, plan: Plan) -> Problem | None:
    """None when ``region_id`` is a region of the plan's topology, else why not (field ``region``)."""
    if region_id in plan.region_index:
        return None
    known = list(plan.region_ids)
    return Problem.of("unknown region", "region", region_id, f"a region id, one of {known}")


def _raw_text(raw: bytes) -> tuple[str, Literal["utf-8", "base64"]]:
    """The raw value as (text, encoding): UTF-8 text when it is UTF-8, base64 otherwise."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def dead_letter(
    raw: bytes | None,
    rej: Problem,
    *,
    topic: str,
    partition: int | None,
    offset: int | None,
    max_raw_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """The DeadLetter JSON for one unusable message (see the module docstring for how raw is kept)."""
    error = rej.error
    data = b"" if raw is None else raw
    if len(data) > max_raw_bytes:
        error += f"; raw holds only the first {RAW_PREFIX_BYTES} of {len(data)} bytes"
        data = data[:RAW_PREFIX_BYTES]
        for cut in range(4):  # do not let the cut split a UTF-8 character into base64 needlessly
            try:
                data[: len(data) - cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
            data = data[: len(data) - cut]
            break
    text, encoding = _raw_text(data)
    letter = DeadLetter(
        error=error,
        field=rej.field,
        raw=text,
        raw_encoding=encoding,
        topic=topic,
        partition=partition,
        offset=offset,
    )
    return orjson.dumps(letter.model_dump())


def encode(obj: Mapping[str, Any]) -> bytes:
    """A message value as compact UTF-8 JSON (placements, shares, metrics); NumPy scalars are allowed."""
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
