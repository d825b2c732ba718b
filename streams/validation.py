"""Checks of the state topics' records (README.md, "Running on Apache Kafka", the control plane): each one
checked once for the group, by the worker whose intake (``streams.intake``) holds its partition, and a bad
one dead-lettered with its reason.

- ``grid.signals``, ``region.status``, ``grid.forecasts``: decoded and bounded (``streams.codec``), and its
  region must be in the topology.
- ``router.shares``: verified against the leadership terms (``streams.leadership.judge``); a message of a
  term this worker has not entered yet is waited for (``WAIT``) up to a session, then refused as forged.

A bad record never changes state: every worker's region state comes from ``streams.statefeed``, which
applies valid records only; these checks give each bad one its single dead letter and count it. Nothing
here raises on a record.
"""

from __future__ import annotations

import time
from typing import Any, Final

import structlog

from router.decider import Decider
from router.problems import Problem
from streams.codec import (
    Clock,
    check_region,
    dead_letter,
    decode_forecast,
    decode_signal,
    decode_status,
)
from streams.headers import Headers, forwarded
from streams.leadership import Leadership, Verdict, judge
from streams.metrics import Metrics
from streams.settings import Settings

__all__ = ["WAIT", "Out", "Validation"]

log = structlog.get_logger("carbon_router.control")

#: one message to publish: (topic, key, value, headers)
Out = tuple[str, bytes | None, bytes, Headers]
#: the answer for a shares record of a term this worker has not entered yet: read it again later
WAIT: Final = "wait"


class Validation:
    """Checks one state record and returns the dead letter to publish when it is bad; never raises."""

    def __init__(self, settings: Settings, live: Decider, metrics: Metrics, leadership: Leadership) -> None:
        self.settings = settings
        self.live = live
        self.metrics = metrics
        self.leadership = leadership
        self._names = settings.forwarded_header_names
        self._decoders = {
            settings.topic_signals: decode_signal,
            settings.topic_status: decode_status,
            settings.topic_forecasts: decode_forecast,
        }

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics checked here."""
        return (*self._decoders, self.settings.topic_shares)

    def reject(self, record: Any, rej: Problem) -> Out:
        """The dead letter of one record, with its reason and trace headers; counted and logged."""
        s = self.settings
        letter = dead_letter(
            record.value,
            rej,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            max_raw_bytes=s.max_message_bytes,
        )
        headers: Headers = [(k, v or b"") for k, v in forwarded(record.headers, self._names)]
        self.metrics.record_dead_letter(record.topic, rej.field)
        log.info("message_rejected", topic=record.topic, field=rej.field, error=rej.error)
        return (s.topic_dlq, record.key, letter, headers)

    def check(self, record: Any, *, expired: bool = False) -> list[Out] | str:
        """The dead letters of one record (none when it is good), or ``WAIT`` for a shares record of a term
        not entered yet (``expired``: it has waited a session; then it is refused as forged)."""
        try:
            if record.topic == self.settings.topic_shares:
                return self._check_shares(record, expired)
            return self._check_state(record)
        except Exception as exc:  # one bad record never stops the intake
            log.error("record_check_failed", topic=record.topic, error=repr(exc))
            return []

    def _check_state(self, record: Any) -> list[Out]:
        s = self.settings
        clock = Clock(time.time(), s.max_clock_skew_s)
        decode = self._decoders[record.topic]
        got = decode(record.value, s.max_message_bytes, clock=clock, allow_extra=s.extra_fields == "ignore")
        if not isinstance(got, Problem):
            got = check_region(got.region, self.live.plan) or got
        if record.topic == s.topic_signals:
            self.metrics.signals.labels("rejected" if isinstance(got, Problem) else "valid").inc()
        return [self.reject(record, got)] if isinstance(got, Problem) else []

    def _check_shares(self, record: Any, expired: bool) -> list[Out] | str:
        verdict = judge(record.value, self.leadership)
        if verdict.outcome == "ahead":
            if not expired:
                return WAIT
            verdict = Verdict("forged", problem="from an epoch this group never reached", field="epoch")
        self.metrics.shares.labels(verdict.outcome).inc()
        if verdict.outcome == "applied":
            return []
        return [self.reject(record, Problem.of(verdict.problem or verdict.outcome, verdict.field))]
