"""Build the default data bundled in ``router/data/`` from real public data.

Reads the shared real-data folder (``--data-dir``: latency, egress, carbon and price files, see its README)
and writes four files into ``--out-dir`` (normally ``router/data``):

- ``default_topology.toml``  regions, service nodes, models, measured RTTs and egress prices;
- ``sample_signals.jsonl``   GridSignal messages, real price and carbon series mapped onto a 6-hour clock;
- ``sample_requests.jsonl``  about 4,000 synthetic Request messages (Poisson arrivals, fixed seed);
- ``PROVENANCE.md``          where every number came from.

Two small real price series that are not in the shared folder are carried in this file as constants, with
their origin: JEPX day-ahead area prices (Tokyo, Kansai) and the IESO day-ahead Ontario zonal price, both
read from test fixtures of the public electricitymaps-contrib repository.

Deterministic: the only randomness is ``numpy.random.default_rng(20261126)``; running the script twice gives
byte-identical files. Standard library and numpy only.

Usage::

    python scripts/build_bundled_data.py --data-dir /path/to/shared/data --out-dir router/data
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# ----------------------------------------------------------------------------------------------------------
# Fixed settings
# ----------------------------------------------------------------------------------------------------------

SEED = 20261126
#: Start of the sample event-time window: 2026-04-13 00:00 UTC.
T0 = 1776038400.0
WINDOW_S = 6 * 3600.0
TARGET_REQUESTS = 4000
#: Static carbon values are re-sent this often, each valid this long.
STATIC_CARBON_PERIOD_S = 900.0
STATIC_CARBON_VALID_S = 1800.0
#: RTT from a service node to its own home region (configuration, not a measurement).
HOME_RTT_MS = 2.0

# Exchange rates: US dollars per one unit of currency. One fixed reference date for every currency:
# Federal Reserve statistical release H.10 (weekly), release date 2024-02-05, column "Feb. 2" (2024-02-02),
# https://www.federalreserve.gov/releases/h10/20240205 . H.10 quotes EUR and AUD in USD per unit and CAD and
# JPY in units per USD (1.3458 CAD, 148.54 JPY); the latter two are inverted here.
FX_DATE = "2024-02-02"
FX_SOURCE = (
    "US Federal Reserve H.10 weekly release of 2024-02-05 "
    "(https://www.federalreserve.gov/releases/h10/20240205)"
)
FX_QUOTED: dict[str, tuple[float, str]] = {
    "EUR": (1.0787, "USD per EUR"),
    "AUD": (0.6510, "USD per AUD"),
    "CAD": (1.3458, "CAD per USD"),
    "JPY": (148.54, "JPY per USD"),
}
USD_PER_UNIT: dict[str, float] = {
    "USD": 1.0,
    "EUR": 1.0787,
    "AUD": 0.6510,
    "CAD": 1.0 / 1.3458,
    "JPY": 1.0 / 148.54,
}

#: Signal provider zones -> region ids (the topology's [providers] table, configuration). WattTime: the
#: region of the bundled MOER series. Electricity Maps: its public zone keys for each region's grid zone.
#: ENTSO-E: the EIC code of each European region's day-ahead bidding zone (DE-LU for Frankfurt, IT-North for
#: Milan; GB is left out: ENTSO-E stopped publishing GB after 2020). csv: the zone column of the shared price
#: series the bundled signals come from, with the same proxies (AT for Frankfurt, AU-SA for Melbourne).
PROVIDER_ZONES: dict[str, dict[str, str]] = {
    "watttime": {"CAISO_NORTH": "aws:us-west-1"},
    "electricitymaps": {
        "DE": "aws:eu-central-1",
        "FR": "azure:francecentral",
        "BE": "gcp:europe-west1-b",
        "NL": "gcp:europe-west4-a",
        "IT-NO": "aws:eu-south-1",
        "GB": "aws:eu-west-2",
        "CH": "gcp:europe-west6-a",
        "US-MIDA-PJM": "aws:us-east-1",
        "US-CAL-CISO": "aws:us-west-1",
        "CA-ON": "gcp:northamerica-northeast2-a",
        "JP-TK": "aws:ap-northeast-1",
        "JP-KN": "gcp:asia-northeast2-a",
        "AU-VIC": "gcp:australia-southeast2-a",
    },
    "entsoe": {
        "10Y1001A1001A82H": "aws:eu-central-1",
        "10YFR-RTE------C": "azure:francecentral",
        "10YBE----------2": "gcp:europe-west1-b",
        "10YNL----------L": "gcp:europe-west4-a",
        "10Y1001A1001A73I": "aws:eu-south-1",
        "10YCH-SWISSGRIDZ": "gcp:europe-west6-a",
    },
    "csv": {
        "AT": "aws:eu-central-1",
        "FR": "azure:francecentral",
        "BE": "gcp:europe-west1-b",
        "NL": "gcp:europe-west4-a",
        "IT": "aws:eu-south-1",
        "GB": "aws:eu-west-2",
        "CH": "gcp:europe-west6-a",
        "AU-SA": "gcp:australia-southeast2-a",
    },
}

#: Providers' published fleet-wide PUE (not per-site measurements).
FLEET_PUE: dict[str, float] = {"gcp": 1.10, "aws": 1.15, "azure": 1.18}

# ----------------------------------------------------------------------------------------------------------
# Real price series carried in from electricitymaps-contrib test fixtures (numbers only)
# ----------------------------------------------------------------------------------------------------------

EMAPS_REPO = "electricitymaps/electricitymaps-contrib"
JEPX_PATH = "electricitymap/contrib/parsers/tests/mocks/JP/spot_2025.csv"
JEPX_COMMIT = "fc599bdbd43c48638c1375e2e0b533d16f7dff79"
#: JEPX day-ahead spot, delivery day 2026-03-30 (JST), periods 1..48 (30 min each; period 1 starts 00:00 JST
#: = 2026-03-29 15:00 UTC). Column "エリアプライス東京(円/kWh)" (Tokyo area price), JPY/kWh.
JEPX_TOKYO_JPY_PER_KWH: tuple[float, ...] = (
    18.00, 16.19, 16.70, 16.85, 16.70, 17.19, 18.56, 18.56, 16.70, 17.59, 18.56, 18.56,
    19.60, 19.12, 19.85, 20.63, 20.15, 20.15, 18.56, 18.50, 13.85, 13.85, 10.60, 9.87,
    10.60, 6.84, 10.01, 13.01, 11.60, 13.85, 13.85, 18.56, 20.30, 18.64, 18.64, 18.64,
    18.64, 21.53, 21.00, 21.04, 21.21, 20.99, 18.64, 18.64, 18.64, 20.20, 20.15, 19.80,
)  # fmt: skip
#: Same file and day, column "エリアプライス関西(円/kWh)" (Kansai area price), JPY/kWh.
JEPX_KANSAI_JPY_PER_KWH: tuple[float, ...] = (
    8.57, 8.58, 8.46, 8.50, 8.46, 10.50, 13.18, 15.58, 15.00, 15.58, 16.99, 15.22,
    15.33, 13.18, 12.81, 8.71, 8.74, 8.78, 14.84, 16.07, 11.96, 8.08, 6.88, 6.30,
    6.25, 6.84, 10.01, 10.79, 10.00, 9.50, 8.64, 16.09, 16.09, 16.13, 16.09, 16.91,
    17.51, 17.91, 17.91, 16.13, 16.09, 15.58, 15.58, 15.58, 15.72, 13.18, 12.27, 7.36,
)  # fmt: skip
IESO_PATH = (
    "electricitymap/contrib/parsers/tests/mocks/CA_ON/da_hourly_ontario_zonal_price_report_20260528.xml"
)
IESO_COMMIT = "e09eecee77df296d7adedcb9493bb699a60e1b08"
#: IESO "Day Ahead Hourly Ontario Zonal Energy Price Report", delivery date 2026-05-28, <ZonalPrice> for
#: PricingHour 1..24 (hour ending, Eastern Standard Time), CAD/MWh.
IESO_ONTARIO_CAD_PER_MWH: tuple[float, ...] = (
    17.76, 14.32, 13.86, 14.55, 16.39, 36.98, 48.46, 45.00, 42.85, 35.53, 33.39, 31.71,
    30.70, 27.47, 34.75, 35.31, 40.11, 47.59, 61.68, 66.55, 53.30, 49.40, 34.43, 26.01,
)  # fmt: skip

#: Static price for a region with no series: PJM real-time load-weighted average LMP for 2023, USD/MWh, as
#: reported from Monitoring Analytics' 2023 State of the Market Report for PJM.
PJM_2023_LMP_USD_PER_MWH = 31.08
PJM_SOURCE_URL = (
    "https://mychesco.com/a/news/business/"
    "surge-in-solar-powers-pjm-market-to-competitive-results-in-2023-prices-dive"
)

# ----------------------------------------------------------------------------------------------------------
# Topology configuration
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionSpec:
    """One compute region and where its numbers come from."""

    id: str
    name: str
    jurisdiction: str
    iso3: str
    continent: str
    lat: float
    lon: float
    capacity_kw: float
    price_key: str | None  # key into the price series, "static:pjm", or None (no price at all)
    carbon_series: str | None = None  # "watttime" for the real MOER series, else the static country value

    @property
    def provider(self) -> str:
        return self.id.split(":", 1)[0]

    @property
    def tags(self) -> list[str]:
        return ["EU"] if self.jurisdiction in EU_MEMBERS else []


#: The 27 EU member states (ISO 3166 alpha-2).
EU_MEMBERS = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip

# Region order is the kernel's fixed order (ties go to the lowest index). Coordinates are the metro area's
# city centre (providers do not publish exact sites). capacity_kw is a configuration choice.
REGIONS: tuple[RegionSpec, ...] = (
    RegionSpec("aws:eu-central-1", "Frankfurt", "DE", "DEU", "Europe", 50.11, 8.68, 400.0, "eu:AT"),
    RegionSpec("azure:francecentral", "Paris", "FR", "FRA", "Europe", 48.86, 2.35, 150.0, "eu:FR"),
    RegionSpec("gcp:europe-west1-b", "St. Ghislain", "BE", "BEL", "Europe", 50.45, 3.82, 200.0, "eu:BE"),
    RegionSpec("gcp:europe-west4-a", "Eemshaven", "NL", "NLD", "Europe", 53.44, 6.83, 250.0, "eu:NL"),
    RegionSpec("aws:eu-south-1", "Milan", "IT", "ITA", "Europe", 45.46, 9.19, 200.0, "eu:IT"),
    RegionSpec("aws:eu-west-2", "London", "GB", "GBR", "Europe", 51.51, -0.13, 300.0, "eu:GB"),
    RegionSpec("gcp:europe-west6-a", "Zurich", "CH", "CHE", "Europe", 47.38, 8.54, 100.0, "eu:CH"),
    RegionSpec(
        "aws:us-east-1", "N. Virginia", "US", "USA", "North America", 39.04, -77.49, 400.0, "static:pjm"
    ),
    RegionSpec(
        "aws:us-west-1",
        "N. California",
        "US",
        "USA",
        "North America",
        37.34,
        -121.89,
        200.0,
        None,
        "watttime",
    ),
    RegionSpec(
        "gcp:northamerica-northeast2-a",
        "Toronto",
        "CA",
        "CAN",
        "North America",
        43.65,
        -79.38,
        150.0,
        "ieso:ON",
    ),
    RegionSpec("aws:ap-northeast-1", "Tokyo", "JP", "JPN", "Asia", 35.68, 139.69, 300.0, "jepx:tokyo"),
    RegionSpec("gcp:asia-northeast2-a", "Osaka", "JP", "JPN", "Asia", 34.69, 135.50, 150.0, "jepx:kansai"),
    RegionSpec(
        "gcp:australia-southeast2-a", "Melbourne", "AU", "AUS", "Oceania", -37.81, 144.96, 100.0, "au:AU-SA"
    ),
)


@dataclass(frozen=True)
class NodeSpec:
    """One service node (API front end)."""

    id: str
    home_region: str
    city: str
    lat: float
    lon: float
    weight: float  # share of request origins
    residency: tuple[tuple[tuple[str, ...], float], ...]  # (allowed_jurisdictions, probability)


SERVICE_NODES: tuple[NodeSpec, ...] = (
    NodeSpec(
        "fe-frankfurt", "aws:eu-central-1", "Frankfurt", 50.11, 8.68, 0.34, ((("EU",), 0.7), (("DE",), 0.3))
    ),
    NodeSpec("fe-london", "aws:eu-west-2", "London", 51.51, -0.13, 0.14, ((("GB",), 1.0),)),
    NodeSpec("fe-ashburn", "aws:us-east-1", "Ashburn", 39.04, -77.49, 0.18, ((("US",), 1.0),)),
    NodeSpec(
        "fe-toronto",
        "gcp:northamerica-northeast2-a",
        "Toronto",
        43.65,
        -79.38,
        0.08,
        ((("CA",), 0.5), (("CA", "US"), 0.5)),
    ),
    NodeSpec("fe-tokyo", "aws:ap-northeast-1", "Tokyo", 35.68, 139.69, 0.16, ((("JP",), 1.0),)),
    NodeSpec(
        "fe-melbourne", "gcp:australia-southeast2-a", "Melbourne", -37.81, 144.96, 0.10, ((("AU",), 1.0),)
    ),
)


@dataclass(frozen=True)
class ModelSpec:
    """Energy and time profile of one model."""

    id: str
    wh_per_token: float
    ms_per_token: float
    base_ms: float
    note: str
    #: wh_per_input_token, wh_per_output_token, ms_per_input_token, ms_per_output_token (or none)
    phases: tuple[float, float, float, float] | None = None


#: Llama2-70B on a DGX-H100, tensor parallel 2, measured by the Splitwise authors: SplitwiseSim
#: (github.com/Mutinifni/splitwise-sim, MIT), data/perf_model.csv at commit 378088013a54, the five runs of
#: rows (model llama2-70b, hardware h100-80gb, tensor_parallel 2): prompt_time (ms) at prompt_size 1024,
#: batch_size 1, and token_time (ms per decode iteration) at prompt_size 512, batch_size 16.
SPLITWISE_PROMPT_MS_1024 = (
    157.95009298017249,
    158.12596696196124,
    158.51887501776218,
    157.6025680406019,
    156.81839402532205,
)
SPLITWISE_TOKEN_MS_BATCH16 = (
    42.1920827742094,
    41.82871632868292,
    42.03085765273743,
    41.97236408587677,
    41.81882561648294,
)
#: watts per H100 in the prompt and in the token phase: SplitwiseSim configs/power_model/constant.yaml
#: (same commit), the simulator's constant power model; GPUs per instance and decode batch size as above
SPLITWISE_PROMPT_W, SPLITWISE_TOKEN_W, SPLITWISE_GPUS, SPLITWISE_BATCH = 700.0, 380.0, 2, 16


def _splitwise_phases() -> tuple[float, float, float, float]:
    """(Wh and ms per input token, Wh and ms per output token) of Llama2-70B from the measurements above,
    rounded to 4 significant digits: time per input token = prompt time / 1024; per output token = one
    decode iteration; energy = time x phase power x GPUs (a decode iteration's shared by its batch of 16)."""
    ms_in = statistics.fmean(SPLITWISE_PROMPT_MS_1024) / 1024
    ms_out = statistics.fmean(SPLITWISE_TOKEN_MS_BATCH16)
    wh_in = ms_in / 1e3 * SPLITWISE_PROMPT_W * SPLITWISE_GPUS / 3600
    wh_out = ms_out / 1e3 * SPLITWISE_TOKEN_W * SPLITWISE_GPUS / SPLITWISE_BATCH / 3600
    return tuple(float(f"{v:.4g}") for v in (wh_in, wh_out, ms_in, ms_out))  # type: ignore[return-value]


_PHASES = _splitwise_phases()

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("llm-8b", 0.0011, 0.9, 40.0, "the contract's example values"),
    ModelSpec(
        "llm-70b",
        0.009625,
        2.0,
        60.0,
        "illustrative profile, not a measurement: Wh/token = llm-8b x 70/8; ms/token and base_ms chosen",
    ),
    ModelSpec(
        "llama2-70b",
        _PHASES[1],
        _PHASES[3],
        0.0,
        "Llama2-70B on H100, Splitwise measurements (PROVENANCE.md, Models); per-token = per output token",
        _PHASES,
    ),
)

