"""In-process micro-benchmark of the parser alone: µs per message of `Parser.feed`.

The server rows of bench.py are noisy on a shared machine; this times only the parser over
pre-built streams shaped like those rows, fed in READ_SIZE chunks (as the reader does), with
a fresh parser per pass (its caches start cold, as on a new connection):

  real         1,000 subjects, payloads 16 B - 2 KiB drawn per message (bench.py's `real`)
  1to1         one line repeated (`PUB bench 16`): runs
  1to1-mixed   one subject, sizes 8-24 B in turn: spans
  routed       `RMSG $G bench 16` repeated, read by a RouteParser: runs
  real-routed  `real` as RMSG lines, read by a RouteParser

    python benchmarks/parser_micro.py [--repeat 7] [--rows real,1to1] [--compare main]

`--compare REV` also loads trionats/protocol/parser.py as of git revision REV and times both
in turns, in one process, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trionats import defaults
from trionats.protocol.parser import Parser, RouteParser

# bench.py's `real` subjects: orders.<region>.<n> (8 x 100) and events.<n> (200).
REGIONS = ("us", "eu", "ap", "sa", "af", "me", "ca", "au")
SUBJECTS = [f"orders.{r}.{n}" for r in REGIONS for n in range(100)]
SUBJECTS += [f"events.{n}" for n in range(200)]
TARGET_BYTES = 16 << 20  # about this much per stream


def _real(op: bytes, rng: random.Random) -> tuple[bytes, int]:
    frames, total, count = [], 0, 0
    while total < TARGET_BYTES:
        size = round(16 * (2048 / 16) ** rng.random())
        frame = b"%s %s %d\r\n%s\r\n" % (op, rng.choice(SUBJECTS).encode(), size, b"x" * size)
        frames.append(frame)
        total += len(frame)
        count += 1
    return b"".join(frames), count


def _repeat(lines: list[bytes]) -> tuple[bytes, int]:
    frames, total, count = [], 0, 0
    while total < TARGET_BYTES // 8:
        for line in lines:
            frames.append(line)
            total += len(line)
            count += 1
    return b"".join(frames), count


def parser_at(rev: str):
    """The parser module as of git revision `rev` (imported beside the current one)."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{rev}:trionats/protocol/parser.py"],
        cwd=root, check=True, capture_output=True,
    ).stdout
    path = Path(f"/tmp/trionats_parser_{rev.replace('/', '_')}.py")
    path.write_bytes(source)
    spec = importlib.util.spec_from_file_location("trionats.protocol._parser_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def streams(parser=Parser, route_parser=RouteParser) -> dict[str, tuple[object, bytes, int]]:
    rng = random.Random(13)
    pub = lambda: parser(batch=True)
    route = route_parser
    return {
        "real": (pub, *_real(b"PUB", rng)),
        "1to1": (pub, *_repeat([b"PUB bench 16\r\n" + b"x" * 16 + b"\r\n"])),
        "1to1-mixed": (
            pub,
            *_repeat([b"PUB bench %d\r\n%s\r\n" % (n, b"x" * n) for n in (8, 12, 16, 20, 24)]),
        ),
        "routed": (route, *_repeat([b"RMSG $G bench 16\r\n" + b"x" * 16 + b"\r\n"])),
        "real-routed": (route, *_real(b"RMSG $G", rng)),
    }


def one_pass(make, data: bytes) -> tuple[float, int]:
    parser = make()
    feed = parser.feed
    step = defaults.READ_SIZE if hasattr(defaults, "READ_SIZE") else 65536
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    events = 0
    start = time.process_time()  # CPU time: waiting for a shared CPU does not count
    for chunk in chunks:
        for _ in feed(chunk):
            events += 1
    return time.process_time() - start, events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rows", default="real,1to1,1to1-mixed,routed,real-routed")
    ap.add_argument("--compare", metavar="REV", help="also time the parser of this git revision")
    args = ap.parse_args()
    versions = {"current": streams()}
    if args.compare:
        old = parser_at(args.compare)
        versions = {args.compare: streams(old.Parser, old.RouteParser), **versions}
    for name in args.rows.split(","):
        best = {version: float("inf") for version in versions}
        for _ in range(args.repeat):
            for version, rows in versions.items():
                make, data, count = rows[name]
                best[version] = min(best[version], one_pass(make, data)[0])
        figures = "  ".join(f"{v} {t / count * 1e6:6.3f}" for v, t in best.items())
        ratio = ""
        if len(best) == 2:
            before, after = best.values()
            ratio = f"  ({before / after:.2f}x)"
        print(f"{name:12s} {count:6d} msgs  µs/msg: {figures}{ratio}  (best of {args.repeat})")


if __name__ == "__main__":
    main()
