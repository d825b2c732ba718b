"""A second, independent Kafka client (librdkafka, ``confluent-kafka``) against the live worker on tansu.

A confluent producer in each codec Kafka defines writes requests with keys and headers (W3C trace context,
one configured header, one that must not travel), tombstones, empty values and a 1 MiB value; a confluent
consumer reads the placements and dead letters. Every valid request is placed with the decision `carbon-router
score` makes for it, keyed by its request id and carrying its trace context; every invalid one is
dead-lettered with its reason, key and trace context.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.models import DeadLetter
from streams.settings import Settings
from streams.testing import WorkerProc, produce
from tests.integration.offline import score
from tests.integration.test_worker import _scenario

pytestmark = pytest.mark.integration

confluent_kafka = pytest.importorskip("confluent_kafka")

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PER_CODEC = 12


def _trace(n: int) -> bytes:
    return f"00-{n:032x}-{n:016x}-01".encode()


def _produce_all(settings: Settings, req: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each codec's share of ``req`` plus a tombstone, an empty value and a 1 MiB value; what was sent."""
    sent: dict[str, list[Any]] = {"valid": [], "invalid": []}
    for k, codec in enumerate(CODECS):
        p = confluent_kafka.Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "compression.type": codec,
                "message.max.bytes": 4_000_000,
                "linger.ms": 5,
            }
        )
        for n, r in enumerate(req[k * PER_CODEC : (k + 1) * PER_CODEC]):
            trace = _trace(1000 * k + n + 1)
            headers = [
                ("traceparent", trace),
                ("tracestate", b"vendor=1"),
                ("X-Tenant", b"acme"),
                ("x-no", b"1"),
            ]
            p.produce(
                settings.topic_requests, key=r["request_id"].encode(), value=orjson.dumps(r), headers=headers
            )
            sent["valid"].append((r, trace))
        big = orjson.dumps(dict(req[0], request_id=f"big-{codec}", pad="x" * 1_048_576))
        for key, value, why in (
            (f"tomb-{codec}", None, "no value"),
            (f"empty-{codec}", b"", "empty"),
            (f"big-{codec}", big, "more than the limit"),
        ):
            trace = _trace(900_000 + len(sent["invalid"]))
            p.produce(
                settings.topic_requests, key=key.encode(), value=value, headers=[("traceparent", trace)]
            )
            sent["invalid"].append((key, why, trace))
        assert p.flush(30) == 0
    return sent


def _consume(settings: Settings, topics: list[str], expect: int, timeout_s: float = 60) -> list[Any]:
    c = confluent_kafka.Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe(topics)
    out: list[Any] = []
    deadline = time.time() + timeout_s
    try:
        while len(out) < expect and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                out.append(m)
    finally:
        c.close()
    return out


def test_confluent_producer_in_every_codec_with_headers_tombstones_and_large_values(
    settings: Settings, tmp_path: Path
) -> None:
    """Every codec, headers, keys, tombstones, empty and 1 MiB values through the worker, read back by
    librdkafka: placements equal `score`'s, keyed by request id, with trace context; the rest dead-lettered.
    """
    sig, req = _scenario()
    w = WorkerProc(settings, "w-confluent", tmp_path, forward_headers="x-tenant")
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        w.wait(lambda h: h["signals_version"] >= len(sig))
        sent = _produce_all(settings, req)
        got = _consume(
            settings,
            [settings.topic_placements, settings.topic_dlq],
            len(sent["valid"]) + len(sent["invalid"]),
        )
    finally:
        assert w.stop() == 0
    placed = {m.key(): m for m in got if m.topic() == settings.topic_placements}
    dead = {m.key(): m for m in got if m.topic() == settings.topic_dlq}
    valid = [r for r, _ in sent["valid"]]
    assert len(placed) == len(valid) == len(CODECS) * PER_CODEC
    offline = {p["request_id"]: p for p in score(tmp_path, sig, valid)}
    for r, trace in sent["valid"]:
        m = placed[r["request_id"].encode()]  # keyed by request id
        live = orjson.loads(m.value())
        assert {k: v for k, v in live.items() if k != "decided_at"} == {
            k: v for k, v in offline[r["request_id"]].items() if k != "decided_at"
        }
        assert dict(m.headers()) == {"traceparent": trace, "tracestate": b"vendor=1", "X-Tenant": b"acme"}
    assert len(dead) == len(sent["invalid"])
    for key, why, trace in sent["invalid"]:
        m = dead[key.encode()]
        letter = DeadLetter.model_validate(orjson.loads(m.value()))
        assert letter.topic == settings.topic_requests
        assert why in letter.error
        assert dict(m.headers()) == {"traceparent": trace}
