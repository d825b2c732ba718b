"""The contract's topics: their configured names, their creation with aiokafka's admin client, and the
control plane's handles on them (``ControlTopics``: raw bytes, no faust codec on our topics).

Partitions: ``inference.requests`` and ``placements`` get ``request_partitions`` (requests are keyed by
``request_id``, so placements spread the same way); every other topic has one partition, so that signals,
statuses, shares, metrics and dead letters keep a single order. An existing topic is left as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.errors import ConfigError, RouterError
from streams.clientargs import client_kwargs
from streams.settings import Settings, env_var

__all__ = [
    "TOPIC_KEYS",
    "ControlTopics",
    "TopicError",
    "control_topics",
    "ensure_topics",
    "topic_names",
    "topic_partitions",
]

#: Logical topic names (keys of ``topic_names``), in the contract's order.
TOPIC_KEYS = (
    "requests",
    "signals",
    "status",
    "placements",
    "dlq",
    "shares",
    "metrics",
    "forecasts",
    "sessions",
    "raw_watttime",
    "raw_electricitymaps",
    "raw_entsoe",
)

_ALREADY_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS
#: topic configs beyond the broker's defaults: the sessions topic keeps each session's latest record
_CONFIGS = {"sessions": {"cleanup.policy": "compact"}}


class TopicError(RouterError):
    """The broker refused to create a topic."""


def topic_names(settings: Settings) -> dict[str, str]:
    """Logical name -> configured topic name, e.g. ``{"requests": "inference.requests", ...}``."""
    return {key: str(getattr(settings, f"topic_{key}")) for key in TOPIC_KEYS}


def topic_partitions(settings: Settings, partitions: Mapping[str, int] | None = None) -> dict[str, int]:
    """Logical name -> partition count; ``partitions`` (by logical name) overrides the defaults."""
    counts = {key: 1 for key in TOPIC_KEYS}
    counts["requests"] = counts["placements"] = counts["sessions"] = settings.request_partitions
    for key, n in (partitions or {}).items():
        if key not in counts:
            raise ConfigError(
                "unknown topic", field="partitions", received=key, expected=f"one of {TOPIC_KEYS}"
            )
        if not 1 <= n <= 1024:
            raise ConfigError(
                "bad partition count", field=f"partitions.{key}", received=n, expected="1..1024"
            )
        counts[key] = n
    return counts


async def ensure_topics(settings: Settings, partitions: Mapping[str, int] | None = None) -> None:
    """Create every contract topic that does not exist yet and wait until the broker lists them all."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # imported late: importing streams stays cheap
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    names, counts = topic_names(settings), topic_partitions(settings, partitions)
    admin = AIOKafkaAdminClient(**client_kwargs(settings))
    await admin.start()
    try:
        wanted = [
            NewTopic(names[k], counts[k], settings.replication_factor, topic_configs=_CONFIGS.get(k, {}))
            for k in TOPIC_KEYS
        ]
        try:
            response = await admin.create_topics(wanted, timeout_ms=settings.request_timeout_ms)
        except TopicAlreadyExistsError:  # older aiokafka raises instead of reporting per topic
            response = None
        by_name = {v: k for k, v in names.items()}
        for topic, code, *rest in getattr(response, "topic_errors", ()):
            if code not in (0, _ALREADY_EXISTS):
                message = rest[0] if rest else None
                setting = env_var("topic_" + by_name[topic])
                raise TopicError(
                    f"the broker refused to create topic {topic!r} (set by {setting}):"
                    f" {for_code(code).__name__} ({code}) {message or ''}".rstrip()
                )
        await _wait_listed(admin, set(names.values()), settings.request_timeout_ms / 1000)
    finally:
        await admin.close()


async def _wait_listed(admin: Any, names: set[str], timeout_s: float) -> None:
    """Poll the topic list until every name is there (metadata can lag creation on a real cluster)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        listed = set(await admin.list_topics())
        missing = names - listed
        if not missing:
            return
        if loop.time() > deadline:
            raise TopicError(f"topics {sorted(missing)} were created but not listed after {timeout_s:g} s")
        await asyncio.sleep(0.1)


@dataclass(frozen=True, slots=True)
class ControlTopics:
    """The faust topics the control plane writes (the leader's shares, the metrics snapshots), as raw bytes.
    It reads none: the state and provider topics are read by streams.intake and streams.statefeed."""

    shares: Any
    metrics: Any


_RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


def control_topics(app: Any, settings: Settings) -> ControlTopics:
    """The control plane's topics on the faust ``app``; ``router.shares`` has one partition."""
    s = settings
    return ControlTopics(
        shares=app.topic(s.topic_shares, partitions=1, **_RAW),
        metrics=app.topic(s.topic_metrics, **_RAW),
    )
