"""The control plane's validation agents (README.md, "Running on Apache Kafka", the control plane): every
record of the state topics is checked once, by one worker, and a bad one is dead-lettered with its reason.

- ``grid.signals``, ``region.status``, ``grid.forecasts``: one faust agent each (one worker per record,
  through faust's consumer group) decodes and bounds the record (``streams.codec``) and checks that its
  region is in the topology.
- ``router.shares``: verified against the leadership terms (``streams.leadership.judge``); a message of a
  term this worker has not entered yet is waited for up to a session, then refused as forged.

A bad record never changes state: every worker's region state comes from ``streams.statefeed``, which
applies valid records only; these agents give each bad one its single dead letter and count it. One failing
record never stops an agent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust
import structlog

from router.decider import Decider
from streams.codec import (
    Clock,
    Rejected,
    check_region,
    dead_letter,
    decode_forecast,
    decode_signal,
    decode_status,
)
from streams.headers import forwarded
from streams.leadership import Leadership, Verdict, judge
from streams.metrics import Metrics
from streams.settings import Settings
from streams.topics import ControlTopics

__all__ = ["Validation", "add_validation_agents"]

log = structlog.get_logger("carbon_router.control")


class Validation:
    """Checks one state record and dead-letters it when bad; never raises."""

    def __init__(
        self, settings: Settings, live: Decider, metrics: Metrics, leadership: Leadership, dlq_topic: Any
    ) -> None:
        self.settings = settings
        self.live = live
        self.metrics = metrics
        self.leadership = leadership
        self.dlq_topic = dlq_topic
        self._names = settings.forwarded_header_names

    async def reject(
        self, topic: str, key: bytes | None, value: bytes | None, rej: Rejected, ev: Any
    ) -> None:
        """Dead-letter one record with its reason, forwarding its trace headers."""
        s, msg = self.settings, ev.message
        letter = dead_letter(
            value,
            rej,
            topic=topic,
            partition=msg.partition,
            offset=msg.offset,
            max_raw_bytes=s.max_message_bytes,
        )
        headers = [(k, v or b"") for k, v in forwarded(getattr(msg, "headers", None), self._names)]
        await self.dlq_topic.send(key=key, value=letter, headers=headers or None)
        self.metrics.record_dead_letter(topic, rej.field)
        log.info("message_rejected", topic=topic, field=rej.field, error=rej.error)

    async def check(self, topic: str, decode: Any, ev: Any) -> bool:
        """Validate one signal, status or forecast record; dead-letter it when bad. Never raises."""
        s = self.settings
        try:
            clock = Clock(time.time(), s.max_clock_skew_s)
            got = decode(ev.value, s.max_message_bytes, clock=clock, allow_extra=s.extra_fields == "ignore")
            if not isinstance(got, Rejected):
                got = check_region(got.region, self.live.plan) or got
            if isinstance(got, Rejected):
                await self.reject(topic, ev.key, ev.value, got, ev)
                return False
        except Exception as exc:  # one bad record never stops the agent
            log.error("record_check_failed", topic=topic, error=repr(exc))
            return False
        return True

    async def check_shares(self, ev: Any) -> None:
        """Dead-letter shares that are forged, stale or invalid (a term not entered yet is waited for)."""
        s, leadership = self.settings, self.leadership
        try:
            verdict = judge(ev.value, leadership)
            deadline = time.monotonic() + s.session_timeout_ms / 1000.0
            while verdict.outcome == "ahead" and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                verdict = judge(ev.value, leadership)
            if verdict.outcome == "ahead":
                verdict = Verdict("forged", problem="from an epoch this group never reached", field="epoch")
            self.metrics.shares.labels(verdict.outcome).inc()
            if verdict.outcome != "applied":
                rej = Rejected(verdict.problem or verdict.outcome, verdict.field)
                await self.reject(s.topic_shares, ev.key, ev.value, rej, ev)
        except Exception as exc:  # one bad record never stops the agent
            log.error("record_check_failed", topic=s.topic_shares, error=repr(exc))


def add_validation_agents(
    app: faust.App,
    settings: Settings,
    live: Decider,
    metrics: Metrics,
    leadership: Leadership,
    topics: ControlTopics,
) -> None:
    """Add one validation agent per state topic to ``app`` (see the module docstring)."""
    s = settings
    v = Validation(s, live, metrics, leadership, topics.dlq)

    @app.agent(topics.signals)
    async def on_signal(stream: Any) -> None:
        async for ev in stream.events():
            ok = await v.check(s.topic_signals, decode_signal, ev)
            metrics.signals.labels("valid" if ok else "rejected").inc()

    @app.agent(topics.status)
    async def on_status(stream: Any) -> None:
        async for ev in stream.events():
            await v.check(s.topic_status, decode_status, ev)

    @app.agent(topics.forecasts)
    async def on_forecast(stream: Any) -> None:
        async for ev in stream.events():
            await v.check(s.topic_forecasts, decode_forecast, ev)

    @app.agent(topics.shares)
    async def on_shares(stream: Any) -> None:
        """Dead-letter shares that are forged, stale or invalid (a term not entered yet is waited for)."""
        async for ev in stream.events():
            await v.check_shares(ev)
