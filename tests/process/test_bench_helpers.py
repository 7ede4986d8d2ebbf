"""benchmarks/bench.py's bookkeeping: subject matching, expected bytes per subscriber, MSGs.

The realistic rows (`real`, `real-many`, `real-routed`) fail unless every subscriber receives
exactly the bytes computed in advance, so the computation is checked here against a hand
count and against a second, regex-based matcher.
"""

from __future__ import annotations

import importlib.util
import random
import re
import select
import socket
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.b", "a.b.c", False),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.*", "a", False),
        ("*.b.*", "x.b.y", True),
        ("a.>", "a.b", True),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        (">", "a", True),
        (">", "a.b.c", True),
        ("orders.*.17", "orders.eu.17", True),
        ("orders.*.17", "orders.eu.170", False),
        ("*.audit.>", "t0.audit.3", True),
        ("*.audit.>", "t0.audit", False),
    ],
)
def test_subject_matches(bench, pattern, subject, expected):
    assert bench.subject_matches(pattern, subject) is expected


class FixedRng:
    """Stands in for random.Random: subjects in the given order, every size the smallest."""

    def __init__(self, subjects):
        self.subjects = iter(subjects)

    def choice(self, _group):
        return next(self.subjects)

    def random(self):
        return 0.0  # log_uniform_size -> REAL_MIN_SIZE (16)


def test_expected_bytes_by_hand(bench):
    subs = [("a.b",), ("a.*", "a.b"), (">",), ("x",)]
    rng = FixedRng(["a.b", "a.c", "a.b"])
    work = bench.build_workload([["a.b", "a.c"]], subs, 3, 1, rng)
    pub = b"x" * 16 + b"\r\n"
    assert work.batches == (
        (b"PUB a.b 16\r\n" + pub + b"PUB a.c 16\r\n" + pub + b"PUB a.b 16\r\n" + pub,),
    )
    assert work.msgs == (3,)
    frame = len(b"MSG a.b 1 16\r\n") + 16 + 2  # 32: every subject and sid here is as long
    # a.b twice; a.* three times and a.b twice on the same connection (two MSGs each);
    # > three times; x never.
    assert work.out_msgs == (((2, 5, 3, 0),),)
    assert work.out_bytes == (((2 * frame, 5 * frame, 3 * frame, 0),),)
    # Connection 1's last message (a.b) comes once per matching sid, in the server's order.
    assert set(work.last_frames[0][0][1]) == {
        b"MSG a.b 1 16\r\n" + pub,
        b"MSG a.b 2 16\r\n" + pub,
    }
    assert work.last_frames[0][0][3] == ()
    assert work.expected([10]) == [20 * frame, 50 * frame, 30 * frame, 0]


def test_expected_bytes_several_publishers(bench):
    subs = [("p0.*",), ("*.x",)]
    # Publisher 0's cycle: p0.x then p0.y; publisher 1's: p1.x then p1.x.
    rng = FixedRng(["p0.x", "p0.y", "p1.x", "p1.x"])
    work = bench.build_workload([["p0.x", "p0.y"], ["p1.x"]], subs, 1, 2, rng)
    assert [len(cycle) for cycle in work.batches] == [2, 2]
    assert work.out_msgs == (((1, 1), (1, 0)), ((0, 1), (0, 1)))
    frame = len(b"MSG p0.x 1 16\r\n") + 16 + 2
    # Three batches of publisher 0 go round its cycle: p0.x, p0.y, p0.x.
    assert work.expected([3, 5]) == [3 * frame, 7 * frame]
    assert work.last_frames[0][1] == ((b"MSG p0.y 1 16\r\n" + b"x" * 16 + b"\r\n",), ())


def regex_for(pattern: str) -> re.Pattern:
    """A second matcher, independent of bench.subject_matches."""
    parts = [
        r"[^.]+" if tok == "*" else r"[^.]+(\.[^.]+)*" if tok == ">" else re.escape(tok)
        for tok in pattern.split(".")
    ]
    return re.compile(r"\.".join(parts) + r"\Z")


