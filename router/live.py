"""The live router's decision state, with no I/O: the streams layer feeds it batches and region updates.

``LiveRouter`` holds the plan and the kernel inputs, remembers recent decisions so that a request seen twice
(redelivery, or a client sending it twice) gets the same placement, and keeps the recent requests the
leader's capacity re-solve estimates demand from. Region updates arrive as merged snapshots (the latest
value of each kind per region in event time, each with its own ``ts`` and validity, and the count of signals
merged into them), so that every worker that applies the same snapshots holds the same state and the same
``signals_version`` as the offline replay. Forecasts are kept per region by ``generated_at``
(router.forecast).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from router.demand import build_resolve_input, uncontended
from router.encode import encode_placement, placements
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.plan import Plan, RequestArrays, RequestIds
from router.resolve import ResolveInput
from router.scoring import Scorer
from router.state import MU, VALUE_FIELDS
from router.topology import Topology

__all__ = ["Decided", "LiveRouter", "merge_signal"]


@dataclass(frozen=True, slots=True)
class Decided:
    """Placements of one batch in input order, as dicts and as the message values to publish, and how many
    came from the dedup memory (a repeat gets the remembered value byte for byte)."""

    placements: list[dict[str, Any]]
    values: list[bytes]
    repeated: int


_PROVENANCE = ("source", "estimated", "generated_at", "provider_zone")


def merge_signal(old: dict[str, Any] | None, sig: GridSignal) -> dict[str, Any] | None:
    """The region's merged snapshot after ``sig``, or None when every value ``sig`` carries is older than
    the snapshot's value of the same kind (the state's late-value rule, value by value).

    A snapshot holds, per value ``name`` it has seen, ``name``, ``name_ts`` and ``name_valid_for_s`` (None:
    the default validity), plus ``region``, ``ts`` (the latest), ``n`` (signals merged) and the latest
    signal's provenance fields.
    """
    merged = dict(old or {})
    changed = False
    for name in VALUE_FIELDS:
        value = getattr(sig, name)
        if value is None:
            continue
        prev_ts = merged.get(f"{name}_ts")
        if prev_ts is not None and sig.ts < prev_ts:
            continue
        merged[name] = value
        merged[f"{name}_ts"] = sig.ts
        merged[f"{name}_valid_for_s"] = sig.valid_for_s
        changed = True
    if not changed:
        return None
    merged["region"] = sig.region
    if sig.ts >= merged.get("ts", sig.ts):
        for key in _PROVENANCE:
            merged[key] = getattr(sig, key)
    merged["ts"] = max(sig.ts, float(merged.get("ts", sig.ts)))
    merged["n"] = int((old or {}).get("n", 0)) + 1
    return merged


def _full(r: RequestIds) -> Request:
    if not isinstance(r, Request):
        raise TypeError(f"decide needs rows for requests given as {type(r).__name__}, not Request")
    return r


class LiveRouter:
    """Plan + kernel state + dedup memory + demand window of one worker."""

    def __init__(self, topology: Topology, *, dedup_size: int = 100_000) -> None:
        self.plan = Plan(topology)
        self.scorer = Scorer(self.plan)
        self.objective = topology.objective
        self.dedup_size = dedup_size
        #: request_id -> the published placement value; bytes, not dicts: 100k dicts would be 300k objects
        #: for every full garbage collection to walk (measured: the dominant cost of a batch before)
        self._seen: OrderedDict[str, bytes] = OrderedDict()
        self._recent: deque[RequestArrays] = deque()
        self._signal_counts: dict[str, int] = {}
        self.shares_version = 0
        self.latest_ts = 0.0

    # -- region state -------------------------------------------------------------------------------
    def apply_snapshot(self, snapshot: dict[str, Any]) -> bool:
        """Apply a merged signal snapshot (see ``merge_signal``); False when it is not newer."""
        count = int(snapshot.get("n", 1))
        region = str(snapshot["region"])
        if self._signal_counts.get(region, 0) >= count:
            return False
        j = self.plan.region_index[region]
        state = self.scorer.state
        applied = False
        for name in VALUE_FIELDS:
            if snapshot.get(name) is None:
                continue
            ts = float(snapshot.get(f"{name}_ts", snapshot["ts"]))
            valid = snapshot.get(f"{name}_valid_for_s")
            applied |= state.apply_value(j, name, float(snapshot[name]), ts, valid)
        self._signal_counts[region] = count
        state.version = sum(self._signal_counts.values())
        return applied

    def apply_forecast(self, forecast: GridForecast) -> bool:
        """Keep a region's forecast in event time; False when the region holds a newer one."""
        return self.scorer.forecasts.apply(forecast)

    def apply_status(self, status: RegionStatus) -> bool:
        """Apply a region status in event time."""
        return self.scorer.state.apply_status(status)

    def set_duals(self, version: int, mu_usd_per_wh: Sequence[float]) -> bool:
        """Install the duals of shares ``version``; False when it is not newer than the installed one."""
        if version <= self.shares_version:
            return False
        self.scorer.state.set_duals(np.asarray(mu_usd_per_wh, dtype=np.float64))
        self.shares_version = version
        return True

    # -- decisions ---------------------------------------------------------------------------------
    def decide(
        self,
        reqs: Sequence[RequestIds],
        ts: Sequence[float],
        decided_at: float,
        rows: Sequence[tuple[list[float], list[int]]] | None = None,
    ) -> Decided:
        """One placement per request (input order); repeats of a recent request_id get its first decision.

        ``rows`` are the requests' kernel rows when the caller built them already (``Plan.request_row`` or
        ``router.fastrow``); without them every request must be a ``Request``.
        """
        n = len(reqs)
        out: list[dict[str, Any] | None] = [None] * n
        values: list[bytes | None] = [None] * n
        fresh: list[int] = []
        first_in_batch: dict[str, int] = {}
        for k, r in enumerate(reqs):
            prev = self._seen.get(r.request_id)
            if prev is not None:
                values[k] = prev
                out[k] = orjson.loads(prev)
            elif r.request_id in first_in_batch:
                continue  # filled from the first copy below
            else:
                first_in_batch[r.request_id] = k
                fresh.append(k)
        fresh.sort(key=lambda k: ts[k])  # event-time order inside the batch (stable)
        if fresh:
            batch = self.plan.arrays(
                [reqs[k] for k in fresh],
                [
                    rows[k]
                    if rows is not None
                    else self.plan.request_row(_full(reqs[k]), ts=ts[k], source="request")
                    for k in fresh
                ],
            )
            decided = placements(
                self.plan,
                batch,
                self.scorer.decide(batch),
                shares_version=self.shares_version,
                decided_at=decided_at,
            )
            for k, p in zip(fresh, decided, strict=True):
                out[k] = p
                values[k] = self.remember(p)
            self._recent.append(batch)
            self.latest_ts = max(self.latest_ts, float(batch.f[:, 0].max()))
            self._trim_recent()
        for k, r in enumerate(reqs):
            if out[k] is None:  # a second copy inside this batch
                first = first_in_batch[r.request_id]
                out[k], values[k] = out[first], values[first]
        return Decided(
            placements=[p for p in out if p is not None],
            values=[v for v in values if v is not None],
            repeated=n - len(fresh),
        )

    def forget(self, request_ids: Sequence[str]) -> None:
        """Drop decisions that were never published (their batch was abandoned)."""
        for rid in request_ids:
            self._seen.pop(rid, None)

    def remember(self, p: dict[str, Any], value: bytes | None = None) -> bytes:
        """Keep a placement (and its message value, encoded here when not given), so that a later copy of
        its request gets the same decision; returns the value."""
        # a right-sized copy: orjson's own result keeps a 4-8 KiB buffer behind a 700-byte value (measured
        # with tracemalloc: 100k remembered placements held 800 MB before this copy)
        value = b"%b" % (encode_placement(p) if value is None else value)
        if self.dedup_size > 0:
            self._seen[p["request_id"]] = value
            while len(self._seen) > self.dedup_size:
                self._seen.popitem(last=False)
        return value

    def _trim_recent(self) -> None:
        edge = self.latest_ts - self.objective.demand_window_s
        while self._recent and float(self._recent[0].f[:, 0].max()) <= edge:
            self._recent.popleft()

    # -- re-solve (leader) ---------------------------------------------------------------------------
    def resolve_input(self, demand_scale: float = 1.0) -> ResolveInput | None:
        """The LP input from the last ``demand_window_s`` of requests seen here (None when none, or when
        no region can bind and the duals are already zero). ``demand_scale`` extrapolates a worker's
        share of the request partitions to the whole stream."""
        if not self._recent:
            return None
        f = np.concatenate([b.f for b in self._recent])
        i = np.concatenate([b.i for b in self._recent])
        keep = f[:, 0] > self.latest_ts - self.objective.demand_window_s
        ids = tuple(x for b in self._recent for x in b.ids)
        window = RequestArrays(
            ids=tuple(x for x, k in zip(ids, keep, strict=True) if k),
            origins=(),
            f=np.ascontiguousarray(f[keep]),
            i=np.ascontiguousarray(i[keep]),
        )
        if not len(window.f):
            return None
        inp = build_resolve_input(self.scorer, window, self.objective.demand_window_s)
        if demand_scale != 1.0:
            inp = ResolveInput(
                group_keys=inp.group_keys,
                demand_kw=np.ascontiguousarray(inp.demand_kw * demand_scale),
                unit_usd_per_wh=inp.unit_usd_per_wh,
                reachable=inp.reachable,
                capacity_kw=inp.capacity_kw,
            )
        if uncontended(inp) and not self.scorer.state.f[:, MU].any():
            return None
        return inp
