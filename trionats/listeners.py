"""Accept loops: take connections from a listener until cancelled, backing off when out of descriptors.

As Trio's serve_listeners does: running out of file descriptors (or memory for sockets) is
logged and waited out for ACCEPT_BACKOFF seconds instead of ending the listener.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

import trio

from . import defaults

_RETRY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


async def accept_forever(
    listener: trio.SocketListener,
    on_stream: Callable[[trio.SocketStream], None],
    log,
    what: str,
) -> None:
    """Hand every accepted stream to `on_stream` (synchronous: it starts the stream's task)."""
    while True:
        try:
            stream = await listener.accept()
        except OSError as exc:
            if exc.errno not in _RETRY_ERRNOS:
                raise
            log.error(f"Error accepting {what} connection: {exc}")
            await trio.sleep(defaults.ACCEPT_BACKOFF)
            continue
        on_stream(stream)
