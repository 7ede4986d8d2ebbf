"""Syslog destinations: nats-server's syslog lines, sent by a thread so logging never waits.

What nats-server does (logger/syslog.go over Go's log/syslog), and so what this module does:

- `syslog: true` (`-s`) writes to the local daemon: the first of `/dev/log`, `/var/run/syslog`,
  `/var/run/log` that accepts a unix datagram socket, then a unix stream socket. Facility
  daemon, and the "local" layout `<PRI>Jan _2 15:04:05 TAG[PID]: MSG`.
- `remote_syslog: "udp://host:514"` (`-r`; also `tcp://host:port` and `unix:///path`, which
  is a unix *stream* socket) dials that address. nats-server dials it with priority LOG_DEBUG
  only, which leaves the facility bits at 0 (kern); the layout is
  `<PRI>2006-01-02T15:04:05Z07:00 HOSTNAME TAG[PID]: MSG`, except over `unix://`, which
  gets the local layout.
- Levels: INF and TRC are notice, WRN warning, ERR err, FTL crit, DBG debug. MSG is the
  connection prefix and the message, without pid, time or level label. Every line ends in
  `\\n`; over TCP that newline is the only framing.
- A log file wins over both, and `remote_syslog` over `syslog` (server.go ConfigureLogger).
- A URL it cannot use, or a destination it cannot dial at startup, stops the server with
  `error invalid network type: "ftp"`, `error connecting to syslog: "dial tcp ...: connect:
  connection refused"`, ... (`destination` and `SyslogWriter(connect_now=True)` raise
  SyslogError with those texts).

Why a thread: a syslog daemon that is slow, gone or behind a dead TCP peer must not stall
the event loop, and Go's writer retries a failed write by dialing again, which for TCP can
take seconds. So the loop only appends the line to a queue bounded in bytes (past the bound
lines are dropped and counted, never waited for), and one thread per destination owns the
socket: it formats, sends, and on a failed write dials again and retries once, as Go does.
A failed dial keeps the lines queued and is tried again every `SYSLOG_RETRY_INTERVAL`; the
first failure of an outage is written to stderr, and once lines flow again the number dropped
is reported in a warning line. `close()` gives the thread `SYSLOG_CLOSE_TIMEOUT` to send what
is queued (the last lines before exit).
"""

from __future__ import annotations

import atexit
import datetime as _dt
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections import deque
from typing import NamedTuple

from . import defaults
from .hostport import AddrError, split_host_port

#: Where the local syslog daemon listens, tried in this order (Go's log/syslog). Tests point
#: it at a socket of their own.
LOCAL_PATHS: tuple[str, ...] = ("/dev/log", "/var/run/syslog", "/var/run/log")

# Severities (RFC 5424) of nats-server's levels.
_CRIT, _ERR, _WARNING, _NOTICE, _DEBUG = 2, 3, 4, 5, 7
SEVERITIES = {
    "fatal": _CRIT,
    "error": _ERR,
    "warning": _WARNING,
    "info": _NOTICE,
    "trace": _NOTICE,
    "debug": _DEBUG,
}
#: Facility of local lines (LOG_DAEMON); remote lines have facility 0 (see the docstring).
LOCAL_FACILITY = 3 << 3
REMOTE_FACILITY = 0

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


class SyslogError(Exception):
    """A syslog destination that cannot be used; the text is nats-server's."""


class Destination(NamedTuple):
    """Where lines go: network "local" (the daemon), "udp", "tcp" or "unix" (stream)."""

    network: str
    host: str = ""
    port: str = ""
    path: str = ""

    @property
    def local_layout(self) -> bool:
        """Go's log/syslog leaves the hostname out and uses a short time on unix sockets."""
        return self.network in ("local", "unix")

    @property
    def facility(self) -> int:
        return LOCAL_FACILITY if self.network == "local" else REMOTE_FACILITY

    def __str__(self) -> str:
        if self.network == "local":
            return "local syslog"
        if self.network == "unix":
            return f"unix://{self.path}"
        return f"{self.network}://{_join_host_port(self.host, self.port)}"


LOCAL = Destination("local")


def _quote(text: str) -> str:
    """Go's %q, near enough: a double-quoted string with escapes."""
    return json.dumps(text, ensure_ascii=False)


