"""``carbon-router worker``: the data plane and the control plane of one worker in one process.

SIGTERM or SIGINT: stop fetching, finish and commit the batch in flight, exit 0.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import faust
import structlog

from router.errors import RouterError
from router.live import LiveRouter
from router.scoring import warm_up
from router.topology import load_topology
from streams.control import build_app
from streams.dataplane import DataPlane
from streams.logs import configure_logging
from streams.metrics import Metrics
from streams.settings import Settings
from streams.statefeed import StateFeed
from streams.topics import ensure_topics

__all__ = ["run_worker", "tune_gc"]

#: Young-generation threshold of the garbage collector (CPython's default is 700). A batch of 4,096
#: placements allocates tens of thousands of short-lived dicts and lists; with the default, a batch paid
#: for dozens of collections and, every so often, a full one (bench/README.md, "GC").
GC_GEN0_THRESHOLD = 20_000


def tune_gc() -> None:
    """Collect once, move everything alive after start-up (modules, Numba, faust, the plan) out of the
    collector's sight, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


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
    live = LiveRouter(topo, dedup_size=settings.dedup_cache_size)
    metrics = Metrics(settings.worker_id)
    dataplane = DataPlane(settings, live, metrics)
    statefeed = StateFeed(settings, live)
    app = build_app(settings, live, metrics, dataplane, statefeed)
    log.info(
        "worker_starting",
        worker_id=settings.worker_id,
        regions=live.plan.n_regions,
        web_port=settings.web_port,
    )
    worker = faust.Worker(app, statefeed, dataplane, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    tune_gc()
    worker.execute_from_commandline()
