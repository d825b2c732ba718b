"""The pick: one winner among the regions the mask left, under the plan's pick rule (``POLICY``).

``_pick`` is the router's rule: the lowest score (``router.kernel._score``), and the runner-up, the lowest
score after it; regions are visited in index order and a strict ``<`` keeps the lower index on ties, for the
pick and for the runner-up alike. ``_pick_policy`` is the same scan under a baseline rule of
``carbon-router compare`` (docs/model.md, "Baseline policies"): home only, the lowest latency, the lowest
energy cost or the lowest marginal carbon, over the same feasible bits. ``_first_fail`` names the first
filter that removed one region (the reason ``all_local`` gives for a rejection).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from router.kernel._flags import NO_RC_FLAGS
from router.kernel._score import CUR_G_WH, CUR_USD_WH, _friction, _score
from router.kernel._values import CUR_UNIT
from router.kernel.columns import (
    COMPUTE_MS,
    N_FILTERS,
    POLICY_ALL_LOCAL,
    POLICY_CHEAPEST_ENERGY,
    POLICY_LOWEST_CARBON,
    POLICY_NEAREST,
    RELOCATION_FIXED_USD,
)

__all__: list[str] = []


@njit(inline="always", **NO_RC_FLAGS)
def _pick(f, lo, e, payload, sb, h, src, cur, plan, nu, top):  # type: ignore[no-untyped-def]
    """Score the feasible regions of one word (bits ``f`` from region ``lo``); ``top`` is (best, its score,
    runner-up, its score), updated and returned. Ties keep the lower index (strict ``<`` in index order).
    ``nu`` is the tenant's carbon dual (USD per g; 0 for none)."""
    best, best_key, second, second_key = top
    fixed = plan.scalars[RELOCATION_FIXED_USD]
    while f != 0:
        j = lo + trailing_zeros(f)  # type: ignore[call-arg]  # numba intrinsic, typed by numba
        f &= f - 1
        key = _tenant_score(e, cur, j, nu, _friction(payload, sb, h, src, j, plan.egress_b, fixed))
        if key < best_key:
            second, second_key = best, best_key
            best, best_key = j, key
        elif key < second_key:
            second, second_key = j, key
    return best, best_key, second, second_key


@njit(inline="always", **NO_RC_FLAGS)
def _tenant_score(e, cur, j, nu, friction):  # type: ignore[no-untyped-def]
    """The score at region ``j`` with the tenant's carbon dual: ``e * (unit_j + nu * g_per_wh_j) +
    friction``. Without a dual (``nu`` 0) the plain score ``e * unit_j + friction``: the same bits, since
    ``unit_j + 0 * g`` differs from ``unit_j`` only in the sign of a zero, which ``e * ... + friction``
    (``friction >= +0.0``) does not carry."""
    if nu == 0.0:
        return _score(e, cur[CUR_UNIT, j], friction)
    return _score(e, cur[CUR_UNIT, j] + nu * cur[CUR_G_WH, j], friction)


@njit(inline="always", **NO_RC_FLAGS)
def _policy_key(policy, j, i, e, s, sr, transfer, h, req, plan, cur):  # type: ignore[no-untyped-def]
    """The key a baseline rule minimises at region ``j`` (inf: not a candidate under that rule)."""
    if policy == POLICY_ALL_LOCAL:
        return 0.0 if j == h else np.inf
    if policy == POLICY_NEAREST:
        moved = sr >= 0 and j != sr
        return plan.rtt[s, j] + req.f[i, COMPUTE_MS] + (transfer if moved else 0.0)
    if policy == POLICY_CHEAPEST_ENERGY:
        return e * cur[CUR_USD_WH, j]
    if policy == POLICY_LOWEST_CARBON:
        return e * cur[CUR_G_WH, j]
    return np.inf


@njit(**NO_RC_FLAGS)
def _pick_policy(policy, f, lo, i, e, s, sr, transfer, h, req, plan, cur, best, best_key):  # type: ignore[no-untyped-def]
    """A baseline rule's pick over the feasible bits ``f`` of one word: the lowest key, ties to the lower
    index; returns (best, its key)."""
    while f != 0:
        j = lo + trailing_zeros(f)  # type: ignore[call-arg]  # numba intrinsic, typed by numba
        f &= f - 1
        key = _policy_key(policy, j, i, e, s, sr, transfer, h, req, plan, cur)
        if key < best_key:
            best, best_key = j, key
    return best, best_key


@njit(inline="always", **NO_RC_FLAGS)
def _first_fail(masks, bit):  # type: ignore[no-untyped-def]
    """The filter code (1..8) of the first mask without ``bit``, or 0 when every mask keeps it."""
    for k in range(N_FILTERS):
        if masks[k] & bit == 0:
            return k + 1
    return 0
