"""Configuration files -> the frozen Options tree: NATS conf (and JSON) or TOML, every problem at once.

A table per block maps each key nats-server accepts (case-insensitive, with its aliases) to an
Options field and a converter. Walking the parsed file converts every value, and collects a
`Problem` with the file:line:column of every unknown key or bad value instead of stopping at
the first. The converted plain dicts are then structured into the attrs classes by cattrs.
Keys that name nats-server features trionats will not have (JetStream, leaf nodes, ...) get
their own message, so nobody mistakes them for a typo.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import cattrs

from .. import defaults
from .. import options as opts
from ..core.accounts import GLOBAL_ACCOUNT
from ..errors import ConfigError
from ..hostport import split_host_port
from ..logging import redact_urls
from .natsconf import ConfigSyntaxError, ConfList, ConfMap, Position, parse_file


@attrs.frozen
class Problem:
    position: Position | None
    message: str
    #: A warning: nats-server starts anyway but `nats-server -t` fails on it.
    warning: bool = False

    def __str__(self) -> str:
        if self.position is None:
            return self.message
        p = self.position
        return f"{p.file}:{p.line}:{p.column}: {self.message}"


class _Bad(Exception):
    """A value could not be converted; the walker adds the position."""


# --- value converters: (value) -> converted, raising _Bad ---------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds: "1h30m", "500ms", "1.5s", "-2m", "0"."""
    body = text
    sign = 1.0
    if body[:1] in "+-":
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(body):
        match = _DURATION_PART.match(body, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected a string, got {_kind(value)}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"expected an integer, got {_kind(value)}")
    return value


_size = _int  # the conf parser already turned 2MB, 1Gi, ... into integers

_INT32_MAX = 2**31 - 1


def _size32(value: Any) -> int:
    """max_payload, max_control_line: nats-server keeps them in an int32."""
    size = _size(value)
    if size > _INT32_MAX:
        raise _Bad("value is too big")
    return size


def _sub_tokens(value: Any) -> int:
    tokens = _int(value)
    if tokens > 255:
        raise _Bad("value is too big")
    if tokens <= 0:
        raise _Bad("value can not be negative")  # nats-server's words, for 0 too
    return tokens


def _write_timeout(value: Any) -> str:
    """The write deadline policy (case-sensitive, as nats-server)."""
    text = _str(value)
    if text not in ("default", "close", "retry"):
        raise _Bad("must be 'default', 'close' or 'retry'")  # nats-server's words
    return text


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected a boolean, got {_kind(value)}")
    return value


class _Warn(Exception):
    """The value is accepted (`value`) but nats-server warns about it: `-t` fails on it."""

    def __init__(self, value: Any, message: str) -> None:
        super().__init__(message)
        self.value = value


def _duration(value: Any) -> float:
    """A duration string ("2m"); a plain integer is taken as seconds, with nats-server's
    warning. A float is an error, as in nats-server."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise _Bad(str(exc)) from None
    if isinstance(value, int) and not isinstance(value, bool):
        raise _Warn(float(value), "should be converted to a duration")
    raise _Bad(f"expected a duration, got {_kind(value)}")


def _seconds(value: Any) -> float:
    """Timeouts (authorization, tls): seconds as an integer or float, or a duration string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return _duration(value)


def _duration_string(value: Any) -> float:
    """Durations nats-server only accepts as strings (lame_duck_*)."""
    if not isinstance(value, str):
        raise _Bad(f"expected a duration string like \"30s\", got {_kind(value)}")
    return _duration(value)


def _lame_duck_duration(value: Any) -> float:
    seconds = _duration_string(value)
    if seconds < 30:
        raise _Bad(f"invalid lame_duck_duration of {value}, minimum is 30 seconds")
    return seconds


def _lame_duck_grace_period(value: Any) -> float:
    seconds = _duration_string(value)
    if seconds < 0:
        raise _Bad("invalid lame_duck_grace_period, needs to be positive")
    return seconds or defaults.LAME_DUCK_GRACE_PERIOD  # 0 means the default, as nats-server


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(_str(item) for item in value)
    raise _Bad(f"expected a string or a list of strings, got {_kind(value)}")


