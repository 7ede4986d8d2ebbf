"""The delivery core (trionats/core/dispatch.py): every fast shape of a message (a run of
messages with one control line, a span of canonical lines) queues exactly the bytes, in the
same order, with the same counts, as the per-message path does for each of its messages.

Two identical worlds (subscribers, queue groups, remote interest, limits, reply grants,
headers or not) are built from one drawn description; one gets the shape, the other its
messages one at a time, each with the same random seed for queue picks. Then every
connection's queued bytes and every counter must agree.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from trionats.core.dispatch import Dispatcher
from trionats.core.sublist import Sublist, Subscription
from trionats.routes.accounts import RouteAccount
from trionats.routes.connection import RouteConnection

SUBJECTS = [b"a", b"a.b", b"a.*", b"*.b", b">", b"a.>", b"c"]
PUBLISHED = [b"a", b"a.b", b"c"]
QUEUES = [None, None, b"q1", b"q2"]


class Recorder:
    """An outbound queue that keeps what is written, and checks the sizes it is told."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def write_msg(self, head: bytes, tail: bytes, data: bytes, size: int) -> None:
        assert size == len(head) + len(tail) + len(data)
        self.data += head + tail + data


class Peer:
    """A client or a route as the core sees it."""

    def __init__(self, sublist: Sublist, *, is_route: bool, headers: bool, grants: bool) -> None:
        self.sublist = sublist
        self.is_route = is_route
        self.headers = headers
        self.outbound = Recorder()
        self.delivery_deny = None
        self.granted: list[bytes] = []
        self.pub_check = None
        if grants:
            self.pub_check = SimpleNamespace(
                perms=SimpleNamespace(responses=True),
                grant=lambda reply, now: self.granted.append(reply),
            )
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        # A route as the global account sees it (routes/accounts.py): its lines name $G.
        self.token, self.msg_start, self.hmsg_start = b"$G", b"RMSG $G ", b"HMSG $G "

    # Its heads and lines are a route view's own (the code under test renders with them).
    heads = RouteAccount.heads
    line = RouteAccount.line

    def remove_sub(self, sub: Subscription) -> None:
        if not sub.closed:
            sub.closed = True
            self.sublist.remove(sub)

    def forward(self, subject, reply, queues, header_size, data) -> None:
        RouteConnection.forward_in(self, self, subject, reply, queues, header_size, data)

    def counters(self) -> tuple:
        return (bytes(self.outbound.data), self.granted, self.in_msgs, self.in_bytes,
                self.out_msgs, self.out_bytes)  # fmt: skip


class World:
    """Peers and subscriptions as described, and a dispatcher for the source (peer 0)."""

    def __init__(self, spec) -> None:
        peers, subs, inbound = spec
        self.sublist = Sublist()
        self.stats = SimpleNamespace(in_msgs=0, in_bytes=0, out_msgs=0, out_bytes=0)
        self.peers = [Peer(self.sublist, is_route=False, headers=True, grants=False)]
        self.peers[0].is_route = inbound
        for is_route, headers, grants in peers:
            self.peers.append(Peer(self.sublist, is_route=is_route and not inbound,
                                   headers=headers, grants=grants and not is_route))  # fmt: skip
        self.subs = []
        for n, (owner, subject, queue, limit, weight) in enumerate(subs):
            peer = self.peers[owner % len(self.peers)]
            if peer.is_route:
                sub = Subscription(peer, subject, queue, b"", weight if queue else 1)
            else:
                sub = Subscription(peer, subject, queue, b"%d" % n)
                sub.max_msgs = limit
            self.sublist.insert(sub)
            self.subs.append(sub)
        self.dispatch = Dispatcher(self.peers[0], self.sublist, self.stats, lambda: 0.0,
                                   inbound=inbound)  # fmt: skip

    def state(self) -> tuple:
        return ([peer.counters() for peer in self.peers],
                [(sub.delivered, sub.closed) for sub in self.subs], vars(self.stats))  # fmt: skip


peer_specs = st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=4)
sub_specs = st.lists(
    st.tuples(st.integers(0, 4), st.sampled_from(SUBJECTS), st.sampled_from(QUEUES),
              st.sampled_from([0, 0, 0, 1, 2, 5]), st.integers(1, 3)),  # fmt: skip
    max_size=10,
)
worlds = st.tuples(peer_specs, sub_specs, st.booleans())
payloads = st.binary(max_size=12)


def one_by_one(world: World, subject, reply, parts, queues) -> int:
    return sum(
        world.dispatch.message(world.dispatch.plan(subject), subject, reply, -1, part, queues)
        for part in parts
    )


@settings(max_examples=400, deadline=None)
@given(worlds, st.sampled_from(PUBLISHED), st.sampled_from([b"", b"r.1"]),
       st.integers(0, 8), st.integers(1, 6), st.lists(st.sampled_from([b"q1", b"q2"]), max_size=2),
       st.integers(0, 2**32))  # fmt: skip
