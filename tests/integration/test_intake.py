"""The intake (streams/intake.py) checks each state record once for the group, starting where the faust
group that did this job before committed: an upgrade neither dead-letters old records again nor skips new
ones."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from router.models import DeadLetter
from streams.clientargs import consumer_kwargs
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration


def _bad_signal(n: int) -> bytes:
    return orjson.dumps({"region": f"nowhere-{n}", "ts": 1776038400.0, "price_usd_per_mwh": 50.0})


def _commit_as(settings: Settings, group_id: str, topic: str, offset: int) -> None:
    """Commit ``offset`` on partition 0 of ``topic`` for ``group_id`` (as faust's group had)."""

    async def run() -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        c = AIOKafkaConsumer(**{**consumer_kwargs(settings), "group_id": group_id})
        await c.start()
        try:
            tp = TopicPartition(topic, 0)
            c.assign([tp])
            await c.commit({tp: offset})
        finally:
            await c.stop()

    asyncio.run(run())


def test_intake_starts_where_the_faust_group_committed(settings: Settings, tmp_path: Path) -> None:
    asyncio.run(ensure_topics(settings))
    produce(settings, settings.topic_signals, [(b"x", _bad_signal(1)), (b"x", _bad_signal(2))])
    _commit_as(settings, f"{settings.group_id}-control", settings.topic_signals, 1)  # record 0 was checked
    w = WorkerProc(settings, "w-intake", tmp_path)
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(b"x", _bad_signal(3))])
        dead = drain(settings, settings.topic_dlq, 2, timeout_s=30, settle_s=3.0)
    finally:
        assert w.stop() == 0
    letters = [DeadLetter.model_validate(orjson.loads(m.value)) for m in dead]
    assert sorted(d.offset for d in letters if d.offset is not None) == [1, 2]
    assert all(d.field == "region" for d in letters)
