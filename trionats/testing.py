"""Real trionats servers and clusters for an application's tests, with chaos controls (a pytest plugin).

Installed with trionats, this module is a pytest plugin (entry point `pytest11`): a test asks
for `nats_server` or `nats_cluster` and gets servers running in this process, each in its
own thread with its own Trio run, so the test may be synchronous, asyncio (nats-py with
pytest-asyncio) or Trio alike, and nothing outlives it. Every control is a plain method that
returns when it is done:

    def test_survives_a_partition(nats_cluster):
        nats_cluster.partition(0, 1)        # the route between nodes 0 and 1 is cut
        ...                                 # (messages still flow through node 2's routes?)
        nats_cluster.heal(0, 1)
        nats_cluster.wait_meshed()

Options are NATS configuration keys, as in a file: `make_nats_server(max_payload=1024,
authorization={"user": "a", "password": "b"})`, or on a test with
`@pytest.mark.trionats(debug=True)`. They are written to a configuration file that the server
loads (`.config_file`), so `.reload(**changes)` works as a SIGHUP would.

Chaos controls act inside the servers, the way the failures they stand for look from there:
`kill` ends a server's tasks at once (its sockets close, nothing is flushed), `kill_route`
ends one route connection (its supervisor dials again), `partition` makes two servers refuse
each other's routes until `heal`, and `slow` stops both ends of a route reading for a while,
as a stalled peer would (TCP back-pressure, then slow consumer handling if it lasts).
"""

from __future__ import annotations

import contextlib
import json
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import trio

from .config.load import load
from .errors import Reason
from .server import Server

#: Seconds `start`, `stop` and the waits give up after.
TIMEOUT = 10.0


