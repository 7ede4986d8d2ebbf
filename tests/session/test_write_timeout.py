"""write_deadline with the write_timeout policy: `close` cuts a slow consumer, `retry` keeps it.

A subscriber with a tiny receive buffer reads slowly while a publisher sends it a few hundred
kilobytes, so each batch the server writes cannot finish within a 0.2 s write deadline but
always makes some progress (nats-server closes even under `retry` when a whole deadline
passes without a byte written). With `close` the subscriber is closed as
`Slow Consumer (Write Deadline)`; with `retry` it stays, is counted and logged as a slow
consumer, and receives every message once it reads at full speed.
"""

from __future__ import annotations

import socket
import subprocess

import pytest
import trio

from tests.helpers import NatsServerProcess, RawClient, free_port, nats_server_binary
from tests.monitor.test_monitor import get_json
from trionats.config.load import options_from_conf
from trionats.config.natsconf import parse
from trionats.config.reload import diff
from trionats.connection import _go_duration
from trionats.errors import ConfigError, Reason
from trionats.options import Authorization, ClusterOptions, Options

DEADLINE = 0.2
#: Under `retry`, a whole deadline without progress still closes: the slow reader must read
#: within it even on a loaded machine, so the retry tests give it longer.
RETRY_DEADLINE = 0.5
PAYLOAD = b"x" * 1000
COUNT = 400  # 400 kB: far more than a tiny receive buffer and the socket's unsent limit
CONNECT = b'CONNECT {"verbose":false}\r\n'


