"""Memory per idle connection and per subscription: trionats against nats-server, same run.

Each server runs alone, pinned to one CPU (nats-server with GOMAXPROCS=1). The script reads
the server's resident memory (RSS, from /proc) before and after opening N idle client
connections (each sends CONNECT + PING and waits for PONG), then before and after one client
creates M subscriptions on distinct subjects, and reports the difference divided by N or M.

    python benchmarks/memory.py                      # 10,000 connections, 1,000,000 subs
    python benchmarks/memory.py --connections 2000 --subscriptions 200000
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def wait_for_pong(sock: socket.socket, timeout: float = 60.0) -> None:
    sock.settimeout(timeout)
    data = b""
    while b"PONG\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"server closed the connection: {data[-200:]!r}")
        data += chunk


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.recv(4096)  # INFO
    return sock


def settle(pid: int, seconds: float = 1.0) -> int:
    """RSS after a short pause (lets freed memory and lazy work settle)."""
    time.sleep(seconds)
    return rss_bytes(pid)


def measure(name: str, argv: list[str], connections: int, subscriptions: int, cpu: int) -> dict:
    port = free_port()
    env = dict(os.environ, GOMAXPROCS="1")
    process = subprocess.Popen(
        ["taskset", "-c", str(cpu), *argv, "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                probe = connect(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        probe.sendall(CONNECT)
        wait_for_pong(probe)
        base = settle(process.pid)

        sockets = []
        for _ in range(connections):
            sock = connect(port)
            sock.sendall(CONNECT)
            sockets.append(sock)
        for sock in sockets:
            wait_for_pong(sock)
        with_connections = settle(process.pid)
        for sock in sockets:
            sock.close()
        sockets.clear()
        after_close = settle(process.pid, 2.0)

        subscriber = connect(port)
        subscriber.sendall(CONNECT)
        wait_for_pong(subscriber)
        before_subs = settle(process.pid)
        batch = []
        for i in range(subscriptions):
            batch.append(b"SUB bench.%d.x %d\r\n" % (i, i))
            if len(batch) == 10000:
                subscriber.sendall(b"".join(batch))
                batch.clear()
        subscriber.sendall(b"".join(batch) + b"PING\r\n")
        wait_for_pong(subscriber, timeout=600)
        with_subs = settle(process.pid)
        subscriber.close()
        probe.close()
        return {
            "server": name,
            "rss_idle": base,
            "per_connection": (with_connections - base) / max(connections, 1),
            "released_after_close": with_connections - after_close,
            "per_subscription": (with_subs - before_subs) / max(subscriptions, 1),
        }
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=1_000_000)
    parser.add_argument("--cpu", type=int, default=0, help="CPU the servers are pinned to")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.connections + 100
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    bindir = Path(sys.executable).parent
    servers = {
        "nats-server": [str(bindir / "nats-server")],
        "trionats": [sys.executable, "-m", "trionats"],
    }
    results = {
        name: measure(name, argv, args.connections, args.subscriptions, args.cpu)
        for name, argv in servers.items()
    }
    go, py = results["nats-server"], results["trionats"]
    print(f"{args.connections:,} idle connections, {args.subscriptions:,} subscriptions")
    print(f"{'':28}{'nats-server':>14}{'trionats':>14}{'ratio':>9}")
    for key, label in (
        ("rss_idle", "RSS idle (bytes)"),
        ("per_connection", "per idle connection (B)"),
        ("per_subscription", "per subscription (B)"),
    ):
        ratio = py[key] / go[key] if go[key] else float("nan")
        print(f"{label:28}{go[key]:>14,.0f}{py[key]:>14,.0f}{ratio:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
