"""Signal ages on the router's event clock (router/ages.py)."""

from __future__ import annotations

import math

from router.ages import ages_at, router_clock, value_at
from router.kernel.columns import CARBON, PRICE
from router.models import GridSignal
from router.plan import Plan
from router.state import RegionState
from router.topology import Topology

TOPO = Topology.model_validate(
    {
        "regions": [
            {"id": "a", "jurisdiction": "DE", "lat": 0.0, "lon": 0.0, "pue": 1.2},
            {"id": "b", "jurisdiction": "SE", "lat": 0.0, "lon": 1.0, "pue": 1.1, "price_usd_per_mwh": 40.0},
        ],
        "service_nodes": [{"id": "n", "home_region": "a", "lat": 0.0, "lon": 0.0}],
    }
)


def test_age_is_of_the_older_value_in_effect_at_the_router_clock() -> None:
    """At clock t a region's age is t minus the older of its price and carbon values dated at or before t (a
    value dated after t is not in effect yet, a constant has no age); NaN without any; no clock before the
    first request."""
    st = RegionState(Plan(TOPO))
    st.apply_signal(GridSignal(region="a", ts=100.0, price_usd_per_mwh=50.0))
    st.apply_signal(GridSignal(region="a", ts=130.0, marginal_gco2_per_kwh=300.0))
    st.apply_signal(GridSignal(region="a", ts=500.0, price_usd_per_mwh=70.0, marginal_gco2_per_kwh=9.0))
    ages = ages_at(st, 200.0)
    assert ages[0] == 100.0  # the price of ts 100 is the older value in effect
    assert math.isnan(ages[1])  # only a constant
    assert ages_at(st, 120.0)[0] == 20.0  # carbon not signalled yet at 120
    assert ages_at(st, 600.0)[0] == 100.0
    assert value_at(st, 0, PRICE, 200.0) == 50.0
    assert value_at(st, 0, PRICE, None) == 70.0  # no clock: the latest value
    assert value_at(st, 0, CARBON, 120.0) is None
    assert value_at(st, 1, PRICE, 200.0) == 40.0
    assert router_clock(0.0) is None
    assert router_clock(200.0) == 200.0
