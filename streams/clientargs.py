"""What the Kafka clients are given (README.md, "Settings" and "Running on Apache Kafka"): the aiokafka
keyword arguments every client, producer and consumer is built with, and the client timings suited to the
embedded tansu broker.

``client_kwargs`` is the only place the SASL password is unwrapped. ``TANSU_TUNING`` is the one place with
the tansu timings; ``streams.settings.embedded_settings`` applies them. The faust app of the control plane
takes the same address, credentials and timings (``streams.control.faust_app``).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticCustomError

from router.errors import ConfigError
from streams.settingerrors import BOOTSTRAP_ENV

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = [
    "TANSU_TUNING",
    "ClientTuning",
    "bootstrap_list",
    "client_kwargs",
    "consumer_kwargs",
    "header_list",
    "producer_kwargs",
]

#: a header name as Kafka clients accept it: printable ASCII but ``,`` (the list separator)
_HEADER_NAME = re.compile(r"[!-+\--~]{1,249}")


def bootstrap_list(v: str) -> str:
    """``kafka_bootstrap_servers`` normalised (``host[:port]`` items, spaces around commas dropped)."""
    hosts = [h.strip() for h in v.split(",")]
    for h in hosts:
        host, sep, port = h.rpartition(":")
        bad_port = sep and (not host or not (port.isdigit() and 1 <= int(port) <= 65535))
        if not h or any(c.isspace() for c in h) or bad_port:
            raise PydanticCustomError("bootstrap", "not a list of host:port addresses")
    return ",".join(hosts)


def header_list(v: str) -> str:
    """``forward_headers`` normalised (names, empty items dropped)."""
    names = [n.strip() for n in v.split(",") if n.strip()]
    for n in names:
        if not _HEADER_NAME.fullmatch(n):
            raise PydanticCustomError("headers", "not a comma list of header names")
    return ",".join(names)


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
        assert s.sasl_password is not None  # guaranteed by streams.settingerrors.check_consistent
        kw["sasl_mechanism"] = s.sasl_mechanism
        kw["sasl_plain_username"] = s.sasl_username
        kw["sasl_plain_password"] = s.sasl_password.get_secret_value()
    return kw


#: Producer batch size of the data plane: a decided batch leaves in one or two produce batches per partition.
WHOLE_BATCH_BYTES = 512 * 1024


def producer_kwargs(s: Settings, *, whole_batches: bool = False) -> dict[str, Any]:
    """Producer arguments: acks=all; idempotence off by default because tansu refuses InitProducerId.

    ``whole_batches`` for a producer that hands over decided batches (the data plane): no linger and large
    produce batches, so a batch leaves the process at once instead of in 16 KiB pieces, each waiting for
    the one before it (a message still held in the process when a worker freezes is sent when it wakes).
    """
    return {
        **client_kwargs(s),
        "acks": "all",
        "enable_idempotence": s.producer_idempotence,
        "linger_ms": 0 if whole_batches else 5,
        **({"max_batch_size": WHOLE_BATCH_BYTES} if whole_batches else {}),
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
