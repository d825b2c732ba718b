"""Fixtures of the integration tier: one embedded tansu broker per test session, fresh topics per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from streams.broker import EmbeddedBroker
from streams.settings import Settings, embedded_settings
from streams.topics import TOPIC_KEYS

__all__ = ["broker", "settings", "topic_prefix"]


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The embedded broker, started once for the whole session and stopped at its end."""
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix, so each test has its own topics (tansu's fetch cost grows with stored batches)."""
    return f"t{uuid.uuid4().hex[:12]}."


@pytest.fixture
def settings(broker: EmbeddedBroker, topic_prefix: str) -> Settings:
    """Settings for the embedded broker with tansu's client timings and this test's own topic names."""
    defaults = Settings.model_fields
    topics = {f"topic_{k}": topic_prefix + str(defaults[f"topic_{k}"].default) for k in TOPIC_KEYS}
    return embedded_settings(broker.bootstrap, group_id=f"{topic_prefix}group", **topics)
