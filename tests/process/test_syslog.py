"""syslog and remote_syslog: nats-server's lines over UDP, TCP and unix sockets, errors, reload."""

from __future__ import annotations

import calendar
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trio

from tests.helpers import free_port, nats_server_binary, start_trionats
from trionats import cli
from trionats import logging as tlog
from trionats import syslog
from trionats.errors import ConfigError
from trionats.options import Authorization, Options

DEADLINE = 10.0
HOSTNAME = socket.gethostname()
#: `<PRI>RFC3339 HOSTNAME TAG[PID]: MSG`, Go's network layout.
REMOTE_LINE = re.compile(
    rf"<(\d+)>\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d) {re.escape(HOSTNAME)} "
    r"([^\[ ]+)\[(\d+)\]: (.*)\n"
)
#: `<PRI>Jan _2 15:04:05 TAG[PID]: MSG`, Go's layout on unix sockets.
LOCAL_LINE = re.compile(r"<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ([^\[ ]+)\[(\d+)\]: (.*)\n")


# --- pure: the line layout, URLs, flags, which destination wins -----------------------------------


@pytest.fixture
def timezone(monkeypatch):
    """Run with this TZ (local time is what Go's log/syslog writes)."""

    def use(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


WHEN = calendar.timegm((2026, 11, 22, 6, 32, 14)) + 0.25


@pytest.mark.parametrize(
    ("tz", "remote", "local"),
    [
        ("UTC", "<5>2026-11-22T06:32:14Z host1 nats-server[42]: Server is ready\n",
         "<5>Nov 22 06:32:14 nats-server[42]: Server is ready\n"),
        ("EST+5", "<5>2026-11-22T01:32:14-05:00 host1 nats-server[42]: Server is ready\n",
         "<5>Nov 22 01:32:14 nats-server[42]: Server is ready\n"),
        ("XYZ-5:30", "<5>2026-11-22T12:02:14+05:30 host1 nats-server[42]: Server is ready\n",
         "<5>Nov 22 12:02:14 nats-server[42]: Server is ready\n"),
    ],
)  # fmt: skip
def test_line_layouts_as_go_log_syslog(timezone, tz, remote, local):
    timezone(tz)
    line = syslog.format_line(5, WHEN, "nats-server", 42, "Server is ready", hostname="host1")
    assert line == remote.encode()
    line = syslog.format_line(5, WHEN, "nats-server", 42, "Server is ready", hostname=None)
    assert line == local.encode()


def test_local_layout_pads_the_day_with_a_space(timezone):
    timezone("UTC")
    line = syslog.format_line(29, WHEN - 21 * 86400, "t", 1, "x\n", hostname=None)
    assert line == b"<29>Nov  1 06:32:14 t[1]: x\n"  # and no second newline


def test_priorities_of_each_level():
    # nats-server: INF and TRC are notice, WRN warning, ERR err, FTL crit, DBG debug; the local
    # daemon gets facility daemon, a remote one facility 0 (it dials with LOG_DEBUG only).
    levels = ("trace", "debug", "info", "warning", "error", "fatal")
    assert [syslog.SEVERITIES[level] for level in levels] == [5, 7, 5, 4, 3, 2]
    assert syslog.LOCAL.facility | syslog.SEVERITIES["info"] == 29
    assert syslog.parse_url("udp://h:1").facility | syslog.SEVERITIES["error"] == 3


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("udp://127.0.0.1:514", syslog.Destination("udp", host="127.0.0.1", port="514")),
        ("UDP://logs.example:514", syslog.Destination("udp", host="logs.example", port="514")),
        ("tcp://[::1]:601", syslog.Destination("tcp", host="::1", port="601")),
        ("tcp://user@h:601", syslog.Destination("tcp", host="h", port="601")),
        ("udp://:514", syslog.Destination("udp", host="", port="514")),
        ("unix:///dev/log", syslog.Destination("unix", path="/dev/log")),
        ("unix:///tmp/a%20b", syslog.Destination("unix", path="/tmp/a b")),
    ],
)
def test_remote_urls(url, expected):
    assert syslog.parse_url(url) == expected


