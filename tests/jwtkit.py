"""Operator-mode test material: nkey pairs, signed operator/account/user JWTs, .creds files.

A small signer with cryptography's Ed25519 and the nkeys encoding (trionats/auth/nkeys.py),
writing claims as nats-io/jwt v2 does (`nsc` output), so the same files serve trionats and
nats-server in differential tests. Keys are random per run: nothing secret is committed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trionats.auth import nkeys

_SEED_PREFIX = 18 << 3


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class KeyPair:
    """An nkey pair of a kind (operator, account, user): public key text, seed text, signing."""

    PREFIXES: ClassVar[dict[str, int]] = {
        "operator": nkeys.PREFIX_OPERATOR,
        "account": nkeys.PREFIX_ACCOUNT,
        "user": nkeys.PREFIX_USER,
    }

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.prefix = self.PREFIXES[kind]
        self._private = Ed25519PrivateKey.generate()
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = nkeys.encode_public(raw, self.prefix)

    @property
    def seed(self) -> str:
        from cryptography.hazmat.primitives.serialization import (
            NoEncryption,
            PrivateFormat,
        )

        raw = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        body = bytes([_SEED_PREFIX | (self.prefix >> 5), (self.prefix & 31) << 3]) + raw
        crc = nkeys._crc16(body)
        return base64.b32encode(body + bytes([crc & 0xFF, crc >> 8])).decode().rstrip("=")

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def sign_nonce(self, nonce: str) -> str:
        return _b64(self.sign(nonce.encode()))


def encode(claims: dict, signer: KeyPair, header: dict | None = None) -> str:
    """A JWT of `claims` signed by `signer` (iss, iat and jti filled in as nats-io/jwt)."""
    claims = {"iss": signer.public, "iat": int(time.time()), **claims}
    claims.pop("jti", None)
    digest = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode())
    claims = {"jti": base64.b32encode(digest.digest()).decode().rstrip("="), **claims}
    head = _b64(json.dumps(header or {"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = _b64(signer.sign(f"{head}.{body}".encode()))
    return f"{head}.{body}.{signature}"


def operator_jwt(operator: KeyPair, *, name: str = "OP", signer: KeyPair | None = None,
                 **nats) -> str:
    return encode(
        {"sub": operator.public, "name": name, "nats": {"type": "operator", "version": 2, **nats}},
        signer or operator,
    )


_UNLIMITED = {"subs": -1, "data": -1, "payload": -1}
_ACCOUNT_UNLIMITED = {**_UNLIMITED, "imports": -1, "exports": -1, "wildcards": True,
                      "conn": -1, "leaf": -1}  # fmt: skip


def account_jwt(account: KeyPair, signer: KeyPair, *, name: str = "A", limits: dict | None = None,
                exp: int = 0, **nats) -> str:
    claims = {"sub": account.public, "name": name,
              "nats": {"limits": {**_ACCOUNT_UNLIMITED, **(limits or {})}, "type": "account",
                       "version": 2, **nats}}  # fmt: skip
    if exp:
        claims["exp"] = exp
    return encode(claims, signer)


def user_jwt(user: KeyPair, signer: KeyPair, *, name: str = "U", exp: int = 0, nbf: int = 0,
             iat: int = 0, scoped: bool = False, **nats) -> str:
    """A user JWT; `issuer_account=` when `signer` is a signing key of the account; `scoped`
    leaves out permissions and limits (a scoped signing key gives them)."""
    body = {} if scoped else dict(_UNLIMITED)
    claims = {"sub": user.public, "name": name,
              "nats": {**body, **nats, "type": "user", "version": 2}}  # fmt: skip
    if exp:
        claims["exp"] = exp
    if nbf:
        claims["nbf"] = nbf
    if iat:
        claims["iat"] = iat
    return encode(claims, signer)


def activation_jwt(importer: KeyPair, signer: KeyPair, subject: str, kind: str, *,
                   issuer_account: str = "", exp: int = 0) -> str:
    """An exporting account's activation token letting `importer` import `subject`."""
    nats = {"subject": subject, "kind": kind, "type": "activation", "version": 2}
    if issuer_account:
        nats["issuer_account"] = issuer_account
    claims = {"sub": importer.public, "name": subject, "nats": nats}
    if exp:
        claims["exp"] = exp
    return encode(claims, signer)


def creds(user_token: str, user: KeyPair) -> str:
    """A .creds file's text in the standard (nsc) format."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_token}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user.seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def write_creds(directory: Path, name: str, user_token: str, user: KeyPair) -> Path:
    path = Path(directory) / f"{name}.creds"
    path.write_text(creds(user_token, user))
    return path


class Operator:
    """An operator with a system account and named accounts, and their users: the JWTs and
    a configuration for `resolver: MEMORY` (trionats and nats-server alike)."""

    def __init__(self, *, signing_key: bool = False) -> None:
        self.key = KeyPair("operator")
        self.signing_key = KeyPair("operator") if signing_key else None
        self.system = KeyPair("account")
        self.accounts: dict[str, tuple[KeyPair, str]] = {}
        self.jwt = operator_jwt(
            self.key,
            system_account=self.system.public,
            **({"signing_keys": [self.signing_key.public]} if signing_key else {}),
        )
        self.add_account("SYS", self.system)

    @property
    def account_signer(self) -> KeyPair:
        return self.signing_key or self.key

    def add_account(self, name: str, key: KeyPair | None = None, **claims) -> KeyPair:
        key = key or KeyPair("account")
        self.accounts[name] = (key, account_jwt(key, self.account_signer, name=name, **claims))
        return key

    def set_account_jwt(self, name: str, token: str) -> None:
        self.accounts[name] = (self.accounts[name][0], token)

    def user(self, account: str, *, signer: KeyPair | None = None, **claims) -> tuple[KeyPair, str]:
        user = KeyPair("user")
        key = self.accounts[account][0]
        if signer is not None and signer is not key:
            claims.setdefault("issuer_account", key.public)
        return user, user_jwt(user, signer or key, **claims)

    def conf(self, operator_path: Path | str | None = None, extra: str = "") -> str:
        """A configuration: the operator (a file path, or the JWT inline), the system
        account, the memory resolver and its preloads."""
        where = operator_path if operator_path is not None else self.jwt
        preload = "\n".join(f"  {key.public}: {token}" for key, token in self.accounts.values())
        return (
            f'operator: "{where}"\nsystem_account: {self.system.public}\n'
            f"resolver: MEMORY\nresolver_preload {{\n{preload}\n}}\n{extra}"
        )
