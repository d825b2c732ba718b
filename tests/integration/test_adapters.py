"""Provider adapters in a live worker on a real tansu broker: raw payloads in, canonical signals,
forecasts and dead letters out, and placements priced with the WattTime-derived marginal carbon."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from router.models import DeadLetter, GridForecast, GridSignal, Placement
from router.topology import load_topology
from streams.settings import Settings
from streams.testing import WorkerProc, drain, produce

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parents[1] / "fixtures" / "providers"
LB = 0.45359237


def _json(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def _counter(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for lab, value in re.findall(rf"^{name}{{([^}}]*)}} ([0-9.e+-]+)$", text, flags=re.M):
        if all(f'{k}="{v}"' in lab for k, v in labels.items()):
            total += float(value)
    return total


def _settled(w: WorkerProc, at_least: int, quiet_s: float = 1.5, timeout_s: float = 60.0) -> None:
    """Wait until the worker's signals_version is at least ``at_least`` and unchanged for ``quiet_s``."""
    deadline = time.time() + timeout_s
    last, since = -1, time.time()
    while time.time() < deadline:
        v = int(w.health()["signals_version"])
        if v != last:
            last, since = v, time.time()
        elif v >= at_least and time.time() - since >= quiet_s:
            return
        time.sleep(0.1)
    raise AssertionError(f"signals_version {last} did not settle at >= {at_least}")


