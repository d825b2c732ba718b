"""The control plane on faust-streaming: validation of signals and status, the leader's re-solve, the web.

- ``grid.signals`` / ``region.status``: a faust agent (one worker per record, through faust's consumer
  group) validates each record; a bad one is dead-lettered once, with its reason, and never changes state.
  Every worker's region state itself comes from ``streams.statefeed`` (the log, read by every worker).
- the leader alone re-solves the capacity LP every ``resolve_interval_s`` (in a child process,
  ``streams.solver``: the event loop and the data plane never wait for it) and publishes the result on
  ``router.shares``, which every worker's state feed applies.
- every worker publishes a metrics snapshot on ``router.metrics`` and serves ``/metrics`` and ``/healthz``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

import faust
import structlog

from router.decider import Decider
from streams.adapters import register_adapters
from streams.codec import (
    Clock,
    Rejected,
    check_region,
    dead_letter,
    decode_forecast,
    decode_signal,
    decode_status,
    encode,
)
from streams.dataplane import DataPlane
from streams.headers import forwarded
from streams.leadership import Leadership, Term, judge, next_seq, sign
from streams.metrics import Metrics
from streams.settings import Settings
from streams.solver import SolverProcess
from streams.stall import StallWatch, sample
from streams.statefeed import StateFeed
from streams.web import add_web_page

__all__ = ["build_app", "faust_app"]

log = structlog.get_logger("carbon_router.control")

#: How long the broker probe waits for a metadata answer before it says the broker is down, and how often
#: it asks (longer than the wait, so that probes never overlap).
_PROBE_TIMEOUT_S = 2.0
_PROBE_INTERVAL_S = 2.5


def _credentials(s: Settings) -> Any:
    """faust credentials matching the settings (None for PLAINTEXT)."""
    from streams.settings import client_kwargs

    kw = client_kwargs(s)
    if s.security_protocol == "PLAINTEXT":
        return None
    ssl_context = kw.get("ssl_context")
    if s.security_protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=kw["sasl_plain_username"],
            password=kw["sasl_plain_password"],
            mechanism=kw["sasl_mechanism"],
            ssl_context=ssl_context,
        )
    return faust.SSLCredentials(ssl_context)


def faust_app(s: Settings, app_id: str, *, web: bool, partitions: int = 1) -> faust.App:
    """A faust app on the settings' cluster, credentials and timings; memory store, a throwaway datadir."""
    servers = ";".join(f"kafka://{h.strip()}" for h in (s.kafka_bootstrap_servers or "").split(","))
    return faust.App(
        app_id,
        broker=servers,
        broker_credentials=_credentials(s),
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="carbon-router-faust-"),
        web_enabled=web,
        web_host=s.web_host,
        web_bind=s.web_host,
        web_port=s.web_port,
        web_router_enabled=False,  # the web port serves /metrics, /healthz and the read-only page only
        web_tables_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=s.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=s.session_timeout_ms / 1000.0,
        broker_heartbeat_interval=s.heartbeat_interval_ms / 1000.0,
        producer_acks=-1,
        producer_compression_type=None if s.compression == "none" else s.compression,
        stream_wait_empty=False,
    )


