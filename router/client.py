"""A small client of the workers' synchronous door (README.md, "The synchronous door"; streams/door.py).

    client = DoorClient(["http://10.0.0.5:6066", "http://10.0.0.6:6066"], token="...")
    placement = client.place({"request_id": "r1", "origin": "fe-frankfurt", "latency_budget_ms": 300,
                              "tokens": 800, "model": "llama-70b"})

Only the worker that holds a request id's partition answers for it (the others say 421 with the partition
and the partition count; while a rebalance moves partitions, or a worker cannot be reached, the client
asks the others again for up to ``rebalance_s``). The client keeps one keep-alive connection per worker,
learns which worker holds which partition from those answers, and computes a request's partition as
Kafka's default partitioner does (murmur2 of the request id), so after the first few calls each request
goes straight to its worker.
Standard library and orjson only; no Kafka client.
"""

from __future__ import annotations

import http.client
import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["DoorClient", "DoorError", "murmur2_partition"]


class DoorError(Exception):
    """The door refused a call: ``status`` and the JSON ``body`` (``error``, ``field``, ``expected``...)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body.get('error') if isinstance(body, dict) else body}")
        self.status = status
        self.body = body


def murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of ``key`` (the Java client's murmur2, positive part, modulo)."""
    m, r = 0x5BD1E995, 24
    length = len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = key[length - length % 4 :]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


class DoorClient:
    """Places requests through the workers' doors (see the module docstring). Not thread-safe."""

    def __init__(
        self, urls: Sequence[str], token: str, *, timeout_s: float = 2.0, rebalance_s: float = 5.0
    ) -> None:
        if not urls:
            raise ValueError("at least one worker URL is needed")
        self.urls = list(urls)
        self.timeout_s = timeout_s
        #: how long to keep asking while no worker holds a request's partition (a rebalance moves it)
        self.rebalance_s = rebalance_s
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._conns: dict[int, http.client.HTTPConnection] = {}
        #: request partition -> index of the worker that answered for it; and the partition count
        self._owner: dict[int, int] = {}
        self._partitions = 0

    def place(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The placement of one request (raises DoorError for a refused request, and when no worker
        answered for it within ``rebalance_s``: the last worker's 421 or 503, or 503 when none could be
        reached)."""
        body = orjson.dumps(dict(request))
        rid = str(request.get("request_id", ""))
        deadline = time.monotonic() + self.rebalance_s
        while True:
            first = self._first(rid)
            last = DoorError(421, {"error": "no worker holds this request's partition"})
            for k in range(len(self.urls)):
                i = (first + k) % len(self.urls)
                got = self._ask(i, "/v1/place", body)
                if isinstance(got, DoorError):  # not this worker (or not now): ask the next one
                    last = got
                    continue
                self._learn_owner(rid, i)
                return dict(got)
            if time.monotonic() > deadline:
                raise last
            time.sleep(0.05)  # partitions are moving between workers

    def place_batch(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One answer per request, in order: its placement, or its problem (with ``error``)."""
        out: list[dict[str, Any] | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        deadline = time.monotonic() + self.rebalance_s
        for k in itertools.count():
            if not pending or (k >= len(self.urls) and time.monotonic() > deadline):
                break
            if k and k % len(self.urls) == 0:
                time.sleep(0.05)  # every worker was asked: partitions are moving between workers
            i = k % len(self.urls)
            got = self._ask(i, "/v1/place:batch", orjson.dumps([dict(requests[j]) for j in pending]))
            if isinstance(got, DoorError):  # unreachable, or holding no partition now: the next worker
                continue
            retry = []
            for j, answer in zip(pending, got, strict=True):
                if "partition" in answer and "status" not in answer:  # 421 for this item
                    self._learn_misdirected(answer)
                    retry.append(j)
                else:
                    out[j] = answer
            pending = retry
        for j in pending:
            out[j] = {"error": "no worker holds this request's partition (a rebalance?)"}
        return [x if x is not None else {} for x in out]

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def _first(self, request_id: str) -> int:
        if self._partitions:
            owner = self._owner.get(murmur2_partition(request_id.encode(), self._partitions))
            if owner is not None:
                return owner
        return 0

    def _learn_misdirected(self, body: Any) -> None:
        if isinstance(body, dict) and isinstance(body.get("partitions"), int):
            self._partitions = body["partitions"]

    def _learn_owner(self, request_id: str, i: int) -> None:
        if self._partitions:
            self._owner[murmur2_partition(request_id.encode(), self._partitions)] = i

    def _ask(self, i: int, path: str, body: bytes) -> Any:
        """Worker ``i``'s 200 answer; or, as a DoorError to try another worker with, its 421 or 503, or
        that it cannot be reached (stopped, restarting: its learned partitions are forgotten). Any other
        status raises: the request itself was refused."""
        try:
            status, got = self._post(i, path, body)
        except (OSError, http.client.HTTPException) as exc:
            self._owner = {p: w for p, w in self._owner.items() if w != i}
            return DoorError(503, {"error": f"worker {self.urls[i]} unreachable: {type(exc).__name__}"})
        if status in (421, 503):
            self._learn_misdirected(got)
            return DoorError(status, got)
        if status != 200:
            raise DoorError(status, got)
        return got

    def _post(self, i: int, path: str, body: bytes) -> tuple[int, Any]:
        for attempt in range(2):  # a keep-alive connection the server closed is opened once more
            conn = self._conn(i)
            try:
                conn.request("POST", path, body=body, headers=self._headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, orjson.loads(data) if data else None
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._conns.pop(i, None)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _conn(self, i: int) -> http.client.HTTPConnection:
        conn = self._conns.get(i)
        if conn is None:
            u = urlsplit(self.urls[i])
            cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
            conn = self._conns[i] = cls(u.hostname or "127.0.0.1", u.port, timeout=self.timeout_s)
        return conn