def _choice(*choices: str) -> Callable[[Any], str]:
    """One of a few words, case-sensitive as in nats-server (`CLOSE` is refused)."""

    def convert(value: Any) -> str:
        text = _str(value)
        if text not in choices:
            raise _Bad(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return convert


def _handshake_first(value: Any) -> bool | float:
    """A boolean, or a string: true/on, false/off, auto/auto_fallback, or a fallback delay."""
    if isinstance(value, bool):
        return value
    word = _str(value).lower()
    if word in ("true", "on", "false", "off"):
        return word in ("true", "on")
    if word in ("auto", "auto_fallback"):
        return 0.05
    return _duration(value)


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    """websocket `headers`: a map of header name -> string value, names as written."""
    if not isinstance(value, dict):
        raise _Bad(f"expected a map of header names to values, got {_kind(value)}")
    pairs = []
    for name, item in value.items():
        if not isinstance(item, str):
            raise _Bad(f'header "{name}": expected a string, got {_kind(item)}')
        pairs.append((name, item))
    return tuple(pairs)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


# --- operator mode (nats-server's `operator`, `resolver`, `resolver_preload`) -------------------

#: Every encoded JWT starts so (nats-server's jwtPrefix): an `operator` value that is no
#: readable file but starts so is the JWT itself.
_JWT_PREFIX = "eyJ"
_NOT_YET_RESOLVER = (
    "is not supported by trionats yet: only the memory resolver (resolver: MEMORY with "
    "resolver_preload)"
)


def _operators(value: Any) -> tuple[str, ...]:
    """`operator`: JWT file paths or inline JWTs (one or a list) -> the operator JWTs,
    each decoded and verified now, as nats-server does when it reads the file."""
    from ..auth import jwt

    tokens = []
    for item in _strings(value):
        try:
            text = Path(item).read_text()
        except (OSError, ValueError) as exc:
            if not item.startswith(_JWT_PREFIX):
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise _Bad(f"error parsing operator JWT: open {item}: {reason}") from None
            text = item
        token = jwt.parse_decorated(text).strip()
        try:
            jwt.decode_operator(token)
        except jwt.JWTError as exc:
            raise _Bad(f"error parsing operator JWT: {exc}") from None
        tokens.append(token)
    return tuple(tokens)


def _resolver(value: Any) -> str:
    """`resolver`: MEM or MEMORY (or a map of that `type`); URL and directory resolvers are
    refused until trionats has them."""
    if isinstance(value, str):
        if re.search(r"(?i)(MEM|MEMORY)\s*", value):
            return "MEMORY"
        if re.match(r"(?i)URL", value.strip()):
            raise _Bad(f"the URL resolver {_NOT_YET_RESOLVER}")
    elif isinstance(value, dict):
        kinds = [item for key, item in value.items() if key.lower() == "type"]
        kind = str(kinds[-1]).upper() if kinds else ""
        if kind in ("MEM", "MEMORY"):
            return "MEMORY"
        if kind in ("FULL", "CACHE"):
            raise _Bad(f"the {kind} resolver {_NOT_YET_RESOLVER}")
    else:
        raise _Bad(f"error parsing operator resolver, wrong type {_kind(value)}")
    raise _Bad('error parsing account resolver, should be MEM or  URL("url") or a map '
               "containing dir and type state=[FULL|CACHE])")  # fmt: skip


def _resolver_preload(value: Any) -> tuple[tuple[str, str], ...]:
    """`resolver_preload { <account public key>: <account JWT> }`, each JWT verified."""
    from ..auth import jwt

    if not isinstance(value, dict):
        raise _Bad("preload should be a map of account_public_key:account_jwt")
    pairs = []
    for key, token in value.items():
        if not isinstance(token, str):
            raise _Bad("preload map value should be a string JWT")
        try:
            jwt.decode_account(token)
        except jwt.JWTError:
            raise _Bad(f"invalid account JWT (for {key})") from None
        pairs.append((key, token))
    return tuple(pairs)


def _check_operator_mode(conf_out: dict, problems: list[Problem], positions: dict) -> None:
    """nats-server's validateTrustedOperators: an operator needs a resolver and excludes
    configured accounts and users; the system account comes from the operator's JWT unless
    configured, and must then be the same."""
    from ..auth import jwt

    operators = conf_out.get("operators")
    where = positions.get("operators")
    if not operators:
        for key in ("resolver", "resolver_preload"):
            if conf_out.get(key):  # nats-server ignores it: so does trionats, with a warning
                problems.append(Problem(positions.get(key), f"{key} has no effect without an "
                                                            "operator", warning=True))  # fmt: skip
        return
    if not conf_out.get("resolver") and positions.get("resolver") is None:  # (else: refused)
        problems.append(Problem(where, "operators require an account resolver to be configured"))
    if conf_out.get("accounts"):
        problems.append(Problem(positions.get("accounts"),
                                "operators do not allow Accounts to be configured directly"))  # fmt: skip
    auth = conf_out.get("authorization")
    if isinstance(auth, dict) and auth.get("users"):
        problems.append(Problem(positions.get("authorization"),
                                "operators do not allow users to be configured directly"))  # fmt: skip
    claims = [jwt.decode_operator(token) for token in operators]
    own = [operator.system_account for operator in claims if operator.system_account]
    configured = conf_out.get("system_account")
    if configured:
        if own and configured not in own:
            problems.append(Problem(positions.get("system_account"),
                                    "system_account in config and operator JWT must be identical"))  # fmt: skip
    elif len(claims) == 1 and claims[0].system_account:
        conf_out["system_account"] = claims[0].system_account
    for key, _ in conf_out.get("resolver_preload", ()):
        if not re.fullmatch(r"A[A-Z2-7]{55}", key):
            problems.append(Problem(positions.get("resolver_preload"),
                                    f'resolver_preload: "{key}" is not an account public key'))  # fmt: skip


# --- the schema -----------------------------------------------------------------------------------


@attrs.frozen
class Field:
    name: str  # the attribute of the options class
    convert: Callable[[Any], Any] | None = None  # None: a nested block, see `block`
    block: Schema | None = None
    #: Special keys that set several fields (`listen: host:port`).
    setter: Callable[[Any, dict], None] | None = None


@attrs.frozen
class Schema:
    cls: type
    fields: dict[str, Field]  # lower-case key (every alias) -> field

    @classmethod
    def of(cls, target: type, entries: list[tuple[tuple[str, ...], Field]]) -> Schema:
        table = {}
        for names, field in entries:
            for name in names:
                table[name.lower()] = field
        return cls(target, table)


def _host_port(host_field: str, port_field: str) -> Callable[[Any, dict], None]:
    """`listen: host:port` or `listen: port` (nats-server's parseListen; a string needs the
    port, and `:port` sets the host to "", all interfaces)."""

    def apply(value: Any, out: dict) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            out[port_field] = value
            return
        if not isinstance(value, str):
            raise _Bad(f"expected port or host:port, got {_kind(value)}")
        try:
            host, port = split_host_port(value)
        except ValueError:
            raise _Bad(f"could not parse address string \"{value}\"") from None
        if not re.fullmatch(r"[+-]?\d+", port):
            raise _Bad(f"could not parse port \"{port}\"")
        out[host_field] = host or defaults.DEFAULT_HOST  # nats-server's baseline
        out[port_field] = int(port)

    return apply


def _permission_list(value: Any) -> dict:
    """publish/subscribe: a string, a list (allow), or a map with allow and/or deny."""
    if isinstance(value, str | list):
        return {"allow": _strings(value)}
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            lowered = key.lower()
            if lowered == "allow":
                result["allow"] = _strings(item)
            elif lowered == "deny":
                result["deny"] = _strings(item)
            else:
                raise _Bad(f'unknown field "{key}" in a permission (allow, deny)')
        return result
    raise _Bad(f"expected a subject, a list or an allow/deny map, got {_kind(value)}")


def _allow_responses(value: Any) -> dict | None:
    if isinstance(value, bool):
        return {} if value else None
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            lowered = key.lower()
            if lowered in ("max", "max_msgs", "max_messages", "max_responses"):
                result["max_msgs"] = _int(item)
            elif lowered in ("expires", "expiration", "ttl"):
                result["expires"] = _duration_string(item)
            else:
                raise _Bad(f'unknown field "{key}" in allow_responses (max, expires)')
        return result
    raise _Bad(f"expected a boolean or a map, got {_kind(value)}")


_COMPRESSION_MODES = (
    "off", "disabled", "accept", "on", "enabled", "s2_auto", "s2_uncompressed", "s2_fast",
    "s2_better", "s2_best",
)  # fmt: skip


def _compression(value: Any) -> str:
    """cluster.compression: a boolean (true = s2_fast), a mode, or a map with `mode`."""
    if isinstance(value, bool):
        return "s2_fast" if value else "off"
    if isinstance(value, dict):
        modes = [item for key, item in value.items() if key.lower() == "mode"]
        value = modes[-1] if modes else "accept"
    mode = _str(value).lower()
    if mode not in _COMPRESSION_MODES:
        raise _Bad(f"unknown compression mode {value!r}")
    return mode


PERMISSIONS = Schema.of(
    opts.Permissions,
    [
        (("publish", "pub", "import"), Field("publish", _permission_list)),
        (("subscribe", "sub", "export"), Field("subscribe", _permission_list)),
        (("allow_responses", "publish_allow_responses"), Field("allow_responses", _allow_responses)),
    ],
)

_CONNECTION_TYPES = ("STANDARD", "WEBSOCKET", "LEAFNODE", "MQTT", "IN_PROCESS")


def _connection_types(value: Any) -> tuple[str, ...]:
    types = tuple(item.upper() for item in _strings(value))
    for item in types:
        if item not in _CONNECTION_TYPES:
            raise _Bad(f'unknown connection type "{item}"')
    return types


USER = Schema.of(
    opts.User,
    [
        (("user", "username"), Field("user", _str)),
        (("pass", "password"), Field("password", _str)),
        (("nkey",), Field("nkey", _str)),
        (("permissions", "permission", "authorization"), Field("permissions", block=PERMISSIONS)),
        (
            ("allowed_connection_types", "connection_types", "clients"),
            Field("allowed_connection_types", _connection_types),
        ),
    ],
)

AUTHORIZATION = Schema.of(
    opts.Authorization,
    [
        (("user", "username"), Field("user", _str)),
        (("pass", "password"), Field("password", _str)),
        (("token",), Field("token", _str)),
        (("timeout",), Field("timeout", _seconds)),
        (("users",), Field("users", block=USER)),
        (
            ("default_permissions", "default_permission", "permissions"),
            Field("default_permissions", block=PERMISSIONS),
        ),
    ],
)

# --- JetStream: `jetstream` (bool, "enabled"/"disabled" or a map), at the top and per account -----


def _js_sync(value: Any, out: dict) -> None:
    """sync_interval: a duration, or "always" (sync after every write)."""
    if isinstance(value, str) and value.lower() == "always":
        out["sync_always"] = True
        return
    out["sync_interval"] = _duration(value)


def _js_size(value: Any) -> int:
    size = _size(value)
    if size < -1:
        raise _Bad("value can not be negative")
    return size


JETSTREAM = Schema.of(
    opts.JetStreamOptions,
    [
        (("enabled", "enable"), Field("enabled", _bool)),
        (("store_dir", "storedir", "store"), Field("store_dir", _str)),
        (("max_memory_store", "max_mem_store", "max_mem"), Field("max_memory_store", _js_size)),
        (("max_file_store", "max_file"), Field("max_file_store", _js_size)),
        (("domain",), Field("domain", _str)),
        (("sync_interval", "sync"), Field("", setter=_js_sync)),
        (("strict",), Field("strict", _bool)),
        (("unique_tag",), Field("unique_tag", _str)),
        (("max_buffered_msgs",), Field("max_buffered_msgs", _int)),
        (("max_buffered_size",), Field("max_buffered_size", _size)),
        (("request_queue_limit",), Field("request_queue_limit", _int)),
    ],
)

#: `jetstream` keys nats-server has that trionats does not act on yet (encryption, TPM,
#: server-wide account limits, clustering's meta layer): refused, never ignored.
JETSTREAM_NOT_YET = {
    "key", "ek", "encryption_key", "prev_key", "prev_ek", "prev_encryption_key", "cipher",
    "extension_hint", "limits", "tpm", "max_outstanding_catchup", "info_queue_limit",
    "meta_compact", "meta_compact_size", "meta_compact_sync", "max_concurrent_io",
}  # fmt: skip

ACCOUNT_JETSTREAM = Schema.of(
    opts.AccountJetStream,
    [
        (("max_memory", "max_mem", "mem", "memory"), Field("max_memory", _js_size)),
        (("max_store", "max_file", "max_disk", "store", "disk"), Field("max_store", _js_size)),
        (("max_streams", "streams"), Field("max_streams", _int)),
        (("max_consumers", "consumers"), Field("max_consumers", _int)),
        (("max_ack_pending",), Field("max_ack_pending", _int)),
        (("mem_max_stream_bytes", "memory_max_stream_bytes"),
         Field("memory_max_stream_bytes", _js_size)),
        (("disk_max_stream_bytes", "store_max_stream_bytes"),
         Field("storage_max_stream_bytes", _js_size)),
        (("max_bytes_required", "max_stream_bytes", "max_bytes"),
         Field("max_bytes_required", _bool)),
    ],
)


def _js_switch(value: Any) -> bool | None:
    """`jetstream: true|false|enabled|disabled` (None: a map follows); nats-server's words."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.lower()
        if word in ("enabled", "enable"):
            return True
        if word in ("disabled", "disable"):
            return False
        raise _Bad(f"Expected 'enabled' or 'disabled' for string value, got '{value}'")
    if isinstance(value, dict):
        return None
    raise _Bad(f"Expected map, bool or string to define JetStream, got {_kind(value)}")


def _convert_jetstream(schema: Schema, value: Any, problems: list[Problem], key: str):
    """A `jetstream` value: None when off, else the block's fields (a switch: defaults)."""
    switch = _js_switch(value)
    if switch is not None:
        return {} if switch else None
    positions = getattr(value, "positions", {})
    known = ConfMap()
    known.positions = positions
    known.variables = getattr(value, "variables", set())
    for name, item in value.items():
        if schema is JETSTREAM and name.lower() in JETSTREAM_NOT_YET:
            text = f'"{key}.{name}" is not supported by trionats yet'
            problems.append(Problem(positions.get(name), text))
        else:
            known[name] = item
    block: dict = {}
    _walk(schema, known, block, problems, f" in {key}")
    return block


ACCOUNT = Schema.of(
    opts.AccountOptions,
    [
        (("users",), Field("users", block=USER)),
        (("default_permissions",), Field("default_permissions", block=PERMISSIONS)),
        (("jetstream",), Field("jetstream", block=ACCOUNT_JETSTREAM)),
    ],
)

#: Keys of an account that name features of accounts trionats does not serve yet: refused,
#: not ignored (they need JWTs or subject mappings).
ACCOUNT_NOT_YET = {
    "nkey", "mappings", "maps", "limits", "msg_trace", "trace_dest",
}  # fmt: skip

#: An export's keys beside `stream`/`service` that trionats does not act on: refused.
EXPORT_NOT_YET = {"latency", "account_token_position", "allow_trace"}
#: The same for an import.
IMPORT_NOT_YET = {"allow_trace"}

ROUTE_AUTHORIZATION = Schema.of(
    opts.RouteAuthorization,
    [
        (("user", "username"), Field("user", _str)),
        (("pass", "password"), Field("password", _str)),
        (("timeout",), Field("timeout", _seconds)),
    ],
)

TLS = Schema.of(
    opts.TLSOptions,
    [
        (("cert_file",), Field("cert_file", _str)),
        (("key_file",), Field("key_file", _str)),
        (("ca_file",), Field("ca_file", _str)),
        (("verify",), Field("verify", _bool)),
        (("verify_and_map",), Field("verify_and_map", _bool)),
        (("verify_cert_and_check_known_urls",), Field("verify_cert_and_check_known_urls", _bool)),
        (("insecure",), Field("insecure", _bool)),
        (("timeout",), Field("timeout", _seconds)),
        (("cipher_suites",), Field("cipher_suites", _strings)),
        (("curve_preferences",), Field("curve_preferences", _strings)),
        (("min_version",), Field("min_version", _choice("1.2", "1.3"))),
        (("handshake_first", "first", "immediate"), Field("handshake_first", _handshake_first)),
        (("pinned_certs",), Field("pinned_certs", _strings)),
    ],
)

CLUSTER_PERMISSIONS = Schema.of(
    opts.ClusterPermissions,
    [
        (("import",), Field("import_", _permission_list)),
        (("export",), Field("export", _permission_list)),
    ],
)

CLUSTER = Schema.of(
    opts.ClusterOptions,
    [
        (("name",), Field("name", _str)),
        (("listen",), Field("", setter=_host_port("host", "port"))),
        (("host", "net"), Field("host", _str)),
        (("port",), Field("port", _int)),
        (("advertise", "cluster_advertise"), Field("advertise", _str)),
        (("no_advertise",), Field("no_advertise", _bool)),
        (("routes",), Field("routes", _strings)),
        (("authorization",), Field("authorization", block=ROUTE_AUTHORIZATION)),
        (("permissions",), Field("permissions", block=CLUSTER_PERMISSIONS)),
        (("tls",), Field("tls", block=TLS)),
        (("connect_retries",), Field("connect_retries", _int)),
        (("connect_backoff",), Field("connect_backoff", _bool)),
        (("pool_size",), Field("pool_size", _int)),
        (("accounts",), Field("accounts", _strings)),
        (("compression",), Field("compression", _compression)),
        (("ping_interval",), Field("ping_interval", _duration)),
        (("ping_max",), Field("ping_max", _int)),
        (("write_deadline",), Field("write_deadline", _duration)),
        (("write_timeout",), Field("write_timeout", _write_timeout)),
    ],
)

WEBSOCKET = Schema.of(
    opts.WebsocketOptions,
    [
        (("listen",), Field("", setter=_host_port("host", "port"))),
        (("host", "net"), Field("host", _str)),
        (("port",), Field("port", _int)),
        (("advertise",), Field("advertise", _str)),
        (("no_tls",), Field("no_tls", _bool)),
        (("tls",), Field("tls", block=TLS)),
        (("same_origin",), Field("same_origin", _bool)),
        (
            ("allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins", "origin"),
            Field("allowed_origins", _strings),
        ),
        (("compression", "compress"), Field("compression", _bool)),
        (("handshake_timeout",), Field("handshake_timeout", _seconds)),
        (("authorization", "authentication"), Field("authorization", block=AUTHORIZATION)),
        (("no_auth_user",), Field("no_auth_user", _str)),
        (("jwt_cookie",), Field("jwt_cookie", _str)),
        (("user_cookie",), Field("user_cookie", _str)),
        (("pass_cookie",), Field("pass_cookie", _str)),
        (("token_cookie",), Field("token_cookie", _str)),
        (("ping_interval",), Field("ping_interval", _duration)),
        (("headers",), Field("headers", _headers)),
    ],
)


# --- leafnodes {} (trionats/leaf/) ------------------------------------------------------------


def _leaf_compression(value: Any) -> str:
    """leafnodes/remote `compression`: trionats never compresses, so only off is taken (a
    peer asking for S2 is answered with off, which nats-server accepts)."""
    if isinstance(value, dict):
        modes = [item for key, item in value.items() if key.lower() == "mode"]
        value = modes[-1] if modes else "s2_auto"
    if value is False or (isinstance(value, str) and value.lower() in ("off", "disabled", "false")):
        return "off"
    if isinstance(value, bool) or (isinstance(value, str) and value.lower() in _COMPRESSION_MODES):
        raise _Bad(f"compression {value!r} is not supported by trionats (only off)")
    raise _Bad(f"unknown compression mode {value!r}")


def _leaf_min_version(value: Any) -> str:
    """nats-server's checkLeafMinVersionConfig: a version of at least 2.8.0."""
    text = _str(value)
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:-.*)?", text)
    if match is None:
        raise _Bad(f"invalid leafnode's minimum version: invalid semver {text!r}")
    if tuple(int(part) for part in match.groups()) < (2, 8, 0):
        raise _Bad("the minimum version should be at least 2.8.0")
    return text


