"""Live region state in event time: signalled values, status, capacity windows and the capacity duals.

Price and marginal carbon each keep their last ``VALUE_HISTORY`` values per region, in increasing ``ts``,
each with its own validity (real providers send them separately: hourly day-ahead prices, 5-minute
marginal carbon). A request is scored with the latest value whose ``ts`` is not after its own
(router/kernel/_values.py), so a value that arrives late, or one dated after a request, changes only the
requests at or after its ``ts``, exactly as the offline replay applies it. A value with the ``ts`` of one
already held replaces it; one older than all the values kept is ignored. ``pue`` keeps its latest value
(a later one wins); ``average_gco2_per_kwh`` is kept for display only.

Capacity is guarded per window in integer nano-Wh, two int64 words per region
(router/kernel/_windows.py); ``capacity_kw`` inf (no limit) becomes ``UNLIMITED_HI``.
"""

from __future__ import annotations

import math

import numpy as np

from router.kernel import LIMB, NEVER, UNLIMITED_HI
from router.kernel.columns import (
    CARBON,
    HAS_STATIC_CARBON,
    HAS_STATIC_PRICE,
    HEALTHY,
    MU,
    PRICE,
    PRIOR_CARBON,
    PRIOR_PRICE,
    PUE,
    REG_F_COLS,
    REG_I_COLS,
    STATIC_CARBON,
    STATIC_PRICE,
    USE_PRIOR_CARBON,
    USE_PRIOR_PRICE,
)
from router.kernel.structs import Regions, Windows
from router.models import GridSignal, RegionStatus
from router.plan import NWH_PER_WH, FloatArray, IntArray, Plan
from router.priors import prior_columns

__all__ = ["VALUE_FIELDS", "VALUE_HISTORY", "CapacityWindows", "RegionState", "frozen_copy", "valid_end"]

#: Values kept per region and kind: a request older than the oldest one kept is scored as stale.
VALUE_HISTORY = 16
#: signal field -> its index in the value history (router.kernel.columns PRICE, CARBON)
_KIND = {"price_usd_per_mwh": PRICE, "marginal_gco2_per_kwh": CARBON}
#: every field a signal may carry, in the order they are applied
VALUE_FIELDS = ("price_usd_per_mwh", "marginal_gco2_per_kwh", "pue", "average_gco2_per_kwh")


def valid_end(ts: float, valid_s: float) -> float:
    """The smallest double ``x`` with ``x - ts > valid_s``: ``t - ts <= valid_s`` holds exactly for ``t < x``.

    The rounded ``t - ts`` is monotone in ``t``, so the test holds exactly below the smallest double where
    it fails, found from ``ts + valid_s`` in a few ulp steps (timestamps >= 0, ``valid_s`` > 0). Computed
    once when a value or forecast arrives, so the kernel's per-batch work is a comparison.
    """
    x = ts + valid_s
    if x - ts > valid_s:
        y = math.nextafter(x, -math.inf)
        while y - ts > valid_s:
            x = y
            y = math.nextafter(x, -math.inf)
    else:
        while not x - ts > valid_s:
            x = math.nextafter(x, math.inf)
    return x


def capacity_words(capacity_kw: float, window_s: float) -> tuple[int, int]:
    """A capacity over one window as the kernel's (hi, lo) nano-Wh words; inf is no limit."""
    if math.isinf(capacity_kw):
        return UNLIMITED_HI, 0
    hi, lo = divmod(round(capacity_kw * window_s / 3.6 * NWH_PER_WH), LIMB)
    return hi, lo


def frozen_copy(a: FloatArray) -> FloatArray:
    """A read-only copy of ``a``."""
    c = a.copy()
    c.flags.writeable = False
    return c


