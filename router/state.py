"""Live region state in event time: grid signals, status, capacity windows and the capacity duals.

Price and marginal carbon each carry their own timestamp and validity (real providers send them
separately: hourly day-ahead prices, 5-minute marginal carbon). A value is applied only if it is not older
than the region's latest value of the same kind (a late, older value never overwrites a newer one);
fields a signal leaves out keep their last value. ``pue`` and ``average_gco2_per_kwh`` follow the same
late-value rule but have no freshness: pue is scored with its last value (as before), and the average
intensity is kept for display only and never changes the marginal value or its freshness. Whether a value
is fresh is decided per request inside the kernel, from its ``*_TS`` and ``*_VALID_S`` columns.

``SIG_TS`` / ``VALID_S`` / ``HAS_SIGNAL`` keep the region's latest price, carbon or pue signal (its ts and
validity) for display and metrics; the kernel no longer reads them.
"""

from __future__ import annotations

import math

import numpy as np

from router.models import GridSignal, RegionStatus
from router.plan import NWH_PER_WH, FloatArray, IntArray, Plan

__all__ = [
    "HAS_MCI",
    "HAS_MCI_TS",
    "HAS_PRICE",
    "HAS_PRICE_TS",
    "HAS_SIGNAL",
    "HEALTHY",
    "MCI",
    "MCI_END",
    "MCI_TS",
    "MCI_VALID_S",
    "MU",
    "PRICE",
    "PRICE_END",
    "PRICE_TS",
    "PRICE_VALID_S",
    "PUE",
    "REG_F_COLS",
    "REG_I_COLS",
    "SIG_TS",
    "VALID_S",
    "VALUE_FIELDS",
    "CapacityWindows",
    "RegionState",
    "valid_end",
]

# columns of RegionState.f and RegionState.i (the kernel's reg_f / reg_i)
PRICE, MCI, PUE, SIG_TS, VALID_S, MU = range(6)
PRICE_TS, PRICE_VALID_S, MCI_TS, MCI_VALID_S, PRICE_END, MCI_END = range(6, 12)
HAS_PRICE, HAS_MCI, HAS_SIGNAL, HEALTHY, HAS_PRICE_TS, HAS_MCI_TS = range(6)
REG_F_COLS, REG_I_COLS = 12, 6

#: signal field -> (value column, ts column, validity column, end column, has-value column, has-ts column)
_TIMED = {
    "price_usd_per_mwh": (PRICE, PRICE_TS, PRICE_VALID_S, PRICE_END, HAS_PRICE, HAS_PRICE_TS),
    "marginal_gco2_per_kwh": (MCI, MCI_TS, MCI_VALID_S, MCI_END, HAS_MCI, HAS_MCI_TS),
}


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


#: every field a signal may carry, in the order they are applied
VALUE_FIELDS = ("price_usd_per_mwh", "marginal_gco2_per_kwh", "pue", "average_gco2_per_kwh")


