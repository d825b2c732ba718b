"""The synchronous door: a placement in about a millisecond for gateways that cannot wait on a topic.

``POST /v1/place`` takes one request message (the JSON of ``inference.requests``) and answers 200 with its
placement, the very bytes also published on ``placements``; ``POST /v1/place:batch`` takes a JSON list and
answers a JSON list, per item the placement or its problem. Off unless ``CARBON_ROUTER_DOOR=true``; every
call needs ``Authorization: Bearer <CARBON_ROUTER_DOOR_TOKEN>`` (compared in constant time), and the web
port binds to ``CARBON_ROUTER_WEB_HOST`` only.

One decider, one owner per request id (README.md, "The synchronous door"):

- A request id belongs to the request partition Kafka's default partitioner gives its key (murmur2, as the
  Java client and aiokafka do), and only the worker holding that partition answers for it: another one
  says 421 with the partition, and ``router.client`` tries the next worker. So the decision is made by the
  same ``Decider`` as the stream's records of that partition, with the same signals, shares and capacity
  windows (this worker's share of each region's capacity), and the dedup memory: a repeat through the door
  or later on the topic gets the published decision again, not a new one.
- The decision is made under the data plane's lock (never inside a batch) and published on the placements
  partition of its request partition (so a new owner reloads it). Single calls that arrive while a
  decision is being made (or while the lock is held) wait and are decided together in the next batch, as
  the stream decides a fetched batch, so a burst costs one decision, one hand-over and one metrics update
  instead of one each; the metrics count the door's placements every 50 ms. The answer goes out when the
  decision is handed to the producer, or, with ``CARBON_ROUTER_DOOR_WAIT_FOR_ACK=true``, once the broker
  acknowledged it; a publish that finally fails is counted (``broker_errors{op="door_publish"}``) and
  logged with the request ids.

Bad input is a 4xx naming the problem (field, value received, expected), never a 5xx; 503 means the worker
is not ready or the broker did not take the placement. Counted in ``carbon_router_door_requests_total
{outcome}`` and timed in ``carbon_router_door_seconds``.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka.partitioner import murmur2
from aiokafka.structs import TopicPartition

from router.decider import Decider
from router.placed import Placements
from router.plan import RequestIds, Row
from router.problems import Problem
from streams.codec import Clock, decode_checked_request
from streams.dataplane import DataPlane
from streams.metrics import Metrics
from streams.settings import Settings

__all__ = ["BATCH_PATH", "PLACE_PATH", "Answer", "Door", "request_partition"]

log = structlog.get_logger("carbon_router.door")

PLACE_PATH = "/v1/place"
BATCH_PATH = "/v1/place:batch"
_JSON = "application/json"
#: most single calls decided together (``Door.place``)
MAX_COALESCED = 512
#: how long answered placements may wait to be counted in the metrics, together (s)
RECORD_EVERY_S = 0.05


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status and JSON body."""

    status: int
    body: bytes


def request_partition(request_id: str, partitions: int) -> int:
    """The request partition of ``request_id`` under Kafka's default (murmur2) partitioner."""
    return int((murmur2(request_id.encode()) & 0x7FFFFFFF) % partitions)


def _problem(status: int, p: Problem, **extra: Any) -> Answer:
    body = {"error": p.error, "problem": p.problem, "field": p.field, "expected": p.expected, **extra}
    if p.received is not None:
        body["received"] = p.received if isinstance(p.received, int | float | str) else repr(p.received)
    return Answer(status, orjson.dumps(body))


@dataclass(frozen=True, slots=True)
class _Item:
    ids: RequestIds
    row: Row
    partition: int


