"""End-to-end benchmark: the worker, a null router and a faust baseline through a broker.

One embedded tansu broker on loopback for the whole run. Every measurement gets fresh topics and a fresh
consumer group (tansu's fetch cost grows with the batches it stores) and a fresh child process running the
subject under test:

* ``router``: the real worker, ``python -m streams.cli worker`` with ``streams.demo.worker_env``;
* ``null``: a minimal aiokafka consume -> produce loop (whole fetched batches, the batch API, no decoding or
  scoring, commit after the acks, and like the router the acks and commit of one batch overlap the fetch
  of the next): the transport's limit;
* ``faust``: the pipeline written the obvious way, a faust agent that per event decodes with pydantic,
  scores the one request with ``router.scoring.Scorer`` and ``send``s one placement.

The bench process is the open-loop load generator (pre-built records, aiokafka batch API, each record's send
wall time kept by its key) and the consumer of the output topic (fetch wait 10 ms). End-to-end latency of a
request = wall time its output record was seen by that consumer - wall time it was appended to a producer
batch; ``stamped`` latency uses the output record's own create timestamp instead of the time it was seen.
Before the measured load one probe record must come out the other end (the subject is assigned and ready).

A step at rate r sends for ``--step-s`` seconds and is *sustained* when the generator reached 90 % of r,
every output arrived within 3 s of the last send, and the p99 latency of the second half of the requests is
<= 1 s. From a start rate the steps go up until one is not sustained (or down until one is). The router also
runs 10 s at 1k/s, 5k/s and 10k/s for p50/p99, and the null router 10 s at 1k/s and 5k/s: at those two rates
the router's p50 and p99 are compared with the null router's of the same run (``PAIRED``). Prints one table
of every step and a summary with the ratios against the targets, writes ``bench/results/e2e.json``. Every
child process is stopped in ``finally``.

    python -m bench.e2e_bench [--step-s S] [--fixed-s S] [--budget-s S]
    python -m bench.e2e_bench --child null|faust    (internal: a subject, configured by the environment)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.common import BusyMeter, load_average, machine, pct, print_table, summary, write_json

__all__ = ["main"]

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 4
FETCH_WAIT_MS = 10
ROUTER_FIXED = (1_000, 10_000)
#: rates at which the router and the null router both run for ``--fixed-s``, their latencies compared:
#: the router's p50 within ``PAIRED_P50_MS`` of the null router's, its p99 within ``PAIRED_P99_MS``
PAIRED = (1_000, 5_000)
PAIRED_P50_MS, PAIRED_P99_MS = 5.0, 10.0
LADDERS: dict[str, tuple[int, ...]] = {
    "router": (500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000),
    "null": (10_000, 20_000, 40_000, 80_000, 160_000),
    "faust": (100, 250, 500, 1_000, 2_000, 4_000, 8_000),
}
LADDER_START = {"router": 20_000, "null": 10_000, "faust": 1_000}
TARGETS = {"router_decisions_per_s": 50_000, "share_of_null": 0.5, "x_faust": 10.0, "p99_ms_at_1k": 30.0}
BEHIND_S = 1.0
DRAIN_S = 3.0
#: the load generator appends what is due to one batch per partition, then sleeps this long (a producer's
#: linger); tansu's fetch cost grows with the number of stored batches, so tiny batches slow every reader
SEND_TICK_S = 0.002


@dataclass(slots=True)
class Step:
    """One measurement: a subject at one offered rate."""

    subject: str
    rate: int
    duration_s: float
    sent: int = 0
    received: int = 0
    achieved_rate: float = 0.0
    throughput: float = 0.0  # outputs per second from the first send to the last output
    latency_ms: dict[str, float] = field(default_factory=dict)
    stamped_ms: dict[str, float] = field(default_factory=dict)
    tail_p99_ms: float = float("nan")
    sustained: bool = False
    placed_share: float | None = None
    subject_cpu_share: float = 0.0
    busy_cpus: float = 0.0
    load_average: list[float] = field(default_factory=list)
    startup_s: float = 0.0
    worker_metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


# -- the subjects' child processes ---------------------------------------------------------------------------


def _child_null() -> None:
    """Null router: consume whole batches, produce them unchanged (same key, value), commit after the acks."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from streams.settings import consumer_kwargs, load_settings, producer_kwargs

    s = load_settings()

    async def run() -> None:
        producer = AIOKafkaProducer(**producer_kwargs(s))
        consumer = AIOKafkaConsumer(s.topic_requests, **consumer_kwargs(s))
        await producer.start()
        await consumer.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        parts = len(await producer.partitions_for(s.topic_placements) or {0})

        async def settle(acks: list[Any], offsets: dict[Any, int]) -> None:
            await asyncio.gather(*acks)
            await consumer.commit(offsets)

        inflight: asyncio.Future[None] | None = None
        try:
            while not stop.is_set():
                fetched = await consumer.getmany(timeout_ms=100, max_records=s.max_batch)
                if not fetched:
                    continue
                if inflight is not None:  # like the router: one batch in flight, commits in order
                    await inflight
                acks = []
                for tp, msgs in fetched.items():
                    batch = producer.create_batch()
                    for m in msgs:
                        if batch.append(key=m.key, value=m.value, timestamp=None) is None:
                            acks.append(
                                await producer.send_batch(
                                    batch, s.topic_placements, partition=tp.partition % parts
                                )
                            )
                            batch = producer.create_batch()
                            batch.append(key=m.key, value=m.value, timestamp=None)
                    if batch.record_count():
                        acks.append(
                            await producer.send_batch(
                                batch, s.topic_placements, partition=tp.partition % parts
                            )
                        )
                offsets = {tp: msgs[-1].offset + 1 for tp, msgs in fetched.items()}
                inflight = asyncio.ensure_future(settle(acks, offsets))
            if inflight is not None:
                await inflight
        finally:
            await consumer.stop()
            await producer.stop()

    asyncio.run(run())


