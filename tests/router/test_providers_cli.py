"""`carbon-router signals`: a recorded CSV becomes signals JSONL that `score` reads; bad input: exit 2."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from router.cli import main
from router.models import GridForecast, GridSignal

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


def test_a_typo_in_a_column_name_exits_2_and_ignore_columns_lets_it_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown column is refused with did-you-mean; --ignore-columns drops it and the rest converts."""
    path = tmp_path / "typo.csv"
    path.write_text("ts,region,marginal_gco2_kwh,price_usd_per_mwh\n100,aws:us-west-1,400,30\n")
    assert main(["signals", "--csv", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}, line 1, field 'marginal_gco2_kwh': unknown column" in err
    assert "did you mean 'marginal_gco2_per_kwh'?" in err
    assert "Traceback" not in err
    out = tmp_path / "s.jsonl"
    argv = ["signals", "--csv", str(path), "--ignore-columns", "marginal_gco2_kwh", "--out", str(out)]
    assert main(argv) == 0
    (sig,) = [GridSignal.model_validate(orjson.loads(x)) for x in out.read_bytes().splitlines()]
    assert sig.price_usd_per_mwh == 30
    assert sig.marginal_gco2_per_kwh is None


TWO = """
[objective]
forecast_horizon_s = 86400.0
[[regions]]
id = "a"
jurisdiction = "DE"
lat = 50.0
lon = 8.0
pue = 1.2
capacity_kw = 10.0
[[regions]]
id = "b"
jurisdiction = "SE"
lat = 59.0
lon = 18.0
pue = 1.1
capacity_kw = 10.0
[[service_nodes]]
id = "fe"
home_region = "a"
lat = 50.0
lon = 8.0
"""


def test_day_ahead_rows_become_forecasts_that_score_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows dated after now go to --forecasts-out; score --forecasts then relocates to the forecast region."""
    now = time.time()
    topo, csv_path = tmp_path / "t.toml", tmp_path / "day_ahead.csv"
    topo.write_text(TWO)
    rows = [f"{now - 60:.0f},a,90,400"] + [f"{now + h * 3600:.0f},b,20,30" for h in (1, 2, 3)]
    csv_path.write_text("ts,region,price_usd_per_mwh,marginal_gco2_per_kwh\n" + "\n".join(rows) + "\n")
    sig, fc = tmp_path / "s.jsonl", tmp_path / "f.jsonl"
    base = ["signals", "--csv", str(csv_path), "--topology", str(topo), "--out", str(sig)]
    assert main(base) == 2
    assert "pass --forecasts-out FILE" in capsys.readouterr().err
    assert main([*base, "--forecasts-out", str(fc)]) == 0
    assert "1 signals, 1 forecasts (3 points after now)" in capsys.readouterr().err
    (forecast,) = [GridForecast.model_validate(orjson.loads(x)) for x in fc.read_bytes().splitlines()]
    assert forecast.region == "b"
    assert forecast.step_s == 3600
    assert len(forecast.points) == 3
    req = tmp_path / "r.jsonl"
    at = now + 2 * 3600 + 60
    req.write_text(f'{{"request_id":"r1","origin":"fe","latency_budget_ms":100,"energy_wh":1,"ts":{at}}}\n')
    placed = tmp_path / "p.jsonl"
    argv = ["score", "--topology", str(topo), "--signals", str(sig), "--requests", str(req)]
    assert main([*argv, "--out", str(placed)]) == 0
    assert orjson.loads(placed.read_bytes())["region"] == "a"  # no forecast: b has no value at all
    assert main([*argv, "--forecasts", str(fc), "--out", str(placed)]) == 0
    p = orjson.loads(placed.read_bytes())
    assert (p["region"], p["signal_source"], p["forecast_generated_at"]) == (
        "b",
        "forecast",
        forecast.generated_at,
    )


def test_the_two_outputs_of_signals_must_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--out and --forecasts-out naming one file is refused (one would overwrite the other)."""
    same = tmp_path / "x.jsonl"
    assert main(["signals", "--csv", str(SA), "--out", str(same), "--forecasts-out", str(same)]) == 2
    assert "name the same file" in capsys.readouterr().err
    assert not same.exists()
