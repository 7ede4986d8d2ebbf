"""Streams end to end with nats-py's JetStream client against a trionats process: publish
acknowledgements, limits, de-duplication, expectations, message get/delete, purge, memory
and file storage, and stored data surviving a restart and a SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal

import nats
import nats.js.errors
import pytest
from nats.js.api import DiscardPolicy, StorageType, StreamConfig

from tests.helpers import TrionatsProcess
from tests.jetstream.conftest import connect, request, run


def test_publish_acks_and_stream_info(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        acks = [await js.publish(f"orders.{i % 3}", f"order {i}".encode()) for i in range(10)]
        assert [(a.stream, a.seq) for a in acks] == [("ORDERS", i) for i in range(1, 11)]
        info = await js.stream_info("ORDERS")
        assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (10, 1, 10)
        msg = await js.get_msg("ORDERS", 4)
        assert (msg.subject, msg.data, msg.seq) == ("orders.0", b"order 3", 4)
        last = await js.get_last_msg("ORDERS", "orders.1")
        assert last.seq == 8
        await nc.close()

    run(main())


def test_limits_discard_and_dedup(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="OLD", subjects=["old"], max_msgs=3, storage=StorageType.MEMORY)
        for i in range(5):
            await js.publish("old", str(i).encode())
        info = await js.stream_info("OLD")
        assert (info.state.messages, info.state.first_seq) == (3, 3)
        await js.add_stream(name="NEW", subjects=["new"], max_msgs=1, discard=DiscardPolicy.NEW)
        await js.publish("new", b"1")
        with pytest.raises(nats.js.errors.APIError) as error:
            await js.publish("new", b"2")
        assert error.value.err_code == 10077
        assert error.value.description == "maximum messages exceeded"
        await js.add_stream(name="PER", subjects=["per.*"], max_msgs_per_subject=2)
        for i in range(4):
            await js.publish("per.a", str(i).encode())
        await js.publish("per.b", b"x")
        info = await js.stream_info("PER")
        assert (info.state.messages, info.state.first_seq) == (3, 3)
        first = await js.publish("per.c", b"once", headers={"Nats-Msg-Id": "abc"})
        again = await js.publish("per.c", b"once", headers={"Nats-Msg-Id": "abc"})
        assert (first.seq, first.duplicate, again.seq, again.duplicate) == (6, None, 6, True)
        await nc.close()

    run(main())


def test_max_msg_size_and_max_bytes(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="SMALL", subjects=["small"], max_msg_size=10, max_bytes=200)
        with pytest.raises(nats.js.errors.APIError) as error:
            await js.publish("small", b"x" * 11)
        assert error.value.err_code == 10054
        for _ in range(10):
            await js.publish("small", b"x" * 10)
        info = await js.stream_info("SMALL")
        assert info.state.bytes <= 200 and info.state.last_seq == 10  # 45 bytes each
        assert info.state.messages == 4
        await nc.close()

    run(main())


def test_max_age_expires_messages(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="AGE", subjects=["age"], max_age=0.3)
        await js.publish("age", b"x")
        assert (await js.stream_info("AGE")).state.messages == 1
        for _ in range(40):  # expiry runs every 0.25 s
            await asyncio.sleep(0.05)
            if (await js.stream_info("AGE")).state.messages == 0:
                break
        info = await js.stream_info("AGE")
        assert (info.state.messages, info.state.first_seq) == (0, 2)
        await nc.close()

    run(main())


def test_expected_headers(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="EXP", subjects=["exp.*"])
        await js.publish("exp.a", b"1")
        await js.publish("exp.a", b"2", headers={"Nats-Expected-Last-Sequence": "1"})
        with pytest.raises(nats.js.errors.APIError) as error:
            await js.publish("exp.b", b"3", headers={"Nats-Expected-Last-Sequence": "1"})
        assert (error.value.err_code, error.value.description) == (10071, "wrong last sequence: 2")
        await js.publish("exp.b", b"3", headers={"Nats-Expected-Last-Subject-Sequence": "0"})
        with pytest.raises(nats.js.errors.APIError) as error:
            await js.publish("exp.a", b"4", headers={"Nats-Expected-Last-Subject-Sequence": "1"})
        assert error.value.description == "wrong last sequence: 2"
        with pytest.raises(nats.js.errors.APIError) as error:
            await js.publish("exp.a", b"5", stream="OTHER")
        assert error.value.err_code == 10060
        await nc.close()

    run(main())


def test_purge_delete_update_and_delete_stream(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="P", subjects=["p.*"])
        for i in range(10):
            await js.publish(f"p.{i % 2}", b"x")
        await js.delete_msg("P", 1)
        reply = await request(nc, "$JS.API.STREAM.PURGE.P", {"filter": "p.0", "keep": 2})
        assert reply["purged"] == 2  # 1 was deleted: 3, 5 go; 7, 9 stay
        reply = await request(nc, "$JS.API.STREAM.PURGE.P", {"seq": 8})
        assert reply["purged"] == 4  # 2, 4, 6, 7
        info = await js.stream_info("P")
        assert (info.state.messages, info.state.first_seq) == (3, 8)
        await js.update_stream(StreamConfig(name="P", subjects=["p.*", "q"], max_msgs=2))
        info = await js.stream_info("P")
        assert (info.state.messages, info.config.subjects) == (2, ["p.*", "q"])
        assert (await js.publish("q", b"y")).seq == 11
        assert await js.delete_stream("P")
        assert await js.streams_info() == []
        await nc.close()

    run(main())


def test_publish_without_jetstream_on_the_subject_gets_no_responders(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await js.publish("nowhere", b"x")
        await nc.close()

    run(main())


# --- surviving restarts ----------------------------------------------------------------------


def test_streams_survive_a_restart(tmp_path):
    store = str(tmp_path / "store")

    async def fill(url):
        nc = await connect(url)
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"], max_msgs_per_subject=2)
        await js.add_stream(name="MEM", subjects=["mem"], storage=StorageType.MEMORY)
        for i in range(6):
            await js.publish(f"keep.{i % 2}", str(i).encode(), headers={"Nats-Msg-Id": f"id{i}"})
        await js.publish("mem", b"gone after a restart")
        await js.delete_msg("KEEP", 6)
        await nc.close()

    async def check(url):
        nc = await connect(url)
        js = nc.jetstream()
        info = await js.stream_info("KEEP")
        assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (3, 3, 6)
        assert (await js.get_msg("KEEP", 5)).data == b"4"
        again = await js.publish("keep.0", b"4", headers={"Nats-Msg-Id": "id4"})
        assert (again.seq, again.duplicate) == (5, True)  # the window was restored
        assert (await js.publish("keep.1", b"6")).seq == 7
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.stream_info("MEM")
        await nc.close()

    with TrionatsProcess("-js", "-sd", store) as first:
        run(fill(first.url))
    with TrionatsProcess("-js", "-sd", store) as second:
        run(check(second.url))
        assert "Restored 3 messages for stream '$G > KEEP'" in second.log()


def test_every_acknowledged_message_survives_sigkill(tmp_path):
    """Publish with acknowledgements as fast as they come, kill -9 the server mid-stream,
    restart it: every message whose acknowledgement arrived is there."""
    store = str(tmp_path / "store")
    acked: list[int] = []

    async def publish_until_killed(process):
        nc = await connect(process.url)
        js = nc.jetstream()
        await js.add_stream(name="SAFE", subjects=["safe"])
        pending = set()
        for i in range(3000):
            pending.add(asyncio.ensure_future(js.publish("safe", str(i).encode())))
            if i == 1500:
                os.kill(process.process.pid, signal.SIGKILL)
            if len(pending) >= 64 or i == 1500:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    if not future.exception():
                        acked.append(future.result().seq)
            if i >= 1500:
                break
        done, _ = await asyncio.wait(pending, timeout=2) if pending else (set(), None)
        acked.extend(f.result().seq for f in done if not f.exception())
        try:
            await nc.close()
        except Exception:
            pass

    first = TrionatsProcess("-js", "-sd", store)
    try:
        run(publish_until_killed(first))
    finally:
        first.stop()
    assert len(acked) > 100

    async def check(url):
        nc = await connect(url)
        reply = await request(nc, "$JS.API.STREAM.INFO.SAFE")
        state = reply["state"]
        assert state["first_seq"] == 1 and state["last_seq"] >= max(acked)
        assert state["messages"] == state["last_seq"]
        for seq in (min(acked), max(acked)):
            got = await request(nc, "$JS.API.STREAM.MSG.GET.SAFE", {"seq": seq})
            assert "message" in got, got
        await nc.close()

    with TrionatsProcess("-js", "-sd", store) as second:
        run(check(second.url))


def test_hostile_requests_get_errors_and_the_server_stays_up(js_server):
    async def main():
        nc = await connect(js_server.url)
        deep = b"[" * 20000 + b"]" * 20000
        cases = [
            ("$JS.API.STREAM.CREATE.H", deep, 10025),
            ("$JS.API.STREAM.CREATE.H", b'{"name":' + b"[" * 5000 + b"]" * 5000 + b"}", 10025),
            ("$JS.API.STREAM.CREATE.H", b'{"name":"H","max_msgs":1e400}', 10025),
            ("$JS.API.STREAM.CREATE.H", b'{"name":"H","max_msgs":' + b"9" * 5000 + b"}", 10025),
            ("$JS.API.STREAM.CREATE.H", b'{"name":"H","subjects":"one"}', 10025),
            ("$JS.API.STREAM.CREATE.H", b'{"name":"H","metadata":{"a":1}}', 10025),
            ("$JS.API.STREAM.CREATE.H", b'{"name":"H","subjects":["a b"]}', 10052),
            ("$JS.API.STREAM.CREATE.H", b'{"name":"H","max_age":-1}', 10052),
            ("$JS.API.STREAM.CREATE.H", b'{"name":"H","max_msg_size":4294967296}', 10025),
            ("$JS.API.STREAM.CREATE.H", b'"\\ud800"', 10025),
            ("$JS.API.STREAM.NAMES", b'{"offset":"x"}', 10025),
            ("$JS.API.STREAM.MSG.GET.H", b"\xff\xfe", 10025),
        ]
        for subject, body, code in cases:
            reply = await request(nc, subject, body)
            assert reply.get("error", {}).get("err_code") == code, (body[:60], reply)
        reply = await request(nc, "$JS.API.STREAM.CREATE.OK", {"name": "OK"})
        assert reply["did_create"] is True
        await nc.close()

    run(main())
    assert "Internal error" not in js_server.log()


def test_storage_limits_of_the_server_and_the_account(tmp_path):
    conf = tmp_path / "limits.conf"
    conf.write_text(f"""
        jetstream {{ store_dir: "{tmp_path / 'store'}", max_memory_store: 10KB, max_file_store: 1MB }}
        accounts {{
          A: {{ jetstream {{ max_store: 2KB }}, users: [ {{user: a, password: a}} ] }}
          B: {{ jetstream: enabled, users: [ {{user: b, password: b}} ] }}
        }}
    """)

    async def main(port):
        a = await nats.connect(f"nats://a:a@127.0.0.1:{port}")
        b = await nats.connect(f"nats://b:b@127.0.0.1:{port}")
        reply = await request(b, "$JS.API.STREAM.CREATE.M",
                              {"name": "M", "storage": "memory", "max_bytes": 20000})  # fmt: skip
        assert reply["error"]["err_code"] == 10028
        reply = await request(b, "$JS.API.STREAM.CREATE.M", {"name": "M", "storage": "memory"})
        assert reply["did_create"]
        for _ in range(10):
            assert "seq" in await request(b, "M", b"x" * 1000)
        reply = await request(b, "M", b"x" * 1000)
        assert reply["error"] == {"code": 503, "err_code": 10023, "description": "insufficient resources"}
        await request(a, "$JS.API.STREAM.CREATE.F", {"name": "F"})
        assert "seq" in await request(a, "F", b"x" * 1000)
        reply = await request(a, "F", b"x" * 1000)
        assert reply["error"]["err_code"] == 10002
        await a.close()
        await b.close()

    with TrionatsProcess("-c", str(conf)) as server:
        run(main(server.port))


def test_gaps_are_tracked_as_messages_come_and_go():
    from trionats.jetstream.stream import Stream

    config = {"name": "G", "storage": "memory", "max_msgs": -1, "max_bytes": -1,
              "max_msgs_per_subject": -1, "max_age": 0, "discard": "old",
              "duplicate_window": 0}  # fmt: skip
    stream = Stream("$G", config, 0)
    for i in range(10):
        stream.store(f"s.{i % 3}", b"", b"x", i)
    for seq in (5, 3, 1, 2, 9):
        stream.delete(seq)
    assert list(stream.msgs) == [4, 6, 7, 8, 10]
    assert stream.gaps == [5, 9]
    assert [stream.count_from(s) for s in range(0, 12)] == [5, 5, 5, 5, 5, 4, 4, 3, 2, 1, 1, 0]
    assert stream.state()["num_deleted"] == 2
    stream.delete(4)
    assert stream.gaps == [9] and stream.first_seq == 6
    restored = Stream("$G", config, 0)
    restored.restore([(seq, *msg) for seq, msg in stream.msgs.items()], 10)
    assert restored.gaps == [9] and restored.count_from(7) == 3
