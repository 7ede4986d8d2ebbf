"""Decoding a client's CONNECT JSON with the rules of Go's encoding/json into nats-server's struct.

Keys match field names case-insensitively, `null` leaves a field as it was, a value of the wrong
JSON type is an error (nats-server then closes the connection without -ERR), and fields that
were not sent keep their previous value: the pre-CONNECT defaults, or an earlier CONNECT's.
`gojson` does the decoding and the type checks, against nats-server's ClientOpts (`structs`).
"""

from __future__ import annotations

import attrs

from .gojson import decode_struct
from .structs import CLIENT_OPTS, INFO


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
    jwt: str = ""  # a user JWT (operator mode)

    def fill(self, opts: ConnectOptions) -> ConnectOptions:
        """`opts` with its empty user, password, auth_token and jwt taken from here."""
        return attrs.evolve(
            opts,
            user=opts.user or self.user,
            password=opts.password or self.password,
            auth_token=opts.auth_token or self.auth_token,
            jwt=opts.jwt or self.jwt,
        )


#: CONNECT keys whose ConnectOptions attribute is named differently.
_ATTRIBUTES = {"pass": "password", "import": "import_"}


def decode_connect(raw: bytes, previous: ConnectOptions) -> ConnectOptions:
    """Apply the CONNECT JSON `raw` on top of `previous`; raise ValueError if Go would refuse it."""
    fields = decode_struct(raw, CLIENT_OPTS)
    return attrs.evolve(
        previous, **{_ATTRIBUTES.get(tag, tag): value for tag, value in fields.items()}
    )


def decode_info(raw: bytes) -> dict:
    """A peer's INFO as nats-server's Info struct takes it; ValueError if Go would refuse it."""
    return decode_struct(raw, INFO)
