"""JSON Schemas (draft 2020-12) of every message the router reads or writes, shipped as files beside this one.

Each ``<Name>.json`` is generated from the pydantic model of ``router.models`` (``model_json_schema()``,
validation mode, plus ``$schema``) by ``scripts/build_schemas.py``; ``tests/router/test_schemas.py`` fails
when a file differs from what the models generate, so a change to a model is followed by rerunning the script.
``carbon-router schema [NAME]`` prints one. A schema states types, bounds and required fields; the rules that
span several fields (e.g. a Request needs ``energy_wh``, or ``tokens`` and ``model``) cannot be said in JSON
Schema: ``RULES`` writes them into the schema's ``$comment`` and the models check them.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from router.errors import InputError
from router.models import (
    DeadLetter,
    GridForecast,
    GridSignal,
    Placement,
    RegionStatus,
    Request,
    SharesMessage,
)

__all__ = ["DIALECT", "MESSAGES", "RULES", "generate", "lookup", "render", "schema_path"]

#: the JSON Schema dialect pydantic generates
DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: message name -> model, in the order of the README's Messages section
MESSAGES: dict[str, type[BaseModel]] = {
    "Request": Request,
    "Placement": Placement,
    "DeadLetter": DeadLetter,
    "GridSignal": GridSignal,
    "GridForecast": GridForecast,
    "RegionStatus": RegionStatus,
    "SharesMessage": SharesMessage,
}
#: what the models check beyond the schema (their ``model_validator``s), in words
RULES: dict[str, str] = {
    "Request": "also checked: energy_wh, or both tokens and model; state_pinned true needs state_region; "
    "numbers are finite (no NaN or inf)",
    "GridSignal": "also checked: at least one of price_usd_per_mwh, marginal_gco2_per_kwh, pue, "
    "average_gco2_per_kwh; numbers are finite",
    "GridForecast": "also checked: points in strictly increasing ts; each point carries price_usd_per_mwh or "
    "marginal_gco2_per_kwh; numbers are finite",
    "RegionStatus": "also checked: numbers are finite",
}


def generate(name: str) -> dict[str, Any]:
    """The JSON Schema of message ``name`` as the models define it now."""
    schema: dict[str, Any] = {"$schema": DIALECT}
    if name in RULES:
        schema["$comment"] = RULES[name]
    return {**schema, **MESSAGES[name].model_json_schema(mode="validation")}


def render(schema: dict[str, Any]) -> bytes:
    """A schema as the bytes of its file (indented JSON, newline at the end)."""
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2) + b"\n"


def schema_path(name: str) -> Path:
    """The shipped schema file of message ``name``."""
    return Path(str(resources.files("router").joinpath("schemas", f"{name}.json")))


def lookup(name: str) -> str:
    """The message name ``name`` stands for (case does not matter); InputError naming the closest one."""
    by_lower = {n.lower(): n for n in MESSAGES}
    got = by_lower.get(name.lower())
    if got is not None:
        return got
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
    hint = f"; did you mean '{by_lower[close[0]]}'?" if close else ""
    raise InputError(
        "unknown message name",
        source="carbon-router schema",
        received=name,
        expected=f"one of {', '.join(MESSAGES)}{hint}",
    )
