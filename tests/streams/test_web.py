"""The live web page's data (``streams.web``), the savings counters and the state feed's shares, no broker."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from router.commands import bundled
from router.decider import Decider
from router.models import Request
from router.topology import load_topology
from streams.codec import Clock
from streams.control import build_app
from streams.dataplane import DataPlane
from streams.health import Health
from streams.leadership import Leadership, Term, sign
from streams.metrics import Metrics
from streams.settings import Settings, load_settings
from streams.statefeed import StateFeed
from streams.web import MAX_GROUPS, RateWindow, page_html, web_state

T0 = 1776038400.0
NOW = Clock(T0 + 4000)  # the workers' clock in these tests
TERM = Term(epoch=3, leader="w-leader", key=b"k" * 32)
PASSWORD = "hunter2-do-not-show"


def _lines(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in bundled(name).read_bytes().splitlines() if x.strip()]


def _settings(**kw: Any) -> Settings:
    return load_settings(kafka_bootstrap_servers="127.0.0.1:9092", worker_id="w-unit", **kw)


def _leadership() -> Leadership:
    """A worker's view of the request group: it has entered ``TERM`` (led by another worker)."""
    leadership = Leadership("w-unit")
    leadership.enter(TERM)
    return leadership


def _fed(settings: Settings) -> tuple[Decider, StateFeed]:
    """A live router whose state feed applied the bundled real signals of the first hour."""
    live = Decider(load_topology(), dedup_size=1000)
    feed = StateFeed(settings, live, _leadership(), Metrics("w-feed"))
    for s in _lines("sample_signals.jsonl"):
        if s["ts"] <= T0 + 3600:
            feed._apply(settings.topic_signals, orjson.dumps(s), NOW)
    return live, feed


def _decide(live: Decider, metrics: Metrics, n: int = 300) -> list[dict[str, Any]]:
    """Place the first ``n`` bundled requests after the first hour and record them in ``metrics``."""
    rows = [r for r in _lines("sample_requests.jsonl") if r["ts"] > T0 + 3600][:n]
    reqs = [Request.model_validate(r) for r in rows]
    out = live.decide_requests(reqs, decided_at=T0 + 4000).placements
    metrics.record_placements(out, [T0 + 4000] * len(out))
    return out


def _resolver_message(live: Decider, seq: int, groups: int) -> bytes:
    """A shares message shaped exactly as the control plane publishes it (rows as JSON arrays), signed in
    ``TERM``."""
    regions = list(live.plan.region_ids)
    return sign(
        {
            "version": (TERM.epoch << 32) + seq,
            "seq": seq,
            "ts": T0,
            "ok": True,
            "status": "Optimal",
            "regions": regions,
            "mu_usd_per_wh": {r: (3e-5 if k == 2 else 0.0) for k, r in enumerate(regions)},
            "groups": [f"fe-frankfurt|c{g}|ff" for g in range(groups)],
            "shares": [[1.0 / len(regions)] * len(regions) for _ in range(groups)],
            "unserved_share": [0.0] * groups,
            "solve_s": 0.01,
        },
        TERM,
    )


def test_state_feed_installs_the_control_planes_shares_message() -> None:
    """A re-solve message with demand groups, as the leader publishes it, installs its duals and is kept
    (with its leader) for the page; an older version is not."""
    s = _settings()
    live, feed = _fed(s)
    feed._apply(s.topic_shares, _resolver_message(live, 7, groups=3), NOW)
    assert feed.applied["shares"] == 1
    assert feed.applied["skipped"] == 0
    assert live.shares_version == (TERM.epoch << 32) + 7
    assert feed.latest_shares is not None
    assert feed.latest_shares["leader"] == "w-leader"
    feed._apply(s.topic_shares, _resolver_message(live, 6, groups=1), NOW)
    assert live.shares_version == (TERM.epoch << 32) + 7
    assert len(feed.latest_shares["groups"]) == 3
    forged = orjson.loads(_resolver_message(live, 8, groups=1))
    forged["mu_usd_per_wh"] = dict.fromkeys(forged["mu_usd_per_wh"], 1.0)  # altered after signing
    feed._apply(s.topic_shares, orjson.dumps(forged), NOW)
    assert live.shares_version == (TERM.epoch << 32) + 7
    assert feed.applied["skipped"] == 1


