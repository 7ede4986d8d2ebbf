"""Message tracing (nats-server 2.11+, ADR-41): the record of what one traced message did here.

A message whose headers name a `Nats-Trace-Dest` is traced: while the core delivers it, a
`Trace` notes where it came from (the ingress: the source connection and the subject) and
where it went (one egress per subscriber, queue member or server it was queued to, or why
it was not). When the delivery is done the source's dispatcher hands the record to its
`tracer`, which publishes it as JSON to the destination subject (trionats/tracing.py).
With `Nats-Trace-Only: true` the egresses are recorded and nothing is written to local
subscribers; a server that traces too still gets the message (it records its own part and
delivers nothing), one that does not gets nothing.

Across a route the message carries `Nats-Trace-Hop` (`1`, `2`, ... per server it was
forwarded to, `<hop>.<n>` beyond), so the events the servers publish can be put together.
Whether a route's peer traces is its route INFO `proto` (3 and up).

Plain data and the rules of nats-server's msgtrace.go; timestamps are wall-clock
nanoseconds, turned into Go's time format by the publisher.
"""

from __future__ import annotations

import time

from ..errors import go_quote
from ..protocol.subjects import is_valid_literal_subject

TRACE_DEST = b"Nats-Trace-Dest"
TRACE_HOP = "Nats-Trace-Hop"
TRACE_ONLY = "Nats-Trace-Only"
ORIGIN_ACCOUNT = "Nats-Trace-Origin-Account"
#: The `Nats-Trace-Dest` value that turns tracing off (it is not a valid subject).
DISABLED = "trace disabled"
HEADER_LINE = b"NATS/1.0\r\n"
#: The route protocol level from which a server traces the messages it is forwarded.
TRACE_PROTO = 3

#: Connection kinds, as nats-server numbers them in events.
CLIENT = 0
ROUTER = 1
LEAF = 4  # (nats-server's kinds: CLIENT, ROUTER, GATEWAY, SYSTEM, LEAF, ...)

#: Egress errors, nats-server's texts.
ONLY_NO_SUPPORT = "Not delivered because remote does not support message tracing"
NO_SUPPORT = (
    "Message delivered but remote does not support message tracing so no trace event "
    "generated from there"
)
NO_ECHO = "Not delivered because of no echo"
SUB_DENY = "Not delivered because subscription denies this subject"

_TRUE = ("1", "true", "on")


def trace_headers(header: bytes) -> dict[str, list[str]] | None:
    """The headers of a message that names a trace destination, as nats-server lifts them
    (names with their case, values in order, empty names or values left out), or None when
    there is no `Nats-Trace-Dest` or it says `trace disabled`. (A sampled W3C `traceparent`
    alone asks for tracing only in accounts with a `msg_trace` destination: never here.)"""
    if not header.startswith(HEADER_LINE):
        return None
    found = False
    headers: dict[str, list[str]] = {}
    i = len(HEADER_LINE)
    end = len(header)
    while i < end:
        colon = header.find(b":", i)
        if colon < 0:
            break
        key = header[i:colon]
        i = colon + 1
        while i < end and header[i] in b" \t":
            i += 1
        nl = header.find(b"\r\n", i)
        if nl < 0:
            break
        value_end = nl
        while value_end > i and header[value_end - 1] in b" \t":
            value_end -= 1
        value = header[i:value_end]
        if key and value:
            if not found and key == TRACE_DEST:
                if value == DISABLED.encode():
                    return None
                found = True
            headers.setdefault(_text(key), []).append(_text(value))
        i = nl + 2
    return headers if found else None


