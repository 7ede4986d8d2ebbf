"""verify_and_map: which configured user a client certificate names, by nats-server's rules.

nats-server (server/auth.go, checkClientTLSCertSubject) tries, first match wins:
1. each email address SAN, each DNS name SAN, each URI SAN, as a user name;
2. the subject as an LDAP DN against every user name that parses as a DN: equal RDN by RDN,
   then equal with the RDNs in any order;
3. the subject string followed by the subject's domain components (`...,DC=example,DC=com`);
4. the subject string alone, as Go prints it: `CN=alice,OU=eng,O=Acme,C=US`.

The subject string is Go's `pkix.Name.ToRDNSequence().String()`, which keeps only the
attributes Go has fields for, in its fixed order (C, ST, L, STREET, POSTALCODE, O, OU, CN,
SERIALNUMBER), printed in reverse. Pure code over `cryptography`'s parsed certificate;
`cryptography` is imported on the first certificate (it costs a server without TLS maps
about 25 ms of start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509

#: The attribute types nats-server's DN code knows (internal/ldap/dn.go).
DN_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.5": "SERIALNUMBER",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.17": "POSTALCODE",
    "0.9.2342.19200300.100.1.25": "DC",
}
#: Go's pkix.Name fields in ToRDNSequence order (by OID); single-valued ones keep the last value.
_GO_ORDER = (
    ("2.5.4.6", "C", False),
    ("2.5.4.8", "ST", False),
    ("2.5.4.7", "L", False),
    ("2.5.4.9", "STREET", False),
    ("2.5.4.17", "POSTALCODE", False),
    ("2.5.4.10", "O", False),
    ("2.5.4.11", "OU", False),
    ("2.5.4.3", "CN", True),
    ("2.5.4.5", "SERIALNUMBER", True),
)
_DOMAIN_COMPONENT = "0.9.2342.19200300.100.1.25"

#: A DN: RDNs, each a list of (type, value).
DN = list[list[tuple[str, str]]]


def map_user(der: bytes | None, lookup: Callable[[str], object | None], users: list[str]):
    """The user `der` names, or None: `lookup(name)` returns the user or None; `users` are
    the configured names (tried as DNs)."""
    if not der:
        return None
    from cryptography import x509

    try:
        return _map_user(x509.load_der_x509_certificate(der), lookup, users)
    except ValueError:  # a certificate (or extension) `cryptography` cannot parse names no one
        return None


def _map_user(cert: x509.Certificate, lookup, users: list[str]):
    for name in san_names(cert):
        found = lookup(name)
        if found is not None:
            return found
    subject_dn = certificate_dn(cert)
    if subject_dn is not None:
        candidates = []
        for name in users:
            parsed = parse_dn(name)
            if parsed is None:
                continue
            if dn_equal(parsed, subject_dn):
                return lookup(name)
            candidates.append((name, parsed))
        for name, parsed in candidates:
            if rdns_match(parsed, subject_dn):
                return lookup(name)
    subject = subject_string(cert.subject)
    dcs = ",".join(
        f"DC={attribute.value}"
        for rdn in cert.subject.rdns
        for attribute in rdn
        if attribute.oid.dotted_string == _DOMAIN_COMPONENT
    )
    if dcs:
        found = lookup(f"{subject},{dcs}")
        if found is not None:
            return found
    return lookup(subject)


def san_names(cert: x509.Certificate) -> list[str]:
    """Email, DNS and URI subject alternative names, in that order."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *san.get_values_for_type(x509.RFC822Name),
        *san.get_values_for_type(x509.DNSName),
        *san.get_values_for_type(x509.UniformResourceIdentifier),
    ]


def subject_string(name: x509.Name) -> str:
    """Go's `Subject.ToRDNSequence().String()` for a parsed subject."""
    rdns: list[list[tuple[str, str]]] = []
    for oid, label, single in _GO_ORDER:
        values = [str(a.value) for a in name if a.oid.dotted_string == oid]
        if not values:
            continue
        if single:
            rdns.append([(label, values[-1])])
        else:
            rdns.append([(label, value) for value in values])
    return ",".join("+".join(f"{t}={_escape(v)}" for t, v in rdn) for rdn in reversed(rdns))


def _escape(value: str) -> str:
    out = []
    last = len(value) - 1
    for index, char in enumerate(value):
        special = char in ',+"\\<>;'
        if special or (char == " " and index in (0, last)) or (char == "#" and index == 0):
            out.append("\\")
        out.append(char)
    return "".join(out)


