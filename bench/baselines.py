"""The two baseline scorers the kernel benchmark compares ``router.kernel`` against.

Both implement model.md's mask -> score -> pick with the kernel's formulas, evaluated in the same order of
floating-point operations, so that on the same inputs they pick the same regions (the benchmark asserts it):

* ``NaivePythonScorer``: plain Python, one request at a time, one region at a time, over lists and dicts
  (no NumPy in the loop). The capacity window is one time-ordered deque, evicted and booked per request,
  as the kernel does (requests arrive in time order).
* ``NumpyBatchScorer``: the batch as ``(N, R)`` array expressions (in cache-sized blocks of rows), then
  ``argmin`` over the masked scores (ties go to the lowest region index, like the kernel). Capacity is
  checked per *batch*: every request of a batch sees the window sums as they were at the start of the
  batch (the batch's own placements are booked after the pick, and entries leave the window once per
  batch). This is the honest "NumPy per batch" design; it differs from the kernel only when capacity binds
  inside a batch, which the benchmark rules out.

Both only produce the pick and its score. The kernel also returns per-filter removal counts, the rejection
reason, layer, relocatability and the home baseline, so the comparison slightly favours the baselines.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

from router.plan import Plan
from router.state import (
    HAS_MCI,
    HAS_PRICE,
    HAS_SIGNAL,
    HEALTHY,
    MCI,
    MU,
    PRICE,
    PUE,
    SIG_TS,
    VALID_S,
    RegionState,
)

__all__ = ["BLOCK_ELEMS", "NaivePythonScorer", "NumpyBatchScorer"]

#: Requests x regions per NumPy block: each (rows, R) float64 temporary is 64 KB, so the dozen that are live
#: at once stay in L2. On the benchmark machine (N = 1024, best of 40) this made the NumPy scorer 1.6x
#: (R = 32) and 2.8x (R = 128) faster than whole-batch temporaries, and cost nothing at R = 8.
BLOCK_ELEMS = 8192

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class NaivePythonScorer:
    """Sequential pure-Python mask -> score -> pick over Python lists; books capacity per request."""

    def __init__(self, plan: Plan, state: RegionState) -> None:
        self.rtt: list[list[float]] = plan.rtt.tolist()
        self.home: list[int] = plan.home.tolist()
        self.egress_b: list[list[float]] = plan.egress_per_byte.tolist()
        self.allow: list[list[bool]] = plan.allow.array.tolist()
        self.model_ok: list[list[bool]] = plan.model_ok.tolist()
        lam, fixed, _regional, bw, window_s = plan.scalars.tolist()
        self.lam, self.fixed, self.bw, self.window_s = lam, fixed, bw, window_s
        self.regions: list[dict[str, Any]] = [
            {
                "price": float(state.f[j, PRICE]),
                "mci": float(state.f[j, MCI]),
                "pue": float(state.f[j, PUE]),
                "sig_ts": float(state.f[j, SIG_TS]),
                "valid_s": float(state.f[j, VALID_S]),
                "mu": float(state.f[j, MU]),
                "valued": bool(state.i[j, HAS_PRICE]) and bool(state.i[j, HAS_MCI]),
                "has_signal": bool(state.i[j, HAS_SIGNAL]),
                "healthy": bool(state.i[j, HEALTHY]),
                "cap_nwh": int(state.cap_nwh[j]),
            }
            for j in range(plan.n_regions)
        ]
        for r in self.regions:  # per-Wh costs, fixed while the region state is
            r["usd_wh"] = r["pue"] * r["price"] / 1e6
            r["co2_wh"] = r["pue"] * r["mci"] / 1e3
            r["unit"] = r["usd_wh"] + lam * r["co2_wh"] / 1e6 + r["mu"]
        # one time-ordered deque of (ts, region, nano-Wh) for all regions: eviction costs O(entries evicted)
        self.window: deque[tuple[float, int, int]] = deque()
        self.used: list[int] = [0] * len(self.regions)

    def reset(self) -> None:
        """Empty every capacity window."""
        self.window.clear()
        self.used = [0] * len(self.regions)

    def decide(self, rows_f: list[list[float]], rows_i: list[list[int]]) -> tuple[list[int], list[float]]:
        """Chosen region index (-1 when none is feasible) and its score, per request, in order."""
        choices: list[int] = []
        scores: list[float] = []
        fixed, bw, window_s = self.fixed, self.bw, self.window_s
        used, window = self.used, self.window
        for (t, e, budget, compute, payload, sbytes), (s, sr, pinned, a, m, e_n) in zip(
            rows_f, rows_i, strict=True
        ):
            h = self.home[s]
            edge = t - window_s
            while window and window[0][0] <= edge:
                _, j_old, e_old = window.popleft()
                used[j_old] -= e_old
            rtt_s, allow_a, model_m = self.rtt[s], self.allow[a], self.model_ok[m]
            egress_h, egress_sr = self.egress_b[h], self.egress_b[sr]  # egress_sr is only read with state
            transfer_moved = sbytes * 8.0 / (bw * 1e6)
            best, best_score = -1, 0.0
            for j, r in enumerate(self.regions):
                moved = sr >= 0 and j != sr
                if rtt_s[j] + compute + (transfer_moved if moved else 0.0) > budget:
                    continue
                if not allow_a[j] or not model_m[j] or not r["healthy"]:
                    continue
                if used[j] + e_n > r["cap_nwh"] or not r["valued"]:
                    continue
                if j != h:
                    sig_ts = r["sig_ts"]
                    if not (r["has_signal"] and sig_ts <= t and t - sig_ts <= r["valid_s"]):
                        continue
                if pinned and moved:
                    continue
                egr = payload * egress_h[j] + (sbytes * egress_sr[j] if sr >= 0 else 0.0)
                score = e * r["unit"] + (egr + (fixed if j != h else 0.0))
                if best < 0 or score < best_score:
                    best, best_score = j, score
            choices.append(best)
            scores.append(best_score)
            if best >= 0:
                window.append((t, best, e_n))
                used[best] += e_n
        return choices, scores


class NumpyBatchScorer:
    """Vectorised mask -> score -> pick for a whole batch; capacity checked against the batch-start window."""

    def __init__(self, plan: Plan, state: RegionState, block_elems: int = BLOCK_ELEMS) -> None:
        R = plan.n_regions
        self.block_elems = block_elems
        self.rtt = plan.rtt
        self.home = plan.home
        self.egress_b = plan.egress_per_byte
        self.allow = plan.allow.array
        self.model_ok = plan.model_ok
        lam, fixed, _regional, bw, window_s = plan.scalars.tolist()
        self.lam, self.fixed, self.bw, self.window_s = lam, fixed, bw, window_s
        f, i = state.f, state.i
        self.price = f[:, PRICE].copy()
        self.mci = f[:, MCI].copy()
        self.pue = f[:, PUE].copy()
        self.sig_ts = f[:, SIG_TS].copy()
        self.valid_s = f[:, VALID_S].copy()
        self.mu = f[:, MU].copy()
        self.unit = self.pue * self.price / 1e6 + lam * (self.pue * self.mci / 1e3) / 1e6 + self.mu
        self.valued: BoolArray = (i[:, HAS_PRICE] != 0) & (i[:, HAS_MCI] != 0)
        self.has_signal: BoolArray = i[:, HAS_SIGNAL] != 0
        self.healthy: BoolArray = i[:, HEALTHY] != 0
        self.cap_nwh = state.cap_nwh.copy()
        self.cols = np.arange(R, dtype=np.int64)
        self.used: IntArray = np.zeros(R, dtype=np.int64)
        self.booked: deque[tuple[float, IntArray]] = deque()

    def reset(self) -> None:
        """Empty the capacity window."""
        self.used[:] = 0
        self.booked.clear()

    def decide(self, req_f: FloatArray, req_i: IntArray) -> tuple[IntArray, FloatArray]:
        """Chosen region index (-1 when none is feasible) and its score (0.0 when rejected), per request.

        Rows are processed in blocks of about ``block_elems / R`` requests so that every ``(rows, R)``
        temporary stays in the L2 cache; every block sees the window sums of the batch start.
        """
        t = req_f[:, 0]
        edge = float(t.min()) - self.window_s
        while self.booked and self.booked[0][0] <= edge:
            self.used -= self.booked.popleft()[1]
        n = len(req_f)
        rows = max(1, self.block_elems // len(self.cols))
        choice = np.empty(n, dtype=np.int64)
        best = np.empty(n, dtype=np.float64)
        for k in range(0, n, rows):
            choice[k : k + rows], best[k : k + rows] = self._block(req_f[k : k + rows], req_i[k : k + rows])
        placed = choice >= 0
        booked = np.zeros_like(self.used)
        np.add.at(booked, choice[placed], req_i[placed, 5])
        self.used += booked
        self.booked.append((float(t.max()), booked))
        return choice, best

    def _block(self, req_f: FloatArray, req_i: IntArray) -> tuple[IntArray, FloatArray]:
        t, e, budget, compute, payload, sbytes = req_f.T
        s, sr, pinned, a, m, e_n = req_i.T
        h = self.home[s]
        not_home = self.cols != h[:, None]
        moved = (sr >= 0)[:, None] & (self.cols != sr[:, None])
        transfer = np.where(moved, (sbytes * 8.0 / (self.bw * 1e6))[:, None], 0.0)
        ok = self.rtt[s] + compute[:, None] + transfer <= budget[:, None]
        ok &= self.allow[a]
        ok &= self.model_ok[m]
        ok &= self.healthy
        ok &= self.used + e_n[:, None] <= self.cap_nwh
        tt = t[:, None]
        fresh = self.has_signal & (self.sig_ts <= tt) & (tt - self.sig_ts <= self.valid_s)
        ok &= self.valued & (~not_home | fresh)
        ok &= ~((pinned != 0)[:, None] & moved)

        egr = payload[:, None] * self.egress_b[h]
        egr += np.where((sr >= 0)[:, None], sbytes[:, None] * self.egress_b[sr], 0.0)  # row -1 is masked out
        score = e[:, None] * self.unit + (egr + np.where(not_home, self.fixed, 0.0))
        masked = np.where(ok, score, np.inf)

        choice = masked.argmin(axis=1)
        rows = np.arange(len(choice))
        placed = ok[rows, choice]
        return np.where(placed, choice, -1), np.where(placed, masked[rows, choice], 0.0)