class Trace:
    """One traced message on this server: its request, ingress and egresses.

    `active`: events are recorded and will be published. A trace that is not active says
    what the source must do instead: `error` to log, `denied` (the source may not publish
    to the destination: refuse the message as a publish violation), `skip` (deliver
    nothing); otherwise the message is delivered, untraced, as `header_size` and `data`
    (which a legacy `Nats-Trace-Origin-Account` header has rewritten).
    """

    __slots__ = ("dest", "only", "active", "skip", "denied", "error", "header_size", "data",
                 "headers", "size", "account", "hop", "hops", "events")  # fmt: skip

    def __init__(self, dest: str, only: bool, headers: dict, header_size: int, data: bytes) -> None:
        self.dest = dest
        self.only = only
        self.active = True
        self.skip = False
        self.denied = False
        self.error = ""
        self.header_size = header_size
        self.data = data
        self.headers = headers
        self.size = len(data) - 2
        #: The account the message was published in: its ingress names it, and the event is
        #: published there (a route's account is the one its message named).
        self.account = "$G"
        #: The hop this server was reached by (from a route's `Nats-Trace-Hop`), and how
        #: many servers it forwarded the message to.
        self.hop = ""
        self.hops = 0
        self.events: list[dict] = []

    def off(self, *, skip: bool, error: str = "", denied: bool = False) -> Trace:
        self.active = False
        self.skip = skip
        self.error = error
        self.denied = denied
        return self

    def ingress(self, source, subject: bytes) -> None:
        event = {"type": "in", "ts": time.time_ns(), "kind": _kind(source), "cid": source.cid}
        name = _name(source)
        if name:
            event["name"] = name
        event["acc"] = self.account
        event["subj"] = _text(subject)
        self.events.append(event)

    def ingress_error(self, text: str) -> None:
        """The source refused the message (a publish violation, a reserved subject)."""
        self.events[0]["error"] = text

    def egress(self, client, sub, error: str = "", hop: str = "") -> None:
        """A delivery to `client` (or why there was none), and for a client the subject and
        queue of its subscription `sub`."""
        event = {"type": "eg", "ts": time.time_ns(), "kind": _kind(client), "cid": client.cid}
        name = _name(client)
        if name:
            event["name"] = name
        if hop:
            event["hop"] = hop
        if not client.is_route:
            event["sub"] = _text(sub.subject)
            if sub.queue:
                event["queue"] = _text(sub.queue)
        if error:
            event["error"] = error
        self.events.append(event)

    def to_route(self, header_size: int, data: bytes) -> tuple[str, int, bytes]:
        """The next hop's id and the message with its `Nats-Trace-Hop` header set."""
        self.hops += 1
        hop = f"{self.hop}.{self.hops}" if self.hop else str(self.hops)
        header_size, data = set_header(header_size, data, TRACE_HOP, hop)
        return hop, header_size, data

    def report(self, server_info: dict) -> dict:
        """The event as nats-server's MsgTraceEvent marshals it (timestamps still in ns)."""
        request: dict = {"header": dict(sorted(self.headers.items()))} if self.headers else {}
        if self.size:
            request["msgsize"] = self.size
        report = {"server": server_info, "request": request}
        if self.hops:
            report["hops"] = self.hops
        report["events"] = self.events
        return report


def open_trace(source, subject: bytes, header_size: int, data: bytes, may_publish) -> Trace | None:
    """The trace of a message with headers (`data`: headers + payload + CRLF), or None if it
    asks for none. `may_publish` is the source's publish permission verdict (None: all)."""
    headers = trace_headers(data[:header_size])
    if headers is None:
        return None
    only = headers.get(TRACE_ONLY, [""])[0].lower() in _TRUE
    dest = headers[TRACE_DEST.decode()][0]
    trace = Trace(dest, only, headers, header_size, data)
    account = getattr(source, "account", None)  # (a route has none: `$G`)
    if account is not None:
        trace.account = account.name
    origin = headers.get(ORIGIN_ACCOUNT)
    if origin is not None:
        error = (f'Message tracing disabled because of header "{ORIGIN_ACCOUNT}" with '
                 f'value="{origin[0]}"')  # fmt: skip
        if not only:  # delivered, with the trace turned off for the servers after this one
            trace.header_size, trace.data = set_header(header_size, data, TRACE_DEST.decode(), DISABLED)
        return trace.off(skip=only, error=error)
    if source.is_route:
        trace.hop = headers.get(TRACE_HOP, [""])[0]
    destination = dest.encode()
    if not _valid_publish_subject(destination):
        error = f"Destination {go_quote(dest)} is not valid, won't be able to trace events"
        return trace.off(skip=only, error=error)
    if (destination[:5] == b"_GR_." and len(destination) > 5) or destination.startswith(b"$NRG.") or (
        may_publish is not None and not may_publish(destination)
    ):
        return trace.off(skip=True, denied=True)
    trace.ingress(source, subject)
    return trace


def set_header(header_size: int, data: bytes, key: str, value: str) -> tuple[int, bytes]:
    """`data` with header `key` set to `value` (earlier lines of it removed, the new one
    last), as nats-server's client.setHeader; returns the new header size and data."""
    header = data[: header_size - 2] if header_size > 2 else HEADER_LINE
    name = key.encode()
    start = header.find(b"\n" + name + b":")
    while start >= 0:
        end = header.find(b"\r\n", start + 1)
        if end < 0:
            break
        header = header[: start + 1] + header[end + 2 :]
        start = header.find(b"\n" + name + b":")
    if len(header) <= len(HEADER_LINE) - 2:  # nothing but the status line left
        header = HEADER_LINE
    header += name + b": " + value.encode() + b"\r\n\r\n"
    return len(header), header + data[max(header_size, 0):]


def _valid_publish_subject(subject: bytes) -> bool:
    """nats-server's IsValidPublishSubject: tokens neither empty nor wildcards, no spaces."""
    return bool(subject) and is_valid_literal_subject(subject) and not any(
        c in subject for c in b" \t\r\n"
    )


def _kind(conn) -> int:
    if getattr(conn, "is_leaf", False):
        return LEAF
    return ROUTER if conn.is_route else CLIENT


def _name(conn) -> str:
    """A connection's name in events: a client's CONNECT name, a route's server name."""
    if conn.is_route:
        return conn.remote_name
    opts = getattr(conn, "opts", None)
    return opts.name if opts is not None else ""


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


