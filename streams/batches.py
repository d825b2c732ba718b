"""The life of one request batch in the data plane: decide, publish, wait for the acks, commit; or rewind
and fetch it again (README.md, "Running on Apache Kafka", the data plane).

Per fetched batch: decode every record, place the valid ones with one kernel call, publish one placement per
request (and one dead letter per malformed record) with aiokafka's batch API; a task then waits until the
broker has acknowledged all of them, then until the batch before it is committed, and only then commits the
batch's offsets (at-least-once) and counts it in the metrics. A batch is published once the batch before it
is acknowledged (never while another batch's messages may still sit in the producer: a worker frozen then
would send them after waking, on partitions that moved); its commit is not waited for. Up to
``MAX_IN_FLIGHT`` batches wait for their commits at once, so the fetch, the decisions and the publishing of
the next batches overlap the commits of the earlier ones, and commits stay in order. If a batch is not
acknowledged or not committed, every batch after it fails too (none commits past it): the consumer seeks back
to the start of the oldest batch in flight and they are fetched again; the dedup memory makes the retry
publish the same decisions. A batch that may belong to another worker now is dropped unpublished
(``streams.ownership``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from router.decider import Decider
from router.placed import Placements
from router.plan import RequestIds, Row
from router.problems import Problem
from streams.batchcodec import decode_checked_batch
from streams.codec import Clock, dead_letter, decode_checked_request
from streams.headers import forwarded
from streams.metrics import Metrics
from streams.ownership import Ownership
from streams.publish import Outgoing, StaleBatchError, publish
from streams.settings import Settings

__all__ = ["RETRY_S", "BatchLifecycle"]

log = structlog.get_logger("carbon_router.dataplane")

#: Pause before a batch that could not be published or committed is fetched again (s).
RETRY_S = 1.0
#: Time given to the producer to write a published batch out before the next one is decided (s).
HANDOFF_S = 0.001
#: Batches published and not yet committed, at most (each holds its fetched records until it is).
MAX_IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class _Work:
    """One decided batch, ready to publish: placements and dead letters as (partition, key, value,
    headers)."""

    requests: int
    out: list[Outgoing]
    dead: list[Outgoing]
    placements: Placements
    produced_at_s: list[float]
    repeated: int
    #: the sessions' records (router.sessions), on their requests' partition numbers
    sessions: list[Outgoing] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A published batch: its fetched records and the task that awaits its acks and commits it."""

    fetched: dict[Any, list[Any]]
    #: every placement and dead letter of the batch acknowledged by the broker (False: not)
    acked: asyncio.Future[bool]
    #: acknowledged and committed, after every batch before it (False: not)
    done: asyncio.Future[bool]


