"""The live router's state without Kafka: dedup memory, event-time merge of signals, duals versions."""

from __future__ import annotations

from router.decider import Decider
from router.models import GridSignal, Request
from tests.router.test_replay import TOPO


def _req(rid: str, ts: float, budget: float = 100.0) -> Request:
    return Request(request_id=rid, origin="fe", latency_budget_ms=budget, energy_wh=1.0, ts=ts)


def _live() -> Decider:
    live = Decider(TOPO, dedup_size=10)
    for region, price in (("home", 50.0), ("away", 5.0)):
        snap = merge_signal(
            None, GridSignal(region=region, ts=0.0, price_usd_per_mwh=price, marginal_gco2_per_kwh=100.0)
        )
        assert snap is not None and live.apply_snapshot(snap)
    return live


def test_a_request_seen_again_gets_its_first_decision() -> None:
    """A repeat (later batch or same batch) returns the remembered placement, even if state changed since."""
    live = _live()
    first = live.decide([_req("a", 1.0)], [1.0], decided_at=100.0).placements[0]
    assert first["region"] == "away"
    snap = merge_signal(None, GridSignal(region="away", ts=2.0, price_usd_per_mwh=900.0))
    assert snap is not None and live.apply_snapshot({**snap, "n": 2})
    again = live.decide([_req("a", 1.0), _req("b", 3.0), _req("b", 3.0)], [1.0, 3.0, 3.0], decided_at=200.0)
    assert again.placements[0] == first and again.repeated == 2
    assert again.placements[1] == again.placements[2] and again.placements[1]["region"] == "home"


def test_forgotten_decisions_are_decided_again() -> None:
    """A decision dropped unpublished is forgotten, so the next copy is decided afresh."""
    live = _live()
    live.decide([_req("a", 1.0)], [1.0], decided_at=100.0)
    live.forget(["a"])
    assert live.decide([_req("a", 1.0)], [1.0], decided_at=150.0).placements[0]["decided_at"] == 150.0


def test_dedup_memory_is_bounded() -> None:
    """The memory keeps the most recent dedup_size decisions only."""
    live = _live()
    live.decide([_req(f"r{k}", 1.0) for k in range(25)], [1.0] * 25, decided_at=1.0)
    assert len(live._seen) == 10 and "r24" in live._seen and "r0" not in live._seen


def test_merge_keeps_fields_and_refuses_older_signals() -> None:
    """A merged snapshot keeps fields a signal leaves out, counts signals, and ignores an older signal."""
    a = merge_signal(
        None, GridSignal(region="away", ts=10.0, price_usd_per_mwh=5.0, marginal_gco2_per_kwh=1.0)
    )
    assert a is not None
    b = merge_signal(a, GridSignal(region="away", ts=11.0, pue=1.3))
    assert b is not None and b["price_usd_per_mwh"] == 5.0 and b["pue"] == 1.3 and b["n"] == 2
    assert merge_signal(b, GridSignal(region="away", ts=9.0, price_usd_per_mwh=999.0)) is None


def test_duals_apply_only_when_newer() -> None:
    """Shares versions only move forward; an older shares message is ignored."""
    live = _live()
    assert live.set_duals(5, [0.0, 1e-5])
    assert not live.set_duals(4, [0.0, 9.0])
    assert live.shares_version == 5