OBJECTIVE: dict[str, float] = {
    "carbon_usd_per_tonne": 100.0,
    "relocation_fixed_usd": 0.0,
    "regional_rtt_ms": 40.0,
    "signal_max_age_s": 900.0,
    "capacity_window_s": 60.0,
    "resolve_interval_s": 10.0,
    "bandwidth_gbps": 10.0,
    "unserved_penalty_usd_per_wh": 1.0,
    "demand_window_s": 60.0,
}
#: AWS region whose to-internet price is the default egress price for pairs the file leaves out.
DEFAULT_EGRESS_AWS_REGION = "eu-central-1"

# ----------------------------------------------------------------------------------------------------------
# Loading the shared real data
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A real time series, already in its target unit, with offsets from its own first sample."""

    key: str
    source: str  # dataset name, goes into GridSignal.source
    offsets_s: tuple[float, ...]
    values: tuple[float, ...]
    valid_for_s: float
    currency: str | None  # original currency for prices
    span: str  # first and last sample as text
    origin: str  # file / column / transformation, for PROVENANCE.md


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        sys.exit(f"error: missing input file {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _parse_ts(text: str) -> dt.datetime:
    """Parse an ISO timestamp; a timestamp without zone is taken as UTC (only offsets are used)."""
    stamp = dt.datetime.fromisoformat(text.strip())
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


def _offsets(stamps: list[dt.datetime]) -> tuple[float, ...]:
    first = stamps[0]
    return tuple((s - first).total_seconds() for s in stamps)


def _finite(values: list[float], what: str) -> None:
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        sys.exit(f"error: {what} holds non-finite values: {bad[:3]}")


def load_eu_day_ahead(data_dir: Path) -> dict[str, Series]:
    """Hourly day-ahead prices per zone (72 h from 2024-04-13 00:00 UTC), converted to USD/MWh."""
    rel = "prices/day_ahead_eu_2024-04-13_72h.csv"
    rows = _read_csv(data_dir / rel)
    by_zone: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_zone.setdefault(row["zone"], []).append(row)
    out: dict[str, Series] = {}
    for zone, zrows in sorted(by_zone.items()):
        zrows.sort(key=lambda r: _parse_ts(r["datetime_utc"]))
        currencies = {r["currency"] for r in zrows}
        if len(currencies) != 1:
            sys.exit(f"error: {rel} zone {zone} mixes currencies {sorted(currencies)}")
        currency = currencies.pop()
        stamps = [_parse_ts(r["datetime_utc"]) for r in zrows]
        raw = [float(r["price_per_mwh"]) for r in zrows]
        _finite(raw, f"{rel} zone {zone}")
        out[f"eu:{zone}"] = Series(
            key=f"eu:{zone}",
            source=f"entsoe-day-ahead:{zone} via electricitymaps-contrib snapshot",
            offsets_s=_offsets(stamps),
            values=tuple(v * USD_PER_UNIT[currency] for v in raw),
            valid_for_s=3600.0,
            currency=currency,
            span=f"{zrows[0]['datetime_utc']} .. {zrows[-1]['datetime_utc']} ({len(zrows)} hourly points)",
            origin=f"`{rel}`, rows zone={zone}, column `price_per_mwh` ({currency}/MWh) x USD/{currency}",
        )
    return out


def load_au_sa(data_dir: Path) -> Series:
    """South Australia 5-minute wholesale price (one week), converted to USD/MWh."""
    rel = "prices/au_sa_5min_2019-12-25_2020-01-01.csv"
    rows = _read_csv(data_dir / rel)
    rows.sort(key=lambda r: _parse_ts(r["datetime_utc"]))
    currencies = {r["currency"] for r in rows}
    if currencies != {"AUD"}:
        sys.exit(f"error: {rel} has currencies {sorted(currencies)}, expected AUD only")
    raw = [float(r["price_per_mwh"]) for r in rows]
    _finite(raw, rel)
    return Series(
        key="au:AU-SA",
        source="opennem:AU-SA via electricitymaps-contrib mock",
        offsets_s=_offsets([_parse_ts(r["datetime_utc"]) for r in rows]),
        values=tuple(v * USD_PER_UNIT["AUD"] for v in raw),
        valid_for_s=600.0,
        currency="AUD",
        span=f"{rows[0]['datetime_utc']} .. {rows[-1]['datetime_utc']} ({len(rows)} 5-minute points)",
        origin=f"`{rel}`, column `price_per_mwh` (AUD/MWh) x USD/AUD",
    )


def carried_series() -> dict[str, Series]:
    """The JEPX and IESO series carried in this file, converted to USD/MWh."""
    jepx_span = "2026-03-29T15:00Z .. 2026-03-30T14:30Z (48 half-hour periods of JST delivery day 2026-03-30)"
    jepx = {
        "jepx:tokyo": (JEPX_TOKYO_JPY_PER_KWH, "エリアプライス東京(円/kWh)", "JP-TK"),
        "jepx:kansai": (JEPX_KANSAI_JPY_PER_KWH, "エリアプライス関西(円/kWh)", "JP-KN"),
    }
    out: dict[str, Series] = {}
    for key, (values, column, zone) in jepx.items():
        if len(values) != 48:
            sys.exit(f"error: {key} must hold 48 half-hour values")
        out[key] = Series(
            key=key,
            source=f"jepx-day-ahead:{zone} via electricitymaps-contrib mock",
            offsets_s=tuple(1800.0 * i for i in range(48)),
            values=tuple(v * 1000.0 * USD_PER_UNIT["JPY"] for v in values),
            valid_for_s=1800.0,
            currency="JPY",
            span=jepx_span,
            origin=(
                f"{EMAPS_REPO} `{JEPX_PATH}` (commit {JEPX_COMMIT[:12]}), rows 2026/03/30 periods 1-48, "
                f"column `{column}` (JPY/kWh) x 1000 x USD/JPY"
            ),
        )
    if len(IESO_ONTARIO_CAD_PER_MWH) != 24:
        sys.exit("error: the IESO series must hold 24 hourly values")
    out["ieso:ON"] = Series(
        key="ieso:ON",
        source="ieso-day-ahead:CA-ON via electricitymaps-contrib mock",
        offsets_s=tuple(3600.0 * i for i in range(24)),
        values=tuple(v * USD_PER_UNIT["CAD"] for v in IESO_ONTARIO_CAD_PER_MWH),
        valid_for_s=3600.0,
        currency="CAD",
        span="2026-05-28 hours ending 01..24 EST (24 hourly points)",
        origin=(
            f"{EMAPS_REPO} `{IESO_PATH}` (commit {IESO_COMMIT[:12]}), `<ZonalPrice>` of PricingHour 1-24 "
            "(CAD/MWh) x USD/CAD"
        ),
    )
    return out


def load_watttime(data_dir: Path) -> Series:
    """WattTime CAISO North marginal operating emissions rate, 5-minute steps, gCO2/kWh."""
    rel = "carbon/watttime_moer_caiso_north_2023_5min.csv"
    rows = _read_csv(data_dir / rel)
    rows.sort(key=lambda r: _parse_ts(r["oootime"]))
    values = [float(r["Caiso_North"]) for r in rows]
    _finite(values, rel)
    return Series(
        key="watttime",
        source="watttime:CAISO_NORTH",
        offsets_s=_offsets([_parse_ts(r["oootime"]) for r in rows]),
        values=tuple(values),
        valid_for_s=600.0,
        currency=None,
        span=f"{rows[0]['oootime']} .. {rows[-1]['oootime']} ({len(rows)} 5-minute points)",
        origin=f"`{rel}`, column `Caiso_North` (gCO2/kWh, marginal operating emissions rate), unchanged",
    )


def load_country_marginal(data_dir: Path) -> dict[str, float]:
    """Country marginal (operating-margin) intensity, gCO2/kWh, by ISO3."""
    rows = _read_csv(data_dir / "carbon/country_marginal_operating_margin_2021.csv")
    out = {r["iso3_or_region"].strip(): float(r["gco2_per_kwh"]) for r in rows}
    _finite(list(out.values()), "country marginal table")
    return out


def load_country_average(data_dir: Path) -> dict[str, float]:
    """Country average (generation-mix) intensity, gCO2/kWh, by ISO3 (Ember, via @tgwf/co2)."""
    rows = _read_csv(data_dir / AVERAGE_FILE)
    out = {r["iso3_or_region"].strip(): float(r["gco2_per_kwh"]) for r in rows}
    _finite(list(out.values()), "country average table")
    return out


#: average intensities (display and location-based accounting only; never the marginal value)
AVERAGE_FILE = "carbon/country_average_ember.csv"
#: the real request trace and how many of its first rows are bundled
AZURE_TRACE = "azure-llm-2023/AzureLLMInferenceTrace_conv.csv"
SLICE_ROWS = 400


def build_average_signals(average: dict[str, float]) -> list[dict[str, Any]]:
    """One GridSignal per region at T0 with its country's average intensity (it keeps its latest value)."""
    return [
        {
            "region": spec.id,
            "ts": T0,
            "average_gco2_per_kwh": average[spec.iso3],
            "source": f"ember-via-tgwf-co2:{spec.iso3}",
        }
        for spec in REGIONS
    ]


