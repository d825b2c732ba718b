"""Kernel benchmark: the compiled mask -> score -> pick kernel against a pure-Python and a NumPy scorer.

Run with ``make bench`` (or ``python -m bench.kernel_bench [--full]``). One process, one synthetic problem per
region count R, every scorer on the same batches. For each (R, N) cell every scorer is timed per call with
``time.perf_counter_ns`` after a warm-up, with the capacity windows reset outside the timed region so that
every repeat does the same work. Prints a table per scorer, the targets at R = 32, N = 1024 and the machine
facts, and writes everything to ``bench/results/kernel.json``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

from bench.baselines import NaivePythonScorer, NumpyBatchScorer
from router import kernel
from router.models import GridSignal, Request
from router.plan import FloatArray, IntArray, Plan, RequestArrays
from router.scoring import Scorer, warm_up
from router.state import CapacityWindows, RegionState
from router.topology import Topology

__all__ = ["main"]

REGIONS = (8, 32, 128)
REGIONS_FULL = (*REGIONS, 512)
BATCHES = (1, 64, 1024)
SCORERS = ("kernel", "kernel_raw", "numpy", "python")
SCORER_TITLES = {
    "kernel": "router.scoring.Scorer.decide (validation + allocation + compiled kernel)",
    "kernel_raw": "router.kernel._decide_batch alone (preallocated outputs)",
    "numpy": "bench.baselines.NumpyBatchScorer, (N, R) arrays per batch",
    "python": "bench.baselines.NaivePythonScorer, pure-Python loops",
}
TARGET_R, TARGET_N = 32, 1024
T0 = 1_700_000_000.0
JURISDICTIONS: tuple[tuple[str, list[str]], ...] = (
    ("DE", ["EU"]),
    ("FR", ["EU"]),
    ("SE", ["EU"]),
    ("US", []),
    ("JP", []),
    ("BR", []),
)
RESULTS = Path(__file__).resolve().parent / "results" / "kernel.json"


@dataclass(frozen=True, slots=True)
class Budget:
    """How long to time one scorer on one cell."""

    min_s: float  # stop once this much timed work and min_runs are reached
    max_s: float  # cap on the wall time spent timing (at least 3 runs are always taken)
    min_runs: int
    warmup: int


FAST = Budget(min_s=0.2, max_s=1.5, min_runs=50, warmup=20)
NAIVE = Budget(min_s=0.2, max_s=2.0, min_runs=3, warmup=1)


def synthetic_topology(R: int, rng: np.random.Generator) -> Topology:
    """R regions in six jurisdictions, four service nodes homed on r0..r3, two models, a full RTT table."""
    regions: list[dict[str, Any]] = []
    for j in range(R):
        jur, tags = JURISDICTIONS[j % len(JURISDICTIONS)]
        served = ["small", "large"] if rng.random() < 0.8 else [str(rng.choice(["small", "large"]))]
        regions.append(
            {
                "id": f"r{j}",
                "jurisdiction": jur,
                "tags": tags,
                "lat": float(rng.uniform(-60, 60)),
                "lon": float(rng.uniform(-180, 180)),
                "pue": 1.2,
                "capacity_kw": 1e6,  # ~1.7e16 nWh per window: never binds in this benchmark
                "models": served,
            }
        )
    nodes = [{"id": f"n{k}", "home_region": f"r{k}", "lat": 0.0, "lon": 0.0} for k in range(4)]
    rtt = {
        n["id"]: {f"r{j}": 2.0 if j == k else float(rng.uniform(5, 250)) for j in range(R)}
        for k, n in enumerate(nodes)
    }
    sources = range(min(R, 16))
    egress = {f"r{a}": {f"r{b}": float(rng.uniform(0.0, 0.12)) for b in range(R) if b != a} for a in sources}
    return Topology.model_validate(
        {
            "objective": {"carbon_usd_per_tonne": 100.0, "relocation_fixed_usd": 1e-6},
            "regions": regions,
            "service_nodes": nodes,
            "models": [
                {"id": "small", "wh_per_token": 0.0005, "ms_per_token": 0.02, "base_ms": 20.0},
                {"id": "large", "wh_per_token": 0.004, "ms_per_token": 0.08, "base_ms": 60.0},
            ],
            "rtt_ms": rtt,
            "egress_usd_per_gb": egress,
        }
    )


def synthetic_signals(R: int, rng: np.random.Generator) -> list[GridSignal]:
    """One fresh signal per region (30 s old at T0, valid 900 s) with price, carbon and PUE."""
    return [
        GridSignal(
            region=f"r{j}",
            ts=T0 - 30.0,
            price_usd_per_mwh=float(rng.uniform(-10, 250)),
            marginal_gco2_per_kwh=float(rng.uniform(10, 800)),
            pue=float(rng.uniform(1.05, 1.6)),
            valid_for_s=900.0,
        )
        for j in range(R)
    ]


def synthetic_requests(R: int, n: int, rng: np.random.Generator) -> list[Request]:
    """A mix that exercises every filter but capacity: budgets, jurisdictions, models, state, pinning."""
    out: list[Request] = []
    for k in range(n):
        q: dict[str, Any] = {
            "request_id": f"q{k}",
            "origin": f"n{int(rng.integers(0, 4))}",
            "latency_budget_ms": float(rng.choice([60.0, 150.0, 300.0, 1000.0, 5000.0])),
            "payload_bytes": int(rng.integers(1_000, 2_000_000)),
        }
        if rng.random() < 0.5:
            q["model"] = str(rng.choice(["small", "large"]))
            q["tokens"] = int(rng.integers(50, 4000))
        else:
            q["energy_wh"] = float(rng.lognormal(-1.0, 1.0))
            q["compute_ms"] = float(rng.uniform(5, 200))
        if rng.random() < 0.3:
            q["state_region"] = f"r{int(rng.integers(0, min(R, 16)))}"
            q["state_bytes"] = int(rng.integers(100_000, 500_000_000))
            q["state_pinned"] = bool(rng.random() < 0.15)
        u = rng.random()
        if u < 0.25:
            q["allowed_jurisdictions"] = ["EU"]
        elif u < 0.35:
            q["allowed_jurisdictions"] = ["US"]
        elif u < 0.40:
            q["allowed_jurisdictions"] = ["JP", "SE"]
        out.append(Request.model_validate(q))
    return out


@dataclass(slots=True)
class Problem:
    """One region count: topology, plan, live state, and the pool of requests every cell cuts batches from."""

    topo: Topology
    plan: Plan
    state: RegionState
    signals: list[GridSignal]
    requests: list[Request]
    rows: list[tuple[list[float], list[int]]]

    def batch(self, start: int, stop: int) -> RequestArrays:
        """Requests ``start:stop`` of the pool as kernel arrays."""
        return self.plan.arrays(self.requests[start:stop], self.rows[start:stop])


def build_problem(R: int, n_max: int, seed: int) -> Problem:
    """Synthetic problem for R regions; every region gets a fresh signal and a capacity dual."""
    rng = np.random.default_rng([seed, R])
    topo = synthetic_topology(R, rng)
    plan = Plan(topo)
    state = RegionState(plan)
    signals = synthetic_signals(R, rng)
    for sig in signals:
        state.apply_signal(sig)
    state.set_duals(np.where(rng.random(R) < 0.5, rng.uniform(0, 2e-5, R), 0.0))
    reqs = synthetic_requests(R, n_max, rng)
    rows = [plan.request_row(q, ts=T0 + k * 1e-3, source="bench") for k, q in enumerate(reqs)]
    return Problem(topo, plan, state, signals, reqs, rows)


def clear_windows(w: CapacityWindows) -> None:
    """Empty the kernel's capacity ring buffers in place."""
    w.head[:] = 0
    w.len[:] = 0
    w.sum[:] = 0
    w.next_expiry[:] = 1e300


