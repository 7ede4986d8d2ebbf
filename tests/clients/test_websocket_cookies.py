"""The websocket block's cookie options and `headers`, on real sockets and against nats-server.

`user_cookie`, `pass_cookie` and `token_cookie` name cookies of the upgrade request that
supply the CONNECT's user, password and token when the CONNECT leaves them empty (nats-server's
wsUpgrade + processConnect); `jwt_cookie` needs operator mode, so it is refused; `headers` are
added to the 101 response.
"""

from __future__ import annotations

import attrs
import pytest
import trio
import trio_websocket

from tests.helpers import NatsServerProcess, free_port, start_trionats
from trionats.config.load import load
from trionats.config.natsconf import parse
from trionats.errors import ConfigError
from trionats.options import Authorization, Options, User, WebsocketOptions
from trionats.protocol import websocket as ws
from trionats.protocol.connect import ConnectOptions, Credentials

AUTH_VIOLATION = b"-ERR 'Authorization Violation'\r\n"
POLICY_VIOLATION = 1008

COOKIES = WebsocketOptions(
    host="127.0.0.1", port=-1, no_tls=True,
    user_cookie="nats_user", pass_cookie="nats_pass", token_cookie="nats_token",
)  # fmt: skip
USERS = Authorization(users=(User(user="web", password="s3cret"),))


@attrs.frozen
class Outcome:
    """What a websocket client saw: the NATS bytes after INFO, and the close code if closed."""

    received: bytes
    close_code: int | None
    headers: dict[str, str]


async def login(port: int, cookie: str = "", connect: bytes = b'{"verbose":false}') -> Outcome:
    """Upgrade (with `cookie` as the Cookie header), CONNECT + PING; until PONG or the close."""
    extra = [(b"Cookie", cookie.encode())] if cookie else []
    received, code = b"", None
    # Our own TCP stream: trio-websocket leaves its socket open when the server closes first.
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                conn = await trio_websocket.wrap_client_stream(
                    nursery, stream, "127.0.0.1", "/", extra_headers=extra
                )
                headers = {k.decode(): v.decode() for k, v in conn.handshake_headers}
                assert (await conn.get_message()).startswith(b"INFO {")
                await conn.send_message(b"CONNECT " + connect + b"\r\nPING\r\n")
                try:
                    while not received.endswith(b"PONG\r\n"):
                        received += await conn.get_message()
                except trio_websocket.ConnectionClosed as closed:
                    code = closed.reason.code
                await conn.aclose()
    finally:
        await stream.aclose()
    return Outcome(received, code, headers)


def accepted(outcome: Outcome) -> bool:
    if outcome.received == b"PONG\r\n" and outcome.close_code is None:
        return True
    assert outcome.received == AUTH_VIOLATION, outcome
    assert outcome.close_code == POLICY_VIOLATION, outcome
    return False


# --- user and password cookies -------------------------------------------------------------------


async def test_user_and_pass_cookies_log_a_client_in(nursery):
    server = await start_trionats(nursery, authorization=USERS, websocket=COOKIES)
    port = server.websocket.port
    assert accepted(await login(port, "nats_user=web; nats_pass=s3cret"))
    # A wrong password, an unknown user, or no cookie at all: refused.
    for cookie in ["nats_user=web; nats_pass=wrong", "nats_user=eve; nats_pass=s3cret", ""]:
        assert not accepted(await login(port, cookie)), cookie
    # Cookies of other names are not credentials.
    assert not accepted(await login(port, "user=web; pass=s3cret"))


async def test_connect_fields_win_over_cookies(nursery):
    """Each cookie only fills its CONNECT field when the client left that field empty."""
    server = await start_trionats(nursery, authorization=USERS, websocket=COOKIES)
    port = server.websocket.port
    good = b'{"verbose":false,"user":"web","pass":"s3cret"}'
    bad = b'{"verbose":false,"user":"web","pass":"wrong"}'
    assert accepted(await login(port, "nats_user=eve; nats_pass=nope", good))
    assert not accepted(await login(port, "nats_user=web; nats_pass=s3cret", bad))
    # Field by field: the user from CONNECT, the password from the cookie (and "" is empty).
    assert accepted(await login(port, "nats_pass=s3cret", b'{"verbose":false,"user":"web"}'))
    empty = b'{"verbose":false,"user":"","pass":""}'
    assert accepted(await login(port, "nats_user=web; nats_pass=s3cret", empty))


