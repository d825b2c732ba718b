"""The state's structures as one object the compiled entry takes: ``KernelInputs``.

A call to a compiled function types and unboxes every array of its arguments: about 80 ns per array, 3.4 us
for the 43 arrays of a batch's inputs, more than the kernel's own work on a small batch. The plan, the
region state, the forecasts, the capacity windows, the tenants' budgets and windows and the session table
(37 of those arrays) change between batches only when an owner replaces an array (``router.scoring``), so
they travel in one Numba ``StructRef`` built when that happens: a call then types and unboxes one object for
them. Inside, its fields are the named tuples of ``router.kernel.structs``, read as before.
"""

from __future__ import annotations

from typing import Any

from numba import types
from numba.experimental import structref

from router.kernel.structs import Forecasts, PlanArrays, Regions, Sessions, Tenants, Windows

__all__ = ["KernelInputs", "KernelInputsType", "kernel_inputs"]

FIELDS = ("plan", "reg", "fc", "win", "ten", "twin", "ses")


@structref.register
class KernelInputsType(types.StructRef):
    """Numba's type of ``KernelInputs``: one field per structure, typed by its arrays."""

    def preprocess_fields(self, fields: Any) -> Any:
        return tuple((name, types.unliteral(typ)) for name, typ in fields)  # type: ignore[no-untyped-call]


class KernelInputs(structref.StructRefProxy):
    """The plan and the live state's structures (``FIELDS``), for ``router.kernel.decide_batch``."""


structref.define_proxy(KernelInputs, KernelInputsType, list(FIELDS))  # type: ignore[no-untyped-call]


def kernel_inputs(
    plan: PlanArrays, reg: Regions, fc: Forecasts, win: Windows, ten: Tenants, twin: Windows, ses: Sessions
) -> KernelInputs:
    """The structures as one ``KernelInputs`` (built in about 10 us: once per change, not per batch)."""
    inputs: KernelInputs = KernelInputs(plan, reg, fc, win, ten, twin, ses)  # type: ignore[no-untyped-call]
    return inputs
