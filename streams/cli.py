"""The installed ``carbon-router`` script: the core's command line (``router.cli``) plus the two commands
that need Kafka, ``worker`` and ``demo`` (README.md, "Commands"). The core never imports this layer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from router import cli
from router.commands import cmd_offline_demo
from router.errors import InputError
from router.outputs import check_dir_target

__all__ = ["main"]


def cmd_demo(args: argparse.Namespace) -> int:
    """The live pipeline on the embedded broker, then the offline replay and frontier of the bundled data."""
    from streams.demo import run_demo

    if not args.no_frontier:
        check_dir_target(args.out, "--out")  # before the live run, not after it
    status = int(run_demo(args.rate, args.duration))
    if status != 0 or args.no_frontier:
        return status
    print()
    return cmd_offline_demo(args)


def cmd_worker(args: argparse.Namespace) -> int:
    """One streaming worker against ``KAFKA_BOOTSTRAP_SERVERS``."""
    from streams.settings import load_settings
    from streams.worker import run_worker

    settings = load_settings()
    if settings.kafka_bootstrap_servers is None:
        raise InputError(
            "no broker address",
            source="KAFKA_BOOTSTRAP_SERVERS",
            received=None,
            expected="host:port[,...] of your Kafka cluster (`carbon-router demo` runs an embedded one)",
        )
    run_worker(settings, args.topology)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``router.cli.main`` with the streaming commands."""
    return cli.main(argv, {"worker": cmd_worker, "demo": cmd_demo})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
