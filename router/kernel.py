"""The compiled mask -> score -> pick kernel (model.md), one call per batch of requests.

Every function here is private, ``@njit`` with the flags in ``NJIT_FLAGS``, and takes only contiguous NumPy
arrays and scalars. ``router.scoring`` is the typed wrapper that builds these arrays, validates them and maps
indices back to ids; nothing else calls this module. NaN and inf never reach the arithmetic: the batch
kernel refuses them with a return code before it changes anything, and the wrapper raises.

Filters run in model.md's order (latency, jurisdiction, model, health, capacity, freshness, pinned state); a
request's rejection reason is the filter at which its candidate set became empty, i.e. the largest "first
failing filter" over all regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

__all__ = [
    "BAD_REG_F",
    "BAD_REQ_F",
    "FILTER_NAMES",
    "NJIT_FLAGS",
    "NO_AGE",
    "OK",
    "OUT_FLOATS",
    "OUT_INTS",
    "SIGNAL_SOURCES",
    "WINDOWS_FULL",
]

#: The one place that holds the Numba flags (no fastmath: results must match the reference bit for bit).
NJIT_FLAGS: dict[str, Any] = {
    "cache": True,
    "nogil": True,
    "fastmath": False,
    "error_model": "numpy",
    "boundscheck": False,
}

#: Filter codes 1..7, in the order they are applied; 0 means "passed".
FILTER_NAMES = (
    "latency_budget",
    "jurisdiction",
    "model_unavailable",
    "unhealthy",
    "capacity",
    "stale_signals",
    "pinned_state",
)

#: ``signal_age_s`` when the chosen region's values are topology defaults only; ``forecast_generated_at``
#: when it used no forecast value.
NO_AGE = -1e308

#: Columns of the float output matrix.
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
)
#: Columns of the int output matrix: chosen region (-1 rejected), reason code, feasible count,
#: relocatable (0/1), layer (0 local, 1 regional, 2 energy, -1 none), home feasible (0/1), home has values,
#: source of the chosen region's values (see ``SIGNAL_SOURCES``; -1 none).
OUT_INTS = (
    "choice",
    "reason",
    "n_feasible",
    "relocatable",
    "layer",
    "home_feasible",
    "home_valued",
    "signal_source",
)
#: ``signal_source`` codes: both values live and fresh; every value fresh or from the forecast, at least
#: one from the forecast; some value neither (the home region, which may run on stale values).
SIGNAL_SOURCES = ("live", "forecast", "stale")


#: Return codes of ``_decide_batch``: done; a NaN or inf in req_f / reg_f; a capacity ring buffer too small.
OK, BAD_REQ_F, BAD_REG_F, WINDOWS_FULL = 0, 1, 2, 3

#: Sentinel "no entry" timestamp of the capacity windows (never NaN or inf).
_NEVER = 1e300
_MAX_FLOAT = 1.7976931348623157e308


@njit(**NJIT_FLAGS)
def _evict(t, window_s, win_ts, win_e, win_head, win_len, win_sum, win_next):  # type: ignore[no-untyped-def]
    """Drop window entries with ts <= t - window_s (the caller checks ``win_next[0]`` first)."""
    edge = t - window_s
    R, C = win_ts.shape
    nxt = _NEVER
    for j in range(R):
        h, n = win_head[j], win_len[j]
        while n > 0 and win_ts[j, h] <= edge:
            win_sum[j] -= win_e[j, h]
            h += 1
            if h == C:
                h = 0
            n -= 1
        win_head[j] = h
        win_len[j] = n
        if n > 0 and win_ts[j, h] < nxt:
            nxt = win_ts[j, h]
    win_next[0] = nxt


@njit(**NJIT_FLAGS)
def _min_room(cap_nwh, win_sum):  # type: ignore[no-untyped-def]
    """The smallest capacity headroom (nano-Wh) over all regions."""
    room = cap_nwh[0] - win_sum[0]
    for j in range(1, cap_nwh.shape[0]):
        room = min(room, cap_nwh[j] - win_sum[j])
    return room


@njit(**NJIT_FLAGS)
def _finite(a):  # type: ignore[no-untyped-def]
    """True when every element of the C-contiguous array is finite (one flat, vectorised pass)."""
    v = a.reshape(a.size)
    bad = np.int64(0)
    for k in range(v.shape[0]):
        bad |= np.int64(not abs(v[k]) <= _MAX_FLOAT)
    return bad == 0


@njit(**NJIT_FLAGS)
def _popcount(x):  # type: ignore[no-untyped-def]
    """Number of set bits of an int64 (LLVM turns this loop into one ``popcnt``)."""
    n = 0
    while x != 0:
        x &= x - 1
        n += 1
    return n


@njit(**NJIT_FLAGS)
def _row_bits(table, W):  # type: ignore[no-untyped-def]
    """Each row of a (K, R) bool table as W int64 words: region j is bit j % 64 of word j // 64."""
    K, R = table.shape
    out = np.zeros((K, W), dtype=np.int64)
    for k in range(K):
        for j in range(R):
            if table[k, j]:
                out[k, j >> 6] |= np.int64(1) << (j & 63)
    return out


