"""ENTSO-E day-ahead prices: the A44 ``Publication_MarketDocument`` XML, converted to USD/MWh.

Read from each ``TimeSeries``: ``in_Domain.mRID`` (the bidding zone's EIC code, mapped to regions by the
topology's ``[providers.entsoe]``), ``currency_Unit.name`` (converted with the topology's ``usd_per`` rate),
``price_Measure_Unit.name`` (must be ``MWH``), ``curveType`` and each ``Period``: ``timeInterval/start,end``,
``resolution`` (``PT15M``, ``PT30M`` or ``PT60M``), ``Point/position`` and ``price.amount``. With curve type
A03 (the default of A44) a missing position repeats the price before it; position 1 must be present.

A step that has started by ``now`` becomes a price GridSignal (``ts`` = step start, ``valid_for_s`` =
resolution, ``estimated`` false, ``generated_at`` = ``createdDateTime``); the steps still ahead form one price
GridForecast per region (``step_s`` = resolution). Day-ahead prices are cleared, not estimated, so each step
ahead is also released as a signal when it starts (``cleared_price_signals``, used by ``streams.adapters``):
ENTSO-E publishes the next day's prices once, before any of its steps has started. When a zone has series
of several resolutions (since the 15-minute day-ahead MTU some zones publish both), the finest wins.

The XML is parsed with the standard library after refusing any DOCTYPE or entity declaration (no entity
expansion, no external resources) and bounding the size.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from router.models import MAX_FORECAST_POINTS, GridForecast, GridSignal
from router.problems import Problem
from router.providers.common import (
    MAX_FORECAST_AHEAD_S,
    MAX_PAYLOAD_BYTES,
    Parsed,
    ZoneMap,
    build,
    check_not_future,
    fail,
    guarded,
    lookup_zone,
    parse_time,
    price_value,
)

__all__ = ["NAMESPACE", "RESOLUTIONS_S", "SOURCE", "cleared_price_signals", "parse_entsoe"]

SOURCE = "entsoe"
#: The A44 document's namespace (version 7:3; any 7:x is read the same way).
NAMESPACE = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"
_NS_PREFIX = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:"
RESOLUTIONS_S = {"PT15M": 900.0, "PT30M": 1800.0, "PT60M": 3600.0}
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
#: Most steps one Period may hold (a year of 15-minute steps).
_MAX_STEPS = 366 * 96
#: zone -> resolution (s) -> step start -> USD/MWh
_Prices = dict[str, dict[float, dict[float, float]]]


def parse_entsoe(
    raw: bytes | None,
    zones: ZoneMap,
    now: float,
    usd_per: Mapping[str, float],
    *,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Parsed | Problem:
    """One A44 document as price signals (started steps) and forecasts (steps ahead), or why not."""
    return guarded(_parse, raw, zones, now, usd_per, max_bytes)


def cleared_price_signals(fc: GridForecast) -> tuple[GridSignal, ...]:
    """The price signal of each step of an ENTSO-E price forecast, to publish when the step starts."""
    if fc.source != SOURCE:
        return ()
    return tuple(
        GridSignal(
            region=fc.region,
            ts=p.ts,
            price_usd_per_mwh=p.price_usd_per_mwh,
            valid_for_s=fc.step_s,
            source=SOURCE,
            estimated=False,
            generated_at=fc.generated_at,
            provider_zone=fc.provider_zone,
        )
        for p in fc.points
        if p.price_usd_per_mwh is not None
    )


def _child_text(el: ET.Element, ns: str, path: str, field: str) -> str:
    found = el.find("/".join(f"{{{ns}}}{p}" for p in path.split("/")))
    value = None if found is None else (found.text or "").strip()
    if not value:
        raise fail("missing", field, None, "the element to be present and not empty")
    return value


def _root(raw: bytes | None, max_bytes: int) -> tuple[ET.Element, str]:
    if raw is None or not raw.strip():
        raise fail("payload is empty", None, expected="an A44 Publication_MarketDocument")
    if len(raw) > max_bytes:
        raise fail(f"payload is {len(raw)} bytes", None, expected=f"at most {max_bytes} bytes")
    if _FORBIDDEN.search(raw):
        raise fail(
            "XML declares a DOCTYPE or an entity",
            None,
            None,
            "plain XML without DOCTYPE or ENTITY declarations",
        )
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise fail(f"not well-formed XML ({exc})", None, None, "an A44 Publication_MarketDocument") from None
    ns, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
    if local == "Acknowledgement_MarketDocument":
        reason = " ".join(t.strip() for t in root.itertext() if t.strip())[:200]
        raise fail(
            "ENTSO-E acknowledgement instead of data", None, reason, "an A44 Publication_MarketDocument"
        )
    if local != "Publication_MarketDocument" or not ns.startswith(_NS_PREFIX):
        raise fail(
            "not a Publication_MarketDocument",
            None,
            root.tag[:120],
            f"{{{NAMESPACE}}}Publication_MarketDocument",
        )
    return root, ns


def _parse(
    raw: bytes | None, zones: ZoneMap, now: float, usd_per: Mapping[str, float], max_bytes: int
) -> Parsed:
    root, ns = _root(raw, max_bytes)
    doc_type = _child_text(root, ns, "type", "type")
    if doc_type != "A44":
        raise fail("not a price document", "type", doc_type, "'A44' (day-ahead prices)")
    created_text = _child_text(root, ns, "createdDateTime", "createdDateTime")
    created = parse_time(created_text, "createdDateTime")
    check_not_future(created, now, "createdDateTime", created_text)
    series = root.findall(f"{{{ns}}}TimeSeries")
    if not series:
        raise fail("no TimeSeries", "TimeSeries", None, "at least one TimeSeries")
    prices: _Prices = {}
    for k, ts_el in enumerate(series):
        _read_series(ts_el, ns, f"TimeSeries[{k}]", zones, usd_per, prices)
    return _messages(prices, zones, now, created)


def _read_series(
    ts_el: ET.Element,
    ns: str,
    f: str,
    zones: ZoneMap,
    usd_per: Mapping[str, float],
    prices: _Prices,
) -> None:
    """Add the USD/MWh steps of one TimeSeries to ``prices``."""
    zone = _child_text(ts_el, ns, "in_Domain.mRID", f"{f}.in_Domain.mRID")
    lookup_zone(zones, zone, f"{f}.in_Domain.mRID", "entsoe")
    currency = _child_text(ts_el, ns, "currency_Unit.name", f"{f}.currency_Unit.name")
    rate = 1.0 if currency == "USD" else usd_per.get(currency)
    if rate is None:
        raise fail(
            "no exchange rate for this currency",
            f"{f}.currency_Unit.name",
            currency,
            f"a currency with a rate in the topology's [providers] usd_per: {sorted(usd_per)}",
        )
    unit = _child_text(ts_el, ns, "price_Measure_Unit.name", f"{f}.price_Measure_Unit.name")
    if unit != "MWH":
        raise fail("unsupported price unit", f"{f}.price_Measure_Unit.name", unit, "'MWH'")
    curve_el = ts_el.find(f"{{{ns}}}curveType")
    curve = "A03" if curve_el is None or not (curve_el.text or "").strip() else (curve_el.text or "").strip()
    if curve not in ("A01", "A03"):
        raise fail("unsupported curve type", f"{f}.curveType", curve, "'A01' or 'A03'")
    periods = ts_el.findall(f"{{{ns}}}Period")
    if not periods:
        raise fail("no Period", f"{f}.Period", None, "at least one Period")
    for p, period in enumerate(periods):
        res, steps = _period(period, ns, f"{f}.Period[{p}]", curve, rate)
        by_ts = prices.setdefault(zone, {}).setdefault(res, {})
        for ts, usd in steps:
            if by_ts.get(ts, usd) != usd:
                raise fail("two prices for one step", f"{f}.Period[{p}]", ts, "one price per step and zone")
            by_ts[ts] = usd


def _messages(prices: _Prices, zones: ZoneMap, now: float, created: float) -> Parsed:
    """Each zone's finest series as price signals (steps started by ``now``) and forecasts (steps ahead)."""
    signals: list[GridSignal] = []
    forecasts: list[GridForecast] = []
    for zone, by_res in prices.items():
        res = min(by_res)
        steps = sorted(by_res[res].items())
        ahead = [(ts, usd) for ts, usd in steps if ts > now]
        if ahead and ahead[-1][0] > now + MAX_FORECAST_AHEAD_S:
            raise fail(
                "prices reach too far ahead",
                "TimeSeries",
                ahead[-1][0] - now,
                f"steps at most {MAX_FORECAST_AHEAD_S:.0f} s after now",
            )
        for region in zones[zone]:
            for ts, usd in steps:
                if ts <= now:
                    data = {
                        "region": region,
                        "ts": ts,
                        "price_usd_per_mwh": usd,
                        "valid_for_s": res,
                        "source": SOURCE,
                        "estimated": False,
                        "generated_at": created,
                        "provider_zone": zone,
                    }
                    signals.append(build(GridSignal, data, "TimeSeries"))
            for start in range(0, len(ahead), MAX_FORECAST_POINTS):
                chunk = ahead[start : start + MAX_FORECAST_POINTS]
                data_f = {
                    "region": region,
                    "generated_at": created,
                    "step_s": res,
                    "source": SOURCE,
                    "provider_zone": zone,
                    "points": [{"ts": t, "price_usd_per_mwh": u} for t, u in chunk],
                }
                forecasts.append(build(GridForecast, data_f, "TimeSeries"))
    return Parsed(signals=tuple(signals), forecasts=tuple(forecasts))


