"""``carbon-router worker``: the data plane and the control plane of one worker in one process.

SIGTERM or SIGINT: stop fetching, finish and commit the batch in flight, exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from pathlib import Path

import faust
import structlog

from router.decider import Decider
from router.errors import RouterError
from router.scoring import warm_up
from router.topology import load_topology
from streams.adapters import Adapters
from streams.control import build_app
from streams.dataplane import DataPlane
from streams.door import Door, add_door_pages
from streams.intake import Intake
from streams.leadership import Leadership
from streams.logs import configure_logging
from streams.memory import MMAP_THRESHOLD_BYTES, tune_malloc
from streams.metrics import Metrics
from streams.settings import Settings
from streams.statefeed import StateFeed
from streams.topics import ensure_topics
from streams.validation import Validation

__all__ = ["run_worker", "time_gc", "tune_gc"]

#: Garbage-collector thresholds of the worker (CPython's defaults are 700, 10, 10). A batch of 4,096
#: placements allocates tens of thousands of short-lived dicts and lists; with the defaults a batch paid for
#: dozens of young collections and, every few batches, a full one over everything alive. Measured with
#: ``python -m bench.pipeline_bench`` (120k records, 2026-11-26): placement building 11.2 us per decision at
#: (20000, 10, 10), 7.5 at these, about 7.4 with the collector off.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect once, move everything alive after start-up (modules, Numba, faust, the plan) out of the
    collector's sight, and collect less often (``GC_THRESHOLDS``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def time_gc(observe: Callable[[str, float], None]) -> None:
    """Report every collection's generation and pause (s) to ``observe``: a collection stops the event loop,
    so it shows in ``carbon_router_gc_pause_seconds`` beside the loop lag it causes."""
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            observe(str(info["generation"]), time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)


def run_worker(settings: Settings, topology: Path | None = None) -> None:
    """Run one worker until SIGTERM/SIGINT (exits the process with status 0)."""
    configure_logging(settings.log_level)
    log = structlog.get_logger("carbon_router.worker")
    topo = load_topology(topology or settings.topology)
    warm_up()
    try:
        asyncio.run(ensure_topics(settings))
    except RouterError:
        raise
    except Exception as exc:  # unreachable cluster, refused TLS or credentials: one clear line, no traceback
        raise RouterError(
            f"cannot use the Kafka cluster at {settings.kafka_bootstrap_servers} "
            f"({settings.security_protocol}): {type(exc).__name__}: {exc}"
        ) from None
    for warning in topo.warnings():
        log.warning("topology_unusual_value", detail=warning)
    live = Decider(topo, dedup_size=settings.dedup_cache_size, explain=settings.explain)
    metrics = Metrics(
        settings.worker_id,
        carbon_usd_per_tonne=topo.objective.carbon_usd_per_tonne,
        tenants=[t.id for t in topo.tenants],
    )
    leadership = Leadership(settings.worker_id)
    dataplane = DataPlane(settings, live, metrics, leadership)
    statefeed = StateFeed(settings, live, leadership, metrics)
    intake = Intake(
        settings,
        metrics,
        Validation(settings, live, metrics, leadership),
        Adapters(settings, topo, metrics),
    )
    app = build_app(settings, live, metrics, dataplane, statefeed, leadership, intake)
    if settings.door:
        add_door_pages(app, Door(settings, live, metrics, dataplane))
    log.info(
        "worker_starting",
        worker_id=settings.worker_id,
        regions=live.plan.n_regions,
        web_port=settings.web_port,
    )
    worker = faust.Worker(
        app, statefeed, intake, dataplane, loglevel="WARNING", quiet=True, redirect_stdouts=False
    )
    # faust's terminal spinner sets the root logger to DEBUG (so that it spins on every record): every
    # aiokafka debug call then builds a LogRecord (py-spy: ~9% of the worker's CPU at 1k requests/s) and
    # escape codes reach stdout. No spinner: the root logger keeps the level configure_logging gave it.
    worker.spinner = None
    tune_gc()
    log.info("malloc_tuned" if tune_malloc() else "malloc_not_glibc", mmap_threshold=MMAP_THRESHOLD_BYTES)
    time_gc(lambda gen, s: metrics.gc_pause.labels(gen).observe(s))
    worker.execute_from_commandline()
