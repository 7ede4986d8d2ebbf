"""Parse the NATS configuration language (nats-server's `.conf` files) into Python values.

`parse(text)` / `parse_file(path)` return a `ConfMap` (a dict) whose values are `str`, `int`,
`float`, `bool`, `datetime` (UTC), `ConfMap` or `ConfList`. Maps remember where each key was
written (`positions`) and which of their keys were referenced as `$variables` (`variables`);
lists remember where each element was written. Sizes (`2MB`, `1k`, `1Gi`) become ints;
durations (`"30s"`) stay strings for the options loader. Every problem is a
`ConfigSyntaxError` whose text is `<file>:<line>:<col>: <message>`.

The accepted language is nats-server 2.15.1's, including its odd corners, because users bring
their existing files: `port 4222 }` is valid, `[1]` is not (an unsigned integer directly
followed by `]` lexes as the string `1]`), an unquoted `1k]` is the string `1k`, `include /abs`
is joined onto the including file's directory, and a file that ends right after an opening
quote in a list is accepted with the unfinished value dropped. Where nats-server silently
misreads a document (or crashes), this parser reports an error instead; those places are
marked "Stricter than nats-server".
"""

from __future__ import annotations

import bisect
import datetime
import os
import re
from collections.abc import Mapping

import attrs

__all__ = ["ConfList", "ConfMap", "ConfigSyntaxError", "Position", "parse", "parse_file"]


@attrs.frozen
class Position:
    """Where a key or value was written: file as given (or "<string>"), 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ConfMap(dict):
    """A map (the whole file or a `{ }` block), keys as written.

    `positions[key]` is where the key was written; `variables` holds the keys of this map that
    were referenced as `$key` (nats-server exempts those from its unknown-field check).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.positions: dict[str, Position] = {}
        self.variables: set[str] = set()


class ConfList(list):
    """An array; `positions[i]` is where element i was written."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.positions: list[Position] = []


class ConfigSyntaxError(Exception):
    """A configuration problem at file:line:column; str() is `<file>:<line>:<col>: <message>`."""

    def __init__(self, file: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}")
        self.file = file
        self.line = line
        self.column = column
        self.message = message

    def __reduce__(self):
        return (type(self), (self.file, self.line, self.column, self.message))


def parse(
    text: str, *, filename: str = "<string>", env: Mapping[str, str] | None = None
) -> ConfMap:
    """Parse configuration text. Includes resolve against `filename`'s directory (or the cwd)."""
    base_dir = "." if filename == "<string>" else (os.path.dirname(filename) or ".")
    shared = _Shared(os.environ if env is None else env)
    return _Parser(text, filename, base_dir, shared, include_chain=(), depth=0).parse_document()


