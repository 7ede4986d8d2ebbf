"""The server's settings: one frozen options tree, from flags and/or a configuration file.

Field names follow nats-server's configuration keys (the canonical spelling; aliases are
resolved by `config/load.py`); durations are float seconds and sizes are bytes. Blocks
(`authorization`, `tls`, `cluster`, `websocket`) are None when not configured. Derived state
(the bound port, the server id) lives on the Server, not here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

from . import defaults
from .errors import ConfigError
from .hostport import parse_host_port
from .syslog import SyslogError
from .syslog import destination as syslog_destination


def _strings(value) -> tuple[str, ...]:
    return tuple(value)


# Converters are Python functions, never the builtin `tuple`: attrs reads a converter's
# signature, and a builtin's is parsed from text with tokenize's regex (~5 ms per start).
def _tuple(value) -> tuple:
    return tuple(value)


def _tags(value) -> tuple[str, ...]:
    """server_tags as nats-server keeps them (jwt.TagList.Add): trimmed, lower-cased, empty
    ones dropped, each once, in the order given. A single string is one tag."""
    tags: list[str] = []
    for tag in (value,) if isinstance(value, str) else value:
        tag = tag.strip().lower()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _pairs(value) -> tuple[tuple[str, str], ...]:
    """A map ({name: value}) or (name, value) pairs, as a tuple of pairs in order."""
    items = value.items() if isinstance(value, dict) else value
    return tuple((name, item) for name, item in items)


#: Response headers a websocket `headers` block may not set (nats-server's list).
_RESERVED_WS_HEADERS = ("host", "content-length", "connection", "upgrade", "nats-no-masking")
#: HTTP token characters (RFC 7230 tchar): what a header name is made of.
_HEADER_NAME = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _ws_header_problem(name: str, value: str) -> str:
    """Why the websocket block's header `name: value` cannot be sent ("" if it can)."""
    lowered = name.lower()
    if lowered in _RESERVED_WS_HEADERS:
        return f'websocket: invalid header "{name}" not allowed'
    if lowered.startswith("sec-websocket-"):
        return f'websocket: invalid header "{name}", "Sec-WebSocket-" prefix not allowed'
    # Not checked by nats-server, which would send a broken 101 response.
    if not name or not _HEADER_NAME.issuperset(name):
        return f'websocket: invalid header "{name}": not an HTTP header name'
    if any(char in value for char in "\r\n\0"):
        return f'websocket: invalid value for header "{name}": CR, LF and NUL are not allowed'
    return ""


@attrs.frozen(kw_only=True)
class SubjectPermission:
    """allow/deny subject lists; `allow` None means "everything not denied"."""

    allow: tuple[str, ...] | None = attrs.field(default=None)
    deny: tuple[str, ...] = attrs.field(default=(), converter=_strings)


@attrs.frozen(kw_only=True)
class ResponsePermission:
    """allow_responses: publish to reply subjects received, `max_msgs` times within `expires`."""

    max_msgs: int = defaults.ALLOW_RESPONSES_MAX_MSGS
    expires: float = defaults.ALLOW_RESPONSES_EXPIRES


@attrs.frozen(kw_only=True)
class Permissions:
    publish: SubjectPermission | None = None
    subscribe: SubjectPermission | None = None
    allow_responses: ResponsePermission | None = None


@attrs.frozen(kw_only=True)
class User:
    user: str = ""
    password: str = attrs.field(default="", repr=False)
    nkey: str = ""
    permissions: Permissions | None = None
    allowed_connection_types: tuple[str, ...] = attrs.field(default=(), converter=_strings)


@attrs.frozen(kw_only=True)
class Authorization:
    """The top-level `authorization {}` block (also websocket's own override)."""

    user: str = ""
    password: str = attrs.field(default="", repr=False)
    token: str = attrs.field(default="", repr=False)
    #: Seconds to wait for CONNECT; None = the default (2 s, or TLS timeout + 1 s with TLS).
    timeout: float | None = None
    users: tuple[User, ...] = attrs.field(default=(), converter=_tuple)
    default_permissions: Permissions | None = None


