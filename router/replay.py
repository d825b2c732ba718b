"""Deterministic offline replay in event time: the same decision logic as the live router, no broker.

Requests are processed in ``ts`` order (file order breaks ties). A grid signal or region status applies to
requests with ``ts`` at or after its own ``ts``; a grid forecast to requests at or after its
``generated_at`` (its event time; see router.forecast for when its points stand in for stale values).
Every ``resolve_interval_s`` of event time the capacity LP is re-solved on the requests of the last
``demand_window_s`` and its duals feed the kernel. Between two events the requests go to the kernel as one
batch. The same inputs give byte-identical output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from router.demand import build_resolve_input, uncontended
from router.encode import placements
from router.errors import InputError
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.plan import Plan, RequestArrays
from router.resolve import CapacityResolver, ResolveResult
from router.scoring import Scorer
from router.state import MU
from router.topology import Topology

__all__ = ["ReplayOptions", "ReplayResult", "encode_placement", "prepare_requests", "replay"]


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What-if knobs of a replay; the defaults reproduce the live router."""

    alpha: float = 1.0  # every request's latency budget is multiplied by this
    use_duals: bool = True  # False: never re-solve, the kernel sees mu = 0
    max_batch: int = 4096
    resolve_time_limit_s: float = 1.0


@dataclass(slots=True)
class ReplayResult:
    """Placements in decision order plus what the re-solves did."""

    placements: list[dict[str, Any]]
    resolves: list[ResolveResult] = field(default_factory=list)
    failed_resolves: int = 0
    ignored_signals: int = 0
    ignored_forecasts: int = 0  # older than the region's forecast already held


def encode_placement(p: dict[str, Any]) -> bytes:
    """One placement as compact JSON bytes (key order fixed by construction)."""
    return orjson.dumps(p)


def prepare_requests(
    plan: Plan, requests: Sequence[tuple[int, Request]], source: str
) -> tuple[list[Request], list[tuple[list[float], list[int]]]]:
    """Validate ids against the plan and turn requests into kernel rows, sorted by (ts, file order)."""
    rows: list[tuple[float, int, Request, tuple[list[float], list[int]]]] = []
    for seq, (line, req) in enumerate(requests):
        if req.ts is None:
            raise InputError(
                "ts is required for an offline replay (there is no arrival time to default to)",
                source=source,
                line=line,
                field="ts",
                expected="epoch seconds (float)",
            )
        rows.append((req.ts, seq, req, plan.request_row(req, ts=req.ts, source=source, line=line)))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows], [r[3] for r in rows]


Event = GridSignal | RegionStatus | GridForecast


def _check_regions(plan: Plan, events: Sequence[tuple[int, Event]], source: str) -> None:
    for line, ev in events:
        if ev.region not in plan.region_index:
            raise InputError(
                "unknown region",
                source=source,
                line=line,
                field="region",
                received=ev.region,
                expected=f"a region id, one of {list(plan.region_ids)}",
            )


def replay(
    topology: Topology,
    signals: Sequence[tuple[int, GridSignal]],
    requests: Sequence[tuple[int, Request]],
    *,
    statuses: Sequence[tuple[int, RegionStatus]] = (),
    options: ReplayOptions = ReplayOptions(),
    sources: tuple[str, str, str] = ("signals", "requests", "statuses"),
    forecasts: Sequence[tuple[int, GridForecast]] = (),
    forecasts_source: str = "forecasts",
) -> ReplayResult:
    """Replay ``requests`` against ``signals`` (and ``statuses``, ``forecasts``) in event time."""
    plan = Plan(topology)
    _check_regions(plan, signals, sources[0])
    _check_regions(plan, statuses, sources[2])
    _check_regions(plan, forecasts, forecasts_source)
    reqs, rows = prepare_requests(plan, requests, sources[1])
    if options.alpha != 1.0:
        for r in rows:
            r[0][2] *= options.alpha
    batch_all = plan.arrays(reqs, rows)
    n_sig, n_st = len(signals), len(statuses)
    events: list[tuple[float, int, Event]] = sorted(
        [(s.ts, k, s) for k, (_, s) in enumerate(signals)]
        + [(s.ts, n_sig + k, s) for k, (_, s) in enumerate(statuses)]
        + [(f.generated_at, n_sig + n_st + k, f) for k, (_, f) in enumerate(forecasts)],
        key=lambda x: (x[0], x[1]),
    )
    return _run(plan, batch_all, events, options)


def _slice(b: RequestArrays, lo: int, hi: int) -> RequestArrays:
    return RequestArrays(ids=b.ids[lo:hi], origins=b.origins[lo:hi], f=b.f[lo:hi], i=b.i[lo:hi])


def _run(
    plan: Plan,
    batch_all: RequestArrays,
    events: list[tuple[float, int, Event]],
    options: ReplayOptions,
) -> ReplayResult:
    obj = plan.topology.objective
    scorer = Scorer(plan)
    resolver = CapacityResolver(
        plan.n_regions,
        penalty_usd_per_wh=obj.unserved_penalty_usd_per_wh,
        time_limit_s=options.resolve_time_limit_s,
    )
    result = ReplayResult(placements=[])
    ts = batch_all.f[:, 0]
    n = len(batch_all)
    ev_ts = [e[0] for e in events]
    k_ev = 0
    next_resolve = float(ts[0]) + obj.resolve_interval_s if n else np.inf
    shares_version = 0
    i = 0
    while i < n:
        t = float(ts[i])
        while options.use_duals and next_resolve <= t:
            k_ev = _apply_events(scorer, events, k_ev, next_resolve, result)
            lo = int(np.searchsorted(ts, next_resolve - obj.demand_window_s, side="left"))
            hi = int(np.searchsorted(ts, next_resolve, side="left"))
            inp = (
                build_resolve_input(scorer, _slice(batch_all, lo, hi), obj.demand_window_s)
                if hi > lo
                else None
            )
            # an uncontended fleet has all-zero duals: skip the LP when the kernel's duals are zero already
            if inp is not None and not (uncontended(inp) and not scorer.state.f[:, MU].any()):
                res = resolver.solve(inp)
                if res.ok:
                    scorer.state.set_duals(res.mu_usd_per_wh)
                    shares_version = res.version
                    result.resolves.append(res)
                else:
                    result.failed_resolves += 1
            next_resolve += obj.resolve_interval_s
        k_ev = _apply_events(scorer, events, k_ev, t, result)
        stop = min(
            ev_ts[k_ev] if k_ev < len(events) else np.inf, next_resolve if options.use_duals else np.inf
        )
        j = int(np.searchsorted(ts, stop, side="left"))
        j = min(max(j, i + 1), i + options.max_batch, n)
        part = _slice(batch_all, i, j)
        result.placements.extend(placements(plan, part, scorer.decide(part), shares_version=shares_version))
        i = j
    return result


def _apply_events(
    scorer: Scorer,
    events: list[tuple[float, int, Event]],
    k: int,
    t: float,
    result: ReplayResult,
) -> int:
    """Apply every event with ts <= t; returns the index of the first event not applied."""
    while k < len(events) and events[k][0] <= t:
        ev = events[k][2]
        if isinstance(ev, GridSignal):
            applied = scorer.state.apply_signal(ev)
        elif isinstance(ev, GridForecast):
            applied = scorer.forecasts.apply(ev)
            result.ignored_forecasts += not applied
            applied = True
        else:
            applied = scorer.state.apply_status(ev)
        if not applied:
            result.ignored_signals += 1
        k += 1
    return k
