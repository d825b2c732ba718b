"""Partition ownership after a freeze (streams/ownership.py) and the reload's first-copy rule
(streams/reload.py): the pieces that keep a worker that woke from a stop from publishing decisions another
worker already made (fault scenario 3, faults/README.md)."""

from __future__ import annotations

import time

import orjson

from router.decider import Decider
from router.models import Request
from router.topology import load_topology
from streams.ownership import WATCH_S, Ownership
from streams.reload import _remember_first
from streams.settings import embedded_settings
from tests.streams.sample import placement


def _ownership() -> Ownership:
    return Ownership(embedded_settings("127.0.0.1:9"), Decider(load_topology(None), dedup_size=10))


def test_freeze_threshold_is_the_session_less_a_heartbeat() -> None:
    s = embedded_settings("127.0.0.1:9")
    own = Ownership(s, Decider(load_topology(None)))
    assert own.freeze_s == (s.session_timeout_ms - s.heartbeat_interval_ms) / 1000.0
    assert 0 < own.freeze_s < s.session_timeout_ms / 1000.0


def test_a_short_pause_is_not_a_freeze() -> None:
    own = _ownership()
    now = time.monotonic()
    own.alive_at = now - own.freeze_s + 0.5
    assert not own.notice_freeze(now)
    assert own.stale is None
    assert not own.suspended()


def test_a_pause_past_the_freeze_time_suspends_until_a_new_assignment() -> None:
    own = _ownership()
    now = time.monotonic()
    own.alive_at, own.alive_assignments = now - own.freeze_s - WATCH_S - 0.01, 3
    own.assignments = 3
    assert own.notice_freeze(now)
    assert own.stale == (now, 3)
    assert own.suspended()
    own.assignments = 4  # the group assigned partitions again
    assert not own.suspended()
    assert own.stale is None


def test_a_batch_fetched_before_a_noticed_freeze_is_not_ours() -> None:
    """Even when the freeze is over by the time it is asked, a batch fetched before it is dropped; one
    fetched after it is judged by the assignment."""
    own = _ownership()
    fetched_before = time.monotonic()
    own.frozen(time.monotonic(), own.assignments)

    class Assigned:  # the consumer's assignment() is all still_owned reads of it
        @staticmethod
        def assignment() -> set[str]:
            return {"tp0"}

    own.consumer = Assigned()
    assert not own.still_owned({"tp0": []}, fetched_before)
    assert own.still_owned({"tp0": []}, time.monotonic())
    assert not own.still_owned({"tp1": []}, time.monotonic())  # a partition that moved


def test_a_batch_held_past_the_freeze_time_is_not_ours() -> None:
    own = _ownership()
    assert not own.still_owned({}, time.monotonic() - own.freeze_s - 0.1)


def _request(rid: str) -> Request:
    return Request.model_validate(
        {
            "request_id": rid,
            "origin": "fe-frankfurt",
            "latency_budget_ms": 975.7,
            "tokens": 449,
            "model": "llm-8b",
            "ts": 1776038404.189,
        }
    )


def test_reload_keeps_the_first_copy_over_later_ones_and_over_own_memory() -> None:
    live = Decider(load_topology(None), dedup_size=10)
    own_value = live.remember(placement(request_id="r-1", region="own"))
    first = orjson.dumps(placement(request_id="r-1", region="first"))
    later = orjson.dumps(placement(request_id="r-1", region="later"))
    seen: set[str] = set()
    assert _remember_first(live, first, seen) == 1
    assert _remember_first(live, later, seen) == 0
    assert _remember_first(live, b"not json", seen) == 0
    assert _remember_first(live, orjson.dumps({"no_id": 1}), seen) == 0
    assert own_value != first
    got = live.decide_requests([_request("r-1")])
    assert got.repeated == 1
    assert got.values == [first]
    assert got.placements[0]["region"] == "first"
