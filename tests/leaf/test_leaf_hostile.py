"""Hostile leaf node input, played by hand against a trionats hub and a nats-server 2.15.1 hub:
both answer each line the same way (the same -ERR, or the same silent close, or the same
PONG after it), and the trionats hub serves its clients on."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess, free_port

pytestmark = pytest.mark.interop

CONNECT = (b'CONNECT {"version":"2.15.1","server_id":"NHOSTILE","name":"HOSTILE","headers":true,'
           b'"compress_mode":"off","remote_account":"$G","protocol":1}\r\n')  # fmt: skip


@pytest.fixture(scope="module")
def hubs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hubs")
    started = []
    try:
        for kind in (TrionatsProcess, NatsServerProcess):
            leaf_port = free_port()
            path = Path(tmp) / f"{kind.__name__}.conf"
            path.write_text(f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}\n')
            process = kind("-c", str(path))
            process.leaf_port = leaf_port
            started.append(process)
        yield started
    finally:
        for process in started:
            process.stop()


def play(port: int, data: bytes, *, connect: bool = True) -> bytes:
    """What the hub answers `data` with (after its INFO, and its CONNECT answer): everything
    up to the close, or up to the PONG of a PING sent after it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        buf = b""
        while not buf.endswith(b"\r\n"):
            buf += sock.recv(65536)
        assert buf.startswith(b"INFO ")
        if connect:
            sock.sendall(CONNECT + b"PING\r\n")
            buf = b""
            while b"PONG\r\n" not in buf:
                buf += sock.recv(65536)
        sock.sendall(data + b"PING\r\n")
        answer = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            answer += chunk
            if b"PONG\r\n" in answer:
                break
        # Interest both hubs announce differs ($SYS imports): only errors and PONG count.
        return b"".join(line + b"\r\n" for line in answer.split(b"\r\n")
                        if line.startswith((b"-ERR", b"PONG")))  # fmt: skip
    finally:
        sock.close()


CASES = [
    b"LS+ a b\r\n",  # queue without weight: closed, no -ERR
    b"LS+ a b 1 x\r\n",
    b"LS+ bad..subj\r\n",  # -ERR 'Invalid Subscription', stays
    b"LMSG x 99999999999\r\n",  # closed, no -ERR
    b"LMSG x 2000000\r\n",  # -ERR 'Maximum Payload Violation'
    b"LMSG x q 2\r\nhi\r\n",
    b"LMSG x * r 2\r\nhi\r\n",
    b"LMSG x 2\r\nhiX\r\n",
    b"HMSG x 5 3\r\n",
    b"HMSG x 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    b"FOO bar\r\n",
    b"PUB x 2\r\nhi\r\n",
    b"HPUB x 2 2\r\nhi\r\n",
    b"SUB x 1\r\n",
    b"UNSUB 1\r\n",
    b"MSG x 1 2\r\nhi\r\n",
    b"LS- never.subscribed\r\n",
    b"LS+ x\r\nLS- x\r\nLS- x\r\n",
    b"INFO {\"server_id\":1}\r\n",
    b"-ERR 'something'\r\n",
]


@pytest.mark.parametrize("data", CASES, ids=repr)
def test_after_connect_both_hubs_answer_alike(hubs, data):
    ours, theirs = (play(hub.leaf_port, data) for hub in hubs)
    assert ours == theirs


@pytest.mark.parametrize(
    "data",
    [b"LS+ foo\r\n", b"LMSG foo 2\r\nhi\r\n", b'CONNECT {"lang":"go"}\r\n',
     b"CONNECT {bad json\r\n", b'CONNECT {"cluster":"a b"}\r\n'],
    ids=repr,
)  # fmt: skip
def test_before_connect_both_hubs_answer_alike(hubs, data):
    ours, theirs = (play(hub.leaf_port, data, connect=False) for hub in hubs)
    assert ours == theirs


def test_a_huge_control_line_is_refused_alike(hubs):
    line = b"LS+ " + b"s" * 70000 + b"\r\n"
    ours, theirs = (play(hub.leaf_port, line) for hub in hubs)
    assert ours == theirs


def test_the_hub_serves_on_after_hostile_leaves(hubs):
    ours = hubs[0]
    for data in CASES:
        play(ours.leaf_port, data)
    sock = socket.create_connection(("127.0.0.1", ours.port), timeout=5)
    info = sock.recv(65536)
    assert json.loads(info[5:])["server_name"]
    sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
    assert sock.recv(100) == b"PONG\r\n"
    sock.close()