def _leaf_seed(value: Any) -> str:
    """A remote's `nkey`: a user seed (nats-server's message, without the seed: a secret)."""
    from ..leaf.credentials import is_user_seed

    seed = _str(value)
    if not is_user_seed(seed):
        raise _Bad("Remote leafnode nkey is not a valid seed")
    return seed


def _leaf_public_nkey(value: Any) -> str:
    from ..auth.nkeys import is_user_nkey

    nkey = _str(value)
    if not is_user_nkey(nkey):
        raise _Bad("Not a valid public nkey for leafnode authorization")
    return nkey


def _path(value: Any) -> str:
    """A file path, `~` expanded (nats-server's expandPath)."""
    return str(Path(_str(value)).expanduser())


def _leaf_urls(value: Any) -> tuple[str, ...]:
    """A remote's `url`/`urls`: nats://, tls:// (or no scheme); websocket remotes are
    refused (trionats dials leaves over TCP only)."""
    urls = _strings(value)
    for url in urls:
        text = url.strip()
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme in ("ws", "wss"):
            raise _Bad(f"websocket remote {redact_urls(text)!r} is not supported by trionats")
        try:
            parts = urllib.parse.urlsplit(text if "://" in text else f"nats://{text}")
            parts.port  # noqa: B018 (raises for a bad port)
        except ValueError:
            raise _Bad(f'error parsing leafnode url ["{redact_urls(text)}"]') from None
        if not parts.hostname:
            raise _Bad(f'error parsing leafnode url ["{redact_urls(text)}"]')
    return urls


