"""CSV replay of recorded grid series: one GridSignal per row, in ``ts`` order; rows after now as forecasts.

The CSV shape (a header row, comma-separated, UTF-8; an empty cell means absent):

| column | meaning |
|---|---|
| ``ts`` or ``datetime`` / ``datetime_utc`` | epoch seconds, or ISO 8601 with a UTC offset (one of them) |
| ``region`` or ``zone`` | a topology region id, or a zone mapped by the topology's ``[providers.csv]`` |
| ``price_usd_per_mwh`` | price in USD/MWh |
| ``price_per_mwh`` + ``currency`` | price in a currency with a rate in the topology's ``usd_per`` |
| ``marginal_gco2_per_kwh`` | marginal carbon intensity |
| ``average_gco2_per_kwh`` | average carbon intensity (never used as marginal) |
| ``valid_for_s``, ``estimated`` (true/false), ``source`` | optional provenance |

Each row needs a time, a place and at least one value. ``source`` defaults to ``csv``. Any other column is
refused (naming the closest known column: a typo must not silently drop a value) unless the caller lists it
in ``ignore_columns``. A bad row rejects the file: the rejection names the line, the column, the value and
what was expected.

Rows dated after now (beyond ``FUTURE_TOLERANCE_S`` of clock skew), e.g. a day-ahead price file, are refused
unless ``forecasts=True``: then they become one GridForecast per region (``generated_at`` = now, points =
those rows in time order, ``step_s`` = their common ``valid_for_s``, else the smallest gap between them),
carrying price and marginal carbon only. The rows up to now are signals in either mode.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from router.models import GridSignal
from router.problems import Problem
from router.providers.common import (
    FUTURE_TOLERANCE_S,
    Parsed,
    build,
    carbon_value,
    fail,
    lookup_zone,
    parse_time,
    price_value,
)
from router.providers.csvforecast import AheadRow, ahead_row, forecasts_from
from router.topology import Topology

__all__ = ["KNOWN_COLUMNS", "MAX_CSV_BYTES", "SOURCE", "parse_csv", "parse_csv_series"]

SOURCE = "csv"
#: Largest CSV file read (about two million rows of a typical series).
MAX_CSV_BYTES = 256 << 20
_VALUES = ("price_usd_per_mwh", "price_per_mwh", "marginal_gco2_per_kwh", "average_gco2_per_kwh")
_TIMES = ("ts", "datetime", "datetime_utc")
#: every column the format defines (see the module docstring)
KNOWN_COLUMNS = (
    *_TIMES,
    "region",
    "zone",
    *_VALUES,
    "currency",
    "valid_for_s",
    "estimated",
    "source",
)


def parse_csv(
    raw: bytes,
    topology: Topology,
    now: float,
    *,
    max_bytes: int = MAX_CSV_BYTES,
    ignore_columns: Collection[str] = (),
) -> list[GridSignal] | Problem:
    """Every row of a recorded-series CSV as a GridSignal, sorted by ``ts`` (stable), or why not."""
    got = parse_csv_series(raw, topology, now, max_bytes=max_bytes, ignore_columns=ignore_columns)
    return got if isinstance(got, Problem) else list(got.signals)


def parse_csv_series(
    raw: bytes,
    topology: Topology,
    now: float,
    *,
    max_bytes: int = MAX_CSV_BYTES,
    ignore_columns: Collection[str] = (),
    forecasts: bool = False,
) -> Parsed | Problem:
    """The rows up to now as GridSignals sorted by ``ts``; with ``forecasts``, the later rows as one
    GridForecast per region (else such a row is refused). Never raises on bad input."""
    try:
        return _parse(raw, topology, now, max_bytes, frozenset(ignore_columns), forecasts)
    except _LineRejectError as exc:
        return exc.rejection
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError, csv.Error) as exc:
        return Problem.of(f"CSV could not be parsed ({type(exc).__name__}: {exc})")


class _LineRejectError(Exception):
    def __init__(self, rejection: Problem) -> None:
        super().__init__(rejection.problem)
        self.rejection = rejection


def _parse(
    raw: bytes, topology: Topology, now: float, max_bytes: int, ignore: frozenset[str], forecasts: bool
) -> Parsed:
    if len(raw) > max_bytes:
        raise _LineRejectError(
            Problem.of(f"file is {len(raw)} bytes", None, None, f"at most {max_bytes} bytes")
        )
    try:
        body = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _LineRejectError(
            Problem.of("file is not UTF-8 text", None, f"invalid byte at offset {exc.start}", "UTF-8 CSV")
        ) from None
    reader = csv.DictReader(io.StringIO(body, newline=""), strict=True)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    _check_ignored(header, ignore)
    _check_header([h for h in header if h not in ignore])
    regions = {r.id for r in topology.regions}
    rows: list[tuple[float, int, GridSignal]] = []
    ahead: list[AheadRow] = []
    for k, row in enumerate(reader):
        line = reader.line_num
        for name in ignore:
            row.pop(name, None)
        try:
            ts, data, places = _row(row, topology, regions)
            if ts <= now + FUTURE_TOLERANCE_S:
                rows.extend((ts, k, build(GridSignal, {**data, "region": r}, "row")) for r in places)
            elif forecasts:
                ahead.append(ahead_row(ts, data, places, now, line))
            else:
                raise fail(
                    f"time is {ts - now:.0f} s in the future",
                    "ts",
                    ts,
                    f"a time at most {FUTURE_TOLERANCE_S:.0f} s after now; rows after now are a forecast: "
                    "pass --forecasts-out FILE to write them as GridForecast JSONL (for score --forecasts)",
                )
        except Exception as exc:
            raise _line_rejection(exc, line) from None
    rows.sort(key=lambda x: (x[0], x[1]))
    try:
        fcs = forecasts_from(ahead, topology, now)
    except Exception as exc:
        raise _line_rejection(exc, getattr(exc, "line", None)) from None
    return Parsed(signals=tuple(s for _, _, s in rows), forecasts=fcs)


def _line_rejection(exc: Exception, line: int | None) -> _LineRejectError:
    """A parser's internal rejection, with its line; anything else propagates unchanged."""
    rej = getattr(exc, "rejection", None)
    if not isinstance(rej, Problem):
        raise exc
    return _LineRejectError(replace(rej, line=line or rej.line))


