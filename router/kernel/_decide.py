"""The batch kernel: for every request, in event-time order, filter -> score -> pick, and book capacity.

``_decide_batch`` checks its inputs (NaN or inf, room in the windows) before it changes anything and
returns a code; per request it slides the capacity windows, recomputes the regions' values only when the
request's time leaves the interval where they are constant (``router.kernel._values``), masks one 64-region
word at a time (``router.kernel._mask``), picks among the feasible regions (``router.kernel._pick``: the
lowest score and the runner-up, in index order so a strict ``<`` keeps the lowest index on ties; or a
baseline rule of ``carbon-router compare`` when the plan's ``POLICY`` says so) and writes one output row.
``_candidate_costs`` gives the re-solve the same score without the dual, and which regions each request
could reach.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from router.kernel._flags import NJIT_FLAGS, NO_RC_FLAGS
from router.kernel._mask import _count_removed, _mask_word
from router.kernel._pick import _first_fail, _pick, _pick_policy
from router.kernel._score import CUR_G_WH, CUR_USD_WH, _egress, _friction, _score, _unit_cost
from router.kernel._sessions import _session_note, _session_region, _sticky_pick
from router.kernel._tenants import _carbon_ug, _tenant_book, _tenant_nu, _tenant_room
from router.kernel._values import (
    CUR_AGED,
    CUR_F_ROWS,
    CUR_FC_GEN,
    CUR_FRESH,
    CUR_I_ROWS,
    CUR_MADE,
    CUR_SOURCE,
    CUR_UNIT,
    CUR_VALUED,
    _region_values,
)
from router.kernel._windows import ROOM_MAX, _book, _evict, _min_room, _room, _windows_full
from router.kernel.columns import (
    BANDWIDTH_GBPS,
    BUDGET_MS,
    CAPACITY_WINDOW_S,
    CARBON_USD_PER_TONNE,
    CHOICE,
    COMPUTE_MS,
    ENERGY_NWH,
    ENERGY_WH,
    HEALTHY,
    HOME_CARBON_G,
    HOME_ENERGY_USD,
    HOME_FEASIBLE,
    HOME_VALUED,
    LAYER,
    MODEL,
    N_FEASIBLE,
    NO_AGE,
    ORIGIN,
    OUT_CARBON_G,
    OUT_EGRESS_USD,
    OUT_ENERGY_USD,
    OUT_FACILITY_WH,
    OUT_FORECAST_GENERATED_AT,
    OUT_LATENCY_MS,
    OUT_SCORE_USD,
    OUT_SIGNAL_AGE_S,
    PAYLOAD_BYTES,
    PINNED,
    POLICY,
    POLICY_ALL_LOCAL,
    POLICY_SCORE,
    PUE,
    REASON,
    REGIONAL_RTT_MS,
    RELOCATABLE,
    RELOCATION_FIXED_USD,
    RUNNER_UP,
    RUNNER_UP_SCORE_USD,
    SESSION,
    SESSION_MOVED,
    SESSION_TTL_S,
    SIGNAL_SOURCE,
    STATE_BYTES,
    STATE_REGION,
    TENANT,
    T,
)
from router.kernel.structs import (
    Outputs,
    Requests,
)

__all__ = ["BAD_REG_F", "BAD_REQ_F", "OK", "WINDOWS_FULL"]

#: Return codes of ``_decide_batch``: done; a NaN or inf in the requests / in the region state; a capacity
#: ring buffer too small for the batch (grow it and call again).
OK, BAD_REQ_F, BAD_REG_F, WINDOWS_FULL = 0, 1, 2, 3
_MAX_FLOAT = 1.7976931348623157e308


@njit(**NJIT_FLAGS)
def _finite(a):  # type: ignore[no-untyped-def]
    """True when every element of the C-contiguous array is finite (one flat, vectorised pass)."""
    v = a.reshape(a.size)
    bad = np.int64(0)
    for k in range(v.shape[0]):
        bad |= np.int64(not abs(v[k]) <= _MAX_FLOAT)
    return bad == 0


@njit(**NJIT_FLAGS)
def _inputs_code(req, reg, win, ten, twin):  # type: ignore[no-untyped-def]
    """OK, or why the batch cannot be decided as given (nothing has changed yet)."""
    if not _finite(req.f):
        return BAD_REQ_F
    if not (_finite(reg.f) and _finite(reg.val) and _finite(reg.val_ts) and _finite(reg.val_end)):
        return BAD_REG_F
    if not _finite(ten.f):
        return BAD_REG_F
    if _windows_full(win, req.f.shape[0]) or _windows_full(twin, req.f.shape[0]):
        return WINDOWS_FULL
    return OK


@njit(**NJIT_FLAGS)
def _decide_entry(req, inputs, horizon, out):  # type: ignore[no-untyped-def]
    """``_decide_batch`` on the batch and its outputs as plain tuples of arrays (Numba types a plain tuple's
    arrays in C at the call, a named tuple's in Python) and the state as one ``KernelInputs``
    (router/kernel/inputs.py), whose fields are the named structures."""
    return _decide_batch(
        Requests(*req),
        inputs.plan,
        inputs.reg,
        inputs.fc,
        inputs.win,
        inputs.ten,
        inputs.twin,
        inputs.ses,
        horizon,
        Outputs(*out),
    )


@njit(**NO_RC_FLAGS)
def _health_words(reg, out):  # type: ignore[no-untyped-def]
    """The healthy regions as bit words, into the zeroed ``out``."""
    for j in range(reg.i.shape[0]):
        if reg.i[j, HEALTHY] != 0:
            out[j >> 6] |= np.int64(1) << (j & 63)


@njit(**NJIT_FLAGS)
def _decide_batch(req, plan, reg, fc, win, ten, twin, ses, horizon, out):  # type: ignore[no-untyped-def]
    """Decide every request of the batch in order; returns OK or, before any change, an error code.
    ``ten``, ``twin``: the tenants' budgets and carbon windows; ``ses``: the session table.
    The entry point allocates the per-batch scratch; the loop runs without reference counting."""
    code = _inputs_code(req, reg, win, ten, twin)
    if code != OK:
        return code
    R = plan.rtt.shape[1]
    W = (R + 63) >> 6
    health = np.zeros(W, dtype=np.int64)
    cur = np.empty((CUR_F_ROWS, R))
    cur_i = np.empty((CUR_I_ROWS, R), dtype=np.int64)
    words = np.zeros((2, W), dtype=np.int64)  # fresh, valued
    scratch = (health, cur, cur_i, words)
    if _has_extras(req):
        _decide_requests(req, plan, reg, fc, win, ten, twin, ses, horizon, out, *scratch)
    else:
        _decide_plain(req, plan, reg, fc, win, ten, twin, ses, horizon, out, *scratch)
    return OK


@njit(**NO_RC_FLAGS)
def _has_extras(req):  # type: ignore[no-untyped-def]
    """Some request of the batch names a tenant or a session."""
    for i in range(req.i.shape[0]):  # noqa: SIM110  (numba compiles no generator for any())
        if req.i[i, TENANT] >= 0 or req.i[i, SESSION] >= 0:
            return True
    return False


@njit(**NO_RC_FLAGS)
def _decide_requests(req, plan, reg, fc, win, ten, twin, ses, horizon, out, health, cur, cur_i, words):  # type: ignore[no-untyped-def]
    """The batch loop for a batch with tenants or sessions."""
    _request_loop(req, plan, reg, fc, win, ten, twin, ses, horizon, out, health, cur, cur_i, words, True)


@njit(**NO_RC_FLAGS)
def _decide_plain(req, plan, reg, fc, win, ten, twin, ses, horizon, out, health, cur, cur_i, words):  # type: ignore[no-untyped-def]
    """The same loop compiled for a batch without tenants or sessions: the compiler drops their steps."""
    _request_loop(req, plan, reg, fc, win, ten, twin, ses, horizon, out, health, cur, cur_i, words, False)


@njit(inline="always", **NO_RC_FLAGS)
def _request_loop(req, plan, reg, fc, win, ten, twin, ses, horizon, out, health, cur, cur_i, words, extras):  # type: ignore[no-untyped-def]
    """The batch loop: slide the windows, refresh the regions' values when ``t`` leaves their interval,
    decide, book (capacity, the tenant's carbon, the session's region). ``extras`` is a constant of each
    caller: False only when no request names a tenant or a session, where every step it guards is a no-op."""
    lam, window_s = plan.scalars[CARBON_USD_PER_TONNE], plan.scalars[CAPACITY_WINDOW_S]
    sticky, ttl = plan.scalars[POLICY] == POLICY_SCORE, plan.scalars[SESSION_TTL_S]
    _health_words(reg, health)
    f_lo, f_hi = np.inf, -np.inf  # cur holds for f_lo <= t < f_hi (empty: computed at the first t)
    min_room = _min_room(reg, win)
    for i in range(req.f.shape[0]):
        t = req.f[i, T]
        edge = min(t, horizon) - window_s
        if win.next_expiry[0] <= edge:  # something left the window (a call costs as much as a request)
            _evict(edge, win)
            min_room = _min_room(reg, win)
        if not f_lo <= t < f_hi:
            f_lo, f_hi = _region_values(t, reg, fc, lam, cur, cur_i, words)
        k, q, r, troom, nu = -1, -1, -1, np.int64(ROOM_MAX), 0.0
        if extras:
            k = req.i[i, TENANT]
            troom = _tenant_room(ten, twin, k, t, horizon) if k >= 0 else np.int64(ROOM_MAX)
            q = req.i[i, SESSION] if sticky else -1
            r = _session_region(ses, q, t, ttl)
            nu = _tenant_nu(ten, k)
        sess = (q, r, nu)
        best = _decide_one(i, req, plan, reg, win, cur, cur_i, words, health, min_room, out, troom, ses, sess)
        if best >= 0:
            _book(win, best, t, req.i[i, ENERGY_NWH])
            min_room = min(min_room, _room(reg, win, best))
            if extras and k >= 0:
                _tenant_book(twin, k, t, _carbon_ug(out.f[i, OUT_CARBON_G]))
            if extras and q >= 0:
                _session_note(ses, q, r, best, t)


@njit(inline="always", **NO_RC_FLAGS)
def _decide_one(i, req, plan, reg, win, cur, cur_i, words, health, min_room, out, troom, ses, sess):  # type: ignore[no-untyped-def]
    """Mask, score and pick for request ``i``; writes its output row and returns the chosen region or -1.
    ``troom``: the tenant's room (micro-g); ``sess``: (session slot, its region or -1, the tenant's dual)."""
    R = plan.rtt.shape[1]
    policy = plan.scalars[POLICY]
    s, sr = req.i[i, ORIGIN], req.i[i, STATE_REGION]
    h = plan.home[s]
    e, payload = req.f[i, ENERGY_WH], req.f[i, PAYLOAD_BYTES]
    has_state = sr >= 0
    transfer = req.f[i, STATE_BYTES] * 8.0 / (plan.scalars[BANDWIDTH_GBPS] * 1e6) if has_state else 0.0
    src = sr if has_state else 0
    sb = req.f[i, STATE_BYTES] if has_state else 0.0
    fits_all = req.i[i, ENERGY_NWH] <= min_room
    n_ok = reloc = home_ok = home_fail = 0
    top = (-1, np.inf, -1, np.inf)  # pick, its score, runner-up, its score
    q, r, nu = sess
    r_ok = 0
    for w in range(words.shape[1]):
        masks, reloc_w, hbit = _mask_word(
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
        n_ok += _count_removed(masks, min(R, (w << 6) + 64) - (w << 6), out.removed, i, w == 0)
        reloc |= reloc_w
        home_ok |= masks[7] & hbit
        if r >= 0 and (r >> 6) == w:
            r_ok = (masks[7] >> (r & 63)) & 1
        if policy == POLICY_SCORE:
            top = _pick(masks[7], w << 6, e, payload, sb, h, src, cur, plan, nu, top)
        else:  # a baseline rule of `compare`: no runner-up
            if hbit != 0:
                home_fail = _first_fail(masks, hbit)
            b, k = _pick_policy(
                policy, masks[7], w << 6, i, e, s, sr, transfer, h, req, plan, cur, top[0], top[1]
            )
            top = (b, k, -1, np.inf)
    best, best_key, second, second_key, moved = _sticky_pick(
        top, q, r, r_ok, req.f[i, T], e, payload, sb, h, src, cur, plan, nu, ses
    )
    out.i[i, SESSION_MOVED] = moved
    valued_h = cur_i[CUR_VALUED, h] != 0
    out.f[i, HOME_ENERGY_USD] = e * cur[CUR_USD_WH, h] if valued_h else 0.0
    out.f[i, HOME_CARBON_G] = e * cur[CUR_G_WH, h] if valued_h else 0.0
    out.i[i, N_FEASIBLE] = n_ok
    out.i[i, RELOCATABLE] = 1 if reloc != 0 else 0
    out.i[i, HOME_FEASIBLE] = 1 if home_ok != 0 else 0
    out.i[i, HOME_VALUED] = 1 if valued_h else 0
    if best < 0:
        _write_rejected(out, i, home_fail if policy == POLICY_ALL_LOCAL else 0)
        return best
    fr = _friction(payload, sb, h, src, best, plan.egress_b, plan.scalars[RELOCATION_FIXED_USD])
    score = best_key if policy == POLICY_SCORE else _score(e, cur[CUR_UNIT, best], fr)
    moved = has_state and best != sr
    _write_placed(out, i, req, plan, reg, cur, cur_i, best, score, (transfer if moved else 0.0))
    out.f[i, OUT_EGRESS_USD] = _egress(payload, sb, h, src, best, plan.egress_b)
    out.i[i, LAYER] = 0 if best == h else 1 if plan.rtt[s, best] <= plan.scalars[REGIONAL_RTT_MS] else 2
    out.i[i, RUNNER_UP] = second
    out.f[i, RUNNER_UP_SCORE_USD] = second_key if second >= 0 else 0.0
    return best


@njit(inline="always", **NO_RC_FLAGS)
def _write_rejected(out, i, reason):  # type: ignore[no-untyped-def]
    """A rejected request: the reason is ``reason`` when > 0, else the last filter that removed anything."""
    if reason == 0:
        for k in range(out.removed.shape[1]):
            if out.removed[i, k] != 0:
                reason = k + 1
    out.i[i, CHOICE], out.i[i, REASON], out.i[i, LAYER], out.i[i, SIGNAL_SOURCE] = -1, reason, -1, -1
    out.i[i, RUNNER_UP] = -1
    for k in (OUT_LATENCY_MS, OUT_FACILITY_WH, OUT_ENERGY_USD, OUT_CARBON_G, OUT_EGRESS_USD, OUT_SCORE_USD):
        out.f[i, k] = 0.0
    out.f[i, RUNNER_UP_SCORE_USD] = 0.0
    out.f[i, OUT_SIGNAL_AGE_S] = NO_AGE
    out.f[i, OUT_FORECAST_GENERATED_AT] = NO_AGE


@njit(inline="always", **NO_RC_FLAGS)
def _write_placed(out, i, req, plan, reg, cur, cur_i, j, score, transfer):  # type: ignore[no-untyped-def]
    """A placed request at region ``j`` (layer and egress are written by the caller)."""
    e, t = req.f[i, ENERGY_WH], req.f[i, T]
    s = req.i[i, ORIGIN]
    out.i[i, CHOICE] = j
    out.i[i, REASON] = 0
    out.f[i, OUT_LATENCY_MS] = plan.rtt[s, j] + req.f[i, COMPUTE_MS] + transfer
    out.f[i, OUT_FACILITY_WH] = e * reg.f[j, PUE]
    out.f[i, OUT_ENERGY_USD] = e * cur[CUR_USD_WH, j]
    out.f[i, OUT_CARBON_G] = e * cur[CUR_G_WH, j]
    out.f[i, OUT_SCORE_USD] = score
    out.f[i, OUT_SIGNAL_AGE_S] = t - cur[CUR_MADE, j] if cur_i[CUR_AGED, j] != 0 else NO_AGE
    out.f[i, OUT_FORECAST_GENERATED_AT] = cur[CUR_FC_GEN, j]
    out.i[i, SIGNAL_SOURCE] = cur_i[CUR_SOURCE, j]


@njit(**NO_RC_FLAGS)
def _reachable(i, j, h, req, plan, cur_i, transfer):  # type: ignore[no-untyped-def]
    """Region ``j`` passes every filter but health and capacity (what the re-solve plans)."""
    sr = req.i[i, STATE_REGION]
    moved = sr >= 0 and j != sr
    if req.i[i, PINNED] != 0 and moved:
        return False
    if (req.allow[i, j >> 6] >> (j & 63)) & 1 == 0:
        return False
    if (plan.model_bits[req.i[i, MODEL], j >> 6] >> (j & 63)) & 1 == 0:
        return False
    lat = plan.rtt[req.i[i, ORIGIN], j] + req.f[i, COMPUTE_MS] + (transfer if moved else 0.0)
    if not lat <= req.f[i, BUDGET_MS] or cur_i[CUR_VALUED, j] == 0:
        return False
    return j == h or cur_i[CUR_FRESH, j] != 0


@njit(**NJIT_FLAGS)
def _candidate_costs(req, plan, reg, fc, cost, reach, carb):  # type: ignore[no-untyped-def]
    """Per (request, region): the score without the dual term, whether the region is reachable, and the
    marginal carbon per IT Wh there (g; the re-solve's tenant rows)."""
    R = plan.rtt.shape[1]
    W = (R + 63) >> 6
    cur = np.empty((CUR_F_ROWS, R))
    cur_i = np.empty((CUR_I_ROWS, R), dtype=np.int64)
    words = np.zeros((2, W), dtype=np.int64)
    _candidate_loop(req, plan, reg, fc, cost, reach, carb, cur, cur_i, words)


@njit(**NO_RC_FLAGS)
def _candidate_loop(req, plan, reg, fc, cost, reach, carb, cur, cur_i, words):  # type: ignore[no-untyped-def]
    """The loop of ``_candidate_costs``, without reference counting."""
    R = plan.rtt.shape[1]
    lam, fixed = plan.scalars[CARBON_USD_PER_TONNE], plan.scalars[RELOCATION_FIXED_USD]
    f_lo, f_hi = np.inf, -np.inf
    for i in range(req.f.shape[0]):
        t = req.f[i, T]
        if not f_lo <= t < f_hi:
            f_lo, f_hi = _region_values(t, reg, fc, lam, cur, cur_i, words)
        e, sr = req.f[i, ENERGY_WH], req.i[i, STATE_REGION]
        h = plan.home[req.i[i, ORIGIN]]
        transfer = req.f[i, STATE_BYTES] * 8.0 / (plan.scalars[BANDWIDTH_GBPS] * 1e6) if sr >= 0 else 0.0
        src = sr if sr >= 0 else 0
        sb = req.f[i, STATE_BYTES] if sr >= 0 else 0.0
        for j in range(R):
            reach[i, j] = _reachable(i, j, h, req, plan, cur_i, transfer)
            fr = _friction(req.f[i, PAYLOAD_BYTES], sb, h, src, j, plan.egress_b, fixed)
            cost[i, j] = _score(e, _unit_cost(cur, j, lam), fr)
            carb[i, j] = cur[CUR_G_WH, j]
