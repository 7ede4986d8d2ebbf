"""max_sub_tokens: a SUB with more tokens than the limit is refused, the connection stays open.

Differential against nats-server at the edge (exactly N tokens accepted, N+1 refused), plus the
log line, queue subscriptions, routes (not limited) and the configuration's range.
"""

from __future__ import annotations

import pytest

from tests.helpers import NatsServerProcess, RawClient
from tests.differential.test_differential import C, PING, assert_same_replies, pub, write_reference_config
from trionats import errors
from trionats.config.load import options_from_conf
from trionats.config.natsconf import parse
from trionats.config.reload import diff
from trionats.errors import ConfigError
from trionats.options import ClusterOptions, Options

LIMIT = 3


@pytest.fixture(scope="module")
def tokens_reference(tmp_path_factory):
    config = write_reference_config(tmp_path_factory.mktemp("tokens"), max_sub_tokens=LIMIT)
    with NatsServerProcess("-c", str(config)) as process:
        yield process


SCRIPTS = {
    "exactly_the_limit_is_accepted": [C + b"SUB a.b.c 1\r\n" + pub(b"a.b.c", b"in") + PING],
    "one_over_the_limit_is_refused_and_stays_open": [
        C + b"SUB a.b.c.d 1\r\nSUB a.b.c 2\r\n" + pub(b"a.b.c.d", b"no") + pub(b"a.b.c", b"yes")
        + PING
    ],
    "wildcards_count_as_tokens": [
        C + b"SUB a.*.> 1\r\nSUB a.*.*.> 2\r\nSUB > 3\r\n" + pub(b"a.b.c.d", b"x") + PING
    ],
    "queue_subscriptions_are_limited_too": [
        C + b"SUB a.b.c.d q 1\r\nSUB a.b.c q 2\r\n" + pub(b"a.b.c.d", b"no")
        + pub(b"a.b.c", b"yes") + PING
    ],
    "verbose_gets_no_ok_for_a_refused_sub": [
        b'CONNECT {"verbose":true}\r\nSUB a.b.c.d 1\r\nSUB a.b 2\r\n' + PING
    ],
    "checked_before_the_subject_is_validated": [C + b"SUB a..b.c 1\r\nSUB a..b 2\r\n" + PING],
    "checked_before_max_subscriptions_and_sid_reuse": [
        C + b"SUB a 1\r\nSUB a.b.c.d 1\r\n" + pub(b"a", b"x") + PING
    ],
}


@pytest.mark.parametrize("steps", list(SCRIPTS.values()), ids=list(SCRIPTS))
async def test_sub_tokens_script(tokens_reference, server_factory, steps):
    trionats = await server_factory(max_sub_tokens=LIMIT)
    await assert_same_replies(tokens_reference.port, trionats.port, steps)


async def test_refusal_text_and_log_line(server_factory, capsys):
    server = await server_factory(max_sub_tokens=2)
    client = await RawClient.connect(server.port)
    await client.send(C + b"SUB a.b.c 7\r\nPING\r\n")
    refusal = b"-ERR 'Permissions Violation for Subscription to \"a.b.c\", too many tokens'\r\n"
    await client.expect(refusal)
    await client.expect(b"PONG\r\n")
    assert server.sublist.count == 0  # no subscription was created
    err = capsys.readouterr().err
    assert '[ERR] 127.0.0.1:' in err
    assert 'Subscription Violation Too Many Tokens - Subject "a.b.c", SID 7' in err
    assert errors.too_many_tokens("a.b.c").endswith("too many tokens")
    await client.stream.aclose()


async def test_unlimited_by_default(server_factory):
    server = await server_factory()
    client = await RawClient.connect(server.port)
    subject = b".".join([b"t"] * 255)
    await client.send(C + b"SUB " + subject + b" 1\r\nPING\r\n")
    await client.expect(b"PONG\r\n")
    assert server.sublist.count == 1
    await client.stream.aclose()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_sub_tokens: 0", "max_sub_tokens: value can not be negative"),
        ("max_sub_tokens: -1", "max_sub_tokens: value can not be negative"),
        ("max_sub_tokens: 256", "max_sub_tokens: value is too big"),
        ("max_subscription_tokens: 300", "max_subscription_tokens: value is too big"),
    ],
)
def test_range_is_nats_servers(text, message):
    with pytest.raises(ConfigError, match=message):
        options_from_conf(parse(text))


@pytest.mark.parametrize("text", ["max_sub_tokens: 1", "max_subscription_tokens: 255"])
def test_edges_of_the_range_are_accepted(text):
    options = options_from_conf(parse(text))
    assert options.max_sub_tokens == int(text.split()[-1])


async def test_route_interest_is_not_limited(server_factory):
    """nats-server checks the limit for client SUBs only: a route's RS+ is taken as is."""
    cluster = ClusterOptions(name="C", host="127.0.0.1", port=-1)
    server = await server_factory(max_sub_tokens=2, cluster=cluster)
    peer = await RawClient.connect(server.cluster.port)
    await peer.send(
        b'CONNECT {"name":"PEER","cluster":"C"}\r\n'
        b'INFO {"server_id":"PEER","server_name":"peer","cluster":"C","port":1}\r\n'
        b"RS+ $G a.b.c.d\r\n"
    )
    await peer.ping_pong()  # (after the system account's interest, sent to the new peer)
    result = server.sublist.match(b"a.b.c.d")
    assert [sub.client.is_route for sub in result.psubs] == [True]
    await peer.stream.aclose()


def test_not_reloadable():
    with pytest.raises(ConfigError) as info:
        diff(Options(), Options(max_sub_tokens=5))
    assert str(info.value) == "config reload not supported for MaxSubTokens: old=0, new=5"
