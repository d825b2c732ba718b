"""CSV replay of recorded series, and the topology's [providers] table that maps zones and holds rates."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from router.errors import ConfigError
from router.models import GridSignal
from router.providers import Parsed, Problem, parse_csv
from router.providers.csvreplay import parse_csv_series
from router.topology import load_topology

FIXTURES = Path(__file__).parents[1] / "fixtures" / "providers"
SA = (FIXTURES / "au_sa_5min_2019-12-30.csv").read_bytes()
TOPO = load_topology()
AUD = 0.651  # USD per AUD of the bundled topology (Federal Reserve H.10, 2024-02-02)
NOW = time.time()


def _ok(raw: bytes) -> list[GridSignal]:
    got = parse_csv(raw, TOPO, NOW)
    assert not isinstance(got, Problem), got
    return got


def test_sa_prices_become_signals_with_spikes_and_negative_prices_intact() -> None:
    """Every South Australian row becomes a USD price signal, the 7,750 AUD spike and -32.5 AUD included."""
    got = _ok(SA)
    assert len(got) == SA.count(b"\n") - 1
    assert {s.region for s in got} == {"gcp:australia-southeast2-a"}
    prices = [s.price_usd_per_mwh for s in got]
    assert max(prices) == pytest.approx(7750.86 * AUD)  # type: ignore[type-var]
    assert min(prices) == pytest.approx(-32.51874 * AUD)  # type: ignore[type-var]
    assert got[0].source == "opennem"
    assert got[0].provider_zone == "AU-SA"
    assert all(s.marginal_gco2_per_kwh is None for s in got)


def test_rows_come_out_in_time_order() -> None:
    """Rows are sorted by ts (stable), whatever their order in the file."""
    lines = SA.splitlines()
    shuffled = b"\n".join([lines[0], *reversed(lines[1:])]) + b"\n"
    got = _ok(shuffled)
    assert [s.ts for s in got] == sorted(s.ts for s in got)
    assert [s.price_usd_per_mwh for s in got] == [s.price_usd_per_mwh for s in _ok(SA)]


def test_region_and_epoch_columns_with_several_values() -> None:
    """A file naming regions and epoch seconds may carry price, marginal and average values and provenance."""
    raw = (
        b"ts,region,price_usd_per_mwh,marginal_gco2_per_kwh,average_gco2_per_kwh,valid_for_s,estimated\n"
        b"100,aws:us-west-1,,425.01605069,,300,false\n"
        b"50,aws:eu-west-2,25.5,,200,,true\n"
    )
    got = _ok(raw)
    assert [s.region for s in got] == ["aws:eu-west-2", "aws:us-west-1"]
    assert got[0].average_gco2_per_kwh == 200
    assert got[0].marginal_gco2_per_kwh is None
    assert got[0].estimated
    assert got[1].marginal_gco2_per_kwh == 425.01605069
    assert got[1].valid_for_s == 300
    assert got[1].source == "csv"


@pytest.mark.parametrize(
    ("raw", "line", "field"),
    [
        (b"zone,datetime_utc,price_per_mwh,currency\nAU-XX,2019-12-30T04:00:00+00:00,1,AUD\n", 2, "zone"),
        (b"zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30T04:00:00+00:00,1,NZD\n", 2, "currency"),
        (b"zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30 04:00:00,1,AUD\n", 2, "datetime_utc"),
        (b"zone,datetime_utc,price_per_mwh,currency\nAU-SA,2100-01-01T00:00:00+00:00,1,AUD\n", 2, "ts"),
        (
            b"zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30T04:00:00+00:00,abc,AUD\n",
            2,
            "price_per_mwh",
        ),
        (
            b"zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30T04:00:00+00:00,nan,AUD\n",
            2,
            "price_per_mwh",
        ),
        (
            b"zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30T04:00:00+00:00,1e12,AUD\n",
            2,
            "price_per_mwh",
        ),
        (b"zone,datetime_utc,price_per_mwh,currency\nAU-SA,2019-12-30T04:00:00+00:00,,AUD\n", 2, None),
        (b"zone,datetime_utc,price_per_mwh,currency\nAU-SA,,1,AUD\n", 2, "datetime"),
        (b"ts,region,marginal_gco2_per_kwh\n1,aws:us-west-1,1\n2,mars-1,1\n", 3, "region"),
        (b"ts,region,marginal_gco2_per_kwh\n1,aws:us-west-1,-1\n", 2, "marginal_gco2_per_kwh"),
        (b"ts,region,marginal_gco2_per_kwh\n-5,aws:us-west-1,1\n", 2, "ts"),
        (b"ts,region,marginal_gco2_per_kwh,estimated\n1,aws:us-west-1,1,maybe\n", 2, "estimated"),
        (b"ts,region,marginal_gco2_per_kwh\n1,aws:us-west-1,1,extra\n", 2, None),
        (b"ts,region,price_per_mwh\n1,aws:us-west-1,1\n", 1, None),
        (b"region,price_usd_per_mwh\naws:us-west-1,1\n", 1, None),
        (b"ts,price_usd_per_mwh\n1,1\n", 1, None),
        (b"ts,region\n1,aws:us-west-1\n", 1, None),
        (b"", 1, None),
    ],
)
def test_bad_rows_are_rejected_with_line_and_field(raw: bytes, line: int, field: str | None) -> None:
    """Unmapped zones, unknown currencies, naive or future times, non-numbers, absurd values and bad headers
    are rejected with the 1-based line and the column at fault."""
    got = parse_csv(raw, TOPO, NOW)
    assert isinstance(got, Problem), got
    assert (got.line, got.field) == (line, field), got.error


def test_non_utf8_file_is_rejected() -> None:
    """A file that is not UTF-8 is rejected, not decoded with replacement characters."""
    got = parse_csv(b"ts,region,price_usd_per_mwh\n1,\xff\xfe,1\n", TOPO, NOW)
    assert isinstance(got, Problem)
    assert "UTF-8" in got.error


_BASE = """
[[regions]]
id = "a"
jurisdiction = "DE"
lat = 50.0
lon = 8.0
pue = 1.2
capacity_kw = 10.0
[[service_nodes]]
id = "fe"
home_region = "a"
lat = 50.0
lon = 8.0
"""


def test_bundled_topology_maps_the_real_provider_zones() -> None:
    """The default topology maps CAISO North, the ENTSO-E bidding zones and the shared series' zones."""
    p = TOPO.providers
    assert p.zones("watttime") == {"CAISO_NORTH": ("aws:us-west-1",)}
    assert p.zones("entsoe")["10YFR-RTE------C"] == ("azure:francecentral",)
    assert p.zones("csv")["AU-SA"] == ("gcp:australia-southeast2-a",)
    assert p.usd_rate("EUR") == 1.0787
    assert p.usd_rate("USD") == 1.0
    assert p.usd_rate("NZD") is None


