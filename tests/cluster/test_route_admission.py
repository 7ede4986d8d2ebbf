"""Route admission and the JSON of route peers, played by hand against trionats and nats-server.

A hostile peer connects to the cluster port of a trionats server and of the real nats-server
(same cluster name, same authorization) and sends the same bytes to both; each must answer
with the same bytes and close (or not) the same way. Before its CONNECT has passed the
cluster's authorization a peer may send nothing else (`-ERR 'Authorization Violation'`); a
CONNECT or INFO that Go's decoder refuses (nesting, wrong types) closes the route without
-ERR; lone surrogates are U+FFFD. After each case both servers must still serve a client and
a well-behaved route peer.
"""

from __future__ import annotations

import itertools
import json

import attrs
import bcrypt
import pytest
import trio

from tests.helpers import EXPECT_TIMEOUT, NatsServerProcess, RawClient, free_port, start_trionats
from tests.cluster.test_cluster import cluster_options, wait_for
from tests.auth.test_tls import Certs, certs  # noqa: F401 (the session fixture)
from trionats.options import RouteAuthorization, TLSOptions

PING = b"PING\r\n"
AUTH_ERR = b"-ERR 'Authorization Violation'\r\n"
UNKNOWN_OP = b"-ERR 'Unknown Protocol Operation'\r\n"
INVALID_SUB = b"-ERR 'Invalid Subscription'\r\n"

USER, PASSWORD = "ruser", "s3cret"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
#: The cluster's authorization in each mode: none, a plain password, a bcrypt hash.
MODES = {"none": None, "plain": PASSWORD, "bcrypt": HASH}

#: Written in the cases where a peer names itself; each exchange gets its own server id
#: (one nats-server serves every test: a name used twice would be a duplicate route).
PEER = b"PEER"


@attrs.frozen
class Reply:
    output: bytes
    closed: bool


OPEN = Reply(b"", closed=False)


def refused(output: bytes = b"") -> Reply:
    return Reply(output, closed=True)


def connect(mode: str, **fields) -> bytes:
    """A route CONNECT that passes the cluster's authorization in `mode` (with `fields`)."""
    body = {"echo": True, "verbose": False, "pedantic": False, "name": "PEER", "cluster": "C"}
    if MODES[mode] is not None:
        body |= {"user": USER, "pass": PASSWORD}
    return b"CONNECT " + json.dumps(body | fields).encode() + b"\r\n"


INFO = b'INFO {"server_id":"PEER","server_name":"peer","cluster":"C","port":1}\r\n'


def nested(depth: int, inner: bytes = b"") -> bytes:
    return b"[" * depth + inner + b"]" * depth


# --- the two servers --------------------------------------------------------------------------


@attrs.frozen
class Ports:
    client: int
    cluster: int


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """One nats-server per authorization mode (started when first needed)."""
    started: dict[str, NatsServerProcess] = {}

    def reference(mode: str) -> Ports:
        if mode not in started:
            cluster_port = free_port()
            auth = ""
            if MODES[mode] is not None:
                auth = f'authorization {{ user: {USER}, password: "{MODES[mode]}" }}'
            conf = tmp_path_factory.mktemp(mode) / "nats-server.conf"
            conf.write_text(
                "no_system_account: true\n"  # (else its $SYS interest goes to every route)
                f"cluster {{ name: C, host: 127.0.0.1, port: {cluster_port}\n {auth} }}\n"
            )
            started[mode] = NatsServerProcess("-c", str(conf))
            started[mode].cluster_port = cluster_port
        process = started[mode]
        return Ports(process.port, process.cluster_port)

    yield reference
    for process in started.values():
        process.stop()


async def start_ours(nursery, mode: str, **fields):
    password = MODES[mode]
    if password is not None:
        fields["authorization"] = RouteAuthorization(user=USER, password=password)
    # (no system account: a peer by hand would read its interest before what a test is about)
    return await start_trionats(nursery, cluster=cluster_options(**fields), no_system_account=True)


# --- a peer by hand ---------------------------------------------------------------------------

_ids = itertools.count()


