"""A worker's health on its web port and the metrics topic (README.md, "Metrics and dashboards").

- every second: the gauges of signal age (on the router's event clock and on the wall clock,
  router/ages.py) and placed load per region, shares version and leadership, and the position of every
  partition the data plane and the state feed read (``streams.stall``);
- every 2.5 s: one metadata request to the broker (``carbon_router_broker_up``, and one log line when the
  broker stops and starts answering);
- every ``metrics_interval_s``: the JSON metrics snapshot on ``router.metrics``, keyed by worker id;
- every 30 s: the C heap's free pages returned to the system (``streams.memory``);
- ``/metrics``: the Prometheus exposition; ``/healthz``: the worker's progress, 503 naming every stalled
  partition, else 200.

Nothing here may stop the worker: a failed probe or snapshot is counted and logged.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import faust
import structlog

from router.ages import ages_at, router_clock
from router.decider import Decider
from streams.codec import encode
from streams.dataplane import DataPlane
from streams.leadership import Leadership
from streams.memory import TRIM_INTERVAL_S, trim_heap
from streams.metrics import Metrics
from streams.settings import Settings
from streams.stall import StallWatch, sample
from streams.statefeed import StateFeed

__all__ = ["Health", "add_health_pages", "add_health_timers", "add_metrics_publisher"]

log = structlog.get_logger("carbon_router.control")

#: How long the broker probe waits for a metadata answer before it says the broker is down, and how often
#: it asks (longer than the wait, so that probes never overlap).
_PROBE_TIMEOUT_S = 2.0
_PROBE_INTERVAL_S = 2.5


class Health:
    """The samples, the probe and the pages of one worker's health."""

    def __init__(
        self,
        settings: Settings,
        live: Decider,
        metrics: Metrics,
        dataplane: DataPlane,
        statefeed: StateFeed,
        leadership: Leadership,
        intake: Any = None,
    ) -> None:
        self.settings = settings
        #: the group's reader of the state and provider topics (streams.intake.Intake), when it runs
        self.intake = intake
        self.live = live
        self.metrics = metrics
        self.dataplane = dataplane
        self.statefeed = statefeed
        self.leadership = leadership
        self.watch = StallWatch(settings.stall_timeout_s)
        #: wall time the broker stopped answering (None while it answers)
        self._outage_since: float | None = None
        #: session evictions already counted
        self._evictions = 0

    async def sample_gauges(self) -> None:
        """Shares version, leadership, each region's placed load and signal age (on the router's event clock
        and on the wall clock, router/ages.py), the tenants' budgets and the sessions."""
        live, metrics = self.live, self.metrics
        now = time.time()
        st = live.scorer.state
        metrics.shares_version.set(live.shares_version)
        metrics.is_leader.set(
            int(self.leadership.is_leader)
        )  # back to 0 when leadership moves to another worker
        load_kw = live.scorer.windows.used_wh() * 3.6 / live.objective.capacity_window_s
        clock = router_clock(live.event_clock)
        ages = ages_at(st, clock).tolist() if clock is not None else [math.nan] * live.plan.n_regions
        wall_ages = st.signal_ages(now).tolist()
        for j, region in enumerate(live.plan.region_ids):
            metrics.region_load.labels(region).set(float(load_kw[j]))
            if ages[j] == ages[j]:  # not NaN: a value in effect on the router's event clock
                metrics.signal_age.labels(region).set(ages[j])
            if wall_ages[j] == wall_ages[j]:  # not NaN: the region has a signalled value
                metrics.signal_wall_age.labels(region).set(wall_ages[j])
        budgets, sessions = live.scorer.budgets, live.scorer.sessions
        if budgets.ids:  # the windows slide in event time: as of the latest request decided
            at = min(now, live.event_clock) if live.event_clock > 0 else now
            metrics.record_tenants(
                budgets.placed_g(at).tolist(), budgets.left_g(at).tolist(), budgets.nu().tolist()
            )
        metrics.sessions_held.set(len(sessions))
        if live.seen is not None:
            metrics.dedup_ids.set(len(live.seen))
            metrics.dedup_bytes.set(live.seen.held_bytes)
        if sessions.evicted > self._evictions:
            metrics.session_evictions.inc(sessions.evicted - self._evictions)
            self._evictions = sessions.evicted

    async def sample_positions(self) -> None:
        """One stall sample of every partition the data plane, the state feed and the intake hold."""
        now = time.monotonic()
        await sample(self.watch, "dataplane", self.dataplane.consumer, now)
        await sample(self.watch, "statefeed", self.statefeed.consumer, now)
        if self.intake is not None:
            await sample(self.watch, "intake", self.intake.consumer, now)

    async def probe_broker(self) -> None:
        """``carbon_router_broker_up`` and one log line when the broker stops and starts answering."""
        metrics = self.metrics
        client = getattr(self.dataplane.producer, "client", None)
        if client is None:
            return
        try:
            await asyncio.wait_for(client.fetch_all_metadata(), _PROBE_TIMEOUT_S)
        except Exception as exc:
            metrics.broker_up.set(0)
            metrics.broker_errors.labels("metadata").inc()
            if self._outage_since is None:
                self._outage_since = time.time()
                log.warning("broker_unreachable", error=repr(exc)[:200])
            return
        metrics.broker_up.set(1)
        if self._outage_since is not None:
            log.warning("broker_reachable", outage_s=round(time.time() - self._outage_since, 3))
            self._outage_since = None

    async def publish_snapshot(self, topic: Any) -> None:
        """The JSON metrics snapshot on ``topic``, keyed by worker id; a failure is counted and logged."""
        live, metrics = self.live, self.metrics
        snap = metrics.snapshot(
            {"shares_version": live.shares_version, "signals_version": live.scorer.state.version}
        )
        try:
            await topic.send(key=self.settings.worker_id.encode(), value=encode(snap))
        except Exception as exc:
            metrics.broker_errors.labels("metrics").inc()
            log.warning("metrics_publish_failed", error=repr(exc))

    def report(self) -> tuple[dict[str, Any], int]:
        """The ``/healthz`` body and its HTTP status (503 when a partition is stalled)."""
        live, dataplane, statefeed = self.live, self.dataplane, self.statefeed
        stalled = [
            {
                "reader": x.reader,
                "topic": x.topic,
                "partition": x.partition,
                "lag": x.lag,
                "for_s": x.stalled_s,
            }
            for x in self.watch.stalled(time.monotonic())
        ]
        body = {
            "ok": not stalled,
            "stalled": stalled,
            "skipped_batches": self.metrics.skipped_total(),
            "worker_id": self.settings.worker_id,
            "batches": dataplane.batches,
            "signals_version": live.scorer.state.version,
            "shares_version": live.shares_version,
            "forecasts_version": live.scorer.forecasts.version,
            "partitions": dataplane.assigned,
            "capacity_share": live.scorer.state.capacity_share,
            "state_caught_up": statefeed.caught_up.is_set(),
        }
        return body, 503 if stalled else 200


