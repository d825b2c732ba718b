"""Decision arrays -> placement message values, column by column, without a dict per request.

``encode_columns`` writes the same bytes as ``router.encode.placements`` followed by
``router.encode.encode_placement`` (orjson over one dict per request), straight from the kernel's output
columns: each number field of a batch is formatted by one orjson call over its NumPy column (orjson writes a
float64 of an array exactly as it writes a Python float, and NaN or inf as ``null``, so a null field is a NaN
here); a field that takes few values (status and region; home region, layer and reason; feasible,
feasible_regions, relocatable and removed; signal_source) is looked up from bytes made once per distinct
value; one bytes template per batch joins a request's pieces (``_fill``: ``b"".join`` of the template's text
and the pieces, mapped over ``zip`` of the columns, in C; a piece the same for the whole batch, such as
``decided_at`` live, joins the text once). The optional fields (``tenant``, the session's, the explanations)
are one more piece.

It declines (returns None, and the caller takes the dict path) what it cannot reproduce byte for byte: a
version or ``decided_at`` that is not a plain int or float, a budgeted tenant's request without the tenants'
duals. tests/router/test_columnar.py diffs the two paths on the bundled workload and on Hypothesis-drawn
kernel outputs (rejections, explanations, sessions, tenants).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from router.kernel.columns import (
    CARBON_USD_PER_TONNE,
    CHOICE,
    ENERGY_WH,
    FILTER_NAMES,
    HOME_CARBON_G,
    HOME_ENERGY_USD,
    HOME_FEASIBLE,
    HOME_VALUED,
    LAYER,
    LAYERS,
    N_FEASIBLE,
    NO_AGE,
    ORIGIN,
    OUT_CARBON_G,
    OUT_EGRESS_USD,
    OUT_ENERGY_USD,
    OUT_FACILITY_WH,
    OUT_FORECAST_GENERATED_AT,
    OUT_LATENCY_MS,
    OUT_SCORE_USD,
    OUT_SIGNAL_AGE_S,
    REASON,
    RELOCATABLE,
    RELOCATION_FIXED_USD,
    RUNNER_UP,
    RUNNER_UP_SCORE_USD,
    SESSION_MOVED,
    SIGNAL_SOURCE,
    SIGNAL_SOURCES,
    TENANT,
    T,
)
from router.plan import Plan, RequestArrays
from router.scoring import Decisions

__all__ = ["MIN_BATCH", "encode_columns"]

#: the decider encodes batches of at least this many requests by columns and smaller ones by dicts: below
#: about 200 requests the columnar encoder's fixed cost (tens of NumPy calls, the counters' as many again)
#: outweighs the dicts' (bench/pipeline_bench.py's records in smaller batches, encoding only: 1 request 38 us
#: by columns against 4 us by dicts, 128 366 against 346 us, 256 612 against 744 us, 1024 2.2 against 3.2 ms)
MIN_BATCH = 256

_dumps: Callable[[Any], bytes] = orjson.dumps
_NULL = b"null"
_BOOL = (b"false", b"true")
_NAN = float("nan")
FloatArray = npt.NDArray[np.float64]
#: up to this many rows, a field's distinct values are found with a dict rather than a sort
_FEW = 64
#: rows whose keys span at most this many values are grouped with a table rather than a sort
_TABLE = 1 << 16

#: one request's value; each ``%b`` is one column's piece, in the contract's field order (the ``status``
#: piece carries ``region`` too, the ``home_region`` one ``layer`` and ``reason``, the ``feasible`` one closes
#: ``baseline`` and carries ``feasible_regions``, ``relocatable`` and ``removed``); ``{signals}`` and
#: ``{shares}`` are the batch's versions, the last ``%b`` the optional fields
_TEMPLATE = (
    '{{"request_id":"%b","status":%b,"origin":%b,"home_region":%b,"latency_ms":%b,"energy_wh":%b,'
    '"facility_wh":%b,"energy_usd":%b,"carbon_g":%b,"egress_usd":%b,"score_usd":%b,'
    '"baseline":{{"region":%b,"energy_usd":%b,"carbon_g":%b,"feasible":%b,"signal_age_s":%b,'
    '"signal_source":%b,"forecast_generated_at":%b,"signals_version":{signals},'
    '"shares_version":{shares},"event_ts":%b,"decided_at":%b%b}}'
)
_EXPLAINED = (
    b',"runner_up":%b,"terms":{"energy_usd":%b,"carbon_usd":%b,"egress_usd":%b,"relocation_usd":%b,'
    b'"dual_usd":%b%b}'
)
_UNEXPLAINED = b',"runner_up":null,"terms":null'
_RUNNER_UP = b'{"region":%b,"score_usd":%b}'


def encode_columns(
    plan: Plan,
    batch: RequestArrays,
    dec: Decisions,
    *,
    shares_version: int,
    decided_at: float | None = None,
    explain: bool = False,
) -> list[bytes] | None:
    """Each request's placement message value, in batch order; None when this batch needs the dict path."""
    plain = (int, float)
    if type(dec.signals_version) not in plain or type(shares_version) not in plain:
        return None
    if decided_at is not None and type(decided_at) not in plain:
        return None
    n = len(batch.ids)
    if n == 0:
        return []
    oi = dec.out_i
    placed = oi[:, CHOICE] >= 0
    home = plan.home[batch.i[:, ORIGIN]]
    tail = _optional(plan, batch, dec, placed, home, explain)
    if tail is None:
        return None
    numbers = _number_fields(batch, dec, placed)
    f = _as_text(numbers if decided_at is None else numbers[:12])  # the last row: decided_at when None
    status, home_etc, feasible_etc, source = _categories(plan, dec, home, placed)
    regions = _as_json(plan.region_ids)
    template = (
        _TEMPLATE.format(signals=_dumps(dec.signals_version).decode(), shares=_dumps(shares_version).decode())
    ).encode()
    pieces: list[Sequence[bytes] | bytes] = [
        _string_bodies(batch.ids),
        status,
        _cached(batch.origins),
        home_etc,
        *f[:7],
        list(map(regions.__getitem__, home.tolist())),
        f[7],
        f[8],
        feasible_etc,
        f[9],
        source,
        f[10],
        f[11],
        f[12] if decided_at is None else _dumps(decided_at),
        tail,
    ]
    return _fill(template, pieces)


