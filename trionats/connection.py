"""One connection's task tree: a nursery with its reader, writer and pinger; `close(reason)`.

`run()` owns the stream for the connection's whole life. The reader hands each read to the
subclass's synchronous `process`, so a message is parsed, matched and queued to its
subscribers without an `await` in between. The writer drains the outbound queue one batch at a
time under the write deadline (plain TCP straight to the socket, so a write the deadline cuts
short knows what is left: `write_timeout: retry` carries on from there). Before they start,
`upgrade()` may swap the stream for a TLS one (the client port's INFO-then-handshake, a route's handshake). The pinger calls `on_ping_timer` when
`next_ping` is reached. Closing is synchronous and idempotent: it stops the reader at once,
gives the writer a short deadline to flush what is queued (an -ERR, say), then the nursery
is cancelled; the stream is closed in `finally`.

A failure stays inside the connection (containment.py): an unexpected exception from any of
its tasks or hooks closes it as `Internal Error`, reported once; so does one raised by
`on_close`, which cannot stop the rest of the close (`closing_step`), and nothing escapes
`run()` but cancellation.
"""

from __future__ import annotations

import math

import trio

from . import defaults
from .containment import contained, report
from .errors import ProtocolError, Reason
from .logging import connection_fields
from .outbound import Outbound, collect_writes, stall


#: An empty view: what `_unsent` holds between batches.
_NOTHING = memoryview(b"")


