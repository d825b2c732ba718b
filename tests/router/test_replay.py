"""Event-time semantics of the offline replay (contract: `score`)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from router.kernel.columns import PRICE, PUE
from router.models import GridSignal, Request
from router.plan import Plan
from router.replay import replay
from router.state import RegionState
from router.topology import Topology

TOPO = Topology.model_validate(
    {
        "objective": {"signal_max_age_s": 100.0},
        "regions": [
            {
                "id": "home",
                "jurisdiction": "DE",
                "tags": ["EU"],
                "lat": 50.0,
                "lon": 8.0,
                "pue": 1.2,
                "capacity_kw": 100.0,
            },
            {
                "id": "away",
                "jurisdiction": "SE",
                "tags": ["EU"],
                "lat": 59.0,
                "lon": 18.0,
                "pue": 1.1,
                "capacity_kw": 100.0,
            },
        ],
        "service_nodes": [{"id": "fe", "home_region": "home", "lat": 50.0, "lon": 8.0}],
        "rtt_ms": {"fe": {"away": 20.0}},
    }
)


def _sig(region: str, ts: float, price: float, **kw: Any) -> tuple[int, GridSignal]:
    return (0, GridSignal(region=region, ts=ts, price_usd_per_mwh=price, marginal_gco2_per_kwh=100.0, **kw))


def _req(rid: str, ts: float) -> tuple[int, Request]:
    return (0, Request(request_id=rid, origin="fe", latency_budget_ms=100.0, energy_wh=1.0, ts=ts))


def _regions(sig: list[tuple[int, GridSignal]], req: list[tuple[int, Request]]) -> dict[str, Any]:
    return {p["request_id"]: p for p in replay(TOPO, sig, req).placements}


def test_a_signal_applies_from_its_own_ts_on() -> None:
    """A request at the signal's ts sees it; a request just before does not."""
    sig = [_sig("home", 0.0, 50.0), _sig("away", 0.0, 80.0), _sig("away", 10.0, 5.0)]
    got = _regions(sig, [_req("before", 9.999), _req("at", 10.0), _req("after", 11.0)])
    assert got["before"]["region"] == "home"
    assert got["at"]["region"] == "away"
    assert got["after"]["region"] == "away"
    assert got["at"]["signal_age_s"] == 0.0
    assert got["after"]["signal_age_s"] == 1.0


def test_requests_are_processed_in_ts_order_whatever_the_file_order() -> None:
    """Output follows event time, file order breaking ties."""
    sig = [_sig("home", 0.0, 50.0), _sig("away", 0.0, 5.0)]
    res = replay(TOPO, sig, [_req("c", 3.0), _req("a", 1.0), _req("b", 1.0)])
    assert [p["request_id"] for p in res.placements] == ["a", "b", "c"]


def test_a_late_older_signal_never_overwrites_a_newer_one() -> None:
    """Region state applied out of order keeps the newer value as the latest (the late one joins the history
    before it); a pue of the same ts applies and keeps the price."""
    state = RegionState(Plan(TOPO))
    assert state.apply_signal(_sig("away", 5.0, 5.0)[1])
    assert state.apply_signal(GridSignal(region="away", ts=4.0, price_usd_per_mwh=999.0))
    assert state.latest(1, PRICE) == (5.0, 5.0)
    assert state.apply_signal(GridSignal(region="away", ts=5.0, pue=1.3))  # same ts: applies, keeps price
    assert state.latest(1, PRICE) == (5.0, 5.0)
    assert state.f[1, PUE] == 1.3


def test_stale_regions_are_never_relocation_targets_but_home_still_serves() -> None:
    """After valid_for_s the cheap remote region drops out; the home region keeps serving on old values."""
    sig = [_sig("home", 0.0, 50.0), _sig("away", 0.0, 5.0, valid_for_s=30.0)]
    got = _regions(sig, [_req("fresh", 30.0), _req("stale", 30.5), _req("later", 500.0)])
    assert got["fresh"]["region"] == "away"
    assert got["stale"]["region"] == "home"
    assert got["stale"]["removed"] == {"stale_signals": 1}
    assert got["later"]["region"] == "home"
    assert got["later"]["baseline"]["feasible"] is True


def test_region_without_any_price_is_infeasible_even_as_home() -> None:
    """No signal and no topology default: home is infeasible too, and the request is rejected."""
    got = _regions([], [_req("r", 1.0)])
    assert got["r"]["status"] == "rejected"
    assert got["r"]["reason"] == "stale_signals"
    assert got["r"]["baseline"] == {"region": "home", "energy_usd": None, "carbon_g": None, "feasible": False}


def test_router_package_imports_no_kafka_and_no_asyncio() -> None:
    """router/ is the pure core: importing all of it loads no Kafka client, no faust and no asyncio."""
    code = (
        "import sys, router.cli, router.commands, router.replay, router.frontier, router.scoring;"
        "import router.resolve;"
        "banned = {'aiokafka', 'faust', 'kafka', 'asyncio', 'streams'};"
        "bad = [m for m in sys.modules if m.split('.')[0] in banned];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
