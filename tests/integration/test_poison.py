"""A batch the Kafka client cannot decode is skipped alone: everything else on every partition is placed.

How the undecodable batch is made (real bytes in a real broker, no patching of the worker): a v2 record
batch whose attributes say snappy but whose payload is plain, uncompressed records, with a correct CRC, as a
buggy producer would write it. It is sent with a raw Produce request between two good batches on one
partition; tansu stores it as it is, and aiokafka's consumer (with cramjam) raises ``DecompressionError`` on
every fetch that returns it, which before this fix stalled the partition and dropped the other partitions'
records fetched alongside.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.models import DeadLetter
from streams.settings import Settings, producer_kwargs
from streams.testing import WorkerProc, drain, produce
from streams.topics import ensure_topics
from tests.integration.test_worker import _scenario

pytestmark = pytest.mark.integration

_SNAPPY = 2


def _batch(values: list[bytes], *, lie_codec: int | None = None) -> bytes:
    """One v2 record batch of ``values``; with ``lie_codec`` its attributes claim that codec (valid CRC)."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder
    from aiokafka.record.util import calc_crc32c

    b = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 10_000_000)
    for i, v in enumerate(values):
        b.append(i, timestamp=int(time.time() * 1000), key=None, value=v, headers=[])
    raw = bytearray(b.build())
    if lie_codec is not None:
        attrs = struct.unpack_from(">h", raw, 21)[0]
        struct.pack_into(">h", raw, 21, (attrs & ~7) | lie_codec)
        struct.pack_into(">I", raw, 17, calc_crc32c(bytes(raw[21:])))
    return bytes(raw)


def _produce_raw(settings: Settings, topic: str, partition: int, batches: list[bytes]) -> list[int]:
    """Send each raw batch to ``topic``/``partition`` with one Produce request; their base offsets."""

    async def run() -> list[int]:
        from aiokafka import AIOKafkaProducer, TopicPartition
        from aiokafka.protocol.produce import ProduceRequest

        p = AIOKafkaProducer(**producer_kwargs(settings))
        await p.start()
        try:
            await p.partitions_for(topic)
            leader = p.client.cluster.leader_for_partition(TopicPartition(topic, partition))
            bases = []
            for raw in batches:
                resp = await p.client.send(
                    leader, ProduceRequest(None, -1, 30_000, [(topic, [(partition, raw)])])
                )
                ((_, parts),) = resp.topics
                ((_, error, base, *_rest),) = parts
                assert error == 0
                bases.append(base)
            return bases
        finally:
            await p.stop()

    return asyncio.run(run())


def _counter(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, flags=re.M))


def test_undecodable_batch_is_skipped_alone_and_everything_else_is_placed(
    settings: Settings, tmp_path: Path
) -> None:
    """One partition holds good, undecodable, good batches and the others hold requests too: every
    decodable request of every partition is placed, the bad batch alone is dead-lettered with its offset
    range and the error, and /healthz and carbon_router_skipped_batches_total count one skip."""
    asyncio.run(ensure_topics(settings))
    sig, req = _scenario()
    req = req[:90]
    produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
    before, poisoned, after, rest = req[:10], req[10:13], req[13:20], req[20:]
    vals = [orjson.dumps(r) for r in req]
    bases = _produce_raw(
        settings,
        settings.topic_requests,
        1,
        [_batch(vals[:10]), _batch(vals[10:13], lie_codec=_SNAPPY), _batch(vals[13:20])],
    )
    produce(settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in rest])
    w = WorkerProc(settings, "w-poison", tmp_path)
    try:
        placed = drain(settings, settings.topic_placements, len(req) - len(poisoned), timeout_s=60)
        dead = drain(settings, settings.topic_dlq, 1, timeout_s=20)
        health = w.wait(lambda h: h["skipped_batches"] >= 1, timeout_s=20)
        metrics = w.get("/metrics").decode()
    finally:
        assert w.stop() == 0
    got: dict[str, Any] = {orjson.loads(m.value)["request_id"]: m for m in placed}
    assert set(got) == {r["request_id"] for r in before + after + rest}
    assert not {r["request_id"] for r in poisoned} & set(got)
    letters = [DeadLetter.model_validate(orjson.loads(m.value)) for m in dead]
    assert len(letters) == 1
    (letter,) = letters
    assert (letter.topic, letter.partition, letter.field) == (settings.topic_requests, 1, "batch")
    assert (letter.offset, letter.last_offset) == (bases[1], bases[2] - 1) == (10, 12)
    assert "offsets 10..12" in letter.error
    assert "DecompressionError" in letter.error
    assert health["ok"] is True
    assert health["skipped_batches"] == 1
    assert health["stalled"] == []
    assert _counter(metrics, "carbon_router_skipped_batches_total") == 1
    assert f'topic="{settings.topic_requests}"' in metrics
    assert 'reader="dataplane"' in metrics
    assert "batch_skipped" in w.log.read_text()
