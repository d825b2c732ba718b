"""The ``carbon-router`` command line (contract: shared/contract.md, "Command line")."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from router.errors import InputError, RouterError

__all__ = ["main"]


def _alphas(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"received {text!r}; expected comma-separated numbers > 0") from None
    if not vals or any(not (v > 0 and v < float("inf")) for v in vals):
        raise argparse.ArgumentTypeError(f"received {text!r}; expected comma-separated finite numbers > 0")
    return vals


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"received {text!r}; expected a number > 0") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"received {text!r}; expected a finite number > 0")
    return v


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="carbon-router", description="Carbon-aware router for AI inference.")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "demo", help="the main job: the live pipeline on an embedded broker, then the frontier"
    )
    d.add_argument("--duration", type=_positive, default=30.0, help="seconds of request load (default 30)")
    d.add_argument("--rate", type=_positive, default=2000.0, help="requests per second (default 2000)")
    d.add_argument("--out", type=Path, default=Path("out/demo"), help="where the frontier files go")
    d.add_argument("--no-frontier", action="store_true", help="skip the offline frontier after the live run")
    for name, helptext in (
        ("score", "offline deterministic replay: one placement per request as JSONL"),
        ("frontier", "the energy-latency frontier: frontier.json, .csv and .png"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--topology", type=Path, default=None, help="topology file (default: bundled)")
        s.add_argument(
            "--signals", type=Path, default=None, help="grid signals JSONL (default: bundled sample)"
        )
        s.add_argument("--requests", type=Path, default=None, help="requests JSONL (default: bundled sample)")
        s.add_argument("--statuses", type=Path, default=None, help="region status JSONL (optional)")
        s.add_argument(
            "--forecasts", type=Path, default=None, help="grid forecasts JSONL of GridForecast (optional)"
        )
        if name == "score":
            s.add_argument("--out", type=Path, default=None, help="output JSONL (default: stdout)")
            s.add_argument("--no-duals", action="store_true", help="what-if: never re-solve (mu = 0)")
            s.add_argument("--alpha", type=_positive, default=1.0, help="what-if: scale every latency budget")
        else:
            s.add_argument("--alphas", type=_alphas, default=[0.5, 1.0, 2.0, 4.0, 8.0])
            s.add_argument("--out", type=Path, required=True, help="output directory")
    w = sub.add_parser("worker", help="one production worker against KAFKA_BOOTSTRAP_SERVERS")
    w.add_argument(
        "--topology", type=Path, default=None, help="topology file (default: settings, else bundled)"
    )
    g = sub.add_parser("signals", help="convert a recorded-series CSV into grid.signals JSONL")
    g.add_argument("--csv", type=Path, required=True, help="recorded series (see router.providers.csvreplay)")
    g.add_argument("--topology", type=Path, default=None, help="topology file (default: bundled)")
    g.add_argument("--out", type=Path, default=None, help="output JSONL (default: stdout)")
    t = sub.add_parser("topology", help="validate and print the topology in use")
    t.add_argument("--topology", type=Path, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad arguments or invalid input, never a traceback)."""
    args = _parser().parse_args(argv)
    from router import commands

    try:
        if args.command == "topology":
            return commands.cmd_topology(args.topology)
        if args.command == "score":
            return commands.cmd_score(args)
        if args.command == "frontier":
            return commands.cmd_frontier(args)
        if args.command == "signals":
            return commands.cmd_signals(args)
        if args.command == "worker":
            return commands.cmd_worker(args)
        return commands.cmd_demo(args)
    except InputError as exc:
        print(f"carbon-router: error: {exc.render()}", file=sys.stderr)
        return 2
    except RouterError as exc:  # infrastructure, not input: say what failed, exit 1
        print(f"carbon-router: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `carbon-router score | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