class Door:
    """Decides requests that come over HTTP with the stream's decider (see the module docstring)."""

    def __init__(self, settings: Settings, live: Decider, metrics: Metrics, dataplane: DataPlane) -> None:
        self.settings = settings
        self.live = live
        self.metrics = metrics
        self.dataplane = dataplane
        #: acks awaited after the answer (``door_wait_for_ack`` false)
        self._pending: set[asyncio.Future[None]] = set()
        #: single calls waiting to be decided together, and the task that decides them (``place``)
        self._waiting: list[tuple[_Item, asyncio.Future[Answer]]] = []
        self._decider: asyncio.Future[None] | None = None
        #: placements answered but not yet in the metrics, when they were decided, how long the decision
        #: and the hand-over to the producer took, and the timer that counts them (``_record``)
        self._unrecorded: list[Placements] = []
        self._unrecorded_at: list[float] = []
        self._unrecorded_latency: list[float] = []
        self._recorder: asyncio.TimerHandle | None = None
        token = settings.door_token
        self._token = b"" if token is None else ("Bearer " + token.get_secret_value()).encode()

    def authorized(self, header: str | None) -> bool:
        """The Authorization header carries the door's bearer token (constant-time comparison)."""
        return bool(self._token) and hmac.compare_digest((header or "").encode(), self._token)

    async def place(self, body: bytes) -> Answer:
        """One request message in, its placement out."""
        started = time.perf_counter()
        got = self._item(body)
        if isinstance(got, Answer):
            return self._count(got, started)
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append((got, answer))
        if self._decider is None or self._decider.done():
            self._decider = asyncio.ensure_future(self._decide_waiting())
        return self._count(await answer, started)

    async def _decide_waiting(self) -> None:
        """Decide the calls waiting, together: the calls that arrive while one decision is made (or while
        the data plane holds the lock) wait for the next, and all of them are decided, published and counted
        in one batch. The answers are those single calls would get: one decider, one batch in event-time
        order, as the stream decides a fetched batch."""
        while self._waiting:
            taken, self._waiting = self._waiting[:MAX_COALESCED], self._waiting[MAX_COALESCED:]
            try:
                answers = await self._decide([item for item, _ in taken])
            except (
                Exception
            ) as exc:  # _decide answers the broker's failures itself; nothing else may hang a call
                log.error("door_decide_failed", error=repr(exc)[:200], requests=len(taken))
                answers = [_problem(503, Problem.of(f"the decision failed ({type(exc).__name__})"))] * len(
                    taken
                )
            for (_, answer), got in zip(taken, answers, strict=True):
                if not answer.done():
                    answer.set_result(got)

    async def place_batch(self, body: bytes) -> Answer:
        """A JSON list of request messages in; a JSON list out, per item its placement or its problem."""
        started = time.perf_counter()
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self._count(_problem(400, Problem.of(f"body is not JSON ({exc})")), started)
        s = self.settings
        if not isinstance(items, list) or not 1 <= len(items) <= s.door_max_batch:
            shape = f"{len(items)} items" if isinstance(items, list) else type(items).__name__
            p = Problem.of("body is not a list of requests", None, shape, f"1 to {s.door_max_batch} items")
            return self._count(_problem(400, p), started)
        parsed = [self._item(orjson.dumps(x)) for x in items]
        decided = iter(await self._decide([x for x in parsed if isinstance(x, _Item)]))
        out = [x if isinstance(x, Answer) else next(decided) for x in parsed]
        for a in out:
            self.metrics.door.labels(_outcome(a)).inc()
        body_out = b"[" + b",".join(a.body for a in out) + b"]"
        self.metrics.door_seconds.observe(time.perf_counter() - started)
        return Answer(200, body_out)

    def _item(self, raw: bytes) -> _Item | Answer:
        """A decoded, checked request on a partition this worker holds, or the answer that says why not."""
        s, dp = self.settings, self.dataplane
        clock = Clock(time.time(), s.max_clock_skew_s)
        got = decode_checked_request(
            raw,
            self.live.plan,
            s.max_message_bytes,
            clock.now,
            clock=clock,
            allow_extra=s.extra_fields == "ignore",
        )
        if isinstance(got, Problem):
            return _problem(400, got)
        ids, row = got
        if dp.consumer is None or not dp.assigned:
            return _problem(503, Problem.of("this worker holds no request partition yet"))
        partition = request_partition(ids.request_id, dp.total_partitions)
        tp = TopicPartition(s.topic_requests, partition)
        own = dp.ownership
        if tp in dp.consumer.assignment() and (tp not in own.reloaded or own.suspended()):
            return _problem(503, Problem.of("this request's partition is being taken over; retry"))
        if tp not in dp.consumer.assignment():
            p = Problem.of(
                "another worker holds this request's partition", "request_id", ids.request_id, "any worker"
            )
            return _problem(421, p, partition=partition, partitions=dp.total_partitions)
        return _Item(ids, row, partition)

    async def _decide(self, items: list[_Item]) -> list[Answer]:
        """Decide under the data plane's lock, publish, and answer once the broker acknowledged."""
        if not items:
            return []
        s, dp = self.settings, self.dataplane
        now = time.time()
        try:
            async with dp.busy:
                decided = self.live.decide(
                    [x.ids for x in items], [x.row for x in items], decided_at=now, clock=now
                )
                parts = dp.lifecycle.placement_partitions
                # one message each into the producer's open batch of its partition: concurrent calls share
                # a batch and its ack (a batch per call would wait for the partition's previous ack)
                acks = [
                    await dp.producer.send(
                        s.topic_placements,
                        value,
                        key=x.ids.request_id.encode(),
                        partition=x.partition % parts,
                    )
                    for x, value in zip(items, decided.values, strict=True)
                ]
                part_of = {x.ids.session_id: x.partition % parts for x in items if x.ids.session_id}
                for sid, value in decided.sessions:  # the sessions' state, as the data plane publishes it
                    acks.append(
                        await dp.producer.send(
                            s.topic_sessions, value, key=sid.encode(), partition=part_of[sid]
                        )
                    )
            if s.door_wait_for_ack:
                await asyncio.gather(*acks)
            else:
                self._pending.add(asyncio.ensure_future(self._acked(acks, items)))
        except Exception as exc:  # the broker did not take it: the caller may retry (same decision)
            self.metrics.broker_errors.labels("publish").inc()
            log.warning("door_publish_failed", error=repr(exc)[:200], requests=len(items))
            p = Problem.of(f"the placement could not be published ({type(exc).__name__})")
            return [_problem(503, p)] * len(items)
        self._unrecorded.append(decided.placements)
        self._unrecorded_at.extend([now] * len(items))
        self._unrecorded_latency.extend([time.time() - now] * len(items))
        if self._recorder is None:
            self._recorder = asyncio.get_running_loop().call_later(RECORD_EVERY_S, self._record)
        return [Answer(200, v) for v in decided.values]

    def _record(self) -> None:
        """Count the placements decided since the last call in the metrics, in one batch (a call each
        would cost about as much as the decision)."""
        placed, at, latency = self._unrecorded, self._unrecorded_at, self._unrecorded_latency
        self._unrecorded, self._unrecorded_at, self._unrecorded_latency = [], [], []
        self._recorder = None
        try:
            self.metrics.record_placements(Placements.join(placed), at, latency_s=latency)
        except Exception as exc:  # no metrics failure may fail a decision
            self.metrics.metrics_errors.inc()
            log.error("metrics_update_failed", error=repr(exc)[:200])

    async def _acked(self, acks: list[Any], items: list[_Item]) -> None:
        """Await the acks of placements already answered; a failure is counted and logged, never silent."""
        try:
            await asyncio.gather(*acks)
        except Exception as exc:
            self.metrics.broker_errors.labels("door_publish").inc()
            ids = [x.ids.request_id for x in items][:20]
            log.error("door_placement_not_published", error=repr(exc)[:200], request_ids=ids)
        finally:
            self._pending.discard(asyncio.current_task())

    def _count(self, answer: Answer, started: float) -> Answer:
        self.metrics.door.labels(_outcome(answer)).inc()
        self.metrics.door_seconds.observe(time.perf_counter() - started)
        return answer


