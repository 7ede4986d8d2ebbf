"""WebSocket clients on real sockets: raw frames, trio-websocket, nats.ws, nats-py, nats-server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest
import trio
import trio_websocket

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess, free_port, start_trionats
from trionats.options import WebsocketOptions
from trionats.protocol import websocket as ws

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
JS_DIR = Path(__file__).parent.parent / "js"
WS = WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True)


def upgrade_request(*extra: str, version: str = "13") -> bytes:
    lines = [
        "GET / HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}", f"Sec-WebSocket-Version: {version}", *extra,
    ]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(opcode: int, payload: bytes, *, final=True, mask=True, rsv1=False) -> bytes:
    b0 = opcode | (0x80 if final else 0) | (0x40 if rsv1 else 0)
    size = len(payload)
    bit = 0x80 if mask else 0
    if size <= 125:
        head = bytes((b0, size | bit))
    elif size <= 0xFFFF:
        head = struct.pack("!BBH", b0, 126 | bit, size)
    else:
        head = struct.pack("!BBQ", b0, 127 | bit, size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + ws.unmask(payload, key, 0)


#: Raw websocket clients of the running test, closed when it ends.
_clients: list = []


@pytest.fixture
async def nursery(nursery):
    """conftest's nursery, closing the test's raw clients at the end."""
    yield nursery
    for client in _clients:
        await client.aclose()
    _clients.clear()


class RawWebSocket:
    """A raw websocket client: the upgrade, then masked frames out and the server's frames in."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        _clients.append(self)
        self.raw = b""  # bytes read but not yet turned into events
        self.reader = ws.FrameReader(masked=False, compress=True, max_compressed=1 << 26)
        self.data = b""  # NATS bytes received
        self.closed_with: bytes | None = None  # the server's close frame payload

    @classmethod
    async def connect(cls, port: int, *extra: str, read_info=True):
        client = cls(await trio.open_tcp_stream("127.0.0.1", port))
        response = await client.send_upgrade(upgrade_request(*extra))
        assert response.startswith(b"HTTP/1.1 101 "), response
        if read_info:
            client.info = await client.read_line()
        return client

    async def send_upgrade(self, request: bytes) -> bytes:
        await self.stream.send_all(request)
        with trio.fail_after(5):
            while b"\r\n\r\n" not in self.raw:
                data = await self.stream.receive_some(65536)
                if not data:
                    break
                self.raw += data
        response, _, self.raw = self.raw.partition(b"\r\n\r\n")
        return response + b"\r\n\r\n"

    async def send(self, data: bytes, opcode: int = ws.BINARY, **kwargs) -> None:
        await self.stream.send_all(frame(opcode, data, **kwargs))

    async def _fill(self) -> bool:
        if self.raw:
            data, self.raw = self.raw, b""
        else:
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                data = b""
        if not data:
            return False
        for event in self.reader.feed(data):
            if type(event) is bytes:
                self.data += event
            elif type(event) is ws.CloseFrame:
                self.closed_with = event.reply or b""
        return True

    async def read_line(self) -> bytes:
        with trio.fail_after(5):
            while b"\n" not in self.data:
                if not await self._fill():
                    raise EOFError(self.data)
        line, _, self.data = self.data.partition(b"\n")
        return line + b"\n"

    async def expect(self, expected: bytes) -> None:
        with trio.fail_after(5):
            while len(self.data) < len(expected):
                if not await self._fill():
                    break
        got, self.data = self.data[: len(expected)], self.data[len(expected) :]
        assert got == expected

    async def read_until_closed(self) -> bytes:
        with trio.fail_after(5):
            while await self._fill():
                pass
        return self.data

    async def aclose(self) -> None:
        await self.stream.aclose()


def info_of(line: bytes) -> dict:
    assert line.startswith(b"INFO ") and line.endswith(b"\r\n"), line
    return json.loads(line[5:])


# --- framing and the protocol inside it ------------------------------------------------------


