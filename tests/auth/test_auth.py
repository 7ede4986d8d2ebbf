"""Authentication and permissions: pure checks, raw-socket behaviour, differential tests against
nats-server 2.15.1 started with the same `authorization` configuration, and nats-py."""

from __future__ import annotations

import asyncio
import json
import re
import time

import attrs
import bcrypt
import nats
import nats.errors
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess
import tests.differential.test_differential as differential
from tests.differential.test_differential import C, PING, assert_same_replies, pub
from trionats import cli, defaults
from trionats.auth import Authenticator, CompiledPermissions, Failure, PendingPassword, PublishCheck
from trionats.auth import nkeys
from trionats.core.dispatch import GrantingOutbound
from trionats.config.load import load as load_config
from trionats.options import (
    Authorization,
    Options,
    Permissions,
    ResponsePermission,
    SubjectPermission,
    User,
)

#: Cost 4: the cheapest bcrypt, so tests stay fast (the check is the same code at any cost).
HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
HASH_2B = bcrypt.hashpw(b"other", bcrypt.gensalt(4)).decode()
HASH_2Y = "$2y$" + bcrypt.hashpw(b"third", bcrypt.gensalt(4)).decode()[4:]

BOB_PERMS = (
    '{ publish: { allow: ["foo.>", "_INBOX.>"], deny: ["foo.secret"] }, '
    'subscribe: { allow: ["foo.>", "q.> grp", "w.*"], deny: ["foo.nosub", "w.deny"] } }'
)

USERS_CONF = f"""
authorization {{
  default_permissions: {{ publish: "pub.>", subscribe: ">" }}
  users: [
    {{ user: alice, password: "{HASH}" }}
    {{ user: beth, password: "{HASH_2B}", permissions: {{ publish: ">", subscribe: ">" }} }}
    {{ user: yves, password: "{HASH_2Y}", permissions: {{ publish: ">", subscribe: ">" }} }}
    {{ user: bob, password: plain, permissions: {BOB_PERMS} }}
    {{ user: full, password: f, permissions: {{ publish: ">", subscribe: ">" }} }}
    {{ user: resp, password: r, permissions: {{ allow_responses: true }} }}
    {{ user: resp2, password: r, permissions: {{ allow_responses: {{ max: 2 }}, subscribe: ">" }} }}
    {{ user: ws, password: w, allowed_connection_types: ["WEBSOCKET"] }}
  ]
  timeout: 1
}}
"""


def _connect(**fields) -> bytes:
    return b"CONNECT " + json.dumps({"verbose": False, **fields}).encode() + b"\r\n"


def _write(tmp_path_factory, name: str, text: str):
    path = tmp_path_factory.mktemp(name) / "auth.conf"
    path.write_text(text)
    return path


async def _trionats_like(server_factory, path, **extra):
    """A trionats Server with the authorization settings of the configuration file `path`."""
    loaded = load_config(path)
    return await server_factory(
        authorization=loaded.authorization, no_auth_user=loaded.no_auth_user, **extra
    )


# --- pure: the credentials table ----------------------------------------------------------------


def _auth(**fields) -> Authenticator:
    no_auth_user = fields.pop("no_auth_user", "")
    return Authenticator(Options(authorization=Authorization(**fields), no_auth_user=no_auth_user))


def test_no_authorization_means_everyone_is_anonymous():
    auth = Authenticator(Options())
    assert not auth.enabled and not auth.auth_required


def test_single_user_plain_password():
    auth = _auth(user="u", password="p")
    assert auth.auth_required and auth.plaintext
    assert auth.check("u", "p", "").user == "u"
    assert type(auth.check("u", "x", "")) is Failure
    assert auth.check("x", "p", "").text == 'authentication error - User "x"'
    assert auth.check("", "", "").text == "authentication error"


def test_token():
    auth = _auth(token="t0k")
    assert auth.check("", "", "t0k").user == ""
    assert type(auth.check("", "", "bad")) is Failure
    assert type(auth.check("t0k", "", "")) is Failure


@pytest.mark.parametrize("hashed", [HASH, HASH_2B, HASH_2Y], ids=["2a-or-2b", "2b", "2y"])
async def test_bcrypt_password_verified_off_the_loop(hashed):
    auth = _auth(users=[User(user="a", password=hashed)])
    assert not auth.plaintext
    password = {HASH: "secret", HASH_2B: "other", HASH_2Y: "third"}[hashed]
    pending = auth.check("a", password, "")
    assert type(pending) is PendingPassword
    assert await auth.verify(pending)
    assert not await auth.verify(auth.check("a", "wrong", ""))


async def test_unknown_user_costs_a_bcrypt_check_when_bcrypt_users_exist():
    auth = _auth(users=[User(user="a", password=HASH)])
    pending = auth.check("nobody", "secret", "")
    assert type(pending) is PendingPassword and pending.identity is None
    # Even the right password of another user does not let an unknown name in.
    assert not await auth.verify(pending)
    plain_only = _auth(users=[User(user="a", password="p")])
    assert type(plain_only.check("nobody", "p", "")) is Failure


def test_no_auth_user_maps_credential_less_connects():
    auth = _auth(users=[User(user="bob", password="p")], no_auth_user="bob")
    assert auth.enabled and not auth.auth_required
    assert auth.check("", "", "").user == "bob"
    assert type(auth.check("bob", "x", "")) is Failure
    assert auth.check("", "", "tok").text == 'authentication error - Token "[REDACTED]"'


