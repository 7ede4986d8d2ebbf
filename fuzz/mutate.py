"""Mutators: turn a valid byte stream into a broken one, driven by a `random.Random`.

Each mutator takes the random source and the bytes and returns new bytes; `mutate` applies a
few of them in a row. They work on any protocol (bit flips, inserts, deletes, truncation,
splices of two streams, repeated slices, numbers swapped for edge values), and `mutate_json`
knows where CONNECT and INFO carry JSON: it rewrites one field with a wrong type, a huge
number, a lone surrogate escape, invalid UTF-8, a duplicate key or 12,000 levels of nesting.

The random source may be Python's `random.Random` (the long run: fast, reproducible from a
seed) or Hypothesis' `st.randoms()` (the test suite: failures shrink); only the methods both
have are used.
"""

from __future__ import annotations

import json
import re

#: Bytes that mean something to one of the protocols (line ends, separators, JSON, frames).
INTERESTING_BYTES = b"\x00\x01\x7f\x80\xff\r\n \t{}[]\":,\\-+.*>|$0129"

#: Tokens worth inserting whole: protocol words, separators, numbers at the edges.
INTERESTING_TOKENS = (
    b"\r\n", b"\r", b"\n", b" ", b"\t", b"\x00", b"PING\r\n", b"PONG\r\n", b"PUB ", b"HPUB ",
    b"SUB ", b"UNSUB ", b"MSG ", b"CONNECT ", b"INFO ", b"RS+ ", b"RS- ", b"RMSG ", b"HMSG ",
    b"LS+ ", b"LMSG ", b"A+ ", b"+OK\r\n", b"-ERR 'x'\r\n", b"$G ", b"{", b"}", b"[", b"]",
    b'"', b"\\", b"\\u", b"\\ud800", b"null", b"true", b"-1", b"0", b"-0", b"1e309",
    b"9223372036854775807", b"9223372036854775808", b"-9223372036854775809",
    b"18446744073709551616", b"99999999999999999999999999999999", b"\xc3\x28", b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80", b"NATS/1.0\r\n", b"GET ", b"HTTP/1.1", b"%", b"%00", b"?", b"&", b"=",
)  # fmt: skip

#: Numbers that sit on an edge of some integer type, or are not quite numbers.
EDGE_NUMBERS = (
    b"0", b"-0", b"-1", b"1", b"00", b"01", b"+1", b"0x10", b"1e3", b"1.5", b"127", b"128",
    b"255", b"256", b"32767", b"65535", b"65536", b"1048576", b"1048577", b"2147483647",
    b"2147483648", b"4294967295", b"4294967296", b"9223372036854775807",
    b"9223372036854775808", b"-9223372036854775808", b"-9223372036854775809",
    b"18446744073709551615", b"18446744073709551616", b"1" + b"0" * 40, b"1e309", b"-1e309",
    b"NaN", b"Infinity", b"",
)  # fmt: skip

#: How deep `mutate_json` nests (nats-server's decoder stops at 10,000 levels).
NESTING_DEPTHS = (2, 64, 1000, 9999, 10000, 10001, 12000)

_NUMBER = re.compile(rb"-?\d+")
_JSON_LINE = re.compile(rb"(CONNECT|INFO)([ \t]+)(\{[^\r\n]*\})")


def _position(rng, data: bytes, *, end: bool = False) -> int:
    return rng.randrange(len(data) + 1) if end else rng.randrange(max(len(data), 1))


def flip_bits(rng, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_byte(rng, data: bytes) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    value = rng.choice(INTERESTING_BYTES) if rng.random() < 0.7 else rng.randrange(256)
    return data[:i] + bytes((value,)) + data[i + 1 :]


def insert_token(rng, data: bytes) -> bytes:
    i = _position(rng, data, end=True)
    if rng.random() < 0.8:
        token = rng.choice(INTERESTING_TOKENS)
    else:
        token = rng.randbytes(rng.randrange(1, 16))
    return data[:i] + token + data[i:]


def delete_range(rng, data: bytes) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    size = rng.choice((1, 1, 2, 4, 16, 64))
    return data[:i] + data[i + size :]


def truncate(rng, data: bytes) -> bytes:
    return data[: _position(rng, data, end=True)]


def repeat_range(rng, data: bytes) -> bytes:
    """A slice repeated: the same op twice, a line doubled, a payload grown."""
    if not data:
        return data
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.choice((1, 4, 16, 64, 256)))
    times = rng.choice((2, 2, 3, 16, 100))
    return data[:i] + data[i:j] * times + data[j:]


def replace_number(rng, data: bytes) -> bytes:
    """A number in the stream (a size, a sid, a port, a max) becomes an edge value."""
    numbers = list(_NUMBER.finditer(data))
    if not numbers:
        return insert_token(rng, data)
    match = rng.choice(numbers)
    return data[: match.start()] + rng.choice(EDGE_NUMBERS) + data[match.end() :]


def splice(rng, data: bytes, other: bytes) -> bytes:
    """The start of one stream and the end of another."""
    return data[: _position(rng, data, end=True)] + other[_position(rng, other, end=True) :]


def shuffle_lines(rng, data: bytes) -> bytes:
    """Protocol lines (and payloads) in another order, or one dropped or doubled."""
    lines = data.split(b"\r\n")
    if len(lines) < 2:
        return data
    choice = rng.randrange(3)
    if choice == 0:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif choice == 1:
        del lines[rng.randrange(len(lines))]
    else:
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    return b"\r\n".join(lines)