def _not_yet(why: str) -> Callable[[Any, dict], None]:
    """A key nats-server takes and trionats does not act on yet: refused, saying what."""

    def refuse(value: Any, out: dict) -> None:
        raise _Bad(f"not supported by trionats yet ({why})")

    return refuse


LEAF_USER = Schema.of(
    opts.LeafUser,
    [
        (("user", "username"), Field("user", _str)),
        (("pass", "password"), Field("password", _str)),
        (("account",), Field("account", _str)),
    ],
)

LEAF_AUTHORIZATION = Schema.of(
    opts.LeafAuthorization,
    [
        (("user", "username"), Field("user", _str)),
        (("pass", "password"), Field("password", _str)),
        (("users",), Field("users", block=LEAF_USER)),
        (("account",), Field("account", _str)),
        (("timeout",), Field("timeout", _seconds)),
        (("nkey",), Field("nkey", _leaf_public_nkey)),
        (("proxy_required",), Field("", setter=_not_yet("proxies"))),
    ],
)

LEAF_REMOTE = Schema.of(
    opts.LeafRemote,
    [
        (("url", "urls"), Field("urls", _leaf_urls)),
        (("account", "local"), Field("account", _str)),
        (("credentials", "creds"), Field("credentials", _path)),
        (("nkey", "seed"), Field("nkey", _leaf_seed)),
        (("tls",), Field("tls", block=TLS)),
        (("deny_imports", "deny_import"), Field("deny_imports", _strings)),
        (("deny_exports", "deny_export"), Field("deny_exports", _strings)),
        (("no_randomize", "dont_randomize"), Field("no_randomize", _bool)),
        (("hub",), Field("hub", _bool)),
        (("compression",), Field("", setter=lambda value, out: _leaf_compression(value))),
        (("first_info_timeout",), Field("first_info_timeout", _duration)),
        (("dial_timeout",), Field("dial_timeout", _duration)),
        (("disabled",), Field("disabled", _bool)),
        (("ignore_discovered_servers",), Field("ignore_discovered_servers", _bool)),
    ],
)

#: Keys of a remote that nats-server takes and trionats does not act on yet: refused.
LEAF_REMOTE_NOT_YET = {
    "ws_compress": "websocket remotes", "ws_compression": "websocket remotes",
    "websocket_compress": "websocket remotes", "websocket_compression": "websocket remotes",
    "ws_no_masking": "websocket remotes", "websocket_no_masking": "websocket remotes",
    "jetstream_cluster_migrate": "JetStream", "js_cluster_migrate": "JetStream",
    "isolate_leafnode_interest": "interest isolation", "isolate": "interest isolation",
    "request_isolation": "interest isolation", "proxy": "HTTP proxies",
}  # fmt: skip

LEAFNODES = Schema.of(
    opts.LeafnodeOptions,
    [
        (("listen",), Field("", setter=_host_port("host", "port"))),
        (("host", "net"), Field("host", _str)),
        (("port",), Field("port", _int)),
        (("advertise", "leafnode_advertise"), Field("advertise", _str)),
        (("no_advertise",), Field("no_advertise", _bool)),
        (("authorization",), Field("authorization", block=LEAF_AUTHORIZATION)),
        (("tls",), Field("tls", block=TLS)),
        (("reconnect", "reconnect_delay", "reconnect_interval"), Field("reconnect", _duration)),
        (("dial_timeout",), Field("dial_timeout", _duration)),
        (("compression",), Field("compression", _leaf_compression)),
        (("remotes",), Field("remotes", block=LEAF_REMOTE)),
        (("min_version", "minimum_version"), Field("min_version", _leaf_min_version)),
        (("write_deadline",), Field("write_deadline", _duration)),
        (("write_timeout",), Field("write_timeout", _write_timeout)),
        (("isolate_leafnode_interest", "isolate"), Field("", setter=_not_yet("interest isolation"))),
    ],
)

def _convert_leaf_list(schema: Schema, value: Any, problems: list[Problem], key: str) -> list:
    """`leafnodes.remotes` and `leafnodes.authorization.users`: a list of maps, each walked
    with its own positions; keys trionats does not act on are refused by name."""
    if not isinstance(value, list):
        raise _Bad(f"Expected {key} field to be an array, got {_kind(value)}")
    entries = []
    for item in value:
        if not isinstance(item, dict):
            raise _Bad(f"Expected {key} entries to be maps, got {_kind(item)}")
        positions = getattr(item, "positions", {})
        known = {}
        for name, inner in item.items():
            why = LEAF_REMOTE_NOT_YET.get(name.lower()) if schema is LEAF_REMOTE else None
            if why is not None:
                text = f'"leafnodes.remotes.{name}" is not supported by trionats yet: {why}'
                problems.append(Problem(positions.get(name), text))
            else:
                known[name] = inner
        known = ConfMap(known)
        known.positions = positions
        known.variables = getattr(item, "variables", set())
        block: dict = {}
        _walk(schema, known, block, problems, f" in {key}")
        if schema is LEAF_REMOTE and not any(name.lower() in ("url", "urls") for name in item):
            where = next(iter(positions.values()), None)
            problems.append(Problem(where, "leafnode remote requires at least one url"))
        entries.append(block)
    return entries


