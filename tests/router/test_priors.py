"""Priors standing in for stale values (router/priors.py; docs/model.md, "Freshness"): validation at the
edge, mask against prior, the home rule and the diff against the naive reference."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.cli import main
from router.explain import explain_request, format_explanation
from router.models import GridSignal, Request
from router.replay import replay
from router.topology import Topology, load_topology
from tests.router.differ import run_both

# home (DE) and two cheap regions away (SE, FR); signal_max_age_s 100
BASE_TOML = """
[objective]
signal_max_age_s = 100.0

[[regions]]
id = "home"
jurisdiction = "DE"
lat = 50.0
lon = 8.0
pue = 1.2

[[regions]]
id = "away"
jurisdiction = "SE"
lat = 59.0
lon = 18.0
pue = 1.1
{away}

[[regions]]
id = "far"
jurisdiction = "FR"
lat = 48.0
lon = 2.0
pue = 1.1
{far}

[[service_nodes]]
id = "fe"
home_region = "home"
lat = 50.0
lon = 8.0

[rtt_ms.fe]
away = 20.0
far = 25.0
"""
PRIOR = (
    "prior = {{ price_usd_per_mwh = {p}, marginal_gco2_per_kwh = {c} }}\n"
    'on_stale = {{ price = "{rp}", carbon = "{rc}" }}'
)


def _topo(tmp_path: Path, away: str = "", far: str = "", home: str = "") -> Topology:
    text = BASE_TOML.format(away=away, far=far).replace("pue = 1.2\n", "pue = 1.2\n" + home + "\n", 1)
    path = tmp_path / "t.toml"
    path.write_text(text)
    return load_topology(path)


def _prior(p: float = 20.0, c: float = 40.0, rp: str = "prior", rc: str = "prior") -> str:
    return PRIOR.format(p=p, c=c, rp=rp, rc=rc)


def _signals() -> list[tuple[int, GridSignal]]:
    """Every region signalled at t=0 (valid 100 s): home dear and dirty, away and far cheap and clean."""
    return [
        (0, GridSignal(region="home", ts=0.0, price_usd_per_mwh=90.0, marginal_gco2_per_kwh=500.0)),
        (0, GridSignal(region="away", ts=0.0, price_usd_per_mwh=10.0, marginal_gco2_per_kwh=50.0)),
        (0, GridSignal(region="far", ts=0.0, price_usd_per_mwh=12.0, marginal_gco2_per_kwh=60.0)),
    ]


def _run(topo: Topology, *ts: float) -> list[dict[str, Any]]:
    reqs = [
        (0, Request(request_id=f"q{k}", origin="fe", latency_budget_ms=100.0, energy_wh=1.0, ts=t))
        for k, t in enumerate(ts)
    ]
    return list(replay(topo, _signals(), reqs).placements)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("away", "field", "received", "expected"),
    [
        (
            'on_stale = { price = "prior" }',
            "regions[2].on_stale",
            "'price': 'prior'",
            'expected "mask", or give prior.price_usd_per_mwh',
        ),
        (
            'prior = { marginal_gco2_per_kwh = 30.0 }\non_stale = { carbon = "prior", price = "prior" }',
            "regions[2].on_stale",
            "'price': 'prior'",
            "give prior.price_usd_per_mwh",
        ),
        ('on_stale = { carbon = "keep" }', "regions[2].on_stale.carbon", "'keep'", "'mask' or 'prior'"),
        (
            "prior = { marginal_gco2_per_kwh = -1.0 }",
            "regions[2].prior.marginal_gco2_per_kwh",
            "-1.0",
            ">= 0",
        ),
        ("prior = { price_usd_per_mwh = 2e6 }", "regions[2].prior.price_usd_per_mwh", "2000000.0", "<= 1"),
        (
            "prior = { price = 50.0 }",
            "regions[2].prior.price",
            "50.0",
            "one of marginal_gco2_per_kwh, price_usd",
        ),
    ],
)
def test_an_invalid_prior_table_stops_with_field_received_and_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], away: str, field: str, received: str, expected: str
) -> None:
    """`on_stale = "prior"` without that prior, an unknown rule, a prior out of bounds and an unknown key
    each stop `carbon-router topology` with exit 2, naming the field, the value received and what is
    allowed."""
    path = tmp_path / "t.toml"
    path.write_text(BASE_TOML.format(away=away, far=""))
    assert main(["topology", "--topology", str(path)]) == 2
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if f"field '{field}'" in x)
    assert received in line, line
    assert expected in line, line


def test_topology_command_says_where_priors_stand_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`carbon-router topology` names the regions and values whose prior stands in, or says none does."""
    path = tmp_path / "t.toml"
    path.write_text(BASE_TOML.format(away=_prior(rc="mask"), far=""))
    assert main(["topology", "--topology", str(path)]) == 0
    line = "priors stand in for stale values (router/priors.py): "
    assert line + "away (price)\n" in capsys.readouterr().out
    assert main(["topology"]) == 0
    assert line + "nowhere (all mask)\n" in capsys.readouterr().out


