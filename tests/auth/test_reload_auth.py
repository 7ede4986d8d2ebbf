"""Reloading the authorization (SIGHUP): users, passwords, tokens, nkeys, permissions and
no_auth_user applied to live connections as nats-server 2.15.1 does (docs/security.md)."""

from __future__ import annotations

import json
import re
import signal
import socket
import time

import attrs
import bcrypt
import pytest
import trio

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess, free_port
from tests.auth.test_auth import NKEY, _sign
from tests.clients.test_websocket import RawWebSocket
from trionats.config.load import load
from trionats.config.reload import diff, reload_lines
from trionats.errors import ConfigError
from trionats.options import (
    Authorization,
    Options,
    Permissions,
    SubjectPermission,
    User,
)
from trionats.server import Server

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
HASH_SAME = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()  # same password, new salt
HASH_OTHER = bcrypt.hashpw(b"other", bcrypt.gensalt(4)).decode()

AUTH_VIOLATION = b"-ERR 'Authorization Violation'\r\n"


def _connect(**fields) -> bytes:
    return b"CONNECT " + json.dumps({"verbose": False, **fields}).encode() + b"\r\n"


def _removed(subject: str, sid: int, queue: str = "") -> bytes:
    using = f' using queue "{queue}"' if queue else ""
    return (
        f"-ERR 'Permissions Violation for Subscription to \"{subject}\"{using} (sid \"{sid}\")'\r\n"
    ).encode()


#: Raw clients of the running test, closed when it ends.
_opened: list = []


@pytest.fixture
async def nursery(nursery):
    """conftest's nursery, closing the test's raw clients at the end."""
    yield nursery
    for client in _opened:
        await client.aclose()
    _opened.clear()


async def _raw_client(port: int) -> RawClient:
    client = await RawClient.connect(port)
    _opened.append(client)
    return client


async def _start(nursery, path, **flags) -> Server:
    flags = {"host": "127.0.0.1", "port": -1, **flags}
    options = attrs.evolve(load(path), **flags)
    return await nursery.start(Server(options, flag_overrides=flags).serve)


async def _client(server: Server, *ops: bytes, **connect) -> RawClient:
    client = await _raw_client(server.port)
    await client.send(_connect(**connect) + b"".join(ops))
    assert await client.ping_pong() == b""
    return client


async def _closed_with(client: RawClient) -> bytes:
    """What the server sent before closing the connection (it must close)."""
    await client.send(b"PING\r\n")
    return await client.expect_closed()


def _users(*entries: str, extra: str = "") -> str:
    return "authorization { users: [\n" + "\n".join(entries) + "\n] }\n" + extra


# --- pure: what a reload may change, and its log lines --------------------------------------


def test_diff_accepts_authorization_changes():
    old = Options(authorization=Authorization(token="a"))
    new = Options(authorization=Authorization(user="u", password="p"))
    assert diff(old, new) == {"authorization": new.authorization}
    assert diff(new, Options()) == {"authorization": None}


def _with_users(*names: str, no_auth_user: str = "") -> Options:
    users = tuple(User(user=name, password="p") for name in names)
    return Options(authorization=Authorization(users=users), no_auth_user=no_auth_user)


@pytest.mark.parametrize(
    ("old", "new", "refused"),
    [
        (_with_users("a", "b"), _with_users("a", "b", no_auth_user="a"), "old=, new=a"),
        (
            _with_users("a", "b", no_auth_user="b"),
            _with_users("a", "b", no_auth_user="a"),
            "old=b, new=a",
        ),
        # Dropping no_auth_user while its user stays would change what anonymous clients are.
        (_with_users("a", "b", no_auth_user="b"), _with_users("a", "b"), "old=b, new="),
        # Dropping it with its user is what nats-server allows.
        (_with_users("a", "b", no_auth_user="b"), _with_users("a"), None),
    ],
)
def test_no_auth_user_changes_as_nats_server(old, new, refused):
    if refused is None:
        assert "no_auth_user" in diff(old, new)
        return
    with pytest.raises(ConfigError) as raised:
        diff(old, new)
    assert str(raised.value) == f"config reload not supported for NoAuthUser: {refused}"


