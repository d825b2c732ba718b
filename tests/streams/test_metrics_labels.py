"""Metric labels come only from fixed sets: 3,000 distinct bad fields make no new series."""

from __future__ import annotations

import re

import orjson

from router.problems import Problem
from streams.codec import decode_request
from streams.metrics import FIELD_LABELS, Metrics, field_label


def _dead_letter_series(m: Metrics) -> int:
    return len(re.findall(r"^carbon_router_dead_letters_total\{", m.exposition().decode(), flags=re.M))


def test_distinct_bad_list_elements_share_one_label() -> None:
    """Dead letters naming 3,000 distinct list elements and unknown fields count, under bounded labels."""
    m = Metrics("w-unit")
    for k in range(3000):
        m.record_dead_letter("inference.requests", f"allowed_jurisdictions[{k}]")
        m.record_dead_letter("inference.requests", f"x-{k}")
    assert _dead_letter_series(m) == 2  # allowed_jurisdictions and other
    total = re.findall(r"^carbon_router_dead_letters_total\{[^}]*\} (\S+)$", m.exposition().decode(), re.M)
    assert sum(float(v) for v in total) == 6000
    assert field_label("points[3].ts") == "points"
    assert field_label(None) == ""
    assert field_label("allowed_jurisdiction") == "other"
    assert "allowed_jurisdictions" in FIELD_LABELS


def test_an_unknown_key_that_is_not_a_plain_word_is_counted_as_other() -> None:
    """A dead letter names an unknown key that is not a plain word quoted (``['x-1']``, router.problems);
    it is counted under ``other`` like any unknown key, not under "" (the whole message at fault)."""
    request = {"request_id": "r", "origin": "o", "latency_budget_ms": 1.0, "energy_wh": 1.0, "x-1": 1}
    got = decode_request(orjson.dumps(request), 65536)
    assert isinstance(got, Problem)
    assert got.field == "['x-1']"
    assert field_label(got.field) == "other"
    assert field_label("['aws:eu-central-1'].pue") == "other"
