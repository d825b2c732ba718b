"""The frozen plan: every array the kernel needs that does not change per message.

Built once from a Topology at start-up (style rule 4): index maps, RTT and egress matrices, model profiles,
and the table of jurisdiction masks. Also turns validated Requests into the kernel's request arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from router.errors import InputError
from router.models import MAX_ENERGY_WH
from router.topology import Topology

__all__ = ["BoolArray", "FloatArray", "IntArray", "Plan", "RequestArrays", "RequestFields", "RequestIds"]

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
    """A batch of requests in the kernel's fixed column order (see router.kernel)."""

    ids: tuple[str, ...]
    origins: tuple[str, ...]
    f: FloatArray  # (N, 6): t, energy_wh, budget_ms, compute_ms, payload_bytes, state_bytes
    i: IntArray  # (N, 6): origin, state_region, pinned, allow_idx, model_idx, energy_nwh

    def __len__(self) -> int:
        return len(self.ids)


#: Most distinct ``allowed_jurisdictions`` lists remembered as given; past it the memo starts again (the
#: masks themselves stay: one per distinct set of allowed regions, at most 2^R and in practice a handful).
ALLOW_MEMO_SIZE = 4096


@dataclass(slots=True)
class _AllowTable:
    """Rows of allowed-region masks, one per distinct set of allowed regions; row 0 allows all.

    Bounded under hostile input: a flood of requests with ever new ``allowed_jurisdictions`` lists only
    adds rows for new *masks* (codes that match no region give the all-false row), and the memo of lists
    as given is cleared when it reaches ``ALLOW_MEMO_SIZE``. ``array`` grows by doubling (rows past
    ``n_rows`` are unused), so adding a mask is amortised O(R).
    """

    jurisdiction: tuple[str, ...]
    tags: tuple[frozenset[str], ...]
    rows: dict[tuple[str, ...] | None, int] = field(default_factory=dict)
    by_mask: dict[bytes, int] = field(default_factory=dict)
    array: BoolArray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.bool_))
    n_rows: int = 0

    def index(self, allowed: tuple[str, ...] | None) -> int:
        """Row of the mask for ``allowed`` (None: all regions), built on first use."""
        got = self.rows.get(allowed)  # the common case: this exact list (or None) was seen before
        if got is not None:
            return got
        n = len(self.jurisdiction)
        if allowed is None:
            row = np.ones(n, dtype=np.bool_)
        else:
            codes = set(allowed)
            row = np.array(
                [self.jurisdiction[j] in codes or bool(self.tags[j] & codes) for j in range(n)],
                dtype=np.bool_,
            )
        key = row.tobytes()
        index = self.by_mask.get(key)
        if index is None:
            index = self._add(row)
            self.by_mask[key] = index
        if len(self.rows) >= ALLOW_MEMO_SIZE:
            self.rows = {None: self.rows[None]} if None in self.rows else {}
        self.rows[allowed] = index
        return index

    def _add(self, row: BoolArray) -> int:
        if self.n_rows == self.array.shape[0]:
            grown = np.zeros((max(4, 2 * self.n_rows), len(row)), dtype=np.bool_)
            if self.n_rows:
                grown[: self.n_rows] = self.array[: self.n_rows]
            self.array = grown
        self.array[self.n_rows] = row
        self.n_rows += 1
        return self.n_rows - 1


class Plan:
    """Static arrays and index maps derived from one topology."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
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
        self.wh_per_token = {m.id: m.wh_per_token for m in topology.models}
        self.ms_profile = {m.id: (m.base_ms, m.ms_per_token) for m in topology.models}
        self.allow = _AllowTable(
            jurisdiction=tuple(r.jurisdiction for r in topology.regions),
            tags=tuple(frozenset(r.tags) for r in topology.regions),
        )
        self.allow.index(None)
        o = topology.objective
        self.scalars: FloatArray = np.array(
            [
                o.carbon_usd_per_tonne,
                o.relocation_fixed_usd,
                o.regional_rtt_ms,
                o.bandwidth_gbps,
                o.capacity_window_s,
            ],
            dtype=np.float64,
        )

    def request_row(
        self, req: RequestFields, *, ts: float, source: str, line: int | None = None
    ) -> tuple[list[float], list[int]]:
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
            assert req.tokens is not None and req.model is not None  # guaranteed by Request's validator
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
            [s, sr, int(req.state_pinned), self.allow.index(req.allowed_jurisdictions), m, max(1, e_nwh)],
        )

    def arrays(
        self, reqs: Sequence[RequestIds], rows: Sequence[tuple[list[float], list[int]]]
    ) -> RequestArrays:
        """Stack prepared rows into contiguous kernel arrays."""
        n = len(rows)
        f = np.array([r[0] for r in rows], dtype=np.float64).reshape(n, 6)
        i = np.array([r[1] for r in rows], dtype=np.int64).reshape(n, 6)
        return RequestArrays(
            ids=tuple(r.request_id for r in reqs), origins=tuple(r.origin for r in reqs), f=f, i=i
        )
