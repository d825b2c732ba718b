"""Every worker's copy of the region state, read from the log itself.

Each worker reads ``grid.signals``, ``region.status``, ``router.shares`` and ``grid.forecasts`` from the
beginning with its own group-less consumer (every partition, every record), merges signals in event time
(value by value), keeps the latest forecast per region (by ``generated_at``) and applies them to its kernel
inputs between batches. Workers that read the same log hold the same state: the log is the
replicated state. (faust GlobalTables were measured not to replicate to a second worker here, which is
faust-streaming issue #283; a group-less reader has no such failure mode.) Validation and dead-lettering of
bad records happen once, in the control plane's agents; this reader skips what it cannot use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from mode import Service
from pydantic import ValidationError

from router.live import LiveRouter, merge_signal
from router.models import SharesMessage
from streams.codec import Rejected, check_region, decode_forecast, decode_signal, decode_status
from streams.settings import Settings, consumer_kwargs

__all__ = ["StateFeed"]

log = structlog.get_logger("carbon_router.statefeed")


class StateFeed(Service):
    """A group-less reader of the state topics that keeps a LiveRouter's region state and duals current."""

    def __init__(self, settings: Settings, live: LiveRouter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.live = live
        self.consumer: Any = None
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._targets: dict[Any, int] = {}
        self.caught_up = asyncio.Event()
        self.applied = {"signal": 0, "status": 0, "shares": 0, "forecast": 0, "skipped": 0}
        self.latest_shares: dict[str, Any] | None = None  # the installed re-solve, for the web page

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
            for tp, msgs in got.items():
                for msg in msgs:
                    self._apply(tp.topic, msg.value)
                target = self._targets.get(tp)
                if target is not None and msgs and msgs[-1].offset + 1 >= target:
                    del self._targets[tp]
            if not self._targets and not self.caught_up.is_set():
                self.caught_up.set()
                log.info("state_caught_up", **self.applied, signals_version=self.live.scorer.state.version)

    def _apply(self, topic: str, value: bytes | None) -> None:
        s, live = self.settings, self.live
        if topic == s.topic_signals:
            sig = decode_signal(value, s.max_message_bytes)
            if isinstance(sig, Rejected) or check_region(sig.region, live.plan) is not None:
                self.applied["skipped"] += 1
                return
            merged = merge_signal(self._snapshots.get(sig.region), sig)
            if merged is not None:
                self._snapshots[sig.region] = merged
                live.apply_snapshot(merged)
                self.applied["signal"] += 1
        elif topic == s.topic_forecasts:
            fc = decode_forecast(value, s.max_message_bytes)
            if isinstance(fc, Rejected) or check_region(fc.region, live.plan) is not None:
                self.applied["skipped"] += 1
                return
            if live.apply_forecast(fc):
                self.applied["forecast"] += 1
                log.debug("forecast_applied", region=fc.region, generated_at=fc.generated_at)
        elif topic == s.topic_status:
            st = decode_status(value, s.max_message_bytes)
            if isinstance(st, Rejected) or check_region(st.region, live.plan) is not None:
                self.applied["skipped"] += 1
                return
            live.apply_status(st)
            self.applied["status"] += 1
        else:
            try:
                msg = SharesMessage.model_validate_json(value or b"")  # JSON mode: the rows are arrays
                mu = [msg.mu_usd_per_wh[r] for r in live.plan.region_ids]
            except (ValidationError, KeyError) as exc:
                self.applied["skipped"] += 1
                log.warning("shares_skipped", error=str(exc)[:200])
                return
            if live.set_duals(msg.version, mu):
                self.applied["shares"] += 1
                self.latest_shares = msg.model_dump()
