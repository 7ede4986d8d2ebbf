"""What the server writes: INFO in Go's JSON style, MSG/HMSG lines, -ERR, the 503 status."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trionats import errors
from trionats.protocol import encode


def test_constant_lines():
    assert (encode.OK, encode.PING, encode.PONG) == (b"+OK\r\n", b"PING\r\n", b"PONG\r\n")


def test_info_has_a_space_before_crlf_and_compact_json():
    # nats-server: `INFO {"server_id":...} \r\n` (verified), no blanks inside the JSON.
    line = encode.info({"server_id": "NABC", "proto": 1, "headers": True, "max_payload": 1048576})
    assert line == b'INFO {"server_id":"NABC","proto":1,"headers":true,"max_payload":1048576} \r\n'


def test_info_keeps_field_order():
    assert encode.info({"b": 1, "a": 2}) == b'INFO {"b":1,"a":2} \r\n'


# The escapes were checked on nats-server 2.15.1's INFO, with a server name holding
# "x\b\f\x01\x7f<é\u2028": it wrote "x\\b\\f\\u0001\x7f\\u003cé\\u2028".
@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("<>&", '"\\u003c\\u003e\\u0026"'),  # Go's HTML-safe escaping
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("é日本", '"é日本"'),  # non-ASCII is written as UTF-8, not \u escapes
        ('"\\', '"\\"\\\\"'),
        ("\n\r\t", '"\\n\\r\\t"'),
        ("\x01\x1f", '"\\u0001\\u001f"'),
        ("\b\f", '"\\b\\f"'),  # short escapes, as Go writes them
        ("\x7f", '"\x7f"'),  # DEL is not escaped
        (["a", 1, None, False], '["a",1,null,false]'),
        ({"connect_urls": ["127.0.0.1:4222"]}, '{"connect_urls":["127.0.0.1:4222"]}'),
    ],
)
def test_go_json(value, text):
    assert encode.go_json(value) == text


# Go's float64 in JSON: shortest digits, positional from 1e-6 to 1e21, no ".0" when whole.
# Some are also checked against nats-server itself (below).
GO_FLOATS = [
    ("2.0", "2"), ("-0.0", "-0"), ("0.0", "0"), ("12.5", "12.5"), ("0.1", "0.1"),
    ("0.30000000000000004", "0.30000000000000004"), ("0.00001", "0.00001"),
    ("0.000015", "0.000015"), ("0.000001", "0.000001"), ("0.00000099", "9.9e-7"),
    ("0.0000001", "1e-7"), ("1.5e-10", "1.5e-10"), ("59.99999999999999", "59.99999999999999"),
    ("1e15", "1000000000000000"), ("1.5e16", "15000000000000000"),
    ("1e20", "100000000000000000000"), ("1e21", "1e+21"), ("1.2345e125", "1.2345e+125"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "text"), GO_FLOATS)
def test_go_number(value, text):
    assert encode.go_number(float(value)) == text
    assert encode.go_json([float(value)]) == f"[{text}]"


#: What nats-server accepts as an authorization timeout: no exponent, under a minute.
AS_TIMEOUTS = [value for value, _ in GO_FLOATS if "e" not in value and abs(float(value)) < 60]


@pytest.mark.interop
@pytest.mark.parametrize("value", AS_TIMEOUTS)
def test_go_number_as_nats_server_writes_it(value, tmp_path):
    """`nats-server -t` prints the sha256 of the parsed configuration as Go's JSON: a float
    option (`authorization.timeout`) makes it write that float."""
    import hashlib
    import subprocess

    from tests.helpers import nats_server_binary

    (tmp_path / "f.conf").write_text(f"authorization {{ timeout: {value} }}\n")
    run = subprocess.run(
        [nats_server_binary(), "-t", "-c", "f.conf"],
        cwd=tmp_path, capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    digest = (run.stdout + run.stderr).split("sha256:")[1].split(")")[0]
    ours = encode.go_json({"authorization": {"timeout": float(value)}}) + "\n"
    assert hashlib.sha256(ours.encode()).hexdigest() == digest, ours


def test_go_json_indented_as_marshal_indent():
    body = {"a": 1, "b": [1, 2.0, {"c": None, "d": True}], "e": {}, "f": [], "g": "x<y"}
    assert encode.go_json(body, "  ") == (
        '{\n  "a": 1,\n  "b": [\n    1,\n    2,\n    {\n      "c": null,\n      "d": true\n'
        '    }\n  ],\n  "e": {},\n  "f": [],\n  "g": "x\\u003cy"\n}'
    )
    without_floats = {"a": [1, {"b": "é<"}], "c": {}}
    assert encode.go_json(without_floats, "  ") == (
        json.dumps(without_floats, indent=2, ensure_ascii=False).replace("<", "\\u003c")
    )


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=20) | st.integers() | st.booleans()))
def test_info_json_decodes_back(fields):
    line = encode.info(fields)
    assert line.startswith(b"INFO ") and line.endswith(b" \r\n")
    body = line[5:-3]
    assert b"\n" not in body and b"\r" not in body  # one line, whatever the values
    assert json.loads(body) == fields


def test_err_wraps_the_text_in_single_quotes():
    assert encode.err("Unknown Protocol Operation") == b"-ERR 'Unknown Protocol Operation'\r\n"
    assert encode.err('Permissions Violation for Publish to "x"') == (
        b"-ERR 'Permissions Violation for Publish to \"x\"'\r\n"
    )


# nats-server names subjects, queues and sids with Go's %q (checked on nats-server 2.15.1 by
# tests/auth/test_reload_auth.py's odd subscriptions).
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (b"foo.bar", '"foo.bar"'),
        (b'a"b\\c', '"a\\"b\\\\c"'),
        ("é日本".encode(), '"é日本"'),  # printable non-ASCII stays
        (b"\x01\x7f\x1b", '"\\x01\\x7f\\x1b"'),
        (b"\a\b\f\n\r\t\v", '"\\a\\b\\f\\n\\r\\t\\v"'),
        (b"q\xffz\xe2\x82", '"q\\xffz\\xe2\\x82"'),  # bytes that are not UTF-8
        ("\u00a0\u2028".encode(), '"\\u00a0\\u2028"'),  # non-printable characters
        ("\U000e0001".encode(), '"\\U000e0001"'),
        ("str", '"str"'),
    ],
)
def test_go_quote(value, text):
    assert errors.go_quote(value) == text


def test_violation_texts_quote_as_go():
    assert errors.subscribe_violation(b'a"b', b"q\x01") == (
        'Permissions Violation for Subscription to "a\\"b" using queue "q\\x01"'
    )
    assert errors.publish_violation(b"\xff") == 'Permissions Violation for Publish to "\\xff"'


def test_msg_lines():
    assert encode.msg_head(b"foo", b"1") + encode.msg_tail(b"", 5) == b"MSG foo 1 5\r\n"
    line = encode.msg_head(b"foo", b"1") + encode.msg_tail(b"_INBOX.x", 0)
    assert line == b"MSG foo 1 _INBOX.x 0\r\n"


def test_hmsg_lines():
    line = encode.hmsg_head(b"foo", b"22") + encode.hmsg_tail(b"", 12, 14)
    assert line == b"HMSG foo 22 12 14\r\n"
    assert encode.hmsg_head(b"foo", b"22") + encode.hmsg_tail(b"bar", 12, 14) == (
        b"HMSG foo 22 bar 12 14\r\n"
    )


def test_no_responders_message():
    # Verified on nats-server 2.15.1; the header block is 32 + len(subject) bytes.
    assert encode.no_responders(b"_INBOX.abc", b"1", b"nobody") == (
        b"HMSG _INBOX.abc 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n"
    )
    for subject in (b"a", b"foo.bar.baz"):
        line, _, rest = encode.no_responders(b"r", b"9", subject).partition(b"\r\n")
        size = 32 + len(subject)
        assert line == b"HMSG r 9 %d %d" % (size, size)
        assert len(rest) == size + 2 and rest.endswith(b"\r\n\r\n\r\n")
