"""A failure stays inside its connection: an exception injected into a client, a websocket
client, a route, a monitoring HTTP connection or the accept path closes that connection only,
is logged once at ERR with its traceback, is counted in /varz `internal_errors`, and the
server keeps serving.

Servers run in the test's Trio run on real sockets. The exception is injected by replacing
one method with a wrapper that raises on a chosen input (fault injection: everything else
is the real server).
"""

from __future__ import annotations

import json
import re
import struct

import attrs
import bcrypt
import pytest
import trio

from tests.clients import test_websocket
from tests.cluster import test_cluster
from tests.helpers import RawClient, start_trionats
from tests.cluster.test_cluster import (
    carrier,
    client,
    cluster_options,
    has_remote_interest,
    routed,
    wait_for,
)
from tests.monitor.test_monitor import get, get_json, parse_exposition
from tests.clients.test_websocket import WS, RawWebSocket
from trionats import logging as tlog
from trionats.client import ClientConnection
from trionats.config.load import load
from trionats.containment import contained
from trionats.monitor import http, snapshots
from trionats.protocol import websocket as ws
from trionats.routes.cluster import RouteTotals
from trionats.routes.connection import RouteConnection
from trionats.server import Server, Stats

MONITORED = {"http_host": "127.0.0.1", "http_port": -1}


class Injected(RuntimeError):
    """The exception the tests inject (a stand-in for any bug)."""


@pytest.fixture
async def nursery(nursery):
    """conftest's nursery; the raw (and raw websocket) clients a test opened are closed after
    it, pass or fail."""
    yield nursery
    for raw in test_cluster._opened + test_websocket._clients:
        await raw.aclose()
    test_cluster._opened.clear()
    test_websocket._clients.clear()


@pytest.fixture
def log_file(tmp_path):
    """Log to a file (text unless configured again); back to the defaults afterwards."""
    path = tmp_path / "server.log"

    def configure(log_format: str = "text"):
        tlog.configure(log_file=str(path), log_format=log_format)
        return path

    configure()
    yield configure
    tlog.configure()


def inject(monkeypatch, cls, name: str, when, *, times: int = 1) -> list:
    """Make `cls.name` raise Injected when `when(*args)` holds, at most `times` times; the
    list returned holds the instances it raised in."""
    original = getattr(cls, name)
    failed: list = []

    def faulty(self, *args):
        if len(failed) < times and when(*args):
            failed.append(self)
            raise Injected(f"injected into {name}")
        return original(self, *args)

    monkeypatch.setattr(cls, name, faulty)
    return failed


def error_lines(path) -> list[str]:
    return [line for line in path.read_text().splitlines() if "[ERR]" in line]


def assert_reported_once(path, prefix: str, what: str = "Internal error, closing connection"):
    """One ERR line `<prefix> - <what>: Injected: ...`, followed by the traceback."""
    text = path.read_text()
    [line] = error_lines(path)
    prefix = f"{prefix} - " if prefix else ""
    assert re.search(rf"\[ERR\] {re.escape(prefix + what)}: Injected: injected", line), line
    assert text.count("Traceback (most recent call last):") == 1, text
    after = text.split(line, 1)[1].splitlines()
    assert after[1] == "Traceback (most recent call last):", after[:3]
    assert any("in faulty" in row for row in after), after  # the frames of the failing task


async def assert_serving(server) -> None:
    """New clients are accepted and messages flow (a PING/PONG barrier before the PUB)."""
    sub, pub = await client(server), await client(server)
    await sub.send(b"SUB after 1\r\n")
    await sub.ping_pong()
    await pub.send(b"PUB after 2\r\nok\r\n")
    await pub.ping_pong()
    await sub.expect(b"MSG after 1 2\r\nok\r\n")


async def internal_errors(server) -> int:
    varz = await get_json(server.monitor.port, "/varz")
    return varz["internal_errors"]


# --- the rule itself -------------------------------------------------------------------------


