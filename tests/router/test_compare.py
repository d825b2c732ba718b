"""``carbon-router compare`` (router/compare.py): every policy's line equals an independent computation over
the same mask, on the bundled data and on the bundled slice of the real Azure trace."""

from __future__ import annotations

import csv
import math
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.cli import main
from router.commands import bundled
from router.compare import CSV_FIELDS, POLICY_RUNS, compare_policies
from router.io import read_jsonl
from router.models import GridSignal, Request
from router.replay import ReplayOptions, replay
from router.topology import Topology, load_topology
from router.workload import azure_requests, read_azure_trace, token_model
from tests.router.paper_scenario import Requests, Signals, bundled_inputs
from tests.router.reference import NaiveRouter


def _reference(topo: Topology, sig: Signals, req: Requests, policy: str) -> list[dict[str, Any]]:
    """The naive reference router (its own mask, its own capacity windows) over the inputs in event time."""
    ref = NaiveRouter(topo)
    events = sorted(((s.ts, k, s) for k, (_, s) in enumerate(sig)), key=lambda e: (e[0], e[1]))
    k = 0
    out = []
    for _, _, r in sorted(((r.ts or 0.0, k, r) for k, (_, r) in enumerate(req)), key=lambda e: (e[0], e[1])):
        while k < len(events) and events[k][0] <= (r.ts or 0.0):
            ref.apply_signal(events[k][2])
            k += 1
        out.append(ref.decide(r, r.ts or 0.0, explain=True, policy=policy))
    return out


def _row(placements: list[dict[str, Any]]) -> dict[str, Any]:
    """compare.json's fields, in a few lines of plain Python: fixed-point sums, nearest-rank quantiles."""
    placed = [p for p in placements if p["status"] == "placed"]

    def nano(xs: list[float]) -> int:
        return sum(round(x * 1e9) for x in xs)

    lat = sorted(p["latency_ms"] for p in placed)
    energy = nano([p["energy_wh"] for p in placements])
    layers = {
        k: nano([p["energy_wh"] for p in placed if p["layer"] == k]) for k in ("local", "regional", "energy")
    }
    return {
        "requests": len(placements),
        "placed": len(placed),
        "rejected": len(placements) - len(placed),
        "energy_usd": nano([p["energy_usd"] for p in placed]) / 1e9,
        "carbon_g": sum(round(p["carbon_g"] * 1e6) for p in placed) / 1e6,
        "egress_usd": nano([p["egress_usd"] for p in placed]) / 1e9,
        "objective_usd": (
            nano([p["score_usd"] for p in placed]) - nano([p["terms"]["dual_usd"] for p in placed])
        )
        / 1e9,
        "latency_ms_p50": lat[math.ceil(0.5 * len(lat)) - 1],
        "latency_ms_p99": lat[math.ceil(0.99 * len(lat)) - 1],
        "relocated_share": nano([p["energy_wh"] for p in placed if p["region"] != p["home_region"]]) / energy,
        "layers": {k: v / sum(layers.values()) for k, v in layers.items()},
    }


@cache
def _slice_inputs() -> tuple[Topology, Signals, Requests]:
    """The bundled topology and signals with the requests the bundled Azure trace slice becomes."""
    topo = load_topology()
    rows = read_azure_trace(bundled("azure_llm_2023_slice.csv"))
    reqs = azure_requests(rows, topo, token_model(topo, None, "test"), seed=0, start=1776038400.0)
    sig = read_jsonl(bundled("sample_signals.jsonl"), GridSignal)
    return topo, sig, [(k + 1, Request.model_validate(r)) for k, r in enumerate(reqs)]


INPUTS = {"bundled": bundled_inputs, "azure_slice": _slice_inputs}


@cache
def _compared(name: str) -> dict[str, dict[str, Any]]:
    topo, sig, req = INPUTS[name]()
    return {r["policy"]: r for r in compare_policies(topo, sig, req)}


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize(
    "policy", ["all_local", "nearest", "cheapest_energy", "lowest_carbon", "score_no_duals"]
)
def test_each_policy_equals_an_independent_computation(name: str, policy: str) -> None:
    """The policy's compare.json line equals, field for field and exactly, the naive reference router run
    under the same rule over the same inputs, summed in plain Python."""
    topo, sig, req = INPUTS[name]()
    want = _row(_reference(topo, sig, req, POLICY_RUNS[policy][0]))
    got = _compared(name)[policy]
    assert {k: got[k] for k in want} == want


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_score_is_what_score_places(name: str) -> None:
    """The `score` line is the totals of the placements `carbon-router score` writes for the same inputs
    (here no capacity binds, so no re-solve runs and it equals `score_no_duals` too)."""
    topo, sig, req = INPUTS[name]()
    res = replay(topo, sig, req, options=ReplayOptions(explain=True))
    assert res.resolves == []
    got = _compared(name)
    want = _row(res.placements)  # type: ignore[arg-type]
    assert {k: got["score"][k] for k in want} == want
    assert {k: v for k, v in got["score"].items() if k != "policy"} == {
        k: v for k, v in got["score_no_duals"].items() if k != "policy"
    }


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_with_capacity_slack_score_has_the_lowest_objective(name: str) -> None:
    """With capacity slack, `score`'s objective_usd is never above that of any policy that places the same
    requests (each request's pick minimises its score; rounding each to the nano-USD keeps the order)."""
    rows = _compared(name)
    same = [r for r in rows.values() if r["placed"] == rows["score"]["placed"]]
    assert len(same) >= 4
    for r in same:
        assert rows["score"]["objective_usd"] <= r["objective_usd"], r["policy"]
    assert rows["all_local"]["relocated_share"] == 0.0


def test_compare_writes_its_three_files_and_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """compare --out DIR writes compare.json (the six policies in order, saying which carbon), compare.csv
    (one row each) and compare.png, and prints the table and the paths."""
    sig = tmp_path / "signals.jsonl"
    sig.write_bytes(
        bundled("sample_signals.jsonl").read_bytes() + bundled("average_signals.jsonl").read_bytes()
    )
    assert main(["compare", "--signals", str(sig), "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    doc = orjson.loads((tmp_path / "c" / "compare.json").read_bytes())
    assert [r["policy"] for r in doc["policies"]] == list(POLICY_RUNS)
    assert doc["carbon_accounting"].startswith("marginal")
    assert doc["average_accounting"].startswith("average")
    assert all(r["average_carbon_g"] is not None and r["average_unvalued"] == 0 for r in doc["policies"])
    with (tmp_path / "c" / "compare.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["policy"] for r in rows] == list(POLICY_RUNS)
    assert list(rows[0]) == list(CSV_FIELDS)
    assert (tmp_path / "c" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert "lowest_carbon" in out
    assert "avg. kg" in out
    assert str(tmp_path / "c" / "compare.json") in out


def test_average_totals_are_null_without_average_values() -> None:
    """Without average values in the signals, every average total is null, never zero."""
    rows = _compared("bundled")
    assert all(r["average_carbon_g"] is None for r in rows.values())


def test_compare_needs_an_output_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """--out is required (argparse exits 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["compare"])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err
