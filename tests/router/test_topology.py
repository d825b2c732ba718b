"""Topology loading: the bundled default is valid and real; inconsistent files are refused clearly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from router.errors import ConfigError
from router.topology import default_topology_path, estimate_rtt_ms, load_topology

CONTINENT_OF_PREFIX = {
    "eu": "Europe",
    "europe": "Europe",
    "us": "America",
    "northamerica": "America",
    "southamerica": "America",
    "sa": "America",
    "ca": "America",
    "ap": "Asia",
    "asia": "Asia",
    "australia": "Oceania",
}


def _write(tmp_path: Path, text: str, name: str = "t.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


BASE = """
[[regions]]
id = "a"
jurisdiction = "DE"
lat = 50.0
lon = 8.0
pue = 1.2
capacity_kw = 10.0
[[regions]]
id = "b"
jurisdiction = "SE"
lat = 59.0
lon = 18.0
pue = 1.1
capacity_kw = 10.0
[[service_nodes]]
id = "fe"
home_region = "a"
lat = 50.0
lon = 8.0
"""


def test_bundled_topology_is_real_and_large_enough() -> None:
    """The default topology has >= 12 regions on >= 4 continents, 6 service nodes, and measured RTTs."""
    topo = load_topology()
    assert len(topo.regions) >= 12
    assert len(topo.service_nodes) == 6
    continents = set()
    for r in topo.regions:
        name = r.id.split(":", 1)[1]
        prefix = name.split("-")[0]
        continents.add(CONTINENT_OF_PREFIX.get(prefix, prefix))
    assert len(continents) >= 4, continents
    measured = sum(len(row) for row in topo.rtt_ms.values())
    assert measured >= 6 * (len(topo.regions) - 2)
    assert "PROVENANCE" in (default_topology_path().parent / "PROVENANCE.md").read_text().upper()


def test_minimal_topology_loads_and_estimates_missing_rtt(tmp_path: Path) -> None:
    """A file without rtt_ms gets the intra-region RTT at home and a distance estimate elsewhere."""
    topo = load_topology(_write(tmp_path, BASE))
    fe = topo.service_nodes[0]
    assert topo.rtt(fe, topo.regions[0]) == 2.0
    assert topo.rtt(fe, topo.regions[1]) == pytest.approx(estimate_rtt_ms(50.0, 8.0, 59.0, 18.0))
    assert 15 < topo.rtt(fe, topo.regions[1]) < 30


def test_json_topology_is_read_by_extension(tmp_path: Path) -> None:
    """The same structure as JSON loads identically."""
    import orjson

    data = tomllib.loads(BASE)
    a = load_topology(_write(tmp_path, BASE))
    b = load_topology(_write(tmp_path, orjson.dumps(data).decode(), "t.json"))
    assert a == b


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        (BASE.replace('home_region = "a"', 'home_region = "zz"'), "home_region 'zz', which is not a region"),
        (BASE + '\n[rtt_ms]\nfe = { "nowhere" = 3.0 }\n', "rtt_ms['fe'] names unknown region 'nowhere'"),
        (BASE.replace('id = "b"', 'id = "a"'), "duplicate id 'a' in regions"),
        (BASE.replace("pue = 1.1", "pue = 0.9"), "field 'regions[2].pue'"),
        (
            BASE.replace("capacity_kw = 10.0\n[[service", "capacity_kw = -1.0\n[[service"),
            "regions[2].capacity_kw",
        ),
        (BASE.replace("pue = 1.2", 'pue = "high"'), "field 'regions[1].pue'"),
        (BASE.replace("lat = 59.0\n", ""), "regions[2].lat"),
        (BASE + "\n[objective]\ncarbon_usd_per_tonne = nan\n", "objective.carbon_usd_per_tonne"),
        (BASE + "\n[egress_usd_per_gb]\nq = { a = 0.1 }\n", "egress_usd_per_gb names unknown region 'q'"),
        (BASE + "\nsurprise = 1\n", "surprise"),
        (BASE + "\n[objective]\nclass_bounds_ms = [2000.0, 300.0]\n", "objective.class_bounds_ms"),
    ],
)
def test_inconsistent_topology_is_refused(tmp_path: Path, patch: str, needle: str) -> None:
    """Unknown homes, unknown RTT targets, duplicate ids, PUE < 1, wrong types and NaN are refused at load."""
    with pytest.raises(ConfigError) as info:
        load_topology(_write(tmp_path, patch))
    msg = str(info.value)
    assert needle in msg
    assert "t.toml" in msg


def test_unreadable_and_malformed_files_are_refused(tmp_path: Path) -> None:
    """A missing file and broken TOML name the file and what was expected."""
    with pytest.raises(ConfigError, match=r"cannot read topology file.*expected a readable file"):
        load_topology(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_topology(_write(tmp_path, "[[regions]\nid = "))
