"""The typed wrapper refuses malformed kernel inputs before they reach compiled code."""

from __future__ import annotations

import numpy as np
import pytest

from router.models import Request
from router.plan import Plan, RequestArrays
from router.scoring import Scorer
from tests.router.test_replay import TOPO


def _batch(plan: Plan) -> RequestArrays:
    req = Request(request_id="r", origin="fe", latency_budget_ms=100.0, energy_wh=1.0, ts=1.0)
    return plan.arrays([req], [plan.request_row(req, ts=1.0, source="t")])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_never_reach_the_kernel(bad: float) -> None:
    """A non-finite request or region value raises ValueError in the wrapper, naming the array."""
    plan = Plan(TOPO)
    scorer = Scorer(plan)
    b = _batch(plan)
    b.f[0, 2] = bad
    with pytest.raises(ValueError, match=r"req\.f holds NaN or inf"):
        scorer.decide(b)
    b = _batch(plan)
    scorer.state.f[0, 0] = bad
    with pytest.raises(ValueError, match="reg holds NaN or inf"):
        scorer.decide(b)
    scorer.state.f[0, 0] = 1.2
    scorer.state.val[0, 0, 0] = bad
    with pytest.raises(ValueError, match="reg holds NaN or inf"):
        scorer.decide(_batch(plan))


def test_wrong_dtype_or_layout_is_refused() -> None:
    """Arrays of the wrong dtype or not C-contiguous are refused with the expected dtype and shape."""
    plan = Plan(TOPO)
    scorer = Scorer(plan)
    b = _batch(plan)
    f32 = RequestArrays(ids=b.ids, origins=b.origins, f=b.f.astype(np.float32), i=b.i, allow=b.allow)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"req\.f: got float32\(1, 6\), expected float64\(1, 6\)"):
        scorer.decide(f32)
    fortran = RequestArrays(
        ids=b.ids, origins=b.origins, f=np.asfortranarray(np.tile(b.f, (1, 2)))[:, ::2], i=b.i, allow=b.allow
    )
    with pytest.raises(TypeError, match="C-order"):
        scorer.decide(fortran)


def test_capacity_windows_grow_without_losing_entries() -> None:
    """A batch larger than the ring buffers grows them; every placement stays booked in the window."""
    plan = Plan(TOPO)
    scorer = Scorer(plan)
    from router.models import GridSignal

    scorer.state.apply_signal(
        GridSignal(region="home", ts=0.0, price_usd_per_mwh=50.0, marginal_gco2_per_kwh=1.0)
    )
    reqs = [
        Request(request_id=f"r{k}", origin="fe", latency_budget_ms=100.0, energy_wh=0.001, ts=1.0)
        for k in range(3000)
    ]
    batch = plan.arrays(reqs, [plan.request_row(r, ts=1.0, source="t") for r in reqs])
    dec = scorer.decide(batch)
    assert (dec.out_i[:, 0] == 0).all()
    assert scorer.windows.len[0] == 3000
    assert scorer.windows.used_wh()[0] == pytest.approx(3.0)
