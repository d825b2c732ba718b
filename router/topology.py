"""The topology file: regions, service nodes, models, RTTs, egress prices and objective weights.

Loaded from TOML (or JSON), validated as a whole, refused at load when inconsistent. Missing RTT pairs are
estimated from great-circle distance; missing egress pairs use ``objective.default_egress_usd_per_gb``.

The optional ``[providers]`` table maps each provider's zones (``watttime``, ``electricitymaps``, ``entsoe``,
``csv``: a zone -> region ids, at most one zone per region and provider) to regions and holds ``usd_per``,
the exchange rates to USD (README.md, "Topology"; ``router.providers``).
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from router.bounds import (
    MAX_CAPACITY_KW,
    MAX_CAPACITY_WINDOW_S,
    MAX_GCO2_PER_KWH,
    MAX_MS,
    MAX_PRICE_USD_PER_MWH,
    MAX_VALID_FOR_S,
    MIN_PRICE_USD_PER_MWH,
    MIN_RTT_MS,
    PUE_MAX,
    PUE_MIN,
    UNUSUAL_CAPACITY_KW,
    UNUSUAL_RTT_MS,
)
from router.distance import INTRA_REGION_RTT_MS, estimate_rtt_ms
from router.errors import ConfigError
from router.priors import PriorFields
from router.problems import problems_from_validation
from router.tenants import Tenant

__all__ = [
    "INTRA_REGION_RTT_MS",
    "Model",
    "Objective",
    "Providers",
    "Region",
    "ServiceNode",
    "Topology",
    "default_topology_path",
    "estimate_rtt_ms",
    "load_topology",
]

_CFG = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

Id = Annotated[str, Field(min_length=1, max_length=256)]
#: every number has a finite upper bound (router.bounds): a value the code cannot hold is refused here
Pos = Annotated[float, Field(gt=0, le=1e9)]
NonNeg = Annotated[float, Field(ge=0, le=1e9)]
Usd = Annotated[float, Field(ge=0, le=1e6)]
Seconds = Annotated[float, Field(gt=0, le=MAX_CAPACITY_WINDOW_S)]


def _rtt_ms(v: float) -> float:
    if 0 < v < MIN_RTT_MS:
        raise PydanticCustomError(
            "rtt_unit",
            "{problem}",
            {
                "problem": f"{v:g} ms is implausibly small; rtt_ms is in milliseconds and {v:g} looks like "
                f"seconds ({v * 1e3:g} ms)",
                "expected": f"0, or at least {MIN_RTT_MS} ms",
            },
        )
    return v


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _no_limit(v: object) -> object:
    """``inf`` (TOML) or null (JSON) means no capacity limit: both become None."""
    return None if isinstance(v, float) and v == math.inf else v


RttMs = Annotated[float, Field(ge=0, le=60_000), AfterValidator(_rtt_ms)]
#: kW; None (left out, ``inf`` in TOML, null in JSON) is no limit
CapacityKw = Annotated[Annotated[float, Field(ge=0, le=MAX_CAPACITY_KW)] | None, BeforeValidator(_no_limit)]
#: JSON arrays / TOML lists become tuples; items stay strictly typed.
Ids = Annotated[tuple[Id, ...], Field(strict=False)]
Price = Annotated[float, Field(ge=MIN_PRICE_USD_PER_MWH, le=MAX_PRICE_USD_PER_MWH)]
Tag = Annotated[str, BeforeValidator(_upper), Field(min_length=1, max_length=64)]


class Objective(BaseModel):
    """Weights and periods of the placement objective."""

    model_config = _CFG

    carbon_usd_per_tonne: Usd = 100.0
    relocation_fixed_usd: Usd = 0.0
    regional_rtt_ms: Annotated[float, Field(ge=0, le=60_000)] = 40.0
    signal_max_age_s: Annotated[float, Field(gt=0, le=MAX_VALID_FOR_S)] = 900.0
    capacity_window_s: Seconds = 60.0
    resolve_interval_s: Seconds = 10.0
    bandwidth_gbps: Annotated[float, Field(gt=0, le=1e6)] = 10.0
    default_egress_usd_per_gb: Annotated[float, Field(ge=0, le=1e3)] = 0.09
    unserved_penalty_usd_per_wh: Annotated[float, Field(gt=0, le=100)] = 1.0
    demand_window_s: Seconds = 60.0
    class_bounds_ms: Annotated[tuple[Annotated[float, Field(gt=0, le=MAX_MS)], ...], Field(strict=False)] = (
        300.0,
        2000.0,
    )
    #: fraction of each region's capacity the re-solve plans on (the rest absorbs bursts within a window)
    resolve_headroom: Annotated[float, Field(gt=0, le=1)] = 0.85
    #: fraction of the LP dual the kernel adds to the score (1.0: the plain mu_j * e_i of docs/model.md)
    dual_scale: Annotated[float, Field(gt=0, le=2)] = 0.95
    #: how long after its ``generated_at`` a forecast may stand in for a stale live value (0 = never;
    #: at most 7 days). WattTime issues marginal-carbon forecasts every 5 minutes, 1 hour (or more) ahead.
    forecast_horizon_s: Annotated[float, Field(ge=0, le=604_800)] = 3600.0
    #: sticky sessions: margin, minimum dwell and expiry (router/kernel/_sessions.py)
    switch_margin_usd: Usd = 0.0
    session_min_dwell_s: Annotated[float, Field(ge=0, le=MAX_VALID_FOR_S)] = 0.0
    session_ttl_s: Annotated[float, Field(gt=0, le=MAX_VALID_FOR_S)] = 3600.0

    @field_validator("class_bounds_ms")
    @classmethod
    def _bounds_increase(cls, b: tuple[float, ...]) -> tuple[float, ...]:
        if any(y <= x for x, y in itertools.pairwise(b)):
            raise ValueError("must be strictly increasing (the latency classes of the re-solve)")
        return b


class Region(PriorFields):
    """A compute region: where the model runs and draws electricity (``prior``, ``on_stale``: priors.py)."""

    model_config = _CFG

    id: Id
    #: ISO 3166 alpha-2, any case (kept upper case; requests' codes match case-insensitively)
    jurisdiction: Annotated[str, BeforeValidator(_upper), Field(pattern=r"^[A-Z]{2}$")]
    tags: Annotated[tuple[Tag, ...], Field(strict=False)] = ()
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    pue: Annotated[float, Field(ge=PUE_MIN, le=PUE_MAX)]
    capacity_kw: CapacityKw = None
    models: Ids = ()
    price_usd_per_mwh: Annotated[float, Field(ge=MIN_PRICE_USD_PER_MWH, le=MAX_PRICE_USD_PER_MWH)] | None = (
        None
    )
    marginal_gco2_per_kwh: Annotated[float, Field(ge=0, le=MAX_GCO2_PER_KWH)] | None = None
    name: str | None = None


class ServiceNode(BaseModel):
    """A user-facing entry point; serving at its home region is 'local'."""

    model_config = _CFG

    id: Id
    home_region: Id
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]


class Model(BaseModel):
    """Energy and time profile of one model; the per input (prompt) and output (generated) token values,
    all four or none, are what ``carbon-router workload`` charges a trace's requests."""

    model_config = _CFG

    id: Id
    wh_per_token: Annotated[float, Field(gt=0, le=1e3)]
    ms_per_token: Annotated[float, Field(ge=0, le=1e6)] = 0.0
    base_ms: Annotated[float, Field(ge=0, le=MAX_MS)] = 0.0
    wh_per_input_token: Annotated[float, Field(gt=0, le=1e3)] | None = None
    wh_per_output_token: Annotated[float, Field(gt=0, le=1e3)] | None = None
    ms_per_input_token: Annotated[float, Field(ge=0, le=1e6)] | None = None
    ms_per_output_token: Annotated[float, Field(ge=0, le=1e6)] | None = None

    @model_validator(mode="after")
    def _phases_together(self) -> Model:
        phases = (self.wh_per_input_token, self.wh_per_output_token, self.ms_per_input_token)
        if len({v is None for v in (*phases, self.ms_per_output_token)}) > 1:
            raise ValueError(
                "give wh_ and ms_per_input_token and wh_ and ms_per_output_token together, or none"
            )
        return self


