"""``carbon-router compare``: the same requests under six pick rules, side by side (docs/contract.md).

Every policy is one full event-time replay of the same inputs (``router.replay``) with the same mask, every
filter and the capacity guard included, each booking its own placements in its own capacity windows; only the
pick differs (``router.kernel._pick``): ``all_local`` (home, or rejected with the home's first failing
filter), ``nearest`` (lowest latency), ``cheapest_energy`` (lowest energy cost), ``lowest_carbon`` (lowest
marginal carbon), ``score_no_duals`` (this router's score, never re-solving) and ``score`` (this router, as
``score`` runs it). Ties go to the lowest region index in every rule. The totals come from the one
accumulator, ``router.totals.Totals``; ``objective_usd`` is the sum of the picks' scores without their dual
terms, so the policies are compared on the objective the router minimises.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from router.accounting import AVERAGE, MARGINAL, AverageIntensity, average_carbon
from router.commands import load_inputs, read_forecasts
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.outputs import check_dir_target, ensure_dir, write_atomic
from router.placement import PlacementMessage
from router.replay import ReplayOptions, replay
from router.topology import Topology
from router.totals import Totals

__all__ = ["CSV_FIELDS", "POLICY_RUNS", "cmd_compare", "compare_policies", "nearest_rank", "policy_row"]

#: policy name -> (the kernel's pick rule, whether the replay re-solves)
POLICY_RUNS: dict[str, tuple[str, bool]] = {
    "all_local": ("all_local", False),
    "nearest": ("nearest", False),
    "cheapest_energy": ("cheapest_energy", False),
    "lowest_carbon": ("lowest_carbon", False),
    "score_no_duals": ("score", False),
    "score": ("score", True),
}

CSV_FIELDS = (
    "policy",
    "requests",
    "placed",
    "rejected",
    "energy_usd",
    "carbon_g",
    "average_carbon_g",
    "egress_usd",
    "objective_usd",
    "latency_ms_p50",
    "latency_ms_p99",
    "relocated_share",
    "layer_local",
    "layer_regional",
    "layer_energy",
)


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile by nearest rank: the ``ceil(q * n)``-th smallest value (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def policy_row(
    name: str, placements: Sequence[PlacementMessage], intensity: AverageIntensity
) -> dict[str, Any]:
    """One policy's line of compare.json from its placements."""
    t = Totals()
    t.add(placements)
    if intensity.any:
        t.add_average(*average_carbon(placements, intensity))
    shares = t.shares()
    latency = [p["latency_ms"] for p in placements if p["latency_ms"] is not None]
    return {
        "policy": name,
        "requests": t.requests,
        "placed": t.placed,
        "rejected": t.rejected,
        "energy_usd": t.cost_usd,
        "carbon_g": t.carbon_g,
        "egress_usd": t.egress_usd,
        "objective_usd": t.objective_usd,
        "latency_ms_p50": nearest_rank(latency, 0.5),
        "latency_ms_p99": nearest_rank(latency, 0.99),
        "relocated_share": shares["relocated_share"],
        "layers": shares["layer_share"],
        "rejected_share": shares["rejected_share"],
        "reasons": dict(sorted(t.reasons.items())),
        "average_carbon_g": t.average_carbon_g if intensity.any else None,
        "average_unvalued": t.average_unvalued if intensity.any else None,
    }


