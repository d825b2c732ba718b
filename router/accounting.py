"""Which carbon a number is, and the average-intensity (location-based) carbon of placements.

The router decides on **marginal** carbon (``marginal_gco2_per_kwh``: the emissions of the generator that
answers one more kWh, which is what moving load changes); every output that reports carbon says so with
``MARGINAL``. Grid signals may also carry an **average** intensity (``average_gco2_per_kwh``: the mix's
emissions per kWh, what location-based inventories use), kept for display only. The two can rank regions
differently, so ``compare`` and ``frontier`` report average-intensity totals beside the marginal ones when the
inputs carry average values (``AverageIntensity``), by the rule of ``average_carbon``.

Average values and PUE follow the router's rule for values applied on arrival (docs/model.md, "Time"): at a
request's time, a region's value is the one of its latest signal dated at or before it (a later message of
the same time wins), else none (PUE: the topology's).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from router.models import GridSignal
from router.placement import PlacementMessage
from router.topology import Topology

__all__ = ["AVERAGE", "MARGINAL", "AverageIntensity", "average_carbon"]

#: the accounting of every ``carbon_g`` the router reports, and of the average-intensity totals
MARGINAL = "marginal, location-based (marginal_gco2_per_kwh)"
AVERAGE = "average, location-based (average_gco2_per_kwh)"


class _Series:
    """One region's values of one kind in ``ts`` order; the latest at or before a time."""

    def __init__(self, points: list[tuple[float, int, float]]) -> None:
        points.sort(key=lambda p: (p[0], p[1]))
        self.ts = [p[0] for p in points]
        self.values = [p[2] for p in points]

    def at(self, t: float) -> float | None:
        k = bisect.bisect_right(self.ts, t)
        return self.values[k - 1] if k else None


class AverageIntensity:
    """Each region's average intensity (g/kWh) and PUE at a time, from the signals of a replay."""

    def __init__(self, topology: Topology, signals: Sequence[GridSignal]) -> None:
        avg: dict[str, list[tuple[float, int, float]]] = {r.id: [] for r in topology.regions}
        pue: dict[str, list[tuple[float, int, float]]] = {r.id: [] for r in topology.regions}
        for k, s in enumerate(signals):
            if s.region not in avg:
                continue
            if s.average_gco2_per_kwh is not None:
                avg[s.region].append((s.ts, k, s.average_gco2_per_kwh))
            if s.pue is not None:
                pue[s.region].append((s.ts, k, s.pue))
        self._avg = {r: _Series(v) for r, v in avg.items()}
        self._pue = {r: _Series(v) for r, v in pue.items()}
        self._pue_default = {r.id: r.pue for r in topology.regions}
        #: some region has an average value at some time
        self.any = any(v for v in avg.values())

    def average(self, region: str, t: float) -> float | None:
        """The average intensity in effect at ``t`` (None: no value yet)."""
        return self._avg[region].at(t)

    def pue(self, region: str, t: float) -> float:
        """The PUE in effect at ``t``."""
        got = self._pue[region].at(t)
        return self._pue_default[region] if got is None else got


def average_carbon(
    placements: Iterable[PlacementMessage], intensity: AverageIntensity
) -> tuple[list[float | None], list[float | None]]:
    """Per placed request, its average-intensity carbon (g) at its region, ``facility_wh * average / 1e3``,
    and at its home region, ``energy_wh * PUE_home * average_home / 1e3`` (None where a region has no
    average value at the request's time); for ``router.totals.Totals.add_average``."""
    at_region: list[float | None] = []
    at_home: list[float | None] = []
    for p in placements:
        region, facility = p["region"], p["facility_wh"]
        if p["status"] != "placed" or region is None or facility is None:
            continue
        t = p["event_ts"]
        a, b = intensity.average(region, t), intensity.average(p["home_region"], t)
        at_region.append(None if a is None else facility * a / 1e3)
        home_wh = p["energy_wh"] * intensity.pue(p["home_region"], t)
        at_home.append(None if b is None else home_wh * b / 1e3)
    return at_region, at_home
