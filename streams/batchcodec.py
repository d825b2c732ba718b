"""A batch of request records decoded at once: the kernel's columns of every valid one, the problem of
every other.

Each record is parsed with ``orjson`` (one call per record: a joined parse of the batch could not tell
which record a value came from when a record is not one JSON value), then ``router.batchrow.batch_rows``
checks and converts the batch field by field. A record it declines (too large, not JSON, or anything that
``router.fastrow.fast_request_row`` would decline) takes the per-record path,
``streams.codec.decode_checked_request``, unchanged: it accepts the record (its row joins the batch) or
returns the ``Problem`` that becomes the record's dead letter. So what a batch decides and dead-letters,
and why, is what the per-record path gives (tests/streams/test_batchcodec.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import structlog

from router.batchrow import BatchRows, batch_rows
from router.bounds import MAX_TS
from router.plan import Plan, RequestArrays, RequestIds, Row
from router.problems import Problem
from streams.codec import Clock, decode_checked_request

__all__ = ["CheckedBatch", "decode_checked_batch", "parse_records"]

log = structlog.get_logger("carbon_router.codec")

#: the per-record path of one record, by its index in the batch
Check = Callable[[int], tuple[RequestIds, Row] | Problem]


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """The accepted records as kernel columns (input order), their indices, and the problem of each of
    the others (input order)."""

    batch: RequestArrays
    kept: list[int]
    problems: list[tuple[int, Problem]]


def parse_records(raws: Sequence[bytes | None], max_bytes: int) -> list[Any]:
    """Each record's JSON value, or None where it is missing, larger than ``max_bytes`` or not JSON (the
    per-record path says why). Each record is parsed once, also in a batch that holds bad ones."""
    if None in raws or max(map(len, raws), default=0) > max_bytes:  # type: ignore[arg-type]
        return [_parse(raw, max_bytes) for raw in raws]
    out: list[Any] = []
    rest = iter(raws)
    while len(out) < len(raws):
        try:
            out.extend(map(orjson.loads, rest))  # type: ignore[arg-type]  # keeps what it parsed before a bad one
        except orjson.JSONDecodeError:
            out.append(None)  # the record that failed, already taken from ``rest``
    return out


def _parse(raw: bytes | None, max_bytes: int) -> Any:
    if raw is None or len(raw) > max_bytes:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def decode_checked_batch(
    raws: Sequence[bytes | None],
    plan: Plan,
    max_bytes: int,
    arrivals: Sequence[float],
    *,
    clock: Clock | None = None,
    allow_extra: bool = False,
    check: Check | None = None,
) -> CheckedBatch:
    """``decode_checked_request`` of every record (``raws[k]`` arrived at ``arrivals[k]``), the batch at
    once: the records ``router.batchrow`` declines take ``check`` (default: ``decode_checked_request``
    with the same arguments), which may accept them too."""
    arrival = np.asarray(arrivals, dtype=np.float64)
    if clock is not None:
        arrival = np.minimum(arrival, clock.now)
    try:
        rows = batch_rows(
            plan,
            parse_records(raws, max_bytes),
            arrival,
            MAX_TS if clock is None else clock.latest,
            allow_extra,
        )
    except Exception as exc:  # a batch the columns cannot take: every record takes the per-record path
        log.warning("request_batch_check_crashed", error=repr(exc)[:200], records=len(raws))
        rows = BatchRows.declining(plan, len(raws))

    def one(k: int) -> tuple[RequestIds, Row] | Problem:
        return decode_checked_request(
            raws[k], plan, max_bytes, arrivals[k], clock=clock, allow_extra=allow_extra
        )

    problems: list[tuple[int, Problem]] = []
    for k in rows.declined:
        got = (check or one)(k)
        if isinstance(got, Problem):
            problems.append((k, got))
        else:
            rows.put(k, *got)
    kept = rows.accepted()
    return CheckedBatch(rows.arrays(kept), kept, problems)
