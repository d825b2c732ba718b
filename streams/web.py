"""The worker's live web page: ``/`` (one self-contained HTML page) and ``/api/state`` (the JSON it polls).

Read-only and aggregate only: decision counts and rate, placements by region and layer, savings against
all-local, each region's signal age, price, carbon and dual, and the installed re-solve (shares and duals,
version, leader). Signal ages and values are on the router's event clock, the event time of the latest request
(``router_clock``; router/ages.py), with the wall-clock age beside them (``signal_wall_age_s``). No request
field (ids, origins, payloads) and no setting beyond the worker's id and group leaves through it; the page
loads nothing from anywhere else (inline script and style, pinned by hash in its Content-Security-Policy)
and writes every value with ``textContent``, never as markup.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import faust

from router.ages import ages_at, router_clock, value_at
from router.decider import Decider
from router.kernel.columns import CARBON, HEALTHY, MU, PRICE
from streams.metrics import Metrics
from streams.settings import Settings

__all__ = ["MAX_GROUPS", "RateWindow", "add_web_page", "page_html", "web_state"]

MAX_GROUPS = 24  # demand groups shown with their shares (the API says how many there were in all)
_MAX_TEXT = 64  # longest text taken from a shares message (the leader's id)


class RateWindow:
    """Decisions per second over the last ``window_s`` seconds, from (time, total) samples."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, float]] = deque()

    def rate(self, now: float, total: float) -> float:
        """Add a sample and return the rate since the oldest sample inside the window (0 with one sample)."""
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        t0, n0 = self._samples[0]
        return (total - n0) / (now - t0) if now > t0 else 0.0


def _sample(metrics: Metrics, name: str) -> float:
    return float(metrics.registry.get_sample_value(name) or 0.0)


def _savings(baseline: float, placed: float) -> dict[str, float | None]:
    saved = baseline - placed
    return {
        "baseline": baseline,
        "placed": placed,
        "saved": saved,
        "saved_pct": 100.0 * saved / baseline if baseline > 0 else None,
    }


def _placements(metrics: Metrics) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Placed counts by region and layer, and rejected counts by reason, from the decisions counter."""
    by_region: dict[str, dict[str, float]] = {}
    rejected: dict[str, float] = {}
    for family in metrics.decisions.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total") or sample.value <= 0:
                continue
            lab = sample.labels
            if lab["status"] == "placed":
                layers = by_region.setdefault(lab["region"], {})
                layers[lab["layer"]] = layers.get(lab["layer"], 0.0) + sample.value
            else:
                rejected[lab["reason"]] = rejected.get(lab["reason"], 0.0) + sample.value
    return dict(sorted(by_region.items())), dict(sorted(rejected.items()))


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _shares(msg: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The parts of the installed shares message the page shows (validated upstream; re-checked here)."""
    if msg is None:
        return None
    groups = [str(g)[:_MAX_TEXT] for g in msg.get("groups", ())]
    rows = [[_finite(x) for x in row] for row in msg.get("shares", ())]
    leader = msg.get("leader")
    return {
        "version": int(msg.get("version", 0)),
        "ts": _finite(msg.get("ts")),
        "ok": bool(msg.get("ok")),
        "status": str(msg.get("status", ""))[:_MAX_TEXT],
        "solve_s": _finite(msg.get("solve_s")),
        "leader": str(leader)[:_MAX_TEXT] if leader is not None else None,
        "regions": [str(r)[:_MAX_TEXT] for r in msg.get("regions", ())],
        "mu_usd_per_wh": {str(k)[:_MAX_TEXT]: _finite(v) for k, v in msg.get("mu_usd_per_wh", {}).items()},
        "n_groups": len(groups),
        "groups": groups[:MAX_GROUPS],
        "shares": rows[:MAX_GROUPS],
        "unserved_share": [_finite(x) for x in msg.get("unserved_share", ())][:MAX_GROUPS],
    }


