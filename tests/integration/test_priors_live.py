"""Priors in a live worker on a real tansu broker: a stream whose signals go stale, and priors stand in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from router.models import Placement
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce
from tests.integration.offline import score
from tests.router.test_priors import BASE_TOML, PRIOR

pytestmark = pytest.mark.integration

T0 = 1776038400.0  # 2026-04-13 00:00 UTC, as the bundled data


def _signals() -> list[dict[str, Any]]:
    """Home, away and far at T0 (valid 100 s); away again at T0 + 300 and far at T0 + 450, then silence."""
    sig = [
        {"region": "home", "ts": T0, "price_usd_per_mwh": 90.0, "marginal_gco2_per_kwh": 500.0},
        {"region": "away", "ts": T0, "price_usd_per_mwh": 10.0, "marginal_gco2_per_kwh": 50.0},
        {"region": "far", "ts": T0, "price_usd_per_mwh": 12.0, "marginal_gco2_per_kwh": 60.0},
        {"region": "away", "ts": T0 + 300, "price_usd_per_mwh": 11.0, "marginal_gco2_per_kwh": 55.0},
        {"region": "far", "ts": T0 + 450, "marginal_gco2_per_kwh": 40.0},
    ]
    return [{**s, "valid_for_s": 100.0} for s in sig]


def test_live_worker_places_on_priors_like_score(settings: Settings, tmp_path: Path) -> None:
    """Away takes its prior for both values and far only for its price: as the signals go stale, the live
    worker places on live values and on priors, and every placement equals
    `score`'s on the same inputs field for field (`decided_at` aside)."""
    away = PRIOR.format(p=20.0, c=45.0, rp="prior", rc="prior")
    far = PRIOR.format(p=15.0, c=30.0, rp="prior", rc="mask")
    topo = tmp_path / "topo.toml"
    topo.write_text(BASE_TOML.format(away=away, far=far))
    sig = _signals()
    req = [
        {"request_id": f"q{k}", "origin": "fe", "latency_budget_ms": 100.0, "energy_wh": 1.0, "ts": T0 + t}
        for k, t in enumerate(range(5, 900, 5))
    ]
    w = WorkerProc(settings, "w-prior", tmp_path, topology=str(topo))
    try:
        w.wait()
        for lo, hi in ((T0, T0 + 300), (T0 + 300, T0 + 450), (T0 + 450, T0 + 900)):  # in event time
            now = [s for s in sig if lo <= s["ts"] < hi]
            produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in now])
            n_sig = sum(s["ts"] < hi for s in sig)
            w.wait(lambda h, n=n_sig: h["signals_version"] >= n)
            part = [r for r in req if lo <= r["ts"] < hi]
            produce(
                settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in part]
            )
            got = drain(settings, settings.topic_placements, sum(r["ts"] < hi for r in req))
    finally:
        status = w.stop()
    assert status == 0
    live = {p["request_id"]: p for p in (orjson.loads(m.value) for m in got)}
    assert len(live) == len(req)
    offline = score(tmp_path, sig, req, "--topology", str(topo))
    assert len(offline) == len(req)
    for p in offline:
        Placement.model_validate(live[p["request_id"]])
        assert {k: v for k, v in live[p["request_id"]].items() if k != "decided_at"} == {
            k: v for k, v in p.items() if k != "decided_at"
        }
    by_source: dict[str, set[str]] = {}
    for p in offline:
        by_source.setdefault(p["signal_source"], set()).add(p["region"])
    assert by_source["live"] == {"away"}
    assert by_source["prior"] == {"away", "far"}  # away once stale; far while its carbon is fresh
    late = next(p for p in offline if p["event_ts"] == T0 + 200)
    assert (late["region"], late["signal_source"], late["signal_age_s"]) == ("away", "prior", None)
    assert late["energy_usd"] == 1.0 * 1.1 * 20.0 / 1e6
