"""WebSocket clients: the listener, the HTTP upgrade, and NATS carried in frames as a byte stream.

Each accepted socket gets one task in the connections nursery: it runs the TLS handshake
(wss, tls.py), reads the HTTP upgrade request with h11 (both under `handshake_timeout`),
judges it with `protocol.websocket.check_upgrade` (nats-server's checks, order and HTTP
statuses), then runs an ordinary `ClientConnection` over a `WebSocketStream`, a trio Stream
whose `receive_some` returns the frames' payloads and whose `send_all` sends one binary frame
per batch. So parsing, limits, auth and delivery are those of TCP clients; only the stream
differs. Websocket clients authenticate with the websocket
block's override (`auth_options`) and `WEBSOCKET` in allowed_connection_types; the block's
cookie options turn the upgrade's cookies into `client.credentials`, which fill the CONNECT
fields the client leaves empty (client.py), and its `headers` end the 101 response.

Why our own frames and not trio-websocket: nats-server accepts unmasked frames from clients
that ask (`Nats-No-Masking`), accepts text frames without UTF-8 checks, answers bad requests
with 405/400/403 and Go's bodies, closes with its own reason texts, and compresses with
permessage-deflate; trio-websocket (wsproto) allows none of these to be set, and the framing
is small (protocol/websocket.py).
"""

from __future__ import annotations

import email.utils
from typing import TYPE_CHECKING

import attrs
import h11
import trio

from . import defaults, tls
from .auth import Authenticator
from .client import ClientConnection
from .containment import contained
from .errors import Reason
from .listeners import accept_forever
from .logging import peer_fields
from .options import Authorization
from .protocol import websocket as ws

if TYPE_CHECKING:
    from .options import Options, WebsocketOptions
    from .server import Server

#: Most bytes an upgrade request may have before it is refused.
MAX_REQUEST_SIZE = 16 * 1024
#: The largest compressed message accepted, as nats-server: 8 x max_payload, at most 64 MiB.
MAX_COMPRESSED_CAP = 64 * 1024 * 1024

#: The close status sent to a client closed for each reason (nats-server wsEnqueueCloseMessage).
CLOSE_STATUS = {
    Reason.CLIENT_CLOSED: ws.NORMAL,
    Reason.AUTH_TIMEOUT: ws.POLICY_VIOLATION,
    Reason.AUTH_VIOLATION: ws.POLICY_VIOLATION,
    Reason.SLOW_CONSUMER_PENDING: ws.POLICY_VIOLATION,
    Reason.SLOW_CONSUMER_WRITE: ws.POLICY_VIOLATION,
    Reason.MAX_CONNECTIONS: ws.POLICY_VIOLATION,
    Reason.MAX_CONTROL_LINE: ws.POLICY_VIOLATION,
    Reason.TLS_HANDSHAKE: ws.TLS_HANDSHAKE,
    Reason.PARSE_ERROR: ws.PROTOCOL_ERROR,
    Reason.PROTOCOL_VIOLATION: ws.PROTOCOL_ERROR,
    Reason.BAD_CLIENT_PROTOCOL: ws.PROTOCOL_ERROR,
    Reason.MAX_PAYLOAD: ws.MESSAGE_TOO_BIG,
    Reason.WRITE_ERROR: ws.GOING_AWAY,
    Reason.READ_ERROR: ws.GOING_AWAY,
    Reason.STALE_CONNECTION: ws.GOING_AWAY,
    Reason.SERVER_SHUTDOWN: ws.GOING_AWAY,
}

_STATUS_TEXT = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed"}