class NatsServer:
    """One trionats server in a thread of its own; its ports stay the same across restarts."""

    def __init__(self, config: dict | None = None, *, directory: str | Path | None = None,
                 name: str = "trionats") -> None:  # fmt: skip
        self._directory = Path(directory or tempfile.mkdtemp(prefix="trionats-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        # Port -1 is a random free port (0 would be the default, 4222, as in nats-server).
        self.config: dict = {"host": "127.0.0.1", "port": -1, "http_port": -1,
                             **(config or {}), "server_name": name}  # fmt: skip
        self.config_file = self._directory / f"{name}.conf"
        self.server: Server | None = None
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._kill_scope: trio.CancelScope | None = None
        self._failure: BaseException | None = None

    # --- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.config["port"]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.config['http_port']}"

    @property
    def options(self):
        """The running server's options (a frozen trionats Options)."""
        return self.server.options if self.server is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> NatsServer:
        """Start the server and return once it accepts clients."""
        if self.running:
            raise RuntimeError("the server is already running")
        self._write_config()
        options = load(self.config_file)
        ready = threading.Event()
        self._failure = None
        self._thread = threading.Thread(
            target=self._run, args=(options, ready), name=f"trionats {self.config['server_name']}",
            daemon=True,
        )  # fmt: skip
        self._thread.start()
        if not ready.wait(TIMEOUT):
            raise TimeoutError("trionats did not start")
        if self._failure is not None:
            self._thread.join(TIMEOUT)
            raise self._failure
        # Later starts use the ports this one got, so that clients and peers find it again.
        server = self.server
        self.config["port"] = server.port
        if server.monitor is not None:
            self.config["http_port"] = int(server.monitor_urls()[0].rsplit(":", 1)[1])
        self._write_config()
        return self

    def stop(self) -> None:
        """Shut down as on SIGTERM: clients are flushed and closed."""
        if self.running:
            self._call(self.server.shutdown)
            self._join()

    def kill(self) -> None:
        """End every task at once, as a killed process: nothing is flushed."""
        if self.running:
            self._call(self._kill_scope.cancel)
            self._join()

    def restart(self) -> NatsServer:
        """Stop (if running) and start again on the same ports."""
        self.stop()
        return self.start()

    def reload(self, **changes: Any) -> None:
        """Change configuration keys and reload them as SIGHUP does (`None` removes a key)."""
        for key, value in changes.items():
            if value is None:
                self.config.pop(key, None)
            else:
                self.config[key] = value
        self._write_config()
        if not self.call(self.server.reload):
            raise RuntimeError(f"reload refused; see the server's log ({changes})")

    def call(self, function: Callable, *args):
        """Run `function(*args)` synchronously inside the server's Trio run; its result."""
        return self._call(function, *args)

    def _call(self, function: Callable, *args):
        # Not trio.from_thread: the caller may be in a Trio run of its own (a Trio test).
        done = threading.Event()
        outcome: list = []

        def job() -> None:
            try:
                outcome.append((True, function(*args)))
            except BaseException as exc:  # handed to the caller, never to the server's run
                outcome.append((False, exc))
            finally:
                done.set()

        self._token.run_sync_soon(job)
        if not done.wait(TIMEOUT):
            raise TimeoutError(f"the server did not run {function!r}")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _join(self) -> None:
        self._thread.join(TIMEOUT)
        if self._thread.is_alive():
            raise TimeoutError("trionats did not stop")
        self.server = None

    def _run(self, options, ready: threading.Event) -> None:
        try:
            trio.run(self._serve, options, ready)
        except BaseException as exc:  # reported by start(), or by the next control
            self._failure = exc
            ready.set()

    async def _serve(self, options, ready: threading.Event) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._kill_scope:
            async with trio.open_nursery() as nursery:
                self.server = await nursery.start(Server(options).serve)
                ready.set()

    def _write_config(self) -> None:
        # JSON is valid NATS configuration.
        self.config_file.write_text(json.dumps(self.config, indent=2))

    def __enter__(self) -> NatsServer:
        return self.start() if not self.running else self

    def __exit__(self, *exc_info) -> None:
        self.kill()


class NatsCluster:
    """`size` trionats servers forming a full mesh of routes; nodes are numbered from 0."""

    def __init__(self, size: int = 3, config: dict | None = None, *,
                 directory: str | Path | None = None, name: str = "trionats") -> None:  # fmt: skip
        directory = Path(directory or tempfile.mkdtemp(prefix="trionats-cluster-"))
        config = dict(config or {})
        # Server names must differ within a cluster: a given one is the nodes' prefix.
        prefix = config.pop("server_name", name)
        cluster_ports = _free_ports(size)
        routes = [f"nats-route://127.0.0.1:{port}" for port in cluster_ports]
        self.servers: list[NatsServer] = []
        for index, port in enumerate(cluster_ports):
            node = dict(config)
            cluster = {"name": name, "listen": f"127.0.0.1:{port}", "routes": routes,
                       **node.pop("cluster", {})}  # fmt: skip
            node["cluster"] = cluster
            self.servers.append(NatsServer(node, directory=directory, name=f"{prefix}-{index}"))

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    @property
    def names(self) -> list[str]:
        return [server.config["server_name"] for server in self.servers]

    def start(self, *, wait: bool = True) -> NatsCluster:
        for server in self.servers:
            server.start()
        if wait:
            self.wait_meshed()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def kill(self, i: int) -> None:
        """Node i dies at once (its peers see its routes drop)."""
        self.servers[i].kill()

    def restart(self, i: int, *, wait: bool = True) -> None:
        """Node i starts again (after `kill` or not) on the same ports, and rejoins."""
        self.servers[i].restart()
        if wait:
            self.wait_meshed()

    def partition(self, i: int, j: int) -> None:
        """Cut the route between nodes i and j; neither accepts one from the other until
        `heal(i, j)`. Other routes are untouched."""
        for a, b in ((i, j), (j, i)):
            self._on(a, _partition, self.names[b])

    def heal(self, i: int, j: int) -> None:
        """Let nodes i and j route to each other again (they re-dial within about a second)."""
        for a, b in ((i, j), (j, i)):
            self._on(a, _heal, self.names[b])

    def kill_route(self, i: int, j: int) -> None:
        """End the route between nodes i and j (as a task dying): the dialer re-dials."""
        self._on(i, _end_route, self.names[j])

    def slow(self, i: int, j: int, seconds: float) -> None:
        """Both ends of the route between i and j stop reading for `seconds` (a stall)."""
        for a, b in ((i, j), (j, i)):
            self._on(a, _stall_route, self.names[b], seconds)

    def routes(self, i: int) -> set[str]:
        """Names of the nodes node i has a route to."""
        return self._on(i, lambda cluster: {r.remote_name for r in cluster.routes.values()
                                            if r.registered})  # fmt: skip

    def meshed(self) -> bool:
        """Every running node has a route to every other running node."""
        up = [i for i, server in enumerate(self.servers) if server.running]
        for i in up:
            others = {self.names[j] for j in up if j != i}
            partitioned = self._cluster_of(i).partitioned
            if self.routes(i) != others - partitioned:
                return False
        return True

    def has_interest(self, i: int, subject: str | bytes) -> bool:
        """Whether a message published on node i to `subject` has anyone to go to, on node i
        or across its routes (interest travels to peers asynchronously: wait for it)."""
        subject = subject.encode() if isinstance(subject, str) else subject

        def look(cluster) -> bool:
            result = cluster.server.sublist.match(subject)
            return bool(result.psubs or result.qsubs)

        return self._on(i, look)

    def wait_meshed(self, timeout: float = TIMEOUT) -> None:
        """Block until `meshed()` (routes formed, as far as partitions allow)."""
        _wait(self.meshed, timeout, lambda: f"no full mesh: {self._describe()}")

    async def meshed_async(self, timeout: float = TIMEOUT) -> None:
        """`wait_meshed` for async tests (asyncio or Trio): waits without blocking the loop."""
        await _wait_async(self.meshed, timeout, lambda: f"no full mesh: {self._describe()}")

    def wait_interest(self, i: int, subject: str | bytes, timeout: float = TIMEOUT) -> None:
        """Block until `has_interest(i, subject)`."""
        _wait(lambda: self.has_interest(i, subject), timeout,
              lambda: f"no interest in {subject!r} on node {i}")  # fmt: skip

    async def interest_async(self, i: int, subject: str | bytes, timeout: float = TIMEOUT):
        """`wait_interest` for async tests (asyncio or Trio)."""
        await _wait_async(lambda: self.has_interest(i, subject), timeout,
                          lambda: f"no interest in {subject!r} on node {i}")  # fmt: skip

    def _describe(self) -> str:
        return ", ".join(
            f"{name}: {sorted(self.routes(i)) if server.running else 'down'}"
            for i, (name, server) in enumerate(zip(self.names, self.servers))
        )

    def _cluster_of(self, i: int):
        return self.servers[i].server.cluster

    def _on(self, i: int, function: Callable, *args):
        server = self.servers[i]
        return server.call(lambda: function(server.server.cluster, *args))

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        for server in self.servers:
            server.kill()


def _wait(predicate: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout} s, {describe()}")
        time.sleep(0.005)


async def _wait_async(predicate: Callable[[], bool], timeout: float,
                      describe: Callable[[], str]) -> None:  # fmt: skip
    import sniffio  # (a dependency of trio)

    library = sniffio.current_async_library()
    sleep = trio.sleep if library == "trio" else __import__(library).sleep
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"after {timeout} s, {describe()}")
        await sleep(0.005)


def _routes_to(cluster, name: str) -> list:
    return [route for route in cluster.connections() if route.remote_name == name]


def _partition(cluster, name: str) -> None:
    cluster.partitioned.add(name)
    for route in _routes_to(cluster, name):
        route.close(Reason.READ_ERROR, flush=False)


def _heal(cluster, name: str) -> None:
    cluster.partitioned.discard(name)


def _end_route(cluster, name: str) -> None:
    routes = _routes_to(cluster, name)
    if not routes:
        raise LookupError(f"no route to {name!r}")
    for route in routes:
        route.close(Reason.READ_ERROR, flush=False)


def _stall_route(cluster, name: str, seconds: float) -> None:
    for route in _routes_to(cluster, name):
        route.stalled_until = trio.current_time() + seconds


def _free_ports(count: int) -> list[int]:
    """Ports free now on 127.0.0.1 (bound and released at once: a cluster must know its
    route ports before its nodes start, to list them all)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


# --- the pytest plugin -------------------------------------------------------------------

try:
    import pytest
except ImportError:  # the classes above work without pytest
    pytest = None

if pytest is not None:

    def pytest_configure(config) -> None:
        config.addinivalue_line(
            "markers", "trionats(**config): NATS configuration keys for nats_server / nats_cluster"
        )

    def _marked_config(request) -> dict:
        marker = request.node.get_closest_marker("trionats")
        return dict(marker.kwargs) if marker is not None else {}

    @pytest.fixture
    def make_nats_server(tmp_path):
        """A factory: `make_nats_server(**config)` starts a server; all are killed after."""
        started: list[NatsServer] = []

        def make(**config) -> NatsServer:
            name = config.pop("server_name", f"trionats-{len(started)}")  # (else numbered)
            server = NatsServer(config, directory=tmp_path, name=name)
            started.append(server)
            return server.start()

        yield make
        for server in started:
            server.kill()

    @pytest.fixture
    def make_nats_cluster(tmp_path):
        """A factory: `make_nats_cluster(size=3, **config)` starts a meshed cluster."""
        started: list[NatsCluster] = []

        def make(size: int = 3, **config) -> NatsCluster:
            cluster = NatsCluster(size, config, directory=tmp_path / f"cluster-{len(started)}")
            started.append(cluster)
            return cluster.start()

        yield make
        for cluster in started:
            for server in cluster.servers:
                server.kill()

    @pytest.fixture
    def nats_server(request, make_nats_server) -> NatsServer:
        """A running trionats server (configured by `@pytest.mark.trionats(**config)`)."""
        return make_nats_server(**_marked_config(request))

    @pytest.fixture
    def nats_cluster(request, make_nats_cluster) -> NatsCluster:
        """A running, meshed three-node trionats cluster (`@pytest.mark.trionats(size=5, ...)`
        for another size or configuration)."""
        config = _marked_config(request)
        return make_nats_cluster(config.pop("size", 3), **config)
