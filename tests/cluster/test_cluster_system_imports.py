"""The system account's services that every account imports, across a cluster (issue 14,
item 3): an account's `$SYS.REQ.SERVER.PING.CONNZ` is answered by every node with that
node's connections of the account, and `$SYS.REQ.USER.INFO` by the requester's node alone,
on trionats nodes and mixed with nats-server."""

from __future__ import annotations

import json

import pytest
import trio

from tests.cluster.test_cluster import TIMEOUT, wait_for
from tests.cluster.test_cluster_accounts import go, ours, subscribe, user


async def answers(raw, subject: bytes, inbox: bytes, want: int, wait: float = 0.5) -> list[dict]:
    """Publish a request and collect the replies for `wait` seconds (or until `want`)."""
    await raw.send(b"PUB " + subject + b" " + inbox + b" 0\r\n\r\n")
    got = []
    with trio.move_on_after(wait):
        while len(got) < want + 1:  # (one more than expected: none must come)
            size = int((await raw.read_line()).split()[-1])
            got.append(json.loads((await raw.read_exactly(size + 2))[:-2]))
    return got


async def check_system_imports_across(n1, n2, n3) -> None:
    clients = {name: await user(node, "a") for name, node in (("N1", n1), ("N2", n2), ("N3", n3))}
    asker = clients["N1"]
    await subscribe(asker, b"SUB _INBOX.> 1\r\n")
    with trio.fail_after(TIMEOUT * 3):
        while True:  # until every node's interest in the account's requests has crossed
            replies = await answers(asker, b"$SYS.REQ.SERVER.PING.CONNZ", b"_INBOX.c", 3)
            if len(replies) == 3:
                break
    assert {r["server"]["name"] for r in replies} == {"N1", "N2", "N3"}
    assert all(r["data"]["num_connections"] == 1 for r in replies)  # A's on each node
    (info,) = await answers(asker, b"$SYS.REQ.USER.INFO", b"_INBOX.u", 1, wait=1.0)
    assert info["server"]["name"] == "N1"
    assert info["data"] == {"user": "a", "account": "A", "account_name": "A"}


async def test_three_trionats_nodes(nursery):
    n1 = await ours(nursery, "N1")
    n2 = await ours(nursery, "N2", n1.cluster.port)
    n3 = await ours(nursery, "N3", n1.cluster.port)
    await wait_for(lambda: all(len(n.cluster.routes) == 2 for n in (n1, n2, n3)))
    await check_system_imports_across(n1, n2, n3)
    # Only the requester's server can say who asked: its user-info subscription is not
    # announced to peers (nats-server's internal subscription), so no route is a target.
    for node in (n1, n2, n3):
        result = node.accounts["SYS"].sublist.match(b"$SYS.REQ.USER.A.INFO")
        assert [sub.client for sub in result.psubs] == [node.system.client]
    for node in (n1, n2, n3):
        node.shutdown()


@pytest.mark.interop
async def test_mixed_cluster(nursery, tmp_path):
    n1 = await ours(nursery, "N1")
    with go(tmp_path, "N2", n1.cluster.port) as g:
        n3 = await ours(nursery, "N3", n1.cluster.port)
        await wait_for(lambda: all(len(n.cluster.routes) == 2 for n in (n1, n3)))
        await check_system_imports_across(n1, g, n3)
