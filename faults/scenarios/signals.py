"""Scenario 6: grid signals stop for longer than their validity, then arrive late and out of order; a
region other than the home region is a target only while its signal is fresh, a late signal joins the
region's value history (docs: "One rule for time") and is never used by a request dated after a newer
value, every placed request records ``signal_age_s``."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from faults.checker import Rec, check_placements
from faults.scenarios.common import (
    T0,
    Ctx,
    Result,
    fill_result,
    fresh_requests,
    fresh_settings,
    lines,
    publish_signals,
    request_items,
    send,
    start_worker,
    stop_workers,
    wait_placed,
)

__all__ = ["stale_signals"]


def _stale_signals() -> tuple[list[str], dict[str, dict[str, Any]]]:
    """One representative bundled signal per region (its values, without ts/valid_for_s/source)."""
    per: dict[str, dict[str, Any]] = {}
    for sig in lines("sample_signals.jsonl"):
        body = {k: v for k, v in sig.items() if k not in ("ts", "valid_for_s", "source")}
        per.setdefault(sig["region"], {}).update(body)
    return sorted(per), per


def stale_signals(ctx: Ctx) -> Result:
    """Scenario 6: signals stop for longer than their validity, then arrive late and out of order."""
    res = Result("6", "grid signals stale, then late/out of order")
    n = 150 if ctx.quick else 600
    valid = 600.0
    ta = T0 + 3600
    t2 = ta + valid + 700  # the new signal after the gap
    late_ts = (ta + valid + 100, ta + valid + 300)  # older than t2, published after it
    regions, body = _stale_signals()

    def sig(region: str, ts: float, **extra: Any) -> dict[str, Any]:
        return {**body[region], "region": region, "ts": ts, "valid_for_s": valid, **extra}

    phase_a = [sig(r, ta) for r in regions]
    rng = random.Random(6)
    # late values only of the kinds the region's signals carry: freshness and the late rule are per value, so
    # a price sent to a region that never had a price signal would not be late (its topology constant is)
    kinds = ("price_usd_per_mwh", "marginal_gco2_per_kwh")
    late = [sig(r, t, **{k: 0.01 for k in kinds if k in body[r]}) for r in regions for t in late_ts]
    rng.shuffle(late)
    phase_c = [sig(r, t2) for r in regions] + late + [sig(regions[0], t2 + 1)]
    published = phase_a + phase_c  # in log order
    applied_c = len(phase_c)  # the late ones join the history too

    def reqs(tag: str, lo: float, hi: float) -> list[dict[str, Any]]:
        out = fresh_requests(n, f"s6{tag}")
        return [dict(r, ts=lo + (hi - lo) * k / n) for k, r in enumerate(out)]

    req_a = reqs("a", ta + 1, ta + valid / 2)
    req_b = reqs("b", ta + valid + 60, ta + valid + 600)  # every signal is stale
    req_c = reqs("c", t2 + 10, t2 + valid / 2)
    phase_of = {r["request_id"]: p for p, rs in (("a", req_a), ("b", req_b), ("c", req_c)) for r in rs}
    s = fresh_settings(ctx.bootstrap, "s6")
    w = start_worker(s, "s6", ctx)
    try:
        publish_signals(s, phase_a)
        w.wait(lambda h: h["signals_version"] >= len(phase_a))
        log = send(s, request_items(req_a + req_b), rate=3000)
        wait_placed(s, log, timeout_s=60)
        publish_signals(s, phase_c)
        h = w.wait(lambda h: h["signals_version"] >= len(phase_a) + applied_c)
        send(s, request_items(req_c), rate=3000, log=log)
        recs = wait_placed(s, log, timeout_s=60)
        check = check_placements(log.acked, recs)
        fill_result(res, log, check)
        res.details["signals_version"] = {"seen": h["signals_version"], "expected": len(phase_a) + applied_c}
        if h["signals_version"] != len(phase_a) + applied_c:
            res.violations.append(f"signals_version {h['signals_version']} != {len(phase_a) + applied_c}")
        _check_staleness(res, recs, published, phase_of)
    finally:
        stop_workers([w], res)
    return res


def _held_states(published: Sequence[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """(ts, valid_for_s) values each region's history holds: every signal, the late ones included."""
    held: dict[str, list[tuple[float, float]]] = {}
    for sig in published:
        held.setdefault(sig["region"], []).append((float(sig["ts"]), float(sig["valid_for_s"])))
    return held


def _late(published: Sequence[dict[str, Any]]) -> set[tuple[str, float]]:
    """(region, ts) of the signals published after a newer one of their region."""
    newest: dict[str, float] = {}
    out: set[tuple[str, float]] = set()
    for sig in published:
        ts = float(sig["ts"])
        if ts < newest.get(sig["region"], -1.0):
            out.add((sig["region"], ts))
        newest[sig["region"]] = max(ts, newest.get(sig["region"], -1.0))
    return out


def _check_staleness(
    res: Result, recs: Sequence[Rec], published: Sequence[dict[str, Any]], phase_of: dict[str, str]
) -> None:
    held, late = _held_states(published), _late(published)
    reloc: Counter[str] = Counter()
    stale_targets, late_used, no_age, unexplained = [], [], [], []
    for rec in recs:
        p = rec.json()
        rid, region, age = p["request_id"], p["region"], p["signal_age_s"]
        if p["status"] != "placed":
            continue
        if age is None:
            no_age.append(rid)
            continue
        used_ts = p["event_ts"] - age
        # every request of phase c is dated after the newest signals: a late value is never its latest
        if any(r == region and abs(ts - used_ts) < 1e-3 for r, ts in late):
            late_used.append(rid)
        if region == p["home_region"]:
            continue
        reloc[phase_of.get(rid, "?")] += 1
        states = [v for ts, v in held.get(region, []) if abs(ts - used_ts) < 1e-3]
        if not states:
            unexplained.append(rid)
        elif age > max(states) + 1e-6 or age < -1e-6:
            stale_targets.append(rid)
    res.details.update(
        {
            "relocations_by_phase": dict(reloc),
            "stale_relocations": len(stale_targets),
            "late_signal_used": len(late_used),
            "placed_without_signal_age": len(no_age),
            "relocations_with_unexplained_signal": len(unexplained),
        }
    )
    if reloc.get("b"):
        res.violations.append(f"{reloc['b']} relocations while every signal was stale")
    if stale_targets:
        res.violations.append(f"{len(stale_targets)} placements relocated to a region with a stale signal")
    if late_used:
        res.violations.append(f"{len(late_used)} placements used a late signal that should have been dropped")
    if unexplained:
        res.violations.append(f"{len(unexplained)} relocations used a signal the log order does not explain")
    if no_age:
        res.violations.append(f"{len(no_age)} placed requests carry no signal_age_s")
    if not reloc.get("a") or not reloc.get("c"):
        res.violations.append(f"too few relocations to test staleness (by phase: {dict(reloc)})")