def test_authorization_log_lines():
    plain = Options()
    assert reload_lines(plain, plain, {}, (2.0, 2.0)) == [
        "Reloaded: authorization users",  # nats-server logs these two on every reload
        "Reloaded: accounts",
    ]
    single = Options(authorization=Authorization(user="u", password="p", token=""))
    changed = Options(authorization=Authorization(user="v", password="q", timeout=2.5),
                      ping_interval=90.0)  # fmt: skip
    changes = {"authorization": changed.authorization, "ping_interval": 90.0}
    assert reload_lines(single, changed, changes, (2.0, 2.5)) == [
        "Reloaded: authorization users",
        "Reloaded: accounts",
        "Reloaded: authorization username",
        "Reloaded: authorization password",
        "Reloaded: ping_interval = 1m30s",  # nats-server's field order: the timeout comes after
        "Reloaded: authorization timeout = 2.5",
    ]
    nkey = Options(authorization=Authorization(users=(User(nkey=NKEY),)))
    perms = Permissions(publish=SubjectPermission(allow=("a",)))
    users = (User(nkey=NKEY),)
    defaults = Options(authorization=Authorization(users=users, default_permissions=perms))
    token = Options(authorization=Authorization(token="t"))
    lines = reload_lines(nkey, defaults, {"authorization": None}, (2.0, 2.0))
    assert lines[0] == "Reloaded: authorization nkey users"
    lines = reload_lines(plain, token, {"authorization": None}, (2.0, 2.0))
    assert lines[-1] == "Reloaded: authorization token"


# --- live clients (in-process server, raw clients) --------------------------------------------


async def test_users_removed_changed_and_permissions_narrowed(nursery, tmp_path):
    conf = tmp_path / "auth.conf"
    conf.write_text(_users(
        '{ user: a, password: pa, permissions: { subscribe: ["foo", "bar", "q.>"] } }',
        "{ user: b, password: pb }",
        "{ user: c, password: pc }",
    ))  # fmt: skip
    server = await _start(nursery, conf)
    subs = (b"SUB foo 1\r\n", b"SUB bar 2\r\n", b"SUB q.x grp 3\r\n", b"SUB foo 4\r\n")
    a = await _client(server, *subs, user="a", **{"pass": "pa"})
    b = await _client(server, user="b", **{"pass": "pb"})
    c = await _client(server, user="c", **{"pass": "pc"})

    conf.write_text(_users(
        '{ user: a, password: pa, permissions: { subscribe: ["bar"] } }',
        "{ user: b, password: pb2 }",
    ))  # fmt: skip
    assert server.reload()

    # a: each subscription the new permissions refuse is removed, with nats-server's -ERR.
    assert await a.ping_pong() == (
        _removed("foo", 1) + _removed("q.x", 3, "grp") + _removed("foo", 4)
    )
    # b: its password changed, so its credentials no longer pass.
    assert await _closed_with(b) == AUTH_VIOLATION
    # c: its user is gone: closed without an -ERR (reason Client Closed), as nats-server.
    assert await _closed_with(c) == b""
    assert [r.reason for r in server.closed_clients] == ["Authentication Failure", "Client Closed"]

    # What is left works under the new rules; b logs in with its new password.
    publisher = await _client(server, user="b", **{"pass": "pb2"})
    await publisher.send(b"PUB foo 2\r\nhi\r\nPUB bar 2\r\nhi\r\n")
    await a.expect(b"MSG bar 2 2\r\nhi\r\n")
    assert await a.ping_pong() == b""
    await a.send(b"SUB foo 5\r\n")
    assert await a.ping_pong() == b"-ERR 'Permissions Violation for Subscription to \"foo\"'\r\n"
    server.shutdown()


