"""The compiled mask -> score -> pick kernel (model.md), one call per batch of requests.

Every function here is private, ``@njit`` with the flags in ``NJIT_FLAGS``, and takes only contiguous NumPy
arrays and scalars. ``router.scoring`` is the typed wrapper that builds these arrays, validates them and maps
indices back to ids; nothing else calls this module. NaN and inf never reach it (the wrapper checks).

Filters run in model.md's order (latency, jurisdiction, model, health, capacity, freshness, pinned state); a
request's rejection reason is the filter at which its candidate set became empty, i.e. the largest "first
failing filter" over all regions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

__all__ = [
    "FILTER_NAMES",
    "NJIT_FLAGS",
    "NO_AGE",
    "OUT_FLOATS",
    "OUT_INTS",
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
_F_LATENCY, _F_JUR, _F_MODEL, _F_UNHEALTHY, _F_CAPACITY, _F_STALE, _F_PINNED = 1, 2, 3, 4, 5, 6, 7
N_FILTERS = 7

#: ``signal_age_s`` when the chosen region has never had a signal (it runs on topology defaults).
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
)
#: Columns of the int output matrix: chosen region (-1 rejected), reason code, feasible count,
#: relocatable (0/1), layer (0 local, 1 regional, 2 energy, -1 none), home feasible (0/1), home has values.
OUT_INTS = ("choice", "reason", "n_feasible", "relocatable", "layer", "home_feasible", "home_valued")


#: Sentinel "no entry" timestamp of the capacity windows (never NaN or inf).
_NEVER = 1e300


@njit(**NJIT_FLAGS)
def _evict(t, window_s, win_ts, win_e, win_head, win_len, win_sum, win_next):  # type: ignore[no-untyped-def]
    """Drop window entries with ts <= t - window_s; O(1) when nothing has expired (``win_next[0]``)."""
    edge = t - window_s
    if win_next[0] > edge:
        return
    R, C = win_ts.shape
    nxt = _NEVER
    for j in range(R):
        h = win_head[j]
        n = win_len[j]
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
def _region_units(reg_f, reg_i, lam, usd_wh, co2_wh, unit, valued):  # type: ignore[no-untyped-def]
    """Per-region costs per IT Wh, fixed for the whole batch (the region state does not change inside it)."""
    for j in range(reg_f.shape[0]):
        usd_wh[j] = reg_f[j, 2] * reg_f[j, 0] / 1e6
        co2_wh[j] = reg_f[j, 2] * reg_f[j, 1] / 1e3
        unit[j] = usd_wh[j] + lam * co2_wh[j] / 1e6 + reg_f[j, 5]
        valued[j] = reg_i[j, 0] != 0 and reg_i[j, 1] != 0


@njit(**NJIT_FLAGS)
def _decide_batch(  # type: ignore[no-untyped-def]
    req_f,  # (N, 6) float64: t, energy_wh, budget_ms, compute_ms, payload_bytes, state_bytes
    req_i,  # (N, 6) int64: origin, state_region (-1), pinned, allow_idx, model_idx, energy_nwh
    rtt,  # (S, R) float64
    home,  # (S,) int64
    egress_b,  # (R, R) float64 USD per byte (zero on the diagonal)
    allow_table,  # (A, R) bool
    model_ok,  # (M+1, R) bool
    reg_f,  # (R, 6) float64: price, mci, pue, sig_ts, valid_s, mu
    reg_i,  # (R, 4) int64: has_price, has_mci, has_signal, healthy
    cap_nwh,  # (R,) int64: capacity per window, nano-Wh
    scalars,  # (5,) float64: carbon_usd_per_tonne, relocation_fixed_usd, regional_rtt_ms, bandwidth_gbps,
    #           capacity_window_s
    win_ts,  # (R, C) float64
    win_e,  # (R, C) int64
    win_head,  # (R,) int64
    win_len,  # (R,) int64
    win_sum,  # (R,) int64
    win_next,  # (1,) float64: oldest ts in any window
    out_f,  # (N, 9) float64
    out_i,  # (N, 7) int64
    removed,  # (N, 7) int64
):
    """Mask, score and pick for every request of the batch, in order, updating the capacity windows.

    Per request, pass 1 computes every region's first failing filter and masked score without branches
    (so it vectorises); pass 2 takes the first minimum and counts the removals.
    """
    N = req_f.shape[0]
    R = rtt.shape[1]
    C = win_ts.shape[1]
    lam = scalars[0]
    fixed = scalars[1]
    regional = scalars[2]
    bw = scalars[3]
    window_s = scalars[4]
    usd_wh = np.empty(R)
    co2_wh = np.empty(R)
    unit = np.empty(R)
    valued = np.empty(R, dtype=np.bool_)
    _region_units(reg_f, reg_i, lam, usd_wh, co2_wh, unit, valued)
    # contiguous per-region columns for the vectorised pass
    sig_ts = np.ascontiguousarray(reg_f[:, 3])
    valid_s = np.ascontiguousarray(reg_f[:, 4])
    has_sig = reg_i[:, 2] != 0
    healthy = reg_i[:, 3] != 0
    idx = np.arange(R)
    codes = np.empty(R, dtype=np.int64)
    keys = np.empty(R)
    lat_bad = np.empty(R, dtype=np.bool_)
    fresh_ok = np.empty(R, dtype=np.bool_)
    cap_bad = np.empty(R, dtype=np.bool_)
    fixed_nh = np.empty(R)
    for i in range(N):
        t = req_f[i, 0]
        e = req_f[i, 1]
        budget = req_f[i, 2]
        compute = req_f[i, 3]
        payload = req_f[i, 4]
        sbytes = req_f[i, 5]
        s = req_i[i, 0]
        sr = req_i[i, 1]
        pinned = req_i[i, 2] != 0
        a = req_i[i, 3]
        m = req_i[i, 4]
        e_n = req_i[i, 5]
        h = home[s]
        _evict(t, window_s, win_ts, win_e, win_head, win_len, win_sum, win_next)
        has_state = sr >= 0
        transfer = sbytes * 8.0 / (bw * 1e6) if has_state else 0.0
        src = sr if has_state else 0
        sb = sbytes if has_state else 0.0
        rtt_s = rtt[s]
        eg_h = egress_b[h]
        eg_s = egress_b[src]
        allow_a = allow_table[a]
        model_m = model_ok[m]
        for j in range(R):
            fixed_nh[j] = fixed if j != h else 0.0
        # pass 1, as simple loops over contiguous rows that the compiler vectorises
        for j in range(R):
            keys[j] = e * unit[j] + (payload * eg_h[j] + sb * eg_s[j] + fixed_nh[j])
        for j in range(R):
            moved = has_state & (idx[j] != sr)
            lat_bad[j] = rtt_s[j] + compute + (transfer if moved else 0.0) > budget
        for j in range(R):
            fresh_ok[j] = has_sig[j] & (sig_ts[j] <= t) & (t - sig_ts[j] <= valid_s[j])
        for j in range(R):
            cap_bad[j] = win_sum[j] + e_n > cap_nwh[j]
        for j in range(R):
            moved = has_state & (idx[j] != sr)
            stale_ok = valued[j] & (fresh_ok[j] | (idx[j] == h))
            pin_ok = not (pinned & moved)
            code = _F_PINNED if not pin_ok else 0
            code = _F_STALE if not stale_ok else code
            code = _F_CAPACITY if cap_bad[j] else code
            code = _F_UNHEALTHY if not healthy[j] else code
            code = _F_MODEL if not model_m[j] else code
            code = _F_JUR if not allow_a[j] else code
            code = _F_LATENCY if lat_bad[j] else code
            codes[j] = code + (8 if (code == _F_CAPACITY) & stale_ok & pin_ok else 0)
            keys[j] = keys[j] if code == 0 else np.inf
        # pass 2: integer reductions (vectorised), then the first minimum (ties -> lowest index)
        n1 = n2 = n3 = n4 = n5 = n6 = n7 = 0
        max_fail = 0
        n_reloc = 0
        for j in range(R):
            c = codes[j] & 7
            n1 += c == 1
            n2 += c == 2
            n3 += c == 3
            n4 += c == 4
            n5 += c == 5
            n6 += c == 6
            n7 += c == 7
            max_fail = max(max_fail, c)
            n_reloc += (idx[j] != h) & ((c == 0) | (codes[j] > 7))
        best = -1
        best_key = np.inf
        for j in range(R):
            if keys[j] < best_key:
                best_key = keys[j]
                best = j
        reloc = n_reloc > 0
        removed[i, 0] = n1
        removed[i, 1] = n2
        removed[i, 2] = n3
        removed[i, 3] = n4
        removed[i, 4] = n5
        removed[i, 5] = n6
        removed[i, 6] = n7
        home_ok = codes[h] & 7 == 0
        out_f[i, 6] = e * usd_wh[h] if valued[h] else 0.0
        out_f[i, 7] = e * co2_wh[h] if valued[h] else 0.0
        out_i[i, 2] = R - (
            removed[i, 0]
            + removed[i, 1]
            + removed[i, 2]
            + removed[i, 3]
            + removed[i, 4]
            + removed[i, 5]
            + removed[i, 6]
        )
        out_i[i, 3] = 1 if reloc else 0
        out_i[i, 5] = 1 if home_ok else 0
        out_i[i, 6] = 1 if valued[h] else 0
        if best < 0:
            out_i[i, 0] = -1
            out_i[i, 1] = max_fail
            out_i[i, 4] = -1
            for k in range(6):
                out_f[i, k] = 0.0
            out_f[i, 8] = NO_AGE
            continue
        out_i[i, 0] = best
        out_i[i, 1] = 0
        if best == h:
            out_i[i, 4] = 0
        elif rtt[s, best] <= regional:
            out_i[i, 4] = 1
        else:
            out_i[i, 4] = 2
        moved_b = has_state and best != sr
        out_f[i, 0] = rtt_s[best] + compute + (transfer if moved_b else 0.0)
        out_f[i, 1] = e * reg_f[best, 2]
        out_f[i, 2] = e * usd_wh[best]
        out_f[i, 3] = e * co2_wh[best]
        out_f[i, 4] = payload * eg_h[best] + sb * eg_s[best]
        out_f[i, 5] = best_key
        out_f[i, 8] = t - reg_f[best, 3] if reg_i[best, 2] != 0 else NO_AGE
        # book the placement in the capacity window of the chosen region
        slot = win_head[best] + win_len[best]
        if slot >= C:
            slot -= C
        win_ts[best, slot] = t
        win_e[best, slot] = e_n
        win_len[best] += 1
        win_sum[best] += e_n
        if t < win_next[0]:
            win_next[0] = t


@njit(**NJIT_FLAGS)
def _candidate_costs(  # type: ignore[no-untyped-def]
    req_f, req_i, rtt, home, egress_b, allow_table, model_ok, reg_f, reg_i, scalars, cost, reach
):
    """Per (request, region): the score without the dual term, and whether the region is reachable.

    Reachable means it passes every filter but health and capacity (those are what the re-solve plans).
    Used to estimate the demand groups and unit costs of the capacity re-solve.
    """
    N = req_f.shape[0]
    R = rtt.shape[1]
    lam = scalars[0]
    fixed = scalars[1]
    bw = scalars[3]
    for i in range(N):
        t = req_f[i, 0]
        e = req_f[i, 1]
        s = req_i[i, 0]
        sr = req_i[i, 1]
        h = home[s]
        for j in range(R):
            moved = sr >= 0 and j != sr
            ok = not (req_i[i, 2] != 0 and moved)
            ok = ok and allow_table[req_i[i, 3], j] and model_ok[req_i[i, 4], j]
            transfer = req_f[i, 5] * 8.0 / (bw * 1e6) if moved else 0.0
            ok = ok and rtt[s, j] + req_f[i, 3] + transfer <= req_f[i, 2]
            ok = ok and reg_i[j, 0] != 0 and reg_i[j, 1] != 0
            if j != h:
                ok = ok and reg_i[j, 2] != 0 and reg_f[j, 3] <= t and t - reg_f[j, 3] <= reg_f[j, 4]
            reach[i, j] = ok
            fac = e * reg_f[j, 2]
            egr = 0.0
            if j != h:
                egr += req_f[i, 4] * egress_b[h, j] + fixed
            if moved:
                egr += req_f[i, 5] * egress_b[sr, j]
            cost[i, j] = fac / 1e6 * reg_f[j, 0] + lam * (fac / 1e3 * reg_f[j, 1]) / 1e6 + egr


def _warm(_: object = None) -> None:
    """Compile both kernels on a one-request, one-region problem (called once at start-up)."""
    f = np.zeros((1, 6))
    f[0, 1] = 1.0
    f[0, 2] = 1.0
    ii = np.zeros((1, 6), dtype=np.int64)
    ii[0, 1] = -1
    rtt = np.zeros((1, 1))
    home = np.zeros(1, dtype=np.int64)
    eg = np.zeros((1, 1))
    allow = np.ones((1, 1), dtype=np.bool_)
    model_ok = np.ones((1, 1), dtype=np.bool_)
    reg_f = np.ones((1, 6))
    reg_i = np.ones((1, 4), dtype=np.int64)
    cap = np.full(1, 10**12, dtype=np.int64)
    sc = np.array([100.0, 0.0, 40.0, 10.0, 60.0])
    wt = np.zeros((1, 4))
    we = np.zeros((1, 4), dtype=np.int64)
    z = np.zeros(1, dtype=np.int64)
    _decide_batch(
        f,
        ii,
        rtt,
        home,
        eg,
        allow,
        model_ok,
        reg_f,
        reg_i,
        cap,
        sc,
        wt,
        we,
        z,
        z.copy(),
        z.copy(),
        np.full(1, _NEVER),
        np.zeros((1, 9)),
        np.zeros((1, 7), dtype=np.int64),
        np.zeros((1, 7), dtype=np.int64),
    )
    _candidate_costs(
        f,
        ii,
        rtt,
        home,
        eg,
        allow,
        model_ok,
        reg_f,
        reg_i,
        sc,
        np.zeros((1, 1)),
        np.zeros((1, 1), dtype=np.bool_),
    )
