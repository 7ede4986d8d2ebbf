"""/leafz in nats-server's shape (pure, like snapshots.py; /varz's `leaf` block is there).

Without leaf nodes configured, /leafz is monitor/disabled.py's answer (the same shape, no
connections). `?subs=1` lists each connection's subscriptions (the peer's interest, by
subject); `?acc=<name>` keeps the connections bound to that account.
"""

from __future__ import annotations

from .snapshots import Clock, _text, parse_bool, rfc3339, rtt_string


def open_leafs(server) -> list:
    """The registered leaf connections by id."""
    nodes = getattr(server, "leafnodes", None)
    if nodes is None:
        return []
    return sorted(nodes.connections.values(), key=lambda leaf: leaf.cid)


def leafz(server, query: dict, clock: Clock) -> dict:
    subs = parse_bool(query, "subs")
    account = query.get("acc", "")
    leafs = [leaf for leaf in open_leafs(server) if not account or leaf.account.name == account]
    return {
        "server_id": server.server_id,
        "now": rfc3339(clock.wall_ns),
        "leafnodes": len(leafs),
        "leafs": [_leaf_info(leaf, subs) for leaf in leafs],
    }


def _leaf_info(leaf, subs: bool) -> dict:
    info = {
        "id": leaf.cid,
        "name": leaf.remote_name,
        "is_spoke": leaf.spoke,
        "account": leaf.account.name,
        "ip": leaf.peer_host,
        "port": leaf.peer_port,
        "rtt": rtt_string(leaf.rtt),
        "in_msgs": leaf.in_msgs,
        "out_msgs": leaf.out_msgs,
        "in_bytes": leaf.in_bytes,
        "out_bytes": leaf.out_bytes,
        "subscriptions": len(leaf.remote_subs),
    }
    if subs and leaf.remote_subs:
        info["subscriptions_list"] = [_text(sub.subject) for sub in leaf.remote_subs.values()]
    info["compression"] = "off"  # trionats never compresses a leaf connection
    return info
