"""Scenarios 2 and 3: workers join, leave and stall under load.

2. ``scale``: under load a second worker joins, takes half the partitions and places requests, then leaves
   (SIGTERM); nothing lost, the first worker takes every partition back, lag (committed vs. end) back to 0.
3. ``stall``: of two workers under load, one is SIGSTOPped for longer than the session timeout and the max
   poll interval, right after a burst (so that it is most likely mid-batch), then SIGCONTed; its partitions
   move, nothing is lost, lag back to 0, and no placement it publishes after waking may differ from the one
   its successor already published.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

from faults.checker import Rec, SendLog, check_placements, same_decision
from faults.scenarios.common import (
    Ctx,
    Result,
    batches_of,
    committed_offsets,
    fill_result,
    first_hour_signals,
    fresh_requests,
    fresh_settings,
    gather,
    partitions_of,
    publish_signals,
    request_items,
    send_paced,
    send_until,
    start_worker,
    stop_workers,
    wait_placed,
)
from streams.settings import Settings, consumer_kwargs
from streams.testing import WorkerProc

__all__ = [
    "check_lag",
    "request_end_offsets",
    "scale_out_in",
    "stall_past_poll_interval",
    "wait_committed_to_end",
]


async def request_end_offsets(settings: Settings) -> dict[int, int]:
    """The end offset of every partition of the requests topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(**consumer_kwargs(settings, group=False))
    await c.start()
    try:
        parts = [TopicPartition(settings.topic_requests, p) for p in range(settings.request_partitions)]
        return {tp.partition: int(off) for tp, off in (await c.end_offsets(parts)).items()}
    finally:
        await c.stop()


def wait_committed_to_end(settings: Settings, log: SendLog, timeout_s: float) -> dict[str, Any]:
    """Wait until the group has committed every partition of the requests topic up to its end (lag 0
    everywhere); returns the last committed and end offsets and whether they met. The end is the highest
    acknowledged offset + 1 (only the load generator writes the topic): tansu's ListOffsets(latest) answers
    the last batch's base offset + 1, not the high watermark, so ``end_offsets`` would be too low."""
    acked_end: dict[int, int] = {}
    for acks in log.acked.values():
        for a in acks:
            acked_end[a.partition] = max(acked_end.get(a.partition, 0), a.offset + 1)

    async def run() -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            listed = await request_end_offsets(settings)
            ends = {p: max(listed.get(p, 0), acked_end.get(p, 0)) for p in range(settings.request_partitions)}
            committed = await committed_offsets(settings)
            lag = {p: ends[p] - max(0, committed.get(p, -1)) for p in ends}
            if all(v == 0 for v in lag.values()) or time.monotonic() > deadline:
                return {
                    "end": ends,
                    "listed_end_offsets": listed,
                    "committed": committed,
                    "lag": lag,
                    "caught_up": not any(lag.values()),
                }
            await asyncio.sleep(0.5)

    return asyncio.run(run())


def check_lag(res: Result, s: Settings, log: SendLog, timeout_s: float = 60.0) -> None:
    got = wait_committed_to_end(s, log, timeout_s)
    res.details["offsets_at_end"] = got
    if not got["caught_up"]:
        res.violations.append(f"lag did not return to 0 within {timeout_s:.0f} s: {got['lag']}")
    unconsumed = [p for p, c in got["committed"].items() if got["end"][p] > 0 and c < 0]
    if unconsumed:
        res.violations.append(f"partitions {unconsumed} were never consumed")


def scale_out_in(ctx: Ctx) -> Result:
    """Scenario 2: under load, a second worker joins the group, takes partitions and places requests, then
    leaves (SIGTERM); nothing lost, every partition consumed, lag back to 0."""
    res = Result("2", "scale 1 -> 2 -> 1 workers under load")
    rate, hold_s, tail_s = (300.0, 8.0, 6.0) if ctx.quick else (400.0, 15.0, 10.0)
    s = fresh_settings(ctx.bootstrap, "s2")
    sig = first_hour_signals()
    workers = [start_worker(s, "s2-a", ctx)]
    phases: dict[str, Any] = {}
    try:
        publish_signals(s, sig)
        workers[0].wait(lambda h: h["signals_version"] >= len(sig))
        log = SendLog()
        done = asyncio.Event()

        async def scaler() -> None:
            a = workers[0]
            await asyncio.sleep(2.0)
            started = time.monotonic()
            b = WorkerProc(s, "s2-b", ctx.logdir)
            workers.append(b)
            deadline = started + 90
            while time.monotonic() < deadline:  # b holds partitions and has placed something
                pb = await partitions_of(b)
                if pb and await batches_of(b):
                    break
                await asyncio.sleep(0.2)
            phases["b_joined_after_s"] = round(time.monotonic() - started, 1)
            await asyncio.sleep(hold_s)
            phases["two_workers"] = {"a": await partitions_of(a), "b": await partitions_of(b)}
            phases["b_batches"] = await batches_of(b)
            left = time.monotonic()
            phases["b_exit"] = await asyncio.to_thread(b.stop, 30.0)
            while time.monotonic() < left + 60:  # a takes every partition back
                if (await partitions_of(a) or 0) >= s.request_partitions:
                    break
                await asyncio.sleep(0.2)
            phases["a_all_partitions_after_s"] = round(time.monotonic() - left, 1)
            phases["one_worker"] = {"a": await partitions_of(a)}
            await asyncio.sleep(tail_s)
            done.set()

        async def load() -> None:
            items = request_items(fresh_requests(int(rate) * 180, "s2"))
            await send_until(s, s.topic_requests, items, done, rate=rate, log=log)

        asyncio.run(gather(load(), scaler()))
        recs = wait_placed(s, log, timeout_s=120)
        check = check_placements(log.acked, recs)
        fill_result(res, log, check)
        res.recovery_s = phases.get("a_all_partitions_after_s")
        res.details.update({"rate_per_s": rate, "phases": phases})
        two = phases.get("two_workers", {})
        if not two.get("b") or not phases.get("b_batches"):
            res.violations.append(f"the second worker never held partitions or placed requests ({phases})")
        if (phases.get("one_worker", {}).get("a") or 0) < s.request_partitions:
            res.violations.append(f"after scale-in the first worker does not hold every partition ({phases})")
        check_lag(res, s, log)
    finally:
        stop_workers(workers, res)
    return res