def test_contained_reports_an_exception_in_a_group_as_itself(log_file):
    path, stats = log_file(), Stats()
    closed = []
    with contained(tlog.get_logger(), stats, "Oops", on_error=lambda: closed.append(True)):
        raise ExceptionGroup("nursery", [ExceptionGroup("inner", [Injected("injected once")])])
    assert stats.internal_errors == 1 and closed == [True]
    [line] = error_lines(path)
    assert line.endswith("[ERR] Oops: Injected: injected once")
    assert "ExceptionGroup" not in path.read_text()


@pytest.mark.parametrize("error", [KeyboardInterrupt(), trio.Cancelled._create()])
def test_contained_lets_cancellation_and_interrupts_through(log_file, error):
    stats = Stats()
    with pytest.raises(type(error)):
        with contained(tlog.get_logger(), stats):
            raise error
    with pytest.raises(BaseExceptionGroup) as caught:  # a group's Exceptions only are taken
        with contained(tlog.get_logger(), stats):
            raise BaseExceptionGroup("nursery", [Injected("x"), error])
    assert caught.value.exceptions == (error,)
    assert stats.internal_errors == 1


# --- clients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_client_whose_sub_raises_is_closed_alone(
    nursery, monkeypatch, log_file, log_format
):
    path = log_file(log_format)
    server = await start_trionats(nursery, **MONITORED)
    failed = inject(monkeypatch, ClientConnection, "_on_sub", lambda sub: sub.subject == b"boom")
    other = await client(server)
    await other.send(b"SUB keep 1\r\n")
    await other.ping_pong()
    victim = await client(server)
    await victim.send(b"SUB fine 1\r\nSUB boom 2\r\nPING\r\n")
    assert await victim.expect_closed() == b""  # no PONG: the read that raised was its last
    [conn] = failed
    assert conn.closed_reason == "Internal Error"
    # Nothing is left behind: its subscription, its registry entry.
    assert not server.sublist.match(b"fine").psubs and conn.cid not in server.clients
    assert server.sublist.match(b"keep").psubs  # the other client's is untouched
    await assert_serving(server)
    await other.send(b"PUB keep 1\r\nx\r\n")
    await other.expect(b"MSG keep 1 1\r\nx\r\n")

    assert await internal_errors(server) == 1
    closed = await get_json(server.monitor.port, "/connz?state=closed")
    [record] = [c for c in closed["connections"] if c["cid"] == conn.cid]
    assert record["reason"] == "Internal Error"
    status, _, body = await get(server.monitor.port, "/metrics")
    family = parse_exposition(body.decode())["nats_server_internal_errors_total"]
    assert status == 200 and family["type"] == "counter" and family["samples"][0][1] == 1
    if log_format == "text":
        assert_reported_once(path, f"127.0.0.1:{conn.peer_port} - cid:{conn.cid}")
        return
    records = [json.loads(line) for line in path.read_text().splitlines()]
    [error] = [r for r in records if r["log.level"] == "error"]
    assert error["message"] == "Internal error, closing connection: Injected: injected into _on_sub"
    assert error["nats"]["cid"] == conn.cid and error["client"]["port"] == conn.peer_port
    assert error["error"]["type"] == "Injected"
    assert error["error"]["message"] == "injected into _on_sub"
    trace = error["error"]["stack_trace"]
    assert trace.startswith("Traceback (most recent call last):") and "in faulty" in trace
    assert trace.endswith("Injected: injected into _on_sub")


@pytest.mark.parametrize("hook", ["on_start", "on_ping_timer", "process"])
async def test_every_task_and_hook_of_a_client_is_contained(nursery, monkeypatch, log_file, hook):
    path = log_file()
    server = await start_trionats(nursery, **MONITORED)
    failed = inject(monkeypatch, ClientConnection, hook, lambda *args: True)
    victim = await RawClient.connect(server.port, read_info=hook != "on_start")
    test_cluster._opened.append(victim)
    if hook == "process":
        await victim.send(b"CONNECT {}\r\n")
    elif hook == "on_ping_timer":  # the pinger task: its timer is due now
        [conn] = server.clients.values()
        conn.reschedule_ping(trio.current_time())
    await victim.expect_closed()
    [conn] = failed
    assert conn.closed_reason == "Internal Error" and conn.cid not in server.clients
    assert_reported_once(path, f"127.0.0.1:{conn.peer_port} - cid:{conn.cid}")
    await assert_serving(server)
    assert server.stats.internal_errors == 1


