"""An open-loop load generator that replays the bundled real data through Kafka at a chosen rate.

Event time is compressed: the bundled 6-hour timeline of real grid signals is mapped onto the run, so the
router sees prices and carbon change while it routes. Requests cycle through the bundled sample requests
(fresh ids per cycle) with ``ts`` on the same compressed clock; a signal is always published before the
first request whose ``ts`` is at or after the signal's own ``ts``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from router.commands import bundled

__all__ = ["LoadResult", "Timeline", "publish_initial_signals", "run_load"]


@dataclass(frozen=True, slots=True)
class Timeline:
    """The bundled signals and requests, as dicts, and their event-time span."""

    signals: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    t0: float
    span_s: float

    @classmethod
    def bundled(cls) -> Timeline:
        sig = [
            orjson.loads(x) for x in bundled("sample_signals.jsonl").read_bytes().splitlines() if x.strip()
        ]
        req = [
            orjson.loads(x) for x in bundled("sample_requests.jsonl").read_bytes().splitlines() if x.strip()
        ]
        t0 = min(s["ts"] for s in sig)
        span = max(max(r["ts"] for r in req), max(s["ts"] for s in sig)) - t0 + 1.0
        return cls(sig, req, t0, span)


@dataclass(slots=True)
class LoadResult:
    """What the generator sent."""

    requests: int = 0
    signals: int = 0
    seconds: float = 0.0


async def run_load(
    producer: Any,
    topics: dict[str, str],
    *,
    rate: float,
    duration_s: float,
    timeline: Timeline,
    stop: asyncio.Event | None = None,
    tick_s: float = 0.05,
    on_tick: Callable[[LoadResult], None] | None = None,
    signals_sent: int = 0,
    sent_at: dict[str, float] | None = None,
) -> LoadResult:
    """Send ``rate`` requests/s for ``duration_s`` (open loop), interleaving the timeline's signals;
    ``sent_at`` (when given) gets each request's wall time of sending, by request_id."""
    total = max(1, int(rate * duration_s))
    scale = timeline.span_s / total  # event seconds per request
    sigs = sorted(timeline.signals, key=lambda s: s["ts"])
    reqs = timeline.requests
    res = LoadResult()
    k_sig = signals_sent  # the first ``signals_sent`` signals (in ts order) were published already
    start = time.perf_counter()
    pending: list[Any] = []
    while res.requests < total and not (stop is not None and stop.is_set()):
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while res.requests < due:
            k = res.requests
            ts = timeline.t0 + k * scale
            while k_sig < len(sigs) and sigs[k_sig]["ts"] <= ts:
                s = sigs[k_sig]
                pending.append(
                    await producer.send(topics["signals"], key=s["region"].encode(), value=orjson.dumps(s))
                )
                k_sig += 1
                res.signals += 1
            base = reqs[k % len(reqs)]
            req = {**base, "request_id": f"{base['request_id']}-c{k // len(reqs)}", "ts": ts}
            if sent_at is not None:
                sent_at[req["request_id"]] = time.time()
            pending.append(
                await producer.send(
                    topics["requests"], key=req["request_id"].encode(), value=orjson.dumps(req)
                )
            )
            res.requests += 1
        if len(pending) > 10_000:
            await asyncio.gather(*pending)
            pending.clear()
        if on_tick is not None:
            on_tick(res)
        await asyncio.sleep(tick_s)
    await asyncio.gather(*pending)
    res.seconds = time.perf_counter() - start
    return res


async def publish_initial_signals(producer: Any, topics: dict[str, str], timeline: Timeline) -> int:
    """Publish the signals at the timeline's first instant (the state before any request); their count."""
    first = sorted((s for s in timeline.signals if s["ts"] <= timeline.t0), key=lambda s: s["ts"])
    acks = [
        await producer.send(topics["signals"], key=s["region"].encode(), value=orjson.dumps(s)) for s in first
    ]
    await asyncio.gather(*acks)
    return len(first)
