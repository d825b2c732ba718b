"""The tenants' carbon budgets: per tenant a sliding window of the marginal carbon it placed, in micro-grams.

One ``Windows`` row per configured tenant (router/budgets.py), with the same two-word sums as the capacity
windows (router/kernel/_windows.py). A tenant's row slides only when one of its requests is decided
(``_tenant_room``, over ``(min(t, horizon) - window_s, t]``), since each tenant has its own window; the
eighth filter (``_tenant_filter``, router/kernel/_mask.py) keeps a region when the request's carbon there
fits the room left; ``_tenant_book`` adds a placement. ``_carbon_ug`` rounds grams to micro-grams half up,
as ``router.budgets.carbon_ug`` does.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from router.kernel._flags import NO_RC_FLAGS
from router.kernel._score import CUR_G_WH
from router.kernel._windows import LIMB, ROOM_MAX, _ring_add
from router.kernel.columns import TEN_BUDGET_HI, TEN_BUDGET_LO, TEN_NU, TEN_REJECT, TEN_WINDOW_S

__all__: list[str] = []


@njit(**NO_RC_FLAGS)
def _carbon_ug(carbon_g):  # type: ignore[no-untyped-def]
    """Grams of carbon as integer micro-grams, half up (``carbon_g >= 0``)."""
    return np.int64(np.floor(carbon_g * 1e6 + 0.5))


@njit(**NO_RC_FLAGS)
def _evict_row(edge, twin, k):  # type: ignore[no-untyped-def]
    """Drop row ``k``'s entries with ts <= edge."""
    C = twin.ts.shape[1]
    h, n = twin.head[k], twin.len[k]
    lo, hi = twin.sum_lo[k], twin.sum_hi[k]
    while n > 0 and twin.ts[k, h] <= edge:
        lo -= twin.e[k, h]
        if lo < 0:
            lo += LIMB
            hi -= 1
        h += 1
        if h == C:
            h = 0
        n -= 1
    twin.head[k], twin.len[k], twin.sum_lo[k], twin.sum_hi[k] = h, n, lo, hi


@njit(**NO_RC_FLAGS)
def _tenant_room(ten, twin, k, t, horizon):  # type: ignore[no-untyped-def]
    """Slide tenant ``k``'s window to ``t``; the room left in micro-grams when its budget is guarded
    (``reject``), else ROOM_MAX (no tenant, or ``allow``)."""
    if k < 0:
        return np.int64(ROOM_MAX)
    _evict_row(min(t, horizon) - ten.f[k, TEN_WINDOW_S], twin, k)
    if ten.i[k, TEN_REJECT] == 0:
        return np.int64(ROOM_MAX)
    d = ten.i[k, TEN_BUDGET_HI] - twin.sum_hi[k]
    if d >= 1024:
        return np.int64(ROOM_MAX) - 1
    if d <= -1024:
        return -np.int64(ROOM_MAX)
    return d * LIMB + (ten.i[k, TEN_BUDGET_LO] - twin.sum_lo[k])


@njit(**NO_RC_FLAGS)
def _tenant_nu(ten, k):  # type: ignore[no-untyped-def]
    """The dual (USD per g) of tenant ``k``'s budget in use; 0 for none."""
    return ten.f[k, TEN_NU] if k >= 0 else 0.0


@njit(inline="always", **NO_RC_FLAGS)
def _tenant_filter(p, lo, e, cur, troom):  # type: ignore[no-untyped-def]
    """8. The regions of ``p`` (bits from region ``lo``) where the request's marginal carbon fits the
    tenant's room (all of them when the budget is not guarded)."""
    if troom >= ROOM_MAX:
        return p
    ok = np.int64(0)
    f = p
    while f != 0:
        j = lo + trailing_zeros(f)  # type: ignore[call-arg]  # numba intrinsic, typed by numba
        f &= f - 1
        if _carbon_ug(e * cur[CUR_G_WH, j]) <= troom:
            ok |= np.int64(1) << (j - lo)
    return ok


@njit(**NO_RC_FLAGS)
def _tenant_book(twin, k, t, g_ug):  # type: ignore[no-untyped-def]
    """Add ``g_ug`` micro-grams placed at ``t`` to tenant ``k``'s window."""
    _ring_add(twin, k, t, g_ug)
