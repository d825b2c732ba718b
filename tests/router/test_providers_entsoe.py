"""ENTSO-E A44 day-ahead prices: EUR to USD, A03 gaps, started steps as signals, later ones as a forecast."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from router.providers import Parsed, Problem, parse_entsoe
from router.providers.entsoe import NAMESPACE, cleared_price_signals
from router.topology import load_topology

FIXTURES = Path(__file__).parents[1] / "fixtures" / "providers"
PROVIDERS = load_topology().providers
ZONES = PROVIDERS.zones("entsoe")
USD_PER = PROVIDERS.usd_per
EUR = 1.0787  # USD per EUR of the bundled topology (Federal Reserve H.10, 2024-02-02)
DOC = (FIXTURES / "entsoe_a44_fr_nl_be_2024-04-13.xml").read_bytes()
T0 = 1712966400.0  # 2024-04-13T00:00Z, the first step of the fixture


def _parse(raw: bytes, now: float | None = None, zones: object = None) -> Parsed | Problem:
    return parse_entsoe(raw, zones or ZONES, time.time() if now is None else now, USD_PER)  # type: ignore[arg-type]


def _by_region(got: Parsed) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for s in got.signals:
        assert s.price_usd_per_mwh is not None
        out.setdefault(s.region, []).append((s.ts, s.price_usd_per_mwh))
    return out


def test_past_document_becomes_price_signals_in_usd() -> None:
    """Every hour of the three zones becomes a price signal in USD/MWh at the configured rate."""
    got = _parse(DOC)
    assert isinstance(got, Parsed)
    assert not got.forecasts
    by = _by_region(got)
    assert sorted(by) == ["azure:francecentral", "gcp:europe-west1-b", "gcp:europe-west4-a"]
    assert all(len(v) == 72 for v in by.values())
    assert by["azure:francecentral"][0] == (T0, pytest.approx(24.15 * EUR, rel=1e-15))
    assert by["gcp:europe-west1-b"][-1] == (T0 + 71 * 3600, pytest.approx(25.06 * EUR, rel=1e-15))
    s = got.signals[0]
    assert (s.source, s.estimated, s.valid_for_s, s.provider_zone) == (
        "entsoe",
        False,
        3600.0,
        "10YFR-RTE------C",
    )
    assert s.generated_at == 1712923200.0  # createdDateTime 2024-04-12T12:00:00Z
    assert s.marginal_gco2_per_kwh is None


def test_sums_match_the_source_series() -> None:
    """The 72 prices of each zone sum to the source file's sum (FR 192.31, NL 2184.53, BE 1454.47 EUR)."""
    got = _parse(DOC)
    assert isinstance(got, Parsed)
    by = _by_region(got)
    for region, eur_sum in (
        ("azure:francecentral", 192.31),
        ("gcp:europe-west4-a", 2184.53),
        ("gcp:europe-west1-b", 1454.47),
    ):
        assert sum(p for _, p in by[region]) == pytest.approx(eur_sum * EUR, rel=1e-12)


def test_negative_prices_survive() -> None:
    """The Netherlands' negative afternoon prices (-55.01 EUR/MWh at 14:00) are kept, not clipped."""
    got = _parse(DOC)
    assert isinstance(got, Parsed)
    nl = dict(_by_region(got)["gcp:europe-west4-a"])
    assert nl[T0 + 14 * 3600] == pytest.approx(-55.01 * EUR)
    assert sum(p < 0 for p in nl.values()) >= 6


def test_a03_missing_position_repeats_the_previous_price() -> None:
    """FR 2024-04-15 11:00 is left out of the document (same as 10:00, 0.0) and comes back as 0.0."""
    assert (
        b"<position>11</position><price.amount>0.0</price.amount></Point>\n      <Point><position>13<" in DOC
    )
    got = _parse(DOC)
    assert isinstance(got, Parsed)
    fr = dict(_by_region(got)["azure:francecentral"])
    assert fr[T0 + (48 + 11) * 3600] == 0.0


