"""One accumulator of placement totals, for ``score``, ``frontier``, the live metrics, the demo and the page.

Every amount is added in fixed point: energy in nano-Wh (as the capacity windows), money in nano-USD, carbon
in micro-grams, each placement's value rounded to that unit before it is added, and the sums are Python
integers. So totals do not depend on how a stream was cut into batches or in which order they were added:
a worker and ``score`` that saw the same placements report the same totals, to the last digit
(tests/integration/test_totals.py).

The baseline rule (docs/model.md, "Savings"): a request's baseline is the same request at its home region.
When the home region has no value (``baseline.energy_usd`` is null) the request has no baseline: a placed
one is counted in ``unbaselined`` and left out of both sides of every saving, so savings compare only like
with like. Its cost, carbon and egress still count in the placed totals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from router.kernel.columns import FILTER_NAMES, LAYERS
from router.placed import DecisionColumns, Placements
from router.placement import PlacementMessage

__all__ = ["Totals"]

_NANO = 1e9  # per Wh and per USD
_MICRO = 1e6  # per gram


def _fixed(values: list[float], scale: float) -> int:
    """Sum of the values, each rounded to ``1 / scale`` (half to even), exactly (a Python int). Both paths
    round the same float product the same way; NumPy is faster from a few dozen values on."""
    if len(values) < 32:
        return sum(round(v * scale) for v in values)
    return sum(np.rint(np.asarray(values, dtype=np.float64) * scale).astype(np.int64).tolist())


def _fixed_array(values: npt.NDArray[np.float64], scale: float) -> int:
    """``_fixed`` of a column: the same rounding of the same products, summed in int64 when no sum can
    overflow it (else, or with NaN or inf, exactly as ``_fixed`` does, which raises as it does)."""
    units = np.rint(values * scale)
    if len(units) and not (np.isfinite(units).all() and float(np.abs(units).max()) * len(units) < 2.0**62):
        return _fixed(values.tolist(), scale)
    return int(units.astype(np.int64).sum())


@dataclass(slots=True)
class Totals:
    """Running totals over placements; ``add`` a batch, ``merge`` another accumulator, read the properties."""

    requests: int = 0
    placed: int = 0
    rejected: int = 0
    #: placed requests whose home region had no value (no baseline; out of the savings)
    unbaselined: int = 0
    #: IT energy in nano-Wh: of every request, of the relocatable ones, of those placed away from home, of
    #: the rejected ones, and of the placed ones by layer
    energy_nwh: int = 0
    rid_nwh: int = 0
    relocated_nwh: int = 0
    rejected_nwh: int = 0
    layer_nwh: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LAYERS, 0))
    #: what the placed requests cost (nano-USD) and emitted (micro-g)
    cost_nusd: int = 0
    carbon_ug: int = 0
    egress_nusd: int = 0
    #: the placed requests' scores (nano-USD) and, of those that carry ``terms`` (explanations on), their dual
    #: terms; ``unexplained``: placed requests without ``terms``
    score_nusd: int = 0
    dual_nusd: int = 0
    unexplained: int = 0
    #: the average-intensity (location-based) carbon of the placed requests whose region and home both have
    #: an average value, at the region and at home (micro-g; ``add_average``), and how many placed requests
    #: had none
    average_ug: int = 0
    average_baseline_ug: int = 0
    average_unvalued: int = 0
    #: the baseline of every request that has one, and, over the placed requests that have one, both sides
    baseline_nusd: int = 0
    baseline_ug: int = 0
    compared_baseline_nusd: int = 0
    compared_baseline_ug: int = 0
    compared_cost_nusd: int = 0
    compared_carbon_ug: int = 0
    by_region: Counter[str] = field(default_factory=Counter)
    by_layer: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, placements: Iterable[PlacementMessage]) -> None:
        """Add a batch of placements (``router.placed.Placements``: from their columns, and from the dicts of
        those no columns cover)."""
        if isinstance(placements, Placements):
            for block in placements.columns:
                self.add_columns(block)
            placements = placements.loose
        cols = _Columns()
        for p in placements:
            cols.take(p, self)
        n = len(cols.energy)
        n_placed = len(cols.cost)
        self.requests += n
        self.placed += n_placed
        self.rejected += n - n_placed
        self.energy_nwh += _fixed(cols.energy, _NANO)
        self.rid_nwh += _fixed(cols.rid, _NANO)
        self.relocated_nwh += _fixed(cols.relocated, _NANO)
        self.rejected_nwh += _fixed(cols.rejected, _NANO)
        for k in LAYERS:
            self.layer_nwh[k] += _fixed(cols.layer[k], _NANO)
        self.cost_nusd += _fixed(cols.cost, _NANO)
        self.carbon_ug += _fixed(cols.carbon, _MICRO)
        self.egress_nusd += _fixed(cols.egress, _NANO)
        self._add_objective(cols.placed)
        self.baseline_nusd += _fixed(cols.base_cost, _NANO)
        self.baseline_ug += _fixed(cols.base_carbon, _MICRO)
        self.compared_baseline_nusd += _fixed(cols.cmp_base_cost, _NANO)
        self.compared_baseline_ug += _fixed(cols.cmp_base_carbon, _MICRO)
        self.compared_cost_nusd += _fixed(cols.cmp_cost, _NANO)
        self.compared_carbon_ug += _fixed(cols.cmp_carbon, _MICRO)

    def add_columns(self, c: DecisionColumns) -> None:
        """Add one kernel call's placements from their columns: the same amounts, rounded the same way, as
        ``add`` over their dicts."""
        placed = c.choice >= 0
        n_placed = int(placed.sum())
        e = c.energy_wh
        self.requests += len(c)
        self.placed += n_placed
        self.rejected += len(c) - n_placed
        self.energy_nwh += _fixed_array(e, _NANO)
        self.rid_nwh += _fixed_array(e[c.relocatable], _NANO)
        self.rejected_nwh += _fixed_array(e[~placed], _NANO)
        self.reasons.update(FILTER_NAMES[r - 1] for r in c.reason[~placed].tolist())
        regions = c.regions
        choice = c.choice[placed]
        self.by_region.update(map(regions.__getitem__, choice.tolist()))
        layers = c.layer[placed]
        self.by_layer.update(map(LAYERS.__getitem__, layers.tolist()))
        e_placed = e[placed]
        for j, name in enumerate(LAYERS):
            self.layer_nwh[name] += _fixed_array(e_placed[(layers == j) | (layers == j - len(LAYERS))], _NANO)
        self.relocated_nwh += _fixed_array(e_placed[choice != c.home[placed]], _NANO)
        self.cost_nusd += _fixed_array(c.energy_usd[placed], _NANO)
        self.carbon_ug += _fixed_array(c.carbon_g[placed], _MICRO)
        self.egress_nusd += _fixed_array(c.egress_usd[placed], _NANO)
        self.score_nusd += _fixed_array(c.score_usd[placed], _NANO)
        if c.dual_usd is None:
            self.unexplained += n_placed
        else:
            self.dual_nusd += _fixed_array(c.dual_usd[placed], _NANO)
        valued = c.home_valued
        self.baseline_nusd += _fixed_array(c.home_energy_usd[valued], _NANO)
        self.baseline_ug += _fixed_array(c.home_carbon_g[valued], _MICRO)
        both = placed & valued
        self.unbaselined += n_placed - int(both.sum())
        self.compared_baseline_nusd += _fixed_array(c.home_energy_usd[both], _NANO)
        self.compared_baseline_ug += _fixed_array(c.home_carbon_g[both], _MICRO)
        self.compared_cost_nusd += _fixed_array(c.energy_usd[both], _NANO)
        self.compared_carbon_ug += _fixed_array(c.carbon_g[both], _MICRO)

    def _add_objective(self, placed: list[PlacementMessage]) -> None:
        """The placed requests' scores, and the dual terms (capacity and, for a budgeted tenant, carbon) of
        those that carry ``terms``."""
        score: list[float] = []
        dual: list[float] = []
        for p in placed:
            p_score, terms = p["score_usd"], p.get("terms")
            if p_score is None:
                raise ValueError(f"placement {p['request_id']!r} is placed but lacks its score")
            score.append(p_score)
            if terms is None:
                self.unexplained += 1
            else:
                dual.append(terms["dual_usd"] + terms.get("dual_carbon_usd", 0.0))  # a tenant's dual too
        self.score_nusd += _fixed(score, _NANO)
        self.dual_nusd += _fixed(dual, _NANO)

    def add_average(self, placed_g: list[float | None], home_g: list[float | None]) -> None:
        """Add the average-intensity carbon of placed requests, at their region and at home (None: no average
        value there); a request counts only when it has both (``router.accounting``)."""
        both = [(a, b) for a, b in zip(placed_g, home_g, strict=True) if a is not None and b is not None]
        self.average_unvalued += len(placed_g) - len(both)
        self.average_ug += _fixed([a for a, _ in both], _MICRO)
        self.average_baseline_ug += _fixed([b for _, b in both], _MICRO)

    def merge(self, other: Totals) -> None:
        """Add another accumulator's totals to this one."""
        for name in self.__slots__:
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, Counter):
                mine.update(theirs)
            elif isinstance(mine, dict):
                for k, v in theirs.items():
                    mine[k] += v
            else:
                setattr(self, name, mine + theirs)

    # -- in the units of the placements -------------------------------------------------------------------

    @property
    def cost_usd(self) -> float:
        return self.cost_nusd / _NANO

    @property
    def carbon_g(self) -> float:
        return self.carbon_ug / _MICRO

    @property
    def egress_usd(self) -> float:
        return self.egress_nusd / _NANO

    @property
    def objective_usd(self) -> float | None:
        """The placed requests' scores without their dual terms, USD (None when some lack ``terms``)."""
        return None if self.unexplained else (self.score_nusd - self.dual_nusd) / _NANO

    @property
    def average_carbon_g(self) -> float | None:
        """Average-intensity carbon of the placed requests that have average values (None: none has)."""
        return self.average_ug / _MICRO if self.placed > self.average_unvalued else None

    @property
    def saved_energy_usd(self) -> float:
        """Energy cost saved against the all-local baseline, over the placed requests that have one."""
        return (self.compared_baseline_nusd - self.compared_cost_nusd) / _NANO

    @property
    def saved_carbon_g(self) -> float:
        """Marginal carbon saved against the all-local baseline, over the placed requests that have one."""
        return (self.compared_baseline_ug - self.compared_carbon_ug) / _MICRO

    def net_saved_usd(self, carbon_usd_per_tonne: float) -> float:
        """Energy saved plus carbon saved at the carbon price, minus the egress every placed request paid."""
        return self.saved_energy_usd + carbon_usd_per_tonne * self.saved_carbon_g / 1e6 - self.egress_usd

    def shares(self) -> dict[str, Any]:
        """Shares of IT energy: relocatable, relocated, rejected; layer shares of the placed energy."""
        total = self.energy_nwh or 1
        placed = sum(self.layer_nwh.values())
        return {
            "rid_share": self.rid_nwh / total,
            "relocated_share": self.relocated_nwh / total,
            "rejected_share": self.rejected_nwh / total,
            "layer_share": {k: (v / placed if placed else 0.0) for k, v in self.layer_nwh.items()},
        }


