"""Deterministic offline replay in event time: the same decision logic as the live router, no broker.

Requests are processed in ``ts`` order (file order breaks ties). A grid signal or region status applies to
requests with ``ts`` at or after its own ``ts``; a grid forecast to requests at or after its
``generated_at`` (its event time; see router.forecast for when its points stand in for stale values).
Every ``resolve_interval_s`` of event time the capacity LP is re-solved on the requests of the last
``demand_window_s`` and its duals feed the kernel. Between two events the requests go to the kernel as one
batch. The same inputs give byte-identical output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from router.bounds import DEFAULT_MAX_CLOCK_SKEW_S
from router.clock import ahead_problem
from router.decider import Decider
from router.encode import encode_placement
from router.errors import InputError
from router.kernel.columns import BUDGET_MS, T
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.placement import PlacementMessage
from router.plan import Plan, RequestArrays, Row
from router.resolve import CapacityResolver, ResolveResult
from router.topology import Topology

__all__ = ["Probe", "ReplayOptions", "ReplayResult", "encode_placement", "prepare_requests", "replay"]

#: Re-solve times with no request in their demand window are skipped one by one up to this many; past it
#: the replay jumps (a gap of years between two requests must not cost a loop per interval).
_MAX_IDLE_RESOLVES = 10_000


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What-if knobs of a replay; the defaults reproduce the live router."""

    alpha: float = 1.0  # every request's latency budget is multiplied by this
    use_duals: bool = True  # False: never re-solve, the kernel sees mu = 0
    max_batch: int = 4096
    resolve_time_limit_s: float = 1.0
    #: the router's clock: a record dated more than ``max_clock_skew_s`` after it is refused (None: no check)
    now: float | None = None
    max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S
    #: add ``runner_up`` and ``terms`` to every placement
    explain: bool = False
    #: the pick rule (``router.kernel.columns.POLICIES``); ``carbon-router compare`` sets the baselines
    policy: str = "score"


@dataclass(slots=True)
class ReplayResult:
    """Placements in decision order plus what the re-solves did."""

    placements: list[PlacementMessage]
    resolves: list[ResolveResult] = field(default_factory=list)
    failed_resolves: int = 0
    ignored_signals: int = 0
    ignored_forecasts: int = 0  # older than the region's forecast already held


def prepare_requests(
    plan: Plan, requests: Sequence[tuple[int, Request]], source: str
) -> tuple[list[Request], list[Row]]:
    """Validate ids against the plan and turn requests into kernel rows, sorted by (ts, file order)."""
    rows: list[tuple[float, int, Request, Row]] = []
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
#: a request id and a function called once, just before that request is decided, with the decider in the
#: state it is decided with and the request's kernel row (``carbon-router explain``); the request then starts
#: a batch of its own, which changes no decision (batching never does)
Probe = tuple[str, Callable[[Decider, Request, Row], None]]


def _check_events(
    plan: Plan, events: Sequence[tuple[int, Event | Request]], source: str, options: ReplayOptions
) -> None:
    """Known regions, and no record ahead of the router's clock (router/clock.py)."""
    for line, ev in events:
        if not isinstance(ev, Request) and ev.region not in plan.region_index:
            raise InputError(
                "unknown region",
                source=source,
                line=line,
                field="region",
                received=ev.region,
                expected=f"a region id, one of {list(plan.region_ids)}",
            )
        ts = ev.generated_at if isinstance(ev, GridForecast) else ev.ts
        if options.now is not None and ts is not None:
            ahead = ahead_problem(ts, options.now, options.max_clock_skew_s)
            if ahead is not None:
                field_name = "generated_at" if isinstance(ev, GridForecast) else "ts"
                raise InputError(ahead[0], source=source, line=line, field=field_name, expected=ahead[1])


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
    probe: Probe | None = None,
) -> ReplayResult:
    """Replay ``requests`` against ``signals`` (and ``statuses``, ``forecasts``) in event time."""
    decider = Decider(topology, explain=options.explain, policy=options.policy)
    plan = decider.plan
    _check_events(plan, signals, sources[0], options)
    _check_events(plan, statuses, sources[2], options)
    _check_events(plan, forecasts, forecasts_source, options)
    _check_events(plan, requests, sources[1], options)
    reqs, rows = prepare_requests(plan, requests, sources[1])
    if options.alpha != 1.0:
        for r in rows:
            r[0][BUDGET_MS] *= options.alpha
    batch_all = plan.arrays(reqs, rows)
    n_sig, n_st = len(signals), len(statuses)
    events: list[tuple[float, int, Event]] = sorted(
        [(s.ts, k, s) for k, (_, s) in enumerate(signals)]
        + [(s.ts, n_sig + k, s) for k, (_, s) in enumerate(statuses)]
        + [(f.generated_at, n_sig + n_st + k, f) for k, (_, f) in enumerate(forecasts)],
        key=lambda x: (x[0], x[1]),
    )
    return _run(decider, batch_all, reqs, rows, events, options, probe)