def test_started_steps_are_signals_and_later_steps_a_forecast() -> None:
    """With now inside the document, steps started by now are signals and the rest one forecast per region."""
    now = T0 + 10 * 3600  # exactly the start of the 11th step: it has started
    got = _parse(DOC, now=now)
    assert isinstance(got, Parsed)
    by = _by_region(got)
    assert all(len(v) == 11 for v in by.values())
    assert max(s.ts for s in got.signals) == now
    assert len(got.forecasts) == 3
    fc = next(f for f in got.forecasts if f.region == "gcp:europe-west4-a")
    assert fc.step_s == 3600.0
    assert fc.source == "entsoe"
    assert fc.generated_at == 1712923200.0
    assert len(fc.points) == 61
    assert fc.points[0].ts == now + 3600
    assert fc.points[3].price_usd_per_mwh == pytest.approx(-55.01 * EUR)  # 14:00
    assert all(p.marginal_gco2_per_kwh is None for p in fc.points)


def test_cleared_prices_ahead_become_signals_for_later_release() -> None:
    """Each step of an ENTSO-E price forecast gives the signal to publish when the step starts."""
    now = T0 + 10 * 3600
    got = _parse(DOC, now=now)
    assert isinstance(got, Parsed)
    fc = next(f for f in got.forecasts if f.region == "gcp:europe-west4-a")
    later = cleared_price_signals(fc)
    assert [s.ts for s in later] == [p.ts for p in fc.points]
    assert [s.price_usd_per_mwh for s in later] == [p.price_usd_per_mwh for p in fc.points]
    s = later[0]
    assert (s.region, s.valid_for_s, s.source, s.estimated) == ("gcp:europe-west4-a", 3600.0, "entsoe", False)
    assert (s.generated_at, s.provider_zone) == (fc.generated_at, "10YNL----------L")
    # every step of the document is covered exactly once: started ones now, the rest when they start
    assert len(got.signals) + sum(len(cleared_price_signals(f)) for f in got.forecasts) == 3 * 72


def test_marginal_forecasts_are_never_released_as_signals() -> None:
    """A WattTime forecast is an estimate, not a cleared price: it gives no signals to release."""
    from router.models import GridForecast

    fc = GridForecast(
        region="aws:us-west-1",
        generated_at=0.0,
        step_s=300.0,
        source="watttime",
        points=({"ts": 1.0, "marginal_gco2_per_kwh": 400.0},),  # type: ignore[arg-type]
    )
    assert cleared_price_signals(fc) == ()


def _doc(
    periods: str,
    zone: str = "10YFR-RTE------C",
    currency: str = "EUR",
    unit: str = "MWH",
    curve: str = "A03",
    created: str = "2024-04-12T12:00:00Z",
    doc_type: str = "A44",
) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Publication_MarketDocument xmlns="{NAMESPACE}">
  <type>{doc_type}</type>
  <createdDateTime>{created}</createdDateTime>
  <TimeSeries>
    <in_Domain.mRID codingScheme="A01">{zone}</in_Domain.mRID>
    <currency_Unit.name>{currency}</currency_Unit.name>
    <price_Measure_Unit.name>{unit}</price_Measure_Unit.name>
    <curveType>{curve}</curveType>
    {periods}
  </TimeSeries>
