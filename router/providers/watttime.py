"""WattTime v3 marginal emissions (``co2_moer``): data payloads become signals, forecast payloads forecasts.

Both payloads have the v3 shape ``{"data": [{"point_time", "value"}, ...], "meta": {...}}`` with
``meta.units`` ``lbs_co2_per_mwh``, converted here to g/kWh (``* 0.45359237``). Which one a payload is:

- a **historical forecast** (``/v3/forecast/historical``) has ``data`` items of ``generated_at`` and
  ``forecast`` (a list of points): one GridForecast per item and mapped region;
- a **forecast** (``/v3/forecast``) carries ``meta.generated_at_period_seconds`` (and ``meta.generated_at``,
  then required): one GridForecast per mapped region, ``step_s`` = ``meta.data_point_period_seconds``;
- anything else is **data** (``/v3/historical``, or the latest point of it): one marginal GridSignal per
  point and region, ``ts`` = ``point_time``, ``valid_for_s`` = ``meta.data_point_period_seconds``,
  ``estimated`` false, ``generated_at`` = ``meta.generated_at`` when given.

A wrong signal type or unit, a missing field, an unmapped ``meta.region``, a time in the future (beyond
``FUTURE_TOLERANCE_S``; for a forecast only its generation time), a NaN or an implausible value rejects the
whole payload, naming the field (e.g. ``data[3].value``). So is a ``/v3/signal-index`` payload: its units
are ``percentile`` (0-100, relative to the coming day), which is no emission rate.
"""

from __future__ import annotations

from typing import Any

from router.models import MAX_FORECAST_POINTS, GridForecast, GridSignal
from router.problems import Problem
from router.providers.common import (
    LBS_PER_MWH_TO_G_PER_KWH,
    MAX_FORECAST_AHEAD_S,
    MAX_PAYLOAD_BYTES,
    Parsed,
    ZoneMap,
    build,
    carbon_value,
    check_not_future,
    fail,
    guarded,
    load_json_object,
    lookup_zone,
    number,
    parse_time,
    text,
)

__all__ = ["SOURCE", "parse_watttime"]

SOURCE = "watttime"


def parse_watttime(
    raw: bytes | None, zones: ZoneMap, now: float, *, max_bytes: int = MAX_PAYLOAD_BYTES
) -> Parsed | Problem:
    """One WattTime v3 payload as canonical signals or a forecast, or why not; never raises."""
    return guarded(_parse, raw, zones, now, max_bytes)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("meta")
    if not isinstance(meta, dict):
        raise fail(
            "missing or not an object",
            "meta",
            None if meta is None else type(meta).__name__,
            "a JSON object with region, signal_type, units, data_point_period_seconds",
        )
    signal_type = meta.get("signal_type")
    if signal_type != "co2_moer":
        raise fail(
            "unsupported signal type",
            "meta.signal_type",
            signal_type,
            "'co2_moer' (marginal operating emissions rate)",
        )
    units = meta.get("units")
    if units != "lbs_co2_per_mwh":
        raise fail("unsupported units", "meta.units", units, "'lbs_co2_per_mwh'")
    return meta


def _parse(raw: bytes | None, zones: ZoneMap, now: float, max_bytes: int) -> Parsed:
    obj = load_json_object(raw, max_bytes)
    meta = _meta(obj)
    zone = text(meta.get("region"), "meta.region")
    regions = lookup_zone(zones, zone, "meta.region", "watttime")
    period_raw = meta.get("data_point_period_seconds")
    period = number(period_raw, "meta.data_point_period_seconds")
    if not 0 < period <= 86400:
        raise fail("implausible period", "meta.data_point_period_seconds", period_raw, "1 to 86400 seconds")
    data_list = obj.get("data")
    if (
        isinstance(data_list, list)
        and data_list
        and isinstance(data_list[0], dict)
        and "forecast" in data_list[0]
    ):
        return _historical_forecasts(data_list, regions, zone, period, now)
    forecast = "generated_at_period_seconds" in meta
    generated_at: float | None = None
    if "generated_at" in meta or forecast:
        generated_at = parse_time(meta.get("generated_at"), "meta.generated_at")
        check_not_future(generated_at, now, "meta.generated_at", meta.get("generated_at"))
    points = _points(data_list)
    if forecast:
        assert generated_at is not None
        _check_horizon(points, generated_at, "data")
        return Parsed(forecasts=tuple(_forecast(r, zone, generated_at, period, points) for r in regions))
    signals: list[GridSignal] = []
    for k, (ts, g) in enumerate(points):
        check_not_future(ts, now, f"data[{k}].point_time", obj["data"][k].get("point_time"))
        for region in regions:
            data = {
                "region": region,
                "ts": ts,
                "marginal_gco2_per_kwh": g,
                "valid_for_s": period,
                "source": SOURCE,
                "estimated": False,
                "generated_at": generated_at,
                "provider_zone": zone,
            }
            signals.append(build(GridSignal, data, f"data[{k}]"))
    return Parsed(signals=tuple(signals))


