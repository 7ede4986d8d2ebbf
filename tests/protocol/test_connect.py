"""Decoding CONNECT JSON with the rules of Go's encoding/json, as nats-server does."""

from __future__ import annotations

import pytest

from trionats.protocol.connect import ConnectOptions, decode_connect


def decode(raw: bytes | str, previous: ConnectOptions | None = None) -> ConnectOptions:
    if isinstance(raw, str):
        raw = raw.encode()
    return decode_connect(raw, previous if previous is not None else ConnectOptions())


# --- defaults and plain fields ----------------------------------------------------------------


def test_pre_connect_defaults():
    # nats-server's defaultOpts: a client that never sent CONNECT gets +OK and pedantic checks.
    opts = ConnectOptions()
    assert (opts.verbose, opts.pedantic, opts.echo) == (True, True, True)
    assert (opts.headers, opts.no_responders, opts.tls_required) == (False, False, False)
    assert opts.protocol == 0


def test_empty_object_keeps_the_defaults():
    # `CONNECT {}` leaves verbose on: nats-server answers +OK (verified).
    assert decode("{}") == ConnectOptions()


def test_every_field_is_decoded():
    raw = (
        '{"verbose":false,"pedantic":false,"echo":false,"tls_required":true,"headers":true,'
        '"no_responders":true,"protocol":1,"user":"u","pass":"p","auth_token":"t","nkey":"UK",'
        '"sig":"s","jwt":"j","name":"n","lang":"python3","version":"2.9.0","account":"A",'
        '"new_account":true,"remote_account":"R","proxy_sig":"ps",'
        '"import":{"allow":["a"]},"export":{"deny":["b"]}}'
    )
    opts = decode(raw)
    assert opts == ConnectOptions(
        verbose=False, pedantic=False, echo=False, tls_required=True, headers=True,
        no_responders=True, protocol=1, user="u", password="p", auth_token="t", nkey="UK",
        sig="s", jwt="j", name="n", lang="python3", version="2.9.0", account="A",
        new_account=True, remote_account="R", proxy_sig="ps",
        import_={"allow": ["a"]}, export={"deny": ["b"]},
    )  # fmt: skip


def test_a_typical_client_connect():
    raw = (
        '{"verbose":false,"pedantic":false,"tls_required":false,"name":"","lang":"go",'
        '"version":"1.37.0","protocol":1,"echo":true,"headers":true,"no_responders":true}'
    )
    opts = decode(raw)
    assert (opts.verbose, opts.headers, opts.no_responders, opts.protocol) == (False, True, True, 1)
    assert opts.lang == "go"


def test_previous_values_are_kept_for_fields_not_sent():
    # A second CONNECT only changes what it mentions.
    first = decode('{"verbose":false,"name":"one","headers":true}')
    second = decode('{"name":"two"}', first)
    assert (second.verbose, second.name, second.headers) == (False, "two", True)


def test_previous_options_are_not_mutated():
    previous = ConnectOptions()
    decode('{"verbose":false}', previous)
    assert previous.verbose is True


def test_negative_and_out_of_range_protocol_values_decode():
    # Whether they are allowed is the connection's business ('invalid client protocol').
    assert decode('{"protocol":-1}').protocol == -1
    assert decode('{"protocol":2}').protocol == 2
    assert decode('{"protocol":-0}').protocol == 0
    assert decode('{"protocol":9223372036854775807}').protocol == 2**63 - 1


# --- Go's encoding/json rules -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["Verbose", "VERBOSE", "vErBoSe"])
def test_keys_match_case_insensitively(key):
    # Verified: `CONNECT {"VERBOSE":false}` then PING gives PONG without +OK.
    assert decode('{"%s":false}' % key).verbose is False


def test_keys_fold_like_go_equal_fold():
    # Go compares keys with Unicode simple case folding, where the long s (U+017F) is an s
    # but the Turkish dotless/dotted i are not i. Verified on nats-server 2.15.1:
    # "verbo\u017fe":false turns +OK off; "pedant\u0131c" / "pedant\u0130c" change nothing.
    assert decode('{"verbo\u017fe":false}').verbose is False
    assert decode('{"VERBO\u017fE":false}').verbose is False
    assert decode('{"pedant\u0131c":false,"pedant\u0130c":false}').pedantic is True
    assert decode('{"pedant\u00eec":false}').pedantic is True


