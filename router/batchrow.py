"""The batch request decoder: parsed JSON objects -> the kernel's columns, field by field over the batch.

``batch_rows`` applies the rules of ``router.fastrow.fast_request_row`` (strict types, the same bounds, ids
the plan knows) to a whole batch at once: each field is gathered into one list, its types are checked
through ``map(type, ...)`` (one set per column when it is homogeneous, a mask only when it is not), its
bounds with NumPy on the column's array, and the kernel's float and int columns are computed with the same
IEEE operations as the per-record rows (energy from tokens x Wh/token, compute time from the model profile,
``round(energy * NWH_PER_WH)``). A record it does not accept is *declined*, never judged: the caller hands
it to the per-record path (``streams.batchcodec.decode_checked_batch`` calls
``streams.codec.decode_checked_request``), which accepts it (``BatchRows.put``) or names the problem. So a
batch can only be decoded faster, never differently: tests/router/test_batchrow.py checks, for random
batches of valid and invalid records, that it accepts exactly what ``fast_request_row`` accepts and that its
columns equal ``Plan.arrays`` of the fast rows byte for byte.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import is_, is_not
from typing import Any

import numpy as np

from router.bounds import (
    MAX_CODE_LEN,
    MAX_ENERGY_WH,
    MAX_ID_LEN,
    MAX_JURISDICTIONS,
    MAX_MS,
    MAX_PAYLOAD_BYTES,
    MAX_STATE_BYTES,
    MAX_TOKENS,
    MAX_TS,
)
from router.fastrow import REQUEST_FIELDS
from router.kernel.columns import (
    BUDGET_MS,
    COMPUTE_MS,
    ENERGY_NWH,
    ENERGY_WH,
    MODEL,
    ORIGIN,
    PAYLOAD_BYTES,
    PINNED,
    REQ_F_COLS,
    REQ_I_COLS,
    SESSION,
    STATE_BYTES,
    STATE_REGION,
    TENANT,
    T,
)
from router.plan import NWH_PER_WH, BoolArray, FloatArray, IntArray, Plan, RequestArrays, RequestIds, Row

__all__ = ["BatchRows", "batch_rows"]

_NONE: type = type(None)
_NUMBER: frozenset[type] = frozenset({int, float})
_OPT_NUMBER: frozenset[type] = frozenset({int, float, _NONE})
_INT: frozenset[type] = frozenset({int})
_OPT_INT: frozenset[type] = frozenset({int, _NONE})
_STR: frozenset[type] = frozenset({str})
_OPT_STR: frozenset[type] = frozenset({str, _NONE})
_BOOL: frozenset[type] = frozenset({bool})
#: stands in for a value of the wrong type in a lookup (in no table)
_BAD = object()
_EMPTY: dict[str, Any] = {}
#: None -> NaN (other numbers: themselves, as ``_NAN.get(x, x)``)
_NAN: dict[Any, float] = {None: math.nan}


@dataclass(frozen=True, slots=True)
class _Tables:
    """A plan's index maps with None and the model profiles as arrays indexed by the model column."""

    models: dict[Any, int]  # None -> 0, id -> index; unknown: -1
    regions: dict[Any, int]  # None -> -1, id -> index; unknown: -2
    tenants: dict[Any, int]  # None or an unbudgeted tenant: -1
    wh_per_token: FloatArray  # by model index (0: none, NaN)
    base_ms: FloatArray
    ms_per_token: FloatArray


_TABLES: weakref.WeakKeyDictionary[Plan, _Tables] = weakref.WeakKeyDictionary()


def _tables(plan: Plan) -> _Tables:
    got = _TABLES.get(plan)
    if got is None:
        ids = ("", *plan.model_ids)  # index 0: no model
        wph = [plan.wh_per_token[m] if m else np.nan for m in ids]
        base = [plan.ms_profile[m][0] if m else np.nan for m in ids]
        per = [plan.ms_profile[m][1] if m else np.nan for m in ids]
        got = _Tables(
            models={None: 0, **plan.model_index},
            regions={None: -1, **plan.region_index},
            tenants=dict(plan.tenant_index),
            wh_per_token=np.array(wph, dtype=np.float64),
            base_ms=np.array(base, dtype=np.float64),
            ms_per_token=np.array(per, dtype=np.float64),
        )
        _TABLES[plan] = got
    return got


