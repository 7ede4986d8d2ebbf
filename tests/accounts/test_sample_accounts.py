"""etc/accounts/accounts.conf, the sample docs/accounts.md walks through, run as a user runs
it: on nats-server and on trionats, the same nats-py session must see the same things
(isolation, a shared service import, a prefixed stream import, the user's own details, the
system account's view)."""

from __future__ import annotations

import json
from pathlib import Path

import nats.errors
import pytest

from tests.clients.test_nats_py import connect, run, sync
from tests.helpers import NatsServerProcess, TrionatsProcess, free_port

SAMPLE = Path(__file__).parents[2] / "etc" / "accounts" / "accounts.conf"


async def session(url: str) -> dict:
    seen: dict = {}
    orders = await connect(url, user="orders", password="orders")
    shop = await connect(url, user="shop", password="shop", name="web-1")
    viewer = await connect(url, user="viewer", password="viewer")
    admin = await connect(url, user="admin", password="admin")

    async def status(msg):
        asker = json.loads(msg.headers["Nats-Request-Info"])
        await msg.respond(f"order {msg.data.decode()} shipped, asked by {asker['acc']}/"
                          f"{asker['user']} ({asker['name']})".encode())  # fmt: skip

    await orders.subscribe("orders.status", cb=status)
    internal = await orders.subscribe("orders.internal")
    events = await shop.subscribe("shop.orders.events.>")
    leaked = await shop.subscribe("orders.internal")  # SHOP's own subject space
    await sync(orders)
    await sync(shop)

    seen["answer"] = (await shop.request("orders.status", b"42", timeout=5)).data.decode()
    await orders.publish("orders.events.created", b"42")
    await orders.publish("orders.internal", b"not for SHOP")
    await sync(orders)
    msg = await events.next_msg(timeout=5)
    seen["event"] = (msg.subject, msg.data)
    seen["internal"] = (await internal.next_msg(timeout=5)).data
    with pytest.raises(nats.errors.TimeoutError):
        await leaked.next_msg(timeout=0.3)

    info = json.loads((await viewer.request("$SYS.REQ.USER.INFO", b"", timeout=5)).data)["data"]
    for kind in info["permissions"].values():
        for names in kind.values():
            names.sort()  # (nats-server's order is its sublist's)
    seen["viewer"] = info

    ping = json.loads((await admin.request("$SYS.REQ.SERVER.PING", b"", timeout=5)).data)
    seen["statsz"] = sorted(ping["statsz"])
    accounts = json.loads((await admin.request("$SYS.REQ.SERVER.PING.ACCOUNTZ", b"",
                                               timeout=5)).data)  # fmt: skip
    seen["accounts"] = sorted(accounts["data"]["accounts"])
    return seen


@pytest.mark.interop
def test_the_sample_behaves_as_on_nats_server():
    where = ("-c", str(SAMPLE), "-m", str(free_port()))
    with NatsServerProcess(*where) as theirs:
        expected = run(session(theirs.url))
    with TrionatsProcess(*where) as ours:
        got = run(session(ours.url))
    assert got == expected
    assert got["answer"] == "order 42 shipped, asked by SHOP/shop (web-1)"
    assert got["event"] == ("shop.orders.events.created", b"42")
    assert got["viewer"]["account"] == "SHOP" and got["accounts"] == ["$G", "ORDERS", "SHOP", "SYS"]