def test_baseline_and_placed_counters_give_signed_savings() -> None:
    """baseline - placed equals the net savings of the snapshot, also after a batch that cost more than
    all-local (the old saved counter cannot go down; these two counters show it)."""
    s = _settings()
    live, _ = _fed(s)
    m = Metrics("w-unit")
    placed = [p for p in _decide(live, m) if p["status"] == "placed"]
    get = m.registry.get_sample_value
    base, routed = (
        get("carbon_router_baseline_energy_usd_total"),
        get("carbon_router_placed_energy_usd_total"),
    )
    assert base is not None
    assert routed is not None
    assert base == pytest.approx(sum(p["baseline"]["energy_usd"] for p in placed))
    assert base - routed == pytest.approx(m.snapshot()["saved_energy_usd"])
    worse = dict(placed[0])
    worse["energy_usd"] = worse["baseline"]["energy_usd"] + 1.0
    worse["carbon_g"] = worse["baseline"]["carbon_g"] + 500.0
    saved_before = get("carbon_router_saved_usd_total")
    m.record_placements([worse], [T0])
    assert get("carbon_router_saved_usd_total") == saved_before
    assert get("carbon_router_saved_usd_negative_total") == pytest.approx(1.0)  # the loss is counted
    after_base = get("carbon_router_baseline_energy_usd_total") or 0.0
    after_routed = get("carbon_router_placed_energy_usd_total") or 0.0
    assert after_base - after_routed == pytest.approx(base - routed - 1.0)
    carbon = (get("carbon_router_baseline_carbon_grams_total") or 0.0) - (
        get("carbon_router_placed_carbon_grams_total") or 0.0
    )
    assert carbon == pytest.approx(m.snapshot()["saved_carbon_g"])


def test_web_state_shows_aggregates_and_never_a_request_field_or_secret() -> None:
    """The page's JSON has counts by region and layer that add up, savings, every region's signal age and the
    installed shares; it carries no request id, origin, tenant or model, and no setting but id and group."""
    s = _settings(
        security_protocol="SASL_PLAINTEXT",
        allow_plaintext_credentials=True,
        sasl_mechanism="PLAIN",
        sasl_username="router-user",
        sasl_password=PASSWORD,
    )
    live, feed = _fed(s)
    feed._apply(s.topic_shares, _resolver_message(live, 9, groups=MAX_GROUPS + 5), NOW)
    m = Metrics("w-unit")
    out = _decide(live, m)
    state = web_state(s, live, m, feed.latest_shares, T0 + 4000, RateWindow())
    blob = orjson.dumps(state)
    assert PASSWORD.encode() not in blob
    assert b"router-user" not in blob
    assert b"sasl" not in blob
    for p in out:
        assert p["request_id"].encode() not in blob
    for word in (b"request_id", b"origin", b"tenant", b"llm-8b", b"payload"):
        assert word not in blob
    placed = sum(1 for p in out if p["status"] == "placed")
    assert state["decisions"] == len(out)
    assert state["placed"] == placed
    assert sum(sum(layers.values()) for layers in state["by_region"].values()) == placed
    assert sum(r["placed"] for r in state["regions"]) == placed
    assert sum(state["rejected_by_reason"].values()) == len(out) - placed
    saving = state["savings"]["energy_usd"]
    assert saving["saved"] == pytest.approx(saving["baseline"] - saving["placed"])
    assert saving["saved_pct"] == pytest.approx(100 * saving["saved"] / saving["baseline"])
    ages = {r["region"]: r["signal_wall_age_s"] for r in state["regions"]}
    assert set(ages) == set(live.plan.region_ids)
    assert all(a is not None and 400 <= a <= 4000 for a in ages.values())
    assert state["router_clock"] == max(p["event_ts"] for p in out)
    assert all(r["signal_age_s"] is not None for r in state["regions"])
    sh = state["shares"]
    assert sh["version"] == state["shares_version"] == (TERM.epoch << 32) + 9
    assert sh["leader"] == "w-leader"
    assert sh["n_groups"] == MAX_GROUPS + 5
    assert len(sh["groups"]) == len(sh["shares"]) == MAX_GROUPS
    mu = {r["region"]: r["mu_usd_per_wh"] for r in state["regions"]}
    assert mu[live.plan.region_ids[2]] == pytest.approx(3e-5)  # the LP's dual, not the scaled one


