"""structlog setup: nats-server's text lines or ECS JSON, level switches, no secrets, rotation.

Text lines look like nats-server's: `[<pid>] <date time> [INF] <prefix><message>`, where a
connection's logger carries a `conn` prefix such as `127.0.0.1:5000 - cid:7 - `. With
`log_format: json` each event is one ECS object per line (ecs-logging's structlog formatter),
for Filebeat/Logstash -> Elasticsearch; the fields a connection binds (`peer_host`, `cid`,
`kind`, ...) become ECS names (`client.ip`, `nats.cid`, ...) there, and `conn` is kept as
`nats.conn`. Levels are switches as in nats-server (trace without debug is allowed), kept
in `LEVELS` so a reload can flip them for every logger at once.

How it fits together: structlog is configured once, with one processor (`_dispatch`) and one
logger (`_SINK`) that read the current settings at each call. So loggers bound before a
reload (every connection's) follow a new format, file or size limit at once. The sink owns
the log file: size-based rotation (`log_size_limit`, `log_max_num`) and reopening after an
external rename (SIGUSR1), as nats-server's file logger does.

Syslog (`syslog`, `remote_syslog`, trionats/syslog.py): as in nats-server a log file wins
over it; its text lines are the message with the connection prefix, without pid, time or
label (syslog adds its own), and a `SyslogWriter` thread sends them, so a slow or absent
daemon never stalls the server. JSON lines go to syslog unchanged.

Secrets: `redact_connect` removes passwords, tokens and signatures from CONNECT traces with
nats-server's patterns; `redact_urls` hides the password of every URL in a text as Go's
`url.Redacted` does (`nats-route://user:xxxxx@host:port`), and is the one place that does so;
`redact_processor` is the safety net run on every event: values of keys named like secrets
are replaced, and CONNECT text and URL passwords in a message are redacted again.
"""

from __future__ import annotations

import datetime as _dt
import errno as errno_module
import functools
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import structlog

from . import __version__
from .errors import ConfigError
from .syslog import SyslogWriter
from .syslog import destination as syslog_destination

_LABELS = {
    "trace": "TRC",
    "debug": "DBG",
    "info": "INF",
    "warning": "WRN",
    "error": "ERR",
    "fatal": "FTL",
}

#: The `log.level` values of JSON lines (the NatsLogger method names).
JSON_LEVELS = frozenset(_LABELS)

LOG_FORMATS = ("text", "json")

REDACTED = "[REDACTED]"


class Levels:
    """Which optional levels are on (info and above always are), and trace settings."""

    debug = False
    trace = False
    #: Traced payloads longer than this are cut, with "..." (0 = no limit).
    max_traced_msg_len = 0


LEVELS = Levels()