def build_app(
    settings: Settings,
    live: Decider,
    metrics: Metrics,
    dataplane: DataPlane,
    statefeed: StateFeed,
    leadership: Leadership,
) -> faust.App:
    """The faust app of one worker, wired to its Decider, metrics and data plane."""
    s = settings
    app = faust_app(s, f"{s.group_id}-control", web=True)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    signals_topic = app.topic(s.topic_signals, partitions=1, **raw)
    status_topic = app.topic(s.topic_status, partitions=1, **raw)
    shares_topic = app.topic(s.topic_shares, partitions=1, **raw)
    forecasts_topic = app.topic(s.topic_forecasts, partitions=1, **raw)
    dlq_topic = app.topic(s.topic_dlq, **raw)
    metrics_topic = app.topic(s.topic_metrics, **raw)
    register_adapters(app, s, live.plan.topology, metrics, dlq_topic)
    solver = SolverProcess(
        live.plan.n_regions,
        penalty_usd_per_wh=live.objective.unserved_penalty_usd_per_wh,
        time_limit_s=s.resolve_time_limit_s,
    )

    names = s.forwarded_header_names

    async def reject(topic: str, key: bytes | None, value: bytes | None, rej: Rejected, ev: Any) -> None:
        msg = ev.message
        letter = dead_letter(
            value,
            rej,
            topic=topic,
            partition=msg.partition,
            offset=msg.offset,
            max_raw_bytes=s.max_message_bytes,
        )
        headers = [(k, v or b"") for k, v in forwarded(getattr(msg, "headers", None), names)]
        await dlq_topic.send(key=key, value=letter, headers=headers or None)
        metrics.record_dead_letter(topic, rej.field)
        log.info("message_rejected", topic=topic, field=rej.field, error=rej.error)

    async def check(topic: str, decode: Any, ev: Any) -> bool:
        """Validate one signal or status record; dead-letter it when bad. Never raises."""
        try:
            clock = Clock(time.time(), s.max_clock_skew_s)
            got = decode(ev.value, s.max_message_bytes, clock=clock, allow_extra=s.extra_fields == "ignore")
            if not isinstance(got, Rejected):
                got = check_region(got.region, live.plan) or got
            if isinstance(got, Rejected):
                await reject(topic, ev.key, ev.value, got, ev)
                return False
        except Exception as exc:  # one bad record never stops the agent
            log.error("record_check_failed", topic=topic, error=repr(exc))
            return False
        return True

    @app.agent(signals_topic)
    async def on_signal(stream: Any) -> None:
        async for ev in stream.events():
            ok = await check(s.topic_signals, decode_signal, ev)
            metrics.signals.labels("valid" if ok else "rejected").inc()

    @app.agent(status_topic)
    async def on_status(stream: Any) -> None:
        async for ev in stream.events():
            await check(s.topic_status, decode_status, ev)

    @app.agent(forecasts_topic)
    async def on_forecast(stream: Any) -> None:
        async for ev in stream.events():
            await check(s.topic_forecasts, decode_forecast, ev)

    @app.agent(shares_topic)
    async def on_shares(stream: Any) -> None:
        """Dead-letter shares that are forged, stale or invalid (a term not entered yet is waited for)."""
        async for ev in stream.events():
            try:
                verdict = judge(ev.value, leadership)
                deadline = time.monotonic() + s.session_timeout_ms / 1000.0
                while verdict.outcome == "ahead" and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    verdict = judge(ev.value, leadership)
                if verdict.outcome == "ahead":
                    verdict = type(verdict)(
                        "forged", problem="from an epoch this group never reached", field="epoch"
                    )
                metrics.shares.labels(verdict.outcome).inc()
                if verdict.outcome != "applied":
                    rej = Rejected(verdict.problem or verdict.outcome, verdict.field)
                    await reject(s.topic_shares, ev.key, ev.value, rej, ev)
            except Exception as exc:  # one bad record never stops the agent
                log.error("record_check_failed", topic=s.topic_shares, error=repr(exc))

    async def ready() -> None:
        """The state feed has read the state topics up to their ends as of start-up."""
        await statefeed.caught_up.wait()
        log.info("control_plane_ready", signals_version=live.scorer.state.version)

    dataplane.ready_hook = ready

    @app.timer(1.0)  # type: ignore[untyped-decorator]  # faust is untyped
    async def signal_ages() -> None:
        now = time.time()
        st = live.scorer.state
        metrics.shares_version.set(live.shares_version)
        metrics.is_leader.set(int(leadership.is_leader))  # back to 0 when leadership moves to another worker
        load_kw = live.scorer.windows.used_wh() * 3.6 / live.objective.capacity_window_s
        ages = st.signal_ages(now).tolist()
        for j, region in enumerate(live.plan.region_ids):
            metrics.region_load.labels(region).set(float(load_kw[j]))
            if ages[j] == ages[j]:  # not NaN: the region has a signalled value
                metrics.signal_age.labels(region).set(ages[j])

    watch = StallWatch(s.stall_timeout_s)

    @app.timer(1.0)  # type: ignore[untyped-decorator]  # faust is untyped
    async def stall_sample() -> None:
        now = time.monotonic()
        await sample(watch, "dataplane", dataplane.consumer, now)
        await sample(watch, "statefeed", statefeed.consumer, now)

    outage_since: list[float | None] = [None]

    @app.timer(_PROBE_INTERVAL_S)  # type: ignore[untyped-decorator]  # faust is untyped
    async def broker_probe() -> None:
        """``carbon_router_broker_up`` and one log line when the broker stops and starts answering."""
        client = getattr(dataplane.producer, "client", None)
        if client is None:
            return
        try:
            await asyncio.wait_for(client.fetch_all_metadata(), _PROBE_TIMEOUT_S)
        except Exception as exc:
            metrics.broker_up.set(0)
            metrics.broker_errors.labels("metadata").inc()
            if outage_since[0] is None:
                outage_since[0] = time.time()
                log.warning("broker_unreachable", error=repr(exc)[:200])
            return
        metrics.broker_up.set(1)
        if outage_since[0] is not None:
            log.warning("broker_reachable", outage_s=round(time.time() - outage_since[0], 3))
            outage_since[0] = None

    duty = _LeaderDuty(s, live, metrics, dataplane, leadership, shares_topic, solver, statefeed)

    @app.timer(live.objective.resolve_interval_s)  # type: ignore[untyped-decorator]  # faust is untyped
    async def resolve() -> None:
        await duty.resolve()

    @app.timer(s.metrics_interval_s)  # type: ignore[untyped-decorator]  # faust is untyped
    async def publish_metrics() -> None:
        snap = metrics.snapshot(
            {"shares_version": live.shares_version, "signals_version": live.scorer.state.version}
        )
        try:
            await metrics_topic.send(key=s.worker_id.encode(), value=encode(snap))
        except Exception as exc:
            metrics.broker_errors.labels("metrics").inc()
            log.warning("metrics_publish_failed", error=repr(exc))

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def health(web: Any, request: Any) -> Any:
        stalled = [
            {
                "reader": x.reader,
                "topic": x.topic,
                "partition": x.partition,
                "lag": x.lag,
                "for_s": x.stalled_s,
            }
            for x in watch.stalled(time.monotonic())
        ]
        return web.json(
            {
                "ok": not stalled,
                "stalled": stalled,
                "skipped_batches": metrics.skipped_total(),
                "worker_id": s.worker_id,
                "batches": dataplane.batches,
                "signals_version": live.scorer.state.version,
                "shares_version": live.shares_version,
                "forecasts_version": live.scorer.forecasts.version,
                "partitions": dataplane.assigned,
                "capacity_share": live.scorer.state.capacity_share,
                "state_caught_up": statefeed.caught_up.is_set(),
            },
            status=503 if stalled else 200,
        )

    add_web_page(app, s, live, metrics, lambda: statefeed.latest_shares)
    return app


