"""Which carbon (router/accounting.py): every summary says marginal; average-intensity totals follow the rule
for values applied on arrival, and are null, never zero, without average values."""

from __future__ import annotations

import math

from router.accounting import AVERAGE, MARGINAL, AverageIntensity, average_carbon
from router.analysis import summarise
from router.commands import bundled
from router.frontier import frontier_points
from router.io import read_jsonl
from router.models import GridSignal
from router.replay import replay
from router.totals import Totals
from tests.router.paper_scenario import bundled_inputs

AVERAGES = read_jsonl(bundled("average_signals.jsonl"), GridSignal)


def _sig(region: str, ts: float, **values: float) -> GridSignal:
    return GridSignal.model_validate({"region": region, "ts": ts, **values})


def test_the_value_in_effect_is_the_latest_at_or_before_the_time() -> None:
    """Average and PUE at t: the latest signal dated at or before t (a later message of the same time wins);
    none before the first; PUE falls back to the topology's."""
    topo, _, _ = bundled_inputs()
    r = topo.regions[0].id
    ai = AverageIntensity(
        topo,
        [
            _sig(r, 10.0, average_gco2_per_kwh=300.0),
            _sig(r, 20.0, average_gco2_per_kwh=200.0, pue=1.3),
            _sig(r, 20.0, average_gco2_per_kwh=250.0),
        ],
    )
    assert ai.average(r, 5.0) is None
    assert ai.average(r, 10.0) == 300.0
    assert ai.average(r, 19.9) == 300.0
    assert ai.average(r, 20.0) == 250.0
    assert ai.pue(r, 10.0) == topo.regions[0].pue
    assert ai.pue(r, 25.0) == 1.3
    assert ai.any


def test_average_carbon_of_placements_uses_facility_energy_and_home_pue() -> None:
    """Per placed request: facility_wh x the region's average / 1e3, and energy_wh x home PUE x the home's
    average / 1e3; summed in micro-grams by Totals, with no request left out when every region has one."""
    topo, sig, req = bundled_inputs()
    ps = replay(topo, [*sig, *AVERAGES], req).placements
    ai = AverageIntensity(topo, [s for _, s in [*sig, *AVERAGES]])
    at_region, at_home = average_carbon(ps, ai)
    placed = [p for p in ps if p["status"] == "placed"]
    assert len(at_region) == len(placed)
    p = placed[0]
    want = p["facility_wh"] * ai.average(p["region"], p["event_ts"]) / 1e3  # type: ignore[operator]
    assert at_region[0] == want
    t = Totals()
    t.add(ps)
    t.add_average(at_region, at_home)
    assert t.average_unvalued == 0
    assert t.average_carbon_g is not None
    assert math.isclose(
        t.average_carbon_g, math.fsum(a for a in at_region if a is not None), abs_tol=1e-6 * len(at_region)
    )


def test_summaries_and_frontier_points_say_which_carbon() -> None:
    """score's summary and every frontier point name the accounting; frontier's average totals are null
    without average values and filled with them."""
    topo, sig, req = bundled_inputs()
    assert (
        summarise(replay(topo, sig, req).placements, carbon_usd_per_tonne=100.0).carbon_accounting == MARGINAL
    )
    plain = frontier_points(topo, sig, req, [1.0])[0]
    assert plain["carbon_accounting"] == MARGINAL
    assert plain["average_accounting"] == AVERAGE
    assert plain["total_average_carbon_g"] is None
    assert plain["average_unvalued"] is None
    avg = frontier_points(topo, [*sig, *AVERAGES], req, [1.0])[0]
    assert avg["total_average_carbon_g"] > 0
    assert avg["baseline_average_carbon_g"] > avg["total_average_carbon_g"]
    assert avg["average_unvalued"] == 0
    assert avg["total_carbon_g"] == plain["total_carbon_g"]  # average values never change a decision