async def open_peer(port: int, tls=None) -> RawClient:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    if tls is not None:
        stream = trio.SSLStream(stream, tls, server_hostname="localhost")
        await stream.do_handshake()
    peer = RawClient(stream)
    peer.info = await peer.read_line()
    assert peer.info.startswith(b"INFO {"), peer.info
    return peer


async def exchange(port: int, data: bytes, *, barrier: bool = True, tls=None) -> Reply:
    """Send `data` (then a PING, unless `barrier` is off) as a fresh route peer; collect the
    replies until the PONG or the close. The servers' own keepalive PINGs are left out."""
    peer = await open_peer(port, tls)
    closed = False
    try:
        await peer.send(data.replace(PEER, b"PEER%d" % next(_ids)) + (PING if barrier else b""))
        with trio.fail_after(EXPECT_TIMEOUT):
            while b"PONG\r\n" not in peer.buffer:
                try:
                    received = await peer.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    received = b""
                if not received:
                    closed = True
                    break
                peer.buffer += received
    finally:
        await peer.aclose()
    output = peer.buffer.partition(b"PONG\r\n")[0]
    return Reply(output.replace(PING, b""), closed)


async def assert_same(ours: Ports, theirs: Ports, data: bytes, expected: Reply, **how) -> None:
    """Both servers answer `data` as `expected`, then still serve a client and a route."""
    reference = await exchange(theirs.cluster, data, **how)
    assert reference == expected, "nats-server itself answers otherwise"
    got = await exchange(ours.cluster, data, **how)
    assert got == expected, f"trionats: {got}, nats-server: {reference}"


async def assert_serves(ports: Ports, mode: str) -> None:
    """A client and a well-behaved route peer still get each other's messages."""
    client = await RawClient.connect(ports.client)
    route = await open_peer(ports.cluster)
    try:
        await client.send(b'CONNECT {"verbose":false}\r\nSUB probe 1\r\nPING\r\n')
        await client.expect(b"PONG\r\n")
        name = b"NORMAL%d" % next(_ids)
        await route.send(connect(mode).replace(PEER, name) + INFO.replace(PEER, name)
                         + b"RS+ $G probe.back\r\n")  # fmt: skip
        assert b"RS+ $G probe\r\n" in await route.ping_pong()  # (the interest dump)
        await route.send(b"RMSG $G probe 2\r\nhi\r\n")
        await client.expect(b"MSG probe 1 2\r\nhi\r\n")
        await client.send(b"PUB probe.back 2\r\nok\r\n")
        with trio.fail_after(EXPECT_TIMEOUT):
            while b"RMSG $G probe.back 2\r\nok\r\n" not in route.buffer:
                assert await route._fill(), route.buffer
    finally:
        await client.aclose()
        await route.aclose()


@pytest.fixture(params=sorted(MODES))
def mode(request) -> str:
    return request.param


async def run_case(nursery, references, mode: str, data: bytes, expected: Reply, **how):
    ours = await start_ours(nursery, mode)
    ours_ports = Ports(ours.port, ours.cluster.port)
    theirs = references(mode)
    await assert_same(ours_ports, theirs, data, expected, **how)
    await assert_serves(theirs, mode)
    await assert_serves(ours_ports, mode)
    assert not ours.cluster.routes or all(r.registered for r in ours.cluster.routes.values())
    ours.shutdown()


# --- before CONNECT: nothing but a CONNECT is read --------------------------------------------

BEFORE_CONNECT = {
    "info": INFO,
    "rs+": b"RS+ $G secret.>\r\n",
    "rmsg": b"RMSG $G secret.x 2\r\nhi\r\n",
    "ping": b"",  # (the barrier's PING is the first op)
    "pong": b"PONG\r\n",
    "blank line": b"\r\n",
    "info, then connect": INFO + b'CONNECT {"name":"PEER","cluster":"C"}\r\n',
}


@pytest.mark.parametrize("case", sorted(BEFORE_CONNECT))
async def test_anything_before_connect_is_an_authorization_violation(nursery, references, mode,
                                                                     case):  # fmt: skip
    await run_case(nursery, references, mode, BEFORE_CONNECT[case], refused(AUTH_ERR))