def test_case_insensitive_key_for_renamed_fields():
    opts = decode('{"PASS":"secret","Auth_Token":"t","NO_RESPONDERS":true,"Import":{}}')
    assert (opts.password, opts.auth_token) == ("secret", "t")
    assert (opts.no_responders, opts.import_) == (True, {})


def test_later_key_wins_whatever_its_case():
    assert decode('{"verbose":false,"Verbose":true}').verbose is True
    assert decode('{"Verbose":true,"verbose":false}').verbose is False


def test_null_keeps_the_previous_value():
    previous = ConnectOptions(verbose=False, name="x", protocol=1)
    opts = decode('{"verbose":null,"name":null,"protocol":null}', previous)
    assert (opts.verbose, opts.name, opts.protocol) == (False, "x", 1)


def test_null_after_a_value_for_the_same_key_keeps_that_value():
    # Go applies the members in order: false, then null (no effect). Verified on nats-server
    # 2.15.1: `CONNECT {"verbose":false,"verbose":null}` then PING gives PONG without +OK.
    assert decode('{"verbose":false,"verbose":null}').verbose is False


def test_null_clears_import_and_export():
    # They are pointers in nats-server's struct: JSON null sets a pointer to nil.
    previous = ConnectOptions(import_={"allow": ["a"]}, export={"deny": ["b"]})
    opts = decode('{"import":null,"export":null}', previous)
    assert (opts.import_, opts.export) == (None, None)


def test_whole_document_null_changes_nothing():
    # Go: unmarshalling `null` into a struct is a no-op, not an error. Verified on nats-server
    # 2.15.1: `CONNECT null` then PING gives +OK PONG.
    previous = ConnectOptions(verbose=False, name="x")
    assert decode("null", previous) == previous
    assert decode("  null ") == ConnectOptions()


def test_unknown_keys_are_ignored_whatever_their_value():
    raw = '{"foo":1,"bar":{"x":[1,2,null]},"baz":"s","qux":null,"big":1e400,"verbose":false}'
    opts = decode(raw)
    assert opts == ConnectOptions(verbose=False)


@pytest.mark.parametrize(
    "raw",
    [
        '{"verbose":"x"}',
        '{"verbose":1}',
        '{"verbose":"true"}',
        '{"echo":0}',
        '{"headers":[]}',
        '{"protocol":1.0}',
        '{"protocol":1e2}',
        '{"protocol":"1"}',
        '{"protocol":true}',
        '{"protocol":9223372036854775808}',  # overflows Go's int
        '{"protocol":-9223372036854775809}',
        '{"name":5}',
        '{"name":true}',
        '{"user":[]}',
        '{"pass":{}}',
        '{"import":[]}',
        '{"import":"a"}',
        '{"Verbose":"x"}',  # the case-insensitive match is type-checked too
    ],
)
def test_wrong_json_type_raises(raw):
    # nats-server closes the connection without -ERR (verified with "verbose":"x").
    with pytest.raises(ValueError):
        decode(raw)


def test_wrong_type_is_an_error_even_when_a_later_duplicate_is_fine():
    # Go reports the type error of the first member although decoding goes on. Verified on
    # nats-server 2.15.1: `CONNECT {"verbose":"x","verbose":true}` closes the connection.
    with pytest.raises(ValueError):
        decode('{"verbose":"x","verbose":true}')


@pytest.mark.parametrize("raw", ["[]", '"x"', "1", "true", "[{}]"])
def test_non_object_json_raises(raw):
    # Verified: `CONNECT []` and `CONNECT "x"` close the connection without -ERR.
    with pytest.raises(ValueError):
        decode(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "{",
        "{}x",  # trailing data after the value
        "{} {}",
        "{'verbose':false}",
        '{"verbose":false,}',
        '{"verbose":False}',
        "\ufeff{}",  # Go refuses a byte order mark
        '{"name":"a\nb"}',  # raw control character inside a string
    ],
)
def test_invalid_json_raises(raw):
    with pytest.raises(ValueError):
        decode(raw)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("key", ["protocol", "unknown"])
def test_nan_and_infinity_raise(constant, key):
    # They are not JSON: Go refuses them wherever they appear, even for unknown keys.
    with pytest.raises(ValueError):
        decode('{"%s":%s}' % (key, constant))


def test_invalid_utf8_is_replaced_not_refused():
    # Go's decoder replaces invalid UTF-8 in strings with U+FFFD.
    assert decode(b'{"name":"a\xffb"}').name == "a\ufffdb"


def test_escapes_in_strings():
    assert decode(r'{"name":"\u00e9\n\"x\""}').name == 'é\n"x"'
