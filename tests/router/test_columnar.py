"""The columnar placement path (router/columnar.py, router/placed.py) against the dict path
(router/encode.py): the same message bytes, the same totals and the same decision counts, on the bundled
workload, on random scenarios with budgeted tenants and sessions, and on Hypothesis-drawn kernel outputs."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import router.columnar
import router.decider
from router.columnar import encode_columns
from router.encode import encode_placement, placements
from router.kernel.columns import (
    CHOICE,
    HOME_FEASIBLE,
    HOME_VALUED,
    LAYER,
    N_FEASIBLE,
    N_FILTERS,
    NO_AGE,
    OUT_FLOATS,
    OUT_FORECAST_GENERATED_AT,
    OUT_INTS,
    OUT_SIGNAL_AGE_S,
    REASON,
    RELOCATABLE,
    REQ_F_COLS,
    REQ_I_COLS,
    RUNNER_UP,
    SESSION_MOVED,
    SIGNAL_SOURCE,
    TENANT,
)
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.placed import DecisionColumns, Placements
from router.placement import PlacementMessage
from router.plan import Plan, RequestArrays
from router.replay import ReplayOptions, replay
from router.scoring import Decisions
from router.tenants import Tenant
from router.topology import Topology, load_topology
from router.totals import Totals
from tests.router.paper_scenario import bundled_inputs
from tests.router.scenarios import random_timeline, random_topology


def _dict_path(plan: Plan, batch: RequestArrays, dec: Decisions, **how: Any) -> list[bytes]:
    return [encode_placement(p) for p in placements(plan, batch, dec, **how)]


def _state(t: Totals) -> dict[str, object]:
    return {name: copy.deepcopy(getattr(t, name)) for name in t.__slots__}


def _labels(ps: list[PlacementMessage]) -> Counter[tuple[str, str, str, str]]:
    return Counter((p["status"], p["region"] or "none", p["layer"] or "none", p["reason"]) for p in ps)


def _check_counts(
    plan: Plan, batch: RequestArrays, dec: Decisions, explain: bool, values: list[bytes]
) -> None:
    """Totals and decision labels read from the columns equal those read from the dicts."""
    cols = DecisionColumns.of(plan, batch, dec, explain=explain)
    dicts = [orjson.loads(v) for v in values]
    by_columns, by_dicts = Totals(), Totals()
    by_columns.add(Placements(list(batch.ids), values, [None] * len(values), [cols], []))
    by_dicts.add(dicts)
    assert _state(by_columns) == _state(by_dicts)
    assert Counter(dict(cols.labels())) == _labels(dicts)
    assert cols.session_moves == sum(1 for p in dicts if p.get("session_moved"))


@pytest.fixture
def diffed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every batch the decider encodes is also encoded by the dict path and counted both ways, asserting they
    agree; yields [batches, requests] diffed."""
    seen = [0, 0]

    def both(plan: Plan, batch: RequestArrays, dec: Decisions, **how: Any) -> list[bytes] | None:
        got = encode_columns(plan, batch, dec, **how)
        assert got == _dict_path(plan, batch, dec, **how)
        assert got is not None
        _check_counts(plan, batch, dec, how["explain"], got)
        seen[0] += 1
        seen[1] += len(got)
        return got

    monkeypatch.setattr(router.decider, "encode_columns", both)
    monkeypatch.setattr(router.decider, "MIN_BATCH", 1)  # every batch by columns, however small
    return seen


@pytest.mark.parametrize("explain", [False, True])
def test_the_bundled_workload_encodes_byte_for_byte_as_the_dict_path(
    diffed: list[int], explain: bool
) -> None:
    """Every placement of the bundled workload (tenants; a third of the requests given sessions) has the
    same bytes, totals and labels from the columns as from the dicts, explanations off and on."""
    topo, sig, req = bundled_inputs()
    req = [(k, r.model_copy(update={"session_id": f"s{k % 5}"}) if k % 3 == 0 else r) for k, r in req]
    res = replay(topo, sig, req, options=ReplayOptions(explain=explain, max_batch=256))
    assert diffed[1] == len(res.placements) == len(req)
    assert any(p["status"] == "rejected" for p in res.placements)
    assert any("session_moved" in p for p in res.placements)


