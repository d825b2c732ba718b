"""Hypothesis fuzz: no provider parser ever raises, whatever the bytes; each returns Parsed or a Problem."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.providers import Parsed, Problem, parse_csv, parse_electricitymaps, parse_entsoe, parse_watttime
from router.topology import load_topology

TOPO = load_topology()
P = TOPO.providers
NOW = time.time()
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _all(raw: bytes) -> list[object]:
    return [
        parse_watttime(raw, P.zones("watttime"), NOW),
        parse_electricitymaps(raw, P.zones("electricitymaps"), NOW),
        parse_entsoe(raw, P.zones("entsoe"), NOW, P.usd_per),
        parse_csv(raw, TOPO, NOW),
    ]


def _never_raises(raw: bytes) -> None:
    for got in _all(raw):
        assert isinstance(got, Parsed | Problem | list)
        if isinstance(got, Problem):
            assert got.error


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(raw: bytes) -> None:
    """Arbitrary bytes are rejected or parsed, never raised on."""
    _never_raises(raw)


@FUZZ
@given(st.integers(min_value=1, max_value=5000))
def test_deep_nesting(depth: int) -> None:
    """JSON or XML nested thousands deep is rejected, never a RecursionError."""
    _never_raises(b"[" * depth + b"]" * depth)
    _never_raises(b'{"meta":' * depth + b"1" + b"}" * depth)
    _never_raises(b"<a>" * depth + b"</a>" * depth)


def _wt(meta: dict[str, Any], data: Any) -> bytes:
    base = {
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "units": "lbs_co2_per_mwh",
        "data_point_period_seconds": 300,
    }
    return json.dumps({"meta": {**base, **meta}, "data": data}).encode("utf-8", "surrogatepass")


point_times = st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
    lambda d: d.isoformat()
) | st.text(max_size=30)
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(
    min_value=-(10**20), max_value=10**20
)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ["generated_at", "generated_at_period_seconds", "data_point_period_seconds", "region"]
        ),
        json_values,
        max_size=3,
    ),
    st.lists(st.fixed_dictionaries({"point_time": point_times, "value": numbers | json_values}), max_size=8)
    | json_values,
)
def test_watttime_shaped_payloads(meta: dict[str, Any], data: Any) -> None:
    """Payloads shaped like WattTime's with random times, huge numbers and unicode never raise."""
    raw = _wt(meta, data)
    got = parse_watttime(raw, P.zones("watttime"), NOW)
    assert isinstance(got, Parsed | Problem)
    if isinstance(got, Parsed):
        for s in got.signals:
            assert s.marginal_gco2_per_kwh is not None
            assert 0 <= s.marginal_gco2_per_kwh <= 3000


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "zone",
                "carbonIntensity",
                "datetime",
                "updatedAt",
                "isEstimated",
                "history",
                "emissionFactorType",
            ]
        ),
        json_values | numbers | point_times,
        max_size=7,
    )
)
def test_electricitymaps_shaped_payloads(fields: dict[str, Any]) -> None:
    """Payloads shaped like Electricity Maps' never raise and never yield a marginal value."""
    got = parse_electricitymaps(
        json.dumps(fields).encode("utf-8", "surrogatepass"), P.zones("electricitymaps"), NOW
    )
    assert isinstance(got, Parsed | Problem)
    if isinstance(got, Parsed):
        assert all(s.marginal_gco2_per_kwh is None for s in got.signals)


@FUZZ
@given(
    st.lists(st.tuples(st.text(max_size=6), st.text(max_size=12)), max_size=6),
    st.sampled_from(["PT60M", "PT15M", "PT5M", "", "\u00e9"]),
    st.text(max_size=25),
)
def test_entsoe_shaped_documents(points: list[tuple[str, str]], res: str, start: str) -> None:
    """A44-shaped documents with random positions, prices, resolutions and times never raise."""
    from xml.sax.saxutils import escape

    pts = "".join(
        f"<Point><position>{escape(p)}</position><price.amount>{escape(v)}</price.amount></Point>"
        for p, v in points
    )
    doc = (
        '<Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">'
        "<type>A44</type><createdDateTime>2024-04-12T12:00Z</createdDateTime><TimeSeries>"
        "<in_Domain.mRID>10YFR-RTE------C</in_Domain.mRID><currency_Unit.name>EUR</currency_Unit.name>"
        "<price_Measure_Unit.name>MWH</price_Measure_Unit.name><Period><timeInterval>"
        f"<start>{escape(start)}</start><end>2024-04-14T00:00Z</end></timeInterval><resolution>{res}</resolution>"
        f"{pts}</Period></TimeSeries></Publication_MarketDocument>"
    )
    got = parse_entsoe(doc.encode("utf-8", "surrogatepass"), P.zones("entsoe"), NOW, P.usd_per)
    assert isinstance(got, Parsed | Problem)


@FUZZ
@given(st.lists(st.lists(st.text(max_size=15) | numbers.map(str), min_size=1, max_size=5), max_size=6))
def test_csv_shaped_files(rows: list[list[str]]) -> None:
    """CSV files with a valid header and random cells never raise."""
    header = "zone,datetime_utc,price_per_mwh,currency\n"
    body = "\n".join(",".join(c.replace("\n", " ") for c in r) for r in rows)
    got = parse_csv((header + body).encode("utf-8", "surrogatepass"), TOPO, NOW)
    assert isinstance(got, list | Problem)
