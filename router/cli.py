"""The ``carbon-router`` command line (README.md, "Commands"): argument parsing and the core's commands.

``worker`` and ``demo`` need Kafka, so the core does not run them: ``streams.cli`` (the installed
``carbon-router`` script) passes their handlers in, and the core never imports ``streams``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from router.bounds import DEFAULT_MAX_CLOCK_SKEW_S, MAX_TS
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


def _epoch(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"received {text!r}; expected epoch seconds (UTC)") from None
    if not 0 <= v <= MAX_TS:
        raise argparse.ArgumentTypeError(
            f"received {text!r}; expected epoch seconds (UTC) from 0 to {MAX_TS:.0f} (2100-01-01)"
        )
    return v


def _names(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"received {text!r}; expected comma-separated column names")
    return names


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends in its default: the value, or the words the help gives for a None one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "(default" in text or "(required" in text or action.default is argparse.SUPPRESS:
            return text
        if action.required:
            return f"{text} (required)"
        if action.default is False and action.nargs == 0:
            return f"{text} (default: off)"
        if isinstance(action.default, list):
            return f"{text} (default: {','.join(f'{v:g}' for v in action.default)})"
        if isinstance(action.default, float | int) and not isinstance(action.default, bool):
            return f"{text} (default: {action.default:g})"
        return super()._get_help_string(action)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("carbon-router")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def _inputs(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--topology", type=Path, default=None, metavar="F", help="topology file (default: bundled)"
    )
    s.add_argument(
        "--signals", type=Path, default=None, metavar="F", help="grid signals JSONL (default: bundled sample)"
    )
    s.add_argument(
        "--requests", type=Path, default=None, metavar="F", help="requests JSONL (default: bundled sample)"
    )
    s.add_argument(
        "--statuses", type=Path, default=None, metavar="F", help="region status JSONL (default: none)"
    )
    s.add_argument(
        "--forecasts",
        type=Path,
        default=None,
        metavar="F",
        help="grid forecasts JSONL of GridForecast (default: none)",
    )
    s.add_argument(
        "--now",
        type=_epoch,
        default=None,
        metavar="TS",
        help=f"the router's clock: refuse records more than {DEFAULT_MAX_CLOCK_SKEW_S:.0f} s after it "
        "(default: no clock; planning with future requests and forecasts is allowed)",
    )


def _demo(d: argparse.ArgumentParser) -> None:
    d.add_argument("--duration", type=_positive, default=30.0, metavar="S", help="seconds of request load")
    d.add_argument("--rate", type=_positive, default=2000.0, metavar="R", help="requests per second")
    d.add_argument(
        "--out", type=Path, default=Path("out/demo"), metavar="DIR", help="folder for the frontier files"
    )
    d.add_argument("--no-frontier", action="store_true", help="skip the offline frontier after the live run")


def _what_if(s: argparse.ArgumentParser) -> None:
    s.add_argument("--no-duals", action="store_true", help="what-if: never re-solve (mu = 0)")
    s.add_argument(
        "--alpha", type=_positive, default=1.0, metavar="A", help="what-if: scale every latency budget"
    )


def _score(s: argparse.ArgumentParser) -> None:
    _inputs(s)
    s.add_argument("--out", type=Path, default=None, metavar="F", help="output JSONL file (default: stdout)")
    s.add_argument(
        "--summary",
        type=Path,
        default=None,
        metavar="F",
        help="also write the totals as JSON (the worker's /api/state 'totals', same rules)",
    )
    _what_if(s)
    s.add_argument(
        "--explain",
        action="store_true",
        help="add runner_up and terms to every placement (as CARBON_ROUTER_EXPLAIN)",
    )


def _compare(c: argparse.ArgumentParser) -> None:
    _inputs(c)
    c.add_argument(
        "--alpha", type=_positive, default=1.0, metavar="A", help="what-if: scale every latency budget"
    )
    c.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (created when missing)"
    )


def _explain(e: argparse.ArgumentParser) -> None:
    _inputs(e)
    e.add_argument("--request-id", required=True, metavar="ID", help="the request to explain")
    _what_if(e)


def _frontier(f: argparse.ArgumentParser) -> None:
    _inputs(f)
    f.add_argument(
        "--alphas",
        type=_alphas,
        default=[0.5, 1.0, 2.0, 4.0, 8.0],
        metavar="A,B,...",
        help="latency-budget scales, one replay each",
    )
    f.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (created when missing)"
    )


def _worker(w: argparse.ArgumentParser) -> None:
    w.add_argument(
        "--topology",
        type=Path,
        default=None,
        metavar="F",
        help="topology file (default: settings, else bundled)",
    )


def _topology_only(t: argparse.ArgumentParser) -> None:
    t.add_argument(
        "--topology", type=Path, default=None, metavar="F", help="topology file (default: bundled)"
    )


def _signals(g: argparse.ArgumentParser) -> None:
    g.add_argument(
        "--csv", type=Path, required=True, metavar="F", help="recorded series (see README, Recorded series)"
    )
    _topology_only(g)
    g.add_argument(
        "--out", type=Path, default=None, metavar="F", help="output signals JSONL file (default: stdout)"
    )
    g.add_argument(
        "--forecasts-out",
        type=Path,
        default=None,
        metavar="F",
        help="write rows dated after now as GridForecast JSONL here, for score --forecasts "
        "(default: such rows are refused)",
    )
    g.add_argument(
        "--ignore-columns",
        type=_names,
        default=[],
        metavar="A,B",
        help="columns to leave out; any other unknown column is refused (default: none)",
    )


def _workload(k: argparse.ArgumentParser) -> None:
    k.add_argument(
        "source", choices=["azure"], help="the trace format: azure (Azure LLM inference trace 2023)"
    )
    k.add_argument("--csv", type=Path, required=True, metavar="F", help="the trace CSV")
    _topology_only(k)
    k.add_argument(
        "--model",
        default=None,
        metavar="ID",
        help="model with per-input and per-output token profiles (default: the topology's first one)",
    )
    k.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the origin and class draws")
    k.add_argument(
        "--start",
        type=_epoch,
        default=None,
        metavar="TS",
        help="epoch seconds the trace's first arrival is moved to "
        "(default: 1776038400, the first time of the bundled signals)",
    )
    k.add_argument(
        "--out", type=Path, default=None, metavar="F", help="output requests JSONL (default: stdout)"
    )


def _schema(m: argparse.ArgumentParser) -> None:
    m.add_argument("name", nargs="?", default=None, help="message name, e.g. Placement (default: list them)")


#: every command: name, one line of help, the function that adds its arguments
_COMMANDS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("demo", "the main job: the live pipeline on an embedded broker, then the frontier", _demo),
    ("score", "offline deterministic replay: one placement per request as JSONL", _score),
    ("compare", "the same requests under six policies: compare.json, .csv and .png", _compare),
    ("explain", "every region's filter or score terms for one request, the pick and the runner-up", _explain),
    ("frontier", "the energy-latency frontier: frontier.json, .csv and .png", _frontier),
    ("worker", "one production worker against KAFKA_BOOTSTRAP_SERVERS", _worker),
    ("signals", "convert a recorded-series CSV into grid.signals JSONL", _signals),
    ("workload", "turn a request trace (CSV) into request JSONL", _workload),
    ("topology", "validate and print the topology in use", _topology_only),
    ("schema", "print the JSON Schema of a message, or list the messages", _schema),
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="carbon-router", description="Carbon-aware router for AI inference.", formatter_class=_Help
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext, add_arguments in _COMMANDS:
        add_arguments(sub.add_parser(name, help=helptext, description=helptext, formatter_class=_Help))
    return p


#: a command handled outside the core (``streams.cli``): parsed arguments in, exit status out
Handler = Callable[[argparse.Namespace], int]


def _core_handler(command: str) -> Handler | None:
    """The core's function for ``command`` (imported when used), or None for a streaming command."""
    if command in ("score", "frontier", "signals"):
        from router import commands

        return getattr(commands, f"cmd_{command}")  # type: ignore[no-any-return]
    if command == "topology":
        from router.commands import cmd_topology

        return lambda args: cmd_topology(args.topology)
    if command == "schema":
        from router.commands import cmd_schema

        return lambda args: cmd_schema(args.name)
    if command == "compare":
        from router.compare import cmd_compare

        return cmd_compare
    if command == "explain":
        from router.explain import cmd_explain

        return cmd_explain
    if command == "workload":
        from router.workload import cmd_workload

        return cmd_workload
    return None


def main(argv: Sequence[str] | None = None, streaming: Mapping[str, Handler] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad arguments or invalid input, never a traceback).
    ``streaming`` holds the handlers of ``worker`` and ``demo`` (given by ``streams.cli``)."""
    args = _parser().parse_args(argv)
    try:
        core = _core_handler(args.command)
        if core is not None:
            return core(args)
        handler = (streaming or {}).get(args.command)
        if handler is None:
            raise InputError(
                f"`{args.command}` needs the streaming layer",
                source="command",
                received=args.command,
                expected="the installed `carbon-router` script (or `python -m streams.cli`)",
            )
        return handler(args)
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
