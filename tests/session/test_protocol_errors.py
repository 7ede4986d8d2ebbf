"""Raw-socket tests of the client protocol: every core -ERR, silent closes, happy paths, limits."""

from __future__ import annotations

import json
import socket

import pytest
import trio

from trionats.errors import Reason
from trionats.outbound import Outbound
from tests.helpers import RawClient

C = b'CONNECT {"verbose":false}\r\n'
CH = b'CONNECT {"verbose":false,"headers":true}\r\n'
CNR = b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
OK = b"+OK\r\n"
PONG = b"PONG\r\n"
HDR = b"NATS/1.0\r\nA: b\r\n\r\n"  # 18 bytes


def err(text: str) -> bytes:
    return b"-ERR '" + text.encode() + b"'\r\n"


@pytest.fixture
async def raw():
    """Open raw clients (optionally sending a first chunk); all are closed after the test."""
    opened: list[RawClient] = []

    async def open_client(port: int, first: bytes = b"", *, small_window: bool = False):
        if small_window:
            client = await open_small_window_client(port)
        else:
            client = await RawClient.connect(port)
        opened.append(client)
        if first:
            await client.send(first)
        return client

    yield open_client
    for client in opened:
        await client.aclose()


async def assert_closed_after(client: RawClient, expected: bytes, timeout: float = 5.0) -> None:
    """The server sends exactly `expected` and then closes the connection."""
    assert await client.expect_closed(timeout) == expected


# --- -ERR that closes the connection ----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"FOO\r\n",
        b"RS+ foo\r\n",
        b"RMSG $G foo 1\r\n",
        b"A+ foo\r\n",
        b"LS+ foo\r\n",
        b"MSG foo 1 2\r\nhi\r\n",
        b"UNSUB\r\n",
        b"PUBX foo 1\r\n",
        b"PUB foo 3\r\nhello\r\n",
        b"PUB foo 3\r\nhel\n\r",
        b" PING\r\n",
        b"\r\n",
    ],
    ids=[
        "bad_op",
        "route_op_rs_plus",
        "route_op_rmsg",
        "route_op_a_plus",
        "leaf_op_ls_plus",
        "msg_from_client",
        "unsub_without_space",
        "op_name_without_separator",
        "payload_not_followed_by_crlf",
        "payload_followed_by_lf_cr",
        "leading_space",
        "empty_line",
    ],
)
async def test_unknown_protocol_operation_closes(server, data, raw):
    client = await raw(server.port, data)
    await assert_closed_after(client, err("Unknown Protocol Operation"))


async def test_unknown_protocol_operation_after_earlier_replies(server, raw):
    client = await raw(server.port, b"CONNECT {}\r\nSUB foo 1\r\nPUB foo 1\r\nx\r\nBAD\r\n")
    await assert_closed_after(
        client, OK + OK + OK + b"MSG foo 1 1\r\nx\r\n" + err("Unknown Protocol Operation")
    )


async def test_payload_crlf_checked_across_reads(server, raw):
    client = await raw(server.port, C + b"PUB foo 3\r\nhel")
    await trio.sleep(0.01)  # let the server read the first part on its own
    await client.send(b"lo\r\n")
    await assert_closed_after(client, err("Unknown Protocol Operation"))


@pytest.mark.parametrize("limit", [4096, 512])
async def test_max_control_line_exactly_at_limit_works(server_factory, limit, raw):
    srv = await server_factory(max_control_line=limit)
    client = await raw(srv.port, C)
    subject = b"a" * (limit - 2)  # argument text "<subject> 1" is exactly `limit` bytes
    await client.send(b"SUB " + subject + b" 1\r\nPUB " + subject + b" 1\r\nx\r\n")
    assert await client.ping_pong() == b"MSG " + subject + b" 1 1\r\nx\r\n"


@pytest.mark.parametrize("limit", [4096, 512])
async def test_max_control_line_one_over_limit_closes(server_factory, limit, raw):
    srv = await server_factory(max_control_line=limit)
    client = await raw(srv.port, C + b"SUB " + b"a" * (limit - 1) + b" 1\r\n")
    await assert_closed_after(client, err("maximum control line exceeded"))


