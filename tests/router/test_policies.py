"""The baseline pick rules of ``carbon-router compare`` (router/kernel/_pick.py) equal the naive reference's
over the same mask, capacity windows included, and never pick a region the mask removed."""

from __future__ import annotations

import pytest

from router.kernel.columns import POLICIES
from router.plan import Plan
from tests.router.differ import run_both
from tests.router.scenarios import random_topology

BASELINES = [p for p in POLICIES if p != "score"]


@pytest.mark.parametrize("policy", BASELINES)
def test_baseline_rules_match_the_reference(policy: str) -> None:
    """Every placement under the rule (region, reason, costs, the router's score at the pick) equals the
    reference's on random timelines; all_local rejects with the home's first failing filter."""
    total = placed_away = 0
    for seed in range(60):
        got, want, _ = run_both(seed, 40, policy=policy)
        for g, w in zip(got, want, strict=True):
            assert g == w, f"{policy}, seed {seed}, request {w['request_id']}:\nkernel    {g}\nref       {w}"
            placed_away += w["status"] == "placed" and w["region"] != w["home_region"]
        total += len(got)
    assert total >= 2000
    assert (placed_away == 0) == (policy == "all_local"), placed_away


def test_an_unknown_policy_is_refused() -> None:
    """A plan refuses a pick rule it does not know, naming the known ones."""
    import numpy as np

    with pytest.raises(ValueError, match="lowest_carbon"):
        Plan(random_topology(np.random.default_rng(0), (1, 2)), policy="greenest")
