"""Per-region priors: the last-resort value that may stand in when a value and its forecast are both stale.

A region of the topology may carry ``prior = {price_usd_per_mwh = .., marginal_gco2_per_kwh = ..}`` (an
annual average from public data; the bundled ones are computed by scripts/build_bundled_data.py, provenance
in router/data/PROVENANCE.md) and ``on_stale = {price = "mask" | "prior", carbon = "mask" | "prior"}``. Per
value kind, ``mask`` (the default) keeps the stale value, so the freshness filter removes the region unless it
is the home region; ``prior`` lets the prior stand in, the region counts as fresh for that value and its
placements say ``signal_source: "prior"`` (router/kernel/_values.py; docs/model.md, "Freshness"). A prior
never stands in for a value never signalled (the topology's constant does, or nothing).

``PriorFields`` holds the two tables and their rule (``on_stale`` ``prior`` needs that prior value), so that
``router.topology.Region`` gains them by inheritance; ``prior_columns`` gives ``router.state`` the kernel's
columns. An invalid table stops the command with exit 2 naming the field, the value and what is allowed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from router.bounds import MAX_GCO2_PER_KWH, MAX_PRICE_USD_PER_MWH, MIN_PRICE_USD_PER_MWH

__all__ = ["OnStale", "Prior", "PriorFields", "prior_columns"]

_CFG = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)
OnStaleRule = Literal["mask", "prior"]


class Prior(BaseModel):
    """A region's prior values: USD/MWh and marginal g CO2/kWh, each optional."""

    model_config = _CFG

    price_usd_per_mwh: Annotated[float, Field(ge=MIN_PRICE_USD_PER_MWH, le=MAX_PRICE_USD_PER_MWH)] | None = (
        None
    )
    marginal_gco2_per_kwh: Annotated[float, Field(ge=0, le=MAX_GCO2_PER_KWH)] | None = None


class OnStale(BaseModel):
    """What a stale value (live and forecast both stale) does, per kind: ``mask`` or ``prior``."""

    model_config = _CFG

    price: OnStaleRule = "mask"
    carbon: OnStaleRule = "mask"


class PriorFields(BaseModel):
    """The two tables of a region (``router.topology.Region`` inherits them)."""

    model_config = _CFG

    prior: Prior = Prior()
    on_stale: OnStale = OnStale()

    @field_validator("on_stale")
    @classmethod
    def _prior_given(cls, rule: OnStale, info: ValidationInfo) -> OnStale:
        prior = info.data.get("prior")
        if prior is None:  # the prior table itself was refused; that error is reported
            return rule
        for kind, field in (("price", "price_usd_per_mwh"), ("carbon", "marginal_gco2_per_kwh")):
            if getattr(rule, kind) == "prior" and getattr(prior, field) is None:
                raise PydanticCustomError(
                    "prior_missing",
                    "{problem}",
                    {
                        "problem": f'on_stale.{kind} is "prior" but the region has no prior.{field}',
                        "expected": f'"mask", or give prior.{field} (e.g. an annual average)',
                    },
                )
        return rule


def prior_columns(region: PriorFields) -> tuple[float, float, int, int]:
    """(prior price, prior carbon, use the price prior, use the carbon prior) for the kernel's region
    columns (router.kernel.columns ``PRIOR_PRICE``, ``PRIOR_CARBON``, ``USE_PRIOR_PRICE``,
    ``USE_PRIOR_CARBON``); 0 where a prior is not given."""
    p = region.prior
    return (
        p.price_usd_per_mwh if p.price_usd_per_mwh is not None else 0.0,
        p.marginal_gco2_per_kwh if p.marginal_gco2_per_kwh is not None else 0.0,
        int(region.on_stale.price == "prior"),
        int(region.on_stale.carbon == "prior"),
    )
