"""HTTPS monitoring: `https_port` (or `-ms`) serves the monitor over TLS with the `tls` block."""

from __future__ import annotations

import json
import ssl

import attrs
import pytest
import trio
import trustme

from tests.helpers import TrionatsProcess
from trionats.cli import build_options, parse_args
from trionats.config.load import load
from trionats.errors import ConfigError
from trionats.options import Options, TLSOptions


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("https")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    paths = {name: str(folder / f"{name}.pem") for name in ("cert", "key", "ca")}
    leaf.cert_chain_pems[0].write_to_path(paths["cert"])
    leaf.private_key_pem.write_to_path(paths["key"])
    ca.cert_pem.write_to_path(paths["ca"])
    return paths


async def https_get(port: int, path: str, ca_file: str) -> tuple[bytes, bytes]:
    """One GET over TLS: (status line and headers, body)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    context = ssl.create_default_context(cafile=ca_file)
    stream = trio.SSLStream(stream, context, server_hostname="localhost")
    with trio.fail_after(5):
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    await stream.aclose()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


async def test_varz_over_https(server_factory, pki):
    tls = TLSOptions(cert_file=pki["cert"], key_file=pki["key"], timeout=1.5, verify=True,
                     ca_file=pki["ca"])  # fmt: skip
    server = await server_factory(tls=tls, https_port=-1)
    assert server.monitor_urls()[0].startswith("https://")
    head, body = await https_get(server.monitor.port, "/varz", pki["ca"])
    assert head.startswith(b"HTTP/1.1 200")
    varz = json.loads(body)
    # The monitor asks no client certificate even with verify (as nats-server).
    assert varz["tls_required"] is True and varz["tls_verify"] is True
    assert varz["tls_timeout"] == 1.5 and varz["auth_timeout"] == 2.5
    assert varz["https_port"] == server.monitor.port and varz["http_port"] == 0


async def test_connz_shows_the_tls_of_each_client(server_factory, pki):
    tls = TLSOptions(cert_file=pki["cert"], key_file=pki["key"])
    server = await server_factory(tls=tls, https_port=-1, allow_non_tls=True)
    plain = await trio.open_tcp_stream("127.0.0.1", server.port)
    secure = trio.SSLStream(
        await trio.open_tcp_stream("127.0.0.1", server.port),
        ssl.create_default_context(cafile=pki["ca"]),
        server_hostname="localhost",
    )
    with trio.fail_after(5):
        await plain.receive_some(4096)  # the INFO
        await secure.transport_stream.receive_some(4096)
        await secure.do_handshake()
        for stream in (plain, secure):
            await stream.send_all(b"CONNECT {}\r\nPING\r\n")
            await stream.receive_some(4096)
    _, body = await https_get(server.monitor.port, "/connz", pki["ca"])
    first, second = json.loads(body)["connections"]
    assert "tls_version" not in first
    assert second["tls_version"] in ("1.2", "1.3")
    assert second["tls_cipher_suite"].startswith("TLS_")
    assert list(second).index("tls_version") > list(second).index("subscriptions")
    await plain.aclose()
    await secure.aclose()


async def test_plain_http_on_the_https_port_gets_nothing(server_factory, pki):
    tls = TLSOptions(cert_file=pki["cert"], key_file=pki["key"], timeout=0.5)
    server = await server_factory(tls=tls, https_port=-1)
    stream = await trio.open_tcp_stream("127.0.0.1", server.monitor.port)
    await stream.send_all(b"GET /varz HTTP/1.1\r\nHost: x\r\n\r\n")
    with trio.fail_after(5):
        data = b""
        try:
            while chunk := await stream.receive_some(65536):
                data += chunk
        except trio.BrokenResourceError:
            pass
    assert b"HTTP/1.1 200" not in data
    await stream.aclose()


def test_https_needs_tls_and_excludes_http():
    needs_tls = "Can't start monitoring: TLS cert and key required for HTTPS"
    with pytest.raises(ConfigError, match=needs_tls):
        Options(https_port=8222).check()
    both = attrs.evolve(Options(), http_port=8222, https_port=8223)
    with pytest.raises(ConfigError, match=r"can't specify both HTTP \(8222\) and HTTPs \(8223\)"):
        both.check()


def test_https_keys_and_flag(tmp_path, pki):
    path = tmp_path / "https.conf"
    path.write_text(
        f'https: "127.0.0.1:8443"\ntls {{ cert_file: "{pki["cert"]}", key_file: "{pki["key"]}" }}\n'
    )
    options = load(path)
    assert (options.http_host, options.https_port, options.http_port) == ("127.0.0.1", 8443, 0)
    flags = parse_args(["-ms", "-1", "--tlscert", pki["cert"], "--tlskey", pki["key"]])
    assert build_options(flags).https_port == -1


def test_https_from_the_command_line(pki):
    args = ("-ms", "-1", "--tlscert", pki["cert"], "--tlskey", pki["key"])
    with TrionatsProcess(*args) as process:
        log = process.log()
    assert "Starting https monitor on" in log
    assert "TLS required for client connections" in log


def test_https_flag_without_tls_exits_1(capsys):
    from trionats import cli

    assert cli.main(["-ms", "8222"]) == 1
    assert "TLS cert and key required for HTTPS" in capsys.readouterr().err


@pytest.mark.interop
@pytest.mark.parametrize(
    "extra", ["", "  verify: true\n  timeout: 0.5\n", "  verify_and_map: true\n"]
)
def test_varz_tls_fields_match_nats_server(tmp_path, pki, extra):
    import urllib.request

    from tests.helpers import NatsServerProcess, free_port

    conf = tmp_path / "https.conf"
    conf.write_text(
        f'tls {{\n  cert_file: "{pki["cert"]}"\n  key_file: "{pki["key"]}"\n'
        f'  ca_file: "{pki["ca"]}"\n{extra}}}\n'
    )
    context = ssl.create_default_context(cafile=pki["ca"])
    fields = ("tls_required", "tls_verify", "tls_timeout", "auth_timeout", "http_port")
    seen = []
    for kind in (NatsServerProcess, TrionatsProcess):
        port = free_port()
        with kind("-c", str(conf), "-ms", str(port)):
            url = f"https://localhost:{port}/varz"
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                varz = json.loads(response.read())
        assert varz["https_port"] == port
        seen.append({name: varz.get(name) for name in fields})
    assert seen[0] == seen[1]
