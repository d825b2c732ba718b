"""Demand estimation for the capacity re-solve: recent requests -> demand groups, unit costs, reachability.

A demand group is (service node, latency class, set of reachable regions): requests of one node and
class that can reach the same regions are interchangeable for the LP. Demand is IT power in kW over the
window; the unit cost of a group at a region is the energy-weighted mean of its requests' scores (without the
dual term) per IT Wh.
"""

from __future__ import annotations

import numpy as np

from router.kernel.columns import BUDGET_MS, ENERGY_WH, HEALTHY, ORIGIN
from router.plan import FloatArray, Plan, RequestArrays
from router.resolve import ResolveInput
from router.scoring import Scorer

__all__ = ["build_resolve_input", "uncontended"]


def build_resolve_input(scorer: Scorer, window: RequestArrays, window_s: float) -> ResolveInput:
    """The LP input for the requests in the last ``window_s`` seconds, under the current signals."""
    plan: Plan = scorer.plan
    R = plan.n_regions
    cost, reach = scorer.candidate_costs(window)
    e = window.f[:, ENERGY_WH]
    bounds = np.asarray(plan.topology.objective.class_bounds_ms, dtype=np.float64)
    cls = np.searchsorted(bounds, window.f[:, BUDGET_MS], side="left")
    packed = np.packbits(reach, axis=1)
    key_rows = np.concatenate(
        [
            window.i[:, ORIGIN : ORIGIN + 1].astype(np.int64),
            cls[:, None].astype(np.int64),
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
        f"{plan.node_ids[int(row[0])]}|c{int(row[1])}|{bytes(row[2:].astype(np.uint8)).hex()}" for row in uniq
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
    )


def uncontended(inp: ResolveInput) -> bool:
    """True when no capacity row can bind: every region could take all the demand that can reach it.

    Then the LP's optimum puts every group at its cheapest region with every capacity row slack, so all duals
    are zero; a caller whose duals are already zero can skip the solve.
    """
    reach_kw = (inp.demand_kw[:, None] * inp.reachable).sum(axis=0)
    return bool(np.all(reach_kw < inp.capacity_kw))
