"""The system account's request handlers (issue 14, item 3, on one server): the internal
client (system.py) answering `$SYS.REQ.SERVER.PING[.<endpoint>]`, `$SYS.REQ.SERVER.<id>.*`
and `$SYS.REQ.ACCOUNT.<account>.CONNZ|SUBSZ`, in nats-server's JSON shapes."""

from __future__ import annotations

import asyncio
import json

import nats
import nats.errors
import pytest
import trio

from tests.clients.test_nats_py import connect as nats_connect
from tests.clients.test_nats_py import run as run_nats_py
from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess, start_trionats
from trionats import defaults
from trionats.config.load import options_from_conf
from trionats.config.natsconf import parse
from trionats.system import SystemClient

CONF = """
server_name: N1
accounts {
  SYS { users: [ { user: sys, password: sys } ] }
  A { users: [ { user: a, password: a } ] }
}
system_account: SYS
"""

SERVER_INFO_KEYS = ["name", "host", "id", "ver", "feature_flags", "jetstream", "flags", "seq",
                    "time"]  # fmt: skip


async def start(nursery, text: str = CONF, **fields):
    loaded = options_from_conf(parse(text, filename="node.conf"))
    return await start_trionats(
        nursery, server_name=loaded.server_name, accounts=loaded.accounts,
        system_account=loaded.system_account, no_system_account=loaded.no_system_account,
        **fields,
    )  # fmt: skip


async def connected(server, user: str) -> RawClient:
    raw = await RawClient.connect(server.port)
    connect = {"verbose": False, "headers": True, "user": user, "pass": user}
    await raw.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    return raw


async def read_msg(raw: RawClient) -> tuple[bytes, dict]:
    """The next MSG: its line, and its payload as JSON."""
    line = await raw.read_line()
    size = int(line.split()[-1])
    data = await raw.read_exactly(size + 2)
    return line, json.loads(data[:-2])


def pub(subject: str, payload: bytes, reply: str = "inbox") -> bytes:
    return f"PUB {subject} {reply} {len(payload)}\r\n".encode() + payload + b"\r\n"


# --- in-process: the internal client and the answers ----------------------------------------


async def test_ping_is_answered_with_server_stats(nursery):
    server = await start(nursery)
    raw = await connected(server, "sys")
    await raw.send(b"SUB inbox 1\r\nPUB $SYS.REQ.SERVER.PING inbox 0\r\n\r\n")
    line, body = await read_msg(raw)
    assert line.startswith(b"MSG inbox 1 ")
    assert list(body) == ["server", "statsz"]
    info = body["server"]
    assert list(info) == SERVER_INFO_KEYS
    assert (info["name"], info["id"], info["ver"]) == ("N1", server.server_id, "2.15.1")
    statsz = body["statsz"]
    # As nats-server: the request is received, its delivery to the internal client not sent.
    assert statsz["received"] == {"msgs": 1, "bytes": 0}
    assert statsz["sent"] == {"msgs": 0, "bytes": 0}
    assert statsz["connections"] == 1 and statsz["active_accounts"] == 1
    await raw.aclose()


async def test_every_endpoint_by_ping_and_by_server_id(nursery):
    server = await start(nursery)
    raw = await connected(server, "sys")
    await raw.send(b"SUB inbox 1\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    firsts = {"VARZ": "server_id", "CONNZ": "server_id", "ROUTEZ": "server_id",
              "SUBSZ": "server_id", "HEALTHZ": "status", "ACCOUNTZ": "server_id"}  # fmt: skip
    for prefix in ("$SYS.REQ.SERVER.PING", f"$SYS.REQ.SERVER.{server.server_id}"):
        for name, first in firsts.items():
            await raw.send(f"PUB {prefix}.{name} inbox 0\r\n\r\n".encode())
            _, body = await read_msg(raw)
            assert list(body) == ["server", "data"], name
            assert next(iter(body["data"])) == first, name
        await raw.send(f"PUB {prefix}.IDZ inbox 0\r\n\r\n".encode())
        _, body = await read_msg(raw)
        assert body == {"name": "N1", "host": "127.0.0.1", "id": server.server_id}
        await raw.send(f"PUB {prefix}.STATSZ inbox 0\r\n\r\n".encode())
        _, body = await read_msg(raw)
        assert list(body) == ["server", "statsz"]
    await raw.aclose()


