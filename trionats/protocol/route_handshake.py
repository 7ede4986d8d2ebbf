"""The route handshake's rules: what trionats says in route INFO/CONNECT, and how it judges a peer's.

Pure functions over decoded JSON fields (no sockets), following route-protocol.md sections 1,
8 and 13 and nats-server's processRouteConnect. What trionats sends is what interoperates
with nats-server 2.15 on default settings: protocol 3 (message tracing), no
`route_pool_size` (one connection per peer carrying every account), no `compression`, no
`lnoc`, and never a `lang` in CONNECT.
"""

from __future__ import annotations

import attrs

from .. import defaults

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
) -> dict:
    """Our route INFO, in nats-server's field order (omitted fields are left out)."""
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
    return info


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
