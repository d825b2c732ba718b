"""The kernel benchmark's synthetic problem: topology, signals, duals and a pool of requests per region count.

Built through the public path (``Topology.model_validate``, ``Plan``, ``RegionState.apply_signal``,
``RegionState.set_duals``, ``Plan.request_row``) so that the benchmark times what the router would run.
See ``bench/README.md``, "The synthetic problem".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from router.models import GridSignal, Request
from router.plan import Plan, RequestArrays
from router.state import CapacityWindows, RegionState
from router.topology import Topology

__all__ = [
    "JURISDICTIONS",
    "T0",
    "Problem",
    "build_problem",
    "clear_windows",
    "synthetic_requests",
    "synthetic_signals",
    "synthetic_topology",
]

T0 = 1_700_000_000.0
JURISDICTIONS: tuple[tuple[str, list[str]], ...] = (
    ("DE", ["EU"]),
    ("FR", ["EU"]),
    ("SE", ["EU"]),
    ("US", []),
    ("JP", []),
    ("BR", []),
)


def synthetic_topology(R: int, rng: np.random.Generator) -> Topology:
    """R regions in six jurisdictions, four service nodes homed on r0..r3, two models, a full RTT table."""
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


def synthetic_signals(R: int, rng: np.random.Generator) -> list[GridSignal]:
    """One fresh signal per region (30 s old at T0, valid 900 s) with price, carbon and PUE."""
    return [
        GridSignal(
            region=f"r{j}",
            ts=T0 - 30.0,
            price_usd_per_mwh=float(rng.uniform(-10, 250)),
            marginal_gco2_per_kwh=float(rng.uniform(10, 800)),
            pue=float(rng.uniform(1.05, 1.6)),
            valid_for_s=900.0,
        )
        for j in range(R)
    ]


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
    signals: list[GridSignal]
    requests: list[Request]
    rows: list[tuple[list[float], list[int]]]

    def batch(self, start: int, stop: int) -> RequestArrays:
        """Requests ``start:stop`` of the pool as kernel arrays."""
        return self.plan.arrays(self.requests[start:stop], self.rows[start:stop])


def build_problem(R: int, n_max: int, seed: int) -> Problem:
    """Synthetic problem for R regions; every region gets a fresh signal and a capacity dual."""
    rng = np.random.default_rng([seed, R])
    topo = synthetic_topology(R, rng)
    plan = Plan(topo)
    state = RegionState(plan)
    signals = synthetic_signals(R, rng)
    for sig in signals:
        state.apply_signal(sig)
    state.set_duals(np.where(rng.random(R) < 0.5, rng.uniform(0, 2e-5, R), 0.0))
    reqs = synthetic_requests(R, n_max, rng)
    rows = [plan.request_row(q, ts=T0 + k * 1e-3, source="bench") for k, q in enumerate(reqs)]
    return Problem(topo, plan, state, signals, reqs, rows)


def clear_windows(w: CapacityWindows) -> None:
    """Empty the kernel's capacity ring buffers in place."""
    w.head[:] = 0
    w.len[:] = 0
    w.sum[:] = 0
    w.next_expiry[:] = 1e300
