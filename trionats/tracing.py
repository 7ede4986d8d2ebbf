"""Publishing message trace events: each traced message's record, as nats-server's JSON, to
the subject its `Nats-Trace-Dest` names.

The core records a traced message (core/msgtrace.py) and hands the record here when its
delivery is done. nats-server sends the event from the account's internal client, through
its system send loop: a message with no reply and no headers, from no connection, with
the server's ServerInfo (`seq` counting its system messages). Here the server owns one
`Dispatcher` for that internal sender, so the event takes the normal path: local
subscribers, and other servers through their routes. With `no_system_account` nats-server
has no send loop, and no event is sent (the message is still traced: trace-only delivers
nothing).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from . import defaults
from .core.dispatch import Dispatcher
from .monitor.snapshots import rfc3339
from .protocol.encode import go_json

if TYPE_CHECKING:
    from .core.msgtrace import Trace
    from .server import Server


class InternalSender:
    """The source of the server's own messages (nats-server's account internal client)."""

    is_route = False
    cid = 0

    def __init__(self) -> None:
        self.in_msgs = self.in_bytes = 0


class _Totals:
    """The internal sender's own totals, which the server's do not include."""

    def __init__(self) -> None:
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0


class TracePublisher:
    """Sends the trace events of the server's dispatchers (their `tracer`)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        #: nats-server's system message sequence (ServerInfo `seq`).
        self.seq = 0
        #: One sender per account an event was published in (its own totals: nats-server
        #: counts an event's deliveries, not its receipt).
        self._dispatchers: dict[str, Dispatcher] = {}

    def server_info(self) -> dict:
        """nats-server's ServerInfo of a system message, in its field order."""
        server = self.server
        options = server.options
        info: dict = {"name": server.name, "host": server.info_host_port()[0], "id": server.server_id}
        if server.cluster is not None:
            info["cluster"] = server.cluster.name
        info["ver"] = defaults.COMPAT_VERSION
        if options.server_tags:
            info["tags"] = list(options.server_tags)
        self.seq += 1
        info |= {
            "feature_flags": dict(defaults.FEATURE_FLAGS),
            "jetstream": server.jetstream is not None,
            "flags": 0,
            "seq": self.seq,
            "time": rfc3339(time.time_ns()),
        }
        return info

    def publish(self, trace: Trace) -> None:
        """The event of `trace`, to its destination (nothing without a system account)."""
        if self.server.options.no_system_account:
            return
        report = trace.report(self.server_info())
        for event in report["events"]:
            event["ts"] = rfc3339(event["ts"])
        body = go_json(report).encode() + b"\r\n"
        dest = trace.dest.encode()
        dispatch = self._dispatcher(trace.account)
        delivered = dispatch.message(dispatch.plan(dest), dest, b"", -1, body)
        stats = self.server.stats
        stats.out_msgs += delivered
        stats.out_bytes += delivered * (len(body) - 2)

    def _dispatcher(self, account: str) -> Dispatcher:
        """The internal sender of `account` (nats-server sends an event from the traced
        message's account's internal client)."""
        dispatch = self._dispatchers.get(account)
        if dispatch is None:
            sublist = self.server.accounts[account].sublist
            dispatch = Dispatcher(InternalSender(), sublist, _Totals(), trio.current_time)
            self._dispatchers[account] = dispatch
        return dispatch
