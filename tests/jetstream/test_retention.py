"""Work-queue and interest retention: messages leave the stream once consumed."""

from __future__ import annotations

import asyncio

import nats.js.errors
import pytest
from nats.js.api import ConsumerConfig, RetentionPolicy

from tests.jetstream.conftest import connect, request, run


def test_work_queue(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="Q", subjects=["q.*"], retention=RetentionPolicy.WORK_QUEUE)
        for i in range(4):
            await js.publish(f"q.{i % 2}", str(i).encode())
        sub = await js.pull_subscribe("q.*", "workers", stream="Q")
        msgs = await sub.fetch(3, timeout=2)
        for msg in msgs[:2]:
            await msg.ack_sync()
        info = await js.stream_info("Q")
        assert (info.state.messages, info.state.first_seq) == (2, 3)
        # One consumer of everything: no other, filtered or not; deliver all, explicit acks.
        for config, code in [
            (ConsumerConfig(durable_name="second"), 10099),
            (ConsumerConfig(durable_name="f", filter_subject="q.1"), 10099),
            (ConsumerConfig(durable_name="n", ack_policy="none"), 10098),
            (ConsumerConfig(durable_name="l", deliver_policy="last"), 10101),
        ]:
            with pytest.raises(nats.js.errors.APIError) as error:
                await js.add_consumer("Q", config)
            assert error.value.err_code == code, config
        await js.delete_consumer("Q", "workers")
        await js.add_consumer("Q", ConsumerConfig(durable_name="zero", filter_subject="q.0"))
        with pytest.raises(nats.js.errors.APIError) as error:
            await js.add_consumer("Q", ConsumerConfig(durable_name="also", filter_subject="q.*"))
        assert error.value.err_code == 10100
        await js.add_consumer("Q", ConsumerConfig(durable_name="one", filter_subject="q.1"))
        await nc.close()

    run(main())


def test_interest(js_server):
    async def main():
        nc = await connect(js_server.url)
        js = nc.jetstream()
        await js.add_stream(name="I", subjects=["i"], retention=RetentionPolicy.INTEREST)
        ack = await js.publish("i", b"nobody listens")
        info = await js.stream_info("I")
        assert (ack.seq, info.state.messages, info.state.last_seq) == (1, 0, 1)
        a = await js.pull_subscribe("i", "a")
        b = await js.pull_subscribe("i", "b")
        await js.publish("i", b"for both")
        (from_a,) = await a.fetch(1, timeout=2)
        await from_a.ack_sync()
        assert (await js.stream_info("I")).state.messages == 1  # b has not acknowledged
        (from_b,) = await b.fetch(1, timeout=2)
        await from_b.ack_sync()
        await asyncio.sleep(0.05)
        assert (await js.stream_info("I")).state.messages == 0
        reply = await request(nc, "$JS.API.STREAM.INFO.I")
        assert reply["config"]["retention"] == "interest"
        await nc.close()

    run(main())
