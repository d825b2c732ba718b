"""The forecast fallback on real issued WattTime CAISO North forecasts (tests/fixtures/forecasts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from router.cli import main
from router.decider import Decider
from router.errors import ConfigError
from router.models import GridForecast, GridSignal, Placement, Request
from router.replay import replay
from router.topology import Topology, load_topology
from tests.router.watttime import STEP_S, epoch, issued_forecasts

T0 = epoch("2023-06-08 00:00:00")
AWAY = "caiso-north"

TOPO = Topology.model_validate(
    {
        "objective": {"carbon_usd_per_tonne": 100.0, "signal_max_age_s": 900.0, "forecast_horizon_s": 3600.0},
        "regions": [
            {"id": "home", "jurisdiction": "DE", "lat": 50.0, "lon": 8.0, "pue": 1.0, "capacity_kw": 1e4},
            {"id": AWAY, "jurisdiction": "US", "lat": 38.6, "lon": -121.5, "pue": 1.0, "capacity_kw": 1e4},
        ],
        "service_nodes": [{"id": "fe", "home_region": "home", "lat": 50.0, "lon": 8.0}],
        "rtt_ms": {"fe": {"home": 2.0, AWAY: 150.0}},
    }
)


def _topo(**objective: float) -> Topology:
    return TOPO.model_copy(update={"objective": TOPO.objective.model_copy(update=objective)})


def _signals(carbon_valid_s: float = 300.0) -> list[tuple[int, GridSignal]]:
    """Home: dirty and fresh all day. Away: its price fresh all day, its marginal carbon (the real actual
    value at 00:00) valid for ``carbon_valid_s`` only."""
    return [
        (
            1,
            GridSignal(
                region="home", ts=T0, price_usd_per_mwh=50.0, marginal_gco2_per_kwh=900.0, valid_for_s=86400.0
            ),
        ),
        (2, GridSignal(region=AWAY, ts=T0, price_usd_per_mwh=50.0, valid_for_s=86400.0)),
        (3, GridSignal(region=AWAY, ts=T0, marginal_gco2_per_kwh=425.01605069, valid_for_s=carbon_valid_s)),
    ]


def _req(rid: str, t: float, **kw: Any) -> tuple[int, Request]:
    return (0, Request(request_id=rid, origin="fe", latency_budget_ms=500.0, energy_wh=1.0, ts=t, **kw))


def _fc() -> list[tuple[int, GridForecast]]:
    return [(k + 1, f) for k, f in enumerate(issued_forecasts(AWAY))]


def _place(topo: Topology, reqs: list[tuple[int, Request]], **kw: Any) -> dict[str, dict[str, Any]]:
    res = replay(topo, kw.pop("signals", _signals()), reqs, forecasts=kw.pop("forecasts", _fc()), **kw)
    return {p["request_id"]: p for p in res.placements}


def _point(issued: str, at: str) -> float:
    """The issued forecast's value for the step starting at ``at`` (read from the fixture)."""
    fc = next(f for f in issued_forecasts(AWAY) if f.generated_at == epoch(issued))
    got = next(p.marginal_gco2_per_kwh for p in fc.points if p.ts == epoch(at))
    assert got is not None
    return got


@pytest.mark.parametrize(
    ("at", "issued", "step"),
    [
        ("2023-06-08 00:20:30", "2023-06-08 00:15:00", "2023-06-08 00:20:00"),
        ("2023-06-08 01:07:00", "2023-06-08 01:00:00", "2023-06-08 01:05:00"),
        ("2023-06-08 02:59:59", "2023-06-08 02:45:00", "2023-06-08 02:55:00"),
        ("2023-06-08 03:40:00", "2023-06-08 03:00:00", "2023-06-08 03:40:00"),
    ],
)
def test_a_stale_region_is_a_target_with_the_issued_forecast_value(at: str, issued: str, step: str) -> None:
    """A region whose live carbon is stale is placed on with exactly the covering point of its latest
    issued forecast, and the placement names the forecast."""
    t = epoch(at)
    p = _place(TOPO, [_req("q", t)])["q"]
    Placement.model_validate(p)
    value = _point(issued, step)
    assert (p["region"], p["layer"], p["signal_source"]) == (AWAY, "energy", "forecast")
    assert p["forecast_generated_at"] == epoch(issued)
    assert p["carbon_g"] == 1.0 * (1.0 * value / 1e3)
    assert p["signal_age_s"] == t - T0  # the older value used is the live price of 00:00