# --- JSON ------------------------------------------------------------------------------------


def _deep(rng) -> bytes:
    depth = rng.choice(NESTING_DEPTHS)
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _wrong_value(rng) -> bytes:
    """A JSON value (raw text) of some type, often not the one the field wants."""
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice((b"null", b"true", b"false"))
    if kind == 1:
        return rng.choice(EDGE_NUMBERS) or b"0"
    if kind == 2:
        return rng.choice((b'""', b'"x"', b'"true"', b'"1"', b'"-1"', b'" "'))
    if kind == 3:
        return rng.choice((b"[]", b"{}", b'[1,"a",null]', b'{"a":{"b":[]}}', b"[[[]]]"))
    if kind == 4:
        return _deep(rng)
    if kind == 5:  # lone and paired surrogates, escapes Go and Python read differently
        return rng.choice((b'"\\ud800"', b'"\\udc00x"', b'"a\\ud83d\\ude00b"', b'"\\u0000"',
                           b'"\\ud800\\ud800"', b'"\\uZZZZ"', b'"\\x41"', b'"\\/"'))  # fmt: skip
    if kind == 6:  # invalid UTF-8 inside a string
        return b'"' + rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                                  b"\xe2\x82", b"\x80abc")) + b'"'  # fmt: skip
    if kind == 7:
        return b'"' + b"x" * rng.choice((100, 4096, 70000)) + b'"'
    if kind == 8:
        return b"1" + b"0" * rng.choice((19, 20, 300, 400, 5000))
    if kind == 9:
        return rng.choice((b"1e400", b"-1e400", b"1.0", b"1e2", b"0.5", b"-0.0", b"1E+2"))
    if kind == 10:  # not JSON at all
        return rng.choice((b"", b"undefined", b"NaN", b"'x'", b"0x1", b"[1,]", b"{,}", b'"'))
    return b'["' + b"\\u0041" * 10 + b'"]'


def _encode_object(items: list[tuple[bytes, bytes]]) -> bytes:
    return b"{" + b",".join(key + b":" + value for key, value in items) + b"}"


def mutate_json(rng, data: bytes, fields: tuple[str, ...] = ()) -> bytes:
    """Rewrite the JSON of one CONNECT or INFO line in `data` (or the bytes, if none)."""
    lines = list(_JSON_LINE.finditer(data))
    if not lines:
        return insert_token(rng, data)
    match = rng.choice(lines)
    try:
        decoded = json.loads(match.group(3))
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python's stack
        decoded = None
    if not isinstance(decoded, dict):
        return data[: match.start(3)] + _wrong_value(rng) + data[match.end(3) :]
    items = [(json.dumps(k).encode(), json.dumps(v).encode()) for k, v in decoded.items()]
    choice = rng.randrange(9)
    if choice <= 3 and items:  # one field gets a wrong value (the most useful mutation)
        i = rng.randrange(len(items))
        items[i] = (items[i][0], _wrong_value(rng))
    elif choice == 4:  # a field the peer knows, added with a wrong value
        name = rng.choice(fields) if fields else "x"
        items.append((json.dumps(name).encode(), _wrong_value(rng)))
    elif choice == 5 and items:  # a duplicate key: which one wins?
        key, _ = rng.choice(items)
        items.append((key, _wrong_value(rng)))
    elif choice == 6 and items:  # a key in other case (Go matches keys case-insensitively)
        i = rng.randrange(len(items))
        key = items[i][0]
        items[i] = (key.upper() if rng.random() < 0.5 else key.title(), items[i][1])
    elif choice == 7 and items:  # the key itself escaped oddly
        i = rng.randrange(len(items))
        items[i] = (rng.choice((b'"\\ud800"', b'"\xff"', b'""', b'"\\u0076erbose"')), items[i][1])
    else:  # the whole object replaced
        return data[: match.start(3)] + _wrong_value(rng) + data[match.end(3) :]
    return data[: match.start(3)] + _encode_object(items) + data[match.end(3) :]


# --- putting them together ------------------------------------------------------------------

_MUTATORS = (
    flip_bits, set_byte, insert_token, delete_range, truncate, repeat_range, replace_number,
    shuffle_lines,
)  # fmt: skip


def mutate(rng, data: bytes, others=(), json_fields: tuple[str, ...] = ()) -> bytes:
    """One to four mutations of `data`; `others` are streams to splice with."""
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        pick = rng.randrange(12)
        if pick < 3:
            data = mutate_json(rng, data, json_fields)
        elif pick == 3 and others:
            data = splice(rng, data, rng.choice(others))
        else:
            data = rng.choice(_MUTATORS)(rng, data)
    return data


def split_points(rng, data: bytes) -> list[bytes]:
    """`data` cut into the reads the server will see: mostly one, sometimes a few."""
    cuts = rng.choice((0, 0, 0, 1, 1, 2, 5))
    if not data or not cuts:
        return [data]
    points = sorted({rng.randrange(1, len(data) + 1) for _ in range(cuts)})
    chunks, start = [], 0
    for point in points:
        chunks.append(data[start:point])
        start = point
    chunks.append(data[start:])
    return [chunk for chunk in chunks if chunk]
