"""The NATS configuration language parser: syntax forms, positions, errors, includes, variables,
differential checks against nats-server 2.15.1 (`-t`), and fuzzing."""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import subprocess
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import nats_server_binary
from trionats.config.natsconf import (
    ConfigSyntaxError,
    ConfList,
    ConfMap,
    Position,
    parse,
    parse_file,
)

UTC = datetime.timezone.utc


def P(line: int, column: int, file: str = "<string>") -> Position:
    return Position(file, line, column)


# --- values of every syntax form ----------------------------------------------------------

VALUES = [
    # separators and terminators
    ("port: 4222", {"port": 4222}),
    ("port = 4222", {"port": 4222}),
    ("port 4222", {"port": 4222}),
    ("port:4222\nhost=h", {"port": 4222, "host": "h"}),
    ("port\t4222", {"port": 4222}),
    ("a: 1; b: 2", {"a": 1, "b": 2}),
    ("a: 1, b: 2", {"a": 1, "b": 2}),
    ("a 1;b 2,c 3\nd 4", {"a": 1, "b": 2, "c": 3, "d": 4}),
    ("a: 1\r\nb: 2\r\n", {"a": 1, "b": 2}),
    ("port\n\n  4222", {"port": 4222}),  # without a separator the value may be lines below
    # optional outer braces, JSON
    ("{ a: 1 }", {"a": 1}),
    ("{\n  a: 1\n  b: 2\n}\n", {"a": 1, "b": 2}),
    (
        '{"port": 4222, "cluster": {"name": "c", "routes": ["nats://a:1", "nats://b:2"]}}',
        {"port": 4222, "cluster": {"name": "c", "routes": ["nats://a:1", "nats://b:2"]}},
    ),
    ('{"t": true, "f": false, "n": -1, "x": 1.5, "l": [ 1, 2 ]}',
     {"t": True, "f": False, "n": -1, "x": 1.5, "l": [1, 2]}),
    # keys
    ('"a key" = 1', {"a key": 1}),
    ("'a key': 1", {"a key": 1}),
    ("a.b-c_d/e: 1", {"a.b-c_d/e": 1}),
    ("Port: 1\nport: 2", {"Port": 1, "port": 2}),  # case kept
    ("a: 1\na: 2", {"a": 2}),  # last one wins
    ('"include": x', {"include": "x"}),  # quoted: a key, not the keyword
    ("include: x", {"include": "x"}),  # no space before the separator: a key too
    # comments
    ("# c\na: 1 # c\n// c\nb: 2 // c", {"a": 1, "b": 2}),
    ("a: [ # c\n  1 // c\n  # c\n  2 ]", {"a": [1, 2]}),
    ("a { # c\n  b: 1 # c\n  // c\n}", {"a": {"b": 1}}),
    ('a: "# not a comment"', {"a": "# not a comment"}),
    # maps
    ("a { b: 1 }", {"a": {"b": 1}}),
    ("a: { b: 1 }", {"a": {"b": 1}}),
    ("a = { b: 1 }", {"a": {"b": 1}}),
    ("a {b 1; c 2, d=3\n e: 4}", {"a": {"b": 1, "c": 2, "d": 3, "e": 4}}),
    ("a { b { c { d: 1 } } }", {"a": {"b": {"c": {"d": 1}}}}),
    ("a {}", {"a": {}}),
    ("a { b =\n  1 }", {"a": {"b": 1}}),
    ('a { "b c": 1, \'d\': 2 }', {"a": {"b c": 1, "d": 2}}),
    # arrays
    ("a: [ 1, 2 ]", {"a": [1, 2]}),
    ("a: [\n  x\n  y\n]", {"a": ["x", "y"]}),
    ("a: [\"x\", 'y', z]", {"a": ["x", "y", "z"]}),
    ("a: [ [ 1 ], {b: 2}, [] ]", {"a": [[1], {"b": 2}, []]}),
    ("a: [x, y, ]", {"a": ["x", "y"]}),
    ("a: []", {"a": []}),
    ("a: [x,\n y\n z]", {"a": ["x", "y", "z"]}),
    # unquoted strings
    ("a: nats-route://127.0.0.1:16282", {"a": "nats-route://127.0.0.1:16282"}),
    ("a: nats://u:p@h:4222", {"a": "nats://u:p@h:4222"}),
    ("a: 1.2.3.4", {"a": "1.2.3.4"}),
    ("a: 127.0.0.1:4222", {"a": "127.0.0.1:4222"}),
    ("a: /var/run/x.pid", {"a": "/var/run/x.pid"}),
    ("a: 1abc", {"a": "1abc"}),
    ("a: 1e5", {"a": "1e5"}),
    ("a: 1k5", {"a": "1k5"}),
    ("a: 0x10", {"a": "0x10"}),
    ("a: é", {"a": "é"}),
    ("a: a\\tb", {"a": "a\tb"}),  # escapes work unquoted too
    # double-quoted, single-quoted and block strings
    ('a: "u\\x41"', {"a": "uA"}),
    ('a: "t\\tn\\nr\\rq\\"b\\\\"', {"a": 't\tn\nr\rq"b\\'}),
    ('a: "\\xc3\\xa9"', {"a": "é"}),  # \x bytes are UTF-8
    ('a: "two\nlines"', {"a": "two\nlines"}),
    ('a: ""', {"a": ""}),
    ("a: 'raw \\t \\x41 \"'", {"a": 'raw \\t \\x41 "'}),
    ("a (\nline one\n  line two\n)\nb: 1", {"a": "\nline one\n  line two\n", "b": 1}),
    ("a (\n) not yet\n)", {"a": "\n) not yet\n"}),
    # numbers and sizes
    ("a: 0\nb: -1\nc: 007\nd: 9223372036854775807\ne: -9223372036854775808",
     {"a": 0, "b": -1, "c": 7, "d": 2**63 - 1, "e": -(2**63)}),
    ("a: 1.5\nb: -0.25\nc: 10.0", {"a": 1.5, "b": -0.25, "c": 10.0}),
    ("a: 2MB\nb: 1k\nc: 1Gi\nd: -1k", {"a": 2097152, "b": 1000, "c": 1073741824, "d": -1000}),
    # booleans
    ("a: true\nb: yes\nc: on\nd: TRUE\ne: Yes\nf: oN",
     {"a": True, "b": True, "c": True, "d": True, "e": True, "f": True}),
    ("a: false\nb: no\nc: off\nd: FALSE\ne: No\nf: OFF",
     {"a": False, "b": False, "c": False, "d": False, "e": False, "f": False}),
    ("a: \"true\"\nb: 'no'", {"a": "true", "b": "no"}),
    # date-time
    ("a: 2024-01-02T03:04:05Z", {"a": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)}),
    ("a: [2024-02-29T23:59:59Z ]", {"a": [datetime.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)]}),
    # durations stay strings
    ('a: "30s"\nb: 1h30m', {"a": "30s", "b": "1h30m"}),
    # empty documents
    ("", {}),
    ("# only a comment\n\n", {}),
    ("{}", {}),
]

