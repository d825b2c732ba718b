"""The batched request data plane: one aiokafka consumer group over ``inference.requests``.

Per fetched batch: decode every record, place the valid ones with one kernel call, publish one placement per
request (and one dead letter per malformed record) with aiokafka's batch API; a task then waits until the
broker has acknowledged all of them and only then commits the batch's offsets (at-least-once) and counts it
in the metrics. That wait overlaps the fetch and the decisions of the next batch, which is published only
once the previous one is committed (so at most one batch is in flight and commits stay in order). If a batch
is not acknowledged or not committed, the consumer seeks back to its start (and drops the next batch,
decided but not yet published) and the batch is retried; the dedup memory makes the retry publish the same
decisions. A rebalance waits for the batch in flight before the partitions move.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from mode import Service

from router.decider import Decider
from router.placement import PlacementMessage
from router.plan import RequestIds, Row
from streams.codec import Clock, Rejected, dead_letter, decode_checked_request
from streams.headers import forwarded
from streams.leadership import Leadership, TermAssignor
from streams.metrics import Metrics
from streams.poison import Skip, find_poison, is_decode_error, skip_letter
from streams.publish import Outgoing, publish
from streams.reload import ReloadOnAssign, reload_placements
from streams.settings import Settings, consumer_kwargs, producer_kwargs

__all__ = ["DataPlane"]

log = structlog.get_logger("carbon_router.dataplane")

_RETRY_S = 1.0
_RELOAD_TIMEOUT_S = 30.0
_READY_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class _Work:
    """One decided batch, ready to publish: placements and dead letters as (partition, key, value,
    headers)."""

    requests: int
    out: list[Outgoing]
    dead: list[Outgoing]
    placements: list[PlacementMessage]
    produced_at_s: list[float]
    repeated: int


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A published batch: its fetched records and the task that awaits its acks and commits it."""

    fetched: dict[Any, list[Any]]
    done: asyncio.Future[bool]