@njit(**NJIT_FLAGS)
def _region_at(  # type: ignore[no-untyped-def]
    t, reg_f, reg_i, fc_ts, fc_val, fc_has, fc_n, fc_meta, lam, cur, cur_i, words
):
    """Every region's values at time ``t``, and the interval ``[lo, hi)`` of times where they stay the same.

    Per value (price, marginal carbon): the live value when it is fresh (``ts <= t < end``, where ``end``
    in ``reg_f`` is the smallest double with ``end - ts > valid_s``, see ``router.state.valid_end``, so
    this is exactly ``t - ts <= valid_s``); else the latest forecast's point with the largest ``ts <= t``
    when its step covers ``t``, it carries the value and ``generated_at <= t < fc_meta[j, 2]`` (exactly
    ``t - generated_at <= forecast_horizon_s``); else, for a value never sent as a signal, the topology's
    constant (static: it does not age); else the last live value (stale: only the home region may use
    it). A region whose two values are both static constants is stale (it has no signal at all).
    Writes ``cur`` rows: price, carbon, USD per IT Wh, grams per IT Wh, unit score per IT Wh, the oldest
    time a value used was generated (its ``ts``, or the forecast's ``generated_at``), the ``generated_at``
    of the forecast used (``NO_AGE`` when none); ``cur_i`` rows: valued, fresh (both values live or
    forecast), source (0 live, 1 forecast, 2 stale), has an age; ``words``: [0] fresh, [1] valued bits.
    Every test is ``t >= b`` or ``t < b`` for a boundary ``b``, so the values are constant between the
    largest boundary ``<= t`` and the smallest one ``> t``.
    """
    R = reg_f.shape[0]
    words[:, :] = 0
    lo, hi = -np.inf, np.inf
    for j in range(R):
        valued = True
        fresh = True
        n_fc = 0
        n_live = 0
        n_static = 0
        base = np.inf
        for v in range(2):
            s, end = reg_f[j, 6 + 2 * v], reg_f[j, 10 + v]
            has_ts = reg_i[j, 4 + v] != 0
            if has_ts:
                for b in (s, end):
                    if b <= t:
                        lo = max(lo, b)
                    else:
                        hi = min(hi, b)
            value = reg_f[j, v]
            if has_ts and s <= t < end:
                n_live += 1
                base = min(base, s)
                cur[v, j] = value
                continue
            found = False
            gen, h_end = fc_meta[j, 0], fc_meta[j, 2]
            if fc_n[j] > 0:
                for b in (gen, h_end):
                    if b <= t:
                        lo = max(lo, b)
                    else:
                        hi = min(hi, b)
                if gen <= t < h_end:
                    a, z = 0, fc_n[j]  # a = number of points with ts <= t
                    while a < z:
                        mid = (a + z) >> 1
                        if fc_ts[j, mid] <= t:
                            a = mid + 1
                        else:
                            z = mid
                    k = a - 1
                    if k + 1 < fc_n[j]:
                        hi = min(hi, fc_ts[j, k + 1])
                    if k >= 0:
                        lo = max(lo, fc_ts[j, k])
                        cover = fc_ts[j, k] + fc_meta[j, 1]
                        if t < cover:
                            hi = min(hi, cover)
                            if fc_has[v, j, k]:
                                found = True
                                value = fc_val[v, j, k]
                        else:
                            lo = max(lo, cover)
            cur[v, j] = value
            if found:
                n_fc += 1
                base = min(base, gen)
            elif not has_ts and reg_i[j, v] != 0:
                n_static += 1  # a topology constant never sent as a signal does not age
            else:
                fresh = False
                if reg_i[j, v] == 0:
                    valued = False
                if has_ts:
                    base = min(base, s)
        if n_static == 2:
            fresh = False  # no live or forecast value at all: stale, as a region never signalled
        cur[2, j] = reg_f[j, 2] * cur[0, j] / 1e6
        cur[3, j] = reg_f[j, 2] * cur[1, j] / 1e3
        cur[4, j] = cur[2, j] + lam * cur[3, j] / 1e6 + reg_f[j, 5]
        cur[5, j] = base if base < np.inf else 0.0
        cur[6, j] = fc_meta[j, 0] if n_fc > 0 else NO_AGE
        cur_i[0, j] = 1 if valued else 0
        cur_i[1, j] = 1 if fresh else 0
        cur_i[2, j] = 2 if not fresh else 1 if n_fc > 0 else 0
        cur_i[3, j] = 1 if base < np.inf else 0
        if fresh:
            words[0, j >> 6] |= np.int64(1) << (j & 63)
        if valued:
            words[1, j >> 6] |= np.int64(1) << (j & 63)
    return lo, hi


