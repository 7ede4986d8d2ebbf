"""The leaf connection of a trionats leaf (in this Trio run) to a nats-server hub, killed 100
times while a publisher on the hub streams numbered messages to a subscriber on the leaf:
the leaf dials again each time, nothing arrives twice or out of order, and nothing is left
behind (one connection, the same subscriptions and tasks as before)."""

from __future__ import annotations

import itertools

import pytest
import trio

from tests.cluster.test_cluster import client, open_raw, wait_for
from tests.helpers import NatsServerProcess, free_port, start_trionats
from trionats.errors import Reason
from trionats.options import LeafnodeOptions, LeafRemote

pytestmark = [pytest.mark.interop, pytest.mark.slow]

KILLS = 100


async def test_the_leaf_connection_killed_under_load(nursery, tmp_path):
    leaf_port = free_port()
    path = tmp_path / "hub.conf"
    path.write_text(f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}\n')
    with NatsServerProcess("-c", str(path)) as hub:
        remote = LeafRemote(urls=(f"nats://127.0.0.1:{leaf_port}",))
        leaf = await start_trionats(nursery, leafnodes=LeafnodeOptions(remotes=(remote,), reconnect=0.02))
        nodes = leaf.leafnodes
        await wait_for(lambda: len(nodes.connections) == 1, 10)
        sub = await client(leaf)
        await sub.send(b"SUB chaos 1\r\nPING\r\n")
        await sub.expect(b"PONG\r\n")
        pub = await open_raw(hub.port)
        await pub.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
        await pub.expect(b"PONG\r\n")
        subscriptions = leaf.sublist.count

        received: list[int] = []
        done = trio.Event()

        async def publish() -> None:
            n = 0
            while not done.is_set():
                batch = b"".join(b"PUB chaos %d\r\n%d\r\n" % (len(b"%d" % i), i)
                                 for i in range(n, n + 50))  # fmt: skip
                await pub.send(batch + b"PING\r\n")
                while (line := await pub.read_line(timeout=30)) != b"PONG\r\n":
                    assert line == b"PING\r\n", line  # the hub's keepalive
                    await pub.send(b"PONG\r\n")
                n += 50

        async def receive() -> None:
            while True:
                line = await sub.read_line(timeout=30)
                if line == b"PING\r\n":
                    await sub.send(b"PONG\r\n")
                    continue
                assert line.startswith(b"MSG chaos 1 "), line
                received.append(int(await sub.read_line(timeout=30)))

        async with trio.open_nursery() as load:
            load.start_soon(publish)
            load.start_soon(receive)
            for _ in range(KILLS):
                await wait_for(lambda: len(nodes.connections) == 1 and _has_interest(nodes), 10)
                await wait_for(_more_than(received, len(received)), 10)  # messages flow again
                [conn] = nodes.connections.values()
                conn.close(Reason.READ_ERROR, flush=False)
            await wait_for(lambda: len(nodes.connections) == 1 and _has_interest(nodes), 10)
            done.set()
            await trio.sleep(0.5)
            load.cancel_scope.cancel()

        assert len(received) > KILLS
        assert all(a < b for a, b in itertools.pairwise(received)), "duplicated or reordered"
        assert leaf.sublist.count == subscriptions
        [conn] = nodes.connections.values()
        assert conn.registered and conn.closed_reason is None
        assert len(nodes._nursery.child_tasks) == 1  # the remote's supervisor, nothing else


def _more_than(received: list, count: int):
    return lambda: len(received) > count


def _has_interest(nodes) -> bool:
    [conn] = nodes.connections.values() if len(nodes.connections) == 1 else [None]
    return conn is not None and (b"chaos", None) in conn.interest
