"""WebSocket without I/O: the upgrade checks, the frame reader and the frame writer (RFC 6455).

How it works: `check_upgrade` judges a parsed HTTP request the way nats-server's wsUpgrade
does, in the same order, and returns the HTTP status to refuse it with. `FrameReader.feed`
takes socket bytes and returns events: `bytes` (application data, frame boundaries erased, as
the NATS parser wants it), `Ping` and `CloseFrame`; data of an uncompressed frame comes out as
soon as it arrives, a compressed message once its last frame is in. Broken framing raises
`FrameError` carrying nats-server's close reason text (status 1002). `frame` builds the
server's frames: unmasked, binary, optionally compressed (permessage-deflate without context
takeover, so each message compresses alone) and split for browsers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import struct
import zlib
from typing import NamedTuple
from urllib.parse import urlsplit

from .connect import Credentials

# Opcodes
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0, 1, 2, 8, 9, 10
_CONTROL = (CLOSE, PING, PONG)

# Close statuses nats-server uses (websocket.go wsCloseStatus*)
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
NO_STATUS = 1005
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
TLS_HANDSHAKE = 1015

MAX_CONTROL_PAYLOAD = 125
#: Browsers get outgoing messages in frames of at most this many bytes (nats-server does so).
BROWSER_FRAME_SIZE = 4096
#: Outgoing messages this small are not worth compressing.
COMPRESS_THRESHOLD = 64
_ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: The end of a deflate block that permessage-deflate strips from each message.
_DEFLATE_TAIL = b"\x00\x00\xff\xff"
NO_MASKING_HEADER = "nats-no-masking"


class FrameError(Exception):
    """The client broke the framing: close with `status` and this message as the reason.

    `events` are those of the same `feed` before the broken frame (still to be handled)."""

    def __init__(self, message: str, status: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.status = status
        self.events: list = []


class Ping(NamedTuple):
    payload: bytes


class CloseFrame(NamedTuple):
    """The client's close frame: what to answer with (None: an empty close frame)."""

    reply: bytes | None


# --- the upgrade request -------------------------------------------------------------------


class Upgrade(NamedTuple):
    """An accepted upgrade: the 101 response and what was negotiated."""

    response: bytes
    compress: bool
    masked: bool
    browser: bool
    forwarded_ip: str
    #: The request's cookies (name, value), in order, as Go's Request.Cookies() reads them.
    cookies: tuple[tuple[str, str], ...] = ()


class Refusal(NamedTuple):
    status: int
    detail: str  # logged as "websocket handshake error: <detail>"


def header_has_token(values: list[str], token: str) -> bool:
    """A comma-separated header contains `token` (case-insensitive), as wsHeaderContains."""
    token = token.lower()
    return any(part.strip(" \t").lower() == token for value in values for part in value.split(","))


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _ACCEPT_GUID).digest()).decode()


def host_and_port(tls: bool, hostport: str) -> tuple[str, str]:
    """Split host[:port], defaulting the port by scheme (wsGetHostAndPort)."""
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
    else:
        host, port = hostport, ""
    if not port:
        port = "443" if tls else "80"
    return host.lower(), port


def parse_origin(origin: str) -> tuple[str, str, str]:
    """(scheme, host, port) of an absolute http(s) URL; ValueError if it is not one."""
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"parse {origin!r}: invalid URI for request")
    host, port = host_and_port(parts.scheme == "https", parts.netloc)
    return parts.scheme.lower(), host, port


class OriginPolicy:
    """same_origin and allowed_origins, checked only when the request carries an Origin."""

    def __init__(self, same_origin: bool, allowed_origins, tls: bool = False) -> None:
        self.same_origin = same_origin
        self.tls = tls
        self.allowed: dict[str, list[tuple[str, str]]] = {}
        for origin in allowed_origins:
            scheme, host, port = parse_origin(origin)
            self.allowed.setdefault(host, []).append((scheme, port))

    def check(self, origin: str, request_host: str) -> str:
        """'' if allowed, else why not (nats-server's wording)."""
        if not origin or (not self.same_origin and not self.allowed):
            return ""
        try:
            scheme, host, port = parse_origin(origin)
        except ValueError as exc:
            return str(exc)
        if self.same_origin:
            request = host_and_port(self.tls, request_host)
            if (host, port) != request or scheme != ("https" if self.tls else "http"):
                return "not same origin"
        if self.allowed and (scheme, port) not in self.allowed.get(host, ()):
            return "not in the allowed list"
        return ""


