"""The stream API's replies and publish acknowledgements compared with nats-server 2.15.1's:
the same requests, in the same order, to both; replies equal once times and Go's JSON
syntax error texts are set aside."""

from __future__ import annotations


from tests.jetstream.conftest import connect, normalise, request, run

#: (subject, body, headers): bodies are JSON-encoded unless bytes.
SEQUENCE = [
    ("$JS.API.INFO", b"", None),
    ("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["foo.*"]}, None),
    ("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["foo.*"]}, None),
    ("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["bar"]}, None),
    ("$JS.API.STREAM.CREATE.T", {"name": "X"}, None),
    ("$JS.API.STREAM.CREATE.T", b"{bad", None),
    ("$JS.API.STREAM.CREATE.T", b"", None),
    ("$JS.API.STREAM.CREATE.O", {"name": "O", "subjects": ["foo.b"]}, None),
    ("$JS.API.STREAM.CREATE.M", {"name": "M", "storage": "memory", "max_msgs": 2,
                                 "subjects": ["m.>"], "allow_direct": True}, None),
    ("$JS.API.STREAM.CREATE.N", {"name": "N", "subjects": ["n"], "discard": "new",
                                 "max_msgs": 1}, None),
    ("$JS.API.STREAM.CREATE.R", {"name": "R", "num_replicas": 3}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "retention": "sometimes"}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "storage": "tape"}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "max_age": 5}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "max_msgs": "many"}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "subjects": ["a b"]}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "subjects": ["x", "x"]}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "subjects": ["$JS.API.>"]}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "max_age": -1}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B.C"}, None),
    ("$JS.API.STREAM.CREATE.B", {"name": "B", "duplicate_window": 10}, None),
    ("foo.a", b"hello", None),
    ("foo.a", b"hello", {"Nats-Msg-Id": "1"}),
    ("foo.a", b"hello", {"Nats-Msg-Id": "1"}),
    ("foo.b", b"x", {"Nats-Expected-Last-Sequence": "1"}),
    ("foo.b", b"x", {"Nats-Expected-Last-Sequence": "2"}),
    ("foo.b", b"x", {"Nats-Expected-Last-Subject-Sequence": "0"}),
    ("foo.b", b"x", {"Nats-Expected-Last-Subject-Sequence": "0"}),
    ("foo.c", b"x", {"Nats-Expected-Stream": "T"}),
    ("foo.c", b"x", {"Nats-Expected-Last-Msg-Id": "1"}),
    ("foo.c", b"x", {"Nats-Expected-Last-Msg-Id": "2"}),
    ("m.1", b"a", None),
    ("m.2", b"b", None),
    ("m.3", b"c", None),
    ("n", b"1", None),
    ("n", b"2", None),
    ("$JS.API.STREAM.INFO.S", b"", None),
    ("$JS.API.STREAM.INFO.M", b"", None),
    ("$JS.API.STREAM.INFO.NOPE", b"", None),
    ("$JS.API.STREAM.NAMES", b"", None),
    ("$JS.API.STREAM.NAMES", {"subject": "m.x"}, None),
    ("$JS.API.STREAM.LIST", b"", None),
    ("$JS.API.STREAM.MSG.GET.S", {"seq": 1}, None),
    ("$JS.API.STREAM.MSG.GET.S", {"last_by_subj": "foo.a"}, None),
    ("$JS.API.STREAM.MSG.GET.S", {"next_by_subj": "foo.*", "seq": 2}, None),
    ("$JS.API.STREAM.MSG.GET.S", {"seq": 99}, None),
    ("$JS.API.STREAM.MSG.GET.S", {"seq": "one"}, None),
    ("$JS.API.STREAM.INFO.S", {"subjects_filter": ">"}, None),
    ("$JS.API.STREAM.INFO.S", {"subjects_filter": "foo.b"}, None),
    ("$JS.API.STREAM.INFO.S", {"subjects_filter": "nothing"}, None),
    ("$JS.API.STREAM.MSG.DELETE.S", {"seq": 1}, None),
    ("$JS.API.STREAM.MSG.DELETE.S", {"seq": 1}, None),
    ("$JS.API.STREAM.MSG.DELETE.S", {"seq": 3}, None),
    ("$JS.API.STREAM.INFO.S", {"deleted_details": True}, None),
    ("$JS.API.STREAM.INFO.S", b"", None),
    ("$JS.API.STREAM.PURGE.S", {"filter": "foo.a"}, None),
    ("$JS.API.STREAM.PURGE.M", {"keep": 1}, None),
    ("$JS.API.STREAM.UPDATE.S", {"name": "S", "subjects": ["foo.*"], "max_msgs": 5}, None),
    ("$JS.API.STREAM.UPDATE.S", {"name": "S", "storage": "memory"}, None),
    ("$JS.API.STREAM.UPDATE.NOPE", {"name": "NOPE"}, None),
    ("$JS.API.STREAM.PURGE.S", b"", None),
    ("$JS.API.STREAM.INFO.S", b"", None),
    ("$JS.API.STREAM.DELETE.S", b"", None),
    ("$JS.API.STREAM.DELETE.S", b"", None),
    ("$JS.API.INFO", b"", None),
]


async def replay(url: str) -> list:
    nc = await connect(url)
    try:
        return [normalise(await request(nc, subject, body, headers))
                for subject, body, headers in SEQUENCE]  # fmt: skip
    finally:
        await nc.close()


def test_stream_api_replies_match_nats_server(js_server, reference_js):
    ours = run(replay(js_server.url))
    theirs = run(replay(reference_js.url))
    differences = [(subject, body, mine, reference)
                   for (subject, body, _), mine, reference in zip(SEQUENCE, ours, theirs, strict=True)
                   if mine != reference]  # fmt: skip
    for subject, body, mine, reference in differences:
        print(subject, body)
        print("  ours  ", mine)
        print("  theirs", reference)
    assert not differences