@attrs.frozen(kw_only=True)
class Export:
    """One entry of an account's `exports`: a stream or service subject, the accounts
    allowed to import it (None: any), and for a service how it answers (`response_type`
    singleton, stream or chunked; `response_threshold` seconds, 0 for the default)."""

    kind: str  # "stream" or "service"
    subject: str
    accounts: tuple[str, ...] | None = None
    response_type: str = "singleton"
    response_threshold: float = 0.0


@attrs.frozen(kw_only=True)
class Import:
    """One entry of an account's `imports`: a stream or service of another account, and
    the local subject (`prefix` or `to` for a stream; `to` for a service); a `share`d
    service import tells the exporter who asked, in full."""

    kind: str  # "stream" or "service"
    account: str
    subject: str
    to: str = ""
    prefix: str = ""
    share: bool = False


@attrs.frozen(kw_only=True)
class AccountJetStream:
    """An account's `jetstream` limits (nats-server's JetStreamAccountLimits); -1: no limit."""

    max_memory: int = -1
    max_store: int = -1
    max_streams: int = -1
    max_consumers: int = -1
    max_ack_pending: int = -1
    memory_max_stream_bytes: int = -1
    storage_max_stream_bytes: int = -1
    max_bytes_required: bool = False


@attrs.frozen(kw_only=True)
class AccountOptions:
    """One account of the `accounts {}` block: its users (and nkey users), the
    permissions those without their own get, and its exports and imports."""

    name: str
    users: tuple[User, ...] = attrs.field(default=(), converter=tuple)
    default_permissions: Permissions | None = None
    exports: tuple[Export, ...] = attrs.field(default=(), converter=tuple)
    imports: tuple[Import, ...] = attrs.field(default=(), converter=tuple)
    #: JetStream for this account (its limits), None: not enabled.
    jetstream: AccountJetStream | None = None


@attrs.frozen(kw_only=True)
class JetStreamOptions:
    """The `jetstream` block (or `-js`): JetStream on this server, standalone.

    Sizes of -1 mean what nats-server picks (75% of memory; the store's disk, at most 1 TB);
    `sync_interval` is how often the store forces written data to disk (acknowledged
    messages are in the OS's hands at once: they survive a crash of the process)."""

    enabled: bool = True
    store_dir: str = ""
    max_memory_store: int = -1
    max_file_store: int = -1
    domain: str = ""
    sync_interval: float = defaults.JS_SYNC_INTERVAL
    sync_always: bool = False
    strict: bool = True
    unique_tag: str = ""
    max_buffered_msgs: int = 0
    max_buffered_size: int = 0
    request_queue_limit: int = defaults.JS_REQUEST_QUEUE_LIMIT


@attrs.frozen(kw_only=True)
class RouteAuthorization:
    """`cluster.authorization`: one route credential (no users list, no token)."""

    user: str = ""
    password: str = attrs.field(default="", repr=False)
    timeout: float | None = None


@attrs.frozen(kw_only=True)
class TLSOptions:
    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    verify: bool = False
    verify_and_map: bool = False
    verify_cert_and_check_known_urls: bool = False
    insecure: bool = False
    timeout: float = defaults.TLS_TIMEOUT
    cipher_suites: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    curve_preferences: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    min_version: str = "1.2"
    #: False, True, or a fallback delay in seconds ("auto" = 0.05 s).
    handshake_first: bool | float = False
    pinned_certs: tuple[str, ...] = attrs.field(default=(), converter=_strings)


@attrs.frozen(kw_only=True)
class ClusterPermissions:
    import_: SubjectPermission | None = None
    export: SubjectPermission | None = None


