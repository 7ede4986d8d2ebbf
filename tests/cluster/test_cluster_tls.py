"""Cluster TLS: routes handshake before any protocol byte, mutually, with certificates from
a throwaway CA (trustme) - among trionats servers and with nats-server."""

from __future__ import annotations

import re
import time

import attrs
import pytest
import trio

from tests.helpers import NatsServerProcess, TrionatsProcess, free_port, start_trionats
from tests.cluster.test_cluster import client, has_remote_interest, routed, wait_for
from tests.cluster.test_cluster_interop import exchange_messages
from tests.auth.test_tls import NOW, REFUSED, Certs, certs, refused  # noqa: F401 (fixtures)
from trionats.options import ClusterOptions, TLSOptions


def tls_cluster(certs: Certs, *routes: int, cert: str = "server", **fields) -> ClusterOptions:
    block = TLSOptions(cert_file=getattr(certs, f"{cert}_cert"),
                       key_file=getattr(certs, f"{cert}_key"), ca_file=certs.ca_file)  # fmt: skip
    urls = tuple(f"nats-route://127.0.0.1:{port}" for port in routes)
    return ClusterOptions(name="C", host="127.0.0.1", port=-1, routes=urls, tls=block, **fields)


async def test_three_servers_form_a_tls_mesh(nursery, certs):
    a = await start_trionats(nursery, cluster=tls_cluster(certs), server_name="A")
    b = await start_trionats(nursery, cluster=tls_cluster(certs, a.cluster.port), server_name="B")
    c = await start_trionats(nursery, cluster=tls_cluster(certs, a.cluster.port), server_name="C")
    await wait_for(lambda: routed(a, b, c))  # B-C by gossip, over TLS as well
    assert all(type(r.stream).__name__ == "SSLStream"
               for s in (a, b, c) for r in s.cluster.routes.values())  # fmt: skip
    sub = await client(c)
    await sub.send(b"SUB secure 1\r\nPING\r\n")
    await sub.expect(b"PONG\r\n")
    await wait_for(lambda: has_remote_interest(b, b"secure"))
    pub = await client(b)
    await pub.send(b"PUB secure 6\r\nsecret\r\n")
    await sub.expect(b"MSG secure 1 6\r\nsecret\r\n")
    for server in (a, b, c):
        server.shutdown()


async def test_route_port_says_nothing_before_the_tls_handshake(nursery, certs):
    a = await start_trionats(nursery, cluster=tls_cluster(certs))
    stream = await trio.open_tcp_stream("127.0.0.1", a.cluster.port)
    try:
        with trio.move_on_after(0.3):
            data = await stream.receive_some(100)
            pytest.fail(f"plaintext before TLS: {data!r}")
        await stream.send_all(b'CONNECT {"name":"X","cluster":"C"}\r\n')
        with trio.fail_after(5):
            assert await stream.receive_some(100) == b""  # not TLS: closed, no -ERR
    finally:
        await stream.aclose()
    a.shutdown()


@pytest.mark.parametrize("who", ["plaintext", "stranger"])
async def test_a_server_without_a_trusted_certificate_cannot_join(nursery, certs, who):
    a = await start_trionats(nursery, cluster=tls_cluster(certs), server_name="A")
    if who == "plaintext":
        joining = ClusterOptions(name="C", host="127.0.0.1", port=-1,
                                 routes=(f"nats-route://127.0.0.1:{a.cluster.port}",))  # fmt: skip
    else:
        joining = tls_cluster(certs, a.cluster.port, cert="stranger")
    b = await start_trionats(nursery, cluster=joining, server_name="B")
    with trio.move_on_after(1.5):
        await wait_for(lambda: bool(a.cluster.routes or b.cluster.routes))
    assert not a.cluster.routes and not b.cluster.routes
    a.shutdown()
    b.shutdown()


def go_tls_node(certs: Certs, tmp_path, cluster_port: int, *routes: int) -> NatsServerProcess:
    routes_text = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in routes)
    conf = tmp_path / "go.conf"
    conf.write_text(
        f"cluster {{\n  name: C\n  listen: 127.0.0.1:{cluster_port}\n  routes: [{routes_text}]\n"
        f'  tls {{ cert_file: "{certs.server_cert}", key_file: "{certs.server_key}",'
        f' ca_file: "{certs.ca_file}", timeout: 2 }}\n}}\n'
    )
    return NatsServerProcess("-n", "G", "-c", str(conf))