class BatchRows:
    """A batch's kernel rows by column (row ``k`` is record ``k``'s, valid where ``ok[k]``) and its ids."""

    __slots__ = ("f", "ids", "ints", "ok", "origins", "sessions", "tenants")

    def __init__(
        self,
        f: FloatArray,
        ints: IntArray,
        ok: BoolArray,
        ids: list[Any],
        origins: list[Any],
        tenants: list[Any],
        sessions: list[Any],
    ) -> None:
        self.f = f  # (n, REQ_F_COLS)
        self.ints = ints  # (n, REQ_I_COLS + words): the int columns, then the allowed-region words
        self.ok = ok
        self.ids, self.origins, self.tenants, self.sessions = ids, origins, tenants, sessions

    @classmethod
    def declining(cls, plan: Plan, n: int) -> BatchRows:
        """``n`` records, every one declined (for the per-record path)."""
        ints = np.zeros((n, REQ_I_COLS + plan.n_words), dtype=np.int64)
        none: list[Any] = [None] * n
        return cls(np.zeros((n, REQ_F_COLS)), ints, np.zeros(n, np.bool_), none, none[:], none[:], none[:])

    @property
    def declined(self) -> list[int]:
        """The records the batch decoder left to the per-record path, in order."""
        return np.flatnonzero(~self.ok).tolist()

    def put(self, k: int, req: RequestIds, row: Row) -> None:
        """Accept record ``k`` with the row the per-record path built."""
        self.f[k] = row[0]
        self.ints[k] = row[1]
        self.ids[k], self.origins[k] = req.request_id, req.origin
        self.tenants[k], self.sessions[k] = req.tenant, req.session_id
        self.ok[k] = True

    def accepted(self) -> list[int]:
        """The accepted records, in order."""
        return np.flatnonzero(self.ok).tolist()

    def arrays(self, keep: list[int] | None = None) -> RequestArrays:
        """The accepted records (``keep``: their indices, when known) as ``Plan.arrays`` stacks them."""
        keep = self.accepted() if keep is None else keep
        sessions = tuple(self.sessions) if self.sessions.count(None) < len(self.sessions) else ()
        every = RequestArrays(
            ids=tuple(self.ids),
            origins=tuple(self.origins),
            f=self.f,
            i=np.ascontiguousarray(self.ints[:, :REQ_I_COLS]),
            allow=np.ascontiguousarray(self.ints[:, REQ_I_COLS:]),
            tenants=tuple(self.tenants),
            sessions=sessions,
        )
        return every if len(keep) == len(self.ids) else every.take(keep)


class _Records:
    """The batch's objects as dicts, read field by field."""

    __slots__ = ("dicts", "keys")

    def __init__(self, dicts: list[dict[str, Any]], keys: set[str] | None) -> None:
        self.dicts = dicts
        self.keys = keys  # every key any record has (None: not known)

    def column(self, key: str, default: Any = None) -> list[Any]:
        """Each record's ``key`` (``default`` when it has none; without a pass when no record has it)."""
        if self.keys is not None and key not in self.keys:
            return [default] * len(self.dicts)
        return list(map(dict.get, self.dicts, repeat(key), repeat(default)))


def _typed(col: list[Any], allowed: frozenset[type]) -> tuple[list[Any], BoolArray | None, bool]:
    """``col`` with values of other types replaced by None, where the types were allowed (None:
    everywhere), and whether the result holds a None."""
    types = set(map(type, col))
    if types <= allowed:
        return col, None, _NONE in types
    good = np.fromiter(map(allowed.__contains__, map(type, col)), np.bool_, len(col))
    return [x if g else None for x, g in zip(col, good.tolist(), strict=True)], good, True


def _present(col: list[Any]) -> BoolArray:
    """Where ``col`` holds a value (not None)."""
    return np.fromiter(map(is_not, col, repeat(None)), np.bool_, len(col))


def _floats(col: list[Any], nones: bool) -> tuple[FloatArray, BoolArray | None]:
    """Numbers (or None) as float64 (None: NaN), and where a value did not fit (None: nowhere)."""
    try:
        if nones:
            return np.fromiter(map(_NAN.get, col, col), np.float64, len(col)), None
        return np.array(col, dtype=np.float64), None
    except OverflowError:  # an int beyond float64: decline it (out of every bound anyway)
        fits = np.fromiter((x is None or abs(x) < 2**1000 for x in col), np.bool_, len(col))
        return np.array([x if f else None for x, f in zip(col, fits.tolist(), strict=True)], np.float64), fits


def _numbers(col: list[Any], allowed: frozenset[type], ok: BoolArray) -> tuple[FloatArray, BoolArray | None]:
    """A number column as float64 (None: NaN), where a value was given (None: everywhere); clears ``ok``
    where the type is not allowed."""
    col, good, nones = _typed(col, allowed)
    values, fits = _floats(col, nones)
    for mask in (good, fits):
        if mask is not None:
            ok &= mask
    if not nones:
        return values, None
    missing = np.isnan(values)
    if int(np.count_nonzero(missing)) != col.count(None):  # a NaN was given (not from JSON)
        return values, _present(col)
    return values, ~missing


