"""Chaos: route connections of a three-server cluster are killed at random under traffic.

What must hold: no server goes down, no subscriber ever sees a message twice or out of order
(the one-hop rule), the full mesh heals by itself, remote interest ends exactly as before
(nothing leaked from dead routes), and once healed every message is delivered again.
"""

from __future__ import annotations

import random

import pytest
import trio

from tests.test_cluster import client, has_remote_interest, routed, start_node, wait_for
from trionats.errors import Reason

pytestmark = pytest.mark.slow

#: Seconds of chaos, and how often a route is killed meanwhile.
CHAOS_SECONDS = 4.0
KILL_EVERY = (0.05, 0.3)


def route_interest(server) -> list:
    """Every remote subscription `server` holds, as (peer, subject, queue, weight)."""
    return sorted(
        (route.remote_name, sub.subject, sub.queue, sub.weight)
        for route in server.cluster.routes.values()
        for sub in route.remote_subs.values()
    )


async def read_sequence(raw, seen: list[int], stop: trio.Event) -> None:
    """Collect the numbers published to `chaos` as one subscriber receives them."""
    while not stop.is_set():
        line = await raw.read_line(timeout=30)
        if line.startswith(b"MSG "):
            seen.append(int(await raw.read_line(timeout=30)))


async def test_killing_routes_under_traffic_loses_nothing_after_healing(nursery):
    rng = random.Random(20261122)
    a = await start_node(nursery, server_name="A")
    b = await start_node(nursery, a.cluster.port, server_name="B")
    c = await start_node(nursery, a.cluster.port, server_name="C")  # meets B by gossip
    servers = (a, b, c)
    await wait_for(lambda: routed(*servers))
    subscribers = {}
    for server in (b, c):
        raw = await client(server)
        await raw.send(b"SUB chaos 1\r\nSUB chaos.q workers 2\r\nPING\r\n")
        await raw.expect(b"PONG\r\n")
        subscribers[server.name] = raw
    await wait_for(lambda: has_remote_interest(a, b"chaos", 2) and has_remote_interest(b, b"chaos")
                   and has_remote_interest(c, b"chaos"))  # fmt: skip
    interest_before = {s.name: route_interest(s) for s in servers}
    publisher = await client(a)
    seen = {name: [] for name in subscribers}
    stop_reading = trio.Event()
    kills = 0
    sequence = 0

    async def publish_until(deadline: float) -> None:
        nonlocal sequence
        while trio.current_time() < deadline:
            batch = b"".join(b"PUB chaos %d\r\n%d\r\n" % (len(b"%d" % n), n)
                             for n in range(sequence, sequence + 20))  # fmt: skip
            sequence += 20
            await publisher.send(batch)
            await trio.sleep(0.005)

    async def kill_routes(deadline: float) -> None:
        nonlocal kills
        while trio.current_time() < deadline:
            await trio.sleep(rng.uniform(*KILL_EVERY))
            victims = [r for s in servers for r in s.cluster.routes.values()]
            if victims:
                route = rng.choice(victims)
                if rng.random() < 0.5:
                    route.close(Reason.READ_ERROR, flush=False)
                else:
                    route._scope.cancel()  # the connection's tasks die mid-flight
                kills += 1

    async with trio.open_nursery() as chaos:
        for name, raw in subscribers.items():
            chaos.start_soon(read_sequence, raw, seen[name], stop_reading)
        deadline = trio.current_time() + CHAOS_SECONDS
        async with trio.open_nursery() as traffic:
            traffic.start_soon(publish_until, deadline)
            traffic.start_soon(kill_routes, deadline)
        assert kills >= 10
        # Healing: the mesh re-forms and interest is exactly what it was.
        await wait_for(lambda: routed(*servers), timeout=10)
        with trio.move_on_after(10):
            await wait_for(lambda: {s.name: route_interest(s) for s in servers} == interest_before,
                           timeout=10)  # fmt: skip
        assert {s.name: route_interest(s) for s in servers} == interest_before
        healed_from = sequence
        await publish_until(trio.current_time() + 0.5)
        last = sequence - 1
        await wait_for(lambda: all(s and s[-1] == last for s in seen.values()), timeout=10)
        stop_reading.set()
        chaos.cancel_scope.cancel()

    for name, numbers in seen.items():
        assert numbers == sorted(set(numbers)), f"{name}: duplicate or reordered messages"
        after = [n for n in numbers if n >= healed_from]
        assert after == list(range(healed_from, sequence)), f"{name}: lost after healing"
    assert all(s.ready for s in servers)
    for server in servers:
        server.shutdown()
