"""frontier.png: the savings axis fits the data, negative savings included, with a zero line."""

from __future__ import annotations

from typing import Any

import pytest

from router.frontier import frontier_figure, saving_limits


def _point(alpha: float, saved_usd: float, saved_g: float) -> dict[str, Any]:
    return {
        "alpha": alpha,
        "total_energy_usd": 1.0,
        "saved_energy_usd": saved_usd,
        "total_carbon_g": 1000.0,
        "saved_carbon_g": saved_g,
        "layer_share": {"local": 0.5, "regional": 0.3, "energy": 0.2},
        "rejected_share": 0.0,
        "rid_share": 0.6,
    }


@pytest.mark.parametrize("values", [[-40.0, 10.0], [3.0, 5.0], [120.0, -5.0], [0.0, 0.0], []])
def test_limits_contain_every_value_and_zero_with_room_for_labels(values: list[float]) -> None:
    """The y range holds zero and every value, with a margin below the lowest point for its label."""
    lo, hi = saving_limits(values)
    low = min([0.0, *values])
    assert lo < low
    assert hi > max([0.0, *values])
    assert (low - lo) / (hi - lo) >= 0.15


def test_a_negative_saving_is_visible_above_the_bottom_and_zero_is_drawn() -> None:
    """Routing that costs more than all-local (-50%) is plotted inside the axis, and y = 0 is a drawn line."""
    import matplotlib.pyplot as plt

    fig = frontier_figure([_point(0.5, -0.5, -200.0), _point(1.0, 0.25, 100.0)])
    try:
        ax = fig.axes[0]
        lo, hi = ax.get_ylim()
        assert lo < -50.0  # -50% cost, -25% carbon, +20% cost, +9% carbon all inside
        assert hi > 20.0
        assert hi < 100.0  # fitted, not a fixed 0-100 box
        zero = [ln for ln in ax.get_lines() if list(ln.get_ydata()) == [0.0, 0.0]]
        assert len(zero) == 1
    finally:
        plt.close(fig)
