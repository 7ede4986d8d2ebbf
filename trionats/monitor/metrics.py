"""The /metrics endpoint: server totals in the Prometheus text exposition format (0.0.4).

Built from the same /varz (and /routez) dicts the JSON endpoints return, so both always agree.
Counters end in `_total` as Prometheus names them; every family has its HELP and TYPE lines.
Per-route families are labelled by the peer's server id and name, not by rid: trionats keeps
one route per peer, so a reconnect continues the same series (as a counter reset).
"""

from __future__ import annotations

import re

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

PREFIX = "nats_server_"

#: (metric name, type, /varz field, help text)
FAMILIES = (
    ("connections", "gauge", "connections", "Client connections currently open."),
    ("connections_total", "counter", "total_connections", "Client connections ever accepted."),
    ("subscriptions", "gauge", "subscriptions", "Subscriptions currently registered."),
    ("in_msgs_total", "counter", "in_msgs", "Messages received."),
    ("in_bytes_total", "counter", "in_bytes", "Payload bytes received (headers included)."),
    ("out_msgs_total", "counter", "out_msgs", "Messages sent."),
    ("out_bytes_total", "counter", "out_bytes", "Payload bytes sent (headers included)."),
    ("slow_consumers_total", "counter", "slow_consumers", "Connections closed as slow consumers."),
    ("stale_connections_total", "counter", "stale_connections",
     "Connections closed for missing PONGs."),
    ("internal_errors_total", "counter", "internal_errors",
     "Connections closed by an unexpected exception (a trionats bug; see the ERR log)."),
    ("in_client_msgs_total", "counter", "in_client_msgs", "Messages received from clients."),
    ("in_client_bytes_total", "counter", "in_client_bytes", "Payload bytes received from clients."),
    ("out_client_msgs_total", "counter", "out_client_msgs", "Messages sent to clients."),
    ("out_client_bytes_total", "counter", "out_client_bytes", "Payload bytes sent to clients."),
    ("routes", "gauge", "routes", "Route connections currently open."),
    ("remotes", "gauge", "remotes", "Servers this server has a route to."),
    ("leafnodes", "gauge", "leafnodes", "Leaf node connections currently open."),
    ("mem_bytes", "gauge", "mem", "Resident memory of the server process in bytes."),
    ("cpu_percent", "gauge", "cpu", "CPU use of the server process in percent."),
    ("uptime_seconds", "gauge", None, "Seconds since the server started."),
)  # fmt: skip

#: (metric name, type, /routez route field, help text): one sample per route.
ROUTE_FAMILIES = (
    ("route_in_msgs_total", "counter", "in_msgs", "Messages received over the route."),
    ("route_in_bytes_total", "counter", "in_bytes", "Payload bytes received over the route."),
    ("route_out_msgs_total", "counter", "out_msgs", "Messages sent over the route."),
    ("route_out_bytes_total", "counter", "out_bytes", "Payload bytes sent over the route."),
    ("route_pending_bytes", "gauge", "pending_size", "Bytes queued to the route, not yet sent."),
    ("route_subscriptions", "gauge", "subscriptions",
     "Subjects and queue groups the peer is interested in."),
    ("route_rtt_seconds", "gauge", "rtt", "Round-trip time of the route's last PING."),
)  # fmt: skip


#: (metric name, type, /leafz leaf field, help text): one sample per leaf node connection.
LEAF_FAMILIES = (
    ("leaf_in_msgs_total", "counter", "in_msgs", "Messages received over the leaf connection."),
    ("leaf_in_bytes_total", "counter", "in_bytes", "Payload bytes received over the leaf connection."),
    ("leaf_out_msgs_total", "counter", "out_msgs", "Messages sent over the leaf connection."),
    ("leaf_out_bytes_total", "counter", "out_bytes", "Payload bytes sent over the leaf connection."),
    ("leaf_subscriptions", "gauge", "subscriptions", "Subjects and queue groups the peer is interested in."),
    ("leaf_rtt_seconds", "gauge", "rtt", "Round-trip time of the leaf connection's last PING."),
)  # fmt: skip


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(varz: dict, routez: dict | None = None, leafz: dict | None = None) -> str:
    """The metrics text for one /varz snapshot and, if given, the matching /routez one.

    A family whose field the snapshot lacks is left out, as are route families without routes.
    """
    labels = f'server_id="{_label(varz["server_id"])}"'
    lines = [
        f"# HELP {PREFIX}info Server identity; the value is always 1.",
        f"# TYPE {PREFIX}info gauge",
        f'{PREFIX}info{{{labels},server_name="{_label(varz["server_name"])}",'
        f'version="{_label(varz["version"])}"}} 1',
    ]
    for name, kind, field, text in FAMILIES:
        if field is None:
            value = _uptime_seconds(varz)
        elif field in varz:
            value = varz[field]
        else:
            continue
        lines.append(f"# HELP {PREFIX}{name} {text}")
        lines.append(f"# TYPE {PREFIX}{name} {kind}")
        lines.append(f"{PREFIX}{name}{{{labels}}} {_number(value)}")
    routes = (routez or {}).get("routes") or []
    for name, kind, field, text in ROUTE_FAMILIES if routes else ():
        lines.append(f"# HELP {PREFIX}{name} {text}")
        lines.append(f"# TYPE {PREFIX}{name} {kind}")
        for route in routes:
            value = route[field]
            if field == "rtt":
                value = go_duration_seconds(value)
            route_labels = (f'{labels},remote_id="{_label(route["remote_id"])}",'
                            f'remote_name="{_label(route["remote_name"])}"')  # fmt: skip
            lines.append(f"{PREFIX}{name}{{{route_labels}}} {_number(value)}")
    leafs = (leafz or {}).get("leafs") or []
    for name, kind, field, text in LEAF_FAMILIES if leafs else ():
        lines.append(f"# HELP {PREFIX}{name} {text}")
        lines.append(f"# TYPE {PREFIX}{name} {kind}")
        for leaf in leafs:
            value = leaf[field]
            if field == "rtt":
                value = go_duration_seconds(value)
            leaf_labels = (f'{labels},leaf_id="{leaf["id"]}",leaf_name="{_label(leaf["name"])}",'
                           f'account="{_label(leaf["account"])}"')  # fmt: skip
            lines.append(f"{PREFIX}{name}{{{leaf_labels}}} {_number(value)}")
    return "\n".join(lines) + "\n"


_DURATION_PART = re.compile(r"([0-9.]+)(h|ms|µs|us|ns|m|s)")
_DURATION_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}


def go_duration_seconds(text: str) -> float:
    """Seconds of a Go duration string as /routez shows `rtt` (`1h2m3.5s`, `240µs`, `0s`)."""
    sign = -1.0 if text.startswith("-") else 1.0
    parts = _DURATION_PART.findall(text)
    return sign * sum(float(number) * _DURATION_UNIT[unit] for number, unit in parts)


def _number(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _uptime_seconds(varz: dict) -> float:
    from datetime import datetime

    def parse(stamp: str) -> float:
        whole, _, rest = stamp.rstrip("Z").partition(".")
        base = datetime.fromisoformat(whole + "+00:00").timestamp()
        return base + (float("0." + rest) if rest else 0.0)

    return round(parse(varz["now"]) - parse(varz["start"]), 3)