def _check_leafnodes(conf_out: dict, problems: list[Problem], positions: dict) -> None:
    """nats-server's validateLeafNode rules that span keys: accounts named must exist,
    one user or a users list, no duplicate remotes, remotes with URLs."""
    leaf = conf_out.get("leafnodes")
    if not isinstance(leaf, dict):
        return
    where = positions.get("leafnodes")
    names = {account.get("name") for account in conf_out.get("accounts", ())
             if isinstance(account, dict)}  # fmt: skip
    names |= {"", GLOBAL_ACCOUNT}
    if not conf_out.get("no_system_account") and conf_out.get("system_account", "$SYS") == "$SYS":
        names.add("$SYS")
    auth = leaf.get("authorization")
    if isinstance(auth, dict):
        if auth.get("users") and (auth.get("user") or auth.get("password")):
            problems.append(Problem(where, "can not have a single user/pass and a users array"))
        seen = set()
        for user in auth.get("users", ()):
            name = user.get("user", "")
            if name in seen:
                problems.append(Problem(where, f'duplicate user "{name}" detected in leafnode authorization'))
            seen.add(name)
        accounts = [auth.get("account", "")] + [user.get("account", "") for user in auth.get("users", ())]
        for account in accounts:
            if account not in names:
                problems.append(Problem(where, f'cannot find local account "{account}" specified in leafnode authorization'))
    seen_remotes = set()
    for remote in leaf.get("remotes", ()):
        urls = remote.get("urls", ())
        account = remote.get("account", "")
        if account not in names:
            problems.append(Problem(where, f'cannot find local account "{account}" specified in leafnode remote'))
        if remote.get("credentials") and remote.get("nkey"):
            problems.append(Problem(where, "Remote leafnode can not have both creds and nkey defined"))
        key = (account or GLOBAL_ACCOUNT, tuple(urls))
        if key in seen_remotes:
            problems.append(Problem(where, f"duplicate remote {redact_urls(', '.join(urls))}"))
        seen_remotes.add(key)


def _trace_verbose(value: Any, out: dict) -> None:
    """trace_verbose sets trace too, as in nats-server."""
    out["trace_verbose"] = out["trace"] = _bool(value)


OPTIONS = Schema.of(
    opts.Options,
    [
        (("listen",), Field("", setter=_host_port("host", "port"))),
        (("host", "net"), Field("host", _str)),
        (("port",), Field("port", _int)),
        (("server_name",), Field("server_name", _str)),
        (("client_advertise",), Field("client_advertise", _str)),
        (("server_tags",), Field("server_tags", _strings)),
        (("max_payload",), Field("max_payload", _size32)),
        (("max_control_line",), Field("max_control_line", _size32)),
        (("max_connections", "max_conn"), Field("max_connections", _int)),
        (("max_subscriptions", "max_subs"), Field("max_subscriptions", _int)),
        (("max_sub_tokens", "max_subscription_tokens"), Field("max_sub_tokens", _sub_tokens)),
        (("max_pending",), Field("max_pending", _size)),
        (("write_deadline",), Field("write_deadline", _duration)),
        (("write_timeout",), Field("write_timeout", _write_timeout)),
        (("ping_interval",), Field("ping_interval", _duration)),
        (("ping_max",), Field("ping_max", _int)),
        (("no_header_support",), Field("no_header_support", _bool)),
        (("disable_sublist_cache", "no_sublist_cache"), Field("disable_sublist_cache", _bool)),
        (("no_fast_producer_stall",), Field("no_fast_producer_stall", _bool)),
        (("max_closed_clients",), Field("max_closed_clients", _int)),
        (("lame_duck_duration",), Field("lame_duck_duration", _lame_duck_duration)),
        (("lame_duck_grace_period",), Field("lame_duck_grace_period", _lame_duck_grace_period)),
        (("connect_error_reports",), Field("connect_error_reports", _int)),
        (("reconnect_error_reports",), Field("reconnect_error_reports", _int)),
        (("debug",), Field("debug", _bool)),
        (("trace",), Field("trace", _bool)),
        (("trace_verbose",), Field("", setter=_trace_verbose)),
        (("logtime",), Field("logtime", _bool)),
        (("logtime_utc",), Field("logtime_utc", _bool)),
        (("log_file", "logfile"), Field("log_file", _str)),
        (("log_format",), Field("log_format", _choice("text", "json"))),
        (("log_size_limit", "logfile_size_limit"), Field("log_size_limit", _size)),
        (("log_max_num", "logfile_max_num"), Field("log_max_num", _int)),
        (("max_traced_msg_len",), Field("max_traced_msg_len", _int)),
        (("syslog",), Field("syslog", _bool)),
        (("remote_syslog",), Field("remote_syslog", _str)),
        (("http",), Field("", setter=_host_port("http_host", "http_port"))),
        (("http_port", "monitor_port"), Field("http_port", _int)),
        (("https",), Field("", setter=_host_port("http_host", "https_port"))),
        (("https_port",), Field("https_port", _int)),
        (("http_base_path",), Field("http_base_path", _str)),
        (("authorization",), Field("authorization", block=AUTHORIZATION)),
        (("no_auth_user",), Field("no_auth_user", _str)),
        (("tls",), Field("tls", block=TLS)),
        (("allow_non_tls",), Field("allow_non_tls", _bool)),
        (("cluster",), Field("cluster", block=CLUSTER)),
        (("websocket", "ws"), Field("websocket", block=WEBSOCKET)),
        (("leafnodes", "leaf"), Field("leafnodes", block=LEAFNODES)),
        (("accounts",), Field("accounts", block=ACCOUNT)),
        (("system_account", "system"), Field("system_account", _str)),
        (("no_system_account", "no_system", "no_sys_acc"), Field("no_system_account", _bool)),
        (("jetstream",), Field("jetstream", block=JETSTREAM)),
        (("store_dir", "storedir"), Field("store_dir", _str)),
        (
            ("operator", "operators", "roots", "root", "root_operators", "root_operator"),
            Field("operators", _operators),
        ),
        (("resolver", "account_resolver", "accounts_resolver"), Field("resolver", _resolver)),
        (("resolver_preload",), Field("resolver_preload", _resolver_preload)),
        (("pid_file", "pidfile"), Field("pid_file", _str)),
        (("ports_file_dir",), Field("ports_file_dir", _str)),
    ],
)

#: nats-server features outside trionats' scope: named, so they are not mistaken for typos.
OUT_OF_SCOPE = {
    "gateway", "mqtt",
    "trusted", "trusted_keys", "system_account_jwt",
    "prof_port", "proxy_protocol", "proxies", "server_metadata", "trace_headers", "ocsp",
    "ocsp_cache", "default_js_domain", "mappings", "maps",
    "resolver_tls", "resolver_pinned_accounts", "default_sentinel", "feature_flags",
    "prof_block_rate",
}  # fmt: skip

#: Options trionats parses and validates but does not act on yet: refused, not ignored. Each
#: later feature (auth, TLS, clustering, monitoring, WebSocket, ...) removes its keys here.
NOT_YET: set[str] = set()
#: The same inside blocks: block key -> its keys not acted on yet.
NOT_YET_IN: dict[str, set[str]] = {}

_converter = cattrs.Converter()
_converter.register_structure_hook(bool | float, lambda value, _: value)
_converter.register_structure_hook(float | None, lambda value, _: value)


# --- walking a parsed file ---------------------------------------------------------------------


def _walk(schema: Schema, conf: dict, out: dict, problems: list[Problem], where: str) -> None:
    positions = getattr(conf, "positions", {})
    variables = getattr(conf, "variables", set())
    for key, value in conf.items():
        position = positions.get(key)
        field = schema.fields.get(key.lower())
        if field is None:
            if key in variables:
                continue  # defined to be referenced as $KEY, not an option
            if schema is OPTIONS and key.lower() in OUT_OF_SCOPE:
                problems.append(Problem(position, f'"{key}" is not supported by trionats'))
            else:
                problems.append(Problem(position, f'unknown field "{key}"{where}'))
            continue
        try:
            if field.setter is not None:
                field.setter(value, out)
            elif field.block is not None:
                out[field.name] = _convert_block(field.block, value, problems, key)
                if field.block is TLS:
                    if schema is not CLUSTER and schema is not LEAFNODES and schema is not LEAF_REMOTE:
                        _client_context_only(value, problems)
                    _check_tls(out[field.name], position, problems)
            else:
                out[field.name] = field.convert(value)
        except _Warn as warning:
            out[field.name] = warning.value
            message = f'invalid use of field "{key}": {key} {warning}'
            problems.append(Problem(position, message, warning=True))
        except _Bad as exc:
            problems.append(Problem(position, f"{key}: {exc}"))


