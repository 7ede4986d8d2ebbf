"""Pull consumers end to end with nats-py: durable and ephemeral, fetch batches, acks,
redelivery after the ack wait, nak, term, deliver policies, and state across a restart."""

from __future__ import annotations

import asyncio

import nats.errors
import nats.js.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tests.helpers import TrionatsProcess
from tests.jetstream.conftest import connect, request, run


async def fill(js, stream="WORK", subjects=("work.*",), count=10):
    await js.add_stream(name=stream, subjects=list(subjects))
    for i in range(count):
        await js.publish(f"work.{i % 2}", f"job {i}".encode())


def test_fetch_and_ack_every_message_once(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await fill(js)
        sub = await js.pull_subscribe("work.*", "workers")
        seen = []
        while len(seen) < 10:
            for msg in await sub.fetch(4, timeout=2):
                seen.append(msg.data.decode())
                assert msg.metadata.stream == "WORK" and msg.metadata.consumer == "workers"
                await msg.ack()
        assert seen == [f"job {i}" for i in range(10)]
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=0.5)
        await asyncio.sleep(0.1)  # (the acks are fire-and-forget)
        info = await js.consumer_info("WORK", "workers")
        assert (info.delivered.consumer_seq, info.ack_floor.stream_seq) == (10, 10)
        assert (info.num_ack_pending, info.num_pending) == (0, 0)
        await js.publish("work.1", b"late")
        msg = (await sub.fetch(1, timeout=2))[0]
        assert (msg.data, msg.metadata.sequence.stream) == (b"late", 11)
        await msg.ack_sync()
        await nc.close()

    run(main())


def test_unacknowledged_messages_come_back_after_the_ack_wait(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await fill(js, count=3)
        sub = await js.pull_subscribe("work.*", "slow", config=ConsumerConfig(ack_wait=0.5))
        first = await sub.fetch(3, timeout=2)
        await first[0].ack()
        await first[1].nak()
        await first[2].term()
        again = await sub.fetch(1, timeout=2)
        assert (again[0].data, again[0].metadata.num_delivered) == (b"job 1", 2)
        await asyncio.sleep(0.8)  # the nak'd one is not acked again: back after the ack wait
        third = await sub.fetch(1, timeout=2)
        assert (third[0].data, third[0].metadata.num_delivered) == (b"job 1", 3)
        await third[0].ack()
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=0.8)  # job 2 was terminated
        info = await js.consumer_info("WORK", "slow")
        assert info.num_ack_pending == 0
        await nc.close()

    run(main())


def test_deliver_policies_and_filters(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await fill(js, count=6)
        cases = [
            (ConsumerConfig(deliver_policy=DeliverPolicy.LAST), [b"job 5"]),
            (ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=5),
             [b"job 4", b"job 5"]),
            (ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT), [b"job 4", b"job 5"]),
            (ConsumerConfig(filter_subject="work.0"), [b"job 0", b"job 2", b"job 4"]),
            (ConsumerConfig(filter_subjects=["work.1"]), [b"job 1", b"job 3", b"job 5"]),
        ]
        for number, (config, expected) in enumerate(cases):
            config.durable_name = f"c{number}"
            config.ack_policy = AckPolicy.EXPLICIT
            await js.add_consumer("WORK", config)
            sub = await js.pull_subscribe_bind(f"c{number}", "WORK")
            got = [m.data for m in await sub.fetch(len(expected) + 1, timeout=1)]
            assert got == expected, (number, config)
        await js.add_consumer("WORK", ConsumerConfig(durable_name="new",
                                                     deliver_policy=DeliverPolicy.NEW))
        sub = await js.pull_subscribe_bind("new", "WORK")
        await js.publish("work.9", b"fresh")
        assert [m.data for m in await sub.fetch(5, timeout=1)] == [b"fresh"]
        await nc.close()

    run(main())