def _outcome(a: Answer) -> str:
    if a.status == 200:
        return "placed" if b'"status":"placed"' in a.body[:80] else "rejected"
    return {400: "bad_request", 421: "misdirected", 503: "unavailable"}.get(a.status, "error")


def add_door_pages(app: Any, door: Door) -> None:
    """``POST /v1/place`` and ``POST /v1/place:batch`` on the faust app's web server."""
    from faust.web import View

    limit = door.settings.door_max_body_bytes

    async def answer(view: Any, request: Any, place: Any) -> Any:
        if not door.authorized(request.headers.get("Authorization")):
            door.metrics.door.labels("unauthorized").inc()
            body = orjson.dumps({"error": "missing or wrong bearer token"})
            return view.bytes(body, content_type=_JSON, status=401, headers={"WWW-Authenticate": "Bearer"})
        if (request.content_length or 0) > limit:
            door.metrics.door.labels("too_large").inc()
            body = orjson.dumps({"error": f"body is over {limit} bytes (CARBON_ROUTER_DOOR_MAX_BODY_BYTES)"})
            return view.bytes(body, content_type=_JSON, status=413)
        got: Answer = await place(await request.read())
        return view.bytes(got.body, content_type=_JSON, status=got.status)

    class PlaceView(View):
        async def post(self, request: Any) -> Any:
            return await answer(self, request, door.place)

    class BatchView(View):
        async def post(self, request: Any) -> Any:
            return await answer(self, request, door.place_batch)

    app.page(PLACE_PATH)(PlaceView)
    app.page(BATCH_PATH)(BatchView)
