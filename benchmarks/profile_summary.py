"""Summarise a py-spy raw profile of trionats: top self-time functions and the share by area.

    py-spy record --format raw -o prof.txt --pid PID    # or -- python -m trionats ...
    python benchmarks/profile_summary.py prof.txt [--top 15] [--root DIR]

Each sample counts once, for its innermost frame (self time). py-spy without `--native`
charges time in C (a `send` system call, `bytes.join`) to the Python line that called it, so
a line that calls `send`/`recv` goes to "socket I/O" rather than to its function's area.
The areas, first match wins:

- socket I/O: a trionats line calling send/recv, or trio's socket wrapper (`trio/_socket.py`)
- parser: `trionats/protocol/parser.py` (splitting the input into PUB/SUB/... events)
- dispatch/plan: per PUB, in `client.py`, `core/`, `auth/`: permission checks, the subject's
  delivery plan (sublist match, cached), the per-PUB loop over a parsed batch
- delivery loop: per delivered MSG, `delivery.py`, `outbound.py`, `protocol/encode.py`:
  MSG heads, queueing on each subscriber's outbound, byte accounting
- connection loops: `connection.py` (the reader/writer tasks around the above)
- trio scheduling: `trio/`, `outcome`, `contextlib` (checkpoints, task switches, epoll)
- other: everything else (start-up imports, logging, ...)
"""

from __future__ import annotations

import argparse
import collections
import linecache
import re
import sys
from pathlib import Path

FRAME = re.compile(r"(?P<func>.*) \((?P<file>.*):(?P<line>\d+)\)$")
IO_CALL = re.compile(r"\.(send|sendmsg|recv|recv_into|sendall)\(")
AREAS = (
    ("parser", ("trionats/protocol/parser.py",)),
    ("dispatch/plan", ("trionats/client.py", "trionats/core/", "trionats/auth/")),
    (
        "delivery loop",
        ("trionats/delivery.py", "trionats/outbound.py", "trionats/protocol/encode.py"),
    ),
    ("connection loops", ("trionats/connection.py",)),
    ("trio scheduling", ("trio/", "outcome/", "contextlib.py", "<attrs generated")),
)
AREA_NAMES = ("socket I/O", *(name for name, _ in AREAS), "other")


def area_of(frame: str, root: Path) -> str:
    m = FRAME.match(frame)
    if not m:
        return "other"
    path = m["file"]
    if path.endswith("trio/_socket.py"):
        return "socket I/O"
    if path.startswith("trionats/"):
        source = linecache.getline(str(root / path), int(m["line"]))
        if IO_CALL.search(source):
            return "socket I/O"
    for name, prefixes in AREAS:
        if any(p in path for p in prefixes):
            return name
    return "other"


def summarise(path: Path, root: Path, top: int) -> str:
    by_func: collections.Counter[str] = collections.Counter()
    by_area: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        leaf = stack.split(";")[-1] if stack else "(no Python frame)"
        by_func[re.sub(r":\d+\)$", ")", leaf)] += n
        by_area[area_of(leaf, root)] += n
    if not total:
        return "no samples\n"
    out = [f"{total} samples", "", "| self | function (file) |", "|---:|---|"]
    out += [f"| {n / total:5.1%} | `{func}` |" for func, n in by_func.most_common(top)]
    out += ["", "| share | area |", "|---:|---|"]
    out += [f"| {by_area[name] / total:5.1%} | {name} |" for name in AREA_NAMES]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("profile", type=Path, help="py-spy output in --format raw")
    p.add_argument("--top", type=int, default=15, help="functions to list (default 15)")
    p.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the checkout the profiled trionats ran from (for the source lines)",
    )
    args = p.parse_args(argv)
    sys.stdout.write(summarise(args.profile, args.root, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