def certificate_dn(cert: x509.Certificate) -> DN | None:
    """The subject as nats-server's FromRawCertSubject reads it (reversed), or None when it
    has an attribute type the DN code does not know (then DN matching is skipped)."""
    dn: DN = []
    for rdn in reversed(cert.subject.rdns):
        attributes = []
        for attribute in reversed(list(rdn)):
            label = DN_NAMES.get(attribute.oid.dotted_string)
            if label is None or not isinstance(attribute.value, str):
                return None
            attributes.append((label, attribute.value))
        dn.append(attributes)
    return dn


def parse_dn(text: str) -> DN | None:
    """An LDAP DN string (`CN=alice, O=Acme`), as nats-server's ParseDN; None if malformed."""
    dn: DN = []
    rdn: list[tuple[str, str]] = []
    buffer = bytearray()
    kind = ""
    escaping = False
    trailing_spaces = 0
    data = text.encode()

    def take() -> str:
        nonlocal trailing_spaces
        value = bytes(buffer[: len(buffer) - trailing_spaces]).decode(errors="replace")
        buffer.clear()
        trailing_spaces = 0
        return value

    index = 0
    while index < len(data):
        char = data[index]
        if escaping:
            trailing_spaces = 0
            escaping = False
            if chr(char) in ' "#+,;<=>\\':
                buffer.append(char)
            else:
                try:
                    buffer.append(int(data[index : index + 2], 16))
                except ValueError:
                    return None
                index += 1
        elif char == ord("\\"):
            trailing_spaces = 0
            escaping = True
        elif char == ord("="):
            kind = take()
            if data[index + 1 : index + 2] == b"#":
                return None  # BER-encoded values are not supported (nor by nats-server)
        elif char in (ord(","), ord("+")):
            if not kind:
                return None
            rdn.append((kind, take()))
            kind = ""
            if char == ord(","):
                dn.append(rdn)
                rdn = []
        elif char == ord(" ") and not buffer:
            pass
        else:
            trailing_spaces = trailing_spaces + 1 if char == ord(" ") else 0
            buffer.append(char)
        index += 1
    if buffer:
        if not kind:
            return None
        rdn.append((kind, take()))
        dn.append(rdn)
    return dn


def _rdn_equal(a: list[tuple[str, str]], b: list[tuple[str, str]]) -> bool:
    def has_all(mine, theirs) -> bool:
        return all(
            any(t.lower() == mt.lower() and v == mv for mt, mv in mine) for t, v in theirs
        )

    return len(a) == len(b) and has_all(a, b) and has_all(b, a)


def dn_equal(a: DN, b: DN) -> bool:
    return len(a) == len(b) and all(_rdn_equal(x, y) for x, y in zip(a, b, strict=True))


def rdns_match(a: DN, b: DN) -> bool:
    """Equal RDNs in any order."""
    if len(a) != len(b):
        return False
    matched = [False] * len(b)
    for mine in a:
        for index, theirs in enumerate(b):
            if not matched[index] and _rdn_equal(mine, theirs):
                matched[index] = True
                break
        else:
            return False
    return True


def names_route(der: bytes | None, *, user: str, tls_map: bool, known_hosts: list[str]) -> bool:
    """Whether a route peer's certificate passes cluster tls `verify_and_map` (it names the
    cluster user) or `verify_cert_and_check_known_urls` (one of its names is the host of a
    configured route, a leading `*` label matching any one label): nats-server's
    isRouterAuthorized. Names are tried as for clients; a name that is not a DNS one cannot
    look like a host, so every name is tried against the hosts."""

    def lookup(name: str) -> str | None:
        if not name:
            return None
        if known_hosts and _dns_name_matches(name, known_hosts):
            return name
        if tls_map and name == user:
            return name
        return None

    return map_user(der, lookup, [user] if tls_map and user else []) is not None


def _dns_name_matches(name: str, hosts: list[str]) -> bool:
    """RFC 6125 6.4.3 as nats-server applies it: same number of labels, each equal (case
    folded), except a `*` as the left-most label, which matches any one label."""
    labels = name.lower().split(".")
    for host in hosts:
        host_labels = host.lower().split(".")
        if len(host_labels) != len(labels):
            continue
        start = 1 if labels[0] == "*" else 0
        if labels[start:] == host_labels[start:]:
            return True
    return False
