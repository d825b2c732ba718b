"""Sticky sessions with hysteresis: a session stays in its region unless moving pays enough, long enough after
its last move (docs/model.md, "Sticky sessions").

A request of a known session (a slot whose region is set and whose latest placed request is at most
``session_ttl_s`` old) goes to the session's region when that region passed the mask, unless the score's
pick there is lower by more than ``switch_margin_usd`` and the session has stayed at least
``session_min_dwell_s``: then it moves (``session_moved``). When the session's region failed the mask the
request takes the score's pick at once, also a move: a hard constraint always wins. ``_session_note`` keeps
the region, the time the session came there and its latest request's time. Ties and order are the pick's
(router/kernel/_pick.py); only the router's rule (``POLICY_SCORE``) is sticky.
"""

from __future__ import annotations

from numba import njit

from router.kernel._flags import NO_RC_FLAGS
from router.kernel._pick import _tenant_score
from router.kernel._score import _friction
from router.kernel.columns import (
    RELOCATION_FIXED_USD,
    SES_LAST,
    SES_REGION,
    SES_SINCE,
    SESSION_MIN_DWELL_S,
    SWITCH_MARGIN_USD,
)

__all__: list[str] = []


@njit(inline="always", **NO_RC_FLAGS)
def _session_region(ses, q, t, ttl):  # type: ignore[no-untyped-def]
    """The region of session slot ``q`` at ``t``, or -1 (no session, a new one, or expired)."""
    if q < 0:
        return -1
    r = ses.i[q, SES_REGION]
    if r < 0 or not t - ses.f[q, SES_LAST] <= ttl:
        return -1
    return r


@njit(inline="always", **NO_RC_FLAGS)
def _sticky(top, r, r_ok, key_r, dwelt, margin, dwell):  # type: ignore[no-untyped-def]
    """(pick, its score, runner-up, its score, moved) given the score's ``top``, the session's region ``r``
    (-1: none), whether it passed the mask, its score and how long the session has been there."""
    best, best_key, second, second_key = top
    if r < 0 or best < 0 or best == r:
        return best, best_key, second, second_key, 0
    if r_ok == 0:
        return best, best_key, second, second_key, 1
    if key_r - best_key > margin and dwelt >= dwell:
        return best, best_key, second, second_key, 1
    return r, key_r, best, best_key, 0


@njit(inline="always", **NO_RC_FLAGS)
def _sticky_pick(top, q, r, r_ok, t, e, payload, sb, h, src, cur, plan, nu, ses):  # type: ignore[no-untyped-def]
    """``_sticky`` for request time ``t`` of session slot ``q`` in region ``r`` (the session's score there is
    the pick's, ``router.kernel._pick._tenant_score``)."""
    if r < 0:
        return top[0], top[1], top[2], top[3], 0
    fr = _friction(payload, sb, h, src, r, plan.egress_b, plan.scalars[RELOCATION_FIXED_USD])
    key_r = _tenant_score(e, cur, r, nu, fr)
    dwelt = t - ses.f[q, SES_SINCE]
    return _sticky(
        top, r, r_ok, key_r, dwelt, plan.scalars[SWITCH_MARGIN_USD], plan.scalars[SESSION_MIN_DWELL_S]
    )


@njit(**NO_RC_FLAGS)
def _session_note(ses, q, r, choice, t):  # type: ignore[no-untyped-def]
    """A placed request of session slot ``q`` (known region ``r``, -1: none) went to ``choice`` at ``t``."""
    if q < 0 or choice < 0:
        return
    if choice != r:
        ses.i[q, SES_REGION] = choice
        ses.f[q, SES_SINCE] = t
    ses.f[q, SES_LAST] = t
