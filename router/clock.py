"""One rule for time: every timestamp is epoch seconds (UTC) and never ahead of the router's clock.

Two checks, applied to every timestamp of every message (requests, signals, statuses, forecasts, shares):

- **plausible** (at decode, by the models): ``0 <= ts <= MAX_TS`` (2100-01-01); a later value is refused,
  with the date it would be in milliseconds or microseconds when that reading is plausible.
- **not ahead** (``ahead_problem``): ``ts <= now + max_clock_skew_s``. Live, ``now`` is the worker's wall
  clock when it decodes the message, and a message ahead of it is dead-lettered, never applied: a
  future-dated value would otherwise stay the region's "latest" and hide every honest one. Offline
  (``score``, ``frontier``) there is no clock unless ``--now TS`` gives one (then a record ahead of it is
  refused with exit 2): a replay reads each region's values as of each request's own time, so a late-dated
  record cannot hide earlier ones, and planning with tomorrow's requests and forecasts is a real use.

Within the skew a timestamp is taken as it is. docs/model.md ("Time") says how a late signal is applied.
"""

from __future__ import annotations

import datetime as dt

from router.bounds import MAX_TS

__all__ = ["ahead_problem", "iso", "plausible_problem"]


def iso(ts: float) -> str:
    """``ts`` as an ISO 8601 UTC time to the second (``?`` when it is out of the datetime range)."""
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "?"


def plausible_problem(ts: float) -> tuple[str, str] | None:
    """None for a plausible epoch-seconds value, else (problem, expected)."""
    if ts <= MAX_TS:
        return None
    problem = f"{ts:.6g} is after {iso(MAX_TS)}"
    for unit, scale in (("milliseconds", 1e3), ("microseconds", 1e6)):
        if ts / scale <= MAX_TS:
            problem += f"; it looks like {unit} ({iso(ts / scale)})"
            break
    return problem, f"epoch seconds (UTC), at most {MAX_TS:.0f}"


def ahead_problem(ts: float, now: float, skew_s: float) -> tuple[str, str] | None:
    """None when ``ts`` is at most ``skew_s`` ahead of ``now``, else (problem, expected)."""
    if ts <= now + skew_s:
        return None
    return (
        f"{ts:.6g} ({iso(ts)}) is {ts - now:.0f} s ahead of the router's clock ({iso(now)})",
        f"a time at most {skew_s:g} s after the router's clock (max clock skew)",
    )
