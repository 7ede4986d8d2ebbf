"""Consumers: a configuration (checked and completed as nats-server's), the position in the
stream, the messages delivered and not yet acknowledged, and the pull requests waiting.

A consumer is plain state driven by the service (service.py): `next_request` takes a pull
request, `on_stored` a new stream message, `ack` an acknowledgement, `tick` the passing of
time (ack wait redeliveries, request expiry); each returns nothing and hands what must be
sent to `send(subject, reply, header bytes, payload)`, given by the service.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import OrderedDict, deque

from .. import defaults
from ..ids import random_name
from ..protocol import gojson
from ..protocol.subjects import is_valid_subject, subject_matches
from . import errors
from .config import valid_name

_NS = 1_000_000_000

CONSUMER_CONFIG = gojson.Struct({
    "durable_name": gojson.STR,
    "name": gojson.STR,
    "description": gojson.STR,
    "deliver_policy": gojson.STR,
    "opt_start_seq": gojson.UINT64,
    "opt_start_time": gojson.STR,
    "ack_policy": gojson.STR,
    "ack_wait": gojson.INT,
    "max_deliver": gojson.INT,
    "backoff": gojson.list_of(gojson.INT),
    "filter_subject": gojson.STR,
    "filter_subjects": gojson.STR_LIST,
    "replay_policy": gojson.STR,
    "rate_limit_bps": gojson.UINT64,
    "sample_freq": gojson.STR,
    "max_waiting": gojson.INT,
    "max_ack_pending": gojson.INT,
    "flow_control": gojson.BOOL,
    "headers_only": gojson.BOOL,
    "max_batch": gojson.INT,
    "max_expires": gojson.INT,
    "max_bytes": gojson.INT,
    "deliver_subject": gojson.STR,
    "deliver_group": gojson.STR,
    "idle_heartbeat": gojson.INT,
    "inactive_threshold": gojson.INT,
    "num_replicas": gojson.INT,
    "mem_storage": gojson.BOOL,
    "metadata": gojson.map_of(gojson.STR),
    "pause_until": gojson.STR,
    "priority_groups": gojson.STR_LIST,
    "priority_policy": gojson.STR,
})  # fmt: skip

CREATE_REQUEST = gojson.Struct({"stream_name": gojson.STR, "config": CONSUMER_CONFIG,
                                "action": gojson.STR})  # fmt: skip

NEXT_REQUEST = gojson.Struct({"batch": gojson.INT, "expires": gojson.INT, "no_wait": gojson.BOOL,
                              "max_bytes": gojson.INT, "idle_heartbeat": gojson.INT})  # fmt: skip

_DELIVER = ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject")
_ACK = ("none", "all", "explicit")
_REPLAY = ("instant", "original")
#: Features of ConsumerConfig trionats does not implement yet: refused, never ignored.
NOT_YET = ("rate_limit_bps", "sample_freq", "priority_groups", "priority_policy")


def decode_create(payload: bytes) -> dict:
    try:
        request = gojson.decode_struct(payload, CREATE_REQUEST)
    except ValueError as error:
        raise errors.invalid_json(str(error)) from None
    config = request.get("config") or {}
    for key, words in (("deliver_policy", _DELIVER), ("ack_policy", _ACK),
                       ("replay_policy", _REPLAY)):  # fmt: skip
        value = config.get(key)
        if value is not None and value not in words:
            raise errors.invalid_json(f'can not unmarshal "{value}"')
    return request


def check(config: dict, stream, *, durable: bool) -> dict:
    """A decoded ConsumerConfig checked and completed (nats-server's setConsumerConfig
    defaults), in its field order."""
    for key in NOT_YET:
        if config.get(key):
            raise errors.consumer_create(f"{key} is not supported by trionats yet")
    name = config.get("name") or config.get("durable_name") or ""
    if name and not valid_name(name):
        raise errors.ApiError(400, 10127, "Consumer name can not contain path separators")
    ack = config.get("ack_policy") or "none"
    deliver = config.get("deliver_policy") or "all"
    filters = list(config.get("filter_subjects") or [])
    single = config.get("filter_subject") or ""
    if single and filters:
        raise errors.ApiError(400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified")
    for subject in filters + ([single] if single else []):
        # (nats-server 2.15 takes a filter outside the stream's subjects: it matches nothing)
        if not is_valid_subject(subject.encode(), check_blanks=True):
            raise errors.stream_invalid_config("invalid subject")
    if deliver == "by_start_sequence" and not config.get("opt_start_seq"):
        raise errors.invalid_policy("consumer delivery policy is deliver by start sequence, but optional start sequence is not set")
    if deliver != "by_start_sequence" and config.get("opt_start_seq"):
        raise errors.invalid_policy("consumer delivery policy is not deliver by start sequence, but optional start sequence is set")
    push = bool(config.get("deliver_subject"))
    if config.get("deliver_subject") and not is_valid_subject(config["deliver_subject"].encode(),
                                                              check_blanks=True):  # fmt: skip
        raise errors.consumer_create("consumer deliver subject is not a valid subject")
    if config.get("replay_policy") == "original":
        raise errors.consumer_create("replay_policy original is not supported by trionats yet")
    if not push and config.get("flow_control"):
        raise errors.ApiError(400, 10089, "consumer flow control requires a push based consumer")
    if not push and config.get("idle_heartbeat"):
        raise errors.ApiError(400, 10088, "consumer idle heartbeat requires a push based consumer")
    if config.get("flow_control") and not config.get("idle_heartbeat"):
        raise errors.ApiError(400, 10108, "consumer with flow control also needs heartbeats")
    if 0 < (config.get("idle_heartbeat") or 0) < _NS // 10:
        raise errors.ApiError(400, 10083, "consumer idle heartbeat needs to be >= 100ms")
    if deliver == "by_start_time" and not config.get("opt_start_time"):
        raise errors.invalid_policy("consumer delivery policy is deliver by start time, but optional start time is not set")
    if stream.config["retention"] == "workqueue":
        _check_work_queue(stream, config, ack, deliver, filters + ([single] if single else []))
    out: dict = {}
    if config.get("durable_name"):
        out["durable_name"] = config["durable_name"]
    if name:
        out["name"] = name
    if config.get("description"):
        out["description"] = config["description"]
    out["deliver_policy"] = deliver
    if config.get("opt_start_seq"):
        out["opt_start_seq"] = config["opt_start_seq"]
    if config.get("opt_start_time"):
        out["opt_start_time"] = config["opt_start_time"]
    out["ack_policy"] = ack
    if ack != "none":
        out["ack_wait"] = config.get("ack_wait") or int(defaults.JS_ACK_WAIT * _NS)
    max_deliver = config.get("max_deliver") or 0
    out["max_deliver"] = max_deliver if max_deliver > 0 else -1
    if config.get("backoff"):
        out["backoff"] = config["backoff"]
    if single:
        out["filter_subject"] = single
    if filters:
        out["filter_subjects"] = filters
    out["replay_policy"] = config.get("replay_policy") or "instant"
    if not push:
        out["max_waiting"] = config.get("max_waiting") or 512
    if ack != "none":
        out["max_ack_pending"] = config.get("max_ack_pending") or 1000
    for key in ("flow_control", "headers_only", "max_batch", "max_expires", "max_bytes",
                "deliver_subject", "deliver_group", "idle_heartbeat"):  # fmt: skip
        if config.get(key):
            out[key] = config[key]
    threshold = config.get("inactive_threshold") or 0
    if not durable and not threshold:
        threshold = 5 * _NS
    if threshold:
        out["inactive_threshold"] = threshold
    out["num_replicas"] = config.get("num_replicas") or 0
    if config.get("mem_storage"):
        out["mem_storage"] = True
    metadata = dict(config.get("metadata") or {})
    metadata["_nats.req.level"] = "1" if config.get("pause_until") else "0"
    out["metadata"] = dict(sorted(metadata.items()))
    if config.get("pause_until"):
        from .api import go_time, parse_time

        try:
            out["pause_until"] = go_time(parse_time(config["pause_until"]))
        except ValueError:
            raise errors.invalid_json(f'parsing time "{config["pause_until"]}"') from None
    return out


def _check_work_queue(stream, config: dict, ack: str, deliver: str, filters: list) -> None:
    """nats-server's rules for consumers of a work-queue stream: explicit acks, deliver all,
    and no two consumers that could take the same message."""
    if ack != "explicit":
        raise errors.ApiError(400, 10098, "workqueue stream requires explicit ack")
    if deliver != "all":
        raise errors.ApiError(400, 10101, "consumer must be deliver all on workqueue stream")
    name = config.get("name") or config.get("durable_name")
    others = [c for c in stream.consumers.values() if c.name != name]
    if not others:
        return
    if not filters or any(not c.filters for c in others):
        raise errors.ApiError(400, 10099, "multiple non-filtered consumers not allowed on workqueue stream")
    from .config import subjects_collide

    for other in others:
        for theirs in other.filters:
            if any(subjects_collide(mine, theirs.decode()) for mine in filters):
                raise errors.ApiError(400, 10100, "filtered consumer not unique on workqueue stream")


class PullRequest:
    __slots__ = ("reply", "batch", "max_bytes", "expires", "no_wait", "delivered")

    def __init__(self, reply: bytes, batch: int, max_bytes: int, expires: float, no_wait: bool):
        self.reply = reply
        self.batch = batch
        self.max_bytes = max_bytes
        self.expires = expires  # trio-free monotonic deadline, 0: none
        self.no_wait = no_wait
        self.delivered = 0


class PushTarget(PullRequest):
    """A push consumer's deliver subject, as an endless request."""

    def __init__(self, subject: bytes) -> None:
        super().__init__(subject, 1 << 62, 0, 0.0, False)


