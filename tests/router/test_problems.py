"""One problem type for every refused input: all pydantic errors, 1-based paths, JSON words, did-you-mean."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from pydantic import ValidationError

from router.errors import ConfigError, InputError
from router.models import GridForecast, Request, input_error_from_validation
from router.problems import MAX_SHOWN, Problem, field_path, problems_from_validation
from router.topology import Topology, default_topology_path


def _errors(model: Any, data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return info.value


def _topology(**changes: Any) -> dict[str, Any]:
    data = tomllib.loads(default_topology_path().read_text(encoding="utf-8"))
    for key, value in changes.items():
        data[key] = value
    return data


def test_render_names_source_line_field_value_and_expectation() -> None:
    """A problem renders as one line: file, line, field, problem, received value, expectation."""
    p = Problem("r.jsonl", 3, "energy_wh", "too small", -1.0, "a number > 0")
    assert p.render() == "r.jsonl, line 3, field 'energy_wh': too small; received -1.0; expected a number > 0"
    assert Problem("t.toml", None, None, "bad").render() == "t.toml: bad"


def test_long_values_are_cut_at_max_shown() -> None:
    """A huge received value is shown cut to MAX_SHOWN characters, ending in '...'."""
    text = Problem("f", None, "x", "bad", "y" * 10_000).render()
    shown = text.split("received ", 1)[1]
    assert len(shown) == MAX_SHOWN
    assert shown.endswith("...")


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("regions", 2, "pue"), "regions[3].pue"),
        (("points", 0), "points[1]"),
        (("rtt_ms", "fe-frankfurt", "aws:us-west-1"), "rtt_ms['fe-frankfurt']['aws:us-west-1']"),
        (("providers", "usd_per", "eur", "[key]"), "providers.usd_per.eur"),
        ((), None),
    ],
)
def test_field_paths_count_list_items_from_one(loc: tuple[Any, ...], path: str | None) -> None:
    """List indices are 1-based and ids that are not plain words are quoted."""
    assert field_path(loc) == path


def test_every_topology_mistake_is_a_problem_with_json_words_and_a_hint() -> None:
    """Four mistakes in a topology give four problems: 1-based paths, JSON type words, a did-you-mean."""
    data = _topology()
    data["regions"][2]["pue"] = 0.5
    data["regions"][0]["peu"] = 1.2
    data["regions"][4]["capacity_kw"] = "big"
    data["regions"][1]["tags"] = ["EU", 3]
    got = problems_from_validation(_errors(Topology, data), "t.toml", model=Topology)
    by_field = {p.field: p for p in got}
    assert set(by_field) == {
        "regions[1].peu",
        "regions[2].tags[2]",
        "regions[3].pue",
        "regions[5].capacity_kw",
    }
    assert by_field["regions[1].peu"].expected == "a known key: did you mean 'pue'?"
    assert by_field["regions[3].pue"].expected == "a number >= 1"
    assert by_field["regions[3].pue"].received == 0.5
    assert by_field["regions[5].capacity_kw"].expected == "a number"
    assert by_field["regions[2].tags[2]"].expected == "a string"
    assert all(p.source == "t.toml" and p.line is None for p in got)


def test_an_unknown_key_without_a_close_match_lists_the_known_ones() -> None:
    """An unknown [objective] key unlike any known one is answered with the list of known keys."""
    data = _topology(objective={"zzzzzz": 1})
    (p,) = problems_from_validation(_errors(Topology, data), "t.toml", model=Topology)
    assert p.field == "objective.zzzzzz"
    assert p.problem == "unknown key"
    assert p.expected is not None
    assert "carbon_usd_per_tonne" in p.expected


def test_list_and_object_types_are_named_in_json_words() -> None:
    """pydantic's tuple and dictionary are a list and an object to a user writing JSON or TOML."""
    req = {
        "request_id": "r",
        "origin": "o",
        "latency_budget_ms": 1,
        "energy_wh": 1,
        "allowed_jurisdictions": "EU",
    }
    (p,) = problems_from_validation(_errors(Request, req), "r.jsonl", 4)
    assert (p.line, p.field, p.expected) == (4, "allowed_jurisdictions", "a list")
    assert "tuple" not in p.problem
    assert "valid list" in p.problem
    (q,) = problems_from_validation(_errors(Topology, _topology(service_nodes=["fe"])), "t.toml")
    assert q.field == "service_nodes[1]"
    assert q.expected == "an object"
    assert "dictionary" not in q.problem


def test_failed_items_do_not_also_report_an_empty_list() -> None:
    """Bad forecast points are reported; pydantic's follow-on 'at least 1 item after validation' is not."""
    data = {
        "region": "a",
        "generated_at": 1,
        "step_s": 1,
        "points": [{"ts": 1}, {"ts": "x", "price_usd_per_mwh": 1}],
    }
    got = problems_from_validation(_errors(GridForecast, data), "f.jsonl", 1)
    assert [p.field for p in got] == ["points[1]", "points[2].ts"]
    assert got[0].problem.startswith("forecast point carries no value")  # 'Value error, ' is dropped


def test_input_error_carries_every_problem_and_renders_one_per_line() -> None:
    """from_problems keeps all problems, names the first in its single fields, and renders one per line."""
    probs = [Problem("t.toml", None, f"regions[{i}].pue", "bad", 0.5, "a number >= 1") for i in (1, 2, 3)]
    err = ConfigError.from_problems(probs, omitted=2)
    assert isinstance(err, ConfigError)
    assert err.problems == tuple(probs)
    assert (err.field, err.received, err.source) == ("regions[1].pue", 0.5, "t.toml")
    lines = err.render().splitlines()
    assert lines[0] == "5 problems in t.toml:"
    assert lines[1:4] == [f"  {p.render()}" for p in probs]
    assert "2 more not shown" in lines[4]
    assert str(err) == err.render()


def test_the_single_problem_constructor_still_works() -> None:
    """InputError(problem, source=..., ...) renders exactly as before: one line."""
    err = InputError("cannot read file", source="x.jsonl", received="No such file", expected="a file")
    assert err.render() == "x.jsonl: cannot read file; received 'No such file'; expected a file"
    assert len(err.problems) == 1
    assert err.omitted == 0


def test_models_helper_delegates_and_keeps_the_first_problem_in_front() -> None:
    """input_error_from_validation keeps every problem; its field is the first one's (the codec's)."""
    exc = _errors(Request, {"request_id": "", "origin": "o", "latency_budget_ms": 0, "energy_wh": 1})
    err = input_error_from_validation(exc, source="message")
    assert [p.field for p in err.problems] == ["request_id", "latency_budget_ms"]
    assert err.field == "request_id"
    assert err.expected == "a string of at least 1 character(s)"