@pytest.mark.parametrize(
    ("providers", "needle"),
    [
        ('[providers.watttime]\n"CAISO_NORTH" = "mars-1"\n', "providers.watttime['CAISO_NORTH']"),
        ('[providers.entsoe]\n"X" = ["a", "b"]\n', "providers.entsoe['X']"),
        ('[providers.csv]\n"X" = "a"\n"Y" = "a"\n', "fed by zones 'X' and 'Y'"),
        ("[providers]\nusd_per = { eur = 1.1 }\n", "usd_per"),
        ("[providers]\nusd_per = { EUR = -1.0 }\n", "usd_per"),
        ('[providers]\nnordpool = { "X" = "a" }\n', "nordpool"),
    ],
)
def test_bad_provider_tables_stop_the_load(tmp_path: Path, providers: str, needle: str) -> None:
    """An unknown region, a region fed twice, a bad currency or rate, an unknown provider: ConfigError."""
    path = tmp_path / "t.toml"
    path.write_text(_BASE + providers)
    with pytest.raises(ConfigError) as err:
        load_topology(path)
    assert needle in err.value.render()


def test_a_zone_may_feed_several_regions(tmp_path: Path) -> None:
    """A zone mapped to a list of regions feeds each of them."""
    path = tmp_path / "t.toml"
    path.write_text(
        _BASE.replace('id = "fe"', 'id = "fe"').replace(
            "[[service_nodes]]",
            '[[regions]]\nid = "b"\njurisdiction = "DE"\nlat = 50.0\nlon = 8.0\npue = 1.2\n'
            "capacity_kw = 10.0\n"
            "[[service_nodes]]",
        )
        + '[providers.watttime]\n"Z" = ["a", "b"]\n'
    )
    assert load_topology(path).providers.zones("watttime") == {"Z": ("a", "b")}


def test_an_unknown_column_is_refused_naming_the_closest_known_one() -> None:
    """A typo'd value column is refused on line 1 with 'did you mean' and the option that would drop it."""
    raw = b"ts,region,marginal_gco2_kwh\n1,aws:us-west-1,400\n"
    got = parse_csv(raw, TOPO, NOW)
    assert isinstance(got, Problem)
    assert (got.line, got.field, got.received) == (1, "marginal_gco2_kwh", ["marginal_gco2_kwh"])
    assert "did you mean 'marginal_gco2_per_kwh'?" in got.problem
    assert got.expected is not None
    assert "--ignore-columns marginal_gco2_kwh" in got.expected


