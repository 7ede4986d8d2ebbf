"""The route role of the sans-I/O parser: RS+/RS-, RMSG/HMSG, LS+/LS-/LMSG, A+/A-, split anywhere."""

from __future__ import annotations

import pytest

from trionats import defaults, errors
from trionats.errors import ProtocolError, Reason
from trionats.protocol.events import (
    PING,
    ASub,
    AUnsub,
    Info,
    LMsg,
    LSub,
    LUnsub,
    RMsg,
    RSub,
    RUnsub,
    Sub,
)
from trionats.protocol.parser import RouteParser

# Lines captured between two nats-server 2.15.1 nodes (route-protocol.md, section 2).
CAPTURED = [
    (b"RS+ $G foo\r\n", RSub(b"$G", b"foo", None, 1)),
    (b"RS+ $G foo qg 1\r\n", RSub(b"$G", b"foo", b"qg", 1)),
    (b"RS+ $G foo qg 2\r\n", RSub(b"$G", b"foo", b"qg", 2)),
    (b"RS+ $G bar.*\r\n", RSub(b"$G", b"bar.*", None, 1)),
    (b"RMSG $G foo | qg qh 2\r\nhi\r\n", RMsg(b"$G", b"foo", b"", (b"qg", b"qh"), -1, b"hi\r\n")),
    (
        b"RMSG $G foo + rep.1 qg qh 2\r\nhi\r\n",
        RMsg(b"$G", b"foo", b"rep.1", (b"qg", b"qh"), -1, b"hi\r\n"),
    ),
    (
        b"HMSG $G foo | qg qh 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
        RMsg(b"$G", b"foo", b"", (b"qg", b"qh"), 12, b"NATS/1.0\r\n\r\nhi\r\n"),
    ),
    (
        b"HMSG $G foo + rep.2 qg qh 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n",
        RMsg(b"$G", b"foo", b"rep.2", (b"qg", b"qh"), 18, b"NATS/1.0\r\nA: b\r\n\r\nhi\r\n"),
    ),
    (b"RMSG $G bar.x 1\r\nz\r\n", RMsg(b"$G", b"bar.x", b"", (), -1, b"z\r\n")),
    (b"RS- $G bar.*\r\n", RUnsub(b"$G", b"bar.*", None)),
    (b"RS- $G foo qg\r\n", RUnsub(b"$G", b"foo", b"qg")),
]

OTHERS = [
    (b"RMSG $G foo _INBOX.x 3\r\nabc\r\n", RMsg(b"$G", b"foo", b"_INBOX.x", (), -1, b"abc\r\n")),
    (b"HMSG $G foo 12 12\r\nNATS/1.0\r\n\r\n\r\n", RMsg(b"$G", b"foo", b"", (), 12, b"NATS/1.0\r\n\r\n\r\n")),
    (b"RMSG $G foo 0\r\n\r\n", RMsg(b"$G", b"foo", b"", (), -1, b"\r\n")),
    (b"rs+\t$G\tfoo\r\n", RSub(b"$G", b"foo", None, 1)),
    (b"LS+ leaf $G x q 3\r\n", LSub(b"leaf", b"$G", b"x", b"q", 3)),
    (b"LS+ leaf $G x\r\n", LSub(b"leaf", b"$G", b"x", None, 1)),
    (b"LS- $G x q\r\n", LUnsub(b"", b"$G", b"x", b"q")),
    (b"LMSG leaf $G x 0 2\r\nhi\r\n", LMsg(b"leaf", b"$G", b"x", b"", (), 0, b"hi\r\n")),
    (
        b"LMSG leaf $G x + r q 0 2\r\nhi\r\n",
        LMsg(b"leaf", b"$G", b"x", b"r", (b"q",), 0, b"hi\r\n"),
    ),
    (b"A+ $G\r\n", ASub(b"$G")),
    (b"A- $G\r\n", AUnsub(b"$G")),
    (b"INFO {}\r\n", Info(b"{}")),
    (b"PING\r\n", PING),
]

ALL = CAPTURED + OTHERS
STREAM = b"".join(data for data, _ in ALL)
EXPECTED = [(type(event), tuple(event)) for _, event in ALL]


def parse(*chunks: bytes, **options) -> list[tuple]:
    parser = RouteParser(**options)
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return [(type(event), tuple(event)) for event in events]


@pytest.mark.parametrize(("data", "event"), ALL, ids=[repr(d[:24]) for d, _ in ALL])
def test_each_operation(data, event):
    assert parse(data) == [(type(event), tuple(event))]


def test_the_whole_stream_split_at_every_offset():
    for offset in range(len(STREAM) + 1):
        assert parse(STREAM[:offset], STREAM[offset:]) == EXPECTED, offset


