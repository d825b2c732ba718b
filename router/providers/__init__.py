"""Signal providers: pure parsers of provider-native payloads into canonical GridSignals and GridForecasts.

One module per provider (``watttime``, ``electricitymaps``, ``entsoe``, ``csvreplay``) and ``common`` for the
shared result types, time parsing and bounds. No Kafka here: ``streams.adapters`` feeds them raw records.
"""

from __future__ import annotations

from router.problems import Problem
from router.providers.common import Parsed
from router.providers.csvreplay import parse_csv, parse_csv_series
from router.providers.electricitymaps import parse_electricitymaps
from router.providers.entsoe import parse_entsoe
from router.providers.watttime import parse_watttime

__all__ = [
    "Parsed",
    "Problem",
    "parse_csv",
    "parse_csv_series",
    "parse_electricitymaps",
    "parse_entsoe",
    "parse_watttime",
]
