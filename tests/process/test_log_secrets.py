"""No secret reaches a log line: passwords, tokens, nkey signatures, bcrypt hashes, route
credentials and TLS keys, through authentication, routes, TLS and reloads, with debug and
trace on (-DV), in the text and the JSON format, and in configuration errors and flag errors.

Real `trionats` processes and real clients (raw sockets over TLS), then every line of every
log is searched for every secret.
"""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest

from tests.helpers import TrionatsProcess, free_port
from tests.auth.test_auth import NKEY, _sign
from tests.config.test_reload import _wait_for
from tests.auth.test_tls import Certs, certs  # noqa: F401 (the session fixture)

#: Every secret the scenarios use; each has a distinctive spelling, so a hit is a leak.
PW_ALICE = "pwAlice7Qx"
PW_ALICE_NEW = "pwAliceNew7Qx"
PW_BOB = "pwBob7Qx"  # configured as a bcrypt hash
BOB_HASH = bcrypt.hashpw(PW_BOB.encode(), bcrypt.gensalt(4)).decode()
PW_WRONG = "pwWrong7Qx"
TOKEN = "tokGood7Qx"
TOKEN_WRONG = "tokWrong7Qx"
PW_ROUTE = "pwRoute7Qx"
PW_ROUTE_WRONG = "pwRouteWrong7Qx"
PW_ROUTE_ADDED = "pwRouteAdded7Qx"
SECRETS = [PW_ALICE, PW_ALICE_NEW, PW_BOB, BOB_HASH, PW_WRONG, TOKEN, TOKEN_WRONG, PW_ROUTE,
           PW_ROUTE_WRONG, PW_ROUTE_ADDED]  # fmt: skip


def _tls(certs: Certs) -> str:
    return (f'tls {{ cert_file: "{certs.server_cert}", key_file: "{certs.server_key}",'
            f' ca_file: "{certs.ca_file}" }}')  # fmt: skip


def _users(alice_password: str) -> str:
    return (f"authorization {{ users: [ {{user: alice, password: {alice_password}}},"
            f' {{user: bob, password: "{BOB_HASH}"}}, {{nkey: {NKEY}}} ] }}')  # fmt: skip


def _cluster(certs: Certs, port: int, *routes: str, auth: bool = False) -> str:
    listed = ", ".join(f'"{url}"' for url in routes)
    credential = f"authorization {{ user: ruser, password: {PW_ROUTE} }}" if auth else ""
    return (f"cluster {{ name: C, listen: 127.0.0.1:{port}, routes: [{listed}]\n"
            f"  {credential}\n  {_tls(certs)}\n}}\n")  # fmt: skip


