"""What an average-only signal (Electricity Maps) does to the live router state: never the marginal value."""

from __future__ import annotations

import itertools
import time

import pytest

from router.decider import Decider
from router.models import GridSignal, Request
from router.topology import load_topology

FR = "azure:francecentral"


def _router() -> Decider:
    live = Decider(load_topology())
    assert live.apply_signal(
        GridSignal(region=FR, ts=0.0, price_usd_per_mwh=5.0, marginal_gco2_per_kwh=158.0, valid_for_s=300.0)
    )
    return live


_ids = itertools.count()


def _pinned_to_fr(live: Decider, ts: float) -> dict[str, object]:
    req = Request.model_validate(
        {
            "request_id": f"r{next(_ids)}",
            "origin": "fe-frankfurt",
            "latency_budget_ms": 1000,
            "energy_wh": 2.0,
            "state_region": FR,
            "state_pinned": True,
            "ts": ts,
        }
    )
    return live.decide_requests([req], decided_at=time.time()).placements[0]


def test_average_value_never_becomes_the_marginal_one() -> None:
    """After an average-only signal the kernel still prices the region's last marginal value (158, not 44)."""
    live = _router()
    assert live.apply_signal(
        GridSignal(region=FR, ts=100.0, average_gco2_per_kwh=44.18, source="electricitymaps")
    )
    p = _pinned_to_fr(live, 150.0)
    assert p["status"] == "placed"
    assert p["carbon_g"] == pytest.approx(p["facility_wh"] * 158.0 / 1e3)  # type: ignore[operator]


def test_average_only_signal_does_not_refresh_a_stale_region() -> None:
    """A region whose marginal value and price are stale stays stale after an average-only signal."""
    live = _router()
    assert _pinned_to_fr(live, 1000.0)["reason"] == "pinned_state"  # FR is stale at 1000 s: not placed
    assert live.apply_signal(
        GridSignal(region=FR, ts=900.0, average_gco2_per_kwh=44.18, source="electricitymaps")
    )
    assert _pinned_to_fr(live, 1000.0)["status"] == "rejected"