async def test_max_control_line_counts_only_the_argument(server_factory, raw):
    srv = await server_factory(max_control_line=20)
    # the blanks after the op name and the CR before LF are not counted
    client = await raw(srv.port, C + b"PUB  \t " + b"s" * 18 + b" 1\r\nx\r\n")
    await client.send(b"UNSUB " + b"1" * 20 + b"\r\n")
    assert await client.ping_pong() == b""
    await client.send(b"UNSUB " + b"1" * 21 + b"\r\n")
    await assert_closed_after(client, err("maximum control line exceeded"))


async def test_max_control_line_checked_before_the_line_ends(server_factory, raw):
    srv = await server_factory(max_control_line=512)
    client = await raw(srv.port, C + b"PUB " + b"a" * 600)  # no CRLF ever comes
    await assert_closed_after(client, err("maximum control line exceeded"))


async def test_max_control_line_applies_to_connect(server, raw):
    client = await raw(server.port, b'CONNECT {"name":"' + b"n" * 4100 + b'"}\r\n')
    await assert_closed_after(client, err("maximum control line exceeded"))


@pytest.mark.parametrize("max_payload", [1048576, 100])
async def test_pub_exactly_max_payload_is_delivered(server_factory, max_payload, raw):
    srv = await server_factory(max_payload=max_payload)
    client = await raw(srv.port, C + b"SUB foo 1\r\n")
    payload = b"x" * max_payload
    await client.send(b"PUB foo %d\r\n%s\r\n" % (max_payload, payload))
    head = b"MSG foo 1 %d\r\n" % max_payload
    assert await client.ping_pong() == head + payload + b"\r\n"


@pytest.mark.parametrize("max_payload", [1048576, 100])
async def test_pub_one_over_max_payload_closes(server_factory, max_payload, raw):
    srv = await server_factory(max_payload=max_payload)
    client = await raw(srv.port, C + b"PUB foo %d\r\n" % (max_payload + 1))
    await assert_closed_after(client, err("Maximum Payload Violation"))


async def test_pub_over_max_payload_refused_before_payload_arrives(server_factory, raw):
    srv = await server_factory(max_payload=100)
    client = await raw(srv.port, b"PUB foo 999999\r\n")  # no payload sent at all
    await assert_closed_after(client, err("Maximum Payload Violation"))


async def test_hpub_exactly_max_payload_counts_headers(server_factory, raw):
    srv = await server_factory(max_payload=100)
    client = await raw(srv.port, CH + b"SUB foo 1\r\n")
    payload = b"y" * (100 - len(HDR))
    await client.send(b"HPUB foo 18 100\r\n" + HDR + payload + b"\r\n")
    assert await client.ping_pong() == b"HMSG foo 1 18 100\r\n" + HDR + payload + b"\r\n"


async def test_hpub_one_over_max_payload_closes(server_factory, raw):
    srv = await server_factory(max_payload=100)
    client = await raw(srv.port, CH + b"HPUB foo 18 101\r\n")
    await assert_closed_after(client, err("Maximum Payload Violation"))


@pytest.mark.parametrize("protocol", [b"2", b"-1", b"100"])
async def test_invalid_client_protocol_closes(server, protocol, raw):
    client = await raw(server.port, b'CONNECT {"protocol":' + protocol + b"}\r\nPING\r\n")
    await assert_closed_after(client, err("invalid client protocol"))


@pytest.mark.parametrize(
    "connect_json", [b'{"no_responders":true}', b'{"no_responders":true,"headers":false}']
)
async def test_no_responders_requires_headers(server, connect_json, raw):
    client = await raw(server.port, b"CONNECT " + connect_json + b"\r\nPING\r\n")
    await assert_closed_after(client, err("no responders requires headers support"))


async def test_no_responders_refused_when_server_has_no_headers(server_factory, raw):
    srv = await server_factory(no_header_support=True)
    client = await raw(srv.port, CNR)
    assert b'"headers":false' in client.info
    await assert_closed_after(client, err("no responders requires headers support"))


async def test_maximum_connections_exceeded(server_factory, raw):
    srv = await server_factory(max_connections=1)
    first = await raw(srv.port, C)
    await first.ping_pong()
    second = await raw(srv.port)  # INFO comes first...
    assert json.loads(second.info[5:])["max_payload"] == 1048576
    await assert_closed_after(second, err("maximum connections exceeded"))  # ...then -ERR
    await first.send(b"SUB foo 1\r\nPUB foo 1\r\nx\r\n")
    assert await first.ping_pong() == b"MSG foo 1 1\r\nx\r\n"


