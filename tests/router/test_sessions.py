"""Sticky sessions with hysteresis: stay unless moving saves more than the margin after the minimum dwell; a
hard constraint always wins; expiry; the bounded table; a restart that restores the table decides the same."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.decider import Decider
from router.models import GridSignal, RegionStatus, Request
from router.sessions import SessionTable
from router.topology import Topology

E_WH = 2.0
PUE = 1.25


def _topology(margin: float, dwell: float, ttl: float = 3600.0) -> Topology:
    """Two regions, one node, no friction and no carbon price: the score is the energy cost alone."""
    region = {"jurisdiction": "DE", "lat": 0.0, "lon": 0.0, "pue": PUE}
    return Topology.model_validate(
        {
            "objective": {
                "carbon_usd_per_tonne": 0.0,
                "switch_margin_usd": margin,
                "session_min_dwell_s": dwell,
                "session_ttl_s": ttl,
                "signal_max_age_s": 1e6,
            },
            "regions": [{"id": "r0", **region}, {"id": "r1", **region}],
            "service_nodes": [{"id": "n0", "home_region": "r0", "lat": 0.0, "lon": 0.0}],
            "rtt_ms": {"n0": {"r0": 2.0, "r1": 2.0}},
            "egress_usd_per_gb": {"r0": {"r1": 0.0}, "r1": {"r0": 0.0}},
        }
    )


def _score(price: float) -> float:
    return E_WH * (PUE * price / 1e6)


def _run(
    topo: Topology, prices: list[tuple[float, float]], sessions: int, step_s: float
) -> list[tuple[float, dict[str, Any], tuple[float, float]]]:
    """One request per step per session; at step k both regions' prices become ``prices[k]``."""
    d = Decider(topo)
    out = []
    for k, (p0, p1) in enumerate(prices):
        t = 1_000_000.0 + k * step_s
        for region, p in (("r0", p0), ("r1", p1)):
            d.apply_signal(GridSignal(region=region, ts=t, price_usd_per_mwh=p, marginal_gco2_per_kwh=0.0))
        reqs = [
            Request(request_id=f"q{k}-{s}", origin="n0", latency_budget_ms=100.0, energy_wh=E_WH, ts=t,
                    session_id=f"s{s}")
            for s in range(sessions)
        ]  # fmt: skip
        for p in d.decide_requests(reqs).placements:
            out.append((t, dict(p), (p0, p1)))
    return out


@settings(max_examples=60, deadline=None)
@given(
    margin=st.sampled_from([0.0, 1e-5, 5e-5, 1e-4]),
    dwell=st.sampled_from([0.0, 3.0, 10.0, 30.0]),
    step=st.sampled_from([1.0, 2.5]),
    prices=st.lists(
        st.tuples(st.sampled_from([20.0, 40.0, 45.0, 60.0, 90.0]), st.sampled_from([20.0, 40.0, 50.0, 80.0])),
        min_size=5,
        max_size=40,
    ),
)
def test_with_oscillating_prices_a_session_moves_at_most_once_per_dwell_and_only_for_the_margin(
    margin: float, dwell: float, step: float, prices: list[tuple[float, float]]
) -> None:
    """Two regions' prices cross back and forth: every move saves more than ``switch_margin_usd`` at its
    time and comes at least ``session_min_dwell_s`` after the session came to its region; every stay away
    from the cheaper region is one the rule allows (saving within the margin, or dwell not reached)."""
    placed = _run(_topology(margin, dwell), prices, sessions=2, step_s=step)
    where: dict[str, tuple[str, float]] = {}  # session -> (region, since)
    for t, p, (p0, p1) in placed:
        sid, region = p["session_id"], p["region"]
        score = {"r0": _score(p0), "r1": _score(p1)}
        if sid not in where:
            assert not p["session_moved"]
            assert score[region] == min(score.values())
            where[sid] = (region, t)
            continue
        old, since = where[sid]
        if p["session_moved"]:
            assert region != old
            assert score[old] - score[region] > margin
            assert t - since >= dwell
            where[sid] = (region, t)
        else:
            assert region == old
            other = "r1" if old == "r0" else "r0"
            assert score[old] - score[other] <= margin or t - since < dwell


