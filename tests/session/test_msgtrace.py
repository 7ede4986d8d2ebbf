"""Message tracing (nats-server 2.11+, ADR-41): `Nats-Trace-Dest` and the events it produces.

Raw clients on real sockets: a traced message's event is read as the MSG its destination's
subscriber gets; a differential test compares it with nats-server 2.15.1's for the same
scenario, and clusters check the hop each server reports.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import trio

from tests.cluster.test_cluster import carrier
from tests.helpers import NatsServerProcess, RawClient, free_port, start_trionats
from trionats.config.load import load as load_config
from trionats.core import msgtrace
from trionats.options import ClusterOptions

TIMEOUT = 5.0

_opened: list[RawClient] = []


@pytest.fixture(autouse=True)
async def _close_raw_clients():
    yield
    for raw in _opened:
        await raw.aclose()
    _opened.clear()


async def client(port: int, name: str = "", **fields) -> RawClient:
    raw = await RawClient.connect(port)
    _opened.append(raw)
    connect = {"verbose": False, "headers": True, "name": name} | fields
    await raw.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
    before = await raw.ping_pong()
    assert b"-ERR" not in before
    return raw


def hpub(subject: str, *headers: str, payload: bytes = b"hello") -> bytes:
    head = ("NATS/1.0\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()
    return b"HPUB %s %d %d\r\n%s%s\r\n" % (subject.encode(), len(head), len(head) + len(payload),
                                         head, payload)  # fmt: skip


async def read_event(raw: RawClient) -> dict:
    """The next message `raw` gets, as a trace event."""
    line = await raw.read_line()
    assert line.startswith(b"MSG "), line
    size = int(line.split()[-1])
    body = await raw.read_exactly(size + 2)
    return json.loads(body[:-2])


async def drain(raw: RawClient) -> bytes:
    """Everything `raw` got up to now (a PING round trip as the sync point)."""
    return await raw.ping_pong()


def shape(event: dict) -> dict:
    """An event without what differs between runs and servers: times, ids, hosts, seq, and the
    order of its egresses."""
    event = json.loads(json.dumps(event))
    server = event["server"]
    for key in ("name", "id", "time", "seq", "host"):
        server[key] = "<varies>"
    for item in event["events"]:
        item["ts"] = "<ts>"
        item["cid"] = "<cid>"
    # nats-server's sublist keeps a subject's subscriptions in a Go map: in random order.
    ingress, *egresses = event["events"]
    event["events"] = [ingress, *sorted(egresses, key=lambda e: json.dumps(e, sort_keys=True))]
    return event


# --- one server (the pure tests are async only for the autouse fixture) -------------------------------------------------------------------------------


@pytest.fixture
async def trionats(nursery):
    return await start_trionats(nursery)


async def test_trace_to_subscribers_and_a_queue_group(trionats):
    a = await client(trionats.port, "sub-a")
    b = await client(trionats.port, "sub-b")
    tracer = await client(trionats.port, "tracer")
    pub = await client(trionats.port, "pub")
    await a.send(b"SUB foo 1\r\nSUB foo q 3\r\n")
    await b.send(b"SUB * 2\r\n")
    await tracer.send(b"SUB my.trace 9\r\n")
    for raw in (a, b, tracer):
        await drain(raw)
    await pub.send(hpub("foo", "Nats-Trace-Dest: my.trace"))
    event = await read_event(tracer)
    head = b"NATS/1.0\r\nNats-Trace-Dest: my.trace\r\n\r\n"
    got_a = await drain(a)
    assert got_a == b"HMSG foo 1 39 44\r\n%shello\r\nHMSG foo 3 39 44\r\n%shello\r\n" % (head, head)
    assert await drain(b) == b"HMSG foo 2 39 44\r\n%shello\r\n" % head

    assert list(event) == ["server", "request", "events"]
    server = event["server"]
    assert server["id"] == trionats.server_id and server["ver"] == "2.15.1"
    assert list(server) == ["name", "host", "id", "ver", "feature_flags", "jetstream", "flags",
                            "seq", "time"]  # fmt: skip
    assert event["request"] == {"header": {"Nats-Trace-Dest": ["my.trace"]}, "msgsize": 44}
    ingress, *egresses = event["events"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", ingress.pop("ts"))
    pub_cid = next(c.cid for c in trionats.clients.values() if c.opts.name == "pub")
    assert ingress == {"type": "in", "kind": 0, "cid": pub_cid, "name": "pub", "acc": "$G",
                       "subj": "foo"}  # fmt: skip
    cids = {c.opts.name: c.cid for c in trionats.clients.values()}
    assert [{k: v for k, v in e.items() if k != "ts"} for e in egresses] == [
        {"type": "eg", "kind": 0, "cid": cids["sub-a"], "name": "sub-a", "sub": "foo"},
        {"type": "eg", "kind": 0, "cid": cids["sub-b"], "name": "sub-b", "sub": "*"},
        {"type": "eg", "kind": 0, "cid": cids["sub-a"], "name": "sub-a", "sub": "foo", "queue": "q"},
    ]
    assert await drain(tracer) == b""  # one event


async def test_trace_only_delivers_nothing_and_reports_everything(trionats):
    a = await client(trionats.port, "sub-a")
    tracer = await client(trionats.port)
    pub = await client(trionats.port, "pub")
    await a.send(b"SUB foo 1\r\nSUB foo q 2\r\n")
    await tracer.send(b"SUB my.trace 9\r\n")
    await drain(a)
    await drain(tracer)
    await pub.send(hpub("foo", "Nats-Trace-Dest: my.trace", "Nats-Trace-Only: true")
                   + b"HPUB req reply.1 12 12\r\nNATS/1.0\r\n\r\n\r\n")  # fmt: skip
    event = await read_event(tracer)
    assert event["request"]["header"] == {"Nats-Trace-Dest": ["my.trace"],
                                          "Nats-Trace-Only": ["true"]}  # fmt: skip
    assert [(e["type"], e.get("sub"), e.get("queue"), e.get("error")) for e in event["events"]] == [
        ("in", None, None, None), ("eg", "foo", None, None), ("eg", "foo", "q", None),
    ]
    assert await drain(a) == b""
    # Counted as received; the subscriptions did not get it (an auto-unsubscribe limit of 1
    # is still to come).
    await a.send(b"UNSUB 1 1\r\n")
    await drain(a)
    await pub.send(b"PUB foo 2\r\nhi\r\n")
    await drain(pub)  # (the barrier: read by the server before `a`'s PING below)
    assert await drain(a) == b"MSG foo 1 2\r\nhi\r\nMSG foo 2 2\r\nhi\r\n"
    assert "name" not in event["events"][0] or event["events"][0]["name"] == "pub"


@pytest.mark.parametrize("value, only", [("1", True), ("ON", True), ("True", True),
                                          ("yes", False), ("false", False)])  # fmt: skip
async def test_trace_only_values(trionats, value, only):
    sub = await client(trionats.port)
    tracer = await client(trionats.port)
    pub = await client(trionats.port)
    await sub.send(b"SUB foo 1\r\n")
    await tracer.send(b"SUB t 1\r\n")
    await drain(sub)
    await drain(tracer)
    await pub.send(hpub("foo", "Nats-Trace-Dest: t", f"Nats-Trace-Only: {value}"))
    await read_event(tracer)
    assert (await drain(sub) == b"") == only


async def test_messages_without_a_trace_header_are_not_traced(trionats):
    sub = await client(trionats.port)
    tracer = await client(trionats.port)
    pub = await client(trionats.port)
    await sub.send(b"SUB foo 1\r\n")
    await tracer.send(b"SUB > 1\r\n")
    await drain(sub)
    await drain(tracer)
    await pub.send(b"PUB foo 2\r\nhi\r\n" + hpub("foo", "Other: x") + hpub("foo", "nats-trace-dest: t")
                   + hpub("foo", "Nats-Trace-Dest: trace disabled"))  # fmt: skip
    await drain(pub)
    got = await drain(tracer)
    assert got.count(b"MSG foo 1 ") == 4 and b"my.trace" not in got and b'"events"' not in got
    assert (await drain(sub)).count(b"MSG foo 1 ") == 4


async def test_an_invalid_destination(trionats):
    """Logged; the message is delivered untraced, or dropped if only a trace was asked for."""
    sub = await client(trionats.port)
    pub = await client(trionats.port)
    await sub.send(b"SUB > 1\r\n")
    await drain(sub)
    await pub.send(hpub("foo", "Nats-Trace-Dest: bad.*") + hpub("bar", "Nats-Trace-Dest: a..b",
                                                                  "Nats-Trace-Only: 1"))  # fmt: skip
    assert await drain(pub) == b""
    got = await drain(sub)
    assert got.startswith(b"HMSG foo 1 ") and b"bar" not in got and b"events" not in got


async def test_a_reserved_subject_is_reported_as_an_ingress_error(trionats):
    tracer = await client(trionats.port)
    pub = await client(trionats.port, "pub")
    await tracer.send(b"SUB t 1\r\n")
    await drain(tracer)
    await pub.send(hpub("_GR_.x", "Nats-Trace-Dest: t"))
    event = await read_event(tracer)
    assert [e.get("error") for e in event["events"]] == [
        'Permissions Violation for Publish to "_GR_.x"'
    ]
    assert await drain(pub) == b"-ERR 'Permissions Violation for Publish to \"_GR_.x\"'\r\n"


async def test_no_echo_is_an_egress_error(trionats):
    tracer = await client(trionats.port)
    pub = await client(trionats.port, "pub", echo=False)
    await pub.send(b"SUB foo 1\r\n")
    await tracer.send(b"SUB t 1\r\n")
    await drain(tracer)
    await pub.send(hpub("foo", "Nats-Trace-Dest: t"))
    event = await read_event(tracer)
    assert event["events"][1]["error"] == msgtrace.NO_ECHO
    assert await drain(pub) == b""


async def test_no_responders_is_not_sent_for_a_trace_only_request(trionats):
    sub = await client(trionats.port)
    tracer = await client(trionats.port)
    pub = await client(trionats.port, no_responders=True)
    await sub.send(b"SUB req 1\r\n")
    await tracer.send(b"SUB t 1\r\n")
    await pub.send(b"SUB inbox 1\r\n")
    await drain(sub)
    await drain(tracer)
    head = b"NATS/1.0\r\nNats-Trace-Dest: t\r\nNats-Trace-Only: true\r\n\r\n"
    await pub.send(b"HPUB req inbox %d %d\r\n%s\r\n" % (len(head), len(head), head))
    await read_event(tracer)
    assert await drain(pub) == b""


async def test_set_header_replaces_the_key_and_keeps_the_rest():
    data = b"NATS/1.0\r\nA: 1\r\nNats-Trace-Hop: 9\r\nB: 2\r\n\r\npayload\r\n"
    size, out = msgtrace.set_header(data.index(b"payload"), data, "Nats-Trace-Hop", "1.2")
    assert out == b"NATS/1.0\r\nA: 1\r\nB: 2\r\nNats-Trace-Hop: 1.2\r\n\r\npayload\r\n"
    assert size == out.index(b"payload")


async def test_trace_headers_as_nats_server_lifts_them():
    header = b"NATS/1.0\r\nNats-Trace-Dest:  t  \r\nX: 1\r\nX: 2\r\nEmpty:\r\n:novalue\r\n\r\n"
    assert msgtrace.trace_headers(header) == {"Nats-Trace-Dest": ["t"], "X": ["1", "2"]}
    assert msgtrace.trace_headers(b"NATS/1.0 503\r\nNats-Trace-Dest: t\r\n\r\n") is None
    assert msgtrace.trace_headers(b"NATS/1.0\r\ntraceparent: 00-a-b-01\r\n\r\n") is None


# --- against nats-server ----------------------------------------------------------------------


async def _scenario(port: int) -> tuple[dict, dict, bytes]:
    """Two subscribers and a queue group, a traced message and a trace-only one."""
    a = await client(port, "sub-a")
    b = await client(port, "sub-b")
    tracer = await client(port, "tracer")
    pub = await client(port, "pub", echo=False)
    await a.send(b"SUB foo 1\r\nSUB foo q 3\r\n")
    await b.send(b"SUB * 2\r\n")
    await pub.send(b"SUB foo 7\r\n")
    await tracer.send(b"SUB my.trace 9\r\n")
    for raw in (a, b, tracer, pub):
        await drain(raw)
    await pub.send(hpub("foo", "Nats-Trace-Dest: my.trace", "X-Other: 1", payload=b"x" * 20))
    first = await read_event(tracer)
    await pub.send(hpub("foo", "Nats-Trace-Dest: my.trace", "Nats-Trace-Only: on"))
    second = await read_event(tracer)
    delivered = await drain(a) + b"|" + await drain(b) + b"|" + await drain(pub)
    return first, second, delivered


async def on_both(nursery, scenario, conf=None):
    """`scenario(port)` against trionats, then against nats-server: (ours, theirs). With
    `conf`, nats-server runs that file and trionats its `authorization` block."""
    overrides = {} if conf is None else {"authorization": load_config(conf).authorization}
    server = await start_trionats(nursery, **overrides)
    ours = await scenario(server.port)
    reference = NatsServerProcess(*(() if conf is None else ("-c", str(conf))))
    try:
        theirs = await scenario(reference.port)
    finally:
        reference.stop()
    return ours, theirs


async def test_events_match_nats_server(nursery):
    ours, theirs = await on_both(nursery, _scenario)
    for mine, its in zip(ours[:2], theirs[:2]):
        assert shape(mine) == shape(its)
    assert ours[2] == theirs[2]


async def _legacy(port: int) -> bytes:
    """A message with the pre-2.11 `Nats-Trace-Origin-Account` header: not traced, and the
    servers after this one are told so."""
    sub = await client(port)
    await sub.send(b"SUB > 1\r\n")
    await drain(sub)
    pub = await client(port)
    await pub.send(hpub("foo", "Nats-Trace-Dest: t", "Nats-Trace-Origin-Account: A", "X: 1")
                   + hpub("bar", "Nats-Trace-Dest: t", "Nats-Trace-Origin-Account: A",
                          "Nats-Trace-Only: true"))  # fmt: skip
    await drain(pub)  # the server has read both messages before the subscriber's PING
    return await drain(sub)


async def test_a_legacy_origin_account_header_matches_nats_server(nursery):
    ours, theirs = await on_both(nursery, _legacy)
    assert ours == theirs
    assert ours.endswith(b"X: 1\r\nNats-Trace-Dest: trace disabled\r\n\r\nhello\r\n")


PERMISSIONS_CONF = """
authorization {
  users = [
    { user: p, password: p, permissions: { publish: ["foo", "ok.trace"], subscribe: ">" } }
    { user: t, password: t }
  ]
}
"""


async def _refusals(port: int) -> tuple[bytes, list]:
    """A client whose publish permissions allow `foo` and `ok.trace` only: what it is told,
    and the events of a destination it may not publish to and of a subject it may not."""
    tracer = await client(port, user="t", **{"pass": "t"})
    pub = await client(port, "pub", user="p", **{"pass": "p"})
    await tracer.send(b"SUB *.trace 1\r\n")
    await drain(tracer)
    await pub.send(hpub("foo", "Nats-Trace-Dest: bad.trace") + hpub("bar", "Nats-Trace-Dest: ok.trace"))
    event = await read_event(tracer)
    told = await drain(pub)
    assert await drain(tracer) == b""
    return told, shape(event)["events"]


async def test_refusals_match_nats_server(nursery, tmp_path):
    path = tmp_path / "auth.conf"
    path.write_text(PERMISSIONS_CONF)
    ours, theirs = await on_both(nursery, _refusals, path)
    assert ours == theirs
    assert ours[0] == (b"-ERR 'Permissions Violation for Publish to \"bad.trace\"'\r\n"
                       b"-ERR 'Permissions Violation for Publish to \"bar\"'\r\n")  # fmt: skip
    assert ours[1][0]["error"] == 'Permissions Violation for Publish to "bar"'


# --- clusters -------------------------------------------------------------------------------


def _cluster(*routes: int, port: int = -1) -> ClusterOptions:
    urls = tuple(f"nats-route://127.0.0.1:{p}" for p in routes)
    return ClusterOptions(name="C", host="127.0.0.1", port=port, routes=urls)


async def _wait(condition) -> None:
    with trio.fail_after(TIMEOUT):
        while not condition():
            await trio.sleep(0.01)


async def _routed_pair(nursery):
    a = await start_trionats(nursery, cluster=_cluster(), server_name="A")
    b = await start_trionats(nursery, cluster=_cluster(a.cluster.port), server_name="B")
    await _wait(lambda: carrier(a, b) and carrier(b, a))  # (the pools' $G connections up)
    return a, b


def _interest(server, subject: bytes) -> bool:
    result = server.sublist.match(subject)
    return any(s.client.is_route for s in list(result.psubs) + [s for g in result.qsubs for s in g])


@pytest.mark.parametrize("only", [False, True])
async def test_a_routed_trace_reports_both_servers(nursery, only):
    a, b = await _routed_pair(nursery)
    sub = await client(b.port, "far")
    tracer = await client(a.port, "tracer")
    pub = await client(a.port, "pub")
    await sub.send(b"SUB foo 1\r\n")
    await drain(sub)
    await _wait(lambda: _interest(a, b"foo"))
    await tracer.send(b"SUB my.trace 1\r\n")
    await drain(tracer)
    await _wait(lambda: _interest(b, b"my.trace"))
    headers = ["Nats-Trace-Dest: my.trace"] + (["Nats-Trace-Only: true"] if only else [])
    await pub.send(hpub("foo", *headers))
    events = [await read_event(tracer), await read_event(tracer)]
    by_server = {e["server"]["name"]: e for e in events}
    here, there = by_server["A"], by_server["B"]
    assert here["hops"] == 1 and "hops" not in there
    assert here["server"]["cluster"] == "C"
    route_a = carrier(a, b)  # (the pool connection carrying $G)
    assert here["events"][1:] == [{"type": "eg", "ts": here["events"][1]["ts"], "kind": 1,
                                   "cid": route_a.cid, "name": "B", "hop": "1"}]  # fmt: skip
    assert there["request"]["header"]["Nats-Trace-Hop"] == ["1"]
    ingress, egress = there["events"]
    assert (ingress["kind"], ingress["name"], ingress["subj"]) == (1, "A", "foo")
    assert (egress["kind"], egress["name"], egress["sub"]) == (0, "far", "foo")
    got = await drain(sub)
    if only:
        assert got == b""
    else:
        assert got.startswith(b"HMSG foo 1 ") and b"Nats-Trace-Hop: 1\r\n" in got


async def test_a_peer_without_tracing_is_reported(nursery):
    """A route peer at protocol 2 (older servers) is told nothing of a trace-only message."""
    a, b = await _routed_pair(nursery)
    route = carrier(a, b)
    route.remote_info = route.remote_info | {"proto": 2}
    sub = await client(b.port)
    tracer = await client(a.port)
    pub = await client(a.port)
    await sub.send(b"SUB foo 1\r\n")
    await drain(sub)
    await _wait(lambda: _interest(a, b"foo"))
    await tracer.send(b"SUB t 1\r\n")
    await drain(tracer)
    await pub.send(hpub("foo", "Nats-Trace-Dest: t", "Nats-Trace-Only: true"))
    event = await read_event(tracer)
    assert event["events"][1]["error"] == msgtrace.ONLY_NO_SUPPORT
    await pub.send(hpub("foo", "Nats-Trace-Dest: t"))
    event = await read_event(tracer)
    assert event["events"][1]["error"] == msgtrace.NO_SUPPORT
    got = await drain(sub)
    assert got.count(b"HMSG foo 1 ") == 1 and b"Nats-Trace-Hop" not in got


async def test_a_trace_across_a_nats_server_route(nursery):
    """trionats and nats-server in one cluster: each reports its own part of the path."""
    port = free_port()
    a = await start_trionats(nursery, cluster=_cluster(port), server_name="A")
    reference = NatsServerProcess("--cluster", f"nats://127.0.0.1:{port}", "--cluster_name", "C",
                                  "--server_name", "N")  # fmt: skip
    try:
        await _wait(lambda: a.cluster.routes)
        sub = await client(reference.port, "far")
        tracer = await client(a.port)
        pub = await client(a.port)
        await sub.send(b"SUB foo 1\r\n")
        await drain(sub)
        await _wait(lambda: _interest(a, b"foo"))
        await tracer.send(b"SUB t 1\r\n")
        await drain(tracer)
        await trio.sleep(0.2)  # (nats-server's interest in t)
        await pub.send(hpub("foo", "Nats-Trace-Dest: t", "Nats-Trace-Only: true"))
        events = [await read_event(tracer), await read_event(tracer)]
        assert await drain(sub) == b""
        # The other way: nats-server forwards a trace-only message to trionats (protocol 3).
        near = await client(a.port, "near")
        await near.send(b"SUB bar 1\r\n")
        await drain(near)
        far_pub = await client(reference.port)
        await trio.sleep(0.2)  # (nats-server's interest in bar)
        await far_pub.send(hpub("bar", "Nats-Trace-Dest: t", "Nats-Trace-Only: true"))
        back = [await read_event(tracer), await read_event(tracer)]
        assert await drain(near) == b""
    finally:
        reference.stop()
    by_server = {e["server"]["name"]: e for e in events}
    assert by_server["A"]["events"][1]["hop"] == "1"
    ingress, egress = by_server["N"]["events"]
    assert (ingress["kind"], ingress["name"]) == (1, "A")
    assert (egress["name"], egress["sub"]) == ("far", "foo")
    by_server = {e["server"]["name"]: e for e in back}
    assert [(e["kind"], e.get("hop"), e.get("error")) for e in by_server["N"]["events"][1:]] == [
        (1, "1", None)
    ]
    assert by_server["A"]["request"]["header"]["Nats-Trace-Hop"] == ["1"]
    ingress, egress = by_server["A"]["events"]
    assert (ingress["kind"], ingress["name"], egress["name"]) == (1, "N", "near")


ACCOUNTS_CONF = """
accounts { A { users: [ { user: a, password: a } ] } }
authorization { users: [ { user: g, password: g } ] }
"""


async def test_an_event_is_published_in_the_traced_messages_account(nursery, tmp_path):
    """As nats-server sends it from the account's internal client: the ingress names the
    account, and the event reaches the destination's subscribers of that account only."""
    path = tmp_path / "accounts.conf"
    path.write_text(ACCOUNTS_CONF)
    options = load_config(path)
    server = await start_trionats(nursery, accounts=options.accounts,
                                  authorization=options.authorization)  # fmt: skip
    in_a = await client(server.port, user="a", **{"pass": "a"})
    in_g = await client(server.port, user="g", **{"pass": "g"})
    for raw in (in_a, in_g):
        await raw.send(b"SUB t 1\r\n")
        await drain(raw)
    pub = await client(server.port, "pub", user="a", **{"pass": "a"})
    await pub.send(hpub("foo", "Nats-Trace-Dest: t"))
    event = await read_event(in_a)
    assert event["events"][0]["acc"] == "A"
    await drain(pub)
    assert await drain(in_g) == b""


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"NATS/1.0\r\n", b"Nats-Trace-Dest", b"Nats-Trace-Only", b":",
                                 b" ", b"\t", b"\r\n", b"true", b"t.1", b"a..b", b"_GR_.x",
                                 b"\xff", b"\\ud800", b"Nats-Trace-Hop", b"trace disabled",
                                 b"Nats-Trace-Origin-Account"]), max_size=30),
       st.binary(max_size=20))  # fmt: skip
async def test_any_header_block_is_read_without_error(pieces, payload):
    """A peer's header block, fuzzed: reading it for a trace never raises, whatever it holds."""
    header = b"".join(pieces)
    data = header + payload + b"\r\n"

    class Source:
        is_route = False
        cid = 1
        opts = None

    msgtrace.trace_headers(header)
    msgtrace.open_trace(Source(), b"foo", len(header), data, None)