async def test_the_first_byte_of_another_op_is_enough(nursery, references, mode):
    await run_case(nursery, references, mode, b"I", refused(AUTH_ERR), barrier=False)


async def test_a_lowercase_connect_is_a_connect(nursery, references, mode):
    data = connect(mode).replace(b"CONNECT", b"connect")
    await run_case(nursery, references, mode, data, OPEN)


# --- the CONNECT's credentials and checks -----------------------------------------------------

AUTHORIZED = ["plain", "bcrypt"]

REFUSED_CONNECTS = {
    # Nothing after a refused CONNECT in the same read is acted on.
    "wrong password, then more": lambda m: connect(m, **{"pass": "wrong"})
    + b"RS+ $G secret.>\r\n" + INFO + b"RMSG $G secret.x 2\r\nhi\r\n",
    "no credentials": lambda m: b'CONNECT {"name":"PEER","cluster":"C"}\r\n' + INFO,
    "wrong user": lambda m: connect(m, user="intruder") + INFO,
    "a wrongly typed route field, wrong password": lambda m: connect(m, cluster=5, **{"pass": "x"}),
    "null": lambda m: b"CONNECT null\r\n",
}


@pytest.mark.parametrize("mode", AUTHORIZED)
@pytest.mark.parametrize("case", sorted(REFUSED_CONNECTS))
async def test_a_connect_that_fails_authorization_is_refused(nursery, references, mode, case):
    await run_case(nursery, references, mode, REFUSED_CONNECTS[case](mode), refused(AUTH_ERR))


async def test_an_account_designation_is_an_authorization_violation(nursery, references, mode):
    await run_case(nursery, references, mode, connect(mode, account="A") + INFO, refused(AUTH_ERR))


async def test_a_null_connect_without_authorization_names_no_cluster(nursery, references):
    expected = refused(b"-ERR 'Rejecting connection, cluster name \"\" does not match \"C\"'\r\n")
    await run_case(nursery, references, "none", b"CONNECT null\r\n", expected)


async def test_a_bcrypt_verdict_comes_before_what_follows_in_the_same_read(nursery):
    """The events after a bcrypt-checked CONNECT wait for the verdict: refused, none of them
    ever counts; accepted, they all do, in order."""
    server = await start_ours(nursery, "bcrypt")
    port = server.cluster.port
    sub = await RawClient.connect(server.port)
    await sub.send(b'CONNECT {"verbose":false}\r\nSUB secret.x 1\r\nPING\r\n')
    await sub.expect(b"PONG\r\n")
    hostile = connect("bcrypt", **{"pass": "wrong"}) + INFO + b"RS+ $G secret.>\r\n"
    assert await exchange(port, hostile + b"RMSG $G secret.x 2\r\nhi\r\n") == refused(AUTH_ERR)
    assert not server.cluster.routes
    peer = await open_peer(port)
    await peer.send(connect("bcrypt") + INFO + b"RMSG $G secret.x 2\r\nok\r\n")
    await sub.expect(b"MSG secret.x 1 2\r\nok\r\n")
    await peer.aclose()
    await sub.aclose()
    server.shutdown()


# --- after the handshake ----------------------------------------------------------------------

