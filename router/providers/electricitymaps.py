"""Electricity Maps v3 carbon intensity: an *average* grid intensity, flagged as such, never marginal.

Payloads: ``/v3/carbon-intensity/latest`` (``zone``, ``carbonIntensity``, ``datetime``, ``updatedAt``,
``createdAt``, ``isEstimated``, ``emissionFactorType``, ``estimationMethod``) or
``/v3/carbon-intensity/history`` or ``/past-range`` (``zone`` and ``history`` or ``data``: a list of such
entries). Each entry becomes a GridSignal that carries ``average_gco2_per_kwh`` only
(``marginal_gco2_per_kwh`` stays empty: the kernel prices marginal carbon, and an average intensity is not
one), ``estimated`` = ``isEstimated``,
``generated_at`` = ``updatedAt``, ``ts`` = ``datetime``, ``source`` ``electricitymaps``. Forecast payloads
are refused: they forecast an average too.
"""

from __future__ import annotations

from typing import Any

from router.models import MAX_FORECAST_POINTS, GridSignal
from router.problems import Problem
from router.providers.common import (
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

__all__ = ["EMISSION_FACTOR_TYPES", "SOURCE", "parse_electricitymaps"]

SOURCE = "electricitymaps"
#: Electricity Maps' two emission factor types: life-cycle (default) or direct (combustion only).
EMISSION_FACTOR_TYPES = ("lifecycle", "direct")


def parse_electricitymaps(
    raw: bytes | None, zones: ZoneMap, now: float, *, max_bytes: int = MAX_PAYLOAD_BYTES
) -> Parsed | Problem:
    """One Electricity Maps v3 carbon-intensity payload as average-intensity signals, or why not."""
    return guarded(_parse, raw, zones, now, max_bytes)


def _parse(raw: bytes | None, zones: ZoneMap, now: float, max_bytes: int) -> Parsed:
    obj = load_json_object(raw, max_bytes)
    if "forecast" in obj:
        raise fail(
            "an Electricity Maps forecast is an average-intensity forecast",
            "forecast",
            None,
            "latest or history payloads (grid.forecasts carries marginal carbon and prices only)",
        )
    zone = text(obj.get("zone"), "zone")
    regions = lookup_zone(zones, zone, "zone", "electricitymaps")
    key = "history" if "history" in obj else "data" if "data" in obj else None
    if key is not None:
        history = obj[key]
        if not isinstance(history, list) or not history:
            raise fail(
                "missing or empty",
                key,
                None if history is None else type(history).__name__,
                "a non-empty array of carbon-intensity entries",
            )
        if len(history) > MAX_FORECAST_POINTS:
            raise fail("too many entries", key, len(history), f"at most {MAX_FORECAST_POINTS}")
        entries = [(f"{key}[{k}].", e) for k, e in enumerate(history)]
    else:
        entries = [("", obj)]
    signals: list[GridSignal] = []
    for prefix, entry in entries:
        if not isinstance(entry, dict):
            raise fail("not an object", prefix.rstrip("."), type(entry).__name__, "a carbon-intensity entry")
        signals += _entry(entry, prefix, zone, regions, now)
    return Parsed(signals=tuple(signals))


def _entry(
    e: dict[str, Any], prefix: str, zone: str, regions: tuple[str, ...], now: float
) -> list[GridSignal]:
    if "zone" in e and e["zone"] != zone:
        raise fail("entry is for another zone", f"{prefix}zone", e["zone"], f"'{zone}'")
    raw_ci = e.get("carbonIntensity")
    ci = carbon_value(number(raw_ci, f"{prefix}carbonIntensity"), f"{prefix}carbonIntensity", raw_ci)
    ts = parse_time(e.get("datetime"), f"{prefix}datetime")
    check_not_future(ts, now, f"{prefix}datetime", e.get("datetime"))
    updated = parse_time(e.get("updatedAt"), f"{prefix}updatedAt")
    check_not_future(updated, now, f"{prefix}updatedAt", e.get("updatedAt"))
    estimated = e.get("isEstimated")
    if not isinstance(estimated, bool):
        raise fail("missing or not a boolean", f"{prefix}isEstimated", estimated, "true or false")
    factor = e.get("emissionFactorType", "lifecycle")
    if factor not in EMISSION_FACTOR_TYPES:
        raise fail(
            "unknown emission factor type",
            f"{prefix}emissionFactorType",
            factor,
            f"one of {list(EMISSION_FACTOR_TYPES)}",
        )
    out: list[GridSignal] = []
    for region in regions:
        data = {
            "region": region,
            "ts": ts,
            "average_gco2_per_kwh": ci,
            "source": SOURCE,
            "estimated": estimated,
            "generated_at": updated,
            "provider_zone": zone,
        }
        out.append(build(GridSignal, data, prefix.rstrip(".") or "payload"))
    return out
