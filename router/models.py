"""Pydantic models of every message the router reads or writes (docs/contract.md, "Messages").

These are the edge of the system: JSON in, validated objects out. Units live in field names, timestamps are
epoch seconds (float, UTC; ``router.clock``). Models are strict (no silent string-to-number coercion), refuse
NaN and inf, refuse unknown fields (a typo must not silently drop a constraint; the live worker's
``CARBON_ROUTER_EXTRA_FIELDS=ignore`` strips them first, see ``strip_unknown``), and hold every number within
the bounds of ``router.bounds``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from router.bounds import (
    MAX_CAPACITY_KW,
    MAX_CODE_LEN,
    MAX_DUAL_USD_PER_WH,
    MAX_ENERGY_WH,
    MAX_EPOCH,
    MAX_FORECAST_POINTS,
    MAX_GCO2_PER_KWH,
    MAX_ID_LEN,
    MAX_JURISDICTIONS,
    MAX_MS,
    MAX_NU_USD_PER_G,
    MAX_PAYLOAD_BYTES,
    MAX_PRICE_USD_PER_MWH,
    MAX_SEQ,
    MAX_SHARES_VERSION,
    MAX_STATE_BYTES,
    MAX_STEP_S,
    MAX_TOKENS,
    MAX_VALID_FOR_S,
    MIN_PRICE_USD_PER_MWH,
    PUE_MAX,
    PUE_MIN,
)
from router.clock import plausible_problem
from router.errors import InputError
from router.problems import problems_from_validation

__all__ = [
    "INPUT_MODELS",
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
    "RunnerUp",
    "SharesMessage",
    "Terms",
    "input_error_from_validation",
    "strip_unknown",
]

_STRICT = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)


def _epoch_seconds(ts: float) -> float:
    problem = plausible_problem(ts)
    if problem is not None:
        raise PydanticCustomError(
            "epoch_seconds", "{problem}", {"problem": problem[0], "expected": problem[1]}
        )
    return ts


Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LEN)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
#: epoch seconds, 1970-01-01 to 2100-01-01 (router.clock)
TimeStamp = Annotated[float, Field(ge=0), AfterValidator(_epoch_seconds)]
Price = Annotated[float, Field(ge=MIN_PRICE_USD_PER_MWH, le=MAX_PRICE_USD_PER_MWH)]
Carbon = Annotated[float, Field(ge=0, le=MAX_GCO2_PER_KWH)]
Code = Annotated[str, Field(min_length=1, max_length=MAX_CODE_LEN)]
Share = Annotated[float, Field(ge=0, le=1)]


class Request(BaseModel):
    """One inference request entering a service node."""

    model_config = _STRICT

    request_id: Id
    origin: Id
    latency_budget_ms: Annotated[float, Field(gt=0, le=MAX_MS)]
    energy_wh: Annotated[float, Field(gt=0, le=MAX_ENERGY_WH)] | None = None
    tokens: Annotated[int, Field(gt=0, le=MAX_TOKENS)] | None = None
    model: Id | None = None
    compute_ms: Annotated[float, Field(ge=0, le=MAX_MS)] | None = None
    payload_bytes: Annotated[int, Field(ge=0, le=MAX_PAYLOAD_BYTES)] = 0
    state_region: Id | None = None
    state_bytes: Annotated[int, Field(ge=0, le=MAX_STATE_BYTES)] = 0
    state_pinned: bool = False
    #: ISO country codes or region tags, compared case-insensitively (``router.plan``)
    allowed_jurisdictions: (
        Annotated[tuple[Code, ...], Field(strict=False, max_length=MAX_JURISDICTIONS)] | None
    ) = None
    tenant: Annotated[str, Field(max_length=MAX_ID_LEN)] | None = None
    ts: TimeStamp | None = None
    #: a conversation: its requests stay in one region (docs/model.md, "Sticky sessions")
    session_id: Id | None = None

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
    price_usd_per_mwh: Price | None = None
    marginal_gco2_per_kwh: Carbon | None = None
    pue: Annotated[float, Field(ge=PUE_MIN, le=PUE_MAX)] | None = None
    valid_for_s: Annotated[float, Field(gt=0, le=MAX_VALID_FOR_S)] | None = None
    source: Annotated[str, Field(max_length=MAX_ID_LEN)] | None = None
    # provenance, filled by the provider adapters (streams.adapters); all optional
    #: an *average* grid intensity (e.g. Electricity Maps); never used as the marginal value by itself
    average_gco2_per_kwh: Carbon | None = None
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


class ForecastPoint(BaseModel):
    """One point of a forecast: the value expected for the step starting at ``ts``."""

    model_config = _STRICT

    ts: TimeStamp
    price_usd_per_mwh: Price | None = None
    marginal_gco2_per_kwh: Carbon | None = None

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
    step_s: Annotated[float, Field(gt=0, le=MAX_STEP_S)]
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
    #: finite, at most router.bounds.MAX_CAPACITY_KW (a status cannot lift a limit: send a large value)
    capacity_kw: Annotated[float, Field(ge=0, le=MAX_CAPACITY_KW)] | None = None
    healthy: bool | None = None


class Baseline(BaseModel):
    """What the request would have cost at its home region."""

    model_config = _STRICT

    region: str
    energy_usd: float | None
    carbon_g: float | None = Field(description="marginal carbon at home, location-based (g CO2)")
    feasible: bool


class RunnerUp(BaseModel):
    """The feasible region with the lowest score after the pick (ties: the lowest region index)."""

    model_config = _STRICT

    region: str
    score_usd: float


class Terms(BaseModel):
    """The pick's score in its parts, USD; they sum to ``score_usd`` up to floating-point rounding."""

    model_config = _STRICT

    energy_usd: float
    #: ``carbon_usd_per_tonne * carbon_g / 1e6``: marginal carbon priced at the topology's lambda
    carbon_usd: float
    egress_usd: float
    #: ``relocation_fixed_usd`` away from home, else 0
    relocation_usd: float
    #: ``dual_scale * mu_j * energy_wh``: the capacity dual of the re-solve in use
    dual_usd: float
    #: ``nu * carbon_g``: the tenant's carbon-budget dual (USD per g); only for a budgeted tenant
    dual_carbon_usd: float | None = None


