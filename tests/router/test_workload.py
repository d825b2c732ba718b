"""``carbon-router workload azure`` (router/workload.py): a real trace as request JSONL, by a documented and
seeded rule; bad rows exit 2 naming file, line, column, value and what was expected."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from router.cli import main
from router.commands import bundled
from router.models import Request
from router.topology import load_topology
from router.workload import (
    BATCH_SLACK_MS,
    BYTES_PER_TOKEN,
    INTERACTIVE_SLACK_MS,
    azure_requests,
    read_azure_trace,
    token_model,
)

SLICE = bundled("azure_llm_2023_slice.csv")


def _run(tmp_path: Path, *extra: str) -> list[dict[str, object]]:
    out = tmp_path / "r.jsonl"
    assert main(["workload", "azure", "--csv", str(SLICE), "--out", str(out), *extra]) == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_the_slice_becomes_valid_requests_by_the_documented_rule(tmp_path: Path) -> None:
    """One valid Request per row, in order: ts shifted to start at the bundled T0 with the trace's gaps,
    energy and time from the model's per-input and per-output token values, the budget = compute + the
    class's allowance, payload = 4 bytes per input token."""
    reqs = _run(tmp_path)
    rows = read_azure_trace(SLICE)
    model = token_model(load_topology(), None, "test")
    assert model.id == "llama2-70b"
    assert len(reqs) == len(rows) == 400
    assert reqs[0]["ts"] == 1776038400.0
    for r, row in zip(reqs, rows, strict=True):
        Request.model_validate(r)
        assert r["ts"] == pytest.approx(1776038400.0 + row.offset_s, abs=1e-6)
        assert r["energy_wh"] == pytest.approx(
            row.input_tokens * model.wh_per_input_token + row.output_tokens * model.wh_per_output_token  # type: ignore[operator]
        )
        compute = row.input_tokens * model.ms_per_input_token + row.output_tokens * model.ms_per_output_token  # type: ignore[operator]
        assert r["compute_ms"] == pytest.approx(compute, abs=1e-3)
        slack = r["latency_budget_ms"] - r["compute_ms"]  # type: ignore[operator]
        assert INTERACTIVE_SLACK_MS[0] - 1e-3 <= slack <= BATCH_SLACK_MS[1] + 1e-3
        assert r["payload_bytes"] == BYTES_PER_TOKEN * row.input_tokens
    assert [r["ts"] for r in reqs] == sorted(r["ts"] for r in reqs)  # type: ignore[type-var]


def test_the_rule_is_seeded(tmp_path: Path) -> None:
    """The same seed gives the same bytes; another seed other origins and budgets, the same energy."""
    a, b, c = _run(tmp_path), _run(tmp_path), _run(tmp_path, "--seed", "7")
    assert a == b
    assert [r["origin"] for r in a] != [r["origin"] for r in c]
    assert [r["energy_wh"] for r in a] == [r["energy_wh"] for r in c]


def test_origins_and_classes_cover_the_topology() -> None:
    """Every service node gets requests, and both classes occur in about the documented shares."""
    topo = load_topology()
    reqs = azure_requests(read_azure_trace(SLICE), topo, token_model(topo, None, "t"), seed=0, start=0.0)
    assert {r["origin"] for r in reqs} == {s.id for s in topo.service_nodes}
    interactive = sum(r["latency_budget_ms"] - r["compute_ms"] <= INTERACTIVE_SLACK_MS[1] for r in reqs)
    assert 0.7 < interactive / len(reqs) < 0.9


@pytest.mark.parametrize(
    ("row", "column", "expected"),
    [
        ("2023-11-16 18:15:46.68,abc,44", "ContextTokens", "a whole number from 0 to 10000000"),
        ("2023-11-16 18:15:46.68,374,-3", "GeneratedTokens", "a whole number"),
        ("16/11/2023 18:15,374,44", "TIMESTAMP", "YYYY-MM-DD HH:MM:SS"),
        ("2023-11-16 18:15:40.0,374,44", "TIMESTAMP", "rows in time order"),
        ("2023-11-16 18:15:46.68,0,0", "GeneratedTokens", "at least one token"),
    ],
)
def test_a_bad_row_exits_2_naming_file_line_column_value_and_expectation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, column: str, expected: str
) -> None:
    """A bad cell stops the command with exit 2 and one line naming everything a user needs to fix it."""
    bad = tmp_path / "bad.csv"
    bad.write_text(f"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:45.0,10,10\n{row}\n")
    assert main(["workload", "azure", "--csv", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 3, field '{column}'" in err
    assert row.split(",")[["TIMESTAMP", "ContextTokens", "GeneratedTokens"].index(column)] in err
    assert expected in err


def test_a_missing_column_and_an_unusable_model_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A header without the trace's columns, or a model without per-token values: exit 2, saying which."""
    bad = tmp_path / "bad.csv"
    bad.write_text("time,in,out\n1,2,3\n")
    assert main(["workload", "azure", "--csv", str(bad)]) == 2
    assert "missing column(s) ['TIMESTAMP', 'ContextTokens', 'GeneratedTokens']" in capsys.readouterr().err
    assert main(["workload", "azure", "--csv", str(SLICE), "--model", "llm-8b"]) == 2
    assert "llama2-70b" in capsys.readouterr().err


def test_every_bad_row_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Three bad rows: one error listing the three, not one per run."""
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\nx,1,1\n"
        "2023-11-16 18:15:45.0,y,1\n2023-11-16 18:15:46.0,1,z\n"
    )
    assert main(["workload", "azure", "--csv", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "3 problems in" in err
    assert all(f"line {n}" in err for n in (2, 3, 4))
