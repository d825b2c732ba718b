"""The control plane of one worker on faust-streaming: the app and what it runs (README.md, "Running on
Apache Kafka", the control plane).

``build_app`` makes the faust app on the settings' cluster and adds, in this order:

- the health timers, the metrics snapshot on ``router.metrics``, ``/metrics`` and ``/healthz``
  (``streams.health``);
- the leader's re-solve timer (``streams.leader``): only the current term's leader solves and publishes
  signed shares on ``router.shares``;
- the live page and ``/api/state`` (``streams.web``).

The data plane starts fetching only once the state feed has caught up (``DataPlane.ready_hook``). The app
runs no agent: the state and provider topics are read by ``streams.intake`` (checked once for the group)
and ``streams.statefeed`` (applied on every worker), both plain aiokafka consumers.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import structlog

from router.decider import Decider
from streams.clientargs import client_kwargs
from streams.dataplane import DataPlane
from streams.health import Health, add_health_pages, add_health_timers, add_metrics_publisher
from streams.intake import Intake
from streams.leader import LeaderDuty, add_resolve_timer
from streams.leadership import Leadership
from streams.metrics import Metrics
from streams.settings import Settings
from streams.statefeed import StateFeed
from streams.topics import control_topics
from streams.web import add_web_page

__all__ = ["build_app", "faust_app"]

log = structlog.get_logger("carbon_router.control")


def _credentials(s: Settings) -> Any:
    """faust credentials matching the settings (None for PLAINTEXT)."""
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
    intake: Intake | None = None,
) -> faust.App:
    """The faust app of one worker, wired to its Decider, metrics and data plane."""
    s = settings
    app = faust_app(s, f"{s.group_id}-control", web=True)
    topics = control_topics(app, s)
    dataplane.ready_hook = _ready(statefeed, live)
    health = Health(s, live, metrics, dataplane, statefeed, leadership, intake)
    add_health_timers(app, health)
    duty = LeaderDuty(s, live, metrics, dataplane, leadership, topics.shares, statefeed)
    add_resolve_timer(app, duty, live.objective.resolve_interval_s)
    add_metrics_publisher(app, health, topics.metrics, s.metrics_interval_s)
    add_health_pages(app, health)
    add_web_page(app, s, live, metrics, lambda: statefeed.latest_shares)
    return app


def _ready(statefeed: StateFeed, live: Decider) -> Callable[[], Awaitable[None]]:
    """The data plane's ready hook: it fetches only once the state feed is ready."""

    async def ready() -> None:
        """The state feed has read the state topics up to their ends as of start-up."""
        await statefeed.caught_up.wait()
        log.info("control_plane_ready", signals_version=live.scorer.state.version)

    return ready
