"""The events the parser produces: one small immutable value per protocol operation.

Subjects, queues, sids and payloads stay `bytes` end to end: the server never decodes them on
the message path. Events are NamedTuples so the parser can build them without running
`__init__` (see `new_event` in parser.py) and handlers can unpack them like tuples.
"""

from __future__ import annotations

from typing import NamedTuple


class Connect(NamedTuple):
    """CONNECT: `raw` is the JSON text, decoded by `protocol.connect`."""

    raw: bytes


class Info(NamedTuple):
    """INFO from the peer (ignored on client connections; routes act on it)."""

    raw: bytes


class Pub(NamedTuple):
    """PUB or HPUB with its complete payload.

    `data` is headers + payload + the trailing CRLF, ready to follow a MSG/HMSG line.
    `header_size` is -1 for PUB, else the header block's length (0 = an empty block).
    `reply` is b"" when absent.
    """

    subject: bytes
    reply: bytes
    header_size: int
    data: bytes


class PubRun(NamedTuple):
    """Two or more consecutive PUBs with the same control line (same subject, reply and size).

    Only produced by a parser created with `batch=True`. `parts` holds each message's
    payload + CRLF, in order; `expand()` gives the equivalent Pub events.
    """

    subject: bytes
    reply: bytes
    parts: list[bytes]

    def expand(self) -> list[Pub]:
        return [Pub(self.subject, self.reply, -1, part) for part in self.parts]


class PubBatch(NamedTuple):
    """Consecutive PUBs (each with its own control line), handled in one loop by the consumer.

    Only produced by a parser created with `batch=True`. Each item is (subject, reply, data)
    as in Pub, with no headers; `expand()` gives the equivalent Pub events.
    """

    pubs: list[tuple[bytes, bytes, bytes]]

    def expand(self) -> list[Pub]:
        return [Pub(subject, reply, -1, data) for subject, reply, data in self.pubs]


class Sub(NamedTuple):
    subject: bytes
    queue: bytes | None
    sid: bytes


class Unsub(NamedTuple):
    """UNSUB; `max_msgs` is -1 when absent or unparsable (then the sub goes at once)."""

    sid: bytes
    max_msgs: int


class Err(NamedTuple):
    """-ERR received from the peer."""

    text: bytes


class Ping(NamedTuple):
    pass


class Pong(NamedTuple):
    pass


PING = Ping()
PONG = Pong()
