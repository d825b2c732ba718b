"""Periodic re-solve of capacity shares: the fleet LP and the capacity duals ``mu`` (docs/model.md).

With ``y[g, j] = demand_kw[g] * x[g, j]`` (kW) as the variables, so that demand only moves row bounds::

    min  sum_{g, j reachable} unit[g, j] * y[g, j]  +  penalty * sum_g v[g]
    s.t. sum_j y[g, j] + v[g] = demand_kw[g]    for every group g      (demand rows)
         sum_g y[g, j] <= capacity_kw[j]        for every region j     (capacity rows, dual mu_j >= 0)
         y, v >= 0; y[g, j] exists only where reachable[g, j]

Units: costs are USD per IT Wh and variables kW, so ``mu_j`` is USD per IT Wh: one more kW of capacity in
``j`` for an hour (1000 Wh) lowers the hourly objective by ``1000 * mu_j`` USD. The reported objective is USD
per hour (LP value x 1000), unserved penalty included.

HiGHS 1.16 facts relied on (checked when writing this; the first three are pinned by the tests):
- the row dual is d(objective)/d(row bound), so in a minimisation an active ``<=`` row has dual <= 0 and
  ``mu = -row_dual``;
- after changing only costs and row bounds, ``run()`` restarts the simplex from the kept basis (warm start,
  a few iterations instead of hundreds);
- ``time_limit = 0`` stops any run that needs a simplex iteration with status "Time limit reached";
- the dual feasibility tolerance is absolute (1e-7): with costs near 1e-4 USD/Wh HiGHS would stop up to
  1e-5 relative from the optimum, so costs are divided by their largest magnitude before they reach HiGHS
  (but by no less than penalty / 1e4: scaling by a unit cost of 1e-200 makes HiGHS return "Unknown");
- the primal feasibility tolerance is absolute too (1e-7): a 1e-7 kW group would be left at y = v = 0, so
  row bounds are divided by the largest demand (this leaves mu unchanged and scales the objective).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

import highspy
import numpy as np
import numpy.typing as npt

from router.tenantrows import TenantRows, has_rows, tenant_duals, tenant_lp

__all__ = [
    "BoolArray",
    "CapacityResolver",
    "FloatArray",
    "ResolveInput",
    "ResolveResult",
    "never_solved",
    "random_fleet",
    "stdout_silenced",
    "time_solves",
    "time_warm_solve",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_IndexArray = npt.NDArray[np.intp]

_INF: Final = float(highspy.kHighsInf)
_MS: Final = highspy.HighsModelStatus
#: kModelEmpty is HiGHS's answer for an LP without columns (no groups): trivially optimal, all duals 0.
_SOLVED: Final = (_MS.kOptimal, _MS.kModelEmpty)
#: Statuses after which the kept basis is still a good start; any other failure rebuilds the model.
_RESUMABLE: Final = (_MS.kTimeLimit, _MS.kIterationLimit)
#: HiGHS's default dual feasibility tolerance, in scaled cost units: duals this close to 0 are clipped.
_DUAL_TOL: Final = 1e-7
#: Largest scaled penalty: unit costs far below the penalty are not blown up to astronomic scaled costs.
_MAX_PENALTY: Final = 1e4


@dataclass(frozen=True, slots=True)
class ResolveInput:
    """One LP instance: G demand groups, R regions. ``unit`` need only be finite where ``reachable``."""

    group_keys: tuple[str, ...]  # identity of each group; same keys in the same order => same LP structure
    demand_kw: FloatArray  # (G,) IT demand of each group, kW, finite, >= 0
    unit_usd_per_wh: FloatArray  # (G, R) cost of one IT Wh of group g in region j, may be negative
    reachable: BoolArray  # (G, R) False where group g cannot use region j (hard mask)
    capacity_kw: FloatArray  # (R,) IT capacity, >= 0 (inf: no limit)
    #: the budgeted tenants' rows (router/tenantrows.py); None: no tenant row
    tenants: TenantRows | None = None


@dataclass(frozen=True, slots=True)
class ResolveResult:
    """Shares and capacity duals of one solve; arrays are read-only.

    A group with zero demand gets the marginal placement under the duals: share 1 in the reachable region of
    positive capacity with the lowest ``unit + mu`` (lowest index on ties) if that is <= the penalty, else
    unserved 1.
    """

    version: int  # increments on each successful solve; 0 = never solved (all-zero duals)
    ok: bool  # False when this is the last good result kept after a failed solve (or version 0)
    status: str  # "optimal", or the HiGHS status text / exception of the failed solve
    shares: FloatArray  # (G, R) x[g, j], rows sum to 1 - unserved, 0 where not reachable
    unserved_share: FloatArray  # (G,)
    mu_usd_per_wh: FloatArray  # (R,) >= 0, capacity duals
    objective_usd_per_h: float  # LP objective incl. unserved penalty, USD per hour
    solve_s: float  # wall time of the solve() call that returned this result
    warm: bool  # True when the solve reused the previous model and basis
    group_keys: tuple[str, ...]  # the groups of ``shares`` (those of the last good solve on failure)
    iterations: int = 0  # simplex iterations of the successful solve
    #: (K,) >= 0, the tenants' carbon-budget duals, USD per g (empty without tenant rows)
    nu_usd_per_g: FloatArray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True, slots=True)
class _Structure:
    """What a kept HiGHS model was built for: the y columns are the reachable pairs in row-major order."""

    group_keys: tuple[str, ...]
    reachable: BoolArray
    g_idx: _IndexArray
    j_idx: _IndexArray

    def matches(self, inp: ResolveInput) -> bool:
        return self.group_keys == inp.group_keys and np.array_equal(self.reachable, inp.reachable)


@contextlib.contextmanager
def stdout_silenced() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null for the duration (C libraries write there directly)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _frozen(a: FloatArray) -> FloatArray:
    a.setflags(write=False)
    return a


def _check_array(name: str, a: object, dtype: type, shape: tuple[int, ...]) -> None:
    if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
        got = f"{type(a).__name__} {a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        want = f"a {np.dtype(dtype)} array of shape {shape}"
        raise ValueError(f"ResolveInput.{name}: received {got}; expected {want}")


def _check_values(name: str, a: FloatArray, bad: BoolArray, expected: str) -> None:
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"ResolveInput.{name}{list(at)} = {float(a[at])!r}; expected {expected}")


def _validate(inp: ResolveInput, R: int) -> int:
    """Raise ValueError naming the field, the value and what was expected; return G."""
    keys = inp.group_keys
    distinct_str = (
        isinstance(keys, tuple) and all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys)
    )
    if not distinct_str:
        raise ValueError(f"ResolveInput.group_keys = {keys!r:.200}; expected a tuple of distinct str")
    G = len(keys)
    _check_array("demand_kw", inp.demand_kw, np.float64, (G,))
    _check_array("unit_usd_per_wh", inp.unit_usd_per_wh, np.float64, (G, R))
    _check_array("reachable", inp.reachable, np.bool_, (G, R))
    _check_array("capacity_kw", inp.capacity_kw, np.float64, (R,))
    d, c, u = inp.demand_kw, inp.capacity_kw, inp.unit_usd_per_wh
    _check_values("demand_kw", d, ~(np.isfinite(d) & (d >= 0)), "a finite number >= 0")
    _check_values("capacity_kw", c, np.isnan(c) | (c < 0), "a number >= 0 (inf: no limit)")
    _check_values("unit_usd_per_wh", u, inp.reachable & ~np.isfinite(u), "a finite number where reachable")
    if inp.tenants is not None:
        _check_array("tenants.group_tenant", inp.tenants.group_tenant, np.int64, (G,))
        _check_array("tenants.g_per_wh", inp.tenants.g_per_wh, np.float64, (G, R))
    return G


def _row_bounds(inp: ResolveInput, kw: float) -> tuple[FloatArray, FloatArray]:
    """Row bounds in units of ``kw``: demand rows are equalities, capacity rows ``<= capacity_kw``.

    Capacity above twice the total demand can never bind; it is capped there so that no bound overflows.
    """
    demand, R = inp.demand_kw / kw, len(inp.capacity_kw)
    capacity = np.minimum(inp.capacity_kw, kw * (2 * len(demand) + 1)) / kw
    return np.concatenate([demand, np.full(R, -_INF)]), np.concatenate([demand, capacity])


def never_solved(R: int) -> ResolveResult:
    """The version-0 result: no groups, zero duals."""
    return ResolveResult(
        version=0, ok=False, status="not solved yet", shares=_frozen(np.zeros((0, R))),
        unserved_share=_frozen(np.zeros(0)), mu_usd_per_wh=_frozen(np.zeros(R)), objective_usd_per_h=0.0,
        solve_s=0.0, warm=False, group_keys=(),
    )  # fmt: skip


def _build_lp(s: _Structure, cost: FloatArray, inp: ResolveInput, kw: float) -> Any:  # highspy is untyped
    """Columns: y (reachable pairs, 2 entries each: demand row g, capacity row G + j), then v (1 entry)."""
    G, n = len(s.group_keys), len(s.g_idx)
    index = np.empty(2 * n + G, dtype=np.int32)
    index[0 : 2 * n : 2], index[1 : 2 * n : 2], index[2 * n :] = s.g_idx, G + s.j_idx, np.arange(G)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n + G, G + len(inp.capacity_kw)
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, np.zeros(n + G), np.full(n + G, _INF)
    lp.row_lower_, lp.row_upper_ = _row_bounds(inp, kw)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.concatenate([np.arange(0, 2 * n, 2), 2 * n + np.arange(G + 1)]).astype(np.int32)
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = np.ones(2 * n + G)
    return lp


class CapacityResolver:
    """Solves the capacity LP on demand, keeping the HiGHS model and basis between solves.

    Never raises for solver trouble: a failed solve (time limit, numerical trouble, an exception from
    highspy) returns the last good result with ``ok=False``. Invalid input raises ValueError.
    """

    def __init__(self, n_regions: int, *, penalty_usd_per_wh: float, time_limit_s: float = 1.0) -> None:
        if isinstance(n_regions, bool) or not isinstance(n_regions, int | np.integer) or n_regions < 1:
            raise ValueError(f"n_regions = {n_regions!r}; expected an int >= 1")
        if not (math.isfinite(penalty_usd_per_wh) and penalty_usd_per_wh >= 0):
            raise ValueError(f"penalty_usd_per_wh = {penalty_usd_per_wh!r}; expected a finite number >= 0")
        self._R = int(n_regions)
        self._penalty = float(penalty_usd_per_wh)
        # highspy ships no annotations: Highs() is an untyped call and the object is used as Any
        with stdout_silenced():  # HiGHS prints a banner on fd 1 at construction; `score` writes JSONL there
            self._highs: Any = highspy.Highs()  # type: ignore[no-untyped-call]
        self._highs.setOptionValue("output_flag", False)
        self.time_limit_s = time_limit_s
        self._structure: _Structure | None = None
        self._last = never_solved(self._R)

    @property
    def last(self) -> ResolveResult:
        """The last good result (version 0 with zero duals before the first successful solve)."""
        return self._last

    @property
    def time_limit_s(self) -> float:
        """HiGHS time limit per solve, seconds (inf for none); may be changed between solves."""
        return self._time_limit_s

    @time_limit_s.setter
    def time_limit_s(self, value: float) -> None:
        if math.isnan(value) or value < 0:
            raise ValueError(f"time_limit_s = {value!r}; expected a number >= 0 (inf for no limit)")
        self._time_limit_s = float(value)
        self._highs.setOptionValue("time_limit", float(value))

    def solve(self, inp: ResolveInput) -> ResolveResult:
        """Solve the LP for ``inp``; warm-start when the group keys and reachability are unchanged."""
        started = time.perf_counter()
        G = _validate(inp, self._R)
        kept = self._structure
        tenant_rows = has_rows(inp.tenants)  # their coefficients change with the signals: built afresh
        warm = kept is not None and kept.matches(inp) and not tenant_rows
        if kept is not None and warm:
            s = kept
        else:
            g_idx, j_idx = np.nonzero(inp.reachable)
            s = _Structure(inp.group_keys, inp.reachable.copy(), g_idx, j_idx)
        unit = inp.unit_usd_per_wh[s.g_idx, s.j_idx]
        # costs reach HiGHS divided by their largest magnitude, the penalty at most _MAX_PENALTY after it
        scale = max(float(np.abs(unit).max(initial=0.0)), self._penalty / _MAX_PENALTY) or 1.0
        cost = np.concatenate([unit, np.full(G, self._penalty)]) / scale
        kw = float(inp.demand_kw.max(initial=0.0)) or 1.0  # rows reach HiGHS in units of the largest demand
        h = self._highs
        self._structure = None  # set again below only if the model is known to be consistent
        try:
            if warm:
                rows = np.arange(G + self._R, dtype=np.int32)
                statuses = [
                    h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost),
                    h.changeRowsBounds(len(rows), rows, *_row_bounds(inp, kw)),
                ]
            elif tenant_rows:
                assert inp.tenants is not None
                lp = tenant_lp(s.g_idx, s.j_idx, cost, _row_bounds(inp, kw), inp.tenants, kw)
                statuses = [h.passModel(lp)]
            else:
                statuses = [h.passModel(_build_lp(s, cost, inp, kw))]
            statuses.append(h.run())
            if highspy.HighsStatus.kError in statuses:
                return self._failed(f"HiGHS call returned an error: {statuses}", started, warm)
            model_status = h.getModelStatus()
            if model_status not in _SOLVED:
                if model_status in _RESUMABLE:
                    self._structure = s
                return self._failed(h.modelStatusToString(model_status), started, warm)
            solution, info = h.getSolution(), h.getInfo()
            col = np.asarray(solution.col_value, dtype=np.float64)
            mu_scaled = -np.asarray(solution.row_dual, dtype=np.float64)[G : G + self._R]
            nu = tenant_duals(solution.row_dual, G + self._R, scale, inp.tenants)
            objective, iterations = float(info.objective_function_value), int(info.simplex_iteration_count)
        except Exception as exc:  # highspy raises RuntimeError, ValueError, pybind11 casts: no common base
            return self._failed(f"highspy raised {type(exc).__name__}: {exc}", started, warm)
        if G and (mu_scaled < -_DUAL_TOL).any():
            return self._failed(f"capacity dual of wrong sign: {(-mu_scaled).tolist()!r:.200}", started, warm)
        self._structure = None if tenant_rows else s
        mu = np.maximum(mu_scaled, 0.0) * scale if G else np.zeros(self._R)
        shares, unserved = self._shares(inp, s, col, mu)
        self._last = ResolveResult(
            version=self._last.version + 1, ok=True, status="optimal", shares=_frozen(shares),
            unserved_share=_frozen(unserved), mu_usd_per_wh=_frozen(mu),
            objective_usd_per_h=objective * scale * kw * 1e3, solve_s=time.perf_counter() - started,
            warm=warm, group_keys=inp.group_keys, iterations=iterations, nu_usd_per_g=_frozen(nu),
        )  # fmt: skip
        return self._last

    def _failed(self, status: str, started: float, warm: bool) -> ResolveResult:
        return replace(self._last, ok=False, status=status, solve_s=time.perf_counter() - started, warm=warm)

    def _shares(
        self, inp: ResolveInput, s: _Structure, col: FloatArray, mu: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """x = y / (sum_j y + v) and u = v / (sum_j y + v) per group; marginal placement where that is 0."""
        G, n = len(inp.group_keys), len(s.g_idx)
        y = np.zeros((G, self._R))
        y[s.g_idx, s.j_idx] = np.maximum(col[:n], 0.0)
        v = np.maximum(col[n:], 0.0)
        total = y.sum(axis=1) + v
        served = (inp.demand_kw > 0) & (total > 0)
        shares = np.where(served[:, None], y / np.where(served, total, 1.0)[:, None], 0.0)
        unserved = np.where(served, v / np.where(served, total, 1.0), 0.0)
        price = np.where(inp.reachable & (inp.capacity_kw > 0), inp.unit_usd_per_wh + mu, np.inf)
        for g in np.flatnonzero(~served):
            j = int(np.argmin(price[g]))
            if price[g, j] <= self._penalty:
                shares[g, j] = 1.0
            else:
                unserved[g] = 1.0
        return shares, unserved


def random_fleet(G: int, R: int, rng: np.random.Generator) -> ResolveInput:
    """A random LP input: G groups x R regions, ~60 % of pairs reachable, capacity ~1.2 x demand."""
    demand = rng.uniform(1.0, 100.0, G)
    return ResolveInput(
        tuple(f"g{g}" for g in range(G)), demand, rng.normal(1e-4, 5e-5, (G, R)), rng.random((G, R)) < 0.6,
        rng.uniform(0.2, 2.2, R) * demand.sum() / R,
    )  # fmt: skip


def time_solves(G: int, R: int, repeats: int, seed: object = 0) -> tuple[float, list[float]]:
    """(cold_s, every warm_s) of solve() on a ``random_fleet``."""
    rng = np.random.default_rng(seed)  # type: ignore[arg-type]  # ints and int sequences both seed it
    inp = random_fleet(G, R, rng)
    resolver = CapacityResolver(R, penalty_usd_per_wh=1e-3, time_limit_s=math.inf)
    t0 = time.perf_counter()
    first = resolver.solve(inp)
    cold = time.perf_counter() - t0
    if not first.ok:
        raise RuntimeError(f"benchmark cold solve failed: {first.status}")
    warm: list[float] = []
    for _ in range(repeats):
        step = replace(
            inp,
            demand_kw=inp.demand_kw * rng.uniform(0.9, 1.1, G),
            unit_usd_per_wh=inp.unit_usd_per_wh * rng.uniform(0.95, 1.05, (G, R)),
        )
        t0 = time.perf_counter()
        res = resolver.solve(step)
        warm.append(time.perf_counter() - t0)
        if not (res.ok and res.warm):
            raise RuntimeError(f"benchmark solve was not a successful warm solve: {res.status}")
    return cold, warm


def time_warm_solve(G: int, R: int, repeats: int) -> tuple[float, float]:
    """(cold_s, median_warm_s) of solve() on a random fleet (see ``time_solves``)."""
    cold, warm = time_solves(G, R, repeats)
    return cold, float(np.median(warm)) if warm else math.nan
