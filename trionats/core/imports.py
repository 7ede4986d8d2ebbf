"""Imports between accounts on one server: stream and service imports as bridges in the core.

How it works. An import is a subscription in the sublist of the account messages come from,
whose "client" is a bridge (`dispatch.Bridge`): a publisher's plan lists it apart, and the
delivery core hands it each matching message, which it passes into the other account through
a `Dispatcher` of its own, with the subject mapped, as if a client there had published it.

* A stream import subscribes, in the exporter's sublist, to the imported subject; it passes
  each message into the importer under the `prefix` or `to` mapping, reply as it is.
* A service import subscribes, in the importer's sublist, to its local subject (`to`, or
  the service's subject); it passes each request into the exporter on the service's
  subject, with the reply subject replaced by a fresh `_R_.<account prefix>.<token>` of the
  exporter. The exporter's `Responses` (a subscription to `_R_.<account prefix>.>`) maps
  each such reply back to the requester's reply in the importer: for one response (a
  singleton service), or until the export's response threshold (stream, chunked).

Imports form no cycles (the configuration refuses them, as nats-server), and a bridge
never re-enters itself. Pure code: no trio, no I/O; the clock is handed in.
"""

from __future__ import annotations

import json
import random
import string
from collections import OrderedDict

from ..protocol.subjects import has_wildcard
from .dispatch import Bridge, Dispatcher
from .sublist import Subscription

#: Response types of a service export (nats-server's ServiceRespType).
SINGLETON, STREAM, CHUNKED = "singleton", "stream", "chunked"
#: How long a service import's reply mapping waits for responses (nats-server's
#: DEFAULT_SERVICE_EXPORT_RESPONSE_THRESHOLD); past it, responses are dropped.
RESPONSE_THRESHOLD = 120.0
#: The header a service import's request carries into the exporter (nats-server's
#: ClientInfoHdr): who asked, as JSON.
REQUEST_INFO = b"Nats-Request-Info"
#: Reply mappings an account keeps at most (the oldest go first past it).
MAX_RESPONSES = 100_000

_ALPHABET = string.ascii_letters + string.digits
_random = random.Random()


def _token(length: int) -> str:
    return "".join(_random.choice(_ALPHABET) for _ in range(length))


class _Counters:
    """Where a bridge's dispatcher counts: nowhere (the publisher's dispatcher counts the
    message once, with what the bridges delivered)."""

    in_msgs = in_bytes = out_msgs = out_bytes = 0


class Transform:
    """A subject mapping: `source` pattern -> `dest` (a literal, or the pattern's wildcards
    in order: each `*` of `dest`, or `$n`, takes the n-th `*` of the subject, `>` its tail)."""

    __slots__ = ("source", "dest", "_identity", "_literal", "_dest_tokens")

    def __init__(self, source: bytes, dest: bytes) -> None:
        self.source = source
        self.dest = dest
        self._identity = source == dest
        self._literal = not has_wildcard(dest) and b"$" not in dest
        self._dest_tokens = dest.split(b".")

    def __call__(self, subject: bytes) -> bytes:
        if self._identity:
            return subject
        if self._literal:
            return self.dest
        tokens = subject.split(b".")
        stars = []
        tail = b""
        for index, pattern in enumerate(self.source.split(b".")):
            if pattern == b"*":
                stars.append(tokens[index])
            elif pattern == b">":
                tail = b".".join(tokens[index:])
                break
        out = []
        star = 0
        for token in self._dest_tokens:
            if token == b"*":
                out.append(stars[star] if star < len(stars) else token)
                star += 1
            elif token == b">":
                out.append(tail)
            elif token[:1] == b"$" and token[1:].isdigit():
                n = int(token[1:]) - 1
                out.append(stars[n] if 0 <= n < len(stars) else token)
            else:
                out.append(token)
        return b".".join(out)


def set_header(key: bytes, value: bytes, header_size: int, data: bytes) -> tuple[int, bytes]:
    """`data` (headers + payload + CRLF) with header `key` set to `value` (any earlier
    `key` line removed), and the new header size (nats-server's setHeader)."""
    if header_size > 2:
        lines = data[: header_size - 2].split(b"\r\n")
        prefix = key.lower() + b":"
        kept = [line for line in lines[1:] if line and not line.lower().startswith(prefix)]
        head = b"\r\n".join([lines[0], *kept]) + b"\r\n"
        body = data[header_size:]
    else:
        head = b"NATS/1.0\r\n"
        body = data
    head += key + b": " + value + b"\r\n\r\n"
    return len(head), head + body