async def test_a_failing_close_hook_leaves_nothing_behind(nursery, monkeypatch, log_file):
    path = log_file()
    server = await start_trionats(nursery)
    failed = inject(monkeypatch, Server, "record_closed", lambda conn, reason: True)
    victim = await client(server)
    await victim.send(b"SUB a 1\r\nSUB b 2\r\nPING\r\n")
    await victim.expect(b"PONG\r\n")
    [conn] = server.clients.values()
    await victim.aclose()  # the close runs on_close, whose first step raises
    await wait_for(lambda: failed and conn.cid not in server.clients)
    assert server.sublist.count == 0 and conn.closed_reason == "Client Closed"
    assert_reported_once(path, f"127.0.0.1:{conn.peer_port} - cid:{conn.cid}")
    assert server.stats.internal_errors == 1
    await assert_serving(server)


async def test_a_failure_admitting_a_socket_does_not_end_the_accept_loop(
    nursery, monkeypatch, log_file
):
    path = log_file()
    server = await start_trionats(nursery)
    inject(monkeypatch, Server, "admit", lambda *args: True)
    refused = await RawClient.connect(server.port, read_info=False)
    test_cluster._opened.append(refused)
    assert await refused.expect_closed() == b""  # closed at once, no INFO
    assert_reported_once(path, "", "Internal error accepting client connection, closing it")
    assert server.stats.internal_errors == 1
    await assert_serving(server)


async def test_a_client_task_outside_its_nursery_closes_that_client(
    nursery, monkeypatch, log_file, tmp_path
):
    """A reload's password check runs in the client's own nursery (Connection.start_task):
    its failure closes that client, not the server."""
    path = log_file()
    first, second = (bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode() for _ in range(2))
    conf = tmp_path / "auth.conf"
    conf.write_text(f'authorization {{ users: [{{ user: a, password: "{first}" }}] }}\n')
    flags = {"host": "127.0.0.1", "port": -1}  # kept over the file by every reload
    options = attrs.evolve(load(conf), **flags)
    server = await nursery.start(Server(options, flag_overrides=flags).serve)
    victim = await client(server, user="a", **{"pass": "secret"})
    failed = inject(monkeypatch, ClientConnection, "_recheck_password", lambda *args: True)
    conf.write_text(f'authorization {{ users: [{{ user: a, password: "{second}" }}] }}\n')
    assert server.reload()  # a new hash of the same password: checked again, in a task
    assert await victim.expect_closed() == b""
    [conn] = failed
    assert conn.closed_reason == "Internal Error" and not server.clients
    assert_reported_once(path, f'127.0.0.1:{conn.peer_port} - cid:{conn.cid} - "$G/user:a"')
    assert server.stats.internal_errors == 1
    after = await client(server, user="a", **{"pass": "secret"})
    await after.send(b"SUB x 1\r\nPUB x 1\r\ny\r\n")
    await after.expect(b"MSG x 1 1\r\ny\r\n")


# --- websocket clients -----------------------------------------------------------------------


async def test_a_websocket_client_whose_sub_raises_is_closed_alone(nursery, monkeypatch, log_file):
    path = log_file()
    server = await start_trionats(nursery, websocket=WS, **MONITORED)
    failed = inject(monkeypatch, ClientConnection, "_on_sub", lambda sub: sub.subject == b"boom")
    victim = await RawWebSocket.connect(server.websocket.port)
    await victim.send(b'CONNECT {"verbose":false}\r\nSUB boom 1\r\nPING\r\n')
    assert await victim.read_until_closed() == b""
    assert victim.closed_with == struct.pack("!H", ws.INTERNAL_ERROR) + b"Internal Error"
    [conn] = failed
    assert conn.id_label == "wid" and conn.cid not in server.clients
    assert_reported_once(path, f"127.0.0.1:{conn.peer_port} - wid:{conn.cid}")
    assert await internal_errors(server) == 1
    after = await RawWebSocket.connect(server.websocket.port)
    await after.send(b'CONNECT {"verbose":false}\r\nSUB fine 1\r\nPING\r\n')
    await after.expect(b"PONG\r\n")
    await assert_serving(server)