def _random_replay(seed: int, explain: bool) -> list[PlacementMessage]:
    rng = np.random.default_rng(seed)
    topo = random_topology(rng, (2, 6))
    tenants = tuple(
        Tenant(id=f"t{k}", carbon_budget_g=0.5, window_s=60.0, on_exhausted="reject") for k in range(2)
    )
    topo = topo.model_copy(update={"tenants": tenants})
    sig: list[tuple[int, GridSignal]] = []
    sts: list[tuple[int, RegionStatus]] = []
    fcs: list[tuple[int, GridForecast]] = []
    reqs: list[tuple[int, Request]] = []
    for k, (_, ev) in enumerate(random_timeline(rng, topo, 150)):
        for kind, into in ((Request, reqs), (GridSignal, sig), (RegionStatus, sts), (GridForecast, fcs)):
            if isinstance(ev, kind):
                into.append((k, ev))  # type: ignore[arg-type]  # the list of that kind
    opts = ReplayOptions(max_batch=9, explain=explain)
    return replay(topo, sig, reqs, statuses=sts, forecasts=fcs, options=opts).placements


@pytest.mark.parametrize("seed", range(12))
def test_random_scenarios_with_budgeted_tenants_and_sessions_encode_as_the_dict_path(
    diffed: list[int], seed: int
) -> None:
    """Random topologies, timelines (statuses, forecasts, duals), budgeted tenants and sessions: the same
    bytes, totals and labels both ways, explanations off and on."""
    for explain in (False, True):
        assert len(_random_replay(seed, explain)) > 0
    assert diffed[1] > 0


# -- Hypothesis: kernel outputs drawn freely --------------------------------------------------------------

