"""One request, every region: the filter that removed it, or what the score is made of (``carbon-router
explain``).

``_explain_one`` runs the batch loop's steps for request ``i`` alone, with the same functions: it slides the
capacity windows to the request's time (``_evict``, as the batch loop would before deciding it), takes the
regions' values at that time (``_region_values``), masks every word (``_mask_word``) and, per region, names
the first filter whose mask lacks it (``_first_fail``; 0: it passed all eight) and computes the score's
parts exactly as ``_pick`` and ``_write_placed`` do, so the pick's row equals its placement to the last bit
(tests/router/test_explain_command.py). It is an entry point that allocates its scratch, never called on the
hot path.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from router.kernel._decide import _health_words
from router.kernel._flags import NJIT_FLAGS
from router.kernel._mask import _mask_word
from router.kernel._pick import _first_fail, _tenant_score
from router.kernel._score import CUR_G_WH, CUR_USD_WH, _egress, _friction
from router.kernel._tenants import _tenant_nu, _tenant_room
from router.kernel._values import CUR_F_ROWS, CUR_I_ROWS, CUR_SOURCE, CUR_VALUED, _region_values
from router.kernel._windows import _evict, _min_room
from router.kernel.columns import (
    BANDWIDTH_GBPS,
    CAPACITY_WINDOW_S,
    CARBON_USD_PER_TONNE,
    COMPUTE_MS,
    ENERGY_NWH,
    ENERGY_WH,
    MU,
    ORIGIN,
    PAYLOAD_BYTES,
    RELOCATION_FIXED_USD,
    STATE_BYTES,
    STATE_REGION,
    TENANT,
    T,
)

__all__ = ["EXPLAIN_FLOATS", "EXPLAIN_INTS"]

#: columns of the per-region rows: the request's latency there and the score's parts (USD) and total
EXPLAIN_FLOATS = (
    "latency_ms",
    "energy_usd",
    "carbon_g",
    "carbon_usd",
    "egress_usd",
    "relocation_usd",
    "dual_usd",
    "score_usd",
    "dual_carbon_usd",
)
#: the first filter that removed the region (code 1..8 of FILTER_NAMES; 0: feasible), the region has a price
#: and a carbon value (0/1), their source (index into SIGNAL_SOURCES)
EXPLAIN_INTS = ("filter", "valued", "source")


@njit(**NJIT_FLAGS)
def _explain_one(req, plan, reg, fc, win, ten, twin, horizon, i, rows_f, rows_i):  # type: ignore[no-untyped-def]
    """Fill ``rows_f`` (R, len(EXPLAIN_FLOATS)) and ``rows_i`` (R, len(EXPLAIN_INTS)) for request ``i``."""
    R = plan.rtt.shape[1]
    W = (R + 63) >> 6
    lam, fixed = plan.scalars[CARBON_USD_PER_TONNE], plan.scalars[RELOCATION_FIXED_USD]
    health = np.zeros(W, dtype=np.int64)
    cur = np.empty((CUR_F_ROWS, R))
    cur_i = np.empty((CUR_I_ROWS, R), dtype=np.int64)
    words = np.zeros((2, W), dtype=np.int64)
    t = req.f[i, T]
    edge = min(t, horizon) - plan.scalars[CAPACITY_WINDOW_S]
    if win.next_expiry[0] <= edge:
        _evict(edge, win)
    _health_words(reg, health)
    _region_values(t, reg, fc, lam, cur, cur_i, words)
    s, sr = req.i[i, ORIGIN], req.i[i, STATE_REGION]
    h = plan.home[s]
    e, payload = req.f[i, ENERGY_WH], req.f[i, PAYLOAD_BYTES]
    transfer = req.f[i, STATE_BYTES] * 8.0 / (plan.scalars[BANDWIDTH_GBPS] * 1e6) if sr >= 0 else 0.0
    src = sr if sr >= 0 else 0
    sb = req.f[i, STATE_BYTES] if sr >= 0 else 0.0
    fits_all = req.i[i, ENERGY_NWH] <= _min_room(reg, win)
    k = req.i[i, TENANT]
    troom = _tenant_room(ten, twin, k, t, horizon)
    nu = _tenant_nu(ten, k)
    for w in range(W):
        masks, _reloc, _hbit = _mask_word(
            w,
            R,
            i,
            req,
            plan,
            reg,
            win,
            s,
            h,
            sr,
            transfer,
            health[w],
            words[0, w],
            words[1, w],
            fits_all,
            cur,
            troom,
        )
        for j in range(w << 6, min(R, (w << 6) + 64)):
            rows_i[j, 0] = _first_fail(masks, np.int64(1) << (j - (w << 6)))
    for j in range(R):
        moved = sr >= 0 and j != sr
        rows_f[j, 0] = plan.rtt[s, j] + req.f[i, COMPUTE_MS] + (transfer if moved else 0.0)
        rows_f[j, 1] = e * cur[CUR_USD_WH, j]
        rows_f[j, 2] = e * cur[CUR_G_WH, j]
        rows_f[j, 3] = lam * rows_f[j, 2] / 1e6
        rows_f[j, 4] = _egress(payload, sb, h, src, j, plan.egress_b)
        rows_f[j, 5] = fixed if j != h else 0.0
        rows_f[j, 6] = e * reg.f[j, MU]
        rows_f[j, 7] = _tenant_score(e, cur, j, nu, _friction(payload, sb, h, src, j, plan.egress_b, fixed))
        rows_f[j, 8] = nu * rows_f[j, 2]
        rows_i[j, 1] = cur_i[CUR_VALUED, j]
        rows_i[j, 2] = cur_i[CUR_SOURCE, j]
