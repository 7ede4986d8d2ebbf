"""The WebSocket upgrade checks and frame codec without I/O (trionats/protocol/websocket.py)."""

from __future__ import annotations

import os
import struct
import zlib

import pytest

from trionats.protocol import websocket as ws

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def client_frame(opcode: int, payload: bytes, *, final=True, mask=True, rsv1=False, rsv=0) -> bytes:
    """A frame as a client sends it (masked unless told otherwise)."""
    b0 = opcode | (0x80 if final else 0) | (0x40 if rsv1 else 0) | rsv
    size = len(payload)
    if size <= 125:
        head = bytes((b0, size | (0x80 if mask else 0)))
    elif size <= 0xFFFF:
        head = struct.pack("!BBH", b0, 126 | (0x80 if mask else 0), size)
    else:
        head = struct.pack("!BBQ", b0, 127 | (0x80 if mask else 0), size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + ws.unmask(payload, key, 0)


def reader(**kwargs) -> ws.FrameReader:
    kwargs.setdefault("max_compressed", 8 * 1024 * 1024)
    return ws.FrameReader(**kwargs)


def data_of(events) -> bytes:
    return b"".join(e for e in events if type(e) is bytes)


# --- the upgrade request ---------------------------------------------------------------------


def headers(**extra) -> dict[str, list[str]]:
    base = {
        "host": ["127.0.0.1:8080"],
        "upgrade": ["websocket"],
        "connection": ["keep-alive, Upgrade"],
        "sec-websocket-key": [KEY],
        "sec-websocket-version": ["13"],
    }
    for name, value in extra.items():
        name = name.replace("_", "-")
        if value is None:
            base.pop(name, None)
        else:
            base[name] = [value]
    return base


def judge(method="GET", *, same_origin=False, allowed=(), compression=False, **extra):
    policy = ws.OriginPolicy(same_origin, allowed)
    return ws.check_upgrade(method, headers(**extra), origins=policy, compression=compression)


def test_accepted_upgrade_is_nats_servers_101():
    verdict = judge()
    assert verdict.response == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    assert verdict.masked and not verdict.compress and not verdict.browser


@pytest.mark.parametrize(
    ("method", "extra", "status", "detail"),
    [
        ("POST", {}, 405, "request method must be GET"),
        ("GET", {"host": None}, 400, "'Host' missing in request"),
        ("GET", {"upgrade": "h2c"}, 400, "invalid value for header 'Upgrade'"),
        ("GET", {"connection": "keep-alive"}, 400, "invalid value for header 'Connection'"),
        ("GET", {"sec_websocket_key": None}, 400, "key missing"),
        ("GET", {"sec_websocket_key": "c2hvcnQ="}, 400, "invalid websocket key"),
        ("GET", {"sec_websocket_version": "12"}, 400, "invalid version"),
    ],
)
def test_refusals_in_nats_servers_order(method, extra, status, detail):
    assert judge(method, **extra) == ws.Refusal(status, detail)


def test_origin_checks_only_apply_to_requests_with_an_origin():
    allowed = ("https://app.example.com",)
    assert isinstance(judge(allowed=allowed), ws.Upgrade)
    assert isinstance(judge(allowed=allowed, origin="https://app.example.com:443"), ws.Upgrade)
    assert judge(allowed=allowed, origin="http://app.example.com") == ws.Refusal(
        403, "origin not allowed: not in the allowed list"
    )
    assert judge(same_origin=True, origin="http://127.0.0.1:8080").__class__ is ws.Upgrade
    assert judge(same_origin=True, origin="http://other:8080") == ws.Refusal(
        403, "origin not allowed: not same origin"
    )
    # Sec-WebSocket-Origin counts when Origin is absent
    assert judge(same_origin=True, sec_websocket_origin="http://x").status == 403


def test_negotiation_headers():
    verdict = judge(compression=True, sec_websocket_extensions="permessage-deflate; client_max_window_bits")
    assert verdict.compress
    assert b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; " \
        b"client_no_context_takeover\r\n" in verdict.response
    assert not judge(sec_websocket_extensions="permessage-deflate").compress  # not configured
    verdict = judge(nats_no_masking="true", user_agent="Mozilla/5.0", x_forwarded_for="10.1.2.3")
    assert b"Nats-No-Masking: true\r\n" in verdict.response
    assert not verdict.masked and verdict.browser and verdict.forwarded_ip == "10.1.2.3"
    assert judge(x_forwarded_for="not-an-ip").forwarded_ip == ""


# --- reading frames --------------------------------------------------------------------------


def test_ops_split_across_frames_and_several_per_frame():
    wire = client_frame(ws.BINARY, b"CONNECT {}\r\nPING\r\nPUB fo") + client_frame(
        ws.BINARY, b"o 2\r\nhi\r\n"
    )
    assert data_of(reader().feed(wire)) == b"CONNECT {}\r\nPING\r\nPUB foo 2\r\nhi\r\n"


def test_every_split_point_gives_the_same_bytes():
    payload = bytes(range(256)) * 3
    wire = (
        client_frame(ws.TEXT, payload[:100], final=False)
        + client_frame(ws.PING, b"hb")
        + client_frame(ws.CONTINUATION, payload[100:])
        + client_frame(ws.BINARY, b"")
    )
    for cut in range(len(wire) + 1):
        r = reader()
        events = r.feed(wire[:cut]) + r.feed(wire[cut:])
        assert data_of(events) == payload, cut
        assert ws.Ping(b"hb") in events


def test_unmasked_frames_only_with_no_masking():
    with pytest.raises(ws.FrameError, match="^mask bit missing$"):
        reader().feed(client_frame(ws.BINARY, b"PING\r\n", mask=False))
    assert data_of(reader(masked=False).feed(client_frame(ws.BINARY, b"PING\r\n", mask=False))) == (
        b"PING\r\n"
    )


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (client_frame(ws.BINARY, b"x", rsv=0x20), "RSV2 and RSV3 must be clear"),
        (client_frame(ws.BINARY, b"x", rsv1=True), "compressed frame received without negotiated permessage-deflate"),
        (client_frame(ws.PING, b"x" * 126), "control frame length bigger than maximum allowed of 125 bytes"),
        (client_frame(ws.PING, b"x", final=False), "control frame does not have final bit set"),
        (client_frame(ws.CONTINUATION, b"x"), "invalid continuation frame"),
        (client_frame(ws.BINARY, b"a", final=False) + client_frame(ws.BINARY, b"b"),
         "new message started before final frame for previous message was received"),
        (client_frame(3, b""), "unknown opcode 3"),
        (client_frame(ws.CLOSE, b"\x03"), "close frame payload cannot be 1 byte"),
        (client_frame(ws.CLOSE, struct.pack("!H", 1005)), "invalid close status code 1005"),
    ],
)  # fmt: skip
def test_framing_errors_carry_nats_servers_reasons(wire, message):
    with pytest.raises(ws.FrameError) as caught:
        reader().feed(wire)
    assert str(caught.value) == message
    assert caught.value.status == ws.PROTOCOL_ERROR


