"""The server's settings: one frozen options object, built from flags (and, later, a config file).

Field names follow nats-server's configuration keys; durations are float seconds and sizes are
bytes. Derived state (the bound port, the server id) lives on the Server, not here.
"""

from __future__ import annotations

import attrs

from . import defaults
from .errors import ConfigError


@attrs.frozen(kw_only=True)
class Options:
    # listening and identity
    host: str = defaults.DEFAULT_HOST
    port: int = defaults.DEFAULT_PORT
    server_name: str = ""
    client_advertise: str = ""

    # limits
    max_payload: int = defaults.MAX_PAYLOAD
    max_control_line: int = defaults.MAX_CONTROL_LINE
    max_connections: int = defaults.MAX_CONNECTIONS
    max_subscriptions: int = defaults.MAX_SUBSCRIPTIONS
    max_pending: int = defaults.MAX_PENDING
    write_deadline: float = defaults.WRITE_DEADLINE
    ping_interval: float = defaults.PING_INTERVAL
    ping_max: int = defaults.PING_MAX
    no_header_support: bool = False
    disable_sublist_cache: bool = False

    # logging
    debug: bool = False
    trace: bool = False
    logtime: bool = True
    logtime_utc: bool = False
    log_file: str = ""

    # files
    pid_file: str = ""
    ports_file_dir: str = ""
    config_file: str = ""

    def check(self) -> None:
        """Raise ConfigError listing every setting that cannot run."""
        problems = []
        if " " in self.server_name:
            problems.append("server name cannot contain spaces")
        if not (0 <= self.port <= 65535 or self.port == defaults.RANDOM_PORT):
            problems.append(f"port {self.port} is out of range")
        if self.max_payload <= 0:
            problems.append("max_payload must be positive")
        if self.max_payload > self.max_pending:
            problems.append(
                f"max_payload ({self.max_payload}) can not be higher than max_pending "
                f"({self.max_pending})"
            )
        if self.max_control_line <= 0:
            problems.append("max_control_line must be positive")
        if self.ping_interval <= 0:
            problems.append("ping_interval must be positive")
        if self.write_deadline <= 0:
            problems.append("write_deadline must be positive")
        if problems:
            raise ConfigError("\n".join(problems))
