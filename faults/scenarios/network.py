"""Scenario 5: network faults between the worker and the broker, through a loopback TCP proxy.

The scenario runs its own tansu behind a ``FaultProxy`` that tansu advertises, so every connection of the
worker (and of the load generator and the checker: Kafka clients go wherever metadata points) crosses it.
Under steady load: ``latency_s`` one-way added delay for a while, then every open connection dropped
``drops`` times, then a 10 s blackhole (connections accepted, nothing forwarded), then a clean tail.

Checked: nothing acknowledged is lost; every duplicate placement is identical to the first decision for its
request_id (``decided_at`` aside) and no request_id has more copies than there were faults; the worker
reports the blackhole (``carbon_router_broker_up`` 0, ``broker_unreachable`` in its log) and is alive at
the end. Recovery = end of the blackhole -> every request acknowledged in it (or in the 2 s after it)
has a placement (the first placement after it is in the details).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from faults.checker import Rec, SendLog, check_placements
from faults.proxy import FaultProxy, ProxiedBroker
from faults.scenarios.common import (
    Ctx,
    Result,
    batches_of,
    fill_result,
    first_hour_signals,
    fresh_requests,
    fresh_settings,
    gather,
    metric_values,
    publish_signals,
    request_items,
    send_until,
    start_worker,
    stop_workers,
    wait_placed,
)
from streams.testing import WorkerProc

__all__ = ["BLACKHOLE_S", "network_faults"]

#: How long the proxy forwards nothing.
BLACKHOLE_S = 10.0


def network_faults(ctx: Ctx) -> Result:
    """Scenario 5: added latency, dropped connections and a 10 s blackhole between worker and broker."""
    res = Result("5", "network: latency, drops, 10 s blackhole")
    rate, latency_s, latency_for_s, drops, tail_s = (
        (200.0, 0.1, 4.0, 2, 6.0) if ctx.quick else (300.0, 0.2, 8.0, 3, 10.0)
    )
    proxy = FaultProxy(upstream_port=1).start()
    broker = ProxiedBroker(proxy)
    broker.start()
    s = fresh_settings(proxy.address, "s5")
    sig = first_hour_signals()
    workers: list[WorkerProc] = []
    ph: dict[str, Any] = {"latency_s": latency_s, "latency_for_s": latency_for_s, "drops": drops}
    log = SendLog()
    try:
        w = start_worker(s, "s5", ctx)
        workers.append(w)
        publish_signals(s, sig)
        w.wait(lambda h: h["signals_version"] >= len(sig))
        done = asyncio.Event()

        items = request_items(fresh_requests(int(rate) * 180, "s5"))

        async def load() -> None:
            await send_until(s, s.topic_requests, items, done, rate=rate, log=log, chunk_s=0.5)

        async def watch_up(stop: asyncio.Event, into: list[float]) -> None:
            while not stop.is_set():
                got = await asyncio.to_thread(metric_values, w, "carbon_router_broker_up")
                into.extend((got or {}).values())
                await asyncio.sleep(0.5)

        async def faults() -> None:
            started = time.monotonic()
            while time.monotonic() - started < 3.0 or not await batches_of(w):
                await asyncio.sleep(0.1)
            ph["latency_from"] = time.time()
            proxy.latency_s = latency_s
            await asyncio.sleep(latency_for_s)
            proxy.latency_s = 0.0
            ph["dropped_connections"] = []
            for _ in range(drops):
                ph["dropped_connections"].append(await asyncio.to_thread(proxy.drop))
                await asyncio.sleep(2.0)
            up: list[float] = []
            stop = asyncio.Event()
            watcher = asyncio.ensure_future(watch_up(stop, up))
            ph["blackhole_from"] = time.time()
            proxy.hold()
            await asyncio.sleep(BLACKHOLE_S)
            proxy.release()
            ph["blackhole_to"] = time.time()
            stop.set()
            await watcher
            ph["broker_up_during_blackhole"] = sorted(set(up))
            await asyncio.sleep(tail_s)
            done.set()

        asyncio.run(gather(load(), faults()))
        recs = wait_placed(s, log, timeout_s=120, worker=w)
        check = check_placements(log.acked, recs)
        fill_result(res, log, check)
        # a request the broker stored but whose ack the proxy dropped is placed without being acknowledged
        sent = {rid for _, _, rid in items}
        unacked = [rid for rid in check.by_id if rid not in log.acked]
        res.details["placed_without_ack"] = len(unacked)
        if unacked and all(rid in sent for rid in unacked):
            res.violations = [x for x in res.violations if "never acknowledged" not in x]
        _check(res, w, log, check.by_id, ph, faults=drops + 2)
    finally:
        stop_workers(workers, res)
        broker.stop()
        proxy.stop()
    return res


def _check(
    res: Result,
    w: WorkerProc,
    log: SendLog,
    by_id: dict[str, list[tuple[Rec, dict[str, Any]]]],
    ph: dict[str, Any],
    faults: int,
) -> None:
    released, held = ph["blackhole_to"], ph["blackhole_from"]
    stamps = sorted(r.timestamp_ms / 1000 for rows in by_id.values() for r, _ in rows)
    after = [t for t in stamps if t > released]
    ph["first_placement_after_s"] = round(after[0] - released, 3) if after else None
    backlog = [  # requests acknowledged in the blackhole or in the 2 s after it
        rows[0][0].timestamp_ms / 1000
        for rid, rows in by_id.items()
        if rid in log.acked and held <= log.acked[rid][0].at <= released + 2.0
    ]
    ph["placements_during_blackhole"] = sum(1 for t in stamps if held < t <= released)
    ph["backlog_requests"] = len(backlog)
    ph["backlog_placed_after_s"] = res.recovery_s = round(max(backlog) - released, 2) if backlog else None
    copies = max((len(rows) for rows in by_id.values()), default=0)
    text = w.log.read_text(errors="replace")
    events = {
        e: text.count(f'"event":"{e}"')
        for e in (
            "broker_unreachable",
            "broker_reachable",
            "fetch_failed",
            "publish_failed",
            "batch_dropped_stale",
        )
    }
    up_end = metric_values(w, "carbon_router_broker_up")
    res.details.update(
        {
            "phases": ph,
            "max_copies_per_request": copies,
            "faults_injected": faults,
            "worker_log_events": events,
            "broker_errors": metric_values(w, "carbon_router_broker_errors_total"),
            "broker_up_at_end": up_end,
        }
    )
    v = res.violations
    if copies > faults + 1:
        v.append(f"a request_id has {copies} placement records for {faults} faults")
    if 0.0 not in ph.get("broker_up_during_blackhole", []):
        v.append(
            f"carbon_router_broker_up never showed 0 in the blackhole ({ph['broker_up_during_blackhole']})"
        )
    if not events["broker_unreachable"]:
        v.append("the worker log does not report the blackhole (no broker_unreachable)")
    if up_end != {"": 1.0}:
        v.append(f"carbon_router_broker_up is {up_end} at the end, expected 1")
    if w.proc.poll() is not None:
        v.append(f"the worker exited (status {w.proc.returncode})")
