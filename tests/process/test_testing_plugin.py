"""trionats.testing, the pytest plugin: servers and clusters for applications' tests, chaos controls.

The fixtures are used here as an application's test suite would: a nats-py client (asyncio)
against `nats_server` / `nats_cluster`, under pytest-asyncio in a separate pytest run
(pytester), and directly in this (Trio) suite.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
import trio

from tests.helpers import RawClient

pytest_plugins = ["pytester"]


def varz(server) -> dict:
    with urllib.request.urlopen(f"{server.monitor_url}/varz", timeout=5) as reply:
        return json.load(reply)


async def subscriber(url: str, subject: bytes) -> RawClient:
    client = await RawClient.connect(int(url.rsplit(":", 1)[1]))
    await client.send(b'CONNECT {"verbose":false}\r\nSUB ' + subject + b" 1\r\n")
    await client.ping_pong()
    return client


async def publish(url: str, subject: bytes, payloads: list[bytes]) -> None:
    client = await RawClient.connect(int(url.rsplit(":", 1)[1]))
    lines = b"".join(b"PUB %s %d\r\n%s\r\n" % (subject, len(p), p) for p in payloads)
    await client.send(b'CONNECT {"verbose":false}\r\n' + lines)
    await client.ping_pong()
    await client.aclose()


async def received(client: RawClient, count: int) -> list[bytes]:
    """The payloads of the next `count` MSGs."""
    payloads = []
    for _ in range(count):
        head = await client.read_line()
        assert head.startswith(b"MSG "), head
        size = int(head.split()[-1])
        payloads.append((await client.read_exactly(size + 2))[:-2])
    return payloads


@pytest.mark.trionats(max_payload=1024, server_name="marked")
async def test_nats_server_takes_configuration_from_the_marker(nats_server):
    client = await RawClient.connect(nats_server.port)
    info = json.loads(client.info[5:])
    assert info["max_payload"] == 1024 and info["server_name"] == "marked"
    assert varz(nats_server)["max_payload"] == 1024
    await client.aclose()


async def test_restart_keeps_the_ports_and_reload_applies_changes(nats_server):
    port, monitor = nats_server.port, nats_server.monitor_url
    nats_server.restart()
    assert (nats_server.port, nats_server.monitor_url) == (port, monitor)
    client = await subscriber(nats_server.url, b"a")
    await publish(nats_server.url, b"a", [b"x"])
    assert await received(client, 1) == [b"x"]
    nats_server.reload(max_payload=2048)
    assert varz(nats_server)["max_payload"] == 2048
    await client.aclose()


async def test_kill_closes_clients_without_a_goodbye(make_nats_server):
    server = make_nats_server()
    client = await subscriber(server.url, b"a")
    server.kill()
    assert not server.running
    assert await client.expect_closed() == b""
    await client.aclose()


async def test_a_partitioned_cluster_recovers(nats_cluster):
    """Cut a route, see messages stop crossing it (one hop: no detour through node 1), heal,
    see them flow again."""
    sub = await subscriber(nats_cluster.urls[2], b"orders")
    await nats_cluster.interest_async(0, "orders")
    nats_cluster.partition(0, 2)
    assert nats_cluster.routes(0) == {nats_cluster.names[1]}
    assert not nats_cluster.has_interest(0, "orders")
    await publish(nats_cluster.urls[0], b"orders", [b"lost"])
    await publish(nats_cluster.urls[1], b"orders", [b"via-1"])
    assert await received(sub, 1) == [b"via-1"]
    nats_cluster.heal(0, 2)
    await nats_cluster.meshed_async()
    await nats_cluster.interest_async(0, "orders")
    await publish(nats_cluster.urls[0], b"orders", [b"back"])
    assert await received(sub, 1) == [b"back"]
    await sub.aclose()


async def test_a_killed_route_is_dialed_again(nats_cluster):
    sub = await subscriber(nats_cluster.urls[1], b"k")
    nats_cluster.kill_route(0, 1)
    assert not nats_cluster.meshed()
    await nats_cluster.meshed_async()
    await nats_cluster.interest_async(0, "k")
    await publish(nats_cluster.urls[0], b"k", [b"after"])
    assert await received(sub, 1) == [b"after"]
    await sub.aclose()


async def test_a_slow_route_delivers_late_but_everything_in_order(nats_cluster):
    sub = await subscriber(nats_cluster.urls[1], b"s")
    await nats_cluster.interest_async(0, "s")
    nats_cluster.slow(0, 1, 0.5)
    start = time.monotonic()
    payloads = [b"%d" % n for n in range(100)]
    await publish(nats_cluster.urls[0], b"s", payloads)
    assert await received(sub, 100) == payloads
    assert time.monotonic() - start >= 0.4  # held back by the stall
    await sub.aclose()


@pytest.mark.trionats(size=2, server_name="edge")
async def test_a_killed_node_restarts_and_rejoins(nats_cluster):
    assert nats_cluster.names == ["edge-0", "edge-1"]
    nats_cluster.kill(1)
    assert nats_cluster.routes(0) == set()
    nats_cluster.restart(1)
    sub = await subscriber(nats_cluster.urls[1], b"r")
    await nats_cluster.interest_async(0, "r")
    await publish(nats_cluster.urls[0], b"r", [b"again"])
    assert await received(sub, 1) == [b"again"]
    await sub.aclose()


ASYNCIO_SUITE = """
import asyncio

import nats
import pytest


@pytest.mark.asyncio
async def test_request_reply_across_a_partition_and_back(nats_cluster):
    service = await nats.connect(nats_cluster.urls[2])
    client = await nats.connect(nats_cluster.urls[0])

    async def answer(msg):
        await msg.respond(b"pong:" + msg.data)

    await service.subscribe("svc", cb=answer)
    await service.flush()
    await nats_cluster.interest_async(0, "svc")
    assert (await client.request("svc", b"1", timeout=2)).data == b"pong:1"

    nats_cluster.partition(0, 2)
    with pytest.raises(nats.errors.NoRespondersError):
        await client.request("svc", b"2", timeout=2)

    nats_cluster.heal(0, 2)
    await nats_cluster.meshed_async()
    await nats_cluster.interest_async(0, "svc")
    assert (await client.request("svc", b"3", timeout=2)).data == b"pong:3"
    await client.close()
    await service.close()


@pytest.mark.asyncio
async def test_server_restart_under_a_reconnecting_client(nats_server):
    reconnected = asyncio.Event()

    async def on_reconnect():
        reconnected.set()

    nc = await nats.connect(nats_server.url, reconnected_cb=on_reconnect, reconnect_time_wait=0.05)
    nats_server.restart()
    await asyncio.wait_for(reconnected.wait(), 5)
    sub = await nc.subscribe("after")
    await nc.publish("after", b"ok")
    assert (await sub.next_msg(timeout=2)).data == b"ok"
    await nc.close()
"""


def test_fixtures_in_an_asyncio_suite(pytester):
    """An application's asyncio test suite (nats-py, pytest-asyncio) gets the fixtures from
    the installed plugin alone: no conftest, no imports of trionats."""
    pytester.makepyfile(test_app=ASYNCIO_SUITE)
    result = pytester.runpytest_subprocess("-p", "asyncio", "-W", "ignore::DeprecationWarning",
                                           "-o", "asyncio_default_fixture_loop_scope=function")  # fmt: skip
    result.assert_outcomes(passed=2)
