"""Run the compiled kernel and the naive reference (tests/router/reference.py) side by side on a timeline.

``run_both`` is tests/router/test_kernel_reference.py's runner with three knobs more: ``explain`` (the
runner-up and the score terms), ``policy`` (a baseline pick rule of ``carbon-router compare``) and
``priors`` (regions with priors that stand in for stale values, tests/router/test_priors.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from router.encode import placements
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.plan import Plan
from router.scoring import Scorer
from tests.router.reference import NaiveRouter
from tests.router.scenarios import random_timeline, random_topology

__all__ = ["run_both"]


def run_both(
    seed: int,
    n_requests: int,
    *,
    regions: tuple[int, int] = (1, 8),
    explain: bool = False,
    policy: str = "score",
    priors: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], NaiveRouter]:
    """(kernel placements, reference placements, the reference router) for one seed, random batch cuts."""
    rng = np.random.default_rng(seed)
    topo = random_topology(rng, regions, priors=priors)
    plan = Plan(topo, policy=policy)
    scorer = Scorer(plan)
    ref = NaiveRouter(topo)
    got: list[dict[str, Any]] = []
    want: list[dict[str, Any]] = []
    pending: list[Request] = []

    def flush() -> None:
        while pending:
            k = int(rng.integers(1, len(pending) + 1))
            part, pending[:] = pending[:k], pending[k:]
            rows = [plan.request_row(r, ts=r.ts or 0.0, source="test") for r in part]
            batch = plan.arrays(part, rows)
            dec = scorer.decide(batch)
            got.extend(placements(plan, batch, dec, shares_version=0, explain=explain))  # type: ignore[arg-type]

    for t, ev in random_timeline(rng, topo, n_requests):
        if isinstance(ev, Request):
            pending.append(ev)
            want.append(ref.decide(ev, t, explain=explain, policy=policy))
            continue
        flush()
        if isinstance(ev, GridSignal):
            scorer.state.apply_signal(ev)
            ref.apply_signal(ev)
        elif isinstance(ev, RegionStatus):
            scorer.state.apply_status(ev)
            ref.apply_status(ev)
        elif isinstance(ev, GridForecast):
            scorer.forecasts.apply(ev)
            ref.apply_forecast(ev)
        elif ev[0] == "nu":
            scorer.budgets.set_nu(ev[1])
            ref.set_nu(list(ev[1]))
        else:
            scorer.state.set_duals(ev[1])
            ref.set_mu(list(ev[1] * topo.objective.dual_scale))
    flush()
    return got, want, ref
