"""The delivery core: where a message goes, and how each shape of message is queued there.

Every message a connection receives for delivery, from a client (PUB/HPUB) or from a route
(RMSG/HMSG), goes through one `Dispatcher`: the one owned by the connection it came from.
It keeps that source's plan cache (one eviction rule), builds plans (one builder), queues
the message to each target, and counts (one place). Nothing else queues messages.

A plan is what one sublist match means for one source: the plain targets (encoded MSG
heads per subscription), the queue groups, and flags saying when message-by-message
delivery matters. A target is a tuple (subscription, outbound, msg_head, hmsg_head or None
if the subscriber takes no headers). Route interest appears two ways (route-protocol.md §4):
a server with plain interest is one more plain target, whose heads are `RMSG <account> <subject> `
and `HMSG <account> <subject> ` (the route as that account sees it names it), so it gets one copy however many of its subscriptions match; a
remote queue group's members are entries whose outbound is None, one per unit of the
group's weight, and picking one means "forward to that server, naming the group".
An import between accounts (core/imports.py) appears as a `Bridge`: a subscription's
"client" that takes each message, as (subject, reply, header size, data), into another
account through a dispatcher of its own; plans with bridges go message by message.

Messages come in these shapes, and each renders itself for a target:

* one message (`message`): subject, reply, header size (-1 or 0: none) and data;
* a run (`run`): consecutive messages with one control line, rendered per target as one
  join of its payloads;
* a span (`span`): messages in canonical form to one subject, as received, rendered per
  target by one `bytes.replace` of the line's start with the target's head;
* and a batch (`batch`): consecutive messages each with its own line, delivered in one loop
  and counted once.

A run or span falls back to its messages one by one whenever the per-message path would do
something a joined rendering cannot (a queue pick per message for a span, a reply grant, an
auto-unsubscribe limit, a connection with two targets); `tests/core/test_dispatch.py`
checks every shape queues exactly the bytes, order and counts of that path. All of it is synchronous: nothing here awaits, and
the clock (for reply grants) is handed in.

A message with a `Nats-Trace-Dest` header (only ever a single message: headers never come
in runs or spans) is traced (core/msgtrace.py): its source opens the trace and hands it to
`traced`, which makes the same picks and queues the same bytes as `message` while it notes
each egress, then gives the record to the dispatcher's `tracer` to publish. Messages
without headers never look for one.
"""

from __future__ import annotations

import random

from ..defaults import DELIVERY_CACHE_MAX, DELIVERY_CACHE_SIZE
from ..protocol import encode
from . import msgtrace
from .sublist import Subscription

_random = random.random

#: Encoded `<size>\r\n` MSG line tails by payload size (messages without a reply subject).
_MSG_TAILS: dict[int, bytes] = {}
_MSG_TAILS_SIZE = 4096


def msg_tail(reply: bytes, size: int) -> bytes:
    """`[reply ]<size>\\r\\n`, from a table for the common reply-less sizes."""
    if reply:
        return encode.msg_tail(reply, size)
    tail = _MSG_TAILS.get(size)
    if tail is None:
        tail = encode.msg_tail(b"", size)
        if len(_MSG_TAILS) < _MSG_TAILS_SIZE:
            _MSG_TAILS[size] = tail
    return tail


