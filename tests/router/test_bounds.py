"""Every bound of every top-level field of every input message (router/bounds.py), driven at and past it.

The fields and their bounds are read from the models themselves, so a new bounded field is covered without
editing this file: a value at an inclusive bound is accepted, the next float (or integer, or one more
character) past it is refused with an error located at that field.
"""

from __future__ import annotations

import math
from typing import Any, Union, get_args, get_origin

import annotated_types as at
import pytest
from pydantic import BaseModel, ValidationError

from router.bounds import MAX_TS
from router.models import INPUT_MODELS

#: the smallest valid message of each kind
BASE: dict[str, dict[str, Any]] = {
    "Request": {"request_id": "r", "origin": "fe", "latency_budget_ms": 100.0, "energy_wh": 1.0, "ts": 10.0},
    "GridSignal": {"region": "a", "ts": 10.0, "price_usd_per_mwh": 50.0},
    "GridForecast": {
        "region": "a",
        "generated_at": 10.0,
        "step_s": 300.0,
        "points": [{"ts": 10.0, "price_usd_per_mwh": 50.0}],
    },
    "RegionStatus": {"region": "a", "ts": 10.0},
    "SharesMessage": {
        "version": 1,
        "ts": 10.0,
        "ok": True,
        "status": "optimal",
        "regions": ["a"],
        "mu_usd_per_wh": {"a": 0.0},
        "groups": [],
        "shares": [],
        "unserved_share": [],
        "solve_s": 0.1,
    },
}


def _constraints(annotation: Any, metadata: list[Any]) -> tuple[type, list[Any]]:
    """The base type and the annotated_types constraints of a field, through Optional and Annotated."""
    found = list(metadata)
    base = annotation
    while True:
        origin = get_origin(base)
        if origin is Union or str(origin) == "<class 'types.UnionType'>":
            base = next(a for a in get_args(base) if a is not type(None))
        elif str(origin) == "typing.Annotated" or hasattr(base, "__metadata__"):
            args = get_args(base)
            base = args[0]
            for extra in args[1:]:
                found.extend(getattr(extra, "metadata", [extra]))
        else:
            return base, found


def _cases() -> list[Any]:
    cases = []
    for name, model in INPUT_MODELS.items():
        for field, info in model.model_fields.items():
            base, cons = _constraints(info.annotation, info.metadata)
            for c in cons:
                if isinstance(c, at.Le | at.Ge | at.Lt | at.Gt | at.MaxLen) and base in (int, float, str):
                    cases.append(pytest.param(name, field, base, c, id=f"{name}.{field}-{type(c).__name__}"))
    return cases


CASES = _cases()


def _past(base: type, c: Any) -> tuple[Any, Any]:
    """(a value at the bound that is allowed or None, a value just past it)."""
    if isinstance(c, at.MaxLen):
        return "x" * c.max_length, "x" * (c.max_length + 1)
    if isinstance(c, at.Le):
        return c.le, (c.le + 1 if base is int else math.nextafter(c.le, math.inf))
    if isinstance(c, at.Ge):
        return c.ge, (c.ge - 1 if base is int else math.nextafter(c.ge, -math.inf))
    if isinstance(c, at.Lt):
        return None, c.lt
    return None, c.gt  # Gt: the bound itself is refused


def _check(model: type[BaseModel], msg: dict[str, Any]) -> None:
    model.model_validate(msg)


def test_the_cases_cover_the_known_bounds() -> None:
    ids = {p.id for p in CASES}
    for expected in (
        "Request.energy_wh-Le",
        "Request.latency_budget_ms-Gt",
        "GridSignal.valid_for_s-Le",
        "GridSignal.price_usd_per_mwh-Ge",
        "RegionStatus.capacity_kw-Le",
        "SharesMessage.version-Le",
        "Request.request_id-MaxLen",
    ):
        assert expected in ids
    assert len(CASES) > 40


@pytest.mark.parametrize(("name", "field", "base", "constraint"), CASES)
def test_a_value_at_the_bound_passes_and_one_past_it_is_refused_at_its_field(
    name: str, field: str, base: type, constraint: Any
) -> None:
    model = INPUT_MODELS[name]
    at_bound, past = _past(base, constraint)
    if at_bound is not None:
        _check(model, {**BASE[name], field: at_bound})
    with pytest.raises(ValidationError) as err:
        _check(model, {**BASE[name], field: past})
    assert err.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(("name", "field"), [("Request", "ts"), ("GridSignal", "ts"), ("RegionStatus", "ts")])
def test_timestamps_stop_at_2100(name: str, field: str) -> None:
    model = INPUT_MODELS[name]
    _check(model, {**BASE[name], field: MAX_TS})
    with pytest.raises(ValidationError) as err:
        _check(model, {**BASE[name], field: math.nextafter(MAX_TS, math.inf)})
    assert err.value.errors()[0]["loc"][0] == field


def test_infinity_and_nan_are_refused_where_a_bound_is_open() -> None:
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(ValidationError):
            _check(INPUT_MODELS["GridSignal"], {**BASE["GridSignal"], "valid_for_s": value})