def check_upgrade(
    method: str,
    headers: dict[str, list[str]],
    *,
    origins: OriginPolicy,
    compression: bool,
    extra_headers: bytes = b"",
) -> Upgrade | Refusal:
    """Judge an upgrade request (header names lower-case) in nats-server's order."""
    if method != "GET":
        return Refusal(405, "request method must be GET")
    host = headers.get("host", [""])[0]
    if not host:
        return Refusal(400, "'Host' missing in request")
    if not header_has_token(headers.get("upgrade", []), "websocket"):
        return Refusal(400, "invalid value for header 'Upgrade'")
    if not header_has_token(headers.get("connection", []), "Upgrade"):
        return Refusal(400, "invalid value for header 'Connection'")
    key = headers.get("sec-websocket-key", [""])[0]
    if not key:
        return Refusal(400, "key missing")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except (binascii.Error, ValueError):
        return Refusal(400, "invalid websocket key")
    if not header_has_token(headers.get("sec-websocket-version", []), "13"):
        return Refusal(400, "invalid version")
    origin = headers.get("origin", [""])[0] or headers.get("sec-websocket-origin", [""])[0]
    why = origins.check(origin, host)
    if why:
        return Refusal(403, f"origin not allowed: {why}")
    compress = compression and offers_deflate(headers.get("sec-websocket-extensions", []))
    masked = headers.get(NO_MASKING_HEADER, [""])[0] != "true"
    response = [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n",
    ]
    if compress:
        response.append(
            b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
            b"client_no_context_takeover\r\n"
        )
    if not masked:
        response.append(b"Nats-No-Masking: true\r\n")
    response += [extra_headers, b"\r\n"]
    agent = headers.get("user-agent", [""])[0]
    forwarded = headers.get("x-forwarded-for", [""])[0].strip()
    return Upgrade(
        b"".join(response),
        compress=compress,
        masked=masked,
        browser=agent.startswith("Mozilla/"),
        forwarded_ip=forwarded if _is_ip(forwarded) else "",
        cookies=parse_cookies(headers.get("cookie", [])),
    )


# --- cookies: credentials for the CONNECT (user_cookie, pass_cookie, token_cookie) ----------

#: HTTP token characters (RFC 7230 tchar), what Go accepts in a cookie name.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
#: Go's textproto.TrimString: ASCII space, tab, CR, LF.
_HTTP_SPACE = " \t\r\n"


def _cookie_value(raw: str) -> str | None:
    """Go's parseCookieValue: surrounding double quotes dropped; None if a byte is invalid."""
    if len(raw) > 1 and raw[0] == '"' and raw[-1] == '"':
        raw = raw[1:-1]
    for char in raw:
        if not (0x20 <= ord(char) < 0x7F) or char in '";\\':
            return None
    return raw


def parse_cookies(values: list[str]) -> tuple[tuple[str, str], ...]:
    """Every `Cookie` header's name=value pairs, as Go's Request.Cookies(): split at `;`,
    trimmed, pairs with an invalid name or value skipped, no decoding."""
    cookies = []
    for line in values:
        for part in line.split(";"):
            part = part.strip(_HTTP_SPACE)
            if not part:
                continue
            name, _, value = part.partition("=")
            name = name.strip(_HTTP_SPACE)
            if not name or not _TOKEN_CHARS.issuperset(name):
                continue
            parsed = _cookie_value(value)
            if parsed is not None:
                cookies.append((name, parsed))
    return tuple(cookies)


