"""nats-py (the asyncio NATS client) end to end against trionats run as a real subprocess."""

from __future__ import annotations

import asyncio
import socket
import time

import nats
import nats.errors
import pytest

from tests.helpers import TrionatsProcess

#: Seconds any single wait in these tests may take before the test fails.
TIMEOUT = 5.0
MAX_PAYLOAD = 1048576


@pytest.fixture(scope="module")
def trionats():
    """One trionats process for the module; tests use distinct subjects so they do not interfere."""
    process = TrionatsProcess()
    yield process
    code = process.stop()
    assert code == 0, process.log()


#: Connections opened by `connect` during the current `run`, closed by it even if a test fails.
_opened: list = []


def run(coro):
    """Run a nats-py coroutine to completion with an overall deadline, then close its clients."""

    async def bounded():
        try:
            return await asyncio.wait_for(coro, 30)
        finally:
            for nc in _opened:
                if not nc.is_closed:
                    await nc.close()
            _opened.clear()

    return asyncio.run(bounded())


async def connect(url: str, **kwargs):
    kwargs.setdefault("allow_reconnect", False)
    kwargs.setdefault("connect_timeout", TIMEOUT)
    nc = await nats.connect(url, **kwargs)
    _opened.append(nc)
    return nc


async def sync(nc) -> None:
    """Round trip to the server once everything `nc` buffered has been written.

    nats-py 2.16's flush() writes its PING straight to the socket, ahead of SUB/PUB commands
    still in its pending buffer (they go out when its flusher task runs), so the PONG may come
    back before the server saw them - against nats-server too. Let the flusher empty the
    buffer first; the second PING then follows every earlier command.
    """
    await nc.flush()
    deadline = time.monotonic() + TIMEOUT
    while nc.pending_data_size and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    await nc.flush()


async def collect(sub, count: int, timeout: float = TIMEOUT) -> list:
    """The next `count` messages of a subscription without a callback."""
    return [await sub.next_msg(timeout=timeout) for _ in range(count)]


async def assert_no_more(sub, wait: float = 0.2) -> None:
    with pytest.raises(nats.errors.TimeoutError):
        msg = await sub.next_msg(timeout=wait)
        pytest.fail(f"unexpected message {msg.subject} {msg.data!r}")


def test_connect_sees_server_info(trionats):
    async def main():
        nc = await connect(trionats.url)
        try:
            assert nc.is_connected
            assert nc.connected_url.netloc == f"127.0.0.1:{trionats.port}"
            assert nc.max_payload == MAX_PAYLOAD
            assert nc._server_info["headers"] is True
            assert nc._server_info["proto"] == 1
            assert nc._server_info["version"] == "2.15.1"
            version = nc.connected_server_version
            assert (version.major, version.minor, version.patch) == (2, 15, 1)
            assert nc.client_id >= 1
        finally:
            await nc.close()
        assert nc.is_closed

    run(main())


def test_pub_sub(trionats):
    async def main():
        nc = await connect(trionats.url)
        sub = await nc.subscribe("ps.foo")
        await nc.publish("ps.foo", b"hello")
        await nc.publish("ps.other", b"not for us")
        await nc.publish("ps.foo", b"")
        await nc.publish("ps.foo", b"world", reply="ps.reply")
        await sync(nc)
        msgs = await collect(sub, 3)
        assert [(m.subject, m.data, m.reply) for m in msgs] == [
            ("ps.foo", b"hello", ""),
            ("ps.foo", b"", ""),
            ("ps.foo", b"world", "ps.reply"),
        ]
        await assert_no_more(sub)
        await nc.close()

    run(main())


def test_two_clients_flush_round_trip(trionats):
    async def main():
        sub_nc = await connect(trionats.url, name="subscriber")
        pub_nc = await connect(trionats.url, name="publisher")
        assert sub_nc.client_id != pub_nc.client_id
        sub = await sub_nc.subscribe("two.clients")
        await sync(sub_nc)  # the SUB is registered once the PONG is back
        for i in range(10):
            await pub_nc.publish("two.clients", f"m{i}".encode())
        await sync(pub_nc)
        msgs = await collect(sub, 10)
        assert [m.data for m in msgs] == [f"m{i}".encode() for i in range(10)]
        rtt = await pub_nc.rtt()
        assert 0 < rtt < TIMEOUT
        assert pub_nc.stats["out_msgs"] == 10
        assert sub_nc.stats["in_msgs"] == 10
        await assert_no_more(sub)
        await pub_nc.close()
        await sub_nc.close()

    run(main())


