"""Configuration reload: which option changes apply to a running server, and which refuse the reload.

`diff(old, new)` compares two Options trees field by field. If any changed field cannot be
applied live, the whole reload is refused with nats-server's message
`config reload not supported for <Field>: old=<a>, new=<b>` and nothing changes; otherwise the
server applies the returned changes. Field names in messages are nats-server's (Go) names, so
operators see the same text from both servers.
"""

from __future__ import annotations

import attrs

from .. import defaults
from ..errors import ConfigError
from ..hostport import parse_host_port
from ..logging import redact_urls
from ..options import Authorization, ClusterOptions, Options, TLSOptions

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
        "syslog",
        "remote_syslog",
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
        # Live clients are re-authorized and their subscriptions re-checked (server.py).
        "authorization",
        "no_auth_user",  # only its removal, with its user: see _check_no_auth_user
        # Later INFOs' host and port (not connect_urls: fixed at startup, as nats-server).
        "client_advertise",
        "server_tags",  # /varz
    }
)

#: nats-server's names for options, as its reload errors print them.
GO_NAMES = {
    "leafnodes": "LeafNode",
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
    "operators": "TrustedOperators",
    "resolver": "AccountResolver",
    "resolver_preload": "ResolverPreloads",
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
        if name == "no_auth_user":
            _check_no_auth_user(old.no_auth_user, new)
        if name not in RELOADABLE:
            raise ConfigError(
                f"config reload not supported for {go_name(name)}: old={_show(before, name)}, "
                f"new={_show(after, name)}"
            )
        changes[name] = after
    return changes


def check_client_advertise(old: Options, new: Options) -> None:
    """A reload's new client_advertise is checked as nats-server does on reload (its
    message; at startup the same mistake reads differently, see Options.check)."""
    value = new.client_advertise
    if value and value != old.client_advertise:
        try:
            parse_host_port(value, 0)
        except ValueError as exc:
            raise ConfigError(f"invalid ClientAdvertise value of {value}, err={exc}") from None


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
    # (nats-server re-forms its routes for these; trionats' pools are fixed at start)
    if old.pool_size != new.pool_size:
        raise ConfigError("config reload not supported for cluster pool_size")
    if old.accounts != new.accounts:
        raise ConfigError("config reload not supported for cluster accounts")


def reload_lines(
    old: Options, new: Options, changes: dict[str, object], auth_timeouts: tuple[float, float]
) -> list[str]:
    """nats-server's `Reloaded:` lines for a reload's `changes`, in its order (the order of
    the fields of its Options struct), each naming what changed by nats-server's name.

    Never an options object: a block says only that it changed (`Reloaded: cluster`,
    `Reloaded: cluster routes`, `Reloaded: tls = enabled`), the authorization settings only
    which of them changed, so no password, token or credential in a route URL reaches the
    log. `auth_timeouts` are the effective authentication timeouts before and after (the TLS
    timeout moves the default)."""

    def show(name: str) -> str:
        value = changes[name]
        return str(value).lower() if isinstance(value, bool) else str(value)

    lines: list[str] = []
    if "client_advertise" in changes:
        lines.append(f"Reload: client_advertise = {changes['client_advertise']}")  # sic
    for name in ("trace", "debug", "trace_verbose", "logtime", "logtime_utc", "max_connections"):
        if name in changes:
            lines.append(f"Reloaded: {name} = {show(name)}")
    lines += authorization_lines(old, new)
    if "ping_interval" in changes:
        lines.append(f"Reloaded: ping_interval = {_duration(new.ping_interval)}")
    if "ping_max" in changes:
        lines.append(f"Reloaded: ping_max = {new.ping_max}")
    if auth_timeouts[0] != auth_timeouts[1]:
        lines.append(f"Reloaded: authorization timeout = {auth_timeouts[1]:g}")
    for name in ("max_control_line", "max_payload"):
        if name in changes:
            lines.append(f"Reloaded: {name} = {show(name)}")
    if "no_fast_producer_stall" in changes:
        negation = "not " if new.no_fast_producer_stall else ""
        lines.append(f"Reloaded: fast producers will {negation}be stalled")
    routes_changed, cluster_changed = _cluster_changes(old.cluster, new.cluster)
    if cluster_changed:
        lines.append("Reloaded: cluster")
    for name in ("pid_file", "ports_file_dir", "log_file", "syslog", "remote_syslog", "log_format"):
        if name in changes:
            lines.append(f"Reloaded: {name} = {redact_urls(show(name))}")
    if routes_changed:
        lines.append("Reloaded: cluster routes")
    if "tls" in changes:
        lines += _tls_lines(old.tls, new.tls)
    if "write_deadline" in changes:
        lines.append(f"Reloaded: write_deadline = {_duration(new.write_deadline)}")
    if "max_traced_msg_len" in changes:
        lines.append(f"Reloaded: max_traced_msg_len = {new.max_traced_msg_len}")
    if "server_tags" in changes:
        lines.append("Reloaded: tags")
    return lines


def authorization_lines(old: Options, new: Options) -> list[str]:
    """nats-server's lines for the authorization settings, in its order: which of them
    changed, never their values.

    It logs `authorization users` and `accounts` on every reload (its Users and Accounts
    options always compare as changed)."""
    before, after = old.authorization or Authorization(), new.authorization or Authorization()
    lines = []
    if _nkey_users(before) != _nkey_users(after):
        lines.append("authorization nkey users")
    lines += ["authorization users", "accounts"]
    if before.user != after.user:
        lines.append("authorization username")
    if before.password != after.password:
        lines.append("authorization password")
    if before.token != after.token:
        lines.append("authorization token")
    return [f"Reloaded: {line}" for line in lines]


def _cluster_changes(old: ClusterOptions | None, new: ClusterOptions | None) -> tuple[bool, bool]:
    """(routes changed, anything else in the block changed): nats-server keeps the routes
    apart from the cluster block and logs each on its own."""
    old, new = old or ClusterOptions(), new or ClusterOptions()
    routes_changed = old.routes != new.routes
    return routes_changed, attrs.evolve(old, routes=()) != attrs.evolve(new, routes=())


def _tls_lines(old: TLSOptions | None, new: TLSOptions | None) -> list[str]:
    """nats-server's lines for the client `tls` block: its timeout, whether TLS is on (when
    the certificates or verification changed), its pinned certificates, handshake first."""
    lines = []
    timeouts = [tls.timeout if tls is not None and tls.timeout > 0 else defaults.TLS_TIMEOUT
                for tls in (old, new)]  # fmt: skip
    if timeouts[0] != timeouts[1]:
        lines.append(f"Reloaded: tls timeout = {timeouts[1]:g}")
    if (old is None) != (new is None) or _tls_config(old) != _tls_config(new):
        lines.append(f"Reloaded: tls = {'enabled' if new is not None else 'disabled'}")
    pinned = [tls.pinned_certs if tls is not None else () for tls in (old, new)]
    if pinned[0] != pinned[1]:
        lines.append(f"Reloaded: {len(pinned[1])} pinned_certs")
    (first_before, delay_before), (first, delay) = _handshake_first(old), _handshake_first(new)
    if first != first_before:
        lines.append(f"Reloaded: Client TLS handshake first: {str(first).lower()}")
    if delay != delay_before:
        lines.append(f"Reloaded: Client TLS handshake first fallback delay: {_duration(delay)}")
    return lines


def _tls_config(block: TLSOptions | None) -> TLSOptions | None:
    """What nats-server builds its tls.Config from: the block without the settings it
    keeps beside it (timeout, pinned certificates, handshake first)."""
    if block is None:
        return None
    return attrs.evolve(block, timeout=0, pinned_certs=(), handshake_first=False)


def _handshake_first(block: TLSOptions | None) -> tuple[bool, float]:
    """nats-server's two settings: handshake first, and its fallback delay in seconds."""
    value = block.handshake_first if block is not None else False
    if isinstance(value, bool):
        return value, 0.0
    return True, float(value)


def _duration(seconds: float) -> str:
    from ..monitor.snapshots import go_duration  # the monitor: only when a reload logs

    return go_duration(round(seconds * 1e9))


def _nkey_users(auth: Authorization) -> list:
    """The nkey users as nats-server compares them (default permissions filled in)."""
    return [
        (user.nkey, user.permissions or auth.default_permissions, user.allowed_connection_types)
        for user in auth.users
        if user.nkey
    ]


def _check_no_auth_user(before: str, new: Options) -> None:
    """As nats-server: no_auth_user may only go away, and only with its user (a client that
    connected as that user is then closed like any user removed from the configuration)."""
    if before and not new.no_auth_user and before not in new.user_names():
        return
    raise ConfigError(
        f"config reload not supported for NoAuthUser: old={before}, new={new.no_auth_user}"
    )


def _jwt_subject(token: str) -> str:
    from ..auth import jwt

    try:
        return jwt.decode(token).subject
    except jwt.JWTError:  # (the loader verified it: cannot happen)
        return "?"


def _show(value: object, name: str = "") -> str:
    if name == "write_timeout" and value == "default":  # nats-server prints that policy as ""
        return ""
    if name == "accounts":  # the names (users and their passwords stay out of logs)
        return "[" + " ".join(account.name for account in value) + "]"
    if name == "operators":  # the operators' keys, not whole JWTs
        return "[" + " ".join(_jwt_subject(token) for token in value) + "]"
    if name == "resolver_preload":  # the accounts' keys
        return "[" + " ".join(key for key, _ in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if name == "leafnodes":  # remote URLs may hold passwords (other secrets have repr=False)
        from ..logging import redact_urls

        return redact_urls(str(value))
    return str(value)
