"""Live region state in event time: grid signals, status, capacity windows and the capacity duals.

A signal is applied only if it is not older than the region's latest one (a late, older signal never
overwrites a newer one). Fields a signal leaves out keep their last value. Freshness itself is decided per
request inside the kernel, from ``sig_ts`` and ``valid_s``.
"""

from __future__ import annotations

import numpy as np

from router.models import GridSignal, RegionStatus
from router.plan import NWH_PER_WH, FloatArray, IntArray, Plan

__all__ = ["CapacityWindows", "RegionState"]

# columns of RegionState.f and RegionState.i (the kernel's reg_f / reg_i)
PRICE, MCI, PUE, SIG_TS, VALID_S, MU = range(6)
HAS_PRICE, HAS_MCI, HAS_SIGNAL, HEALTHY = range(4)


class RegionState:
    """Per-region signal values and health as contiguous arrays the kernel reads directly."""

    def __init__(self, plan: Plan) -> None:
        topo = plan.topology
        R = plan.n_regions
        self.plan = plan
        self.max_age_s = topo.objective.signal_max_age_s
        self.f: FloatArray = np.zeros((R, 6), dtype=np.float64)
        self.i: IntArray = np.zeros((R, 4), dtype=np.int64)
        self.status_ts: FloatArray = np.zeros(R, dtype=np.float64)
        self.cap_nwh: IntArray = np.zeros(R, dtype=np.int64)
        self.capacity_kw: FloatArray = np.array([r.capacity_kw for r in topo.regions], dtype=np.float64)
        self.version = 0
        self.status_version = 0
        for j, r in enumerate(topo.regions):
            self.f[j, PUE] = r.pue
            self.f[j, VALID_S] = self.max_age_s
            if r.price_usd_per_mwh is not None:
                self.f[j, PRICE] = r.price_usd_per_mwh
                self.i[j, HAS_PRICE] = 1
            if r.marginal_gco2_per_kwh is not None:
                self.f[j, MCI] = r.marginal_gco2_per_kwh
                self.i[j, HAS_MCI] = 1
            self.i[j, HEALTHY] = 1
        self._update_capacity()

    def _update_capacity(self) -> None:
        window_s = self.plan.topology.objective.capacity_window_s
        wh = self.capacity_kw * window_s / 3.6
        self.cap_nwh = np.round(wh * NWH_PER_WH).astype(np.int64)

    def apply_signal(self, sig: GridSignal) -> bool:
        """Apply one validated signal for a known region; False when it is older than the latest one."""
        j = self.plan.region_index[sig.region]
        if self.i[j, HAS_SIGNAL] and sig.ts < self.f[j, SIG_TS]:
            return False
        if sig.price_usd_per_mwh is not None:
            self.f[j, PRICE] = sig.price_usd_per_mwh
            self.i[j, HAS_PRICE] = 1
        if sig.marginal_gco2_per_kwh is not None:
            self.f[j, MCI] = sig.marginal_gco2_per_kwh
            self.i[j, HAS_MCI] = 1
        if sig.pue is not None:
            self.f[j, PUE] = sig.pue
        self.f[j, SIG_TS] = sig.ts
        self.f[j, VALID_S] = sig.valid_for_s if sig.valid_for_s is not None else self.max_age_s
        self.i[j, HAS_SIGNAL] = 1
        self.version += 1
        return True

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