class Plan:
    """The targets of one subject for one source.

    `queues` holds each queue group's members (a client's plan); `groups` the same by queue
    name (a route's plan: the sender names the groups to serve). `routed`: a queue group has
    members on other servers. `granting`: a target grants allow_responses (message by
    message). `limited`: a target has an auto-unsubscribe limit. `bridges`: imports that
    carry the subject into another account (`Bridge`; message by message). `shared`: a connection
    holds more than one target (say `a.*` and `a.b`, or two queue members), so its
    copies of consecutive messages interleave. `reserved`: clients may not publish to this
    subject. Runs and spans go message by message when any of the first three holds.
    `permitted`: the source's publish permissions allow this subject (a refused one may
    still be a reply it was granted: the source checks that). `skipped`: subscriptions
    matched but left out (no echo, delivery denied), which a trace reports.
    """

    __slots__ = ("plain", "queues", "groups", "routed", "granting", "limited", "shared",
                 "reserved", "permitted", "skipped", "empty", "simple", "bridges")  # fmt: skip

    def __init__(self, plain: tuple, queues: tuple, groups: dict, routed: bool,
                 local: list, bridges: tuple = ()) -> None:  # fmt: skip
        """`local`: every target that is a local subscription (plain or queue member);
        `bridges`: the imports that take this subject into another account."""
        self.plain = plain
        self.bridges = bridges
        self.queues = queues
        self.groups = groups
        self.routed = routed
        if len(local) == 1:  # the common case, kept cheap (a reply to a unique inbox, say)
            sub, outbound, _, _ = local[0]
            self.granting = type(outbound) is GrantingOutbound
            self.limited = sub.max_msgs != 0
            self.shared = False
        else:
            self.granting = any(type(t[1]) is GrantingOutbound for t in local)
            self.limited = any(t[0].max_msgs for t in local)
            owners = [t[0].client for t in local]
            self.shared = len(owners) != len(set(owners))
        self.reserved = False
        self.permitted = True
        self.skipped = ()
        self.empty = not (plain or queues or groups or bridges)
        #: Plain targets only: a message without headers takes the tight loop.
        self.simple = bool(plain) and not (queues or groups or bridges)


def pick(group: tuple):
    """One member of a queue group, at random; skips members unsubscribed meanwhile."""
    count = len(group)
    start = int(_random() * count) if count > 1 else 0
    for i in range(count):
        target = group[(start + i) % count]
        if not target[0].closed:
            return target
    return None


