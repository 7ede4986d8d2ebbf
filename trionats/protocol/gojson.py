"""Reading the JSON a peer sends as Go's encoding/json reads it, at a cost bounded by its size.

nats-server decodes every CONNECT and INFO (from clients, routes and gossip) with Go's
encoding/json into typed structs. What that accepts and refuses is what trionats must accept
and refuse, and nothing a peer sends may cost more than its length:

- Nesting: Go accepts 10,000 levels and refuses more. Python's json module recurses and
  raises RecursionError a thousand levels down, so a document with many brackets is read by
  an iterative reader here (an explicit stack, one regular-expression token at a time).
- Strings: invalid UTF-8 and lone UTF-16 surrogates (`"\\ud800"`) become U+FFFD, as in Go;
  Python would keep a lone surrogate, which then cannot be encoded again.
- Numbers: a literal too long for Python's int() (over 4,300 digits) is a `HugeNumber`, which
  no numeric field accepts (Go's would overflow every integer and float type too).
- Types: `check_struct` judges a decoded object against a struct's fields the way Go assigns
  them: keys matched case-insensitively, `null` leaves a field alone, a value of another JSON
  type (or a number out of the field's range) is an error, unknown keys are skipped.

Ordinary documents take Python's C decoder; only hostile-looking ones pay for the reader.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re

#: Go's encoding/json refuses documents nested deeper than this (scanner.go maxNestingDepth).
MAX_DEPTH = 10_000

#: Documents with at most this many brackets go to Python's (recursive) C decoder.
_FAST_BRACKETS = 100

_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")

_TOKEN = re.compile(
    r"""[ \t\n\r]*(?:
        (?P<string>"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*")
      | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
      | (?P<literal>true|false|null)
      | (?P<punct>[{}\[\]:,])
    )""",
    re.VERBOSE,
)
_TRAILING_SPACE = re.compile(r"[ \t\n\r]*")
_LITERALS = {"true": True, "false": False, "null": None}


class HugeNumber(str):
    """A number literal too long for int(): valid JSON, but no numeric field takes it."""

    __slots__ = ()


class Members(dict):
    """A decoded JSON object that also keeps its members in order, duplicate keys included
    (Go applies each member in turn: a later duplicate wins, a wrong type anywhere fails)."""

    __slots__ = ("members",)

    def __init__(self, pairs: list) -> None:
        super().__init__(pairs)
        self.members = pairs


def loads(raw: bytes | str):
    """Decode one JSON document as Go would; raise ValueError where Go's decoder fails.

    Objects come back as `Members` (a dict that keeps every member in order)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    encoded = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    brackets = encoded.count(b"[") + encoded.count(b"{")
    if brackets <= _FAST_BRACKETS and not _LONE_SURROGATE_ESCAPE.search(encoded):
        try:
            return json.loads(
                text,
                object_pairs_hook=Members,
                parse_constant=_no_constants,
                parse_int=_parse_int,
            )
        except RecursionError:  # cannot happen within _FAST_BRACKETS; never let it out
            raise ValueError("JSON nested too deeply") from None
    return _read_iteratively(text)


def _no_constants(name: str):
    raise ValueError(f"invalid JSON literal {name}")


def _parse_int(literal: str):
    try:
        return int(literal)
    except ValueError:  # over sys.get_int_max_str_digits()
        return HugeNumber(literal)


def _string(token: str) -> str:
    value = json.loads(token)  # one flat string: no recursion
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def _number(token: str):
    if "." in token or "e" in token or "E" in token:
        return float(token)
    return _parse_int(token)


# What the reader expects next.
_VALUE, _FIRST_VALUE, _KEY, _FIRST_KEY, _COLON, _COMMA_OR_END = range(6)


def _read_iteratively(text: str):
    """The same result as json.loads, without recursion: a stack of open containers."""
    stack: list[list] = []  # [is_object, items, pending key]
    state = _VALUE
    pos = 0
    while True:
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"invalid JSON at offset {pos}")
        pos = match.end()
        kind = match.lastgroup
        token = match.group(kind)
        if state == _COLON:
            if token != ":":
                raise ValueError(f"expected ':' at offset {pos}")
            state = _VALUE
            continue
        if state == _KEY or state == _FIRST_KEY:
            if kind == "string":
                stack[-1][2] = _string(token)
                state = _COLON
                continue
            if not (token == "}" and state == _FIRST_KEY):
                raise ValueError(f"expected a key at offset {pos}")
            value = Members(stack.pop()[1])
        elif state == _COMMA_OR_END:
            is_object = stack[-1][0]
            if token == ",":
                state = _KEY if is_object else _VALUE
                continue
            if token != ("}" if is_object else "]"):
                raise ValueError(f"expected ',' or a closing bracket at offset {pos}")
            items = stack.pop()[1]
            value = Members(items) if is_object else items
        else:  # a value is expected
            if token == "[" or token == "{":
                if len(stack) >= MAX_DEPTH:
                    raise ValueError("exceeded max depth")
                stack.append([token == "{", [], None])
                state = _FIRST_KEY if token == "{" else _FIRST_VALUE
                continue
            if token == "]" and state == _FIRST_VALUE:
                value = stack.pop()[1]
            elif kind == "string":
                value = _string(token)
            elif kind == "number":
                value = _number(token)
            elif kind == "literal":
                value = _LITERALS[token]
            else:
                raise ValueError(f"expected a value at offset {pos}")
        # A value is complete: it ends the document or joins its container.
        if not stack:
            if _TRAILING_SPACE.match(text, pos).end() != len(text):
                raise ValueError(f"extra data at offset {pos}")
            return value
        frame = stack[-1]
        frame[1].append((frame[2], value) if frame[0] else value)
        state = _COMMA_OR_END


