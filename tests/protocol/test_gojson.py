"""gojson: Go's encoding/json reading rules, at a cost bounded by the input's size."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trionats.protocol import gojson
from trionats.protocol.structs import CLIENT_OPTS, INFO, ROUTE_CONNECT

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)


def _plain(value):
    """A decoded value with Members turned into plain dicts, for comparisons."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@settings(max_examples=300)
@given(json_values, st.sampled_from([None, 1, 2]))
def test_both_readers_decode_like_the_json_module(value, indent):
    text = json.dumps(value, indent=indent)  # (st.text() has no lone surrogates: see below)
    expected = json.loads(text)
    assert _plain(gojson.loads(text.encode())) == expected
    assert _plain(gojson._read_iteratively(text)) == expected


@pytest.mark.parametrize(
    "text",
    ["", " ", "[", "]", "[1,]", "{,}", '{"a"}', '{"a":}', '{"a":1,}', "[1 2]", "01", "1.", ".5",
     "+1", "-", "1e", "tru", "nul", "NaN", "Infinity", "-Infinity", '"\\x"', '"a\nb"',
     '"\\u12"', "[1]]", "{}{}", "\ufeff{}", '{"a":1}x', "'a'", "[1,,2]", '{1:2}'],
)
def test_invalid_documents_fail_in_both_readers(text):
    with pytest.raises(ValueError):
        gojson.loads(text.encode())
    with pytest.raises(ValueError):
        gojson._read_iteratively(text)


def test_go_accepts_ten_thousand_levels_and_no_more():
    assert gojson.loads(b"[" * 10_000 + b"]" * 10_000) is not None
    with pytest.raises(ValueError, match="max depth"):
        gojson.loads(b"[" * 10_001 + b"]" * 10_001)
    deep = b'{"a":' * 5000 + b"true" + b"}" * 5000
    value = gojson.loads(deep)
    for _ in range(5000):
        value = value["a"]
    assert value is True


def test_deep_garbage_fails_without_recursion():
    with pytest.raises(ValueError):
        gojson.loads(b"[" * 50_000)
    with pytest.raises(ValueError):
        gojson.loads(b'{"a":' * 50_000)


def test_lone_surrogates_become_the_replacement_character():
    assert gojson.loads(rb'"\ud800"') == "\ufffd"
    assert gojson.loads(rb'"\udc00\ud800x"') == "\ufffd\ufffdx"
    assert gojson.loads(rb'"\ud83d\ude00"') == "\U0001f600"  # a pair stays one character
    document = gojson.loads(rb'{"\ud800":["\udfff"]}')
    assert document == {"\ufffd": ["\ufffd"]}
    json.dumps(document, ensure_ascii=False).encode()  # can be encoded again


def test_invalid_utf8_becomes_the_replacement_character():
    assert gojson.loads(b'"a\xffb"') == "a\ufffdb"


def test_huge_numbers_are_valid_json_but_fit_no_field():
    literal = b"9" * 5000
    value = gojson.loads(b"[" + literal + b"]")[0]
    assert isinstance(value, gojson.HugeNumber)
    assert gojson.decode_struct(b'{"x":' + literal + b"}", CLIENT_OPTS) == {}
    with pytest.raises(ValueError, match="int"):
        gojson.decode_struct(b'{"protocol":' + literal + b"}", CLIENT_OPTS)


def test_duplicate_members_apply_in_order():
    fields = gojson.decode_struct(b'{"name":"a","NAME":"b","name":null}', CLIENT_OPTS)
    assert fields == {"name": "b"}
    with pytest.raises(ValueError):  # a wrong type anywhere fails, even if a later one fits
        gojson.decode_struct(b'{"name":1,"name":"b"}', CLIENT_OPTS)


@pytest.mark.parametrize(
    "raw, struct, fields",
    [
        (b'{"Server_ID":"x","PORT":5}', INFO, {"server_id": "x", "port": 5}),
        (b'{"connect_urls":["a",null]}', INFO, {"connect_urls": ["a", ""]}),  # Go's zero value
        (b'{"connect_urls":null}', INFO, {"connect_urls": None}),
        (b'{"port":null}', INFO, {}),
        (b'{"max_payload":2147483647}', INFO, {"max_payload": 2**31 - 1}),
        (b'{"client_id":18446744073709551615}', INFO, {"client_id": 2**64 - 1}),
        (b'{"gateway_cmd_payload":"aGk="}', INFO, {"gateway_cmd_payload": b"hi"}),
        (b'{"import":{"allow":["a"],"Deny":["b"],"x":1}}', INFO,
         {"import": {"allow": ["a"], "deny": ["b"]}}),
        (b'{"user":"u","pass":"p","cluster":"c","x":[[1]]}', ROUTE_CONNECT,
         {"user": "u", "pass": "p", "cluster": "c"}),
        (b'{"\xc5\xbfERVER_ID":"long s"}', INFO, {"server_id": "long s"}),
        (b"null", INFO, {}),
    ],
)
def test_fields_go_accepts(raw, struct, fields):
    assert gojson.decode_struct(raw, struct) == fields


@pytest.mark.parametrize(
    "raw, struct",
    [
        (b"[]", INFO),
        (b'"x"', INFO),
        (b"5", CLIENT_OPTS),
        (b'{"port":"5"}', INFO),
        (b'{"port":5.0}', INFO),
        (b'{"port":1e3}', INFO),
        (b'{"ip":5}', INFO),
        (b'{"ip":true}', INFO),
        (b'{"connect_urls":5}', INFO),
        (b'{"connect_urls":"a"}', INFO),
        (b'{"connect_urls":[1]}', INFO),
        (b'{"connect_urls":{}}', INFO),
        (b'{"headers":"true"}', INFO),
        (b'{"max_payload":2147483648}', INFO),
        (b'{"client_id":-1}', INFO),
        (b'{"gossip_mode":256}', INFO),
        (b'{"gateway_cmd_payload":"!"}', INFO),
        (b'{"gateway_cmd_payload":5}', INFO),
        (b'{"import":[]}', INFO),
        (b'{"import":{"allow":"a"}}', INFO),
        (b'{"cluster_dynamic":1}', ROUTE_CONNECT),
        (b'{"gateway":{}}', ROUTE_CONNECT),
        (b'{"protocol":9223372036854775808}', CLIENT_OPTS),
    ],
)
def test_fields_go_refuses(raw, struct):
    with pytest.raises(ValueError):
        gojson.decode_struct(raw, struct)


def test_float_fields_take_finite_numbers_only():
    assert gojson.FLOAT.assign(1) == 1
    with pytest.raises(gojson._Mismatch):
        gojson.FLOAT.assign(math.inf)