@dataclass(slots=True)
class _Timing:
    """Per-call times of one scorer on one cell, collected over several interleaved slices."""

    call: Callable[[], object]
    reset: Callable[[], None]
    budget: Budget
    times: list[int] = field(default_factory=list)
    timed_ns: int = 0
    wall_ns: int = 0
    cpu_ns: int = 0

    def done(self) -> bool:
        enough = len(self.times) >= self.budget.min_runs and self.timed_ns >= self.budget.min_s * 1e9
        return enough or (len(self.times) >= 3 and self.wall_ns >= self.budget.max_s * 1e9)

    def slice(self, slice_ns: int) -> None:
        """Time calls for about ``slice_ns`` of wall time (at least one call); ``reset`` is not timed."""
        clock = time.perf_counter_ns
        cpu0 = time.thread_time_ns()
        start = clock()
        while True:
            self.reset()
            t0 = clock()
            self.call()
            t1 = clock()
            self.times.append(t1 - t0)
            self.timed_ns += t1 - t0
            if clock() - start >= slice_ns or self.done():
                break
        self.wall_ns += clock() - start
        self.cpu_ns += time.thread_time_ns() - cpu0


def time_cell(runners: Runners, slice_s: float = 0.05) -> dict[str, tuple[list[int], float]]:
    """Per-call wall times (ns) of every scorer on one cell, and each scorer's CPU share.

    The scorers take turns in slices of ~50 ms until each has its budget, so that a burst of load from
    another process hits all of them alike and the speed-up ratios stay comparable. The CPU share is this
    thread's CPU time over wall time (1.0 = it had a CPU to itself). Warm-up calls come first; the garbage
    collector is off while timing.
    """
    timings: dict[str, _Timing] = {}
    for name in SCORERS:
        budget = NAIVE if name == "python" else FAST
        timings[name] = t = _Timing(*runners.pair(name), budget)
        for _ in range(budget.warmup):
            t.reset()
            t.call()
    gc.disable()
    try:
        while active := [t for t in timings.values() if not t.done()]:
            for t in active:
                t.slice(int(slice_s * 1e9))
    finally:
        gc.enable()
    return {name: (t.times, t.cpu_ns / max(1, t.wall_ns)) for name, t in timings.items()}


