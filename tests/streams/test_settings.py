"""Settings: defaults, environment overrides, and ConfigError messages that name the variable and value."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from router.errors import ConfigError
from streams.settings import (
    TANSU_TUNING,
    Settings,
    client_kwargs,
    consumer_kwargs,
    embedded_settings,
    env_var,
    load_settings,
    producer_kwargs,
)

PASSWORD = "s3cr3t-Pa55word"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from an environment without our variables."""
    for name in list(os.environ):
        if name.upper().startswith("CARBON_ROUTER_") or name.upper() == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


def test_defaults_load() -> None:
    """With no variables set, every default of the contract loads and validates."""
    s = load_settings()
    assert s.kafka_bootstrap_servers is None
    assert s.topology is None
    assert (s.topic_requests, s.topic_signals, s.topic_status) == (
        "inference.requests",
        "grid.signals",
        "region.status",
    )
    assert (s.topic_placements, s.topic_dlq) == ("placements", "placements.dlq")
    assert (s.topic_shares, s.topic_metrics) == ("router.shares", "router.metrics")
    assert (s.request_partitions, s.web_host, s.web_port, s.max_batch) == (4, "127.0.0.1", 6066, 4096)
    assert (s.max_message_bytes, s.fetch_max_wait_ms, s.session_timeout_ms) == (65536, 20, 10_000)
    assert (s.security_protocol, s.log_level, s.group_id) == ("PLAINTEXT", "info", "carbon-router")
    assert s.worker_id.endswith(f"-{os.getpid()}")


def test_env_vars_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """CARBON_ROUTER_* variables set the fields, with types parsed from text."""
    monkeypatch.setenv("CARBON_ROUTER_WEB_PORT", "7000")
    monkeypatch.setenv("CARBON_ROUTER_TOPIC_REQUESTS", "my.requests")
    monkeypatch.setenv("CARBON_ROUTER_LOG_LEVEL", "debug")
    monkeypatch.setenv("CARBON_ROUTER_METRICS_INTERVAL_S", "0.5")
    monkeypatch.setenv("CARBON_ROUTER_ALLOW_PLAINTEXT_CREDENTIALS", "true")
    s = load_settings()
    assert (s.web_port, s.topic_requests, s.log_level) == (7000, "my.requests", "debug")
    assert s.metrics_interval_s == 0.5
    assert s.allow_plaintext_credentials is True


def test_overrides_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword overrides of load_settings take precedence over the environment."""
    monkeypatch.setenv("CARBON_ROUTER_WEB_PORT", "7000")
    assert load_settings(web_port=0).web_port == 0


def test_bootstrap_servers_read_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """KAFKA_BOOTSTRAP_SERVERS is read as is, and a comma list is normalised."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092, kafka-2:9093")
    s = load_settings()
    assert s.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9093"
    assert client_kwargs(s)["bootstrap_servers"] == "kafka-1:9092,kafka-2:9093"
    assert env_var("kafka_bootstrap_servers") == "KAFKA_BOOTSTRAP_SERVERS"


