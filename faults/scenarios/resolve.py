"""Scenario 7: the leader's capacity re-solve fails (over its time limit) under load.

The LP has an unserved-demand slack, so it is never infeasible; what fails in practice is the time limit.
The workers run a topology whose capacities bind (so that the leader re-solves every second) and requests
whose event times advance with the wall clock. Full form: a worker with the default time limit re-solves
and publishes shares version V; it leaves (SIGTERM) and a worker with ``resolve_time_limit_s`` = 1e-6 s
takes over, whose every re-solve stops at the time limit. Quick form: shares version V is published on
``router.shares`` (as a previous leader would have) before that one worker starts.

Checked while the failing worker leads: its re-solves fail (``carbon_router_resolves_total{outcome=
"failed"}`` > 0, none ok, ``resolve_failed`` in its log naming the kept shares version) and publish nothing
on ``router.shares``; the shares in use stay V (``/healthz``, and ``shares_version`` of every placement it
decides); the capacity guard holds: replaying its placements in decision order through the capacity
windows (``faults.checker.capacity_overruns``), no region's placed energy ever exceeds its window; nothing
acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from faults.checker import SendLog, capacity_overruns, check_placements, read_topic
from faults.scenarios.common import (
    T0,
    Ctx,
    Result,
    fill_result,
    first_hour_signals,
    fresh_requests,
    fresh_settings,
    gather,
    metric_values,
    publish_signals,
    request_items,
    send_paced,
    start_worker,
    stop_workers,
    wait_placed,
)
from router.topology import Topology, load_topology
from tests.integration.harness import WorkerProc, produce

__all__ = ["CAPACITY_SCALE", "FAILING_TIME_LIMIT_S", "resolve_fails", "scarce_topology"]

#: A HiGHS time limit no simplex run fits in (see router.resolve: any run that iterates stops).
FAILING_TIME_LIMIT_S = 1e-6
#: The bundled capacities times this: the windows bind at a few hundred requests per second.
CAPACITY_SCALE = 0.02
_QUICK_VERSION = 7_000_000_007


def scarce_topology(logdir: Path) -> tuple[Topology, Path]:
    """The bundled topology with capacities scaled by CAPACITY_SCALE and a 1 s re-solve, as a JSON file."""
    topo = load_topology()
    scarce = topo.model_copy(
        update={
            "objective": topo.objective.model_copy(update={"resolve_interval_s": 1.0}),
            "regions": tuple(
                r.model_copy(update={"capacity_kw": r.capacity_kw * CAPACITY_SCALE}) for r in topo.regions
            ),
        }
    )
    path = logdir / "scarce-topology.json"
    path.write_bytes(orjson.dumps(scarce.model_dump()))
    return scarce, path


def _paced_requests(n: int, tag: str, rate: float) -> list[dict[str, Any]]:
    """Sample requests whose event times advance at ``rate`` per second from the timeline's second hour."""
    return [dict(r, ts=T0 + 3600 + k / rate) for k, r in enumerate(fresh_requests(n, tag))]


def _shares_message(topo: Topology, version: int) -> dict[str, Any]:
    """A shares message as a previous leader would have published it, with non-zero duals."""
    regions = [r.id for r in topo.regions]
    return {
        "version": version,
        "ts": time.time(),
        "ok": True,
        "status": "optimal",
        "regions": regions,
        "mu_usd_per_wh": {r: 1e-6 * (k + 1) for k, r in enumerate(regions)},
        "groups": [],
        "shares": [],
        "unserved_share": [],
        "solve_s": 0.01,
        "leader": "scenario-7",
    }


