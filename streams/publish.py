"""Publishing with aiokafka's batch API: one batch per partition, split when it fills up."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from streams.headers import Headers

__all__ = ["Outgoing", "StaleBatchError", "publish"]

#: one message to publish: (partition, key, value, headers)
Outgoing = tuple[int, bytes | None, bytes, Headers]


class StaleBatchError(Exception):
    """Publishing stopped part way: the batch may belong to another worker now (``still_ours`` said so)."""


async def publish(
    producer: Any, topic: str, items: list[Outgoing], still_ours: Callable[[], bool] | None = None
) -> list[Any]:
    """Send (partition, key, value, headers) items with the batch API; returns the futures of their acks.

    Handing a produce batch over may wait for the one before it to leave; ``still_ours`` is asked after
    every such wait, and publishing stops (``StaleBatchError``) when it says False, so a worker that froze
    part way does not go on publishing decisions another worker now makes."""
    by_partition: dict[int, list[tuple[bytes | None, bytes, Headers]]] = defaultdict(list)
    for part, key, value, headers in items:
        by_partition[part].append((key, value, headers))
    acks: list[Any] = []

    async def send(batch: Any, part: int) -> None:
        acks.append(await producer.send_batch(batch, topic, partition=part))
        if still_ours is not None and not still_ours():
            raise StaleBatchError(f"publishing stopped after {len(acks)} produce batches")

    for part, rows in by_partition.items():
        batch = producer.create_batch()
        for key, value, headers in rows:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                await send(batch, part)
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise ValueError(f"a {len(value)}-byte message does not fit in an empty batch")
        if batch.record_count():
            await send(batch, part)
    return acks