SIZES = [
    ("k", 10**3), ("kb", 2**10), ("ki", 2**10), ("kib", 2**10),
    ("m", 10**6), ("mb", 2**20), ("mi", 2**20), ("mib", 2**20),
    ("g", 10**9), ("gb", 2**30), ("gi", 2**30), ("gib", 2**30),
    ("t", 10**12), ("tb", 2**40), ("ti", 2**40), ("tib", 2**40),
    ("p", 10**15), ("pb", 2**50), ("pi", 2**50), ("pib", 2**50),
    ("e", 10**18), ("eb", 2**60), ("ei", 2**60), ("eib", 2**60),
]  # fmt: skip

# Corners of nats-server 2.15.1's lexer that we keep (each checked with `nats-server -t`).
QUIRKS = [
    ("a: [1k]", {"a": ["1k"]}),  # a size directly before `]` is a string
    ("a: [ 1k, 2k ]", {"a": [1000, 2000]}),
    ("port: 4222 }", {"port": 4222}),  # `}` ends a top-level value
    ("a: 1\n}", {"a": 1}),  # a stray closing brace at the end
    ("{\na: 1\n", {"a": 1}),  # an unclosed outer brace
    ("a: 1 /", {"a": 1}),  # a lone `/` after a value is ignored
    ("a { /b: 1 }", {"a": {"b": 1}}),  # ...and dropped before a map key
    ("a: [ x / y ]", {"a": ["x", "y"]}),  # ...and separates list elements
    ("a: #x", {"a": "#x"}),  # `#` right after the separator starts a value
    ("a:", {"a": ""}),  # nothing after the separator at the end: empty string
    ("a: foo'bar'", None),  # `'` ends an unquoted string (then `bar'` is an error)
    ("a: foo'", {"a": "foo"}),
    ("a: true'", {"a": "true"}),  # ...and makes it a plain string
    ("a: 1\n\"", {"a": 1}),  # a quote that ends the file ends the document
    ('a: 1\nb: [ "x", "', {"a": 1}),  # ...dropping the unfinished value
    ("a: \\x41b", {"a": "Ab"}),
    ("a: 12345678901234567890k", None),  # range is checked before the suffix
    ("a: 9223372036854775807k", {"a": -1000}),  # the suffix wraps around in int64
]


