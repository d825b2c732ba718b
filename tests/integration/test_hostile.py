"""Crash-loop and poisoning messages against a live worker: dead-lettered or applied safely, the
worker keeps placing valid requests, and a restarted worker reading the same logs does not crash."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.commands import bundled
from router.models import DeadLetter
from router.topology import load_topology
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce

pytestmark = pytest.mark.integration

T0 = 1776038400.0
TEN_YEARS_S = 10 * 365 * 86400.0


def _lines(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in bundled(name).read_bytes().splitlines() if x.strip()]


def _requests(lo: float, hi: float, tag: str) -> list[tuple[bytes | None, bytes]]:
    out = []
    for r in _lines("sample_requests.jsonl"):
        if lo < r["ts"] <= hi:
            r = dict(r, request_id=f"{r['request_id']}-{tag}")
            out.append((r["request_id"].encode(), orjson.dumps(r)))
    return out


def _hostile(regions: list[str]) -> dict[str, list[tuple[bytes | None, bytes]]]:
    """Hostile messages that must be dead-lettered, by topic key (the field each one's letter names)."""
    now = time.time()
    shares = {
        "ts": now,
        "ok": True,
        "status": "Optimal",
        "regions": regions,
        "mu_usd_per_wh": dict.fromkeys(regions, 0.0),
        "groups": [],
        "shares": [],
        "unserved_share": [],
        "solve_s": 0.01,
        "leader": "mallory",
    }
    r0 = regions[0]
    return {
        "signals": [
            (
                b"inf",
                orjson.dumps(
                    {
                        "region": r0,
                        "ts": T0 + 3000,
                        "price_usd_per_mwh": 50.0,
                        "valid_for_s": 1.7976931348623157e308,
                    }
                ),
            ),
            (b"future", orjson.dumps({"region": r0, "ts": now + TEN_YEARS_S, "price_usd_per_mwh": -1000.0})),
        ],
        "status": [
            (b"future", orjson.dumps({"region": r0, "ts": now + TEN_YEARS_S, "healthy": False})),
        ],
        "shares": [
            (
                b"shares",
                orjson.dumps({**shares, "version": 0}).replace(
                    b'"version":0', b'"version":18446744073709551616'
                ),
            ),
            (b"shares", orjson.dumps({**shares, "version": 5, "epoch": 0, "seq": 5, "mac": "0" * 64})),
        ],
        "requests": [
            (
                b"typo",
                orjson.dumps(
                    {
                        "request_id": "typo",
                        "origin": "fe-frankfurt",
                        "ts": T0 + 3700,
                        "latency_budget_ms": 300,
                        "energy_wh": 1.0,
                        "allowed_jurisdiction": ["DE"],
                    }
                ),
            ),
            (
                b"ahead",
                orjson.dumps(
                    {
                        "request_id": "ahead",
                        "origin": "fe-frankfurt",
                        "ts": now + TEN_YEARS_S,
                        "latency_budget_ms": 300,
                        "energy_wh": 1.0,
                    }
                ),
            ),
        ],
    }


def test_crash_loop_and_poisoning_messages_never_stop_the_worker(settings: Settings, tmp_path: Path) -> None:
    """Negative home prices are placed and counted as signed money; an infinite validity, a 2**64 shares
    version, messages dated ten years ahead, forged shares and a misspelt constraint are dead-lettered naming
    their field; every valid request is placed, before and after a restart on the same logs."""
    regions = [r.id for r in load_topology().regions]
    sig = [s for s in _lines("sample_signals.jsonl") if s["ts"] <= T0 + 3600]
    negative = [{"region": r, "ts": T0 + 3600, "price_usd_per_mwh": -34.19} for r in regions]
    hostile = _hostile(regions)
    topic = {
        "signals": settings.topic_signals,
        "status": settings.topic_status,
        "shares": settings.topic_shares,
        "requests": settings.topic_requests,
    }
    first, second = _requests(T0 + 3600, T0 + 3900, "a"), _requests(T0 + 3900, T0 + 4200, "b")
    w = WorkerProc(settings, "w-hostile", tmp_path)
    try:
        w.wait()
        good = [(s["region"].encode(), orjson.dumps(s)) for s in sig + negative]
        produce(settings, settings.topic_signals, good + hostile["signals"])
        for key in ("status", "shares"):
            produce(settings, topic[key], hostile[key])
        w.wait(lambda h: h["signals_version"] >= len(good))
        produce(settings, settings.topic_requests, first[:40] + hostile["requests"] + first[40:])
        placed = drain(settings, settings.topic_placements, len(first))
        n_hostile = sum(len(v) for v in hostile.values())
        dead = drain(settings, settings.topic_dlq, n_hostile, timeout_s=30)
        metrics = w.get("/metrics").decode()
        assert w.health()["ok"]
    finally:
        assert w.stop() == 0
    assert {orjson.loads(m.value)["request_id"] for m in placed} == {k.decode() for k, _ in first if k}
    letters = [DeadLetter.model_validate(orjson.loads(m.value)) for m in dead]
    fields = sorted((x.topic, x.field or "") for x in letters)
    assert len(letters) == n_hostile, fields
    by_field = {x.field: x for x in letters}
    assert {"valid_for_s", "ts", "version", "allowed_jurisdiction"} <= set(by_field), fields
    assert "allowed_jurisdictions" in by_field["allowed_jurisdiction"].error  # did you mean
    assert any(x.topic == settings.topic_shares and x.field in ("mac", "leader", "epoch") for x in letters)
    assert "carbon_router_baseline_energy_usd_negative_total" in metrics
    w2 = WorkerProc(settings, "w-hostile-2", tmp_path)
    try:
        w2.wait(lambda h: h["signals_version"] >= len(good))
        produce(settings, settings.topic_requests, second)
        later = drain(settings, settings.topic_placements, len(first) + len(second))
        assert w2.health()["ok"]
    finally:
        assert w2.stop() == 0
    assert {orjson.loads(m.value)["request_id"] for m in later} >= {k.decode() for k, _ in second if k}
