"""Fuzz inputs per protocol: a valid stream built from random parts, then (mostly) mutated.

`generate(protocol, rng)` returns the reads one connection sends: a client session (CONNECT,
PUB, HPUB, SUB, UNSUB, PING), a route peer (CONNECT, INFO, RS+/RS-, RMSG, HMSG, LS+, gossip),
a leaf node that dialed us (CONNECT, LS+/LS-, LMSG, HMSG, loop detection subjects, INFO),
a websocket upgrade followed by masked (or unmasked, or compressed) frames carrying a client
session, or HTTP requests to the monitoring endpoints. About one input in seven stays valid so
that the deeper paths (delivery, interest, routing) keep being reached.
"""

from __future__ import annotations

import base64
import json
import zlib

from .mutate import mutate, mutate_json, split_points

PROTOCOLS = ("client", "route", "leaf", "websocket", "http")

#: Longest input (bytes); deep nesting and repeated slices are cut here.
MAX_INPUT = 128 * 1024

#: How often an input is left as generated (a valid stream).
VALID_SHARE = 0.15

SUBJECTS = (
    b"foo", b"foo.bar", b"foo.*", b"foo.>", b">", b"*", b"bar.baz.qux", b"_INBOX.1", b"_INBOX.*",
    b"$SYS.x", b"a..b", b"foo bar", b"q",
)  # fmt: skip
QUEUES = (b"q", b"grp", b"q.1")

#: CONNECT fields a client may send, and the values they usually have.
CLIENT_CONNECT_FIELDS = (
    "verbose", "pedantic", "tls_required", "auth_token", "user", "pass", "name", "lang",
    "version", "protocol", "echo", "headers", "no_responders", "jwt", "nkey", "sig", "account",
    "new_account",
)  # fmt: skip
ROUTE_CONNECT_FIELDS = (
    "echo", "verbose", "pedantic", "user", "pass", "tls_required", "headers", "name", "cluster",
    "dynamic", "lnoc", "lnocu", "gateway", "compression",
)  # fmt: skip
ROUTE_INFO_FIELDS = (
    "server_id", "server_name", "version", "proto", "host", "port", "headers", "auth_required",
    "tls_required", "tls_verify", "max_payload", "cluster", "cluster_dynamic", "connect_urls",
    "ws_connect_urls", "ip", "ldm", "import", "export", "nonce", "lnoc", "lnocu",
    "route_account", "route_pool_size", "route_pool_idx", "gossip_mode", "compression", "jetstream",
)  # fmt: skip

LEAF_CONNECT_FIELDS = (
    "version", "server_id", "name", "is_hub", "cluster", "headers", "jetstream", "deny_pub",
    "compress_mode", "gateway", "remote_account", "protocol", "user", "pass", "auth_token", "lang",
)  # fmt: skip

#: The cluster name the fuzzed server is configured with (harness.py).
CLUSTER_NAME = "FUZZ"


def _line(verb: bytes, fields: dict) -> bytes:
    return verb + b" " + json.dumps(fields, separators=(",", ":")).encode() + b"\r\n"


