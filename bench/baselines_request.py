"""Per-request baselines of the kernel benchmark: NumPy one request at a time, and an LP solved per request.

* ``NumpyRequestScorer``: each request as length-R array expressions (mask, score, ``argmin``), capacity
  booked after every request, like the kernel. Loop invariants that depend only on the service node (its
  RTT row, home, egress row from home, the relocation-fixed row) are hoisted into per-node tables at
  construction. The region values (``bench.baselines_values.NpValues``: value history, forecast, static)
  give a per-Wh unit cost, valued and fresh per region; they are computed at the first request of a call
  and again only when a request's time leaves the interval where they are constant, as in the kernel.
  The allowed-region bit words of each distinct ``allowed_jurisdictions`` become a bool row once (memo).
* ``LpRequestScorer``: the "solve it exactly every time" approach. The same mask and scores, then for every
  request with a candidate an LP in HiGHS (``highspy``, as ``router.resolve`` uses it): one variable
  ``x_j >= 0`` per region that passes the mask, ``sum_j x_j = 1``, minimise ``sum_j score_j x_j``; the pick
  is ``argmax x``. One ``Highs`` object is kept for the whole run; every request passes a new model (its
  column count is its feasible count). Costs reach HiGHS divided by their largest magnitude (HiGHS's
  tolerances are absolute, see ``router/resolve.py``) and the dual feasibility tolerance is tightened to
  1e-10 so that close scores are still told apart; presolve is off (a one-row LP gives it nothing to do,
  and it made every solve 2-3x slower here). A request without a candidate is rejected without a solve
  (its LP would be infeasible).

Both return the pick (-1 when rejected) and its score (0.0 when rejected) per request, with the kernel's
floating-point operations in the kernel's order, so the scores are bit-identical to the kernel's.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

import highspy
import numpy as np
import numpy.typing as npt

from bench.baselines import allowed_row, capacity_nwh
from bench.baselines_values import NpTable, NpValues
from router.forecast import ForecastState
from router.kernel._windows import ROOM_MAX
from router.kernel.columns import HEALTHY
from router.plan import Plan
from router.resolve import stdout_silenced
from router.state import RegionState

__all__ = ["LpRequestScorer", "NumpyRequestScorer"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_INF: Final = float(highspy.kHighsInf)
_OPTIMAL: Final = highspy.HighsModelStatus.kOptimal


class NumpyRequestScorer:
    """Mask -> score -> pick of one request at a time as length-R NumPy expressions; books per request."""

    def __init__(self, plan: Plan, state: RegionState, forecasts: ForecastState) -> None:
        R = plan.n_regions
        lam, fixed, _regional, bw, window_s = plan.scalars.tolist()[:5]  # the sessions are not benchmarked
        self.R, self.bw, self.window_s = R, bw, window_s
        self.rtt = plan.rtt
        self.model_ok = plan.model_ok
        self.egress_b = plan.egress_per_byte
        cols = np.arange(R, dtype=np.int64)
        not_home = cols[None, :] != plan.home[:, None]  # per service node
        self.home_row: BoolArray = ~not_home
        self.fixed_row: FloatArray = np.where(not_home, fixed, 0.0)
        self.egress_home: FloatArray = plan.egress_per_byte[plan.home]  # per service node
        self.cols = cols
        self.no_move: BoolArray = np.zeros(R, dtype=np.bool_)
        self.values = NpValues(state, forecasts, lam)
        self.healthy: BoolArray = state.i[:, HEALTHY] != 0
        # capacities saturate at ROOM_MAX like the kernel's room: exact wherever a request could reach them
        self.cap: IntArray = np.array([min(c, ROOM_MAX) for c in capacity_nwh(state)], dtype=np.int64)
        self.allow: dict[tuple[int, ...], BoolArray] = {}  # the few distinct allowed lists, memoised
        self.used: IntArray = np.zeros(R, dtype=np.int64)
        self.window: deque[tuple[float, int, int]] = deque()
        self._tab: NpTable | None = None
        self._static_ok: BoolArray = self.no_move

    def reset(self) -> None:
        """Empty every capacity window (and forget the region values, as a new kernel call does)."""
        self.used[:] = 0
        self.window.clear()
        self.reset_values()

    def reset_values(self) -> None:
        """Forget the region values: the next request computes them again (every call, like the kernel)."""
        self._tab = None

    def table(self, t: float) -> tuple[NpTable, BoolArray]:
        """The region values at ``t`` (recomputed when ``t`` leaves their interval) and the regions that
        pass the filters that do not depend on the request: healthy, with a price and a carbon value."""
        tab = self._tab
        if tab is None or not tab.lo <= t < tab.hi:
            tab = self._tab = self.values.at(t)
            self._static_ok = self.healthy & tab.valued
        return tab, self._static_ok

    def mask_and_score(
        self, row_f: list[float], row_i: list[int], words: list[int]
    ) -> tuple[BoolArray, FloatArray]:
        """The request's feasibility mask and its score per region (scores of masked regions are garbage).

        Evicts the capacity window up to the request's time first; books nothing.
        """
        t, e, budget, compute, payload, sbytes = row_f
        s, sr, pinned, m, e_n = row_i[:5]  # tenants and sessions are not benchmarked
        tab, static_ok = self.table(t)
        edge = t - self.window_s
        window, used = self.window, self.used
        while window and window[0][0] <= edge:
            _, j_old, e_old = window.popleft()
            used[j_old] -= e_old
        key = tuple(words)
        allow = self.allow.get(key)
        if allow is None:
            allow = self.allow[key] = np.array(allowed_row(key, self.R), dtype=np.bool_)
        lat = self.rtt[s] + compute
        if sr >= 0:
            moved = self.cols != sr
            lat = lat + np.where(moved, sbytes * 8.0 / (self.bw * 1e6), 0.0)
        else:
            moved = self.no_move
        ok = lat <= budget
        ok &= allow
        ok &= self.model_ok[m]
        ok &= static_ok
        ok &= used + e_n <= self.cap
        ok &= tab.fresh | self.home_row[s]
        if pinned:
            ok &= ~moved
        egr = payload * self.egress_home[s]
        if sr >= 0:
            egr = egr + sbytes * self.egress_b[sr]
        score = e * tab.unit + (egr + self.fixed_row[s])
        return ok, score

    def book(self, t: float, j: int, e_n: int) -> None:
        """Place ``e_n`` nano-Wh in region ``j`` at time ``t``."""
        self.window.append((t, j, e_n))
        self.used[j] += e_n

    def decide(self, req_f: FloatArray, req_i: IntArray, allow: IntArray) -> tuple[list[int], list[float]]:
        """Chosen region index (-1 when none is feasible) and its score (0.0 when rejected), per request."""
        choices: list[int] = []
        scores: list[float] = []
        self.reset_values()
        for row_f, row_i, words in zip(req_f.tolist(), req_i.tolist(), allow.tolist(), strict=True):
            ok, score = self.mask_and_score(row_f, row_i, words)
            masked = np.where(ok, score, np.inf)
            j = int(masked.argmin())
            if ok[j]:
                choices.append(j)
                scores.append(float(masked[j]))
                self.book(row_f[0], j, row_i[4])
            else:
                choices.append(-1)
                scores.append(0.0)
        return choices, scores


class LpRequestScorer:
    """The same mask and scores as ``NumpyRequestScorer``, then one HiGHS LP per request picks the region."""

    def __init__(self, plan: Plan, state: RegionState, forecasts: ForecastState) -> None:
        self.rows = NumpyRequestScorer(plan, state, forecasts)
        with stdout_silenced():
            self.highs: Any = highspy.Highs()  # type: ignore[no-untyped-call]  # highspy is untyped
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("dual_feasibility_tolerance", 1e-10)
        self.highs.setOptionValue("presolve", "off")  # nothing to presolve in one row; 2-3x faster per solve
        self.solves = 0
        self.objective_gap = 0.0  # largest |LP objective - score of the pick| / |score|, for the check

    def reset(self) -> None:
        """Empty every capacity window."""
        self.rows.reset()

    def decide(self, req_f: FloatArray, req_i: IntArray, allow: IntArray) -> tuple[list[int], list[float]]:
        """Chosen region index (-1 when none is feasible) and its score (0.0 when rejected), per request."""
        choices: list[int] = []
        scores: list[float] = []
        rows = self.rows
        rows.reset_values()
        for row_f, row_i, words in zip(req_f.tolist(), req_i.tolist(), allow.tolist(), strict=True):
            ok, score = rows.mask_and_score(row_f, row_i, words)
            cand = np.flatnonzero(ok)
            if cand.size == 0:
                choices.append(-1)
                scores.append(0.0)
                continue
            cost = score[cand]
            j = int(cand[self._solve(cost)])
            choices.append(j)
            scores.append(float(score[j]))
            rows.book(row_f[0], j, row_i[4])
        return choices, scores

    def _solve(self, cost: FloatArray) -> int:
        """Index into ``cost`` of the LP's pick: min cost . x, sum x = 1, x >= 0, pick = argmax x."""
        k = len(cost)
        scale = float(np.abs(cost).max()) or 1.0
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = k, 1
        lp.col_cost_ = cost / scale
        lp.col_lower_, lp.col_upper_ = np.zeros(k), np.full(k, _INF)
        lp.row_lower_, lp.row_upper_ = np.ones(1), np.ones(1)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.arange(k + 1, dtype=np.int32)
        lp.a_matrix_.index_ = np.zeros(k, dtype=np.int32)
        lp.a_matrix_.value_ = np.ones(k)
        h = self.highs
        h.passModel(lp)
        h.run()
        status = h.getModelStatus()
        if status != _OPTIMAL:
            raise RuntimeError(f"HiGHS: {h.modelStatusToString(status)} on a one-row LP with {k} columns")
        self.solves += 1
        x = np.asarray(h.getSolution().col_value, dtype=np.float64)
        pick = int(x.argmax())
        objective = float(h.getObjectiveValue()) * scale
        if cost[pick] != 0.0:
            self.objective_gap = max(self.objective_gap, abs(objective - cost[pick]) / abs(cost[pick]))
        return pick
