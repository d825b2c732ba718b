"""The real WattTime CAISO North forecasts and actual values of tests/fixtures/forecasts as router inputs."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from router.models import GridForecast

__all__ = ["FIXTURES", "STEP_S", "actual", "epoch", "issued_forecasts"]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "forecasts"
#: WattTime's forecast and actual values are 5-minute steps
STEP_S = 300.0


def epoch(text: str) -> float:
    """``2023-06-08 00:05:00`` (as published, read as UTC) in epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def issued_forecasts(region: str) -> list[GridForecast]:
    """Every issued forecast of the excerpt as a GridForecast for ``region``, in issue order."""
    by_issue: dict[str, list[dict[str, float]]] = {}
    with (FIXTURES / "watttime_caiso_north_2023-06-08_forecast.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            by_issue.setdefault(row["request_time"], []).append(
                {"ts": epoch(row["forecast_time"]), "marginal_gco2_per_kwh": float(row["Caiso_North"])}
            )
    return [
        GridForecast.model_validate(
            {
                "region": region,
                "generated_at": epoch(issued),
                "step_s": STEP_S,
                "points": points,
                "source": "watttime",
                "provider_zone": "CAISO_NORTH",
            }
        )
        for issued, points in by_issue.items()
    ]


def actual() -> list[tuple[float, float]]:
    """The actual marginal values of the excerpt: (epoch seconds, gCO2/kWh)."""
    with (FIXTURES / "watttime_caiso_north_2023-06-08_actual.csv").open(newline="") as fh:
        return [(epoch(r["time"]), float(r["Caiso_North"])) for r in csv.DictReader(fh)]