#: Every text checked against nats-server 2.15.1 (`nats-server -r <url>`), see
#: test_bad_urls_fail_as_in_nats_server.
BAD_URLS = [
    ("ftp://x", 'error invalid network type: "ftp"'),
    ("localhost:514", 'error invalid network type: "localhost"'),
    ("x", 'error invalid network type: ""'),
    ("127.0.0.1:514", 'parse "127.0.0.1:514": first path segment in URL cannot contain colon'),
    (":514", 'parse ":514": missing protocol scheme'),
    ("udp://", 'error connecting to syslog: "dial udp: missing address"'),
    ("udp:514", 'error connecting to syslog: "dial udp: missing address"'),
    ("udp://127.0.0.1",
     'error connecting to syslog: "dial udp: address 127.0.0.1: missing port in address"'),
    ("unix://", 'error connecting to syslog: "dial unix: missing address"'),
]  # fmt: skip


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_bad_url_is_a_check_error(url, message):
    with pytest.raises(syslog.SyslogError) as caught:
        syslog.parse_url(url)
    assert str(caught.value) == message
    with pytest.raises(ConfigError) as caught:  # so -t and a reload refuse it too
        Options(remote_syslog=url).check()
    assert str(caught.value) == message


def test_a_log_file_wins_then_remote_then_local():
    assert syslog.destination(log_file="x.log", syslog=True, remote_syslog="udp://h:1") is None
    assert syslog.destination(syslog=True, remote_syslog="udp://h:1").network == "udp"
    assert syslog.destination(syslog=True) == syslog.LOCAL
    assert syslog.destination() is None
    # As nats-server: a URL behind a log file is never looked at.
    Options(log_file="x.log", remote_syslog="ftp://x").check()


@pytest.mark.parametrize(
    ("argv", "overrides"),
    [
        (["-s"], {"syslog": True}),
        (["--syslog"], {"syslog": True}),
        (["-syslog=false"], {"syslog": False}),
        (["-r", "udp://127.0.0.1:514"], {"remote_syslog": "udp://127.0.0.1:514"}),
        (["--remote_syslog=tcp://h:601"], {"remote_syslog": "tcp://h:601"}),
    ],
)
def test_flags(argv, overrides):
    assert cli.parse_args(argv).overrides == overrides


