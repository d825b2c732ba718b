"""The score, written once: USD per request, never normalised (docs/model.md, "Score").

``score = energy_wh * unit[j] + friction(j)`` where ``unit[j]`` (per IT Wh) is the energy cost
``PUE_j * price_j / 1e6`` plus the priced carbon ``carbon_usd_per_tonne * PUE_j * carbon_j / 1e3 / 1e6``
plus the capacity dual ``mu_j``, and ``friction(j)`` is the egress of the payload (away from home) and of
the state (when it moves) plus ``relocation_fixed_usd`` away from home. The re-solve's unit costs are the
same score without the dual (``_candidate_costs``).
"""

from __future__ import annotations

from numba import njit

from router.kernel._flags import NO_RC_FLAGS

__all__ = ["CUR_CARBON", "CUR_G_WH", "CUR_PRICE", "CUR_USD_WH"]

#: rows of the per-batch ``cur`` array (router.kernel._values) the score reads: the region's price and
#: carbon at t, and its USD and grams per IT Wh
CUR_PRICE, CUR_CARBON, CUR_USD_WH, CUR_G_WH = range(4)


@njit(**NO_RC_FLAGS)
def _unit_cost(cur, j, lam):  # type: ignore[no-untyped-def]
    """Energy cost plus priced carbon per IT Wh of region ``j`` (USD): the unit score without the dual."""
    return cur[CUR_USD_WH, j] + lam * cur[CUR_G_WH, j] / 1e6


@njit(**NO_RC_FLAGS)
def _egress(payload, state_b, h, src, j, egress_b):  # type: ignore[no-untyped-def]
    """Egress of the payload from home and of the state from its region (0 to itself), USD."""
    return payload * egress_b[h, j] + state_b * egress_b[src, j]


@njit(**NO_RC_FLAGS)
def _friction(payload, state_b, h, src, j, egress_b, fixed):  # type: ignore[no-untyped-def]
    """Egress plus the fixed relocation friction away from home, USD."""
    nh = fixed if j != h else 0.0
    return _egress(payload, state_b, h, src, j, egress_b) + nh


@njit(**NO_RC_FLAGS)
def _score(e, unit, friction):  # type: ignore[no-untyped-def]
    """The score of one request at one region, USD."""
    return e * unit + friction