def test_echo_false_skips_own_messages(trionats):
    async def main():
        quiet = await connect(trionats.url, no_echo=True)
        other = await connect(trionats.url)
        mine = await quiet.subscribe("echo.x")
        theirs = await other.subscribe("echo.x")
        await sync(quiet)
        await sync(other)
        await quiet.publish("echo.x", b"from quiet")
        await sync(quiet)
        await other.publish("echo.x", b"from other")
        await sync(other)
        assert [m.data for m in await collect(theirs, 2)] == [b"from quiet", b"from other"]
        assert [m.data for m in await collect(mine, 1)] == [b"from other"]
        await assert_no_more(mine)
        await quiet.close()
        await other.close()

    run(main())


def test_wildcards(trionats):
    async def main():
        nc = await connect(trionats.url)
        star = await nc.subscribe("wc.*")
        tail = await nc.subscribe("wc.>")
        middle = await nc.subscribe("wc.*.end")
        exact = await nc.subscribe("wc.a")
        subjects = ["wc", "wc.a", "wc.b", "wc.a.b", "wc.x.end", "wc.a.b.c", "wcx.a"]
        for subject in subjects:
            await nc.publish(subject, subject.encode())
        await sync(nc)
        assert [m.subject for m in await collect(star, 2)] == ["wc.a", "wc.b"]
        assert [m.subject for m in await collect(tail, 5)] == [
            "wc.a",
            "wc.b",
            "wc.a.b",
            "wc.x.end",
            "wc.a.b.c",
        ]
        assert [(m.subject, m.data) for m in await collect(middle, 1)] == [
            ("wc.x.end", b"wc.x.end")
        ]
        assert [m.subject for m in await collect(exact, 1)] == ["wc.a"]
        for sub in (star, tail, middle, exact):
            await assert_no_more(sub, 0.05)
        await nc.close()

    run(main())


def test_request_reply(trionats):
    async def main():
        server_nc = await connect(trionats.url)
        client_nc = await connect(trionats.url)
        seen = []

        async def handler(msg):
            seen.append(msg.data)
            await msg.respond(b"echo:" + msg.data)

        await server_nc.subscribe("rr.service", cb=handler)
        await sync(server_nc)
        for i in range(5):
            reply = await client_nc.request("rr.service", f"q{i}".encode(), timeout=TIMEOUT)
            assert reply.data == f"echo:q{i}".encode()
        # Many requests in flight at once share nats-py's one muxed inbox subscription.
        replies = await asyncio.gather(
            *(client_nc.request("rr.service", str(i).encode(), timeout=TIMEOUT) for i in range(50))
        )
        assert [r.data for r in replies] == [f"echo:{i}".encode() for i in range(50)]
        # The old style uses a fresh inbox subscription with auto-unsubscribe per request.
        reply = await client_nc.request("rr.service", b"old", timeout=TIMEOUT, old_style=True)
        assert reply.data == b"echo:old"
        assert len(seen) == 56
        await client_nc.close()
        await server_nc.close()

    run(main())


def test_no_responders(trionats):
    async def main():
        nc = await connect(trionats.url)
        started = time.monotonic()
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("nr.nobody.home", b"anyone?", timeout=TIMEOUT)
        # The server's 503 answers at once; a timeout would take the full TIMEOUT.
        assert time.monotonic() - started < TIMEOUT / 2
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("nr.nobody.home", b"old", timeout=TIMEOUT, old_style=True)
        # Once someone serves the subject, the same request is answered.
        async def here(msg):
            await msg.respond(b"here")

        await nc.subscribe("nr.nobody.home", cb=here)
        await sync(nc)
        assert (await nc.request("nr.nobody.home", b"anyone?", timeout=TIMEOUT)).data == b"here"
        await nc.close()

    run(main())