class NatsLogger(structlog.BoundLoggerBase):
    """A bound logger whose methods are nats-server's levels; debug and trace are switches."""

    def trace(self, event: str, **kw: Any) -> None:
        if LEVELS.trace:
            self._proxy_to_logger("trace", event, **kw)

    def debug(self, event: str, **kw: Any) -> None:
        if LEVELS.debug:
            self._proxy_to_logger("debug", event, **kw)

    def info(self, event: str, **kw: Any) -> None:
        self._proxy_to_logger("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._proxy_to_logger("warning", event, **kw)

    def error(self, event: str, **kw: Any) -> None:
        self._proxy_to_logger("error", event, **kw)

    def fatal(self, event: str, **kw: Any) -> None:
        self._proxy_to_logger("fatal", event, **kw)


# --- secrets -----------------------------------------------------------------------------------

# nats-server's removeSecretsFromTrace patterns (server/client.go): the value (group 1) of
# `pass*` and `auth_token*` keys, then of the exact keys `proxy_sig`, `nkey` and `sig`.
_PREFIX_AUTH = re.compile(r'"?\s*(?:auth_token\S*?|pass\S*?)"?\s*[:=]\s*"?([^",\r\n}]*)')
_EXACT_AUTH = re.compile(
    r'(?:^|[^A-Za-z0-9_])"?\s*(?:proxy_sig|nkey|sig)"?\s*[:=]\s*"?([^",\r\n}]*)'
)


def _redact(pattern: re.Pattern, text: str) -> str:
    parts = []
    last = 0
    for match in pattern.finditer(text):
        parts.append(text[last : match.start(1)])
        parts.append(REDACTED)
        last = match.end(1)
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def redact_connect(text: str) -> str:
    """A CONNECT's JSON with the values of pass, auth_token, sig, nkey, proxy_sig replaced by
    `[REDACTED]`, exactly as nats-server traces it."""
    return _redact(_EXACT_AUTH, _redact(_PREFIX_AUTH, text))


#: A URL's `scheme://user:password@`. The password runs to the last `@` before a space, a
#: quote or the next URL, so an unescaped `@` or `/` in it is hidden too (and if a path or
#: query of the same URL holds an `@`, more is hidden than needed: the safe side).
_URL_PASSWORD = re.compile(
    r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:\"'\[\]]*):(?:(?!://)[^\s\"'])*@"
)

#: What Go's url.Redacted puts in place of a password.
URL_PASSWORD_MASK = "xxxxx"


def redact_urls(text: str) -> str:
    """`text` with the password of every URL in it replaced by `xxxxx`, as Go's
    `url.Redacted` (a user without a password stays). Works on URLs that do not parse too,
    so a malformed route URL in an error message loses its password all the same."""
    if "://" not in text or "@" not in text:
        return text
    return _URL_PASSWORD.sub(rf"\1:{URL_PASSWORD_MASK}@", text)


#: Words that make a key a secret's (a key is split at `_`, `.` and `-`).
_SECRET_WORDS = frozenset(
    {"pass", "password", "passwd", "pwd", "token", "secret", "sig", "signature", "nkey",
     "jwt", "credentials", "creds", "seed", "apikey", "bearer"}
)  # fmt: skip
_KEY_SPLIT = re.compile(r"[_.\-]")


@functools.lru_cache(maxsize=1024)
def is_secret_key(key: str) -> bool:
    """True for keys named like passwords, tokens, signatures and keys (`auth_token`,
    `password`, `proxy_sig`, `client.nkey`, ...)."""
    return any(word in _SECRET_WORDS for word in _KEY_SPLIT.split(key.lower()))


def _redact_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if is_secret_key(str(key)) else _redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def redact_processor(logger: Any, method: str, event_dict: dict) -> dict:
    """The safety net: no secret-named key's value, no CONNECT secret and no URL password
    reaches a line. Traced payloads are the users' data and stay as they are."""
    for key, value in event_dict.items():
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, dict | list | tuple):
            event_dict[key] = _redact_value(value)
        elif isinstance(value, str) and key != "event":
            event_dict[key] = redact_urls(value)
    for key in ("stack_trace", "error_message"):  # an exception may quote a CONNECT
        text = event_dict.get(key)
        if isinstance(text, str) and "CONNECT" in text:
            event_dict[key] = redact_connect(text)
    event = event_dict.get("event")
    if isinstance(event, str):
        if "CONNECT" in event:
            event = redact_connect(event)
        if "MSG_PAYLOAD" not in event:
            event = redact_urls(event)
        event_dict["event"] = event
    return event_dict


# --- traced payloads ---------------------------------------------------------------------------


def quoted_payload(payload: bytes) -> str:
    """A payload as nats-server traces it: a double-quoted, escaped string; past
    `max_traced_msg_len` bytes it is cut, with "..." inside the quotes."""
    limit = LEVELS.max_traced_msg_len
    if 0 < limit < len(payload):
        quoted = json.dumps(bytes(payload[:limit]).decode("utf-8", "replace"), ensure_ascii=False)
        return f'"{quoted[1:-1]}..."'
    return json.dumps(bytes(payload).decode("utf-8", "replace"), ensure_ascii=False)


# --- rendering ---------------------------------------------------------------------------------


class NatsTextRenderer:
    """Render an event as one nats-server style line."""

    def __init__(self, *, logtime: bool = True, utc: bool = False) -> None:
        self.logtime = logtime
        self.utc = utc
        self.pid = os.getpid()

    def __call__(self, logger: Any, method: str, event_dict: dict) -> str:
        label = _LABELS.get(method, "INF")
        prefix = event_dict.get("conn", "")
        if prefix:
            prefix += " - "
        text = f"{prefix}{event_dict.get('event', '')}"
        trace = event_dict.get("stack_trace")
        if trace:  # an internal error's traceback, on the lines after the message
            text = f"{text}\n{trace}"
        if self.logtime:
            now = _dt.datetime.now(_dt.timezone.utc) if self.utc else _dt.datetime.now()
            return f"[{self.pid}] {now:%Y/%m/%d %H:%M:%S.%f} [{label}] {text}"
        return f"[{self.pid}] [{label}] {text}"


