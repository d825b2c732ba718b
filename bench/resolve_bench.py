"""Re-solve benchmark: cold and warm capacity LP solve times at three fleet sizes.

For each (groups x regions) in 20x16, 50x40 and 100x64, ``router.resolve.time_warm_solve`` builds a random
fleet (about 60 % of the pairs reachable, capacity about 1.2 x demand), times the first solve (cold: the
HiGHS model is built) and then ``--warm`` warm re-solves with perturbed demand and prices. That is repeated
``--repeats`` times with a fresh resolver each, so the cold time also gets a median and p99. Prints a table
(milliseconds), the target (warm <= 5 ms at 50x40) and writes ``bench/results/resolve.json``.

"Never stalling the data plane": ``loop_lateness`` measures it. An asyncio ticker that wants to run every
millisecond records how late each tick is, for ``--stall-s`` seconds without solves, while 100x64
re-solves run back to back in a thread (HiGHS releases the GIL while it solves, but building and reading
the model is Python), and while they run in the worker's child process (``streams.solver``, what the
worker does). Reported: p50, p99 and max lateness of each.

    python -m bench.resolve_bench [--repeats N] [--warm N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.common import load_average, machine, print_table, summary, write_json
from router import resolve

__all__ = ["main", "time_solves"]

SIZES = ((20, 16), (50, 40), (100, 64))
TARGET_WARM_MS = 5.0
TARGET_SIZE = (50, 40)


def time_solves(G: int, R: int, warm_repeats: int, seed: int) -> tuple[float, list[float]]:
    """(cold_s, warm_s list) on a random fleet: ``router.resolve.time_solves`` with a per-size seed."""
    return resolve.time_solves(G, R, warm_repeats, seed=[seed, G, R])


def loop_lateness(seconds: float, *, solving: str | None, seed: int) -> dict[str, float]:
    """Lateness (ms) of a 1 ms asyncio ticker over ``seconds``, optionally while 100x64 re-solves run back
    to back in a thread (``solving="thread"``, ``run_in_executor``) or in the worker's child process
    (``"process"``, ``streams.solver.SolverProcess``); also how many solves ran."""
    from dataclasses import replace

    import numpy as np

    from streams.solver import SolverProcess

    rng = np.random.default_rng(seed)
    base = resolve.random_fleet(100, 64, rng)
    inputs = [replace(base, demand_kw=base.demand_kw * rng.uniform(0.9, 1.1, 100)) for _ in range(20)]
    here = resolve.CapacityResolver(64, penalty_usd_per_wh=1e-3, time_limit_s=10.0)
    child = SolverProcess(64, penalty_usd_per_wh=1e-3, time_limit_s=10.0)

    async def run() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        if solving == "process":
            await child.solve(base)  # start the child before the clock runs
        stop = loop.time() + seconds
        solves = 0

        async def solver() -> None:
            nonlocal solves
            while loop.time() < stop:
                inp = inputs[solves % len(inputs)]
                if solving == "thread":
                    await loop.run_in_executor(None, here.solve, inp)
                else:
                    await child.solve(inp)
                solves += 1

        task = asyncio.create_task(solver()) if solving else None
        late: list[float] = []
        while loop.time() < stop:
            want = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            late.append(max(0.0, time.perf_counter() - want) * 1e3)
        if task is not None:
            await task
        return {**{k: v for k, v in summary(late).items() if k in ("median", "p99", "max")}, "solves": solves}

    try:
        return asyncio.run(run())
    finally:
        child.close()


def main(argv: list[str] | None = None) -> int:
    """Time every size, print the table and the target, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench.resolve_bench", description="capacity re-solve times")
    ap.add_argument("--repeats", type=int, default=7, help="fresh resolvers (cold solves) per size")
    ap.add_argument("--warm", type=int, default=30, help="warm re-solves per resolver")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--stall-s", type=float, default=3.0, help="seconds of each event-loop lateness run")
    args = ap.parse_args(argv)
    facts = machine()
    from router.resolve import time_warm_solve

    time_warm_solve(5, 4, 2)  # import HiGHS and touch every code path once
    cells: list[dict[str, Any]] = []
    for G, R in SIZES:
        colds: list[float] = []
        warms: list[float] = []
        for k in range(args.repeats):
            cold, warm = time_solves(G, R, args.warm, args.seed + k)
            colds.append(cold * 1e3)
            warms.extend(w * 1e3 for w in warm)
        cells.append(
            {
                "groups": G,
                "regions": R,
                "cold_ms": summary(colds),
                "warm_ms": summary(warms),
                "load": load_average(),
            }
        )
    print_table(
        f"capacity re-solve (HiGHS), {args.repeats} resolvers x {args.warm} warm solves per size (ms)",
        ["groups x regions", "cold median", "cold p99", "warm median", "warm p99", "warm max", "load avg 1m"],
        [
            [
                f"{c['groups']} x {c['regions']}",
                c["cold_ms"]["median"],
                c["cold_ms"]["p99"],
                c["warm_ms"]["median"],
                c["warm_ms"]["p99"],
                c["warm_ms"]["max"],
                c["load"][0],
            ]
            for c in cells
        ],
    )
    at = next(c for c in cells if (c["groups"], c["regions"]) == TARGET_SIZE)
    ok = at["warm_ms"]["median"] <= TARGET_WARM_MS
    print(
        f"\n  {'PASS' if ok else 'MISS'}  warm re-solve at 50x40: median {at['warm_ms']['median']:.2f} ms, "
        f"p99 {at['warm_ms']['p99']:.2f} ms (target <= {TARGET_WARM_MS:g} ms); load average {load_average()}"
    )
    modes = {
        "no re-solve": None,
        "100x64 re-solves in a thread": "thread",
        "... in the child process": "process",
    }
    lateness = {
        name: loop_lateness(args.stall_s, solving=mode, seed=args.seed) for name, mode in modes.items()
    }
    print_table(
        f"event-loop lateness of a 1 ms ticker over {args.stall_s:g} s (ms)",
        ["", "median", "p99", "max", "solves"],
        [[name, v["median"], v["p99"], v["max"], v["solves"]] for name, v in lateness.items()],
    )
    write_json(
        "resolve",
        {
            "loop_lateness_ms": lateness,
            "argv": vars(args),
            "machine": facts,
            "cells": cells,
            "target": {"warm_ms_median_50x40": at["warm_ms"]["median"], "goal": TARGET_WARM_MS, "pass": ok},
            "load_average_at_end": load_average(),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
