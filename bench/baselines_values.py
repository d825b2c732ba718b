"""Each region's price and carbon at a time ``t`` for the benchmark's baselines, without the kernel's code.

The rule is the kernel's (``router/kernel/_values.py``, README "Signal freshness and the forecast
fallback"): per value kind, the latest signalled value with ``ts <= t`` is **live** while ``t < end``; else
the region's forecast point covering ``t`` (``generated_at <= t < usable_end``, ``ts <= t < ts + step_s``,
the point carries the value); else the latest value, **stale**; else (nothing signalled by ``t``; or the
oldest kept value when older ones were dropped, stale) the topology's **static** constant; else **none**.
A region is *valued* when neither value is none and *fresh* when both are live, forecast or static but not
both static. Its score per IT Wh is ``PUE * price / 1e6 + lam * (PUE * carbon / 1e3) / 1e6 + mu``, in the
kernel's order of operations.

* ``PyValues``: plain Python over lists, one region at a time; returns, like the kernel, the interval
  ``[lo, hi)`` around ``t`` where nothing changes, so a scorer recomputes only when a request leaves it.
* ``NpValues``: the same as NumPy expressions over all regions at once. Its interval comes from the sorted
  array of every boundary the state holds (value ts and ends, forecast starts, ends and steps), built at
  construction: a ``searchsorted`` instead of the kernel's per-region bookkeeping.

Both read the region state and forecasts once, at construction (the benchmark does not change them).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from router.forecast import ForecastState
from router.kernel.columns import (
    FC_GENERATED_AT,
    FC_STEP_S,
    FC_USABLE_END,
    HAS_STATIC_CARBON,
    HAS_STATIC_PRICE,
    MU,
    PUE,
    STATIC_CARBON,
    STATIC_PRICE,
)
from router.state import RegionState

__all__ = ["NpTable", "NpValues", "PyTable", "PyValues"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# what one value is at t
LIVE, FORECAST, STATIC, STALE, NONE = range(5)


class PyTable(NamedTuple):
    """Per region at one time: score per IT Wh, valued, fresh; valid for ``lo <= t < hi``."""

    unit: list[float]
    valued: list[bool]
    fresh: list[bool]
    lo: float
    hi: float


class NpTable(NamedTuple):
    """``PyTable`` as arrays."""

    unit: FloatArray
    valued: BoolArray
    fresh: BoolArray
    lo: float
    hi: float


class _Forecast(NamedTuple):
    gen: float
    usable_end: float
    step: float
    ts: list[float]
    val: tuple[list[float], list[float]]
    has: tuple[list[bool], list[bool]]


class PyValues:
    """The value rule in plain Python (see the module docstring)."""

    def __init__(self, state: RegionState, forecasts: ForecastState, lam: float) -> None:
        R = state.f.shape[0]
        self.lam = lam
        self.pue: list[float] = state.f[:, PUE].tolist()
        self.mu: list[float] = state.f[:, MU].tolist()
        n = state.val_n.tolist()
        #: per kind, per region: [(ts, end, value)] in increasing ts
        self.hist = [
            [
                list(
                    zip(
                        *(a[v, j, : n[v][j]].tolist() for a in (state.val_ts, state.val_end, state.val)),
                        strict=True,
                    )
                )
                for j in range(R)
            ]
            for v in (0, 1)
        ]
        self.dropped = [[bool(x) for x in row] for row in state.val_dropped.tolist()]
        self.static: list[list[float | None]] = [
            [float(state.f[j, col]) if state.i[j, has] else None for j in range(R)]
            for has, col in ((HAS_STATIC_PRICE, STATIC_PRICE), (HAS_STATIC_CARBON, STATIC_CARBON))
        ]
        self.fc: list[_Forecast | None] = [_forecast(forecasts, j) for j in range(R)]

    def at(self, t: float) -> PyTable:
        """Every region's unit score, valued and fresh at ``t``, and the interval where they hold."""
        lo, hi = -math.inf, math.inf
        unit: list[float] = []
        valued_l: list[bool] = []
        fresh_l: list[bool] = []
        for j, (pue, mu) in enumerate(zip(self.pue, self.mu, strict=True)):
            valued = fresh = True
            n_static = 0
            vals = [0.0, 0.0]
            for v in (0, 1):
                vals[v], what, lo_v, hi_v = self._value(t, v, j)
                lo, hi = max(lo, lo_v), min(hi, hi_v)
                if what == STATIC:
                    n_static += 1
                elif what not in (LIVE, FORECAST):
                    fresh = False
                    valued = valued and what != NONE
            usd_wh = pue * vals[0] / 1e6
            g_wh = pue * vals[1] / 1e3
            unit.append(usd_wh + self.lam * g_wh / 1e6 + mu)
            valued_l.append(valued)
            fresh_l.append(fresh and n_static < 2)
        return PyTable(unit, valued_l, fresh_l, lo, hi)

    def _value(self, t: float, v: int, j: int) -> tuple[float, int, float, float]:
        """(value, what, lo, hi) of kind ``v`` for region ``j`` at ``t``."""
        hist = self.hist[v][j]
        k = len(hist) - 1
        while k >= 0 and hist[k][0] > t:
            k -= 1
        lo, hi = -math.inf, math.inf
        if k + 1 < len(hist):
            hi = hist[k + 1][0]
        if k >= 0:
            ts, end, value = hist[k]
            lo = ts
            if t < end:
                return value, LIVE, lo, min(hi, end)
            lo = max(lo, end)
        f = self.fc[j]
        if f is not None:
            found, value, lo, hi = _forecast_at(f, t, v, lo, hi)
            if found:
                return value, FORECAST, lo, hi
        if k >= 0:
            return hist[k][2], STALE, lo, hi
        if hist and self.dropped[v][j]:  # older values were dropped: what held at t is unknown
            return hist[0][2], STALE, lo, hi
        static = self.static[v][j]
        if static is not None:
            return static, STATIC, lo, hi
        return 0.0, NONE, lo, hi


