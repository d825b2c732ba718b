"""Valid and hostile messages for every topic a worker reads, as Hypothesis strategies.

Used by tests/integration/test_hostile_machine.py. Valid messages start from the bundled sample data and
say what must happen to them (``Msg.effect``). Each hostile one is a valid message with one rule of
docs/contract.md ("Messages", "Dead letters", "Provider payloads") broken by a *break*: the edits that break
it and the field its dead letter must name (its first part; ``None`` for the whole message, ``UNCHECKED``
where the contract leaves it open). Times "ahead" are at least an hour ahead of the clock, far beyond the
300 s skew, so no delay between drawing and decoding can make them valid.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson
from hypothesis import strategies as st
from pydantic import BaseModel

from router import bounds as b
from router.models import GridForecast, GridSignal, RegionStatus, Request, SharesMessage

__all__ = [
    "UNCHECKED",
    "Ctx",
    "Msg",
    "forged_shares",
    "hostile",
    "junk",
    "of_epoch_zero",
    "raw_garbage",
    "valid",
]

#: the field of a hostile message's dead letter is not checked (the contract leaves it open)
UNCHECKED: Final = "<unchecked>"
#: an edit's value that removes the field
DELETE: Final = object()
#: a time at least this far ahead of the clock is "from the future" whatever the skew and the delays (s)
AHEAD_S = 3600.0
TEN_YEARS_S = 10 * 365 * 86400.0
T_PAST = 1_700_000_000.0
ENTSOE_XML = (
    Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "entsoe_a44_fr_nl_be_2024-04-13.xml"
)
UTF8 = st.characters(codec="utf-8")
MIN_PRICE, MAX_PRICE = b.MIN_PRICE_USD_PER_MWH, b.MAX_PRICE_USD_PER_MWH
#: (kind, [(path, value)], the field the dead letter names)
Break = tuple[str, list[tuple[tuple[Any, ...], Any]], str | None]


@dataclass(frozen=True, slots=True, repr=False)
class Msg:
    """One message to produce, and what must become of it."""

    topic: str  # a logical topic name (streams.topics.TOPIC_KEYS)
    key: bytes | None
    value: bytes | None
    kind: str
    #: hostile: the first part of the field its dead letter names (None: the whole message)
    field: str | None = UNCHECKED
    #: valid: ("requests", request_id) | ("signals",) | ("status", region, capacity, healthy) | ("forecasts",)
    effect: tuple[Any, ...] | None = None

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # how Hypothesis prints a failing step's draws
        p.text(repr(self))

    def __repr__(self) -> str:
        value = None if self.value is None else self.value[:120]
        size = "" if self.value is None or len(self.value) <= 120 else f" ({len(self.value)} bytes)"
        return f"Msg({self.kind}, field={self.field!r}, key={self.key!r}, value={value!r}{size})"


@dataclass(repr=False)
class Ctx:
    """What the strategies need to know: the topology's ids, the sample data, the worker, a clock."""

    regions: list[str]
    jurisdictions: list[str]
    nodes: list[str]
    models: list[str]
    requests: list[dict[str, Any]]
    signals: list[dict[str, Any]]
    worker_id: str
    prefix: str
    #: the last timestamp given to a valid signal, status or forecast of each (kind, region)
    last: dict[tuple[str, str], float] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=itertools.count)

    def stamp(self, kind: str, region: str) -> float:
        """Now, but always later than this kind's previous valid message for the region (so it applies)."""
        ts = max(time.time(), self.last.get((kind, region), 0.0) + 0.001)
        self.last[kind, region] = ts
        return ts

    def __repr__(self) -> str:  # the samples would fill a failure report
        return f"Ctx(worker_id={self.worker_id!r}, {len(self.regions)} regions)"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # Hypothesis prints dataclasses field by field
        p.text(repr(self))

    def request_id(self, tag: str) -> str:
        return f"{self.prefix}{tag}-{next(self.counter)}"


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def _json_values() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(UTF8, max_size=8)
    )
    nest = lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(UTF8, max_size=4), c, max_size=3)  # noqa: E731
    return st.recursive(leaves, nest, max_leaves=6)


# ------------------------------------------------------------------------------------------------ breaks


def _set(name: str, values: st.SearchStrategy[Any], kind: str = "oob") -> st.SearchStrategy[Break]:
    """Set field ``name`` to a drawn value; its dead letter names ``name``."""
    return values.map(lambda v: (f"{kind}.{name}", [((name,), v)], name))