def test_program_tag(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/nats-server", "-s"])
    assert syslog.program_tag() == "nats-server"  # a link named like nats-server logs so
    monkeypatch.setattr(sys, "argv", ["/opt/venv/lib/python3/site-packages/trionats/__main__.py"])
    assert syslog.program_tag() == "trionats"


# --- startup errors, compared with nats-server ----------------------------------------------------


def nats_server_error(*args: str) -> str:
    """The message of nats-server's fatal error (after Go's `YYYY/MM/DD HH:MM:SS `)."""
    done = subprocess.run(
        [nats_server_binary(), "-a", "127.0.0.1", "-p", "-1", *args],
        capture_output=True, text=True, timeout=DEADLINE,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return done.stderr.strip().split(" ", 2)[2]


def trionats_error(capsys, *args: str) -> str:
    assert cli.main(["-a", "127.0.0.1", "-p", "-1", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("trionats: ")
    return err.removeprefix("trionats: ")


@pytest.mark.interop
@pytest.mark.parametrize("url", [url for url, _ in BAD_URLS])
def test_bad_urls_fail_as_in_nats_server(capsys, url):
    assert trionats_error(capsys, "-r", url) == nats_server_error("-r", url)


@pytest.fixture
def unix_dgram(tmp_path):
    path = tmp_path / "dgram.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield path
    sock.close()


@pytest.mark.interop
def test_unreachable_destinations_fail_as_in_nats_server(capsys, tmp_path, unix_dgram):
    closed = free_port()  # nothing listens there
    for url in (f"tcp://127.0.0.1:{closed}", f"unix://{tmp_path}/missing.sock",
                f"unix://{unix_dgram}"):  # fmt: skip  # unix:// is a stream socket
        assert trionats_error(capsys, "-r", url) == nats_server_error("-r", url)


def test_no_local_daemon(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(syslog, "LOCAL_PATHS", (str(tmp_path / "no-daemon"),))
    message = 'error connecting to syslog: "Unix syslog delivery error"'
    assert trionats_error(capsys, "-s") == message


# --- a real run: the server's lines arrive --------------------------------------------------------


class Lines:
    """Syslog lines arriving on a trio socket: one datagram each, or split at newlines."""

    def __init__(self, sock, *, stream: bool = False) -> None:
        self.sock = sock
        self.stream = stream
        self.seen: list[str] = []
        self._buffer = b""

    async def _next(self) -> str:
        if not self.stream:
            return (await self.sock.recv(65536)).decode()
        while b"\n" not in self._buffer:
            chunk = await self.sock.receive_some(65536)
            if not chunk:
                raise EOFError(self._buffer)
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode() + "\n"

    async def until(self, needle: str) -> str:
        """Read lines until one contains `needle`; return it."""
        with trio.fail_after(DEADLINE):
            while True:
                line = await self._next()
                self.seen.append(line)
                if needle in line:
                    return line


def parsed(line: str, layout: re.Pattern = REMOTE_LINE) -> tuple[int, str, int, str]:
    match = layout.fullmatch(line)
    assert match, line
    priority, tag, pid, message = match.groups()
    return int(priority), tag, int(pid), message


async def udp_socket():
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    return sock


async def run_trionats(*args: str, cwd: Path):
    """`python -m trionats`; its stdout and stderr are `process.stdout`, a pipe."""
    return await trio.lowlevel.open_process(
        [sys.executable, "-m", "trionats", "-a", "127.0.0.1", "-p", str(free_port()), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
    )  # fmt: skip


async def rest_of_output(process) -> bytes:
    out = b""
    with trio.fail_after(DEADLINE):
        while chunk := await process.stdout.receive_some(65536):
            out += chunk
    return out


async def stop(process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    with trio.fail_after(DEADLINE):
        return await process.wait()


async def test_remote_udp_flag(tmp_path):
    sock = await udp_socket()
    port = sock.getsockname()[1]
    conf = tmp_path / "node.conf"
    conf.write_text("authorization { user: a, password: b }\n")  # a WRN at startup
    process = await run_trionats("-c", str(conf), "-r", f"udp://127.0.0.1:{port}", cwd=tmp_path)
    try:
        lines = Lines(sock)
        warning = parsed(await lines.until("Plaintext passwords"))
        ready = parsed(await lines.until("Server is ready"))
        assert warning == (4, "trionats", process.pid,
                           "Plaintext passwords detected, use nkeys or bcrypt")  # fmt: skip
        assert ready == (5, "trionats", process.pid, "Server is ready")
        assert not [line for line in lines.seen if line.startswith("<7>")]  # no -D
        port_line = next(line for line in lines.seen if "Listening for client" in line)
        client_port = int(port_line.rsplit(":", 1)[1])
        client = await trio.open_tcp_stream("127.0.0.1", client_port)
        await client.send_all(b'CONNECT {"user":"a","pass":"b"}\r\nBOGUS\r\n')
        error = parsed(await lines.until("parser ERROR"))
        await client.aclose()
        assert error[0] == 3
        prefix = r'127\.0\.0\.1:\d+ - cid:\d+ - "\$G/user:a" - '
        assert re.fullmatch(prefix + "Client parser ERROR: .*", error[3])
        assert await stop(process) == 0
        assert parsed(await lines.until("Server Exiting.."))[0] == 5  # sent before exit
        assert await rest_of_output(process) == b""  # nothing on stderr
    finally:
        if process.returncode is None:
            process.kill()
        sock.close()


async def test_remote_tcp_from_a_config_file(tmp_path):
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    conf = tmp_path / "node.conf"
    conf.write_text(f'remote_syslog: "tcp://127.0.0.1:{port}"\ndebug: true\n')
    process = await run_trionats("-c", str(conf), cwd=tmp_path)
    try:
        with trio.fail_after(DEADLINE):
            stream = await listeners[0].accept()
        lines = Lines(stream, stream=True)
        ready = parsed(await lines.until("Server is ready"))
        assert ready == (5, "trionats", process.pid, "Server is ready")
        assert parsed(lines.seen[0])[3] == "Starting trionats"
        assert any(parsed(line)[0] == 7 for line in lines.seen)  # debug lines too
        assert await stop(process) == 0
        await lines.until("Server Exiting..")
        await stream.aclose()
    finally:
        if process.returncode is None:
            process.kill()
        await listeners[0].aclose()


@pytest.fixture
def logging_reset():
    yield
    tlog.configure()  # back to stderr; closes the syslog writer


async def test_remote_unix_stream_in_process(tmp_path, nursery, logging_reset):
    path = str(tmp_path / "syslog.sock")
    listener = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await listener.bind(path)
    listener.listen()
    tlog.configure(remote_syslog=f"unix://{path}", startup=True)
    with trio.fail_after(DEADLINE):
        conn, _ = await listener.accept()
    server = await start_trionats(nursery)
    lines = Lines(trio.SocketStream(conn), stream=True)
    # unix sockets get Go's local layout: no hostname, a short time.
    assert parsed(await lines.until("Server is ready"), LOCAL_LINE) == (
        5, syslog.program_tag(), os.getpid(), "Server is ready"
    )  # fmt: skip
    server.shutdown()
    await lines.sock.aclose()
    listener.close()


async def test_local_syslog_datagrams(tmp_path, nursery, monkeypatch, logging_reset):
    path = str(tmp_path / "log")
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_DGRAM)
    await sock.bind(path)
    monkeypatch.setattr(syslog, "LOCAL_PATHS", ("/nonexistent/dev/log", path))
    tlog.configure(syslog=True, startup=True)
    server = await start_trionats(nursery, authorization=Authorization(user="a", password="b"))
    lines = Lines(sock)
    tag, pid = syslog.program_tag(), os.getpid()
    warning = parsed(await lines.until("Plaintext passwords"), LOCAL_LINE)
    assert warning[:3] == (3 << 3 | 4, tag, pid)  # facility daemon
    assert parsed(await lines.until("Server is ready"), LOCAL_LINE) == (
        3 << 3 | 5, tag, pid, "Server is ready"
    )  # fmt: skip
    tlog.get_logger().error("boom")
    assert parsed(await lines.until("boom"), LOCAL_LINE) == (3 << 3 | 3, tag, pid, "boom")
    server.shutdown()
    sock.close()


async def test_json_lines_go_to_syslog_as_the_message(logging_reset):
    sock = await udp_socket()
    tlog.configure(remote_syslog=f"udp://127.0.0.1:{sock.getsockname()[1]}", log_format="json")
    tlog.get_logger().warning("careful")
    priority, _, _, message = parsed(await Lines(sock).until("careful"))
    assert priority == 4 and '"message":"careful"' in message and '"log.level":"warning"' in message
    sock.close()


async def test_a_log_file_wins_over_syslog(tmp_path, logging_reset):
    log_file = tmp_path / "node.log"
    tlog.configure(log_file=str(log_file), syslog=True, remote_syslog="ftp://ignored")
    tlog.get_logger().info("to the file")
    assert "[INF] to the file" in log_file.read_text()


# --- reload ---------------------------------------------------------------------------------------


async def test_reload_moves_logging_to_syslog_and_back(tmp_path):
    sock = await udp_socket()
    url = f"udp://127.0.0.1:{sock.getsockname()[1]}"
    conf = tmp_path / "node.conf"
    conf.write_text("debug: false\n")
    process = await run_trionats("-c", str(conf), cwd=tmp_path)
    try:
        stderr = Lines(process.stdout, stream=True)
        await stderr.until("Server is ready")
        conf.write_text(f'remote_syslog: "{url}"\n')
        process.send_signal(signal.SIGHUP)
        lines = Lines(sock)
        assert parsed(await lines.until("Reloaded: remote_syslog"))[3] == (
            f"Reloaded: remote_syslog = {url}"
        )
        await lines.until("Reloaded server configuration")
        # A URL it cannot use refuses the reload, said on the current destination.
        conf.write_text('remote_syslog: "ftp://x"\n')
        process.send_signal(signal.SIGHUP)
        refused = parsed(await lines.until("Failed to reload"))
        assert refused[0] == 3
        assert refused[3] == (
            'Failed to reload server configuration: error invalid network type: "ftp"'
        )
        conf.write_text("debug: false\n")  # back to stderr
        process.send_signal(signal.SIGHUP)
        assert "[INF] Reloaded server configuration" in await stderr.until("Reloaded server")
        assert "[INF] Reloaded: remote_syslog = \n" in stderr.seen[-2:][0]
        assert await stop(process) == 0
        assert b"Server Exiting.." in await rest_of_output(process)
    finally:
        if process.returncode is None:
            process.kill()
        sock.close()


# --- a slow or absent daemon never stalls the server ----------------------------------------------


async def test_a_stalled_tcp_peer_drops_lines_then_the_writer_dials_again():
    raw = trio.socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the peer's window stays small
    await raw.bind(("127.0.0.1", 0))
    raw.listen()
    listeners = [trio.SocketListener(raw)]
    port = raw.getsockname()[1]
    where = syslog.parse_url(f"tcp://127.0.0.1:{port}")
    writer = syslog.SyslogWriter(where, connect_now=True, tag="t", queue_bytes=64 * 1024)
    try:
        with trio.fail_after(DEADLINE):
            stalled = await listeners[0].accept()  # and never read
        line = "x" * 1000
        with trio.fail_after(DEADLINE):
            # Faster than the writer can send: the queue fills up, and past its bound lines
            # are dropped, not waited for (send returns at once whatever the peer does).
            while not writer.dropped:
                writer.send("info", line)
                await trio.sleep(0)
        await stalled.aclose()  # unread data: a reset
        writer.send("info", line)  # the next write fails at the latest: it dials again
        with trio.fail_after(DEADLINE):
            fresh = await listeners[0].accept()
        lines = Lines(fresh, stream=True)
        report = parsed(await lines.until("log lines were not sent to syslog"))
        assert report[0] == 4  # a warning, once lines flow again
        assert 1 <= int(report[3].split()[0]) <= writer.dropped
        writer.send("error", "after")  # and the new connection carries the next lines
        assert parsed(await lines.until("after"))[0] == 3
        assert {parsed(seen)[3] for seen in lines.seen} - {line} == {report[3], "after"}
        await fresh.aclose()
    finally:
        writer.close(timeout=0)
        await listeners[0].aclose()
