"""One stream: its messages, the limits that remove them, de-duplication and the publish
expectations (nats-server's stream.go processJetStreamMsg, on one server).

Messages are kept in memory, in sequence order, so every read (a message get, a consumer's
next message) is synchronous; a file stream also writes each change through to its
database (storage.py) and says when the write is committed. Storing is synchronous: a
captured message gets its sequence in the publisher's delivery, with nothing awaited.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import OrderedDict

from ..protocol.subjects import subject_matches
from . import errors
from .headers import header

#: nats-server's maximum header size of a stored message (64 KiB).
MAX_HEADER_SIZE = 64 * 1024

_NS = 1_000_000_000


def msg_size(storage: str, subject: str, hdr: bytes, data: bytes) -> int:
    """A message's size as nats-server accounts it (fileStoreMsgSize, memStoreMsgSize)."""
    if storage == "memory":
        return len(subject) + len(hdr) + len(data) + 16
    if hdr:
        return 22 + len(subject) + 4 + len(hdr) + len(data) + 8
    return 22 + len(subject) + len(data) + 8


class Stream:
    """A stream's state. `db` is None for memory storage."""

    def __init__(self, account: str, config: dict, created_ns: int, db=None) -> None:
        self.account = account
        self.config = config
        self.created_ns = created_ns
        self.db = db
        #: seq -> (subject, header bytes, payload, timestamp ns), in sequence order.
        self.msgs: OrderedDict[int, tuple] = OrderedDict()
        self.last_seq = 0
        self.last_ts = 0
        #: first_seq of an empty stream: 0 until something was stored, then last_seq + 1.
        self.empty_first = 0
        self.bytes = 0
        #: subject -> its sequences, ascending.
        self.subjects: dict[str, list[int]] = {}
        #: Nats-Msg-Id -> (seq, ts), oldest first, within the duplicate window.
        self.msg_ids: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self.last_msg_id = ""
        #: Sequences removed between the first and the last (sorted): nats-server's delete
        #: map, so counting the messages from a sequence on is a bisection.
        self.gaps: list[int] = []
        #: The consumers (consumer.py), by name.
        self.consumers: dict = {}
        #: Called with each newly stored sequence (the consumers waiting for messages).
        self.on_stored = []
        self.deleted = False
        first = config.get("first_seq", 0)
        if first > 1:
            self.last_seq = first - 1
            self.empty_first = first

    # --- reading -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def storage(self) -> str:
        return self.config["storage"]

    @property
    def first_seq(self) -> int:
        if self.msgs:
            return next(iter(self.msgs))
        return self.empty_first

    def state(self, *, deleted: bool = False, subjects: str = "") -> dict:
        """nats-server's StreamState (its omitempty fields left out when empty); with
        `subjects`, the message count of each subject that filter matches; with `deleted`,
        the interior sequences removed."""
        from .api import go_time

        count = len(self.msgs)
        first = self.first_seq
        first_ts = self.msgs[first][3] if count else 0
        state = {"messages": count, "bytes": self.bytes, "first_seq": first,
                 "first_ts": go_time(first_ts), "last_seq": self.last_seq,
                 "last_ts": go_time(self.last_ts)}  # fmt: skip
        if self.subjects:
            state["num_subjects"] = len(self.subjects)
        if subjects:
            totals = self.subject_totals(subjects)
            if totals:
                state["subjects"] = totals
        if count and self.gaps:
            state["num_deleted"] = len(self.gaps)
            if deleted:
                state["deleted"] = list(self.gaps)
        state["consumer_count"] = len(self.consumers)
        return state

    def subject_totals(self, subject_filter: str) -> dict[str, int]:
        """Each stored subject the filter matches, with its message count (sorted, as Go
        writes a map)."""
        pattern = subject_filter.encode()
        return {subject: len(seqs) for subject, seqs in sorted(self.subjects.items())
                if subject_matches(pattern, subject.encode())}  # fmt: skip

    def get(self, seq: int) -> tuple | None:
        return self.msgs.get(seq)

    def last_for(self, subject_filter: str) -> int:
        """The last sequence of a subject (a filter with wildcards: of any matching)."""
        if "*" not in subject_filter and ">" not in subject_filter:
            seqs = self.subjects.get(subject_filter)
            return seqs[-1] if seqs else 0
        pattern = subject_filter.encode()
        best = 0
        for subject, seqs in self.subjects.items():
            if seqs[-1] > best and subject_matches(pattern, subject.encode()):
                best = seqs[-1]
        return best

    def next_for(self, subject_filter: str, start: int) -> int:
        """The first sequence >= start whose subject matches the filter (0: none)."""
        if start <= self.first_seq and not subject_filter:
            return self.first_seq if self.msgs else 0
        pattern = subject_filter.encode() if subject_filter else None
        literal = pattern is not None and b"*" not in pattern and b">" not in pattern
        if literal:
            for seq in self.subjects.get(subject_filter, ()):
                if seq >= start:
                    return seq
            return 0
        for seq in self._seqs_from(start):
            if pattern is None or subject_matches(pattern, self.msgs[seq][0].encode()):
                return seq
        return 0

    def _seqs_from(self, start: int):
        if start <= self.first_seq:
            yield from list(self.msgs)
            return
        # Sequences are dense apart from deletions: walk from `start` up.
        for seq in range(start, self.last_seq + 1):
            if seq in self.msgs:
                yield seq

    # --- storing -----------------------------------------------------------------------

    def check(self, subject: str, hdr: bytes, data: bytes) -> tuple[str, int | None]:
        """A message's checks before it is stored: returns its Nats-Msg-Id ("" if none) and,
        for a duplicate, the sequence it already has; raises ApiError for a refusal."""
        config = self.config
        if config["sealed"]:
            raise errors.stream_sealed()
        if len(hdr) > MAX_HEADER_SIZE:
            raise errors.header_too_big()
        limit = config["max_msg_size"]
        if limit >= 0 and len(hdr) + len(data) > limit:
            raise errors.message_too_big()
        if not hdr:
            return "", None
        msg_id = header(hdr, "Nats-Msg-Id")
        if msg_id:
            known = self.msg_ids.get(msg_id)
            if known is not None:
                return msg_id, known[0]
        expected = header(hdr, "Nats-Expected-Stream")
        if expected and expected != self.name:
            raise errors.stream_not_match()
        expected = header(hdr, "Nats-Expected-Last-Sequence")
        if expected and _uint(expected) != self.last_seq:
            raise errors.wrong_last_sequence(self.last_seq)
        expected = header(hdr, "Nats-Expected-Last-Subject-Sequence")
        if expected:
            about = header(hdr, "Nats-Expected-Last-Subject-Sequence-Subject") or subject
            last = self.last_for(about)
            if _uint(expected) != last:
                raise errors.wrong_last_sequence(last)
        expected = header(hdr, "Nats-Expected-Last-Msg-Id")
        if expected and expected != self.last_msg_id:
            raise errors.wrong_last_msg_id(self.last_msg_id)
        rollup = header(hdr, "Nats-Rollup")
        if rollup:
            if not config["allow_rollup_hdrs"]:
                raise errors.ApiError(500, 10111, "rollup not permitted")
            if rollup not in ("sub", "all"):
                raise errors.ApiError(500, 10111, f"rollup value invalid: {rollup}")
        return msg_id, None

    def store(self, subject: str, hdr: bytes, data: bytes, now: int, msg_id: str = "") -> tuple[int, list[int]]:
        """Store a checked message: returns its sequence and the sequences the limits
        removed (to delete from the database). Raises ApiError when discard new refuses it."""
        config = self.config
        size = msg_size(self.storage, subject, hdr, data)
        if config["discard"] == "new":
            self._check_discard_new(subject, size)
        seq = self.last_seq + 1
        self.last_seq = seq
        self.last_ts = now
        self.msgs[seq] = (subject, hdr, data, now)
        self.bytes += size
        self.subjects.setdefault(subject, []).append(seq)
        if msg_id:
            self.msg_ids[msg_id] = (seq, now)
        self.last_msg_id = msg_id  # (the last message's, "" if it had none: nats-server's)
        removed: list[int] = []
        rollup = header(hdr, "Nats-Rollup") if hdr else ""
        if rollup == "all":
            removed += [s for s in self.msgs if s != seq]
        elif rollup == "sub":
            removed += self.subjects[subject][:-1]
        for old in removed:
            self._remove(old)
        removed += self.enforce_limits(now, subject)
        self.expire_msg_ids(now)
        return seq, removed

    def _check_discard_new(self, subject: str, size: int) -> None:
        config = self.config
        if 0 <= config["max_msgs"] <= len(self.msgs):
            raise errors.store_failed("maximum messages exceeded")
        if 0 <= config["max_bytes"] < self.bytes + size:
            raise errors.store_failed("maximum bytes exceeded")
        per = config["max_msgs_per_subject"]
        if config.get("discard_new_per_subject") and 0 <= per <= len(self.subjects.get(subject, ())):
            raise errors.store_failed("maximum messages per subject exceeded")

    def enforce_limits(self, now: int, subject: str | None = None) -> list[int]:
        """Remove what the limits no longer allow, oldest first; returns the sequences."""
        config = self.config
        removed = []
        per = config["max_msgs_per_subject"]
        if per >= 0 and subject is not None:
            seqs = self.subjects.get(subject, [])
            while len(seqs) > per:
                removed.append(seqs[0])
                self._remove(seqs[0])
                seqs = self.subjects.get(subject, [])
        elif per >= 0:
            for name in list(self.subjects):
                seqs = self.subjects.get(name, [])
                while len(seqs) > per:
                    removed.append(seqs[0])
                    self._remove(seqs[0])
                    seqs = self.subjects.get(name, [])
        max_msgs, max_bytes = config["max_msgs"], config["max_bytes"]
        while self.msgs and (0 <= max_msgs < len(self.msgs) or 0 <= max_bytes < self.bytes):
            first = next(iter(self.msgs))
            removed.append(first)
            self._remove(first)
        removed += self.expire(now)
        return removed

    def expire(self, now: int) -> list[int]:
        """Remove the messages older than max_age."""
        max_age = self.config["max_age"]
        removed = []
        if max_age:
            while self.msgs:
                first = next(iter(self.msgs))
                if now - self.msgs[first][3] < max_age:
                    break
                removed.append(first)
                self._remove(first)
        return removed

    def expire_msg_ids(self, now: int) -> None:
        window = self.config["duplicate_window"]
        ids = self.msg_ids
        while ids:
            msg_id, (seq, ts) = next(iter(ids.items()))
            if now - ts < window:
                break
            del ids[msg_id]

    def count_from(self, start: int) -> int:
        """How many messages have a sequence >= start."""
        if not self.msgs:
            return 0
        first = max(start, self.first_seq)
        if first > self.last_seq:
            return 0
        gaps = self.gaps
        return self.last_seq - first + 1 - (len(gaps) - bisect_left(gaps, first))

    def _remove(self, seq: int) -> bool:
        at_front = self.msgs and seq == next(iter(self.msgs))
        msg = self.msgs.pop(seq, None)
        if msg is None:
            return False
        gaps = self.gaps
        if not at_front:
            insort(gaps, seq)
        elif gaps:
            # The front moved: gaps now below the first sequence are no gaps any more.
            first = next(iter(self.msgs)) if self.msgs else self.last_seq + 1
            cut = bisect_left(gaps, first)
            if cut:
                del gaps[:cut]
        subject, hdr, data, _ts = msg
        self.bytes -= msg_size(self.storage, subject, hdr, data)
        seqs = self.subjects[subject]
        if seqs[0] == seq:
            del seqs[0]
        else:
            seqs.remove(seq)
        if not seqs:
            del self.subjects[subject]
        if not self.msgs:
            self.empty_first = self.last_seq + 1
        return True

    def delete(self, seq: int) -> bool:
        return self._remove(seq)

    def purge(self, subject_filter: str = "", upto: int = 0, keep: int = 0) -> list[int]:
        """Remove messages (all, or a subject filter's), below `upto` if given, keeping the
        last `keep` of them; returns the sequences removed (nats-server's PurgeEx)."""
        if subject_filter and subject_filter != ">":
            pattern = subject_filter.encode()
            seqs = sorted(s for name, list_ in self.subjects.items()
                          if subject_matches(pattern, name.encode()) for s in list_)  # fmt: skip
        else:
            seqs = list(self.msgs)
        if upto:
            seqs = [s for s in seqs if s < upto]
        if keep:
            seqs = seqs[: max(len(seqs) - keep, 0)]
        for seq in seqs:
            self._remove(seq)
        if not self.msgs and not subject_filter and not keep and not upto:
            self.empty_first = self.last_seq + 1
        elif not self.msgs and upto > self.last_seq:
            self.empty_first = upto
        return seqs

    # --- restoring ----------------------------------------------------------------------

    def restore(self, rows: list, last_seq: int) -> None:
        """Messages read back from the database (seq, subject, hdr, data, ts)."""
        for seq, subject, hdr, data, ts in rows:
            hdr = hdr or b""
            msg_id = ""
            self.msgs[seq] = (subject, hdr, data, ts)
            self.bytes += msg_size(self.storage, subject, hdr, data)
            self.subjects.setdefault(subject, []).append(seq)
            if hdr:
                msg_id = header(hdr, "Nats-Msg-Id")
                if msg_id:
                    self.msg_ids[msg_id] = (seq, ts)
                self.last_msg_id = msg_id
            self.last_seq, self.last_ts = seq, ts
        previous = 0
        for seq in self.msgs:  # (the gaps between what was stored)
            if previous and seq > previous + 1:
                self.gaps.extend(range(previous + 1, seq))
            previous = seq
        if last_seq > self.last_seq:
            self.last_seq = last_seq
        if not self.msgs and self.last_seq:
            self.empty_first = self.last_seq + 1


def _uint(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1
