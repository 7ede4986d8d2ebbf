"""Identifiers: the server's NKEY-style public id, nonces, random names."""

from __future__ import annotations

import base64
import secrets
import string

_SERVER_PREFIX = 13 << 3  # nkeys prefix byte for servers: encodes to a leading "N"


def _crc16(data: bytes) -> int:
    """CRC-16/XMODEM, the checksum nkeys appends to a key."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def new_server_id() -> str:
    """A 56-character server id shaped like nats-server's (an NKEY server public key)."""
    raw = bytes([_SERVER_PREFIX]) + secrets.token_bytes(32)
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def random_name(length: int = 22) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))
