"""Clusters of trionats servers: routes form, interest travels, messages take one hop.

Every server runs in the test's Trio run on real sockets; clients are raw protocol
connections, so each test states exactly what a subscriber on another server receives.
"""

from __future__ import annotations

import json

import bcrypt
import pytest
import trio

from tests.helpers import RawClient, free_port, start_trionats
from trionats.options import ClusterOptions, RouteAuthorization
from trionats.protocol.parser import RouteParser
from trionats.protocol.events import Info

TIMEOUT = 5.0

#: Raw connections a test opened: closed after it, pass or fail.
_opened: list[RawClient] = []


@pytest.fixture(autouse=True)
async def _close_raw_clients():
    yield
    for raw in _opened:
        await raw.aclose()
    _opened.clear()


async def open_raw(port: int) -> RawClient:
    raw = await RawClient.connect(port)
    _opened.append(raw)
    return raw


async def wait_for(condition, timeout: float = TIMEOUT) -> None:
    """Poll `condition()` on Trio's clock until it holds; fail after `timeout` seconds."""
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.01)


def cluster_options(*routes: int, name: str = "C", port: int = -1, **fields) -> ClusterOptions:
    urls = tuple(f"nats-route://127.0.0.1:{p}" for p in routes)
    return ClusterOptions(name=name, host="127.0.0.1", port=port, routes=urls, **fields)


async def start_node(nursery, *routes: int, name: str = "C", server_name: str = "",
                     system_account: bool = False, **fields):
    """A trionats node; without a system account unless asked (a raw route peer would read
    the system account's interest before what a test is about)."""
    options = cluster_options(*routes, name=name, **fields)
    return await start_trionats(nursery, cluster=options, server_name=server_name,
                                no_system_account=not system_account)


def carrier(server, peer, account: str = "$G"):
    """`server`'s route connection to `peer` that carries `account` (with pooling, one of
    several), or None."""
    return next((route for route in server.cluster.connections()
                 if route.remote_id == peer.server_id and route.carries(account)), None)  # fmt: skip


def routed(*servers) -> bool:
    """Every server has a route to every other (a full mesh)."""
    ids = {s.server_id for s in servers}
    return all(set(s.cluster.routes) == ids - {s.server_id} for s in servers)


def has_remote_interest(server, subject: bytes, count: int = 1) -> bool:
    result = server.sublist.match(subject)
    subs = list(result.psubs) + [s for group in result.qsubs for s in group]
    return sum(1 for s in subs if s.client.is_route) >= count


