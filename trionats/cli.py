"""Command line: nats-server's flags (Go `flag` syntax) -> Options -> logging -> trio.run(serve).

Go's flag rules apply: one or two dashes, `-p 4222` or `-p=4222`, booleans as `-D` or
`-D=false`, and parsing stops at the first argument that is not a flag. A flag that is not
defined, or a bad value, prints the problem and the usage and exits 2 (nats-server prints the
same but exits 0, which hides mistakes in scripts and unit files).

With `-c`, the configuration file is read first and the flags given on the command line are
applied over it, as nats-server does; `-t` checks the file and exits 0 or 1 without starting.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from . import __version__, defaults
from . import logging as tlog
from .errors import ConfigError, StartupError
from .options import (
    Authorization,
    ClusterOptions,
    JetStreamOptions,
    Options,
    RouteAuthorization,
    TLSOptions,
)
from .server import Server
from .syslog import SyslogError

USAGE = """\
Usage: trionats [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222; -1 picks a random port)
    -n, --name, --server_name <name> Server name (default: the server id)
        --client_advertise <string>  Client URL (host[:port]) to advertise to clients and servers
    -P, --pid <file>                 File to store the process id
        --ports_file_dir <dir>       Write a ports file (trionats_<pid>.ports) in this directory
    -m, --http_port <port>           Use port for http monitoring (-1 picks a random port)
    -ms, --https_port <port>         Use port for https monitoring (needs TLS configured)
    -c, --config <file>              Configuration file (NATS conf, JSON, or TOML if *.toml)
    -sl, --signal <cmd>[=<pid>]      Send a signal to a running trionats (pid or pid file) and exit:
                                     reload (SIGHUP), term (SIGTERM), quit (SIGINT), stop (SIGKILL),
                                     reopen (SIGUSR1: reopen the log file),
                                     ldm (SIGUSR2: lame duck mode, then exit)
    -t                               Test the configuration file and exit (0 valid, 1 invalid)

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true; -T=false to turn off)
        --logtime_utc                Timestamps in UTC instead of the local time zone
        --log_format <text|json>     text (nats-server's lines) or json (ECS, one object a line)
    -s, --syslog                     Log to the local syslog daemon (/dev/log)
    -r, --remote_syslog <addr>       Log to this syslog server (udp://host:514, tcp://, unix://)
        --log_size_limit <bytes>     Rotate the log file past this size (default: 0, no rotation)
        --max_traced_msg_len <len>   Cut traced payloads past this length (default: 0, unlimited)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (same as -V here)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes (nats://host:port)
        --cluster_name <string>      Cluster name (all servers of a cluster use the same)
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --no_advertise <bool>        Do not advertise known cluster IPs to clients
        --connect_retries <number>   For implicit routes, number of connect retries

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
"""

# Flags nats-server has that later work will implement; refused clearly until then.
NOT_YET: set[str] = set()
# Flags of nats-server features outside trionats' scope (the Go profiler port).
OUT_OF_SCOPE = {"profile"}


def tls_help() -> str:
    """What --help_tls prints: the tls block's keys and the cipher suites trionats accepts."""
    from .tls import CIPHER_SUITES, TLS13_SUITES

    suites = "\n".join(f"    {name}" for name in (*CIPHER_SUITES, *TLS13_SUITES))
    return f"""
TLS is configured in a `tls` block of the configuration file (top level for clients and
HTTPS monitoring, inside `cluster` for routes, inside `websocket` for WebSocket clients):

    tls {{
        cert_file:      "./certs/server-cert.pem"
        key_file:       "./certs/server-key.pem"
        ca_file:        "./certs/ca.pem"     # CA that signs client certificates
        verify:         true                 # clients must present a certificate
        verify_and_map: true                 # ... whose subject names the user
        timeout:        2                    # seconds for the TLS handshake
        min_version:    "1.2"                # or "1.3"
        handshake_first: false               # TLS before INFO (clients that ask for it)

        cipher_suites: [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        ]
    }}

Available cipher suites (TLS 1.3 suites are always on and cannot be chosen):
{suites}

curve_preferences is not supported by trionats (Python's ssl module picks the groups).
See docs/security.md for TLS with clients, routes, WebSocket and monitoring.
"""


class UsageError(Exception):
    pass


class CommandError(UsageError):
    """An unknown command word (not a flag): nats-server prints only the message and exits 1."""


def _parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(text)


def _parse_int(text: str) -> int:
    return int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)


class _Flags:
    """The parsed command line: option overrides plus the few flags that act by themselves."""

    def __init__(self) -> None:
        self.overrides: dict[str, object] = {}
        self.show_help = False
        self.show_version = False
        self.show_tls_help = False
        self.check_config = False
        self.signal = ""
        self.config_file = ""
        #: Cluster flags: fields applied over the file's cluster block (not replacing it).
        self.cluster: dict[str, object] = {}
        #: --tls* flags: a TLS block from flags alone, replacing the file's (see _tls_block).
        self.tls: dict[str, object] = {}
        #: -js: JetStream on, over the file's block (its other settings kept).
        self.jetstream = False


def _setter(field: str, convert: Callable[[str], object]) -> Callable[[_Flags, str], None]:
    def apply(flags: _Flags, value: str) -> None:
        flags.overrides[field] = convert(value)

    return apply


def _levels(debug: bool, trace: bool) -> Callable[[_Flags, str], None]:
    def apply(flags: _Flags, value: str) -> None:
        if _parse_bool(value):
            if debug:
                flags.overrides["debug"] = True
            if trace:
                flags.overrides["trace"] = True

    return apply


def _flag(attribute: str) -> Callable[[_Flags, str], None]:
    def apply(flags: _Flags, value: str) -> None:
        setattr(flags, attribute, _parse_bool(value))

    return apply


def _log_format(text: str) -> str:
    if text not in ("text", "json"):
        raise ValueError(text)
    return text


def _client_advertise(flags: _Flags, value: str) -> None:
    """--client_advertise host[:port]; empty leaves the file's value, as nats-server."""
    if value:
        flags.overrides["client_advertise"] = value


def _config(flags: _Flags, value: str) -> None:
    flags.config_file = value


def _auth_flag(flags: _Flags, **fields: str) -> None:
    """--user/--pass (single user) and --auth (token): an authorization block over the file's."""
    current = flags.overrides.get("authorization") or Authorization()
    flags.overrides["authorization"] = attrs.evolve(current, **fields)


def _cluster_setter(field: str, convert: Callable[[str], object]) -> Callable[[_Flags, str], None]:
    def apply(flags: _Flags, value: str) -> None:
        flags.cluster[field] = convert(value)

    return apply


def _cluster_listen(flags: _Flags, value: str) -> None:
    """--cluster nats://[user:pass@]host:port: the route listener (and its credential)."""
    parts = urllib.parse.urlsplit(value if "://" in value else f"nats://{value}")
    if not parts.hostname or parts.port is None:
        raise ValueError(value)
    flags.cluster["host"] = parts.hostname
    flags.cluster["port"] = parts.port
    if parts.username:
        flags.cluster["authorization"] = RouteAuthorization(
            user=urllib.parse.unquote(parts.username),
            password=urllib.parse.unquote(parts.password or ""),
        )


def _routes(text: str) -> tuple[str, ...]:
    """--routes: comma-separated route URLs."""
    routes = tuple(url.strip() for url in text.split(",") if url.strip())
    for url in routes:
        parts = urllib.parse.urlsplit(url)
        if not parts.scheme or not parts.hostname or parts.port is None:
            raise ValueError(url)
    return routes


# name -> (is boolean, how to apply the value)
FLAGS: dict[str, tuple[bool, Callable[[_Flags, str], None]]] = {}
for _names, _is_bool, _apply in [
    (("a", "addr", "net"), False, _setter("host", str)),
    (("p", "port"), False, _setter("port", _parse_int)),
    (("n", "name", "server_name"), False, _setter("server_name", str)),
    (("client_advertise",), False, _client_advertise),
    (("P", "pid"), False, _setter("pid_file", str)),
    (("ports_file_dir",), False, _setter("ports_file_dir", str)),
    (("m", "http_port"), False, _setter("http_port", _parse_int)),
    (("ms", "https_port"), False, _setter("https_port", _parse_int)),
    (("tls",), True, lambda flags, value: flags.tls.update(enabled=_parse_bool(value))),
    (("tlscert",), False, lambda flags, value: flags.tls.update(cert_file=value)),
    (("tlskey",), False, lambda flags, value: flags.tls.update(key_file=value)),
    (("tlscacert",), False, lambda flags, value: flags.tls.update(ca_file=value)),
    (("tlsverify",), True, lambda flags, value: flags.tls.update(verify=_parse_bool(value))),
    (("l", "log"), False, _setter("log_file", str)),
    (("T", "logtime"), True, _setter("logtime", _parse_bool)),
    (("logtime_utc",), True, _setter("logtime_utc", _parse_bool)),
    (("s", "syslog"), True, _setter("syslog", _parse_bool)),
    (("r", "remote_syslog"), False, _setter("remote_syslog", str)),
    (("log_format",), False, _setter("log_format", _log_format)),
    (("log_size_limit",), False, _setter("log_size_limit", _parse_int)),
    (("max_traced_msg_len",), False, _setter("max_traced_msg_len", _parse_int)),
    (("D", "debug"), True, _levels(debug=True, trace=False)),
    (("V", "trace", "VV"), True, _levels(debug=False, trace=True)),
    (("DV", "DVV"), True, _levels(debug=True, trace=True)),
    (("c", "config"), False, _config),
    (("h", "help"), True, _flag("show_help")),
    (("help_tls",), True, _flag("show_tls_help")),
    (("v", "version"), True, _flag("show_version")),
    (("t",), True, _flag("check_config")),
    (("sl", "signal"), False, lambda flags, value: setattr(flags, "signal", value)),
    (("user",), False, lambda flags, value: _auth_flag(flags, user=value)),
    (("pass",), False, lambda flags, value: _auth_flag(flags, password=value)),
    (("auth",), False, lambda flags, value: _auth_flag(flags, token=value)),
    (("routes",), False, _cluster_setter("routes", _routes)),
    (("cluster", "cluster_listen"), False, _cluster_listen),
    (("cluster_name",), False, _cluster_setter("name", str)),
    (("cluster_advertise",), False, _cluster_setter("advertise", str)),
    (("no_advertise",), True, _cluster_setter("no_advertise", _parse_bool)),
    (("connect_retries",), False, _cluster_setter("connect_retries", _parse_int)),
    (("js", "jetstream"), True, _flag("jetstream")),
    (("sd", "store_dir"), False, _setter("store_dir", str)),
]:
    for _name in _names:
        FLAGS[_name] = (_is_bool, _apply)


def parse_args(argv: list[str]) -> _Flags:
    """Parse argv (without the program name) the way Go's flag package does."""
    flags = _Flags()
    args = list(argv)
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        if arg == "--":
            args.pop(0)
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        if not name or name[0] in "-=":
            raise UsageError(f"bad flag syntax: {arg}")
        args.pop(0)
        value: str | None = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in NOT_YET:
            raise UsageError(f"flag -{name} is not supported by trionats yet")
        if name in OUT_OF_SCOPE:
            raise UsageError(f"flag -{name} is not supported by trionats")
        if name not in FLAGS:
            raise UsageError(f"flag provided but not defined: -{name}")
        is_bool, apply = FLAGS[name]
        if value is None:
            if is_bool:
                value = "true"
            elif args:
                value = args.pop(0)
            else:
                raise UsageError(f"flag needs an argument: -{name}")
        try:
            apply(flags, value)
        except ValueError:
            shown = tlog.redact_urls(value)  # a route URL's password stays off the screen
            raise UsageError(f'invalid value "{shown}" for flag -{name}: parse error') from None
    if args:  # as nats-server: only the first non-flag argument counts, in any case
        command = args[0].lower()
        if command == "version":
            flags.show_version = True
        elif command == "help":
            flags.show_help = True
        else:
            raise CommandError(f'unrecognized command: "{args[0]}"')
    return flags


def build_options(flags: _Flags, warnings: list | None = None) -> Options:
    """The configuration file's options (if any) with the command line's flags over them.

    nats-server's warnings about the file (integer durations, an empty file) go to `warnings`.
    """
    base = Options()
    if flags.config_file:
        from .config.load import load as load_config

        base = load_config(flags.config_file, warnings=warnings)
    if "routes" in flags.cluster and "port" not in flags.cluster and not _listens(base.cluster):
        raise ConfigError("solicited routes require cluster capabilities, e.g. --cluster")
    if flags.cluster:
        # Kept in the overrides so a reload re-applies them over the file's block.
        flags.overrides["cluster"] = attrs.evolve(base.cluster or ClusterOptions(), **flags.cluster)
    if flags.tls:
        flags.overrides["tls"] = _tls_block(flags.tls)
    if flags.jetstream:
        block = base.jetstream or JetStreamOptions()
        flags.overrides["jetstream"] = attrs.evolve(block, enabled=True)
    try:
        return attrs.evolve(base, **flags.overrides)
    except TypeError as exc:  # pragma: no cover - the flag table and Options agree
        raise ConfigError(str(exc)) from exc


def _listens(cluster: ClusterOptions | None) -> bool:
    """Does the file's cluster block say where to listen (nats-server: a host or a port)?"""
    return cluster is not None and (cluster.port != 0 or cluster.host != defaults.DEFAULT_HOST)


def _tls_block(given: dict) -> TLSOptions | None:
    """TLS from the --tls* flags, as nats-server's overrideTLS: any of them replaces the file's
    `tls` block with one made of the flags alone (certificate and key required), and
    `-tls=false` turns TLS off whatever the other flags say."""
    if given.get("enabled") is False:
        return None
    if not given.get("cert_file"):
        raise ConfigError("TLS Server certificate must be present and valid")
    if not given.get("key_file"):
        raise ConfigError("TLS Server private key must be present and valid")
    block = TLSOptions(
        cert_file=given["cert_file"],
        key_file=given["key_file"],
        ca_file=given.get("ca_file", ""),
        verify=bool(given.get("verify", False)),
    )
    from .tls import check  # ssl's rules: only when TLS flags are given

    check(block)
    return block


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags = parse_args(argv)
    except CommandError as exc:
        print(f"trionats: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"trionats: {exc}\n", file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    if flags.show_help:
        print(USAGE)
        return 0
    if flags.show_tls_help:
        print(tls_help())
        return 0
    if flags.show_version:
        print(f"trionats: v{__version__} (nats-server v{defaults.COMPAT_VERSION} protocol)")
        return 0
    if flags.signal:
        return send_signal(flags.signal)
    if flags.check_config and not flags.config_file:
        print("trionats: -t needs a configuration file (-c <file>)", file=sys.stderr)
        return 1
    warnings: list = []
    try:
        options = build_options(flags, warnings)
        options.check()
        if flags.check_config:  # (starting, the server finds out when it opens the file)
            tlog.check_log_file(options.log_file)
    except ConfigError as exc:
        print(f"trionats: {exc}", file=sys.stderr)
        return 1
    if flags.check_config and warnings:
        # nats-server's -t fails on warnings too: a checked file should be clean.
        print("trionats: " + "\n".join(str(w) for w in warnings), file=sys.stderr)
        return 1
    if flags.check_config:
        digest = hashlib.sha256(Path(flags.config_file).read_bytes()).hexdigest()
        print(f"trionats: configuration file {flags.config_file} is valid (sha256:{digest})")
        return 0
    try:
        tlog.configure_from(options, startup=True)
    except (SyslogError, tlog.LogFileError) as exc:  # as nats-server: no server without them
        print(f"trionats: {exc}", file=sys.stderr)
        return 1
    for warning in warnings:
        tlog.get_logger().warning(str(warning))
    try:
        trio.run(_serve, options, flags.overrides)
    except OSError as exc:
        tlog.get_logger().fatal(f"Error listening on port: {exc}")
        return 1
    except StartupError as exc:
        tlog.get_logger().fatal(str(exc))
        return 1
    return 0


SIGNALS = {
    "reload": signal.SIGHUP,
    "term": signal.SIGTERM,
    "quit": signal.SIGINT,
    "stop": signal.SIGKILL,
    "reopen": signal.SIGUSR1,
    "ldm": signal.SIGUSR2,  # lame duck mode (lameduck.py)
}
SIGNALS_NOT_YET: tuple[str, ...] = ()


def send_signal(spec: str) -> int:
    """`--signal <cmd>[=<pid or pid file>]`: signal a running trionats, as nats-server does."""
    command, _, target = spec.partition("=")
    if command in SIGNALS_NOT_YET:
        print(f'trionats: signal "{command}" is not supported by trionats yet', file=sys.stderr)
        return 1
    if command not in SIGNALS:
        print(f'trionats: unknown signal "{command}"', file=sys.stderr)
        return 1
    if target:
        path = Path(target)
        text = path.read_text().strip() if path.is_file() else target
        try:
            pids = [int(text)]
        except ValueError:
            print(f'trionats: invalid pid "{text}"', file=sys.stderr)
            return 1
    else:
        pids = running_servers()
        if not pids:
            print("trionats: no trionats processes running", file=sys.stderr)
            return 1
        if len(pids) > 1:
            listing = "\n".join(str(pid) for pid in pids)
            print(f"trionats: multiple trionats processes running:\n{listing}", file=sys.stderr)
            return 1
    try:
        os.kill(pids[0], SIGNALS[command])
    except OSError as exc:
        print(f"trionats: {exc}", file=sys.stderr)
        return 1
    return 0


def running_servers() -> list[int]:
    """PIDs of other processes running trionats (`trionats ...` or `python -m trionats ...`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [Path(arg.decode(errors="replace")).name for arg in argv[:3]]
        if "trionats" in words and "--signal" not in argv and "-sl" not in argv:
            found.append(int(entry.name))
    return sorted(found)


async def _serve(options: Options, overrides: dict) -> None:
    await Server(options, flag_overrides=overrides).serve(handle_signals=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