def _connect(port: int, context: ssl.SSLContext, **fields) -> bytes:
    """A TLS client sends CONNECT with `fields` (sig: signs the nonce) and PING; the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        info = b""
        while not info.endswith(b"\r\n"):
            info += raw.recv(4096)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            if fields.pop("sign", False):
                fields["sig"] = _sign(json.loads(info[5:])["nonce"])
            sock.sendall(b"CONNECT " + json.dumps({"verbose": False, **fields}).encode()
                         + b"\r\nPING\r\n")  # fmt: skip
            reply = b""
            while b"PONG" not in reply and b"-ERR" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            return reply


def _reload(node: TrionatsProcess, conf, text: str) -> None:
    count = node.log().count("Reloaded server configuration")
    conf.write_text(text)
    node.process.send_signal(signal.SIGHUP)
    _wait_for(lambda: node.log().count("Reloaded server configuration") > count)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_in_any_line(tmp_path, certs, log_format):
    flags = ("-DV", "--log_format", log_format)
    context = certs.client_context()
    a_cluster, b_cluster, c_cluster = free_port(), free_port(), free_port()
    a_conf = tmp_path / "a.conf"
    a_head = f"{_tls(certs)}\n{_cluster(certs, a_cluster, auth=True)}"
    a_conf.write_text(f"{a_head}{_users(PW_ALICE)}\n")
    b_conf, c_conf = tmp_path / "b.conf", tmp_path / "c.conf"
    b_conf.write_text(_cluster(certs, b_cluster,
                               f"nats-route://ruser:{PW_ROUTE}@127.0.0.1:{a_cluster}"))  # fmt: skip
    c_conf.write_text(_cluster(certs, c_cluster,
                               f"nats-route://ruser:{PW_ROUTE_WRONG}@127.0.0.1:{a_cluster}"))  # fmt: skip
    logs = []
    with TrionatsProcess("-c", str(a_conf), *flags) as a:
        with (TrionatsProcess("-c", str(b_conf), *flags) as b,
              TrionatsProcess("-c", str(c_conf), *flags) as c):  # fmt: skip
            # Routes: B joins with the right credential, C is refused.
            _wait_for(lambda: "Route connection created" in b.log())
            _wait_for(lambda: "authentication error" in a.log())
            # Clients: passwords (plain and bcrypt), right and wrong; an nkey.
            assert b"PONG" in _connect(a.port, context, user="alice", **{"pass": PW_ALICE})
            assert b"-ERR" in _connect(a.port, context, user="alice", **{"pass": PW_WRONG})
            assert b"PONG" in _connect(a.port, context, user="bob", **{"pass": PW_BOB})
            assert b"-ERR" in _connect(a.port, context, user="bob", **{"pass": PW_WRONG})
            assert b"PONG" in _connect(a.port, context, nkey=NKEY, sign=True)
            # Reloads: a route with a credential in its URL added, a password changed ...
            added = f"nats-route://ruser:{PW_ROUTE_ADDED}@127.0.0.1:{free_port()}"
            _reload(a, a_conf, f"{_tls(certs)}\n"
                    f"{_cluster(certs, a_cluster, added, auth=True)}{_users(PW_ALICE_NEW)}\n")  # fmt: skip
            assert b"-ERR" in _connect(a.port, context, user="alice", **{"pass": PW_ALICE})
            # ... then a token instead of the users.
            _reload(a, a_conf, f"{a_head}authorization {{ token: {TOKEN} }}\n")
            assert b"PONG" in _connect(a.port, context, auth_token=TOKEN)
            assert b"-ERR" in _connect(a.port, context, auth_token=TOKEN_WRONG)
            assert b.stop() == 0 and c.stop() == 0
            logs += [b.log(), c.log()]
        assert a.stop() == 0
        logs.append(a.log())
    key_lines = [line for line in Path(certs.server_key).read_text().splitlines()
                 if line and not line.startswith("-----")]  # fmt: skip
    for log in logs:
        for line in log.splitlines():
            for secret in SECRETS + key_lines:
                assert secret not in line, f"{secret!r} in {line!r}"
    a_log = logs[2]
    assert "Reloaded: cluster routes" in a_log and "Reloaded: authorization token" in a_log
    assert "nats-route://ruser:xxxxx@" in logs[0]  # B's dialed route, as logs show URLs
    if log_format == "json":
        assert all(json.loads(line) for log in logs for line in log.splitlines())


def test_no_secret_in_configuration_and_flag_errors(tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "trionats", *args], capture_output=True,
                              text=True, timeout=30)  # fmt: skip

    conf = tmp_path / "bad.conf"
    conf.write_text(f'cluster {{ port: -1, routes: ["nats-route://ruser:{PW_ROUTE}@"] }}\n')
    checked = run("-c", str(conf), "-t")
    assert checked.returncode == 1
    assert 'error parsing route url ["nats-route://ruser:xxxxx@"]' in checked.stderr
    flag = run("--routes", f"nats://ruser:{PW_ROUTE}@host")
    assert flag.returncode == 2
    assert 'invalid value "nats://ruser:xxxxx@host" for flag -routes' in flag.stderr
    for output in (checked, flag):
        assert PW_ROUTE not in output.stdout + output.stderr