async def test_info_first_then_nats_across_frames(nursery):
    server = await start_trionats(nursery, websocket=WS)
    port = server.websocket.port
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(upgrade_request())
    raw = b""
    while b"\r\n\r\n" not in raw or len(raw.partition(b"\r\n\r\n")[2]) < 4:
        raw += await stream.receive_some(65536)
    response, _, first = raw.partition(b"\r\n\r\n")
    assert response == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    )
    assert first[:2] == b"\x82\x7e" and first[4:9] == b"INFO "  # binary, FIN, unmasked
    await stream.aclose()

    sub = await RawClient.connect(server.port)
    _clients.append(sub)
    await sub.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\n")
    await sub.ping_pong()
    client = await RawWebSocket.connect(port)
    info = info_of(client.info)
    assert (info["host"], info["port"]) == ("127.0.0.1", port)
    assert "tls_required" not in info
    await client.send(b'CONNECT {"verbose":false}\r\nPING\r\n')  # several ops in one frame
    await client.expect(b"PONG\r\n")
    await client.send(b"PUB fo")  # one op split across frames, text frames too
    await client.send(b"o 2\r\nhi\r\n", ws.TEXT)
    await sub.expect(b"MSG foo 1 2\r\nhi\r\n")
    await sub.send(b"PUB bar 5\r\nhello\r\n")
    await client.send(b"SUB bar 9\r\nPING\r\n")
    await client.expect(b"PONG\r\n")
    await sub.send(b"PUB bar 5\r\nhello\r\n")
    await client.expect(b"MSG bar 9 5\r\nhello\r\n")
    assert server.clients[info["client_id"]].id_label == "wid"


async def test_fragmented_messages_and_control_frames(nursery):
    server = await start_trionats(nursery, websocket=WS)
    client = await RawWebSocket.connect(server.websocket.port)
    await client.send(b"CONNECT {\"verbose\":false}\r\nPI", final=False)
    await client.send(b"ping me", ws.PING)  # control frames may come between fragments
    await client.send(b"NG\r\n", ws.CONTINUATION)
    await client.expect(b"PONG\r\n")
    # The websocket PONG came back as a frame of its own; the reader saw it as a control frame.
    await client.send(struct.pack("!H", 1000) + b"bye", ws.CLOSE)
    await client.read_until_closed()
    assert client.closed_with == struct.pack("!H", 1000) + b"bye"  # echoed


async def test_unmasked_frame_is_a_protocol_error(nursery):
    server = await start_trionats(nursery, websocket=WS)
    client = await RawWebSocket.connect(server.websocket.port)
    await client.stream.send_all(frame(ws.BINARY, b"PING\r\n", mask=False))
    rest = b""
    with trio.fail_after(5):
        while data := await client.stream.receive_some(65536):
            rest += data
    assert rest == b"\x88\x12\x03\xeamask bit missing"  # nats-server's bytes


async def test_ops_before_a_broken_frame_are_still_handled(nursery):
    server = await start_trionats(nursery, websocket=WS)
    client = await RawWebSocket.connect(server.websocket.port)
    await client.stream.send_all(
        frame(ws.BINARY, b'CONNECT {"verbose":false}\r\nPING\r\n')
        + frame(ws.BINARY, b"PING\r\n", mask=False)
    )
    assert await client.read_until_closed() == b"PONG\r\n"
    assert client.closed_with == struct.pack("!H", 1002) + b"mask bit missing"


async def test_no_masking_when_asked(nursery):
    server = await start_trionats(nursery, websocket=WS)
    client = await RawWebSocket.connect(server.websocket.port, "Nats-No-Masking: true")
    await client.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n", mask=False)
    await client.expect(b"PONG\r\n")


