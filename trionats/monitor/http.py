"""The monitoring HTTP server: h11 on Trio, one task per HTTP connection, routing to snapshots.

    serve_monitor(server)              the monitor's nursery, a child of the server nursery
      ├── _accept_loop (per listener)  EMFILE back-off as in Trio's serve_listeners
      └── _serve_http (per connection) keep-alive loop; the stream is closed in `finally`

A request (head and body, which is read and ignored) may be at most `HTTP_MAX_REQUEST_SIZE`
bytes: past it the client gets a 431 or 413 and the connection is closed. Every read waits at
most `HTTP_READ_TIMEOUT` seconds: an idle or slow client is disconnected, it never holds a task
for longer.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import time
import urllib.parse
from email.utils import formatdate
from pathlib import Path

import h11
import trio

from .. import defaults, tls
from ..containment import contained, report
from ..listeners import accept_forever
from ..logging import peer_fields
from ..protocol import encode
from . import disabled, gnatsd, leafz, metrics, runtime, snapshots
from .snapshots import Clock, QueryError


JSON_HEADERS = [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*")]
TEXT_TYPE = ("Content-Type", "text/plain; charset=utf-8")


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: list, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def json_response(body: dict, status: int = 200, *, compact: bool = False) -> Response:
    """`body` as nats-server writes it: json.MarshalIndent(v, "", "  "), or json.Marshal."""
    text = encode.go_json(body, "" if compact else "  ")
    return Response(status, list(JSON_HEADERS), text.encode())


def text_response(status: int, text: str, *extra) -> Response:
    return Response(status, [TEXT_TYPE, *extra], text.encode())


def base_path(configured: str) -> str:
    """nats-server's normalized http_base_path: leading slash, cleaned, "/" when empty."""
    if not configured:
        return "/"
    if not configured.startswith("/"):
        configured = "/" + configured
    return posixpath.normpath(configured).replace("//", "/")


