"""How the kernel benchmark times its scorers: budgets, interleaved slices, the per-cell runners and stats.

Per (R, N) cell the request pool is cut into ``len(pool) // N`` batches; every scorer walks them in order and
every call is timed alone with ``time.perf_counter_ns``, its capacity windows emptied before the call outside
the timed region. The scorers of a cell take turns in ~50 ms slices so that load from other processes hits
all of them alike. See ``bench/README.md``, "How it is timed".
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.baselines import NaivePythonScorer, NumpyBatchScorer
from bench.baselines_request import LpRequestScorer, NumpyRequestScorer
from bench.kernel_problem import Problem, clear_windows
from router import kernel
from router.kernel.columns import N_FILTERS
from router.kernel.structs import Outputs
from router.scoring import Scorer
from router.state import CapacityWindows

__all__ = [
    "FAST",
    "NAIVE",
    "SCORERS",
    "SCORER_TITLES",
    "SLOW_SCORERS",
    "Budget",
    "Runners",
    "budget_of",
    "cell_stats",
    "time_cell",
]

SCORERS = ("kernel", "kernel_raw", "numpy", "numpy_request", "python", "lp_request")
SCORER_TITLES = {
    "kernel": "router.scoring.Scorer.decide (validation + allocation + compiled kernel)",
    "kernel_raw": "router.kernel.decide_batch alone (inputs built, outputs preallocated)",
    "numpy": "bench.baselines.NumpyBatchScorer, (N, R) arrays per batch",
    "numpy_request": "bench.baselines_request.NumpyRequestScorer, length-R arrays per request",
    "python": "bench.baselines.NaivePythonScorer, pure-Python loops",
    "lp_request": "bench.baselines_request.LpRequestScorer, one HiGHS LP per request",
}
#: scorers that spend microseconds or more per request: few runs, one warm-up call
SLOW_SCORERS = frozenset({"numpy_request", "python", "lp_request"})


@dataclass(frozen=True, slots=True)
class Budget:
    """How long to time one scorer on one cell."""

    min_s: float  # stop once this much timed work and min_runs are reached
    max_s: float  # cap on the wall time spent timing (at least 3 runs are always taken)
    min_runs: int
    warmup: int


FAST = Budget(min_s=0.2, max_s=1.5, min_runs=50, warmup=20)
NAIVE = Budget(min_s=0.2, max_s=2.0, min_runs=3, warmup=1)


def budget_of(name: str) -> Budget:
    """The timing budget of a scorer."""
    return NAIVE if name in SLOW_SCORERS else FAST


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
    for name in runners.names:
        budget = budget_of(name)
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
    """The scorers of one problem, all on the same batches of size ``n``.

    The request pool is cut into ``len(pool) // n`` consecutive batches. ``pair(name)`` gives a scorer's
    (call, reset): each scorer walks the batches in order with its own cursor, and its ``reset`` (outside the
    timed region) empties its capacity windows and moves on to the next batch, so small-N cells time a
    representative mix of requests instead of one request over and over. Scorers are built only when named.
    """

    def __init__(self, p: Problem, n: int, names: tuple[str, ...] = SCORERS) -> None:
        pl, st, fc = p.plan, p.state, p.forecasts
        self.names = names
        self.scorer = Scorer(pl, st, fc)
        self.naive = NaivePythonScorer(pl, st, fc)
        self.numpy = NumpyBatchScorer(pl, st, fc)
        self.numpy_request = NumpyRequestScorer(pl, st, fc)
        self.lp = LpRequestScorer(pl, st, fc) if "lp_request" in names else None
        self.batches = [p.batch(k * n, (k + 1) * n) for k in range(len(p.requests) // n)]
        self.rows = [(b.f.tolist(), b.i.tolist(), b.allow.tolist()) for b in self.batches]
        self.raw_windows = w = CapacityWindows(pl.n_regions, initial=max(1024, n))
        self.raw_out: list[Outputs] = []
        self.raw_args: list[tuple[Any, ...]] = []
        extras = (
            self.scorer.budgets.kernel(),
            self.scorer.budgets.windows.kernel(),
            self.scorer.sessions.kernel(),
        )
        inputs = kernel.kernel_inputs(pl.kernel(), st.kernel(), fc.kernel(), w.kernel(), *extras)
        for b in self.batches:
            out = Outputs(
                np.zeros((n, len(kernel.OUT_FLOATS))),
                np.zeros((n, len(kernel.OUT_INTS)), dtype=np.int64),
                np.zeros((n, N_FILTERS), dtype=np.int64),
            )
            self.raw_out.append(out)
            self.raw_args.append(((b.f, b.i, b.allow), inputs, math.inf, tuple(out)))

    def pair(self, name: str) -> tuple[Callable[[], object], Callable[[], None]]:
        """(call, reset) of one scorer; the call reads its arguments from a one-element list set by reset."""
        arrays = [(b.f, b.i, b.allow) for b in self.batches]
        inputs: list[Any]
        clear: Callable[[], None]
        decide: Callable[..., object]
        if name == "kernel":
            inputs, clear, decide = [(b,) for b in self.batches], self._clear_kernel, self.scorer.decide
        elif name == "kernel_raw":
            inputs, clear, decide = self.raw_args, self._clear_raw, kernel.decide_batch
        elif name == "numpy":
            inputs, clear, decide = arrays, self.numpy.reset, self.numpy.decide
        elif name == "numpy_request":
            inputs, clear, decide = arrays, self.numpy_request.reset, self.numpy_request.decide
        elif name == "python":
            inputs, clear, decide = list(self.rows), self.naive.reset, self.naive.decide
        elif name == "lp_request" and self.lp is not None:
            inputs, clear, decide = arrays, self.lp.reset, self.lp.decide
        else:
            raise ValueError(f"scorer {name!r} is not built here; expected one of {self.names}")
        cur: list[Any] = [inputs[-1]]
        cursor = [len(inputs) - 1]

        def reset() -> None:
            cursor[0] = (cursor[0] + 1) % len(inputs)
            cur[0] = inputs[cursor[0]]
            clear()

        def call() -> object:
            return decide(*cur[0])

        return call, reset

    def _clear_kernel(self) -> None:
        clear_windows(self.scorer.windows)

    def _clear_raw(self) -> None:
        clear_windows(self.raw_windows)


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