async def slow_subscriber(port: int) -> RawClient:
    """A subscriber to `flood` whose socket receive buffer is as small as the OS allows."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    await sock.connect(("127.0.0.1", port))
    client = RawClient(trio.SocketStream(sock))
    client.info = await client.read_line()
    await client.send(CONNECT + b"SUB flood 1\r\nPING\r\n")
    await client.expect(b"PONG\r\n")
    return client


async def flood(port: int) -> RawClient:
    publisher = await RawClient.connect(port)
    message = b"PUB flood %d\r\n%s\r\n" % (len(PAYLOAD), PAYLOAD)
    await publisher.send(CONNECT + message * COUNT + b"PING\r\n")
    await publisher.expect(b"PONG\r\n", timeout=10)
    return publisher


async def trickle(client: RawClient, until) -> bytes:
    """Read a little every 20 ms (a slow consumer) until `until()` or the connection ends."""
    received = b""
    with trio.fail_after(10):
        while not until():
            data = await client.stream.receive_some(1024)
            if not data:
                break
            received += data
            await trio.sleep(0.02)  # pacing the reads, not waiting for an outcome
    return received


async def read_messages(client: RawClient, received: bytes, count: int) -> bytes:
    """Read at full speed until `count` whole MSGs (and what came before) are in."""
    size = len(b"MSG flood 1 1000\r\n") + len(PAYLOAD) + 2
    with trio.fail_after(10):
        while len(received) < count * size:
            data = await client.stream.receive_some(65536)
            assert data, f"closed after {len(received)} bytes"
            received += data
    return received


async def monitored(server_factory, deadline: float = DEADLINE, **overrides):
    return await server_factory(
        http_host="127.0.0.1", http_port=-1, write_deadline=deadline, **overrides
    )


async def test_close_policy_closes_the_slow_consumer(server_factory, capsys):
    server = await monitored(server_factory, write_timeout="close")
    subscriber = await slow_subscriber(server.port)
    publisher = await flood(server.port)
    await trickle(subscriber, lambda: False)  # until the server closes it
    with trio.fail_after(5):
        while len(server.clients) > 1:
            await trio.sleep(0.01)
    port = server.monitor.port
    closed = (await get_json(port, "/connz?state=closed"))["connections"]
    assert [c["reason"] for c in closed] == ["Slow Consumer (Write Deadline)"]
    varz = await get_json(port, "/varz")
    assert varz["slow_consumers"] == 1
    assert varz["slow_consumer_stats"] == {"clients": 1, "routes": 0, "gateways": 0, "leafs": 0}
    assert varz["write_timeout"] == "close" and varz["write_deadline"] == 200_000_000
    err = capsys.readouterr().err
    assert "Slow Consumer Detected: WriteDeadline of 200ms exceeded with " in err
    assert " total bytes." in err
    await publisher.ping_pong()  # the publisher is unaffected
    await publisher.stream.aclose()
    await subscriber.stream.aclose()


async def test_default_policy_closes_clients(server_factory):
    server = await monitored(server_factory)
    subscriber = await slow_subscriber(server.port)
    publisher = await flood(server.port)
    await trickle(subscriber, lambda: False)
    closed = (await get_json(server.monitor.port, "/connz?state=closed"))["connections"]
    assert [c["reason"] for c in closed] == [Reason.SLOW_CONSUMER_WRITE]
    assert "write_timeout" not in await get_json(server.monitor.port, "/varz")
    await publisher.stream.aclose()
    await subscriber.stream.aclose()


async def test_retry_policy_keeps_the_slow_consumer(server_factory, capsys):
    server = await monitored(server_factory, RETRY_DEADLINE, write_timeout="retry")
    subscriber = await slow_subscriber(server.port)
    publisher = await flood(server.port)
    received = await trickle(subscriber, lambda: server.stats.slow_consumers > 0)
    received = await read_messages(subscriber, received, COUNT)
    assert received.count(b"MSG flood 1 1000\r\n") == COUNT
    await subscriber.send(b"PING\r\n")
    await subscriber.expect(b"PONG\r\n")  # still connected, nothing lost
    assert len(server.clients) == 2
    varz = await get_json(server.monitor.port, "/varz")
    assert varz["slow_consumers"] >= 1 and varz["write_timeout"] == "retry"
    assert varz["slow_consumer_stats"]["clients"] == varz["slow_consumers"]
    # Once a write completes within the deadline again, the mark is cleared.
    assert not any(client.slow_consumer for client in server.clients.values())
    err = capsys.readouterr().err
    assert "Slow Consumer Detected: WriteDeadline of 500ms exceeded" in err
    assert "Slow Consumer Recovered: Flush took " in err
    await publisher.stream.aclose()
    await subscriber.stream.aclose()


async def test_retry_still_closes_when_nothing_is_written(server_factory):
    """nats-server: a whole deadline without a byte written closes, whatever the policy."""
    server = await monitored(server_factory, write_timeout="retry")
    subscriber = await slow_subscriber(server.port)  # never reads again
    publisher = await flood(server.port)
    with trio.fail_after(5):
        while len(server.clients) > 1:
            await trio.sleep(0.01)
    closed = (await get_json(server.monitor.port, "/connz?state=closed"))["connections"]
    assert [c["reason"] for c in closed] == [Reason.SLOW_CONSUMER_WRITE]
    await publisher.stream.aclose()
    await subscriber.stream.aclose()


# --- the policy, decided on a live connection -------------------------------------------


async def only_client(server):
    with trio.fail_after(5):
        while not server.clients:
            await trio.sleep(0.01)
    return next(iter(server.clients.values()))


@pytest.mark.parametrize(
    ("policy", "written", "resumable", "kept"),
    [
        ("close", 100, True, False),
        ("retry", 100, True, True),
        ("retry", 0, True, False),  # no progress in a whole deadline: closed anyway
        ("retry", 100, False, False),  # TLS, websocket: what is left is unknown
    ],
)
async def test_policy_decision(server_factory, policy, written, resumable, kept):
    server = await server_factory(write_timeout=policy)
    raw = await RawClient.connect(server.port)
    await raw.send(CONNECT + b"PING\r\n")
    await raw.expect(b"PONG\r\n")
    client = await only_client(server)
    closing = client.on_write_timeout(written, 1000, 3, resumable=resumable)
    assert closing is not kept and client.slow_consumer is kept
    assert server.stats.slow_consumers == 1
    if kept:  # a second event is counted too ("Slow Consumer State")
        assert client.on_write_timeout(written, 1000, 3, resumable=resumable) is False
        assert server.stats.slow_consumers == 2
    else:
        assert client.closed_reason == Reason.SLOW_CONSUMER_WRITE
    await raw.stream.aclose()


async def test_before_connect_with_auth_required_closes_uncounted(server_factory):
    server = await server_factory(write_timeout="retry", authorization=Authorization(token="s"))
    raw = await RawClient.connect(server.port)
    client = await only_client(server)
    assert client.on_write_timeout(100, 1000, 3, resumable=True) is True
    assert client.closed_reason == Reason.SLOW_CONSUMER_WRITE
    assert server.stats.slow_consumers == 0
    await raw.stream.aclose()


# --- the options ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["", "cluster { port: -1\n  %s\n}"])
@pytest.mark.parametrize("value", ["default", "close", "retry"])
def test_policies_are_accepted(where, value):
    line = f"write_timeout: {value}"
    options = options_from_conf(parse(where % line if where else line))
    policy = options.cluster.write_timeout if where else options.write_timeout
    assert policy == value


@pytest.mark.parametrize("value", ["bad", "CLOSE", '"Retry"'])
def test_bad_policies_get_nats_servers_text(value):
    with pytest.raises(ConfigError, match="write_timeout: must be 'default', 'close' or 'retry'"):
        options_from_conf(parse(f"write_timeout: {value}"))
    with pytest.raises(ConfigError, match="write_timeout: must be 'default', 'close' or 'retry'"):
        options_from_conf(parse(f"cluster {{ port: -1, write_timeout: {value} }}"))


@pytest.mark.parametrize("text", ["write_timeout: bad", "cluster { write_timeout: bad }"])
def test_bad_policy_refused_by_nats_server_too(tmp_path, text):
    path = tmp_path / "bad.conf"
    path.write_text(text + "\n")
    result = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "write_timeout must be 'default', 'close' or 'retry'" in result.stdout + result.stderr


def test_write_timeout_is_not_reloadable():
    with pytest.raises(ConfigError) as info:
        diff(Options(), Options(write_timeout="retry"))
    assert str(info.value) == "config reload not supported for WriteTimeout: old=, new=retry"


def test_cluster_write_timeout_reloads_for_new_routes():
    old = Options(cluster=ClusterOptions(port=-1))
    new = Options(cluster=ClusterOptions(port=-1, write_timeout="close"))
    assert diff(old, new) == {"cluster": new.cluster}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "200ms"), (0.0005, "500µs"), (1.5, "1.5s"), (10.0, "10s"), (90.0, "1m30s")],
)
def test_deadline_as_go_prints_it(seconds, text):
    assert _go_duration(seconds) == text


# --- routes: retry by default -----------------------------------------------------------


async def slow_route_peer(server) -> RawClient:
    """A raw route peer (tiny receive buffer) with interest in `flood`."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    await sock.connect(("127.0.0.1", server.cluster.port))
    peer = RawClient(trio.SocketStream(sock))
    peer.info = await peer.read_line()
    await peer.send(
        b'CONNECT {"name":"PEER","cluster":"C"}\r\n'
        b'INFO {"server_id":"PEER","server_name":"peer","cluster":"C","port":1}\r\n'
        b"RS+ $G flood\r\nPING\r\n"
    )
    with trio.fail_after(5):
        while b"PONG\r\n" not in peer.buffer:
            await peer._fill()
    with trio.fail_after(5):
        while not any(route.remote_id == "PEER" for route in server.cluster.routes.values()):
            await trio.sleep(0.01)
    return peer


