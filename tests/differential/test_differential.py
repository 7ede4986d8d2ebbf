"""Differential tests: the same bytes to nats-server 2.15.1 and to trionats get the same replies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import NatsServerProcess, start_trionats

# --- the comparison machinery -----------------------------------------------------------------

#: INFO keys both servers must send, whose values differ legitimately (identity, addresses).
VARYING_INFO_KEYS = frozenset(
    {"server_id", "server_name", "version", "go", "port", "client_id", "client_ip"}
)
#: INFO keys nats-server sends that trionats need not (build, JetStream and auth-callout details).
OPTIONAL_INFO_KEYS = frozenset({"git_commit", "api_lvl", "xkey"})

#: Pause between two steps, so that the server reads them apart.
STEP_GAP = 0.01
#: A connection is done once nothing arrived for this long after all its PINGs were answered...
SETTLE_AFTER_PONGS = 0.05
#: ...or for this long when some PING is still unanswered (swallowed as payload, say).
SETTLE_QUIET = 0.3
#: Seconds one whole exchange may take.
EXCHANGE_TIMEOUT = 15.0

_INFO_LINE = re.compile(rb"(?m)^INFO (\{[^\r\n]*\}) \r\n")


def normalise_info(fields: dict) -> dict:
    """INFO fields with the values that may differ replaced, and optional keys dropped."""
    return {
        key: "<varies>" if key in VARYING_INFO_KEYS else value
        for key, value in fields.items()
        if key not in OPTIONAL_INFO_KEYS
    }


def normalise_output(data: bytes) -> bytes:
    """`data` with every INFO line rewritten as sorted, normalised JSON."""

    def rewrite(match: re.Match) -> bytes:
        fields = normalise_info(json.loads(match.group(1)))
        return b"INFO " + json.dumps(fields, sort_keys=True).encode() + b" \r\n"

    return _INFO_LINE.sub(rewrite, data)


@attrs.frozen
class Reply:
    """What one connection received: its greeting INFO, everything after it, and the close."""

    info: dict
    output: bytes
    closed: bool


class _Peer:
    """One raw connection: a reader task collects everything until the server closes."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.data = bytearray()
        self.closed = False
        self.pings_sent = 0
        self._changed = trio.Event()

    async def read_all(self) -> None:
        try:
            while True:
                chunk = await self.stream.receive_some(65536)
                if not chunk:
                    break
                self.data += chunk
                self._signal()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.closed = True
        self._signal()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_change(self, timeout: float) -> bool:
        """True if data or the close arrived within `timeout`."""
        event = self._changed
        with trio.move_on_after(timeout):
            await event.wait()
            return True
        return False

    async def send(self, chunk: bytes) -> None:
        if self.closed:
            return
        self.pings_sent += chunk.count(b"PING\r\n")
        try:
            await self.stream.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def pongs(self) -> int:
        return bytes(self.data).count(b"PONG\r\n")

    async def settle(self, until_closed: bool = False) -> None:
        """Wait for the answers to our PINGs, then for a quiet moment (or the close)."""
        while not self.closed:
            if until_closed:
                await self.wait_change(EXCHANGE_TIMEOUT)
                continue
            quiet = SETTLE_AFTER_PONGS if self.pongs() >= self.pings_sent else SETTLE_QUIET
            if not await self.wait_change(quiet):
                return

    async def greeting(self) -> dict:
        while b"\r\n" not in self.data:
            if self.closed:
                raise AssertionError(f"closed before INFO: {bytes(self.data)!r}")
            await self.wait_change(EXCHANGE_TIMEOUT)
        line = bytes(self.data).split(b"\r\n", 1)[0]
        assert line.startswith(b"INFO {") and line.endswith(b"} "), line
        return json.loads(line[5:-1])

    def reply(self, info: dict) -> Reply:
        data = bytes(self.data)
        after_info = data.split(b"\r\n", 1)[1] if b"\r\n" in data else b""
        return Reply(normalise_info(info), normalise_output(after_info), self.closed)


async def reset_match_cache(port: int) -> None:
    """Empty the server's subject match cache: subscribing to `>` and leaving drops it all.

    nats-server appends new subscriptions to cached match results, so delivery order depends
    on which subjects earlier tests published to; a shared reference must start clean.
    """
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b'CONNECT {"verbose":false}\r\nSUB > 1\r\nUNSUB 1\r\nPING\r\n')
        received = b""
        with trio.fail_after(EXCHANGE_TIMEOUT):
            while b"PONG\r\n" not in received:
                chunk = await stream.receive_some(65536)
                assert chunk, f"closed: {received!r}"
                received += chunk


Step = bytes | tuple[int, bytes]


