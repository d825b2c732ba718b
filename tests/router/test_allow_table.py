"""The table of jurisdiction masks stays small and correct under a flood of distinct lists."""

from __future__ import annotations

from router.plan import ALLOW_MEMO_SIZE, Plan
from router.topology import load_topology


def test_a_flood_of_new_lists_adds_rows_only_for_new_masks() -> None:
    """50,000 distinct allowed_jurisdictions lists (unknown codes plus real ones) add at most 3 masks."""
    plan = Plan(load_topology(None))
    table = plan.allow
    base = table.n_rows
    for k in range(50_000):
        codes = (f"X{k}",) if k % 3 == 0 else (f"X{k}", "DE") if k % 3 == 1 else (f"X{k}", "EU")
        table.index(codes)
    assert table.n_rows - base <= 3
    assert len(table.rows) <= ALLOW_MEMO_SIZE


def test_masks_match_jurisdictions_and_tags() -> None:
    """A list's mask allows exactly the regions whose jurisdiction or a tag is in the list."""
    plan = Plan(load_topology(None))
    regions = plan.topology.regions
    for codes in [("DE",), ("EU",), ("ZZ",), ("DE", "JP"), ("EU", "EU")]:
        k = plan.allow.index(codes)  # may grow the array: read it after
        row = plan.allow.array[k]
        want = [r.jurisdiction in codes or bool(set(r.tags) & set(codes)) for r in regions]
        assert row.tolist() == want
    assert plan.allow.index(None) == 0 and plan.allow.array[0].all()
