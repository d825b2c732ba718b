"""The frozen plan: every array the kernel needs that does not change per message.

Built once from a Topology at start-up: index maps, RTT and egress matrices, model profiles and the regions
each model runs in, as the kernel's ``PlanArrays`` (router/kernel/structs.py). Also turns validated Requests
into the kernel's request arrays (one row per request, with its allowed regions as bit words).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from router.bounds import MAX_ENERGY_WH
from router.errors import InputError
from router.kernel.columns import (
    BANDWIDTH_GBPS,
    CAPACITY_WINDOW_S,
    CARBON_USD_PER_TONNE,
    POLICIES,
    POLICY,
    REGIONAL_RTT_MS,
    RELOCATION_FIXED_USD,
    REQ_F_COLS,
    REQ_I_COLS,
    SCALARS,
    SESSION_MIN_DWELL_S,
    SESSION_TTL_S,
    SWITCH_MARGIN_USD,
)
from router.kernel.structs import PlanArrays, Requests
from router.topology import Topology

__all__ = [
    "BoolArray",
    "FloatArray",
    "IntArray",
    "Plan",
    "RequestArrays",
    "RequestFields",
    "RequestIds",
    "Row",
    "bit_words",
]

#: One request as kernel columns: the floats, then the ints followed by the allowed-region bit words.
Row = tuple[list[float], list[int]]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Energy in the capacity windows is counted in integer nano-Wh, so window sums are exact.
NWH_PER_WH = 1e9


class RequestIds(Protocol):
    """What a batch keeps of each request: a ``Request``, or ``router.fastrow.FastRequest``."""

    @property
    def request_id(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def tenant(self) -> str | None: ...
    @property
    def session_id(self) -> str | None: ...


class RequestFields(RequestIds, Protocol):
    """What ``Plan.request_row`` reads of a request (a validated ``Request`` has all of it)."""

    @property
    def latency_budget_ms(self) -> float: ...
    @property
    def energy_wh(self) -> float | None: ...
    @property
    def tokens(self) -> int | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def compute_ms(self) -> float | None: ...
    @property
    def payload_bytes(self) -> int: ...
    @property
    def state_region(self) -> str | None: ...
    @property
    def state_bytes(self) -> int: ...
    @property
    def state_pinned(self) -> bool: ...
    @property
    def allowed_jurisdictions(self) -> tuple[str, ...] | None: ...


@dataclass(frozen=True, slots=True)
class RequestArrays:
    """A batch of requests in the kernel's fixed column order (``router.kernel.columns``)."""

    ids: tuple[str, ...]
    origins: tuple[str, ...]
    f: FloatArray  # (N, REQ_F_COLS)
    i: IntArray  # (N, REQ_I_COLS)
    allow: IntArray  # (N, W): allowed regions as bit words
    #: each request's ``tenant`` and ``session_id`` (None: none given; empty: not kept)
    tenants: tuple[str | None, ...] = ()
    sessions: tuple[str | None, ...] = ()

    def __len__(self) -> int:
        return int(self.f.shape[0])

    def __getitem__(self, part: slice) -> RequestArrays:
        """The requests ``part`` of the batch (views of the arrays)."""
        return RequestArrays(
            ids=self.ids[part],
            origins=self.origins[part],
            f=self.f[part],
            i=self.i[part],
            allow=self.allow[part],
            tenants=self.tenants[part],
            sessions=self.sessions[part],
        )

    def take(self, rows: list[int]) -> RequestArrays:
        """The requests ``rows`` of the batch, in that order (copies, contiguous); ``sessions`` is () when
        none of them has one, as ``Plan.arrays`` makes it."""
        idx = np.array(rows, dtype=np.intp)
        sessions = tuple(self.sessions[k] for k in rows) if self.sessions else ()
        return RequestArrays(
            ids=tuple(self.ids[k] for k in rows),
            origins=tuple(self.origins[k] for k in rows),
            f=self.f[idx],
            i=self.i[idx],
            allow=self.allow[idx],
            tenants=tuple(self.tenants[k] for k in rows) if self.tenants else (),
            sessions=sessions if sessions.count(None) < len(sessions) else (),
        )

    def kernel(self) -> Requests:
        """The kernel's view of the batch."""
        return Requests(self.f, self.i, self.allow)