class BatchLifecycle:
    """Decide fetched batches, publish them, commit each after its acks and the batch before it."""

    def __init__(self, settings: Settings, live: Decider, metrics: Metrics, ownership: Ownership) -> None:
        self.settings = settings
        self.live = live
        self.metrics = metrics
        self.ownership = ownership
        #: the data plane's clients, once it started
        self.consumer: Any = None
        self.producer: Any = None
        #: partitions of the placements topic (a request on partition p is placed on p modulo this)
        self.placement_partitions = 1
        #: published batches whose acks and commit are still awaited, oldest first
        self.pipeline: deque[_InFlight] = deque()
        #: batches acknowledged and committed
        self.committed = 0

    @property
    def inflight(self) -> _InFlight | None:
        """The newest batch in flight (its ``done`` resolves after every older one's)."""
        return self.pipeline[-1] if self.pipeline else None

    async def handle(self, fetched: dict[Any, list[Any]], fetched_at: float) -> None:
        """Decide one fetched batch and publish it at once, leaving its acks and commit in flight while
        the next batches are fetched, decided and published."""
        work = self._prepare(fetched)
        failed = await self._room()
        previous = self.inflight
        if not failed and previous is not None and not await previous.acked:
            failed = [x.fetched for x in self.pipeline]  # its commit will fail too: drop them all now
            self.pipeline.clear()
        if failed:
            # a batch in flight was not acknowledged or not committed: fetch from the oldest one's start
            # again, this batch included (the decisions stay remembered: the retry publishes the same ones)
            self.rewind([*failed, fetched])
            await asyncio.sleep(RETRY_S)
            return
        if not self.ownership.still_owned(fetched, fetched_at):
            self._drop_stale(fetched, fetched_at, work)
            return

        def still_ours() -> bool:
            return self.ownership.still_owned(fetched, fetched_at)

        try:
            acks = await self.publish(self.settings.topic_placements, work.out, still_ours)
            acks += await self.publish(self.settings.topic_dlq, work.dead, still_ours)
            acks += await self.publish(self.settings.topic_sessions, work.sessions, still_ours)
        except StaleBatchError as exc:  # frozen part way: the rest is the new owner's to decide
            log.warning("batch_publish_stopped", requests=work.requests, error=str(exc))
            self._drop_stale(fetched, fetched_at, work)
            return
        except Exception as exc:  # could not even be handed to the producer: fetch the batch again
            self._failed("publish", exc, work.requests)
            self.rewind([fetched])
            await asyncio.sleep(RETRY_S)
            return
        before = self.inflight
        acked = asyncio.ensure_future(self._acked(acks, work))
        done = asyncio.ensure_future(self._finish(acked, work, fetched, before.done if before else None))
        self.pipeline.append(_InFlight(fetched, acked, done))
        # let the producer write the batch to its socket before the next batch is decided: a message
        # still held in this process when the worker freezes is sent when it wakes (a zombie write)
        await asyncio.sleep(HANDOFF_S)

    async def _acked(self, acks: list[Any], work: _Work) -> bool:
        """True once the broker acknowledged every message of the batch; False (counted) when it did not."""
        try:
            await asyncio.gather(*acks)
        except Exception as exc:
            self._failed("publish", exc, work.requests)
            return False
        return True

    async def _room(self) -> list[dict[Any, list[Any]]]:
        """Make room for one more batch in flight: drop the settled ones, wait for the oldest when full.
        When one failed: the fetched records of every batch in flight (dropped), to fetch again."""
        while self.pipeline and (self.pipeline[0].done.done() or len(self.pipeline) >= MAX_IN_FLIGHT):
            if not await self.pipeline[0].done:
                failed = [x.fetched for x in self.pipeline]
                self.pipeline.clear()
                return failed
            self.pipeline.popleft()
        return []

    def _drop_stale(self, fetched: dict[Any, list[Any]], fetched_at: float, work: _Work) -> None:
        """Drop a batch that may belong to another worker unpublished: whoever owns the partitions now
        decides these requests."""
        self.live.forget(work.placements.request_ids)
        self.metrics.broker_errors.labels("stale_batch").inc()
        log.warning(
            "batch_dropped_stale", requests=work.requests, held_s=round(time.monotonic() - fetched_at, 3)
        )
        self.rewind([fetched])

    async def place_now(self, fetched: dict[Any, list[Any]]) -> bool:
        """Decide, publish and commit ``fetched`` before going on; False when that did not happen."""
        await self.handle(fetched, time.monotonic())
        if self.inflight is None:
            return False
        return await self.settle()

    def _prepare(self, fetched: dict[Any, list[Any]]) -> _Work:
        """Decode the records (``streams.batchcodec``, the batch at once), decide the valid ones with one
        kernel call, encode; no I/O."""
        started = time.perf_counter()
        s, m = self.settings, self.metrics
        clock = Clock(time.time(), s.max_clock_skew_s)
        records = [rec for tp in sorted(fetched, key=lambda x: x.partition) for rec in fetched[tp]]
        checked = decode_checked_batch(
            [rec.value for rec in records],
            self.live.plan,
            s.max_message_bytes,
            [rec.timestamp / 1000.0 for rec in records],
            clock=clock,
            allow_extra=s.extra_fields == "ignore",
            check=lambda k: self._check(records[k], clock),
        )
        dead: list[Outgoing] = []
        names = s.forwarded_header_names
        for k, got in checked.problems:
            rec = records[k]
            letter = dead_letter(
                rec.value,
                got,
                topic=rec.topic,
                partition=rec.partition,
                offset=rec.offset,
                max_raw_bytes=s.max_message_bytes,
            )
            dead.append((0, rec.key, letter, forwarded(rec.headers, names)))
            m.record_dead_letter(s.topic_requests, got.field)
            # the error may quote request fields: they stay at debug level
            log.debug("request_rejected", field=got.field, error=got.error, partition=rec.partition)
        batch = checked.batch
        recs = [records[k] for k in checked.kept]
        decided = self.live.decide_columns(batch, decided_at=clock.now, clock=clock.now)
        parts = self.placement_partitions
        out: list[Outgoing] = [  # keyed by request id, whatever the request's own key
            (rec.partition % parts, rid.encode(), value, forwarded(rec.headers, names))
            for rid, rec, value in zip(batch.ids, recs, decided.values, strict=True)
        ]
        session_ids = batch.sessions or (None,) * len(recs)  # (): no request names a session
        part_of = {sid: rec.partition % parts for sid, rec in zip(session_ids, recs, strict=True) if sid}
        sessions: list[Outgoing] = [(part_of[sid], sid.encode(), v, []) for sid, v in decided.sessions]
        m.batch_seconds.observe(time.perf_counter() - started)
        m.batch_size.observe(len(recs) + len(dead))
        return _Work(
            requests=len(recs),
            out=out,
            dead=dead,
            placements=decided.placements,
            produced_at_s=[r.timestamp / 1000.0 for r in recs],
            repeated=decided.repeated,
            sessions=sessions,
        )

    def _check(self, rec: Any, clock: Clock) -> tuple[RequestIds, Row] | Problem:
        """Decode and check one record, returning it with its kernel row; any failure becomes a Problem."""
        try:
            return decode_checked_request(
                rec.value,
                self.live.plan,
                self.settings.max_message_bytes,
                rec.timestamp / 1000.0,
                clock=clock,
                allow_extra=self.settings.extra_fields == "ignore",
            )
        except Exception as exc:  # a poison record must never stop the stream
            log.warning("request_check_crashed", error=repr(exc)[:200], partition=rec.partition)
            return Problem.of(f"could not be checked: {type(exc).__name__}")

    async def _finish(
        self,
        acked: asyncio.Future[bool],
        work: _Work,
        fetched: dict[Any, list[Any]],
        before: asyncio.Future[bool] | None,
    ) -> bool:
        """Wait for every ack of a published batch and for the batch before it, then commit its offsets;
        count it only then. False when it or any batch before it failed (nothing is committed past that)."""
        try:
            if not await asyncio.shield(acked):
                return False
            if before is not None and not await asyncio.shield(before):
                return False
            await self.consumer.commit({tp: msgs[-1].offset + 1 for tp, msgs in fetched.items()})
        except Exception as exc:  # not acknowledged or not committed: the main loop rewinds
            self._failed("publish", exc, work.requests)
            return False
        self.committed += 1
        try:  # no metrics failure may stop the data plane
            self.metrics.duplicates.inc(work.repeated)
            self.metrics.record_placements(work.placements, work.produced_at_s)
            self._update_lag(fetched)
        except Exception as exc:
            self.metrics.metrics_errors.inc()
            log.error("metrics_update_failed", error=repr(exc)[:200])
        return True

    async def settle(self) -> bool:
        """Wait for every batch in flight (acks and commits); False when one failed, after rewinding them
        all to the oldest one's start. True when none is in flight."""
        ok = True
        for x in self.pipeline:
            ok = await x.done and ok
        if not ok:
            self.rewind([x.fetched for x in self.pipeline])
        self.pipeline.clear()
        return ok

    def _failed(self, op: str, exc: BaseException, requests: int) -> None:
        self.metrics.broker_errors.labels(op).inc()
        log.warning("publish_failed", error=repr(exc), requests=requests)

    def rewind(self, batches: list[dict[Any, list[Any]]]) -> None:
        """Seek every partition of ``batches`` back to its first fetched offset in them."""
        first: dict[Any, int] = {}
        for fetched in batches:
            for tp, msgs in fetched.items():
                first[tp] = min(first.get(tp, msgs[0].offset), msgs[0].offset)
        for tp, offset in first.items():
            try:
                self.consumer.seek(tp, offset)
            except Exception:  # the partition moved to another worker, which resumes from the commit
                log.info("partition_moved", partition=tp.partition)

    async def publish(
        self, topic: str, items: list[Outgoing], still_ours: Callable[[], bool] | None = None
    ) -> list[Any]:
        """Send (partition, key, value, headers) items with the batch API; the futures of their acks."""
        return await publish(self.producer, topic, items, still_ours)

    def _update_lag(self, fetched: dict[Any, list[Any]]) -> None:
        """Consumer lag of the partitions just processed."""
        for tp, msgs in fetched.items():
            high = self.consumer.highwater(tp)
            if high is not None:
                self.metrics.lag.labels(str(tp.partition)).set(max(0, high - (msgs[-1].offset + 1)))