class StreamImport(Bridge):
    """A stream import: in the exporter's sublist, passes messages into the importer."""

    def __init__(self, exporter, importer, subject: bytes, to: bytes, clock) -> None:
        self.exporter = exporter
        self.importer = importer
        self.map = Transform(subject, to)
        # To this server's subscribers only: a peer gets the exporter's message itself (our
        # announced interest in the exporter, as nats-server's shadow subscriptions).
        self.dispatch = Dispatcher(self, importer.sublist, _Counters(), clock, local=True)
        self.subscription = Subscription(self, subject, None, b"")
        self.in_msgs = self.in_bytes = 0
        self._busy = False

    def deliver(self, subject: bytes, reply: bytes, header_size: int, data: bytes,
                source=None) -> int:  # fmt: skip
        if self._busy:
            return 0
        self._busy = True
        try:
            mapped = self.map(subject)
            dispatch = self.dispatch
            return dispatch.message(dispatch.plan(mapped), mapped, reply, header_size, data)
        finally:
            self._busy = False

    def __repr__(self) -> str:
        return f"<StreamImport {self.exporter.name} -> {self.importer.name} {self.map.source!r}>"


class ServiceImport(Bridge):
    """A service import: in the importer's sublist, passes requests into the exporter,
    their replies mapped through the exporter's `Responses`."""

    def __init__(self, importer, exporter, local: bytes, subject: bytes, responses,
                 response_type: str, threshold: float, clock, describe=None) -> None:  # fmt: skip
        self.importer = importer
        self.exporter = exporter
        self.map = Transform(local, subject)
        self.responses = responses
        self.response_type = response_type
        self.threshold = threshold
        self.clock = clock
        #: A shared import (`share: true`): `describe(source)` gives the requester's
        #: full ClientInfo for the request's header; None: its account and RTT only.
        self.describe = describe
        self.dispatch = Dispatcher(self, exporter.sublist, _Counters(), clock)
        #: Responses go back into the importer through this one.
        self.back = Dispatcher(self, importer.sublist, _Counters(), clock)
        # The same for messages that came from a route, which go no further (one hop).
        self.dispatch_local = Dispatcher(self, exporter.sublist, _Counters(), clock, local=True)
        self.back_local = Dispatcher(self, importer.sublist, _Counters(), clock, local=True)
        self.subscription = Subscription(self, local, None, b"")
        self.in_msgs = self.in_bytes = 0
        self._busy = False

    def deliver(self, subject: bytes, reply: bytes, header_size: int, data: bytes,
                source=None) -> int:  # fmt: skip
        if self._busy:
            return 0
        self._busy = True
        try:
            mapped = self.map(subject)
            if reply:
                reply = self.responses.add(self, reply)
            header_size, data = set_header(REQUEST_INFO, self._request_info(source), header_size, data)
            dispatch = self.dispatch_local if _routed(source) else self.dispatch
            return dispatch.message(dispatch.plan(mapped), mapped, reply, header_size, data)
        finally:
            self._busy = False

    def _request_info(self, source) -> bytes:
        """nats-server's ClientInfo of the requester: in full for a shared import (of a
        client), else its account and RTT."""
        if self.describe is not None and getattr(source, "cid", None) is not None:
            info = self.describe(source)
        else:
            info = {"acc": self.importer.name}
            rtt = int(getattr(source, "rtt", 0) * 1e9)
            if rtt:
                info["rtt"] = rtt
        return json.dumps(info, separators=(",", ":")).encode()

    def __repr__(self) -> str:
        return f"<ServiceImport {self.importer.name} -> {self.exporter.name} {self.map.dest!r}>"


class Responses(Bridge):
    """An exporting account's reply mappings: `_R_.<prefix>.<token>` -> (service import,
    the requester's reply, whether one response ends it, when it expires)."""

    def __init__(self, account, clock, limit: int = MAX_RESPONSES) -> None:
        self.account = account
        self.clock = clock
        self.limit = limit
        self.prefix = b"_R_." + _token(6).encode() + b"."
        self.subscription = Subscription(self, self.prefix + b">", None, b"")
        self.pending: OrderedDict[bytes, tuple] = OrderedDict()
        self.in_msgs = self.in_bytes = 0

    def add(self, service: ServiceImport, reply: bytes) -> bytes:
        """A fresh reply subject in the exporter for a request answered at `reply`."""
        now = self.clock()
        pending = self.pending
        while pending:  # expired mappings go, oldest first
            first = next(iter(pending.values()))
            if first[3] > now and len(pending) < self.limit:
                break
            pending.popitem(last=False)
        mapped = self.prefix + _token(6).encode()
        while mapped in pending:
            mapped = self.prefix + _token(6).encode()
        single = service.response_type == SINGLETON
        pending[mapped] = (service, reply, single, now + service.threshold)
        return mapped

    def deliver(self, subject: bytes, reply: bytes, header_size: int, data: bytes,
                source=None) -> int:  # fmt: skip
        entry = self.pending.get(subject)
        if entry is None:
            return 0
        service, original, single, expires = entry
        if single or expires <= self.clock():
            del self.pending[subject]
            if not single:
                return 0  # past the threshold: dropped
        back = service.back_local if _routed(source) else service.back
        return back.message(back.plan(original), original, reply, header_size, data)

    def __repr__(self) -> str:
        return f"<Responses {self.account.name} {self.prefix!r}>"


