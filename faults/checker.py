"""Read a topic from offset 0 and compare ``placements`` with what the load generator had acknowledged.

The checker never trusts the worker's own counters: it reads every record of ``placements`` (and
``placements.dlq``) from the beginning of each partition up to the end offsets, and matches them with the
requests whose produce the broker acknowledged. A request is *lost* when it was acknowledged and has no
placement; a *duplicate* is any placement record beyond the first for a request_id; duplicates must be
identical to the first decision for their request_id except ``decided_at`` (``differing`` counts the
request_ids where they are not).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.settings import Settings, consumer_kwargs

__all__ = [
    "Acked",
    "Check",
    "Rec",
    "SendLog",
    "capacity_overruns",
    "check_placements",
    "read_topic",
    "same_decision",
]


@dataclass(frozen=True, slots=True)
class Rec:
    """One record read back from a topic."""

    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None

    def json(self) -> dict[str, Any]:
        """The value as a JSON object."""
        return dict(orjson.loads(self.value or b"{}"))


@dataclass(frozen=True, slots=True)
class Acked:
    """Where the broker stored one acknowledged request, and when the ack came back (wall clock)."""

    partition: int
    offset: int
    at: float


@dataclass(slots=True)
class SendLog:
    """What the load generator sent: acknowledged requests per request_id, garbage, failures."""

    sent: int = 0
    acked: dict[str, list[Acked]] = field(default_factory=dict)
    garbage_sent: int = 0
    garbage_acked: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def fail(self, exc: BaseException | None) -> None:
        """Count one send the broker did not acknowledge, by error type."""
        self.failed += 1
        name = "cancelled" if exc is None else type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1

    @property
    def acked_count(self) -> int:
        """Acknowledged request messages (copies of one request_id count each) plus acknowledged garbage."""
        return sum(len(v) for v in self.acked.values()) + self.garbage_acked


@dataclass(slots=True)
class Check:
    """The comparison of ``placements`` with the acknowledged requests."""

    placed: int = 0
    lost: int = 0
    duplicates: int = 0
    differing: int = 0
    unknown: int = 0
    lost_ids: list[str] = field(default_factory=list)
    differing_ids: list[str] = field(default_factory=list)
    differing_fields: dict[str, int] = field(default_factory=dict)
    by_id: dict[str, list[tuple[Rec, dict[str, Any]]]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The JSON-able part (no records)."""
        return {
            "placed": self.placed,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "differing": self.differing,
            "unknown": self.unknown,
            "lost_ids": self.lost_ids[:20],
            "differing_ids": self.differing_ids[:20],
            "differing_fields": self.differing_fields,
        }


def same_decision(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The fields (``decided_at`` aside) in which two placements differ; empty when they are identical."""
    keys = (set(a) | set(b)) - {"decided_at"}
    return sorted(k for k in keys if a.get(k) != b.get(k))


def check_placements(acked: dict[str, list[Acked]], records: Iterable[Rec]) -> Check:
    """Match placement records (read from offset 0, in partition/offset order) with acknowledged requests."""
    out = Check()
    for rec in sorted(records, key=lambda r: (r.timestamp_ms, r.partition, r.offset)):
        p = rec.json()
        out.by_id.setdefault(str(p.get("request_id")), []).append((rec, p))
    for rid, rows in out.by_id.items():
        if rid not in acked:
            out.unknown += 1
            continue
        out.placed += 1
        out.duplicates += len(rows) - 1
        first = rows[0][1]
        diff: set[str] = set()
        for _, other in rows[1:]:
            diff.update(same_decision(first, other))
        if diff:
            out.differing += 1
            out.differing_ids.append(rid)
            for k in diff:
                out.differing_fields[k] = out.differing_fields.get(k, 0) + 1
    out.lost_ids = sorted(rid for rid in acked if rid not in out.by_id)
    out.lost = len(out.lost_ids)
    return out


def read_topic(
    settings: Settings,
    topic: str,
    *,
    done: Callable[[list[Rec]], bool] | None = None,
    timeout_s: float = 60.0,
) -> list[Rec]:
    """Every record of ``topic`` from offset 0: once ``done(records)`` holds (or at the timeout), read on up
    to the end offsets of that moment and return all records in partition/offset order."""
    return asyncio.run(_read(settings, topic, done, timeout_s))


async def _read(
    settings: Settings, topic: str, done: Callable[[list[Rec]], bool] | None, timeout_s: float
) -> list[Rec]:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, **consumer_kwargs(settings, group=False))
    await c.start()
    out: list[Rec] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not (done is not None and done(out)):
            await _poll(c, out)
            if done is None:
                break
        assigned = c.assignment()
        while not assigned and time.monotonic() < deadline:
            await _poll(c, out)
            assigned = c.assignment()
        ends = await c.end_offsets(list(assigned)) if assigned else {}
        settle = time.monotonic() + 10.0
        while time.monotonic() < settle and not await _at_end(c, ends):
            await _poll(c, out)
    finally:
        await c.stop()
    return sorted(out, key=lambda r: (r.partition, r.offset))


async def _at_end(c: Any, ends: dict[Any, int]) -> bool:
    for tp, end in ends.items():
        if await c.position(tp) < end:
            return False
    return True


async def _poll(c: Any, out: list[Rec]) -> None:
    got = await c.getmany(timeout_ms=200, max_records=20_000)
    for msgs in got.values():
        out.extend(Rec(m.partition, m.offset, int(m.timestamp), m.key, m.value) for m in msgs)


def capacity_overruns(
    placements: Iterable[dict[str, Any]], cap_wh: dict[str, float], window_s: float
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Replay one worker's placements through its capacity windows; the placements that overran one.

    Decision order is the kernel's: batches by ``decided_at``, inside a batch by ``event_ts`` (the first
    record per request_id only). A region's window holds the IT energy placed on it, in insertion order,
    and drops entries from the front while their ``event_ts <= t - window_s`` at each decision's ``t``
    (as ``router.kernel``). Returns the overruns and the peak use of each region's window (fraction of
    ``cap_wh``).
    """
    first: dict[str, dict[str, Any]] = {}
    for p in sorted(placements, key=lambda p: (p["decided_at"], p["event_ts"])):
        first.setdefault(str(p["request_id"]), p)
    windows: dict[str, deque[tuple[float, float]]] = {r: deque() for r in cap_wh}
    used = dict.fromkeys(cap_wh, 0.0)
    peak = dict.fromkeys(cap_wh, 0.0)
    out: list[dict[str, Any]] = []
    for p in first.values():
        t = float(p["event_ts"])
        for r, win in windows.items():
            while win and win[0][0] <= t - window_s:
                used[r] -= win.popleft()[1]
        region = p.get("region")
        if p.get("status") != "placed" or region not in windows:
            continue
        e = float(p["energy_wh"])
        windows[region].append((t, e))
        used[region] += e
        peak[region] = max(peak[region], used[region] / cap_wh[region] if cap_wh[region] else math.inf)
        if used[region] > cap_wh[region] * (1 + 1e-9) + 1e-6:
            out.append({"request_id": p["request_id"], "region": region, "used_wh": used[region]})
    return out, {r: round(v, 4) for r, v in peak.items()}
