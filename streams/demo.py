"""``carbon-router demo``: the live pipeline on a fresh machine.

Starts the embedded broker when KAFKA_BOOTSTRAP_SERVERS is unset, creates the topics, starts one worker
(the real ``carbon-router worker`` command, in a child process), replays the bundled real grid signals and a
request load at ``--rate`` for ``--duration``, shows live progress, prints a summary, and stops everything
it started, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from router.placement import PlacementMessage
from router.totals import Totals
from streams.broker import EmbeddedBroker, free_port
from streams.loadgen import LoadResult, Timeline, publish_initial_signals, run_load
from streams.settings import (
    Settings,
    consumer_kwargs,
    embedded_settings,
    env_var,
    load_settings,
)
from streams.settings import producer_kwargs as _producer_kwargs
from streams.topics import ensure_topics, topic_names

__all__ = ["run_demo", "worker_env"]


@dataclass(slots=True)
class Tally:
    """What the demo has seen on ``placements`` and ``placements.dlq`` so far."""

    dead: int = 0
    #: the placements' totals, by the rules score and the worker's metrics use (router/totals.py)
    totals: Totals = field(default_factory=Totals)
    latencies: list[float] = field(default_factory=list)
    #: request_id -> wall time the load generator handed the request to its producer
    sent_at: dict[str, float] = field(default_factory=dict)

    @property
    def decisions(self) -> int:
        return self.totals.requests

    def add(self, p: PlacementMessage, seen_s: float) -> None:
        """Count one placement seen at ``seen_s``; its latency is from when its request was sent."""
        sent_s = self.sent_at.pop(p["request_id"], None)
        if sent_s is not None:
            self.latencies.append(seen_s - sent_s)
        self.totals.add((p,))


_TTY = sys.stdout.isatty()


def worker_env(s: Settings, **overrides: Any) -> dict[str, str]:
    """The environment that makes a child ``carbon-router worker`` load the same settings as ``s``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBON_ROUTER_")}
    env["KAFKA_BOOTSTRAP_SERVERS"] = s.kafka_bootstrap_servers or ""
    for name, value in {**s.model_dump(exclude={"kafka_bootstrap_servers"}), **overrides}.items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[env_var(name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited during start-up with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the worker did not answer /healthz within {timeout_s:.0f} s")


def _progress(tally: Tally, sent: LoadResult, elapsed: float, rate_now: float, tty: bool) -> str:
    t = tally.totals
    layers = " ".join(f"{k} {v / max(1, t.placed):.0%}" for k, v in sorted(t.by_layer.items()))
    top = ", ".join(f"{k.split(':')[-1]} {v}" for k, v in t.by_region.most_common(3))
    base = t.compared_baseline_nusd / 1e9
    saved = t.saved_energy_usd / base if base else 0.0
    return ("\r" if tty else "\n") + (
        f"{elapsed:5.1f}s sent {sent.requests:>7} decided {t.requests:>7} ({rate_now:>7,.0f}/s) "
        f"saved {saved:5.1%} | {layers} | {top}    "
    )


async def _watch(s: Settings, tally: Tally, stop: asyncio.Event) -> None:
    from aiokafka import AIOKafkaConsumer

    names = topic_names(s)
    c = AIOKafkaConsumer(names["placements"], names["dlq"], **consumer_kwargs(s, group=False))
    await c.start()
    try:
        while not stop.is_set():
            got = await c.getmany(timeout_ms=100, max_records=10_000)
            now = time.time()
            for tp, msgs in got.items():
                for msg in msgs:
                    if tp.topic == names["dlq"]:
                        tally.dead += 1
                    else:
                        tally.add(orjson.loads(msg.value), now)
    finally:
        await c.stop()


async def _wait_signals(port: int, count: int, timeout_s: float = 60.0) -> None:
    """Wait until the worker has applied ``count`` signals (its region state is ready for requests)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            raw = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
            if orjson.loads(raw).get("signals_version", 0) >= count:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the worker did not apply the first {count} grid signals within {timeout_s:.0f} s")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as r:
        return bytes(r.read())


async def _drive(
    s: Settings, port: int, rate: float, duration: float, interrupted: asyncio.Event
) -> tuple[Tally, LoadResult]:
    from aiokafka import AIOKafkaProducer

    tally, sent = Tally(), LoadResult()
    stop_watch = asyncio.Event()
    watcher = asyncio.create_task(_watch(s, tally, stop_watch))
    producer = AIOKafkaProducer(**_producer_kwargs(s))
    await producer.start()
    start = time.perf_counter()
    last = [start, 0]

    def tick(res: LoadResult) -> None:
        now = time.perf_counter()
        if now - last[0] >= 1.0:
            rate_now = (tally.decisions - last[1]) / (now - last[0])
            last[0], last[1] = now, tally.decisions
            sys.stdout.write(_progress(tally, res, now - start, rate_now, _TTY))
            sys.stdout.flush()

    timeline = Timeline.bundled()
    try:
        initial = await publish_initial_signals(producer, topic_names(s), timeline)
        await _wait_signals(port, initial)
        start = last[0] = time.perf_counter()
        sent = await run_load(
            producer,
            topic_names(s),
            rate=rate,
            duration_s=duration,
            timeline=timeline,
            stop=interrupted,
            on_tick=tick,
            signals_sent=initial,
            sent_at=tally.sent_at,
        )
        deadline = time.perf_counter() + 30.0
        while tally.decisions < sent.requests and time.perf_counter() < deadline and not interrupted.is_set():
            tick(sent)
            await asyncio.sleep(0.1)
        sys.stdout.write(_progress(tally, sent, time.perf_counter() - start, 0.0, _TTY) + "\n")
    finally:
        await producer.stop()
        stop_watch.set()
        await watcher
    sent.seconds = time.perf_counter() - start
    sent.signals += initial
    return tally, sent


def _summary(tally: Tally, sent: LoadResult) -> str:
    lat = sorted(tally.latencies) or [0.0]
    t = tally.totals
    cost, base_cost = t.compared_cost_nusd / 1e9, t.compared_baseline_nusd / 1e9
    carbon, base_carbon = t.compared_carbon_ug / 1e6, t.compared_baseline_ug / 1e6

    def p(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

    saved_usd, saved_g = t.saved_energy_usd, t.saved_carbon_g
    lines = [
        "== carbon-router demo: summary ==",
        f"requests sent {sent.requests:,} (+{sent.signals} real grid signals) in {sent.seconds:.1f} s; "
        f"placements received {t.requests:,} ({t.placed:,} placed, {t.rejected:,} rejected), "
        f"dead letters {tally.dead}",
        f"throughput: {t.requests / max(sent.seconds, 1e-9):,.0f} decisions/s; "
        f"request sent -> placement seen: p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms",
        f"energy cost: routed ${cost:.2f} vs all-local ${base_cost:.2f} -> saved ${saved_usd:.2f} "
        f"({saved_usd / base_cost if base_cost else 0:.1%})",
        f"marginal carbon: routed {carbon / 1e3:.1f} kg vs all-local {base_carbon / 1e3:.1f} kg -> saved "
        f"{saved_g / 1e3:.1f} kg ({saved_g / base_carbon if base_carbon else 0:.1%})",
        "layers: " + ", ".join(f"{k} {v / max(1, t.placed):.1%}" for k, v in sorted(t.by_layer.items())),
        "placements by region: " + ", ".join(f"{k} {v:,}" for k, v in t.by_region.most_common()),
    ]
    return "\n".join(lines)


def run_demo(rate: float, duration: float) -> int:
    """The whole demo; returns the exit status."""
    env_bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker: EmbeddedBroker | None = None
    worker: subprocess.Popen[bytes] | None = None
    logdir = Path(tempfile.mkdtemp(prefix="carbon-router-demo-"))
    interrupted = asyncio.Event()
    try:
        if env_bootstrap:
            s = load_settings()
            print(f"using the Kafka cluster at {env_bootstrap}")
        else:
            broker = EmbeddedBroker().start()
            s = embedded_settings(broker.bootstrap)
            print(f"started the embedded Kafka-protocol broker (tansu) on {broker.bootstrap}")
        asyncio.run(ensure_topics(s))
        port = free_port()
        log = (logdir / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=worker_env(s, web_port=port, worker_id="demo-worker-1", log_level="warning"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait_healthy(port, worker)
        print(f"worker up (metrics: http://127.0.0.1:{port}/metrics, log: {logdir / 'worker.log'})")
        print(f"replaying the bundled real grid signals and {rate:,.0f} requests/s for {duration:g} s ...")
        tally, sent = asyncio.run(_drive(s, port, rate, duration, interrupted))
        print(_summary(tally, sent))
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the demo started")
        return 130
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        if broker is not None:
            broker.stop()