def test_the_whole_stream_one_byte_at_a_time():
    assert parse(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EXPECTED


def test_leaf_unsubscribe_with_origin_when_announced():
    assert parse(b"LS- leaf $G x q\r\n", origin_unsubs=True) == [
        (LUnsub, (b"leaf", b"$G", b"x", b"q"))
    ]


MALFORMED = [
    b"RS+ $G\r\n",
    b"RS+ $G foo qg\r\n",
    b"RS+ $G foo qg 1 extra\r\n",
    b"RS- $G\r\n",
    b"RS- $G foo q x\r\n",
    b"RMSG $G foo\r\n",
    b"RMSG $G foo x q 2\r\n",  # the reply indicator must be + or |
    b"RMSG $G foo ++ r q 2\r\n",
    b"RMSG $G foo abc\r\n",
    b"HMSG $G foo 5 3\r\n",  # header larger than the total
    b"HMSG $G foo 3\r\n",
    b"LS+ leaf $G\r\n",
    b"LMSG leaf $G x 2\r\n",
    b"A+ $G extra\r\n",
]


@pytest.mark.parametrize("data", MALFORMED, ids=repr)
def test_malformed_lines_close_the_route_silently(data):
    with pytest.raises(ProtocolError) as raised:
        parse(data)
    assert raised.value.err is None
    assert raised.value.reason == Reason.PROTOCOL_VIOLATION


@pytest.mark.parametrize(
    "data", [b"MSG foo 1 2\r\nhi\r\n", b"RMSG $G foo 2\r\nhiX\r\n"], ids=repr
)
def test_a_clients_msg_and_bad_framing_are_unknown(data):
    with pytest.raises(ProtocolError) as raised:
        parse(data)
    assert raised.value.err == errors.UNKNOWN_PROTOCOL


def test_a_clients_ops_read_as_nats_server_reads_them_on_a_route():
    """PUB: a routed message of no account; SUB: read and ignored; UNSUB: RS-."""
    events = list(RouteParser().feed(b"PUB foo r 2\r\nhi\r\nSUB foo 1\r\nUNSUB $G foo q\r\n"))
    assert events[0] == RMsg(b"", b"foo", b"r", (), -1, b"hi\r\n")
    assert type(events[1]) is Sub
    assert events[2] == RUnsub(b"$G", b"foo", b"q")
    parser = RouteParser()
    with pytest.raises(ProtocolError) as raised:  # HPUB only once headers are agreed on
        list(parser.feed(b"HPUB foo 2 4\r\n\r\nhi\r\n"))
    assert raised.value.err is None
    parser = RouteParser()
    parser.headers = True
    hpub = list(parser.feed(b"HPUB foo 2 4\r\n\r\nhi\r\n"))
    assert hpub == [RMsg(b"", b"foo", b"", (), 2, b"\r\nhi\r\n")]
    with pytest.raises(ProtocolError) as raised:
        parse(b"UNSUB 1\r\n")
    assert raised.value.err is None


def test_route_control_line_is_sixteen_times_the_client_limit():
    limit = 64 * defaults.ROUTE_CONTROL_LINE_FACTOR
    subject = b"a" * (limit - len(b"$G "))
    assert parse(b"RS+ $G " + subject + b"\r\n", max_control_line=64)[0][0] is RSub
    with pytest.raises(ProtocolError) as raised:
        parse(b"RS+ $G " + subject + b"b\r\n", max_control_line=64)
    assert raised.value.err == errors.MAX_CONTROL_LINE


def test_routed_messages_have_no_payload_limit():
    payload = b"x" * (defaults.MAX_PAYLOAD * 2)
    events = parse(b"RMSG $G big %d\r\n" % len(payload), payload[:1000], payload[1000:] + b"\r\n")
    assert events == [(RMsg, (b"$G", b"big", b"", (), -1, payload + b"\r\n"))]


def test_a_clients_pub_waiting_for_its_payload_is_read_again_as_an_rmsg_line():
    """nats-server keeps a message's line for the next read by parsing it again with the
    route's rules: a PUB line that is no RMSG line is then an unknown op, and one that is
    names the message's account, subject and reply."""
    with pytest.raises(ProtocolError) as raised:
        list(RouteParser().feed(b"PUB foo 2\r\nh"))
    assert raised.value.err == errors.UNKNOWN_PROTOCOL
    parser = RouteParser()
    assert list(parser.feed(b"PUB $G foo 2\r\nh")) == []
    assert list(parser.feed(b"i\r\n")) == [RMsg(b"$G", b"foo", b"", (), -1, b"hi\r\n")]
    parser = RouteParser()
    parser.headers = True
    with pytest.raises(ProtocolError):
        list(parser.feed(b"HPUB foo 2 4\r\n\r\n"))


@pytest.mark.parametrize(
    "head",
    [b"$G foo", b"$G foo rep.1", b"$G foo + rep.1 q1 q2", b"$G foo | q1", b"$G\tfoo", b"$G foo\rx"],
)
def test_a_known_rmsg_head_with_new_sizes(head):
    # The line's head (before the size) is remembered apart from its size token: later lines
    # with that head and other sizes (or bad ones) give what a fresh parser gives.
    lines = [b"RMSG %s %d\r\n%s\r\n" % (head, n, b"x" * n) for n in (1, 12, 0, 7, 12)]
    parser = RouteParser()
    events = [e for line in lines for e in parser.feed(line)]
    assert events == [e for line in lines for e in RouteParser().feed(line)]
    assert [len(e.data) - 2 for e in events] == [1, 12, 0, 7, 12]
    for bad in (b"RMSG %s 1x\r\nx\r\n", b"RMSG %s 01\r\nx\r\n", b"RMSG %s 1234567890\r\n"):
        outcomes = []
        for route in (parser, RouteParser()):
            try:
                outcomes.append(list(route.feed(bad % head)))
            except ProtocolError as error:
                outcomes.append(error.err)
        assert outcomes[0] == outcomes[1]
        if isinstance(outcomes[0], str) or outcomes[0] is None:
            parser = RouteParser()  # a parser is broken after an error
            list(parser.feed(lines[0]))
