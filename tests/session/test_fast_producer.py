"""Fast producer stall: a publisher faster than its subscriber is slowed to the subscriber's
pace (nats-server's rule) instead of the subscriber being cut as a slow consumer."""

from __future__ import annotations

import pytest
import trio

from tests.helpers import RawClient

pytestmark = pytest.mark.slow

MAX_PENDING = 512 * 1024
MESSAGES = 32768
PAYLOAD = b"x" * 1024


async def flood_a_slow_reader(server) -> tuple[int, bool]:
    """Publish MESSAGES of 1 KB as fast as possible to a subscriber that reads 16 KB at a
    time: per turn of the event loop the server takes in a
    64 KB read and the subscriber takes out 16 KB, so without a stall its queue only grows.
    The publisher, the server and the subscriber share this Trio run, so their relative pace
    does not depend on the machine's speed. Return (bytes received, whether it was cut)."""
    sub = await RawClient.connect(server.port)
    await sub.send(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB flood 1\r\nPING\r\n')
    await sub.expect(b"PONG\r\n")
    pub = await RawClient.connect(server.port)
    await pub.send(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
    frame = b"PUB flood 1024\r\n" + PAYLOAD + b"\r\n"
    expected = len(b"MSG flood 1 1024\r\n" + PAYLOAD + b"\r\n") * MESSAGES
    received = 0
    cut = False

    async def publish() -> None:
        for _ in range(MESSAGES // 64):
            await pub.send(frame * 64)

    async def read_slowly() -> None:
        nonlocal received, cut
        while received < expected:
            data = await sub.stream.receive_some(16 * 1024)
            if not data:
                cut = True
                return
            received += len(data)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_slowly)
            await publish()
    await sub.aclose()
    await pub.aclose()
    return received, cut


async def test_publisher_is_slowed_to_a_slow_subscriber(server_factory):
    server = await server_factory(max_pending=MAX_PENDING, max_payload=64 * 1024)
    received, cut = await flood_a_slow_reader(server)
    assert server.stats.stalled_clients > 0  # the publisher's reads waited for the subscriber
    assert not cut and server.stats.slow_consumers == 0
    assert received == len(b"MSG flood 1 1024\r\n" + PAYLOAD + b"\r\n") * MESSAGES


async def test_without_the_stall_the_slow_subscriber_is_cut(server_factory):
    server = await server_factory(
        max_pending=MAX_PENDING, max_payload=64 * 1024, no_fast_producer_stall=True
    )
    _, cut = await flood_a_slow_reader(server)
    assert cut and server.stats.slow_consumers == 1
    assert server.stats.stalled_clients == 0