def _bad_records() -> dict[str, list[tuple[bytes | None, bytes]]]:
    wt = _json("watttime_caiso_north_historical.json")
    fc = _json("watttime_caiso_north_forecasts.json")[0]
    em = _json("electricitymaps_latest.json")[0]
    doc = (FIXTURES / "entsoe_a44_fr_nl_be_2024-04-13.xml").read_bytes()
    return {
        "watttime": [
            (b"CAISO_NORTH", orjson.dumps({**wt, "meta": {**wt["meta"], "units": "kg_co2_per_mwh"}})),
            (b"PJM_DC", orjson.dumps({**wt, "meta": {**wt["meta"], "region": "PJM_DC"}})),
            (
                b"CAISO_NORTH",
                orjson.dumps({**fc, "meta": {**fc["meta"], "generated_at": "2100-01-01T00:00:00Z"}}),
            ),
            (None, b"not json"),
        ],
        "electricitymaps": [
            (b"FR", orjson.dumps({k: v for k, v in em.items() if k != "isEstimated"})),
            (b"XX", orjson.dumps({**em, "zone": "XX"})),
        ],
        "entsoe": [
            (None, b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><d>&e;</d>'),
            (None, doc.replace(b"10YFR-RTE------C", b"10YAT-APG------L")),
        ],
    }


def test_raw_provider_payloads_become_signals_forecasts_and_dead_letters(
    settings: Settings, tmp_path: Path
) -> None:
    """Real-valued WattTime, Electricity Maps and ENTSO-E payloads become canonical signals and forecasts,
    bad ones are dead-lettered naming the field, and a pinned request is priced with WattTime's last MOER."""
    wt = _json("watttime_caiso_north_historical.json")
    forecasts = _json("watttime_caiso_north_forecasts.json")
    em = _json("electricitymaps_latest.json")
    doc = (FIXTURES / "entsoe_a44_fr_nl_be_2024-04-13.xml").read_bytes()
    bad = _bad_records()
    # the bundled N. California region has no price, so it is never valued; give it the PJM price of
    # aws:us-east-1 (configuration for this test only) so that a pinned request can be placed there
    topo = load_topology()
    regions = tuple(
        r.model_copy(update={"price_usd_per_mwh": 31.08}) if r.id == "aws:us-west-1" else r
        for r in topo.regions
    )
    path = tmp_path / "topology.json"
    path.write_bytes(orjson.dumps(topo.model_copy(update={"regions": regions}).model_dump()))
    w = WorkerProc(settings, "w-adapt", tmp_path, topology=path)
    try:
        w.wait()
        produce(
            settings,
            settings.topic_raw_watttime,
            [(b"CAISO_NORTH", orjson.dumps(wt))]
            + [(b"CAISO_NORTH", orjson.dumps(f)) for f in forecasts]
            + bad["watttime"],
        )
        produce(
            settings,
            settings.topic_raw_electricitymaps,
            [(e["zone"].encode(), orjson.dumps(e)) for e in em] + bad["electricitymaps"],
        )
        produce(settings, settings.topic_raw_entsoe, [(None, doc)] + bad["entsoe"])
        n_signals = 24 + len(em) + 3 * 72
        signals = drain(settings, settings.topic_signals, n_signals, timeout_s=90)
        fcs = drain(settings, settings.topic_forecasts, len(forecasts), timeout_s=30)
        n_bad = sum(len(v) for v in bad.values())
        dead = drain(settings, settings.topic_dlq, n_bad, timeout_s=30)
        # every signal applied: the count settles between 241 and 243 (an Electricity Maps signal older than
        # its region's latest ENTSO-E price is skipped, the one for DE always applies)
        _settled(w, 24 + 3 * 72 + 1)
        last = wt["data"][-1]
        ts = 1686182400.0 + 23 * 300 + 60  # one minute into the last WattTime step (2023-06-08T01:55Z)
        req = [
            {
                "request_id": f"pin-{k}",
                "origin": "fe-ashburn",
                "latency_budget_ms": 1000,
                "energy_wh": 2.0 + k,
                "state_region": "aws:us-west-1",
                "state_pinned": True,
                "ts": ts + k,
            }
            for k in range(3)
        ]
        produce(settings, settings.topic_requests, [(r["request_id"].encode(), orjson.dumps(r)) for r in req])
        placed = [orjson.loads(m.value) for m in drain(settings, settings.topic_placements, len(req))]
        metrics = w.get("/metrics").decode()
    finally:
        assert w.stop() == 0

    sig = [GridSignal.model_validate(orjson.loads(m.value)) for m in signals]
    assert len(sig) == n_signals
    assert all(m.key == s.region.encode() for m, s in zip(signals, sig, strict=True))
    by_source: dict[str | None, list[GridSignal]] = {}
    for s in sig:
        by_source.setdefault(s.source, []).append(s)
    wts = sorted(by_source["watttime"], key=lambda s: s.ts)
    assert [s.marginal_gco2_per_kwh for s in wts] == pytest.approx(
        [p["value"] * LB for p in wt["data"]], rel=1e-12
    )
    assert wts[0].marginal_gco2_per_kwh == pytest.approx(425.01605069, abs=1e-8)  # the published g/kWh
    assert all(s.region == "aws:us-west-1" and s.valid_for_s == 300.0 for s in wts)
    ems = by_source["electricitymaps"]
    assert len(ems) == 3
    assert all(s.marginal_gco2_per_kwh is None and s.average_gco2_per_kwh for s in ems)
    ents = by_source["entsoe"]
    assert len(ents) == 216
    assert min(s.price_usd_per_mwh or 0.0 for s in ents) < 0  # negative prices kept

    got_fc = [GridForecast.model_validate(orjson.loads(m.value)) for m in fcs]
    assert sorted(f.generated_at for f in got_fc) == [1686182400.0, 1686204000.0, 1686225600.0]
    assert all(f.region == "aws:us-west-1" and len(f.points) == 13 for f in got_fc)

    letters = [DeadLetter.model_validate(orjson.loads(m.value)) for m in dead]
    assert len(letters) == n_bad
    fields = {(x.topic, x.field) for x in letters}
    assert {
        (settings.topic_raw_watttime, "meta.units"),
        (settings.topic_raw_watttime, "meta.region"),
        (settings.topic_raw_watttime, "meta.generated_at"),
        (settings.topic_raw_electricitymaps, "isEstimated"),
        (settings.topic_raw_electricitymaps, "zone"),
        (settings.topic_raw_entsoe, "TimeSeries[0].in_Domain.mRID"),
    } <= fields
    assert any("DOCTYPE" in x.error for x in letters)
    assert all(x.error for x in letters)

    assert len(placed) == len(req)
    g_last = last["value"] * LB
    for p in placed:
        Placement.model_validate(p)
        assert p["status"] == "placed", (p["reason"], p["removed"])
        assert p["region"] == "aws:us-west-1", (p["reason"], p["removed"])
        assert p["carbon_g"] == pytest.approx(p["facility_wh"] * g_last / 1e3, rel=1e-9)
        assert p["carbon_g"] != pytest.approx(p["facility_wh"] * 416.0 / 1e3)  # not the topology default

    assert (
        _counter(metrics, "carbon_router_provider_records_total", provider="watttime", outcome="converted")
        == 4
    )
    assert (
        _counter(metrics, "carbon_router_provider_records_total", provider="entsoe", outcome="converted") == 1
    )
    assert _counter(metrics, "carbon_router_provider_records_total", outcome="rejected") == n_bad
    assert _counter(metrics, "carbon_router_provider_records_total", outcome="failed") == 0


def _release_doc() -> tuple[int, bytes]:
    """An A44 document of two 15-minute steps (real FR prices) starting a few seconds from now."""
    start = int(time.time()) + 8  # the worker converts the document well before its first step starts
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    doc = f"""<?xml version="1.0" encoding="UTF-8"?>
<Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">
  <type>A44</type><createdDateTime>{iso(start - 60)}</createdDateTime>
  <TimeSeries><in_Domain.mRID codingScheme="A01">10YFR-RTE------C</in_Domain.mRID>
    <currency_Unit.name>EUR</currency_Unit.name><price_Measure_Unit.name>MWH</price_Measure_Unit.name>
    <curveType>A03</curveType>
    <Period><timeInterval><start>{iso(start)}</start><end>{iso(start + 1800)}</end></timeInterval>
      <resolution>PT15M</resolution>
      <Point><position>1</position><price.amount>24.15</price.amount></Point>
      <Point><position>2</position><price.amount>17.73</price.amount></Point>
    </Period></TimeSeries></Publication_MarketDocument>""".encode()
    return start, doc


def test_cleared_day_ahead_prices_are_released_when_their_step_starts(
    settings: Settings, tmp_path: Path
) -> None:
    """An A44 document whose steps all lie ahead gives a forecast at once and each step's price signal
    on grid.signals when the step starts (real FR prices, times moved to just after now)."""
    w = WorkerProc(settings, "w-release", tmp_path)
    try:
        w.wait()
        start, doc = _release_doc()
        produce(settings, settings.topic_raw_entsoe, [(None, doc)])
        fcs = drain(settings, settings.topic_forecasts, 1, timeout_s=30)
        signals = drain(settings, settings.topic_signals, 1, timeout_s=40, settle_s=2.0)
        released_at = time.time()
    finally:
        assert w.stop() == 0
    (fc,) = [GridForecast.model_validate(orjson.loads(m.value)) for m in fcs]
    assert fc.region == "azure:francecentral"
    assert [p.ts for p in fc.points] == [start, start + 900]
    sig = [GridSignal.model_validate(orjson.loads(m.value)) for m in signals]
    assert len(sig) == 1, sig  # the second step starts 15 minutes later
    assert sig[0].ts == start
    assert sig[0].region == "azure:francecentral"
    assert sig[0].price_usd_per_mwh == pytest.approx(24.15 * 1.0787)
    assert (sig[0].source, sig[0].valid_for_s, sig[0].estimated) == ("entsoe", 900.0, False)
    assert released_at >= start
