"""The leaf node protocol, sans-I/O: what a leaf connection reads (LS+/LS-/LMSG/HMSG) and writes.

A leaf connection is bound to one account on each side, so its lines carry no account:
`LS+ <subject>` or `LS+ <subject> <queue> <weight>` (the weight is the queue group's member
count behind the peer, replaced on every change), `LS- <subject> [<queue>]`, and messages
`LMSG <subject> [reply | + reply q... | | q...] <size>` (HMSG with a header size before the
size). The other ops are the common ones (INFO, CONNECT, PING, PONG, +OK, -ERR).

Errors are nats-server's: an unknown op is -ERR 'Unknown Protocol Operation'; a malformed
LMSG/HMSG/LS+/LS- line closes the connection silently (a client's PUB is read as a message
from the peer, as nats-server's parser reads it) (a Protocol Violation, logged); a
message larger than max_payload is -ERR 'Maximum Payload Violation'; a control line over
16 times max_control_line is -ERR 'Maximum Control Line Exceeded'.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from .. import defaults, errors
from ..errors import ProtocolError, Reason
from .gojson import BOOL, INT, STR, STR_LIST, Struct
from .parser import (
    COMMON_KEYWORDS,
    OP_HPUB,
    OP_PUB,
    OP_SUB,
    OP_UNSUB,
    SEP,
    Parser,
    _parse_size,
    _silent,
    _split_args,
    new_event,
)

# --- events ---------------------------------------------------------------------------------


class LeafSub(NamedTuple):
    """LS+: the peer's interest; `weight` is a queue group's member count (1 for plain)."""

    subject: bytes
    queue: bytes | None
    weight: int
    #: The line's argument as sent (nats-server keys the peer's subscriptions by it).
    key: bytes


class LeafUnsub(NamedTuple):
    """LS-: `key` is the argument (`subject` or `subject queue`), as LS+ keyed it."""

    key: bytes


class LeafMsg(NamedTuple):
    """LMSG or HMSG: a message from the peer; `queues` names the groups to serve one member
    of; `header_size` is -1 for LMSG; `data` is headers + payload + CRLF."""

    subject: bytes
    reply: bytes
    queues: tuple[bytes, ...]
    header_size: int
    data: bytes


# --- the parser -----------------------------------------------------------------------------

OP_LSUB, OP_LUNSUB, OP_LMSG, OP_HMSG = "LS+", "LS-", "LMSG", "HMSG"

LEAF_KEYWORDS = {
    b"LS+": (OP_LSUB, SEP),
    b"LS-": (OP_LUNSUB, SEP),
    b"LMSG": (OP_LMSG, SEP),
    b"HMSG": (OP_HMSG, SEP),
    # nats-server's parser takes a client's PUB on a leaf connection as a message from it.
    b"PUB": (OP_PUB, SEP),
    b"HPUB": (OP_HPUB, SEP),
    b"SUB": (OP_SUB, SEP),  # ... closes it at a client's SUB, silently ...
    b"UNSUB": (OP_UNSUB, SEP),  # ... and drops the subscription an UNSUB's sid names
    **COMMON_KEYWORDS,
}


class LeafParser(Parser):
    """Parser of what a leaf node peer sends (either side of the connection).

    `require_connect`: an accepted leaf must send CONNECT first (any other op is an
    Authorization Violation). Messages are bounded by `max_payload`, lines by 16 times
    `max_control_line` (nats-server's bound for server connections).
    """

    keywords = LEAF_KEYWORDS
    pub_fast_path = False
    message_ops = frozenset({OP_LMSG, OP_HMSG, OP_PUB, OP_HPUB})

    def __init__(
        self,
        *,
        max_control_line: int = defaults.MAX_CONTROL_LINE,
        max_payload: int = defaults.MAX_PAYLOAD,
        require_connect: bool = False,
    ) -> None:
        super().__init__(
            max_control_line=max_control_line * defaults.ROUTE_CONTROL_LINE_FACTOR,
            max_payload=max_payload,
            require_connect=require_connect,
        )

    def set_limits(self, *, max_control_line: int, max_payload: int) -> None:
        super().set_limits(
            max_control_line=max_control_line * defaults.ROUTE_CONTROL_LINE_FACTOR,
            max_payload=max_payload,
        )

    def _decode_message(self, op: str, arg: bytes) -> tuple[type, tuple, int]:
        if op is OP_PUB or op is OP_HPUB:
            _, (subject, reply, header_size), size = super()._decode_message(op, arg)
            return LeafMsg, (subject, reply, (), header_size), size
        args = _split_args(arg)
        sizes = 2 if op is OP_HMSG else 1  # size tokens at the end of the line
        name = "processLeafHeaderMsgArgs" if op is OP_HMSG else "processLeafMsgArgs"
        count = len(args)
        if count < 1 + sizes:
            raise _silent(f"{name} Parse Error: {arg!r}")
        if count == 1 + sizes:
            reply, queues = b"", ()
        elif count == 2 + sizes:
            reply, queues = args[1], ()
        else:
            indicator = args[1]
            if indicator == b"+":
                reply, queues = args[2], tuple(args[3 : count - sizes])
            elif indicator == b"|":
                reply, queues = b"", tuple(args[2 : count - sizes])
            else:
                raise _silent(f"{name} Bad or Missing Reply Indicator: {arg!r}")
        size = _parse_size(args[-1])
        header_size = _parse_size(args[-2]) if sizes == 2 else -1
        if op is OP_HMSG and header_size < 0:
            raise _silent(f"{name} Bad or Missing Header Size: {arg!r}")
        if size < 0:
            raise _silent(f"{name} Bad or Missing Size: {arg!r}")
        if header_size > size:
            raise _silent(f"{name} Header Size larger then TotalSize: {arg!r}")
        if size > self.max_payload:
            raise ProtocolError(errors.MAX_PAYLOAD, Reason.MAX_PAYLOAD)
        return LeafMsg, (args[0], reply, queues, header_size), size

    def _decode_other(self, op: str, arg: bytes) -> object:
        if op is OP_LSUB:
            args = _split_args(arg)
            if len(args) == 1:
                return new_event(LeafSub, (args[0], None, 1, arg))
            if len(args) == 3:
                # The key is the line without its weight (nats-server's sub.sid).
                key = arg[: len(arg) - len(args[2]) - 1].rstrip(b" \t")
                return new_event(LeafSub, (args[0], args[1], _parse_size(args[2]), key))
            raise _silent(f"processLeafSub Parse Error: {arg!r}")
        if op is OP_LUNSUB:
            return new_event(LeafUnsub, (arg,))
        if op is OP_SUB:
            raise _silent(f"a client's SUB on a leaf connection: {arg!r}")
        if op is OP_UNSUB:  # (nats-server keys a leaf's subscriptions by their LS+ argument)
            args = _split_args(arg)
            if len(args) not in (1, 2):
                raise _silent(f"processUnsub Parse Error: {arg!r}")
            return new_event(LeafUnsub, (args[0],))
        return super()._decode_other(op, arg)


# --- writing --------------------------------------------------------------------------------


def ls_plus(subject: bytes, queue: bytes | None = None, weight: int = 1) -> bytes:
    """LS+: interest in `subject` (a queue group's line carries its member count)."""
    if queue is None:
        return b"LS+ " + subject + b"\r\n"
    return b"LS+ %s %s %d\r\n" % (subject, queue, weight)


def ls_minus(subject: bytes, queue: bytes | None = None) -> bytes:
    if queue is None:
        return b"LS- " + subject + b"\r\n"
    return b"LS- " + subject + b" " + queue + b"\r\n"


def lmsg_line(subject: bytes, reply: bytes, queues, header_size: int, size: int) -> bytes:
    """The control line of a message to a leaf: LMSG (header_size < 0) or HMSG, plain or
    with `+ reply q...` / `| q...` when queue groups are named."""
    parts = [b"LMSG" if header_size < 0 else b"HMSG", subject]
    if queues:
        parts += [b"+", reply] if reply else [b"|"]
        parts += list(queues)
    elif reply:
        parts.append(reply)
    if header_size >= 0:
        parts.append(b"%d" % header_size)
    parts.append(b"%d\r\n" % size)
    return b" ".join(parts)


def connect_line(fields: dict) -> bytes:
    return b"CONNECT " + json.dumps(fields, separators=(",", ":")).encode() + b"\r\n"


# --- the structs nats-server decodes --------------------------------------------------------

#: leafnode.go leafConnectInfo: a leaf's CONNECT (decoded after ClientOpts).
LEAF_CONNECT = Struct(
    {
        "version": STR,
        "nkey": STR,
        "jwt": STR,
        "sig": STR,
        "user": STR,
        "pass": STR,
        "auth_token": STR,
        "server_id": STR,
        "domain": STR,
        "name": STR,
        "is_hub": BOOL,
        "cluster": STR,
        "headers": BOOL,
        "jetstream": BOOL,
        "deny_pub": STR_LIST,
        "isolate": BOOL,
        "compress_mode": STR,
        "gateway": STR,
        "remote_account": STR,
        "protocol": INT,
    }
)

#: The loop detection subject prefix: each side subscribes to `$LDS.<unique>` of its account;
#: seeing our own come back over a leaf connection means a loop.
LOOP_DETECTION_PREFIX = b"$LDS."


def loop_detected(account: str) -> str:
    """nats-server's error (and log line) when a leaf connection closes a loop."""
    delay = int(defaults.LEAF_LOOP_RECONNECT_DELAY)
    return (f'Loop detected for leafnode account="{account}". '
            f"Delaying attempt to reconnect for {delay}s")  # fmt: skip


def version_at_least(version: str, minimum: str) -> bool:
    """nats-server's versionAtLeast for min_version: `major.minor.patch`, a `v` prefix and
    a pre-release suffix allowed; anything unreadable is too old."""

    def parts(text: str) -> tuple[int, ...] | None:
        text = text.lstrip("v").split("-", 1)[0]
        pieces = text.split(".")
        if len(pieces) != 3 or not all(p.isdigit() for p in pieces):
            return None
        return tuple(int(p) for p in pieces)

    have, need = parts(version), parts(minimum)
    return have is not None and need is not None and have >= need


__all__ = [
    "LEAF_CONNECT",
    "LOOP_DETECTION_PREFIX",
    "LeafMsg",
    "LeafParser",
    "LeafSub",
    "LeafUnsub",
    "connect_line",
    "lmsg_line",
    "loop_detected",
    "ls_minus",
    "ls_plus",
    "version_at_least",
]
