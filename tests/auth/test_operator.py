"""Operator mode end to end (issue 14, item 4): user JWTs and nonce signatures, accounts from
the memory resolver, permissions and limits from the claims, expiry, revocations, bearer tokens,
signing keys; the same configuration and the same bytes replayed to nats-server 2.15.1 with
the same outcomes; nats-py with `.creds` files; the system account by public key."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import attrs
import nats
import nats.errors
import pytest
import trio
import trio.testing

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess
from tests.jwtkit import (
    KeyPair,
    Operator,
    account_jwt,
    activation_jwt,
    user_jwt,
    write_creds,
)
from tests.session.test_ping_schedule import BytesStream
from trionats.config.load import load
from trionats.server import Server

AUTH_VIOLATION = b"-ERR 'Authorization Violation'\r\n"


class World:
    """One operator, its accounts and users (module-wide), written as a configuration."""

    def __init__(self, directory) -> None:
        self.op = op = Operator(signing_key=True)
        self.a = op.add_account("A", default_permissions={"sub": {"deny": ["nodefault.>"]}})
        self.b = op.add_account("B")
        self.a_signer = KeyPair("account")
        self.scoped = KeyPair("account")
        scope = {"kind": "user_scope", "key": self.scoped.public, "role": "team",
                 "template": {"pub": {"allow": ["team.{{name()}}.>", "_INBOX.>"]},
                              "sub": {"allow": [">"]}, "subs": -1, "payload": -1}}  # fmt: skip
        self.revoked = KeyPair("user")
        self.s = op.add_account(
            "S", signing_keys=[self.a_signer.public, scope],
            revocations={self.revoked.public: int(time.time()) + 3600},
        )  # fmt: skip
        self.one = op.add_account("ONE", limits={"conn": 1})
        self.nobearer = op.add_account("NOBEARER", limits={"disallow_bearer": True})
        self.small = op.add_account("SMALL", limits={"payload": 8, "subs": 2})
        self.old = op.add_account("OLD", exp=int(time.time()) - 10)
        self.exporter = op.add_account("EXP", exports=[{"name": "s", "subject": "s.>",
                                                       "type": "service"}])  # fmt: skip
        # Exports and imports in account JWTs: a public service and stream of EXPA, imported
        # by IMPB (the stream twice: under a prefix, and mapped), and a private service.
        self.expa = op.add_account("EXPA", exports=[
            {"name": "echo", "subject": "svc.echo", "type": "service"},
            {"name": "news", "subject": "news.>", "type": "stream"},
            {"name": "private", "subject": "svc.private", "type": "service", "token_req": True},
        ])  # fmt: skip
        self.impb = op.add_account("IMPB", imports=[
            {"name": "echo", "subject": "svc.echo", "account": self.expa.public,
             "local_subject": "echo", "type": "service"},
            {"name": "news", "subject": "news.>", "account": self.expa.public, "to": "ext",
             "type": "stream"},
            {"name": "mapped", "subject": "news.>", "account": self.expa.public,
             "local_subject": "mapped.news.>", "type": "stream"},
            {"name": "private", "subject": "svc.private", "account": self.expa.public,
             "type": "service"},
        ])  # fmt: skip
        # IMPC holds an activation token for the private service; IMPD one made out to IMPC.
        impc, impd = KeyPair("account"), KeyPair("account")
        for name, key, token_for in (("IMPC", impc, impc), ("IMPD", impd, impc)):
            token = activation_jwt(token_for, self.expa, "svc.private", "service")
            op.add_account(name, key, imports=[
                {"name": "private", "subject": "svc.private", "account": self.expa.public,
                 "type": "service", "token": token}])  # fmt: skip
        # An account issued by another operator, preloaded all the same: not trusted.
        self.rogue_key = KeyPair("account")
        op.accounts["ROGUE"] = (self.rogue_key,
                                account_jwt(self.rogue_key, KeyPair("operator"), name="ROGUE"))  # fmt: skip
        self.unknown = KeyPair("account")  # in no resolver
        self.path = directory / "operator.conf"
        (directory / "op.jwt").write_text(op.jwt)
        self.path.write_text(op.conf(directory / "op.jwt"))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("operator"))


@pytest.fixture(scope="module")
def servers(world):
    """trionats and nats-server with the same configuration."""
    with TrionatsProcess("-c", str(world.path)) as ours, \
            NatsServerProcess("-c", str(world.path)) as theirs:  # fmt: skip
        yield ours, theirs


def _nonce(info: bytes) -> str:
    return json.loads(info[5:])["nonce"]


def _connect(token: str, sig: str | None) -> bytes:
    fields = {"verbose": False, "pedantic": False, "jwt": token}
    if sig is not None:
        fields["sig"] = sig
    return b"CONNECT " + json.dumps(fields).encode() + b"\r\n"


async def _session(port: int, token: str, signer: KeyPair | str | None, ops: bytes) -> RawClient:
    """Connect with `token`, the nonce signed by `signer` (None: no sig; a string: that sig),
    then send `ops`."""
    raw = await RawClient.connect(port)
    info = json.loads(raw.info[5:])
    assert info["auth_required"] is True and info["nonce"]
    sig = signer if isinstance(signer, str) or signer is None else signer.sign_nonce(info["nonce"])
    await raw.send(_connect(token, sig) + ops)
    return raw


async def _outcome(raw: RawClient) -> bytes:
    """What the server answered: up to a PONG barrier, or everything until it closed."""
    try:
        return await raw.ping_pong()
    except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
        data = raw.buffer
        raw.buffer = b""
        return data + b"<closed>"


def _window(start: int, end: int, zone: str = "UTC") -> dict:
    """A `times` entry from `start` to `end` seconds from now, as clock times in `zone`."""
    import datetime
    import zoneinfo

    now = datetime.datetime.now(zoneinfo.ZoneInfo(zone))
    clock = [(now + datetime.timedelta(seconds=delta)).strftime("%H:%M:%S")
             for delta in (start, end)]  # fmt: skip
    return {"start": clock[0], "end": clock[1]}


def _scenarios(w: World) -> dict:
    """name -> list of (token, signer or None, ops) connections, replayed in turn."""
    op = w.op
    now = int(time.time())
    good, good_jwt = op.user("A")
    other = KeyPair("user")
    _, bearer_jwt = op.user("A", bearer_token=True)
    b_user, b_jwt = op.user("B")
    perms, perms_jwt = op.user("A", pub={"allow": ["ok.>"], "deny": ["ok.no"]},
                               sub={"deny": ["secret"]})  # fmt: skip
    limited, limited_jwt = op.user("A", subs=1, payload=4)
    by_signer, by_signer_jwt = op.user("S", signer=w.a_signer)
    scoped = KeyPair("user")
    scoped_jwt = user_jwt(scoped, w.scoped, name="ann", scoped=True,
                          issuer_account=w.s.public)  # fmt: skip
    scoped_bad_jwt = user_jwt(scoped, w.scoped, name="ann", issuer_account=w.s.public,
                              pub={"allow": [">"]})  # fmt: skip
    unsigned_issuer = user_jwt(other, w.a_signer)  # a signing key, no issuer_account
    one, one_jwt = op.user("ONE")
    _, nb_jwt = op.user("NOBEARER", bearer_token=True)
    small, small_jwt = op.user("SMALL")
    ws_only, ws_jwt = op.user("A", allowed_connection_types=["WEBSOCKET"])
    std_only, std_jwt = op.user("A", allowed_connection_types=["STANDARD", "MQTT"])
    src_other, src_other_jwt = op.user("A", src=["10.0.0.0/8"])
    src_local, src_local_jwt = op.user("A", src="127.0.0.0/8,10.0.0.0/8")
    resp, resp_jwt = op.user("A", pub={"allow": ["x"]}, resp={"max": 1, "ttl": 0})
    inside, inside_jwt = op.user("A", times=[_window(-3600, 3600)], times_location="UTC")
    paris = [_window(3600, 7200, "Europe/Paris"), _window(-7200, -3600, "Europe/Paris")]
    outside, outside_jwt = op.user("A", times=paris, times_location="Europe/Paris")
    bad_zone, bad_zone_jwt = op.user("A", times=[_window(-60, 60)], times_location="Nowhere/X")
    impb, impb_jwt = op.user("IMPB")
    impd, impd_jwt = op.user("IMPD")
    expa, expa_jwt = op.user("EXPA")
    return {
        "accepted": [(good_jwt, good, b"SUB foo 1\r\nPUB foo 2\r\nhi\r\n")],
        "wrong signature": [(good_jwt, other, b"SUB foo 1\r\n")],
        "no signature": [(good_jwt, None, b"SUB foo 1\r\n")],
        "garbage signature": [(good_jwt, "%%not base64%%", b"")],
        "no jwt": [("", good, b"")],
        "not a jwt": [("eyJhbGciOiJub25lIn0.e30.", good, b"")],
        "an account jwt": [(op.accounts["A"][1], good, b"")],
        "bearer token without signature": [(bearer_jwt, None, b"SUB foo 1\r\n")],
        "bearer token, account disallows": [(nb_jwt, None, b"")],
        "expired user": [(op.user("A", exp=now - 10)[1], None, b"")],
        "not yet valid user": [(op.user("A", nbf=now + 3600)[1], None, b"")],
        "revoked user": [(user_jwt(w.revoked, w.s), w.revoked, b"")],
        "expired account": [(op.user("OLD")[1], None, b"")],
        "account not in the resolver": [(user_jwt(other, w.unknown), other, b"")],
        "account of an untrusted operator": [(user_jwt(other, w.rogue_key), other, b"")],
        "signing key with issuer_account": [(by_signer_jwt, by_signer, b"SUB s 1\r\nPUB s 0\r\n\r\n")],
        "signing key without issuer_account": [(unsigned_issuer, other, b"")],
        "scoped signing key": [(scoped_jwt, scoped,
                                b"PUB team.ann.x 0\r\n\r\nPUB team.bob.x 0\r\n\r\n")],
        "scoped user with its own permissions": [(scoped_bad_jwt, scoped, b"")],
        "permissions": [(perms_jwt, perms, (b"PUB ok.1 0\r\n\r\nPUB ok.no 0\r\n\r\n"
                                            b"PUB other 0\r\n\r\nSUB secret 1\r\nSUB fine 2\r\n"))],
        "default permissions of the account": [(good_jwt, good, b"SUB nodefault.x 1\r\n")],
        "allow_responses": [(resp_jwt, resp, b"PUB y 0\r\n\r\nPUB x 0\r\n\r\n")],
        "user limits: subs": [(limited_jwt, limited, b"SUB a 1\r\nSUB b 2\r\n")],
        "user limits: payload": [(limited_jwt, limited, b"PUB a 5\r\n12345\r\n")],
        "account limits: payload and subs": [
            (small_jwt, small, b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB a 9\r\n123456789\r\n")
        ],
        "account limits: connections": [(one_jwt, one, b""), (one_jwt, one, b"")],
        "connection types: websocket only": [(ws_jwt, ws_only, b"")],
        "connection types: standard": [(std_jwt, std_only, b"")],
        "source network: other": [(src_other_jwt, src_other, b"")],
        "source network: local": [(src_local_jwt, src_local, b"")],
        "connect times: inside": [(inside_jwt, inside, b"")],
        "connect times: outside": [(outside_jwt, outside, b"")],
        "connect times: unknown zone": [(bad_zone_jwt, bad_zone, b"")],
        "stream imports from an account JWT": [
            (impb_jwt, impb, b"SUB ext.> 1\r\nSUB mapped.> 2\r\nSUB news.> 3\r\n"),
            (expa_jwt, expa, b"PUB news.a 1\r\nx\r\n"),
        ],
        "account with another's activation token": [(impd_jwt, impd, b"")],
        "account isolation": [
            (b_jwt, b_user, b"SUB iso 1\r\n"),
            (good_jwt, good, b"SUB iso 1\r\nPUB iso 1\r\na\r\n"),
        ],
    }


def _names() -> list[str]:
    import tempfile
    from pathlib import Path

    return list(_scenarios(World(Path(tempfile.mkdtemp()))))


@pytest.mark.parametrize("name", _names())
def test_outcomes_agree_with_nats_server(world, servers, name):
    scenario = _scenarios(world)[name]

    async def replay(port: int) -> list[bytes]:
        sessions = []
        outcomes = []
        for token, signer, ops in scenario:
            raw = await _session(port, token, signer, ops)
            sessions.append(raw)
            outcomes.append(await _outcome(raw))
        for raw in sessions:  # late deliveries (isolation), after every connection's barrier
            if len(sessions) > 1:
                outcomes.append(await _outcome(raw))
            await raw.aclose()
        return outcomes

    ours, theirs = servers
    got = trio.run(replay, ours.port)
    expected = trio.run(replay, theirs.port)
    assert got == expected


def test_what_the_outcomes_are(world, servers):
    """The differential test above proves agreement; these are the outcomes agreed on."""
    ours, _ = servers
    scenarios = _scenarios(world)

    async def first(name: str) -> bytes:
        token, signer, ops = scenarios[name][0]
        raw = await _session(ours.port, token, signer, ops)
        try:
            return await _outcome(raw)
        finally:
            await raw.aclose()

    async def main():
        assert await first("accepted") == b"MSG foo 1 2\r\nhi\r\n"
        for refused in ("wrong signature", "no signature", "no jwt", "expired user",
                        "revoked user", "account of an untrusted operator",
                        "scoped user with its own permissions"):  # fmt: skip
            assert await first(refused) == AUTH_VIOLATION + b"<closed>", refused
        assert await first("bearer token without signature") == b""
        assert await first("scoped signing key") == (
            b"-ERR 'Permissions Violation for Publish to \"team.bob.x\"'\r\n"
        )
        assert await first("user limits: subs") == b"-ERR 'maximum subscriptions exceeded'\r\n"

    trio.run(main)
    for server in servers:  # nats-server's log line for every refusal, whatever the reason
        log = server.log()
        assert re.search(r"\[ERR\] .* - authentication error\n", log)
        # (two reasons it logs as errors too, before that line)
        assert re.search(r"\[ERR\] .* - Outside connect times\n", log)
        assert re.search(r"\[ERR\] .* - Bad src Ip 127\.0\.0\.1\n", log)


def test_a_user_jwt_without_limits_is_told_and_closed(world, servers):
    """No `subs` claim is Go's zero: no subscription allowed, which nats-server tells the client
    at once and then closes it (20 ms later)."""
    user = KeyPair("user")
    token = user_jwt(user, world.a, scoped=True)  # (no permissions or limits at all)

    async def replay(port: int) -> bytes:
        raw = await _session(port, token, user, b"")
        data = await raw.expect_closed(timeout=5)
        await raw.aclose()
        return data

    for server in servers:
        assert trio.run(replay, server.port) == b"-ERR 'maximum subscriptions exceeded'\r\n"


@pytest.mark.parametrize("how", ["exp", "end of the connect times window"])
def test_expiry_disconnects_with_nats_servers_error(world, servers, how):
    """A user JWT that ends in 2 s: both servers end the session then, with the same -ERR."""

    async def replay(port: int) -> tuple[bytes, float]:
        if how == "exp":
            user, token = world.op.user("A", exp=int(time.time()) + 2)
        else:
            user, token = world.op.user("A", times=[_window(-60, 2)], times_location="UTC")
        raw = await _session(port, token, user, b"")
        assert await raw.ping_pong() == b""
        start = time.monotonic()
        data = await raw.expect_closed(timeout=5)
        await raw.aclose()
        return data, time.monotonic() - start

    for server in servers:
        data, took = trio.run(replay, server.port)
        assert data == b"-ERR 'User Authentication Expired'\r\n"
        assert took < 3.5


def test_startup_lines_as_nats_servers(world, servers):
    """The operator notices, and warnings for preloaded accounts (trionats adds one for the
    claims it ignores)."""
    ours, theirs = servers

    def lines(log: str) -> list[str]:
        return [line.split("] ", 2)[-1] for line in log.splitlines() if "[INF]   " in line
                and any(word in line for word in ("System  :", "Operator:", "Issued  :",
                                                   "Expires :"))]  # fmt: skip

    assert lines(ours.log()) == lines(theirs.log()) != []
    old = world.old.public
    for server in servers:
        assert f"[WRN] Account [{old}] has validation issues:\n" in server.log()
        assert "[WRN]   - claim is expired\n" in server.log()
    assert '[WRN] Error adding service import "svc.private": service import not authorized\n' in (
        ours.log()
    )
    for server in servers:  # the account whose activation token is another account's
        assert ("[WRN]   - activation token doesn't match account it is being included in, "
                '"svc.private"\n') in server.log()  # fmt: skip


def test_service_imports_from_account_jwts(world, servers, tmp_path):
    """A service exported and imported in account JWTs answers across the accounts on both
    servers; the private one (an activation token needed) does not."""
    exporter, exporter_jwt = world.op.user("EXPA")
    importer, importer_jwt = world.op.user("IMPB")
    exporter_creds = write_creds(tmp_path, "expa", exporter_jwt, exporter)
    importer_creds = write_creds(tmp_path, "impb", importer_jwt, importer)

    async def main(url: str) -> None:
        service = await nats.connect(url, user_credentials=str(exporter_creds))
        client = await nats.connect(url, user_credentials=str(importer_creds))

        async def answer(msg):
            await msg.respond(b"echo:" + msg.data)

        await service.subscribe("svc.echo", cb=answer)
        await service.subscribe("svc.private", cb=answer)
        await service.flush()
        reply = await client.request("echo", b"1", timeout=2)
        assert reply.data == b"echo:1"
        with pytest.raises(nats.errors.NoRespondersError):
            await client.request("svc.private", b"2", timeout=2)
        await service.close()
        await client.close()

    for server in servers:
        asyncio.run(main(server.url))


def test_private_service_exports_need_an_activation_token(world, servers, tmp_path):
    """IMPC's import carries an activation token made out to it: answered; IMPB has none:
    no responders. (IMPD's token is made out to IMPC: its account is invalid, its users
    refused: the scenario "account with another's activation token".) On both servers."""
    exporter, exporter_jwt = world.op.user("EXPA")
    exporter_creds = write_creds(tmp_path, "expa", exporter_jwt, exporter)
    creds = {}
    for name in ("IMPC", "IMPB"):
        user, token = world.op.user(name)
        creds[name] = write_creds(tmp_path, name, token, user)

    async def main(url: str) -> None:
        service = await nats.connect(url, user_credentials=str(exporter_creds))

        async def answer(msg):
            await msg.respond(b"private:" + msg.data)

        await service.subscribe("svc.private", cb=answer)
        await service.flush()
        allowed = await nats.connect(url, user_credentials=str(creds["IMPC"]))
        assert (await allowed.request("svc.private", b"1", timeout=2)).data == b"private:1"
        other = await nats.connect(url, user_credentials=str(creds["IMPB"]))
        with pytest.raises(nats.errors.NoRespondersError):
            await other.request("svc.private", b"2", timeout=2)
        for client in (service, allowed, other):
            await client.close()

    for server in servers:
        asyncio.run(main(server.url))


# --- nats-py with .creds files --------------------------------------------------------------


def test_nats_py_with_creds_files(world, servers, tmp_path):
    ours, _ = servers
    a_user, a_jwt = world.op.user("A")
    b_user, b_jwt = world.op.user("B")
    a_creds = write_creds(tmp_path, "a", a_jwt, a_user)
    b_creds = write_creds(tmp_path, "b", b_jwt, b_user)
    sys_user, sys_jwt = world.op.user("SYS")
    sys_creds = write_creds(tmp_path, "sys", sys_jwt, sys_user)

    async def main():
        a1 = await nats.connect(ours.url, user_credentials=str(a_creds))
        a2 = await nats.connect(ours.url, user_credentials=str(a_creds))
        b = await nats.connect(ours.url, user_credentials=str(b_creds))

        async def answer(msg):
            await msg.respond(b"pong:" + msg.data)

        await a1.subscribe("svc", cb=answer)
        b_sub = await b.subscribe("svc")
        await a1.flush()
        await b.flush()
        reply = await a2.request("svc", b"1", timeout=2)
        assert reply.data == b"pong:1"
        with pytest.raises(nats.errors.TimeoutError):  # B's subscription is another account's
            await b_sub.next_msg(timeout=0.3)
        await b_sub.unsubscribe()
        with pytest.raises(nats.errors.NoRespondersError):  # A's service is not in B
            await b.request("svc", b"2", timeout=2)
        system = await nats.connect(ours.url, user_credentials=str(sys_creds))
        ping = json.loads((await system.request("$SYS.REQ.SERVER.PING", b"", timeout=2)).data)
        assert ping["server"]["ver"] == "2.15.1"
        info = json.loads((await system.request("$SYS.REQ.SERVER.PING.IDZ", b"", timeout=2)).data)
        assert set(info) == {"name", "host", "id"}
        for client in (a1, a2, b, system):
            await client.close()

    asyncio.run(main())


# --- the session, timed with the autojump clock ---------------------------------------------


async def _in_process(world: World, nursery) -> tuple[Server, trio.testing.MemoryStapledStream]:
    server = Server(load(world.path))
    ours, theirs = trio.testing.memory_stream_pair()
    nursery.start_soon(server.admit(BytesStream(theirs), ("127.0.0.1", 40000)).run)
    return server, ours


async def _read_until(stream, marker: bytes, into: list[tuple[float, bytes]]) -> None:
    while True:
        data = await stream.receive_some()
        if not data:
            return
        into.append((trio.current_time(), bytes(data)))
        if marker in b"".join(chunk for _, chunk in into):
            return


async def test_expiry_at_exp_with_the_autojump_clock(world, nursery, autojump_clock):
    user, token = world.op.user("A", exp=int(time.time()) + 30)
    server, stream = await _in_process(world, nursery)
    received: list[tuple[float, bytes]] = []
    await _read_until(stream, b"\r\n", received)
    nonce = _nonce(received[0][1].split(b"\r\n")[0])
    start = trio.current_time()
    await stream.send_all(_connect(token, user.sign_nonce(nonce)))
    received.clear()
    with trio.fail_after(40):
        while True:
            data = await stream.receive_some()
            if not data:
                break
            received.append((trio.current_time(), bytes(data)))
            if b"PING\r\n" in data:
                await stream.send_all(b"PONG\r\n")
    text = b"".join(chunk for _, chunk in received)
    assert text.endswith(b"-ERR 'User Authentication Expired'\r\n")
    ended = received[-1][0] - start
    assert 28 <= ended <= 30  # at `exp` (whole seconds, as nats-server counts)
    assert text.count(b"PING\r\n") >= 1  # the pings went on meanwhile
    server.shutdown()


# --- hostile JWTs over the wire -------------------------------------------------------------


def test_hostile_jwts_in_connect_are_refused_without_harm(world, servers):
    """Broken user JWTs (fuzz/jwt_tokens.py, issued under another operator, so none may pass)
    in CONNECTs to the running trionats: each gets 'Authorization Violation' (or, too long
    for a control line, that error), and the server logs no internal error."""
    import random

    from fuzz.jwt_tokens import World as FuzzWorld
    from fuzz.jwt_tokens import hostile_token

    ours, _ = servers
    fuzz_world = FuzzWorld()
    too_long = b"-ERR 'maximum control line exceeded'\r\n<closed>"

    async def main():
        for index in range(150):
            token, user = hostile_token(fuzz_world, random.Random(f"wire:{index}"))
            raw = await _session(ours.port, token, user, b"")
            outcome = await _outcome(raw)
            await raw.aclose()
            # (a long one may be reset while it is still being sent: its -ERR lost on the way)
            expected = (too_long, b"<closed>") if len(token) > 4000 else (AUTH_VIOLATION + b"<closed>",)
            assert outcome in expected, outcome

    trio.run(main)
    assert "Internal error" not in ours.log() and "Traceback" not in ours.log()


@pytest.mark.parametrize(
    "clock, inside, left",
    [("23:30:00", True, 6.5 * 3600), ("05:00:00", True, 3600.0), ("12:00:00", False, 0.0),
     ("22:00:00", False, 0.0)],  # (the window's start itself is outside, as in nats-server)
)  # fmt: skip
def test_connect_windows_across_midnight(clock, inside, left):
    import datetime

    from trionats.auth.operator import _connect_window

    hour, minute, _ = (int(part) for part in clock.split(":"))
    now = datetime.datetime(2026, 12, 8, hour, minute, tzinfo=datetime.UTC).timestamp()
    limits = {"times": [{"start": "22:00:00", "end": "06:00:00"}], "times_location": "UTC"}
    assert _connect_window(limits, now) == (inside, left)


# --- monitoring ----------------------------------------------------------------------------


def test_connz_and_varz_show_jwt_users_as_nats_server(world, tmp_path):
    """/connz?auth=1 shows a JWT user's JWT (not a bearer token's), the key that signed it,
    its tags and the account's name tag; /varz the trusted operators."""
    import urllib.request

    from tests.helpers import free_port

    ports = {}
    for name in ("ours", "theirs"):
        ports[name] = free_port()
        (tmp_path / f"{name}.conf").write_text(
            world.path.read_text() + f"\nhttp_port: {ports[name]}\n"
        )
    user, token = world.op.user("A", name="alice", tags=["team:red"])
    by_key, by_key_token = world.op.user("S", signer=world.a_signer)
    _, bearer_token = world.op.user("B", bearer_token=True)

    def get(name: str, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[name]}{path}") as response:
            return json.loads(response.read())

    async def observe(name: str, port: int) -> tuple[list[dict], dict]:
        sessions = [await _session(port, token, user, b""),
                    await _session(port, by_key_token, by_key, b""),
                    await _session(port, bearer_token, None, b"")]  # fmt: skip
        for raw in sessions:
            await raw.ping_pong()
        connz = await trio.to_thread.run_sync(get, name, "/connz?auth=1")
        varz = await trio.to_thread.run_sync(get, name, "/varz")
        for raw in sessions:
            await raw.aclose()
        keep = ("authorized_user", "account", "jwt", "issuer_key", "name_tag", "tags")
        shown = [{key: c[key] for key in c if key in keep} for c in connz["connections"]]
        return shown, {key: varz.get(key) for key in ("trusted_operators_jwt",
                                                      "trusted_operators_claim")}  # fmt: skip

    with TrionatsProcess("-c", str(tmp_path / "ours.conf")) as ours, \
            NatsServerProcess("-c", str(tmp_path / "theirs.conf")) as theirs:  # fmt: skip
        got = trio.run(observe, "ours", ours.port)
        expected = trio.run(observe, "theirs", theirs.port)
    assert json.dumps(got) == json.dumps(expected)  # (the keys' order too)
    connections, varz = got
    assert connections[0]["tags"] == ["team:red"] and connections[0]["name_tag"] == "A"
    assert connections[1]["issuer_key"] == world.a_signer.public
    assert "jwt" not in connections[2]  # a bearer token is not shown
    assert varz["trusted_operators_jwt"] == [world.op.jwt]


