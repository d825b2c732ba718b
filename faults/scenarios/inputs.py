"""Scenarios 8, 9 and 9p: bad and repeated input.

8. ``twice``: 5% of requests are sent twice; one distinct effective placement per request_id.
9. ``garbage``: poison and oversized messages and a flood of garbage at 10x the valid rate; every garbage
   record is dead-lettered, every valid request placed, the worker's RSS stays bounded.
9p. ``overflow``: schema-valid requests whose ``energy_wh`` overflows the kernel's integer energy column
   (1e12, 1e300 Wh) between valid requests: dead-lettered, the others placed, the worker alive.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import orjson

from faults.checker import SendLog, check_placements, read_topic
from faults.scenarios.common import (
    Ctx,
    Item,
    Result,
    fill_result,
    first_hour_signals,
    fresh_requests,
    fresh_settings,
    publish_signals,
    request_items,
    rss_kb,
    send,
    start_worker,
    stop_workers,
    wait_placed,
)

__all__ = ["OVERFLOW_POISON", "garbage_flood", "garbage_values", "overflow_poison", "sent_twice"]


def sent_twice(ctx: Ctx) -> Result:
    """Scenario 8: 5% of the requests are sent twice (some adjacent, some far apart)."""
    res = Result("8", "5% of requests sent twice")
    n, rate = (1200, 1000.0) if ctx.quick else (8000, 800.0)
    reqs = request_items(fresh_requests(n, "s8"))
    gaps = (0, 7, 150, 2000)
    keyed = [(float(k), r) for k, r in enumerate(reqs)]
    copies = [(k + gaps[(k // 20) % len(gaps)] + 0.5, reqs[k]) for k in range(0, n, 20)]
    items = [r for _, r in sorted(keyed + copies, key=lambda x: x[0])]  # every 20th request once more
    twice = len(copies)
    s = fresh_settings(ctx.bootstrap, "s8")
    sig = first_hour_signals()
    w = start_worker(s, "s8", ctx)
    try:
        publish_signals(s, sig)
        w.wait(lambda h: h["signals_version"] >= len(sig))
        log = send(s, items, rate=rate)
        recs = wait_placed(s, log, timeout_s=90)
        # the second copies come after the first ones: wait until every copy has its placement
        want = log.acked_count
        if len(recs) < want:
            recs = read_topic(s, s.topic_placements, done=lambda r: len(r) >= want, timeout_s=30)
        check = check_placements(log.acked, recs)
        fill_result(res, log, check)
        acked_twice = sum(1 for v in log.acked.values() if len(v) > 1)
        res.details.update({"sent_twice": twice, "acked_twice": acked_twice, "placement_records": len(recs)})
        missing_copies = want - len(recs)
        if missing_copies > 0:
            res.violations.append(f"{missing_copies} acknowledged copies got no placement record")
        if check.duplicates != sum(len(v) - 1 for v in log.acked.values()):
            res.details["duplicates_expected"] = sum(len(v) - 1 for v in log.acked.values())
    finally:
        stop_workers([w], res)
    return res


def garbage_values(k: int, origin: str) -> tuple[bytes | None, bytes | None]:
    """The k-th garbage record (key, value): never a usable request, always one the worker must reject."""
    rid = f"junk-{k}"
    good = {"request_id": rid, "origin": origin, "latency_budget_ms": 500.0, "energy_wh": 1.0}
    kinds: list[bytes | None] = [
        b"not json at all " + str(k).encode(),
        bytes(random.Random(k).randbytes(64)),
        b"",
        None,  # a tombstone
        b"[1, 2, 3]",
        b'"just a string"',
        b"[" * 2000 + b"]" * 2000,
        b'{"request_id": "' + rid.encode() + b'", "latency_budget_ms": 1e400}',
        orjson.dumps({**good, "origin": "fe-nowhere"}),
        orjson.dumps({**good, "latency_budget_ms": 0}),
        orjson.dumps({**good, "latency_budget_ms": "fast"}),
        orjson.dumps({**good, "energy_wh": -1}),
        orjson.dumps({k2: v for k2, v in good.items() if k2 != "origin"}),
        orjson.dumps({**good, "request_id": "x" * 300}),
        orjson.dumps({**good, "model": "no-such-model", "tokens": 10}),
        orjson.dumps({**good, "state_region": "mars:olympus-1"}),
        b'{"request_id": "'
        + rid.encode()
        + b'", "origin": "'
        + origin.encode()
        + b'", "tokens": '
        + b"9" * 40
        + b', "latency_budget_ms": 5}',
        orjson.dumps({**good, "origin": "\u202e\u0000\ufffd"}),
        orjson.dumps({**good, "ts": -5}),
        orjson.dumps({**good, "payload_bytes": 1 << 50}),
    ]
    if k % 100 == 0:  # oversized, 1 in 100
        return rid.encode(), orjson.dumps({**good, "pad": "x" * 70_000})
    value = kinds[k % len(kinds)]
    return (None if k % 7 == 0 and value is not None else rid.encode()), value  # a tombstone needs a key


#: Valid JSON requests whose numbers overflow the kernel's integer energy column (not garbage by schema,
#: but poison: they must be dead-lettered rather than take the worker down).
OVERFLOW_POISON: tuple[dict[str, Any], ...] = (
    {"latency_budget_ms": 500.0, "energy_wh": 1e12},
    {"latency_budget_ms": 500.0, "energy_wh": 1e300},
)


def garbage_flood(ctx: Ctx) -> Result:
    """Scenario 9: poison and oversized messages, and garbage at 10x the valid rate, in rounds."""
    res = Result("9", "poison/oversized + 10x garbage flood")
    valid_rate, per_round, rounds = (100.0, 200, 1) if ctx.quick else (200.0, 2000, 2)
    reqs = fresh_requests(per_round * rounds, "s9")
    origin = reqs[0]["origin"]
    s = fresh_settings(ctx.bootstrap, "s9")
    sig = first_hour_signals()
    w = start_worker(s, "s9", ctx)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_kb(w.proc.pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        publish_signals(s, sig)
        w.wait(lambda h: h["signals_version"] >= len(sig))
        log = SendLog()
        rss: dict[str, int] = {"before": rss_kb(w.proc.pid)}
        sampler.start()
        k_junk = 0
        for rnd in range(rounds):
            items: list[Item] = []
            for r in request_items(reqs[rnd * per_round : (rnd + 1) * per_round]):
                items.append(r)
                for _ in range(10):
                    items.append((*garbage_values(k_junk, origin), None))
                    k_junk += 1
            send(s, items, rate=valid_rate * 11, log=log)
            wait_placed(s, log, timeout_s=60, worker=w)
            time.sleep(0.5)
            rss[f"after_round_{rnd + 1}"] = rss_kb(w.proc.pid)
        recs = wait_placed(s, log, timeout_s=30, worker=w)
        dlq = read_topic(s, s.topic_dlq, done=lambda r: len(r) >= log.garbage_acked, timeout_s=30)
        stop.set()
        check = check_placements(log.acked, recs)
        fill_result(res, log, check)
        letters = [d.json() for d in dlq]
        fields = Counter(str(x.get("field")) for x in letters)
        rss["peak"] = max(samples, default=0)
        alive = w.proc.poll() is None
        growth_mb = (rss[f"after_round_{rounds}"] - rss["before"]) / 1024
        res.details.update(
            {
                "valid_rate_per_s": valid_rate,
                "garbage_rate_per_s": valid_rate * 10,
                "garbage_sent": log.garbage_sent,
                "garbage_acked": log.garbage_acked,
                "dead_letters": len(letters),
                "dead_letters_by_field": dict(fields.most_common()),
                "rss_kb": rss,
                "rss_growth_mb": round(growth_mb, 1),
                "worker_alive_at_end": alive,
            }
        )
        if len(letters) != log.garbage_acked:
            res.violations.append(f"{len(letters)} dead letters for {log.garbage_acked} garbage records")
        if any(not x.get("error") or x.get("topic") != s.topic_requests for x in letters):
            res.violations.append("a dead letter without a reason or with the wrong topic")
        if not alive:
            res.violations.append(f"the worker died (exit {w.proc.returncode})")
        if growth_mb > 150:
            res.violations.append(f"worker RSS grew by {growth_mb:.0f} MB")
    finally:
        stop.set()
        stop_workers([w], res)
    return res


def overflow_poison(ctx: Ctx) -> Result:
    """Scenario 9p: schema-valid requests whose energy overflows the kernel's integer column, between valid
    requests; they must be dead-lettered, and the requests around them placed."""
    res = Result("9p", "poison: energy_wh overflow")
    reqs = fresh_requests(100, "s9p")
    origin = reqs[0]["origin"]
    items = request_items(reqs[:50])
    for j, extra in enumerate(OVERFLOW_POISON):
        body = {"request_id": f"poison-{j}", "origin": origin, **extra}
        items.append((f"poison-{j}".encode(), orjson.dumps(body), None))
    items += request_items(reqs[50:])
    s = fresh_settings(ctx.bootstrap, "s9p")
    sig = first_hour_signals()
    w = start_worker(s, "s9p", ctx)
    try:
        publish_signals(s, sig)
        w.wait(lambda h: h["signals_version"] >= len(sig))
        log = send(s, items, rate=5000)
        recs = wait_placed(s, log, timeout_s=30, worker=w)
        dlq = read_topic(s, s.topic_dlq, done=lambda r: len(r) >= log.garbage_acked, timeout_s=5)
        check = check_placements(log.acked, recs)
        fill_result(res, log, check)
        alive = w.proc.poll() is None
        crash = [ln for ln in w.log.read_text(errors="replace").splitlines() if "Error" in ln][-3:]
        res.details.update(
            {"dead_letters": len(dlq), "worker_alive_at_end": alive, "worker_log_errors": crash}
        )
        if len(dlq) != log.garbage_acked:
            res.violations.append(f"{len(dlq)} dead letters for {log.garbage_acked} poison records")
        if not alive:
            res.violations.append(f"the worker died (exit {w.proc.returncode})")
    finally:
        stop_workers([w], res)
    return res
