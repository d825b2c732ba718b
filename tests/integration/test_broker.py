"""The embedded tansu broker: start, topic creation, a batched produce/consume round trip, clean stop."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streams.broker import BrokerError, EmbeddedBroker
from streams.settings import Settings, client_kwargs, consumer_kwargs, producer_kwargs
from streams.topics import ensure_topics, topic_names

pytestmark = pytest.mark.integration


def test_broker_answers_on_loopback(broker: EmbeddedBroker) -> None:
    """The session broker runs and advertises a 127.0.0.1 bootstrap address."""
    assert broker.is_running()
    host, port = broker.bootstrap.split(":")
    assert host == "127.0.0.1"
    assert 0 < int(port) < 65536


def test_ensure_topics_creates_every_topic(settings: Settings) -> None:
    """ensure_topics creates all seven contract topics with their partition counts and can run twice."""

    async def run() -> tuple[list[str], dict[str, int]]:
        await ensure_topics(settings)
        await ensure_topics(settings)  # existing topics are fine
        admin = AIOKafkaAdminClient(**client_kwargs(settings))
        await admin.start()
        try:
            listed = await admin.list_topics()
            described = await admin.describe_topics(list(topic_names(settings).values()))
        finally:
            await admin.close()
        return listed, {d["topic"]: len(d["partitions"]) for d in described}

    listed, partitions = asyncio.run(run())
    names = topic_names(settings)
    assert set(names.values()) <= set(listed)
    assert partitions[names["requests"]] == partitions[names["placements"]] == settings.request_partitions
    assert partitions[names["sessions"]] == settings.request_partitions
    assert all(partitions[names[k]] == 1 for k in ("signals", "status", "dlq", "shares", "metrics"))


def test_batched_round_trip_through_a_consumer_group(settings: Settings) -> None:
    """1000 messages sent in explicit batches come back complete through a consumer group."""
    n = 1000
    topic = topic_names(settings)["requests"]

    async def run() -> tuple[dict[bytes, bytes], float]:
        await ensure_topics(settings)
        producer = AIOKafkaProducer(**producer_kwargs(settings))
        await producer.start()
        try:
            parts = sorted(await producer.partitions_for(topic))
            futures = []
            for p in parts:
                batch = producer.create_batch()
                for i in range(p, n, len(parts)):
                    assert batch.append(key=b"r%d" % i, value=b'{"i":%d}' % i, timestamp=None) is not None
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=p))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, **consumer_kwargs(settings))
        t0 = time.monotonic()
        await consumer.start()
        got: dict[bytes, bytes] = {}
        try:
            while len(got) < n and time.monotonic() - t0 < 20:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.update((r.key, r.value) for r in records)
            await consumer.commit()
        finally:
            await consumer.stop()
        return got, time.monotonic() - t0

    got, elapsed = asyncio.run(run())
    assert len(got) == n
    assert got[b"r999"] == b'{"i":999}'
    assert elapsed < settings.session_timeout_ms / 1000 + 5  # the group join is about half a session


def test_stop_leaves_no_process() -> None:
    """stop() ends the broker process, removes its log directory and can be called again."""
    broker = EmbeddedBroker().start()
    pid, log = broker.pid, broker.log_path
    assert pid is not None
    assert log is not None
    assert log.exists()
    broker.stop()
    broker.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not log.exists()
    assert broker.pid is None
    assert not broker.is_running()
    with pytest.raises(BrokerError):
        _ = broker.bootstrap


def test_a_binary_that_exits_gives_a_clear_error() -> None:
    """A broker binary that exits at once raises BrokerError with its exit status, not a hang."""
    with pytest.raises(BrokerError, match="exited with status 1"):
        EmbeddedBroker(binary="/bin/false", startup_timeout_s=3).start()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_broker_dies_with_a_killed_parent() -> None:
    """A broker whose Python process is SIGKILLed (no atexit) is ended by the kernel's parent-death signal."""
    code = (
        "from streams.broker import EmbeddedBroker as B; b = B().start(); print(b.pid, b.log_path); input()"
    )
    parent = subprocess.Popen(
        [sys.executable, "-u", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert parent.stdout is not None
        pid_text, log = parent.stdout.readline().decode().split(maxsplit=1)
        pid = int(pid_text)
        assert _alive(pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    shutil.rmtree(Path(log.strip()).parent, ignore_errors=True)  # a killed parent cannot remove it itself
    deadline = time.monotonic() + 5
    while _alive(pid):
        if time.monotonic() > deadline:
            pytest.fail(f"broker process {pid} outlived its killed parent")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """True when ``pid`` runs; a zombie (dead, waiting for a reaper that is not us) counts as dead."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False