def test_an_operator_without_system_account_is_warned_about(tmp_path):
    from tests.jwtkit import operator_jwt

    operator, account = KeyPair("operator"), KeyPair("account")
    path = tmp_path / "nosys.conf"
    path.write_text(f"operator: {operator_jwt(operator)}\nresolver: MEMORY\n"
                    f"resolver_preload {{\n  {account.public}: {account_jwt(account, operator)}\n}}\n")  # fmt: skip
    for process in (TrionatsProcess, NatsServerProcess):
        with process("-c", str(path)) as server:
            assert "[WRN] Trusted Operators should utilize a System Account\n" in server.log()


# --- the websocket port ----------------------------------------------------------------------


async def test_websocket_jwt_cookie_supplies_the_user_jwt(world, nursery):
    """`jwt_cookie` names an upgrade cookie holding the user JWT, used when the CONNECT has
    none (nats-server's wsUpgrade): a bearer token logs in with it alone; any other JWT
    still needs the nonce signed, so a CONNECT without `sig` is refused."""
    from tests.clients.test_websocket_cookies import login
    from tests.helpers import start_trionats
    from trionats.options import WebsocketOptions

    loaded = load(world.path)
    server = await start_trionats(
        nursery, operators=loaded.operators, resolver=loaded.resolver,
        resolver_preload=loaded.resolver_preload, system_account=loaded.system_account,
        websocket=WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True, jwt_cookie="jwt"),
    )  # fmt: skip
    port = server.websocket.port
    _, bearer = world.op.user("A", bearer_token=True)
    _, signed = world.op.user("A")
    accepted = await login(port, f"jwt={bearer}")
    assert accepted.received == b"PONG\r\n"
    refused = await login(port, f"jwt={signed}")
    assert refused.received == AUTH_VIOLATION
    nothing = await login(port)
    assert nothing.received == AUTH_VIOLATION
    server.shutdown()


