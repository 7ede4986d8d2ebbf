"""One connection's outbound queue: a byte budget, batched writes, slow-consumer detection.

Producers (any task, synchronously) append byte strings; the connection's writer task takes
everything queued as one joined batch per `send_all`. `pending` counts bytes queued and not
yet written; when it passes `max_pending` the owner's `on_overflow` is called (the slow
consumer rule) and the queue drops what it holds, so memory stays within the budget. A route's
queue has no such limit (nats-server's rule: `max_pending` is for clients); its budget only
sets the stall mark below, and a peer that takes nothing meets the write deadline instead.

Direct sends: while a reader task processes one read (`collect_writes`), a queue whose writer
is parked is not woken at once but remembered; when the read is done, its bytes go straight
to the socket with one non-blocking send, and the writer is woken only for what the socket
did not take. That saves a task switch per delivery batch, which is most of a request's
latency. Only plain TCP streams have `sock` set; others always go through their writer.

Fast producer stall (nats-server's): a queue filled past three quarters of its budget during
a read is remembered too; the reader (a client publishing faster than that subscriber or
route drains) then waits a few milliseconds for it to drain before reading on, so a fast
publisher is slowed to its consumers' pace instead of getting them cut as slow consumers.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import trio

#: The queues written to during the current read whose writer is parked (None: not collecting).
_collected: list[Outbound] | None = None
#: The queues filled past their stall mark during the current read.
_stalled: list[Outbound] | None = None


@contextmanager
def collect_writes() -> Iterator[list[Outbound]]:
    """Around one read's processing: send to parked writers' sockets directly at the end.

    Yields the list of queues that went past their stall mark meanwhile (see `stall`)."""
    global _collected, _stalled
    _collected = collected = []
    _stalled = stalled = []
    try:
        yield stalled
    finally:
        _collected = _stalled = None
        for outbound in collected:
            outbound.send_now()
        for outbound in stalled:
            outbound.stall_listed = False


async def stall(stalled: list[Outbound], budget: float) -> None:
    """Wait (at most `budget` seconds in all) until each queue is back under its stall mark."""
    with trio.move_on_after(budget):
        for outbound in stalled:
            if outbound.pending > outbound.stall_at and not outbound.closed:
                await outbound.drained()


class Outbound:
    __slots__ = (
        "chunks", "pending", "max_pending", "_on_overflow", "_waiter", "closed", "sock", "_collected",
        "stall_at", "stall_listed", "_drained",
    )  # fmt: skip

    def __init__(
        self, max_pending: int, on_overflow: Callable[[], None], *, bounded: bool = True
    ) -> None:
        self.chunks: list[bytes] = []
        self.pending = 0
        #: Past this many queued bytes the owner is a slow consumer (`bounded` queues only).
        self.max_pending = max_pending if bounded else sys.maxsize
        self._on_overflow = on_overflow
        self._waiter: trio.Event | None = None
        self.closed = False
        #: The connection's OS socket when direct sends are possible (plain TCP), else None.
        self.sock: socket.socket | None = None
        self._collected = False
        #: Past this many pending bytes, producers wait for the writer (3/4 of the budget).
        self.stall_at = max_pending // 4 * 3
        self.stall_listed = False
        self._drained: trio.Event | None = None

    def write(self, data: bytes) -> None:
        """Queue `data`; never blocks."""
        self.chunks.append(data)
        self.pending += len(data)
        if self.pending > self.max_pending:
            self._overflow()
        elif self._waiter is not None and not self._collected:
            self._notify()
        elif self.pending > self.stall_at:
            self._over_stall_mark()

    def write_msg(self, head: bytes, tail: bytes, data: bytes, size: int) -> None:
        """Queue one message: its control line in two parts and its data (`size` = total)."""
        chunks = self.chunks
        chunks.append(head)
        chunks.append(tail)
        chunks.append(data)
        self.pending += size
        if self.pending > self.max_pending:
            self._overflow()
        elif self._waiter is not None and not self._collected:
            self._notify()
        elif self.pending > self.stall_at:
            self._over_stall_mark()

    def _over_stall_mark(self) -> None:
        if _stalled is not None and not self.stall_listed:
            self.stall_listed = True
            _stalled.append(self)

    async def drained(self) -> None:
        """Return once pending is back under the stall mark (or the queue is closed)."""
        if self._drained is None:
            self._drained = trio.Event()
        await self._drained.wait()

    def _release_stalled(self) -> None:
        if self._drained is not None:
            self._drained.set()
            self._drained = None

    def _notify(self) -> None:
        """Data arrived for a parked writer: wake it, or leave it to the reader's direct send."""
        if _collected is not None and self.sock is not None:
            if not self._collected:
                self._collected = True
                _collected.append(self)
        else:
            self._waiter.set()
            self._waiter = None

    def send_now(self) -> None:
        """Send what is queued straight to the socket; the writer gets whatever is left."""
        self._collected = False
        if self._waiter is None or not self.chunks or self.closed:
            return  # the writer is awake (or the queue is gone): it takes care of the rest
        chunks = self.chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = 0  # the writer's send_all meets the same error and closes properly
        self.pending -= sent
        self.chunks = [data[sent:]] if sent < len(data) else []
        if self.chunks:
            self._waiter.set()
            self._waiter = None

    def _overflow(self) -> None:
        self.chunks.clear()
        self.pending = 0
        self._release_stalled()
        if not self.closed:
            self.closed = True
            self._on_overflow()

    def discard(self) -> None:
        """Drop everything queued (the connection is going away)."""
        self.closed = True
        self.chunks.clear()
        self.pending = 0
        self._release_stalled()
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    async def wait(self) -> None:
        """Return when something was queued (or `wake` was called)."""
        if self.chunks:
            return
        self._waiter = waiter = trio.Event()
        await waiter.wait()

    def take(self, limit: int) -> bytes:
        """Remove and return the queued bytes, joined, up to about `limit` bytes."""
        chunks = self.chunks
        if self.pending <= limit:
            self.chunks = []
            return b"".join(chunks)
        total = 0
        count = 0
        for count, chunk in enumerate(chunks, 1):  # noqa: B007 - count is used after the loop
            total += len(chunk)
            if total >= limit:
                break
        batch = b"".join(chunks[:count])
        del chunks[:count]
        return batch

    def sent(self, size: int) -> None:
        """`size` bytes of a taken batch reached the socket."""
        self.pending = max(0, self.pending - size)
        if self._drained is not None and self.pending <= self.stall_at:
            self._release_stalled()
