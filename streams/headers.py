"""Which request headers travel on: W3C trace context and a configured list, onto placements and dead letters.

A request's ``traceparent`` and ``tracestate`` (always) and the headers named in
``CARBON_ROUTER_FORWARD_HEADERS`` are copied, as received (name and bytes), onto the Kafka headers of the
request's placement and of its dead letter, so a trace runs from the gateway through the router to the
scheduler. Names are compared without case; every other header is dropped. A record without headers (the
common case) costs one truth test and an empty list.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Headers", "forwarded"]

#: Kafka headers as aiokafka writes them: a list (its compiled batch builder takes nothing else) of
#: (name, value) pairs, the value may be None.
Headers = list[tuple[str, bytes | None]]


def forwarded(headers: Iterable[tuple[str, bytes | None]] | None, names: frozenset[str]) -> Headers:
    """The headers of ``headers`` whose lower-cased name is in ``names``, in their order (empty when none)."""
    if not headers:
        return []
    return [(k, v) for k, v in headers if k.lower() in names]