class Placement(BaseModel):
    """Exactly one per request, also for rejected ones. ``runner_up`` and ``terms`` are present only when
    explanations are on (``CARBON_ROUTER_EXPLAIN``, ``score --explain``); absent otherwise."""

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
    carbon_g: float | None = Field(description="marginal carbon at the chosen region, location-based (g CO2)")
    egress_usd: float | None
    score_usd: float | None
    baseline: Baseline
    feasible_regions: int
    relocatable: bool
    removed: dict[str, int]
    #: age of the older of the two values the chosen region was scored with (price, marginal carbon): a
    #: live value's age is ``t - ts``, a forecast value's ``t - generated_at``; None for topology defaults
    #: and priors
    signal_age_s: float | None
    #: where the chosen region's values came from: ``live`` (both fresh), ``forecast`` (at least one from
    #: the latest forecast, the other fresh or forecast), ``prior`` (at least one the topology's prior
    #: standing in for a stale value, router/priors.py) or ``stale`` (home only); None when rejected
    signal_source: Literal["live", "forecast", "stale", "prior"] | None = None
    #: ``generated_at`` of the forecast a value of the chosen region came from (None when none)
    forecast_generated_at: float | None = None
    signals_version: int
    shares_version: int
    event_ts: float
    decided_at: float
    #: the request's tenant, when it gave one
    tenant: str | None = None
    #: the request's session, when it gave one, and whether this request moved it to another region
    session_id: str | None = None
    session_moved: bool | None = None
    #: explanations (absent when off): the runner-up, null when the pick was the only feasible region or
    #: the request was rejected; the pick's score terms, null when rejected
    runner_up: RunnerUp | None = None
    terms: Terms | None = None


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
    #: a skipped batch (``field`` "batch"): its last offset; ``offset`` is its first
    last_offset: int | None = None


class SharesMessage(BaseModel):
    """The latest capacity re-solve: shares per demand group, duals per region (``router.shares``).

    Ordered by ``(epoch, seq)``: ``epoch`` is the leadership term the group handed out (docs/contract.md,
    "Shares and leadership"), ``seq`` the leader's solve count in it, ``version = epoch * 2**32 + seq``.
    ``mac`` (HMAC-SHA256 over the rest, keyed by the term's secret) proves it came from that term's leader.
    """

    model_config = _STRICT

    version: Annotated[int, Field(ge=0, le=MAX_SHARES_VERSION)]
    ts: TimeStamp
    ok: bool
    status: Annotated[str, Field(max_length=MAX_ID_LEN)]
    regions: Annotated[tuple[Id, ...], Field(strict=False)]
    mu_usd_per_wh: dict[Id, Annotated[float, Field(ge=0, le=MAX_DUAL_USD_PER_WH)]]
    groups: Annotated[tuple[Annotated[str, Field(max_length=4096)], ...], Field(strict=False)]
    shares: Annotated[tuple[Annotated[tuple[Share, ...], Field(strict=False)], ...], Field(strict=False)]
    unserved_share: Annotated[tuple[Share, ...], Field(strict=False)]
    solve_s: Annotated[float, Field(ge=0, le=3600)]
    #: the budgeted tenants' carbon duals, tenant -> USD per g (absent: no budgeted tenant)
    nu_usd_per_g: dict[Id, Annotated[float, Field(ge=0, le=MAX_NU_USD_PER_G)]] | None = None
    leader: Id | None = None  # worker id of the leader that solved it
    epoch: Annotated[int, Field(ge=0, le=MAX_EPOCH)] = 0
    seq: Annotated[int, Field(ge=0, le=MAX_SEQ)] = 0
    mac: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


#: The messages the router reads, by name (the JSON Schemas and the did-you-mean of unknown fields).
INPUT_MODELS: dict[str, type[BaseModel]] = {
    "Request": Request,
    "GridSignal": GridSignal,
    "GridForecast": GridForecast,
    "RegionStatus": RegionStatus,
    "SharesMessage": SharesMessage,
}
_NESTED: dict[str, tuple[str, type[BaseModel]]] = {"GridForecast": ("points", ForecastPoint)}
_OUTPUT_MODELS: dict[str, type[BaseModel]] = {"Placement": Placement, "DeadLetter": DeadLetter}


def strip_unknown(obj: Mapping[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """``obj`` without the keys ``model`` does not know (also inside a forecast's points)."""
    known = model.model_fields
    out = {k: v for k, v in obj.items() if k in known}
    nested = _NESTED.get(model.__name__)
    if nested is not None and isinstance(out.get(nested[0]), list):
        out[nested[0]] = [strip_unknown(p, nested[1]) if isinstance(p, dict) else p for p in out[nested[0]]]
    return out


def input_error_from_validation(exc: ValidationError, *, source: str, line: int | None = None) -> InputError:
    """Every pydantic error as one InputError (``router.problems``); its single fields name the first."""
    model = INPUT_MODELS.get(exc.title) or _OUTPUT_MODELS.get(exc.title)
    return InputError.from_problems(problems_from_validation(exc, source, line, model=model))
