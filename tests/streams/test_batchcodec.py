"""A batch of request records decoded at once (streams.batchcodec) against record by record
(streams.codec.decode_checked_request), and the decider's batch rules (Decider.decide_columns)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

import streams.batchcodec
from router.decider import Decider
from router.fastrow import fast_request_row
from router.models import GridSignal
from router.plan import RequestArrays
from router.problems import Problem
from streams.batchcodec import decode_checked_batch
from streams.codec import Clock, decode_checked_request
from tests.router.test_batchrow import _FIELD_VALUES, BASE, DROP, PLAN, SAMPLES, TOPO

MAX_BYTES = 2048
NOW = 1_776_038_404.0


def per_record(
    raws: list[bytes | None], arrivals: list[float], clock: Clock | None, allow_extra: bool
) -> tuple[list[int], list[tuple[int, Problem]], RequestArrays]:
    """What the data plane did before the batch decoder: ``decode_checked_request`` record by record."""
    kept: list[int] = []
    problems: list[tuple[int, Problem]] = []
    reqs, rows = [], []
    for k, (raw, arrival) in enumerate(zip(raws, arrivals, strict=True)):
        got = decode_checked_request(raw, PLAN, MAX_BYTES, arrival, clock=clock, allow_extra=allow_extra)
        if isinstance(got, Problem):
            problems.append((k, got))
        else:
            kept.append(k)
            reqs.append(got[0])
            rows.append(got[1])
    return kept, problems, PLAN.arrays(reqs, rows)


def assert_same_as_per_record(
    raws: list[bytes | None], arrivals: list[float], clock: Clock | None = None, allow_extra: bool = False
) -> None:
    """The same records kept (same columns, byte for byte) and the same problems, in order."""
    got = decode_checked_batch(raws, PLAN, MAX_BYTES, arrivals, clock=clock, allow_extra=allow_extra)
    kept, problems, want = per_record(raws, arrivals, clock, allow_extra)
    assert got.kept == kept
    assert got.problems == problems
    for name in ("f", "i", "allow"):
        assert getattr(got.batch, name).tobytes() == getattr(want, name).tobytes(), name
    for name in ("ids", "origins", "tenants", "sessions"):
        assert getattr(got.batch, name) == getattr(want, name), name


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)


_raw_kinds = st.sampled_from(
    [
        None,
        b"",
        b"  \n",
        b"\x0b",
        b"{",
        b"[1",
        b"{},{}",
        b"null",
        b"[]",
        b'{"request_id": "r"}',
        b"\xff\xfe",
        b"x" * (MAX_BYTES + 1),
        _dumps({**BASE, "pad": "x" * MAX_BYTES}),
        _dumps({**BASE, "request_id": "big"}).replace(b'"big"', b'"big","payload_bytes":1' + b"0" * 30),
        b'{"request_id":"r","request_id":"s","origin":"fe-tokyo","latency_budget_ms":1,"energy_wh":1}',
    ]
)
_change = st.sampled_from(sorted(_FIELD_VALUES)).flatmap(
    lambda k: st.tuples(st.just(k), st.sampled_from(_FIELD_VALUES[k]))
)
_json_record = st.tuples(st.sampled_from(range(len(SAMPLES))), st.lists(_change, max_size=2).map(dict)).map(
    lambda x: _dumps({k: v for k, v in {**SAMPLES[x[0]], **x[1]}.items() if v is not DROP})
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.one_of(_json_record, _json_record, _raw_kinds), st.sampled_from([0.0, NOW, 2 * NOW])),
        max_size=30,
    ),
    st.sampled_from([None, Clock(NOW), Clock(NOW, 0.0), Clock(0.5)]),
    st.booleans(),
)
def test_random_record_batches_end_as_record_by_record(
    batch: list[tuple[bytes | None, float]], clock: Clock | None, allow_extra: bool
) -> None:
    """Random batches of raw records (valid, invalid fields, not JSON, empty, missing, oversized, a record
    that is two JSON values): the batch keeps the records the per-record path accepts, with the same
    columns, and gives the others the per-record path's problems."""
    assert_same_as_per_record([r for r, _ in batch], [a for _, a in batch], clock, allow_extra)