async def test_cookie_user_is_logged_and_shown_like_a_connect_user(nursery):
    from tests.monitor.test_monitor import get_json

    server = await start_trionats(
        nursery, authorization=USERS, websocket=COOKIES, http_host="127.0.0.1", http_port=-1
    )
    url = f"ws://127.0.0.1:{server.websocket.port}/"
    cookie = [(b"Cookie", b"nats_user=web; nats_pass=s3cret")]
    async with trio_websocket.open_websocket_url(url, extra_headers=cookie) as conn:
        await conn.get_message()
        await conn.send_message(b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert await conn.get_message() == b"PONG\r\n"
        connz = await get_json(server.monitor.port, "/connz?auth=true")
        (entry,) = connz["connections"]
        assert entry["type"] == "websocket" and entry["authorized_user"] == "web"


async def test_cookies_do_nothing_on_the_client_port(nursery):
    """The cookie options only concern websocket clients; TCP clients still need CONNECT."""
    from tests.helpers import RawClient

    server = await start_trionats(nursery, authorization=USERS, websocket=COOKIES)
    client = await RawClient.connect(server.port)
    await client.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    assert await client.expect_closed() == AUTH_VIOLATION
    await client.aclose()


# --- token cookie --------------------------------------------------------------------------------


async def test_token_cookie_logs_a_client_in(nursery):
    server = await start_trionats(
        nursery, authorization=Authorization(token="t0k"), websocket=COOKIES
    )
    port = server.websocket.port
    assert accepted(await login(port, "nats_token=t0k"))
    assert not accepted(await login(port, "nats_token=wrong"))
    assert not accepted(await login(port, "nats_user=t0k"))
    # A token in the CONNECT wins over the cookie.
    assert not accepted(await login(port, "nats_token=t0k", b'{"verbose":false,"auth_token":"x"}'))


async def test_token_cookie_with_the_websocket_authorization_override(nursery):
    options = attrs.evolve(COOKIES, authorization=Authorization(token="web-token"))
    tcp = Authorization(token="tcp")
    server = await start_trionats(nursery, authorization=tcp, websocket=options)
    port = server.websocket.port
    assert accepted(await login(port, "nats_token=web-token"))
    assert not accepted(await login(port, "nats_token=tcp"))


async def test_cookie_user_beats_no_auth_user(nursery):
    """A cookie user counts as a CONNECT user: no_auth_user only covers clients without one."""
    users = Authorization(users=(*USERS.users, User(user="guest", password="g")))
    options = attrs.evolve(COOKIES, no_auth_user="guest")
    server = await start_trionats(nursery, authorization=users, websocket=options)
    port = server.websocket.port
    assert accepted(await login(port))  # no cookie: guest
    assert accepted(await login(port, "nats_user=web; nats_pass=s3cret"))
    assert not accepted(await login(port, "nats_user=web; nats_pass=wrong"))


# --- headers in the 101 response -----------------------------------------------------------------


async def test_configured_headers_are_in_the_101_response(nursery):
    options = attrs.evolve(
        COOKIES, headers={"X-Custom": "hello", "Strict-Transport-Security": "max-age=31536000"}
    )
    server = await start_trionats(nursery, websocket=options)
    outcome = await login(server.websocket.port)
    assert accepted(outcome)
    assert outcome.headers["x-custom"] == "hello"
    assert outcome.headers["strict-transport-security"] == "max-age=31536000"
    # On the wire: after nats-server's own headers, in the configured order and spelling.
    stream = await trio.open_tcp_stream("127.0.0.1", server.websocket.port)
    await stream.send_all(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Nats-No-Masking: true\r\n\r\n"
    )
    response = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in response:
            response += await stream.receive_some(4096)
    await stream.aclose()
    assert response.split(b"\r\n\r\n")[0].endswith(
        b"Nats-No-Masking: true\r\nX-Custom: hello\r\nStrict-Transport-Security: max-age=31536000"
    )


# --- configuration -------------------------------------------------------------------------------


def test_configuration_keys_load():
    conf = parse(
        'websocket { port: 8080, no_tls: true, user_cookie: u, pass_cookie: p, token_cookie: t\n'
        '  headers { "X-Frame-Options": "DENY", Cache-Control: "no-store" } }'
    )
    from trionats.config.load import options_from_conf

    options = options_from_conf(conf).websocket
    assert (options.user_cookie, options.pass_cookie, options.token_cookie) == ("u", "p", "t")
    assert options.headers == (("X-Frame-Options", "DENY"), ("Cache-Control", "no-store"))


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ('headers: "x"', "headers: expected a map of header names to values, got a string"),
        ("headers { X-Num: 5 }", 'headers: header "X-Num": expected a string, got a number'),
    ],
)
def test_bad_headers_values(tmp_path, headers, message):
    path = tmp_path / "ws.conf"
    path.write_text(f"websocket {{\n  port: 8080\n  no_tls: true\n  {headers}\n}}\n")
    with pytest.raises(ConfigError, match=f"^{path}:4:3: {message}$"):
        load(path)


