"""In-process pipeline benchmark: bytes -> decode -> kernel -> encode, no broker.

Pre-builds 200k request records as bytes (the bundled sample requests cycled with fresh ids, ``ts`` spread
over the bundled signal timeline, orjson), then runs them through what the worker's data plane does per
fetched batch, in batches of 4096, on one thread:

* ``decode``: ``streams.batchcodec.decode_checked_batch`` of the batch (what ``BatchLifecycle._prepare`` in
  streams/batches.py calls: ``orjson.loads`` per record, then ``router.batchrow`` checks the batch field by
  field and builds its kernel columns, the ``RequestArrays`` handed to the decider; a record it declines
  takes ``streams.codec.decode_checked_request``);
* ``decide``: ``Decider.decide_columns`` (dedup memory, event-time order, the kernel through
  ``Scorer.decide``, ``router.columnar.encode_columns`` making every message value straight from the
  kernel's columns, which the dedup memory keeps; only a batch it declines takes
  ``router.encode.placements``, building the placement dicts, and ``router.encode.encode_placement``);
  ``kernel``, ``placements`` and ``encode`` (either encoder) are timed by wrapping them, the rest of
  ``decide`` is ``decide_other`` (stacking the request arrays is in ``decode``: the batch decoder builds
  them);
* ``metrics``: ``Metrics.record_placements`` for the batch (the data plane does it after the acks; it reads
  the batch's columns, ``router.placed``, not dicts).

The garbage collector is tuned as in the worker (``streams.worker.tune_gc``) unless ``--default-gc``.

The bundled grid signals are applied (``Decider.apply_signal``, like the state feed) before each batch whose
requests reach their time, outside the timed stages. Prints microseconds per decision by stage and decisions
per second (target >= 150k/s on one core), then profiles one pass with pyinstrument (cProfile when
pyinstrument is missing) and prints the top 10 functions by cumulative time. Writes
``bench/results/pipeline.json``.

``--explain`` runs the decider with explanations on (``CARBON_ROUTER_EXPLAIN``: ``runner_up`` and ``terms``
in every placement); each pass also reports the mean placement message size in bytes (uncompressed JSON).

    python -m bench.pipeline_bench [--requests N] [--batch N] [--repeats N] [--no-profile] [--default-gc]
                                   [--explain]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

import router.decider
from bench.common import BusyMeter, load_average, machine, print_table, summary, write_json
from router.commands import bundled
from router.decider import Decider
from router.kernel.columns import T
from router.models import GridSignal
from router.scoring import warm_up
from router.topology import load_topology
from streams.batchcodec import decode_checked_batch
from streams.codec import DEFAULT_MAX_BYTES
from streams.metrics import Metrics
from streams.worker import tune_gc

__all__ = ["build_records", "main"]

STAGES = ("decode", "kernel", "placements", "encode", "decide_other", "metrics")
TARGET_PER_S = 150_000


@dataclass(frozen=True, slots=True)
class Workload:
    """Pre-built request records and the signals to apply before the batch that reaches each one."""

    records: list[bytes]
    signals: list[GridSignal]  # in ts order
    ts: list[float]  # each record's ts


def build_records(n: int) -> Workload:
    """``n`` request values as bytes: the bundled requests cycled, fresh ids, ts over the signal timeline."""
    reqs = [orjson.loads(x) for x in bundled("sample_requests.jsonl").read_bytes().splitlines() if x.strip()]
    sig_dicts = [
        orjson.loads(x) for x in bundled("sample_signals.jsonl").read_bytes().splitlines() if x.strip()
    ]
    signals = sorted((GridSignal.model_validate(s) for s in sig_dicts), key=lambda s: s.ts)
    t0 = signals[0].ts
    span = max(max(r["ts"] for r in reqs), signals[-1].ts) - t0 + 1.0
    records: list[bytes] = []
    ts: list[float] = []
    for k in range(n):
        base = reqs[k % len(reqs)]
        t = t0 + k * span / n
        records.append(
            orjson.dumps({**base, "request_id": f"{base['request_id']}-c{k // len(reqs)}", "ts": t})
        )
        ts.append(t)
    return Workload(records, signals, ts)


@dataclass(slots=True)
class StageClock:
    """Accumulated seconds per stage of one pass."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` with its wall time added to ``stage``."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t0

        return timed


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def run_pass(
    w: Workload, batch: int, clock: StageClock | None = None, *, explain: bool = False
) -> tuple[float, int, int, int]:
    """One pass over every record with a fresh Decider; (seconds timed, decisions, rejected records, bytes
    of the placement messages)."""
    live = Decider(load_topology(None), explain=explain)
    plan = live.plan
    inner = clock or StageClock()
    live.scorer.decide = inner.wrap("kernel", live.scorer.decide)  # type: ignore[method-assign]
    # decider.py calls the names it imported from router.encode: swap them in its namespace, restore below
    decider: Any = router.decider
    original_placements, original_encode = decider.placements, decider.encode_placement
    original_columns = decider.encode_columns
    decider.placements = inner.wrap("placements", original_placements)
    decider.encode_placement = inner.wrap("encode", original_encode)
    decider.encode_columns = inner.wrap("encode", original_columns)
    metrics = Metrics("bench")
    k_sig, timed, decisions, bad, size = 0, 0.0, 0, 0, 0
    perf = time.perf_counter
    try:
        for start, stop in _batches(len(w.records), batch):
            while k_sig < len(w.signals) and w.signals[k_sig].ts <= w.ts[stop - 1]:  # not timed
                live.apply_signal(w.signals[k_sig])
                k_sig += 1
            t0 = perf()
            raws = w.records[start:stop]
            checked = decode_checked_batch(raws, plan, DEFAULT_MAX_BYTES, [0.0] * len(raws))
            bad += len(checked.problems)
            ts = checked.batch.f[:, T].tolist()
            t1 = perf()
            before = sum(inner.seconds[k] for k in ("kernel", "placements", "encode"))
            decided = live.decide_columns(checked.batch, decided_at=time.time())
            t2 = perf()
            metrics.record_placements(decided.placements, ts)  # what the data plane does after the acks
            t3 = perf()
            inner.seconds["decode"] += t1 - t0
            inside = sum(inner.seconds[k] for k in ("kernel", "placements", "encode")) - before
            inner.seconds["decide_other"] += (t2 - t1) - inside
            inner.seconds["metrics"] += t3 - t2
            timed += t3 - t0
            decisions += len(decided.values)
            size += sum(map(len, decided.values))
    finally:
        decider.placements, decider.encode_placement = original_placements, original_encode
        decider.encode_columns = original_columns
    return timed, decisions, bad, size


