"""Publishing stops part way when the batch stops being ours (streams/publish.py): on the broker, the
produce batches handed over before ``still_ours`` said False are written and none after it."""

from __future__ import annotations

import asyncio

import pytest

from streams.publish import StaleBatchError, publish
from streams.settings import Settings, producer_kwargs
from streams.testing.harness import drain
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_publishing_stops_when_the_batch_is_no_longer_ours(settings: Settings) -> None:
    topic = settings.topic_placements
    parts = settings.request_partitions
    assert parts >= 2
    items = [(p, f"k{p}-{i}".encode(), b"v" * 100, []) for p in range(parts) for i in range(5)]
    asked: list[int] = []

    def still_ours() -> bool:
        asked.append(1)
        return len(asked) < 2  # a freeze noticed after the second produce batch

    async def run() -> int:
        from aiokafka import AIOKafkaProducer

        await ensure_topics(settings)
        producer = AIOKafkaProducer(**producer_kwargs(settings, whole_batches=True))
        await producer.start()
        try:
            with pytest.raises(StaleBatchError, match="after 2 produce batches"):
                await publish(producer, topic, items, still_ours)
            acks = await publish(producer, topic, items[:1])  # the producer itself goes on
            await asyncio.gather(*acks)
        finally:
            await producer.stop()
        return len(asked)

    assert asyncio.run(run()) == 2
    got = drain(settings, topic, expect=11, settle_s=2.0)
    by_part: dict[int, int] = {}
    for m in got:
        by_part[m.partition] = by_part.get(m.partition, 0) + 1
    # partitions 0 and 1 got their batch (and partition 0 the extra message); no later partition got any
    assert by_part == {0: 6, 1: 5}