def test_default_permissions_apply_to_users_without_their_own():
    default = Permissions(publish=SubjectPermission(allow=("a",)))
    own = Permissions(subscribe=SubjectPermission(allow=("b",)))
    auth = _auth(
        users=[User(user="x", password="p"), User(user="y", password="p", permissions=own)],
        default_permissions=default,
    )
    assert auth.check("x", "p", "").permissions.pub_allow == (b"a",)
    assert auth.check("y", "p", "").permissions.has_publish is False


def test_failure_log_is_rate_limited():
    lines = []

    class Log:
        def error(self, text):
            lines.append(text)

    auth = _auth(user="u", password="p")
    for i in range(defaults.AUTH_FAILURE_LOG_BURST + 5):
        auth.log_failure(Log(), f"authentication error {i}")
    assert len(lines) == defaults.AUTH_FAILURE_LOG_BURST
    auth._log_window_start -= defaults.AUTH_FAILURE_LOG_WINDOW
    auth.log_failure(Log(), "again")
    assert lines[-2].startswith("5 more authentication errors") and lines[-1] == "again"


# --- pure: permissions --------------------------------------------------------------------------


def _perms(publish=None, subscribe=None, responses=None) -> CompiledPermissions:
    def block(spec):
        if spec is None:
            return None
        allow, deny = spec
        return SubjectPermission(allow=allow, deny=deny)

    return CompiledPermissions(
        Permissions(publish=block(publish), subscribe=block(subscribe), allow_responses=responses)
    )


PUBLISH_TABLE = [
    # (allow, deny), subject, allowed
    ((("foo.>",), ()), "foo.bar", True),
    ((("foo.>",), ()), "foo", False),
    ((("foo.*",), ()), "foo.bar.baz", False),
    ((None, ("foo.secret",)), "foo.secret", False),
    ((None, ("foo.secret",)), "foo.public", True),
    ((("foo.>",), ("foo.*.x",)), "foo.a.x", False),
    ((("foo.>",), ("foo.*.x",)), "foo.a.y", True),
    (((), ()), "anything", False),
    (((">",), ()), "a.b.c", True),
]


@pytest.mark.parametrize(("spec", "subject", "allowed"), PUBLISH_TABLE)
def test_publish_permission_table(spec, subject, allowed):
    assert _perms(publish=spec).can_publish(subject.encode()) is allowed
    check = PublishCheck(_perms(publish=spec))
    assert check.allowed(subject.encode(), 0.0) is allowed
    assert check.allowed(subject.encode(), 0.0) is allowed  # cached


SUBSCRIBE_TABLE = [
    # (allow, deny), subject, queue, allowed
    ((("foo.>",), ()), "foo.*", None, True),
    ((("foo.bar",), ()), "foo.*", None, False),
    ((("foo.*",), ()), "foo.*", None, True),
    ((("foo",), ()), "foo", b"any", True),
    ((("foo v1",), ()), "foo", None, False),
    ((("foo v1",), ()), "foo", b"v1", True),
    ((("foo v1",), ()), "foo", b"v2", False),
    ((("foo v.*",), ()), "foo", b"v.2", True),
    ((None, ("foo v1",)), "foo", b"v1", False),
    ((None, ("foo v1",)), "foo", b"v2", True),
    ((None, ("foo v1",)), "foo", None, True),
    ((None, ("foo.nosub",)), "foo.nosub", None, False),
    ((None, ("foo.nosub",)), "foo.*", None, True),
]


@pytest.mark.parametrize(("spec", "subject", "queue", "allowed"), SUBSCRIBE_TABLE)
def test_subscribe_permission_table(spec, subject, queue, allowed):
    assert _perms(subscribe=spec).can_subscribe(subject.encode(), queue) is allowed


def test_allow_responses_grants_count_and_expiry():
    check = PublishCheck(_perms(responses=ResponsePermission(max_msgs=2, expires=10.0)))
    assert not check.allowed(b"_INBOX.1", 0.0)  # empty allow list
    check.grant(b"_INBOX.1", 0.0)
    assert check.allowed(b"_INBOX.1", 1.0) and check.allowed(b"_INBOX.1", 1.0)
    assert not check.allowed(b"_INBOX.1", 1.0)
    check.grant(b"_INBOX.2", 0.0)
    assert not check.allowed(b"_INBOX.2", 11.0)  # expired
    unlimited = PublishCheck(_perms(responses=ResponsePermission(max_msgs=-1)))
    unlimited.grant(b"r", 0.0)
    assert all(unlimited.allowed(b"r", 1.0) for _ in range(5))


def test_response_grants_are_bounded(monkeypatch):
    monkeypatch.setattr(defaults, "MAX_RESPONSE_GRANTS", 3)
    check = PublishCheck(_perms(responses=ResponsePermission()))
    for i in range(10):
        check.grant(b"r.%d" % i, 0.0)
    assert len(check.replies) == 3 and b"r.9" in check.replies


def test_granting_outbound_reads_the_reply_from_msg_and_hmsg_tails():
    written = []

    class Out:
        def write_msg(self, *args):
            written.append(args)

    check = PublishCheck(_perms(responses=ResponsePermission()))
    out = GrantingOutbound(Out(), check, lambda: 0.0)
    out.write_msg(b"MSG a 1 ", b"5\r\n", b"hello\r\n", 0)
    out.write_msg(b"MSG a 1 ", b"_INBOX.x 5\r\n", b"hello\r\n", 0)
    out.write_msg(b"HMSG a 1 ", b"12 17\r\n", b"", 0)
    out.write_msg(b"HMSG a 1 ", b"_INBOX.y 12 17\r\n", b"", 0)
    assert set(check.replies) == {b"_INBOX.x", b"_INBOX.y"} and len(written) == 4


