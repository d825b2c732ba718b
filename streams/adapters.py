"""Signal adapters: provider payloads on the raw topics -> canonical ``grid.signals`` and ``grid.forecasts``.

One faust agent per raw topic on the worker's control-plane app (``register_adapters``, called once by
``streams.control.build_app``). Each record is parsed by its provider's pure parser (``router.providers``)
with the topology's zone map and the wall clock as ``now``:

- signals go to ``settings.topic_signals`` and forecasts to ``settings.topic_forecasts``, keyed by region id;
  the control plane and every worker's state feed then treat them like any other signal;
- the ENTSO-E steps still ahead (cleared day-ahead prices) are also kept and released on ``grid.signals``
  by a 1-second timer when each step starts, by the worker that converted the document;
- a rejected payload goes to ``settings.topic_dlq`` as a DeadLetter naming the field and the reason;
- every record is counted in ``carbon_router_provider_records{provider, outcome}`` (``converted``,
  ``rejected``, ``failed``); one failing record never stops the agent.

| raw topic (setting) | payload |
|---|---|
| ``grid.raw.watttime`` (``topic_raw_watttime``) | WattTime v3 JSON: historical or forecast |
| ``grid.raw.electricitymaps`` (``topic_raw_electricitymaps``) | Electricity Maps v3 JSON: latest or history |
| ``grid.raw.entsoe`` (``topic_raw_entsoe``) | ENTSO-E A44 day-ahead prices XML |
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import faust
import orjson
import structlog

from router.models import GridSignal
from router.providers import (
    Parsed,
    Rejection,
    parse_electricitymaps,
    parse_entsoe,
    parse_watttime,
)
from router.providers.entsoe import cleared_price_signals
from router.topology import Topology
from streams.codec import Rejected, dead_letter
from streams.metrics import Metrics
from streams.settings import Settings

__all__ = ["PROVIDERS", "convert", "register_adapters"]

log = structlog.get_logger("carbon_router.adapters")

#: provider name -> the Settings field naming its raw topic
PROVIDERS = {
    "watttime": "topic_raw_watttime",
    "electricitymaps": "topic_raw_electricitymaps",
    "entsoe": "topic_raw_entsoe",
}

_RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def convert(
    provider: str, raw: bytes | None, topology: Topology, now: float, max_bytes: int
) -> Parsed | Rejection:
    """One raw record of ``provider`` as canonical messages, or why not; never raises on bad input."""
    p = topology.providers
    if provider == "watttime":
        return parse_watttime(raw, p.zones("watttime"), now, max_bytes=max_bytes)
    if provider == "electricitymaps":
        return parse_electricitymaps(raw, p.zones("electricitymaps"), now, max_bytes=max_bytes)
    if provider == "entsoe":
        rates = {**p.usd_per, "USD": 1.0}
        return parse_entsoe(raw, p.zones("entsoe"), now, rates, max_bytes=max_bytes)
    return Rejection("unknown provider", None, provider, f"one of {sorted(PROVIDERS)}")


def register_adapters(
    app: faust.App,
    settings: Settings,
    topology: Topology,
    metrics: Metrics,
    dlq_topic: Any,
    *,
    clock: Callable[[], float] = time.time,
) -> None:
    """Add one agent per raw provider topic to ``app`` (see the module docstring)."""
    s = settings
    signals_topic = app.topic(s.topic_signals, partitions=1, **_RAW)
    forecasts_topic = app.topic(s.topic_forecasts, **_RAW)
    #: region -> step start -> the cleared price signal to release when the step starts
    scheduled: dict[str, dict[float, GridSignal]] = {}

    async def handle(provider: str, topic: str, ev: Any) -> None:
        """Convert one raw record and publish the result or its dead letter. Never raises."""
        try:
            got = convert(provider, ev.value, topology, clock(), s.max_message_bytes)
            if isinstance(got, Rejection):
                msg = ev.message
                letter = dead_letter(
                    ev.value,
                    Rejected(got.error, got.field),
                    topic=topic,
                    partition=msg.partition,
                    offset=msg.offset,
                    max_raw_bytes=s.max_message_bytes,
                )
                await dlq_topic.send(key=ev.key, value=letter)
                metrics.record_dead_letter(topic, got.field)
                metrics.provider_records.labels(provider, "rejected").inc()
                log.info("provider_payload_rejected", provider=provider, field=got.field, error=got.error)
                return
            for sig in got.signals:
                value = orjson.dumps(sig.model_dump(exclude_none=True))
                await signals_topic.send(key=sig.region.encode(), value=value)
            for fc in got.forecasts:
                value = orjson.dumps(fc.model_dump(exclude_none=True))
                await forecasts_topic.send(key=fc.region.encode(), value=value)
                for sig in cleared_price_signals(fc):
                    scheduled.setdefault(sig.region, {})[sig.ts] = sig
            metrics.provider_records.labels(provider, "converted").inc()
            log.info(
                "provider_payload_converted",
                provider=provider,
                signals=len(got.signals),
                forecasts=len(got.forecasts),
            )
        except Exception as exc:  # one bad record never stops the agent
            metrics.provider_records.labels(provider, "failed").inc()
            log.error("provider_payload_failed", provider=provider, error=repr(exc))

    async def release_cleared_prices() -> None:
        """Publish each scheduled price signal whose step has started. Never raises."""
        now = clock()
        for by_ts in scheduled.values():
            for ts in sorted(t for t in by_ts if t <= now):
                sig = by_ts.pop(ts)
                try:
                    await signals_topic.send(
                        key=sig.region.encode(), value=orjson.dumps(sig.model_dump(exclude_none=True))
                    )
                    log.info("cleared_price_released", region=sig.region, ts=sig.ts)
                except Exception as exc:
                    metrics.broker_errors.labels("cleared_price").inc()
                    log.warning("cleared_price_release_failed", region=sig.region, error=repr(exc))

    app.timer(1.0)(release_cleared_prices)

    for provider, setting in PROVIDERS.items():
        topic_name: str = getattr(s, setting)
        _agent(app, provider, topic_name, app.topic(topic_name, **_RAW), handle)


def _agent(app: faust.App, provider: str, topic_name: str, topic: Any, handle: Any) -> None:
    """One named agent (faust names agents by function, so each needs its own name)."""

    async def adapter(stream: Any) -> None:
        async for ev in stream.events():
            await handle(provider, topic_name, ev)

    app.agent(topic, name=f"carbon-router-adapter-{provider}")(adapter)
