"""One connection's outbound queue: a byte budget, batched writes, slow-consumer detection.

Producers (any task, synchronously) append byte strings; the connection's writer task takes
everything queued as one joined batch per `send_all`. `pending` counts bytes queued and not
yet written; when it passes `max_pending` the owner's `on_overflow` is called (the slow
consumer rule) and the queue drops what it holds, so memory stays within the budget.
"""

from __future__ import annotations

from collections.abc import Callable

import trio


class Outbound:
    __slots__ = ("chunks", "pending", "max_pending", "_on_overflow", "_waiter", "closed")

    def __init__(self, max_pending: int, on_overflow: Callable[[], None]) -> None:
        self.chunks: list[bytes] = []
        self.pending = 0
        self.max_pending = max_pending
        self._on_overflow = on_overflow
        self._waiter: trio.Event | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        """Queue `data`; never blocks."""
        self.chunks.append(data)
        self.pending += len(data)
        if self.pending > self.max_pending:
            self._overflow()
        elif self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    def write_msg(self, head: bytes, tail: bytes, data: bytes, size: int) -> None:
        """Queue one message: its control line in two parts and its data (`size` = total)."""
        chunks = self.chunks
        chunks.append(head)
        chunks.append(tail)
        chunks.append(data)
        self.pending += size
        if self.pending > self.max_pending:
            self._overflow()
        elif self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    def _overflow(self) -> None:
        self.chunks.clear()
        self.pending = 0
        if not self.closed:
            self.closed = True
            self._on_overflow()

    def discard(self) -> None:
        """Drop everything queued (the connection is going away)."""
        self.closed = True
        self.chunks.clear()
        self.pending = 0
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