def _child_faust() -> None:
    """The obvious faust pipeline: per event decode (pydantic), score one request, ``send`` one placement."""
    import faust

    from router.commands import bundled
    from router.encode import placements
    from router.models import GridSignal, Request
    from router.plan import Plan
    from router.scoring import Scorer, warm_up
    from router.topology import load_topology
    from streams.codec import encode
    from streams.control import faust_app
    from streams.settings import load_settings

    s = load_settings()
    warm_up()
    plan = Plan(load_topology(None))
    scorer = Scorer(plan)
    sigs = [
        GridSignal.model_validate_json(x) for x in bundled("sample_signals.jsonl").read_bytes().splitlines()
    ]
    t0 = min(x.ts for x in sigs)
    for sig in sigs:
        if sig.ts <= t0:
            scorer.state.apply_signal(sig)
    app = faust_app(s, f"{s.group_id}-faust", web=False, partitions=PARTITIONS)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    requests = app.topic(s.topic_requests, partitions=PARTITIONS, **raw)
    out = app.topic(s.topic_placements, partitions=PARTITIONS, **raw)

    @app.agent(requests)
    async def route(stream: Any) -> None:
        async for ev in stream.events():
            req = Request.model_validate_json(ev.value)
            batch = plan.arrays([req], [plan.request_row(req, ts=req.ts or 0.0, source="request")])
            p = placements(plan, batch, scorer.decide(batch), shares_version=0, decided_at=time.time())[0]
            await out.send(key=ev.key, value=encode(p))

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.spinner = None  # as in streams.worker: the spinner would set the root logger to DEBUG
    worker.execute_from_commandline()


# -- the bench side --------------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children), from /proc; 0.0 when gone."""
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(x) for x in parts[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class Subject:
    """A child process running one subject (worker, null router, faust) on one measurement's topics."""

    def __init__(self, kind: str, settings: Any, logdir: Path) -> None:
        from streams.broker import free_port
        from streams.demo import worker_env

        self.kind = kind
        self.log = logdir / f"{settings.group_id}-{kind}.log"
        self.port = free_port()
        env = worker_env(settings, web_port=self.port, worker_id=f"bench-{kind}", log_level="warning")
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        cmd = [sys.executable, "-m", "streams.cli", "worker"]
        if kind != "router":
            cmd = [sys.executable, "-m", "bench.e2e_bench", "--child", kind]
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )

    def cpu_s(self) -> float:
        return _cpu_s(self.proc.pid)

    def worker_metrics(self) -> dict[str, float]:
        """The worker's batch histograms' sums and counts from /metrics (router only; empty otherwise)."""
        import urllib.request

        if self.kind != "router":
            return {}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name.startswith(
                ("carbon_router_batch_", "carbon_router_decision_latency_seconds_")
            ) and name.endswith(("_sum", "_count")):
                out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _requests(n: int, t0: float, span_s: float) -> list[bytes]:
    """``n`` request values: the bundled requests cycled, ``request_id`` = ``r<k>``, ts over ``span_s``."""
    from router.commands import bundled

    base = [orjson.loads(x) for x in bundled("sample_requests.jsonl").read_bytes().splitlines() if x.strip()]
    return [
        orjson.dumps({**base[k % len(base)], "request_id": f"r{k}", "ts": t0 + k * span_s / max(1, n)})
        for k in range(n)
    ]