#: Lists of ``allowed_jurisdictions`` remembered with their masks: at most this many, each of at most
#: ``ALLOW_MEMO_CODES`` codes (longer lists are matched each time, in O(codes + regions)); so the memo holds
#: at most 4096 x 32 short strings whatever arrives (a hostile flood of distinct lists cannot grow it).
ALLOW_MEMO_SIZE = 4096
ALLOW_MEMO_CODES = 32


def bit_words(row: Sequence[bool]) -> tuple[int, ...]:
    """A per-region bool row as int64 bit words (region j is bit j % 64 of word j // 64)."""
    words = [0] * ((len(row) + 63) // 64)
    for j, ok in enumerate(row):
        if ok:
            words[j >> 6] |= 1 << (j & 63)
    return tuple(w - (1 << 64) if w >= 1 << 63 else w for w in words)


@dataclass(slots=True)
class _AllowMasks:
    """``allowed_jurisdictions`` -> the bit words of the regions it admits (codes and tags match
    case-insensitively; a code that matches no region admits nothing)."""

    jurisdiction: tuple[str, ...]
    tags: tuple[frozenset[str], ...]
    memo: dict[tuple[str, ...] | None, tuple[int, ...]] = field(default_factory=dict)

    def words(self, allowed: tuple[str, ...] | None) -> tuple[int, ...]:
        """The mask words for ``allowed`` (None: every region)."""
        got = self.memo.get(allowed) if allowed is None or len(allowed) <= ALLOW_MEMO_CODES else None
        if got is not None:
            return got
        n = len(self.jurisdiction)
        if allowed is None:
            row = [True] * n
        else:
            codes = {c.upper() for c in allowed}
            row = [self.jurisdiction[j] in codes or bool(self.tags[j] & codes) for j in range(n)]
        got = bit_words(row)
        if allowed is None or len(allowed) <= ALLOW_MEMO_CODES:
            if len(self.memo) >= ALLOW_MEMO_SIZE:
                self.memo.clear()
            self.memo[allowed] = got
        return got


class Plan:
    """Static arrays and index maps derived from one topology."""

    def __init__(self, topology: Topology, *, policy: str = "score") -> None:
        """``policy`` is the pick rule, one of ``router.kernel.columns.POLICIES``: the router's score, or a
        baseline rule of ``carbon-router compare`` (the same mask, a different key)."""
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
        self.topology = topology
        self.policy = policy
        self.region_ids: tuple[str, ...] = tuple(r.id for r in topology.regions)
        self.node_ids: tuple[str, ...] = tuple(s.id for s in topology.service_nodes)
        self.region_index = topology.region_index()
        self.node_index = topology.node_index()
        self.model_ids: tuple[str, ...] = tuple(m.id for m in topology.models)
        self.model_index = {m: k + 1 for k, m in enumerate(self.model_ids)}
        R, S = len(self.region_ids), len(self.node_ids)
        self.n_regions = R
        self.rtt: FloatArray = np.array(
            [[topology.rtt(s, r) for r in topology.regions] for s in topology.service_nodes], dtype=np.float64
        ).reshape(S, R)
        self.home: IntArray = np.array(
            [self.region_index[s.home_region] for s in topology.service_nodes], dtype=np.int64
        )
        self.egress: FloatArray = np.array(
            [[topology.egress(a, b) for b in self.region_ids] for a in self.region_ids], dtype=np.float64
        ).reshape(R, R)
        #: USD per byte moved between regions (the kernel's unit); zero on the diagonal by construction
        self.egress_per_byte: FloatArray = np.ascontiguousarray(self.egress / 1e9)
        model_ok = np.ones((len(self.model_ids) + 1, R), dtype=np.bool_)
        for j, r in enumerate(topology.regions):
            if r.models:
                for mid in self.model_ids:
                    model_ok[self.model_index[mid], j] = mid in r.models
        self.model_ok: BoolArray = model_ok
        #: the kernel's form of ``model_ok``: one row of region bit words per model (row 0: none named)
        self.model_bits: IntArray = np.array([bit_words(row) for row in model_ok.tolist()], dtype=np.int64)
        self.wh_per_token = {m.id: m.wh_per_token for m in topology.models}
        self.ms_profile = {m.id: (m.base_ms, m.ms_per_token) for m in topology.models}
        self.allow = _AllowMasks(
            jurisdiction=tuple(r.jurisdiction.upper() for r in topology.regions),
            tags=tuple(frozenset(t.upper() for t in r.tags) for r in topology.regions),
        )
        self.n_words = (R + 63) // 64
        o = topology.objective
        self.scalars: FloatArray = np.zeros(SCALARS, dtype=np.float64)
        self.scalars[CARBON_USD_PER_TONNE] = o.carbon_usd_per_tonne
        self.scalars[RELOCATION_FIXED_USD] = o.relocation_fixed_usd
        self.scalars[REGIONAL_RTT_MS] = o.regional_rtt_ms
        self.scalars[BANDWIDTH_GBPS] = o.bandwidth_gbps
        self.scalars[CAPACITY_WINDOW_S] = o.capacity_window_s
        self.scalars[POLICY] = POLICIES.index(policy)
        self.scalars[SWITCH_MARGIN_USD] = o.switch_margin_usd
        self.scalars[SESSION_MIN_DWELL_S] = o.session_min_dwell_s
        self.scalars[SESSION_TTL_S] = o.session_ttl_s
        #: configured tenant id -> its index (router.budgets; other tenants are not budgeted)
        self.tenant_index = {t.id: k for k, t in enumerate(topology.tenants)}

    def kernel(self) -> PlanArrays:
        """The kernel's view of the plan."""
        return PlanArrays(self.rtt, self.home, self.egress_per_byte, self.model_bits, self.scalars)

    def request_row(self, req: RequestFields, *, ts: float, source: str, line: int | None = None) -> Row:
        """One request as kernel columns; raises InputError naming the field for unknown ids."""
        s = self.node_index.get(req.origin)
        if s is None:
            raise InputError(
                "unknown origin",
                source=source,
                line=line,
                field="origin",
                received=req.origin,
                expected=f"a service node id, one of {list(self.node_ids)}",
            )
        sr = -1
        if req.state_region is not None:
            got = self.region_index.get(req.state_region)
            if got is None:
                raise InputError(
                    "unknown state_region",
                    source=source,
                    line=line,
                    field="state_region",
                    received=req.state_region,
                    expected=f"a region id, one of {list(self.region_ids)}",
                )
            sr = got
        m = 0
        if req.model is not None:
            got_m = self.model_index.get(req.model)
            if got_m is None:
                raise InputError(
                    "unknown model",
                    source=source,
                    line=line,
                    field="model",
                    received=req.model,
                    expected=f"a model id, one of {list(self.model_ids)}",
                )
            m = got_m
        energy = req.energy_wh
        if energy is None:
            assert req.tokens is not None  # guaranteed by Request's validator
            assert req.model is not None
            energy = req.tokens * self.wh_per_token[req.model]
        if not energy <= MAX_ENERGY_WH:  # tokens x Wh/token can exceed what one request may draw
            raise InputError(
                "energy too large",
                source=source,
                line=line,
                field="tokens",
                received=req.tokens,
                expected=f"tokens x the model's Wh/token <= {MAX_ENERGY_WH:g} Wh",
            )
        compute = req.compute_ms
        if compute is None:
            compute = 0.0
            if req.model is not None and req.tokens is not None:
                base, per_token = self.ms_profile[req.model]
                compute = base + per_token * req.tokens
        e_nwh = round(energy * NWH_PER_WH)
        return (
            [ts, energy, req.latency_budget_ms, compute, float(req.payload_bytes), float(req.state_bytes)],
            [
                s,
                sr,
                int(req.state_pinned),
                m,
                max(1, e_nwh),
                self.tenant_index.get(req.tenant, -1) if req.tenant is not None else -1,
                -1,
                *self.allow.words(req.allowed_jurisdictions),
            ],
        )

    def arrays(self, reqs: Sequence[RequestIds], rows: Sequence[Row]) -> RequestArrays:
        """Stack prepared rows into contiguous kernel arrays."""
        n = len(rows)
        f = np.array([r[0] for r in rows], dtype=np.float64).reshape(n, REQ_F_COLS)
        ints = np.array([r[1] for r in rows], dtype=np.int64).reshape(n, REQ_I_COLS + self.n_words)
        return RequestArrays(
            ids=tuple(r.request_id for r in reqs),
            origins=tuple(r.origin for r in reqs),
            f=f,
            i=np.ascontiguousarray(ints[:, :REQ_I_COLS]),
            allow=np.ascontiguousarray(ints[:, REQ_I_COLS:]),
            tenants=tuple(r.tenant for r in reqs),
            sessions=_sessions(reqs),
        )


def _sessions(reqs: Sequence[RequestIds]) -> tuple[str | None, ...]:
    """The requests' ``session_id``s, or () when none has one (the kernel then needs no session slot)."""
    got = tuple(r.session_id for r in reqs)
    return got if any(s is not None for s in got) else ()