def test_ignored_columns_are_left_out_and_must_exist() -> None:
    """--ignore-columns drops named columns (a known one too); naming a column the header lacks is refused."""
    raw = b"ts,region,marginal_gco2_per_kwh,estimated,note\n1,aws:us-west-1,400,maybe,hello\n"
    got = parse_csv(raw, TOPO, NOW, ignore_columns=["note", "estimated"])
    assert not isinstance(got, Problem), got
    assert [(s.marginal_gco2_per_kwh, s.estimated) for s in got] == [(400.0, None)]
    absent = parse_csv(raw, TOPO, NOW, ignore_columns=["note", "estimated", "nope"])
    assert isinstance(absent, Problem)
    assert (absent.line, absent.field) == (1, "nope")


DAY = 86400.0


def _ahead(rows: list[tuple[float, str]], header: str = "ts,region,price_usd_per_mwh") -> bytes:
    return (header + "\n" + "".join(f"{NOW + dt:.0f},{rest}\n" for dt, rest in rows)).encode()


def test_rows_after_now_become_one_forecast_per_region() -> None:
    """With forecasts on, rows dated after now become per-region forecasts; earlier rows stay signals."""
    raw = _ahead(
        [
            (-600, "aws:us-west-1,30"),
            (DAY + 3600, "aws:us-west-1,50"),
            (DAY, "aws:us-west-1,40"),
            (DAY + 7200, "aws:us-west-1,45"),
            (DAY, "aws:eu-west-2,90"),
            (DAY + 1800, "aws:eu-west-2,95"),
        ]
    )
    got = parse_csv_series(raw, TOPO, NOW, forecasts=True)
    assert isinstance(got, Parsed), got
    assert [(s.region, s.price_usd_per_mwh) for s in got.signals] == [("aws:us-west-1", 30.0)]
    by_region = {f.region: f for f in got.forecasts}
    west = by_region["aws:us-west-1"]
    assert [p.price_usd_per_mwh for p in west.points] == [40.0, 50.0, 45.0]
    assert west.step_s == 3600
    assert west.generated_at == NOW
    assert west.source == "csv"
    assert by_region["aws:eu-west-2"].step_s == 1800


def test_rows_after_now_are_refused_without_forecasts_saying_how_to_keep_them() -> None:
    """Without forecasts, a row dated tomorrow is refused and the message names --forecasts-out."""
    got = parse_csv(_ahead([(DAY, "aws:us-west-1,40")]), TOPO, NOW)
    assert isinstance(got, Problem)
    assert (got.line, got.field) == (2, "ts")
    assert got.expected is not None
    assert "--forecasts-out" in got.expected


@pytest.mark.parametrize(
    ("raw", "line", "field", "needle"),
    [
        (
            _ahead([(DAY, "aws:us-west-1,40,300")], "ts,region,price_usd_per_mwh,average_gco2_per_kwh"),
            2,
            "average_gco2_per_kwh",
            "no average intensity",
        ),
        (_ahead([(DAY, "aws:us-west-1,40")]), 2, "valid_for_s", "single row"),
        (
            _ahead([(DAY, "aws:us-west-1,40"), (DAY, "aws:us-west-1,41")]),
            3,
            "ts",
            "two rows for one region and time",
        ),
        (_ahead([(9 * DAY, "aws:us-west-1,40")]), 2, "ts", "too far ahead"),
        (_ahead([(DAY, "aws:us-west-1,")], "ts,region,price_usd_per_mwh,pue"), 1, "pue", "unknown column"),
    ],
)
def test_rows_after_now_that_cannot_be_a_forecast_are_refused(
    raw: bytes, line: int, field: str, needle: str
) -> None:
    """An average value, an unknowable step, two rows at one time, 9 days ahead: refused by line."""
    got = parse_csv_series(raw, TOPO, NOW, forecasts=True)
    assert isinstance(got, Problem), got
    assert (got.line, got.field) == (line, field), got.error
    assert needle in got.error


def test_a_single_row_after_now_holds_for_its_valid_for_s() -> None:
    """One row after now with valid_for_s is a one-point forecast whose step is that validity."""
    raw = _ahead([(DAY, "aws:us-west-1,40,3600")], "ts,region,price_usd_per_mwh,valid_for_s")
    got = parse_csv_series(raw, TOPO, NOW, forecasts=True)
    assert isinstance(got, Parsed), got
    (fc,) = got.forecasts
    assert fc.step_s == 3600
    assert len(fc.points) == 1