class RegionState:
    """Per-region signal values and health as contiguous arrays the kernel reads directly."""

    def __init__(self, plan: Plan) -> None:
        topo = plan.topology
        R = plan.n_regions
        self.plan = plan
        self.max_age_s = topo.objective.signal_max_age_s
        self.f: FloatArray = np.zeros((R, REG_F_COLS), dtype=np.float64)
        self.i: IntArray = np.zeros((R, REG_I_COLS), dtype=np.int64)
        self.status_ts: FloatArray = np.zeros(R, dtype=np.float64)
        self.cap_nwh: IntArray = np.zeros(R, dtype=np.int64)
        self.capacity_kw: FloatArray = np.array([r.capacity_kw for r in topo.regions], dtype=np.float64)
        #: ts of the latest pue and average intensity per region (-1: none yet); average values (NaN: none)
        self.pue_ts: FloatArray = np.full(R, -1.0, dtype=np.float64)
        self.average_ts: FloatArray = np.full(R, -1.0, dtype=np.float64)
        self.average_gco2_per_kwh: FloatArray = np.full(R, np.nan, dtype=np.float64)
        self.version = 0
        self.status_version = 0
        for j, r in enumerate(topo.regions):
            self.f[j, PUE] = r.pue
            self.f[j, VALID_S] = self.f[j, PRICE_VALID_S] = self.f[j, MCI_VALID_S] = self.max_age_s
            if r.price_usd_per_mwh is not None:
                self.f[j, PRICE] = r.price_usd_per_mwh
                self.i[j, HAS_PRICE] = 1
            if r.marginal_gco2_per_kwh is not None:
                self.f[j, MCI] = r.marginal_gco2_per_kwh
                self.i[j, HAS_MCI] = 1
            self.i[j, HEALTHY] = 1
        self.capacity_share = 1.0
        self._update_capacity()

    def _update_capacity(self) -> None:
        window_s = self.plan.topology.objective.capacity_window_s
        wh = self.capacity_kw * self.capacity_share * window_s / 3.6
        self.cap_nwh = np.round(wh * NWH_PER_WH).astype(np.int64)

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
        """Set one value of region ``j`` seen at ``ts``; False (nothing changes) when an equal kind is newer.

        ``name`` is a GridSignal value field; ``valid_for_s`` None means ``signal_max_age_s``.
        """
        timed = _TIMED.get(name)
        if timed is not None:
            col, ts_col, valid_col, end_col, has_col, has_ts_col = timed
            if self.i[j, has_ts_col] and ts < self.f[j, ts_col]:
                return False
            valid = valid_for_s if valid_for_s is not None else self.max_age_s
            self.f[j, col] = value
            self.f[j, ts_col] = ts
            self.f[j, valid_col] = valid
            self.f[j, end_col] = valid_end(ts, valid)
            self.i[j, has_col] = 1
            self.i[j, has_ts_col] = 1
        elif name == "pue":
            if ts < self.pue_ts[j]:
                return False
            self.f[j, PUE] = value
            self.pue_ts[j] = ts
        elif name == "average_gco2_per_kwh":
            if ts < self.average_ts[j]:
                return False
            self.average_gco2_per_kwh[j] = value
            self.average_ts[j] = ts
            return True  # display only: not a signal the kernel scores with
        else:
            raise KeyError(f"unknown signal value {name!r}; expected one of {VALUE_FIELDS}")
        if not self.i[j, HAS_SIGNAL] or ts >= self.f[j, SIG_TS]:
            self.f[j, SIG_TS] = ts
            self.f[j, VALID_S] = valid_for_s if valid_for_s is not None else self.max_age_s
            self.i[j, HAS_SIGNAL] = 1
        return True

    def apply_signal(self, sig: GridSignal) -> bool:
        """Apply one validated signal for a known region, value by value; False when every value it
        carries is older than the region's latest value of that kind (then nothing changes)."""
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

    def signal_ages(self, now: float) -> FloatArray:
        """Per region, the age at ``now`` of the older of its signalled price and marginal carbon values
        (a topology constant never sent as a signal has no age); NaN when neither was ever signalled."""
        ages = np.full(self.f.shape[0], np.nan)
        for ts_col, has_col in ((PRICE_TS, HAS_PRICE_TS), (MCI_TS, HAS_MCI_TS)):
            has = self.i[:, has_col] != 0
            age = now - self.f[:, ts_col]
            ages = np.where(has, np.fmax(ages, age), ages)
        return ages

    def set_duals(self, mu_usd_per_wh: FloatArray) -> None:
        """Install the capacity duals of the latest successful re-solve, times ``objective.dual_scale``.

        A binding region's dual makes the LP's marginal class exactly indifferent; applying slightly less
        than the dual breaks that tie toward filling the region up to its capacity guard.
        """
        self.f[:, MU] = mu_usd_per_wh * self.plan.topology.objective.dual_scale


class CapacityWindows:
    """Per-region ring buffers of (ts, nano-Wh) placed in the sliding capacity window."""

    def __init__(self, n_regions: int, initial: int = 1024) -> None:
        self.ts: FloatArray = np.zeros((n_regions, initial), dtype=np.float64)
        self.e: IntArray = np.zeros((n_regions, initial), dtype=np.int64)
        self.head: IntArray = np.zeros(n_regions, dtype=np.int64)
        self.len: IntArray = np.zeros(n_regions, dtype=np.int64)
        self.sum: IntArray = np.zeros(n_regions, dtype=np.int64)
        #: the oldest entry's ts over all regions (a large sentinel when empty): eviction is O(1) until then
        self.next_expiry: FloatArray = np.full(1, 1e300, dtype=np.float64)

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
        self.head[:] = 0

    def used_wh(self) -> FloatArray:
        """IT energy currently inside each region's window, in Wh."""
        return self.sum.astype(np.float64) / NWH_PER_WH
