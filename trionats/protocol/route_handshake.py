"""The route handshake's rules: what trionats says in route INFO/CONNECT, and how it judges a peer's.

Pure functions over decoded JSON fields (no sockets), following route-protocol.md sections 1,
8 and 13 and nats-server's processRouteConnect and addRoute. What trionats sends is what
interoperates with nats-server 2.15 on default settings: protocol 3 (message tracing),
`route_pool_size` (pooling: accounts spread over that many connections per peer by a hash
of their name, `pool_index`) with `route_pool_idx` and, on a route pinned to one account,
`route_account`; no `compression`, no `lnoc`, and never a `lang` in CONNECT.
"""

from __future__ import annotations

import attrs

from .. import defaults
from ..errors import go_quote

#: Route protocol level announced: 2 = accounts, 3 = message tracing (core/msgtrace.py): a
#: peer forwards traced messages, trace-only ones too, and expects this server's own event.
ROUTE_PROTO = 3

ROUTE_PORT_ERROR = "attempted to connect to route port"
INCORRECT_PORT = "Incorrect Port"
WRONG_GATEWAY = "Wrong Gateway"
CLUSTER_NAME_CONFLICT = "Cluster Name Conflict"


def route_info(
    *,
    server_id: str,
    server_name: str,
    host: str,
    port: int,
    cluster: str,
    dynamic: bool,
    connect_urls: list[str],
    max_payload: int = defaults.MAX_PAYLOAD,
    headers: bool = True,
    auth_required: bool = False,
    tls_required: bool = False,
    ip: str = "",
    permissions=None,
    ws_connect_urls: list[str] = (),
    pool_size: int = 0,
    pool_idx: int = 0,
    account: str = "",
) -> dict:
    """Our route INFO, in nats-server's field order (omitted fields are left out).
    `pool_size` <= 0: no pooling (no `route_pool_size`)."""
    info: dict = {
        "server_id": server_id,
        "server_name": server_name,
        "version": defaults.COMPAT_VERSION,
        "proto": ROUTE_PROTO,
        "host": host,
        "port": port,
        "headers": headers,
    }
    if auth_required:
        info["auth_required"] = True
    if tls_required:  # cluster TLS is always mutual
        info["tls_required"] = True
        info["tls_verify"] = True
    info["max_payload"] = max_payload
    if ip:
        info["ip"] = ip
    info["cluster"] = cluster
    if dynamic:
        info["cluster_dynamic"] = True
    if connect_urls:
        info["connect_urls"] = list(connect_urls)
    if ws_connect_urls:  # with a websocket listener: what its clients may reconnect to
        info["ws_connect_urls"] = list(ws_connect_urls)
    if permissions is not None:  # peers see what we import and export
        for key, block in (("import", permissions.import_), ("export", permissions.export)):
            if block is not None:
                shown = {"allow": list(block.allow)} if block.allow is not None else {}
                if block.deny:
                    shown["deny"] = list(block.deny)
                info[key] = shown
    if pool_size > 0:
        info["route_pool_size"] = pool_size
    if pool_idx:
        info["route_pool_idx"] = pool_idx
    if account:
        info["route_account"] = account
    return info


def pool_index(pool_size: int, account: str) -> int:
    """The pool connection an account's interest and messages take: the same on every
    server for the same pool size (nats-server's computeRoutePoolIdx: FNV-1a, 32 bits,
    of the name, modulo the size; 0 without pooling)."""
    if pool_size <= 1:
        return 0
    digest = 0x811C9DC5
    for byte in account.encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return digest % pool_size


@attrs.frozen
class Placement:
    """Where a registered route connection goes (nats-server's addRoute): `error` (the -ERR
    text, then a Protocol Violation close) or a slot: `pooled` False for a peer that does
    not pool (one connection, every account), else the pool index, or the pinned account."""

    error: str | None = None
    pooled: bool = False
    index: int = 0
    account: str = ""
    size: int = 1


