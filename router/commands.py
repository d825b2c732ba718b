"""What each CLI command does, on top of the pure core (argument parsing lives in router.cli)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from router.analysis import break_even, summarise
from router.errors import InputError
from router.frontier import frontier_points, write_frontier
from router.io import read_jsonl, write_jsonl
from router.models import GridForecast, GridSignal, RegionStatus, Request
from router.outputs import check_dir_target, check_file_target, ensure_dir, write_atomic
from router.replay import ReplayOptions, encode_placement, replay
from router.topology import Topology, default_topology_path, load_topology

__all__ = [
    "bundled",
    "cmd_frontier",
    "cmd_schema",
    "cmd_score",
    "cmd_signals",
    "cmd_topology",
    "load_inputs",
    "read_forecasts",
]


def bundled(name: str) -> Path:
    """Path of a file shipped in router/data (see router/data/PROVENANCE.md)."""
    return Path(str(resources.files("router").joinpath("data", name)))


Inputs = tuple[
    Topology,
    list[tuple[int, GridSignal]],
    list[tuple[int, Request]],
    list[tuple[int, RegionStatus]],
    tuple[str, str, str],
]


def load_inputs(
    topology: Path | None, signals: Path | None, requests: Path | None, statuses: Path | None
) -> Inputs:
    """Load and validate every input file (bundled defaults where a path is None); the topology's
    warnings (``Topology.warnings``: values valid but unusual enough to be a unit mistake) go to stderr."""
    topo = load_topology(topology)
    warn_topology(topo, topology)
    sig_p = signals or bundled("sample_signals.jsonl")
    req_p = requests or bundled("sample_requests.jsonl")
    sig = read_jsonl(sig_p, GridSignal)
    req = read_jsonl(req_p, Request)
    st = read_jsonl(statuses, RegionStatus) if statuses is not None else []
    return topo, sig, req, st, (str(sig_p), str(req_p), str(statuses or "statuses"))


def warn_topology(topo: Topology, path: Path | None) -> None:
    """Print each of the topology's warnings to stderr (it is used as it is)."""
    for text in topo.warnings():
        print(f"warning: {path or default_topology_path()}: {text}", file=sys.stderr)


def cmd_topology(path: Path | None) -> int:
    """Validate and print the topology in use."""
    topo = load_topology(path)
    warn_topology(topo, path)
    src = path or default_topology_path()
    print(f"topology: {src}")
    o = topo.objective
    print(
        f"objective: carbon {o.carbon_usd_per_tonne} USD/t, fixed friction {o.relocation_fixed_usd} USD, "
        f"regional <= {o.regional_rtt_ms} ms, signals fresh {o.signal_max_age_s} s, capacity window "
        f"{o.capacity_window_s} s, re-solve every {o.resolve_interval_s} s, forecasts stand in for stale "
        f"values up to {o.forecast_horizon_s} s after generated_at (0 = never)"
    )
    print(f"\n{len(topo.regions)} regions")
    print(f"  {'id':<34}{'jur':<5}{'tags':<10}{'PUE':>6}{'cap kW':>9}{'USD/MWh':>10}{'gCO2/kWh':>10}")
    for r in topo.regions:
        price = "-" if r.price_usd_per_mwh is None else f"{r.price_usd_per_mwh:.1f}"
        mci = "-" if r.marginal_gco2_per_kwh is None else f"{r.marginal_gco2_per_kwh:.0f}"
        tags = ",".join(r.tags)
        cap = "none" if r.capacity_kw is None or math.isinf(r.capacity_kw) else f"{r.capacity_kw:.0f}"
        print(f"  {r.id:<34}{r.jurisdiction:<5}{tags:<10}{r.pue:>6.2f}{cap:>9}{price:>10}{mci:>10}")
    uses = [
        f"{r.id} ({' and '.join(k for k in ('price', 'carbon') if getattr(r.on_stale, k) == 'prior')})"
        for r in topo.regions
        if "prior" in (r.on_stale.price, r.on_stale.carbon)
    ]
    print(f"priors stand in for stale values (router/priors.py): {', '.join(uses) or 'nowhere (all mask)'}")
    print(f"\n{len(topo.service_nodes)} service nodes (RTT ms to each region; * = home)")
    for s in topo.service_nodes:
        cells = []
        for r in topo.regions:
            mark = "*" if r.id == s.home_region else ""
            cells.append(f"{topo.rtt(s, r):.0f}{mark}")
        print(f"  {s.id:<16} home {s.home_region:<32} {' '.join(cells)}")
    print(
        f"\n{len(topo.models)} models: "
        + ", ".join(f"{m.id} ({m.wh_per_token} Wh/token)" for m in topo.models)
    )
    p = topo.providers
    zones = [f"{name} {len(p.zones(name))}" for name in ("watttime", "electricitymaps", "entsoe", "csv")]
    rates = ", ".join(f"{cur} {rate:g}" for cur, rate in sorted(p.usd_per.items())) or "none"
    print(f"\nsignal providers: zones mapped: {', '.join(zones)}; USD per unit: {rates}")
    return 0


