"""The named columns of every kernel array, in one place (Numba folds these module-level integers).

Writers (``router.plan``, ``router.state``, ``router.forecast``) and readers (``router.encode``,
``router.demand``, the data plane) use these names, never bare numbers. docs/architecture.md draws the
arrays; ``router.kernel.structs`` groups them into the structures the kernel takes.
"""

from __future__ import annotations

from router.placement import Layer, SignalSource

__all__ = [
    "BANDWIDTH_GBPS",
    "BUDGET_MS",
    "CAPACITY_WINDOW_S",
    "CARBON",
    "CARBON_USD_PER_TONNE",
    "CHOICE",
    "COMPUTE_MS",
    "ENERGY_NWH",
    "ENERGY_WH",
    "FC_GENERATED_AT",
    "FC_META_COLS",
    "FC_STEP_S",
    "FC_USABLE_END",
    "FILTER_NAMES",
    "HAS_STATIC_CARBON",
    "HAS_STATIC_PRICE",
    "HEALTHY",
    "HOME_CARBON_G",
    "HOME_ENERGY_USD",
    "HOME_FEASIBLE",
    "HOME_VALUED",
    "LAYER",
    "LAYERS",
    "MODEL",
    "MU",
    "NO_AGE",
    "N_FEASIBLE",
    "N_FILTERS",
    "ORIGIN",
    "OUT_CARBON_G",
    "OUT_EGRESS_USD",
    "OUT_ENERGY_USD",
    "OUT_FACILITY_WH",
    "OUT_FLOATS",
    "OUT_FORECAST_GENERATED_AT",
    "OUT_INTS",
    "OUT_LATENCY_MS",
    "OUT_SCORE_USD",
    "OUT_SIGNAL_AGE_S",
    "PAYLOAD_BYTES",
    "PINNED",
    "POLICIES",
    "POLICY",
    "POLICY_ALL_LOCAL",
    "POLICY_CHEAPEST_ENERGY",
    "POLICY_LOWEST_CARBON",
    "POLICY_NEAREST",
    "POLICY_SCORE",
    "PRICE",
    "PRIOR_CARBON",
    "PRIOR_PRICE",
    "PUE",
    "REASON",
    "REGIONAL_RTT_MS",
    "REG_F_COLS",
    "REG_I_COLS",
    "RELOCATABLE",
    "RELOCATION_FIXED_USD",
    "REQ_F_COLS",
    "REQ_I_COLS",
    "RUNNER_UP",
    "RUNNER_UP_SCORE_USD",
    "SCALARS",
    "SESSION",
    "SESSION_MIN_DWELL_S",
    "SESSION_MOVED",
    "SESSION_TTL_S",
    "SES_F_COLS",
    "SES_I_COLS",
    "SES_LAST",
    "SES_REGION",
    "SES_SINCE",
    "SIGNAL_SOURCE",
    "SIGNAL_SOURCES",
    "SOURCE_FORECAST",
    "SOURCE_LIVE",
    "SOURCE_PRIOR",
    "SOURCE_STALE",
    "STATE_BYTES",
    "STATE_REGION",
    "STATIC_CARBON",
    "STATIC_PRICE",
    "SWITCH_MARGIN_USD",
    "TENANT",
    "TEN_BUDGET_HI",
    "TEN_BUDGET_LO",
    "TEN_F_COLS",
    "TEN_I_COLS",
    "TEN_NU",
    "TEN_REJECT",
    "TEN_WINDOW_S",
    "USE_PRIOR_CARBON",
    "USE_PRIOR_PRICE",
    "VALUE_KINDS",
    "T",
]

# -- requests: Requests.f (N, REQ_F_COLS) float64 and Requests.i (N, REQ_I_COLS) int64 -----------------------
T, ENERGY_WH, BUDGET_MS, COMPUTE_MS, PAYLOAD_BYTES, STATE_BYTES = range(6)
REQ_F_COLS = 6
#: service node index, state region index (-1: none), pinned (0/1), model index (0: none), IT energy in
#: integer nano-Wh (what the capacity windows count), configured tenant index (-1: none, or not budgeted),
#: session slot (-1: no session; router.sessions assigns it just before the kernel call)
ORIGIN, STATE_REGION, PINNED, MODEL, ENERGY_NWH, TENANT, SESSION = range(7)
REQ_I_COLS = 7

# -- regions: Regions.f (R, REG_F_COLS) float64 and Regions.i (R, REG_I_COLS) int64 --------------------------
#: PUE, the capacity dual in use (USD per IT Wh, times dual_scale), the topology's constant price and carbon,
#: the topology's prior price and carbon (router.priors: they may stand in for stale values)
PUE, MU, STATIC_PRICE, STATIC_CARBON, PRIOR_PRICE, PRIOR_CARBON = range(6)
REG_F_COLS = 6
#: healthy, has a constant price / carbon, a stale price / carbon takes the prior (``on_stale = "prior"``)
HEALTHY, HAS_STATIC_PRICE, HAS_STATIC_CARBON, USE_PRIOR_PRICE, USE_PRIOR_CARBON = range(5)
REG_I_COLS = 5

#: The two signalled values the score uses; the first axis of the value history and of the forecasts.
PRICE, CARBON = 0, 1
VALUE_KINDS = ("price_usd_per_mwh", "marginal_gco2_per_kwh")

