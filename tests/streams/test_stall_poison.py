"""Stall detection and the batch-by-batch decoder that finds exactly which offsets cannot be read."""

from __future__ import annotations

import struct
import time

import orjson
from aiokafka.errors import CorruptRecordException, KafkaConnectionError, UnsupportedCodecError
from aiokafka.structs import TopicPartition

from streams.poison import Skip, decode_partition, is_decode_error, skip_letter
from streams.stall import StallWatch


def _batch(base: int, values: list[bytes], lie_codec: int | None = None) -> bytes:
    from aiokafka.record.default_records import DefaultRecordBatchBuilder
    from aiokafka.record.util import calc_crc32c

    b = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 10_000_000)
    for i, v in enumerate(values):
        b.append(i, timestamp=int(time.time() * 1000), key=b"k", value=v, headers=[("traceparent", b"00-x")])
    raw = bytearray(b.build())
    struct.pack_into(">q", raw, 0, base)
    if lie_codec is not None:
        attrs = struct.unpack_from(">h", raw, 21)[0]
        struct.pack_into(">h", raw, 21, (attrs & ~7) | lie_codec)
        struct.pack_into(">I", raw, 17, calc_crc32c(bytes(raw[21:])))
    return bytes(raw)


TP = TopicPartition("req", 3)


def test_decoder_returns_the_records_before_the_bad_batch_and_its_exact_range() -> None:
    """Good batch, snappy-labelled plain batch, good batch: the first batch's records, then offsets 2..4."""
    raw = _batch(0, [b"a", b"b"]) + _batch(2, [b"x", b"y", b"z"], lie_codec=2) + _batch(5, [b"c"])
    probe = decode_partition(TP, raw, 0)
    assert [r.value for r in probe.good] == [b"a", b"b"]
    assert probe.good[0].headers == (("traceparent", b"00-x"),)
    assert probe.skip is not None
    assert (probe.skip.topic, probe.skip.partition, probe.skip.first, probe.skip.last) == ("req", 3, 2, 4)


def test_decoder_starts_inside_a_batch_and_finds_nothing_in_good_bytes() -> None:
    """Records before the start are left out, as aiokafka does; readable bytes give no skip."""
    probe = decode_partition(TP, _batch(0, [b"a", b"b", b"c"]) + _batch(3, [b"d"]), 1)
    assert [r.offset for r in probe.good] == [1, 2, 3]
    assert probe.skip is None


def test_a_bad_crc_is_a_skip_of_its_batch() -> None:
    """A batch whose CRC does not match its bytes is skipped whole, from the start offset."""
    bad = bytearray(_batch(0, [b"a", b"b"]))
    bad[-1] ^= 0xFF
    probe = decode_partition(TP, bytes(bad) + _batch(2, [b"c"]), 0)
    assert probe.good == []
    assert probe.skip is not None
    assert (probe.skip.first, probe.skip.last) == (0, 1)
    assert "CRC" in probe.skip.error


def test_only_errors_about_bytes_are_probed() -> None:
    """Codec, corrupt-record and non-Kafka errors are probed; broker errors are not."""
    assert is_decode_error(UnsupportedCodecError("x"))
    assert is_decode_error(CorruptRecordException("x"))
    assert is_decode_error(ValueError("snappy: corrupt input"))
    assert not is_decode_error(KafkaConnectionError("down"))


def test_skip_letter_names_topic_partition_range_and_error() -> None:
    """The dead letter of a skip carries the offsets as fields and in words."""
    letter = orjson.loads(skip_letter(Skip("req", 3, 10, 12, "DecompressionError: bad")))
    assert (letter["topic"], letter["partition"], letter["offset"], letter["last_offset"]) == (
        "req",
        3,
        10,
        12,
    )
    assert letter["field"] == "batch"
    assert "offsets 10..12 (3 records)" in letter["error"]


def test_stall_needs_lag_and_no_progress_for_longer_than_the_timeout() -> None:
    """Behind its end at one position past the timeout is stalled; progress or no lag clears it."""
    w = StallWatch(timeout_s=10)
    w.observe("dataplane", "req", 0, position=5, high=9, now=0.0)
    w.observe("dataplane", "req", 1, position=9, high=9, now=0.0)  # at its end: idle, never stalled
    w.observe("dataplane", "req", 0, position=5, high=12, now=11.0)
    w.observe("dataplane", "req", 1, position=9, high=9, now=11.0)
    (s,) = w.stalled(11.0)
    assert (s.reader, s.topic, s.partition, s.position, s.lag, s.stalled_s) == (
        "dataplane",
        "req",
        0,
        5,
        7,
        11.0,
    )
    w.observe("dataplane", "req", 0, position=6, high=12, now=12.0)  # moved: the clock starts again
    assert w.stalled(20.0) == []
    assert w.stalled(22.5)[0].partition == 0
    w.forget("dataplane", set())
    assert w.stalled(100.0) == []
