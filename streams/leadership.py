"""Who re-solves, and proof of it: terms handed out by the request group's own assignment, signed shares.

The request consumer group (streams/dataplane.py) assigns partitions with ``TermAssignor``: the group's
leader (the member Kafka chose to run the assignment) spreads partitions round-robin and gives every member
the same **term**: an ``epoch`` (one more than any epoch a member reports, so epochs grow across leaders and
restarts), the leader's worker id, and a fresh 32-byte secret key. A term reaches only the group's members
(in their SyncGroup answers), never a topic. The term's leader alone re-solves the capacity LP; each shares
message it publishes carries ``epoch``, ``seq`` (its solve count in the term), ``version = epoch * 2**32 +
seq`` and ``mac``, an HMAC-SHA256 of the rest keyed by the term's secret.

A worker applies a shares message only when it verifies under the term of its epoch (``verify``): a message
from anyone but that term's leader (forged), or from an older term published after the newer one began
(a zombie leader), is refused; ``SharesMessage`` bounds every number (duals finite, 0 to 1000 USD/Wh). A
term's new leader republishes the shares installed at hand-over, signed in its own term, so duals survive a
change of leader. The ACLs that keep anyone else off the state topics are in deploy/README.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata
from pydantic import ValidationError

from router.bounds import MAX_EPOCH, MAX_SEQ
from router.models import SharesMessage
from router.problems import problems_from_validation

__all__ = [
    "EPOCH_STEP",
    "Leadership",
    "Term",
    "TermAssignor",
    "Verdict",
    "judge",
    "next_seq",
    "sign",
    "verify",
]

log = structlog.get_logger("carbon_router.leadership")

#: terms whose keys a worker keeps, to judge messages of recent terms
_KEPT_TERMS = 8


@dataclass(frozen=True, slots=True)
class Term:
    """One leadership term of the request group."""

    epoch: int
    leader: str
    key: bytes


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in obj.items() if k != "mac"}, option=orjson.OPT_SORT_KEYS)


def sign(obj: dict[str, Any], term: Term) -> bytes:
    """The shares message ``obj`` (with ``epoch`` and ``leader`` of ``term``) as signed JSON bytes."""
    body = {**obj, "epoch": term.epoch, "leader": term.leader}
    body["mac"] = hmac.new(term.key, _canonical(body), hashlib.sha256).hexdigest()
    return orjson.dumps(body)


def verify(obj: Mapping[str, Any], msg: SharesMessage, term: Term | None) -> str | None:
    """None when ``msg`` (parsed from ``obj``) carries a valid signature of ``term``, else why not."""
    if term is None:
        return f"epoch {msg.epoch} is not a term this worker knows"
    if msg.leader != term.leader:
        return f"leader {msg.leader!r} is not the leader of epoch {term.epoch} ({term.leader!r})"
    if msg.version != (msg.epoch << 32) + msg.seq:
        return f"version {msg.version} is not epoch * 2**32 + seq"
    want = hmac.new(term.key, _canonical(obj), hashlib.sha256).hexdigest()
    if msg.mac is None or not hmac.compare_digest(msg.mac, want):
        return "signature does not verify under the term's key (forged or altered)"
    return None


#: the most one shares record read on the topic moves the known epoch up (``Leadership.saw_epoch``)
EPOCH_STEP = 64


class Leadership:
    """The terms this worker has seen, the current one, and whether it leads."""

    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.terms: dict[int, Term] = {}
        self.current: Term | None = None
        #: the largest epoch of a term seen (reported when joining, so epochs grow while any member lives)
        self.known_epoch = 0
        self._listeners: list[Callable[[Term], None]] = []
        #: wall time each known term began here
        self.entered_at: dict[int, float] = {}

    @property
    def is_leader(self) -> bool:
        """True while this worker leads the current term."""
        return self.current is not None and self.current.leader == self.worker_id

    def on_term(self, listener: Callable[[Term], None]) -> None:
        """Call ``listener`` with every new term."""
        self._listeners.append(listener)

    def saw_epoch(self, epoch: int) -> None:
        """An epoch read on ``router.shares`` (bounded by ``SharesMessage``): terms handed out from now on
        follow it, also after the whole group restarted and no member remembers its term.

        The record may be unverifiable (its term's key died with the old group), so one record moves the
        known epoch up by at most ``EPOCH_STEP``: the group's own history climbs one epoch per term and is
        followed record by record, while a forged record with a huge epoch cannot push every later term to
        the cap (where new leaders' versions would stop growing)."""
        self.known_epoch = max(self.known_epoch, min(epoch, self.known_epoch + EPOCH_STEP))

    def enter(self, term: Term) -> None:
        """A new term from the group's assignment."""
        if self.current is not None and term.epoch <= self.current.epoch:
            log.warning("term_not_newer", epoch=term.epoch, current=self.current.epoch)
        self.terms[term.epoch] = term
        self.entered_at[term.epoch] = time.time()
        for old in sorted(self.terms)[:-_KEPT_TERMS]:
            del self.terms[old]
            self.entered_at.pop(old, None)
        self.current = term
        self.known_epoch = max(self.known_epoch, term.epoch)
        log.info("term_entered", epoch=term.epoch, leader=term.leader, is_leader=self.is_leader)
        for listener in self._listeners:
            listener(term)


class TermAssignor(AbstractPartitionAssignor):  # type: ignore[misc]  # aiokafka ships no types
    """Round-robin partitions plus a term in every member's assignment (see the module docstring)."""

    name = "carbon-router-term-v1"
    version = 0

    def __init__(self, leadership: Leadership) -> None:
        self.leadership = leadership

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """Subscription plus this member's worker id and the largest epoch it knows."""
        ld = self.leadership
        user = orjson.dumps({"worker": ld.worker_id, "epoch": ld.known_epoch})
        return ConsumerProtocolMemberMetadata(self.version, list(topics), user)

    def assign(
        self, cluster: Any, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """Run on the group's leader: partitions round-robin, one new term for all members."""
        base = RoundRobinPartitionAssignor.assign(cluster, members)
        epoch = self.leadership.known_epoch
        for meta in members.values():
            epoch = max(epoch, _reported_epoch(meta.user_data))
        epoch = min(epoch + 1, MAX_EPOCH)
        term = orjson.dumps(
            {"epoch": epoch, "leader": self.leadership.worker_id, "key": secrets.token_hex(32)}
        )
        return {
            member: ConsumerProtocolMemberAssignment(a.version, a.assignment, term)
            for member, a in base.items()
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Enter the term the leader handed out with this assignment."""
        try:
            got = orjson.loads(assignment.user_data)
            term = Term(epoch=int(got["epoch"]), leader=str(got["leader"]), key=bytes.fromhex(got["key"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.error("term_unreadable", error=repr(exc)[:200])
            return
        self.leadership.enter(term)


def _reported_epoch(user_data: bytes) -> int:
    try:
        got = orjson.loads(user_data)
        return max(0, min(int(got.get("epoch", 0)), MAX_EPOCH))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return 0


def next_seq(seq: int) -> int:
    """The next solve count in a term (bounded: a term of 2**32 solves keeps its last count)."""
    return min(seq + 1, MAX_SEQ)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a worker makes of one ``router.shares`` record."""

    #: applied, forged, stale, invalid or ahead (a term this worker has not entered yet: wait for it)
    outcome: str
    msg: SharesMessage | None = None
    problem: str | None = None
    field: str | None = None


#: a message of an older term is stale when its own (signed) ``ts`` is this long after the newer term began
_STALE_GRACE_S = 1.0


def judge(value: bytes | None, leadership: Leadership) -> Verdict:
    """Parse, bound and verify one shares record against the terms this worker knows."""
    try:
        obj = orjson.loads(value or b"")
        msg = SharesMessage.model_validate_json(value or b"")  # integers beyond 64 bits stay integers
    except ValidationError as exc:  # in the words of every other message (router.problems)
        first = problems_from_validation(exc, "", model=SharesMessage)[0]
        return Verdict("invalid", problem=f"not a valid shares message: {first.error}", field=first.field)
    except (orjson.JSONDecodeError, ValueError) as exc:
        problem = f"not a valid shares message: not valid JSON ({str(exc)[:200]}); expected a JSON object"
        return Verdict("invalid", problem=problem)
    current = leadership.current
    term = leadership.terms.get(msg.epoch)
    if term is None and (current is None or msg.epoch > current.epoch):
        return Verdict("ahead", msg=msg)
    why = verify(obj, msg, term)
    if why is not None:
        return Verdict("forged", msg=msg, problem=why, field="mac" if "signature" in why else "leader")
    if current is not None and msg.epoch < current.epoch:
        began = leadership.entered_at.get(current.epoch)
        if began is not None and msg.ts > began + _STALE_GRACE_S:
            return Verdict(
                "stale",
                msg=msg,
                problem=f"published by the leader of epoch {msg.epoch} after epoch {current.epoch} began",
                field="epoch",
            )
    return Verdict("applied", msg=msg)