# -- forecasts: Forecasts.meta (R, FC_META_COLS) -------------------------------------------------------------
#: usable for ``generated_at <= t < usable_end`` (``t - generated_at <= forecast_horizon_s`` exactly)
FC_GENERATED_AT, FC_STEP_S, FC_USABLE_END = range(3)
FC_META_COLS = 3

# -- plan scalars: Plan.scalars ------------------------------------------------------------------------------
#: ``POLICY`` is the pick rule (an index into POLICIES, as a float): the router's score, or one of the
#: baseline policies of ``carbon-router compare`` (same mask, a different key)
#: ``SWITCH_MARGIN_USD``, ``SESSION_MIN_DWELL_S`` and ``SESSION_TTL_S`` are the sticky sessions' rule
#: (router/kernel/_sessions.py)
(
    CARBON_USD_PER_TONNE,
    RELOCATION_FIXED_USD,
    REGIONAL_RTT_MS,
    BANDWIDTH_GBPS,
    CAPACITY_WINDOW_S,
    POLICY,
    SWITCH_MARGIN_USD,
    SESSION_MIN_DWELL_S,
    SESSION_TTL_S,
) = range(9)
SCALARS = 9
#: the pick rules: lowest score (the router); home only; lowest latency; lowest energy cost; lowest marginal
#: carbon. Ties keep the lowest region index in every rule.
POLICIES = ("score", "all_local", "nearest", "cheapest_energy", "lowest_carbon")
POLICY_SCORE, POLICY_ALL_LOCAL, POLICY_NEAREST, POLICY_CHEAPEST_ENERGY, POLICY_LOWEST_CARBON = range(5)

# -- outputs: Outputs.f (N, len(OUT_FLOATS)), Outputs.i (N, len(OUT_INTS)), Outputs.removed (N, N_FILTERS) ---
OUT_FLOATS = (
    "latency_ms",
    "facility_wh",
    "energy_usd",
    "carbon_g",
    "egress_usd",
    "score_usd",
    "home_energy_usd",
    "home_carbon_g",
    "signal_age_s",
    "forecast_generated_at",
    "runner_up_score_usd",
)
(
    OUT_LATENCY_MS,
    OUT_FACILITY_WH,
    OUT_ENERGY_USD,
    OUT_CARBON_G,
    OUT_EGRESS_USD,
    OUT_SCORE_USD,
    HOME_ENERGY_USD,
    HOME_CARBON_G,
    OUT_SIGNAL_AGE_S,
    OUT_FORECAST_GENERATED_AT,
    RUNNER_UP_SCORE_USD,
) = range(11)
#: chosen region (-1: rejected), reason (filter code, 0: placed), feasible regions, relocatable (0/1),
#: layer (index into LAYERS, -1: none), home feasible (0/1), home has values (0/1), signal source (index into
#: SIGNAL_SOURCES, -1: none), runner-up (the feasible region with the lowest score after the pick, ties to the
#: lowest index; -1: none, or a baseline policy)
OUT_INTS = (
    "choice",
    "reason",
    "n_feasible",
    "relocatable",
    "layer",
    "home_feasible",
    "home_valued",
    "signal_source",
    "runner_up",
    "session_moved",
)
(
    CHOICE,
    REASON,
    N_FEASIBLE,
    RELOCATABLE,
    LAYER,
    HOME_FEASIBLE,
    HOME_VALUED,
    SIGNAL_SOURCE,
    RUNNER_UP,
    SESSION_MOVED,
) = range(10)

#: Filter codes 1..8 in the order the mask applies them (0: passed); ``reason`` of a rejection.
FILTER_NAMES = (
    "latency_budget",
    "jurisdiction",
    "model_unavailable",
    "unhealthy",
    "capacity",
    "stale_signals",
    "pinned_state",
    "tenant_budget",
)
N_FILTERS = 8
LAYERS: tuple[Layer, ...] = ("local", "regional", "energy")
#: both values live and fresh; every value fresh or from the forecast, at least one from the forecast; some
#: value neither (the home region, which may run on stale values); every value fresh, from the forecast or
#: a prior standing in for a stale one, at least one a prior (router.priors)
SIGNAL_SOURCES: tuple[SignalSource, ...] = ("live", "forecast", "stale", "prior")
SOURCE_LIVE, SOURCE_FORECAST, SOURCE_STALE, SOURCE_PRIOR = range(4)

# -- tenants: Tenants.f (K, TEN_F_COLS) float64, Tenants.i (K, TEN_I_COLS) int64 (router/budgets.py) ------
#: the budget's window (s), the re-solve's dual in use (USD per g)
TEN_WINDOW_S, TEN_NU = range(2)
TEN_F_COLS = 2
#: on_exhausted is reject (1) or allow (0); the budget over one window in micro-grams as two words,
#: ``hi * 2**52 + lo`` (router/kernel/_windows.py)
TEN_REJECT, TEN_BUDGET_HI, TEN_BUDGET_LO = range(3)
TEN_I_COLS = 3

# -- sessions: Sessions.f (Q, SES_F_COLS) float64, Sessions.i (Q, SES_I_COLS) int64 (router/sessions.py) ---
#: when the session came to its region, and its latest placed request's time
SES_SINCE, SES_LAST = range(2)
SES_F_COLS = 2
#: the session's region (-1: none yet)
SES_REGION = 0
SES_I_COLS = 1

#: ``signal_age_s`` when the chosen region's values are topology constants only; ``forecast_generated_at``
#: when it used no forecast value.
NO_AGE = -1e308