def profile_pass(w: Workload, batch: int, top: int = 10) -> list[dict[str, Any]]:
    """Profile one pass; the ``top`` functions by cumulative time (pyinstrument, else cProfile)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return _cprofile_pass(w, batch, top)
    prof = Profiler(interval=0.0005)
    prof.start()
    run_pass(w, batch)
    session = prof.stop()
    cumulative: dict[str, float] = {}
    own: dict[str, float] = {}

    def walk(frame: Any, on_stack: frozenset[str]) -> None:
        key = f"{frame.function} ({frame.file_path_short}:{frame.line_no})"
        if key not in on_stack:  # recursion counts once
            cumulative[key] = cumulative.get(key, 0.0) + frame.time
        own[key] = own.get(key, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child, on_stack | {key})

    root = session.root_frame()
    total = root.time if root is not None else 0.0
    if root is not None:
        walk(root, frozenset())
    skip = ("run_pass", "profile_pass", "<module>", "main", "[self]", "_run_module", "_run_code")
    ranked = [(k, v) for k, v in cumulative.items() if not k.startswith(skip)]
    ranked.sort(key=lambda kv: -kv[1])
    return [
        {"function": k, "cumulative_s": v, "share": v / total if total else 0.0, "self_s": own.get(k, 0.0)}
        for k, v in ranked[:top]
    ] + [{"function": "(profiled pass total)", "cumulative_s": total, "share": 1.0, "self_s": 0.0}]


def _cprofile_pass(w: Workload, batch: int, top: int) -> list[dict[str, Any]]:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    run_pass(w, batch)
    prof.disable()
    st = pstats.Stats(prof)
    rows = []
    for (file, line, fn), (_cc, _nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{fn} ({file}:{line})", "cumulative_s": ct, "share": 0.0, "self_s": tt})
    rows.sort(key=lambda r: -float(r["cumulative_s"]))
    return rows[:top]


def timed_passes(w: Workload, batch: int, repeats: int, explain: bool = False) -> list[dict[str, Any]]:
    """``repeats`` timed passes over the records ``w``: time per stage, decisions/s, CPU share, load."""
    passes: list[dict[str, Any]] = []
    for _ in range(repeats):
        clock = StageClock()
        gc.collect()
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        timed, decisions, bad, size = run_pass(w, batch, clock, explain=explain)
        cpu_share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        passes.append(
            {
                "timed_s": timed,
                "decisions": decisions,
                "rejected_records": bad,
                "decisions_per_s": decisions / timed,
                "bytes_per_placement": size / decisions,
                "us_per_decision": {k: v / decisions * 1e6 for k, v in clock.seconds.items()},
                "cpu_share": round(cpu_share, 3),
                "load_average": load_average(),
            }
        )
    return passes


def stage_rows(passes: list[dict[str, Any]], best: dict[str, Any]) -> list[list[object]]:
    """The report's rows: us per decision per stage and pass with the median, total, decisions/s, CPU."""
    rows: list[list[object]] = [
        [
            stage,
            *(p["us_per_decision"][stage] for p in passes),
            summary([p["us_per_decision"][stage] for p in passes])["median"],
        ]
        for stage in STAGES
    ]
    totals = [1e6 / p["decisions_per_s"] for p in passes]
    rows.append(["total", *totals, summary(totals)["median"]])
    rows.append(["decisions/s", *(p["decisions_per_s"] for p in passes), best["decisions_per_s"]])
    rows.append(["cpu share", *(p["cpu_share"] for p in passes), best["cpu_share"]])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Build the records, time ``--repeats`` passes, profile one, print and write the results."""
    ap = argparse.ArgumentParser(prog="python -m bench.pipeline_bench", description="in-process pipeline")
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3, help="timed passes (the report takes the median)")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--default-gc", action="store_true", help="keep CPython's GC thresholds (no tune_gc)")
    ap.add_argument("--explain", action="store_true", help="explanations on (runner_up and terms)")
    args = ap.parse_args(argv)
    facts = machine()
    warm_up()
    if not args.default_gc:
        tune_gc()
    w = build_records(args.requests)
    run_pass(build_records(2 * args.batch), args.batch, explain=args.explain)  # warm-up
    meter = BusyMeter()
    passes = timed_passes(w, args.batch, args.repeats, args.explain)
    busy = meter.busy_cpus()
    best = sorted(passes, key=lambda p: p["decisions_per_s"])[len(passes) // 2]  # the median pass
    print_table(
        f"in-process pipeline: {args.requests:,} records, batches of {args.batch} (us per decision)",
        ["stage", *(f"pass {k + 1}" for k in range(len(passes))), "median"],
        stage_rows(passes, best),
    )
    ok = best["decisions_per_s"] >= TARGET_PER_S
    print(
        f"\n  {'PASS' if ok else 'MISS'}  pipeline {best['decisions_per_s']:,.0f} decisions/s "
        f"(target >= {TARGET_PER_S:,}); load average {load_average()}, all CPUs busy {busy} during the run"
    )
    print(
        f"  info  explanations {'on' if args.explain else 'off'}: "
        f"{best['bytes_per_placement']:.0f} bytes per placement message (JSON, uncompressed)"
    )
    top: list[dict[str, Any]] = []
    if not args.no_profile:
        top = profile_pass(w, args.batch)
        print_table(
            "profile of one pass (top 10 by cumulative time)",
            ["function", "cumulative s", "share", "self s"],
            [[r["function"], r["cumulative_s"], f"{r['share']:.0%}", r["self_s"]] for r in top],
        )
    write_json(
        "pipeline",
        {
            "argv": vars(args),
            "machine": facts,
            "gc_threshold": gc.get_threshold(),
            "passes": passes,
            "median_pass": best,
            "busy_cpus_during_timed_passes": busy,
            "target": {"decisions_per_s": TARGET_PER_S, "measured": best["decisions_per_s"], "pass": ok},
            "profile_top": top,
            "load_average_at_end": load_average(),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
