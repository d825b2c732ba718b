"""`carbon-router worker` refuses invalid settings at start-up: exit 2, a message naming the setting."""

from __future__ import annotations

import pytest

from streams.cli import main


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for k in list(os.environ):
        if k.startswith("CARBON_ROUTER_") or k == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(k)


def test_invalid_setting_stops_the_worker_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An out-of-range port names CARBON_ROUTER_WEB_PORT, the value and the allowed range; no traceback."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("CARBON_ROUTER_WEB_PORT", "70000")
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "CARBON_ROUTER_WEB_PORT" in err
    assert "70000" in err
    assert "65535" in err
    assert "Traceback" not in err


def test_unknown_compression_stops_the_worker_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A codec Kafka does not define is refused at start-up, naming the variable and the five codecs."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("CARBON_ROUTER_COMPRESSION", "brotli")
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "CARBON_ROUTER_COMPRESSION" in err
    assert "brotli" in err
    assert "zstd" in err


def test_misspelt_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown CARBON_ROUTER_ variable is refused with the closest real name, never silently ignored."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setenv("CARBON_ROUTER_MAX_BACTH", "10")
    assert main(["worker"]) == 2
    assert "CARBON_ROUTER_MAX_BATCH" in capsys.readouterr().err


def test_missing_broker_address_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Without KAFKA_BOOTSTRAP_SERVERS the worker says what to set (the demo runs its own broker)."""
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "KAFKA_BOOTSTRAP_SERVERS" in err
    assert "no broker address" in err
