"""Delivery plans: where messages on one subject go, and the loops that queue them.

A plan comes from one sublist match, seen by one publisher (its echo setting, its
subscribers' permissions), with the MSG heads pre-encoded; it is cached until the sublist
changes. A local target is a tuple (subscription, outbound, msg_head, hmsg_head or None if
the subscriber takes no headers). Route interest appears two ways (route-protocol.md §4):
`routes`, the servers with plain interest (each gets one copy however many of its
subscriptions match), and queue-group members whose outbound is None, one per unit of the
remote group's weight. Picking such a member means "forward to that server, naming the
group". All of it is synchronous: nothing here awaits.
"""

from __future__ import annotations

import random

import trio

from .auth.permissions import GrantingOutbound
from .protocol import encode

_random = random.random


class Plan:
    """The targets of one subject for one publisher.

    `routed` says some target is another server: such messages take `deliver_routed`
    instead of the local-only loops. `granting` means some target grants allow_responses
    (per-message delivery); `reserved` that clients may not publish to this subject.
    """

    __slots__ = ("plain", "queues", "routes", "routed", "granting", "reserved")

    def __init__(self, plain: tuple, queues: tuple, routes: tuple = ()) -> None:
        self.plain = plain
        self.queues = queues
        self.routes = routes
        self.routed = bool(routes) or any(target[1] is None for g in queues for target in g)
        self.granting = False
        self.reserved = False


class InboundPlan:
    """Where a message from a route goes: local plain subscribers, and per queue group
    name its local members (served only when the sender names the group)."""

    __slots__ = ("plain", "queues")

    def __init__(self, plain: tuple, queues: dict[bytes, tuple]) -> None:
        self.plain = plain
        self.queues = queues


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
    """A local client's message when other servers are interested: local subscribers get
    it, and each interested server gets exactly one RMSG/HMSG naming the queue groups
    whose pick landed on it (the one-hop rule: that server never passes it on)."""
    local = list(plan.plain)
    forward: dict = {route: [] for route in plan.routes}
    for group in plan.queues:
        target = pick(group)
        if target is None:
            continue
        if target[1] is None:
            sub = target[0]
            forward.setdefault(sub.client, []).append(sub.queue)
        else:
            local.append(target)
    delivered = deliver_local(local, subject, reply, header_size, data) if local else 0
    for route, queues in forward.items():
        route.forward(subject, reply, queues, header_size, data)
    return delivered + len(forward)


def deliver_inbound(plan: InboundPlan, queues, subject, reply, header_size, data) -> int:
    """A message from a route: local plain subscribers, plus one local member of each
    queue group the sender named (a group with no local member left drops its copy)."""
    targets = plan.plain
    if queues:
        picked = []
        for name in queues:
            group = plan.queues.get(name)
            target = pick(group) if group else None
            if target is not None:
                picked.append(target)
        targets = targets + tuple(picked)
    if not targets:
        return 0
    return deliver_local(targets, subject, reply, header_size, data)
