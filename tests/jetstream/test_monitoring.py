"""JetStream in the monitoring endpoints: /varz `jetstream`, /jsz, /healthz, INFO's flag,
compared with nats-server's shapes."""

from __future__ import annotations

import json
import urllib.request

from tests.helpers import NatsServerProcess, TrionatsProcess, free_port
from tests.jetstream.conftest import connect, run


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def shape(value):
    """A JSON value's keys and types, recursively (the values themselves differ)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


def test_varz_jsz_healthz_have_nats_servers_shapes(tmp_path):
    ours_port, theirs_port = free_port(), free_port()
    args = ("-js", "-sd")
    with TrionatsProcess(*args, str(tmp_path / "a"), "-m", str(ours_port)) as ours, \
         NatsServerProcess(*args, str(tmp_path / "b"), "-m", str(theirs_port)):  # fmt: skip
        for path in ("/varz", "/jsz", "/jsz?accounts=true", "/healthz?js-enabled-only=true"):
            status, mine = get(ours_port, path)
            reference_status, reference = get(theirs_port, path)
            assert status == reference_status == 200
            if path == "/varz":
                mine, reference = mine["jetstream"], reference["jetstream"]
            if path.startswith("/jsz"):
                for details in (mine.get("account_details", []), reference.get("account_details", [])):
                    for detail in details:  # (nats-server: 2^64-1 there, a uint64 underflow)
                        detail["reserved_memory"] = detail["reserved_storage"] = 0
            assert shape(mine) == shape(reference), path
        status, varz = get(ours_port, "/varz")
        assert varz["jetstream"]["config"]["store_dir"] == str(tmp_path / "a" / "jetstream")

        async def store_some():
            nc = await connect(ours.url)
            assert nc._server_info.get("jetstream") is True
            js = nc.jetstream()
            await js.add_stream(name="S", subjects=["s"])
            await js.add_stream(name="M", subjects=["m"], storage="memory")
            await js.publish("s", b"hello")
            await js.publish("m", b"hello")
            await nc.close()

        run(store_some())
        _, jsz = get(ours_port, "/jsz")
        assert (jsz["streams"], jsz["messages"], jsz["memory"], jsz["storage"]) == (2, 2, 22, 36)
        assert jsz["bytes"] == 58 and jsz["api"]["total"] == 2


def test_without_jetstream_varz_is_empty_and_jsz_disabled():
    port = free_port()
    with TrionatsProcess("-m", str(port)):
        assert get(port, "/varz")[1]["jetstream"] == {}
        assert get(port, "/jsz")[1]["disabled"] is True
        assert get(port, "/healthz?js-enabled-only=true") == (200, {"status": "ok"})
