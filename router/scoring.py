"""The typed wrapper around the compiled kernel: structures checked, one call per batch, indices returned.

``Scorer`` owns the live kernel inputs (plan, region state, forecasts, capacity windows). ``decide`` checks
every array's dtype, shape and layout (``router.kernel.structs.check``), calls ``router.kernel`` once for the
whole batch and returns the decision columns; ``router.encode`` turns them into placement messages.
Finiteness of the request and region values, and room in the capacity ring buffers, are checked by the
kernel itself before it changes anything (one pass in compiled code instead of a NumPy temporary per
array): it returns a code, and ``decide`` raises ValueError or grows the buffers and calls again.
"""

from __future__ import annotations

import math
import operator
from typing import NamedTuple

import numpy as np

from router import kernel
from router.budgets import TenantBudgets
from router.forecast import ForecastState
from router.kernel.columns import (
    FC_META_COLS,
    N_FILTERS,
    REG_F_COLS,
    REG_I_COLS,
    REQ_F_COLS,
    REQ_I_COLS,
    SESSION,
    TEN_F_COLS,
    TEN_I_COLS,
)
from router.kernel.structs import check
from router.plan import BoolArray, FloatArray, IntArray, Plan, RequestArrays
from router.sessions import MAX_SESSIONS, SessionTable
from router.state import VALUE_HISTORY, CapacityWindows, RegionState

__all__ = ["Decisions", "Scorer", "warm_up"]


class Decisions(NamedTuple):
    """Kernel output for one batch; columns as in ``router.kernel.columns`` (a named tuple: built once per
    batch, it costs a third of a frozen dataclass)."""

    out_f: FloatArray
    out_i: IntArray
    removed: IntArray
    signals_version: int
    #: each region's dual term per IT Wh as the kernel used it (``dual_scale * mu_j``): the explanations'
    #: ``dual_usd``
    mu: FloatArray
    #: each configured tenant's carbon dual as the kernel used it (USD per g): ``dual_carbon_usd``
    nu: FloatArray | None = None


_F64, _I64 = np.dtype(np.float64), np.dtype(np.int64)
_OUT_F_COLS, _OUT_I_COLS = len(kernel.OUT_FLOATS), len(kernel.OUT_INTS)


