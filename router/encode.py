"""Decision arrays -> Placement messages (dicts in the contract's field order, ready for orjson)."""

from __future__ import annotations

from typing import Any

import orjson

from router.kernel import FILTER_NAMES, NO_AGE, SIGNAL_SOURCES
from router.plan import Plan, RequestArrays
from router.scoring import Decisions

__all__ = ["LAYERS", "encode_placement", "placements"]

LAYERS = ("local", "regional", "energy")


def placements(
    plan: Plan,
    batch: RequestArrays,
    dec: Decisions,
    *,
    shares_version: int,
    decided_at: float | None = None,
) -> list[dict[str, Any]]:
    """One placement dict per request of the batch; ``decided_at`` defaults to the event time (replay)."""
    out: list[dict[str, Any]] = []
    regions = plan.region_ids
    home_of = plan.home.tolist()
    f_rows = dec.out_f.tolist()
    i_rows = dec.out_i.tolist()
    rem_rows = dec.removed.tolist()
    req_f = batch.f.tolist()
    req_i = batch.i.tolist()
    removed_of: dict[tuple[int, ...], dict[str, int]] = {}  # few distinct rows per batch: build each once
    for k, rid in enumerate(batch.ids):
        of, oi, rf = f_rows[k], i_rows[k], req_f[k]
        h = regions[home_of[req_i[k][0]]]
        choice, reason_code = oi[0], oi[1]
        placed = choice >= 0
        rem_key = tuple(rem_rows[k])
        removed = removed_of.get(rem_key)
        if removed is None:
            removed = removed_of[rem_key] = {FILTER_NAMES[c]: n for c, n in enumerate(rem_key) if n}
        home_valued = oi[6] == 1
        out.append(
            {
                "request_id": rid,
                "status": "placed" if placed else "rejected",
                "region": regions[choice] if placed else None,
                "origin": batch.origins[k],
                "home_region": h,
                "layer": LAYERS[oi[4]] if placed else None,
                "reason": "min_score" if placed else FILTER_NAMES[reason_code - 1],
                "latency_ms": of[0] if placed else None,
                "energy_wh": rf[1],
                "facility_wh": of[1] if placed else None,
                "energy_usd": of[2] if placed else None,
                "carbon_g": of[3] if placed else None,
                "egress_usd": of[4] if placed else None,
                "score_usd": of[5] if placed else None,
                "baseline": {
                    "region": h,
                    "energy_usd": of[6] if home_valued else None,
                    "carbon_g": of[7] if home_valued else None,
                    "feasible": oi[5] == 1,
                },
                "feasible_regions": oi[2],
                "relocatable": oi[3] == 1,
                "removed": dict(removed),
                "signal_age_s": of[8] if placed and of[8] != NO_AGE else None,
                "signal_source": SIGNAL_SOURCES[oi[7]] if placed else None,
                "forecast_generated_at": of[9] if placed and of[9] != NO_AGE else None,
                "signals_version": dec.signals_version,
                "shares_version": shares_version,
                "event_ts": rf[0],
                "decided_at": rf[0] if decided_at is None else decided_at,
            }
        )
    return out


def encode_placement(p: dict[str, Any]) -> bytes:
    """One placement as its message value: compact JSON, keys in the contract's order (as built above)."""
    return orjson.dumps(p)