@pytest.mark.interop
async def test_tls_routes_with_nats_server_both_ways(nursery, certs, tmp_path):
    go_port = free_port()
    ours = await start_trionats(nursery, cluster=tls_cluster(certs, go_port), server_name="T")
    with go_tls_node(certs, tmp_path, go_port, ours.cluster.port) as go:
        await wait_for(lambda: len(ours.cluster.routes) == 1)
        await exchange_messages(ours, go)
        assert "TLS route handshake error" not in go.log()
    ours.shutdown()


# --- the certificate as the route's credential ---------------------------------------------------


async def expect_route(a, b, joins: bool) -> None:
    """B, dialing A, joins it, or is refused (A keeps no route for a while)."""
    if joins:
        await wait_for(lambda: routed(a, b))
    else:
        with trio.move_on_after(1.5):
            await wait_for(lambda: bool(a.cluster.routes))
        assert not a.cluster.routes
    a.shutdown()
    b.shutdown()


@pytest.mark.parametrize(("cert", "joins"), [("alice", True), ("bob", False)])
async def test_verify_and_map_the_certificate_must_name_the_cluster_user(nursery, certs, cert,
                                                                         joins):  # fmt: skip
    from trionats.options import RouteAuthorization

    # A asks for user alice@example.com (and a password no one sends): with verify_and_map
    # the certificate is the credential. alice's names that user, bob's does not.
    auth = RouteAuthorization(user="alice@example.com", password="unused")
    server_side = tls_cluster(certs, authorization=auth)
    block = attrs.evolve(server_side.tls, verify_and_map=True)
    a = await start_trionats(nursery, cluster=attrs.evolve(server_side, tls=block),
                             server_name="A")  # fmt: skip
    b = await start_trionats(nursery, cluster=tls_cluster(certs, a.cluster.port, cert=cert),
                             server_name="B")  # fmt: skip
    await expect_route(a, b, joins)


@pytest.mark.parametrize(("cert", "joins"), [("server", True), ("bob", False)])
async def test_check_known_urls_the_certificate_must_name_a_configured_route(nursery, certs,
                                                                             cert, joins):  # fmt: skip
    # A's configured routes name `localhost` (a member not started here): a peer whose
    # certificate has the DNS name localhost may join; bob.example.com may not.
    server_side = tls_cluster(certs, free_port())
    server_side = attrs.evolve(server_side, routes=tuple(
        url.replace("127.0.0.1", "localhost") for url in server_side.routes))  # fmt: skip
    block = attrs.evolve(server_side.tls, verify_cert_and_check_known_urls=True)
    a = await start_trionats(nursery, cluster=attrs.evolve(server_side, tls=block),
                             server_name="A")  # fmt: skip
    b = await start_trionats(nursery, cluster=tls_cluster(certs, a.cluster.port, cert=cert),
                             server_name="B")  # fmt: skip
    await expect_route(a, b, joins)


# --- a refused certificate says why --------------------------------------------------------------


def _route_conf(path, certs: Certs, cert: str, key: str, port: int, *routes: int):
    listed = ", ".join(f'"nats-route://127.0.0.1:{route}"' for route in routes)
    path.write_text(
        f"cluster {{ name: C, listen: 127.0.0.1:{port}, routes: [{listed}]\n"
        f'  tls {{ cert_file: "{cert}", key_file: "{key}", ca_file: "{certs.ca_file}" }} }}\n'
    )
    return str(path)


def _first_handshake_error(process, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"rid:\d+ - (TLS route handshake error: .*)", process.log())
        if found:
            return NOW.sub("<now>", found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no handshake error: {process.log()}")


@pytest.mark.interop
@pytest.mark.parametrize("why", list(REFUSED))
def test_a_refused_route_certificate_is_explained_as_by_nats_server(certs, refused, tmp_path,
                                                                    why):  # fmt: skip
    """A nats-server node with a certificate that is for another host, expired or from an
    unknown CA: trionats dialing it logs what nats-server dialing it logs, word for word."""
    a_port = free_port()
    a_conf = _route_conf(tmp_path / "a.conf", certs, *refused[why], a_port)
    lines = {}
    with NatsServerProcess("-c", a_conf) as a:
        for name, kind in (("nats-server", NatsServerProcess), ("trionats", TrionatsProcess)):
            conf = _route_conf(tmp_path / f"{name}.conf", certs, certs.server_cert,
                               certs.server_key, free_port(), a_port)  # fmt: skip
            with kind("-c", conf) as b:
                lines[name] = _first_handshake_error(b)
    assert lines["trionats"] == lines["nats-server"]
    assert REFUSED[why][0] in lines["trionats"]
