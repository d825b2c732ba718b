"""The kernel benchmark's correctness gate: every scorer must agree with the kernel before it is timed.

``check_agreement`` runs every scorer on the full request pool of one region count and stops the run
(``AssertionError``, also under ``python -O``) unless every pick and every score equals the kernel's, then
diffs the first requests against the independent ``tests/router/reference.py`` ``NaiveRouter``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.kernel_problem import Problem
from bench.kernel_timing import SCORERS, Runners
from router import kernel

__all__ = ["check_agreement", "require"]


def require(ok: bool | np.bool_, message: str) -> None:
    """Stop the benchmark when a scorer is wrong (an ``assert`` would vanish under ``python -O``)."""
    if not ok:
        raise AssertionError(f"benchmark check failed: {message}")


def check_agreement(p: Problem, n: int, names: tuple[str, ...] = SCORERS) -> dict[str, Any]:
    """Assert that every named scorer picks the same regions (and scores) on the batch; return its statistics.

    Scores are compared bit for bit. The LP baseline's pick is ``argmax x`` and its score the pick's score;
    its LP objective is also checked against that score (relative gap <= 1e-9).
    """
    r = Runners(p, n, names)
    batch, rows = r.batches[0], r.rows[0]
    d = r.scorer.decide(batch)
    require(d.removed[:, kernel.FILTER_NAMES.index("capacity")].sum() == 0, "capacity bound in the benchmark")
    k_choice, k_score = d.out_i[:, 0], d.out_f[:, 5]
    results: list[tuple[str, Any, Any]] = []
    if "kernel_raw" in names:
        code = kernel._decide_batch(*r.raw_args[0])
        require(code == kernel.OK, f"raw kernel returned code {code}, not OK")
        raw_f, raw_i, _ = r.raw_out[0]
        results.append(("kernel_raw", raw_i[:, 0], raw_f[:, 5]))
    if "numpy" in names:
        results.append(("numpy", *r.numpy.decide(batch.f, batch.i)))
    if "numpy_request" in names:
        results.append(("numpy_request", *r.numpy_request.decide(batch.f, batch.i)))
    if "python" in names:
        results.append(("python", *r.naive.decide(*rows)))
    stats: dict[str, Any] = {}
    if "lp_request" in names and r.lp is not None:
        results.append(("lp_request", *r.lp.decide(batch.f, batch.i)))
        require(r.lp.objective_gap <= 1e-9, f"LP objective off its pick's score by {r.lp.objective_gap:.3g}")
        stats["lp_solves"] = r.lp.solves
        stats["lp_max_objective_gap"] = float(r.lp.objective_gap)
    for name, choice, score in results:
        choice, score = np.asarray(choice), np.asarray(score)
        bad = np.flatnonzero(choice != k_choice)
        require(bad.size == 0, f"{name} picks differ from the kernel at rows {bad[:10].tolist()}")
        require(np.array_equal(score, k_score), f"{name} scores differ from the kernel")
    _check_reference(p, k_choice)
    placed = k_choice >= 0
    return {
        "requests": n,
        "scorers_checked": ["kernel", *(name for name, _, _ in results)],
        "placed_share": float(placed.mean()),
        "mean_feasible_regions": float(d.out_i[:, 2].mean()),
        "local_share_of_placed": float((d.out_i[placed, 4] == 0).mean()) if placed.any() else 0.0,
        "removed_by_filter": {f: int(c) for f, c in zip(kernel.FILTER_NAMES, d.removed.sum(0), strict=True)},
        **stats,
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
        require(got == want, f"reference router picks {got} for {q.request_id}, kernel picks {want}")
