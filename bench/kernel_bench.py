"""Kernel benchmark: the compiled mask -> score -> pick kernel against Python, NumPy and LP baselines.

Run with ``make bench`` (or ``python -m bench.kernel_bench [--full]``). One process, one synthetic problem per
region count R, every scorer on the same batches. Before timing an R, every scorer must give the kernel's
picks and scores on the whole request pool. For each (R, N) cell every scorer is timed per call with
``time.perf_counter_ns`` after a warm-up, with the capacity windows reset outside the timed region so that
every repeat does the same work. Prints a table per scorer, the kernel's speed-up over each baseline, the
targets at R = 32, N = 1024 and the machine facts, and writes everything to ``bench/results/kernel.json``.
See ``bench/README.md``.

Modules: ``kernel_problem`` (the synthetic problem), ``kernel_timing`` (budgets, runners, per-cell timing),
``kernel_check`` (agreement), ``kernel_report`` (tables and targets), ``kernel_machine`` (machine facts);
the baselines are in ``baselines`` (naive Python, NumPy per batch) and ``baselines_request`` (NumPy per
request, an LP per request).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.kernel_check import check_agreement
from bench.kernel_machine import busy_cpu_s, calibration_ms, machine_facts, own_cpu_s
from bench.kernel_problem import build_problem
from bench.kernel_report import report
from bench.kernel_timing import FAST, NAIVE, SCORERS, SLOW_SCORERS, Runners, cell_stats, time_cell
from router.scoring import warm_up

__all__ = ["machine_facts", "main", "run_grid", "scorers_for"]

REGIONS = (8, 32, 128)
REGIONS_FULL = (*REGIONS, 512)
BATCHES = (1, 64, 1024)
#: the LP-per-request baseline runs at these region counts and batch sizes only (R = 32 is the cell the
#: targets are read at, bench/README.md)
LP_REGIONS = (32,)
LP_BATCHES = (1, 64, 1024)
RESULTS = Path(__file__).resolve().parent / "results" / "kernel.json"


def scorers_for(R: int, n: int | None = None) -> tuple[str, ...]:
    """The scorers timed at R regions and batch size ``n`` (``None``: at any batch size, for the check)."""
    lp = R in LP_REGIONS and (n is None or n in LP_BATCHES)
    return tuple(s for s in SCORERS if s != "lp_request" or lp)


def run_grid(
    regions: tuple[int, ...], seed: int, started: float, *, simple: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Check the scorers agree, then time every scorer on every (R, N) cell."""
    cells: list[dict[str, Any]] = []
    checks: dict[str, Any] = {}
    for R in regions:
        p = build_problem(R, max(BATCHES), seed, simple=simple)
        checks[str(R)] = check_agreement(p, max(BATCHES), scorers_for(R))
        for n in BATCHES:
            for scorer, (times, cpu_share) in time_cell(Runners(p, n, scorers_for(R, n))).items():
                cells.append(cell_stats(scorer, R, n, times, cpu_share))
            print(f"done R={R:<4} N={n:<5} ({time.perf_counter() - started:6.1f} s)", file=sys.stderr)
    return cells, checks


def main(argv: list[str] | None = None) -> int:
    """Run the grid, print the tables and targets, write the JSON; returns the process exit code."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.kernel_bench", description=(__doc__ or "kernel benchmark").splitlines()[0]
    )
    ap.add_argument("--full", action="store_true", help="also run R = 512")
    ap.add_argument("--seed", type=int, default=20240601, help="seed of the synthetic problem")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    ap.add_argument(
        "--problem",
        choices=("full", "simple"),
        default="full",
        help="full (default), or simple: the problem of the benchmark at commit 28c3adc (one fresh signal "
        "per region, no forecast), to time today's kernel against that commit's",
    )
    args = ap.parse_args(argv)
    started = time.perf_counter()
    busy0, own0 = busy_cpu_s(), own_cpu_s()
    facts = machine_facts()
    if facts["load_average_at_start"] > 0.5:
        warn(f"load average {facts['load_average_at_start']:.2f} at start: other processes share the CPU")
    if facts["numba_disable_jit"]:
        warn("NUMBA_DISABLE_JIT is set; the kernel numbers are pure-Python numbers")
    warm_up()
    cells, checks = run_grid(
        REGIONS_FULL if args.full else REGIONS, args.seed, started, simple=args.problem == "simple"
    )
    elapsed = time.perf_counter() - started
    facts["load_average_at_end"] = os.getloadavg()[0]
    facts["calibration_ms_at_end"] = calibration_ms()
    # CPUs kept busy by *other* processes during the run: on this 2-vCPU VM even one busy neighbour slows
    # the benchmark (the vCPUs can share a physical core) without lowering the cpu% column
    others = max(0.0, (busy_cpu_s() - busy0) - (own_cpu_s() - own0)) / elapsed
    facts["other_busy_cpus_during_run"] = round(others, 2)
    if others > 0.2:
        warn(f"other processes kept {others:.2f} CPUs busy during the run; rerun on a quiet machine")
    ups, goals = report(facts, checks, cells)
    print(f"\nrun took {elapsed:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "argv": sys.argv[1:] if argv is None else argv,
        "seed": args.seed,
        "problem": args.problem,
        "elapsed_s": elapsed,
        "machine": facts,
        "budgets": {
            "fast": asdict(FAST),
            "python": asdict(NAIVE),
            "slow": asdict(NAIVE),
            "slow_scorers": sorted(SLOW_SCORERS),
        },
        "lp_request_grid": {"regions": list(LP_REGIONS), "batches": list(LP_BATCHES)},
        "batch_checks": checks,
        "cells": cells,
        "speedups": ups,
        "targets": goals,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def warn(message: str) -> None:
    """A warning on stderr, so that stdout stays the report."""
    print(f"warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