async def test_new_permissions_apply_to_publish_and_delivery(nursery, tmp_path):
    conf = tmp_path / "auth.conf"
    conf.write_text(_users("{ user: a, password: pa }", "{ user: p, password: pp }"))
    server = await _start(nursery, conf)
    a = await _client(server, b"SUB foo.* 1\r\n", user="a", **{"pass": "pa"})
    publisher = await _client(server, user="p", **{"pass": "pp"})
    await publisher.send(b"PUB foo.secret 1\r\nx\r\n")  # its delivery plan is cached now
    await a.expect(b"MSG foo.secret 1 1\r\nx\r\n")

    conf.write_text(_users(
        '{ user: a, password: pa, permissions: { publish: { deny: "foo.x" }, '
        'subscribe: { deny: "foo.secret" } } }',
        "{ user: p, password: pp }",
    ))  # fmt: skip
    assert server.reload()
    # The wildcard subscription stays (it only overlaps the deny entry) ...
    assert await a.ping_pong() == b""
    # ... but messages on the denied subject no longer reach it, cached plan or not.
    await publisher.send(b"PUB foo.secret 1\r\nx\r\nPUB foo.ok 1\r\ny\r\n")
    await a.expect(b"MSG foo.ok 1 1\r\ny\r\n")
    # Publishing is checked at once.
    await a.send(b"PUB foo.x 1\r\nz\r\nPUB foo.y 1\r\nz\r\n")
    assert await a.ping_pong() == (
        b"-ERR 'Permissions Violation for Publish to \"foo.x\"'\r\nMSG foo.y 1 1\r\nz\r\n"
    )

    # And taking the permissions away again frees everything.
    conf.write_text(_users("{ user: a, password: pa }", "{ user: p, password: pp }"))
    assert server.reload()
    await a.send(b"PUB foo.x 1\r\nz\r\n")
    assert await a.ping_pong() == b"MSG foo.x 1 1\r\nz\r\n"
    await publisher.send(b"PUB foo.secret 1\r\nx\r\n")
    await a.expect(b"MSG foo.secret 1 1\r\nx\r\n")
    server.shutdown()


async def test_token_and_single_user(nursery, tmp_path):
    conf = tmp_path / "auth.conf"
    conf.write_text("authorization { token: t1 }\n")
    server = await _start(nursery, conf)
    token = await _client(server, auth_token="t1")
    conf.write_text("authorization { token: t2 }\n")
    assert server.reload()
    assert await _closed_with(token) == AUTH_VIOLATION

    conf.write_text("authorization { user: u, password: p }\n")
    assert server.reload()
    user = await _client(server, user="u", **{"pass": "p"})
    # A reload that leaves the user alone keeps it (nats-server closes every single-user
    # client on any reload: docs/differences.md).
    conf.write_text("authorization { user: u, password: p }\nmax_payload: 2KB\n")
    assert server.reload()
    assert await user.ping_pong() == b""
    conf.write_text("authorization { user: u, password: q }\nmax_payload: 2KB\n")
    assert server.reload()
    assert await _closed_with(user) == AUTH_VIOLATION
    server.shutdown()


async def test_nkey_users(nursery, tmp_path):
    conf = tmp_path / "auth.conf"
    nkey_user = f'{{ nkey: {NKEY}, permissions: {{ subscribe: ["a", "b"] }} }}'
    conf.write_text(_users(nkey_user, "{ user: u, password: p }"))
    server = await _start(nursery, conf)
    client = await _raw_client(server.port)
    nonce = json.loads(client.info[5:])["nonce"]
    await client.send(_connect(nkey=NKEY, sig=_sign(nonce)) + b"SUB a 1\r\nSUB b 2\r\n")
    assert await client.ping_pong() == b""

    # Still configured: its signature of the INFO nonce is checked again, new permissions apply.
    conf.write_text(_users(f'{{ nkey: {NKEY}, permissions: {{ subscribe: "b" }} }}',
                           "{ user: u, password: p }"))  # fmt: skip
    assert server.reload()
    assert await client.ping_pong() == _removed("a", 1)
    # Gone: closed without an -ERR.
    conf.write_text(_users("{ user: u, password: p }"))
    assert server.reload()
    assert await _closed_with(client) == b""
    server.shutdown()


async def test_bcrypt_passwords(nursery, tmp_path):
    conf = tmp_path / "auth.conf"
    conf.write_text(_users(f'{{ user: a, password: "{HASH}" }}', "{ user: b, password: pb }"))
    server = await _start(nursery, conf)
    a = await _client(server, user="a", **{"pass": "secret"})
    # Another user's change: a's hash is the one its password matched, no new check.
    conf.write_text(_users(f'{{ user: a, password: "{HASH}" }}', "{ user: b, password: pb2 }"))
    assert server.reload()
    assert await a.ping_pong() == b""
    # A new hash of the same password: checked again (in a worker thread), still fine.
    conf.write_text(_users(f'{{ user: a, password: "{HASH_SAME}", permissions: '
                           '{ subscribe: "x" } }'))  # fmt: skip
    assert server.reload()
    await trio.sleep(0.5)
    await a.send(b"SUB y 1\r\n")
    assert await a.ping_pong() == b"-ERR 'Permissions Violation for Subscription to \"y\"'\r\n"
    # A hash of another password: -ERR and close once the check is done.
    conf.write_text(_users(f'{{ user: a, password: "{HASH_OTHER}" }}'))
    assert server.reload()
    assert await a.expect_closed() == AUTH_VIOLATION
    server.shutdown()


