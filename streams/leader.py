"""What the current term's leader does: re-solve the capacity LP on a timer and publish signed shares
(README.md, "Running on Apache Kafka", the control plane, and "Shares and leadership").

Every ``resolve_interval_s`` the leader solves in a child process (``streams.solver``: the event loop and
the data plane never wait for it) and publishes the result on ``router.shares``, which every worker's state
feed applies. A re-solve that fails publishes nothing, so the last good shares stay in use; a publish that
fails is counted and logged. A term's new leader first republishes the shares installed at hand-over,
signed in its own term, so the duals survive a change of leader (``streams.leadership``).

The message is ``SharesBody`` (what the solve says, in wire order: README.md, "Messages", Shares), then
``seq`` and ``version`` of the term (``shares_message``), then ``epoch``, ``leader`` and ``mac``
(``streams.leadership.sign``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import structlog

from router.decider import Decider
from router.resolve import ResolveResult
from streams.dataplane import DataPlane
from streams.leadership import Leadership, Term, next_seq, sign
from streams.metrics import Metrics
from streams.settings import Settings
from streams.solver import SolverProcess
from streams.statefeed import StateFeed

__all__ = ["LeaderDuty", "SharesBody", "add_resolve_timer", "shares_message"]

log = structlog.get_logger("carbon_router.control")


@dataclass(frozen=True, slots=True)
class SharesBody:
    """One re-solve as published, before the term's fields; ``fields()`` gives them in wire order."""

    ts: float
    ok: bool
    status: str
    regions: Sequence[str]
    mu_usd_per_wh: Mapping[str, float]
    groups: Sequence[str]
    shares: Sequence[Sequence[float]]
    unserved_share: Sequence[float]
    solve_s: float
    #: the budgeted tenants' duals (tenant -> USD per g); left out of the message when there are none
    nu_usd_per_g: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_result(
        cls, res: ResolveResult, regions: Sequence[str], ts: float, tenants: Sequence[str] = ()
    ) -> SharesBody:
        """The body of a solve ``res`` over ``regions`` (the plan's order) and the budgeted ``tenants``
        (topology order), dated ``ts``."""
        nu = res.nu_usd_per_g.tolist() if len(res.nu_usd_per_g) == len(tenants) else [0.0] * len(tenants)
        return cls(
            ts=ts,
            ok=res.ok,
            status=res.status,
            regions=list(regions),
            mu_usd_per_wh=dict(zip(regions, res.mu_usd_per_wh.tolist(), strict=True)),
            groups=list(res.group_keys),
            shares=res.shares.tolist(),
            unserved_share=res.unserved_share.tolist(),
            solve_s=res.solve_s,
            nu_usd_per_g=dict(zip(tenants, nu, strict=True)),
        )

    @classmethod
    def from_installed(cls, installed: Mapping[str, Any], ts: float) -> SharesBody:
        """The body of the installed shares (a ``SharesMessage`` dumped by the state feed), dated ``ts``."""
        return cls(
            ts=ts,
            ok=installed["ok"],
            status=installed["status"],
            regions=installed["regions"],
            mu_usd_per_wh=installed["mu_usd_per_wh"],
            groups=installed["groups"],
            shares=installed["shares"],
            unserved_share=installed["unserved_share"],
            solve_s=installed["solve_s"],
            nu_usd_per_g=installed.get("nu_usd_per_g") or {},
        )

    def fields(self) -> dict[str, Any]:
        """The body as JSON-ready fields, in wire order."""
        return {
            "ts": self.ts,
            "ok": self.ok,
            "status": self.status,
            "regions": self.regions,
            "mu_usd_per_wh": self.mu_usd_per_wh,
            "groups": self.groups,
            "shares": self.shares,
            "unserved_share": self.unserved_share,
            "solve_s": self.solve_s,
            **({"nu_usd_per_g": self.nu_usd_per_g} if self.nu_usd_per_g else {}),
        }


def shares_message(body: SharesBody, term: Term, seq: int) -> bytes:
    """The signed ``router.shares`` value of ``body``: solve count ``seq`` in ``term``."""
    return sign({**body.fields(), "seq": seq, "version": (term.epoch << 32) + seq}, term)


class LeaderDuty:
    """The current term's leader re-solves and publishes signed shares; a new leader first republishes
    the shares installed at hand-over, signed in its own term (streams/leadership.py)."""

    def __init__(
        self,
        s: Settings,
        live: Decider,
        metrics: Metrics,
        dataplane: DataPlane,
        leadership: Leadership,
        topic: Any,
        statefeed: StateFeed,
    ) -> None:
        self.s, self.live, self.metrics, self.dataplane = s, live, metrics, dataplane
        self.leadership, self.topic, self.statefeed = leadership, topic, statefeed
        self.solver = SolverProcess(
            live.plan.n_regions,
            penalty_usd_per_wh=live.objective.unserved_penalty_usd_per_wh,
            time_limit_s=s.resolve_time_limit_s,
        )
        self.seq = 0
        self._task: asyncio.Future[None] | None = None
        leadership.on_term(self._on_term)

    def _on_term(self, term: Term) -> None:
        self.seq = 0
        self.metrics.is_leader.set(int(self.leadership.is_leader))
        installed = self.statefeed.latest_shares
        if self.leadership.is_leader and installed is not None:
            body = SharesBody.from_installed(installed, ts=time.time())
            self._task = asyncio.ensure_future(self._publish(term, body))

    async def _publish(self, term: Term, body: SharesBody) -> None:
        self.seq = next_seq(self.seq)
        try:
            await self.topic.send(key=b"shares", value=shares_message(body, term, self.seq))
        except Exception as exc:
            self.metrics.broker_errors.labels("shares").inc()
            log.warning("shares_publish_failed", error=repr(exc)[:200])
            return
        log.info("shares_published", epoch=term.epoch, seq=self.seq, solve_s=body.solve_s)

    async def resolve(self) -> None:
        """One re-solve when this worker leads the current term."""
        term = self.leadership.current
        if term is None or not self.leadership.is_leader:
            return
        scale = self.dataplane.total_partitions / max(1, self.dataplane.assigned)
        inp = self.live.resolve_input(demand_scale=scale)
        if inp is None:
            return
        started = time.perf_counter()
        res = await self.solver.solve(inp)  # in a child process: the event loop never waits for the GIL
        self.metrics.resolve_seconds.observe(time.perf_counter() - started)
        self.metrics.resolves.labels("ok" if res.ok else "failed").inc()
        if not res.ok:
            log.warning("resolve_failed", status=res.status, shares_version=self.live.shares_version)
            return
        tenants = self.live.scorer.budgets.ids
        body = SharesBody.from_result(res, self.live.plan.region_ids, ts=time.time(), tenants=tenants)
        if term is self.leadership.current:  # still the leader of the term it solved in
            await self._publish(term, body)


def add_resolve_timer(app: faust.App, duty: LeaderDuty, interval_s: float) -> None:
    """Run ``duty.resolve`` every ``interval_s`` (it does nothing on a worker that does not lead)."""

    @app.timer(interval_s)  # type: ignore[untyped-decorator]  # faust is untyped
    async def resolve() -> None:
        await duty.resolve()