def _wrong(table: dict[str, list[Any]]) -> list[st.SearchStrategy[Break]]:
    return [_set(name, st.sampled_from(values), "wrong_type") for name, values in table.items()]


def _oob(table: dict[str, st.SearchStrategy[Any]]) -> list[st.SearchStrategy[Break]]:
    return [_set(name, values) for name, values in table.items()]


def _edits(kind: str, *edits: tuple[str, Any], names: str | None = None) -> st.SearchStrategy[Break]:
    return st.just((kind, [((k,), v) for k, v in edits], names))


def _unknown(model: type[BaseModel]) -> st.SearchStrategy[Break]:
    """An unknown field (a typo or any name) with any JSON value; its dead letter names it."""
    typos = ["allowed_jurisdiction", "marginal_gco2_kwh", "latency_budget", "Region", "ts ", "healthy_"]
    names = st.sampled_from(typos) | st.text(string.ascii_letters + "_-é数", min_size=1, max_size=24)
    names = names.filter(lambda n: n not in model.model_fields)
    return st.tuples(names, _json_values()).map(
        lambda nv: ("unknown_field", [((nv[0],), nv[1])], _path(nv[0]))
    )


def _path(name: str) -> str:
    """How a dead letter writes a top-level field: quoted when it is not a plain word (docs/contract.md)."""
    return name if name.isidentifier() else f"[{name!r}]"


def _not_in(known: list[str]) -> st.SearchStrategy[str]:
    return st.text(UTF8, min_size=1, max_size=20).filter(lambda x: x not in known)


def _below(lo: float, *, with_lo: bool = False) -> st.SearchStrategy[float]:
    """Floats under ``lo``, and ``lo`` itself (with -0.0 for 0.0) when ``with_lo``."""
    below = st.floats(max_value=lo, allow_nan=False, allow_infinity=False)
    return below if with_lo else below.filter(lambda x: x < lo)


def _above(hi: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False)


def _outside(lo: float, hi: float, *, lo_open: bool = False) -> st.SearchStrategy[float]:
    """Floats outside [lo, hi] (outside (lo, hi] when ``lo_open``)."""
    return _below(lo, with_lo=lo_open) | _above(hi)


