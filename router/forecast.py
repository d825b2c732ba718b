"""The latest grid forecast per region, as the padded arrays the kernel reads for its forecast fallback.

When a region's live price or marginal carbon is stale for a request at time ``t``, the kernel may use the
value of that region's latest forecast instead: the point with the largest ``ts <= t``, when its step
covers ``t`` (``ts <= t < ts + step_s``), it carries that value, and ``0 <= t - generated_at <=
objective.forecast_horizon_s`` (0 turns the fallback off). A forecast replaces the region's forecast only
when its ``generated_at`` is not older (an older forecast never replaces a newer one). Live and replay
apply forecasts in event time (``generated_at``), so both make the same decisions.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from router.kernel.columns import FC_GENERATED_AT, FC_META_COLS, FC_STEP_S, FC_USABLE_END
from router.kernel.structs import Forecasts
from router.models import GridForecast
from router.plan import FloatArray, IntArray, Plan
from router.state import valid_end

__all__ = ["ForecastState"]


class ForecastState:
    """Per region: the latest forecast's points (``ts``, price, carbon, which values each point has)."""

    def __init__(self, plan: Plan, initial_points: int = 1) -> None:
        R = plan.n_regions
        self.plan = plan
        self.horizon_s = plan.topology.objective.forecast_horizon_s
        P = max(1, initial_points)
        #: point start times, padded past ``n[j]`` with zeros
        self.ts: FloatArray = np.zeros((R, P), dtype=np.float64)
        #: values: [0] price USD/MWh, [1] marginal gCO2/kWh
        self.val: FloatArray = np.zeros((2, R, P), dtype=np.float64)
        #: whether point k of region j carries value [0] price, [1] carbon
        self.has: npt.NDArray[np.bool_] = np.zeros((2, R, P), dtype=np.bool_)
        self.n: IntArray = np.zeros(R, dtype=np.int64)
        #: generated_at, step_s, usable_end (``usable_end == generated_at`` when the horizon is 0: never used)
        self.meta: FloatArray = np.zeros((R, FC_META_COLS), dtype=np.float64)
        self.version = 0
        self._view: Forecasts | None = None

    def apply(self, fc: GridForecast) -> bool:
        """Keep ``fc`` as its region's forecast; False when the region holds a newer one already."""
        j = self.plan.region_index[fc.region]
        if self.n[j] > 0 and fc.generated_at < self.meta[j, FC_GENERATED_AT]:
            return False
        n = len(fc.points)
        if n > self.ts.shape[1]:
            self._grow(n)
        self.ts[j, :] = 0.0
        self.val[:, j, :] = 0.0
        self.has[:, j, :] = False
        for k, p in enumerate(fc.points):
            self.ts[j, k] = p.ts
            if p.price_usd_per_mwh is not None:
                self.val[0, j, k] = p.price_usd_per_mwh
                self.has[0, j, k] = True
            if p.marginal_gco2_per_kwh is not None:
                self.val[1, j, k] = p.marginal_gco2_per_kwh
                self.has[1, j, k] = True
        self.n[j] = n
        self.meta[j, FC_GENERATED_AT] = fc.generated_at
        self.meta[j, FC_STEP_S] = fc.step_s
        h = self.horizon_s
        self.meta[j, FC_USABLE_END] = valid_end(fc.generated_at, h) if h > 0 else fc.generated_at
        self.version += 1
        return True

    def _grow(self, points: int) -> None:
        R, P = self.ts.shape
        new_p = max(points, 2 * P)
        ts = np.zeros((R, new_p), dtype=np.float64)
        val = np.zeros((2, R, new_p), dtype=np.float64)
        has = np.zeros((2, R, new_p), dtype=np.bool_)
        ts[:, :P], val[:, :, :P], has[:, :, :P] = self.ts, self.val, self.has
        self.ts, self.val, self.has = ts, val, has
        self._view = None

    def kernel(self) -> Forecasts:
        """The kernel's view of the forecasts: one object until ``_grow`` replaces the arrays."""
        view = self._view
        if view is None:
            view = self._view = Forecasts(self.ts, self.val, self.has, self.n, self.meta)
        return view