def place_route(info: dict, *, pool_size: int, solicited: bool, account: str = "") -> Placement:
    """Judge a peer's first route INFO for pooling, as nats-server's addRoute does.

    `pool_size`: ours (<= 0: no pooling); `account`: the account of a route we dialed
    pinned to it. A peer that announces no pool size (or our pooling off) gets one
    connection for every account, and no pinned route; a dialer's pool index must be in
    range of the larger of both sizes; an acceptor's must not be set."""
    theirs = info.get("route_pool_size", 0)
    account = account or (info.get("route_account", "") if not solicited else "")
    size = max(pool_size, theirs, 1)
    if theirs <= 0 or pool_size < 0:
        if account:
            return Placement(error=f"Not possible to have a dedicated route for account "
                                   f"{go_quote(account)} between those servers")  # fmt: skip
        return Placement(pooled=False)
    index = info.get("route_pool_idx", 0)
    if solicited:
        if index != 0:
            return Placement(error=f"Route pool index should not be set but is set to {index}")
    elif index < 0 or index >= size:
        return Placement(error=f"Invalid route pool index: {index} - pool size is {theirs}")
    return Placement(pooled=True, index=index, account=account, size=size)


def route_connect(
    *,
    server_id: str,
    cluster: str,
    dynamic: bool,
    user: str = "",
    password: str = "",
    tls_required: bool = False,
) -> dict:
    """Our CONNECT on a route we dialed (`name` is our server id; never a `lang`)."""
    connect: dict = {
        "echo": True,
        "verbose": False,
        "pedantic": False,
    }
    if user:
        connect["user"] = user
        connect["pass"] = password
    connect.update(
        {"tls_required": tls_required, "headers": True, "name": server_id, "cluster": cluster}
    )
    if dynamic:
        connect["cluster_dynamic"] = True
    return connect


@attrs.frozen
class Verdict:
    """The acceptor's judgement of a route CONNECT (after authentication).

    `error` is the -ERR text to send before closing with `reason`, None if accepted. When
    accepted, `adopt_cluster` is a cluster name to take over from the peer (we had a
    dynamic one) and `adopt_static` says the new name was configured on the peer.
    """

    error: str | None = None
    reason: str | None = None
    adopt_cluster: str | None = None
    adopt_static: bool = False
    remote_id: str = ""
    headers: bool = False


def check_route_connect(
    fields: dict, *, cluster: str, dynamic: bool, headers_supported: bool = True
) -> Verdict:
    """Judge a peer's route CONNECT as nats-server's processRouteConnect does.

    nats-server authenticates first (the caller's job); then: a `lang` (a client on the route
    port), a `gateway`, the cluster name. A dynamic name yields to a configured one, or to a
    dynamic one that sorts higher.
    """
    if fields.get("lang"):
        return Verdict(error=ROUTE_PORT_ERROR, reason=INCORRECT_PORT)
    gateway = fields.get("gateway") or ""
    if gateway:
        text = f'Rejecting connection from gateway "{gateway}" on the Route port'
        return Verdict(error=text, reason=WRONG_GATEWAY)
    theirs = fields.get("cluster") or ""
    their_dynamic = bool(fields.get("cluster_dynamic"))
    adopt = None
    if theirs != cluster:
        if dynamic and (not their_dynamic or cluster < theirs):
            adopt = theirs
        else:
            text = f'Rejecting connection, cluster name "{theirs}" does not match "{cluster}"'
            return Verdict(error=text, reason=CLUSTER_NAME_CONFLICT)
    return Verdict(
        adopt_cluster=adopt,
        adopt_static=adopt is not None and not their_dynamic,
        remote_id=str(fields.get("name") or ""),
        headers=headers_supported and bool(fields.get("headers")),
    )


SELF = "self"
SAME_NAME = "same name"


def check_route_info(fields: dict, *, server_id: str, server_name: str) -> str | None:
    """Why a peer's first route INFO ends the route silently, or None if it may register.

    A route to ourselves (our own server id) is closed and never retried; a peer using our
    server name is closed as well (nats-server does so without -ERR).
    """
    if fields.get("server_id") == server_id:
        return SELF
    if server_name and fields.get("server_name") == server_name:
        return SAME_NAME
    return None