def _as_ids(value: object) -> object:
    """A zone maps to one region id or a list of them; both become a tuple."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(value)
    return value


#: provider zone -> the region ids it feeds
ZoneMap = dict[Id, Annotated[tuple[Id, ...], BeforeValidator(_as_ids), Field(min_length=1)]]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Providers(BaseModel):
    """Signal providers: zone mappings per provider and exchange rates (see the module docstring)."""

    model_config = _CFG

    #: USD per one unit of a currency; USD itself is always 1
    usd_per: dict[Currency, Annotated[float, Field(gt=0, le=1e4)]] = {}
    watttime: ZoneMap = {}
    electricitymaps: ZoneMap = {}
    entsoe: ZoneMap = {}
    csv: ZoneMap = {}

    def zones(self, provider: str) -> dict[str, tuple[str, ...]]:
        """The zone map of one provider (``watttime``, ``electricitymaps``, ``entsoe`` or ``csv``)."""
        got: dict[str, tuple[str, ...]] = getattr(self, provider)
        return got

    def usd_rate(self, currency: str) -> float | None:
        """USD per unit of ``currency`` (1.0 for USD), or None when the file gives no rate."""
        return 1.0 if currency == "USD" else self.usd_per.get(currency)


class Topology(BaseModel):
    """The whole topology, checked for internal consistency."""

    model_config = _CFG

    objective: Objective = Objective()
    regions: Annotated[tuple[Region, ...], Field(strict=False)]
    service_nodes: Annotated[tuple[ServiceNode, ...], Field(strict=False)]
    models: Annotated[tuple[Model, ...], Field(strict=False)] = ()
    rtt_ms: dict[Id, dict[Id, RttMs]] = {}
    egress_usd_per_gb: dict[Id, dict[Id, Annotated[float, Field(ge=0, le=1e3)]]] = {}
    providers: Providers = Providers()
    tenants: Annotated[tuple[Tenant, ...], Field(strict=False)] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        if not self.regions:
            raise ValueError("no regions: at least one [[regions]] entry is required")
        if not self.service_nodes:
            raise ValueError("no service nodes: at least one [[service_nodes]] entry is required")
        _unique("regions", [r.id for r in self.regions])
        _unique("service_nodes", [s.id for s in self.service_nodes])
        _unique("models", [m.id for m in self.models])
        _unique("tenants", [t.id for t in self.tenants])
        region_ids = {r.id for r in self.regions}
        self._check_references(region_ids)
        _check_providers(self.providers, region_ids)
        return self

    def _check_references(self, region_ids: set[str]) -> None:
        """Every id a node, region, rtt row or egress row names exists."""
        node_ids = {s.id for s in self.service_nodes}
        model_ids = {m.id for m in self.models}
        for s in self.service_nodes:
            if s.home_region not in region_ids:
                raise ValueError(
                    f"service node '{s.id}' has home_region '{s.home_region}', which is not a region; "
                    f"expected one of {sorted(region_ids)}"
                )
        for r in self.regions:
            for m in r.models:
                if model_ids and m not in model_ids:
                    raise ValueError(
                        f"region '{r.id}' serves unknown model '{m}'; expected one of {sorted(model_ids)}"
                    )
        _check_table("rtt_ms", self.rtt_ms, node_ids, region_ids, "service node")
        _check_table("egress_usd_per_gb", self.egress_usd_per_gb, region_ids, region_ids, "region")

    def warnings(self) -> list[str]:
        """Values that are valid but unusual enough to be a unit mistake (said at load, never refused)."""
        out = [
            f"regions '{r.id}': capacity_kw {r.capacity_kw:g} kW is over {UNUSUAL_CAPACITY_KW:g} kW "
            f"({r.capacity_kw / 1e6:g} GW); capacity_kw is in kW (did you give watts?)"
            for r in self.regions
            if r.capacity_kw is not None and r.capacity_kw > UNUSUAL_CAPACITY_KW
        ]
        out += [
            f"rtt_ms['{node}']['{region}']: {ms:g} ms is over {UNUSUAL_RTT_MS:g} ms (more than a trip around "
            "the world); rtt_ms is in milliseconds"
            for node, row in self.rtt_ms.items()
            for region, ms in row.items()
            if ms > UNUSUAL_RTT_MS
        ]
        return out

    def region_index(self) -> dict[str, int]:
        """Region id -> index, in file order (the kernel's fixed order)."""
        return {r.id: i for i, r in enumerate(self.regions)}

    def node_index(self) -> dict[str, int]:
        """Service node id -> index, in file order."""
        return {s.id: i for i, s in enumerate(self.service_nodes)}

    def rtt(self, node: ServiceNode, region: Region) -> float:
        """RTT in ms from a service node to a region: measured when given, else estimated."""
        given = self.rtt_ms.get(node.id, {}).get(region.id)
        if given is not None:
            return given
        if region.id == node.home_region:
            return INTRA_REGION_RTT_MS
        return estimate_rtt_ms(node.lat, node.lon, region.lat, region.lon)

    def egress(self, src: str, dst: str) -> float:
        """Egress price in USD/GB from region ``src`` to region ``dst``."""
        if src == dst:
            return 0.0
        given = self.egress_usd_per_gb.get(src, {}).get(dst)
        return self.objective.default_egress_usd_per_gb if given is None else given


def _unique(what: str, ids: list[str]) -> None:
    dup = next((i for i, n in Counter(ids).items() if n > 1), None)
    if dup is not None:
        raise ValueError(f"duplicate id '{dup}' in {what}; expected every id once")


def _check_table(
    name: str, table: dict[str, dict[str, Any]], rows: set[str], cols: set[str], kind: str
) -> None:
    """Every row of ``table`` names a known ``kind`` and every column a known region."""
    for key, row in table.items():
        if key not in rows:
            raise ValueError(f"{name} names unknown {kind} '{key}'; expected one of {sorted(rows)}")
        bad = next((c for c in row if c not in cols), None)
        if bad is not None:
            raise ValueError(f"{name}['{key}'] names unknown region '{bad}'")


def _check_providers(providers: Providers, region_ids: set[str]) -> None:
    for name in ("watttime", "electricitymaps", "entsoe", "csv"):
        fed: dict[str, str] = {}
        for zone, regions in providers.zones(name).items():
            for region in regions:
                if region not in region_ids:
                    raise ValueError(
                        f"providers.{name}['{zone}'] names unknown region '{region}'; "
                        f"expected one of {sorted(region_ids)}"
                    )
                if region in fed:
                    raise ValueError(
                        f"providers.{name}: region '{region}' is fed by zones '{fed[region]}' and '{zone}'; "
                        "expected at most one zone per region"
                    )
                fed[region] = zone


def default_topology_path() -> Path:
    """The bundled default topology, built from real public data (see router/data/PROVENANCE.md)."""
    return Path(str(resources.files("router").joinpath("data", "default_topology.toml")))


def load_topology(path: str | Path | None = None) -> Topology:
    """Read, parse and validate a topology file; ConfigError naming the file and every field at fault."""
    p = Path(path) if path is not None else default_topology_path()
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(
            "cannot read topology file", source=str(p), received=exc.strerror, expected="a readable file"
        ) from None
    data: Any
    try:
        data = orjson.loads(raw) if p.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (orjson.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"not valid {kind}: {exc}", source=str(p), expected=f"a {kind} topology") from None
    if not isinstance(data, dict):
        raise ConfigError("top level is not a table", source=str(p), received=type(data).__name__)
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.from_problems(problems_from_validation(exc, str(p), model=Topology)) from None
