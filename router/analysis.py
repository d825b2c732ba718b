"""The paper's metrics over a set of placements: RID, realised relocation, layers, savings, break-even.

All shares are by IT energy. Savings compare the placed requests with the same requests at their home
region (the all-local baseline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from router.models import GridSignal
from router.topology import Topology

__all__ = ["BreakEven", "Summary", "break_even", "summarise"]


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals and shares over one replay."""

    requests: int
    placed: int
    rejected: int
    total_energy_usd: float
    total_carbon_g: float
    baseline_energy_usd: float
    baseline_carbon_g: float
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

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output."""
        return asdict(self)


def summarise(placements: Sequence[dict[str, Any]], *, carbon_usd_per_tonne: float) -> Summary:
    """Totals, baselines, savings and the relocation shares of a replay's placements."""
    e_all = reloc_e = rid_e = rej_e = 0.0
    cost = co2 = egress = base_cost = base_co2 = pb_cost = pb_co2 = 0.0
    layer = {"local": 0.0, "regional": 0.0, "energy": 0.0}
    by_region: dict[str, int] = {}
    reasons: dict[str, int] = {}
    placed = 0
    for p in placements:
        e = p["energy_wh"]
        e_all += e
        b = p["baseline"]
        b_cost = b["energy_usd"] or 0.0
        b_co2 = b["carbon_g"] or 0.0
        base_cost += b_cost
        base_co2 += b_co2
        if p["relocatable"]:
            rid_e += e
        if p["status"] == "placed":
            placed += 1
            cost += p["energy_usd"]
            co2 += p["carbon_g"]
            egress += p["egress_usd"]
            pb_cost += b_cost
            pb_co2 += b_co2
            layer[p["layer"]] += e
            by_region[p["region"]] = by_region.get(p["region"], 0) + 1
            if p["region"] != p["home_region"]:
                reloc_e += e
        else:
            rej_e += e
            reasons[p["reason"]] = reasons.get(p["reason"], 0) + 1
    placed_e = sum(layer.values())
    share = {k: (v / placed_e if placed_e > 0 else 0.0) for k, v in layer.items()}
    tot = e_all if e_all > 0 else 1.0
    return Summary(
        requests=len(placements),
        placed=placed,
        rejected=len(placements) - placed,
        total_energy_usd=cost,
        total_carbon_g=co2,
        baseline_energy_usd=base_cost,
        baseline_carbon_g=base_co2,
        placed_baseline_energy_usd=pb_cost,
        placed_baseline_carbon_g=pb_co2,
        saved_energy_usd=pb_cost - cost,
        saved_carbon_g=pb_co2 - co2,
        egress_usd=egress,
        net_saved_usd=(pb_cost - cost) + carbon_usd_per_tonne * (pb_co2 - co2) / 1e6 - egress,
        rid_share=rid_e / tot,
        relocated_share=reloc_e / tot,
        rejected_share=rej_e / tot,
        layer_share=share,
        by_region=dict(sorted(by_region.items())),
        reasons=dict(sorted(reasons.items())),
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