def _join_host_port(host: str, port: str | int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_error(detail: str) -> SyslogError:
    return SyslogError(f"error connecting to syslog: {_quote(detail)}")


def _split_host_port(network: str, address: str) -> tuple[str, str]:
    """Go's net.SplitHostPort, with dial's error texts."""
    if not address:
        raise _connect_error(f"dial {network}: missing address")
    try:
        return split_host_port(address)
    except AddrError as exc:
        raise _connect_error(f"dial {network}: {exc}") from None


def parse_url(url: str) -> Destination:
    """A `remote_syslog` URL as nats-server reads it (Go's url.Parse, then the scheme).

    SyslogError with nats-server's texts: `parse "127.0.0.1:514": first path segment in URL
    cannot contain colon`, `error invalid network type: "ftp"`, and the dial errors it gives
    for a URL without an address or a port."""
    scheme, colon, _ = url.partition(":")
    if colon and not scheme:
        raise SyslogError(f"parse {_quote(url)}: missing protocol scheme")
    if not (colon and _SCHEME.fullmatch(scheme)):
        scheme = ""
        if ":" in url.split("/", 1)[0]:
            raise SyslogError(
                f"parse {_quote(url)}: first path segment in URL cannot contain colon"
            )
    network = scheme.lower()
    if network not in ("udp", "tcp", "unix"):
        raise SyslogError(f"error invalid network type: {_quote(network)}")
    parts = urllib.parse.urlsplit(url)
    if network == "unix":
        path = urllib.parse.unquote(parts.path)
        if not path:
            raise _connect_error("dial unix: missing address")
        return Destination("unix", path=path)
    host, port = _split_host_port(network, parts.netloc.rpartition("@")[2])
    return Destination(network, host=host, port=port)


def destination(
    *, log_file: str = "", syslog: bool = False, remote_syslog: str = ""
) -> Destination | None:
    """Where the server's lines go by syslog, if they do: as nats-server, a log file wins,
    then `remote_syslog`, then `syslog`. SyslogError for a URL it cannot use."""
    if log_file:
        return None
    if remote_syslog:
        return parse_url(remote_syslog)
    return LOCAL if syslog else None


def _errno_text(exc: OSError) -> str:
    """An OSError as Go's net errors word it ("connection refused", "i/o timeout")."""
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def dial(where: Destination) -> socket.socket:
    """A connected socket to the destination (blocking, up to SYSLOG_CONNECT_TIMEOUT), or
    SyslogError worded as nats-server's."""
    if where.network == "local":
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            for path in LOCAL_PATHS:
                sock = socket.socket(socket.AF_UNIX, kind)
                try:
                    sock.settimeout(defaults.SYSLOG_CONNECT_TIMEOUT)
                    sock.connect(path)
                    return sock
                except OSError:
                    sock.close()
        raise _connect_error("Unix syslog delivery error")
    if where.network == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(defaults.SYSLOG_CONNECT_TIMEOUT)
            sock.connect(where.path)
            return sock
        except OSError as exc:
            sock.close()
            raise _connect_error(f"dial unix {where.path}: connect: {_errno_text(exc)}") from None
    kind = socket.SOCK_DGRAM if where.network == "udp" else socket.SOCK_STREAM
    try:
        # An empty host is the local system, as in Go.
        found = socket.getaddrinfo(where.host or None, where.port, type=kind)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _connect_error(f"dial {where.network}: lookup {where.host}: {reason}") from None
    failure = ""
    for family, sock_type, proto, _, address in found:
        sock = socket.socket(family, sock_type, proto)
        try:
            sock.settimeout(defaults.SYSLOG_CONNECT_TIMEOUT)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            shown = _join_host_port(address[0], address[1])
            failure = failure or f"dial {where.network} {shown}: connect: {_errno_text(exc)}"
    raise _connect_error(failure or f"dial {where.network}: no address")


def program_tag() -> str:
    """The tag of every line: the name the program was started as (Go: os.Args[0]'s base name,
    so a `nats-server` link to trionats logs as nats-server); `trionats` for `python -m`."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not name or name.endswith(".py") or name == "-c":
        return "trionats"
    return name


def _rfc3339(stamp: _dt.datetime) -> str:
    offset = stamp.utcoffset() or _dt.timedelta(0)
    if not offset:
        return f"{stamp:%Y-%m-%dT%H:%M:%S}Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_line(
    priority: int, when: float, tag: str, pid: int, message: str, *, hostname: str | None
) -> bytes:
    """One line in Go's log/syslog layout, local time: without a hostname the local layout
    `<PRI>Jan _2 15:04:05 TAG[PID]: MSG`, with one `<PRI>RFC3339 HOSTNAME TAG[PID]: MSG`."""
    stamp = _dt.datetime.fromtimestamp(when).astimezone()
    if hostname is None:
        clock = f"{_MONTHS[stamp.month - 1]} {stamp.day:2d} {stamp:%H:%M:%S}"
        head = f"<{priority}>{clock} {tag}[{pid}]: "
    else:
        head = f"<{priority}>{_rfc3339(stamp)} {hostname} {tag}[{pid}]: "
    newline = "" if message.endswith("\n") else "\n"
    return (head + message + newline).encode("utf-8", "replace")


class SyslogWriter:
    """One syslog destination: `send` queues a line (never blocks), a thread delivers it.

    With `connect_now` (startup) the first dial happens in the caller and its failure raises
    SyslogError, so the server does not start (as nats-server); otherwise (a reload, inside
    the event loop) the thread dials.
    """

    def __init__(
        self,
        where: Destination,
        *,
        connect_now: bool = False,
        tag: str | None = None,
        queue_bytes: int = defaults.SYSLOG_QUEUE_BYTES,
    ) -> None:
        self.destination = where
        self.tag = tag or program_tag()
        self.pid = os.getpid()
        # Go's log/syslog takes os.Hostname() when it dials; local lines carry none.
        self.hostname = None if where.local_layout else socket.gethostname()
        self.queue_bytes = queue_bytes
        #: Lines dropped so far: the queue was full (the destination slow or unreachable), or a
        #: line could not be written even on a fresh connection.
        self.dropped = 0
        self._reported_drops = 0
        self._lines: deque[tuple[int, float, str]] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self._closing = False
        self._failing = False
        self._sock: socket.socket | None = dial(where) if connect_now else None
        self._thread = threading.Thread(target=self._run, name=f"syslog {where}", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # --- the event loop's side -------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Bytes of lines waiting to be sent."""
        return self._queued

    def send(self, method: str, message: str) -> None:
        """Queue one line at the level `method` (a NatsLogger method name)."""
        priority = self.destination.facility | SEVERITIES.get(method, _NOTICE)
        size = len(message)
        with self._cond:
            if self._closing:
                return
            if self._queued + size > self.queue_bytes:
                self.dropped += 1
                return
            self._lines.append((priority, time.time(), message))
            self._queued += size
            self._cond.notify()

    def close(self, timeout: float = defaults.SYSLOG_CLOSE_TIMEOUT) -> None:
        """Stop taking lines; give the thread `timeout` seconds to send the queued ones."""
        atexit.unregister(self.close)
        with self._cond:
            self._closing = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # --- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._lines and not self._closing:
                        self._cond.wait()
                    if not self._lines:
                        return
                    priority, when, message = self._lines[0]
                data = format_line(priority, when, self.tag, self.pid, message,
                                   hostname=self.hostname)  # fmt: skip
                if not self._deliver(data):
                    with self._cond:  # the dial failed: keep the lines, try again later
                        if not self._closing:
                            self._cond.wait(defaults.SYSLOG_RETRY_INTERVAL)
                        if self._closing:
                            return
                    continue
                with self._cond:
                    self._lines.popleft()
                    self._queued -= len(message)
                if self.dropped > self._reported_drops:
                    self._report_drops()
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _deliver(self, data: bytes) -> bool:
        """Send one line; False when the destination cannot be dialed (the line stays queued).

        As Go's log/syslog: a failed write closes the connection, dials again and retries
        once; a line that fails on the fresh connection too is dropped."""
        for _attempt in range(2):
            if self._sock is None:
                try:
                    self._sock = dial(self.destination)
                except SyslogError as exc:
                    self._outage(str(exc))
                    return False
            try:
                self._sock.settimeout(defaults.SYSLOG_WRITE_TIMEOUT)
                self._sock.sendall(data)
                self._failing = False
                return True
            except OSError:
                self._sock.close()
                self._sock = None
        with self._cond:
            self.dropped += 1
        return True

    def _outage(self, text: str) -> None:
        """Say once per outage, on stderr (where else?), that lines are not getting through."""
        if not self._failing:
            self._failing = True
            stamp = _dt.datetime.now()
            print(f"{stamp:%Y/%m/%d %H:%M:%S} {text}", file=sys.stderr, flush=True)

    def _report_drops(self) -> None:
        dropped, self._reported_drops = self.dropped - self._reported_drops, self.dropped
        text = f"{dropped} log lines were not sent to syslog (queue full or unreachable)"
        priority = self.destination.facility | _WARNING
        data = format_line(priority, time.time(), self.tag, self.pid, text, hostname=self.hostname)
        self._deliver(data)