def _run(
    decider: Decider,
    batch_all: RequestArrays,
    reqs: list[Request],
    rows: list[Row],
    events: list[tuple[float, int, Event]],
    options: ReplayOptions,
    probe: Probe | None = None,
) -> ReplayResult:
    obj = decider.objective
    resolver = CapacityResolver(
        decider.plan.n_regions,
        penalty_usd_per_wh=obj.unserved_penalty_usd_per_wh,
        time_limit_s=options.resolve_time_limit_s,
    )
    result = ReplayResult(placements=[])
    ts = batch_all.f[:, T]
    n = len(batch_all)
    ev_ts = [e[0] for e in events]
    k_ev = 0
    next_resolve = float(ts[0]) + obj.resolve_interval_s if n else math.inf
    probed = -1 if probe is None else next((k for k, r in enumerate(reqs) if r.request_id == probe[0]), -1)
    i = 0
    while i < n:
        t = float(ts[i])
        idle = 0
        while options.use_duals and next_resolve <= t:
            k_ev = _apply_events(decider, events, k_ev, next_resolve, result)
            _resolve(decider, resolver, next_resolve, result)
            next_resolve += obj.resolve_interval_s
            idle += 1
            if idle > _MAX_IDLE_RESOLVES and next_resolve < t - obj.demand_window_s:
                skipped = math.floor((t - obj.demand_window_s - next_resolve) / obj.resolve_interval_s)
                next_resolve += skipped * obj.resolve_interval_s
        k_ev = _apply_events(decider, events, k_ev, t, result)
        stop = min(
            ev_ts[k_ev] if k_ev < len(events) else math.inf, next_resolve if options.use_duals else math.inf
        )
        j = int(np.searchsorted(ts, stop, side="left"))
        j = min(max(j, i + 1), i + options.max_batch, n)
        if i < probed < j:
            j = probed
        if i == probed and probe is not None:
            probe[1](decider, reqs[i], rows[i])
        result.placements.extend(decider.decide(reqs[i:j], rows[i:j]).placements)
        i = j
    return result


def _resolve(decider: Decider, resolver: CapacityResolver, now: float, result: ReplayResult) -> None:
    """One re-solve at event time ``now``; its duals are used from then on when it succeeds."""
    inp = decider.resolve_input(now)
    if inp is None:
        return
    res = resolver.solve(inp)
    if res.ok:
        decider.set_duals(res.version, res.mu_usd_per_wh.tolist(), res.nu_usd_per_g.tolist())
        result.resolves.append(res)
    else:
        result.failed_resolves += 1


def _apply_events(
    decider: Decider,
    events: list[tuple[float, int, Event]],
    k: int,
    t: float,
    result: ReplayResult,
) -> int:
    """Apply every event with ts <= t; returns the index of the first event not applied."""
    while k < len(events) and events[k][0] <= t:
        ev = events[k][2]
        if isinstance(ev, GridSignal):
            applied = decider.apply_signal(ev)
        elif isinstance(ev, GridForecast):
            result.ignored_forecasts += not decider.apply_forecast(ev)
            applied = True
        else:
            applied = decider.apply_status(ev)
        if not applied:
            result.ignored_signals += 1
        k += 1
    return k