def test_queue_group_splits_messages(trionats):
    total = 300

    async def main():
        members = [await connect(trionats.url) for _ in range(3)]
        watcher = await connect(trionats.url)
        received: list[list[bytes]] = [[] for _ in members]

        def make_cb(index):
            async def cb(msg):
                received[index].append(msg.data)

            return cb

        for index, nc in enumerate(members):
            await nc.subscribe("qg.work", queue="workers", cb=make_cb(index))
            await sync(nc)
        everyone = await watcher.subscribe("qg.work")
        other_group = await watcher.subscribe("qg.work", queue="auditors")
        await sync(watcher)

        pub = await connect(trionats.url)
        expected = [f"job-{i}".encode() for i in range(total)]
        for data in expected:
            await pub.publish("qg.work", data)
        await sync(pub)

        # A plain subscriber sees all; the single member of another group sees all.
        assert [m.data for m in await collect(everyone, total)] == expected
        assert [m.data for m in await collect(other_group, total)] == expected
        deadline = time.monotonic() + TIMEOUT
        while sum(map(len, received)) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # room for a wrongly duplicated delivery to show up
        merged = sorted(d for part in received for d in part)
        assert merged == sorted(expected)  # each message to exactly one member
        assert all(len(part) > 0 for part in received), [len(p) for p in received]
        for part in received:  # each member sees its share in publish order
            assert part == sorted(part, key=expected.index)
        for nc in [*members, watcher, pub]:
            await nc.close()

    run(main())


def test_headers(trionats):
    async def main():
        nc = await connect(trionats.url)
        sub = await nc.subscribe("hdr.x")
        await nc.publish("hdr.x", b"body", headers={"Trace-Id": "abc123", "Mixed-Case": "Va lue"})
        await nc.publish("hdr.x", b"", headers={"Only": "header"})
        await nc.publish("hdr.x", b"plain")
        await sync(nc)
        first, second, third = await collect(sub, 3)
        assert first.data == b"body"
        assert first.headers == {"Trace-Id": "abc123", "Mixed-Case": "Va lue"}
        assert second.data == b""
        assert second.headers == {"Only": "header"}
        assert third.data == b"plain"
        assert third.headers is None

        async def responder(msg):
            # Msg.respond() would echo the request's headers; answer with our own instead.
            await nc.publish(msg.reply, msg.data[::-1], headers={"Seen": msg.headers["Ask"]})

        await nc.subscribe("hdr.svc", cb=responder)
        reply = await nc.request("hdr.svc", b"abc", timeout=TIMEOUT, headers={"Ask": "42"})
        assert reply.data == b"cba"
        assert reply.headers == {"Seen": "42"}
        await nc.close()

    run(main())


def test_auto_unsubscribe(trionats):
    async def main():
        sub_nc = await connect(trionats.url)
        pub_nc = await connect(trionats.url)
        limited = await sub_nc.subscribe("au.limited")
        await limited.unsubscribe(limit=3)
        got_cb = []

        async def cb(msg):
            got_cb.append(msg.data)

        await sub_nc.subscribe("au.max", cb=cb, max_msgs=2)
        await sync(sub_nc)
        before = sub_nc.stats["in_msgs"]
        for i in range(5):
            await pub_nc.publish("au.limited", str(i).encode())
        await sync(pub_nc)
        assert [m.data for m in await collect(limited, 3)] == [b"0", b"1", b"2"]
        await sync(sub_nc)
        # UNSUB <sid> 3 went to the server, which itself stopped after 3 deliveries
        # (nats-py would also drop extra ones silently, so count what arrived).
        assert sub_nc.stats["in_msgs"] - before == 3
        # subscribe(max_msgs=2) is enforced by nats-py alone (it sends no UNSUB <sid> 2).
        for i in range(5):
            await pub_nc.publish("au.max", str(i).encode())
        await sync(pub_nc)
        deadline = time.monotonic() + TIMEOUT
        while len(got_cb) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await sync(sub_nc)
        assert got_cb == [b"0", b"1"]
        # And the interest is gone: a request to the subject now has no responders.
        with pytest.raises(nats.errors.NoRespondersError):
            await pub_nc.request("au.limited", b"?", timeout=TIMEOUT)
        await sub_nc.close()
        await pub_nc.close()

    run(main())