@njit(**NJIT_FLAGS)
def _decide_batch(  # type: ignore[no-untyped-def]
    req_f,  # (N, 6) float64: t, energy_wh, budget_ms, compute_ms, payload_bytes, state_bytes
    req_i,  # (N, 6) int64: origin, state_region (-1), pinned, allow_idx, model_idx, energy_nwh
    rtt,  # (S, R) float64
    home,  # (S,) int64
    egress_b,  # (R, R) float64 USD per byte (zero on the diagonal)
    allow_table,  # (A, R) bool
    model_ok,  # (M+1, R) bool
    reg_f,  # (R, 12) float64: price, mci, pue, sig_ts, valid_s, mu, price_ts, price_valid_s, mci_ts,
    #         mci_valid_s, price_end, mci_end (fresh while t < end)
    reg_i,  # (R, 6) int64: has_price, has_mci, has_signal, healthy, has_price_ts, has_mci_ts
    cap_nwh,  # (R,) int64: capacity per window, nano-Wh
    scalars,  # (5,) float64: carbon_usd_per_tonne, relocation_fixed_usd, regional_rtt_ms, bandwidth_gbps,
    #           capacity_window_s
    fc_ts,  # (R, P) float64: the latest forecast's point start times (padded)
    fc_val,  # (2, R, P) float64: point values, [0] price, [1] marginal carbon
    fc_has,  # (2, R, P) bool: the point carries that value
    fc_n,  # (R,) int64: points of the latest forecast (0: none)
    fc_meta,  # (R, 3) float64: generated_at, step_s, usable_end (generated_at when the horizon is 0)
    win_ts,  # (R, C) float64
    win_e,  # (R, C) int64
    win_head,  # (R,) int64
    win_len,  # (R,) int64
    win_sum,  # (R,) int64
    win_next,  # (1,) float64: oldest ts in any window
    out_f,  # (N, 10) float64
    out_i,  # (N, 8) int64
    removed,  # (N, 7) int64
):
    """Mask, score and pick for every request of the batch, in order, updating the capacity windows.

    Returns ``OK``, or before changing anything ``BAD_REQ_F`` / ``BAD_REG_F`` (a NaN or inf) or
    ``WINDOWS_FULL`` (a ring buffer cannot take N more entries: grow it and call again).

    The mask is kept as int64 bit words over the regions (region j is bit j % 64 of word j // 64). Latency
    is one branch-free loop per word; jurisdiction, model and health are words precomputed per batch;
    each region's values (live or forecast), freshness and valuedness are recomputed (``_region_at``)
    only when ``t`` leaves the interval where they are constant; capacity is
    tested per region only when the request's energy exceeds the smallest headroom. Filter k removes
    popcount(mask after k - 1) - popcount(mask after k) regions. Only the feasible regions are scored, in
    index order, so a strict ``<`` keeps the lowest index on ties.
    """
    N = req_f.shape[0]
    R = rtt.shape[1]
    C = win_ts.shape[1]
    if not _finite(req_f):
        return BAD_REQ_F
    if not _finite(reg_f):
        return BAD_REG_F
    for j in range(R):
        if win_len[j] + N > C:
            return WINDOWS_FULL
    W = (R + 63) >> 6
    lam, fixed, regional, bw, window_s = scalars[0], scalars[1], scalars[2], scalars[3], scalars[4]
    healthy = np.empty((1, R), dtype=np.bool_)
    for j in range(R):
        healthy[0, j] = reg_i[j, 3] != 0
    health_bits = _row_bits(healthy, W)
    allow_bits = _row_bits(allow_table, W)
    model_bits = _row_bits(model_ok, W)
    cur = np.empty((7, R))
    cur_i = np.empty((4, R), dtype=np.int64)
    words = np.zeros((2, W), dtype=np.int64)  # fresh, valued
    fresh_w, valued_w = words[0], words[1]
    f_lo, f_hi = np.inf, -np.inf  # cur holds for f_lo <= t < f_hi (empty: computed at the first t)
    min_room = _min_room(cap_nwh, win_sum)
    one = np.int64(1)
    for i in range(N):
        t, e, budget, compute = req_f[i, 0], req_f[i, 1], req_f[i, 2], req_f[i, 3]
        payload, sbytes = req_f[i, 4], req_f[i, 5]
        s, sr, a, m, e_n = req_i[i, 0], req_i[i, 1], req_i[i, 3], req_i[i, 4], req_i[i, 5]
        h = home[s]
        if win_next[0] <= t - window_s:  # something left the window (a call here costs as much as a request)
            _evict(t, window_s, win_ts, win_e, win_head, win_len, win_sum, win_next)
            min_room = _min_room(cap_nwh, win_sum)
        if not f_lo <= t < f_hi:
            f_lo, f_hi = _region_at(
                t, reg_f, reg_i, fc_ts, fc_val, fc_has, fc_n, fc_meta, lam, cur, cur_i, words
            )
        has_state = sr >= 0
        transfer = sbytes * 8.0 / (bw * 1e6) if has_state else 0.0
        src = sr if has_state else 0
        sb = sbytes if has_state else 0.0
        pin = has_state and req_i[i, 2] != 0
        cap_all = e_n <= min_room
        removed[i, :] = 0
        n_ok = reloc = home_ok = 0
        best, best_key = -1, np.inf
        for w in range(W):
            lo = w << 6
            hi = min(R, lo + 64)
            lat = np.int64(0)  # 2-D indexing, not row views: a view per request costs reference counting
            for j in range(lo, hi):
                lat |= np.int64(rtt[s, j] + compute + transfer <= budget) << (j - lo)
            hbit = one << (h - lo) if lo <= h < hi else 0
            sbit = one << (sr - lo) if has_state and lo <= sr < hi else 0
            if sbit != 0:  # the state's own region moves nothing: no transfer time
                lat = lat | sbit if rtt[s, sr] + compute + 0.0 <= budget else lat & ~sbit
            p1 = lat
            p2 = p1 & allow_bits[a, w]
            p3 = p2 & model_bits[m, w]
            p4 = p3 & health_bits[0, w]
            p5 = p4
            if not cap_all:
                cap_ok = np.int64(0)
                for j in range(lo, hi):
                    cap_ok |= np.int64(win_sum[j] + e_n <= cap_nwh[j]) << (j - lo)
                p5 = p4 & cap_ok
            stale_ok = valued_w[w] & (fresh_w[w] | hbit)
            pin_ok = sbit if pin else -1
            p6 = p5 & stale_ok
            p7 = p6 & pin_ok
            masks = (p1, p2, p3, p4, p5, p6, p7)
            before = hi - lo
            for k in range(7):  # filter k + 1 removes the regions it clears from the mask
                after = _popcount(masks[k])
                removed[i, k] += before - after
                before = after
            n_ok += before
            reloc |= p4 & stale_ok & pin_ok & ~hbit  # feasible but for capacity, away from home
            home_ok |= p7 & hbit
            f = p7
            while f != 0:
                j = lo + trailing_zeros(f)  # type: ignore[call-arg]  # numba intrinsic, typed by numba
                f &= f - 1
                nh = fixed if j != h else 0.0
                key = e * cur[4, j] + (payload * egress_b[h, j] + sb * egress_b[src, j] + nh)
                if key < best_key:
                    best_key = key
                    best = j
        valued_h = cur_i[0, h] != 0
        out_f[i, 6] = e * cur[2, h] if valued_h else 0.0
        out_f[i, 7] = e * cur[3, h] if valued_h else 0.0
        out_i[i, 2] = n_ok
        out_i[i, 3] = 1 if reloc != 0 else 0
        out_i[i, 5] = 1 if home_ok != 0 else 0
        out_i[i, 6] = 1 if valued_h else 0
        if best < 0:
            reason = 0
            for k in range(7):  # the reason is the last filter that removed anything
                if removed[i, k] != 0:
                    reason = k + 1
            out_i[i, 0], out_i[i, 1], out_i[i, 4], out_i[i, 7] = -1, reason, -1, -1
            for k in range(6):
                out_f[i, k] = 0.0
            out_f[i, 8] = NO_AGE
            out_f[i, 9] = NO_AGE
            continue
        out_i[i, 0] = best
        out_i[i, 1] = 0
        out_i[i, 4] = 0 if best == h else 1 if rtt[s, best] <= regional else 2
        moved_b = has_state and best != sr
        out_f[i, 0] = rtt[s, best] + compute + (transfer if moved_b else 0.0)
        out_f[i, 1] = e * reg_f[best, 2]
        out_f[i, 2] = e * cur[2, best]
        out_f[i, 3] = e * cur[3, best]
        out_f[i, 4] = payload * egress_b[h, best] + sb * egress_b[src, best]
        out_f[i, 5] = best_key
        out_f[i, 8] = t - cur[5, best] if cur_i[3, best] != 0 else NO_AGE
        out_f[i, 9] = cur[6, best]
        out_i[i, 7] = cur_i[2, best]
        # book the placement in the capacity window of the chosen region
        slot = win_head[best] + win_len[best]
        if slot >= C:
            slot -= C
        win_ts[best, slot] = t
        win_e[best, slot] = e_n
        win_len[best] += 1
        win_sum[best] += e_n
        min_room = min(min_room, cap_nwh[best] - win_sum[best])
        if t < win_next[0]:
            win_next[0] = t
    return OK


