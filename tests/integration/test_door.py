"""The synchronous door (streams/door.py) against a live worker on a real broker: the answer equals the
stream's and `score`'s decision, is published on `placements`, and a repeat (through the door or the topic)
gets the published decision; bad bodies are 4xx naming the field, a wrong or missing token 401."""

from __future__ import annotations

import http.client
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.client import DoorClient, DoorError, murmur2_partition
from streams.door import request_partition
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce
from tests.integration.offline import score
from tests.integration.test_worker import _scenario

pytestmark = pytest.mark.integration

TOKEN = "door-test-token-0123456789"


def _raw_post(port: int, path: str, body: bytes, token: str | None = TOKEN) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, orjson.loads(data) if data else None


def _signalled(settings: Settings, sig: list[dict[str, Any]], *workers: WorkerProc) -> None:
    """Once the workers are up, publish the signals and wait until each has applied them and holds
    request partitions."""
    for w in workers:
        w.wait()
    produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
    for w in workers:
        w.wait(lambda h: h["signals_version"] >= len(sig) and h["partitions"] > 0, timeout_s=60)


def _ready(client: DoorClient, req: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
    """The first placement once the worker holds its partitions (503 until then)."""
    deadline = time.time() + timeout_s
    while True:
        try:
            return client.place(req)
        except DoorError as exc:
            if exc.status != 503 or time.time() > deadline:
                raise
            time.sleep(0.2)


def test_door_answers_as_score_decides_and_publishes_it(settings: Settings, tmp_path: Path) -> None:
    sig, req = _scenario()
    req = req[:60]
    w = WorkerProc(settings, "w-door", tmp_path, door=True, door_token=TOKEN)
    client = DoorClient([f"http://127.0.0.1:{w.port}"], TOKEN)
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        w.wait(lambda h: h["signals_version"] >= len(sig))
        answers = [_ready(client, req[0])] + [client.place(r) for r in req[1:40]]
        answers += client.place_batch(req[40:])
        again = client.place(req[0])
        # the same request id on the topic later: the published decision is repeated, not re-made
        produce(settings, settings.topic_requests, [(req[1]["request_id"].encode(), orjson.dumps(req[1]))])
        # every answer is published, repeats too (as the stream publishes one per record)
        published = drain(settings, settings.topic_placements, len(req) + 2, timeout_s=30)
        metrics = w.get("/metrics").decode()
    finally:
        client.close()
        assert w.stop() == 0
    assert [a["request_id"] for a in answers] == [r["request_id"] for r in req]
    assert again == answers[0]
    on_topic = [orjson.loads(m.value) for m in published]
    assert len(on_topic) == len(req) + 2
    by_id: dict[str, list[dict[str, Any]]] = {}
    for p in on_topic:
        by_id.setdefault(p["request_id"], []).append(p)
    assert all(by_id[a["request_id"]][0] == a for a in answers)  # the answer is what was published
    assert by_id[req[0]["request_id"]][1] == answers[0]
    assert by_id[req[1]["request_id"]][1] == answers[1]  # the topic's repeat got the same decision
    offline = {p["request_id"]: p for p in score(tmp_path, sig, req)}
    keep = ("status", "region", "layer", "reason", "energy_usd", "carbon_g", "score_usd", "removed")
    for a in answers:
        assert {k: a[k] for k in keep} == {k: offline[a["request_id"]][k] for k in keep}
    assert 'carbon_router_door_requests_total{outcome="placed"}' in metrics


def test_door_refuses_bad_bodies_and_tokens(settings: Settings, tmp_path: Path) -> None:
    sig, req = _scenario()
    w = WorkerProc(settings, "w-door-bad", tmp_path, door=True, door_token=TOKEN, door_max_body_bytes=4096)
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig[:20]])
        _ready(DoorClient([f"http://127.0.0.1:{w.port}"], TOKEN), req[0])
        good = orjson.dumps(req[1])
        assert _raw_post(w.port, "/v1/place", good, token=None)[0] == 401
        assert _raw_post(w.port, "/v1/place", good, token="wrong-token-0123456789")[0] == 401
        status, body = _raw_post(w.port, "/v1/place", orjson.dumps({**req[2], "energy_wh": -1}))
        assert status == 400
        assert body["field"] == "energy_wh"
        status, body = _raw_post(
            w.port, "/v1/place", orjson.dumps({**req[2], "allowed_jurisdiction": ["DE"]})
        )
        assert status == 400
        assert "allowed_jurisdictions" in body["error"]  # did you mean
        assert _raw_post(w.port, "/v1/place", b"{not json")[0] == 400
        assert _raw_post(w.port, "/v1/place", b"x" * 5000)[0] == 413
        status, body = _raw_post(w.port, "/v1/place:batch", orjson.dumps([req[3], {"request_id": "x"}]))
        assert status == 200
        assert body[0]["request_id"] == req[3]["request_id"]
        assert body[1]["field"] in ("origin", "latency_budget_ms")
        assert _raw_post(w.port, "/v1/place:batch", orjson.dumps({"a": 1}))[0] == 400
        assert w.proc.poll() is None
    finally:
        assert w.stop() == 0


