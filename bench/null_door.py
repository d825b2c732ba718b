"""The door benchmark's floor: an HTTP server that answers ``POST /v1/place`` with a fixed placement and
does nothing else (aiohttp, the server library faust's web uses, one process, like the worker's web port).

``bench.door_bench`` drives it with the same client, at the same rates and with the same CPU pinning as
the door, so ``door - null door`` is what the router adds to a call: reading the body, the decision, the
hand-over to the producer and the answer. What is left (the client, HTTP on loopback, the event loops and
the machine's own pauses) is the floor no door on this machine can go under.

    python -m bench.null_door PORT BODY_FILE
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["NullDoor", "pin_threads"]


class NullDoor:
    """The null server in a child process (``with NullDoor(port, body) as pid: ...``)."""

    def __init__(self, port: int, body_file: Path) -> None:
        self.port = port
        self.body_file = body_file
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> int:
        cmd = [sys.executable, "-m", "bench.null_door", str(self.port), str(self.body_file)]
        self.proc = subprocess.Popen(cmd)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self.proc.pid
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the null door exited with {self.proc.returncode}") from None
                time.sleep(0.05)
        raise RuntimeError(f"the null door did not listen on port {self.port} within 30 s")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def pin_threads(pid: int, cpus: set[int]) -> None:
    """Every thread of process ``pid`` on ``cpus`` (Linux)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), cpus)


def _serve(port: int, body: bytes) -> None:
    from aiohttp import web

    async def place(request: Any) -> Any:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/place", place)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]).read_bytes())
