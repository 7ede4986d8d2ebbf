"""Configuration files written for nats-server 2.15 run unchanged on trionats (tests/configs).

For every file: `nats-server -t` and `trionats -t` both accept it; its TOML twin loads to the
same options; and each server, run on the file, lets a client log in the way the file says and
get a message back (with the file's permissions, TLS, monitoring path, WebSocket port or log
file). The same checks run against nats-server, so a case that only trionats passes fails.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import attrs
import pytest
import trio
import trio_websocket
import trustme
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.helpers import (
    NatsServerProcess,
    RawClient,
    TrionatsProcess,
    free_port,
    nats_server_binary,
)
from trionats.auth import nkeys
from trionats.config.load import load

pytestmark = pytest.mark.interop

CORPUS = Path(__file__).parent.parent / "configs"
#: The seed of the NKey user in auth-nkeys.conf.
NKEY_SEED = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
NKEY_PUBLIC = nkeys.encode_public(
    NKEY_SEED.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
)
#: What the files take from the environment (container deployments set these).
ENVIRONMENT = {
    "SERVER_NAME": "c-1",
    "ROUTE_PORT": "16222",
    "ROUTE_1": "nats-route://route:route-secret@127.0.0.1:16223",
    "ROUTE_2": "nats-route://route:route-secret@127.0.0.1:16224",
    "WS_PORT": "18080",
    "NATS_TOKEN": "helm-token",
    "SYSLOG_URL": "udp://127.0.0.1:5514",
}


@attrs.frozen
class Login:
    """How a client of the file logs in, and what else the file promises."""

    fields: dict = attrs.field(factory=dict)  # CONNECT credentials
    subject: str = "greetings"  # a subject the user may publish and subscribe to
    nkey: bool = False
    tls: bool = False
    refused: dict | None = None  # CONNECT credentials the file must refuse
    denied: str | None = None  # a subject the user may not publish to
    anonymous: str | None = None  # a subject a client without credentials may use
    http_path: str | None = None  # a monitoring endpoint the file turns on
    websocket: bool = False
    log_file: str | None = None
    syslog: bool = False  # logs go to a UDP collector at $SYSLOG_URL


CASES = {
    "core.conf": Login(),
    "logging.conf": Login(log_file="node.log"),
    "monitoring.conf": Login(http_path="/nats/varz"),
    "auth-users.conf": Login(
        {"user": "app", "pass": "app-secret"}, "orders.new",
        refused={"user": "app", "pass": "wrong"}, denied="orders.audit", anonymous="public.news",
    ),
    "auth-token.conf": Login({"auth_token": "s3cr3t-t0ken"}, refused={"auth_token": "guess"}),
    "auth-nkeys.conf": Login(subject="telemetry.cpu", nkey=True, denied="orders.new"),
    "tls.conf": Login(tls=True),
    "cluster.conf": Login(),
    "websocket.conf": Login(websocket=True),
    "split/main.conf": Login({"user": "app", "pass": "app-secret"}, refused={}),
    "helm.json": Login({"auth_token": "helm-token"}, refused={}, http_path="/varz"),
    "syslog.conf": Login(syslog=True),
}  # fmt: skip
TOML_TWINS = sorted(p.stem for p in CORPUS.glob("*.toml"))


def test_every_file_of_the_corpus_has_a_case():
    files = {
        str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.suffix in (".conf", ".json")
    }
    included = {"split/limits.conf", "split/auth.conf"}  # parts of split/main.conf
    assert files - included == set(CASES)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """The corpus copied into a fresh directory with the certificates tls.conf names."""
    shutil.copytree(CORPUS, tmp_path, dirs_exist_ok=True)
    ca = trustme.CA()
    (tmp_path / "certs").mkdir()
    ca.cert_pem.write_to_path(tmp_path / "certs" / "ca.pem")
    server = ca.issue_cert("localhost", "127.0.0.1")
    server.cert_chain_pems[0].write_to_path(tmp_path / "certs" / "server.pem")
    server.private_key_pem.write_to_path(tmp_path / "certs" / "server.key")
    client = ca.issue_cert("client@example.com")
    client.private_key_and_cert_chain_pem.write_to_path(tmp_path / "certs" / "client.pem")
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return tmp_path


# --- checked by both servers ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["nats-server", "trionats"])
def test_both_servers_accept_the_file(workdir, name, command):
    argv = (
        [nats_server_binary()] if command == "nats-server" else [sys.executable, "-m", "trionats"]
    )
    result = subprocess.run([*argv, "-t", "-c", name], cwd=workdir, capture_output=True,
                            text=True, timeout=30, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "is valid (sha256:" in result.stdout + result.stderr


@pytest.mark.parametrize("name", TOML_TWINS)
def test_toml_twin_loads_to_the_same_options(workdir, monkeypatch, name):
    monkeypatch.chdir(workdir)  # tls.conf names its certificates relative to it
    conf, toml = load(Path(f"{name}.conf")), load(Path(f"{name}.toml"))
    assert attrs.evolve(conf, config_file="") == attrs.evolve(toml, config_file="")


# --- run by both servers -------------------------------------------------------------------------


def _client_tls_context(workdir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(workdir / "certs" / "ca.pem"))
    context.load_cert_chain(str(workdir / "certs" / "client.pem"))
    return context


async def _session(port: int, login: Login, workdir: Path, fields: dict) -> RawClient:
    """A logged-in raw client (TLS and NKey signing as the case needs)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    received = b""
    while b"\r\n" not in received:
        received += await stream.receive_some(65536)
    info = json.loads(received.partition(b"\r\n")[0][5:])
    if login.tls:
        stream = trio.SSLStream(stream, _client_tls_context(workdir), server_hostname="localhost")
        await stream.do_handshake()
    if login.nkey:  # sign the server's nonce with the user's seed
        signature = base64.urlsafe_b64encode(NKEY_SEED.sign(info["nonce"].encode()))
        fields = {**fields, "nkey": NKEY_PUBLIC, "sig": signature.rstrip(b"=").decode()}
    client = RawClient(stream)
    connect = {"verbose": False, "pedantic": False, "protocol": 1, **fields}
    await client.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    return client