def _fill(template: bytes, pieces: Sequence[Sequence[bytes] | bytes]) -> list[bytes]:
    """``template % row`` for each row of ``pieces`` (a column each; a bytes piece: the same in every row),
    as one ``b"".join`` per row of the template's text and the pieces: ``bytes.__mod__`` would parse the
    template again for every row (700 against 510 ns per request on bench/pipeline_bench.py's batch)."""
    texts = template.split(b"%b")
    row: list[Sequence[bytes] | bytes] = []
    text = texts[0]
    for piece, after in zip(pieces, texts[1:], strict=True):
        if isinstance(piece, bytes):  # joins the text around it
            text += piece + after
            continue
        if text:
            row.append(text)
        row.append(piece)
        text = after
    if text:
        row.append(text)
    columns = [repeat(p) if isinstance(p, bytes) else p for p in row]
    return list(map(b"".join, zip(*columns, strict=False)))  # the repeats are endless


def _number_fields(batch: RequestArrays, dec: Decisions, placed: npt.NDArray[np.bool_]) -> FloatArray:
    """The 13 number fields of every request, one row per field (NaN where the field is null)."""
    of, rf = dec.out_f, batch.f
    m = np.empty((13, len(rf)), dtype=np.float64)
    m[0] = of[:, OUT_LATENCY_MS]
    m[1] = rf[:, ENERGY_WH]
    m[2] = of[:, OUT_FACILITY_WH]
    m[3] = of[:, OUT_ENERGY_USD]
    m[4] = of[:, OUT_CARBON_G]
    m[5] = of[:, OUT_EGRESS_USD]
    m[6] = of[:, OUT_SCORE_USD]
    m[7] = of[:, HOME_ENERGY_USD]
    m[8] = of[:, HOME_CARBON_G]
    m[9] = of[:, OUT_SIGNAL_AGE_S]
    m[10] = of[:, OUT_FORECAST_GENERATED_AT]
    m[11] = rf[:, T]
    m[12] = rf[:, T]
    rejected = ~placed
    m[0, rejected] = _NAN
    m[2:7, rejected] = _NAN
    m[7:9, dec.out_i[:, HOME_VALUED] != 1] = _NAN
    m[9, rejected | (m[9] == NO_AGE)] = _NAN
    m[10, rejected | (m[10] == NO_AGE)] = _NAN
    return m