@dataclass(slots=True)
class _Columns:
    """One batch's amounts, column by column, before they are rounded and added."""

    energy: list[float] = field(default_factory=list)
    rid: list[float] = field(default_factory=list)
    relocated: list[float] = field(default_factory=list)
    rejected: list[float] = field(default_factory=list)
    layer: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in LAYERS})
    cost: list[float] = field(default_factory=list)
    carbon: list[float] = field(default_factory=list)
    egress: list[float] = field(default_factory=list)
    base_cost: list[float] = field(default_factory=list)
    base_carbon: list[float] = field(default_factory=list)
    cmp_base_cost: list[float] = field(default_factory=list)
    cmp_base_carbon: list[float] = field(default_factory=list)
    cmp_cost: list[float] = field(default_factory=list)
    cmp_carbon: list[float] = field(default_factory=list)
    placed: list[PlacementMessage] = field(default_factory=list)

    def take(self, p: PlacementMessage, t: Totals) -> None:
        """Add one placement's amounts to the columns and its counts to ``t``."""
        e = p["energy_wh"]
        self.energy.append(e)
        if p["relocatable"]:
            self.rid.append(e)
        b_cost, b_co2 = p["baseline"]["energy_usd"], p["baseline"]["carbon_g"]
        baselined = b_cost is not None and b_co2 is not None
        if baselined:
            self.base_cost.append(b_cost or 0.0)
            self.base_carbon.append(b_co2 or 0.0)
        if p["status"] != "placed":
            self.rejected.append(e)
            t.reasons[p["reason"]] += 1
            return
        region, layer = p["region"], p["layer"]
        p_cost, p_co2, p_egress = p["energy_usd"], p["carbon_g"], p["egress_usd"]
        if region is None or layer is None or p_cost is None or p_co2 is None or p_egress is None:
            raise ValueError(f"placement {p['request_id']!r} is placed but lacks a region or a cost")
        t.by_region[region] += 1
        t.by_layer[layer] += 1
        self.layer[layer].append(e)
        if region != p["home_region"]:
            self.relocated.append(e)
        self.cost.append(p_cost)
        self.carbon.append(p_co2)
        self.egress.append(p_egress)
        self.placed.append(p)
        if not baselined:
            t.unbaselined += 1
            return
        self.cmp_base_cost.append(b_cost or 0.0)
        self.cmp_base_carbon.append(b_co2 or 0.0)
        self.cmp_cost.append(p_cost)
        self.cmp_carbon.append(p_co2)