class Dispatcher:
    """One source connection's way into the core: its plans and every delivery it makes.

    `source` is the client or route the messages come from (its counters are kept here);
    `stats` the server's totals; `inbound` is True for a route (its messages go to local
    subscribers only, and name the queue groups to serve); `clock` gives the time for
    reply grants. A client sets `echo` from its CONNECT and `may_publish` (its publish
    permission verdict for a subject) from its identity, and calls `forget` then.
    `tracer` publishes a traced message's record (None: nothing is traced). `local`: the
    messages go to this server's subscribers only, never to routes (an import's way into
    another account: peers are sent the message in the account it was published in).
    """

    def __init__(self, source, sublist, stats, clock, *, inbound: bool = False,
                 tracer=None, local: bool = False) -> None:  # fmt: skip
        self.source = source
        self.tracer = tracer
        self.sublist = sublist
        self.stats = stats
        self.clock = clock
        self.inbound = inbound
        #: Whether this source's messages may go on to routes (a client's; a leaf's whose
        #: hub we are; never a `local` one's). Leaf connections decide for themselves
        #: (`reachable_from`).
        self.to_routes = not inbound and not local
        self.echo = True
        self.may_publish = None
        self._plans: dict[bytes, Plan] = {}
        self._generation = -1

    # --- plans ----------------------------------------------------------------------------

    def plan(self, subject: bytes) -> Plan:
        """The cached plan of `subject`; every plan goes when the sublist changes."""
        if self._generation != self.sublist.generation:
            self._plans.clear()
            self._generation = self.sublist.generation
        plan = self._plans.get(subject)
        if plan is None:
            plan = self._build(subject)
        return plan

    def forget(self) -> None:
        """Drop every plan (the source's echo, permissions or identity changed)."""
        self._plans.clear()

    def _build(self, subject: bytes) -> Plan:
        # Built once per subject and source, but also for every message of a publisher
        # spreading over more subjects than the cache holds: kept lean.
        result = self.sublist.match(subject)
        source = self.source
        inbound = self.inbound
        to_routes = self.to_routes
        echo = self.echo
        clock = self.clock
        local = []  # every local target, for the plan's flags
        plain = []
        skipped = []
        routes = None  # servers with plain interest, in match order, once each
        bridges = []
        for sub in result.psubs:
            client = sub.client
            if isinstance(client, Bridge):
                bridges.append(client)
            elif client.is_route:
                # A routed message never goes on to another route (one hop); a leaf says
                # which sources may reach it.
                if (client.reachable_from(source, subject) if getattr(client, "is_leaf", False)
                        else to_routes):  # fmt: skip
                    if routes is None:
                        routes = {}
                    routes[client] = None
            elif (echo or client is not source) and (
                client.delivery_deny is None or not client.delivery_deny.denies_delivery(subject)
            ):
                plain.append(local_target(sub, subject, clock))
            else:
                skipped.append(sub)
        local += plain
        if routes:
            plain += [route_target(route, subject) for route in routes]
        queues = []
        groups = {}
        routed = False
        for members in result.qsubs:
            group = []
            fallback = None  # members behind leaf connections: picked only if nobody else
            for sub in members:
                client = sub.client
                if client.is_route:
                    if getattr(client, "is_leaf", False):
                        if client.reachable_from(source, subject):
                            fallback = (fallback or []) + remote_members(sub)
                    elif to_routes:
                        group += remote_members(sub)
                        routed = True
                elif (echo or client is not source) and (
                    client.delivery_deny is None or not client.delivery_deny.denies_delivery(subject)
                ):
                    target = local_target(sub, subject, clock)
                    group.append(target)
                    local.append(target)
            if not group and fallback:
                group = fallback
                routed = True
            if group:
                if inbound:
                    groups[group[0][0].queue] = tuple(group)
                else:
                    queues.append(tuple(group))
        plan = Plan(tuple(plain), tuple(queues), groups, routed, local, tuple(bridges))
        plan.reserved = reserved_subject(subject)
        if skipped:
            plan.skipped = tuple(skipped)
        if self.may_publish is not None:
            plan.permitted = self.may_publish(subject)
        plans = self._plans
        limit = min(max(DELIVERY_CACHE_SIZE, self.sublist.count), DELIVERY_CACHE_MAX)
        if len(plans) >= limit:
            for key in list(plans)[: len(plans) // 2]:  # the older half goes
                del plans[key]
        plans[subject] = plan
        return plan

    # --- the three shapes -----------------------------------------------------------------

    def message(self, plan: Plan, subject: bytes, reply: bytes, header_size: int,
                data: bytes, queues=()) -> int:  # fmt: skip
        """Queue one message (`data`: headers + payload + CRLF; `header_size` -1 or 0 for
        none); `queues` names the groups a route's message is for. Counts it; returns how
        many targets got it."""
        size = len(data) - 2
        if plan.simple and header_size <= 0:
            delivered = _to_plain(plan.plain, msg_tail(reply, size), data, size)
        elif plan.empty:
            delivered = 0
        else:
            delivered = self._message(plan, subject, reply, header_size, data, queues)
        self.received(1, size, delivered, delivered * size)
        return delivered

    def batch(self, items: list, aside, unanswered) -> None:
        """Queue consecutive messages without headers, each with its own line (`items`:
        (subject, reply, data)), as `message` would one by one, counted once. A message the
        source must refuse (a reserved subject or reply) goes to `aside(subject, reply,
        data)` instead; one with a reply that reached nobody is passed to
        `unanswered(subject, reply)` (None: nothing to do). Stops if the source closes."""
        source = self.source
        sublist = self.sublist
        plans = self._plans
        tails = _MSG_TAILS
        count = in_bytes = out_msgs = out_bytes = 0
        for subject, reply, data in items:
            if self._generation != sublist.generation:  # (a delivery may remove a sub)
                plans.clear()
                self._generation = sublist.generation
            plan = plans.get(subject) or self._build(subject)
            if plan.reserved or (reply and reserved_reply(reply)):
                aside(subject, reply, data)
            else:
                size = len(data) - 2
                count += 1
                in_bytes += size
                if plan.simple:
                    tail = None if reply else tails.get(size)
                    if tail is None:
                        tail = msg_tail(reply, size)
                    delivered = _to_plain(plan.plain, tail, data, size)
                elif plan.empty:
                    delivered = 0
                else:
                    delivered = self._message(plan, subject, reply, -1, data, ())
                if delivered:
                    out_msgs += delivered
                    out_bytes += delivered * size
                elif reply and unanswered is not None:
                    unanswered(subject, reply)
            if source.closed_reason is not None:
                break
        self.received(count, in_bytes, out_msgs, out_bytes)

    def run(self, plan: Plan, subject: bytes, reply: bytes, parts: list, queues=()) -> int:
        """Queue messages with one control line (`parts`: each payload + CRLF, all the same
        size): each target's share joined and queued once. Counts them."""
        count = len(parts)
        size = len(parts[0]) - 2
        if plan.granting or plan.limited or plan.shared or plan.bridges:
            delivered = 0
            for part in parts:  # (a limit reached changes the plan of the next one)
                delivered += self.message(self.plan(subject), subject, reply, -1, part, queues)
            return delivered
        delivered = 0
        if not plan.empty:
            tail = msg_tail(reply, size)
            if plan.routed:
                groups = plan.queues or self._named(plan, queues)
                delivered = self._run_routed(plan, groups, subject, reply, parts, tail, size)
            else:
                delivered = _run_to_plain(plan.plain, parts, tail, size)
                groups = plan.queues or self._named(plan, queues)
                if groups:
                    delivered += _run_to_groups(groups, parts, tail, size)
        self.received(count, count * size, delivered, delivered * size)
        return delivered

    def span(self, plan: Plan, span: bytes, line_start: bytes, count: int,
             payload_bytes: int) -> int | None:  # fmt: skip
        """Queue `count` messages in canonical form, as received in `span` (each line starts
        with `line_start`; no reply, no queue groups named): each plain target gets the span
        with `line_start` replaced by its head. Counts them and returns how many targets got
        them; or returns None, having done nothing, when the messages must go one by one
        (queue groups, reply grants, limits, shared connections, a reserved subject, or a
        payload that holds `line_start`)."""
        plain = plan.plain
        if (
            plan.queues
            or plan.granting
            or plan.limited
            or plan.shared
            or plan.reserved
            or plan.bridges
            or (plain and span.count(line_start) != count)
        ):
            return None
        for sub, outbound, head, _ in plain:
            outbound.write(span.replace(line_start, head))
            _count(sub, count, payload_bytes)
        delivered = count * len(plain)
        self.received(count, payload_bytes, delivered, payload_bytes * len(plain))
        return delivered

    # --- traced messages ------------------------------------------------------------------

    def open_trace(self, subject: bytes, header_size: int, data: bytes):
        """The trace a message with headers asks for (core/msgtrace.py), or None."""
        if self.tracer is None or data.find(msgtrace.TRACE_DEST, 0, header_size) < 0:
            return None
        return msgtrace.open_trace(self.source, subject, header_size, data, self.may_publish)

    def traced(self, plan: Plan, subject: bytes, reply: bytes, header_size: int, data: bytes,
               trace, queues=()) -> int:  # fmt: skip
        """`message` for a traced message: the same picks and bytes (a trace-only message
        writes nothing to local subscribers), each egress noted in order (local
        subscribers, queue members, then servers, as nats-server), then the record
        published. Counts it; returns how many targets got it (trace-only ones included,
        as nats-server counts them)."""
        if plan.routed:
            picked, forward = _pick_members(plan.queues or self._named(plan, queues))
        else:
            groups = plan.queues or self._named(plan, queues)
            picked = [t for t in map(pick, groups) if t is not None]
            forward = {}
        routes = [t for t in plan.plain if t[0].client.is_route]
        local = [t for t in plan.plain if not t[0].client.is_route]
        if plan.skipped:  # reported where the match has them, as nats-server does
            targets = {id(t[0]): t for t in local}
            local = [targets.get(id(sub), sub) for sub in self.sublist.match(subject).psubs
                     if id(sub) in targets or sub in plan.skipped]  # fmt: skip
        only = trace.only
        delivered = 0
        for target in local + picked:
            if type(target) is Subscription:  # matched, not delivered
                error = msgtrace.NO_ECHO if target.client is self.source else msgtrace.SUB_DENY
                trace.egress(target.client, target, error)
                continue
            sub = target[0]
            trace.egress(sub.client, sub)
            if only:
                delivered += 1
            else:
                delivered += _queue_with_headers((target,), reply, header_size, data)
        for target in routes:
            route = target[0].client
            names = forward.pop(route, None)  # (a queue-form copy serves its plain interest too)
            message = _trace_route(trace, route, header_size, data)
            if message is not None:
                if names is None:
                    _queue_with_headers((target,), reply, *message)
                else:
                    route.forward(subject, reply, names, *message)
                delivered += 1
        for route, names in forward.items():
            message = _trace_route(trace, route, header_size, data)
            if message is not None:
                route.forward(subject, reply, names, *message)
                delivered += 1
        for bridge in plan.bridges:  # (the other account's deliveries are not traced)
            delivered += bridge.deliver(subject, reply, header_size, data, self.source)
        size = len(data) - 2
        self.received(1, size, delivered, delivered * size)
        self.tracer(trace)
        return delivered

    def refused(self, trace, error: str) -> None:
        """The source refused a traced message (`error`, its -ERR text): the record has
        the ingress only, with that error."""
        trace.ingress_error(error)
        self.tracer(trace)

    # --- rendering ------------------------------------------------------------------------

    def _message(self, plan, subject, reply, header_size, data, queues) -> int:
        if plan.bridges:  # this account's targets, then each import's
            delivered = self._deliver(plan, subject, reply, header_size, data, queues)
            for bridge in plan.bridges:
                delivered += bridge.deliver(subject, reply, header_size, data, self.source)
            return delivered
        return self._deliver(plan, subject, reply, header_size, data, queues)

    def _deliver(self, plan, subject, reply, header_size, data, queues) -> int:
        if plan.routed:
            return self._message_routed(plan, subject, reply, header_size, data, queues)
        targets = plan.plain
        groups = plan.queues or self._named(plan, queues)
        if groups:
            picked = tuple(t for t in map(pick, groups) if t is not None)
            targets = targets + picked
        if header_size > 0:
            return _queue_with_headers(targets, reply, header_size, data)
        size = len(data) - 2
        return _to_plain(targets, msg_tail(reply, size), data, size)

    @staticmethod
    def _named(plan: Plan, queues) -> list:
        """The local groups a route's message names (a group with no member here is skipped)."""
        if not queues:
            return []
        groups = plan.groups
        return [groups[name] for name in queues if name in groups]

    def _message_routed(self, plan, subject, reply, header_size, data, queues=()) -> int:
        """A client's message when a queue group has members on other servers: each server
        a pick landed on gets one RMSG/HMSG naming those groups, which also serves its plain
        subscribers (so its plain copy is not sent). The one-hop rule: it goes no further.
        (A route's or leaf's message picks among the groups it names.)"""
        picked, forward = _pick_members(plan.queues or self._named(plan, queues))
        targets = [t for t in plan.plain if t[0].client not in forward] if forward else list(plan.plain)
        targets += picked
        if header_size > 0:
            delivered = _queue_with_headers(targets, reply, header_size, data) if targets else 0
        else:
            delivered = _queue_with_headers(targets, reply, -1, data) if targets else 0
        for route, names in forward.items():
            route.forward(subject, reply, names, header_size if header_size > 0 else -1, data)
        return delivered + len(forward)

    def _run_routed(self, plan, groups, subject, reply, parts, tail, size) -> int:
        """A run whose queue groups have members on other servers: each message picks its
        members as `_message_routed` does; each connection's bytes are joined and queued once."""
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
            _count(sub, count, count * size)
            delivered += count
        shares: dict[int, list] = {}  # id(local member) -> [member, its payloads...]
        chunks: dict = {}  # route -> [RMSG line, payload, ...]
        lines: dict[tuple, bytes] = {}  # (route, queue names...) -> its RMSG/LMSG line
        for part in parts:
            picked, forward = _pick_members(groups)
            for target in picked:
                share = shares.get(id(target))
                if share is None:
                    share = shares[id(target)] = [target]
                share.append(part)
            for route in plain_routes:
                forward.setdefault(route, [])  # a queue-form copy serves its plain interest too
            for route, names in forward.items():
                key = (route, *names)
                line = lines.get(key)
                if line is None:
                    line = lines[key] = route.line(subject, reply, key[1:], -1, size)
                route_chunks = chunks.get(route)
                if route_chunks is None:
                    route_chunks = chunks[route] = []
                route_chunks += (line, part)
        for share in shares.values():
            sub, outbound, head, _ = share[0]
            prefix = head + tail
            outbound.write(prefix + prefix.join(share[1:]))
            _count(sub, len(share) - 1, (len(share) - 1) * size)
            delivered += len(share) - 1
        for route, route_chunks in chunks.items():
            sent = len(route_chunks) // 2
            route.outbound.write(b"".join(route_chunks))
            route.out_msgs += sent
            route.out_bytes += sent * size
            delivered += sent
        return delivered

    # --- counting -------------------------------------------------------------------------

    def received(self, msgs: int, size: int, out_msgs: int = 0, out_bytes: int = 0) -> None:
        """The one place messages are counted: received by the source (`size`: payload
        bytes), delivered `out_msgs` times in all, and the server's totals. Messages refused
        or dropped are counted here too, with nothing delivered. (A subscriber's own
        counts are kept as it is served.)"""
        source = self.source
        source.in_msgs += msgs
        source.in_bytes += size
        stats = self.stats
        stats.in_msgs += msgs
        stats.in_bytes += size
        if out_msgs:
            stats.out_msgs += out_msgs
            stats.out_bytes += out_bytes


class Bridge:
    """A subscription's "client" that carries messages into another account (an import,
    core/imports.py): a plan lists it apart (`Plan.bridges`) and hands it each message as
    (subject, reply, header size, data, the source connection) with `deliver`, which
    returns how many targets got it there. Plans with bridges go message by message."""

    is_route = False
    delivery_deny = None
    closed_reason = None

    def deliver(self, subject: bytes, reply: bytes, header_size: int, data: bytes,
                source) -> int:  # fmt: skip
        raise NotImplementedError


class GrantingOutbound:
    """A subscriber's outbound queue that also grants allow_responses for each reply subject.

    Used in delivery plans in place of the connection's `Outbound` when that connection has
    `allow_responses`, so the delivery loops stay as they are for everyone else. Only
    `write_msg` is seen here: runs of messages take the per-message path for such plans.
    """

    __slots__ = ("outbound", "check", "clock")

    def __init__(self, outbound, check, clock) -> None:
        self.outbound = outbound
        self.check = check
        self.clock = clock

    def write_msg(self, head: bytes, tail: bytes, data: bytes, size: int) -> None:
        self.outbound.write_msg(head, tail, data, size)
        # The tail is `[reply ]<size>\r\n` (MSG) or `[reply ]<hdr> <size>\r\n` (HMSG).
        sizes = 2 if head[:1] == b"H" else 1
        parts = tail.split(b" ")
        if len(parts) > sizes:
            self.check.grant(parts[0], self.clock())

    def write(self, data: bytes) -> None:
        self.outbound.write(data)


# --- targets -------------------------------------------------------------------------------


def local_target(sub, subject: bytes, clock) -> tuple:
    """A local subscription as a plan target, its heads encoded for `subject`.

    A subscriber allowed to answer requests (allow_responses) gets a queue that also
    grants it each reply subject it receives.
    """
    client = sub.client
    hhead = encode.hmsg_head(subject, sub.sid) if client.headers else None
    outbound = client.outbound
    check = client.pub_check
    if check is not None and check.perms.responses is not None:
        outbound = GrantingOutbound(outbound, check, clock)
    return (sub, outbound, encode.msg_head(subject, sub.sid), hhead)


def route_target(route, subject: bytes) -> tuple:
    """A server with plain interest in `subject`, as a plain target (one copy per message).
    `route` renders its own heads: a route as the plan's account sees it names that account
    (`RMSG <account> `, routes/accounts.py), a leaf connection none (LMSG)."""
    head, hhead = route.heads(subject)
    return (Subscription(route, subject, None, b""), route.outbound, head, hhead)


def remote_members(sub) -> list:
    """A remote queue subscription as plan members: `weight` entries, outbound None."""
    return [(sub, None, None, None)] * max(sub.weight, 1)


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


def _trace_route(trace, route, header_size: int, data: bytes) -> tuple[int, bytes] | None:
    """A traced message to another server, as (header size, data) to send: with
    `Nats-Trace-Hop` if that server traces too (it then reports its part itself, trace-only
    or not); as it is, with an egress error, if not; None (not sent) if it does not and only
    a trace was asked for."""
    if not route.traces:
        if trace.only:
            trace.egress(route, None, msgtrace.ONLY_NO_SUPPORT)
            return None
        trace.egress(route, None, msgtrace.NO_SUPPORT)
        return header_size, data
    hop, header_size, data = trace.to_route(header_size, data)
    trace.egress(route, None, hop=hop)
    return header_size, data


def _to_plain(targets, tail: bytes, data: bytes, size: int) -> int:
    """One message without headers to each target (`tail`: the end of its MSG line)."""
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


def reserved_subject(subject: bytes) -> bool:
    """Gateway-routed reply subjects (`_GR_.<...>`): clients may not publish to them."""
    return subject[:5] == b"_GR_." and len(subject) > 5


def reserved_reply(reply: bytes) -> bool:
    """Reply subjects nats-server reserves for service imports, JetStream acks and gateways."""
    return (
        reply[:4] == b"_R_."
        or (reply[:8] == b"$JS.ACK." and len(reply) > 8)
        or (reply[:5] == b"_GR_." and len(reply) > 5)
    )


def _queue_with_headers(targets, reply: bytes, header_size: int, data: bytes) -> int:
    """One message to each target: MSG, or for a message with headers HMSG to subscribers
    that take headers and the bare payload as MSG to the others."""
    size = len(data) - 2
    if header_size < 0:
        tail = msg_tail(reply, size)
        htail = body = mtail = b""
    else:
        htail = encode.hmsg_tail(reply, header_size, size)
        body = data[header_size:]
        mtail = encode.msg_tail(reply, size - header_size)
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
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            client.remove_sub(sub)
    return len(targets)


def _run_to_plain(targets, parts: list, tail: bytes, size: int) -> int:
    """A run to plain targets: each one's MSGs joined and queued once."""
    count = len(parts)
    for sub, outbound, head, _ in targets:
        prefix = head + tail
        outbound.write(prefix + prefix.join(parts))
        _count(sub, count, count * size)
    return count * len(targets)


def _run_to_groups(groups, parts: list, tail: bytes, size: int) -> int:
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
        _count(sub, len(share) - 1, (len(share) - 1) * size)
    return sum(len(share) - 1 for share in shares.values())


def _count(sub, count: int, size: int) -> None:
    """A subscriber got `count` messages of `size` payload bytes in all."""
    client = sub.client
    client.out_msgs += count
    client.out_bytes += size
    sub.delivered += count
