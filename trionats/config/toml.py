"""TOML configuration files: the same option names as the NATS conf language, read with tomli.

tomli gives values but no positions, so a light scan of the text finds the line of each key
(the `[table]` headers it sits under and its `key =` line); that is enough for errors to name
file:line as they do for NATS conf files. Sizes may be written as strings ("2MB") for the
size options.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomli

from .natsconf import ConfigSyntaxError, ConfList, ConfMap, Position

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.-]+)\s*=""")
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGTPE]I?B?|[KMGTPE])\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15, "e": 10**18}
#: The options whose values are sizes: only there is "2MB" a number (`server_name = "2m"` is
#: a name).
_SIZE_KEYS = frozenset(
    {"max_payload", "max_control_line", "max_pending", "log_size_limit", "logfile_size_limit"}
)


def _size_text(text: str) -> int | None:
    """"2MB" -> 2097152, "1k" -> 1000, as the conf language's size suffixes."""
    match = _SIZE.match(text)
    if match is None:
        return None
    number, suffix = int(match.group(1)), match.group(2).lower()
    if len(suffix) == 1:
        return number * _SIZE_FACTORS[suffix]
    return number * 1024 ** ("kmgtpe".index(suffix[0]) + 1)


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """(table path..., key) -> line number, from a scan of the TOML text."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            table = tuple(part.strip().strip("\"'") for part in header.group(1).split("."))
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(line)
        if assign:
            key = tuple(part.strip("\"'") for part in assign.group(1).split("."))
            lines.setdefault(table + key, number)
    return lines


def _convert(value, path: tuple[str, ...], file: str, lines: dict) -> object:
    if isinstance(value, dict):
        result = ConfMap()
        for key, item in value.items():
            result[key] = _convert(item, path + (key,), file, lines)
            result.positions[key] = Position(file, lines.get(path + (key,), 1), 1)
        return result
    if isinstance(value, list):
        items = ConfList(_convert(item, path, file, lines) for item in value)
        items.positions = [Position(file, lines.get(path, 1), 1)] * len(items)
        return items
    if isinstance(value, str) and path and path[-1].lower() in _SIZE_KEYS:
        size = _size_text(value)
        if size is not None:
            return size
    return value


def read_toml(path: Path) -> ConfMap:
    """Parse a TOML file into the same ConfMap shape the NATS conf parser returns."""
    text = path.read_text(encoding="utf-8")
    try:
        document = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or 1
        column = getattr(exc, "colno", None) or 1
        message = getattr(exc, "msg", None) or str(exc)
        raise ConfigSyntaxError(str(path), line, column, message) from None
    return _convert(document, (), str(path), _key_lines(text))