class RegionState:
    """Per-region values, health, capacity and duals as the contiguous arrays the kernel reads."""

    def __init__(self, plan: Plan) -> None:
        topo = plan.topology
        R, H = plan.n_regions, VALUE_HISTORY
        self.plan = plan
        self.max_age_s = topo.objective.signal_max_age_s
        self.f: FloatArray = np.zeros((R, REG_F_COLS), dtype=np.float64)
        self.i: IntArray = np.zeros((R, REG_I_COLS), dtype=np.int64)
        self.val: FloatArray = np.zeros((2, R, H), dtype=np.float64)
        self.val_ts: FloatArray = np.zeros((2, R, H), dtype=np.float64)
        self.val_end: FloatArray = np.zeros((2, R, H), dtype=np.float64)
        self.val_n: IntArray = np.zeros((2, R), dtype=np.int64)
        self.val_dropped: IntArray = np.zeros((2, R), dtype=np.int64)
        self.status_ts: FloatArray = np.zeros(R, dtype=np.float64)
        self.cap_hi: IntArray = np.zeros(R, dtype=np.int64)
        self.cap_lo: IntArray = np.zeros(R, dtype=np.int64)
        #: kW per region; inf is no limit
        self.capacity_kw: FloatArray = np.array(
            [math.inf if r.capacity_kw is None else r.capacity_kw for r in topo.regions], dtype=np.float64
        )
        #: ts of the latest pue and average intensity per region (-1: none yet); average values (NaN: none)
        self.pue_ts: FloatArray = np.full(R, -1.0, dtype=np.float64)
        self.average_ts: FloatArray = np.full(R, -1.0, dtype=np.float64)
        self.average_gco2_per_kwh: FloatArray = np.full(R, np.nan, dtype=np.float64)
        #: signals applied (the placements' ``signals_version``) and statuses applied
        self.version = 0
        self.status_version = 0
        self._view: Regions | None = None
        #: the dual terms in use (``f[:, MU]``) as a read-only copy made when they were installed: every
        #: batch's ``router.scoring.Decisions`` holds it, so it must never change
        self.mu: FloatArray = frozen_copy(self.f[:, MU])
        for j, r in enumerate(topo.regions):
            self.f[j, PUE] = r.pue
            if r.price_usd_per_mwh is not None:
                self.f[j, STATIC_PRICE] = r.price_usd_per_mwh
                self.i[j, HAS_STATIC_PRICE] = 1
            if r.marginal_gco2_per_kwh is not None:
                self.f[j, STATIC_CARBON] = r.marginal_gco2_per_kwh
                self.i[j, HAS_STATIC_CARBON] = 1
            self.i[j, HEALTHY] = 1
            self.f[j, PRIOR_PRICE], self.f[j, PRIOR_CARBON], use_price, use_carbon = prior_columns(r)
            self.i[j, USE_PRIOR_PRICE], self.i[j, USE_PRIOR_CARBON] = use_price, use_carbon
        self.capacity_share = 1.0
        self._update_capacity()

    def kernel(self) -> Regions:
        """The kernel's view of the region state (built once: the arrays are changed in place, never
        replaced, so the same view stays valid and ``router.scoring`` checks it once)."""
        view = self._view
        if view is None:
            view = self._view = Regions(
                self.f,
                self.i,
                self.val,
                self.val_ts,
                self.val_end,
                self.val_n,
                self.val_dropped,
                self.cap_hi,
                self.cap_lo,
            )
        return view

    def _update_capacity(self) -> None:
        window_s = self.plan.topology.objective.capacity_window_s
        for j, kw in enumerate(self.capacity_kw.tolist()):
            self.cap_hi[j], self.cap_lo[j] = capacity_words(kw * self.capacity_share, window_s)

    def set_capacity_share(self, share: float) -> None:
        """Guard only ``share`` of every region's capacity window (0 < share <= 1).

        Each worker books only what it placed itself, so N workers each guarding the whole capacity could
        together place up to N times it in one window. A worker holding k of the request topic's P
        partitions guards k / P of it: the shares of all workers sum to at most 1, so the capacity
        constraint holds for the fleet (at the price of headroom a worker with a quiet partition leaves
        unused; the re-solve's duals steer the demand)."""
        if not 0.0 < share <= 1.0:
            raise ValueError(f"capacity share {share!r}; expected 0 < share <= 1")
        self.capacity_share = float(share)
        self._update_capacity()

    def apply_value(self, j: int, name: str, value: float, ts: float, valid_for_s: float | None) -> bool:
        """Add one value of region ``j`` seen at ``ts``; False (nothing changes) when it is older than every
        value of its kind kept (price, carbon) or than the latest one (pue, average intensity).

        ``name`` is a GridSignal value field; ``valid_for_s`` None means ``signal_max_age_s``.
        """
        v = _KIND.get(name)
        if v is not None:
            valid = valid_for_s if valid_for_s is not None else self.max_age_s
            return self._insert(v, j, value, ts, valid_end(ts, valid))
        if name == "pue":
            if ts < self.pue_ts[j]:
                return False
            self.f[j, PUE] = value
            self.pue_ts[j] = ts
            return True
        if name == "average_gco2_per_kwh":
            if ts < self.average_ts[j]:
                return False
            self.average_gco2_per_kwh[j] = value
            self.average_ts[j] = ts
            return True
        raise KeyError(f"unknown signal value {name!r}; expected one of {VALUE_FIELDS}")

    def _insert(self, v: int, j: int, value: float, ts: float, end: float) -> bool:
        """Insert into the value history of kind ``v``, region ``j``, keeping it sorted by ts."""
        n = int(self.val_n[v, j])
        stamps = self.val_ts[v, j, :n].tolist()
        k = n - 1
        while k >= 0 and stamps[k] > ts:
            k -= 1
        if k >= 0 and stamps[k] == ts:  # the same moment again: the later message wins
            self.val[v, j, k], self.val_end[v, j, k] = value, end
            return True
        pos = k + 1
        if n == VALUE_HISTORY:
            if pos == 0:
                return False  # older than every value kept
            for arr in (self.val, self.val_ts, self.val_end):
                arr[v, j, : pos - 1] = arr[v, j, 1:pos].copy()
            self.val_dropped[v, j] = 1
            pos -= 1
        else:
            for arr in (self.val, self.val_ts, self.val_end):
                arr[v, j, pos + 1 : n + 1] = arr[v, j, pos:n].copy()
            self.val_n[v, j] = n + 1
        self.val[v, j, pos], self.val_ts[v, j, pos], self.val_end[v, j, pos] = value, ts, end
        return True

    def apply_signal(self, sig: GridSignal) -> bool:
        """Apply one validated signal for a known region, value by value; False when no value it carries
        was kept (then nothing changes)."""
        j = self.plan.region_index[sig.region]
        applied = False
        for name in VALUE_FIELDS:
            value = getattr(sig, name)
            if value is not None:
                applied |= self.apply_value(j, name, value, sig.ts, sig.valid_for_s)
        if applied:
            self.version += 1
        return applied

    def apply_status(self, st: RegionStatus) -> bool:
        """Apply one validated status for a known region; False when it is older than the latest one."""
        j = self.plan.region_index[st.region]
        if st.ts < self.status_ts[j]:
            return False
        self.status_ts[j] = st.ts
        if st.healthy is not None:
            self.i[j, HEALTHY] = int(st.healthy)
        if st.capacity_kw is not None:
            self.capacity_kw[j] = st.capacity_kw
            self._update_capacity()
        self.status_version += 1
        return True

    def capacity_nwh(self) -> FloatArray:
        """Each region's guarded capacity per window in nano-Wh (inf: no limit), for display and tests."""
        hi = self.cap_hi.astype(np.float64)
        return np.where(self.cap_hi >= UNLIMITED_HI, np.inf, hi * LIMB + self.cap_lo.astype(np.float64))

    def latest(self, j: int, kind: int) -> tuple[float, float] | None:
        """(value, ts) of region ``j``'s latest signalled value of ``kind`` (PRICE, CARBON), or None."""
        n = int(self.val_n[kind, j])
        if n == 0:
            return None
        return float(self.val[kind, j, n - 1]), float(self.val_ts[kind, j, n - 1])

    def value_or_static(self, j: int, kind: int) -> float | None:
        """The latest signalled value of ``kind``, else the topology's constant, else None (display)."""
        got = self.latest(j, kind)
        if got is not None:
            return got[0]
        has, col = (HAS_STATIC_PRICE, STATIC_PRICE) if kind == PRICE else (HAS_STATIC_CARBON, STATIC_CARBON)
        return float(self.f[j, col]) if self.i[j, has] else None

    def signal_ages(self, now: float) -> FloatArray:
        """Per region, the age at ``now`` of the older of its latest signalled price and marginal carbon
        values (a topology constant never sent as a signal has no age); NaN when neither was signalled."""
        ages = np.full(self.f.shape[0], np.nan)
        for kind in (PRICE, CARBON):
            n = self.val_n[kind]
            has = n > 0
            last = self.val_ts[kind, np.arange(len(n)), np.maximum(n - 1, 0)]
            ages = np.where(has, np.fmax(ages, now - last), ages)
        return ages

    def set_duals(self, mu_usd_per_wh: FloatArray) -> None:
        """Install the capacity duals of the latest successful re-solve, times ``objective.dual_scale``.

        A binding region's dual makes the LP's marginal class exactly indifferent; applying slightly less
        than the dual breaks that tie toward filling the region up to its capacity guard.
        """
        self.f[:, MU] = mu_usd_per_wh * self.plan.topology.objective.dual_scale
        self.mu = frozen_copy(self.f[:, MU])


