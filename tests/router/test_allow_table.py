"""Jurisdiction masks: bit words per request, matched case-insensitively, memo bounded whatever arrives."""

from __future__ import annotations

import tracemalloc

import pytest

from router.plan import ALLOW_MEMO_CODES, ALLOW_MEMO_SIZE, Plan, bit_words
from router.topology import load_topology


def _allowed(words: tuple[int, ...], n: int) -> list[bool]:
    return [bool((words[j >> 6] >> (j & 63)) & 1) for j in range(n)]


def test_a_flood_of_new_lists_keeps_the_memo_bounded() -> None:
    """50,000 distinct allowed_jurisdictions lists never hold more than ALLOW_MEMO_SIZE lists in the memo."""
    masks = Plan(load_topology(None)).allow
    seen = set()
    for k in range(50_000):
        codes = (f"X{k}",) if k % 3 == 0 else (f"X{k}", "DE") if k % 3 == 1 else (f"X{k}", "EU")
        seen.add(masks.words(codes))
        assert len(masks.memo) <= ALLOW_MEMO_SIZE
    assert len(seen) == 3  # nothing, Germany, the EU


@pytest.mark.slow  # ~15 s: many long allow lists to show memory stays flat
def test_long_lists_are_not_remembered_and_memory_stays_flat() -> None:
    """2,000 distinct 12,500-code lists (a hostile flood) keep no list: memory stays flat."""
    masks = Plan(load_topology(None)).allow
    lists = [(*(f"C{k}-{i}" for i in range(12_500)), "DE") for k in range(50)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for k in range(2_000):
        masks.words(lists[k % 50][: 12_500 - k % 7])
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert all(len(key or ()) <= ALLOW_MEMO_CODES for key in masks.memo)
    assert grown < 1_000_000, f"{grown} bytes kept"


def test_masks_match_jurisdictions_and_tags_in_any_case() -> None:
    """A list's mask allows exactly the regions whose jurisdiction or a tag is in it, ignoring case."""
    plan = Plan(load_topology(None))
    regions = plan.topology.regions
    n = len(regions)
    for codes in [("DE",), ("eu",), ("ZZ",), ("de", "JP"), ("EU", "Eu")]:
        upper = {c.upper() for c in codes}
        want = [r.jurisdiction in upper or bool(set(r.tags) & upper) for r in regions]
        assert _allowed(plan.allow.words(codes), n) == want
    assert all(_allowed(plan.allow.words(None), n))


def test_bit_words_round_trip_past_64_regions() -> None:
    """Region j is bit j % 64 of word j // 64, with bit 63 as the sign bit of an int64."""
    row = [j % 3 == 0 or j == 63 for j in range(130)]
    words = bit_words(row)
    assert len(words) == 3
    assert all(-(1 << 63) <= w < 1 << 63 for w in words)
    assert _allowed(words, 130) == row
