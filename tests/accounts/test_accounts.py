"""Accounts (issue 14, item 1, on one server): the `accounts` block, users landing in their
account, each account its own subject space, monitoring per account, and what is refused
until later; exports and imports: test_imports.py; across routes:
tests/cluster/test_cluster_accounts.py."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import attrs
import nats
import nats.errors
import pytest
import trio

from tests.helpers import (
    NatsServerProcess,
    RawClient,
    TrionatsProcess,
    free_port,
    start_trionats,
)
from tests.auth.test_auth import NKEY, _sign
from tests.cluster.test_cluster import cluster_options, has_remote_interest, routed, wait_for
from tests.config.test_config import run_nats_server_check, run_trionats
from tests.clients.test_nats_py import connect as nats_connect
from tests.clients.test_nats_py import run as run_nats_py
from trionats.auth import Authenticator, Identity
from trionats.config.load import load, options_from_conf
from trionats.config.natsconf import parse
from trionats.core.accounts import GLOBAL_ACCOUNT, Accounts
from trionats.errors import ConfigError
from trionats.options import AccountOptions, Permissions, SubjectPermission

CONF = f"""
accounts {{
  A {{
    users: [
      {{ user: a, password: a }}
      {{ user: a2, password: a2, permissions: {{ publish: "foo.>", subscribe: "foo.>" }} }}
    ]
  }}
  B {{
    default_permissions: {{ publish: ">", subscribe: ">" }}
    users: [ {{ user: b, password: b }}, {{ nkey: {NKEY} }} ]
  }}
}}
authorization {{ users: [ {{ user: g, password: g }} ] }}
"""


def options(text: str = CONF, **overrides):
    return attrs.evolve(options_from_conf(parse(text, filename="node.conf")), **overrides)


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "node.conf"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load(path).check()
    return [line.replace(f"{tmp_path}/", "") for line in str(info.value).split("\n")]


# --- configuration -------------------------------------------------------------------------------


def test_accounts_block_loads_into_account_options():
    loaded = options()
    a, b = loaded.accounts
    assert a.name == "A" and [u.user for u in a.users] == ["a", "a2"]
    assert a.users[1].permissions == Permissions(
        publish=SubjectPermission(allow=("foo.>",)), subscribe=SubjectPermission(allow=("foo.>",))
    )
    assert b.default_permissions.publish == SubjectPermission(allow=(">",))
    assert [(u.user, u.nkey) for u in b.users] == [("b", ""), ("", NKEY)]
    assert [u.user for u in loaded.authorization.users] == ["g"]
    loaded.check()


def test_list_of_account_names():
    loaded = options("accounts: [A, B]\n")
    assert loaded.accounts == (AccountOptions(name="A"), AccountOptions(name="B"))


def test_features_of_accounts_not_served_yet_are_refused(tmp_path):
    text = (
        "accounts {\n"
        "  A { users: [ {user: a, password: a} ]\n"
        "      exports: [ {service: a, latency: lat} ]\n"
        "      imports: [ {service: {account: B, subject: b}, allow_trace: true} ] }\n"
        "  B { mappings: { x: y }, jetstream: enabled }\n"  # (jetstream: tests/jetstream)
        "}\n"
    )
    assert problems(tmp_path, text) == [
        'node.conf:3:31: "latency" is not supported by trionats yet (exports)',
        'node.conf:4:54: "allow_trace" is not supported by trionats yet (imports)',
        'node.conf:5:7: "mappings" is not supported by trionats yet (account "B")',
    ]


def test_account_rules_as_nats_server(tmp_path):
    text = (
        "accounts {\n"
        "  A { users: [ {user: a, password: a}, {user: x, password: x} ], bogus: 1 }\n"
        "  B { users: [ {user: a, password: b} ] }\n"
        '  "$G" { }\n'
        "  C: 5\n"
        "}\n"
        "authorization { users: [ {user: x, password: y} ] }\n"
    )
    assert problems(tmp_path, text) == [
        'node.conf:2:66: unknown field "bogus" in account "A"',
        'node.conf:3:7: Duplicate user "a" detected',
        'node.conf:4:3: "$G" is a Reserved Account',
        "node.conf:5:3: Expected map entries for accounts",
        'node.conf:7:1: Duplicate user "x" detected',
    ]
    assert problems(tmp_path, 'accounts: [A, B, A, "$G"]\n') == [
        "node.conf:1:18: Duplicate Account Entry: A",
        'node.conf:1:21: "$G" is a Reserved Account',
    ]


def test_a_single_user_or_token_cannot_sit_beside_accounts_users(tmp_path):
    # nats-server meets the blocks in map order; trionats in file order: the later one says so.
    accounts = "accounts { A { users: [ {user: a, password: a} ] } }\n"
    assert problems(tmp_path, accounts + "authorization { user: x, password: y }\n") == [
        "node.conf:2:1: Can not have a single user/pass and a users array"
    ]
    assert problems(tmp_path, "authorization { token: t }\n" + accounts) == [
        "node.conf:2:16: Can not have a token and accounts"
    ]


def test_system_account_must_be_defined(tmp_path):
    assert problems(tmp_path, "accounts: [A]\nsystem_account: X\n") == [
        "error resolving system account: account missing"
    ]
    options("accounts: [A]\nsystem_account: A\n").check()
    options('system_account: "$SYS"\n').check()


def test_no_auth_user_may_name_an_account_user(tmp_path):
    options(CONF + "no_auth_user: b\n").check()
    assert problems(tmp_path, CONF + "no_auth_user: nobody\n") == [
        'no_auth_user: "nobody" not present as user or nkey in authorization block or '
        "account configuration"
    ]


def test_accounts_are_not_reloadable_yet():
    from trionats.config.reload import diff

    with pytest.raises(ConfigError) as info:
        diff(options(), options("accounts: [A]\n"))
    assert str(info.value) == "config reload not supported for Accounts: old=[A B], new=[A]"


#: (name, text): both servers' -t must agree; the messages too, but for positions and
#: trionats' ` in account "X"` suffix.
DIFFERENTIAL = [
    ("valid", CONF + "no_auth_user: b\n"),
    ("list", "accounts: [A, B]\n"),
    ("system-account", "accounts: [A]\nsystem_account: A\n"),
    ("reserved", 'accounts { "$G" { } }\n'),
    ("duplicate-in-one", "accounts { A { users: [ {user: a, password: a}, {user: a} ] } }\n"),
    ("duplicate-list", "accounts: [A, A]\n"),
    ("not-a-map", "accounts { A: 1 }\n"),
    ("unknown-field", "accounts { A { bogus: 1 } }\n"),
    pytest.param("no-auth-user-missing", "accounts { A { users: [ {user: a} ] } }\n"
                 "no_auth_user: z\n", marks=pytest.mark.xfail(strict=True, reason=(
                     "nats-server checks this at startup, not at -t; trionats checks it at -t"))),
]  # fmt: skip


@pytest.mark.interop
@pytest.mark.parametrize(("name", "text"), DIFFERENTIAL, ids=lambda v: v if "\n" not in v else "")
def test_check_agrees_with_nats_server(tmp_path, name, text):
    assert_check_agrees(tmp_path, name, text, account_suffix=True)


def assert_check_agrees(tmp_path, name: str, text: str, *, account_suffix: bool = False) -> None:
    """`-t` on the configuration `text`: both servers accept it, or both refuse it with the
    same messages (positions left out; with `account_suffix`, nats-server's ` in account
    "X"` too, which it adds in some places only)."""
    path = tmp_path / f"{name}.conf"
    path.write_text(text)
    theirs = run_nats_server_check(path)
    ours = run_trionats("-t", "-c", str(path))
    assert (ours.returncode == 0) == (theirs.returncode == 0), (theirs.stderr, ours.stderr)
    if ours.returncode:

        def messages(text: str) -> set[str]:
            text = text.replace("nats-server: ", "").replace("trionats: ", "")
            lines = [re.sub(r"^.*?:\d+:\d+: ", "", line) for line in text.splitlines() if line]
            if account_suffix:
                lines = [re.sub(r' in account "[^"]*"$', "", line) for line in lines]
            return set(lines)

        assert messages(theirs.stderr) == messages(ours.stderr)


# --- the registry and authentication -------------------------------------------------------------


def test_registry_orders_and_creates_the_system_account():
    registry = Accounts(["A", "B"], system_account="$SYS")
    assert registry.names() == ["$SYS", "$G", "A", "B"]
    assert registry.configured and registry["A"].sublist is not registry["B"].sublist
    assert Accounts([], system_account="$SYS").configured is False
    assert Accounts(["A"], system_account="A").names() == ["A", "$G"]


def test_users_authenticate_into_their_account():
    auth = Authenticator(options(CONF + "no_auth_user: b\n"))
    assert auth.enabled and not auth.auth_required
    assert auth.check("a", "a", "").account == "A"
    assert auth.check("g", "g", "").account == GLOBAL_ACCOUNT
    anonymous = auth.check("", "", "")
    assert (anonymous.user, anonymous.account) == ("b", "B")
    assert anonymous.permissions is not None  # B's default permissions
    nkey_user = auth.check("", "", "", NKEY, _sign("nonce"), "nonce")
    assert (nkey_user.account, nkey_user.label) == ("B", f'"B/nkey:{NKEY}"')
    assert Identity("x", None).label == '"$G/user:x"'


# --- isolation on one server ---------------------------------------------------------------------


async def start(nursery, text: str = CONF, **fields):
    """trionats on 127.0.0.1 and a random port with the accounts and users of `text`."""
    loaded = options(text)
    return await start_trionats(
        nursery, accounts=loaded.accounts, authorization=loaded.authorization,
        no_auth_user=loaded.no_auth_user, **fields,
    )  # fmt: skip


async def connected(server, **fields) -> RawClient:
    raw = await RawClient.connect(server.port)
    await raw.send(b"CONNECT " + json.dumps({"verbose": False} | fields).encode() + b"\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    return raw


async def test_accounts_do_not_see_each_others_messages(nursery):
    server = await start(nursery)
    a, b, g = [await connected(server, user=n, **{"pass": n}) for n in "abg"]
    for raw in (a, b, g):
        await raw.send(b"SUB foo.x 1\r\nPING\r\n")
        await raw.expect(b"PONG\r\n")
    assert {c.account.name for c in server.clients.values()} == {"A", "B", "$G"}
    for raw, body in ((a, b"from-a"), (b, b"from-b"), (g, b"from-g")):
        await raw.send(b"PUB foo.x %d\r\n%s\r\n" % (len(body), body))
    for raw, body in ((a, b"from-a"), (b, b"from-b"), (g, b"from-g")):
        assert await raw.ping_pong() == b"MSG foo.x 1 %d\r\n%s\r\n" % (len(body), body)
    assert server.accounts["A"].sublist.count == 1 and server.sublist.count == 1
    for raw in (a, b, g):
        await raw.aclose()
    server.shutdown()


async def test_permissions_inside_an_account(nursery):
    server = await start(nursery)
    limited = await connected(server, user="a2", **{"pass": "a2"})
    await limited.send(b"SUB bar 1\r\nSUB foo.y 2\r\nPUB bar 1\r\nx\r\nPUB foo.y 1\r\ny\r\n")
    assert await limited.ping_pong() == (
        b"-ERR 'Permissions Violation for Subscription to \"bar\"'\r\n"
        b"-ERR 'Permissions Violation for Publish to \"bar\"'\r\n"
        b"MSG foo.y 2 1\r\ny\r\n"
    )
    await limited.aclose()
    server.shutdown()


async def test_no_auth_user_puts_anonymous_clients_in_its_account(nursery):
    server = await start(nursery, CONF + "no_auth_user: b\n")
    anonymous = await connected(server)
    b = await connected(server, user="b", **{"pass": "b"})
    a = await connected(server, user="a", **{"pass": "a"})
    await b.send(b"SUB q 1\r\nPING\r\n")
    await b.expect(b"PONG\r\n")
    await a.send(b"SUB q 1\r\nPING\r\n")
    await a.expect(b"PONG\r\n")
    await anonymous.send(b"PUB q 2\r\nhi\r\nPING\r\n")
    await anonymous.expect(b"PONG\r\n")
    assert await b.ping_pong() == b"MSG q 1 2\r\nhi\r\n"
    assert await a.ping_pong() == b""
    for raw in (anonymous, a, b):
        await raw.aclose()
    server.shutdown()


async def test_nkey_user_lands_in_its_account(nursery):
    server = await start(nursery)
    raw = await RawClient.connect(server.port)
    nonce = json.loads(raw.info[5:])["nonce"]
    connect = {"verbose": False, "nkey": NKEY, "sig": _sign(nonce)}
    await raw.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    await raw.expect(b"PONG\r\n")
    (client,) = server.clients.values()
    assert client.account.name == "B" and client.identity.label == f'"B/nkey:{NKEY}"'
    await raw.aclose()
    server.shutdown()


def test_nats_py_clients_in_two_accounts(tmp_path):
    path = tmp_path / "node.conf"
    path.write_text(CONF)

    async def scenario(url: str):
        a = await nats_connect(url, user="a", password="a")
        b = await nats_connect(url, user="b", password="b")
        sub_a = await a.subscribe("orders")
        sub_b = await b.subscribe("orders")
        await a.flush()
        await b.flush()
        await a.publish("orders", b"for-a")
        await b.publish("orders", b"for-b")
        assert (await sub_a.next_msg(timeout=5)).data == b"for-a"
        assert (await sub_b.next_msg(timeout=5)).data == b"for-b"
        for sub in (sub_a, sub_b):
            with pytest.raises(nats.errors.TimeoutError):
                await sub.next_msg(timeout=0.2)

        # A request in account B, with a responder in A on the same subject: no responders.
        async def respond(msg):
            await msg.respond(b"wrong account")

        await a.subscribe("svc", cb=respond)
        await a.flush()
        with pytest.raises(nats.errors.NoRespondersError):
            await b.request("svc", b"?", timeout=2)

    with TrionatsProcess("-c", str(path)) as server:
        run_nats_py(scenario(server.url))


# --- a cluster: routes carry every account (more in tests/cluster/test_cluster_accounts.py) ------


async def test_each_account_crosses_routes_in_its_own_subject_space(nursery):
    a = await start(nursery, cluster=cluster_options(), server_name="A")
    b = await start(nursery, cluster=cluster_options(a.cluster.port), server_name="B")
    await wait_for(lambda: routed(a, b))
    g_sub = await connected(b, user="g", **{"pass": "g"})
    a_sub = await connected(b, user="a", **{"pass": "a"})
    for raw in (g_sub, a_sub):
        await raw.send(b"SUB orders 1\r\nPING\r\n")
        await raw.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(a, b"orders"))
    await wait_for(lambda: a.accounts["A"].sublist.match(b"orders").psubs)
    remote = {key[:2] for route in a.cluster.connections() for key in route.remote_subs}
    assert remote >= {(b"$G", b"orders"), (b"A", b"orders")}  # (on the pool connection of each)
    g_pub = await connected(a, user="g", **{"pass": "g"})
    a_pub = await connected(a, user="a", **{"pass": "a"})
    await a_pub.send(b"PUB orders 5\r\nlocal\r\nPING\r\n")
    await a_pub.expect(b"PONG\r\n")
    await g_pub.send(b"PUB orders 6\r\nglobal\r\nPING\r\n")
    await g_pub.expect(b"PONG\r\n")
    with trio.fail_after(5):
        await g_sub.expect(b"MSG orders 1 6\r\nglobal\r\n")
        await a_sub.expect(b"MSG orders 1 5\r\nlocal\r\n")
    # (each got its own account's message and nothing else)
    assert await g_sub.ping_pong() == b"" and await a_sub.ping_pong() == b""
    for raw in (g_sub, a_sub, g_pub, a_pub):
        await raw.aclose()
    a.shutdown()
    b.shutdown()


# --- monitoring: differential against nats-server -----------------------------------------------

MONITOR_CONF = CONF + "no_system_account: true\n"


def _session(port: int) -> list[socket.socket]:
    """Three clients in two accounts and $G, with subscriptions and one message each way."""

    def conn(line: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.recv(4096)
        sock.sendall(line.encode() + b"\r\nPING\r\n")
        _until_pong(sock)
        return sock

    a = conn('CONNECT {"user":"a","pass":"a","name":"ca"}\r\nSUB foo.x 1\r\nSUB bar q 2')
    b = conn('CONNECT {"user":"b","pass":"b","name":"cb"}\r\nSUB foo.x 1')
    g = conn('CONNECT {"user":"g","pass":"g","name":"cg"}\r\nSUB baz 7')
    a.sendall(b"PUB foo.x 2\r\nhi\r\nPING\r\n")
    _until_pong(a)
    b.sendall(b"PUB nowhere 3\r\nabc\r\nPING\r\n")
    _until_pong(b)
    return [a, b, g]


def _until_pong(sock: socket.socket) -> None:
    data = b""
    sock.settimeout(5)
    while b"PONG\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk


def _get(port: int, target: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{target}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


TARGETS = (
    "/connz?auth=1", "/connz?acc=A", "/connz?acc=B&auth=1&subs=detail", "/connz?acc=Z",
    "/subsz?acc=A&subs=1", "/subsz?subs=1", "/subsz?acc=Z&subs=1", "/subsz",
    "/accountz", "/accountz?acc=A", "/accountz?acc=%24G", "/accountz?acc=Z",
    "/accstatz", "/accstatz?unused=1",
)  # fmt: skip

_VARYING = {"server_id", "now", "start", "last_activity", "rtt", "uptime", "idle", "port",
            "update_time", "cid", "lang", "version"}  # fmt: skip


def _normal(value, key: str = ""):
    """Ids, times and ports out; lists nats-server builds in map order sorted."""
    if isinstance(value, dict):
        return {k: _normal(v, k) for k, v in value.items() if k not in _VARYING or v == ""}
    if isinstance(value, list):
        items = [_normal(v) for v in value]
        if key in ("accounts", "subscriptions_list", "account_statz", "connections"):
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return items
    return value


@pytest.mark.interop
def test_monitoring_per_account_matches_nats_server(tmp_path):
    path = tmp_path / "node.conf"
    path.write_text(MONITOR_CONF)
    answers = {}
    theirs_http, ours_http = free_port(), free_port()
    with (
        NatsServerProcess("-c", str(path), "-m", str(theirs_http)) as theirs,
        TrionatsProcess("-c", str(path), "-m", str(ours_http)) as ours,
    ):
        for name, process, http in (("theirs", theirs, theirs_http), ("ours", ours, ours_http)):
            socks = _session(process.port)
            time.sleep(0.1)
            answers[name] = {target: _get(http, target) for target in TARGETS}
            for sock in socks:
                sock.close()
    for target in TARGETS:
        (t_status, t_body), (o_status, o_body) = answers["theirs"][target], answers["ours"][target]
        assert t_status == o_status, (target, t_body, o_body)
        if t_status != 200:
            assert t_body.strip() == o_body.strip(), target
            continue
        t, o = json.loads(t_body), json.loads(o_body)
        if target.startswith("/subsz") or target == "/accountz?acc=A":
            # Cache figures follow each server's cache policy: compare the shape only.
            for body in (t, o):
                stats = body.get("account_detail", {}).get("sublist_stats", body)
                for key in ("num_cache", "num_matches", "cache_hit_rate", "max_fanout",
                            "avg_fanout"):  # fmt: skip
                    stats[key] = 0
        assert list(t) == list(o), target  # the same keys in the same order
        assert _normal(t) == _normal(o), target
