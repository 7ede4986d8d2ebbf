"""When route supervisors dial, on Trio's autojump clock: nats-server's reconnect timing.

An explicit (configured) route is dialed at once when the server starts, again 1 s (+ up to
0.1 s of jitter) after it drops, and every second while the peer refuses; a route learned by
gossip is dialed again after the jitter alone, and given up after 1 + connect_retries
failed attempts (nats-server's route.go: reConnectToRoute, connectToRoute). The peers are
plain listeners playing the route protocol by hand, on real sockets; the clock runs the
waits, so the seconds cost nothing and the bounds can be tight.
"""

from __future__ import annotations

import json

import pytest
import trio

from tests.cluster.test_cluster import start_node, wait_for
from trionats import defaults

#: A re-dial after a drop: the delay, plus up to the jitter.
REDIAL = (defaults.ROUTE_CONNECT_RETRY_DELAY,
          defaults.ROUTE_CONNECT_RETRY_DELAY + defaults.ROUTE_REDIAL_JITTER)  # fmt: skip


class FakePeer:
    """A route port that records when it is dialed and answers as server `server_id`."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id
        self.port = 0  # the first listen() picks one; later ones listen on it again
        self.dialed: list[float] = []  # trio clock times of accepted connections
        self.streams: list[trio.SocketStream] = []
        self._listeners: list[trio.SocketListener] = []

    async def listen(self, nursery: trio.Nursery) -> None:
        self._listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = self._listeners[0].socket.getsockname()[1]
        nursery.start_soon(self._accept, self._listeners[0])

    async def stop_listening(self) -> None:
        for listener in self._listeners:
            await listener.aclose()

    async def aclose(self) -> None:
        await self.stop_listening()
        for stream in self.streams:
            await stream.aclose()

    async def _accept(self, listener: trio.SocketListener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except trio.ClosedResourceError:
                return
            self.dialed.append(trio.current_time())
            self.streams.append(stream)

    async def answer(self, stream: trio.SocketStream) -> None:
        """Read the dialer's CONNECT, then send our INFO (the route registers; a pooling
        dialer sends its INFO once it has ours, naming the pool slot it chose)."""
        received = b""
        with trio.fail_after(5):
            while b"CONNECT " not in received:
                received += await stream.receive_some(65536)
        fields = {"server_id": self.server_id, "server_name": self.server_id, "cluster": "C"}
        await stream.send_all(b"INFO " + json.dumps(fields).encode() + b"\r\n")

    async def drop(self, stream: trio.SocketStream) -> float:
        """Close a route connection; returns when (trio clock)."""
        await stream.aclose()
        return trio.current_time()


async def next_dial(peer: FakePeer, count: int, timeout: float = 10.0) -> float:
    """Wait (on the clock) until `peer` has been dialed `count` times; the last dial's time."""
    with trio.fail_after(timeout):
        while len(peer.dialed) < count:
            await trio.sleep(0.001)
    return peer.dialed[count - 1]


@pytest.fixture
async def peers():
    """FakePeers a test made: closed after it."""
    made: list[FakePeer] = []

    def make(server_id: str) -> FakePeer:
        made.append(FakePeer(server_id))
        return made[-1]

    yield make
    for peer in made:
        await peer.aclose()


async def test_explicit_route_dial_times(nursery, autojump_clock, peers):
    peer = peers("PEER")
    await peer.listen(nursery)
    started = trio.current_time()
    node = await start_node(nursery, peer.port, server_name="A")
    first = await next_dial(peer, 1)
    assert first - started < 0.05  # at once: no back-off before the first dial

    for count in (2, 3):  # each drop: dialed again 1 s (+ jitter) later
        stream = peer.streams[-1]
        await peer.answer(stream)
        await wait_for(lambda: "PEER" in node.cluster.routes)
        dropped = await peer.drop(stream)
        redialed = await next_dial(peer, count)
        assert REDIAL[0] <= redialed - dropped <= REDIAL[1] + 0.01

    # The peer goes away: dial attempts are refused, one a second, until it listens again.
    await peer.stop_listening()
    dropped = await peer.drop(peer.streams[-1])
    await trio.sleep(2.5)
    await peer.listen(nursery)  # same port; the third attempt after the drop gets through
    redialed = await next_dial(peer, 4)
    delay = defaults.ROUTE_CONNECT_RETRY_DELAY
    assert REDIAL[0] + 2 * delay <= redialed - dropped <= REDIAL[1] + 2 * delay + 0.01


async def test_gossiped_route_dial_times(nursery, autojump_clock, peers, capsys):
    seed, other = peers("SEED"), peers("OTHER")
    await seed.listen(nursery)
    await other.listen(nursery)
    node = await start_node(nursery, seed.port, server_name="A", connect_retries=2)
    await next_dial(seed, 1)
    await seed.answer(seed.streams[0])
    await wait_for(lambda: "SEED" in node.cluster.routes)
    gossip = {"server_id": "OTHER", "server_name": "OTHER", "cluster": "C",
              "ip": f"nats-route://127.0.0.1:{other.port}/"}  # fmt: skip
    told = trio.current_time()
    await seed.streams[0].send_all(b"INFO " + json.dumps(gossip).encode() + b"\r\n")
    assert await next_dial(other, 1) - told < 0.05  # at once

    # A dropped implicit route is dialed again after the jitter alone.
    await other.answer(other.streams[0])
    await wait_for(lambda: "OTHER" in node.cluster.routes)
    dropped = await other.drop(other.streams[0])
    assert await next_dial(other, 2) - dropped <= defaults.ROUTE_REDIAL_JITTER + 0.01

    # Gone: 1 + connect_retries attempts (the jitter, then a second apart), then no more.
    await other.answer(other.streams[1])
    await wait_for(lambda: "OTHER" in node.cluster.routes)
    await other.stop_listening()
    await other.drop(other.streams[1])
    await trio.sleep(2.5)  # the attempts at about 0.05, 1.05 and 2.05 s fail
    await other.listen(nursery)
    await trio.sleep(10)
    assert len(other.dialed) == 2
    assert "OTHER" not in node.cluster.routes and "SEED" in node.cluster.routes
    refused = capsys.readouterr().err.count(f"dial tcp 127.0.0.1:{other.port}")
    assert refused == 3
