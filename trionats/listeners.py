"""Accept loops: take connections from a listener until cancelled, backing off when out of descriptors.

As Trio's serve_listeners does: running out of file descriptors (or memory for sockets) is
logged and waited out for ACCEPT_BACKOFF seconds instead of ending the listener. A failure
admitting one socket stays with that socket (containment.py): it is reported and the socket
closed, and the loop goes on.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

import trio

from . import defaults
from .containment import contained

_RETRY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


async def accept_forever(
    listener: trio.SocketListener,
    on_stream: Callable[[trio.SocketStream], None],
    log,
    what: str,
    *,
    stats,
) -> None:
    """Hand every accepted stream to `on_stream` (synchronous: it starts the stream's task,
    as its last step: if it raises, no task owns the stream and it is closed here)."""
    failure = f"Internal error accepting {what} connection, closing it"
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _RETRY_ERRNOS:
                raise
            log.error(f"Error accepting {what} connection: {exc}")
            await trio.sleep(defaults.ACCEPT_BACKOFF)
            continue
        with contained(log, stats, failure, on_error=stream.socket.close):
            on_stream(stream)