def parse_file(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> ConfMap:
    """Parse a configuration file; OSError if it cannot be read (problems in includes are
    ConfigSyntaxErrors at the `include`)."""
    filename = os.fspath(path)
    with open(filename, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    shared = _Shared(os.environ if env is None else env)
    parser = _Parser(
        text,
        filename,
        os.path.dirname(filename) or ".",
        shared,
        include_chain=(os.path.realpath(filename),),
        depth=0,
    )
    return parser.parse_document()


# How it works
# ------------
# One scannerless recursive-descent pass over the text, building values as it goes; there is
# no token list. The shape follows nats-server's lexer, whose behaviour is defined by which
# characters each context accepts, so the code is organised by those contexts:
#
#   statements   top level and the optional outer `{ }` (which does not open a new map):
#                `_statements` is a small state loop because outer braces nest oddly
#   entry        a key (bare or quoted), or `include <path>`, then an optional `=`/`:`,
#                then a value (`_top_entry`, `_map`)
#   value        `_value` dispatches on the first character: `[` list, `{` map, quotes,
#                `(` block string, `-`/digit numbers (which fall back to unquoted strings,
#                IPs or date-times), anything else an unquoted string (bool, $variable)
#   value end    what may follow a value differs per context (top, outer block, map, list)
#
# Variables are resolved the moment they are read, against the maps still being built
# (innermost first, so only keys written before the reference), then the environment,
# whose value is parsed as `pk=<value>` by a fresh parser. Includes are parsed by a fresh
# parser (they do not see the includer's variables) and their keys merged in place.
# Character classes are Go's (`unicode.IsSpace`, `unicode.IsDigit`), not Python's.

# Go's unicode.IsSpace (Python's str.isspace also accepts \x1c-\x1f).
_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_BLANKS = frozenset(" \t")
_NEWLINES = frozenset("\r\n")
_SEPARATORS = frozenset("=:")
# What may end an entry besides a newline (a lone `/` counts, except at the top level).
_TOP_TERMINATORS = frozenset(";,}")
_BLOCK_TERMINATORS = frozenset(";,")
_MAP_SEPARATORS = frozenset(";,/")
_LIST_SEPARATORS = frozenset(",/")
# Characters that end an unquoted string (end of input too); `'` also ends it, and is eaten.
_UNQUOTED_STOP = frozenset("\r\n;,]} \t")
# Characters that end a number: no `]` here, which is why nats-server reads `[1]` as `1]`.
_NUMBER_STOP = frozenset("\r\n};, \t")
_INCLUDE_PATH_STOP = frozenset("\r\n;} \t")
_SIZE_LETTERS = frozenset("kKmMgGtTpPeE")
_SIZE_TAIL_LETTERS = frozenset("bBiI")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_ASCII_DIGITS = frozenset("0123456789")

_SIZE_MULTIPLIERS = {"": 1}
for _exp, _letter in enumerate("kmgtpe", start=1):
    _SIZE_MULTIPLIERS[_letter] = 1000**_exp
    for _tail in ("b", "i", "ib"):
        _SIZE_MULTIPLIERS[_letter + _tail] = 1024**_exp

_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\"}
# `$2a$...` is a bcrypt hash, not a variable (other bcrypt prefixes must be quoted).
_BCRYPT_PREFIX = "2a$"
# Name of the key an environment value is parsed under (`pk=<value>`), as nats-server does.
_ENV_KEY = "pk"
# Maps + lists + includes + environment lookups nested inside each other. Stricter than
# nats-server, which has no limit: this keeps Python's recursion limit out of reach.
_MAX_DEPTH = 100
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_ESCAPED_SPACES = re.escape("".join(sorted(_SPACES)))
_BARE_KEY_RE = re.compile(f"[^=:{_ESCAPED_SPACES}]*")
_UNQUOTED_RE = re.compile(r"[^\\'\r\n;,\]} \t]*")
_LINE_END_RE = re.compile(r"[\r\n]")


def _is_digit(c: str) -> bool:
    # Go's unicode.IsDigit: any decimal digit (category Nd), not only ASCII.
    return c != "" and c.isdecimal()


def _describe(c: str) -> str:
    """A character as nats-server's messages quote it ('' is the end of the input)."""
    if c == "":
        return "EOF"
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, c)


def _wrap_int64(n: int) -> int:
    # nats-server multiplies size suffixes in int64 without an overflow check.
    return (n - _INT64_MIN) % 2**64 + _INT64_MIN


def _go_join(base_dir: str, path: str) -> str:
    # Go's filepath.Join: `path` is appended even when absolute (`include /x` from
    # /etc/nats/a.conf reads /etc/nats/x), then the result is cleaned.
    return os.path.normpath(f"{base_dir}/{path}" if path else base_dir)


class _EndOfInput(Exception):
    """nats-server stops reading here and keeps what it has (an opening quote at the very end
    of the input, or a key with nothing after it)."""


@attrs.define
class _Shared:
    """State shared by a parser and the parsers it starts for environment values."""

    env: Mapping[str, str]
    # Environment variables being resolved right now, to detect A -> B -> A.
    resolving: set[str] = attrs.Factory(set)


class _Parser:
    def __init__(
        self,
        text: str,
        filename: str,
        base_dir: str,
        shared: _Shared,
        include_chain: tuple[str, ...],
        depth: int,
    ) -> None:
        self.text = text
        self.end = len(text)
        self.pos = 0
        self.filename = filename
        self.base_dir = base_dir
        self.shared = shared
        self.include_chain = include_chain
        self.depth = depth
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        # Maps still being built, outermost first: the scopes `$name` is looked up in.
        self.scopes: list[ConfMap] = []
        # The key just read, until something else is read. nats-server rejects a document
        # that ends right after a key (except a key named `}`, for JSON-like files).
        self.pending_key: str | None = None

    # -- helpers ----------------------------------------------------------------------

    def position(self, pos: int) -> Position:
        line_index = bisect.bisect_left(self.newlines, pos)
        line_start = self.newlines[line_index - 1] + 1 if line_index else 0
        return Position(self.filename, line_index + 1, pos - line_start + 1)

    def error(self, pos: int, message: str) -> ConfigSyntaxError:
        p = self.position(pos)
        return ConfigSyntaxError(p.file, p.line, p.column, message)

    def char(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def at_comment(self) -> bool:
        return self.char() == "#" or self.text.startswith("//", self.pos)

    def skip_comment(self) -> None:
        m = _LINE_END_RE.search(self.text, self.pos)
        self.pos = m.start() if m else self.end
        self.pending_key = None

    def skip(self, chars: frozenset[str]) -> None:
        text, pos, end = self.text, self.pos, self.end
        while pos < end and text[pos] in chars:
            pos += 1
        self.pos = pos

    def enter(self, pos: int) -> None:
        """One level deeper (a map, list, include or environment value); undone by the caller."""
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(pos, f"configuration nested more than {_MAX_DEPTH} levels deep")

    @staticmethod
    def assign(target: ConfMap, key: str, position: Position, value, used: bool = False) -> None:
        # Last one wins. A redefined key forgets that the old value was used as a
        # variable, as nats-server's per-value flag does.
        target[key] = value
        target.positions[key] = position
        if used:
            target.variables.add(key)
        else:
            target.variables.discard(key)

    # -- statements -------------------------------------------------------------------

    def parse_document(self) -> ConfMap:
        nul = self.text.find("\0")
        if nul >= 0:
            # Stricter than nats-server, whose lexer takes NUL for the end of the input in
            # some places and not in others; no real file has one.
            raise self.error(nul, "NUL characters are not allowed")
        root = ConfMap()
        self.scopes.append(root)
        try:
            self._statements(root)
        except _EndOfInput:
            pass
        if self.pending_key is not None and self.pending_key != "}":
            raise self.error(self.end, f"config is invalid: key {self.pending_key!r} has no value")
        return root

    def _statements(self, root: ConfMap) -> None:
        # States: "top", "block" (inside outer braces), their "...-end" states after an
        # entry, and "block-close" (between an inner and an outer `}`). `returns` holds the
        # state to resume when an outer brace closes.
        state = "top"
        returns: list[str] = []
        while True:
            c = self.char()
            if state in ("top", "block"):
                self.skip(_SPACES)
                c = self.char()
                if c == "{":
                    self.pos += 1
                    returns.append("top" if state == "top" else "block-close")
                    state = "block"
                elif c == "}" and state == "block":
                    self.pos += 1
                    state = returns.pop()
                elif self.at_comment():
                    self.skip_comment()
                elif c == "/":
                    raise self.error(self.pos, "unexpected '/' (comments start with '#' or '//')")
                elif c == "":
                    return  # an unclosed outer brace is fine
                else:
                    self._top_entry(root)
                    state += "-end"
            elif state == "top-end":
                if self.at_comment():
                    self.skip_comment()
                    state = "top"
                elif c == "/" or c in _BLANKS:
                    self.pos += 1  # a lone `/` after a value is ignored
                elif c == "" or c in _NEWLINES or c in _TOP_TERMINATORS:
                    self.pos += len(c)
                    state = "top"
                else:
                    raise self.error(
                        self.pos,
                        "Expected a top-level value to end with a new line, comment or EOF, "
                        f"but got '{_describe(c)}' instead.",
                    )
            elif state == "block-end":
                if self.at_comment():
                    self.skip_comment()
                elif c == "/" or c in _BLANKS:
                    self.pos += 1
                elif c in _NEWLINES or c in _BLOCK_TERMINATORS:
                    self.pos += 1
                    state = "block"
                elif c == "}":
                    state = "block-close"
                else:
                    raise self.error(
                        self.pos,
                        "Expected a block-level value to end with a new line, comment or EOF, "
                        f"but got '{_describe(c)}' instead.",
                    )
            else:  # block-close
                if self.at_comment():
                    self.skip_comment()
                    state = "block"
                elif c == "/" or c in _BLANKS or c in _NEWLINES:
                    self.pos += 1
                elif c in _BLOCK_TERMINATORS:
                    self.pos += 1
                    state = "block"
                elif c == "}":
                    self.pos += 1
                    state = returns.pop()
                else:
                    raise self.error(
                        self.pos,
                        "Expected a block-level to end with a '}', "
                        f"but got '{_describe(c)}' instead.",
                    )

    def _top_entry(self, target: ConfMap) -> None:
        """`key [=:] value` or `include path` at the top level or in outer braces."""
        start = self.pos
        c = self.char()
        if c in _SEPARATORS:
            raise self.error(start, f"Unexpected key separator '{c}'")
        if c in "\"'":
            close = self.text.find(c, start + 1)
            if close < 0:
                if start + 1 == self.end:
                    raise _EndOfInput  # nats-server stops at a quote that ends the file
                raise self.error(self.end, "Unexpected EOF in quoted key.")
            key = self.text[start + 1 : close]
            self.pos = close + 1
        else:
            key = self._bare_key(in_map=False)
            if key is None:
                return  # it was an include
        self.pending_key = key
        self.skip(_SPACES)
        c = self.char()
        if c == "":
            raise _EndOfInput
        if c in _SEPARATORS:
            self.pos += 1
        value = self._value()
        self.assign(target, key, self.position(start), value)

    def _bare_key(self, *, in_map: bool) -> str | None:
        """Read an unquoted key; None if it was the `include` keyword (handled here)."""
        start = self.pos
        # The first character is taken whatever it is (`}` and `[` can start a key).
        if start < self.end:
            self.pos = _BARE_KEY_RE.match(self.text, start + 1).end()
        key = self.text[start : self.pos]
        c = self.char()
        if c == "" and in_map:
            raise self.error(self.pos, "Unexpected EOF processing map key.")
        if c in _SPACES and key.lower() == "include":
            self._include(self.scopes[-1], start)
            return None
        self.pending_key = key
        return key

    # -- include ----------------------------------------------------------------------

    def _include(self, target: ConfMap, start: int) -> None:
        self.skip(_BLANKS)
        c = self.char()
        path_start = self.pos
        if c in ("'", '"'):
            close = self.text.find(c, path_start + 1)
            if close < 0:
                kind = "quoted" if c == "'" else "double quoted"
                raise self.error(self.end, f"Unexpected EOF in {kind} include")
            path = self.text[path_start + 1 : close]
            self.pos = close + 1
        else:
            refused = {
                "[": "start of an array",
                "{": "start of a map",
                "(": "start of a block",
                "-": "start of a number",
                "\\": "escape sequence",
                "\n": "new line",
                "\r": "new line",
            }.get(c, "start of a number" if _is_digit(c) else None)
            if refused:
                raise self.error(path_start, f"Expected include value but found {refused}")
            text, pos, end = self.text, path_start, self.end
            while pos < end and text[pos] not in _INCLUDE_PATH_STOP and text[pos] != "'":
                pos += 1
            path = text[path_start:pos]
            self.pos = pos + (text[pos : pos + 1] == "'")  # a `'` ends the path and is eaten
        self.pending_key = None
        included = self._parse_included(path, start)
        for key, value in included.items():
            self.assign(target, key, included.positions[key], value, key in included.variables)

    def _parse_included(self, path: str, start: int) -> ConfMap:
        full = _go_join(self.base_dir, path)
        real = os.path.realpath(full)
        if real in self.include_chain:  # stricter than nats-server: it overflows its stack
            chain = " -> ".join([*self.include_chain[self.include_chain.index(real) :], real])
            raise self.error(start, f"include cycle: {chain}")
        try:
            with open(full, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            raise self.error(
                start, f"error parsing include file '{path}', open {full}: {reason}"
            ) from None
        self.enter(start)
        try:
            parser = _Parser(
                text,
                full,
                os.path.dirname(full) or ".",
                _Shared(self.shared.env),
                self.include_chain + (real,),
                self.depth,
            )
            return parser.parse_document()
        finally:
            self.depth -= 1

    # -- values -----------------------------------------------------------------------

    def _value(self):
        self.skip(_BLANKS)
        start = self.pos
        c = self.char()
        if c == "[":
            value = self._list()
        elif c == "{":
            value = self._map()
        elif c == "'":
            value = self._single_quoted()
        elif c == '"':
            value = self._double_quoted()
        elif c == "-":
            value = self._negative_number()
        elif c == "(":
            value = self._block_string()
        elif _is_digit(c):
            value = self._number_like()
        elif c == ".":
            raise self.error(start, "Floats must start with a digit")
        elif c in _NEWLINES:
            raise self.error(start, "Expected value but found new line")
        else:
            value = self._unquoted(start)
        self.pending_key = None
        return value

    def _list(self) -> ConfList:
        self.enter(self.pos)
        self.pos += 1
        self.pending_key = None
        result = ConfList()
        while True:
            self.skip(_SPACES)
            c = self.char()
            if self.at_comment():
                self.skip_comment()
                continue
            if c in _LIST_SEPARATORS:  # an empty element
                raise self.error(self.pos, "Unexpected array value terminator ','.")
            if c == "]":
                self.pos += 1
                self.depth -= 1
                return result
            element_pos = self.position(self.pos)
            result.append(self._value())
            result.positions.append(element_pos)
            # After an element: blanks, comments, then `,` / newline / `/` or `]`.
            while True:
                c = self.char()
                if c in _BLANKS:
                    self.pos += 1
                elif self.at_comment():
                    self.skip_comment()
                elif c in _NEWLINES or c in _LIST_SEPARATORS:
                    self.pos += 1
                    break
                elif c == "]":
                    self.pos += 1
                    self.depth -= 1
                    return result
                else:
                    raise self.error(
                        self.pos,
                        'Expected an array value terminator "," or an array terminator "]", '
                        f"but got '{_describe(c)}' instead.",
                    )

    def _map(self) -> ConfMap:
        self.enter(self.pos)
        self.pos += 1
        self.pending_key = None
        result = ConfMap()
        self.scopes.append(result)
        while True:
            self.skip(_SPACES)
            start = self.pos
            c = self.char()
            if c in _SEPARATORS:
                raise self.error(start, f"Unexpected key separator '{c}'.")
            if c == "]":
                raise self.error(start, "Unexpected array end ']' processing map.")
            if c == "}":
                self.pos += 1
                break
            if self.at_comment():
                self.skip_comment()
                continue
            if c == "":
                raise self.error(start, "Unexpected EOF processing map.")
            if c in "\"'":
                close = self.text.find(c, start + 1)
                if close < 0:
                    kind = "quoted" if c == "'" else "double quoted"
                    raise self.error(self.end, f"Unexpected EOF processing {kind} map key.")
                key = self.text[start + 1 : close]
                self.pos = close + 1
                self.pending_key = key
            else:
                if c == "/":
                    # nats-server drops a lone `/` here and starts the key after it.
                    self.pos += 1
                    start = self.pos
                key = self._bare_key(in_map=True)
            if key is not None:
                self.skip(_SPACES)
                if self.char() in _SEPARATORS:
                    self.pos += 1
                    self.skip(_SPACES)
                c = self.char()
                if c == ",":
                    raise self.error(self.pos, "Unexpected map value terminator ','.")
                if c == "}":
                    # Stricter than nats-server, which stores the enclosing map under this
                    # key instead and then misassigns the next value.
                    raise self.error(self.pos, f"key {key!r} has no value")
                value = self._value()
                self.assign(result, key, self.position(start), value)
            # After an entry: blanks, comments, then `,` / `;` / newline / `/` or `}`.
            while True:
                c = self.char()
                if c in _BLANKS:
                    self.pos += 1
                elif self.at_comment():
                    self.skip_comment()
                elif c in _NEWLINES or c in _MAP_SEPARATORS:
                    self.pos += 1
                    break
                elif c == "}":
                    self.pos += 1
                    self.scopes.pop()
                    self.depth -= 1
                    return result
                else:
                    raise self.error(
                        self.pos,
                        'Expected a map value terminator "," or a map terminator "}", '
                        f"but got '{_describe(c)}' instead.",
                    )
        self.scopes.pop()
        self.depth -= 1
        return result

    def _single_quoted(self) -> str:
        start = self.pos + 1
        close = self.text.find("'", start)
        if close < 0:
            if start == self.end:
                raise _EndOfInput
            raise self.error(self.end, "Unexpected EOF in quoted string.")
        self.pos = close + 1
        return self.text[start:close]

    def _double_quoted(self) -> str:
        self.pos += 1
        parts: list[str | bytes] = []
        segment = self.pos
        text = self.text
        while True:
            c = self.char()
            if c == '"':
                parts.append(text[segment : self.pos])
                self.pos += 1
                return _join_parts(parts)
            if c == "\\":
                parts.append(text[segment : self.pos])
                parts.append(self._escape())
                segment = self.pos
            elif c == "":
                if self.pos == segment:
                    raise _EndOfInput  # nats-server stops here (after `"` or an escape)
                raise self.error(self.pos, "Unexpected EOF in quoted string.")
            else:
                self.pos += 1

    def _escape(self) -> str | bytes:
        """Read `\\c` at self.pos; bytes for `\\xHH` (joined and decoded as UTF-8 later)."""
        backslash = self.pos
        c = self.text[backslash + 1 : backslash + 2]
        self.pos = backslash + 2
        if c and c in _ESCAPES:
            return _ESCAPES[c]
        if c != "x":
            raise self.error(
                backslash,
                f"Invalid escape character '{_describe(c)}'. Only the following escape "
                'characters are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.',
            )
        digits = self.text[self.pos : self.pos + 2]
        if any(d in _NEWLINES for d in digits):
            raise self.error(
                backslash, "Expected two hexadecimal digits after '\\x', but hit end of line"
            )
        if len(digits) < 2 or not all(d in _HEX_DIGITS for d in digits):
            raise self.error(
                backslash, f"Expected two hexadecimal digits after '\\x', but got '{digits}'"
            )
        self.pos += 2
        return bytes([int(digits, 16)])

    def _unquoted(self, start: int):
        """An unquoted string from `start`, scanning on from self.pos (a number that turned
        out to be a string has already consumed some of it). Bool, $variable or str."""
        text = self.text
        parts: list[str | bytes] = []
        segment = start
        while True:
            self.pos = _UNQUOTED_RE.match(text, self.pos).end()
            c = self.char()
            if c == "\\":
                parts.append(text[segment : self.pos])
                parts.append(self._escape())
                segment = self.pos
                continue
            parts.append(text[segment : self.pos])
            if c == "'":
                self.pos += 1  # ends the string, always a plain string
                return _join_parts(parts)
            if len(parts) > 1:
                return _join_parts(parts)  # escaped: never a bool or variable
            word = parts[0]
            boolean = _BOOLEANS.get(word.lower())
            if boolean is not None:
                return boolean
            if word.startswith("$"):
                return self._variable(word[1:], start)
            return word

    def _number_like(self):
        """A value starting with a digit: integer, size, float, IP-like string, date-time,
        or (anything else) an unquoted string."""
        start = self.pos
        self.pos += 1
        text = self.text
        while True:
            c = self.char()
            if _is_digit(c):
                self.pos += 1
            elif c == "-":
                self.pos += 1
                # A date is the only number with a `-` after the first four digits.
                if len(text[start : self.pos].encode("utf-8", "surrogatepass")) != 5:
                    raise self.error(start, "All ISO8601 dates must be in full Zulu form.")
                return self._datetime(start)
            elif c == ".":
                self.pos += 1
                return self._float_or_ip(start)
            elif c in _SIZE_LETTERS:
                self.pos += 1
                return self._size(start)
            elif c == "" or c in _NUMBER_STOP:
                return self._integer(start)
            else:
                self.pos += 1  # taken literally, even `\`, `'` or `]`
                return self._unquoted(start)

    def _negative_number(self):
        start = self.pos
        self.pos += 1
        c = self.char()
        if not _is_digit(c):
            if c == ".":
                raise self.error(self.pos, "Floats must start with a digit, not '.'.")
            raise self.error(self.pos, f"Expected a digit but got '{_describe(c)}'.")
        while _is_digit(self.char()):
            self.pos += 1
        c = self.char()
        if c == ".":
            self.pos += 1
            return self._float_or_ip(start)
        if c in _SIZE_LETTERS:
            self.pos += 1
            return self._size(start)
        return self._integer(start)  # whatever follows is the next context's business

    def _float_or_ip(self, start: int):
        """After `digits.`: a float, or with a second `.` an IP-like string (`1.2.3.4:4222`)."""
        c = self.char()
        if not _is_digit(c):
            raise self.error(
                self.pos,
                f"Floats must have a digit after the '.', but got '{_describe(c)}' instead.",
            )
        while _is_digit(self.char()):
            self.pos += 1
        if self.char() == ".":
            self.pos += 1
            while True:
                c = self.char()
                if not (_is_digit(c) or (c and c in ".:-")):
                    return self.text[start : self.pos]
                self.pos += 1
        token = self.text[start : self.pos]
        if not token.isascii():  # Go's ParseFloat takes ASCII digits only
            raise self.error(start, f"expected float, but got '{token}'")
        value = float(token)
        if value in (float("inf"), float("-inf")):
            raise self.error(start, f"float '{token}' is out of the range")
        return value

    def _size(self, start: int):
        """After `digits<k|m|g|t|p|e>`: a size like `2MB`, or an unquoted string like `1kx`."""
        self.skip(_SIZE_TAIL_LETTERS)
        c = self.char()
        if c == "" or c in _NUMBER_STOP:
            return self._integer(start)
        return self._unquoted(start)  # `c` is read again as part of the string

    def _integer(self, start: int) -> int:
        token = self.text[start : self.pos]
        digits_end = 1 if token.startswith("-") else 0
        while digits_end < len(token) and _is_digit(token[digits_end]):
            digits_end += 1
        digits, suffix = token[:digits_end], token[digits_end:].lower()
        if not digits.isascii():
            raise self.error(start, f"expected integer, but got '{token}'")
        number = int(digits)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise self.error(start, f"integer '{token}' is out of the range")
        multiplier = _SIZE_MULTIPLIERS.get(suffix)
        if multiplier is None:
            # Stricter than nats-server, which silently drops such a value (`1kbb`, `1ii`)
            # and then misassigns the next one.
            raise self.error(start, f"invalid size suffix in '{token}'")
        return _wrap_int64(number * multiplier)

    def _datetime(self, start: int) -> datetime.datetime:
        """After `YYYY-`: the rest of a Zulu date-time `MM-DDTHH:MM:SSZ`, nothing else."""
        for expected in "00-00T00:00:00Z":
            c = self.char()
            if expected == "0":
                if not _is_digit(c):
                    raise self.error(
                        self.pos,
                        f"Expected digit in ISO8601 datetime, but found '{_describe(c)}' instead.",
                    )
            elif c != expected:
                raise self.error(
                    self.pos,
                    f"Expected '{expected}' in ISO8601 datetime, "
                    f"but found '{_describe(c)}' instead.",
                )
            self.pos += 1
        token = self.text[start : self.pos]
        try:
            if not token.isascii():
                raise ValueError(token)
            return datetime.datetime.strptime(token, "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc
            )
        except ValueError:
            message = f"expected Zulu formatted DateTime, but got '{token}'"
            raise self.error(start, message) from None

    def _block_string(self) -> str:
        """`( ... )`: raw text up to a `)` alone at the start of a line (then newline or EOF).
        The value keeps the newline after `(` and the one before `)`."""
        body = self.pos + 1
        search = body
        while True:
            close = self.text.find(")", search)
            if close < 0:
                raise self.error(self.end, "Unexpected EOF processing block.")
            if self.text[close - 1] == "\n" and self.text[close + 1 : close + 2] in ("\n", ""):
                self.pos = close + 1
                return self.text[body:close]
            search = close + 1

    # -- variables --------------------------------------------------------------------

    def _variable(self, name: str, start: int):
        if name.startswith(_BCRYPT_PREFIX):
            return "$" + name
        for scope in reversed(self.scopes):
            if name in scope:
                scope.variables.add(name)
                return scope[name]
        line = self.position(start).line
        resolving = self.shared.resolving
        if name in resolving:
            raise self.error(
                start,
                f"variable reference for '{name}' on line {line} could not be parsed: "
                f"variable reference cycle for '{name}'",
            )
        raw = self.shared.env.get(name)
        if raw is not None:
            self.enter(start)
            resolving.add(name)
            try:
                parser = _Parser(
                    f"{_ENV_KEY}={raw}", f"<env {name}>", ".", self.shared, (), self.depth
                )
                parsed = parser.parse_document()
            except ConfigSyntaxError as e:
                raise self.error(
                    start,
                    f"variable reference for '{name}' on line {line} could not be parsed: "
                    f"{e.message}",
                ) from None
            finally:
                resolving.discard(name)
                self.depth -= 1
            if _ENV_KEY in parsed:
                return parsed[_ENV_KEY]
        raise self.error(start, f"variable reference for '{name}' on line {line} can not be found")


def _join_parts(parts: list[str | bytes]) -> str:
    """Join string pieces; `\\xHH` bytes are decoded as UTF-8 with their neighbours, so
    `"\\xc3\\xa9"` is "é" (an invalid sequence becomes U+FFFD)."""
    if not any(isinstance(p, bytes) for p in parts):
        return "".join(parts)  # type: ignore[arg-type]
    raw = b"".join(p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass") for p in parts)
    return raw.decode("utf-8", "replace")