def resolve_fails(ctx: Ctx) -> Result:
    """Scenario 7: the leader's re-solves stop at their time limit while requests keep coming."""
    res = Result("7", "re-solve fails (time limit)")
    rate, hold_s = (150.0, 8.0) if ctx.quick else (250.0, 20.0)
    topo, path = scarce_topology(ctx.logdir)
    s = fresh_settings(ctx.bootstrap, "s7")
    sig = first_hour_signals()
    reqs = request_items(_paced_requests(int(rate * 120), "s7", rate))
    workers: list[WorkerProc] = []
    ph: dict[str, Any] = {}
    log = SendLog()
    try:
        if ctx.quick:
            produce(s, s.topic_shares, [(b"shares", orjson.dumps(_shares_message(topo, _QUICK_VERSION)))])
        else:
            workers.append(start_worker(s, "s7-solver", ctx, topology=path))
        publish_signals(s, sig)
        for w in workers:
            w.wait(lambda h: h["signals_version"] >= len(sig))
        done = asyncio.Event()

        async def load() -> None:
            k, step = 0, int(rate / 2)
            while not done.is_set() and k < len(reqs):
                chunk = reqs[k : k + step]
                k += len(chunk)
                await send_paced(s, s.topic_requests, chunk, rate=rate, log=log)

        async def handover() -> None:
            if workers:  # the full form: a good leader first, until it has published shares
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    h = await asyncio.to_thread(workers[0].health)
                    if h["shares_version"] > 0 and h["batches"] > 0:
                        break
                    await asyncio.sleep(0.5)
                await asyncio.sleep(2.0)
                ph["solver_resolves"] = await asyncio.to_thread(
                    metric_values, workers[0], "carbon_router_resolves_total"
                )
                ph["solver_exit"] = await asyncio.to_thread(workers[0].stop, 30.0)
            ph["failing_from"] = time.time()
            w = WorkerProc(
                s, "s7-failing", ctx.logdir, topology=path, resolve_time_limit_s=FAILING_TIME_LIMIT_S
            )
            workers.append(w)
            await asyncio.to_thread(w.wait, lambda h: h["batches"] > 0, 90.0)
            seen: set[int] = set()
            until = time.monotonic() + hold_s
            while time.monotonic() < until:
                seen.add(int((await asyncio.to_thread(w.health))["shares_version"]))
                await asyncio.sleep(0.5)
            ph["shares_versions_seen"] = sorted(seen)
            done.set()

        asyncio.run(gather(load(), handover()))
        _check(res, s, log, workers[-1], topo, ph)
    finally:
        stop_workers(workers, res)
    return res


def _check(res: Result, s: Any, log: SendLog, w: WorkerProc, topo: Topology, ph: dict[str, Any]) -> None:
    recs = wait_placed(s, log, timeout_s=90, worker=w)
    check = check_placements(log.acked, recs)
    fill_result(res, log, check)
    shares = [r.json() for r in read_topic(s, s.topic_shares, timeout_s=10)]
    kept = max((int(m["version"]) for m in shares), default=0)
    after = [m for m in shares if float(m["ts"]) >= ph["failing_from"]]
    mine = [p for rows in check.by_id.values() for r, p in rows if p["decided_at"] >= ph["failing_from"]]
    versions = sorted({int(p["shares_version"]) for p in mine})
    resolves = metric_values(w, "carbon_router_resolves_total") or {}
    failed = sum(v for k, v in resolves.items() if 'outcome="failed"' in k)
    ok = sum(v for k, v in resolves.items() if 'outcome="ok"' in k)
    text = w.log.read_text(errors="replace")
    failed_lines = [  # a line may start with a terminal escape that faust writes
        orjson.loads(x[x.index("{") :]) for x in text.splitlines() if '"event":"resolve_failed"' in x
    ]
    window_s = topo.objective.capacity_window_s
    cap_wh = {r.id: r.capacity_kw * window_s / 3.6 for r in topo.regions}
    overruns, peak = capacity_overruns(mine, cap_wh, window_s)
    res.details.update(
        {
            "phases": ph,
            "shares_kept_version": kept,
            "shares_published_while_failing": len(after),
            "placement_shares_versions": versions,
            "placements_checked_for_capacity": len(mine),
            "peak_window_use": peak,
            "capacity_overruns": overruns[:10],
            "failing_resolves": resolves,
            "resolve_failed_log": failed_lines[:2],
        }
    )
    v = res.violations
    if kept == 0:
        v.append("no shares were ever published, so there was no last good result to keep")
    if not failed or ok:
        v.append(f"the failing worker's re-solves: {resolves} (expected failed > 0 and no ok)")
    if not failed_lines or any(x.get("shares_version") != kept for x in failed_lines):
        v.append(f"resolve_failed log lines missing or not naming the kept version {kept}")
    if after:
        v.append(f"{len(after)} shares published while every re-solve failed")
    if ph.get("shares_versions_seen") != [kept]:
        v.append(f"the worker's shares_version moved: {ph.get('shares_versions_seen')} (kept {kept})")
    if versions != [kept]:
        v.append(f"placements decided while re-solves failed carry shares versions {versions}, not {kept}")
    if not mine:
        v.append("no placement was decided while the re-solves failed")
    if overruns:
        v.append(f"{len(overruns)} placements overran their region's capacity window")
