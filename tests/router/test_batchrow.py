"""The batch decoder (router.batchrow) against the per-record fast path it stands in for
(router.fastrow.fast_request_row, then Plan.arrays)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.batchrow import BatchRows, batch_rows
from router.bounds import MAX_ENERGY_WH, MAX_ID_LEN, MAX_MS, MAX_PAYLOAD_BYTES, MAX_TOKENS, MAX_TS
from router.commands import bundled
from router.fastrow import fast_request_row
from router.plan import Plan
from router.tenants import Tenant
from router.topology import load_topology
from tests.router.test_fastrow import BASE  # the plainly valid request both decoders start from

TOPO = load_topology(bundled("default_topology.toml")).model_copy(
    update={"tenants": (Tenant(id="acme", carbon_budget_g=5.0), Tenant(id="beta", carbon_budget_g=1.0))}
)
PLAN = Plan(TOPO)
SAMPLES: list[dict[str, Any]] = [
    orjson.loads(x) for x in bundled("sample_requests.jsonl").read_bytes().splitlines()[:200] if x.strip()
]
#: a change that removes the key
DROP = object()


def assert_same_as_fast(
    objs: list[Any], arrival: list[float], latest_ts: float = MAX_TS, allow_extra: bool = False
) -> BatchRows:
    """The batch decoder accepts exactly the records the fast path accepts, and its columns equal
    ``Plan.arrays`` of the fast rows byte for byte."""
    got = batch_rows(PLAN, objs, arrival, latest_ts, allow_extra)
    fast = [fast_request_row(PLAN, o, a, latest_ts, allow_extra) for o, a in zip(objs, arrival, strict=True)]
    accepted = [k for k, x in enumerate(fast) if x is not None]
    assert got.accepted() == accepted, [objs[k] for k in set(got.accepted()) ^ set(accepted)][:3]
    assert got.declined == [k for k, x in enumerate(fast) if x is None]
    rows = [x for x in fast if x is not None]
    want = PLAN.arrays([r[0] for r in rows], [r[1] for r in rows])
    mine = got.arrays()
    for name in ("f", "i", "allow"):
        a, b = getattr(mine, name), getattr(want, name)
        assert (a.dtype, a.shape, a.flags.c_contiguous) == (b.dtype, b.shape, True), name
        assert a.tobytes() == b.tobytes(), name
    for name in ("ids", "origins", "tenants", "sessions"):
        assert getattr(mine, name) == getattr(want, name), name
    return got


def test_every_bundled_request_is_accepted_with_the_fast_rows() -> None:
    """All 4,000 bundled sample requests, as one batch: every one accepted, the columns of the fast rows."""
    objs = [orjson.loads(x) for x in bundled("sample_requests.jsonl").read_bytes().splitlines() if x.strip()]
    got = assert_same_as_fast(objs, [0.0] * len(objs))
    assert got.declined == []


def test_each_rule_of_the_fast_path_holds_in_a_batch() -> None:
    """One batch of single-field changes at and past each bound, of wrong types (a bool is not a number),
    unknown ids and keys, derived and given energy, tenants and sessions: the same accepted set and rows."""
    changes: list[dict[str, Any]] = [
        {},
        {"latency_budget_ms": True},
        {"latency_budget_ms": MAX_MS},
        {"latency_budget_ms": math.nextafter(MAX_MS, math.inf)},
        {"latency_budget_ms": 0},
        {"latency_budget_ms": 5},
        {"tokens": True},
        {"tokens": 1.0},
        {"tokens": MAX_TOKENS},
        {"tokens": MAX_TOKENS + 1},
        {"tokens": DROP},
        {"tokens": DROP, "energy_wh": 1},
        {"model": DROP},
        {"model": DROP, "energy_wh": 2.5},
        {"model": "no-such-model"},
        {"model": ["llm-8b"]},
        {"origin": "nowhere"},
        {"origin": None},
        {"request_id": ""},
        {"request_id": "x" * MAX_ID_LEN},
        {"request_id": "x" * (MAX_ID_LEN + 1)},
        {"energy_wh": MAX_ENERGY_WH},
        {"energy_wh": math.nextafter(MAX_ENERGY_WH, math.inf)},
        {"energy_wh": 0.0},
        {"energy_wh": 1e-12},
        {"energy_wh": math.nan},
        {"tokens": MAX_TOKENS, "model": "llm-70b"},  # derived energy past the bound
        {"compute_ms": 0},
        {"compute_ms": -0.0},
        {"compute_ms": -1.0},
        {"compute_ms": None},
        {"payload_bytes": MAX_PAYLOAD_BYTES},
        {"payload_bytes": MAX_PAYLOAD_BYTES + 1},
        {"payload_bytes": None},
        {"payload_bytes": 2**64 - 1},
        {"payload_bytes": 10**400},
        {"state_bytes": -1},
        {"state_region": "aws:eu-south-1", "state_pinned": True, "state_bytes": 10},
        {"state_pinned": True},
        {"state_pinned": 1},
        {"state_pinned": None},
        {"state_region": "nowhere"},
        {"allowed_jurisdictions": ["EU", "se"]},
        {"allowed_jurisdictions": []},
        {"allowed_jurisdictions": "EU"},
        {"allowed_jurisdictions": [""]},
        {"allowed_jurisdictions": ["EU", 3]},
        {"allowed_jurisdictions": ["x" * 65]},
        {"allowed_jurisdictions": ["EU"] * 513},
        {"ts": -0.0},
        {"ts": -1.0},
        {"ts": MAX_TS},
        {"ts": 1_700_000_123},
        {"ts": math.nextafter(MAX_TS, math.inf)},
        {"ts": True},
        {"tenant": "acme"},
        {"tenant": "beta", "session_id": "conv-1"},
        {"tenant": ""},
        {"tenant": 5},
        {"tenant": "t" * (MAX_ID_LEN + 1)},
        {"session_id": ""},
        {"session_id": 7},
        {"extra": 1},
    ]
    objs = [{k: v for k, v in {**BASE, **c}.items() if v is not DROP} for c in changes]
    objs += [None, 3, "request", [BASE], {}]
    got = assert_same_as_fast(objs, [1_700_000_000.0] * len(objs))
    assert 20 < len(got.accepted()) < len(objs) - 20
    assert_same_as_fast(objs, [1_700_000_000.0] * len(objs), allow_extra=True)
    assert_same_as_fast(objs, [1_700_000_000.0] * len(objs), latest_ts=1_700_000_100.0)


def test_an_empty_batch_has_no_rows() -> None:
    """No records: no rows, nothing declined, empty kernel columns of the right shapes."""
    got = assert_same_as_fast([], [])
    assert got.arrays().f.shape == (0, 6)


def test_a_declined_record_accepted_by_the_per_record_path_joins_the_batch_in_order() -> None:
    """``put`` places a row the per-record path built among the batch's rows, in input order."""
    objs = [{**BASE, "request_id": f"r{k}"} for k in range(4)]
    objs[2]["tokens"] = True  # declined
    got = batch_rows(PLAN, objs, [0.0] * 4)
    assert got.declined == [2]
    fixed = fast_request_row(PLAN, {**objs[2], "tokens": 3}, 0.0)
    assert fixed is not None
    got.put(2, *fixed)
    rows = [fast_request_row(PLAN, o, 0.0) for o in [*objs[:2], {**objs[2], "tokens": 3}, objs[3]]]
    want = PLAN.arrays([r[0] for r in rows if r], [r[1] for r in rows if r])
    mine = got.arrays()
    assert got.declined == []
    assert mine.ids == ("r0", "r1", "r2", "r3")
    assert (mine.f.tobytes(), mine.i.tobytes()) == (want.f.tobytes(), want.i.tobytes())


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.integers(-3, 3),
    st.floats(),
    st.sampled_from([0.0, -0.0, MAX_MS, MAX_TS, MAX_ENERGY_WH, MAX_TOKENS, 1e-300, DROP, DROP]),
    st.text(max_size=3),
    st.sampled_from(["fe-frankfurt", "fe-tokyo", "llm-8b", "llm-70b", "aws:eu-south-1", "acme", "beta"]),
    st.lists(st.sampled_from(["EU", "SE", "", "US", "de", 3]), max_size=3),
)
#: per field: values at and past its bounds, of the wrong type, absent
_FIELD_VALUES: dict[str, list[Any]] = {
    "request_id": ["r-2", "", "x" * MAX_ID_LEN, "x" * (MAX_ID_LEN + 1), 5, None],
    "origin": ["fe-tokyo", "nowhere", "", None, ["fe-tokyo"]],
    "latency_budget_ms": [1, 0, 0.0, -0.0, MAX_MS, math.nextafter(MAX_MS, math.inf), True, "5", None],
    "energy_wh": [1, 0.5, 0, MAX_ENERGY_WH, math.nextafter(MAX_ENERGY_WH, math.inf), False, DROP, None],
    "tokens": [1, 0, MAX_TOKENS, MAX_TOKENS + 1, 2**63, 2**64 - 1, 3.0, True, DROP, None],
    "model": ["llm-8b", "llm-70b", "llama2-70b", "other", DROP, None, 1],
    "compute_ms": [0, 0.0, -0.0, -1, 12.5, MAX_MS, 1e10, True, DROP, None],
    "payload_bytes": [0, 1, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1, -1, 1.0, True, None, DROP],
    "state_region": ["aws:eu-south-1", "aws:eu-central-1", "nowhere", None, DROP, 0],
    "state_bytes": [0, 10, 2**44, 2**44 + 1, -1, False, None, DROP],
    "state_pinned": [True, False, 1, 0, None, DROP],
    "allowed_jurisdictions": [
        ["EU"],
        ["se", "US"],
        [],
        [""],
        ["x" * 64],
        ["x" * 65],
        ["EU"] * 512,
        ["EU"] * 513,
        "EU",
        ("EU",),
        None,
        DROP,
    ],
    "tenant": ["acme", "beta", "other", "", "t" * MAX_ID_LEN, "t" * (MAX_ID_LEN + 1), 1, None, DROP],
    "session_id": ["conv-1", "", "s" * MAX_ID_LEN, "s" * (MAX_ID_LEN + 1), 7, None, DROP],
    "ts": [0, 0.0, -0.0, -1e-9, 1_776_038_404, MAX_TS, math.nextafter(MAX_TS, math.inf), True, None, DROP],
    "extra": [1, None],
}


