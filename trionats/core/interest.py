"""Local interest as routes see it: when to send RS+ and RS- for our subscriptions.

nats-server's rule (route-protocol.md section 3): a plain subject is announced with RS+ when
its first local subscription appears and withdrawn with RS- when its last one goes; a queue
group is announced with its member count on every change (the receiver replaces, not adds)
and withdrawn at zero. Only local interest is tracked here: interest learned from a route is
never passed on to another route. Plain synchronous code, no I/O: callers send the lines.
"""

from __future__ import annotations

from ..protocol import encode

Key = tuple[bytes, bytes, bytes | None]  # (account, subject, queue)


class LocalInterest:
    def __init__(self) -> None:
        self._counts: dict[Key, int] = {}

    def add(self, account: bytes, subject: bytes, queue: bytes | None = None) -> bytes | None:
        """A local subscription appeared; return the line to send to every route, if any."""
        key = (account, subject, queue)
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        if queue is not None:
            return encode.rs_plus(account, subject, queue, count)
        return encode.rs_plus(account, subject) if count == 1 else None

    def remove(self, account: bytes, subject: bytes, queue: bytes | None = None) -> bytes | None:
        """A local subscription went away; return the line to send to every route, if any."""
        key = (account, subject, queue)
        count = self._counts.get(key, 0)
        if count == 0:
            return None
        if count == 1:
            del self._counts[key]
            return encode.rs_minus(account, subject, queue)
        self._counts[key] = count - 1
        if queue is not None:
            return encode.rs_plus(account, subject, queue, count - 1)
        return None

    def dump(self) -> list[bytes]:
        """Every current interest line, for a route that just came up."""
        return [
            encode.rs_plus(account, subject, queue, count) if queue is not None
            else encode.rs_plus(account, subject)
            for (account, subject, queue), count in self._counts.items()
        ]  # fmt: skip

    def __len__(self) -> int:
        return len(self._counts)
