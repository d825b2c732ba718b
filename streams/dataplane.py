"""The request data plane: one aiokafka consumer group over ``inference.requests``, and its fetch loop
(README.md, "Running on Apache Kafka", the data plane).

``DataPlane`` starts the clients, waits until the control plane has recovered the region state, joins the
group and fetches whole batches. Each batch is checked against partition ownership (``streams.ownership``:
after a freeze nothing is processed for a while; a newly assigned partition waits for its reload), then
decided, published and committed by the batch lifecycle (``streams.batches``: at most one batch in flight).
A fetch that fails on bytes the client cannot decode skips exactly the bad batch (``streams.poison``); any
other failure is broker trouble, counted and retried. A rebalance waits for the batch in flight before the
partitions move.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from mode import Service

from router.decider import Decider
from streams.batches import RETRY_S, BatchLifecycle
from streams.clientargs import consumer_kwargs, producer_kwargs
from streams.leadership import Leadership, TermAssignor
from streams.metrics import Metrics
from streams.ownership import Ownership, ReloadOnAssign
from streams.poison import Skip, committed_offset, find_poison, is_decode_error, skip_letter
from streams.settings import Settings

__all__ = ["DataPlane"]

log = structlog.get_logger("carbon_router.dataplane")

_READY_TIMEOUT_S = 60.0


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
        #: held while a batch (or a door call) is decided and published: decisions never interleave
        self.busy = asyncio.Lock()
        self.ownership = Ownership(settings, live)
        self.lifecycle = BatchLifecycle(settings, live, metrics, self.ownership)
        #: awaited before the first fetch: the control plane has recovered the region state
        self.ready_hook: Callable[[], Awaitable[None]] | None = None

    async def on_start(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        s, cycle = self.settings, self.lifecycle
        self.producer = cycle.producer = AIOKafkaProducer(**producer_kwargs(s, whole_batches=True))
        await self.producer.start()
        cycle.placement_partitions = len(await self.producer.partitions_for(s.topic_placements) or {0})
        assignor = TermAssignor(self.leadership)  # hands out the re-solve's leadership terms
        self.consumer = AIOKafkaConsumer(**consumer_kwargs(s), partition_assignment_strategy=(assignor,))
        cycle.consumer = self.ownership.consumer = self.consumer
        await self.consumer.start()  # joins the group only once subscribed, after the state is read
        log.info("data_plane_started", topic=s.topic_requests, group=s.group_id)

    async def on_stop(self) -> None:
        async with self.busy:  # let the batch being decided and the one in flight finish and commit
            await self.settle()
            if self.consumer is not None:
                await self.consumer.stop()
            if self.producer is not None:
                await self.producer.stop()
        log.info("data_plane_stopped", batches=self.batches)

    @property
    def batches(self) -> int:
        """Batches acknowledged and committed."""
        return self.lifecycle.committed

    @property
    def assigned(self) -> int:
        """Request partitions this worker holds now."""
        return self.ownership.assigned

    @property
    def total_partitions(self) -> int:
        """Partitions of the request topic (at least those held)."""
        return self.ownership.total_partitions

    async def settle(self) -> bool:
        """Wait for the batch in flight (acks and commit); False when it failed. True when none is."""
        return await self.lifecycle.settle()

    @Service.task
    async def _fetch_loop(self) -> None:
        if self.ready_hook is not None:
            try:
                await asyncio.wait_for(self.ready_hook(), timeout=_READY_TIMEOUT_S)
            except TimeoutError:
                log.warning("control_plane_not_ready", waited_s=_READY_TIMEOUT_S)
        own, cycle = self.ownership, self.lifecycle
        # join only now: the term this worker hands out must follow every epoch on router.shares
        self.consumer.subscribe([self.settings.topic_requests], listener=ReloadOnAssign(own, cycle))
        while not self.should_stop:
            try:
                fetched = await self.consumer.getmany(timeout_ms=100, max_records=self.settings.max_batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a batch that cannot be decoded is skipped; else broker trouble
                if is_decode_error(exc) and await self._skip_poison(exc):
                    continue
                self.metrics.broker_errors.labels("fetch").inc()
                log.warning("fetch_failed", error=repr(exc))
                await asyncio.sleep(RETRY_S)
                continue
            if not fetched:
                await self._restart_lost_partitions()
                continue
            if self.should_stop:
                continue  # uncommitted records are fetched again after a restart
            fetched_at = time.monotonic()
            own.notice_freeze(fetched_at)  # frozen since the watch last ran: the records may not be ours
            if own.suspended():
                cycle.rewind([fetched])
                await asyncio.sleep(0.1)
                continue
            await own.wait_reloaded(fetched)
            async with self.busy:
                await cycle.handle(fetched, fetched_at)

    @Service.task
    async def _watch_freezes(self) -> None:
        await self.ownership.watch_freezes(self.metrics.loop_lag.observe)

    async def _skip_poison(self, exc: BaseException) -> bool:
        """After a fetch that failed on its bytes (streams/poison.py): fetch again what the failed call
        dropped, place the decodable records before the bad batch, then dead-letter and skip that batch
        alone. False when no partition holds a bad batch (the caller retries it as broker trouble)."""
        c, s, cycle = self.consumer, self.settings, self.lifecycle
        try:
            async with self.busy:
                if not await cycle.settle():  # it rewound every batch in flight
                    return False
                owned = sorted(c.assignment())
                starts = [(tp, await c.position(tp)) for tp in owned]
                starts = [(tp, at) for tp, at in starts if at < (c.highwater(tp) or at + 1)]
                max_bytes = consumer_kwargs(s)["max_partition_fetch_bytes"]
                probe = await find_poison(c._client, starts, max_bytes)  # aiokafka has no public client
                await self._refetch_dropped(owned)
                if probe is None or probe.skip is None:
                    return False
                if probe.good and not await cycle.place_now({probe.tp: probe.good}):
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
            target = await committed_offset(c, tp)
            if await c.position(tp) > target:
                c.seek(tp, target)

    async def _dead_letter_skip(self, tp: Any, skip: Skip) -> None:
        """Dead-letter one skipped batch, commit past it, move the consumer past it, count and log it."""
        acks = await self.lifecycle.publish(self.settings.topic_dlq, [(0, None, skip_letter(skip), [])])
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
