"""The dedup memory (router/dedup.py): the values of the latest ids, byte for byte, in pages freed whole."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.dedup import MAX_VALUE_BYTES, DedupMemory


def _value(rid: str, n: int) -> bytes:
    """A value of ``n`` bytes that names its id (so a value read from the wrong place shows)."""
    head = f"{{{rid}:".encode()
    return (head + b"x" * n)[:n] if n >= len(head) else head[:n]


def test_values_come_back_byte_for_byte_across_pages() -> None:
    memory = DedupMemory(100, page_bytes=64)
    values = {f"r{k}": _value(f"r{k}", 10 + 7 * k % 50) for k in range(40)}
    memory.keep_many(list(values), list(values.values()))
    assert memory.pages > 1
    for rid, value in values.items():
        assert memory.get(rid) == value
    assert memory.get("absent") is None


def test_only_the_latest_size_ids_are_kept_and_old_pages_are_freed() -> None:
    memory = DedupMemory(10, page_bytes=100)
    for k in range(1000):
        memory.keep(f"r{k}", _value(f"r{k}", 30))
    assert len(memory) == 10
    assert "r999" in memory
    assert "r990" in memory
    assert "r989" not in memory
    assert memory.get("r995") == _value("r995", 30)
    # 10 values of 30 bytes lie on at most 5 pages of 100 bytes (3 to a page, the oldest page partly old)
    assert memory.pages <= 5
    assert memory.held_bytes == (memory.pages + 1) * 100  # and the spare page


def test_a_value_longer_than_a_page_gets_a_page_of_its_own() -> None:
    memory = DedupMemory(5, page_bytes=16)
    big = _value("big", 100)
    memory.keep_many(["a", "big", "b"], [b"aaaa", big, b"bbbb"])
    assert [memory.get(r) for r in ("a", "big", "b")] == [b"aaaa", big, b"bbbb"]
    assert memory.held_bytes >= 100 + 16


def test_keeping_an_id_again_makes_it_the_newest() -> None:
    memory = DedupMemory(3, page_bytes=8)
    for rid in ("a", "b", "c"):
        memory.keep(rid, rid.encode() * 4)
    memory.keep("a", b"A2")
    memory.keep("d", b"dddd")  # pushes out the oldest: b, not a
    assert "b" not in memory
    assert [memory.get(r) for r in ("a", "c", "d")] == [b"A2", b"cccc", b"dddd"]


def test_ids_kept_again_and_again_do_not_grow_the_pages() -> None:
    """One old id stays the oldest while two others are kept again 10,000 times: without compaction every
    page since the old id's would stay held."""
    memory = DedupMemory(10, page_bytes=64)
    memory.keep("old", b"o" * 20)
    for k in range(10_000):
        memory.keep(f"hot{k % 2}", _value(f"hot{k}", 20))
    kept = [memory.get(r) for r in ("old", "hot0", "hot1")]
    assert kept == [b"o" * 20, _value("hot9998", 20), _value("hot9999", 20)]
    assert memory.held_bytes <= 2 * (60 + 64) + 64


def test_forgetting_the_oldest_frees_its_page_and_keeps_the_others() -> None:
    memory = DedupMemory(10, page_bytes=8)
    for rid in ("a", "b", "c"):
        memory.keep(rid, rid.encode() * 8)  # one page each
    assert memory.pages == 3
    memory.forget("a")
    memory.forget("never kept")
    assert memory.pages == 2
    assert [memory.get(r) for r in ("a", "b", "c")] == [None, b"b" * 8, b"c" * 8]
    memory.forget("b")
    memory.forget("c")
    assert len(memory) == 0
    assert memory.pages == 0
    assert memory.held_bytes == 0


def test_a_value_it_cannot_place_is_refused_and_nothing_of_the_batch_is_kept() -> None:
    memory = DedupMemory(10)
    with pytest.raises(ValueError, match="bytes"):
        memory.keep_many(["ok", "huge"], [b"x", bytes(MAX_VALUE_BYTES + 1)])
    assert len(memory) == 0
    with pytest.raises(ValueError, match="request ids"):
        memory.keep_many(["a", "b"], [b"x"])
    with pytest.raises(ValueError, match="size"):
        DedupMemory(0)


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("keep"), st.lists(st.tuples(st.integers(0, 30), st.integers(0, 90)), max_size=12)),
        st.tuples(st.just("forget"), st.integers(0, 30)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=_OPS, size=st.integers(1, 12), page_bytes=st.integers(1, 120))
def test_it_answers_as_an_ordered_dict_of_the_latest_ids(
    ops: list[tuple[str, object]], size: int, page_bytes: int
) -> None:
    """Against the plain model (an OrderedDict, a re-kept id moved to the newest end, the oldest dropped
    beyond ``size``): the same ids, the same values, and pages within twice the live values plus two, and
    the spare page."""
    memory, model = DedupMemory(size, page_bytes=page_bytes), OrderedDict[str, bytes]()
    for step, (op, arg) in enumerate(ops):
        if op == "keep":
            batch = [(f"r{i}", _value(f"r{i}.{step}", n)) for i, n in arg]  # type: ignore[attr-defined]
            memory.keep_many([r for r, _ in batch], [v for _, v in batch])
            for rid, value in batch:
                model.pop(rid, None)
                model[rid] = value
            while len(model) > size:
                model.popitem(last=False)
        else:
            memory.forget(f"r{arg}")
            model.pop(f"r{arg}", None)
        assert len(memory) == len(model)
        assert all(memory.get(rid) == value for rid, value in model.items())
        assert all(f"r{i}" not in memory for i in range(31) if f"r{i}" not in model)
        assert memory.live_bytes == sum(map(len, model.values()))
        assert memory.held_bytes <= 2 * (memory.live_bytes + page_bytes) + page_bytes  # and the spare
