"""Push and ordered consumers, DIRECT.GET, and nats-py's key-value store built on them."""

from __future__ import annotations

import asyncio

import nats.js.errors
import pytest

from tests.jetstream.conftest import connect, run


def test_push_consumer_with_acks_and_a_queue_group(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="EVENTS", subjects=["events.>"])
        for i in range(5):
            await js.publish(f"events.{i}", str(i).encode())
        got = []
        done = asyncio.Event()

        async def handler(msg):
            got.append((msg.subject, msg.data))
            await msg.ack()
            if len(got) == 7:
                done.set()

        sub = await js.subscribe("events.>", durable="pusher", cb=handler, manual_ack=True)
        await js.publish("events.late", b"5")
        await js.publish("events.later", b"6")
        await asyncio.wait_for(done.wait(), 5)
        assert [d for _, d in got] == [str(i).encode() for i in range(7)]
        assert got[5][0] == "events.late"
        await asyncio.sleep(0.1)
        info = await js.consumer_info("EVENTS", "pusher")
        assert (info.num_ack_pending, info.delivered.stream_seq, info.num_waiting) == (0, 7, 0)
        await sub.unsubscribe()
        await nc.close()

    run(main())


def test_ordered_consumer_reads_everything_in_order(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="LOG", subjects=["log"])
        for i in range(20):
            await js.publish("log", str(i).encode())
        sub = await js.subscribe("log", ordered_consumer=True)
        got = [int((await sub.next_msg(2)).data) for _ in range(20)]
        assert got == list(range(20))
        await sub.unsubscribe()
        await nc.close()

    run(main())


def test_direct_get(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="D", subjects=["d.*"], allow_direct=True)
        await js.publish("d.a", b"one", headers={"X": "1"})
        await js.publish("d.b", b"two")
        msg = await js.get_msg("D", subject="d.a", direct=True)
        assert (msg.data, msg.seq, msg.subject, msg.headers["X"]) == (b"one", 1, "d.a", "1")
        msg = await js.get_msg("D", seq=2, direct=True)
        assert msg.data == b"two"
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.get_msg("D", subject="d.none", direct=True)
        await nc.close()

    run(main())


def test_key_value_put_get_delete_history_keys_watch(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        kv = await js.create_key_value(bucket="settings", history=5)
        assert await kv.put("colour", b"red") == 1
        assert await kv.put("colour", b"blue") == 2
        await kv.put("size", b"L")
        entry = await kv.get("colour")
        assert (entry.value, entry.revision) == (b"blue", 2)
        assert await kv.update("size", b"XL", last=3) == 4
        with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
            await kv.update("size", b"S", last=3)
        assert await kv.create("shape", b"round") == 5
        with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
            await kv.create("shape", b"square")
        history = await kv.history("colour")
        assert [e.value for e in history] == [b"red", b"blue"]
        assert sorted(await kv.keys()) == ["colour", "shape", "size"]
        await kv.delete("shape")
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await kv.get("shape")
        assert sorted(await kv.keys()) == ["colour", "size"]
        await kv.purge("colour")
        with pytest.raises(nats.js.errors.KeyNotFoundError):
            await kv.get("colour")
        watcher = await kv.watchall()
        initial = []
        while True:
            update = await watcher.updates(timeout=2)
            if update is None:
                break
            initial.append((update.key, update.value, update.operation))
        assert ("size", b"XL", None) in initial
        await kv.put("size", b"M")
        update = await watcher.updates(timeout=2)
        assert (update.key, update.value) == ("size", b"M")
        await watcher.stop()
        status = await kv.status()
        assert status.bucket == "settings" and status.history == 5
        await nc.close()

    run(main())


def test_object_store_put_get_list_delete(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        store = await js.create_object_store("docs")
        data = bytes(range(256)) * 1000
        info = await store.put("big.bin", data)
        assert (info.size, info.chunks) == (len(data), 2)
        assert (await store.get("big.bin")).data == data
        assert [o.name for o in await store.list()] == ["big.bin"]
        await store.delete("big.bin")
        with pytest.raises(nats.js.errors.ObjectNotFoundError):
            await store.get("big.bin")
        await nc.close()

    run(main())