async def test_connection_slot_is_freed_when_a_client_leaves(server_factory, raw):
    srv = await server_factory(max_connections=1)
    first = await raw(srv.port, C)
    await first.ping_pong()
    await first.aclose()
    with trio.fail_after(5):
        while True:  # the server notices the close asynchronously
            client = await raw(srv.port, C + b"PING\r\n")
            if await client.read_line() == PONG:
                break
            await trio.sleep(0.01)


async def test_stale_connection_short_interval(server_factory, raw):
    srv = await server_factory(ping_interval=0.2, ping_max=2)
    client = await raw(srv.port, C)
    with trio.fail_after(5):
        await client.expect(b"PING\r\n")
        await client.expect(b"PING\r\n")
        await assert_closed_after(client, err("Stale Connection"))
    assert srv.stats.stale_connections == 1


async def test_stale_connection_default_interval(server, autojump_clock, raw):
    """Defaults: first PING ~2s after CONNECT, then every 2 minutes; the third timer closes."""
    client = await raw(server.port, C)
    start = trio.current_time()
    await client.expect(b"PING\r\n", timeout=3)
    assert 2.0 <= trio.current_time() - start <= 2.4
    await client.expect(b"PING\r\n", timeout=121)
    await assert_closed_after(client, err("Stale Connection"), timeout=121)
    assert 241 <= trio.current_time() - start <= 243


async def test_pongs_keep_the_connection_alive(server_factory, raw):
    srv = await server_factory(ping_interval=0.1, ping_max=1)
    client = await raw(srv.port, C)
    with trio.fail_after(5):
        for _ in range(4):
            await client.expect(b"PING\r\n")
            await client.send(b"PONG\r\n")
    await client.ping_pong()


async def test_first_ping_sent_despite_client_activity(server_factory, autojump_clock, raw):
    """nats-server always sends the first PING (an RTT sample is due); later ones are skipped
    while the client keeps sending messages."""
    srv = await server_factory(ping_interval=0.3)
    client = await raw(srv.port, C)
    for _ in range(30):  # 1.5 s of publishing, every 50 ms
        await client.send(b"PUB foo 1\r\nx\r\n")
        await trio.sleep(0.05)
    assert await client.ping_pong() == b"PING\r\n"


async def test_ping_interval_runs_before_connect(server_factory, autojump_clock, raw):
    """Before CONNECT the timer runs with the full interval (no short first PING)."""
    srv = await server_factory(ping_interval=5.0, ping_max=1)
    client = await raw(srv.port)
    start = trio.current_time()
    await client.expect(b"PING\r\n", timeout=10)
    assert 5.0 <= trio.current_time() - start <= 5.1
    await assert_closed_after(client, err("Stale Connection"), timeout=10)
    assert 10.0 <= trio.current_time() - start <= 10.1


# --- -ERR that keeps the connection open ------------------------------------------------------


@pytest.mark.parametrize("subject", [b"a..b", b".a", b"a.", b"a.>.b", b">.a", b"foo.>.>"])
async def test_invalid_subject_keeps_connection_open_without_ok(server, subject, raw):
    client = await raw(server.port, b"CONNECT {}\r\nSUB " + subject + b" 1\r\n")
    assert await client.ping_pong() == OK + err("Invalid Subject")
    await client.send(b"SUB ok 2\r\nPUB ok 1\r\nx\r\n")
    assert await client.ping_pong() == OK + OK + b"MSG ok 2 1\r\nx\r\n"


@pytest.mark.parametrize("subject", [b"foo*", b"f>o", b"*", b"*.*", b">", b"a.*.>"])
async def test_valid_wildcard_and_literal_subjects(server, subject, raw):
    client = await raw(server.port, b"CONNECT {}\r\nSUB " + subject + b" 1\r\n")
    assert await client.ping_pong() == OK + OK


async def test_invalid_publish_subject_pedantic_still_delivers(server, raw):
    client = await raw(server.port, b'CONNECT {"pedantic":true}\r\nSUB foo.* 1\r\n')
    await client.send(b"PUB foo.* 2\r\nhi\r\n")
    assert await client.ping_pong() == (
        OK + OK + err("Invalid Publish Subject") + OK + b"MSG foo.* 1 2\r\nhi\r\n"
    )


