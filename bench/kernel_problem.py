"""The kernel benchmark's synthetic problem: topology, signals, duals and a pool of requests per region count.

Built through the public path (``Topology.model_validate``, ``Plan``, ``Decider.apply_signal`` /
``apply_forecast`` / ``set_duals``, ``Plan.request_row``) so that the benchmark times what the router would
run. Every region has a history of values (applied out of order); a few regions' values change inside the
request pool's time span (a new price, a carbon value that expires with and without a forecast to fall
back on), one region has a static price, one has more values than the history keeps. See
``bench/README.md``, "The synthetic problem".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from router.decider import Decider
from router.forecast import ForecastState
from router.kernel import NEVER
from router.models import GridForecast, GridSignal, Request
from router.plan import Plan, RequestArrays
from router.state import CapacityWindows, RegionState
from router.topology import Topology

__all__ = [
    "JURISDICTIONS",
    "T0",
    "Problem",
    "build_problem",
    "clear_windows",
    "simple_signals",
    "synthetic_forecasts",
    "synthetic_requests",
    "synthetic_signals",
    "synthetic_topology",
]

T0 = 1_700_000_000.0
#: requests of the pool are 1 ms apart, from T0
REQUEST_STEP_S = 1e-3
JURISDICTIONS: tuple[tuple[str, list[str]], ...] = (
    ("DE", ["EU"]),
    ("FR", ["EU"]),
    ("SE", ["EU"]),
    ("US", []),
    ("JP", []),
    ("BR", []),
)


def synthetic_topology(R: int, rng: np.random.Generator, *, simple: bool = False) -> Topology:
    """R regions in six jurisdictions, four service nodes homed on r0..r3, two models, a full RTT table
    (``simple``: no region with a constant price)."""
    regions: list[dict[str, Any]] = []
    for j in range(R):
        jur, tags = JURISDICTIONS[j % len(JURISDICTIONS)]
        served = ["small", "large"] if rng.random() < 0.8 else [str(rng.choice(["small", "large"]))]
        regions.append(
            {
                "id": f"r{j}",
                "jurisdiction": jur,
                "tags": tags,
                "lat": float(rng.uniform(-60, 60)),
                "lon": float(rng.uniform(-180, 180)),
                "pue": 1.2,
                "capacity_kw": 1e6,  # ~1.7e16 nWh per window: never binds in this benchmark
                "models": served,
            }
        )
    if R > _STATIC_PRICE and not simple:
        regions[_STATIC_PRICE]["price_usd_per_mwh"] = 55.0  # its price is never signalled
    nodes = [{"id": f"n{k}", "home_region": f"r{k}", "lat": 0.0, "lon": 0.0} for k in range(4)]
    rtt = {
        n["id"]: {f"r{j}": 2.0 if j == k else float(rng.uniform(5, 250)) for j in range(R)}
        for k, n in enumerate(nodes)
    }
    sources = range(min(R, 16))
    egress = {f"r{a}": {f"r{b}": float(rng.uniform(0.0, 0.12)) for b in range(R) if b != a} for a in sources}
    return Topology.model_validate(
        {
            "objective": {"carbon_usd_per_tonne": 100.0, "relocation_fixed_usd": 1e-6},
            "regions": regions,
            "service_nodes": nodes,
            "models": [
                {"id": "small", "wh_per_token": 0.0005, "ms_per_token": 0.02, "base_ms": 20.0},
                {"id": "large", "wh_per_token": 0.004, "ms_per_token": 0.08, "base_ms": 60.0},
            ],
            "rtt_ms": rtt,
            "egress_usd_per_gb": egress,
        }
    )


#: the regions (index from the end, used when R is large enough to keep them off the four homes) whose
#: values change inside the pool: a new price at T0 + 0.25 s; carbon expiring at T0 + 0.5 s with a forecast
#: to fall back on; carbon expiring at T0 + 0.75 s without one (stale from then on)
_NEW_PRICE, _FC_CARBON, _STALE_CARBON = -1, -2, -3
#: a region whose price is the topology's constant and that has more carbon values than the history keeps
_STATIC_PRICE = _DROPPED = 4


def _value(rng: np.random.Generator, kind: str) -> float:
    return float(rng.uniform(-10, 250) if kind == "price" else rng.uniform(10, 800))


def synthetic_signals(R: int, rng: np.random.Generator) -> list[GridSignal]:
    """Per region price and carbon at T0 - 2400, T0 - 1200 and T0 - 30 (valid 900 s) with PUE, plus the
    special regions above; shuffled, so the value history sorts them by ts."""
    special = {R + k: k for k in (_NEW_PRICE, _FC_CARBON, _STALE_CARBON) if R + k >= 4}
    out: list[GridSignal] = []
    for j in range(R):
        ages = [2400.0, 1200.0, 30.0] if j != _DROPPED else [30.0 + 600.0 * k for k in range(20)]
        for age in ages:
            price = None if j == _STATIC_PRICE else _value(rng, "price")
            carbon = _value(rng, "carbon")
            out.append(_signal(j, T0 - age, price, carbon, float(rng.uniform(1.05, 1.6))))
        kind = special.get(j)
        if kind == _NEW_PRICE:
            out.append(_signal(j, T0 + 0.25, _value(rng, "price"), None, None))
        elif kind in (_FC_CARBON, _STALE_CARBON):
            expires = T0 + (0.5 if kind == _FC_CARBON else 0.75)
            out = [g for g in out if not (g.region == f"r{j}" and g.ts == T0 - 30.0)]
            out.append(_signal(j, T0 - 30.0, _value(rng, "price"), None, None))
            out.append(_signal(j, expires - 900.0, None, _value(rng, "carbon"), None))
    order = rng.permutation(len(out))
    return [out[k] for k in order]


def simple_signals(R: int, rng: np.random.Generator) -> list[GridSignal]:
    """The simple problem's signals: one per region, 30 s old at T0 and valid 900 s, with price, carbon and
    PUE drawn in that order (the benchmark's problem before the kernel package refactor, commit 28c3adc)."""
    out = []
    for j in range(R):
        price, carbon = _value(rng, "price"), _value(rng, "carbon")
        out.append(_signal(j, T0 - 30.0, price, carbon, float(rng.uniform(1.05, 1.6))))
    return out


def _signal(j: int, ts: float, price: float | None, carbon: float | None, pue: float | None) -> GridSignal:
    return GridSignal(
        region=f"r{j}",
        ts=ts,
        price_usd_per_mwh=price,
        marginal_gco2_per_kwh=carbon,
        pue=pue,
        valid_for_s=900.0,
    )


def synthetic_forecasts(R: int, rng: np.random.Generator) -> list[GridForecast]:
    """A 5-minute carbon forecast (made at T0 - 600) for the region whose carbon expires with one to fall
    back on, and for two regions with live values (which win over it)."""
    out: list[GridForecast] = []
    for j in sorted({k for k in (R + _FC_CARBON, R - 4, R - 5) if k >= 4}):
        points = [
            {"ts": T0 - 600.0 + 300.0 * k, "marginal_gco2_per_kwh": _value(rng, "carbon")} for k in range(5)
        ]
        fc = {"region": f"r{j}", "generated_at": T0 - 600.0, "step_s": 300.0, "points": points}
        out.append(GridForecast.model_validate(fc))
    return out


def synthetic_requests(R: int, n: int, rng: np.random.Generator) -> list[Request]:
    """A mix that exercises every filter but capacity: budgets, jurisdictions, models, state, pinning."""
    out: list[Request] = []
    for k in range(n):
        q: dict[str, Any] = {
            "request_id": f"q{k}",
            "origin": f"n{int(rng.integers(0, 4))}",
            "latency_budget_ms": float(rng.choice([60.0, 150.0, 300.0, 1000.0, 5000.0])),
            "payload_bytes": int(rng.integers(1_000, 2_000_000)),
        }
        if rng.random() < 0.5:
            q["model"] = str(rng.choice(["small", "large"]))
            q["tokens"] = int(rng.integers(50, 4000))
        else:
            q["energy_wh"] = float(rng.lognormal(-1.0, 1.0))
            q["compute_ms"] = float(rng.uniform(5, 200))
        if rng.random() < 0.3:
            q["state_region"] = f"r{int(rng.integers(0, min(R, 16)))}"
            q["state_bytes"] = int(rng.integers(100_000, 500_000_000))
            q["state_pinned"] = bool(rng.random() < 0.15)
        u = rng.random()
        if u < 0.25:
            q["allowed_jurisdictions"] = ["EU"]
        elif u < 0.35:
            q["allowed_jurisdictions"] = ["US"]
        elif u < 0.40:
            q["allowed_jurisdictions"] = ["JP", "SE"]
        out.append(Request.model_validate(q))
    return out


@dataclass(slots=True)
class Problem:
    """One region count: topology, plan, live state, and the pool of requests every cell cuts batches from."""

    topo: Topology
    plan: Plan
    state: RegionState
    forecasts: ForecastState
    requests: list[Request]
    rows: list[tuple[list[float], list[int]]]

    def batch(self, start: int, stop: int) -> RequestArrays:
        """Requests ``start:stop`` of the pool as kernel arrays."""
        return self.plan.arrays(self.requests[start:stop], self.rows[start:stop])


def build_problem(R: int, n_max: int, seed: int, *, simple: bool = False) -> Problem:
    """Synthetic problem for R regions: value histories, forecasts, capacity duals, a request pool.
    ``simple``: one fresh signal per region and no forecast, drawn exactly as the benchmark did before the
    kernel package refactor (commit 28c3adc), so that today's kernel can be timed on that problem."""
    rng = np.random.default_rng([seed, R])
    topo = synthetic_topology(R, rng, simple=simple)
    decider = Decider(topo)
    for sig in simple_signals(R, rng) if simple else synthetic_signals(R, rng):
        decider.apply_signal(sig)
    for fc in [] if simple else synthetic_forecasts(R, rng):
        decider.apply_forecast(fc)
    decider.set_duals(1, np.where(rng.random(R) < 0.5, rng.uniform(0, 2e-5, R), 0.0).tolist())
    plan, scorer = decider.plan, decider.scorer
    reqs = synthetic_requests(R, n_max, rng)
    rows = [plan.request_row(q, ts=T0 + k * REQUEST_STEP_S, source="bench") for k, q in enumerate(reqs)]
    return Problem(topo, plan, scorer.state, scorer.forecasts, reqs, rows)


def clear_windows(w: CapacityWindows) -> None:
    """Empty the kernel's capacity ring buffers in place."""
    w.head[:] = 0
    w.len[:] = 0
    w.sum_hi[:] = 0
    w.sum_lo[:] = 0
    w.next_expiry[:] = NEVER
