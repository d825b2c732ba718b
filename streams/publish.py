"""Publishing with aiokafka's batch API: one batch per partition, split when it fills up."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from streams.headers import Headers

__all__ = ["Outgoing", "publish"]

#: one message to publish: (partition, key, value, headers)
Outgoing = tuple[int, bytes | None, bytes, Headers]


async def publish(producer: Any, topic: str, items: list[Outgoing]) -> list[Any]:
    """Send (partition, key, value, headers) items with the batch API; returns the futures of their acks."""
    by_partition: dict[int, list[tuple[bytes | None, bytes, Headers]]] = defaultdict(list)
    for part, key, value, headers in items:
        by_partition[part].append((key, value, headers))
    acks: list[Any] = []
    for part, rows in by_partition.items():
        batch = producer.create_batch()
        for key, value, headers in rows:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                acks.append(await producer.send_batch(batch, topic, partition=part))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise ValueError(f"a {len(value)}-byte message does not fit in an empty batch")
        if batch.record_count():
            acks.append(await producer.send_batch(batch, topic, partition=part))
    return acks