def test_priors_are_optional_and_mask_is_the_default(tmp_path: Path) -> None:
    """A region without the tables masks stale values; a prior given without `on_stale` is not used."""
    topo = _topo(tmp_path, away="prior = { price_usd_per_mwh = 20.0, marginal_gco2_per_kwh = 40.0 }")
    away = topo.regions[1]
    assert (away.on_stale.price, away.on_stale.carbon) == ("mask", "mask")
    got = _run(topo, 50.0, 500.0)
    assert got[0]["region"] == "away"
    assert got[1]["region"] == "home"  # away and far stale: masked, home stays
    assert got[1]["signal_source"] == "stale"
    assert got[1]["removed"] == {"stale_signals": 2}


def test_a_prior_stands_in_only_when_live_and_forecast_are_stale(tmp_path: Path) -> None:
    """While away's values are fresh they are used; once stale, its prior stands in: the region stays a
    candidate, is scored at the prior, and its placement says signal_source "prior" without an age."""
    topo = _topo(tmp_path, away=_prior(p=20.0, c=40.0))
    fresh, stale = _run(topo, 50.0, 500.0)
    assert fresh["region"] == "away"
    assert fresh["signal_source"] == "live"
    assert fresh["energy_usd"] == 1.0 * 1.1 * 10.0 / 1e6
    assert stale["region"] == "away"
    assert stale["signal_source"] == "prior"
    assert stale["signal_age_s"] is None
    assert stale["energy_usd"] == 1.0 * 1.1 * 20.0 / 1e6
    assert stale["carbon_g"] == 1.0 * 1.1 * 40.0 / 1e3
    assert stale["removed"] == {"stale_signals": 1}  # far (mask) is removed, away is not


def test_prior_per_value_keeps_the_other_value_live_or_masked(tmp_path: Path) -> None:
    """`on_stale` is per value: a price prior with carbon masked still removes the region when its carbon is
    stale; with carbon fresh, the placement is "prior" and its age is the live carbon's."""
    topo = _topo(tmp_path, away=_prior(rc="mask"), far=_prior(p=5.0, rc="mask"))
    (got,) = _run(topo, 500.0)
    assert got["region"] == "home"
    assert got["removed"] == {"stale_signals": 2}
    sig = [*_signals(), (0, GridSignal(region="far", ts=400.0, marginal_gco2_per_kwh=60.0))]
    req = [(0, Request(request_id="q", origin="fe", latency_budget_ms=100.0, energy_wh=1.0, ts=450.0))]
    (p,) = replay(topo, sig, req).placements
    assert p["region"] == "far"
    assert p["signal_source"] == "prior"
    assert p["signal_age_s"] == 50.0
    assert p["energy_usd"] == 1.0 * 1.1 * 5.0 / 1e6


