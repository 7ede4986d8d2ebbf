"""TLS on the client port: nats-server's flow (plaintext INFO, then the handshake), mutual TLS,
handshake_first, allow_non_tls, verify_and_map, pinned certificates, timeouts, configuration.

Certificates come from trustme (a throwaway CA); every test uses real sockets.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import ssl
import subprocess
from pathlib import Path

import attrs
import nats
import nats.errors
import pytest
import trio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess
from trionats import tls
from trionats.auth import certmap
from trionats.cli import build_options, parse_args
from trionats.config.load import load
from trionats.errors import ConfigError, Reason
from trionats.options import (
    Authorization,
    Permissions,
    SubjectPermission,
    TLSOptions,
    User,
)

C = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


@attrs.frozen
class Certs:
    dir: Path
    ca: trustme.CA
    server_cert: str
    server_key: str
    ca_file: str
    #: client certificate with SANs alice@example.com and client.example.com
    alice_cert: str
    alice_key: str
    #: client certificate whose subject is CN=bob,OU=eng,O=Acme (SAN bob.example.com)
    bob_cert: str
    bob_key: str
    #: a certificate from another CA
    stranger_cert: str
    stranger_key: str

    def server_tls(self, **fields) -> TLSOptions:
        return TLSOptions(cert_file=self.server_cert, key_file=self.server_key, **fields)

    def client_context(self, who: str | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if who is not None:
            context.load_cert_chain(getattr(self, f"{who}_cert"), getattr(self, f"{who}_key"))
        return context


def _write(blob, path: Path) -> str:
    blob.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    folder = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    alice = ca.issue_cert("alice@example.com", "client.example.com")
    # (a SAN, as Go refuses trustme's empty critical SAN extension)
    bob = ca.issue_cert(
        "bob.example.com", common_name="bob", organization_name="Acme", organization_unit_name="eng"
    )
    stranger = trustme.CA().issue_cert("alice@example.com")
    return Certs(
        dir=folder,
        ca=ca,
        server_cert=_write(server.cert_chain_pems[0], folder / "server-cert.pem"),
        server_key=_write(server.private_key_pem, folder / "server-key.pem"),
        ca_file=_write(ca.cert_pem, folder / "ca.pem"),
        alice_cert=_write(alice.cert_chain_pems[0], folder / "alice-cert.pem"),
        alice_key=_write(alice.private_key_pem, folder / "alice-key.pem"),
        bob_cert=_write(bob.cert_chain_pems[0], folder / "bob-cert.pem"),
        bob_key=_write(bob.private_key_pem, folder / "bob-key.pem"),
        stranger_cert=_write(stranger.cert_chain_pems[0], folder / "stranger-cert.pem"),
        stranger_key=_write(stranger.private_key_pem, folder / "stranger-key.pem"),
    )


_opened: list[RawClient] = []


@pytest.fixture
async def tls_server(server_factory):
    """`server_factory`, and every client the test opened is closed when it ends."""
    yield server_factory
    while _opened:
        client = _opened.pop()
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await client.aclose()


def info_of(line: bytes) -> dict:
    assert line.startswith(b"INFO "), line
    return json.loads(line[5:])


class TLSClient(RawClient):
    """RawClient whose stream becomes TLS after the INFO (or at once, for handshake_first).

    Every client a test opens is closed when the test ends (`close_clients`).
    """

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1", *, read_info: bool = True):
        stream = await trio.open_tcp_stream(host, port)
        client = cls(stream)
        _opened.append(client)
        if read_info:
            client.info = await client.read_line()
        return client

    async def start_tls(self, context: ssl.SSLContext, hostname: str = "localhost") -> None:
        assert not self.buffer, self.buffer
        stream = trio.SSLStream(self.stream, context, server_hostname=hostname)
        with trio.fail_after(5):
            await stream.do_handshake()
        self.stream = stream


async def tls_client(server, context: ssl.SSLContext) -> TLSClient:
    client = await TLSClient.connect(server.port)
    await client.start_tls(context)
    return client


# --- the default flow --------------------------------------------------------------------------


async def test_info_in_plaintext_then_handshake_then_connect(tls_server, certs):
    server = await tls_server(tls=certs.server_tls())
    client = await TLSClient.connect(server.port)
    info = info_of(client.info)
    assert info["tls_required"] is True
    assert "tls_verify" not in info and "tls_available" not in info
    assert list(info).index("tls_required") == list(info).index("headers") + 1
    await client.start_tls(certs.client_context())
    await client.send(C + b"SUB foo 1\r\nPUB foo 2\r\nhi\r\n")
    assert await client.ping_pong() == b"MSG foo 1 2\r\nhi\r\n"
    record = server.clients[1]
    assert record.tls_version in ("1.2", "1.3")
    assert record.tls_cipher.startswith("TLS_")
    await client.aclose()


async def test_plaintext_client_is_closed_without_err(tls_server, certs):
    server = await tls_server(tls=certs.server_tls())
    client = await TLSClient.connect(server.port)
    await client.send(C + b"PING\r\n")
    assert await client.expect_closed() == b""
    await wait_closed(server)
    assert server.closed_clients[-1].reason == Reason.TLS_HANDSHAKE


async def test_silent_client_is_closed_after_the_tls_timeout(tls_server, certs):
    server = await tls_server(tls=certs.server_tls(timeout=0.3))
    client = await TLSClient.connect(server.port)
    start = trio.current_time()
    assert await client.expect_closed(timeout=3) == b""
    assert 0.25 <= trio.current_time() - start < 2
    await wait_closed(server)
    assert server.closed_clients[-1].reason == Reason.TLS_HANDSHAKE


async def test_stalled_handshake_is_closed_after_the_tls_timeout(tls_server, certs):
    server = await tls_server(tls=certs.server_tls(timeout=0.3))
    client = await TLSClient.connect(server.port)
    await client.send(b"\x16\x03\x01\x00\xff")  # a ClientHello header, then nothing
    start = trio.current_time()
    assert await client.expect_closed(timeout=3) == b""
    assert trio.current_time() - start < 2


async def test_a_client_over_max_connections_is_refused_in_plaintext(tls_server, certs):
    server = await tls_server(tls=certs.server_tls(), max_connections=1)
    first = await tls_client(server, certs.client_context())
    await first.send(C)
    assert await first.ping_pong() == b""
    second = await TLSClient.connect(server.port)  # INFO and -ERR before any TLS, as nats-server
    assert info_of(second.info)["tls_required"] is True
    assert await second.expect_closed() == b"-ERR 'maximum connections exceeded'\r\n"


async def wait_closed(server, count: int = 1) -> None:
    with trio.fail_after(5):
        while len(server.closed_clients) < count:
            await trio.sleep(0.01)


async def test_auth_timeout_defaults_to_tls_timeout_plus_one(tls_server, certs):
    server = await tls_server(
        tls=certs.server_tls(timeout=0.5), authorization=Authorization(token="s3cr3t")
    )
    assert server.auth.timeout == 1.5
    other = await tls_server(
        tls=certs.server_tls(timeout=0.5), authorization=Authorization(token="t", timeout=4)
    )
    assert other.auth.timeout == 4


# --- mutual TLS ---------------------------------------------------------------------------------


async def test_verify_accepts_a_client_certificate_from_the_ca(tls_server, certs):
    server = await tls_server(tls=certs.server_tls(verify=True, ca_file=certs.ca_file))
    client = await TLSClient.connect(server.port)
    info = info_of(client.info)
    assert info["tls_required"] is True and info["tls_verify"] is True
    await client.start_tls(certs.client_context("alice"))
    await client.send(C)
    assert await client.ping_pong() == b""


@pytest.mark.parametrize("who", [None, "stranger"])
async def test_verify_refuses_missing_or_unknown_client_certificates(tls_server, certs, who):
    server = await tls_server(tls=certs.server_tls(verify=True, ca_file=certs.ca_file))
    client = await TLSClient.connect(server.port)
    try:
        await client.start_tls(certs.client_context(who))
        await client.send(C + b"PING\r\n")
        data = await client.expect_closed()
    except (trio.BrokenResourceError, ssl.SSLError):
        data = b""  # TLS 1.2 refuses inside the handshake, TLS 1.3 right after it
    assert b"PONG" not in data
    await wait_closed(server)
    assert server.closed_clients[-1].reason == Reason.TLS_HANDSHAKE


async def test_pinned_certs(tls_server, certs):
    alice_pin = tls.spki_sha256(ssl.PEM_cert_to_DER_cert(Path(certs.alice_cert).read_text()))
    server = await tls_server(
        tls=certs.server_tls(verify=True, ca_file=certs.ca_file, pinned_certs=[alice_pin.upper()])
    )
    client = await TLSClient.connect(server.port)
    await client.start_tls(certs.client_context("alice"))
    await client.send(C)
    assert await client.ping_pong() == b""

    client = await TLSClient.connect(server.port)
    await client.start_tls(certs.client_context("bob"))
    with pytest.raises((trio.BrokenResourceError, EOFError)):
        await client.send(C)
        await client.ping_pong()


# --- handshake_first and allow_non_tls ----------------------------------------------------------


async def test_handshake_first_sends_the_info_inside_tls(tls_server, certs):
    server = await tls_server(tls=certs.server_tls(handshake_first=True))
    client = await TLSClient.connect(server.port, read_info=False)
    await client.start_tls(certs.client_context())
    info = info_of(await client.read_line())
    assert info["tls_required"] is True
    await client.send(C)
    assert await client.ping_pong() == b""
    assert server.clients[1].tls_first


async def test_handshake_first_without_fallback_ignores_plaintext_clients(tls_server, certs):
    server = await tls_server(tls=certs.server_tls(handshake_first=True, timeout=0.3))
    client = await TLSClient.connect(server.port, read_info=False)
    assert await client.expect_closed(timeout=3) == b""  # never an INFO


async def test_handshake_first_auto_falls_back_to_the_plaintext_info(tls_server, certs):
    # (a fallback delay long enough for the TLS client below to start in time on a busy machine)
    server = await tls_server(tls=certs.server_tls(handshake_first=0.3), allow_non_tls=True)
    plain = await TLSClient.connect(server.port)  # waits for the INFO: it comes after 300 ms
    assert info_of(plain.info)["tls_available"] is True
    await plain.send(C)
    assert await plain.ping_pong() == b""

    first = await TLSClient.connect(server.port, read_info=False)
    await first.start_tls(certs.client_context())
    info = info_of(await first.read_line())
    assert info["tls_required"] is True and "tls_available" not in info
    await first.send(C)
    assert await first.ping_pong() == b""


async def test_allow_non_tls_takes_both(tls_server, certs):
    server = await tls_server(tls=certs.server_tls(), allow_non_tls=True)
    plain = await TLSClient.connect(server.port)
    info = info_of(plain.info)
    assert info["tls_available"] is True and "tls_required" not in info
    await plain.send(C + b"SUB foo 1\r\n")
    assert await plain.ping_pong() == b""

    secure = await TLSClient.connect(server.port)
    await secure.start_tls(certs.client_context())
    await secure.send(C + b"PUB foo 2\r\nok\r\n")
    assert await secure.ping_pong() == b""
    assert await plain.ping_pong() == b"MSG foo 1 2\r\nok\r\n"
    assert server.clients[1].tls_version == "" and server.clients[2].tls_version


async def test_allow_non_tls_takes_a_silent_client_as_plaintext(tls_server, certs):
    server = await tls_server(tls=certs.server_tls(timeout=0.2), allow_non_tls=True)
    client = await TLSClient.connect(server.port)
    await trio.sleep(0.4)  # past the TLS timeout: nats-server does not close it either
    await client.send(C)
    assert await client.ping_pong() == b""


# --- verify_and_map -----------------------------------------------------------------------------


def mapped_users(*names: str) -> Authorization:
    perms = Permissions(publish=SubjectPermission(allow=("foo",)))
    return Authorization(users=tuple(User(user=name, permissions=perms) for name in names))


async def test_verify_and_map_takes_the_user_from_the_email_san(tls_server, certs):
    server = await tls_server(
        tls=certs.server_tls(verify_and_map=True, ca_file=certs.ca_file),
        authorization=mapped_users("alice@example.com"),
    )
    client = await TLSClient.connect(server.port)
    info = info_of(client.info)
    assert info["auth_required"] is True and info["tls_verify"] is True
    await client.start_tls(certs.client_context("alice"))
    await client.send(C + b"PUB foo 0\r\n\r\nPUB bar 0\r\n\r\n")
    assert await client.ping_pong() == b"-ERR 'Permissions Violation for Publish to \"bar\"'\r\n"
    assert server.clients[1].auth_user == "alice@example.com"


async def test_verify_and_map_takes_the_user_from_the_subject(tls_server, certs):
    server = await tls_server(
        tls=certs.server_tls(verify_and_map=True, ca_file=certs.ca_file),
        authorization=mapped_users("O=Acme, OU=eng, CN=bob"),  # a DN, in another order
    )
    client = await tls_client(server, certs.client_context("bob"))
    await client.send(C)
    assert await client.ping_pong() == b""
    assert server.clients[1].auth_user == "O=Acme, OU=eng, CN=bob"


async def test_verify_and_map_refuses_an_unknown_certificate(tls_server, certs):
    server = await tls_server(
        tls=certs.server_tls(verify_and_map=True, ca_file=certs.ca_file),
        authorization=mapped_users("carol@example.com"),
    )
    client = await tls_client(server, certs.client_context("alice"))
    await client.send(b'CONNECT {"verbose":false,"user":"carol@example.com"}\r\n')
    assert await client.expect_closed() == b"-ERR 'Authorization Violation'\r\n"


def test_certificate_names_follow_nats_server(certs):
    from cryptography import x509

    bob = x509.load_pem_x509_certificate(Path(certs.bob_cert).read_bytes())
    assert certmap.subject_string(bob.subject) == "CN=bob,OU=eng,O=Acme"
    assert certmap.certificate_dn(bob) == [[("CN", "bob")], [("OU", "eng")], [("O", "Acme")]]
    alice = x509.load_pem_x509_certificate(Path(certs.alice_cert).read_bytes())
    assert certmap.san_names(alice) == ["alice@example.com", "client.example.com"]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("CN=bob,O=Acme", [[("CN", "bob")], [("O", "Acme")]]),
        ("CN = bob , O=Acme Inc ", [[("CN", "bob")], [("O", "Acme Inc")]]),
        ("CN=a\\,b+UID=7", [[("CN", "a,b"), ("UID", "7")]]),
        ("CN=\\41lice", [[("CN", "Alice")]]),
        ("alice@example.com", None),
        ("CN=#0403", None),
    ],
)
def test_parse_dn(text, parsed):
    assert certmap.parse_dn(text) == parsed


# --- contexts and configuration -----------------------------------------------------------------


def test_cipher_names_are_go_names():
    assert tls.openssl_ciphers(["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]) == [
        "ECDHE-RSA-AES128-GCM-SHA256"
    ]
    assert tls.openssl_ciphers(["TLS_AES_128_GCM_SHA256"]) == ["DEFAULT"]
    with pytest.raises(ConfigError, match="unrecognized cipher TLS_BOGUS"):
        tls.openssl_ciphers(["TLS_BOGUS"])
    with pytest.raises(ConfigError, match="insecure cipher suites configured without"):
        tls.openssl_ciphers(["TLS_RSA_WITH_RC4_128_SHA"])


def test_contexts(certs):
    server = tls.server_context(certs.server_tls(verify=True, min_version="1.3"))
    assert server.verify_mode == ssl.CERT_REQUIRED
    assert server.minimum_version == ssl.TLSVersion.TLSv1_3
    assert tls.server_context(certs.server_tls(verify=True), verify=False).verify_mode == (
        ssl.CERT_NONE
    )
    client = tls.client_context(TLSOptions(ca_file=certs.ca_file))
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
    insecure = tls.client_context(TLSOptions(insecure=True))
    assert not insecure.check_hostname and insecure.verify_mode == ssl.CERT_NONE


def test_unusable_files_are_config_errors(certs, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    encrypted, other, garbage = tmp_path / "enc.pem", tmp_path / "other.pem", tmp_path / "x.pem"
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    locked = serialization.BestAvailableEncryption(b"passphrase")
    encrypted.write_bytes(key.private_bytes(pem, pkcs8, locked))
    other.write_bytes(key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
    garbage.write_text("nope\n")
    cases = [
        ({"key_file": str(encrypted)}, "the private key is encrypted"),  # never a prompt
        ({"key_file": str(other)}, "key values mismatch"),
        ({"key_file": str(garbage)}, "no valid PEM data"),
        ({"key_file": certs.server_key, "ca_file": str(garbage)}, "failed to parse root ca"),
        ({"key_file": certs.server_key, "ca_file": "/nonexist"}, "open /nonexist: no such file"),
        ({"key_file": certs.server_key, "curve_preferences": ["X25519"]}, "curve_preferences"),
        ({"key_file": certs.server_key, "pinned_certs": ["abc"]}, "'pinned_certs' key abc"),
    ]
    for fields, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            tls.check(TLSOptions(cert_file=certs.server_cert, **fields))


async def test_client_context_dials_a_tls_peer(certs):
    """What routes will do: both sides start TLS at once, each verifying the other."""
    server_ctx = tls.server_context(certs.server_tls(verify=True, ca_file=certs.ca_file))
    client_ctx = tls.client_context(
        TLSOptions(cert_file=certs.alice_cert, key_file=certs.alice_key, ca_file=certs.ca_file)
    )
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        accepted = []

        async def accept():
            accepted.append(await tls.handshake(left, server_ctx, 5))

        nursery.start_soon(accept)
        dialed = await tls.handshake(
            right, client_ctx, 5, server_side=False, server_hostname="localhost"
        )
    assert tls.peer_certificate(accepted[0]) is not None
    assert tls.describe(dialed)[0] in ("1.2", "1.3")


@pytest.fixture(scope="session")
def refused(certs, tmp_path_factory) -> dict[str, tuple[str, str]]:
    """Server certificates a route dialing 127.0.0.1 refuses: (cert file, key file) by why."""
    import datetime as dt

    folder = tmp_path_factory.mktemp("refused")
    issued = {
        "wrong-ip": certs.ca.issue_cert("other.example.com", "10.0.0.1"),
        "no-ip": certs.ca.issue_cert("other.example.com"),
        "expired": certs.ca.issue_cert("localhost", "127.0.0.1",
                                       not_before=dt.datetime(2020, 1, 1),
                                       not_after=dt.datetime(2021, 1, 1)),  # fmt: skip
        "unknown-ca": trustme.CA().issue_cert("localhost", "127.0.0.1"),
    }
    return {why: (_write(leaf.cert_chain_pems[0], folder / f"{why}-cert.pem"),
                  _write(leaf.private_key_pem, folder / f"{why}-key.pem"))
            for why, leaf in issued.items()}  # fmt: skip


REFUSED = {
    "wrong-ip": ("x509: certificate is valid for 10.0.0.1, not 127.0.0.1", "bad certificate"),
    "no-ip": ("x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any "
              "IP SANs", "bad certificate"),
    "expired": ("x509: certificate has expired or is not yet valid: current time "
                "<now> is after 2021-01-01T00:00:00Z", "expired certificate"),
    "unknown-ca": ("x509: certificate signed by unknown authority",
                   "unknown certificate authority"),
}  # fmt: skip
NOW = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ(?= is after 2021)")


@pytest.mark.parametrize("why", list(REFUSED))
async def test_a_refused_certificate_says_why_on_both_sides(certs, refused, why):
    """The dialing side names the problem in Go's words, with the certificates the peer sent
    (nats-server's list); the alert it sends tells the other side (`remote error: tls: ...`)."""
    cert, key = refused[why]
    server_ctx = tls.server_context(TLSOptions(cert_file=cert, key_file=key))
    client_ctx = tls.client_context(TLSOptions(ca_file=certs.ca_file))
    left, right = trio.testing.memory_stream_pair()
    errors = {}

    async def side(name, stream, context, host=None):
        with pytest.raises(tls.HandshakeError) as raised:
            await tls.handshake(stream, context, 5, server_side=host is None,
                                server_hostname=host)  # fmt: skip
        errors[name] = str(raised.value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, "server", left, server_ctx)
        nursery.start_soon(side, "client", right, client_ctx, "127.0.0.1")
    reason, alert = REFUSED[why]
    leaf = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    fingerprint = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    listed = f"{certmap.subject_string(leaf.subject)} SHA-256: {fingerprint}"
    text = NOW.sub("<now>", errors["client"])
    assert text.startswith(f"tls: failed to verify certificate: {reason} ({listed}")
    assert errors["server"] == f"remote error: tls: {alert}"


def test_verification_error_text_without_the_peer_certificates():
    """The accepting side (a client certificate refused): OpenSSL keeps no chain there."""
    assert tls.verification_error_text(20, "unable to get local issuer certificate", [], None) \
        == "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    assert tls.verification_error_text(10, "certificate has expired", [], None) == (
        "tls: failed to verify certificate: x509: certificate has expired or is not yet valid")
    assert tls.verification_error_text(26, "unsupported certificate purpose", [], None) == (
        "tls: failed to verify certificate: x509: unsupported certificate purpose")


