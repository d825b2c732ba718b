"""Partition ownership in the data plane: whether this worker may still decide and publish the request
records it fetched (README.md, "Running on Apache Kafka" and "Reliability").

- A batch whose partitions moved, or that was held longer than a session, may belong to another worker
  now: it is dropped unpublished (``still_owned``).
- After a freeze (a batch or a fetch held past a session) nothing is processed until the group assigned
  partitions again, or a session passed without a rebalance (``suspended``).
- The records of a newly assigned partition wait until its recent placements are reloaded
  (``wait_reloaded``; the reload is ``streams.reload``), so a redelivered request gets the decision already
  published.
- The share of each region's capacity window this worker guards follows the partitions it holds.

``ReloadOnAssign``, the consumer's rebalance listener, keeps this up to date on every assignment and lets
the batches in flight settle before their partitions move.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka.abc import ConsumerRebalanceListener

from router.decider import Decider
from streams.reload import RELOAD_TIMEOUT_S, reload_placements, reload_sessions
from streams.settings import Settings

if TYPE_CHECKING:
    from streams.batches import BatchLifecycle

__all__ = ["Ownership", "ReloadOnAssign"]

#: How often the freeze watch looks at the clock (s).
WATCH_S = 0.05

log = structlog.get_logger("carbon_router.dataplane")


class Ownership:
    """The request partitions this worker holds, and whether it may decide the records it fetched."""

    def __init__(self, settings: Settings, live: Decider) -> None:
        self.settings = settings
        self.live = live
        #: the data plane's consumer, once it started
        self.consumer: Any = None
        #: assigned partitions whose recent placements are reloaded (see ``wait_reloaded``)
        self.reloaded: set[Any] = set()
        #: assignments seen, and (when, assignments then) of the last stale batch (see ``suspended``)
        self.assignments = 0
        self.stale: tuple[float, int] | None = None
        #: when the freeze watch last ran, and the assignments seen then (see ``watch_freezes``)
        self.alive_at = time.monotonic()
        self.alive_assignments = 0
        #: a pause longer than this may have cost the group membership (s): the session, less the time a
        #: heartbeat may have been due before the pause began
        self.freeze_s = (settings.session_timeout_ms - settings.heartbeat_interval_ms) / 1000.0

    async def watch_freezes(self, on_lag: Callable[[float], None] | None = None) -> None:
        """Note every pause of the event loop longer than ``freeze_s`` (a stopped process, a VM pause, a
        blocked loop): whatever was fetched, decided or published before it may belong to another worker.
        ``on_lag`` is told how late each wake-up came (s): the time the loop was blocked or starved."""
        while True:
            self.alive_at, self.alive_assignments = time.monotonic(), self.assignments
            await asyncio.sleep(WATCH_S)
            now = time.monotonic()
            if on_lag is not None:
                on_lag(max(0.0, now - self.alive_at - WATCH_S))
            self.notice_freeze(now)

    def notice_freeze(self, now: float) -> bool:
        """True (and the freeze noted) when the watch has not run for ``freeze_s`` by ``now``."""
        held = now - self.alive_at
        if held <= self.freeze_s + WATCH_S:
            return False
        if self.stale is None or self.stale[0] < self.alive_at:
            log.warning("loop_frozen", held_s=round(held, 3))
            self.frozen(now, self.alive_assignments)
        return True

    def frozen(self, at: float, assignments: int) -> None:
        """A batch or a fetch was held past a session at ``at``, with ``assignments`` seen before it."""
        self.stale = (at, assignments)

    def suspended(self) -> bool:
        """True for one session after a freeze (a batch or a fetch held past a session) unless a new
        assignment came meanwhile.

        A worker that was frozen past its session still believes in its old assignment when it wakes, and
        its next fetch answers at once (fetches are not checked against the group): it would publish
        decisions on partitions that moved, before its heartbeat learns of the rebalance. So after a
        freeze nothing is processed until the group assigned partitions again, or a session passed
        without a rebalance (nothing had moved).
        """
        if self.stale is None:
            return False
        since, seen = self.stale
        if self.assignments > seen or time.monotonic() - since > self.settings.session_timeout_ms / 1000.0:
            self.stale = None
            log.info("stale_suspension_ended", rebalanced=self.assignments > seen)
            return False
        return True

    async def wait_reloaded(self, fetched: dict[Any, list[Any]]) -> None:
        """Hold a batch until the placements of its partitions are reloaded.

        aiokafka hands a new assignment to the fetcher before it runs the rebalance listener (the reload),
        so records of a newly assigned partition can arrive first; decided then, a redelivered request
        would get a new decision instead of the one already published. A partition no longer assigned is
        not waited for (``still_owned`` drops its records).
        """
        deadline = time.monotonic() + RELOAD_TIMEOUT_S + 5.0
        while time.monotonic() < deadline:
            owned = self.consumer.assignment()
            if all(tp in self.reloaded or tp not in owned for tp in fetched):
                return
            await asyncio.sleep(0.01)

    def still_owned(self, fetched: dict[Any, list[Any]], fetched_at: float) -> bool:
        """False when this batch may already belong to another worker (we lost partitions, or stalled
        longer than a session, e.g. a stopped process): publishing it could contradict the new owner."""
        now = time.monotonic()
        if now - fetched_at > self.freeze_s or self.notice_freeze(now):
            return False
        if self.stale is not None and self.stale[0] >= fetched_at:  # a freeze noticed since the fetch
            return False
        owned = self.consumer.assignment()
        return all(tp in owned for tp in fetched)

    def guard_capacity_share(self, held: int) -> None:
        """Guard ``held / total`` of each region's capacity window (``RegionState.set_capacity_share``)."""
        share = min(1.0, max(held, 1) / self.total_partitions)
        self.live.scorer.state.set_capacity_share(share)
        self.live.scorer.budgets.set_share(share)  # each tenant's budget, as each capacity
        log.info("capacity_share_set", partitions=held, total=self.total_partitions, share=round(share, 4))

    @property
    def assigned(self) -> int:
        """Request partitions this worker holds now."""
        return 0 if self.consumer is None else len(self.consumer.assignment())

    @property
    def total_partitions(self) -> int:
        """Partitions of the request topic (at least those held)."""
        parts = (
            None
            if self.consumer is None
            else self.consumer.partitions_for_topic(self.settings.topic_requests)
        )
        return len(parts) if parts else max(1, self.assigned)


class ReloadOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    """Reload recent placements of newly assigned partitions before their records are fetched again."""

    def __init__(self, ownership: Ownership, lifecycle: BatchLifecycle) -> None:
        self.ownership = ownership
        self.lifecycle = lifecycle

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        """Let the batches in flight be acknowledged and committed before their partitions move (the newest
        settles last; bounded: a batch that cannot be committed in time is fetched again by the new owner,
        which gets the same decisions from the placements it reloads)."""
        own = self.ownership
        own.reloaded.difference_update(revoked)
        inflight = self.lifecycle.inflight
        if inflight is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(inflight.done), own.settings.session_timeout_ms / 2000)
        except Exception as exc:
            log.warning("inflight_not_settled_before_revoke", error=repr(exc))

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        """Guard this worker's share of capacity and budgets, reload the partitions' recent placements and
        their sessions, mark them."""
        own = self.ownership
        own.guard_capacity_share(len(assigned))
        try:
            partitions = self.lifecycle.placement_partitions
            await reload_placements(own.settings, own.live, assigned, partitions)
        except Exception as exc:  # the reload is an optimisation of duplicates, never a reason to stop
            log.warning("placements_reload_failed", error=repr(exc))
        try:
            await reload_sessions(own.settings, own.live, assigned, self.lifecycle.placement_partitions)
        except Exception as exc:  # without it sessions start afresh: never a reason to stop
            log.warning("sessions_reload_failed", error=repr(exc))
        finally:
            own.reloaded.update(assigned)
            own.assignments += 1
