"""CSV replay of recorded grid series: one GridSignal per row, in ``ts`` order.

The CSV shape (a header row, comma-separated, UTF-8; an empty cell means absent; other columns are ignored):

| column | meaning |
|---|---|
| ``ts`` or ``datetime`` / ``datetime_utc`` | epoch seconds, or ISO 8601 with a UTC offset (one of them) |
| ``region`` or ``zone`` | a topology region id, or a zone mapped by the topology's ``[providers.csv]`` |
| ``price_usd_per_mwh`` | price in USD/MWh |
| ``price_per_mwh`` + ``currency`` | price in a currency with a rate in the topology's ``usd_per`` |
| ``marginal_gco2_per_kwh`` | marginal carbon intensity |
| ``average_gco2_per_kwh`` | average carbon intensity (never used as marginal) |
| ``valid_for_s``, ``estimated`` (true/false), ``source`` | optional provenance |

Each row needs a time, a place and at least one value. ``source`` defaults to ``csv``. A bad row rejects the
file: the rejection names the line, the column, the value and what was expected.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from router.models import GridSignal
from router.providers.common import (
    Rejection,
    build,
    carbon_value,
    check_not_future,
    fail,
    lookup_zone,
    parse_time,
    price_value,
)
from router.topology import Topology

__all__ = ["MAX_CSV_BYTES", "SOURCE", "parse_csv"]

SOURCE = "csv"
#: Largest CSV file read (about two million rows of a typical series).
MAX_CSV_BYTES = 256 << 20
_VALUES = ("price_usd_per_mwh", "price_per_mwh", "marginal_gco2_per_kwh", "average_gco2_per_kwh")
_TIMES = ("ts", "datetime", "datetime_utc")


def parse_csv(
    raw: bytes, topology: Topology, now: float, *, max_bytes: int = MAX_CSV_BYTES
) -> list[GridSignal] | Rejection:
    """Every row of a recorded-series CSV as a GridSignal, sorted by ``ts`` (stable), or why not."""
    try:
        return _parse(raw, topology, now, max_bytes)
    except _LineRejectError as exc:
        return exc.rejection
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError, csv.Error) as exc:
        return Rejection(f"CSV could not be parsed ({type(exc).__name__}: {exc})", None)


class _LineRejectError(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.problem)
        self.rejection = rejection


def _parse(raw: bytes, topology: Topology, now: float, max_bytes: int) -> list[GridSignal]:
    if len(raw) > max_bytes:
        raise _LineRejectError(
            Rejection(f"file is {len(raw)} bytes", None, None, f"at most {max_bytes} bytes")
        )
    try:
        body = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _LineRejectError(
            Rejection("file is not UTF-8 text", None, f"invalid byte at offset {exc.start}", "UTF-8 CSV")
        ) from None
    reader = csv.DictReader(io.StringIO(body, newline=""), strict=True)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    _check_header(header)
    regions = {r.id for r in topology.regions}
    rows: list[tuple[float, int, GridSignal]] = []
    for k, row in enumerate(reader):
        line = reader.line_num
        try:
            rows.extend((s.ts, k, s) for s in _row(row, topology, regions, now))
        except Exception as exc:
            rej = getattr(exc, "rejection", None)
            if not isinstance(rej, Rejection):
                raise
            raise _LineRejectError(
                Rejection(rej.problem, rej.field, rej.received, rej.expected, line)
            ) from None
    rows.sort(key=lambda x: (x[0], x[1]))
    return [s for _, _, s in rows]


def _check_header(header: list[str]) -> None:
    def bad(problem: str, expected: str) -> _LineRejectError:
        return _LineRejectError(Rejection(problem, None, header[:12], expected, 1))

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


def _row(row: dict[Any, Any], topology: Topology, regions: set[str], now: float) -> list[GridSignal]:
    if None in row:
        raise fail("row has more cells than the header", None, row[None], "one cell per column")
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
    check_not_future(ts, now, "ts", ts)
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
    return [build(GridSignal, {**data, "region": r}, "row") for r in places]


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