def test_a_session_whose_region_fails_the_mask_moves_at_once() -> None:
    """A hard constraint always wins: the session's region turns unhealthy, the next request moves (flagged)
    although the dwell has not passed and moving saves nothing."""
    d = Decider(_topology(margin=1.0, dwell=1e6))
    for region in ("r0", "r1"):
        d.apply_signal(GridSignal(region=region, ts=0.0, price_usd_per_mwh=50.0, marginal_gco2_per_kwh=0.0))

    def ask(k: int, t: float) -> dict[str, Any]:
        q = Request(
            request_id=f"q{k}", origin="n0", latency_budget_ms=100.0, energy_wh=1.0, ts=t, session_id="s"
        )
        return dict(d.decide_requests([q]).placements[0])

    first = ask(0, 10.0)
    assert first["region"] == "r0"
    assert not first["session_moved"]
    d.apply_status(RegionStatus(region="r0", ts=11.0, healthy=False))
    moved = ask(1, 12.0)
    assert moved["region"] == "r1"
    assert moved["session_moved"]
    d.apply_status(RegionStatus(region="r0", ts=13.0, healthy=True))
    stays = ask(2, 14.0)  # r0 is back and ties: the session stays in r1 (no saving beyond the margin)
    assert stays["region"] == "r1"
    assert not stays["session_moved"]


def test_a_session_expires_after_its_ttl() -> None:
    """Without a request for longer than ``session_ttl_s`` a session starts afresh at the score's pick."""
    d = Decider(_topology(margin=1.0, dwell=0.0, ttl=60.0))

    def ask(k: int, t: float, p0: float, p1: float) -> dict[str, Any]:
        for region, p in (("r0", p0), ("r1", p1)):
            d.apply_signal(GridSignal(region=region, ts=t, price_usd_per_mwh=p, marginal_gco2_per_kwh=0.0))
        q = Request(
            request_id=f"q{k}", origin="n0", latency_budget_ms=100.0, energy_wh=1.0, ts=t, session_id="s"
        )
        return dict(d.decide_requests([q]).placements[0])

    assert ask(0, 100.0, 10.0, 90.0)["region"] == "r0"
    assert ask(1, 160.0, 90.0, 10.0)["region"] == "r0"  # 60 s later: still known, the margin holds it
    late = ask(2, 220.5, 90.0, 10.0)  # 60.5 s after its last request: forgotten
    assert late["region"] == "r1"
    assert not late["session_moved"]


def test_the_table_is_bounded_and_counts_evictions() -> None:
    """Past ``max_sessions`` the least recently used session gives up its slot, counted."""
    table = SessionTable(max_sessions=3, initial=1)
    slots = table.assign(["a", "b", "c", "a", "d"])
    assert len(table) == 3
    assert table.evicted == 1
    assert slots[3] == slots[0]  # a again: same slot
    assert slots[4] == slots[1]  # d took b's slot (b was the least recently used)
    with pytest.raises(ValueError, match="max_sessions"):
        SessionTable(max_sessions=0)


