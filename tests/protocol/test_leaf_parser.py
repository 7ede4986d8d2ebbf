"""The leaf node parser (protocol/leaf.py): each op, every split point, nats-server's errors,
and the lines trionats writes."""

from __future__ import annotations

import pytest

from trionats import defaults, errors
from trionats.errors import ProtocolError, Reason
from trionats.protocol.events import PING, PONG, Connect, Err, Info
from trionats.protocol.leaf import (
    LeafMsg,
    LeafParser,
    LeafSub,
    LeafUnsub,
    lmsg_line,
    ls_minus,
    ls_plus,
    version_at_least,
)

# Lines captured between a nats-server 2.15.1 hub and leaf (-DV traces).
CAPTURED = [
    (b"LS+ $LDS.nScXAdcJpN1UtU8WxplQyd\r\n", LeafSub(b"$LDS.nScXAdcJpN1UtU8WxplQyd", None, 1, b"$LDS.nScXAdcJpN1UtU8WxplQyd")),
    (b"LS+ x.>\r\n", LeafSub(b"x.>", None, 1, b"x.>")),
    (b"LS+ y q1 1\r\n", LeafSub(b"y", b"q1", 1, b"y q1")),
    (b"LS+ hq q 3\r\n", LeafSub(b"hq", b"q", 3, b"hq q")),
    (b"LMSG foo r 2\r\nhi\r\n", LeafMsg(b"foo", b"r", (), -1, b"hi\r\n")),
    (b"LMSG bar | q 1\r\nx\r\n", LeafMsg(b"bar", b"", (b"q",), -1, b"x\r\n")),
    (b"HMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", LeafMsg(b"foo", b"", (), 12, b"NATS/1.0\r\n\r\nhi\r\n")),
    (b"LS- x.>\r\n", LeafUnsub(b"x.>")),
]

OTHERS = [
    (b"LMSG a + r q1 q2 2\r\nhi\r\n", LeafMsg(b"a", b"r", (b"q1", b"q2"), -1, b"hi\r\n")),
    (b"HMSG a | q 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", LeafMsg(b"a", b"", (b"q",), 12, b"NATS/1.0\r\n\r\nhi\r\n")),
    (b"HMSG a r 12 12\r\nNATS/1.0\r\n\r\n\r\n", LeafMsg(b"a", b"r", (), 12, b"NATS/1.0\r\n\r\n\r\n")),
    (b"LMSG a 0\r\n\r\n", LeafMsg(b"a", b"", (), -1, b"\r\n")),
    (b"ls+\tq.a\tg\t2\r\n", LeafSub(b"q.a", b"g", 2, b"q.a\tg")),
    (b"LS- q.a g\r\n", LeafUnsub(b"q.a g")),
    (b'CONNECT {"name":"x"}\r\n', Connect(b'{"name":"x"}')),
    (b"INFO {}\r\n", Info(b"{}")),
    (b"-ERR 'Loop detected'\r\n", Err(b"'Loop detected'")),
    (b"PING\r\n", PING),
    (b"PONG\r\n", PONG),
    (b"PUB a r 2\r\nhi\r\n", LeafMsg(b"a", b"r", (), -1, b"hi\r\n")),  # as nats-server reads it
    (b"UNSUB q.a 5\r\n", LeafUnsub(b"q.a")),
]

ALL = CAPTURED + OTHERS
STREAM = b"".join(data for data, _ in ALL)
EXPECTED = [(type(event), tuple(event)) for _, event in ALL]


def parse(*chunks: bytes, **options) -> list[tuple]:
    parser = LeafParser(**options)
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


# Each closes the connection without -ERR, as nats-server's processLeaf*Args errors do.
MALFORMED = [
    b"LS+ a b\r\n",  # a queue needs its weight
    b"LS+ a b 1 extra\r\n",
    b"LMSG foo\r\n",
    b"LMSG x 99999999999\r\n",  # over 9 digits: "Bad or Missing Size"
    b"LMSG foo x q 2\r\n",  # the reply indicator must be + or |
    b"LMSG foo ++ r q 2\r\n",
    b"LMSG foo abc\r\n",
    b"HMSG foo 5 3\r\n",  # header larger than the total
    b"HMSG foo 3\r\n",
    b"HMSG foo x 3\r\n",
    b"SUB foo 1\r\n",  # nats-server closes a leaf connection at a client's SUB
]


