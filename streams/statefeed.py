"""Every worker's copy of the region state, read from the log itself.

Each worker reads ``grid.signals``, ``region.status``, ``router.shares`` and ``grid.forecasts`` from the
beginning with its own group-less consumer (every partition, every record) and applies them to its
``Decider`` between batches: signals value by value into each region's value history, statuses and
forecasts in event time, shares only when they verify under a term of the request group
(streams/leadership.py). Workers that read the same log hold the same state: the log is the replicated
state. (faust GlobalTables were measured not to replicate to a second worker here, faust-streaming issue
#283; a group-less reader has no such failure mode.)

Validation and dead-lettering happen once for the group, in the control plane's intake (streams/intake.py,
with the checks of streams/validation.py); this reader applies the same checks (router/clock.py: nothing
dated ahead of the router's clock) and skips, counting by reason, what it cannot use. A shares message of a
term this worker has not entered yet waits for it.

A batch the Kafka client cannot decode (streams/poison.py) would stop this reader for good: the records
before it are applied, the batch alone is skipped, counted in
``carbon_router_skipped_batches_total{reader="statefeed"}`` (so ``/healthz`` shows it) and logged
(``batch_skipped``); its dead letter is written once, by the reader that validates the topic for the group.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from mode import Service

from router.decider import Decider
from router.problems import Problem
from streams.clientargs import consumer_kwargs
from streams.codec import Clock, check_region, decode_forecast, decode_signal, decode_status
from streams.leadership import Leadership, Term, Verdict, judge
from streams.metrics import Metrics
from streams.poison import find_poison, is_decode_error
from streams.settings import Settings

__all__ = ["StateFeed"]

log = structlog.get_logger("carbon_router.statefeed")


class StateFeed(Service):
    """A group-less reader of the state topics that keeps a Decider's region state and duals current."""

    def __init__(
        self, settings: Settings, live: Decider, leadership: Leadership, metrics: Metrics, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.live = live
        self.leadership = leadership
        self.metrics = metrics
        self.consumer: Any = None
        self._targets: dict[Any, int] = {}
        #: per partition, the offset after the last record applied (where a re-read must start)
        self._next: dict[Any, int] = {}
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
        self._next = dict(await self.consumer.beginning_offsets(parts))
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
                if is_decode_error(exc) and await self._skip_poison(exc):
                    continue
                log.warning("state_fetch_failed", error=repr(exc))
                await asyncio.sleep(1.0)
                continue
            clock = Clock(time.time(), self.settings.max_clock_skew_s)
            for tp, msgs in got.items():
                self._take(tp, msgs, clock)

    def _take(self, tp: Any, msgs: list[Any], clock: Clock) -> None:
        """Apply one partition's records in order and note how far this reader has come."""
        for msg in msgs:
            self._apply(tp.topic, msg.value, clock)
        if msgs:
            self._moved(tp, msgs[-1].offset + 1)

    def _moved(self, tp: Any, next_offset: int) -> None:
        self._next[tp] = next_offset
        target = self._targets.get(tp)
        if target is not None and next_offset >= target:
            del self._targets[tp]
        if not self._targets and not self.caught_up.is_set():
            self.caught_up.set()
            log.info("state_caught_up", **self.applied, signals_version=self.live.scorer.state.version)

    async def _skip_poison(self, exc: BaseException) -> bool:
        """After a fetch that failed on its bytes: re-read from where this reader is, apply the records
        before the bad batch and move past that batch alone (see the module docstring). False when no
        partition holds a bad batch (the caller retries it as broker trouble)."""
        c = self.consumer
        try:
            owned = sorted(c.assignment())
            for tp in owned:  # the failed call drained other partitions' records and dropped them
                if tp in self._next and await c.position(tp) != self._next[tp]:
                    c.seek(tp, self._next[tp])
            starts = [(tp, self._next[tp]) for tp in owned if tp in self._next]
            starts = [(tp, at) for tp, at in starts if at < (c.highwater(tp) or at + 1)]
            max_bytes = consumer_kwargs(self.settings, group=False)["max_partition_fetch_bytes"]
            probe = await find_poison(c._client, starts, max_bytes)  # aiokafka has no public client
        except Exception as err:
            log.warning("batch_skip_failed", reader="statefeed", error=repr(err)[:200], cause=repr(exc)[:200])
            return False
        if probe is None or probe.skip is None:
            return False
        skip, tp = probe.skip, probe.tp
        self._take(tp, probe.good, Clock(time.time(), self.settings.max_clock_skew_s))
        c.seek(tp, skip.last + 1)
        self._moved(tp, skip.last + 1)
        self.metrics.skipped_batches.labels(skip.topic, "statefeed").inc()
        log.error(
            "batch_skipped",
            reader="statefeed",
            topic=skip.topic,
            partition=skip.partition,
            first_offset=skip.first,
            last_offset=skip.last,
            error=skip.error,
        )
        return True

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
        if not isinstance(got, Problem):
            got = check_region(got.region, live.plan) or got
        if isinstance(got, Problem):
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
        tenants = self.live.scorer.budgets.ids
        nu = [msg.nu_usd_per_g.get(t, 0.0) for t in tenants] if msg.nu_usd_per_g else None
        if self.live.set_duals(msg.version, mu, nu):
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
