"""structlog setup: nats-server's text log format, level switches, per-connection bound loggers.

Text lines look like nats-server's: `[<pid>] <date time> [INF] <prefix><message>`, where a
connection's logger carries a `conn` prefix such as `127.0.0.1:5000 - cid:7 - `. Levels are
switches as in nats-server (trace without debug is allowed), kept in `LEVELS` so a reload
can flip them for every logger at once.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from typing import Any, TextIO

import structlog

_LABELS = {
    "trace": "TRC",
    "debug": "DBG",
    "info": "INF",
    "warning": "WRN",
    "error": "ERR",
    "fatal": "FTL",
}


class Levels:
    """Which optional levels are on (info and above always are)."""

    debug = False
    trace = False


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
        if self.logtime:
            now = _dt.datetime.now(_dt.timezone.utc) if self.utc else _dt.datetime.now()
            return f"[{self.pid}] {now:%Y/%m/%d %H:%M:%S.%f} [{label}] {text}"
        return f"[{self.pid}] [{label}] {text}"


class _LineWriter:
    """The end of the chain: write a rendered line and flush (log lines must not be lost)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        self._stream.write(message + "\n")
        self._stream.flush()

    trace = debug = info = warning = error = fatal = msg


_log_file: TextIO | None = None


def configure(
    *,
    debug: bool = False,
    trace: bool = False,
    logtime: bool = True,
    logtime_utc: bool = False,
    log_file: str = "",
) -> None:
    """Set up logging for the process; may be called again (reload) to change it."""
    global _log_file, _configured
    _configured = True
    LEVELS.debug = debug
    LEVELS.trace = trace
    if _log_file is not None:
        _log_file.close()
        _log_file = None
    stream: TextIO = sys.stderr
    if log_file:
        _log_file = stream = open(log_file, "a", encoding="utf-8")  # noqa: SIM115 - kept open
    writer = _LineWriter(stream)
    structlog.configure(
        processors=[NatsTextRenderer(logtime=logtime, utc=logtime_utc)],
        wrapper_class=NatsLogger,
        logger_factory=lambda *args: writer,
        cache_logger_on_first_use=False,
    )


_configured = False


def get_logger(**bound: Any) -> NatsLogger:
    """A logger with nats-server's levels; sets up the defaults if nobody configured logging."""
    if not _configured:
        configure()
    return structlog.get_logger(**bound)
