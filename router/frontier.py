"""The energy-latency frontier: one replay per budget scale ``alpha``, with ERoL/CRoL and a plot."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from router.analysis import summarise
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.replay import ReplayOptions, replay
from router.topology import Topology

__all__ = ["CSV_FIELDS", "frontier_points", "write_frontier"]

CSV_FIELDS = (
    "alpha",
    "mean_budget_ms",
    "total_energy_usd",
    "total_carbon_g",
    "baseline_energy_usd",
    "baseline_carbon_g",
    "rid_share",
    "relocated_share",
    "rejected_share",
    "layer_local",
    "layer_regional",
    "layer_energy",
    "erol_usd_per_ms",
    "crol_g_per_ms",
)


def frontier_points(
    topology: Topology,
    signals: Sequence[tuple[int, GridSignal]],
    requests: Sequence[tuple[int, Request]],
    alphas: Sequence[float],
    *,
    statuses: Sequence[tuple[int, RegionStatus]] = (),
    sources: tuple[str, str, str] = ("signals", "requests", "statuses"),
    forecasts: Sequence[tuple[int, GridForecast]] = (),
) -> list[dict[str, Any]]:
    """The contract's frontier points, one full replay per alpha (sorted ascending)."""
    mean_budget = sum(r.latency_budget_ms for _, r in requests) / max(1, len(requests))
    points: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    for alpha in sorted(alphas):
        res = replay(
            topology,
            signals,
            requests,
            statuses=statuses,
            options=ReplayOptions(alpha=alpha),
            sources=sources,
            forecasts=forecasts,
        )
        s = summarise(res.placements, carbon_usd_per_tonne=topology.objective.carbon_usd_per_tonne)
        point: dict[str, Any] = {
            "alpha": alpha,
            "mean_budget_ms": alpha * mean_budget,
            "total_energy_usd": s.total_energy_usd,
            "total_carbon_g": s.total_carbon_g,
            "baseline_energy_usd": s.baseline_energy_usd,
            "baseline_carbon_g": s.baseline_carbon_g,
            "rid_share": s.rid_share,
            "relocated_share": s.relocated_share,
            "rejected_share": s.rejected_share,
            "layer_share": s.layer_share,
            "erol_usd_per_ms": None,
            "crol_g_per_ms": None,
            "placed": s.placed,
            "saved_energy_usd": s.saved_energy_usd,
            "saved_carbon_g": s.saved_carbon_g,
            "net_saved_usd": s.net_saved_usd,
        }
        if prev is not None:
            extra_ms = point["mean_budget_ms"] - prev["mean_budget_ms"]
            if extra_ms > 0:
                point["erol_usd_per_ms"] = (prev["total_energy_usd"] - s.total_energy_usd) / extra_ms
                point["crol_g_per_ms"] = (prev["total_carbon_g"] - s.total_carbon_g) / extra_ms
        points.append(point)
        prev = point
    return points


def write_frontier(points: list[dict[str, Any]], out_dir: Path, *, title: str = "") -> list[Path]:
    """Write frontier.json, frontier.csv and frontier.png into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    j = out_dir / "frontier.json"
    j.write_bytes(orjson.dumps(points, option=orjson.OPT_INDENT_2) + b"\n")
    c = out_dir / "frontier.csv"
    with c.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS)
        for p in points:
            flat = {**p, **{f"layer_{k}": v for k, v in p["layer_share"].items()}}
            w.writerow(["" if flat[f] is None else flat[f] for f in CSV_FIELDS])
    png = out_dir / "frontier.png"
    _plot(points, png, title)
    return [j, c, png]


def _pct(saved: float, routed: float) -> float:
    """Saving as a share of the all-local cost of the same placed requests."""
    base = routed + saved
    return 100.0 * saved / base if base else 0.0


def _plot(points: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = [p["alpha"] for p in points]
    fig, (ax1, ax3) = plt.subplots(
        2, 1, figsize=(9.5, 8.0), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    cost_pct = [_pct(p["saved_energy_usd"], p["total_energy_usd"]) for p in points]
    co2_pct = [_pct(p["saved_carbon_g"], p["total_carbon_g"]) for p in points]
    ax1.plot(a, cost_pct, "o-", color="#1f77b4", label="energy cost saved")
    ax1.plot(a, co2_pct, "s-", color="#2ca02c", label="marginal carbon saved")
    for p, y in zip(points, cost_pct, strict=True):
        ax1.annotate(
            f"${p['total_energy_usd']:.3g}\n{p['total_carbon_g'] / 1e3:.3g} kg",
            (p["alpha"], y),
            textcoords="offset points",
            xytext=(0, -28),
            ha="center",
            fontsize=7,
            color="#444",
        )
    ax1.set_ylabel("saved against all-local (% of the same placed requests)")
    ax1.set_ylim(0, max(100.0, *cost_pct, *co2_pct) * 1.02)
    ax1.legend(fontsize=8, loc="upper left")
    ax1.set_title(title or "Energy-latency frontier: savings and layers against the latency-budget scale")
    ax1.grid(alpha=0.3)
    bottoms = [0.0] * len(a)
    colours = {"local": "#7f7f7f", "regional": "#ff7f0e", "energy": "#2ca02c"}
    width = [0.35 * x for x in a]
    for layer, col in colours.items():
        vals = [p["layer_share"][layer] * (1 - p["rejected_share"]) for p in points]
        ax3.bar(a, vals, width=width, bottom=bottoms, color=col, label=f"{layer} layer", edgecolor="white")
        bottoms = [b + v for b, v in zip(bottoms, vals, strict=True)]
    rej = [p["rejected_share"] for p in points]
    ax3.bar(a, rej, width=width, bottom=bottoms, color="#d62728", label="rejected", edgecolor="white")
    ax3.plot(a, [p["rid_share"] for p in points], "k^-", label="relocatable demand (RID)")
    ax3.set_ylabel("share of IT energy")
    ax3.set_ylim(0, 1.05)
    ax3.set_xscale("log", base=2)
    ax3.set_xticks(a)
    ax3.set_xticklabels([f"{x:g}" for x in a])
    ax3.set_xlabel("latency-budget scale alpha (every request's budget x alpha; log scale)")
    ax3.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax3.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