def _absent(given: BoolArray | None) -> BoolArray | bool:
    """Where no value was given (``given`` None: a value everywhere)."""
    return False if given is None else ~given


def _lookup(col: list[Any], table: dict[Any, int], allowed: frozenset[type], missing: int) -> IntArray:
    """Each value's index in ``table`` (``missing`` for a value it lacks or one of another type)."""
    if not set(map(type, col)) <= allowed:
        col = [x if type(x) in allowed else _BAD for x in col]
    return np.fromiter(map(table.get, col, repeat(missing)), np.int64, len(col))


def _lengths(col: list[Any], allowed: frozenset[type], ok: BoolArray) -> tuple[IntArray, BoolArray | None]:
    """The strings' lengths (0 for None), where one was given (None: everywhere); clears ``ok`` where the
    type is not allowed."""
    col, good, nones = _typed(col, allowed)
    if good is not None:
        ok &= good
    if nones and col.count(None) == len(col):
        return np.zeros(len(col), dtype=np.int64), np.zeros(len(col), dtype=np.bool_)
    present = _present(col) if nones else None
    if present is not None:
        col = [x if x is not None else "" for x in col]
    return np.fromiter(map(len, col), np.int64, len(col)), present


def _dicts(objs: Sequence[Any], allow_extra: bool) -> tuple[_Records, BoolArray]:
    """The objects with a non-dict replaced by an empty one, and where they are dicts with known keys."""
    n = len(objs)
    ok = np.ones(n, dtype=np.bool_)
    dicts: list[dict[str, Any]] = list(objs)
    if set(map(type, dicts)) != {dict}:
        ok = np.fromiter(map(is_, map(type, dicts), repeat(dict)), np.bool_, n)
        dicts = [o if k else _EMPTY for o, k in zip(dicts, ok.tolist(), strict=True)]
    if allow_extra:
        return _Records(dicts, None), ok
    keys: set[str] = set().union(*dicts)
    if not keys <= REQUEST_FIELDS:
        ok &= np.fromiter((o.keys() <= REQUEST_FIELDS for o in dicts), np.bool_, n)
    return _Records(dicts, keys), ok


def batch_rows(
    plan: Plan,
    objs: Sequence[Any],
    arrival: float | Sequence[float] | FloatArray,
    latest_ts: float = MAX_TS,
    allow_extra: bool = False,
) -> BatchRows:
    """The batch's kernel rows by column: record ``k``'s where ``fast_request_row(plan, objs[k],
    arrival[k], latest_ts, allow_extra)`` accepts it (the same row), declined elsewhere.

    ``arrival`` is each record's arrival time (one float: all), its time when it has no ``ts``.
    """
    n = len(objs)
    recs, ok = _dicts(objs, allow_extra)
    with np.errstate(all="ignore"):
        rid, origin = recs.column("request_id"), recs.column("origin")
        lens, _ = _lengths(rid, _STR, ok)
        ok &= (lens > 0) & (lens <= MAX_ID_LEN)
        s = _lookup(origin, plan.node_index, _STR, -1)
        budget, _ = _numbers(recs.column("latency_budget_ms"), _NUMBER, ok)
        ok &= (s >= 0) & (budget > 0.0) & (budget <= MAX_MS)
        m, energy, compute = _work(plan, recs, ok)
        payload, _ = _numbers(recs.column("payload_bytes", 0), _INT, ok)
        state_bytes, _ = _numbers(recs.column("state_bytes", 0), _INT, ok)
        ok &= (payload >= 0.0) & (payload <= MAX_PAYLOAD_BYTES)
        ok &= (state_bytes >= 0.0) & (state_bytes <= MAX_STATE_BYTES)
        sr = _lookup(recs.column("state_region"), _tables(plan).regions, _OPT_STR, -2)
        pinned_col, good, _ = _typed(recs.column("state_pinned", False), _BOOL)
        pinned = np.array(pinned_col, dtype=np.bool_)  # a value of another type: None, False
        ok &= (sr >= -1) & ~(pinned & (sr < 0)) & (good if good is not None else True)
        tenant, session = recs.column("tenant"), recs.column("session_id")
        lens, _ = _lengths(tenant, _OPT_STR, ok)
        ok &= lens <= MAX_ID_LEN
        lens, given = _lengths(session, _OPT_STR, ok)
        ok &= ((lens > 0) | _absent(given)) & (lens <= MAX_ID_LEN)
        ts, given = _numbers(recs.column("ts"), _OPT_NUMBER, ok)
        ok &= ((ts >= 0.0) & (ts <= min(MAX_TS, latest_ts))) | _absent(given)
        if given is not None:
            ts = np.where(given, ts, np.asarray(arrival, dtype=np.float64))
        ints = np.empty((n, REQ_I_COLS + plan.n_words), dtype=np.int64)
        ints[:, REQ_I_COLS:] = plan.allow.words(None)
        _jurisdictions(plan, recs.column("allowed_jurisdictions"), ok, ints[:, REQ_I_COLS:])
        e_nwh = np.rint(np.where(ok, energy, 0.0) * NWH_PER_WH)
        ints[:, ORIGIN], ints[:, STATE_REGION], ints[:, PINNED], ints[:, MODEL] = s, sr, pinned, m
        ints[:, ENERGY_NWH] = np.maximum(e_nwh, 1.0)  # whole numbers below 2**53: exact
        ints[:, TENANT] = _lookup(tenant, _tables(plan).tenants, _OPT_STR, -1)
        ints[:, SESSION] = -1  # session slot: set by router.sessions
        f = np.empty((n, REQ_F_COLS), dtype=np.float64)
        f[:, T], f[:, ENERGY_WH], f[:, BUDGET_MS], f[:, COMPUTE_MS] = ts, energy, budget, compute
        f[:, PAYLOAD_BYTES], f[:, STATE_BYTES] = payload, state_bytes
    return BatchRows(f, ints, ok, rid, origin, tenant, session)