def _copies_by_moment(
    by_id: dict[str, list[tuple[Rec, dict[str, Any]]]], phases: dict[str, Any]
) -> dict[str, int]:
    """Placement records beyond the first per request_id, by when the broker stored them: during the
    stall, or after the stalled worker woke (its stale batch), and how many of those differ."""
    stopped, woke = phases.get("stopped_at", float("inf")), phases.get("woke_at", float("inf"))
    out = {"before_stall": 0, "during_stall": 0, "after_wake": 0, "after_wake_differing": 0}
    for rows in by_id.values():
        first = rows[0][1]
        for rec, p in rows[1:]:
            t = rec.timestamp_ms / 1000
            key = "before_stall" if t < stopped else "during_stall" if t < woke else "after_wake"
            out[key] += 1
            if key == "after_wake" and same_decision(first, p):
                out["after_wake_differing"] += 1
    return out


def stall_past_poll_interval(ctx: Ctx) -> Result:
    """Scenario 3: of two workers under load, one is SIGSTOPped for longer than the session timeout and the
    max poll interval, then SIGCONTed; its partitions move to the other, nothing is lost, the stalled worker
    rejoins (or at least does not lose anything when it wakes with a stale batch)."""
    res = Result("3", "worker stalls past max poll interval")
    timing = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 500, "max_poll_interval_ms": 5000}
    rate, stall_s, burst_n = (300.0, 10.0, 1000) if ctx.quick else (400.0, 15.0, 3000)
    s = fresh_settings(ctx.bootstrap, "s3", **timing)
    sig = first_hour_signals()
    a = start_worker(s, "s3-a", ctx)
    workers = [a]
    phases: dict[str, Any] = {}
    try:
        publish_signals(s, sig)
        a.wait(lambda h: h["signals_version"] >= len(sig))
        b = start_worker(s, "s3-b", ctx)
        workers.append(b)
        b.wait(lambda h: h["signals_version"] >= len(sig))
        log = SendLog()
        done = asyncio.Event()

        async def staller() -> None:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:  # both workers hold partitions and have placed requests
                if (await partitions_of(a) or 0) and (await partitions_of(b) or 0) and await batches_of(b):
                    break
                await asyncio.sleep(0.2)
            phases["before"] = {"a": await partitions_of(a), "b": await partitions_of(b)}
            phases["a_batches_before"] = await batches_of(a)
            # a burst, so that the worker is most likely in the middle of a large batch when it stops
            burst = request_items(fresh_requests(burst_n, "s3burst"))
            await send_paced(s, s.topic_requests, burst, rate=1e6, log=log)
            await asyncio.sleep(0.03)
            a.proc.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            phases["stopped_at"] = time.time()
            moved = None
            while time.monotonic() < stopped + stall_s:
                if moved is None and (await partitions_of(b) or 0) >= s.request_partitions:
                    moved = round(time.monotonic() - stopped, 2)
                await asyncio.sleep(0.2)
            phases["b_all_partitions_after_s"] = moved
            phases["during"] = {"b": await partitions_of(b)}
            a.proc.send_signal(signal.SIGCONT)
            phases["woke_at"] = time.time()
            woke = time.monotonic()
            while time.monotonic() < woke + 30 and a.proc.poll() is None:  # a commits batches again
                if await batches_of(a) > phases["a_batches_before"]:
                    break
                await asyncio.sleep(0.2)
            phases["a_resumed_after_s"] = round(time.monotonic() - woke, 1)
            phases["a_batches_after"] = await batches_of(a)
            await asyncio.sleep(3.0)
            done.set()

        async def load() -> None:
            items = request_items(fresh_requests(int(rate) * 180, "s3"))
            await send_until(s, s.topic_requests, items, done, rate=rate, log=log)

        asyncio.run(gather(load(), staller()))
        recs = wait_placed(s, log, timeout_s=120)
        check = check_placements(log.acked, recs)
        fill_result(res, log, check)
        res.recovery_s = phases.get("b_all_partitions_after_s")
        res.details.update({"rate_per_s": rate, "timing": timing, "stall_s": stall_s, "phases": phases})
        res.details["copies_by_moment"] = _copies_by_moment(check.by_id, phases)
        if phases.get("b_all_partitions_after_s") is None:
            res.violations.append(f"the stalled worker's partitions did not move within {stall_s:.0f} s")
        if a.proc.poll() is not None:
            res.violations.append(f"the stalled worker exited after SIGCONT (status {a.proc.returncode})")
        copies = res.details["copies_by_moment"]
        if copies["after_wake_differing"]:
            res.violations.append(
                f"{copies['after_wake_differing']} placements published by the stalled worker after it woke "
                "differ from the decisions its successor had already published (a zombie batch)"
            )
        check_lag(res, s, log)
    finally:
        for w in workers:  # never leave a stopped process behind
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGCONT)
        stop_workers(workers, res)
    return res