def trace_slice(data_dir: Path) -> tuple[str, int]:
    """The header and the first SLICE_ROWS rows of the Azure trace, unchanged but for LF line ends; and the
    number of rows of the whole trace."""
    lines = (data_dir / AZURE_TRACE).read_text(encoding="utf-8").splitlines()
    return "".join(line + "\n" for line in lines[: SLICE_ROWS + 1]), len(lines) - 1


def load_latency(data_dir: Path) -> dict[tuple[str, str], float]:
    """Measured average RTT (ms) between regions, PREMIUM network tier at both ends."""
    rows = _read_csv(data_dir / "latency/skyplane_latency.csv")
    out: dict[tuple[str, str], float] = {}
    for r in rows:
        if r["src_tier"] == "PREMIUM" and r["dst_tier"] == "PREMIUM":
            key = (r["src_region"], r["dst_region"])
            if key in out:
                sys.exit(f"error: duplicate PREMIUM latency pair {key}")
            out[key] = float(r["avg_rtt"])
    _finite(list(out.values()), "latency table")
    return out


def normalise_region_id(region_id: str) -> str:
    """Drop a GCP zone suffix: ``gcp:europe-west1-b`` -> ``gcp:europe-west1``; other ids unchanged."""
    if region_id.startswith("gcp:"):
        return re.sub(r"-[a-z]$", "", region_id)
    return region_id


