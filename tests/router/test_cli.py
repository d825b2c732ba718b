"""The command line: deterministic score output; exit 2 with a precise message for every kind of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from router.cli import main
from router.commands import bundled
from router.models import Placement

TOPO = """
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
SIG = (
    '{"region":"a","ts":0,"price_usd_per_mwh":90,"marginal_gco2_per_kwh":400}\n'
    '{"region":"b","ts":0,"price_usd_per_mwh":20,"marginal_gco2_per_kwh":30}\n'
)
REQ = '{"request_id":"r1","origin":"fe","latency_budget_ms":100,"energy_wh":1.0,"ts":10}\n'


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "topology": tmp_path / "t.toml",
        "signals": tmp_path / "s.jsonl",
        "requests": tmp_path / "r.jsonl",
    }
    paths["topology"].write_text(TOPO)
    paths["signals"].write_text(SIG)
    paths["requests"].write_text(REQ)
    return paths


def _score(files: dict[str, Path], out: Path | None = None) -> list[str]:
    argv = [
        "score",
        "--topology",
        str(files["topology"]),
        "--signals",
        str(files["signals"]),
        "--requests",
        str(files["requests"]),
    ]
    if out is not None:
        argv += ["--out", str(out)]
    return argv


def test_score_writes_one_valid_placement_per_request(files: dict[str, Path], tmp_path: Path) -> None:
    """score writes contract-shaped placements; the cheap fresh region wins."""
    out = tmp_path / "p.jsonl"
    assert main(_score(files, out)) == 0
    (line,) = out.read_bytes().splitlines()
    p = Placement.model_validate(orjson.loads(line))
    assert p.region == "b"
    assert p.layer == "regional"
    assert p.status == "placed"