def _client_context_only(conf: Any, problems: list[Problem]) -> None:
    """A `tls` block for clients (top level, websocket) cannot check peers against the
    configured routes: nats-server refuses `verify_cert_and_check_known_urls` there."""
    if not isinstance(conf, dict):
        return
    positions = getattr(conf, "positions", {})
    for key, value in conf.items():
        if key.lower() == "verify_cert_and_check_known_urls" and value is True:
            problems.append(Problem(positions.get(key),
                                    f"{key} not supported in this context"))  # fmt: skip


def _check_tls(block: dict, position: Position | None, problems: list[Problem]) -> None:
    """Build the block's ssl context now, as nats-server does when it loads a file: missing
    or unreadable certificate files and unknown ciphers are errors at the `tls` key."""
    from ..tls import check  # the ssl module's rules; the loader stays free of I/O otherwise

    try:
        check(_converter.structure(block, opts.TLSOptions))
    except ConfigError as exc:
        problems.append(Problem(position, str(exc)))
    except (TypeError, ValueError, cattrs.BaseValidationError):
        pass  # a bad value inside the block, already reported by the walk


def _convert_block(schema: Schema, value: Any, problems: list[Problem], key: str):
    """A nested block (a map), or for `users` a list of maps, or the `accounts` block."""
    if schema is ACCOUNT:
        return _convert_accounts(value, problems)
    if schema is JETSTREAM or schema is ACCOUNT_JETSTREAM:
        return _convert_jetstream(schema, value, problems, key)
    if schema is LEAF_REMOTE or schema is LEAF_USER:
        return _convert_leaf_list(schema, value, problems, key)
    if schema is USER:
        if not isinstance(value, list):
            raise _Bad(f"expected a list of users, got {_kind(value)}")
        users = []
        positions = getattr(value, "positions", [])
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise _Bad(f"expected a map for each user, got {_kind(item)}")
            block: dict = {}
            _walk(USER, item, block, problems, f" in {key}")
            where = positions[index] if index < len(positions) else None
            if not block.get("user") and not block.get("nkey"):
                problems.append(Problem(where, "User entry requires a user"))
            elif block.get("nkey") and (block.get("user") or block.get("password")):
                problems.append(Problem(where, "Nkey users do not take usernames or passwords"))
            users.append(block)
        return users
    if not isinstance(value, dict):
        raise _Bad(f"expected a map, got {_kind(value)}")
    block = {}
    _walk(schema, value, block, problems, f" in {key}")
    return block


def _convert_accounts(value: Any, problems: list[Problem]) -> list[dict]:
    """`accounts`: a map of name -> account block, or a list of names (nats-server's
    parseAccounts). Each account dict carries `_where`, the position of its `users` key
    (or of its name), for the rules across accounts in `_check_rules`."""
    accounts: list[dict] = []
    if isinstance(value, list):
        positions = getattr(value, "positions", [])
        seen = set()
        for index, item in enumerate(value):
            where = positions[index] if index < len(positions) else None
            if not isinstance(item, str):
                problems.append(Problem(where, f"accounts: expected a name, got {_kind(item)}"))
            elif item == GLOBAL_ACCOUNT:
                problems.append(Problem(where, f'"{item}" is a Reserved Account'))
            elif item in seen:
                problems.append(Problem(where, f"Duplicate Account Entry: {item}"))
            else:
                seen.add(item)
                accounts.append({"name": item, "_where": where})
        return accounts
    if not isinstance(value, dict):
        raise _Bad(f"expected a map of accounts or a list of names, got {_kind(value)}")
    positions = getattr(value, "positions", {})
    variables = getattr(value, "variables", set())
    for name, block in value.items():
        where = positions.get(name)
        if name in variables:
            continue  # defined to be referenced as $NAME
        if not isinstance(block, dict):
            problems.append(Problem(where, "Expected map entries for accounts"))
            continue
        if name == GLOBAL_ACCOUNT:
            problems.append(Problem(where, f'"{name}" is a Reserved Account'))
            continue
        inner = getattr(block, "positions", {})
        known = {}
        out: dict = {"name": name}
        for key, item in block.items():
            if key.lower() in ACCOUNT_NOT_YET:
                text = f'"{key}" is not supported by trionats yet (account "{name}")'
                problems.append(Problem(inner.get(key), text))
            elif key.lower() == "exports":
                out["exports"] = _convert_exports(item, inner.get(key), problems)
            elif key.lower() == "imports":
                out["imports"] = _convert_imports(item, inner.get(key), problems)
            else:
                known[key] = item
        known = ConfMap(known)
        known.positions = inner
        known.variables = getattr(block, "variables", set())
        _walk(ACCOUNT, known, out, problems, f' in account "{name}"')
        users_key = next((key for key in block if key.lower() == "users"), None)
        out["_where"] = inner.get(users_key) if users_key else where
        accounts.append(out)
    return accounts


def _entries(value: Any, where, problems: list[Problem], what: str):
    """The maps of an `exports` / `imports` list, each with its position."""
    if not isinstance(value, list):
        problems.append(Problem(where, f"{what}s should be an array, got {_kind(value)}"))
        return
    positions = getattr(value, "positions", [])
    for index, item in enumerate(value):
        at = positions[index] if index < len(positions) else where
        if not isinstance(item, dict):
            problems.append(Problem(at, f"{what} Items should be a map with type entry, "
                                        f"got {_kind(item)}"))  # fmt: skip
            continue
        yield item, at, getattr(item, "positions", {})


def _convert_exports(value: Any, where, problems: list[Problem]) -> list[dict]:
    """An account's `exports` (nats-server's parseExportStreamOrService)."""
    exports = []
    for item, at, inner in _entries(value, where, problems, "Export"):
        export: dict = {}
        for key, field in item.items():
            pos = inner.get(key, at)
            lower = key.lower()
            if lower in ("stream", "service"):
                if export.get("kind"):
                    seen = export["kind"]
                    problems.append(Problem(pos, f'Detected {lower} "{field}" but already saw a {seen}'))
                elif not isinstance(field, str):
                    problems.append(Problem(pos, f"Expected {lower} name to be string, "
                                                 f"got {_kind(field)}"))  # fmt: skip
                else:
                    export["kind"], export["subject"] = lower, field
            elif lower in ("response", "response_type"):
                if "response_type" in export:
                    problems.append(Problem(pos, "Duplicate response type definition"))
                    continue
                kind = {"single": "singleton", "singleton": "singleton", "stream": "stream",
                        "chunk": "chunked", "chunked": "chunked"}.get(str(field).lower())  # fmt: skip
                if not isinstance(field, str):
                    problems.append(Problem(pos, "Expected response type to be string, "
                                                 f"got {_kind(field)}"))  # fmt: skip
                elif kind is None:
                    problems.append(Problem(pos, f'Unknown response type: "{field}"'))
                else:
                    export["response_type"] = kind
                    export["_rt_where"] = pos
            elif lower in ("threshold", "response_threshold", "response_max_time", "response_time"):
                if "response_threshold" in export:
                    problems.append(Problem(pos, "Duplicate response threshold detected"))
                    continue
                try:
                    if not isinstance(field, str):
                        raise _Bad("")
                    export["response_threshold"] = parse_duration(field)
                    export["_rt_where"] = pos
                except _Bad:
                    problems.append(Problem(pos, "Expected response threshold to be a parseable "
                                                 f"time duration, got {_kind(field)}"))  # fmt: skip
                except ValueError:
                    problems.append(Problem(pos, "Expected response threshold to be a parseable "
                                                 f'time duration, got "{field}"'))  # fmt: skip
            elif lower == "accounts":
                if not isinstance(field, list) or not all(isinstance(a, str) for a in field):
                    problems.append(Problem(pos, "accounts: expected a list of account names"))
                else:
                    export["accounts"] = list(field)
            elif lower in EXPORT_NOT_YET:
                problems.append(Problem(pos, f'"{key}" is not supported by trionats yet (exports)'))
            else:
                problems.append(Problem(pos, f'unknown field "{key}"'))
        rt_where = export.pop("_rt_where", None)
        if export.get("kind") == "stream" and rt_where is not None:
            problems.append(Problem(rt_where, "Detected response directive on non-service"))
        elif export.get("kind"):
            export["_where"] = at
            exports.append(export)
    return exports


