"""Two live workers on the tansu broker hold tenants to their carbon budgets as a fleet."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from router.commands import bundled
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce
from tests.integration.test_worker import _scenario

pytestmark = pytest.mark.integration

#: budgets far below what these tenants place unbudgeted in the scenario (tens of grams), over one day
BUDGETS = {"tenant-01": 12.0, "tenant-02": 6.0}


def _topology(tmp_path: Path) -> Path:
    text = bundled("default_topology.toml").read_text(encoding="utf-8")
    for tenant, grams in BUDGETS.items():
        text += f'\n[[tenants]]\nid = "{tenant}"\ncarbon_budget_g = {grams}\nwindow_s = 86400\n'
    path = tmp_path / "tenants.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_two_workers_keep_every_tenant_within_its_budget(settings: Settings, tmp_path: Path) -> None:
    """Each worker guards its partitions' share of every budget, so the fleet's placed carbon per budgeted
    tenant stays within the budget while the budgets bind (``tenant_budget`` rejections); both workers
    decide; only configured tenants have metric series."""
    sig, req = _scenario()
    topo = str(_topology(tmp_path))
    a = WorkerProc(settings, "w-ten-a", tmp_path, topology=topo)
    b = WorkerProc(settings, "w-ten-b", tmp_path, topology=topo)
    try:
        a.wait()
        b.wait()
        produce(settings, settings.topic_signals, [(s["region"].encode(), orjson.dumps(s)) for s in sig])
        for w in (a, b):
            w.wait(lambda h: h["signals_version"] >= len(sig) and h["partitions"] > 0, timeout_s=90)
        assert a.health()["partitions"] + b.health()["partitions"] == settings.request_partitions
        produce(settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in req])
        placed = [orjson.loads(m.value) for m in drain(settings, settings.topic_placements, len(req))]
        metrics = [w.get("/metrics").decode() for w in (a, b)]
        decided = [w.health()["batches"] for w in (a, b)]
    finally:
        assert a.stop() == 0
        assert b.stop() == 0
    assert len({p["request_id"] for p in placed}) == len(req)
    carbon: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for p in placed:
        if p["status"] == "placed" and p.get("tenant") in BUDGETS:
            carbon[p["tenant"]] += p["carbon_g"]
            count[p["tenant"]] += 1
    for tenant, grams in BUDGETS.items():
        assert 0 < carbon[tenant] <= grams + 1e-6 * count[tenant], (tenant, carbon[tenant])
    rejected = [p for p in placed if p["reason"] == "tenant_budget"]
    assert rejected
    assert {p["tenant"] for p in rejected} <= set(BUDGETS)
    assert all(n > 0 for n in decided)
    for text in metrics:
        assert 'carbon_router_tenant_budget_left_grams{tenant="tenant-01"}' in text
        assert 'tenant="tenant-05"' not in text