# --- raw sockets --------------------------------------------------------------------------------


@pytest.fixture
async def raw():
    """Open RawClients with `await raw(port)`; all are closed at the end of the test."""
    opened = []

    async def open_client(port: int) -> RawClient:
        client = await RawClient.connect(port)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.aclose()


async def test_info_auth_required_and_ops_before_connect(server_factory, raw):
    srv = await server_factory(authorization=Authorization(user="u", password="p"))
    client = await raw(srv.port)
    info = json.loads(client.info[5:])
    assert info["auth_required"] is True
    assert list(info).index("auth_required") == list(info).index("headers") + 1
    for op in (b"PING\r\n", b"SUB a 1\r\n", b"PUB a 0\r\n\r\n", b"UNSUB 1\r\n"):
        client = await raw(srv.port)
        await client.send(op)
        assert await client.expect_closed() == b"-ERR 'Authorization Violation'\r\n"


async def test_no_info_auth_required_without_auth(server, raw):
    client = await raw(server.port)
    assert b"auth_required" not in client.info


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"user": "u", "pass": "p"}, True),
        ({"user": "u", "pass": "x"}, False),
        ({"user": "x", "pass": "p"}, False),
        ({}, False),
        ({"auth_token": "p"}, False),
    ],
)
async def test_single_user(server_factory, raw, fields, ok):
    srv = await server_factory(authorization=Authorization(user="u", password="p"))
    client = await raw(srv.port)
    await client.send(_connect(**fields) + PING)
    if ok:
        await client.expect(b"PONG\r\n")
    else:
        assert await client.expect_closed() == b"-ERR 'Authorization Violation'\r\n"


async def test_token_and_verbose_ok(server_factory, raw):
    srv = await server_factory(authorization=Authorization(token="s3cr3t"))
    client = await raw(srv.port)
    await client.send(b'CONNECT {"auth_token":"s3cr3t"}\r\nPING\r\n')
    await client.expect(b"+OK\r\nPONG\r\n")
    bad = await raw(srv.port)
    await bad.send(b'CONNECT {"auth_token":"nope"}\r\nPING\r\n')
    assert await bad.expect_closed() == b"-ERR 'Authorization Violation'\r\n"


async def test_everything_after_a_bcrypt_connect_waits_for_the_verdict(server_factory, raw):
    """CONNECT, SUB, PUB, PING in one read: handled in order once bcrypt said yes."""
    srv = await server_factory(authorization=Authorization(users=[User(user="a", password=HASH)]))
    client = await raw(srv.port)
    await client.send(
        _connect(user="a", **{"pass": "secret"})
        + b"SUB s 1\r\n" + pub(b"s", b"one") + PING + pub(b"s", b"two") + PING
    )
    await client.expect(b"MSG s 1 3\r\none\r\nPONG\r\nMSG s 1 3\r\ntwo\r\nPONG\r\n")
    bad = await raw(srv.port)
    await bad.send(_connect(user="a", **{"pass": "bad"}) + b"SUB s 2\r\n" + PING)
    assert await bad.expect_closed() == b"-ERR 'Authorization Violation'\r\n"


async def test_bcrypt_connect_split_across_reads(server_factory, raw):
    srv = await server_factory(authorization=Authorization(users=[User(user="a", password=HASH)]))
    client = await raw(srv.port)
    data = _connect(user="a", **{"pass": "secret"}) + b"SUB s 1\r\n" + pub(b"s", b"x") + PING
    for i in range(0, len(data), 7):
        await client.send(data[i : i + 7])
        await trio.sleep(0.001)
    await client.expect(b"MSG s 1 1\r\nx\r\nPONG\r\n")


async def test_auth_timeout(server_factory, raw):
    srv = await server_factory(authorization=Authorization(token="t", timeout=0.3))
    client = await raw(srv.port)
    started = trio.current_time()
    assert await client.expect_closed() == b"-ERR 'Authentication Timeout'\r\n"
    assert 0.25 < trio.current_time() - started < 1.5
    # A CONNECT in time cancels the timer.
    client = await raw(srv.port)
    await client.send(_connect(auth_token="t"))
    await client.expect_nothing(0.5)


def test_auth_timeout_default():
    assert _auth(token="t").timeout == defaults.AUTH_TIMEOUT == 2.0


async def test_user_not_allowed_on_this_connection_type(server_factory, raw):
    users = [User(user="w", password="p", allowed_connection_types=("WEBSOCKET",))]
    srv = await server_factory(authorization=Authorization(users=users))
    client = await raw(srv.port)
    await client.send(_connect(user="w", **{"pass": "p"}) + PING)
    assert await client.expect_closed() == b"-ERR 'Authorization Violation'\r\n"


async def test_event_loop_not_blocked_by_bcrypt(server_factory, raw):
    """A slow bcrypt check (cost 12) runs in a thread: other clients get PONGs meanwhile."""
    slow = bcrypt.hashpw(b"pw", bcrypt.gensalt(12)).decode()
    srv = await server_factory(authorization=Authorization(users=[User(user="a", password=slow)]))
    other = await raw(srv.port)
    await other.send(_connect(user="a", **{"pass": "pw"}) + PING)
    await other.expect(b"PONG\r\n", timeout=10)
    waiting = await raw(srv.port)
    await waiting.send(_connect(user="a", **{"pass": "pw"}) + PING)
    await trio.sleep(0.02)
    worst = 0.0
    for _ in range(5):
        started = time.monotonic()
        await other.send(PING)
        await other.expect(b"PONG\r\n")
        worst = max(worst, time.monotonic() - started)
    assert worst < 0.1
    await waiting.expect(b"PONG\r\n", timeout=10)


