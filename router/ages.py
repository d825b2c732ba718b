"""Signal ages on the router's event clock, the clock the router decides by.

A request is decided with the values in effect at its own event time (docs/model.md, "Time"), so a signal's
age that says what the router does is taken on that clock: the event time of the latest request decided
(``Decider.event_clock`` in router/decider.py; live it is never ahead of the wall clock). The demo
(streams/demo.py) replays April's real signals and requests on a compressed clock: on the wall clock its
signals look 236 days old, on the router's event clock they are seconds old and fresh, as the router
treats them. The live page (streams/web.py) and the metrics (streams/health.py) show both ages;
tests/streams/test_web.py reproduces the demo's case. This is not the wall clock that the time rule checks
messages against (router/clock.py). Before the first request there is no event clock and no age on it.
"""

from __future__ import annotations

import math

import numpy as np

from router.kernel.columns import (
    CARBON,
    HAS_STATIC_CARBON,
    HAS_STATIC_PRICE,
    PRICE,
    STATIC_CARBON,
    STATIC_PRICE,
)
from router.plan import FloatArray
from router.state import RegionState

__all__ = ["ages_at", "router_clock", "value_at"]


def router_clock(event_clock: float) -> float | None:
    """The router's event clock from ``Decider.event_clock`` (the latest request's event time), or None
    before the first request (the event clock starts at 0)."""
    return event_clock if event_clock > 0.0 else None


def _in_effect(state: RegionState, kind: int, at: float) -> tuple[FloatArray, FloatArray]:
    """Per region, (ts, value) of the latest signalled value of ``kind`` dated at or before ``at``, the one
    the kernel takes at ``at`` (router/kernel/_values.py); NaN where there is none."""
    n = state.val_n[kind]
    held = np.arange(state.val_ts.shape[2])[None, :] < n[:, None]
    k = ((state.val_ts[kind] <= at) & held).sum(axis=1)  # values held in increasing ts
    rows = np.arange(len(n))
    last = np.maximum(k - 1, 0)
    has = k > 0
    return (
        np.where(has, state.val_ts[kind, rows, last], np.nan),
        np.where(has, state.val[kind, rows, last], np.nan),
    )


def ages_at(state: RegionState, at: float) -> FloatArray:
    """Per region, ``at`` minus the older of its price and marginal carbon values in effect at ``at``; a kind
    with no signalled value dated at or before ``at`` has no age (a topology constant never ages); NaN when
    neither kind has one."""
    ages = np.full(state.f.shape[0], np.nan)
    for kind in (PRICE, CARBON):
        ts, _ = _in_effect(state, kind, at)
        ages = np.fmax(ages, at - ts)
    return ages


def value_at(state: RegionState, j: int, kind: int, at: float | None) -> float | None:
    """Region ``j``'s signalled value of ``kind`` in effect at ``at`` (the latest one when ``at`` is None),
    else the topology's constant, else None: what the page shows beside the age."""
    if at is None:
        return state.value_or_static(j, kind)
    _, values = _in_effect(state, kind, at)
    v = float(values[j])
    if not math.isnan(v):
        return v
    has, col = (HAS_STATIC_PRICE, STATIC_PRICE) if kind == PRICE else (HAS_STATIC_CARBON, STATIC_CARBON)
    return float(state.f[j, col]) if state.i[j, has] else None
