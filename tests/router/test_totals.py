"""One accumulator of placement totals (router/totals.py): exact, batching-independent, one baseline rule."""

from __future__ import annotations

import copy
import math
import random
import typing

import pytest

from router.analysis import summarise
from router.models import Placement
from router.placement import BaselineMessage, PlacementMessage
from router.replay import replay
from router.totals import Totals
from tests.router.paper_scenario import bundled_inputs


@pytest.fixture(scope="module")
def placements() -> list[PlacementMessage]:
    topo, sig, req = bundled_inputs()
    return replay(topo, sig, req).placements


def test_the_typed_message_has_the_model_fields_in_the_encoded_order(
    placements: list[PlacementMessage],
) -> None:
    """The TypedDict and the model list the same fields in the same order; a placement has them all in that
    order, but for the optional trailing ones: the request's tenant and session (when it gave them) and the
    explanations (the last two, present only when on: tests/router/test_explain.py)."""
    typed = list(typing.get_type_hints(PlacementMessage))
    assert typed == list(Placement.model_fields)
    required = [k for k in typed if k in PlacementMessage.__required_keys__]
    assert typed[len(required) :] == ["tenant", "session_id", "session_moved", "runner_up", "terms"]
    assert list(typing.get_type_hints(BaselineMessage)) == list(placements[0]["baseline"])
    for p in placements[:50]:
        assert list(p) == required + (["tenant"] if "tenant" in p else [])


def _state(t: Totals) -> dict[str, object]:
    return {name: copy.deepcopy(getattr(t, name)) for name in t.__slots__}


def test_totals_do_not_depend_on_batching_or_order(placements: list[PlacementMessage]) -> None:
    whole = Totals()
    whole.add(placements)
    rng = random.Random(7)
    for _ in range(5):
        shuffled = placements[:]
        rng.shuffle(shuffled)
        merged = Totals()
        k = 0
        while k < len(shuffled):
            n = rng.choice((1, 3, 31, 32, 33, 500))
            part = Totals()
            part.add(shuffled[k : k + n])
            merged.merge(part)
            k += n
        assert _state(merged) == _state(whole)


def test_totals_agree_with_float_sums_to_the_rounding_unit(placements: list[PlacementMessage]) -> None:
    t = Totals()
    t.add(placements)
    placed = [p for p in placements if p["status"] == "placed"]
    assert t.requests == len(placements)
    assert t.placed == len(placed) > 0
    assert t.cost_usd == pytest.approx(
        math.fsum(p["energy_usd"] or 0.0 for p in placed), abs=1e-9 * len(placed)
    )
    assert t.carbon_g == pytest.approx(
        math.fsum(p["carbon_g"] or 0.0 for p in placed), abs=1e-6 * len(placed)
    )
    relocated = math.fsum(p["energy_wh"] for p in placed if p["region"] != p["home_region"])
    assert t.relocated_nwh / 1e9 == pytest.approx(relocated, abs=1e-9 * len(placed))


def test_a_placed_request_without_a_baseline_is_left_out_of_the_savings(
    placements: list[PlacementMessage],
) -> None:
    placed = [p for p in placements if p["status"] == "placed"]
    base = Totals()
    base.add(placed[1:])
    orphan = copy.deepcopy(placed[0])
    orphan["baseline"]["energy_usd"] = None
    orphan["baseline"]["carbon_g"] = None
    with_orphan = Totals()
    with_orphan.add([orphan, *placed[1:]])
    assert with_orphan.unbaselined == 1
    assert base.unbaselined == 0
    assert with_orphan.saved_energy_usd == base.saved_energy_usd
    assert with_orphan.saved_carbon_g == base.saved_carbon_g
    # its cost still counts as placed
    assert with_orphan.cost_nusd == base.cost_nusd + round((orphan["energy_usd"] or 0.0) * 1e9)
    summary = summarise([orphan, *placed[1:]], carbon_usd_per_tonne=100.0)
    assert summary.unbaselined == 1
    assert summary.saved_energy_usd == base.saved_energy_usd


def test_negative_prices_give_signed_savings() -> None:
    """A home region below zero: the baseline is negative and a saving can be negative; nothing is clipped."""
    p: PlacementMessage = {
        "request_id": "r1",
        "status": "placed",
        "region": "b",
        "origin": "n",
        "home_region": "a",
        "layer": "regional",
        "reason": "min_score",
        "latency_ms": 10.0,
        "energy_wh": 100.0,
        "facility_wh": 120.0,
        "energy_usd": 0.002,
        "carbon_g": 5.0,
        "egress_usd": 0.0,
        "score_usd": 0.01,
        "baseline": {"region": "a", "energy_usd": -0.004, "carbon_g": 30.0, "feasible": True},
        "feasible_regions": 2,
        "relocatable": True,
        "removed": {},
        "signal_age_s": 1.0,
        "signal_source": "live",
        "forecast_generated_at": None,
        "signals_version": 1,
        "shares_version": 0,
        "event_ts": 1.0,
        "decided_at": 1.0,
    }
    t = Totals()
    t.add([p])
    assert t.saved_energy_usd == pytest.approx(-0.006)
    assert t.saved_carbon_g == pytest.approx(25.0)
    assert t.baseline_nusd == -4_000_000


def test_a_placed_message_without_a_cost_is_refused() -> None:
    bad = typing.cast(
        PlacementMessage,
        {
            "request_id": "r",
            "status": "placed",
            "region": "b",
            "layer": "local",
            "home_region": "b",
            "energy_wh": 1.0,
            "energy_usd": None,
            "carbon_g": 1.0,
            "egress_usd": 0.0,
            "relocatable": False,
            "reason": "min_score",
            "baseline": {"region": "b", "energy_usd": 1.0, "carbon_g": 1.0, "feasible": True},
        },
    )
    with pytest.raises(ValueError, match="'r' is placed but lacks"):
        Totals().add([bad])