async def _send_initial_signals(settings: Any) -> float:
    """Publish the bundled signals at the timeline's first instant; the timeline's t0."""
    from aiokafka import AIOKafkaProducer

    from streams.loadgen import Timeline, publish_initial_signals
    from streams.settings import producer_kwargs
    from streams.topics import topic_names

    tl = Timeline.bundled()
    p = AIOKafkaProducer(**producer_kwargs(settings))
    await p.start()
    try:
        await publish_initial_signals(p, topic_names(settings), tl)
    finally:
        await p.stop()
    return tl.t0


async def _measure(settings: Any, subject: Subject, step: Step, t0: float, ready_timeout_s: float) -> None:
    """Probe until the subject answers, then the open-loop load and the output consumer, filling ``step``."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from streams.settings import consumer_kwargs, producer_kwargs

    s = settings
    n = int(step.rate * step.duration_s)
    values = _requests(n, t0, 1500.0)
    sent_at = [0.0] * n
    seen_at = [0.0] * n
    stamped = [0.0] * n
    sampled: list[bytes] = []
    got = [0]
    probe_seen = asyncio.Event()
    producer = AIOKafkaProducer(**producer_kwargs(s))
    consumer = AIOKafkaConsumer(
        s.topic_placements, **{**consumer_kwargs(s, group=False), "fetch_max_wait_ms": FETCH_WAIT_MS}
    )
    await producer.start()
    await consumer.start()
    stop_consumer = asyncio.Event()

    async def consume() -> None:
        while not stop_consumer.is_set():
            batches = await consumer.getmany(timeout_ms=50, max_records=20_000)
            now = time.time()
            for msgs in batches.values():
                for m in msgs:
                    key = m.key or b""
                    if key.startswith(b"probe"):
                        probe_seen.set()
                        continue
                    k = int(key[1:] if key.startswith(b"r") else key)  # the worker keys by request_id
                    if seen_at[k] == 0.0:
                        seen_at[k] = now
                        stamped[k] = m.timestamp / 1000.0
                        got[0] += 1
                        if k % 97 == 0:
                            sampled.append(m.value)

    reader = asyncio.create_task(consume())
    try:
        started = time.perf_counter()
        while not probe_seen.is_set():  # the subject is up, assigned and answering
            if not subject.alive():
                raise RuntimeError(f"{subject.kind} exited during start-up; log {subject.log}")
            if time.perf_counter() - started > ready_timeout_s:
                raise RuntimeError(f"{subject.kind} did not answer a probe in {ready_timeout_s:.0f} s")
            probe = {**orjson.loads(values[0]), "request_id": "probe"}
            await (await producer.send(s.topic_requests, key=b"probe", value=orjson.dumps(probe)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(probe_seen.wait(), timeout=2.0)
        step.startup_s = time.perf_counter() - started
        meter, cpu0 = BusyMeter(), subject.cpu_s()
        wall0 = time.perf_counter()
        k = 0
        start = time.perf_counter()
        acks: list[Any] = []
        while k < n:
            due = min(n, int((time.perf_counter() - start) * step.rate) + 1)
            batches: dict[int, Any] = {}
            while k < due:
                part = k % PARTITIONS
                b = batches.get(part)
                if b is None:
                    b = batches[part] = producer.create_batch()
                now = time.time()
                if b.append(key=str(k).encode(), value=values[k], timestamp=int(now * 1000)) is None:
                    acks.append(await producer.send_batch(b, s.topic_requests, partition=part))
                    b = batches[part] = producer.create_batch()
                    now = time.time()
                    b.append(key=str(k).encode(), value=values[k], timestamp=int(now * 1000))
                sent_at[k] = now
                k += 1
            for part, b in batches.items():
                if b.record_count():
                    acks.append(await producer.send_batch(b, s.topic_requests, partition=part))
            if len(acks) > 1000:
                await asyncio.gather(*acks)
                acks.clear()
            await asyncio.sleep(SEND_TICK_S)
        await asyncio.gather(*acks)
        send_s = time.perf_counter() - start
        deadline = time.time() + DRAIN_S
        while got[0] < n and time.time() < deadline:
            await asyncio.sleep(0.02)
        step.sent, step.received = n, got[0]
        step.achieved_rate = n / send_s
        step.subject_cpu_share = round((subject.cpu_s() - cpu0) / (time.perf_counter() - wall0), 2)
        step.busy_cpus = meter.busy_cpus()
        step.worker_metrics = subject.worker_metrics()
    finally:
        stop_consumer.set()
        await reader
        await consumer.stop()
        await producer.stop()
    lat = [(seen_at[k] - sent_at[k]) * 1e3 for k in range(n) if seen_at[k]]
    step.latency_ms = summary(lat)
    step.stamped_ms = summary([(stamped[k] - sent_at[k]) * 1e3 for k in range(n) if seen_at[k]])
    tail = [(seen_at[k] - sent_at[k]) * 1e3 for k in range(n // 2, n) if seen_at[k]]
    step.tail_p99_ms = pct(tail, 0.99)
    last_seen = max((x for x in seen_at if x), default=sent_at[0])
    step.throughput = step.received / max(1e-9, last_seen - sent_at[0])
    step.sustained = (
        step.received == n and step.achieved_rate >= 0.9 * step.rate and step.tail_p99_ms <= BEHIND_S * 1e3
    )
    if step.achieved_rate < 0.9 * step.rate:
        step.note = "load generator could not reach the rate"
    if sampled and subject.kind != "null":
        placed = [orjson.loads(v)["status"] == "placed" for v in sampled]
        step.placed_share = sum(placed) / len(placed)


def run_step(broker: Any, kind: str, rate: int, duration_s: float, n: int, logdir: Path) -> Step:
    """Fresh topics, a fresh subject process, one measured step; the subject is always stopped."""
    from streams.settings import embedded_settings
    from streams.topics import ensure_topics

    prefix = f"b{n}-{kind}-{rate}"
    from streams.topics import TOPIC_KEYS  # every topic fresh, the provider and forecast ones too

    topics = TOPIC_KEYS
    s = embedded_settings(
        broker.bootstrap,
        group_id=prefix,
        fetch_max_wait_ms=FETCH_WAIT_MS,
        request_partitions=PARTITIONS,
        **{f"topic_{t}": f"{prefix}.{t}" for t in topics},
    )
    asyncio.run(ensure_topics(s))
    t0 = asyncio.run(_send_initial_signals(s))
    step = Step(kind, rate, duration_s, load_average=load_average())
    subject = Subject(kind, s, logdir)
    try:
        asyncio.run(_measure(s, subject, step, t0, ready_timeout_s=60.0))
    except RuntimeError as exc:
        step.note = str(exc)
    finally:
        subject.stop()
    return step


def _row(st: Step) -> list[object]:
    return [
        st.subject,
        st.rate,
        st.duration_s,
        st.achieved_rate,
        st.received,
        st.throughput,
        st.latency_ms.get("median", float("nan")),
        st.latency_ms.get("p99", float("nan")),
        st.tail_p99_ms,
        st.stamped_ms.get("p99", float("nan")),
        "yes" if st.sustained else "NO",
        st.subject_cpu_share,
        st.busy_cpus,
        st.load_average[0] if st.load_average else float("nan"),
        st.note[:40],
    ]


def _paired_goals(
    router: dict[int, Step | None], null: dict[int, Step | None]
) -> list[tuple[str, float, str, float]]:
    """Per rate of ``PAIRED``: the router's p50 and p99 minus the null router's, in the same run."""
    out = []
    for rate in PAIRED:
        r, n = router.get(rate), null.get(rate)
        for q, slack in (("median", PAIRED_P50_MS), ("p99", PAIRED_P99_MS)):
            got = (
                r.latency_ms.get(q, math.nan) - n.latency_ms.get(q, math.nan)
                if r is not None and n is not None
                else math.nan
            )
            name = "p50" if q == "median" else q
            out.append((f"router {name} - null {name} ms at {rate // 1000}k/s", got, "<=", slack))
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every subject's steps on one broker, print the tables, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench.e2e_bench", description="end-to-end through a broker")
    ap.add_argument("--child", choices=("null", "faust"), help=argparse.SUPPRESS)
    ap.add_argument("--step-s", type=float, default=5.0, help="seconds per ladder step")
    ap.add_argument(
        "--fixed-s",
        type=float,
        default=10.0,
        help="seconds of the fixed-rate runs (router 1k, 5k, 10k/s; null 1k, 5k/s)",
    )
    ap.add_argument(
        "--budget-s", type=float, default=330.0, help="no new step starts after this many seconds"
    )
    args = ap.parse_args(argv)
    if args.child == "null":
        _child_null()
        return 0
    if args.child == "faust":
        _child_faust()
        return 0
    from streams.broker import EmbeddedBroker

    facts = machine()
    started = time.perf_counter()
    steps: list[Step] = []
    logdir = Path(tempfile.mkdtemp(prefix="carbon-router-e2e-"))
    print(f"subject logs in {logdir}")
    broker = EmbeddedBroker().start()
    try:

        def run(kind: str, rate: int, duration: float) -> Step | None:
            if time.perf_counter() - started > args.budget_s:
                print(f"  skipped {kind} at {rate:,}/s: time budget of {args.budget_s:.0f} s used")
                return None
            st = run_step(broker, kind, rate, duration, len(steps), logdir)
            steps.append(st)
            print("  " + " | ".join(str(c) for c in _row(st)), flush=True)
            return st

        fixed = {rate: run("router", rate, args.fixed_s) for rate in sorted({*ROUTER_FIXED, *PAIRED})}
        paired_null = {rate: run("null", rate, args.fixed_s) for rate in PAIRED}
        for kind, ladder in LADDERS.items():
            done = {r: st for r, st in fixed.items() if st is not None} if kind == "router" else {}
            start = LADDER_START[kind]
            if kind == "router" and not (done.get(10_000) and done[10_000].sustained):
                start = 5_000
            k = ladder.index(start)
            first = done.get(start) or run(kind, start, args.step_s)
            if first is None:
                continue
            done[start] = first
            direction = 1 if first.sustained else -1  # up until one fails, or down until one holds
            k += direction
            while 0 <= k < len(ladder):
                st = done.get(ladder[k]) or run(kind, ladder[k], args.step_s)
                if st is None:
                    break
                done[ladder[k]] = st
                if st.sustained != first.sustained:
                    break
                k += direction
    finally:
        broker.stop()
    elapsed = time.perf_counter() - started
    header = [
        "subject", "rate/s", "s", "sent/s", "received", "out/s", "p50 ms", "p99 ms", "tail p99 ms",
        "stamped p99", "sustained", "subj cpu", "busy cpus", "load 1m", "note",
    ]  # fmt: skip
    print_table(
        "end to end through tansu (latency: request sent -> output seen)", header, [_row(s) for s in steps]
    )

    def best(kind: str) -> float:
        ok = [s.throughput for s in steps if s.subject == kind and s.sustained]
        return max(ok) if ok else float("nan")

    def best_rate(kind: str) -> int:
        ok = [s.rate for s in steps if s.subject == kind and s.sustained]
        return max(ok) if ok else 0

    router, null, faust_ = best("router"), best("null"), best("faust")
    at1k = next((s for s in steps if s.subject == "router" and s.rate == 1_000), None)
    p99_1k = at1k.latency_ms.get("p99", float("nan")) if at1k else float("nan")
    goals = [
        ("router sustained decisions/s", router, ">=", TARGETS["router_decisions_per_s"]),
        ("router / null router", router / null, ">=", TARGETS["share_of_null"]),
        ("router / faust baseline", router / faust_, ">=", TARGETS["x_faust"]),
        ("router p99 ms at 1k/s", p99_1k, "<=", TARGETS["p99_ms_at_1k"]),
        *_paired_goals(fixed, paired_null),
    ]
    print_table(
        "summary (highest sustained step; out/s of that step)",
        ["subject", "highest sustained rate/s", "out/s"],
        [[k, best_rate(k), best(k)] for k in ("router", "null", "faust")],
    )
    results = []
    for name, got, op, goal in goals:
        ok = got >= goal if op == ">=" else got <= goal
        results.append({"target": name, "measured": got, "op": op, "goal": goal, "pass": bool(ok)})
        print(f"  {'PASS' if ok else 'MISS'}  {name}: {got:.3g} (target {op} {goal:g})")
    print(f"\nrun took {elapsed:.0f} s; load average {load_average()}")
    write_json(
        "e2e",
        {
            "argv": vars(args),
            "machine": facts,
            "elapsed_s": elapsed,
            "steps": [asdict(s) for s in steps],
            "targets": results,
            "logs": str(logdir),
            "load_average_at_end": load_average(),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