def _work(plan: Plan, recs: _Records, ok: BoolArray) -> tuple[IntArray, FloatArray, FloatArray]:
    """The model index, energy (given, or tokens x the model's Wh/token) and compute time (given, or the
    model profile at the tokens, or 0) of each record; clears ``ok`` where they break a rule."""
    tab = _tables(plan)
    m = _lookup(recs.column("model"), tab.models, _OPT_STR, -1)
    tokens, has_tokens = _numbers(recs.column("tokens"), _OPT_INT, ok)
    ok &= (m >= 0) & (((tokens > 0.0) & (tokens <= MAX_TOKENS)) | _absent(has_tokens))
    mm = np.maximum(m, 0)
    profiled = m > 0
    if has_tokens is not None:
        profiled &= has_tokens
    energy, given = _numbers(recs.column("energy_wh"), _OPT_NUMBER, ok)
    if given is None:  # every record gives its energy
        ok &= (energy > 0.0) & (energy <= MAX_ENERGY_WH)
    else:
        derived = tokens * tab.wh_per_token[mm]
        ok &= np.where(
            given, (energy > 0.0) & (energy <= MAX_ENERGY_WH), profiled & (derived <= MAX_ENERGY_WH)
        )
        energy = np.where(given, energy, derived)
    compute, given = _numbers(recs.column("compute_ms"), _OPT_NUMBER, ok)
    ok &= ((compute >= 0.0) & (compute <= MAX_MS)) | _absent(given)
    if given is not None:
        profile = np.where(profiled, tab.base_ms[mm] + tab.ms_per_token[mm] * tokens, 0.0)
        compute = np.where(given, compute, profile)
    return m, energy, compute


def _jurisdictions(plan: Plan, col: list[Any], ok: BoolArray, words: IntArray) -> None:
    """Each accepted record's allowed-region words (``Plan.allow``) into ``words`` for those that give
    ``allowed_jurisdictions``, each distinct list checked once; clears ``ok`` where the list breaks a rule."""
    if col.count(None) == len(col):
        return
    rows = np.flatnonzero(_present(col) & ok).tolist()
    lists = [col[k] for k in rows]
    got: list[tuple[int, ...] | None]
    try:
        if set(map(type, lists)) != {list}:
            raise TypeError("not a list")
        keys = list(map(tuple, lists))
        table = {key: _words(plan, key) for key in set(keys)}  # a list in the list cannot be hashed
        got = list(map(table.__getitem__, keys))
    except TypeError:  # rare: record by record
        got = [_words(plan, tuple(a)) if type(a) is list and all(map(_code, a)) else None for a in lists]
    bad = [k for k, g in zip(rows, got, strict=True) if g is None]
    if bad:
        ok[bad] = False
    good = [(k, g) for k, g in zip(rows, got, strict=True) if g is not None]
    if good:
        words[[k for k, _ in good]] = np.array([g for _, g in good], dtype=np.int64)


def _words(plan: Plan, allowed: tuple[Any, ...]) -> tuple[int, ...] | None:
    """The words of a list of codes (``Plan.allow``), or None when the list breaks a rule."""
    if len(allowed) > MAX_JURISDICTIONS or not all(map(_code, allowed)):
        return None
    return plan.allow.words(allowed)


def _code(a: object) -> bool:
    return type(a) is str and 0 < len(a) <= MAX_CODE_LEN
