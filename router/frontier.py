"""The energy-latency frontier: one replay per budget scale ``alpha``, with ERoL/CRoL and a plot.

Carbon is marginal (what the router decides on); when the signals carry average intensities, each point
also has the average-intensity (location-based) totals beside it (router/accounting.py).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from router.accounting import AVERAGE, MARGINAL, AverageIntensity, average_carbon
from router.analysis import summary_of
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.outputs import ensure_dir, write_atomic
from router.replay import ReplayOptions, replay
from router.topology import Topology
from router.totals import Totals

__all__ = ["CSV_FIELDS", "frontier_figure", "frontier_points", "saving_limits", "write_frontier"]

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
    "total_average_carbon_g",
    "baseline_average_carbon_g",
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
    now: float | None = None,
) -> list[dict[str, Any]]:
    """The contract's frontier points, one full replay per alpha (sorted ascending); ``now`` is the router's
    clock (router/clock.py; None: no check)."""
    mean_budget = sum(r.latency_budget_ms for _, r in requests) / max(1, len(requests))
    intensity = AverageIntensity(topology, [s for _, s in signals])
    points: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    for alpha in sorted(alphas):
        res = replay(
            topology,
            signals,
            requests,
            statuses=statuses,
            options=ReplayOptions(alpha=alpha, now=now),
            sources=sources,
            forecasts=forecasts,
        )
        totals = Totals()
        totals.add(res.placements)
        if intensity.any:
            totals.add_average(*average_carbon(res.placements, intensity))
        s = summary_of(totals, carbon_usd_per_tonne=topology.objective.carbon_usd_per_tonne)
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
            "carbon_accounting": MARGINAL,
            **_average_fields(totals, intensity.any),
        }
        if prev is not None:
            extra_ms = point["mean_budget_ms"] - prev["mean_budget_ms"]
            if extra_ms > 0:
                point["erol_usd_per_ms"] = (prev["total_energy_usd"] - s.total_energy_usd) / extra_ms
                point["crol_g_per_ms"] = (prev["total_carbon_g"] - s.total_carbon_g) / extra_ms
        points.append(point)
        prev = point
    return points


def _average_fields(t: Totals, known: bool) -> dict[str, Any]:
    """The average-intensity totals of a point: over the placed requests whose region and home both have an
    average value (``average_unvalued`` counts the others); all null when the signals carry none."""
    has = known and t.average_carbon_g is not None
    return {
        "total_average_carbon_g": t.average_carbon_g if has else None,
        "baseline_average_carbon_g": t.average_baseline_ug / 1e6 if has else None,
        "average_unvalued": t.average_unvalued if known else None,
        "average_accounting": AVERAGE,
    }


def write_frontier(points: list[dict[str, Any]], out_dir: Path, *, title: str = "") -> list[Path]:
    """Write frontier.json, frontier.csv and frontier.png into ``out_dir`` (created when missing, each file
    written atomically); returns the paths."""
    ensure_dir(out_dir, "--out")
    j = out_dir / "frontier.json"
    write_atomic(j, orjson.dumps(points, option=orjson.OPT_INDENT_2) + b"\n")
    c = out_dir / "frontier.csv"
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(CSV_FIELDS)
    for p in points:
        flat = {**p, **{f"layer_{k}": v for k, v in p["layer_share"].items()}}
        w.writerow(["" if flat[f] is None else flat[f] for f in CSV_FIELDS])
    write_atomic(c, text.getvalue().encode("utf-8"))
    png = out_dir / "frontier.png"
    fig = frontier_figure(points, title)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    write_atomic(png, buf.getvalue())
    return [j, c, png]


def _pct(saved: float, routed: float) -> float:
    """Saving as a share of the all-local cost of the same placed requests."""
    base = routed + saved
    return 100.0 * saved / base if base else 0.0


def saving_limits(values: Sequence[float]) -> tuple[float, float]:
    """Y limits (in %) of the savings panel: they fit every value and zero, with room below each point for
    its label, so a negative saving (routing cost more than all-local) shows below the zero line."""
    lo, hi = min(0.0, *values, 0.0), max(0.0, *values, 0.0)
    span = (hi - lo) or 1.0
    return lo - 0.2 * span, hi + 0.1 * span


def frontier_figure(points: list[dict[str, Any]], title: str = "") -> Any:
    """The frontier plot as a matplotlib Figure (savings against alpha on top, layers below)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = [p["alpha"] for p in points]
    fig, (ax1, ax3) = plt.subplots(
        2, 1, figsize=(9.5, 8.0), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    cost_pct = [_pct(p["saved_energy_usd"], p["total_energy_usd"]) for p in points]
    co2_pct = [_pct(p["saved_carbon_g"], p["total_carbon_g"]) for p in points]
    ax1.axhline(0.0, color="black", linewidth=0.8, zorder=1)
    ax1.plot(a, cost_pct, "o-", color="#1f77b4", label="energy cost saved")
    ax1.plot(a, co2_pct, "s-", color="#2ca02c", label="marginal carbon saved")
    avg = [p for p in points if p.get("total_average_carbon_g") is not None]
    avg_pct = [
        _pct(p["baseline_average_carbon_g"] - p["total_average_carbon_g"], p["total_average_carbon_g"])
        for p in avg
    ]
    if avg:
        ax1.plot([p["alpha"] for p in avg], avg_pct, "d--", color="#8c564b", label="average carbon saved")
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
    ax1.set_ylim(*saving_limits([*cost_pct, *co2_pct, *avg_pct]))
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
    return fig