@pytest.mark.parametrize(
    ("name", "message"),
    [  # nats-server's list and texts
        ("Host", 'websocket: invalid header "Host" not allowed'),
        ("content-length", 'websocket: invalid header "content-length" not allowed'),
        ("Connection", 'websocket: invalid header "Connection" not allowed'),
        ("UPGRADE", 'websocket: invalid header "UPGRADE" not allowed'),
        ("Nats-No-Masking", 'websocket: invalid header "Nats-No-Masking" not allowed'),
        (
            "Sec-WebSocket-Protocol",
            'websocket: invalid header "Sec-WebSocket-Protocol", '
            '"Sec-WebSocket-" prefix not allowed',
        ),
        # trionats only: nats-server would send a broken response
        ("X Custom", 'websocket: invalid header "X Custom": not an HTTP header name'),
    ],
)
def test_reserved_headers_are_refused(name, message):
    options = Options(websocket=WebsocketOptions(port=8080, no_tls=True, headers={name: "v"}))
    with pytest.raises(ConfigError, match=f"^{message}$".replace("(", r"\(")):
        options.check()
    Options(websocket=WebsocketOptions(port=0, headers={name: "v"})).check()  # disabled


def test_header_values_cannot_split_the_response():
    headers = {"X-Custom": "a\r\nSet-Cookie: evil=1"}
    with pytest.raises(ConfigError, match="CR, LF and NUL are not allowed"):
        Options(websocket=WebsocketOptions(port=8080, no_tls=True, headers=headers)).check()


def test_jwt_cookie_is_refused_as_nats_server_refuses_it_without_operators():
    options = Options(websocket=WebsocketOptions(port=8080, no_tls=True, jwt_cookie="jwt"))
    with pytest.raises(
        ConfigError,
        match='^trusted operators or trusted keys configuration is required for JWT '
        'authentication via cookie "jwt"$',
    ):
        options.check()
    Options(websocket=WebsocketOptions(port=0, jwt_cookie="jwt")).check()  # disabled, as there


def test_reload_refuses_a_change_of_headers_or_cookies():
    from trionats.config.reload import diff

    old = Options(websocket=COOKIES)
    for change in ({"headers": {"X-A": "1"}}, {"user_cookie": "other"}):
        with pytest.raises(ConfigError, match="config reload not supported for Websocket"):
            diff(old, Options(websocket=attrs.evolve(COOKIES, **change)))


# --- cookie parsing (Go's Request.Cookies) and credentials, without sockets ----------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["a=1; b=2"], (("a", "1"), ("b", "2"))),
        (["a=1", "b=2"], (("a", "1"), ("b", "2"))),  # several Cookie headers
        ([" a = x y ;;b="], (("a", " x y"), ("b", ""))),  # the name is trimmed, not the value
        (['a= "x"; b="x'], ()),  # quotes only go when they enclose the value; else invalid
        (['a="quoted"'], (("a", "quoted"),)),
        (["a=x\\y; b=ok", "c=x\"y"], (("b", "ok"),)),  # invalid values are skipped
        (["bad name=1; (x)=2; c"], (("c", ""),)),  # invalid names too
        (["a=%41"], (("a", "%41"),)),  # no decoding
        ([""], ()),
    ],
)
def test_parse_cookies(lines, expected):
    assert ws.parse_cookies(lines) == expected


