"""Logging: ECS JSON lines, the text format, secrets kept out, rotation, SIGUSR1 reopen, reload."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port
from trionats import cli
from trionats import logging as tlog
from trionats.config.load import load
from trionats.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 10.0
TIMESTAMP = r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{6}"
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
BACKUP = re.compile(r"\.\d{4}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{2}\.\d{9}")

#: Secrets a client sends in CONNECT: none may reach a log line.
SECRETS = {
    "pass": "pw-Zq8sec",
    "auth_token": "tok-Zq8sec",
    "sig": "sig-Zq8sec",
    "nkey": "UNKEYZq8sec",
    "proxy_sig": "psig-Zq8sec",
}
CONNECT = (
    b"CONNECT "
    + json.dumps({"verbose": False, "user": "alice", **SECRETS, "name": "logtest",
                  "lang": "python", "version": "1.0"}, separators=(",", ":")).encode()
    + b"\r\n"
)  # fmt: skip


# --- pure: redaction, payload truncation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "redacted"),
    [
        ('{"user":"a","pass":"b"}', '{"user":"a","pass":"[REDACTED]"}'),
        ('{"password":"b c","x":1}', '{"password":"[REDACTED]","x":1}'),
        ('{"auth_token":"t"}', '{"auth_token":"[REDACTED]"}'),
        ('{"sig":"s","nkey":"N","proxy_sig":"p"}',
         '{"sig":"[REDACTED]","nkey":"[REDACTED]","proxy_sig":"[REDACTED]"}'),
        ('{ "pass" : "b" }', '{ "pass" : "[REDACTED]" }'),
        ('{"pass":""}', '{"pass":"[REDACTED]"}'),
        ('{"pass":12345}', '{"pass":[REDACTED]}'),
        # Not secrets for nats-server: a user name, a JWT, keys that only end in "sig".
        ('{"user":"sig","jwt":"eyJ","mysig":"m"}', '{"user":"sig","jwt":"eyJ","mysig":"m"}'),
    ],
)  # fmt: skip
def test_redact_connect_as_nats_server(raw, redacted):
    assert tlog.redact_connect(raw) == redacted


@pytest.mark.parametrize(
    "key", ["password", "pass", "auth_token", "token", "proxy_sig", "nkey", "client_secret",
            "user.password", "jwt", "api-token"],
)  # fmt: skip
def test_secret_keys(key):
    assert tlog.is_secret_key(key)


@pytest.mark.parametrize("key", ["user", "conn", "cid", "reason", "passage_count", "kind"])
def test_ordinary_keys(key):
    assert not tlog.is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("nats-route://u:pw@127.0.0.1:6222", "nats-route://u:xxxxx@127.0.0.1:6222"),
        ("nats://u@h:1", "nats://u@h:1"),  # no password: as Go's url.Redacted
        ("a nats://a:b@h:1,nats://c:d@[::1]:2 z", "a nats://a:xxxxx@h:1,nats://c:xxxxx@[::1]:2 z"),
        ('error parsing route url ["nats-route://u:p@w@"]',
         'error parsing route url ["nats-route://u:xxxxx@"]'),  # malformed: hidden all the same
        ("nats://u:pa/ss@h:1", "nats://u:xxxxx@h:1"),
        ("udp://logs:514", "udp://logs:514"),
    ],
)  # fmt: skip
def test_redact_urls_as_go_url_redacted(text, redacted):
    assert tlog.redact_urls(text) == redacted


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_url_passwords_never_reach_a_line(log_to, log_format):
    path = log_to(log_format)
    log = tlog.get_logger()
    log.info("Adding route nats-route://u:pw-J1@127.0.0.1:6222", url="nats://v:pw-K2@h:1")
    log.trace('<<- MSG_PAYLOAD: ["nats://payload:kept@h"]')  # a user's data is not touched
    text = path.read_text()
    assert "pw-J1" not in text and "pw-K2" not in text
    assert "nats://payload:kept@h" in text


def test_processor_redacts_nested_values_and_connect_text():
    event = {
        "event": 'x <<- [CONNECT {"pass":"p1"}]',
        "password": "p2",
        "config": {"authorization": {"user": "a", "token": "p3"}},
        "users": [{"user": "b", "pass": "p4"}],
        "user": "a",
    }
    out = tlog.redact_processor(None, "info", event)
    assert "p1" not in json.dumps(out) and "p2" not in json.dumps(out)
    assert "p3" not in json.dumps(out) and "p4" not in json.dumps(out)
    assert out["user"] == "a" and out["config"]["authorization"]["user"] == "a"


@pytest.fixture
def limit():
    def set_limit(value: int) -> None:
        tlog.LEVELS.max_traced_msg_len = value

    yield set_limit
    tlog.LEVELS.max_traced_msg_len = 0


def test_quoted_payload_cut_at_max_traced_msg_len(limit):
    assert tlog.quoted_payload(b"hello world") == '"hello world"'
    limit(5)
    assert tlog.quoted_payload(b"hello world") == '"hello..."'
    assert tlog.quoted_payload(b"hello") == '"hello"'  # not longer than the limit: whole
    assert tlog.quoted_payload(b'a"b\nc') == '"a\\"b\\nc"'


# --- in-process: both formats, secrets in any event ----------------------------------------------


@pytest.fixture
def log_to(tmp_path):
    """Configure logging to a file in the given format; back to the defaults afterwards."""

    def configure(log_format: str, **kw) -> Path:
        path = tmp_path / f"{log_format}.log"
        tlog.configure(log_file=str(path), log_format=log_format, debug=True, trace=True, **kw)
        return path

    yield configure
    tlog.configure()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secret_keys_never_reach_a_line(log_to, log_format):
    path = log_to(log_format)
    log = tlog.get_logger(server_name="n1").bind(
        **tlog.connection_fields("cid", 7, "127.0.0.1", 5000)
    )
    log.info("loaded", password="pw-A1", authorization={"user": "u", "password": "pw-B2"})
    log.trace('<<- [CONNECT {"user":"u","pass":"pw-C3","auth_token":"tok-D4"}]')
    log.error("bad", token="tok-E5", users=[{"user": "x", "nkey": "UKEY-F6"}])
    text = path.read_text()
    for secret in ("pw-A1", "pw-B2", "pw-C3", "tok-D4", "tok-E5", "UKEY-F6"):
        assert secret not in text
    assert text.count("[REDACTED]") >= (6 if log_format == "json" else 2)
    assert len(text.splitlines()) == 3


def test_options_repr_hides_passwords():
    from trionats.options import Authorization, Options, User

    options = Options(
        authorization=Authorization(user="a", password="pw-G7", users=(), token=""),
    )
    other = Authorization(token="tok-H8", users=(User(user="b", password="pw-I9"),))
    shown = repr(options) + str(other)
    assert "pw-G7" not in shown and "tok-H8" not in shown and "pw-I9" not in shown


def test_json_line_fields_for_a_connection(log_to):
    path = log_to("json")
    log = tlog.get_logger(server_name="n1", server_id="NID").bind(
        **tlog.connection_fields("cid", 7, "127.0.0.1", 5000)
    )
    log.debug("Client connection closed: Client Closed", reason="Client Closed")
    [line] = path.read_text().splitlines()
    record = json.loads(line)
    assert list(record)[:3] == ["@timestamp", "log.level", "message"]
    assert record["log.level"] == "debug"
    assert record["message"] == "Client connection closed: Client Closed"
    assert record["client"] == {"ip": "127.0.0.1", "port": 5000}
    assert record["service"]["name"] == "trionats"
    assert record["service"]["node"]["name"] == "n1"
    assert record["nats"] == {
        "cid": 7, "kind": "Client", "close_reason": "Client Closed", "server_id": "NID",
        "conn": "127.0.0.1:5000 - cid:7",
    }  # fmt: skip
    check_ecs(record)


def test_json_line_with_conflicting_keys_is_still_ecs(log_to):
    path = log_to("json")
    tlog.get_logger().info("odd", client="x", client_name="y")  # nats.client, nats.client.name
    record = json.loads(path.read_text())
    check_ecs(record)
    assert record["message"] == "odd"


def test_text_line_unchanged_by_bound_fields(log_to):
    path = log_to("text")
    log = tlog.get_logger(server_name="n1").bind(
        **tlog.connection_fields("cid", 7, "127.0.0.1", 5000)
    )
    log.info("Slow Consumer Detected: MaxPending of 10 Exceeded", reason="x")
    line = path.read_text()
    assert re.fullmatch(
        rf"\[\d+\] {TIMESTAMP} \[INF\] 127\.0\.0\.1:5000 - cid:7 - "
        r"Slow Consumer Detected: MaxPending of 10 Exceeded\n",
        line,
    ), line


def test_bound_loggers_follow_a_new_configuration(log_to, tmp_path):
    text_path = log_to("text")
    log = tlog.get_logger().bind(**tlog.connection_fields("cid", 1, "127.0.0.1", 1))
    log.info("before")
    json_path = log_to("json")
    log.info("after")  # bound before the change: still follows it
    assert "before" in text_path.read_text() and "after" not in text_path.read_text()
    assert json.loads(json_path.read_text())["message"] == "after"


# --- ECS validation ------------------------------------------------------------------------------


def flatten(record: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def check_ecs(record: dict) -> None:
    """The ECS fields every line must have, with the right types."""
    flat = flatten(record)
    assert isinstance(flat["@timestamp"], str) and RFC3339_UTC.fullmatch(flat["@timestamp"])
    stamp = dt.datetime.fromisoformat(flat["@timestamp"].replace("Z", "+00:00"))
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 600
    assert flat["log.level"] in tlog.JSON_LEVELS
    assert isinstance(flat["message"], str)
    assert isinstance(flat["ecs.version"], str)
    assert re.fullmatch(r"\d+\.\d+\.\d+", flat["ecs.version"])
    assert flat["service.name"] == "trionats"
    assert isinstance(flat["process.pid"], int)
    if "client.ip" in flat:
        assert isinstance(flat["client.ip"], str)
        assert isinstance(flat["client.port"], int)
        assert isinstance(flat["nats.cid"], int)
        assert flat["nats.kind"] == "Client"
    for key in flat:  # ECS names: lower case, dotted, no empty parts
        assert re.fullmatch(r"@timestamp|[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*", key), key


# --- a real run ----------------------------------------------------------------------------------


class Server:
    """`python -m trionats` logging to a file; stdout and stderr to another."""

    def __init__(
        self, tmp_path: Path, *args: str, log_file: Path | None = None, flag: bool = True
    ) -> None:
        self.port = free_port()
        self.log_file = log_file
        self.out_path = tmp_path / f"out-{self.port}.txt"
        self._out = self.out_path.open("wb")
        log_args = ["-l", str(log_file)] if log_file and flag else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trionats", "-a", "127.0.0.1", "-p", str(self.port),
             *log_args, *args],
            stdout=self._out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait_for("Server is ready")

    def text(self) -> str:
        path = self.log_file or self.out_path
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, needle: str, source=None) -> str:
        source = source or self.text
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            text = source()
            if needle in text:
                return text
            if self.process.poll() is not None:
                output = self.out_path.read_text()
                raise AssertionError(f"exited {self.process.returncode}: {text}{output}")
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {needle!r}:\n{source()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        return self.process.returncode


@pytest.fixture
def start(tmp_path):
    started: list[Server] = []

    def run(*args: str, log_file: Path | None = None, flag: bool = True) -> Server:
        server = Server(tmp_path, *args, log_file=log_file, flag=flag)
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    info = b""
    while not info.endswith(b"\r\n"):
        info += sock.recv(4096)
    return sock


def exchange(sock: socket.socket, data: bytes, until: bytes = b"PONG\r\n") -> bytes:
    sock.sendall(data)
    got = b""
    while until not in got:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def traffic(port: int) -> None:
    """A client with secrets in CONNECT, pub/sub, a protocol error; another closing."""
    sub = connect(port)
    assert exchange(sub, CONNECT + b"SUB log.test 1\r\nPING\r\n").endswith(b"PONG\r\n")
    pub = connect(port)
    exchange(pub, CONNECT + b"PUB log.test 5\r\nhello\r\nPING\r\n")
    assert b"MSG log.test 1 5\r\nhello\r\n" in exchange(sub, b"PING\r\n")
    bad = connect(port)
    assert exchange(bad, b"BOGUS\r\n", until=b"\r\n").startswith(b"-ERR 'Unknown Protocol")
    for sock in (sub, pub, bad):
        sock.close()


def test_json_run_every_line_is_ecs(start, tmp_path):
    log_file = tmp_path / "trionats.json.log"
    server = start("--log_format", "json", "-DV", log_file=log_file)
    traffic(server.port)
    server.wait_for("Client parser ERROR")
    server.wait_for("Client connection closed")
    assert server.stop() == 0
    lines = log_file.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        check_ecs(record)
    levels = {record["log.level"] for record in records}
    assert {"info", "debug", "trace", "error"} <= levels
    messages = [record["message"] for record in records]
    assert "Server is ready" in messages and messages[-1] == "Server Exiting.."
    connect_lines = [r for r in records if r["message"].startswith("<<- [CONNECT ")]
    assert len(connect_lines) == 2
    assert '"pass":"[REDACTED]"' in connect_lines[0]["message"]
    closed = [r for r in records if r["message"].startswith("Client connection closed")]
    assert closed and all(r["nats"]["close_reason"] for r in closed)
    named = [r for r in records if r.get("nats", {}).get("client", {}).get("name") == "logtest"]
    assert named
    text = log_file.read_text() + server.out_path.read_text()
    for secret in SECRETS.values():
        assert secret not in text
    assert server.out_path.read_text() == ""  # everything went to the file


def test_text_run_golden_lines_and_redaction(start, tmp_path):
    log_file = tmp_path / "trionats.log"
    server = start("-DV", log_file=log_file)
    sock = connect(server.port)
    local_port = sock.getsockname()[1]
    assert exchange(sock, CONNECT + b"PING\r\n").endswith(b"PONG\r\n")
    sock.close()
    server.wait_for("Client connection closed")
    assert server.stop() == 0
    text = log_file.read_text()
    pid = server.process.pid
    prefix = rf"\[{pid}\] {TIMESTAMP} "
    assert re.search(
        rf"^{prefix}\[DBG\] 127\.0\.0\.1:{local_port} - cid:1 - Client connection created$",
        text, re.M,
    ), text  # fmt: skip
    redacted = CONNECT[8:-2].decode()
    for key, secret in SECRETS.items():
        redacted = redacted.replace(f'"{key}":"{secret}"', f'"{key}":"[REDACTED]"')
    assert re.search(
        rf"^{prefix}\[TRC\] 127\.0\.0\.1:{local_port} - cid:1 - <<- \[CONNECT "
        + re.escape(redacted) + r"\]$",
        text, re.M,
    ), text  # fmt: skip
    assert re.search(
        rf'^{prefix}\[DBG\] 127\.0\.0\.1:{local_port} - cid:1 - "v1\.0:python:logtest" - '
        r"Client connection closed: Client Closed$",
        text, re.M,
    ), text  # fmt: skip
    for secret in SECRETS.values():
        assert secret not in text
    for line in text.splitlines():
        assert re.fullmatch(rf"{prefix}\[(INF|DBG|TRC|WRN|ERR)\] .*", line), line


def test_max_traced_msg_len(start, tmp_path):
    log_file = tmp_path / "trionats.log"
    server = start("-V", "--max_traced_msg_len", "4", log_file=log_file)
    sock = connect(server.port)
    exchange(sock, b'CONNECT {"verbose":false}\r\nSUB a 1\r\nPUB a 11\r\nhello world\r\nPING\r\n')
    sock.close()
    server.wait_for('->> MSG_PAYLOAD: ["hell..."]')
    assert '<<- MSG_PAYLOAD: ["hell..."]' in server.text()
    assert "hello world" not in server.text()


def test_rotation_with_size_limit_and_max_num(start, tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    log_file = log_dir / "node.log"
    conf = tmp_path / "node.conf"
    conf.write_text("log_max_num: 3\n")
    server = start("-c", str(conf), "-V", "--log_size_limit", "1500", log_file=log_file)
    sock = connect(server.port)
    exchange(sock, b'CONNECT {"verbose":false}\r\nPING\r\n')
    for i in range(30):
        exchange(sock, b"SUB rot.%d %d\r\nPING\r\n" % (i, i))
    server.wait_for("Purged log file")
    sock.close()
    assert server.stop() == 0
    names = sorted(path.name for path in log_dir.iterdir())
    backups = [name for name in names if name != "node.log"]
    assert "node.log" in names and len(names) <= 3 and backups
    for name in backups:
        assert BACKUP.fullmatch(name[len("node.log"):]), name
    for path in log_dir.iterdir():
        first = path.read_text().splitlines()[0]
        match = re.fullmatch(
            rf"\[\d+\] {TIMESTAMP} \[INF\] Rotated log, backup saved as \"(.+)\"", first
        )
        assert match, first
        assert Path(match.group(1)).parent == log_dir
        assert BACKUP.fullmatch(match.group(1)[len(str(log_file)):])
        assert len(path.read_bytes()) < 1500 + 200  # rotated right after the line past the limit


def test_rotation_of_a_json_log(start, tmp_path):
    log_file = tmp_path / "node.log"
    server = start("--log_format", "json", "-V", "--log_size_limit", "3000", log_file=log_file)
    sock = connect(server.port)
    exchange(sock, b'CONNECT {"verbose":false}\r\nPING\r\n')
    for i in range(20):
        exchange(sock, b"SUB rot.%d %d\r\nPING\r\n" % (i, i))
    sock.close()
    server.wait_for("Rotated log")
    assert server.stop() == 0
    first = json.loads(log_file.read_text().splitlines()[0])
    assert first["message"].startswith('Rotated log, backup saved as "')
    for path in tmp_path.glob("node.log*"):
        for line in path.read_text().splitlines():
            check_ecs(json.loads(line))


def test_sigusr1_with_the_log_directory_gone_logs_to_stderr(start, tmp_path):
    # (nats-server exits: trionats keeps serving and says why on stderr)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    log_file = log_dir / "node.log"
    server = start(log_file=log_file)
    log_dir.rename(tmp_path / "moved")
    server.process.send_signal(signal.SIGUSR1)
    text = server.wait_for("error opening file", lambda: server.out_path.read_text())
    assert f"[ERR] error opening file: open {log_file}: no such file or directory" in text
    sock = connect(server.port)  # still serving
    assert exchange(sock, b"PING\r\n") == b"PONG\r\n"
    sock.close()
    assert server.stop() == 0


def test_sigusr1_reopens_the_log_file_after_a_move(start, tmp_path):
    log_file = tmp_path / "node.log"
    pid_file = tmp_path / "node.pid"
    server = start("-P", str(pid_file), log_file=log_file)
    moved = tmp_path / "node.log.1"
    log_file.rename(moved)  # what logrotate does
    server.process.send_signal(signal.SIGUSR1)
    server.wait_for("File log re-opened")
    assert 'Trapped "user defined signal 1" signal' in moved.read_text()
    assert re.fullmatch(rf"\[\d+\] {TIMESTAMP} \[INF\] File log re-opened\n", log_file.read_text())
    # --signal reopen sends SIGUSR1 too.
    log_file.rename(tmp_path / "node.log.2")
    sent = subprocess.run(
        [sys.executable, "-m", "trionats", "--signal", f"reopen={pid_file}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    server.wait_for("File log re-opened")
    assert server.stop() == 0
    assert log_file.read_text().rstrip("\n").endswith("[INF] Server Exiting..")


def test_sigusr1_without_a_log_file(start):
    server = start()
    server.process.send_signal(signal.SIGUSR1)
    server.wait_for("File log re-open ignored, not a file logger")
    assert 'Trapped "user defined signal 1" signal' in server.text()
    assert server.stop() == 0


def test_reload_switches_log_format(start, tmp_path):
    log_file = tmp_path / "node.log"
    conf = tmp_path / "node.conf"
    conf.write_text(f'log_file: "{log_file}"\ndebug: true\n')
    server = start("-c", str(conf), log_file=log_file, flag=False)  # the file names it
    sock = connect(server.port)  # bound its logger before the reload
    exchange(sock, b'CONNECT {"verbose":false}\r\nPING\r\n')
    conf.write_text(f'log_file: "{log_file}"\ndebug: true\nlog_format: json\n')
    server.process.send_signal(signal.SIGHUP)
    server.wait_for("Reloaded server configuration")
    sock.close()
    server.wait_for("Client connection closed")
    assert server.stop() == 0
    lines = log_file.read_text().splitlines()
    switch = next(i for i, line in enumerate(lines) if line.startswith("{"))
    assert all(line.startswith("[") for line in lines[:switch])
    records = [json.loads(line) for line in lines[switch:]]
    for record in records:
        check_ecs(record)
    messages = [record["message"] for record in records]
    assert "Reloaded: log_format = json" in messages
    closed = next(r for r in records if r["message"].startswith("Client connection closed"))
    assert closed["nats"]["cid"] == 1 and closed["client"]["ip"] == "127.0.0.1"


# --- options: flags and configuration keys -------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "overrides"),
    [
        (["--log_format", "json"], {"log_format": "json"}),
        (["--log_format=text"], {"log_format": "text"}),
        (["--log_size_limit", "1048576"], {"log_size_limit": 1048576}),
        (["--max_traced_msg_len=64"], {"max_traced_msg_len": 64}),
    ],
)
def test_logging_flags(argv, overrides):
    assert cli.parse_args(argv).overrides == overrides


def test_bad_log_format_flag():
    with pytest.raises(cli.UsageError, match='invalid value "xml" for flag -log_format'):
        cli.parse_args(["--log_format", "xml"])


def test_logging_keys_in_a_file(tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text(
        "log_format: json\nlog_size_limit: 1MB\nlog_max_num: 5\nmax_traced_msg_len: 32\n"
    )
    options = load(conf)
    assert (options.log_format, options.log_size_limit, options.log_max_num,
            options.max_traced_msg_len) == ("json", 1024**2, 5, 32)  # fmt: skip
    conf.write_text("log_format: xml\n")
    with pytest.raises(ConfigError, match="log_format: expected one of text, json, got 'xml'"):
        load(conf)


# --- the Filebeat sample -------------------------------------------------------------------------


def test_filebeat_sample_is_yaml():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (not a dependency)")
    config = yaml.safe_load((ROOT / "etc" / "filebeat.yml").read_text())
    [stream] = config["filebeat.inputs"]
    assert stream["parsers"][0]["ndjson"]["target"] == ""
    assert "output.elasticsearch" in config


def test_filebeat_sample_names_the_json_format():
    text = (ROOT / "etc" / "filebeat.yml").read_text()
    assert "--log_format json" in text and "ndjson" in text and "\t" not in text


def test_json_run_slow_consumer_is_ecs(start, tmp_path):
    log_file = tmp_path / "slow.log"
    conf = tmp_path / "slow.conf"
    conf.write_text("max_pending: 64KB\nmax_payload: 1KB\n")
    server = start("-c", str(conf), "--log_format", "json", "-D", log_file=log_file)
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(DEADLINE)
    slow.connect(("127.0.0.1", server.port))
    slow.sendall(b'CONNECT {"verbose":false}\r\nSUB slow 1\r\nPING\r\n')
    time.sleep(0.2)  # the SUB is in; the slow client never reads again
    pub = connect(server.port)
    message = b"PUB slow 1000\r\n" + b"x" * 1000 + b"\r\n"
    exchange(pub, b'CONNECT {"verbose":false}\r\nPING\r\n')
    deadline = time.monotonic() + DEADLINE
    while "Slow Consumer Detected" not in server.text() and time.monotonic() < deadline:
        exchange(pub, message * 200 + b"PING\r\n")
    pub.close()
    slow.close()
    server.wait_for("Slow Consumer Detected")
    assert server.stop() == 0
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    for record in records:
        check_ecs(record)
    [slow_record] = [r for r in records if r["message"].startswith("Slow Consumer Detected")]
    assert slow_record["message"] == "Slow Consumer Detected: MaxPending of 65536 Exceeded"
    assert slow_record["log.level"] == "info" and slow_record["nats"]["cid"] == 1
    reason = "Slow Consumer (Pending Bytes)"
    assert [r for r in records if r.get("nats", {}).get("close_reason") == reason]