async def test_request_options_and_errors(nursery):
    server = await start(nursery)
    raw = await connected(server, "sys")
    await raw.send(b"SUB inbox 1\r\nSUB foo 2\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    await raw.send(pub("$SYS.REQ.SERVER.PING.CONNZ", b'{"subscriptions":true}'))
    _, body = await read_msg(raw)
    (conn,) = body["data"]["connections"]
    assert sorted(conn["subscriptions_list"]) == ["foo", "inbox"]
    await raw.send(pub("$SYS.REQ.SERVER.PING.SUBSZ", b"{bad"))
    _, body = await read_msg(raw)
    assert list(body) == ["server", "error"] and body["error"]["code"] == 400
    # A filter naming another server: this one stays silent.
    await raw.send(pub("$SYS.REQ.SERVER.PING.IDZ", b'{"server_name":"other"}'))
    await raw.send(pub("$SYS.REQ.SERVER.PING.IDZ", b'{"server_name":"N"}'))
    _, body = await read_msg(raw)  # (a substring matches unless exact_match)
    assert body["name"] == "N1"
    await raw.expect_nothing(0.2)
    await raw.aclose()


HOSTILE_BODIES = [
    b"[" * 20000,  # nesting far past Python's recursion limit
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b'{"server_name":5}',
    b'{"exact_match":"yes"}',
    b'{"tags":"x"}',
    b'{"tags":[1]}',
    b'{"state":[1]}',
    b'{"limit":{"a":1}}',
    b'{"server_name":"\\ud800x"}',  # a lone surrogate: Go reads U+FFFD, no server matches
    b"\xff\xfe{",
    b"1e999999",
    b'"str"',
]
#: Bodies after which this server stays silent: a filter it does not match (nats-server too).
SILENT = {HOSTILE_BODIES.index(b'{"server_name":"\\ud800x"}')}


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
async def test_a_hostile_request_body_gets_an_error_reply(nursery, body):
    """A request body is a peer's JSON: read with a bounded depth and Go's types; whatever Go's
    decoder refuses gets the 400 (or 500) error envelope, never an internal error, and the
    server keeps answering."""
    server = await start(nursery)
    raw = await connected(server, "sys")
    await raw.send(b"SUB inbox 1\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    await raw.send(pub("$SYS.REQ.SERVER.PING.CONNZ", body))
    if HOSTILE_BODIES.index(body) not in SILENT:
        _, answer = await read_msg(raw)
        assert list(answer) in (["server", "error"], ["server", "data"])
        if "error" in answer:
            assert answer["error"]["code"] in (400, 500)
    await raw.send(pub("$SYS.REQ.SERVER.PING.IDZ", b""))
    _, answer = await read_msg(raw)
    assert answer["name"] == "N1"
    assert server.stats.internal_errors == 0
    await raw.aclose()


async def test_account_endpoints(nursery):
    server = await start(nursery)
    a = await connected(server, "a")
    await a.send(b"SUB foo.x 5\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    raw = await connected(server, "sys")
    await raw.send(b"SUB inbox 1\r\nPUB $SYS.REQ.ACCOUNT.A.CONNZ inbox 0\r\n\r\n")
    _, body = await read_msg(raw)
    assert body["data"]["num_connections"] == 1
    await raw.send(b"PUB $SYS.REQ.ACCOUNT.A.SUBSZ inbox 0\r\n\r\n")
    _, body = await read_msg(raw)
    assert [s["subject"] for s in body["data"]["subscriptions_list"]] == ["foo.x"]
    await raw.send(b"PUB $SYS.REQ.ACCOUNT.A.JSZ inbox 0\r\n\r\nPING\r\n")  # not served
    await raw.expect(b"PONG\r\n")
    await raw.expect_nothing(0.2)
    for client in (a, raw):
        await client.aclose()


async def test_runs_and_headers_reach_the_internal_client(nursery):
    """Identical PUBs in one read are delivered as a run (the inbox's `write`), HPUB as HMSG."""
    server = await start(nursery)
    raw = await connected(server, "sys")
    await raw.send(b"SUB inbox 1\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    await raw.send(b"PUB $SYS.REQ.SERVER.PING.IDZ inbox 0\r\n\r\n" * 3
                   + b"HPUB $SYS.REQ.SERVER.PING.IDZ inbox 12 12\r\nNATS/1.0\r\n\r\n\r\n")  # fmt: skip
    for _ in range(4):
        _, body = await read_msg(raw)
        assert body["id"] == server.server_id
    await raw.aclose()


async def test_other_accounts_do_not_reach_the_system_services(nursery):
    server = await start(nursery)
    raw = await connected(server, "a")
    await raw.send(b'CONNECT {"verbose":false,"headers":true,"no_responders":true,'
                   b'"user":"a","pass":"a"}\r\nSUB inbox 1\r\n'
                   b"HPUB $SYS.REQ.SERVER.PING inbox 0 0\r\n\r\n")  # fmt: skip
    line = await raw.read_line()
    assert line.startswith(b"HMSG inbox 1 ")  # the 503 no-responders status
    await raw.aclose()


async def test_no_system_account_has_no_internal_client(nursery):
    server = await start(nursery, "accounts { A { users: [ { user: a, password: a } ] } }\n")
    assert server.system.subscriptions  # $SYS by default
    server2 = await start_trionats(nursery, no_system_account=True)
    assert server2.system.subscriptions == [] and server2.system.dispatch is None
    raw = await RawClient.connect(server2.port)  # (no events to send, none sent)
    await raw.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    await raw.expect(b"PONG\r\n")
    await raw.aclose()


async def test_internal_subscriptions_are_not_counted_or_listed(nursery):
    server = await start(nursery)
    sublist = server.accounts["SYS"].sublist
    assert sublist.count == 0 and len(sublist.subscriptions()) == 29
    assert server.system.client.cid is None  # not a connection: never in /connz


def test_the_internal_client_takes_messages_as_the_core_hands_them():
    got = []

    class Services:
        server = None

        def on_request(self, *message):
            got.append(message)

    client = SystemClient(Services())
    for message in ((b"a.b", b"r.1", -1, b"hello\r\n"), (b"a.b", b"", 12, b"NATS/1.0\r\n\r\nhi\r\n"),
                    (b"x", b"rr", -1, b"ab\r\n"), (b"x", b"rr", 0, b"cd\r\n"),
                    (b"y", b"", 12, b"NATS/1.0\r\n\r\nhi\r\n")):  # fmt: skip
        assert client.deliver(*message, None) == 1
    assert got == [
        (b"a.b", b"r.1", b"", b"hello"),
        (b"a.b", b"", b"NATS/1.0\r\n\r\n", b"hi"),
        (b"x", b"rr", b"", b"ab"),
        (b"x", b"rr", b"", b"cd"),
        (b"y", b"", b"NATS/1.0\r\n\r\n", b"hi"),
    ]


# --- nats-py: `nats server list`'s request ---------------------------------------------------


@pytest.mark.interop
def test_nats_py_server_ping_lists_one_server(tmp_path):
    path = tmp_path / "node.conf"
    path.write_text(CONF)

    async def ping(url: str) -> list[dict]:
        nc = await nats_connect(url, user="sys", password="sys")
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$SYS.REQ.SERVER.PING", b"", reply=inbox)
        replies = []
        try:
            while True:
                replies.append(json.loads((await sub.next_msg(timeout=0.5)).data))
        except nats.errors.TimeoutError:
            pass
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("$SYS.REQ.SERVER.PING.NOSUCH", b"", timeout=1)
        return replies

    with TrionatsProcess("-c", str(path)) as ours:
        (reply,) = run_nats_py(ping(ours.url))
    assert reply["server"]["name"] == "N1" and reply["server"]["ver"] == defaults.COMPAT_VERSION


# --- differential: the same requests to nats-server ------------------------------------------

REQUESTS = (
    ("$SYS.REQ.SERVER.PING", b""),
    ("$SYS.REQ.SERVER.PING.STATSZ", b""),
    ("$SYS.REQ.SERVER.PING.IDZ", b""),
    ("$SYS.REQ.SERVER.PING.VARZ", b""),
    ("$SYS.REQ.SERVER.PING.CONNZ", b'{"subscriptions":true}'),
    ("$SYS.REQ.SERVER.PING.CONNZ", b'{"acc":"A","auth":true}'),
    ("$SYS.REQ.SERVER.PING.SUBSZ", b""),
    ("$SYS.REQ.SERVER.PING.ROUTEZ", b""),
    ("$SYS.REQ.SERVER.PING.HEALTHZ", b""),
    ("$SYS.REQ.SERVER.PING.ACCOUNTZ", b""),
    ("$SYS.REQ.SERVER.PING.GATEWAYZ", b""),
    ("$SYS.REQ.SERVER.PING.LEAFZ", b""),
    ("$SYS.REQ.SERVER.PING.JSZ", b""),
    ("$SYS.REQ.SERVER.PING.ACCOUNTZ", b'{"account":"A"}'),
    ("$SYS.REQ.SERVER.PING.CONNZ", b"{bad"),
    ("$SYS.REQ.ACCOUNT.A.CONNZ", b""),
)

#: Keys whose presence differs for reasons of their own (docs/differences.md): trionats's
#: varz has `internal_errors`; accountz details list nats-server's system imports.
_OWN_KEYS = {"internal_errors", "imports", "jetstream"}


def _shape(value):
    """The keys of every object, in order, down the tree (lists: their first item's)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in _OWN_KEYS}
    if isinstance(value, list):
        return [_shape(value[0])] if value and isinstance(value[0], dict) else []
    return None


@pytest.mark.interop
def test_answers_have_nats_servers_shapes(tmp_path):
    path = tmp_path / "node.conf"
    path.write_text(CONF)

    async def ask(url: str) -> list[dict]:
        nc = await nats_connect(url, user="sys", password="sys")
        a = await nats_connect(url, user="a", password="a")
        await a.subscribe("foo.x")
        await a.flush()
        answers = []
        for subject, body in REQUESTS:
            answers.append(json.loads((await nc.request(subject, body, timeout=2)).data))
        return answers

    with NatsServerProcess("-c", str(path)) as theirs, TrionatsProcess("-c", str(path)) as ours:
        expected = run_nats_py(ask(theirs.url))
        got = run_nats_py(ask(ours.url))
    for (subject, body), t, o in zip(REQUESTS, expected, got, strict=True):
        assert _shape(t) == _shape(o), (subject, body, t, o)
    # The first PING's figures: the request received, nothing sent yet (both servers).
    assert expected[0]["statsz"]["received"]["msgs"] == got[0]["statsz"]["received"]["msgs"] == 1
    assert expected[0]["statsz"]["sent"] == got[0]["statsz"]["sent"] == {"msgs": 0, "bytes": 0}


# --- events ---------------------------------------------------------------------------------


async def test_connect_and_disconnect_events(nursery):
    server = await start(nursery)
    sys_client = await connected(server, "sys")
    await sys_client.send(b"SUB $SYS.ACCOUNT.> 9\r\nPING\r\n")
    await sys_client.expect(b"PONG\r\n")
    a = await connected(server, "a")
    line, connect = await read_msg(sys_client)
    assert line.startswith(b"MSG $SYS.ACCOUNT.A.CONNECT 9 ")
    assert connect["type"] == "io.nats.server.advisory.v1.client_connect"
    assert list(connect) == ["type", "id", "timestamp", "server", "client"]
    client = connect["client"]
    assert list(client) == ["start", "host", "id", "acc", "user", "name_tag", "kind",
                            "client_type"]  # fmt: skip
    assert (client["acc"], client["user"], client["kind"]) == ("A", "a", "Client")
    await a.send(b"PUB nowhere 2\r\nhi\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    await a.aclose()
    line, disconnect = await read_msg(sys_client)
    assert line.startswith(b"MSG $SYS.ACCOUNT.A.DISCONNECT 9 ")
    assert list(disconnect) == ["type", "id", "timestamp", "server", "client", "sent",
                                "received", "reason"]  # fmt: skip
    assert disconnect["client"]["start"] == client["start"]
    assert disconnect["sent"] == {"msgs": 1, "bytes": 2}  # what the client published
    assert disconnect["server"]["seq"] == connect["server"]["seq"] + 1
    await sys_client.aclose()


@pytest.mark.interop
def test_events_have_nats_servers_shapes(tmp_path):
    path = tmp_path / "node.conf"
    path.write_text(CONF)

    async def events(url: str) -> dict:
        nc = await nats_connect(url, user="sys", password="sys")
        got = {}

        async def note(msg):
            got[msg.subject.rsplit(".", 1)[1]] = json.loads(msg.data)

        await nc.subscribe("$SYS.ACCOUNT.A.*", cb=note)
        await nc.flush()
        a = await nats.connect(url, user="a", password="a", name="ca", allow_reconnect=False)
        await a.subscribe("x")
        await a.publish("x", b"hello")
        await a.flush()
        await a.close()
        for _ in range(50):
            if "DISCONNECT" in got:
                break
            await asyncio.sleep(0.05)
        return got

    with NatsServerProcess("-c", str(path)) as theirs, TrionatsProcess("-c", str(path)) as ours:
        expected = run_nats_py(events(theirs.url))
        got = run_nats_py(events(ours.url))
    for name in ("CONNECT", "DISCONNECT"):
        assert _shape(expected[name]) == _shape(got[name]), name
    for key in ("sent", "received"):
        assert expected["DISCONNECT"][key] == got["DISCONNECT"][key] == {"msgs": 1, "bytes": 5}


async def test_shutdown_event_is_the_last_system_message(nursery):
    server = await start(nursery)
    raw = await connected(server, "sys")
    await raw.send(b"SUB $SYS.SERVER.*.SHUTDOWN 1\r\nSUB $SYS.ACCOUNT.> 2\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    server.shutdown()
    line, body = await read_msg(raw)
    assert line.startswith(f"MSG $SYS.SERVER.{server.server_id}.SHUTDOWN 1 ".encode())
    assert list(body) == SERVER_INFO_KEYS and body["id"] == server.server_id
    assert await raw.read_exactly_or_eof(1, 5) == b""  # closed: no disconnect events after it
    await raw.aclose()


async def test_lame_duck_event(nursery):
    server = await start(nursery, lame_duck_duration=30, lame_duck_grace_period=0)
    raw = await connected(server, "sys")
    await raw.send(b"SUB $SYS.SERVER.*.LAMEDUCK 1\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    server.enter_lame_duck()
    line, body = await read_msg(raw)
    assert line.startswith(f"MSG $SYS.SERVER.{server.server_id}.LAMEDUCK 1 ".encode())
    assert body["name"] == "N1"
    await raw.aclose()
    server.shutdown()


async def test_statsz_heartbeats_while_subscribed(nursery):
    server = await start(nursery)
    raw = await connected(server, "sys")
    await raw.send(b"SUB $SYS.SERVER.*.STATSZ 1\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    line, body = await read_msg(raw)  # the first after STATSZ_FIRST_INTERVAL (0.25 s)
    assert line.startswith(f"MSG $SYS.SERVER.{server.server_id}.STATSZ 1 ".encode())
    assert list(body) == ["server", "statsz"] and body["statsz"]["connections"] == 1
    matches = server.accounts["SYS"].sublist.matches
    server.system.heartbeat()  # (interest is looked up once per change of subscriptions)
    await read_msg(raw)
    assert server.accounts["SYS"].sublist.matches == matches
    await raw.aclose()


async def test_monitoring_reads_the_system_account(nursery):
    """/accountz, /accstatz and /subsz of the system account read past its internal client."""
    server = await start(nursery, http_host="127.0.0.1", http_port=-1)
    raw = await connected(server, "sys")
    await raw.send(b"SUB inbox 1\r\nPUB $SYS.REQ.SERVER.PING.IDZ inbox 0\r\n\r\n")
    _, body = await read_msg(raw)
    assert body["id"] == server.server_id
    port = server.monitor.port
    for target in ("/accountz?acc=SYS", "/accstatz?unused=1", "/subsz?acc=SYS&subs=1"):
        async with await trio.open_tcp_stream("127.0.0.1", port) as http:
            await http.send_all(f"GET {target} HTTP/1.0\r\n\r\n".encode())
            response = b""
            while chunk := await http.receive_some():
                response += chunk
        assert response.startswith(b"HTTP/1.1 200"), (target, response)
        assert b"$SYS.REQ" not in response  # internal subscriptions are not listed
    await raw.aclose()


# --- the system services every account imports ----------------------------------------------

IMPORTS_CONF = """
server_name: N1
accounts {
  SYS { users: [ { user: sys, password: sys } ] }
  A {
    users: [
      { user: a, password: a, permissions: {
          publish: { allow: ["foo.>", "$SYS.REQ.>", "_INBOX.>"], deny: ["foo.secret"] },
          subscribe: { allow: ["_INBOX.>", "q.* workers"], deny: ["bar"] },
          allow_responses: { max: 3, expires: "2s" } } }
      { user: b, password: b }
    ]
  }
}
system_account: SYS
"""

#: (user, subject): what each user asks, as `nats account info` and friends do.
IMPORTED = (
    ("a", "$SYS.REQ.USER.INFO"),
    ("b", "$SYS.REQ.USER.INFO"),
    ("sys", "$SYS.REQ.USER.INFO"),
    ("sys", "$SYS.REQ.USER.A.INFO"),  # asked directly: no requester to describe
    ("a", "$SYS.REQ.ACCOUNT.PING.CONNZ"),
    ("b", "$SYS.REQ.SERVER.PING.CONNZ"),
    ("a", "$SYS.REQ.ACCOUNT.PING.STATZ"),
    ("sys", "$SYS.REQ.ACCOUNT.PING.STATZ"),
)


def _account_view(subject: str, data: dict) -> dict:
    """What must agree, ids and times aside."""
    if "USER" in subject:
        return data
    if "CONNZ" in subject:
        return {"num_connections": data["num_connections"],
                "users": sorted(c.get("authorized_user", "") for c in data["connections"] or ())}
    return {"accounts": sorted((a["acc"], a["conns"]) for a in data["account_statz"])}


@pytest.mark.interop
def test_every_account_reaches_the_system_services_it_imports(tmp_path):
    path = tmp_path / "node.conf"
    path.write_text(IMPORTS_CONF)

    async def ask(url: str) -> list:
        clients = {user: await nats_connect(url, user=user, password=user)
                   for user in ("a", "b", "sys")}  # fmt: skip
        answers = []
        for user, subject in IMPORTED:
            body = b'{"auth":true}' if "CONNZ" in subject else b""
            answer = json.loads((await clients[user].request(subject, body, timeout=5)).data)
            answers.append((list(answer), _account_view(subject, answer["data"])))
        for nc in clients.values():
            await nc.close()
        return answers

    with NatsServerProcess("-c", str(path)) as theirs, TrionatsProcess("-c", str(path)) as ours:
        expected = run_nats_py(ask(theirs.url))
        got = run_nats_py(ask(ours.url))
    for (user, subject), t, o in zip(IMPORTED, expected, got, strict=True):
        if "permissions" in t[1]:  # (nats-server lists them in its sublist's order)
            for kind in t[1]["permissions"].values():
                for key in ("allow", "deny"):
                    if isinstance(kind, dict) and key in kind:
                        kind[key].sort()
        assert t == o, (user, subject)
    assert got[0][1]["permissions"]["responses"] == {"max": 3, "ttl": 2_000_000_000}


async def test_user_info_of_a_requester(nursery):
    server = await start(nursery, IMPORTS_CONF)
    a = await connected(server, "a")
    await a.send(b"SUB _INBOX.1 1\r\nPUB $SYS.REQ.USER.INFO _INBOX.1 0\r\n\r\n")
    _, body = await read_msg(a)
    assert list(body) == ["server", "data"]
    assert body["data"]["user"] == "a" and body["data"]["account"] == "A"
    assert body["data"]["permissions"]["publish"]["deny"] == ["foo.secret"]
    assert body["data"]["permissions"]["subscribe"]["allow"] == ["_INBOX.>", "q.* workers"]
    # The imports are not the account's subscriptions (nats-server counts them; trionats's
    # figures are its clients', docs/differences.md).
    assert server.accounts["A"].sublist.count == 1
    await a.aclose()


async def test_a_forged_request_info_header_gets_a_400(nursery):
    server = await start(nursery)
    raw = await connected(server, "sys")
    for value in (b"{bad", b"[1]", b"[" * 20_000):  # (bounded nesting: protocol/gojson.py)
        block = b"NATS/1.0\r\nNats-Request-Info: " + value + b"\r\n\r\n"
        await raw.send(b"SUB inbox 1\r\nHPUB $SYS.REQ.USER.A.INFO inbox %d %d\r\n%s\r\n"
                       % (len(block), len(block), block))  # fmt: skip
        _, body = await read_msg(raw)
        assert body["error"] == {"code": 400}
    block = b'NATS/1.0\r\nNats-Request-Info: {"id":"x","acc":7}\r\n\r\n'  # wrong types
    await raw.send(b"HPUB $SYS.REQ.USER.A.INFO inbox %d %d\r\n%s\r\n" % (len(block), len(block), block))
    _, body = await read_msg(raw)
    assert body["data"] == {"user": "", "account": ""}
    assert server.stats.internal_errors == 0
    await raw.aclose()
