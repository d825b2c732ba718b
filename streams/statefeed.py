"""Every worker's copy of the region state, read from the log itself.

Each worker reads ``grid.signals``, ``region.status``, ``router.shares`` and ``grid.forecasts`` from the
beginning with its own group-less consumer (every partition, every record) and applies them to its
``Decider`` between batches: signals value by value into each region's value history, statuses and
forecasts in event time, shares only when they verify under a term of the request group
(streams/leadership.py). Workers that read the same log hold the same state: the log is the replicated
state. (faust GlobalTables were measured not to replicate to a second worker here, faust-streaming issue
#283; a group-less reader has no such failure mode.)

Validation and dead-lettering happen once, in the control plane's agents (streams/validation.py); this reader
applies the same checks (router/clock.py: nothing dated ahead of the router's clock) and skips, counting by
reason, what it cannot use. A shares message of a term this worker has not entered yet waits for it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from mode import Service

from router.decider import Decider
from streams.clientargs import consumer_kwargs
from streams.codec import Clock, Rejected, check_region, decode_forecast, decode_signal, decode_status
from streams.leadership import Leadership, Term, Verdict, judge
from streams.settings import Settings

__all__ = ["StateFeed"]

log = structlog.get_logger("carbon_router.statefeed")


class StateFeed(Service):
    """A group-less reader of the state topics that keeps a Decider's region state and duals current."""

    def __init__(self, settings: Settings, live: Decider, leadership: Leadership, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.live = live
        self.leadership = leadership
        self.consumer: Any = None
        self._targets: dict[Any, int] = {}
        self.caught_up = asyncio.Event()
        self.applied = {"signal": 0, "status": 0, "shares": 0, "forecast": 0, "skipped": 0}
        self.latest_shares: dict[str, Any] | None = None  # the installed re-solve, for the web page
        self._pending: bytes | None = None  # shares of a term not entered yet
        leadership.on_term(self._on_term)

    async def on_start(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        s = self.settings
        topics = (s.topic_signals, s.topic_status, s.topic_shares, s.topic_forecasts)
        self.consumer = AIOKafkaConsumer(**consumer_kwargs(s, group=False))
        await self.consumer.start()
        parts: list[Any] = []
        for t in topics:
            ids = await self._partitions(t)
            parts.extend(TopicPartition(t, p) for p in ids)
        self.consumer.assign(parts)
        await self.consumer.seek_to_beginning(*parts)
        ends = await self.consumer.end_offsets(parts)
        self._targets = {tp: off for tp, off in ends.items() if off > 0}
        if not self._targets:
            self.caught_up.set()

    async def _partitions(self, topic: str) -> set[int]:
        for _ in range(50):
            got = self.consumer.partitions_for_topic(topic)
            if got:
                return set(got)
            await self.consumer._client.force_metadata_update()  # aiokafka has no public refresh
            await asyncio.sleep(0.1)
        return {0}

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.task
    async def _read(self) -> None:
        while not self.should_stop:
            try:
                got = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("state_fetch_failed", error=repr(exc))
                await asyncio.sleep(1.0)
                continue
            clock = Clock(time.time(), self.settings.max_clock_skew_s)
            for tp, msgs in got.items():
                for msg in msgs:
                    self._apply(tp.topic, msg.value, clock)
                target = self._targets.get(tp)
                if target is not None and msgs and msgs[-1].offset + 1 >= target:
                    del self._targets[tp]
            if not self._targets and not self.caught_up.is_set():
                self.caught_up.set()
                log.info("state_caught_up", **self.applied, signals_version=self.live.scorer.state.version)

    def _skip(self, topic: str, why: str) -> None:
        self.applied["skipped"] += 1
        log.debug("state_record_skipped", topic=topic, error=why[:200])

    def _apply(self, topic: str, value: bytes | None, clock: Clock) -> None:
        s, live = self.settings, self.live
        extra = s.extra_fields == "ignore"
        if topic == s.topic_shares:
            self._apply_shares(value)
            return
        got: Any
        if topic == s.topic_signals:
            got = decode_signal(value, s.max_message_bytes, clock=clock, allow_extra=extra)
        elif topic == s.topic_forecasts:
            got = decode_forecast(value, s.max_message_bytes, clock=clock, allow_extra=extra)
        else:
            got = decode_status(value, s.max_message_bytes, clock=clock, allow_extra=extra)
        if not isinstance(got, Rejected):
            got = check_region(got.region, live.plan) or got
        if isinstance(got, Rejected):
            self._skip(topic, got.error)
        elif topic == s.topic_signals:
            self.applied["signal"] += live.apply_signal(got)
        elif topic == s.topic_forecasts:
            self.applied["forecast"] += live.apply_forecast(got)
        else:
            self.applied["status"] += live.apply_status(got)

    def _apply_shares(self, value: bytes | None) -> None:
        verdict = judge(value, self.leadership)
        if verdict.msg is not None:  # the next term this worker hands out follows every epoch on the topic
            self.leadership.saw_epoch(verdict.msg.epoch)
        if verdict.outcome == "ahead":
            self._pending = value  # the term it belongs to arrives with this worker's next assignment
            return
        self._install(verdict)

    def _install(self, verdict: Verdict) -> None:
        msg = verdict.msg
        if verdict.outcome != "applied" or msg is None:
            self._skip(self.settings.topic_shares, verdict.problem or verdict.outcome)
            return
        try:
            mu = [msg.mu_usd_per_wh[r] for r in self.live.plan.region_ids]
        except KeyError as exc:
            self._skip(self.settings.topic_shares, f"no dual for region {exc}")
            return
        if self.live.set_duals(msg.version, mu):
            self.applied["shares"] += 1
            self.latest_shares = msg.model_dump()

    def _on_term(self, term: Term) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            verdict = judge(pending, self.leadership)
            if verdict.outcome == "ahead":
                self._pending = pending
            else:
                self._install(verdict)