async def test_a_failing_websocket_upgrade_closes_that_socket_only(nursery, monkeypatch, log_file):
    path = log_file()
    server = await start_trionats(nursery, websocket=WS)
    original = ws.check_upgrade
    raised = []

    def faulty(*args, **kwargs):
        if not raised:
            raised.append(True)
            raise Injected("injected into check_upgrade")
        return original(*args, **kwargs)

    monkeypatch.setattr(ws, "check_upgrade", faulty)
    stream = await trio.open_tcp_stream("127.0.0.1", server.websocket.port)
    port = stream.socket.getsockname()[1]
    refused = RawWebSocket(stream)
    assert await refused.send_upgrade(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == b"\r\n\r\n"  # EOF
    assert_reported_once(path, f"127.0.0.1:{port} - websocket")
    assert server.stats.internal_errors == 1 and not server.clients
    after = await RawWebSocket.connect(server.websocket.port)
    await after.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    await after.expect(b"PONG\r\n")


# --- routes ----------------------------------------------------------------------------------


@pytest.fixture
async def pair(nursery):
    """A accepts, B dials A; both monitored."""
    a = await start_trionats(nursery, cluster=cluster_options(), server_name="A", **MONITORED)
    b = await start_trionats(
        nursery, cluster=cluster_options(a.cluster.port), server_name="B", **MONITORED
    )
    await wait_for(lambda: routed(a, b) and carrier(a, b) and carrier(b, a))  # (pools up)
    yield a, b
    a.shutdown()
    b.shutdown()


async def assert_route_carries(a, b, subject: bytes) -> None:
    """A subscriber on A gets what a client of B publishes to `subject`."""
    sub, pub = await client(a), await client(b)
    await sub.send(b"SUB " + subject + b" 1\r\n")
    await sub.ping_pong()
    await wait_for(lambda: has_remote_interest(b, subject))
    await pub.send(b"PUB " + subject + b" 2\r\nhi\r\n")
    await pub.ping_pong()
    await sub.expect(b"MSG " + subject + b" 1 2\r\nhi\r\n")


async def test_a_route_whose_rs_plus_raises_is_redialed(pair, monkeypatch, log_file):
    path = log_file()
    a, b = pair
    old = carrier(b, a)
    failed = inject(monkeypatch, RouteConnection, "_on_rsub", lambda event: event[1] == b"boom")
    sub = await client(a)
    await sub.send(b"SUB boom 1\r\n")  # A tells B (RS+ $G boom): B's route raises once
    await sub.ping_pong()
    await wait_for(lambda: failed and old.closed_reason is not None)
    assert failed == [old] and old.closed_reason == "Internal Error"
    assert_reported_once(path, f"127.0.0.1:{old.peer_port} - rid:{old.cid}")
    assert await internal_errors(b) == 1 and await internal_errors(a) == 0
    await wait_for(lambda: routed(a, b) and carrier(b, a) not in (None, old))
    # The new route carries the interest again (the dump), and messages flow both ways.
    await wait_for(lambda: has_remote_interest(b, b"boom"))
    pub = await client(b)
    await pub.send(b"PUB boom 2\r\nhi\r\n")
    await pub.ping_pong()
    await sub.expect(b"MSG boom 1 2\r\nhi\r\n")
    await assert_route_carries(b, a, b"back")
    await assert_serving(b)


async def test_an_accepted_route_whose_rmsg_raises_is_redialed(pair, monkeypatch, log_file):
    path = log_file()
    a, b = pair
    old = carrier(a, b)
    failed = inject(monkeypatch, RouteConnection, "_on_rmsg", lambda event: event[1] == b"boom")
    sub, pub = await client(a), await client(b)
    await sub.send(b"SUB boom 1\r\n")
    await sub.ping_pong()
    await wait_for(lambda: has_remote_interest(b, b"boom"))
    await pub.send(b"PUB boom 2\r\nhi\r\n")  # A's route raises on the RMSG
    await pub.ping_pong()
    await wait_for(lambda: old.closed_reason is not None)
    assert failed == [old] and old.closed_reason == "Internal Error"
    assert_reported_once(path, f"127.0.0.1:{old.peer_port} - rid:{old.cid}")
    assert await internal_errors(a) == 1
    # The route's remote interest went with it, and came back with the new route.
    await wait_for(lambda: routed(a, b) and carrier(a, b) not in (None, old))
    assert not old.remote_subs
    await assert_route_carries(a, b, b"boom")
    await assert_serving(a)


async def test_a_failing_route_close_hook_leaves_nothing_behind(pair, monkeypatch, log_file):
    path = log_file()
    a, b = pair
    sub = await client(b)
    await sub.send(b"SUB remote 1\r\n")
    await sub.ping_pong()
    await wait_for(lambda: has_remote_interest(a, b"remote"))
    route = carrier(a, b)
    failed = inject(monkeypatch, RouteTotals, "retire", lambda closing: closing is route)
    b.shutdown()  # A's route reads EOF and closes; its unregister step raises
    await wait_for(lambda: failed and not a.cluster.routes and not a.cluster.pools)
    assert not has_remote_interest(a, b"remote") and a.sublist.count == 0
    assert route.closed_reason is not None
    assert_reported_once(path, f"127.0.0.1:{route.peer_port} - rid:{route.cid}")
    assert await internal_errors(a) == 1
    await assert_serving(a)


# --- monitoring ------------------------------------------------------------------------------


async def http_exchange(port: int, requests: bytes) -> bytes:
    """Send `requests` on one connection; everything the server sends until it closes."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    raw = RawClient(stream)
    await raw.send(requests)
    data = await raw.expect_closed()
    await raw.aclose()
    return data


async def test_a_failing_endpoint_answers_500_and_closes_that_connection(
    nursery, monkeypatch, log_file
):
    path = log_file()
    server = await start_trionats(nursery, **MONITORED)
    original = snapshots.subsz

    def faulty(*args):
        raise Injected("injected into subsz")

    monkeypatch.setattr(snapshots, "subsz", faulty)
    request = b"GET /subsz HTTP/1.1\r\nHost: x\r\n\r\nGET /varz HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = await http_exchange(server.monitor.port, request)  # keep-alive, pipelined
    assert answer.startswith(b"HTTP/1.1 500 ") and answer.endswith(b"500 Internal Server Error")
    assert b"\r\nconnection: close\r\n" in answer.lower()
    assert answer.count(b"HTTP/1.1 ") == 1  # the connection closed after the 500
    [line] = error_lines(path)
    assert re.search(r"\[ERR\] 127\.0\.0\.1:\d+ - http - Internal error serving /subsz, "
                     r"closing connection: Injected: injected into subsz$", line), line  # fmt: skip
    assert path.read_text().count("Traceback (most recent call last):") == 1
    monkeypatch.setattr(snapshots, "subsz", original)
    assert (await get_json(server.monitor.port, "/subsz"))["num_subscriptions"] == 0
    assert await internal_errors(server) == 1
    await assert_serving(server)


async def test_a_failing_monitoring_connection_ends_alone(nursery, monkeypatch, log_file):
    path = log_file()
    server = await start_trionats(nursery, **MONITORED)
    failed = inject(monkeypatch, http._Reader, "next_event", lambda: True)
    answer = await http_exchange(server.monitor.port, b"GET /varz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer == b"" and failed
    [line] = error_lines(path)
    assert re.search(r"\[ERR\] 127\.0\.0\.1:\d+ - http - Internal error, closing connection: "
                     r"Injected: injected into next_event$", line), line  # fmt: skip
    assert await internal_errors(server) == 1
