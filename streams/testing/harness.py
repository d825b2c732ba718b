"""Real ``carbon-router worker`` child processes, producing to and draining topics, on a given broker.

``WorkerProc`` starts ``python -m streams.cli worker`` (the installed script's entry point, streams/cli.py)
with the environment of ``streams.demo.worker_env`` and polls its ``/healthz``; ``produce`` and ``drain``
publish and read one topic with aiokafka. Used by the integration tests (tests/integration/) and the fault
scenarios (faults/scenarios/common.py and the scenarios beside it); re-exported by ``streams.testing``.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from streams.broker import free_port
from streams.demo import worker_env
from streams.settings import Settings, consumer_kwargs, producer_kwargs

__all__ = ["WorkerProc", "drain", "produce"]


class WorkerProc:
    """A real ``carbon-router worker`` child process on the test's broker and topics."""

    def __init__(self, settings: Settings, worker_id: str, logdir: Path, **overrides: Any) -> None:
        self.port = free_port()
        self.worker_id = worker_id
        self.log = logdir / f"{worker_id}.log"
        env = worker_env(settings, web_port=self.port, worker_id=worker_id, log_level="info", **overrides)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
            return bytes(r.read())

    def health(self) -> dict[str, Any]:
        return dict(orjson.loads(self.get("/healthz")))

    def wait(self, predicate: Any = None, timeout_s: float = 60.0) -> dict[str, Any]:
        """Wait until /healthz answers (and ``predicate(health)`` holds); fail with the worker's log."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            assert self.proc.poll() is None, (
                f"worker exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
            )
            try:
                h = self.health()
                if predicate is None or predicate(h):
                    return h
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"worker {self.worker_id} not ready:\n{self.log.read_text()[-3000:]}")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, then the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def produce(settings: Settings, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
    """Publish (key, value) items and wait for every ack."""

    async def run() -> None:
        from aiokafka import AIOKafkaProducer

        p = AIOKafkaProducer(**producer_kwargs(settings))
        await p.start()
        try:
            acks = [await p.send(topic, key=k, value=v) for k, v in items]
            await asyncio.gather(*acks)
        finally:
            await p.stop()

    asyncio.run(run())


def drain(
    settings: Settings, topic: str, expect: int, timeout_s: float = 60.0, settle_s: float = 1.0
) -> list[Any]:
    """Read ``topic`` from the start until ``expect`` records arrived (then ``settle_s`` more) or timeout."""

    async def run() -> list[Any]:
        from aiokafka import AIOKafkaConsumer

        c = AIOKafkaConsumer(topic, **consumer_kwargs(settings, group=False))
        await c.start()
        out: list[Any] = []
        try:
            deadline = time.time() + timeout_s
            settle_until: float | None = None
            while time.time() < deadline:
                got = await c.getmany(timeout_ms=200)
                for msgs in got.values():
                    out.extend(msgs)
                if len(out) >= expect and settle_until is None:
                    settle_until = time.time() + settle_s
                if settle_until is not None and time.time() >= settle_until:
                    break
        finally:
            await c.stop()
        return out

    return asyncio.run(run())