async def exchange(
    port: int,
    steps: list[Step],
    connections: int = 1,
    until_closed: bool = False,
    gap: float = STEP_GAP,
    reset_cache: bool = True,
) -> list[Reply]:
    """Open `connections` connections, replay `steps` on them, return what each received.

    `reset_cache=False` skips emptying the match cache first: that uses a connection of its
    own, which a server may not have seen close yet (it would count against max_connections).

    A step is bytes for connection 0 or (connection, bytes). Before each step every
    connection's PINGs must have been answered (or it closed), so steps on different
    connections happen in order; steps are also `gap` seconds apart, so a script split into
    steps reaches the server in separate reads.
    """
    if reset_cache:
        await reset_match_cache(port)
    with trio.fail_after(EXCHANGE_TIMEOUT):
        async with trio.open_nursery() as nursery:
            peers = []
            infos = []
            for _ in range(connections):
                peer = _Peer(await trio.open_tcp_stream("127.0.0.1", port))
                nursery.start_soon(peer.read_all)
                infos.append(await peer.greeting())
                peers.append(peer)
            for i, step in enumerate(steps):
                index, chunk = (0, step) if isinstance(step, bytes) else step
                if i:
                    await trio.sleep(gap)
                    for peer in peers:
                        await _answered(peer)
                await peers[index].send(chunk)
            for peer in peers:
                await peer.settle(until_closed)
            replies = [peer.reply(info) for peer, info in zip(peers, infos, strict=True)]
            for peer in peers:
                await peer.stream.aclose()
            nursery.cancel_scope.cancel()
    return replies


async def _answered(peer: _Peer, timeout: float = 1.0) -> None:
    with trio.move_on_after(timeout):
        while not peer.closed and peer.pongs() < peer.pings_sent:
            await peer.wait_change(timeout)


async def assert_same_replies(
    reference_port: int,
    trionats_port: int,
    steps: list[Step],
    connections: int = 1,
    until_closed: bool = False,
    gap: float = STEP_GAP,
    reset_cache: bool = True,
) -> list[Reply]:
    """Run `steps` against both servers at once; every connection must see the same."""
    results: dict[str, list[Reply]] = {}

    async def run(name: str, port: int) -> None:
        results[name] = await exchange(port, steps, connections, until_closed, gap, reset_cache)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run, "nats-server", reference_port)
        nursery.start_soon(run, "trionats", trionats_port)
    expected, got = results["nats-server"], results["trionats"]
    for n, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert have.info == want.info, f"connection {n}: INFO differs"
        assert have.output == want.output, (
            f"connection {n} output differs:\n nats-server: {want.output!r}\n"
            f" trionats:    {have.output!r}"
        )
        assert have.closed == want.closed, (
            f"connection {n}: nats-server closed={want.closed}, trionats closed={have.closed}"
            f" (output {want.output!r})"
        )
    return expected


def write_reference_config(directory: Path, **settings) -> Path:
    """A nats-server configuration file: numbers as they are, float seconds as durations."""
    lines = []
    for key, value in settings.items():
        if isinstance(value, float):
            value = f'"{round(value * 1000)}ms"'
        lines.append(f"{key}: {value}")
    path = directory / "nats-server.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- script building blocks -------------------------------------------------------------------

C = b'CONNECT {"verbose":false}\r\n'
CH = b'CONNECT {"verbose":false,"headers":true}\r\n'
CNR = b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
PING = b"PING\r\n"


