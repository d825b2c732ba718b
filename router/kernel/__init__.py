"""The compiled mask -> score -> pick kernel (docs/model.md), one call per batch of requests.

Every compiled function is private, ``@njit`` with the flags of ``router.kernel._flags`` (``NO_RC_FLAGS``:
no reference counting, for everything but the two entry points that allocate), and takes only the named
tuples of contiguous NumPy arrays of ``router.kernel.structs`` and scalars; the columns are named in
``router.kernel.columns``. The modules follow the model's order: ``_values`` (each region's price and
carbon at a time), ``_mask`` (the filters), ``_score`` (the score, written once), ``_pick`` (the pick rules:
the lowest score and the runner-up, or a baseline of ``compare``), ``_decide`` (the batch loop: decide and
book), ``_windows`` (the capacity windows) and ``_explain`` (one request, every region). ``router.scoring``
is the typed wrapper that builds the inputs, validates them and maps indices back to ids; nothing else calls
the compiled functions, and tests/router/test_kernel_reference.py diffs them against a naive reference
implementation.
"""

from __future__ import annotations

import numpy as np

from router.kernel._decide import (
    BAD_REG_F,
    BAD_REQ_F,
    OK,
    WINDOWS_FULL,
    _candidate_costs,
    _decide_batch,
    _decide_entry,
)
from router.kernel._explain import EXPLAIN_FLOATS, EXPLAIN_INTS, _explain_one
from router.kernel._flags import NJIT_FLAGS
from router.kernel._windows import LIMB, NEVER, UNLIMITED_HI
from router.kernel.columns import (
    FILTER_NAMES,
    N_FILTERS,
    NO_AGE,
    OUT_FLOATS,
    OUT_INTS,
    REG_F_COLS,
    REG_I_COLS,
    SCALARS,
    SIGNAL_SOURCES,
)
from router.kernel.inputs import KernelInputs, kernel_inputs
from router.kernel.structs import (
    Forecasts,
    Outputs,
    PlanArrays,
    Regions,
    Requests,
    Sessions,
    Tenants,
    Windows,
)

__all__ = [
    "BAD_REG_F",
    "BAD_REQ_F",
    "EXPLAIN_FLOATS",
    "EXPLAIN_INTS",
    "FILTER_NAMES",
    "LIMB",
    "NEVER",
    "NJIT_FLAGS",
    "NO_AGE",
    "OK",
    "OUT_FLOATS",
    "OUT_INTS",
    "SIGNAL_SOURCES",
    "UNLIMITED_HI",
    "WINDOWS_FULL",
    "KernelInputs",
    "candidate_costs_raw",
    "decide_batch",
    "decide_batch_raw",
    "explain_one_raw",
    "kernel_inputs",
    "warm",
    "warm_extras",
    "warm_inputs",
]


#: The compiled entry points, for router.scoring and the kernel benchmark only (``explain_one_raw`` is
#: compiled on its first use: only ``carbon-router explain`` calls it).
#: ``decide_batch(req, inputs, horizon, out)``: the batch's ``(f, i, allow)`` and the outputs' ``(f, i,
#: removed)`` as plain tuples, the state as one ``KernelInputs`` (``kernel_inputs``, router/kernel/inputs.py);
#: returns the batch's code (``router.kernel._decide._decide_batch``).
decide_batch = _decide_entry


def decide_batch_raw(
    req: Requests,
    plan: PlanArrays,
    reg: Regions,
    fc: Forecasts,
    win: Windows,
    ten: Tenants,
    twin: Windows,
    ses: Sessions,
    horizon: float,
    out: Outputs,
) -> int:
    """``decide_batch`` on the named structures (builds the ``KernelInputs``, about 10 us: for one-off
    calls; ``router.scoring.Scorer`` keeps its inputs between batches)."""
    inputs = kernel_inputs(plan, reg, fc, win, ten, twin, ses)
    code: int = _decide_entry(tuple(req), inputs, horizon, tuple(out))
    return code


candidate_costs_raw = _candidate_costs
explain_one_raw = _explain_one


def warm() -> None:
    """Compile (or load from the on-disk cache) both entry points on a one-request, one-region problem."""
    req, plan, reg, fc, win, out = warm_inputs()
    extras = warm_extras()
    # the batch loop first, on its own: compiled as a callee of the entry it took 29.6 s cold, not 20.5 s
    _decide_batch(req, plan, reg, fc, win, *extras, np.inf, out)
    decide_batch_raw(req, plan, reg, fc, win, *extras, np.inf, out)
    _candidate_costs(req, plan, reg, fc, np.zeros((1, 1)), np.zeros((1, 1), np.bool_), np.zeros((1, 1)))


def warm_inputs() -> tuple[Requests, PlanArrays, Regions, Forecasts, Windows, Outputs]:
    """A valid one-request, one-region problem (for ``warm`` and the tests that compile the loops)."""
    i64 = np.int64
    req = Requests(
        np.array([[0.0, 1.0, 1.0, 0.0, 0.0, 0.0]]),
        np.array([[0, -1, 0, 0, 1, -1, -1]], i64),
        np.ones((1, 1), i64),
    )
    plan = PlanArrays(
        np.zeros((1, 1)), np.zeros(1, i64), np.zeros((1, 1)), np.ones((1, 1), i64), np.zeros(SCALARS)
    )
    reg = Regions(
        np.ones((1, REG_F_COLS)),
        np.ones((1, REG_I_COLS), i64),
        np.zeros((2, 1, 1)),
        np.zeros((2, 1, 1)),
        np.zeros((2, 1, 1)),
        np.zeros((2, 1), i64),
        np.zeros((2, 1), i64),
        np.full(1, UNLIMITED_HI, i64),
        np.zeros(1, i64),
    )
    fc = Forecasts(
        np.zeros((1, 1)),
        np.zeros((2, 1, 1)),
        np.zeros((2, 1, 1), np.bool_),
        np.zeros(1, i64),
        np.ones((1, 3)),
    )
    z = np.zeros(1, i64)
    win = Windows(
        np.zeros((1, 4)), np.zeros((1, 4), i64), z.copy(), z.copy(), z.copy(), z.copy(), np.full(1, NEVER)
    )
    out = Outputs(
        np.zeros((1, len(OUT_FLOATS))), np.zeros((1, len(OUT_INTS)), i64), np.zeros((1, N_FILTERS), i64)
    )
    return req, plan, reg, fc, win, out


def warm_extras() -> tuple[Tenants, Windows, Sessions]:
    """No tenant budget, no carbon window and no session: the last inputs of ``warm_inputs``' problem."""
    i64 = np.int64
    z = np.zeros(0, i64)
    twin = Windows(
        np.zeros((0, 4)), np.zeros((0, 4), i64), z.copy(), z.copy(), z.copy(), z.copy(), np.full(1, NEVER)
    )
    return (
        Tenants(np.zeros((0, 2)), np.zeros((0, 3), i64)),
        twin,
        Sessions(np.zeros((0, 2)), np.zeros((0, 1), i64)),
    )
