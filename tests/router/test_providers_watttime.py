"""WattTime v3 payloads: lbs/MWh to g/kWh exactly, signals vs forecasts, every bad input rejected by field."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.providers import Parsed, Problem, parse_watttime
from router.providers.common import FUTURE_TOLERANCE_S
from router.topology import load_topology

FIXTURES = Path(__file__).parents[1] / "fixtures" / "providers"
ZONES = load_topology().providers.zones("watttime")
NOW = time.time()


def _data() -> dict[str, Any]:
    return dict(orjson.loads((FIXTURES / "watttime_caiso_north_historical.json").read_bytes()))


def _forecasts() -> list[dict[str, Any]]:
    return list(orjson.loads((FIXTURES / "watttime_caiso_north_forecasts.json").read_bytes()))


def _parse(payload: dict[str, Any], now: float = NOW) -> Parsed | Problem:
    return parse_watttime(orjson.dumps(payload), ZONES, now)


def test_data_points_become_marginal_signals_in_g_per_kwh() -> None:
    """Each data point becomes one marginal signal of the mapped region with WattTime provenance."""
    got = _parse(_data())
    assert isinstance(got, Parsed)
    assert not got.forecasts
    assert len(got.signals) == 24
    first = got.signals[0]
    assert first.region == "aws:us-west-1"
    assert first.ts == 1686182400.0  # 2023-06-08T00:00:00Z
    assert first.valid_for_s == 300.0
    assert (first.source, first.estimated, first.provider_zone) == ("watttime", False, "CAISO_NORTH")
    assert first.price_usd_per_mwh is None
    assert first.average_gco2_per_kwh is None
    assert [s.ts for s in got.signals] == [1686182400.0 + 300.0 * k for k in range(24)]


def test_conversion_gives_back_the_source_series_exactly() -> None:
    """lbs/MWh * 0.45359237 reproduces the published g/kWh values of the CAISO North series."""
    got = _parse(_data())
    assert isinstance(got, Parsed)
    # the first three published values of carbon/watttime_moer_caiso_north_2023_5min.csv
    published = [425.01605069, 432.27352861, 433.18071335]
    assert [s.marginal_gco2_per_kwh for s in got.signals[:3]] == pytest.approx(published, rel=1e-12, abs=0)
    assert pytest.approx(425.01605069, abs=1e-8) == 937.0 * 0.45359237  # WattTime published 937 lbs/MWh


def test_forecast_payload_becomes_one_forecast() -> None:
    """A /v3/forecast payload becomes one GridForecast with its generation time and 5-minute steps."""
    payload = _forecasts()[1]
    got = _parse(payload)
    assert isinstance(got, Parsed)
    assert not got.signals
    (fc,) = got.forecasts
    assert fc.region == "aws:us-west-1"
    assert fc.source == "watttime"
    assert fc.provider_zone == "CAISO_NORTH"
    assert fc.generated_at == 1686204000.0  # 2023-06-08T06:00:00Z
    assert fc.step_s == 300.0
    assert len(fc.points) == 13
    assert fc.points[0].marginal_gco2_per_kwh == pytest.approx(payload["data"][0]["value"] * 0.45359237)
    assert all(p.price_usd_per_mwh is None for p in fc.points)


def test_forecast_points_may_lie_in_the_future() -> None:
    """A forecast generated just now is accepted although its points are ahead of now."""
    payload = _forecasts()[0]
    now = 1686182400.0  # the forecast's own generation time
    got = _parse(payload, now=now)
    assert isinstance(got, Parsed)
    assert got.forecasts[0].points[-1].ts > now


def _mutated(path: tuple[Any, ...], value: Any, forecast: bool = False) -> dict[str, Any]:
    payload = copy.deepcopy(_forecasts()[0] if forecast else _data())
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


_DELETE = object()
_FUTURE = "2100-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("path", "value", "field", "forecast"),
    [
        (("meta", "units"), "kg_co2_per_mwh", "meta.units", False),
        (("meta", "units"), _DELETE, "meta.units", False),
        (("meta", "units"), "percentile", "meta.units", False),
        (("meta", "signal_type"), "co2_aoer", "meta.signal_type", False),
        (("meta", "signal_type"), "health_damage", "meta.signal_type", True),
        (("meta", "region"), "PJM_DC", "meta.region", False),
        (("meta", "region"), _DELETE, "meta.region", False),
        (("meta",), _DELETE, "meta", False),
        (("meta", "data_point_period_seconds"), _DELETE, "meta.data_point_period_seconds", False),
        (("meta", "data_point_period_seconds"), 0, "meta.data_point_period_seconds", False),
        (("data",), [], "data", False),
        (("data",), _DELETE, "data", False),
        (("data", 3, "value"), _DELETE, "data[3].value", False),
        (("data", 3, "value"), "937", "data[3].value", False),
        (("data", 3, "value"), -5.0, "data[3].value", False),
        (("data", 3, "value"), 1e9, "data[3].value", False),
        (("data", 3, "value"), True, "data[3].value", False),
        (("data", 3, "point_time"), "2023-06-08 00:15:00", "data[3].point_time", False),
        (("data", 3, "point_time"), "yesterday", "data[3].point_time", False),
        (("data", 3, "point_time"), "2023-06-08T00:00:00+00:00", "data[3].point_time", False),
        (("data", 23, "point_time"), _FUTURE, "data[23].point_time", False),
        (("meta", "generated_at"), _FUTURE, "meta.generated_at", False),
        (("meta", "generated_at"), _FUTURE, "meta.generated_at", True),
        (("meta", "generated_at"), _DELETE, "meta.generated_at", True),
    ],
)
def test_bad_payloads_are_rejected_naming_the_field(
    path: tuple[Any, ...], value: Any, field: str, forecast: bool
) -> None:
    """Wrong units or signal type, missing fields, unmapped zones, future times, absurd values: rejected."""
    got = _parse(_mutated(path, value, forecast))
    assert isinstance(got, Problem), got
    assert got.field == field, got.error
    assert got.error
    assert got.expected


def test_nan_and_infinity_are_rejected() -> None:
    """A NaN or infinite value (not JSON, but sent by some clients) is refused, never converted."""
    raw = orjson.dumps(_data()).replace(b'"value":953.0', b'"value":NaN')
    got = parse_watttime(raw, ZONES, NOW)
    assert isinstance(got, Problem)
    huge = orjson.dumps(_data()).replace(b'"value":953.0', b'"value":1e400')
    got = parse_watttime(huge, ZONES, NOW)
    assert isinstance(got, Problem)


def test_time_within_tolerance_is_accepted() -> None:
    """A point a little ahead of now (clock skew within the tolerance) is kept."""
    payload = _data()
    now = 1686182400.0 + 300.0 * 23 - FUTURE_TOLERANCE_S + 1
    assert isinstance(_parse(payload, now=now), Parsed)
    assert isinstance(_parse(payload, now=now - 2), Problem)


def test_one_zone_can_feed_several_regions() -> None:
    """A zone mapped to two regions yields each point once per region."""
    got = parse_watttime(orjson.dumps(_data()), {"CAISO_NORTH": ("a", "b")}, NOW)
    assert isinstance(got, Parsed)
    assert [s.region for s in got.signals[:2]] == ["a", "b"]


def _historical_forecast_payload() -> dict[str, Any]:
    """The three real issued forecasts of the fixture in the /v3/forecast/historical shape."""
    fcs = _forecasts()
    meta = {k: v for k, v in fcs[0]["meta"].items() if k != "generated_at"}
    return {
        "meta": meta,
        "data": [{"generated_at": f["meta"]["generated_at"], "forecast": f["data"]} for f in fcs],
    }


def test_historical_forecast_payload_gives_one_forecast_per_issue() -> None:
    """A /v3/forecast/historical payload yields one GridForecast per issued forecast, in order."""
    got = _parse(_historical_forecast_payload())
    assert isinstance(got, Parsed)
    assert not got.signals
    assert [f.generated_at for f in got.forecasts] == [1686182400.0, 1686204000.0, 1686225600.0]
    single = _parse(_forecasts()[2])
    assert isinstance(single, Parsed)
    assert got.forecasts[2] == single.forecasts[0]


def test_bad_historical_forecast_item_names_its_path() -> None:
    """A bad point inside one issued forecast is named with both indices."""
    payload = _historical_forecast_payload()
    payload["data"][1]["forecast"][4]["value"] = None
    got = _parse(payload)
    assert isinstance(got, Problem)
    assert got.field == "data[1].forecast[4].value"
    payload = _historical_forecast_payload()
    payload["data"][2]["generated_at"] = _FUTURE
    got = _parse(payload)
    assert isinstance(got, Problem)
    assert got.field == "data[2].generated_at"
