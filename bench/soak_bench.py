"""Soak benchmark: the worker at a fixed rate for minutes, its RSS sampled.

One embedded tansu broker on loopback, fresh topics, one real worker process (``python -m streams.cli worker``
as in ``bench.e2e_bench``), the bundled signals, then an open-loop load of ``--rate`` requests/s for
``--duration-s`` seconds (the bundled requests cycled with fresh ids). The worker's resident set size
(``VmRSS`` in ``/proc/<pid>/status``) is sampled every ``--sample-s`` seconds while a consumer counts the
placements that come out.

Growth per minute is the least-squares slope of RSS over time, reported for the whole run and for the
steady state after ``--warmup-s``, and after it per kind of mapping (``memory_map_mb``); the worker's heap
trims (``streams.memory``) are read from its ``/metrics`` at the end. The warm-up must cover what is *meant*
to fill: the dedup memory
(``CARBON_ROUTER_DEDUP_CACHE_SIZE`` placements, 100,000 by default: 100 s at 1k/s), the capacity windows
(``capacity_window_s``) and the re-solve's demand window (``demand_window_s``). Target: < 1 MB/min after
warm-up. Writes ``bench/results/soak.json``.

    python -m bench.soak_bench [--rate 1000] [--duration-s 300] [--warmup-s 150] [--sample-s 2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import load_average, machine, print_table, write_json
from bench.e2e_bench import Subject, _requests, _send_initial_signals

__all__ = ["main", "memory_map_mb", "rss_mb", "slope_mb_per_min"]

TARGET_MB_PER_MIN = 1.0


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (0.0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


#: what a resident page belongs to (``memory_map_mb``): the brk heap, glibc's per-thread malloc arenas
#: (anonymous mappings inside 64 MiB heaps), other anonymous mappings (large NumPy arrays, mmap'd
#: allocations), and files (code, shared libraries)
MAP_KINDS = ("heap", "arenas", "anon", "files")
_ARENA_KB = 65536


def memory_map_mb(pid: int) -> dict[str, float]:
    """The process's resident MB by ``MAP_KINDS`` from ``/proc/<pid>/smaps`` (zeros when it is gone).

    An arena is recognised by its reservation: glibc maps each per-thread heap as 64 MiB, split into a
    read-write part and a ``---p`` rest, so consecutive anonymous mappings that add up to 64 MiB are one."""
    out = dict.fromkeys(MAP_KINDS, 0.0)
    try:
        text = Path(f"/proc/{pid}/smaps").read_text()
    except OSError:
        return out
    maps: list[tuple[str, int, int]] = []  # (name, size kB, rss kB)
    for line in text.splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            maps.append((head[5] if len(head) > 5 else "", 0, 0))
        elif head and head[0] in ("Size:", "Rss:") and maps:
            name, size, rss = maps[-1]
            maps[-1] = (name, int(head[1]), rss) if head[0] == "Size:" else (name, size, int(head[1]))
    k = 0
    while k < len(maps):
        name, size, rss = maps[k]
        if name == "[heap]":
            out["heap"] += rss
        elif name and not name.startswith("["):
            out["files"] += rss
        elif not name:
            nxt = maps[k + 1] if k + 1 < len(maps) else ("x", 0, 0)
            if nxt[0] == "" and size + nxt[1] == _ARENA_KB:
                out["arenas"] += rss + nxt[2]
                k += 1
            else:
                out["anon"] += rss
        k += 1
    return {kind: kb / 1024.0 for kind, kb in out.items()}


def heap_trims(port: int) -> dict[str, float]:
    """The worker's heap trims so far (``carbon_router_heap_trim_seconds``): count, total seconds and the
    upper bound of the bucket holding the slowest."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    got = {"count": 0.0, "sum_s": 0.0, "slowest_le_s": 0.0}
    below = 0.0
    for line in text.splitlines():
        name, value = line.rsplit(" ", 1) if " " in line else ("", "")
        if name == "carbon_router_heap_trim_seconds_count":
            got["count"] = float(value)
        elif name == "carbon_router_heap_trim_seconds_sum":
            got["sum_s"] = float(value)
        elif name.startswith("carbon_router_heap_trim_seconds_bucket") and float(value) > below:
            got["slowest_le_s"], below = float(name.split('le="', 1)[1].split('"', 1)[0]), float(value)
    return got


def slope_mb_per_min(samples: list[tuple[float, float]], after_s: float = 0.0) -> float | None:
    """Least-squares slope of (seconds, MB) samples taken at or after ``after_s``, in MB per minute."""
    pts = np.array([p for p in samples if p[0] >= after_s], dtype=np.float64)
    if len(pts) < 3:
        return None
    t, mb = pts[:, 0], pts[:, 1]
    return float(np.polyfit(t, mb, 1)[0] * 60.0)


