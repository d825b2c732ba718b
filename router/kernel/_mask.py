"""The mask: hard constraints as bit words over the regions, one filter after another, in the model's order.

Region ``j`` is bit ``j % 64`` of word ``j // 64``. ``_mask_word`` applies the eight filters to one word,
each function taking the candidates the previous one left (latency budget, jurisdiction, model, health,
capacity, freshness, pinned state, the tenant's carbon budget: router/kernel/_tenants.py; docs/model.md,
"Mask"); no score can add a region back. The number a
filter removed is the drop in the population count it causes; a rejection's reason is the last filter
that removed anything.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from router.kernel._flags import NO_RC_FLAGS
from router.kernel._tenants import _tenant_filter
from router.kernel._windows import _room
from router.kernel.columns import BUDGET_MS, COMPUTE_MS, ENERGY_NWH, ENERGY_WH, MODEL, N_FILTERS, PINNED

__all__: list[str] = []


@njit(**NO_RC_FLAGS)
def _popcount(x):  # type: ignore[no-untyped-def]
    """Number of set bits of an int64 (LLVM turns this loop into one ``popcnt``)."""
    n = 0
    while x != 0:
        x &= x - 1
        n += 1
    return n


@njit(inline="always", **NO_RC_FLAGS)
def _latency(lo, hi, rtt, s, sr, compute, transfer, budget):  # type: ignore[no-untyped-def]
    """1. RTT + compute + state transfer within the budget (no transfer to the state's own region)."""
    lat = np.int64(0)  # 2-D indexing, not row views: a view per request costs reference counting
    for j in range(lo, hi):
        lat |= np.int64(rtt[s, j] + compute + transfer <= budget) << (j - lo)
    if sr >= 0 and lo <= sr < hi:
        sbit = np.int64(1) << (sr - lo)
        lat = lat | sbit if rtt[s, sr] + compute + 0.0 <= budget else lat & ~sbit
    return lat


@njit(inline="always", **NO_RC_FLAGS)
def _capacity(p, lo, hi, reg, win, e_n, fits_all):  # type: ignore[no-untyped-def]
    """5. Room in the capacity window for this request's IT energy (tested per region only when the
    request does not fit the smallest room of all)."""
    if fits_all:
        return p
    ok = np.int64(0)
    for j in range(lo, hi):
        ok |= np.int64(e_n <= _room(reg, win, j)) << (j - lo)
    return p & ok


@njit(inline="always", **NO_RC_FLAGS)
def _mask_word(  # type: ignore[no-untyped-def]
    w, R, i, req, plan, reg, win, s, h, sr, transfer, health_w, fresh_w, valued_w, fits_all, cur, troom
):
    """The eight masks of word ``w`` (after filters 1..8), the relocatable bits (feasible but for capacity
    and the tenant's budget, away from home) and the home bit. ``troom`` is the tenant's room in micro-g."""
    lo = w << 6
    hi = min(R, lo + 64)
    hbit = np.int64(1) << (h - lo) if lo <= h < hi else np.int64(0)
    sbit = np.int64(1) << (sr - lo) if sr >= 0 and lo <= sr < hi else np.int64(0)
    p1 = _latency(lo, hi, plan.rtt, s, sr, req.f[i, COMPUTE_MS], transfer, req.f[i, BUDGET_MS])
    p2 = p1 & req.allow[i, w]  # 2. jurisdiction
    p3 = p2 & plan.model_bits[req.i[i, MODEL], w]  # 3. model served
    p4 = p3 & health_w  # 4. healthy
    p5 = _capacity(p4, lo, hi, reg, win, req.i[i, ENERGY_NWH], fits_all)
    fresh_ok = valued_w & (fresh_w | hbit)  # 6. fresh values (home may run on stale ones)
    p6 = p5 & fresh_ok
    pin_ok = sbit if sr >= 0 and req.i[i, PINNED] != 0 else np.int64(-1)  # 7. pinned state
    p7 = p6 & pin_ok
    p8 = _tenant_filter(p7, lo, req.f[i, ENERGY_WH], cur, troom)  # 8. tenant's carbon budget
    return (p1, p2, p3, p4, p5, p6, p7, p8), p4 & fresh_ok & pin_ok & ~hbit, hbit


@njit(inline="always", **NO_RC_FLAGS)
def _count_removed(masks, width, removed, i, first):  # type: ignore[no-untyped-def]
    """Each filter's removals in one word into ``removed[i]``, written by the ``first`` word and added by the
    others; returns the regions left."""
    before = width
    for k in range(N_FILTERS):
        after = _popcount(masks[k])
        removed[i, k] = before - after if first else removed[i, k] + before - after
        before = after
    return before
