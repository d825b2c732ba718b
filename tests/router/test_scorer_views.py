"""The kernel views the state's owners keep between batches (router/state.py, router/forecast.py,
router/sessions.py, router/budgets.py; router/scoring.py ``Scorer._inputs``) follow every array an owner
replaces: after the capacity windows, the session table or the forecast arrays grow, the next batch is
decided on the new arrays, exactly as by a scorer that never had to grow them."""

from __future__ import annotations

from typing import Any

import numpy as np

from router.decider import Decider
from router.forecast import ForecastState
from router.models import ForecastPoint, GridForecast, GridSignal, Request
from router.sessions import MAX_SESSIONS, SessionTable
from router.state import CapacityWindows
from router.topology import Topology

T0 = 1_000_000.0


def _topology() -> Topology:
    """Three regions with a capacity limit, one node; sessions kept."""
    region = {"jurisdiction": "DE", "lat": 0.0, "lon": 0.0, "pue": 1.2, "capacity_kw": 50.0}
    return Topology.model_validate(
        {
            "objective": {"switch_margin_usd": 1e-6, "session_min_dwell_s": 0.5, "signal_max_age_s": 1e6},
            "regions": [{"id": f"r{j}", **region} for j in range(3)],
            "service_nodes": [{"id": "n0", "home_region": "r0", "lat": 0.0, "lon": 0.0}],
            "rtt_ms": {"n0": {"r0": 2.0, "r1": 3.0, "r2": 4.0}},
        }
    )


def _batches(sessions: int, rounds: int) -> list[list[Request]]:
    """``rounds`` batches, one request per session each, prices moving between them (set by ``_run``)."""

    def request(k: int, s: int) -> Request:
        return Request(
            request_id=f"q{k}-{s}",
            origin="n0",
            latency_budget_ms=100.0,
            energy_wh=0.5,
            ts=T0 + k,
            session_id=f"s{s}",
        )

    return [[request(k, s) for s in range(sessions)] for k in range(rounds)]


def _run(d: Decider, batches: list[list[Request]]) -> list[Any]:
    """Every placement and every session record published, in order."""
    out: list[Any] = []
    for k, reqs in enumerate(batches):
        for j in range(3):
            price = 40.0 + 10.0 * ((j + k) % 3)
            d.apply_signal(
                GridSignal(region=f"r{j}", ts=T0 + k, price_usd_per_mwh=price, marginal_gco2_per_kwh=300.0)
            )
        decided = d.decide_requests(reqs)
        out.extend(dict(p) for p in decided.placements)
        out.extend(decided.sessions)
    return out


def test_a_batch_that_grows_the_windows_and_the_session_table_decides_as_one_that_did_not() -> None:
    """600 sessions over 4 rounds: the session table (256 slots at first) and the capacity windows (1024
    per region at first) grow inside ``Scorer.decide``; the decisions equal those of a scorer whose table and
    windows were large enough from the start."""
    topo, batches = _topology(), _batches(600, 4)
    grown, roomy = Decider(topo), Decider(topo)
    roomy.scorer.sessions = SessionTable(MAX_SESSIONS, initial=4096)
    roomy.scorer.windows = CapacityWindows(3, initial=4096)
    before = (grown.scorer.sessions.f, grown.scorer.windows.ts)
    got, want = _run(grown, batches), _run(roomy, batches)
    assert grown.scorer.sessions.f is not before[0]  # the table grew
    assert grown.scorer.windows.ts is not before[1]  # the windows grew
    assert got == want
    # the prices moved the sessions around
    assert {p["region"] for p in got if isinstance(p, dict)} == {"r0", "r1", "r2"}


def test_each_owner_gives_a_new_view_when_it_replaces_its_arrays() -> None:
    """The view an owner hands the kernel holds its current arrays after a replacement, and is the same
    object while nothing was replaced."""
    w = CapacityWindows(2, initial=4)
    first = w.kernel()
    assert w.kernel() is first
    w.reserve(10)
    assert w.kernel() is not first
    assert w.kernel().ts is w.ts
    assert w.kernel().e is w.e

    t = SessionTable(MAX_SESSIONS, initial=2)
    view = t.kernel()
    t.assign(("a", "b", "c"))
    assert t.kernel().f is t.f
    assert t.kernel().i is t.i
    assert t.f is not view.f

    d = Decider(_topology())
    fc: ForecastState = d.scorer.forecasts
    old = fc.kernel()
    points = [ForecastPoint(ts=T0 + 60.0 * k, price_usd_per_mwh=50.0) for k in range(2 * fc.ts.shape[1] + 1)]
    d.apply_forecast(GridForecast(region="r0", generated_at=T0, step_s=60.0, points=points))
    new = fc.kernel()
    assert new is not old
    assert all(a is b for a, b in zip(new, (fc.ts, fc.val, fc.has, fc.n, fc.meta), strict=True))
    assert np.array_equal(new.ts[0, : len(points)], [p.ts for p in points])