def _routed(source) -> bool:
    """Whether a message came from a route (it then goes to local subscribers only)."""
    return source is not None and source.is_route


#: The services every account imports from the system account (nats-server's
#: registerSystemImports): local subject -> the system account's subject (`%s`: the
#: importing account's name), response type, shared.
SYSTEM_IMPORTS = (
    (b"$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.ACCOUNT.%s.CONNZ", STREAM, False),
    (b"$SYS.REQ.SERVER.PING.CONNZ", "$SYS.REQ.ACCOUNT.%s.CONNZ", STREAM, False),
    (b"$SYS.REQ.ACCOUNT.PING.STATZ", "$SYS.REQ.ACCOUNT.%s.STATZ", STREAM, False),
    (b"$SYS.REQ.USER.INFO", "$SYS.REQ.USER.%s.INFO", SINGLETON, True),
)


def install(accounts, options, clock, describe=None) -> list:
    """Set up the configured imports in `accounts` (core/accounts.py) from `options.accounts`
    (already checked: every import is allowed and names an account), then the system
    account's services in every account: each bridge's subscription inserted where messages
    come from. `describe(client)` is a requester's ClientInfo for shared imports.
    Returns the bridges."""
    bridges: list = []
    responses: dict[str, Responses] = {}

    def router(exporter) -> Responses:
        found = responses.get(exporter.name)
        if found is None:
            found = responses[exporter.name] = Responses(exporter, clock)
            exporter.sublist.insert(found.subscription)
            bridges.append(found)
        return found

    exports = {account.name: account.exports for account in options.accounts}
    for account_options in options.accounts:
        importer = accounts[account_options.name]
        for spec in account_options.imports:
            exporter = accounts[spec.account]
            subject = spec.subject.encode()
            if spec.kind == "stream":
                if spec.prefix:
                    to = spec.prefix.rstrip(".").encode() + b"." + subject
                else:
                    to = spec.to.encode() if spec.to else subject
                bridge = StreamImport(exporter, importer, subject, to, clock)
                exporter.sublist.insert(bridge.subscription)
            else:
                export = find_export(exports.get(spec.account, ()), "service", spec.subject)
                local = (spec.to or spec.subject).encode()
                bridge = ServiceImport(
                    importer, exporter, local, subject, router(exporter),
                    export.response_type if export else SINGLETON,
                    export.response_threshold if export and export.response_threshold
                    else RESPONSE_THRESHOLD, clock, describe if spec.share else None,
                )  # fmt: skip
                importer.sublist.insert(bridge.subscription)
            bridges.append(bridge)
    system = accounts.get(accounts.system_account) if accounts.system_account else None
    if system is not None:
        if system.name not in responses:  # its own reply mapping, uncounted as the imports
            responses[system.name] = found = Responses(system, clock)
            system.sublist.insert_internal(found.subscription)
            bridges.append(found)
        for account in accounts:
            bridges += _install_system_imports(account, system, router(system), clock, describe)
    return bridges


def _install_system_imports(account, system, router: Responses, clock, describe) -> list:
    """The system account's services in `account` (the system account itself imports only
    its user info), not counted as the account's subscriptions: nats-server's figures
    count them, with its internal client's, and trionats leaves both out."""
    bridges = []
    for local, subject, response_type, shared in SYSTEM_IMPORTS:
        if account is system and not shared:
            continue
        bridge = ServiceImport(
            account, system, local, (subject % account.name).encode(), router,
            response_type, RESPONSE_THRESHOLD, clock, describe if shared else None,
        )  # fmt: skip
        account.sublist.insert_internal(bridge.subscription)
        bridges.append(bridge)
    return bridges


def find_export(exports, kind: str, subject: str):
    """The export of `kind` that covers `subject` (the same subject, or a wider pattern)."""
    for export in exports:
        if export.kind == kind and export.subject == subject:
            return export
    for export in exports:
        if export.kind == kind and is_subset(subject, export.subject):
            return export
    return None


def is_subset(subject: str, pattern: str) -> bool:
    """Whether every subject `subject` (a pattern itself) matches also matches `pattern`
    (nats-server's isSubsetMatch)."""
    tokens = subject.split(".")
    patterns = pattern.split(".")
    for index, p in enumerate(patterns):
        if index >= len(tokens):
            return False
        t = tokens[index]
        if p == ">":
            return True
        if p == "*":
            if t == ">":
                return False
            continue
        if t != p:
            return False
    return len(tokens) == len(patterns)