def _int_outside(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(-(2**63), lo - 1) | st.integers(hi + 1, 2**63 - 1)


#: a time ahead of the clock when drawn: an hour to ten years, 2100, or now in milliseconds
AHEAD = (
    st.floats(AHEAD_S, TEN_YEARS_S).map(lambda d: time.time() + d)
    | st.just(b.MAX_TS)
    | st.builds(lambda: time.time() * 1000.0)
)
FUTURE_ISO = st.floats(AHEAD_S, TEN_YEARS_S).map(lambda d: _iso(time.time() + d))
BAD_TS = _below(0.0) | _above(b.MAX_TS)
LONG_TEXT = st.text(UTF8, min_size=b.MAX_ID_LEN + 1, max_size=b.MAX_ID_LEN + 40)

REQUEST_OOB: dict[str, st.SearchStrategy[Any]] = {
    "latency_budget_ms": _outside(0.0, b.MAX_MS, lo_open=True),
    "energy_wh": _outside(0.0, b.MAX_ENERGY_WH, lo_open=True),
    "compute_ms": _outside(0.0, b.MAX_MS),
    "tokens": _int_outside(1, b.MAX_TOKENS),
    "payload_bytes": _int_outside(0, b.MAX_PAYLOAD_BYTES),
    "state_bytes": _int_outside(0, b.MAX_STATE_BYTES),
    "request_id": st.just("") | LONG_TEXT,
    "tenant": LONG_TEXT,
    "ts": BAD_TS,
    "allowed_jurisdictions": st.integers(b.MAX_JURISDICTIONS + 1, 10_000).map(lambda n: ["DE"] * n)
    | st.just(["DE", ""])
    | st.text(string.ascii_uppercase, min_size=b.MAX_CODE_LEN + 1, max_size=200).map(lambda c: ["FR", c]),
}
REQUEST_WRONG: dict[str, list[Any]] = {
    "request_id": [5, None, True, ["a"]],
    "origin": [5, None, {"id": "fe-frankfurt"}],
    "latency_budget_ms": ["300", True, None, [300.0]],
    "energy_wh": ["1.0", True, [1.0]],
    "tokens": [1.0, 1.5, "5", True],
    "model": [5, True],
    "compute_ms": ["5", False],
    "payload_bytes": [1.0, "0", True],
    "state_bytes": [0.5, "0"],
    "state_pinned": [1, "true", None],
    "allowed_jurisdictions": ["DE", [1], {"DE": 1}, [None]],
    "tenant": [5, True],
    "ts": ["now", True],
}
SIGNAL_OOB: dict[str, st.SearchStrategy[Any]] = {
    "price_usd_per_mwh": _outside(MIN_PRICE, MAX_PRICE),
    "marginal_gco2_per_kwh": _outside(0.0, b.MAX_GCO2_PER_KWH),
    "average_gco2_per_kwh": _outside(0.0, b.MAX_GCO2_PER_KWH),
    "pue": _outside(b.PUE_MIN, b.PUE_MAX),
    "valid_for_s": _outside(0.0, b.MAX_VALID_FOR_S, lo_open=True) | st.just(1.7976931348623157e308),
    "ts": BAD_TS,
    "source": LONG_TEXT,
}
SIGNAL_WRONG: dict[str, list[Any]] = {
    "region": [5, None, ["aws:eu-central-1"]],
    "ts": ["now", None, True],
    "price_usd_per_mwh": ["50", True, [50.0]],
    "marginal_gco2_per_kwh": ["300"],
    "pue": ["1.2", True],
    "valid_for_s": ["3600", True],
    "estimated": ["yes", 1],
    "source": [5],
    "provider_zone": [5, True],
}
STATUS_WRONG: dict[str, list[Any]] = {
    "region": [5, None],
    "ts": ["now", None],
    "capacity_kw": ["100", True, [100.0]],
    "healthy": ["false", 0, 1],
}
_P = {"ts": T_PAST, "price_usd_per_mwh": 50.0}
#: forecast points that break one rule, and the field named (a rule across points names none)
BAD_POINTS: list[tuple[Any, str | None]] = [
    ([], "points"),
    ([_P, _P], None),  # not strictly increasing
    ([_P, {"ts": T_PAST + 300.0}], "points"),  # a point without a value
    ([{**_P, "price_usd_per_mwh": MAX_PRICE * 2}], "points"),
    ([{**_P, "ts": b.MAX_TS * 1000.0}], "points"),
    ([{**_P, "wind": 1.0}], "points"),
    ([{**_P, "ts": "soon"}], "points"),
    ({"ts": 1}, "points"),
    ("x", "points"),
]


def _breaks(ctx: Ctx, topic: str) -> st.SearchStrategy[Break]:
    """Every way to break one rule of a message of ``topic`` (requests and the state topics)."""
    region = _set("region", _not_in(ctx.regions), "unknown_id")
    by_topic: dict[str, list[st.SearchStrategy[Break]]] = {
        "requests": [
            *_oob(REQUEST_OOB),
            *_wrong(REQUEST_WRONG),
            _unknown(Request),
            _set("origin", _not_in(ctx.nodes), "unknown_id"),
            _set("model", _not_in(ctx.models), "unknown_id"),
            _set("state_region", _not_in(ctx.regions), "unknown_id"),
            _set("ts", AHEAD, "ahead"),
            _edits("no_energy", ("energy_wh", DELETE), ("tokens", DELETE)),
            _edits("no_energy", ("energy_wh", DELETE), ("model", DELETE)),
            _edits("pinned_nowhere", ("state_region", DELETE), ("state_pinned", True)),
            # the misspelt constraint of issue 16, item 10
            _edits("typo", ("allowed_jurisdiction", ["DE"]), names="allowed_jurisdiction"),
        ],
        "signals": [
            *_oob(SIGNAL_OOB),
            *_wrong(SIGNAL_WRONG),
            _unknown(GridSignal),
            region,
            _set("ts", AHEAD, "ahead"),
            _set("generated_at", AHEAD, "ahead"),
            _edits(
                "no_value",
                *[
                    (k, DELETE)
                    for k in ("price_usd_per_mwh", "marginal_gco2_per_kwh", "pue", "average_gco2_per_kwh")
                ],
            ),
        ],
        "status": [
            _set("capacity_kw", _outside(0.0, b.MAX_CAPACITY_KW)),
            _set("ts", BAD_TS),
            *_wrong(STATUS_WRONG),
            _unknown(RegionStatus),
            region,
            _set("ts", AHEAD, "ahead"),
        ],
        "forecasts": [
            _set("step_s", _outside(0.0, b.MAX_STEP_S, lo_open=True)),
            _set("step_s", st.just("300"), "wrong_type"),
            st.sampled_from(BAD_POINTS).map(lambda pf: ("bad_points", [(("points",), pf[0])], pf[1])),
            _unknown(GridForecast),
            region,
            _set("generated_at", AHEAD, "ahead"),
        ],
    }
    return st.one_of(by_topic[topic])


def _apply(obj: dict[str, Any], edits: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    for path, value in edits:
        *head, last = path
        node: Any = out
        for k in head:
            node = node[k]
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return out


# ------------------------------------------------------------------------------------ valid messages


@st.composite
def _request(draw: st.DrawFn, ctx: Ctx, tag: str) -> dict[str, Any]:
    """A bundled sample request with a fresh id and a valid ``ts`` (its own, now, none, 0, or a minute
    ahead: within the skew)."""
    r = dict(ctx.requests[draw(st.integers(0, len(ctx.requests) - 1))])  # by index: a short repr
    r["request_id"] = ctx.request_id(tag)
    when = draw(st.sampled_from(["sample", "now", "none", "zero", "skew"]))
    if when == "none":
        r.pop("ts", None)
    elif when != "sample":
        r["ts"] = {"now": time.time(), "zero": 0.0, "skew": time.time() + 60.0}[when]
    return r


#: valid values at their bounds
REQUEST_AT_BOUNDS: list[tuple[str, Any]] = [
    ("latency_budget_ms", b.MAX_MS),
    ("energy_wh", b.MAX_ENERGY_WH),
    ("compute_ms", b.MAX_MS),
    ("compute_ms", 0.0),
    ("payload_bytes", b.MAX_PAYLOAD_BYTES),
    ("state_bytes", b.MAX_STATE_BYTES),
    ("tenant", "t" * b.MAX_ID_LEN),
    ("allowed_jurisdictions", ["X" * b.MAX_CODE_LEN, "DE"]),
]


@st.composite
def _valid_request(draw: st.DrawFn, ctx: Ctx) -> Msg:
    r = draw(_request(ctx, "v"))
    shape = draw(st.sampled_from(["plain", "lower", "wide", "bound", "pretty", "unicode"]))
    if shape == "lower":  # compared without case; [] admits no region (a rejection, still a placement)
        r["allowed_jurisdictions"] = [j.lower() for j in draw(st.lists(st.sampled_from(ctx.jurisdictions)))]
    elif shape == "wide":  # the most codes allowed, each list distinct (what is kept of it must stay bounded)
        rng = random.Random(draw(st.integers(0, 2**32)))  # one draw, not 10,000: floods of these stay small
        codes = [
            "".join(rng.choices(string.ascii_uppercase, k=rng.randint(1, b.MAX_CODE_LEN))) for _ in range(510)
        ]
        r["allowed_jurisdictions"] = ["DE", r["request_id"], *codes]
    elif shape == "bound":
        name, value = draw(st.sampled_from(REQUEST_AT_BOUNDS))
        r[name] = value
    elif shape == "unicode":
        r["request_id"] += draw(st.text(UTF8, min_size=1, max_size=8))
    value = orjson.dumps(r, option=orjson.OPT_INDENT_2 if shape == "pretty" else None)
    key = draw(st.sampled_from([r["request_id"].encode(), None, b"\x00junk"]))
    return Msg("requests", key, value, f"request.valid.{shape}", effect=("requests", r["request_id"]))


def _values(draw: st.DrawFn, ctx: Ctx, region: str) -> dict[str, Any]:
    """Signal values: a sample's for the region, some replaced by values inside or at the bounds."""
    mine = [s for s in ctx.signals if s["region"] == region] or ctx.signals
    base = mine[draw(st.integers(0, len(mine) - 1))]
    out: dict[str, Any] = {k: base[k] for k in ("price_usd_per_mwh", "marginal_gco2_per_kwh") if k in base}
    bounded = {
        "price_usd_per_mwh": st.sampled_from([MIN_PRICE, MAX_PRICE, 0.0, -34.19])
        | st.floats(MIN_PRICE, MAX_PRICE),
        "marginal_gco2_per_kwh": st.sampled_from([0.0, b.MAX_GCO2_PER_KWH])
        | st.floats(0.0, b.MAX_GCO2_PER_KWH),
        "pue": st.floats(b.PUE_MIN, b.PUE_MAX),
        "average_gco2_per_kwh": st.floats(0.0, b.MAX_GCO2_PER_KWH),
    }
    return {**out, **draw(st.fixed_dictionaries({}, optional=bounded))}


def _points(draw: st.DrawFn, start: float, step: float, n: int) -> list[dict[str, Any]]:
    point = st.fixed_dictionaries(
        {},
        optional={
            "price_usd_per_mwh": st.floats(MIN_PRICE, MAX_PRICE),
            "marginal_gco2_per_kwh": st.floats(0.0, b.MAX_GCO2_PER_KWH),
        },
    ).filter(bool)
    return [{"ts": start + k * step, **draw(point)} for k in range(n)]


@st.composite
def _state(draw: st.DrawFn, ctx: Ctx, topic: str, *, fresh: bool) -> dict[str, Any]:
    """A valid signal, status or forecast; ``fresh``: stamped now and later than the region's last one,
    else an hour old (never a region's latest)."""
    region = draw(st.sampled_from(ctx.regions))
    when = ctx.stamp(topic, region) if fresh else time.time() - 3600.0
    if topic == "signals":
        valid_for = st.floats(0.0, b.MAX_VALID_FOR_S, exclude_min=True) | st.just(b.MAX_VALID_FOR_S)
        extra = st.fixed_dictionaries(
            {}, optional={"valid_for_s": valid_for, "source": st.text(UTF8, max_size=9)}
        )
        return {"region": region, "ts": when, **_values(draw, ctx, region), **draw(extra)}
    if topic == "status":
        capacity = draw(st.sampled_from([0.0, b.MAX_CAPACITY_KW, 2e8]) | st.floats(1.0, 1e4))
        return {"region": region, "ts": when, "capacity_kw": capacity, "healthy": draw(st.booleans())}
    step = draw(st.sampled_from([300.0, 900.0, 3600.0, b.MAX_STEP_S]))
    points = _points(draw, when, step, draw(st.integers(1, 12)))
    return {"region": region, "generated_at": when, "step_s": step, "points": points}


@st.composite
def _valid_state(draw: st.DrawFn, ctx: Ctx, topic: str) -> Msg:
    m = draw(_state(ctx, topic, fresh=True))
    effect = ("status", m["region"], m["capacity_kw"], m["healthy"]) if topic == "status" else (topic,)
    return Msg(topic, m["region"].encode(), orjson.dumps(m), f"{topic}.valid", effect=effect)


def valid(ctx: Ctx) -> dict[str, st.SearchStrategy[Msg]]:
    """Valid messages by logical topic."""
    return {
        "requests": _valid_request(ctx),
        **{t: _valid_state(ctx, t) for t in ("signals", "status", "forecasts")},
    }


# ---------------------------------------------------------------------------------- hostile messages


@st.composite
def _hostile(draw: st.DrawFn, ctx: Ctx, topic: str) -> Msg:
    base = draw(_request(ctx, "h")) if topic == "requests" else draw(_state(ctx, topic, fresh=False))
    kind, edits, names = draw(_breaks(ctx, topic))
    key = str(base.get("request_id") or base.get("region")).encode()
    return Msg(topic, key, orjson.dumps(_apply(base, edits)), f"{topic}.{kind}", names)


def hostile(ctx: Ctx) -> dict[str, st.SearchStrategy[Msg]]:
    """Hostile messages by logical topic (router.shares: ``forged_shares``; raw topics: ``raw_garbage``)."""
    return {t: _hostile(ctx, t) for t in ("requests", "signals", "status", "forecasts")}


def _shares_body(ctx: Ctx) -> dict[str, Any]:
    return {
        "version": 1,
        "ts": time.time(),
        "ok": True,
        "status": "Optimal",
        "regions": ctx.regions,
        "mu_usd_per_wh": dict.fromkeys(ctx.regions, 0.0),
        "groups": [],
        "shares": [],
        "unserved_share": [],
        "solve_s": 0.01,
        "leader": ctx.worker_id,
        "epoch": 1,
        "seq": 1,
        "mac": "0" * 64,
    }


SHARES_OOB: dict[str, st.SearchStrategy[Any]] = {
    "version": st.just(2**63),
    "mu_usd_per_wh": st.sampled_from([-1.0, b.MAX_DUAL_USD_PER_WH * 2, 1e308]).map(
        lambda x: {"aws:eu-central-1": x}
    ),
    "solve_s": st.just(3601.0),
    "epoch": st.just(b.MAX_EPOCH + 1),
    "seq": st.just(b.MAX_SEQ + 1),
    "ts": st.just(b.MAX_TS * 1000.0),
}
SHARES_WRONG: dict[str, list[Any]] = {
    "version": ["1"],
    "ok": ["yes"],
    "regions": ["all"],
    "mac": ["XYZ"],
    "unserved_share": [[2.0]],
}


@st.composite
def forged_shares(draw: st.DrawFn, ctx: Ctx, *, ahead: bool = False) -> Msg:
    """Shares from anyone but the leader (any leader name, any version, also the worker's own name), or
    breaking a bound; with ``ahead``, of an epoch the group never reached (judged a session later)."""
    m = _shares_body(ctx)
    m["leader"] = draw(st.sampled_from([ctx.worker_id, "mallory"]) | st.text(UTF8, min_size=1, max_size=12))
    m["mac"] = draw(st.text("0123456789abcdef", min_size=64, max_size=64))
    if ahead:
        m["epoch"] = draw(st.integers(1000, b.MAX_EPOCH))
        m["version"] = m["epoch"] << 32
        return Msg("shares", b"shares", orjson.dumps(m), "shares.ahead", "epoch")
    kind = draw(st.sampled_from(["forged", "huge_version", "broken"]))
    if kind == "huge_version":  # beyond 64 bits: the crash loop of issue 16, item 3
        big = str(draw(st.sampled_from([2**64, 10**30]))).encode()
        raw = orjson.dumps({**m, "version": 0}).replace(b'"version":0', b'"version":' + big)
        return Msg("shares", b"shares", raw, "shares.huge_version", "version")
    if kind == "forged":
        m["epoch"], m["seq"] = draw(st.integers(0, 1)), draw(st.integers(0, b.MAX_SEQ))
        m["version"] = draw(st.sampled_from([(m["epoch"] << 32) + m["seq"], b.MAX_SHARES_VERSION]))
        m["mu_usd_per_wh"] = {r: draw(st.floats(0.0, b.MAX_DUAL_USD_PER_WH)) for r in ctx.regions}
        return Msg("shares", b"shares", orjson.dumps(m), "shares.forged")
    kind, edits, names = draw(st.one_of([*_oob(SHARES_OOB), *_wrong(SHARES_WRONG), _unknown(SharesMessage)]))
    return Msg("shares", b"shares", orjson.dumps(_apply(m, edits)), f"shares.{kind}", names)


def of_epoch_zero(msg: Msg) -> Msg:
    """Shares ``msg`` moved to epoch 0, a term no worker knows: forged, judged at once."""
    body = {**orjson.loads(msg.value or b"{}"), "epoch": 0, "version": 1}
    return Msg(msg.topic, msg.key, orjson.dumps(body), "shares.forged_epoch_zero")


# ---------------------------------------------------------------------------------------- raw topics

_ZONES = (b"10YFR-RTE------C", b"10YNL----------L", b"10YBE----------2")
_CREATED = b"<createdDateTime>2024-04-12T12:00:00Z"
#: A44 documents with one rule broken: (what, bytes replaced, replacement)
ENTSOE_BREAKS: list[tuple[str, bytes, bytes]] = [
    (
        "doctype",
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aa">]>',
    ),
    ("namespace", b"publicationdocument:7:3", b"publicationdocument:9:9"),
    ("currency", b"<currency_Unit.name>EUR", b"<currency_Unit.name>XXX"),
    ("unit", b"<price_Measure_Unit.name>MWH", b"<price_Measure_Unit.name>KWH"),
    ("type", b"<type>A44</type>", b"<type>A65</type>"),
    ("truncated", b"</Publication_MarketDocument>", b"</Publication_Market"),
    ("zone", b"", b"10YXX-NOWHERE--X"),  # every zone: the whole document is unmapped
    ("created", _CREATED, b"<createdDateTime>"),  # then a time from the future
]
WATTTIME_BREAKS: list[st.SearchStrategy[Break]] = [
    st.sampled_from(["percentile", "g_co2_per_kwh"]).map(lambda u: ("units", [(("meta", "units"), u)], None)),
    st.just(("signal_type", [(("meta", "signal_type"), "health_damage")], None)),
    st.just(("zone", [(("meta", "region"), "NOWHERE")], None)),
    st.sampled_from([0, -300, 86401]).map(
        lambda p: ("period", [(("meta", "data_point_period_seconds"), p)], None)
    ),
    FUTURE_ISO.map(lambda t: ("future", [(("data", 0, "point_time"), t)], None)),
    st.sampled_from([-1.0, 1e6, "900", None]).map(lambda v: ("value", [(("data", 0, "value"), v)], None)),
    st.sampled_from(["data", "meta"]).map(lambda k: ("missing", [((k,), DELETE)], None)),
]
ELECTRICITYMAPS_BREAKS: list[st.SearchStrategy[Break]] = [
    st.just(("zone", [(("zone",), "XX-NOWHERE")], None)),
    st.sampled_from([-1.0, 1e5, "342", None]).map(lambda v: ("value", [(("carbonIntensity",), v)], None)),
    FUTURE_ISO.map(lambda t: ("future", [(("datetime",), t)], None)),
    st.just(("missing", [(("isEstimated",), DELETE)], None)),
    st.just(("factor", [(("emissionFactorType",), "direct-ish")], None)),
    st.just(("forecast", [(("forecast",), [])], None)),
]


def _provider_payload(provider: str) -> dict[str, Any]:
    """A valid payload of ``provider`` (JSON providers) an hour old."""
    then = time.time() - 3600.0
    if provider == "watttime":
        return {
            "data": [{"point_time": _iso(then), "value": 900.0}],
            "meta": {
                "region": "CAISO_NORTH",
                "signal_type": "co2_moer",
                "units": "lbs_co2_per_mwh",
                "data_point_period_seconds": 300,
            },
        }
    return {
        "zone": "DE",
        "carbonIntensity": 342.0,
        "datetime": _iso(then),
        "updatedAt": _iso(then),
        "isEstimated": False,
        "emissionFactorType": "lifecycle",
    }


@st.composite
def raw_garbage(draw: st.DrawFn, provider: str) -> Msg:
    """A provider payload with one contract rule broken: wrong units or type, an unmapped zone, from the
    future, an implausible value, a missing field, or not the document it claims to be."""
    topic = f"raw_{provider}"
    if provider == "entsoe":
        what, old, new = draw(st.sampled_from(ENTSOE_BREAKS))
        value = ENTSOE_XML.read_bytes()
        if what == "zone":
            for z in _ZONES:
                value = value.replace(z, new)
        else:
            value = value.replace(old, new + (draw(FUTURE_ISO).encode() if what == "created" else b""))
        return Msg(topic, None, value, f"{topic}.{what}")
    table = WATTTIME_BREAKS if provider == "watttime" else ELECTRICITYMAPS_BREAKS
    what, edits, _ = draw(st.one_of(table))
    return Msg(topic, None, orjson.dumps(_apply(_provider_payload(provider), edits)), f"{topic}.{what}")


# ----------------------------------------------------------------------------------------- any topic


def junk(topic: str, max_bytes: int) -> st.SearchStrategy[Msg]:
    """Not a message at all: a tombstone, empty or blank, not JSON, not an object, nested too deep, or
    larger than ``max_bytes``. On requests and the state topics its dead letter names no field."""
    not_object = (
        st.lists(_json_values(), max_size=3) | st.integers(-(2**63), 2**63 - 1) | st.text(UTF8) | st.none()
    )
    kinds: dict[str, st.SearchStrategy[bytes | None]] = {
        "tombstone": st.none(),  # keyed below
        "empty": st.just(b""),
        "blank": st.sampled_from([b" ", b"\n\t  \r\n"]),
        "binary": st.binary(min_size=1, max_size=200),
        "not_object": not_object.map(orjson.dumps),
        "deep": st.integers(1100, 5000).map(lambda d: b"[" * d + b"]" * d),
        "oversize": st.integers(1, 4096).map(lambda n: b'{"region": "x"}' + b" " * (max_bytes + n)),
    }
    names = UNCHECKED if topic == "shares" or topic.startswith("raw_") else None
    keys = st.sampled_from([None, b"k", b""])  # a tombstone has a key (a Kafka record needs one of the two)

    def msg(kind: str) -> Callable[[tuple[bytes | None, bytes | None]], Msg]:
        return lambda kv: Msg(topic, kv[0], kv[1], f"{topic}.junk.{kind}", names)

    return st.one_of(
        [st.tuples(st.just(b"k") if k == "tombstone" else keys, v).map(msg(k)) for k, v in kinds.items()]
    )
