"""Sticky sessions live: a worker's placements equal ``score``'s, also when it restarts mid-session."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from router.commands import bundled
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce
from tests.integration.offline import score
from tests.integration.test_worker import _scenario

pytestmark = pytest.mark.integration


def _topology(tmp_path: Path) -> Path:
    text = bundled("default_topology.toml").read_text(encoding="utf-8")
    text = text.replace(
        "[objective]\n", "[objective]\nswitch_margin_usd = 5e-6\nsession_min_dwell_s = 120\n", 1
    )
    path = tmp_path / "sticky.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sessions_survive_a_restart_and_match_score(settings: Settings, tmp_path: Path) -> None:
    """Requests keyed by session id: a worker decides the first half, stops, a new worker reloads the
    sessions from ``router.sessions`` and decides the rest; every placement (``session_moved`` included)
    equals ``score`` over all the requests, and some sessions moved."""
    sig, req = _scenario()
    req = [
        {**r, "session_id": f"{r['origin']}|{r.get('tenant')}|{r['latency_budget_ms'] > 300}"} for r in req
    ]
    topo = _topology(tmp_path)
    half = len(req) // 2
    live: dict[str, dict[str, object]] = {}
    for k, part in enumerate((req[:half], req[half:])):
        w = WorkerProc(settings, f"w-ses-{k}", tmp_path, topology=str(topo))
        try:
            w.wait()
            if k == 0:
                produce(
                    settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig]
                )
            w.wait(lambda h: h["signals_version"] >= len(sig) and h["partitions"] > 0, timeout_s=90)
            produce(
                settings, settings.topic_requests, [(r["session_id"].encode(), orjson.dumps(r)) for r in part]
            )
            for m in drain(settings, settings.topic_placements, len(live) + len(part)):
                p = orjson.loads(m.value)
                live.setdefault(p["request_id"], p)
        finally:
            assert w.stop() == 0
    offline = score(tmp_path, sig, req, "--topology", str(topo))
    assert len(offline) == len(req) == len(live)
    for p in offline:
        got = live[p["request_id"]]
        assert {k: v for k, v in got.items() if k != "decided_at"} == {
            k: v for k, v in p.items() if k != "decided_at"
        }
    assert sum(bool(p["session_moved"]) for p in offline) > 0
