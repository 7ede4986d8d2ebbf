"""Monitoring of a cluster: /routez, the /varz cluster block and route figures, /subsz with
remote interest, route metrics; two in-process trionats servers on real sockets, and the
shapes compared with a pair of nats-server 2.15.1 processes.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.cluster import test_cluster
from tests.helpers import NatsServerProcess, TrionatsProcess, free_port, start_trionats
from tests.cluster.test_cluster import (
    client,
    cluster_options,
    has_remote_interest,
    routed,
    wait_for,
)
from tests.monitor.test_monitor import VARZ_TRIONATS_ONLY, fetch, get, get_json, parse_exposition
from trionats.monitor import metrics

#: A /routez route entry's keys in nats-server 2.15.1's order (no subscriptions asked).
ROUTE_KEYS = [
    "rid", "remote_id", "remote_name", "did_solicit", "is_configured", "ip", "port", "start",
    "last_activity", "rtt", "uptime", "idle", "pending_size", "in_msgs", "out_msgs", "in_bytes",
    "out_bytes", "subscriptions", "compression",
]  # fmt: skip


async def monitored_node(nursery, *routes: int, server_name: str, pooled: bool = False):
    """A node monitored over HTTP; unless `pooled`, with one route per peer and no system
    account (`pool_size: -1`), so the figures below are those of a single route."""
    return await start_trionats(
        nursery,
        cluster=cluster_options(*routes, pool_size=3 if pooled else -1),
        server_name=server_name,
        http_host="127.0.0.1",
        http_port=-1,
        no_system_account=not pooled,
    )


@pytest.fixture
async def pair(nursery):
    """A accepts, B dials A (a configured route): both monitored over HTTP."""
    a = await monitored_node(nursery, server_name="A")
    b = await monitored_node(nursery, a.cluster.port, server_name="B")
    await wait_for(lambda: routed(a, b))
    yield a, b
    for raw in test_cluster._opened:  # the clients `client()` opened
        await raw.aclose()
    test_cluster._opened.clear()
    a.shutdown()
    b.shutdown()


def http(server) -> int:
    return server.monitor.port


# --- /routez ---------------------------------------------------------------------------------


async def test_routez_shows_one_route_per_peer_from_both_sides(pair):
    a, b = pair
    ra, rb = await get_json(http(a), "/routez"), await get_json(http(b), "/routez")
    assert list(ra) == ["server_id", "server_name", "now", "num_routes", "routes"]
    assert (ra["server_id"], ra["server_name"], ra["num_routes"]) == (a.server_id, "A", 1)
    (accepted,), (dialed,) = ra["routes"], rb["routes"]
    assert list(accepted) == list(dialed) == ROUTE_KEYS
    route_a, route_b = a.cluster.routes[b.server_id], b.cluster.routes[a.server_id]
    assert accepted["rid"] == route_a.cid and dialed["rid"] == route_b.cid
    assert (accepted["remote_id"], accepted["remote_name"]) == (b.server_id, "B")
    assert (dialed["remote_id"], dialed["remote_name"]) == (a.server_id, "A")
    # The dialing side made the route from its configuration; the accepting side did neither.
    assert (accepted["did_solicit"], accepted["is_configured"]) == (False, False)
    assert (dialed["did_solicit"], dialed["is_configured"]) == (True, True)
    # ip/port: the TCP peer, i.e. the route port for the dialer, an ephemeral one for A.
    assert (dialed["ip"], dialed["port"]) == ("127.0.0.1", a.cluster.port)
    assert (accepted["ip"], accepted["port"]) == ("127.0.0.1", route_a.peer_port)
    assert accepted["compression"] == "off" and accepted["subscriptions"] == 0
    assert accepted["start"].endswith("Z") and accepted["uptime"].endswith("s")


async def test_routez_lists_remote_interest_with_subs(pair):
    a, b = pair
    sub = await client(a)
    await sub.send(b"SUB foo 1\r\nSUB bar q 2\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(b, b"foo") and has_remote_interest(b, b"bar"))
    rid = b.cluster.routes[a.server_id].cid

    (route,) = (await get_json(http(b), "/routez"))["routes"]
    assert route["subscriptions"] == 2 and "subscriptions_list" not in route
    (route,) = (await get_json(http(b), "/routez?subs=1"))["routes"]
    assert sorted(route["subscriptions_list"]) == ["bar", "foo"]
    assert list(route)[-2:] == ["subscriptions_list", "compression"]
    (route,) = (await get_json(http(b), "/routez?subs=detail"))["routes"]
    # nats-server's keys of remote subscriptions: "R <account> <subject>[ <queue>]".
    assert sorted(route["subscriptions_list_detail"], key=lambda d: d["subject"]) == [
        {"subject": "bar", "qgroup": "q", "sid": "R $G bar q", "msgs": 0, "cid": rid},
        {"subject": "foo", "sid": "R $G foo", "msgs": 0, "cid": rid},
    ]
    # A's route to B carries no interest of B's: nothing listed, the key left out.
    (route,) = (await get_json(http(a), "/routez?subs=1"))["routes"]
    assert "subscriptions_list" not in route

    status, _, body = await get(http(b), "/routez?subs=maybe")
    assert status == 400 and b"Error decoding boolean for 'subs'" in body


async def test_routez_route_counters_follow_traffic(pair):
    a, b = pair
    sub = await client(b)
    await sub.send(b"SUB foo 1\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"foo"))
    pub = await client(a)
    await pub.send(b"PUB foo 5\r\nhello\r\nPUB foo 2\r\nhi\r\nPING\r\n")
    await pub.expect(b"PONG\r\n")
    await sub.expect(b"MSG foo 1 5\r\nhello\r\nMSG foo 1 2\r\nhi\r\n")

    (sent,) = (await get_json(http(a), "/routez"))["routes"]
    (received,) = (await get_json(http(b), "/routez"))["routes"]
    assert (sent["out_msgs"], sent["out_bytes"], sent["in_msgs"]) == (2, 7, 0)
    assert (received["in_msgs"], received["in_bytes"], received["out_msgs"]) == (2, 7, 0)
    assert sent["subscriptions"] == 1 and sent["pending_size"] == 0


async def test_routez_without_a_cluster(server_factory):
    server = await server_factory(http_host="127.0.0.1", http_port=-1)
    body = await get_json(server.monitor.port, "/routez?subs=detail")
    assert (body["num_routes"], body["routes"]) == (0, [])


async def test_routez_and_varz_with_route_pools(nursery):
    """nats-server's defaults: a pool of 3 connections per peer and a pinned $SYS route,
    each a /routez entry (the pinned one names its `account`), one remote."""
    a = await monitored_node(nursery, server_name="A", pooled=True)
    b = await monitored_node(nursery, a.cluster.port, server_name="B", pooled=True)
    await wait_for(lambda: len(a.cluster.connections()) == len(b.cluster.connections()) == 4)
    for server in (a, b):
        routez = await get_json(http(server), "/routez")
        assert routez["num_routes"] == 4
        assert [r.get("account") for r in routez["routes"]].count("$SYS") == 1
        pinned = next(r for r in routez["routes"] if "account" in r)
        assert list(pinned) == ROUTE_KEYS[:-1] + ["account", "compression"]
        varz = await get_json(http(server), "/varz")
        assert (varz["routes"], varz["remotes"], varz["cluster"]["pool_size"]) == (4, 1, 3)
    a.shutdown()
    b.shutdown()


# --- /varz -----------------------------------------------------------------------------------


async def test_varz_cluster_block(pair):
    a, b = pair
    va, vb = await get_json(http(a), "/varz"), await get_json(http(b), "/varz")
    assert va["cluster"] == {
        "name": "C", "addr": "127.0.0.1", "cluster_port": a.cluster.port, "auth_timeout": 2,
        "tls_timeout": 2, "pool_size": -1,
    }  # fmt: skip
    # Configured routes appear (host:port, as nats-server), right after auth_timeout.
    assert list(vb["cluster"]) == [
        "name", "addr", "cluster_port", "auth_timeout", "urls", "tls_timeout", "pool_size",
    ]  # fmt: skip
    assert vb["cluster"]["urls"] == [f"127.0.0.1:{a.cluster.port}"]
    for varz in (va, vb):
        assert (varz["routes"], varz["remotes"]) == (1, 1)
        assert sorted(varz["connect_urls"]) == sorted(
            [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"]
        )
        keys = list(varz)
        assert keys.index("port") < keys.index("connect_urls") < keys.index("max_connections")


async def test_varz_without_a_cluster_has_an_empty_block(server_factory):
    server = await server_factory(http_host="127.0.0.1", http_port=-1)
    varz = await get_json(server.monitor.port, "/varz")
    assert varz["cluster"] == {} and (varz["routes"], varz["remotes"]) == (0, 0)
    assert "connect_urls" not in varz


async def test_varz_client_figures_leave_route_traffic_out(pair):
    """As nats-server: in/out_* count everything, in/out_client_* only clients' messages."""
    a, b = pair
    sub = await client(b)
    await sub.send(b"SUB foo 1\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"foo"))
    pub = await client(a)
    await pub.send(b"PUB foo 5\r\nhello\r\nPING\r\n")
    await pub.expect(b"PONG\r\n")
    await sub.expect(b"MSG foo 1 5\r\nhello\r\n")

    def figures(varz):
        return {
            key: varz[key]
            for key in ("in_msgs", "in_bytes", "in_client_msgs", "in_client_bytes",
                        "out_msgs", "out_bytes", "out_client_msgs", "out_client_bytes")
        }  # fmt: skip

    # A: a client's message in, one copy out over the route.
    assert figures(await get_json(http(a), "/varz")) == {
        "in_msgs": 1, "in_bytes": 5, "in_client_msgs": 1, "in_client_bytes": 5,
        "out_msgs": 1, "out_bytes": 5, "out_client_msgs": 0, "out_client_bytes": 0,
    }  # fmt: skip
    # B: the routed copy in, delivered to its client.
    assert figures(await get_json(http(b), "/varz")) == {
        "in_msgs": 1, "in_bytes": 5, "in_client_msgs": 0, "in_client_bytes": 0,
        "out_msgs": 1, "out_bytes": 5, "out_client_msgs": 1, "out_client_bytes": 5,
    }  # fmt: skip

    # A closed route's traffic still is route traffic; a stale route counts as a route's.
    route = a.cluster.routes[b.server_id]
    for _ in range(a.cluster.ping_max + 1):
        route.on_ping_timer()  # PINGs nobody answered in between: the route goes stale
    assert route.closed_reason == "Stale Connection"
    varz = await get_json(http(a), "/varz")
    assert (varz["out_msgs"], varz["out_client_msgs"]) == (1, 0)
    assert varz["stale_connections"] == 1
    assert varz["stale_connection_stats"] == {"clients": 0, "routes": 1, "gateways": 0, "leafs": 0}
    assert varz["slow_consumer_stats"]["routes"] == 0
    await wait_for(lambda: routed(a, b))  # B dials again
    assert (await get_json(http(a), "/varz"))["routes"] == 1


# --- /subsz ----------------------------------------------------------------------------------


async def test_subsz_counts_remote_interest_but_lists_clients_only(pair):
    a, b = pair
    remote = await client(a)
    await remote.send(b"SUB foo 1\r\nSUB bar q 2\r\nPING\r\n")
    await remote.expect(b"PONG\r\n")
    local = await client(b)
    await local.send(b"SUB mine 1\r\nPING\r\n")
    await local.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(b, b"foo") and has_remote_interest(b, b"bar"))

    subsz = await get_json(http(b), "/subsz?subs=1")
    # nats-server: the sublist counts route subscriptions; the list has local clients' only.
    assert subsz["num_subscriptions"] == 3
    assert subsz["total"] == 1
    assert [d["subject"] for d in subsz["subscriptions_list"]] == ["mine"]
    assert (await get_json(http(b), "/varz"))["subscriptions"] == 3


