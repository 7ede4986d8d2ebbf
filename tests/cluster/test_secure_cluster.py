"""The secure cluster of etc/secure as a user runs it: three `trionats -c node-X.conf`
processes with client and route TLS, bcrypt users with permissions and route credentials;
nats-py clients check what is allowed and what is refused, as on nats-server."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import nats
import nats.errors
import pytest

from tests.helpers import TrionatsProcess, free_port
from tests.clients.test_nats_py import TIMEOUT, connect, run, sync

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).parents[2] / "etc" / "secure"
FIXED_PORTS = (4222, 4223, 4224, 6222, 6223, 6224, 8222, 8223, 8224)


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secure")
    (folder / "certs").mkdir()
    # The certificates as the sample's comment says to make them.
    subprocess.run([sys.executable, "-m", "trustme", "-d", "certs", "-i", "localhost",
                    "127.0.0.1"], cwd=folder, check=True, capture_output=True)  # fmt: skip
    ports = {str(p): str(free_port()) for p in FIXED_PORTS}
    paths = []
    for name in "abc":
        text = (SAMPLE / f"node-{name}.conf").read_text()
        for fixed, free in ports.items():
            text = text.replace(f":{fixed}", f":{free}")
        path = folder / f"node-{name}.conf"
        path.write_text(text)
        paths.append(path)
    nodes = [_Node(path, int(ports[str(4222 + i)])) for i, path in enumerate(paths)]
    try:
        deadline = time.monotonic() + 15
        while not all(n.log().count("Route connection created") >= 2 for n in nodes):
            assert time.monotonic() < deadline, [n.log() for n in nodes]
            time.sleep(0.05)
        yield folder, nodes
    finally:
        for node in nodes:
            node.stop()


class _Node(TrionatsProcess):
    """trionats started in the sample's folder (its certificate paths are relative)."""

    def __init__(self, conf: Path, port: int) -> None:
        import os

        self._cwd = os.getcwd()
        os.chdir(conf.parent)
        try:
            super().__init__("-c", str(conf), port=port)
        finally:
            os.chdir(self._cwd)


def tls_context(folder: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(folder / "certs" / "client.pem"))


def raw_subscriber(port: int, context: ssl.SSLContext, user: str, password: str,
                   subject: str) -> ssl.SSLSocket:  # fmt: skip
    """A raw protocol subscriber over TLS (INFO in plaintext, then the handshake), synced."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    info = b""
    while not info.endswith(b"\r\n"):
        info += sock.recv(1)
    tls = context.wrap_socket(sock, server_hostname="localhost")
    connect = b'{"verbose":false,"pedantic":false,"user":"%s","pass":"%s"}' % (
        user.encode(), password.encode())  # fmt: skip
    tls.sendall(b"CONNECT " + connect + b"\r\nSUB " + subject.encode() + b" 1\r\nPING\r\n")
    received = b""
    while b"PONG\r\n" not in received:
        received += tls.recv(4096)
    return tls


def receive(tls: ssl.SSLSocket, wait: float) -> bytes:
    tls.settimeout(wait)
    try:
        return tls.recv(65536)
    except TimeoutError:
        return b""


def test_secure_cluster_allows_and_refuses_like_nats_server(secure_cluster):
    folder, (a, b, c) = secure_cluster
    context = tls_context(folder)
    errors: list[Exception] = []

    async def on_error(error):
        errors.append(error)

    async def main():
        # (a raw subscriber: nats-py over TLS now and then keeps a SUB in its buffer)
        reader = await asyncio.to_thread(raw_subscriber, c.port, context, "reader",
                                         "reader-secret", "orders.>")  # fmt: skip
        app = await connect(f"tls://127.0.0.1:{a.port}", tls=context, user="app",
                            password="app-secret", error_cb=on_error)  # fmt: skip
        deadline = time.monotonic() + 3 * TIMEOUT
        while True:  # until the reader's interest has crossed to node a
            await app.publish("orders.new", b"widget")
            await sync(app)
            data = await asyncio.to_thread(receive, reader, 0.2)
            if data:
                break
            assert time.monotonic() < deadline
        assert data.startswith(b"MSG orders.new 1 6\r\nwidget\r\n")
        reader.close()
        # app may not publish outside orders.> and _INBOX.>: -ERR, the connection stays.
        await app.publish("billing.x", b"no")
        await sync(app)
        await asyncio.sleep(0.1)
        assert any("permissions violation for publish to" in str(e).lower() for e in errors)
        assert app.is_connected
        # reader may publish nothing; a wrong password is refused.
        try:
            bad = await connect(f"tls://127.0.0.1:{b.port}", tls=context, user="app",
                                password="wrong", max_reconnect_attempts=0)  # fmt: skip
        except Exception:  # nats-py raises the server's Authorization Violation...
            pass
        else:  # ...or, now and then, hands the client back before reading it, then closes
            deadline = time.monotonic() + TIMEOUT
            while bad.is_connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not bad.is_connected
        # A request from node b's admin answered by app on node a, across TLS routes.
        async def answer(msg):
            await msg.respond(b"ok:" + msg.data)

        await app.subscribe("orders.status", cb=answer)
        await sync(app)
        admin = await connect(f"tls://127.0.0.1:{b.port}", tls=context, user="admin",
                              password="admin-secret")  # fmt: skip
        deadline = time.monotonic() + 2 * TIMEOUT
        while True:
            try:
                reply = await admin.request("orders.status", b"42", timeout=0.5)
                break
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as error:
                # (what each node saw, should the answer never come)
                assert time.monotonic() < deadline, (error, [n.log() for n in (a, b, c)])
                await sync(admin)
        assert reply.data == b"ok:42"

    run(main())


def test_a_node_with_the_wrong_route_password_is_refused(secure_cluster, tmp_path):
    folder, (a, _, _) = secure_cluster
    conf = (folder / "node-c.conf").read_text()
    port, route_port = free_port(), free_port()
    intruder = tmp_path / "intruder.conf"
    start = conf.index("listen:")
    text = conf.replace("server_name: secure-c", "server_name: intruder")
    text = text.replace("route:route-secret@", "route:guess@")
    text = text[:start] + text[start:].replace(text[start:].split("\n")[0], f"listen: 127.0.0.1:{port}", 1)
    cluster_listen = [line for line in text.splitlines() if line.strip().startswith("listen:")][1]
    text = text.replace(cluster_listen, f"  listen: 127.0.0.1:{route_port}")
    text = text.replace("\nhttp:", "\n# http:")
    shutil.copytree(folder / "certs", tmp_path / "certs")
    intruder.write_text(text)
    node = _Node(intruder, port)
    try:
        deadline = time.monotonic() + TIMEOUT
        # The members refused it (the intruder, as a dialer, took their INFO for a route
        # until their -ERR came, as nats-server's dialers do). (With route pools, the three
        # refusals the intruder logs may all be from other members before a's own is logged.)
        while (node.log().count("Route Error 'Authorization Violation'") < 3
               or 'authentication error - User "route"' not in a.log()):  # fmt: skip
            assert time.monotonic() < deadline, (node.log(), a.log())
            time.sleep(0.05)
    finally:
        node.stop()
