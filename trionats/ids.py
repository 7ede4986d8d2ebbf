"""Identifiers: the server's NKEY-style public id, nonces, random names."""

from __future__ import annotations

import secrets
import string

from .auth.nkeys import encode_public

_SERVER_PREFIX = 13 << 3  # nkeys prefix byte for servers: encodes to a leading "N"


def new_server_id() -> str:
    """A 56-character server id shaped like nats-server's (an NKEY server public key)."""
    return encode_public(secrets.token_bytes(32), _SERVER_PREFIX)


def random_name(length: int = 22) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))