def load_cross_cloud_cost(data_dir: Path) -> dict[tuple[str, str], float]:
    """Transfer price (USD/GB) between regions, keyed by normalised region ids."""
    rows = _read_csv(data_dir / "egress/skyplane_cross_cloud_cost.csv")
    out: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (normalise_region_id(r["src"]), normalise_region_id(r["dest"]))
        out[key] = float(r["cost"])
    _finite(list(out.values()), "cross-cloud cost table")
    return out


def load_aws_internet_egress(data_dir: Path, aws_region: str) -> float:
    """AWS region-to-internet transfer price, USD/GB."""
    for r in _read_csv(data_dir / "egress/aws_transfer_costs.csv"):
        if r["src"] == aws_region and r["dst"] == "internet":
            return float(r["cost"])
    sys.exit(f"error: no internet egress price for AWS region {aws_region}")


# ----------------------------------------------------------------------------------------------------------
# Building the topology
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionDefaults:
    """Static default values of one region (used before any live signal)."""

    price_usd_per_mwh: float | None
    price_note: str
    marginal_gco2_per_kwh: float
    carbon_note: str


def region_defaults(
    spec: RegionSpec, prices: dict[str, Series], marginal: dict[str, float]
) -> RegionDefaults:
    """Default price (mean of the real series, or a cited static value, or none) and default carbon."""
    if spec.iso3 not in marginal:
        sys.exit(f"error: no marginal intensity for {spec.iso3} (region {spec.id})")
    carbon = marginal[spec.iso3]
    carbon_note = f"country OM 2021 {spec.iso3}"
    if spec.carbon_series == "watttime":
        carbon_note += "; live: WattTime CAISO North MOER"
    if spec.price_key is None:
        return RegionDefaults(None, "none (no real price found)", carbon, carbon_note)
    if spec.price_key == "static:pjm":
        return RegionDefaults(
            PJM_2023_LMP_USD_PER_MWH, "static: PJM 2023 RT load-weighted avg LMP", carbon, carbon_note
        )
    series = prices[spec.price_key]
    note = f"mean of {series.source.split(' via ')[0]}"
    if spec.price_key == "eu:AT":
        note += " (proxy for DE)"
    if spec.price_key == "au:AU-SA":
        note += " (proxy for VIC)"
    return RegionDefaults(statistics.fmean(series.values), note, carbon, carbon_note)


