"""The structures the kernel takes: named tuples of contiguous NumPy arrays (Numba reads them as records).

``router.scoring`` builds them from the plan, the region state, the forecasts and the capacity windows and
checks every array's dtype, shape and layout before the call (``check``); column names are in
``router.kernel.columns``. Shapes: N requests, R regions, W = ceil(R / 64) mask words, S service nodes,
M models, H values kept per region and kind, P forecast points, C window slots, K configured tenants,
Q session slots.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = [
    "BoolArray",
    "FloatArray",
    "Forecasts",
    "IntArray",
    "Outputs",
    "PlanArrays",
    "Regions",
    "Requests",
    "Sessions",
    "Tenants",
    "Windows",
    "check",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Requests(NamedTuple):
    """A batch, in event-time order."""

    f: FloatArray  # (N, REQ_F_COLS)
    i: IntArray  # (N, REQ_I_COLS)
    allow: IntArray  # (N, W): the regions the request's allowed_jurisdictions admit, as bit words


class PlanArrays(NamedTuple):
    """What the topology fixes at start-up."""

    rtt: FloatArray  # (S, R) ms
    home: IntArray  # (S,) region index
    egress_b: FloatArray  # (R, R) USD per byte moved, zero on the diagonal
    model_bits: IntArray  # (M + 1, W): regions serving each model (row 0: no model named, all)
    scalars: FloatArray  # (SCALARS,)


class Regions(NamedTuple):
    """The live region state: constants, health, duals, the history of signalled values, capacity."""

    f: FloatArray  # (R, REG_F_COLS)
    i: IntArray  # (R, REG_I_COLS)
    #: per value kind (PRICE, CARBON) and region, the last H values in increasing ts: value, ts, and
    #: ``end`` (the value is fresh for ``ts <= t < end``, ``router.state.valid_end``)
    val: FloatArray  # (2, R, H)
    val_ts: FloatArray  # (2, R, H)
    val_end: FloatArray  # (2, R, H)
    val_n: IntArray  # (2, R) values held
    val_dropped: IntArray  # (2, R) 1 when older values were dropped to keep H
    #: capacity per window in nano-Wh as two words, ``hi * 2**52 + lo`` (a limit beyond int64 stays exact)
    cap_hi: IntArray  # (R,)
    cap_lo: IntArray  # (R,)


class Forecasts(NamedTuple):
    """The latest forecast per region (``router.forecast``)."""

    ts: FloatArray  # (R, P) point start times, padded
    val: FloatArray  # (2, R, P) point values per kind
    has: BoolArray  # (2, R, P) the point carries that kind
    n: IntArray  # (R,) points (0: no forecast)
    meta: FloatArray  # (R, FC_META_COLS)


class Windows(NamedTuple):
    """Per-region ring buffers of the IT energy placed in the sliding capacity window."""

    ts: FloatArray  # (R, C)
    e: IntArray  # (R, C) nano-Wh
    head: IntArray  # (R,)
    len: IntArray  # (R,)
    sum_hi: IntArray  # (R,) the window's sum, ``sum_hi * 2**52 + sum_lo`` nano-Wh, 0 <= sum_lo < 2**52
    sum_lo: IntArray  # (R,)
    next_expiry: FloatArray  # (1,) oldest entry ts over all regions (a large sentinel when empty)


class Tenants(NamedTuple):
    """The configured tenants' budgets (``router.budgets``); their carbon windows are a ``Windows`` with one
    row per tenant, in micro-grams."""

    f: FloatArray  # (K, TEN_F_COLS) window_s, the dual nu (USD per g)
    i: IntArray  # (K, TEN_I_COLS) reject (0/1), the budget as two words of micro-grams


class Sessions(NamedTuple):
    """The sticky sessions' table (``router.sessions``): one slot per session."""

    f: FloatArray  # (Q, SES_F_COLS) since, last
    i: IntArray  # (Q, SES_I_COLS) region (-1: none)


class Outputs(NamedTuple):
    """One row per request (columns in router.kernel.columns)."""

    f: FloatArray  # (N, len(OUT_FLOATS))
    i: IntArray  # (N, len(OUT_INTS))
    removed: IntArray  # (N, N_FILTERS) regions each filter removed


def check(name: str, arr: np.ndarray, dtype: type, shape: tuple[int, ...]) -> None:
    """Refuse an array of the wrong dtype, shape or memory layout (finiteness is checked in the kernel)."""
    if arr.dtype != dtype or arr.shape != shape or not arr.flags.c_contiguous:
        raise TypeError(
            f"kernel input {name}: got {arr.dtype}{arr.shape}, expected {dtype.__name__}{shape} C-order"
        )