@pytest.mark.parametrize("subject", [b"foo..bar", b"foo.>", b"*", b".foo"])
async def test_invalid_publish_subject_without_verbose(server, subject, raw):
    client = await raw(server.port, b'CONNECT {"verbose":false}\r\nSUB > 1\r\n')
    await client.send(b"PUB " + subject + b" 1\r\nx\r\n")
    expected = err("Invalid Publish Subject")
    if b"" not in subject.split(b"."):  # a subject with an empty token matches nothing
        expected += b"MSG " + subject + b" 1 1\r\nx\r\n"
    assert await client.ping_pong() == expected


async def test_non_pedantic_publish_to_wildcard_subject(server, raw):
    client = await raw(server.port, b'CONNECT {"verbose":false,"pedantic":false}\r\n')
    await client.send(b"SUB foo.* 1\r\nPUB foo.* 1\r\nx\r\n")
    assert await client.ping_pong() == b"MSG foo.* 1 1\r\nx\r\n"


async def test_maximum_subscriptions_exceeded_keeps_connection_open(server_factory, raw):
    srv = await server_factory(max_subscriptions=2)
    client = await raw(srv.port, b"CONNECT {}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\n")
    assert await client.ping_pong() == OK + OK + OK + err("maximum subscriptions exceeded")
    await client.send(b"UNSUB 1\r\nSUB c 3\r\nPUB c 1\r\nx\r\n")
    assert await client.ping_pong() == OK + OK + OK + b"MSG c 3 1\r\nx\r\n"


# --- silent closes ----------------------------------------------------------------------------

SILENT = {
    "pub_missing_size": b"PUB foo\r\n",
    "pub_too_many_args": b"PUB foo a b 3\r\n",
    "pub_size_not_a_number": b"PUB foo abc\r\n",
    "pub_negative_size": b"PUB foo -1\r\n",
    "pub_size_ten_digits": b"PUB foo 1000000000\r\n",
    "sub_missing_sid": b"SUB foo\r\n",
    "sub_too_many_args": b"SUB foo q 1 2\r\n",
    "unsub_too_many_args": b"UNSUB 1 2 3\r\n",
    "hpub_without_headers": b"HPUB foo 0 2\r\nhi\r\n",
    "hpub_header_size_over_total": CH + b"HPUB foo 12 10\r\n",
    "hpub_missing_total": CH + b"HPUB foo 12\r\n",
    "connect_bad_json": b"CONNECT {bad\r\n",
    "connect_array": b"CONNECT []\r\n",
    "connect_wrong_field_type": b'CONNECT {"verbose":"yes"}\r\n',
    "connect_without_argument": b"CONNECT\r\n",
    "info_not_json": b"INFO x\r\n",
    "client_err_quoted": b"-ERR 'boom'\r\n",
    "client_err_unquoted": b"-ERR boom\r\n",
}


@pytest.mark.parametrize("data", list(SILENT.values()), ids=list(SILENT))
async def test_silent_close(server, data, raw):
    client = await raw(server.port, data + b"PING\r\n")
    await assert_closed_after(client, b"")


async def test_silent_close_still_flushes_earlier_replies(server, raw):
    client = await raw(server.port, b"SUB foo 1\r\nPUB foo 2\r\nhi\r\nPUB foo x\r\nPING\r\n")
    await assert_closed_after(client, OK + OK + b"MSG foo 1 2\r\nhi\r\n")


async def test_client_err_after_earlier_replies(server, raw):
    client = await raw(server.port, b"CONNECT {}\r\n-ERR 'x'\r\nPING\r\n")
    await assert_closed_after(client, OK)


async def test_silent_close_counts_no_slow_consumer(server, raw):
    client = await raw(server.port, b"PUB foo\r\n")
    await assert_closed_after(client, b"")
    assert server.stats.slow_consumers == 0


# --- happy paths clients rely on --------------------------------------------------------------


