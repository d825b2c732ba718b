"""``python -m faults.runner [--quick] [--only N ...]``: run the fault scenarios and print the table.

One embedded tansu broker for the whole invocation (loopback only), a fresh topic set per scenario, real
worker child processes. Prints: scenario, requests sent, acknowledged, placed, lost, duplicates, recovery
time, and whether every invariant held; writes the full results (with details and violations) to
``faults/results/latest.json`` (its ``mode`` says quick or full). Exit status 1 when any invariant failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from faults.scenarios import QUICK, SCENARIOS, Ctx, Result, run_scenario
from streams.broker import EmbeddedBroker

__all__ = ["RESULTS", "main", "table"]

RESULTS = Path(__file__).resolve().parent / "results"
_COLUMNS = ("scenario", "sent", "acked", "placed", "lost", "duplicates", "recovery", "ok")


def table(results: Sequence[Result]) -> str:
    """The results as a plain-text table, then one line per failed invariant."""
    rows = [list(_COLUMNS)]
    for r in results:
        rows.append(
            [
                f"{r.number} {r.name}",
                f"{r.sent:,}",
                f"{r.acked:,}",
                f"{r.placed:,}",
                f"{r.lost:,}",
                f"{r.duplicates:,}",
                "-" if r.recovery_s is None else f"{r.recovery_s:.1f} s",
                "yes" if r.ok else "NO",
            ]
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(_COLUMNS))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    lines.insert(1, "-" * len(lines[0]))
    for r in results:
        lines.extend(f"  scenario {r.number}: {v}" for v in r.violations)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios; 0 when every invariant held, 1 otherwise."""
    ap = argparse.ArgumentParser(prog="python -m faults.runner", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the short forms that `make test` runs")
    ap.add_argument("--only", nargs="+", choices=list(SCENARIOS), help="scenario numbers")
    args = ap.parse_args(argv)
    # the load generator's clients retry through every fault; their warnings would drown the table
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    numbers = args.only or list(QUICK if args.quick else SCENARIOS)
    started = time.time()
    logdir = Path(tempfile.mkdtemp(prefix="carbon-router-faults-"))
    results: list[Result] = []
    with EmbeddedBroker() as broker:
        ctx = Ctx(bootstrap=broker.bootstrap, logdir=logdir, quick=args.quick)
        for n in numbers:
            print(f"scenario {n} ...", file=sys.stderr, flush=True)
            res = run_scenario(n, ctx)
            print(f"scenario {n}: {'ok' if res.ok else 'FAILED'} in {res.seconds:.0f} s", file=sys.stderr)
            results.append(res)
    print(table(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "latest.json"
    doc = {
        "mode": "quick" if args.quick else "full",
        "started": started,
        "seconds": round(time.time() - started, 1),
        "worker_logs": str(logdir),
        "results": [r.to_json() for r in results],
    }
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"results: {out}   worker logs: {logdir}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
