"""Skip exactly what the Kafka client cannot decode, and nothing else.

aiokafka decodes a fetched partition batch by batch inside ``getmany``; when one batch cannot be read (a codec
the client lacks, a CRC or size that does not add up, a record it fails on, such as a header name that is not
UTF-8) ``getmany`` raises, returns nothing, and raises again on every retry: the partition stalls. Worse,
records of other partitions drained in the same call are dropped while their positions have advanced.

``find_poison`` re-reads each suspect partition from a given offset with one raw Fetch request and decodes
it the way aiokafka's fetcher does (CRC check, control batches left out, records before the start left
out), batch by batch, so the first batch that fails is known exactly: its first and last offsets. The
records before it come back decoded (``Probe.good``), so the caller handles them like any fetched records;
only the failing batch is skipped. When no batch fails, the error was not about the bytes (``None``) and the
caller treats it as broker trouble. ``skip_letter`` is the dead letter of a skip; ``is_decode_error`` tells
which exceptions are worth a probe. Used by ``streams.dataplane``, ``streams.intake`` and
``streams.statefeed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.errors import CorruptRecordException, KafkaError, UnsupportedCodecError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord

from router.models import DeadLetter

__all__ = [
    "Probe",
    "Skip",
    "committed_offset",
    "decode_partition",
    "find_poison",
    "is_decode_error",
    "skip_letter",
]

_READ_UNCOMMITTED = 0


@dataclass(frozen=True, slots=True)
class Skip:
    """One batch that cannot be decoded: where it is and why."""

    topic: str
    partition: int
    first: int
    last: int
    error: str


@dataclass(frozen=True, slots=True)
class Probe:
    """What a raw re-read of one partition found: the decodable records before the first bad batch, and
    that batch (None when every batch read)."""

    tp: Any
    good: list[Any] = field(default_factory=list)
    skip: Skip | None = None


def is_decode_error(exc: BaseException) -> bool:
    """True for an exception that may come from the bytes of a batch rather than from the broker."""
    if isinstance(exc, UnsupportedCodecError | CorruptRecordException):
        return True
    return not isinstance(exc, KafkaError)  # codec libraries, struct, UnicodeDecodeError...


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _record(tp: Any, r: Any) -> Any:
    """An aiokafka ConsumerRecord from a decoded record, as the consumer would have returned it."""
    key, value = r.key, r.value
    return ConsumerRecord(
        tp.topic,
        tp.partition,
        r.offset,
        r.timestamp,
        r.timestamp_type,
        key,
        value,
        r.checksum,
        -1 if key is None else len(key),
        -1 if value is None else len(value),
        tuple(r.headers),
    )


def decode_partition(tp: Any, raw: bytes, start: int) -> Probe:
    """Decode a partition's fetched bytes from ``start`` batch by batch; stop at the first bad batch."""
    records = MemoryRecords(raw)
    good: list[Any] = []
    while records.has_next():
        try:
            batch = records.next_batch()
        except Exception as exc:  # the batch header itself is broken: its extent is unknown, skip one offset
            return Probe(tp, good, Skip(tp.topic, tp.partition, start, start, _error_text(exc)))
        if batch is None:
            break
        if batch.next_offset <= start:
            continue
        try:
            if not batch.validate_crc():
                raise CorruptRecordException(f"Invalid CRC - {tp}")
            got = [] if batch.is_control_batch else [_record(tp, r) for r in batch if r.offset >= start]
        except Exception as exc:
            first = max(start, batch.base_offset)
            return Probe(
                tp, good, Skip(tp.topic, tp.partition, first, batch.next_offset - 1, _error_text(exc))
            )
        good.extend(got)
        start = batch.next_offset
    return Probe(tp, good, None)


async def _fetch_raw(client: Any, tp: Any, offset: int, max_bytes: int, wait_ms: int) -> bytes:
    """The raw record bytes the partition's leader returns from ``offset`` (one Fetch, answered as soon as
    there is a byte; some brokers, tansu among them, answer a fetch that may not wait with nothing)."""
    leader = client.cluster.leader_for_partition(tp)
    if leader is None or leader < 0:
        await client.force_metadata_update()
        leader = client.cluster.leader_for_partition(tp)
    req = FetchRequest(
        wait_ms, 1, max_bytes, _READ_UNCOMMITTED, [(tp.topic, [(tp.partition, offset, max_bytes)])]
    )
    resp = await client.send(leader, req)
    for _topic, partitions in resp.topics:
        for partition, error_code, _high, *data in partitions:
            if partition == tp.partition:
                if error_code:
                    raise KafkaError(f"fetch of {tp} at {offset} failed with error code {error_code}")
                return bytes(data[-1] or b"")
    return b""


async def find_poison(
    client: Any, starts: Iterable[tuple[Any, int]], max_bytes: int, wait_ms: int = 500
) -> Probe | None:
    """The first partition of ``starts`` (partition, offset) whose bytes from that offset hold a batch
    that cannot be decoded, with the records before it; None when every partition reads."""
    for tp, start in starts:
        probe = decode_partition(tp, await _fetch_raw(client, tp, start, max_bytes, wait_ms), start)
        if probe.skip is not None:
            return probe
    return None


async def committed_offset(consumer: Any, tp: Any) -> int:
    """Where the group reads ``tp`` from after a failed fetch: its committed offset, else the beginning."""
    target = await consumer.committed(tp)
    if target is None:
        target = (await consumer.beginning_offsets([tp]))[tp]
    return int(target)


def skip_letter(skip: Skip) -> bytes:
    """The dead letter of a skipped batch: topic, partition, offsets ``first..last`` and the error."""
    letter = DeadLetter(
        error=(
            f"batch could not be decoded and was skipped: offsets {skip.first}..{skip.last} "
            f"({skip.last - skip.first + 1} records); {skip.error}"
        ),
        field="batch",
        raw="",
        topic=skip.topic,
        partition=skip.partition,
        offset=skip.first,
        last_offset=skip.last,
    )
    return orjson.dumps(letter.model_dump())