class Connection:
    """Base for client (and route) connections: the I/O tasks and the close protocol."""

    #: Log label of the connection kind ("cid", "rid", ...)
    id_label = "cid"
    #: Route connections are subscribers too: delivery plans forward to them instead.
    is_route = False
    #: Leaf node connections (leaf/connection.py) are route-like subscribers bound to an account.
    is_leaf = False
    #: Set by `process` to pause the rest of a read: the reader awaits it, then `resume()`s.
    awaiting = None
    #: A producer that filled a consumer's queue past its stall mark waits for it to drain
    #: (clients; a route's reader must never wait for one consumer).
    stalls = False
    #: Whether more than max_pending queued bytes close the connection (clients; nats-server
    #: lets a route's queue grow, so a peer stalled for a few seconds is not cut).
    pending_bounded = True
    #: What a write past the write deadline does: "close", or "retry" (keep the connection,
    #: marked as a slow consumer, and go on writing). Subclasses set it from the options.
    write_timeout_policy = "close"

    def __init__(
        self,
        stream: trio.abc.Stream,
        cid: int,
        *,
        peer: tuple[str, int],
        max_pending: int,
        write_deadline: float,
        logger,
        stats,
    ) -> None:
        self.stream = stream
        #: The server's counters (an internal error is counted there).
        self.stats = stats
        self.cid = cid
        self.peer_host, self.peer_port = peer[0], peer[1]
        self.write_deadline = write_deadline
        self.outbound = Outbound(max_pending, self._on_slow_consumer,
                                 bounded=self.pending_bounded)  # fmt: skip
        if isinstance(stream, trio.SocketStream):
            # The OS socket behind Trio's, for non-blocking direct sends (see outbound.py).
            self.outbound.sock = getattr(stream.socket, "_sock", None)
        # `conn` is the text lines' prefix; the rest are JSON's fields (client.ip, nats.cid, ...).
        self.log = logger.bind(**connection_fields(self.id_label, cid, *peer[:2]))
        self.closed_reason: str | None = None
        self.next_ping = math.inf
        self.start_time = trio.current_time()
        self.last_activity = self.start_time
        self._scope: trio.CancelScope | None = None
        self._reader_scope = trio.CancelScope()
        self._ping_scope: trio.CancelScope | None = None
        self._closing = trio.Event()
        #: Marked by a write timeout under the retry policy, until a write completes in time.
        self.slow_consumer = False
        #: Until when (Trio time) the reader leaves the socket alone: a stalled peer, injected
        #: by chaos tests (trionats.testing); the past otherwise.
        self.stalled_until = -math.inf
        self._nursery: trio.Nursery | None = None  # while `run` serves the connection
        self._written = 0  # bytes of the current batch written (direct socket writes)
        self._unsent = _NOTHING  # and what is left of it

    # --- the task tree --------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; always closes the stream. Raises nothing
        but cancellation: an unexpected exception closes this connection (`fail`)."""
        try:
            try:
                async with trio.open_nursery() as nursery:
                    self._scope = nursery.cancel_scope
                    self._nursery = nursery
                    if self.closed_reason is not None:  # closed before it started
                        self._scope.cancel()
                    await self.upgrade()
                    if self.closed_reason is not None:
                        return
                    nursery.start_soon(self._read_loop)
                    nursery.start_soon(self._write_loop)
                    nursery.start_soon(self._ping_loop)
                    self.on_start()
            except* Exception as group:
                self.fail(group)  # (with the label the connection has now: its user, say)
        finally:
            self._nursery = None
            self.close(Reason.CLIENT_CLOSED, flush=False)
            with contained(self.log, self.stats):
                self.on_closed()
            with trio.CancelScope(shield=True):
                with trio.move_on_after(defaults.CLOSE_FLUSH_TIMEOUT):
                    with contained(self.log, self.stats):
                        await self.stream.aclose()

    def start_task(self, fn, *args) -> None:
        """Run `fn(*args)` in this connection's own nursery (a password checked again after
        a reload, say): it ends with the connection, and an exception from it closes the
        connection as any of its tasks' would. Nothing starts once the connection is over."""
        if self._nursery is not None:
            self._nursery.start_soon(_call, fn, *args, name=getattr(fn, "__qualname__", None))

    def fail(self, error: BaseException) -> None:
        """An unexpected exception in this connection's code (a task it started outside its
        nursery, say): report it once and close the connection as `Internal Error`."""
        report(self.log, self.stats, error)
        self._failed()

    def _failed(self) -> None:
        self.close(Reason.INTERNAL_ERROR, flush=False)

    async def _read_loop(self) -> None:
        stream = self.stream
        with self._reader_scope:
            while True:
                try:
                    data = await stream.receive_some(defaults.READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    self.close(Reason.READ_ERROR, flush=False)
                    return
                if self.stalled_until != -math.inf:  # what arrived waits out the stall
                    await trio.sleep_until(self.stalled_until)
                    self.stalled_until = -math.inf
                if not data:
                    self.close(Reason.CLIENT_CLOSED, flush=False)
                    return
                if self.closed_reason is not None:
                    # Closed by another task while this read came in: Trio returns data a
                    # receive already had even when cancelled during its shielded yield.
                    return
                with collect_writes() as stalled:
                    try:
                        self.process(data)
                    except ProtocolError as error:
                        self.on_protocol_error(error)
                        return
                if stalled and self.stalls:
                    self.on_stall()
                    await stall(stalled, defaults.FAST_PRODUCER_STALL_MAX)
                while self.awaiting is not None and self.closed_reason is None:
                    # An asynchronous check (a bcrypt password) paused the events of this read:
                    # nothing after it is handled before its verdict, so order stays exact.
                    check = self.awaiting
                    self.awaiting = None
                    await check()
                    with collect_writes():
                        try:
                            self.resume()
                        except ProtocolError as error:
                            self.on_protocol_error(error)
                            return
                if self.closed_reason is not None:
                    return

    async def _write_loop(self) -> None:
        outbound = self.outbound
        stream = self.stream
        unsent = b""  # what a write cut short by the deadline left (retry policy): sent first
        while True:
            if unsent:
                batch, chunks, unsent = unsent, 1, b""
            elif not outbound.chunks:
                if self.closed_reason is not None:
                    break
                await outbound.wait()
                continue
            else:
                chunks = len(outbound.chunks)
                batch = outbound.take(defaults.MAX_WRITE_BATCH)
            sock = outbound.sock
            self._written = 0
            start = trio.current_time()
            try:
                with trio.move_on_after(self.write_deadline) as scope:
                    if sock is not None:
                        await self._send_socket(sock, batch)
                    else:
                        await self._send(stream, batch)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                self.close(Reason.WRITE_ERROR, flush=False)
                break
            if scope.cancelled_caught:
                # Only a direct socket write knows what is left; a stream's (TLS, websocket)
                # state is unknown after a cancelled send_all, so it cannot be retried.
                resumable = sock is not None
                if self.on_write_timeout(self._written, len(batch), chunks, resumable=resumable):
                    break
                unsent = bytes(self._unsent)
                self._unsent = _NOTHING
            elif self.slow_consumer:
                self.slow_consumer = False
                self.log.info(
                    f"Slow Consumer Recovered: Flush took {trio.current_time() - start:.3f}s "
                    f"with {chunks} chunks of {len(batch)} total bytes."
                )
        # Closing, and everything queued has been written: the connection is done.
        self._scope.cancel()

    async def _send_socket(self, sock, batch: bytes) -> None:
        """Write one batch straight to the OS socket (plain TCP), counting each byte as it
        leaves: `_written` and `_unsent` stay exact when the write deadline cuts it short,
        so the retry policy can carry on where it stopped."""
        outbound = self.outbound
        view = self._unsent = memoryview(batch)
        while view:
            try:
                sent = sock.send(view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(sock)
                continue
            view = self._unsent = view[sent:]
            self._written += sent
            outbound.sent(sent)
        self._unsent = _NOTHING  # do not keep the batch alive until the next one
        # A schedule point per batch, as send_all has; never a cancel point once all is sent.
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def _send(self, stream, batch: bytes) -> None:
        """Write one batch. A large one goes out in pieces, each counted when written, so
        `pending` (what a stalled producer waits on) falls as the consumer reads."""
        piece = defaults.WRITE_PIECE
        if len(batch) <= piece:
            await stream.send_all(batch)
            self.outbound.sent(len(batch))
            return
        view = memoryview(batch)
        for start in range(0, len(batch), piece):
            chunk = view[start : start + piece]
            await stream.send_all(chunk)
            self.outbound.sent(len(chunk))

    async def _ping_loop(self) -> None:
        while True:
            with trio.CancelScope(deadline=self.next_ping) as scope:
                self._ping_scope = scope
                await trio.sleep_forever()
            self._ping_scope = None
            if self.closed_reason is not None:
                return
            self.on_ping_timer()

    def reschedule_ping(self, when: float) -> None:
        """Move the next ping timer to `when` (trio clock time)."""
        self.next_ping = when
        if self._ping_scope is not None:
            self._ping_scope.deadline = when

    # --- closing --------------------------------------------------------------------------

    def close(self, reason: str, *, flush: bool = True) -> None:
        """Close the connection for `reason`; queued bytes are flushed briefly if `flush`."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self._reader_scope.cancel()
        if self._ping_scope is not None:
            self._ping_scope.cancel()
        if flush and not self.outbound.closed:
            if self._scope is not None:
                self._scope.deadline = min(
                    self._scope.deadline, trio.current_time() + defaults.CLOSE_FLUSH_TIMEOUT
                )
            self.outbound.wake()
        else:
            self.outbound.discard()
            if self._scope is not None:
                self._scope.cancel()
        # Called from any task (a publisher's, closing a slow consumer): a failing hook must
        # not end that task's connection.
        with contained(self.log, self.stats):
            self.on_close(reason)

    def closing_step(self, step, *args) -> None:
        """Run one step of `on_close`; if it raises, report it and let the next steps run,
        so one failure cannot leave the rest (subscriptions, registry entries) behind."""
        with contained(self.log, self.stats):
            step(*args)

    # --- hooks for subclasses -------------------------------------------------------------

    async def upgrade(self) -> None:
        """Before the tasks start: may replace `self.stream` (a TLS handshake) or close."""

    def on_start(self) -> None:
        """The tasks are running (send the greeting here)."""

    def process(self, data: bytes) -> None:
        """Handle one read's bytes; may raise ProtocolError."""
        raise NotImplementedError

    def on_protocol_error(self, error: ProtocolError) -> None:
        raise NotImplementedError

    def resume(self) -> None:
        """Continue the events `process` paused by setting `awaiting` (after awaiting it)."""

    def on_ping_timer(self) -> None:
        """`next_ping` was reached; send a PING or declare the peer stale."""

    def on_stall(self) -> None:
        """This connection is about to wait for consumers it filled (fast producer stall)."""

    def on_write_timeout(
        self, written: int, attempted: int, chunks: int, *, resumable: bool
    ) -> bool:
        """A write did not finish within the write deadline (nats-server's handleWriteTimeout):
        count and log a slow consumer, then close, or with the `retry` policy keep the
        connection, marked slow, and write the rest. A write that moved no byte at all, or
        that cannot be resumed, always closes. Returns whether the connection is closing."""
        if self.awaiting_connect():
            # nats-server: no CONNECT yet (authentication required): closed, not counted.
            self.close(Reason.SLOW_CONSUMER_WRITE, flush=False)
            return True
        state = "State" if self.slow_consumer else "Detected"
        self.count_slow_consumer(again=self.slow_consumer)
        self.log.info(
            f"Slow Consumer {state}: WriteDeadline of {_go_duration(self.write_deadline)} "
            f"exceeded with {chunks} chunks of {attempted} total bytes."
        )
        if self.write_timeout_policy != "retry" or written == 0 or not resumable:
            self.close(Reason.SLOW_CONSUMER_WRITE, flush=False)
            return True
        self.slow_consumer = True
        return False

    def awaiting_connect(self) -> bool:
        """The peer must still send its CONNECT (a write timeout then closes uncounted)."""
        return False

    def count_slow_consumer(self, *, again: bool) -> None:
        """One more slow consumer event (`again`: this connection was already marked slow)."""

    def _on_slow_consumer(self) -> None:
        """More than max_pending bytes are queued."""
        self.close(Reason.SLOW_CONSUMER_PENDING, flush=False)

    def on_close(self, reason: str) -> None:
        """Synchronously called once when the connection starts closing."""

    def on_closed(self) -> None:
        """Called once when the connection's tasks are done, before the stream closes."""


def _go_duration(seconds: float) -> str:
    """A deadline as Go prints a time.Duration: `200ms`, `10s`, `1m30s` (log texts)."""
    if 0 < seconds < 1e-3:
        return f"{seconds * 1e6:g}µs"
    if seconds < 1:
        return f"{seconds * 1e3:g}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:g}s"
    if minutes:
        hours, minutes = divmod(int(minutes), 60)
        text = f"{minutes}m{text}" if not hours else f"{hours}h{minutes}m{text}"
    return text


async def _call(fn, *args) -> None:
    """`await fn(*args)` inside the task, so that even a failure to call it is the task's."""
    await fn(*args)
