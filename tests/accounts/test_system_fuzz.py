"""Hostile system requests: the bodies of every `$SYS.REQ` request a user can send (the
system account's users all of them, any other account's the four it imports), and the
request-info header of a user-info request, mutated (fuzz/mutate.py: wrong types, deep
nesting, huge numbers, bad UTF-8, cut or flipped bytes), to one in-process server. Every
answer is one JSON object; nothing raises inside the server, no client is closed, and the
server still answers correctly afterwards."""

from __future__ import annotations

import json
import random

from fuzz.mutate import mutate
from tests.accounts.test_system_account import CONF, connected, start
from trionats.system import ACCOUNT_ENDPOINTS, SERVER_ENDPOINTS

#: (user, subject, a valid body).
TEMPLATES = [
    ("sys", f"$SYS.REQ.SERVER.PING.{name}", b'{"server_name":"N1","exact_match":true,"tags":["a"]}')
    for name in SERVER_ENDPOINTS
] + [
    ("sys", f"$SYS.REQ.ACCOUNT.A.{name}", b'{"accounts":["A"],"include_unused":true,"offset":1}')
    for name in ACCOUNT_ENDPOINTS
] + [
    ("sys", "$SYS.REQ.SERVER.PING.CONNZ", b'{"sort":"cid","subscriptions":true,"limit":2,"state":1}'),
    ("a", "$SYS.REQ.SERVER.PING.CONNZ", b'{"auth":true,"offset":0}'),
    ("a", "$SYS.REQ.ACCOUNT.PING.CONNZ", b'{"subscriptions_detail":true}'),
    ("a", "$SYS.REQ.ACCOUNT.PING.STATZ", b'{"accounts":["A","SYS"],"include_unused":false}'),
    ("a", "$SYS.REQ.USER.INFO", b""),
]

#: A user-info request as the system account's import hands it on, its header to mutate.
INFO_HEADER = b'NATS/1.0\r\nNats-Request-Info: {"acc":"A","user":"a","id":1,"rtt":5}\r\n\r\n'

INPUTS = 1000


async def test_mutated_system_requests_get_json_or_nothing(nursery):
    server = await start(nursery, CONF)
    clients = {user: await connected(server, user) for user in ("sys", "a")}
    for client in clients.values():
        await client.send(b"SUB _r.> 1\r\n")
        await client.ping_pong()
    rng = random.Random(14)
    answered = refused = 0
    for index in range(INPUTS):
        if rng.random() < 0.15:
            user, header = "sys", mutate(rng, INFO_HEADER, json_fields=("acc", "user", "id"))
            header = header if header.endswith(b"\r\n\r\n") else INFO_HEADER
            await clients[user].send(b"HPUB $SYS.REQ.USER.A.INFO _r.%d %d %d\r\n%s\r\n" % (
                index, len(header), len(header), header))  # fmt: skip
        else:
            user, subject, body = rng.choice(TEMPLATES)
            if rng.random() < 0.85:
                body = mutate(rng, b"INFO " + body, json_fields=("accounts", "limit", "tags"))
                body = body[5:] if body.startswith(b"INFO ") else body
            body = body.replace(b"\r", b"").replace(b"\n", b"")
            await clients[user].send(b"PUB %s _r.%d %d\r\n%s\r\n" % (
                subject.encode(), index, len(body), body))  # fmt: skip
        replies = await clients[user].ping_pong()
        for line in replies.split(b"\r\n"):
            if line.startswith(b"{"):
                reply = json.loads(line)
                assert isinstance(reply, dict), line
                answered += 1
                refused += "error" in reply
        assert b"-ERR" not in replies
        assert server.stats.internal_errors == 0
    # Both kinds: the mutations reach the handlers' checks, not only the JSON reader.
    assert answered > INPUTS // 3 and 0 < refused < answered, (answered, refused)
    assert len(server.clients) == 2  # nobody was closed
    # Still answering as it should (a new client: late answers may still reach the others).
    a = await connected(server, "a")
    await a.send(b"SUB _r.ok 1\r\nPUB $SYS.REQ.USER.INFO _r.ok 0\r\n\r\n")
    line = await a.read_line()
    size = int(line.split()[-1])
    body = json.loads((await a.read_exactly(size + 2))[:-2])
    assert body["data"]["user"] == "a"
    for client in (*clients.values(), a):
        await client.aclose()
