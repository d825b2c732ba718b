"""The placement message as a type: what ``router.encode.placements`` builds and every reader reads.

``router.models.Placement`` (pydantic) validates a placement read back and generates
router/schemas/Placement.json; this ``TypedDict`` describes the same fields for the dicts the router builds
(no cost at run time: they stay plain dicts, ready for orjson), so mypy checks every field a reader
touches. tests/router/test_totals.py keeps the two in step.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "BaselineMessage",
    "Layer",
    "PlacementMessage",
    "RunnerUpMessage",
    "SignalSource",
    "Status",
    "TenantTermsMessage",
    "TermsMessage",
]

Status = Literal["placed", "rejected"]
Layer = Literal["local", "regional", "energy"]
SignalSource = Literal["live", "forecast", "stale", "prior"]


class BaselineMessage(TypedDict):
    """The same request at its home region (the all-local baseline); null values: the home has no value."""

    region: str
    energy_usd: float | None
    carbon_g: float | None
    feasible: bool


class RunnerUpMessage(TypedDict):
    """The feasible region with the lowest score after the pick, and that score."""

    region: str
    score_usd: float


class TermsMessage(TypedDict):
    """The pick's score in its parts (USD); they sum to ``score_usd`` up to rounding."""

    energy_usd: float
    carbon_usd: float
    egress_usd: float
    relocation_usd: float
    dual_usd: float


class TenantTermsMessage(TermsMessage, total=False):
    """The terms of a budgeted tenant's request: the carbon-budget dual's part too."""

    dual_carbon_usd: float


class _Decided(TypedDict):
    """The fields every placement has (``PlacementMessage`` adds the explanations)."""

    request_id: str
    status: Status
    region: str | None
    origin: str
    home_region: str
    layer: Layer | None
    reason: str
    latency_ms: float | None
    energy_wh: float
    facility_wh: float | None
    energy_usd: float | None
    carbon_g: float | None
    egress_usd: float | None
    score_usd: float | None
    baseline: BaselineMessage
    feasible_regions: int
    relocatable: bool
    removed: dict[str, int]
    signal_age_s: float | None
    signal_source: SignalSource | None
    forecast_generated_at: float | None
    signals_version: int
    shares_version: int
    event_ts: float
    decided_at: float


class PlacementMessage(_Decided, total=False):
    """One decision; the fields after ``energy_wh`` that only a placed request has are null when rejected.
    ``tenant`` only when the request gave one, ``session_id`` and ``session_moved`` only when it gave a
    session; the last two are the explanations, present only when they are on (``router.encode``)."""

    tenant: str
    session_id: str
    session_moved: bool
    runner_up: RunnerUpMessage | None
    terms: TenantTermsMessage | None
