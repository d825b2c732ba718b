"""A worker's share of the capacity guard (RegionState.set_capacity_share)."""

from __future__ import annotations

import pytest

from router.decider import Decider
from router.models import Request
from router.topology import load_topology


def _reqs(n: int, energy_wh: float) -> list[Request]:
    return [
        Request(request_id=f"r{k}", origin="fe-frankfurt", latency_budget_ms=1e6, energy_wh=energy_wh, ts=1.0)
        for k in range(n)
    ]


def test_a_quarter_share_guards_a_quarter_of_every_window() -> None:
    """With share 1/4 a region takes at most a quarter of what it takes with the whole window."""
    counts = []
    energy = (
        float(Decider(load_topology(None)).scorer.state.capacity_nwh().max()) / 1e9 / 40
    )  # <= 40 fill one
    for share in (1.0, 0.25):
        live = Decider(load_topology(None))
        live.scorer.state.set_capacity_share(share)
        window_wh = live.scorer.state.capacity_nwh() / 1e9
        got = live.decide_requests(_reqs(2000, energy), decided_at=2.0).placements
        placed = [p for p in got if p["status"] == "placed"]
        by_region: dict[str, float] = {}
        for p in placed:
            by_region[p["region"]] = by_region.get(p["region"], 0.0) + p["energy_wh"]
        for j, rid in enumerate(live.plan.region_ids):
            assert by_region.get(rid, 0.0) <= window_wh[j] + 1e-9
        counts.append(len(placed))
    assert 0 < counts[1] <= counts[0] / 4 + 13  # rounding: at most one extra request per region


def test_share_outside_zero_one_is_refused() -> None:
    """0, negative and above-1 shares are programming errors."""
    live = Decider(load_topology(None))
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="capacity share"):
            live.scorer.state.set_capacity_share(bad)
