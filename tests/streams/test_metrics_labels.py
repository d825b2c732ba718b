"""Metric labels come only from fixed sets: 3,000 distinct bad fields make no new series."""

from __future__ import annotations

import re

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
