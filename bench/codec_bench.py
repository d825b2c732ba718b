"""Codec benchmark: which codec the worker should produce placements with.

Real placements (``carbon-router score`` on the bundled data: 4,000 placements) are packed into Kafka v2
record batches exactly as the data plane does (aiokafka's batch builder, key = request id, batches of
``--batch`` placements, the data plane's batch size per partition being up to ``CARBON_ROUTER_MAX_BATCH``),
once per codec. Reported per codec: bytes per placement on the wire (the built batch, headers and framing
included), microseconds to build one batch (median of ``--repeats``) and per placement. End-to-end
decisions/s with each codec are not measured here (``bench.e2e_bench`` runs the whole pipeline).

    python -m bench.codec_bench [--batch N] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import load_average, print_table, write_json

__all__ = ["main", "measure"]

#: aiokafka's codec ids (DefaultRecordBatch.CODEC_*)
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _placements() -> list[tuple[bytes, bytes]]:
    from router.cli import main as cli

    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "p.jsonl"
        assert cli(["score", "--out", str(out)]) == 0
        rows = [orjson.loads(x) for x in out.read_bytes().splitlines() if x.strip()]
    return [(p["request_id"].encode(), orjson.dumps(p)) for p in rows]


def _build(items: list[tuple[bytes, bytes]], codec: int) -> bytes:
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 64 * 1024 * 1024)
    ts = int(time.time() * 1000)
    for i, (key, value) in enumerate(items):
        b.append(i, timestamp=ts, key=key, value=value, headers=[])
    return bytes(b.build())


def measure(items: list[tuple[bytes, bytes]], batch: int, repeats: int) -> list[dict[str, Any]]:
    """Bytes per placement and build time per batch and per placement, for every codec."""
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    rows = []
    for name, codec in CODECS.items():
        wire = sum(len(_build(c, codec)) for c in chunks)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            _build(chunks[0], codec)
            times.append(time.perf_counter() - started)
        us = statistics.median(times) * 1e6
        rows.append(
            {
                "codec": name,
                "bytes_per_placement": wire / len(items),
                "build_us_per_batch": us,
                "build_us_per_placement": us / len(chunks[0]),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024, help="placements per batch (one partition's share)")
    ap.add_argument("--repeats", type=int, default=21, help="timed builds per codec")
    args = ap.parse_args(argv)
    items = _placements()
    rows = measure(items, args.batch, args.repeats)
    print_table(
        f"codec: {len(items)} real placements in batches of {args.batch}",
        ["codec", "bytes/placement", "build us/batch", "build us/placement"],
        [
            [
                r["codec"],
                round(r["bytes_per_placement"], 1),
                round(r["build_us_per_batch"]),
                round(r["build_us_per_placement"], 2),
            ]
            for r in rows
        ],
    )
    write_json(
        "codec",
        {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": load_average(),
            "batch": args.batch,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