async def test_info_fields_and_space_before_crlf(server, raw):
    client = await raw(server.port)
    assert client.info.startswith(b"INFO {") and client.info.endswith(b"} \r\n")
    info = json.loads(client.info[5:-3])
    assert len(info["server_id"]) == 56 and info["server_id"].startswith("N")
    assert info["server_id"].isupper() and info["server_name"] == info["server_id"]
    assert info["version"] == "2.15.1"
    assert info["proto"] == 1
    assert info["host"] == "127.0.0.1" and info["port"] == server.port
    assert info["headers"] is True
    assert info["max_payload"] == 1048576
    assert isinstance(info["client_id"], int) and info["client_id"] > 0
    assert info["client_ip"] == "127.0.0.1"
    for absent in ("auth_required", "tls_required", "tls_verify", "connect_urls", "ldm", "nonce"):
        assert absent not in info
    assert list(info)[:4] == ["server_id", "server_name", "version", "proto"]


async def test_client_ids_increase(server, raw):
    first = await raw(server.port)
    second = await raw(server.port)
    assert json.loads(second.info[5:])["client_id"] == json.loads(first.info[5:])["client_id"] + 1


async def test_info_reflects_options(server_factory, raw):
    srv = await server_factory(max_payload=1000, no_header_support=True)
    client = await raw(srv.port)
    info = json.loads(client.info[5:])
    assert info["max_payload"] == 1000 and info["headers"] is False


async def test_verbose_ok_rules(server, raw):
    client = await raw(server.port, b'CONNECT {"verbose":true}\r\n')
    await client.send(b"SUB foo 1\r\nPUB foo 1\r\nx\r\nUNSUB 1\r\nUNSUB 77\r\nUNSUB 78 5\r\n")
    await client.send(b"PONG\r\n")
    assert await client.ping_pong() == OK + OK + OK + b"MSG foo 1 1\r\nx\r\n" + OK + OK + OK


async def test_connect_defaults_to_verbose(server, raw):
    client = await raw(server.port, b"CONNECT {}\r\n")
    assert await client.ping_pong() == OK


async def test_verbose_off_is_silent(server, raw):
    client = await raw(server.port, C + b"SUB foo 1\r\nUNSUB 1\r\nPUB foo 1\r\nx\r\n")
    assert await client.ping_pong() == b""


async def test_ping_pong(server, raw):
    client = await raw(server.port, C)
    await client.send(b"PING\r\nPING\r\nPING\r\n")
    await client.expect(PONG * 3)
    await client.send(b"PONG\r\n")  # unsolicited PONG: harmless
    await client.expect_nothing()


