"""What an invalid setting says (README.md, "Settings"): the variable of each field, the rules between
fields, and the ConfigError of a bad value or an unknown variable.

Every message names the environment variable (``env_var``), the value received (a password masked) and
what is allowed, read from the field's JSON schema (``allowed``) so that it never drifts from the
constraints; an unknown ``CARBON_ROUTER_*`` variable is refused with the closest real name. The settings
model (``streams.settings``) calls these; nothing here reads the environment.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, ValidationError
from pydantic_core import PydanticCustomError

from router.errors import ConfigError

if TYPE_CHECKING:
    from streams.settings import Settings

__all__ = [
    "BOOTSTRAP_ENV",
    "ENV_PREFIX",
    "allowed",
    "check_consistent",
    "config_error",
    "env_var",
    "unknown_setting",
]

ENV_PREFIX = "CARBON_ROUTER_"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"


def env_var(field: str) -> str:
    """The environment variable that sets ``field`` (``web_port`` -> ``CARBON_ROUTER_WEB_PORT``)."""
    return BOOTSTRAP_ENV if field == "kafka_bootstrap_servers" else ENV_PREFIX + field.upper()


def _topic_fields(s: Settings) -> dict[str, str]:
    return {k: str(getattr(s, k)) for k in type(s).model_fields if k.startswith("topic_")}


def check_consistent(s: Settings) -> None:
    """Raise the first broken rule between fields as a ``settings_conflict`` naming the field and the fix."""
    proto, sasl = s.security_protocol, s.security_protocol.startswith("SASL_")
    topics = _topic_fields(s)
    dup = next((k for k, v in topics.items() if list(topics.values()).count(v) > 1), "")
    tls = next((k for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(s, k)), "")
    creds = (s.sasl_mechanism, s.sasl_username, s.sasl_password)
    hb, third = s.heartbeat_interval_ms, s.session_timeout_ms / 3
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
            proto == "SASL_PLAINTEXT" and not s.allow_plaintext_credentials,
            "security_protocol",
            proto,
            "SASL credentials would cross the network unencrypted",
            f"SASL_SSL, or {ENV_PREFIX}ALLOW_PLAINTEXT_CREDENTIALS=true to accept the risk",
        ),
        (
            bool(tls) and not proto.endswith("SSL"),
            tls,
            str(getattr(s, tls, "")),
            "TLS files are given but the protocol does not use TLS",
            "SSL or SASL_SSL",
        ),
        (
            s.door and s.door_token is None,
            "door_token",
            None,
            "the synchronous door needs a bearer token",
            f"{ENV_PREFIX}DOOR_TOKEN of at least 16 characters, or {ENV_PREFIX}DOOR=false",
        ),
        (
            bool(s.ssl_keyfile) and not s.ssl_certfile,
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


def allowed(prop: Mapping[str, Any], field: str) -> str:
    """What a field accepts, in words, from its JSON schema property ``prop`` (never drifts from the
    constraints)."""
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


def config_error(exc: ValidationError, allowed_of: Callable[[str], str]) -> ConfigError:
    """The first validation error as a ConfigError naming the variable, the value and what is allowed
    (``allowed_of(field)``)."""
    err = exc.errors(include_url=False)[0]
    ctx = err.get("ctx") or {}
    if err["type"] == "settings_conflict":
        field, received, expected = str(ctx["field"]), ctx["received"], str(ctx["expected"])
    else:
        loc = err.get("loc", ())
        field = str(loc[0]) if loc else "settings"
        received, expected = err.get("input"), allowed_of(field)
        if field in {"AliasChoices", BOOTSTRAP_ENV}:
            field = "kafka_bootstrap_servers"
    if field == "sasl_password" or isinstance(received, SecretStr | Mapping):
        received = "**********" if field == "sasl_password" else None
    name = env_var(field)
    return ConfigError(str(err["msg"]), source=name, received=received, expected=expected)


def unknown_setting(environ: Mapping[str, str], fields: Iterable[str]) -> ConfigError | None:
    """The ConfigError of the first ``CARBON_ROUTER_*`` variable that sets none of ``fields``, suggesting
    the closest real name; None when there is none."""
    names = sorted(env_var(f) for f in fields)
    known = set(names)
    unknown = next(
        (k for k in sorted(environ) if k.upper().startswith(ENV_PREFIX) and k.upper() not in known), None
    )
    if unknown is None:
        return None
    close = difflib.get_close_matches(unknown.upper(), names, n=1)
    hint = f"{close[0]} (a typo?)" if close else "one of " + ", ".join(names)
    return ConfigError("unknown setting", source=unknown, expected=hint)