def test_jwt_cookie_is_accepted_in_operator_mode(world):
    from trionats.options import WebsocketOptions

    websocket = WebsocketOptions(port=8080, no_tls=True, jwt_cookie="jwt")
    attrs.evolve(load(world.path), websocket=websocket).check()  # (refused without operator)


def test_an_account_that_expires_closes_its_clients(tmp_path):
    """The account JWT ends before the user's: nats-server's 'Account Authentication
    Expired' (its own -ERR), on both servers."""

    def conf() -> tuple[Path, KeyPair, str]:
        op = Operator()
        op.add_account("A", exp=int(time.time()) + 3)
        user, token = op.user("A", exp=int(time.time()) + 60)
        path = tmp_path / "short.conf"
        path.write_text(op.conf())
        return path, user, token

    async def replay(port: int, user: KeyPair, token: str) -> bytes:
        raw = await _session(port, token, user, b"")
        assert await raw.ping_pong() == b""
        data = await raw.expect_closed(timeout=6)
        await raw.aclose()
        return data.replace(b"PING\r\n", b"")  # (the server's first PING may come first)

    for process in (TrionatsProcess, NatsServerProcess):
        path, user, token = conf()
        with process("-c", str(path)) as server:
            assert trio.run(replay, server.port, user, token) == (
                b"-ERR 'Account Authentication Expired'\r\n"
            )


def test_user_info_of_a_jwt_user_as_nats_server(world, servers, tmp_path):
    """`$SYS.REQ.USER.INFO` names the account and user by their JWTs' names and says when
    the user's JWT expires (whole seconds, in ns)."""
    user, token = world.op.user("B", exp=int(time.time()) + 3600, tags=["a:1"],
                                pub={"allow": ["x.>", "$SYS.REQ.USER.INFO"]})  # fmt: skip
    creds = write_creds(tmp_path, "info", token, user)

    async def main(url: str) -> dict:
        client = await nats.connect(url, user_credentials=str(creds))
        reply = await client.request("$SYS.REQ.USER.INFO", b"", timeout=2)
        await client.close()
        return json.loads(reply.data)["data"]

    ours, theirs = (asyncio.run(main(server.url)) for server in servers)
    for data in (ours, theirs):
        assert 3590e9 <= data.pop("expires") <= 3600e9
        # (nats-server lists a JWT user's permissions in the JWT's order, trionats sorted:
        # docs/differences.md)
        data.pop("permissions")
    assert list(ours.items()) == list(theirs.items())
    assert ours["account_name"] == "B" and ours["user_name"] == "U"
