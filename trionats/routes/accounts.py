"""A route connection as one account sees it: its remote interest and its routed messages there.

Each account is its own subject space (core/accounts.py), and a route carries many accounts:
RS+ and RMSG name theirs (or, on a route pinned to one account, the route does). The delivery
core builds a plan from one sublist and knows nothing of accounts, so a route takes part in
an account through a `RouteAccount`: the "client" of the route's subscriptions in that
account's sublist, with the route's outbound queue and the heads that name the account
(`RMSG <account> <subject> `), and the `Dispatcher` that delivers the account's routed
messages to local subscribers. Counters are the route's: a view only forwards to them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import trio

from ..core.dispatch import Dispatcher
from ..protocol import encode

if TYPE_CHECKING:
    from ..core.accounts import Account
    from .connection import RouteConnection


class RouteAccount:
    """One account's view of one route connection (see the module docstring).

    `token` is what the route's lines name the account with: its name, or nothing on a
    route pinned to that account (nats-server then leaves the account out of RS+/RMSG)."""

    is_route = True
    delivery_deny = None

    def __init__(self, route: RouteConnection, account: Account, token: bytes) -> None:
        self.route = route
        self.account = account
        self.name = account.name.encode()
        self.token = token
        #: `RMSG <account> ` (or `RMSG ` when pinned): the start of every line we send.
        self.msg_start = b"RMSG " + token + b" " if token else b"RMSG "
        self.hmsg_start = b"H" + self.msg_start[1:]
        #: `forward(subject, reply, queues, header_size, data)`: a message of this account
        #: to the peer (a partial: no Python frame of its own on the per-message path).
        self.forward = functools.partial(route.forward_in, self)
        server = route.server
        #: Where this account's routed messages go (local subscribers only).
        self.dispatch = Dispatcher(self, account.sublist, server.stats, trio.current_time,
                                   inbound=True, tracer=server.tracing.publish)  # fmt: skip

    # --- what the delivery core and message tracing read from a route --------------------

    @property
    def outbound(self):
        return self.route.outbound

    @property
    def headers(self) -> bool:
        return self.route.headers

    @property
    def traces(self) -> bool:
        return self.route.traces

    @property
    def closed_reason(self):
        return self.route.closed_reason

    def heads(self, subject: bytes) -> tuple[bytes, bytes | None]:
        """The start of this account's message lines to the peer for `subject`: RMSG, and
        HMSG if it takes headers (a plain target of a delivery plan)."""
        return (self.msg_start + subject + b" ",
                self.hmsg_start + subject + b" " if self.headers else None)  # fmt: skip

    def line(self, subject: bytes, reply: bytes, queues, header_size: int, size: int) -> bytes:
        """A whole RMSG/HMSG line of this account to the peer."""
        return encode.rmsg_line(self.token, subject, reply, queues, header_size, size)

    def remove_sub(self, sub) -> None:
        """Route subscriptions never auto-unsubscribe (no max_msgs); kept for the interface."""

    # The route's counters, which the core adds to.
    @property
    def in_msgs(self) -> int:
        return self.route.in_msgs

    @in_msgs.setter
    def in_msgs(self, value: int) -> None:
        self.route.in_msgs = value

    @property
    def in_bytes(self) -> int:
        return self.route.in_bytes

    @in_bytes.setter
    def in_bytes(self, value: int) -> None:
        self.route.in_bytes = value

    @property
    def out_msgs(self) -> int:
        return self.route.out_msgs

    @out_msgs.setter
    def out_msgs(self, value: int) -> None:
        self.route.out_msgs = value

    @property
    def out_bytes(self) -> int:
        return self.route.out_bytes

    @out_bytes.setter
    def out_bytes(self, value: int) -> None:
        self.route.out_bytes = value

    def __getattr__(self, name: str):
        # Anything else (cid, remote_name, kind, rtt, ... for traces and monitoring) is the
        # route's own.
        return getattr(self.route, name)

    def __repr__(self) -> str:
        return f"<RouteAccount {self.account.name} of {self.route!r}>"
