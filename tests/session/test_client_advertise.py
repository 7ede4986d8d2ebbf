"""client_advertise: the address a server gives clients (INFO host, port and connect_urls) and
other servers (its route INFO's connect_urls), as nats-server 2.15.1 does.

nats-server's rules, checked against the binary: `host` takes the bound client port; a port
of 0 or -1 does too; a value Go cannot parse makes the server fail when it starts listening
(trionats refuses it at `-t` already), with Go's error text. A reload changes the host and
port of later INFOs (and /varz) but not connect_urls, which stay what the server started with.
"""

from __future__ import annotations

import json

import attrs
import pytest
import trio

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess, free_port, start_trionats
from tests.cluster.test_cluster import TIMEOUT, cluster_options, routed, wait_for
from tests.config.test_config import run_nats_server_check, run_trionats
from tests.monitor.test_monitor import get_json
from trionats import cli
from trionats.config.load import load
from trionats.config.reload import check_client_advertise
from trionats.errors import ConfigError
from trionats.hostport import parse_host_port
from trionats.options import Options
from trionats.server import Server

PUBLIC = "public.example:4333"


def info_of(raw: RawClient) -> dict:
    return json.loads(raw.info[5:])


@pytest.fixture
async def raws():
    """Raw clients a test opens (`await raws(port)`), closed after it, pass or fail."""
    opened: list[RawClient] = []

    async def open_raw(port: int, *, connect: bool = False) -> RawClient:
        raw = await RawClient.connect(port)
        opened.append(raw)
        if connect:  # protocol 1: it takes async INFO once it had its PONG
            await raw.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
            await raw.expect(b"PONG\r\n")
        return raw

    yield open_raw
    for raw in opened:
        await raw.aclose()


async def start_node(nursery, *routes: int, server_name: str, **fields) -> Server:
    """A clustered trionats (cluster "C", routes to `routes`) with server options `fields`."""
    return await start_trionats(
        nursery, cluster=cluster_options(*routes), server_name=server_name, **fields
    )


# --- parsing: Go's parseHostPort -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("public.example:4333", ("public.example", 4333)),
        ("public.example", ("public.example", 4222)),  # the port defaults to the bound one
        ("h:0", ("h", 4222)),
        ("h:-1", ("h", 4222)),
        ("h:-5", ("h", -5)),  # Go's Atoi takes it, and nothing checks the range after it
        ("h:99999", ("h", 99999)),
        ("h:+5", ("h", 5)),
        (" h : 5 ", ("h", 5)),  # both halves are trimmed
        ("[::1]", ("::1", 4222)),
        ("[::1]:4333", ("::1", 4333)),
        ("10.0.0.1:4333", ("10.0.0.1", 4333)),
    ],
)
def test_parse_host_port_as_go(text, parsed):
    assert parse_host_port(text, 4222) == parsed


#: nats-server 2.15.1's startup errors for these values (its [FTL] line), each checked.
GO_ERRORS = [
    ("a:b", 'strconv.Atoi: parsing "b": invalid syntax'),
    ("1.2.3.4:x", 'strconv.Atoi: parsing "x": invalid syntax'),
    ("host:", 'strconv.Atoi: parsing "": invalid syntax'),
    ("[::1", "address [::1: missing ']' in address"),
    ("::1", "address ::1: too many colons in address"),
    ("h:1:2", "address h:1:2: too many colons in address"),
]


@pytest.mark.parametrize(("text", "error"), GO_ERRORS)
def test_bad_values_fail_with_nats_servers_text(text, error):
    with pytest.raises(ValueError) as raised:
        parse_host_port(text, 4222)
    assert str(raised.value) == error
    with pytest.raises(ConfigError) as raised:
        Options(client_advertise=text).check()
    assert str(raised.value) == (
        f"Error setting server INFO with ClientAdvertise value of {text}, err={error}"
    )


def test_reload_check_uses_nats_servers_reload_text():
    with pytest.raises(ConfigError) as raised:
        check_client_advertise(Options(), Options(client_advertise="a:b"))
    assert str(raised.value) == (
        'invalid ClientAdvertise value of a:b, err=strconv.Atoi: parsing "b": invalid syntax'
    )
    check_client_advertise(Options(), Options(client_advertise="b:1"))  # fine
    check_client_advertise(Options(client_advertise="a"), Options())  # removed: fine