def write_conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tls.conf"
    path.write_text(text)
    return path


def test_config_loads_the_tls_block(tmp_path, certs):
    path = write_conf(
        tmp_path,
        f'tls {{\n  cert_file: "{certs.server_cert}"\n  key_file: "{certs.server_key}"\n'
        f'  ca_file: "{certs.ca_file}"\n  verify: true\n  timeout: "500ms"\n'
        '  handshake_first: auto\n}\nallow_non_tls: true\n',
    )
    options = load(path)
    assert options.tls.verify and options.tls.timeout == 0.5
    assert options.tls.handshake_first == 0.05 and options.allow_non_tls


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            'cert_file: "/nonexist/cert.pem"\n  key_file: "/nonexist/key.pem"',
            (
                "error parsing X509 certificate/key pair: open /nonexist/cert.pem: "
                "no such file or directory"
            ),
        ),
        ('cert_file: "/nonexist/cert.pem"', "missing 'key_file' in TLS configuration"),
        ('key_file: "/nonexist/key.pem"', "missing 'cert_file' in TLS configuration"),
    ],
)
def test_config_errors_match_nats_server(tmp_path, block, message):
    path = write_conf(tmp_path, f"port: 4999\ntls {{\n  {block}\n}}\n")
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value) == f"{path}:2:1: {message}"
    reference = subprocess.run(
        [nats_server(), "-c", str(path), "-t"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert f"{path}:2:1: {message}" in reference.stdout + reference.stderr


def nats_server() -> str:
    from tests.helpers import nats_server_binary

    return nats_server_binary()


def test_config_error_for_a_bad_cipher(tmp_path, certs):
    path = write_conf(
        tmp_path,
        f'tls {{\n  cert_file: "{certs.server_cert}"\n  key_file: "{certs.server_key}"\n'
        '  cipher_suites: ["TLS_NOPE"]\n}\n',
    )
    with pytest.raises(ConfigError, match="tls.conf:1:1: unrecognized cipher TLS_NOPE"):
        load(path)


def test_tls_flags(certs):
    argv = ["--tlscert", certs.server_cert, "--tlskey", certs.server_key, "--tlsverify",
            "--tlscacert", certs.ca_file]  # fmt: skip
    options = build_options(parse_args(argv))
    assert options.tls == TLSOptions(
        cert_file=certs.server_cert, key_file=certs.server_key, ca_file=certs.ca_file, verify=True
    )
    assert build_options(parse_args(["-tls=false", "--tlscert", "x"])).tls is None
    with pytest.raises(ConfigError, match="TLS Server private key must be present and valid"):
        build_options(parse_args(["--tls", "--tlscert", certs.server_cert]))
    with pytest.raises(ConfigError, match="TLS Server certificate must be present and valid"):
        build_options(parse_args(["--tls"]))
    with pytest.raises(ConfigError, match="open /nonexist: no such file or directory"):
        build_options(parse_args(["--tls", "--tlscert", "/nonexist", "--tlskey", "/nonexist"]))


# --- reload -------------------------------------------------------------------------------------


async def test_reload_applies_a_new_tls_block_to_new_clients(nursery, tmp_path, certs, tls_server):
    from trionats.server import Server

    block = f'tls {{\n  cert_file: "{certs.server_cert}"\n  key_file: "{certs.server_key}"\n'
    path = write_conf(tmp_path, block + "}\n")
    flags = {"host": "127.0.0.1", "port": -1}
    server = Server(attrs.evolve(load(path), **flags), flag_overrides=flags)
    await nursery.start(server.serve)
    before = await tls_client(server, certs.client_context())
    await before.send(C)
    path.write_text(block + f'  verify: true\n  ca_file: "{certs.ca_file}"\n}}\n')
    assert server.reload()
    client = await TLSClient.connect(server.port)
    assert info_of(client.info)["tls_verify"] is True
    await client.start_tls(certs.client_context("alice"))
    await client.send(C)
    assert await client.ping_pong() == b""
    assert await before.ping_pong() == b""  # the open connection keeps going
    server.shutdown()


# --- nats-py and nats-server --------------------------------------------------------------------


def tls_conf(tmp_path: Path, certs: Certs, extra: str = "", top: str = "") -> str:
    path = tmp_path / "server.conf"
    path.write_text(
        f'tls {{\n  cert_file: "{certs.server_cert}"\n  key_file: "{certs.server_key}"\n'
        f'  ca_file: "{certs.ca_file}"\n{extra}}}\n{top}'
    )
    return str(path)


async def nats_py_round_trip(url: str, context: ssl.SSLContext, **kwargs) -> bytes:
    nc = await nats.connect(
        url, tls=context, tls_hostname="localhost", allow_reconnect=False, connect_timeout=5,
        **kwargs,
    )  # fmt: skip
    try:
        sub = await nc.subscribe("tls.test")
        await nc.publish("tls.test", b"secret")
        msg = await sub.next_msg(timeout=5)
        return msg.data
    finally:
        await nc.close()


@pytest.mark.interop
def test_nats_py_over_tls(tmp_path, certs):
    with TrionatsProcess("-c", tls_conf(tmp_path, certs)) as server:
        url = f"tls://127.0.0.1:{server.port}"
        assert asyncio.run(nats_py_round_trip(url, certs.client_context())) == b"secret"


@pytest.mark.interop
def test_nats_py_mutual_tls(tmp_path, certs):
    with TrionatsProcess("-c", tls_conf(tmp_path, certs, "  verify: true\n")) as server:
        url = f"tls://127.0.0.1:{server.port}"
        assert asyncio.run(nats_py_round_trip(url, certs.client_context("alice"))) == b"secret"
        with pytest.raises((nats.errors.Error, OSError, ssl.SSLError, asyncio.TimeoutError)):
            asyncio.run(nats_py_round_trip(url, certs.client_context()))


@pytest.mark.interop
def test_nats_py_handshake_first(tmp_path, certs):
    conf = tls_conf(tmp_path, certs, "  handshake_first: true\n")
    with TrionatsProcess("-c", conf) as server:
        url = f"tls://127.0.0.1:{server.port}"
        data = asyncio.run(
            nats_py_round_trip(url, certs.client_context(), tls_handshake_first=True)
        )
        assert data == b"secret"


@pytest.mark.interop
@pytest.mark.parametrize(
    ("extra", "top"),
    [("", ""), ("  verify: true\n", ""), ("", "allow_non_tls: true\n"),
     ("  verify_and_map: true\n", "")],
)  # fmt: skip
async def test_info_tls_fields_match_nats_server(tmp_path, certs, extra, top, tls_server):
    conf = tls_conf(tmp_path, certs, extra, top)
    fields = ("tls_required", "tls_verify", "tls_available", "auth_required")
    infos = []
    for kind in (NatsServerProcess, TrionatsProcess):
        with kind("-c", conf) as process:
            client = await TLSClient.connect(process.port)
            info = info_of(client.info)
            infos.append({key: info.get(key) for key in fields})
            await client.aclose()
    assert infos[0] == infos[1]


@pytest.mark.interop
async def test_plaintext_client_sees_the_same_as_from_nats_server(tmp_path, certs, tls_server):
    conf = tls_conf(tmp_path, certs)
    seen = []
    for kind in (NatsServerProcess, TrionatsProcess):
        with kind("-c", conf) as process:
            client = await TLSClient.connect(process.port)
            await client.send(C + b"PING\r\n")
            seen.append(await client.expect_closed())
    assert seen == [b"", b""]



@pytest.mark.interop
@pytest.mark.parametrize(
    ("user", "who"),
    [("alice@example.com", "alice"), ("client.example.com", "alice"),
     ("CN=bob,OU=eng,O=Acme", "bob"), ("O=Acme, OU=eng, CN=bob", "bob"),
     ("OU=eng,CN=bob,O=Acme", "bob"), ("carol@example.com", "alice")],
)  # fmt: skip
async def test_verify_and_map_matches_nats_server(tmp_path, certs, user, who, tls_server):
    entry = f'{{ user: "{user}", permissions: {{ publish: "foo" }} }}'
    users = f"authorization {{ users: [ {entry} ] }}\n"
    conf = tls_conf(tmp_path, certs, "  verify_and_map: true\n", users)
    replies = []
    for kind in (NatsServerProcess, TrionatsProcess):
        with kind("-c", conf) as process:
            client = await TLSClient.connect(process.port)
            await client.start_tls(certs.client_context(who))
            await client.send(C + b"PUB bar 0\r\n\r\nPING\r\n")
            replies.append(await _until_pong(client))
    assert replies[0] == replies[1]


async def _until_pong(client: TLSClient) -> bytes:
    """Everything up to PONG, or up to the close."""
    with trio.move_on_after(3):
        while b"PONG\r\n" not in client.buffer:
            try:
                if not await client._fill():
                    break
            except trio.BrokenResourceError:
                break
    return client.buffer