class WebSocketStream(trio.abc.Stream):
    """NATS bytes over WebSocket frames: a trio Stream over the upgraded TCP stream.

    Control frames are answered from `receive_some` (pong, the close echo); one lock orders
    them with the writer's frames. `close_status` (status, reason) is what `aclose` sends,
    unless a close frame already went out. Broken framing sets `frame_error` and returns
    the payload that came before it; the client then closes (see WebSocketClient.process).
    """

    def __init__(self, stream: trio.abc.Stream, upgrade: ws.Upgrade, max_payload: int) -> None:
        self.stream = stream
        self.compress = upgrade.compress
        self.browser = upgrade.browser
        max_compressed = min(8 * max_payload, MAX_COMPRESSED_CAP)
        self.reader = ws.FrameReader(
            masked=upgrade.masked, compress=upgrade.compress, max_compressed=max_compressed
        )
        self.close_status: tuple[int, str] = (ws.GOING_AWAY, Reason.SERVER_SHUTDOWN)
        self._send_lock = trio.Lock()
        self._close_sent = False
        self._eof = False
        self.frame_error: ws.FrameError | None = None
        self._pending = b""  # payload bytes received but not yet returned

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        max_bytes = max_bytes or defaults.READ_SIZE
        while not self._pending:
            if self.frame_error is not None:
                raise trio.BrokenResourceError(str(self.frame_error))
            if self._eof:
                return b""
            raw = await self.stream.receive_some(max_bytes)
            if not raw:
                self._eof = True
                return b""
            try:
                events = self.reader.feed(raw)
            except ws.FrameError as error:
                # What came before the broken frame is still handled, as in nats-server; its
                # close frame goes out after their replies.
                self.frame_error, events = error, error.events
                self.close_status = (error.status, str(error))
            data = []
            for event in events:
                if type(event) is bytes:
                    data.append(event)
                elif type(event) is ws.Ping:
                    await self._send_raw(ws.control_frame(ws.PONG, event.payload))
                else:  # CloseFrame: echo it; the connection ends as Client Closed
                    await self._send_close(event.reply or b"")
                    self._eof = True
                    break
            self._pending = b"".join(data)
        # An inflated message may be larger than asked for: the rest waits for the next call.
        data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._close_sent:  # nothing may follow a close frame
            raise trio.ClosedResourceError("websocket closed")
        frames = ws.data_frames(bytes(data), compress=self.compress, browser=self.browser)
        await self._send_raw(b"".join(frames))

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        try:
            if not self._close_sent:
                status, reason = self.close_status
                with trio.move_on_after(defaults.CLOSE_FLUSH_TIMEOUT):
                    await self._send_close(ws.close_payload(status, reason))
        finally:
            await self.stream.aclose()

    async def _send_close(self, payload: bytes) -> None:
        if self._close_sent:
            return
        self._close_sent = True
        try:
            await self._send_raw(ws.control_frame(ws.CLOSE, payload))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    async def _send_raw(self, data: bytes) -> None:
        async with self._send_lock:
            await self.stream.send_all(data)


class WebSocketClient(ClientConnection):
    """A client that came through the websocket listener: tells its stream how it closed."""

    id_label = "wid"
    #: The listener it came through (set once admitted; INFO and /connz read it).
    websocket = None

    @property
    def auth(self) -> Authenticator:
        return self.server.websocket.auth

    @property
    def ping_interval(self) -> float:
        own = self.server.options.websocket.ping_interval
        return own if own > 0 else self.server.options.ping_interval

    async def upgrade(self) -> None:
        """Nothing to do: a websocket client's TLS, if any, belongs to the websocket listener."""

    def process(self, data: bytes) -> None:
        super().process(data)
        if self.stream.frame_error is not None and self.closed_reason is None:
            # The frames broke after these bytes: flush their replies, then the close frame.
            self.close(Reason.READ_ERROR)

    def on_close(self, reason: str) -> None:
        if self.stream.frame_error is None:  # else the stream closes with the framing error
            status = CLOSE_STATUS.get(reason, ws.INTERNAL_ERROR)
            self.stream.close_status = (status, reason)
        super().on_close(reason)