def compare_policies(
    topology: Topology,
    signals: Sequence[tuple[int, GridSignal]],
    requests: Sequence[tuple[int, Request]],
    *,
    statuses: Sequence[tuple[int, RegionStatus]] = (),
    forecasts: Sequence[tuple[int, GridForecast]] = (),
    sources: tuple[str, str, str] = ("signals", "requests", "statuses"),
    alpha: float = 1.0,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """One replay per policy of ``POLICY_RUNS``, in that order; their compare.json lines."""
    intensity = AverageIntensity(topology, [s for _, s in signals])
    rows = []
    for name, (rule, duals) in POLICY_RUNS.items():
        opts = ReplayOptions(alpha=alpha, use_duals=duals, now=now, explain=True, policy=rule)
        res = replay(
            topology, signals, requests, statuses=statuses, options=opts, sources=sources, forecasts=forecasts
        )
        rows.append(policy_row(name, res.placements, intensity))
    return rows


def _csv(rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO(newline="")
    w = csv.writer(text)
    w.writerow(CSV_FIELDS)
    for r in rows:
        flat = {**r, **{f"layer_{k}": v for k, v in r["layers"].items()}}
        w.writerow(["" if flat[f] is None else flat[f] for f in CSV_FIELDS])
    return text.getvalue().encode("utf-8")


def compare_figure(rows: list[dict[str, Any]]) -> Any:
    """Energy cost against marginal carbon, one point per policy, coloured by median latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9.0, 6.0))
    xs = [r["energy_usd"] for r in rows]
    ys = [r["carbon_g"] / 1e3 for r in rows]
    p50 = [r["latency_ms_p50"] or 0.0 for r in rows]
    dots = ax.scatter(xs, ys, c=p50, cmap="viridis", s=90, edgecolors="black", zorder=3)
    shared: dict[tuple[float, float], list[dict[str, Any]]] = {}  # equal totals share one label
    for r, x, y in zip(rows, xs, ys, strict=True):
        shared.setdefault((x, y), []).append(r)
    for (x, y), same in shared.items():
        r = same[0]
        lat = (
            "-"
            if r["latency_ms_p50"] is None
            else f"{r['latency_ms_p50']:.0f} / {r['latency_ms_p99']:.0f} ms"
        )
        ax.annotate(
            f"{' = '.join(q['policy'] for q in same)}\np50/p99 {lat}\nplaced {r['placed']:,}",
            (x, y),
            textcoords="offset points",
            xytext=(8, 6),
            fontsize=7.5,
        )
    fig.colorbar(dots, ax=ax, label="median latency of placed requests (ms)")
    ax.set_xlabel("energy cost of placed requests (USD)")
    ax.set_ylabel("marginal carbon of placed requests (kg CO2, location-based)")
    ax.set_title("The same requests under six policies (same mask, same event time)")
    ax.grid(alpha=0.3)
    ax.margins(0.25)
    fig.tight_layout()
    return fig


def write_compare(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Write compare.json, compare.csv and compare.png into ``out_dir`` (each atomically); their paths."""
    ensure_dir(out_dir, "--out")
    doc = {
        "carbon_accounting": MARGINAL,
        "average_accounting": AVERAGE,
        "latency_quantiles": "nearest rank over the placed requests",
        "policies": rows,
    }
    paths = [out_dir / "compare.json", out_dir / "compare.csv", out_dir / "compare.png"]
    write_atomic(paths[0], orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    write_atomic(paths[1], _csv(rows))
    fig = compare_figure(rows)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=120)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    write_atomic(paths[2], buf.getvalue())
    return paths


def format_table(rows: list[dict[str, Any]]) -> str:
    """The table ``compare`` prints (money in USD, carbon in kg, latency in ms, shares in %)."""
    avg = any(r["average_carbon_g"] is not None for r in rows)
    head = (
        f"{'policy':<16}{'placed':>8}{'rejected':>9}{'energy $':>10}{'marg. kg':>10}"
        + (f"{'avg. kg':>9}" if avg else "")
        + f"{'egress $':>10}{'objective $':>12}{'p50 ms':>9}{'p99 ms':>9}{'moved':>7}"
    )
    lines = [head]
    for r in rows:
        cell = (
            ""
            if not avg
            else "-".rjust(9)
            if r["average_carbon_g"] is None
            else f"{r['average_carbon_g'] / 1e3:>9.3f}"
        )
        p50, p99 = r["latency_ms_p50"], r["latency_ms_p99"]
        lines.append(
            f"{r['policy']:<16}{r['placed']:>8,}{r['rejected']:>9,}{r['energy_usd']:>10.4f}"
            f"{r['carbon_g'] / 1e3:>10.3f}{cell}{r['egress_usd']:>10.5f}{r['objective_usd']:>12.4f}"
            f"{'-' if p50 is None else f'{p50:.0f}':>9}{'-' if p99 is None else f'{p99:.0f}':>9}"
            f"{r['relocated_share']:>7.1%}"
        )
    note = f"carbon: {MARGINAL}" + (f"; avg.: {AVERAGE}" if avg else "; no average values in the signals")
    return "\n".join([*lines, note])


def cmd_compare(args: argparse.Namespace) -> int:
    """Replay the inputs under every policy; write the three files and print the table."""
    check_dir_target(args.out, "--out")
    topo, sig, req, st, sources = load_inputs(args.topology, args.signals, args.requests, args.statuses)
    rows = compare_policies(
        topo,
        sig,
        req,
        statuses=st,
        forecasts=read_forecasts(args.forecasts),
        sources=sources,
        alpha=args.alpha,
        now=None if args.now is None else float(args.now),
    )
    paths = write_compare(rows, args.out)
    print(format_table(rows))
    for p in paths:
        print(p)
    return 0
