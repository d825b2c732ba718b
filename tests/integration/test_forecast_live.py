"""The forecast fallback in a live worker on a real tansu broker, fed by the grid.forecasts topic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from router.cli import main
from router.models import DeadLetter, GridForecast, Placement
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce
from tests.router.test_forecast import AWAY, T0, TOPO, _point, _signals
from tests.router.watttime import epoch, issued_forecasts

pytestmark = pytest.mark.integration


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def _requests(start: str, stop: str, every_s: float) -> list[dict[str, Any]]:
    t, end = epoch(start), epoch(stop)
    out: list[dict[str, Any]] = []
    while t < end:
        out.append(
            {
                "request_id": f"q{int(t)}",
                "origin": "fe",
                "latency_budget_ms": 500.0,
                "energy_wh": 1.0,
                "ts": t,
            }
        )
        t += every_s
    return out


def test_live_worker_places_on_a_published_forecast_like_score(settings: Settings, tmp_path: Path) -> None:
    """Real issued WattTime forecasts published on grid.forecasts make a stale region a target in a live
    worker; its placements say so, carry the issued value exactly, and equal `score --forecasts` field for
    field; a malformed forecast is dead-lettered naming its field."""
    topo = tmp_path / "topo.json"
    topo.write_bytes(orjson.dumps(TOPO.model_dump(mode="json")))
    sig = [s.model_dump(exclude_none=True) for _, s in _signals()]
    by_issue = {f.generated_at: f for f in issued_forecasts(AWAY)}
    first = [by_issue[epoch(f"2023-06-08 00:{m:02d}:00")] for m in (0, 5, 10, 15)]
    second = by_issue[epoch("2023-06-08 00:30:00")]
    req1 = _requests("2023-06-08 00:15:00", "2023-06-08 00:30:00", 20.0)
    req2 = _requests("2023-06-08 00:35:00", "2023-06-08 00:45:00", 20.0)

    def publish_forecasts(fcs: list[GridForecast]) -> None:
        produce(
            settings,
            settings.topic_forecasts,
            [(f.region.encode(), orjson.dumps(f.model_dump(exclude_none=True))) for f in fcs],
        )

    def publish_requests(reqs: list[dict[str, Any]]) -> None:
        produce(
            settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in reqs]
        )

    bad = [
        (AWAY.encode(), orjson.dumps({"region": AWAY, "generated_at": T0, "step_s": 300.0, "points": []})),
        (b"mars-1", orjson.dumps({**first[0].model_dump(exclude_none=True), "region": "mars-1"})),
    ]
    w = WorkerProc(settings, "w-fc", tmp_path, topology=str(topo))
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        w.wait(lambda h: h["signals_version"] >= len(sig))
        publish_forecasts(first)
        produce(settings, settings.topic_forecasts, bad)
        w.wait(lambda h: h["forecasts_version"] >= len(first))
        publish_requests(req1)
        got = drain(settings, settings.topic_placements, len(req1))
        publish_forecasts([second])
        w.wait(lambda h: h["forecasts_version"] >= len(first) + 1)
        publish_requests(req2)
        got = drain(settings, settings.topic_placements, len(req1) + len(req2))
        letters = [
            DeadLetter.model_validate(orjson.loads(m.value)) for m in drain(settings, settings.topic_dlq, 2)
        ]
    finally:
        status = w.stop()
    assert status == 0
    live = {p["request_id"]: p for p in (orjson.loads(m.value) for m in got)}
    assert len(live) == len(req1) + len(req2)
    assert sorted((d.topic, d.field) for d in letters) == sorted(
        [(settings.topic_forecasts, "points"), (settings.topic_forecasts, "region")]
    )

    out = tmp_path / "p.jsonl"
    args = ["score", "--topology", str(topo), "--out", str(out)]
    args += ["--signals", str(_jsonl(tmp_path / "s.jsonl", sig))]
    args += ["--requests", str(_jsonl(tmp_path / "r.jsonl", req1 + req2))]
    fcs = [f.model_dump(exclude_none=True) for f in [*first, second]]
    args += ["--forecasts", str(_jsonl(tmp_path / "f.jsonl", fcs))]
    assert main(args) == 0
    offline = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(offline) == len(live)
    for p in offline:
        got_p = live[p["request_id"]]
        Placement.model_validate(got_p)
        assert {k: v for k, v in got_p.items() if k != "decided_at"} == {
            k: v for k, v in p.items() if k != "decided_at"
        }
    by_fc = [p for p in live.values() if p["signal_source"] == "forecast"]
    assert len(by_fc) >= 40
    assert all(p["region"] == AWAY for p in by_fc)
    assert {p["forecast_generated_at"] for p in by_fc} == {first[-1].generated_at, second.generated_at}
    q = live[f"q{int(epoch('2023-06-08 00:21:00'))}"]
    assert q["signal_source"] == "forecast"
    assert q["forecast_generated_at"] == epoch("2023-06-08 00:15:00")
    assert q["carbon_g"] == 1.0 * (1.0 * _point("2023-06-08 00:15:00", "2023-06-08 00:20:00") / 1e3)
