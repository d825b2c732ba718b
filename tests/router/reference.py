"""A naive, obvious, pure-Python version of model.md's mask -> score -> pick, to diff the kernel against.

It shares no code with router.kernel: regions are dicts, the capacity window is a list, and the filters are
applied one after the other to a shrinking candidate list, exactly as the spec reads.
"""

from __future__ import annotations

from typing import Any

from router.models import GridSignal, RegionStatus, Request
from router.topology import Topology

FILTERS = (
    "latency_budget",
    "jurisdiction",
    "model_unavailable",
    "unhealthy",
    "capacity",
    "stale_signals",
    "pinned_state",
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
                "price": r.price_usd_per_mwh,
                "mci": r.marginal_gco2_per_kwh,
                "sig_ts": None,
                "valid": o.signal_max_age_s,
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

    def apply_signal(self, s: GridSignal) -> None:
        r = self.regions[self.idx[s.region]]
        if r["sig_ts"] is not None and s.ts < r["sig_ts"]:
            return
        if s.price_usd_per_mwh is not None:
            r["price"] = s.price_usd_per_mwh
        if s.marginal_gco2_per_kwh is not None:
            r["mci"] = s.marginal_gco2_per_kwh
        if s.pue is not None:
            r["pue"] = s.pue
        r["sig_ts"] = s.ts
        r["valid"] = s.valid_for_s if s.valid_for_s is not None else self.o.signal_max_age_s
        self.version += 1

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

    def decide(self, q: Request, t: float, *, alpha: float = 1.0, shares_version: int = 0) -> dict[str, Any]:
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

        def latency(j: int) -> float:
            moved = sr is not None and j != sr
            transfer = q.state_bytes * 8.0 / (o.bandwidth_gbps * 1e6) if moved else 0.0
            return self.topo.rtt(node, self.topo.regions[j]) + compute + transfer

        def fresh(j: int) -> bool:
            r = self.regions[j]
            return r["sig_ts"] is not None and r["sig_ts"] <= t and t - r["sig_ts"] <= r["valid"]

        def cap_wh_nano(j: int) -> int:
            return round(self.regions[j]["cap_kw"] * o.capacity_window_s / 3.6 * 1e9)

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
            lambda j: (
                self.regions[j]["price"] is not None
                and self.regions[j]["mci"] is not None
                and (j == home or fresh(j))
            ),
            lambda j: not (q.state_pinned and j != sr),
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
            j != home and all(ok(j) for k, ok in enumerate(tests) if FILTERS[k] != "capacity")
            for j in range(len(self.regions))
        )
        hr = self.regions[home]
        home_valued = hr["price"] is not None and hr["mci"] is not None

        def per_wh(r: dict[str, Any]) -> tuple[float, float, float]:
            """USD and grams per IT Wh, and the score per IT Wh (energy + priced carbon + dual)."""
            usd_wh = r["pue"] * r["price"] / 1e6
            co2_wh = r["pue"] * r["mci"] / 1e3
            return usd_wh, co2_wh, usd_wh + o.carbon_usd_per_tonne * co2_wh / 1e6 + r["mu"]

        baseline = {
            "region": hr["id"],
            "energy_usd": e * per_wh(hr)[0] if home_valued else None,
            "carbon_g": e * per_wh(hr)[1] if home_valued else None,
            "feasible": home in cand,
        }
        best = None
        for j in cand:
            r = self.regions[j]
            fac = e * r["pue"]
            usd_wh, co2_wh, unit = per_wh(r)
            usd = e * usd_wh
            co2 = e * co2_wh
            egr = q.payload_bytes * (self.topo.egress(hr["id"], r["id"]) / 1e9)
            if sr is not None:  # state moves unless it already lives in j (egress to itself is 0)
                egr = egr + q.state_bytes * (self.topo.egress(self.regions[sr]["id"], r["id"]) / 1e9)
            friction = egr + o.relocation_fixed_usd if j != home else egr + 0.0
            score = e * unit + friction
            if best is not None and score == best[0]:
                self.ties += 1
            if best is None or score < best[0]:
                best = (score, j, fac, usd, co2, egr)
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
            )
            return out
        score, j, fac, usd, co2, egr = best
        r = self.regions[j]
        rtt = self.topo.rtt(node, self.topo.regions[j])
        layer = "local" if j == home else ("regional" if rtt <= o.regional_rtt_ms else "energy")
        r["window"].append((t, e_nwh))
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
            signal_age_s=(t - r["sig_ts"]) if r["sig_ts"] is not None else None,
        )
        return out
