"""A remote's credentials (a `.creds` file, or an nkey seed): the signature of the hub's nonce
that goes in the leaf's CONNECT, with the user JWT or the user's public nkey.

The file is read when the CONNECT is built, as nats-server reads it (so a rotated file is
used at the next connection); the seed is never logged or kept. nats-server's format: the
first two blocks between `---...---` marker lines are the JWT and the seed.
"""

from __future__ import annotations

import base64
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..auth.nkeys import _crc16, encode_public

#: nats-server's credsRe (leafnode.go).
_BLOCK = re.compile(rb"\s*(?:(?:[-]{3,}.*[-]{3,}\r?\n)([\w\-.=]+)(?:\r?\n[-]{3,}.*[-]{3,}(\r?\n|\Z)))")
#: An nkey seed's first 5 bits; a user seed's type prefix (20 << 3).
_PREFIX_SEED = 18 << 3
_PREFIX_USER = 20 << 3


class CredentialsError(Exception):
    """The file cannot be used; the text is nats-server's log line."""


def signed_jwt(path: str, nonce: str) -> tuple[str, str]:
    """(user JWT, base64url signature of `nonce`) from the credentials file at `path`."""
    try:
        with open(path, "rb") as file:
            contents = file.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)  # Go's errno texts are lower case
        raise CredentialsError(f"open {path}: {reason[:1].lower()}{reason[1:]}") from None
    blocks = [match.group(1) for match in _BLOCK.finditer(contents)]
    if len(blocks) < 2:
        raise CredentialsError("Credentials file malformed")
    jwt, seed = blocks[0], blocks[1]
    key = _user_key(seed)
    if key is None:
        raise CredentialsError("Credentials file has malformed seed")
    signature = key.sign(nonce.encode())
    return jwt.decode(), base64.urlsafe_b64encode(signature).decode().rstrip("=")


def signed_nkey(seed: str, nonce: str) -> tuple[str, str]:
    """(public user nkey, base64url signature of `nonce`) for a remote's `nkey` seed."""
    key = _user_key(seed.encode())
    if key is None:
        raise CredentialsError("Remote nkey has malformed seed")
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = key.sign(nonce.encode())
    return encode_public(raw), base64.urlsafe_b64encode(signature).decode().rstrip("=")


def is_user_seed(seed: str) -> bool:
    return _user_key(seed.encode()) is not None


def _user_key(seed: bytes) -> Ed25519PrivateKey | None:
    try:
        raw = base64.b32decode(seed + b"=" * (-len(seed) % 8))
    except ValueError:
        return None
    if len(raw) != 36:
        return None
    body, crc = raw[:-2], raw[-2] | raw[-1] << 8
    if _crc16(body) != crc or body[0] & 0xF8 != _PREFIX_SEED:
        return None
    kind = ((body[0] & 0x07) << 5) | ((body[1] & 0xF8) >> 3)
    if kind != _PREFIX_USER:
        return None
    return Ed25519PrivateKey.from_private_bytes(body[2:34])
