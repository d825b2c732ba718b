"""Memory of the live router's dedup memory: what a remembered placement costs."""

from __future__ import annotations

import tracemalloc

from router.decider import Decider
from router.models import Request
from router.topology import load_topology


def test_a_remembered_placement_costs_its_size_not_a_json_buffer() -> None:
    """2,000 remembered placements hold under 2 KiB each (orjson's result alone keeps 4-8 KiB buffers)."""
    live = Decider(load_topology(None), dedup_size=10_000)
    reqs = [
        Request(request_id=f"r{k}", origin="fe-frankfurt", latency_budget_ms=300.0, energy_wh=0.5, ts=1.0)
        for k in range(2000)
    ]
    live.decide_requests(reqs[:10], decided_at=2.0)  # compile and first allocations, not measured
    live.forget([r.request_id for r in reqs[:10]])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decided = live.decide_requests(reqs, decided_at=2.0)
        del decided
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(live.seen) == 2000
    assert held / 2000 < 2048, f"{held / 2000:.0f} bytes per remembered placement"
