"""The sans-I/O client protocol parser: events, split reads, malformed input, limits, leniency."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trionats import defaults, errors
from trionats.errors import ProtocolError, Reason
from trionats.protocol.events import PING, PONG, Connect, Err, Info, Pub, Sub, Unsub
from trionats.protocol.parser import Parser

UNKNOWN = errors.UNKNOWN_PROTOCOL
SILENT = None  # nats-server closes the connection without any -ERR

# The close reason nats-server records for each kind of parser error (checked in /connz on
# nats-server 2.15.1: a bad op and a bad PUB line both close as "Protocol Violation").
REASON_OF = {
    UNKNOWN: Reason.PROTOCOL_VIOLATION,
    SILENT: Reason.PROTOCOL_VIOLATION,
    errors.MAX_PAYLOAD: Reason.MAX_PAYLOAD,
    errors.MAX_CONTROL_LINE: Reason.MAX_CONTROL_LINE,
    errors.AUTH_VIOLATION: Reason.AUTH_VIOLATION,
}


# --- helpers ----------------------------------------------------------------------------------


def typed(events) -> list[tuple]:
    """Events as (type name, fields): NamedTuples of different types can compare equal
    (PING == PONG == ()), so comparisons must include the type. A PubRun (batch mode)
    is expanded into the Pubs it stands for."""
    out = []
    for event in events:
        if type(event).__name__ in ("PubRun", "PubBatch"):
            out.extend(("Pub", tuple(pub)) for pub in event.expand())
        else:
            out.append((type(event).__name__, tuple(event)))
    return out


def parse_chunks(chunks, **options) -> list[tuple]:
    parser = Parser(**options)
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return typed(events)


def parse(data: bytes, **options) -> list[tuple]:
    return parse_chunks([data], **options)


def parse_error(chunks, **options) -> tuple[list[tuple], ProtocolError]:
    """Feed `chunks`; return the events yielded before the ProtocolError, and the error."""
    parser = Parser(**options)
    events = []
    with pytest.raises(ProtocolError) as raised:
        for chunk in chunks:
            for event in parser.feed(chunk):
                events.append(event)
    return typed(events), raised.value


def splits(data: bytes):
    """Every way to cut `data` in two (including the empty halves)."""
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# --- (a) every op, in one read and split anywhere ----------------------------------------------

HEADERS = b"NATS/1.0\r\nA: b\r\n\r\n"  # 18 bytes

VALID = {
    "pub": (b"PUB foo 5\r\nhello\r\n", [Pub(b"foo", b"", -1, b"hello\r\n")]),
    "pub_reply": (b"PUB foo bar 5\r\nhello\r\n", [Pub(b"foo", b"bar", -1, b"hello\r\n")]),
    "hpub": (
        b"HPUB foo 18 20\r\n" + HEADERS + b"hi\r\n",
        [Pub(b"foo", b"", 18, HEADERS + b"hi\r\n")],
    ),
    "hpub_reply": (
        b"HPUB foo bar 18 20\r\n" + HEADERS + b"hi\r\n",
        [Pub(b"foo", b"bar", 18, HEADERS + b"hi\r\n")],
    ),
    "hpub_empty_header_block": (b"HPUB foo 0 2\r\nhi\r\n", [Pub(b"foo", b"", 0, b"hi\r\n")]),
    "sub": (b"SUB foo 1\r\n", [Sub(b"foo", None, b"1")]),
    "sub_queue": (b"SUB foo.* workers 22\r\n", [Sub(b"foo.*", b"workers", b"22")]),
    "unsub": (b"UNSUB 1\r\n", [Unsub(b"1", -1)]),
    "unsub_max": (b"UNSUB 1 10\r\n", [Unsub(b"1", 10)]),
    "connect": (
        b'CONNECT {"verbose":false,"pedantic":false}\r\n',
        [Connect(b'{"verbose":false,"pedantic":false}')],
    ),
    # The server's own INFO format, space before CRLF: the space is part of the argument.
    "info": (b'INFO {"server_id":"x"} \r\n', [Info(b'{"server_id":"x"} ')]),
    "ping": (b"PING\r\n", [PING]),
    "pong": (b"PONG\r\n", [PONG]),
    "ok": (b"+OK\r\n", []),  # accepted and ignored
    "err": (b"-ERR 'oops'\r\n", [Err(b"'oops'")]),
    "several_ops": (
        b"CONNECT {}\r\nSUB a 1\r\nPUB a 2\r\nhi\r\nPING\r\n"
        b"UNSUB 1\r\nPONG\r\n+OK\r\nPUB b 0\r\n\r\n",
        [
            Connect(b"{}"),
            Sub(b"a", None, b"1"),
            Pub(b"a", b"", -1, b"hi\r\n"),
            PING,
            Unsub(b"1", -1),
            PONG,
            Pub(b"b", b"", -1, b"\r\n"),
        ],
    ),
    "zero_length_payload": (b"PUB foo 0\r\n\r\n", [Pub(b"foo", b"", -1, b"\r\n")]),
    # A payload holding CRLF and something that looks like a control line is still opaque.
    "payload_with_crlf": (
        b"PUB foo 11\r\nPUB foo 3\r\n\r\nPING\r\n",
        [Pub(b"foo", b"", -1, b"PUB foo 3\r\n\r\n"), PING],
    ),
    "same_pub_repeated": (
        b"PUB foo 2\r\nab\r\nPUB foo 2\r\ncd\r\nPUB foo 2\r\nef\r\n",
        [Pub(b"foo", b"", -1, payload + b"\r\n") for payload in (b"ab", b"cd", b"ef")],
    ),
}


@pytest.mark.parametrize(("data", "expected"), list(VALID.values()), ids=list(VALID))
def test_valid_op_in_one_read(data, expected):
    assert parse(data, headers=True) == typed(expected)


@pytest.mark.parametrize(("data", "expected"), list(VALID.values()), ids=list(VALID))
def test_valid_op_split_at_every_offset(data, expected):
    for chunks in splits(data):
        assert parse_chunks(chunks, headers=True) == typed(expected), chunks


@pytest.mark.parametrize(("data", "expected"), list(VALID.values()), ids=list(VALID))
def test_valid_op_one_byte_at_a_time(data, expected):
    assert parse_chunks(bytewise(data), headers=True) == typed(expected)


def test_events_come_out_as_soon_as_complete():
    # The generator yields each op before the rest of the buffer is looked at, so the
    # connection can change settings (headers, require_connect) between two ops of one read.
    parser = Parser()
    events = parser.feed(b'CONNECT {"headers":true}\r\nHPUB foo 0 0\r\n\r\n')
    assert typed([next(events)]) == typed([Connect(b'{"headers":true}')])
    parser.headers = True
    assert typed(events) == typed([Pub(b"foo", b"", 0, b"\r\n")])


def test_large_payload_split_in_many_reads():
    payload = bytes(range(256)) * 1000
    data = b"PUB big %d\r\n" % len(payload) + payload + b"\r\nPING\r\n"
    chunks = [data[i : i + 4093] for i in range(0, len(data), 4093)]
    assert parse_chunks(chunks) == typed([Pub(b"big", b"", -1, payload + b"\r\n"), PING])


# --- (b) malformed input: the -ERR text (or a silent close) -----------------------------------

# (id, input, parser options, expected err). All verified against nats-server 2.15.1 over a raw
# socket unless the comment says it comes from reading server/parser.go.
MALFORMED = [
    # Not an op at all, or an op name cut short / run on.
    ("unknown_op", b"FOO\r\n", {}, UNKNOWN),
    ("empty_line", b"\r\n", {}, UNKNOWN),
    ("bare_lf", b"\n", {}, UNKNOWN),
    ("space_first", b" PING\r\n", {}, UNKNOWN),
    ("pub_no_args", b"PUB\r\n", {}, UNKNOWN),
    ("pub_run_on_name", b"PUBX foo 3\r\n", {}, UNKNOWN),
    ("ping_cut_short", b"PIN\r\n", {}, UNKNOWN),
    ("ok_cut_short", b"+O\r\n", {}, UNKNOWN),
    ("err_without_text", b"-ERR\r\n", {}, UNKNOWN),
    ("unsub_no_space", b"UNSUB\r\n", {}, UNKNOWN),
    ("sub_no_space", b"SUB\r\n", {}, UNKNOWN),
    ("hpub_no_space", b"HPUB\r\n", {"headers": True}, UNKNOWN),
    ("connect_cut_short", b"CONNEC {}\r\n", {}, UNKNOWN),
    # Server-to-client and route/leaf ops are unknown on a client connection.
    ("msg", b"MSG foo 1 3\r\nabc\r\n", {}, UNKNOWN),
    ("rs_plus", b"RS+ $G foo 1\r\n", {}, UNKNOWN),
    ("rs_minus", b"RS- $G foo\r\n", {}, UNKNOWN),
    ("rmsg", b"RMSG $G foo 3\r\nabc\r\n", {}, UNKNOWN),
    ("ls_plus", b"LS+ foo\r\n", {}, UNKNOWN),
    ("lmsg", b"LMSG foo 3\r\nabc\r\n", {}, UNKNOWN),
    ("a_plus", b"A+ foo\r\n", {}, UNKNOWN),
    ("a_minus", b"A- foo\r\n", {}, UNKNOWN),
    ("hmsg_without_args", b"HMSG\r\n", {}, UNKNOWN),
    # A client HMSG is an empty message: anything but CRLF right after its line is bad framing.
    ("hmsg_with_payload", b"HMSG foo 1 2\r\nab\r\n", {}, UNKNOWN),
    # The payload must be followed by exactly CRLF.
    ("payload_longer_than_size", b"PUB foo 3\r\nhello\r\n", {}, UNKNOWN),
    ("payload_then_lf_only", b"PUB foo 3\r\nabc\nPING\r\n", {}, UNKNOWN),
    ("payload_then_cr_then_junk", b"PUB foo 3\r\nabc\rPING\r\n", {}, UNKNOWN),
    ("zero_payload_no_crlf", b"PUB foo 0\r\nPING\r\n", {}, UNKNOWN),
    ("hpub_payload_longer", b"HPUB foo 0 2\r\nabc\r\n", {"headers": True}, UNKNOWN),
    # Bad PUB arguments: closed without -ERR.
    ("pub_one_arg", b"PUB foo\r\n", {}, SILENT),
    ("pub_four_args", b"PUB foo a b 3\r\n", {}, SILENT),
    ("pub_size_not_a_number", b"PUB foo abc\r\n", {}, SILENT),
    ("pub_negative_size", b"PUB foo -1\r\n", {}, SILENT),
    ("pub_size_with_plus", b"PUB foo +3\r\n", {}, SILENT),  # parseSize: digits only
    ("pub_size_ten_digits", b"PUB foo 1234567890\r\n", {}, SILENT),  # more than 9 digits
    ("pub_size_ten_digits_leading_zero", b"PUB foo 0000000001\r\n", {}, SILENT),
    ("pub_only_blanks", b"PUB  \t \r\n", {}, SILENT),
    # Bad HPUB arguments, or HPUB when the client did not CONNECT with headers:true.
    ("hpub_header_larger_than_total", b"HPUB foo 12 10\r\n", {"headers": True}, SILENT),
    ("hpub_two_args", b"HPUB foo 2\r\n", {"headers": True}, SILENT),
    ("hpub_five_args", b"HPUB foo r 1 2 3\r\n", {"headers": True}, SILENT),
    ("hpub_header_size_not_a_number", b"HPUB foo x 2\r\n", {"headers": True}, SILENT),
    ("hpub_total_not_a_number", b"HPUB foo 2 x\r\n", {"headers": True}, SILENT),
    ("hpub_without_headers_support", b"HPUB foo 2 2\r\nab\r\n", {}, SILENT),
    ("hpub_without_headers_lowercase", b"hpub foo 0 0\r\n\r\n", {}, SILENT),
    # Bad SUB / UNSUB argument counts.
    ("sub_one_arg", b"SUB foo\r\n", {}, SILENT),
    ("sub_four_args", b"SUB foo q 1 2\r\n", {}, SILENT),
    ("unsub_three_args", b"UNSUB 1 2 3\r\n", {}, SILENT),
    # Size past max_payload (the default 1 MiB), decided on the control line alone.
    ("pub_over_max_payload", b"PUB foo 999999999\r\n", {}, errors.MAX_PAYLOAD),
    # With auth configured, anything but CONNECT first is refused (even a non-op).
    ("auth_ping_first", b"PING\r\n", {"require_connect": True}, errors.AUTH_VIOLATION),
    ("auth_sub_first", b"SUB foo 1\r\n", {"require_connect": True}, errors.AUTH_VIOLATION),
    ("auth_pub_first", b"PUB foo 1\r\nx\r\n", {"require_connect": True}, errors.AUTH_VIOLATION),
    ("auth_garbage_first", b"xyz\r\n", {"require_connect": True}, errors.AUTH_VIOLATION),
    ("auth_empty_line", b"\r\n", {"require_connect": True}, errors.AUTH_VIOLATION),
    # A first byte C passes the auth check; the rest of the name is then judged as usual.
    ("auth_c_then_unknown", b"CPING\r\n", {"require_connect": True}, UNKNOWN),
]


@pytest.mark.parametrize(
    ("data", "options", "err"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_input(data, options, err):
    events, error = parse_error([data], **options)
    assert error.err == err
    assert error.reason == REASON_OF[err]
    assert events == []


@pytest.mark.parametrize(
    ("data", "options", "err"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_input_split_anywhere_gives_the_same_error(data, options, err):
    for chunks in splits(data):
        events, error = parse_error(chunks, **options)
        assert (events, error.err) == ([], err), chunks
    events, error = parse_error(bytewise(data), **options)
    assert (events, error.err) == ([], err)


def test_ops_before_the_error_are_delivered_first():
    events, error = parse_error([b"SUB foo 1\r\nPING\r\nFOO\r\n"])
    assert events == typed([Sub(b"foo", None, b"1"), PING])
    assert error.err == UNKNOWN


def test_bad_framing_is_reported_as_soon_as_the_wrong_byte_arrives():
    # nats-server answers -ERR on the byte after the payload, without waiting for a LF.
    parser = Parser()
    assert list(parser.feed(b"PUB foo 3\r\nab")) == []
    with pytest.raises(ProtocolError) as raised:
        list(parser.feed(b"cX"))
    assert raised.value.err == UNKNOWN


# --- (c) limits at the edge -----------------------------------------------------------------


def sub_line(arg_length: int) -> bytes:
    """A SUB whose argument text (after `SUB `) is exactly `arg_length` bytes."""
    return b"SUB foo " + b"s" * (arg_length - 4) + b"\r\n"


@pytest.mark.parametrize("limit", [16, 512, defaults.MAX_CONTROL_LINE])
def test_control_line_at_the_limit_passes(limit):
    assert parse(sub_line(limit), max_control_line=limit) == typed(
        [Sub(b"foo", None, b"s" * (limit - 4))]
    )


@pytest.mark.parametrize("limit", [16, 512, defaults.MAX_CONTROL_LINE])
def test_control_line_one_byte_over_the_limit_fails(limit):
    _, error = parse_error([sub_line(limit + 1)], max_control_line=limit)
    assert error.err == errors.MAX_CONTROL_LINE
    assert error.reason == Reason.MAX_CONTROL_LINE


def test_control_line_limit_counts_only_the_argument():
    # The op name and the separators after it are not part of the argument text.
    limit = 16
    data = b"SUB \t  " + b"foo 123456789012\r\n"  # argument: 16 bytes
    assert parse(data, max_control_line=limit) == typed([Sub(b"foo", None, b"123456789012")])
    # A bare LF terminator has no CR to drop: the same argument length still passes.
    assert parse(data.replace(b"\r\n", b"\n"), max_control_line=limit) == typed(
        [Sub(b"foo", None, b"123456789012")]
    )


def test_control_line_limit_applies_to_every_op_with_arguments():
    limit = 16
    for data in (
        b"PUB " + b"s" * 15 + b" 1\r\nx\r\n",
        b"UNSUB " + b"1" * 17 + b"\r\n",
        b"CONNECT " + b"{" * 17 + b"\r\n",
        b"INFO " + b"{" * 17 + b"\r\n",
        b"-ERR " + b"x" * 17 + b"\r\n",
        b"HPUB " + b"s" * 13 + b" 0 1\r\nx\r\n",
    ):
        _, error = parse_error([data], max_control_line=limit, headers=True)
        assert error.err == errors.MAX_CONTROL_LINE, data


def test_long_line_without_lf_fails_before_the_lf_arrives():
    # nats-server checks what it buffered of a split control line, so a client cannot make
    # it hold an endless line.
    limit = 16
    parser = Parser(max_control_line=limit)
    assert list(parser.feed(b"SUB foo " + b"s" * 12)) == []  # 16 bytes of argument: fine
    with pytest.raises(ProtocolError) as raised:
        list(parser.feed(b"s"))  # 17
    assert raised.value.err == errors.MAX_CONTROL_LINE


def test_long_line_split_before_its_lf_with_cr_pending_passes():
    # "arg\r" buffered without the LF: the CR is not counted.
    limit = 16
    data = sub_line(limit)
    assert parse_chunks([data[:-1], data[-1:]], max_control_line=limit) == typed(
        [Sub(b"foo", None, b"s" * 12)]
    )


def test_long_line_without_lf_fails_in_one_read():
    _, error = parse_error([b"PUB " + b"a" * (defaults.MAX_CONTROL_LINE + 1)])
    assert error.err == errors.MAX_CONTROL_LINE


def test_ping_with_a_very_long_line_is_not_a_control_line_violation():
    # After PING nats-server discards up to LF without counting.
    data = b"PING " + b"a" * 10_000 + b"\r\nPING\r\n"
    assert parse(data, max_control_line=16) == typed([PING, PING])
    assert parse_chunks(bytewise(data[:200]) + [data[200:]], max_control_line=16) == typed(
        [PING, PING]
    )


def test_payload_at_max_payload_passes():
    data = b"PUB foo 10\r\n0123456789\r\n"
    assert parse(data, max_payload=10) == typed([Pub(b"foo", b"", -1, b"0123456789\r\n")])


def test_payload_one_over_max_payload_fails_on_the_control_line():
    # The -ERR comes before any payload byte is read.
    _, error = parse_error([b"PUB foo 11\r\n"], max_payload=10)
    assert error.err == errors.MAX_PAYLOAD
    assert error.reason == Reason.MAX_PAYLOAD


def test_hpub_max_payload_counts_headers_and_payload():
    ok = b"HPUB foo 4 10\r\nabcd012345\r\n"
    expected = [Pub(b"foo", b"", 4, b"abcd012345\r\n")]
    assert parse(ok, max_payload=10, headers=True) == typed(expected)
    # Headers 6 + payload 5 = 11 > 10, although each part alone is under the limit.
    _, error = parse_error([b"HPUB foo 6 11\r\n"], max_payload=10, headers=True)
    assert error.err == errors.MAX_PAYLOAD


def test_bad_pub_arguments_win_over_max_payload():
    # Argument errors are found before the size is compared with max_payload.
    _, error = parse_error([b"PUB foo bar baz 99999\r\n"], max_payload=10)
    assert error.err is SILENT


def test_set_limits_applies_to_a_pub_line_seen_before():
    # PUB control lines are cached by their bytes; new limits must still apply to them.
    parser = Parser(max_payload=100)
    assert typed(parser.feed(b"PUB foo 50\r\n" + b"x" * 50 + b"\r\n")) == typed(
        [Pub(b"foo", b"", -1, b"x" * 50 + b"\r\n")]
    )
    parser.set_limits(max_control_line=4096, max_payload=10)
    with pytest.raises(ProtocolError) as raised:
        list(parser.feed(b"PUB foo 50\r\n"))
    assert raised.value.err == errors.MAX_PAYLOAD

    parser = Parser()
    list(parser.feed(b"PUB foo 1\r\nx\r\n"))
    parser.set_limits(max_control_line=4, max_payload=10)
    with pytest.raises(ProtocolError) as raised:
        list(parser.feed(b"PUB foo 1\r\nx\r\n"))  # argument "foo 1": 5 bytes
    assert raised.value.err == errors.MAX_CONTROL_LINE


# --- (d) CONNECT required first ---------------------------------------------------------------


def test_require_connect_accepts_connect_in_any_case():
    for name in (b"CONNECT", b"connect", b"Connect"):
        parser = Parser(require_connect=True)
        assert typed(parser.feed(name + b" {}\r\n")) == typed([Connect(b"{}")])


def test_require_connect_lifted_between_ops_of_one_read():
    parser = Parser(require_connect=True)
    events = parser.feed(b'CONNECT {"user":"a"}\r\nSUB foo 1\r\nPING\r\n')
    assert typed([next(events)]) == typed([Connect(b'{"user":"a"}')])
    parser.require_connect = False  # what the connection does once CONNECT is accepted
    assert typed(events) == typed([Sub(b"foo", None, b"1"), PING])


def test_require_connect_keeps_refusing_after_a_failed_connect():
    parser = Parser(require_connect=True)
    assert typed(parser.feed(b"CONNECT {}\r\n")) == typed([Connect(b"{}")])
    with pytest.raises(ProtocolError) as raised:
        list(parser.feed(b"PING\r\n"))
    assert raised.value.err == errors.AUTH_VIOLATION


def test_require_connect_refuses_on_the_first_byte():
    # No need to wait for the end of the line.
    with pytest.raises(ProtocolError) as raised:
        list(Parser(require_connect=True).feed(b"P"))
    assert raised.value.err == errors.AUTH_VIOLATION


# --- (e) leniency nats-server has, that clients (and telnet users) rely on --------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"pub foo 2\r\nhi\r\n", [Pub(b"foo", b"", -1, b"hi\r\n")]),
        (b"Pub foo 2\r\nhi\r\n", [Pub(b"foo", b"", -1, b"hi\r\n")]),
        (b"pUb foo 2\r\nhi\r\n", [Pub(b"foo", b"", -1, b"hi\r\n")]),
        (b"hpub foo 0 2\r\nhi\r\n", [Pub(b"foo", b"", 0, b"hi\r\n")]),
        (b"sub foo 1\r\n", [Sub(b"foo", None, b"1")]),
        (b"Unsub 1\r\n", [Unsub(b"1", -1)]),
        (b"connect {}\r\n", [Connect(b"{}")]),
        (b"info {}\r\n", [Info(b"{}")]),
        (b"ping\r\n", [PING]),
        (b"pOnG\r\n", [PONG]),
        (b"+ok\r\n", []),
        (b"-err 'x'\r\n", [Err(b"'x'")]),
    ],
)
def test_op_names_are_case_insensitive(data, expected):
    assert parse(data, headers=True) == typed(expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PUB\tfoo\t5\r\nhello\r\n", [Pub(b"foo", b"", -1, b"hello\r\n")]),
        (b"PUB \t foo \t\t bar \t 5\r\nhello\r\n", [Pub(b"foo", b"bar", -1, b"hello\r\n")]),
        (b"PUB foo 3 \r\nabc\r\n", [Pub(b"foo", b"", -1, b"abc\r\n")]),  # trailing blank
        (b"HPUB\tfoo\tbar\t0\t1\r\nx\r\n", [Pub(b"foo", b"bar", 0, b"x\r\n")]),
        (b"SUB\tfoo\tq\t1\r\n", [Sub(b"foo", b"q", b"1")]),
        (b"UNSUB\t1\t\t5\r\n", [Unsub(b"1", 5)]),
    ],
)
def test_tabs_and_runs_of_blanks_separate_arguments(data, expected):
    assert parse(data, headers=True) == typed(expected)


def test_bare_lf_terminates_control_lines():
    data = b"SUB foo 1\nPUB foo 2\nhi\r\nUNSUB 1 3\nPING\nPONG\n+OK\nCONNECT {}\n"
    assert parse(data) == typed(
        [
            Sub(b"foo", None, b"1"),
            Pub(b"foo", b"", -1, b"hi\r\n"),
            Unsub(b"1", 3),
            PING,
            PONG,
            Connect(b"{}"),
        ]
    )


def test_ping_pong_and_ok_ignore_the_rest_of_their_line():
    assert parse(b"PINGxyz\r\nPONG and more\r\n+OKAY\r\nPING\r\n") == typed([PING, PONG, PING])


def test_connect_and_info_need_no_separator():
    # Verified on nats-server 2.15.1: `CONNECT{...}` and `INFO{}` are accepted.
    assert parse(b'CONNECT{"verbose":false}\r\nINFO{}\r\n') == typed(
        [Connect(b'{"verbose":false}'), Info(b"{}")]
    )


def test_lf_right_after_the_separator_starts_the_argument():
    # nats-server takes the byte after the op's separators as the first argument byte, even a
    # LF; the argument then runs to the next LF (verified: `CONNECT\n{...}\r\n` works).
    assert parse(b'CONNECT\n{"verbose":false}\r\nPING\r\n') == typed(
        [Connect(b'\n{"verbose":false}'), PING]
    )


def test_unsub_with_unparsable_max_removes_at_once():
    # nats-server's parseSize gives -1, which means "unsubscribe now" (verified: +OK, open).
    assert parse(b"UNSUB 1 x\r\n") == typed([Unsub(b"1", -1)])


def test_sub_arguments_are_also_split_on_cr():
    # splitArg (SUB, UNSUB) treats CR as a separator; a CR also drops the byte before LF.
    assert parse(b"SUB foo\r1\r\n") == typed([Sub(b"foo", None, b"1")])


def test_size_with_leading_zeros():
    assert parse(b"PUB foo 003\r\nabc\r\n") == typed([Pub(b"foo", b"", -1, b"abc\r\n")])


def test_client_hmsg_is_an_empty_message_without_subject():
    # nats-server does not parse HMSG arguments on a client connection: it processes an empty
    # message with no subject (verified: `HMSG foo 1 2\r\n\r\n` then PING gives +OK PONG).
    assert parse(b"HMSG foo 1 2\r\n\r\nPING\r\n") == typed([Pub(b"", b"", 0, b"\r\n"), PING])


@pytest.mark.parametrize(
    "chunks",
    [
        [b"HMSG foo 1 2\r\n", b"\r\nPING\r\n"],
        [b"HMSG foo 1 2\r\n\r", b"\nPING\r\n"],
    ],
)
def test_client_hmsg_cut_after_its_line_is_bad_framing(chunks):
    # nats-server cannot carry a client HMSG over to the next read: its CRLF must arrive in
    # the same read as the line's LF (verified with two writes on nats-server 2.15.1).
    events, error = parse_error(chunks)
    assert (events, error.err) == ([], UNKNOWN)


def test_client_hmsg_line_itself_may_be_split():
    chunks = [b"HMSG foo 1", b" 2\r\n\r\nPING\r\n"]
    assert parse_chunks(chunks) == typed([Pub(b"", b"", 0, b"\r\n"), PING])


def test_pub_subject_and_reply_are_not_validated_by_the_parser():
    # Subject checks (pedantic) belong to the connection, not the parser.
    expected = [Pub(b"foo.*.>", b"_INBOX.>", -1, b"\r\n")]
    assert parse(b"PUB foo.*.> _INBOX.> 0\r\n\r\n") == typed(expected)


# --- batch mode: a run of PUBs with one control line comes out as one PubRun ---------------


def test_batch_turns_a_run_of_identical_pubs_into_one_event():
    data = b"PUB foo 2\r\nab\r\nPUB foo 2\r\ncd\r\nPUB foo 2\r\nef\r\nPING\r\n"
    events = list(Parser(batch=True).feed(data))
    assert [type(event).__name__ for event in events] == ["PubRun", "Ping"]
    assert typed(events) == parse(data)


def test_batch_run_stops_at_a_payload_holding_the_control_line():
    line = b"PUB a 20\r\n"
    payloads = [b"x" * 20, b"y" * 20, line + b"0123456789", b"z" * 20, b"w" * 20]
    data = b"".join(line + p + b"\r\n" for p in payloads)
    assert parse(data, batch=True) == typed([Pub(b"a", b"", -1, p + b"\r\n") for p in payloads])


def test_batch_run_with_bad_framing_inside_fails_like_without_batch():
    data = b"PUB a 1\r\nx\r\nPUB a 1\r\ny\r\nPUB a 1\r\nzz\r\nPUB a 1\r\nw\r\n"
    batch_events, batch_error = parse_error([data], batch=True)
    plain_events, plain_error = parse_error([data])
    expected = [Pub(b"a", b"", -1, b"x\r\n"), Pub(b"a", b"", -1, b"y\r\n")]
    assert batch_events == plain_events == typed(expected)
    assert batch_error.err == plain_error.err == UNKNOWN


# --- (f) properties ---------------------------------------------------------------------------

TOKEN = st.text("abcxyz0189-_", min_size=1, max_size=6).map(str.encode)
SUBJECT = st.lists(TOKEN, min_size=1, max_size=4).map(b".".join)
SID = st.text("0123456789abc", min_size=1, max_size=4).map(str.encode)
BLANKS = st.text(" \t", min_size=1, max_size=3).map(str.encode)
EOL = st.sampled_from([b"\r\n", b"\n"])
PAYLOAD = st.binary(max_size=40) | st.sampled_from([b"\r\n", b"PING\r\n", b"PUB a 1\r\n"])


def randomcase(draw, word: bytes) -> bytes:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return bytes(c ^ 32 if flip and chr(c).isalpha() else c for c, flip in zip(word, flips))


@st.composite
def an_op(draw) -> tuple[bytes, list]:
    """One valid op as bytes, with the events it must give."""
    # Ops with arguments are drawn twice as often as the others.
    with_args = ["pub", "hpub", "sub", "unsub", "connect", "info"]
    kind = draw(st.sampled_from(with_args * 2 + ["ping", "pong", "ok", "err"]))
    sep, eol = draw(BLANKS), draw(EOL)
    if kind in ("pub", "hpub"):
        subject = draw(SUBJECT)
        reply = draw(st.none() | SUBJECT)
        payload = draw(PAYLOAD)
        args = [subject] + ([reply] if reply else [])
        if kind == "pub":
            args.append(b"%d" % len(payload))
            header_size = -1
        else:
            header_size = draw(st.integers(0, len(payload)))
            args += [b"%d" % header_size, b"%d" % len(payload)]
        name = randomcase(draw, kind.upper().encode())
        line = name + sep + sep.join(args) + eol
        event = Pub(subject, reply or b"", header_size, payload + b"\r\n")
        return line + payload + b"\r\n", [event]
    if kind == "sub":
        subject, sid = draw(SUBJECT), draw(SID)
        queue = draw(st.none() | TOKEN)
        args = [subject] + ([queue] if queue else []) + [sid]
        return randomcase(draw, b"SUB") + sep + sep.join(args) + eol, [Sub(subject, queue, sid)]
    if kind == "unsub":
        sid = draw(SID)
        max_msgs = draw(st.none() | st.integers(0, 10**9 - 1))
        args = [sid] + ([b"%d" % max_msgs] if max_msgs is not None else [])
        event = Unsub(sid, -1 if max_msgs is None else max_msgs)
        return randomcase(draw, b"UNSUB") + sep + sep.join(args) + eol, [event]
    if kind in ("connect", "info", "err"):
        text = draw(st.text("{}\":,abc 01", min_size=1, max_size=30).map(str.encode))
        text = text.lstrip(b" ") or b"{}"  # leading blanks would be taken as separators
        name = {"connect": b"CONNECT", "info": b"INFO", "err": b"-ERR"}[kind]
        event = {"connect": Connect, "info": Info, "err": Err}[kind](text)
        return randomcase(draw, name) + sep + text + eol, [event]
    name = {"ping": b"PING", "pong": b"PONG", "ok": b"+OK"}[kind]
    junk = draw(st.text("abc \t", max_size=5).map(str.encode))  # ignored up to the LF
    return randomcase(draw, name) + junk + eol, {"ping": [PING], "pong": [PONG], "ok": []}[kind]


@st.composite
def a_pub_run(draw) -> tuple[bytes, list]:
    """PUBs sharing one control line (what batch mode groups), with payloads that may hold
    that very line, CRLFs or other look-alikes."""
    subject, reply = draw(SUBJECT), draw(st.none() | SUBJECT)
    size = draw(st.integers(0, 24))
    line = b"PUB " + subject + (b" " + reply if reply else b"") + b" %d" % size + draw(EOL)
    piece = st.sampled_from([line, b"\r\n", b"\n", b"PUB ", subject, b"x"])
    payload = st.lists(piece, max_size=4).map(lambda parts: (b"".join(parts) + b"." * size)[:size])
    payloads = draw(st.lists(payload, min_size=1, max_size=6))
    data = b"".join(line + p + b"\r\n" for p in payloads)
    return data, [Pub(subject, reply or b"", -1, p + b"\r\n") for p in payloads]


@st.composite
def a_stream_and_cuts(draw, op=an_op()) -> tuple[bytes, list, list[bytes]]:
    ops = draw(st.lists(op, min_size=1, max_size=8))
    data = b"".join(chunk for chunk, _ in ops)
    expected = [event for _, events in ops for event in events]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=10)))
    chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    return data, expected, chunks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a_stream_and_cuts())
def test_any_chunking_of_valid_ops_gives_the_same_events(case):
    data, expected, chunks = case
    assert parse(data, headers=True) == typed(expected)
    assert parse_chunks(chunks, headers=True) == typed(expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a_stream_and_cuts(st.one_of(a_pub_run(), a_pub_run(), an_op())))
def test_batch_mode_gives_the_same_events_in_any_chunking(case):
    data, expected, chunks = case
    assert parse(data, headers=True) == typed(expected)
    assert parse(data, headers=True, batch=True) == typed(expected)
    assert parse_chunks(chunks, headers=True, batch=True) == typed(expected)


SETTINGS = st.fixed_dictionaries(
    {
        "headers": st.booleans(),
        "require_connect": st.booleans(),
        "max_payload": st.sampled_from([0, 5, 1024]),
        "max_control_line": st.sampled_from([4, 16, 4096]),
        "batch": st.booleans(),
    }
)
# Random bytes rarely get past the op names, so mix in pieces of real protocol.
NOISE = st.lists(
    st.binary(max_size=20)
    | st.sampled_from(
        [b"PUB ", b"HPUB ", b"SUB ", b"UNSUB ", b"CONNECT ", b"PING", b"PONG", b"+OK", b"-ERR ",
         b"INFO ", b"HMSG ", b"\r\n", b"\n", b"\r", b" ", b"\t", b"foo", b"3", b"0", b"12 10"]
    ),
    max_size=30,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(NOISE, SETTINGS, st.lists(st.integers(0, 200), max_size=5))
def test_arbitrary_bytes_only_ever_raise_protocol_error(data, options, cuts):
    cuts = sorted(min(cut, len(data)) for cut in cuts)
    chunks = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
    whole = _outcome([data], options)
    split = _outcome(chunks, options)
    if split != whole:
        # The one case where nats-server itself depends on how bytes were read: a client
        # HMSG (an event with no subject) whose CRLF came in a later read.
        events, err = split
        assert any(event == ("Pub", (b"", b"", 0, b"\r\n")) for event in whole[0]), (split, whole)
        assert err == UNKNOWN and whole[0][: len(events)] == events


def _outcome(chunks, options):
    parser = Parser(**options)
    events = []
    try:
        for chunk in chunks:
            events.extend(parser.feed(chunk))
    except ProtocolError as error:
        assert error.err in REASON_OF, error.err
        return typed(events), error.err
    return typed(events), "no error"


def test_batch_span_covers_canonical_pubs_to_one_subject():
    parser = Parser(batch=True)
    data = b"PUB s 1\r\na\r\nPUB s 3\r\nabc\r\nPUB s 0\r\n\r\n"
    # Lines seen for the first time form a span too: their sizes are read as they come.
    for _ in range(2):
        (batch,) = list(parser.feed(data))
        assert (batch.pubs, batch.span, batch.subject) == (None, data, b"s")
        assert (batch.count, batch.payload_bytes) == (3, 4)
        assert batch.items() == [(b"s", b"", b"a\r\n"), (b"s", b"", b"abc\r\n"), (b"s", b"", b"\r\n")]


@pytest.mark.parametrize(
    "data",
    [
        b"PUB s 1\r\na\r\nPUB t 1\r\nb\r\n",  # two subjects
        b"PUB s 1\r\na\r\nPUB s r 1\r\nb\r\n",  # a reply
        b"PUB s 1\r\na\r\nPUB s  1\r\nb\r\n",  # two spaces
        b"PUB s 1\r\na\r\nPUB s 1\nb\r\n",  # bare LF
        b"PUB s\t1\r\na\r\nPUB s 1\r\nb\r\n",  # a tab
    ],
)
def test_batch_span_is_none_unless_every_line_is_canonical(data):
    parser = Parser(batch=True)
    list(parser.feed(data))
    (batch,) = list(parser.feed(data))
    assert batch.span is None and len(batch.pubs) == 2


def test_a_span_ends_where_a_payload_is_incomplete():
    parser = Parser(batch=True)
    data = b"PUB s 1\r\na\r\nPUB s 2\r\nbc\r\n"
    list(parser.feed(data))
    events = list(parser.feed(data + b"PUB s 2\r\nb"))
    assert [e.count for e in events] == [2]
    assert list(parser.feed(b"c\r\n")) == [Pub(b"s", b"", -1, b"bc\r\n")]


# --- pedantic: an invalid publish subject is answered at its line ------------------------------

NOTICE = "InvalidPublishSubject"


@pytest.mark.parametrize(
    ("line", "subject"),
    [(b"PUB foo.* 5\r\n", b"foo.*"), (b"HPUB foo.> 0 5\r\n", b"foo.>"), (b"PUB a..b r 5\r\n", b"a..b")],
)
def test_pedantic_invalid_subject_waiting_for_its_payload_is_announced(line, subject):
    parser = Parser(pedantic=True, headers=True, batch=True)
    assert typed(parser.feed(line + b"ab")) == [(NOTICE, (subject, True))]
    (pub,) = list(parser.feed(b"cde\r\n"))
    assert (pub.subject, pub.data) == (subject, b"abcde\r\n")


@pytest.mark.parametrize("line", [b"PUB foo.* 1\r\n", b"HPUB foo.* 0 1\r\n"])
def test_pedantic_invalid_subject_before_a_bad_payload_end(line):
    events, error = parse_error([b"PUB ok 1\r\nx\r\n" + line + b"abc\r\n"], pedantic=True,
                                headers=True, batch=True)  # fmt: skip
    assert events == [("Pub", (b"ok", b"", -1, b"x\r\n")), (NOTICE, (b"foo.*", False))]
    assert error.err == UNKNOWN


@pytest.mark.parametrize(
    ("data", "pedantic"),
    [
        (b"PUB foo.* 5\r\nab", False),  # not pedantic
        (b"PUB foo.bar 5\r\nab", True),  # a valid subject
        (b"PUB foo.* 5\r\nabcde\r\n", True),  # complete: the consumer checks it
    ],
)
def test_no_announcement(data, pedantic):
    assert NOTICE not in [name for name, _ in parse(data, pedantic=pedantic)]


# --- the fast path's caches: a line's head and its size token are looked up apart ---------------


def test_a_known_subject_with_new_sizes_decodes_each_size():
    parser = Parser(batch=True)
    list(parser.feed(b"PUB s r 1\r\na\r\n"))  # head `s r` is now known
    data = b"PUB s r 3\r\nabc\r\nPUB s r 0\r\n\r\nPUB s r 12\r\n" + b"x" * 12 + b"\r\n"
    assert typed(parser.feed(data)) == parse(data)
    assert [len(fields[3]) - 2 for _, fields in parse(data)] == [3, 0, 12]


@pytest.mark.parametrize(
    ("line", "err"),
    [
        (b"PUB s 1x\r\n", SILENT),  # not a number
        (b"PUB s -1\r\n", SILENT),
        (b"PUB s 1234567890\r\n", SILENT),  # ten digits
        (b"PUB s \r\n", SILENT),  # no size
        (b"PUB s r 1 2\r\n", SILENT),  # too many arguments
        (b"PUB s 11\r\n", errors.MAX_PAYLOAD),  # over max_payload
    ],
)
def test_a_bad_size_after_a_known_subject_gives_the_same_error(line, err):
    warm = Parser(batch=True, max_payload=10)
    list(warm.feed(b"PUB s 1\r\na\r\nPUB s r 2\r\nab\r\n"))  # heads `s` and `s r` are known
    with pytest.raises(ProtocolError) as raised:
        list(warm.feed(line + b"x" * 12 + b"\r\n"))
    assert raised.value.err == err
    _, fresh = parse_error([line + b"x" * 12 + b"\r\n"], max_payload=10)
    assert fresh.err == err


@pytest.mark.parametrize(
    "line",
    [b"PUB s 012\r\n", b"PUB s 12\n", b"PUB s\t12\r\n", b"PUB s  12\r\n"],
)
def test_odd_but_valid_lines_after_a_known_subject(line):
    # Leading zeros, bare LF, tabs, double blanks: decoded in full, and never part of a span.
    parser = Parser(batch=True)
    list(parser.feed(b"PUB s 12\r\n" + b"x" * 12 + b"\r\n"))
    data = b"PUB s 12\r\n" + b"y" * 12 + b"\r\n" + line + b"z" * 12 + b"\r\n"
    events = list(parser.feed(data))
    assert typed(events) == parse(data)
    assert all(getattr(event, "span", None) is None for event in events)


def test_a_size_another_parser_allows_is_still_checked_against_max_payload():
    # The table of size tokens is shared by every parser; max_payload is each parser's own.
    list(Parser(max_payload=5000).feed(b"PUB s 2000\r\n" + b"x" * 2000 + b"\r\n"))
    parser = Parser(batch=True, max_payload=1000)
    list(parser.feed(b"PUB s 1\r\na\r\n"))
    with pytest.raises(ProtocolError) as raised:
        list(parser.feed(b"PUB s 1\r\nb\r\nPUB s 2000\r\n"))
    assert raised.value.err == errors.MAX_PAYLOAD


@pytest.mark.parametrize("limit", [12, 13, 14, 15, 16])
def test_control_line_limit_with_a_known_subject(limit):
    # Argument `subject 1` is 9 bytes, `subject 123456` 14: the limit applies to each line,
    # even when its head and its size token are both known.
    list(Parser().feed(b"PUB t 123456\r\n" + b"x" * 123456 + b"\r\n"))
    parser = Parser(batch=True, max_control_line=limit)
    list(parser.feed(b"PUB subject 1\r\na\r\n"))
    line = b"PUB subject 123456\r\n" + b"x" * 123456 + b"\r\n"
    if limit >= 14:
        assert typed(parser.feed(line)) == parse(line)
    else:
        with pytest.raises(ProtocolError) as raised:
            list(parser.feed(line))
        assert raised.value.err == errors.MAX_CONTROL_LINE


HEAD = st.sampled_from([b"a", b"a.b", b"a r", b"a.b r.1", b"a\tr", b"a  r", b"a r x", b"a\rb"])
SIZE_TOKEN = st.sampled_from([b"0", b"1", b"3", b"12", b"01", b"1x", b"1234567890", b""])
LINE_END = st.sampled_from([b"\r\n", b"\n", b"\r\r\n", b" \r\n", b"\t\r\n"])


@st.composite
def pub_lines(draw, valid: bool) -> bytes:
    """PUB lines from a few heads and size tokens; unless `valid`, one in four is odd (odd
    heads, size tokens or line ends, payloads one byte too long)."""
    out = []
    for _ in range(draw(st.integers(1, 12))):
        if valid or draw(st.integers(0, 3)):  # canonical: the lines that fill the caches
            head = draw(st.sampled_from([b"a", b"a.b", b"a r"]))
            out.append(b"PUB %s %d\r\n%s\r\n" % (head, size := draw(st.integers(0, 13)), b"p" * size))
            continue
        head, token, end = draw(HEAD), draw(SIZE_TOKEN), draw(LINE_END)
        size = int(token) if token.isdigit() and len(token) < 4 else draw(st.integers(0, 5))
        payload = b"p" * (size + draw(st.sampled_from([0, 0, 0, 1])))
        out.append(b"PUB " + head + b" " + token + end + payload + b"\r\n")
    return b"".join(out)


@settings(max_examples=500, deadline=None)
@given(
    pub_lines(valid=True),
    pub_lines(valid=False),
    SETTINGS.map(lambda o: o | {"require_connect": False}),
    st.sampled_from([5, 10, 1024]),
    st.sampled_from([4, 5, 6, 7, 8, 10, 16, 4096]),
)
def test_a_warm_parser_gives_what_a_fresh_one_gives(
    warmup, data, options, max_payload, max_control_line
):
    # Whatever heads and size tokens earlier lines left in the caches (and whatever limits
    # set_limits brought since), a line gives the same events and the same error.
    options |= {"max_payload": max_payload, "max_control_line": max_control_line}
    warm = Parser(batch=True)
    list(warm.feed(warmup))
    for name in ("headers", "require_connect", "batch"):
        setattr(warm, name, options[name])
    warm.set_limits(
        max_control_line=options["max_control_line"], max_payload=options["max_payload"]
    )
    reference = _outcome_of(SlowParser(**options), [data])
    assert _outcome([data], options) == reference
    assert _outcome_of(warm, [data]) == reference


class SlowParser(Parser):
    """Reads every PUB through the general path: no caches, the reference for the fast path."""

    pub_fast_path = False


def _outcome_of(parser, chunks):
    events = []
    try:
        for chunk in chunks:
            events.extend(parser.feed(chunk))
    except ProtocolError as error:
        return typed(events), error.err
    return typed(events), "no error"


def test_known_subjects_still_need_connect_once_it_is_required():
    # A reload may require auth before a client's CONNECT, after it published.
    parser = Parser(batch=True)
    list(parser.feed(b"PUB s 1\r\na\r\n"))
    parser.require_connect = True
    with pytest.raises(ProtocolError) as raised:
        list(parser.feed(b"PUB s 1\r\na\r\n"))
    assert raised.value.err == errors.AUTH_VIOLATION


def test_a_span_takes_more_sizes_than_its_subject_remembers():
    sizes = range(defaults.SPAN_LINES_PER_HEAD * 2)
    data = b"".join(b"PUB s %d\r\n%s\r\n" % (n, b"x" * n) for n in sizes)
    parser = Parser(batch=True)
    for _ in range(2):
        (span,) = list(parser.feed(data))
        assert (span.span, span.count, span.payload_bytes) == (data, len(sizes), sum(sizes))


def test_heads_and_span_lines_kept_are_bounded_together(monkeypatch):
    monkeypatch.setattr(defaults, "PUB_LINE_CACHE_SIZE", 50)
    parser = Parser(batch=True)
    for subject in range(10):  # 10 heads, each with a span of 10 sizes: 110 kept in all
        data = b"".join(b"PUB s%d %d\r\n%s\r\n" % (subject, n, b"x" * n) for n in range(10))
        (span,) = list(parser.feed(data))
        assert span.count == 10
        assert parser._kept <= 50
        assert sum(1 + len(lines or ()) for _, _, lines in parser._heads.values()) == parser._kept