def syslog_text(logger: Any, method: str, event_dict: dict) -> str:
    """A text line for syslog: the prefix and the message only, as nats-server's syslog
    logger writes it (the syslog header carries the time, pid and severity)."""
    prefix = event_dict.get("conn", "")
    event = event_dict.get("event", "")
    trace = event_dict.get("stack_trace")
    if trace:
        event = f"{event}\n{trace}"
    return f"{prefix} - {event}" if prefix else str(event)


#: Bound keys -> ECS field names in JSON lines (keys not listed go under `nats.`).
ECS_NAMES = {
    "peer_host": "client.ip",
    "peer_port": "client.port",
    "server_name": "service.node.name",
    "server_id": "nats.server_id",
    "conn": "nats.conn",
    "kind": "nats.kind",
    "reason": "nats.close_reason",
    "client_name": "nats.client.name",
    "client_lang": "nats.client.lang",
    "client_version": "nats.client.version",
    # An internal error (containment.py): the exception, as ECS names it.
    "stack_trace": "error.stack_trace",
    "error_type": "error.type",
    "error_message": "error.message",
}

#: Connection id labels (the text prefix's `cid:7`) -> the connection kind in JSON.
CONNECTION_KINDS = {
    "cid": "Client",
    "rid": "Router",
    "gid": "Gateway",
    "lid": "Leafnode",
    "wid": "Websocket",
    "mid": "MQTT",
}


def connection_fields(id_label: str, cid: int, host: str, port: int) -> dict[str, Any]:
    """What a connection's logger binds: the text prefix and the structured fields."""
    return {
        "conn": f"{host}:{port} - {id_label}:{cid}",
        "peer_host": host,
        "peer_port": port,
        "kind": CONNECTION_KINDS.get(id_label, id_label),
        id_label: cid,
    }


def peer_fields(host: str, port: int, label: str) -> dict[str, Any]:
    """What a logger binds for a connection without an id (a websocket upgrade, a monitoring
    HTTP connection): the text prefix `host:port - <label>` and the peer's fields."""
    return {"conn": f"{host}:{port} - {label}", "peer_host": host, "peer_port": port}