def _as_text(rows: FloatArray) -> list[list[bytes]]:
    """Each number of each row as JSON, as orjson writes a Python float (NaN and inf: ``null``); one orjson
    call per row (faster than one over the matrix and a split of its rows)."""
    return [orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",") for row in rows]


def _string_bodies(strings: Sequence[str]) -> list[bytes]:
    """Each string as JSON without its quotes (the template writes them), from one orjson call over the list:
    its text cut at ``","``, which can only separate two elements, since inside a JSON string every quote is
    escaped. One string at a time when the cut gives another count (it cannot, but the check is cheap)."""
    parts = _dumps(list(strings))[2:-2].split(b'","')
    if len(parts) == len(strings):
        return parts
    return [_dumps(x)[1:-1] for x in strings]


@lru_cache(maxsize=8)
def _as_json(region_ids: tuple[str, ...]) -> list[bytes]:
    """A plan's region ids as JSON strings, made once per plan."""
    return [_dumps(r) for r in region_ids]


def _cached(strings: Sequence[str]) -> list[bytes]:
    """Each string as JSON, encoded once per distinct string."""
    enc = {s: _dumps(s) for s in set(strings)}
    return list(map(enc.__getitem__, strings))


def _lookup(keys: npt.NDArray[np.int64], make: Callable[[list[int]], bytes]) -> list[bytes]:
    """``make(row)`` for every row of ``keys`` (an int matrix), called once per distinct row."""
    if len(keys) <= _FEW:  # a dict costs less than a sort here
        made: dict[tuple[int, ...], bytes] = {}
        out: list[bytes] = []
        for row in keys.tolist():
            key = tuple(row)
            piece = made.get(key)
            if piece is None:
                piece = made[key] = make(row)
            out.append(piece)
        return out
    first, inverse = _groups(keys)
    table = [make(row) for row in keys[first].tolist()]
    return list(map(table.__getitem__, inverse.tolist()))


