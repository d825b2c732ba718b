"""Fault scenarios 1, 2, 3, 6, 8 and 9 of issue 5, each bounded in time and on loopback only.

Every scenario gets its own topic set on the shared embedded broker, runs real ``carbon-router worker``
child processes (``tests.integration.harness.WorkerProc``), publishes the bundled grid signals first and
waits until the worker's ``/healthz`` shows them applied, then sends the bundled sample requests under fresh
request ids with a paced load generator that records every acknowledged request (partition, offset). The
checker (``faults.checker``) then reads ``placements`` from offset 0 and compares.

1. ``kill``: SIGKILL the worker mid-stream, start a new one at once; nothing acknowledged is lost,
   duplicates only for offsets that were not committed at the kill, each identical to the first decision
   (``decided_at`` aside); recovery time = kill -> first placement published by the new worker.
2. ``scale``: under load a second worker joins, takes half the partitions and places requests, then leaves
   (SIGTERM); nothing lost, the first worker takes every partition back, lag (committed vs. end) back to 0.
3. ``stall``: of two workers under load, one is SIGSTOPped for longer than the session timeout and the max
   poll interval, right after a burst (so that it is most likely mid-batch), then SIGCONTed; its partitions
   move, nothing is lost, lag back to 0, and no placement it publishes after waking may differ from the one
   its successor already published.
6. ``stale``: signals stop for longer than their validity, then arrive late and out of order; a region other
   than the home region is a target only while its signal is fresh, a late signal never overwrites a newer
   one, every placed request records ``signal_age_s``.
8. ``twice``: 5% of requests are sent twice; one distinct effective placement per request_id.
9. ``garbage``: poison and oversized messages and a flood of garbage at 10x the valid rate; every garbage
   record is dead-lettered, every valid request placed, the worker's RSS stays bounded.
1c. scenario 1 with capacity windows that bind (full runs only): a redelivered request is decided again
   from a different capacity state, so the checker may see differing decisions; it reports them.
9p. ``overflow``: schema-valid requests whose ``energy_wh`` overflows the kernel's integer energy column
   (1e12, 1e300 Wh) between valid requests: dead-lettered, the others placed, the worker alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from faults.checker import Acked, Rec, SendLog, check_placements, read_topic, same_decision
from router.commands import bundled
from streams.settings import Settings, consumer_kwargs, embedded_settings, producer_kwargs
from streams.topics import TOPIC_KEYS
from tests.integration.harness import WorkerProc, produce

__all__ = ["QUICK", "SCENARIOS", "Ctx", "Result", "fresh_settings", "run_scenario"]

#: The first instant of the bundled timeline; requests come from the quarter hour after its first hour.
T0 = 1776038400.0
Item = tuple[bytes | None, bytes | None, str | None]  # key, value, request_id (None: garbage)


@dataclass(frozen=True, slots=True)
class Ctx:
    """What every scenario gets: the broker address, a directory for worker logs, quick or full sizes."""

    bootstrap: str
    logdir: Path
    quick: bool = False


@dataclass(slots=True)
class Result:
    """One scenario's outcome: the table's columns, the invariants that failed, and the details."""

    number: str
    name: str
    sent: int = 0
    acked: int = 0
    placed: int = 0
    lost: int = 0
    duplicates: int = 0
    recovery_s: float | None = None
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every invariant held."""
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict of the result."""
        return {
            "scenario": self.number,
            "name": self.name,
            "ok": self.ok,
            "sent": self.sent,
            "acknowledged": self.acked,
            "placed": self.placed,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "recovery_s": self.recovery_s,
            "seconds": round(self.seconds, 1),
            "violations": self.violations,
            "details": self.details,
        }


# -- data ------------------------------------------------------------------------------------------------
def _lines(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in bundled(name).read_bytes().splitlines() if x.strip()]


def first_hour_signals() -> list[dict[str, Any]]:
    """The bundled real signals of the timeline's first hour, in ts order."""
    return sorted((s for s in _lines("sample_signals.jsonl") if s["ts"] <= T0 + 3600), key=lambda s: s["ts"])