def pub(subject: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    line = b" ".join(p for p in (b"PUB", subject, reply, b"%d" % len(payload)) if p)
    return line + b"\r\n" + payload + b"\r\n"


def hpub(subject: bytes, headers: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    sizes = b"%d %d" % (len(headers), len(headers) + len(payload))
    line = b" ".join(p for p in (b"HPUB", subject, reply, sizes) if p)
    return line + b"\r\n" + headers + payload + b"\r\n"


HDR = b"NATS/1.0\r\nA: b\r\nA: c\r\n\r\n"

SCRIPTS = {
    # reserved subjects and replies (service imports, JetStream acks, gateways)
    "reserved_replies_and_gateway_subjects": [
        b'CONNECT {"verbose":true}\r\nSUB foo 1\r\nSUB _GR_.> 2\r\n'
        + pub(b"foo", b"a", b"_R_.x")
        + pub(b"foo", b"a", b"_R_.")
        + pub(b"foo", b"a", b"_R_")
        + pub(b"foo", b"a", b"$JS.ACK.x")
        + pub(b"foo", b"a", b"$JS.ACK.")
        + pub(b"foo", b"a", b"_GR_.x")
        + pub(b"foo", b"a", b"_GR_.")
        + pub(b"_GR_.x", b"a")
        + pub(b"_GR_.", b"a")
        + pub(b"$GNR.x", b"a", b"$GNR.y")
        + PING
    ],
    "reserved_reply_in_a_run_and_a_batch": [
        C + b"SUB foo 1\r\n" + pub(b"foo", b"a", b"_R_.x") * 3
        + pub(b"foo", b"ab", b"_R_.x") + pub(b"foo", b"a") + pub(b"_GR_.x", b"abc") * 2 + PING
    ],
    # CONNECT, verbose and PING/PONG
    "connect_defaults_are_verbose": [b"CONNECT {}\r\n" + PING],
    "connect_verbose_false": [C + PING],
    "verbose_ok_after_sub_pub_unsub_not_ping_pong": [
        b'CONNECT {"verbose":true}\r\nSUB foo 1\r\n'
        + pub(b"foo", b"hi")
        + b"UNSUB 1\r\nUNSUB 99\r\nUNSUB 98 3\r\nPING\r\nPONG\r\n"
        + PING
    ],
    "ops_before_connect_use_verbose_defaults": [b"SUB foo 1\r\n" + pub(b"foo", b"hi") + PING],
    "second_connect_changes_options": [C + b'SUB foo 1\r\nCONNECT {"verbose":true}\r\n' + PING],
    "second_connect_drops_subscriptions": [
        C + b"SUB foo 1\r\nSUB bar q 2\r\n" + C + pub(b"foo", b"x") + pub(b"bar", b"y")
        + b"SUB foo 1\r\n" + pub(b"foo", b"z") + PING
    ],
    "subs_before_the_first_connect_are_kept": [b"SUB foo 1\r\n" + C + pub(b"foo", b"x") + PING],
    "protocol_1_gets_info_after_first_pong_only": [
        b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\nPING\r\n'
    ],
    "protocol_1_ping_before_connect_no_info": [
        PING,
        b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\nPING\r\n',
    ],
    "protocol_0_gets_no_async_info": [b'CONNECT {"verbose":false,"protocol":0}\r\n' + PING],
    "protocol_float_1_0": [b'CONNECT {"verbose":false,"protocol":1.0}\r\n' + PING],
    "connect_keys_case_insensitive": [b'CONNECT {"VERBOSE":false,"Protocol":1}\r\n' + PING],
    "connect_null_is_empty": [b"CONNECT null\r\n" + PING],
    "connect_unknown_fields_ignored": [b'CONNECT {"verbose":false,"foo":[1,{}]}\r\n' + PING],
    "unsolicited_pong_harmless": [C + b"PONG\r\nPONG\r\n" + PING],
    # PUB / SUB / MSG
    "pub_sub_with_reply": [C + b"SUB foo 1\r\n" + pub(b"foo", b"hello", b"bar") + PING],
    "zero_length_payload": [C + b"SUB foo 1\r\nPUB foo 0\r\n\r\n" + PING],
    "payload_with_crlf_inside": [C + b"SUB foo 1\r\n" + pub(b"foo", b"a\r\nSUB x 9\r\nb") + PING],
    "two_subs_same_connection": [
        C + b"SUB foo 1\r\nSUB bar 2\r\n" + pub(b"foo", b"x") + pub(b"bar", b"y") + PING
    ],
    "reused_sid_is_ignored": [
        C + b"SUB foo 1\r\nSUB bar 1\r\n" + pub(b"bar", b"b") + pub(b"foo", b"f") + PING
    ],
    "queue_group_one_member": [C + b"SUB foo q 1\r\n" + pub(b"foo", b"a") + PING],
    "queue_and_plain_subscriber": [C + b"SUB foo q 1\r\nSUB foo 2\r\n" + pub(b"foo", b"a") + PING],
    "queue_names_not_validated": [b"CONNECT {}\r\nSUB foo .q 1\r\nSUB foo q.* 2\r\n" + PING],
    "wildcards_in_trie_order": [
        C
        + b"SUB foo.* 1\r\nSUB foo.> 2\r\nSUB * 3\r\nSUB > 4\r\nSUB foo.bar 5\r\n"
        + pub(b"foo.bar", b"a")
        + pub(b"foo", b"b")
        + pub(b"foo.bar.baz", b"c")
        + PING
    ],
    "new_subs_appended_to_cached_match": [
        C
        + pub(b"a.b", b"")
        + b"SUB a.b 1\r\nSUB > 2\r\nSUB a.* 3\r\n"
        + pub(b"a.b", b"x")
        + b"UNSUB 2\r\n"
        + pub(b"a.b", b"y")
        + PING
    ],
    "wildcard_subject_tokens_literal_in_pub": [
        C + b"SUB foo* 1\r\nSUB f>o 2\r\n" + pub(b"foo*", b"1") + pub(b"f>o", b"2") + PING
    ],
    "unsub_max_then_three_pubs": [
        C + b"SUB foo 1\r\nUNSUB 1 2\r\n" + pub(b"foo", b"1") * 3 + PING
    ],
    "unsub_max_already_reached": [
        C
        + b"SUB foo 1\r\n"
        + pub(b"foo", b"1")
        + pub(b"foo", b"2")
        + b"UNSUB 1 2\r\n"
        + pub(b"foo", b"3")
        + PING
    ],
    "unsub_bad_max_removes_now": [C + b"SUB foo 1\r\nUNSUB 1 x\r\n" + pub(b"foo", b"1") + PING],
    "echo_false_same_connection": [
        b'CONNECT {"verbose":false,"echo":false}\r\nSUB foo 1\r\n' + pub(b"foo", b"hi") + PING
    ],
    # pedantic and subjects
    "pedantic_invalid_publish_subject_still_delivered": [
        b'CONNECT {"pedantic":true}\r\nSUB foo.* 1\r\n' + pub(b"foo.*", b"hi") + PING
    ],
    "pedantic_empty_tokens": [
        C
        + b"SUB > 1\r\n"
        + pub(b"foo..bar", b"1")
        + pub(b".foo", b"2")
        + pub(b"foo.", b"3")
        + PING
    ],
    # pedantic: nats-server answers an invalid subject at the PUB line, and again when it
    # keeps that line for the payload's next read
    "pedantic_invalid_subject_then_a_bad_payload_end": [
        b'CONNECT {"verbose":false}\r\nSUB > 1\r\nPUB foo.* 1\r\nabc\r\nPING\r\n'
    ],
    "pedantic_invalid_subject_payload_in_the_next_read": [
        b'CONNECT {"verbose":true}\r\nSUB > 1\r\nPUB foo.* 5\r\nab', b"cde\r\nPING\r\n"
    ],
    "pedantic_invalid_subject_payload_never_ends": [
        CH + b"SUB > 1\r\nHPUB foo.> 12 14\r\nNATS/1.0\r\n\r\nPING\r\n"
    ],
    "pedantic_off_no_error": [
        b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB foo.* 1\r\n'
        + pub(b"foo.*", b"hi")
        + PING
    ],
    "invalid_subjects_stay_open": [
        b"CONNECT {}\r\nSUB a..b 1\r\nSUB a.>.b 2\r\nSUB >.a 3\r\nSUB .a 4\r\nSUB a. 5\r\n"
        + b"SUB foo* 6\r\n"
        + PING
    ],
    # headers
    "hpub_to_headers_subscriber": [CH + b"SUB foo 1\r\n" + hpub(b"foo", HDR, b"hi") + PING],
    "hpub_with_reply": [CH + b"SUB foo 1\r\n" + hpub(b"foo", HDR, b"hi", b"rep") + PING],
    "hpub_zero_header_bytes_is_msg": [CH + b"SUB foo 1\r\nHPUB foo 0 2\r\nhi\r\n" + PING],
    "hpub_opaque_header_block": [CH + b"SUB foo 1\r\n" + hpub(b"foo", b"abcd", b"hi") + PING],
    "hpub_header_only": [CH + b"SUB foo 1\r\n" + hpub(b"foo", HDR, b"") + PING],
    # no responders
    "no_responders_503": [CNR + b"SUB _INBOX.1 1\r\n" + pub(b"foo", b"hi", b"_INBOX.1") + PING],
    "no_responders_wildcard_reply_sub": [
        CNR + b"SUB _INBOX.* 1\r\n" + pub(b"nobody", b"", b"_INBOX.1") + PING
    ],
    "no_responders_first_matching_sub": [
        CNR + b"SUB _INBOX.> 1\r\nSUB _INBOX.1 2\r\n" + pub(b"foo", b"hi", b"_INBOX.1") + PING
    ],
    "no_responders_nothing_without_reply_sub": [CNR + pub(b"foo", b"hi", b"_INBOX.1") + PING],
    "no_responders_not_for_queue_reply_sub": [
        CNR + b"SUB _INBOX.1 q 1\r\n" + pub(b"foo", b"hi", b"_INBOX.1") + PING
    ],
    "no_responders_hpub": [
        CNR + b"SUB _INBOX.1 1\r\n" + hpub(b"foo", HDR, b"hi", b"_INBOX.1") + PING
    ],
    "no_responders_not_when_delivered": [
        CNR + b"SUB foo 2\r\nSUB _INBOX.1 1\r\n" + pub(b"foo", b"hi", b"_INBOX.1") + PING
    ],
    "no_responders_off_by_default": [
        CH + b"SUB _INBOX.1 1\r\n" + pub(b"foo", b"hi", b"_INBOX.1") + PING
    ],
    # errors that close
    "err_no_responders_requires_headers": [b'CONNECT {"no_responders":true}\r\n' + PING],
    "err_invalid_client_protocol_2": [b'CONNECT {"protocol":2}\r\n' + PING],
    "err_invalid_client_protocol_negative": [b'CONNECT {"protocol":-1}\r\n' + PING],
    "err_account_field": [b'CONNECT {"account":"A"}\r\n' + PING],
    "err_unknown_op": [b"FOO\r\n" + PING],
    "err_route_op": [b"RS+ foo\r\n"],
    "err_msg_from_client": [b"MSG foo 1 2\r\nhi\r\n"],
    "err_payload_not_followed_by_crlf": [b"PUB foo 3\r\nhello\r\n"],
    "err_unsub_without_space": [b"UNSUB\r\n"],
    "err_op_without_separator": [b"PUBX foo 1\r\n"],
    "err_leading_space": [b" PING\r\n"],
    "err_empty_line": [b"\r\n"],
    "err_max_control_line_default": [b"SUB " + b"a" * 4093 + b" 1\r\n" + PING],
    "max_control_line_default_at_limit": [b"SUB " + b"a" * 4092 + b" 1\r\n" + PING],
    "err_max_control_line_partial_line": [b"SUB " + b"a" * 5000],
    "err_max_payload_default": [b"PUB foo 1048577\r\n"],
    "max_payload_default_at_limit": [
        C + b"SUB foo 1\r\nPUB foo 1048576\r\n" + b"x" * 1048576 + b"\r\n" + PING
    ],
    "err_hpub_max_payload_counts_headers": [CH + b"HPUB foo 12 1048577\r\n"],
    # silent closes; what was queued before still arrives
    "silent_pub_missing_size": [b"SUB foo 1\r\nPUB foo\r\n"],
    "silent_pub_too_many_args": [b"PUB foo a b 3\r\n"],
    "silent_pub_bad_size": [b"SUB foo 1\r\n" + pub(b"foo", b"hi") + b"PUB foo abc\r\n"],
    "silent_pub_negative_size": [b"PUB foo -1\r\n"],
    "silent_pub_ten_digit_size": [b"PUB foo 1000000000\r\n"],
    "err_max_payload_nine_digit_size": [b"PUB foo 999999999\r\n"],
    "silent_sub_arg_count": [b"SUB foo\r\n"],
    "silent_sub_too_many_args": [b"SUB foo q 1 2\r\n"],
    "silent_unsub_too_many_args": [b"UNSUB 1 2 3\r\n"],
    "silent_hpub_without_headers": [b"SUB foo 1\r\nHPUB foo 0 0\r\n\r\n"],
    "silent_hpub_header_bigger_than_total": [b'CONNECT {"headers":true}\r\nHPUB foo 12 10\r\n'],
    "silent_bad_connect_json": [b"SUB foo 1\r\nCONNECT {bad\r\n"],
    "silent_connect_array": [b"CONNECT []\r\n"],
    "silent_connect_wrong_type": [b'CONNECT {"verbose":"yes"}\r\n'],
    "silent_bare_connect": [b"CONNECT\r\n"],
    "client_err_closes": [b"SUB foo 1\r\n-ERR 'x'\r\n" + PING],
    "client_err_unquoted": [b"-ERR x\r\n"],
    "silent_info_not_json": [b"INFOX\r\n" + PING],
    "silent_info_array": [b"INFO []\r\n" + PING],
    # weird corners
    "connect_newline_before_json": [b'CONNECT\n{"verbose":false}\r\n' + PING],
    "sub_tab_newline_argument": [b"SUB\t\nfoo 1\n" + PING],
    "client_hmsg_is_empty_message": [b"HMSG foo 1 2 3\r\n\r\n" + PING],
    "client_hmsg_crlf_in_next_read": [b"HMSG foo 1 2 3\r\n", b"\r\n" + PING],
    "ping_with_trailing_garbage": [b"PINGxyz\r\nPONGabc\r\n" + PING],
    "client_ok_ignored": [b"+OK\r\n" + PING],
    "client_info_ignored": [b'INFO {"server_id":"x","port":1}\r\nINFO null\r\nINFO{}\r\n' + PING],
    "case_insensitive_ops": [
        b'connect {"verbose":false}\r\nsub foo 1\r\npUb foo 2\r\nhi\r\nUnSuB 1\r\nping\r\n'
    ],
    "tabs_and_multiple_spaces": [
        b'CONNECT\t{"verbose":false}\r\nSUB\t foo \t q\t1\r\nPUB \t foo\t\tr \t2\r\nhi\r\n' + PING
    ],
    "bare_newlines": [b'CONNECT {"verbose":false}\nSUB foo 1\nPUB foo 2\nhi\r\nPING\n'],
    "cr_inside_argument": [C + b"SUB foo\r1\r\n" + pub(b"foo", b"x") + PING],
    # spans: canonical PUBs to one subject, rewritten into MSGs in one go (PubBatch.span).
    # (Two subscriptions on one literal subject come out of nats-server's sublist in map
    # order, which varies: each script keeps one subscription per trie node. A line becomes
    # part of spans once seen: the cycles repeat.)
    "span_of_varying_sizes_to_three_subscribers": [
        C + b"SUB foo 1\r\nSUB * 7\r\nSUB > 22\r\n"
        + b"".join(pub(b"foo", b"x" * n) for n in (1, 5, 0, 12, 3)) * 3 + PING
    ],
    "span_payload_contains_the_line_start": [
        C + b"SUB foo 1\r\n"
        + (pub(b"foo", b"a") + pub(b"foo", b"PUB foo 3") + pub(b"foo", b"bc")) * 3 + PING
    ],
    "span_with_auto_unsubscribe": [
        C + b"SUB foo 1\r\nSUB * 2\r\nUNSUB 1 2\r\n"
        + b"".join(pub(b"foo", b"y" * n) for n in (1, 2, 3, 4)) * 2 + PING
    ],
    "span_broken_by_reply_other_subject_and_odd_lines": [
        C + b"SUB foo 1\r\nSUB bar 2\r\n" + pub(b"foo", b"a") + pub(b"foo", b"ab", b"r")
        + pub(b"foo", b"abc") + pub(b"bar", b"d") + pub(b"foo", b"ef")
        + b"PUB foo  2\r\nhi\r\nPUB foo 3\nhey\r\n" + pub(b"foo", b"z") + PING
    ],
    "span_to_a_queue_group_and_without_echo": [
        b'CONNECT {"verbose":false,"echo":false}\r\nSUB foo 1\r\nSUB foo q 2\r\n'
        + b"".join(pub(b"foo", b"q" * n) for n in (2, 4, 6)) * 3 + PING
    ],
}


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", list(SCRIPTS.values()), ids=list(SCRIPTS))
async def test_script(reference_server, server, steps):
    await assert_same_replies(reference_server.port, server.port, steps)


async def test_greeting_info_fields(reference_server, server):
    replies = await assert_same_replies(reference_server.port, server.port, [b""])
    info = replies[0].info
    assert info["proto"] == 1 and info["headers"] is True and info["max_payload"] == 1048576
    assert info["host"] == "127.0.0.1"


SPLIT_SCRIPT = (
    CH
    + b"SUB foo 1\r\nSUB bar q 2\r\n"
    + pub(b"foo", b"hello", b"reply")
    + hpub(b"bar", HDR, b"payload")
    + b"UNSUB 1\r\n"
    + pub(b"foo", b"gone")
    + PING
)


def _split_at(data: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if data[a:b]]


def _awkward_cuts() -> dict[str, list[int]]:
    data = SPLIT_SCRIPT
    payload = data.index(b"hello")
    header = data.index(b"NATS/1.0")
    return {
        "inside_op_name": [len(CH) + 2],
        "after_op_before_space": [len(CH) + 3],
        "between_cr_and_lf": [data.index(b"\r\n", len(CH)) + 1],
        "inside_payload": [payload + 2],
        "before_payload_crlf": [payload + 5],
        "between_payload_cr_and_lf": [payload + 6],
        "inside_header_block": [header + 4, header + 12],
        "inside_connect_json": [10, 20],
    }


@pytest.mark.parametrize("cuts", list(_awkward_cuts().values()), ids=list(_awkward_cuts()))
async def test_script_split_at_awkward_boundary(reference_server, server, cuts):
    await assert_same_replies(reference_server.port, server.port, _split_at(SPLIT_SCRIPT, *cuts))


async def test_script_one_byte_at_a_time(reference_server, server):
    script = C + b"SUB foo 1\r\n" + pub(b"foo", b"hi", b"r") + PING
    await assert_same_replies(reference_server.port, server.port, [bytes([b]) for b in script])


async def test_headers_stripped_for_subscriber_without_headers(reference_server, server):
    steps = [
        (0, C + b"SUB foo 1\r\nSUB foo q 2\r\n" + PING),
        (1, CH + hpub(b"foo", HDR, b"body", b"rep") + PING),
        (0, PING),
    ]
    await assert_same_replies(reference_server.port, server.port, steps, connections=2)


async def test_echo_false_still_delivers_to_others(reference_server, server):
    steps = [
        (0, b'CONNECT {"verbose":false,"echo":false}\r\nSUB foo 1\r\n' + PING),
        (1, C + b"SUB foo 1\r\n" + PING),
        (0, pub(b"foo", b"hi") + PING),
        (1, PING),
    ]
    await assert_same_replies(reference_server.port, server.port, steps, connections=2)


async def test_no_responders_not_when_another_connection_subscribed(reference_server, server):
    steps = [
        (1, C + b"SUB svc 1\r\n" + PING),
        (0, CNR + b"SUB _INBOX.1 1\r\n" + pub(b"svc", b"req", b"_INBOX.1") + PING),
        (1, PING),
    ]
    await assert_same_replies(reference_server.port, server.port, steps, connections=2)


async def test_client_info_with_wrongly_typed_field_closes(reference_server, server):
    steps = [b'INFO {"port":"x"}\r\n' + PING]
    replies = await assert_same_replies(reference_server.port, server.port, steps)
    assert replies[0].closed


def _nested(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


#: Hostile JSON before any authentication: each once ended the whole trionats process.
HOSTILE_JSON = {
    "connect_array_nested_2000": b"CONNECT " + _nested(2000) + b"\r\n" + PING,
    "connect_object_nested_1500": b"CONNECT " + b'{"a":' * 1500 + b"1" + b"}" * 1500 + b"\r\n"
    + PING,
    "connect_deep_unknown_member": b'CONNECT {"x":' + _nested(1900) + b',"verbose":false}\r\n'
    + PING,
    "connect_deep_member_after_bad": b'CONNECT {"x":' + _nested(1900) + b',"verbose":1}\r\n'
    + PING,
    "info_nested_2000": b"INFO " + _nested(2000) + b"\r\n" + PING,
    "info_deep_unknown_member": b'INFO {"x":' + _nested(1900) + b"}\r\n" + PING,
    "connect_lone_surrogate_name": b'CONNECT {"verbose":false,"name":"\\ud800"}\r\n' + PING,
    "connect_lone_surrogate_key": b'CONNECT {"\\udc00":1,"verbose":false}\r\n' + PING,
    "info_lone_surrogate": b'INFO {"server_id":"\\ud800x","\\ud800":true}\r\n' + PING,
    "connect_huge_number_unknown": b'CONNECT {"x":' + b"9" * 3000 + b',"verbose":false}\r\n'
    + PING,
    "connect_huge_protocol": b'CONNECT {"protocol":' + b"9" * 30 + b"}\r\n" + PING,
    "connect_float_protocol": b'CONNECT {"verbose":false,"protocol":1.0}\r\n' + PING,
    "connect_import_wrong_type": b'CONNECT {"verbose":false,"import":{"allow":"a"}}\r\n' + PING,
    "info_connect_urls_number": b'INFO {"connect_urls":5}\r\n' + PING,
    "info_max_payload_over_int32": b'INFO {"max_payload":4294967296}\r\n' + PING,
    "info_gateway_cmd_payload_not_base64": b'INFO {"gateway_cmd_payload":"!!"}\r\n' + PING,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
async def test_hostile_json(reference_server, server, name):
    await assert_same_replies(reference_server.port, server.port, [HOSTILE_JSON[name]])


# --- non-default limits -----------------------------------------------------------------------

LIMITS = {"max_payload": 512, "max_control_line": 256, "max_subscriptions": 3}


@pytest.fixture(scope="module")
def limited_reference(tmp_path_factory):
    config = write_reference_config(tmp_path_factory.mktemp("limits"), **LIMITS)
    with NatsServerProcess("-c", str(config)) as process:
        yield process


LIMIT_SCRIPTS = {
    "control_line_at_lowered_limit": [C + b"SUB " + b"a" * 252 + b" 1\r\n" + PING],
    "control_line_over_lowered_limit": [C + b"SUB " + b"a" * 253 + b" 1\r\n" + PING],
    "partial_control_line_over_lowered_limit": [C + b"PUB " + b"a" * 300],
    "pub_at_max_payload": [C + b"SUB foo 1\r\n" + pub(b"foo", b"x" * 512) + PING],
    "pub_over_max_payload": [C + b"SUB foo 1\r\nPUB foo 513\r\n" + b"x" * 513 + b"\r\n" + PING],
    "hpub_at_max_payload": [
        CH + b"SUB foo 1\r\n" + hpub(b"foo", HDR, b"x" * (512 - len(HDR))) + PING
    ],
    "hpub_over_max_payload": [CH + hpub(b"foo", HDR, b"x" * (513 - len(HDR))) + PING],
    "max_subscriptions_exceeded_stays_open": [
        b"CONNECT {}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\nSUB a 1\r\n"
        + pub(b"a", b"still works")
        + PING
    ],
    "max_subscriptions_counts_after_unsub": [
        C
        + b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nUNSUB 3\r\nSUB d 4\r\nSUB e 5\r\n"
        + pub(b"d", b"x")
        + PING
    ],
}


@pytest.mark.parametrize("steps", list(LIMIT_SCRIPTS.values()), ids=list(LIMIT_SCRIPTS))
async def test_limit_script(limited_reference, server_factory, steps):
    trionats = await server_factory(**LIMITS)
    replies = await assert_same_replies(limited_reference.port, trionats.port, steps)
    assert replies[0].info["max_payload"] == 512


async def test_max_connections_refuses_second_client(tmp_path, server_factory):
    config = write_reference_config(tmp_path, max_connections=1)
    trionats = await server_factory(max_connections=1)
    steps = [(0, C + PING), (1, C + PING), (0, PING)]
    with NatsServerProcess("-c", str(config)) as reference:
        replies = await assert_same_replies(
            reference.port, trionats.port, steps, connections=2, reset_cache=False
        )
    assert replies[1].output == b"-ERR 'maximum connections exceeded'\r\n"
    assert replies[1].closed and not replies[0].closed


async def test_stale_connection(tmp_path, server_factory):
    config = write_reference_config(tmp_path, ping_interval=0.2, ping_max=2)
    trionats = await server_factory(ping_interval=0.2, ping_max=2)
    with NatsServerProcess("-c", str(config)) as reference:
        replies = await assert_same_replies(reference.port, trionats.port, [C], until_closed=True)
    assert replies[0].output == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
    assert replies[0].closed


async def test_ping_timer_runs_before_connect(tmp_path, server_factory):
    config = write_reference_config(tmp_path, ping_interval=0.2, ping_max=1)
    trionats = await server_factory(ping_interval=0.2, ping_max=1)
    with NatsServerProcess("-c", str(config)) as reference:
        replies = await assert_same_replies(reference.port, trionats.port, [b""], until_closed=True)
    assert replies[0].output == b"PING\r\n-ERR 'Stale Connection'\r\n"


async def test_first_ping_sent_despite_client_activity(tmp_path, server_factory):
    """The first PING after CONNECT is due for an RTT sample; later ones wait for quiet."""
    config = write_reference_config(tmp_path, ping_interval=0.3)
    trionats = await server_factory(ping_interval=0.3)
    steps = [C] + [pub(b"foo", b"x")] * 20 + [PING]  # publishing for 1 s, every 50 ms
    with NatsServerProcess("-c", str(config)) as reference:
        replies = await assert_same_replies(reference.port, trionats.port, steps, gap=0.05)
    # The first PING comes while the client is busy; on a loaded machine a pause in the
    # publishing may let both servers send another one (the replies above still agree).
    output = replies[0].output
    assert output.startswith(b"PING\r\n") and output.endswith(b"PONG\r\n")
    assert set(output.split(b"\r\n")[:-1]) == {b"PING", b"PONG"}


# --- a client whose bytes arrive one per read -------------------------------------------------
#
# Both servers time the first PING at 2 s + up to 0.4 s at random after CONNECT, so a replay
# that ends inside that window gets a PING from one server and not from the other. These
# scripts keep every reply out of the window, or make the PINGs' count independent of it.


def one_byte_per_step(data: bytes) -> list[bytes]:
    return [bytes([byte]) for byte in data]


async def test_first_ping_while_a_payload_trickles_in(reference_server, server):
    """The first PING comes while the payload is still arriving (it takes >= 2.7 s)."""
    steps = one_byte_per_step(C + b"SUB foo 1\r\n" + pub(b"foo", b"x" * 250) + PING)
    replies = await assert_same_replies(reference_server.port, server.port, steps)
    assert replies[0].output == b"PING\r\nMSG foo 1 250\r\n" + b"x" * 250 + b"\r\nPONG\r\n"


async def test_messages_arriving_byte_by_byte_count_as_activity(tmp_path, server_factory):
    """After the first PING (always sent), each message completed one byte at a time keeps
    the timer quiet: with ping_max 1 a second PING would be a stale connection."""
    settings = {"ping_interval": 1.5, "ping_max": 1}
    config = write_reference_config(tmp_path, **settings)
    trionats = await server_factory(**settings)
    steps = one_byte_per_step(C + pub(b"a", b"x") * 28 + PING)  # a message every ~0.15 s
    with NatsServerProcess("-c", str(config)) as reference:
        replies = await assert_same_replies(reference.port, trionats.port, steps)
    assert replies[0].output == b"PING\r\nPONG\r\n" and not replies[0].closed


async def test_bytes_of_an_unfinished_message_are_not_activity(tmp_path, server_factory):
    """A payload trickling in completes nothing: the timer after the first PING finds it
    unanswered (ping_max 1) and closes the connection."""
    settings = {"ping_interval": 1.0, "ping_max": 1}
    config = write_reference_config(tmp_path, **settings)
    trionats = await server_factory(**settings)
    steps = one_byte_per_step(C + b"PUB a 300\r\n" + b"x" * 300)
    with NatsServerProcess("-c", str(config)) as reference:
        replies = await assert_same_replies(reference.port, trionats.port, steps)
    assert replies[0].output == b"PING\r\n-ERR 'Stale Connection'\r\n" and replies[0].closed


# --- random op sequences ----------------------------------------------------------------------

_TOKENS = st.sampled_from([b"a", b"b", b"*", b">"])
_SUBJECTS = st.lists(_TOKENS, min_size=1, max_size=3).map(b".".join)
_LITERALS = st.lists(st.sampled_from([b"a", b"b", b"c"]), min_size=1, max_size=3).map(b".".join)
_SIDS = st.sampled_from([b"1", b"2", b"3"])
_PAYLOADS = st.binary(max_size=6)
_INVALID_OPS = [b"FOO\r\n", b"PUB a\r\n", b"SUB a\r\n", b"PUB a 2\r\nabc\r\n", b"-ERR x\r\n"]


@st.composite
def _random_ops(draw) -> list[bytes]:
    """A short sequence of valid and invalid ops whose replies are deterministic.

    nats-server delivers to the subscriptions of one subject in random order and picks queue
    members at random, so each subject is subscribed at most once per sequence.
    """
    headers = draw(st.booleans())
    connect = {
        "verbose": draw(st.booleans()),
        "pedantic": draw(st.booleans()),
        "echo": draw(st.booleans()),
        "headers": headers,
        "no_responders": headers and draw(st.booleans()),
        "protocol": draw(st.sampled_from([0, 1])),
    }
    ops = [b"CONNECT " + json.dumps(connect).encode() + b"\r\n"]
    used: set[bytes] = set()
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(
            st.sampled_from(["sub", "sub", "pub", "pub", "pub", "hpub", "unsub", "ping", "bad"])
        )
        if kind == "sub":
            subject = draw(_SUBJECTS)
            if subject in used:
                continue
            used.add(subject)
            queue = draw(st.sampled_from([b"", b"", b" q"]))
            ops.append(b"SUB " + subject + queue + b" " + draw(_SIDS) + b"\r\n")
        elif kind == "pub":
            subject = draw(st.one_of(_LITERALS, _SUBJECTS))
            reply = draw(st.sampled_from([b"", b"", b"a", b"b.c"]))
            ops.append(pub(subject, draw(_PAYLOADS), reply))
        elif kind == "hpub":
            reply = draw(st.sampled_from([b"", b"a"]))
            ops.append(hpub(draw(_LITERALS), HDR, draw(_PAYLOADS), reply))
        elif kind == "unsub":
            limit = draw(st.sampled_from([b"", b" 0", b" 1", b" 2"]))
            ops.append(b"UNSUB " + draw(_SIDS) + limit + b"\r\n")
        elif kind == "ping":
            ops.append(PING)
        else:
            ops.append(draw(st.sampled_from(_INVALID_OPS)))
    return ops


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_random_ops(), cut=st.floats(0, 1))
def test_random_op_sequences(reference_server, ops, cut):
    script = b"".join(ops) + PING
    steps = _split_at(script, int(len(script) * cut))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            trionats = await start_trionats(nursery)
            await assert_same_replies(reference_server.port, trionats.port, steps)
            trionats.shutdown()

    trio.run(main)
