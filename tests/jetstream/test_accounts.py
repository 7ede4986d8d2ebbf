"""JetStream per account: enabled with limits in one account, absent in another, and each
account's streams capturing that account's messages only."""

from __future__ import annotations

import nats

from tests.helpers import TrionatsProcess
from tests.jetstream.conftest import request, run

CONF = """
jetstream { store_dir: "%s" }
accounts {
  A: { jetstream { max_streams: 1, max_bytes_required: true }, users: [ {user: a, password: a} ] }
  C: { jetstream { max_consumers: 1 }, users: [ {user: c, password: c} ] }
  B: { users: [ {user: b, password: b} ] }
}
"""


def test_accounts_with_and_without_jetstream(tmp_path):
    path = tmp_path / "js.conf"
    path.write_text(CONF % (tmp_path / "store"))

    async def main(port):
        a = await nats.connect(f"nats://a:a@127.0.0.1:{port}")
        b = await nats.connect(f"nats://b:b@127.0.0.1:{port}")
        c = await nats.connect(f"nats://c:c@127.0.0.1:{port}")
        reply = await request(a, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["x"]})
        assert reply["error"]["err_code"] == 10113  # max_bytes_required
        reply = await request(a, "$JS.API.STREAM.CREATE.S",
                              {"name": "S", "subjects": ["x"], "max_bytes": 1000})  # fmt: skip
        assert reply["did_create"] is True
        reply = await request(a, "$JS.API.STREAM.CREATE.T", {"name": "T", "max_bytes": 1000})
        assert reply["error"] == {"code": 400, "err_code": 10027,
                                  "description": "maximum number of streams reached"}  # fmt: skip
        info = await request(a, "$JS.API.INFO")
        assert info["limits"]["max_streams"] == 1 and info["streams"] == 1
        reply = await request(b, "$JS.API.INFO")
        assert reply["error"] == {"code": 503, "err_code": 10039,
                                  "description": "JetStream not enabled for account"}  # fmt: skip
        # Same subject, same stream name, another account: its own stream.
        reply = await request(c, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["x"]})
        assert reply["did_create"] is True
        ack = await request(a, "x", b"from a")
        assert ack == {"stream": "S", "seq": 1}
        assert await request(b, "x", b"from b") is None  # no stream in B: no responders
        for _ in range(2):
            await request(c, "x", b"from c")
        create = {"stream_name": "S", "config": {"durable_name": "one"}}
        assert "error" not in await request(c, "$JS.API.CONSUMER.DURABLE.CREATE.S.one", create)
        create = {"stream_name": "S", "config": {"durable_name": "two"}}
        reply = await request(c, "$JS.API.CONSUMER.DURABLE.CREATE.S.two", create)
        assert reply["error"]["err_code"] == 10026
        a_info = await request(a, "$JS.API.STREAM.INFO.S")
        c_info = await request(c, "$JS.API.STREAM.INFO.S")
        assert (a_info["state"]["messages"], c_info["state"]["messages"]) == (1, 2)
        for nc in (a, b, c):
            await nc.close()

    with TrionatsProcess("-c", str(path)) as server:
        run(main(server.port))
    assert (tmp_path / "store" / "jetstream" / "A" / "streams" / "S" / "stream.db").exists()
    assert (tmp_path / "store" / "jetstream" / "C" / "streams" / "S" / "stream.db").exists()
