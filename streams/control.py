"""The control plane on faust-streaming: signal and status state, the leader's re-solve, the web endpoints.

- ``grid.signals`` / ``region.status``: an agent validates each record (a bad one is dead-lettered and
  never changes state) and merges it in event time into a GlobalTable keyed by region; a late, older
  signal never overwrites a newer one. GlobalTables are replicated to every worker through their
  changelogs, so every worker holds the same region state.
- the leader alone re-solves the capacity LP every ``resolve_interval_s`` (in a thread: the event loop and
  the data plane never wait for it) and publishes the result on ``router.shares``; an agent copies the
  latest shares into a GlobalTable, which every worker applies.
- every worker copies table changes into its kernel inputs between batches (a timer, ~20 times a second),
  publishes a metrics snapshot on ``router.metrics``, and serves ``/metrics`` and ``/healthz``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

import faust
import orjson
import structlog
from pydantic import ValidationError

from router.live import LiveRouter, merge_signal
from router.models import RegionStatus, SharesMessage
from router.resolve import CapacityResolver
from streams.codec import Rejected, check_region, dead_letter, decode_signal, decode_status, encode
from streams.dataplane import DataPlane
from streams.metrics import Metrics
from streams.settings import Settings

__all__ = ["build_app"]

log = structlog.get_logger("carbon_router.control")

_SYNC_S = 0.05


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


def build_app(settings: Settings, live: LiveRouter, metrics: Metrics, dataplane: DataPlane) -> faust.App:
    """The faust app of one worker, wired to its LiveRouter, metrics and data plane."""
    s = settings
    servers = ";".join(f"kafka://{h.strip()}" for h in (s.kafka_bootstrap_servers or "").split(","))
    app = faust.App(
        f"{s.group_id}-control",
        broker=servers,
        broker_credentials=_credentials(s),
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="carbon-router-faust-"),
        web_enabled=True,
        web_host=s.web_host,
        web_bind=s.web_host,
        web_port=s.web_port,
        topic_partitions=1,
        topic_replication_factor=s.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=s.session_timeout_ms / 1000.0,
        broker_heartbeat_interval=s.heartbeat_interval_ms / 1000.0,
        producer_acks=-1,
        stream_wait_empty=False,
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    signals_topic = app.topic(s.topic_signals, partitions=1, **raw)
    status_topic = app.topic(s.topic_status, partitions=1, **raw)
    shares_topic = app.topic(s.topic_shares, partitions=1, **raw)
    dlq_topic = app.topic(s.topic_dlq, **raw)
    metrics_topic = app.topic(s.topic_metrics, **raw)
    table_kw: dict[str, Any] = {"partitions": 1, "default": None, "key_type": bytes, "value_type": bytes}
    signal_table = app.GlobalTable("region-signals", **table_kw)
    status_table = app.GlobalTable("region-status", **table_kw)
    shares_table = app.GlobalTable("shares", **table_kw)
    resolver = CapacityResolver(
        live.plan.n_regions, penalty_usd_per_wh=live.objective.unserved_penalty_usd_per_wh, time_limit_s=1.0
    )
    applied: dict[tuple[str, bytes], bytes] = {}

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
        await dlq_topic.send(key=key, value=letter)
        metrics.record_dead_letter(topic, rej.field)
        log.info("message_rejected", topic=topic, field=rej.field, error=rej.error)

    @app.agent(signals_topic)
    async def on_signal(stream: Any) -> None:
        async for ev in stream.events():
            try:
                got = decode_signal(ev.value, s.max_message_bytes)
                if not isinstance(got, Rejected):
                    got = check_region(got.region, live.plan) or got
                if isinstance(got, Rejected):
                    await reject(s.topic_signals, ev.key, ev.value, got, ev)
                    metrics.signals.labels("rejected").inc()
                    continue
                key = got.region.encode()
                old = signal_table.get(key)
                merged = merge_signal(None if old is None else orjson.loads(old), got)
                if merged is None:
                    metrics.signals.labels("late").inc()
                    log.info("signal_ignored_late", region=got.region, ts=got.ts)
                    continue
                signal_table[key] = orjson.dumps(merged)
                metrics.signals.labels("applied").inc()
            except Exception as exc:  # one bad record never stops the agent
                log.error("signal_failed", error=repr(exc))

    @app.agent(status_topic)
    async def on_status(stream: Any) -> None:
        async for ev in stream.events():
            try:
                got = decode_status(ev.value, s.max_message_bytes)
                if not isinstance(got, Rejected):
                    got = check_region(got.region, live.plan) or got
                if isinstance(got, Rejected):
                    await reject(s.topic_status, ev.key, ev.value, got, ev)
                    continue
                key = got.region.encode()
                old = status_table.get(key)
                if old is not None and orjson.loads(old)["ts"] > got.ts:
                    continue
                status_table[key] = orjson.dumps(got.model_dump(exclude_none=True))
            except Exception as exc:
                log.error("status_failed", error=repr(exc))

    @app.agent(shares_topic)
    async def on_shares(stream: Any) -> None:
        async for ev in stream.events():
            try:
                SharesMessage.model_validate_json(ev.value)
            except (ValidationError, ValueError, TypeError) as exc:
                await reject(s.topic_shares, ev.key, ev.value, Rejected(error=str(exc)[:300], field=None), ev)
                continue
            shares_table[b"shares"] = ev.value

    def sync_tables() -> None:
        """Apply table entries this worker has not applied yet (cheap: a few dozen small records)."""
        for name, table in (("signal", signal_table), ("status", status_table), ("shares", shares_table)):
            for key, value in list(table.items()):
                if value is None or applied.get((name, key)) == value:
                    continue
                applied[(name, key)] = value
                data = orjson.loads(value)
                if name == "signal":
                    live.apply_snapshot(data)
                elif name == "status":
                    live.apply_status(RegionStatus.model_validate(data))
                elif live.set_duals(
                    int(data["version"]), [data["mu_usd_per_wh"][r] for r in live.plan.region_ids]
                ):
                    metrics.shares_version.set(live.shares_version)
        now = time.time()
        st = live.scorer.state
        for j, region in enumerate(live.plan.region_ids):
            if st.i[j, 2]:
                metrics.signal_age.labels(region).set(now - st.f[j, 3])

    async def ready() -> None:
        """The GlobalTables have been recovered from their changelogs and applied once."""
        await app.tables.recovery.completed.wait()  # type: ignore[attr-defined]  # declared on TableManager only
        sync_tables()
        log.info("control_plane_ready", signals_version=live.scorer.state.version)

    dataplane.ready_hook = ready

    @app.timer(_SYNC_S)  # type: ignore[untyped-decorator]  # faust is untyped
    async def sync() -> None:
        sync_tables()

    @app.timer(live.objective.resolve_interval_s, on_leader=True)  # type: ignore[untyped-decorator]  # faust is untyped
    async def resolve() -> None:
        metrics.is_leader.set(1)
        scale = dataplane.total_partitions / max(1, dataplane.assigned)
        inp = live.resolve_input(scale)
        if inp is None:
            return
        started = time.perf_counter()
        res = await asyncio.get_running_loop().run_in_executor(None, resolver.solve, inp)
        metrics.resolve_seconds.observe(time.perf_counter() - started)
        metrics.resolves.labels("ok" if res.ok else "failed").inc()
        if not res.ok:
            log.warning("resolve_failed", status=res.status, keeps_version=res.version)
            return
        msg = {
            "version": res.version + 1000 * int(time.time()),  # monotone across leader changes
            "ts": time.time(),
            "ok": res.ok,
            "status": res.status,
            "regions": list(live.plan.region_ids),
            "mu_usd_per_wh": dict(zip(live.plan.region_ids, res.mu_usd_per_wh.tolist(), strict=True)),
            "groups": list(res.group_keys),
            "shares": res.shares.tolist(),
            "unserved_share": res.unserved_share.tolist(),
            "solve_s": res.solve_s,
        }
        await shares_topic.send(key=b"shares", value=encode(msg))
        log.info("shares_published", version=msg["version"], solve_s=res.solve_s)

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
        return web.json(
            {
                "ok": True,
                "worker_id": s.worker_id,
                "batches": dataplane.batches,
                "signals_version": live.scorer.state.version,
                "shares_version": live.shares_version,
                "partitions": dataplane.assigned,
            }
        )

    return app
