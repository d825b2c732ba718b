"""The one frozen settings object of the streaming worker, read once at start-up (README.md, "Settings").

Every value comes from an environment variable with the prefix ``CARBON_ROUTER_`` (``web_port`` is
``CARBON_ROUTER_WEB_PORT``), except ``KAFKA_BOOTSTRAP_SERVERS``, which is read as is. Every field is
validated; an invalid value raises ``ConfigError`` naming the variable, the value received and what is
allowed, and an unknown ``CARBON_ROUTER_*`` variable is refused too (a typo must not silently keep a default).

``client_kwargs`` is the only place the SASL password is unwrapped; ``repr`` and ``model_dump`` show it
masked. Kafka client keyword arguments (``client_kwargs``, ``producer_kwargs``, ``consumer_kwargs``) and the
timings suited to the embedded tansu broker (``TANSU_TUNING``, ``embedded_settings``) live here too.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
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
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from router.errors import ConfigError

__all__ = [
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

ENV_PREFIX = "CARBON_ROUTER_"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"

#: a header name: printable ASCII without spaces or commas (Kafka allows any string; these are the sane ones)
_HEADER_NAME = re.compile(r"[!-+\--~]{1,249}")
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
            "Consumer group the workers share the request partitions in; the control plane's app id is "
            "`<group_id>-control`."
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
        if v is None:
            return None
        hosts = [h.strip() for h in v.split(",")]
        for h in hosts:
            host, sep, port = h.rpartition(":")
            if not h or any(c.isspace() for c in h) or (sep and (not host or not _is_port(port))):
                raise PydanticCustomError("bootstrap", "not a list of host:port addresses")
        return ",".join(hosts)

    @field_validator("forward_headers")
    @classmethod
    def _header_list(cls, v: str) -> str:
        names = [n.strip() for n in v.split(",") if n.strip()]
        for n in names:
            if not _HEADER_NAME.fullmatch(n):
                raise PydanticCustomError("headers", "not a comma list of header names")
        return ",".join(names)

    @property
    def forwarded_header_names(self) -> frozenset[str]:
        """Lower-case names of the request headers copied onto placements and dead letters."""
        extra = (n.lower() for n in self.forward_headers.split(",") if n)
        return frozenset({"traceparent", "tracestate", *extra})

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        proto, sasl = self.security_protocol, self.security_protocol.startswith("SASL_")
        topics = _topic_fields(self)
        dup = next((k for k, v in topics.items() if list(topics.values()).count(v) > 1), "")
        tls = next((k for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, k)), "")
        creds = (self.sasl_mechanism, self.sasl_username, self.sasl_password)
        hb, third = self.heartbeat_interval_ms, self.session_timeout_ms / 3
        rules: list[tuple[bool, str, object, str, str]] = [
            (
                hb >= third,
                "heartbeat_interval_ms",
                hb,
                "heartbeat must be under a third of the session timeout",
                f"less than {ENV_PREFIX}SESSION_TIMEOUT_MS / 3 = {third:g}",
            ),
            (bool(dup), dup, topics.get(dup), "two topics have the same name", "a name no other topic uses"),
            (
                sasl and None in creds,
                "security_protocol",
                proto,
                "SASL needs a mechanism, user and password",
                f"{ENV_PREFIX}SASL_MECHANISM, {ENV_PREFIX}SASL_USERNAME and {ENV_PREFIX}SASL_PASSWORD set",
            ),
            (
                not sasl and creds != (None, None, None),
                "security_protocol",
                proto,
                "SASL settings are given but the protocol does not use SASL, so they would be ignored",
                "SASL_SSL (or SASL_PLAINTEXT), or no SASL settings",
            ),
            (
                proto == "SASL_PLAINTEXT" and not self.allow_plaintext_credentials,
                "security_protocol",
                proto,
                "SASL credentials would cross the network unencrypted",
                f"SASL_SSL, or {ENV_PREFIX}ALLOW_PLAINTEXT_CREDENTIALS=true to accept the risk",
            ),
            (
                bool(tls) and not proto.endswith("SSL"),
                tls,
                str(getattr(self, tls, "")),
                "TLS files are given but the protocol does not use TLS",
                "SSL or SASL_SSL",
            ),
            (
                bool(self.ssl_keyfile) and not self.ssl_certfile,
                "ssl_certfile",
                None,
                "a TLS key file needs its certificate file",
                "the path of the certificate file",
            ),
        ]
        for broken, field, received, problem, expected in rules:
            if broken:
                ctx = {"problem": problem, "field": field, "received": received, "expected": expected}
                raise PydanticCustomError("settings_conflict", "{problem}", ctx)
        return self


def _is_port(text: str) -> bool:
    return text.isdigit() and 1 <= int(text) <= 65535


def _topic_fields(s: Settings) -> dict[str, str]:
    return {k: str(getattr(s, k)) for k in type(s).model_fields if k.startswith("topic_")}


def env_var(field: str) -> str:
    """The environment variable that sets ``field`` (``web_port`` -> ``CARBON_ROUTER_WEB_PORT``)."""
    return BOOTSTRAP_ENV if field == "kafka_bootstrap_servers" else ENV_PREFIX + field.upper()


def _allowed(field: str) -> str:
    """What a field accepts, in words, read from the JSON schema so it never drifts from the constraints."""
    prop: dict[str, Any] = Settings.model_json_schema(by_alias=False)["properties"].get(field, {})
    opts = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
    o = opts[0] if opts else prop
    parts: list[str] = []
    if "enum" in o:
        parts.append("one of " + ", ".join(str(x) for x in o["enum"]))
    elif o.get("format") == "file-path":
        parts.append("the path of an existing file")
    elif o.get("type") in {"integer", "number"}:
        kind = "an integer" if o["type"] == "integer" else "a number"
        lo = ">= {}".format(o["minimum"]) if "minimum" in o else None
        lo = "> {}".format(o["exclusiveMinimum"]) if "exclusiveMinimum" in o else lo
        hi = "<= {}".format(o["maximum"]) if "maximum" in o else None
        parts.append(" ".join([kind, *[b for b in (lo, "and" if lo and hi else None, hi) if b]]))
    elif o.get("type") == "boolean":
        parts.append("true or false")
    elif field == "forward_headers":
        parts.append("a comma list of header names (printable ASCII, no spaces), or empty")
    elif "pattern" in o:
        parts.append(f"a Kafka topic name: 1 to 249 of A-Z a-z 0-9 . _ - (pattern {o['pattern']})")
    elif field == "sasl_password":
        parts.append("a secret text (masked in every message and log)")
    elif field == "kafka_bootstrap_servers":
        parts.append("host:port[,host:port...]")
    else:
        parts.append("a non-empty text of at most 255 characters")
    if len(opts) < len(prop.get("anyOf", [prop])):
        parts.append("or unset")
    return " ".join(parts)


def _config_error(exc: ValidationError) -> ConfigError:
    """The first validation error as a ConfigError naming the variable, the value and what is allowed."""
    err = exc.errors(include_url=False)[0]
    ctx = err.get("ctx") or {}
    if err["type"] == "settings_conflict":
        field, received, expected = str(ctx["field"]), ctx["received"], str(ctx["expected"])
    else:
        loc = err.get("loc", ())
        field = str(loc[0]) if loc else "settings"
        received, expected = err.get("input"), _allowed(field)
        if field in {"AliasChoices", BOOTSTRAP_ENV}:
            field = "kafka_bootstrap_servers"
    if field == "sasl_password" or isinstance(received, SecretStr | Mapping):
        received = "**********" if field == "sasl_password" else None
    name = env_var(field)
    return ConfigError(str(err["msg"]), source=name, received=received, expected=expected)


def _unknown_env(environ: Mapping[str, str]) -> str | None:
    known = {env_var(f) for f in Settings.model_fields}
    return next(
        (k for k in sorted(environ) if k.upper().startswith(ENV_PREFIX) and k.upper() not in known), None
    )


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment, ``overrides`` (field names) winning; ConfigError if invalid."""
    unknown = _unknown_env(os.environ)
    if unknown is not None:
        names = sorted(env_var(f) for f in Settings.model_fields)
        close = difflib.get_close_matches(unknown.upper(), names, n=1)
        hint = f"{close[0]} (a typo?)" if close else "one of " + ", ".join(names)
        raise ConfigError("unknown setting", source=unknown, expected=hint)
    bad = sorted(set(overrides) - set(Settings.model_fields))
    if bad:
        raise ConfigError("unknown setting", source=bad[0], expected="a field of streams.settings.Settings")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc) from None


