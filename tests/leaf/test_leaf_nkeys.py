"""Nkey authentication of leaves, both ways against nats-server 2.15.1: the remote's `nkey`
seed signs the hub's nonce, the hub's `leafnodes.authorization.nkey` names the public key."""

from __future__ import annotations

import os

import nkeys
import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess, free_port
from tests.leaf.test_leaf_interop import TIMEOUT, conf, connect, ready, run, wait_log
from trionats.leaf.credentials import signed_nkey

pytestmark = pytest.mark.interop


def user_keys() -> tuple[str, str]:
    kp = nkeys.from_seed(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    return kp.public_key.decode(), kp.seed.decode()


def test_signing_matches_the_nkeys_library():
    public, seed = user_keys()
    nkey, signature = signed_nkey(seed, "a-nonce")
    assert nkey == public
    kp = nkeys.from_seed(seed.encode())
    import base64

    assert kp.verify(b"a-nonce", base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))


@pytest.mark.parametrize("hub_kind, leaf_kind", [(NatsServerProcess, TrionatsProcess),
                                                 (TrionatsProcess, NatsServerProcess)])  # fmt: skip
def test_nkey_leaves_both_ways(tmp_path, hub_kind, leaf_kind):
    public, seed = user_keys()
    leaf_port = free_port()
    hub = hub_kind("-n", "HUB", "-c", conf(tmp_path, "hub",
                   f'leafnodes {{ listen: "127.0.0.1:{leaf_port}", authorization {{ nkey: {public} }} }}\n'))  # fmt: skip
    leaf = leaf_kind("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                     f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{leaf_port}", nkey: {seed} }} ] }}\n'))  # fmt: skip
    try:
        wait_log(hub if hub_kind is TrionatsProcess else leaf, "Leafnode connection established")

        async def main():
            on_hub, on_leaf = await connect(hub.url), await connect(leaf.url)
            sub = await on_leaf.subscribe("nkey.x")
            await ready(on_leaf, on_hub)
            await on_hub.publish("nkey.x", b"signed")
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"signed"
            await on_hub.close()
            await on_leaf.close()

        run(main())
        assert seed not in leaf.log() and seed not in hub.log()
    finally:
        leaf.stop()
        hub.stop()


def test_a_leaf_with_another_key_is_refused(tmp_path):
    public, _ = user_keys()
    _, other_seed = user_keys()
    leaf_port = free_port()
    hub = TrionatsProcess("-c", conf(tmp_path, "hub",
                          f'leafnodes {{ listen: "127.0.0.1:{leaf_port}", authorization {{ nkey: {public} }} }}\n'))  # fmt: skip
    leaf = NatsServerProcess("-c", conf(tmp_path, "leaf",
                             f'leafnodes {{ remotes [ {{ url: "nats://127.0.0.1:{leaf_port}", nkey: {other_seed} }} ] }}\n'))  # fmt: skip
    try:
        wait_log(leaf, "Authorization Violation")
        assert "Leafnode connection established" not in hub.log()
    finally:
        leaf.stop()
        hub.stop()
