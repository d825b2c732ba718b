"""Reloading the placements last published for newly assigned request partitions (the dedup memory), and
the sticky sessions' records of those partitions (``router.sessions``, compacted: every session's latest).

Called by ``streams.ownership.ReloadOnAssign`` on every assignment (README.md, "Running on Apache Kafka",
the data plane).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from router.decider import Decider
from streams.clientargs import consumer_kwargs
from streams.settings import Settings

__all__ = ["RELOAD_TIMEOUT_S", "reload_placements", "reload_sessions"]

log = structlog.get_logger("carbon_router.dataplane")

#: Longest time one reload reads the placements topic (s).
RELOAD_TIMEOUT_S = 30.0


async def reload_placements(
    s: Settings, live: Decider, assigned: set[Any], placement_partitions: int
) -> None:
    """Remember the placements last published for newly assigned partitions.

    A request whose placement was published but whose offset was not committed (the previous owner
    died, or lost the partition, before committing) is fetched again; remembering the tail of its
    placements partition makes it get the decision already published instead of a new one.
    """
    from aiokafka import TopicPartition

    parts = sorted(
        {TopicPartition(s.topic_placements, tp.partition % placement_partitions) for tp in assigned}
    )
    if not parts or s.dedup_cache_size == 0:
        return
    first: set[str] = set()
    tail = max(1, min(s.dedup_cache_size // len(parts), 2 * s.max_batch))
    loaded = await _read_to_end(s, parts, tail, lambda value: _remember_first(live, value, first))
    log.info("placements_reloaded", partitions=len(parts), placements=loaded)


def _remember_first(live: Decider, value: bytes, first: set[str]) -> int:
    """Remember one reloaded placement unless an earlier copy of its request was reloaded (1 when
    remembered).

    The first copy in the log is the decision consumers saw first, so it wins over later copies (a frozen
    worker's late batch) and over this worker's own memory of the request.
    """
    try:
        p = orjson.loads(value)
        rid = p["request_id"]
        if not isinstance(rid, str) or rid in first:
            return 0
        live.remember(p, value)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 0
    first.add(rid)
    return 1


async def reload_sessions(s: Settings, live: Decider, assigned: set[Any], partitions: int) -> None:
    """Read the sessions partitions of newly assigned request partitions from their start into the session
    table, so that a session keeps its region, its time there and its latest request across a restart or a
    move to another worker (a record whose session the table holds in a later state is ignored)."""
    from aiokafka import TopicPartition

    parts = sorted({TopicPartition(s.topic_sessions, tp.partition % partitions) for tp in assigned})
    if not parts:
        return
    restored = await _read_to_end(
        s, parts, None, lambda value: int(value is not None and live.restore_session(value))
    )
    log.info("sessions_reloaded", partitions=len(parts), sessions=restored)


async def _read_to_end(s: Settings, parts: list[Any], tail: int | None, take: Callable[[Any], int]) -> int:
    """Feed every record value of ``parts`` (the last ``tail`` of each, or all when None), up to the end
    each had when the call began, to ``take``; returns the sum of what it returned. Gives up after
    ``RELOAD_TIMEOUT_S``."""
    from aiokafka import AIOKafkaConsumer

    reader = AIOKafkaConsumer(**consumer_kwargs(s, group=False))
    await reader.start()
    taken = 0
    try:
        reader.assign(parts)
        ends = await reader.end_offsets(parts)
        begins = await reader.beginning_offsets(parts)
        todo = {}
        for tp in parts:
            start = begins[tp] if tail is None else max(begins[tp], ends[tp] - tail)
            if ends[tp] > start:
                reader.seek(tp, start)
                todo[tp] = ends[tp]
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while todo and time.monotonic() < deadline:
            got = await reader.getmany(*todo, timeout_ms=200)
            for tp, msgs in got.items():
                for m in msgs:
                    taken += take(m.value)
                if msgs and msgs[-1].offset + 1 >= todo.get(tp, 0):
                    todo.pop(tp, None)
    finally:
        await reader.stop()
    return taken
