"""The decider: the one policy that the live worker and the offline replay both drive.

It holds the plan, the kernel's inputs (region state, forecasts, capacity windows, duals) and applies to
them, in one way for both: grid signals value by value into each region's value history
(``router.state``), region statuses, forecasts (``router.forecast``) and capacity duals (newer versions
only). ``decide`` places a batch (dedup of repeated request ids when ``dedup_size > 0``, event-time order,
one kernel call, the placement messages and their bytes); ``resolve_input`` builds the capacity LP's input
from the requests of the last ``demand_window_s`` and applies the skip rule. What differs between live and
replay is only what drives it: the replay feeds events and requests from files in event time
(``router.replay``), a worker feeds them from Kafka as they arrive (``streams/``). docs/architecture.md
follows one request and one signal through it.

Live, ``decide`` gets the router's clock: the capacity windows slide with ``min(t, clock)`` and the event
clock that dates the re-solve's demand window never runs ahead of it (router/clock.py).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import orjson

from router.columnar import MIN_BATCH, encode_columns
from router.dedup import DedupMemory
from router.demand import build_resolve_input, uncontended
from router.encode import encode_placement, placements
from router.kernel.columns import MU, T
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.placed import DecisionColumns, Placements
from router.placement import PlacementMessage
from router.plan import Plan, RequestArrays, RequestIds, Row
from router.resolve import ResolveInput
from router.scoring import Scorer
from router.sessions import SessionEntry
from router.topology import Topology

__all__ = ["Decided", "Decider"]


@dataclass(frozen=True, slots=True)
class Decided:
    """Placements of one batch in input order, as dicts (parsed on demand; ``router.placed``) and as the
    message values to publish, and how many came from the dedup memory (a repeat gets the remembered value
    byte for byte)."""

    placements: Placements
    values: list[bytes]
    repeated: int
    #: the state of every session the batch's new decisions touched, as ``router.sessions`` records
    #: (session id, message value); live, published with the placements (``session_record``)
    sessions: list[tuple[str, bytes]] = field(default_factory=list)


class Decider:
    """Plan + kernel state + dedup memory + demand window."""

    def __init__(
        self, topology: Topology, *, dedup_size: int = 0, explain: bool = False, policy: str = "score"
    ) -> None:
        """``explain`` adds ``runner_up`` and ``terms`` to every placement; ``policy`` is the pick rule
        (``router.kernel.columns.POLICIES``: the router's score unless ``carbon-router compare`` says
        otherwise)."""
        self.plan = Plan(topology, policy=policy)
        self.explain = explain
        self.scorer = Scorer(self.plan)
        self.objective = topology.objective
        #: request_id -> the published placement value (router/dedup.py); None: dedup off
        self.seen: DedupMemory | None = DedupMemory(dedup_size) if dedup_size > 0 else None
        self._recent: deque[RequestArrays] = deque()
        self.shares_version = 0
        #: the latest request time decided, never ahead of the router's clock
        self.event_clock = 0.0

    # -- state -------------------------------------------------------------------------------------------
    def apply_signal(self, sig: GridSignal) -> bool:
        """Apply a validated signal of a known region (``RegionState.apply_signal``)."""
        return self.scorer.state.apply_signal(sig)

    def apply_status(self, status: RegionStatus) -> bool:
        """Apply a region status in event time; False when it is older than the latest one."""
        return self.scorer.state.apply_status(status)

    def apply_forecast(self, forecast: GridForecast) -> bool:
        """Keep a region's forecast; False when the region holds a newer one."""
        return self.scorer.forecasts.apply(forecast)

    def set_duals(
        self, version: int, mu_usd_per_wh: Sequence[float], nu_usd_per_g: Sequence[float] | None = None
    ) -> bool:
        """Install the duals of shares ``version`` (capacity ``mu`` per region; the tenants' ``nu`` per
        configured tenant, none: all 0); False when it is not newer than the installed one."""
        if version <= self.shares_version:
            return False
        self.scorer.state.set_duals(np.asarray(mu_usd_per_wh, dtype=np.float64))
        nu = (
            np.zeros(len(self.scorer.budgets.ids))
            if not nu_usd_per_g
            else np.asarray(nu_usd_per_g, np.float64)
        )
        if len(nu) == len(self.scorer.budgets.ids):
            self.scorer.budgets.set_nu(nu)
        self.shares_version = version
        return True

    # -- decisions ---------------------------------------------------------------------------------------
    def decide(
        self,
        reqs: Sequence[RequestIds],
        rows: Sequence[Row],
        *,
        decided_at: float | None = None,
        clock: float = math.inf,
    ) -> Decided:
        """``decide_columns`` of the requests' kernel rows (``Plan.request_row`` or ``router.fastrow``)
        stacked by ``Plan.arrays``."""
        return self.decide_columns(self.plan.arrays(reqs, rows), decided_at=decided_at, clock=clock)

    def decide_columns(
        self, batch: RequestArrays, *, decided_at: float | None = None, clock: float = math.inf
    ) -> Decided:
        """One placement per request of ``batch`` (input order); repeats of a recent request_id get its
        first decision, and a second copy in the batch the first copy's.

        The new requests are decided in event-time order (stable), with one kernel call. ``batch`` comes
        from ``Plan.arrays`` or ``router.batchrow``; ``decided_at`` None dates each placement at its event
        time (replay); ``clock`` is the router's clock (live).
        """
        ids = batch.ids
        n = len(ids)
        out: list[PlacementMessage | None] = [None] * n
        values: list[bytes | None] = [None] * n
        fresh, first = self._fresh(ids, out, values)
        touched: list[SessionEntry] = []
        columns: list[DecisionColumns] = []
        if fresh:
            ts = batch.f[:, T] if len(fresh) == n else batch.f[fresh, T]
            order = np.argsort(ts, kind="stable")  # event-time order inside the batch
            if len(fresh) < n or (order[1:] < order[:-1]).any():
                fresh = np.asarray(fresh, dtype=np.intp)[order].tolist()
                batch = batch.take(fresh)
            columns = self._place(batch, fresh, out, values, decided_at, clock)
            self._note(batch, clock)
            touched = self.scorer.sessions.entries(batch.sessions) if batch.sessions else []
        if None in values:
            for k, rid in enumerate(ids):
                if values[k] is None:  # a second copy inside this batch: counted from its dict
                    values[k] = values[first[rid]]
                    out[k] = out[first[rid]] or cast(PlacementMessage, orjson.loads(cast(bytes, values[k])))
        loose: list[int] | None = None  # the placements no columns cover (None: all)
        if columns:
            in_columns = set(fresh) if len(fresh) < n else None
            loose = [] if in_columns is None else [k for k in range(n) if k not in in_columns]
        placed = Placements(list(ids), cast(list[bytes], values), out, columns, loose)
        return Decided(
            placements=placed,
            values=placed.values,
            repeated=n - len(fresh),
            sessions=[(e[0], self.session_record(e)) for e in touched],
        )

    def _fresh(
        self, ids: Sequence[str], out: list[PlacementMessage | None], values: list[bytes | None]
    ) -> tuple[list[int], dict[str, int]]:
        """The requests to decide (the first copy of each id the dedup memory does not hold) and each
        id's first copy; fills in the remembered placements of the others."""
        n = len(ids)
        seen = self.seen
        if seen is None or (len(set(ids)) == n and not any(map(seen.__contains__, ids))):
            return list(range(n)), {}
        fresh: list[int] = []
        first: dict[str, int] = {}
        for k, rid in enumerate(ids):
            prev = seen.get(rid)
            if prev is not None:
                values[k] = prev
                out[k] = cast(PlacementMessage, orjson.loads(prev))
            elif rid not in first:
                first[rid] = k
                fresh.append(k)
        return fresh, first

    def _place(
        self,
        batch: RequestArrays,
        fresh: list[int],
        out: list[PlacementMessage | None],
        values: list[bytes | None],
        decided_at: float | None,
        clock: float,
    ) -> list[DecisionColumns]:
        """Decide ``batch`` (the requests ``fresh`` of the input) with one kernel call and fill in their
        values, remembered: from the kernel's columns (``router.columnar``; returns those columns), or, for a
        batch of fewer than ``MIN_BATCH`` requests or one the columnar encoder declines, as dicts
        (``router.encode``; returns no columns)."""
        dec = self.scorer.decide(batch, horizon=clock)
        sv, explain = self.shares_version, self.explain
        encoded = (
            encode_columns(self.plan, batch, dec, shares_version=sv, decided_at=decided_at, explain=explain)
            if len(batch) >= MIN_BATCH
            else None
        )
        if encoded is None:
            decided = placements(
                self.plan, batch, dec, shares_version=sv, decided_at=decided_at, explain=explain
            )
            kept = [encode_placement(p) for p in decided]
            for k, p, value in zip(fresh, decided, kept, strict=True):
                out[k], values[k] = p, value
            if self.seen is not None:
                self.seen.keep_many(batch.ids, kept)
            return []
        for k, value in zip(fresh, encoded, strict=True):
            values[k] = value
        if self.seen is not None:
            self.seen.keep_many(batch.ids, encoded)
        return [DecisionColumns.of(self.plan, batch, dec, explain=self.explain)]

    def session_record(self, entry: SessionEntry) -> bytes:
        """A session's state as its ``router.sessions`` value (docs/contract.md, "Sessions")."""
        sid, region, since, last = entry
        return orjson.dumps(
            {"session_id": sid, "region": self.plan.region_ids[region], "since": since, "last_ts": last}
        )

    def restore_session(self, value: bytes) -> bool:
        """Take a ``router.sessions`` record read back (a reload); False when it is not one this topology
        can use (ignored) or the table holds a later state of the session."""
        try:
            d = orjson.loads(value)
            sid, region, since, last = d["session_id"], d["region"], d["since"], d["last_ts"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return False
        j = self.plan.region_index.get(region) if isinstance(region, str) else None
        numbers = all(type(x) in (int, float) and math.isfinite(x) for x in (since, last))
        if not isinstance(sid, str) or not sid or j is None or not numbers:
            return False
        return self.scorer.sessions.restore((sid, j, float(since), float(last)))

    def decide_requests(
        self, reqs: Sequence[Request], *, decided_at: float | None = None, clock: float = math.inf
    ) -> Decided:
        """``decide`` for validated requests (each at its ``ts``, else at ``clock``)."""
        rows = [
            self.plan.request_row(r, ts=r.ts if r.ts is not None else clock, source="request") for r in reqs
        ]
        return self.decide(reqs, rows, decided_at=decided_at, clock=clock)

    def _note(self, batch: RequestArrays, clock: float) -> None:
        """Keep a decided batch for the demand window and move the event clock."""
        self._recent.append(batch)
        self.event_clock = max(self.event_clock, min(float(batch.f[:, T].max()), clock))
        edge = self.event_clock - self.objective.demand_window_s
        while self._recent and float(self._recent[0].f[:, T].max()) < edge:
            self._recent.popleft()

    def forget(self, request_ids: Sequence[str]) -> None:
        """Drop decisions that were never published (their batch was abandoned)."""
        if self.seen is not None:
            for rid in request_ids:
                self.seen.forget(rid)

    def remember(self, p: PlacementMessage, value: bytes | None = None) -> bytes:
        """Keep a placement's message value (encoded here when not given), so that a later copy of its
        request gets the same decision; returns the value."""
        value = encode_placement(p) if value is None else value
        if self.seen is not None:
            self.seen.keep(p["request_id"], value)
        return value

    # -- re-solve ----------------------------------------------------------------------------------------
    def resolve_input(self, now: float | None = None, demand_scale: float = 1.0) -> ResolveInput | None:
        """The LP input from the requests decided with ``now - demand_window_s <= ts <= now`` (``now``
        defaults to the event clock), or None when there are none, or when no region can bind and the duals
        are already zero (the skip rule). ``demand_scale`` extrapolates a worker's share of the request
        partitions to the whole stream."""
        if not self._recent:
            return None
        now = self.event_clock if now is None else now
        f = np.concatenate([b.f for b in self._recent])
        keep = (f[:, T] >= now - self.objective.demand_window_s) & (f[:, T] <= now)
        if not keep.any():
            return None
        window = RequestArrays(
            ids=(),
            origins=(),
            f=np.ascontiguousarray(f[keep]),
            i=np.ascontiguousarray(np.concatenate([b.i for b in self._recent])[keep]),
            allow=np.ascontiguousarray(np.concatenate([b.allow for b in self._recent])[keep]),
        )
        inp = build_resolve_input(self.scorer, window, self.objective.demand_window_s)
        if demand_scale != 1.0:
            inp = replace(inp, demand_kw=np.ascontiguousarray(inp.demand_kw * demand_scale))
        if uncontended(inp) and not self.scorer.state.f[:, MU].any() and not self.scorer.budgets.nu().any():
            return None
        return inp