def test_a_restart_that_restores_the_sessions_decides_as_one_uninterrupted_run() -> None:
    """Deciding half the requests, keeping the sessions' entries, and deciding the rest with a new decider
    that restored them gives the placements of one decider that saw everything (replay == live restart)."""
    topo = _topology(margin=2e-5, dwell=5.0)
    prices = [(20.0, 80.0), (80.0, 20.0), (90.0, 20.0), (20.0, 90.0), (20.0, 60.0), (60.0, 20.0)] * 4
    whole = [p for _, p, _ in _run(topo, prices, sessions=3, step_s=2.0)]
    half = len(prices) // 2
    first = Decider(topo)
    second = Decider(topo)
    got: list[dict[str, Any]] = []
    for k, (p0, p1) in enumerate(prices):
        d = first if k < half else second
        if k == half:
            for entry in first.scorer.sessions.entries(["s0", "s1", "s2"]):
                assert second.scorer.sessions.restore(entry)
        t = 1_000_000.0 + k * 2.0
        for dd in (first, second):
            for region, p in (("r0", p0), ("r1", p1)):
                dd.apply_signal(
                    GridSignal(region=region, ts=t, price_usd_per_mwh=p, marginal_gco2_per_kwh=0.0)
                )
        reqs = [
            Request(request_id=f"q{k}-{s}", origin="n0", latency_budget_ms=100.0, energy_wh=E_WH, ts=t,
                    session_id=f"s{s}")
            for s in range(3)
        ]  # fmt: skip
        got.extend(dict(p) for p in d.decide_requests(reqs).placements)
    assert got == whole
    assert sum(p["session_moved"] for p in whole) > 0


@settings(max_examples=40, deadline=None)
@given(
    health=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=5, max_size=30),
    prices=st.lists(
        st.tuples(st.sampled_from([20.0, 60.0]), st.sampled_from([20.0, 60.0])), min_size=30, max_size=30
    ),
)
def test_hard_constraints_always_override_stickiness(
    health: list[tuple[bool, bool]], prices: list[tuple[float, float]]
) -> None:
    """Whatever the margin and dwell (here: never move voluntarily), a request is never placed in an unhealthy
    region; when its session's region is unhealthy it moves at once, flagged; with both unhealthy it is
    rejected and its session keeps its region."""
    d = Decider(_topology(margin=1.0, dwell=1e6))
    region_of: str | None = None
    for k, (up0, up1) in enumerate(health):
        t = 1000.0 + 10.0 * k
        for region, p, up in (("r0", prices[k][0], up0), ("r1", prices[k][1], up1)):
            d.apply_signal(GridSignal(region=region, ts=t, price_usd_per_mwh=p, marginal_gco2_per_kwh=0.0))
            d.apply_status(RegionStatus(region=region, ts=t, healthy=up))
        q = Request(
            request_id=f"q{k}", origin="n0", latency_budget_ms=100.0, energy_wh=1.0, ts=t, session_id="s"
        )
        p = dict(d.decide_requests([q]).placements[0])
        ok = {"r0": up0, "r1": up1}
        if not (up0 or up1):
            assert p["status"] == "rejected"
            assert not p["session_moved"]
            continue
        assert ok[p["region"]]
        if region_of is not None and not ok[region_of]:
            assert p["session_moved"]
        elif region_of is not None:
            assert p["region"] == region_of
            assert not p["session_moved"]
        region_of = p["region"]


def test_a_reloaded_session_record_is_taken_only_when_usable_and_newer() -> None:
    """``restore_session`` takes a well-formed record of a known region, ignores junk (not JSON, a missing
    field, an unknown region, a non-finite time) and never replaces a later state with an older one."""
    d = Decider(_topology(margin=0.0, dwell=0.0))
    good = b'{"session_id": "s", "region": "r1", "since": 10.0, "last_ts": 20.0}'
    assert d.restore_session(good)
    for junk in (
        b"not json",
        b'{"session_id": "s2", "region": "r1", "since": 1.0}',
        b'{"session_id": "s2", "region": "nowhere", "since": 1.0, "last_ts": 2.0}',
        b'{"session_id": "s2", "region": "r1", "since": "1", "last_ts": 2.0}',
        b'{"session_id": "", "region": "r1", "since": 1.0, "last_ts": 2.0}',
    ):
        assert not d.restore_session(junk)
    assert not d.restore_session(b'{"session_id": "s", "region": "r0", "since": 1.0, "last_ts": 5.0}')
    assert d.scorer.sessions.entries(["s", "s2"]) == [("s", 1, 10.0, 20.0)]
    assert d.session_record(("s", 1, 10.0, 20.0)) == good.replace(b" ", b"")
