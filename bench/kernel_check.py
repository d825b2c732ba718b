"""The kernel benchmark's correctness gate: every scorer must agree with the kernel before it is timed.

``check_agreement`` first diffs the baselines' region values (``bench.baselines_values``: value history,
forecast, static constants) against the kernel's own (``router.kernel._values._region_values``) at every
request time of the pool, then runs every scorer on the whole pool and stops the run (``AssertionError``,
also under ``python -O``) unless every pick and every score equals the kernel's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.baselines_values import NpValues, PyValues
from bench.kernel_problem import Problem
from bench.kernel_timing import SCORERS, Runners
from router import kernel
from router.kernel._values import CUR_F_ROWS, CUR_FRESH, CUR_I_ROWS, CUR_UNIT, CUR_VALUED, _region_values
from router.kernel.columns import (
    CARBON_USD_PER_TONNE,
    CHOICE,
    LAYER,
    N_FEASIBLE,
    OUT_SCORE_USD,
    SIGNAL_SOURCE,
    SIGNAL_SOURCES,
    T,
)

__all__ = ["check_agreement", "check_values", "require"]


def require(ok: bool | np.bool_, message: str) -> None:
    """Stop the benchmark when a scorer is wrong (an ``assert`` would vanish under ``python -O``)."""
    if not ok:
        raise AssertionError(f"benchmark check failed: {message}")


def check_agreement(p: Problem, n: int, names: tuple[str, ...] = SCORERS) -> dict[str, Any]:
    """Assert that every named scorer picks the same regions (and scores) on the batch; return its statistics.

    Scores are compared bit for bit. The LP baseline's pick is ``argmax x`` and its score the pick's score;
    its LP objective is also checked against that score (relative gap <= 1e-9).
    """
    intervals = check_values(p)
    r = Runners(p, n, names)
    batch, rows = r.batches[0], r.rows[0]
    d = r.scorer.decide(batch)
    require(d.removed[:, kernel.FILTER_NAMES.index("capacity")].sum() == 0, "capacity bound in the benchmark")
    k_choice, k_score = d.out_i[:, CHOICE], d.out_f[:, OUT_SCORE_USD]
    results: list[tuple[str, Any, Any]] = []
    if "kernel_raw" in names:
        code = kernel.decide_batch(*r.raw_args[0])
        require(code == kernel.OK, f"raw kernel returned code {code}, not OK")
        out = r.raw_out[0]
        results.append(("kernel_raw", out.i[:, CHOICE], out.f[:, OUT_SCORE_USD]))
    arrays = (batch.f, batch.i, batch.allow)
    if "numpy" in names:
        results.append(("numpy", *r.numpy.decide(*arrays)))
    if "numpy_request" in names:
        results.append(("numpy_request", *r.numpy_request.decide(*arrays)))
    if "python" in names:
        results.append(("python", *r.naive.decide(*rows)))
    stats: dict[str, Any] = {}
    if "lp_request" in names and r.lp is not None:
        results.append(("lp_request", *r.lp.decide(*arrays)))
        require(r.lp.objective_gap <= 1e-9, f"LP objective off its pick's score by {r.lp.objective_gap:.3g}")
        stats["lp_solves"] = r.lp.solves
        stats["lp_max_objective_gap"] = float(r.lp.objective_gap)
    for name, choice, score in results:
        choice, score = np.asarray(choice), np.asarray(score)
        bad = np.flatnonzero(choice != k_choice)
        require(bad.size == 0, f"{name} picks differ from the kernel at rows {bad[:10].tolist()}")
        require(np.array_equal(score, k_score), f"{name} scores differ from the kernel")
    placed = k_choice >= 0
    sources = np.bincount(d.out_i[placed, SIGNAL_SOURCE], minlength=len(SIGNAL_SOURCES))
    return {
        "requests": n,
        "scorers_checked": ["kernel", *(name for name, _, _ in results)],
        "placed_share": float(placed.mean()),
        "mean_feasible_regions": float(d.out_i[:, N_FEASIBLE].mean()),
        "local_share_of_placed": float((d.out_i[placed, LAYER] == 0).mean()) if placed.any() else 0.0,
        "removed_by_filter": {f: int(c) for f, c in zip(kernel.FILTER_NAMES, d.removed.sum(0), strict=True)},
        "placed_by_signal_source": {s: int(c) for s, c in zip(SIGNAL_SOURCES, sources, strict=True)},
        "value_intervals_in_pool": intervals,
        **stats,
    }


def check_values(p: Problem) -> int:
    """Diff both baselines' region values against the kernel's at every request time of the pool.

    Each side keeps its table while the time stays in the interval it returned (as the scorers do), so the
    intervals are checked too. Unit scores are compared bit for bit; returns how many intervals the pool
    spans (value recomputations of one call over the whole pool).
    """
    lam = float(p.plan.scalars[CARBON_USD_PER_TONNE])
    py, npv = PyValues(p.state, p.forecasts, lam), NpValues(p.state, p.forecasts, lam)
    R = p.plan.n_regions
    reg, fc = p.state.kernel(), p.forecasts.kernel()
    cur = np.empty((CUR_F_ROWS, R))
    cur_i = np.empty((CUR_I_ROWS, R), dtype=np.int64)
    words = np.zeros((2, (R + 63) >> 6), dtype=np.int64)
    tabs: dict[str, Any] = {"python": None, "numpy": None}
    intervals = 0
    for t in sorted({row[0][T] for row in p.rows}):
        _region_values(t, reg, fc, lam, cur, cur_i, words)
        want = (cur[CUR_UNIT], cur_i[CUR_VALUED] != 0, cur_i[CUR_FRESH] != 0)
        for name, values in (("python", py), ("numpy", npv)):
            tab = tabs[name]
            if tab is None or not tab.lo <= t < tab.hi:
                tab = tabs[name] = values.at(t)
                intervals += name == "python"
            for k, what in enumerate(("unit score", "valued", "fresh")):
                ok = np.array_equal(np.asarray(tab[k]), want[k])
                require(ok, f"{name} region {what} differs from the kernel's at t={t!r}")
    return intervals