class Monitor:
    """Routes requests to the snapshot builders and keeps the monitor's own figures."""

    def __init__(self, server) -> None:
        self.server = server
        self.port = 0
        self.req_stats: dict[str, int] = {}
        self.scope: trio.CancelScope | None = None
        self._cpu_sample = (time.monotonic(), _cpu_seconds())
        self._cpu = 0.0
        base = base_path(server.options.http_base_path)
        self.routes = {posixpath.join(base, name): name for name in _ENDPOINTS}
        self.routes[base] = "/"

    def close(self) -> None:
        if self.scope is not None:
            self.scope.cancel()

    @property
    def scheme(self) -> str:
        return "https" if self.server.options.https_port else "http"

    def urls(self, host: str) -> list[str]:
        return [f"{self.scheme}://{_hostport(host, self.port)}"]

    # --- requests -----------------------------------------------------------------------

    def handle(self, target: str) -> Response:
        """The response to a GET of `target` (path and query)."""
        parts = urllib.parse.urlsplit(target)
        endpoint = self.routes.get(parts.path)
        if endpoint is None:
            return text_response(404, "404 page not found\n", ("X-Content-Type-Options", "nosniff"))
        query = {
            name: values[0]
            for name, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()
        }
        key = "/" + endpoint.strip("/") if endpoint != "/" else "/"
        if endpoint == "subscriptionsz":
            key = "/subsz"
        if endpoint not in _UNCOUNTED:
            self.req_stats[key] = self.req_stats.get(key, 0) + 1
        clock = Clock(time.time_ns(), trio.current_time())
        server = self.server
        try:
            if endpoint == "/":
                return Response(
                    200,
                    [("Content-Type", "text/html; charset=utf-8")],
                    snapshots.index_html().encode(),
                )
            if endpoint == "varz":
                return json_response(self.varz(clock))
            if endpoint == "connz":
                return json_response(snapshots.connz(server, query, clock, server.closed_clients))
            if endpoint in ("subsz", "subscriptionsz"):
                return json_response(snapshots.subsz(server, query, clock))
            if endpoint == "routez":
                return json_response(snapshots.routez(server, query, clock))
            if endpoint == "accountz":
                return json_response(snapshots.accountz(server, query, clock))
            if endpoint == "healthz":
                status, body = snapshots.healthz(server, query)
                return json_response(body, status, compact=True)
            if endpoint == "metrics":
                text = self.metrics(query, clock)
                return Response(200, [("Content-Type", metrics.CONTENT_TYPE)], text.encode())
            if endpoint == "accstatz":
                return json_response(snapshots.accstatz(server, query, clock))
            if endpoint == "jsz" and getattr(server, "jetstream", None) is not None:
                from ..jetstream.figures import jsz

                return json_response(jsz(server, query, clock.wall_ns))
            if endpoint == "leafz" and server.leafnodes is not None:
                return json_response(leafz.leafz(server, query, clock))
            if endpoint in _FEATURES_OFF:
                return json_response(_FEATURES_OFF[endpoint](server.server_id, query, clock))
            if endpoint == "ipqueuesz":
                return json_response(disabled.ipqueuesz(query))
            if endpoint == "raftz":
                return text_response(404, disabled.NO_RAFT_NODES)
            if endpoint == "stacksz":  # a text body marked as JSON, as nats-server sends it
                return Response(200, list(JSON_HEADERS), runtime.stacks().encode())
            if endpoint == "debug/vars":
                body = runtime.expvars(_rss_bytes()).encode()
                return Response(200, [("Content-Type", "application/json; charset=utf-8")], body)
        except QueryError as error:
            return text_response(400, str(error))
        return text_response(404, "404 page not found\n")

    def _respond(self, target: str, log) -> Response:
        """`handle`, except that a bug in an endpoint is a 500 that closes this connection,
        reported as any internal error (containment.py), never a crash of the monitor."""
        try:
            return self.handle(target)
        except Exception as exc:
            failure = f"Internal error serving {target}, closing connection"
            report(log, self.server.stats, exc, failure)
            return text_response(500, "500 Internal Server Error", ("Connection", "close"))

    def metrics(self, query: dict, clock: Clock) -> str:
        """/metrics: trionats's families, then prometheus-nats-exporter's (`gnatsd_*`).

        `prefix` replaces the exporter's `gnatsd` namespace, as its `-prefix` flag does.
        """
        namespace = query.get("prefix", "") or gnatsd.NAMESPACE
        if not gnatsd.valid_namespace(namespace):
            raise QueryError(f"invalid metric name prefix: {namespace!r}")
        server = self.server
        varz = self.varz(clock)
        routez = snapshots.routez(server, {}, clock)
        bodies = {
            "varz": varz,
            "connz": snapshots.connz_figures(server),
            "routez": routez,
            "subsz": snapshots.subsz(server, {}, clock),
        }
        for endpoint, health_query in _EXPORTER_HEALTHZ:
            bodies[endpoint] = snapshots.healthz(server, health_query)[1]
        leafs = leafz.leafz(server, {}, clock) if server.leafnodes is not None else None
        return metrics.exposition(varz, routez, leafs) + gnatsd.exposition(
            bodies, varz["server_id"], namespace
        )

    def varz(self, clock: Clock) -> dict:
        server = self.server
        digest, load_ns = "", getattr(server, "config_load_ns", 0)
        path = server.options.config_file
        if path:
            try:
                digest = "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError:
                pass
        return snapshots.varz(
            server,
            clock,
            start_ns=server.start_ns,
            process=self._process(),
            http_port=0 if self.scheme == "https" else self.port,
            https_port=self.port if self.scheme == "https" else None,
            http_req_stats=self.req_stats,
            config_digest=digest,
            config_load_ns=load_ns,
        )

    def _process(self) -> dict:
        """RSS, CPU count and CPU percent since the previous sample (at least a second apart)."""
        now, used = time.monotonic(), _cpu_seconds()
        then, used_then = self._cpu_sample
        if now - then >= 1.0:
            self._cpu = snapshots.cpu_percent(used - used_then, now - then)
            self._cpu_sample = (now, used)
        return {"mem": _rss_bytes(), "cores": os.cpu_count() or 1, "cpu": self._cpu}

    # --- tasks --------------------------------------------------------------------------

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        def serve(stream: trio.SocketStream) -> None:
            nursery.start_soon(self._serve_http, stream)

        await accept_forever(listener, serve, self.server.log, "monitoring",
                             stats=self.server.stats)  # fmt: skip

    async def _serve_http(self, stream: trio.SocketStream) -> None:
        """One HTTP/1.1 connection: requests answered in turn while the client keeps it alive.
        A failure stays inside it: an unexpected exception is reported and ends only it."""
        try:
            host, port = stream.socket.getpeername()[:2]
            log = self.server.log.bind(**peer_fields(host, port, "http"))
        except OSError:
            log = self.server.log
        with contained(log, self.server.stats):
            await self._serve_requests(stream, log)

    async def _serve_requests(self, stream: trio.abc.Stream, log) -> None:
        context = self.server.https_context if self.server.options.https_port else None
        if context is not None:
            # HTTPS: the handshake runs in this connection's task, under the tls timeout, with
            # the context current at accept time (a reload's new certificate applies).
            try:
                timeout = tls.handshake_timeout(self.server.options.tls)
                stream = await tls.handshake(stream, context, timeout, eof_is_close=False)
            except tls.HandshakeError as error:
                self.server.log.debug(f"TLS handshake error on monitoring port: {error}")
                return
            finally:
                if not isinstance(stream, trio.SSLStream):
                    with trio.CancelScope(shield=True), trio.move_on_after(
                        defaults.CLOSE_FLUSH_TIMEOUT
                    ):
                        await stream.aclose()
        reader = _Reader(stream)
        conn = reader.conn
        try:
            while True:
                event = await reader.next_event()
                if isinstance(event, h11.Request):
                    target = event.target.decode("latin-1")
                    while not isinstance(event, h11.EndOfMessage):  # a body is read and ignored
                        event = await reader.next_event()
                        if event is None or isinstance(event, h11.ConnectionClosed):
                            return
                    await _send(conn, stream, self._respond(target, log))
                elif event is None or isinstance(event, h11.ConnectionClosed):
                    return
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
                reader.received = len(conn.trailing_data[0])
        except h11.RemoteProtocolError as error:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                status = error.error_status_hint
                text = _REFUSALS.get(status, f"{status} Bad Request")
                try:
                    await _send(conn, stream, text_response(status, text))
                except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
            pass
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(defaults.CLOSE_FLUSH_TIMEOUT):
                await stream.aclose()