def node_rtts(latency: dict[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    """Node -> region RTT: measured home-region -> region avg RTT; home itself gets HOME_RTT_MS."""
    out: dict[str, dict[str, float]] = {}
    for node in SERVICE_NODES:
        row: dict[str, float] = {}
        for region in REGIONS:
            if region.id == node.home_region:
                row[region.id] = HOME_RTT_MS
                continue
            measured = latency.get((node.home_region, region.id))
            if measured is None:
                measured = latency.get((region.id, node.home_region))  # same pair measured the other way
            if measured is not None:
                row[region.id] = measured
        out[node.id] = row
    return out


def egress_matrix(cost: dict[tuple[str, str], float]) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Region -> region egress price from the cross-cloud table; same region 0. Returns missing pairs too."""
    out: dict[str, dict[str, float]] = {}
    missing: list[str] = []
    for src in REGIONS:
        row: dict[str, float] = {}
        for dst in REGIONS:
            if src.id == dst.id:
                row[dst.id] = 0.0
                continue
            price = cost.get((normalise_region_id(src.id), normalise_region_id(dst.id)))
            if price is None:
                missing.append(f"{src.id} -> {dst.id}")
            else:
                row[dst.id] = price
        out[src.id] = row
    return out, missing


def _num(value: float, digits: int = 4) -> str:
    """A finite float as TOML/JSON text, always with a decimal point or exponent."""
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {value!r}")
    text = repr(round(float(value), digits))
    return "0.0" if text == "-0.0" else text


def _str(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _prior_line(spec: RegionSpec, d: RegionDefaults) -> str:
    """The region's ``prior`` (router/priors.py): annual averages the bundled data holds for a whole year,
    the country's 2021 operating margin for carbon and, for PJM's N. Virginia only, the 2023 average LMP
    (no other bundled price series spans a year). ``on_stale`` stays ``mask``: a topology opts in."""
    parts = []
    if spec.price_key == "static:pjm":
        parts.append(f"price_usd_per_mwh = {_num(PJM_2023_LMP_USD_PER_MWH)}")
    parts.append(f"marginal_gco2_per_kwh = {_num(d.marginal_gco2_per_kwh)}")
    return "prior = { " + ", ".join(parts) + " }  # annual averages; see PROVENANCE.md, Priors"


def render_topology(
    defaults: dict[str, RegionDefaults],
    rtts: dict[str, dict[str, float]],
    egress: dict[str, dict[str, float]],
    default_egress: float,
) -> str:
    """The topology as TOML text (contract structure plus the documented optional keys)."""
    lines = [
        "# carbon-router default topology, generated by scripts/build_bundled_data.py; do not edit by hand.",
        "# Every number is sourced in PROVENANCE.md (same folder): real public data, or a stated",
        "# configuration choice / proxy.",
        "",
        "[objective]",
    ]
    for key, value in OBJECTIVE.items():
        lines.append(f"{key} = {_num(value)}")
    lines.append(
        f"default_egress_usd_per_gb = {_num(default_egress)}"
        f"  # AWS {DEFAULT_EGRESS_AWS_REGION} -> internet, aws_transfer_costs.csv"
    )
    for spec in REGIONS:
        d = defaults[spec.id]
        lines += [
            "",
            "[[regions]]",
            f"# {spec.name}, {spec.jurisdiction} ({spec.continent})",
            f"# price: {d.price_note}; carbon: {d.carbon_note}",
            f"id = {_str(spec.id)}",
            f"name = {_str(spec.name)}",
            f"jurisdiction = {_str(spec.jurisdiction)}",
            "tags = [" + ", ".join(_str(t) for t in spec.tags) + "]",
            f"lat = {_num(spec.lat)}",
            f"lon = {_num(spec.lon)}",
            f"pue = {_num(FLEET_PUE[spec.provider])}",
            f"capacity_kw = {_num(spec.capacity_kw)}",
            "models = []",
        ]
        if d.price_usd_per_mwh is not None:
            lines.append(f"price_usd_per_mwh = {_num(d.price_usd_per_mwh)}")
        lines.append(f"marginal_gco2_per_kwh = {_num(d.marginal_gco2_per_kwh)}")
        lines.append(_prior_line(spec, d))
    for node in SERVICE_NODES:
        lines += [
            "",
            "[[service_nodes]]",
            f"id = {_str(node.id)}",
            f"home_region = {_str(node.home_region)}",
            f"lat = {_num(node.lat)}",
            f"lon = {_num(node.lon)}",
        ]
    for model in MODELS:
        lines += [
            "",
            "[[models]]",
            f"# {model.note}",
            f"id = {_str(model.id)}",
            f"wh_per_token = {_num(model.wh_per_token, 6 if model.phases is None else 9)}",
            f"ms_per_token = {_num(model.ms_per_token)}",
            f"base_ms = {_num(model.base_ms)}",
        ]
        if model.phases is not None:
            names = ("wh_per_input_token", "wh_per_output_token", "ms_per_input_token", "ms_per_output_token")
            lines += [f"{n} = {v!r}" for n, v in zip(names, model.phases, strict=True)]
    lines += [
        "",
        "# Service node -> region RTT (ms): Skyplane measured avg_rtt from the node's home region",
        f"# (the node sits next to it); the home region itself is {HOME_RTT_MS} ms (configuration).",
        "# Missing pairs are estimated by the router.",
    ]
    for node_id, row in rtts.items():
        lines += ["", f"[rtt_ms.{_str(node_id)}]"]
        lines += [f"{_str(region_id)} = {_num(ms, 3)}" for region_id, ms in row.items()]
    lines += [
        "",
        "# Region -> region transfer price (USD/GB), Skyplane profiles/cost.csv; same region 0.",
    ]
    for src_id, row in egress.items():
        lines += ["", f"[egress_usd_per_gb.{_str(src_id)}]"]
        lines += [f"{_str(dst_id)} = {_num(price)}" for dst_id, price in row.items()]
    lines += [
        "",
        "# Signal providers (router.providers): exchange rates of provider prices, and each provider's zones",
        "# -> region ids. Rates: " + FX_SOURCE + ", column " + FX_DATE + " (see PROVENANCE.md).",
        "[providers]",
        "usd_per = { " + ", ".join(f"{cur} = {_num(USD_PER_UNIT[cur], 6)}" for cur in FX_QUOTED) + " }",
    ]
    for provider, zones in PROVIDER_ZONES.items():
        lines += ["", f"[providers.{provider}]"]
        lines += [f"{_str(zone)} = {_str(region)}" for zone, region in zones.items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------------
# Sample signals
# ----------------------------------------------------------------------------------------------------------


def build_signals(
    prices: dict[str, Series], watttime: Series, defaults: dict[str, RegionDefaults]
) -> list[dict[str, Any]]:
    """GridSignals over [T0, T0 + WINDOW_S): each real series mapped by offset from its own first sample."""
    signals: list[tuple[float, int, str, int, dict[str, Any]]] = []
    order = {spec.id: i for i, spec in enumerate(REGIONS)}

    def add(region: str, ts: float, field: str, value: float, valid: float, source: str, kind: int) -> None:
        digits = 4 if field == "price_usd_per_mwh" else 3
        msg: dict[str, Any] = {
            "region": region,
            "ts": round(ts, 3),
            field: round(value, digits),
            "valid_for_s": valid,
            "source": source,
        }
        signals.append((msg["ts"], order[region], region, kind, msg))

    for spec in REGIONS:
        if spec.price_key is not None and spec.price_key in prices:
            series = prices[spec.price_key]
            for off, value in zip(series.offsets_s, series.values, strict=True):
                if off < WINDOW_S:
                    add(spec.id, T0 + off, "price_usd_per_mwh", value, series.valid_for_s, series.source, 0)
        if spec.carbon_series == "watttime":
            for off, value in zip(watttime.offsets_s, watttime.values, strict=True):
                if off < WINDOW_S:
                    add(
                        spec.id,
                        T0 + off,
                        "marginal_gco2_per_kwh",
                        value,
                        watttime.valid_for_s,
                        watttime.source,
                        1,
                    )
        else:
            value = defaults[spec.id].marginal_gco2_per_kwh
            for k in range(int(WINDOW_S // STATIC_CARBON_PERIOD_S)):
                ts = T0 + k * STATIC_CARBON_PERIOD_S
                add(
                    spec.id,
                    ts,
                    "marginal_gco2_per_kwh",
                    value,
                    STATIC_CARBON_VALID_S,
                    f"unfccc-ifi-om-2021:{spec.iso3}",
                    1,
                )
    signals.sort(key=lambda s: s[:4])
    return [s[4] for s in signals]


# ----------------------------------------------------------------------------------------------------------
# Sample requests (synthetic)
# ----------------------------------------------------------------------------------------------------------

#: (name, probability, budget range ms)
CLASSES: tuple[tuple[str, float, tuple[float, float]], ...] = (
    ("interactive", 0.40, (100.0, 300.0)),
    ("standard", 0.35, (400.0, 1500.0)),
    ("batch", 0.25, (5000.0, 60000.0)),
)
#: Probability that a request names tokens + model (else energy_wh), per class.
P_TOKENS = 0.6
#: Probability that a tokens request also gives compute_ms; that an energy request gives compute_ms.
P_COMPUTE_WITH_TOKENS = 0.25
P_COMPUTE_WITH_ENERGY = 0.85
P_STATE = 0.20
P_PINNED = 0.05  # of all requests; always a subset of the state-carrying ones
P_RESIDENCY = 0.15
#: Probability of llm-70b (else llm-8b) per class for tokens requests.
P_70B = {"interactive": 0.0, "standard": 0.3, "batch": 0.5}
#: energy_wh log-uniform range per class.
ENERGY_WH = {"interactive": (0.05, 0.5), "standard": (0.1, 2.0), "batch": (0.5, 5.0)}
TENANTS = tuple(f"tenant-{i:02d}" for i in range(1, 13))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _pick(rng: np.random.Generator, probs: list[float]) -> int:
    p = np.asarray(probs, dtype=float)
    return int(rng.choice(len(p), p=p / p.sum()))


def build_requests(rng: np.random.Generator) -> list[dict[str, Any]]:
    """TARGET_REQUESTS synthetic requests with Poisson arrivals over [T0, T0 + WINDOW_S).

    A homogeneous Poisson process conditioned on its count places the arrivals as sorted independent uniform
    times, so the count is exactly TARGET_REQUESTS and the gaps are (conditionally) exponential.
    """
    arrivals = np.sort(rng.uniform(0.0, WINDOW_S, size=TARGET_REQUESTS))
    models = {m.id: m for m in MODELS}
    node_probs = [n.weight for n in SERVICE_NODES]
    class_probs = [c[1] for c in CLASSES]
    tenant_probs = [1.0 / (i + 1) for i in range(len(TENANTS))]
    out: list[dict[str, Any]] = []
    for i, t in enumerate(arrivals):
        node = SERVICE_NODES[_pick(rng, node_probs)]
        cls, _, (b_lo, b_hi) = CLASSES[_pick(rng, class_probs)]
        budget = float(rng.uniform(b_lo, b_hi))
        req: dict[str, Any] = {
            "request_id": f"req-{i + 1:06d}",
            "ts": round(T0 + float(t), 3),
            "origin": node.id,
            "tenant": TENANTS[_pick(rng, tenant_probs)],
            "latency_budget_ms": round(budget, 1),
        }
        if rng.random() < P_TOKENS:
            model = models["llm-70b" if rng.random() < P_70B[cls] else "llm-8b"]
            if cls == "batch":
                tokens = round(_log_uniform(rng, 200.0, 4000.0))
            else:
                # compute takes a share of the budget; the rest is room for network RTT
                share = rng.uniform(0.3, 0.85) if cls == "interactive" else rng.uniform(0.15, 0.7)
                tokens = round((share * budget - model.base_ms) / model.ms_per_token)
            tokens = int(min(4000, max(50, tokens)))
            req["tokens"] = tokens
            req["model"] = model.id
            if rng.random() < P_COMPUTE_WITH_TOKENS:
                profile_ms = model.base_ms + model.ms_per_token * tokens
                req["compute_ms"] = round(profile_ms * float(rng.uniform(0.8, 1.2)), 1)
        else:
            lo, hi = ENERGY_WH[cls]
            req["energy_wh"] = round(_log_uniform(rng, lo, hi), 4)
            if rng.random() < P_COMPUTE_WITH_ENERGY:
                if cls == "batch":
                    compute = float(rng.uniform(500.0, 8000.0))
                else:
                    share = rng.uniform(0.3, 0.85) if cls == "interactive" else rng.uniform(0.15, 0.7)
                    compute = float(share * budget)
                req["compute_ms"] = round(compute, 1)
        req["payload_bytes"] = round(_log_uniform(rng, 2e3, 2e5))
        u = rng.random()
        if u < P_STATE:
            req["state_region"] = node.home_region
            req["state_bytes"] = round(_log_uniform(rng, 1e5, 5e7))
            if u < P_PINNED:
                req["state_pinned"] = True
        if rng.random() < P_RESIDENCY:
            choice = _pick(rng, [p for _, p in node.residency])
            req["allowed_jurisdictions"] = list(node.residency[choice][0])
        out.append(req)
    return out


# ----------------------------------------------------------------------------------------------------------
# PROVENANCE.md
# ----------------------------------------------------------------------------------------------------------


def render_provenance(
    defaults: dict[str, RegionDefaults],
    prices: dict[str, Series],
    watttime: Series,
    rtts: dict[str, dict[str, float]],
    latency: dict[tuple[str, str], float],
    default_egress: float,
    signals: list[dict[str, Any]],
    requests: list[dict[str, Any]],
) -> str:
    """Where every number in the bundled files came from."""
    used_price_keys = [s.price_key for s in REGIONS if s.price_key is not None and s.price_key in prices]
    n_price = sum(1 for s in signals if "price_usd_per_mwh" in s)
    n_carbon = sum(1 for s in signals if "marginal_gco2_per_kwh" in s)
    n_tokens = sum(1 for r in requests if "tokens" in r)
    n_state = sum(1 for r in requests if "state_region" in r)
    n_pinned = sum(1 for r in requests if r.get("state_pinned"))
    prompt_ms = statistics.fmean(SPLITWISE_PROMPT_MS_1024)
    n_res = sum(1 for r in requests if "allowed_jurisdictions" in r)
    classes = {name: 0 for name, _, _ in CLASSES}
    for r in requests:
        b = r["latency_budget_ms"]
        classes["interactive" if b <= 300 else "standard" if b <= 1500 else "batch"] += 1
    origins: dict[str, int] = {}
    for r in requests:
        origins[r["origin"]] = origins.get(r["origin"], 0) + 1
    t0_text = dt.datetime.fromtimestamp(T0, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    n_continents = len({r.continent for r in REGIONS})
    files_rows = "\n".join(
        [
            f"| `default_topology.toml` | {len(REGIONS)} regions on {n_continents} continents, "
            f"{len(SERVICE_NODES)} service nodes, {len(MODELS)} models, measured RTTs, egress prices |",
            f"| `sample_signals.jsonl` | {len(signals)} GridSignal messages "
            f"({n_price} price, {n_carbon} carbon), sorted by `ts` |",
        ]
    )
    region_header = (
        "| id | city | jurisdiction | tags | continent | default price USD/MWh | price from "
        "| default marginal gCO2/kWh | carbon from | PUE | capacity kW |"
    )
    series_header = (
        "| series | origin (file, column, transformation) | real span | mean USD/MWh | min | max "
        "| signal `valid_for_s` |"
    )

    region_rows = []
    for spec in REGIONS:
        d = defaults[spec.id]
        price = "—" if d.price_usd_per_mwh is None else f"{d.price_usd_per_mwh:.2f}"
        region_rows.append(
            f"| `{spec.id}` | {spec.name} | {spec.jurisdiction} | {', '.join(spec.tags) or '—'} "
            f"| {spec.continent} | {price} | {d.price_note} | {d.marginal_gco2_per_kwh:.0f} "
            f"| {d.carbon_note} "
            f"| {FLEET_PUE[spec.provider]:.2f} | {spec.capacity_kw:.0f} |"
        )
    series_rows = []
    for key in used_price_keys:
        s = prices[key]
        series_rows.append(
            f"| `{key}` | {s.origin} | {s.span} | {statistics.fmean(s.values):.2f} | {min(s.values):.2f} "
            f"| {max(s.values):.2f} | {s.valid_for_s:.0f} |"
        )
    fx_rows = [
        f"| {cur} | {quoted} {how} | {USD_PER_UNIT[cur]:.6f} |" for cur, (quoted, how) in FX_QUOTED.items()
    ]
    node_rows = [
        f"| `{n.id}` | {n.city} | `{n.home_region}` | {n.lat}, {n.lon} | {origins.get(n.id, 0)} "
        f"| {' or '.join(json.dumps(list(a)) for a, _ in n.residency)} |"
        for n in SERVICE_NODES
    ]
    missing_rtt = [f"{n.id} -> {r.id}" for n in SERVICE_NODES for r in REGIONS if r.id not in rtts[n.id]]
    asym = []
    seen_pairs: set[frozenset[str]] = set()
    for n in SERVICE_NODES:
        for rid in rtts[n.id]:
            there, back = latency.get((n.home_region, rid)), latency.get((rid, n.home_region))
            pair = frozenset((n.home_region, rid))
            if there is not None and back is not None and abs(there - back) > 10.0 and pair not in seen_pairs:
                seen_pairs.add(pair)
                asym.append(f"`{n.home_region}` -> `{rid}` {there:.1f} ms but {back:.1f} ms the other way")
    models = {m.id: m for m in MODELS}
    total_wh = sum(
        r["energy_wh"] if "energy_wh" in r else r["tokens"] * models[r["model"]].wh_per_token
        for r in requests
    )

    text = f"""# Provenance of the bundled default data

Generated by `scripts/build_bundled_data.py` (stdlib + numpy, seed `numpy.random.default_rng({SEED})`,
byte-identical on every run). Regenerate with

    python scripts/build_bundled_data.py --data-dir <shared real-data folder> --out-dir router/data

Inputs are the real public files of the shared data folder (paths below are relative to it; each file's
origin and licence is in that folder's README) plus two small real price series carried inside the script
(JEPX, IESO; see "Prices"). Nothing here is invented except where this page says **configuration**,
**proxy**, **illustrative** or **synthetic**.

## Files

| file | what |
|---|---|
{files_rows}
| `sample_requests.jsonl` | {len(requests)} **synthetic** Request messages, sorted by `ts` |
| `average_signals.jsonl` | {len(REGIONS)} GridSignal messages: each region's country **average** intensity |
| `azure_llm_2023_slice.csv` | the first {SLICE_ROWS} rows of a **real** LLM request trace (CC BY 4.0) |
| `PROVENANCE.md` | this page |

## Event-time clock

All samples live in one 6-hour window starting at T0 = `{T0}` ({t0_text}). Every real series is mapped onto
this clock **by offset from its own first sample**: a sample taken `d` seconds after the series' first
sample gets `ts = T0 + d`; samples with `d >= {WINDOW_S:.0f}` are dropped. The real dates of the series are
therefore not the dates of the samples; the shape over time is kept exactly.

## Exchange rates

One fixed rate per currency, all from one date, {FX_DATE}: {FX_SOURCE}, column "Feb. 2".
The rate is not matched to each series' own date (the series run from 2019 to 2026); with one reference date
the conversions are at least mutually consistent.

| currency | as quoted | USD per unit used |
|---|---|---|
{chr(10).join(fx_rows)}

## Regions

{region_header}
|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(region_rows)}

- **id**: exactly as in `latency/skyplane_latency.csv` (`src_region` / `dst_region`).
- **jurisdiction**: ISO 3166 alpha-2 of the country the region is in. **tags**: `EU` for EU member states;
  GB, CH, US, CA, JP and AU get no tag (keep-it-simple rule; CH and GB are not EU members).
- **lat / lon**: public city-centre coordinates of the metro area the provider names (**configuration**;
  providers do not publish exact sites).
- **pue**: the provider's published **fleet-wide** PUE (Google 1.10, AWS 1.15, Azure 1.18), applied to all
  of its regions; these are not per-site measurements.
- **capacity_kw**: **configuration choice** (IT power available to relocatable inference), 100-400 kW,
  smaller in cheap regions. Note for scale: the sample requests hold {total_wh:.0f} Wh of IT energy in
  6 hours, a mean IT load of only {total_wh / (WINDOW_S / 3600.0):.1f} W over all nodes, so these capacities
  never bind at the sample rate; the capacity guard and the LP duals only bite at a much higher request
  rate (for example the demo's `--rate`) or with much smaller capacities.
- **models = []**: every region serves every model (configuration).
- **marginal_gco2_per_kwh** (default): `carbon/country_marginal_operating_margin_2021.csv`, column
  `gco2_per_kwh`, row = the region's ISO3 country. This is the UNFCCC IFI harmonised **operating margin**
  (a marginal, not an average, intensity), one annual country-level value from 2021, not hourly and not
  specific to the grid zone.
- **price_usd_per_mwh** (default): the mean of the region's real series over its whole length (not only the
  6 hours used for signals), converted to USD; or a cited static value; or absent (see below).

### Proxies and gaps, said plainly

- **Germany (`aws:eu-central-1`) uses the Austrian (AT) day-ahead series as a proxy.** The shared data has no
  DE-LU series; DE-LU and AT were a single bidding zone until October 2018, so AT is the closest real series.
  It is not the German price.
- **Melbourne (`gcp:australia-southeast2-a`, Victoria) uses the South Australia (AU-SA) 5-minute series as a
  proxy.** Both are NEM regions and directly interconnected, but VIC prices differ from SA prices. The AU-SA
  week is from 2019-12-25; within the first 6 hours (the part mapped into the sample window) there is no
  negative price and no spike: the single negative price (-32.52 AUD/MWh, 2019-12-31 04:20 UTC) and the
  spikes (7,750.86 and 1,455.96 AUD/MWh, 2019-12-30 06:15 / 06:30 UTC) lie outside it. They do enter the
  topology default (mean over the whole week).
- **`aws:us-east-1` (N. Virginia) has no price series.** It gets a static `price_usd_per_mwh =
  {PJM_2023_LMP_USD_PER_MWH}`: the PJM-wide real-time load-weighted average LMP for 2023 from Monitoring
  Analytics' 2023 State of the Market Report for PJM, as reported at
  {PJM_SOURCE_URL} .
  It is a PJM-wide annual average, not the Dominion zone and not hourly; no price signal is sent for it.
- **`aws:us-west-1` (N. California) has no price at all**, neither in the topology nor in the signals: no
  real CAISO price series or citable value was found. The router treats a region with no price as
  infeasible, so it never receives traffic; it is kept because its carbon signal is the real WattTime CAISO
  North MOER series, and no service node has it as home.
- **GB**: the shared EU file gives GB in EUR (its `currency` column); taken as stated.
- The shared EU file shows FR, ES and PT with identical prices in many hours (day-ahead market coupling);
  FR's 72-hour mean is only {statistics.fmean(prices["eu:FR"].values):.2f} USD/MWh.

## Prices

{series_header}
|---|---|---|---|---|---|---|
{chr(10).join(series_rows)}

- The JEPX and IESO numbers are carried as constants in the script (they are not in the shared folder). They
  are the market operators' published prices as stored in test fixtures of the public repository
  `{EMAPS_REPO}` (files and commits above, read from a stored copy of that repository). Only the numeric
  values were copied, not code; they were not cross-checked against the exchanges' own archives. JEPX
  periods are 30 minutes; period 1 of a JST delivery day starts at 00:00 JST
  (15:00 UTC the day before), as the repository's own JEPX parser test states. IESO pricing hours are
  hour-ending in Eastern Standard Time.
- `valid_for_s`: the series step for hourly (3600) and half-hourly (1800) series; 600 s for the 5-minute
  series (two steps, so one missing sample does not make the region stale).

## Carbon signals

- `aws:us-west-1`: {watttime.origin}; real span {watttime.span}; timestamps as published, without a zone;
  only offsets are used. Sent every 5 minutes, `valid_for_s` {watttime.valid_for_s:.0f}, source
  `{watttime.source}`.
- Every other region: its static country value (table above), re-sent every {STATIC_CARBON_PERIOD_S:.0f} s
  with `valid_for_s` {STATIC_CARBON_VALID_S:.0f}, source `unfccc-ifi-om-2021:<ISO3>`. This re-sending is what
  keeps regions without a fast series fresh; the value itself never changes.
- Price and carbon travel in separate signals (each names one dataset in `source`); a signal carries only the
  field its dataset has.

## Priors

- Each region's `prior` (router/priors.py: the last-resort value that may stand in when a value and its
  forecast are both stale) holds the annual averages the bundled data has for a whole year:
  `marginal_gco2_per_kwh` is the country's 2021 annual operating-margin average (the table above,
  `carbon/country_marginal_operating_margin_2021.csv`, the same value as the region's constant), and
  `aws:us-east-1` also gets `price_usd_per_mwh = {PJM_2023_LMP_USD_PER_MWH}`, the PJM 2023 average LMP
  (above). No other bundled price series spans a year (the EU day-ahead file 72 hours, AU-SA one week, JEPX
  and IESO one day), so no other region has a price prior. The bundled topology leaves `on_stale` at `mask`:
  a prior stands in only where a topology says `prior` for that value.

## Service nodes

| id | city | home region | lat, lon | sample requests | residency rules used in samples |
|---|---|---|---|---|---|
{chr(10).join(node_rows)}

City coordinates are public city-centre values (**configuration**). Each node is assumed to sit next to its
home region.

## Models

- `llm-8b`: `wh_per_token` 0.0011, `ms_per_token` 0.9, `base_ms` 40.0 are the contract's example values,
  not a measurement.
- `llm-70b`: **illustrative** profile, not a measurement: `wh_per_token` = llm-8b x 70/8 = 0.009625;
  `ms_per_token` 2.0 and `base_ms` 60.0 are chosen.
- `llama2-70b`: per-input-token and per-output-token values from **measurements** of Llama2-70B on a
  DGX-H100 (tensor parallel 2) by the Splitwise authors (Patel et al., "Splitwise: Efficient generative LLM
  inference using phase splitting", ISCA 2024), published with their simulator SplitwiseSim
  (github.com/Mutinifni/splitwise-sim, MIT licence), commit 378088013a54:
  - time per input token `ms_per_input_token` {_PHASES[2]} = mean `prompt_time` of the five runs with
    `prompt_size` 1024, `batch_size` 1 in `data/perf_model.csv` ({prompt_ms:.2f} ms) / 1024;
  - time per output token `ms_per_output_token` {_PHASES[3]} = mean `token_time` (one decode iteration) of
    the five runs with `prompt_size` 512, `batch_size` 16;
  - energy = that time x the per-GPU power of the phase x {SPLITWISE_GPUS} GPUs: {SPLITWISE_PROMPT_W:.0f} W in
    the prompt phase and {SPLITWISE_TOKEN_W:.0f} W in the token phase per H100, from SplitwiseSim's
    `configs/power_model/constant.yaml` (the simulator's constant power model, not a measurement of these
    runs); a decode iteration serves a batch of {SPLITWISE_BATCH}, so an output token is charged
    1/{SPLITWISE_BATCH} of it:
    `wh_per_input_token` {_PHASES[0]}, `wh_per_output_token` {_PHASES[1]} (IT energy of the GPUs only).
  - **configuration**: tensor parallel 2 and the decode batch of {SPLITWISE_BATCH} (rows the file also holds
    for 1 to 64); `wh_per_token` and `ms_per_token` (used only by requests that give `tokens`) equal the
    per-output-token values; `base_ms` 0.

## RTT (`[rtt_ms]`)

`latency/skyplane_latency.csv`, column `avg_rtt` (ms), rows with `src_tier` = `dst_tier` = `PREMIUM` (the
file also holds STANDARD-tier GCP duplicates), `src_region` = the node's home region, `dst_region` = the
region, value unchanged (rounded to 0.001 ms). The node is assumed to sit next to its home region, so
node -> region RTT = home region -> region RTT. The home region itself gets {HOME_RTT_MS} ms
(**configuration**, intra-region). If a pair were only measured the other way round, that measurement would be
used; if not measured at all it is omitted and the router estimates it from distance. Omitted pairs:
{", ".join(missing_rtt) or "none"}.

The measurements are not symmetric everywhere: {"; ".join(asym) or "no pair differs by more than 10 ms"}.

## Egress (`[egress_usd_per_gb]`)

`egress/skyplane_cross_cloud_cost.csv`, column `cost` (USD/GB), for every ordered pair of regions (`src`,
`dest`). Ids are matched after normalisation: a GCP zone suffix is dropped on both sides
(`gcp:europe-west1-b` -> `gcp:europe-west1`; AWS and Azure ids unchanged); in this file the GCP ids already
carry the same zone suffixes as the latency file, so the match is exact. Same region -> 0.
`objective.default_egress_usd_per_gb` = {default_egress} is the AWS `{DEFAULT_EGRESS_AWS_REGION}` ->
`internet` price from `egress/aws_transfer_costs.csv`; it applies only to pairs the matrix leaves out (none
among the bundled regions).

## Objective

All `[objective]` values are **configuration**: `carbon_usd_per_tonne` 100, `relocation_fixed_usd` 0,
`regional_rtt_ms` 40, `signal_max_age_s` 900, `capacity_window_s` 60, `resolve_interval_s` 10,
`bandwidth_gbps` 10, `unserved_penalty_usd_per_wh` 1.0, `demand_window_s` 60; `default_egress_usd_per_gb` as
above.

## Signal providers (`[providers]`)

**Configuration**: which provider zone feeds which region (`router.providers`, `streams.adapters`).
`usd_per` holds the exchange rates above. WattTime: `CAISO_NORTH`, the region of the bundled MOER series,
feeds `aws:us-west-1`. Electricity Maps: its public zone key of each region's grid zone (average intensity
only; never used as marginal). ENTSO-E: the EIC code of each European region's day-ahead bidding zone
(DE-LU `10Y1001A1001A82H` for Frankfurt, IT-North `10Y1001A1001A73I` for Milan; London is not mapped, ENTSO-E
has no GB prices after 2020). `csv`: the zone column of the shared price series these files were built from,
with the same proxies (AT for Frankfurt, AU-SA for Melbourne).

## Sample requests (synthetic)

The requests are **synthetic**: generated by the script, not recorded traffic. Arrivals are a homogeneous
Poisson process over the 6 hours conditioned on exactly {len(requests)} arrivals (sorted independent uniform
times), i.e. a mean rate of {len(requests) / WINDOW_S * 60:.1f} requests per minute.

- origin: weighted {", ".join(f"{n.id} {n.weight:.2f}" for n in SERVICE_NODES)}.
- latency classes (by budget): interactive 100-300 ms ({classes["interactive"]}), standard 400-1,500 ms
  ({classes["standard"]}), batch 5,000-60,000 ms ({classes["batch"]}); drawn 40 / 35 / 25 %.
- work: {n_tokens} give `tokens` + `model` (50-4,000 tokens; interactive uses llm-8b only; compute sized to
  30-85 % of an interactive budget or 15-70 % of a standard one, so some requests only fit at home and others
  have 100-1,000+ ms to spare for a far region), {len(requests) - n_tokens} give `energy_wh` (0.05-5.0 Wh,
  log-uniform per class). `compute_ms` is given for 25 % of token requests (profile x 0.8-1.2) and 85 % of
  energy requests; the rest fall back to the model profile or to the router's default.
- `payload_bytes` log-uniform 2e3-2e5. Session state: {n_state} requests carry `state_region` = their origin's
  home region and `state_bytes` log-uniform 1e5-5e7; {n_pinned} of them are `state_pinned`.
- residency: {n_res} requests carry `allowed_jurisdictions` (per-node choices in the table above).
- `tenant`: tenant-01 .. tenant-12, weights 1/k.
"""
    return text


def render_workload_provenance(averages: list[dict[str, Any]], trace_rows: int) -> str:
    """The sections of PROVENANCE.md on the average intensities and the request trace slice."""
    rows = "\n".join(
        f"| `{a['region']}` | {a['source'].rsplit(':', 1)[1]} | {a['average_gco2_per_kwh']} |"
        for a in averages
    )
    return f"""
## Average intensity (`average_signals.jsonl`)

`{AVERAGE_FILE}`, column `gco2_per_kwh`, row = the region's ISO3 country, unchanged:
Ember's yearly **average** (generation-mix, location-based) intensity per country, as packaged in the
@tgwf/co2 npm package 0.19.0 (Apache-2.0). One signal per region at T0 carrying only
`average_gco2_per_kwh` (an average keeps its latest value, it does not age). The router never decides on
it: `compare` and `frontier` report average-intensity totals beside the marginal ones when their signals
input holds these values (concatenate this file with `sample_signals.jsonl`). Country values, not per grid
zone, and not hourly.

| region | country | average gCO2/kWh |
|---|---|---|
{rows}

## Request trace slice (`azure_llm_2023_slice.csv`)

The header and the first {SLICE_ROWS} of the {trace_rows:,} rows of
`{AZURE_TRACE}`, unchanged (line ends made LF): the Azure LLM inference trace 2023,
conversation service, one hour on 2023-11-16 (columns `TIMESTAMP`, `ContextTokens`, `GeneratedTokens`),
from Azure/AzurePublicDataset `data/AzureLLMInferenceTrace_conv.csv`. Licence: Creative Commons Attribution
4.0 International (CC BY 4.0). Attribution: Patel, Choukse, Zhang, Shah, Goiri, Maleki, Bianchini,
"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024. `carbon-router workload
azure` turns it into requests (energy and time from the `llama2-70b` model above; origins and budgets by
its documented seeded rule); the tests use this slice so that they run without the shared folder.
"""


# ----------------------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _jsonl(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False, allow_nan=False) + "\n" for item in items)


def main(argv: list[str] | None = None) -> int:
    """Read the shared data folder, write the bundled files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, required=True, help="the shared real-data folder")
    parser.add_argument("--out-dir", type=Path, required=True, help="where to write the bundled files")
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir
    out_dir: Path = args.out_dir
    if not data_dir.is_dir():
        parser.error(f"--data-dir {data_dir} is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)

    prices: dict[str, Series] = {}
    prices.update(load_eu_day_ahead(data_dir))
    prices["au:AU-SA"] = load_au_sa(data_dir)
    prices.update(carried_series())
    watttime = load_watttime(data_dir)
    marginal = load_country_marginal(data_dir)
    latency = load_latency(data_dir)
    cost = load_cross_cloud_cost(data_dir)
    default_egress = load_aws_internet_egress(data_dir, DEFAULT_EGRESS_AWS_REGION)

    for spec in REGIONS:
        if (
            spec.price_key is not None
            and not spec.price_key.startswith("static:")
            and spec.price_key not in prices
        ):
            sys.exit(f"error: region {spec.id} names unknown price series {spec.price_key}")
    defaults = {spec.id: region_defaults(spec, prices, marginal) for spec in REGIONS}
    rtts = node_rtts(latency)
    egress, missing = egress_matrix(cost)
    if missing:
        print(f"note: {len(missing)} region pairs have no egress price and use the default", file=sys.stderr)

    rng = np.random.default_rng(SEED)
    signals = build_signals(prices, watttime, defaults)
    requests = build_requests(rng)
    averages = build_average_signals(load_country_average(data_dir))
    slice_text, trace_rows = trace_slice(data_dir)

    _write(out_dir / "default_topology.toml", render_topology(defaults, rtts, egress, default_egress))
    _write(out_dir / "sample_signals.jsonl", _jsonl(signals))
    _write(out_dir / "sample_requests.jsonl", _jsonl(requests))
    _write(out_dir / "average_signals.jsonl", _jsonl(averages))
    _write(out_dir / "azure_llm_2023_slice.csv", slice_text)
    _write(
        out_dir / "PROVENANCE.md",
        render_provenance(defaults, prices, watttime, rtts, latency, default_egress, signals, requests)
        + render_workload_provenance(averages, trace_rows),
    )
    print(
        f"wrote {out_dir}: {len(REGIONS)} regions, {len(SERVICE_NODES)} nodes, "
        f"{len(signals)} signals, {len(requests)} requests"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