async def _round_trip(client: RawClient, subject: str) -> None:
    await client.expect(b"PONG\r\n")
    # Both servers follow the first PONG of a protocol-1 client with the INFO of its login.
    info = json.loads((await client.read_line())[5:])
    assert info["connect_info"] and info["remote_account"] == "$G"
    await client.send(f"SUB {subject} 1\r\nPUB {subject} 5\r\nhello\r\nPING\r\n".encode())
    await client.expect(f"MSG {subject} 1 5\r\nhello\r\nPONG\r\n".encode())


async def _websocket_round_trip(port: int) -> None:
    async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
        info = await ws.get_message()
        assert bytes(info).startswith(b"INFO ")
        await ws.send_message(b'CONNECT {"verbose":false}\r\nSUB ws.greetings 1\r\n'
                              b"PUB ws.greetings 2\r\nhi\r\nPING\r\n")  # fmt: skip
        received = b""
        while b"PONG\r\n" not in received:
            received += bytes(await ws.get_message())
        assert received == b"MSG ws.greetings 1 2\r\nhi\r\nPONG\r\n"


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("command", ["nats-server", "trionats"])
async def test_both_servers_run_the_file(workdir, monkeypatch, name, command):
    login = CASES[name]
    ports = {"WS_PORT": free_port(), "ROUTE_PORT": free_port()}
    environment = {**ENVIRONMENT, **{key: str(port) for key, port in ports.items()}}
    # The routes of cluster.conf point at members that are not running.
    environment["ROUTE_1"] = f"nats-route://route:route-secret@127.0.0.1:{free_port()}"
    environment["ROUTE_2"] = f"nats-route://route:route-secret@127.0.0.1:{free_port()}"
    http_port = free_port()
    args = ["-c", name] + (["-m", str(http_port)] if login.http_path else [])
    kind = NatsServerProcess if command == "nats-server" else TrionatsProcess
    ready_log = workdir / login.log_file if login.log_file else None
    with contextlib.ExitStack() as stack:
        if login.syslog:
            ready_log = workdir / "syslog.txt"
            port = stack.enter_context(_syslog_collector(ready_log))
            environment["SYSLOG_URL"] = f"udp://127.0.0.1:{port}"
        server = stack.enter_context(kind(*args, cwd=workdir, env=environment,
                                          ready_log=ready_log))  # fmt: skip
        async with trio.open_nursery() as cleanup:  # (a place to close clients from)
            try:
                await _use(server.port, http_port, ports["WS_PORT"], login, workdir, opened := [])
            finally:
                for client in opened:
                    cleanup.start_soon(client.aclose)
    if login.log_file:
        logged = (workdir / login.log_file).read_text()
        assert "[DBG]" in logged and "Server is ready" in logged
    if login.syslog:
        # Remote syslog has facility 0 (nats-server dials it so): an INF line is <5>, notice,
        # then an RFC 3339 time, the host name, and the program's name as the tag.
        logged = ready_log.read_text()
        assert re.search(r"^<5>\S+ \S+ (nats-server|trionats)\[\d+\]: Server is ready$",
                         logged, flags=re.MULTILINE), logged  # fmt: skip


@contextlib.contextmanager
def _syslog_collector(path: Path):
    """A UDP syslog collector on a free port, writing each datagram it gets as a line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    done = threading.Event()

    def collect() -> None:
        with path.open("a") as out:
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    out.write(sock.recv(65536).decode(errors="replace").rstrip("\n") + "\n")
                    out.flush()

    thread = threading.Thread(target=collect)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        done.set()
        thread.join()
        sock.close()


async def _use(port: int, http_port: int, ws_port: int, login: Login, workdir: Path,
               opened: list) -> None:  # fmt: skip
    """Log in as the file says and check what it promises."""

    async def session(fields: dict) -> RawClient:
        opened.append(client := await _session(port, login, workdir, fields))
        return client

    with trio.fail_after(10):
        client = await session(login.fields)
        await _round_trip(client, login.subject)
        if login.denied:
            await client.send(f"PUB {login.denied} 1\r\nx\r\nPING\r\n".encode())
            await client.expect(f"-ERR 'Permissions Violation for Publish to "
                                f'"{login.denied}"\'\r\nPONG\r\n'.encode())  # fmt: skip
        if login.anonymous:
            await _round_trip(await session({}), login.anonymous)
        if login.refused is not None:
            intruder = await session(login.refused)
            await intruder.expect(b"-ERR 'Authorization Violation'\r\n")
        if login.websocket:
            await _websocket_round_trip(ws_port)
        if login.http_path:
            url = f"http://127.0.0.1:{http_port}{login.http_path}"

            def fetch() -> bytes:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.read()

            assert json.loads(await trio.to_thread.run_sync(fetch))["server_id"]