@pytest.mark.parametrize(("text", "expected"), VALUES)
def test_values(text, expected):
    assert parse(text, env={}) == expected


@pytest.mark.parametrize(("suffix", "multiplier"), SIZES)
def test_size_suffixes(suffix, multiplier):
    for spelled in (suffix, suffix.upper(), suffix.capitalize()):
        assert parse(f"a: 3{spelled}") == {"a": 3 * multiplier}


@pytest.mark.parametrize(("text", "expected"), QUIRKS)
def test_nats_server_quirks(text, expected):
    if expected is None:
        with pytest.raises(ConfigSyntaxError):
            parse(text, env={})
    else:
        assert parse(text, env={}) == expected


def test_container_types():
    m = parse("a { b: [ {c: 1} ] }")
    assert type(m) is ConfMap and type(m["a"]) is ConfMap
    assert type(m["a"]["b"]) is ConfList and type(m["a"]["b"][0]) is ConfMap
    assert type(parse("a: 1")["a"]) is int and type(parse("a: true")["a"]) is bool


# --- positions ----------------------------------------------------------------------------

POSITIONS_DOC = """\
port: 4222
"quoted key" = 1
cluster {
  name: c1
  routes: [
    nats://a:1,  nats://b:2
    'nats://c:3'
  ]
}
  list: [ {x: 1}, [2 ] ]
b (
text
)
after: 1
"""


def test_key_and_element_positions():
    m = parse(POSITIONS_DOC, filename="n.conf")
    assert m.positions == {
        "port": P(1, 1, "n.conf"),
        "quoted key": P(2, 1, "n.conf"),  # the opening quote
        "cluster": P(3, 1, "n.conf"),
        "list": P(10, 3, "n.conf"),
        "b": P(11, 1, "n.conf"),
        "after": P(14, 1, "n.conf"),  # lines inside the block string are counted
    }
    cluster = m["cluster"]
    assert cluster.positions == {"name": P(4, 3, "n.conf"), "routes": P(5, 3, "n.conf")}
    assert cluster["routes"].positions == [P(6, 5, "n.conf"), P(6, 18, "n.conf"), P(7, 5, "n.conf")]
    assert m["list"].positions == [P(10, 11, "n.conf"), P(10, 19, "n.conf")]
    assert m["list"][0].positions == {"x": P(10, 12, "n.conf")}
    assert m["list"][1].positions == [P(10, 20, "n.conf")]
    assert str(P(3, 4, "x.conf")) == "x.conf:3:4"


def test_positions_crlf_and_outer_braces():
    m = parse("{\r\n  a: 1\r\n\tb: 2 }")
    assert m.positions == {"a": P(2, 3), "b": P(3, 2)}


# --- errors -------------------------------------------------------------------------------

