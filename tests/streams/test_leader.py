"""The leader's shares message (``streams.leader``): its exact bytes on ``router.shares``, no broker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import orjson

from router.decider import Decider
from router.models import SharesMessage
from router.resolve import ResolveResult
from router.topology import load_topology
from streams.dataplane import DataPlane
from streams.leader import LeaderDuty, SharesBody, shares_message
from streams.leadership import Leadership, Term, judge, sign
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.statefeed import StateFeed

TERM = Term(epoch=3, leader="w-leader", key=b"k" * 32)
NEXT = Term(epoch=4, leader="w-leader", key=b"n" * 32)
REGIONS = ("aws:eu-central-1", "aws:eu-west-3", "aws:eu-north-1")
#: the fields of a published shares message, in the order they are written (README.md, "Messages", Shares)
WIRE_ORDER = [
    "ts",
    "ok",
    "status",
    "regions",
    "mu_usd_per_wh",
    "groups",
    "shares",
    "unserved_share",
    "solve_s",
    "seq",
    "version",
    "epoch",
    "leader",
    "mac",
]


def _result() -> ResolveResult:
    return ResolveResult(
        version=5,
        ok=True,
        status="optimal",
        shares=np.array([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]]),
        unserved_share=np.array([0.0, 0.0]),
        mu_usd_per_wh=np.array([3e-5, 0.0, 1.25e-7]),
        objective_usd_per_h=1.5,
        solve_s=0.0123,
        warm=True,
        group_keys=("fe-frankfurt|c0|ff", "fe-paris|c1|0f"),
    )


def test_a_resolve_is_published_as_the_same_signed_bytes_in_wire_order() -> None:
    """A solve's message equals the one built field by field (values, key order, signature), and a worker
    in the term applies it."""
    res, ts = _result(), 1776038400.5
    got = shares_message(SharesBody.from_result(res, REGIONS, ts=ts), TERM, 2)
    want = sign(
        {
            "ts": ts,
            "ok": True,
            "status": "optimal",
            "regions": list(REGIONS),
            "mu_usd_per_wh": {"aws:eu-central-1": 3e-5, "aws:eu-west-3": 0.0, "aws:eu-north-1": 1.25e-7},
            "groups": ["fe-frankfurt|c0|ff", "fe-paris|c1|0f"],
            "shares": [[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]],
            "unserved_share": [0.0, 0.0],
            "solve_s": 0.0123,
            "seq": 2,
            "version": (3 << 32) + 2,
        },
        TERM,
    )
    assert got == want
    assert list(orjson.loads(got)) == WIRE_ORDER
    worker = Leadership("w-other")
    worker.enter(TERM)
    verdict = judge(got, worker)
    assert verdict.outcome == "applied"
    assert verdict.msg is not None
    assert verdict.msg.version == (3 << 32) + 2


def test_a_new_leader_republishes_the_installed_shares_signed_in_its_own_term() -> None:
    """On entering a term it leads, a worker publishes the installed shares (as the state feed keeps them)
    again: the same fields but ``ts``, seq 1 of the new term, the new term's signature."""
    s = load_settings(kafka_bootstrap_servers="127.0.0.1:9092", worker_id="w-leader")
    live, metrics, leadership = Decider(load_topology()), Metrics("w-leader"), Leadership("w-leader")
    feed = StateFeed(s, live, leadership, metrics)
    first = shares_message(SharesBody.from_result(_result(), REGIONS, ts=1776038400.5), TERM, 7)
    installed = SharesMessage.model_validate_json(first).model_dump()
    sent: list[tuple[bytes, bytes]] = []

    class Topic:
        async def send(self, key: bytes, value: bytes) -> None:
            sent.append((key, value))

    async def enter() -> Any:
        duty = LeaderDuty(
            s, live, metrics, DataPlane(s, live, metrics, leadership), leadership, Topic(), feed
        )
        feed.latest_shares = installed
        before = time.time()
        leadership.enter(NEXT)
        assert duty._task is not None
        await duty._task
        return before

    before = asyncio.run(enter())
    assert len(sent) == 1
    assert sent[0][0] == b"shares"
    msg = orjson.loads(sent[0][1])
    assert list(msg) == WIRE_ORDER
    assert before <= msg["ts"] <= time.time()
    dropped = {"mac", "epoch", "leader", "seq", "version"}
    # shares without tenant duals leave ``nu_usd_per_g`` out, as the first message did
    keep = {k: v for k, v in installed.items() if k not in dropped and (k != "nu_usd_per_g" or v is not None)}
    assert sent[0][1] == sign({**keep, "ts": msg["ts"], "seq": 1, "version": (4 << 32) + 1}, NEXT)
    assert judge(sent[0][1], leadership).outcome == "applied"
