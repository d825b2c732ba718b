"""Electricity Maps v3 payloads: an average intensity, flagged as such, never the marginal value."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.providers import Parsed, Problem, parse_electricitymaps
from router.topology import load_topology

FIXTURES = Path(__file__).parents[1] / "fixtures" / "providers"
ZONES = load_topology().providers.zones("electricitymaps")
NOW = time.time()


def _latest() -> list[dict[str, Any]]:
    return list(orjson.loads((FIXTURES / "electricitymaps_latest.json").read_bytes()))


def _parse(payload: dict[str, Any]) -> Parsed | Problem:
    return parse_electricitymaps(orjson.dumps(payload), ZONES, NOW)


def test_latest_becomes_an_average_signal_with_provenance() -> None:
    """carbonIntensity lands in average_gco2_per_kwh with estimated, generated_at and the zone."""
    got = _parse(_latest()[0])
    assert isinstance(got, Parsed)
    assert not got.forecasts
    (s,) = got.signals
    assert s.region == "azure:francecentral"
    assert s.average_gco2_per_kwh == 44.18  # Ember's annual average for FRA, carried in the fixture
    assert s.ts == 1712966400.0  # 2024-04-13T00:00:00.000Z
    assert s.generated_at == 1712970000.0  # updatedAt
    assert (s.source, s.estimated, s.provider_zone) == ("electricitymaps", False, "FR")


@pytest.mark.parametrize("payload", _latest())
def test_average_never_fills_the_marginal_field(payload: dict[str, Any]) -> None:
    """No Electricity Maps payload ever sets marginal_gco2_per_kwh (or a price): average is not marginal."""
    got = _parse(payload)
    assert isinstance(got, Parsed)
    for s in got.signals:
        assert s.marginal_gco2_per_kwh is None
        assert s.price_usd_per_mwh is None
        assert s.average_gco2_per_kwh == payload["carbonIntensity"]


def test_estimated_flag_is_carried() -> None:
    """isEstimated true is kept as estimated true."""
    got = _parse(dict(_latest()[1], isEstimated=True, estimationMethod="TIME_SLICER_AVERAGE"))
    assert isinstance(got, Parsed)
    assert got.signals[0].estimated is True


def test_history_payload_gives_one_signal_per_entry() -> None:
    """A /history payload yields one average signal per entry, in the entries' order."""
    entries = [dict(_latest()[1], datetime=f"2024-04-13T0{h}:00:00.000Z") for h in range(3)]
    got = _parse({"zone": "DE", "history": entries})
    assert isinstance(got, Parsed)
    assert [s.ts for s in got.signals] == [1712966400.0, 1712970000.0, 1712973600.0]
    assert all(s.marginal_gco2_per_kwh is None for s in got.signals)


_FUTURE = "2100-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"zone": "XX"}, "zone"),
        ({"zone": None}, "zone"),
        ({"carbonIntensity": None}, "carbonIntensity"),
        ({"carbonIntensity": "44"}, "carbonIntensity"),
        ({"carbonIntensity": -1}, "carbonIntensity"),
        ({"carbonIntensity": 50_000}, "carbonIntensity"),
        ({"datetime": None}, "datetime"),
        ({"datetime": "2024-04-13T00:00:00"}, "datetime"),
        ({"datetime": _FUTURE}, "datetime"),
        ({"updatedAt": _FUTURE}, "updatedAt"),
        ({"updatedAt": None}, "updatedAt"),
        ({"isEstimated": None}, "isEstimated"),
        ({"isEstimated": "no"}, "isEstimated"),
        ({"emissionFactorType": "marginal"}, "emissionFactorType"),
        ({"forecast": [{"carbonIntensity": 1, "datetime": "2024-04-13T00:00:00Z"}]}, "forecast"),
    ],
)
def test_bad_payloads_are_rejected_naming_the_field(change: dict[str, Any], field: str) -> None:
    """Missing or mistyped fields, unmapped zones, future times, implausible values: rejected by field."""
    got = _parse(dict(_latest()[0], **change))
    assert isinstance(got, Problem), got
    assert got.field == field, got.error


def test_past_range_payload_reads_its_data_list() -> None:
    """A /past-range payload (entries under ``data``) is read like a history payload."""
    entries = [dict(_latest()[2], datetime=f"2024-04-13T0{h}:00:00.000Z") for h in range(2)]
    got = _parse({"zone": "NL", "data": entries})
    assert isinstance(got, Parsed)
    assert [s.average_gco2_per_kwh for s in got.signals] == [252.7, 252.7]
    bad = _parse({"zone": "NL", "data": [entries[0], dict(entries[1], isEstimated=None)]})
    assert isinstance(bad, Problem)
    assert bad.field == "data[1].isEstimated"


def test_bad_history_entry_names_its_index() -> None:
    """A bad entry of a history payload is named with its index."""
    entries = [_latest()[1], dict(_latest()[1], carbonIntensity=None)]
    got = _parse({"zone": "DE", "history": entries})
    assert isinstance(got, Problem)
    assert got.field == "history[1].carbonIntensity"
