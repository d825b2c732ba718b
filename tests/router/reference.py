"""A naive, obvious, pure-Python version of docs/model.md's mask -> score -> pick, to diff the kernel against.

It shares no code with router.kernel: regions are dicts, the capacity window is a list, and the filters are
applied one after the other to a shrinking candidate list, exactly as docs/model.md reads. Price and
marginal carbon each have their own ts and validity; a stale one is replaced by the covering point of the
region's latest forecast within ``forecast_horizon_s`` (README, "Signal freshness and the forecast
fallback"), else by the region's prior when its ``on_stale`` says ``prior`` for that value
(router/priors.py). Tenants' carbon budgets are lists of (ts, micro-grams) and sticky sessions a dict of
session id -> region, since, last.
"""

from __future__ import annotations

import math
from typing import Any

from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.topology import Topology

FILTERS = (
    "latency_budget",
    "jurisdiction",
    "model_unavailable",
    "unhealthy",
    "capacity",
    "stale_signals",
    "pinned_state",
    "tenant_budget",
)


class NaiveRouter:
    """Sequential reference router; one request at a time."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        o = topo.objective
        self.o = o
        self.regions = [
            {
                "id": r.id,
                "jur": r.jurisdiction,
                "tags": set(r.tags),
                "pue": r.pue,
                "models": set(r.models),
                "price": r.price_usd_per_mwh,  # the topology's constant
                "price_hist": [],  # every signalled (ts, value, valid), however old
                "mci": r.marginal_gco2_per_kwh,
                "mci_hist": [],
                # the prior that stands in for a stale value when on_stale says "prior" (else None)
                "price_prior": r.prior.price_usd_per_mwh if r.on_stale.price == "prior" else None,
                "mci_prior": r.prior.marginal_gco2_per_kwh if r.on_stale.carbon == "prior" else None,
                "pue_ts": None,
                "avg": None,
                "avg_ts": None,
                "forecast": None,
                "healthy": True,
                "cap_kw": r.capacity_kw,
                "status_ts": 0.0,
                "window": [],
                "mu": 0.0,
            }
            for r in topo.regions
        ]
        self.idx = {r["id"]: k for k, r in enumerate(self.regions)}
        self.nodes = {s.id: s for s in topo.service_nodes}
        self.models = {m.id: m for m in topo.models}
        self.version = 0
        self.ties = 0
        self.tenants = {
            t.id: {"budget_ug": round(t.carbon_budget_g * 1e6), "window": t.window_s,
                   "reject": t.on_exhausted == "reject", "nu": 0.0, "placed": []}
            for t in topo.tenants
        }  # fmt: skip
        self.sessions: dict[str, dict[str, Any]] = {}

    def apply_signal(self, s: GridSignal) -> None:
        """Price and carbon join their history (a value of the same ts replaces it); pue and the average
        apply unless the region holds a newer one."""
        r = self.regions[self.idx[s.region]]
        valid = s.valid_for_s if s.valid_for_s is not None else self.o.signal_max_age_s
        applied = False
        for key, value in (("price", s.price_usd_per_mwh), ("mci", s.marginal_gco2_per_kwh)):
            if value is not None:
                hist = [h for h in r[key + "_hist"] if h[0] != s.ts]
                r[key + "_hist"] = sorted([*hist, (s.ts, value, valid)], key=lambda h: h[0])
                applied = True
        for key, value in (("pue", s.pue), ("avg", s.average_gco2_per_kwh)):
            if value is None or (r[key + "_ts"] is not None and s.ts < r[key + "_ts"]):
                continue
            r[key] = value
            r[key + "_ts"] = s.ts
            applied = True
        if applied:
            self.version += 1

    def apply_forecast(self, f: GridForecast) -> None:
        """The region keeps the forecast with the latest generated_at (ties: the later one)."""
        r = self.regions[self.idx[f.region]]
        if r["forecast"] is None or f.generated_at >= r["forecast"].generated_at:
            r["forecast"] = f

    def value_at(self, j: int, key: str, t: float) -> tuple[float | None, str, float | None]:
        """(value, source live/forecast/static/prior/stale, when it was generated) of price or mci at t."""
        r, horizon = self.regions[j], self.o.forecast_horizon_s
        known = [h for h in r[key + "_hist"] if h[0] <= t]  # what was signalled by t
        ts, latest = (known[-1][0], known[-1][1]) if known else (None, None)
        if ts is not None and t - ts <= known[-1][2]:
            return latest, "live", ts
        f: GridForecast | None = r["forecast"]
        if f is not None and horizon > 0 and f.generated_at <= t and t - f.generated_at <= horizon:
            started = [p for p in f.points if p.ts <= t]
            if started and t < started[-1].ts + f.step_s:
                value = started[-1].price_usd_per_mwh if key == "price" else started[-1].marginal_gco2_per_kwh
                if value is not None:
                    return value, "forecast", f.generated_at
        if ts is None:  # nothing signalled by t: the topology's constant (it does not age), or no value
            return r[key], "static" if r[key] is not None else "stale", None
        if r[key + "_prior"] is not None:  # stale, and the topology lets the prior stand in
            return r[key + "_prior"], "prior", None
        return latest, "stale", ts

    def apply_status(self, s: RegionStatus) -> None:
        r = self.regions[self.idx[s.region]]
        if s.ts < r["status_ts"]:
            return
        r["status_ts"] = s.ts
        if s.healthy is not None:
            r["healthy"] = s.healthy
        if s.capacity_kw is not None:
            r["cap_kw"] = s.capacity_kw

    def set_mu(self, mu: list[float]) -> None:
        for r, m in zip(self.regions, mu, strict=True):
            r["mu"] = m

    def set_nu(self, nu: list[float]) -> None:
        for tenant, n in zip(self.tenants.values(), nu, strict=True):
            tenant["nu"] = n

    def decide(
        self,
        q: Request,
        t: float,
        *,
        alpha: float = 1.0,
        shares_version: int = 0,
        explain: bool = False,
        policy: str = "score",
    ) -> dict[str, Any]:
        """One placement. ``explain`` adds the runner-up and the score terms; ``policy`` picks by another key
        over the same candidates (all_local: home or nothing; nearest: latency; cheapest_energy: energy
        cost; lowest_carbon: marginal carbon), ties to the lowest index."""
        o, node = self.o, self.nodes[q.origin]
        home = self.idx[node.home_region]
        sr = None if q.state_region is None else self.idx[q.state_region]
        e = q.energy_wh if q.energy_wh is not None else q.tokens * self.models[q.model].wh_per_token  # type: ignore[operator]
        compute = q.compute_ms
        if compute is None:
            compute = 0.0
            if q.model is not None and q.tokens is not None:
                m = self.models[q.model]
                compute = m.base_ms + m.ms_per_token * q.tokens
        e_nwh = max(1, round(e * 1e9))
        budget = q.latency_budget_ms * alpha
        for r in self.regions:  # evict old window entries
            r["window"] = [(ts, x) for ts, x in r["window"] if ts > t - o.capacity_window_s]
        tenant = self.tenants.get(q.tenant) if q.tenant is not None else None
        if tenant is not None:
            tenant["placed"] = [(ts, x) for ts, x in tenant["placed"] if ts > t - tenant["window"]]
        nu = tenant["nu"] if tenant is not None else 0.0

        def latency(j: int) -> float:
            moved = sr is not None and j != sr
            transfer = q.state_bytes * 8.0 / (o.bandwidth_gbps * 1e6) if moved else 0.0
            return self.topo.rtt(node, self.topo.regions[j]) + compute + transfer

        at = [(self.value_at(j, "price", t), self.value_at(j, "mci", t)) for j in range(len(self.regions))]

        def valued(j: int) -> bool:
            return at[j][0][0] is not None and at[j][1][0] is not None

        def fresh(j: int) -> bool:
            sources = {at[j][0][1], at[j][1][1]}
            return "stale" not in sources and sources != {"static"}

        def cap_wh_nano(j: int) -> float:
            cap = self.regions[j]["cap_kw"]
            return math.inf if cap is None else round(cap * o.capacity_window_s / 3.6 * 1e9)

        allowed = None if q.allowed_jurisdictions is None else set(q.allowed_jurisdictions)
        tests = [
            lambda j: latency(j) <= budget,
            lambda j: (
                allowed is None
                or self.regions[j]["jur"] in allowed
                or bool(self.regions[j]["tags"] & allowed)
            ),
            lambda j: (
                q.model is None or not self.regions[j]["models"] or q.model in self.regions[j]["models"]
            ),
            lambda j: self.regions[j]["healthy"],
            lambda j: sum(x for _, x in self.regions[j]["window"]) + e_nwh <= cap_wh_nano(j),
            lambda j: valued(j) and (j == home or fresh(j)),
            lambda j: not (q.state_pinned and j != sr),
            lambda j: (
                tenant is None
                or not tenant["reject"]
                or math.floor(e * (self.regions[j]["pue"] * at[j][1][0] / 1e3) * 1e6 + 0.5)
                <= tenant["budget_ug"] - sum(x for _, x in tenant["placed"])
            ),
        ]
        cand = list(range(len(self.regions)))
        removed: dict[str, int] = {}
        reason = None
        for name, ok in zip(FILTERS, tests, strict=True):
            keep = [j for j in cand if ok(j)]
            if len(keep) < len(cand):
                removed[name] = len(cand) - len(keep)
            cand = keep
            if not cand:
                reason = name
                break
        # relocatable: some non-home region passes every filter but capacity
        relocatable = any(
            j != home
            and all(ok(j) for k, ok in enumerate(tests) if FILTERS[k] not in ("capacity", "tenant_budget"))
            for j in range(len(self.regions))
        )
        hr = self.regions[home]
        home_valued = valued(home)

        def per_wh(j: int) -> tuple[float, float, float]:
            """USD and grams per IT Wh, and the score per IT Wh (energy + priced carbon + dual), at t."""
            r, price, mci = self.regions[j], at[j][0][0], at[j][1][0]
            usd_wh = r["pue"] * price / 1e6  # type: ignore[operator]
            co2_wh = r["pue"] * mci / 1e3  # type: ignore[operator]
            return usd_wh, co2_wh, usd_wh + o.carbon_usd_per_tonne * co2_wh / 1e6 + r["mu"]

        baseline = {
            "region": hr["id"],
            "energy_usd": e * per_wh(home)[0] if home_valued else None,
            "carbon_g": e * per_wh(home)[1] if home_valued else None,
            "feasible": home in cand,
        }
        pool = cand  # the regions the rule may pick from
        if policy == "all_local":
            if home not in cand:
                reason = next(name for name, ok in zip(FILTERS, tests, strict=True) if not ok(home))
            pool = [home] if home in cand else []
        best = None
        second = None
        rows: dict[int, tuple[Any, ...]] = {}
        for j in pool:
            r = self.regions[j]
            fac = e * r["pue"]
            usd_wh, co2_wh, unit = per_wh(j)
            usd = e * usd_wh
            co2 = e * co2_wh
            egr = q.payload_bytes * (self.topo.egress(hr["id"], r["id"]) / 1e9)
            if sr is not None:  # state moves unless it already lives in j (egress to itself is 0)
                egr = egr + q.state_bytes * (self.topo.egress(self.regions[sr]["id"], r["id"]) / 1e9)
            friction = egr + o.relocation_fixed_usd if j != home else egr + 0.0
            score = e * (unit + nu * co2_wh) + friction if policy == "score" else e * unit + friction
            key = {
                "score": score,
                "all_local": 0.0,
                "nearest": latency(j),
                "cheapest_energy": usd,
                "lowest_carbon": co2,
            }[policy]
            if best is not None and key == best[0] and policy == "score":
                self.ties += 1
            rows[j] = (key, j, fac, usd, co2, egr, score)
            if best is None or key < best[0]:
                second = best
                best = rows[j]
            elif second is None or key < second[0]:
                second = rows[j]
        best, second, moved, sess = self._sticky(q, t, cand, rows, best, second, policy)
        out: dict[str, Any] = {
            "request_id": q.request_id,
            "origin": q.origin,
            "home_region": hr["id"],
            "energy_wh": e,
            "baseline": baseline,
            "feasible_regions": len(cand),
            "relocatable": relocatable,
            "removed": removed,
            "signals_version": self.version,
            "shares_version": shares_version,
            "event_ts": t,
            "decided_at": t,
        }
        if q.tenant is not None:
            out["tenant"] = q.tenant
        if q.session_id is not None:
            out.update(session_id=q.session_id, session_moved=moved)
        if best is None:
            out.update(
                status="rejected",
                region=None,
                layer=None,
                reason=reason,
                latency_ms=None,
                facility_wh=None,
                energy_usd=None,
                carbon_g=None,
                egress_usd=None,
                score_usd=None,
                signal_age_s=None,
                signal_source=None,
                forecast_generated_at=None,
            )
            if explain:
                out.update(runner_up=None, terms=None)
            return out
        _, j, fac, usd, co2, egr, score = best
        r = self.regions[j]
        rtt = self.topo.rtt(node, self.topo.regions[j])
        layer = "local" if j == home else ("regional" if rtt <= o.regional_rtt_ms else "energy")
        r["window"].append((t, e_nwh))
        if tenant is not None:
            tenant["placed"].append((t, math.floor(co2 * 1e6 + 0.5)))
        if q.session_id is not None and policy == "score":
            if sess is None or sess["region"] != j:
                self.sessions[q.session_id] = {"region": j, "since": t, "last": t}
            else:
                sess["last"] = t
        out.update(
            status="placed",
            region=r["id"],
            layer=layer,
            reason="min_score",
            latency_ms=latency(j),
            facility_wh=fac,
            energy_usd=usd,
            carbon_g=co2,
            egress_usd=egr,
            score_usd=score,
            **self._provenance(at[j], t),
        )
        if explain:
            runner = None
            if second is not None and policy == "score":
                runner = {"region": self.regions[second[1]]["id"], "score_usd": second[6]}
            out["runner_up"] = runner
            out["terms"] = {
                "energy_usd": usd,
                "carbon_usd": o.carbon_usd_per_tonne * co2 / 1e6,
                "egress_usd": egr,
                "relocation_usd": o.relocation_fixed_usd if j != home else 0.0,
                "dual_usd": e * r["mu"],
            }
            if tenant is not None:
                out["terms"]["dual_carbon_usd"] = nu * co2
        return out

    def _sticky(
        self,
        q: Request,
        t: float,
        cand: list[int],
        rows: dict[int, tuple[Any, ...]],
        best: tuple[Any, ...] | None,
        second: tuple[Any, ...] | None,
        policy: str,
    ) -> tuple[Any, Any, bool, dict[str, Any] | None]:
        """(pick, runner-up, moved, the session) after the sticky rule: a known session stays in its region
        when it is feasible, unless the pick is cheaper by more than the margin after the minimum dwell."""
        o = self.o
        if q.session_id is None or policy != "score":
            return best, second, False, None
        sess = self.sessions.get(q.session_id)
        if sess is not None and not t - sess["last"] <= o.session_ttl_s:
            sess = None
        if sess is None or best is None or best[1] == sess["region"]:
            return best, second, False, sess
        rs = sess["region"]
        if rs not in cand:
            return best, second, True, sess
        if rows[rs][0] - best[0] > o.switch_margin_usd and t - sess["since"] >= o.session_min_dwell_s:
            return best, second, True, sess
        return rows[rs], best, False, sess

    @staticmethod
    def _provenance(at: tuple[tuple[Any, str, float | None], ...], t: float) -> dict[str, Any]:
        """signal_age_s (the older value's age), signal_source and forecast_generated_at of a placement."""
        ages = [t - made for _, _, made in at if made is not None]
        sources = {src for _, src, _ in at}
        made_fc = [made for _, src, made in at if src == "forecast"]
        return {
            "signal_age_s": max(ages) if ages else None,
            "signal_source": (
                "stale"
                if "stale" in sources or sources == {"static"}
                else "prior"
                if "prior" in sources
                else "forecast"
                if made_fc
                else "live"
            ),
            "forecast_generated_at": made_fc[0] if made_fc else None,
        }