AFTER_HANDSHAKE = {
    "unknown op": (lambda m: connect(m) + b"XYZ\r\n", refused(UNKNOWN_OP)),
    "unknown op after INFO": (lambda m: connect(m) + INFO + b"XYZ\r\n", refused(UNKNOWN_OP)),
    "a client's MSG": (lambda m: connect(m) + INFO + b"MSG a 1 1\r\nx\r\n", refused(UNKNOWN_OP)),
    "an -ERR": (lambda m: connect(m) + INFO + b"-ERR 'boom'\r\n", refused()),
    "RS+ without a subject": (lambda m: connect(m) + INFO + b"RS+ $G\r\n", refused()),
    "RMSG without a size": (lambda m: connect(m) + INFO + b"RMSG $G\r\n", refused()),
    "+OK": (lambda m: connect(m) + INFO + b"+OK\r\n", OPEN),
    # A client's ops, as nats-server's parser reads them on a route.
    "a client's PUB": (lambda m: connect(m) + INFO + b"PUB a 1\r\nx\r\n", OPEN),
    "a client's SUB": (lambda m: connect(m) + INFO + b"SUB a 1\r\n", OPEN),
    "a client's UNSUB, read as RS-": (lambda m: connect(m) + INFO + b"UNSUB $G a\r\n", OPEN),
    "a client's UNSUB of a sid": (lambda m: connect(m) + INFO + b"UNSUB 1\r\n", refused()),
    "HPUB without headers": (lambda m: connect(m) + INFO + b"HPUB a 2 3\r\n\r\nx\r\n",
                             refused()),  # fmt: skip
    "HPUB with headers": (
        lambda m: connect(m, headers=True) + INFO.replace(b'"port"', b'"headers":true,"port"')
        + b"HPUB a 2 3\r\n\r\nx\r\n", OPEN),
    "a control line too long": (
        lambda m: connect(m) + INFO + b"RS+ $G " + b"a" * 70_000 + b"\r\n",
        refused(b"-ERR 'maximum control line exceeded'\r\n"),
    ),
    # Found by the fuzzer's differential sample (tests/differential/test_fuzz_differential.py):
    "RS+ on an invalid subject": (
        lambda m: connect(m) + INFO + b"RS+ $G a..b\r\nRS+ $G a.>.b q 1\r\n",
        Reply(INVALID_SUB * 2, closed=False)),
    "RS+ on an invalid subject before INFO": (lambda m: connect(m) + b"RS+ $G a..b\r\n",
                                              Reply(INVALID_SUB, closed=False)),  # fmt: skip
    "RS+ on an invalid subject of another account": (
        lambda m: connect(m) + INFO + b"RS+ ACC a..b\r\n", OPEN),
}

#: Cases sent without the PING barrier after them.
WITHOUT_BARRIER = {
    # nats-server parses a client PUB's line again as an RMSG's when its payload is still to
    # come at the end of a read: "a 5" is not an RMSG line ("a r 5" would be: account a).
    "a client's PUB waiting for its payload": (
        lambda m: connect(m) + INFO + b"PUB a 5\r\nx", refused(UNKNOWN_OP)),
    "a client's HPUB waiting for its payload": (
        lambda m: connect(m, headers=True) + INFO.replace(b'"port"', b'"headers":true,"port"')
        + b"HPUB a 2 5\r\n\r\n", refused(UNKNOWN_OP)),
    # The route closes, but what was queued before the -ERR goes out.
    "an -ERR after a PING": (lambda m: connect(m) + INFO + b"PING\r\n-ERR 'boom'\r\n", OPEN),
}


@pytest.mark.parametrize("case", sorted(AFTER_HANDSHAKE))
async def test_after_the_handshake(nursery, references, mode, case):
    build, expected = AFTER_HANDSHAKE[case]
    await run_case(nursery, references, mode, build(mode), expected)


@pytest.mark.parametrize("case", sorted(WITHOUT_BARRIER))
async def test_without_a_barrier(nursery, references, case):
    build, expected = WITHOUT_BARRIER[case]
    await run_case(nursery, references, "none", build("none"), expected, barrier=False)


async def test_a_clients_ops_on_a_route_deliver_nothing(nursery):
    server = await start_ours(nursery, "none")
    sub = await RawClient.connect(server.port)
    await sub.send(b'CONNECT {"verbose":false}\r\nSUB a 1\r\nPING\r\n')
    await sub.expect(b"PONG\r\n")
    peer = await open_peer(server.cluster.port)
    await peer.send(connect("none") + INFO + b"RS+ $G b\r\nPUB a 1\r\nx\r\nSUB c 1\r\n"
                    b"UNSUB $G b\r\nRMSG $G a 1\r\ny\r\n")  # fmt: skip
    await sub.expect(b"MSG a 1 1\r\ny\r\n")  # the RMSG alone
    route = server.cluster.routes["PEER"]
    assert not route.remote_subs  # (RS+ b, then UNSUB $G b)
    await peer.aclose()
    await sub.aclose()
    server.shutdown()