def test_beyond_the_horizon_the_region_is_stale() -> None:
    """With a 10-minute horizon, the 00:15 forecast covers 00:24 but not 00:26: the region is stale then."""
    topo = _topo(forecast_horizon_s=600.0)
    got = _place(
        topo,
        [
            _req("in", epoch("2023-06-08 00:24:59")),
            _req("out", epoch("2023-06-08 00:25:01")),
            _req("out-us", epoch("2023-06-08 00:25:01"), allowed_jurisdictions=["US"]),
        ],
    )
    assert got["in"]["region"] == AWAY
    assert got["in"]["signal_source"] == "forecast"
    assert got["out"]["region"] == "home"
    assert got["out"]["removed"] == {"stale_signals": 1}
    assert got["out"]["signal_source"] == "live"
    assert got["out"]["forecast_generated_at"] is None
    assert got["out-us"]["status"] == "rejected"
    assert got["out-us"]["reason"] == "stale_signals"


def test_without_a_covering_point_the_region_is_stale() -> None:
    """Before the first point's step and after the last point's step, a forecast within the horizon does
    not stand in: the region is not a target."""
    first = [(1, issued_forecasts(AWAY)[0])]  # issued 00:00, points 00:05 .. 01:05 (steps end at 01:10)
    topo = _topo(forecast_horizon_s=7200.0)
    got = _place(
        topo,
        [
            _req("early", epoch("2023-06-08 00:02:00"), allowed_jurisdictions=["US"]),
            _req("covered", epoch("2023-06-08 01:09:59"), allowed_jurisdictions=["US"]),
            _req("late", epoch("2023-06-08 01:10:00"), allowed_jurisdictions=["US"]),
        ],
        signals=_signals(carbon_valid_s=60.0),
        forecasts=first,
    )
    assert got["early"]["reason"] == "stale_signals"
    assert got["late"]["reason"] == "stale_signals"
    assert got["covered"]["region"] == AWAY
    assert got["covered"]["carbon_g"] == 1.0 * (
        1.0 * _point("2023-06-08 00:00:00", "2023-06-08 01:05:00") / 1e3
    )


def test_a_zero_horizon_turns_the_fallback_off() -> None:
    """forecast_horizon_s = 0: a covering forecast is ignored and the stale region is not a target."""
    got = _place(
        _topo(forecast_horizon_s=0.0), [_req("q", epoch("2023-06-08 00:20:30"), allowed_jurisdictions=["US"])]
    )
    assert got["q"]["reason"] == "stale_signals"


def test_a_fresh_live_value_wins_over_the_forecast() -> None:
    """While the region's live carbon is fresh, the placement uses it, not the covering forecast point."""
    live_value = 441.0
    sig = [
        *_signals(),
        (4, GridSignal(region=AWAY, ts=epoch("2023-06-08 00:20:00"), marginal_gco2_per_kwh=live_value)),
    ]
    p = _place(TOPO, [_req("q", epoch("2023-06-08 00:22:00"))], signals=sig)["q"]
    assert p["region"] == AWAY
    assert p["signal_source"] == "live"
    assert p["forecast_generated_at"] is None
    assert p["carbon_g"] == 1.0 * (1.0 * live_value / 1e3)


