"""The shipped JSON Schemas match the models; real messages (bundled samples, score's output) satisfy them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from router.cli import main
from router.commands import bundled
from router.schemas import DIALECT, MESSAGES, generate, render, schema_path

ROOT = Path(__file__).resolve().parents[2]


def _validator(name: str) -> Draft202012Validator:
    schema = orjson.loads(schema_path(name).read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _errors(name: str, lines: list[bytes]) -> list[str]:
    v = _validator(name)
    return [f"line {i}: {e.message}" for i, x in enumerate(lines, 1) for e in v.iter_errors(orjson.loads(x))]


@pytest.mark.parametrize("name", list(MESSAGES))
def test_the_shipped_schema_is_what_the_models_generate(name: str) -> None:
    """Each router/schemas/<Name>.json equals the models' schema; else rerun scripts/build_schemas.py."""
    assert schema_path(name).read_bytes() == render(generate(name)), (
        f"router/schemas/{name}.json differs from router.models.{MESSAGES[name].__name__}; "
        "run `.venv/bin/python scripts/build_schemas.py` and commit the files"
    )
    assert generate(name)["$schema"] == DIALECT


def test_the_build_script_reports_a_drifted_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """build_schemas.py --check exits 1 naming a stale file, and a plain run rewrites it to match."""
    spec = importlib.util.spec_from_file_location("build_schemas", ROOT / "scripts" / "build_schemas.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "schema_path", lambda name: tmp_path / f"{name}.json")
    for name in MESSAGES:
        (tmp_path / f"{name}.json").write_bytes(render(generate(name)))
    (tmp_path / "Request.json").write_bytes(b"{}\n")
    assert mod.main(["--check"]) == 1
    assert (tmp_path / "Request.json").read_bytes() == b"{}\n"
    assert mod.main([]) == 0
    assert mod.main(["--check"]) == 0


def test_bundled_samples_satisfy_their_schemas() -> None:
    """Every line of the bundled requests and signals validates against the Request and GridSignal schemas."""
    requests = bundled("sample_requests.jsonl").read_bytes().splitlines()
    signals = bundled("sample_signals.jsonl").read_bytes().splitlines()
    assert len(requests) == 4000
    assert len(signals) == 504
    assert _errors("Request", requests) == []
    assert _errors("GridSignal", signals) == []


def test_the_placements_score_writes_satisfy_the_placement_schema(tmp_path: Path) -> None:
    """score's placements of the bundled data (placed and rejected) validate against Placement's schema."""
    out = tmp_path / "p.jsonl"
    assert main(["score", "--alpha", "0.5", "--out", str(out)]) == 0
    lines = out.read_bytes().splitlines()
    statuses = {orjson.loads(x)["status"] for x in lines}
    assert statuses == {"placed", "rejected"}
    assert _errors("Placement", lines) == []


def test_the_forecasts_signals_writes_satisfy_the_forecast_schema(tmp_path: Path) -> None:
    """The GridForecast lines of `signals --forecasts-out` validate against the GridForecast schema."""
    import time

    now = time.time()
    rows = "".join(f"{now + h * 3600:.0f},aws:us-west-1,{20 + h},{300 + h}\n" for h in (1, 2, 3))
    csv = tmp_path / "ahead.csv"
    csv.write_text("ts,region,price_usd_per_mwh,marginal_gco2_per_kwh\n" + rows)
    fc = tmp_path / "f.jsonl"
    argv = ["signals", "--csv", str(csv), "--out", str(tmp_path / "s.jsonl"), "--forecasts-out", str(fc)]
    assert main(argv) == 0
    lines = fc.read_bytes().splitlines()
    assert len(lines) == 1
    assert _errors("GridForecast", lines) == []


@pytest.mark.parametrize(
    ("name", "message", "needle"),
    [
        ("Request", {"request_id": "r", "origin": "fe", "latency_budget_ms": 0}, "latency_budget_ms"),
        ("Request", {"request_id": "r", "latency_budget_ms": 5}, "'origin' is a required property"),
        ("GridSignal", {"region": "a", "ts": 1, "pue": 0.5}, "pue"),
        ("Placement", {"request_id": "r"}, "is a required property"),
    ],
)
def test_the_schemas_refuse_what_the_models_refuse(name: str, message: dict[str, Any], needle: str) -> None:
    """A zero budget, a missing origin, a PUE below 1 or a truncated placement fail their schema."""
    errors = [f"{'.'.join(map(str, e.path))} {e.message}" for e in _validator(name).iter_errors(message)]
    assert errors, message
    assert any(needle in e for e in errors), errors