</Publication_MarketDocument>""".encode()


def _period(
    points: dict[int | str, str],
    res: str = "PT60M",
    start: str = "2024-04-13T00:00Z",
    end: str = "2024-04-13T06:00Z",
) -> str:
    pts = "".join(
        f"<Point><position>{p}</position><price.amount>{v}</price.amount></Point>" for p, v in points.items()
    )
    interval = f"<timeInterval><start>{start}</start><end>{end}</end></timeInterval>"
    return f"<Period>{interval}<resolution>{res}</resolution>{pts}</Period>"


def test_gaps_are_filled_by_the_previous_price() -> None:
    """Positions 1, 2, 5 of six give a, b, b, b, c, c (curve type A03)."""
    got = _parse(_doc(_period({1: "10", 2: "20", 5: "-5"})))
    assert isinstance(got, Parsed)
    prices = [p for _, p in _by_region(got)["azure:francecentral"]]
    assert prices == pytest.approx([10 * EUR, 20 * EUR, 20 * EUR, 20 * EUR, -5 * EUR, -5 * EUR])


def test_finest_resolution_wins() -> None:
    """A zone with both hourly and 15-minute series is read at 15 minutes."""
    hourly = _period({1: "10"}, end="2024-04-13T01:00Z")
    quarter = _period({1: "1", 2: "2", 3: "3", 4: "4"}, res="PT15M", end="2024-04-13T01:00Z")
    got = _parse(_doc(hourly + quarter))
    assert isinstance(got, Parsed)
    assert [s.valid_for_s for s in got.signals] == [900.0] * 4
    assert [s.ts for s in got.signals] == [T0 + 900.0 * k for k in range(4)]


_BOMB = (
    b'<?xml version="1.0"?>\n'
    b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'
    b'<Publication_MarketDocument xmlns="' + NAMESPACE.encode() + b'">&lol2;</Publication_MarketDocument>'
)
_ACK = (
    b'<?xml version="1.0"?><Acknowledgement_MarketDocument '
    b'xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">'
    b"<Reason><code>999</code><text>No matching data found</text></Reason></Acknowledgement_MarketDocument>"
)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (_BOMB, None),
        (b"<!ENTITY x SYSTEM 'file:///etc/passwd'>", None),
        (b"not xml at all", None),
        (b"", None),
        (_ACK, None),
        (b'<Publication_MarketDocument xmlns="urn:other"/>', None),
        (_doc(_period({1: "10"}), doc_type="A65"), "type"),
        (_doc(_period({1: "10"}), zone="10YAT-APG------L"), "TimeSeries[0].in_Domain.mRID"),
        (_doc(_period({1: "10"}), currency="GBP"), "TimeSeries[0].currency_Unit.name"),
        (_doc(_period({1: "10"}), unit="KWH"), "TimeSeries[0].price_Measure_Unit.name"),
        (_doc(_period({1: "10"}), curve="A02"), "TimeSeries[0].curveType"),
        (_doc(_period({1: "10"}), curve="A01"), "TimeSeries[0].Period[0].Point"),
        (_doc(_period({1: "10"}), created="2100-01-01T00:00Z"), "createdDateTime"),
        (_doc(_period({1: "10"}), created="2024-04-12T12:00:00"), "createdDateTime"),
        (_doc(_period({1: "10"}, res="PT5M")), "TimeSeries[0].Period[0].resolution"),
        (_doc(_period({1: "10"}, end="2024-04-13T06:30Z")), "TimeSeries[0].Period[0].timeInterval"),
        (_doc(_period({1: "10"}, end="2024-04-12T06:00Z")), "TimeSeries[0].Period[0].timeInterval"),
        (_doc(_period({2: "10"})), "TimeSeries[0].Period[0].Point"),
        (_doc(_period({1: "10", 7: "3"})), "TimeSeries[0].Period[0].Point[1].position"),
        (_doc(_period({1: "10", "x": "3"})), "TimeSeries[0].Period[0].Point[1].position"),
        (_doc(_period({1: "abc"})), "TimeSeries[0].Period[0].Point[0].price.amount"),
        (_doc(_period({1: "NaN"})), "TimeSeries[0].Period[0].Point[0].price.amount"),
        (_doc(_period({1: "1e9"})), "TimeSeries[0].Period[0].Point[0].price.amount"),
        (_doc(_period({1: "10"}, start="2100-01-01T00:00Z", end="2100-01-01T06:00Z")), "TimeSeries"),
        (_doc(""), "TimeSeries[0].Period"),
    ],
)
def test_bad_documents_are_rejected_naming_the_field(raw: bytes, field: str | None) -> None:
    """Entity tricks, non-XML, wrong documents, unmapped zones, unknown currencies or units, bad positions
    and prices, and documents from the future are all rejected with the field at fault."""
    got = _parse(raw)
    assert isinstance(got, Problem), got
    assert got.field == field, got.error
    assert got.error


def test_duplicate_position_is_rejected() -> None:
    """The same position twice in one Period is refused."""
    period = _period({1: "10"}).replace(
        "</Period>", "<Point><position>1</position><price.amount>11</price.amount></Point></Period>"
    )
    got = _parse(_doc(period))
    assert isinstance(got, Problem)
    assert got.field == "TimeSeries[0].Period[0].Point[1].position"


def test_size_bound_is_enforced() -> None:
    """A document larger than the size bound is refused before parsing."""
    got = parse_entsoe(DOC, ZONES, time.time(), USD_PER, max_bytes=1000)
    assert isinstance(got, Problem)
    assert "bytes" in got.error
