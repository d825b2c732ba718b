"""The one frozen settings object of the streaming worker, read once at start-up (README.md, "Settings").

Every value comes from an environment variable with the prefix ``CARBON_ROUTER_`` (``web_port`` is
``CARBON_ROUTER_WEB_PORT``), except ``KAFKA_BOOTSTRAP_SERVERS``, which is read as is. Every field is
validated; an invalid value raises ``ConfigError`` naming the variable, the value received and what is
allowed, and an unknown ``CARBON_ROUTER_*`` variable is refused too (a typo must not silently keep a default);
the rules between fields and the wording of those errors are in ``streams.settingerrors``.

``repr`` and ``model_dump`` show the SASL password masked. What the Kafka clients are given
(``client_kwargs``, ``producer_kwargs``, ``consumer_kwargs``) and the timings suited to the embedded tansu
broker (``TANSU_TUNING``) live in ``streams.clientargs`` and are importable from here too;
``embedded_settings`` applies those timings.
"""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from router.errors import ConfigError
from streams.clientargs import (
    TANSU_TUNING,
    ClientTuning,
    bootstrap_list,
    client_kwargs,
    consumer_kwargs,
    header_list,
    producer_kwargs,
)
from streams.settingerrors import (
    BOOTSTRAP_ENV,
    ENV_PREFIX,
    allowed,
    check_consistent,
    config_error,
    env_var,
    unknown_setting,
)

__all__ = [
    "BOOTSTRAP_ENV",
    "ENV_PREFIX",
    "TANSU_TUNING",
    "ClientTuning",
    "Settings",
    "client_kwargs",
    "consumer_kwargs",
    "embedded_settings",
    "env_var",
    "load_settings",
    "producer_kwargs",
]

