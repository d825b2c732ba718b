"""Signal adapters: provider payloads on the raw topics -> canonical ``grid.signals`` and ``grid.forecasts``.

``Adapters.handle`` converts one record of a raw topic; the control plane's intake (``streams.intake``)
reads the raw topics for the group and publishes what it returns. Each record is parsed by its provider's
pure parser (``router.providers``) with the topology's zone map and the wall clock as ``now``:

- signals go to ``settings.topic_signals`` and forecasts to ``settings.topic_forecasts``, keyed by region id;
  the control plane and every worker's state feed then treat them like any other signal;
- the ENTSO-E steps still ahead (cleared day-ahead prices) are also kept and released on ``grid.signals``
  when each step starts (``Adapters.due``, asked every second), by the worker that converted the document;
- a rejected payload goes to ``settings.topic_dlq`` as a DeadLetter naming the field and the reason;
- every record is counted in ``carbon_router_provider_records{provider, outcome}`` (``converted``,
  ``rejected``, ``failed``); one failing record never stops the intake.

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

import orjson
import structlog

from router.models import GridSignal
from router.problems import Problem
from router.providers import (
    Parsed,
    parse_electricitymaps,
    parse_entsoe,
    parse_watttime,
)
from router.providers.entsoe import cleared_price_signals
from router.topology import Topology
from streams.codec import dead_letter
from streams.metrics import Metrics
from streams.settings import Settings
from streams.validation import Out

__all__ = ["PROVIDERS", "Adapters", "convert"]

log = structlog.get_logger("carbon_router.adapters")

#: provider name -> the Settings field naming its raw topic
PROVIDERS = {
    "watttime": "topic_raw_watttime",
    "electricitymaps": "topic_raw_electricitymaps",
    "entsoe": "topic_raw_entsoe",
}


def convert(
    provider: str, raw: bytes | None, topology: Topology, now: float, max_bytes: int
) -> Parsed | Problem:
    """One raw record of ``provider`` as canonical messages, or why not; never raises on bad input."""
    p = topology.providers
    if provider == "watttime":
        return parse_watttime(raw, p.zones("watttime"), now, max_bytes=max_bytes)
    if provider == "electricitymaps":
        return parse_electricitymaps(raw, p.zones("electricitymaps"), now, max_bytes=max_bytes)
    if provider == "entsoe":
        rates = {**p.usd_per, "USD": 1.0}
        return parse_entsoe(raw, p.zones("entsoe"), now, rates, max_bytes=max_bytes)
    return Problem.of("unknown provider", None, provider, f"one of {sorted(PROVIDERS)}")


class Adapters:
    """Converts raw provider records into canonical messages to publish; never raises on a record."""

    def __init__(
        self,
        settings: Settings,
        topology: Topology,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.topology = topology
        self.metrics = metrics
        self.clock = clock
        #: raw topic -> provider
        self.providers = {getattr(settings, setting): name for name, setting in PROVIDERS.items()}
        #: region -> step start -> the cleared price signal to release when the step starts
        self.scheduled: dict[str, dict[float, GridSignal]] = {}

    @property
    def topics(self) -> tuple[str, ...]:
        """The raw provider topics."""
        return tuple(self.providers)

    def handle(self, record: Any) -> list[Out]:
        """The signals and forecasts one raw record converts to, or its dead letter."""
        s, provider = self.settings, self.providers[record.topic]
        try:
            got = convert(provider, record.value, self.topology, self.clock(), s.max_message_bytes)
            if isinstance(got, Problem):
                letter = dead_letter(
                    record.value,
                    got,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    max_raw_bytes=s.max_message_bytes,
                )
                self.metrics.record_dead_letter(record.topic, got.field)
                self.metrics.provider_records.labels(provider, "rejected").inc()
                log.info("provider_payload_rejected", provider=provider, field=got.field, error=got.error)
                return [(s.topic_dlq, record.key, letter, [])]
            out: list[Out] = [_signal(s, sig) for sig in got.signals]
            for fc in got.forecasts:
                value = orjson.dumps(fc.model_dump(exclude_none=True))
                out.append((s.topic_forecasts, fc.region.encode(), value, []))
                for sig in cleared_price_signals(fc):
                    self.scheduled.setdefault(sig.region, {})[sig.ts] = sig
            self.metrics.provider_records.labels(provider, "converted").inc()
            log.info(
                "provider_payload_converted",
                provider=provider,
                signals=len(got.signals),
                forecasts=len(got.forecasts),
            )
            return out
        except Exception as exc:  # one bad record never stops the intake
            self.metrics.provider_records.labels(provider, "failed").inc()
            log.error("provider_payload_failed", provider=provider, error=repr(exc))
            return []

    def due(self) -> list[Out]:
        """The scheduled cleared-price signals whose step has started (each released once)."""
        now, out = self.clock(), []
        for by_ts in self.scheduled.values():
            for ts in sorted(t for t in by_ts if t <= now):
                sig = by_ts.pop(ts)
                out.append(_signal(self.settings, sig))
                log.info("cleared_price_released", region=sig.region, ts=sig.ts)
        return out


def _signal(s: Settings, sig: GridSignal) -> Out:
    return (s.topic_signals, sig.region.encode(), orjson.dumps(sig.model_dump(exclude_none=True)), [])
