"""Reading a NATS header block (`NATS/1.0\r\nName: value\r\n...\r\n\r\n`) and writing one."""

from __future__ import annotations


def header(block: bytes, name: str) -> str:
    """The first value of header `name` (exact case, as nats-server's getHeader), or ""."""
    key = b"\r\n" + name.encode() + b":"
    at = block.find(key)
    if at < 0:
        return ""
    start = at + len(key)
    end = block.find(b"\r\n", start)
    if end < 0:
        end = len(block)
    return block[start:end].strip().decode("utf-8", "replace")


def status(code: int, description: str, extra: dict | None = None) -> bytes:
    """A status-only header block (`NATS/1.0 404 No Messages`)."""
    lines = [f"NATS/1.0 {code} {description}".encode()]
    for name, value in (extra or {}).items():
        lines.append(f"{name}: {value}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


def block(fields: dict, base: bytes = b"") -> bytes:
    """A header block with `fields` added after those of `base` (a block or empty)."""
    lines = base[:-2] if base.endswith(b"\r\n\r\n") else b"NATS/1.0\r\n"
    for name, value in fields.items():
        lines += f"{name}: {value}\r\n".encode()
    return lines + b"\r\n"