def _check_ignored(header: list[str], ignore: frozenset[str]) -> None:
    """Refuse columns neither known nor ignored (closest known one named), and ignored names not present."""
    absent = sorted(ignore.difference(header))
    if absent:
        raise _LineRejectError(
            Problem.of(
                "--ignore-columns names a column the header lacks",
                absent[0],
                absent,
                f"columns of the header: {header[:24]}",
                line=1,
            )
        )
    unknown = [h for h in header if h not in KNOWN_COLUMNS and h not in ignore and h]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, KNOWN_COLUMNS, n=1)
        hints.append(f"'{name}' (did you mean '{close[0]}'?)" if close else f"'{name}'")
    raise _LineRejectError(
        Problem.of(
            f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(hints)}",
            unknown[0],
            unknown,
            f"columns of the recorded-series format ({', '.join(KNOWN_COLUMNS)}); to leave columns out, "
            f"pass --ignore-columns {','.join(unknown)}",
            line=1,
        )
    )


def _check_header(header: list[str]) -> None:
    def bad(problem: str, expected: str) -> _LineRejectError:
        return _LineRejectError(Problem.of(problem, None, header[:12], expected, line=1))

    if not header:
        raise bad("file has no header row", "a header row naming the columns")
    if len(set(header)) != len(header):
        raise bad("a column is named twice", "each column once")
    if sum(t in header for t in _TIMES) != 1:
        raise bad("no single time column", "exactly one of ts, datetime, datetime_utc")
    if ("region" in header) == ("zone" in header):
        raise bad("no single place column", "exactly one of region, zone")
    if not any(v in header for v in _VALUES):
        raise bad("no value column", f"at least one of {list(_VALUES)}")
    if "price_per_mwh" in header and "currency" not in header:
        raise bad("price_per_mwh without a currency column", "a currency column next to price_per_mwh")


