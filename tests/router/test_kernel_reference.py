"""The compiled kernel agrees exactly with the naive reference on many random cases."""

from __future__ import annotations

from typing import Any

import pytest

from tests.router.differ import run_both
from tests.router.reference import FILTERS, NaiveRouter


def _run_both(
    seed: int, n_requests: int, regions: tuple[int, int] = (1, 8)
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], NaiveRouter]:
    """The kernel and the reference on one random timeline, random batch cuts (tests/router/differ.py)."""
    return run_both(seed, n_requests, regions=regions)


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