# --- the JSON of CONNECT and INFO -------------------------------------------------------------

#: Each once ended the whole trionats process (RecursionError, TypeError, UnicodeEncodeError)
#: or registered a route nats-server refuses.
JSON_CASES = {
    # CONNECT: decoded as ClientOpts, then (after authorization) as the route's connectInfo.
    "connect nested 2,000 deep": (lambda m: b"CONNECT " + nested(2000) + b"\r\n", refused()),
    "connect with an object nested 1,500 deep": (
        lambda m: connect(m)[:-3] + b',"x":' + b'{"a":' * 1500 + b"1" + b"}" * 1501 + b"\r\n"
        + INFO, OPEN),
    "connect nested past Go's limit": (
        lambda m: connect(m)[:-3] + b',"x":' + nested(10_001) + b"}\r\n", refused()),
    "connect with a deep unknown member": (
        lambda m: connect(m)[:-3] + b',"x":' + nested(2000) + b"}\r\n" + INFO, OPEN),
    "connect user a number": (lambda m: connect(m, user=5), refused()),
    "connect name an object": (lambda m: connect(m, name={"a": 1}), refused()),
    "connect protocol a float": (lambda m: connect(m, protocol=1.5), refused()),
    "connect headers a string": (lambda m: connect(m, headers="yes"), refused()),
    "connect import allow a string": (lambda m: connect(m, **{"import": {"allow": "a"}}),
                                      refused()),  # fmt: skip
    "connect cluster a number": (lambda m: connect(m, cluster=5), refused()),
    "connect cluster a list": (lambda m: connect(m, cluster=["C"]), refused()),
    "connect lnoc a string": (lambda m: connect(m, lnoc="x"), refused()),
    "connect ln a number": (lambda m: connect(m, ln=2), refused()),  # a bool in 2.15.1
    "connect gateway a bool": (lambda m: connect(m, gateway=True), refused()),
    "connect cluster_dynamic a number": (lambda m: connect(m, cluster_dynamic=1), refused()),
    "connect lang first": (lambda m: connect(m, lang="go", cluster=5),
                           refused(b"-ERR 'attempted to connect to route port'\r\n")),
    "connect lone surrogate name": (
        lambda m: connect(m).replace(b'"name": "PEER"', b'"name": "\\ud800"') + INFO, OPEN),
    "connect lone surrogate key": (lambda m: connect(m)[:-3] + b',"\\udc00":1}\r\n' + INFO,
                                   OPEN),  # fmt: skip
    "connect lone surrogate cluster": (
        lambda m: connect(m).replace(b'"cluster": "C"', b'"cluster": "\\ud800"'),
        refused('-ERR \'Rejecting connection, cluster name "\ufffd" does not match "C"\'\r\n'
                .encode()),
    ),
    # The first INFO, decoded as nats-server's Info.
    "info nested 2,000 deep": (lambda m: connect(m) + b"INFO " + nested(2000) + b"\r\n",
                               refused()),  # fmt: skip
    "info an array": (lambda m: connect(m) + b"INFO []\r\n", refused()),
    "info connect_urls a number": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","connect_urls":5}\r\n', refused()),
    "info connect_urls a string": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","connect_urls":"a:1"}\r\n', refused()),
    "info connect_urls holds a number": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","connect_urls":[1]}\r\n', refused()),
    "info ip a number": (lambda m: connect(m) + b'INFO {"server_id":"PEER","ip":5}\r\n',
                         refused()),  # fmt: skip
    "info port a string": (lambda m: connect(m) + b'INFO {"server_id":"PEER","port":"1"}\r\n',
                           refused()),  # fmt: skip
    "info port a float": (lambda m: connect(m) + b'INFO {"server_id":"PEER","port":1.5}\r\n',
                          refused()),  # fmt: skip
    "info server_id a bool": (lambda m: connect(m) + b'INFO {"server_id":true}\r\n', refused()),
    "info server_name an object": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","server_name":{}}\r\n', refused()),
    "info headers a string": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","headers":"yes"}\r\n', refused()),
    "info ldm a number": (lambda m: connect(m) + b'INFO {"server_id":"PEER","ldm":1}\r\n',
                          refused()),  # fmt: skip
    "info compression unknown": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","compression":"S2_FAST"}\r\n',
        refused(b"-ERR 'unsupported route compression mode \"S2_FAST\"'\r\n")),
    "info compression a lone surrogate": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","compression":"\\ud800"}\r\n',
        refused("-ERR 'unsupported route compression mode \"\ufffd\"'\r\n".encode())),
    "gossip compression unknown": (
        lambda m: connect(m) + INFO + b'INFO {"server_id":"Q","compression":"x"}\r\n', OPEN),
    "info ln a string": (lambda m: connect(m) + b'INFO {"server_id":"PEER","ln":"x"}\r\n',
                         refused()),  # fmt: skip
    "info max_payload past int32": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","max_payload":2147483648}\r\n',
        refused()),
    "info lone surrogates": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","server_name":"\\ud800",'
        b'"\\udfff":1,"cluster":"C","connect_urls":["\\udc00:1",null,""],'
        b'"ip":"nats-route://\\ud800:1/"}\r\n', OPEN),
    "info odd but valid values": (
        lambda m: connect(m) + b'INFO {"server_id":"PEER","host":"","port":9223372036854775807,'
        b'"connect_urls":null,"ws_connect_urls":[null],"import":null,"export":{"allow":null},'
        b'"gateway_cmd_payload":"aGk=","max_payload":-1}\r\n', OPEN),
    "info without a cluster": (lambda m: connect(m) + b'INFO {"server_id":"PEER"}\r\n', OPEN),
    "info null": (lambda m: connect(m) + b"INFO null\r\n", OPEN),
    # INFOs after the first: gossip about another server, or the peer's own update.
    "gossip connect_urls a number": (
        lambda m: connect(m) + INFO + b'INFO {"server_id":"Q","connect_urls":5}\r\n', refused()),
    "gossip ip a number": (lambda m: connect(m) + INFO + b'INFO {"server_id":"Q","ip":5}\r\n',
                           refused()),  # fmt: skip
    "gossip port a bool": (
        lambda m: connect(m) + INFO + b'INFO {"server_id":"Q","port":true}\r\n', refused()),
    "gossip nested 2,000 deep": (lambda m: connect(m) + INFO + b"INFO " + nested(2000) + b"\r\n",
                                 refused()),  # fmt: skip
    "gossip with a deep unknown member": (
        lambda m: connect(m) + INFO + b'INFO {"x":' + nested(2000) + b"}\r\n", OPEN),
    "gossip lone surrogates": (
        lambda m: connect(m) + INFO + b'INFO {"server_id":"\\ud800","\\udfff":1,'
        b'"ip":"nats-route://\\ud800:1/"}\r\n', OPEN),
    "gossip addresses that cannot be dialed": (
        lambda m: connect(m) + INFO + b'INFO {"server_id":"Q1","host":"\\ud800","port":1}\r\n'
        b'INFO {"server_id":"Q2","host":"a..b","port":1}\r\n'
        b'INFO {"server_id":"Q3","ip":"nats-route://[::1:1/"}\r\n'
        b'INFO {"server_id":"Q4","host":"x","port":99999999999}\r\n'
        b'INFO {"server_id":"Q5","host":"","port":0}\r\n', OPEN),
    "update connect_urls a float": (
        lambda m: connect(m) + INFO + b'INFO {"server_id":"PEER","connect_urls":1.5}\r\n',
        refused()),
}