@attrs.frozen(kw_only=True)
class ClusterOptions:
    name: str = ""
    host: str = defaults.DEFAULT_HOST
    port: int = 0
    advertise: str = ""
    no_advertise: bool = False
    routes: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    authorization: RouteAuthorization | None = None
    permissions: ClusterPermissions | None = None
    tls: TLSOptions | None = None
    connect_retries: int = 0
    connect_backoff: bool = False
    pool_size: int = defaults.ROUTE_POOL_SIZE
    accounts: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    compression: str = "accept"
    #: 0 = use the server-wide value.
    ping_interval: float = 0.0
    ping_max: int = 0
    write_deadline: float = 0.0
    write_timeout: str = "default"

    def pinned_problems(self) -> list[str]:
        """nats-server's checks of `accounts` (accounts with a route of their own)."""
        if not self.accounts:
            return []
        if self.pool_size < 0:
            return ["pool_size cannot be negative if pinned accounts are specified"]
        seen: set[str] = set()
        for name in self.accounts:
            if name in seen:
                listed = "[" + " ".join(f'"{n}"' for n in self.accounts) + "]"  # (Go's %q)
                return [f'found duplicate account name "{name}" in pinned accounts list {listed}']
            seen.add(name)
        return []


# --- leaf nodes (trionats/leaf/) ---------------------------------------------------------


@attrs.frozen(kw_only=True)
class LeafUser:
    """A `leafnodes.authorization.users` entry: a leaf's credentials and the account it binds."""

    user: str = ""
    password: str = attrs.field(default="", repr=False)
    account: str = ""


@attrs.frozen(kw_only=True)
class LeafAuthorization:
    """`leafnodes.authorization`: what a leaf dialing us must present (one user, or users),
    and the account leaves without their own are bound to."""

    user: str = ""
    password: str = attrs.field(default="", repr=False)
    users: tuple[LeafUser, ...] = attrs.field(default=(), converter=tuple)
    #: A user's public nkey: a leaf signing our nonce with its seed is let in.
    nkey: str = ""
    account: str = ""
    timeout: float | None = None


@attrs.frozen(kw_only=True)
class LeafRemote:
    """One `leafnodes.remotes` entry: a hub this server dials as a leaf."""

    urls: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    #: The local account the connection is bound to (nats-server's `account` / `local`).
    account: str = ""
    #: A credentials file (user JWT and nkey seed) to log in to an operator-mode hub with.
    credentials: str = ""
    #: A user nkey seed to sign the hub's nonce with (the hub knows the public key).
    nkey: str = attrs.field(default="", repr=False)
    tls: TLSOptions | None = None
    deny_imports: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    deny_exports: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    no_randomize: bool = False
    #: Solicit, but act as the hub (nats-server's `hub: true`).
    hub: bool = False
    first_info_timeout: float = defaults.LEAF_FIRST_INFO_TIMEOUT
    dial_timeout: float = defaults.LEAF_DIAL_TIMEOUT
    disabled: bool = False
    ignore_discovered_servers: bool = False


@attrs.frozen(kw_only=True)
class LeafnodeOptions:
    """`leafnodes {}`: the port leaves dial (a port of 0: none) and the hubs we dial."""

    host: str = defaults.DEFAULT_HOST
    port: int = 0
    advertise: str = ""
    no_advertise: bool = False
    authorization: LeafAuthorization | None = None
    tls: TLSOptions | None = None
    #: Seconds between dials of a remote that dropped or could not be reached.
    reconnect: float = defaults.LEAF_RECONNECT_DELAY
    dial_timeout: float = defaults.LEAF_DIAL_TIMEOUT
    compression: str = "off"
    remotes: tuple[LeafRemote, ...] = attrs.field(default=(), converter=tuple)
    #: Leaves older than this version are refused (empty: any).
    min_version: str = ""
    write_deadline: float = 0.0
    write_timeout: str = "default"


