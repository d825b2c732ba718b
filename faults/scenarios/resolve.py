"""Scenario 7: the leader's capacity re-solve fails (over its time limit) under load.

The LP has an unserved-demand slack, so it is never infeasible; what fails in practice is the time limit.
The workers run a topology whose capacities bind (so that the leader re-solves every second) and requests
whose event times advance with the wall clock. A worker with the default time limit leads, re-solves and
publishes signed shares; a worker with ``resolve_time_limit_s`` = 1e-6 s joins (and installs the leader's
shares under the new term), then the good leader leaves (SIGTERM) and the failing worker leads, whose every
re-solve stops at the time limit. Quick and full forms differ in rate and hold time only: shares are signed
by the request group's terms (streams/leadership.py), so no form can inject them from outside.

Checked while the failing worker leads: its re-solves fail (``carbon_router_resolves_total{outcome=
"failed"}`` > 0, none ok, ``resolve_failed`` in its log naming the shares version in use); what it
publishes on ``router.shares`` is only the hand-over republish of the last good duals, signed in its own
term; the duals in use stay the last good ones (``/healthz`` and every placement's ``shares_version`` name a
message with those duals); the capacity guard holds: replaying its placements in decision order through the
capacity windows (``faults.checker.capacity_overruns``), no region's placed energy ever exceeds its window;
nothing acknowledged is lost.
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
from streams.testing import WorkerProc

__all__ = ["CAPACITY_SCALE", "FAILING_TIME_LIMIT_S", "resolve_fails", "scarce_topology"]

#: A HiGHS time limit no simplex run fits in (see router.resolve: any run that iterates stops).
FAILING_TIME_LIMIT_S = 1e-6
#: The bundled capacities times this: the windows bind at a few hundred requests per second.
CAPACITY_SCALE = 0.02


def scarce_topology(logdir: Path) -> tuple[Topology, Path]:
    """The bundled topology with capacities scaled by CAPACITY_SCALE and a 1 s re-solve, as a JSON file."""
    topo = load_topology()
    scarce = topo.model_copy(
        update={
            "objective": topo.objective.model_copy(update={"resolve_interval_s": 1.0}),
            "regions": tuple(
                r.model_copy(
                    update={"capacity_kw": None if r.capacity_kw is None else r.capacity_kw * CAPACITY_SCALE}
                )
                for r in topo.regions
            ),
        }
    )
    path = logdir / "scarce-topology.json"
    path.write_bytes(orjson.dumps(scarce.model_dump()))
    return scarce, path


def _paced_requests(n: int, tag: str, rate: float) -> list[dict[str, Any]]:
    """Sample requests whose event times advance at ``rate`` per second from the timeline's second hour."""
    return [dict(r, ts=T0 + 3600 + k / rate) for k, r in enumerate(fresh_requests(n, tag))]


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
        workers.append(start_worker(s, "s7-solver", ctx, topology=path))
        publish_signals(s, sig)
        workers[0].wait(lambda h: h["signals_version"] >= len(sig))
        done = asyncio.Event()

        async def load() -> None:
            k, step = 0, int(rate / 2)
            while not done.is_set() and k < len(reqs):
                chunk = reqs[k : k + step]
                k += len(chunk)
                await send_paced(s, s.topic_requests, chunk, rate=rate, log=log)

        async def handover() -> None:
            await asyncio.to_thread(workers[0].wait, lambda h: h["shares_version"] > 0, 90.0)
            w = WorkerProc(
                s, "s7-failing", ctx.logdir, topology=path, resolve_time_limit_s=FAILING_TIME_LIMIT_S
            )
            workers.append(w)
            # both in one term, the good leader's shares of that term installed by the failing worker
            await asyncio.to_thread(w.wait, lambda h: h["shares_version"] > 0 and h["batches"] > 0, 90.0)
            ph["solver_resolves"] = await asyncio.to_thread(
                metric_values, workers[0], "carbon_router_resolves_total"
            )
            ph["solver_exit"] = await asyncio.to_thread(workers[0].stop, 30.0)
            ph["failing_from"] = time.time()
            await asyncio.to_thread(w.wait, lambda h: h["partitions"] == s.request_partitions, 60.0)
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
    before = [m for m in shares if float(m["ts"]) < ph["failing_from"]]
    after = [m for m in shares if float(m["ts"]) >= ph["failing_from"]]
    kept_mu = before[-1]["mu_usd_per_wh"] if before else None
    same = {int(m["version"]) for m in shares if m["mu_usd_per_wh"] == kept_mu}
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
    # a region without a limit (capacity_kw None) cannot overrun: the replay skips regions it is not given
    cap_wh = {r.id: r.capacity_kw * window_s / 3.6 for r in topo.regions if r.capacity_kw is not None}
    overruns, peak = capacity_overruns(mine, cap_wh, window_s)
    res.details.update(
        {
            "phases": ph,
            "versions_with_the_last_good_duals": sorted(same),
            "shares_published_while_failing": [(m["leader"], m["version"]) for m in after],
            "placement_shares_versions": versions,
            "placements_checked_for_capacity": len(mine),
            "capacity_limited": sum(1 for p in mine if p.get("removed", {}).get("capacity", 0) > 0),
            "peak_window_use": peak,
            "capacity_overruns": overruns[:10],
            "failing_resolves": resolves,
            "resolve_failed_log": failed_lines[:2],
        }
    )
    v = res.violations
    if kept_mu is None:
        v.append("no shares were published before the hand-over, so there was no last good result to keep")
    if not failed or ok:
        v.append(f"the failing worker's re-solves: {resolves} (expected failed > 0 and no ok)")
    if not failed_lines or any(x.get("shares_version") not in same for x in failed_lines):
        v.append(f"resolve_failed log lines missing or naming a version without the last good duals {same}")
    if any(m["mu_usd_per_wh"] != kept_mu or m["leader"] != w.worker_id for m in after):
        v.append(f"shares other than the hand-over republish published while every re-solve failed: {after}")
    if len(after) > 1:
        v.append(f"{len(after)} republishes after one hand-over (expected at most 1)")
    if not set(ph.get("shares_versions_seen", [])) <= same or not set(versions) <= same:
        v.append(
            "the failing worker used duals other than the last good ones: health "
            f"{ph.get('shares_versions_seen')}, placements {versions} (with those duals: {sorted(same)})"
        )
    if not mine:
        v.append("no placement was decided while the re-solves failed")
    if overruns:
        v.append(f"{len(overruns)} placements overran their region's capacity window")
