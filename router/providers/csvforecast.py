"""Rows of a recorded-series CSV dated after now as one GridForecast per region (for ``csvreplay``).

A day-ahead price file is mostly such rows. Each becomes a forecast point (price and marginal carbon only:
a forecast has no average intensity, so a row after now with an ``average_gco2_per_kwh`` cell is refused
rather than silently dropped). Per region: ``generated_at`` = now (the file says nothing about when it was
issued), points in time order, one row per time, ``step_s`` = the rows' common ``valid_for_s``, else the
smallest gap between them (a single row needs ``valid_for_s``), at most ``MAX_FORECAST_POINTS`` points and
``MAX_FORECAST_AHEAD_S`` ahead of now.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from router.models import MAX_FORECAST_POINTS, GridForecast
from router.providers.common import MAX_FORECAST_AHEAD_S, build, fail
from router.topology import Topology

__all__ = ["AheadRow", "ahead_row", "forecasts_from"]

_VALUES = ("price_usd_per_mwh", "marginal_gco2_per_kwh")


@dataclass(frozen=True, slots=True)
class AheadRow:
    """One row after now: its time, line, regions, point values and provenance."""

    ts: float
    line: int
    regions: tuple[str, ...]
    point: dict[str, float]
    valid_for_s: float | None
    source: str
    zone: str | None


class _ForecastRejectError(Exception):
    """A rejection that belongs to a line of the file (the CSV parser adds the line to its Problem)."""

    def __init__(self, cause: Exception, line: int) -> None:
        super().__init__(str(cause))
        self.rejection = getattr(cause, "rejection", None)
        self.line = line


def ahead_row(ts: float, data: dict[str, Any], regions: tuple[str, ...], now: float, line: int) -> AheadRow:
    """A row dated after now as a future point, or a rejection saying why it cannot be one."""
    if ts > now + MAX_FORECAST_AHEAD_S:
        raise fail(
            "time is too far ahead for a forecast",
            "ts",
            ts,
            f"a time at most {MAX_FORECAST_AHEAD_S:.0f} s ({MAX_FORECAST_AHEAD_S / 86400:.0f} d) after now",
        )
    if data.get("average_gco2_per_kwh") is not None:
        raise fail(
            "a row after now becomes a forecast, which carries no average intensity",
            "average_gco2_per_kwh",
            data["average_gco2_per_kwh"],
            "no average_gco2_per_kwh in rows after now (leave the column out with --ignore-columns)",
        )
    point = {k: data[k] for k in _VALUES if data.get(k) is not None}
    if not point:
        raise fail(
            "a row after now carries no price or marginal carbon",
            None,
            None,
            "a price or marginal_gco2_per_kwh value in rows after now",
        )
    return AheadRow(
        ts, line, regions, point, data.get("valid_for_s"), data["source"], data.get("provider_zone")
    )


def forecasts_from(rows: list[AheadRow], topology: Topology, now: float) -> tuple[GridForecast, ...]:
    """One GridForecast per region (topology order) from its rows after now."""
    by_region: dict[str, list[AheadRow]] = {}
    for row in rows:
        for region in row.regions:
            by_region.setdefault(region, []).append(row)
    out: list[GridForecast] = []
    for region in (r.id for r in topology.regions):
        got = sorted(by_region.get(region, []), key=lambda r: r.ts)
        if got:
            out.append(_forecast(region, got, now))
    return tuple(out)


def _forecast(region: str, rows: list[AheadRow], now: float) -> GridForecast:
    for a, b in itertools.pairwise(rows):
        if b.ts == a.ts:
            raise _ForecastRejectError(
                fail("two rows for one region and time after now", "ts", b.ts, "one row per region and time"),
                b.line,
            )
    if len(rows) > MAX_FORECAST_POINTS:
        raise _ForecastRejectError(
            fail(
                f"{len(rows)} rows after now for region '{region}'",
                None,
                None,
                f"at most {MAX_FORECAST_POINTS} per region (one forecast)",
            ),
            rows[MAX_FORECAST_POINTS].line,
        )
    validity = {r.valid_for_s for r in rows}
    gaps = [b.ts - a.ts for a, b in itertools.pairwise(rows)]
    common = next(iter(validity)) if len(validity) == 1 else None
    step = common if common is not None else (min(gaps) if gaps else None)
    if step is None:
        raise _ForecastRejectError(
            fail(
                "cannot tell how long a single row after now holds",
                "valid_for_s",
                None,
                "a valid_for_s cell (the step of the forecast), or more rows after now",
            ),
            rows[0].line,
        )
    sources = {r.source for r in rows}
    zones = {r.zone for r in rows}
    data: dict[str, Any] = {
        "region": region,
        "generated_at": now,
        "step_s": step,
        "points": [{"ts": r.ts, **r.point} for r in rows],
        "source": next(iter(sources)) if len(sources) == 1 else "csv",
    }
    zone = next(iter(zones)) if len(zones) == 1 else None
    if zone is not None:
        data["provider_zone"] = zone
    try:
        fc: GridForecast = build(GridForecast, data, "forecast")
    except Exception as exc:
        if getattr(exc, "rejection", None) is None:
            raise
        raise _ForecastRejectError(exc, rows[0].line) from None
    return fc
