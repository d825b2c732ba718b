"""Per-value signal freshness: price and marginal carbon each have their own ts, validity and late rule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from router.decider import Decider
from router.kernel.columns import CARBON, PRICE, PUE
from router.models import GridSignal, Request
from router.plan import Plan
from router.replay import replay
from router.state import RegionState, valid_end
from tests.router.test_replay import TOPO

# TOPO: home (DE, PUE 1.2) and away (SE, PUE 1.1, 20 ms); signal_max_age_s 100


def _req(rid: str, ts: float, **kw: Any) -> tuple[int, Request]:
    return (0, Request(request_id=rid, origin="fe", latency_budget_ms=100.0, energy_wh=1.0, ts=ts, **kw))


def _run(sig: list[GridSignal], req: list[tuple[int, Request]]) -> dict[str, dict[str, Any]]:
    return {p["request_id"]: p for p in replay(TOPO, [(0, s) for s in sig], req).placements}


HOME = GridSignal(region="home", ts=0.0, price_usd_per_mwh=90.0, marginal_gco2_per_kwh=500.0, valid_for_s=1e6)


def test_a_price_signal_does_not_refresh_stale_carbon() -> None:
    """Away's carbon from t=0 (valid 100 s) goes stale at 100 although its price keeps arriving."""
    sig = [
        HOME,
        GridSignal(region="away", ts=0.0, price_usd_per_mwh=10.0, marginal_gco2_per_kwh=50.0),
        *(GridSignal(region="away", ts=float(t), price_usd_per_mwh=10.0) for t in range(50, 200, 50)),
    ]
    got = _run(
        sig, [_req("fresh", 100.0), _req("stale", 100.5), _req("eu", 150.0, allowed_jurisdictions=["SE"])]
    )
    assert got["fresh"]["region"] == "away"
    assert got["fresh"]["signal_age_s"] == 100.0
    assert got["stale"]["region"] == "home"
    assert got["stale"]["removed"] == {"stale_signals": 1}
    assert got["eu"]["status"] == "rejected"
    assert got["eu"]["reason"] == "stale_signals"


def test_a_carbon_signal_does_not_refresh_a_stale_price() -> None:
    """Likewise a stale price keeps the region out, whatever fresh carbon arrives."""
    sig = [
        HOME,
        GridSignal(region="away", ts=0.0, price_usd_per_mwh=10.0, valid_for_s=10.0),
        GridSignal(region="away", ts=0.0, marginal_gco2_per_kwh=50.0),
        GridSignal(region="away", ts=30.0, marginal_gco2_per_kwh=40.0),
    ]
    got = _run(sig, [_req("a", 10.0), _req("b", 31.0)])
    assert got["a"]["region"] == "away"
    assert got["b"]["region"] == "home"


def test_an_average_signal_changes_neither_marginal_value_nor_freshness() -> None:
    """An average-only signal is stored for display; the marginal carbon and its age stay as they were."""
    plan = Plan(TOPO)
    state = RegionState(plan)
    assert state.apply_signal(
        GridSignal(region="away", ts=0.0, price_usd_per_mwh=10.0, marginal_gco2_per_kwh=50.0)
    )
    before = [a.copy() for a in state.kernel()]
    assert state.apply_signal(GridSignal(region="away", ts=90.0, average_gco2_per_kwh=300.0))
    assert all(np.array_equal(a, b) for a, b in zip(state.kernel(), before, strict=True))
    assert state.average_gco2_per_kwh[1] == 300.0
    assert state.average_ts[1] == 90.0
    sig = [HOME, GridSignal(region="away", ts=0.0, price_usd_per_mwh=10.0, marginal_gco2_per_kwh=50.0)]
    sig.append(GridSignal(region="away", ts=90.0, average_gco2_per_kwh=300.0, price_usd_per_mwh=10.0))
    got = _run(sig, [_req("q", 101.0)])
    assert got["q"]["region"] == "home"  # carbon of t=0 is stale at 101: the average did not refresh it


