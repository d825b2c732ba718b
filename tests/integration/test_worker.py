"""The live worker against a real tansu broker: placements, dead letters, scale-out, metrics, shutdown."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.commands import bundled
from router.models import DeadLetter, Placement
from router.topology import load_topology
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce
from tests.integration.offline import score

pytestmark = pytest.mark.integration

T0 = 1776038400.0


def _lines(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in bundled(name).read_bytes().splitlines() if x.strip()]


def _scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Real signals of the first hour, then the sample requests of the next 15 minutes."""
    sig = [s for s in _lines("sample_signals.jsonl") if s["ts"] <= T0 + 3600]
    req = [r for r in _lines("sample_requests.jsonl") if T0 + 3600 < r["ts"] <= T0 + 4500]
    return sig, req


def _counter(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, flags=re.M))


def test_live_placements_equal_offline_score_field_for_field(settings: Settings, tmp_path: Path) -> None:
    """With signals before requests and no capacity binding, every live placement equals `score`'s,
    /metrics shows the counters moving, and SIGTERM ends the worker with status 0."""
    sig, req = _scenario()
    w = WorkerProc(settings, "w-eq", tmp_path)
    try:
        w.wait()
        before = w.get("/metrics").decode()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        w.wait(lambda h: h["signals_version"] >= len(sig))
        produce(settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in req])
        live = {
            orjson.loads(m.value)["request_id"]: orjson.loads(m.value)
            for m in drain(settings, settings.topic_placements, len(req))
        }
        after = w.get("/metrics").decode()
    finally:
        status = w.stop()
    assert status == 0
    assert len(live) == len(req) > 100
    offline = score(tmp_path, sig, req)
    assert len(offline) == len(req)
    relocated = 0
    for p in offline:
        got = live[p["request_id"]]
        Placement.model_validate(got)
        assert {k: v for k, v in got.items() if k != "decided_at"} == {
            k: v for k, v in p.items() if k != "decided_at"
        }
        relocated += p["region"] not in (None, p["home_region"])
    assert relocated > 20  # the comparison covers real relocation decisions, not only local ones
    assert _counter(after, "carbon_router_decisions_total") - _counter(
        before, "carbon_router_decisions_total"
    ) == len(req)
    assert _counter(after, "carbon_router_batch_size_count") > _counter(
        before, "carbon_router_batch_size_count"
    )


def test_malformed_requests_and_signals_are_dead_lettered_and_valid_ones_placed(
    settings: Settings, tmp_path: Path
) -> None:
    """Every malformed request and signal lands in the DLQ with its reason; every valid request is placed."""
    sig, req = _scenario()
    req = req[:60]
    bad_requests: list[tuple[bytes | None, bytes]] = [
        (b"k1", b"not json"),
        (b"k2", b'{"request_id": "x2", "origin": "fe-mars", "latency_budget_ms": 100, "energy_wh": 1}'),
        (b"k3", b'{"request_id": "x3", "origin": "fe-london", "latency_budget_ms": 0, "energy_wh": 1}'),
        (b"k4", b'{"request_id": "x4", "origin": "fe-london", "latency_budget_ms": "fast", "energy_wh": 1}'),
        (b"k5", b"\xff\xfe\x00binary"),
        (
            b"k6",
            b'{"request_id": "x6", "origin": "fe-london", "latency_budget_ms": 100, "energy_wh": 1, "p": "'
            + b"x" * 70_000
            + b'"}',
        ),
        (None, b""),
    ]
    bad_signals: list[tuple[bytes | None, bytes]] = [
        (b"s1", b"[1, 2, 3]"),
        (b"s2", b'{"region": "mars-1", "ts": 1, "price_usd_per_mwh": 10}'),
        (b"s3", b'{"region": "aws:eu-west-2", "ts": 1}'),
    ]
    w = WorkerProc(settings, "w-dlq", tmp_path)
    try:
        w.wait()
        produce(
            settings,
            settings.topic_signals,
            [(s["region"].encode(), orjson.dumps(s)) for s in sig] + bad_signals,
        )
        w.wait(lambda h: h["signals_version"] >= len(sig))
        mixed: list[tuple[bytes | None, bytes]] = []
        for k, r in enumerate(req):
            mixed.append((r["request_id"].encode(), orjson.dumps(r)))
            if k < len(bad_requests):
                mixed.append(bad_requests[k])
        produce(settings, settings.topic_requests, mixed)
        placed = drain(settings, settings.topic_placements, len(req))
        dead = drain(settings, settings.topic_dlq, len(bad_requests) + len(bad_signals))
        metrics = w.get("/metrics").decode()
    finally:
        assert w.stop() == 0
    assert sorted(orjson.loads(m.value)["request_id"] for m in placed) == sorted(r["request_id"] for r in req)
    letters = [DeadLetter.model_validate(orjson.loads(m.value)) for m in dead]
    assert len(letters) == len(bad_requests) + len(bad_signals)
    by_topic = {
        t: [x for x in letters if x.topic == t] for t in (settings.topic_requests, settings.topic_signals)
    }
    assert len(by_topic[settings.topic_requests]) == len(bad_requests)
    assert len(by_topic[settings.topic_signals]) == len(bad_signals)
    fields = {x.field for x in letters}
    assert {"origin", "latency_budget_ms", "region"} <= fields
    assert any("not valid JSON" in x.error for x in letters)
    assert any(x.raw_encoding == "base64" for x in letters)
    assert any("65536" in x.error or "too large" in x.error for x in letters)
    assert all(x.error for x in letters)
    assert _counter(metrics, "carbon_router_dead_letters_total") == len(letters)