class Runners:
    """The four scorers of one problem, all on the same batches of size ``n``.

    The request pool is cut into ``len(pool) // n`` consecutive batches. ``pair(name)`` gives a scorer's
    (call, reset): each scorer walks the batches in order with its own cursor, and its ``reset`` (outside the
    timed region) empties its capacity windows and moves on to the next batch, so small-N cells time a
    representative mix of requests instead of one request over and over.
    """

    def __init__(self, p: Problem, n: int) -> None:
        pl, st = p.plan, p.state
        self.scorer = Scorer(pl, st)
        self.naive = NaivePythonScorer(pl, st)
        self.numpy = NumpyBatchScorer(pl, st)
        self.batches = [p.batch(k * n, (k + 1) * n) for k in range(len(p.requests) // n)]
        self.rows = [(b.f.tolist(), b.i.tolist()) for b in self.batches]
        self.raw_windows = w = CapacityWindows(pl.n_regions, initial=max(1024, n))
        self.raw_out: list[tuple[FloatArray, IntArray, IntArray]] = []
        self.raw_args: list[tuple[Any, ...]] = []
        for b in self.batches:
            out = (
                np.zeros((n, len(kernel.OUT_FLOATS))),
                np.zeros((n, len(kernel.OUT_INTS)), dtype=np.int64),
                np.zeros((n, len(kernel.FILTER_NAMES)), dtype=np.int64),
            )
            self.raw_out.append(out)
            self.raw_args.append(
                (
                    *(b.f, b.i, pl.rtt, pl.home, pl.egress_per_byte, pl.allow.array, pl.model_ok),
                    *(st.f, st.i, st.cap_nwh, pl.scalars, w.ts, w.e, w.head, w.len, w.sum, w.next_expiry),
                    *out,
                )
            )

    def pair(self, name: str) -> tuple[Callable[[], object], Callable[[], None]]:
        """(call, reset) of one scorer; the call reads its batch from a one-element list set by reset."""
        per_scorer: dict[str, list[Any]] = {
            "kernel": list(self.batches),
            "kernel_raw": self.raw_args,
            "numpy": [(b.f, b.i) for b in self.batches],
            "python": list(self.rows),
        }
        inputs = per_scorer[name]
        clear: Callable[[], None] = {
            "kernel": lambda: clear_windows(self.scorer.windows),
            "kernel_raw": lambda: clear_windows(self.raw_windows),
            "numpy": self.numpy.reset,
            "python": self.naive.reset,
        }[name]
        cur: list[Any] = [inputs[-1]]
        cursor = [len(inputs) - 1]

        def reset() -> None:
            cursor[0] = (cursor[0] + 1) % len(inputs)
            cur[0] = inputs[cursor[0]]
            clear()

        decide, raw, np_decide, py_decide = (
            self.scorer.decide,
            kernel._decide_batch,
            self.numpy.decide,
            self.naive.decide,
        )
        call: Callable[[], object] = {
            "kernel": lambda: decide(cur[0]),
            "kernel_raw": lambda: raw(*cur[0]),
            "numpy": lambda: np_decide(*cur[0]),
            "python": lambda: py_decide(*cur[0]),
        }[name]
        return call, reset


def _require(ok: bool | np.bool_, message: str) -> None:
    """Stop the benchmark when a scorer is wrong (an ``assert`` would vanish under ``python -O``)."""
    if not ok:
        raise AssertionError(f"benchmark check failed: {message}")


def check_agreement(p: Problem, n: int) -> dict[str, Any]:
    """Assert that every scorer picks the same regions (and scores) on the batch; return mask statistics."""
    r = Runners(p, n)
    batch, rows = r.batches[0], r.rows[0]
    d = r.scorer.decide(batch)
    _require(
        d.removed[:, kernel.FILTER_NAMES.index("capacity")].sum() == 0, "capacity bound in the benchmark"
    )
    k_choice, k_score = d.out_i[:, 0], d.out_f[:, 5]
    code = kernel._decide_batch(*r.raw_args[0])
    _require(code == kernel.OK, f"raw kernel returned code {code}, not OK")
    raw_f, raw_i, _ = r.raw_out[0]
    np_choice, np_score = r.numpy.decide(batch.f, batch.i)
    py_choice, py_score = r.naive.decide(*rows)
    for name, choice, score in (
        ("kernel_raw", raw_i[:, 0], raw_f[:, 5]),
        ("numpy", np_choice, np_score),
        ("python", np.array(py_choice), np.array(py_score)),
    ):
        bad = np.flatnonzero(choice != k_choice)
        _require(bad.size == 0, f"{name} picks differ from the kernel at rows {bad[:10].tolist()}")
        _require(np.array_equal(score, k_score), f"{name} scores differ from the kernel")
    _check_reference(p, k_choice)
    placed = k_choice >= 0
    return {
        "requests": n,
        "placed_share": float(placed.mean()),
        "mean_feasible_regions": float(d.out_i[:, 2].mean()),
        "local_share_of_placed": float((d.out_i[placed, 4] == 0).mean()) if placed.any() else 0.0,
        "removed_by_filter": {f: int(c) for f, c in zip(kernel.FILTER_NAMES, d.removed.sum(0), strict=True)},
    }


def _check_reference(p: Problem, k_choice: np.ndarray, n_ref: int = 64) -> None:
    """Diff the first requests against tests/router/reference.py's NaiveRouter (independent of the kernel)."""
    from tests.router.reference import NaiveRouter

    ref = NaiveRouter(p.topo)
    for sig in p.signals:
        ref.apply_signal(sig)
    ref.set_mu(p.state.f[:, 5].tolist())
    for k, q in enumerate(p.requests[:n_ref]):
        got = ref.decide(q, p.rows[k][0][0])["region"]
        want = None if k_choice[k] < 0 else p.plan.region_ids[k_choice[k]]
        _require(got == want, f"reference router picks {got} for {q.request_id}, kernel picks {want}")


def cell_stats(scorer: str, R: int, n: int, times: list[int], cpu_share: float) -> dict[str, Any]:
    """Median and p99 of one cell, per batch, per (request x region) and as decisions per second."""
    arr = np.asarray(times, dtype=np.float64)
    med, p99 = float(np.median(arr)), float(np.percentile(arr, 99))
    return {
        "scorer": scorer,
        "R": R,
        "N": n,
        "runs": len(times),
        "cpu_share": cpu_share,
        "median_ns": med,
        "p99_ns": p99,
        "min_ns": float(arr.min()),
        "ns_per_pair_median": med / (n * R),
        "ns_per_pair_p99": p99 / (n * R),
        "decisions_per_s_median": n / med * 1e9,
        "decisions_per_s_p99": n / p99 * 1e9,
    }


def machine_facts() -> dict[str, Any]:
    """CPU, versions, Numba settings and the repository commit the numbers belong to."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout)
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    layer = getattr(numba.config, "THREADING_LAYER", "unknown")  # set at import, untyped
    return {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threading_layer": f"{layer} (numba.config; the kernel has no parallel code)",
        "numba_disable_jit": bool(getattr(numba.config, "DISABLE_JIT", False)),
        "njit_flags": dict(kernel.NJIT_FLAGS),
        "timer_overhead_ns": _timer_overhead_ns(),
        "calibration_ms_at_start": _calibration_ms(),
        "load_average_at_start": os.getloadavg()[0],
        "git_commit": commit + ("+dirty" if dirty else ""),
    }


def _busy_cpu_s() -> float:
    """CPU seconds all processes have spent busy since boot (``/proc/stat``; 0.0 where it is missing)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    jiffies = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    """CPU seconds this process has used (user + system)."""
    t = os.times()
    return t.user + t.system


def _calibration_ms() -> float:
    """Best of 5 runs of a fixed pure-Python loop: a speed index for comparing runs across host load."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        acc = 0.0
        for k in range(200_000):
            acc += k * 1e-9
        best = min(best, time.perf_counter() - t0)
    return round(best * 1e3, 3)


def _timer_overhead_ns() -> float:
    """Median cost of two back-to-back ``perf_counter_ns`` calls (included in every timed call)."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    return float(np.median(samples))


def print_table(scorer: str, cells: list[dict[str, Any]]) -> None:
    """One scorer's cells as a table."""
    print(f"\n== {scorer}: {SCORER_TITLES[scorer]}")
    head = ("R", "N", "runs", "cpu%", "med us/batch", "p99 us/batch", "ns/pair", "p99 ns/pair", "decisions/s")
    print("{:>5} {:>5} {:>7} {:>5} {:>13} {:>13} {:>9} {:>11} {:>12}".format(*head))
    for c in cells:
        if c["scorer"] == scorer:
            print(
                f"{c['R']:>5} {c['N']:>5} {c['runs']:>7} {c['cpu_share']:>5.0%} {c['median_ns'] / 1e3:>13.2f}"
                f" {c['p99_ns'] / 1e3:>13.2f} {c['ns_per_pair_median']:>9.2f} {c['ns_per_pair_p99']:>11.2f}"
                f" {c['decisions_per_s_median']:>12.4g}"
            )


def targets(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets at R = 32, N = 1024, measured through the public wrapper."""
    at = {c["scorer"]: c for c in cells if c["R"] == TARGET_R and c["N"] == TARGET_N}
    k = at["kernel"]["median_ns"]
    rows = [
        ("kernel speed-up vs naive Python", at["python"]["median_ns"] / k, ">=", 100.0, "x"),
        ("kernel speed-up vs NumPy per batch", at["numpy"]["median_ns"] / k, ">=", 3.0, "x"),
        ("kernel ns per request x region", at["kernel"]["ns_per_pair_median"], "<=", 3.0, "ns"),
    ]
    out = []
    for name, value, op, goal, unit in rows:
        ok = value >= goal if op == ">=" else value <= goal
        out.append({"target": name, "measured": value, "op": op, "goal": goal, "unit": unit, "pass": ok})
    out.append(
        {
            "target": "raw kernel ns per request x region (information, no target)",
            "measured": at["kernel_raw"]["ns_per_pair_median"],
            "unit": "ns",
        }
    )
    return out


def run_grid(
    regions: tuple[int, ...], seed: int, started: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Check the scorers agree, then time every scorer on every (R, N) cell."""
    cells: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for R in regions:
        p = build_problem(R, max(BATCHES), seed)
        checks[str(R)] = check_agreement(p, max(BATCHES))
        for n in BATCHES:
            for scorer, (times, cpu_share) in time_cell(Runners(p, n)).items():
                cells.append(cell_stats(scorer, R, n, times, cpu_share))
            print(f"done R={R:<4} N={n:<5} ({time.perf_counter() - started:6.1f} s)", file=sys.stderr)
    return cells, checks


def report(
    facts: dict[str, Any], checks: dict[str, Any], cells: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Print machine facts, batch statistics, the tables, the speed-ups and the targets."""
    print("machine:")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    print("\nbenchmark batch (all scorers agree on every pick; capacity never binds):")
    for R, c in checks.items():
        print(
            f"  R={R:>4}: placed {c['placed_share']:.0%}, mean feasible regions"
            f" {c['mean_feasible_regions']:.1f}, local {c['local_share_of_placed']:.0%},"
            f" removed by filter {c['removed_by_filter']}"
        )
    for scorer in SCORERS:
        print_table(scorer, cells)
    print("\nspeed-up of the kernel (public wrapper), by median time per batch:")
    print(f"{'R':>5} {'N':>5} {'vs python':>10} {'vs numpy':>9} {'wrapper overhead us':>20}")
    by = {(c["scorer"], c["R"], c["N"]): c for c in cells}
    for R, n in sorted({(c["R"], c["N"]) for c in cells}):
        k = by["kernel", R, n]["median_ns"]
        over = (k - by["kernel_raw", R, n]["median_ns"]) / 1e3
        vs_py, vs_np = by["python", R, n]["median_ns"] / k, by["numpy", R, n]["median_ns"] / k
        print(f"{R:>5} {n:>5} {vs_py:>9.1f}x {vs_np:>8.1f}x {over:>20.2f}")
    goals = targets(cells)
    print(f"\ntargets at R = {TARGET_R}, N = {TARGET_N} (kernel through router.scoring.Scorer.decide):")
    for g in goals:
        if "pass" in g:
            verdict, goal = ("PASS" if g["pass"] else "MISS"), f"target {g['op']} {g['goal']:g}"
            print(f"  {verdict}  {g['target']}: {g['measured']:.2f} {g['unit']} ({goal})")
        else:
            print(f"  info  {g['target']}: {g['measured']:.2f} {g['unit']}")
    return goals


def main(argv: list[str] | None = None) -> int:
    """Run the grid, print the tables and targets, write the JSON; returns the process exit code."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.kernel_bench", description=(__doc__ or "kernel benchmark").splitlines()[0]
    )
    ap.add_argument("--full", action="store_true", help="also run R = 512")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the synthetic problem")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    busy0, own0 = _busy_cpu_s(), _own_cpu_s()
    facts = machine_facts()
    if facts["load_average_at_start"] > 0.5:
        warn(f"load average {facts['load_average_at_start']:.2f} at start: other processes share the CPU")
    if facts["numba_disable_jit"]:
        warn("NUMBA_DISABLE_JIT is set; the kernel numbers are pure-Python numbers")
    warm_up()
    cells, checks = run_grid(REGIONS_FULL if args.full else REGIONS, args.seed, started)
    elapsed = time.perf_counter() - started
    facts["load_average_at_end"] = os.getloadavg()[0]
    facts["calibration_ms_at_end"] = _calibration_ms()
    # CPUs kept busy by *other* processes during the run: on this 2-vCPU VM even one busy neighbour slows
    # the benchmark (the vCPUs can share a physical core) without lowering the cpu% column
    others = max(0.0, (_busy_cpu_s() - busy0) - (_own_cpu_s() - own0)) / elapsed
    facts["other_busy_cpus_during_run"] = round(others, 2)
    if others > 0.2:
        warn(f"other processes kept {others:.2f} CPUs busy during the run; rerun on a quiet machine")
    goals = report(facts, checks, cells)
    print(f"\nrun took {elapsed:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "argv": sys.argv[1:] if argv is None else argv,
        "seed": args.seed,
        "elapsed_s": elapsed,
        "machine": facts,
        "budgets": {"fast": asdict(FAST), "python": asdict(NAIVE)},
        "batch_checks": checks,
        "cells": cells,
        "targets": goals,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def warn(message: str) -> None:
    """A warning on stderr, so that stdout stays the report."""
    print(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