@pytest.mark.parametrize("case", sorted(JSON_CASES))
async def test_json(nursery, references, mode, case):
    build, expected = JSON_CASES[case]
    await run_case(nursery, references, mode, build(mode), expected)


# --- what trionats makes of odd but valid INFO values -----------------------------------------


async def test_odd_info_values_reach_clients_and_other_routes_encodable(nursery):
    """Lone surrogates (U+FFFD now) and null URLs ("" in Go) in a peer's INFO go on to
    clients' connect_urls and to the gossip other routes get, as valid UTF-8."""
    server = await start_ours(nursery, "none")
    watcher = await RawClient.connect(server.port)
    await watcher.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    await watcher.expect(b"PONG\r\n")
    first = await open_peer(server.cluster.port)
    await first.send(connect("none").replace(PEER, b"FIRST") + INFO.replace(PEER, b"FIRST"))
    await wait_for(lambda: "FIRST" in server.cluster.routes)
    odd = await open_peer(server.cluster.port)
    await odd.send(connect("none") + b'INFO {"server_id":"ODD\\ud800","server_name":"\\udc00",'
                   b'"cluster":"C","port":7,"connect_urls":["h\\ud800:1",null],'
                   b'"gateway_cmd_payload":"aGk=","nonce":"n"}\r\n')  # fmt: skip
    await wait_for(lambda: "ODD\ufffd" in server.cluster.routes)
    with trio.fail_after(EXPECT_TIMEOUT):
        while True:
            line = await watcher.read_line()
            if line.startswith(b"INFO ") and b"h\xef\xbf\xbd:1" in line:
                break
    assert "" in json.loads(line[5:])["connect_urls"]
    with trio.fail_after(EXPECT_TIMEOUT):
        while True:
            line = await first.read_line()
            if line.startswith(b"INFO "):
                break
    gossip = json.loads(line[5:])
    assert gossip["server_id"] == "ODD\ufffd" and gossip["server_name"] == "\ufffd"
    assert gossip["connect_urls"] == ["h\ufffd:1", ""]
    assert gossip["gateway_cmd_payload"] == "aGk=" and "nonce" not in gossip
    assert gossip["ip"] == "nats-route://127.0.0.1:7/"
    for raw in (watcher, first, odd):
        await raw.aclose()
    server.shutdown()