@pytest.mark.slow
async def test_failed_login_flood_does_not_starve_other_clients(server_factory, raw):
    """200 wrong bcrypt logins at once; an established request/reply loop stays fast.

    Cost 9 is ~30 ms per check: on the event loop, 200 of them would hold every request up
    for seconds; in two worker threads the loop stays free.
    """
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(9)).decode()
    users = [
        User(user="a", password=hashed),
        User(user="svc", password="plain"),
    ]
    srv = await server_factory(authorization=Authorization(users=users, timeout=30))
    responder = await raw(srv.port)
    await responder.send(_connect(user="svc", **{"pass": "plain"}) + b"SUB req 1\r\n" + PING)
    await responder.expect(b"PONG\r\n")
    requester = await raw(srv.port)
    await requester.send(_connect(user="svc", **{"pass": "plain"}) + b"SUB rep 1\r\n" + PING)
    await requester.expect(b"PONG\r\n")
    refused = 0

    async def bad_login(i: int) -> None:
        nonlocal refused
        client = await raw(srv.port)
        name = "a" if i % 2 else f"nobody{i}"
        await client.send(_connect(user=name, **{"pass": "wrong"}) + PING)
        if await client.expect_closed(timeout=60) == b"-ERR 'Authorization Violation'\r\n":
            refused += 1
        await client.aclose()

    async def next_line(client: RawClient) -> bytes:
        while (line := await client.read_line()) == PING:  # the server's first RTT PING
            await client.send(b"PONG\r\n")
        return line

    latencies = []
    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(bad_login, i)
        await trio.sleep(0.05)
        for _ in range(50):
            started = time.monotonic()
            await requester.send(pub(b"req", b"ping", b"rep"))
            assert await next_line(responder) == b"MSG req 1 rep 4\r\n"
            await responder.read_line()
            await responder.send(pub(b"rep", b"pong"))
            assert await next_line(requester) == b"MSG rep 1 4\r\n"
            await requester.read_line()
            latencies.append(time.monotonic() - started)
    assert refused == 200
    latencies.sort()
    print(f"request/reply during the flood: median {latencies[25] * 1e3:.1f} ms, "
          f"max {latencies[-1] * 1e3:.1f} ms")
    # 200 bcrypt checks on the event loop would hold it for seconds; in worker threads a
    # round trip waits at most for a thread switch (bounds loose for a busy 2-core machine).
    assert latencies[len(latencies) // 2] < 0.05, latencies
    assert latencies[-1] < 1.0, latencies


# --- differential: the same configuration and bytes to nats-server and trionats -----------------


@pytest.fixture(autouse=True)
def _reset_as(monkeypatch):
    """The differential helper empties the match cache with an anonymous CONNECT, which
    authentication refuses: log in as the `full` user when it exists, else skip the reset."""
    async def reset(port: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.receive_some(65536)  # INFO
            await stream.send_all(_login("full", "f") + b"SUB > 1\r\nUNSUB 1\r\nPING\r\n")
            received = b""
            with trio.fail_after(5):
                while b"PONG\r\n" not in received and b"-ERR" not in received:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    received += chunk

    monkeypatch.setattr(differential, "reset_match_cache", reset)


@pytest.fixture(scope="module")
def users_conf(tmp_path_factory):
    return _write(tmp_path_factory, "users", USERS_CONF)


@pytest.fixture(scope="module")
def users_reference(users_conf):
    with NatsServerProcess("-c", str(users_conf)) as process:
        yield process


def _login(user: str, password: str, **extra) -> bytes:
    return _connect(user=user, **{"pass": password}, **extra)


USERS_SCRIPTS = {
    "ping_before_connect": [PING],
    "sub_before_connect": [b"SUB foo 1\r\n"],
    "pub_before_connect": [pub(b"foo", b"x")],
    "connect_without_credentials": [C + PING],
    "wrong_plain_password": [_login("bob", "nope") + PING],
    "wrong_bcrypt_password": [_login("alice", "nope") + PING],
    "unknown_user": [_login("mallory", "secret") + PING],
    "token_against_users": [_connect(auth_token="secret") + PING],
    "connection_type_not_allowed": [_login("ws", "w") + PING],
    "account_field": [_login("bob", "plain", account="A") + PING],
    "bcrypt_user_verbose_pipeline": [
        b'CONNECT {"user":"alice","pass":"secret"}\r\nSUB pub.x 1\r\n'
        + pub(b"pub.x", b"hi") + pub(b"x", b"no") + PING
    ],
    "bcrypt_2b_and_2y": [_login("beth", "other") + PING, _login("yves", "third") + PING],
    "second_connect_with_bad_credentials": [
        _login("bob", "plain") + PING, _login("bob", "bad") + PING
    ],
    "connect_info_after_first_pong": [_login("bob", "plain", protocol=1) + PING + PING],
    "bob_permission_table": [
        _login("bob", "plain")
        + b"SUB foo.* 1\r\nSUB foo.nosub 2\r\nSUB q.a 3\r\nSUB q.a grp 4\r\nSUB q.a other 5\r\n"
        + b"SUB foo.x _sys_ 6\r\nSUB bar 7\r\nSUB w.* 8\r\nSUB w.deny 9\r\n"
        + pub(b"foo.nosub", b"x") + pub(b"foo.ok", b"y") + pub(b"foo.secret", b"")
        + pub(b"bar", b"z") + pub(b"_INBOX.a", b"i") + pub(b"w.deny", b"d") + pub(b"w.ok", b"o")
        + PING
    ],
    "bob_verbose_violations": [
        b'CONNECT {"user":"bob","pass":"plain"}\r\n'
        + pub(b"foo.secret", b"") + pub(b"foo.a", b"") + b"SUB nope 1\r\nSUB foo.a 2\r\n" + PING
    ],
    "bob_batched_and_run_violations": [
        _login("bob", "plain") + b"SUB foo.> 1\r\n"
        + pub(b"foo.a", b"1") + pub(b"foo.secret", b"2") + pub(b"foo.b", b"3")
        + pub(b"foo.secret", b"4") * 5 + pub(b"foo.c", b"5") * 5 + PING
    ],
    "default_permissions": [
        _login("alice", "secret") + b"SUB any.thing 1\r\n"
        + pub(b"pub.a", b"") + pub(b"other", b"") + PING
    ],
    "sys_queue_refused_for_everyone": [_login("full", "f") + b"SUB foo _sys_ 1\r\n" + PING],
    "allow_responses_once": [
        (0, _login("resp", "r") + b"SUB svc 1\r\n" + PING),
        (1, _login("full", "f") + b"SUB _INBOX.r 9\r\n" + pub(b"svc", b"q", b"_INBOX.r") + PING),
        (0, pub(b"_INBOX.r", b"a1") + pub(b"_INBOX.r", b"a2") + pub(b"elsewhere", b"") + PING),
        (1, PING),
    ],
    "allow_responses_max_two": [
        (0, _login("resp2", "r") + b"SUB svc 1\r\n" + PING),
        (1, _login("full", "f") + b"SUB _INBOX.r 9\r\n" + pub(b"svc", b"q", b"_INBOX.r") + PING),
        (0, pub(b"_INBOX.r", b"a1") + pub(b"_INBOX.r", b"a2") + pub(b"_INBOX.r", b"a3") + PING),
        (1, PING),
    ],
    "allow_responses_queue_member": [
        (0, _login("resp", "r") + b"SUB svc g 1\r\n" + PING),
        (1, _login("full", "f") + b"SUB _INBOX.q 9\r\n" + pub(b"svc", b"q", b"_INBOX.q") + PING),
        (0, pub(b"_INBOX.q", b"ok") + PING),
        (1, PING),
    ],
    "delivery_time_deny_for_wildcard_subscription": [
        (0, _login("bob", "plain") + b"SUB foo.* 1\r\nSUB foo.> 2\r\n" + PING),
        (1, _login("full", "f") + pub(b"foo.nosub", b"x") + pub(b"foo.ok", b"y") + PING),
        (0, PING),
    ],
}


@pytest.mark.parametrize("steps", list(USERS_SCRIPTS.values()), ids=list(USERS_SCRIPTS))
async def test_users_script(users_reference, users_conf, server_factory, steps):
    trionats = await _trionats_like(server_factory, users_conf)
    connections = 1 + max((s[0] for s in steps if isinstance(s, tuple)), default=0)
    await assert_same_replies(users_reference.port, trionats.port, steps, connections)


NO_AUTH_CONF = f"""
authorization {{
  users: [
    {{ user: bob, password: plain, permissions: {BOB_PERMS} }}
    {{ user: alice, password: "{HASH}" }}
  ]
}}
no_auth_user: bob
"""

NO_AUTH_SCRIPTS = {
    "ping_before_connect_is_fine": [PING],
    "sub_before_connect": [b"SUB foo.a 1\r\n" + PING],
    "ops_before_connect_then_bob": [
        b"SUB bar 1\r\n" + pub(b"bar", b"x") + C + pub(b"bar", b"y") + b"SUB bar 2\r\n" + PING
    ],
    "credential_less_connect_is_bob": [C + b"SUB bar 1\r\nSUB foo.a 2\r\n" + PING],
    "other_user_still_works": [_login("alice", "secret") + b"SUB bar 1\r\n" + PING],
    "wrong_password_is_refused": [_login("alice", "x") + PING],
    "token_is_refused": [_connect(auth_token="x") + PING],
}


@pytest.fixture(scope="module")
def no_auth_conf(tmp_path_factory):
    return _write(tmp_path_factory, "noauth", NO_AUTH_CONF)


@pytest.fixture(scope="module")
def no_auth_reference(no_auth_conf):
    with NatsServerProcess("-c", str(no_auth_conf)) as process:
        yield process


@pytest.mark.parametrize("steps", list(NO_AUTH_SCRIPTS.values()), ids=list(NO_AUTH_SCRIPTS))
async def test_no_auth_user_script(no_auth_reference, no_auth_conf, server_factory, steps):
    trionats = await _trionats_like(server_factory, no_auth_conf)
    replies = await assert_same_replies(no_auth_reference.port, trionats.port, steps)
    assert "auth_required" not in replies[0].info


SIMPLE_CONFS = {
    "token": ('authorization { token: "s3cr3t" }', [
        [_connect(auth_token="s3cr3t") + PING],
        [_connect(auth_token="wrong") + PING],
        [_login("s3cr3t", "") + PING],
        [b"PING\r\n"],
    ]),
    "single_user": ("authorization { user: u, password: p }", [
        [_login("u", "p") + PING],
        [_login("u", "x") + PING],
        [_login("x", "p") + PING],
        [C + PING],
    ]),
    "single_user_bcrypt": (f'authorization {{ user: u, password: "{HASH}" }}', [
        [_login("u", "secret") + b"SUB a 1\r\n" + pub(b"a", b"x") + PING],
        [_login("u", "bad") + PING],
    ]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(SIMPLE_CONFS))
async def test_simple_modes(tmp_path, server_factory, name):
    text, scripts = SIMPLE_CONFS[name]
    path = tmp_path / "auth.conf"
    path.write_text(text + "\n")
    trionats = await _trionats_like(server_factory, path)
    with NatsServerProcess("-c", str(path)) as reference:
        for steps in scripts:
            replies = await assert_same_replies(reference.port, trionats.port, steps)
            assert replies[0].info["auth_required"] is True


async def test_authentication_timeout_like_nats_server(tmp_path, server_factory):
    path = tmp_path / "auth.conf"
    path.write_text("authorization { token: t, timeout: 0.3 }\n")
    trionats = await _trionats_like(server_factory, path)
    with NatsServerProcess("-c", str(path)) as reference:
        replies = await assert_same_replies(reference.port, trionats.port, [b""], until_closed=True)
    assert replies[0].output == b"-ERR 'Authentication Timeout'\r\n"


async def test_authentication_timeout_with_no_auth_user(tmp_path, server_factory):
    path = tmp_path / "auth.conf"
    path.write_text(
        "authorization { users: [ { user: bob, password: p } ], timeout: 0.3 }\nno_auth_user: bob\n"
    )
    trionats = await _trionats_like(server_factory, path)
    with NatsServerProcess("-c", str(path)) as reference:
        await assert_same_replies(reference.port, trionats.port, [b""], until_closed=True)


# --- logs ---------------------------------------------------------------------------------------


def _log_lines(text: str, level: str) -> list[str]:
    """The messages of one level, without the timestamp, pid and the peer's port."""
    out = []
    for line in text.splitlines():
        if f"[{level}]" in line:
            message = line.split(f"[{level}] ", 1)[1]
            out.append(message.split(" - ", 2)[-1] if " - cid:" in message else message)
    return out


def test_log_lines_like_nats_server(users_conf):
    script = [
        _login("alice", "nope") + PING,
        _login("mallory", "x") + PING,
        C + PING,
        _connect(auth_token="t") + PING,
        _login("bob", "plain") + b"SUB q.a other 5\r\nSUB foo.nosub 2\r\n" + pub(b"foo.secret", b"")
        + PING,
    ]

    def drive(port: int) -> None:
        import socket

        for data in script:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.settimeout(5)
                sock.recv(4096)
                sock.sendall(data)
                received = b""
                while b"PONG" not in received and b"-ERR 'Authorization" not in received:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    received += chunk

    logs = {}
    for name, kind in (("nats-server", NatsServerProcess), ("trionats", TrionatsProcess)):
        with kind("-c", str(users_conf)) as process:  # one at a time: a failure stops what it started
            drive(process.port)
            time.sleep(0.2)
            logs[name] = process.log()
    assert _log_lines(logs["trionats"], "ERR") == _log_lines(logs["nats-server"], "ERR")
    assert _log_lines(logs["trionats"], "ERR")[0] == 'authentication error - User "alice"'
    assert "Plaintext passwords detected, use nkeys or bcrypt" in logs["trionats"]


def test_no_plaintext_warning_with_bcrypt_only(tmp_path):
    path = tmp_path / "auth.conf"
    path.write_text(f'authorization {{ users: [ {{ user: a, password: "{HASH}" }} ] }}\n')
    with TrionatsProcess("-c", str(path)) as process:
        pass
    assert "Plaintext passwords" not in process.log()


# --- command line -------------------------------------------------------------------------------


def test_cli_user_pass_and_auth_flags():
    flags = cli.parse_args(["--user", "a", "--pass", "b"])
    assert flags.overrides["authorization"] == Authorization(user="a", password="b")
    flags = cli.parse_args(["--auth", "tok"])
    assert flags.overrides["authorization"] == Authorization(token="tok")


def test_cli_flags_override_the_file(tmp_path):
    path = tmp_path / "auth.conf"
    path.write_text("authorization { token: t }\n")
    flags = cli.parse_args(["-c", str(path), "--user", "u", "--pass", "p"])
    options = cli.build_options(flags)
    assert options.authorization.user == "u" and options.authorization.password == "p"


def _nats_py(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_nats_py_user_password_via_cli():
    with TrionatsProcess("--user", "u", "--pass", "p") as process:

        async def main():
            nc = await nats.connect(process.url, user="u", password="p", allow_reconnect=False)
            sub = await nc.subscribe("greet")
            await nc.publish("greet", b"hi")
            msg = await sub.next_msg(timeout=5)
            assert msg.data == b"hi"
            await nc.close()

        _nats_py(main())
        # The refusal is checked on a raw socket: a refused nats.connect() here made the next
        # ast.parse in the session fail ("AST constructor recursion depth mismatch", CPython
        # 3.11); not investigated further.
        import socket

        with socket.create_connection(("127.0.0.1", process.port)) as sock:
            sock.settimeout(5)
            sock.recv(4096)
            sock.sendall(_login("u", "bad") + PING)
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
        assert received == b"-ERR 'Authorization Violation'\r\n"
    assert "Plaintext passwords detected, use nkeys or bcrypt" in process.log()


def test_nats_py_token_via_cli():
    with TrionatsProcess("--auth", "s3cr3t") as process:

        async def main():
            nc = await nats.connect(process.url, token="s3cr3t", allow_reconnect=False)
            sub = await nc.subscribe("svc", cb=None)

            async def serve():
                msg = await sub.next_msg(timeout=5)
                await msg.respond(b"pong")

            task = asyncio.create_task(serve())
            reply = await nc.request("svc", b"ping", timeout=5)
            assert reply.data == b"pong"
            await task
            await nc.close()

        _nats_py(main())


def test_nats_py_bcrypt_user_and_permission_error(users_conf):
    with TrionatsProcess("-c", str(users_conf)) as process:

        async def main():
            errors = []

            async def on_error(exc):
                errors.append(str(exc))

            nc = await nats.connect(
                process.url, user="bob", password="plain", error_cb=on_error, allow_reconnect=False
            )
            await nc.publish("foo.secret", b"x")
            await nc.flush()
            for _ in range(50):
                if errors:
                    break
                await asyncio.sleep(0.02)
            assert nc.is_connected
            expected = 'permissions violation for publish to "foo.secret"'
            assert any(expected in e.lower() for e in errors)
            await nc.close()
            nc = await nats.connect(process.url, user="alice", password="secret")
            await nc.publish("pub.ok", b"x")
            await nc.flush()
            await nc.close()

        _nats_py(main())


def test_layer_of_auth_package():
    """trionats.auth.permissions is plain code: no trio, no sockets."""
    from pathlib import Path

    import trionats.auth.permissions as module
    from tests.core.test_layers import imported_modules

    imported = {name.split(".")[0] for name in imported_modules(Path(module.__file__))}
    assert not {"trio", "socket", "ssl"} & imported


def test_evolve_keeps_authorization_hashes_out_of_repr():
    auth = Authorization(users=[User(user="a", password=HASH)])
    assert HASH not in repr(attrs.evolve(auth))


# --- nkey users -----------------------------------------------------------------------------------

NKEY_SEED = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
NKEY = nkeys.encode_public(
    NKEY_SEED.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
)
OTHER_NKEY = nkeys.encode_public(b"\x02" * 32)
NKEY_CONF = f"""
authorization {{
  users: [
    {{ nkey: {NKEY}, permissions: {{ publish: ">", subscribe: "a" }} }}
    {{ user: u, password: p }}
  ]
}}
"""


def _sign(nonce: str, encoding: str = "raw") -> str:
    import base64

    sig = NKEY_SEED.sign(nonce.encode())
    if encoding == "std":
        return base64.b64encode(sig).decode()
    return base64.urlsafe_b64encode(sig).decode().rstrip("=")


def test_nkey_text_round_trip_and_checksum():
    raw = b"\x05" * 32
    text = nkeys.encode_public(raw)
    assert text.startswith("U") and len(text) == 56
    assert nkeys.decode_public(text) == raw
    assert nkeys.decode_public(text[:-1] + ("A" if text[-1] != "A" else "B")) is None
    assert nkeys.decode_public("N" + text[1:]) is None  # not a user key
    assert nkeys.decode_public("not base32!") is None
    # The example key of the reference is a valid user nkey.
    assert nkeys.is_user_nkey("UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4")


def test_nkey_signature_check():
    nonce = nkeys.new_nonce()
    assert len(nonce) == 15 and nonce != nkeys.new_nonce()
    assert nkeys.verify(NKEY, _sign(nonce), nonce)
    assert nkeys.verify(NKEY, _sign(nonce, "std"), nonce)
    assert not nkeys.verify(NKEY, _sign("other"), nonce)
    assert not nkeys.verify(OTHER_NKEY, _sign(nonce), nonce)
    assert not nkeys.verify(NKEY, "", nonce)
    assert not nkeys.verify(NKEY, "!!!", nonce)


async def _nkey_session(port: int, mode: str) -> tuple[dict, bytes]:
    """Log in as the nkey user (or fail to, per `mode`); return INFO and what followed."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        received = b""
        while b"\r\n" not in received:
            received += await stream.receive_some(65536)
        line, _, received = received.partition(b"\r\n")
        info = json.loads(line[5:])
        nonce = info.get("nonce", "")
        fields = {"nkey": NKEY, "sig": _sign(nonce, "std" if mode == "std" else "raw")}
        if mode == "bad_signature":
            fields["sig"] = _sign(nonce + "x")
        elif mode == "unknown_nkey":
            fields["nkey"] = OTHER_NKEY
        elif mode == "no_credentials":
            fields = {}
        elif mode == "password_user":
            fields = {"user": "u", "pass": "p"}
        await stream.send_all(
            _connect(**fields, protocol=1) + b"SUB a 1\r\nSUB b 2\r\n" + pub(b"a", b"x") + PING
        )
        with trio.move_on_after(2):
            while b"PONG\r\n" not in received:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    received += b"<closed>"
                    break
                received += chunk
        # The INFO after the first PONG (protocol 1): fields vary, the keys must not.
        def keys(match):
            names = set(json.loads(match.group(1))) - differential.OPTIONAL_INFO_KEYS
            return b"INFO " + json.dumps(sorted(names)).encode()

        return info, re.sub(rb"INFO (\{[^\r\n]*\})", keys, received)


@pytest.mark.parametrize(
    "mode", ["raw", "std", "bad_signature", "unknown_nkey", "no_credentials", "password_user"]
)
async def test_nkey_like_nats_server(tmp_path, server_factory, mode):
    path = tmp_path / "nkey.conf"
    path.write_text(NKEY_CONF)
    trionats = await _trionats_like(server_factory, path)
    with NatsServerProcess("-c", str(path)) as reference:
        want_info, want = await _nkey_session(reference.port, mode)
        have_info, have = await _nkey_session(trionats.port, mode)
    assert have == want
    assert have_info["auth_required"] is want_info["auth_required"] is True
    assert len(have_info["nonce"]) == len(want_info["nonce"])
    assert list(have_info).index("nonce") == list(have_info).index("client_ip") + 1


async def test_no_nonce_without_nkey_users(server_factory, raw):
    srv = await server_factory(authorization=Authorization(user="u", password="p"))
    client = await raw(srv.port)
    assert b"nonce" not in client.info


def test_nkey_log_lines_like_nats_server(tmp_path):
    path = tmp_path / "nkey.conf"
    path.write_text(NKEY_CONF)
    logs = {}
    for name, kind in (("nats-server", NatsServerProcess), ("trionats", TrionatsProcess)):
        with kind("-c", str(path)) as process:  # one at a time: a failure stops what it started
            for mode in ("raw", "unknown_nkey", "no_credentials"):
                trio.run(_nkey_session, process.port, mode)
            time.sleep(0.2)
            logs[name] = process.log()
    assert _log_lines(logs["trionats"], "ERR") == _log_lines(logs["nats-server"], "ERR")
    assert f'"$G/nkey:{NKEY}" - Subscription Violation - Subject "b", SID 2' in logs["trionats"]


def test_nats_py_nkey_user(tmp_path):
    """nats-py signs the nonce through `signature_cb` (its own nkeys support needs the `nkeys`
    package, which is not installed); the public key is set on the client by hand."""
    path = tmp_path / "nkey.conf"
    path.write_text(NKEY_CONF)
    with TrionatsProcess("-c", str(path)) as process:

        async def main():
            nc = nats.NATS()
            nc._public_nkey = NKEY
            await nc.connect(
                process.url, signature_cb=lambda nonce: _sign(nonce).encode(),
                allow_reconnect=False,
            )
            sub = await nc.subscribe("a")
            await nc.publish("a", b"signed")
            assert (await sub.next_msg(timeout=5)).data == b"signed"
            await nc.close()

        _nats_py(main())


# --- the message path -----------------------------------------------------------------------------


async def test_pub_handlers_replaced_only_for_connections_with_publish_permissions(
    server_factory, raw
):
    users = [
        User(user="free", password="p"),
        User(user="held", password="p", permissions=Permissions(
            publish=SubjectPermission(allow=("ok.>",)))),
    ]  # fmt: skip
    srv = await server_factory(authorization=Authorization(users=users))
    free = await raw(srv.port)
    await free.send(_login("free", "p") + PING)
    await free.expect(b"PONG\r\n")
    held = await raw(srv.port)
    await held.send(_login("held", "p") + PING)
    await held.expect(b"PONG\r\n")
    by_user = {client.auth_user: client for client in srv.clients.values()}
    assert not {"_on_pub", "_on_pub_batch", "_on_pub_run"} & vars(by_user["free"]).keys()
    assert by_user["held"]._on_pub_run == by_user["held"]._checked_pub_run
    # Runs, batches and single PUBs of the held connection: allowed ones delivered in order.
    await free.send(b"SUB ok.> 1\r\n" + PING)
    await free.expect(b"PONG\r\n")
    await held.send(
        pub(b"ok.a", b"1") * 3 + pub(b"no", b"2") * 2 + pub(b"ok.b", b"3") + pub(b"no", b"")
        + PING
    )
    await held.expect(
        b"-ERR 'Permissions Violation for Publish to \"no\"'\r\n" * 3 + b"PONG\r\n"
    )
    await free.expect(
        b"MSG ok.a 1 1\r\n1\r\n" * 3 + b"MSG ok.b 1 1\r\n3\r\n", timeout=5
    )


async def test_bcrypt_pause_with_protocol_trace(server_factory, raw, tmp_path):
    """The traced event loop pauses and resumes at a bcrypt CONNECT the same way."""
    from trionats import logging as tlog

    tlog.configure(log_file=str(tmp_path / "trace.log"), trace=True)
    try:
        srv = await server_factory(
            authorization=Authorization(users=[User(user="a", password=HASH)])
        )
        client = await raw(srv.port)
        await client.send(
            _login("a", "secret") + b"SUB s 1\r\n" + pub(b"s", b"x") * 3 + PING
        )
        await client.expect(b"MSG s 1 1\r\nx\r\n" * 3 + b"PONG\r\n")
    finally:
        tlog.configure()
    assert "<<- [SUB s 1]" in (tmp_path / "trace.log").read_text()


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, 'no_auth_user: "x" present, but users/nkeys are not defined'),
        (Authorization(users=[User(user="a", password="b")]),
         'no_auth_user: "x" not present as user or nkey in authorization block or account '
         "configuration"),
    ],
)  # fmt: skip
def test_no_auth_user_must_name_a_user(authorization, message):
    from trionats.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        Options(authorization=authorization, no_auth_user="x").check()
    assert str(info.value) == message


async def test_pedantic_invalid_subject_is_answered_before_the_publish_violation(
    server_factory, raw
):
    """nats-server checks a pedantic client's subject at the PUB line, before permissions."""
    users = [User(user="a", password="p", permissions=Permissions(
        publish=SubjectPermission(deny=("foo.>",))))]  # fmt: skip
    srv = await server_factory(authorization=Authorization(users=users))
    client = await raw(srv.port)
    await client.send(b'CONNECT {"verbose":false,"user":"a","pass":"p"}\r\n'
                      + pub(b"foo.*", b"x") + pub(b"foo.x", b"x") + pub(b"bar.*", b"x") + PING)  # fmt: skip
    await client.expect(
        b"-ERR 'Invalid Publish Subject'\r\n"
        b"-ERR 'Permissions Violation for Publish to \"foo.*\"'\r\n"
        b"-ERR 'Permissions Violation for Publish to \"foo.x\"'\r\n"
        b"-ERR 'Invalid Publish Subject'\r\nPONG\r\n"
    )
