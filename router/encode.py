"""Decision arrays -> Placement messages (dicts in the contract's field order, ready for orjson).

With ``explain`` each placement also gets ``runner_up`` and ``terms`` (docs/contract.md, "Explanations"): the
runner-up comes from the kernel; the terms split the pick's score with the same arithmetic as the score
(``router.kernel._score``): energy cost, carbon priced at lambda, egress, the fixed relocation friction and
the dual term. tests/router/test_explain.py diffs both against the naive reference.
"""

from __future__ import annotations

import orjson

from router.kernel.columns import (
    CARBON_USD_PER_TONNE,
    CHOICE,
    ENERGY_WH,
    FILTER_NAMES,
    HOME_CARBON_G,
    HOME_ENERGY_USD,
    HOME_FEASIBLE,
    HOME_VALUED,
    LAYER,
    LAYERS,
    N_FEASIBLE,
    NO_AGE,
    ORIGIN,
    OUT_CARBON_G,
    OUT_EGRESS_USD,
    OUT_ENERGY_USD,
    OUT_FACILITY_WH,
    OUT_FORECAST_GENERATED_AT,
    OUT_LATENCY_MS,
    OUT_SCORE_USD,
    OUT_SIGNAL_AGE_S,
    REASON,
    RELOCATABLE,
    RELOCATION_FIXED_USD,
    RUNNER_UP,
    RUNNER_UP_SCORE_USD,
    SESSION_MOVED,
    SIGNAL_SOURCE,
    SIGNAL_SOURCES,
    TENANT,
    T,
)
from router.placement import PlacementMessage, RunnerUpMessage, TenantTermsMessage
from router.plan import Plan, RequestArrays
from router.scoring import Decisions

__all__ = ["LAYERS", "encode_placement", "placements"]


def placements(
    plan: Plan,
    batch: RequestArrays,
    dec: Decisions,
    *,
    shares_version: int,
    decided_at: float | None = None,
    explain: bool = False,
) -> list[PlacementMessage]:
    """One placement dict per request of the batch; ``decided_at`` defaults to the event time (replay);
    ``explain`` adds ``runner_up`` and ``terms``."""
    out: list[PlacementMessage] = []
    regions = plan.region_ids
    home_of = plan.home.tolist()
    f_rows = dec.out_f.tolist()
    i_rows = dec.out_i.tolist()
    rem_rows = dec.removed.tolist()
    req_f = batch.f.tolist()
    req_i = batch.i.tolist()
    removed_of: dict[tuple[int, ...], dict[str, int]] = {}  # few distinct rows per batch: build each once
    explainer = _Explainer(plan, dec) if explain else None
    tenants = batch.tenants or (None,) * len(batch.ids)
    sessions = batch.sessions or (None,) * len(batch.ids)
    for k, rid in enumerate(batch.ids):
        of, oi, rf = f_rows[k], i_rows[k], req_f[k]
        h = regions[home_of[req_i[k][ORIGIN]]]
        choice, reason_code = oi[CHOICE], oi[REASON]
        placed = choice >= 0
        rem_key = tuple(rem_rows[k])
        removed = removed_of.get(rem_key)
        if removed is None:
            removed = removed_of[rem_key] = {FILTER_NAMES[c]: n for c, n in enumerate(rem_key) if n}
        home_valued = oi[HOME_VALUED] == 1
        out.append(
            {
                "request_id": rid,
                "status": "placed" if placed else "rejected",
                "region": regions[choice] if placed else None,
                "origin": batch.origins[k],
                "home_region": h,
                "layer": LAYERS[oi[LAYER]] if placed else None,
                "reason": "min_score" if placed else FILTER_NAMES[reason_code - 1],
                "latency_ms": of[OUT_LATENCY_MS] if placed else None,
                "energy_wh": rf[ENERGY_WH],
                "facility_wh": of[OUT_FACILITY_WH] if placed else None,
                "energy_usd": of[OUT_ENERGY_USD] if placed else None,
                "carbon_g": of[OUT_CARBON_G] if placed else None,
                "egress_usd": of[OUT_EGRESS_USD] if placed else None,
                "score_usd": of[OUT_SCORE_USD] if placed else None,
                "baseline": {
                    "region": h,
                    "energy_usd": of[HOME_ENERGY_USD] if home_valued else None,
                    "carbon_g": of[HOME_CARBON_G] if home_valued else None,
                    "feasible": oi[HOME_FEASIBLE] == 1,
                },
                "feasible_regions": oi[N_FEASIBLE],
                "relocatable": oi[RELOCATABLE] == 1,
                "removed": dict(removed),
                "signal_age_s": of[OUT_SIGNAL_AGE_S] if placed and of[OUT_SIGNAL_AGE_S] != NO_AGE else None,
                "signal_source": SIGNAL_SOURCES[oi[SIGNAL_SOURCE]] if placed else None,
                "forecast_generated_at": of[OUT_FORECAST_GENERATED_AT]
                if placed and of[OUT_FORECAST_GENERATED_AT] != NO_AGE
                else None,
                "signals_version": dec.signals_version,
                "shares_version": shares_version,
                "event_ts": rf[T],
                "decided_at": rf[T] if decided_at is None else decided_at,
            }
        )
        if tenants[k] is not None:
            out[-1]["tenant"] = tenants[k]  # type: ignore[typeddict-item]  # present, never None
        if sessions[k] is not None:
            out[-1]["session_id"] = sessions[k]  # type: ignore[typeddict-item]  # present, never None
            out[-1]["session_moved"] = oi[SESSION_MOVED] == 1
        if explainer is not None:
            explainer.add(out[-1], choice, home_of[req_i[k][ORIGIN]], rf[ENERGY_WH], of, oi[RUNNER_UP])
            explainer.add_tenant(out[-1], req_i[k][TENANT], of)
    return out


class _Explainer:
    """Adds ``runner_up`` and ``terms`` to the placements of one batch."""

    def __init__(self, plan: Plan, dec: Decisions) -> None:
        self.regions = plan.region_ids
        self.lam = float(plan.scalars[CARBON_USD_PER_TONNE])
        self.fixed = float(plan.scalars[RELOCATION_FIXED_USD])
        self.mu = dec.mu.tolist()
        self.nu = [] if dec.nu is None else dec.nu.tolist()

    def add(self, p: PlacementMessage, choice: int, home: int, e: float, of: list[float], ru: int) -> None:
        """The explanations of one placement (both null when rejected)."""
        if choice < 0:
            p["runner_up"] = p["terms"] = None
            return
        runner_up: RunnerUpMessage | None = (
            {"region": self.regions[ru], "score_usd": of[RUNNER_UP_SCORE_USD]} if ru >= 0 else None
        )
        terms: TenantTermsMessage = {
            "energy_usd": of[OUT_ENERGY_USD],
            "carbon_usd": self.lam * of[OUT_CARBON_G] / 1e6,
            "egress_usd": of[OUT_EGRESS_USD],
            "relocation_usd": self.fixed if choice != home else 0.0,
            "dual_usd": e * self.mu[choice],
        }
        p["runner_up"] = runner_up
        p["terms"] = terms

    def add_tenant(self, p: PlacementMessage, tenant: int, of: list[float]) -> None:
        """``terms.dual_carbon_usd`` of a budgeted tenant's placed request."""
        terms = p.get("terms")
        if tenant >= 0 and terms is not None:
            terms["dual_carbon_usd"] = self.nu[tenant] * of[OUT_CARBON_G]


def encode_placement(p: PlacementMessage) -> bytes:
    """One placement as its message value: compact JSON, keys in the contract's order (as built above)."""
    return orjson.dumps(p)