HINT = "Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\."
HEX = "Expected two hexadecimal digits after '\\x', but"
NOT_FOUND = "variable reference for 'NOPE' on line"
TOP_END = "Expected a top-level value to end with a new line, comment or EOF, but got"
BLOCK_END = "Expected a block-level value to end with a new line, comment or EOF, but got"
LIST_END = 'Expected an array value terminator "," or an array terminator "]", but got'
MAP_END = 'Expected a map value terminator "," or a map terminator "}", but got'
DATE = "expected Zulu formatted DateTime, but got"
ERRORS = [
    ('port: 1\nmax_payload: "a\\qb"', f"<string>:2:16: Invalid escape character 'q'. {HINT}"),
    ("a: b\\", f"<string>:1:5: Invalid escape character 'EOF'. {HINT}"),
    ('a: "\\x4"', f"<string>:1:5: {HEX} got '4\"'"),
    ('a: "\\x4\n"', f"<string>:1:5: {HEX} hit end of line"),
    ("port: $NOPE", f"<string>:1:7: {NOT_FOUND} 1 can not be found"),
    ("a: 1\nb { c: [ $NOPE ] }", f"<string>:2:10: {NOT_FOUND} 2 can not be found"),
    ("a: [1,,2]", "<string>:1:7: Unexpected array value terminator ','."),
    ("a: [1]", f"<string>:1:7: {LIST_END} 'EOF' instead."),
    ("a: [1,2]", f"<string>:1:9: {LIST_END} 'EOF' instead."),
    ("a: [x; y]", f"<string>:1:6: {LIST_END} ';' instead."),
    ("port", "<string>:1:5: config is invalid: key 'port' has no value"),
    ("a: 1\nb\n", "<string>:3:1: config is invalid: key 'b' has no value"),
    ('a: "', "<string>:1:5: config is invalid: key 'a' has no value"),
    ("a =\n 1", "<string>:1:4: Expected value but found new line"),
    ("a: .5", "<string>:1:4: Floats must start with a digit"),
    ("a: -.5", "<string>:1:5: Floats must start with a digit, not '.'."),
    ("a: -x", "<string>:1:5: Expected a digit but got 'x'."),
    ("a: 1.x", "<string>:1:6: Floats must have a digit after the '.', but got 'x' instead."),
    ("a: 12-3", "<string>:1:4: All ISO8601 dates must be in full Zulu form."),
    ("a: 2024-01-02", "<string>:1:14: Expected 'T' in ISO8601 datetime, but found 'EOF' instead."),
    ("a: 2024-13-01T00:00:00Z", f"<string>:1:4: {DATE} '2024-13-01T00:00:00Z'"),
    ("a: 9223372036854775808", "<string>:1:4: integer '9223372036854775808' is out of the range"),
    ("a: ٣", "<string>:1:4: expected integer, but got '٣'"),
    ("a: 1kbb", "<string>:1:4: invalid size suffix in '1kbb'"),
    ("a { b }", "<string>:1:7: key 'b' has no value"),
    ("a { b: , }", "<string>:1:8: Unexpected map value terminator ','."),
    ('a: "abc', "<string>:1:8: Unexpected EOF in quoted string."),
    ("a: 'abc", "<string>:1:8: Unexpected EOF in quoted string."),
    ("a (\nxx\n )", "<string>:3:3: Unexpected EOF processing block."),
    ("a: b c", f"<string>:1:6: {TOP_END} 'c' instead."),
    ("a: 127.0.0.1:$PORT", f"<string>:1:14: {TOP_END} '$' instead."),
    ("{ a: 1", f"<string>:1:7: {BLOCK_END} 'EOF' instead."),
    ("{{ a: 1 } x }",
     "<string>:1:11: Expected a block-level to end with a '}', but got 'x' instead."),
    ("a { b: 1 c: 2 }", f"<string>:1:10: {MAP_END} 'c' instead."),
    ("a {", "<string>:1:4: Unexpected EOF processing map."),
    ("a { b", "<string>:1:6: Unexpected EOF processing map key."),
    ('a { "b', "<string>:1:7: Unexpected EOF processing double quoted map key."),
    ("a { :b 1 }", "<string>:1:5: Unexpected key separator ':'."),
    ("a { ] }", "<string>:1:5: Unexpected array end ']' processing map."),
    ("= 1", "<string>:1:1: Unexpected key separator '='"),
    ('"a b', "<string>:1:5: Unexpected EOF in quoted key."),
    ("/x: 1", "<string>:1:1: unexpected '/' (comments start with '#' or '//')"),
    ("include 2.conf", "<string>:1:9: Expected include value but found start of a number"),
    ("include [x]", "<string>:1:9: Expected include value but found start of an array"),
    ("include\n x", "<string>:1:8: Expected include value but found new line"),
    ("include 'x", "<string>:1:11: Unexpected EOF in quoted include"),
    ("a: 1\x00", "<string>:1:5: NUL characters are not allowed"),
    ("a: " + "[" * 101, "<string>:1:104: configuration nested more than 100 levels deep"),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_errors(text, expected):
    with pytest.raises(ConfigSyntaxError) as info:
        parse(text, env={})
    assert str(info.value) == expected


def test_error_attributes():
    with pytest.raises(ConfigSyntaxError) as info:
        parse("a: 1\nb: $X", filename="my.conf", env={})
    e = info.value
    assert (e.file, e.line, e.column) == ("my.conf", 2, 4)
    assert e.message == "variable reference for 'X' on line 2 can not be found"


def test_deep_but_allowed_nesting():
    assert parse("a: " + "[" * 100 + "]" * 100)["a"] is not None


# --- includes -----------------------------------------------------------------------------


def write(path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_include_relative_to_including_file(tmp_path, monkeypatch):
    main = write(tmp_path / "etc" / "main.conf", "port: 1\ninclude sub/a.conf\nafter: 2\n")
    write(tmp_path / "etc" / "sub" / "a.conf", "x: 1\ninclude 'deeper/b.conf'\n")
    write(tmp_path / "etc" / "sub" / "deeper" / "b.conf", 'y: "b"\n')
    monkeypatch.chdir(tmp_path)  # not the directory of main.conf
    m = parse_file(main)
    assert m == {"port": 1, "x": 1, "y": "b", "after": 2}
    assert m.positions["y"] == P(1, 1, str(tmp_path / "etc" / "sub" / "deeper" / "b.conf"))
    assert m.positions["after"] == P(3, 1, main)


def test_include_forms_and_override_order(tmp_path):
    write(tmp_path / "inc.conf", "a: included\nb: included\n")
    forms = ["include inc.conf", 'include "inc.conf"', "INCLUDE ./inc.conf"]
    forms.append("include\tinc.conf ; c: 1")
    for line in forms:
        main = write(tmp_path / "main.conf", f"a: before\n{line}\nb: after\n")
        assert parse_file(main)["a"] == "included"
        assert parse_file(main)["b"] == "after"


def test_include_inside_block(tmp_path):
    write(tmp_path / "cluster.conf", "name: C1\nroutes: [ nats://h:1 ]\n")
    main = write(tmp_path / "main.conf", "cluster {\n  port: 6222\n  include cluster.conf\n}\n")
    assert parse_file(main) == {"cluster": {"port": 6222, "name": "C1", "routes": ["nats://h:1"]}}


def test_include_absolute_path_is_joined_like_nats_server(tmp_path):
    # nats-server joins the path onto the includer's directory even when it is absolute.
    write(tmp_path / "tmp" / "x.conf", "a: 1\n")
    main = write(tmp_path / "main.conf", "include /tmp/x.conf\n")
    assert parse_file(main) == {"a": 1}


def test_include_from_string_is_relative_to_cwd(tmp_path, monkeypatch):
    write(tmp_path / "inc.conf", "a: 1\n")
    monkeypatch.chdir(tmp_path)
    assert parse("include inc.conf") == {"a": 1}


def test_include_variables(tmp_path):
    write(tmp_path / "vars.conf", "PORT = 4222\nQ = 1\nq_user: $Q\n")
    main = write(tmp_path / "main.conf", "include vars.conf\nport: $PORT\n")
    m = parse_file(main, env={})
    assert m == {"PORT": 4222, "Q": 1, "q_user": 1, "port": 4222}
    assert m.variables == {"PORT", "Q"}  # Q was used inside the included file
    # An included file does not see the includer's variables (nor does nats-server's).
    write(tmp_path / "uses.conf", "port: $OUTER\n")
    main = write(tmp_path / "main2.conf", "OUTER = 1\ninclude uses.conf\n")
    with pytest.raises(ConfigSyntaxError) as info:
        parse_file(main, env={})
    assert str(info.value) == (
        f"{tmp_path / 'uses.conf'}:1:7: variable reference for 'OUTER' on line 1 can not be found"
    )


def test_include_errors(tmp_path):
    inc = write(tmp_path / "bad.conf", "ok: 1\nx: [1,,2]\n")
    main = write(tmp_path / "main.conf", "a: 1\n  include bad.conf\n")
    with pytest.raises(ConfigSyntaxError) as info:
        parse_file(main)
    assert str(info.value) == f"{inc}:2:7: Unexpected array value terminator ','."

    main = write(tmp_path / "main.conf", "a: 1\n  include missing.conf\n")
    with pytest.raises(ConfigSyntaxError) as info:
        parse_file(main)
    assert str(info.value) == (
        f"{main}:2:3: error parsing include file 'missing.conf', "
        f"open {tmp_path / 'missing.conf'}: no such file or directory"
    )

    with pytest.raises(FileNotFoundError):
        parse_file(tmp_path / "nope.conf")


def test_include_cycle(tmp_path):
    # nats-server overflows its stack on this; we report the cycle at the include.
    a = write(tmp_path / "a.conf", "x: 1\ninclude d/b.conf\n")
    b = write(tmp_path / "d" / "b.conf", "y: 2\n\n include ../a.conf\n")
    with pytest.raises(ConfigSyntaxError) as info:
        parse_file(a)
    assert str(info.value) == f"{b}:3:2: include cycle: {a} -> {b} -> {a}"
    self_loop = write(tmp_path / "self.conf", "include self.conf\n")
    with pytest.raises(ConfigSyntaxError, match="include cycle"):
        parse_file(self_loop)


# --- variables ----------------------------------------------------------------------------


def test_variables_and_usage_marks():
    m = parse("PORT_VAR = 16071\nport: $PORT_VAR\nunused = 1", env={})
    assert m == {"PORT_VAR": 16071, "port": 16071, "unused": 1}
    assert m.variables == {"PORT_VAR"}


def test_variable_block_scoping():
    text = """
    X = outer
    Y = top-y
    a {
      X = inner
      b: $X
      c { d: $X, e: $Y, f: [ $X ] }
    }
    g: $X
    """
    m = parse(text, env={})
    assert m["a"]["b"] == "inner"
    assert m["a"]["c"] == {"d": "inner", "e": "top-y", "f": ["inner"]}
    assert m["g"] == "outer"
    assert m.variables == {"X", "Y"} and m["a"].variables == {"X"}
    assert m["a"]["c"].variables == set()


def test_variable_visibility():
    # Only keys defined before the reference; a block's keys are gone after it closes.
    with pytest.raises(ConfigSyntaxError, match="'X' on line 1 can not be found"):
        parse("a: $X\nX = 1", env={})
    with pytest.raises(ConfigSyntaxError, match="'X' on line 2 can not be found"):
        parse("a { X = 1 }\nb: $X", env={})
    # A map being defined is not visible inside itself (it is assigned when it closes).
    with pytest.raises(ConfigSyntaxError, match="'m' on line 1"):
        parse("m { x: $m }", env={})


def test_redefined_variable_loses_its_usage_mark():
    # nats-server flags the value, so `a` is reported as an unknown field again here.
    m = parse("a = 1\nport = $a\na = 2", env={})
    assert m == {"a": 2, "port": 1} and m.variables == set()


def test_variable_referencing_a_map():
    m = parse("defaults { user: u, password: p }\nauthorization: $defaults", env={})
    assert m["authorization"] == {"user": "u", "password": "p"}
    assert m.variables == {"defaults"}


def test_environment_fallback():
    env = {"PORT": "4222", "FLAG": "yes", "NAME": '"4222"', "LIST": "[a, 1k ]", "MAP": "{a: 1}",
           "CHAIN": "$PORT", "SIZE": "2MB", "EMPTY": ""}  # fmt: skip
    text = "p: $PORT\nf: $FLAG\nn: $NAME\nl: $LIST\nm: $MAP\nc: $CHAIN\ns: $SIZE\ne: $EMPTY"
    m = parse(text, env=env)
    assert m == {"p": 4222, "f": True, "n": "4222", "l": ["a", 1000], "m": {"a": 1},
                 "c": 4222, "s": 2097152, "e": ""}  # fmt: skip
    assert parse("PORT = 1\np: $PORT", env=env)["p"] == 1  # the file wins over the environment


def test_environment_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("TRIONATS_TEST_PORT", "4333")
    assert parse("port: $TRIONATS_TEST_PORT") == {"port": 4333}


def test_environment_errors():
    with pytest.raises(ConfigSyntaxError) as info:
        parse("a: 1\nport: $A", env={"A": "$B", "B": "$A"})
    assert str(info.value) == (
        "<string>:2:7: variable reference for 'A' on line 2 could not be parsed: "
        "variable reference for 'B' on line 1 could not be parsed: "
        "variable reference for 'A' on line 1 could not be parsed: variable reference cycle for 'A'"
    )
    with pytest.raises(ConfigSyntaxError) as info:
        parse("port: $A", env={"A": "1 2"})
    assert str(info.value) == (
        "<string>:1:7: variable reference for 'A' on line 1 could not be parsed: Expected a "
        "top-level value to end with a new line, comment or EOF, but got '2' instead."
    )


def test_bcrypt_literal():
    m = parse("password: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG", env={})
    assert m["password"] == "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG"
    with pytest.raises(ConfigSyntaxError, match="variable reference for '2b\\$11\\$abc'"):
        parse("password: $2b$11$abc", env={})
    assert parse('password: "$2b$11$abc"')["password"] == "$2b$11$abc"


# --- the minimal examples of config-format.md section 5 -----------------------------------

EXAMPLE_1 = """\
server_name: A
listen: 127.0.0.1:4222
http: 127.0.0.1:8222
cluster {
  name: C1
  listen: 127.0.0.1:6222
  routes: [ nats-route://127.0.0.1:6223 ]
}
"""

EXAMPLE_2 = """\
PORT_VAR = 16071
host: 127.0.0.1
port: $PORT_VAR
max_payload 2MB
max_pending: 1Gi
write_deadline: "3s"
include ./inc.conf          # relative to this file
authorization { user: "u\\x41", password: $SECRET_ENV, timeout: "1.5s" }
"""


def test_reference_examples(tmp_path):
    assert parse(EXAMPLE_1) == {
        "server_name": "A",
        "listen": "127.0.0.1:4222",
        "http": "127.0.0.1:8222",
        "cluster": {
            "name": "C1",
            "listen": "127.0.0.1:6222",
            "routes": ["nats-route://127.0.0.1:6223"],
        },
    }
    write(tmp_path / "inc.conf", "debug: true\n")
    main = write(tmp_path / "node.conf", EXAMPLE_2)
    m = parse_file(main, env={"SECRET_ENV": "s3cret"})
    assert m == {
        "PORT_VAR": 16071,
        "host": "127.0.0.1",
        "port": 16071,
        "max_payload": 2 * 1024 * 1024,
        "max_pending": 1024**3,
        "write_deadline": "3s",
        "debug": True,
        "authorization": {"user": "uA", "password": "s3cret", "timeout": "1.5s"},
    }
    assert m.variables == {"PORT_VAR"}
    assert m.positions["debug"] == P(1, 1, str(tmp_path / "inc.conf"))


# --- differential checks against nats-server 2.15.1 ---------------------------------------
#
# `nats-server -t -c f` parses f, then checks the options. It prints
# `configuration file f is valid (sha256:<hex>)`, where <hex> is the sha256 of the parsed
# map as Go's encoding/json writes it (sorted keys, HTML-escaped, one trailing newline), so a
# valid document also checks every value. An error of the form `<file>:<line>:<col>: ...`
# comes from the options check, which only runs after a successful parse.


def go_json(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        assert "e" not in text  # the documents below keep floats simple
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, datetime.datetime):
        return value.strftime('"%Y-%m-%dT%H:%M:%SZ"')
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode())
        return "{" + ",".join(go_json(k) + ":" + go_json(value[k]) for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    short |= {"\b": "\\b", "\f": "\\f"}
    out = []
    for ch in value:
        if ch in short:
            out.append(short[ch])
        elif ord(ch) < 0x20 or ch in "<>&\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def nats_server_check(path: str, env: dict[str, str]) -> tuple[str, str]:
    """("valid", digest) / ("options", output) / ("syntax", output) from `nats-server -t`."""
    proc = subprocess.run(
        [nats_server_binary(), "-t", "-c", os.path.basename(path)],
        cwd=os.path.dirname(path),
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
    )
    out = (proc.stdout + proc.stderr).strip()
    if "is valid (sha256:" in out:
        return "valid", out.split("sha256:")[1].split(")")[0]
    head = out.removeprefix("nats-server: ").split(" ")[0]
    if head.count(":") >= 3 or "config has no values" in out:
        return "options", out
    return "syntax", out


DIFFERENTIAL = [
    EXAMPLE_1,
    EXAMPLE_2,
    "port: 4222; max_payload = 2MB, debug true\ntrace=off;logtime: NO\n",
    '{"port": 4222, "cluster": {"name": "c", "routes": ["nats://a:1", "nats://b:2"]}}',
    "# header\n{\n  port: 4222 // c\n  server_tags: [ a, 'b c', \"d\\x41\" # c\n   e ]\n}\n",
    "authorization {\n  user: \"a<b>&\\t\"\n  password: 'p\\w'\n  timeout: 1.5\n}\n"
    "server_name: n1\n",
    "server_metadata {\n  k (\nblock\n  text\n)\n  \"q k\": v; /x = 1.2.3.4\n}\n"
    "max_control_line: 4KiB\n",
    "P = 4222\nN = node\ncluster {\n  name: $N\n  port: $P\n  routes = [\n    nats://h:1\n  ]\n}\n"
    "port: $ENV_PORT\n",
    "server_tags: [a, 1k]\nport: 4222 }\n",  # quirks nats-server accepts
    "authorization {\n  user: u\n  password: $2a$11$W2zko751KUvVy59mUTWmpOd/sSOT.x\n}\n",
    "server_tags: [1]\n",  # rejected: `1]` then end of file
    'port: 1\nmax_payload: "a\\qb"\n',  # rejected: escape
    "port: $NOPE\n",  # rejected: missing variable
    "authorization { user: \"x }\n",  # rejected: unterminated string
    "cluster {\n  port = \n  6222\n}\nhttp =\n 8222\n",  # rejected at top level only
    "port: 4222\n}}\n",  # rejected: key `}}` without a value
]


@pytest.mark.interop
@pytest.mark.parametrize("index", range(len(DIFFERENTIAL)))
def test_differential_against_nats_server(index, tmp_path):
    text = DIFFERENTIAL[index]
    env = {"SECRET_ENV": "s3cret", "ENV_PORT": "4223"}
    write(tmp_path / "inc.conf", "debug: true\nping_max: 3\n")
    path = write(tmp_path / "node.conf", text)
    verdict, detail = nats_server_check(path, env)
    try:
        mine = parse_file(path, env=env)
    except ConfigSyntaxError as e:
        assert verdict == "syntax", f"we reject ({e}) what nats-server parses: {detail}"
        return
    assert verdict != "syntax", f"we accept what nats-server rejects: {detail}"
    if verdict == "valid":
        encoded = (go_json(mine) + "\n").encode()
        assert hashlib.sha256(encoded).hexdigest() == detail, go_json(mine)


def test_go_json_digest_matches_a_known_nats_server_digest():
    # `port: 1` -> nats-server -t: sha256:5b27b68e...; keeps go_json honest without the binary.
    digest = hashlib.sha256((go_json(parse("port: 1")) + "\n").encode()).hexdigest()
    assert digest == "5b27b68e52c25859a76c94f378c31d5a499ca677a46b38fb5f58ded229b59650"


# --- fuzzing ------------------------------------------------------------------------------

CONF_CHARS = [*"{}[]()=:;,#/\"'\\$-.\n\r\t abkmgeiKMGBIxTZ0123456789", "\v", "\xa0", "é", "٣"]
CONF_WORDS = ["include x", "$A", "$N", "$M", "1k", "(\n", "\n)\n"]
FUZZ_ENV = {"A": "$B", "B": "$A", "N": "42", "M": "{a: [1k ]}"}
FUZZ_SETTINGS = settings(
    max_examples=1000,
    deadline=timedelta(milliseconds=500),  # every example is bounded in time
    suppress_health_check=[HealthCheck.too_slow],
)


def parse_or_syntax_error(text: str) -> None:
    try:
        parse(text, env=FUZZ_ENV)
    except ConfigSyntaxError as e:
        assert str(e) == f"{e.file}:{e.line}:{e.column}: {e.message}"
        assert e.line >= 1 and e.column >= 1


@FUZZ_SETTINGS
@given(st.text(max_size=300))
def test_fuzz_arbitrary_text(text):
    parse_or_syntax_error(text)


@FUZZ_SETTINGS
@given(st.lists(st.sampled_from(CONF_CHARS + CONF_WORDS), max_size=80))
def test_fuzz_config_alphabet(pieces):
    parse_or_syntax_error("".join(pieces))


VALID_DOCS = [d for d, _ in VALUES] + [EXAMPLE_1, POSITIONS_DOC, DIFFERENTIAL[4], DIFFERENTIAL[6]]


@FUZZ_SETTINGS
@given(
    st.sampled_from(VALID_DOCS),
    st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["insert", "delete", "replace"]),
                       st.sampled_from(CONF_CHARS)), min_size=1, max_size=4),  # fmt: skip
)
def test_fuzz_mutated_documents(doc, edits):
    chars = list(doc)
    for index, op, char in edits:
        i = index % (len(chars) + 1)
        if op == "insert":
            chars.insert(i, char)
        elif chars:
            i = min(i, len(chars) - 1)
            if op == "delete":
                del chars[i]
            else:
                chars[i] = char
    parse_or_syntax_error("".join(chars))


