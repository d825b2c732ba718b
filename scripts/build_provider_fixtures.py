"""Build the provider test fixtures (tests/fixtures/providers/) from the real series of the shared data.

Each fixture is shaped like its provider's documented payload and carries real values; what was changed is
written in tests/fixtures/providers/PROVENANCE.md. Stdlib only; byte-identical on every run:

    python scripts/build_provider_fixtures.py --data-dir <shared data> --out-dir tests/fixtures/providers
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

#: 1 lb = 453.59237 g exactly, so g/kWh / 0.45359237 = lbs/MWh (WattTime delivers lbs/MWh).
G_PER_KWH_PER_LBS_PER_MWH = 0.45359237
WT_DATA_START = "2023-06-08 00:00:00"
WT_DATA_POINTS = 24
WT_FORECAST_REQUESTS = ("2023-06-08 00:00:00", "2023-06-08 06:00:00", "2023-06-08 12:00:00")
ENTSOE_ZONES = {"FR": "10YFR-RTE------C", "NL": "10YNL----------L", "BE": "10YBE----------2"}
ENTSOE_NS = "urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3"
SA_FROM, SA_TO = "2019-12-30T04:00:00+00:00", "2019-12-31T05:00:00+00:00"
EM_ZONES = {"FR": "FRA", "DE": "DEU", "NL": "NLD"}


def _iso(naive: str) -> str:
    """A shared-data time ("YYYY-MM-DD HH:MM:SS", UTC) as ISO 8601 with an explicit offset."""
    return datetime.fromisoformat(naive).replace(tzinfo=UTC).isoformat()


def _lbs(g_per_kwh: str) -> float:
    return float(g_per_kwh) / G_PER_KWH_PER_LBS_PER_MWH


def watttime_data(data_dir: Path) -> dict[str, object]:
    rows = list(csv.reader((data_dir / "carbon/watttime_moer_caiso_north_2023_5min.csv").open()))[1:]
    start = next(k for k, r in enumerate(rows) if r[0] == WT_DATA_START)
    points = [{"point_time": _iso(t), "value": _lbs(v)} for t, v in rows[start : start + WT_DATA_POINTS]]
    meta = {
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "units": "lbs_co2_per_mwh",
        "data_point_period_seconds": 300,
        "warnings": [],
    }
    return {"data": points, "meta": meta}


def watttime_forecasts(data_dir: Path) -> list[dict[str, object]]:
    with zipfile.ZipFile(data_dir / "carbon/watttime2023_caiso-north_actual_and_forecast.zip") as z:
        text = z.read("watttime2023_caiso-north_forecast.csv").decode()
    by_request: dict[str, list[tuple[str, str]]] = {r: [] for r in WT_FORECAST_REQUESTS}
    for row in csv.reader(io.StringIO(text)):
        if row[0] in by_request:
            by_request[row[0]].append((row[1], row[2]))
    out: list[dict[str, object]] = []
    for request, pts in by_request.items():
        meta = {
            "region": "CAISO_NORTH",
            "signal_type": "co2_moer",
            "units": "lbs_co2_per_mwh",
            "data_point_period_seconds": 300,
            "generated_at_period_seconds": 300,
            "generated_at": _iso(request),
            "warnings": [],
        }
        out.append({"data": [{"point_time": _iso(t), "value": _lbs(v)} for t, v in pts], "meta": meta})
    return out


def entsoe_a44(data_dir: Path) -> str:
    prices: dict[str, list[tuple[str, str]]] = {z: [] for z in ENTSOE_ZONES}
    with (data_dir / "prices/day_ahead_eu_2024-04-13_72h.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["zone"] in prices:
                assert row["currency"] == "EUR"
                prices[row["zone"]].append((row["datetime_utc"], row["price_per_mwh"]))
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<Publication_MarketDocument xmlns="{ENTSOE_NS}">',
        "  <mRID>fixture-a44-2024-04-13</mRID>",
        "  <revisionNumber>1</revisionNumber>",
        "  <type>A44</type>",
        '  <sender_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450'
        "</sender_MarketParticipant.mRID>",
        "  <sender_MarketParticipant.marketRole.type>A32</sender_MarketParticipant.marketRole.type>",
        '  <receiver_MarketParticipant.mRID codingScheme="A01">10X1001A1001A450'
        "</receiver_MarketParticipant.mRID>",
        "  <receiver_MarketParticipant.marketRole.type>A33</receiver_MarketParticipant.marketRole.type>",
        "  <createdDateTime>2024-04-12T12:00:00Z</createdDateTime>",
        "  <period.timeInterval><start>2024-04-13T00:00Z</start><end>2024-04-16T00:00Z</end>"
        "</period.timeInterval>",
    ]
    n = 0
    for zone, eic in ENTSOE_ZONES.items():
        series = prices[zone]
        for day in range(3):
            n += 1
            chunk = series[day * 24 : (day + 1) * 24]
            start = datetime.fromisoformat(chunk[0][0])
            end = start + timedelta(hours=24)
            lines += [
                "  <TimeSeries>",
                f"    <mRID>{n}</mRID>",
                "    <auction.type>A01</auction.type>",
                "    <businessType>A62</businessType>",
                f'    <in_Domain.mRID codingScheme="A01">{eic}</in_Domain.mRID>',
                f'    <out_Domain.mRID codingScheme="A01">{eic}</out_Domain.mRID>',
                "    <contract_MarketAgreement.type>A01</contract_MarketAgreement.type>",
                "    <currency_Unit.name>EUR</currency_Unit.name>",
                "    <price_Measure_Unit.name>MWH</price_Measure_Unit.name>",
                "    <curveType>A03</curveType>",
                "    <Period>",
                f"      <timeInterval><start>{start:%Y-%m-%dT%H:%MZ}</start><end>{end:%Y-%m-%dT%H:%MZ}</end>"
                "</timeInterval>",
                "      <resolution>PT60M</resolution>",
            ]
            previous = None
            for pos, (_, price) in enumerate(chunk, start=1):
                if price == previous:  # curve type A03: a repeated price is left out
                    continue
                previous = price
                amount = f"<price.amount>{price}</price.amount>"
                lines.append(f"      <Point><position>{pos}</position>{amount}</Point>")
            lines += ["    </Period>", "  </TimeSeries>"]
    lines.append("</Publication_MarketDocument>")
    return "\n".join(lines) + "\n"


def sa_csv(data_dir: Path) -> str:
    with (data_dir / "prices/au_sa_5min_2019-12-25_2020-01-01.csv").open() as fh:
        rows = list(csv.reader(fh))
    keep = [r for r in rows[1:] if SA_FROM <= r[1] <= SA_TO]
    return "\n".join(",".join(r) for r in [rows[0], *keep]) + "\n"


def electricitymaps(data_dir: Path) -> list[dict[str, object]]:
    with (data_dir / "carbon/country_average_ember.csv").open() as fh:
        ember = {r["iso3_or_region"]: r["gco2_per_kwh"] for r in csv.DictReader(fh)}
    return [
        {
            "zone": zone,
            "carbonIntensity": float(ember[iso3]),
            "datetime": "2024-04-13T00:00:00.000Z",
            "updatedAt": "2024-04-13T01:00:00.000Z",
            "createdAt": "2024-04-10T01:00:00.000Z",
            "emissionFactorType": "lifecycle",
            "isEstimated": False,
            "estimationMethod": None,
        }
        for zone, iso3 in EM_ZONES.items()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    a = ap.parse_args()
    out: Path = a.out_dir
    out.mkdir(parents=True, exist_ok=True)
    historical = json.dumps(watttime_data(a.data_dir), indent=1, ensure_ascii=False)
    (out / "watttime_caiso_north_historical.json").write_text(historical + "\n")
    (out / "watttime_caiso_north_forecasts.json").write_text(
        json.dumps(watttime_forecasts(a.data_dir), indent=1, ensure_ascii=False) + "\n"
    )
    (out / "entsoe_a44_fr_nl_be_2024-04-13.xml").write_text(entsoe_a44(a.data_dir))
    (out / "au_sa_5min_2019-12-30.csv").write_text(sa_csv(a.data_dir))
    (out / "electricitymaps_latest.json").write_text(
        json.dumps(electricitymaps(a.data_dir), indent=1, ensure_ascii=False) + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
