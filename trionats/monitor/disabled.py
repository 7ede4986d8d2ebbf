"""The endpoints of features trionats lacks, answered as nats-server answers with them off.

Gateways, leaf nodes, JetStream, Raft and nats-server's internal queues do not exist in
trionats, so /gatewayz, /leafz, /jsz, /raftz and /ipqueuesz answer what nats-server 2.15.1
answers when the feature is not configured: the same status, fields and 400 texts for the
same query parameters (a differential test compares them). Pure functions of the server id
and the time, like the builders in snapshots.py.
"""

from __future__ import annotations

from .snapshots import Clock, QueryError, parse_bool, parse_int, parse_subs, rfc3339

#: nats-server's /raftz answer (404, plain text) when no Raft group exists.
NO_RAFT_NODES = "No Raft nodes registered"


def gatewayz(server_id: str, query: dict, clock: Clock) -> dict:
    """/gatewayz without gateways: no name, host or port, and no connections either way."""
    parse_subs(query)
    parse_bool(query, "accs")
    return {
        "server_id": server_id,
        "now": rfc3339(clock.wall_ns),
        "outbound_gateways": {},
        "inbound_gateways": {},
    }


def leafz(server_id: str, query: dict, clock: Clock) -> dict:
    """/leafz without leaf node connections."""
    parse_bool(query, "subs")
    return {"server_id": server_id, "now": rfc3339(clock.wall_ns), "leafnodes": 0, "leafs": []}


#: /jsz's query parameters in the order nats-server decodes them (the first bad one answers).
_JSZ_PARAMETERS = (
    ("accounts", parse_bool), ("streams", parse_bool), ("consumers", parse_bool),
    ("direct-consumers", parse_bool), ("config", parse_bool), ("offset", parse_int),
    ("limit", parse_int), ("leader-only", parse_bool), ("raft", parse_bool),
    ("stream-leader-only", parse_bool),
)  # fmt: skip


def jsz(server_id: str, query: dict, clock: Clock) -> dict:
    """/jsz with JetStream disabled: zero statistics and `"disabled": true`.

    `leader-only` asks for the meta leader's answer only; with JetStream off no server is
    one, and nats-server says so with a 400.
    """
    values = {name: parse(query, name) for name, parse in _JSZ_PARAMETERS}
    if values["leader-only"]:
        raise QueryError("filtered response: not leader")
    return {
        "memory": 0,
        "storage": 0,
        "reserved_memory": 0,
        "reserved_storage": 0,
        "accounts": 0,
        "ha_assets": 0,
        "api": {"level": 0, "total": 0, "errors": 0},
        "server_id": server_id,
        "now": rfc3339(clock.wall_ns),
        "disabled": True,
        "config": {"max_memory": 0, "max_storage": 0},
        "streams": 0,
        "consumers": 0,
        "messages": 0,
        "bytes": 0,
        "total": 0,
    }


def ipqueuesz(query: dict) -> dict:
    """/ipqueuesz: nats-server's internal queues by name; trionats has none to show."""
    parse_bool(query, "all")
    return {}