@pytest.mark.interop
def test_generated_documents_match_nats_server(tmp_path):
    """A fixed sample of generated documents (known keys, random spelling) gives the same
    verdict and values as nats-server; the dev-time version of this ran ~30k documents."""
    rng = random.Random(2151)
    choose = rng.choice
    separators = [":", " = ", " ", "\t", ": ", "\n  "]
    terminators = ["\n", ";\n", ",", ";", "\r\n", " # c\n", " // c\n"]
    strings = ["abc", "'a b'", '"x\\ty"', '"\\x41<>"', "127.0.0.1:4", "nats://h:1", "q'", "1e5"]
    strings.append("(\nb l\n)\n")
    values = {
        "port": ["4222", "-1", "1k", "$P", "0017"],
        "server_name": ["abc", "'raw'", '"\\x41"', "$S", "1k5"],
        "debug": ["true", "OFF", "Yes", "$B"],
        "max_payload": ["1MB", "512kb", "1Ki", "8192"],
        "server_tags": [
            f"[{choose(['', ' ', chr(10)])}{', '.join(rng.sample(strings, 3))} ]" for _ in range(6)
        ],
        "server_metadata": [
            f"{{ k{choose(separators)}{s}{choose(terminators)}'q k': v }}" for s in strings
        ],
        "authorization": [
            "{ user: u, password: $2a$10$abc, timeout: 0.5 }",
            '{user="x";timeout "1s"}',
        ],
    }
    sample = []
    for _ in range(25):
        lines = ["P = 4222", "S = s", "B = no"]
        for key in rng.sample(sorted(values), 4):
            lines.append(choose([key, f'"{key}"']) + choose(separators) + choose(values[key]))
        body = "".join(line + choose(terminators) for line in lines)
        body += "port: $P\nserver_name: $S\ndebug: $B\n"
        sample.append(choose(["", "{\n"]) + body)
    for text in sample:
        path = write(tmp_path / "gen.conf", text)
        verdict, detail = nats_server_check(path, {})
        try:
            mine = parse_file(path, env={})
        except ConfigSyntaxError as e:
            assert verdict == "syntax", (text, str(e), detail)
            continue
        assert verdict != "syntax", (text, detail)
        if verdict == "valid":
            assert hashlib.sha256((go_json(mine) + "\n").encode()).hexdigest() == detail, text