def cookie_credentials(
    cookies: tuple[tuple[str, str], ...], user_cookie: str, pass_cookie: str, token_cookie: str,
    jwt_cookie: str = "",
) -> Credentials:
    """The user, password, token and user JWT named by the websocket block's cookie options.

    As nats-server's wsUpgrade: each cookie goes to the first option naming it (jwt, then
    user, then pass, then token), and a later cookie of the same name wins."""
    found = {"user": "", "password": "", "auth_token": "", "jwt": ""}
    for name, value in cookies:
        if jwt_cookie and name == jwt_cookie:
            found["jwt"] = value
        elif name == user_cookie:
            found["user"] = value
        elif name == pass_cookie:
            found["password"] = value
        elif name == token_cookie:
            found["auth_token"] = value
    return Credentials(**found)


def offers_deflate(values: list[str]) -> bool:
    return any(
        offer.split(";")[0].strip().lower() == "permessage-deflate"
        for value in values
        for offer in value.split(",")
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# --- reading frames ------------------------------------------------------------------------


def unmask(data: bytes, key: bytes, offset: int) -> bytes:
    """XOR `data` with the 4-byte mask `key`, starting `offset` bytes into the mask."""
    if not data:
        return data
    size = len(data)
    rotated = key[offset % 4 :] + key[: offset % 4]
    stream = rotated * (size // 4 + 1)
    mixed = int.from_bytes(data, "little") ^ int.from_bytes(stream[:size], "little")
    return mixed.to_bytes(size, "little")


def close_payload(status: int, reason: str) -> bytes:
    """A close frame's payload; reasons over the control frame limit are cut with '...'."""
    body = reason.encode()
    if len(body) > MAX_CONTROL_PAYLOAD - 2:
        body = body[: MAX_CONTROL_PAYLOAD - 5] + b"..."
    return struct.pack("!H", status) + body


def _valid_close_status(code: int) -> bool:
    if code in (NO_STATUS, 1004, 1006, TLS_HANDSHAKE):
        return False
    return 1000 <= code < 5000 and not 1016 <= code <= 2999


class FrameReader:
    """Client frames in, events out (see the module docstring). Broken after a FrameError."""

    def __init__(self, *, masked: bool = True, compress: bool = False, max_compressed: int) -> None:
        self.masked = masked
        self.compress = compress
        #: Bytes a compressed message may have before inflating (8 x max_payload in nats-server).
        self.max_compressed = max_compressed
        self._buffer = b""
        self._in_frame = False  # inside a data frame's payload
        self._remaining = 0
        self._mask = b""
        self._mask_offset = 0
        self._final = True  # the last data frame ended its message
        self._compressed = False  # the current message is compressed
        self._pieces: list[bytes] = []  # a compressed message so far
        self._pieces_size = 0
        self._broken: FrameError | None = None

    def feed(self, data: bytes) -> list:
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        events: list = []
        try:
            while self._buffer:
                if self._in_frame:
                    self._payload(events)
                elif not self._header(events):
                    break
        except FrameError as error:
            error.events = events
            self._broken = error
            raise
        return events

    def _header(self, events: list) -> bool:
        """Consume one frame header (and a whole control frame); False if more bytes are needed."""
        buf = self._buffer
        if len(buf) < 2:
            return False
        b0, b1 = buf[0], buf[1]
        opcode, final, rsv1 = b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40)
        if b0 & 0x30:
            raise FrameError("RSV2 and RSV3 must be clear")
        if rsv1 and not self.compress:
            raise FrameError("compressed frame received without negotiated permessage-deflate")
        if self.masked and not b1 & 0x80:
            raise FrameError("mask bit missing")
        length = b1 & 0x7F
        if opcode in _CONTROL:
            if length > MAX_CONTROL_PAYLOAD:
                raise FrameError(
                    "control frame length bigger than maximum allowed of "
                    f"{MAX_CONTROL_PAYLOAD} bytes"
                )
            if not final:
                raise FrameError("control frame does not have final bit set")
            if rsv1:
                raise FrameError("control frame must not be compressed")
        elif opcode in (TEXT, BINARY):
            if not self._final:
                raise FrameError(
                    "new message started before final frame for previous message was received"
                )
        elif opcode == CONTINUATION:
            if self._final or rsv1:
                raise FrameError("invalid continuation frame")
        else:
            raise FrameError(f"unknown opcode {opcode}")
        pos = 2
        if length == 126:
            if len(buf) < 4:
                return False
            (length,) = struct.unpack_from("!H", buf, 2)
            pos = 4
        elif length == 127:
            if len(buf) < 10:
                return False
            (length,) = struct.unpack_from("!Q", buf, 2)
            if length >> 63:
                raise FrameError("invalid 64-bit payload length")
            pos = 10
        mask = b""
        if self.masked:
            if len(buf) < pos + 4:
                return False
            mask = buf[pos : pos + 4]
            pos += 4
        if opcode in _CONTROL:
            if len(buf) < pos + length:
                return False
            payload = unmask(buf[pos : pos + length], mask, 0) if mask else buf[pos : pos + length]
            self._buffer = buf[pos + length :]
            self._control(opcode, payload, events)
            return True
        # A data frame: its payload streams through _payload.
        if opcode != CONTINUATION:
            self._compressed = rsv1
        self._final = final
        self._buffer = buf[pos:]
        self._in_frame = True
        self._remaining = length
        self._mask = mask
        self._mask_offset = 0
        if length == 0:
            self._end_frame(events)
        return True

    def _payload(self, events: list) -> None:
        take = self._buffer[: self._remaining]
        self._buffer = self._buffer[len(take) :]
        self._remaining -= len(take)
        if self._mask:
            take = unmask(take, self._mask, self._mask_offset)
            self._mask_offset += len(take)
        if self._compressed:
            self._pieces_size += len(take)
            if self._pieces_size > self.max_compressed:
                raise FrameError("Maximum Payload Violation", MESSAGE_TOO_BIG)
            self._pieces.append(take)
        elif take:
            events.append(take)
        if self._remaining == 0:
            self._end_frame(events)

    def _end_frame(self, events: list) -> None:
        self._in_frame = False
        if self._compressed and self._final:
            compressed = b"".join(self._pieces) + _DEFLATE_TAIL
            self._pieces, self._pieces_size = [], 0
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                data = inflater.decompress(compressed)
            except zlib.error as exc:
                raise FrameError(f"invalid compressed data: {exc}") from None
            if data:
                events.append(data)

    @staticmethod
    def _control(opcode: int, payload: bytes, events: list) -> None:
        if opcode == PING:
            events.append(Ping(payload))
        elif opcode == CLOSE:
            if len(payload) == 1:
                raise FrameError("close frame payload cannot be 1 byte")
            if not payload:
                events.append(CloseFrame(None))
                return
            (status,) = struct.unpack_from("!H", payload)
            if not _valid_close_status(status):
                raise FrameError(f"invalid close status code {status}")
            body = payload[2:]
            try:
                reason = body.decode()
            except UnicodeDecodeError:
                status, reason = INVALID_PAYLOAD, "invalid utf8 body in close frame"
            events.append(CloseFrame(close_payload(status, reason)))
        # A pong needs nothing.


# --- writing frames ------------------------------------------------------------------------


def frame_header(opcode: int, size: int, *, final: bool = True, compressed: bool = False) -> bytes:
    b0 = opcode | (0x80 if final else 0) | (0x40 if compressed else 0)
    if size <= 125:
        return bytes((b0, size))
    if size <= 0xFFFF:
        return struct.pack("!BBH", b0, 126, size)
    return struct.pack("!BBQ", b0, 127, size)


def control_frame(opcode: int, payload: bytes = b"") -> bytes:
    return frame_header(opcode, len(payload)) + payload


def data_frames(data: bytes, *, compress: bool = False, browser: bool = False) -> list[bytes]:
    """One outgoing message as frames: binary, compressed if negotiated and worth it."""
    compressed = compress and len(data) > COMPRESS_THRESHOLD
    if compressed:
        deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        data = data.removesuffix(_DEFLATE_TAIL)
    if not browser or len(data) <= BROWSER_FRAME_SIZE:
        return [frame_header(BINARY, len(data), compressed=compressed), data]
    frames = []
    for start in range(0, len(data), BROWSER_FRAME_SIZE):
        piece = data[start : start + BROWSER_FRAME_SIZE]
        first = start == 0
        final = start + BROWSER_FRAME_SIZE >= len(data)
        opcode = BINARY if first else CONTINUATION
        head = frame_header(opcode, len(piece), final=final, compressed=compressed and first)
        frames += [head, piece]
    return frames
