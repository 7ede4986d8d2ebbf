"""prometheus-nats-exporter's series (`gnatsd_*`), made from the JSON endpoints' own dicts.

Existing NATS dashboards and alerts query the names the exporter gives to what it reads from
/varz, /connz, /routez, /subsz and /healthz. This module makes the same families, types,
labels and values from the dicts those endpoints return, so /metrics can stand in for the
exporter. How the exporter (collector/collector.go, connz.go, healthz.go) names things:

- /varz, /routez, /subsz: every JSON number becomes a gauge; nested objects are walked with
  the keys joined by `_` (`slow_consumer_stats_clients`); a few keys are skipped (`SKIPPED`);
  a string under one of `LABEL_KEYS` is either an RFC 3339 time, exported as Unix
  milliseconds, or a constant 1 with the text in a `value` label; lists, booleans and other
  strings are left out.
- /connz: its own collector sums the listed connections' pending bytes, subscriptions and
  traffic (counters) next to num_connections, total, offset and limit.
- /healthz: `status` (0 when ok) and `status_value` (1 when ok, the status in `value`).

A family is `<namespace>_<endpoint>_<flattened key>` (namespace `gnatsd`, or the exporter's
`-prefix`), labelled with `server_id`; its HELP text is the flattened key. The exporter's
-use_internal_server_id labels with /varz's server_id, which is what is used here (its default
is the monitoring URL; Prometheus's own `instance` label says that anyway).
"""

from __future__ import annotations

import datetime
import re
from typing import NamedTuple

NAMESPACE = "gnatsd"

#: Flattened names the exporter does not export (nested blocks it skips whole, like `leaf`).
SKIPPED = frozenset({
    "leaf", "trusted_operators_claim", "cluster_tls_timeout", "cluster_cluster_port",
    "cluster_auth_timeout", "gateway_port", "gateway_auth_timeout", "gateway_tls_timeout",
    "gateway_connect_retries",
})  # fmt: skip

#: JSON keys whose string values are exported (as a time, or as a `value` label).
LABEL_KEYS = frozenset({
    "server_id", "server_name", "version", "domain", "leader", "name", "start",
    "config_load_time",
})  # fmt: skip

#: The exporter's collectors served here: (endpoint, how it reads that endpoint's body).
#: `healthz_js_*` are its -healthz_js_enabled_only / -healthz_js_server_only collectors.
COLLECTORS = (
    ("connz", "connz"),
    ("healthz", "healthz"),
    ("healthz_js_enabled_only", "healthz"),
    ("healthz_js_server_only", "healthz"),
    ("routez", "generic"),
    ("subsz", "generic"),
    ("varz", "generic"),
)

#: /connz totals: (field, type); the per-connection ones are sums over the listed connections.
CONNZ_FIELDS = (
    ("num_connections", "gauge"), ("total", "gauge"), ("offset", "gauge"), ("limit", "gauge"),
)  # fmt: skip
CONNZ_SUMS = (
    ("pending_bytes", "gauge"), ("subscriptions", "gauge"), ("in_bytes", "counter"),
    ("out_bytes", "counter"), ("in_msgs", "counter"), ("out_msgs", "counter"),
)  # fmt: skip

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


class Family(NamedTuple):
    name: str
    kind: str  # "gauge" or "counter"
    help: str
    samples: list  # [(labels: tuple of (name, value) pairs, value)]