async def client(server, **fields) -> RawClient:
    """A raw client of `server`, connected (not verbose unless asked) and synced."""
    raw = await open_raw(server.port)
    connect = json.dumps({"verbose": False} | fields).encode()
    await raw.send(b"CONNECT " + connect + b"\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    return raw


@pytest.fixture
async def pair(nursery):
    a = await start_node(nursery, server_name="A")
    b = await start_node(nursery, a.cluster.port, server_name="B")
    await wait_for(lambda: routed(a, b))
    yield a, b
    a.shutdown()
    b.shutdown()


async def test_two_servers_form_one_route(pair):
    a, b = pair
    route = a.cluster.routes[b.server_id]
    assert route.remote_name == "B" and not route.solicited
    assert b.cluster.routes[a.server_id].solicited


async def test_message_published_on_one_server_reaches_a_subscriber_on_the_other(pair):
    a, b = pair
    sub = await client(b)
    await sub.send(b"SUB foo 1\r\nSUB bar.* 2\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"foo") and has_remote_interest(a, b"bar.x"))
    pub = await client(a)
    await pub.send(b"PUB foo 5\r\nhello\r\nPUB bar.x reply.1 2\r\nhi\r\nPUB nobody 1\r\nx\r\n")
    await sub.expect(b"MSG foo 1 5\r\nhello\r\nMSG bar.x 2 reply.1 2\r\nhi\r\n")
    await sub.expect_nothing()


async def test_headers_travel_as_hmsg(pair):
    a, b = pair
    sub = await client(b, headers=True)
    plain = await client(b)
    await sub.send(b"SUB h 1\r\nPING\r\n")
    await plain.send(b"SUB h 9\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await plain.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"h"))
    pub = await client(a, headers=True)
    await pub.send(b"HPUB h r 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n")
    await sub.expect(b"HMSG h 1 r 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n")
    await plain.expect(b"MSG h 9 r 2\r\nhi\r\n")


async def test_one_copy_per_server_however_many_of_its_subscriptions_match(pair):
    a, b = pair
    sub = await client(b)
    await sub.send(b"SUB x.y 1\r\nSUB x.* 2\r\nSUB > 3\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"x.y", 3))
    def sent() -> int:  # (the pool connection carrying $G sent it)
        return sum(r.out_msgs for r in a.cluster.connections() if r.remote_id == b.server_id)

    before = sent()
    pub = await client(a)
    await pub.send(b"PUB x.y 1\r\nz\r\nPING\r\n")
    await pub.expect(b"PONG\r\n")
    received = sorted([await sub.read_line(), await sub.read_line(),
                       await sub.read_line(), await sub.read_line(),
                       await sub.read_line(), await sub.read_line()])  # fmt: skip
    assert received.count(b"z\r\n") == 3
    assert sent() == before + 1


async def test_queue_group_spread_over_both_servers_delivers_each_message_once(pair):
    a, b = pair
    local = await client(a)
    remote = await client(b)
    watcher = await client(b)  # plain interest on B too: one copy per message, never two
    await local.send(b"SUB work q 1\r\nPING\r\n")
    await remote.send(b"SUB work q 1\r\nPING\r\n")
    await watcher.send(b"SUB work 9\r\nPING\r\n")
    for raw in (local, remote, watcher):
        await raw.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"work", 2))
    pub = await client(a)
    count = 200
    await pub.send(b"PUB work 1\r\nm\r\n" * count + b"PING\r\n")  # a run: one pick each
    await pub.expect(b"PONG\r\n")
    await watcher.expect(b"MSG work 9 1\r\nm\r\n" * count)
    await watcher.expect_nothing()
    got = {"local": 0, "remote": 0}

    async def drain(name, raw):
        with trio.move_on_after(0.5):
            while True:
                line = await raw.read_line()
                if line.startswith(b"MSG"):
                    got[name] += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, "local", local)
        nursery.start_soon(drain, "remote", remote)
    assert got["local"] + got["remote"] == count
    assert got["local"] > 20 and got["remote"] > 20  # both members served (p of failure ~1e-40)


async def test_queue_weight_follows_the_remote_member_count(pair):
    a, b = pair
    members = [await client(b) for _ in range(3)]
    for raw in members:
        await raw.send(b"SUB w grp 1\r\nPING\r\n")
        await raw.expect(b"PONG\r\n")
    await wait_for(lambda: any(s.weight == 3 for g in a.sublist.match(b"w").qsubs for s in g))
    await members[0].aclose()
    await members[1].aclose()
    await wait_for(lambda: any(s.weight == 1 for g in a.sublist.match(b"w").qsubs for s in g))
    await members[2].send(b"UNSUB 1\r\nPING\r\n")
    await members[2].expect(b"PONG\r\n")
    await wait_for(lambda: not a.sublist.match(b"w"))


async def test_routed_message_is_not_routed_again(nursery):
    """Three servers in a full mesh: a message crosses one route and stops there."""
    a = await start_node(nursery, server_name="A")
    b = await start_node(nursery, a.cluster.port, server_name="B")
    c = await start_node(nursery, a.cluster.port, server_name="C")
    await wait_for(lambda: routed(a, b, c))  # B and C found each other through A's gossip
    subs = {}
    for server in (a, b, c):
        subs[server.name] = await client(server)
        await subs[server.name].send(b"SUB t 1\r\nPING\r\n")
        await subs[server.name].expect(b"PONG\r\n")
    for server in (a, b, c):
        await wait_for(lambda s=server: has_remote_interest(s, b"t", 2))
    pub = await client(b)
    await pub.send(b"PUB t 3\r\none\r\n")
    for raw in subs.values():
        await raw.expect(b"MSG t 1 3\r\none\r\n")
        await raw.expect_nothing(0.3)
    for server in (a, b, c):
        server.shutdown()


async def test_interest_and_connect_urls_go_when_a_server_leaves(nursery):
    a = await start_node(nursery, server_name="A")
    b = await start_node(nursery, a.cluster.port, server_name="B")
    await wait_for(lambda: routed(a, b))
    watcher = await client(a, protocol=1)
    sub = await client(b)
    await sub.send(b"SUB gone 1\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"gone"))
    assert f"127.0.0.1:{b.port}" in a.connect_urls
    b.shutdown()
    await wait_for(lambda: not a.cluster.routes and not a.sublist.match(b"gone"))
    # Protocol-1 clients hear the new list in an async INFO; it keeps A's own URL.
    with trio.fail_after(TIMEOUT):
        while True:
            line = await watcher.read_line()
            if line.startswith(b"INFO"):
                info = json.loads(line[5:])
                if f"127.0.0.1:{b.port}" not in info.get("connect_urls", []):
                    break
    assert info["connect_urls"] == [f"127.0.0.1:{a.port}"]
    requester = await client(a, headers=True, no_responders=True)
    await requester.send(b"SUB _INBOX.1 1\r\nPUB gone _INBOX.1 0\r\n\r\n")
    line = await requester.read_line()
    assert line.startswith(b"HMSG _INBOX.1 1 ")  # 503: nobody left to answer
    a.shutdown()


async def test_explicit_route_is_dialed_again_after_the_peer_restarts(nursery):
    port = free_port()
    a = await start_node(nursery, port, server_name="A")  # B not up yet: A keeps dialing
    b = await start_trionats(nursery, cluster=cluster_options(port=port), server_name="B")
    await wait_for(lambda: routed(a, b))
    b.shutdown()
    await b.wait_stopped()
    await wait_for(lambda: not a.cluster.routes)
    b2 = await start_trionats(nursery, cluster=cluster_options(port=port), server_name="B")
    await wait_for(lambda: routed(a, b2), timeout=8)
    sub = await client(b2)
    await sub.send(b"SUB back 1\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"back"))
    pub = await client(a)
    await pub.send(b"PUB back 2\r\nok\r\n")
    await sub.expect(b"MSG back 1 2\r\nok\r\n")
    a.shutdown()
    b2.shutdown()


async def test_route_to_itself_is_dropped_and_not_dialed_again(nursery):
    port = free_port()
    a = await start_trionats(nursery, cluster=cluster_options(port, port=port), server_name="A")
    with trio.move_on_after(1.5):
        await wait_for(lambda: bool(a.cluster.routes))
    assert not a.cluster.routes
    assert a.next_cid() < 5  # dialed once, not in a loop
    a.shutdown()


async def test_both_servers_dialing_each_other_end_with_one_route(nursery):
    port_a, port_b = free_port(), free_port()
    a = await start_trionats(nursery, cluster=cluster_options(port_b, port=port_a), server_name="A")
    b = await start_trionats(nursery, cluster=cluster_options(port_a, port=port_b), server_name="B")
    await wait_for(lambda: routed(a, b))
    await trio.sleep(1.5)  # both supervisors have re-dialed once by now
    assert routed(a, b)
    sub = await client(a)
    await sub.send(b"SUB once 1\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(b, b"once"))
    pub = await client(b)
    await pub.send(b"PUB once 1\r\n1\r\n")
    await sub.expect(b"MSG once 1 1\r\n1\r\n")
    await sub.expect_nothing()
    a.shutdown()
    b.shutdown()


# --- the route port's handshake, seen from a raw connection -----------------------------------


async def route_peer(server) -> tuple[RawClient, dict]:
    raw = await open_raw(server.cluster.port)
    return raw, json.loads(raw.info[5:])


async def test_route_port_sends_its_info_at_once(nursery):
    a = await start_node(nursery, server_name="A")
    raw, info = await route_peer(a)
    assert info["server_id"] == a.server_id and info["cluster"] == "C"
    assert info["port"] == a.cluster.port and info["proto"] == 3
    assert info["route_pool_size"] == 3 and "compression" not in info  # (nats-server's default)
    a.shutdown()


async def test_a_client_on_the_route_port_is_refused(nursery):
    a = await start_node(nursery)
    raw, _ = await route_peer(a)
    await raw.send(b'CONNECT {"lang":"python","verbose":false}\r\n')
    await raw.expect(b"-ERR 'attempted to connect to route port'\r\n")
    await raw.expect_closed()
    a.shutdown()


async def test_a_route_from_another_cluster_is_refused(nursery):
    a = await start_node(nursery)
    raw, _ = await route_peer(a)
    await raw.send(b'CONNECT {"name":"X","cluster":"OTHER"}\r\n')
    await raw.expect(b"-ERR 'Rejecting connection, cluster name \"OTHER\" does not match \"C\"'\r\n")
    await raw.expect_closed()
    a.shutdown()


async def test_silent_route_peer_is_closed_after_the_auth_timeout(nursery):
    a = await start_node(nursery)
    a.cluster.auth_timeout = 0.3
    raw, _ = await route_peer(a)
    await raw.expect(b"-ERR 'Authentication Timeout'\r\n", timeout=2)
    await raw.expect_closed()
    a.shutdown()


async def test_a_raw_route_peer_sees_the_interest_dump_and_gets_routed_messages(nursery):
    a = await start_node(nursery, server_name="A")
    sub = await client(a)
    await sub.send(b"SUB in 1\r\nSUB qq grp 2\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    raw, _ = await route_peer(a)
    await raw.send(b'CONNECT {"name":"PEER","cluster":"C","headers":true}\r\n'
                   b'INFO {"server_id":"PEER","server_name":"peer","cluster":"C","headers":true,'
                   b'"port":1}\r\n')  # fmt: skip
    dump = (await raw.ping_pong()).splitlines(keepends=True)
    assert {line for line in dump if line.startswith(b"RS+ $G ")} == {b"RS+ $G in\r\n",
                                                                      b"RS+ $G qq grp 1\r\n"}
    assert all(line.startswith(b"RS+ $SYS $SYS.REQ.") for line in dump if b" $G " not in line)
    await raw.send(b"RMSG $G in 2\r\nhi\r\nRMSG $G qq | grp 1\r\nq\r\nRMSG $G qq 1\r\nx\r\n")
    await sub.expect(b"MSG in 1 2\r\nhi\r\nMSG qq 2 1\r\nq\r\n")
    await sub.expect_nothing()  # no queue named: queue subscribers are not served
    await raw.send(b"RS+ $G back\r\nRS+ $OTHER back\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    pub = await client(a)
    await pub.send(b"PUB back 2\r\nok\r\n")
    await raw.expect(b"RMSG $G back 2\r\n")
    await raw.expect(b"ok\r\n")
    await sub.send(b"UNSUB 1\r\n")
    await raw.expect(b"RS- $G in\r\n")
    a.shutdown()


async def test_gossip_forwards_a_new_peer_info_with_its_route_address(nursery):
    a = await start_node(nursery, server_name="A")
    raw, _ = await route_peer(a)
    await raw.send(b'CONNECT {"name":"P1","cluster":"C"}\r\n'
                   b'INFO {"server_id":"P1","server_name":"p1","cluster":"C","port":1}\r\n')  # fmt: skip
    await wait_for(lambda: "P1" in a.cluster.routes)
    b = await start_node(nursery, a.cluster.port, server_name="B")
    parser = RouteParser()
    with trio.fail_after(TIMEOUT):
        while True:
            events = parser.feed(await raw.read_line())
            infos = [json.loads(e.raw) for e in events if type(e) is Info]
            if infos:
                break
    assert infos[0]["server_id"] == b.server_id
    assert infos[0]["ip"] == f"nats-route://127.0.0.1:{b.cluster.port}/"
    assert "nonce" not in infos[0]
    a.shutdown()
    b.shutdown()


async def test_cluster_name_is_adopted_from_a_peer_that_configured_one(nursery):
    a = await start_trionats(nursery, cluster=cluster_options(name=""), server_name="A")
    assert a.cluster.dynamic
    b = await start_node(nursery, a.cluster.port, name="NAMED", server_name="B")
    await wait_for(lambda: routed(a, b))
    assert a.cluster.name == "NAMED" and not a.cluster.dynamic
    a.shutdown()
    b.shutdown()


async def test_servers_with_the_same_name_do_not_route(nursery):
    a = await start_node(nursery, server_name="SAME")
    b = await start_node(nursery, a.cluster.port, server_name="SAME")
    with trio.move_on_after(1.0):
        await wait_for(lambda: bool(a.cluster.routes or b.cluster.routes))
    assert not a.cluster.routes and not b.cluster.routes
    a.shutdown()
    b.shutdown()


async def test_route_authorization_requires_the_cluster_credential(nursery):
    auth = RouteAuthorization(user="ruser", password="s3cret")
    a = await start_node(nursery, server_name="A", authorization=auth)
    info = a.cluster.info_fields()
    assert info["auth_required"] is True
    raw, _ = await route_peer(a)
    await raw.send(b'CONNECT {"name":"X","cluster":"C","user":"ruser","pass":"wrong"}\r\n')
    await raw.expect(b"-ERR 'Authorization Violation'\r\n")
    await raw.expect_closed()
    good = (f"nats-route://ruser:s3cret@127.0.0.1:{a.cluster.port}",)
    dialer = ClusterOptions(name="C", host="127.0.0.1", port=-1, routes=good)
    b = await start_trionats(nursery, cluster=dialer, server_name="B")
    await wait_for(lambda: routed(a, b))
    a.shutdown()
    b.shutdown()


async def test_peer_in_lame_duck_mode_leaves_the_client_urls(pair):
    a, b = pair
    watcher = await client(a, protocol=1)
    await client(b)  # B closes its clients only after the grace period: it stays up meanwhile
    assert sorted(a.connect_urls) == sorted([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
    b.enter_lame_duck()
    with trio.fail_after(TIMEOUT):
        while True:
            line = await watcher.read_line()
            if line.startswith(b"INFO") and f"{b.port}".encode() not in line:
                break
    assert json.loads(line[5:])["connect_urls"] == [f"127.0.0.1:{a.port}"]
    assert a.cluster.routes[b.server_id].remote_info["ldm"] is True  # the route stays meanwhile


async def test_route_credential_may_be_a_bcrypt_hash(nursery):
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
    a = await start_node(nursery, server_name="A",
                         authorization=RouteAuthorization(user="ruser", password=hashed))  # fmt: skip
    raw, _ = await route_peer(a)
    await raw.send(b'CONNECT {"name":"X","cluster":"C","user":"ruser","pass":"nope"}\r\n')
    await raw.expect(b"-ERR 'Authorization Violation'\r\n")
    good = (f"nats-route://ruser:s3cret@127.0.0.1:{a.cluster.port}",)
    dialer = ClusterOptions(name="C", host="127.0.0.1", port=-1, routes=good)
    b = await start_trionats(nursery, cluster=dialer, server_name="B")
    await wait_for(lambda: routed(a, b))
    a.shutdown()
    b.shutdown()


async def test_cluster_permissions_limit_what_is_imported_and_exported(nursery):
    """A imports only `in.>` (announces only that interest) and exports all but `secret.>`
    (ignores peers' interest there), as nats-server's cluster.permissions."""
    from trionats.options import ClusterPermissions, SubjectPermission

    perms = ClusterPermissions(import_=SubjectPermission(allow=("in.>",)),
                               export=SubjectPermission(deny=("secret.>",)))  # fmt: skip
    a = await start_node(nursery, server_name="A", permissions=perms)
    info = a.cluster.info_fields()
    assert info["import"] == {"allow": ["in.>"]} and info["export"] == {"deny": ["secret.>"]}
    b = await start_node(nursery, a.cluster.port, server_name="B")
    await wait_for(lambda: routed(a, b))
    on_a = await client(a)
    await on_a.send(b"SUB in.x 1\r\nSUB out.x 2\r\nPING\r\n")
    await on_a.expect(b"PONG\r\n")
    on_b = await client(b)
    await on_b.send(b"SUB secret.x 1\r\nSUB open.x 2\r\nPING\r\n")
    await on_b.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(b, b"in.x") and has_remote_interest(a, b"open.x"))
    assert not has_remote_interest(b, b"out.x")  # not importable: never announced
    assert not has_remote_interest(a, b"secret.x")  # not exportable: ignored
    await on_b.send(b"PUB in.x 1\r\n1\r\nPUB out.x 1\r\n2\r\n")
    await on_a.expect(b"MSG in.x 1 1\r\n1\r\n")
    await on_a.expect_nothing()
    await on_a.send(b"PUB secret.x 1\r\n3\r\nPUB open.x 1\r\n4\r\n")
    await on_b.expect(b"MSG open.x 2 1\r\n4\r\n")
    await on_b.expect_nothing()
    a.shutdown()
    b.shutdown()


async def test_a_server_with_plain_and_queue_interest_gets_one_copy_naming_the_group(nursery):
    a = await start_node(nursery, server_name="A")
    raw, _ = await route_peer(a)
    await raw.send(b'CONNECT {"name":"PEER","cluster":"C"}\r\n'
                   b'INFO {"server_id":"PEER","server_name":"peer","cluster":"C","port":1}\r\n'
                   b"RS+ $G foo\r\nRS+ $G foo grp 1\r\nRS+ $G bar\r\nPING\r\n")  # fmt: skip
    await raw.expect(b"PONG\r\n")
    pub = await client(a, headers=True)
    await pub.send(b"PUB foo r 2\r\nhi\r\nPUB bar 1\r\nb\r\nPUB bar 1\r\nb\r\n"
                   b"HPUB bar 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")  # fmt: skip
    await pub.expect(b"PONG\r\n")
    await raw.expect(b"RMSG $G foo + r grp 2\r\nhi\r\n")
    # The peer did not announce headers: the header is stripped for it.
    await raw.expect(b"RMSG $G bar 1\r\nb\r\nRMSG $G bar 1\r\nb\r\nRMSG $G bar 2\r\nhi\r\n")
    await raw.expect_nothing()
    a.shutdown()


async def test_advertise_and_no_advertise_shape_the_route_info(nursery):
    a = await start_node(nursery, advertise="10.0.0.5:7000", no_advertise=True)
    info = a.cluster.info_fields()
    assert (info["host"], info["port"]) == ("10.0.0.5", 7000)
    assert "connect_urls" not in info  # peers' clients will not learn our client URLs
    b = await start_node(nursery, advertise="routes.example")
    assert (b.cluster.info_fields()["host"], b.cluster.info_fields()["port"]) == (
        "routes.example", b.cluster.port)  # fmt: skip
    a.shutdown()
    b.shutdown()


async def test_runs_of_routed_messages_arrive_whole_and_respect_auto_unsubscribe(pair):
    a, b = pair
    sub = await client(b)
    await sub.send(b"SUB run 1\r\nSUB run 2\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"run"))
    pub = await client(a)
    await pub.send(b"PUB run 2\r\nok\r\n" * 3 + b"PING\r\n")  # a run crosses the route as one
    await pub.expect(b"PONG\r\n")
    got = sorted([await sub.read_line() for _ in range(12)])
    assert got == sorted([b"MSG run 1 2\r\n", b"ok\r\n"] * 3 + [b"MSG run 2 2\r\n", b"ok\r\n"] * 3)
    await sub.send(b"UNSUB 2 5\r\nPING\r\n")  # two more for sid 2 (3 delivered), then it goes
    await sub.expect(b"PONG\r\n")
    await pub.send(b"PUB run 2\r\nok\r\n" * 4 + b"PING\r\n")
    await pub.expect(b"PONG\r\n")
    got = [await sub.read_line() for _ in range(12)]
    assert got.count(b"MSG run 1 2\r\n") == 4 and got.count(b"MSG run 2 2\r\n") == 2
    await sub.expect_nothing()


async def test_spans_of_routed_messages_match_per_message_delivery(pair):
    """Varying sizes to one subject cross the route as spans of RMSG lines and are rewritten
    into MSGs in one go on each side; a payload holding the line's start falls back."""
    a, b = pair
    sub = await client(b)
    await sub.send(b"SUB span 1\r\nSUB * 2\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"span", 2))
    pub = await client(a)
    payloads = [b"x" * n for n in (3, 1, 4, 1, 5, 9)] + [b"RMSG $G span 2", b"PUB span 1"]
    cycle = b"".join(b"PUB span %d\r\n%s\r\n" % (len(p), p) for p in payloads)
    await pub.send(cycle * 3 + b"PING\r\n")
    await pub.expect(b"PONG\r\n")
    expected = {1: [], 2: []}
    for _ in range(3):
        for payload in payloads:
            for sid in (1, 2):
                expected[sid].append(b"MSG span %d %d\r\n%s\r\n" % (sid, len(payload), payload))
    got = {1: [], 2: []}
    with trio.fail_after(TIMEOUT):
        while len(got[1]) + len(got[2]) < 2 * 3 * len(payloads):
            line = await sub.read_line()
            sid = int(line.split()[2])
            got[sid].append(line + await sub.read_line())
    assert got == expected


async def test_three_servers_seeded_from_one(nursery):
    """Every pair exchanges messages, a queue group spread over all three gets each message
    once, an unsubscribe reaches every server, and a killed server rejoins when restarted."""
    port_c = free_port()
    a = await start_node(nursery, server_name="A")
    b = await start_node(nursery, a.cluster.port, server_name="B")
    c = await start_trionats(nursery, cluster=cluster_options(a.cluster.port, port=port_c),
                             server_name="C")  # fmt: skip
    servers = [a, b, c]
    await wait_for(lambda: routed(*servers))

    async def every_pair_exchanges_messages(servers) -> None:
        subs = {}
        for server in servers:
            subs[server.name] = raw = await client(server)
            await raw.send(b"SUB pair.*.%s 1\r\nPING\r\n" % server.name.encode())
            await raw.expect(b"PONG\r\n")
        for receiver in servers:
            for sender in servers:
                if sender is not receiver:
                    await wait_for(lambda s=sender, r=receiver: has_remote_interest(
                        s, b"pair.%s.%s" % (s.name.encode(), r.name.encode())))  # fmt: skip
        for sender in servers:
            pub = await client(sender)
            for receiver in servers:
                subject = b"pair.%s.%s" % (sender.name.encode(), receiver.name.encode())
                await pub.send(b"PUB %s 2\r\nhi\r\n" % subject)
                await subs[receiver.name].expect(b"MSG %s 1 2\r\nhi\r\n" % subject)
        for raw in subs.values():
            await raw.send(b"UNSUB 1\r\n")
        for server in servers:  # the unsubscribes reached every other server
            await wait_for(lambda s=server: not any(
                sub.client.is_route for sub in s.sublist.match(b"pair.X.A").psubs))  # fmt: skip

    await every_pair_exchanges_messages(servers)

    members = {}
    for server in servers:
        members[server.name] = raw = await client(server)
        await raw.send(b"SUB work3 grp 1\r\nPING\r\n")
        await raw.expect(b"PONG\r\n")
    for server in servers:
        await wait_for(lambda s=server: sum(
            sub.weight for g in s.sublist.match(b"work3").qsubs for sub in g) == 3)  # fmt: skip
    for server in servers:
        pub = await client(server)
        await pub.send(b"PUB work3 1\r\nw\r\n" * 100 + b"PING\r\n")
        await pub.expect(b"PONG\r\n")
    counts = dict.fromkeys(members, 0)

    async def count(name, raw):
        with trio.move_on_after(0.7):
            while True:
                if (await raw.read_line()).startswith(b"MSG"):
                    counts[name] += 1

    async with trio.open_nursery() as inner:
        for name, raw in members.items():
            inner.start_soon(count, name, raw)
    assert sum(counts.values()) == 300 and all(n > 0 for n in counts.values()), counts

    c.shutdown()
    await c.wait_stopped()
    await wait_for(lambda: routed(a, b))
    c2 = await start_trionats(nursery, cluster=cluster_options(a.cluster.port, port=port_c),
                              server_name="C")  # fmt: skip
    await wait_for(lambda: routed(a, b, c2), timeout=8)
    await every_pair_exchanges_messages([a, b, c2])
    for server in (a, b, c2):
        server.shutdown()
