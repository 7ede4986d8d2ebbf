"""Lame duck mode: listeners close, clients hear `"ldm": true`, are closed, the server exits."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import trio

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess, free_port, start_trionats
from trionats.errors import ConfigError
from trionats.options import Options, WebsocketOptions

#: Seconds: a short lame duck, as nats-server's own tests use (options built in code skip
#: the configuration file's 30 s minimum).
DURATION = 1.0
GRACE = 0.2


async def connected(port: int, protocol: int) -> RawClient:
    client = await RawClient.connect(port)
    await client.send(f'CONNECT {{"verbose":false,"protocol":{protocol}}}\r\n'.encode())
    before = await client.ping_pong()
    assert before == b""
    if protocol >= 1:  # the first PONG is followed by the connect_info INFO
        assert b'"connect_info":true' in await client.read_line()
    return client


async def test_clients_are_told_then_closed_and_the_server_exits(nursery):
    server = await start_trionats(
        nursery, lame_duck_duration=DURATION, lame_duck_grace_period=GRACE
    )
    modern = await connected(server.port, 1)
    legacy = await connected(server.port, 0)
    started = trio.current_time()
    server.enter_lame_duck()
    line = await modern.read_line()
    info = json.loads(line[5:])
    assert info["ldm"] is True and "nonce" not in info and info["port"] == server.port
    with pytest.raises(OSError):  # no new clients
        await trio.open_tcp_stream("127.0.0.1", server.port)
    await legacy.expect_nothing(GRACE / 2)  # protocol 0 clients get no async INFO
    assert await modern.expect_closed() == b""
    assert await legacy.expect_closed() == b""
    with trio.fail_after(5):
        await server.wait_stopped()
    elapsed = trio.current_time() - started
    assert GRACE <= elapsed < DURATION + 1
    server.enter_lame_duck()  # idempotent, and nothing once stopped
    await modern.aclose()
    await legacy.aclose()


async def test_closing_is_spread_over_the_duration(nursery):
    server = await start_trionats(nursery, lame_duck_duration=1.2, lame_duck_grace_period=0.1)
    clients = [await connected(server.port, 1) for _ in range(4)]
    server.enter_lame_duck()
    closed_at = []
    for client in clients:
        await client.read_line()  # the ldm INFO

    async def watch(client):
        await client.expect_closed()
        closed_at.append(trio.current_time())

    async with trio.open_nursery() as watchers:
        for client in clients:
            watchers.start_soon(watch, client)
    # Four clients over 1.1 s: at least interval/2 (0.1375 s) apart, so not all at once.
    assert max(closed_at) - min(closed_at) >= 3 * 0.13
    for client in clients:
        await client.aclose()


async def test_without_clients_it_exits_at_once(nursery):
    server = await start_trionats(nursery)  # default 2 minute duration
    server.enter_lame_duck()
    with trio.fail_after(2):
        await server.wait_stopped()


async def test_websocket_listener_closes_and_its_clients_hear_it(nursery):
    from tests.clients.test_websocket import RawWebSocket

    websocket = WebsocketOptions(host="127.0.0.1", port=-1, no_tls=True)
    server = await start_trionats(
        nursery, websocket=websocket, lame_duck_duration=DURATION, lame_duck_grace_period=GRACE
    )
    client = await RawWebSocket.connect(server.websocket.port)
    await client.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
    await client.expect(b"PONG\r\n")
    await client.read_line()  # connect_info
    server.enter_lame_duck()
    info = json.loads((await client.read_line())[5:])
    assert info["ldm"] is True and info["port"] == server.websocket.port
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", server.websocket.port)
    await client.read_until_closed()
    assert client.closed_with == b"\x03\xe9Server Shutdown"  # 1001, going away
    await client.aclose()


def test_grace_period_must_be_below_the_duration():
    with pytest.raises(ConfigError) as caught:
        Options(lame_duck_duration=30.0, lame_duck_grace_period=30.0).check()
    assert str(caught.value) == (
        "lame duck grace period (30s) should be strictly lower than lame duck duration (30s)"
    )


# --- the command: SIGUSR2 and --signal ldm, with nats-py ----------------------------------------


def ldm_config(extra: str = "") -> str:
    path = Path(tempfile.mkstemp(prefix="ldm-", suffix=".conf")[1])
    path.write_text(f'lame_duck_duration: "30s"\nlame_duck_grace_period: "100ms"\n{extra}')
    return str(path)


def wait_exit(process, timeout: float = 10.0) -> int:
    return process.process.wait(timeout)


@pytest.mark.parametrize("how", ["signal-flag", "pid-file"])
def test_signal_ldm_with_nats_py(how, tmp_path):
    import nats

    pid_file = tmp_path / "trionats.pid"
    server = TrionatsProcess("-c", ldm_config(), "-P", str(pid_file))
    try:

        async def main():
            events = []

            async def lame_duck():
                events.append("lame duck")

            async def disconnected():
                events.append("disconnected")

            nc = await nats.connect(
                server.url, allow_reconnect=False, lame_duck_mode_cb=lame_duck,
                disconnected_cb=disconnected,
            )  # fmt: skip
            await nc.flush()
            target = str(server.process.pid) if how == "signal-flag" else str(pid_file)
            result = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "trionats", "--signal", f"ldm={target}"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            deadline = time.monotonic() + 10
            while "disconnected" not in events and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await nc.close()
            return events

        assert asyncio.run(main()) == ["lame duck", "disconnected"]
        assert wait_exit(server) == 0
        lines = [line.split("] ", 2)[-1] for line in server.log().splitlines()]
        expected = [
            'Trapped "user defined signal 2" signal',
            "Entering lame duck mode, stop accepting new clients",
            "Closing existing clients",
            "Initiating Shutdown...",
            "Server Exiting..",
        ]
        assert [line for line in lines if line in expected] == expected
    finally:
        server.stop()


def test_sigterm_during_lame_duck_is_ignored_like_nats_server():
    import signal

    server = TrionatsProcess("-c", ldm_config())
    try:
        sock = __import__("socket").create_connection(("127.0.0.1", server.port))
        sock.recv(4096)
        sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        server.process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 5
        while "Entering lame duck mode" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        server.process.send_signal(signal.SIGTERM)
        assert wait_exit(server) == 0  # the lame duck finished the job
        assert server.log().count("Entering lame duck mode") == 1
        sock.close()
    finally:
        server.stop()


@pytest.mark.interop
def test_client_view_matches_nats_server():
    """What a protocol-1 client sees: its INFO with "ldm": true, then the close; both exit 0."""
    import signal
    import socket

    def observe(process) -> tuple[dict, bytes]:
        sock = socket.create_connection(("127.0.0.1", process.port))
        sock.settimeout(10)
        data = sock.recv(65536)
        sock.sendall(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
        while data.count(b"\r\n") < 3:  # INFO, PONG, connect_info INFO
            data += sock.recv(65536)
        process.process.send_signal(signal.SIGUSR2)
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
        sock.close()
        line, _, after = rest.partition(b"\r\n")
        return json.loads(line[5:]), after

    config = ldm_config()
    with TrionatsProcess("-c", config) as process:
        ours = observe(process)
        assert wait_exit(process) == 0
    with NatsServerProcess("-c", config, port=free_port()) as process:
        theirs = observe(process)
        assert wait_exit(process) == 0
    assert ours[0]["ldm"] is theirs[0]["ldm"] is True
    assert ours[1] == theirs[1] == b""
    # nats-server's extras in every INFO: git_commit, api_lvl, xkey
    assert set(ours[0]) == set(theirs[0]) - {"git_commit", "api_lvl", "xkey"}


# --- a rolling restart of a cluster: clients move, subscriptions survive ----------------------


def cluster_configs(count: int = 3) -> tuple[list[int], list[str]]:
    """Client ports and config files of a `count`-node cluster on 127.0.0.1."""
    ports = [free_port() for _ in range(count)]
    route_ports = [free_port() for _ in range(count)]
    routes = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in route_ports)
    configs = []
    for route_port in route_ports:
        path = Path(tempfile.mkstemp(prefix="ldm-cluster-", suffix=".conf")[1])
        path.write_text(
            'lame_duck_duration: "30s"\nlame_duck_grace_period: "100ms"\n'
            f'cluster {{ name: roll, listen: "127.0.0.1:{route_port}", routes: [{routes}] }}\n'
        )
        configs.append(str(path))
    return ports, configs


@pytest.mark.slow
def test_rolling_restart_moves_nats_py_clients_without_losing_subscriptions():
    import signal

    import nats

    ports, configs = cluster_configs()
    nodes = [TrionatsProcess("-c", config, "-n", f"n{i}", port=port)
             for i, (port, config) in enumerate(zip(ports, configs))]  # fmt: skip
    urls = [node.url for node in nodes]

    async def main():
        received: list[bytes] = []
        events: list[str] = []

        async def on_msg(msg):
            received.append(msg.data)

        async def lame_duck():
            events.append("lame duck")

        async def reconnected():
            events.append("reconnected")

        subscriber = await nats.connect(
            servers=urls, dont_randomize=True, reconnect_time_wait=0.1,
            max_reconnect_attempts=-1, lame_duck_mode_cb=lame_duck, reconnected_cb=reconnected,
        )  # fmt: skip
        await subscriber.subscribe("roll.>", cb=on_msg)
        await subscriber.flush()

        async def delivered(publisher, tag: str) -> None:
            """Publish probes until one arrives (interest crosses the routes), then a batch."""
            deadline = time.monotonic() + 15
            while f"{tag}-probe".encode() not in received:
                assert time.monotonic() < deadline, (tag, events, received[-3:])
                await publisher.publish("roll.probe", f"{tag}-probe".encode())
                await publisher.flush()
                await asyncio.sleep(0.1)
            batch = [f"{tag}-{i}".encode() for i in range(20)]
            for data in batch:
                await publisher.publish("roll.batch", data)
            await publisher.flush()
            deadline = time.monotonic() + 10
            while not set(batch) <= set(received):
                assert time.monotonic() < deadline, (tag, events)
                await asyncio.sleep(0.05)

        # The subscriber is on n0; the publisher on n2, the last node to restart.
        publisher = await nats.connect(servers=[urls[2]], allow_reconnect=False)
        await delivered(publisher, "start")
        # A raw client on n0 sees the lame duck INFO: the other nodes' URLs only.
        reader, writer = await asyncio.open_connection("127.0.0.1", ports[0])
        await reader.readline()
        writer.write(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
        for index in (0, 1):
            nodes[index].process.send_signal(signal.SIGUSR2)
            if index == 0:
                while b'"ldm":true' not in (line := await asyncio.wait_for(reader.readline(), 5)):
                    pass
                urls_told = json.loads(line[5:])["connect_urls"]
                assert sorted(urls_told) == sorted(f"127.0.0.1:{port}" for port in ports[1:])
                writer.close()
            exit_code = await asyncio.to_thread(nodes[index].process.wait, 20)
            assert exit_code == 0, nodes[index].log()
            nodes[index].stop()
            await delivered(publisher, f"after-n{index}")
            # Back with the same configuration, as a rolling restart does.
            nodes[index] = TrionatsProcess(
                "-c", configs[index], "-n", f"n{index}", port=ports[index]
            )
        await subscriber.close()
        await publisher.close()
        return events

    try:
        events = asyncio.run(main())
        assert events.count("lame duck") == 2 and events.count("reconnected") == 2
    finally:
        for node in nodes:
            node.stop()


async def test_shutdown_during_lame_duck_is_prompt(nursery):
    server = await start_trionats(nursery, lame_duck_duration=60.0, lame_duck_grace_period=30.0)
    client = await connected(server.port, 1)
    server.enter_lame_duck()
    await client.read_line()  # the ldm INFO; closing would start in 30 s
    started = trio.current_time()
    server.shutdown()  # SIGINT, say
    with trio.fail_after(3):
        await server.wait_stopped()
    assert trio.current_time() - started < 2
    await client.aclose()