def _payload(rng) -> bytes:
    size = rng.choice((0, 0, 1, 2, 5, 16, 100, 1000, 70000))
    return (b"hello\r\nPING\r\n" * (size // 13 + 1))[:size]


# --- client ----------------------------------------------------------------------------------


def client_connect(rng) -> bytes:
    fields: dict = {"verbose": rng.random() < 0.3, "pedantic": rng.random() < 0.3}
    if rng.random() < 0.7:
        fields["headers"] = True
    if rng.random() < 0.3:
        fields["no_responders"] = True
    if rng.random() < 0.5:
        fields["protocol"] = rng.choice((0, 1))
    if rng.random() < 0.2:
        fields["echo"] = False
    if rng.random() < 0.3:
        fields |= {"name": "fuzz", "lang": "python", "version": "2.9.0"}
    if rng.random() < 0.1:
        fields |= {"user": "u", "pass": "p"}
    if rng.random() < 0.05:
        fields["auth_token"] = "t"
    if rng.random() < 0.05:
        fields |= {"nkey": "UABC", "sig": "c2ln", "jwt": "a.b.c"}
    return _line(b"CONNECT", fields)


def pub(subject: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    head = b" ".join(p for p in (b"PUB", subject, reply, b"%d" % len(payload)) if p)
    return head + b"\r\n" + payload + b"\r\n"


def hpub(subject: bytes, headers: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    sizes = b"%d %d" % (len(headers), len(headers) + len(payload))
    head = b" ".join(p for p in (b"HPUB", subject, reply, sizes) if p)
    return head + b"\r\n" + headers + payload + b"\r\n"


def _headers(rng) -> bytes:
    return rng.choice((
        b"NATS/1.0\r\n\r\n", b"NATS/1.0\r\nA: b\r\nA: c\r\n\r\n", b"NATS/1.0 503\r\n\r\n",
        b"NATS/1.0\r\nNats-Msg-Id: 1\r\n\r\n", b"abcd",
    ))  # fmt: skip


def client_op(rng) -> bytes:
    kind = rng.randrange(10)
    subject = rng.choice(SUBJECTS)
    reply = rng.choice((b"", b"", b"_INBOX.1", b"r"))
    sid = b"%d" % rng.randrange(1, 5)
    if kind <= 2:
        return pub(subject, _payload(rng), reply)
    if kind == 3:
        return hpub(subject, _headers(rng), _payload(rng), reply)
    if kind <= 5:
        queue = rng.choice(QUEUES) + b" " if rng.random() < 0.3 else b""
        return b"SUB " + subject + b" " + queue + sid + b"\r\n"
    if kind == 6:
        limit = b" %d" % rng.randrange(0, 3) if rng.random() < 0.5 else b""
        return b"UNSUB " + sid + limit + b"\r\n"
    if kind == 7:
        return b"PING\r\n"
    if kind == 8:
        return rng.choice((b"PONG\r\n", b"+OK\r\n", b"-ERR 'x'\r\n", b'INFO {}\r\n',
                           b"MSG foo 1 2\r\nhi\r\n"))  # fmt: skip
    return client_connect(rng)


def client_stream(rng) -> bytes:
    parts = [client_connect(rng)] if rng.random() < 0.9 else []
    parts += [client_op(rng) for _ in range(rng.randrange(1, 9))]
    parts.append(b"PING\r\n")
    return b"".join(parts)


# --- route -----------------------------------------------------------------------------------


def route_connect(rng, name: str) -> bytes:
    fields = {"echo": False, "verbose": False, "pedantic": False, "tls_required": False,
              "headers": rng.random() < 0.8, "name": name, "cluster": CLUSTER_NAME,
              "dynamic": False, "lnoc": True}  # fmt: skip
    if rng.random() < 0.1:
        fields["cluster"] = rng.choice(("OTHER", ""))
    if rng.random() < 0.1:
        fields["dynamic"] = True
    if rng.random() < 0.05:
        fields["gateway"] = "GW"
    if rng.random() < 0.05:
        fields["lang"] = "go"
    return _line(b"CONNECT", fields)


def route_info(rng, server_id: str, *, port: int = 1) -> bytes:
    fields = {"server_id": server_id, "server_name": f"peer-{server_id}", "version": "2.15.1",
              "proto": 2, "host": "127.0.0.1", "port": port, "headers": rng.random() < 0.8,
              "max_payload": 1048576, "cluster": CLUSTER_NAME}  # fmt: skip
    if rng.random() < 0.5:
        fields["connect_urls"] = [f"127.0.0.1:{rng.randrange(1, 65536)}"]
    if rng.random() < 0.2:
        fields["ws_connect_urls"] = ["127.0.0.1:8080"]
    if rng.random() < 0.2:
        fields["ip"] = f"nats-route://127.0.0.1:{port}/"
    if rng.random() < 0.1:
        fields["cluster_dynamic"] = True
    if rng.random() < 0.1:
        fields["import"] = {"allow": ["foo.>"]}
        fields["export"] = {"deny": ["bar"]}
    if rng.random() < 0.3:  # pooling: sizes and indexes in and out of range, pinned accounts
        fields["route_pool_size"] = rng.choice((3, 3, 1, 0, -1, 5, 2**31 - 1))
        fields["route_pool_idx"] = rng.choice((0, 1, 2, -1, 3, 7, 2**31 - 1))
        if rng.random() < 0.4:
            fields["route_account"] = rng.choice(("ACC", "$SYS", "$G", "NOPE", "", "\udc80"))
    return _line(b"INFO", fields)


#: Account names a route op names: the served ones, unknown ones, odd bytes.
ACCOUNT_NAMES = (b"$SYS", b"ACC", b"NOPE", b"acc", b"\xff\xfe", b"A" * 300, b"$G.x", b"*", b">")


def route_op(rng, name: str) -> bytes:
    kind = rng.randrange(12)
    account = b"$G" if rng.random() < 0.7 else rng.choice(ACCOUNT_NAMES)
    if rng.random() < 0.05:  # as on a route pinned to one account: no account in the line
        account = b""
    subject = rng.choice(SUBJECTS)
    queue = rng.choice(QUEUES)
    if kind <= 2:
        if rng.random() < 0.3:
            return b"RS+ %s %s %s %d\r\n" % (account, subject, queue, rng.randrange(0, 4))
        return b"RS+ " + account + b" " + subject + b"\r\n"
    if kind == 3:
        tail = b" " + queue if rng.random() < 0.3 else b""
        return b"RS- " + account + b" " + subject + tail + b"\r\n"
    if kind <= 5:
        payload = _payload(rng)
        middle = rng.choice((b"", b"", b"r ", b"+ r q ", b"| q ", b"+ r q grp "))
        return b"RMSG %s %s %s%d\r\n%s\r\n" % (account, subject, middle, len(payload), payload)
    if kind == 6:
        headers, payload = _headers(rng), _payload(rng)
        size = len(headers) + len(payload)
        return b"HMSG %s %s %d %d\r\n%s%s\r\n" % (account, subject, len(headers), size,
                                                   headers, payload)  # fmt: skip
    if kind == 7:
        return rng.choice((b"LS+ $G foo\r\n", b"LS- $G foo\r\n", b"LS+ $G foo q 1\r\n",
                           b"LMSG $G foo 2\r\nhi\r\n", b"A+ $G\r\n", b"A- $G\r\n"))  # fmt: skip
    if kind == 8:
        return rng.choice((b"PING\r\n", b"PONG\r\n", b"-ERR 'x'\r\n", b"+OK\r\n"))
    if kind == 9:  # gossip: the peer met another server
        return route_info(rng, f"{name}-gossip", port=rng.randrange(1, 3))
    if kind == 10:  # an update from the peer itself: new URLs, or lame duck mode
        info = {"server_id": name, "connect_urls": ["127.0.0.1:5222"], "ldm": rng.random() < 0.5}
        return _line(b"INFO", info)
    return b"PUB foo 2\r\nhi\r\n"  # a client verb on the route port


def route_stream(rng, server_id: str = "") -> bytes:
    name = f"FZ{rng.randrange(10**9)}"
    order = rng.randrange(10)
    connect, info = route_connect(rng, name), route_info(rng, name)
    if order == 0 and server_id:
        info = route_info(rng, server_id)  # a route to ourselves
    if order <= 5:
        parts = [connect, info]
    elif order == 6:
        parts = [info, connect]  # INFO before CONNECT
    elif order == 7:
        parts = [info]
    elif order == 8:
        parts = [connect]
    else:
        parts = []  # RS+ and RMSG before any handshake
    parts += [route_op(rng, name) for _ in range(rng.randrange(0, 9))]
    parts.append(b"PING\r\n")
    return b"".join(parts)


# --- leaf ------------------------------------------------------------------------------------


def leaf_connect(rng, name: str) -> bytes:
    fields = {"version": "2.15.1", "server_id": name, "name": name, "cluster": name,
              "headers": rng.random() < 0.8, "compress_mode": "off", "remote_account": "$G",
              "protocol": 1}  # fmt: skip
    if rng.random() < 0.1:
        fields["is_hub"] = True
    if rng.random() < 0.1:
        fields["cluster"] = rng.choice((CLUSTER_NAME, "a b", ""))
    if rng.random() < 0.05:
        fields["gateway"] = "GW"
    if rng.random() < 0.05:
        fields["lang"] = "go"
    if rng.random() < 0.1:
        fields["deny_pub"] = ["foo.>"]
    if rng.random() < 0.05:
        fields["version"] = "2.1.0"
    return _line(b"CONNECT", fields)


def leaf_op(rng) -> bytes:
    kind = rng.randrange(10)
    subject = rng.choice(SUBJECTS)
    queue = rng.choice(QUEUES)
    if kind <= 2:
        if rng.random() < 0.3:
            return b"LS+ %s %s %d\r\n" % (subject, queue, rng.randrange(0, 4))
        return b"LS+ " + subject + b"\r\n"
    if kind == 3:
        tail = b" " + queue if rng.random() < 0.3 else b""
        return b"LS- " + subject + tail + b"\r\n"
    if kind <= 5:
        payload = _payload(rng)
        middle = rng.choice((b"", b"", b"r ", b"+ r q ", b"| q ", b"+ r q grp "))
        return b"LMSG %s %s%d\r\n%s\r\n" % (subject, middle, len(payload), payload)
    if kind == 6:
        headers, payload = _headers(rng), _payload(rng)
        size = len(headers) + len(payload)
        return b"HMSG %s %d %d\r\n%s%s\r\n" % (subject, len(headers), size, headers, payload)
    if kind == 7:
        return rng.choice((b"PING\r\n", b"PONG\r\n", b"-ERR 'x'\r\n", b"+OK\r\n",
                           b"-ERR 'Loop detected'\r\n"))  # fmt: skip
    if kind == 8:
        return _line(b"INFO", {"server_id": "X", "leafnode_urls": [], "connect_info": True})
    return rng.choice((b"LS+ $LDS.abc\r\n", b"PUB foo 2\r\nhi\r\n", b"UNSUB foo\r\n"))


def leaf_stream(rng) -> bytes:
    name = f"FZL{rng.randrange(10**9)}"
    parts = [leaf_connect(rng, name)] if rng.random() < 0.9 else []
    parts += [leaf_op(rng) for _ in range(rng.randrange(0, 9))]
    parts.append(b"PING\r\n")
    return b"".join(parts)


# --- websocket -------------------------------------------------------------------------------

_KEY = base64.b64encode(b"sixteen byte key").decode()


def upgrade_request(rng) -> tuple[bytes, bool, bool]:
    """An upgrade request, whether it asks for compression, and whether frames are masked."""
    compress = rng.random() < 0.4
    masked = rng.random() < 0.85
    lines = [rng.choice(("GET / HTTP/1.1", "GET /nats?x=1 HTTP/1.1", "GET / HTTP/1.0"))]
    lines += ["Host: 127.0.0.1:8080", "Upgrade: websocket", "Connection: Upgrade",
              f"Sec-WebSocket-Key: {_KEY}", "Sec-WebSocket-Version: 13"]  # fmt: skip
    if compress:
        lines.append(rng.choice((
            "Sec-WebSocket-Extensions: permessage-deflate",
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
            "client_no_context_takeover",
            "Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate",
        )))  # fmt: skip
    if not masked:
        lines.append("Nats-No-Masking: true")
    if rng.random() < 0.2:
        lines.append(rng.choice(("Origin: http://127.0.0.1:8080", "Origin: null")))
    if rng.random() < 0.1:
        lines.append("Cookie: a=b; jwt=x")
    if rng.random() < 0.1:
        lines.append("X-Forwarded-For: 10.0.0.1, 10.0.0.2")
    if rng.random() < 0.1:
        lines.append("User-Agent: Mozilla/5.0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), compress, masked


def client_frame(rng, opcode: int, payload: bytes, *, masked: bool, final: bool = True,
                 rsv1: bool = False) -> bytes:  # fmt: skip
    """A frame as a client sends it (masked unless the server agreed otherwise)."""
    b0 = opcode | (0x80 if final else 0) | (0x40 if rsv1 else 0)
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size <= 125:
        head = bytes((b0, mask_bit | size))
    elif size <= 0xFFFF:
        head = bytes((b0, mask_bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((b0, mask_bit | 127)) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = rng.randbytes(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def _deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    return (deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)).removesuffix(
        b"\x00\x00\xff\xff"
    )


def frames(rng, data: bytes, *, compress: bool, masked: bool) -> bytes:
    """A client session as websocket frames: messages, fragments, control frames."""
    out = []
    rest = data
    while rest:
        size = rng.choice((70000, 200, 64, 7, 1))  # whole sessions first: they shrink best
        message, rest = rest[:size], rest[size:]
        opcode = 2 if rng.random() < 0.8 else 1  # binary, sometimes text
        compressed = compress and rng.random() < 0.7
        body = _deflate(message) if compressed else message
        if rng.random() < 0.2 and len(body) > 1:  # fragmented: a start and a continuation
            cut = rng.randrange(1, len(body))
            out.append(client_frame(rng, opcode, body[:cut], masked=masked, final=False,
                                    rsv1=compressed))  # fmt: skip
            if rng.random() < 0.3:  # a control frame between fragments is allowed
                out.append(client_frame(rng, 9, b"mid", masked=masked))
            out.append(client_frame(rng, 0, body[cut:], masked=masked))
        else:
            out.append(client_frame(rng, opcode, body, masked=masked, rsv1=compressed))
        if rng.random() < 0.1:
            out.append(client_frame(rng, rng.choice((9, 10)), b"p" * rng.choice((0, 5, 125)),
                                    masked=masked))  # fmt: skip
    if rng.random() < 0.3:
        status = rng.choice((1000, 1001, 1002, 1005, 1006, 3000, 4999, 5000, 999, 0))
        payload = status.to_bytes(2, "big") + b"bye" if rng.random() < 0.9 else b"\x03"
        out.append(client_frame(rng, 8, payload, masked=masked))
    return b"".join(out)


def websocket_stream(rng) -> bytes:
    request, compress, masked = upgrade_request(rng)
    level = rng.randrange(4)
    session = client_stream(rng)
    if level == 1:  # broken NATS inside good frames
        session = mutate(rng, session, (client_stream(rng),), CLIENT_CONNECT_FIELDS)
    framed = frames(rng, session, compress=compress, masked=masked)
    if level == 2:  # broken frames
        framed = mutate(rng, framed)
    elif level == 3:  # a broken upgrade request
        request = mutate(rng, request)
    return request + framed


# --- HTTP ------------------------------------------------------------------------------------

ENDPOINTS = ("/", "/varz", "/connz", "/subsz", "/subscriptionsz", "/routez", "/healthz",
             "/accountz", "/metrics", "/gatewayz", "/leafz", "/jsz", "/nope")  # fmt: skip
QUERIES = (
    "", "subs=1", "subs=detail", "limit=1", "limit=0", "limit=-1", "limit=99999999999999999999",
    "offset=1", "offset=-5", "sort=cid", "sort=bytes_to", "sort=idle", "sort=stop", "sort=nope",
    "state=closed", "state=all", "state=x", "cid=1", "cid=abc", "auth=1", "test=foo.bar",
    "test=foo.*", "acc=$G", "acc=nope", "js-enabled-only=true", "mem=1", "x=%00", "%zz",
    "unsubs=1", "subs=1&limit=2&offset=1&sort=subs",
)  # fmt: skip


def http_request(rng) -> bytes:
    method = rng.choice(("GET", "GET", "GET", "HEAD", "POST", "OPTIONS", "PUT"))
    target = rng.choice(ENDPOINTS)
    query = "&".join(rng.choice(QUERIES) for _ in range(rng.randrange(0, 3)))
    if query:
        target += "?" + query
    version = rng.choice(("HTTP/1.1", "HTTP/1.1", "HTTP/1.0"))
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"]
    body = b""
    if rng.random() < 0.2:
        lines.append(rng.choice(("Connection: close", "Connection: keep-alive")))
    if method in ("POST", "PUT") or rng.random() < 0.05:
        body = b"x" * rng.choice((0, 3, 100))
        if rng.random() < 0.5:
            lines.append(f"Content-Length: {len(body)}")
        else:
            lines.append("Transfer-Encoding: chunked")
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    if rng.random() < 0.1:
        lines.append("Accept-Encoding: gzip")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def http_stream(rng) -> bytes:
    return b"".join(http_request(rng) for _ in range(rng.choice((1, 1, 1, 2, 3))))


# --- the entry point -------------------------------------------------------------------------


def valid_stream(protocol: str, rng, server_id: str = "") -> bytes:
    if protocol == "client":
        return client_stream(rng)
    if protocol == "route":
        return route_stream(rng, server_id)
    if protocol == "leaf":
        return leaf_stream(rng)
    if protocol == "websocket":
        return websocket_stream(rng)
    if protocol == "http":
        return http_stream(rng)
    raise ValueError(f"unknown protocol {protocol!r}")


def _json_fields(protocol: str) -> tuple[str, ...]:
    if protocol == "route":
        return ROUTE_CONNECT_FIELDS + ROUTE_INFO_FIELDS
    if protocol == "leaf":
        return LEAF_CONNECT_FIELDS
    return CLIENT_CONNECT_FIELDS


def generate_bytes(protocol: str, rng, server_id: str = "") -> bytes:
    """One input: a valid stream, mutated unless it is one of the few left valid."""
    data = valid_stream(protocol, rng, server_id)
    if protocol != "websocket" and rng.random() >= VALID_SHARE:
        others = (valid_stream(protocol, rng, server_id),)
        data = mutate(rng, data, others, _json_fields(protocol))
        if rng.random() < 0.1:  # JSON mutations are where the peers' crashes were
            data = mutate_json(rng, data, _json_fields(protocol))
    return data[:MAX_INPUT]


def generate(protocol: str, rng, server_id: str = "") -> list[bytes]:
    """One input as the reads the server sees."""
    return split_points(rng, generate_bytes(protocol, rng, server_id))
