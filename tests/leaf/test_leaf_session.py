"""A trionats hub's side of the leaf protocol, with the leaf played by hand (RawClient): the
INFO, CONNECT and authentication, the account binding, interest both ways, messages and queue
groups, two leaves, loops and refusals, and a hub in a cluster passing a leaf's interest on."""

from __future__ import annotations

import json

import bcrypt
import pytest

from tests.cluster.test_cluster import (
    client,
    cluster_options,
    has_remote_interest,
    open_raw,
    wait_for,
)
from tests.helpers import start_trionats
from trionats.core import msgtrace
from trionats.options import (
    AccountOptions,
    Authorization,
    LeafAuthorization,
    LeafnodeOptions,
    LeafUser,
    User,
)

AUTH_ERR = b"-ERR 'Authorization Violation'\r\n"


def leaf_options(**fields) -> LeafnodeOptions:
    return LeafnodeOptions(host="127.0.0.1", port=-1, **fields)


async def hub(nursery, **overrides):
    overrides.setdefault("leafnodes", leaf_options())
    return await start_trionats(nursery, **overrides)


def connect_line(**fields) -> bytes:
    body = {"version": "2.15.1", "server_id": "NLEAF", "name": "LEAF", "headers": True,
            "compress_mode": "off", "remote_account": "$G", "protocol": 1} | fields  # fmt: skip
    return b"CONNECT " + json.dumps(body).encode() + b"\r\n"


def first_info(raw) -> dict:
    """The hub's INFO, which RawClient.connect read."""
    return json.loads(raw.info[5:])


async def read_info(raw) -> dict:
    line = await raw.read_line()
    assert line.startswith(b"INFO ")
    return json.loads(line[5:])


async def open_leaf(server, **fields):
    """A leaf that dialed `server` and was bound: returns it and the lines the hub sent after
    its second INFO, up to the PONG (its interest)."""
    raw = await open_raw(server.leafnodes.port)
    await raw.send(connect_line(**fields) + b"PING\r\n")
    info = await read_info(raw)
    assert info["connect_info"] is True
    lines = []
    while (line := await raw.read_line()) != b"PONG\r\n":
        lines.append(line)
    return raw, lines


async def sync(raw) -> None:
    await raw.send(b"PING\r\n")
    await raw.expect(b"PONG\r\n")


async def test_the_hubs_info(nursery):
    server = await hub(nursery)
    raw = await open_raw(server.leafnodes.port)
    info = first_info(raw)
    assert info["client_id"] > 0 and info["nonce"] and info["auth_required"] is True
    assert info["compression"] == "off" and info["info_on_connect"] is True
    assert info["leafnode_urls"] == [f"127.0.0.1:{server.leafnodes.port}"]
    assert info["server_id"] == server.server_id and "connect_info" not in info


