"""What one leaf connection's peer has been told of our interest: when to send LS+ and LS-.

nats-server's smap rule (leafnode.go updateSmap): each (subject, queue) key has a count; a
plain subject is announced with LS+ when its count rises from zero and withdrawn with LS-
when it falls to zero; a queue group is announced with its count (the member weight) on
every change, and withdrawn at zero. Plain synchronous code: callers send the lines.
"""

from __future__ import annotations

from ..protocol.leaf import ls_minus, ls_plus

Key = tuple[bytes, bytes | None]  # (subject, queue)


class LeafInterest:
    def __init__(self) -> None:
        self._counts: dict[Key, int] = {}

    def change(self, subject: bytes, queue: bytes | None, delta: int) -> bytes | None:
        """`delta` more (or fewer) subscriptions on the key; the line to send, if any."""
        key = (subject, queue)
        count = self._counts.get(key, 0)
        if delta < 0 and count == 0:
            return None
        update = queue is not None or (count <= 0 < count + delta) or (count > 0 >= count + delta)
        count += delta
        if count > 0:
            self._counts[key] = count
        else:
            self._counts.pop(key, None)
        if not update:
            return None
        return ls_plus(subject, queue, count) if count > 0 else ls_minus(subject, queue)

    def dump(self) -> list[bytes]:
        """Every current interest line (sent once the connection is bound to its account)."""
        return [ls_plus(subject, queue, count) for (subject, queue), count in self._counts.items()]

    def __contains__(self, key: Key) -> bool:
        return key in self._counts

    def __len__(self) -> int:
        return len(self._counts)