async def clustered(server_factory, deadline: float = DEADLINE, **cluster_fields):
    cluster = ClusterOptions(
        name="C", host="127.0.0.1", port=-1, write_deadline=deadline, **cluster_fields
    )
    return await server_factory(http_host="127.0.0.1", http_port=-1, cluster=cluster)


async def test_routes_retry_by_default(server_factory, capsys):
    server = await clustered(server_factory, RETRY_DEADLINE)
    peer = await slow_route_peer(server)
    publisher = await flood(server.port)
    received = peer.buffer + await trickle(peer, lambda: server.stats.slow_consumers > 0)
    size = len(b"RMSG $G flood 1000\r\n") + len(PAYLOAD) + 2
    head = b"RMSG $G flood 1000\r\n"
    with trio.fail_after(10):
        while received.count(head) < COUNT or received.rfind(head) + size > len(received):
            data = await peer.stream.receive_some(65536)
            assert data, f"route closed after {len(received)} bytes"
            received += data
    assert received.count(head + PAYLOAD + b"\r\n") == COUNT
    assert "PEER" in server.cluster.routes  # kept
    varz = await get_json(server.monitor.port, "/varz")
    assert varz["slow_consumers"] >= 1
    assert varz["slow_consumer_stats"]["clients"] == 0
    assert varz["slow_consumer_stats"]["routes"] >= 1
    assert "Slow Consumer Detected: WriteDeadline of 500ms exceeded" in capsys.readouterr().err
    await publisher.stream.aclose()
    await peer.stream.aclose()


async def test_routes_close_with_cluster_write_timeout_close(server_factory):
    server = await clustered(server_factory, write_timeout="close")
    peer = await slow_route_peer(server)
    publisher = await flood(server.port)
    await trickle(peer, lambda: False)  # until the server closes the route
    assert "PEER" not in server.cluster.routes
    assert server.cluster.closed_totals.slow_consumers == 1
    varz = await get_json(server.monitor.port, "/varz")
    assert varz["slow_consumer_stats"] == {"clients": 0, "routes": 1, "gateways": 0, "leafs": 0}
    assert varz["cluster"]["write_timeout"] == "close"
    await publisher.stream.aclose()
    await peer.stream.aclose()


