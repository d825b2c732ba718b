"""The fault tools themselves: the capacity-window replay of the checker and the loopback fault proxy."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from faults.checker import capacity_overruns
from faults.proxy import FaultProxy


def _placed(rid: str, region: str, t: float, wh: float, decided_at: float = 0.0) -> dict[str, Any]:
    return {
        "request_id": rid,
        "region": region,
        "status": "placed",
        "event_ts": t,
        "energy_wh": wh,
        "decided_at": decided_at,
    }


def test_replay_finds_an_overrun_inside_one_window() -> None:
    """Three 4 Wh placements within 60 s on a 10 Wh window overrun it at the third."""
    got, peak = capacity_overruns(
        [_placed("a", "r", 0.0, 4.0), _placed("b", "r", 10.0, 4.0), _placed("c", "r", 20.0, 4.0)],
        {"r": 10.0},
        60.0,
    )
    assert [x["request_id"] for x in got] == ["c"]
    assert peak["r"] == pytest.approx(1.2)


def test_replay_drops_entries_that_left_the_window() -> None:
    """An entry whose event time is window_s or more before the current one no longer counts."""
    got, peak = capacity_overruns(
        [_placed("a", "r", 0.0, 8.0), _placed("b", "r", 60.0, 8.0), _placed("c", "s", 61.0, 1.0)],
        {"r": 10.0, "s": 10.0},
        60.0,
    )
    assert got == []
    assert peak == {"r": 0.8, "s": 0.1}


def test_replay_counts_each_request_once_and_skips_rejections() -> None:
    """A republished copy of a placement and a rejected request add no energy to any window."""
    rejected = {**_placed("x", "r", 2.0, 9.0), "status": "rejected", "region": None}
    copy = _placed("a", "r", 0.0, 6.0, decided_at=5.0)
    got, peak = capacity_overruns([_placed("a", "r", 0.0, 6.0), copy, rejected], {"r": 10.0}, 60.0)
    assert got == []
    assert peak["r"] == 0.6


@pytest.fixture
def echo() -> Iterator[int]:
    """A loopback TCP echo server; yields its port."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield port
    stop.set()
    t.join(2)
    srv.close()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def _closed(c: socket.socket) -> bool:
    """True when the peer closed or reset the connection (a read returns nothing or raises a reset)."""
    try:
        return c.recv(1) == b""
    except ConnectionResetError:
        return True


def _round_trip(port: int, timeout_s: float = 5.0) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as c:
        started = time.monotonic()
        c.sendall(b"ping")
        assert c.recv(16) == b"ping"
        return time.monotonic() - started


def test_proxy_forwards_and_adds_latency_each_way(echo: int) -> None:
    """Bytes cross the proxy both ways; 0.15 s one-way latency makes a round trip take at least 0.3 s."""
    with FaultProxy(echo) as proxy:
        assert _round_trip(proxy.port) < 0.3
        proxy.latency_s = 0.15
        assert _round_trip(proxy.port) >= 0.3


def test_proxy_drop_resets_open_connections(echo: int) -> None:
    """drop() closes every open connection: the client sees the connection end."""
    with FaultProxy(echo) as proxy, socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
        c.sendall(b"x")
        assert c.recv(1) == b"x"
        assert proxy.drop() >= 1
        assert _closed(c)


def test_proxy_blackhole_holds_bytes_until_release(echo: int) -> None:
    """In the blackhole a connection is accepted but nothing comes back; after release the bytes arrive."""
    with FaultProxy(echo) as proxy:
        proxy.hold()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
            c.sendall(b"held")
            c.settimeout(0.5)
            with pytest.raises(TimeoutError):
                c.recv(16)
            proxy.release()
            c.settimeout(5)
            assert c.recv(16) == b"held"


def test_proxy_refuse_closes_new_connections(echo: int) -> None:
    """While refusing, a new connection is closed at once, as a dead broker's port would; then it passes."""
    with FaultProxy(echo) as proxy:
        proxy.refuse()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as c:
            assert _closed(c)
        proxy.refuse(False)
        assert _round_trip(proxy.port) < 1.0
