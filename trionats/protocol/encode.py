"""Encoding what the server sends: INFO, MSG/HMSG lines, +OK, -ERR, PING/PONG.

INFO JSON is written the way Go's encoding/json writes it (compact, `<`, `>`, `&` escaped as
\\u003c...), so that byte-for-byte comparisons with nats-server only differ in values.
"""

from __future__ import annotations

import json

OK = b"+OK\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"
CRLF = b"\r\n"

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json(value: object) -> str:
    """JSON text as Go's json.Marshal would write it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).translate(_GO_ESCAPES)


def info(fields: dict) -> bytes:
    """`INFO {...} \\r\\n` (nats-server puts a space before the CRLF)."""
    return b"INFO " + go_json(fields).encode() + b" \r\n"


def err(text: str) -> bytes:
    return b"-ERR '" + text.encode() + b"'\r\n"


def msg_head(subject: bytes, sid: bytes) -> bytes:
    """The constant start of a MSG line for one subscription: `MSG <subject> <sid> `."""
    return b"MSG " + subject + b" " + sid + b" "


def hmsg_head(subject: bytes, sid: bytes) -> bytes:
    return b"HMSG " + subject + b" " + sid + b" "


def msg_tail(reply: bytes, size: int) -> bytes:
    """The rest of a MSG line: `[reply ]<size>\\r\\n`."""
    if reply:
        return b"%s %d\r\n" % (reply, size)
    return b"%d\r\n" % size


def hmsg_tail(reply: bytes, header_size: int, size: int) -> bytes:
    if reply:
        return b"%s %d %d\r\n" % (reply, header_size, size)
    return b"%d %d\r\n" % (header_size, size)


def no_responders(reply: bytes, sid: bytes, subject: bytes) -> bytes:
    """The 503 status message a requester gets when nobody was subscribed to `subject`."""
    header = b"NATS/1.0 503\r\nNats-Subject: " + subject + b"\r\n\r\n"
    size = len(header)
    return b"HMSG %s %s %d %d\r\n%s\r\n" % (reply, sid, size, size, header)


# --- route protocol -----------------------------------------------------------------------------


def rs_plus(account: bytes, subject: bytes, queue: bytes | None = None, weight: int = 1) -> bytes:
    """RS+: interest in `subject` (a queue group's line carries its member count)."""
    if queue is None:
        return b"RS+ %s %s\r\n" % (account, subject)
    return b"RS+ %s %s %s %d\r\n" % (account, subject, queue, weight)


def rs_minus(account: bytes, subject: bytes, queue: bytes | None = None) -> bytes:
    if queue is None:
        return b"RS- %s %s\r\n" % (account, subject)
    return b"RS- %s %s %s\r\n" % (account, subject, queue)


def rmsg_line(
    account: bytes,
    subject: bytes,
    reply: bytes,
    queues: tuple[bytes, ...] | list[bytes],
    header_size: int,
    size: int,
) -> bytes:
    """The control line of a routed message: RMSG (header_size < 0) or HMSG, in the
    plain form, or with `+ reply q...` / `| q...` when queue groups are named."""
    op = b"RMSG" if header_size < 0 else b"HMSG"
    parts = [op, account, subject]
    if queues:
        parts += [b"+", reply] if reply else [b"|"]
        parts += list(queues)
    elif reply:
        parts.append(reply)
    if header_size >= 0:
        parts.append(b"%d" % header_size)
    parts.append(b"%d\r\n" % size)
    return b" ".join(parts)