def add_health_timers(app: faust.App, health: Health) -> None:
    """The 1 s gauge and stall samples, the broker probe and the heap trim."""

    @app.timer(1.0)  # type: ignore[untyped-decorator]  # faust is untyped
    async def signal_ages() -> None:
        await health.sample_gauges()

    @app.timer(1.0)  # type: ignore[untyped-decorator]  # faust is untyped
    async def stall_sample() -> None:
        await health.sample_positions()

    @app.timer(_PROBE_INTERVAL_S)  # type: ignore[untyped-decorator]  # faust is untyped
    async def broker_probe() -> None:
        await health.probe_broker()

    @app.timer(TRIM_INTERVAL_S)  # type: ignore[untyped-decorator]  # faust is untyped
    async def heap_trim() -> None:
        took = trim_heap()
        if took is not None:
            health.metrics.heap_trim.observe(took)


def add_metrics_publisher(app: faust.App, health: Health, topic: Any, interval_s: float) -> None:
    """The metrics snapshot on ``topic`` every ``interval_s``."""

    @app.timer(interval_s)  # type: ignore[untyped-decorator]  # faust is untyped
    async def publish_metrics() -> None:
        await health.publish_snapshot(topic)


def add_health_pages(app: faust.App, health: Health) -> None:
    """``/metrics`` and ``/healthz`` on the worker's web port."""

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(health.metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        body, status = health.report()
        return web.json(body, status=status)