# --- Go's assignment of decoded values to struct fields ----------------------------------


class Field:
    """A Go field type: whether a (non-null) JSON value can be assigned to it, and the value
    as trionats keeps it. JSON null sets pointers, slices and maps to nil (None) and leaves
    other fields as they were; a null element of a slice or map is the type's zero value."""

    nullable = False
    #: Go's zero value of the type (what a null element of a slice becomes).
    zero = None

    def assign(self, value):
        """The value to keep; raises _Mismatch naming the Go type if it does not fit."""
        raise NotImplementedError


class _Mismatch(Exception):
    pass


class _Bool(Field):
    zero = False

    def assign(self, value):
        if isinstance(value, bool):
            return value
        raise _Mismatch("bool")


class _Int(Field):
    zero = 0

    def __init__(self, low: int, high: int, name: str) -> None:
        self.low, self.high, self.name = low, high, name

    def assign(self, value):
        if type(value) is int and self.low <= value <= self.high:
            return value
        raise _Mismatch(self.name)


class _Float(Field):
    zero = 0.0

    def assign(self, value):
        if type(value) in (int, float) and math.isfinite(value):
            return value
        raise _Mismatch("float64")


class _Str(Field):
    zero = ""

    def assign(self, value):
        if type(value) is str:
            return value
        raise _Mismatch("string")


class _Bytes(Field):
    """Go's []byte: a base64 string (or an array of bytes)."""

    nullable = True

    def assign(self, value):
        if type(value) is str:
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise _Mismatch("[]byte (base64)") from None
        if type(value) is list:
            return bytes(0 if item is None else UINT8.assign(item) for item in value)
        raise _Mismatch("[]byte")


class _List(Field):
    nullable = True

    def __init__(self, item: Field) -> None:
        self.item = item

    def assign(self, value):
        if type(value) is not list:
            raise _Mismatch("slice")
        item = self.item
        return [item.zero if element is None else item.assign(element) for element in value]


class _Map(Field):
    nullable = True

    def __init__(self, item: Field) -> None:
        self.item = item

    def assign(self, value):
        if not isinstance(value, dict):
            raise _Mismatch("map")
        item = self.item
        return {key: item.zero if element is None else item.assign(element)
                for key, element in _members(value)}  # fmt: skip


class _Any(Field):
    nullable = True

    def assign(self, value):
        return value


class Struct(Field):
    """A Go struct (or a pointer to one): its JSON keys, as the `json:` tags spell them, with
    their field types. Decoding keeps the known fields under those keys; others are skipped."""

    nullable = True

    def __init__(self, fields: dict[str, Field]) -> None:
        self.fields = {fold_key(tag): (tag, kind) for tag, kind in fields.items()}

    def assign(self, value, previous: dict | None = None) -> dict:
        if not isinstance(value, dict):
            raise _Mismatch("struct")
        result = dict(previous or {})
        # Every member in order, duplicates too: Go applies each in turn.
        for key, member in _members(value):
            field = self.fields.get(key) or self.fields.get(fold_key(key))
            if field is None:
                continue
            tag, kind = field
            if member is None:
                if kind.nullable:
                    result[tag] = None
                continue
            try:
                result[tag] = kind.assign(member)
            except _Mismatch as mismatch:
                raise _Mismatch(f"{mismatch} (field {key!r} is {_json_type(member)})") from None
        return result


BOOL = _Bool()
STR = _Str()
BYTES = _Bytes()
INT = _Int(-(2**63), 2**63 - 1, "int")
INT32 = _Int(-(2**31), 2**31 - 1, "int32")
UINT8 = _Int(0, 2**8 - 1, "uint8")
UINT16 = _Int(0, 2**16 - 1, "uint16")
UINT64 = _Int(0, 2**64 - 1, "uint64")
FLOAT = _Float()
ANY = _Any()
STR_LIST = _List(STR)


def list_of(item: Field) -> Field:
    return _List(item)


def map_of(item: Field) -> Field:
    return _Map(item)


def fold_key(key: str) -> str:
    """A key as Go's case-insensitive field match sees it (EqualFold: ASCII case, plus the
    long s and the Kelvin sign, which lower() folds)."""
    return key.lower().replace("\u017f", "s")


def _members(document: dict):
    return document.members if isinstance(document, Members) else document.items()


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, HugeNumber) or type(value) in (int, float):
        return "a number"
    if type(value) is str:
        return "a string"
    if type(value) is list:
        return "an array"
    return "an object"


def decode_struct(raw: bytes | str, struct: Struct, previous: dict | None = None) -> dict:
    """Decode `raw` into `struct` as Go's json.Unmarshal would, on top of `previous`.

    Returns the known fields under their tags (a JSON `null` document changes nothing);
    raises ValueError for a syntax error, a document that is not an object, or a member Go
    could not assign."""
    document = loads(raw)
    if document is None:
        return dict(previous or {})
    if not isinstance(document, dict):
        raise ValueError(f"cannot decode {_json_type(document)} into a struct")
    try:
        return struct.assign(document, previous)
    except _Mismatch as mismatch:
        raise ValueError(f"cannot decode into Go {mismatch}") from None
