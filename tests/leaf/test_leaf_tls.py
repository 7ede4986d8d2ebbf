"""TLS on leaf connections, both ways against nats-server 2.15.1: the hub sends its INFO in
plaintext, then both handshake; a leaf that cannot verify the hub's certificate never binds."""

from __future__ import annotations

import pytest

from tests.auth.test_tls import Certs, certs  # noqa: F401 (the session fixture)
from tests.helpers import NatsServerProcess, TrionatsProcess, free_port
from tests.leaf.test_leaf_interop import TIMEOUT, conf, connect, ready, run, wait_log

pytestmark = pytest.mark.interop


def hub_conf(certs: Certs, leaf_port: int) -> str:  # noqa: F811
    return (f'leafnodes {{ listen: "127.0.0.1:{leaf_port}", '
            f'tls {{ cert_file: "{certs.server_cert}", key_file: "{certs.server_key}" }} }}\n')  # fmt: skip


def leaf_conf(certs: Certs, leaf_port: int, *, tls: bool = True) -> str:  # noqa: F811
    block = f', tls {{ ca_file: "{certs.ca_file}" }}' if tls else ""
    return f'leafnodes {{ remotes [ {{ url: "nats://localhost:{leaf_port}"{block} }} ] }}\n'


async def exchange(hub, leaf) -> None:
    on_hub, on_leaf = await connect(hub.url), await connect(leaf.url)
    sub = await on_leaf.subscribe("over.tls")
    await ready(on_leaf, on_hub)
    await on_hub.publish("over.tls", b"secret")
    assert (await sub.next_msg(timeout=TIMEOUT)).data == b"secret"
    await on_hub.close()
    await on_leaf.close()


@pytest.mark.parametrize("hub_kind, leaf_kind", [(NatsServerProcess, TrionatsProcess),
                                                 (TrionatsProcess, NatsServerProcess)])  # fmt: skip
def test_tls_both_ways(tmp_path, certs, hub_kind, leaf_kind):  # noqa: F811
    leaf_port = free_port()
    hub = hub_kind("-n", "HUB", "-c", conf(tmp_path, "hub", hub_conf(certs, leaf_port)))
    leaf = leaf_kind("-n", "LEAF", "-c", conf(tmp_path, "leaf", leaf_conf(certs, leaf_port)))
    try:
        ours = leaf if leaf_kind is TrionatsProcess else hub
        wait_log(ours, "Leafnode connection established")
        run(exchange(hub, leaf))
    finally:
        leaf.stop()
        hub.stop()


def test_a_hub_certificate_the_leaf_cannot_verify(tmp_path, certs):  # noqa: F811
    """No `tls` block: the hub's INFO asks for TLS, the system's CAs do not know its CA."""
    leaf_port = free_port()
    hub = NatsServerProcess("-n", "HUB", "-c", conf(tmp_path, "hub", hub_conf(certs, leaf_port)))
    leaf = TrionatsProcess("-n", "LEAF", "-c", conf(tmp_path, "leaf",
                           leaf_conf(certs, leaf_port, tls=False)))  # fmt: skip
    try:
        wait_log(leaf, "TLS leafnode handshake error", count=2)  # and it dials again
        assert "Leafnode connection established" not in leaf.log()
    finally:
        leaf.stop()
        hub.stop()