def test_late_values_join_the_history_value_by_value() -> None:
    """An older value never overwrites a newer one of its kind: it joins the history before it, in ts order,
    and the latest value of each kind stays the newest."""
    state = RegionState(Plan(TOPO))
    assert state.apply_signal(GridSignal(region="away", ts=100.0, price_usd_per_mwh=1.0))
    assert state.apply_signal(GridSignal(region="away", ts=50.0, marginal_gco2_per_kwh=2.0))
    assert state.apply_signal(
        GridSignal(region="away", ts=80.0, price_usd_per_mwh=9.0, marginal_gco2_per_kwh=3.0)
    )
    assert state.latest(1, PRICE) == (1.0, 100.0)
    assert state.latest(1, CARBON) == (3.0, 80.0)
    assert state.apply_signal(GridSignal(region="away", ts=40.0, marginal_gco2_per_kwh=7.0))
    assert state.latest(1, CARBON) == (3.0, 80.0)
    assert state.version == 4
    assert state.val_ts[CARBON, 1, :3].tolist() == [40.0, 50.0, 80.0]
    assert state.val_ts[PRICE, 1, :2].tolist() == [80.0, 100.0]


def test_a_value_older_than_the_whole_history_is_ignored() -> None:
    """With VALUE_HISTORY values kept, a value older than all of them changes nothing and is not counted."""
    from router.state import VALUE_HISTORY

    state = RegionState(Plan(TOPO))
    for k in range(VALUE_HISTORY + 1):
        assert state.apply_signal(GridSignal(region="away", ts=100.0 + k, price_usd_per_mwh=float(k)))
    assert state.val_n[PRICE, 1] == VALUE_HISTORY
    assert state.val_dropped[PRICE, 1] == 1
    assert state.val_ts[PRICE, 1, 0] == 101.0
    version = state.version
    assert not state.apply_signal(GridSignal(region="away", ts=50.0, price_usd_per_mwh=9.0))
    assert state.version == version
    assert state.val_ts[PRICE, 1, 0] == 101.0


def test_a_request_older_than_the_latest_value_uses_the_value_of_its_time() -> None:
    """Live, a signal that arrived before a request dated before it does not hide the value that was fresh
    at the request's time: live (signals first) and replay (event time) make the same decision."""
    sigs = [
        HOME,
        GridSignal(region="away", ts=0.0, price_usd_per_mwh=10.0, marginal_gco2_per_kwh=50.0),
        GridSignal(region="away", ts=60.0, price_usd_per_mwh=900.0, marginal_gco2_per_kwh=50.0),
    ]
    live = Decider(TOPO)
    for s in sigs:  # every signal arrives before the request, although the last is dated after it
        assert live.apply_signal(s)
    req = _req("q", 50.0)[1]
    plan = live.plan
    got = live.decide([req], [plan.request_row(req, ts=50.0, source="t")]).placements[0]
    want = _run(sigs, [_req("q", 50.0)])["q"]
    assert got["region"] == want["region"] == "away"
    assert got["signal_source"] == "live"
    assert got["energy_usd"] == want["energy_usd"]


def test_a_pue_signal_refreshes_neither_value() -> None:
    """pue is scored with its last value but has no freshness: a pue-only signal keeps a region stale."""
    sig = [
        HOME,
        GridSignal(region="away", ts=0.0, price_usd_per_mwh=10.0, marginal_gco2_per_kwh=50.0),
        GridSignal(region="away", ts=100.0, pue=1.05),
    ]
    got = _run(sig, [_req("at", 100.0), _req("after", 101.0)])
    assert got["at"]["region"] == "away"
    assert got["at"]["facility_wh"] == 1.05
    assert got["after"]["region"] == "home"


