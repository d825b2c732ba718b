"""What every provider parser shares: the result types, the rejection, time parsing and plausibility bounds.

A parser takes the raw payload bytes, the topology's zone map for its provider and ``now`` (epoch s), and
returns ``Parsed`` (canonical GridSignals and GridForecasts) or a ``router.problems.Problem`` that names the
field, the value received and what was expected. Parsers never raise on bad input: whatever the bytes, the
caller gets one of the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from router.models import GridForecast, GridSignal, input_error_from_validation
from router.problems import Problem

__all__ = [
    "CARBON_MAX_GCO2_PER_KWH",
    "FUTURE_TOLERANCE_S",
    "LBS_PER_MWH_TO_G_PER_KWH",
    "MAX_FORECAST_AHEAD_S",
    "MAX_PAYLOAD_BYTES",
    "PRICE_MAX_USD_PER_MWH",
    "PRICE_MIN_USD_PER_MWH",
    "Parsed",
    "ZoneMap",
    "build",
    "carbon_value",
    "check_not_future",
    "fail",
    "guarded",
    "load_json_object",
    "lookup_zone",
    "number",
    "parse_time",
    "price_value",
    "text",
]

#: provider zone -> the topology region ids it feeds (``Topology.providers``)
ZoneMap = Mapping[str, Sequence[str]]

#: 1 lb = 453.59237 g (exact, international avoirdupois pound), so lbs/MWh * 0.45359237 = g/kWh.
LBS_PER_MWH_TO_G_PER_KWH = 0.45359237
#: How far in the future a provider's generation time or a measured value's time may be (clock skew).
FUTURE_TOLERANCE_S = 300.0
#: Forecast points further ahead than this are refused (WattTime issues 24-72 h, ENTSO-E day-ahead ~36 h).
MAX_FORECAST_AHEAD_S = 8 * 86400.0
#: Largest raw payload a parser reads (a year of hourly A44 prices for one zone is about 1 MB).
MAX_PAYLOAD_BYTES = 4 << 20
#: Plausible carbon intensity: lignite plants emit about 1,100-1,300 gCO2/kWh; 3,000 leaves headroom.
CARBON_MAX_GCO2_PER_KWH = 3000.0
#: Plausible wholesale prices: market caps are EU SDAC +4,000 / -500 EUR/MWh, AU NEM 15,500 / -1,000 AUD/MWh,
#: ERCOT 5,000 USD/MWh; these bounds leave several times that as headroom.
PRICE_MIN_USD_PER_MWH = -10_000.0
PRICE_MAX_USD_PER_MWH = 100_000.0


@dataclass(frozen=True, slots=True)
class Parsed:
    """The canonical messages one raw payload yields (either tuple may be empty, not both)."""

    signals: tuple[GridSignal, ...] = ()
    forecasts: tuple[GridForecast, ...] = field(default=())


class _RejectError(Exception):
    """Raised inside a parser to leave it with a Problem; parsers catch it and never let it out."""

    def __init__(self, rejection: Problem) -> None:
        super().__init__(rejection.problem)
        self.rejection = rejection


def fail(
    problem: str, field: str | None, received: object = None, expected: str | None = None
) -> _RejectError:
    """The exception a parser raises internally to reject the payload."""
    return _RejectError(Problem.of(problem, field, received, expected))


def guarded(parse: Any, *args: Any) -> Parsed | Problem:
    """Run ``parse(*args)``; turn an internal rejection or any unexpected error into a Problem."""
    try:
        got: Parsed = parse(*args)
    except _RejectError as exc:
        return exc.rejection
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError, MemoryError) as exc:
        return Problem.of(f"payload could not be parsed ({type(exc).__name__})")
    return got


def load_json_object(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """The payload as a JSON object, or a rejection (size, UTF-8, JSON, object)."""
    if raw is None or not raw.strip():
        raise fail("payload is empty", None, expected="a JSON object")
    if len(raw) > max_bytes:
        raise fail(f"payload is {len(raw)} bytes", None, expected=f"at most {max_bytes} bytes")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise fail(f"payload is not valid JSON ({exc.msg})", None, expected="a JSON object") from None
    if not isinstance(obj, dict):
        raise fail(
            "payload is not a JSON object", None, received=type(obj).__name__, expected="a JSON object"
        )
    return obj


def number(value: object, field: str) -> float:
    """A finite JSON number (not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail("not a number", field, value, "a finite number")
    try:
        out = float(value)
    except OverflowError:
        raise fail("number too large", field, value, "a finite number") from None
    if not math.isfinite(out):
        raise fail("not a finite number", field, value, "a finite number (no NaN or inf)")
    return out


def text(value: object, field: str) -> str:
    """A non-empty JSON string."""
    if not isinstance(value, str) or not value:
        raise fail(
            "missing or not a string" if value is None else "not a non-empty string",
            field,
            value,
            "a non-empty string",
        )
    return value


def parse_time(value: object, field: str) -> float:
    """An ISO 8601 time with a UTC offset (``Z`` or ``+00:00``) as epoch seconds; naive times are refused."""
    if not isinstance(value, str) or not value or len(value) > 64:
        raise fail(
            "missing or not a time" if value is None else "not a time",
            field,
            value,
            "an ISO 8601 time with a UTC offset, e.g. 2024-04-13T00:00:00+00:00",
        )
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise fail("not an ISO 8601 time", field, value, "e.g. 2024-04-13T00:00:00+00:00") from None
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise fail("time has no UTC offset", field, value, "a time ending in Z or +hh:mm")
    ts = dt.timestamp()
    if ts < 0:
        raise fail("time is before 1970", field, value, "a time after 1970-01-01")
    return ts


def check_not_future(ts: float, now: float, field: str, received: object) -> None:
    """Refuse a generation or measurement time later than ``now`` plus the clock-skew tolerance."""
    if ts > now + FUTURE_TOLERANCE_S:
        raise fail(
            f"time is {ts - now:.0f} s in the future",
            field,
            received,
            f"a time at most {FUTURE_TOLERANCE_S:.0f} s after now",
        )


def carbon_value(g_per_kwh: float, field: str, received: object) -> float:
    """A carbon intensity in g/kWh within the plausible range."""
    if not 0.0 <= g_per_kwh <= CARBON_MAX_GCO2_PER_KWH:
        raise fail(
            f"implausible carbon intensity ({g_per_kwh:.6g} gCO2/kWh)",
            field,
            received,
            f"0 to {CARBON_MAX_GCO2_PER_KWH:.0f} gCO2/kWh",
        )
    return g_per_kwh


def price_value(usd_per_mwh: float, field: str, received: object) -> float:
    """A price in USD/MWh within the plausible range (negative prices are real and kept)."""
    if not PRICE_MIN_USD_PER_MWH <= usd_per_mwh <= PRICE_MAX_USD_PER_MWH:
        raise fail(
            f"implausible price ({usd_per_mwh:.6g} USD/MWh)",
            field,
            received,
            f"{PRICE_MIN_USD_PER_MWH:.0f} to {PRICE_MAX_USD_PER_MWH:.0f} USD/MWh",
        )
    return usd_per_mwh


def lookup_zone(zones: ZoneMap, zone: str, field: str, provider: str) -> tuple[str, ...]:
    """The regions a provider zone feeds, or a rejection naming the unmapped zone."""
    regions = zones.get(zone)
    if not regions:
        known = sorted(zones)
        raise fail(
            f"zone is not mapped to any region (topology [providers.{provider}])",
            field,
            zone,
            f"one of {known}" if known else f"a zone listed in the topology's [providers.{provider}] table",
        )
    return tuple(regions)


def build(model: type[Any], data: dict[str, Any], field_prefix: str) -> Any:
    """Validate a canonical message; a failure (a bug or an out-of-range value) becomes a rejection."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = input_error_from_validation(exc, source="payload")
        field = f"{field_prefix}.{err.field}" if err.field else field_prefix
        raise fail(err.problem, field, err.received, err.expected) from None
