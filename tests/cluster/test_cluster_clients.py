"""A trionats cluster as its users run it: `trionats --cluster ... --routes ...` processes
and nats-py clients that request across servers and fail over to a peer they discovered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import nats
import pytest

from tests.helpers import TrionatsProcess, free_port
from tests.clients.test_nats_py import TIMEOUT, connect, run, sync


def node(name: str, cluster_port: int, *routes: int) -> TrionatsProcess:
    args = ["-n", name, "--cluster_name", "C", "--cluster", f"nats://127.0.0.1:{cluster_port}"]
    if routes:
        args += ["--routes", ",".join(f"nats-route://127.0.0.1:{p}" for p in routes)]
    return TrionatsProcess(*args)


@pytest.fixture
def two_nodes():
    port_a, port_b = free_port(), free_port()
    a = node("A", port_a, port_b)
    b = node("B", port_b, port_a)
    try:
        wait_until(lambda: "Route connection created" in a.log() and
                   "Route connection created" in b.log())  # fmt: skip
        yield a, b
    finally:
        b.stop()
        a.stop()


def wait_until(condition, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


async def until_routed(nc, subject: str) -> None:
    """Requests to `subject` until one is answered (interest crosses the route meanwhile)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            await nc.request(subject, b"probe", timeout=0.2)
            return
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            assert time.monotonic() < deadline, f"no responder on {subject} across the route"
            await asyncio.sleep(0.02)


def test_requests_are_answered_across_the_cluster(two_nodes):
    a, b = two_nodes

    async def main():
        responder = await connect(b.url)

        async def answer(msg):
            await msg.respond(b"re:" + msg.data)

        await responder.subscribe("svc.echo", cb=answer, queue="svc")
        await sync(responder)
        requester = await connect(a.url)
        await until_routed(requester, "svc.echo")
        replies = await asyncio.gather(
            *(requester.request("svc.echo", b"%d" % i, timeout=TIMEOUT) for i in range(50))
        )
        assert sorted(r.data for r in replies) == sorted(b"re:%d" % i for i in range(50))

    run(main())


def test_client_learns_the_peers_and_fails_over(two_nodes):
    a, b = two_nodes

    async def main():
        reconnected = asyncio.Event()

        async def on_reconnect():
            reconnected.set()

        nc = await connect(a.url, allow_reconnect=True, reconnect_time_wait=0.1,
                           reconnected_cb=on_reconnect)  # fmt: skip
        assert f"127.0.0.1:{b.port}" in nc._server_info.get("connect_urls", [])
        assert any(url.port == b.port for url in nc.servers)  # discovered from connect_urls
        sub = await nc.subscribe("fail.over")
        await sync(nc)
        a.stop()
        await asyncio.wait_for(reconnected.wait(), TIMEOUT)
        assert nc.connected_url.port == b.port
        publisher = await connect(b.url)
        await publisher.publish("fail.over", b"still here")
        await sync(publisher)
        msg = await sub.next_msg(timeout=TIMEOUT)
        assert msg.data == b"still here"

    run(main())


def test_sample_cluster_configs_form_a_full_mesh(tmp_path):
    """etc/cluster/node-{a,b,c}.conf, with free ports put in for the fixed ones."""
    sample = Path(__file__).parents[2] / "etc" / "cluster"
    ports = {str(p): str(free_port()) for p in (4222, 4223, 4224, 6222, 6223, 6224, 8222, 8223, 8224)}
    paths = []
    for name in "abc":
        text = (sample / f"node-{name}.conf").read_text()
        for fixed, free in ports.items():
            text = text.replace(f":{fixed}", f":{free}")
        path = tmp_path / f"node-{name}.conf"
        path.write_text(text)
        paths.append(path)
    nodes = [TrionatsProcess("-c", str(path), port=int(ports[str(4222 + i)]))
             for i, path in enumerate(paths)]  # fmt: skip
    try:
        wait_until(lambda: all(n.log().count("Route connection created") >= 2 for n in nodes))

        async def main():
            sub = await connect(nodes[2].url)
            s = await sub.subscribe("mesh.>")
            await sync(sub)
            pub = await connect(nodes[0].url)
            deadline = time.monotonic() + TIMEOUT
            while True:  # until node-c's interest has reached node-a
                await pub.publish("mesh.hello", b"hi")
                try:
                    msg = await s.next_msg(timeout=0.2)
                    break
                except nats.errors.TimeoutError:
                    assert time.monotonic() < deadline
            assert msg.subject == "mesh.hello"

        run(main())
    finally:
        for node in nodes:
            node.stop()
    for node in nodes:
        # Only dial errors while the others were starting; nothing else went wrong.
        errors = [line for line in node.log().splitlines() if "[ERR]" in line]
        assert all("Error trying to connect to route" in line for line in errors), errors


def test_route_dial_errors_are_reported_every_nth_attempt(tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text(
        f"connect_error_reports: 2\ncluster {{ listen: 127.0.0.1:{free_port()}, name: C,\n"
        f"  routes: [nats-route://127.0.0.1:{free_port()}] }}\n"  # nobody listens there
    )
    node = TrionatsProcess("-c", str(conf), "-D")
    try:
        wait_until(lambda: "(attempt 3)" in node.log())
    finally:
        node.stop()
    lines = [line for line in node.log().splitlines() if "Error trying to connect to route" in line]
    levels = {int(line.split("(attempt ")[1].split(")")[0]): line.split()[3] for line in lines}
    assert (levels[1], levels[2], levels[3]) == ("[ERR]", "[ERR]", "[DBG]")
