"""The fault scenarios (faults/README.md), each bounded in time and on loopback only, by number.

``common`` holds what they share (result row, data, paced load generator, worker helpers); each scenario
module says what it does and what it checks: ``restart`` (1, 1c), ``group`` (2, 3), ``broker_restart`` (4),
``network`` (5), ``signals`` (6), ``resolve`` (7), ``inputs`` (8, 9, 9p).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable

from faults.scenarios.broker_restart import broker_restart
from faults.scenarios.common import (
    Ctx,
    Result,
    first_hour_signals,
    fresh_requests,
    fresh_settings,
    publish_signals,
    request_items,
    send,
    start_worker,
    wait_placed,
)
from faults.scenarios.group import scale_out_in, stall_past_poll_interval
from faults.scenarios.inputs import garbage_flood, overflow_poison, sent_twice
from faults.scenarios.network import network_faults
from faults.scenarios.resolve import resolve_fails
from faults.scenarios.restart import kill_restart, kill_restart_capacity
from faults.scenarios.signals import stale_signals

#: The helpers are re-exported: other tests build on them (tests/integration/test_security.py).
__all__ = [
    "QUICK",
    "SCENARIOS",
    "Ctx",
    "Result",
    "first_hour_signals",
    "fresh_requests",
    "fresh_settings",
    "publish_signals",
    "request_items",
    "run_scenario",
    "send",
    "start_worker",
    "wait_placed",
]

SCENARIOS: dict[str, Callable[[Ctx], Result]] = {
    "1": kill_restart,
    "1c": kill_restart_capacity,
    "2": scale_out_in,
    "3": stall_past_poll_interval,
    "4": broker_restart,
    "5": network_faults,
    "6": stale_signals,
    "7": resolve_fails,
    "8": sent_twice,
    "9": garbage_flood,
    "9p": overflow_poison,
}


#: The scenarios of ``--quick`` and of the quick tests in ``make test``.
QUICK = ("1", "6", "7", "8", "9", "9p")


def run_scenario(number: str, ctx: Ctx) -> Result:
    """Run one scenario; an exception becomes a failed result naming it (the runner goes on)."""
    started = time.monotonic()
    try:
        res = SCENARIOS[number](ctx)
    except Exception as exc:
        res = Result(number, SCENARIOS[number].__name__)
        res.violations.append(f"scenario crashed: {type(exc).__name__}: {str(exc)[:2000]}")
        res.details["traceback"] = traceback.format_exc()
    res.seconds = time.monotonic() - started
    return res