def test_two_workers_share_partitions_and_one_leader_publishes_shares(
    settings: Settings, tmp_path: Path
) -> None:
    """Two workers in one group both get request partitions, every request is placed exactly once,
    and one leader alone re-solves and publishes shares when capacity binds."""
    topo = load_topology()
    tight = topo.model_copy(
        update={
            "objective": topo.objective.model_copy(update={"resolve_interval_s": 1.0}),
            "regions": tuple(r.model_copy(update={"capacity_kw": 0.5}) for r in topo.regions),
        }
    )
    path = tmp_path / "tight.json"
    path.write_bytes(orjson.dumps(tight.model_dump()))
    sig, req = _scenario()
    req = [dict(r, request_id=f"{r['request_id']}-{k}") for k in range(8) for r in req]
    workers = [WorkerProc(settings, f"w-{n}", tmp_path, topology=path) for n in (1, 2)]
    try:
        for w in workers:
            w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        for w in workers:
            w.wait(lambda h: h["signals_version"] >= len(sig))
        half = len(req) // 2
        produce(
            settings,
            settings.topic_requests,
            [(r["request_id"].encode(), orjson.dumps(r)) for r in req[:half]],
        )
        time.sleep(3.0)  # event time has not moved, but the leader's timer re-solves on the recent window
        produce(
            settings,
            settings.topic_requests,
            [(r["request_id"].encode(), orjson.dumps(r)) for r in req[half:]],
        )
        placed = drain(settings, settings.topic_placements, len(req))
        health = [w.wait(lambda h: h["partitions"] > 0, timeout_s=30) for w in workers]
        shares = drain(settings, settings.topic_shares, 1, timeout_s=20)
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0]
    ids = [orjson.loads(m.value)["request_id"] for m in placed]
    assert sorted(ids) == sorted(r["request_id"] for r in req)
    assert sum(h["partitions"] for h in health) == settings.request_partitions
    assert all(h["partitions"] > 0 for h in health)
    # each guards its share of every region's capacity window, so together they never exceed it
    assert sum(h["capacity_share"] for h in health) == pytest.approx(1.0)
    assert shares, "the leader published no shares although capacity binds"
    leaders = {orjson.loads(m.value)["leader"] for m in shares}
    assert len(leaders) == 1
    assert leaders <= {"w-1", "w-2"}


def test_demo_reaches_its_summary_quickly() -> None:
    """`carbon-router demo` starts its own broker and worker, prints the summary, and stops everything."""
    started = time.time()
    r = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--duration", "4", "--rate", "500", "--no-frontier"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.time() - started
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "== carbon-router demo: summary ==" in r.stdout
    assert re.search(r"placements received 2,000 \(", r.stdout), r.stdout[-1500:]
    assert took < 120