def test_score_on_bundled_data_is_byte_identical_across_runs(tmp_path: Path) -> None:
    """The same inputs give byte-identical output (the replay is deterministic, re-solves included)."""
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    args = [
        "--signals",
        str(bundled("sample_signals.jsonl")),
        "--requests",
        str(bundled("sample_requests.jsonl")),
    ]
    assert main(["score", *args, "--out", str(a)]) == 0
    assert main(["score", *args, "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_bytes().splitlines()) == len(bundled("sample_requests.jsonl").read_bytes().splitlines())


@pytest.mark.parametrize(
    ("which", "content", "needles"),
    [
        ("requests", REQ + "{not json\n", ["r.jsonl, line 2", "not valid JSON"]),
        ("requests", REQ + "[1, 2]\n", ["line 2", "not a JSON object"]),
        (
            "requests",
            '{"request_id":"r1","latency_budget_ms":100,"energy_wh":1,"ts":1}\n',
            ["line 1", "field 'origin'", "Field required", "expected the field to be present"],
        ),
        (
            "requests",
            REQ.replace('"energy_wh":1.0', '"energy_wh":-1.0'),
            ["line 1", "field 'energy_wh'", "received -1.0", "expected a number > 0"],
        ),
        (
            "requests",
            REQ.replace('"energy_wh":1.0', '"energy_wh":1e300'),
            ["field 'energy_wh'", "received 1e+300", "<= 1000000"],
        ),
        (
            "requests",
            REQ.replace('"latency_budget_ms":100', '"latency_budget_ms":0'),
            ["field 'latency_budget_ms'", "received 0"],
        ),
        (
            "requests",
            REQ.replace('"latency_budget_ms":100', '"latency_budget_ms":"100"'),
            ["field 'latency_budget_ms'", "received '100'"],
        ),
        (
            "requests",
            REQ.replace('"latency_budget_ms":100', '"latency_budget_ms":NaN'),
            ["line 1", "not valid JSON"],
        ),
        (
            "requests",
            REQ.replace('"fe"', '"fe-mars"'),
            [
                "line 1",
                "field 'origin'",
                "unknown origin",
                "received 'fe-mars'",
                "expected a service node id",
            ],
        ),
        ("requests", REQ.replace('"ts":10', '"ts":10,"state_region":"zz"'), ["field 'state_region'", "'zz'"]),
        ("requests", REQ.replace(',"ts":10', ""), ["field 'ts'", "required for an offline replay"]),
        (
            "signals",
            SIG + '{"region":"nowhere","ts":1,"price_usd_per_mwh":1}\n',
            ["s.jsonl, line 3", "field 'region'", "unknown region", "'nowhere'"],
        ),
        ("signals", '{"region":"a","ts":1}\n', ["line 1", "signal carries no value"]),
        ("signals", '{"region":"a","ts":1,"marginal_gco2_per_kwh":1e400}\n', ["line 1"]),
        ("topology", TOPO.replace("pue = 1.1", "pue = 0.5"), ["t.toml", "regions[2].pue", "received 0.5"]),
    ],
)
def test_bad_input_exits_2_with_a_message_naming_file_line_field_value(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], which: str, content: str, needles: list[str]
) -> None:
    """Malformed JSON, wrong types, NaN, negatives, unknown ids, a bad topology: exit 2, no traceback."""
    files[which].write_text(content)
    assert main(_score(files)) == 2
    err = capsys.readouterr().err
    assert err.startswith("carbon-router: error: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"


def test_missing_file_exits_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable requests file names the file and says what was expected."""
    files["requests"] = files["requests"].with_name("absent.jsonl")
    assert main(_score(files)) == 2
    assert "absent.jsonl: cannot read file" in capsys.readouterr().err


def test_bad_arguments_exit_2_via_the_console_script() -> None:
    """The installed command exits 2 on a bad --alphas value and prints usage, not a traceback."""
    exe = Path(sys.executable).with_name("carbon-router")
    r = subprocess.run(
        [str(exe), "frontier", "--alphas", "1,nan", "--out", "x"], capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "expected comma-separated finite numbers > 0" in r.stderr
    assert "Traceback" not in r.stderr


def test_frontier_writes_json_csv_png(files: dict[str, Path], tmp_path: Path) -> None:
    """frontier writes the three files; the JSON has one contract-shaped point per alpha, ERoL null first."""
    out = tmp_path / "f"
    argv = [
        "frontier",
        "--topology",
        str(files["topology"]),
        "--signals",
        str(files["signals"]),
        "--requests",
        str(files["requests"]),
        "--alphas",
        "0.1,1,2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    pts = orjson.loads((out / "frontier.json").read_bytes())
    assert [p["alpha"] for p in pts] == [0.1, 1.0, 2.0]
    keys = {
        "alpha",
        "total_energy_usd",
        "total_carbon_g",
        "baseline_energy_usd",
        "baseline_carbon_g",
        "rid_share",
        "relocated_share",
        "rejected_share",
        "layer_share",
        "erol_usd_per_ms",
        "crol_g_per_ms",
    }
    assert all(keys <= p.keys() for p in pts)
    assert pts[0]["erol_usd_per_ms"] is None
    assert pts[1]["erol_usd_per_ms"] is not None
    assert pts[0]["relocated_share"] == 0.0
    assert pts[0]["layer_share"]["local"] == 1.0  # 10 ms: home only
    assert pts[1]["relocated_share"] == 1.0
    assert pts[1]["rid_share"] == 1.0
    assert (out / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "frontier.csv").read_text().splitlines()[0].startswith("alpha,mean_budget_ms")


THREE_MISTAKES = TOPO.replace("pue = 1.1\n", "pue = 0.5\npeu = 1.1\n").replace(
    "capacity_kw = 10.0\n[[service", 'capacity_kw = "lots"\n[[service'
)


def test_a_topology_with_three_mistakes_reports_all_three(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every mistake of a topology is one line: file, 1-based field path, value, expectation, did-you-mean."""
    files["topology"].write_text(THREE_MISTAKES)
    assert main(["topology", "--topology", str(files["topology"])]) == 2
    err = capsys.readouterr().err
    head, *lines = err.splitlines()
    assert head == f"carbon-router: error: 3 problems in {files['topology']}:"
    assert len(lines) == 3
    assert all(line.startswith(f"  {files['topology']}, field 'regions[2].") for line in lines)
    assert "field 'regions[2].pue': Input should be greater than or equal to 1; received 0.5" in err
    assert (
        "field 'regions[2].peu': unknown key; received 1.1; expected a known key: did you mean 'pue'?" in err
    )
    assert "field 'regions[2].capacity_kw': Input should be a valid number; received 'lots'" in err


def test_every_bad_line_of_a_jsonl_file_is_reported_up_to_the_cap(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A requests file with 30 bad lines lists the first 20 problems by line and counts the other 10."""
    bad = REQ.replace('"energy_wh":1.0', '"energy_wh":-1.0')
    files["requests"].write_text(REQ + bad * 30)
    assert main(_score(files)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"carbon-router: error: 30 problems in {files['requests']}:"
    assert [int(x.split(", line ")[1].split(",")[0]) for x in err[1:21]] == list(range(2, 22))
    assert err[21] == "  ... and 10 more not shown (the first 20 are listed)"


@pytest.mark.parametrize(
    ("out", "needles"),
    [
        ("missing/dir/p.jsonl", ["the folder does not exist", "missing/dir'", "mkdir -p"]),
        (".", ["is a folder", "expected a file path"]),
    ],
)
def test_score_refuses_a_bad_out_path_before_any_work(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str, needles: list[str]
) -> None:
    """score --out into a missing folder or onto a folder: exit 2 naming the path (checked before the inputs
    are read, so a long replay never ends in it), no traceback, nothing made."""
    target = tmp_path / out
    files["requests"].write_text("{not json\n")
    before = sorted(tmp_path.rglob("*"))
    assert main(_score(files, target)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"carbon-router: error: --out {target}: ")
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_score_with_bad_input_leaves_the_previous_output_as_it_was(
    files: dict[str, Path], tmp_path: Path
) -> None:
    """A refused input never truncates or half-writes the --out file of an earlier run."""
    out = tmp_path / "p.jsonl"
    assert main(_score(files, out)) == 0
    good = out.read_bytes()
    files["requests"].write_text(REQ.replace('"fe"', '"fe-mars"'))
    assert main(_score(files, out)) == 2
    assert out.read_bytes() == good


def test_frontier_refuses_an_existing_file_as_its_folder(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """frontier --out onto an existing file: exit 2 saying a folder was expected; the file is untouched."""
    target = tmp_path / "existing.txt"
    target.write_text("keep me")
    argv = ["frontier", "--topology", str(files["topology"]), "--out", str(target)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--out {target}: is a file, not a folder" in err
    assert "Traceback" not in err
    assert target.read_text() == "keep me"


def test_version_comes_from_the_installed_package() -> None:
    """carbon-router --version prints the version of the installed distribution and exits 0."""
    from importlib.metadata import version

    exe = Path(sys.executable).with_name("carbon-router")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout.strip() == f"carbon-router {version('carbon-router')}"


def test_every_option_help_shows_its_default_or_says_required() -> None:
    """Each option's --help text ends in its default (the value itself when there is one) or (required)."""
    import argparse

    from router.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        fmt = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = fmt._get_help_string(action) or ""
            assert "(default" in text or "(required)" in text, f"{name} {action.dest}: {text!r}"
            if isinstance(action.default, float | int) and not isinstance(action.default, bool):
                assert f"(default: {action.default:g})" in text, text


def test_schema_lists_prints_and_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    """schema lists the messages, prints one (any case), and refuses a typo with exit 2 and did-you-mean."""
    assert main(["schema"]) == 0
    listed = capsys.readouterr().out
    assert [line.split()[0] for line in listed.splitlines()[:7]] == [
        "Request",
        "Placement",
        "DeadLetter",
        "GridSignal",
        "GridForecast",
        "RegionStatus",
        "SharesMessage",
    ]
    assert main(["schema", "placement"]) == 0
    schema = orjson.loads(capsys.readouterr().out)
    assert schema["title"] == "Placement"
    assert "request_id" in schema["required"]
    assert main(["schema", "Placment"]) == 2
    err = capsys.readouterr().err
    assert "unknown message name; received 'Placment'" in err
    assert "did you mean 'Placement'?" in err


def test_demo_refuses_a_bad_out_before_starting_the_live_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo --out onto a file exits 2 at once: the 30 s live run never starts only to fail at the end."""
    import types

    def never(rate: float, duration: float) -> int:
        raise AssertionError("the live run started")

    monkeypatch.setitem(sys.modules, "streams.demo", types.SimpleNamespace(run_demo=never))
    target = tmp_path / "f.txt"
    target.write_text("x")
    from streams.cli import main as carbon_router  # the installed script: demo is a streaming command

    assert carbon_router(["demo", "--out", str(target)]) == 2
    assert f"--out {target}: is a file, not a folder" in capsys.readouterr().err
    assert main(["demo", "--out", str(target)]) == 2  # the core alone does not run it, and says why
    assert "needs the streaming layer" in capsys.readouterr().err


def test_an_unusual_capacity_is_used_and_warned_about_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A capacity of 2e8 kW (200 GW: watts given as kW?) is valid, so `topology` succeeds, and stderr names
    the region, the value and the unit; the bundled topology prints no warning."""
    text = bundled("default_topology.toml").read_text(encoding="utf-8")
    first = text.index("capacity_kw = ")
    end = text.index("\n", first)
    path = tmp_path / "watts.toml"
    path.write_text(text[:first] + "capacity_kw = 2e8" + text[end:], encoding="utf-8")
    assert main(["topology", "--topology", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err
    assert "capacity_kw 2e+08 kW" in err
    assert "did you give watts" in err
    assert main(["topology"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_now_refuses_records_ahead_of_it_and_without_it_planning_is_allowed(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Offline there is no clock unless --now gives one (router/clock.py): a request dated a day after --now
    stops score with exit 2 naming file, line, field and the clock; without --now it is scored."""
    files["requests"].write_text(REQ.replace('"ts":10', '"ts":1800000000'))
    argv = ["score", *(x for k, v in files.items() for x in (f"--{k}", str(v)))]
    assert main([*argv, "--out", str(tmp_path / "p.jsonl")]) == 0
    assert main([*argv, "--now", "1799913600", "--out", str(tmp_path / "q.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "r.jsonl, line 1, field 'ts'" in err
    assert "ahead of the router's clock" in err
    assert not (tmp_path / "q.jsonl").exists()
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--now", "1.8e12"])
    assert exit_info.value.code == 2
    assert "expected epoch seconds (UTC) from 0 to 4102444800" in capsys.readouterr().err


@pytest.mark.parametrize("capacity", ["", "capacity_kw = inf\n", "capacity_kw = 1e12\n"])
def test_topology_prints_a_region_without_a_capacity_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], capacity: str
) -> None:
    """capacity_kw may be left out (no limit): `topology` prints "none" for it, it does not crash."""
    topo = tmp_path / "t.toml"
    topo.write_text(TOPO.replace("capacity_kw = 10.0\n", capacity, 1))
    assert main(["topology", "--topology", str(topo)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith("a "))
    assert ("1000000000000" if capacity.endswith("1e12\n") else " none ") in row
