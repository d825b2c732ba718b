"""Per-tenant carbon budgets: the hard guard (filter 8), the re-solve's tenant rows and dual, the topology."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.errors import ConfigError
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.replay import ReplayOptions, replay
from router.resolve import CapacityResolver, ResolveInput
from router.tenantrows import TenantRows
from router.tenants import Tenant
from router.topology import Topology, load_topology
from tests.router.scenarios import random_timeline, random_topology


def _replay_random(seed: int, on_exhausted: str) -> tuple[Topology, list[dict[str, Any]]]:
    """A random topology whose tenants t0, t1 all have ``on_exhausted``, replayed with re-solves."""
    rng = np.random.default_rng(seed)
    topo = random_topology(rng, (2, 6))
    tenants = tuple(
        Tenant(
            id=f"t{k}",
            carbon_budget_g=float(rng.choice([0.5, 5.0])),
            window_s=float(rng.choice([10.0, 60.0])),
            on_exhausted=on_exhausted,  # type: ignore[arg-type]  # "reject" or "allow", checked by the model
        )
        for k in range(2)
    )
    topo = topo.model_copy(update={"tenants": tenants})
    sig: list[tuple[int, GridSignal]] = []
    sts: list[tuple[int, RegionStatus]] = []
    fcs: list[tuple[int, GridForecast]] = []
    reqs: list[tuple[int, Request]] = []
    for k, (_, ev) in enumerate(random_timeline(rng, topo, 120)):
        if isinstance(ev, Request):
            reqs.append((k, ev))
        elif isinstance(ev, GridSignal):
            sig.append((k, ev))
        elif isinstance(ev, RegionStatus):
            sts.append((k, ev))
        elif isinstance(ev, GridForecast):
            fcs.append((k, ev))
    res = replay(topo, sig, reqs, statuses=sts, forecasts=fcs, options=ReplayOptions(max_batch=7))
    return topo, [dict(p) for p in res.placements]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1))
def test_placed_carbon_of_every_reject_tenant_stays_within_its_budget_in_every_window(seed: int) -> None:
    """With ``on_exhausted = "reject"``, in every sliding window ending at one of the tenant's placements the
    marginal carbon it placed is within its budget (up to the micro-gram rounding of each placement)."""
    topo, placements = _replay_random(seed, "reject")
    for tenant in topo.tenants:
        mine = [
            (p["event_ts"], p["carbon_g"]) for p in placements if p.get("tenant") == tenant.id and p["region"]
        ]
        for t_end, _ in mine:
            inside = [c for ts, c in mine if t_end - tenant.window_s < ts <= t_end]
            assert sum(inside) <= tenant.carbon_budget_g + 1e-6 * len(inside), (tenant, t_end, inside)


def test_allow_tenants_and_unknown_tenants_are_never_rejected_for_a_budget() -> None:
    """``allow`` places past the budget; a tenant the topology does not name is never budgeted."""
    for seed in range(20):
        _, placements = _replay_random(seed, "allow")
        assert not [p for p in placements if p["reason"] == "tenant_budget"]
    rejected = 0
    for seed in range(20):
        _, placements = _replay_random(seed, "reject")
        assert not [
            p for p in placements if p["reason"] == "tenant_budget" and p.get("tenant") not in ("t0", "t1")
        ]
        rejected += sum(p["reason"] == "tenant_budget" for p in placements)
    assert rejected > 0  # the budgets do bind in these scenarios


def _lp(budget_g_per_h: float) -> ResolveInput:
    """One tenant group of 10 kW that can use a cheap dirty region (0) or a dear clean one (1)."""
    return ResolveInput(
        group_keys=("n|c0|03|t0",),
        demand_kw=np.array([10.0]),
        unit_usd_per_wh=np.array([[1e-4, 3e-4]]),
        reachable=np.array([[True, True]]),
        capacity_kw=np.array([np.inf, np.inf]),
        tenants=TenantRows(
            group_tenant=np.array([0], dtype=np.int64),
            g_per_wh=np.array([[0.5, 0.05]]),
            budget_g_per_h=np.array([budget_g_per_h]),
        ),
    )


def test_the_tenant_row_binds_with_a_dual_in_usd_per_gram() -> None:
    """A budget below the dirty region's carbon moves the group's share to the clean region until the row
    binds; the dual is the cost gap per gram saved, (3e-4 - 1e-4) / (0.5 - 0.05) USD per g."""
    res = CapacityResolver(2, penalty_usd_per_wh=1.0).solve(_lp(2000.0))  # 10 kW all dirty: 5000 g/h
    assert res.ok, res.status
    carbon_per_h = 1000.0 * (res.shares[0] * 10.0 * np.array([0.5, 0.05])).sum()
    assert carbon_per_h == pytest.approx(2000.0, rel=1e-6)
    assert res.nu_usd_per_g[0] == pytest.approx((3e-4 - 1e-4) / (0.5 - 0.05), rel=1e-6)
    loose = CapacityResolver(2, penalty_usd_per_wh=1.0).solve(_lp(1e6))
    assert loose.nu_usd_per_g.tolist() == [0.0]
    assert loose.shares[0].tolist() == [1.0, 0.0]


def test_duplicate_or_bad_tenants_stop_the_topology(tmp_path: Any) -> None:
    """A duplicate tenant id, a budget <= 0 or an unknown on_exhausted is refused at load (exit 2)."""
    base = load_topology().model_dump_json(exclude={"tenants"})
    for tenants in (
        [{"id": "a", "carbon_budget_g": 1.0}, {"id": "a", "carbon_budget_g": 2.0}],
        [{"id": "a", "carbon_budget_g": 0.0}],
        [{"id": "a", "carbon_budget_g": 1.0, "on_exhausted": "drop"}],
    ):
        doc = {**orjson.loads(base), "tenants": tenants}
        path = tmp_path / "t.json"
        path.write_bytes(orjson.dumps(doc))
        with pytest.raises(ConfigError) as err:
            load_topology(path)
        assert "tenants" in str(err.value)


def test_a_shares_message_with_a_tenant_dual_beyond_the_bound_is_refused() -> None:
    """``nu_usd_per_g`` is bounded to 0..1e6 USD per g at the edge (the message is invalid beyond it)."""
    from pydantic import ValidationError

    from router.models import SharesMessage

    base = {
        "version": 1, "ts": 1776038400.0, "ok": True, "status": "optimal", "regions": ["r"],
        "mu_usd_per_wh": {"r": 0.0}, "groups": [], "shares": [], "unserved_share": [], "solve_s": 0.1,
    }  # fmt: skip
    assert SharesMessage.model_validate({**base, "nu_usd_per_g": {"acme": 1e6}}).nu_usd_per_g == {"acme": 1e6}
    for bad in (1e6 * 1.0001, -1.0):
        with pytest.raises(ValidationError, match="nu_usd_per_g"):
            SharesMessage.model_validate({**base, "nu_usd_per_g": {"acme": bad}})