_TOPO: Topology = load_topology()
_PLAN = Plan(_TOPO)
_R = len(_PLAN.region_ids)
#: any finite float (Totals cannot count past about 9e9 USD per batch: those are only encoded), or amounts
_wide = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e16, 1e-7, 5e-324, 0.1, NO_AGE, 1.7e308]),
)
_amounts = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([0.0, -0.0, 1e-7, 5e-324, 0.1, 2.5e-9]))
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@st.composite
def _decided(draw: st.DrawFn) -> tuple[RequestArrays, Decisions, dict[str, Any]]:
    """A batch, its kernel outputs and the encoder's arguments; ``how["countable"]``: amounts Totals can
    count."""
    countable = draw(st.booleans())
    numbers = _amounts if countable else _wide
    n = draw(st.integers(1, 12))
    n_tenants = draw(st.integers(0, 3))
    ids = tuple(draw(st.lists(_text, min_size=n, max_size=n, unique=True)))
    origin = draw(st.lists(st.integers(0, len(_PLAN.node_ids) - 1), min_size=n, max_size=n))
    tenants = draw(st.one_of(st.just(()), st.lists(st.one_of(st.none(), _text), min_size=n, max_size=n)))
    sessions = draw(st.one_of(st.just(()), st.lists(st.one_of(st.none(), _text), min_size=n, max_size=n)))
    f = np.array(draw(st.lists(numbers, min_size=n * REQ_F_COLS, max_size=n * REQ_F_COLS))).reshape(n, -1)
    i = np.zeros((n, REQ_I_COLS), dtype=np.int64)
    i[:, 0] = origin
    i[:, TENANT] = draw(st.lists(st.integers(-1, n_tenants - 1), min_size=n, max_size=n))
    out_f = np.array(draw(st.lists(numbers, min_size=n * len(OUT_FLOATS), max_size=n * len(OUT_FLOATS))))
    out_f = out_f.reshape(n, -1)
    for col in (OUT_SIGNAL_AGE_S, OUT_FORECAST_GENERATED_AT):  # no age, no forecast
        out_f[draw(st.lists(st.booleans(), min_size=n, max_size=n)), col] = NO_AGE
    out_i = np.zeros((n, len(OUT_INTS)), dtype=np.int64)
    out_i[:, CHOICE] = draw(st.lists(st.integers(-1, _R - 1), min_size=n, max_size=n))
    placed = out_i[:, CHOICE] >= 0
    out_i[:, REASON] = np.where(placed, 0, draw(st.lists(st.integers(1, N_FILTERS), min_size=n, max_size=n)))
    for col, hi in ((N_FEASIBLE, _R), (RELOCATABLE, 1), (LAYER, 2), (HOME_FEASIBLE, 1), (HOME_VALUED, 1)):
        out_i[:, col] = draw(st.lists(st.integers(0, hi), min_size=n, max_size=n))
    out_i[:, SIGNAL_SOURCE] = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    out_i[:, RUNNER_UP] = draw(st.lists(st.integers(-1, _R - 1), min_size=n, max_size=n))
    out_i[:, SESSION_MOVED] = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    removed = np.array(draw(st.lists(st.integers(0, _R), min_size=n * N_FILTERS, max_size=n * N_FILTERS)))
    batch = RequestArrays(
        ids=ids,
        origins=tuple(_PLAN.node_ids[o] for o in origin),
        f=f,
        i=i,
        allow=np.zeros((n, 1), dtype=np.int64),
        tenants=tuple(tenants),
        sessions=tuple(sessions),
    )
    dec = Decisions(
        out_f=out_f,
        out_i=out_i,
        removed=removed.reshape(n, N_FILTERS).astype(np.int64),
        signals_version=draw(st.integers(0, 2**40)),
        mu=np.array(draw(st.lists(numbers, min_size=_R, max_size=_R))),
        nu=np.array(draw(st.lists(numbers, min_size=n_tenants, max_size=n_tenants))) if n_tenants else None,
    )
    how = {
        "shares_version": draw(st.integers(0, 2**40)),
        "decided_at": draw(st.one_of(st.none(), numbers, st.integers(0, 2**40))),
        "explain": draw(st.booleans()),
    }
    return batch, dec, {**how, "countable": countable, "sort": draw(st.booleans())}
    return batch, dec, how


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_decided())
def test_drawn_kernel_outputs_encode_and_count_as_the_dict_path(
    case: tuple[RequestArrays, Decisions, dict[str, Any]],
) -> None:
    """Any kernel output (rejections with every reason, nulls, explanations on and off, sessions, tenants,
    extreme floats, ids that need escaping) encodes to the dict path's bytes and counts the same."""
    batch, dec, how = case
    countable = how.pop("countable")
    few = router.columnar._FEW
    try:
        router.columnar._FEW = 0 if how.pop("sort") else few  # the distinct values by a sort, or a dict
        got = encode_columns(_PLAN, batch, dec, **how)
    finally:
        router.columnar._FEW = few
    assert got == _dict_path(_PLAN, batch, dec, **how)
    if countable and got is not None:
        _check_counts(_PLAN, batch, dec, how["explain"], got)


def test_a_budgeted_tenant_without_duals_is_left_to_the_dict_path() -> None:
    """Explanations of a budgeted tenant's placement read the tenants' duals: without them the columnar
    encoder declines the batch (None) rather than guess."""
    n = 1
    i = np.zeros((n, REQ_I_COLS), dtype=np.int64)
    i[:, TENANT] = -1  # no budgeted tenant
    out_i = np.zeros((n, len(OUT_INTS)), dtype=np.int64)
    batch = RequestArrays(ids=("a",), origins=(_PLAN.node_ids[0],), f=np.zeros((n, REQ_F_COLS)), i=i, allow=i)
    dec = Decisions(
        np.zeros((n, len(OUT_FLOATS))), out_i, np.zeros((n, N_FILTERS), np.int64), 1, np.zeros(_R)
    )
    assert encode_columns(_PLAN, batch, dec, shares_version=0, explain=True) is not None
    i[:, TENANT] = 0
    assert encode_columns(_PLAN, batch, dec, shares_version=0, explain=True) is None
    assert encode_columns(_PLAN, batch, dec, shares_version=0, explain=False) is not None


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 60).flatmap(
        lambda n: st.lists(
            st.lists(st.one_of(st.integers(-2, 2), st.integers(-(2**40), 2**40)), min_size=n, max_size=n),
            min_size=1,
            max_size=40,
        )
    )
)
def test_distinct_rows_are_grouped_as_a_dict_groups_them(rows: list[list[int]]) -> None:
    """``_groups`` (one sort of a mixed-radix key, or a lexicographic sort when the rows do not fit one)
    puts two rows in one group exactly when they are equal, and names a first row of each group."""
    keys = np.array(rows, dtype=np.int64)
    first, inverse = router.columnar._groups(keys)
    for k, row in enumerate(rows):
        assert rows[first[inverse[k]]] == row
    assert len(set(inverse.tolist())) == len({tuple(r) for r in rows}) == len(first)


