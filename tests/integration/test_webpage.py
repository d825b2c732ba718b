"""The worker's live web page, loaded from a running worker in a real headless Chromium (Debian's package)."""

from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.commands import bundled
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce

pytestmark = pytest.mark.integration

T0 = 1776038400.0
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "out" / "webpage.png"
WINDOW = (1280, 1400)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    return found


def _browse(url: str, tmp: Path, *mode: str, budget_ms: int = 4000) -> str:
    """Run headless Chromium on ``url`` for ``budget_ms`` of virtual time (the page polls every second)."""
    profile = tmp / f"chromium-{time.monotonic_ns()}"
    cmd = [
        _chromium(),
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--virtual-time-budget={budget_ms}",
        *mode,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return done.stdout.decode()


class _Page(HTMLParser):
    """What the rendered page shows: elements by id, region rows by data-region, the body's poll count."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}
        self.bars: dict[str, float] = {}
        self.body: dict[str, str | None] = {}
        self._open: list[dict[str, Any]] = []
        self._row: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "tr" and a.get("data-region"):
            self._row = a["data-region"]
            self.rows[str(self._row)] = {}
        if tag == "g" and a.get("data-region"):
            self.bars[str(a["data-region"])] = float(a.get("data-value") or 0)
        node: dict[str, Any] = {"tag": tag, "value": a.get("data-value"), "text": ""}
        if a.get("id"):
            self.by_id[str(a["id"])] = node
        if tag == "td" and self._row is not None:
            self.rows[self._row][str(a.get("class"))] = node
        self._open.append(node)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()["tag"] == tag:
                break
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        for node in self._open:
            node["text"] += data

    def value(self, element_id: str) -> float:
        return float(self.by_id[element_id]["value"])


def _scenario(shift: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The bundled real signals of the first hour and the requests of the next 15 minutes, moved in time so
    that the last request is a few seconds old (their relative timing is the real one)."""
    lines = [orjson.loads(x) for x in bundled("sample_signals.jsonl").read_bytes().splitlines() if x.strip()]
    sig = [{**s, "ts": s["ts"] + shift} for s in lines if s["ts"] <= T0 + 3600]
    lines = [orjson.loads(x) for x in bundled("sample_requests.jsonl").read_bytes().splitlines() if x.strip()]
    req = [{**r, "ts": r["ts"] + shift} for r in lines if T0 + 3600 < r["ts"] <= T0 + 4500]
    return sig, req


async def _watch(url: str, tmp: Path, act: Callable[[], None], until: float) -> list[float]:
    """Open ``url`` once in Chromium and read the decisions it shows over the DevTools protocol: wait for a
    first value, run ``act`` (in a thread), then read until the page shows ``until`` without a reload."""
    import aiohttp  # faust-streaming's web server dependency

    profile = tmp / f"chromium-live-{time.monotonic_ns()}"
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: list[float] = []
    try:
        deadline = time.time() + 60
        port_file = profile / "DevToolsActivePort"
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.time() < deadline, "chromium opened no DevTools port"
            assert proc.poll() is None, "chromium exited before opening its DevTools port"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                targets = await r.json()
            ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(ws_url, max_msg_size=0) as ws:
                expression = "Number(document.getElementById('decisions-total').dataset.value)"

                async def shown(call: int) -> float:
                    params = {"expression": expression, "returnByValue": True}
                    await ws.send_json({"id": call, "method": "Runtime.evaluate", "params": params})
                    while True:
                        msg = await ws.receive_json(timeout=30)
                        if msg.get("id") == call:
                            return float(msg["result"]["result"].get("value") or 0)

                call = 0
                while not seen or seen[-1] <= 0:
                    assert time.time() < deadline, f"the page showed no decisions: {seen}"
                    call += 1
                    seen.append(await shown(call))
                    await asyncio.sleep(0.25)
                await asyncio.to_thread(act)
                while seen[-1] < until:
                    assert time.time() < deadline + 60, f"the page did not update: {seen}"
                    call += 1
                    seen.append(await shown(call))
                    await asyncio.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return seen


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_live_page_in_chromium_shows_moving_numbers_and_only_aggregates(
    settings: Settings, tmp_path: Path
) -> None:
    """Chromium renders the page from a live worker: decisions, regions with counts, signal ages, the
    shares panel (empty: no re-solve ran and outside shares are refused); an open page updates itself and
    a second load shows more decisions and older signals; a screenshot is saved; and the web port serves
    only the page, its JSON, /metrics and /healthz,
    with no request field in them."""
    _chromium()
    shift = time.time() - (T0 + 4500) - 5.0
    sig, req = _scenario(shift)
    first, second = req[: len(req) // 2], req[len(req) // 2 :]
    w = WorkerProc(settings, "w-web", tmp_path)
    base = f"http://127.0.0.1:{w.port}"
    try:
        w.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        w.wait(lambda h: h["signals_version"] >= len(sig))
        regions = sorted({s["region"] for s in sig})
        produce(
            settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in first]
        )
        assert len(drain(settings, settings.topic_placements, len(first))) == len(first)
        one = _Page(_browse(base + "/", tmp_path, "--dump-dom"))
        feed = [(r["request_id"].encode(), orjson.dumps(r)) for r in second]
        shown = asyncio.run(
            _watch(base + "/", tmp_path, lambda: produce(settings, settings.topic_requests, feed), len(req))
        )
        assert len(drain(settings, settings.topic_placements, len(req))) == len(req) > 100
        time.sleep(1.0)  # the second load must see signals at least a second older
        two = _Page(_browse(base + "/", tmp_path, "--dump-dom"))
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.unlink(missing_ok=True)
        _browse(base + "/", tmp_path, f"--screenshot={SCREENSHOT}")
        state = w.get("/api/state")
        page = w.get("/")
        exposition = w.get("/metrics")
        statuses = {p: _status(base + p) for p in ("/router/", "/table/", "/stats/", "/graph/", "/api/x")}
        post = _status(base + "/", "POST")
    finally:
        assert w.stop() == 0
    # the page polled the JSON repeatedly and rendered it
    for p in (one, two):
        assert p.body.get("data-state") == "live"
        assert int(p.body.get("data-polls") or 0) >= 2
        assert p.by_id["worker-id"]["text"] == "w-web"
    # the numbers move between two loads
    assert one.value("decisions-total") == len(first)
    assert two.value("decisions-total") == len(first) + len(second)
    assert two.by_id["decisions-total"]["text"] == f"{len(first) + len(second)}"
    assert two.value("placed-total") + two.value("rejected-total") == len(req)
    # and they move in an open page too: it showed the first batch, then all, without a reload
    live = [v for v in shown if v > 0]  # 0 until the page's first poll came back
    assert live[0] == len(first)
    assert live[-1] == len(req)
    assert live == sorted(live)
    # placements by region: rows carry counts that add up to the placed total, bars agree with them
    placed_rows = {r: float(c["placed"]["value"]) for r, c in two.rows.items() if float(c["placed"]["value"])}
    assert sum(placed_rows.values()) == two.value("placed-total") > 0
    assert len(placed_rows) >= 2  # the scenario relocates: more than one region takes work
    assert two.bars == placed_rows
    assert sum(float(c["placed"]["value"]) for c in one.rows.values()) < sum(placed_rows.values())
    # every region with a signal shows its age, older on the second load
    assert set(two.rows) >= set(regions)
    for r in regions:
        a1, a2 = float(one.rows[r]["age"]["value"]), float(two.rows[r]["age"]["value"])
        assert 0 < a1 < a2, (r, a1, a2)
        assert two.rows[r]["age"]["text"].endswith(("s", "min", "h", "d"))
    # savings against all-local are shown with their baseline
    assert two.value("baseline-usd") > 0
    assert two.value("baseline-carbon") > 0
    assert two.value("saved-usd") == pytest.approx(two.value("baseline-usd") - two.value("placed-usd"))
    assert two.by_id["saved-usd-pct"]["text"].endswith("%")
    # the installed re-solve: version, leader, duals per region and the group's shares
    # no capacity binds, so no re-solve ran (the skip rule) and shares from outside the group's term are
    # refused: the panel says so (installed, signed shares on the page: tests/streams/test_web.py)
    assert two.value("shares-version") == 0
    assert two.by_id["shares-leader"]["text"] == "–"
    # a real PNG of the window's size, with real content
    png = SCREENSHOT.read_bytes()
    assert _png_size(png) == WINDOW
    assert len(png) > 30_000
    # read-only and aggregate only
    assert statuses == dict.fromkeys(statuses, 404)
    assert post == 405
    body = orjson.loads(state)
    assert set(body) >= {"decisions", "by_region", "savings", "regions", "shares"}
    for blob in (state, page):
        assert b"request_id" not in blob
        assert b"tenant" not in blob
        assert not any(r["request_id"].encode() in blob for r in req)
    assert b"carbon_router_baseline_energy_usd_total" in exposition
