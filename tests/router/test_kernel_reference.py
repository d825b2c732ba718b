"""The compiled kernel agrees exactly with the naive reference on many random cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from router.encode import placements
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.plan import Plan
from router.scoring import Scorer
from tests.router.reference import FILTERS, NaiveRouter
from tests.router.scenarios import random_timeline, random_topology


def _run_both(
    seed: int, n_requests: int, regions: tuple[int, int] = (1, 8)
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], NaiveRouter]:
    rng = np.random.default_rng(seed)
    topo = random_topology(rng, regions)
    plan = Plan(topo)
    scorer = Scorer(plan)
    ref = NaiveRouter(topo)
    got: list[dict[str, Any]] = []
    want: list[dict[str, Any]] = []
    pending: list[Request] = []

    def flush() -> None:
        # random batch sizes: the kernel's result must not depend on how requests are batched
        while pending:
            k = int(rng.integers(1, len(pending) + 1))
            part, pending[:] = pending[:k], pending[k:]
            rows = [plan.request_row(r, ts=r.ts or 0.0, source="test") for r in part]
            batch = plan.arrays(part, rows)
            got.extend(placements(plan, batch, scorer.decide(batch), shares_version=0))

    for t, ev in random_timeline(rng, topo, n_requests):
        if isinstance(ev, Request):
            pending.append(ev)
            want.append(ref.decide(ev, t))
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
        else:
            scorer.state.set_duals(ev[1])
            ref.set_mu(list(ev[1] * topo.objective.dual_scale))
    flush()
    return got, want, ref


def test_kernel_matches_reference_on_10000_random_cases() -> None:
    """Every placement field (region, reason, costs, counts, signal provenance) equals the reference's,
    bit for bit, with price and carbon of different ages and forecasts standing in for stale values."""
    total = 0
    reasons: set[str] = set()
    sources: dict[str | None, int] = {}
    forecast_relocations = 0
    ties = 0
    all_infeasible = 0
    for seed in range(250):
        got, want, ref = _run_both(seed, 45)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g == w, f"seed {seed}, request {w['request_id']}:\nkernel    {g}\nreference {w}"
            if w["status"] == "rejected":
                reasons.add(w["reason"])
                all_infeasible += 1
            sources[w["signal_source"]] = sources.get(w["signal_source"], 0) + 1
            forecast_relocations += w["signal_source"] == "forecast" and w["layer"] != "local"
        ties += ref.ties
        total += len(got)
    assert total >= 10_000
    assert reasons == set(FILTERS), f"not every rejection reason was exercised: {reasons}"
    assert ties > 100, (ties, all_infeasible)
    assert all_infeasible > 100, (ties, all_infeasible)
    # every provenance occurs often: live, forecast (also for relocation targets) and stale home values
    assert min(sources["live"], sources["stale"]) > 500, sources
    assert sources["forecast"] > 100, sources
    assert forecast_relocations > 50, forecast_relocations


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batching_does_not_change_decisions(seed: int) -> None:
    """One batch or many: the same requests against the same state get the same placements."""
    a, _, _ = _run_both(seed, 200)
    b, _, _ = _run_both(seed, 200)
    assert a == b


@pytest.mark.parametrize("seed", [101, 102, 103, 104])
def test_kernel_matches_reference_with_more_than_64_regions(seed: int) -> None:
    """Topologies of 60..140 regions (past one 64-bit mask word) place exactly as the reference does."""
    got, want, _ = _run_both(seed, 40, regions=(60, 140))
    assert got == want