def test_the_bundled_requests_and_bad_records_in_one_batch() -> None:
    """The bundled requests with a bad record between them: the same kept records and problems."""
    raws: list[bytes | None] = [_dumps(o) for o in SAMPLES[:50]]
    raws[3], raws[17], raws[30] = b"{", None, _dumps({**SAMPLES[30], "tokens": True})
    assert_same_as_per_record(raws, [NOW] * len(raws), Clock(NOW))


def test_an_oversized_record_is_refused_though_valid() -> None:
    """A valid request larger than the size limit is a dead letter in a batch of valid JSON too."""
    raws: list[bytes | None] = [_dumps(SAMPLES[0]), _dumps({**BASE, "pad": "x" * MAX_BYTES})]
    assert_same_as_per_record(raws, [NOW, NOW], allow_extra=True)
    got = decode_checked_batch(raws, PLAN, MAX_BYTES, [NOW, NOW], allow_extra=True)
    assert got.kept == [0]


def test_a_batch_the_columns_cannot_take_takes_the_per_record_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash of the batch decoder sends every record to the per-record path (logged), never a wrong or
    lost decision."""

    def crash(*args: Any) -> None:
        raise RuntimeError("boom")

    raws: list[bytes | None] = [_dumps(o) for o in SAMPLES[:5]] + [b"{"]
    monkeypatch.setattr(streams.batchcodec, "batch_rows", crash)
    with capture_logs() as logs:
        assert_same_as_per_record(raws, [NOW] * len(raws))
    assert [x["event"] for x in logs] == ["request_batch_check_crashed"]


def test_a_crash_of_the_per_record_check_is_the_callers_problem() -> None:
    """``check`` takes every declined record, and its answer stands."""
    raws: list[bytes | None] = [_dumps(SAMPLES[0]), b"{", _dumps(SAMPLES[1])]
    seen: list[int] = []

    def check(k: int) -> Problem:
        seen.append(k)
        return Problem.of("could not be checked: RuntimeError")

    got = decode_checked_batch(raws, PLAN, MAX_BYTES, [0.0] * 3, check=check)
    assert (seen, got.kept, got.batch.ids) == (
        [1],
        [0, 2],
        (SAMPLES[0]["request_id"], SAMPLES[1]["request_id"]),
    )
    assert got.problems == [(1, Problem.of("could not be checked: RuntimeError"))]


# -- the decider's batch rules -----------------------------------------------------------------------------


def reference_fresh(ids: list[str], ts: list[float], seen: set[str]) -> list[int]:
    """The requests a batch decides, in the order the kernel gets them: the first copy of each id not in
    the dedup memory, sorted by event time (stable)."""
    first: dict[str, int] = {}
    for k, rid in enumerate(ids):
        if rid not in seen and rid not in first:
            first[rid] = k
    return sorted(first.values(), key=ts.__getitem__)


def _decider() -> Decider:
    live = Decider(TOPO, dedup_size=1000)
    for region in PLAN.region_ids:
        live.apply_signal(
            GridSignal(region=region, ts=NOW - 60, price_usd_per_mwh=50.0, marginal_gco2_per_kwh=300.0)
        )
    return live


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(batch=[("a", NOW), ("b", NOW - 1), ("c", 0.0), ("d", -0.0)], earlier=[], sessions=False)
@example(batch=[("a", NOW), ("b", NOW - 1), ("a", NOW - 2), ("c", NOW)], earlier=["c"], sessions=True)
@given(
    st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.sampled_from([NOW, NOW + 1, NOW - 1, -0.0, 0.0])),
        max_size=12,
    ),
    st.lists(st.sampled_from("abcdefgh"), max_size=3),
    st.booleans(),
)
def test_decide_columns_decides_the_first_new_copies_in_event_time(
    batch: list[tuple[str, float]], earlier: list[str], sessions: bool
) -> None:
    """The kernel gets exactly the reference's requests (first copies not remembered, stable event-time
    order) as ``Plan.arrays`` stacks them; every copy of an id gets one value; repeats are counted."""
    live = _decider()
    if earlier:
        live.decide(*_rows([(rid, NOW) for rid in earlier], False))
    got: list[RequestArrays] = []
    decide = live.scorer.decide

    def spy(arrays: RequestArrays, **kwargs: Any) -> Any:  # a copy: the session slots are set in place
        got.append(replace(arrays, f=arrays.f.copy(), i=arrays.i.copy(), allow=arrays.allow.copy()))
        return decide(arrays, **kwargs)

    live.scorer.decide = spy  # type: ignore[method-assign]
    reqs, rows = _rows(batch, sessions)
    decided = live.decide_columns(PLAN.arrays(reqs, rows), decided_at=NOW, clock=NOW)
    fresh = reference_fresh([r for r, _ in batch], [t for _, t in batch], set(earlier))
    if not fresh:
        assert got == []
    else:
        want = PLAN.arrays([reqs[k] for k in fresh], [rows[k] for k in fresh])
        (mine,) = got
        for name in ("f", "i", "allow"):
            assert getattr(mine, name).tobytes() == getattr(want, name).tobytes(), name
        for name in ("ids", "origins", "tenants", "sessions"):
            assert getattr(mine, name) == getattr(want, name), name
    assert decided.repeated == len(batch) - len(fresh)
    by_id: dict[str, bytes] = {}
    for (rid, _), value in zip(batch, decided.values, strict=True):
        assert by_id.setdefault(rid, value) == value
        assert orjson.loads(value)["request_id"] == rid
    assert [p["request_id"] for p in decided.placements] == [r for r, _ in batch]


def _rows(batch: list[tuple[str, float]], sessions: bool) -> tuple[list[Any], list[Any]]:
    """Requests with these ids and times (a session each when ``sessions``), through the fast path."""
    out = [
        fast_request_row(
            PLAN,
            {
                **BASE,
                "latency_budget_ms": 2000.0,
                "request_id": rid,
                "ts": ts,
                **({"session_id": f"s-{rid}"} if sessions else {}),
            },
            NOW,
        )
        for rid, ts in batch
    ]
    assert all(x is not None for x in out)
    return [x[0] for x in out if x], [x[1] for x in out if x]


def test_decide_is_decide_columns_of_the_stacked_rows() -> None:
    """``decide`` and ``decide_columns`` of ``Plan.arrays`` give the same bytes (one decision path), with
    repeats and an unsorted batch."""
    batch = [("a", NOW), ("b", NOW - 5), ("a", NOW), ("c", -0.0), ("d", 0.0), ("b", NOW)]
    one, two = _decider(), _decider()
    reqs, rows = _rows(batch, True)
    x = one.decide(reqs, rows, decided_at=NOW, clock=NOW)
    y = two.decide_columns(PLAN.arrays(reqs, rows), decided_at=NOW, clock=NOW)
    assert x.values == y.values
    assert (x.repeated, x.sessions) == (y.repeated, y.sessions)
    assert x.repeated == 2
    assert len(x.sessions) == 4


def test_a_batch_with_bad_records_parses_each_record_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records that are not JSON become None in place, and the good ones around them are parsed once each
    (a garbage flood does not make the whole batch parse twice)."""
    raws: list[bytes | None] = [b'{"a":1}', b"not json", b"[1]", b"", b"{}", b"{"]
    calls: list[bytes] = []
    loads = orjson.loads

    def counted(raw: bytes) -> Any:
        calls.append(raw)
        return loads(raw)

    monkeypatch.setattr(orjson, "loads", counted)
    assert streams.batchcodec.parse_records(raws, 100) == [{"a": 1}, None, [1], None, {}, None]
    assert calls == raws
