"""The RTT a topology assumes where its file gives none (docs/model.md; router/topology.py ``Topology.rtt``).

A service node to its own home region: ``INTRA_REGION_RTT_MS``. Any other pair: a fixed overhead plus the
round trip in fibre (~200 km/ms) over a path 1.5x the great-circle distance.
"""

from __future__ import annotations

import math

__all__ = ["INTRA_REGION_RTT_MS", "estimate_rtt_ms"]

#: RTT assumed between a service node and its own home region when the file gives none.
INTRA_REGION_RTT_MS = 2.0
_RTT_BASE_MS = 5.0
_RTT_MS_PER_KM = 2.0 * 1.5 / 200.0


def estimate_rtt_ms(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """RTT estimated from great-circle distance (documented distance model)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    km = 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))
    return _RTT_BASE_MS + _RTT_MS_PER_KM * km
