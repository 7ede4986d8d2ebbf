"""Encoding what the server sends: INFO, MSG/HMSG lines, +OK, -ERR, PING/PONG.

INFO JSON is written the way Go's encoding/json writes it (compact, `<`, `>`, `&` escaped as
\\u003c...), so that byte-for-byte comparisons with nats-server only differ in values. The
monitoring endpoints use the same writer indented, as Go's json.MarshalIndent.
"""

from __future__ import annotations

import json
import math
import re
from json.encoder import encode_basestring  # json's own (C) string writer, non-ASCII kept

OK = b"+OK\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"
CRLF = b"\r\n"

#: What Go's encoder escapes that Python's does not: HTML-special characters and the two
#: line separators JavaScript would break on.
_GO_ESCAPES = {
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"
}
_GO_ESCAPED = re.compile("[<>&\u2028\u2029]")


def _go_escape(match: re.Match) -> str:
    return _GO_ESCAPES[match.group()]


def go_json(value: object, indent: str = "") -> str:
    """JSON text as Go's json.Marshal writes it, or with `indent` as json.MarshalIndent(v, "",
    indent): strings HTML-safe (see _GO_ESCAPES), floats in Go's form (`go_number`)."""
    # The characters Go escapes can only be inside strings: one pass over the whole text.
    return _GO_ESCAPED.sub(_go_escape, _dumps(value, "\n" if indent else "", indent))


def go_number(value: float) -> str:
    """A float64 as Go's encoding/json writes it (ES6 style): the shortest digits that read
    back the same, positional between 1e-6 and 1e21 with no `.0` when whole (`2`, `0.3`,
    `0.00001`, `15000000000000000`), an exponent outside it (`1e-7`, `1e+21`)."""
    if value != value or value in (math.inf, -math.inf):
        raise ValueError(f"json: unsupported value: {value!r}")  # Go refuses them too
    text = repr(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, exponent = text.split("e")  # repr uses an exponent out there too
        power = int(exponent)
        return f"{mantissa}e-{-power}" if power < 0 else f"{mantissa}e+{power:02d}"
    if "e" in text:  # repr's exponent form from 1e16 and below 1e-4: write the same digits out
        import decimal  # rare (tiny or huge floats); not worth its import at start-up

        text = format(decimal.Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def _has_float(value: object) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return False


def _dumps(value: object, newline: str, indent: str) -> str:
    """`value` as JSON; `newline` is the line break and the indent of the current level
    (empty when compact). What holds no float is json's to write (its C encoder when compact),
    as Go would write it but for the escapes; floats and the containers above them are ours."""
    if not _has_float(value):
        if not newline:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        # A JSON string never holds a raw newline: every line break is the layout's own.
        return json.dumps(value, indent=indent, ensure_ascii=False).replace("\n", newline)
    if isinstance(value, float):
        return go_number(value)
    inner = newline + indent if newline else ""
    if isinstance(value, dict):
        colon = ": " if newline else ":"
        items = [
            encode_basestring(str(key)) + colon + _dumps(item, inner, indent)
            for key, item in value.items()
        ]
        return "{" + inner + ("," + inner).join(items) + newline + "}"
    items = [_dumps(item, inner, indent) for item in value]
    return "[" + inner + ("," + inner).join(items) + newline + "]"


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
    plain form, or with `+ reply q...` / `| q...` when queue groups are named. An empty
    `account` is left out (a route pinned to one account names none)."""
    op = b"RMSG" if header_size < 0 else b"HMSG"
    parts = [op, account, subject] if account else [op, subject]
    if queues:
        parts += [b"+", reply] if reply else [b"|"]
        parts += list(queues)
    elif reply:
        parts.append(reply)
    if header_size >= 0:
        parts.append(b"%d" % header_size)
    parts.append(b"%d\r\n" % size)
    return b" ".join(parts)