@pytest.mark.parametrize("data", MALFORMED, ids=repr)
def test_malformed_lines_close_silently(data):
    with pytest.raises(ProtocolError) as raised:
        parse(data)
    assert raised.value.err is None
    assert raised.value.reason == Reason.PROTOCOL_VIOLATION


@pytest.mark.parametrize(
    "data", [b"MSG foo 1 2\r\nhi\r\n", b"RMSG $G foo 2\r\nhi\r\n",
             b"LMSG foo 2\r\nhiX\r\n"], ids=repr,
)  # fmt: skip
def test_other_ops_and_bad_framing_are_unknown(data):
    with pytest.raises(ProtocolError) as raised:
        parse(data)
    assert raised.value.err == errors.UNKNOWN_PROTOCOL


def test_a_message_over_max_payload_is_a_payload_violation():
    with pytest.raises(ProtocolError) as raised:
        parse(b"LMSG big 2000000\r\n")
    assert (raised.value.err, raised.value.reason) == (errors.MAX_PAYLOAD, Reason.MAX_PAYLOAD)
    assert parse(b"LMSG ok 10\r\n0123456789\r\n", max_payload=10)


def test_control_line_is_sixteen_times_the_client_limit():
    limit = 64 * defaults.ROUTE_CONTROL_LINE_FACTOR
    subject = b"s" * limit  # the argument, as nats-server measures it
    assert parse(b"LS+ " + subject + b"\r\n", max_control_line=64)
    with pytest.raises(ProtocolError) as raised:
        parse(b"LS+ " + subject + b"s\r\n", max_control_line=64)
    assert raised.value.err == errors.MAX_CONTROL_LINE


def test_before_connect_only_connect_is_read():
    with pytest.raises(ProtocolError) as raised:
        parse(b"LS+ foo\r\n", require_connect=True)
    assert raised.value.err == errors.AUTH_VIOLATION


def test_written_lines_read_back():
    lines = [
        ls_plus(b"a.>"), ls_plus(b"q", b"g", 3), ls_minus(b"a.>"), ls_minus(b"q", b"g"),
        lmsg_line(b"s", b"", (), -1, 2) + b"hi\r\n",
        lmsg_line(b"s", b"r", (b"g",), -1, 2) + b"hi\r\n",
        lmsg_line(b"s", b"", (b"g", b"h"), 12, 14) + b"NATS/1.0\r\n\r\nhi\r\n",
        lmsg_line(b"s", b"r", (), 12, 12) + b"NATS/1.0\r\n\r\n\r\n",
    ]  # fmt: skip
    assert lines[:6] == [b"LS+ a.>\r\n", b"LS+ q g 3\r\n", b"LS- a.>\r\n", b"LS- q g\r\n",
                         b"LMSG s 2\r\nhi\r\n", b"LMSG s + r g 2\r\nhi\r\n"]  # fmt: skip
    assert parse(b"".join(lines)) == [
        (LeafSub, (b"a.>", None, 1, b"a.>")),
        (LeafSub, (b"q", b"g", 3, b"q g")),
        (LeafUnsub, (b"a.>",)),
        (LeafUnsub, (b"q g",)),
        (LeafMsg, (b"s", b"", (), -1, b"hi\r\n")),
        (LeafMsg, (b"s", b"r", (b"g",), -1, b"hi\r\n")),
        (LeafMsg, (b"s", b"", (b"g", b"h"), 12, b"NATS/1.0\r\n\r\nhi\r\n")),
        (LeafMsg, (b"s", b"r", (), 12, b"NATS/1.0\r\n\r\n\r\n")),
    ]


@pytest.mark.parametrize(
    ("version", "minimum", "ok"),
    [("2.15.1", "2.9.0", True), ("2.9.0", "2.9.0", True), ("2.8.4", "2.9.0", False),
     ("v2.10.0-beta", "2.10.0", True), ("", "2.8.0", False), ("junk", "2.8.0", False)],
)  # fmt: skip
def test_min_version(version, minimum, ok):
    assert version_at_least(version, minimum) is ok