async def test_binding_sends_the_accounts_interest_and_its_loop_subject(nursery):
    server = await hub(nursery)
    sub = await client(server)
    await sub.send(b"SUB a.> 1\r\nSUB q.x grp 2\r\nSUB q.x grp 3\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    _, lines = await open_leaf(server)
    # (as nats-server: the account's interest, with the system services it imports)
    assert sorted(lines[:-1]) == [
        b"LS+ $SYS.REQ.ACCOUNT.PING.CONNZ\r\n", b"LS+ $SYS.REQ.ACCOUNT.PING.STATZ\r\n",
        b"LS+ $SYS.REQ.SERVER.PING.CONNZ\r\n", b"LS+ $SYS.REQ.USER.INFO\r\n",
        b"LS+ a.>\r\n", b"LS+ q.x grp 2\r\n",
    ]
    assert lines[-1].startswith(b"LS+ $LDS.")
    assert len(server.leafnodes.connections) == 1


async def test_interest_follows_subscriptions(nursery):
    server = await hub(nursery)
    leaf, _ = await open_leaf(server)
    sub = await client(server)
    await sub.send(b"SUB x 1\r\nSUB x 2\r\nSUB w q 3\r\nSUB w q 4\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await leaf.expect(b"LS+ x\r\nLS+ w q 1\r\nLS+ w q 2\r\n")
    await sub.send(b"UNSUB 1\r\nUNSUB 3\r\nUNSUB 2\r\nUNSUB 4\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await leaf.expect(b"LS+ w q 1\r\nLS- x\r\nLS- w q\r\n")


async def test_messages_both_ways_and_queue_groups_prefer_local_members(nursery):
    server = await hub(nursery)
    leaf, _ = await open_leaf(server)
    await leaf.send(b"LS+ up.>\r\nLS+ work grp 2\r\n")
    await sync(leaf)
    pub = await client(server, headers=True)
    await pub.send(b"PUB up.a r 2\r\nhi\r\nHPUB up.b 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB work 1\r\nw\r\n")
    await leaf.expect(b"LMSG up.a r 2\r\nhi\r\nHMSG up.b 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
    await leaf.expect(b"LMSG work | grp 1\r\nw\r\n")  # no local member: the leaf's
    member = await client(server)
    await member.send(b"SUB work grp 9\r\nSUB down 8\r\nPING\r\n")
    await member.expect(b"PONG\r\n")
    await leaf.expect(b"LS+ work grp 1\r\nLS+ down\r\n")
    for i in range(5):
        await pub.send(b"PUB work 1\r\n%d\r\n" % i)
    for i in range(5):
        await member.expect(b"MSG work 9 1\r\n%d\r\n" % i)  # the local member, every time
    await leaf.send(b"LMSG down 2\r\nok\r\nLMSG work 2\r\nno\r\nLMSG work | grp 2\r\nq1\r\nPING\r\n")
    await leaf.expect(b"PONG\r\n")
    await member.expect(b"MSG down 8 2\r\nok\r\nMSG work 9 2\r\nq1\r\n")  # unnamed: no group
    await sync(member)
    await pub.send(b"PING\r\n")
    await pub.expect(b"PONG\r\n")
    await leaf.expect_nothing()


async def test_two_leaves_hear_each_other(nursery):
    server = await hub(nursery)
    a, _ = await open_leaf(server, name="A", server_id="NA")
    b, _ = await open_leaf(server, name="B", server_id="NB")
    await a.send(b"LS+ for.a\r\n")
    await sync(a)
    await b.expect(b"LS+ for.a\r\n")
    await b.send(b"LMSG for.a 2\r\nhi\r\n")
    await a.expect(b"LMSG for.a 2\r\nhi\r\n")
    await a.send(b"LS- for.a\r\n")
    await b.expect(b"LS- for.a\r\n")


async def test_a_leaf_bound_to_an_account_crosses_only_it(nursery):
    accounts = (AccountOptions(name="A", users=(User(user="a", password="a"),)),
                AccountOptions(name="B", users=(User(user="b", password="b"),)))  # fmt: skip
    server = await hub(nursery, accounts=accounts, leafnodes=leaf_options(
        authorization=LeafAuthorization(user="lf", password="pw", account="A")))  # fmt: skip
    leaf, _ = await open_leaf(server, user="lf", **{"pass": "pw"})
    [conn] = server.leafnodes.connections.values()
    assert conn.account.name == "A"
    await leaf.send(b"LS+ acc.>\r\n")
    await sync(leaf)
    in_b = await client(server, user="b", **{"pass": "b"})
    in_a = await client(server, user="a", **{"pass": "a"})
    await in_b.send(b"PUB acc.b 1\r\nb\r\nPING\r\n")
    await in_b.expect(b"PONG\r\n")
    await in_a.send(b"PUB acc.a 1\r\na\r\n")
    await leaf.expect(b"LMSG acc.a 1\r\na\r\n")


@pytest.mark.parametrize("mode", ["plain", "bcrypt", "users", "client users", "token"])
async def test_authentication(nursery, mode):
    secret = "pw"
    stored = bcrypt.hashpw(secret.encode(), bcrypt.gensalt(4)).decode() if mode == "bcrypt" else secret
    overrides = {}
    if mode in ("plain", "bcrypt"):
        overrides["leafnodes"] = leaf_options(authorization=LeafAuthorization(user="lf", password=stored))
    elif mode == "users":
        overrides["accounts"] = (AccountOptions(name="B"),)
        overrides["leafnodes"] = leaf_options(authorization=LeafAuthorization(
            users=(LeafUser(user="lf", password=stored, account="B"),)))  # fmt: skip
    elif mode == "client users":
        overrides["authorization"] = Authorization(users=(User(user="lf", password=stored),))
    else:
        overrides["authorization"] = Authorization(token=stored)
    server = await hub(nursery, **overrides)
    good = {"auth_token": secret} if mode == "token" else {"user": "lf", "pass": secret}
    bad = {"auth_token": "nope"} if mode == "token" else {"user": "lf", "pass": "nope"}
    _, lines = await open_leaf(server, **good)
    assert lines[-1].startswith(b"LS+ $LDS.")
    if mode == "users":
        assert next(iter(server.leafnodes.connections.values())).account.name == "B"
    raw = await open_raw(server.leafnodes.port)
    await raw.send(connect_line(**bad) + b"PING\r\n")
    await raw.expect(AUTH_ERR)
    await raw.expect_closed()


async def test_nothing_but_connect_first(nursery):
    server = await hub(nursery)
    raw = await open_raw(server.leafnodes.port)
    await raw.send(b"LS+ foo\r\n")
    await raw.expect(AUTH_ERR)
    await raw.expect_closed()


async def test_no_connect_in_time(nursery):
    server = await hub(nursery, leafnodes=leaf_options(authorization=LeafAuthorization(timeout=0.3)))
    raw = await open_raw(server.leafnodes.port)
    await raw.expect(b"-ERR 'Authentication Timeout'\r\n", timeout=3)
    await raw.expect_closed()


@pytest.mark.parametrize(
    ("fields", "error"),
    [({"lang": "python"}, b"-ERR 'attempted to connect to leaf node port'\r\n"),
     ({"cluster": "a b"}, b"-ERR 'cluster name cannot contain spaces'\r\n"),
     ({"cluster": "C"}, b"-ERR 'remote leafnode has same cluster name'\r\n"),
     ({"version": "2.9.9"}, b"-ERR 'connection rejected since minimum version required is \"2.10.0\"'\r\n")],
)  # fmt: skip
async def test_refused_connects(nursery, fields, error):
    server = await hub(nursery, cluster=cluster_options(name="C"),
                       leafnodes=leaf_options(min_version="2.10.0"))  # fmt: skip
    raw = await open_raw(server.leafnodes.port)
    await raw.send(connect_line(**fields))
    await raw.expect(error)
    await raw.expect_closed()


async def test_a_loop_is_detected(nursery):
    server = await hub(nursery)
    leaf, lines = await open_leaf(server)
    loop = lines[-1].split()[1]
    await leaf.send(b"LS+ " + loop + b"\r\n")
    await leaf.expect(b'-ERR \'Loop detected for leafnode account="$G". '
                      b"Delaying attempt to reconnect for 30s'\r\n")  # fmt: skip
    await leaf.expect_closed()
    await wait_for(lambda: not server.leafnodes.connections)


async def test_closing_drops_the_leafs_interest(nursery):
    server = await hub(nursery)
    leaf, _ = await open_leaf(server)
    await leaf.send(b"LS+ gone.x\r\nLS+ gone.q q 3\r\n")
    await sync(leaf)
    assert server.sublist.count == 2
    await leaf.aclose()
    await wait_for(lambda: server.sublist.count == 0 and not server.leafnodes.connections)


async def test_a_hub_in_a_cluster_passes_its_leafs_interest_on(nursery):
    a = await hub(nursery, cluster=cluster_options(), server_name="A")
    b = await start_trionats(nursery, cluster=cluster_options(a.cluster.port), server_name="B")
    await wait_for(lambda: len(a.cluster.routes) == 1 and len(b.cluster.routes) == 1)
    leaf, _ = await open_leaf(a)
    await leaf.send(b"LS+ via.route\r\n")
    await sync(leaf)
    await wait_for(lambda: has_remote_interest(b, b"via.route"))
    pub = await client(b)
    await pub.send(b"PUB via.route 2\r\nhi\r\n")
    await leaf.expect(b"LMSG via.route 2\r\nhi\r\n")
    # And the leaf's message reaches B's subscriber through A.
    sub = await client(b)
    await sub.send(b"SUB from.leaf 1\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"from.leaf"))
    await leaf.send(b"LMSG from.leaf 2\r\nok\r\n")
    await sub.expect(b"MSG from.leaf 1 2\r\nok\r\n")


async def test_a_traced_message_notes_the_leaf_as_not_tracing(nursery):
    server = await hub(nursery)
    leaf, _ = await open_leaf(server)
    await leaf.send(b"LS+ traced\r\n")
    await sync(leaf)
    watcher = await client(server)
    await watcher.send(b"SUB trace.dest 1\r\nPING\r\n")
    await watcher.expect(b"PONG\r\n")
    pub = await client(server, headers=True)
    headers = b"NATS/1.0\r\nNats-Trace-Dest: trace.dest\r\n\r\n"
    await pub.send(b"HPUB traced %d %d\r\n%shi\r\n" % (len(headers), len(headers) + 2, headers))
    await leaf.expect(b"LS+ trace.dest\r\n")
    await leaf.expect(b"HMSG traced %d %d\r\n%shi\r\n" % (len(headers), len(headers) + 2, headers))
    line = await watcher.read_line()
    assert line.startswith(b"MSG trace.dest 1 ")
    event = json.loads(await watcher.read_line())
    [egress] = [e for e in event["events"] if e["type"] == "eg"]
    assert (egress["kind"], egress["name"], egress["error"]) == (4, "LEAF", msgtrace.NO_SUPPORT)


async def test_a_leaf_dialing_again_replaces_its_old_connection(nursery):
    server = await hub(nursery)
    old, _ = await open_leaf(server)
    await old.send(b"LS+ old.interest\r\n")
    await sync(old)
    new, _ = await open_leaf(server)  # the same server name, cluster and accounts
    await old.expect(b"-ERR 'Duplicate Remote LeafNode Connection'\r\n")
    await old.expect_closed()
    await wait_for(lambda: len(server.leafnodes.connections) == 1 and server.sublist.count == 0)
    await open_leaf(server, name="OTHER", server_id="NOTHER")
    await sync(new)
    assert len(server.leafnodes.connections) == 2
