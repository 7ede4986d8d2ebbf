"""The /metrics endpoint: server totals in the Prometheus text exposition format (0.0.4).

Built from the same /varz dict the JSON endpoint returns, so both always agree. Counters end
in `_total` as Prometheus names them; every family has its HELP and TYPE lines.
"""

from __future__ import annotations

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
    ("routes", "gauge", "routes", "Route connections currently open."),
    ("mem_bytes", "gauge", "mem", "Resident memory of the server process in bytes."),
    ("cpu_percent", "gauge", "cpu", "CPU use of the server process in percent."),
    ("uptime_seconds", "gauge", None, "Seconds since the server started."),
)  # fmt: skip


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(varz: dict) -> str:
    """The metrics text for one /varz snapshot."""
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
        else:
            value = varz[field]
        lines.append(f"# HELP {PREFIX}{name} {text}")
        lines.append(f"# TYPE {PREFIX}{name} {kind}")
        lines.append(f"{PREFIX}{name}{{{labels}}} {_number(value)}")
    return "\n".join(lines) + "\n"


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
