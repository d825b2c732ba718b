"""Every numeric bound of the router in one place: what each field may hold, and why that much.

A value outside its bound is refused where it enters (a file: exit 2 naming file, line, field, value and
bound; a message: a dead letter naming the field), so that nothing inside ever wraps, overflows or turns
into NaN. The reasons are physical (no request draws a megawatt-hour), representational (the capacity
windows count integer nano-watt-hours in two 64-bit words, see ``router.kernel``) or both. docs/model.md
lists them for users; tests/router/test_bounds.py drives values at and past each bound.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_CLOCK_SKEW_S",
    "MAX_CAPACITY_KW",
    "MAX_CAPACITY_WINDOW_S",
    "MAX_CODE_LEN",
    "MAX_DUAL_USD_PER_WH",
    "MAX_ENERGY_WH",
    "MAX_EPOCH",
    "MAX_FORECAST_POINTS",
    "MAX_GCO2_PER_KWH",
    "MAX_ID_LEN",
    "MAX_JURISDICTIONS",
    "MAX_MS",
    "MAX_NU_USD_PER_G",
    "MAX_PAYLOAD_BYTES",
    "MAX_PRICE_USD_PER_MWH",
    "MAX_SEQ",
    "MAX_SHARES_VERSION",
    "MAX_STATE_BYTES",
    "MAX_STEP_S",
    "MAX_TOKENS",
    "MAX_TS",
    "MAX_VALID_FOR_S",
    "MIN_PRICE_USD_PER_MWH",
    "MIN_RTT_MS",
    "PUE_MAX",
    "PUE_MIN",
    "UNUSUAL_CAPACITY_KW",
    "UNUSUAL_RTT_MS",
]

#: Longest id (request, region, node, model, tenant).
MAX_ID_LEN = 256
#: Largest IT energy of one request (1 MWh), far above any inference request.
MAX_ENERGY_WH = 1e6
#: Largest latency budget or compute time (about 11.6 days).
MAX_MS = 1e9
#: Most tokens of one request.
MAX_TOKENS = 10_000_000
#: Largest payload and state sizes (1 TiB, 16 TiB).
MAX_PAYLOAD_BYTES = 1 << 40
MAX_STATE_BYTES = 1 << 44
#: Latest timestamp (2100-01-01T00:00:00Z): later can only be a mistake, most often milliseconds.
MAX_TS = 4_102_444_800.0
#: Longest validity of a signal value (30 days).
MAX_VALID_FOR_S = 2_592_000.0
#: Longest forecast step (a day) and most forecast points (24 h at 5-minute steps is 288).
MAX_STEP_S = 86_400.0
MAX_FORECAST_POINTS = 4096
#: Wholesale price bounds in USD/MWh (market caps are a few thousand; negative prices are real).
MIN_PRICE_USD_PER_MWH = -1e5
MAX_PRICE_USD_PER_MWH = 1e6
#: Largest carbon intensity in g/kWh (lignite emits about 1,200).
MAX_GCO2_PER_KWH = 1e4
#: Power usage effectiveness.
PUE_MIN, PUE_MAX = 1.0, 5.0
#: Largest finite capacity of a region (1e12 kW, a thousand times the world's generating capacity); leave
#: ``capacity_kw`` out (or ``inf``) for no limit. The capacity windows hold it exactly for every window.
MAX_CAPACITY_KW = 1e12
#: Longest capacity window (a day).
MAX_CAPACITY_WINDOW_S = 86_400.0
#: A capacity above this many kW (100 GW) is accepted with a warning: did you give watts?
UNUSUAL_CAPACITY_KW = 1e8
#: Smallest non-zero RTT: below 0.1 ms the value is almost surely in seconds (0.014 s = 14 ms).
MIN_RTT_MS = 0.1
#: An RTT above this (ms) is accepted with a warning: half a second is more than a trip around the world.
UNUSUAL_RTT_MS = 500.0
#: Most entries of a request's ``allowed_jurisdictions`` and the longest code or tag in it.
MAX_JURISDICTIONS = 512
MAX_CODE_LEN = 64
#: Shares ordering: ``version = epoch * 2**32 + seq`` stays a signed 64-bit integer.
MAX_EPOCH = 2**31 - 1
MAX_SEQ = 2**32 - 1
MAX_SHARES_VERSION = 2**63 - 1
#: Largest capacity dual in USD per IT Wh (the default unserved penalty is 1 USD/Wh; a dual above the
#: penalty would mean serving costs more than not serving).
MAX_DUAL_USD_PER_WH = 1e3
#: How far ahead of the router's clock a timestamp may be (clocks of producers and router disagree).
DEFAULT_MAX_CLOCK_SKEW_S = 300.0
#: Largest tenant carbon dual (USD per g): far past any carbon price (1e6 USD per g is 1e12 USD per tonne);
#: the re-solve reports at most this and a shares message beyond it is refused.
MAX_NU_USD_PER_G = 1e6
