"""The worker and ``score`` total the same stream identically (router/totals.py): one accumulator, fixed
point, so batching cannot change a digit."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce
from tests.integration.offline import score
from tests.integration.test_worker import _scenario

pytestmark = pytest.mark.integration


def test_worker_totals_equal_score_totals_exactly(settings: Settings, tmp_path: Path) -> None:
    sig, req = _scenario()
    # a home region priced below zero for part of the hour: negative baselines and savings are summed too
    sig = [
        {**s, "price_usd_per_mwh": -30.0} if s["region"] == sig[0]["region"] and k % 2 else s
        for k, s in enumerate(sig)
    ]
    w = WorkerProc(settings, "w-tot", tmp_path)
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        w.wait(lambda h: h["signals_version"] >= len(sig))
        # several produce calls, so the worker sees the stream in more than one batch
        third = len(req) // 3
        for part in (req[:third], req[third : 2 * third], req[2 * third :]):
            produce(
                settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in part]
            )
        drain(settings, settings.topic_placements, len(req))
        live = orjson.loads(w.get("/api/state"))["totals"]
    finally:
        assert w.stop() == 0
    summary = tmp_path / "summary.json"
    score(tmp_path, sig, req, "--summary", str(summary))
    offline = json.loads(summary.read_text())
    assert offline["requests"] == len(req)
    assert offline["placed"] > 100
    assert offline["relocated_share"] > 0
    assert live == offline