@attrs.frozen(kw_only=True)
class WebsocketOptions:
    host: str = defaults.DEFAULT_HOST
    port: int = 0
    advertise: str = ""
    no_tls: bool = False
    tls: TLSOptions | None = None
    same_origin: bool = False
    allowed_origins: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    compression: bool = False
    handshake_timeout: float = 0.0
    authorization: Authorization | None = None
    no_auth_user: str = ""
    jwt_cookie: str = ""
    user_cookie: str = ""
    pass_cookie: str = ""
    token_cookie: str = ""
    ping_interval: float = 0.0
    #: Extra headers of the 101 response (name, value), in the configuration's order.
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)

    def problems(self, operator_mode: bool = False) -> list[str]:
        """What cannot run (nats-server's texts where it has them); nothing if disabled."""
        if self.port == 0:
            return []
        problems = []
        if self.tls is None and not self.no_tls:
            problems.append("websocket requires TLS configuration")
        for origin in self.allowed_origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https"):
                problems.append(
                    f'unable to parse allowed origin "{origin}": allowed origins must be '
                    "absolute URLs with http or https scheme"
                )
            elif not parts.netloc:
                problems.append(f'unable to parse allowed origin "{origin}": host is required')
        if self.jwt_cookie and not operator_mode:
            # nats-server's check: a JWT needs trusted operators.
            problems.append(
                "trusted operators or trusted keys configuration is required for JWT "
                f'authentication via cookie "{self.jwt_cookie}"'
            )
        for name, value in self.headers:
            problem = _ws_header_problem(name, value)
            if problem:
                problems.append(problem)
        if not (-1 <= self.port <= 65535):
            problems.append(f"websocket port {self.port} is out of range")
        return problems


