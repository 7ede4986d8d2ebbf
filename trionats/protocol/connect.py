"""Decoding a client's CONNECT JSON with the rules of Go's encoding/json into nats-server's struct.

Keys match field names case-insensitively, `null` leaves a field as it was, a value of the wrong
JSON type is an error (nats-server then closes the connection without -ERR), and fields that
were not sent keep their previous value: the pre-CONNECT defaults, or an earlier CONNECT's.
"""

from __future__ import annotations

import json

import attrs

_INT64 = (-(2**63), 2**63 - 1)


@attrs.define(slots=True)
class ConnectOptions:
    """What a client said about itself in CONNECT (defaults are the pre-CONNECT ones)."""

    verbose: bool = True
    pedantic: bool = True
    echo: bool = True
    tls_required: bool = False
    headers: bool = False
    no_responders: bool = False
    protocol: int = 0
    user: str = ""
    password: str = ""
    auth_token: str = ""
    nkey: str = ""
    sig: str = ""
    jwt: str = ""
    name: str = ""
    lang: str = ""
    version: str = ""
    account: str = ""
    new_account: bool = False
    remote_account: str = ""
    proxy_sig: str = ""
    import_: dict | None = None
    export: dict | None = None


@attrs.frozen
class Credentials:
    """Credentials the transport supplied (a websocket upgrade's cookies), used for each CONNECT
    field the client leaves empty, as nats-server does with its websocket cookies."""

    user: str = ""
    password: str = ""
    auth_token: str = ""

    def fill(self, opts: ConnectOptions) -> ConnectOptions:
        """`opts` with its empty user, password and auth_token taken from here."""
        return attrs.evolve(
            opts,
            user=opts.user or self.user,
            password=opts.password or self.password,
            auth_token=opts.auth_token or self.auth_token,
        )


# JSON key -> (attribute, expected type)
_FIELDS: dict[str, tuple[str, type]] = {
    "verbose": ("verbose", bool),
    "pedantic": ("pedantic", bool),
    "echo": ("echo", bool),
    "tls_required": ("tls_required", bool),
    "headers": ("headers", bool),
    "no_responders": ("no_responders", bool),
    "protocol": ("protocol", int),
    "user": ("user", str),
    "pass": ("password", str),
    "auth_token": ("auth_token", str),
    "nkey": ("nkey", str),
    "sig": ("sig", str),
    "jwt": ("jwt", str),
    "name": ("name", str),
    "lang": ("lang", str),
    "version": ("version", str),
    "account": ("account", str),
    "new_account": ("new_account", bool),
    "remote_account": ("remote_account", str),
    "proxy_sig": ("proxy_sig", str),
    "import": ("import_", dict),
    "export": ("export", dict),
}


def _no_constants(name: str) -> None:
    raise ValueError(f"invalid JSON literal {name}")


class _Members(dict):
    """A decoded JSON object that also keeps its members in order, duplicate keys included."""

    __slots__ = ("members",)

    def __init__(self, pairs: list) -> None:
        super().__init__(pairs)
        self.members = pairs


def decode_connect(raw: bytes, previous: ConnectOptions) -> ConnectOptions:
    """Apply the CONNECT JSON `raw` on top of `previous`; raise ValueError if Go would refuse it."""
    document = json.loads(
        raw.decode("utf-8", "replace"), parse_constant=_no_constants, object_pairs_hook=_Members
    )
    if document is None:  # Go: unmarshalling `null` into a struct is a no-op
        return attrs.evolve(previous)
    if not isinstance(document, dict):
        raise ValueError("CONNECT is not a JSON object")
    result = attrs.evolve(previous)
    # Every member in order, duplicates too: Go applies each in turn (a later null keeps the
    # earlier value; a wrong type anywhere is an error).
    for key, value in document.members:
        # Go's EqualFold: ASCII case, plus the long s (and the Kelvin sign, which lower() does).
        field = _FIELDS.get(key) or _FIELDS.get(key.lower().replace("\u017f", "s"))
        if field is None:
            continue
        attribute, kind = field
        if value is None:
            if kind is dict:  # import/export are pointers in nats-server: null sets nil
                setattr(result, attribute, None)
            continue
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            ok = type(value) is int and _INT64[0] <= value <= _INT64[1]
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ValueError(f"CONNECT field {key!r} has the wrong type")
        setattr(result, attribute, value)
    return result


def is_json_object(raw: bytes) -> bool:
    """True if `raw` is a JSON object or `null`: what Go accepts when decoding into a struct."""
    try:
        document = json.loads(raw.decode("utf-8", "replace"), parse_constant=_no_constants)
    except ValueError:
        return False
    return document is None or isinstance(document, dict)