_REFUSALS = {431: "431 Request Header Fields Too Large", 413: "413 Request Entity Too Large"}


class _Reader:
    """h11 events from a stream, each read under the read timeout, each request size-bounded."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=defaults.HTTP_MAX_REQUEST_SIZE
        )
        #: Bytes of the current request read so far (head and body).
        self.received = 0

    async def next_event(self):
        """The next h11 event; None on timeout, EOF between requests, or a broken stream.

        Raises RemoteProtocolError (431 in the head, 413 in the body) once the request passes
        HTTP_MAX_REQUEST_SIZE bytes.
        """
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            with trio.move_on_after(defaults.HTTP_READ_TIMEOUT):
                try:
                    data = await self.stream.receive_some(defaults.READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    return None
                self.received += len(data)
                if self.received > defaults.HTTP_MAX_REQUEST_SIZE:
                    in_body = conn.their_state is h11.SEND_BODY
                    raise h11.RemoteProtocolError(
                        "request too large", error_status_hint=413 if in_body else 431
                    )
                conn.receive_data(data)
                continue
            return None

_ENDPOINTS = (
    "varz", "connz", "subsz", "subscriptionsz", "routez", "healthz", "accountz", "metrics",
    "accstatz", "gatewayz", "leafz", "jsz", "raftz", "ipqueuesz", "stacksz", "debug/vars",
)  # fmt: skip

#: Endpoints nats-server leaves out of /varz http_req_stats.
_UNCOUNTED = frozenset({"raftz", "ipqueuesz", "stacksz", "debug/vars"})

#: The endpoints of features trionats does not have (monitor/disabled.py).
_FEATURES_OFF = {"gatewayz": disabled.gatewayz, "leafz": disabled.leafz, "jsz": disabled.jsz}

#: The exporter's /healthz collectors and the query each one sends.
_EXPORTER_HEALTHZ = (
    ("healthz", {}),
    ("healthz_js_enabled_only", {"js-enabled-only": "true"}),
    ("healthz_js_server_only", {"js-server-only": "true"}),
)


async def _send(conn: h11.Connection, stream: trio.abc.Stream, response: Response) -> None:
    headers = [
        *response.headers,
        ("Date", formatdate(usegmt=True)),
        ("Content-Length", str(len(response.body))),
    ]
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data += conn.send(h11.Data(data=response.body))
    data += conn.send(h11.EndOfMessage())
    with trio.fail_after(defaults.HTTP_READ_TIMEOUT):
        await stream.send_all(data)


async def open_monitor_listeners(options) -> list[trio.SocketListener]:
    """Bind http_host:http_port, or https_port (the client host when http_host is empty; -1: a
    free port)."""
    configured = options.http_port or options.https_port
    port = 0 if configured == defaults.RANDOM_PORT else configured
    host = options.http_host or options.host
    return await trio.open_tcp_listeners(port, host=host or None)


async def serve_monitor(server, listeners, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve HTTP on `listeners` (closed on exit) until cancelled; reports the Monitor once up."""
    options = server.options
    host = options.http_host or options.host
    monitor = Monitor(server)
    monitor.port = listeners[0].socket.getsockname()[1]
    try:
        server.log.info(f"Starting {monitor.scheme} monitor on {_hostport(host, monitor.port)}")
        async with trio.open_nursery() as nursery:
            monitor.scope = nursery.cancel_scope
            for listener in listeners:
                nursery.start_soon(monitor._accept_loop, listener, nursery)
            task_status.started(monitor)
    finally:
        for listener in listeners:
            with trio.CancelScope(shield=True):
                await listener.aclose()


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _rss_bytes() -> int:
    """Resident set size: /proc on Linux, else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