def _convert_imports(value: Any, where, problems: list[Problem]) -> list[dict]:
    """An account's `imports` (nats-server's parseImportStreamOrService)."""
    imports = []
    for item, at, inner in _entries(value, where, problems, "Import"):
        entry: dict = {}
        for key, field in item.items():
            pos = inner.get(key, at)
            lower = key.lower()
            if lower in ("stream", "service"):
                if entry.get("kind"):
                    problems.append(Problem(pos, f"Detected {lower} but already saw a {entry['kind']}"))
                elif not isinstance(field, dict):
                    what = "Stream" if lower == "stream" else "Service"
                    problems.append(Problem(pos, f"{what} entry should be an account map, "
                                                 f"got {_kind(field)}"))  # fmt: skip
                else:
                    fields = {k.lower(): v for k, v in field.items()}
                    for k in field:
                        if k.lower() not in ("account", "subject"):
                            problems.append(Problem(getattr(field, "positions", {}).get(k, pos),
                                                    f'unknown field "{k}"'))  # fmt: skip
                    account, subject = fields.get("account"), fields.get("subject")
                    if not (isinstance(account, str) and account and isinstance(subject, str)
                            and subject):  # fmt: skip
                        problems.append(Problem(pos, "Expect an account name and a subject"))
                    else:
                        entry.update(kind=lower, account=account, subject=subject)
            elif lower in ("prefix", "to"):
                if not isinstance(field, str):
                    problems.append(Problem(pos, f"{lower}: expected a string, got {_kind(field)}"))
                else:
                    entry[lower] = field
                    entry[f"_{lower}_where"] = pos
            elif lower == "share":
                if not isinstance(field, bool):  # (nats-server panics on it)
                    problems.append(Problem(pos, f"share: expected a boolean, got {_kind(field)}"))
                else:
                    entry["share"] = field
            elif lower in IMPORT_NOT_YET:
                problems.append(Problem(pos, f'"{key}" is not supported by trionats yet (imports)'))
            else:
                problems.append(Problem(pos, f'unknown field "{key}"'))
        to_where = entry.pop("_to_where", None)
        entry.pop("_prefix_where", None)
        if entry.get("kind") == "stream" and entry.get("prefix") and entry.get("to"):
            problems.append(Problem(to_where, "Stream import can not have a 'prefix' and a 'to' property"))
        elif entry.get("kind") == "service" and (dup := next((
            e for e in imports if e["kind"] == "service" and e["account"] == entry["account"]
            and _local_subject(e) == _local_subject(entry)
        ), None)):  # fmt: skip
            problems.append(Problem(at, f'Duplicate service import subject "{_local_subject(entry)}", '
                                        f'previously used in import for account "{dup["account"]}", '
                                        f'subject "{dup["subject"]}"'))  # fmt: skip
        elif entry.get("kind"):
            if entry["kind"] == "service":
                entry.pop("prefix", None)  # (nats-server ignores it)
            else:
                entry.pop("share", None)  # (so does it `share` on a stream)
            entry["_where"] = at
            imports.append(entry)
    return imports


def _check_imports(accounts: list[dict], where, problems: list[Problem]) -> None:
    """nats-server's checks once every account is defined (parseAccounts, then
    AddStreamImport / AddServiceImport): exports first, then each import must name an
    account, be exported to it, and form no cycle. Reported at `accounts`, as nats-server."""
    from ..core.imports import find_export
    from ..protocol.subjects import has_wildcard, is_valid_subject

    by_name = {account["name"]: account for account in accounts}
    for account in accounts:
        for export in account.get("exports", []):
            export.pop("_where", None)
            for name in export.get("accounts") or ():
                if name not in by_name:
                    problems.append(Problem(where, f'"{name}" account not defined for '
                                                   f'{export["kind"]} export'))  # fmt: skip
    added: dict[str, list[dict]] = {account["name"]: [] for account in accounts}
    for kind in ("stream", "service"):
        for account in accounts:
            for entry in account.get("imports", []):
                if entry["kind"] != kind:
                    continue
                entry.pop("_where", None)
                exporter = by_name.get(entry["account"])
                subject = entry["subject"]
                if exporter is None:
                    problems.append(Problem(where, f'"{entry["account"]}" account not defined '
                                                   f"for {kind} import"))  # fmt: skip
                    continue
                exports = [opts.Export(**e) for e in exporter.get("exports", [])]
                export = find_export(exports, kind, subject)
                allowed = (
                    export is not None
                    and is_valid_subject(subject.encode())
                    and (export.accounts is None or account["name"] in export.accounts)
                )
                error = None
                if kind == "service" and not is_valid_subject((entry.get("to") or subject).encode()):
                    error = "invalid subject"
                elif not allowed:
                    error = f"{kind} import not authorized"
                elif kind == "stream" and entry.get("prefix") and has_wildcard(entry["prefix"].encode()):
                    error = "stream import prefix can not contain wildcard tokens"
                elif kind == "stream" and any(
                    e["account"] == entry["account"] and e["subject"] == subject
                    for e in added[account["name"]] if e["kind"] == "stream"
                ):
                    error = "stream import already exists"
                elif _forms_cycle(added, account["name"], entry):
                    error = "import forms a cycle"
                if error:
                    problems.append(Problem(where, f'Error adding {kind} import "{subject}": {error}'))
                    continue
                added[account["name"]].append(entry)
    for account in accounts:
        account["imports"] = added.get(account["name"], [])


def _local_subject(entry: dict) -> str:
    """Where an import's messages appear in the importing account."""
    if entry["kind"] == "stream" and entry.get("prefix"):
        return entry["prefix"].rstrip(".") + "." + entry["subject"]
    return entry.get("to") or entry["subject"]


def _forms_cycle(added: dict[str, list[dict]], importer: str, entry: dict) -> bool:
    """Whether importing `entry` into `importer` lets messages come back round to it:
    following the imports already added (a stream import's exporter importing what it
    exports, a service import's exporter importing the service again), as nats-server's
    checkStreamImportsForCycles / checkServiceImportsForCycles."""
    kind = entry["kind"]
    start = entry["account"]
    subjects = [entry["subject"], _local_subject(entry)] if kind == "stream" else [entry["subject"]]
    visited = {importer}
    todo = [(start, s) for s in subjects]
    while todo:
        account, subject = todo.pop()
        for other in added.get(account, []):
            if other["kind"] != kind:
                continue
            target = _local_subject(other)
            if _collide(subject, target):
                if other["account"] in visited:
                    return True
                visited.add(account)
                todo.append((other["account"], other["subject"]))
    return False


def _collide(a: str, b: str) -> bool:
    """Whether two patterns can match one subject (nats-server's SubjectsCollide)."""
    ta, tb = a.split("."), b.split(".")
    for index in range(max(len(ta), len(tb))):
        x = ta[index] if index < len(ta) else None
        y = tb[index] if index < len(tb) else None
        if x == ">" or y == ">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != y and x != "*" and y != "*":
            return False
    return True


