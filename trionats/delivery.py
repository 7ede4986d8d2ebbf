"""Delivery plans: where messages on one subject go, and the loops that queue them.

A plan comes from one sublist match, seen by one publisher (its echo setting, its
subscribers' permissions), with the MSG heads pre-encoded; it is cached until the sublist
changes. A target is a tuple (subscription, outbound, msg_head, hmsg_head or None if the
subscriber takes no headers). Route interest appears two ways (route-protocol.md §4). A server
with plain interest is one more plain target, whose heads are `RMSG $G <subject> ` and
`HMSG $G <subject> ` (the rest of the line has the MSG line's shape), so it gets one copy
however many of its subscriptions match, on the same fast paths as local subscribers. A remote
queue group's members are entries whose outbound is None, one per unit of the group's weight;
picking one means "forward to that server, naming the group", which takes `deliver_routed`.
All of it is synchronous: nothing here awaits.
"""

from __future__ import annotations

import random

import trio

from .auth.permissions import GrantingOutbound
from .core.sublist import Subscription
from .protocol import encode

_random = random.random


class Plan:
    """The targets of one subject for one publisher.

    `routed` says a queue group has members on other servers: such messages take
    `deliver_routed`. `granting` means some target grants allow_responses (per-message
    delivery); `reserved` that clients may not publish to this subject.
    """

    __slots__ = ("plain", "queues", "routed", "granting", "reserved")

    def __init__(self, plain: tuple, queues: tuple, routed: bool) -> None:
        self.plain = plain
        self.queues = queues
        self.routed = routed  # a queue group has remote members
        self.granting = False
        self.reserved = False


class InboundPlan:
    """Where a message from a route goes: local plain subscribers, and per queue group
    name its local members (`groups`, served only when the sender names the group).

    `queues` is always empty, so that `deliver` serves a message that names no group."""

    __slots__ = ("plain", "groups", "granting")
    queues = ()

    def __init__(self, plain: tuple, groups: dict[bytes, tuple]) -> None:
        self.plain = plain
        self.groups = groups
        #: A subscriber is granted replies by allow_responses: deliver message by message.
        self.granting = any(type(target[1]) is GrantingOutbound for target in plain)


def local_target(sub, subject: bytes) -> tuple:
    """A local subscription as a plan target, its heads encoded for `subject`.

    A subscriber allowed to answer requests (allow_responses) gets a queue that also
    grants it each reply subject it receives.
    """
    client = sub.client
    hhead = encode.hmsg_head(subject, sub.sid) if client.headers else None
    outbound = client.outbound
    check = client.pub_check
    if check is not None and check.perms.responses is not None:
        outbound = GrantingOutbound(outbound, check, trio.current_time)
    return (sub, outbound, encode.msg_head(subject, sub.sid), hhead)


def route_target(route, subject: bytes) -> tuple:
    """A server with plain interest in `subject`, as a plain target (one copy per message)."""
    hhead = b"HMSG $G " + subject + b" " if route.headers else None
    return (Subscription(route, subject, None, b""), route.outbound,
            b"RMSG $G " + subject + b" ", hhead)  # fmt: skip


def remote_members(sub) -> list:
    """A remote queue subscription as plan members: `weight` entries, outbound None."""
    return [(sub, None, None, None)] * max(sub.weight, 1)


def pick(group: tuple):
    """One member of a queue group, at random; skips members unsubscribed meanwhile."""
    count = len(group)
    start = int(_random() * count) if count > 1 else 0
    for i in range(count):
        target = group[(start + i) % count]
        if not target[0].closed:
            return target
    return None


def deliver(plan: Plan, tail: bytes, data: bytes, size: int) -> int:
    """Queue one message without headers to a local-only plan; return how many got it.

    Every plain subscription gets it, and one member of each queue group; `tail` is the
    encoded end of the MSG line (`[reply ]<size>\r\n`), `data` the payload with its CRLF.
    """
    targets = plan.plain
    if plan.queues:
        picked = [target for target in map(pick, plan.queues) if target is not None]
        targets = targets + tuple(picked)
    total = len(tail) + len(data)
    for sub, outbound, head, _ in targets:
        outbound.write_msg(head, tail, data, len(head) + total)
        client = sub.client
        client.out_msgs += 1
        client.out_bytes += size
        sub.delivered += 1
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            client.remove_sub(sub)
    return len(targets)


def deliver_local(targets, subject: bytes, reply: bytes, header_size: int, data: bytes) -> int:
    """Queue one message to each local target: MSG, or for a message with headers HMSG to
    subscribers that take headers and the bare payload as MSG to the others."""
    size = len(data) - 2
    if header_size < 0:
        tail = encode.msg_tail(reply, size)
        htail = body = mtail = b""
    else:
        htail = encode.hmsg_tail(reply, header_size, size)
        body = data[header_size:]
        mtail = encode.msg_tail(reply, size - header_size)
    count = 0
    for sub, outbound, head, hhead in targets:
        client = sub.client
        if header_size < 0:
            outbound.write_msg(head, tail, data, len(head) + len(tail) + len(data))
            client.out_bytes += size
        elif hhead is not None:
            outbound.write_msg(hhead, htail, data, len(hhead) + len(htail) + len(data))
            client.out_bytes += size
        else:
            outbound.write_msg(head, mtail, body, len(head) + len(mtail) + len(body))
            client.out_bytes += size - header_size
        client.out_msgs += 1
        sub.delivered += 1
        count += 1
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            client.remove_sub(sub)
    return count


