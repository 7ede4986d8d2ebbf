"""NKEY users: public keys in NATS' base32 form, nonces, and Ed25519 signature checks.

An nkey is base32 (no padding) of: one prefix byte (`U` users: 20 << 3), the 32-byte
Ed25519 public key, and a CRC-16 (XMODEM, little endian) of the two. The server sends a
random `nonce` in INFO; the client's CONNECT carries `nkey` and `sig`, the Ed25519 signature
of the nonce's bytes, base64url (raw) or standard base64. Verification uses the
`cryptography` package's Ed25519 (about 0.1 ms, so it runs on the event loop).
"""

from __future__ import annotations

import base64
import binascii
import os

#: Prefix byte of user nkeys ("U" once base32-encoded).
PREFIX_USER = 20 << 3
#: Prefix bytes of operator ("O"), account ("A") and server ("N") nkeys (operator mode).
PREFIX_OPERATOR = 14 << 3
PREFIX_ACCOUNT = 0
PREFIX_SERVER = 13 << 3
#: Every public key kind, for a signature whose signer may be any of them (JWT issuers).
PUBLIC_PREFIXES = (PREFIX_OPERATOR, PREFIX_ACCOUNT, PREFIX_USER, PREFIX_SERVER)
#: Random bytes in a nonce (nats-server: 11, 15 base64url characters).
NONCE_BYTES = 11


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_public(raw: bytes, prefix: int = PREFIX_USER) -> str:
    """The nkey text of a 32-byte Ed25519 public key."""
    body = bytes([prefix]) + raw
    crc = _crc16(body)
    return base64.b32encode(body + bytes([crc & 0xFF, crc >> 8])).decode().rstrip("=")


def decode_public(nkey: str, prefix: int = PREFIX_USER) -> bytes | None:
    """The 32-byte public key of a user nkey, or None if it is not a valid one."""
    try:
        data = base64.b32decode(nkey + "=" * (-len(nkey) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(data) != 35 or data[0] != prefix:
        return None
    body, crc = data[:-2], data[-2] | data[-1] << 8
    if _crc16(body) != crc:
        return None
    return body[1:]


def is_user_nkey(nkey: str) -> bool:
    return decode_public(nkey) is not None


def is_public(nkey: str, prefix: int) -> bool:
    """Whether `nkey` is a valid public key of the kind `prefix` (an account's, ...)."""
    return decode_public(nkey, prefix) is not None


def decode_any_public(nkey: str) -> bytes | None:
    """The raw key of a public nkey of any kind (operator, account, user, server)."""
    if len(nkey) != 56:  # 35 bytes in base32
        return None
    for prefix in PUBLIC_PREFIXES:
        raw = decode_public(nkey, prefix)
        if raw is not None:
            return raw
    return None


def verify_raw(raw: bytes, signature: bytes, data: bytes) -> bool:
    """True if `signature` is the Ed25519 signature of `data` by the public key `raw`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def new_nonce() -> str:
    return base64.urlsafe_b64encode(os.urandom(NONCE_BYTES)).decode().rstrip("=")


def signature_bytes(sig: str) -> bytes | None:
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            return decode(sig + "=" * (-len(sig) % 4))
        except (binascii.Error, ValueError):
            continue
    return None


def verify(nkey: str, sig: str, nonce: str) -> bool:
    """True if `sig` is `nkey`'s Ed25519 signature of `nonce`."""
    raw = decode_public(nkey)
    signature = signature_bytes(sig) if sig else None
    if raw is None or signature is None:
        return False
    return verify_raw(raw, signature, nonce.encode())
