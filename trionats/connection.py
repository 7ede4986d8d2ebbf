"""One connection's task tree: a nursery with its reader, writer and pinger; `close(reason)`.

`run()` owns the stream for the connection's whole life. The reader hands each read to the
subclass's synchronous `process`, so a message is parsed, matched and queued to its
subscribers without an `await` in between. The writer drains the outbound queue with one
`send_all` per batch under the write deadline. Before they start, `upgrade()` may swap the
stream for a TLS one (the client port's INFO-then-handshake, a route's handshake). The pinger calls `on_ping_timer` when
`next_ping` is reached. Closing is synchronous and idempotent: it stops the reader at once,
gives the writer a short deadline to flush what is queued (an -ERR, say), then the nursery
is cancelled; the stream is closed in `finally`.
"""

from __future__ import annotations

import math

import trio

from . import defaults
from .errors import ProtocolError, Reason
from .logging import connection_fields
from .outbound import Outbound, collect_writes, stall


class Connection:
    """Base for client (and route) connections: the I/O tasks and the close protocol."""

    #: Log label of the connection kind ("cid", "rid", ...)
    id_label = "cid"
    #: Route connections are subscribers too: delivery plans forward to them instead.
    is_route = False
    #: Set by `process` to pause the rest of a read: the reader awaits it, then `resume()`s.
    awaiting = None
    #: A producer that filled a consumer's queue past its stall mark waits for it to drain
    #: (clients; a route's reader must never wait for one consumer).
    stalls = False

    def __init__(
        self,
        stream: trio.abc.Stream,
        cid: int,
        *,
        peer: tuple[str, int],
        max_pending: int,
        write_deadline: float,
        logger,
    ) -> None:
        self.stream = stream
        self.cid = cid
        self.peer_host, self.peer_port = peer[0], peer[1]
        self.write_deadline = write_deadline
        self.outbound = Outbound(max_pending, self._on_slow_consumer)
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

    # --- the task tree --------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; always closes the stream."""
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                if self.closed_reason is not None:  # closed before it started
                    self._scope.cancel()
                await self.upgrade()
                if self.closed_reason is not None:
                    return
                nursery.start_soon(self._read_loop)
                nursery.start_soon(self._write_loop)
                nursery.start_soon(self._ping_loop)
                self.on_start()
        finally:
            self.close(Reason.CLIENT_CLOSED, flush=False)
            self.on_closed()
            with trio.CancelScope(shield=True):
                with trio.move_on_after(defaults.CLOSE_FLUSH_TIMEOUT):
                    await self.stream.aclose()

    async def _read_loop(self) -> None:
        stream = self.stream
        with self._reader_scope:
            while True:
                try:
                    data = await stream.receive_some(defaults.READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    self.close(Reason.READ_ERROR, flush=False)
                    return
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
        while True:
            if not outbound.chunks:
                if self.closed_reason is not None:
                    break
                await outbound.wait()
                continue
            batch = outbound.take(defaults.MAX_WRITE_BATCH)
            try:
                with trio.move_on_after(self.write_deadline) as scope:
                    await self._send(stream, batch)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                self.close(Reason.WRITE_ERROR, flush=False)
                break
            if scope.cancelled_caught:
                self.on_write_timeout()
                break
        # Closing, and everything queued has been written: the connection is done.
        self._scope.cancel()

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
        self.on_close(reason)

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

    def on_write_timeout(self) -> None:
        """A write did not finish within the write deadline."""
        self.close(Reason.SLOW_CONSUMER_WRITE, flush=False)

    def _on_slow_consumer(self) -> None:
        """More than max_pending bytes are queued."""
        self.close(Reason.SLOW_CONSUMER_PENDING, flush=False)

    def on_close(self, reason: str) -> None:
        """Synchronously called once when the connection starts closing."""

    def on_closed(self) -> None:
        """Called once when the connection's tasks are done, before the stream closes."""
