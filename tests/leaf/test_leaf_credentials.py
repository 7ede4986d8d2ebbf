"""A trionats leaf logging in to an operator-mode nats-server hub with a credentials file:
the user JWT and the signature of the hub's nonce in its CONNECT, the leaf bound to the JWT's
account on the hub; an unusable file is logged with nats-server's words."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path

import nkeys
import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess, free_port
from tests.leaf.test_leaf_interop import TIMEOUT, conf, connect, ready, run, wait_log

pytestmark = pytest.mark.interop


def _keypair(prefix: int):
    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _jwt(claims: dict, signer) -> str:
    claims = dict(claims, iat=int(time.time()))
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = {"typ": "JWT", "alg": "ed25519-nkey"}
    body = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return body + "." + _b64(signer.sign(body.encode()))


def _pub(kp) -> str:
    return kp.public_key.decode()


def operator_setup(folder: Path, leaf_port: int) -> dict:
    """An operator, a system account and account A (memory resolver), and two users of A
    with their credentials files: `leaf` (for the leaf) and `app` (a hub client)."""
    op = _keypair(nkeys.PREFIX_BYTE_OPERATOR)
    acc, sysacc = _keypair(nkeys.PREFIX_BYTE_ACCOUNT), _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    limits = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
              "wildcards": True, "conn": -1, "leaf": -1}  # fmt: skip
    op_jwt = _jwt({"iss": _pub(op), "sub": _pub(op), "name": "OP",
                   "nats": {"type": "operator", "version": 2, "system_account": _pub(sysacc)}}, op)  # fmt: skip
    accounts = {
        _pub(kp): _jwt({"iss": _pub(op), "sub": _pub(kp), "name": name,
                        "nats": {"type": "account", "version": 2, "limits": limits}}, op)
        for kp, name in ((acc, "A"), (sysacc, "SYS"))
    }  # fmt: skip
    (folder / "op.jwt").write_text(op_jwt)
    paths = {}
    for name in ("leaf", "app"):
        user = _keypair(nkeys.PREFIX_BYTE_USER)
        token = _jwt({"iss": _pub(acc), "sub": _pub(user), "name": name,
                      "nats": {"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1,
                               "data": -1, "payload": -1}}, acc)  # fmt: skip
        path = folder / f"{name}.creds"
        path.write_text(f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
                        "************************* IMPORTANT *************************\n\n"
                        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n"
                        "------END USER NKEY SEED------\n")  # fmt: skip
        paths[name] = str(path)
    preload = ", ".join(f'{key}: "{value}"' for key, value in accounts.items())
    paths["hub"] = (f"operator: {folder / 'op.jwt'}\nsystem_account: {_pub(sysacc)}\n"
                    f"resolver: MEMORY\nresolver_preload: {{ {preload} }}\n"
                    f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}\n')  # fmt: skip
    return paths


def test_a_leaf_logs_in_with_a_credentials_file(tmp_path):
    leaf_port = free_port()
    setup = operator_setup(tmp_path, leaf_port)
    hub = NatsServerProcess("-c", conf(tmp_path, "hub", setup["hub"]))
    leaf = TrionatsProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                           f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{leaf_port}", '
                           f'credentials: "{setup["leaf"]}" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(leaf, "Leafnode connection established")

        async def main():
            app = await connect(hub.url, user_credentials=setup["app"])
            local = await connect(leaf.url)
            sub = await local.subscribe("jwt.x")
            await ready(local, app)
            await app.publish("jwt.x", b"from A")
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"from A"
            await app.close()
            await local.close()

        run(main())
    finally:
        leaf.stop()
        hub.stop()


@pytest.mark.parametrize(
    ("contents", "logged"),
    [("not a creds file\n", "Credentials file malformed"),
     (("-----BEGIN NATS USER JWT-----\nabc\n------END NATS USER JWT------\n"
       "-----BEGIN USER NKEY SEED-----\nSUXXXX\n------END USER NKEY SEED------\n"),
      "Credentials file has malformed seed"),
     (None, "no such file or directory")],
)  # fmt: skip
def test_an_unusable_credentials_file(tmp_path, contents, logged):
    leaf_port = free_port()
    setup = operator_setup(tmp_path, leaf_port)
    path = tmp_path / "bad.creds"
    if contents is not None:
        path.write_text(contents)
    hub = NatsServerProcess("-c", conf(tmp_path, "hub", setup["hub"]))
    leaf = TrionatsProcess("-c", conf(tmp_path, "leaf",
                           f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{leaf_port}", '
                           f'credentials: "{path}" }} ] }}\n'))  # fmt: skip
    try:
        wait_log(leaf, logged, count=2)  # and it tries again
        assert "Leafnode connection established" not in leaf.log()
    finally:
        leaf.stop()
        hub.stop()
