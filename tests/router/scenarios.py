"""Random topologies, signals, forecasts and requests for diffing the kernel against the reference.

Values are drawn from small sets on purpose, so that exact ties, all-infeasible rows and every rejection
reason occur often; price and carbon arrive with different ages, and forecasts cover some stale values.
Every generator takes an explicit numpy Generator (no global random state).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.topology import Topology

JURS = [("DE", ["EU"]), ("SE", ["EU"]), ("FR", ["EU"]), ("US", []), ("JP", [])]


def random_topology(
    rng: np.random.Generator, regions: tuple[int, int] = (1, 8), *, priors: bool = False
) -> Topology:
    """``regions`` (inclusive range; default 1..8) regions, some exact duplicates for ties; 1..3 nodes.
    ``priors``: most regions get a prior price or carbon (or both) and take it for a stale value, or not."""
    R = int(rng.integers(regions[0], regions[1] + 1))
    models = [
        {
            "id": f"m{k}",
            "wh_per_token": float(rng.choice([0.001, 0.002])),
            "ms_per_token": 0.5,
            "base_ms": 10.0,
        }
        for k in range(int(rng.integers(0, 3)))
    ]
    regions: list[dict[str, Any]] = []
    twin_of: dict[int, int] = {}
    for j in range(R):
        if j > 0 and rng.random() < 0.4:
            src = int(rng.integers(0, j))
            src = twin_of.get(src, src)
            twin_of[j] = src
            twin = dict(regions[src])
            twin["id"] = f"r{j}"
            regions.append(twin)
            continue
        jur, tags = JURS[int(rng.integers(0, len(JURS)))]
        r: dict[str, Any] = {
            "id": f"r{j}",
            "jurisdiction": jur,
            "tags": tags,
            "lat": 0.0,
            "lon": float(j),
            "pue": float(rng.choice([1.1, 1.2, 1.5])),
            "capacity_kw": float(rng.choice([0.0, 0.05, 0.5, 50.0, 500.0, 500.0])),
            "models": [m["id"] for m in models if rng.random() < 0.5],
        }
        if rng.random() < 0.8:
            r["price_usd_per_mwh"] = float(rng.choice([-20.0, 30.0, 80.0, 80.0, 200.0]))
        if rng.random() < 0.8:
            r["marginal_gco2_per_kwh"] = float(rng.choice([20.0, 300.0, 300.0, 700.0]))
        if priors:
            r.update(_random_prior(rng))
        regions.append(r)
    S = int(rng.integers(1, 4))
    nodes = [
        {"id": f"n{s}", "home_region": f"r{int(rng.integers(0, R))}", "lat": 0.0, "lon": 0.0}
        for s in range(S)
    ]
    rtt = {
        n["id"]: {f"r{j}": float(rng.choice([2.0, 10.0, 24.0, 60.0, 150.0])) for j in range(R)} for n in nodes
    }
    egress = {f"r{a}": {f"r{b}": float(rng.choice([0.0, 0.02, 0.09])) for b in range(R)} for a in range(R)}
    for j, src in twin_of.items():  # a twin is reached and priced exactly like its original: exact score ties
        for row in rtt.values():
            row[f"r{j}"] = row[f"r{src}"]
        for a in range(R):
            egress[f"r{a}"][f"r{j}"] = egress[f"r{a}"][f"r{src}"]
    objective = {
        "carbon_usd_per_tonne": float(rng.choice([0.0, 100.0, 1000.0])),
        "relocation_fixed_usd": float(rng.choice([0.0, 0.0, 1e-5])),
        "capacity_window_s": float(rng.choice([1.0, 60.0])),
        "signal_max_age_s": float(rng.choice([30.0, 900.0])),
        "bandwidth_gbps": float(rng.choice([1.0, 10.0])),
        "regional_rtt_ms": 40.0,
        "forecast_horizon_s": float(rng.choice([0.0, 60.0, 3600.0, 3600.0])),
        "switch_margin_usd": float(rng.choice([0.0, 1e-6, 1e-4])),
        "session_min_dwell_s": float(rng.choice([0.0, 5.0, 60.0])),
        "session_ttl_s": float(rng.choice([10.0, 3600.0])),
    }
    tenants = [
        {
            "id": f"t{k}",
            "carbon_budget_g": float(rng.choice([0.5, 5.0, 50.0])),
            "window_s": float(rng.choice([10.0, 60.0])),
            "on_exhausted": str(rng.choice(["reject", "reject", "allow"])),
        }
        for k in range(int(rng.integers(0, 3)))
    ]
    return Topology.model_validate(
        {
            "objective": objective,
            "regions": regions,
            "service_nodes": nodes,
            "models": models,
            "rtt_ms": rtt,
            "egress_usd_per_gb": egress,
            "tenants": tenants,
        }
    )


def _random_prior(rng: np.random.Generator) -> dict[str, Any]:
    """The ``prior`` and ``on_stale`` tables of one region (router/priors.py): each kind has a prior three
    times in four, and takes it for a stale value two times in three when it has one."""
    prior: dict[str, float] = {}
    on_stale: dict[str, str] = {}
    for kind, field, values in (
        ("price", "price_usd_per_mwh", [-10.0, 40.0, 80.0]),
        ("carbon", "marginal_gco2_per_kwh", [30.0, 300.0, 600.0]),
    ):
        if rng.random() < 0.75:
            prior[field] = float(rng.choice(values))
            on_stale[kind] = "prior" if rng.random() < 2 / 3 else "mask"
    return {"prior": prior, "on_stale": on_stale}


def random_signal(rng: np.random.Generator, topo: Topology, ts: float) -> GridSignal:
    """A signal for a random region carrying a random subset of fields."""
    region = topo.regions[int(rng.integers(0, len(topo.regions)))].id
    fields: dict[str, Any] = {}
    while not fields:
        if rng.random() < 0.6:
            fields["price_usd_per_mwh"] = float(rng.choice([-50.0, 10.0, 80.0, 120.0]))
        if rng.random() < 0.6:
            fields["marginal_gco2_per_kwh"] = float(rng.choice([0.0, 50.0, 300.0, 800.0]))
        if rng.random() < 0.2:
            fields["pue"] = float(rng.choice([1.05, 1.3]))
        if rng.random() < 0.1:  # an average intensity never changes the marginal value or its freshness
            fields["average_gco2_per_kwh"] = float(rng.choice([100.0, 400.0]))
    if rng.random() < 0.5:
        fields["valid_for_s"] = float(rng.choice([5.0, 60.0, 3600.0]))
    return GridSignal(region=region, ts=ts, **fields)


def random_forecast(rng: np.random.Generator, topo: Topology, t: float) -> GridForecast:
    """A forecast for a random region, generated at or before ``t``, whose points may or may not cover
    the coming requests and carry price, carbon or both."""
    region = topo.regions[int(rng.integers(0, len(topo.regions)))].id
    generated_at = max(0.0, t - float(rng.choice([0.0, 0.0, 10.0, 100.0, 5000.0])))
    step = float(rng.choice([5.0, 60.0, 300.0]))
    start = generated_at + float(rng.choice([-step, 0.0, 0.5, step]))
    points: list[dict[str, Any]] = []
    for k in range(int(rng.integers(1, 7))):
        p: dict[str, Any] = {"ts": max(0.0, start + k * step * float(rng.choice([1.0, 1.0, 2.0])))}
        if points and p["ts"] <= points[-1]["ts"]:
            p["ts"] = points[-1]["ts"] + step
        while len(p) == 1:
            if rng.random() < 0.5:
                p["price_usd_per_mwh"] = float(rng.choice([-30.0, 20.0, 90.0]))
            if rng.random() < 0.7:
                p["marginal_gco2_per_kwh"] = float(rng.choice([10.0, 250.0, 900.0]))
        points.append(p)
    return GridForecast.model_validate(
        {"region": region, "generated_at": generated_at, "step_s": step, "points": points}
    )


def random_status(rng: np.random.Generator, topo: Topology, ts: float) -> RegionStatus:
    """A status toggling health or changing capacity of a random region."""
    region = topo.regions[int(rng.integers(0, len(topo.regions)))].id
    if rng.random() < 0.5:
        return RegionStatus(region=region, ts=ts, healthy=bool(rng.random() < 0.6))
    return RegionStatus(region=region, ts=ts, capacity_kw=float(rng.choice([0.0, 0.05, 5.0])))


def random_request(rng: np.random.Generator, topo: Topology, k: int, ts: float) -> Request:
    """A request mixing energy/tokens, state, pinning, residency and tight or loose budgets."""
    node = topo.service_nodes[int(rng.integers(0, len(topo.service_nodes)))]
    d: dict[str, Any] = {
        "request_id": f"q{k}",
        "origin": node.id,
        "ts": ts,
        "latency_budget_ms": float(rng.choice([1.0, 12.0, 24.0, 30.0, 70.0, 200.0, 5000.0, 5000.0, 5000.0])),
        "payload_bytes": int(rng.choice([0, 1000, 10**6])),
    }
    if topo.models and rng.random() < 0.4:
        d["model"] = topo.models[int(rng.integers(0, len(topo.models)))].id
        d["tokens"] = int(rng.choice([10, 500, 4000]))
        if rng.random() < 0.3:
            d["energy_wh"] = float(rng.choice([0.1, 1.0]))
    else:
        d["energy_wh"] = float(rng.choice([0.01, 0.1, 1.0, 5.0]))
    if rng.random() < 0.5:
        d["compute_ms"] = float(rng.choice([0.0, 5.0, 20.0]))
    if rng.random() < 0.3:
        d["state_region"] = topo.regions[int(rng.integers(0, len(topo.regions)))].id
        d["state_bytes"] = int(rng.choice([0, 10**5, 10**7]))
        d["state_pinned"] = bool(rng.random() < 0.3)
    if rng.random() < 0.25:
        d["allowed_jurisdictions"] = [str(rng.choice(["EU", "US", "SE", "JP", "BR"]))]
    if rng.random() < 0.5:  # a budgeted tenant (t0, t1 when the topology has them) or one that is not
        d["tenant"] = str(rng.choice(["t0", "t1", "t0", "other"]))
    if rng.random() < 0.4:
        d["session_id"] = f"s{int(rng.integers(0, 4))}"
    return Request.model_validate(d)


def random_timeline(rng: np.random.Generator, topo: Topology, n_requests: int) -> list[tuple[float, Any]]:
    """Requests, signals, statuses, capacity and tenant dual updates in non-decreasing event time."""
    out: list[tuple[float, Any]] = []
    t = 1000.0
    for k in range(n_requests):
        t += float(rng.choice([0.0, 0.0, 0.25, 1.0, 20.0]))
        u = rng.random()
        if u < 0.15:
            sig = random_signal(rng, topo, t - float(rng.choice([0.0, 10.0, 100.0, 900.0])))
            out.append((t, sig))
            for twin in _twins(topo, sig.region):  # keep twins identical half of the time
                if rng.random() < 0.5:
                    out.append((t, sig.model_copy(update={"region": twin})))
        elif u < 0.2:
            out.append((t, random_status(rng, topo, t)))
        elif u < 0.23:
            mu = rng.choice([0.0, 0.0, 0.0, 1e-5, 1e-4], size=len(topo.regions)).astype(float)
            out.append((t, ("mu", mu)))
        elif u < 0.3:
            fc = random_forecast(rng, topo, t)
            out.append((t, fc))
            for twin in _twins(topo, fc.region):  # keep twins identical half of the time
                if rng.random() < 0.5:
                    out.append((t, fc.model_copy(update={"region": twin})))
        if topo.tenants and rng.random() < 0.03:
            nu = rng.choice([0.0, 0.0, 1e-6, 1e-4], size=len(topo.tenants)).astype(float)
            out.append((t, ("nu", nu)))
        out.append((t, random_request(rng, topo, k, t)))
    return out


def _twins(topo: Topology, region: str) -> list[str]:
    """Other regions whose static description equals this one's (ids aside)."""
    me = next(r for r in topo.regions if r.id == region)
    same = me.model_dump(exclude={"id"})
    return [r.id for r in topo.regions if r.id != region and r.model_dump(exclude={"id"}) == same]
