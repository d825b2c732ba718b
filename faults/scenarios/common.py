"""What every fault scenario shares: the result row, the data, the paced load generator, worker helpers.

Every scenario gets its own topic set on the shared embedded broker, runs real ``carbon-router worker``
child processes (``streams.testing.WorkerProc``, streams/testing/harness.py), publishes the bundled grid
signals first and waits until the worker's ``/healthz`` shows them applied, then sends the bundled sample
requests under fresh request ids with a paced load generator that records every acknowledged request
(partition, offset). The checker (``faults.checker``) then reads ``placements`` from offset 0 and compares.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from faults.checker import Acked, Rec, SendLog, read_topic
from router.commands import bundled
from streams.settings import Settings, consumer_kwargs, embedded_settings, producer_kwargs
from streams.testing import WorkerProc, produce
from streams.topics import TOPIC_KEYS

__all__ = [
    "T0",
    "Ctx",
    "Item",
    "Result",
    "batches_of",
    "committed_offsets",
    "fill_result",
    "first_hour_signals",
    "fresh_requests",
    "fresh_settings",
    "gather",
    "lines",
    "metric_sum",
    "metric_values",
    "partitions_of",
    "publish_signals",
    "request_items",
    "rss_kb",
    "send",
    "send_paced",
    "send_until",
    "start_worker",
    "stop_workers",
    "wait_placed",
]


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
def lines(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in bundled(name).read_bytes().splitlines() if x.strip()]


def first_hour_signals() -> list[dict[str, Any]]:
    """The bundled real signals of the timeline's first hour, in ts order."""
    return sorted((s for s in lines("sample_signals.jsonl") if s["ts"] <= T0 + 3600), key=lambda s: s["ts"])


def fresh_requests(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` bundled sample requests of the quarter hour after the first hour, cycled, with fresh ids."""
    base = [r for r in lines("sample_requests.jsonl") if T0 + 3600 < r["ts"] <= T0 + 4500]
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
async def send_until(
    settings: Settings,
    topic: str,
    items: Sequence[Item],
    done: asyncio.Event,
    *,
    rate: float,
    log: SendLog,
    chunk_s: float = 1.0,
    paused: asyncio.Event | None = None,
) -> None:
    """``send_paced`` in chunks of ``chunk_s`` seconds of load until ``done`` is set or ``items`` run out;
    while ``paused`` is set, nothing is sent."""
    k, step = 0, max(1, int(rate * chunk_s))
    while not done.is_set() and k < len(items):
        if paused is not None and paused.is_set():
            await asyncio.sleep(0.05)
            continue
        chunk = items[k : k + step]
        k += len(chunk)
        await send_paced(settings, topic, chunk, rate=rate, log=log)


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
    try:
        await producer.start()
    except Exception as exc:  # the broker is unreachable (a fault scenario): nothing of these items is sent
        with contextlib.suppress(Exception):
            await producer.stop()
        for _, _, rid in items:
            log.sent += rid is not None
            log.garbage_sent += rid is None
            log.fail(exc)
        return
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


def stop_workers(workers: Sequence[WorkerProc], res: Result) -> None:
    """SIGTERM every worker still running (SIGKILL when it does not exit) and record the exit codes."""
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


def fill_result(res: Result, log: SendLog, check: Any) -> None:
    """The table columns from the send log and the check, and the violations every scenario shares."""
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


async def gather(*aws: Awaitable[Any]) -> None:
    """Await every awaitable concurrently."""
    await asyncio.gather(*aws)


async def batches_of(w: WorkerProc) -> int:
    """The batches a worker has committed (0 while it does not answer)."""
    try:
        return int((await asyncio.to_thread(w.health))["batches"])
    except OSError:
        return 0


async def partitions_of(w: WorkerProc) -> int | None:
    """The request partitions a worker holds (None while it does not answer)."""
    try:
        return int((await asyncio.to_thread(w.health))["partitions"])
    except (OSError, KeyError, ValueError):
        return None


def metric_values(w: WorkerProc, name: str) -> dict[str, float] | None:
    """Every sample of one metric on the worker's /metrics, by its label text (``""`` when unlabelled);
    None while the worker does not answer."""
    try:
        text = w.get("/metrics").decode()
    except OSError:
        return None
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            head, _, value = line.rpartition(" ")
            out[head[len(name) :].strip("{}")] = float(value)
    return out


def metric_sum(w: WorkerProc, name: str) -> float | None:
    """The sum of a metric's samples (None while the worker does not answer)."""
    got = metric_values(w, name)
    return None if got is None else sum(got.values())
