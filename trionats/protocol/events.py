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


class InvalidPublishSubject(NamedTuple):
    """A pedantic client's PUB/HPUB names an invalid publish subject, and its payload is not
    complete in this read (`waiting`), or ends badly (see Parser.pedantic).

    nats-server answers such a subject when it reads the control line, so its -ERR comes
    before whatever the payload leads to (an 'Unknown Protocol Operation', or nothing yet).
    When the payload is still to come it answers twice (it parses the line again to keep
    it for the next read), and not again when the message completes.
    """

    subject: bytes
    waiting: bool


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

    Only produced by a parser created with `batch=True`, in one of two forms:

    * `pubs`: a list of (subject, reply, data) as in Pub, with no headers;
    * a span (`pubs` None): `count` PUBs with canonical lines `PUB <subject> <size>\r\n`
      (one subject, no reply), `span` their bytes as received and `payload_bytes` the sum of
      their sizes. A consumer may turn the span into MSGs with one `bytes.replace` of
      `PUB <subject> ` once it has checked that this occurs `count` times (no payload holds it).

    `items()` and `expand()` give the messages in either form.
    """

    pubs: list[tuple[bytes, bytes, bytes]] | None
    span: bytes | None = None
    subject: bytes = b""
    payload_bytes: int = 0
    count: int = 0

    def items(self) -> list[tuple[bytes, bytes, bytes]]:
        """(subject, reply, data) of each PUB."""
        if self.pubs is not None:
            return self.pubs
        span, subject, items, pos = self.span, self.subject, [], 0
        while pos < len(span):
            nl = span.index(b"\n", pos)
            start = nl + 1
            pos = start + int(span[span.rindex(b" ", pos, nl) + 1 : nl - 1]) + 2
            items.append((subject, b"", span[start:pos]))
        return items

    def expand(self) -> list[Pub]:
        return [Pub(subject, reply, -1, data) for subject, reply, data in self.items()]


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


# --- route protocol (server to server) ---------------------------------------------------------


class RSub(NamedTuple):
    """RS+: a remote server's interest; `weight` = its queue members (-1 when unparsable)."""

    account: bytes
    subject: bytes
    queue: bytes | None
    weight: int


class RUnsub(NamedTuple):
    """RS-: a remote server's interest is gone."""

    account: bytes
    subject: bytes
    queue: bytes | None


class RMsg(NamedTuple):
    """RMSG or HMSG on a route: a message for our local subscribers.

    `queues` names the queue groups this server should serve one member of; `header_size`
    is -1 for RMSG; `data` is headers + payload + CRLF.
    """

    account: bytes
    subject: bytes
    reply: bytes
    queues: tuple[bytes, ...]
    header_size: int
    data: bytes


class RMsgRun(NamedTuple):
    """Two or more consecutive RMSGs with the same control line (no headers).

    `parts` holds each message's payload + CRLF, as PubRun's do; `expand()` gives the RMsgs.
    """

    account: bytes
    subject: bytes
    reply: bytes
    queues: tuple[bytes, ...]
    parts: list[bytes]

    def expand(self) -> list[RMsg]:
        head = (self.account, self.subject, self.reply, self.queues, -1)
        return [RMsg(*head, part) for part in self.parts]


class RMsgSpan(NamedTuple):
    """Consecutive RMSGs with canonical lines `RMSG <account> <subject> <size>\r\n` (one
    subject, no reply or queue groups), as received: PubBatch's span form, for routes."""

    account: bytes
    subject: bytes
    span: bytes
    payload_bytes: int
    count: int

    def expand(self) -> list[RMsg]:
        span, items, pos = self.span, [], 0
        while pos < len(span):
            nl = span.index(b"\n", pos)
            start = nl + 1
            pos = start + int(span[span.rindex(b" ", pos, nl) + 1 : nl - 1]) + 2
            items.append(RMsg(self.account, self.subject, b"", (), -1, span[start:pos]))
        return items


class LSub(NamedTuple):
    """LS+: interest from a leaf node behind the remote server (`origin` = leaf cluster)."""

    origin: bytes
    account: bytes
    subject: bytes
    queue: bytes | None
    weight: int


class LUnsub(NamedTuple):
    """LS-; `origin` is b"" unless the peer sends it (it does when we announce lnocu)."""

    origin: bytes
    account: bytes
    subject: bytes
    queue: bytes | None


class LMsg(NamedTuple):
    """LMSG: a routed message that came from a leaf node (always with a header size)."""

    origin: bytes
    account: bytes
    subject: bytes
    reply: bytes
    queues: tuple[bytes, ...]
    header_size: int
    data: bytes


class ASub(NamedTuple):
    """A+: gateway account interest (accepted and ignored on routes)."""

    account: bytes


class AUnsub(NamedTuple):
    """A-."""

    account: bytes
