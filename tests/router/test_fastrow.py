"""The hot-path decoder (router.fastrow) against the full pydantic path it stands in for."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from router.commands import bundled
from router.errors import InputError
from router.fastrow import fast_request_row
from router.kernel.columns import REQ_I_COLS
from router.models import Request
from router.plan import Plan
from router.topology import load_topology

PLAN = Plan(load_topology(bundled("default_topology.toml")))
ARRIVAL = 1_700_000_000.0


def full_path(obj: object) -> tuple[Request, tuple[list[float], list[int]]] | None:
    """What streams.codec.decode_checked_request does after orjson: pydantic, then the plan's row."""
    try:
        req = Request.model_validate(obj)
        return req, PLAN.request_row(req, ts=ARRIVAL if req.ts is None else req.ts, source="message")
    except (ValidationError, InputError):
        return None


def assert_same(obj: object) -> bool:
    """The fast path either declines or builds exactly the full path's row; returns whether it accepted."""
    fast = fast_request_row(PLAN, obj, ARRIVAL)
    if fast is None:
        return False
    full = full_path(obj)
    assert full is not None, f"fast path accepted what the full path refuses: {obj!r}"
    fields, row = fast
    req, want = full
    assert (fields.request_id, fields.origin) == (req.request_id, req.origin)
    assert (fields.tenant, fields.session_id) == (req.tenant, req.session_id)
    assert [float(x) for x in row[0]] == want[0]
    assert row[1] == want[1]
    assert [type(x) for x in row[1]] == [int] * (REQ_I_COLS + PLAN.n_words)
    return True


def test_every_bundled_request_takes_the_fast_path_with_the_same_row() -> None:
    """All 4,000 bundled sample requests are accepted by the fast path and get the full path's row."""
    lines = [x for x in bundled("sample_requests.jsonl").read_bytes().splitlines() if x.strip()]
    assert len(lines) == 4000
    assert all(assert_same(orjson.loads(x)) for x in lines)


BASE: dict[str, Any] = {
    "request_id": "r-1",
    "origin": "fe-frankfurt",
    "latency_budget_ms": 200.0,
    "tokens": 300,
    "model": "llm-8b",
}


@pytest.mark.parametrize(
    "change",
    [
        {"latency_budget_ms": True},
        {"latency_budget_ms": "200"},
        {"latency_budget_ms": 0},
        {"latency_budget_ms": 1e9 + 1},
        {"tokens": 1.0},
        {"tokens": True},
        {"tokens": 10**8},
        {"model": "no-such-model"},
        {"origin": "nowhere"},
        {"origin": ""},
        {"request_id": "x" * 257},
        {"state_pinned": True},
        {"state_pinned": 1},
        {"state_region": "nowhere"},
        {"payload_bytes": -1},
        {"payload_bytes": 1.5},
        {"allowed_jurisdictions": "EU"},
        {"allowed_jurisdictions": [""]},
        {"ts": -1.0},
        {"tenant": 5},
        {"session_id": ""},
        {"session_id": 7},
        {"session_id": "s" * 257},
        {"energy_wh": 2e6, "tokens": None},
    ],
)
def test_fast_path_declines_what_the_full_path_refuses(change: dict[str, Any]) -> None:
    """Each single bad field makes the fast path decline (the full path then names the field)."""
    obj = {**BASE, **change}
    assert full_path(obj) is None
    assert fast_request_row(PLAN, obj, ARRIVAL) is None


def test_fast_path_accepts_ints_for_floats_and_the_defaults() -> None:
    """Integer JSON numbers in float fields, absent optionals and allowed lists are accepted like pydantic."""
    assert assert_same({**BASE, "latency_budget_ms": 200, "ts": 1_700_000_123})
    assert assert_same({**BASE, "allowed_jurisdictions": ["EU", "SE"], "state_region": "aws:eu-south-1"})
    assert assert_same({**BASE, "energy_wh": 1, "tokens": None, "model": None, "compute_ms": 0})
    assert assert_same({**BASE, "tenant": "acme", "session_id": "conv-1"})


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.sampled_from(["fe-frankfurt", "llm-8b", "aws:eu-south-1", "EU", "DE"]),
    st.lists(st.sampled_from(["EU", "SE", "", "US", 3]), max_size=3),
)
_keys = st.sampled_from(
    [
        "request_id",
        "origin",
        "latency_budget_ms",
        "energy_wh",
        "tokens",
        "model",
        "compute_ms",
        "payload_bytes",
        "state_region",
        "state_bytes",
        "state_pinned",
        "allowed_jurisdictions",
        "tenant",
        "session_id",
        "ts",
        "extra",
    ]
)


@pytest.mark.slow  # ~6 s: 3000 random changes
@settings(max_examples=3000, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=8))
def test_random_changes_never_make_the_paths_disagree(change: dict[str, Any]) -> None:
    """Random field values over a valid request: the fast path never accepts a refused one or differs."""
    assert_same({**BASE, **change})