def test_an_older_forecast_never_replaces_a_newer_one() -> None:
    """Live: a forecast issued earlier than the one held is refused; replay: file order does not matter."""
    fcs = {f.generated_at: f for f in issued_forecasts(AWAY)}
    newer, older = fcs[epoch("2023-06-08 00:15:00")], fcs[epoch("2023-06-08 00:10:00")]
    live = Decider(TOPO)
    for _, s in _signals():
        assert live.apply_signal(s)
    assert live.apply_forecast(newer)
    assert not live.apply_forecast(older)
    t = epoch("2023-06-08 00:21:00")
    p = live.decide_requests([_req("q", t)[1]], decided_at=t).placements[0]
    assert p["forecast_generated_at"] == newer.generated_at
    assert p["carbon_g"] == 1.0 * (1.0 * _point("2023-06-08 00:15:00", "2023-06-08 00:20:00") / 1e3)
    in_order = _place(TOPO, [_req("q", t)], forecasts=[(1, older), (2, newer)])
    reversed_ = _place(TOPO, [_req("q", t)], forecasts=[(1, newer), (2, older)])
    assert in_order == reversed_
    assert reversed_["q"]["forecast_generated_at"] == newer.generated_at
    assert {k: v for k, v in p.items() if k != "signals_version"} == {
        k: v for k, v in reversed_["q"].items() if k != "signals_version"
    }


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_score_with_forecasts_is_byte_identical_across_runs(tmp_path: Path) -> None:
    """`score --forecasts` twice gives the same bytes, and the forecasts change real decisions."""
    topo = tmp_path / "topo.json"
    topo.write_bytes(orjson.dumps(TOPO.model_dump(mode="json")))
    sig = _write(tmp_path / "s.jsonl", [s.model_dump(exclude_none=True) for _, s in _signals()])
    req = _write(
        tmp_path / "r.jsonl",
        [
            r.model_dump(exclude_none=True)
            for _, r in (_req(f"q{k}", T0 + 60.0 + 120.0 * k) for k in range(100))
        ],
    )
    fc = _write(tmp_path / "f.jsonl", [f.model_dump(exclude_none=True) for f in issued_forecasts(AWAY)])
    base = ["score", "--topology", str(topo), "--signals", str(sig), "--requests", str(req)]
    outs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "none.jsonl"]
    assert main([*base, "--forecasts", str(fc), "--out", str(outs[0])]) == 0
    assert main([*base, "--forecasts", str(fc), "--out", str(outs[1])]) == 0
    assert main([*base, "--out", str(outs[2])]) == 0
    a = outs[0].read_bytes()
    assert a == outs[1].read_bytes()
    placed = [orjson.loads(x) for x in a.splitlines()]
    without = [orjson.loads(x) for x in outs[2].read_bytes().splitlines()]
    by_fc = [p for p in placed if p["signal_source"] == "forecast"]
    assert all(p["region"] == AWAY for p in by_fc)
    # WattTime's first point starts 5 minutes after issue: the latest forecast covers t from then on
    issued = [f.generated_at for f in issued_forecasts(AWAY)]
    want = set()
    for p in placed:
        t = p["event_ts"]
        gen = max(g for g in issued if g <= t)
        if t - T0 > 300.0 and gen + STEP_S <= t < gen + 13 * STEP_S + STEP_S and t - gen <= 3600.0:
            want.add(p["request_id"])
    assert {p["request_id"] for p in by_fc} == want
    assert len(want) > 50
    assert sum(p["region"] == AWAY for p in without) <= 3  # only while the live value of 00:00 is fresh


def test_frontier_takes_forecasts(tmp_path: Path) -> None:
    """`frontier --forecasts` replays with the forecasts: the stale clean region takes load, carbon drops."""
    topo = tmp_path / "topo.json"
    topo.write_bytes(orjson.dumps(TOPO.model_dump(mode="json")))
    sig = _write(tmp_path / "s.jsonl", [s.model_dump(exclude_none=True) for _, s in _signals()])
    reqs = [_req(f"q{k}", T0 + 60.0 + 120.0 * k)[1] for k in range(60)]
    req = _write(tmp_path / "r.jsonl", [r.model_dump(exclude_none=True) for r in reqs])
    fc = _write(tmp_path / "f.jsonl", [f.model_dump(exclude_none=True) for f in issued_forecasts(AWAY)])
    base = ["frontier", "--topology", str(topo), "--signals", str(sig), "--requests", str(req)]
    base += ["--alphas", "1"]
    assert main([*base, "--forecasts", str(fc), "--out", str(tmp_path / "with")]) == 0
    assert main([*base, "--out", str(tmp_path / "without")]) == 0
    (w,) = orjson.loads((tmp_path / "with" / "frontier.json").read_bytes())
    (wo,) = orjson.loads((tmp_path / "without" / "frontier.json").read_bytes())
    assert w["total_carbon_g"] < wo["total_carbon_g"]
    assert w["relocated_share"] > wo["relocated_share"]


def test_score_refuses_a_forecast_for_an_unknown_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forecasts file naming a region the topology lacks exits 2 naming the file, line and field."""
    bad = issued_forecasts("mars-1")[0].model_dump(exclude_none=True)
    fc = _write(tmp_path / "f.jsonl", [bad])
    assert main(["score", "--forecasts", str(fc)]) == 2
    err = capsys.readouterr().err
    assert "f.jsonl" in err
    assert "line 1" in err
    assert "region" in err
    assert "mars-1" in err


def test_forecast_horizon_is_validated(tmp_path: Path) -> None:
    """A negative forecast_horizon_s is refused at load, naming the field."""
    path = tmp_path / "t.json"
    data = TOPO.model_dump(mode="json")
    data["objective"]["forecast_horizon_s"] = -1.0
    path.write_bytes(orjson.dumps(data))
    with pytest.raises(ConfigError, match="forecast_horizon_s"):
        load_topology(path)


def test_forecast_step_matches_the_fixture() -> None:
    """The fixture is what the tests assume: 15 issued forecasts of 13 five-minute points each."""
    fcs = issued_forecasts(AWAY)
    assert len(fcs) == 15
    assert all(len(f.points) == 13 and f.step_s == STEP_S for f in fcs)
    assert all(f.points[0].ts == f.generated_at + STEP_S for f in fcs)