async def test_reload_during_a_bcrypt_connect(nursery, tmp_path):
    """A CONNECT whose bcrypt check is running when the reload lands is checked again."""
    slow = bcrypt.hashpw(b"secret", bcrypt.gensalt(10)).decode()
    conf = tmp_path / "auth.conf"
    conf.write_text(_users(f'{{ user: a, password: "{slow}" }}'))
    server = await _start(nursery, conf)
    client = await _raw_client(server.port)
    await client.send(_connect(user="a", **{"pass": "secret"}) + b"PING\r\n")
    await trio.sleep(0.01)  # the check is under way
    conf.write_text(_users(f'{{ user: a, password: "{HASH_OTHER}" }}'))
    assert server.reload()
    assert await client.expect_closed() == b"PONG\r\n" + AUTH_VIOLATION
    server.shutdown()


async def test_no_auth_user(nursery, tmp_path):
    conf = tmp_path / "auth.conf"
    users = ("{ user: a, password: pa }", "{ user: b, password: pb }")
    conf.write_text(_users(*users, extra="no_auth_user: b\n"))
    server = await _start(nursery, conf)
    anonymous = await _client(server, b"SUB foo 1\r\nSUB bar 2\r\n")
    # Permissions of the no_auth_user apply to the clients that came in as it.
    conf.write_text(_users(users[0], '{ user: b, password: pb, permissions: { subscribe: "bar" } }',
                           extra="no_auth_user: b\n"))  # fmt: skip
    assert server.reload()
    assert await anonymous.ping_pong() == _removed("foo", 1)
    # no_auth_user cannot change (nats-server's rule) ...
    conf.write_text(_users(*users, extra="no_auth_user: a\n"))
    assert not server.reload()
    # ... but it may go away with its user: its clients are closed like that user's.
    conf.write_text(_users(users[0]))
    assert server.reload()
    assert await _closed_with(anonymous) == b""
    server.shutdown()


async def test_turning_authentication_on_and_off(nursery, tmp_path):
    conf = tmp_path / "auth.conf"
    conf.write_text("max_payload: 1KB\n")
    server = await _start(nursery, conf)
    anonymous = await _client(server)
    with_user = await _client(server, user="a", **{"pass": "pa"})
    silent = await _raw_client(server.port)  # no CONNECT yet

    conf.write_text('authorization { timeout: 0.5, users: [ { user: a, password: pa } ] }\n')
    assert server.reload()
    assert await _closed_with(anonymous) == AUTH_VIOLATION
    assert await with_user.ping_pong() == b""  # its CONNECT had the right credentials
    assert await silent.expect_closed() == b"-ERR 'Authentication Timeout'\r\n"

    conf.write_text("max_payload: 1KB\n")  # off again: users are gone, so are their clients
    assert server.reload()
    assert await _closed_with(with_user) == b""
    assert await (await _client(server)).ping_pong() == b""
    server.shutdown()


