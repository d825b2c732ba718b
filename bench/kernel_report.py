"""The kernel benchmark's report: a table per scorer, the speed-up over each baseline, the targets."""

from __future__ import annotations

import math
from typing import Any

from bench.kernel_timing import SCORER_TITLES, SCORERS

__all__ = ["BASELINES", "TARGET_N", "TARGET_R", "print_table", "report", "speedups", "targets"]

TARGET_R, TARGET_N = 32, 1024
#: the baselines the kernel (public wrapper) is compared with, in the order of the summary table
BASELINES = ("python", "numpy", "numpy_request", "lp_request")


def print_table(scorer: str, cells: list[dict[str, Any]]) -> None:
    """One scorer's cells as a table (nothing when the scorer did not run)."""
    mine = [c for c in cells if c["scorer"] == scorer]
    if not mine:
        return
    print(f"\n== {scorer}: {SCORER_TITLES[scorer]}")
    head = ("R", "N", "runs", "cpu%", "med us/batch", "p99 us/batch", "ns/pair", "p99 ns/pair", "decisions/s")
    print("{:>5} {:>5} {:>7} {:>5} {:>13} {:>13} {:>9} {:>11} {:>12}".format(*head))
    for c in mine:
        print(
            f"{c['R']:>5} {c['N']:>5} {c['runs']:>7} {c['cpu_share']:>5.0%} {c['median_ns'] / 1e3:>13.2f}"
            f" {c['p99_ns'] / 1e3:>13.2f} {c['ns_per_pair_median']:>9.2f} {c['ns_per_pair_p99']:>11.2f}"
            f" {c['decisions_per_s_median']:>12.4g}"
        )


def speedups(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (R, N): baseline median time / kernel median time for every baseline that ran (None otherwise)."""
    by = {(c["scorer"], c["R"], c["N"]): c for c in cells}
    out = []
    for R, n in sorted({(c["R"], c["N"]) for c in cells}):
        k = by["kernel", R, n]["median_ns"]
        row: dict[str, Any] = {"R": R, "N": n}
        for name in BASELINES:
            row[f"vs_{name}"] = by[name, R, n]["median_ns"] / k if (name, R, n) in by else None
        row["wrapper_overhead_us"] = (k - by["kernel_raw", R, n]["median_ns"]) / 1e3
        out.append(row)
    return out


def targets(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets at R = 32, N = 1024, measured through the public wrapper; other ratios as info."""
    at = {c["scorer"]: c for c in cells if c["R"] == TARGET_R and c["N"] == TARGET_N}
    k = at["kernel"]["median_ns"]
    rows = [
        ("kernel speed-up vs naive Python", at["python"]["median_ns"] / k, ">=", 100.0, "x"),
        ("kernel speed-up vs NumPy per batch", at["numpy"]["median_ns"] / k, ">=", 3.0, "x"),
        ("kernel ns per request x region", at["kernel"]["ns_per_pair_median"], "<=", 3.0, "ns"),
    ]
    out: list[dict[str, Any]] = []
    for name, value, op, goal, unit in rows:
        ok = value >= goal if op == ">=" else value <= goal
        out.append({"target": name, "measured": value, "op": op, "goal": goal, "unit": unit, "pass": ok})
    info = [("raw kernel ns per request x region", at["kernel_raw"]["ns_per_pair_median"], "ns")]
    for name, title in (("numpy_request", "NumPy per request"), ("lp_request", "an LP per request")):
        if name in at:
            info.append((f"kernel speed-up vs {title}", at[name]["median_ns"] / k, "x"))
    for name, value, unit in info:
        out.append({"target": f"{name} (information, no target)", "measured": value, "unit": unit})
    return out


def _ratio(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.1f}x"


def report(
    facts: dict[str, Any], checks: dict[str, Any], cells: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Print machine facts, batch statistics, tables, speed-ups and targets; return the last two."""
    print("machine:")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    print("\nbenchmark batch (all scorers agree on every pick and score; capacity never binds):")
    for R, c in checks.items():
        lp = f", LP solves {c['lp_solves']}" if "lp_solves" in c else ""
        print(
            f"  R={R:>4}: placed {c['placed_share']:.0%}, mean feasible regions"
            f" {c['mean_feasible_regions']:.1f}, local {c['local_share_of_placed']:.0%},"
            f" removed by filter {c['removed_by_filter']}{lp}"
        )
    for scorer in SCORERS:
        print_table(scorer, cells)
    ups = speedups(cells)
    print("\nspeed-up of the kernel (public wrapper) over each baseline, by median time per batch:")
    names = [f"vs {b}" for b in BASELINES]
    print(f"{'R':>5} {'N':>5} " + " ".join(f"{h:>16}" for h in names) + f" {'wrapper overhead us':>20}")
    for u in ups:
        ratios = " ".join(f"{_ratio(u[f'vs_{b}']):>16}" for b in BASELINES)
        print(f"{u['R']:>5} {u['N']:>5} {ratios} {u['wrapper_overhead_us']:>20.2f}")
    goals = targets(cells)
    print(f"\ntargets at R = {TARGET_R}, N = {TARGET_N} (kernel through router.scoring.Scorer.decide):")
    for g in goals:
        if "pass" in g:
            verdict, goal = ("PASS" if g["pass"] else "MISS"), f"target {g['op']} {g['goal']:g}"
            print(f"  {verdict}  {g['target']}: {g['measured']:.2f} {g['unit']} ({goal})")
        else:
            print(f"  info  {g['target']}: {g['measured']:.2f} {g['unit']}")
    return ups, goals
