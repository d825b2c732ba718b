"""Explanations (``runner_up``, ``terms``) equal the naive reference's, and never change a decision."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from router.cli import main
from router.decider import Decider
from router.models import GridSignal, Placement, Request
from router.placement import PlacementMessage
from router.replay import ReplayOptions, replay
from tests.router.differ import run_both
from tests.router.paper_scenario import bundled_inputs
from tests.router.test_replay import TOPO

EXPLAINED = ("runner_up", "terms")
#: trailing fields present only when the request gives a tenant or a session
OPTIONAL = ("tenant", "session_id", "session_moved")


def test_runner_up_and_terms_match_the_reference_on_random_cases() -> None:
    """The kernel's runner-up (region and score) and the score terms equal the reference's bit for bit,
    on random timelines with ties, duals, forecasts and rejections."""
    total = ties = none = 0
    for seed in range(150):
        got, want, _ = run_both(seed, 40, explain=True)
        for g, w in zip(got, want, strict=True):
            assert g == w, f"seed {seed}, request {w['request_id']}:\nkernel    {g}\nreference {w}"
            ru = w["runner_up"]
            none += w["status"] == "placed" and ru is None
            ties += ru is not None and ru["score_usd"] == w["score_usd"]
        total += len(got)
    assert total >= 6000
    assert ties > 20, ties  # a tie: the runner-up has the pick's score (and a higher region index)
    assert none > 100, none  # only one feasible region


@pytest.mark.parametrize("seed", [101, 102])
def test_runner_up_matches_the_reference_past_one_mask_word(seed: int) -> None:
    """With 60..140 regions (more than one 64-region word) the runner-up is still the reference's."""
    got, want, _ = run_both(seed, 30, regions=(60, 140), explain=True)
    assert got == want


def _placed(ps: list[PlacementMessage]) -> list[PlacementMessage]:
    return [p for p in ps if p["status"] == "placed"]


@pytest.fixture(scope="module")
def explained() -> tuple[list[PlacementMessage], list[PlacementMessage]]:
    topo, sig, req = bundled_inputs()
    plain = replay(topo, sig, req).placements
    return plain, replay(topo, sig, req, options=ReplayOptions(explain=True)).placements


def test_explanations_change_no_decision_and_are_absent_when_off(
    explained: tuple[list[PlacementMessage], list[PlacementMessage]],
) -> None:
    """On the bundled data every field but the two explanations is the same with explanations on and off;
    off, the two keys are absent; on, both are present, after every other field."""
    plain, on = explained
    assert len(plain) == len(on)
    for a, b in zip(plain, on, strict=True):
        assert not any(k in a for k in EXPLAINED)
        assert list(b) == [f for f in Placement.model_fields if f not in OPTIONAL or f in b]
        assert {k: v for k, v in b.items() if k not in EXPLAINED} == a
        Placement.model_validate(b)


def test_terms_sum_to_the_score_and_the_runner_up_scores_no_lower(
    explained: tuple[list[PlacementMessage], list[PlacementMessage]],
) -> None:
    """Every placed request's terms sum to its score_usd (up to rounding), the runner-up never scores
    lower than the pick, and it is null exactly when one region was feasible; rejected: both null."""
    _, on = explained
    for p in on:
        if p["status"] == "rejected":
            assert p["runner_up"] is None
            assert p["terms"] is None
            continue
        terms, score, ru = p["terms"], p["score_usd"], p["runner_up"]
        assert terms is not None
        assert score is not None
        assert math.isclose(math.fsum(terms.values()), score, rel_tol=1e-12, abs_tol=1e-15)
        assert (ru is None) == (p["feasible_regions"] == 1)
        if ru is not None:
            assert ru["score_usd"] >= score
            assert ru["region"] != p["region"]
        assert terms["relocation_usd"] == 0.0  # the bundled objective has no fixed friction


def test_score_explain_adds_the_two_fields_and_changes_nothing_else(tmp_path: Path) -> None:
    """`score --explain` writes the same lines as `score`, each with runner_up and terms appended."""
    plain, on = tmp_path / "plain.jsonl", tmp_path / "on.jsonl"
    assert main(["score", "--out", str(plain)]) == 0
    assert main(["score", "--explain", "--out", str(on)]) == 0
    for a, b in zip(plain.read_bytes().splitlines(), on.read_bytes().splitlines(), strict=True):
        assert b.startswith(a[:-1] + b',"runner_up":')
        assert set(orjson.loads(b)) - set(orjson.loads(a)) == set(EXPLAINED)


def test_a_live_repeat_gets_the_explained_placement_byte_for_byte() -> None:
    """Live, with explanations on, a repeated request id gets its first placement (explanations included)
    from the dedup memory, byte for byte, even after the state changed."""
    live = Decider(TOPO, dedup_size=10, explain=True)
    for region, price in (("home", 50.0), ("away", 5.0)):
        live.apply_signal(
            GridSignal(region=region, ts=0.0, price_usd_per_mwh=price, marginal_gco2_per_kwh=100.0)
        )
    req = Request(request_id="a", origin="fe", latency_budget_ms=100.0, energy_wh=1.0, ts=1.0)
    first = live.decide_requests([req], decided_at=5.0)
    p = first.placements[0]
    ru = p["runner_up"]
    assert ru is not None
    assert ru["region"] == "home"
    assert p["score_usd"] is not None
    assert ru["score_usd"] > p["score_usd"]
    live.apply_signal(GridSignal(region="away", ts=2.0, price_usd_per_mwh=900.0))
    again = live.decide_requests([req], decided_at=6.0)
    assert again.values == first.values
    assert again.repeated == 1
