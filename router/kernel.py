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


@njit(**NJIT_FLAGS)
def _evict(t, window_s, win_ts, win_e, win_head, win_len, win_sum):  # type: ignore[no-untyped-def]
    """Drop window entries with ts <= t - window_s from every region's ring buffer."""
    R, C = win_ts.shape
    edge = t - window_s
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


@njit(**NJIT_FLAGS)
def _decide_batch(  # type: ignore[no-untyped-def]
    req_f,  # (N, 6) float64: t, energy_wh, budget_ms, compute_ms, payload_bytes, state_bytes
    req_i,  # (N, 6) int64: origin, state_region (-1), pinned, allow_idx, model_idx, energy_nwh
    rtt,  # (S, R) float64
    home,  # (S,) int64
    egress,  # (R, R) float64 USD/GB
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
    out_f,  # (N, 9) float64
    out_i,  # (N, 7) int64
    removed,  # (N, 7) int64
):
    """Mask, score and pick for every request of the batch, in order, updating the capacity windows."""
    N = req_f.shape[0]
    R = rtt.shape[1]
    C = win_ts.shape[1]
    lam = scalars[0]
    fixed = scalars[1]
    regional = scalars[2]
    bw = scalars[3]
    window_s = scalars[4]
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
        _evict(t, window_s, win_ts, win_e, win_head, win_len, win_sum)
        for k in range(N_FILTERS):
            removed[i, k] = 0
        best = -1
        best_score = 0.0
        b_lat = 0.0
        b_fac = 0.0
        b_usd = 0.0
        b_co2 = 0.0
        b_egr = 0.0
        max_fail = 0
        n_feas = 0
        reloc = 0
        home_ok = 0
        for j in range(R):
            moved = sr >= 0 and j != sr
            transfer = 0.0
            if moved:
                transfer = sbytes * 8.0 / (bw * 1e6)
            lat = rtt[s, j] + compute + transfer
            fail = 0
            if lat > budget:
                fail = _F_LATENCY
            elif not allow_table[a, j]:
                fail = _F_JUR
            elif not model_ok[m, j]:
                fail = _F_MODEL
            elif reg_i[j, 3] == 0:
                fail = _F_UNHEALTHY
            else:
                stale_ok = reg_i[j, 0] != 0 and reg_i[j, 1] != 0
                if j != h:
                    stale_ok = (
                        stale_ok and reg_i[j, 2] != 0 and reg_f[j, 3] <= t and t - reg_f[j, 3] <= reg_f[j, 4]
                    )
                pin_ok = not (pinned and moved)
                if win_sum[j] + e_n > cap_nwh[j]:
                    fail = _F_CAPACITY
                    if j != h and stale_ok and pin_ok:
                        reloc = 1  # relocatable demand ignores capacity: the geography is feasible
                elif not stale_ok:
                    fail = _F_STALE
                elif not pin_ok:
                    fail = _F_PINNED
            if fail != 0:
                removed[i, fail - 1] += 1
                if fail > max_fail:
                    max_fail = fail
                continue
            n_feas += 1
            if j == h:
                home_ok = 1
            else:
                reloc = 1
            fac = e * reg_f[j, 2]
            usd = fac / 1e6 * reg_f[j, 0]
            co2 = fac / 1e3 * reg_f[j, 1]
            egr = 0.0
            if j != h:
                egr += payload / 1e9 * egress[h, j]
            if moved:
                egr += sbytes / 1e9 * egress[sr, j]
            friction = egr
            if j != h:
                friction = egr + fixed
            score = usd + lam * co2 / 1e6 + friction + reg_f[j, 5] * e
            if best < 0 or score < best_score:
                best = j
                best_score = score
                b_lat = lat
                b_fac = fac
                b_usd = usd
                b_co2 = co2
                b_egr = egr
        # baseline: the home region's own cost, whether or not it was feasible
        home_valued = 1 if (reg_i[h, 0] != 0 and reg_i[h, 1] != 0) else 0
        if home_valued == 1:
            hf = e * reg_f[h, 2]
            out_f[i, 6] = hf / 1e6 * reg_f[h, 0]
            out_f[i, 7] = hf / 1e3 * reg_f[h, 1]
        else:
            out_f[i, 6] = 0.0
            out_f[i, 7] = 0.0
        out_i[i, 2] = n_feas
        out_i[i, 3] = reloc
        out_i[i, 5] = home_ok
        out_i[i, 6] = home_valued
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
        out_f[i, 0] = b_lat
        out_f[i, 1] = b_fac
        out_f[i, 2] = b_usd
        out_f[i, 3] = b_co2
        out_f[i, 4] = b_egr
        out_f[i, 5] = best_score
        out_f[i, 8] = t - reg_f[best, 3] if reg_i[best, 2] != 0 else NO_AGE
        # book the placement in the capacity window of the chosen region
        slot = win_head[best] + win_len[best]
        if slot >= C:
            slot -= C
        win_ts[best, slot] = t
        win_e[best, slot] = e_n
        win_len[best] += 1
        win_sum[best] += e_n


@njit(**NJIT_FLAGS)
def _candidate_costs(  # type: ignore[no-untyped-def]
    req_f, req_i, rtt, home, egress, allow_table, model_ok, reg_f, reg_i, scalars, cost, reach
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
                egr += req_f[i, 4] / 1e9 * egress[h, j] + fixed
            if moved:
                egr += req_f[i, 5] / 1e9 * egress[sr, j]
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