def test_every_single_field_change_is_judged_as_the_fast_path_judges_it() -> None:
    """Every value of ``_FIELD_VALUES`` (at and past each bound, of a wrong type, absent) alone over valid
    requests with and without tokens, model, tenant and ts, in one batch: the same accepted set and rows."""
    bases = [BASE, {**BASE, "tenant": "acme", "ts": 5.0}, *SAMPLES[:6]]
    objs = [
        {k: v for k, v in {**b, key: value}.items() if v is not DROP}
        for b in bases
        for key, values in _FIELD_VALUES.items()
        for value in values
    ]
    got = assert_same_as_fast(objs, [1_700_000_000.0] * len(objs))
    assert 100 < len(got.accepted()) < len(objs) - 100
    assert_same_as_fast(objs, [1_700_000_000.0] * len(objs), latest_ts=1_776_038_404.0, allow_extra=True)


_change = st.sampled_from(sorted(_FIELD_VALUES)).flatmap(
    lambda k: st.tuples(st.just(k), st.one_of(st.sampled_from(_FIELD_VALUES[k]), _values))
)
_changes = st.lists(_change, max_size=4).map(dict)
_record = st.one_of(
    st.tuples(st.sampled_from(range(len(SAMPLES))), _changes).map(
        lambda x: {k: v for k, v in {**SAMPLES[x[0]], **x[1]}.items() if v is not DROP}
    ),
    _changes.map(lambda c: {k: v for k, v in {**BASE, **c}.items() if v is not DROP}),
    _values.filter(lambda v: v is not DROP),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(_record, st.sampled_from([0.0, 1.5, 1_776_038_404.0, 5e9])), max_size=40),
    st.sampled_from([MAX_TS, 1_776_038_404.0, 0.0]),
    st.booleans(),
)
def test_random_batches_are_decoded_as_record_by_record(
    batch: list[tuple[Any, float]], latest_ts: float, allow_extra: bool
) -> None:
    """Random batches mixing valid and invalid records: the batch decoder accepts where the fast path
    does and builds the same columns, byte for byte."""
    assert_same_as_fast([o for o, _ in batch], [a for _, a in batch], latest_ts, allow_extra)


def test_the_arrival_time_stands_in_for_a_missing_ts_only() -> None:
    """A record without ``ts`` is at its arrival time; one with ``ts`` at its own."""
    objs = [BASE, {**BASE, "ts": 7.0}]
    got = assert_same_as_fast(objs, [3.0, 4.0])
    assert got.arrays().f[:, 0].tolist() == [3.0, 7.0]
    assert np.array_equal(batch_rows(PLAN, objs, 9.0).arrays().f[:, 0], [9.0, 7.0])
