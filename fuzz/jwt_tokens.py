"""Hostile user JWTs: `python -m fuzz.jwt_tokens --inputs N --seed S`.

A user JWT arrives in a CONNECT from anyone, before any trust: auth/jwt.py decodes it and
auth/operator.py checks it. Each input starts from a valid operator-mode world (an operator,
accounts with signing keys and scopes, users with permissions, limits and rules), picks a
user JWT, and breaks it one of three ways: the token's text mutated (fuzz/mutate.py), its
claims JSON mutated and the token re-signed by the issuer (so the checks past the signature
run on hostile claims: wrong types, deep nesting, huge numbers, odd keys), or its parts
swapped for other tokens' parts. The decoder may only raise JWTError and the login only
Refused; anything else is a failure, printed and saved as for the server fuzzer
(docs/fuzzing.md). About 200 inputs a second (each signs and verifies Ed25519 twice).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
import traceback
from pathlib import Path

from trionats.auth import jwt
from trionats.auth.operator import OperatorMode, Refused

from .mutate import mutate, mutate_json

#: Claim keys worth giving wrong values (what the decoder's structs read).
CLAIM_FIELDS = (
    "iss", "sub", "exp", "nbf", "iat", "name", "nats", "type", "version", "pub", "sub", "resp",
    "src", "times", "subs", "payload", "data", "bearer_token", "issuer_account", "tags",
    "allowed_connection_types", "allow", "deny", "max", "ttl",
)  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class World:
    """Keys and tokens to start from (built once per run; keys are random, inputs are not)."""

    def __init__(self) -> None:
        from tests.jwtkit import KeyPair, Operator, user_jwt

        self.op = op = Operator(signing_key=True)
        self.signer = KeyPair("account")
        self.scoped = KeyPair("account")
        scope = {"kind": "user_scope", "key": self.scoped.public,
                 "template": {"pub": {"allow": ["a.{{name()}}", "t.{{tag(x)}}"]}}}  # fmt: skip
        op.add_account("A", signing_keys=[self.signer.public, scope],
                       revocations={"*": 1}, limits={"conn": 5})  # fmt: skip
        account = op.accounts["A"][0]
        self.users = [
            op.user("A"),
            op.user("A", pub={"allow": ["x.>"], "deny": ["x.y"]}, sub={"allow": ["q grp"]},
                    resp={"max": 2, "ttl": 10**9}, src=["127.0.0.0/8"], bearer_token=True),
            op.user("A", signer=self.signer, allowed_connection_types=["STANDARD"]),
            op.user("A", exp=int(time.time()) + 3600, nbf=1, tags=["x:1"]),
        ]  # fmt: skip
        scoped = KeyPair("user")
        self.users.append((scoped, user_jwt(scoped, self.scoped, scoped=True, name="n",
                                            issuer_account=account.public)))  # fmt: skip
        self.keys = {account.public: account, self.signer.public: self.signer,
                     self.scoped.public: self.scoped}  # fmt: skip
        self.mode = OperatorMode((op.jwt,), tuple(
            (key.public, token) for key, token in op.accounts.values()
        ))  # fmt: skip


def hostile_token(world: World, rng) -> tuple[str, object]:
    """A broken user JWT and the user key that would sign the nonce."""
    user, token = rng.choice(world.users)
    head, body, sig = token.split(".")
    how = rng.randrange(3)
    if how == 0:
        return mutate(rng, token.encode(), [t.encode() for _, t in world.users]).decode(
            "latin-1"
        ), user
    if how == 1:
        claims = base64.urlsafe_b64decode(body + "===")
        issuer = json.loads(claims)["iss"]
        line = mutate_json(rng, b"CONNECT " + claims + b"\r\n", CLAIM_FIELDS)
        if rng.random() < 0.5:
            line = mutate_json(rng, line, CLAIM_FIELDS)
        claims = line.removeprefix(b"CONNECT ").removesuffix(b"\r\n")
        body = _b64(claims)
        signature = world.keys[issuer].sign(f"{head}.{body}".encode())
        return f"{head}.{body}.{_b64(signature)}", user
    _, other = rng.choice(world.users)
    parts = [head, body, sig]
    parts[rng.randrange(3)] = rng.choice(other.split("."))
    return ".".join(parts), user


def check(world: World, token: str, user, nonce: str = "nonce") -> None:
    """Decode and log in with `token`; only the expected refusals may come out."""
    try:
        jwt.decode(token)
    except jwt.JWTError:
        pass
    try:
        world.mode.login(token, user.sign_nonce(nonce), nonce, host="127.0.0.1")
    except Refused:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.jwt_tokens", description=__doc__)
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save-dir", type=Path, default=Path("fuzz-failures"))
    args = parser.parse_args(argv)
    world = World()
    failures = 0
    start = time.monotonic()
    for index in range(args.inputs):
        rng = random.Random(f"{args.seed}:{index}")
        token, user = hostile_token(world, rng)
        try:
            check(world, token, user)
        except Exception:  # noqa: BLE001 -- any other exception is the failure sought
            failures += 1
            text = traceback.format_exc()
            print(f"input {index}: {text}", file=sys.stderr)
            args.save_dir.mkdir(parents=True, exist_ok=True)
            (args.save_dir / f"jwt-{args.seed}-{index}.json").write_text(
                json.dumps({"token": token, "failure": text}, indent=1)
            )
    took = time.monotonic() - start
    print(f"{args.inputs} inputs in {took:.1f} s ({args.inputs / took:.0f}/s), {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