@njit(**NJIT_FLAGS)
def _candidate_costs(  # type: ignore[no-untyped-def]
    req_f,
    req_i,
    rtt,
    home,
    egress_b,
    allow_table,
    model_ok,
    reg_f,
    reg_i,
    scalars,
    fc_ts,
    fc_val,
    fc_has,
    fc_n,
    fc_meta,
    cost,
    reach,
):
    """Per (request, region): the score without the dual term, and whether the region is reachable.

    Reachable means it passes every filter but health and capacity (those are what the re-solve plans);
    values and freshness are the kernel's (live, else forecast; arrays as in ``_decide_batch``). Used to
    estimate the demand groups and unit costs of the capacity re-solve.
    """
    N = req_f.shape[0]
    R = rtt.shape[1]
    W = (R + 63) >> 6
    lam = scalars[0]
    fixed = scalars[1]
    bw = scalars[3]
    cur = np.empty((7, R))
    cur_i = np.empty((4, R), dtype=np.int64)
    words = np.zeros((2, W), dtype=np.int64)
    f_lo, f_hi = np.inf, -np.inf
    for i in range(N):
        t = req_f[i, 0]
        e = req_f[i, 1]
        s = req_i[i, 0]
        sr = req_i[i, 1]
        h = home[s]
        if not f_lo <= t < f_hi:
            f_lo, f_hi = _region_at(
                t, reg_f, reg_i, fc_ts, fc_val, fc_has, fc_n, fc_meta, lam, cur, cur_i, words
            )
        for j in range(R):
            moved = sr >= 0 and j != sr
            ok = not (req_i[i, 2] != 0 and moved)
            ok = ok and allow_table[req_i[i, 3], j] and model_ok[req_i[i, 4], j]
            transfer = req_f[i, 5] * 8.0 / (bw * 1e6) if moved else 0.0
            ok = ok and rtt[s, j] + req_f[i, 3] + transfer <= req_f[i, 2]
            ok = ok and cur_i[0, j] != 0
            if j != h:
                ok = ok and cur_i[1, j] != 0
            reach[i, j] = ok
            fac = e * reg_f[j, 2]
            egr = 0.0
            if j != h:
                egr += req_f[i, 4] * egress_b[h, j] + fixed
            if moved:
                egr += req_f[i, 5] * egress_b[sr, j]
            cost[i, j] = fac / 1e6 * cur[0, j] + lam * (fac / 1e3 * cur[1, j]) / 1e6 + egr


