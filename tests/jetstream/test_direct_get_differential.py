"""DIRECT.GET replies (headers and payload) compared with nats-server 2.15.1's: the same
requests to both, the time stamp header aside."""

from __future__ import annotations

import json

from tests.jetstream.conftest import connect, run

REQUESTS = [
    ("$JS.API.DIRECT.GET.D", {"seq": 1}),
    ("$JS.API.DIRECT.GET.D", {"seq": 2}),
    ("$JS.API.DIRECT.GET.D", {"last_by_subj": "d.a"}),
    ("$JS.API.DIRECT.GET.D", {"next_by_subj": "d.*", "seq": 2}),
    ("$JS.API.DIRECT.GET.D", {"seq": 99}),
    ("$JS.API.DIRECT.GET.D.d.b", b""),
    ("$JS.API.DIRECT.GET.D.d.none", b""),
]


async def replay(url: str) -> list:
    nc = await connect(url)
    js = nc.jetstream()
    await js.add_stream(name="D", subjects=["d.*"], allow_direct=True)
    await js.publish("d.a", b"one", headers={"X-Key": "1"})
    await js.publish("d.b", b"two")
    await js.publish("d.a", b"three")
    replies = []
    for subject, body in REQUESTS:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        msg = await nc.request(subject, data, timeout=5)
        headers = dict(msg.headers or {})
        headers.pop("Nats-Time-Stamp", None)
        replies.append((headers, msg.data))
    await nc.close()
    return replies


def test_direct_get_matches_nats_server(js_server, reference_js):
    assert run(replay(js_server.url)) == run(replay(reference_js.url))
