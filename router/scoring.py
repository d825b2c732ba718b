"""The typed wrapper around the compiled kernel: arrays in a fixed order, validated, one call per batch.

``Scorer`` owns the live kernel inputs (plan, region state, capacity windows). ``decide`` checks dtype,
shape and finiteness, calls ``router.kernel`` once for the whole batch, and returns the raw decision arrays;
``router.encode`` turns them into Placement messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router import kernel
from router.plan import BoolArray, FloatArray, IntArray, Plan, RequestArrays
from router.state import CapacityWindows, RegionState

__all__ = ["Decisions", "Scorer", "warm_up"]


@dataclass(frozen=True, slots=True)
class Decisions:
    """Kernel output for one batch; columns as in ``kernel.OUT_FLOATS`` / ``OUT_INTS``."""

    out_f: FloatArray
    out_i: IntArray
    removed: IntArray
    signals_version: int


def _check(name: str, arr: np.ndarray, dtype: type, shape: tuple[int, ...]) -> None:
    if arr.dtype != dtype or arr.shape != shape or not arr.flags.c_contiguous:
        raise TypeError(
            f"kernel input {name}: got {arr.dtype}{arr.shape}, expected {dtype.__name__}{shape} C-order"
        )
    if arr.dtype == np.float64 and not np.isfinite(arr).all():
        raise ValueError(f"kernel input {name} holds NaN or inf; expected finite numbers")


def warm_up() -> None:
    """Compile (or load from the on-disk cache) every kernel, so the first message never pays for it."""
    kernel._warm()


class Scorer:
    """Mask -> score -> pick for batches of requests against the current region state."""

    def __init__(self, plan: Plan, state: RegionState | None = None) -> None:
        self.plan = plan
        self.state = state if state is not None else RegionState(plan)
        self.windows = CapacityWindows(plan.n_regions)

    def decide(self, batch: RequestArrays) -> Decisions:
        """Place every request of the batch, in order, booking capacity as it goes."""
        n, p, st = len(batch), self.plan, self.state
        R = p.n_regions
        _check("req_f", batch.f, np.float64, (n, 6))
        _check("req_i", batch.i, np.int64, (n, 6))
        _check("reg_f", st.f, np.float64, (R, 6))
        self.windows.reserve(n)
        w = self.windows
        out_f = np.zeros((n, len(kernel.OUT_FLOATS)), dtype=np.float64)
        out_i = np.zeros((n, len(kernel.OUT_INTS)), dtype=np.int64)
        removed = np.zeros((n, len(kernel.FILTER_NAMES)), dtype=np.int64)
        if n:
            kernel._decide_batch(
                batch.f,
                batch.i,
                p.rtt,
                p.home,
                p.egress_per_byte,
                p.allow.array,
                p.model_ok,
                st.f,
                st.i,
                st.cap_nwh,
                p.scalars,
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
        return Decisions(out_f=out_f, out_i=out_i, removed=removed, signals_version=st.version)

    def candidate_costs(self, batch: RequestArrays) -> tuple[FloatArray, BoolArray]:
        """Per (request, region): score without the dual term, and reachability (for the re-solve)."""
        n, p, st = len(batch), self.plan, self.state
        _check("req_f", batch.f, np.float64, (n, 6))
        cost = np.zeros((n, p.n_regions), dtype=np.float64)
        reach = np.zeros((n, p.n_regions), dtype=np.bool_)
        if n:
            kernel._candidate_costs(
                batch.f,
                batch.i,
                p.rtt,
                p.home,
                p.egress_per_byte,
                p.allow.array,
                p.model_ok,
                st.f,
                st.i,
                p.scalars,
                cost,
                reach,
            )
        return cost, reach