def _forecast(fc: ForecastState, j: int) -> _Forecast | None:
    n = int(fc.n[j])
    if n == 0:
        return None
    meta = fc.meta[j].tolist()
    return _Forecast(
        meta[FC_GENERATED_AT],
        meta[FC_USABLE_END],
        meta[FC_STEP_S],
        fc.ts[j, :n].tolist(),
        (fc.val[0, j, :n].tolist(), fc.val[1, j, :n].tolist()),
        (fc.has[0, j, :n].tolist(), fc.has[1, j, :n].tolist()),
    )


def _forecast_at(f: _Forecast, t: float, v: int, lo: float, hi: float) -> tuple[bool, float, float, float]:
    """(found, value, lo, hi): the forecast's value of kind ``v`` at ``t``, the interval narrowed."""
    for b in (f.gen, f.usable_end):
        if b <= t:
            lo = max(lo, b)
        else:
            hi = min(hi, b)
    if not f.gen <= t < f.usable_end:
        return False, 0.0, lo, hi
    k = bisect_right(f.ts, t) - 1  # the last point with ts <= t
    if k + 1 < len(f.ts):
        hi = min(hi, f.ts[k + 1])
    if k < 0:
        return False, 0.0, lo, hi
    lo = max(lo, f.ts[k])
    cover = f.ts[k] + f.step
    if t >= cover:
        return False, 0.0, max(lo, cover), hi
    hi = min(hi, cover)
    if f.has[v][k]:
        return True, f.val[v][k], lo, hi
    return False, 0.0, lo, hi