def _groups(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """A row of each distinct row of ``keys`` and each row's group. The rows as one int key (mixed radix over
    the columns' ranges): a table over the keys when they span few values, else one sort; a lexicographic
    sort when the rows do not fit one int."""
    lo, hi = keys.min(axis=0), keys.max(axis=0)
    widths = (hi - lo + 1).tolist()
    span = math.prod(widths)
    if span < 2**62:
        key = np.zeros(len(keys), dtype=np.int64)
        for j, w in enumerate(widths):
            key = key * w + (keys[:, j] - lo[j])
        if span <= _TABLE:
            seen = np.zeros(span, dtype=np.bool_)
            seen[key] = True
            codes = np.flatnonzero(seen)
            group = np.empty(span, dtype=np.intp)
            group[codes] = np.arange(len(codes))
            inverse = group[key]
            first = np.empty(len(codes), dtype=np.intp)
            first[inverse] = np.arange(len(keys))  # some row of each group (which one does not matter)
            return first, inverse
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        return first, inverse.reshape(-1)
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    starts = np.ones(len(keys), dtype=np.bool_)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(len(keys), dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    return order[starts], inverse


def _categories(
    plan: Plan, dec: Decisions, home: npt.NDArray[np.int64], placed: npt.NDArray[np.bool_]
) -> tuple[list[bytes], list[bytes], list[bytes], list[bytes]]:
    """The pieces of the fields that take few values: status (with the region), home region (with the layer
    and the reason), feasible (the baseline's, closing it, with feasible_regions, relocatable and removed),
    signal_source."""
    regions, oi = plan.region_ids, dec.out_i
    p = placed.astype(np.int64)
    choice, layer, reason = oi[:, CHOICE], oi[:, LAYER], oi[:, REASON]

    def status(k: list[int]) -> bytes:
        return b'"placed","region":%b' % _dumps(regions[k[0]]) if k[0] >= 0 else b'"rejected","region":null'

    def home_etc(k: list[int]) -> bytes:
        h, is_placed, lay, why = k
        return b'%b,"layer":%b,"reason":%b' % (
            _dumps(regions[h]),
            _dumps(LAYERS[lay]) if is_placed else _NULL,
            _dumps("min_score" if is_placed else FILTER_NAMES[why - 1]),
        )

    def feasible_etc(k: list[int]) -> bytes:
        removed = {FILTER_NAMES[c]: r for c, r in enumerate(k[3:]) if r}
        return b'%b},"feasible_regions":%b,"relocatable":%b,"removed":%b' % (
            _BOOL[k[0] == 1],
            _dumps(k[1]),
            _BOOL[k[2] == 1],
            _dumps(removed),
        )

    def source(k: list[int]) -> bytes:
        return _dumps(SIGNAL_SOURCES[k[1]]) if k[0] else _NULL

    counts = np.concatenate([oi[:, [HOME_FEASIBLE, N_FEASIBLE, RELOCATABLE]], dec.removed], axis=1)
    return (
        _lookup(choice.reshape(-1, 1), status),
        _lookup(np.stack([home, p, layer * p, reason * (1 - p)], axis=1), home_etc),
        _lookup(counts, feasible_etc),
        _lookup(np.stack([p, oi[:, SIGNAL_SOURCE] * p], axis=1), source),
    )


def _optional(
    plan: Plan,
    batch: RequestArrays,
    dec: Decisions,
    placed: npt.NDArray[np.bool_],
    home: npt.NDArray[np.int64],
    explain: bool,
) -> Sequence[bytes] | bytes | None:
    """The optional fields' piece of every request: ``tenant``, ``session_id`` and ``session_moved``, the
    explanations (bytes: the same in every request); None when they cannot be made here."""
    parts: list[list[bytes]] = []
    if any(t is not None for t in batch.tenants):
        enc = {t: b',"tenant":%b' % _dumps(t) for t in set(batch.tenants) if t is not None}
        parts.append([enc[t] if t is not None else b"" for t in batch.tenants])
    if any(s is not None for s in batch.sessions):
        moved = dec.out_i[:, SESSION_MOVED].tolist()
        parts.append(
            [
                b',"session_id":%b,"session_moved":%b' % (_dumps(s), _BOOL[m == 1]) if s is not None else b""
                for s, m in zip(batch.sessions, moved, strict=True)
            ]
        )
    if explain:
        got = _explanations(plan, batch, dec, placed, home)
        if got is None:
            return None
        parts.append(got)
    if not parts:
        return b""  # the same (none) in every request
    if len(parts) == 1:
        return parts[0]
    return list(map(b"".join, zip(*parts, strict=True)))


def _explanations(
    plan: Plan,
    batch: RequestArrays,
    dec: Decisions,
    placed: npt.NDArray[np.bool_],
    home: npt.NDArray[np.int64],
) -> list[bytes] | None:
    """``runner_up`` and ``terms`` of every request (``router.encode._Explainer``, the same arithmetic
    element by element); None when a budgeted tenant's placed request has no tenants' duals to read."""
    of, oi = dec.out_f, dec.out_i
    choice, tenant = oi[:, CHOICE], batch.i[:, TENANT]
    budgeted = placed & (tenant >= 0)
    if budgeted.any() and (dec.nu is None or int(tenant[budgeted].max()) >= len(dec.nu)):
        return None
    lam = float(plan.scalars[CARBON_USD_PER_TONNE])
    fixed = float(plan.scalars[RELOCATION_FIXED_USD])
    carbon = of[:, OUT_CARBON_G]
    m = np.empty((7, len(of)), dtype=np.float64)
    m[0] = of[:, OUT_ENERGY_USD]
    m[2] = of[:, OUT_EGRESS_USD]
    m[3] = np.where(choice != home, fixed, 0.0)
    m[5] = 0.0
    m[6] = of[:, RUNNER_UP_SCORE_USD]
    with np.errstate(over="ignore", invalid="ignore"):  # as Python's floats: inf (then null), no warning
        m[1] = lam * carbon / 1e6
        m[4] = batch.f[:, ENERGY_WH] * dec.mu[np.where(placed, choice, 0)]
        if dec.nu is not None and budgeted.any():
            m[5] = dec.nu[np.where(budgeted, tenant, 0)] * carbon
    f = _as_text(m)
    regions = _as_json(plan.region_ids)
    runner_up = [
        _RUNNER_UP % (regions[r], s) if r >= 0 else _NULL
        for r, s in zip(oi[:, RUNNER_UP].tolist(), f[6], strict=True)
    ]
    dual_carbon = [
        b',"dual_carbon_usd":%b' % x if b else b"" for b, x in zip(budgeted.tolist(), f[5], strict=True)
    ]
    out = list(map(_EXPLAINED.__mod__, zip(runner_up, *f[:5], dual_carbon, strict=True)))
    for k in np.flatnonzero(~placed).tolist():
        out[k] = _UNEXPLAINED
    return out
