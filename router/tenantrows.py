"""The re-solve's tenant rows: one carbon-budget constraint per budgeted tenant (docs/model.md, "Re-solve").

With ``y[g, j]`` the IT kW of group ``g`` at region ``j`` and ``c[g, j]`` its marginal carbon per IT Wh (the
energy-weighted mean of its requests', g), a tenant ``k``'s expected marginal carbon per hour is
``1000 * sum_{g of k, j} c[g, j] * y[g, j]``; its row keeps that within the budget per hour,
``carbon_budget_g * 3600 / window_s``. Its dual ``nu_k`` (>= 0) is in USD per g: the objective is in USD per
IT Wh times kW and the row in g per IT Wh times kW. ``router.resolve.CapacityResolver`` adds these rows
(``tenant_lp``) and always builds such a model afresh, since the carbon coefficients change with the signals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt

from router.bounds import MAX_NU_USD_PER_G

__all__ = ["MAX_NU_USD_PER_G", "TenantRows", "has_rows", "tenant_duals", "tenant_lp", "tenants_uncontended"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_INF = float(highspy.kHighsInf)


@dataclass(frozen=True, slots=True)
class TenantRows:
    """The tenant part of one LP instance: K budgeted tenants over G groups and R regions."""

    group_tenant: IntArray  # (G,) the group's tenant index, -1: not budgeted
    g_per_wh: FloatArray  # (G, R) marginal carbon per IT Wh, g, finite where reachable
    budget_g_per_h: FloatArray  # (K,) each tenant's budget per hour, g, > 0


def has_rows(t: TenantRows | None) -> bool:
    """True when some group belongs to a budgeted tenant (else the LP is the capacity LP alone)."""
    return t is not None and bool((t.group_tenant >= 0).any())


def tenant_lp(
    g_idx: IntArray,
    j_idx: IntArray,
    cost: FloatArray,
    rows: tuple[FloatArray, FloatArray],
    t: TenantRows,
    kw: float,
) -> Any:  # highspy is untyped
    """The capacity LP's columns (y: demand row g, capacity row G + j; v: demand row g) plus, for a y column
    of a budgeted tenant's group, its carbon in that tenant's row ``G + R + k``; rows in units of ``kw``."""
    G, n, K = len(t.group_tenant), len(g_idx), len(t.budget_g_per_h)
    R = len(rows[0]) - G
    k_of = t.group_tenant[g_idx]
    extra = k_of >= 0
    count = np.concatenate([2 + extra.astype(np.int64), np.ones(G, dtype=np.int64)])
    start = np.concatenate([[0], np.cumsum(count)]).astype(np.int32)
    index = np.empty(int(start[-1]), dtype=np.int32)
    value = np.ones(int(start[-1]))
    s = start[:n]
    index[s], index[s + 1] = g_idx, G + j_idx
    index[s[extra] + 2] = G + R + k_of[extra]
    value[s[extra] + 2] = t.g_per_wh[g_idx[extra], j_idx[extra]]
    index[start[n:-1]] = np.arange(G)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n + G, G + R + K
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, np.zeros(n + G), np.full(n + G, _INF)
    lp.row_lower_ = np.concatenate([rows[0], np.full(K, -_INF)])
    lp.row_upper_ = np.concatenate([rows[1], t.budget_g_per_h / 1000.0 / kw])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    return lp


def tenant_duals(row_dual: FloatArray, first: int, scale: float, t: TenantRows | None) -> FloatArray:
    """``nu`` (USD per g, 0..MAX_NU_USD_PER_G) from HiGHS's row duals of the tenant rows from ``first``."""
    if not has_rows(t):
        return np.zeros(0 if t is None else len(t.budget_g_per_h))
    nu = np.maximum(-np.asarray(row_dual, dtype=np.float64)[first:], 0.0) * scale
    return np.minimum(nu, MAX_NU_USD_PER_G)


def tenants_uncontended(
    demand_kw: FloatArray, reachable: npt.NDArray[np.bool_], t: TenantRows | None
) -> bool:
    """True when no tenant row can bind: even at its dirtiest reachable region every tenant stays within its
    budget per hour."""
    if not has_rows(t):
        return True
    assert t is not None
    worst = np.where(reachable, t.g_per_wh, 0.0).max(axis=1, initial=0.0)
    per_h = np.zeros(len(t.budget_g_per_h))
    mine = t.group_tenant >= 0
    np.add.at(per_h, t.group_tenant[mine], 1000.0 * demand_kw[mine] * worst[mine])
    return bool(np.all(per_h < t.budget_g_per_h))