@dataclass(frozen=True, slots=True)
class ClientTuning:
    """Client timings suited to tansu: its group join takes about half the session timeout, fetches poll."""

    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    fetch_max_wait_ms: int = 20

    def overrides(self) -> dict[str, int]:
        """These timings as ``load_settings`` overrides."""
        return asdict(self)


#: The one place with the client timings used against the embedded tansu broker (tests and demo).
TANSU_TUNING = ClientTuning()


def embedded_settings(bootstrap: str, **overrides: Any) -> Settings:
    """Settings for the embedded broker at ``bootstrap``: TANSU_TUNING, then ``overrides``, then the env."""
    return load_settings(**{**TANSU_TUNING.overrides(), "kafka_bootstrap_servers": bootstrap, **overrides})


def _ssl_context(s: Settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=None if s.ssl_cafile is None else str(s.ssl_cafile))
    if s.ssl_certfile is not None:
        ctx.load_cert_chain(str(s.ssl_certfile), None if s.ssl_keyfile is None else str(s.ssl_keyfile))
    return ctx


def client_kwargs(s: Settings) -> dict[str, Any]:
    """The aiokafka keyword arguments every client shares; the only place the password is unwrapped."""
    if s.kafka_bootstrap_servers is None:
        raise ConfigError("no broker address", source=BOOTSTRAP_ENV, expected="host:port[,host:port...]")
    kw: dict[str, Any] = {
        "bootstrap_servers": s.kafka_bootstrap_servers,
        "client_id": f"carbon-router-{s.worker_id}",
        "request_timeout_ms": s.request_timeout_ms,
        "security_protocol": s.security_protocol,
    }
    if s.security_protocol.endswith("SSL"):
        kw["ssl_context"] = _ssl_context(s)
    if s.security_protocol.startswith("SASL_"):
        assert s.sasl_password is not None  # guaranteed by Settings._check_security
        kw["sasl_mechanism"] = s.sasl_mechanism
        kw["sasl_plain_username"] = s.sasl_username
        kw["sasl_plain_password"] = s.sasl_password.get_secret_value()
    return kw


def producer_kwargs(s: Settings) -> dict[str, Any]:
    """Producer arguments: acks=all; idempotence off by default because tansu refuses InitProducerId."""
    return {
        **client_kwargs(s),
        "acks": "all",
        "enable_idempotence": s.producer_idempotence,
        "linger_ms": 5,
        "compression_type": None if s.compression == "none" else s.compression,
        # a dead letter carries the raw value (base64 at most 4/3 larger) plus a little JSON around it
        "max_request_size": max(1_048_576, 2 * s.max_message_bytes + 4096),
    }


def consumer_kwargs(s: Settings, *, group: bool = True) -> dict[str, Any]:
    """Consumer arguments: manual commits, earliest offsets, the settings' timings and batch size."""
    return {
        **client_kwargs(s),
        "group_id": s.group_id if group else None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": s.session_timeout_ms,
        "heartbeat_interval_ms": s.heartbeat_interval_ms,
        "max_poll_interval_ms": s.max_poll_interval_ms,
        "fetch_max_wait_ms": s.fetch_max_wait_ms,
        "max_poll_records": s.max_batch,
        "max_partition_fetch_bytes": max(1_048_576, 2 * s.max_message_bytes),
    }
