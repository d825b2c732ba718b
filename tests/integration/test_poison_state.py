"""A batch the Kafka client cannot decode on a state topic (grid.signals) is skipped alone: the worker stays
up (faust's agents crashed it, and again on every restart), every decodable signal before and after it is
applied, the skip is dead-lettered once for the group, counted by each reader and shown on /healthz.

The undecodable batch is made as in tests/integration/test_poison.py: a v2 batch that claims snappy but
holds plain records, with a valid CRC, sent with a raw Produce request between two good batches.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from router.models import DeadLetter
from streams.settings import Settings
from streams.testing import WorkerProc, drain
from tests.integration.test_poison import _SNAPPY, _batch, _produce_raw
from tests.integration.test_worker import _scenario

pytestmark = pytest.mark.integration


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for lab, v in re.findall(rf"^{name}(?:{{([^}}]*)}})? ([0-9.e+-]+)$", text, flags=re.M):
        if all(f'{k}="{x}"' in lab for k, x in labels.items()):
            total += float(v)
    return total


def test_undecodable_signal_batch_is_skipped_and_the_signals_around_it_apply(
    settings: Settings, tmp_path: Path
) -> None:
    sig, _ = _scenario()
    by_region: dict[str, list[bytes]] = {}
    for s in sig:
        by_region.setdefault(s["region"], []).append(orjson.dumps(s))
    vals = [v for vs in by_region.values() for v in vs]
    n = len(vals)
    first, bad, last = vals[: n // 3], vals[n // 3 : n // 3 + 4], vals[n // 3 + 4 :]
    w = WorkerProc(settings, "w-poison-state", tmp_path)
    try:
        w.wait()
        _produce_raw(
            settings, settings.topic_signals, 0, [_batch(first), _batch(bad, lie_codec=_SNAPPY), _batch(last)]
        )
        health = w.wait(lambda h: h["skipped_batches"] >= 1, timeout_s=40)
        health = w.wait(lambda h: h["signals_version"] >= len(first) + len(last), timeout_s=40)
        w.wait(lambda h: h["skipped_batches"] >= 2, timeout_s=40)  # the state feed's and the intake's
        dead = drain(settings, settings.topic_dlq, 2, timeout_s=5)
        metrics = w.get("/metrics").decode()
    finally:
        assert w.stop() == 0
    assert health["ok"] is True
    assert health["stalled"] == []
    letters = [DeadLetter.model_validate(orjson.loads(m.value)) for m in dead]
    skips = [d for d in letters if d.field == "batch" and d.topic == settings.topic_signals]
    assert len(skips) == 1  # one dead letter for the group (the intake's), not one per reader
    assert (skips[0].partition, skips[0].offset, skips[0].last_offset) == (0, len(first), len(first) + 3)
    assert "DecompressionError" in skips[0].error
    assert _counter(metrics, "carbon_router_skipped_batches_total", reader="statefeed") == 1
    assert _counter(metrics, "carbon_router_skipped_batches_total", reader="intake") == 1
