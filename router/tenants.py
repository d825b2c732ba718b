"""The topology's ``[[tenants]]``: each tenant's carbon budget over a sliding window (docs/model.md, "Tenant
budgets").

A tenant is budgeted when the topology names it: ``carbon_budget_g`` grams of marginal carbon placed per
``window_s`` seconds, and what happens to a request that no region can fit under the budget, ``on_exhausted``
``reject`` (the eighth filter, ``tenant_budget``, removes the regions whose carbon would break the budget)
or ``allow`` (placed anyway; only the re-solve's dual steers it). Requests of a tenant the topology does not
name are not budgeted. ``router.budgets`` turns these into the kernel's arrays.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from router.bounds import MAX_CAPACITY_WINDOW_S, MAX_ID_LEN

__all__ = ["MAX_BUDGET_G", "Tenant"]

#: Largest budget: a gigatonne per window (grams); what a window sums is two 64-bit words of micro-grams.
MAX_BUDGET_G = 1e15


class Tenant(BaseModel):
    """One budgeted tenant."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

    id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LEN)]
    carbon_budget_g: Annotated[float, Field(gt=0, le=MAX_BUDGET_G)]
    window_s: Annotated[float, Field(gt=0, le=MAX_CAPACITY_WINDOW_S)] = 3600.0
    on_exhausted: Literal["reject", "allow"] = "reject"