# --- /metrics --------------------------------------------------------------------------------


async def test_metrics_report_routes(pair):
    a, b = pair
    sub = await client(b)
    await sub.send(b"SUB foo 1\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"foo"))
    pub = await client(a)
    await pub.send(b"PUB foo 5\r\nhello\r\nPING\r\n")
    await pub.expect(b"PONG\r\n")
    await sub.expect(b"MSG foo 1 5\r\nhello\r\n")

    status, _, body = await get(http(a), "/metrics")
    assert status == 200
    families = parse_exposition(body.decode())

    def value(name, **labels):
        return next(v for found, v in families[name]["samples"] if labels.items() <= found.items())

    assert value("nats_server_routes") == value("nats_server_remotes") == 1
    assert value("nats_server_out_msgs_total") == 1
    assert value("nats_server_out_client_msgs_total") == 0
    assert value("nats_server_in_client_bytes_total") == 5
    peer = {"remote_id": b.server_id, "remote_name": "B"}
    assert value("nats_server_route_out_msgs_total", **peer) == 1
    assert value("nats_server_route_out_bytes_total", **peer) == 5
    assert value("nats_server_route_in_msgs_total", **peer) == 0
    assert value("nats_server_route_subscriptions", **peer) == 1
    assert value("nats_server_route_rtt_seconds", **peer) >= 0
    assert families["nats_server_route_out_msgs_total"]["type"] == "counter"
    assert families["nats_server_route_pending_bytes"]["type"] == "gauge"
    assert families["nats_server_route_in_bytes_total"]["samples"][0][0]["server_id"] == a.server_id


def test_metrics_route_families_from_dicts():
    varz = {
        "server_id": "NABC", "server_name": "A", "version": "2.15.1",
        "start": "2026-11-22T00:00:00Z", "now": "2026-11-22T00:00:01Z", "routes": 1, "remotes": 1,
    }  # fmt: skip
    route = {
        "remote_id": "NDEF", "remote_name": 'b"1', "in_msgs": 3, "in_bytes": 30, "out_msgs": 4,
        "out_bytes": 40, "pending_size": 7, "subscriptions": 2, "rtt": "1.5ms",
    }  # fmt: skip
    families = parse_exposition(metrics.exposition(varz, {"routes": [route]}))
    labels = {"server_id": "NABC", "remote_id": "NDEF", "remote_name": 'b\\"1'}
    assert families["nats_server_route_in_msgs_total"]["samples"] == [(labels, 3.0)]
    assert families["nats_server_route_pending_bytes"]["samples"] == [(labels, 7.0)]
    assert families["nats_server_route_rtt_seconds"]["samples"] == [(labels, 0.0015)]
    # No routes, no route families; fields the snapshot lacks are left out.
    plain = parse_exposition(metrics.exposition(varz, {"routes": []}))
    assert not any(name.startswith("nats_server_route_") for name in plain)
    assert "nats_server_in_client_msgs_total" not in plain


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0.0), ("240µs", 240e-6), ("1.092398ms", 1.092398e-3), ("1m5s", 65.0),
     ("1h0m5.5s", 3605.5), ("250ns", 250e-9)],
)  # fmt: skip
def test_go_duration_seconds(text, seconds):
    assert metrics.go_duration_seconds(text) == pytest.approx(seconds)


