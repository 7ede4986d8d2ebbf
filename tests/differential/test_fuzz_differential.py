"""Fuzz inputs replayed to nats-server and to trionats over real sockets: same replies, same closes.

A fixed sample of the mutated streams the fuzzer generates (fuzz/inputs.py) is sent, each in
one write, to a fresh connection on each server (`exchange` from test_differential.py); what
each connection received after its INFO, and whether the server closed it, must be the same.
Two normalisations, each for a documented reason:

- repeated "-ERR 'Invalid Publish Subject'" lines count as one: nats-server answers a pedantic
  client's invalid subject again when the payload continues in a later read, and its reads
  end elsewhere than trionats' (docs/differences.md, "Read boundaries");
- on the route port, INFO lines are compared as "an INFO": route INFO fields differ by design
  (docs/differences.md, "Clustering"), and nats-server runs with `no_system_account` so that
  it does not announce its system account's interest to every route.
"""

from __future__ import annotations

import random
import re

import pytest
import trio

from fuzz.inputs import CLUSTER_NAME, generate_bytes
from tests.helpers import NatsServerProcess, free_port
from tests.differential.test_differential import exchange
from trionats.options import ClusterOptions

pytestmark = pytest.mark.interop

#: Inputs per protocol (about 0.05 s each against both servers).
CLIENT_SAMPLE = 200
ROUTE_SAMPLE = 60

_REPEATED_INVALID_SUBJECT = re.compile(rb"(-ERR 'Invalid Publish Subject'\r\n)+")
_INFO_LINE = re.compile(rb"(?m)^INFO [^\r\n]*\r\n")


def _client_view(reply) -> tuple:
    return reply.info, _REPEATED_INVALID_SUBJECT.sub(rb"\1", reply.output), reply.closed


def _route_view(reply) -> tuple:
    return _INFO_LINE.sub(b"INFO <route info>\r\n", reply.output), reply.closed


async def _differences(reference_port, trionats_port, inputs, view, **exchange_options):
    found = []
    for index, data in inputs:
        replies = {}

        async def run(port: int) -> None:
            (replies[port],) = await exchange(port, [data], **exchange_options)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run, reference_port)
            nursery.start_soon(run, trionats_port)
        want, have = replies[reference_port], replies[trionats_port]
        if view(want) != view(have):
            found.append(f"input {index}: {data[:500]!r}\n  nats-server: {view(want)[-2:]!r}\n"
                         f"  trionats:    {view(have)[-2:]!r}")  # fmt: skip
    return found


def _sample(protocol: str, count: int) -> list[tuple[int, bytes]]:
    return [(i, generate_bytes(protocol, random.Random(f"differential:{protocol}:{i}")))
            for i in range(count)]  # fmt: skip


async def test_mutated_client_streams_get_nats_servers_replies(reference_server, server):
    found = await _differences(reference_server.port, server.port,
                               _sample("client", CLIENT_SAMPLE), _client_view)  # fmt: skip
    assert not found, f"{len(found)} of {CLIENT_SAMPLE} differ:\n" + "\n".join(found[:5])


@pytest.fixture(scope="module")
def reference_cluster(tmp_path_factory):
    """nats-server listening for routes of cluster FUZZ, without a system account."""
    port = free_port()
    config = tmp_path_factory.mktemp("route-fuzz") / "nats-server.conf"
    cluster = f"cluster {{ name: {CLUSTER_NAME}, listen: 127.0.0.1:{port} }}"
    config.write_text(f"no_system_account: true\n{cluster}\n")
    with NatsServerProcess("-c", str(config)) as process:
        process.cluster_port = port
        yield process


async def test_mutated_route_streams_get_nats_servers_replies(reference_cluster, server_factory):
    cluster = ClusterOptions(name=CLUSTER_NAME, host="127.0.0.1", port=-1)
    ours = await server_factory(cluster=cluster, no_system_account=True)  # (as the reference)
    found = await _differences(reference_cluster.cluster_port, ours.cluster.port,
                               _sample("route", ROUTE_SAMPLE), _route_view,
                               reset_cache=False)  # fmt: skip
    assert not found, f"{len(found)} of {ROUTE_SAMPLE} differ:\n" + "\n".join(found[:5])