def flat_name(*path: str) -> str:
    """The exporter's name for a (nested) key: joined by `_`, `/` as `_`, no `__`, trimmed."""
    name = "_".join(path).replace("/", "_").strip("_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


def family_name(namespace: str, endpoint: str, *path: str) -> str:
    """The one naming rule: `<namespace>_<endpoint>_<flattened path>`."""
    return "_".join(part for part in (namespace, endpoint, flat_name(*path)) if part)


def valid_namespace(text: str) -> bool:
    return bool(_METRIC_NAME.fullmatch(text))


def unix_millis(text: str) -> int | None:
    """Milliseconds since the epoch of an RFC 3339 time (Go's time.UnixMilli), else None."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    try:
        stamp = datetime.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    except ValueError:  # a day or hour out of range: not a time to Go either
        return None
    nanos = int((fraction or "").ljust(9, "0")[:9])
    return round(stamp.timestamp()) * 1000 + nanos // 1_000_000


# --- the collectors ----------------------------------------------------------------------


def _generic(namespace: str, endpoint: str, body: dict, server: tuple) -> list[Family]:
    """collector.go's objectToMetrics: every number, label strings and times, nested too."""
    found: dict[str, Family] = {}

    def walk(node: dict, path: tuple) -> None:
        for key, value in node.items():
            here = (*path, key)
            name = flat_name(*here)
            if name in SKIPPED or name in found:
                continue
            if isinstance(value, dict):
                walk(value, here)
            elif isinstance(value, bool) or value is None:
                continue  # not a JSON number to Go's decoder
            elif isinstance(value, (int, float)):
                found[name] = Family(family_name(namespace, endpoint, name), "gauge", name,
                                     [(server, value)])  # fmt: skip
            elif isinstance(value, str) and key in LABEL_KEYS:
                millis = unix_millis(value)
                if millis is not None:
                    sample = (server, millis)
                else:
                    sample = ((*server, ("value", value)), 1)
                found[name] = Family(family_name(namespace, endpoint, name), "gauge", name,
                                     [sample])  # fmt: skip

    walk(body, ())
    return list(found.values())


def _connz(namespace: str, endpoint: str, body: dict, server: tuple) -> list[Family]:
    """connz.go's summary collector (not -connz_detailed): totals of the listed connections."""
    families = [
        Family(family_name(namespace, endpoint, field), kind, field, [(server, body[field])])
        for field, kind in CONNZ_FIELDS
    ]
    connections = body.get("connections") or []
    for field, kind in CONNZ_SUMS:
        total = sum(conn.get(field, 0) for conn in connections)
        families.append(Family(family_name(namespace, endpoint, field), kind, field,
                               [(server, total)]))  # fmt: skip
    return families


def _healthz(namespace: str, endpoint: str, body: dict, server: tuple) -> list[Family]:
    """healthz.go: `status` is 0 when ok (1 otherwise); `status_value` the other way round."""
    status = body.get("status", "")
    ok = status == "ok"
    return [
        Family(family_name(namespace, endpoint, "status"), "gauge", "status",
               [(server, 0 if ok else 1)]),
        Family(family_name(namespace, endpoint, "status_value"), "gauge", "status",
               [((*server, ("value", status)), 1 if ok else 0)]),
    ]  # fmt: skip


_READERS = {"generic": _generic, "connz": _connz, "healthz": _healthz}


def families(bodies: dict, server_id: str, namespace: str = NAMESPACE) -> list[Family]:
    """The exporter's families for `bodies` ({collector endpoint: JSON dict}), sorted by name.

    An endpoint missing from `bodies` is left out, as when the exporter is not told to read it.
    """
    server = (("server_id", server_id),)
    found: list[Family] = []
    for endpoint, reader in COLLECTORS:
        if endpoint in bodies:
            found.extend(_READERS[reader](namespace, endpoint, bodies[endpoint], server))
    # A key that makes no valid name (a `-` in it, say) is left out: one bad name would make
    # Prometheus reject the whole scrape.
    return sorted(
        (family for family in found if _METRIC_NAME.fullmatch(family.name)),
        key=lambda family: family.name,
    )


# --- the text format ---------------------------------------------------------------------


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def exposition(bodies: dict, server_id: str, namespace: str = NAMESPACE) -> str:
    """The families of `families()` in the Prometheus text format (HELP, TYPE, samples)."""
    lines = []
    for family in families(bodies, server_id, namespace):
        lines.append(f"# HELP {family.name} {_label(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            text = ",".join(f'{name}="{_label(str(text))}"' for name, text in labels)
            lines.append(f"{family.name}{{{text}}} {_number(value)}")
    return "\n".join(lines) + "\n" if lines else ""