def deliver_routed(plan: Plan, subject: bytes, reply: bytes, header_size: int, data: bytes) -> int:
    """A local client's message when a queue group has members on other servers: each server
    a pick landed on gets one RMSG/HMSG naming those groups, which also serves its plain
    subscribers (so its plain copy is not sent). The one-hop rule: it goes no further."""
    picked, forward = _pick_members(plan.queues)
    targets = [t for t in plan.plain if t[0].client not in forward] if forward else list(plan.plain)
    targets += picked
    delivered = deliver_local(targets, subject, reply, header_size, data) if targets else 0
    for route, queues in forward.items():
        route.forward(subject, reply, queues, header_size, data)
    return delivered + len(forward)


def deliver_routed_run(plan: Plan, subject: bytes, reply: bytes, parts: list, size: int) -> int:
    """A run of identical messages whose queue groups have members on other servers: each
    message picks its members as in `deliver_routed`, and each connection's bytes are
    joined and queued once. `parts` are the payloads with their CRLF, all `size` long."""
    tail = encode.msg_tail(reply, size)
    count = len(parts)
    delivered = 0
    plain_routes = []
    for target in plan.plain:
        sub, outbound, head, _ = target
        if sub.client.is_route:
            plain_routes.append(sub.client)
            continue
        prefix = head + tail
        outbound.write(prefix + prefix.join(parts))
        _count(sub, count, size)
        delivered += count
    shares: dict[int, list] = {}  # id(local member) -> [member, its payloads...]
    chunks: dict = {}  # route -> [RMSG line, payload, ...]
    lines: dict[tuple, bytes] = {}  # queue names -> the RMSG line naming them
    for part in parts:
        picked, forward = _pick_members(plan.queues)
        for target in picked:
            share = shares.get(id(target))
            if share is None:
                share = shares[id(target)] = [target]
            share.append(part)
        for route in plain_routes:
            forward.setdefault(route, [])  # a queue-form copy serves its plain interest too
        for route, names in forward.items():
            key = tuple(names)
            line = lines.get(key)
            if line is None:
                line = lines[key] = encode.rmsg_line(b"$G", subject, reply, key, -1, size)
            route_chunks = chunks.get(route)
            if route_chunks is None:
                route_chunks = chunks[route] = []
            route_chunks += (line, part)
    for share in shares.values():
        sub, outbound, head, _ = share[0]
        prefix = head + tail
        outbound.write(prefix + prefix.join(share[1:]))
        _count(sub, len(share) - 1, size)
        delivered += len(share) - 1
    for route, route_chunks in chunks.items():
        sent = len(route_chunks) // 2
        route.outbound.write(b"".join(route_chunks))
        route.out_msgs += sent
        route.out_bytes += sent * size
        delivered += sent
    return delivered


def _pick_members(queues) -> tuple[list, dict]:
    """One member of each queue group: the local picks, and per server the groups picked
    there (a remote member stands for its server)."""
    local: list = []
    forward: dict = {}
    for group in queues:
        target = pick(group)
        if target is None:
            continue
        if target[1] is None:
            sub = target[0]
            forward.setdefault(sub.client, []).append(sub.queue)
        else:
            local.append(target)
    return local, forward


def deliver_run_to_plain(targets, parts: list, tail: bytes, size: int) -> int:
    """A run of identical messages to plain targets: each one's MSGs joined and queued once."""
    count = len(parts)
    for sub, outbound, head, _ in targets:
        prefix = head + tail
        outbound.write(prefix + prefix.join(parts))
        _count(sub, count, size)
    return count * len(targets)


def deliver_run_to_groups(groups, parts: list, tail: bytes, size: int) -> int:
    """Each message of a run to one member of each group; each member's share joined once."""
    shares: dict[int, list] = {}
    for part in parts:
        for group in groups:
            target = pick(group)
            if target is not None:
                share = shares.get(id(target))
                if share is None:
                    share = shares[id(target)] = [target]
                share.append(part)
    for share in shares.values():
        sub, outbound, head, _ = share[0]
        prefix = head + tail
        outbound.write(prefix + prefix.join(share[1:]))
        _count(sub, len(share) - 1, size)
    return sum(len(share) - 1 for share in shares.values())


def _count(sub, count: int, size: int) -> None:
    client = sub.client
    client.out_msgs += count
    client.out_bytes += count * size
    sub.delivered += count


def deliver_inbound(plan: InboundPlan, queues, subject, reply, header_size, data) -> int:
    """A message from a route: local plain subscribers, plus one local member of each
    queue group the sender named (a group with no local member left drops its copy)."""
    targets = plan.plain
    if queues:
        picked = []
        for name in queues:
            group = plan.groups.get(name)
            target = pick(group) if group else None
            if target is not None:
                picked.append(target)
        targets = targets + tuple(picked)
    if not targets:
        return 0
    return deliver_local(targets, subject, reply, header_size, data)
