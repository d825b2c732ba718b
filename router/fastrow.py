"""The hot-path request decoder: a parsed JSON object -> its kernel row, without building a pydantic model.

``fast_request_row`` accepts only requests that are plainly valid under ``router.models.Request`` (strict
types, the same bounds) and whose ids the plan knows, and builds the row ``Plan.request_row`` would build;
for anything else it *declines* (returns None) and the caller takes the full path
(``streams.codec.decode_checked_request``: pydantic, then ``Plan.request_row``), which either accepts the
request or says exactly what is wrong. So the fast path can only be faster, never decide differently: the
full path is its reference, and tests/router/test_fastrow.py checks that every row the fast path builds
equals the full path's row and that it never accepts what the full path refuses (all bundled requests and
Hypothesis-generated ones).

It is one flat function on purpose: each Python call costs about 0.1 us, and this runs once per request.
"""

from __future__ import annotations

from typing import Any

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
from router.models import Request
from router.plan import NWH_PER_WH, Plan

__all__ = ["REQUEST_FIELDS", "FastRequest", "fast_request_row"]

#: The fields a request may carry; a record with any other key is declined (the full path names it).
REQUEST_FIELDS = frozenset(Request.model_fields)


class FastRequest:
    """The fields of an accepted request that the batch still needs (``Plan.arrays``, dedup, the
    placement's ``tenant`` and ``session_id``)."""

    __slots__ = ("origin", "request_id", "session_id", "tenant")

    def __init__(
        self, request_id: str, origin: str, tenant: str | None = None, session_id: str | None = None
    ) -> None:
        self.request_id = request_id
        self.origin = origin
        self.tenant = tenant
        self.session_id = session_id


Row = tuple[list[float], list[int]]


def fast_request_row(
    plan: Plan, obj: Any, arrival_ts: float, latest_ts: float = MAX_TS, allow_extra: bool = False
) -> tuple[FastRequest, Row] | None:
    """The request and its kernel row (at its ``ts``, else ``arrival_ts``), or None to decline.

    ``latest_ts`` is the latest ``ts`` accepted (the router's clock plus the skew, ``router.clock``);
    ``allow_extra`` reads past unknown fields instead of declining them.
    """
    if type(obj) is not dict or (not allow_extra and not obj.keys() <= REQUEST_FIELDS):
        return None
    g = obj.get
    rid, origin, budget = g("request_id"), g("origin"), g("latency_budget_ms")
    if type(rid) is not str or not 0 < len(rid) <= MAX_ID_LEN or type(origin) is not str:
        return None
    s = plan.node_index.get(origin)
    if s is None or (type(budget) is not float and type(budget) is not int) or not 0.0 < budget <= MAX_MS:
        return None
    energy, tokens, model = g("energy_wh"), g("tokens"), g("model")
    m = 0
    if model is not None:
        if type(model) is not str or model not in plan.model_index:
            return None
        m = plan.model_index[model]
    if tokens is not None and (type(tokens) is not int or not 0 < tokens <= MAX_TOKENS):
        return None
    if energy is None:
        if tokens is None or model is None:
            return None
        energy = tokens * plan.wh_per_token[model]
        if not energy <= MAX_ENERGY_WH:
            return None
    elif (type(energy) is not float and type(energy) is not int) or not 0.0 < energy <= MAX_ENERGY_WH:
        return None
    compute = g("compute_ms")
    if compute is None:
        compute = 0.0
        if model is not None and tokens is not None:
            base, per_token = plan.ms_profile[model]
            compute = base + per_token * tokens
    elif (type(compute) is not float and type(compute) is not int) or not 0.0 <= compute <= MAX_MS:
        return None
    payload, state_bytes = g("payload_bytes", 0), g("state_bytes", 0)
    if type(payload) is not int or not 0 <= payload <= MAX_PAYLOAD_BYTES:
        return None
    if type(state_bytes) is not int or not 0 <= state_bytes <= MAX_STATE_BYTES:
        return None
    state_region, pinned = g("state_region"), g("state_pinned", False)
    sr = -1
    if state_region is not None:
        if type(state_region) is not str or state_region not in plan.region_index:
            return None
        sr = plan.region_index[state_region]
    if type(pinned) is not bool or (pinned and sr < 0):
        return None
    tenant, session, ts = g("tenant"), g("session_id"), g("ts")
    if tenant is not None and (type(tenant) is not str or len(tenant) > MAX_ID_LEN):
        return None
    if session is not None and (type(session) is not str or not 0 < len(session) <= MAX_ID_LEN):
        return None
    if ts is None:
        ts = arrival_ts
    elif (type(ts) is not float and type(ts) is not int) or not 0.0 <= ts <= min(MAX_TS, latest_ts):
        return None
    allowed = g("allowed_jurisdictions")
    if allowed is None:
        allow = plan.allow.words(None)
    else:
        if type(allowed) is not list or len(allowed) > MAX_JURISDICTIONS:
            return None
        for a in allowed:
            if type(a) is not str or not 0 < len(a) <= MAX_CODE_LEN:
                return None
        allow = plan.allow.words(tuple(allowed))
    e_nwh = round(energy * NWH_PER_WH)
    k = plan.tenant_index.get(tenant, -1) if tenant is not None else -1  # -1: no budget
    return FastRequest(rid, origin, tenant, session), (
        [float(ts), float(energy), float(budget), float(compute), float(payload), float(state_bytes)],
        [s, sr, int(pinned), m, max(1, e_nwh), k, -1, *allow],  # session slot: set by router.sessions
    )