class DataPlane(Service):
    """Consume requests in batches, place them, publish placements, commit after the acks."""

    def __init__(
        self, settings: Settings, live: Decider, metrics: Metrics, leadership: Leadership, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.leadership = leadership
        self.settings = settings
        self.live = live
        self.metrics = metrics
        self.consumer: Any = None
        self.producer: Any = None
        self._busy = asyncio.Lock()
        #: the last published batch whose acks and commit are still awaited (at most one)
        self._inflight: _InFlight | None = None
        #: assigned partitions whose recent placements are reloaded (see ``_wait_reloaded``)
        self._reloaded: set[Any] = set()
        #: assignments seen, and (when, assignments then) of the last stale batch (see ``_suspended``)
        self._assignments = 0
        self._stale: tuple[float, int] | None = None
        self._placement_partitions = 1
        self.batches = 0
        #: awaited before the first fetch: the control plane has recovered the region state
        self.ready_hook: Callable[[], Awaitable[None]] | None = None

    async def on_start(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        s = self.settings
        self.producer = AIOKafkaProducer(**producer_kwargs(s))
        await self.producer.start()
        self._placement_partitions = len(await self.producer.partitions_for(s.topic_placements) or {0})
        assignor = TermAssignor(self.leadership)  # hands out the re-solve's leadership terms
        self.consumer = AIOKafkaConsumer(**consumer_kwargs(s), partition_assignment_strategy=(assignor,))
        await self.consumer.start()  # joins the group only once subscribed, after the state is read
        log.info("data_plane_started", topic=s.topic_requests, group=s.group_id)

    async def on_stop(self) -> None:
        async with self._busy:  # let the batch being decided and the one in flight finish and commit
            await self.settle()
            if self.consumer is not None:
                await self.consumer.stop()
            if self.producer is not None:
                await self.producer.stop()
        log.info("data_plane_stopped", batches=self.batches)

    @Service.task
    async def _fetch_loop(self) -> None:
        if self.ready_hook is not None:
            try:
                await asyncio.wait_for(self.ready_hook(), timeout=_READY_TIMEOUT_S)
            except TimeoutError:
                log.warning("control_plane_not_ready", waited_s=_READY_TIMEOUT_S)
        # join only now: the term this worker hands out must follow every epoch on router.shares
        self.consumer.subscribe([self.settings.topic_requests], listener=ReloadOnAssign(self))
        session_s = self.settings.session_timeout_ms / 1000.0
        while not self.should_stop:
            asked_at, assignments = time.monotonic(), self._assignments
            try:
                fetched = await self.consumer.getmany(timeout_ms=100, max_records=self.settings.max_batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a batch that cannot be decoded is skipped; else broker trouble
                if is_decode_error(exc) and await self._skip_poison(exc):
                    continue
                self.metrics.broker_errors.labels("fetch").inc()
                log.warning("fetch_failed", error=repr(exc))
                await asyncio.sleep(_RETRY_S)
                continue
            if not fetched:
                await self._restart_lost_partitions()
                continue
            if self.should_stop:
                continue  # uncommitted records are fetched again after a restart
            fetched_at = time.monotonic()
            if fetched_at - asked_at > session_s:  # frozen inside the fetch: the records may not be ours
                self._stale = (fetched_at, assignments)  # an assignment meanwhile ends it at once
                log.warning("fetch_stalled", held_s=round(fetched_at - asked_at, 3))
            if self._suspended():
                self._rewind([fetched])
                await asyncio.sleep(0.1)
                continue
            await self._wait_reloaded(fetched)
            async with self._busy:
                await self._handle(fetched, fetched_at)

    async def _skip_poison(self, exc: BaseException) -> bool:
        """After a fetch that failed on its bytes (streams/poison.py): fetch again what the failed call
        dropped, place the decodable records before the bad batch, then dead-letter and skip that batch
        alone. False when no partition holds a bad batch (the caller retries it as broker trouble)."""
        c, s = self.consumer, self.settings
        try:
            async with self._busy:
                previous = self._inflight
                if not await self.settle():
                    self._rewind([previous.fetched] if previous is not None else [])
                    return False
                owned = sorted(c.assignment())
                starts = [(tp, await c.position(tp)) for tp in owned]
                starts = [(tp, at) for tp, at in starts if at < (c.highwater(tp) or at + 1)]
                max_bytes = consumer_kwargs(s)["max_partition_fetch_bytes"]
                probe = await find_poison(c._client, starts, max_bytes)  # aiokafka has no public client
                await self._refetch_dropped(owned)
                if probe is None or probe.skip is None:
                    return False
                if probe.good and not await self._place_now({probe.tp: probe.good}):
                    return True  # not published now: the next fetch finds the batch again
                await self._dead_letter_skip(probe.tp, probe.skip)
        except Exception as err:  # the probe or the dead letter failed: retried like a failed fetch
            log.warning("batch_skip_failed", error=repr(err)[:200], cause=repr(exc)[:200])
            return False
        return True

    async def _refetch_dropped(self, owned: list[Any]) -> None:
        """Seek every partition back to its committed offset: a failed ``getmany`` drops the records it
        had drained from other partitions although their positions moved (all else is committed here)."""
        c = self.consumer
        for tp in owned:
            target = await c.committed(tp)
            if target is None:
                target = (await c.beginning_offsets([tp]))[tp]
            if await c.position(tp) > target:
                c.seek(tp, target)

    async def _place_now(self, fetched: dict[Any, list[Any]]) -> bool:
        """Decide, publish and commit ``fetched`` before going on; False when that did not happen."""
        await self._handle(fetched, time.monotonic())
        current = self._inflight
        if current is None:
            return False
        if not await self.settle():
            self._rewind([current.fetched])
            return False
        return True

    async def _dead_letter_skip(self, tp: Any, skip: Skip) -> None:
        """Dead-letter one skipped batch, commit past it, move the consumer past it, count and log it."""
        acks = await self._publish(self.settings.topic_dlq, [(0, None, skip_letter(skip), [])])
        await asyncio.gather(*acks)
        await self.consumer.commit({tp: skip.last + 1})
        self.consumer.seek(tp, skip.last + 1)
        self.metrics.skipped_batches.labels(skip.topic, "dataplane").inc()
        self.metrics.record_dead_letter(skip.topic, "batch")
        log.error(
            "batch_skipped",
            topic=skip.topic,
            partition=skip.partition,
            first_offset=skip.first,
            last_offset=skip.last,
            error=skip.error,
        )

    def _suspended(self) -> bool:
        """True for one session after a freeze (a batch or a fetch held past a session) unless a new
        assignment came meanwhile.

        A worker that was frozen past its session still believes in its old assignment when it wakes, and
        its next fetch answers at once (fetches are not checked against the group): it would publish
        decisions on partitions that moved, before its heartbeat learns of the rebalance. So after a
        freeze nothing is processed until the group assigned partitions again, or a session passed
        without a rebalance (nothing had moved).
        """
        if self._stale is None:
            return False
        since, seen = self._stale
        if self._assignments > seen or time.monotonic() - since > self.settings.session_timeout_ms / 1000.0:
            self._stale = None
            log.info("stale_suspension_ended", rebalanced=self._assignments > seen)
            return False
        return True

    async def _wait_reloaded(self, fetched: dict[Any, list[Any]]) -> None:
        """Hold a batch until the placements of its partitions are reloaded.

        aiokafka hands a new assignment to the fetcher before it runs the rebalance listener (the reload),
        so records of a newly assigned partition can arrive first; decided then, a redelivered request
        would get a new decision instead of the one already published. A partition no longer assigned is
        not waited for (``_still_owned`` drops its records).
        """
        deadline = time.monotonic() + _RELOAD_TIMEOUT_S + 5.0
        while time.monotonic() < deadline:
            owned = self.consumer.assignment()
            if all(tp in self._reloaded or tp not in owned for tp in fetched):
                return
            await asyncio.sleep(0.01)

    async def _restart_lost_partitions(self) -> None:
        """Restart from the beginning any partition whose position is past its high watermark.

        That happens when the broker lost the log (tansu keeps it in memory) but an offset of the old log
        was committed; Kafka answers such a fetch with OFFSET_OUT_OF_RANGE and the consumer resets to the
        earliest offset, but tansu answers with nothing, so the partition would never be read again.
        """
        for tp in self.consumer.assignment():
            try:
                high = self.consumer.highwater(tp)
                if high is not None and await self.consumer.position(tp) > high:
                    self.metrics.broker_errors.labels("offset_reset").inc()
                    log.warning("position_past_end_reset", partition=tp.partition, high_watermark=high)
                    await self.consumer.seek_to_beginning(tp)
            except Exception as exc:  # the partition moved meanwhile: its new owner checks it
                log.info("position_check_skipped", partition=tp.partition, error=repr(exc)[:200])

    def _still_owned(self, fetched: dict[Any, list[Any]], fetched_at: float) -> bool:
        """False when this batch may already belong to another worker (we lost partitions, or stalled
        longer than a session, e.g. a stopped process): publishing it could contradict the new owner."""
        if time.monotonic() - fetched_at > self.settings.session_timeout_ms / 1000.0:
            return False
        owned = self.consumer.assignment()
        return all(tp in owned for tp in fetched)

    async def _handle(self, fetched: dict[Any, list[Any]], fetched_at: float) -> None:
        """Decide one fetched batch, then (once the previous batch is settled) publish it and leave its
        acks and commit in flight while the next batch is fetched and decided."""
        work = self._prepare(fetched)
        previous = self._inflight
        if previous is not None and not await self.settle():
            # the previous batch was not acknowledged or not committed: fetch from its start again (this
            # batch came after it; its decisions stay remembered, so the retry publishes the same ones)
            self._rewind([previous.fetched, fetched])
            await asyncio.sleep(_RETRY_S)
            return
        m = self.metrics
        if not self._still_owned(fetched, fetched_at):
            # drop it unpublished: whoever owns the partitions now decides these requests
            self.live.forget([p["request_id"] for p in work.placements])
            m.broker_errors.labels("stale_batch").inc()
            log.warning(
                "batch_dropped_stale", requests=work.requests, held_s=round(time.monotonic() - fetched_at, 3)
            )
            if time.monotonic() - fetched_at > self.settings.session_timeout_ms / 1000.0:  # frozen, not moved
                self._stale = (time.monotonic(), self._assignments)
            self._rewind([fetched])
            return
        try:
            acks = await self._publish(self.settings.topic_placements, work.out)
            acks += await self._publish(self.settings.topic_dlq, work.dead)
        except Exception as exc:  # could not even be handed to the producer: fetch the batch again
            self._failed("publish", exc, work.requests)
            self._rewind([fetched])
            await asyncio.sleep(_RETRY_S)
            return
        self._inflight = _InFlight(fetched, asyncio.ensure_future(self._finish(acks, work, fetched)))

    def _prepare(self, fetched: dict[Any, list[Any]]) -> _Work:
        """Decode every record, decide the valid ones with one kernel call, encode; no I/O."""
        started = time.perf_counter()
        s, m = self.settings, self.metrics
        reqs: list[RequestIds] = []
        recs: list[Any] = []
        rows: list[Row] = []
        clock = Clock(time.time(), s.max_clock_skew_s)
        dead: list[Outgoing] = []
        names = s.forwarded_header_names
        for tp in sorted(fetched, key=lambda x: x.partition):
            for rec in fetched[tp]:
                got = self._check(rec, clock)
                if not isinstance(got, Rejected):
                    reqs.append(got[0])
                    rows.append(got[1])
                    recs.append(rec)
                    continue
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
        decided = self.live.decide(reqs, rows, decided_at=clock.now, clock=clock.now)
        parts = self._placement_partitions
        out: list[Outgoing] = [  # keyed by request id, whatever the request's own key
            (rec.partition % parts, r.request_id.encode(), value, forwarded(rec.headers, names))
            for r, rec, value in zip(reqs, recs, decided.values, strict=True)
        ]
        m.batch_seconds.observe(time.perf_counter() - started)
        m.batch_size.observe(len(reqs) + len(dead))
        return _Work(
            requests=len(reqs),
            out=out,
            dead=dead,
            placements=decided.placements,
            produced_at_s=[r.timestamp / 1000.0 for r in recs],
            repeated=decided.repeated,
        )

    async def _finish(self, acks: list[Any], work: _Work, fetched: dict[Any, list[Any]]) -> bool:
        """Wait for every ack of a published batch, then commit its offsets; count it only then."""
        try:
            await asyncio.gather(*acks)
            await self.consumer.commit({tp: msgs[-1].offset + 1 for tp, msgs in fetched.items()})
        except Exception as exc:  # not acknowledged or not committed: the main loop rewinds
            self._failed("publish", exc, work.requests)
            return False
        self.batches += 1
        try:  # no metrics failure may stop the data plane
            self.metrics.duplicates.inc(work.repeated)
            self.metrics.record_placements(work.placements, work.produced_at_s)
            self._update_lag(fetched)
        except Exception as exc:
            self.metrics.metrics_errors.inc()
            log.error("metrics_update_failed", error=repr(exc)[:200])
        return True

    async def settle(self) -> bool:
        """Wait for the batch in flight (acks and commit); False when it failed. True when none is."""
        current, self._inflight = self._inflight, None
        if current is None:
            return True
        return await current.done

    def _failed(self, op: str, exc: BaseException, requests: int) -> None:
        self.metrics.broker_errors.labels(op).inc()
        log.warning("publish_failed", error=repr(exc), requests=requests)

    def _rewind(self, batches: list[dict[Any, list[Any]]]) -> None:
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

    async def reload_placements(self, assigned: set[Any]) -> None:
        """Remember the placements last published for newly assigned partitions (streams/reload.py)."""
        await reload_placements(self.settings, self.live, assigned, self._placement_partitions)

    def _check(self, rec: Any, clock: Clock) -> tuple[RequestIds, Row] | Rejected:
        """Decode and check one record, returning it with its kernel row; any failure becomes a Rejected."""
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
            return Rejected(error=f"could not be checked: {type(exc).__name__}", field=None)

    async def _publish(self, topic: str, items: list[Outgoing]) -> list[Any]:
        """Send (partition, key, value, headers) items with the batch API; the futures of their acks."""
        return await publish(self.producer, topic, items)

    def guard_capacity_share(self, held: int) -> None:
        """Guard ``held / total`` of each region's capacity window (``RegionState.set_capacity_share``)."""
        share = min(1.0, max(held, 1) / self.total_partitions)
        self.live.scorer.state.set_capacity_share(share)
        log.info("capacity_share_set", partitions=held, total=self.total_partitions, share=round(share, 4))

    @property
    def assigned(self) -> int:
        """Request partitions this worker holds now."""
        return 0 if self.consumer is None else len(self.consumer.assignment())

    @property
    def total_partitions(self) -> int:
        """Partitions of the request topic (at least those held)."""
        parts = (
            None
            if self.consumer is None
            else self.consumer.partitions_for_topic(self.settings.topic_requests)
        )
        return len(parts) if parts else max(1, self.assigned)

    def _update_lag(self, fetched: dict[Any, list[Any]]) -> None:
        """Consumer lag of the partitions just processed."""
        for tp, msgs in fetched.items():
            high = self.consumer.highwater(tp)
            if high is not None:
                self.metrics.lag.labels(str(tp.partition)).set(max(0, high - (msgs[-1].offset + 1)))
