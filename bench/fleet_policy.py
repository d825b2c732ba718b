"""README numbers for tenant carbon budgets and sticky sessions (issue 14), on the bundled data and on the
bundled Azure trace slice: cost and marginal carbon with budgets binding against without, and region moves
per session with sticky sessions against without.

Neither data set has budgets or conversations, so this script adds them by a fixed rule: the bundled
requests' three largest tenants (the trace's requests, dealt round-robin to three tenants) get a budget of
``BUDGET_SHARE`` of the marginal carbon they place without one, over the whole replay (one window); a
session is a (service node, tenant, interactive or not, ``SESSION_BUCKET_S`` bucket) of the bundled
requests, and every ``TRACE_SESSIONS``-th request of the trace from one service node.
Run: ``python -m bench.fleet_policy``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

from router.commands import bundled
from router.io import read_jsonl
from router.models import GridSignal, Request
from router.placement import PlacementMessage
from router.replay import replay
from router.tenants import Tenant
from router.topology import Topology, load_topology
from router.workload import azure_requests, read_azure_trace, token_model

__all__ = ["main", "measure"]

BUDGET_SHARE = 0.6
SESSION_BUCKET_S = 600.0
TRACE_SESSIONS = 40
MARGIN_USD = 5e-6
DWELL_S = 300.0

Requests = list[tuple[int, Request]]
Signals = Sequence[tuple[int, GridSignal]]


def _totals(ps: Sequence[PlacementMessage]) -> dict[str, Any]:
    placed = [p for p in ps if p["status"] == "placed"]
    return {
        "placed": len(placed),
        "rejected": len(ps) - len(placed),
        "rejected_tenant_budget": sum(p["reason"] == "tenant_budget" for p in ps),
        "energy_usd": round(sum(p["energy_usd"] or 0.0 for p in placed), 6),
        "carbon_g": round(sum(p["carbon_g"] or 0.0 for p in placed), 3),
    }


def _by_tenant(ps: Sequence[PlacementMessage]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for p in ps:
        if p["status"] == "placed" and "tenant" in p:
            out[p["tenant"]] += p["carbon_g"] or 0.0
    return out


def _moves(ps: Sequence[PlacementMessage], session_of: dict[str, str]) -> tuple[int, int]:
    """(sessions, region changes between consecutive placed requests of one session)."""
    last: dict[str, str] = {}
    moves = 0
    for p in sorted(ps, key=lambda p: p["event_ts"]):
        s = session_of.get(p["request_id"])
        if s is None or p["region"] is None:
            continue
        if s in last and last[s] != p["region"]:
            moves += 1
        last[s] = p["region"]
    return len(last), moves


def measure(
    topo: Topology, sig: Signals, req: Requests, tenant_of: dict[str, str], session_of: dict[str, str]
) -> dict[str, Any]:
    """Budgets off/on (reject, allow) and sessions off/on for one data set."""
    tagged = [(k, r.model_copy(update={"tenant": tenant_of.get(r.request_id)})) for k, r in req]
    free = replay(topo, sig, tagged).placements
    used = _by_tenant(free)
    span = max(r.ts or 0.0 for _, r in req) - min(r.ts or 0.0 for _, r in req) + 1.0
    top = sorted(set(tenant_of.values()), key=lambda t: -used.get(t, 0.0))[:3]
    out: dict[str, Any] = {"requests": len(req), "without_budgets": _totals(free), "budgets": {}}
    modes: tuple[Literal["reject", "allow"], ...] = ("reject", "allow")
    for mode in modes:
        tenants = tuple(
            Tenant(id=t, carbon_budget_g=round(BUDGET_SHARE * used[t], 3), window_s=min(86_400.0, span),
                   on_exhausted=mode)
            for t in top
        )  # fmt: skip
        ps = replay(topo.model_copy(update={"tenants": tenants}), sig, tagged).placements
        mine = _by_tenant(ps)
        out["budgets"][mode] = {
            **_totals(ps),
            "tenants": {t.id: {"budget_g": t.carbon_budget_g, "free_g": round(used[t.id], 3),
                               "placed_g": round(mine[t.id], 3)} for t in tenants},
        }  # fmt: skip
    sticky_topo = topo.model_copy(
        update={
            "objective": topo.objective.model_copy(
                update={"switch_margin_usd": MARGIN_USD, "session_min_dwell_s": DWELL_S}
            )
        }
    )
    sessioned = [(k, r.model_copy(update={"session_id": session_of[r.request_id]})) for k, r in req]
    sticky = replay(sticky_topo, sig, sessioned).placements
    n, moves_free = _moves(free, session_of)
    _, moves_sticky = _moves(sticky, session_of)
    out["sessions"] = {
        "sessions": n,
        "margin_usd": MARGIN_USD,
        "min_dwell_s": DWELL_S,
        "moves_without": moves_free,
        "moves_with": moves_sticky,
        "moves_per_session_without": round(moves_free / n, 3),
        "moves_per_session_with": round(moves_sticky / n, 3),
        "flagged_moves": sum(bool(p.get("session_moved")) for p in sticky),
        "without_stickiness": _totals(free),
        "with_stickiness": _totals(sticky),
    }
    return out


def _bucket(ts: float | None) -> int:
    return int((ts or 0.0) // SESSION_BUCKET_S)


def main() -> None:
    """Print the numbers of both data sets as JSON."""
    topo = load_topology()
    sig = read_jsonl(bundled("sample_signals.jsonl"), GridSignal)
    req = read_jsonl(bundled("sample_requests.jsonl"), Request)
    tenant_of = {r.request_id: r.tenant for _, r in req if r.tenant is not None}
    session_of = {
        r.request_id: f"{r.origin}|{r.tenant}|{r.latency_budget_ms > 300}|{_bucket(r.ts)}" for _, r in req
    }
    result = {"bundled": measure(topo, sig, req, tenant_of, session_of)}
    rows = read_azure_trace(bundled("azure_llm_2023_slice.csv"))
    model = token_model(topo, None, "topology")
    trace = [
        (k, Request.model_validate(d))
        for k, d in enumerate(azure_requests(rows, topo, model, seed=0, start=1776038400.0))
    ]
    tenant_of = {r.request_id: f"trace-{k % 3}" for k, r in trace}
    session_of = {r.request_id: f"{r.origin}|conv-{k % TRACE_SESSIONS}" for k, r in trace}
    result["azure_slice"] = measure(topo, sig, trace, tenant_of, session_of)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