def _period(
    period: ET.Element, ns: str, f: str, curve: str, rate: float
) -> tuple[float, list[tuple[float, float]]]:
    """(resolution s, [(step start, USD/MWh)]) of one Period, with A03 gaps filled by the previous price."""
    start_text = _child_text(period, ns, "timeInterval/start", f"{f}.timeInterval.start")
    end_text = _child_text(period, ns, "timeInterval/end", f"{f}.timeInterval.end")
    start = parse_time(start_text, f"{f}.timeInterval.start")
    end = parse_time(end_text, f"{f}.timeInterval.end")
    res_text = _child_text(period, ns, "resolution", f"{f}.resolution")
    res = RESOLUTIONS_S.get(res_text)
    if res is None:
        raise fail("unsupported resolution", f"{f}.resolution", res_text, f"one of {list(RESOLUTIONS_S)}")
    n_float = (end - start) / res
    n = int(n_float)
    if n != n_float or not 1 <= n <= _MAX_STEPS:
        raise fail(
            "time interval is not a whole number of steps",
            f"{f}.timeInterval",
            [start_text, end_text],
            f"end - start a positive multiple of {res_text}, at most {_MAX_STEPS} steps",
        )
    given: dict[int, float] = {}
    for q, point in enumerate(period.findall(f"{{{ns}}}Point")):
        pf = f"{f}.Point[{q}]"
        pos_text = _child_text(point, ns, "position", f"{pf}.position")
        if not pos_text.isdigit() or not 1 <= int(pos_text) <= n:
            raise fail("position out of range", f"{pf}.position", pos_text, f"an integer from 1 to {n}")
        pos = int(pos_text)
        if pos in given:
            raise fail("position given twice", f"{pf}.position", pos, "each position once")
        amount_text = _child_text(point, ns, "price.amount", f"{pf}.price.amount")
        try:
            amount = float(amount_text)
        except ValueError:
            raise fail("not a number", f"{pf}.price.amount", amount_text, "a decimal number") from None
        if not math.isfinite(amount):
            raise fail("not a finite number", f"{pf}.price.amount", amount_text, "a finite decimal number")
        given[pos] = price_value(amount * rate, f"{pf}.price.amount", amount_text)
    if 1 not in given:
        raise fail("first position missing", f"{f}.Point", sorted(given)[:5], "a Point with position 1")
    if curve == "A01" and len(given) != n:
        raise fail("positions missing in an A01 (fixed block) curve", f"{f}.Point", len(given), f"{n} points")
    steps: list[tuple[float, float]] = []
    last = given[1]
    for pos in range(1, n + 1):
        last = given.get(pos, last)
        steps.append((start + (pos - 1) * res, last))
    return res, steps
