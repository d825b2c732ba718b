"""The dedup memory: the message values of the latest ``size`` request ids decided, kept in pages.

A repeat of a request id the memory still holds gets the first decision's value byte for byte
(docs/contract.md, "Placements"). The values (700-900 bytes each, more with explanations) are copied into
pages of ``PAGE_BYTES`` in the order they are kept; an index maps each request id to where its value lies.
Values are forgotten oldest first, and a page is freed as a whole once no value on it is still indexed.

Why pages and not one ``bytes`` per id: 100,000 values of ~800 bytes are each one ``malloc`` block in glibc's
heap, freed one by one as the memory turns over, between the short-lived blocks of every batch. Measured with
a decider at 1k requests/s of event time (100,000 ids kept, batches of 1-80), the heap's free space in
holes grew from 2 to 12 MB over 1.2M decisions while the live bytes stayed at 113 MB, and a heap trim cannot
return a hole smaller than a page; with the memory off, the heap stayed flat. A page is one block above the
mmap threshold (``streams.memory``), so it is its own mapping and goes back to the system when freed.
"""

from __future__ import annotations

import bisect
import itertools
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import cast

__all__ = ["MAX_VALUE_BYTES", "PAGE_BYTES", "DedupMemory"]

#: the size of a page: ~1,300 placement values
PAGE_BYTES = 1 << 20
#: where a value lies, packed in one int: page number << 48 | offset << 24 | length
_SHIFT_PAGE, _SHIFT_OFFSET, _MASK = 48, 24, (1 << 24) - 1
#: the longest value the memory keeps (a placement is a few KiB; a longer value is refused, never cut)
MAX_VALUE_BYTES = _MASK