@pytest.mark.parametrize("publishers", [1, 50])
def test_real_workload_against_a_second_matcher(bench, publishers):
    work = bench.real_workload(publishers)
    assert len(work.batches) == publishers
    regexes = [[regex_for(p) for p in patterns] for patterns in work.subs]
    subjects = set()
    # A few batches of the first and the last publisher's cycle, parsed and matched anew.
    for p in {0, publishers - 1}:
        for k in (0, 1, len(work.batches[p]) - 1):
            batch = work.batches[p][k]
            nbytes = [0] * len(work.subs)
            pos, count = 0, 0
            while pos < len(batch):
                end = batch.index(b"\r\n", pos)
                verb, subject, size = batch[pos:end].decode().split()
                assert verb == "PUB"
                size = int(size)
                assert bench.REAL_MIN_SIZE <= size <= bench.REAL_MAX_SIZE
                assert batch[end + 2 : end + 2 + size] == b"x" * size
                subjects.add(subject)
                for i, patterns in enumerate(regexes):
                    for sid, rx in enumerate(patterns, 1):
                        if rx.match(subject):
                            nbytes[i] += len(f"MSG {subject} {sid} {size}\r\n") + size + 2
                pos, count = end + 4 + size, count + 1
            assert count == work.msgs[p]
            assert tuple(nbytes) == work.out_bytes[p][k]
    if publishers == 1:  # three batches cover (nearly) all of the 1,000 subjects
        assert len(subjects) > 0.9 * bench.REAL_SUBJECTS
    total = sum(len(cycle) * n for cycle, n in zip(work.batches, work.msgs))
    assert total >= bench.REAL_CYCLE_PUBS
    assert all(work.expected([1] * publishers))  # every subscriber gets something
    lines = [line for cycle in work.batches for b in cycle for line in b.split(b"\r\n")[::2]]
    if publishers == 1:
        # Most PUB lines of the cycle are distinct (subject and size), so the server's
        # caches of lines see them as they would see real traffic.
        assert len(set(lines)) > 0.7 * total
    else:  # each publisher has subjects of its own
        owners = {}
        for p, cycle in enumerate(work.batches):
            for line in cycle[0].split(b"\r\n")[::2]:
                if line:
                    assert owners.setdefault(line.split()[1], p) == p


class FakeSubscriber:
    def __init__(self, received: int, tail: bytes) -> None:
        self.received, self.tail = received, tail


def test_check_exact(bench):
    subs = [("a.b",), ("a.*",)]
    work = bench.build_workload([["a.b", "a.c"]], subs, 2, 1, FixedRng(["a.c", "a.b"]))
    last_b = b"MSG a.b 1 16\r\n" + b"x" * 16 + b"\r\n"
    want = work.expected([4])

    def check(got0, tail0, got1, tail1):
        subscribers = [FakeSubscriber(got0, tail0), FakeSubscriber(got1, tail1)]
        bench.check_exact(subscribers, work, want, [0])

    check(want[0], last_b, want[1], last_b)
    with pytest.raises(bench.BenchError, match="lost messages: subscriber 1"):
        check(want[0], last_b, want[1] - 32, last_b)
    with pytest.raises(bench.BenchError, match="extra data"):
        check(want[0] + 32, last_b, want[1], last_b)
    wrong_end = b"MSG a.c 1 16\r\n" + b"x" * 16 + b"\r\n"
    with pytest.raises(bench.BenchError, match="last frame"):
        check(want[0], wrong_end, want[1], last_b)
    check(want[0], last_b + b"PING\r\n", want[1], last_b)  # a server PING may come last


def test_log_uniform_size_bounds(bench):
    rng = random.Random(1)
    sizes = [bench.log_uniform_size(rng) for _ in range(20_000)]
    assert min(sizes) == bench.REAL_MIN_SIZE
    assert max(sizes) <= bench.REAL_MAX_SIZE
    assert 300 < sum(sizes) / len(sizes) < 550  # about 420 B: small ones are common


def test_msg_reader_splits_frames_and_answers_pings(bench):
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        reader = bench.MsgReader(a)
        stream = (
            b"PING\r\nMSG _INBOX.x.1 1 5\r\nhello\r\n"
            b"MSG svc.req 1 _INBOX.x.2 0\r\n\r\n+OK\r\nMSG a 2 3\r\nab"
        )
        frames = []
        for i in range(0, len(stream), 7):  # in pieces, split anywhere
            b.sendall(stream[i : i + 7])
            while True:
                got = reader.read()
                if not got and not select.select([a], [], [], 0.01)[0]:
                    break
                frames += got
        assert frames == [
            (b"_INBOX.x.1", b"1", b"", b"hello"),
            (b"svc.req", b"1", b"_INBOX.x.2", b""),
        ]
        assert b.recv(100) == b"PONG\r\n"
        b.sendall(b"c\r\n")
        assert select_readable(a)
        assert reader.read() == [(b"a", b"2", b"", b"abc")]
        b.sendall(b"-ERR 'Permissions Violation'\r\n")
        assert select_readable(a)
        with pytest.raises(bench.BenchError, match="server error"):
            reader.read()


def select_readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0.5)[0])