class CapacityWindows:
    """Per-region ring buffers of (ts, nano-Wh) placed in the sliding capacity window."""

    def __init__(self, n_regions: int, initial: int = 1024) -> None:
        self.ts: FloatArray = np.zeros((n_regions, initial), dtype=np.float64)
        self.e: IntArray = np.zeros((n_regions, initial), dtype=np.int64)
        self.head: IntArray = np.zeros(n_regions, dtype=np.int64)
        self.len: IntArray = np.zeros(n_regions, dtype=np.int64)
        self.sum_hi: IntArray = np.zeros(n_regions, dtype=np.int64)
        self.sum_lo: IntArray = np.zeros(n_regions, dtype=np.int64)
        #: the oldest entry's ts over all regions (a large sentinel when empty): eviction is O(1) until then
        self.next_expiry: FloatArray = np.full(1, NEVER, dtype=np.float64)
        self._view: Windows | None = None

    def kernel(self) -> Windows:
        """The kernel's view of the windows: one object until ``reserve`` replaces the buffers."""
        view = self._view
        if view is None:
            view = self._view = Windows(
                self.ts, self.e, self.head, self.len, self.sum_hi, self.sum_lo, self.next_expiry
            )
        return view

    def reserve(self, extra: int) -> None:
        """Make room so that ``extra`` more placements fit without overwriting live entries."""
        C = self.ts.shape[1]
        need = int(self.len.max(initial=0)) + extra
        if need <= C:
            return
        new_c = max(need, 2 * C)
        R = self.ts.shape[0]
        ts = np.zeros((R, new_c), dtype=np.float64)
        e = np.zeros((R, new_c), dtype=np.int64)
        for j in range(R):
            idx = (self.head[j] + np.arange(self.len[j])) % C
            ts[j, : self.len[j]] = self.ts[j, idx]
            e[j, : self.len[j]] = self.e[j, idx]
        self.ts, self.e = ts, e
        self._view = None
        self.head[:] = 0

    def used_wh(self) -> FloatArray:
        """IT energy currently inside each region's window, in Wh."""
        return (self.sum_hi.astype(np.float64) * LIMB + self.sum_lo.astype(np.float64)) / NWH_PER_WH