#: a header name: printable ASCII without spaces or commas (Kafka allows any string; these are the sane ones)
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
Name = Annotated[str, Field(min_length=1, max_length=255)]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Validated settings of one worker; see the contract's Settings section and ``env_var`` for the names."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        allow_inf_nan=False,
        validate_default=True,
    )

    kafka_bootstrap_servers: str | None = Field(
        None,
        validation_alias=AliasChoices(BOOTSTRAP_ENV, "kafka_bootstrap_servers"),
        description=(
            "Kafka brokers, read without the prefix. Unset: `demo` starts the embedded broker, `worker` "
            "refuses to start."
        ),
    )
    topology: FilePath | None = Field(
        None,
        description=(
            "Topology file (TOML, or JSON by extension). Unset: the bundled one. `worker --topology` wins "
            "over it."
        ),
    )

    topic_requests: TopicName = Field(
        "inference.requests",
        description="Incoming requests (key `request_id`); created with `request_partitions` partitions.",
    )
    topic_signals: TopicName = Field(
        "grid.signals", description="Canonical grid signals (key region id); one partition."
    )
    topic_status: TopicName = Field(
        "region.status", description="Region capacity and health (key region id); one partition."
    )
    topic_placements: TopicName = Field(
        "placements",
        description="One placement per request (key `request_id`), on its request's partition number.",
    )
    topic_dlq: TopicName = Field(
        "placements.dlq",
        description=(
            "Dead letters of bad requests, signals, statuses, forecasts and provider payloads (original key)."
        ),
    )
    topic_shares: TopicName = Field(
        "router.shares", description="The leader's re-solve: shares and capacity duals (key `shares`)."
    )
    topic_metrics: TopicName = Field(
        "router.metrics", description="Each worker's JSON metrics snapshot (key worker id)."
    )
    topic_forecasts: TopicName = Field(
        "grid.forecasts", description="Canonical grid forecasts, GridForecast (key region id); one partition."
    )
    topic_sessions: TopicName = Field(
        "router.sessions",
        description=(
            "Sticky sessions' regions (key `session_id`, compacted), on the request's partition number; "
            "reloaded on assignment."
        ),
    )
    topic_raw_watttime: TopicName = Field(
        "grid.raw.watttime",
        description="Raw WattTime v3 payloads, converted into signals and forecasts by the control plane.",
    )
    topic_raw_electricitymaps: TopicName = Field(
        "grid.raw.electricitymaps",
        description="Raw Electricity Maps v3 carbon-intensity payloads (average intensity, never marginal).",
    )
    topic_raw_entsoe: TopicName = Field(
        "grid.raw.entsoe", description="Raw ENTSO-E A44 day-ahead price documents (XML)."
    )
    request_partitions: int = Field(
        4,
        ge=1,
        le=1024,
        description=(
            "Partitions of the requests and placements topics when a worker creates them; existing topics are"
            " left as they are."
        ),
    )
    replication_factor: int = Field(
        1,
        ge=1,
        le=32,
        description=(
            "Replicas of every topic a worker creates; 1 suits one broker only, use 3 on a production "
            "cluster."
        ),
    )

    group_id: Name = Field(
        "carbon-router",
        description=(
            "Consumer group the workers share the request partitions in; the intake checks the state and "
            "provider topics in `<group_id>-intake`, the faust app's id is `<group_id>-control`."
        ),
    )
    worker_id: Name = Field(
        default_factory=_default_worker_id,
        description=(
            "This worker's id (client id, metrics key, `leader` in shares); must differ between workers. "
            "Default `<hostname>-<pid>`."
        ),
    )

    web_host: Name = Field(
        "127.0.0.1",
        description=(
            "Address the web port binds to (`/`, `/api/state`, `/metrics`, `/healthz`); `0.0.0.0` in a "
            "container."
        ),
    )
    web_port: int = Field(6066, ge=0, le=65535, description="Web port of the worker; 0 takes any free port.")

    max_batch: int = Field(
        4096,
        ge=1,
        le=100_000,
        description="Most request records taken per fetch and decided in one kernel call.",
    )
    max_message_bytes: int = Field(
        65536,
        ge=256,
        le=10_000_000,
        description=(
            "Largest message value accepted (requests, signals, statuses, forecasts); a larger one is dead-"
            "lettered."
        ),
    )
    fetch_max_wait_ms: int = Field(
        20, ge=0, le=10_000, description="How long the broker may hold a fetch waiting for data (ms)."
    )
    session_timeout_ms: int = Field(
        10_000,
        ge=1000,
        le=300_000,
        description=(
            "Consumer-group session timeout (ms); a batch held longer than this is dropped unpublished."
        ),
    )
    heartbeat_interval_ms: int = Field(
        1000,
        ge=100,
        le=100_000,
        description="Consumer heartbeat period (ms); must be under a third of the session timeout.",
    )
    max_poll_interval_ms: int = Field(
        300_000,
        ge=1000,
        le=3_600_000,
        description="Longest time between two fetches before the group drops the worker (ms).",
    )
    request_timeout_ms: int = Field(
        30_000, ge=1000, le=600_000, description="Timeout of one Kafka client request (ms)."
    )
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "zstd",
        description=(
            "Codec of the batches the worker produces (placements, dead letters, metrics). zstd: fewest "
            "bytes for the CPU (README, Benchmarks); needs Kafka >= 2.1. Every codec is read on every topic."
        ),
    )
    forward_headers: str = Field(
        "",
        max_length=4096,
        description=(
            "Comma list of request header names copied onto the request's placement and dead letter, besides"
            " `traceparent` and `tracestate`, which always are (names compared without case)."
        ),
    )
    stall_timeout_s: float = Field(
        120.0,
        gt=0,
        le=86_400,
        description=(
            "A partition this worker reads that has lag but no progress for longer than this (s) makes "
            "`/healthz` answer 503, naming it."
        ),
    )
    producer_idempotence: bool = Field(
        False,
        description="Idempotent producer: set true on Apache Kafka; the embedded tansu broker refuses it.",
    )

    metrics_interval_s: float = Field(
        5.0, gt=0, le=86_400, description="Period of the JSON metrics snapshot on the metrics topic (s)."
    )
    resolve_time_limit_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="HiGHS time limit of the leader's capacity re-solve (s); a re-solve "
        "that hits it fails and the last good shares stay in use.",
    )
    dedup_cache_size: int = Field(
        100_000,
        ge=0,
        le=10_000_000,
        description=(
            "Request ids per worker whose first decision is remembered and sent again for a repeat; 0 turns "
            "it off."
        ),
    )
    explain: bool = Field(
        False,
        description=(
            "Add `runner_up` and `terms` (the pick's score in parts) to every placement. Off by default: "
            "on, a placement grows by 27% (741 to 940 bytes) and the in-process pipeline takes 16% more "
            "time per decision (README, Benchmarks); `carbon-router explain` gives the same for one request."
        ),
    )
    max_clock_skew_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description=(
            "How far ahead of this worker's clock a message's timestamp may be (s); a later one is dead-"
            "lettered, never applied."
        ),
    )
    extra_fields: Literal["refuse", "ignore"] = Field(
        "refuse",
        description=(
            "`refuse`: a message with a field the router does not know is dead-lettered, naming it (a "
            "typo must not drop a constraint); `ignore`: unknown fields are dropped (producers that add "
            "their own)."
        ),
    )
    door: bool = Field(
        False, description="The synchronous door on the web port (README); needs `CARBON_ROUTER_DOOR_TOKEN`."
    )
    door_token: SecretStr | None = Field(
        None, min_length=16, max_length=4096, description="Bearer token of the door (a secret, never logged)."
    )
    door_max_body_bytes: int = Field(
        1_048_576, ge=256, le=1_048_576, description="Largest body the door reads (bytes); larger: 413."
    )
    door_wait_for_ack: bool = Field(
        False, description="The door answers after the broker's ack (`false`: once handed to the producer)."
    )
    door_max_batch: int = Field(1024, ge=1, le=100_000, description="Most requests in one door batch call.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Level of the JSON logs on stderr."
    )

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol; SASL_* needs the three SASL settings."
    )
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] | None = Field(
        None, description="SASL mechanism; only with a SASL_* protocol."
    )
    sasl_username: Name | None = Field(None, description="SASL user name; only with a SASL_* protocol.")
    sasl_password: SecretStr | None = Field(
        None,
        description="SASL password; only with a SASL_* protocol; a secret, shown masked and never logged.",
    )
    ssl_cafile: FilePath | None = Field(
        None, description="CA bundle that verifies the brokers (SSL, SASL_SSL). Unset: the system's CAs."
    )
    ssl_certfile: FilePath | None = Field(
        None, description="Client certificate for mutual TLS (SSL, SASL_SSL)."
    )
    ssl_keyfile: FilePath | None = Field(
        None, description="Client private key for mutual TLS; needs ssl_certfile."
    )
    allow_plaintext_credentials: bool = Field(
        False, description="Accept sending SASL credentials unencrypted (SASL_PLAINTEXT)."
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_list(cls, v: str | None) -> str | None:
        return None if v is None else bootstrap_list(v)

    @field_validator("forward_headers")
    @classmethod
    def _header_list(cls, v: str) -> str:
        return header_list(v)

    @property
    def forwarded_header_names(self) -> frozenset[str]:
        """Lower-case names of the request headers copied onto placements and dead letters."""
        extra = (n.lower() for n in self.forward_headers.split(",") if n)
        return frozenset({"traceparent", "tracestate", *extra})

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        check_consistent(self)
        return self


def _allowed(field: str) -> str:
    """What a field accepts, in words, read from the JSON schema so it never drifts from the constraints."""
    return allowed(Settings.model_json_schema(by_alias=False)["properties"].get(field, {}), field)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment, ``overrides`` (field names) winning; ConfigError if invalid."""
    unknown = unknown_setting(os.environ, Settings.model_fields)
    if unknown is not None:
        raise unknown
    bad = sorted(set(overrides) - set(Settings.model_fields))
    if bad:
        raise ConfigError("unknown setting", source=bad[0], expected="a field of streams.settings.Settings")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise config_error(exc, _allowed) from None


def embedded_settings(bootstrap: str, **overrides: Any) -> Settings:
    """Settings for the embedded broker at ``bootstrap``: TANSU_TUNING, then ``overrides``, then the env."""
    return load_settings(**{**TANSU_TUNING.overrides(), "kafka_bootstrap_servers": bootstrap, **overrides})
