"""``carbon-router explain`` (router/explain.py): every region's filter or score terms for one request, the
pick and the runner-up marked, consistent to the last bit with the decision itself."""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import pytest

from router.cli import main
from router.explain import Explanation, explain_request, format_explanation
from router.replay import ReplayOptions, replay
from tests.router.paper_scenario import bundled_inputs

ROOT = Path(__file__).resolve().parents[2]
TIE = ROOT / "docs" / "examples" / "tie"


def _args(request_id: str, **kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "topology": None,
        "signals": None,
        "requests": None,
        "statuses": None,
        "forecasts": None,
        "now": None,
        "alpha": 1.0,
        "no_duals": False,
        "request_id": request_id,
    }
    return argparse.Namespace(**{**base, **kw})


def _check(x: Explanation) -> None:
    """The lines agree with the placement: filters count as `removed`, the pick is the lowest feasible score
    (ties to the lower index) with its score bit for bit, the runner-up the next one."""
    p = x.placement
    assert Counter(line.filter for line in x.lines if line.filter) == Counter(p["removed"])
    feasible = [line for line in x.lines if line.filter is None]
    assert len(feasible) == p["feasible_regions"]
    if p["status"] == "rejected":
        assert not feasible
        return
    ranked = sorted(feasible, key=lambda line: line.score_usd)  # stable: index order breaks ties
    assert ranked[0].region == p["region"]
    assert ranked[0].score_usd == p["score_usd"]
    assert ranked[0].latency_ms == p["latency_ms"]
    assert ranked[0].energy_usd == p["energy_usd"]
    assert ranked[0].carbon_g == p["carbon_g"]
    assert p["terms"] is not None
    assert ranked[0].dual_usd == p["terms"]["dual_usd"]
    assert ranked[0].carbon_usd == p["terms"]["carbon_usd"]
    ru = p["runner_up"]
    if len(ranked) == 1:
        assert ru is None
    else:
        assert ru is not None
        assert (ranked[1].region, ranked[1].score_usd) == (ru["region"], ru["score_usd"])


def test_explanations_agree_with_the_decisions_on_the_bundled_data() -> None:
    """For every 1000th bundled request and every rejected one, the explanation's lines agree with the
    placement, and explaining changes no placement."""
    topo, sig, req = bundled_inputs()
    plain = replay(topo, sig, req, options=ReplayOptions(explain=True)).placements
    by_id = {p["request_id"]: p for p in plain}
    ids = [r.request_id for _, r in req[::1000]] + [
        p["request_id"] for p in plain if p["status"] == "rejected"
    ]
    assert len(ids) >= 9
    for rid in ids:
        x = explain_request(_args(rid))
        assert x.placement == by_id[rid]
        _check(x)


def test_a_rejected_request_names_a_filter_for_every_region(capsys: pytest.CaptureFixture[str]) -> None:
    """A rejected request: every region shows the filter that removed it, and the header the reason."""
    assert main(["explain", "--request-id", "req-001830"]) == 0
    out = capsys.readouterr().out
    assert "rejected: latency_budget" in out
    assert "PICK" not in out
    rows = [line for line in out.splitlines() if re.match(r"\S+\s.*\blatency_budget\s+(live|none)", line)]
    assert len(rows) == 13


def test_the_tie_example_of_the_readme_is_what_explain_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/examples/tie: two identical regions; the lower index is picked and the runner-up has the same
    score; the README shows exactly this output."""
    files = ["--topology", str(TIE / "topology.toml"), "--signals", str(TIE / "signals.jsonl")]
    assert main(["explain", *files, "--requests", str(TIE / "requests.jsonl"), "--request-id", "tie-1"]) == 0
    out = capsys.readouterr().out
    assert "placed in north-a (regional) at score 99.680; runner-up north-b at 99.680" in out
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert out.strip() in readme


def test_an_unknown_request_id_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """A request id that is not in the requests file: exit 2, naming the file, the field and the value."""
    assert main(["explain", "--request-id", "req-nope"]) == 2
    err = capsys.readouterr().err
    assert "sample_requests.jsonl" in err
    assert "'req-nope'" in err
    assert "request_id" in err


def test_what_if_options_explain_the_what_if_decision() -> None:
    """--alpha and --no-duals explain the decision `score` makes with the same options."""
    x = explain_request(_args("req-000005", alpha=0.5))
    _check(x)
    assert x.placement["status"] == "rejected" or x.placement["latency_ms"] is not None
    assert "score = energy" in format_explanation(x)
