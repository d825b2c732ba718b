"""What-if variants of the bundled real-data scenario, for the tests of the paper's conclusions."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from router.commands import bundled
from router.io import read_jsonl
from router.models import GridSignal, Request
from router.topology import Topology, load_topology

Signals = list[tuple[int, GridSignal]]
Requests = list[tuple[int, Request]]


@cache
def bundled_inputs() -> tuple[Topology, Signals, Requests]:
    """The bundled topology, real grid signals and sample requests."""
    return (
        load_topology(),
        read_jsonl(bundled("sample_signals.jsonl"), GridSignal),
        read_jsonl(bundled("sample_requests.jsonl"), Request),
    )


def with_capacity(topo: Topology, kw: dict[str, float] | float) -> Topology:
    """The topology with capacities replaced (one value for all, or per region id; others unchanged)."""
    regions = tuple(
        r.model_copy(update={"capacity_kw": kw if isinstance(kw, float) else kw.get(r.id, r.capacity_kw)})
        for r in topo.regions
    )
    return topo.model_copy(update={"regions": regions})


def without_egress(topo: Topology) -> Topology:
    """The topology with every egress price at zero."""
    zero = {a: dict.fromkeys(row, 0.0) for a, row in topo.egress_usd_per_gb.items()}
    obj = topo.objective.model_copy(update={"default_egress_usd_per_gb": 0.0})
    return topo.model_copy(update={"egress_usd_per_gb": zero, "objective": obj})


def strip(requests: Requests, *fields: str) -> Requests:
    """The same requests with the named optional fields removed (set to their defaults)."""
    defaults: dict[str, Any] = {
        "state_region": None,
        "state_bytes": 0,
        "state_pinned": False,
        "allowed_jurisdictions": None,
    }
    return [(n, r.model_copy(update={f: defaults[f] for f in fields})) for n, r in requests]


def frankfurt_load(
    n: int, interactive_share: float, seed: int, t0: float = 1776038400.0 + 600.0, span_s: float = 600.0
) -> Requests:
    """A Frankfurt load mixing interactive (10.5 ms budget: nearby EU only) and batch (200 ms) requests."""
    rng = np.random.default_rng(seed)
    ts = t0 + np.sort(rng.uniform(0.0, span_s, n))
    out: Requests = []
    for k in range(n):
        inter = bool(rng.random() < interactive_share)
        req = Request(
            request_id=f"fra-{k:06d}",
            origin="fe-frankfurt",
            ts=float(ts[k]),
            latency_budget_ms=10.5 if inter else 200.0,
            energy_wh=float(rng.uniform(0.2, 2.0)),
            payload_bytes=int(rng.integers(1_000, 200_000)),
        )
        out.append((k + 1, req))
    return out
