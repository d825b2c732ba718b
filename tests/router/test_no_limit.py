"""A capacity too large to bind is the same as no limit, in `score` and `frontier`; a capacity beyond the
bound the kernel holds exactly exits 2 (a one-word window would overflow at 1e9 kW and reject every
relocation for `capacity`)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from router.bounds import MAX_CAPACITY_KW
from router.cli import main
from router.commands import bundled


def _topology(tmp_path: Path, name: str, capacity: str | None) -> Path:
    text = bundled("default_topology.toml").read_text(encoding="utf-8")
    line = re.compile(r"^capacity_kw = .*$", flags=re.M)
    text = line.sub("", text) if capacity is None else line.sub(f"capacity_kw = {capacity}", text)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _placements(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


@pytest.mark.slow  # ~5 s each: scores and frontiers the bundled requests twice
@pytest.mark.parametrize("capacity", ["1e9", "1e12", "inf"])
def test_a_huge_capacity_places_like_no_limit(tmp_path: Path, capacity: str) -> None:
    """Every placement and frontier point with capacity 1e9 kW, 1e12 kW or inf equals those of a topology
    without capacities, and some requests are relocated (the guard removed no candidate)."""
    runs = {}
    for name, cap in (("none", None), ("huge", capacity)):
        topo = _topology(tmp_path, f"{name}.toml", cap)
        out = tmp_path / f"{name}.jsonl"
        assert main(["score", "--topology", str(topo), "--out", str(out)]) == 0
        front = tmp_path / f"front-{name}"
        assert main(["frontier", "--topology", str(topo), "--alphas", "0.5,2", "--out", str(front)]) == 0
        runs[name] = (_placements(out), orjson.loads((front / "frontier.json").read_bytes()))
    assert runs["huge"] == runs["none"]
    placed = runs["huge"][0]
    assert not any(p["removed"].get("capacity", 0) for p in placed)  # type: ignore[union-attr]
    assert any(p["status"] == "placed" and p["region"] != p["home_region"] for p in placed)


def test_a_capacity_beyond_the_bound_exits_2_naming_field_value_and_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2e12 kW is refused with the file, the field, the value and the bound, not wrapped."""
    topo = _topology(tmp_path, "big.toml", "2e12")
    assert main(["score", "--topology", str(topo), "--out", str(tmp_path / "p.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "big.toml" in err
    assert "regions[1].capacity_kw" in err
    assert "received 2000000000000.0" in err
    assert f"<= {MAX_CAPACITY_KW:.0f}" in err
    assert not (tmp_path / "p.jsonl").exists()
