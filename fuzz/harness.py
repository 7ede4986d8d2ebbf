"""One in-process trionats server that fuzz inputs are fed to over memory streams, with a canary.

`open_fuzz_server()` starts a `Server` (client port, cluster port, websocket, HTTP monitoring,
all on 127.0.0.1 and port 0) in the caller's Trio run, and a canary: a real TCP client that
subscribes to `canary.<random>.>` and must get back every message it publishes.
`FuzzServer.feed` runs one input on a fresh connection over a memory stream, admitted the way
the server admits a socket of that kind (a client, an accepted route, a websocket upgrade, an
HTTP connection), but in the harness' own nursery, so an exception escaping the connection is
caught here with its traceback instead of ending the server. Each read is delivered, then the
harness waits until every task is blocked (the server has handled it) before sending the
next; then it sends EOF and waits for the server to close its side, reading (a bounded part
of) the reply. The server logs to a `LogWatch` instead of stderr.

What counts as a failure (`Failure.kind`):
  crash   an exception escaped the connection's task
  hang    the connection was still open `HANG_LIMIT` seconds after its input and EOF
  log     the server logged an internal error or a traceback
  canary  the canary lost a message, got no PONG in time, or was closed
  leak    after the input, the server still holds something of it: a client, a route, a
          subscription, interest to announce, or a task

Not fuzzed: outbound dials. A route INFO naming another server (gossip) makes the server
dial it; the harness records those addresses instead of dialing whatever a mutation made up.
TLS is not fuzzed either (ssl does the parsing).
"""

from __future__ import annotations

import re
import secrets
import sys
import threading
import traceback
from collections import deque
from contextlib import asynccontextmanager

import attrs
import trio
import trio.testing

from trionats.leaf.connection import LeafConnection
from trionats.options import AccountOptions, ClusterOptions, LeafnodeOptions, Options
from trionats.options import WebsocketOptions
from trionats.routes.connection import RouteConnection
from trionats.server import Server

from .inputs import CLUSTER_NAME, PROTOCOLS

#: Seconds a connection may stay open after its input ended (real clock).
HANG_LIMIT = 10.0
#: Seconds the canary may wait for its PONG.
CANARY_TIMEOUT = 10.0
#: Bytes of each reply kept for comparisons (the rest is read and counted).
REPLY_LIMIT = 64 * 1024
#: The peer address fuzz connections appear to come from.
PEER = ("127.0.0.1", 40000)

#: Log text that means the server hit a bug rather than bad input.
_BUG_IN_LOG = re.compile(r"Internal error|Traceback \(most recent call last\)|Unhandled exception")


