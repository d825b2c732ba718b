"""Scenario 1 (and 1c): SIGKILL the worker mid-stream and restart it; nothing acknowledged is lost,
duplicates only for offsets that were not committed at the kill, each identical to the first decision
(``decided_at`` aside); recovery time = kill -> first placement published by the new worker. 1c runs it with
capacity windows that bind (full runs only)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from faults.checker import Acked, Rec, SendLog, check_placements
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
    publish_signals,
    request_items,
    send_paced,
    start_worker,
    stop_workers,
    wait_placed,
)
from streams.settings import consumer_kwargs
from streams.testing import WorkerProc

__all__ = ["kill_restart", "kill_restart_capacity", "tight_topology"]


def kill_restart(ctx: Ctx, *, tight: bool = False) -> Result:
    """Scenario 1: SIGKILL the worker mid-stream and start a new one at once; then SIGKILL that one in
    the middle of its first batch (the backlog), as soon as its first placements reach the broker.
    ``tight``: every region's capacity is 0.5 kW, so that the capacity window binds."""
    res = Result("1", "SIGKILL worker mid-stream, restart")
    if tight:
        res = Result("1c", "SIGKILL + restart, capacity binding")
    extra: dict[str, Any] = {"topology": tight_topology(ctx.logdir)} if tight else {}
    if ctx.quick:  # shorter sessions, so that the dead member leaves the group sooner
        rate, total, first_kill = 300.0, 1800, 2.0
        timing = {"session_timeout_ms": 3000, "heartbeat_interval_ms": 500}
    else:
        rate, total, first_kill = 500.0, 15_000, 6.0
        timing = {}
    s = fresh_settings(ctx.bootstrap, "s1", **timing)
    sig = first_hour_signals()
    workers = [start_worker(s, "s1-a", ctx, **extra)]
    kills: list[dict[str, Any]] = []
    try:
        publish_signals(s, sig)
        workers[0].wait(lambda h: h["signals_version"] >= len(sig))
        log = SendLog()
        started = time.monotonic()

        async def kill(kind: str, health: dict[str, Any] | None) -> None:
            workers[-1].kill()  # SIGKILL
            at = time.time()
            committed = await committed_offsets(s)
            kills.append({"kind": kind, "at": at, "health": health, "committed": committed})
            workers.append(WorkerProc(s, f"s1-{chr(ord('a') + len(kills))}", ctx.logdir, **extra))

        async def killer() -> None:
            while time.monotonic() - started < first_kill or not await batches_of(workers[-1]):
                await asyncio.sleep(0.05)
            await kill("mid-stream", await asyncio.to_thread(workers[-1].health))
            from aiokafka import AIOKafkaConsumer, TopicPartition

            c = AIOKafkaConsumer(**consumer_kwargs(s, group=False))
            await c.start()
            try:
                parts = [TopicPartition(s.topic_placements, p) for p in range(s.request_partitions)]
                seen = sum((await c.end_offsets(parts)).values())
                deadline = time.monotonic() + 90
                while sum((await c.end_offsets(parts)).values()) <= seen and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            finally:
                await c.stop()
            await kill("first batch after restart", None)

        items = request_items(fresh_requests(total, "s1"))
        log_task = send_paced(s, s.topic_requests, items, rate=rate, log=log)
        asyncio.run(gather(log_task, killer()))
        workers[-1].wait(timeout_s=90)
        recs = wait_placed(s, log, timeout_s=120)
        check = check_placements(log.acked, recs)
        fill_result(res, log, check)
        recoveries: list[float | None] = []
        for k, kl in enumerate(kills):
            nxt = kills[k + 1]["at"] if k + 1 < len(kills) else float("inf")
            after = [r.timestamp_ms / 1000 for r in recs if kl["at"] < r.timestamp_ms / 1000 < nxt]
            kl["placements_before"] = sum(1 for r in recs if r.timestamp_ms / 1000 <= kl["at"])
            recoveries.append(round(min(after) - kl["at"], 2) if after else None)
        # the second kill lands on a worker that has just started: its recovery includes no backlog wait
        if recoveries and recoveries[0] is not None:
            res.recovery_s = recoveries[0]
        bad_dups = _dups_at_committed(check.by_id, log.acked, kills)
        res.details["differing_examples"] = {  # every record of a few differing request_ids, for diagnosis
            rid: [
                {
                    "stored_at": r.timestamp_ms / 1000,
                    "partition": r.partition,
                    "offset": r.offset,
                    **{k: p.get(k) for k in ("decided_at", "status", "region", "shares_version", "reason")},
                }
                for r, p in check.by_id[rid]
            ]
            for rid in check.differing_ids[:5]
        }
        res.details.update(
            {
                "rate_per_s": rate,
                "timing": timing or "TANSU_TUNING",
                "kills": [
                    {
                        "kind": kl["kind"],
                        "placements_before": kl["placements_before"],
                        "committed_at_kill": kl["committed"],
                        "recovery_s": r,
                    }
                    for kl, r in zip(kills, recoveries, strict=True)
                ],
                "duplicates_at_committed_offsets": len(bad_dups),
            }
        )
        if len(kills) < 2:
            res.violations.append(f"only {len(kills)} of 2 kills happened")
        if bad_dups:
            res.violations.append(f"{len(bad_dups)} duplicates for offsets committed before the kill")
        # a kill after which nothing was left to place (the restarted worker had published and committed
        # every request before the kill landed) has nothing to recover from
        first_at = [min(r.timestamp_ms for r, _ in rows) / 1000 for rows in check.by_id.values()]
        pending = [sum(1 for t in first_at if t <= kl["at"]) < len(log.acked) for kl in kills]
        if any(r is None and left for r, left in zip(recoveries, pending, strict=True)):
            res.violations.append("no placement after a kill while requests were left to place")
    finally:
        stop_workers(workers, res)
    return res


def kill_restart_capacity(ctx: Ctx) -> Result:
    """Scenario 1c: scenario 1 with a topology whose capacity windows bind (full runs only)."""
    return kill_restart(ctx, tight=True)


def tight_topology(logdir: Path) -> Path:
    """The bundled topology with 0.5 kW per region and a 1 s re-solve, as a JSON file."""
    from router.topology import load_topology

    topo = load_topology()
    tight = topo.model_copy(
        update={
            "objective": topo.objective.model_copy(update={"resolve_interval_s": 1.0}),
            "regions": tuple(r.model_copy(update={"capacity_kw": 0.5}) for r in topo.regions),
        }
    )
    path = logdir / "tight-topology.json"
    path.write_bytes(orjson.dumps(tight.model_dump()))
    return path


def _dups_at_committed(
    by_id: dict[str, list[tuple[Rec, dict[str, Any]]]],
    acked: dict[str, list[Acked]],
    kills: Sequence[dict[str, Any]],
) -> list[str]:
    """Duplicated request_ids that no kill explains: at every kill after their first placement, their
    offset was already committed (so the restart must not have fetched them again)."""
    bad = []
    for rid, rows in by_id.items():
        if len(rows) < 2 or rid not in acked:
            continue
        first = rows[0][0].timestamp_ms / 1000
        a = acked[rid][0]
        if not any(k["at"] >= first and a.offset >= k["committed"].get(a.partition, -1) for k in kills):
            bad.append(rid)
    return bad