def _requests(n: int, copies: int = 0) -> list[Request]:
    """The first ``n`` bundled requests, then copies of the last ``copies`` of them."""
    _, _, req = bundled_inputs()
    reqs = [r for _, r in req][:n]
    return reqs + reqs[n - copies :]


def test_small_batches_take_the_dict_path_and_large_ones_the_columns() -> None:
    """The decider encodes a batch of ``MIN_BATCH`` requests or more by columns (its placements carry
    them), a smaller one by dicts (none), and both give the bytes the dict path gives."""
    topo, sig, _ = bundled_inputs()
    for n, by_columns in ((router.columnar.MIN_BATCH - 1, False), (router.columnar.MIN_BATCH, True)):
        live = router.decider.Decider(topo)
        for _, s in sig:
            live.apply_signal(s)
        got = live.decide_requests(_requests(n), decided_at=5.0).placements
        assert bool(got.columns) is by_columns
        assert all(orjson.dumps(p) == v for p, v in zip(got, got.values, strict=True))


def test_repeats_and_copies_are_counted_from_their_dicts_as_before() -> None:
    """With the dedup memory on, a batch holding repeats of an earlier batch, new requests and copies of
    new ones counts (Totals, labels) exactly as its placements' dicts do, and the joined placements of two
    batches (the door) count as their dicts do."""
    topo, sig, _ = bundled_inputs()
    live = router.decider.Decider(topo, dedup_size=10_000)
    for _, s in sig:
        live.apply_signal(s)
    n = router.columnar.MIN_BATCH
    first = live.decide_requests(_requests(n), decided_at=5.0).placements
    second = live.decide_requests(_requests(2 * n, copies=n // 2), decided_at=6.0).placements
    assert len(second) == 2 * n + n // 2
    assert len(second.columns) == 1
    assert len(second.loose) == n + n // 2
    assert [p["decided_at"] for p in second[: n // 4]] == [5.0] * (n // 4)  # repeats: the first decision
    joined = Placements.join([first, second])
    for placed in (first, second, joined):
        by_columns, by_dicts = Totals(), Totals()
        by_columns.add(placed)
        by_dicts.add([orjson.loads(v) for v in placed.values])
        assert _state(by_columns) == _state(by_dicts)
        labels: Counter[tuple[str, str, str, str]] = Counter()
        for block in placed.columns:
            labels.update(dict(block.labels()))
        assert labels + _labels(placed.loose) == _labels([orjson.loads(v) for v in placed.values])


def test_placements_compare_and_slice_as_the_list_of_their_dicts() -> None:
    """``Decided.placements`` reads as the list it replaced: items, slices, iteration, ``list()`` and ``==``
    with a list give the dicts the values encode."""
    topo, sig, _ = bundled_inputs()
    live = router.decider.Decider(topo)
    for _, s in sig:
        live.apply_signal(s)
    got = live.decide_requests(_requests(router.columnar.MIN_BATCH), decided_at=5.0).placements
    dicts = [orjson.loads(v) for v in got.values]
    assert got == dicts
    assert list(got) == dicts
    assert got[3:7] == dicts[3:7]
    assert got[-1] == dicts[-1]
    assert got != dicts[:-1]
    assert got.request_ids == [p["request_id"] for p in dicts]


def test_a_template_is_filled_row_by_row_with_constant_pieces_in_place() -> None:
    """``_fill`` writes what ``template % row`` writes, a bytes piece being the same in every row."""
    template = b"a%bc%bd%b%be"
    pieces: list[Any] = [[b"1", b"2"], b"X", [b"3", b"4"], b"Y"]
    want = [template % (b"1", b"X", b"3", b"Y"), template % (b"2", b"X", b"4", b"Y")]
    assert router.columnar._fill(template, pieces) == want == [b"a1cXd3Ye", b"a2cXd4Ye"]
    assert router.columnar._fill(b"%b%b", [b"Z", [b"1"]]) == [b"Z1"]
