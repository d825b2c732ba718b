"""Demand estimation for the capacity re-solve: recent requests -> demand groups, unit costs, reachability.

A demand group is (service node, latency class, set of reachable regions, budgeted tenant): requests of one
node and class that can reach the same regions are interchangeable for the LP, unless their tenants' carbon
budgets differ (router/tenantrows.py; a request of no budgeted tenant keeps the key without a tenant).
Demand is IT power in kW over the window; the unit cost of a group at a region is the energy-weighted mean
of its requests' scores (without the dual term) per IT Wh.
"""

from __future__ import annotations

import numpy as np

from router.kernel.columns import BUDGET_MS, ENERGY_WH, HEALTHY, ORIGIN, TEN_WINDOW_S, TENANT
from router.plan import FloatArray, Plan, RequestArrays
from router.resolve import ResolveInput
from router.scoring import Scorer
from router.tenantrows import TenantRows, tenants_uncontended

__all__ = ["build_resolve_input", "uncontended"]


def build_resolve_input(scorer: Scorer, window: RequestArrays, window_s: float) -> ResolveInput:
    """The LP input for the requests in the last ``window_s`` seconds, under the current signals."""
    plan: Plan = scorer.plan
    R = plan.n_regions
    cost, reach, carb = scorer.candidate_costs(window)
    e = window.f[:, ENERGY_WH]
    bounds = np.asarray(plan.topology.objective.class_bounds_ms, dtype=np.float64)
    cls = np.searchsorted(bounds, window.f[:, BUDGET_MS], side="left")
    packed = np.packbits(reach, axis=1)
    key_rows = np.concatenate(
        [
            window.i[:, ORIGIN : ORIGIN + 1].astype(np.int64),
            cls[:, None].astype(np.int64),
            window.i[:, TENANT : TENANT + 1].astype(np.int64),
            packed.astype(np.int64),
        ],
        axis=1,
    )
    uniq, first, inverse = np.unique(key_rows, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    G = uniq.shape[0]
    e_sum = np.bincount(inverse, weights=e, minlength=G)
    unit: FloatArray = np.zeros((G, R), dtype=np.float64)
    for j in range(R):
        unit[:, j] = np.bincount(inverse, weights=cost[:, j], minlength=G)
    unit /= np.maximum(e_sum, 1e-300)[:, None]
    reachable = reach[first]  # the pattern is part of the key, so any member's row is the group's
    keys = tuple(
        f"{plan.node_ids[int(row[0])]}|c{int(row[1])}|{bytes(row[3:].astype(np.uint8)).hex()}"
        + (f"|t{int(row[2])}" if row[2] >= 0 else "")
        for row in uniq
    )
    # the LP plans on a fraction of each region's capacity: the rest absorbs arrival bursts inside a window
    headroom = plan.topology.objective.resolve_headroom
    healthy = scorer.state.i[:, HEALTHY] != 0
    capacity = np.where(healthy, scorer.state.capacity_kw * headroom, 0.0)  # inf stays inf: no limit
    return ResolveInput(
        group_keys=keys,
        demand_kw=np.ascontiguousarray(e_sum * 3.6 / window_s),
        unit_usd_per_wh=np.ascontiguousarray(unit),
        reachable=np.ascontiguousarray(reachable),
        capacity_kw=np.ascontiguousarray(capacity.astype(np.float64)),
        tenants=_tenant_rows(scorer, uniq[:, 2], inverse, e, e_sum, carb),
    )


def _tenant_rows(
    scorer: Scorer,
    group_tenant: np.ndarray,
    inverse: np.ndarray,
    e: FloatArray,
    e_sum: np.ndarray,
    carb: FloatArray,
) -> TenantRows | None:
    """The groups' tenants and energy-weighted carbon per IT Wh, and the budgets per hour; None without
    budgeted tenants."""
    b = scorer.budgets
    if not b.ids:
        return None
    G, R = len(group_tenant), carb.shape[1]
    g_per_wh = np.zeros((G, R), dtype=np.float64)
    for j in range(R):
        g_per_wh[:, j] = np.bincount(inverse, weights=e * carb[:, j], minlength=G)
    g_per_wh /= np.maximum(e_sum, 1e-300)[:, None]
    return TenantRows(
        group_tenant=np.ascontiguousarray(group_tenant.astype(np.int64)),
        g_per_wh=np.ascontiguousarray(g_per_wh),
        budget_g_per_h=np.ascontiguousarray(b.budget_g * 3600.0 / b.f[:, TEN_WINDOW_S]),
    )


def uncontended(inp: ResolveInput) -> bool:
    """True when no capacity row can bind: every region could take all the demand that can reach it.

    Then the LP's optimum puts every group at its cheapest region with every capacity row slack, so all duals
    are zero; a caller whose duals are already zero can skip the solve.
    """
    reach_kw = (inp.demand_kw[:, None] * inp.reachable).sum(axis=0)
    capacity_free = bool(np.all(reach_kw < inp.capacity_kw))
    return capacity_free and tenants_uncontended(inp.demand_kw, inp.reachable, inp.tenants)