def test_prefixed_bootstrap_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """CARBON_ROUTER_KAFKA_BOOTSTRAP_SERVERS is not a setting, and saying so beats ignoring it."""
    monkeypatch.setenv("CARBON_ROUTER_KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    with pytest.raises(ConfigError, match="CARBON_ROUTER_KAFKA_BOOTSTRAP_SERVERS: unknown setting"):
        load_settings()


def test_unknown_variable_names_the_likely_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt CARBON_ROUTER_* variable stops start-up and points at the closest real name."""
    monkeypatch.setenv("CARBON_ROUTER_WEB_PROT", "7000")
    with pytest.raises(
        ConfigError, match=r"CARBON_ROUTER_WEB_PROT: unknown setting; expected CARBON_ROUTER_WEB_PORT"
    ):
        load_settings()


def test_unknown_override_is_refused() -> None:
    """A keyword override that is not a field raises ConfigError instead of being ignored."""
    with pytest.raises(ConfigError, match="web_prot: unknown setting"):
        load_settings(web_prot=1)


@pytest.mark.parametrize(
    ("var", "value", "allowed"),
    [
        ("CARBON_ROUTER_WEB_PORT", "70000", "an integer >= 0 and <= 65535"),
        ("CARBON_ROUTER_WEB_PORT", "abc", "an integer >= 0 and <= 65535"),
        ("CARBON_ROUTER_MAX_BATCH", "0", "an integer >= 1 and <= 100000"),
        ("CARBON_ROUTER_MAX_MESSAGE_BYTES", "100", "an integer >= 256"),
        ("CARBON_ROUTER_TOPIC_DLQ", "bad name", "a Kafka topic name"),
        ("CARBON_ROUTER_TOPIC_SIGNALS", "x" * 250, "a Kafka topic name"),
        ("CARBON_ROUTER_LOG_LEVEL", "loud", "one of debug, info, warning, error"),
        ("CARBON_ROUTER_SECURITY_PROTOCOL", "TLS", "one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ("CARBON_ROUTER_METRICS_INTERVAL_S", "0", "a number > 0"),
        ("CARBON_ROUTER_METRICS_INTERVAL_S", "nan", "a number > 0"),
        ("CARBON_ROUTER_REQUEST_PARTITIONS", "2000", "<= 1024"),
        ("CARBON_ROUTER_DEDUP_CACHE_SIZE", "-1", ">= 0"),
        ("CARBON_ROUTER_TOPOLOGY", "/no/such/topology.toml", "the path of an existing file"),
        ("CARBON_ROUTER_ALLOW_PLAINTEXT_CREDENTIALS", "maybe", "true or false"),
        ("CARBON_ROUTER_GROUP_ID", "", "a non-empty text"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka:notaport", "host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "a:1,,b:2", "host:port"),
        ("CARBON_ROUTER_COMPRESSION", "brotli", "one of none, gzip, snappy, lz4, zstd"),
        ("CARBON_ROUTER_FORWARD_HEADERS", "x-tenant,bad name", "a comma list of header names"),
        ("CARBON_ROUTER_STALL_TIMEOUT_S", "0", "a number > 0"),
    ],
)
def test_invalid_value_names_variable_value_and_allowed(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, allowed: str
) -> None:
    """An invalid variable raises ConfigError naming it, the value received and what is allowed."""
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert text.startswith(f"{var}: ")
    assert repr(value)[:60].rstrip("'") in text
    assert allowed in text
    assert "Traceback" not in text


def test_heartbeat_must_be_under_a_third_of_the_session() -> None:
    """A heartbeat at or above a third of the session timeout is refused with the limit in the message."""
    with pytest.raises(ConfigError, match=r"CARBON_ROUTER_HEARTBEAT_INTERVAL_MS.*received 2000.*2000"):
        load_settings(session_timeout_ms=6000, heartbeat_interval_ms=2000)
    assert load_settings(session_timeout_ms=6000, heartbeat_interval_ms=1999).heartbeat_interval_ms == 1999


def test_two_topics_cannot_share_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """Giving the dead-letter topic the placements topic's name is refused."""
    monkeypatch.setenv("CARBON_ROUTER_TOPIC_DLQ", "placements")
    with pytest.raises(ConfigError, match="two topics have the same name; received 'placements'"):
        load_settings()


def _sasl_env(monkeypatch: pytest.MonkeyPatch, protocol: str) -> None:
    monkeypatch.setenv("CARBON_ROUTER_SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("CARBON_ROUTER_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("CARBON_ROUTER_SASL_USERNAME", "router")
    monkeypatch.setenv("CARBON_ROUTER_SASL_PASSWORD", PASSWORD)


def test_sasl_over_plaintext_needs_the_allow_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL credentials over SASL_PLAINTEXT are refused unless allow_plaintext_credentials is true."""
    _sasl_env(monkeypatch, "SASL_PLAINTEXT")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert "CARBON_ROUTER_SECURITY_PROTOCOL" in text
    assert "'SASL_PLAINTEXT'" in text
    assert "CARBON_ROUTER_ALLOW_PLAINTEXT_CREDENTIALS=true" in text
    assert PASSWORD not in text
    monkeypatch.setenv("CARBON_ROUTER_ALLOW_PLAINTEXT_CREDENTIALS", "1")
    kw = client_kwargs(load_settings(kafka_bootstrap_servers="kafka:9092"))
    assert kw["sasl_plain_password"] == PASSWORD
    assert kw["sasl_mechanism"] == "SCRAM-SHA-512"


def test_sasl_needs_all_three_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """SASL_SSL without a password is refused, naming the variables to set."""
    _sasl_env(monkeypatch, "SASL_SSL")
    monkeypatch.delenv("CARBON_ROUTER_SASL_PASSWORD")
    with pytest.raises(ConfigError, match="CARBON_ROUTER_SASL_PASSWORD set"):
        load_settings()


def test_credentials_without_sasl_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A password with the PLAINTEXT protocol would be silently unused, so it is an error."""
    monkeypatch.setenv("CARBON_ROUTER_SASL_PASSWORD", PASSWORD)
    with pytest.raises(ConfigError, match="does not use SASL") as info:
        load_settings()
    assert PASSWORD not in str(info.value)


def test_password_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """repr, str, model_dump and model_dump_json of valid settings never contain the password."""
    _sasl_env(monkeypatch, "SASL_SSL")
    s = load_settings(kafka_bootstrap_servers="kafka:9093")
    for shown in (repr(s), str(s), str(s.model_dump()), s.model_dump_json()):
        assert PASSWORD not in shown
    assert isinstance(client_kwargs(s)["ssl_context"], ssl.SSLContext)


def test_tls_files_need_a_tls_protocol(tmp_path: Path) -> None:
    """A CA file with PLAINTEXT is refused; with SSL it builds the client's SSL context."""
    ca = ssl.get_default_verify_paths().cafile
    if ca is None or not Path(ca).is_file():
        pytest.skip("no system CA bundle to use as a test CA file")
    with pytest.raises(ConfigError, match="CARBON_ROUTER_SSL_CAFILE: TLS files are given"):
        load_settings(ssl_cafile=ca)
    s = load_settings(ssl_cafile=ca, security_protocol="SSL", kafka_bootstrap_servers="kafka:9093")
    assert isinstance(client_kwargs(s)["ssl_context"], ssl.SSLContext)


def test_settings_are_frozen() -> None:
    """A loaded Settings cannot be changed afterwards."""
    s = load_settings()
    with pytest.raises(ValidationError):
        s.web_port = 1  # type: ignore[misc]  # assigning is exactly what must fail


def test_client_kwargs_need_a_broker() -> None:
    """Asking for client arguments without KAFKA_BOOTSTRAP_SERVERS names that variable."""
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS: no broker address"):
        client_kwargs(load_settings())


def test_embedded_settings_use_tansu_tuning() -> None:
    """embedded_settings applies TANSU_TUNING and the bootstrap; producer and consumer args follow them."""
    s = embedded_settings("127.0.0.1:1234", max_batch=10)
    assert (s.session_timeout_ms, s.heartbeat_interval_ms, s.fetch_max_wait_ms) == (6000, 1000, 20)
    assert TANSU_TUNING.overrides() == {
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
        "fetch_max_wait_ms": 20,
    }
    p, c = producer_kwargs(s), consumer_kwargs(s)
    assert p["bootstrap_servers"] == "127.0.0.1:1234"
    assert p["acks"] == "all"
    assert p["enable_idempotence"] is False
    assert (c["group_id"], c["session_timeout_ms"], c["max_poll_records"]) == ("carbon-router", 6000, 10)
    assert c["enable_auto_commit"] is False
    assert consumer_kwargs(s, group=False)["group_id"] is None


def test_settings_class_is_env_only_by_name() -> None:
    """Every field maps to one variable: the prefix plus the upper-case name, except the bootstrap."""
    names = {env_var(f) for f in Settings.model_fields}
    assert "CARBON_ROUTER_WEB_PORT" in names
    assert "KAFKA_BOOTSTRAP_SERVERS" in names
    assert len(names) == len(Settings.model_fields)


@pytest.mark.parametrize(("codec", "wire"), [("none", None), ("gzip", "gzip"), ("zstd", "zstd")])
def test_compression_reaches_the_producer(codec: str, wire: str | None) -> None:
    """CARBON_ROUTER_COMPRESSION becomes aiokafka's compression_type (none: no codec at all)."""
    s = load_settings(kafka_bootstrap_servers="k:9092", compression=codec)
    assert producer_kwargs(s)["compression_type"] == wire


def test_forwarded_headers_always_include_trace_context() -> None:
    """The forwarded names are traceparent, tracestate and the configured ones, trimmed and lower-cased."""
    s = load_settings(forward_headers=" X-Tenant ,baggage,")
    assert s.forward_headers == "X-Tenant,baggage"
    assert s.forwarded_header_names == {"traceparent", "tracestate", "x-tenant", "baggage"}
    assert load_settings().forwarded_header_names == {"traceparent", "tracestate"}