def test_home_is_never_masked_when_every_region_went_stale(tmp_path: Path) -> None:
    """The home rule: with every region stale, home keeps running on its stale values under `mask`, or on
    its prior under `prior`, and is never removed for staleness while it has a value; without any value a
    region, home included, is removed."""
    topo = _topo(tmp_path)
    (got,) = _run(topo, 10_000.0)
    assert got["status"] == "placed"
    assert got["region"] == "home"
    assert got["signal_source"] == "stale"
    assert got["baseline"]["feasible"] is True
    assert got["energy_usd"] == 1.0 * 1.2 * 90.0 / 1e6
    topo = _topo(tmp_path, home=_prior(p=70.0, c=400.0))
    (got,) = _run(topo, 10_000.0)
    assert got["region"] == "home"
    assert got["signal_source"] == "prior"
    assert got["energy_usd"] == 1.0 * 1.2 * 70.0 / 1e6
    assert got["baseline"]["energy_usd"] == got["energy_usd"]
    req = [(0, Request(request_id="q", origin="fe", latency_budget_ms=100.0, energy_wh=1.0, ts=5.0))]
    (none,) = replay(topo, [], req).placements  # never signalled and no constant: no value at all
    assert none["status"] == "rejected"
    assert none["reason"] == "stale_signals"


def test_kernel_matches_reference_with_priors_on_random_cases() -> None:
    """With random priors and `on_stale` rules, every placement field equals the naive reference's bit for
    bit, and priors both keep relocation targets and stand in at home."""
    sources: dict[str | None, int] = {}
    prior_relocations = prior_home = 0
    for seed in range(150):
        got, want, _ = run_both(seed, 45, priors=True)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g == w, f"seed {seed}, request {w['request_id']}:\nkernel    {g}\nreference {w}"
            sources[w["signal_source"]] = sources.get(w["signal_source"], 0) + 1
            prior_relocations += w["signal_source"] == "prior" and w["layer"] != "local"
            prior_home += w["signal_source"] == "prior" and w["layer"] == "local"
    assert sources["prior"] > 200, sources
    assert min(sources["live"], sources["stale"], sources["forecast"]) > 100, sources
    assert prior_relocations > 50, prior_relocations
    assert prior_home > 20, prior_home


def test_bundled_topology_carries_annual_average_priors_and_masks_by_default() -> None:
    """The bundled topology's priors are the annual averages of its real data (scripts/build_bundled_data.py):
    every region's carbon prior is its country's 2021 operating margin, N. Virginia's price prior PJM's 2023
    average LMP; `on_stale` stays `mask`, so the bundled decisions do not change."""
    topo = load_topology()
    for r in topo.regions:
        assert r.prior.marginal_gco2_per_kwh == r.marginal_gco2_per_kwh
        assert (r.on_stale.price, r.on_stale.carbon) == ("mask", "mask")
    prices = {r.id: r.prior.price_usd_per_mwh for r in topo.regions}
    assert prices.pop("aws:us-east-1") == 31.08
    assert set(prices.values()) == {None}


def test_explain_names_the_prior_as_a_regions_values(tmp_path: Path) -> None:
    """`carbon-router explain` on a request placed on a prior shows `prior` as the pick's values, `stale` for
    the masked region, and the pick's line equals its placement."""
    topo_path = tmp_path / "t.toml"
    topo_path.write_text(BASE_TOML.format(away=_prior(p=20.0, c=40.0), far=""))
    sig, req = tmp_path / "s.jsonl", tmp_path / "r.jsonl"
    sig.write_bytes(b"\n".join(orjson.dumps(s.model_dump(exclude_none=True)) for _, s in _signals()))
    q = {"request_id": "q", "origin": "fe", "latency_budget_ms": 100.0, "energy_wh": 1.0, "ts": 500.0}
    req.write_bytes(orjson.dumps(q))
    args = argparse.Namespace(
        topology=str(topo_path), signals=str(sig), requests=str(req), statuses=None, forecasts=None, now=None,
        alpha=1.0, no_duals=False, request_id="q",
    )  # fmt: skip
    x = explain_request(args)
    values = {line.region: line.values for line in x.lines}
    assert values == {"home": "stale", "away": "prior", "far": "stale"}
    pick = next(line for line in x.lines if line.region == "away")
    assert x.placement["signal_source"] == "prior"
    assert pick.score_usd == x.placement["score_usd"]
    assert "prior" in format_explanation(x)