class Failure(Exception):
    """The server misbehaved on an input (see the module docstring for the kinds)."""

    def __init__(self, kind: str, detail: str, signature: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        #: Where it happened, to tell a new failure from one already seen (crashes).
        self.signature = signature or kind


def _log_signature(line: str) -> str:
    """A logged bug without its connection prefix and numbers (one per kind of bug)."""
    match = _BUG_IN_LOG.search(line)
    return "log: " + re.sub(r"\d+", "N", line[match.start() : match.start() + 160])


def crash_signature(exc: BaseException) -> str:
    """The exception's type and the innermost trionats line it came from."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if "/trionats/" in frame.filename:
            where = f"{frame.filename.rsplit('/trionats/', 1)[1]}:{frame.lineno}"
    return f"{type(exc).__name__} at {where or 'harness'}"


@attrs.define
class Outcome:
    """What one connection got back."""

    reply: bytes  # the first REPLY_LIMIT bytes
    reply_size: int
    #: The server closed the connection before the input's EOF reached it.
    closed_by_server: bool


def fuzz_options(**overrides) -> Options:
    """Every listener a fuzz input can reach, on 127.0.0.1 and free ports."""
    options = Options(
        host="127.0.0.1",
        port=-1,
        http_port=-1,
        cluster=ClusterOptions(name=CLUSTER_NAME, host="127.0.0.1", port=-1, accounts=("ACC",)),
        websocket=WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True, compression=True),
        accounts=(AccountOptions(name="ACC"),),  # routes carry it (pinned) and $SYS
        leafnodes=LeafnodeOptions(host="127.0.0.1", port=-1),
    )
    return attrs.evolve(options, **overrides)


class LogWatch:
    """Stands in for sys.stderr (where the server logs): keeps the last lines, spots bugs."""

    def __init__(self, keep: int = 200) -> None:
        self.lines: deque[str] = deque(maxlen=keep)
        self.bugs: list[str] = []
        self.count = 0
        self._saved = None

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.count += 1
            self.lines.append(line)
            if _BUG_IN_LOG.search(line):
                self.bugs.append(line)
        return len(text)

    def flush(self) -> None:
        pass

    def __enter__(self) -> LogWatch:
        self._saved, sys.stderr = sys.stderr, self
        return self

    def __exit__(self, *exc) -> None:
        sys.stderr = self._saved


class _FakeSocket:
    def getpeername(self):
        return PEER


class PeerStream(trio.abc.HalfCloseableStream):
    """The server's end of a memory stream, with the `socket.getpeername()` of a real one."""

    def __init__(self, stream: trio.StapledStream) -> None:
        self.stream = stream
        self.socket = _FakeSocket()

    async def send_all(self, data) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def receive_some(self, max_bytes=None) -> bytes:
        # A memory stream returns a bytearray; a socket, bytes (which the server relies on).
        return bytes(await self.stream.receive_some(max_bytes))

    async def aclose(self) -> None:
        await self.stream.aclose()


class Canary:
    """A real TCP client that must keep being served: its messages come back, PING gets PONG."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        # Unguessable, so that no fuzz input (or atheris, learning from comparisons) can
        # publish into the canary's subjects and fake a lost message.
        self.subject = b"canary.%s" % secrets.token_hex(8).encode()
        self.buffer = bytearray()
        self.rounds = 0
        self.cid = 0

    @classmethod
    async def connect(cls, server: Server) -> Canary:
        before = set(server.clients)
        canary = cls(await trio.open_tcp_stream("127.0.0.1", server.port))
        await canary.stream.send_all(
            b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n'
            b"SUB %s.> 1\r\n" % canary.subject
        )
        await canary.check()
        (canary.cid,) = set(server.clients) - before
        return canary

    async def check(self, count: int = 3) -> None:
        """Publish `count` messages to itself and get each back before the PONG."""
        self.rounds += 1
        subject = b"%s.%d" % (self.subject, self.rounds)
        payloads = [b"%d-%d" % (self.rounds, i) for i in range(count)]
        out = b"".join(b"PUB %s %d\r\n%s\r\n" % (subject, len(p), p) for p in payloads)
        received: list[bytes] = []
        try:
            with trio.fail_after(CANARY_TIMEOUT):
                await self.stream.send_all(out + b"PING\r\n")
                while True:
                    verb, args, payload = await self._next()
                    if verb == b"PONG":
                        break
                    if verb == b"PING":
                        await self.stream.send_all(b"PONG\r\n")
                    elif verb == b"MSG" and args[0] == subject:
                        received.append(payload)
                    elif verb == b"-ERR":
                        raise Failure("canary", f"-ERR {b' '.join(args)!r}")
        except trio.TooSlowError:
            raise Failure("canary", f"no PONG within {CANARY_TIMEOUT} s") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError, EOFError) as exc:
            raise Failure("canary", f"connection lost: {exc!r}") from None
        if received != payloads:
            raise Failure("canary", f"sent {payloads}, got {received}")

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("closed by the server")
        self.buffer += data

    async def _next(self) -> tuple[bytes, list[bytes], bytes]:
        """The next protocol line (and its payload for MSG/HMSG)."""
        while b"\r\n" not in self.buffer:
            await self._fill()
        end = self.buffer.index(b"\r\n")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        verb, *args = line.split(b" ")
        payload = b""
        if verb in (b"MSG", b"HMSG"):
            size = int(args[-1])
            while len(self.buffer) < size + 2:
                await self._fill()
            payload = bytes(self.buffer[:size])
            del self.buffer[: size + 2]
        return verb, args, payload

    async def aclose(self) -> None:
        await self.stream.aclose()


def count_tasks(nursery: trio.Nursery) -> int:
    """Tasks alive under `nursery`."""
    count = 0
    pending = list(nursery.child_tasks)
    while pending:
        task = pending.pop()
        count += 1
        for child in task.child_nurseries:
            pending.extend(child.child_tasks)
    return count


class FuzzServer:
    """The fuzzed server, its canary, and the checks made between inputs."""

    def __init__(self, server: Server, canary: Canary, logs: LogWatch, nursery) -> None:
        self.server = server
        #: Where the server runs: its tasks are counted for leaks.
        self.nursery = nursery
        self.canary = canary
        self.logs = logs
        #: Addresses gossip asked the server to dial (recorded, not dialed).
        self.gossiped: list[str] = []
        self.fed = 0
        self.baseline_tasks = count_tasks(nursery)
        #: The interest routes are told of: the canary's and the system account's requests.
        self.baseline_interest = len(server.cluster.interest)
        self._targets = {
            "client": self._run_client,
            "route": self._run_route,
            "leaf": self._run_leaf,
            "websocket": self._run_websocket,
            "http": self._run_http,
        }
        assert set(self._targets) == set(PROTOCOLS)

    # --- one input ----------------------------------------------------------------------

    async def _run_client(self, stream) -> None:
        await self.server.admit(stream, PEER).run()

    async def _run_route(self, stream) -> None:
        cluster = self.server.cluster
        await RouteConnection(cluster, stream, self.server.next_cid(), PEER).run()

    async def _run_leaf(self, stream) -> None:
        nodes = self.server.leafnodes
        await LeafConnection(nodes, stream, self.server.next_cid(), PEER).run()

    async def _run_websocket(self, stream) -> None:
        await self.server.websocket._upgrade_and_run(stream)

    async def _run_http(self, stream) -> None:
        await self.server.monitor._serve_http(stream)

    async def feed(self, protocol: str, chunks: list[bytes]) -> Outcome:
        """Run one connection of `protocol` that sends `chunks` (one read each), then EOF."""
        self.fed += 1
        ours, theirs = trio.testing.memory_stream_pair()
        target = self._targets[protocol]
        reply = bytearray()
        state = {"size": 0, "eof": False}
        crash: list[Failure] = []

        async def serve() -> None:
            try:
                await target(PeerStream(theirs))
            except Exception as exc:
                crash.append(Failure("crash", traceback.format_exc(), crash_signature(exc)))

        async def collect() -> None:
            while True:
                try:
                    data = await ours.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if not data:
                    break
                state["size"] += len(data)
                if len(reply) < REPLY_LIMIT:
                    reply.extend(data[: REPLY_LIMIT - len(reply)])
            state["eof"] = True

        closed_by_server = False
        try:
            with trio.fail_after(HANG_LIMIT):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(serve)
                    nursery.start_soon(collect)
                    await trio.testing.wait_all_tasks_blocked()
                    for chunk in chunks:
                        if state["eof"]:
                            break
                        try:
                            await ours.send_all(chunk)
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            break
                        await trio.testing.wait_all_tasks_blocked()
                    closed_by_server = state["eof"]
                    try:
                        await ours.send_eof()
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
        except trio.TooSlowError:
            raise Failure("hang", f"still open {HANG_LIMIT} s after its input") from None
        finally:
            await ours.aclose()
        if crash:
            raise crash[0]
        if self.logs.bugs:
            bugs, self.logs.bugs = self.logs.bugs, []
            detail = "\n".join(bugs + ["(last lines:)", *list(self.logs.lines)[-40:]])
            raise Failure("log", detail, _log_signature(bugs[0]))
        return Outcome(bytes(reply), state["size"], closed_by_server)

    # --- between inputs -----------------------------------------------------------------

    async def check(self) -> None:
        """The canary is served and no fuzz connection left anything behind."""
        await self.canary.check()
        await self.check_leaks()

    async def check_leaks(self) -> None:
        """Nothing of the fuzz connections is left (checked again once every task has had its
        turn, as a task the last input started may not have run yet)."""
        problems = self._leaks()
        if problems:
            await trio.testing.wait_all_tasks_blocked()
            problems = self._leaks()
        if problems:
            raise Failure("leak", "; ".join(problems))

    def _leaks(self) -> list[str]:
        server = self.server
        cluster = server.cluster
        problems = []
        others = [cid for cid in server.clients if cid != self.canary.cid]
        if others:
            problems.append(f"clients still registered: {others[:10]}")
        if server.sublist.count != 1:
            subs = [(s.subject, s.client) for s in server.sublist.subscriptions()][:10]
            problems.append(f"{server.sublist.count} subscriptions, not the canary's 1: {subs}")
        for account in server.accounts:
            if account is not server.accounts.global_account and account.sublist.count:
                problems.append(f"{account.sublist.count} subscriptions left in {account.name}")
        if cluster.routes:
            problems.append(f"routes still registered: {list(cluster.routes)[:10]}")
        if len(cluster.interest) != self.baseline_interest:
            problems.append(f"interest announced to routes: {cluster.interest.dump()[:10]}")
        if server.leafnodes.connections:
            problems.append(f"leaf connections still registered: {list(server.leafnodes.connections)[:10]}")
        if cluster._implicit:
            problems.append(f"implicit routes pending: {list(cluster._implicit)[:10]}")
        tasks = count_tasks(self.nursery)
        if tasks != self.baseline_tasks:
            problems.append(f"{tasks} tasks, {self.baseline_tasks} before the inputs")
        return problems


def _record_gossip_instead_of_dialing(fuzz: FuzzServer) -> None:
    cluster = fuzz.server.cluster

    async def record(url, remote_id: str) -> None:
        fuzz.gossiped.append(url.hostport)
        del fuzz.gossiped[:-100]
        cluster._implicit.discard(remote_id)

    async def record_pinned(url, remote_id: str, account: str) -> None:
        fuzz.gossiped.append(url.hostport)
        del fuzz.gossiped[:-100]
        cluster._implicit.discard((remote_id, account))

    cluster._supervise_implicit = record
    cluster._dial_pinned = record_pinned


@asynccontextmanager
async def open_fuzz_server(options: Options | None = None):
    """A running FuzzServer; the server's own failures end the block with their exception."""
    with LogWatch() as logs:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(Server(options or fuzz_options()).serve)
            canary = await Canary.connect(server)
            await trio.testing.wait_all_tasks_blocked()
            fuzz = FuzzServer(server, canary, logs, nursery)
            _record_gossip_instead_of_dialing(fuzz)
            try:
                yield fuzz
            finally:
                await canary.aclose()
                server.shutdown()


class FuzzServerThread:
    """A FuzzServer in a thread of its own, for synchronous callers (Hypothesis tests, atheris).

    `feed` and `check` block until done and raise what the server's side raised: a Failure,
    or the server's own exception if it died.
    """

    def __init__(self, options: Options | None = None) -> None:
        self.options = options
        self.fuzz: FuzzServer | None = None
        self._token = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._died: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="fuzz-server", daemon=True)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported to the caller by `_call`
            self._died = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        async with open_fuzz_server(self.options) as fuzz:
            self.fuzz = fuzz
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> FuzzServerThread:
        self._thread.start()
        self._ready.wait()
        if self._died is not None:
            raise self._died
        return self

    def __exit__(self, *exc) -> None:
        if self._died is None and self._thread.is_alive():
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join()

    @property
    def server_id(self) -> str:
        return self.fuzz.server.server_id

    def _call(self, fn, *args):
        if self._died is not None:
            raise Failure("server", f"the server died: {self._died!r}") from self._died
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            self._thread.join()
            raise Failure("server", f"the server died: {self._died!r}") from self._died

    def feed(self, protocol: str, chunks: list[bytes]) -> Outcome:
        """Run one input and check that it left nothing behind."""

        async def feed_and_check() -> Outcome:
            outcome = await self.fuzz.feed(protocol, chunks)
            await self.fuzz.check_leaks()
            return outcome

        return self._call(feed_and_check)

    def check(self) -> None:
        """A canary round and the leak checks."""
        self._call(self.fuzz.check)