async def test_websocket_clients_are_reauthorized(nursery, tmp_path):
    conf = tmp_path / "auth.conf"
    websocket = "websocket { host: 127.0.0.1, port: -1, no_tls: true }\n"
    conf.write_text(_users(
        '{ user: a, password: pa, permissions: { subscribe: ["foo", "bar"] } }',
        "{ user: b, password: pb }", extra=websocket,
    ))  # fmt: skip
    server = await _start(nursery, conf)
    a = await RawWebSocket.connect(server.websocket.port)
    b = await RawWebSocket.connect(server.websocket.port)
    await a.send(_connect(user="a", **{"pass": "pa"}) + b"SUB foo 1\r\nSUB bar 2\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    await b.send(_connect(user="b", **{"pass": "pb"}) + b"PING\r\n")
    await b.expect(b"PONG\r\n")

    conf.write_text(_users(
        '{ user: a, password: pa, permissions: { subscribe: ["bar"] } }', extra=websocket,
    ))  # fmt: skip
    assert server.reload()
    await a.send(b"PING\r\n")
    await a.expect(_removed("foo", 1) + b"PONG\r\n")
    assert await b.read_until_closed() == b""
    for client in (a, b):
        await client.aclose()
    server.shutdown()


# --- the same reload against nats-server 2.15.1 -----------------------------------------------

BEFORE = """
authorization {
  users: [
    { user: a, password: pa, permissions: { subscribe: ["foo", "bar", "q.>"], publish: ">" } }
    { user: b, password: pb }
    { user: c, password: pc }
    { user: d, password: pd }
    { user: e, password: pe, permissions: { subscribe: ">" } }
  ]
}
no_auth_user: e
"""
AFTER = """
authorization {
  users: [
    { user: a, password: pa, permissions: { subscribe: ["bar"], publish: { deny: "x" } } }
    { user: b, password: pb2 }
    { user: d, password: pd, allowed_connection_types: ["WEBSOCKET"] }
    { user: e, password: pe, permissions: { subscribe: { deny: "foo" } } }
  ]
  timeout: 3
}
no_auth_user: e
"""
CLIENTS = {
    "a": _connect(user="a", **{"pass": "pa"})
    + b"SUB foo 1\r\nSUB bar 2\r\nSUB q.x grp 3\r\nSUB foo 4\r\nSUB q.y 5\r\n",
    "b": _connect(user="b", **{"pass": "pb"}),
    "c": _connect(user="c", **{"pass": "pc"}),
    "d": _connect(user="d", **{"pass": "pd"}),
    "anonymous": _connect() + b"SUB foo 1\r\nSUB bar 2\r\n",
}
AFTER_OPS = {"a": b"PUB x 1\r\nx\r\nPUB bar 1\r\ny\r\n"}


def _raw(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(data + b"PING\r\n")
    got = b""
    while b"PONG\r\n" not in got:
        got += sock.recv(65536)
    assert got.startswith(b"INFO ") and got.endswith(b"PONG\r\n"), got
    return sock


def _until_pong_or_close(sock: socket.socket, ops: bytes) -> list[bytes]:
    """Lines received (sorted: nats-server removes subscriptions in map order) up to the PONG,
    plus b"<closed>" if the server closed the connection."""
    got, closed = b"", False
    sock.settimeout(0.3)
    try:
        while data := sock.recv(65536):  # what came on its own, before we send anything
            got += data
        closed = True
    except TimeoutError:
        pass
    except ConnectionResetError:
        closed = True
    if not closed:
        sock.settimeout(5)
        sock.sendall(ops + b"PING\r\n")
        while b"PONG\r\n" not in got:
            data = sock.recv(65536)
            if not data:
                closed = True
                break
            got += data
        got = got.replace(b"PONG\r\n", b"")
    lines = got.replace(b"\r\n", b"\n").splitlines() + ([b"<closed>"] if closed else [])
    return sorted(lines)


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


#: Log lines both servers must write (without timestamps, pids and connection addresses).
LOG_LINE = re.compile(
    r"\[(?:INF|ERR)\] (?:[\d.:]+ - cid:\d+ - (?:\"[^\"]*\" - )?)?"
    r"((?:Reloaded: (?!server configuration).*|Removed sub .*|.*authentication error.*"
    r"|(?:Subscription|Publish) Violation .*))$"
)


def _reload(
    process, conf, text: str, clients: dict = CLIENTS, after_ops: dict = AFTER_OPS
) -> tuple[dict, list[str]]:
    port = process.port
    socks = {name: _raw(port, ops) for name, ops in clients.items()}
    try:
        conf.write_text(text)
        process.process.send_signal(signal.SIGHUP)
        _wait_for(lambda: "Reloaded server configuration" in process.log())
        time.sleep(0.2)
        got = {
            name: _until_pong_or_close(sock, after_ops.get(name, b""))
            for name, sock in socks.items()
        }
    finally:
        for sock in socks.values():
            sock.close()
    lines = [m.group(1) for m in map(LOG_LINE.search, process.log().splitlines()) if m]
    return got, sorted(lines)


def test_reload_matches_nats_server(tmp_path):
    outcomes = {}
    for name, kind in (("nats-server", NatsServerProcess), ("trionats", TrionatsProcess)):
        conf = tmp_path / f"{name}.conf"
        conf.write_text(BEFORE)
        with kind("-c", str(conf), port=free_port()) as process:
            outcomes[name] = _reload(process, conf, AFTER)
    assert outcomes["trionats"] == outcomes["nats-server"]
    replies, lines = outcomes["trionats"]
    assert replies["a"] == sorted([
        _removed("foo", 1).rstrip(), _removed("foo", 4).rstrip(),
        _removed("q.x", 3, "grp").rstrip(), _removed("q.y", 5).rstrip(),
        b"-ERR 'Permissions Violation for Publish to \"x\"'", b"MSG bar 2 1", b"y",
    ])  # fmt: skip
    assert replies["b"] == [AUTH_VIOLATION.rstrip(), b"<closed>"]
    assert replies["c"] == [b"<closed>"]  # user removed: no -ERR
    assert replies["d"] == [AUTH_VIOLATION.rstrip(), b"<closed>"]  # not on this port any more
    # anonymous (no_auth_user e) lost foo, kept bar (and got a's message on it).
    assert replies["anonymous"] == sorted([_removed("foo", 1).rstrip(), b"MSG bar 2 1", b"y"])
    assert 'Removed sub "foo" (sid "1") for User "e" - not authorized' in lines
    assert 'authentication error - User "b"' in " ".join(lines)
    assert "Reloaded: authorization timeout = 3" in lines


#: Queue entries in allow and deny, a wildcard that overlaps a deny entry, and subjects,
#: queues that Go's %q escapes (a quote, a backslash, a control byte, DEL, a byte that is
#: not UTF-8, printable non-ASCII that stays as it is).
NARROWED = """
authorization {
  users: [
    { user: a, password: pa, permissions: {
        subscribe: { allow: ["foo", "foo.*", "bar q1", "k"], deny: ["foo v1", "foo.bar"] }
        publish: { deny: ["p\\"x"] } } }
  ]
}
"""
ODD_SUBS = (
    b'SUB foo 1\r\nSUB foo v1 2\r\nSUB foo v2 3\r\nSUB bar q1 4\r\nSUB bar q2 5\r\n'
    b'SUB bar 6\r\nSUB foo.* 7\r\nSUB q"x 8\r\nSUB q\\y 9\r\nSUB q\xc3\xa9 10\r\n'
    b'SUB q\x01z 11\r\nSUB q\xffz 12\r\nSUB qa\x7f 13\r\nSUB z 14\r\nUNSUB 14 5\r\n'
    b'SUB zz s"q 15\r\n'
)
#: After the reload: the deny filter of the wildcard, a removed sid unsubscribed and reused,
#: a refused SUB and PUB with escapes, and a sid of a removed subscription on a new subject.
ODD_AFTER = (
    b'PUB foo.bar 1\r\nx\r\nPUB foo.baz 1\r\ny\r\nUNSUB 14\r\nSUB z 14\r\nSUB k 12\r\n'
    b'PUB k 1\r\nk\r\nPUB z 1\r\nz\r\nSUB b\\ad\x02 16\r\nPUB p"x 0\r\n\r\n'
)


def test_reload_removing_odd_subscriptions_matches_nats_server(tmp_path):
    """Each subscription the new permissions refuse: nats-server's -ERR (subject, queue and
    sid quoted as Go's %q), its log line, the sid free again; the connection stays."""
    before = _users('{ user: a, password: pa, permissions: { subscribe: ">", publish: ">" } }')
    clients = {"a": _connect(user="a", **{"pass": "pa"}) + ODD_SUBS}
    outcomes = {}
    for name, kind in (("nats-server", NatsServerProcess), ("trionats", TrionatsProcess)):
        conf = tmp_path / f"{name}.conf"
        conf.write_text(before)
        with kind("-c", str(conf), port=free_port()) as process:
            outcomes[name] = _reload(process, conf, NARROWED, clients, {"a": ODD_AFTER})
    assert outcomes["trionats"] == outcomes["nats-server"]
    replies, lines = outcomes["trionats"]
    assert _removed("bar", 5, "q2").rstrip() in replies["a"]
    refusals = {line.split(b" to ", 1)[1] for line in replies["a"] if line.startswith(b"-ERR")}
    assert b'"q\\xffz" (sid "12")\'' in refusals  # Go's %q: a byte that is not UTF-8
    assert b'"zz" using queue "s\\"q" (sid "15")\'' in refusals
    assert b"<closed>" not in replies["a"]
    assert 'Removed sub "q\\x01z" (sid "11") for User "a" - not authorized' in lines
    assert 'Subscription Violation - Subject "b\\\\ad\\x02", SID 16' in lines
    assert b"-ERR 'Permissions Violation for Publish to \"p\\\"x\"'" in replies["a"]


# --- a real client library --------------------------------------------------------------------


def test_nats_py_sees_its_permissions_shrink_and_its_password_go(tmp_path):
    import asyncio

    import nats

    conf = tmp_path / "auth.conf"
    conf.write_text(_users('{ user: a, password: pa, permissions: { subscribe: ["foo", "bar"] } }'))
    with TrionatsProcess("-c", str(conf)) as process:

        def reload(text: str) -> None:
            count = process.log().count("Reloaded server configuration")
            conf.write_text(text)
            process.process.send_signal(signal.SIGHUP)
            _wait_for(lambda: process.log().count("Reloaded server configuration") > count)

        async def main():
            errors, closed = [], asyncio.Event()

            async def on_error(exc):
                errors.append(str(exc).lower())

            async def on_closed():
                closed.set()

            nc = await nats.connect(
                process.url, user="a", password="pa", error_cb=on_error,
                closed_cb=on_closed, allow_reconnect=False,
            )  # fmt: skip
            foo, bar = await nc.subscribe("foo"), await nc.subscribe("bar")
            await nc.flush()
            reload(_users('{ user: a, password: pa, permissions: { subscribe: "bar" } }'))
            await nc.publish("foo", b"1")
            await nc.publish("bar", b"2")
            assert (await bar.next_msg(timeout=5)).data == b"2"
            assert any(f'subscription to "foo" (sid "{foo._id}")' in e for e in errors), errors
            with pytest.raises(nats.errors.TimeoutError):
                await foo.next_msg(timeout=0.3)  # the server dropped it
            assert nc.is_connected

            reload(_users('{ user: a, password: other }'))
            await asyncio.wait_for(closed.wait(), 5)
            assert isinstance(nc.last_error, nats.errors.AuthorizationError)

        asyncio.run(asyncio.wait_for(main(), 30))


# --- cluster.authorization: routes the peers dialed are checked again ------------------------


@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "bcrypt"])
async def test_reload_closes_routes_whose_credential_no_longer_passes(nursery, tmp_path, hashed):
    from tests.cluster.test_cluster import routed, wait_for
    from trionats.options import ClusterOptions

    def conf(password: str) -> str:
        if hashed:
            password = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
        return (f'cluster {{ name: C, listen: "127.0.0.1:-1", '
                f'authorization {{ user: ruser, password: "{password}" }} }}\n')  # fmt: skip

    path = tmp_path / "a.conf"
    path.write_text(conf("old-secret"))
    options = attrs.evolve(load(path), host="127.0.0.1", port=-1)
    a = await nursery.start(Server(options, flag_overrides={"host": "127.0.0.1", "port": -1}).serve)
    url = f"nats-route://ruser:old-secret@127.0.0.1:{a.cluster.port}"
    dialer = ClusterOptions(name="C", host="127.0.0.1", port=-1, routes=(url,))
    b = await nursery.start(Server(Options(host="127.0.0.1", port=-1, cluster=dialer)).serve)
    await wait_for(lambda: routed(a, b))
    route = a.cluster.routes[b.server_id]

    path.write_text(conf("old-secret"))  # (a new bcrypt hash of it: checked again, passes)
    assert a.reload()
    await trio.sleep(0.3)  # the bcrypt re-check runs in a worker thread
    assert route.closed_reason is None

    path.write_text(conf("new-secret"))
    assert a.reload()
    await wait_for(lambda: route.closed_reason is not None)
    assert route.closed_reason == "Authentication Failure"
    # B dials again with the old credential and is refused each time.
    await trio.sleep(1.5)
    assert b.server_id not in a.cluster.routes
    a.shutdown()
    b.shutdown()
