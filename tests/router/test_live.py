"""The decider as the live worker drives it, without Kafka: dedup memory, the event clock, duals versions."""

from __future__ import annotations

from router.decider import Decider
from router.models import GridSignal, Request
from tests.router.test_replay import TOPO


def _req(rid: str, ts: float, budget: float = 100.0) -> Request:
    return Request(request_id=rid, origin="fe", latency_budget_ms=budget, energy_wh=1.0, ts=ts)


def _live() -> Decider:
    live = Decider(TOPO, dedup_size=10)
    for region, price in (("home", 50.0), ("away", 5.0)):
        assert live.apply_signal(
            GridSignal(region=region, ts=0.0, price_usd_per_mwh=price, marginal_gco2_per_kwh=100.0)
        )
    return live


def test_a_request_seen_again_gets_its_first_decision() -> None:
    """A repeat (later batch or same batch) returns the remembered placement, even if state changed since."""
    live = _live()
    first = live.decide_requests([_req("a", 1.0)], decided_at=100.0).placements[0]
    assert first["region"] == "away"
    assert live.apply_signal(GridSignal(region="away", ts=2.0, price_usd_per_mwh=900.0))
    again = live.decide_requests([_req("a", 1.0), _req("b", 3.0), _req("b", 3.0)], decided_at=200.0)
    assert again.placements[0] == first
    assert again.repeated == 2
    assert again.placements[1] == again.placements[2]
    assert again.placements[1]["region"] == "home"


def test_forgotten_decisions_are_decided_again() -> None:
    """A decision dropped unpublished is forgotten, so the next copy is decided afresh."""
    live = _live()
    live.decide_requests([_req("a", 1.0)], decided_at=100.0)
    live.forget(["a"])
    assert live.decide_requests([_req("a", 1.0)], decided_at=150.0).placements[0]["decided_at"] == 150.0


def test_dedup_memory_is_bounded() -> None:
    """The memory keeps the most recent dedup_size decisions only."""
    live = _live()
    live.decide_requests([_req(f"r{k}", 1.0) for k in range(25)], decided_at=1.0)
    assert len(live.seen) == 10
    assert "r24" in live.seen
    assert "r0" not in live.seen


def test_the_event_clock_never_runs_ahead_of_the_router_clock() -> None:
    """A request dated ahead of the router's clock moves the event clock only up to the clock, so the
    re-solve's demand window still holds the requests of now."""
    live = _live()
    live.decide_requests([_req("now", 1000.0)], decided_at=1000.0, clock=1000.0)
    live.decide_requests([_req("ahead", 1250.0)], decided_at=1000.0, clock=1000.0)
    assert live.event_clock == 1000.0


def test_a_request_ahead_of_the_clock_does_not_empty_the_capacity_windows() -> None:
    """Live, the windows slide with min(t, clock): a request 250 s ahead leaves the last minute booked."""
    live = _live()
    live.decide_requests([_req(f"r{k}", 1000.0) for k in range(5)], decided_at=1000.0, clock=1000.0)
    booked = live.scorer.windows.used_wh().sum()
    live.decide_requests([_req("ahead", 1250.0)], decided_at=1000.0, clock=1000.0)
    assert live.scorer.windows.used_wh().sum() == booked + 1.0
    replayed = _live()  # replay (no clock): the window at 1250 holds only that request
    replayed.decide_requests([_req(f"r{k}", 1000.0) for k in range(5)])
    replayed.decide_requests([_req("ahead", 1250.0)])
    assert replayed.scorer.windows.used_wh().sum() == 1.0