class EcsFields:
    """Map our bound keys to ECS names and add the fields every JSON line carries."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def __call__(self, logger: Any, method: str, event_dict: dict) -> dict:
        out: dict[str, Any] = {
            "@timestamp": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "service.name": "trionats",
            "service.type": "nats",
            "service.version": __version__,
            "process.pid": self.pid,
        }
        for key, value in event_dict.items():
            if key != "event" and (value is None or value == ""):
                continue  # not known (yet): no empty fields in the index
            if key == "event" or "." in key or key.startswith("@"):
                out[key] = value
            else:
                out[ECS_NAMES.get(key, f"nats.{key}")] = value
        return out


# --- the sink: stderr or a file with rotation ----------------------------------------------------


def _backup_name(path: str) -> str:
    """`<file>.YYYY.MM.DD.HH.MM.SS.<9-digit nanoseconds>`, local time, as nats-server."""
    now_ns = time.time_ns()
    stamp = _dt.datetime.fromtimestamp(now_ns // 1_000_000_000)
    return f"{path}.{stamp:%Y.%m.%d.%H.%M.%S}.{now_ns % 1_000_000_000:09d}"


_BACKUP_SUFFIX = re.compile(r"\.\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{9}")


class _Sink:
    """The one structlog logger: writes each rendered line to stderr, the log file or syslog.

    With a size limit, once the file grows past it the file is renamed to a timestamped
    backup, a new file is opened whose first line says so, and with `max_num` the oldest
    backups are deleted so that at most `max_num` files remain (current one included).
    """

    def __init__(self) -> None:
        self.file: TextIO | None = None
        self.path = ""
        self.size = 0
        self.limit = 0
        self.max_num = 0
        #: With syslog on (and no log file) every line goes there instead, by level.
        self.syslog: SyslogWriter | None = None

    @property
    def stream(self) -> TextIO:
        """The log file, or the current sys.stderr (looked up at each write)."""
        return self.file if self.file is not None else sys.stderr

    def open(self, path: str) -> None:
        """Log to `path` (appending), or to stderr if empty. LogFileError (nats-server's
        text) if it cannot be opened: lines then go to stderr."""
        self.close()
        self.path = path
        self.size = 0
        if path:
            try:
                self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            except OSError as exc:
                self.path = ""
                raise LogFileError(_open_error(path, exc.errno)) from None
            self.size = self.file.tell()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def msg(self, message: str) -> None:
        line = message + "\n"
        stream = self.stream
        stream.write(line)
        stream.flush()
        if self.path:
            self.size += len(line.encode("utf-8")) if not line.isascii() else len(line)
            if 0 < self.limit < self.size:
                self.rotate()

    def _emit(self, method: str, message: str) -> None:
        if self.syslog is not None:
            self.syslog.send(method, message)
        else:
            self.msg(message)

    def trace(self, message: str) -> None:
        self._emit("trace", message)

    def debug(self, message: str) -> None:
        self._emit("debug", message)

    def info(self, message: str) -> None:
        self._emit("info", message)

    def warning(self, message: str) -> None:
        self._emit("warning", message)

    def error(self, message: str) -> None:
        self._emit("error", message)

    def fatal(self, message: str) -> None:
        self._emit("fatal", message)

    def use_syslog(self, where: Any, *, connect_now: bool) -> None:
        """Send lines to this syslog destination (None: back to stderr or the file). The new
        destination is opened before the old one is closed; at startup (`connect_now`) a
        destination that cannot be dialed raises SyslogError and nothing changes."""
        current = self.syslog.destination if self.syslog is not None else None
        if where == current:
            return
        writer = SyslogWriter(where, connect_now=connect_now) if where is not None else None
        old, self.syslog = self.syslog, writer
        if old is not None:
            old.close(timeout=0)  # its thread sends what is queued by itself: no waiting here

    def rotate(self) -> None:
        path = self.path
        backup = _backup_name(path)
        self.close()
        try:
            os.rename(path, backup)
        except OSError:
            pass  # as nats-server: carry on in a new file all the same
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self.size = self.file.tell()
        self.limit, limit = 0, self.limit  # the next lines must not rotate again
        try:
            _direct("info", f"Rotated log, backup saved as {json.dumps(backup)}")
            if self.max_num > 0:
                self._purge()
        finally:
            self.limit = limit

    def _purge(self) -> None:
        path = Path(self.path)
        try:
            names = sorted(
                entry.name
                for entry in path.parent.iterdir()
                if entry.name.startswith(path.name + ".")
                and _BACKUP_SUFFIX.fullmatch(entry.name[len(path.name) :])
            )
        except OSError as exc:
            _direct("error", f"Unable to read directory {json.dumps(str(path.parent))} for log "
                             f"purge ({exc}), will attempt next rotation")  # fmt: skip
            return
        for name in names[: max(0, len(names) - (self.max_num - 1))]:
            try:
                (path.parent / name).unlink()
            except OSError as exc:
                _direct("error", f"Unable to remove backup log file {json.dumps(name)} ({exc}), "
                                 "will attempt next rotation")  # fmt: skip
                return
            _direct("info", f"Purged log file {json.dumps(name)}")


_SINK = _Sink()


class _Settings:
    """What `_dispatch` renders with; replaced as a whole by `configure`."""

    def __init__(self, processors: list) -> None:
        self.processors = processors


def _text_processors(logtime: bool, utc: bool, to_syslog: bool = False) -> list:
    if to_syslog:
        return [redact_processor, syslog_text]
    return [redact_processor, NatsTextRenderer(logtime=logtime, utc=utc)]


def _json_processors() -> list:
    return [redact_processor, EcsFields(), _EcsFormatter()]


class _EcsFormatter:
    """ecs-logging's structlog formatter; an event it cannot shape (a key both a value and a
    parent of others, say) still gives a valid ECS line, with the fields as a JSON string."""

    def __init__(self) -> None:
        import ecs_logging

        self.formatter = ecs_logging.StructlogFormatter(ensure_ascii=False)

    def __call__(self, logger: Any, method: str, event_dict: dict) -> str:
        backup = dict(event_dict)
        try:
            return self.formatter(logger, method, event_dict)
        except (TypeError, ValueError):
            kept = ("@timestamp", "event", "service.", "process.")
            fields = {key: backup.pop(key) for key in list(backup) if not key.startswith(kept)}
            backup["nats.fields"] = json.dumps(fields, default=repr)
            return self.formatter(logger, method, backup)


_SETTINGS = _Settings(_text_processors(True, False))


def _render(method: str, event_dict: dict) -> Any:
    for processor in _SETTINGS.processors:
        event_dict = processor(None, method, event_dict)
    return event_dict


def _dispatch(logger: Any, method: str, event_dict: dict) -> Any:
    """structlog's only processor: the chain of the current configuration."""
    return _render(method, event_dict)


def _direct(method: str, message: str) -> None:
    """Write a line bypassing the level switches (the sink's own messages)."""
    _SINK.msg(_render(method, {"event": message}))


# --- configuration -----------------------------------------------------------------------------