async def _soak(settings: Any, subject: Subject, args: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from streams.settings import consumer_kwargs, producer_kwargs

    t0 = await _send_initial_signals(settings)
    n = int(args.rate * args.duration_s)
    values = _requests(n, t0, 1500.0)
    producer = AIOKafkaProducer(**producer_kwargs(settings))
    consumer = AIOKafkaConsumer(settings.topic_placements, **consumer_kwargs(settings, group=False))
    await producer.start()
    await consumer.start()
    got = {"placed": 0, "rejected": 0}
    seen: set[bytes] = set()
    samples: list[tuple[float, float]] = []
    maps: list[tuple[float, dict[str, float]]] = []
    done = asyncio.Event()

    async def drain() -> None:
        while not done.is_set() or len(seen) < n:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for m in msgs:
                    if m.key not in seen:
                        seen.add(m.key)
                        got["placed" if b'"status":"placed"' in m.value else "rejected"] += 1
            if done.is_set() and time.monotonic() > deadline:
                return

    async def sample() -> None:
        while not done.is_set():
            samples.append((time.monotonic() - start, rss_mb(subject.proc.pid)))
            maps.append((samples[-1][0], memory_map_mb(subject.proc.pid)))
            await asyncio.sleep(args.sample_s)

    start = time.monotonic()
    deadline = float("inf")
    drainer, sampler = asyncio.create_task(drain()), asyncio.create_task(sample())
    try:
        tick = 0.05
        per_tick = args.rate * tick
        sent = 0
        while sent < n:
            target = min(n, int((time.monotonic() - start) / tick * per_tick) + 1)
            while sent < target:
                await producer.send(settings.topic_requests, key=f"r{sent}".encode(), value=values[sent])
                sent += 1
            if not subject.alive():
                raise RuntimeError(f"the worker exited; see {subject.log}")
            await asyncio.sleep(tick)
        await producer.flush()
        sent_s = time.monotonic() - start
        samples.append((sent_s, rss_mb(subject.proc.pid)))
        trims = heap_trims(subject.port)
        done.set()
        deadline = time.monotonic() + 30.0
        await drainer
    finally:
        done.set()
        sampler.cancel()
        drainer.cancel()
        await consumer.stop()
        await producer.stop()
    return {
        "sent": n,
        "sent_s": sent_s,
        "answered": len(seen),
        **got,
        "heap_trims": trims,
        "samples": samples,
        "maps": maps,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the soak, print the RSS table and the slopes, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench.soak_bench", description="worker RSS at a fixed rate")
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--duration-s", type=float, default=300.0)
    ap.add_argument("--warmup-s", type=float, default=150.0)
    ap.add_argument("--sample-s", type=float, default=2.0)
    args = ap.parse_args(argv)
    from streams.broker import EmbeddedBroker
    from streams.settings import Settings, embedded_settings
    from streams.topics import TOPIC_KEYS, ensure_topics

    facts = machine()
    logdir = Path(tempfile.mkdtemp(prefix="carbon-router-soak-"))
    with EmbeddedBroker() as broker:
        prefix = f"soak{uuid.uuid4().hex[:8]}."
        defaults = Settings.model_fields
        topics = {f"topic_{k}": prefix + str(defaults[f"topic_{k}"].default) for k in TOPIC_KEYS}
        settings = embedded_settings(broker.bootstrap, group_id=f"{prefix}group", **topics)
        asyncio.run(ensure_topics(settings))
        subject = Subject("router", settings, logdir)
        try:
            result = asyncio.run(_soak(settings, subject, args))
        finally:
            subject.stop()
    samples = result.pop("samples")
    maps = result.pop("maps")
    whole = slope_mb_per_min(samples)
    steady = slope_mb_per_min(samples, args.warmup_s)
    by_kind = {kind: slope_mb_per_min([(t, m[kind]) for t, m in maps], args.warmup_s) for kind in MAP_KINDS}
    every = max(1, len(samples) // 12)
    print_table(
        f"soak: {args.rate:,} requests/s for {args.duration_s:g} s, worker RSS",
        ["t s", "RSS MB"],
        [[round(t, 1), round(mb, 1)] for t, mb in samples[::every]],
    )
    print_table(
        "resident MB by kind of mapping (/proc/<pid>/smaps)",
        ["t s", *MAP_KINDS],
        [[round(t, 1), *(round(m[kind], 1) for kind in MAP_KINDS)] for t, m in maps[::every]],
    )
    ok = steady is not None and steady < TARGET_MB_PER_MIN
    trims = result["heap_trims"]
    print(
        f"\n  sent {result['sent']:,}, answered {result['answered']:,} "
        f"(placed {result['placed']:,}, rejected {result['rejected']:,})"
        f"\n  RSS growth: whole run {whole if whole is None else round(whole, 3)} MB/min; after the "
        f"{args.warmup_s:g} s warm-up {steady if steady is None else round(steady, 3)} MB/min"
        f"\n  heap trims: {trims['count']:g}, {trims['sum_s'] * 1e3:.2f} ms in all, "
        f"the slowest <= {trims['slowest_le_s'] * 1e3:g} ms"
        f"\n  after warm-up by kind, MB/min: "
        + ", ".join(f"{kind} {v if v is None else round(v, 3)}" for kind, v in by_kind.items())
        + f"\n  {'PASS' if ok else 'MISS'}  steady-state growth < {TARGET_MB_PER_MIN} MB/min;"
        f" load average {load_average()}"
    )
    write_json(
        "soak",
        {
            "argv": vars(args),
            "machine": facts,
            **result,
            "rss_samples": samples,
            "growth_mb_per_min": {"whole_run": whole, "after_warmup": steady},
            "growth_after_warmup_by_kind_mb_per_min": by_kind,
            "maps": maps,
            "target": {"mb_per_min": TARGET_MB_PER_MIN, "pass": ok},
            "worker_log": str(subject.log),
            "load_average_at_end": load_average(),
        },
    )
    return 0 if result["answered"] == result["sent"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
