"""The leader's re-solve in a child process (streams.solver)."""

from __future__ import annotations

import asyncio
import os
import signal

import numpy as np

from router.resolve import CapacityResolver, ResolveInput
from streams.solver import SolverProcess


def _input(scale: float = 1.0) -> ResolveInput:
    rng = np.random.default_rng(7)
    G, R = 6, 4
    demand = rng.uniform(1.0, 10.0, G) * scale
    return ResolveInput(
        tuple(f"g{g}" for g in range(G)),
        demand,
        rng.normal(1e-4, 3e-5, (G, R)),
        np.ones((G, R), dtype=bool),
        np.full(R, demand.sum() / R * 0.9),
    )


def test_child_solves_like_the_in_process_resolver_and_warm_starts() -> None:
    """Same duals and shares as CapacityResolver in this process; the second solve is a warm one."""
    here = CapacityResolver(4, penalty_usd_per_wh=1e-3, time_limit_s=5.0)
    solver = SolverProcess(4, penalty_usd_per_wh=1e-3, time_limit_s=5.0)

    async def run() -> None:
        first = await solver.solve(_input())
        want = here.solve(_input())
        assert first.ok
        assert first.version == 1
        np.testing.assert_allclose(first.mu_usd_per_wh, want.mu_usd_per_wh, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(first.shares, want.shares, rtol=1e-9, atol=1e-12)
        second = await solver.solve(_input(1.05))
        assert second.ok
        assert second.warm
        assert second.version == 2
        assert not second.mu_usd_per_wh.flags.writeable

    try:
        asyncio.run(run())
    finally:
        solver.close()


def test_a_dead_child_fails_the_solve_keeps_the_last_good_and_restarts() -> None:
    """Killing the child makes that solve fail with the last good duals; the next solve works again."""
    solver = SolverProcess(4, penalty_usd_per_wh=1e-3, time_limit_s=5.0)

    async def run() -> None:
        good = await solver.solve(_input())
        assert good.ok
        pool = solver._pool
        assert pool is not None
        for pid in list(pool._processes):  # the one child
            os.kill(pid, signal.SIGKILL)
        failed = await solver.solve(_input(1.1))
        assert not failed.ok
        assert "died" in failed.status
        assert failed.version == good.version
        np.testing.assert_array_equal(failed.mu_usd_per_wh, good.mu_usd_per_wh)
        again = await solver.solve(_input(1.1))
        assert again.ok
        assert again.version == 1  # a new child, a new resolver

    try:
        asyncio.run(run())
    finally:
        solver.close()
