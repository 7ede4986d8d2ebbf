"""Exports and imports between accounts on one server (issue 14, item 2): the configuration
and its refusals as nats-server's, stream imports (prefix, to, wildcards), service imports
with their `_R_` reply mapping and response types, and the bytes delivered compared with
nats-server's."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
import trio

from tests.accounts.test_accounts import assert_check_agrees, connected, options, problems, start
from tests.clients.test_nats_py import connect as nats_connect
from tests.clients.test_nats_py import run as run_nats_py
from tests.helpers import NatsServerProcess, TrionatsProcess
from trionats.core.imports import Transform, is_subset
from trionats.options import Export, Import

CONF = """
accounts {
  A {
    users: [ {user: a, password: a} ]
    exports: [
      {stream: "foo.>"}
      {stream: "bar.*"}
      {stream: "private.>", accounts: [B]}
      {service: "svc.>"}
      {service: "many", response_type: stream, response_threshold: "1s"}
      {service: "secret", accounts: [C]}
    ]
  }
  B {
    users: [ {user: b, password: b} ]
    imports: [
      {stream: {account: A, subject: "foo.>"}, prefix: imported}
      {stream: {account: A, subject: "bar.*"}, to: "baz.*"}
      {stream: {account: A, subject: "private.>"}}
      {service: {account: A, subject: "svc.echo"}, to: "echo"}
      {service: {account: A, subject: "many"}}
    ]
  }
  C { users: [ {user: c, password: c} ] }
}
"""


# --- configuration -------------------------------------------------------------------------------


def test_exports_and_imports_load():
    a, b, _ = options(CONF).accounts
    assert a.exports[0] == Export(kind="stream", subject="foo.>")
    assert a.exports[2].accounts == ("B",)
    assert a.exports[4] == Export(kind="service", subject="many", response_type="stream",
                                  response_threshold=1.0)  # fmt: skip
    assert b.imports[0] == Import(kind="stream", account="A", subject="foo.>", prefix="imported")
    assert b.imports[3] == Import(kind="service", account="A", subject="svc.echo", to="echo")


REFUSED = """
accounts {
  A {
    exports: [ {stream: "pub.>"}, {stream: "priv", accounts: [C]}, {service: "svc", accounts: [C]} ]
  }
  B {
    imports: [
      {stream: {account: A, subject: "priv"}}
      {stream: {account: A, subject: "other"}}
      {service: {account: A, subject: "svc"}}
      {stream: {account: Z, subject: "x"}}
      {stream: {account: A, subject: "pub.a"}, prefix: "p.*"}
    ]
  }
  C { }
}
"""


def test_refused_imports_as_nats_server(tmp_path):
    assert problems(tmp_path, REFUSED) == [
        'node.conf:2:1: Error adding stream import "priv": stream import not authorized',
        'node.conf:2:1: Error adding stream import "other": stream import not authorized',
        'node.conf:2:1: "Z" account not defined for stream import',
        'node.conf:2:1: Error adding stream import "pub.a": stream import prefix can not '
        "contain wildcard tokens",
        'node.conf:2:1: Error adding service import "svc": service import not authorized',
    ]


def test_entry_errors(tmp_path):
    # The positions and texts of nats-server -t (which says "got int64" for the number).
    # (nats-server meets an entry's keys in map order: `prefix` with `to` is refused only
    # when `to` comes after the other two, so that one is not in the differential below.)
    text = (
        "accounts {\n"
        '  A { exports: [ {stream: "s", response_type: stream}, {service: "v", response: bogus} ] }\n'
        '  B { imports: [ {stream: {account: A, subject: "s"}, prefix: p, to: q}, 5,\n'
        '                 {stream: {account: A}} ] }\n'
        "}\n"
    )
    assert problems(tmp_path, text) == [
        "node.conf:2:32: Detected response directive on non-service",
        'node.conf:2:71: Unknown response type: "bogus"',
        "node.conf:3:66: Stream import can not have a 'prefix' and a 'to' property",
        "node.conf:3:74: Import Items should be a map with type entry, got a number",
        "node.conf:4:19: Expect an account name and a subject",
    ]


def test_import_cycles_are_refused(tmp_path):
    text = (
        "accounts {\n"
        '  A { exports: [ {stream: "x"} ], imports: [ {stream: {account: B, subject: "x"}} ] }\n'
        '  B { exports: [ {stream: "x"} ], imports: [ {stream: {account: A, subject: "x"}} ] }\n'
        "}\n"
    )
    assert problems(tmp_path, text) == [
        'node.conf:1:1: Error adding stream import "x": import forms a cycle'
    ]


def test_subject_helpers():
    assert Transform(b"bar.*", b"baz.*")(b"bar.1") == b"baz.1"
    assert Transform(b"a.*.*", b"b.$2.$1")(b"a.x.y") == b"b.y.x"
    assert Transform(b"a.>", b"b.>")(b"a.x.y") == b"b.x.y"
    assert Transform(b"a", b"b")(b"a") == b"b"
    assert is_subset("foo.bar", "foo.>") and is_subset("foo.*", "foo.*")
    assert not is_subset("foo.>", "foo.*") and not is_subset("foo", "foo.>")


DIFFERENTIAL = [
    ("valid", CONF),
    ("refused", REFUSED),
    ("undefined-export-account", 'accounts { A { exports: [ {stream: x, accounts: [Q]} ] } }\n'),
    ("service-not-exported", "accounts { A { }\n B { imports: [ {service: {account: A, "
                             'subject: "s"}} ] } }\n'),
    ("cycle", "accounts {\n"
              '  A { exports: [ {stream: "x"} ], imports: [ {stream: {account: B, subject: "x"}} ] }\n'
              '  B { exports: [ {stream: "x"} ], imports: [ {stream: {account: A, subject: "x"}} ] }\n'
              "}\n"),
    ("duplicate-imports", 'accounts { A { exports: [ {stream: s}, {service: v}, {service: w} ] }\n'
                          ' B { imports: [ {stream: {account: A, subject: s}}, '
                          '{stream: {account: A, subject: s}, prefix: p}, '
                          '{service: {account: A, subject: v}, to: x}, '
                          '{service: {account: A, subject: w}, to: x} ] } }\n'),
    ("duplicate-stream", 'accounts { A { exports: [ {stream: s} ] }\n'
                         ' B { imports: [ {stream: {account: A, subject: s}}, '
                         '{stream: {account: A, subject: s}, prefix: p} ] } }\n'),
]  # fmt: skip


@pytest.mark.interop
@pytest.mark.parametrize(("name", "text"), DIFFERENTIAL, ids=lambda v: v if "\n" not in v else "")
def test_check_agrees_with_nats_server(tmp_path, name, text):
    assert_check_agrees(tmp_path, name, text)


# --- stream imports ------------------------------------------------------------------------------


async def test_stream_imports_deliver_into_the_importer(nursery):
    server = await start(nursery, CONF)
    a = await connected(server, user="a", headers=True, **{"pass": "a"})
    b = await connected(server, user="b", headers=True, **{"pass": "b"})
    c = await connected(server, user="c", **{"pass": "c"})
    await a.send(b"SUB foo.> 1\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    await b.send(b"SUB imported.foo.> 1\r\nSUB baz.* 2\r\nSUB private.> 3\r\nSUB foo.> 4\r\nPING\r\n")
    await b.expect(b"PONG\r\n")
    await c.send(b"SUB > 1\r\nPING\r\n")
    await c.expect(b"PONG\r\n")
    await a.send(b"PUB foo.x r 2\r\nhi\r\nHPUB bar.1 12 14\r\nNATS/1.0\r\n\r\nyo\r\n"
                 b"PUB private.z 1\r\np\r\nPUB other 1\r\no\r\n")  # fmt: skip
    assert await a.ping_pong() == b"MSG foo.x 1 r 2\r\nhi\r\n"
    assert await b.ping_pong() == (
        b"MSG imported.foo.x 1 r 2\r\nhi\r\n"
        b"HMSG baz.1 2 12 14\r\nNATS/1.0\r\n\r\nyo\r\n"
        b"MSG private.z 3 1\r\np\r\n"
    )
    assert await c.ping_pong() == b""
    # The importer's own subjects stay its own: B publishing foo.x reaches nobody in A.
    await b.send(b"PUB foo.x 1\r\nb\r\n")
    assert await b.ping_pong() == b"MSG foo.x 4 1\r\nb\r\n"
    assert await a.ping_pong() == b""
    for raw in (a, b, c):
        await raw.aclose()
    server.shutdown()


async def test_stream_imports_take_runs_and_spans_message_by_message(nursery):
    server = await start(nursery, CONF)
    a = await connected(server, user="a", **{"pass": "a"})
    b = await connected(server, user="b", **{"pass": "b"})
    await b.send(b"SUB imported.> 1\r\nPING\r\n")
    await b.expect(b"PONG\r\n")
    await a.send(b"SUB foo.run 9\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    count = 200
    await a.send(b"PUB foo.run 3\r\nabc\r\n" * count + b"".join(
        b"PUB foo.run %d\r\n%d\r\n" % (len(str(i)), i) for i in range(count)))  # fmt: skip
    expected = b"MSG imported.foo.run 1 3\r\nabc\r\n" * count + b"".join(
        b"MSG imported.foo.run 1 %d\r\n%d\r\n" % (len(str(i)), i) for i in range(count))
    await b.expect(expected)
    await a.expect(b"MSG foo.run 9 3\r\nabc\r\n" * count)
    for raw in (a, b):
        await raw.aclose()
    server.shutdown()


# --- service imports -----------------------------------------------------------------------------


async def test_service_import_maps_the_reply_and_a_singleton_answers_once(nursery):
    server = await start(nursery, CONF)
    a = await connected(server, user="a", **{"pass": "a"})
    b = await connected(server, user="b", **{"pass": "b"})
    await a.send(b"SUB svc.echo 1\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    await b.send(b"SUB inbox.1 5\r\nPUB echo inbox.1 3\r\nreq\r\nPING\r\n")
    await b.expect(b"PONG\r\n")
    line = await a.read_line()
    match = re.fullmatch(rb"MSG svc\.echo 1 (_R_\.\w+\.\w+) 3\r\n", line)
    assert match, line
    await a.expect(b"req\r\n")
    reply = match.group(1)
    await a.send(b"PUB %s 3\r\none\r\nPUB %s 3\r\ntwo\r\n" % (reply, reply))
    await a.ping_pong()
    assert await b.ping_pong() == b"MSG inbox.1 5 3\r\none\r\n"
    await b.expect_nothing()
    for raw in (a, b):
        await raw.aclose()
    server.shutdown()


async def test_streamed_responses_last_until_the_threshold(nursery):
    server = await start(nursery, CONF)
    a = await connected(server, user="a", **{"pass": "a"})
    b = await connected(server, user="b", **{"pass": "b"})
    await a.send(b"SUB many 1\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    await b.send(b"SUB inbox.2 5\r\nPUB many inbox.2 1\r\n?\r\nPING\r\n")
    await b.expect(b"PONG\r\n")
    line = await a.read_line()
    reply = line.split()[3]
    await a.read_line()
    await a.send(b"PUB %s 1\r\n1\r\nPUB %s 1\r\n2\r\n" % (reply, reply))
    await a.ping_pong()
    assert await b.ping_pong() == b"MSG inbox.2 5 1\r\n1\r\nMSG inbox.2 5 1\r\n2\r\n"
    await trio.sleep(1.2)  # past the export's response_threshold: 1s
    await a.send(b"PUB %s 1\r\n3\r\n" % reply)
    await a.ping_pong()
    await b.expect_nothing()
    for raw in (a, b):
        await raw.aclose()
    server.shutdown()


async def test_service_import_without_a_reply_and_unauthorized_accounts(nursery):
    server = await start(nursery, CONF)
    a = await connected(server, user="a", **{"pass": "a"})
    c = await connected(server, user="c", **{"pass": "c"})
    await a.send(b"SUB svc.echo 1\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    await c.send(b"PUB echo 1\r\nx\r\nPUB svc.echo 1\r\ny\r\nPING\r\n")  # C imports nothing
    await c.expect(b"PONG\r\n")
    assert await a.ping_pong() == b""
    b = await connected(server, user="b", **{"pass": "b"})
    await b.send(b"PUB echo 2\r\nno\r\nPING\r\n")
    await b.expect(b"PONG\r\n")
    assert await a.ping_pong() == b"MSG svc.echo 1 2\r\nno\r\n"
    for raw in (a, b, c):
        await raw.aclose()
    server.shutdown()


def test_nats_py_request_across_accounts(tmp_path):
    path = tmp_path / "node.conf"
    path.write_text(CONF)

    async def scenario(url: str):
        a = await nats_connect(url, user="a", password="a")
        b = await nats_connect(url, user="b", password="b")

        async def respond(msg):
            await msg.respond(b"echo: " + msg.data)

        await a.subscribe("svc.echo", cb=respond)
        await a.flush()
        for i in range(3):
            answer = await b.request("echo", b"hello %d" % i, timeout=2)
            assert answer.data == b"echo: hello %d" % i
        stream = await b.subscribe("imported.foo.>")
        await b.flush()
        await a.publish("foo.news", b"read all about it")
        assert (await stream.next_msg(timeout=2)).subject == "imported.foo.news"

    with TrionatsProcess("-c", str(path)) as server:
        run_nats_py(scenario(server.url))


SHARED_CONF = """
server_name: N1
accounts {
  A {
    users: [ {user: a, password: a} ]
    exports: [ {service: "svc"}, {service: "plain"}, {stream: "plain"} ]
  }
  B {
    users: [ {user: b, password: b} ]
    imports: [ {service: {account: A, subject: "svc"}, share: true}
               {service: {account: A, subject: "plain"}, share: false}
               {stream: {account: A, subject: "plain"}, share: true} ]
  }
}
"""


def test_share_must_be_a_boolean(tmp_path):
    text = ("accounts {\n  A { imports: [ {service: {account: B, subject: s}, share: 1} ] }\n"
            "  B {}\n}\n")
    assert problems(tmp_path, text) == ["node.conf:2:54: share: expected a boolean, got a number"]
    imports = {(i.kind, i.subject): i.share for i in options(SHARED_CONF).accounts[1].imports}
    assert imports == {("service", "svc"): True, ("service", "plain"): False,
                       ("stream", "plain"): False}  # fmt: skip


@pytest.mark.interop
def test_a_shared_import_tells_the_exporter_who_asked(tmp_path):
    """The `Nats-Request-Info` header, as nats-server writes it: in full when shared."""
    path = tmp_path / "node.conf"
    path.write_text(SHARED_CONF)

    async def scenario(url: str) -> list[dict]:
        a = await nats_connect(url, user="a", password="a")
        b = await nats_connect(url, user="b", password="b", name="asker")
        seen = []

        async def respond(msg):
            seen.append(json.loads(msg.headers["Nats-Request-Info"]))
            await msg.respond(b"ok")

        await a.subscribe("svc", cb=respond)
        await a.subscribe("plain", cb=respond)
        await a.flush()
        for subject in ("svc", "plain"):
            assert (await b.request(subject, b"?", timeout=5)).data == b"ok"
        for nc in (a, b):
            await nc.close()
        return seen

    with NatsServerProcess("-c", str(path)) as theirs:
        expected = run_nats_py(scenario(theirs.url))
    with TrionatsProcess("-c", str(path)) as ours:
        got = run_nats_py(scenario(ours.url))
    for info in expected + got:
        info.pop("rtt", None)  # (not there until the first PONG has measured it)
    for shared in (expected[0], got[0]):  # a time, a client id, nats-py's version
        assert shared.pop("start") and shared.pop("id") and shared.pop("ver")
    assert got == expected
    assert got[0] == {"host": "127.0.0.1", "acc": "B", "user": "b", "name": "asker",
                      "lang": "python3", "server": "N1", "kind": "Client", "client_type": "nats"}
    assert got[1] == {"acc": "B"}


# --- differential: the bytes delivered, against nats-server ----------------------------------


def _session(port: int) -> dict[str, bytes]:
    """A fixed exchange across the accounts of CONF; what each client received (with the
    `_R_` reply tokens, random in both servers, normalised)."""

    def open_client(user: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.recv(4096)  # INFO
        connect = {"verbose": False, "user": user, "pass": user, "headers": True}
        sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        _read_until(sock, b"PONG\r\n")
        return sock

    a, b = open_client("a"), open_client("b")
    b.sendall(b"SUB imported.> 1\r\nSUB baz.* 2\r\nSUB private.> 3\r\nSUB in.> 4\r\nPING\r\n")
    _read_until(b, b"PONG\r\n")
    a.sendall(b"SUB svc.> 1\r\nSUB many 2\r\nPING\r\n")
    _read_until(a, b"PONG\r\n")
    a.sendall(b"PUB foo.x 2\r\nhi\r\nPUB bar.7 r.1 1\r\nb\r\nHPUB private.q 12 14\r\nNATS/1.0\r\n"
              b"\r\nyo\r\nPUB nothing 1\r\nn\r\nPING\r\n")  # fmt: skip
    _read_until(a, b"PONG\r\n")
    b.sendall(b"PUB echo in.1 3\r\nreq\r\nPUB many in.2 1\r\n?\r\nPING\r\n")
    streamed = _read_until(b, b"PONG\r\n")
    time.sleep(0.1)
    a.sendall(b"PING\r\n")
    requests = _read_until(a, b"PONG\r\n")
    replies = re.findall(rb"(_R_\.\S+)", requests)
    assert len(replies) == 2, requests
    a.sendall(b"PUB %s 3\r\none\r\nPUB %s 3\r\ntwo\r\n" % (replies[0], replies[0]))
    a.sendall(b"PUB %s 1\r\n1\r\nPUB %s 1\r\n2\r\nPING\r\n" % (replies[1], replies[1]))
    _read_until(a, b"PONG\r\n")
    time.sleep(0.1)
    b.sendall(b"PING\r\n")
    requests = re.sub(rb"_R_\.\S+ \d+ \d+", b"_R_ H S", requests)  # (the rtt's digits vary)
    requests = re.sub(rb'"rtt":\d+', b'"rtt":1', requests)
    received = {"a": requests, "b": streamed + _read_until(b, b"PONG\r\n")}
    a.close()
    b.close()
    return received


def _read_until(sock: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data[: -len(end)]


@pytest.mark.interop
def test_delivered_bytes_match_nats_server(tmp_path):
    path = tmp_path / "node.conf"
    path.write_text(CONF)
    with NatsServerProcess("-c", str(path)) as theirs:
        expected = _session(theirs.port)
    with TrionatsProcess("-c", str(path)) as ours:
        got = _session(ours.port)
    assert got == expected
    assert b"MSG imported.foo.x 1 2\r\nhi\r\n" in got["b"]
    assert b"MSG in.1 4 3\r\none\r\n" in got["b"] and b"two" not in got["b"]


def test_changing_imports_is_not_reloadable():
    from trionats.config.reload import diff
    from trionats.errors import ConfigError

    changed = CONF.replace('prefix: imported', 'prefix: other')
    with pytest.raises(ConfigError) as info:
        diff(options(CONF), options(changed))
    assert str(info.value) == "config reload not supported for Accounts: old=[A B C], new=[A B C]"


async def test_wildcard_service_import_reaches_one_queue_member(nursery):
    text = CONF.replace('{service: {account: A, subject: "many"}}',
                        '{service: {account: A, subject: "svc.*"}, to: "ask.*"}')  # fmt: skip
    server = await start(nursery, text)
    members = [await connected(server, user="a", **{"pass": "a"}) for _ in range(2)]
    for raw in members:
        await raw.send(b"SUB svc.* workers 1\r\nPING\r\n")
        await raw.expect(b"PONG\r\n")
    b = await connected(server, user="b", **{"pass": "b"})
    await b.send(b"SUB inbox.> 2\r\n" + b"".join(b"PUB ask.k%d inbox.%d 1\r\n%d\r\n" % (i, i, i)
                                                 for i in range(10)) + b"PING\r\n")  # fmt: skip
    await b.expect(b"PONG\r\n")
    seen = b""
    for raw in members:
        got = await raw.ping_pong()
        for reply, body in re.findall(rb"MSG svc\.k\d 1 (\S+) 1\r\n(\d)\r\n", got):
            await raw.send(b"PUB %s 1\r\n%s\r\n" % (reply, body))
        seen += got
    assert seen.count(b"MSG svc.k") == 10
    answers = b""
    while answers.count(b"MSG inbox.") < 10:
        answers += await b.ping_pong()
    assert sorted(re.findall(rb"MSG inbox\.(\d) 2 1\r\n(\d)\r\n", answers)) == [
        (b"%d" % i, b"%d" % i) for i in range(10)
    ]
    for raw in (*members, b):
        await raw.aclose()
    server.shutdown()
