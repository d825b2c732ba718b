"""``python -m faults.external``: check a running cluster across a fault you cause yourself.

For what tansu cannot show (durability across a broker crash, TLS and SASL served by the broker): run it
against Apache Kafka (``deploy/docker-compose.yml``, clients on the host use ``localhost:9094``) and kill
and restart the broker, or a worker, while it runs. It publishes the bundled first-hour grid signals, sends
the bundled sample requests under fresh request ids at ``--rate`` for ``--duration`` seconds (open loop: a
send the broker never acknowledges is counted, not retried by us), then reads ``placements`` from offset 0
until every acknowledged request has a placement (or ``--wait-s``) and prints sent, acknowledged, placed,
lost, duplicates and differing duplicates. Exit status 1 when an acknowledged request has no placement or
a duplicate differs from the first decision. Settings come from the environment exactly as for the worker
(``KAFKA_BOOTSTRAP_SERVERS``, ``CARBON_ROUTER_*``: topics, TLS, SASL, ``CARBON_ROUTER_PRODUCER_IDEMPOTENCE``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from collections.abc import Sequence

from faults.checker import SendLog, check_placements
from faults.scenarios.common import (
    first_hour_signals,
    fresh_requests,
    publish_signals,
    request_items,
    send_paced,
    wait_placed,
)
from router.errors import RouterError
from streams.settings import load_settings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Send, wait, compare; 0 when nothing acknowledged was lost and every duplicate is identical."""
    ap = argparse.ArgumentParser(prog="python -m faults.external", description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    ap.add_argument("--wait-s", type=float, default=180.0, help="longest wait for placements (default 180)")
    args = ap.parse_args(argv)
    if not (0 < args.rate <= 100_000 and 0 < args.duration <= 3600 and 0 < args.wait_s <= 3600):
        ap.error("--rate must be in (0, 100000], --duration and --wait-s in (0, 3600]")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # retries through the fault would flood stderr
    try:
        s = load_settings()
        publish_signals(s, first_hour_signals())
    except (RouterError, OSError) as exc:
        print(f"cannot use the cluster: {exc}", file=sys.stderr)
        return 2
    tag = f"x{uuid.uuid4().hex[:8]}"
    items = request_items(fresh_requests(int(args.rate * args.duration), tag))
    log = SendLog()
    started = time.time()

    async def load() -> None:
        step = max(1, int(args.rate))
        for k in range(0, len(items), step):  # one producer per second of load: a dead broker costs one chunk
            await send_paced(s, s.topic_requests, items[k : k + step], rate=args.rate, log=log)
            print(f"\r{time.time() - started:6.0f} s  sent {log.sent:,}  acked {log.acked_count:,}", end="")

    asyncio.run(load())
    print(f"\nwaiting for placements of {len(log.acked):,} acknowledged requests ...")
    recs = wait_placed(s, log, timeout_s=args.wait_s)
    check = check_placements(log.acked, recs)  # placements of other requests count as "unknown": ignored
    print(
        f"sent {log.sent:,}  acknowledged {log.acked_count:,}  send failures {log.failed:,} {log.errors}\n"
        f"placed {check.placed:,}  lost {check.lost:,}  duplicates {check.duplicates:,}  "
        f"differing {check.differing:,}"
    )
    if check.lost_ids:
        print(f"lost, e.g.: {check.lost_ids[:5]}")
    return 1 if check.lost or check.differing else 0


if __name__ == "__main__":
    sys.exit(main())
