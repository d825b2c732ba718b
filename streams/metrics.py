"""Live metrics of one worker: Prometheus series on /metrics and a JSON snapshot for ``router.metrics``.

Every label comes from a fixed set (topics, the model's field names, regions of the topology, filter names,
outcomes), so no message can create a series. Money can be negative (prices below zero are real): a signed
total is a pair of counters, ``<name>`` for the positive part and ``<name>_negative`` for the size of the
negative part, net = ``<name> - <name>_negative``; no counter is ever given a negative amount.
"""

from __future__ import annotations

import math
import time
from collections import Counter as Tally
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from router.analysis import summary_of
from router.models import INPUT_MODELS
from router.placed import Label, Placements
from router.placement import PlacementMessage
from router.totals import Totals

__all__ = ["FIELD_LABELS", "Metrics", "SignedTotal", "field_label"]

#: The ``field`` label of a dead letter: a top-level field of a message the router reads, "" when the whole
#: message is at fault, "other" for anything else (a nested path keeps its first part).
FIELD_LABELS = frozenset(
    {name for model in INPUT_MODELS.values() for name in model.model_fields}
    | {"points", "value", "key", "batch", "zone", "currency", "other", ""}
)


def field_label(field: str | None) -> str:
    """The bounded label for a dead letter's field (see ``FIELD_LABELS``)."""
    if not field:
        return ""
    head = field.split(".", 1)[0].split("[", 1)[0]  # "" for a quoted key such as ['x-1']: not a field
    return head if head and head in FIELD_LABELS else "other"


class SignedTotal:
    """A running total that may go down, as a pair of Prometheus counters (see the module docstring)."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.positive = Counter(name, documentation + " (positive part)", registry=registry)
        self.negative = Counter(
            name + "_negative", documentation + " (size of the negative part)", registry=registry
        )
        self.value = 0.0

    def add(self, amount: float) -> None:
        """Add a signed, finite amount (NaN and inf are ignored: they would poison the series)."""
        if not math.isfinite(amount):
            return
        self.value += amount
        if amount > 0:
            self.positive.inc(amount)
        elif amount < 0:
            self.negative.inc(-amount)


_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class BatchHistogram(Collector):
    """A Prometheus histogram fed a whole batch of observations with one NumPy call.

    ``prometheus_client.Histogram.observe`` takes one value under a lock (about 1 us each); a batch of
    4,096 decisions would spend 4 ms there. Exposed in the same text format as a ``Histogram``.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry):
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(sorted(buckets), dtype=np.float64)
        self.counts = np.zeros(len(self.bounds) + 1, dtype=np.int64)  # the last one is +Inf
        self.sum = 0.0
        registry.register(self)

    def observe_many(self, values: Sequence[float] | np.ndarray) -> None:
        """Count every value in its bucket (``le``: a value equal to a bound counts in that bucket)."""
        v = np.asarray(values, dtype=np.float64)
        if v.size:
            self.counts += np.bincount(
                np.searchsorted(self.bounds, v, side="left"), minlength=len(self.counts)
            )
            self.sum += float(v.sum())

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """The histogram family, cumulative buckets as Prometheus expects."""
        cum = np.cumsum(self.counts).tolist()
        les = [floatToGoString(b) for b in self.bounds.tolist()]  # type: ignore[no-untyped-call]  # untyped lib
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=[*zip(les, cum[:-1], strict=True), ("+Inf", cum[-1])],
            sum_value=self.sum,
        )


