"""The leader's capacity re-solve in a child process, so that the worker's event loop never waits for it.

HiGHS releases the GIL while it solves, but building and reading the model is Python and NumPy, which in
a thread competes with the data plane for the GIL (``python -m bench.resolve_bench`` measures the
event-loop lateness both ways). One long-lived child process (``spawn``) holds the ``CapacityResolver``,
so warm starts keep working across solves; inputs and results are small arrays, pickled. If the child
dies, the solve counts as failed (the last good shares stay in use) and the next solve starts a new child.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

import structlog

from router.resolve import CapacityResolver, ResolveInput, ResolveResult, never_solved

__all__ = ["SolverProcess"]

log = structlog.get_logger("carbon_router.solver")

_resolver: CapacityResolver | None = None  # the child's own, built by _start


def _start(n_regions: int, penalty_usd_per_wh: float, time_limit_s: float) -> None:
    global _resolver  # one resolver per child process, built once by the pool initializer
    _resolver = CapacityResolver(n_regions, penalty_usd_per_wh=penalty_usd_per_wh, time_limit_s=time_limit_s)


def _solve(inp: ResolveInput) -> ResolveResult:
    assert _resolver is not None, "the pool initializer builds the resolver"
    return _resolver.solve(inp)


class SolverProcess:
    """``await solve(inp)`` runs ``CapacityResolver.solve`` in one long-lived child process."""

    def __init__(self, n_regions: int, *, penalty_usd_per_wh: float, time_limit_s: float) -> None:
        self._args = (n_regions, penalty_usd_per_wh, time_limit_s)
        self._pool: ProcessPoolExecutor | None = None
        self._last: ResolveResult | None = None

    def _ensure(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start,
                initargs=self._args,
            )
        return self._pool

    async def solve(self, inp: ResolveInput) -> ResolveResult:
        """The child's result; when the child died, the last good result with ``ok=False``."""
        loop = asyncio.get_running_loop()
        try:
            res = await loop.run_in_executor(self._ensure(), _solve, inp)
        except BrokenProcessPool as exc:
            log.warning("solver_process_died", error=repr(exc))
            self.close()
            return self._failed(f"solver process died: {exc!r}")
        for arr in (res.shares, res.unserved_share, res.mu_usd_per_wh):
            arr.flags.writeable = False  # read-only, as the resolver returns them
        if res.ok:
            self._last = res
        return res

    def _failed(self, status: str) -> ResolveResult:
        """The last good result kept, marked failed (the version-0 result before any success)."""
        if self._last is None:
            return replace(never_solved(self._args[0]), status=status)
        return replace(self._last, ok=False, status=status, solve_s=0.0, warm=False)

    def close(self) -> None:
        """Stop the child (it is started again by the next solve)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
