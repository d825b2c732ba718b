"""Cold-start benchmark: process start to first decision, with and without a Numba cache.

Each run is a fresh ``python -c`` child that imports the router, loads the bundled topology, builds a
``Scorer``, and decides one bundled request through ``Scorer.decide`` (the compiled kernel), then prints the
wall-clock time of that decision. The parent takes the time just before it spawns the child, so the figure
includes interpreter start-up and every import. ``cold``: a new, empty ``NUMBA_CACHE_DIR`` (the kernel is
compiled). ``warm``: the same child run twice with one cache directory, the second one timed. Three of each
(``--repeats``); prints the table and the target (warm <= 3 s), writes ``bench/results/coldstart.json``.

    python -m bench.coldstart_bench [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import load_average, machine, print_table, summary, write_json

__all__ = ["main", "time_first_decision"]

TARGET_WARM_S = 3.0
CHILD = """
import time
t_import = time.time()
from router.commands import bundled
from router.plan import Plan
from router.scoring import Scorer
from router.topology import load_topology
from router.models import Request
import orjson
t_imported = time.time()
topo = load_topology(None)
plan = Plan(topo)
scorer = Scorer(plan)
line = bundled("sample_requests.jsonl").read_bytes().splitlines()[0]
req = Request.model_validate(orjson.loads(line))
batch = plan.arrays([req], [plan.request_row(req, ts=req.ts, source="bench")])
d = scorer.decide(batch)
t_decided = time.time()
print(orjson.dumps({"interp_up": t_import, "imported": t_imported, "decided": t_decided,
                    "choice": int(d.out_i[0, 0])}).decode())
"""


def time_first_decision(cache_dir: Path, cwd: Path) -> dict[str, Any]:
    """One child run; seconds from spawn to interpreter up, to imports done, to the first decision."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_CACHE_DIR"] = str(cache_dir)
    t0 = time.time()
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    t_exit = time.time()
    if done.returncode != 0:
        raise RuntimeError(f"cold-start child failed ({done.returncode}):\n{done.stderr[-2000:]}")
    import orjson

    got = orjson.loads(done.stdout.strip().splitlines()[-1])
    return {
        "to_interpreter_s": got["interp_up"] - t0,
        "to_imports_s": got["imported"] - t0,
        "to_first_decision_s": got["decided"] - t0,
        "to_exit_s": t_exit - t0,
        "choice": got["choice"],
        "load_average": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run cold and warm children, print the table and the target, write the JSON."""
    ap = argparse.ArgumentParser(prog="python -m bench.coldstart_bench", description="first decision time")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    facts = machine()
    cwd = Path(__file__).resolve().parent.parent
    runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory(prefix="carbon-router-coldstart-") as tmp:
        for k in range(args.repeats):
            cold_dir = Path(tmp) / f"cold{k}"
            cold_dir.mkdir()
            runs["cold"].append(time_first_decision(cold_dir, cwd))
            warm_dir = Path(tmp) / f"warm{k}"
            warm_dir.mkdir()
            time_first_decision(warm_dir, cwd)  # fills the cache
            runs["warm"].append(time_first_decision(warm_dir, cwd))
    keys = ("to_interpreter_s", "to_imports_s", "to_first_decision_s", "to_exit_s")
    stats = {kind: {key: summary([r[key] for r in rs]) for key in keys} for kind, rs in runs.items()}
    rows = []
    for kind in ("cold", "warm"):
        rows.append(
            [
                kind,
                *(stats[kind][key]["median"] for key in keys),
                stats[kind]["to_first_decision_s"]["max"],
                " ".join(f"{r['load_average'][0]:.2f}" for r in runs[kind]),
            ]
        )
    print_table(
        f"cold start: process spawn to first decision, median of {args.repeats} (seconds)",
        [
            "numba cache",
            "interpreter up",
            "imports done",
            "first decision",
            "exit",
            "decision max",
            "load 1m",
        ],
        rows,
    )
    warm = stats["warm"]["to_first_decision_s"]["median"]
    ok = warm <= TARGET_WARM_S
    print(
        f"\n  {'PASS' if ok else 'MISS'}  first decision with a warm cache: {warm:.2f} s "
        f"(target <= {TARGET_WARM_S:g} s); load average {load_average()}"
    )
    write_json(
        "coldstart",
        {
            "argv": vars(args),
            "machine": facts,
            "runs": runs,
            "stats": stats,
            "target": {"warm_first_decision_s": warm, "goal": TARGET_WARM_S, "pass": ok},
            "load_average_at_end": load_average(),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
