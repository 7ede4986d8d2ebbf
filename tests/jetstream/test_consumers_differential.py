"""The consumer API's replies compared with nats-server 2.15.1's: the same requests in the
same order (the MSG.NEXT deliveries too), replies equal once times, ephemeral consumers'
random names and Go's JSON error texts are set aside."""

from __future__ import annotations

import json

from tests.jetstream.conftest import connect, normalise, run

C = "$JS.API.CONSUMER."

SEQUENCE = [
    ("$JS.API.STREAM.CREATE.C", {"name": "C", "subjects": ["c.*"]}),
    ("c.x", b"m0"),
    ("c.y", b"m1"),
    ("c.x", b"m2"),
    (C + "CREATE.C.D", {"stream_name": "C", "config": {"durable_name": "D", "ack_policy": "explicit"}}),
    (C + "CREATE.C.D", {"stream_name": "C", "config": {"durable_name": "D", "ack_policy": "explicit"}}),
    (C + "CREATE.C", {"stream_name": "C", "config": {"durable_name": "X"}}),
    (C + "DURABLE.CREATE.C.E", {"stream_name": "C", "config": {"durable_name": "E", "ack_policy": "explicit",
                                                               "filter_subject": "c.x", "deliver_policy": "last"}}),
    (C + "DURABLE.CREATE.C.E", {"stream_name": "C", "config": {"durable_name": "Z"}}),
    (C + "CREATE.C.F.c.x", {"stream_name": "C", "config": {"name": "F", "filter_subject": "c.x"}}),
    (C + "CREATE.C.F.c.y", {"stream_name": "C", "config": {"name": "F"}}),
    (C + "CREATE.C.G", {"stream_name": "C", "config": {"name": "G", "filter_subjects": ["c.y"],
                                                       "deliver_policy": "new", "ack_policy": "all",
                                                       "max_ack_pending": 7, "ack_wait": 5000000000}}),
    (C + "CREATE.C.H", {"stream_name": "C", "config": {"name": "H", "deliver_policy": "by_start_sequence",
                                                       "opt_start_seq": 2, "ack_policy": "explicit",
                                                       "max_deliver": 3, "metadata": {"k": "v"}}}),
    (C + "CREATE.C.I", {"stream_name": "C", "config": {"name": "I", "deliver_policy": "by_start_sequence"}}),
    (C + "CREATE.C.J", {"stream_name": "C", "config": {"name": "J", "ack_policy": "sometimes"}}),
    (C + "CREATE.C.K", {"stream_name": "C", "config": {"name": "K", "filter_subject": "d.x"}}),
    (C + "CREATE.C.L", {"stream_name": "X", "config": {"name": "L"}}),
    (C + "CREATE.C.L", {"stream_name": "C", "config": {"name": "L", "filter_subject": "a b"}}),
    (C + "CREATE.C.L", {"stream_name": "C", "config": {"name": "L", "idle_heartbeat": 1000}}),
    (C + "CREATE.C.L", {"stream_name": "C", "config": {"name": "L", "flow_control": True}}),
    (C + "CREATE.C.L", {"stream_name": "C", "config": {"name": "L", "deliver_subject": "p",
                                                       "flow_control": True}}),
    (C + "CREATE.NOPE.L", {"stream_name": "NOPE", "config": {"name": "L"}}),
    (C + "CREATE.C.M", {"stream_name": "C", "config": {"name": "M", "deliver_subject": "push.m",
                                                       "ack_policy": "explicit"}}),
    (C + "CREATE.C.N", {"stream_name": "C", "config": {"name": "N", "deliver_subject": "push.n",
                                                       "flow_control": True, "idle_heartbeat": 5000000000}}),
    (C + "CREATE.C", {"stream_name": "C", "config": {"ack_policy": "explicit"}}),
    (C + "INFO.C.D", b""),
    (C + "INFO.C.NOPE", b""),
    (C + "NAMES.C", b""),
    (C + "LIST.C", b""),
    (C + "MSG.NEXT.C.D", b'{"batch":2}'),
    (C + "PAUSE.C.H", {"pause_until": "2099-01-02T03:04:05.5+01:00"}),
    (C + "INFO.C.H", b""),
    (C + "PAUSE.C.H", {}),
    (C + "PAUSE.C.NOPE", {}),
    (C + "PAUSE.C.H", {"pause_until": "yesterday"}),
    (C + "INFO.C.D", b""),
    (C + "DELETE.C.D", b""),
    (C + "DELETE.C.D", b""),
    (C + "INFO.NOPE.D", b""),
    ("$JS.API.STREAM.INFO.C", b""),
]

FIXED_NAMES = {"C", "D", "E", "F", "G", "H", "K", "M", "N"}


def _names(value):
    """Random ephemeral names as one placeholder."""
    if isinstance(value, dict):
        return {k: ("<random>" if k == "name" and v not in FIXED_NAMES else _names(v))
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        names = [("<random>" if isinstance(v, str) and len(v) == 8 and v not in FIXED_NAMES
                  else _names(v)) for v in value]  # fmt: skip
        return names
    return value


async def replay(url: str) -> list:
    nc = await connect(url)
    replies = []
    try:
        for subject, body in SEQUENCE:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if ".MSG.NEXT." in subject:
                inbox = nc.new_inbox()
                sub = await nc.subscribe(inbox)
                await nc.publish(subject, data, reply=inbox)
                for _ in range(2):
                    msg = await sub.next_msg(5)
                    replies.append((msg.subject, msg.reply.rsplit(".", 3)[0], msg.data))
                await sub.unsubscribe()
                continue
            msg = await nc.request(subject, data, timeout=5)
            reply = _names(normalise(json.loads(msg.data)))
            if "pause_remaining" in reply:  # (a duration from now)
                reply["pause_remaining"] = "<remaining>"
            if isinstance(reply.get("consumers"), list):  # (random names sort anywhere)
                reply["consumers"].sort(key=lambda c: json.dumps(c, sort_keys=True))
            replies.append(reply)
    finally:
        await nc.close()
    return replies


def test_consumer_api_replies_match_nats_server(js_server, reference_js):
    ours = run(replay(js_server.url))
    theirs = run(replay(reference_js.url))
    differences = [(mine, reference) for mine, reference in zip(ours, theirs, strict=True)
                   if mine != reference]  # fmt: skip
    for mine, reference in differences:
        print("ours  ", mine)
        print("theirs", reference)
    assert not differences