@attrs.frozen(kw_only=True)
class Options:
    # listening and identity
    host: str = defaults.DEFAULT_HOST
    port: int = defaults.DEFAULT_PORT
    server_name: str = ""
    #: `host[:port]` given to clients (INFO host, port, connect_urls) and to peers instead of
    #: the listener's address; see hostport.parse_host_port.
    client_advertise: str = ""
    #: Informational: /varz `tags`.
    server_tags: tuple[str, ...] = attrs.field(default=(), converter=_tags)

    # limits
    max_payload: int = defaults.MAX_PAYLOAD
    max_control_line: int = defaults.MAX_CONTROL_LINE
    max_connections: int = defaults.MAX_CONNECTIONS
    max_subscriptions: int = defaults.MAX_SUBSCRIPTIONS
    max_sub_tokens: int = 0
    max_pending: int = defaults.MAX_PENDING
    write_deadline: float = defaults.WRITE_DEADLINE
    write_timeout: str = "default"
    ping_interval: float = defaults.PING_INTERVAL
    ping_max: int = defaults.PING_MAX
    no_header_support: bool = False
    disable_sublist_cache: bool = False
    no_fast_producer_stall: bool = False
    max_closed_clients: int = defaults.MAX_CLOSED_CLIENTS
    lame_duck_duration: float = defaults.LAME_DUCK_DURATION
    lame_duck_grace_period: float = defaults.LAME_DUCK_GRACE_PERIOD
    connect_error_reports: int = defaults.CONNECT_ERROR_REPORTS
    reconnect_error_reports: int = defaults.RECONNECT_ERROR_REPORTS

    # logging
    debug: bool = False
    trace: bool = False
    trace_verbose: bool = False
    logtime: bool = True
    logtime_utc: bool = False
    log_file: str = ""
    #: "text" (nats-server's lines) or "json" (one ECS object per line, for ELK).
    log_format: str = "text"
    log_size_limit: int = 0
    log_max_num: int = 0
    max_traced_msg_len: int = 0
    syslog: bool = False
    remote_syslog: str = ""

    # monitoring
    http_host: str = ""  # empty: the client listener's host, as nats-server
    http_port: int = 0
    https_port: int = 0
    http_base_path: str = ""

    # security
    authorization: Authorization | None = None
    no_auth_user: str = ""
    tls: TLSOptions | None = None
    allow_non_tls: bool = False

    # other listeners
    cluster: ClusterOptions | None = None
    websocket: WebsocketOptions | None = None
    leafnodes: LeafnodeOptions | None = None

    # accounts: each its own subject space (core/accounts.py); the global account `$G`
    # holds `authorization` users
    accounts: tuple[AccountOptions, ...] = attrs.field(default=(), converter=tuple)
    system_account: str = "$SYS"
    no_system_account: bool = False

    # JetStream (trionats/jetstream/): None when not configured
    jetstream: JetStreamOptions | None = None
    #: The top-level `store_dir` (or `-sd`): JetStream's, when its block names none.
    store_dir: str = ""
    # operator mode (auth/operator.py): the trusted operators' JWTs (read from their files by
    # the loader), the account resolver ("MEMORY" is the only one) and its preloaded
    # account JWTs (account public key, JWT); the accounts are then named by public key
    operators: tuple[str, ...] = attrs.field(default=(), converter=_strings, repr=False)
    resolver: str = ""
    resolver_preload: tuple[tuple[str, str], ...] = attrs.field(
        default=(), converter=_pairs, repr=False
    )

    # files
    pid_file: str = ""
    ports_file_dir: str = ""
    config_file: str = ""

    def check(self) -> None:
        """Raise ConfigError listing every setting that cannot run."""
        problems = []
        if " " in self.server_name:
            problems.append("server name cannot contain spaces")
        if self.client_advertise:
            try:
                parse_host_port(self.client_advertise, self.port)
            except ValueError as exc:  # nats-server fails so when it starts listening
                problems.append(
                    "Error setting server INFO with ClientAdvertise value of "
                    f"{self.client_advertise}, err={exc}"
                )
        if not (0 <= self.port <= 65535 or self.port == defaults.RANDOM_PORT):
            problems.append(f"port {self.port} is out of range")
        if not (0 <= self.http_port <= 65535 or self.http_port == defaults.RANDOM_PORT):
            problems.append(f"http_port {self.http_port} is out of range")
        if not (0 <= self.https_port <= 65535 or self.https_port == defaults.RANDOM_PORT):
            problems.append(f"https_port {self.https_port} is out of range")
        if self.http_port and self.https_port:
            problems.append(
                f"can't specify both HTTP ({self.http_port}) and HTTPs ({self.https_port}) ports"
            )
        elif self.https_port and self.tls is None:
            # nats-server starts, then fails with this: refusing before start is clearer.
            problems.append("Can't start monitoring: TLS cert and key required for HTTPS")
        if self.max_payload <= 0:
            problems.append("max_payload must be positive")
        if self.max_payload > self.max_pending:
            problems.append(
                f"max_payload ({self.max_payload}) cannot be higher than max_pending "
                f"({self.max_pending})"
            )
        if self.max_control_line <= 0:
            problems.append("max_control_line must be positive")
        if self.ping_interval <= 0:
            problems.append("ping_interval must be positive")
        if self.write_deadline <= 0:
            problems.append("write_deadline must be positive")
        policies = (self.write_timeout, self.cluster.write_timeout if self.cluster else "default")
        if any(policy not in ("default", "close", "retry") for policy in policies):
            problems.append("write_timeout must be 'default', 'close' or 'retry'")
        if not 0 <= self.max_sub_tokens <= 255:
            problems.append("max_sub_tokens must be between 0 (unlimited) and 255")
        try:  # only when used: nats-server ignores remote_syslog behind a log file
            syslog_destination(
                log_file=self.log_file, syslog=self.syslog, remote_syslog=self.remote_syslog
            )
        except SyslogError as exc:  # nats-server's text; it fails when it starts logging
            problems.append(str(exc))
        if self.system_account and self.system_account != "$SYS" and not self.no_system_account:
            known = {account.name for account in self.accounts}
            known.update(key for key, _ in self.resolver_preload)
            if self.system_account not in known:
                problems.append("error resolving system account: account missing")
        if self.no_auth_user:
            names = self.user_names()
            if not names:
                problems.append(
                    f'no_auth_user: "{self.no_auth_user}" present, but users/nkeys are not defined'
                )
            elif self.no_auth_user not in names:
                problems.append(
                    f'no_auth_user: "{self.no_auth_user}" not present as user or nkey in '
                    "authorization block or account configuration"
                )
        if self.log_format not in ("text", "json"):
            problems.append(f'log_format must be "text" or "json", not "{self.log_format}"')
        if 0 < self.lame_duck_duration <= self.lame_duck_grace_period:
            problems.append(
                f"lame duck grace period ({_go_duration(self.lame_duck_grace_period)}) should be "
                f"strictly lower than lame duck duration ({_go_duration(self.lame_duck_duration)})"
            )
        if self.leafnodes is not None:
            problems += self._leafnode_problems()
        if self.websocket is not None and self.websocket.port:
            problems += self.websocket.problems(operator_mode=bool(self.operators))
            problems += self._websocket_auth_problems()
        problems += self._jetstream_problems()
        if self.cluster is not None:
            problems += self.cluster.pinned_problems()
        if problems:
            raise ConfigError("\n".join(problems))

    def _jetstream_problems(self) -> list[str]:
        """JetStream runs on a standalone server only (so far): refused in a cluster rather
        than half-working; and never in the system account, as nats-server."""
        js = self.jetstream
        if js is None or not js.enabled:
            return []
        problems = []
        if js.store_dir and self.store_dir and js.store_dir != self.store_dir:
            problems.append("Duplicate 'store_dir' configuration")
        if self.cluster is not None and self.cluster.port:
            problems.append("jetstream: clustered JetStream is not supported by trionats yet "
                            "(remove the cluster block or the jetstream block)")  # fmt: skip
        for account in self.accounts:
            if account.jetstream is not None and account.name == self.system_account:
                problems.append("jetstream can not be enabled on the system account")
        return problems

    @property
    def jetstream_enabled(self) -> bool:
        return self.jetstream is not None and self.jetstream.enabled

    def user_names(self) -> set[str]:
        """Every configured user name and nkey: `authorization` users and accounts' users."""
        users = list(self.authorization.users) if self.authorization is not None else []
        for account in self.accounts:
            users += account.users
        return {user.user or user.nkey for user in users}

    def _leafnode_problems(self) -> list[str]:
        leaf = self.leafnodes
        problems = []
        if not (0 <= leaf.port <= 65535 or leaf.port == defaults.RANDOM_PORT):
            problems.append(f"leafnode port {leaf.port} is out of range")
        if leaf.write_timeout not in ("default", "close", "retry"):
            problems.append("write_timeout must be 'default', 'close' or 'retry'")
        return problems

    def _websocket_auth_problems(self) -> list[str]:
        """nats-server's validateWebsocketOptions rules for the websocket auth override."""
        ws = self.websocket
        names = self.user_names()
        own = ws.authorization
        problems = []
        if ws.no_auth_user and ws.no_auth_user not in names:
            if not names:
                problems.append(
                    f'no_auth_user: "{ws.no_auth_user}" present, but users/nkeys are not defined'
                )
            else:
                problems.append(
                    f'no_auth_user: "{ws.no_auth_user}" not present as user or nkey in '
                    "authorization block or account configuration"
                )
        if names and own is not None:
            if own.user:
                problems.append(
                    "websocket authentication username not compatible with presence of users/nkeys"
                )
            if own.token:
                problems.append(
                    "websocket authentication token not compatible with presence of users/nkeys"
                )
        return problems


def _go_duration(seconds: float) -> str:
    """Seconds as Go prints a time.Duration ("10s", "1m0s", "1.5s") for nats-server's texts."""
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:g}s"
    if minutes:
        hours, minutes = divmod(int(minutes), 60)
        text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
    return text
