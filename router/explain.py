"""``carbon-router explain --request-id ID``: why one request went where it went (docs/contract.md).

It replays the same inputs as ``score`` (same options, same event time) and, just before the request is
decided, asks the kernel for every region's row (``router.scoring.Scorer.explain``): the first filter that
removed the region, or nothing when it passed all eight, and the score's parts there, computed by the same
functions as the decision. The placement itself comes from the replay with explanations on, so the table's
pick and runner-up are the router's own; regions are listed in topology order, the tie-break order.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from router.accounting import MARGINAL
from router.commands import load_inputs, read_forecasts
from router.decider import Decider
from router.errors import InputError
from router.kernel import EXPLAIN_FLOATS, FILTER_NAMES, SIGNAL_SOURCES
from router.models import Request
from router.placement import PlacementMessage
from router.plan import Row
from router.replay import ReplayOptions, replay

__all__ = ["Explanation", "RegionLine", "cmd_explain", "explain_request", "format_explanation"]

_MICRO = 1e6  # the table shows money in micro-USD


@dataclass(frozen=True, slots=True)
class RegionLine:
    """One region for one request: the filter that removed it (None: feasible) and the score's parts."""

    region: str
    filter: str | None
    values: str  # live, forecast, stale, or none (no price or no carbon value)
    latency_ms: float
    energy_usd: float
    carbon_g: float
    carbon_usd: float
    egress_usd: float
    relocation_usd: float
    dual_usd: float
    score_usd: float
    #: the tenant's carbon-budget dual times the carbon there (0 for a request of no budgeted tenant)
    dual_carbon_usd: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """A request, its placement (explanations on) and one line per region."""

    request: Request
    placement: PlacementMessage
    lines: list[RegionLine]
    carbon_usd_per_tonne: float


def _lines(decider: Decider, req: Request, row: Row) -> list[RegionLine]:
    """Every region's line for ``req``, decided next by ``decider``."""
    plan = decider.plan
    rows_f, rows_i = decider.scorer.explain(plan.arrays([req], [row]))
    out = []
    for j, region in enumerate(plan.region_ids):
        code, valued, source = rows_i[j].tolist()
        f = dict(zip(EXPLAIN_FLOATS, rows_f[j].tolist(), strict=True))
        out.append(
            RegionLine(
                region=region,
                filter=FILTER_NAMES[code - 1] if code else None,
                values=SIGNAL_SOURCES[source] if valued else "none",
                **f,
            )
        )
    return out


def explain_request(args: argparse.Namespace) -> Explanation:
    """Replay the inputs of ``args`` (as ``score``) and explain the request ``args.request_id``."""
    topo, sig, req, st, sources = load_inputs(args.topology, args.signals, args.requests, args.statuses)
    target = next((r for _, r in req if r.request_id == args.request_id), None)
    if target is None:
        raise InputError(
            "no request with this request_id",
            source=sources[1],
            field="request_id",
            received=args.request_id,
            expected=f"the request_id of one of its {len(req)} requests",
        )
    seen: list[list[RegionLine]] = []

    def probe(decider: Decider, r: Request, row: Row) -> None:
        seen.append(_lines(decider, r, row))

    now = None if args.now is None else float(args.now)
    opts = ReplayOptions(alpha=args.alpha, use_duals=not args.no_duals, now=now, explain=True)
    res = replay(
        topo,
        sig,
        req,
        statuses=st,
        options=opts,
        sources=sources,
        forecasts=read_forecasts(args.forecasts),
        probe=(args.request_id, probe),
    )
    placement = next(p for p in res.placements if p["request_id"] == args.request_id)
    return Explanation(target, placement, seen[0], topo.objective.carbon_usd_per_tonne)


def _money(v: float) -> str:
    return f"{v * _MICRO:.3f}"


def _row(line: RegionLine, mark: str) -> list[str]:
    """A region's cells; without a price or a carbon value its energy, carbon and score are unknown ("-")."""
    known = line.values != "none"

    def valued(text: str) -> str:
        return text if known else "-"

    return [
        line.region,
        mark,
        line.filter or "-",
        line.values,
        f"{line.latency_ms:.1f}",
        valued(_money(line.energy_usd)),
        valued(f"{line.carbon_g:.4f}"),
        valued(_money(line.carbon_usd)),
        _money(line.egress_usd),
        _money(line.relocation_usd),
        _money(line.dual_usd + line.dual_carbon_usd),
        valued(_money(line.score_usd)),
    ]


def _marks(x: Explanation, region: str) -> str:
    """PICK, runner-up and home, as they apply to ``region``."""
    p = x.placement
    ru = p.get("runner_up")
    marks = (
        ("PICK", region == p["region"]),
        ("runner-up", ru is not None and region == ru["region"]),
        ("home", region == p["home_region"]),
    )
    return ",".join(m for m, on in marks if on)


def _header(x: Explanation) -> list[str]:
    p, r = x.placement, x.request
    budget = r.latency_budget_ms
    head = (
        f"request {r.request_id}: from {p['origin']} (home {p['home_region']}) at ts {p['event_ts']}, "
        f"{p['energy_wh']:.6g} Wh, budget {budget:g} ms"
    )
    if p["status"] == "rejected":
        why = f"rejected: {p['reason']} (the filter that removed the last candidate); removed {p['removed']}"
        return [head, why]
    ru = p.get("runner_up")
    runner = (
        "none (the only feasible region)" if ru is None else f"{ru['region']} at {_money(ru['score_usd'])}"
    )
    return [
        head,
        f"placed in {p['region']} ({p['layer']}) at score {_money(p['score_usd'] or 0.0)}; runner-up {runner}"
        f" (micro-USD; {p['feasible_regions']} feasible)",
    ]


def format_explanation(x: Explanation) -> str:
    """The table a person reads when a decision surprises them."""
    cols = ["region", "mark", "removed by", "values", "latency ms", "energy uUSD", "carbon g"]
    cols += ["carbon uUSD", "egress uUSD", "reloc uUSD", "dual uUSD", "score uUSD"]
    table: list[list[str]] = [cols, *(_row(line, _marks(x, line.region)) for line in x.lines)]
    widths = [max(len(row[k]) for row in table) for k in range(len(cols))]
    text = [
        "  ".join(
            c.ljust(w) if k < 4 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in table
    ]
    notes = [
        f"score = energy + carbon x {x.carbon_usd_per_tonne:g} USD/t + egress + relocation + dual "
        "(capacity dual x energy), in micro-USD",
        "removed by: the first filter, in mask order, that removed the region; regions in topology order, "
        "ties go to the lower one",
        f"carbon: {MARGINAL}",
    ]
    return "\n".join([*_header(x), "", *text, "", *notes])


def cmd_explain(args: argparse.Namespace) -> int:
    """Print the explanation of one request."""
    print(format_explanation(explain_request(args)))
    return 0