async def test_compression_both_ways(nursery):
    options = WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True, compression=True)
    server = await start_trionats(nursery, websocket=options)
    client = RawWebSocket(await trio.open_tcp_stream("127.0.0.1", server.websocket.port))
    response = await client.send_upgrade(
        upgrade_request("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    )
    assert b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; " \
        b"client_no_context_takeover\r\n" in response
    await client.read_line()
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = b"CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPUB big 300\r\n" + b"z" * 300 + b"\r\nPING\r\n"
    packed = (compressor.compress(body) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    await client.send(packed, rsv1=True)
    await client.expect(b"MSG big 1 300\r\n" + b"z" * 300 + b"\r\nPONG\r\n")


async def test_server_closes_with_status_and_reason(nursery):
    server = await start_trionats(nursery, websocket=WS, max_payload=16)
    client = await RawWebSocket.connect(server.websocket.port)
    await client.send(b"CONNECT {\"verbose\":false}\r\nPUB foo 17\r\n" + b"x" * 17 + b"\r\n")
    data = await client.read_until_closed()
    assert data == b"-ERR 'Maximum Payload Violation'\r\n"
    assert client.closed_with == struct.pack("!H", 1009) + b"Maximum Message Payload Exceeded"

    client = await RawWebSocket.connect(server.websocket.port)
    await client.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
    await client.expect(b"PONG\r\n")
    server.shutdown()
    await client.read_until_closed()
    assert client.closed_with == struct.pack("!H", 1001) + b"Server Shutdown"


async def test_websocket_clients_count_toward_max_connections(nursery):
    server = await start_trionats(nursery, websocket=WS, max_connections=1)
    tcp = await RawClient.connect(server.port)
    _clients.append(tcp)
    await tcp.ping_pong()
    client = await RawWebSocket.connect(server.websocket.port)
    assert await client.read_until_closed() == b"-ERR 'maximum connections exceeded'\r\n"
    assert client.closed_with == struct.pack("!H", 1008) + b"Maximum Connections Exceeded"


# --- the upgrade ------------------------------------------------------------------------------


async def http_exchange(port: int, request: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(request)
    got = b""
    with trio.fail_after(5):
        # Until the response is complete (nats-server keeps the connection) or closed.
        while not _complete(got) and (data := await stream.receive_some(65536)):
            got += data
    await stream.aclose()
    return got


def _complete(response: bytes) -> bool:
    head, found, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if found and line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def without_date(response: bytes) -> bytes:
    return b"\r\n".join(line for line in response.split(b"\r\n") if not line.startswith(b"Date: "))


async def test_bad_requests_get_go_style_errors(nursery):
    server = await start_trionats(nursery, websocket=WS)
    port = server.websocket.port
    assert without_date(await http_exchange(port, upgrade_request(version="12"))) == (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n"
        b"Content-Length: 12\r\n\r\nBad Request\n"
    )
    got = await http_exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    # Data before the 101: refused without an answer, as nats-server (its response is lost).
    assert await http_exchange(port, upgrade_request() + b"PING\r\n") == b""


async def test_origin_policies(nursery):
    options = WebsocketOptions(
        host="127.0.0.1", port=-1, no_tls=True, allowed_origins=("https://app.example.com",)
    )
    server = await start_trionats(nursery, websocket=options)
    port = server.websocket.port
    refused = await http_exchange(port, upgrade_request("Origin: https://evil.example.com"))
    assert refused.startswith(b"HTTP/1.1 403 Forbidden\r\n") and refused.endswith(b"Forbidden\n")
    client = await RawWebSocket.connect(port, "Origin: https://app.example.com")
    assert client.info.startswith(b"INFO ")
    client = await RawWebSocket.connect(port)  # no Origin: a non-browser client, accepted
    assert client.info.startswith(b"INFO ")


async def test_handshake_timeout(nursery):
    options = WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True, handshake_timeout=0.2)
    server = await start_trionats(nursery, websocket=options)
    stream = await trio.open_tcp_stream("127.0.0.1", server.websocket.port)
    await stream.send_all(b"GET / HTTP/1.1\r\n")
    with trio.fail_after(3):
        assert await stream.receive_some(100) == b""
    await stream.aclose()


async def test_trio_websocket_client(nursery):
    server = await start_trionats(nursery, websocket=WS)
    url = f"ws://127.0.0.1:{server.websocket.port}/"
    async with trio_websocket.open_websocket_url(url) as conn:
        info = await conn.get_message()
        assert info.startswith(b"INFO {")
        await conn.send_message(b"CONNECT {\"verbose\":false}\r\nSUB q 1\r\nPUB q 2\r\nok\r\nPING\r\n")
        received = b""
        with trio.fail_after(5):
            while not received.endswith(b"PONG\r\n"):
                received += await conn.get_message()
        assert received == b"MSG q 1 2\r\nok\r\nPONG\r\n"


def test_options_refused_like_nats_server():
    from trionats.errors import ConfigError
    from trionats.options import Options

    with pytest.raises(ConfigError, match="^websocket requires TLS configuration$"):
        Options(websocket=WebsocketOptions(port=8080)).check()
    with pytest.raises(ConfigError, match="allowed origins must be absolute URLs"):
        Options(websocket=WebsocketOptions(port=8080, no_tls=True, allowed_origins=("x",))).check()
    Options(websocket=WebsocketOptions(port=0)).check()  # disabled: nothing is checked


# --- client libraries and the reference server ------------------------------------------------


def ws_config(ws_port: int, extra: str = "") -> str:
    path = Path(tempfile.mkstemp(prefix="ws-", suffix=".conf")[1])
    path.write_text(f"websocket {{\n  host: 127.0.0.1\n  port: {ws_port}\n  no_tls: true\n{extra}}}\n")
    return str(path)


needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_node(ws_url: str, nats_url: str, *extra: str) -> list[str]:
    if not (JS_DIR / "node_modules" / "nats.ws").is_dir():
        pytest.fail("nats.ws is not installed: run `make test` (it runs npm ci in tests/js)")
    result = subprocess.run(
        ["node", str(JS_DIR / "ws-e2e.mjs"), ws_url, nats_url, *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [line.removeprefix("ok ") for line in result.stdout.splitlines()]


NODE_CHECKS = ["ws-pubsub", "cross-transport", "request-reply", "headers", "big-payload"]


@needs_node
def test_nats_ws_with_nats_py_on_tcp():
    """nats.ws over WebSocket and nats-py over TCP exchange requests and messages."""
    import nats

    ws_port = free_port()
    with TrionatsProcess("-c", ws_config(ws_port)) as server:

        async def main():
            nc = await nats.connect(server.url, allow_reconnect=False)
            got = asyncio.get_running_loop().create_future()

            async def upper(msg):
                await msg.respond(msg.data.upper())

            await nc.subscribe("py.upper", cb=upper)
            async def received(msg):
                got.set_result(msg.data)

            await nc.subscribe("py.from-ws", cb=received)
            await nc.flush()
            node = await asyncio.create_subprocess_exec(
                "node", str(JS_DIR / "ws-e2e.mjs"), f"ws://127.0.0.1:{ws_port}", server.url,
                "--with-py", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(node.communicate(), 60)
            assert node.returncode == 0, (out + err).decode()
            assert await asyncio.wait_for(got, 5) == b"hi nats-py"
            await nc.close()
            return [line.removeprefix("ok ") for line in out.decode().splitlines()]

        assert asyncio.run(main()) == [*NODE_CHECKS, "nats-py", "drained"]


@needs_node
def test_nats_ws_against_reference_server():
    ws_port = free_port()
    with NatsServerProcess("-c", ws_config(ws_port)) as server:
        assert run_node(f"ws://127.0.0.1:{ws_port}", server.url) == [*NODE_CHECKS, "drained"]


def test_nats_py_websocket_transport():
    pytest.importorskip("aiohttp", reason="nats-py's websocket transport needs aiohttp")
    import nats

    ws_port = free_port()
    with TrionatsProcess("-c", ws_config(ws_port)) as server:

        async def main():
            over_ws = await nats.connect(f"ws://127.0.0.1:{ws_port}", allow_reconnect=False)
            over_tcp = await nats.connect(server.url, allow_reconnect=False)
            sub = await over_ws.subscribe("py.ws")
            await over_ws.flush()
            await over_tcp.publish("py.ws", b"x" * 100000)
            msg = await sub.next_msg(timeout=5)
            assert msg.data == b"x" * 100000

            async def echo(msg):
                await msg.respond(msg.data[::-1])

            await over_tcp.subscribe("py.rev", cb=echo)
            await over_tcp.flush()
            reply = await over_ws.request("py.rev", b"abc", timeout=5)
            await over_ws.close()
            await over_tcp.close()
            return reply.data

        assert asyncio.run(main()) == b"cba"


@pytest.mark.interop
async def test_upgrade_and_errors_match_nats_server(nursery):
    """The 101, the INFO's fields and port, and error responses, against nats-server."""
    ws_port = free_port()
    with NatsServerProcess("-c", ws_config(ws_port)) as reference:
        ours = await start_trionats(nursery, websocket=WS)
        for port in (ws_port, ours.websocket.port):
            client = RawWebSocket(await trio.open_tcp_stream("127.0.0.1", port))
            response = await client.send_upgrade(upgrade_request("Nats-No-Masking: true"))
            info = info_of(await client.read_line())
            await client.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n", mask=False)
            await client.expect(b"PONG\r\n")
            bad = without_date(await http_exchange(port, upgrade_request(version="12")))
            forbidden = await http_exchange(port, b"PUT / HTTP/1.1\r\nHost: x\r\n\r\n")
            # (Not compared: nats-server's close frame after "mask bit missing" races its
            # socket close, so it is not always sent; see test_unmasked_frame_is_a_protocol_error.)
            if port == ws_port:
                expected = (response, info["port"], bad, without_date(forbidden))
                reference_keys = set(info)
            else:
                assert (response, info["port"], bad, without_date(forbidden)) == (
                    expected[0], port, *expected[2:]
                )
                # nats-server's extras: its git commit, JetStream API level, and xkey
                assert set(info) == reference_keys - {"git_commit", "api_lvl", "xkey"}
        assert reference.process.poll() is None


async def test_monitoring_shows_websocket_clients(nursery):
    from tests.monitor.test_monitor import get_json

    options = WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True, handshake_timeout=2.0)
    server = await start_trionats(nursery, websocket=options, http_host="127.0.0.1", http_port=-1)
    client = await RawWebSocket.connect(server.websocket.port)
    await client.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    await client.expect(b"PONG\r\n")
    varz = await get_json(server.monitor.port, "/varz")
    assert varz["websocket"] == {  # nats-server's fields, empty ones left out
        "host": "127.0.0.1", "port": server.websocket.port, "handshake_timeout": 2_000_000_000,
        "no_tls": True,
    }  # fmt: skip
    assert varz["connections"] == 1
    connz = await get_json(server.monitor.port, "/connz")
    assert [c["type"] for c in connz["connections"]] == ["websocket"]


async def test_wss_with_the_tls_block(nursery, tmp_path):
    import ssl

    import trustme

    from trionats.options import TLSOptions

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    path = str(tmp_path / "server.pem")
    options = WebsocketOptions(
        host="127.0.0.1", port=-1, tls=TLSOptions(cert_file=path, key_file=path)
    )
    server = await start_trionats(nursery, websocket=options)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    url = f"wss://127.0.0.1:{server.websocket.port}/"
    async with trio_websocket.open_websocket_url(url, ssl_context=context) as conn:
        info = info_of(await conn.get_message())
        assert info["tls_required"] is True and info["tls_available"] is True
        await conn.send_message(b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert await conn.get_message() == b"PONG\r\n"
    # A plaintext client gets nothing but the close.
    assert await http_exchange(server.websocket.port, upgrade_request()) == b""


# --- authentication: the websocket override and connection types ------------------------------


async def test_websocket_authorization_overrides_the_server(nursery):
    from trionats.options import Authorization

    options = WebsocketOptions(
        host="127.0.0.1", port=-1, no_tls=True,
        authorization=Authorization(user="web", password="s3cret"),
    )  # fmt: skip
    server = await start_trionats(nursery, websocket=options)
    tcp = await RawClient.connect(server.port)  # the client port stays open
    _clients.append(tcp)
    assert b"auth_required" not in tcp.info
    await tcp.send(b'CONNECT {"verbose":false}\r\n')
    await tcp.ping_pong()

    client = await RawWebSocket.connect(server.websocket.port)
    assert info_of(client.info)["auth_required"] is True
    await client.send(b'CONNECT {"verbose":false,"user":"web","pass":"s3cret"}\r\nPING\r\n')
    await client.expect(b"PONG\r\n")

    client = await RawWebSocket.connect(server.websocket.port)
    await client.send(b'CONNECT {"verbose":false,"user":"web","pass":"wrong"}\r\nPING\r\n')
    assert await client.read_until_closed() == b"-ERR 'Authorization Violation'\r\n"
    assert client.closed_with == struct.pack("!H", 1008) + b"Authentication Failure"


async def test_allowed_connection_types_and_websocket_no_auth_user(nursery):
    from trionats.options import Authorization, User

    users = (
        User(user="app", password="a", allowed_connection_types=("STANDARD",)),
        User(user="browser", password="b", allowed_connection_types=("WEBSOCKET",)),
    )
    options = WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True, no_auth_user="browser")
    server = await start_trionats(
        nursery, authorization=Authorization(users=users), websocket=options
    )
    for port, user, password, accepted in [
        (server.websocket.port, "browser", "b", True),
        (server.websocket.port, "app", "a", False),
        (server.port, "app", "a", True),
        (server.port, "browser", "b", False),
    ]:
        connect = json.dumps({"verbose": False, "user": user, "pass": password}).encode()
        if port == server.port:
            client = await RawClient.connect(port)
            _clients.append(client)
            await client.send(b"CONNECT " + connect + b"\r\nPING\r\n")
            got = await client.expect_closed(1) if not accepted else await client.read_line()
        else:
            client = await RawWebSocket.connect(port)
            await client.send(b"CONNECT " + connect + b"\r\nPING\r\n")
            got = await client.read_until_closed() if not accepted else await client.read_line()
        assert (got == b"PONG\r\n") is accepted, (port, user, got)
    # no_auth_user: a websocket CONNECT without credentials is "browser" (the INFO still says
    # auth_required, as nats-server's does with a websocket override)
    client = await RawWebSocket.connect(server.websocket.port)
    assert info_of(client.info)["auth_required"] is True
    await client.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
    await client.expect(b"PONG\r\n")


def test_websocket_auth_options_are_checked_like_nats_server():
    from trionats.errors import ConfigError
    from trionats.options import Authorization, Options, User

    users = Authorization(users=(User(user="a", password="x"),))
    ws = WebsocketOptions(port=8080, no_tls=True, authorization=Authorization(user="u", password="p"))
    with pytest.raises(ConfigError, match="^websocket authentication username not compatible"):
        Options(authorization=users, websocket=ws).check()
    ws = WebsocketOptions(port=8080, no_tls=True, no_auth_user="nobody")
    with pytest.raises(ConfigError, match='^no_auth_user: "nobody" not present as user'):
        Options(authorization=users, websocket=ws).check()


async def test_ports_file_lists_websocket_urls(nursery, tmp_path):
    server = await start_trionats(nursery, websocket=WS, ports_file_dir=str(tmp_path))
    (ports_file,) = tmp_path.glob("trionats_*.ports")
    ports = json.loads(ports_file.read_text())
    assert ports["websocket"] == [f"ws://127.0.0.1:{server.websocket.port}"]
    assert ports["nats"] == [f"nats://127.0.0.1:{server.port}"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("user_cookie", "u"), ("pass_cookie", "p"), ("token_cookie", "t"), ("headers", {"X-A": "1"})],
)
def test_websocket_cookie_and_header_keys_are_accepted(field, value):
    """Acted on since tests/clients/test_websocket_cookies.py (jwt_cookie is refused: see there)."""
    from trionats.options import Options

    Options(websocket=WebsocketOptions(port=8080, no_tls=True, **{field: value})).check()


async def test_websocket_ping_interval_overrides_the_servers(nursery):
    options = WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True, ping_interval=0.2)
    server = await start_trionats(nursery, websocket=options)  # server-wide: 2 minutes
    client = await RawWebSocket.connect(server.websocket.port)
    await client.send(b'CONNECT {"verbose":false}\r\n')
    await client.expect(b"PING\r\n")  # within EXPECT_TIMEOUT, so not the 2 minute one
    tcp = await RawClient.connect(server.port)
    _clients.append(tcp)
    await tcp.send(b'CONNECT {"verbose":false}\r\n')
    await tcp.expect_nothing(0.5)


# --- in a cluster: websocket clients learn the other nodes' websocket URLs ---------------------


async def test_cluster_gives_websocket_clients_websocket_urls(nursery):
    from trionats.options import ClusterOptions

    route_a, route_b = free_port(), free_port()

    def cluster(own: int, other: int) -> ClusterOptions:
        return ClusterOptions(
            name="C", host="127.0.0.1", port=own, routes=(f"nats-route://127.0.0.1:{other}",)
        )

    a = await start_trionats(nursery, cluster=cluster(route_a, route_b), websocket=WS)
    b = await start_trionats(nursery, cluster=cluster(route_b, route_a), websocket=WS)
    expected = sorted(f"127.0.0.1:{server.websocket.port}" for server in (a, b))
    client = await RawWebSocket.connect(a.websocket.port)
    await client.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    await client.expect(b"PONG\r\n")
    with trio.fail_after(5):  # the connect_info INFO, then async INFOs as the route forms
        while sorted(info_of(await client.read_line()).get("connect_urls", [])) != expected:
            pass
    tcp = await RawClient.connect(a.port)  # TCP clients still get the client URLs
    _clients.append(tcp)
    assert sorted(json.loads(tcp.info[5:])["connect_urls"]) == sorted(
        f"127.0.0.1:{server.port}" for server in (a, b)
    )
    # In lame duck mode, a's websocket clients are told about b's websocket URL only.
    a.enter_lame_duck()
    with trio.fail_after(5):
        while "ldm" not in (info := info_of(await client.read_line())):
            pass
    assert info["connect_urls"] == [f"127.0.0.1:{b.websocket.port}"]