async def test_route_queue_may_pass_max_pending(server_factory, capsys):
    """As nats-server, max_pending limits clients only: a route whose peer stops reading
    keeps its connection while its queue grows past max_pending (a peer stopped for a few
    seconds is not cut and dialed again), and every message arrives once the peer reads."""
    max_pending = 32 * 1024
    cluster = ClusterOptions(name="C", host="127.0.0.1", port=-1, write_deadline=10.0)
    server = await server_factory(cluster=cluster, max_pending=max_pending, max_payload=1024)
    peer = await slow_route_peer(server)
    route = server.cluster.routes["PEER"]
    publisher = await flood(server.port)  # 400 kB for a peer that reads nothing
    assert route.outbound.pending > max_pending
    assert server.cluster.routes.get("PEER") is route and route.closed_reason is None
    head = b"RMSG $G flood 1000\r\n"
    received = peer.buffer
    with trio.fail_after(10):
        while received.count(head + PAYLOAD + b"\r\n") < COUNT:
            data = await peer.stream.receive_some(65536)
            assert data, f"route closed after {len(received)} bytes"
            received += data
    assert server.stats.slow_consumers == 0
    assert "Slow Consumer" not in capsys.readouterr().err
    await publisher.stream.aclose()
    await peer.stream.aclose()


# --- against nats-server ----------------------------------------------------------------

BIG = 6000  # 6 MB: more than nats-server's socket buffers hold, so its deadline is met too


async def policy_outcome(port: int, http_port: int) -> tuple[bool, list[str], int, int]:
    """A slow subscriber under a flood of BIG messages: reads slowly until the server reports
    a slow consumer, then at full speed. Returns (closed, closed reasons, MSGs received,
    slow_consumers)."""
    subscriber = await slow_subscriber(port)
    publisher = await RawClient.connect(port)
    message = b"PUB flood %d\r\n%s\r\n" % (len(PAYLOAD), PAYLOAD)
    detected = trio.Event()

    async def watch() -> None:
        while (await get_json(http_port, "/varz"))["slow_consumers"] == 0:
            await trio.sleep(0.02)
        detected.set()

    received = b""
    closed = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        nursery.start_soon(publisher.send, CONNECT + message * BIG)
        with trio.fail_after(20):
            while not detected.is_set():  # a slow consumer: a little every 20 ms
                data = await subscriber.stream.receive_some(1024)
                if not data:
                    closed = True
                    break
                received += data
                await trio.sleep(0.02)
            # Reading at full speed now, with a window that lets it (a tiny one caps loopback
            # at about 1 MB/s).
            subscriber.stream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            while not closed and received.count(b"MSG flood 1 1000\r\n") < BIG:
                data = await subscriber.stream.receive_some(1 << 20)
                closed = not data
                received += data
        nursery.cancel_scope.cancel()
    if not closed:  # still there: it answers
        await subscriber.send(b"PING\r\n")
        with trio.fail_after(5):
            while not received.endswith(b"PONG\r\n"):
                data = await subscriber.stream.receive_some(1 << 20)
                assert data, "closed after all"
                received += data
    with trio.fail_after(5):
        while True:
            reasons = [
                c["reason"]
                for c in (await get_json(http_port, "/connz?state=closed"))["connections"]
            ]
            if reasons or not closed:
                break
            await trio.sleep(0.02)
    slow = (await get_json(http_port, "/varz"))["slow_consumers"]
    await publisher.stream.aclose()
    await subscriber.stream.aclose()
    return closed, reasons, received.count(b"MSG flood 1 1000\r\n"), slow


@pytest.mark.parametrize("policy", ["close", "retry"])
async def test_policy_matches_nats_server(tmp_path, server_factory, policy):
    http_port = free_port()
    deadline = RETRY_DEADLINE if policy == "retry" else DEADLINE
    config = tmp_path / "nats-server.conf"
    config.write_text(
        f'write_deadline: "{round(deadline * 1000)}ms"\nwrite_timeout: {policy}\n'
        f'http: "127.0.0.1:{http_port}"\n'
    )
    with NatsServerProcess("-c", str(config)) as reference:
        expected = await policy_outcome(reference.port, http_port)
    server = await monitored(server_factory, deadline, write_timeout=policy)
    got = await policy_outcome(server.port, server.monitor.port)
    closed, reasons, messages, slow = expected
    assert slow >= 1 and got[3] >= 1
    assert got[:2] == (closed, reasons)
    if policy == "close":
        assert closed and reasons == ["Slow Consumer (Write Deadline)"]
    else:
        assert not closed and reasons == [] and messages == got[2] == BIG


@pytest.mark.parametrize(
    "options",
    [Options(write_timeout="later"), Options(cluster=ClusterOptions(port=-1, write_timeout="x"))],
)
def test_embedded_options_are_checked(options):
    with pytest.raises(ConfigError, match="write_timeout must be 'default', 'close' or 'retry'"):
        options.check()