def _historical_forecasts(
    items: list[Any], regions: tuple[str, ...], zone: str, period: float, now: float
) -> Parsed:
    """A ``/v3/forecast/historical`` payload: ``data`` is a list of {generated_at, forecast: [points]}."""
    if len(items) > MAX_FORECAST_POINTS:
        raise fail("too many forecasts", "data", len(items), f"at most {MAX_FORECAST_POINTS}")
    out: list[GridForecast] = []
    for k, item in enumerate(items):
        if not isinstance(item, dict):
            raise fail("not an object", f"data[{k}]", type(item).__name__, "{generated_at, forecast}")
        generated_at = parse_time(item.get("generated_at"), f"data[{k}].generated_at")
        check_not_future(generated_at, now, f"data[{k}].generated_at", item.get("generated_at"))
        points = _points(item.get("forecast"), f"data[{k}].forecast")
        _check_horizon(points, generated_at, f"data[{k}].forecast")
        out += [_forecast(r, zone, generated_at, period, points) for r in regions]
    return Parsed(forecasts=tuple(out))


def _check_horizon(points: list[tuple[float, float]], generated_at: float, field: str) -> None:
    last_ts, _ = points[-1]
    if last_ts > generated_at + MAX_FORECAST_AHEAD_S:
        raise fail(
            "forecast reaches too far ahead",
            f"{field}[{len(points) - 1}].point_time",
            last_ts - generated_at,
            f"at most {MAX_FORECAST_AHEAD_S:.0f} s after generated_at",
        )


def _points(data: object, field: str = "data") -> list[tuple[float, float]]:
    """(point_time as epoch s, value in g/kWh), strictly increasing in time."""
    if not isinstance(data, list) or not data:
        raise fail(
            "missing or empty",
            field,
            None if data is None else type(data).__name__,
            "a non-empty array of {point_time, value}",
        )
    if len(data) > MAX_FORECAST_POINTS:
        raise fail("too many points", field, len(data), f"at most {MAX_FORECAST_POINTS}")
    out: list[tuple[float, float]] = []
    for k, item in enumerate(data):
        f = f"{field}[{k}]"
        if not isinstance(item, dict):
            raise fail("not an object", f, type(item).__name__, "{point_time, value}")
        ts = parse_time(item.get("point_time"), f"{f}.point_time")
        lbs = number(item.get("value"), f"{f}.value")
        g = carbon_value(lbs * LBS_PER_MWH_TO_G_PER_KWH, f"{f}.value", item.get("value"))
        if out and ts <= out[-1][0]:
            raise fail(
                "points not in increasing time",
                f"{f}.point_time",
                item.get("point_time"),
                "each point_time later than the one before",
            )
        out.append((ts, g))
    return out


def _forecast(
    region: str, zone: str, generated_at: float, period: float, points: list[tuple[float, float]]
) -> GridForecast:
    data = {
        "region": region,
        "generated_at": generated_at,
        "step_s": period,
        "points": [{"ts": ts, "marginal_gco2_per_kwh": g} for ts, g in points],
        "source": SOURCE,
        "provider_zone": zone,
    }
    got: GridForecast = build(GridForecast, data, "data")
    return got
