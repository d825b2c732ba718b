"""The capacity guard's sliding windows: per region, the IT energy placed in ``(edge, t]`` in nano-Wh.

Entries are integers (exact adds and removes, no drift); each window's sum is two int64 words,
``sum_hi * 2**52 + sum_lo`` with ``0 <= sum_lo < 2**52``, and so is each capacity (``cap_hi``, ``cap_lo``),
so that no capacity up to ``router.bounds.MAX_CAPACITY_KW`` over any window up to a day (2.4e25 nWh), nor
any sum, can overflow. "No limit" is ``cap_hi = UNLIMITED_HI``. One request is at most 1e15 nWh < 2**50, so
the room left in a window is exact whenever it could matter and saturates at ``ROOM_MAX`` otherwise.

The window slides with ``min(t, horizon)``: live, ``horizon`` is the router's clock, so a request dated
ahead of it (within the allowed skew) cannot empty the windows early; the replay passes ``inf``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from router.kernel._flags import NO_RC_FLAGS

__all__ = ["LIMB", "NEVER", "ROOM_MAX", "UNLIMITED_HI"]

#: base of the two-word sums
LIMB = 1 << 52
#: room reported when it is larger than any request could use
ROOM_MAX = 1 << 62
#: ``cap_hi`` of a region without a capacity limit (about 2**114 nWh: never reached)
UNLIMITED_HI = 1 << 62
#: "no entry" timestamp of the windows (never NaN or inf)
NEVER = 1e300


@njit(**NO_RC_FLAGS)
def _room(reg, win, j):  # type: ignore[no-untyped-def]
    """Capacity left in region ``j``'s window, nano-Wh (exact within +-ROOM_MAX, saturated beyond)."""
    d = reg.cap_hi[j] - win.sum_hi[j]
    if d >= 1024:
        return np.int64(ROOM_MAX)
    if d <= -1024:
        return -np.int64(ROOM_MAX)
    return d * LIMB + (reg.cap_lo[j] - win.sum_lo[j])


@njit(**NO_RC_FLAGS)
def _min_room(reg, win):  # type: ignore[no-untyped-def]
    """The smallest room over all regions (a request that fits it fits everywhere)."""
    room = _room(reg, win, 0)
    for j in range(1, reg.cap_hi.shape[0]):
        room = min(room, _room(reg, win, j))
    return room


@njit(**NO_RC_FLAGS)
def _evict(edge, win):  # type: ignore[no-untyped-def]
    """Drop entries with ts <= edge (the caller checks ``win.next_expiry[0]`` first)."""
    R, C = win.ts.shape
    nxt = NEVER
    for j in range(R):
        h, n = win.head[j], win.len[j]
        lo, hi = win.sum_lo[j], win.sum_hi[j]
        while n > 0 and win.ts[j, h] <= edge:
            lo -= win.e[j, h]
            if lo < 0:
                lo += LIMB
                hi -= 1
            h += 1
            if h == C:
                h = 0
            n -= 1
        win.head[j], win.len[j], win.sum_lo[j], win.sum_hi[j] = h, n, lo, hi
        if n > 0 and win.ts[j, h] < nxt:
            nxt = win.ts[j, h]
    win.next_expiry[0] = nxt


@njit(inline="always", **NO_RC_FLAGS)
def _ring_add(w, k, t, v):  # type: ignore[no-untyped-def]
    """Append ``v`` at ``t`` to row ``k`` of a ring of windows (``ts``, ``e``, ``head``, ``len`` and the
    two-limb sum ``sum_lo``/``sum_hi``; room was reserved): the capacity windows and the tenants' carbon
    windows (router/kernel/_tenants.py) alike."""
    C = w.ts.shape[1]
    slot = w.head[k] + w.len[k]
    if slot >= C:
        slot -= C
    w.ts[k, slot] = t
    w.e[k, slot] = v
    w.len[k] += 1
    lo = w.sum_lo[k] + v
    if lo >= LIMB:
        lo -= LIMB
        w.sum_hi[k] += 1
    w.sum_lo[k] = lo


@njit(**NO_RC_FLAGS)
def _book(win, j, t, e_n):  # type: ignore[no-untyped-def]
    """Add a placement of ``e_n`` nano-Wh at ``t`` to region ``j``'s window (room was reserved)."""
    _ring_add(win, j, t, e_n)
    win.next_expiry[0] = min(win.next_expiry[0], t)


@njit(**NO_RC_FLAGS)
def _windows_full(win, n):  # type: ignore[no-untyped-def]
    """True when some ring buffer cannot take ``n`` more entries (the wrapper grows it and calls again)."""
    C = win.ts.shape[1]
    for j in range(win.len.shape[0]):  # noqa: SIM110  (numba compiles no generator for any())
        if win.len[j] + n > C:
            return True
    return False