def test_ages_are_on_the_router_clock_so_the_demos_april_signals_are_not_236_days_old() -> None:
    """The demo's case: April's real signals and requests seen 236 days later on the wall clock. The page and
    the metrics give each region's age on the router's event clock (the latest request's event time), equal to
    the age the latest placement there reports, and the wall-clock age beside it; before the first request
    there is no router clock and no age on it."""
    s = _settings()
    live, _ = _fed(s)
    m = Metrics("w-unit")
    wall = T0 + 236 * 86400.0
    before = web_state(s, live, m, None, wall, RateWindow())
    assert before["router_clock"] is None
    assert all(r["signal_age_s"] is None for r in before["regions"])
    assert all(r["signal_wall_age_s"] > 235 * 86400 for r in before["regions"])
    out = _decide(live, m)
    state = web_state(s, live, m, None, wall, RateWindow())
    clock = max(p["event_ts"] for p in out)
    assert state["router_clock"] == clock
    page = {r["region"]: r for r in state["regions"]}
    for r in page.values():
        assert 0 <= r["signal_age_s"] <= 3600.0, r  # within the hourly prices' validity: fresh to the router
        assert r["signal_wall_age_s"] > 235 * 86400
    last = [p for p in out if p["event_ts"] == clock and p["signal_source"] == "live"]
    assert last, "the latest request was placed on live values"
    for p in last:
        assert page[p["region"]]["signal_age_s"] == p["signal_age_s"]
    health = Health(s, live, m, None, None, _leadership())  # type: ignore[arg-type]  # gauges only
    asyncio.run(health.sample_gauges())
    get = m.registry.get_sample_value
    for rid, r in page.items():
        assert get("carbon_router_signal_age_seconds", {"region": rid}) == r["signal_age_s"]
        wall_age = get("carbon_router_signal_wall_age_seconds", {"region": rid})
        assert wall_age is not None
        assert wall_age > 235 * 86400  # sampled on the real wall clock


def test_the_dedup_gauges_show_the_ids_and_the_pages_the_memory_holds() -> None:
    """``carbon_router_dedup_ids`` and ``carbon_router_dedup_bytes`` follow the decider's dedup memory."""
    s = _settings()
    live, _ = _fed(s)
    m = Metrics("w-unit")
    _decide(live, m, n=300)
    assert live.seen is not None
    assert len(live.seen) == 300
    asyncio.run(Health(s, live, m, None, None, _leadership()).sample_gauges())  # type: ignore[arg-type]
    get = m.registry.get_sample_value
    assert get("carbon_router_dedup_ids") == 300
    assert get("carbon_router_dedup_bytes") == live.seen.held_bytes >= live.seen.live_bytes > 300 * 500


def test_rate_window_counts_decisions_per_second_over_the_window() -> None:
    """The rate is the count difference over the time since the oldest sample kept in the window."""
    w = RateWindow(window_s=10.0)
    assert w.rate(100.0, 0) == 0.0
    assert w.rate(101.0, 50) == pytest.approx(50.0)
    assert w.rate(102.0, 150) == pytest.approx(75.0)
    for t in range(103, 130):
        w.rate(float(t), 150 + 10 * (t - 102))
    assert w.rate(130.0, 430) == pytest.approx(10.0)


def test_page_is_self_contained_and_its_csp_pins_the_inline_code() -> None:
    """The page loads nothing from another origin, writes no markup from data, and its Content-Security-Policy
    allows exactly its own inline script and style (by hash) and fetches to its own origin."""
    html, csp = page_html()
    assert not re.search(r"(?:src|href)\s*=", html)
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    assert "innerHTML" not in html
    assert "eval(" not in html
    script = re.search(r"<script>(.*)</script>", html, flags=re.S)
    style = re.search(r"<style>(.*)</style>", html, flags=re.S)
    assert script
    assert style
    for text in (script.group(1), style.group(1)):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe" not in csp
    assert 'fetch("/api/state"' in html


def test_web_port_routes_are_the_page_its_json_metrics_and_health_only() -> None:
    """The worker's web server, as it starts, routes GET and HEAD of /, /api/state, /metrics and /healthz and
    nothing else (faust's /router, /table and statistics endpoints are off), with the page ahead of faust's
    own index at /."""
    s = _settings()
    live = Decider(load_topology())
    m = Metrics("w-unit")
    leadership = _leadership()
    dataplane, feed = DataPlane(s, live, m, leadership), StateFeed(s, live, leadership, m)
    app = build_app(s, live, m, dataplane, feed, leadership)
    app.web.init_server()
    routes = [(r.method, r.resource.canonical) for r in app.web.web_app.router.routes() if r.resource]
    assert set(routes) == {
        (v, p) for v in ("GET", "HEAD") for p in ("/", "/api/state", "/metrics", "/healthz")
    }

    async def get(path: str) -> Any:
        request = make_mocked_request("GET", path, app=app.web.web_app)
        match = await app.web.web_app.router.resolve(request)
        return await match.handler(request)

    page, state = asyncio.run(get("/")), asyncio.run(get("/api/state"))
    assert page.status == 200
    assert page.body.startswith(b"<!doctype html>")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert state.status == 200
    assert orjson.loads(state.body)["worker_id"] == s.worker_id
