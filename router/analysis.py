"""The paper's metrics over a set of placements: RID, realised relocation, layers, savings, break-even.

All shares are by IT energy. Savings compare the placed requests with the same requests at their home
region (the all-local baseline); the totals and the rule for a request without a baseline are
router/totals.py's, shared with the live metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from router.accounting import MARGINAL
from router.models import GridSignal
from router.placement import PlacementMessage
from router.topology import Topology
from router.totals import Totals

__all__ = ["BreakEven", "Summary", "break_even", "summarise", "summary_of"]


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals and shares over one replay."""

    requests: int
    placed: int
    rejected: int
    #: placed requests whose home region had no value: out of the baselines and savings (router/totals.py)
    unbaselined: int
    total_energy_usd: float
    total_carbon_g: float
    baseline_energy_usd: float
    baseline_carbon_g: float
    #: the baseline of the placed requests that have one (what the savings compare against)
    placed_baseline_energy_usd: float
    placed_baseline_carbon_g: float
    saved_energy_usd: float
    saved_carbon_g: float
    egress_usd: float
    net_saved_usd: (
        float  # (energy + carbon priced at lambda) saved, minus the egress paid, over placed requests
    )
    rid_share: float
    relocated_share: float
    rejected_share: float
    layer_share: dict[str, float]
    by_region: dict[str, int]
    reasons: dict[str, int]
    #: which carbon every ``_carbon_g`` above is (router/accounting.py)
    carbon_accounting: str = MARGINAL

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return asdict(self)


def summarise(placements: Iterable[PlacementMessage], *, carbon_usd_per_tonne: float) -> Summary:
    """Totals, baselines, savings and the relocation shares of a replay's placements."""
    t = Totals()
    t.add(placements)
    return summary_of(t, carbon_usd_per_tonne=carbon_usd_per_tonne)


def summary_of(t: Totals, *, carbon_usd_per_tonne: float) -> Summary:
    """The summary of an accumulator (router.totals: fixed-point sums, the baseline rule)."""
    shares = t.shares()
    return Summary(
        requests=t.requests,
        placed=t.placed,
        rejected=t.rejected,
        unbaselined=t.unbaselined,
        total_energy_usd=t.cost_usd,
        total_carbon_g=t.carbon_g,
        baseline_energy_usd=t.baseline_nusd / 1e9,
        baseline_carbon_g=t.baseline_ug / 1e6,
        placed_baseline_energy_usd=t.compared_baseline_nusd / 1e9,
        placed_baseline_carbon_g=t.compared_baseline_ug / 1e6,
        saved_energy_usd=t.saved_energy_usd,
        saved_carbon_g=t.saved_carbon_g,
        egress_usd=t.egress_usd,
        net_saved_usd=t.net_saved_usd(carbon_usd_per_tonne),
        rid_share=shares["rid_share"],
        relocated_share=shares["relocated_share"],
        rejected_share=shares["rejected_share"],
        layer_share=shares["layer_share"],
        by_region=dict(sorted(t.by_region.items())),
        reasons=dict(sorted(t.reasons.items())),
    )


@dataclass(frozen=True, slots=True)
class BreakEven:
    """Relocation break-even of one (home, candidate) pair for a reference request."""

    home: str
    candidate: str
    gap_usd_per_wh: float  # home minus candidate, energy + carbon cost per IT Wh
    friction_usd: float
    breakeven_wh: float | None  # requests larger than this are worth moving; None: never pays


def _mean_signals(
    topology: Topology, signals: Sequence[GridSignal]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean price, marginal carbon and PUE per region over the signals (topology defaults where none)."""
    idx = topology.region_index()
    R = len(idx)
    price = np.array(
        [r.price_usd_per_mwh if r.price_usd_per_mwh is not None else np.nan for r in topology.regions]
    )
    mci = np.array(
        [r.marginal_gco2_per_kwh if r.marginal_gco2_per_kwh is not None else np.nan for r in topology.regions]
    )
    pue = np.array([r.pue for r in topology.regions])
    sums = np.zeros((3, R))
    counts = np.zeros((3, R))
    for s in signals:
        j = idx.get(s.region)
        if j is None:
            continue
        for k, v in enumerate((s.price_usd_per_mwh, s.marginal_gco2_per_kwh, s.pue)):
            if v is not None:
                sums[k, j] += v
                counts[k, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    price = np.where(counts[0] > 0, means[0], price)
    mci = np.where(counts[1] > 0, means[1], mci)
    pue = np.where(counts[2] > 0, means[2], pue)
    return price, mci, pue


def break_even(
    topology: Topology, signals: Sequence[GridSignal], *, payload_bytes: float, state_bytes: float = 0.0
) -> list[BreakEven]:
    """e* = friction / per-Wh gap for every (home of a service node, other region) pair, at mean signals."""
    o = topology.objective
    price, mci, pue = _mean_signals(topology, signals)
    per_wh = pue * (price / 1e6 + o.carbon_usd_per_tonne * mci / 1e9)
    out: list[BreakEven] = []
    homes = sorted({s.home_region for s in topology.service_nodes})
    idx = topology.region_index()
    for h in homes:
        for r in topology.regions:
            if r.id == h:
                continue
            gap = float(per_wh[idx[h]] - per_wh[idx[r.id]])
            friction = (
                payload_bytes / 1e9 * topology.egress(h, r.id)
                + state_bytes / 1e9 * topology.egress(h, r.id)
                + o.relocation_fixed_usd
            )
            e_star = None if not np.isfinite(gap) or gap <= 0 else friction / gap
            out.append(BreakEven(h, r.id, gap if np.isfinite(gap) else float("nan"), friction, e_star))
    return out