def web_state(
    settings: Settings,
    live: Decider,
    metrics: Metrics,
    shares: Mapping[str, Any] | None,
    now: float,
    rate: RateWindow,
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values (aggregates only, see the module docstring)."""
    snap = metrics.snapshot()
    t = metrics.totals
    by_region, rejected = _placements(metrics)
    st = live.scorer.state
    dual_scale = live.objective.dual_scale
    load_kw = live.scorer.windows.used_wh() * 3.6 / live.objective.capacity_window_s
    clock = router_clock(live.event_clock)
    ages = ages_at(st, clock).tolist() if clock is not None else [math.nan] * live.plan.n_regions
    wall_ages = st.signal_ages(now).tolist()
    regions = []
    for j, rid in enumerate(live.plan.region_ids):
        regions.append(
            {
                "region": rid,
                "signal_age_s": _finite(ages[j]),  # None: no request yet, or no value in effect
                "signal_wall_age_s": _finite(wall_ages[j]),  # None: never signalled
                "price_usd_per_mwh": value_at(st, j, PRICE, clock),
                "marginal_gco2_per_kwh": value_at(st, j, CARBON, clock),
                "healthy": bool(st.i[j, HEALTHY]),
                "mu_usd_per_wh": float(st.f[j, MU]) / dual_scale if dual_scale > 0 else float(st.f[j, MU]),
                "load_kw": float(load_kw[j]),
                "capacity_kw": _finite(st.capacity_kw[j]),  # None: no limit
                "placed": sum(by_region.get(rid, {}).values()),
            }
        )
    return {
        "worker_id": settings.worker_id,
        "group_id": settings.group_id,
        "is_leader": _sample(metrics, "carbon_router_is_leader") > 0,
        "now": now,
        "router_clock": clock,
        "uptime_s": snap["uptime_s"],
        "decisions": snap["decisions"],
        "placed": snap["placed"],
        "rejected": snap["rejected"],
        "dead_letters": snap["dead_letters"],
        "decisions_per_s": rate.rate(now, float(snap["decisions"])),
        "by_region": by_region,
        "by_layer": snap["by_layer"],
        "rejected_by_reason": rejected,
        "savings": {
            "energy_usd": _savings(t.compared_baseline_nusd / 1e9, t.compared_cost_nusd / 1e9),
            "carbon_g": _savings(t.compared_baseline_ug / 1e6, t.compared_carbon_ug / 1e6),
            "unbaselined": t.unbaselined,
        },
        "totals": metrics.summary(),
        "signals_version": st.version,
        "shares_version": live.shares_version,
        "regions": regions,
        "shares": _shares(shares),
    }


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page_html() -> tuple[str, str]:
    """The page and its Content-Security-Policy (inline script and style allowed by hash only)."""
    files = resources.files("streams") / "webpage"
    style = (files / "page.css").read_text(encoding="utf-8")
    script = (files / "page.js").read_text(encoding="utf-8")
    body = (files / "page.html").read_text(encoding="utf-8")
    html = body.replace("/*STYLE*/", style).replace("/*SCRIPT*/", script)
    csp = (
        f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, csp


def add_web_page(
    app: faust.App,
    settings: Settings,
    live: Decider,
    metrics: Metrics,
    shares: Callable[[], Mapping[str, Any] | None],
) -> None:
    """Serve ``/`` and ``/api/state`` (GET only) on the app's web port; ``shares`` gives the installed
    re-solve message (``StateFeed.latest_shares``)."""
    html, csp = page_html()
    rate = RateWindow()
    common = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

    # "/" first and another page after it: faust's own index page also mounts at "/" when the server starts,
    # and aiohttp refuses a second GET "/" on the last resource added (on an earlier one, the first wins)
    @app.page("/")
    async def index(web: Any, request: Any) -> Any:
        return web.html(html, headers={**common, "Content-Security-Policy": csp})

    @app.page("/api/state")
    async def state(web: Any, request: Any) -> Any:
        body = web_state(settings, live, metrics, shares(), time.time(), rate)
        return web.json(body, headers=dict(common))
