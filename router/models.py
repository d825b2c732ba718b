"""Pydantic models of every message in the contract (``shared/contract.md``).

These are the edge of the system: JSON in, validated objects out. Units live in field names, timestamps are
epoch seconds (float, UTC). Models are strict (no silent string-to-number coercion) and refuse NaN and inf.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.errors import InputError
from router.problems import problems_from_validation

__all__ = [
    "MAX_ENERGY_WH",
    "MAX_FORECAST_POINTS",
    "MAX_ID_LEN",
    "Baseline",
    "DeadLetter",
    "ForecastPoint",
    "GridForecast",
    "GridSignal",
    "Placement",
    "RegionStatus",
    "Request",
    "SharesMessage",
    "input_error_from_validation",
]

MAX_ID_LEN = 256
#: Largest IT energy of one request (1 MWh): far above any inference request, and small enough that the
#: capacity windows' integer nano-Wh never overflow.
MAX_ENERGY_WH = 1e6
#: Largest latency budget or compute time (about 11.6 days), so that budget what-ifs stay finite.
MAX_MS = 1e9

_STRICT = ConfigDict(strict=True, frozen=True, extra="ignore", allow_inf_nan=False)

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LEN)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
TimeStamp = Annotated[float, Field(ge=0)]


class Request(BaseModel):
    """One inference request entering a service node."""

    model_config = _STRICT

    request_id: Id
    origin: Id
    latency_budget_ms: Annotated[float, Field(gt=0, le=MAX_MS)]
    energy_wh: Annotated[float, Field(gt=0, le=MAX_ENERGY_WH)] | None = None
    tokens: Annotated[int, Field(gt=0, le=10_000_000)] | None = None
    model: Id | None = None
    compute_ms: Annotated[float, Field(ge=0, le=MAX_MS)] | None = None
    payload_bytes: Annotated[int, Field(ge=0, le=1 << 40)] = 0
    state_region: Id | None = None
    state_bytes: Annotated[int, Field(ge=0, le=1 << 44)] = 0
    state_pinned: bool = False
    allowed_jurisdictions: Annotated[tuple[Id, ...], Field(strict=False)] | None = None
    tenant: Annotated[str, Field(max_length=MAX_ID_LEN)] | None = None
    ts: TimeStamp | None = None

    @model_validator(mode="after")
    def _energy_is_known(self) -> Request:
        if self.energy_wh is None and (self.tokens is None or self.model is None):
            raise ValueError("energy unknown: give energy_wh (> 0), or tokens and model")
        if self.state_pinned and self.state_region is None:
            raise ValueError("state_pinned is true but state_region is missing")
        return self


class GridSignal(BaseModel):
    """A grid signal for one region; fields it leaves out keep their last value."""

    model_config = _STRICT

    region: Id
    ts: TimeStamp
    price_usd_per_mwh: Annotated[float, Field(ge=-1e5, le=1e6)] | None = None
    marginal_gco2_per_kwh: Annotated[float, Field(ge=0, le=1e4)] | None = None
    pue: Annotated[float, Field(ge=1.0, le=5.0)] | None = None
    valid_for_s: PositiveFloat | None = None
    source: Annotated[str, Field(max_length=MAX_ID_LEN)] | None = None
    # provenance, filled by the provider adapters (streams.adapters); all optional
    #: an *average* grid intensity (e.g. Electricity Maps); never used as the marginal value by itself
    average_gco2_per_kwh: Annotated[float, Field(ge=0, le=1e4)] | None = None
    #: the provider estimated the value (True) or measured / cleared it (False)
    estimated: bool | None = None
    #: when the provider generated the value (epoch s)
    generated_at: TimeStamp | None = None
    #: the provider's own zone name (e.g. WattTime ``CAISO_NORTH``, ENTSO-E EIC ``10YAT-APG------L``)
    provider_zone: Annotated[str, Field(max_length=MAX_ID_LEN)] | None = None

    @model_validator(mode="after")
    def _carries_a_value(self) -> GridSignal:
        values = (self.price_usd_per_mwh, self.marginal_gco2_per_kwh, self.pue, self.average_gco2_per_kwh)
        if all(v is None for v in values):
            raise ValueError(
                "signal carries no value: give price_usd_per_mwh, marginal_gco2_per_kwh, pue"
                " or average_gco2_per_kwh"
            )
        return self


#: Most points one forecast may carry (WattTime issues 24 h at 5-minute steps = 288 points).
MAX_FORECAST_POINTS = 4096


class ForecastPoint(BaseModel):
    """One point of a forecast: the value expected for the step starting at ``ts``."""

    model_config = _STRICT

    ts: TimeStamp
    price_usd_per_mwh: Annotated[float, Field(ge=-1e5, le=1e6)] | None = None
    marginal_gco2_per_kwh: Annotated[float, Field(ge=0, le=1e4)] | None = None

    @model_validator(mode="after")
    def _carries_a_value(self) -> ForecastPoint:
        if self.price_usd_per_mwh is None and self.marginal_gco2_per_kwh is None:
            raise ValueError(
                "forecast point carries no value: give marginal_gco2_per_kwh or price_usd_per_mwh"
            )
        return self


class GridForecast(BaseModel):
    """A provider's forecast for one region (topic ``grid.forecasts``): points in increasing ``ts``.

    The latest forecast per region (by ``generated_at``) replaces the previous one. ``step_s`` is the
    length of each point's step (WattTime: 300 s).
    """

    model_config = _STRICT

    region: Id
    generated_at: TimeStamp
    step_s: PositiveFloat
    points: Annotated[
        tuple[ForecastPoint, ...], Field(strict=False, min_length=1, max_length=MAX_FORECAST_POINTS)
    ]
    source: Annotated[str, Field(max_length=MAX_ID_LEN)] | None = None
    provider_zone: Annotated[str, Field(max_length=MAX_ID_LEN)] | None = None

    @model_validator(mode="after")
    def _increasing(self) -> GridForecast:
        ts = [p.ts for p in self.points]
        if any(b <= a for a, b in itertools.pairwise(ts)):
            raise ValueError("forecast points must be in strictly increasing ts")
        return self


class RegionStatus(BaseModel):
    """Capacity and health of one region."""

    model_config = _STRICT

    region: Id
    ts: TimeStamp
    capacity_kw: NonNegFloat | None = None
    healthy: bool | None = None


class Baseline(BaseModel):
    """What the request would have cost at its home region."""

    model_config = _STRICT

    region: str
    energy_usd: float | None
    carbon_g: float | None
    feasible: bool


class Placement(BaseModel):
    """Exactly one per request, also for rejected ones."""

    model_config = _STRICT

    request_id: str
    status: Literal["placed", "rejected"]
    region: str | None
    origin: str
    home_region: str
    layer: Literal["local", "regional", "energy"] | None
    reason: str
    latency_ms: float | None
    energy_wh: float
    facility_wh: float | None
    energy_usd: float | None
    carbon_g: float | None
    egress_usd: float | None
    score_usd: float | None
    baseline: Baseline
    feasible_regions: int
    relocatable: bool
    removed: dict[str, int]
    #: age of the older of the two values the chosen region was scored with (price, marginal carbon): a
    #: live value's age is ``t - ts``, a forecast value's ``t - generated_at``; None for topology defaults
    signal_age_s: float | None
    #: where the chosen region's values came from: ``live`` (both fresh), ``forecast`` (at least one from
    #: the latest forecast, the other fresh or forecast) or ``stale`` (home only); None when rejected
    signal_source: Literal["live", "forecast", "stale"] | None = None
    #: ``generated_at`` of the forecast a value of the chosen region came from (None when none)
    forecast_generated_at: float | None = None
    signals_version: int
    shares_version: int
    event_ts: float
    decided_at: float


class DeadLetter(BaseModel):
    """A message we could not use, with the reason and the original bytes."""

    model_config = _STRICT

    error: str
    field: str | None
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
    topic: str
    partition: int | None
    offset: int | None


class SharesMessage(BaseModel):
    """The latest capacity re-solve: shares per demand group, duals per region."""

    model_config = _STRICT

    version: int
    ts: float
    ok: bool
    status: str
    regions: Annotated[tuple[str, ...], Field(strict=False)]
    mu_usd_per_wh: dict[str, float]
    groups: Annotated[tuple[str, ...], Field(strict=False)]
    shares: Annotated[tuple[tuple[float, ...], ...], Field(strict=False)]
    unserved_share: Annotated[tuple[float, ...], Field(strict=False)]
    solve_s: float
    leader: str | None = None  # worker id of the leader that solved it


def input_error_from_validation(exc: ValidationError, *, source: str, line: int | None = None) -> InputError:
    """Every pydantic error as one InputError (``router.problems``); its single fields name the first."""
    return InputError.from_problems(problems_from_validation(exc, source, line))


def _expected_from(err: object) -> str | None:
    """A short 'expected ...' phrase from a pydantic error dict."""
    if not isinstance(err, dict):
        return None
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "the field to be present"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        bound = next(iter(ctx.values()), None)
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[
            kind
        ]
        return f"a number {op} {bound}"
    if kind == "finite_number":
        return "a finite number (no NaN or inf)"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return kind.replace("_type", "").replace("_parsing", "") + " value"
    return None
