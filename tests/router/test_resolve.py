"""Tests of router.resolve: the capacity LP against scipy's HiGHS, its duals, warm starts and failures."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from router.resolve import CapacityResolver, FloatArray, ResolveInput, ResolveResult, time_warm_solve

PENALTY = 1e-3  # USD per IT Wh: about ten times a typical unit cost
SEEDS = range(200)


# --- instances and the slow, obvious reference ---------------------------------------------------------


def random_instance(seed: int, *, generic: bool | None = None) -> ResolveInput:
    """G in 1..20, R in 1..16, costs around 1e-4 USD/Wh (some negative), capacities some binding.

    ``generic`` instances have no zero demand and no zero capacity (structural degeneracy); by default
    about a third of the instances are not generic.
    """
    rng = np.random.default_rng(seed)
    G, R = int(rng.integers(1, 21)), int(rng.integers(1, 17))
    if generic is None:
        generic = bool(rng.random() < 0.7)
    reachable = rng.random((G, R)) < rng.uniform(0.1, 1.0)  # a group may reach no region at all
    demand = rng.uniform(0.5, 100.0, G)
    capacity = rng.uniform(0.0, 2.0, R) * demand.sum() / R
    if not generic:
        demand[rng.random(G) < 0.2] = 0.0
        capacity[rng.random(R) < 0.2] = 0.0
    return ResolveInput(
        group_keys=tuple(f"node{g}|c{g % 3}" for g in range(G)),
        demand_kw=demand,
        unit_usd_per_wh=rng.normal(1e-4, 1.5e-4, (G, R)),
        reachable=reachable,
        capacity_kw=capacity,
    )


@dataclass(frozen=True)
class Reference:
    objective_usd_per_h: float
    mu_usd_per_wh: FloatArray
    unique_duals: bool  # the primal optimum found is a non-degenerate vertex, so the duals are unique


def reference(inp: ResolveInput, penalty: float = PENALTY) -> Reference:
    """The same LP through scipy.optimize.linprog, written from scratch, with costs in USD per MWh.

    USD per MWh keeps costs near 100: in USD per Wh (~1e-4) HiGHS's absolute 1e-7 dual tolerance lets the
    reference itself stop up to 1e-5 relative from the optimum.
    """
    G, R = inp.reachable.shape
    gi, ji = np.nonzero(inp.reachable)
    n = len(gi)
    cost = np.concatenate([inp.unit_usd_per_wh[gi, ji], np.full(G, penalty)]) * 1e6
    a_eq = np.zeros((G, n + G))
    a_eq[gi, np.arange(n)] = 1.0
    a_eq[np.arange(G), n + np.arange(G)] = 1.0
    a_ub = np.zeros((R, n + G))
    a_ub[ji, np.arange(n)] = 1.0
    res = linprog(cost, A_ub=a_ub, b_ub=inp.capacity_kw, A_eq=a_eq, b_eq=inp.demand_kw, method="highs")
    assert res.status == 0, res.message
    # scipy's marginals are d(objective)/d(b_ub): <= 0 for a binding <= row of a minimisation
    mu = -np.asarray(res.ineqlin.marginals) / 1e6
    tol = 1e-9 * max(1.0, float(inp.demand_kw.max(initial=0.0)))
    positives = int((res.x > tol).sum() + (np.asarray(res.ineqlin.residual) > tol).sum())
    return Reference(float(res.fun) / 1e6 * 1e3, mu, positives == G + R)


def assert_optimal(
    inp: ResolveInput, res: ResolveResult, penalty: float = PENALTY, tol: float = 1e-9
) -> None:
    """Feasible shares and a dual certificate: mu >= 0, pi_g = min(penalty, min_j unit + mu) close the gap.

    ``tol`` is relative to the problem's scale (largest demand, largest cost, number of rows); HiGHS itself
    guarantees 1e-7 (its absolute tolerances, after the resolver's scaling), the reference suite sees 1e-16.
    """
    G, R = inp.reachable.shape
    x, u, mu, d = res.shares, res.unserved_share, res.mu_usd_per_wh, inp.demand_kw
    assert res.ok
    assert res.status == "optimal"
    assert res.group_keys == inp.group_keys
    assert x.shape == (G, R)
    assert u.shape == (G,)
    assert mu.shape == (R,)
    assert np.all(x >= 0)
    assert np.all(u >= 0)
    assert np.all(u <= 1)
    assert np.all(mu >= 0)
    assert np.all(x[~inp.reachable] == 0)
    np.testing.assert_allclose(x.sum(axis=1), 1.0 - u, rtol=0, atol=1e-12)
    kw = float(d.max(initial=0.0)) or 1.0
    load = (d[:, None] * x).sum(axis=0)
    assert np.all(load <= inp.capacity_kw + tol * kw * max(G, 1)), "capacity"
    unit = np.where(inp.reachable, inp.unit_usd_per_wh, 0.0)
    primal = float((d[:, None] * x * unit).sum() + penalty * (d * u).sum()) * 1e3
    price = np.where(inp.reachable, inp.unit_usd_per_wh + mu, np.inf).min(axis=1, initial=np.inf)
    pi = np.minimum(price, penalty)
    dual = float(pi @ d - mu @ inp.capacity_kw) * 1e3
    gap_tol = tol * max(float(np.abs(unit).max(initial=0.0)), penalty) * 1e3 * kw * (G + R)
    assert abs(primal - res.objective_usd_per_h) <= gap_tol, (primal, res.objective_usd_per_h)
    assert abs(primal - dual) <= gap_tol, ("duality gap", primal, dual)
    slack = inp.capacity_kw - load
    assert np.all(mu * slack <= gap_tol / 1e3), "complementary slackness"


def solve(inp: ResolveInput, penalty: float = PENALTY) -> ResolveResult:
    return CapacityResolver(inp.reachable.shape[1], penalty_usd_per_wh=penalty).solve(inp)


def perturbed(inp: ResolveInput, seed: int, size: float = 0.3) -> ResolveInput:
    """Same keys and reachability; demand, costs and capacities moved by up to ``size`` relative."""
    rng = np.random.default_rng(seed)
    G, R = inp.reachable.shape
    return dataclasses.replace(
        inp,
        demand_kw=inp.demand_kw * rng.uniform(1 - size, 1 + size, G),
        unit_usd_per_wh=inp.unit_usd_per_wh * rng.uniform(1 - size, 1 + size, (G, R)),
        capacity_kw=inp.capacity_kw * rng.uniform(1 - size, 1 + size, R),
    )


@functools.cache
def generic_seeds(count: int, min_groups: int = 1) -> list[int]:
    """The first seeds whose instance is generic, has a unique dual and at least one binding region."""
    found: list[int] = []
    for seed in range(10_000):
        inp = random_instance(seed, generic=True)
        ref = reference(inp)
        if len(inp.group_keys) >= min_groups and ref.unique_duals and np.any(ref.mu_usd_per_wh > 0):
            found.append(seed)
            if len(found) == count:
                return found
    raise AssertionError("not enough generic instances")


def assert_same(a: ResolveResult, b: ResolveResult) -> None:
    np.testing.assert_allclose(a.objective_usd_per_h, b.objective_usd_per_h, rtol=1e-9)
    np.testing.assert_allclose(a.mu_usd_per_wh, b.mu_usd_per_wh, rtol=1e-7, atol=1e-13)
    np.testing.assert_allclose(a.shares, b.shares, rtol=0, atol=1e-9)


# --- correctness against the reference ------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_matches_scipy_reference(seed: int) -> None:
    """Objective equals scipy's within 1e-9 relative, the duals certify optimality, and unique duals match."""
    inp = random_instance(seed)
    res = solve(inp)
    ref = reference(inp)
    assert res.objective_usd_per_h == pytest.approx(ref.objective_usd_per_h, rel=1e-9, abs=1e-12)
    assert_optimal(inp, res)
    if ref.unique_duals:
        atol = 1e-9 * float(np.abs(inp.unit_usd_per_wh).max())
        np.testing.assert_allclose(res.mu_usd_per_wh, ref.mu_usd_per_wh, rtol=1e-9, atol=atol)


def test_reference_suite_compares_duals_on_most_instances() -> None:
    """Most random instances have a unique dual with a binding region: the dual comparison is not vacuous."""
    refs = [reference(random_instance(seed)) for seed in SEEDS]
    unique = [r for r in refs if r.unique_duals]
    assert len(unique) >= 100
    assert sum(bool(np.any(r.mu_usd_per_wh > 0)) for r in unique) >= 50


HAND_EXAMPLE = ResolveInput(
    group_keys=("a", "b"),
    demand_kw=np.array([10.0, 10.0]),
    unit_usd_per_wh=np.array([[1e-4, 3e-4], [2e-4, 3e-4]]),
    reachable=np.ones((2, 2), dtype=bool),
    capacity_kw=np.array([12.0, 100.0]),
)


def test_hand_example() -> None:
    """Two groups share a cheap 12 kW region: the larger price gap wins it, mu is the other group's gap."""
    res = solve(HAND_EXAMPLE)
    np.testing.assert_allclose(res.shares, [[1.0, 0.0], [0.2, 0.8]], atol=1e-12)
    np.testing.assert_allclose(res.unserved_share, [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(res.mu_usd_per_wh, [1e-4, 0.0], rtol=1e-9, atol=1e-15)
    assert res.objective_usd_per_h == pytest.approx((10 * 1e-4 + 2 * 2e-4 + 8 * 3e-4) * 1e3, rel=1e-12)
    assert (res.version, res.ok, res.warm) == (1, True, False)


@pytest.mark.parametrize("seed", [-1, *generic_seeds(5, min_groups=5)])
def test_mu_is_the_objective_decrease_per_kw_of_capacity(seed: int) -> None:
    """mu_j (so -row_dual of HiGHS) equals the hourly saving of one more kW in j, / 1000, on both sides."""
    inp = HAND_EXAMPLE if seed == -1 else random_instance(seed, generic=True)
    base = solve(inp)
    assert np.any(base.mu_usd_per_wh > 0)
    delta = 1e-3
    for j in np.flatnonzero(inp.capacity_kw > delta):
        step = np.zeros_like(inp.capacity_kw)
        step[j] = delta
        up = solve(dataclasses.replace(inp, capacity_kw=inp.capacity_kw + step))
        down = solve(dataclasses.replace(inp, capacity_kw=inp.capacity_kw - step))
        atol = 1e-9 * float(np.abs(inp.unit_usd_per_wh).max())
        saving_up = (base.objective_usd_per_h - up.objective_usd_per_h) / (delta * 1e3)
        saving_down = (down.objective_usd_per_h - base.objective_usd_per_h) / (delta * 1e3)
        assert saving_up == pytest.approx(base.mu_usd_per_wh[j], rel=1e-6, abs=atol)
        assert saving_down == pytest.approx(base.mu_usd_per_wh[j], rel=1e-6, abs=atol)


@pytest.mark.parametrize("seed", generic_seeds(10))
def test_scaling_costs_and_penalty_scales_mu(seed: int) -> None:
    """Scaling every cost and the penalty by c > 0 scales mu and the objective by c, shares unchanged."""
    inp = random_instance(seed, generic=True)
    base = solve(inp)
    for c in (1e-3, 7.0, 1e3):
        res = solve(dataclasses.replace(inp, unit_usd_per_wh=inp.unit_usd_per_wh * c), penalty=PENALTY * c)
        np.testing.assert_allclose(res.mu_usd_per_wh, base.mu_usd_per_wh * c, rtol=1e-9, atol=1e-15 * c)
        assert res.objective_usd_per_h == pytest.approx(base.objective_usd_per_h * c, rel=1e-9)
        np.testing.assert_allclose(res.shares, base.shares, atol=1e-12)


# --- properties ---------------------------------------------------------------------------------------------


@st.composite
def instances(draw: st.DrawFn) -> ResolveInput:
    G, R = draw(st.integers(0, 6)), draw(st.integers(1, 5))
    amounts = st.floats(0.0, 1e3, allow_subnormal=False) | st.just(0.0)
    costs = st.floats(-1e-3, 1e-3, allow_subnormal=False)
    return ResolveInput(
        group_keys=tuple(f"g{g}" for g in range(G)),
        demand_kw=draw(hnp.arrays(np.float64, (G,), elements=amounts)),
        unit_usd_per_wh=draw(hnp.arrays(np.float64, (G, R), elements=costs)),
        reachable=draw(hnp.arrays(np.bool_, (G, R))),
        capacity_kw=draw(hnp.arrays(np.float64, (R,), elements=amounts)),
    )


@settings(max_examples=int(os.environ.get("RESOLVE_EXAMPLES", "300")), deadline=None)
@given(inp=instances())
def test_result_is_feasible_and_certified_optimal(inp: ResolveInput) -> None:
    """For any valid input the shares are feasible, 0 where unreachable, and the duals prove optimality."""
    res = solve(inp)
    assert_optimal(inp, res, tol=1e-7)
    mu = res.mu_usd_per_wh
    for g in np.flatnonzero(inp.demand_kw == 0):  # zero demand: the marginal placement under the duals
        price = np.where(inp.reachable[g] & (inp.capacity_kw > 0), inp.unit_usd_per_wh[g] + mu, np.inf)
        if price.min() <= PENALTY:
            assert res.shares[g, int(np.argmin(price))] == 1.0
        else:
            assert res.unserved_share[g] == 1.0


def test_edge_cases_zero_demand_unreachable_group_zero_capacity() -> None:
    """Zero demand takes the marginal region, a group with no region is unserved, 0 kW regions get nothing."""
    inp = ResolveInput(
        group_keys=("idle", "stranded", "busy"),
        demand_kw=np.array([0.0, 5.0, 20.0]),
        unit_usd_per_wh=np.array([[1e-4, 2e-4, 3e-4], [1e-4, 1e-4, 1e-4], [1e-4, 2e-4, 1.5e-4]]),
        reachable=np.array([[True, True, True], [False, False, False], [True, True, True]]),
        capacity_kw=np.array([0.0, 100.0, 10.0]),
    )
    res = solve(inp)
    assert_optimal(inp, res)
    # busy: region 0 has no capacity, region 2 is cheaper than 1 but only 10 kW: mu_2 = 2e-4 - 1.5e-4
    np.testing.assert_allclose(res.shares[2], [0.0, 0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(res.mu_usd_per_wh[1:], [0.0, 5e-5], rtol=1e-9, atol=1e-15)
    assert res.mu_usd_per_wh[0] >= 1e-4 - 1e-15  # region 0 must look no cheaper than region 1
    np.testing.assert_allclose(res.unserved_share, [0.0, 1.0, 0.0], atol=1e-12)
    assert np.all(res.shares[1] == 0.0)
    # idle: unit + mu ties at 2e-4 in regions 0 and 1 (HiGHS returns the smallest valid mu_0), 0 kW excluded
    assert np.all(res.shares[0] == [0.0, 1.0, 0.0])
    assert res.objective_usd_per_h == pytest.approx((10 * 2e-4 + 10 * 1.5e-4 + 5 * PENALTY) * 1e3, rel=1e-9)


def test_no_groups_gives_zero_duals() -> None:
    """An empty demand window solves to no shares and zero duals (HiGHS calls the LP empty)."""
    inp = ResolveInput((), np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3), dtype=bool), np.ones(3))
    res = solve(inp)
    assert (res.ok, res.version, res.shares.shape, res.objective_usd_per_h) == (True, 1, (0, 3), 0.0)
    assert np.all(res.mu_usd_per_wh == 0.0)


def test_results_are_read_only() -> None:
    """Result arrays cannot be modified in place, so a kept result cannot be corrupted by its consumers."""
    res = solve(random_instance(1))
    for a in (res.shares, res.unserved_share, res.mu_usd_per_wh):
        with pytest.raises(ValueError, match="read-only"):
            a[...] = 0.0


# --- warm start and rebuild -------------------------------------------------------------------------------


def test_warm_start_gives_the_fresh_answer_in_fewer_iterations() -> None:
    """Same keys and reachability: the second solve reuses the basis (warm) and equals a fresh solve."""
    inp = random_instance(generic_seeds(1, min_groups=15)[0], generic=True)
    resolver = CapacityResolver(len(inp.capacity_kw), penalty_usd_per_wh=PENALTY)
    first = resolver.solve(inp)
    assert (first.warm, first.version) == (False, 1)
    for k in range(5):
        nxt = perturbed(inp, seed=k, size=0.05)
        res = resolver.solve(nxt)
        fresh = solve(nxt)
        assert (res.ok, res.warm, res.version) == (True, True, 2 + k)
        assert_same(res, fresh)
        assert_optimal(nxt, res)
        assert res.iterations < fresh.iterations, (res.iterations, fresh.iterations)


@pytest.mark.parametrize("change", ["added_group", "reordered_keys", "renamed_key", "reachability"])
def test_rebuild_when_structure_changes(change: str) -> None:
    """Changed keys (added, reordered, renamed) or reachability rebuild the model: not warm, right answer."""
    inp = random_instance(generic_seeds(1, min_groups=4)[0], generic=True)
    resolver = CapacityResolver(len(inp.capacity_kw), penalty_usd_per_wh=PENALTY)
    resolver.solve(inp)
    if change == "added_group":
        R = len(inp.capacity_kw)
        nxt = dataclasses.replace(
            inp,
            group_keys=(*inp.group_keys, "new"),
            demand_kw=np.append(inp.demand_kw, 30.0),
            unit_usd_per_wh=np.vstack([inp.unit_usd_per_wh, np.full(R, 5e-5)]),
            reachable=np.vstack([inp.reachable, np.ones(R, dtype=bool)]),
        )
    elif change == "reordered_keys":
        order = np.arange(len(inp.group_keys))[::-1]
        nxt = dataclasses.replace(
            inp,
            group_keys=tuple(inp.group_keys[i] for i in order),
            demand_kw=inp.demand_kw[order],
            unit_usd_per_wh=inp.unit_usd_per_wh[order],
            reachable=inp.reachable[order],
        )
    elif change == "renamed_key":
        nxt = dataclasses.replace(inp, group_keys=("renamed", *inp.group_keys[1:]))
    else:
        flipped = inp.reachable.copy()
        flipped[0, 0] = not flipped[0, 0]
        nxt = dataclasses.replace(inp, reachable=flipped)
    res = resolver.solve(nxt)
    assert (res.ok, res.warm, res.version) == (True, False, 2)
    assert_same(res, solve(nxt))
    assert_optimal(nxt, res)


# --- failures ---------------------------------------------------------------------------------------------


def test_time_limit_failure_keeps_last_good_result() -> None:
    """A solve stopped by the time limit returns the previous result with ok=False; the next one recovers."""
    inp = random_instance(generic_seeds(1, min_groups=15)[0], generic=True)
    resolver = CapacityResolver(len(inp.capacity_kw), penalty_usd_per_wh=PENALTY)
    good = resolver.solve(inp)
    nxt = perturbed(inp, seed=3)
    resolver.time_limit_s = 0.0
    failed = resolver.solve(nxt)
    assert (failed.ok, failed.status, failed.version, failed.warm) == (False, "Time limit reached", 1, True)
    assert failed.mu_usd_per_wh is good.mu_usd_per_wh
    assert failed.shares is good.shares
    assert failed.group_keys == good.group_keys
    assert failed.objective_usd_per_h == good.objective_usd_per_h
    assert resolver.last is good
    resolver.time_limit_s = math.inf
    recovered = resolver.solve(nxt)
    assert (recovered.ok, recovered.version, recovered.warm) == (True, 2, True)
    assert_same(recovered, solve(nxt))


def test_time_limit_before_any_success_returns_version_zero() -> None:
    """With no good result yet, a failed solve returns version 0 with all-zero duals and ok=False."""
    inp = random_instance(generic_seeds(1, min_groups=15)[0], generic=True)
    R = len(inp.capacity_kw)
    res = CapacityResolver(R, penalty_usd_per_wh=PENALTY, time_limit_s=0.0).solve(inp)
    assert (res.ok, res.status, res.version, res.group_keys) == (False, "Time limit reached", 0, ())
    assert np.all(res.mu_usd_per_wh == 0.0)
    assert res.mu_usd_per_wh.shape == (R,)


def test_highspy_exception_is_caught_and_model_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception inside highspy becomes ok=False with the last good result; the next solve rebuilds."""
    inp = random_instance(generic_seeds(1, min_groups=4)[0], generic=True)
    resolver = CapacityResolver(len(inp.capacity_kw), penalty_usd_per_wh=PENALTY)
    good = resolver.solve(inp)

    def broken() -> None:
        raise RuntimeError("simulated HiGHS failure")

    monkeypatch.setattr(resolver._highs, "run", broken)
    failed = resolver.solve(perturbed(inp, seed=1))
    assert (failed.ok, failed.version) == (False, 1)
    assert failed.status == "highspy raised RuntimeError: simulated HiGHS failure"
    assert failed.mu_usd_per_wh is good.mu_usd_per_wh
    monkeypatch.undo()
    res = resolver.solve(perturbed(inp, seed=1))
    assert (res.ok, res.version, res.warm) == (True, 2, False)
    assert_same(res, solve(perturbed(inp, seed=1)))


# --- input validation -------------------------------------------------------------------------------------


def _invalid(field: str, value: Any) -> ResolveInput:  # deliberately ill-typed values
    base = ResolveInput(
        ("a", "b"), np.ones(2), np.full((2, 3), 1e-4), np.ones((2, 3), dtype=bool), np.ones(3)
    )
    return dataclasses.replace(base, **{field: value})


INVALID = {
    "demand_shape": (
        "demand_kw",
        np.ones(3),
        r"demand_kw: received ndarray float64 \(3,\); expected .* \(2,\)",
    ),
    "demand_nan": (
        "demand_kw",
        np.array([1.0, np.nan]),
        r"demand_kw\[1\] = nan; expected a finite number >= 0",
    ),
    "demand_negative": (
        "demand_kw",
        np.array([1.0, -2.0]),
        r"demand_kw\[1\] = -2.0; expected a finite number",
    ),
    "capacity_nan": ("capacity_kw", np.array([1.0, np.nan, 1.0]), r"capacity_kw\[1\] = nan; expected"),
    "capacity_negative": ("capacity_kw", np.array([1.0, -1.0, 1.0]), r"capacity_kw\[1\] = -1.0; expected"),
    "capacity_shape": ("capacity_kw", np.ones(4), r"capacity_kw: received .*\(4,\); expected .*\(3,\)"),
    "unit_nan": ("unit_usd_per_wh", np.full((2, 3), np.nan), r"unit_usd_per_wh\[0, 0\] = nan; expected"),
    "unit_list": ("unit_usd_per_wh", [[0.0] * 3] * 2, r"unit_usd_per_wh: received list; expected a float64"),
    "reachable_int": ("reachable", np.ones((2, 3), dtype=np.int64), r"reachable: received ndarray int64"),
    "keys_duplicate": (
        "group_keys",
        ("a", "a"),
        r"group_keys = \('a', 'a'\); expected a tuple of distinct str",
    ),
    "keys_list": ("group_keys", ["a", "b"], r"group_keys = \['a', 'b'\]; expected a tuple"),
}


@pytest.mark.parametrize("case", INVALID)
def test_invalid_input_raises_value_error_naming_field_and_value(case: str) -> None:
    """Invalid input is a programming error: ValueError naming the field, the value and the expectation."""
    field, value, message = INVALID[case]
    with pytest.raises(ValueError, match=message):
        CapacityResolver(3, penalty_usd_per_wh=PENALTY).solve(_invalid(str(field), value))


def test_non_finite_cost_is_allowed_where_unreachable() -> None:
    """Costs need only be finite where the group can reach the region (masked pairs may hold inf or nan)."""
    unit = np.array([[1e-4, np.inf, np.nan]])
    inp = ResolveInput(("a",), np.ones(1), unit, np.array([[True, False, False]]), np.ones(3))
    res = solve(inp)
    assert_optimal(dataclasses.replace(inp, unit_usd_per_wh=np.nan_to_num(unit)), res)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_regions": 0}, r"n_regions = 0; expected an int >= 1"),
        ({"n_regions": 3, "penalty_usd_per_wh": math.nan}, r"penalty_usd_per_wh = nan; expected a finite"),
        ({"n_regions": 3, "time_limit_s": -1.0}, r"time_limit_s = -1.0; expected a number >= 0"),
    ],
)
def test_invalid_constructor_arguments_raise(kwargs: dict[str, float], message: str) -> None:
    """Bad constructor arguments raise ValueError naming the argument and the value."""
    args = {"penalty_usd_per_wh": PENALTY, **kwargs}
    n = args.pop("n_regions")
    with pytest.raises(ValueError, match=message):
        CapacityResolver(n, **args)  # type: ignore[arg-type]  # n is an int or a deliberately bad value


# --- packaging and benchmark -------------------------------------------------------------------------------


def test_resolve_imports_no_asyncio_or_kafka() -> None:
    """router.resolve stays in the pure core: importing it loads no asyncio and no Kafka library."""
    code = (
        "import sys, router.resolve; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('asyncio', 'aiokafka', 'faust', 'kafka')]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_time_warm_solve_reports_cold_and_warm_times() -> None:
    """The microbenchmark returns two positive wall times and raises nothing on a small instance."""
    cold, warm = time_warm_solve(10, 6, repeats=3)
    assert cold > 0
    assert warm > 0
