"""The typed wrapper around the compiled kernel: arrays in a fixed order, validated, one call per batch.

``Scorer`` owns the live kernel inputs (plan, region state, capacity windows). ``decide`` checks dtype,
shape and layout, calls ``router.kernel`` once for the whole batch, and returns the raw decision arrays;
``router.encode`` turns them into Placement messages. Finiteness of the request and region values, and room
in the capacity ring buffers, are checked by the kernel itself before it changes anything (one pass in
compiled code instead of a NumPy temporary per array): it returns a code, and ``decide`` raises ValueError
or grows the buffers and calls again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router import kernel
from router.forecast import ForecastState
from router.plan import BoolArray, FloatArray, IntArray, Plan, RequestArrays
from router.state import REG_F_COLS, REG_I_COLS, CapacityWindows, RegionState

__all__ = ["Decisions", "Scorer", "warm_up"]


@dataclass(frozen=True, slots=True)
class Decisions:
    """Kernel output for one batch; columns as in ``kernel.OUT_FLOATS`` / ``OUT_INTS``."""

    out_f: FloatArray
    out_i: IntArray
    removed: IntArray
    signals_version: int


def _check(name: str, arr: np.ndarray, dtype: type, shape: tuple[int, ...]) -> None:
    """Refuse an array of the wrong dtype, shape or memory layout (finiteness is checked in the kernel)."""
    if arr.dtype != dtype or arr.shape != shape or not arr.flags.c_contiguous:
        raise TypeError(
            f"kernel input {name}: got {arr.dtype}{arr.shape}, expected {dtype.__name__}{shape} C-order"
        )


def _not_finite(name: str) -> ValueError:
    return ValueError(f"kernel input {name} holds NaN or inf; expected finite numbers")


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel, so the first message never pays for it."""
    kernel._warm()


class Scorer:
    """Mask -> score -> pick for batches of requests against the current region state."""

    def __init__(
        self, plan: Plan, state: RegionState | None = None, forecasts: ForecastState | None = None
    ) -> None:
        self.plan = plan
        self.state = state if state is not None else RegionState(plan)
        self.forecasts = forecasts if forecasts is not None else ForecastState(plan)
        self.windows = CapacityWindows(plan.n_regions)
        self._fc_checked = -1

    def _check_region_arrays(self) -> None:
        """reg_f per batch (as before); the forecast arrays only when the forecast state changed."""
        R, st, fc = self.plan.n_regions, self.state, self.forecasts
        _check("reg_f", st.f, np.float64, (R, REG_F_COLS))
        if fc.version == self._fc_checked:
            return
        P = fc.ts.shape[1]
        _check("reg_i", st.i, np.int64, (R, REG_I_COLS))
        _check("fc_ts", fc.ts, np.float64, (R, P))
        _check("fc_val", fc.val, np.float64, (2, R, P))
        _check("fc_has", fc.has, np.bool_, (2, R, P))
        _check("fc_n", fc.n, np.int64, (R,))
        _check("fc_meta", fc.meta, np.float64, (R, 3))
        self._fc_checked = fc.version

    def plan_arrays(self) -> tuple[FloatArray, IntArray, FloatArray, BoolArray, BoolArray]:
        """The plan's kernel arguments, in the kernel's order: rtt, home, egress per byte, allow, model_ok."""
        p = self.plan
        return p.rtt, p.home, p.egress_per_byte, p.allow.array, p.model_ok

    def forecast_arrays(self) -> tuple[FloatArray, FloatArray, BoolArray, IntArray, FloatArray]:
        """The forecasts' kernel arguments, in the kernel's order: ts, val, has, n, meta."""
        fc = self.forecasts
        return fc.ts, fc.val, fc.has, fc.n, fc.meta

    def decide(self, batch: RequestArrays) -> Decisions:
        """Place every request of the batch, in order, booking capacity as it goes."""
        n, p, st = len(batch), self.plan, self.state
        _check("req_f", batch.f, np.float64, (n, 6))
        _check("req_i", batch.i, np.int64, (n, 6))
        self._check_region_arrays()
        # every element is written by the kernel; it checks finiteness and window room before any change
        out_f = np.empty((n, len(kernel.OUT_FLOATS)), dtype=np.float64)
        out_i = np.empty((n, len(kernel.OUT_INTS)), dtype=np.int64)
        removed = np.empty((n, len(kernel.FILTER_NAMES)), dtype=np.int64)
        if n:
            while True:
                w = self.windows
                code = kernel._decide_batch(
                    batch.f,
                    batch.i,
                    *self.plan_arrays(),
                    st.f,
                    st.i,
                    st.cap_nwh,
                    p.scalars,
                    *self.forecast_arrays(),
                    w.ts,
                    w.e,
                    w.head,
                    w.len,
                    w.sum,
                    w.next_expiry,
                    out_f,
                    out_i,
                    removed,
                )
                if code != kernel.WINDOWS_FULL:
                    break
                w.reserve(n)
            if code == kernel.BAD_REQ_F:
                raise _not_finite("req_f")
            if code == kernel.BAD_REG_F:
                raise _not_finite("reg_f")
        return Decisions(out_f=out_f, out_i=out_i, removed=removed, signals_version=st.version)

    def candidate_costs(self, batch: RequestArrays) -> tuple[FloatArray, BoolArray]:
        """Per (request, region): score without the dual term, and reachability (for the re-solve)."""
        n, p, st = len(batch), self.plan, self.state
        _check("req_f", batch.f, np.float64, (n, 6))
        self._check_region_arrays()
        if not np.isfinite(batch.f).all():
            raise _not_finite("req_f")
        cost = np.zeros((n, p.n_regions), dtype=np.float64)
        reach = np.zeros((n, p.n_regions), dtype=np.bool_)
        if n:
            kernel._candidate_costs(
                batch.f,
                batch.i,
                *self.plan_arrays(),
                st.f,
                st.i,
                p.scalars,
                *self.forecast_arrays(),
                cost,
                reach,
            )
        return cost, reach
