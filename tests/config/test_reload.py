"""Configuration reload: SIGHUP and `--signal reload` apply what may change live and refuse the rest."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import attrs
import pytest
import trio

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess, free_port
from tests.auth.test_tls import Certs, certs  # noqa: F401 (the session fixture)
from trionats.config.load import load
from trionats.config.reload import diff
from trionats.errors import ConfigError
from trionats.options import Options
from trionats.server import Server

C = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


def test_diff_lists_reloadable_changes():
    old = Options()
    new = attrs.evolve(old, max_payload=32768, debug=True, ping_max=5)
    assert diff(old, new) == {"max_payload": 32768, "debug": True, "ping_max": 5}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("port", 4333, "config reload not supported for Port: old=4222, new=4333"),
        ("max_pending", 1024, "config reload not supported for MaxPending: old=67108864, new=1024"),
        ("server_name", "b", "config reload not supported for ServerName: old=, new=b"),
    ],
)
def test_diff_refuses_what_cannot_change_live(field, value, message):
    with pytest.raises(ConfigError) as raised:
        diff(Options(), attrs.evolve(Options(), **{field: value}))
    assert str(raised.value) == message


async def start_with_file(nursery, path, **flags) -> Server:
    options = attrs.evolve(load(path), host="127.0.0.1", port=-1, **flags)
    flags = {"host": "127.0.0.1", "port": -1, **flags}
    return await nursery.start(Server(options, flag_overrides=flags).serve)


async def test_reload_applies_max_payload_to_live_and_new_clients(nursery, tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text("max_payload: 64\n")
    server = await start_with_file(nursery, conf)
    client = await RawClient.connect(server.port)
    await client.send(C + b"SUB a 1\r\n")
    await client.ping_pong()

    conf.write_text("max_payload: 16\n")
    assert server.reload()

    newcomer = await RawClient.connect(server.port)
    assert b'"max_payload":16,' in newcomer.info
    await client.send(b"PUB a 16\r\n" + b"x" * 16 + b"\r\n")
    await client.expect(b"MSG a 1 16\r\n" + b"x" * 16 + b"\r\n")
    await client.send(b"PUB a 17\r\n")
    assert await client.expect_closed() == b"-ERR 'Maximum Payload Violation'\r\n"
    for raw in (client, newcomer):
        await raw.aclose()
    server.shutdown()


async def test_refused_reload_changes_nothing(nursery, tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text("max_payload: 64\n")
    server = await start_with_file(nursery, conf)
    before = server.options

    conf.write_text("max_payload: 16\nmax_pending: 1MB\n")  # max_pending is not reloadable
    assert not server.reload()
    conf.write_text("max_payload: 16\nbogus: 1\n")  # not even a valid file
    assert not server.reload()
    assert server.options is before

    client = await RawClient.connect(server.port)  # still serving, on the old options
    assert b'"max_payload":64,' in client.info
    await client.aclose()
    server.shutdown()


async def test_a_log_file_that_cannot_be_opened_refuses_the_reload(nursery, tmp_path):
    # (nats-server exits on such a reload; trionats keeps running on its current options)
    conf = tmp_path / "node.conf"
    conf.write_text("max_payload: 64\n")
    server = await start_with_file(nursery, conf)
    before = server.options
    missing = tmp_path / "gone" / "node.log"
    conf.write_text(f'max_payload: 16\nlog_file: "{missing}"\n')
    assert not server.reload()
    assert server.options is before and not missing.parent.exists()
    server.shutdown()


def test_check_log_file_says_why_as_go(tmp_path):
    from trionats.logging import LogFileError, check_log_file

    check_log_file("")  # stderr
    check_log_file(str(tmp_path / "new.log"))
    (tmp_path / "plain").write_text("")
    for path, reason in ((str(tmp_path), "is a directory"),
                         (str(tmp_path / "plain" / "x.log"), "not a directory"),
                         (str(tmp_path / "gone" / "x.log"), "no such file or directory")):  # fmt: skip
        with pytest.raises(LogFileError) as raised:
            check_log_file(path)
        assert str(raised.value) == f"error opening file: open {path}: {reason}"


async def test_flags_still_win_after_reload(nursery, tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text("max_payload: 64\n")
    server = await start_with_file(nursery, conf, max_payload=100)
    conf.write_text("max_payload: 16\nping_max: 7\n")
    assert server.reload()
    assert (server.options.max_payload, server.options.ping_max) == (100, 7)
    server.shutdown()


async def test_lowering_max_connections_closes_the_excess(nursery, tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text("max_connections: 10\n")
    server = await start_with_file(nursery, conf)
    clients = [await RawClient.connect(server.port) for _ in range(3)]
    for client in clients:
        await client.send(C)
        await client.ping_pong()

    conf.write_text("max_connections: 1\n")
    assert server.reload()
    outputs = []
    for client in clients:
        try:  # the refused ones get the -ERR and the close; the kept one gets nothing
            outputs.append(await client.read_exactly_or_eof(64, timeout=1))
        except trio.TooSlowError:
            outputs.append(b"")
    refused = [out for out in outputs if out == b"-ERR 'maximum connections exceeded'\r\n"]
    assert len(refused) == 2
    assert len(server.clients) == 1
    for client in clients:
        await client.aclose()
    server.shutdown()


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("how", ["sighup", "signal-flag"])
def test_running_server_reloads(tmp_path, how):
    port = free_port()
    conf = tmp_path / "node.conf"
    pid_file = tmp_path / "node.pid"
    conf.write_text(f"listen: 127.0.0.1:{port}\nmax_payload: 1MB\n")
    with TrionatsProcess("-c", str(conf), "-P", str(pid_file), port=port) as server:
        conf.write_text(f"listen: 127.0.0.1:{port}\nmax_payload: 32KB\nlisten: 127.0.0.1:{port}\n")
        if how == "sighup":
            server.process.send_signal(signal.SIGHUP)
        else:
            sent = subprocess.run(
                [sys.executable, "-m", "trionats", "--signal", f"reload={pid_file}"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert sent.returncode == 0, sent.stderr
        _wait_for(lambda: "Reloaded server configuration" in server.log())
        assert 'Trapped "hangup" signal' in server.log()
        assert "Reloaded: max_payload = 32768" in server.log()
        assert server.stop() == 0


ROUTE_PASSWORD = "s3cretRoute"
CLUSTER_PASSWORD = "s3cretListen"


def _reload_conf(certs: Certs, cluster_port: int, after: bool) -> str:
    tls = f'cert_file: "{certs.server_cert}", key_file: "{certs.server_key}"'
    if not after:
        return (f"cluster {{ name: C, listen: 127.0.0.1:{cluster_port} }}\n"
                f"tls {{ {tls}, timeout: 3 }}\n")  # fmt: skip
    return f"""