def test_a_run_queues_what_its_messages_would(spec, subject, reply, size, count, queues, seed):
    rng = random.Random(seed)
    parts = [bytes(rng.getrandbits(8) for _ in range(size)) + b"\r\n" for _ in range(count)]
    queues = tuple(dict.fromkeys(queues)) if spec[2] else ()
    fast, slow = World(spec), World(spec)
    random.seed(seed)
    got = fast.dispatch.run(fast.dispatch.plan(subject), subject, reply, parts, queues)
    random.seed(seed)
    expected = one_by_one(slow, subject, reply, parts, queues)
    assert got == expected
    assert fast.state() == slow.state()


@settings(max_examples=400, deadline=None)
@given(worlds, st.sampled_from(PUBLISHED), st.lists(payloads, min_size=1, max_size=6),
       st.integers(0, 2**32))  # fmt: skip
def test_a_span_queues_what_its_messages_would(spec, subject, payloads, seed):
    line_start = (b"RMSG $G " if spec[2] else b"PUB ") + subject + b" "
    if payloads[0][:1] == b"!":  # now and then a payload holding the line's start
        payloads[0] = line_start
    parts = [payload + b"\r\n" for payload in payloads]
    span = b"".join(line_start + b"%d\r\n" % (len(p) - 2) + p for p in parts)
    fast, slow = World(spec), World(spec)
    random.seed(seed)
    got = fast.dispatch.span(fast.dispatch.plan(subject), span, line_start, len(parts),
                             sum(len(p) - 2 for p in parts))  # fmt: skip
    if got is None:  # declined, untouched: the caller goes message by message
        assert fast.state() == World(spec).state()
        return
    random.seed(seed)
    assert got == one_by_one(slow, subject, b"", parts, ())
    assert fast.state() == slow.state()


def test_a_message_with_headers_is_cut_for_subscribers_without_them():
    """HMSG to a subscriber that took headers, the bare payload as MSG to one that did not,
    and to a server with plain interest an HMSG naming the account."""
    spec = ([(False, True, False), (False, False, False), (True, True, False)],
            [(1, b"a", None, 0, 1), (2, b"a", None, 0, 1), (3, b">", None, 0, 1)], False)  # fmt: skip
    world = World(spec)
    data = b"NATS/1.0\r\nk: v\r\n\r\nhi\r\n"
    header_size = len(data) - 4
    plan = world.dispatch.plan(b"a")
    assert world.dispatch.message(plan, b"a", b"", header_size, data) == 3
    with_headers, without, route = (bytes(peer.outbound.data) for peer in world.peers[1:])
    assert with_headers == b"HMSG a 0 %d %d\r\n" % (header_size, len(data) - 2) + data
    assert without == b"MSG a 1 2\r\nhi\r\n"
    assert route == b"HMSG $G a %d %d\r\n" % (header_size, len(data) - 2) + data
    assert world.stats.out_msgs == 3 and world.peers[0].in_msgs == 1


def test_plans_are_rebuilt_when_a_limit_is_set():
    """An auto-unsubscribe limit set after a plan was built: the plan is rebuilt, the run
    goes message by message and stops at the limit."""
    spec = ([(False, True, False)], [(1, b"a", None, 0, 1)], False)
    world = World(spec)
    plan = world.dispatch.plan(b"a")
    assert not plan.limited
    world.subs[0].max_msgs = 2
    world.sublist.plans_changed()
    parts = [b"x\r\n"] * 3
    assert world.dispatch.run(world.dispatch.plan(b"a"), b"a", b"", parts) == 2
    assert bytes(world.peers[1].outbound.data) == b"MSG a 0 1\r\nx\r\n" * 2
    assert world.subs[0].closed


@settings(max_examples=300, deadline=None)
@given(worlds, st.lists(st.tuples(st.sampled_from(PUBLISHED + [b"_GR_.x"]),
                                  st.sampled_from([b"", b"r.1", b"_R_.x"]), payloads),
                        min_size=1, max_size=8),  # fmt: skip
       st.integers(0, 2**32))
def test_a_batch_queues_what_its_messages_would(spec, messages, seed):
    """Messages with lines of their own, counted once; the refused ones and the requests
    nobody got are handed back, in order, as the source's own path would meet them."""
    if spec[2]:
        return  # a route's messages come as RMSGs one by one, never as batches
    items = [(subject, reply, payload + b"\r\n") for subject, reply, payload in messages]
    fast, slow = World(spec), World(spec)
    fast.peers[0].closed_reason = None
    handed: list = []
    random.seed(seed)
    fast.dispatch.batch(items, lambda *m: handed.append(("aside", *m)),
                        lambda *m: handed.append(("unanswered", *m)))  # fmt: skip
    expected: list = []
    random.seed(seed)
    for subject, reply, data in items:
        plan = slow.dispatch.plan(subject)
        if plan.reserved or (reply and reply.startswith(b"_R_.")):
            expected.append(("aside", subject, reply, data))
        elif not slow.dispatch.message(plan, subject, reply, -1, data) and reply:
            expected.append(("unanswered", subject, reply))
    assert handed == expected
    assert fast.state() == slow.state()
