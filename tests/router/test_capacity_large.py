"""Property: capacities up to 1e12 kW over windows up to a day never make the guard remove a candidate that
the capacity allows (a one-word window would overflow at 1e9 kW and remove every relocation)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.bounds import MAX_CAPACITY_KW, MAX_ENERGY_WH
from router.commands import bundled
from router.decider import Decider
from router.models import GridSignal, Request
from router.topology import Topology, load_topology

T0 = 1776038400.0


def _lines(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in bundled(name).read_bytes().splitlines() if x.strip()]


SIGNALS = [GridSignal.model_validate(s) for s in _lines("sample_signals.jsonl") if s["ts"] <= T0 + 3600]
REQUESTS = [
    r for r in _lines("sample_requests.jsonl") if T0 + 3600 < r["ts"] <= T0 + 4200 and "energy_wh" in r
]


def _topology(capacity_kw: float | None, window_s: float) -> Topology:
    topo = load_topology()
    return topo.model_copy(
        update={
            "objective": topo.objective.model_copy(update={"capacity_window_s": window_s}),
            "regions": tuple(r.model_copy(update={"capacity_kw": capacity_kw}) for r in topo.regions),
        }
    )


def _decide(topo: Topology, energy_scale: float) -> list[dict[str, Any]]:
    live = Decider(topo)
    for sig in SIGNALS:
        live.apply_signal(sig)
    reqs = [
        Request.model_validate({**r, "energy_wh": min(MAX_ENERGY_WH, r["energy_wh"] * energy_scale)})
        for r in REQUESTS
    ]
    return live.decide_requests(reqs, decided_at=T0 + 5000).placements


@pytest.mark.slow  # ~10 s: 20 examples, each deciding the bundled requests twice
@settings(max_examples=20, deadline=None)
@given(
    capacity_kw=st.floats(min_value=1e8, max_value=MAX_CAPACITY_KW),
    window_s=st.floats(min_value=1.0, max_value=86_400.0),
    energy_scale=st.floats(min_value=1.0, max_value=1e4),
)
def test_large_capacities_and_long_windows_remove_nothing_they_allow(
    capacity_kw: float, window_s: float, energy_scale: float
) -> None:
    """With every region's capacity window far above the whole stream's energy (at most ~1e9 Wh here,
    against at least 1e8 kW x 1 s = 2.8e7 Wh), no candidate is removed for capacity and every placement
    equals the one without any capacity limit."""
    got = _decide(_topology(capacity_kw, window_s), energy_scale)
    want = _decide(_topology(None, window_s), energy_scale)
    total_wh = sum(min(MAX_ENERGY_WH, r["energy_wh"] * energy_scale) for r in REQUESTS)
    assert total_wh < capacity_kw * window_s / 3.6
    assert not any(p["removed"].get("capacity", 0) for p in got)
    assert got == want
    assert len(got) == len(REQUESTS) >= 40
    assert any(p["status"] == "placed" and p["region"] != p["home_region"] for p in got)