def _not_finite(name: str) -> ValueError:
    return ValueError(f"kernel input {name} holds NaN or inf; expected finite numbers")


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel, so the first message never pays for it."""
    kernel.warm()


class Scorer:
    """Mask -> score -> pick for batches of requests against the current region state."""

    #: the state's structures for the compiled entry, built at the first ``_inputs`` and when a view changes
    _kernel_inputs: kernel.KernelInputs

    def __init__(
        self, plan: Plan, state: RegionState | None = None, forecasts: ForecastState | None = None
    ) -> None:
        self.plan = plan
        self.state = state if state is not None else RegionState(plan)
        self.forecasts = forecasts if forecasts is not None else ForecastState(plan)
        self.windows = CapacityWindows(plan.n_regions)
        self.budgets = TenantBudgets(plan.topology.tenants)
        self.sessions = SessionTable(MAX_SESSIONS)
        self._fc_checked = -1
        self._views: tuple[object, ...] = (None,) * 6
        self._plan_k = plan.kernel()  # the plan's arrays are made once, at start-up

    def _inputs(self) -> kernel.KernelInputs:
        """The plan and the state's structures as the one ``KernelInputs`` the compiled entry takes
        (router/kernel/inputs.py): region state, forecasts, capacity windows, tenant budgets, tenant windows,
        sessions. Each owner keeps one view until it replaces an array (router/state.py, router/forecast.py,
        router/sessions.py), so the inputs, and the checks of the region and tenant arrays, are made again
        only when a view is new; the forecast arrays are checked again when the forecast state changed."""
        b = self.budgets
        views = (
            self.state.kernel(),
            self.forecasts.kernel(),
            self.windows.kernel(),
            b.kernel(),
            b.windows.kernel(),
            self.sessions.kernel(),
        )
        if not all(map(operator.is_, views, self._views)):
            if views[0] is not self._views[0] or views[3] is not self._views[3]:
                self._check_region_arrays(self.plan.n_regions, VALUE_HISTORY)
            reg, fc, win, ten, twin, ses = views
            self._kernel_inputs = kernel.kernel_inputs(self._plan_k, reg, fc, win, ten, twin, ses)
            self._views = views
        fc_state = self.forecasts
        if fc_state.version != self._fc_checked:
            R, P = self.plan.n_regions, fc_state.ts.shape[1]
            check("fc.ts", fc_state.ts, np.float64, (R, P))
            check("fc.val", fc_state.val, np.float64, (2, R, P))
            check("fc.has", fc_state.has, np.bool_, (2, R, P))
            check("fc.n", fc_state.n, np.int64, (R,))
            check("fc.meta", fc_state.meta, np.float64, (R, FC_META_COLS))
            self._fc_checked = fc_state.version
        return self._kernel_inputs

    def _check_region_arrays(self, R: int, H: int) -> None:
        st = self.state
        check("reg.f", st.f, np.float64, (R, REG_F_COLS))
        check("reg.i", st.i, np.int64, (R, REG_I_COLS))
        for name in ("val", "val_ts", "val_end"):
            check(f"reg.{name}", getattr(st, name), np.float64, (2, R, H))
        check("reg.val_n", st.val_n, np.int64, (2, R))
        check("reg.val_dropped", st.val_dropped, np.int64, (2, R))
        check("reg.cap_hi", st.cap_hi, np.int64, (R,))
        check("reg.cap_lo", st.cap_lo, np.int64, (R,))
        K = len(self.budgets.ids)
        check("ten.f", self.budgets.f, np.float64, (K, TEN_F_COLS))
        check("ten.i", self.budgets.i, np.int64, (K, TEN_I_COLS))

    def _check_batch(self, batch: RequestArrays) -> None:
        n, f, i, allow = len(batch), batch.f, batch.i, batch.allow
        W = self.plan.n_words
        if not (  # the common case in one expression; ``check`` names what is wrong
            f.dtype == _F64
            and i.dtype == _I64
            and allow.dtype == _I64
            and f.shape == (n, REQ_F_COLS)
            and i.shape == (n, REQ_I_COLS)
            and allow.shape == (n, W)
            and f.flags.c_contiguous
            and i.flags.c_contiguous
            and allow.flags.c_contiguous
        ):
            check("req.f", f, np.float64, (n, REQ_F_COLS))
            check("req.i", i, np.int64, (n, REQ_I_COLS))
            check("req.allow", allow, np.int64, (n, W))

    def decide(self, batch: RequestArrays, horizon: float = math.inf) -> Decisions:
        """Place every request of the batch, in order, booking capacity as it goes.

        ``horizon`` is the router's clock (live) or inf (replay): the capacity windows slide with
        ``min(t, horizon)`` (router/kernel/_windows.py).
        """
        n, st = len(batch), self.state
        self._check_batch(batch)
        if n and batch.sessions:  # before the inputs are taken: a new session may grow the table
            batch.i[:, SESSION] = self.sessions.assign(batch.sessions)
        # every element is written by the kernel; it checks finiteness and window room before any change
        out = (
            np.empty((n, _OUT_F_COLS), dtype=np.float64),
            np.empty((n, _OUT_I_COLS), dtype=np.int64),
            np.empty((n, N_FILTERS), dtype=np.int64),
        )
        if n:
            req = (batch.f, batch.i, batch.allow)
            while True:
                code = kernel.decide_batch(req, self._inputs(), horizon, out)
                if code != kernel.WINDOWS_FULL:
                    break
                self.windows.reserve(n)
                self.budgets.windows.reserve(n)
            if code == kernel.BAD_REQ_F:
                raise _not_finite("req.f")
            if code == kernel.BAD_REG_F:
                raise _not_finite("reg")
        return Decisions(
            out_f=out[0],
            out_i=out[1],
            removed=out[2],
            signals_version=st.version,
            mu=st.mu,
            nu=self.budgets.nu(),
        )

    def explain(self, batch: RequestArrays, horizon: float = math.inf) -> tuple[FloatArray, IntArray]:
        """For the first request of ``batch``, decided next: per region, the columns of
        ``router.kernel.EXPLAIN_FLOATS`` (latency, the score's parts, the score) and ``EXPLAIN_INTS`` (the
        first filter that removed it, 0: none; valued; signal source). Slides the capacity windows to its
        time, as deciding it would."""
        R = self.plan.n_regions
        self._check_batch(batch)
        self._inputs()
        if not np.isfinite(batch.f).all():
            raise _not_finite("req.f")
        rows_f = np.zeros((R, len(kernel.EXPLAIN_FLOATS)), dtype=np.float64)
        rows_i = np.zeros((R, len(kernel.EXPLAIN_INTS)), dtype=np.int64)
        kernel.explain_one_raw(
            batch.kernel(),
            self.plan.kernel(),
            self.state.kernel(),
            self.forecasts.kernel(),
            self.windows.kernel(),
            self.budgets.kernel(),
            self.budgets.windows.kernel(),
            horizon,
            0,
            rows_f,
            rows_i,
        )
        return rows_f, rows_i

    def candidate_costs(self, batch: RequestArrays) -> tuple[FloatArray, BoolArray, FloatArray]:
        """Per (request, region): score without the dual term, reachability, and marginal carbon per IT Wh
        (for the re-solve)."""
        n, R = len(batch), self.plan.n_regions
        self._check_batch(batch)
        self._inputs()
        if not np.isfinite(batch.f).all():
            raise _not_finite("req.f")
        cost = np.zeros((n, R), dtype=np.float64)
        reach = np.zeros((n, R), dtype=np.bool_)
        carb = np.zeros((n, R), dtype=np.float64)
        if n:
            req, plan, reg, fc = (
                batch.kernel(),
                self.plan.kernel(),
                self.state.kernel(),
                self.forecasts.kernel(),
            )
            kernel.candidate_costs_raw(req, plan, reg, fc, cost, reach, carb)
        return cost, reach, carb
