"""How a worker judges a ``router.shares`` record it cannot use (``streams.leadership.judge``), no broker."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from streams.leadership import Leadership, judge

REGIONS = ["aws:eu-central-1", "azure:francecentral"]


def _body(**changes: Any) -> bytes:
    body = {
        "version": 1,
        "ts": time.time(),
        "ok": True,
        "status": "Optimal",
        "regions": REGIONS,
        "mu_usd_per_wh": dict.fromkeys(REGIONS, 0.0),
        "groups": [],
        "shares": [],
        "unserved_share": [],
        "solve_s": 0.01,
        "leader": "w-1",
        "epoch": 1,
        "seq": 1,
        "mac": "0" * 64,
    }
    return orjson.dumps({**body, **changes})


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        (_body(**{"--storage-engine": None}), "['--storage-engine']", "unknown key"),
        (_body(leadr="w-1"), "leadr", "did you mean 'leader'"),
        (_body(mu_usd_per_wh={"aws:eu-central-1": 2000.0}), "mu_usd_per_wh['aws:eu-central-1']", "<= 1000"),
        (_body(version=0).replace(b'"version":0', b'"version":18446744073709551616'), "version", "<= "),
        (_body(unserved_share=[0.5, 2.0]), "unserved_share[2]", "<= 1"),
        (b"{not json", None, "JSON"),
    ],
)
def test_an_invalid_shares_record_is_refused_in_the_words_of_every_other_message(
    value: bytes, field: str | None, words: str
) -> None:
    """An invalid shares record names its field as every dead letter does (a key that is not a plain word
    quoted, list items from 1, the closest known key for an unknown one) and says what was expected, not
    pydantic's text."""
    verdict = judge(value, Leadership("w-1"))
    assert verdict.outcome == "invalid"
    assert verdict.field == field
    assert verdict.problem is not None
    assert words in verdict.problem
    assert "validation error for" not in verdict.problem
    assert "[type=" not in verdict.problem


def test_a_forged_epoch_cannot_push_the_known_epoch_to_the_cap() -> None:
    """One shares record moves the epoch the next term follows by at most EPOCH_STEP: the group's own
    history (one epoch per term, record after record) is followed, a forged 2**31 - 1 is not."""
    from router.bounds import MAX_EPOCH
    from streams.leadership import EPOCH_STEP

    lead = Leadership("w-1")
    for epoch in (1, 1, 2, 3, 3, 4, 7):  # the history a restarted group reads, a term without shares skipped
        lead.saw_epoch(epoch)
    assert lead.known_epoch == 7
    lead.saw_epoch(MAX_EPOCH)
    assert lead.known_epoch == 7 + EPOCH_STEP
    assert lead.known_epoch < MAX_EPOCH
    lead.saw_epoch(5)  # an old record never lowers it
    assert lead.known_epoch == 7 + EPOCH_STEP
