"""Local interest bookkeeping for routes: RS+/RS- lines as nats-server sends them, and the encoders."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trionats.core.interest import LocalInterest
from trionats.protocol.encode import rmsg_line, rs_minus, rs_plus
from trionats.protocol.events import RMsg, RSub, RUnsub
from trionats.protocol.parser import RouteParser

G = b"$G"


def test_sequence_captured_from_nats_server():
    """route-protocol.md section 2: B's subscriptions as B announced them to A."""
    interest = LocalInterest()
    sent = [
        interest.add(G, b"foo"),
        interest.add(G, b"foo", b"qg"),
        interest.add(G, b"foo", b"qg"),
        interest.add(G, b"bar.*"),
        interest.add(G, b"foo", b"qh"),
        interest.remove(G, b"foo", b"qg"),
        interest.remove(G, b"bar.*"),
        interest.remove(G, b"foo", b"qg"),
        interest.remove(G, b"foo"),
    ]
    assert sent == [
        b"RS+ $G foo\r\n",
        b"RS+ $G foo qg 1\r\n",
        b"RS+ $G foo qg 2\r\n",
        b"RS+ $G bar.*\r\n",
        b"RS+ $G foo qh 1\r\n",
        b"RS+ $G foo qg 1\r\n",
        b"RS- $G bar.*\r\n",
        b"RS- $G foo qg\r\n",
        b"RS- $G foo\r\n",
    ]


def test_plain_interest_is_refcounted():
    interest = LocalInterest()
    assert interest.add(G, b"a") == b"RS+ $G a\r\n"
    assert interest.add(G, b"a") is None
    assert interest.remove(G, b"a") is None
    assert interest.remove(G, b"a") == b"RS- $G a\r\n"
    assert interest.remove(G, b"a") is None  # unknown: nothing to withdraw
    assert len(interest) == 0


def test_dump_gives_the_current_interest_once():
    interest = LocalInterest()
    interest.add(G, b"a")
    interest.add(G, b"a")
    interest.add(G, b"q.x", b"workers")
    interest.add(G, b"q.x", b"workers")
    assert sorted(interest.dump()) == [b"RS+ $G a\r\n", b"RS+ $G q.x workers 2\r\n"]


_ops = st.lists(
    st.tuples(st.booleans(), st.sampled_from([b"a", b"b.*"]), st.sampled_from([None, b"q"])),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_ops)
def test_a_peer_replaying_the_lines_sees_exactly_the_current_interest(ops):
    """Whatever the order of adds and removes, the lines sent bring a peer to our state."""
    interest = LocalInterest()
    peer: dict = {}
    counts: dict = {}
    for adding, subject, queue in ops:
        key = (subject, queue)
        if adding:
            counts[key] = counts.get(key, 0) + 1
            line = interest.add(G, subject, queue)
        else:
            if counts.get(key):
                counts[key] -= 1
            line = interest.remove(G, subject, queue)
        if line is None:
            continue
        for event in RouteParser().feed(line):
            if type(event) is RSub:
                peer[(event.subject, event.queue)] = event.weight if event.queue else 1
            elif type(event) is RUnsub:
                peer.pop((event.subject, event.queue), None)
    expected = {
        key: (count if key[1] else 1) for key, count in counts.items() if count
    }
    assert peer == expected


def test_rmsg_lines_parse_back():
    cases = [
        (b"foo", b"", (), -1, 2),
        (b"foo", b"rep", (), -1, 2),
        (b"foo", b"", (b"qg", b"qh"), -1, 2),
        (b"foo", b"rep", (b"qg",), -1, 2),
        (b"foo", b"", (), 12, 14),
        (b"foo", b"rep", (b"qg", b"qh"), 18, 20),
    ]
    for subject, reply, queues, header_size, size in cases:
        line = rmsg_line(G, subject, reply, queues, header_size, size)
        payload = b"x" * size + b"\r\n"
        events = list(RouteParser().feed(line + payload))
        assert events == [RMsg(G, subject, reply, queues, header_size, payload)]


def test_captured_rmsg_forms():
    assert rmsg_line(G, b"foo", b"", (b"qg", b"qh"), -1, 2) == b"RMSG $G foo | qg qh 2\r\n"
    assert rmsg_line(G, b"foo", b"rep.1", (b"qg", b"qh"), -1, 2) == (
        b"RMSG $G foo + rep.1 qg qh 2\r\n"
    )
    assert rmsg_line(G, b"foo", b"", (b"qg", b"qh"), 12, 14) == b"HMSG $G foo | qg qh 12 14\r\n"
    assert rmsg_line(G, b"bar.x", b"", (), -1, 1) == b"RMSG $G bar.x 1\r\n"
    assert rs_plus(G, b"foo", b"qg", 2) == b"RS+ $G foo qg 2\r\n"
    assert rs_minus(G, b"foo", b"qg") == b"RS- $G foo qg\r\n"
