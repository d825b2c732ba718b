"""`carbon-router score` on the signals and requests a live test sent, to compare live with offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from router.cli import main


def score(tmp_path: Path, signals: list[Any], requests: list[Any], *extra: str) -> list[dict[str, Any]]:
    """Write both as JSONL, run `score` (with ``extra`` options), return its placements in output order."""
    sig, req, out = tmp_path / "s.jsonl", tmp_path / "r.jsonl", tmp_path / "p.jsonl"
    sig.write_bytes(b"\n".join(orjson.dumps(s) for s in signals))
    req.write_bytes(b"\n".join(orjson.dumps(r) for r in requests))
    status = main(["score", "--signals", str(sig), "--requests", str(req), "--out", str(out), *extra])
    assert status == 0, f"score exited {status}"
    return [orjson.loads(x) for x in out.read_bytes().splitlines()]