class Consumer:
    """One consumer of a stream: pull, or push to a deliver subject (while it has interest)."""

    def __init__(self, stream, config: dict, created_ns: int, send, *, durable: bool,
                 name: str = "") -> None:  # fmt: skip
        self.stream = stream
        #: An ephemeral consumer created without a name gets a random one.
        self.name = config.get("name") or name or random_name(8)
        self.config = config
        self.created_ns = created_ns
        self.send = send
        self.durable = durable
        filters = config.get("filter_subjects") or (
            [config["filter_subject"]] if config.get("filter_subject") else [])  # fmt: skip
        # A filter equal to one of the stream's own subjects covers it all: no filter.
        if filters and set(filters) >= set(stream.config["subjects"]):
            filters = []
        self.filters = [s.encode() for s in filters]
        #: Filters without wildcards: their subjects are looked up, not matched.
        self.literal = [] if any("*" in f or ">" in f for f in filters) else list(filters)
        #: The next stream sequence never delivered yet.
        self.next_seq = 1
        #: Last delivered: consumer sequence, stream sequence; ack floor the same.
        self.dseq = 0
        self.sseq = 0
        self.floor_dseq = 0
        self.floor_sseq = 0
        self.last_delivered_ns = 0
        self.last_ack_ns = 0
        #: stream seq -> [consumer seq, deliveries, deadline (monotonic)]: unacknowledged.
        self.pending: OrderedDict[int, list] = OrderedDict()
        #: Stream sequences due for redelivery, oldest first.
        self.redeliver: deque[int] = deque()
        self.waiting: deque[PullRequest] = deque()
        #: Sequences of the initial last-per-subject delivery, not yet delivered.
        self.initial: deque[int] = deque()
        self.deleted = False
        self.dirty = False
        self.last_activity = time.monotonic()
        #: Does the deliver subject have subscribers? (set by the service; pull: unused)
        self.interest = lambda subject: True
        deliver_to = config.get("deliver_subject")
        self.push = PushTarget(deliver_to.encode()) if deliver_to else None
        #: Called with the stream sequences this consumer is done with (interest and
        #: work-queue retention remove messages then).
        self.on_acked = lambda seqs: None
        self.last_sent = time.monotonic()

    # --- position --------------------------------------------------------------------

    def start(self) -> None:
        """Set the starting position from the deliver policy."""
        stream = self.stream
        policy = self.config["deliver_policy"]
        if policy == "last":
            last = max((stream.last_for(f.decode()) for f in self.filters), default=0) \
                if self.filters else (stream.last_seq if stream.msgs else 0)  # fmt: skip
            self.next_seq = last or stream.last_seq + 1
        elif policy == "new":
            self.next_seq = stream.last_seq + 1
        elif policy == "by_start_sequence":
            self.next_seq = self.config["opt_start_seq"]
        elif policy == "by_start_time":
            from .api import parse_time

            since = parse_time(self.config["opt_start_time"])
            self.next_seq = next((seq for seq, msg in stream.msgs.items() if msg[3] >= since),
                                 stream.last_seq + 1)  # fmt: skip
        elif policy == "last_per_subject":
            seqs = sorted(seqs[-1] for subject, seqs in stream.subjects.items() if self.matches(subject))
            self.initial.extend(seqs)
            self.next_seq = stream.last_seq + 1
        else:
            self.next_seq = stream.first_seq or 1
        self.sseq = self.floor_sseq = max(self.next_seq - 1, 0)
        if self.initial:
            self.sseq = self.floor_sseq = self.initial[0] - 1

    def matches(self, subject: str) -> bool:
        if not self.filters:
            return True
        encoded = subject.encode()
        return any(subject_matches(f, encoded) for f in self.filters)

    def num_pending(self) -> int:
        stream = self.stream
        count = len(self.initial)
        start = self.next_seq
        if not self.filters:
            return count + stream.count_from(start)
        for seqs in self._matching_seqs():
            count += len(seqs) - bisect_left(seqs, start)
        return count

    def _matching_seqs(self):
        """The sequence lists of the stream's subjects the filters match."""
        subjects = self.stream.subjects
        if self.literal:
            for subject in self.literal:
                seqs = subjects.get(subject)
                if seqs:
                    yield seqs
            return
        for subject, seqs in subjects.items():
            if self.matches(subject):
                yield seqs

    def _next_new(self) -> int:
        """The next new sequence to deliver (0: none), skipping what does not match."""
        if self.initial:
            return self.initial[0]
        stream = self.stream
        seq = self.next_seq
        if seq > stream.last_seq:
            return 0
        if not self.filters:
            return stream.next_for("", seq)
        best = 0
        for seqs in self._matching_seqs():
            at = bisect_left(seqs, seq)
            if at < len(seqs) and (not best or seqs[at] < best):
                best = seqs[at]
        return best

    # --- pull requests ---------------------------------------------------------------

    def next_request(self, reply: bytes, payload: bytes, now: float) -> None:
        """A CONSUMER.MSG.NEXT request (its body: a batch size, or nats-server's JSON)."""
        self.last_activity = now
        text = payload.strip()
        batch, expires, no_wait, max_bytes = 1, 0, False, 0
        if text[:1] == b"{":
            try:
                request = gojson.decode_struct(text, NEXT_REQUEST)
            except ValueError as error:
                self.send(reply, b"", _status(400, f"Bad Request - {error}"), b"")
                return
            batch = request.get("batch") or 1
            expires = request.get("expires") or 0
            no_wait = request.get("no_wait") or False
            max_bytes = request.get("max_bytes") or 0
        elif text:
            try:
                batch = int(text)
            except ValueError:
                self.send(reply, b"", _status(400, "Bad Request"), b"")
                return
        if batch <= 0:
            batch = 1
        if len(self.waiting) >= self.config["max_waiting"]:
            self.send(reply, b"", _status(409, "Exceeded MaxWaiting"), b"")
            return
        if no_wait and not expires and not self._available():
            self.send(reply, b"", _status(404, "No Messages"), b"")
            return
        deadline = now + expires / _NS if expires else 0.0
        self.waiting.append(PullRequest(reply, batch, max_bytes, deadline, no_wait and not expires))
        self.pump(now)

    def _available(self) -> bool:
        if self.redeliver or self.initial:
            return True
        return bool(self._next_new())

    def _can_deliver(self) -> bool:
        limit = self.config.get("max_ack_pending", 0)
        return not (limit > 0 and self.config["ack_policy"] != "none" and len(self.pending) >= limit)

    def pump(self, now: float) -> None:
        """Deliver to the waiting requests what is due: redeliveries first, then new."""
        stream = self.stream
        if self.paused():
            return
        if self.push is not None:
            if not self.interest(self.push.reply):
                return
            if not self.waiting:
                self.waiting.append(self.push)
        while self.waiting and self._can_deliver():
            seq, redelivery = 0, False
            while self.redeliver:
                candidate = self.redeliver.popleft()
                if candidate in self.pending and candidate in stream.msgs:
                    seq, redelivery = candidate, True
                    break
                self.pending.pop(candidate, None)
            if not seq:
                seq = self._next_new()
                if not seq:
                    break
                if self.initial:
                    self.initial.popleft()
                else:
                    self.next_seq = seq + 1
            self._deliver(self.waiting[0], seq, redelivery, now)
        # No-wait requests end at the end of what is available.
        if self.waiting and not self._available():
            for request in [r for r in self.waiting if r.no_wait]:
                self.waiting.remove(request)
                self.send(request.reply, b"", _status(404, "No Messages"), b"")

    def _deliver(self, request: PullRequest, seq: int, redelivery: bool, now: float) -> None:
        subject, hdr, data, ts = self.stream.msgs[seq]
        if redelivery:
            entry = self.pending[seq]
            entry[1] += 1
            self.dseq += 1
            entry[0] = self.dseq
        else:
            self.dseq += 1
            entry = [self.dseq, 1, 0.0]
            if self.config["ack_policy"] != "none":
                self.pending[seq] = entry
            else:
                self.floor_dseq, self.floor_sseq = self.dseq, seq
                self.on_acked([seq])
            self.sseq = max(self.sseq, seq)
        entry[2] = now + self._ack_wait(entry[1])
        self.last_delivered_ns = time.time_ns()
        pending = self.num_pending()
        ack = (f"$JS.ACK.{self.stream.name}.{self.name}.{entry[1]}.{seq}.{entry[0]}."
               f"{ts}.{pending}").encode()  # fmt: skip
        if self.config.get("headers_only"):
            from .headers import block

            hdr, data = block({"Nats-Msg-Size": len(data)}, hdr), b""
        self.send(request.reply, ack, hdr, data, subject.encode())
        self.last_sent = now
        request.delivered += 1
        request.batch -= 1
        if request.max_bytes:
            request.max_bytes -= len(hdr) + len(data) + len(subject)
        if request.batch <= 0 or (request.max_bytes and request.max_bytes <= 0):
            self.waiting.popleft()
        self.dirty = True

    def _ack_wait(self, deliveries: int) -> float:
        backoff = self.config.get("backoff")
        if backoff:
            return backoff[min(deliveries - 1, len(backoff) - 1)] / _NS
        return self.config.get("ack_wait", 30 * _NS) / _NS

    # --- acknowledgements ------------------------------------------------------------

    def ack(self, seq: int, kind: bytes, body: bytes, now: float) -> None:
        """`$JS.ACK...` with `kind`: +ACK (or empty), -NAK, +WPI, +TERM, +NXT."""
        self.last_activity = now
        entry = self.pending.get(seq)
        if kind in (b"", b"+ACK", b"+NXT", b"+TERM"):
            if self.config["ack_policy"] == "all":
                acked = [s for s in self.pending if s <= seq]
            else:
                acked = [seq] if entry is not None else []
            for done in acked:
                del self.pending[done]
            self._move_floor()
            if acked:
                self.on_acked(acked)
            self.last_ack_ns = time.time_ns()
            self.dirty = True
            self.pump(now)
        elif kind == b"-NAK" and entry is not None:
            delay = _nak_delay(body)
            if delay:
                entry[2] = now + delay
            else:
                entry[2] = now
                self.redeliver.append(seq)
                self.pump(now)
        elif kind == b"+WPI" and entry is not None:
            entry[2] = now + self._ack_wait(entry[1])

    def _move_floor(self) -> None:
        if self.pending:
            first_seq, (first_dseq, _, _) = next(iter(self.pending.items()))
            self.floor_sseq, self.floor_dseq = first_seq - 1, first_dseq - 1
        else:
            self.floor_sseq, self.floor_dseq = self.sseq, self.dseq

    # --- time ------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Redeliver what waited past its ack wait; end expired requests (408)."""
        max_deliver = self.config["max_deliver"]
        due = []
        for seq, entry in self.pending.items():
            if entry[2] and entry[2] <= now and seq not in self.redeliver:
                if 0 < max_deliver <= entry[1]:
                    continue
                due.append(seq)
        for seq in due:
            self.pending[seq][2] = 0.0
            self.redeliver.append(seq)
        expired = [r for r in self.waiting if r.expires and r.expires <= now and r is not self.push]
        for request in expired:
            self.waiting.remove(request)
            self.send(request.reply, b"",
                      _status(408, "Request Timeout", {"Nats-Pending-Messages": request.batch,
                                                       "Nats-Pending-Bytes": request.max_bytes}),
                      b"")  # fmt: skip
        if due or self.redeliver or self.push is not None or self.waiting:
            self.pump(now)
        heartbeat = self.config.get("idle_heartbeat", 0) / _NS
        if (self.push is not None and heartbeat and now - self.last_sent >= heartbeat
                and self.interest(self.push.reply)):  # fmt: skip
            self.last_sent = now
            self.send(self.push.reply, b"", _status(100, "Idle Heartbeat", {
                "Nats-Last-Consumer": self.dseq, "Nats-Last-Stream": self.sseq}), b"")

    def done_with(self, seq: int) -> bool:
        """Has this consumer acknowledged (or, with no acks, delivered) `seq`?"""
        if seq in self.pending or seq in self.initial:
            return False
        return seq < self.next_seq

    def paused(self) -> int:
        """Nanoseconds left of a pause (CONSUMER.PAUSE, `pause_until`), 0 when not paused."""
        until = self.config.get("pause_until")
        if not until:
            return 0
        from .api import parse_time

        return max(parse_time(until) - time.time_ns(), 0)

    def close(self) -> None:
        """Deleted (or its stream): waiting pull requests are told, as nats-server tells them."""
        self.deleted = True
        for request in self.waiting:
            if request is not self.push:
                self.send(request.reply, b"", _status(409, "Consumer Deleted"), b"")
        self.waiting.clear()

    def num_redelivered(self) -> int:
        return sum(1 for entry in self.pending.values() if entry[1] > 1)

    # --- state kept across restarts --------------------------------------------------

    def state(self) -> dict:
        return {"next_seq": self.next_seq, "dseq": self.dseq, "sseq": self.sseq,
                "floor_dseq": self.floor_dseq, "floor_sseq": self.floor_sseq,
                "pending": [[seq, entry[0], entry[1]] for seq, entry in self.pending.items()],
                "initial": list(self.initial)}  # fmt: skip

    def restore(self, state: dict, now: float) -> None:
        self.next_seq = state["next_seq"]
        self.dseq, self.sseq = state["dseq"], state["sseq"]
        self.floor_dseq, self.floor_sseq = state["floor_dseq"], state["floor_sseq"]
        for seq, dseq, deliveries in state["pending"]:
            # Unacknowledged before the restart: due for redelivery after an ack wait.
            self.pending[seq] = [dseq, deliveries, now + self._ack_wait(deliveries)]
        self.initial.extend(state.get("initial", []))


def _status(code: int, description: str, extra: dict | None = None) -> bytes:
    from .headers import status

    return status(code, description, extra)


def _nak_delay(body: bytes) -> float:
    """A -NAK's delay in seconds: `-NAK {"delay": ns}` (nats-server's)."""
    rest = body[4:].strip()
    if not rest:
        return 0.0
    try:
        value = gojson.decode_struct(rest, gojson.Struct({"delay": gojson.INT}))
    except ValueError:
        return 0.0
    return max(value.get("delay", 0), 0) / _NS
