"""The compiled decide loop runs without reference counting (router/kernel/_flags.py, NO_RC_FLAGS).

Reading an array out of a named tuple under Numba's reference counting costs an atomic increment and
decrement per access; the benchmark measured that as most of the kernel's time. These tests compile the
loops afresh (the on-disk cache keeps no IR) for the types of a valid problem and read their LLVM IR.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numba import njit, typeof

from router.kernel import warm_extras, warm_inputs
from router.kernel._decide import _candidate_loop, _decide_batch, _decide_plain, _decide_requests


def _fresh_ir(dispatcher: Any, args: tuple[Any, ...]) -> str:
    """The LLVM IR of ``dispatcher`` compiled anew with its own flags for the types of ``args``."""
    fresh = njit(**{**dispatcher.targetoptions, "cache": False})(dispatcher.py_func)
    sig = tuple(typeof(a) for a in args)
    fresh.compile(sig)
    return str(fresh.inspect_llvm(sig))


def _scratch() -> tuple[Any, ...]:
    return np.zeros(1, np.int64), np.zeros((7, 1)), np.zeros((4, 1), np.int64), np.zeros((2, 1), np.int64)


def _decide_args() -> tuple[Any, ...]:
    """The decide loop's inputs up to the horizon: the problem, then the tenants, their windows, sessions."""
    req, plan, reg, fc, win, _out = warm_inputs()
    return (req, plan, reg, fc, win, *warm_extras())


@pytest.mark.parametrize("loop", [_decide_requests, _decide_plain], ids=["with_extras", "plain"])
def test_the_decide_loops_hold_no_reference_count_call(loop: Any) -> None:
    out = warm_inputs()[-1]
    ir = _fresh_ir(loop, (*_decide_args(), np.inf, out, *_scratch()))
    assert "NRT_incref" not in ir
    assert "NRT_decref" not in ir


def test_the_candidate_loop_holds_no_reference_count_call() -> None:
    req, plan, reg, fc, _win, _out = warm_inputs()
    cost, reach, carb = np.zeros((1, 1)), np.zeros((1, 1), np.bool_), np.zeros((1, 1))
    ir = _fresh_ir(_candidate_loop, (req, plan, reg, fc, cost, reach, carb, *_scratch()[1:]))
    assert "NRT_incref" not in ir
    assert "NRT_decref" not in ir


def test_the_allocating_entry_point_does_count_references() -> None:
    """The checks above can fail: the entry point, which allocates the scratch, holds such calls."""
    out = warm_inputs()[-1]
    assert "NRT_decref" in _fresh_ir(_decide_batch, (*_decide_args(), np.inf, out))