def test_no_wait_and_expires_status_messages(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await fill(js, count=2)
        await js.add_consumer("WORK", ConsumerConfig(durable_name="st", ack_policy="explicit"))
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        next_subject = "$JS.API.CONSUMER.MSG.NEXT.WORK.st"
        await nc.publish(next_subject, b'{"batch":5,"no_wait":true}', reply=inbox)
        got = [await sub.next_msg(2) for _ in range(3)]
        assert [m.data for m in got[:2]] == [b"job 0", b"job 1"]
        assert got[2].headers == {"Status": "404", "Description": "No Messages"}
        await nc.publish(next_subject, b'{"batch":2,"expires":100000000}', reply=inbox)
        timeout = await sub.next_msg(2)
        assert timeout.headers["Status"] == "408"
        assert timeout.headers["Nats-Pending-Messages"] == "2"
        await nc.publish(next_subject, b'{"batch":"x"}', reply=inbox)
        bad = await sub.next_msg(2)
        assert bad.headers["Status"] == "400"
        await nc.close()

    run(main())


def test_consumer_api_errors(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await fill(js, count=1)
        cases = [
            ("$JS.API.CONSUMER.CREATE.WORK", {"stream_name": "WORK",
                                              "config": {"durable_name": "d"}}, 10020),
            ("$JS.API.CONSUMER.CREATE.WORK.a", {"stream_name": "WORK",
                                                "config": {"name": "b"}}, 10017),
            ("$JS.API.CONSUMER.CREATE.WORK.a.work.0", {"stream_name": "WORK",
                                                       "config": {"name": "a"}}, 10131),
            ("$JS.API.CONSUMER.CREATE.NOPE.a", {"stream_name": "NOPE",
                                                "config": {"name": "a"}}, 10059),
            ("$JS.API.CONSUMER.CREATE.WORK.a", {"stream_name": "OTHER",
                                                "config": {"name": "a"}}, 10056),
            ("$JS.API.CONSUMER.CREATE.WORK.a", b"{", 10025),
            ("$JS.API.CONSUMER.CREATE.WORK.a", {"stream_name": "WORK",
                                                "config": {"ack_policy": "maybe"}}, 10025),
            ("$JS.API.CONSUMER.CREATE.WORK.a", {"stream_name": "WORK",
                                                "config": {"filter_subject": "a b"}}, 10052),
            ("$JS.API.CONSUMER.INFO.WORK.none", b"", 10014),
            ("$JS.API.CONSUMER.DELETE.WORK.none", b"", 10014),
        ]
        for subject, body, code in cases:
            reply = await request(nc, subject, body)
            assert reply.get("error", {}).get("err_code") == code, (subject, body, reply)
        await nc.close()

    run(main())


def test_consumer_state_survives_a_restart(tmp_path):
    store = str(tmp_path / "store")

    async def first(url):
        nc = await connect(url)
        js = nc.jetstream()
        await fill(js, count=5)
        sub = await js.pull_subscribe("work.*", "keep")
        msgs = await sub.fetch(3, timeout=2)
        await msgs[0].ack_sync()
        await msgs[1].ack_sync()  # the third stays unacknowledged
        await asyncio.sleep(0.5)  # the state is written every 0.25 s
        await nc.close()

    async def second(url):
        nc = await connect(url)
        js = nc.jetstream()
        info = await js.consumer_info("WORK", "keep")
        assert (info.delivered.stream_seq, info.ack_floor.stream_seq) == (3, 2)
        assert (info.num_ack_pending, info.num_pending) == (1, 2)
        sub = await js.pull_subscribe_bind("keep", "WORK")
        msgs = await sub.fetch(2, timeout=2)
        assert [m.data for m in msgs] == [b"job 3", b"job 4"]
        await nc.close()

    with TrionatsProcess("-js", "-sd", store) as server:
        run(first(server.url))
    with TrionatsProcess("-js", "-sd", store) as server:
        run(second(server.url))


def test_waiting_requests_hear_of_the_consumers_deletion(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await fill(js, count=0)
        await js.add_consumer("WORK", ConsumerConfig(durable_name="gone", ack_policy="explicit"))
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$JS.API.CONSUMER.MSG.NEXT.WORK.gone", b'{"batch":1,"expires":5000000000}',
                         reply=inbox)  # fmt: skip
        await nc.flush()
        await js.delete_consumer("WORK", "gone")
        status = await sub.next_msg(2)
        assert status.headers == {"Status": "409", "Description": "Consumer Deleted"}
        await nc.close()

    run(main())


def test_pause_and_resume(js_server):
    async def main():
        import datetime

        nc = await connect(js_server.url)
        js = nc.jetstream()
        await fill(js, count=2)
        sub = await js.pull_subscribe("work.*", "paused")
        until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30))
        reply = await request(nc, "$JS.API.CONSUMER.PAUSE.WORK.paused",
                              {"pause_until": until.isoformat().replace("+00:00", "Z")})  # fmt: skip
        assert reply["paused"] is True and 0 < reply["pause_remaining"] <= 30 * 10**9
        info = await request(nc, "$JS.API.CONSUMER.INFO.WORK.paused")
        assert info["paused"] is True and info["config"]["pause_until"] == reply["pause_until"]
        with pytest.raises(nats.errors.TimeoutError):
            await sub.fetch(1, timeout=0.5)
        reply = await request(nc, "$JS.API.CONSUMER.PAUSE.WORK.paused", {})
        assert reply == {"type": "io.nats.jetstream.api.v1.consumer_pause_response",
                         "paused": False, "pause_until": "0001-01-01T00:00:00Z"}  # fmt: skip
        assert [m.data for m in await sub.fetch(2, timeout=2)] == [b"job 0", b"job 1"]
        await nc.close()

    run(main())
