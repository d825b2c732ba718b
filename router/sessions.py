"""The sticky sessions' table: session id -> a slot of the kernel's ``Sessions`` arrays
(router/kernel/_sessions.py).

Each slot holds the session's region (-1: none yet), when it came there and its latest placed request's time;
the kernel reads and updates them in event order, so two requests of one session in one batch see each
other. The table is bounded (``max_sessions``, default 1,000,000): a new session beyond it takes the slot
of the least recently used one, counted in ``evicted``. Expiry is the kernel's rule (a session whose latest
request is more than ``session_ttl_s`` old is new again), so the table never decides by wall time, and the
replay and a worker keep the same table for the same requests. Live, ``entries`` are what a worker
publishes on ``router.sessions`` and ``restore`` what it reads back on a partition assignment.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from router.kernel.columns import SES_F_COLS, SES_I_COLS, SES_LAST, SES_REGION, SES_SINCE
from router.kernel.structs import Sessions
from router.plan import FloatArray, IntArray

__all__ = ["MAX_SESSIONS", "SessionEntry", "SessionTable"]

#: Default bound of the table.
MAX_SESSIONS = 1_000_000

#: (session id, region index, since, last)
SessionEntry = tuple[str, int, float, float]


class SessionTable:
    """Session id -> slot, with the kernel's arrays; least recently used eviction past ``max_sessions``."""

    def __init__(self, max_sessions: int = MAX_SESSIONS, initial: int = 256) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions {max_sessions!r}; expected at least 1")
        self.max_sessions = max_sessions
        size = min(initial, max_sessions)
        self.f: FloatArray = np.zeros((size, SES_F_COLS), dtype=np.float64)
        self.i: IntArray = np.full((size, SES_I_COLS), -1, dtype=np.int64)
        self._slots: OrderedDict[str, int] = OrderedDict()
        self._used = 0
        self._view: Sessions | None = None
        #: sessions dropped to keep the bound
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._slots)

    def kernel(self) -> Sessions:
        """The kernel's view of the table: one object until a new slot grows the arrays."""
        view = self._view
        if view is None:
            view = self._view = Sessions(self.f, self.i)
        return view

    def _new_slot(self) -> int:
        if len(self._slots) >= self.max_sessions:
            _, slot = self._slots.popitem(last=False)
            self.evicted += 1
        elif self._used < self.f.shape[0]:
            slot, self._used = self._used, self._used + 1
        else:
            grow = min(2 * self.f.shape[0], self.max_sessions)
            self.f = np.concatenate([self.f, np.zeros((grow - self.f.shape[0], SES_F_COLS))])
            pad = np.full((grow - self.i.shape[0], SES_I_COLS), -1, dtype=np.int64)
            self.i = np.concatenate([self.i, pad])
            self._view = None
            slot, self._used = self._used, self._used + 1
        self.f[slot, :] = 0.0
        self.i[slot, :] = -1
        return slot

    def slot(self, session_id: str) -> int:
        """The slot of ``session_id``, a fresh one for a session not held; marks it most recently used."""
        got = self._slots.get(session_id)
        if got is None:
            got = self._slots[session_id] = self._new_slot()
        else:
            self._slots.move_to_end(session_id)
        return got

    def assign(self, session_ids: Sequence[str | None]) -> IntArray:
        """One slot per request (-1: no session)."""
        return np.array([-1 if s is None else self.slot(s) for s in session_ids], dtype=np.int64)

    def entries(self, session_ids: Sequence[str | None]) -> list[SessionEntry]:
        """The held state of each distinct session named (in first-seen order) that has a region."""
        out: list[SessionEntry] = []
        seen: set[str] = set()
        for s in session_ids:
            if s is None or s in seen or s not in self._slots:
                continue
            seen.add(s)
            k = self._slots[s]
            r = int(self.i[k, SES_REGION])
            if r >= 0:
                out.append((s, r, float(self.f[k, SES_SINCE]), float(self.f[k, SES_LAST])))
        return out

    def restore(self, entry: SessionEntry) -> bool:
        """Take a remembered session's state unless the table holds a later one; True when taken."""
        s, region, since, last = entry
        k = self._slots.get(s)
        if k is not None and self.i[k, SES_REGION] >= 0 and self.f[k, SES_LAST] >= last:
            return False
        k = self.slot(s)
        self.i[k, SES_REGION] = region
        self.f[k, SES_SINCE], self.f[k, SES_LAST] = since, last
        return True
