"""A batch's placements as the counters read them: the kernel's columns, with dicts only on demand.

``Decider.decide`` encodes the placements it decides straight from the kernel's columns
(``router.columnar``), so no dict is built on the plain path. ``Placements`` is what it hands back: a
``Sequence`` of placement dicts that parses a message value (``orjson.loads``, the same dict as the one the
value was encoded from) only when an item is read, and that carries the ``DecisionColumns`` of its new
decisions, which ``router.totals.Totals.add`` and the worker's metrics read instead of the dicts. The
placements no columns cover (repeats answered from the dedup memory, a batch the columnar encoder declined)
are counted from their dicts (``loose``). tests/router/test_columnar.py checks that both ways count the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast, overload

import numpy as np
import numpy.typing as npt
import orjson

from router.kernel.columns import (
    CHOICE,
    ENERGY_WH,
    FILTER_NAMES,
    HOME_CARBON_G,
    HOME_ENERGY_USD,
    HOME_VALUED,
    LAYER,
    LAYERS,
    ORIGIN,
    OUT_CARBON_G,
    OUT_EGRESS_USD,
    OUT_ENERGY_USD,
    OUT_SCORE_USD,
    REASON,
    RELOCATABLE,
    SESSION_MOVED,
    TENANT,
)
from router.placement import PlacementMessage

if TYPE_CHECKING:  # types only: the counters (router.totals) import this module without the kernel's
    from router.plan import Plan, RequestArrays
    from router.scoring import Decisions

__all__ = ["DecisionColumns", "Label", "Placements"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: a decision's (status, region, layer, reason), "none" for a null: the worker's ``decisions`` labels
Label = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class DecisionColumns:
    """What the counters read of one kernel call's placements, one entry per request (``placed`` only where
    the request was placed)."""

    regions: tuple[str, ...]
    #: the chosen region (-1: rejected), the home region, the layer, the reason code
    choice: IntArray
    home: IntArray
    layer: IntArray
    reason: IntArray
    relocatable: BoolArray
    home_valued: BoolArray
    energy_wh: FloatArray
    energy_usd: FloatArray
    carbon_g: FloatArray
    egress_usd: FloatArray
    score_usd: FloatArray
    home_energy_usd: FloatArray
    home_carbon_g: FloatArray
    #: the dual terms of the explanations (``dual_usd`` plus a tenant's ``dual_carbon_usd``); None: no
    #: explanations
    dual_usd: FloatArray | None
    #: requests with a session that moved
    session_moves: int

    @classmethod
    def of(cls, plan: Plan, batch: RequestArrays, dec: Decisions, *, explain: bool) -> DecisionColumns:
        """The columns of a decided batch (the values ``router.encode.placements`` writes)."""
        oi, of = dec.out_i, dec.out_f
        choice = oi[:, CHOICE].copy()
        placed = choice >= 0
        dual = None
        if explain:  # the terms' dual_usd + dual_carbon_usd (router.encode._Explainer; Totals._add_objective)
            tenant = batch.i[:, TENANT]
            budgeted = placed & (tenant >= 0)
            with np.errstate(over="ignore", invalid="ignore"):  # as Python's floats: inf, no warning
                dual = batch.f[:, ENERGY_WH] * dec.mu[np.where(placed, choice, 0)]
                if dec.nu is not None and budgeted.any():
                    carbon_dual = dec.nu[np.where(budgeted, tenant, 0)] * of[:, OUT_CARBON_G]
                    dual = dual + np.where(budgeted, carbon_dual, 0.0)
        moves = 0
        if batch.sessions:
            has = np.array([s is not None for s in batch.sessions], dtype=np.bool_)
            moves = int((has & (oi[:, SESSION_MOVED] == 1)).sum())
        return cls(
            regions=plan.region_ids,
            choice=choice,
            home=plan.home[batch.i[:, ORIGIN]],
            layer=oi[:, LAYER].copy(),
            reason=oi[:, REASON].copy(),
            relocatable=oi[:, RELOCATABLE] == 1,
            home_valued=oi[:, HOME_VALUED] == 1,
            energy_wh=batch.f[:, ENERGY_WH].copy(),
            energy_usd=of[:, OUT_ENERGY_USD].copy(),
            carbon_g=of[:, OUT_CARBON_G].copy(),
            egress_usd=of[:, OUT_EGRESS_USD].copy(),
            score_usd=of[:, OUT_SCORE_USD].copy(),
            home_energy_usd=of[:, HOME_ENERGY_USD].copy(),
            home_carbon_g=of[:, HOME_CARBON_G].copy(),
            dual_usd=dual,
            session_moves=moves,
        )

    def __len__(self) -> int:
        return len(self.choice)

    def labels(self) -> list[tuple[Label, int]]:
        """How many placements have each (status, region, layer, reason), in order of first appearance."""
        placed = self.choice >= 0
        key = np.stack(
            [self.choice, np.where(placed, self.layer, 0), np.where(placed, 0, self.reason)], axis=1
        )
        _, first, counts = np.unique(
            key[:, 0] * 2**40 + key[:, 1] * 2**20 + key[:, 2], return_index=True, return_counts=True
        )
        out: list[tuple[Label, int]] = []
        for k, n in sorted(zip(first.tolist(), counts.tolist(), strict=True)):
            c, lay, why = key[k].tolist()
            if c >= 0:
                out.append((("placed", self.regions[c], LAYERS[lay], "min_score"), n))
            else:
                out.append((("rejected", "none", "none", FILTER_NAMES[why - 1]), n))
        return out


class Placements(Sequence[PlacementMessage]):
    """A batch's placements in input order: their message values, the dicts of those that have one, the
    columns of the new decisions, and which placements no columns cover (``loose``)."""

    __slots__ = ("_dicts", "_loose", "columns", "request_ids", "values")

    def __init__(
        self,
        request_ids: list[str],
        values: list[bytes],
        dicts: list[PlacementMessage | None],
        columns: Sequence[DecisionColumns] = (),
        loose: Sequence[int] | None = None,
    ) -> None:
        """``loose`` are the positions no ``columns`` cover (default: all, when there are no columns)."""
        self.request_ids = request_ids
        self.values = values
        self._dicts = dicts
        self.columns = tuple(columns)
        self._loose = list(range(len(values))) if loose is None else list(loose)

    @classmethod
    def of_dicts(cls, placements: Sequence[PlacementMessage], values: list[bytes]) -> Placements:
        """Placements that are dicts already (and their values)."""
        return cls([p["request_id"] for p in placements], values, list(placements))

    @classmethod
    def join(cls, parts: Sequence[Placements]) -> Placements:
        """One sequence of several batches' placements."""
        ids: list[str] = []
        values: list[bytes] = []
        dicts: list[PlacementMessage | None] = []
        columns: list[DecisionColumns] = []
        loose: list[int] = []
        for p in parts:
            loose.extend(k + len(values) for k in p._loose)
            ids.extend(p.request_ids)
            values.extend(p.values)
            dicts.extend(p._dicts)
            columns.extend(p.columns)
        return cls(ids, values, dicts, columns, loose)

    @property
    def loose(self) -> list[PlacementMessage]:
        """The placements no columns cover, as dicts."""
        return [self[k] for k in self._loose]

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, k: int) -> PlacementMessage: ...
    @overload
    def __getitem__(self, k: slice) -> list[PlacementMessage]: ...
    def __getitem__(self, k: int | slice) -> PlacementMessage | list[PlacementMessage]:
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        p = self._dicts[k]
        if p is None:
            p = self._dicts[k] = cast(PlacementMessage, orjson.loads(self.values[k]))
        return p

    def __iter__(self) -> Iterator[PlacementMessage]:
        for k in range(len(self.values)):
            yield self[k]

    def __eq__(self, other: object) -> bool:
        """Equal to a list, a tuple or another ``Placements`` of equal placements, as a list would be."""
        if isinstance(other, Placements | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable (dicts parsed on demand), as a list

    def __repr__(self) -> str:
        return f"Placements({len(self)} placements, {len(self.columns)} column blocks)"
