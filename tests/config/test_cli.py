"""The trionats command line: nats-server flag syntax, exit codes, signals, log format, files."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest

from tests.helpers import free_port, nats_server_binary
from trionats import cli, tls

#: Seconds a test waits for a process, a file or a log line before failing.
DEADLINE = 10.0

TIMESTAMP = r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{6}"


# --- parse_args: Go's flag syntax --------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "overrides"),
    [
        (["-p", "4333"], {"port": 4333}),
        (["-p=4333"], {"port": 4333}),
        (["--port", "4333"], {"port": 4333}),
        (["--port=4333"], {"port": 4333}),
        (["-port", "4333"], {"port": 4333}),  # Go accepts one dash for long names too
        (["--p", "4333"], {"port": 4333}),  # and two dashes for short ones
        (["-p", "-1"], {"port": -1}),
        (["-p", "4333", "-p", "4444"], {"port": 4444}),  # the last one wins
        (["-a", "127.0.0.1"], {"host": "127.0.0.1"}),
        (["--addr", "::1"], {"host": "::1"}),
        (["--net=0.0.0.0"], {"host": "0.0.0.0"}),
        (["-n", "srv-a"], {"server_name": "srv-a"}),
        (["--name", "srv-b"], {"server_name": "srv-b"}),
        (["--server_name=srv-c"], {"server_name": "srv-c"}),
        (["-P", "/tmp/x.pid"], {"pid_file": "/tmp/x.pid"}),
        (["--pid", "/tmp/y.pid"], {"pid_file": "/tmp/y.pid"}),
        (["--ports_file_dir", "/tmp/ports"], {"ports_file_dir": "/tmp/ports"}),
        (["-l", "/tmp/t.log"], {"log_file": "/tmp/t.log"}),
        (["--log=/tmp/u.log"], {"log_file": "/tmp/u.log"}),
        (["-D"], {"debug": True}),
        (["--debug"], {"debug": True}),
        (["-D=false"], {}),
        (["-V"], {"trace": True}),
        (["--trace"], {"trace": True}),
        (["-VV"], {"trace": True}),
        (["-DV"], {"debug": True, "trace": True}),
        (["-DVV"], {"debug": True, "trace": True}),
        (["-D", "-V"], {"debug": True, "trace": True}),
        (["-T=false"], {"logtime": False}),
        (["--logtime=0"], {"logtime": False}),
        (["-T"], {"logtime": True}),
        (["-T=F"], {"logtime": False}),
        (["--logtime_utc"], {"logtime_utc": True}),
        (["-m", "8222"], {"http_port": 8222}),
        (["--http_port=8222"], {"http_port": 8222}),
        (["-m", "-1"], {"http_port": -1}),
        (
            ["-a", "127.0.0.1", "-p=5222", "-n", "x", "-DV", "-T=false"],
            {
                "host": "127.0.0.1",
                "port": 5222,
                "server_name": "x",
                "debug": True,
                "trace": True,
                "logtime": False,
            },
        ),
        ([], {}),
    ],
)
def test_parse_args_overrides(argv, overrides):
    flags = cli.parse_args(argv)
    assert flags.overrides == overrides
    assert not flags.show_help
    assert not flags.show_version


@pytest.mark.parametrize(
    ("argv", "version", "help_"),
    [
        (["-v"], True, False),
        (["--version"], True, False),
        (["version"], True, False),
        (["VERSION"], True, False),  # nats-server compares the command word case-insensitively
        (["version", "ignored"], True, False),  # and only looks at the first one
        (["-h"], False, True),
        (["--help"], False, True),
        (["help"], False, True),
        (["-p", "4333", "help"], False, True),
        (["--", "version"], True, False),  # `--` ends the flags
    ],
)
def test_parse_args_version_and_help(argv, version, help_):
    flags = cli.parse_args(argv)
    assert (flags.show_version, flags.show_help) == (version, help_)


def test_parse_args_stops_at_first_non_flag():
    # A boolean flag never takes the next word: `-D false` leaves "false" as a command.
    with pytest.raises(cli.CommandError, match='unrecognized command: "false"'):
        cli.parse_args(["-D", "false"])
    with pytest.raises(cli.CommandError, match='unrecognized command: "start"'):
        cli.parse_args(["start", "-p", "4333"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "flag provided but not defined: -bogus"),
        (["-x=1"], "flag provided but not defined: -x"),
        (["-p", "abc"], 'invalid value "abc" for flag -p: parse error'),
        (["-p="], 'invalid value "" for flag -p: parse error'),
        (["-T=maybe"], 'invalid value "maybe" for flag -T: parse error'),
        (["-p"], "flag needs an argument: -p"),
        (["---p", "1"], "bad flag syntax: ---p"),
        (["-=1"], "bad flag syntax: -=1"),
        (["--routes", "127.0.0.1:6222"], 'invalid value "127.0.0.1:6222" for flag -routes'),
        (["--cluster=nats://127.0.0.1"], 'invalid value "nats://127.0.0.1" for flag -cluster'),
        (["--connect_retries", "x"], 'invalid value "x" for flag -connect_retries'),
        (["-m", "abc"], 'invalid value "abc" for flag -m: parse error'),
        (["-ms", "abc"], 'invalid value "abc" for flag -ms: parse error'),
        (["--profile", "6060"], "flag -profile is not supported by trionats"),
    ],
)
def test_parse_args_usage_errors(argv, message):
    with pytest.raises(cli.UsageError) as info:
        cli.parse_args(argv)
    assert message in str(info.value)
    assert not isinstance(info.value, cli.CommandError)


# --- the command without a server ----------------------------------------------------------


def trionats_script() -> str | None:
    return shutil.which("trionats", path=os.path.dirname(sys.executable))


COMMANDS = [
    pytest.param([sys.executable, "-m", "trionats"], id="python-m"),
    pytest.param(
        [trionats_script() or "trionats"],
        id="script",
        marks=pytest.mark.skipif(trionats_script() is None, reason="trionats script not installed"),
    ),
]


def run_cli(command: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=DEADLINE, check=False
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_version(command):
    for flag in ("-v", "--version", "version"):
        result = run_cli(command, flag)
        assert result.returncode == 0, result.stderr
        assert re.fullmatch(r"trionats: v\d+\.\d+\.\d+\S* \(nats-server v2\.15\.1 protocol\)\n",
                            result.stdout), result.stdout  # fmt: skip
        assert result.stderr == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command):
    result = run_cli(command, "-h")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: trionats [options]")
    for flag in ("--port", "--addr", "--pid", "--ports_file_dir", "--log", "-DV", "--version"):
        assert flag in result.stdout
    assert result.stderr == ""
    assert run_cli(command, "--help").stdout == result.stdout


def test_unknown_flag_exits_2():
    result = run_cli([sys.executable, "-m", "trionats"], "--bogus")
    assert result.returncode == 2
    assert result.stderr.startswith("trionats: flag provided but not defined: -bogus\n")
    assert "Usage: trionats [options]" in result.stderr
    assert result.stdout == ""


def test_bad_value_exits_2():
    result = run_cli([sys.executable, "-m", "trionats"], "-p", "abc")
    assert result.returncode == 2
    assert result.stderr.startswith('trionats: invalid value "abc" for flag -p: parse error\n')
    assert result.stdout == ""


def test_unsupported_nats_server_flag_exits_2():
    result = run_cli([sys.executable, "-m", "trionats"], "--profile", "6060")
    assert result.returncode == 2
    assert result.stderr.startswith("trionats: flag -profile is not supported by trionats\n")


def test_help_tls_lists_the_cipher_suites_trionats_accepts():
    result = run_cli([sys.executable, "-m", "trionats"], "--help_tls")
    assert result.returncode == 0 and result.stderr == ""
    listed = re.findall(r"^    (TLS_\w+)$", result.stdout, flags=re.M)
    assert set(listed) == set(tls.CIPHER_SUITES) | set(tls.TLS13_SUITES)
    # Every TLS 1.2 suite it lists is one this OpenSSL can be told to use.
    ssl.create_default_context().set_ciphers(":".join(tls.openssl_ciphers(tls.CIPHER_SUITES)))


def test_unrecognized_command_exits_1():
    # nats-server prints just the message (no usage) and exits 1.
    result = run_cli([sys.executable, "-m", "trionats"], "start")
    assert result.returncode == 1
    assert result.stderr == 'trionats: unrecognized command: "start"\n'


def test_space_in_server_name_exits_1():
    result = run_cli([sys.executable, "-m", "trionats"], "-a", "127.0.0.1", "-p", "-1",
                     "-n", "a b")  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == "trionats: server name cannot contain spaces\n"
    assert result.stdout == ""


@pytest.mark.parametrize("conf", [None, 'cluster { routes: ["nats-route://127.0.0.1:6222"] }'])
def test_routes_without_cluster_are_refused_as_by_nats_server(tmp_path, conf):
    """--routes with nowhere to listen for routes (no --cluster, no listen in the file)."""
    args = ["--routes", "nats-route://127.0.0.1:6222", "-a", "127.0.0.1", "-p", "-1"]
    if conf is not None:
        (tmp_path / "node.conf").write_text(conf + "\n")
        args += ["-c", str(tmp_path / "node.conf")]
    ours = run_cli([sys.executable, "-m", "trionats"], *args)
    assert ours.returncode == 1 and ours.stdout == ""
    assert ours.stderr == "trionats: solicited routes require cluster capabilities, e.g. --cluster\n"
    theirs = run_cli([nats_server_binary()], *args)
    assert (theirs.returncode, theirs.stderr.replace("nats-server", "trionats")) == (1, ours.stderr)


@pytest.mark.parametrize(
    ("conf", "flags"),
    [
        ("cluster { port: 6222 }", []),
        ("cluster { host: 127.0.0.1 }", []),
        ("", ["--cluster", "nats://127.0.0.1:6999"]),
    ],
)
def test_routes_with_somewhere_to_listen_pass(tmp_path, conf, flags):
    (tmp_path / "node.conf").write_text(conf + "\n")
    parsed = cli.parse_args(["-c", str(tmp_path / "node.conf"), *flags,
                             "--routes", "nats-route://127.0.0.1:6222"])  # fmt: skip
    assert cli.build_options(parsed).cluster.routes == ("nats-route://127.0.0.1:6222",)


def test_log_file_in_a_missing_directory_is_one_line(tmp_path):
    """nats-server's text, on one line, no traceback; `-t` reports it too (nats-server's
    `-t` does not: it fails only when it starts)."""
    missing = tmp_path / "gone" / "node.log"
    conf = tmp_path / "node.conf"
    conf.write_text(f'log_file: "{missing}"\n')
    expected = f"error opening file: open {missing}: no such file or directory\n"
    for args in (["-a", "127.0.0.1", "-p", "-1"], ["-t"]):
        ours = run_cli([sys.executable, "-m", "trionats"], "-c", str(conf), *args)
        assert (ours.returncode, ours.stderr, ours.stdout) == (1, f"trionats: {expected}", "")
    flag = run_cli([sys.executable, "-m", "trionats"], "-l", str(missing), "-p", "-1")
    assert (flag.returncode, flag.stderr) == (1, f"trionats: {expected}")
    theirs = run_cli([nats_server_binary()], "-c", str(conf), "-a", "127.0.0.1", "-p", "-1")
    assert theirs.returncode == 1
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d " + re.escape(expected), theirs.stderr)
    assert not missing.parent.exists()


def test_port_in_use_exits_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli([sys.executable, "-m", "trionats"], "-a", "127.0.0.1", "-p", str(port))
    assert result.returncode == 1
    assert re.search(r"^\[\d+\] " + TIMESTAMP + r" \[FTL\] Error listening on port: ",
                     result.stderr, re.M), result.stderr  # fmt: skip
    assert "Server is ready" not in result.stderr


# --- a running server --------------------------------------------------------------------------


def wait_until(predicate, what: str, timeout: float = DEADLINE):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """`python -m trionats -a 127.0.0.1 <args>` with stdout and stderr in one file."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.out_path = tmp_path / "output.txt"
        self._out = self.out_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trionats", "-a", "127.0.0.1", *args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_for(self, pattern: str, source=None) -> re.Match:
        """Wait until `pattern` (a regex, multiline) appears in the output (or `source()`)."""
        source = source or self.output

        def found():
            if self.process.poll() is not None:
                text = source()
                match = re.search(pattern, text, re.M)
                if match:
                    return match
                raise AssertionError(f"exited with {self.process.returncode}:\n{text}")
            return re.search(pattern, source(), re.M)

        return wait_until(found, repr(pattern))

    def signal(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(DEADLINE)
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._out.close()


@pytest.fixture
def running(tmp_path):
    """Start trionats processes; any left running at the end of the test are killed."""
    started: list[Running] = []

    def start(*args: str) -> Running:
        proc = Running(tmp_path, *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()


def raw_connect(port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    info = b""
    while not info.endswith(b"\r\n"):
        info += sock.recv(4096)
    assert info.startswith(b"INFO {")
    return sock, info


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            data += chunk
    return data


def read_ports_file(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_random_port_and_ports_file(running, tmp_path):
    ports_dir = tmp_path / "ports"
    ports_dir.mkdir()
    proc = running("-p", "-1", "--ports_file_dir", str(ports_dir))
    ports_file = ports_dir / f"trionats_{proc.pid}.ports"
    ports = wait_until(lambda: read_ports_file(ports_file), "the ports file")
    assert list(ports) == ["nats"]
    [url] = ports["nats"]
    match = re.fullmatch(r"nats://127\.0\.0\.1:(\d+)", url)
    assert match, url
    port = int(match.group(1))
    assert port not in (0, 4222)
    sock, info = raw_connect(port)
    assert json.loads(info[5:])["port"] == port
    sock.close()
    proc.wait_for(rf"Listening for client connections on 127\.0\.0\.1:{port}$")
    assert proc.signal(signal.SIGTERM) == 0
    assert not ports_file.exists()  # removed at shutdown
    assert os.listdir(ports_dir) == []


def test_pid_file(running, tmp_path):
    pid_file = tmp_path / "trionats.pid"
    proc = running("-p", str(free_port()), "-P", str(pid_file))
    proc.wait_for("Server is ready")
    assert pid_file.read_text() == str(proc.pid)  # decimal, no newline
    assert proc.signal(signal.SIGTERM) == 0
    assert pid_file.read_text() == str(proc.pid)  # nats-server leaves it in place


@pytest.mark.parametrize(("signum", "name"), [(signal.SIGTERM, "terminated"),
                                              (signal.SIGINT, "interrupt")])  # fmt: skip
def test_signal_graceful_shutdown(running, signum, name):
    port = free_port()
    proc = running("-p", str(port))
    proc.wait_for("Server is ready")
    connected, _ = raw_connect(port)
    connected.sendall(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPING\r\n')
    assert connected.recv(4096).startswith(b"PONG\r\n")
    silent, _ = raw_connect(port)  # never sent CONNECT
    try:
        assert proc.signal(signum) == 0
        # Both clients see their connection closed rather than hanging.
        assert b"MSG" not in read_until_closed(connected)
        assert read_until_closed(silent) == b""
    finally:
        connected.close()
        silent.close()
    lines = proc.output().splitlines()
    expected = [f'Trapped "{name}" signal', "Initiating Shutdown...", "Server Exiting.."]
    positions = []
    for text in expected:
        matching = [i for i, line in enumerate(lines) if line.endswith(f"[INF] {text}")]
        assert len(matching) == 1, (text, lines)
        positions.append(matching[0])
    assert positions == sorted(positions)
    assert positions[-1] == len(lines) - 1  # "Server Exiting.." is the last line
    assert "Traceback" not in proc.output()


def test_nats_py_client_sees_close_on_sigterm(running):
    port = free_port()
    proc = running("-p", str(port))
    proc.wait_for("Server is ready")

    async def main():
        closed = asyncio.Event()

        async def on_closed():
            closed.set()

        nc = await nats.connect(
            f"nats://127.0.0.1:{port}", allow_reconnect=False, closed_cb=on_closed
        )
        await nc.subscribe("x")
        await nc.flush()
        assert await asyncio.to_thread(proc.signal, signal.SIGTERM) == 0
        await asyncio.wait_for(closed.wait(), DEADLINE)
        assert nc.is_closed

    asyncio.run(main())


def test_log_file(running, tmp_path):
    log_file = tmp_path / "trionats.log"
    proc = running("-p", str(free_port()), "-l", str(log_file))
    proc.wait_for(r"\[INF\] Server is ready$", source=lambda: _read(log_file))
    assert proc.signal(signal.SIGTERM) == 0
    text = log_file.read_text()
    assert re.search(r"^\[\d+\] " + TIMESTAMP + r" \[INF\] Starting trionats$", text, re.M)
    assert text.rstrip("\n").endswith("[INF] Server Exiting..")
    assert proc.output() == ""  # nothing on stdout or stderr


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_default_log_line_format(running):
    port = free_port()
    proc = running("-p", str(port))
    before = dt.datetime.now()
    match = proc.wait_for(rf"^\[(\d+)\] ({TIMESTAMP}) \[INF\] Server is ready$")
    assert int(match.group(1)) == proc.pid
    stamp = dt.datetime.strptime(match.group(2), "%Y/%m/%d %H:%M:%S.%f")
    assert abs((stamp - before).total_seconds()) < DEADLINE  # local time, now
    assert proc.signal(signal.SIGTERM) == 0
    for line in proc.output().splitlines():
        assert re.fullmatch(rf"\[{proc.pid}\] {TIMESTAMP} \[INF\] .+", line), line
    assert f"[INF] Listening for client connections on 127.0.0.1:{port}" in proc.output()


def test_logtime_false(running):
    proc = running("-p", str(free_port()), "-T=false")
    proc.wait_for(rf"^\[{proc.pid}\] \[INF\] Server is ready$")
    assert proc.signal(signal.SIGTERM) == 0
    lines = proc.output().splitlines()
    assert lines
    for line in lines:
        assert re.fullmatch(rf"\[{proc.pid}\] \[INF\] .+", line), line


def test_debug_shows_dbg(running):
    port = free_port()
    proc = running("-p", str(port), "-D")
    proc.wait_for("Server is ready")
    sock, info = raw_connect(port)
    cid = json.loads(info[5:])["client_id"]
    local_port = sock.getsockname()[1]
    proc.wait_for(
        rf"^\[{proc.pid}\] {TIMESTAMP} \[DBG\] 127\.0\.0\.1:{local_port} - cid:{cid} - "
        r"Client connection created$"
    )
    sock.close()
    assert proc.signal(signal.SIGTERM) == 0
    assert "[TRC]" not in proc.output()


def test_trace_shows_trc_without_dbg(running):
    port = free_port()
    proc = running("-p", str(port), "-V")
    proc.wait_for("Server is ready")
    sock, info = raw_connect(port)
    cid = json.loads(info[5:])["client_id"]
    sock.sendall(b'CONNECT {"verbose":false}\r\nSUB trace.me 7\r\nPING\r\n')
    assert sock.recv(4096).startswith(b"PONG\r\n")
    proc.wait_for(rf"\[TRC\] 127\.0\.0\.1:\d+ - cid:{cid} - .*<<- \[SUB trace\.me 7\]$")
    sock.close()
    assert proc.signal(signal.SIGTERM) == 0
    assert "[DBG]" not in proc.output()


def test_debug_and_trace(running):
    port = free_port()
    proc = running("-p", str(port), "-DV")
    proc.wait_for("Server is ready")
    sock, _ = raw_connect(port)
    sock.sendall(b'CONNECT {"verbose":false}\r\nSUB both 1\r\nPING\r\n')
    assert sock.recv(4096).startswith(b"PONG\r\n")
    proc.wait_for(r"\[TRC\] .*<<- \[SUB both 1\]$")
    proc.wait_for(r"\[DBG\] .*Client connection created$")
    sock.close()
    assert proc.signal(signal.SIGTERM) == 0


def test_trace_messages_and_pings(running):
    port = free_port()
    proc = running("-p", str(port), "-V")
    proc.wait_for("Server is ready")
    sock, _ = raw_connect(port)
    sock.sendall(b'CONNECT {"verbose":false}\r\nSUB foo 1\r\nPUB foo 5\r\nhello\r\nPING\r\n')
    data = b""
    while not data.endswith(b"PONG\r\n"):
        data += sock.recv(4096)
    assert data == b"MSG foo 1 5\r\nhello\r\nPONG\r\n"
    sock.close()
    assert proc.signal(signal.SIGTERM) == 0
    traced = [line.split(" - ", 2)[-1] for line in proc.output().splitlines() if "[TRC]" in line]
    assert traced[1:7] == [
        "<<- [SUB foo 1]",
        "<<- [PUB foo 5]",
        '<<- MSG_PAYLOAD: ["hello"]',
        "->> [MSG foo 1 5]",
        '->> MSG_PAYLOAD: ["hello"]',
        "<<- [PING]",
    ]
    assert "->> [PONG]" in traced


def test_cluster_flags_apply_over_the_files_cluster_block(tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text("cluster { name: FILE, port: 6222, connect_retries: 5 }\n")
    flags = cli.parse_args(["-c", str(conf), "--cluster", "nats://ruser:pw@127.0.0.1:7244",
                            "--routes", "nats-route://10.0.0.2:6222, nats-route://10.0.0.3:6222",
                            "--cluster_name", "FLAGS", "--no_advertise"])  # fmt: skip
    cluster = cli.build_options(flags).cluster
    assert (cluster.host, cluster.port, cluster.name) == ("127.0.0.1", 7244, "FLAGS")
    assert cluster.routes == ("nats-route://10.0.0.2:6222", "nats-route://10.0.0.3:6222")
    assert cluster.no_advertise and cluster.connect_retries == 5  # kept from the file
    assert (cluster.authorization.user, cluster.authorization.password) == ("ruser", "pw")
