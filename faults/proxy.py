"""A loopback TCP proxy with faults on demand, and a tansu broker that advertises the proxy's address.

Kafka clients learn broker addresses from metadata, so a proxy only sits between a client and tansu when
tansu *advertises* the proxy's address: ``ProxiedBroker`` starts tansu on its own port with
``--advertised-listener-url`` set to the proxy's, so every connection (bootstrap and data) goes through
``FaultProxy``. The proxy runs its own event loop in a daemon thread and is controlled from any thread:

- ``latency_s``: added one-way delay per direction (order kept: each chunk waits until it is due);
- ``drop()``: close every open connection at once (both sides see a reset);
- ``hold()`` / ``release()``: a blackhole: connections are accepted but nothing is forwarded, new
  connections are not connected upstream, until ``release()`` (held bytes are then delivered, as TCP
  retransmission would);
- ``refuse()``: drop every connection and close new ones at once (a dead broker), until ``refuse(False)``;
- ``retarget(port)``: later connections go to another upstream port (a broker restarted elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
import time

from streams.broker import _TANSU_ENV, BrokerError, EmbeddedBroker, free_port

__all__ = ["FaultProxy", "ProxiedBroker"]

_CHUNK = 65536


class FaultProxy:
    """``127.0.0.1:port`` -> ``127.0.0.1:upstream_port``, with latency, drops and a blackhole."""

    def __init__(self, upstream_port: int, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.upstream_port = upstream_port
        self.latency_s = 0.0
        self.accepted = 0
        self.dropped = 0
        self._loop = asyncio.new_event_loop()
        self._flowing: asyncio.Event | None = None
        self.refusing = False
        self._conns: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)

    @property
    def address(self) -> str:
        """``host:port`` of the proxy."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Listen on the port; returns once it accepts connections."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Close the listener and every connection, stop the loop; safe to call twice."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def drop(self) -> int:
        """Close every open connection (a reset on both sides); returns how many were open."""
        return asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result(10)

    def hold(self) -> None:
        """Start the blackhole: accept, forward nothing."""
        self._loop.call_soon_threadsafe(self._set_flowing, False)

    def release(self) -> None:
        """End the blackhole: forward what was held and go on."""
        self._loop.call_soon_threadsafe(self._set_flowing, True)

    def refuse(self, on: bool = True) -> None:
        """While on, close every connection at once (as a dead broker's port would); drops the open ones."""
        self.refusing = on
        if on:
            self.drop()

    def retarget(self, upstream_port: int) -> None:
        """New connections go to ``upstream_port``."""
        self.upstream_port = upstream_port

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- on the proxy's loop --------------------------------------------------------------------------
    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def _set_flowing(self, on: bool) -> None:
        assert self._flowing is not None
        if on:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._drop()

    async def _drop(self) -> int:
        n = len(self._conns)
        for w in list(self._conns):
            w.transport.abort()
        self._conns.clear()
        self.dropped += n
        return n

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        if self.refusing:
            writer.transport.abort()
            return
        self.accepted += 1
        self._conns.add(writer)
        up_w: asyncio.StreamWriter | None = None
        try:
            await self._flowing.wait()  # a blackhole connects nothing upstream
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._conns.add(up_w)
            await asyncio.gather(self._pump(reader, up_w), self._pump(up_r, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_w):
                if w is not None:
                    self._conns.discard(w)
                    w.transport.abort()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy src to dst; each chunk is written ``latency_s`` after it was read, in order."""
        assert self._flowing is not None
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def write() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    return
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._flowing.wait()  # type: ignore[union-attr]  # set in _listen
                dst.write(data)
                await dst.drain()

        writer = asyncio.ensure_future(write())
        try:
            while True:
                data = await src.read(_CHUNK)
                queue.put_nowait((time.monotonic() + self.latency_s, data))
                if not data:
                    break
            await writer
        finally:
            writer.cancel()
            dst.transport.abort()


class ProxiedBroker(EmbeddedBroker):
    """tansu on its own free port, advertising the proxy's address; ``proxy`` is pointed at it on launch.

    Readiness and ``create_topics`` talk to tansu's own port over one raw connection, so they work while
    the proxy refuses or holds every connection (a restart can recreate the topics before any client of
    the proxy reaches the new broker).
    """

    def __init__(self, proxy: FaultProxy, *, startup_timeout_s: float = 15.0) -> None:
        super().__init__(startup_timeout_s=startup_timeout_s)
        self.proxy = proxy

    @property
    def port(self) -> int:
        """The port tansu itself listens on (the proxy's upstream)."""
        if self._port is None:
            raise BrokerError("the broker is not running")
        return self._port

    def kill(self) -> None:
        """SIGKILL tansu: its memory, and so every topic, offset and consumer group, is gone."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()

    def create_topics(self, topics: dict[str, int]) -> dict[str, int]:
        """Create ``{name: partitions}`` (replication factor 1) over tansu's own port; name -> error code."""

        async def run() -> dict[str, int]:
            from aiokafka.conn import create_conn
            from aiokafka.protocol.admin import CreateTopicsRequest

            conn = await create_conn("127.0.0.1", self.port, request_timeout_ms=10_000)
            try:
                req = CreateTopicsRequest(
                    create_topic_requests=[(n, p, 1, [], []) for n, p in topics.items()],
                    timeout=10_000,
                    validate_only=False,
                )
                resp = await conn.send(req)
                return {str(row[0]): int(row[1]) for row in resp.topic_errors}
            finally:
                conn.close()

        return asyncio.run(run())

    def _launch(self, binary: str) -> bool:
        """Start tansu on a fresh port advertising the proxy; True when ready, False when it exited."""
        assert self._log is not None
        self._port = free_port(self._host)
        self.proxy.retarget(self._port)
        cmd = [binary, "broker", "--listener-url", f"tcp://{self._host}:{self._port}"]
        cmd += [
            "--advertised-listener-url",
            f"tcp://{self.proxy.address}",
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        assert self._port is not None
        deadline = time.monotonic() + self._timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                return False
            try:
                asyncio.run(_direct_metadata(self._port))
                return True
            except Exception as exc:  # not ready yet
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.05)
        raise BrokerError(f"tansu on port {self._port} was not ready after {self._timeout_s:g} s ({last})")


async def _direct_metadata(port: int) -> None:
    """One metadata request over a raw connection to tansu's own port."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    conn = await create_conn("127.0.0.1", port, request_timeout_ms=2000)
    try:
        await conn.send(MetadataRequest(topics=[]))
    finally:
        conn.close()
