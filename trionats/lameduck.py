"""Lame duck mode: after the listeners close, tell peers, then close clients progressively and exit.

As nats-server's lameDuckMode (server.go): once `Server.enter_lame_duck()` has stopped the
accept loops, clients that take async INFOs (protocol >= 1, first PONG sent) get an INFO with
`"ldm": true` and no URLs of this server, so they reconnect elsewhere; the `lame_duck_hooks`
run (routes tell their peers). After `lame_duck_grace_period`, clients are closed one by one,
spread over what is left of `lame_duck_duration` (between interval/2 and interval apart, at most
a second apart), so a cluster's clients do not all reconnect at once. Then the server shuts down.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import trio

from .errors import Reason
from .protocol import encode

if TYPE_CHECKING:
    from .server import Server

#: Clients are never closed more than this many seconds apart (nats-server's cap).
MAX_CLOSE_INTERVAL = 1.0
#: What is left of the duration after the grace period, when that is not positive.
MIN_CLOSE_SPAN = 1.0


async def run_lame_duck(server: Server) -> None:
    options = server.options
    # A negative grace period is taken as its absolute value (nats-server's test hook).
    grace = abs(options.lame_duck_grace_period)
    await trio.sleep(0)  # let the accept loops finish closing their listeners
    clients = list(server.clients.values())
    if not clients:
        server.shutdown()
        return
    span = options.lame_duck_duration - grace
    if span <= 0:
        span = MIN_CLOSE_SPAN
    interval = min(span / len(clients), MAX_CLOSE_INTERVAL)
    announce(server)
    await trio.sleep(grace)
    server.log.info("Closing existing clients")
    for number, client in enumerate(clients, 1):
        client.close(Reason.SERVER_SHUTDOWN)
        if number == len(clients):
            break
        await trio.sleep(max(random.uniform(0, interval), interval / 2))
    server.shutdown()


def announce(server: Server) -> None:
    """Send the lame duck INFO to clients that can take it, and run the route hooks."""
    for hook in server.lame_duck_hooks:
        hook()
    own = set(server.own_connect_urls()) | set(server.own_ws_connect_urls())
    for client in list(server.clients.values()):
        if client.opts.protocol >= 1 and client.first_pong_sent and client.closed_reason is None:
            info = server.client_info(client)
            info.pop("nonce", None)
            # Only the other nodes' URLs: this one is going away.
            others = [url for url in info.pop("connect_urls", ()) if url not in own]
            if others:
                info["connect_urls"] = others
            info["ldm"] = True
            client.outbound.write(encode.info(info))