def test_drain_subscription(trionats):
    total = 200

    async def main():
        sub_nc = await connect(trionats.url)
        pub_nc = await connect(trionats.url)
        handled = []
        gate = asyncio.Event()

        async def slow(msg):
            await gate.wait()  # hold every message until the drain has begun
            handled.append(msg.data)

        sub = await sub_nc.subscribe("drain.sub", cb=slow)
        await sync(sub_nc)
        expected = [str(i).encode() for i in range(total)]
        for data in expected:
            await pub_nc.publish("drain.sub", data)
        await sync(pub_nc)  # the server has queued every message to the subscriber
        draining = asyncio.create_task(sub.drain())
        await asyncio.sleep(0.05)
        assert not draining.done()  # the drain waits for the messages still pending
        gate.set()
        await asyncio.wait_for(draining, TIMEOUT)
        assert handled == expected
        # The drain's UNSUB reached the server: it no longer delivers to that subscription.
        await sync(sub_nc)
        in_msgs = sub_nc.stats["in_msgs"]
        await pub_nc.publish("drain.sub", b"late")
        await sync(pub_nc)
        await sync(sub_nc)
        assert sub_nc.stats["in_msgs"] == in_msgs
        assert handled == expected
        assert sub_nc.is_connected  # draining one subscription leaves the connection open
        await sub_nc.close()
        await pub_nc.close()

    run(main())


def test_drain_connection(trionats):
    total = 200

    async def main():
        closed = asyncio.Event()

        async def on_closed():
            closed.set()

        sub_nc = await connect(trionats.url, closed_cb=on_closed)
        pub_nc = await connect(trionats.url)
        handled = []
        gate = asyncio.Event()

        async def slow(msg):
            await gate.wait()  # hold every message until the drain has begun
            handled.append(msg.data)

        await sub_nc.subscribe("drain.conn", cb=slow)
        await sync(sub_nc)
        expected = [str(i).encode() for i in range(total)]
        for data in expected:
            await pub_nc.publish("drain.conn", data)
        await sync(pub_nc)
        draining = asyncio.create_task(sub_nc.drain())
        await asyncio.sleep(0.05)
        assert not draining.done()
        assert not closed.is_set()
        gate.set()
        await asyncio.wait_for(draining, TIMEOUT)
        assert handled == expected
        await asyncio.wait_for(closed.wait(), TIMEOUT)
        assert sub_nc.is_closed

        # Draining a publisher sends what it buffered before closing.
        watcher = await connect(trionats.url)
        sink = await watcher.subscribe("drain.pub")
        await sync(watcher)
        for data in expected:
            await pub_nc.publish("drain.pub", data)
        await pub_nc.drain()
        assert pub_nc.is_closed
        assert [m.data for m in await collect(sink, total)] == expected
        await watcher.close()

    run(main())


def test_max_payload(trionats):
    payload = bytes(range(256)) * (MAX_PAYLOAD // 256)
    assert len(payload) == MAX_PAYLOAD

    async def main():
        nc = await connect(trionats.url)
        sub = await nc.subscribe("big.x")
        await nc.publish("big.x", payload)
        await sync(nc)
        msg = await sub.next_msg(timeout=TIMEOUT)
        assert len(msg.data) == MAX_PAYLOAD
        assert msg.data == payload
        with pytest.raises(nats.errors.MaxPayloadError):
            await nc.publish("big.x", payload + b"!")
        # The refused publish did not disturb the connection.
        await nc.publish("big.x", b"small")
        await sync(nc)
        assert (await sub.next_msg(timeout=TIMEOUT)).data == b"small"
        await nc.close()

    run(main())


def test_max_payload_refused_by_server(trionats):
    """The server refuses one byte over max_payload on its own (a client without the check)."""
    with socket.create_connection(("127.0.0.1", trionats.port), timeout=TIMEOUT) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"INFO {")
        sock.sendall(b'CONNECT {"verbose":false}\r\nPUB big.raw %d\r\n' % (MAX_PAYLOAD + 1))
        assert reader.readline() == b"-ERR 'Maximum Payload Violation'\r\n"
        assert reader.read() == b""  # and closes the connection


def test_order_of_20000_messages(trionats):
    total = 20000

    async def main():
        sub_nc = await connect(trionats.url)
        pub_nc = await connect(trionats.url)
        received = []
        done = asyncio.Event()

        async def cb(msg):
            received.append(msg.data)
            if len(received) == total:
                done.set()

        await sub_nc.subscribe("order.x", cb=cb)
        await sync(sub_nc)
        for i in range(total):
            await pub_nc.publish("order.x", b"%d" % i)
        await sync(pub_nc)
        await asyncio.wait_for(done.wait(), 20)
        await sync(sub_nc)
        assert len(received) == total
        assert received == [b"%d" % i for i in range(total)]
        await pub_nc.close()
        await sub_nc.close()

    run(main())