class DedupMemory:
    """Request id -> message value for the latest ``size`` ids kept (``size`` >= 1).

    Pages hold what lies between the oldest value kept and the newest. Values forgotten out of order (an
    abandoned batch, an id kept again) leave dead bytes there; when the pages hold more than twice the live
    values plus two pages, the live values are copied to new pages (``_compact``), so what is held stays
    within that bound whatever the order of keeps and forgets."""

    __slots__ = ("_fill", "_first_page", "_held", "_index", "_live", "_pages", "_spare", "page_bytes", "size")

    def __init__(self, size: int, *, page_bytes: int = PAGE_BYTES) -> None:
        if size < 1:
            raise ValueError(f"dedup memory size must be >= 1, got {size}")
        if not 1 <= page_bytes <= MAX_VALUE_BYTES:
            raise ValueError(f"page_bytes must be in 1..{MAX_VALUE_BYTES}, got {page_bytes}")
        self.size = size
        self.page_bytes = page_bytes
        #: request id -> packed place of its value, oldest first (places only grow along this order)
        self._index: OrderedDict[str, int] = OrderedDict()
        #: the pages held, oldest first, and a freed page kept for the next one opened (no new mapping, no
        #: page faults on it)
        self._pages: deque[memoryview] = deque()
        self._spare: memoryview | None = None
        self._reset()

    def _reset(self) -> None:
        """No pages: the next value opens one."""
        self._index.clear()
        self._pages.clear()
        self._spare = None
        #: the number of the first page held, how much of the last page is written, the bytes of the pages
        #: held and of the values indexed
        self._first_page, self._fill, self._held, self._live = 0, self.page_bytes, 0, 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._index

    @property
    def pages(self) -> int:
        """How many pages are held."""
        return len(self._pages)

    @property
    def held_bytes(self) -> int:
        """The bytes of the pages held, the spare one too."""
        return self._held + (0 if self._spare is None else len(self._spare))

    @property
    def live_bytes(self) -> int:
        """The bytes of the values kept."""
        return self._live

    def get(self, request_id: str) -> bytes | None:
        """The value kept for ``request_id`` (a copy), or None."""
        key = self._index.get(request_id)
        if key is None:
            return None
        page = (key >> _SHIFT_PAGE) - self._first_page
        offset, length = (key >> _SHIFT_OFFSET) & _MASK, key & _MASK
        return bytes(self._pages[page][offset : offset + length])

    def keep(self, request_id: str, value: bytes) -> None:
        """Keep one value (a request id kept before moves to the newest end), then forget the oldest
        beyond ``size``."""
        self.keep_many((request_id,), (value,))

    def keep_many(self, request_ids: Sequence[str], values: Sequence[bytes]) -> None:
        """Keep the values of a batch, in order, then forget the oldest beyond ``size``.

        Raises ValueError for a value longer than ``MAX_VALUE_BYTES`` (nothing of the batch is kept)."""
        if len(request_ids) != len(values):
            raise ValueError(f"{len(request_ids)} request ids for {len(values)} values")
        lengths = [len(v) for v in values]
        if lengths and max(lengths) > MAX_VALUE_BYTES:
            longest = max(lengths)
            raise ValueError(f"a value of {longest} bytes; the dedup memory keeps up to {MAX_VALUE_BYTES}")
        self._write(request_ids, values, lengths)
        index = self._index
        for _ in range(len(index) - self.size):
            self._live -= index.popitem(last=False)[1] & _MASK
        self._settle()

    def forget(self, request_id: str) -> None:
        """Forget one request id (nothing when it is not kept)."""
        key = self._index.pop(request_id, None)
        if key is not None:
            self._live -= key & _MASK
            self._settle()

    def _write(self, request_ids: Sequence[str], values: Sequence[bytes], lengths: list[int]) -> None:
        """Copy the values to the pages and index them (an id indexed before is moved to the newest end)."""
        index = self._index
        ends = list(itertools.accumulate(lengths, initial=0))  # ends[k]: the bytes of the values before k
        start = 0
        while start < len(values):
            room = self._room(lengths[start])
            stop = bisect.bisect_right(ends, ends[start] + room, lo=start + 1) - 1
            offset, page = self._fill, self._pages[-1]
            chunk = b"".join(values[start:stop])
            page[offset : offset + len(chunk)] = chunk
            base, shift = (self._first_page + len(self._pages) - 1) << _SHIFT_PAGE, offset - ends[start]
            ids = request_ids[start:stop]
            keys = [
                base | (at + shift) << _SHIFT_OFFSET | n
                for at, n in zip(ends[start:stop], lengths[start:stop], strict=True)
            ]
            if not index.keys().isdisjoint(ids) or len(set(ids)) < len(ids):
                for rid, key in zip(ids, keys, strict=True):  # places must grow along the index's order
                    old = index.pop(rid, None)
                    self._live -= 0 if old is None else old & _MASK
                    index[rid] = key
            else:
                index.update(zip(ids, keys, strict=True))
            self._live += len(chunk)
            self._fill = offset + len(chunk)
            start = stop

    def _room(self, length: int) -> int:
        """The room left in the last page, after opening a page (the spare one when it is free) if a value of
        ``length`` bytes does not fit it."""
        room = self.page_bytes - self._fill
        if length <= room and self._pages:
            return room
        if length <= self.page_bytes and self._spare is not None:
            page, self._spare = self._spare, None
        else:
            page = memoryview(bytearray(max(self.page_bytes, length)))
        self._pages.append(page)
        self._held += len(page)
        self._fill = 0
        return len(page)

    def _settle(self) -> None:
        """Free the pages before the one that holds the oldest value kept (all of them when none is; one
        page of the usual size stays as the spare), and compact when the pages hold more than twice the
        live values plus two pages."""
        if not self._index:
            self._reset()
            return
        oldest = next(iter(self._index.values())) >> _SHIFT_PAGE
        while self._first_page < oldest:
            page = self._pages.popleft()
            self._held -= len(page)
            self._first_page += 1
            if len(page) == self.page_bytes:
                self._spare = page
        if self._held > 2 * (self._live + self.page_bytes):
            self._compact()

    def _compact(self) -> None:
        """Copy the live values, oldest first, to new pages."""
        ids = list(self._index)
        values = [cast(bytes, self.get(rid)) for rid in ids]
        self._reset()
        self._write(ids, values, [len(v) for v in values])
