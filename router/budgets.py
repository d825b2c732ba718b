"""The tenants' carbon budgets as the kernel's arrays, and what each tenant has placed in its window.

``TenantBudgets`` holds, per configured tenant (``router.tenants``, topology order): its window and the
re-solve's dual ``nu`` (USD per g) in ``f``; ``on_exhausted`` and the budget over one window in micro-grams
(two words, as the capacity windows count nano-Wh, router/kernel/_windows.py) in ``i``; and a ring buffer per
tenant of the marginal carbon it placed (``router.state.CapacityWindows`` with one row per tenant, micro-g).
The kernel slides a tenant's window and books into it (router/kernel/_tenants.py). Like capacity, a worker
holding k of P request partitions guards k / P of every budget (``set_share``), so the fleet stays within it.
"""

from __future__ import annotations

import math

import numpy as np

from router.kernel import LIMB
from router.kernel.columns import (
    TEN_BUDGET_HI,
    TEN_BUDGET_LO,
    TEN_F_COLS,
    TEN_I_COLS,
    TEN_NU,
    TEN_REJECT,
    TEN_WINDOW_S,
)
from router.kernel.structs import Tenants
from router.plan import FloatArray, IntArray
from router.state import CapacityWindows, frozen_copy
from router.tenants import Tenant

__all__ = ["UG_PER_G", "TenantBudgets", "budget_words", "carbon_ug"]

#: Carbon in the tenant windows is counted in integer micro-grams, so window sums are exact.
UG_PER_G = 1e6


def budget_words(budget_g: float) -> tuple[int, int]:
    """A budget in grams as the kernel's (hi, lo) micro-gram words."""
    hi, lo = divmod(round(budget_g * UG_PER_G), LIMB)
    return hi, lo


class TenantBudgets:
    """Per configured tenant: window, dual, policy, budget words and the carbon placed in the window."""

    def __init__(self, tenants: tuple[Tenant, ...]) -> None:
        K = len(tenants)
        self.tenants = tenants
        self.ids: tuple[str, ...] = tuple(t.id for t in tenants)
        self.index = {t.id: k for k, t in enumerate(tenants)}
        self.f: FloatArray = np.zeros((K, TEN_F_COLS), dtype=np.float64)
        self.i: IntArray = np.zeros((K, TEN_I_COLS), dtype=np.int64)
        self.budget_g: FloatArray = np.array([t.carbon_budget_g for t in tenants], dtype=np.float64)
        for k, t in enumerate(tenants):
            self.f[k, TEN_WINDOW_S] = t.window_s
            self.i[k, TEN_REJECT] = 1 if t.on_exhausted == "reject" else 0
        self.windows = CapacityWindows(K, initial=256)
        self.share = 1.0
        self._view: Tenants | None = None
        self._nu = frozen_copy(self.f[:, TEN_NU])
        self._update_budgets()

    def kernel(self) -> Tenants:
        """The kernel's view of the budgets (the windows are ``self.windows.kernel()``); the arrays are
        changed in place, never replaced, so the view is built once."""
        view = self._view
        if view is None:
            view = self._view = Tenants(self.f, self.i)
        return view

    def _update_budgets(self) -> None:
        for k, g in enumerate(self.budget_g.tolist()):
            self.i[k, TEN_BUDGET_HI], self.i[k, TEN_BUDGET_LO] = budget_words(g * self.share)

    def set_share(self, share: float) -> None:
        """Guard only ``share`` of every budget (0 < share <= 1): the worker's share of the partitions."""
        if not 0.0 < share <= 1.0:
            raise ValueError(f"budget share {share!r}; expected 0 < share <= 1")
        self.share = float(share)
        self._update_budgets()

    def set_nu(self, nu_usd_per_g: FloatArray) -> None:
        """Install the tenant duals of the latest successful re-solve (USD per g, topology order)."""
        self.f[:, TEN_NU] = nu_usd_per_g
        self._nu = frozen_copy(self.f[:, TEN_NU])

    def nu(self) -> FloatArray:
        """The duals in use, USD per g: a read-only copy made when they were installed (every batch's
        ``router.scoring.Decisions`` holds it, so it must never change)."""
        return self._nu

    def placed_g(self, now: float) -> FloatArray:
        """Marginal carbon each tenant placed in ``(now - window_s, now]``, grams (from the ring buffers,
        without changing them)."""
        w = self.windows
        C = w.ts.shape[1]
        out = np.zeros(len(self.tenants), dtype=np.float64)
        for k in range(len(self.tenants)):
            idx = (w.head[k] + np.arange(w.len[k])) % C
            keep = w.ts[k, idx] > now - self.f[k, TEN_WINDOW_S]
            out[k] = float(w.e[k, idx][keep].sum()) / UG_PER_G
        return out

    def left_g(self, now: float) -> FloatArray:
        """Budget left per tenant in its window at ``now`` (this worker's share), grams; negative when an
        ``allow`` tenant went past it."""
        return self.budget_g * self.share - self.placed_g(now)


def carbon_ug(carbon_g: float) -> int:
    """One placement's carbon in micro-grams, rounded as the kernel rounds it (half up)."""
    return math.floor(carbon_g * UG_PER_G + 0.5)