def _check_accounts(conf_out: dict, problems: list[Problem], positions: dict) -> None:
    """nats-server's rules between `authorization` and `accounts`: a user name or nkey is
    defined once across both, and accounts' users cannot sit beside a single
    `authorization` user or token. nats-server meets the two blocks in map order; trionats
    takes file order, so the later definition is the one reported."""
    accounts = conf_out.get("accounts")
    if not isinstance(accounts, list):
        return
    auth = conf_out.get("authorization")
    auth = auth if isinstance(auth, dict) else {}
    auth_where = positions.get("authorization")
    accounts_where = positions.get("accounts")
    auth_first = bool(auth) and (
        accounts_where is None
        or _problem_order(Problem(auth_where, "")) < _problem_order(Problem(accounts_where, ""))
    )
    with_users = [account for account in accounts if account.get("users")]
    if with_users and (auth.get("user") or auth.get("token")):
        single = "a single user/pass" if auth.get("user") else "a token"
        if auth_first:  # nats-server meets the accounts' users second
            problems.append(Problem(with_users[0]["_where"], f"Can not have {single} and accounts"))
        else:
            problems.append(Problem(auth_where, f"Can not have {single} and a users array"))
    # (where to report, users, whether it is the `authorization` block), in file order
    groups = [(account["_where"], account.get("users", []), False) for account in accounts]
    auth_group = (auth_where, auth.get("users", []), True)
    groups.insert(0 if auth_first else len(groups), auth_group)
    seen: set[str] = set()
    for where, users, is_auth in groups:
        names = set()
        for user in users:
            kind, name = ("nkey", user["nkey"]) if user.get("nkey") else ("user", user.get("user"))
            if not name:
                continue  # "User entry requires a user", reported with the entry
            if name in seen or (not is_auth and name in names):
                # (duplicates inside `authorization` itself: reported by _check_rules)
                problems.append(Problem(where, f'Duplicate {kind} "{name}" detected'))
            names.add(name)
            if not is_auth:
                seen.add(name)
        seen |= names
    for account in accounts:
        account.pop("_where", None)
    if not problems:  # (nats-server checks imports only when all else loaded)
        _check_imports(accounts, accounts_where, problems)
    else:
        for account in accounts:
            for entry in account.get("exports", []) + account.get("imports", []):
                entry.pop("_where", None)


def _check_rules(conf_out: dict, problems: list[Problem], positions: dict) -> None:
    """Cross-field rules nats-server enforces when loading."""
    auth = conf_out.get("authorization")
    where = positions.get("authorization")
    if isinstance(auth, dict):
        single = auth.get("user") or auth.get("password")
        if single and auth.get("token"):
            problems.append(Problem(where, "Cannot have a user/pass and token"))
        if single and auth.get("users"):
            problems.append(Problem(where, "Can not have a single user/pass and a users array"))
        if auth.get("token") and auth.get("users"):
            problems.append(Problem(where, "Can not have a token and a users array"))
        seen = set()
        for user in auth.get("users", []):
            kind, name = ("nkey", user["nkey"]) if user.get("nkey") else ("user", user.get("user"))
            if not name:
                continue  # "User entry requires a user", reported with the entry
            if (kind, name) in seen:
                problems.append(Problem(where, f'Duplicate {kind} "{name}" detected'))
            seen.add((kind, name))
    _check_accounts(conf_out, problems, positions)
    _check_operator_mode(conf_out, problems, positions)
    _check_leafnodes(conf_out, problems, positions)
    name = conf_out.get("server_name", "")
    if " " in name:
        problems.append(Problem(positions.get("server_name"), "server name cannot contain spaces"))
    cluster = conf_out.get("cluster")
    if isinstance(cluster, dict):
        where = positions.get("cluster")
        if " " in cluster.get("name", ""):
            problems.append(Problem(where, "cluster name cannot contain spaces"))
        for url in cluster.get("routes", ()):
            if not _is_route_url(url):
                # (nats-server's text, without the password it would show)
                problems.append(Problem(where, redact_urls(f'error parsing route url ["{url}"]')))
        advertise = cluster.get("advertise", "")
        if advertise and not _is_host_port(advertise):
            problems.append(Problem(where, f"invalid Cluster.Advertise value of {advertise}"))


def _is_route_url(text: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(text)
        return bool(parts.scheme and parts.hostname and parts.port)
    except ValueError:
        return False


def _is_host_port(text: str) -> bool:
    """`host` or `host:port` (nats-server's parseHostPort; the port defaults elsewhere)."""
    try:
        parts = urllib.parse.urlsplit(f"nats://{text}")
        return bool(parts.hostname) and (parts.port is None or parts.port >= 0)
    except ValueError:
        return False


def _problem_order(problem: Problem) -> tuple:
    p = problem.position
    return (p.file, p.line, p.column) if p is not None else ("", 0, 0)


def options_from_conf(
    conf: ConfMap, base: opts.Options | None = None, *, warnings: list[Problem] | None = None
) -> opts.Options:
    """Build Options from a parsed configuration; ConfigError lists every problem.

    Warnings (values nats-server accepts but warns about, like `ping_interval: 30` in plain
    seconds) are appended to `warnings` when given; `-t` should fail on them, as
    `nats-server -t` does."""
    problems: list[Problem] = []
    out: dict = {}
    _walk(OPTIONS, conf, out, problems, "")
    positions = {
        field.name or key: conf.positions.get(key)
        for key in conf
        if (field := OPTIONS.fields.get(key.lower())) is not None
    }
    _check_rules(out, problems, positions)
    for key, value in conf.items():
        if key.lower() in NOT_YET:
            problems.append(Problem(conf.positions.get(key), f'"{key}" is not supported by trionats yet'))
        if isinstance(value, dict) and key.lower() != "accounts":
            inner = getattr(value, "positions", {})
            for name in value:
                if name.lower() in NOT_YET_IN.get(key.lower(), ()):
                    text = f'"{key}.{name}" is not supported by trionats yet'
                    problems.append(Problem(inner.get(name), text))
    problems.sort(key=_problem_order)
    if warnings is not None:
        warnings.extend(p for p in problems if p.warning)
    problems = [p for p in problems if not p.warning]
    merged = attrs.asdict(base or opts.Options(), recurse=False)
    merged.update(out)
    if problems:
        lines = [str(p) for p in problems]
        lines += _check_what_loaded(merged, {p.message for p in problems})
        raise ConfigError("\n".join(lines))
    try:
        return _converter.structure(merged, opts.Options)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        # The walk above already checked every value: this is a bug, reported with the file.
        where = next(iter(conf.positions.values())).file if conf.positions else "<config>"
        raise ConfigError(f"{where}: {exc}") from exc


def _check_what_loaded(merged: dict, reported: set[str]) -> list[str]:
    """The file failed: what Options.check would also say about the options that did load
    (those between keys: `max_payload` over `max_pending`, a websocket without TLS, ...), so
    one refused block or bad value does not hide the rest. Nothing if the loaded part cannot
    even be built (a block with bad values inside, already reported)."""
    try:
        _converter.structure(merged, opts.Options).check()
    except ConfigError as exc:
        return [line for line in str(exc).split("\n") if line not in reported]
    except (cattrs.BaseValidationError, TypeError, ValueError):
        pass
    return []


def load(path: str | Path, *, warnings: list[Problem] | None = None) -> opts.Options:
    """Read a configuration file (NATS conf or JSON; TOML when it ends in .toml).

    Warnings go to `warnings` when given (see options_from_conf)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".toml":
            from .toml import read_toml

            conf = read_toml(path)
        else:
            conf = parse_file(path)
    except ConfigSyntaxError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if not conf and warnings is not None:
        warnings.append(Problem(None, f"{path}: config has no values or is empty", warning=True))
    options = options_from_conf(conf, warnings=warnings)
    return attrs.evolve(options, config_file=str(path))


__all__ = ["ConfList", "ConfMap", "Problem", "load", "options_from_conf", "parse_duration"]