# --- the certificate as the credential (verify_and_map) ---------------------------------------


@pytest.fixture(scope="module")
def mapped_reference(certs, tmp_path_factory):  # noqa: F811
    cluster_port = free_port()
    conf = tmp_path_factory.mktemp("mapped") / "nats-server.conf"
    conf.write_text(
        "no_system_account: true\n"
        f"cluster {{ name: C, host: 127.0.0.1, port: {cluster_port}\n"
        '  authorization { user: "alice@example.com", password: "unused" }\n'
        f'  tls {{ cert_file: "{certs.server_cert}", key_file: "{certs.server_key}",'
        f' ca_file: "{certs.ca_file}", verify_and_map: true, timeout: 2 }}\n}}\n'
    )
    with NatsServerProcess("-c", str(conf)) as process:
        yield Ports(process.port, cluster_port)


MAPPED = {
    "alice, INFO first": ("alice", INFO, refused(AUTH_ERR)),
    "bob, CONNECT then more": ("bob", b'CONNECT {"name":"PEER","cluster":"C"}\r\n' + INFO
                               + b"RS+ $G secret.>\r\n", refused(AUTH_ERR)),  # fmt: skip
    "alice, CONNECT": ("alice", b'CONNECT {"name":"PEER","cluster":"C"}\r\n' + INFO, OPEN),
}


@pytest.mark.parametrize("case", sorted(MAPPED))
async def test_verify_and_map(nursery, certs, mapped_reference, case):  # noqa: F811
    who, data, expected = MAPPED[case]
    tls = TLSOptions(cert_file=certs.server_cert, key_file=certs.server_key,
                     ca_file=certs.ca_file, verify_and_map=True)  # fmt: skip
    ours = await start_trionats(nursery, cluster=cluster_options(
        tls=tls, authorization=RouteAuthorization(user="alice@example.com", password="unused")),
        no_system_account=True)  # (nats-server sends its system interest on a route of its own)
    context = certs.client_context(who)
    await assert_same(Ports(ours.port, ours.cluster.port), mapped_reference, data, expected,
                      tls=context)  # fmt: skip
    ours.shutdown()
