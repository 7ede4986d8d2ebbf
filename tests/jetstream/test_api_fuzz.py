"""Hostile JetStream API traffic: valid requests for every API subject, mutated (fuzz/mutate.py:
wrong types, deep nesting, huge numbers, bad UTF-8, cut or flipped bytes), sent to one
in-process server with JetStream. Every request that gets an answer gets one JSON object
(a reply or nats-server's error shape); nothing raises inside the server, the publisher's
connection stays up, and the server still answers correctly afterwards."""

from __future__ import annotations

import json
import random

import trio

from fuzz.mutate import mutate
from tests.helpers import RawClient, start_trionats
from trionats.options import JetStreamOptions

#: (subject, a valid body): each input mutates one of them.
TEMPLATES = [
    ("$JS.API.INFO", b"{}"),
    ("$JS.API.STREAM.CREATE.F", b'{"name":"F","subjects":["f.>"],"max_msgs":10,"storage":"memory",'
                                b'"allow_direct":true,"max_age":1000000000,"discard":"new"}'),
    ("$JS.API.STREAM.UPDATE.F", b'{"name":"F","subjects":["f.>","g"],"max_msgs":5,"storage":"memory"}'),
    ("$JS.API.STREAM.INFO.F", b'{"deleted_details":true,"subjects_filter":">"}'),
    ("$JS.API.STREAM.NAMES", b'{"offset":0,"subject":"f.1"}'),
    ("$JS.API.STREAM.LIST", b'{"offset":1}'),
    ("$JS.API.STREAM.PURGE.F", b'{"filter":"f.1","keep":1}'),
    ("$JS.API.STREAM.MSG.GET.F", b'{"seq":1,"next_by_subj":"f.*"}'),
    ("$JS.API.STREAM.MSG.DELETE.F", b'{"seq":2,"no_erase":true}'),
    ("$JS.API.DIRECT.GET.F", b'{"last_by_subj":"f.1"}'),
    ("$JS.API.CONSUMER.CREATE.F.C", b'{"stream_name":"F","config":{"name":"C","ack_policy":"explicit",'
                                    b'"deliver_policy":"by_start_sequence","opt_start_seq":2,'
                                    b'"filter_subjects":["f.1","f.2"],"backoff":[1000000]}}'),
    ("$JS.API.CONSUMER.DURABLE.CREATE.F.D", b'{"stream_name":"F","config":{"durable_name":"D",'
                                            b'"deliver_subject":"out","idle_heartbeat":100000000,'
                                            b'"flow_control":true}}'),
    ("$JS.API.CONSUMER.INFO.F.C", b""),
    ("$JS.API.CONSUMER.NAMES.F", b'{"offset":0}'),
    ("$JS.API.CONSUMER.LIST.F", b'{"offset":0}'),
    ("$JS.API.CONSUMER.MSG.NEXT.F.C", b'{"batch":3,"no_wait":true,"max_bytes":100}'),
    ("$JS.API.CONSUMER.DELETE.F.D", b""),
]

#: Publishes into the stream with expectation headers, mutated too.
HEADERS = (b"NATS/1.0\r\nNats-Msg-Id: 7\r\nNats-Expected-Last-Sequence: 1\r\n"
           b"Nats-Expected-Last-Subject-Sequence: 0\r\nNats-Rollup: sub\r\n\r\n")  # fmt: skip

INPUTS = 400


async def test_mutated_api_requests_get_json_or_nothing(nursery, tmp_path):
    options = {"jetstream": JetStreamOptions(store_dir=str(tmp_path))}
    server = await start_trionats(nursery, **options)
    client = await RawClient.connect(server.port)
    await client.send(b'CONNECT {"headers":true,"verbose":false}\r\nSUB _r.> 1\r\n')
    await client.ping_pong()
    rng = random.Random(16)
    answered = refused = 0
    for index in range(INPUTS):
        if rng.random() < 0.15:
            headers = mutate(rng, HEADERS) if rng.random() < 0.7 else HEADERS
            payload = b"x" * rng.randrange(20)
            subject = rng.choice((b"f.1", b"f.2", b"g"))
            await client.send(b"HPUB %s _r.%d %d %d\r\n%s%s\r\n" % (
                subject, index, len(headers), len(headers) + len(payload), headers, payload))
        else:
            subject, body = rng.choice(TEMPLATES)
            if rng.random() < 0.8:
                body = mutate(rng, b"INFO " + body, json_fields=("name", "config", "seq"))
                body = body[5:] if body.startswith(b"INFO ") else body
            body = body.replace(b"\r\n", b"")
            await client.send(b"PUB %s _r.%d %d\r\n%s\r\n" % (subject.encode(), index, len(body), body))
        replies = await client.ping_pong()
        for line in replies.split(b"\r\n"):
            if line.startswith(b"{"):
                reply = json.loads(line)
                assert isinstance(reply, dict), line
                answered += 1
                refused += "error" in reply
        assert b"-ERR" not in replies
        assert server.stats.internal_errors == 0
    # Both kinds, many of each: the mutations reach the checks, not only the parser.
    assert answered > INPUTS // 2 and INPUTS // 5 < refused < answered, (answered, refused)
    # Still answering as it should.
    body = b'{"name":"OK","subjects":["ok"]}'
    await client.send(b"PUB $JS.API.STREAM.CREATE.OK _r.ok %d\r\n%s\r\n" % (len(body), body))
    reply = await client.ping_pong()
    assert b'"did_create":true' in reply
    await client.aclose()
    server.shutdown()
    with trio.fail_after(10):
        await server.wait_stopped()