def test_flag_and_file(tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text(f'client_advertise: "{PUBLIC}"\n')
    assert load(conf).client_advertise == PUBLIC
    flags = cli.parse_args(["-c", str(conf), "--client_advertise", "flag.example:1"])
    assert cli.build_options(flags).client_advertise == "flag.example:1"
    # An empty flag leaves the file's value, as nats-server's flag merge does.
    flags = cli.parse_args(["-c", str(conf), "--client_advertise="])
    assert cli.build_options(flags).client_advertise == PUBLIC


@pytest.mark.interop
def test_check_refuses_what_nats_server_would_not_start_with(tmp_path):
    """nats-server's -t passes `a:b` and its start fails; trionats' -t fails already."""
    conf = tmp_path / "node.conf"
    conf.write_text('client_advertise: "a:b"\n')
    assert run_nats_server_check(conf).returncode == 0
    ours = run_trionats("-t", "-c", str(conf))
    assert ours.returncode == 1
    assert "Error setting server INFO with ClientAdvertise value of a:b" in ours.stderr
    conf.write_text(f'client_advertise: "{PUBLIC}"\n')
    assert run_nats_server_check(conf).returncode == 0
    assert run_trionats("-t", "-c", str(conf)).returncode == 0


@pytest.mark.interop
def test_nats_server_fails_to_start_with_the_same_text(tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text('client_advertise: "a:b"\n')
    with pytest.raises(RuntimeError) as raised:
        NatsServerProcess("-c", str(conf)).stop()
    assert (
        "Error setting server INFO with ClientAdvertise value of a:b, "
        'err=strconv.Atoi: parsing "b": invalid syntax'
    ) in str(raised.value)


# --- a single server --------------------------------------------------------------------------


async def test_info_host_and_port(server_factory):
    server = await server_factory(client_advertise=PUBLIC, http_host="127.0.0.1", http_port=-1)
    raw = await RawClient.connect(server.port)
    info = info_of(raw)
    assert (info["host"], info["port"]) == ("public.example", 4333)
    assert "connect_urls" not in info  # not clustered: no list, as nats-server
    varz = await get_json(server.monitor.port, "/varz")
    assert (varz["host"], varz["port"]) == ("public.example", 4333)
    assert "client_advertise" not in varz  # nats-server does not show the option itself
    await raw.aclose()


async def test_host_alone_takes_the_bound_port(server_factory):
    server = await server_factory(client_advertise="public.example")
    raw = await RawClient.connect(server.port)
    assert (info_of(raw)["host"], info_of(raw)["port"]) == ("public.example", server.port)
    assert server.own_connect_urls() == [f"public.example:{server.port}"]
    await raw.aclose()


# --- a trionats cluster -----------------------------------------------------------------------


async def test_cluster_peers_and_own_clients_get_the_advertised_url(nursery, raws):
    a = await start_node(nursery, server_name="A")
    b = await start_node(nursery, a.cluster.port, server_name="B", client_advertise=PUBLIC)
    await wait_for(lambda: routed(a, b))
    own_a = f"127.0.0.1:{a.port}"

    # B's route INFO carried its advertised URL, not its listener's address.
    await wait_for(lambda: PUBLIC in a.connect_urls)
    assert f"127.0.0.1:{b.port}" not in a.connect_urls
    of_a = await raws(a.port)
    info = info_of(of_a)
    assert info["connect_urls"] == [own_a, PUBLIC]
    assert (info["host"], info["port"]) == ("127.0.0.1", a.port)  # A advertises nothing

    of_b = await raws(b.port)
    info = info_of(of_b)
    assert (info["host"], info["port"]) == ("public.example", 4333)
    assert info["connect_urls"] == [PUBLIC, own_a]  # its own first, then its peers'
    a.shutdown()
    b.shutdown()


async def test_connected_clients_hear_it_when_the_peer_arrives(nursery, raws):
    """A protocol-1 client of A hears B's advertised URL in an async INFO, as nats-server."""
    a = await start_node(nursery, server_name="A")
    watcher = await raws(a.port, connect=True)
    b = await start_node(nursery, a.cluster.port, server_name="B", client_advertise=PUBLIC)
    await wait_for(lambda: routed(a, b))
    with trio.fail_after(TIMEOUT):
        while True:
            line = await watcher.read_line()
            if line.startswith(b"INFO") and PUBLIC in json.loads(line[5:]).get("connect_urls", []):
                break
    a.shutdown()
    b.shutdown()


# --- reload -------------------------------------------------------------------------------------


async def test_reload_changes_info_host_and_port_not_connect_urls(nursery, tmp_path, capsys, raws):
    conf = tmp_path / "node.conf"
    conf.write_text('client_advertise: "first.example:1111"\n')
    a = await start_node(nursery, server_name="A")
    flags = {"host": "127.0.0.1", "port": -1, "cluster": cluster_options(a.cluster.port)}
    options = attrs.evolve(load(conf), **flags)
    b = await nursery.start(Server(options, flag_overrides=flags).serve)
    await wait_for(lambda: routed(a, b))
    await wait_for(lambda: "first.example:1111" in a.connect_urls)

    conf.write_text('client_advertise: "second.example:2222"\n')
    assert b.reload()
    raw = await raws(b.port)
    info = info_of(raw)
    assert (info["host"], info["port"]) == ("second.example", 2222)
    # connect_urls keep the address the server started with, here and at its peers.
    assert info["connect_urls"][0] == "first.example:1111"
    assert "second.example:2222" not in a.connect_urls
    assert "Reload: client_advertise = second.example:2222" in capsys.readouterr().err

    conf.write_text('client_advertise: "a:b"\n')
    assert not b.reload()
    err = capsys.readouterr().err
    assert (
        "Failed to reload server configuration: invalid ClientAdvertise value of a:b, "
        'err=strconv.Atoi: parsing "b": invalid syntax'
    ) in err
    assert b.options.client_advertise == "second.example:2222"
    a.shutdown()
    b.shutdown()


# --- mixed clusters with nats-server ----------------------------------------------------------


def go_node(*args: str, cluster_port: int, routes: tuple[int, ...] = ()) -> NatsServerProcess:
    argv = ["-n", "G", "--cluster_name", "C", "--cluster", f"nats://127.0.0.1:{cluster_port}"]
    if routes:
        argv += ["--routes", ",".join(f"nats-route://127.0.0.1:{p}" for p in routes)]
    return NatsServerProcess(*argv, *args)


async def connect_urls_seen_by_a_new_client(port: int, wanted: str) -> dict:
    """Connect fresh clients until one's INFO lists `wanted` (the route may still be forming)."""
    with trio.fail_after(TIMEOUT):
        while True:
            raw = await RawClient.connect(port)
            info = info_of(raw)
            await raw.aclose()
            if wanted in info.get("connect_urls", []):
                return info
            await trio.sleep(0.05)


@pytest.mark.interop
async def test_nats_servers_clients_see_trionats_advertised_url(nursery):
    ours = await start_node(nursery, server_name="T", client_advertise=PUBLIC)
    with go_node(cluster_port=free_port(), routes=(ours.cluster.port,)) as go:
        await wait_for(lambda: len(ours.cluster.routes) == 1)
        info = await connect_urls_seen_by_a_new_client(go.port, PUBLIC)
        assert info["connect_urls"][-1] == PUBLIC  # nats-server lists its own first
        # Not the listener's address: only what trionats advertises.
        assert f"127.0.0.1:{ours.port}" not in info["connect_urls"]
    ours.shutdown()


@pytest.mark.interop
async def test_trionats_clients_see_nats_servers_advertised_url(nursery):
    go_port = free_port()
    with go_node("--client_advertise", "go.example:5555", cluster_port=go_port) as go:
        ours = await start_node(nursery, go_port, server_name="T")
        await wait_for(lambda: len(ours.cluster.routes) == 1)
        info = await connect_urls_seen_by_a_new_client(ours.port, "go.example:5555")
        assert info["connect_urls"] == [f"127.0.0.1:{ours.port}", "go.example:5555"]
        raw = await RawClient.connect(go.port)
        assert (info_of(raw)["host"], info_of(raw)["port"]) == ("go.example", 5555)
        await raw.aclose()
        ours.shutdown()
        await ours.wait_stopped()


@pytest.mark.interop
async def test_varz_host_and_port_match_nats_server(tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text(f'client_advertise: "{PUBLIC}"\n')
    bodies = []
    for kind in (NatsServerProcess, TrionatsProcess):
        http = free_port()
        with kind("-c", str(conf), "-m", str(http)) as process:
            varz = await get_json(http, "/varz")
            raw = await RawClient.connect(process.port)
            bodies.append((varz, info_of(raw)))
            await raw.aclose()
    (theirs, their_info), (ours, our_info) = bodies
    assert (theirs["host"], theirs["port"]) == ("public.example", 4333)
    assert (ours["host"], ours["port"]) == ("public.example", 4333)
    assert (their_info["host"], their_info["port"]) == (our_info["host"], our_info["port"])
    assert "client_advertise" not in theirs and "client_advertise" not in ours
