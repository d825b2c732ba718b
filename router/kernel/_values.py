"""Each region's price and marginal carbon at a time ``t``: live, else forecast, else constant, else stale.

Per value kind (``PRICE``, ``CARBON``) the region keeps its last H signalled values in increasing ``ts``
(``router.state``). At ``t`` the kernel takes the latest value with ``ts <= t`` (so a request is scored with
the values in effect at its own time, whatever arrived since, exactly as the offline replay does):

1. **live** when it is fresh, ``t < end`` (``end`` from ``router.state.valid_end``: exactly
   ``t - ts <= valid_for_s``);
2. else **forecast**: the region's latest forecast's point with the largest ``ts <= t``, when its step covers
   ``t``, it carries the value and ``generated_at <= t < usable_end`` (``router.forecast``);
3. else, when no value was signalled by ``t``, the topology's **static** constant (it does not age);
4. else **prior**, when the topology's ``on_stale`` says ``prior`` for the kind: the region's prior stands in
   for the stale value, fresh and without an age (router/priors.py);
5. else **stale**: the latest value (only the home region may be scored with it; see docs/model.md).

A region whose two values are both static constants has no signal at all and counts as stale. Every test is
``t >= b`` or ``t < b`` for a boundary ``b``, so ``_region_values`` also returns the interval ``[lo, hi)``
around ``t`` where nothing changes: the batch kernel recomputes only when a request leaves it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from router.kernel._flags import NO_RC_FLAGS
from router.kernel._score import CUR_CARBON, CUR_G_WH, CUR_PRICE, CUR_USD_WH, _unit_cost
from router.kernel.columns import (
    FC_GENERATED_AT,
    FC_STEP_S,
    FC_USABLE_END,
    HAS_STATIC_CARBON,
    HAS_STATIC_PRICE,
    MU,
    NO_AGE,
    PRIOR_CARBON,
    PRIOR_PRICE,
    PUE,
    SOURCE_FORECAST,
    SOURCE_LIVE,
    SOURCE_PRIOR,
    SOURCE_STALE,
    STATIC_CARBON,
    STATIC_PRICE,
    USE_PRIOR_CARBON,
    USE_PRIOR_PRICE,
)

__all__ = [
    "CUR_AGED",
    "CUR_FC_GEN",
    "CUR_FRESH",
    "CUR_F_ROWS",
    "CUR_I_ROWS",
    "CUR_MADE",
    "CUR_SOURCE",
    "CUR_UNIT",
    "CUR_VALUED",
]

#: rows of the per-batch ``cur`` (float) array past those of router.kernel._score: the unit score per IT Wh
#: (energy + priced carbon + dual), the oldest time a value used was generated, the forecast's
#: ``generated_at`` (NO_AGE: none)
CUR_UNIT, CUR_MADE, CUR_FC_GEN = 4, 5, 6
CUR_F_ROWS = 7
#: rows of ``cur_i``: valued (0/1), fresh (0/1), signal source, has an age (0/1)
CUR_VALUED, CUR_FRESH, CUR_SOURCE, CUR_AGED = range(4)
CUR_I_ROWS = 4

# what one value is at t
_LIVE, _FORECAST, _STATIC, _STALE, _NONE, _PRIOR = range(6)


@njit(**NO_RC_FLAGS)
def _forecast_at(t, v, j, fc, lo, hi):  # type: ignore[no-untyped-def]
    """(found, value, lo, hi): the forecast value of kind ``v`` for region ``j`` at ``t``."""
    n = fc.n[j]
    if n == 0:
        return False, 0.0, lo, hi
    gen, usable_end = fc.meta[j, FC_GENERATED_AT], fc.meta[j, FC_USABLE_END]
    for b in (gen, usable_end):
        if b <= t:
            lo = max(lo, b)
        else:
            hi = min(hi, b)
    if not gen <= t < usable_end:
        return False, 0.0, lo, hi
    a, z = 0, n  # a = number of points with ts <= t
    while a < z:
        mid = (a + z) >> 1
        if fc.ts[j, mid] <= t:
            a = mid + 1
        else:
            z = mid
    k = a - 1
    if k + 1 < n:
        hi = min(hi, fc.ts[j, k + 1])
    if k < 0:
        return False, 0.0, lo, hi
    lo = max(lo, fc.ts[j, k])
    cover = fc.ts[j, k] + fc.meta[j, FC_STEP_S]
    if t >= cover:
        return False, 0.0, max(lo, cover), hi
    hi = min(hi, cover)
    if fc.has[v, j, k]:
        return True, fc.val[v, j, k], lo, hi
    return False, 0.0, lo, hi


@njit(inline="always", **NO_RC_FLAGS)
def _value_at(t, v, j, reg, fc):  # type: ignore[no-untyped-def]
    """(value, what, made, lo, hi) of kind ``v`` for region ``j`` at ``t`` (see the module docstring);
    ``made`` is when the value was generated (its ts, or the forecast's generated_at)."""
    n = reg.val_n[v, j]
    k = n - 1
    while k >= 0 and reg.val_ts[v, j, k] > t:
        k -= 1
    lo, hi = -np.inf, np.inf
    if k + 1 < n:
        hi = reg.val_ts[v, j, k + 1]
    if k >= 0:
        s, end = reg.val_ts[v, j, k], reg.val_end[v, j, k]
        lo = s
        if t < end:
            return reg.val[v, j, k], _LIVE, s, lo, min(hi, end)
        lo = max(lo, end)
    found, value, lo, hi = _forecast_at(t, v, j, fc, lo, hi)
    if found:
        return value, _FORECAST, fc.meta[j, FC_GENERATED_AT], lo, hi
    if k < 0 and n > 0 and reg.val_dropped[v, j] != 0:  # older values were dropped: what held at t unknown
        k = 0
    if k >= 0:  # stale: the prior stands in when the topology says so
        if reg.i[j, USE_PRIOR_PRICE if v == 0 else USE_PRIOR_CARBON] != 0:
            return reg.f[j, PRIOR_PRICE if v == 0 else PRIOR_CARBON], _PRIOR, 0.0, lo, hi
        return reg.val[v, j, k], _STALE, reg.val_ts[v, j, k], lo, hi
    has_static = HAS_STATIC_PRICE if v == 0 else HAS_STATIC_CARBON
    if reg.i[j, has_static] != 0:
        return reg.f[j, STATIC_PRICE if v == 0 else STATIC_CARBON], _STATIC, 0.0, lo, hi
    return 0.0, _NONE, 0.0, lo, hi


@njit(**NO_RC_FLAGS)
def _region_values(t, reg, fc, lam, cur, cur_i, words):  # type: ignore[no-untyped-def]
    """Fill ``cur``/``cur_i`` for every region at ``t`` and the fresh ([0]) and valued ([1]) bit words;
    returns the interval ``[lo, hi)`` around ``t`` where all of it stays the same."""
    R = reg.f.shape[0]
    words[:, :] = 0
    lo, hi = -np.inf, np.inf
    for j in range(R):
        valued = True
        fresh = True
        n_fc = n_static = n_prior = 0
        made = np.inf
        for v in range(2):
            value, what, when, lo_v, hi_v = _value_at(t, v, j, reg, fc)
            lo, hi = max(lo, lo_v), min(hi, hi_v)
            cur[v, j] = value
            if what == _FORECAST:
                n_fc += 1
            elif what == _STATIC:
                n_static += 1
            elif what == _PRIOR:
                n_prior += 1
            elif what != _LIVE:
                fresh = False
                valued = valued and what != _NONE
            if what not in (_STATIC, _NONE, _PRIOR):  # a value that has an age
                made = min(made, when)
        if n_static == 2:
            fresh = False  # no live or forecast value at all: stale, as a region never signalled
        pue = reg.f[j, PUE]
        cur[CUR_USD_WH, j] = pue * cur[CUR_PRICE, j] / 1e6
        cur[CUR_G_WH, j] = pue * cur[CUR_CARBON, j] / 1e3
        cur[CUR_UNIT, j] = _unit_cost(cur, j, lam) + reg.f[j, MU]
        cur[CUR_MADE, j] = made if made < np.inf else 0.0
        cur[CUR_FC_GEN, j] = fc.meta[j, FC_GENERATED_AT] if n_fc > 0 else NO_AGE
        cur_i[CUR_VALUED, j] = 1 if valued else 0
        cur_i[CUR_FRESH, j] = 1 if fresh else 0
        source = SOURCE_PRIOR if n_prior > 0 else SOURCE_FORECAST if n_fc > 0 else SOURCE_LIVE
        cur_i[CUR_SOURCE, j] = source if fresh else SOURCE_STALE
        cur_i[CUR_AGED, j] = 1 if made < np.inf else 0
        if fresh:
            words[0, j >> 6] |= np.int64(1) << (j & 63)
        if valued:
            words[1, j >> 6] |= np.int64(1) << (j & 63)
    return lo, hi
