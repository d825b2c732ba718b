"""``carbon-router workload azure``: a real request trace as request JSONL (docs/contract.md, "Outputs").

The Azure LLM inference trace 2023 (Patel et al., "Splitwise", ISCA 2024; CC BY 4.0) gives, per request, its
arrival time and its input (``ContextTokens``) and output (``GeneratedTokens``) token counts. Each row
becomes one Request:

- ``ts``: the row's arrival time, moved so that the trace's first arrival is at ``start`` (gaps and bursts
  kept to the 100 ns of the trace);
- ``energy_wh`` and ``compute_ms``: the model's per-input-token and per-output-token IT energy and time
  (topology ``[[models]]``; the bundled ``llama2-70b`` cites its measurements in router/data/PROVENANCE.md):
  ``in * wh_per_input_token + out * wh_per_output_token`` and the same with ``ms_`` (rounded to the nano-Wh
  the capacity windows count and to the microsecond);
- ``origin`` and the latency class, drawn per row by ``numpy.random.default_rng(seed)`` (first the node,
  uniform over the topology's service nodes, then the class): **interactive** with probability
  ``INTERACTIVE_SHARE``, budget ``compute_ms`` plus a network allowance uniform in ``INTERACTIVE_SLACK_MS``
  (room for a nearby region only), else **batch**, plus ``BATCH_SLACK_MS`` (room for other continents);
- ``payload_bytes``: ``BYTES_PER_TOKEN`` per input token (the prompt travels when the request moves).

The trace has no geography, budgets, residency or session state, so these are this rule's, not the data's.
A bad row (a time that does not parse or goes backwards, a count that is not a whole number in range) is
reported with file, line, column, value and what was expected; every bad row at once (router/io.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from router.bounds import MAX_TOKENS
from router.errors import InputError
from router.io import MAX_PROBLEMS, read_csv, write_jsonl
from router.outputs import check_file_target
from router.problems import Problem
from router.topology import Model, Topology, load_topology

__all__ = [
    "BATCH_SLACK_MS",
    "BUNDLED_T0",
    "BYTES_PER_TOKEN",
    "COLUMNS",
    "INTERACTIVE_SHARE",
    "INTERACTIVE_SLACK_MS",
    "TraceRow",
    "azure_requests",
    "cmd_workload",
    "read_azure_trace",
]

#: the first time of the bundled grid signals (router/data/PROVENANCE.md, "Event-time clock")
BUNDLED_T0 = 1776038400.0
COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
#: configuration of the assignment rule (not data): share of interactive requests, and each class's network
#: allowance on top of its compute time (ms)
INTERACTIVE_SHARE = 0.8
INTERACTIVE_SLACK_MS = (20.0, 60.0)
BATCH_SLACK_MS = (500.0, 5000.0)
#: bytes of prompt text per input token: about 4 characters of English per token, 1 byte each in UTF-8
BYTES_PER_TOKEN = 4
_TIME_FORMAT = "YYYY-MM-DD HH:MM:SS[.fffffff] (UTC)"


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One request of the trace: seconds after the first arrival, token counts, and its line in the file."""

    line: int
    offset_s: float
    input_tokens: int
    output_tokens: int


