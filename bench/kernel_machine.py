"""Machine facts of a benchmark run: CPU, versions, Numba settings, timer overhead, a speed index, load.

``machine_facts`` is also used by the other benchmarks (``bench/common.py``, through ``bench.kernel_bench``).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from router import kernel

__all__ = ["busy_cpu_s", "calibration_ms", "machine_facts", "own_cpu_s", "timer_overhead_ns"]


def machine_facts() -> dict[str, Any]:
    """CPU, versions, Numba settings and the repository commit the numbers belong to."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout)
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    layer = getattr(numba.config, "THREADING_LAYER", "unknown")  # set at import, untyped
    return {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threading_layer": f"{layer} (numba.config; the kernel has no parallel code)",
        "numba_disable_jit": bool(getattr(numba.config, "DISABLE_JIT", False)),
        "njit_flags": dict(kernel.NJIT_FLAGS),
        "timer_overhead_ns": timer_overhead_ns(),
        "calibration_ms_at_start": calibration_ms(),
        "load_average_at_start": os.getloadavg()[0],
        "git_commit": commit + ("+dirty" if dirty else ""),
    }


def busy_cpu_s() -> float:
    """CPU seconds all processes have spent busy since boot (``/proc/stat``; 0.0 where it is missing)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    jiffies = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
    return (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds this process has used (user + system)."""
    t = os.times()
    return t.user + t.system


def calibration_ms() -> float:
    """Best of 5 runs of a fixed pure-Python loop: a speed index for comparing runs across host load."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        acc = 0.0
        for k in range(200_000):
            acc += k * 1e-9
        best = min(best, time.perf_counter() - t0)
    return round(best * 1e3, 3)


def timer_overhead_ns() -> float:
    """Median cost of two back-to-back ``perf_counter_ns`` calls (included in every timed call)."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    return float(np.median(samples))