# --- the same shapes as nats-server ----------------------------------------------------------


def _json(port: int, target: str) -> dict:
    status, _, body = fetch(f"http://127.0.0.1:{port}{target}")
    assert status == 200, body
    return json.loads(body)


def _wait_for_routes(http_port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _json(http_port, "/routez")["num_routes"] == 4:  # (a pool of 3, the $SYS route)
            return
        time.sleep(0.05)
    raise TimeoutError(f"no route on monitor port {http_port}")


def _start_pair(kind) -> tuple[list, list[int]]:
    """Node 1 accepts, node 2 dials it: the processes and their monitoring ports."""
    http_ports, cluster_ports = [free_port(), free_port()], [free_port(), free_port()]
    processes = []
    try:
        for i in (0, 1):
            args = ["-n", f"M{i + 1}", "-m", str(http_ports[i]), "--cluster_name", "C",
                    "--cluster", f"nats://127.0.0.1:{cluster_ports[i]}"]  # fmt: skip
            if i:
                args += ["--routes", f"nats-route://127.0.0.1:{cluster_ports[0]}"]
            processes.append(kind(*args))
        for port in http_ports:
            _wait_for_routes(port)
    except BaseException:
        for process in processes:
            process.stop()
        raise
    return processes, http_ports


def _subscribe(client_port: int) -> socket.socket:
    """A client with interest in foo and queue group q on bar (kept open by the caller)."""
    sock = socket.create_connection(("127.0.0.1", client_port))
    sock.settimeout(5)
    sock.recv(4096)
    sock.sendall(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nSUB bar q 2\r\nPING\r\n')
    received = b""
    while not received.endswith(b"PONG\r\n"):
        received += sock.recv(4096)
    return sock


def _remote_interest(http_port: int, timeout: float = 10.0) -> list[dict]:
    """The detailed remote subscriptions of the node on `http_port`, once both arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        routez = _json(http_port, "/routez?subs=detail")
        found = [d for route in routez["routes"] for d in route.get("subscriptions_list_detail", [])
                 if not d["subject"].startswith(("$", "_R_."))]  # (internal ones) fmt: skip
        if len(found) == 2:
            return sorted(({**d, "cid": 0} for d in found), key=lambda d: d["subject"])
        time.sleep(0.05)
    raise TimeoutError(f"no remote interest on monitor port {http_port}")


def _client_route(routez: dict) -> dict:
    """A route entry that is not nats-server's pinned $SYS route (it adds `account`)."""
    return next(route for route in routez["routes"] if "account" not in route)


@pytest.mark.interop
def test_route_shapes_match_nats_server():
    theirs, theirs_http = _start_pair(NatsServerProcess)
    try:
        ours, ours_http = _start_pair(TrionatsProcess)
        try:
            socks = [_subscribe(theirs[0].port), _subscribe(ours[0].port)]
            interest = [_remote_interest(theirs_http[1]), _remote_interest(ours_http[1])]
            for sock in socks:
                sock.close()
            bodies = {
                side: [{target: _json(port, target) for target in ("/routez", "/varz")}
                       for port in ports]
                for side, ports in (("theirs", theirs_http), ("ours", ours_http))
            }  # fmt: skip
        finally:
            for process in ours:
                process.stop()
    finally:
        for process in theirs:
            process.stop()

    # Remote interest as /routez?subs=detail shows it (the route's rid aside).
    assert interest[0] == interest[1] == [
        {"subject": "bar", "qgroup": "q", "sid": "R $G bar q", "msgs": 0, "cid": 0},
        {"subject": "foo", "sid": "R $G foo", "msgs": 0, "cid": 0},
    ]
    for node in (0, 1):  # 0 accepted its route, 1 dialed it
        t, o = bodies["theirs"][node], bodies["ours"][node]
        assert list(t["/routez"]) == list(o["/routez"])
        t_route, o_route = _client_route(t["/routez"]), _client_route(o["/routez"])
        assert list(t_route) == list(o_route) == ROUTE_KEYS
        for key in ("did_solicit", "is_configured", "ip", "compression", "remote_name"):
            assert t_route[key] == o_route[key], (node, key)
        for key in ROUTE_KEYS:
            assert type(t_route[key]) is type(o_route[key]), (node, key)
        # The varz cluster block: same keys in the same order, the same pool_size.
        assert list(t["/varz"]["cluster"]) == list(o["/varz"]["cluster"]), node
        for key in ("name", "addr", "auth_timeout", "tls_timeout", "urls"):
            if key == "urls" and node == 0:
                continue
            tv, ov = t["/varz"]["cluster"][key], o["/varz"]["cluster"][key]
            if key == "urls":
                # Their route port numbers differ, the form is the same: host:port.
                tv, ov = [u.split(":")[0] for u in tv], [u.split(":")[0] for u in ov]
            assert tv == ov, (node, key)
        assert o["/varz"]["cluster"]["pool_size"] == t["/varz"]["cluster"]["pool_size"] == 3
        # A pool of 3 and the pinned $SYS route, as nats-server's, one entry each.
        assert t["/routez"]["num_routes"] == o["/routez"]["num_routes"] == 4
        t_pinned, o_pinned = ([r for r in side["/routez"]["routes"] if "account" in r]
                              for side in (t, o))  # fmt: skip
        assert [list(r) for r in t_pinned] == [list(r) for r in o_pinned]
        assert [r["account"] for r in t_pinned] == [r["account"] for r in o_pinned] == ["$SYS"]
        # Top-level: same keys, in the same order, connect_urls included (and ours only).
        ours = [key for key in o["/varz"] if key not in VARZ_TRIONATS_ONLY]
        assert list(t["/varz"]) == ours, node
        assert (o["/varz"]["routes"], o["/varz"]["remotes"]) == (4, 1)
        assert (t["/varz"]["routes"], t["/varz"]["remotes"]) == (4, 1)
        assert len(t["/varz"]["connect_urls"]) == len(o["/varz"]["connect_urls"]) == 2