def _cell(row: dict[Any, Any], name: str) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _num(row: dict[Any, Any], name: str) -> float | None:
    text = _cell(row, name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise fail("not a number", name, text, "a decimal number") from None
    if not math.isfinite(value):
        raise fail("not a finite number", name, text, "a finite decimal number")
    return value


def _row_time(row: dict[Any, Any]) -> float:
    """The row's time: the ``ts`` column, else ``datetime`` / ``datetime_utc``."""
    ts: float | None
    if "ts" in row:
        ts = _num(row, "ts")
        if ts is not None and ts < 0:
            raise fail("time is before 1970", "ts", ts, "epoch seconds >= 0")
    else:
        name = "datetime" if "datetime" in row else "datetime_utc"
        text = _cell(row, name)
        ts = None if text is None else parse_time(text, name)
    if ts is None:
        raise fail("missing time", "ts" if "ts" in row else "datetime", None, "a time in every row")
    return ts


def _row(
    row: dict[Any, Any], topology: Topology, regions: set[str]
) -> tuple[float, dict[str, Any], tuple[str, ...]]:
    """One row as (its time, the signal's fields but the region, the regions it feeds)."""
    if None in row:
        raise fail("row has more cells than the header", None, row[None], "one cell per column")
    ts = _row_time(row)
    places = _places(row, topology, regions)
    data: dict[str, Any] = {"ts": ts, "source": _cell(row, "source") or SOURCE}
    usd = _num(row, "price_usd_per_mwh")
    local = _num(row, "price_per_mwh")
    if local is not None:
        currency = _cell(row, "currency")
        rate = None if currency is None else topology.providers.usd_rate(currency)
        if rate is None:
            raise fail(
                "no exchange rate for this currency",
                "currency",
                currency,
                f"USD or a currency of the topology's usd_per: {sorted(topology.providers.usd_per)}",
            )
        usd = local * rate
    if usd is not None:
        data["price_usd_per_mwh"] = price_value(
            usd, "price_per_mwh" if local is not None else "price_usd_per_mwh", usd
        )
    for name in ("marginal_gco2_per_kwh", "average_gco2_per_kwh"):
        got = _num(row, name)
        if got is not None:
            data[name] = carbon_value(got, name, got)
    if all(
        data.get(v) is None for v in ("price_usd_per_mwh", "marginal_gco2_per_kwh", "average_gco2_per_kwh")
    ):
        raise fail("row carries no value", None, None, f"a value in one of {list(_VALUES)}")
    valid = _num(row, "valid_for_s")
    if valid is not None:
        data["valid_for_s"] = valid
    est = _cell(row, "estimated")
    if est is not None:
        if est.lower() not in ("true", "false"):
            raise fail("not a boolean", "estimated", est, "true or false")
        data["estimated"] = est.lower() == "true"
    zone = _cell(row, "zone")
    if zone is not None:
        data["provider_zone"] = zone
    return ts, data, places


def _places(row: dict[Any, Any], topology: Topology, regions: set[str]) -> tuple[str, ...]:
    if "region" in row:
        region = _cell(row, "region")
        if region is None or region not in regions:
            raise fail("unknown region", "region", region, f"a region id, one of {sorted(regions)}")
        return (region,)
    zone = _cell(row, "zone")
    if zone is None:
        raise fail("missing zone", "zone", None, "a zone in every row")
    return lookup_zone(topology.providers.zones("csv"), zone, "zone", "csv")