_configured = False

#: The Options fields that `configure_from` reads: a reload changing any reconfigures logging.
LOGGING_OPTIONS = frozenset(
    {"debug", "trace", "trace_verbose", "logtime", "logtime_utc", "log_file", "log_format",
     "log_size_limit", "log_max_num", "max_traced_msg_len", "syslog", "remote_syslog"}
)  # fmt: skip


def configure(
    *,
    debug: bool = False,
    trace: bool = False,
    logtime: bool = True,
    logtime_utc: bool = False,
    log_file: str = "",
    log_format: str = "text",
    log_size_limit: int = 0,
    log_max_num: int = 0,
    max_traced_msg_len: int = 0,
    syslog: bool = False,
    remote_syslog: str = "",
    startup: bool = False,
) -> None:
    """Set up logging for the process; may be called again (reload) to change it.

    `startup`: dial a syslog destination now and raise SyslogError (nats-server's text) if it
    cannot be reached, as nats-server exits then. Otherwise (a reload, in the event loop) the
    syslog thread dials it, and a failure is reported on stderr while lines keep queueing.
    """
    global _configured
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    where = syslog_destination(log_file=log_file, syslog=syslog, remote_syslog=remote_syslog)
    _SINK.use_syslog(where, connect_now=startup)
    LEVELS.debug = debug
    LEVELS.trace = trace
    LEVELS.max_traced_msg_len = max(0, max_traced_msg_len)
    _SETTINGS.processors = (
        _json_processors()
        if log_format == "json"
        else _text_processors(logtime, logtime_utc, to_syslog=where is not None)
    )
    if not _configured:
        structlog.configure(
            processors=[_dispatch],
            wrapper_class=NatsLogger,
            logger_factory=lambda *args: _SINK,
            cache_logger_on_first_use=False,
        )
        _configured = True
    if log_file != _SINK.path or (log_file and _SINK.file is None):
        _SINK.open(log_file)
    _SINK.limit = max(0, log_size_limit) if log_file else 0
    _SINK.max_num = max(0, log_max_num) if log_file else 0
    if 0 < _SINK.limit < _SINK.size:
        get_logger().info("Rotating logfile...")  # as nats-server: this line rotates it


def configure_from(options: Any, *, startup: bool = False) -> None:
    """`configure` with an Options tree's logging fields."""
    configure(
        debug=options.debug,
        trace=options.trace or options.trace_verbose,
        logtime=options.logtime,
        logtime_utc=options.logtime_utc,
        log_file=options.log_file,
        log_format=options.log_format,
        log_size_limit=options.log_size_limit,
        log_max_num=options.log_max_num,
        max_traced_msg_len=options.max_traced_msg_len,
        syslog=options.syslog,
        remote_syslog=options.remote_syslog,
        startup=startup,
    )


class LogFileError(ConfigError):
    """The log file cannot be opened; `str()` is nats-server's text."""


def _open_error(path: str, errno: int | None) -> str:
    """nats-server's (Go's) words: `error opening file: open <path>: no such file or directory`."""
    reason = os.strerror(errno).lower() if errno else "cannot be opened"
    return f"error opening file: open {path}: {reason}"


def check_log_file(path: str) -> None:
    """Raise LogFileError if `path` could not be opened for appending, without creating it
    (for -t and a reload: the file is opened only when logging starts using it)."""
    if not path:
        return
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        error = errno_module.EISDIR
    elif target.exists():
        error = 0 if os.access(target, os.W_OK) else errno_module.EACCES
    elif not parent.exists():
        error = errno_module.ENOENT
    elif not parent.is_dir():
        error = errno_module.ENOTDIR
    else:
        error = 0 if os.access(parent, os.W_OK | os.X_OK) else errno_module.EACCES
    if error:
        raise LogFileError(_open_error(path, error))


def reopen_log_file(log: Any) -> None:
    """SIGUSR1: reopen the log file by name (after an external rotation), as nats-server.
    If it cannot be opened any more, lines go to stderr and say so (nats-server exits)."""
    if not _SINK.path:
        log.info("File log re-open ignored, not a file logger")
        return
    try:
        _SINK.open(_SINK.path)
    except LogFileError as exc:
        log.error(str(exc))
        return
    if 0 < _SINK.limit < _SINK.size:
        _SINK.rotate()
    log.info("File log re-opened")


def get_logger(**bound: Any) -> NatsLogger:
    """A logger with nats-server's levels; sets up the defaults if nobody configured logging."""
    if not _configured:
        configure()
    return structlog.get_logger(**bound)
