"""A complete placement message for tests that feed the metrics by hand (every field a worker sends)."""

from __future__ import annotations

from typing import Any, cast

from router.placement import PlacementMessage


def placement(**fields: Any) -> PlacementMessage:
    """A placed request at ``a`` from home ``a``, with ``fields`` replaced (``baseline`` merged)."""
    p: dict[str, Any] = {
        "request_id": "r-1",
        "status": "placed",
        "region": "a",
        "origin": "n",
        "home_region": "a",
        "layer": "local",
        "reason": "min_score",
        "latency_ms": 10.0,
        "energy_wh": 1.0,
        "facility_wh": 1.2,
        "energy_usd": 1.0,
        "carbon_g": 2.0,
        "egress_usd": 0.0,
        "score_usd": 1.0,
        "baseline": {"region": "a", "energy_usd": 1.0, "carbon_g": 2.0, "feasible": True},
        "feasible_regions": 1,
        "relocatable": False,
        "removed": {},
        "signal_age_s": 0.0,
        "signal_source": "live",
        "forecast_generated_at": None,
        "signals_version": 1,
        "shares_version": 0,
        "event_ts": 0.0,
        "decided_at": 0.0,
    }
    baseline = fields.pop("baseline", {})
    p.update(fields)
    p["baseline"] = {**p["baseline"], **baseline}
    if p["status"] == "rejected":
        for k in ("latency_ms", "facility_wh", "energy_usd", "carbon_g", "egress_usd", "score_usd"):
            p[k] = None
    return cast(PlacementMessage, p)