class _LeaderDuty:
    """The current term's leader re-solves and publishes signed shares; a new leader first republishes
    the shares installed at hand-over, signed in its own term (streams/leadership.py)."""

    def __init__(
        self,
        s: Settings,
        live: Decider,
        metrics: Metrics,
        dataplane: DataPlane,
        leadership: Leadership,
        topic: Any,
        solver: SolverProcess,
        statefeed: StateFeed,
    ) -> None:
        self.s, self.live, self.metrics, self.dataplane = s, live, metrics, dataplane
        self.leadership, self.topic, self.solver, self.statefeed = leadership, topic, solver, statefeed
        self.seq = 0
        self._task: asyncio.Future[None] | None = None
        leadership.on_term(self._on_term)

    def _on_term(self, term: Term) -> None:
        self.seq = 0
        self.metrics.is_leader.set(int(self.leadership.is_leader))
        installed = self.statefeed.latest_shares
        if self.leadership.is_leader and installed is not None:
            keep = {
                k: v for k, v in installed.items() if k not in {"mac", "epoch", "leader", "seq", "version"}
            }
            self._task = asyncio.ensure_future(self._publish(term, {**keep, "ts": time.time()}))

    async def _publish(self, term: Term, body: dict[str, Any]) -> None:
        self.seq = next_seq(self.seq)
        msg = {**body, "seq": self.seq, "version": (term.epoch << 32) + self.seq}
        try:
            await self.topic.send(key=b"shares", value=sign(msg, term))
        except Exception as exc:
            self.metrics.broker_errors.labels("shares").inc()
            log.warning("shares_publish_failed", error=repr(exc)[:200])
            return
        log.info("shares_published", epoch=term.epoch, seq=self.seq, solve_s=body.get("solve_s"))

    async def resolve(self) -> None:
        """One re-solve when this worker leads the current term."""
        term = self.leadership.current
        if term is None or not self.leadership.is_leader:
            return
        scale = self.dataplane.total_partitions / max(1, self.dataplane.assigned)
        inp = self.live.resolve_input(demand_scale=scale)
        if inp is None:
            return
        started = time.perf_counter()
        res = await self.solver.solve(inp)  # in a child process: the event loop never waits for the GIL
        self.metrics.resolve_seconds.observe(time.perf_counter() - started)
        self.metrics.resolves.labels("ok" if res.ok else "failed").inc()
        if not res.ok:
            log.warning("resolve_failed", status=res.status, shares_version=self.live.shares_version)
            return
        regions = self.live.plan.region_ids
        body = {
            "ts": time.time(),
            "ok": res.ok,
            "status": res.status,
            "regions": list(regions),
            "mu_usd_per_wh": dict(zip(regions, res.mu_usd_per_wh.tolist(), strict=True)),
            "groups": list(res.group_keys),
            "shares": res.shares.tolist(),
            "unserved_share": res.unserved_share.tolist(),
            "solve_s": res.solve_s,
        }
        if term is self.leadership.current:  # still the leader of the term it solved in
            await self._publish(term, body)
