"""Go's host:port parsing, as nats-server applies it (net.SplitHostPort, strconv.Atoi and its
own parseHostPort), with Go's error texts: the listen addresses, client_advertise and the
remote syslog address all take these rules."""

from __future__ import annotations

import json


class AddrError(ValueError):
    """Go's net.AddrError: `address <addr>: <why>`."""

    def __init__(self, address: str, why: str) -> None:
        super().__init__(f"address {address}: {why}" if address else why)
        self.why = why


def split_host_port(text: str) -> tuple[str, str]:
    """Go's net.SplitHostPort: `host:port` or `[v6 host]:port`, errors in Go's words."""
    colon = text.rfind(":")
    if colon < 0:
        raise AddrError(text, "missing port in address")
    j = k = 0
    if text[0] == "[":
        end = text.find("]")
        if end < 0:
            raise AddrError(text, "missing ']' in address")
        if end + 1 == len(text):
            raise AddrError(text, "missing port in address")
        if end + 1 != colon:
            if text[end + 1] == ":":
                raise AddrError(text, "too many colons in address")
            raise AddrError(text, "missing port in address")
        host = text[1:end]
        j, k = 1, end + 1
    else:
        host = text[:colon]
        if ":" in host:
            raise AddrError(text, "too many colons in address")
    if "[" in text[j:]:
        raise AddrError(text, "unexpected '[' in address")
    if "]" in text[k:]:
        raise AddrError(text, "unexpected ']' in address")
    return host, text[colon + 1 :]


def go_atoi(text: str) -> int:
    """Go's strconv.Atoi (64-bit int), errors in Go's words."""
    quoted = json.dumps(text, ensure_ascii=False)  # Go's strconv.Quote for what matters here
    body = text[1:] if text[:1] in "+-" else text
    if not body or not all("0" <= char <= "9" for char in body):
        raise ValueError(f"strconv.Atoi: parsing {quoted}: invalid syntax")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"strconv.Atoi: parsing {quoted}: value out of range")
    return value


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """nats-server's parseHostPort: `host` or `host:port`; a missing port, 0 or -1 means
    `default_port`. Anything else Go's parsers take is kept as is (`h:-5` is port -5, and
    `h:99999` is not refused). ValueError carries Go's error text."""
    if not text:
        raise ValueError("no hostport specified")
    try:
        host, port_text = split_host_port(text)
    except AddrError as exc:
        if "missing port" not in exc.why:
            raise
        host, port_text = split_host_port(f"{text}:{default_port}")
    port = go_atoi(port_text.strip())
    if port in (0, -1):
        port = default_port
    return host.strip(), port