async def test_protocol_1_gets_connect_info_after_first_pong_only(server, raw):
    client = await raw(server.port, b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    await client.expect(PONG)
    line = await client.read_line()
    assert line.startswith(b"INFO {") and line.endswith(b"} \r\n")
    info = json.loads(line[5:-3])
    assert info["connect_info"] is True and info["remote_account"] == "$G"
    assert info["client_id"] == json.loads(client.info[5:])["client_id"]
    await client.send(b"PING\r\n")
    await client.expect(PONG)
    await client.expect_nothing()


async def test_protocol_1_first_ping_before_connect_gets_no_info(server, raw):
    client = await raw(server.port, b"PING\r\n")
    await client.expect(PONG)
    await client.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    await client.expect(PONG)
    assert (await client.read_line()).startswith(b"INFO {")


async def test_protocol_0_gets_no_async_info(server, raw):
    client = await raw(server.port, b'CONNECT {"verbose":false,"protocol":0}\r\nPING\r\n')
    await client.expect(PONG)
    await client.expect_nothing()


async def test_echo_false_skips_own_subscriptions(server, raw):
    quiet = await raw(server.port, b'CONNECT {"verbose":false,"echo":false}\r\nSUB foo 1\r\n')
    other = await raw(server.port, C + b"SUB foo 1\r\n")
    await quiet.ping_pong()
    await other.ping_pong()
    await quiet.send(b"PUB foo 1\r\nq\r\n")
    assert await quiet.ping_pong() == b""
    assert await other.ping_pong() == b"MSG foo 1 1\r\nq\r\n"
    await other.send(b"PUB foo 1\r\no\r\n")
    await other.ping_pong()
    assert await quiet.ping_pong() == b"MSG foo 1 1\r\no\r\n"


async def test_unsub_max_delivers_that_many(server, raw):
    client = await raw(server.port, C + b"SUB foo 1\r\nUNSUB 1 2\r\n")
    await client.send(b"PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n")
    assert await client.ping_pong() == b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n"
    assert server.sublist.count == 0


async def test_unsub_max_not_above_delivered_removes_now(server, raw):
    client = await raw(server.port, C + b"SUB foo 1\r\nPUB foo 1\r\na\r\nUNSUB 1 1\r\n")
    await client.send(b"PUB foo 1\r\nb\r\n")
    assert await client.ping_pong() == b"MSG foo 1 1\r\na\r\n"


async def test_reused_sid_is_ignored(server, raw):
    client = await raw(server.port, b"CONNECT {}\r\nSUB foo 1\r\nSUB bar 1\r\n")
    await client.send(b"PUB bar 1\r\nb\r\nPUB foo 1\r\nf\r\n")
    assert await client.ping_pong() == OK * 5 + b"MSG foo 1 1\r\nf\r\n"


async def test_queue_group_delivers_to_exactly_one_member(server, raw):
    members = [await raw(server.port, C + b"SUB work q %d\r\n" % i) for i in range(3)]
    plain = await raw(server.port, C + b"SUB work 9\r\n")
    for client in (*members, plain):
        await client.ping_pong()
    publisher = await raw(server.port, C)
    for i in range(30):
        await publisher.send(b"PUB work 2\r\n%02d\r\n" % i)
    await publisher.ping_pong()
    payloads = []
    for i, member in enumerate(members):
        messages = (await member.ping_pong()).split(b"MSG ")[1:]
        assert all(m.startswith(b"work %d 2\r\n" % i) for m in messages)
        payloads += [m[-4:-2] for m in messages]
    assert sorted(payloads) == [b"%02d" % i for i in range(30)]  # each exactly once
    assert len(await plain.ping_pong()) == 30 * len(b"MSG work 9 2\r\n00\r\n")


async def test_queue_group_single_member_with_plain_subscription(server, raw):
    client = await raw(server.port, C + b"SUB foo q 1\r\nSUB foo 2\r\nPUB foo 1\r\nx\r\n")
    assert await client.ping_pong() == b"MSG foo 2 1\r\nx\r\nMSG foo 1 1\r\nx\r\n"


async def test_headers_stripped_for_subscriber_without_headers(server, raw):
    plain = await raw(server.port, C + b"SUB foo 1\r\n")
    with_headers = await raw(server.port, CH + b"SUB foo 2\r\n")
    await plain.ping_pong()
    await with_headers.send(b"HPUB foo r 18 20\r\n" + HDR + b"hi\r\n")
    assert await with_headers.ping_pong() == b"HMSG foo 2 r 18 20\r\n" + HDR + b"hi\r\n"
    assert await plain.ping_pong() == b"MSG foo 1 r 2\r\nhi\r\n"


async def test_hpub_with_zero_header_bytes_is_delivered_as_msg(server, raw):
    client = await raw(server.port, CH + b"SUB foo 1\r\nHPUB foo 0 2\r\nhi\r\n")
    assert await client.ping_pong() == b"MSG foo 1 2\r\nhi\r\n"


async def test_header_block_relayed_as_opaque_bytes(server, raw):
    client = await raw(server.port, CH + b"SUB foo 1\r\nHPUB foo 4 6\r\nabcdhi\r\n")
    assert await client.ping_pong() == b"HMSG foo 1 4 6\r\nabcdhi\r\n"


async def test_zero_length_payload(server, raw):
    client = await raw(server.port, C + b"SUB foo 1\r\nPUB foo 0\r\n\r\n")
    assert await client.ping_pong() == b"MSG foo 1 0\r\n\r\n"


def no_responders(reply: bytes, sid: bytes, subject: bytes) -> bytes:
    size = 32 + len(subject)
    return (
        b"HMSG %s %s %d %d\r\nNATS/1.0 503\r\nNats-Subject: %s\r\n\r\n\r\n"
        % (reply, sid, size, size, subject)
    )


async def test_no_responders_503(server, raw):
    client = await raw(server.port, CNR + b"SUB _INBOX.1 1\r\nPUB nobody _INBOX.1 0\r\n\r\n")
    reply = await client.ping_pong()
    assert reply == no_responders(b"_INBOX.1", b"1", b"nobody")
    assert b" 38 38\r\n" in reply


async def test_no_responders_503_for_hpub(server, raw):
    client = await raw(server.port, CNR + b"SUB _INBOX.1 1\r\n")
    await client.send(b"HPUB svc _INBOX.1 18 20\r\n" + HDR + b"hi\r\n")
    assert await client.ping_pong() == no_responders(b"_INBOX.1", b"1", b"svc")


async def test_no_responders_503_with_wildcard_reply_subscription(server, raw):
    client = await raw(server.port, CNR + b"SUB _INBOX.* 7\r\nPUB svc _INBOX.abc 2\r\nhi\r\n")
    assert await client.ping_pong() == no_responders(b"_INBOX.abc", b"7", b"svc")


async def test_no_responders_nothing_without_matching_subscription(server, raw):
    client = await raw(server.port, CNR + b"SUB _INBOX.x 1\r\nPUB svc _INBOX.y 2\r\nhi\r\n")
    assert await client.ping_pong() == b""


async def test_no_responders_nothing_when_someone_received_it(server, raw):
    responder = await raw(server.port, C + b"SUB svc 1\r\n")
    await responder.ping_pong()
    client = await raw(server.port, CNR + b"SUB _INBOX.1 1\r\nPUB svc _INBOX.1 2\r\nhi\r\n")
    assert await client.ping_pong() == b""
    assert await responder.ping_pong() == b"MSG svc 1 _INBOX.1 2\r\nhi\r\n"


async def test_no_responders_only_when_requested(server, raw):
    client = await raw(server.port, CH + b"SUB _INBOX.1 1\r\nPUB svc _INBOX.1 2\r\nhi\r\n")
    assert await client.ping_pong() == b""


async def test_ops_before_connect_use_pre_connect_defaults(server, raw):
    client = await raw(server.port, b"SUB foo 1\r\nPUB foo.* 1\r\nx\r\nPUB foo 1\r\ny\r\n")
    assert await client.ping_pong() == (
        OK + err("Invalid Publish Subject") + OK + OK + b"MSG foo 1 1\r\ny\r\n"
    )


async def test_ops_are_case_insensitive(server, raw):
    client = await raw(server.port, b'cOnNeCt {"verbose":false}\r\nsub foo 1\r\n')
    await client.send(b"pub foo 1\r\nx\r\n")
    await client.send(b"unsub 1\r\npub foo 1\r\ny\r\n")
    assert await client.ping_pong() == b"MSG foo 1 1\r\nx\r\n"
    await client.send(b"ping\r\nPiNg\r\n")
    await client.expect(PONG * 2)


async def test_tabs_and_repeated_blanks_separate_arguments(server, raw):
    client = await raw(server.port, b'CONNECT\t{"verbose":false}\r\nSUB\t foo \t q\t1\r\n')
    await client.send(b"PUB \t foo\t\tr \t2\r\nhi\r\n")
    assert await client.ping_pong() == b"MSG foo 1 r 2\r\nhi\r\n"


async def test_bare_newline_terminates_lines(server, raw):
    client = await raw(server.port, b'CONNECT {"verbose":false}\nSUB foo 1\nPUB foo 2\nhi\r\n')
    await client.send(b"PING\n")
    assert await client.read_line() == b"MSG foo 1 2\r\n"
    await client.expect(b"hi\r\nPONG\r\n")


async def test_ping_ignores_rest_of_line(server, raw):
    client = await raw(server.port, b"PINGxyz\r\nPONG junk\r\n+OK whatever\r\n")
    await client.expect(PONG)
    await client.expect_nothing()


async def test_client_info_is_ignored(server, raw):
    client = await raw(server.port, b'INFO {"server_id":"x"}\r\nINFO null\r\nINFO{}\r\n')
    assert await client.ping_pong() == b""


async def test_awkward_splits_are_reassembled(server, raw):
    data = CH + b"SUB foo 1\r\nPUB foo r 5\r\nhello\r\nHPUB foo 18 20\r\n" + HDR + b"hi\r\n"
    client = await raw(server.port)
    for byte in data:
        await client.send(bytes([byte]))
    assert await client.ping_pong() == (
        b"MSG foo 1 r 5\r\nhello\r\nHMSG foo 1 18 20\r\n" + HDR + b"hi\r\n"
    )


# --- slow consumers ---------------------------------------------------------------------------


async def flood(publisher: RawClient, subject: bytes, total: int, size: int = 65536) -> None:
    """Publish `total` bytes of payload to `subject`, in messages of `size` bytes."""
    message = b"PUB %s %d\r\n%s\r\n" % (subject, size, b"x" * size)
    for _ in range(total // size):
        await publisher.send(message)


async def open_small_window_client(port: int) -> RawClient:
    """A raw client whose socket receive buffer is tiny, so the server's writes back up soon."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", port))
    client = RawClient(trio.SocketStream(sock))
    client.info = await client.read_line()
    return client


async def test_max_pending_closes_slow_consumer_without_err(server_factory, raw):
    max_pending = 256 * 1024
    srv = await server_factory(max_pending=max_pending, max_payload=65536)
    slow = await raw(srv.port, small_window=True)
    await slow.send(C + b"SUB big 1\r\n")
    await slow.ping_pong()
    cid = json.loads(slow.info[5:])["client_id"]
    connection = srv.clients[cid]
    publisher = await raw(srv.port, C)
    peak = 0
    message = b"PUB big 65536\r\n" + b"x" * 65536 + b"\r\n"
    with trio.fail_after(10):
        while cid in srv.clients:
            await publisher.send(message)
            peak = max(peak, connection.outbound.pending)
    assert connection.closed_reason == Reason.SLOW_CONSUMER_PENDING
    assert peak <= max_pending  # memory held for the slow consumer stayed within its budget
    assert connection.outbound.pending == 0 and not connection.outbound.chunks
    assert srv.stats.slow_consumers == 1
    received = await slow.expect_closed()
    assert b"-ERR" not in received
    assert received.startswith(b"MSG big 1 65536\r\n")
    # everyone else carries on
    assert await publisher.ping_pong() == b""
    other = await raw(srv.port, C + b"SUB small 1\r\n")
    await other.ping_pong()
    await publisher.send(b"PUB small 2\r\nok\r\n")
    await publisher.ping_pong()
    assert await other.ping_pong() == b"MSG small 1 2\r\nok\r\n"


def test_max_pending_edge_is_inclusive():
    """nats-server's rule: slow when pending > max_pending, so exactly max_pending is fine."""
    overflows = []
    outbound = Outbound(100, lambda: overflows.append(True))
    outbound.write(b"x" * 60)
    outbound.write_msg(b"MSG ", b"a 1\r\n", b"x" * 31, 40)
    assert outbound.pending == 100 and not overflows
    outbound.write(b"y")
    assert overflows == [True] and outbound.pending == 0 and not outbound.chunks
    outbound.write(b"z" * 200)
    assert overflows == [True]  # reported once


async def test_max_pending_fast_reader_is_not_slow(server_factory, raw):
    srv = await server_factory(max_pending=256 * 1024, max_payload=65536)
    reader = await raw(srv.port, C + b"SUB big 1\r\n")
    await reader.ping_pong()
    publisher = await raw(srv.port, C)
    size = len(b"MSG big 1 65536\r\n") + 65536 + 2
    for _ in range(3):  # 3 x 64 KiB each round, read before publishing more
        await flood(publisher, b"big", 3 * 65536)
        await reader.read_exactly(3 * size)
    assert srv.stats.slow_consumers == 0


async def test_write_deadline_closes_stuck_reader(server_factory, raw):
    srv = await server_factory(write_deadline=0.2)
    slow = await raw(srv.port, small_window=True)
    await slow.send(C + b"SUB big 1\r\n")
    await slow.ping_pong()
    cid = json.loads(slow.info[5:])["client_id"]
    connection = srv.clients[cid]
    publisher = await raw(srv.port, C)
    with trio.fail_after(10):
        while cid in srv.clients:
            await publisher.send(b"PUB big 65536\r\n" + b"x" * 65536 + b"\r\n")
            await trio.sleep(0)
            if connection.outbound.pending > 8 << 20:
                await trio.sleep(0.05)  # the writer is stuck: wait for its deadline
    assert connection.closed_reason == Reason.SLOW_CONSUMER_WRITE
    assert srv.stats.slow_consumers == 1
    received = await slow.expect_closed()
    assert b"-ERR" not in received
    assert await publisher.ping_pong() == b""
