"""Stall detection: a partition that has lag but makes no progress for longer than a set time.

Every second the worker samples the position and the high watermark of each partition its readers hold
(``sample``); ``StallWatch`` remembers since when each one has had lag at an unchanged position. A partition
whose position has not moved for longer than ``CARBON_ROUTER_STALL_TIMEOUT_S`` while records wait is
*stalled*: ``/healthz`` answers 503 and names it. A partition at its end (no lag) is never stalled, however
long it idles. Positions come from the consumer, so a stall is seen whatever its cause (a batch no probe
could explain, a hung fetch, a frozen loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Stall", "StallWatch", "sample"]


@dataclass(frozen=True, slots=True)
class Stall:
    """One stalled partition: who reads it, where it stands, how far behind and for how long."""

    reader: str
    topic: str
    partition: int
    position: int
    lag: int
    stalled_s: float


class StallWatch:
    """Since when each partition has had lag at an unchanged position."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        #: (reader, topic, partition) -> (position, high watermark, since when at that position with lag)
        self._seen: dict[tuple[str, str, int], tuple[int, int, float]] = {}

    def observe(self, reader: str, topic: str, partition: int, position: int, high: int, now: float) -> None:
        """One sample of a partition's position and high watermark at ``now`` (monotonic seconds)."""
        key = (reader, topic, partition)
        if position >= high:
            self._seen.pop(key, None)
            return
        prev = self._seen.get(key)
        since = prev[2] if prev is not None and prev[0] == position else now
        self._seen[key] = (position, high, since)

    def forget(self, reader: str, keep: set[tuple[str, int]]) -> None:
        """Drop the partitions of ``reader`` that it no longer holds."""
        for key in [k for k in self._seen if k[0] == reader and (k[1], k[2]) not in keep]:
            del self._seen[key]

    def stalled(self, now: float) -> list[Stall]:
        """The partitions stalled longer than the timeout, in (reader, topic, partition) order."""
        return [
            Stall(reader, topic, part, pos, high - pos, round(now - since, 3))
            for (reader, topic, part), (pos, high, since) in sorted(self._seen.items())
            if now - since > self.timeout_s
        ]


async def sample(watch: StallWatch, reader: str, consumer: Any, now: float) -> None:
    """Observe every partition ``consumer`` holds (skipped while it has none or is not started)."""
    if consumer is None:
        return
    held = set(consumer.assignment())
    watch.forget(reader, {(tp.topic, tp.partition) for tp in held})
    for tp in held:
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            position = await consumer.position(tp)
        except Exception:  # the partition moved meanwhile, or has no position yet
            continue
        watch.observe(reader, tp.topic, tp.partition, position, high, now)