def _warm(_: object = None) -> None:
    """Compile both kernels on a one-request, one-region problem (called once at start-up)."""
    f = np.zeros((1, 6))
    f[0, 1] = f[0, 2] = 1.0
    ii = np.zeros((1, 6), dtype=np.int64)
    ii[0, 1] = -1
    z, z1, yes = np.zeros(1, dtype=np.int64), np.zeros((1, 1)), np.ones((1, 1), dtype=np.bool_)
    plan = (z1, z, z1.copy(), yes, yes.copy(), np.ones((1, 12)), np.ones((1, 6), dtype=np.int64))
    sc = np.array([100.0, 0.0, 40.0, 10.0, 60.0])
    fc_has = np.zeros((2, 1, 1), dtype=np.bool_)
    fc = (np.zeros((1, 1)), np.zeros((2, 1, 1)), fc_has, z.copy(), np.ones((1, 3)))
    windows = (
        np.zeros((1, 4)),
        np.zeros((1, 4), dtype=np.int64),
        z.copy(),
        z.copy(),
        z.copy(),
        np.full(1, _NEVER),
    )
    outs = (np.zeros((1, 10)), np.zeros((1, 8), dtype=np.int64), np.zeros((1, 7), dtype=np.int64))
    cap = np.full(1, 10**12, dtype=np.int64)
    _decide_batch(f, ii, *plan, cap, sc, *fc, *windows, *outs)
    _candidate_costs(f, ii, *plan, sc, *fc, np.zeros((1, 1)), np.zeros((1, 1), dtype=np.bool_))
