"""`carbon-router signals`: a recorded CSV becomes signals JSONL that `score` reads; bad input: exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from router.cli import main
from router.models import GridSignal

FIXTURES = Path(__file__).parents[1] / "fixtures" / "providers"
SA = FIXTURES / "au_sa_5min_2019-12-30.csv"
AUD = 0.651


def test_csv_becomes_signals_that_score_uses(tmp_path: Path) -> None:
    """The SA series becomes one signal per row, and `score` prices a Melbourne request with it."""
    out = tmp_path / "signals.jsonl"
    assert main(["signals", "--csv", str(SA), "--out", str(out)]) == 0
    lines = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(lines) == 301
    sig = [GridSignal.model_validate(x) for x in lines]
    assert [s.ts for s in sig] == sorted(s.ts for s in sig)
    spike = next(s for s in sig if s.ts == 1577686500.0)  # 2019-12-30T06:15Z
    assert spike.price_usd_per_mwh == pytest.approx(7750.86 * AUD)
    req = tmp_path / "r.jsonl"
    req.write_bytes(
        orjson.dumps(
            {
                "request_id": "r1",
                "origin": "fe-melbourne",
                "latency_budget_ms": 5,
                "energy_wh": 1.0,
                "ts": 1577686500.0 + 60,
            }
        )
        + b"\n"
    )
    placed = tmp_path / "p.jsonl"
    assert main(["score", "--signals", str(out), "--requests", str(req), "--out", str(placed)]) == 0
    (p,) = [orjson.loads(x) for x in placed.read_bytes().splitlines()]
    assert p["region"] == "gcp:australia-southeast2-a"
    assert p["energy_usd"] == pytest.approx(p["facility_wh"] / 1e6 * 7750.86 * AUD)


def test_stdout_when_no_out() -> None:
    """Without --out the JSONL goes to stdout."""
    r = subprocess.run(
        [sys.executable, "-m", "router.cli", "signals", "--csv", str(SA)], capture_output=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 301


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        (
            "zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30T04:00:00+00:00,1,AUD\nAU-QLD,2019-12-30T04:05:00+00:00,1,AUD\n",
            ["line 3", "field 'zone'", "'AU-QLD'", "expected one of"],
        ),
        (
            "zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30T04:00:00+00:00,1,XYZ\n",
            ["line 2", "field 'currency'", "'XYZ'", "expected"],
        ),
        (
            "zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30 04:00:00,1,AUD\n",
            ["line 2", "field 'datetime_utc'", "UTC offset"],
        ),
        ("zone,price_per_mwh,currency\nAU-SA,1,AUD\n", ["line 1", "time column"]),
    ],
)
def test_bad_csv_exits_2_naming_file_line_field_value(tmp_path: Path, body: str, needles: list[str]) -> None:
    """A bad row or header exits 2 with the file, the line, the field, the value and what was expected."""
    path = tmp_path / "bad.csv"
    path.write_text(body)
    r = subprocess.run(
        [sys.executable, "-m", "router.cli", "signals", "--csv", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert str(path) in r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


def test_missing_file_exits_2(tmp_path: Path) -> None:
    """A CSV that cannot be read exits 2 naming it."""
    assert main(["signals", "--csv", str(tmp_path / "nope.csv")]) == 2


def test_topology_command_shows_the_provider_mapping(capsys: pytest.CaptureFixture[str]) -> None:
    """`carbon-router topology` says how many zones each provider maps and the exchange rates."""
    assert main(["topology"]) == 0
    out = capsys.readouterr().out
    assert "zones mapped: watttime 1, electricitymaps 13, entsoe 6, csv 8" in out
    assert "EUR 1.0787" in out
