"""The tenant and session series: one child per configured tenant, none for any other tenant."""

from __future__ import annotations

from router.placement import PlacementMessage
from streams.metrics import Metrics
from tests.streams.test_readme import placement


def test_only_configured_tenants_have_series_and_moves_are_counted() -> None:
    """Configured tenants get their three gauges at start; a placement of another tenant creates no series;
    a placement flagged ``session_moved`` is counted once."""
    m = Metrics("w", tenants=["acme"])
    p: PlacementMessage = {**placement(), "tenant": "stranger", "session_id": "s", "session_moved": True}  # type: ignore[typeddict-item]
    m.record_placements([p, placement()], [0.0, 0.0])
    m.record_tenants([12.5], [87.5], [0.25])
    text = m.exposition().decode()
    assert 'carbon_router_tenant_placed_carbon_grams{tenant="acme"} 12.5' in text
    assert 'carbon_router_tenant_budget_left_grams{tenant="acme"} 87.5' in text
    assert 'carbon_router_tenant_dual_usd_per_gram{tenant="acme"} 0.25' in text
    assert "stranger" not in text
    assert "carbon_router_session_moves_total 1.0" in text


def test_the_shares_body_carries_the_tenant_duals_only_with_budgeted_tenants() -> None:
    """A re-solve with tenant rows publishes ``nu_usd_per_g`` by tenant id; without tenants the field is
    left out, so messages stay as they were."""
    import numpy as np

    from router.resolve import never_solved
    from streams.leader import SharesBody

    res = never_solved(2)
    with_nu = type(res)(**{**{f: getattr(res, f) for f in res.__slots__}, "nu_usd_per_g": np.array([0.5])})
    assert SharesBody.from_result(with_nu, ["a", "b"], ts=1.0, tenants=["acme"]).fields()["nu_usd_per_g"] == {
        "acme": 0.5
    }
    assert "nu_usd_per_g" not in SharesBody.from_result(res, ["a", "b"], ts=1.0).fields()