def test_cookie_credentials_as_nats_server_assigns_them():
    cookies = (("u", "alice"), ("p", "x"), ("t", "tok"), ("p", "y"))
    assert ws.cookie_credentials(cookies, "u", "p", "t") == Credentials("alice", "y", "tok")
    # One cookie fills the first option naming it (user, then pass, then token).
    assert ws.cookie_credentials((("c", "v"),), "c", "c", "c") == Credentials("v", "", "")
    assert ws.cookie_credentials((("c", "v"),), "", "", "") == Credentials()


def test_credentials_fill_only_empty_fields():
    filled = Credentials("u", "p", "t").fill(ConnectOptions(user="me", auth_token=""))
    assert (filled.user, filled.password, filled.auth_token) == ("me", "p", "t")


# --- against nats-server -------------------------------------------------------------------------

REFERENCE_CONF = """
authorization {{ users = [ {{ user: web, password: s3cret }} ] }}
websocket {{
  host: 127.0.0.1
  port: {port}
  no_tls: true
  user_cookie: nats_user
  pass_cookie: nats_pass
  headers {{ "X-Custom": "hello" }}
}}
"""

#: (Cookie header, CONNECT): each is accepted or refused alike by both servers.
CASES = [
    ("nats_user=web; nats_pass=s3cret", b'{"verbose":false}'),
    ("nats_user=web; nats_pass=wrong", b'{"verbose":false}'),
    ("", b'{"verbose":false}'),
    ("nats_user=eve; nats_pass=x", b'{"verbose":false,"user":"web","pass":"s3cret"}'),
    ("nats_user=web; nats_pass=s3cret", b'{"verbose":false,"user":"web","pass":"x"}'),
    ("nats_pass=s3cret", b'{"verbose":false,"user":"web"}'),
    ('nats_user="web"; nats_pass="s3cret"', b'{"verbose":false}'),
    ("nats_user=web;nats_pass=wrong; nats_pass=s3cret", b'{"verbose":false}'),
    ("nats_user = web; nats_pass = s3cret", b'{"verbose":false}'),
    ("nats_user =web; nats_pass =s3cret", b'{"verbose":false}'),
    ("nats_user=web; nats_pass=s3cret\\", b'{"verbose":false}'),
    ("nats_user=web; nats_pass=s3cret; nats_pass=bad\\", b'{"verbose":false}'),
]


@pytest.mark.interop
async def test_cookies_and_headers_match_nats_server(nursery, tmp_path):
    ref_port, our_port = free_port(), free_port()
    for name, port in (("ref.conf", ref_port), ("ours.conf", our_port)):
        (tmp_path / name).write_text(REFERENCE_CONF.format(port=port))
    with NatsServerProcess("-c", str(tmp_path / "ref.conf")):
        options = load(tmp_path / "ours.conf")
        server = await start_trionats(
            nursery, authorization=options.authorization, websocket=options.websocket
        )
        assert server.websocket.port == our_port
        for cookie, connect in CASES:
            reference = await login(ref_port, cookie, connect)
            ours = await login(our_port, cookie, connect)
            assert accepted(ours) == accepted(reference), (cookie, connect, reference, ours)
            assert reference.headers["x-custom"] == ours.headers["x-custom"] == "hello"
        # Sanity: both kinds of outcome occurred.
        outcomes = {accepted(await login(our_port, c, b)) for c, b in CASES}
        assert outcomes == {True, False}


@pytest.mark.interop
def test_reserved_header_refused_by_nats_server_too(tmp_path):
    """nats-server refuses the same names when it starts (its -t does not check them)."""
    import subprocess

    from tests.helpers import nats_server_binary

    path = tmp_path / "bad.conf"
    path.write_text('websocket { port: -1, no_tls: true, headers { "Host": "x" } }\n')
    result = subprocess.run(
        [nats_server_binary(), "-c", str(path), "-p", "-1"], capture_output=True, text=True,
        timeout=10,
    )  # fmt: skip
    assert result.returncode != 0
    assert 'websocket: invalid header "Host" not allowed' in result.stderr + result.stdout
    with pytest.raises(ConfigError, match='^websocket: invalid header "Host" not allowed$'):
        load(path).check()