def _seconds(text: str) -> tuple[int, int] | None:
    """(whole seconds since the epoch, 100 ns ticks) of a trace time, or None when it does not parse."""
    whole, _, frac = text.strip().partition(".")
    if len(frac) > 7 or not (frac.isdigit() or frac == ""):
        return None
    try:
        t = dt.datetime.strptime(whole, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return int(t.timestamp()), int(frac.ljust(7, "0") or 0)


def _count(row: dict[str, str], column: str, src: str, line: int, problems: list[Problem]) -> int:
    text = row.get(column)
    value = int(text) if text is not None and text.strip().isdigit() else -1
    if not 0 <= value <= MAX_TOKENS:
        problems.append(
            Problem(src, line, column, "not a token count", text, f"a whole number from 0 to {MAX_TOKENS}")
        )
    return value


def read_azure_trace(path: Path) -> list[TraceRow]:
    """The trace's rows in file order; raises InputError listing every bad row (file, line, column)."""
    src = str(path)
    rows: list[TraceRow] = []
    problems: list[Problem] = []
    first: tuple[int, int] | None = None
    last = (-1, 0)
    for line, row in read_csv(path, COLUMNS):
        before = len(problems)
        at = _seconds(row.get("TIMESTAMP") or "")
        if at is None:
            problems.append(Problem(src, line, "TIMESTAMP", "not a time", row.get("TIMESTAMP"), _TIME_FORMAT))
        elif at < last:
            problems.append(
                Problem(
                    src,
                    line,
                    "TIMESTAMP",
                    "earlier than the row before",
                    row["TIMESTAMP"],
                    "rows in time order",
                )
            )
        n_in = _count(row, "ContextTokens", src, line, problems)
        n_out = _count(row, "GeneratedTokens", src, line, problems)
        if len(problems) == before and n_in + n_out == 0:
            problems.append(
                Problem(src, line, "GeneratedTokens", "no tokens at all", 0, "at least one token")
            )
        if len(problems) > before or at is None:
            continue
        last = at
        first = first or at
        offset = (at[0] - first[0]) + (at[1] - first[1]) / 1e7
        rows.append(TraceRow(line, offset, n_in, n_out))
    if problems:
        raise InputError.from_problems(problems[:MAX_PROBLEMS], omitted=max(0, len(problems) - MAX_PROBLEMS))
    if not rows:
        raise InputError("no requests", source=src, expected="at least one data row")
    return rows


def token_model(topology: Topology, model_id: str | None, source: str) -> Model:
    """The model to charge: ``model_id``, else the topology's first with per-input/output token values."""
    phased = [m for m in topology.models if m.wh_per_input_token is not None]
    chosen = next((m for m in topology.models if m.id == model_id), None) if model_id else None
    if chosen is None and model_id is None and phased:
        chosen = phased[0]
    if chosen is None or chosen.wh_per_input_token is None:
        raise InputError(
            "no model with per-input and per-output token values",
            source=source,
            received=model_id,
            expected=f"a model id of the topology with wh_per_input_token etc.: {[m.id for m in phased]}",
        )
    return chosen


def azure_requests(
    rows: Sequence[TraceRow], topology: Topology, model: Model, *, seed: int, start: float
) -> list[dict[str, Any]]:
    """The Request objects of the trace's rows, by the module docstring's rule (same seed, same output)."""
    wh_in, wh_out = model.wh_per_input_token or 0.0, model.wh_per_output_token or 0.0
    ms_in, ms_out = model.ms_per_input_token or 0.0, model.ms_per_output_token or 0.0
    nodes = [s.id for s in topology.service_nodes]
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for k, r in enumerate(rows, start=1):
        origin = nodes[int(rng.integers(len(nodes)))]
        interactive = bool(rng.random() < INTERACTIVE_SHARE)
        slack = float(rng.uniform(*(INTERACTIVE_SLACK_MS if interactive else BATCH_SLACK_MS)))
        compute = round(r.input_tokens * ms_in + r.output_tokens * ms_out, 3)
        out.append(
            {
                "request_id": f"azure-{k:06d}",
                "ts": round(start + r.offset_s, 7),
                "origin": origin,
                "latency_budget_ms": round(compute + slack, 3),
                "energy_wh": round(r.input_tokens * wh_in + r.output_tokens * wh_out, 9),
                "compute_ms": compute,
                "model": model.id,
                "payload_bytes": BYTES_PER_TOKEN * r.input_tokens,
            }
        )
    return out


def cmd_workload(args: argparse.Namespace) -> int:
    """The trace as request JSONL (``--out``, else stdout); a one-line summary on stderr."""
    if args.out is not None:
        check_file_target(args.out, "--out")
    topology = load_topology(args.topology)
    model = token_model(topology, args.model, "--model")
    rows = read_azure_trace(args.csv)
    start = float(BUNDLED_T0 if args.start is None else args.start)
    reqs = azure_requests(rows, topology, model, seed=args.seed, start=start)
    write_jsonl([orjson.dumps(r) for r in reqs], args.out)
    span = rows[-1].offset_s
    energy = sum(r["energy_wh"] for r in reqs)
    print(
        f"carbon-router workload: {len(reqs):,} requests over {span:,.0f} s from {args.csv}, "
        f"model {model.id}, {energy:,.1f} Wh of IT energy ({energy / len(reqs):.3f} Wh per request), "
        f"seed {args.seed}",
        file=sys.stderr,
    )
    return 0