def test_signal_age_is_the_age_of_the_older_value() -> None:
    """signal_age_s is t minus the older of the two values' ts."""
    sig = [
        HOME,
        GridSignal(region="away", ts=60.0, price_usd_per_mwh=10.0),
        GridSignal(region="away", ts=20.0, marginal_gco2_per_kwh=50.0),
    ]
    got = _run(sig, [_req("q", 110.0)])
    assert got["q"]["region"] == "away"
    assert got["q"]["signal_age_s"] == 90.0


def test_live_and_replay_hold_the_same_state_after_out_of_order_signals() -> None:
    """Signals applied in arrival order (live) or in event time (replay) leave the same value history."""
    sigs = [
        GridSignal(region="away", ts=100.0, price_usd_per_mwh=1.0, valid_for_s=30.0),
        GridSignal(region="away", ts=50.0, marginal_gco2_per_kwh=2.0),
        GridSignal(region="away", ts=80.0, price_usd_per_mwh=9.0, marginal_gco2_per_kwh=3.0, pue=1.3),
        GridSignal(region="away", ts=40.0, marginal_gco2_per_kwh=7.0),
        GridSignal(region="away", ts=90.0, average_gco2_per_kwh=250.0),
    ]
    live = Decider(TOPO)
    state = RegionState(Plan(TOPO))
    for s in sigs:
        assert live.apply_signal(s)
    for s in sorted(sigs, key=lambda x: x.ts):
        assert state.apply_signal(s)
    got = live.scorer.state
    assert all(np.array_equal(a, b) for a, b in zip(got.kernel(), state.kernel(), strict=True))
    assert got.version == state.version == 5
    assert got.f[1, PUE] == 1.3


def test_valid_end_is_the_exact_freshness_boundary() -> None:
    """valid_end(ts, v) is the first double at which ``t - ts <= v`` fails, for awkward ts and validities."""
    rng = np.random.default_rng(5)
    for _ in range(5000):
        ts = float(rng.choice([0.0, 0.1, 1000.25, 1.7e9 + rng.random(), rng.random() * 1e9]))
        v = float(rng.choice([0.1, 5.0, 300.0, 900.0, 1e-3 + rng.random() * 1e4]))
        x = valid_end(ts, v)
        assert x - ts > v, (ts, v, x)
        assert not math.nextafter(x, -math.inf) - ts > v, (ts, v, x)


def test_a_topology_price_never_sent_as_a_signal_does_not_age() -> None:
    """A region whose price is only the topology's constant is a target while its carbon signal is fresh
    (the bundled aws:us-east-1), stale once that goes stale, and stale when it has no signal at all."""
    topo = TOPO.model_copy(
        update={"regions": [TOPO.regions[0], TOPO.regions[1].model_copy(update={"price_usd_per_mwh": 10.0})]}
    )
    sig = [HOME, GridSignal(region="away", ts=0.0, marginal_gco2_per_kwh=50.0)]
    placed = replay(topo, [(0, s) for s in sig], [_req("fresh", 50.0), _req("stale", 100.5)]).placements
    got = {p["request_id"]: p for p in placed}
    assert got["fresh"]["region"] == "away"
    assert got["fresh"]["signal_source"] == "live"
    assert got["fresh"]["signal_age_s"] == 50.0  # the carbon's age: the constant has none
    assert got["stale"]["region"] == "home"
    assert got["stale"]["removed"] == {"stale_signals": 1}
    never = replay(topo, [(0, HOME)], [_req("none", 50.0)]).placements[0]  # away: no signal at all
    assert never["region"] == "home"
    assert never["removed"] == {"stale_signals": 1}


def test_signal_ages_are_the_older_signalled_value() -> None:
    """The per-region age metric: the older of price and carbon signals; NaN for a region never signalled."""
    state = RegionState(Plan(TOPO))
    state.apply_signal(GridSignal(region="away", ts=10.0, price_usd_per_mwh=10.0))
    state.apply_signal(GridSignal(region="away", ts=20.0, marginal_gco2_per_kwh=50.0))
    ages = state.signal_ages(30.0)
    assert ages[1] == 20.0
    assert math.isnan(ages[0])
