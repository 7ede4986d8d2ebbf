"""TLS: ssl contexts built from a `tls {}` block, and handshakes that upgrade one Trio stream.

`server_context(opts)` and `client_context(opts)` turn a TLSOptions block into an
`ssl.SSLContext` the way nats-server's GenTLSConfig does, raising ConfigError with its texts
(the loader calls `check` so a bad block is a file:line error, as in nats-server).
`handshake()` runs one handshake under a timeout and returns the `trio.SSLStream`, or raises
HandshakeError with the text to log; pinned certificates are checked right after it.

NATS cannot use `trio.SSLListener`: the client port sends its INFO in plaintext before the
client starts TLS (unless handshake_first), so each connection upgrades its own stream, inside
its own task (`accept_client_port`), and a slow handshake never holds up the accept loop.
Routes start TLS at once in both directions and call `handshake()` directly.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
import time
from collections.abc import Callable

import trio

from . import defaults
from .errors import ConfigError
from .options import TLSOptions

#: nats-server's cipher suite names (Go's) -> OpenSSL's, for TLS 1.2. TLS 1.3 suites are not
#: configurable in Go either: naming one is accepted and changes nothing.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
#: Go's insecure suites: nats-server refuses them without `allow_insecure_cipher_suites`
#: (which trionats does not have), so naming one is always an error.
INSECURE_SUITES = (
    "TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
)  # fmt: skip
_GO_NAMES = {openssl: go for go, openssl in CIPHER_SUITES.items()}
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
#: The first byte of a TLS record carrying a handshake (a ClientHello).
TLS_HANDSHAKE_RECORD = 0x16


class HandshakeError(Exception):
    """A handshake failed; `str()` is the text nats-server logs after "TLS handshake error: ".

    `probe` marks what nats-server logs at debug only: a timeout, or a peer that never spoke
    TLS (a load balancer's health check, a plaintext client).
    """

    def __init__(self, text: str, *, probe: bool = False, timeout: bool = False) -> None:
        super().__init__(text)
        self.probe = probe or timeout
        self.timeout = timeout


# --- contexts ---------------------------------------------------------------------------------


def server_context(opts: TLSOptions, *, verify: bool | None = None) -> ssl.SSLContext:
    """The context for accepting TLS: our certificate, and client certificates if `verify`.

    `verify` None follows the block (`verify` or `verify_and_map`); the HTTPS monitor passes
    False, as nats-server never asks monitoring clients for certificates.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _common(context, opts)
    if verify is None:
        verify = opts.verify or opts.verify_and_map
    if verify:
        context.verify_mode = ssl.CERT_REQUIRED
        if not opts.ca_file:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return context


def client_context(opts: TLSOptions) -> ssl.SSLContext:
    """The context for dialing out (routes): the peer's certificate is checked against
    `ca_file` (or the system's CAs) and the dialed host name, unless `insecure`; our own
    certificate is presented when the block has one (cluster TLS is always mutual)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _common(context, opts)
    if opts.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not opts.ca_file:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return context


def handshake_timeout(opts: TLSOptions) -> float:
    """The block's handshake timeout; 0 means the default, as in nats-server."""
    return opts.timeout if opts.timeout > 0 else defaults.TLS_TIMEOUT


def check(opts: TLSOptions) -> None:
    """Raise ConfigError (nats-server's text) if the block cannot make a context."""
    server_context(opts)


def _common(context: ssl.SSLContext, opts: TLSOptions) -> None:
    """Certificate, CAs, versions and ciphers: what both directions share."""
    if opts.cert_file and not opts.key_file:
        raise ConfigError("missing 'key_file' in TLS configuration")
    if opts.key_file and not opts.cert_file:
        raise ConfigError("missing 'cert_file' in TLS configuration")
    if opts.cert_file:
        try:
            for path in (opts.cert_file, opts.key_file):  # Go's order, and its file errors
                with open(path, "rb"):
                    pass
            context.load_cert_chain(opts.cert_file, opts.key_file, password=_no_passphrase)
        except ssl.SSLError as exc:
            why = exc.reason.lower().replace("_", " ") if exc.reason else "no valid PEM data"
            raise ConfigError(f"error parsing X509 certificate/key pair: {why}") from None
        except OSError as exc:
            raise ConfigError(
                f"error parsing X509 certificate/key pair: {_file_error(exc)}"
            ) from None
    if opts.ca_file:
        try:
            with open(opts.ca_file, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(_file_error(exc)) from None
        try:
            context.load_verify_locations(cafile=opts.ca_file)
        except (OSError, ssl.SSLError):
            raise ConfigError("failed to parse root ca certificate") from None
    context.minimum_version = _VERSIONS.get(opts.min_version, ssl.TLSVersion.TLSv1_2)
    if opts.cipher_suites:
        try:
            context.set_ciphers(":".join(openssl_ciphers(opts.cipher_suites)))
        except ssl.SSLError:
            raise ConfigError("none of the cipher_suites is available in OpenSSL") from None
    if opts.curve_preferences:
        # Python's ssl module can set one ECDH curve, not an ordered list of groups.
        raise ConfigError("curve_preferences is not supported by trionats")
    for entry in opts.pinned_certs:
        if len(entry) != 64 or any(c not in "0123456789abcdefABCDEF" for c in entry):
            raise ConfigError(
                f"error parsing tls config, 'pinned_certs' key {entry.lower()} does not look "
                "like hex-encoded sha256 of DER encoded SubjectPublicKeyInfo"
            )
    # Compression leaks secrets (CRIME); renegotiation is never needed by NATS.
    context.options |= ssl.OP_NO_COMPRESSION | getattr(ssl, "OP_NO_RENEGOTIATION", 0)


def openssl_ciphers(names) -> list[str]:
    """OpenSSL's names for Go cipher suite names; ConfigError with nats-server's texts."""
    if not names:
        raise ConfigError("error parsing tls config, 'cipher_suites' cannot be empty")
    insecure = [name for name in names if name in INSECURE_SUITES]
    if insecure:
        raise ConfigError(
            "insecure cipher suites configured without 'allow_insecure_cipher_suites' option "
            f"set: {', '.join(insecure)}"
        )
    found = []
    for name in names:
        if name in CIPHER_SUITES:
            found.append(CIPHER_SUITES[name])
        elif name not in TLS13_SUITES:
            raise ConfigError(f"unrecognized cipher {name}")
    if not found:  # only TLS 1.3 suites named: OpenSSL's TLS 1.2 defaults stay
        return ["DEFAULT"]
    return found


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt for an encrypted key's passphrase on the
    # terminal; nats-server cannot read encrypted keys either.
    raise ConfigError("error parsing X509 certificate/key pair: the private key is encrypted")


def _file_error(exc: OSError) -> str:
    """Go's wording for a file that cannot be read: `open <path>: no such file or directory`."""
    if exc.filename is None or exc.strerror is None:
        return str(exc)
    return f"open {exc.filename}: {exc.strerror.lower()}"


# --- handshakes -------------------------------------------------------------------------------


async def handshake(
    stream: trio.abc.Stream,
    context: ssl.SSLContext,
    timeout: float,
    *,
    server_side: bool = True,
    server_hostname: str | None = None,
    pinned_certs=(),
    eof_is_close: bool = True,
) -> trio.SSLStream:
    """Run a TLS handshake over `stream` within `timeout` seconds; the upgraded stream.

    Raises HandshakeError (the stream is left for the caller to close). With `pinned_certs`
    (hex SHA-256 of the peer's SubjectPublicKeyInfo) a peer whose certificate is not listed
    fails as "certificate not pinned", as in nats-server.

    `eof_is_close`: a peer may close without a TLS close_notify (NATS clients do, and it
    reads as "Client Closed"); then ours is not sent either (Trio's `https_compatible`).
    The HTTPS monitor turns it off, so HTTP clients reading to the end get a clean close.
    """
    ssl_stream = trio.SSLStream(
        stream,
        context,
        server_side=server_side,
        server_hostname=server_hostname,
        https_compatible=eof_is_close,
    )
    with trio.move_on_after(timeout) as scope:
        try:
            await ssl_stream.do_handshake()
        except trio.BrokenResourceError as exc:
            text = _failure_text(ssl_stream, exc, server_hostname)
            await _send_alert(ssl_stream, stream)
            raise HandshakeError(text) from None
        except (trio.ClosedResourceError, OSError) as exc:
            raise HandshakeError(str(exc) or type(exc).__name__) from None
    if scope.cancelled_caught:
        raise HandshakeError("i/o timeout", timeout=True)
    if pinned_certs:
        try:
            key_id = spki_sha256(peer_certificate(ssl_stream))
        except ValueError:  # a certificate `cryptography` cannot read is not pinned either
            key_id = ""
        if key_id not in {entry.lower() for entry in pinned_certs}:
            raise HandshakeError("certificate not pinned")
    return ssl_stream


# --- why a handshake failed, in Go's words -----------------------------------------------------
#
# nats-server logs Go's errors: `tls: failed to verify certificate: x509: ...` with the peer's
# certificates after it (`(<subject> SHA-256: <fingerprint>; ...)`) on the side that refused
# the certificate, and `remote error: tls: <alert>` on the other side. OpenSSL gives a verify
# code; the certificate it refused is read from the chain the peer sent.

#: OpenSSL verify codes Go reports as an unknown authority (no path to a trusted root).
_UNKNOWN_AUTHORITY = frozenset({2, 18, 19, 20, 21})  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, ...
_NOT_YET_VALID, _EXPIRED, _HOSTNAME_MISMATCH, _IP_MISMATCH = 9, 10, 62, 64

#: Go's texts for TLS alerts (crypto/tls alertText), by OpenSSL's alert reason names.
_GO_ALERTS = {
    "CLOSE_NOTIFY": "close notify", "UNEXPECTED_MESSAGE": "unexpected message",
    "BAD_RECORD_MAC": "bad record MAC", "DECRYPTION_FAILED": "decryption failed",
    "RECORD_OVERFLOW": "record overflow", "HANDSHAKE_FAILURE": "handshake failure",
    "BAD_CERTIFICATE": "bad certificate", "UNSUPPORTED_CERTIFICATE": "unsupported certificate",
    "CERTIFICATE_REVOKED": "revoked certificate", "CERTIFICATE_EXPIRED": "expired certificate",
    "CERTIFICATE_UNKNOWN": "unknown certificate", "ILLEGAL_PARAMETER": "illegal parameter",
    "UNKNOWN_CA": "unknown certificate authority", "ACCESS_DENIED": "access denied",
    "DECODE_ERROR": "error decoding message", "DECRYPT_ERROR": "error decrypting message",
    "PROTOCOL_VERSION": "protocol version not supported",
    "INSUFFICIENT_SECURITY": "insufficient security level", "INTERNAL_ERROR": "internal error",
    "INAPPROPRIATE_FALLBACK": "inappropriate fallback", "USER_CANCELLED": "user canceled",
    "NO_RENEGOTIATION": "no renegotiation", "MISSING_EXTENSION": "missing extension",
    "UNSUPPORTED_EXTENSION": "unsupported extension", "UNRECOGNIZED_NAME": "unrecognized name",
    "CERTIFICATE_REQUIRED": "certificate required",
    "NO_APPLICATION_PROTOCOL": "no application protocol",
}  # fmt: skip
_ALERT_PREFIXES = ("SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_")


def _ssl_error_text(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    if isinstance(cause, ssl.SSLError) and cause.reason:
        reason = cause.reason
        for prefix in _ALERT_PREFIXES:
            if reason.startswith(prefix):
                name = reason.removeprefix(prefix)
                return f"remote error: tls: {_GO_ALERTS.get(name, name.lower().replace('_', ' '))}"
        if reason == "UNEXPECTED_EOF_WHILE_READING":
            return "EOF"
        return reason.lower().replace("_", " ")
    if isinstance(cause, ssl.SSLError):
        return str(cause)
    if isinstance(cause, trio.BrokenResourceError | EOFError) or not str(cause):
        return "EOF"
    return str(cause)


def _failure_text(ssl_stream: trio.SSLStream, exc: BaseException, host: str | None) -> str:
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return verification_error_text(cause.verify_code, cause.verify_message,
                                       _unverified_chain(ssl_stream), host)  # fmt: skip
    return _ssl_error_text(exc)


def _unverified_chain(ssl_stream: trio.SSLStream) -> list[bytes]:
    """The certificates the peer sent (DER), also after it failed verification. OpenSSL
    keeps them on the dialing side only. Python 3.13 has SSLObject.get_unverified_chain();
    before, the same method is on its private `_sslobj`."""
    ssl_object = getattr(ssl_stream, "_ssl_object", None)  # trio keeps it private
    try:
        public = getattr(ssl_object, "get_unverified_chain", None)
        if public is not None:
            return [bytes(der) for der in public() or ()]
        chain = ssl_object._sslobj.get_unverified_chain()  # type: ignore[union-attr]
        return [cert.public_bytes(2) for cert in chain or ()]  # 2: _ssl.ENCODING_DER
    except (AttributeError, ValueError, ssl.SSLError):
        return []


async def _send_alert(ssl_stream: trio.SSLStream, stream: trio.abc.Stream) -> None:
    """Send the alert OpenSSL wrote after a failed handshake (trio leaves it unsent), so the
    peer logs why (`remote error: tls: bad certificate`) rather than an EOF."""
    outgoing = getattr(ssl_stream, "_outgoing", None)  # trio's private MemoryBIO
    pending = outgoing.read() if isinstance(outgoing, ssl.MemoryBIO) else b""
    if pending:
        with trio.move_on_after(0.5):
            try:
                await stream.send_all(pending)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass


def verification_error_text(
    code: int, message: str, chain: list[bytes], host: str | None, now: float | None = None
) -> str:
    """Go's text for a certificate the TLS handshake refused (crypto/x509's errors), with
    nats-server's list of the peer's certificates after it."""
    from cryptography import x509

    certs = []
    for der in chain:
        try:
            certs.append((x509.load_der_x509_certificate(der), der))
        except ValueError:
            pass
    moment = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC)
    leaf = certs[0][0] if certs else None
    if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH) and leaf is not None and host:
        reason = _hostname_error(leaf, host)
    elif code in (_EXPIRED, _NOT_YET_VALID):
        reason = "x509: certificate has expired or is not yet valid"
        for cert, _ in certs:  # the first one out of its validity, as Go names it
            if moment > cert.not_valid_after_utc:
                reason += f": current time {_rfc3339(moment)} is after "
                reason += _rfc3339(cert.not_valid_after_utc)
                break
            if moment < cert.not_valid_before_utc:
                reason += f": current time {_rfc3339(moment)} is before "
                reason += _rfc3339(cert.not_valid_before_utc)
                break
    elif code in _UNKNOWN_AUTHORITY:
        reason = "x509: certificate signed by unknown authority"
    else:
        reason = f"x509: {message[:1].lower()}{message[1:]}"
    text = f"tls: failed to verify certificate: {reason}"
    if certs:
        from .auth.certmap import subject_string

        listed = "; ".join(
            f"{subject_string(cert.subject)} SHA-256: {hashlib.sha256(der).hexdigest()}"
            for cert, der in certs
        )
        text += f" ({listed})"
    return text


def _hostname_error(cert, host: str) -> str:
    """Go's x509.HostnameError text for a certificate that does not name `host`."""
    from cryptography import x509

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        names = None
    if names is None:
        common = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        if any(str(name).lower() == host.lower() for name in common):
            return "x509: certificate relies on legacy Common Name field, use SANs instead"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        valid = ", ".join(names.get_values_for_type(x509.DNSName)) if names else ""
    else:
        addresses = names.get_values_for_type(x509.IPAddress) if names else []
        if not addresses:
            return (f"x509: cannot validate certificate for {host} because it doesn't contain"
                    " any IP SANs")  # fmt: skip
        valid = ", ".join(str(address) for address in addresses)
    if not valid:
        return f"x509: certificate is not valid for any names, but wanted to match {host}"
    return f"x509: certificate is valid for {valid}, not {host}"


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def peer_certificate(stream: trio.SSLStream) -> bytes | None:
    """The peer's certificate (DER), or None when it sent none."""
    try:
        return stream.getpeercert(binary_form=True)
    except (ValueError, trio.NeedHandshakeError):
        return None


def spki_sha256(der: bytes | None) -> str:
    """Hex SHA-256 of a certificate's SubjectPublicKeyInfo (nats-server's pinned_certs key)."""
    if not der:
        return ""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_der_x509_certificate(der).public_key()
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def describe(stream: trio.SSLStream) -> tuple[str, str]:
    """(version, cipher suite) as nats-server shows them: ("1.3", "TLS_AES_128_GCM_SHA256")."""
    version = stream.version() or ""
    cipher = stream.cipher()
    name = cipher[0] if cipher else ""
    return version.removeprefix("TLSv"), _GO_NAMES.get(name, name)


# --- the client port --------------------------------------------------------------------------


class PrefixedStream(trio.abc.Stream):
    """A stream that first returns bytes already read from it (the peeked first bytes)."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self.stream = stream
        self.prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self.prefix:
            size = len(self.prefix) if max_bytes is None else max_bytes
            data, self.prefix = self.prefix[:size], self.prefix[size:]
            await trio.lowlevel.checkpoint()
            return data
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.stream.aclose()


class ClientPortTLS:
    """The outcome of `accept_client_port`: the stream to use, and what happened."""

    __slots__ = ("first", "info_sent", "stream", "tls")

    def __init__(self, stream: trio.abc.Stream, *, tls: bool, first: bool, info_sent: bool):
        self.stream = stream
        self.tls = tls  # the stream is a trio.SSLStream
        self.first = first  # the handshake came before the INFO (handshake_first)
        self.info_sent = info_sent  # the INFO already went out in plaintext


async def accept_client_port(
    stream: trio.abc.Stream,
    context: ssl.SSLContext,
    opts: TLSOptions,
    *,
    allow_non_tls: bool,
    send_info: Callable[[bool], bytes],
    log,
) -> ClientPortTLS:
    """nats-server's client-port TLS flow for one new connection; HandshakeError if it fails.

    * Default: the INFO goes out in plaintext (`tls_required`), then the client's handshake.
    * `handshake_first` true: the handshake comes first and the INFO is sent inside TLS; a
      fallback delay (a float, "auto" = 50 ms) sends the plaintext INFO if the client has
      said nothing by then.
    * `allow_non_tls`: after the INFO, the first byte decides (0x16 starts a TLS handshake).

    `send_info(tls_first)` gives the INFO bytes (tls_required is forced while TLS comes first).
    """
    timeout = handshake_timeout(opts)
    first = opts.handshake_first is not False
    fallback = 0.0 if opts.handshake_first is True or not first else float(opts.handshake_first)
    prefix = b""
    if first and fallback > 0:
        # Only a "TLS first" client speaks before the INFO: wait a moment for it.
        with trio.move_on_after(fallback):
            prefix = await stream.receive_some(defaults.READ_SIZE)
            if not prefix:
                raise HandshakeError("EOF", probe=True)
        first = bool(prefix)
    info_sent = False
    if not first:
        await stream.send_all(send_info(False))
        info_sent = True
    # One deadline for the whole handshake, from the INFO on (nats-server's tls timeout).
    deadline = trio.current_time() + timeout
    wants_tls = True
    if not first and allow_non_tls:
        # As nats-server: a client silent for the whole timeout is taken as plaintext.
        with trio.move_on_at(deadline):
            prefix = await stream.receive_some(defaults.READ_SIZE)
        wants_tls = bool(prefix) and prefix[0] == TLS_HANDSHAKE_RECORD
    if not wants_tls:
        return ClientPortTLS(PrefixedStream(stream, prefix), tls=False, first=False,
                             info_sent=info_sent)  # fmt: skip
    log.debug("Starting TLS client connection handshake")
    if not prefix:
        # Look at the first record ourselves: OpenSSL would answer a plaintext CONNECT with
        # an alert, where nats-server just closes (and logs at debug, as for a probe).
        with trio.move_on_at(deadline) as scope:
            prefix = await stream.receive_some(defaults.READ_SIZE)
        if scope.cancelled_caught:
            raise HandshakeError("i/o timeout", timeout=True)
        if not prefix:
            raise HandshakeError("EOF")  # an error in nats-server's log too
    if prefix[0] != TLS_HANDSHAKE_RECORD:
        raise HandshakeError("tls: first record does not look like a TLS handshake", probe=True)
    ssl_stream = await handshake(
        PrefixedStream(stream, prefix),
        context,
        max(deadline - trio.current_time(), 0.001),
        pinned_certs=opts.pinned_certs,
    )
    return ClientPortTLS(ssl_stream, tls=True, first=first, info_sent=info_sent)