def read_forecasts(path: Path | None) -> list[tuple[int, GridForecast]]:
    """The optional ``--forecasts`` JSONL of GridForecast (empty when not given)."""
    return read_jsonl(path, GridForecast) if path is not None else []


def _now(args: argparse.Namespace) -> float | None:
    """The router's clock of an offline command: ``--now``, else none (router/clock.py)."""
    return None if args.now is None else float(args.now)


def cmd_score(args: argparse.Namespace) -> int:
    """Offline deterministic replay; one placement per request as JSONL."""
    if args.out is not None:
        check_file_target(args.out, "--out")
    if args.summary is not None:
        check_file_target(args.summary, "--summary")
    topo, sig, req, st, sources = load_inputs(args.topology, args.signals, args.requests, args.statuses)
    fc = read_forecasts(args.forecasts)
    opts = ReplayOptions(alpha=args.alpha, use_duals=not args.no_duals, now=_now(args), explain=args.explain)
    res = replay(
        topo,
        sig,
        req,
        statuses=st,
        options=opts,
        sources=sources,
        forecasts=fc,
        forecasts_source=str(args.forecasts),
    )
    write_jsonl([encode_placement(p) for p in res.placements], args.out)
    if args.summary is not None:
        summary = summarise(res.placements, carbon_usd_per_tonne=topo.objective.carbon_usd_per_tonne)
        write_atomic(args.summary, orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def cmd_signals(args: argparse.Namespace) -> int:
    """A recorded-series CSV as canonical grid.signals JSONL in ts order (input of ``score --signals``);
    with ``--forecasts-out``, its rows dated after now as GridForecast JSONL (for ``score --forecasts``)."""
    from router.providers import Problem, parse_csv_series

    outs = [(o, path) for o, path in (("--out", args.out), ("--forecasts-out", args.forecasts_out)) if path]
    for option, path in outs:
        check_file_target(path, option)
    if (
        args.out is not None
        and args.forecasts_out is not None
        and args.out.resolve() == args.forecasts_out.resolve()
    ):
        raise InputError(
            "--out and --forecasts-out name the same file",
            source=f"--forecasts-out {args.forecasts_out}",
            expected="two different files",
        )
    topo = load_topology(args.topology)
    src = str(args.csv)
    try:
        raw = Path(args.csv).read_bytes()
    except OSError as exc:
        raise InputError(
            "cannot read file", source=src, received=exc.strerror, expected="a readable CSV file"
        ) from None
    got = parse_csv_series(
        raw,
        topo,
        time.time(),
        ignore_columns=args.ignore_columns,
        forecasts=args.forecasts_out is not None,
    )
    if isinstance(got, Problem):
        raise InputError(
            got.problem,
            source=src,
            line=got.line,
            field=got.field,
            received=got.received,
            expected=got.expected,
        )
    write_jsonl([orjson.dumps(s.model_dump(exclude_none=True)) for s in got.signals], args.out)
    if args.forecasts_out is not None:
        write_jsonl(
            [orjson.dumps(f.model_dump(exclude_none=True)) for f in got.forecasts], args.forecasts_out
        )
        points = sum(len(f.points) for f in got.forecasts)
        print(
            f"carbon-router signals: {len(got.signals)} signals, {len(got.forecasts)} forecasts "
            f"({points} points after now) -> {args.forecasts_out}",
            file=sys.stderr,
        )
    return 0


def cmd_frontier(args: argparse.Namespace) -> int:
    """The energy-latency frontier, plus break-even pairs and a summary next to it."""
    check_dir_target(args.out, "--out")
    topo, sig, req, st, sources = load_inputs(args.topology, args.signals, args.requests, args.statuses)
    fc = read_forecasts(args.forecasts)
    points = frontier_points(
        topo, sig, req, args.alphas, statuses=st, sources=sources, forecasts=fc, now=_now(args)
    )
    paths = write_frontier(points, args.out)
    _write_break_even(topo, sig, req, args.out)
    for p in paths:
        print(p)
    return 0


def _write_break_even(
    topo: Topology, sig: list[tuple[int, GridSignal]], req: list[tuple[int, Request]], out: Path
) -> None:
    payload = sum(r.payload_bytes for _, r in req) / max(1, len(req))
    rows = break_even(topo, [s for _, s in sig], payload_bytes=payload)
    ensure_dir(out, "--out")
    data = [
        {
            "home": b.home,
            "candidate": b.candidate,
            "gap_usd_per_wh": b.gap_usd_per_wh,
            "friction_usd": b.friction_usd,
            "breakeven_wh": b.breakeven_wh,
            "reference_payload_bytes": payload,
        }
        for b in rows
    ]
    write_atomic(
        out / "breakeven.json", orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )


def _fmt_summary(s: dict[str, Any], seconds: float) -> str:
    lines = [
        f"requests {s['requests']}: placed {s['placed']}, rejected {s['rejected']} {s['reasons']}",
        f"decisions/s (offline replay incl. re-solves): {s['requests'] / seconds:,.0f}",
        "energy cost: routed ${:.4f} vs all-local ${:.4f} -> saved ${:.4f} ({:.1%})".format(
            s["total_energy_usd"],
            s["placed_baseline_energy_usd"],
            s["saved_energy_usd"],
            s["saved_energy_usd"] / s["placed_baseline_energy_usd"]
            if s["placed_baseline_energy_usd"]
            else 0.0,
        ),
        "marginal carbon: routed {:.1f} kg vs all-local {:.1f} kg -> saved {:.1f} kg ({:.1%})".format(
            s["total_carbon_g"] / 1e3,
            s["placed_baseline_carbon_g"] / 1e3,
            s["saved_carbon_g"] / 1e3,
            s["saved_carbon_g"] / s["placed_baseline_carbon_g"] if s["placed_baseline_carbon_g"] else 0.0,
        ),
        "relocatable demand {:.1%}, relocated {:.1%}, rejected {:.1%}".format(
            s["rid_share"], s["relocated_share"], s["rejected_share"]
        ),
        "layers (share of placed IT energy): "
        + ", ".join(f"{k} {v:.1%}" for k, v in s["layer_share"].items()),
        "placements by region: " + ", ".join(f"{k} {v}" for k, v in s["by_region"].items()),
    ]
    return "\n".join(lines)


def cmd_offline_demo(args: argparse.Namespace) -> int:
    """Replay the bundled real data, print a readable summary, and write the frontier."""
    topo, sig, req, st, sources = load_inputs(None, None, None, None)
    print(
        f"carbon-router demo: {len(topo.regions)} regions, {len(topo.service_nodes)} service nodes, "
        f"{len(sig)} grid signals, {len(req)} requests (bundled real data, router/data/PROVENANCE.md)"
    )
    start = time.perf_counter()
    res = replay(topo, sig, req, statuses=st, sources=sources)
    took = time.perf_counter() - start
    summary = summarise(res.placements, carbon_usd_per_tonne=topo.objective.carbon_usd_per_tonne).as_dict()
    print("== offline replay of the bundled sample at the requests' own latency budgets ==")
    print(_fmt_summary(summary, took))
    print(f"capacity re-solves: {len(res.resolves)} ok, {res.failed_resolves} failed")
    points = frontier_points(topo, sig, req, [0.125, 0.25, 0.5, 1.0, 2.0, 4.0], sources=sources)
    print("\n== energy-latency frontier ==")
    print(
        f"  {'alpha':>6}{'cost USD':>11}{'saved':>8}{'carbon kg':>11}{'saved':>8}{'RID':>7}{'reloc':>7}"
        f"{'local':>7}{'region':>7}{'energy':>7}{'rej':>6}"
    )
    for p in points:
        sc = p["saved_energy_usd"] / (p["total_energy_usd"] + p["saved_energy_usd"] or 1.0)
        sg = p["saved_carbon_g"] / (p["total_carbon_g"] + p["saved_carbon_g"] or 1.0)
        ls = p["layer_share"]
        print(
            f"  {p['alpha']:>6g}{p['total_energy_usd']:>11.4f}{sc:>8.1%}{p['total_carbon_g'] / 1e3:>11.2f}"
            f"{sg:>8.1%}{p['rid_share']:>7.1%}{p['relocated_share']:>7.1%}{ls['local']:>7.1%}"
            f"{ls['regional']:>7.1%}{ls['energy']:>7.1%}{p['rejected_share']:>6.1%}"
        )
    paths = write_frontier(points, args.out)
    _write_break_even(topo, sig, req, args.out)
    print("\nwrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_schema(name: str | None) -> int:
    """Print the shipped JSON Schema of message ``name``, or list the message names."""
    from router.schemas import MESSAGES, lookup, schema_path

    if name is None:
        for n, model in MESSAGES.items():
            doc = (model.__doc__ or "").strip().splitlines()[0]
            print(f"{n:<14} {doc}")
        print("\n`carbon-router schema NAME` prints one (JSON Schema draft 2020-12).")
        return 0
    sys.stdout.buffer.write(schema_path(lookup(name)).read_bytes())
    sys.stdout.buffer.flush()
    return 0
