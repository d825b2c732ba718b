"""The leader's re-solve time limit setting (``CARBON_ROUTER_RESOLVE_TIME_LIMIT_S``)."""

from __future__ import annotations

import pytest

from router.errors import ConfigError
from streams.settings import load_settings


def test_default_time_limit_is_one_second() -> None:
    """Without the variable the leader gives HiGHS 1 s per re-solve."""
    assert load_settings().resolve_time_limit_s == 1.0


def test_time_limit_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny positive limit is accepted (the fault scenario uses 1e-6 s)."""
    monkeypatch.setenv("CARBON_ROUTER_RESOLVE_TIME_LIMIT_S", "1e-6")
    assert load_settings().resolve_time_limit_s == 1e-6


@pytest.mark.parametrize("value", ["0", "-1", "61", "nan", "inf", "soon"])
def test_bad_time_limit_names_variable_value_and_bounds(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Zero, negative, over a minute, non-finite or non-numeric limits stop start-up with what is allowed."""
    monkeypatch.setenv("CARBON_ROUTER_RESOLVE_TIME_LIMIT_S", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert "CARBON_ROUTER_RESOLVE_TIME_LIMIT_S" in text
    assert value in text
    assert "a number > 0 and <= 60" in text