def fresh_requests(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` bundled sample requests of the quarter hour after the first hour, cycled, with fresh ids."""
    base = [r for r in _lines("sample_requests.jsonl") if T0 + 3600 < r["ts"] <= T0 + 4500]
    return [
        {**base[k % len(base)], "request_id": f"{base[k % len(base)]['request_id']}-{tag}{k // len(base)}"}
        for k in range(n)
    ]


def request_items(reqs: Sequence[dict[str, Any]]) -> list[Item]:
    """Requests as (key, value, request_id) items keyed by request_id."""
    return [(r["request_id"].encode(), orjson.dumps(r), r["request_id"]) for r in reqs]


def fresh_settings(bootstrap: str, tag: str, **overrides: Any) -> Settings:
    """Settings with tansu's timings and a topic set and group nobody else uses."""
    prefix = f"f{tag}{uuid.uuid4().hex[:10]}."
    defaults = Settings.model_fields
    topics = {f"topic_{k}": prefix + str(defaults[f"topic_{k}"].default) for k in TOPIC_KEYS}
    return embedded_settings(bootstrap, group_id=f"{prefix}group", **topics, **overrides)


# -- load generator --------------------------------------------------------------------------------------
async def send_paced(
    settings: Settings,
    topic: str,
    items: Sequence[Item],
    *,
    rate: float,
    log: SendLog,
    tick_s: float = 0.2,
    on_tick: Callable[[int, float], Awaitable[None]] | None = None,
) -> None:
    """Send ``items`` open-loop at ``rate`` per second in ticks (large produce batches) and record every
    acknowledged request in ``log``; ``on_tick(sent, elapsed_s)`` runs after each tick."""
    from aiokafka import AIOKafkaProducer

    kw = {**producer_kwargs(settings), "linger_ms": 20, "max_batch_size": 512 * 1024}
    producer = AIOKafkaProducer(**kw)
    await producer.start()
    pending: list[Awaitable[Any]] = []

    def record(rid: str | None) -> Callable[[asyncio.Future[Any]], None]:
        def done(fut: asyncio.Future[Any]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                log.fail(None if fut.cancelled() else fut.exception())
            elif rid is None:
                log.garbage_acked += 1
            else:
                md = fut.result()
                log.acked.setdefault(rid, []).append(Acked(md.partition, md.offset, time.time()))

        return done

    try:
        start = time.monotonic()
        k = 0
        while k < len(items):
            due = min(len(items), int((time.monotonic() - start) * rate) + 1)
            while k < due:
                key, value, rid = items[k]
                k += 1
                if rid is None:
                    log.garbage_sent += 1
                else:
                    log.sent += 1
                try:
                    fut = await producer.send(topic, key=key, value=value)
                except Exception as exc:
                    log.fail(exc)
                    continue
                fut.add_done_callback(record(rid))
                pending.append(fut)
            if on_tick is not None:
                await on_tick(k, time.monotonic() - start)
            if k < len(items):
                await asyncio.sleep(tick_s)
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await producer.stop()


def send(settings: Settings, items: Sequence[Item], *, rate: float, log: SendLog | None = None) -> SendLog:
    """``send_paced`` to the requests topic, from synchronous code."""
    log = log if log is not None else SendLog()
    asyncio.run(send_paced(settings, settings.topic_requests, items, rate=rate, log=log))
    return log


# -- helpers ---------------------------------------------------------------------------------------------
def start_worker(settings: Settings, worker_id: str, ctx: Ctx, **overrides: Any) -> WorkerProc:
    """A worker child process that answers /healthz."""
    w = WorkerProc(settings, worker_id, ctx.logdir, **overrides)
    w.wait(timeout_s=90)
    return w


def publish_signals(settings: Settings, signals: Sequence[dict[str, Any]]) -> None:
    """Publish signals keyed by region and wait for every ack."""
    produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in signals])


def wait_placed(
    settings: Settings, log: SendLog, timeout_s: float, worker: WorkerProc | None = None
) -> list[Rec]:
    """``placements`` from offset 0, once every acknowledged request_id has one (or at the timeout, or
    once ``worker`` has exited)."""
    want = set(log.acked)
    seen: set[str] = set()
    counted = [0]

    def done(recs: list[Rec]) -> bool:
        for r in recs[counted[0] :]:
            seen.add(str(r.json().get("request_id")))
        counted[0] = len(recs)
        return want <= seen or (worker is not None and worker.proc.poll() is not None)

    return read_topic(settings, settings.topic_placements, done=done, timeout_s=timeout_s)


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def committed_offsets(settings: Settings) -> dict[int, int]:
    """The group's committed offsets of the requests topic, by partition (-1: none), read with a consumer
    of the group that never joins it (aiokafka's admin OffsetFetch cannot parse tansu's answer)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(**consumer_kwargs(settings))
    await c.start()
    try:
        out: dict[int, int] = {}
        for p in range(settings.request_partitions):
            got = await c.committed(TopicPartition(settings.topic_requests, p))
            out[p] = -1 if got is None else int(got)
        return out
    finally:
        await c.stop()


def _stop(workers: Sequence[WorkerProc], res: Result) -> None:
    codes: dict[str, int | str] = {}
    for w in workers:
        if w.proc.poll() is not None:
            codes[w.worker_id] = w.proc.returncode
            continue
        try:
            codes[w.worker_id] = w.stop(timeout_s=30)
        except Exception as exc:
            w.kill()
            codes[w.worker_id] = f"killed after {type(exc).__name__}"
    res.details["exit_codes"] = codes


def _fill(res: Result, log: SendLog, check: Any) -> None:
    res.sent = log.sent + log.garbage_sent
    res.acked = log.acked_count
    res.placed = check.placed
    res.lost = check.lost
    res.duplicates = check.duplicates
    res.details["check"] = check.summary()
    res.details["send_failures"] = log.failed
    res.details["send_errors"] = log.errors
    if check.lost:
        res.violations.append(f"{check.lost} acknowledged requests have no placement")
    if check.unknown:
        res.violations.append(f"{check.unknown} placements for request_ids that were never acknowledged")
    if check.differing:
        res.violations.append(
            f"{check.differing} request_ids got differing decisions (fields {check.differing_fields})"
        )


# -- scenario 1: SIGKILL mid-stream, restart ---------------------------------------------------------------
def kill_restart(ctx: Ctx, *, tight: bool = False) -> Result:
    """Scenario 1: SIGKILL the worker mid-stream and start a new one at once; then SIGKILL that one in
    the middle of its first batch (the backlog), as soon as its first placements reach the broker.
    ``tight``: every region's capacity is 0.5 kW, so that the capacity window binds."""
    res = Result("1", "SIGKILL worker mid-stream, restart")
    if tight:
        res = Result("1c", "SIGKILL + restart, capacity binding")
    extra: dict[str, Any] = {"topology": _tight_topology(ctx.logdir)} if tight else {}
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
            while time.monotonic() - started < first_kill or not await _batches(workers[-1]):
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
        asyncio.run(_gather(log_task, killer()))
        workers[-1].wait(timeout_s=90)
        recs = wait_placed(s, log, timeout_s=120)
        check = check_placements(log.acked, recs)
        _fill(res, log, check)
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
        if None in recoveries:
            res.violations.append("no placement after a kill")
    finally:
        _stop(workers, res)
    return res


def kill_restart_capacity(ctx: Ctx) -> Result:
    """Scenario 1c: scenario 1 with a topology whose capacity windows bind (full runs only)."""
    return kill_restart(ctx, tight=True)


def _tight_topology(logdir: Path) -> Path:
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


async def _gather(*aws: Awaitable[Any]) -> None:
    await asyncio.gather(*aws)


async def _batches(w: WorkerProc) -> int:
    """The batches a worker has committed (0 while it does not answer)."""
    try:
        return int((await asyncio.to_thread(w.health))["batches"])
    except OSError:
        return 0


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


# -- scenario 6: stale, late and out-of-order signals --------------------------------------------------------
def _stale_signals() -> tuple[list[str], dict[str, dict[str, Any]]]:
    """One representative bundled signal per region (its values, without ts/valid_for_s/source)."""
    per: dict[str, dict[str, Any]] = {}
    for sig in _lines("sample_signals.jsonl"):
        body = {k: v for k, v in sig.items() if k not in ("ts", "valid_for_s", "source")}
        per.setdefault(sig["region"], {}).update(body)
    return sorted(per), per


def stale_signals(ctx: Ctx) -> Result:
    """Scenario 6: signals stop for longer than their validity, then arrive late and out of order."""
    res = Result("6", "grid signals stale, then late/out of order")
    n = 150 if ctx.quick else 600
    valid = 600.0
    ta = T0 + 3600
    t2 = ta + valid + 700  # the new signal after the gap
    late_ts = (ta + valid + 100, ta + valid + 300)  # older than t2, published after it
    regions, body = _stale_signals()

    def sig(region: str, ts: float, **extra: Any) -> dict[str, Any]:
        return {**body[region], "region": region, "ts": ts, "valid_for_s": valid, **extra}

    phase_a = [sig(r, ta) for r in regions]
    rng = random.Random(6)
    late = [sig(r, t, price_usd_per_mwh=0.01, marginal_gco2_per_kwh=0.01) for r in regions for t in late_ts]
    rng.shuffle(late)
    phase_c = [sig(r, t2) for r in regions] + late + [sig(regions[0], t2 + 1)]
    published = phase_a + phase_c  # in log order
    applied_c = len(regions) + 1  # the late ones must not count

    def reqs(tag: str, lo: float, hi: float) -> list[dict[str, Any]]:
        out = fresh_requests(n, f"s6{tag}")
        return [dict(r, ts=lo + (hi - lo) * k / n) for k, r in enumerate(out)]

    req_a = reqs("a", ta + 1, ta + valid / 2)
    req_b = reqs("b", ta + valid + 60, ta + valid + 600)  # every signal is stale
    req_c = reqs("c", t2 + 10, t2 + valid / 2)
    phase_of = {r["request_id"]: p for p, rs in (("a", req_a), ("b", req_b), ("c", req_c)) for r in rs}
    s = fresh_settings(ctx.bootstrap, "s6")
    w = start_worker(s, "s6", ctx)
    try:
        publish_signals(s, phase_a)
        w.wait(lambda h: h["signals_version"] >= len(phase_a))
        log = send(s, request_items(req_a + req_b), rate=3000)
        wait_placed(s, log, timeout_s=60)
        publish_signals(s, phase_c)
        h = w.wait(lambda h: h["signals_version"] >= len(phase_a) + applied_c)
        send(s, request_items(req_c), rate=3000, log=log)
        recs = wait_placed(s, log, timeout_s=60)
        check = check_placements(log.acked, recs)
        _fill(res, log, check)
        res.details["signals_version"] = {"seen": h["signals_version"], "expected": len(phase_a) + applied_c}
        if h["signals_version"] != len(phase_a) + applied_c:
            res.violations.append(f"signals_version {h['signals_version']} != {len(phase_a) + applied_c}")
        _check_staleness(res, recs, published, phase_of)
    finally:
        _stop([w], res)
    return res


def _held_states(published: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """(ts, valid_for_s) states each region holds when signals are merged in event time in log order."""
    held: dict[str, list[tuple[float, float]]] = {}
    for sig in published:
        seq = held.setdefault(sig["region"], [])
        if seq and sig["ts"] < seq[-1][0]:
            continue  # a late, older signal must not overwrite
        seq.append((float(sig["ts"]), float(sig["valid_for_s"])))
    return held


def _check_staleness(
    res: Result, recs: Sequence[Rec], published: Sequence[dict[str, Any]], phase_of: dict[str, str]
) -> None:
    held = _held_states(published)
    late = {(s["region"], float(s["ts"])) for s in published} - {
        (r, ts) for r, seq in held.items() for ts, _ in seq
    }
    reloc: Counter[str] = Counter()
    stale_targets, late_used, no_age, unexplained = [], [], [], []
    for rec in recs:
        p = rec.json()
        rid, region, age = p["request_id"], p["region"], p["signal_age_s"]
        if p["status"] != "placed":
            continue
        if age is None:
            no_age.append(rid)
            continue
        used_ts = p["event_ts"] - age
        if any(r == region and abs(ts - used_ts) < 1e-3 for r, ts in late):
            late_used.append(rid)
        if region == p["home_region"]:
            continue
        reloc[phase_of.get(rid, "?")] += 1
        states = [v for ts, v in held.get(region, []) if abs(ts - used_ts) < 1e-3]
        if not states:
            unexplained.append(rid)
        elif age > max(states) + 1e-6 or age < -1e-6:
            stale_targets.append(rid)
    res.details.update(
        {
            "relocations_by_phase": dict(reloc),
            "stale_relocations": len(stale_targets),
            "late_signal_used": len(late_used),
            "placed_without_signal_age": len(no_age),
            "relocations_with_unexplained_signal": len(unexplained),
        }
    )
    if reloc.get("b"):
        res.violations.append(f"{reloc['b']} relocations while every signal was stale")
    if stale_targets:
        res.violations.append(f"{len(stale_targets)} placements relocated to a region with a stale signal")
    if late_used:
        res.violations.append(f"{len(late_used)} placements used a late signal that should have been dropped")
    if unexplained:
        res.violations.append(f"{len(unexplained)} relocations used a signal the log order does not explain")
    if no_age:
        res.violations.append(f"{len(no_age)} placed requests carry no signal_age_s")
    if not reloc.get("a") or not reloc.get("c"):
        res.violations.append(f"too few relocations to test staleness (by phase: {dict(reloc)})")


# -- scenario 8: 5% of requests sent twice ---------------------------------------------------------------
def sent_twice(ctx: Ctx) -> Result:
    """Scenario 8: 5% of the requests are sent twice (some adjacent, some far apart)."""
    res = Result("8", "5% of requests sent twice")
    n, rate = (1200, 1000.0) if ctx.quick else (8000, 800.0)
    reqs = request_items(fresh_requests(n, "s8"))
    gaps = (0, 7, 150, 2000)
    keyed = [(float(k), r) for k, r in enumerate(reqs)]
    copies = [(k + gaps[(k // 20) % len(gaps)] + 0.5, reqs[k]) for k in range(0, n, 20)]
    items = [r for _, r in sorted(keyed + copies, key=lambda x: x[0])]  # every 20th request once more
    twice = len(copies)
    s = fresh_settings(ctx.bootstrap, "s8")
    sig = first_hour_signals()
    w = start_worker(s, "s8", ctx)
    try:
        publish_signals(s, sig)
        w.wait(lambda h: h["signals_version"] >= len(sig))
        log = send(s, items, rate=rate)
        recs = wait_placed(s, log, timeout_s=90)
        # the second copies come after the first ones: wait until every copy has its placement
        want = log.acked_count
        if len(recs) < want:
            recs = read_topic(s, s.topic_placements, done=lambda r: len(r) >= want, timeout_s=30)
        check = check_placements(log.acked, recs)
        _fill(res, log, check)
        acked_twice = sum(1 for v in log.acked.values() if len(v) > 1)
        res.details.update({"sent_twice": twice, "acked_twice": acked_twice, "placement_records": len(recs)})
        missing_copies = want - len(recs)
        if missing_copies > 0:
            res.violations.append(f"{missing_copies} acknowledged copies got no placement record")
        if check.duplicates != sum(len(v) - 1 for v in log.acked.values()):
            res.details["duplicates_expected"] = sum(len(v) - 1 for v in log.acked.values())
    finally:
        _stop([w], res)
    return res


# -- scenario 9: poison, oversized and a garbage flood ---------------------------------------------------
def garbage_values(k: int, origin: str) -> tuple[bytes | None, bytes | None]:
    """The k-th garbage record (key, value): never a usable request, always one the worker must reject."""
    rid = f"junk-{k}"
    good = {"request_id": rid, "origin": origin, "latency_budget_ms": 500.0, "energy_wh": 1.0}
    kinds: list[bytes | None] = [
        b"not json at all " + str(k).encode(),
        bytes(random.Random(k).randbytes(64)),
        b"",
        None,  # a tombstone
        b"[1, 2, 3]",
        b'"just a string"',
        b"[" * 2000 + b"]" * 2000,
        b'{"request_id": "' + rid.encode() + b'", "latency_budget_ms": 1e400}',
        orjson.dumps({**good, "origin": "fe-nowhere"}),
        orjson.dumps({**good, "latency_budget_ms": 0}),
        orjson.dumps({**good, "latency_budget_ms": "fast"}),
        orjson.dumps({**good, "energy_wh": -1}),
        orjson.dumps({k2: v for k2, v in good.items() if k2 != "origin"}),
        orjson.dumps({**good, "request_id": "x" * 300}),
        orjson.dumps({**good, "model": "no-such-model", "tokens": 10}),
        orjson.dumps({**good, "state_region": "mars:olympus-1"}),
        b'{"request_id": "'
        + rid.encode()
        + b'", "origin": "'
        + origin.encode()
        + b'", "tokens": '
        + b"9" * 40
        + b', "latency_budget_ms": 5}',
        orjson.dumps({**good, "origin": "\u202e\u0000\ufffd"}),
        orjson.dumps({**good, "ts": -5}),
        orjson.dumps({**good, "payload_bytes": 1 << 50}),
    ]
    if k % 100 == 0:  # oversized, 1 in 100
        return rid.encode(), orjson.dumps({**good, "pad": "x" * 70_000})
    value = kinds[k % len(kinds)]
    return (None if k % 7 == 0 and value is not None else rid.encode()), value  # a tombstone needs a key


#: Valid JSON requests whose numbers overflow the kernel's integer energy column (not garbage by schema,
#: but poison: they must be dead-lettered rather than take the worker down).
OVERFLOW_POISON: tuple[dict[str, Any], ...] = (
    {"latency_budget_ms": 500.0, "energy_wh": 1e12},
    {"latency_budget_ms": 500.0, "energy_wh": 1e300},
)


def garbage_flood(ctx: Ctx) -> Result:
    """Scenario 9: poison and oversized messages, and garbage at 10x the valid rate, in rounds."""
    res = Result("9", "poison/oversized + 10x garbage flood")
    valid_rate, per_round, rounds = (100.0, 200, 1) if ctx.quick else (200.0, 2000, 2)
    reqs = fresh_requests(per_round * rounds, "s9")
    origin = reqs[0]["origin"]
    s = fresh_settings(ctx.bootstrap, "s9")
    sig = first_hour_signals()
    w = start_worker(s, "s9", ctx)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_kb(w.proc.pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        publish_signals(s, sig)
        w.wait(lambda h: h["signals_version"] >= len(sig))
        log = SendLog()
        rss: dict[str, int] = {"before": rss_kb(w.proc.pid)}
        sampler.start()
        k_junk = 0
        for rnd in range(rounds):
            items: list[Item] = []
            for r in request_items(reqs[rnd * per_round : (rnd + 1) * per_round]):
                items.append(r)
                for _ in range(10):
                    items.append((*garbage_values(k_junk, origin), None))
                    k_junk += 1
            send(s, items, rate=valid_rate * 11, log=log)
            wait_placed(s, log, timeout_s=60, worker=w)
            time.sleep(0.5)
            rss[f"after_round_{rnd + 1}"] = rss_kb(w.proc.pid)
        recs = wait_placed(s, log, timeout_s=30, worker=w)
        dlq = read_topic(s, s.topic_dlq, done=lambda r: len(r) >= log.garbage_acked, timeout_s=30)
        stop.set()
        check = check_placements(log.acked, recs)
        _fill(res, log, check)
        letters = [d.json() for d in dlq]
        fields = Counter(str(x.get("field")) for x in letters)
        rss["peak"] = max(samples, default=0)
        alive = w.proc.poll() is None
        growth_mb = (rss[f"after_round_{rounds}"] - rss["before"]) / 1024
        res.details.update(
            {
                "valid_rate_per_s": valid_rate,
                "garbage_rate_per_s": valid_rate * 10,
                "garbage_sent": log.garbage_sent,
                "garbage_acked": log.garbage_acked,
                "dead_letters": len(letters),
                "dead_letters_by_field": dict(fields.most_common()),
                "rss_kb": rss,
                "rss_growth_mb": round(growth_mb, 1),
                "worker_alive_at_end": alive,
            }
        )
        if len(letters) != log.garbage_acked:
            res.violations.append(f"{len(letters)} dead letters for {log.garbage_acked} garbage records")
        if any(not x.get("error") or x.get("topic") != s.topic_requests for x in letters):
            res.violations.append("a dead letter without a reason or with the wrong topic")
        if not alive:
            res.violations.append(f"the worker died (exit {w.proc.returncode})")
        if growth_mb > 150:
            res.violations.append(f"worker RSS grew by {growth_mb:.0f} MB")
    finally:
        stop.set()
        _stop([w], res)
    return res


def overflow_poison(ctx: Ctx) -> Result:
    """Scenario 9p: schema-valid requests whose energy overflows the kernel's integer column, between valid
    requests; they must be dead-lettered, and the requests around them placed."""
    res = Result("9p", "poison: energy_wh overflow")
    reqs = fresh_requests(100, "s9p")
    origin = reqs[0]["origin"]
    items = request_items(reqs[:50])
    for j, extra in enumerate(OVERFLOW_POISON):
        body = {"request_id": f"poison-{j}", "origin": origin, **extra}
        items.append((f"poison-{j}".encode(), orjson.dumps(body), None))
    items += request_items(reqs[50:])
    s = fresh_settings(ctx.bootstrap, "s9p")
    sig = first_hour_signals()
    w = start_worker(s, "s9p", ctx)
    try:
        publish_signals(s, sig)
        w.wait(lambda h: h["signals_version"] >= len(sig))
        log = send(s, items, rate=5000)
        recs = wait_placed(s, log, timeout_s=30, worker=w)
        dlq = read_topic(s, s.topic_dlq, done=lambda r: len(r) >= log.garbage_acked, timeout_s=5)
        check = check_placements(log.acked, recs)
        _fill(res, log, check)
        alive = w.proc.poll() is None
        crash = [ln for ln in w.log.read_text(errors="replace").splitlines() if "Error" in ln][-3:]
        res.details.update(
            {"dead_letters": len(dlq), "worker_alive_at_end": alive, "worker_log_errors": crash}
        )
        if len(dlq) != log.garbage_acked:
            res.violations.append(f"{len(dlq)} dead letters for {log.garbage_acked} poison records")
        if not alive:
            res.violations.append(f"the worker died (exit {w.proc.returncode})")
    finally:
        _stop([w], res)
    return res


# -- scenarios 2 and 3: workers join, leave and stall -----------------------------------------------------
async def _partitions(w: WorkerProc) -> int | None:
    """The request partitions a worker holds (None while it does not answer)."""
    try:
        return int((await asyncio.to_thread(w.health))["partitions"])
    except (OSError, KeyError, ValueError):
        return None


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


def _check_lag(res: Result, s: Settings, log: SendLog, timeout_s: float = 60.0) -> None:
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
                pb = await _partitions(b)
                if pb and await _batches(b):
                    break
                await asyncio.sleep(0.2)
            phases["b_joined_after_s"] = round(time.monotonic() - started, 1)
            await asyncio.sleep(hold_s)
            phases["two_workers"] = {"a": await _partitions(a), "b": await _partitions(b)}
            phases["b_batches"] = await _batches(b)
            left = time.monotonic()
            phases["b_exit"] = await asyncio.to_thread(b.stop, 30.0)
            while time.monotonic() < left + 60:  # a takes every partition back
                if (await _partitions(a) or 0) >= s.request_partitions:
                    break
                await asyncio.sleep(0.2)
            phases["a_all_partitions_after_s"] = round(time.monotonic() - left, 1)
            phases["one_worker"] = {"a": await _partitions(a)}
            await asyncio.sleep(tail_s)
            done.set()

        async def load() -> None:
            items = request_items(fresh_requests(int(rate) * 180, "s2"))
            k = 0
            while not done.is_set() and k < len(items):
                chunk = items[k : k + int(rate)]
                k += len(chunk)
                await send_paced(s, s.topic_requests, chunk, rate=rate, log=log)

        asyncio.run(_gather(load(), scaler()))
        recs = wait_placed(s, log, timeout_s=120)
        check = check_placements(log.acked, recs)
        _fill(res, log, check)
        res.recovery_s = phases.get("a_all_partitions_after_s")
        res.details.update({"rate_per_s": rate, "phases": phases})
        two = phases.get("two_workers", {})
        if not two.get("b") or not phases.get("b_batches"):
            res.violations.append(f"the second worker never held partitions or placed requests ({phases})")
        if (phases.get("one_worker", {}).get("a") or 0) < s.request_partitions:
            res.violations.append(f"after scale-in the first worker does not hold every partition ({phases})")
        _check_lag(res, s, log)
    finally:
        _stop(workers, res)
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
                if (await _partitions(a) or 0) and (await _partitions(b) or 0) and await _batches(b):
                    break
                await asyncio.sleep(0.2)
            phases["before"] = {"a": await _partitions(a), "b": await _partitions(b)}
            phases["a_batches_before"] = await _batches(a)
            # a burst, so that the worker is most likely in the middle of a large batch when it stops
            burst = request_items(fresh_requests(burst_n, "s3burst"))
            await send_paced(s, s.topic_requests, burst, rate=1e6, log=log)
            await asyncio.sleep(0.03)
            a.proc.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            phases["stopped_at"] = time.time()
            moved = None
            while time.monotonic() < stopped + stall_s:
                if moved is None and (await _partitions(b) or 0) >= s.request_partitions:
                    moved = round(time.monotonic() - stopped, 2)
                await asyncio.sleep(0.2)
            phases["b_all_partitions_after_s"] = moved
            phases["during"] = {"b": await _partitions(b)}
            a.proc.send_signal(signal.SIGCONT)
            phases["woke_at"] = time.time()
            woke = time.monotonic()
            while time.monotonic() < woke + 30 and a.proc.poll() is None:  # a commits batches again
                if await _batches(a) > phases["a_batches_before"]:
                    break
                await asyncio.sleep(0.2)
            phases["a_resumed_after_s"] = round(time.monotonic() - woke, 1)
            phases["a_batches_after"] = await _batches(a)
            await asyncio.sleep(3.0)
            done.set()

        async def load() -> None:
            items = request_items(fresh_requests(int(rate) * 180, "s3"))
            k = 0
            while not done.is_set() and k < len(items):
                chunk = items[k : k + int(rate)]
                k += len(chunk)
                await send_paced(s, s.topic_requests, chunk, rate=rate, log=log)

        asyncio.run(_gather(load(), staller()))
        recs = wait_placed(s, log, timeout_s=120)
        check = check_placements(log.acked, recs)
        _fill(res, log, check)
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
        _check_lag(res, s, log)
    finally:
        for w in workers:  # never leave a stopped process behind
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGCONT)
        _stop(workers, res)
    return res


SCENARIOS: dict[str, Callable[[Ctx], Result]] = {
    "1": kill_restart,
    "1c": kill_restart_capacity,
    "2": scale_out_in,
    "3": stall_past_poll_interval,
    "6": stale_signals,
    "8": sent_twice,
    "9": garbage_flood,
    "9p": overflow_poison,
}


#: The scenarios of ``--quick`` and of the quick tests in ``make test``.
QUICK = ("1", "6", "8", "9", "9p")


def run_scenario(number: str, ctx: Ctx) -> Result:
    """Run one scenario; an exception becomes a failed result naming it (the runner goes on)."""
    started = time.monotonic()
    try:
        res = SCENARIOS[number](ctx)
    except Exception as exc:
        res = Result(number, SCENARIOS[number].__name__)
        res.violations.append(f"scenario crashed: {type(exc).__name__}: {str(exc)[:2000]}")
        res.details["traceback"] = traceback.format_exc()
    res.seconds = time.monotonic() - started
    return res