class NpValues:
    """The value rule as NumPy expressions over all regions (see the module docstring)."""

    def __init__(self, state: RegionState, forecasts: ForecastState, lam: float) -> None:
        H = state.val.shape[2]
        self.lam = lam
        self.pue = state.f[:, PUE].copy()
        self.mu = state.f[:, MU].copy()
        held = np.arange(H) < state.val_n[..., None]  # (2, R, H)
        self.ts = np.where(held, state.val_ts, np.inf)  # padding never counts as ts <= t
        self.end, self.val = state.val_end.reshape(-1).copy(), state.val.reshape(-1).copy()
        self.first = state.val[..., 0].copy()  # the oldest value kept
        self.rows = np.arange(2 * len(self.pue)).reshape(2, -1) * H  # flat index of each (kind, region) row
        self.dropped_any = (state.val_n > 0) & (state.val_dropped != 0)
        self.has_static = np.stack([state.i[:, HAS_STATIC_PRICE] != 0, state.i[:, HAS_STATIC_CARBON] != 0])
        static = np.stack([state.f[:, STATIC_PRICE], state.f[:, STATIC_CARBON]])
        self.static = np.where(self.has_static, static, 0.0)  # 0.0: no value at all (the kernel's too)
        P = forecasts.ts.shape[1]
        points = np.arange(P) < forecasts.n[:, None]  # (R, P)
        self.fc_ts = np.where(points, forecasts.ts, np.inf)
        self.fc_val, self.fc_has, self.fc_n = forecasts.val.copy(), forecasts.has.copy(), forecasts.n.copy()
        meta = forecasts.meta
        self.fc_gen = meta[:, FC_GENERATED_AT].copy()
        self.fc_end = meta[:, FC_USABLE_END].copy()
        self.fc_step = meta[:, FC_STEP_S].copy()
        has_fc = forecasts.n > 0
        bounds = [
            state.val_ts[held],
            state.val_end[held],
            meta[has_fc, FC_GENERATED_AT],
            meta[has_fc, FC_USABLE_END],
            forecasts.ts[points],
            (forecasts.ts + meta[:, FC_STEP_S, None])[points],
        ]
        #: every time at which some test ``t >= b`` / ``t < b`` flips: values are constant in between
        self.bounds = np.unique(np.concatenate(bounds))

    def at(self, t: float) -> NpTable:
        """Every region's unit score, valued and fresh at ``t``, and the interval where they hold."""
        k = (self.ts <= t).sum(axis=2) - 1  # (2, R): the latest value with ts <= t (-1: none)
        has = k >= 0
        flat = self.rows + np.maximum(k, 0)
        latest = self.val[flat]
        live = has & (t < self.end[flat])
        fc_ok, fc_value = self._forecast_at(t)
        use_fc = ~live & fc_ok
        stale = ~live & ~fc_ok & has
        stale_first = ~has & ~fc_ok & self.dropped_any
        static = ~has & ~fc_ok & ~stale_first & self.has_static
        value = np.where(
            live | stale, latest, np.where(use_fc, fc_value, np.where(stale_first, self.first, self.static))
        )
        usd_wh = self.pue * value[0] / 1e6
        g_wh = self.pue * value[1] / 1e3
        unit = usd_wh + self.lam * g_wh / 1e6 + self.mu
        valued = (has | fc_ok | self.dropped_any | self.has_static).all(axis=0)
        fresh = (live | use_fc | static).all(axis=0) & ~static.all(axis=0)
        b = int(np.searchsorted(self.bounds, t, side="right"))
        lo = float(self.bounds[b - 1]) if b > 0 else -math.inf
        hi = float(self.bounds[b]) if b < len(self.bounds) else math.inf
        return NpTable(unit, valued, fresh, lo, hi)

    def _forecast_at(self, t: float) -> tuple[BoolArray, FloatArray]:
        """Per kind and region: whether the forecast gives a value at ``t``, and the value."""
        k = (self.fc_ts <= t).sum(axis=1) - 1  # the last point with ts <= t
        pick = np.maximum(k, 0)
        rows = np.arange(len(k))
        start = self.fc_ts[rows, pick]
        usable = (self.fc_n > 0) & (self.fc_gen <= t) & (t < self.fc_end) & (k >= 0)
        usable &= t < start + self.fc_step
        return usable & self.fc_has[:, rows, pick], self.fc_val[:, rows, pick]
