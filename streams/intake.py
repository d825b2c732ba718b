"""The control plane's intake: every record of the state and provider topics, handled once for the group.

One aiokafka consumer per worker, in the consumer group ``<group_id>-intake``, reads ``grid.signals``,
``region.status``, ``grid.forecasts``, ``router.shares`` and the raw provider topics. Each record is checked
(``streams.validation``: a bad one gets its dead letter) or converted (``streams.adapters``: signals and
forecasts out); what that gives is published, the acks awaited, then the offsets committed, so a crash
repeats a record's handling rather than losing it. Every worker's region state itself comes from
``streams.statefeed``, which reads the same topics without a group.

A batch the Kafka client cannot decode is skipped alone, as in the data plane (``streams.poison``): the
records before it are handled, the batch gets one dead letter (field ``batch``, its offset range), is
committed past and counted in ``carbon_router_skipped_batches_total{reader="intake"}``. (faust's agents,
which did this job before, crash the worker on such a batch, and again on every restart while it is in
the log.) A shares record of a term this worker has not entered yet pauses its partition, not the intake,
until the term arrives or a session has passed (then it is refused as forged).

A partition the group has no offset for starts where faust's group ``<group_id>-control`` (which read these
topics before) committed, else at the beginning: an upgrade neither repeats nor skips records.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiokafka.abc import ConsumerRebalanceListener
from mode import Service

from streams.adapters import Adapters
from streams.clientargs import consumer_kwargs, producer_kwargs
from streams.metrics import Metrics
from streams.poison import Skip, committed_offset, find_poison, is_decode_error, skip_letter
from streams.settings import Settings
from streams.validation import WAIT, Out, Validation

__all__ = ["Intake"]

log = structlog.get_logger("carbon_router.intake")

_RETRY_S = 1.0
_RELEASE_EVERY_S = 1.0
_RESUME_AFTER_S = 0.2


class Intake(Service):
    """The group's one reader of the state and provider topics (see the module docstring)."""

    def __init__(
        self, settings: Settings, metrics: Metrics, validation: Validation, adapters: Adapters, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.metrics = metrics
        self.validation = validation
        self.adapters = adapters
        self.consumer: Any = None
        self.producer: Any = None
        #: a paused shares partition -> (offset of the record waiting for its term, when it stops waiting)
        self._waiting: dict[Any, tuple[int, float]] = {}
        self._paused_at: dict[Any, float] = {}
        self._released_at = 0.0

    @property
    def group_id(self) -> str:
        return f"{self.settings.group_id}-intake"

    async def on_start(self) -> None:
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        s = self.settings
        self.producer = AIOKafkaProducer(**producer_kwargs(s))
        await self.producer.start()
        topics = [*self.validation.topics, *self.adapters.topics]
        previous = await _committed_by(s, f"{s.group_id}-control", topics)
        self.consumer = AIOKafkaConsumer(**{**consumer_kwargs(s), "group_id": self.group_id})
        await self.consumer.start()
        self.consumer.subscribe(topics, listener=_StartWhereFaustStopped(self, previous))

    async def on_stop(self) -> None:
        for client in (self.consumer, self.producer):
            if client is not None:
                await client.stop()

    @Service.task
    async def _read(self) -> None:
        while not self.should_stop:
            try:
                got = await self.consumer.getmany(timeout_ms=100, max_records=500)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a batch that cannot be decoded is skipped; else broker trouble
                if is_decode_error(exc) and await self._skip_poison(exc):
                    continue
                self.metrics.broker_errors.labels("fetch").inc()
                log.warning("intake_fetch_failed", error=repr(exc)[:300])
                await asyncio.sleep(_RETRY_S)
                continue
            outs, commits = self._handle(got)
            if time.monotonic() - self._released_at >= _RELEASE_EVERY_S:
                self._released_at = time.monotonic()
                outs.extend(self.adapters.due())
            if not await self._publish_and_commit(outs, commits):
                await self._rewind(list(got))
                await asyncio.sleep(_RETRY_S)
            self._resume_waiting()

    def _handle(self, got: dict[Any, list[Any]]) -> tuple[list[Out], dict[Any, int]]:
        """What the fetched records give, and the offsets to commit once it is published."""
        outs: list[Out] = []
        commits: dict[Any, int] = {}
        for tp, records in got.items():
            for r in records:
                result = self._one(tp, r)
                if isinstance(result, str):  # WAIT: the partition is paused at this record
                    break
                outs.extend(result)
                commits[tp] = r.offset + 1
        return outs, commits

    def _one(self, tp: Any, record: Any) -> list[Out] | str:
        if record.topic in self.adapters.providers:
            return self.adapters.handle(record)
        waited = self._waiting.get(tp)
        expired = waited is not None and waited[0] == record.offset and time.monotonic() >= waited[1]
        result = self.validation.check(record, expired=expired)
        if result == WAIT:  # read it again once the term may have arrived; other partitions go on
            if waited is None or waited[0] != record.offset:
                session_s = self.settings.session_timeout_ms / 1000.0
                self._waiting[tp] = (record.offset, time.monotonic() + session_s)
            self.consumer.seek(tp, record.offset)
            self.consumer.pause(tp)
            self._paused_at[tp] = time.monotonic()
        elif waited is not None and waited[0] == record.offset:
            del self._waiting[tp]
        return result

    def _resume_waiting(self) -> None:
        now = time.monotonic()
        for tp, at in list(self._paused_at.items()):
            if now - at >= _RESUME_AFTER_S:
                del self._paused_at[tp]
                self.consumer.resume(tp)

    async def _publish_and_commit(self, outs: list[Out], commits: dict[Any, int]) -> bool:
        """Publish, await every ack, then commit; False (nothing committed) when any of it failed."""
        try:
            acks = [
                await self.producer.send(topic, value, key=key, headers=headers or None)
                for topic, key, value, headers in outs
            ]
            await asyncio.gather(*acks)
            if commits:
                await self.consumer.commit(commits)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # published again after the rewind: at least once
            self.metrics.broker_errors.labels("publish").inc()
            log.warning("intake_publish_failed", error=repr(exc)[:300])
            return False
        return True

    async def _rewind(self, tps: list[Any]) -> None:
        """Seek ``tps`` back to their committed offsets (the records are handled again)."""
        for tp in tps:
            try:
                self.consumer.seek(tp, await committed_offset(self.consumer, tp))
            except Exception as exc:
                log.warning("intake_rewind_failed", partition=str(tp), error=repr(exc)[:200])

    async def _skip_poison(self, exc: BaseException) -> bool:
        """After a fetch that failed on its bytes: handle the records before the bad batch, dead-letter the
        batch, commit past it. False when no partition holds a bad batch (retried as broker trouble)."""
        c = self.consumer
        try:
            owned = sorted(c.assignment())
            await self._rewind(owned)  # the failed call dropped what it drained from other partitions
            starts = [(tp, await c.position(tp)) for tp in owned]
            starts = [(tp, at) for tp, at in starts if at < (c.highwater(tp) or at + 1)]
            max_bytes = consumer_kwargs(self.settings)["max_partition_fetch_bytes"]
            probe = await find_poison(c._client, starts, max_bytes)  # aiokafka has no public client
            if probe is None or probe.skip is None:
                return False
            outs, commits = self._handle({probe.tp: probe.good})
            handled_all = not probe.good or commits.get(probe.tp) == probe.good[-1].offset + 1
            if handled_all:  # else a shares record before it waits for its term: the batch comes again
                outs.append((self.settings.topic_dlq, None, skip_letter(probe.skip), []))
                commits[probe.tp] = probe.skip.last + 1
            if not await self._publish_and_commit(outs, commits):
                return False
        except Exception as err:
            log.warning("batch_skip_failed", reader="intake", error=repr(err)[:200], cause=repr(exc)[:200])
            return False
        if commits.get(probe.tp) == probe.skip.last + 1:
            c.seek(probe.tp, probe.skip.last + 1)
            self._count_skip(probe.skip)
        return True

    def _count_skip(self, skip: Skip) -> None:
        self.metrics.skipped_batches.labels(skip.topic, "intake").inc()
        self.metrics.record_dead_letter(skip.topic, "batch")
        log.error(
            "batch_skipped",
            reader="intake",
            topic=skip.topic,
            partition=skip.partition,
            first_offset=skip.first,
            last_offset=skip.last,
            error=skip.error,
        )


async def _committed_by(s: Settings, group_id: str, topics: list[str]) -> dict[Any, int]:
    """The offsets ``group_id`` committed on ``topics`` (empty when it never did or cannot be asked)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(**{**consumer_kwargs(s), "group_id": group_id})
    try:
        await c.start()
        out: dict[Any, int] = {}
        for t in topics:
            for p in c.partitions_for_topic(t) or ():
                at = await c.committed(TopicPartition(t, p))
                if at is not None:
                    out[TopicPartition(t, p)] = at
        return out
    except Exception as exc:  # a first start or a broker that cannot tell: start at the beginning
        log.info("intake_no_previous_offsets", group=group_id, error=repr(exc)[:200])
        return {}
    finally:
        await c.stop()


class _StartWhereFaustStopped(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    """On assignment, a partition the intake group never committed starts at faust's group's offset."""

    def __init__(self, intake: Intake, previous: dict[Any, int]) -> None:
        self.intake, self.previous = intake, previous

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        c = self.intake.consumer
        for tp in assigned:
            at = self.previous.get(tp)
            if at is not None and await c.committed(tp) is None:
                c.seek(tp, at)
                log.info(
                    "intake_starts_at_previous_offset", topic=tp.topic, partition=tp.partition, offset=at
                )