def test_client_partition_is_kafkas_default_partition() -> None:
    for k in range(2000):
        rid = f"req-{k}-é" if k % 7 == 0 else f"r{k}"
        for n in (1, 3, 4, 12):
            assert murmur2_partition(rid.encode(), n) == request_partition(rid, n)


def test_two_workers_each_answer_for_their_partitions_and_the_client_finds_them(
    settings: Settings, tmp_path: Path
) -> None:
    """With two workers, a request id is answered only by the worker holding its partition (421 from the
    other, naming the partition); the client learns the owners and every request is placed once."""
    sig, req = _scenario()
    req = req[:80]
    a = WorkerProc(settings, "w-door-a", tmp_path, door=True, door_token=TOKEN)
    b = WorkerProc(settings, "w-door-b", tmp_path, door=True, door_token=TOKEN)
    client = DoorClient([f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"], TOKEN)
    try:
        _signalled(settings, sig, a, b)
        answers = [_ready(client, req[0])] + [client.place(r) for r in req[1:]]
        statuses = [_raw_post(w.port, "/v1/place", orjson.dumps(req[5]))[0] for w in (a, b)]
        published = drain(settings, settings.topic_placements, len(req) + 1, timeout_s=30)
    finally:
        client.close()
        assert a.stop() == 0
        assert b.stop() == 0
    assert [x["request_id"] for x in answers] == [r["request_id"] for r in req]
    assert sorted(statuses) == [200, 421]
    assert len({orjson.loads(m.value)["request_id"] for m in published}) == len(req)


def test_door_and_stream_book_the_same_capacity_windows(settings: Settings, tmp_path: Path) -> None:
    """Door and stream decisions of one worker book into the same capacity windows: with tiny capacities and
    every request in one window, no region gets more IT energy than its window holds, door and stream
    together, and the stream's requests see the capacity the door's already took."""
    from router.commands import bundled

    text = bundled("default_topology.toml").read_text(encoding="utf-8")
    lines = [("capacity_kw = 0.05" if ln.startswith("capacity_kw") else ln) for ln in text.splitlines()]
    topo = tmp_path / "tiny.toml"
    topo.write_text("\n".join(lines) + "\n", encoding="utf-8")
    window_wh = 0.05 * 60.0 / 3.6  # capacity_kw * capacity_window_s (60 s in the bundled topology), in Wh
    sig, req = _scenario()
    at = req[0]["ts"]
    req = [{**r, "ts": at} for r in req[:120]]
    w = WorkerProc(settings, "w-door-cap", tmp_path, door=True, door_token=TOKEN, topology=str(topo))
    client = DoorClient([f"http://127.0.0.1:{w.port}"], TOKEN)
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        w.wait(lambda h: h["signals_version"] >= len(sig))
        door = [_ready(client, req[0]), *client.place_batch(req[1:60])]
        produce(
            settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in req[60:]]
        )
        placed = [
            orjson.loads(m.value) for m in drain(settings, settings.topic_placements, len(req), timeout_s=30)
        ]
    finally:
        client.close()
        assert w.stop() == 0
    assert len({p["request_id"] for p in placed}) == len(req)
    stream = [p for p in placed if p["request_id"] in {r["request_id"] for r in req[60:]}]
    per_region: dict[str, float] = {}
    for p in placed:
        if p["status"] == "placed":
            per_region[p["region"]] = per_region.get(p["region"], 0.0) + p["energy_wh"]
    assert per_region
    assert max(per_region.values()) <= window_wh + 1e-9
    assert any(x["status"] == "placed" for x in door)
    assert any(p["removed"].get("capacity", 0) > 0 for p in stream)


def _metric(text: str, prefix: str) -> float:
    """The sum of the samples whose line starts with ``prefix`` (a name and the start of its labels)."""
    if "{" not in prefix:
        prefix += "{"
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_concurrent_calls_are_decided_together_as_score_decides(settings: Settings, tmp_path: Path) -> None:
    """Calls that arrive while a decision is being made wait and are decided in one batch
    (``Door.place``): each still gets its own placement, the one `score` makes, published once, and the
    metrics count each of them once."""
    import concurrent.futures

    sig, req = _scenario()
    req = req[:80]
    w = WorkerProc(settings, "w-door-many", tmp_path, door=True, door_token=TOKEN)
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        w.wait(lambda h: h["signals_version"] >= len(sig))
        first = _ready(DoorClient([f"http://127.0.0.1:{w.port}"], TOKEN), req[0])
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            got = list(pool.map(lambda r: _raw_post(w.port, "/v1/place", orjson.dumps(r)), req[1:]))
        published = drain(settings, settings.topic_placements, len(req), timeout_s=30)
        time.sleep(0.5)  # the door counts its placements in the metrics every 50 ms
        metrics = w.get("/metrics").decode()
    finally:
        assert w.stop() == 0
    assert all(status == 200 for status, _ in got)
    answers = [first] + [body for _, body in got]
    assert [a["request_id"] for a in answers] == [r["request_id"] for r in req]
    on_topic = {p["request_id"]: p for p in (orjson.loads(m.value) for m in published)}
    assert len(published) == len(req)
    assert all(on_topic[a["request_id"]] == a for a in answers)
    offline = {p["request_id"]: p for p in score(tmp_path, sig, req)}
    keep = ("status", "region", "layer", "reason", "energy_usd", "carbon_g", "score_usd", "removed")
    for a in answers:
        assert {k: a[k] for k in keep} == {k: offline[a["request_id"]][k] for k in keep}
    assert _metric(metrics, "carbon_router_decisions_total") == len(req)
    decided = _metric(metrics, 'carbon_router_door_requests_total{outcome="placed"') + _metric(
        metrics, 'carbon_router_door_requests_total{outcome="rejected"'
    )
    assert decided == len(req)  # the ready wait's 503 answers are counted apart


def test_client_keeps_placing_while_a_worker_stops_and_its_partitions_move(
    settings: Settings, tmp_path: Path
) -> None:
    """The client's retry during a rebalance: with two workers and the owners learned, one worker stops;
    the requests of the partitions it held are placed by the other once the group has moved them (the
    stopped worker refuses connections, the other says 421 or 503 meanwhile), each exactly once."""
    sig, req = _scenario()
    a = WorkerProc(settings, "w-door-stay", tmp_path, door=True, door_token=TOKEN)
    b = WorkerProc(settings, "w-door-stop", tmp_path, door=True, door_token=TOKEN)
    client = DoorClient([f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"], TOKEN, rebalance_s=60)
    stopped = None
    try:
        _signalled(settings, sig, a, b)
        before = [_ready(client, req[0])] + [client.place(r) for r in req[1:40]]
        n = client._partitions
        on_b = [r for r in req[40:] if client._owner.get(murmur2_partition(r["request_id"].encode(), n)) == 1]
        stopped = b.stop()
        after = [client.place(r) for r in on_b[:20]]
        published = drain(settings, settings.topic_placements, len(before) + len(after), timeout_s=30)
    finally:
        client.close()
        assert a.stop() == 0
        if stopped is None:
            b.stop()
    assert stopped == 0
    assert len(on_b) >= 5, "too few requests of the stopping worker's partitions to test its hand-over"
    assert [x["request_id"] for x in after] == [r["request_id"] for r in on_b[:20]]
    ids = [orjson.loads(m.value)["request_id"] for m in published]
    assert sorted(ids) == sorted(r["request_id"] for r in [*req[:40], *on_b[:20]])
