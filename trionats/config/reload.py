"""Configuration reload: which option changes apply to a running server, and which refuse the reload.

`diff(old, new)` compares two Options trees field by field. If any changed field cannot be
applied live, the whole reload is refused with nats-server's message
`config reload not supported for <Field>: old=<a>, new=<b>` and nothing changes; otherwise the
server applies the returned changes. Field names in messages are nats-server's (Go) names, so
operators see the same text from both servers.
"""

from __future__ import annotations

import attrs

from ..errors import ConfigError
from ..options import ClusterOptions, Options

#: Options a running server applies on reload (what trionats acts on today and nats-server
#: hot-reloads). Everything else that changes makes the reload fail.
RELOADABLE = frozenset(
    {
        "debug",
        "trace",
        "trace_verbose",
        "logtime",
        "logtime_utc",
        "log_file",
        "log_format",
        "max_traced_msg_len",
        "max_payload",
        "max_control_line",
        "max_connections",
        "ping_interval",
        "ping_max",
        "write_deadline",
        "pid_file",
        "ports_file_dir",
        "no_fast_producer_stall",
        "tls",  # new client and HTTPS connections use the new block; open ones keep theirs
        "cluster",  # routes added/removed; listener, name: see _check_cluster
    }
)

#: nats-server's names for options, as its reload errors print them.
GO_NAMES = {
    "host": "Host",
    "port": "Port",
    "server_name": "ServerName",
    "max_subscriptions": "MaxSubs",
    "max_sub_tokens": "MaxSubTokens",
    "max_pending": "MaxPending",
    "max_connections": "MaxConn",
    "ping_max": "MaxPingsOut",
    "no_header_support": "NoHeaderSupport",
    "disable_sublist_cache": "NoSublistCache",
    "write_timeout": "WriteTimeout",
    "lame_duck_duration": "LameDuckDuration",
    "lame_duck_grace_period": "LameDuckGracePeriod",
    "log_size_limit": "LogSizeLimit",
    "log_max_num": "LogMaxFiles",
    "system_account": "SystemAccount",
    "no_system_account": "NoSystemAccount",
    "http_host": "HTTPHost",
    "http_port": "HTTPPort",
    "https_port": "HTTPSPort",
    "http_base_path": "HTTPBasePath",
    "max_closed_clients": "MaxClosedClients",
    "client_advertise": "ClientAdvertise",
    "allow_non_tls": "AllowNonTLS",
}


def go_name(field: str) -> str:
    return GO_NAMES.get(field) or "".join(part.capitalize() for part in field.split("_"))


def diff(old: Options, new: Options) -> dict[str, object]:
    """The changed reloadable fields and their new values; ConfigError if any other changed."""
    changes: dict[str, object] = {}
    for field in attrs.fields(Options):
        name = field.name
        if name == "config_file":
            continue
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if name == "cluster":
            _check_cluster(old.cluster, new.cluster)
        if name not in RELOADABLE:
            raise ConfigError(
                f"config reload not supported for {go_name(name)}: old={_show(before)}, "
                f"new={_show(after)}"
            )
        changes[name] = after
    return changes


def _check_cluster(old: ClusterOptions | None, new: ClusterOptions | None) -> None:
    """What a running cluster cannot change: where it listens (nats-server's messages), and
    its name (every peer would have to change it at once)."""
    old, new = old or ClusterOptions(), new or ClusterOptions()
    if old.host != new.host:
        raise ConfigError(
            f"config reload not supported for cluster host: old={old.host}, new={new.host}"
        )
    if old.port != new.port:
        raise ConfigError(
            f"config reload not supported for cluster port: old={old.port}, new={new.port}"
        )
    if old.name != new.name:
        raise ConfigError(
            f"config reload not supported for cluster name: old={old.name}, new={new.name}"
        )
    if old.permissions != new.permissions:  # the interest already exchanged would be stale
        raise ConfigError("config reload not supported for cluster permissions")
    if old.tls != new.tls:
        raise ConfigError("config reload not supported for cluster tls")


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
