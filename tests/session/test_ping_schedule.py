"""When the server PINGs a client whose bytes arrive one per read: nats-server's rules, timed
exactly with Trio's autojump clock over memory streams (tests/differential/test_differential.py replays
the same kind of traffic to nats-server itself).

nats-server's rules (client.go setFirstPingTimer, processPingTimer): after CONNECT the first
PING comes after min(ping_interval, 2 s) plus up to a fifth of that at random, and is always
sent (no RTT sample yet); every later timer, ping_interval apart, sends a PING unless the
client completed a message, a SUB/UNSUB or a PING within the interval. Bytes of an op not
yet complete are not activity, nor is a PONG. A timer that would send the (ping_max + 1)th
unanswered PING closes the connection with -ERR 'Stale Connection' instead.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trionats.options import Options
from trionats.server import Server

C = b'CONNECT {"verbose":false}\r\n'
#: Seconds between two bytes of the client.
BYTE_GAP = 0.01
#: The first PING after CONNECT: 2 s plus up to 20%.
FIRST_PING = (2.0, 2.4)


class TrickleClient:
    """A server-side client connection over a memory stream; the test side writes one byte
    at a time and records what the server sends, with the (virtual) time it was sent."""

    def __init__(self, stream: trio.testing.MemoryStapledStream) -> None:
        self.stream = stream
        self.received: list[tuple[float, bytes]] = []
        self.closed = False

    async def read(self) -> None:
        while data := await self.stream.receive_some():
            self.received.append((trio.current_time(), bytes(data)))
        self.closed = True

    async def trickle(self, data: bytes, gap: float = BYTE_GAP) -> None:
        for byte in data:
            if self.closed:
                return
            await self.stream.send_all(bytes([byte]))
            await trio.sleep(gap)

    def times_of(self, line: bytes) -> list[float]:
        return [when for when, data in self.received for _ in range(data.count(line))]

    def output(self) -> bytes:
        """Everything after the greeting INFO."""
        return b"".join(data for _, data in self.received).split(b"\r\n", 1)[1]


class BytesStream(trio.abc.Stream):
    """A memory stream that hands the server `bytes`, as a socket does (not bytearray)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self.stream.receive_some(max_bytes))

    async def send_all(self, data) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


@pytest.fixture(params=["plain", "traced"])
async def open_client(nursery, request, tmp_path):
    """Each test runs as is and with the protocol trace on (-V), whose read loop is its own."""
    from trionats import logging as tlog

    if request.param == "traced":
        tlog.configure(log_file=str(tmp_path / "trace.log"), trace=True)
        request.addfinalizer(tlog.configure)

    async def open_client(**options) -> TrickleClient:
        server = Server(Options(host="127.0.0.1", port=-1, **options))
        ours, theirs = trio.testing.memory_stream_pair()
        nursery.start_soon(server.admit(BytesStream(theirs), ("127.0.0.1", 40000)).run)
        client = TrickleClient(ours)
        nursery.start_soon(client.read)
        return client

    return open_client


async def test_first_ping_and_then_every_interval_on_a_silent_client(open_client, autojump_clock):
    client = await open_client()
    await client.trickle(C)
    connected = trio.current_time() - BYTE_GAP
    await trio.sleep(300)
    first, second = client.times_of(b"PING\r\n")
    assert FIRST_PING[0] <= first - connected < FIRST_PING[1]
    assert second == pytest.approx(first + 120, abs=1e-6)
    assert client.output() == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
    assert client.closed and client.received[-1][0] == pytest.approx(first + 240, abs=1e-6)


async def test_messages_completed_byte_by_byte_keep_later_pings_away(open_client, autojump_clock):
    """The first PING is due whatever the client does; then each 14-byte PUB, complete every
    0.14 s, is activity: no timer sends a PING while they flow, the first one after they stop
    does (a full interval after the last message, at the timer's own pace)."""
    client = await open_client(ping_interval=10.0)
    await client.trickle(C)
    connected = trio.current_time() - BYTE_GAP
    for _ in range(250):  # 35 s
        await client.trickle(b"PUB a 1\r\nx\r\n")
    stopped = trio.current_time() - BYTE_GAP
    await trio.sleep(20)  # one timer beat past the interval: that timer PINGs
    first, second = client.times_of(b"PING\r\n")
    assert FIRST_PING[0] <= first - connected < FIRST_PING[1]
    assert stopped + 10 < second <= stopped + 20  # the timers before saw recent messages
    beats = round((second - first) / 10)
    assert second - first == pytest.approx(beats * 10, abs=1e-6)  # on the timer's beat
    assert client.output() == b"PING\r\nPING\r\n" and not client.closed


async def test_bytes_of_an_unfinished_op_are_not_activity(open_client, autojump_clock):
    """A PUB whose payload trickles in for a minute completes nothing: the second timer
    PINGs again and the third finds two PINGs unanswered (ping_max 2): stale."""
    client = await open_client(ping_interval=10.0)
    await client.trickle(C)
    await client.trickle(b"PUB a 120\r\n" + b"x" * 120, gap=0.5)
    first, second = client.times_of(b"PING\r\n")
    assert second == pytest.approx(first + 10, abs=1e-6)
    assert client.output() == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
    assert client.closed and client.received[-1][0] == pytest.approx(first + 20, abs=1e-6)


@pytest.mark.parametrize(("op", "pings"), [(b"PING\r\n", 1), (b"PONG\r\n", 5)])
async def test_a_client_ping_is_activity_a_pong_is_not(open_client, autojump_clock, op, pings):
    """Every 5 s the client sends a PING (the server's timer then has nothing to do) or an
    unsolicited PONG (the server keeps PINGing every 10 s; the PONGs answer them)."""
    client = await open_client(ping_interval=10.0)
    await client.trickle(C)
    for _ in range(10):  # 50 s
        await client.trickle(op)
        await trio.sleep(5 - len(op) * BYTE_GAP)
    assert len(client.times_of(b"PING\r\n")) == pings
    assert not client.closed
