"""Decoding grid.forecasts records: never raises, names the field at fault, takes real WattTime forecasts."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.models import GridForecast
from router.problems import Problem
from streams.codec import decode_forecast
from tests.router.watttime import issued_forecasts

MAX = 65536
GOOD = issued_forecasts("aws:us-west-1")[0].model_dump(exclude_none=True)


def test_a_real_issued_forecast_decodes_unchanged() -> None:
    """A WattTime forecast of the fixture round-trips through JSON into the same GridForecast."""
    got = decode_forecast(orjson.dumps(GOOD), MAX)
    assert isinstance(got, GridForecast)
    assert got == GridForecast.model_validate(GOOD)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"points": []}, "points"),
        ({"step_s": 0}, "step_s"),
        ({"generated_at": "soon"}, "generated_at"),
        (
            {
                "points": [
                    {"ts": 2.0, "marginal_gco2_per_kwh": 1.0},
                    {"ts": 1.0, "marginal_gco2_per_kwh": 1.0},
                ]
            },
            None,
        ),
        ({"points": [{"ts": 1.0}]}, "points[1]"),
        ({"points": [{"ts": 1.0, "marginal_gco2_per_kwh": -5.0}]}, "points[1].marginal_gco2_per_kwh"),
    ],
)
def test_a_bad_forecast_is_rejected_naming_its_field(patch: dict[str, object], field: str | None) -> None:
    """Empty or unordered points, a zero step, a wrong type or a negative value are refused with the field."""
    got = decode_forecast(orjson.dumps({**GOOD, **patch}), MAX)
    assert isinstance(got, Problem)
    assert got.error
    assert got.field == field


@pytest.mark.parametrize("raw", [None, b"", b"not json", b"[1, 2]", b"\xff\xfe", b"{" * 5000])
def test_garbage_is_rejected(raw: bytes | None) -> None:
    """Null, empty, non-JSON, non-object and deeply nested values are refused with a reason."""
    got = decode_forecast(raw, MAX)
    assert isinstance(got, Problem)
    assert got.field is None
    assert got.error


def test_an_oversized_forecast_is_rejected() -> None:
    """A forecast larger than max_message_bytes is refused before parsing, naming the limit."""
    got = decode_forecast(orjson.dumps(GOOD), 256)
    assert isinstance(got, Problem)
    assert "256 bytes" in got.error


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_decoding_never_raises(raw: bytes) -> None:
    """Any bytes decode to a GridForecast or a Problem, never an exception."""
    assert isinstance(decode_forecast(raw, MAX), GridForecast | Problem)