debug: true
max_connections: 100
max_payload: 2000
ping_interval: "3m"
write_deadline: "5s"
no_fast_producer_stall: true
max_traced_msg_len: 10
server_tags: ["az:1"]
cluster {{
  name: C, listen: 127.0.0.1:{cluster_port}
  routes: ["nats-route://ruser:{ROUTE_PASSWORD}@127.0.0.1:{free_port()}"]
  authorization {{ user: ruser, password: {CLUSTER_PASSWORD} }}
}}
tls {{ {tls}, timeout: 4, handshake_first: "300ms" }}
"""


@pytest.mark.interop
def test_reload_lines_match_nats_server(tmp_path, certs):
    """Each changed option logged by nats-server's name, in its order; a block says only that
    it changed (the route URL and the cluster password in it are not printed)."""
    lines = {}
    for name, kind in (("nats-server", NatsServerProcess), ("trionats", TrionatsProcess)):
        conf = tmp_path / f"{name}.conf"
        cluster_port = free_port()
        conf.write_text(_reload_conf(certs, cluster_port, after=False))
        with kind("-c", str(conf)) as server:
            conf.write_text(_reload_conf(certs, cluster_port, after=True))
            server.process.send_signal(signal.SIGHUP)
            _wait_for(lambda: "Reloaded server configuration" in server.log())
            log = server.log()
        lines[name] = [line.split("] ", 2)[2] for line in log.splitlines()
                       if "] Reload" in line and "server configuration" not in line]  # fmt: skip
        assert ROUTE_PASSWORD not in log and CLUSTER_PASSWORD not in log
    assert lines["trionats"] == lines["nats-server"]
    assert lines["trionats"] == [
        "Reloaded: debug = true",
        "Reloaded: max_connections = 100",
        "Reloaded: authorization users",
        "Reloaded: accounts",
        "Reloaded: ping_interval = 3m0s",
        "Reloaded: authorization timeout = 5",
        "Reloaded: max_payload = 2000",
        "Reloaded: fast producers will not be stalled",
        "Reloaded: cluster",
        "Reloaded: cluster routes",
        "Reloaded: tls timeout = 4",
        "Reloaded: Client TLS handshake first: true",
        "Reloaded: Client TLS handshake first fallback delay: 300ms",
        "Reloaded: write_deadline = 5s",
        "Reloaded: max_traced_msg_len = 10",
        "Reloaded: tags",
    ]


def test_signal_flag_errors():
    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "trionats", *args], capture_output=True, text=True, timeout=30
        )

    unknown = run("--signal", "bogus=1")
    assert unknown.returncode == 1 and 'unknown signal "bogus"' in unknown.stderr
    bad_pid = run("--signal", "ldm=notapid")  # ldm is known (tests/session/test_lame_duck.py)
    assert bad_pid.returncode == 1 and 'invalid pid "notapid"' in bad_pid.stderr
