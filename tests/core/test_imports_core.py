"""Imports in the delivery core (trionats/core/imports.py): a bridge gets every message of
every shape (one, batch, run, span) one by one, delivers into the other account with the
subject mapped, and the publisher's dispatcher counts the message once."""

from __future__ import annotations

from types import SimpleNamespace

from tests.core.test_dispatch import Peer
from trionats.core.accounts import Account
from trionats.core.dispatch import Dispatcher
from trionats.core.imports import Responses, ServiceImport, StreamImport, set_header
from trionats.core.sublist import Subscription


def clock() -> float:
    return clock.now


clock.now = 100.0


def world():
    exporter, importer = Account("A"), Account("B")
    publisher = Peer(exporter.sublist, is_route=False, headers=True, grants=False)
    publisher.closed_reason = None
    local = Peer(exporter.sublist, is_route=False, headers=True, grants=False)
    remote = Peer(importer.sublist, is_route=False, headers=False, grants=False)
    exporter.sublist.insert(Subscription(local, b"foo.x", None, b"1"))
    importer.sublist.insert(Subscription(remote, b"p.foo.>", None, b"7"))
    bridge = StreamImport(exporter, importer, b"foo.>", b"p.foo.>", clock)
    exporter.sublist.insert(bridge.subscription)
    stats = SimpleNamespace(in_msgs=0, in_bytes=0, out_msgs=0, out_bytes=0)
    return Dispatcher(publisher, exporter.sublist, stats, clock), publisher, local, remote, stats


def test_every_shape_crosses_the_stream_import_message_by_message():
    dispatch, publisher, local, remote, stats = world()
    plan = dispatch.plan(b"foo.x")
    assert plan.bridges and not plan.simple and not plan.empty
    dispatch.message(plan, b"foo.x", b"r", -1, b"m1\r\n")
    dispatch.batch([(b"foo.x", b"", b"b1\r\n"), (b"foo.y", b"", b"b2\r\n")], None, None)
    dispatch.run(plan, b"foo.x", b"", [b"r1\r\n", b"r2\r\n"])
    span = b"PUB foo.x 2\r\ns1\r\nPUB foo.x 2\r\ns2\r\n"
    assert dispatch.span(plan, span, b"PUB foo.x ", 2, 4) is None  # message by message
    dispatch.message(plan, b"foo.x", b"", 12, b"NATS/1.0\r\n\r\nh1\r\n")
    assert bytes(remote.outbound.data) == (
        b"MSG p.foo.x 7 r 2\r\nm1\r\nMSG p.foo.x 7 2\r\nb1\r\nMSG p.foo.y 7 2\r\nb2\r\n"
        b"MSG p.foo.x 7 2\r\nr1\r\nMSG p.foo.x 7 2\r\nr2\r\nMSG p.foo.x 7 2\r\nh1\r\n"
    )
    assert bytes(local.outbound.data).count(b"MSG foo.x 1 ") == 5
    # Counted once, by the publisher's dispatcher: 6 messages in, 5 + 6 deliveries.
    assert (publisher.in_msgs, stats.in_msgs, stats.out_msgs) == (6, 6, 11)
    assert remote.out_msgs == 6


def test_service_import_maps_replies_and_singletons_answer_once():
    exporter, importer = Account("A"), Account("B")
    requester = Peer(importer.sublist, is_route=False, headers=True, grants=False)
    responder = Peer(exporter.sublist, is_route=False, headers=True, grants=False)
    exporter.sublist.insert(Subscription(responder, b"svc", None, b"1"))
    importer.sublist.insert(Subscription(requester, b"inbox", None, b"9"))
    responses = Responses(exporter, clock)
    exporter.sublist.insert(responses.subscription)
    service = ServiceImport(importer, exporter, b"req", b"svc", responses, "singleton", 2.0, clock)
    importer.sublist.insert(service.subscription)
    stats = SimpleNamespace(in_msgs=0, in_bytes=0, out_msgs=0, out_bytes=0)
    ask = Dispatcher(requester, importer.sublist, stats, clock)
    assert ask.message(ask.plan(b"req"), b"req", b"inbox", -1, b"q\r\n") == 1
    line = bytes(responder.outbound.data).split(b"\r\n")[0].split()
    assert line[:3] == [b"HMSG", b"svc", b"1"] and line[3].startswith(responses.prefix)
    answer = Dispatcher(responder, exporter.sublist, stats, clock)
    reply = line[3]
    assert answer.message(answer.plan(reply), reply, b"", -1, b"a1\r\n") == 1
    assert answer.message(answer.plan(reply), reply, b"", -1, b"a2\r\n") == 0
    assert bytes(requester.outbound.data) == b"MSG inbox 9 2\r\na1\r\n"
    assert not responses.pending


def test_set_header():
    assert set_header(b"K", b"v", -1, b"x\r\n") == (18, b"NATS/1.0\r\nK: v\r\n\r\nx\r\n")
    data = b"NATS/1.0\r\nK: old\r\nA: b\r\n\r\nx\r\n"
    assert set_header(b"K", b"v", len(data) - 3, data) == (
        24, b"NATS/1.0\r\nA: b\r\nK: v\r\n\r\nx\r\n")  # fmt: skip