def test_close_frames_are_echoed():
    assert reader().feed(client_frame(ws.CLOSE, b"")) == [ws.CloseFrame(None)]
    (event,) = reader().feed(client_frame(ws.CLOSE, struct.pack("!H", 1000) + b"bye"))
    assert event.reply == struct.pack("!H", 1000) + b"bye"
    (event,) = reader().feed(client_frame(ws.CLOSE, struct.pack("!H", 1000) + b"\xff"))
    assert event.reply == struct.pack("!H", 1007) + b"invalid utf8 body in close frame"


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_compressed_messages_across_frames():
    body = b"PUB foo 5\r\nhello\r\n" * 50
    packed = deflate(body)
    wire = client_frame(ws.BINARY, packed[:10], final=False, rsv1=True) + client_frame(
        ws.CONTINUATION, packed[10:]
    )
    assert data_of(reader(compress=True).feed(wire)) == body


def test_compressed_message_bound():
    packed = deflate(os.urandom(2000))
    with pytest.raises(ws.FrameError) as caught:
        reader(compress=True, max_compressed=1000).feed(client_frame(ws.BINARY, packed, rsv1=True))
    assert caught.value.status == ws.MESSAGE_TOO_BIG


# --- writing frames --------------------------------------------------------------------------


def test_server_frames_are_binary_and_unmasked():
    assert b"".join(ws.data_frames(b"PONG\r\n")) == b"\x82\x06PONG\r\n"
    big = b"x" * 70000
    assert b"".join(ws.data_frames(big))[:10] == b"\x82\x7f" + struct.pack("!Q", 70000)


def test_browsers_get_frames_of_at_most_4096_bytes():
    frames = ws.data_frames(b"y" * 10000, browser=True)
    r = reader(masked=False)
    assert data_of(r.feed(b"".join(frames))) == b"y" * 10000
    assert frames[0][0] == 0x02 and frames[2][0] == 0x00 and frames[4][0] == 0x80


def test_compression_round_trip_and_threshold():
    small = ws.data_frames(b"PONG\r\n", compress=True)
    assert small[0][0] == 0x82  # not worth compressing
    body = b"MSG foo 1 5\r\nhello\r\n" * 100
    frames = ws.data_frames(body, compress=True)
    assert frames[0][0] == 0xC2 and len(frames[1]) < len(body)
    assert data_of(reader(masked=False, compress=True).feed(b"".join(frames))) == body


def test_close_payload_is_cut_to_a_control_frame():
    payload = ws.close_payload(1008, "x" * 200)
    assert len(payload) == 125 and payload.endswith(b"...")


def test_events_before_a_broken_frame_come_with_the_error():
    r = reader()
    with pytest.raises(ws.FrameError) as caught:
        r.feed(client_frame(ws.BINARY, b"PING\r\n") + client_frame(ws.BINARY, b"x", mask=False))
    assert caught.value.events == [b"PING\r\n"]
    with pytest.raises(ws.FrameError):  # stays broken
        r.feed(client_frame(ws.BINARY, b"PING\r\n"))