class Metrics:
    """Every series the worker exports, in its own registry (several workers may share a process in tests)."""

    def __init__(
        self, worker_id: str, *, carbon_usd_per_tonne: float = 0.0, tenants: Sequence[str] = ()
    ) -> None:
        """``tenants`` are the topology's budgeted tenants: the only ``tenant`` labels (docs/model.md)."""
        self.worker_id = worker_id
        self.tenants = tuple(tenants)
        #: the topology's carbon price, for the summary's ``net_saved_usd``
        self.carbon_usd_per_tonne = carbon_usd_per_tonne
        self.registry = CollectorRegistry()
        self._decision_series(self.registry)
        self._money_series(self.registry)
        self._input_series(self.registry)
        self._state_series(self.registry)
        self._fleet_series(self.registry)
        #: every published placement, totalled by router.totals (the rules score and frontier use)
        self.totals = Totals()
        self.dead_letter_total = 0
        self.started = time.time()

    def _decision_series(self, r: CollectorRegistry) -> None:
        self.decisions = Counter(
            "carbon_router_decisions",
            "Placements published",
            ["status", "region", "layer", "reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "carbon_router_duplicate_requests", "Requests answered from memory", registry=r
        )
        self.latency = BatchHistogram(
            "carbon_router_decision_latency_seconds",
            "Request record timestamp to placement acknowledged by the broker",
            _LATENCY_BUCKETS,
            r,
        )
        self.batch_size = Histogram(
            "carbon_router_batch_size", "Requests per batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.door = Counter(
            "carbon_router_door_requests",
            "Requests through the synchronous door, by outcome",
            ["outcome"],
            registry=r,
        )
        self.door_seconds = Histogram(
            "carbon_router_door_seconds",
            "Time to answer a door call (body read to answer), one observation per call",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.loop_lag = Histogram(
            "carbon_router_event_loop_lag_seconds",
            "How late the event loop ran the freeze watch's 50 ms timer: time it was blocked or starved",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=r,
        )
        self.gc_pause = Histogram(
            "carbon_router_gc_pause_seconds",
            "Time each garbage collection stopped the worker, by generation (streams/worker.py time_gc)",
            ["generation"],
            buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )
        self.heap_trim = Histogram(
            "carbon_router_heap_trim_seconds",
            "Time each return of the C heap's free pages to the system took (streams/memory.py)",
            buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "carbon_router_batch_seconds",
            "Decode + kernel + encode time per batch",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def _money_series(self, r: CollectorRegistry) -> None:
        self.saved_usd = SignedTotal("carbon_router_saved_usd", "Energy cost saved against all-local", r)
        self.saved_carbon = SignedTotal(
            "carbon_router_saved_carbon_grams", "Marginal carbon saved against all-local", r
        )
        self.baseline_usd = SignedTotal(
            "carbon_router_baseline_energy_usd", "All-local energy cost of placed requests", r
        )
        self.placed_usd = SignedTotal("carbon_router_placed_energy_usd", "Energy cost as placed", r)
        self.baseline_carbon = Counter(
            "carbon_router_baseline_carbon_grams", "All-local marginal carbon of placed requests", registry=r
        )
        self.placed_carbon = Counter(
            "carbon_router_placed_carbon_grams", "Marginal carbon as placed", registry=r
        )

    def _input_series(self, r: CollectorRegistry) -> None:
        self.dead_letters = Counter(
            "carbon_router_dead_letters", "Messages dead-lettered", ["topic", "field"], registry=r
        )
        self.signals = Counter("carbon_router_signals", "Grid signals by outcome", ["outcome"], registry=r)
        self.provider_records = Counter(
            "carbon_router_provider_records",
            "Raw provider payloads (streams.adapters) by provider and outcome",
            ["provider", "outcome"],
            registry=r,
        )
        self.shares = Counter(
            "carbon_router_shares", "router.shares records judged, by outcome", ["outcome"], registry=r
        )
        self.skipped_batches = Counter(
            "carbon_router_skipped_batches",
            "Batches the Kafka client could not decode, dead-lettered and skipped",
            ["topic", "reader"],
            registry=r,
        )

    def _state_series(self, r: CollectorRegistry) -> None:
        self.lag = Gauge(
            "carbon_router_consumer_lag", "Records behind the end, per partition", ["partition"], registry=r
        )
        self.signal_age = Gauge(
            "carbon_router_signal_age_seconds",
            "Age on the router's event clock (the latest request's event time) of the older of each region's "
            "price and marginal carbon values in effect",
            ["region"],
            registry=r,
        )
        self.signal_wall_age = Gauge(
            "carbon_router_signal_wall_age_seconds",
            "Wall-clock age of the older of each region's latest signalled price and marginal carbon values",
            ["region"],
            registry=r,
        )
        self.resolve_seconds = Histogram(
            "carbon_router_resolve_seconds", "Capacity re-solve time", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.resolves = Counter(
            "carbon_router_resolves", "Capacity re-solves by outcome", ["outcome"], registry=r
        )
        self.metrics_errors = Counter(
            "carbon_router_metrics_errors", "Metric updates that failed (the data plane went on)", registry=r
        )
        self.broker_errors = Counter(
            "carbon_router_broker_errors", "Broker operations that failed", ["op"], registry=r
        )
        self.region_load = Gauge(
            "carbon_router_region_load_kw",
            "IT load this worker placed per region, over the capacity window",
            ["region"],
            registry=r,
        )
        self.is_leader = Gauge(
            "carbon_router_is_leader", "1 on the worker that runs the re-solve", registry=r
        )
        self.shares_version = Gauge("carbon_router_shares_version", "Version of the duals in use", registry=r)
        self.broker_up = Gauge(
            "carbon_router_broker_up", "1 while the broker answers a metadata request within 2 s", registry=r
        )

    def _fleet_series(self, r: CollectorRegistry) -> None:
        """Tenant budgets (one child per configured tenant, made now: no message can add one) and sessions."""
        self.tenant_placed = Gauge(
            "carbon_router_tenant_placed_carbon_grams",
            "Marginal carbon this worker placed for each budgeted tenant in its window",
            ["tenant"],
            registry=r,
        )
        self.tenant_left = Gauge(
            "carbon_router_tenant_budget_left_grams",
            "Budget left in each budgeted tenant's window, this worker's share (negative: past it, allow)",
            ["tenant"],
            registry=r,
        )
        self.tenant_dual = Gauge(
            "carbon_router_tenant_dual_usd_per_gram",
            "Each budgeted tenant's carbon-budget dual in use",
            ["tenant"],
            registry=r,
        )
        for t in self.tenants:
            for g in (self.tenant_placed, self.tenant_left, self.tenant_dual):
                g.labels(t).set(0.0)
        self.session_moves = Counter(
            "carbon_router_session_moves", "Placements that moved their session to another region", registry=r
        )
        self.session_evictions = Counter(
            "carbon_router_session_evictions",
            "Sessions dropped to keep the session table bounded",
            registry=r,
        )
        self.sessions_held = Gauge("carbon_router_sessions", "Sessions in the table", registry=r)
        self.dedup_ids = Gauge("carbon_router_dedup_ids", "Request ids in the dedup memory", registry=r)
        self.dedup_bytes = Gauge(
            "carbon_router_dedup_bytes", "Bytes of the pages that hold the dedup memory's values", registry=r
        )

    def record_tenants(self, placed_g: Sequence[float], left_g: Sequence[float], nu: Sequence[float]) -> None:
        """Set the tenant gauges, one value per configured tenant in topology order."""
        for t, p, left, n in zip(self.tenants, placed_g, left_g, nu, strict=True):
            self.tenant_placed.labels(t).set(p)
            self.tenant_left.labels(t).set(left)
            self.tenant_dual.labels(t).set(n)

    def record_placements(
        self,
        placements: Sequence[PlacementMessage],
        produced_at_s: Sequence[float],
        *,
        latency_s: Sequence[float] | None = None,
    ) -> None:
        """Count published placements; ``produced_at_s`` are the request records' timestamps, and the
        decision latency is measured from them to now unless ``latency_s`` gives it (counted later)."""
        if len(placements) != len(produced_at_s) or len(placements) != len(latency_s or placements):
            raise ValueError("one record timestamp per placement expected")
        if latency_s is None:
            latency = np.maximum(0.0, time.time() - np.asarray(produced_at_s, dtype=np.float64))
        else:
            latency = np.asarray(latency_s, dtype=np.float64)
        self.latency.observe_many(latency)
        keys: Tally[Label] = Tally()
        moved = 0
        loose: Sequence[PlacementMessage] = placements
        if isinstance(placements, Placements):  # the new decisions from their columns, no dicts
            for block in placements.columns:
                for label, n in block.labels():
                    keys[label] += n
                moved += block.session_moves
            loose = placements.loose
        for p in loose:
            keys[(p["status"], p["region"] or "none", p["layer"] or "none", p["reason"])] += 1
        for (status, region, layer, reason), n in keys.items():  # one locked increment per label set
            self.decisions.labels(status, region, layer, reason).inc(n)
        moved += sum(1 for p in loose if p.get("session_moved"))
        if moved:
            self.session_moves.inc(moved)
        batch = Totals()
        batch.add(placements)
        self.totals.merge(batch)
        base_usd, base_g = batch.compared_baseline_nusd / 1e9, batch.compared_baseline_ug / 1e6
        self.saved_usd.add(batch.saved_energy_usd)
        self.saved_carbon.add(batch.saved_carbon_g)
        self.baseline_usd.add(base_usd)
        self.placed_usd.add(batch.compared_cost_nusd / 1e9)
        if base_g > 0:  # marginal carbon is never negative
            self.baseline_carbon.inc(base_g)
        if batch.compared_carbon_ug > 0:
            self.placed_carbon.inc(batch.compared_carbon_ug / 1e6)

    def record_dead_letter(self, topic: str, field: str | None) -> None:
        """Count one dead letter."""
        self.dead_letters.labels(topic, field_label(field)).inc()
        self.dead_letter_total += 1

    def skipped_total(self) -> int:
        """Batches skipped so far, over every topic and reader."""
        return int(
            sum(
                s.value
                for f in self.skipped_batches.collect()
                for s in f.samples
                if s.name.endswith("_total")
            )
        )

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The periodic JSON snapshot published on ``router.metrics``: counts, and the totals as ``score``
        summarises them (router.analysis.summary_of; the money totals exact, see router/totals.py)."""
        up = max(1e-9, time.time() - self.started)
        t = self.totals
        none = {"none": t.rejected} if t.rejected else {}
        return {
            "worker_id": self.worker_id,
            "ts": time.time(),
            "uptime_s": up,
            "decisions": t.requests,
            "placed": t.placed,
            "rejected": t.rejected,
            "dead_letters": self.dead_letter_total,
            "decisions_per_s": t.requests / up,
            "by_region": dict(sorted({**t.by_region, **none}.items())),
            "by_layer": dict(sorted({**t.by_layer, **none}.items())),
            "saved_energy_usd": t.saved_energy_usd,
            "saved_carbon_g": t.saved_carbon_g,
            "totals": self.summary(),
            **(extra or {}),
        }

    def summary(self) -> dict[str, Any]:
        """The totals in the shape of ``score``'s summary (router.analysis.Summary)."""
        return summary_of(self.totals, carbon_usd_per_tonne=self.carbon_usd_per_tonne).as_dict()