class WebsocketListener:
    """The websocket listener of a server: accepting, upgrading, and what INFO says about it."""

    def __init__(self, server: Server, options: WebsocketOptions, listeners) -> None:
        self.server = server
        self.options = options
        self.listeners = listeners
        self.port = listeners[0].socket.getsockname()[1]
        #: wss://: the TLS handshake runs first, in the connection's task (tls.py)
        self.tls = options.tls is not None
        self.tls_context = tls.server_context(options.tls) if options.tls is not None else None
        self.origins = ws.OriginPolicy(options.same_origin, options.allowed_origins, self.tls)
        #: The block's `headers`, as they end the 101 response.
        self.extra_headers = b"".join(
            f"{name}: {value}\r\n".encode() for name, value in options.headers
        )
        #: Cookies that supply CONNECT credentials (user_cookie, pass_cookie, token_cookie,
        #: and jwt_cookie in operator mode).
        self.cookie_names = (
            options.user_cookie, options.pass_cookie, options.token_cookie, options.jwt_cookie
        )
        self._scope: trio.CancelScope | None = None
        self._auth: Authenticator | None = None
        self._auth_options: Options | None = None

    @property
    def auth_override(self) -> bool:
        own = self.options.authorization
        return bool(own is not None and (own.user or own.token) or self.options.no_auth_user)

    @property
    def auth(self) -> Authenticator:
        """How websocket clients authenticate; rebuilt when the server's options change."""
        options = self.server.options
        if self._auth_options is not options:
            self._auth = Authenticator(auth_options(options), connection_type="WEBSOCKET")
            self._auth_options = options
        return self._auth

    @classmethod
    async def open(cls, server: Server, options: WebsocketOptions) -> WebsocketListener:
        port = 0 if options.port == defaults.RANDOM_PORT else options.port
        listeners = await trio.open_tcp_listeners(port, host=options.host or None)
        return cls(server, options, listeners)

    @property
    def scheme(self) -> str:
        return "wss" if self.tls else "ws"

    def info_fields(self, info: dict) -> None:
        """INFO for a websocket client: the websocket listener's host, port, TLS and auth."""
        info["host"], info["port"] = self.options.host, self.port
        if self.auth_override:  # as nats-server, even for a no_auth_user override
            info["auth_required"] = True
        if self.tls:
            info["tls_required"] = info["tls_available"] = True

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Accept until cancelled (shutdown, lame duck); each socket upgrades in its own task."""
        server = self.server
        server.log.info(
            f"Listening for websocket clients on {self.scheme}://{self.options.host}:{self.port}"
        )
        if not self.tls:
            server.log.warning("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!")
        try:
            with trio.CancelScope() as self._scope:
                async with trio.open_nursery() as nursery:
                    for listener in self.listeners:
                        nursery.start_soon(self._accept, listener)
                    task_status.started()
        finally:
            for listener in self.listeners:
                with trio.CancelScope(shield=True):
                    await listener.aclose()

    async def _accept(self, listener) -> None:
        server = self.server
        await accept_forever(listener, self._start, server.log, "websocket", stats=server.stats)

    def close(self) -> None:
        """Stop accepting (lame duck mode, shutdown); upgraded clients are not affected."""
        if self._scope is not None:
            self._scope.cancel()

    def _start(self, stream: trio.SocketStream) -> None:
        self.server.start_connection_task(self._upgrade_and_run, stream)

    async def _upgrade_and_run(self, stream: trio.SocketStream) -> None:
        try:
            peer = stream.socket.getpeername()[:2]
        except OSError:
            await stream.aclose()
            return
        client = None
        log = self.server.log.bind(**peer_fields(*peer, "websocket"))
        try:
            with contained(log, self.server.stats):  # a failure ends this socket only
                client = await self._upgrade(stream, peer)
        finally:
            if client is None:  # refused or failed: no connection owns the socket
                with trio.CancelScope(shield=True), trio.move_on_after(
                    defaults.CLOSE_FLUSH_TIMEOUT
                ):
                    await stream.aclose()
        if client is not None:
            await client.run()

    async def _upgrade(self, raw: trio.SocketStream, peer) -> WebSocketClient | None:
        """TLS (wss) and the HTTP upgrade; the admitted client, or None if refused."""
        upgrade = None
        stream = raw
        try:
            # As nats-server: handshake_timeout bounds the TLS handshake and the HTTP upgrade.
            timeout = self.options.handshake_timeout or float("inf")
            with trio.move_on_after(timeout):
                if self.tls_context is not None:
                    stream = await self._tls_handshake(stream, peer)
                if stream is not None:
                    upgrade = await self._handshake(stream, peer)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            upgrade = None
        if upgrade is None:
            if stream is not None and stream is not raw:  # TLS: say goodbye (close_notify)
                with trio.CancelScope(shield=True), trio.move_on_after(
                    defaults.CLOSE_FLUSH_TIMEOUT
                ):
                    await stream.aclose()
            return None
        if upgrade.forwarded_ip:
            peer = (upgrade.forwarded_ip, peer[1])
        credentials = None
        if any(self.cookie_names) and upgrade.cookies:
            credentials = ws.cookie_credentials(upgrade.cookies, *self.cookie_names)
        wstream = WebSocketStream(stream, upgrade, self.server.options.max_payload)
        client = self.server.admit(wstream, peer, WebSocketClient)  # last: it registers
        client.websocket = self
        if credentials is not None:
            client.credentials = credentials
        return client

    async def _tls_handshake(self, stream: trio.SocketStream, peer) -> trio.SSLStream | None:
        options = self.options.tls
        try:
            return await tls.handshake(
                stream,
                self.tls_context,
                tls.handshake_timeout(options),
                pinned_certs=options.pinned_certs,
            )
        except tls.HandshakeError as error:
            host, port = peer
            # nats-server's words (Go's HTTP server log, prefixed by "websocket: ")
            log = self.server.log.debug if error.probe else self.server.log.error
            log(f"websocket: http: TLS handshake error from {host}:{port}: {error}")
            return None

    async def _handshake(self, stream: trio.abc.Stream, peer) -> ws.Upgrade | None:
        """Read and judge the upgrade request; answer it. None if refused (already answered)."""
        http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_SIZE)
        request = None
        while True:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError:
                await stream.send_all(_GO_BAD_REQUEST)
                return None
            if event is h11.NEED_DATA:
                data = await stream.receive_some(MAX_REQUEST_SIZE)
                http.receive_data(data)
                if not data and request is None:
                    return None
                continue
            if type(event) is h11.Request:
                request = event
                headers: dict[str, list[str]] = {}
                for name, value in event.headers:
                    headers.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
                verdict = ws.check_upgrade(
                    event.method.decode("latin-1"),
                    headers,
                    origins=self.origins,
                    compression=self.options.compression,
                    extra_headers=self.extra_headers,
                )
                if isinstance(verdict, ws.Refusal):
                    self._log_refusal(peer, verdict.detail)
                    version = event.http_version.decode()
                    await stream.send_all(_http_error(version, verdict.status))
                    return None
                continue
            # The request is complete (EndOfMessage, then PAUSED for the protocol switch).
            if event is h11.PAUSED or type(event) is h11.ConnectionClosed:
                break
        if request is None:
            return None
        if http.trailing_data[0]:
            self._log_refusal(peer, "client sent data before handshake is complete")
            return None
        await stream.send_all(verdict.response)
        return verdict

    def _log_refusal(self, peer, detail: str) -> None:
        host, port = peer
        self.server.log.error(f"{host}:{port} - websocket handshake error: {detail}")

    def urls(self, host: str) -> list[str]:
        return [f"{self.scheme}://{host}:{self.port}"]


def auth_options(options: Options) -> Options:
    """The options websocket clients authenticate with, as nats-server's override rules.

    A websocket `authorization` with a user or token, or a websocket `no_auth_user`, replaces
    the server's single user, token and no_auth_user (its users list stays); its `timeout`
    applies either way. The websocket `tls` block decides verify_and_map.
    """
    ws = options.websocket
    base = options.authorization or Authorization()
    own = ws.authorization or Authorization()
    timeout = own.timeout if own.timeout else base.timeout
    if own.user or own.token or ws.no_auth_user:
        authorization = Authorization(
            user=own.user, password=own.password, token=own.token, timeout=timeout,
            users=base.users, default_permissions=base.default_permissions,
        )  # fmt: skip
        no_auth_user = ws.no_auth_user
    else:
        authorization = attrs.evolve(base, timeout=timeout)
        no_auth_user = options.no_auth_user
    return attrs.evolve(options, authorization=authorization, no_auth_user=no_auth_user, tls=ws.tls)


_GO_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\n400 Bad Request"
)


def _http_error(version: str, status: int) -> bytes:
    """Go's http.Error response with nats-server's extra header, as nats-server sends it."""
    text = _STATUS_TEXT[status]
    body = f"{text}\n".encode()
    head = (
        f"HTTP/{version} {status} {text}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Sec-Websocket-Version: 13\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
