"""The long-run fuzzer's command line: `python -m fuzz PROTOCOL --inputs N --seed S`.

Input i of a run is generated from `random.Random(f"{seed}:{i}")`, so `--seed S --start i
--inputs 1` generates it again; every failing input is also saved as JSON (its reads in
base64) and `--replay FILE` feeds it to a fresh server. Leaks are checked after every input,
the canary every `--check-every` inputs. See docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
import traceback
from pathlib import Path

import trio

from .harness import Failure, open_fuzz_server
from .inputs import PROTOCOLS, generate

#: Failures after which the run cannot go on (the server's state is no longer clean).
FATAL = frozenset({"leak", "canary", "hang", "server"})


def _save(directory: Path, protocol: str, seed: int, index: int, chunks, failure: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{protocol}-{seed}-{index}.json"
    record = {
        "protocol": protocol,
        "seed": seed,
        "index": index,
        "chunks": [base64.b64encode(chunk).decode() for chunk in chunks],
        "failure": failure,
    }
    path.write_text(json.dumps(record, indent=1))
    return path


def _say(text: str) -> None:
    print(text, flush=True)


async def run(args) -> int:
    protocol, seed = args.protocol, args.seed
    failures = 0
    seen: dict[str, int] = {}  # failure signature -> how many inputs had it
    index = args.start
    chunks: list[bytes] = []
    started = time.monotonic()
    last_report, last_count = started, 0
    end = args.start + args.inputs
    try:
        async with open_fuzz_server() as fuzz:
            server_id = fuzz.server.server_id
            _say(f"fuzzing {protocol}: inputs {args.start}..{end - 1}, seed {seed}")
            while index < end:
                rng = random.Random(f"{seed}:{index}")
                chunks = generate(protocol, rng, server_id)
                try:
                    await fuzz.feed(protocol, chunks)
                    await fuzz.check_leaks()
                    if (index + 1) % args.check_every == 0 or index + 1 == end:
                        await fuzz.check()
                except Failure as failure:
                    failures += 1
                    seen[failure.signature] = seen.get(failure.signature, 0) + 1
                    if seen[failure.signature] == 1:
                        path = _save(args.save_dir, protocol, seed, index, chunks, str(failure))
                        _say(f"FAILURE at input {index} (seed {seed}), saved to {path}:\n"
                             f"{failure}")  # fmt: skip
                    if failure.kind in FATAL or not args.keep_going:
                        break
                index += 1
                now = time.monotonic()
                if now - last_report >= args.report_every:
                    rate = (index - args.start - last_count) / (now - last_report)
                    _say(f"{index - args.start} inputs, {rate:.0f}/s, {failures} failures, "
                         f"canary rounds {fuzz.canary.rounds}, "
                         f"{fuzz.logs.count} log lines")  # fmt: skip
                    last_report, last_count = now, index - args.start
    except Exception as exc:  # the server itself died
        path = _save(args.save_dir, protocol, seed, index, chunks, repr(exc))
        _say(f"SERVER DIED at input {index} (seed {seed}), saved to {path}")
        traceback.print_exception(exc, file=sys.stdout)
        return 2
    elapsed = time.monotonic() - started
    done = index - args.start
    _say(f"done: {done} {protocol} inputs in {elapsed:.0f} s ({done / elapsed:.0f}/s), "
         f"{failures} failures")  # fmt: skip
    for signature, count in seen.items():
        _say(f"  {count} x {signature}")
    return 1 if failures else 0


async def replay(path: Path) -> int:
    record = json.loads(path.read_text())
    chunks = [base64.b64decode(chunk) for chunk in record["chunks"]]
    _say(f"replaying {record['protocol']} input {record['index']} (seed {record['seed']}): "
         f"{sum(map(len, chunks))} bytes in {len(chunks)} reads")  # fmt: skip
    async with open_fuzz_server() as fuzz:
        try:
            outcome = await fuzz.feed(record["protocol"], chunks)
            await fuzz.check_leaks()
            await fuzz.check()
        except Failure as failure:
            _say(f"FAILURE: {failure}")
            return 1
    _say(f"no failure; reply ({outcome.reply_size} bytes, closed by server: "
         f"{outcome.closed_by_server}):\n{outcome.reply[:2000]!r}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("protocol", nargs="?", choices=PROTOCOLS)
    parser.add_argument("--inputs", type=int, default=10_000, help="how many inputs to run")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed")
    parser.add_argument("--start", type=int, default=0, help="index of the first input")
    parser.add_argument("--check-every", type=int, default=500,
                        help="inputs between canary rounds")  # fmt: skip
    parser.add_argument("--report-every", type=float, default=30.0,
                        help="seconds between progress lines")  # fmt: skip
    parser.add_argument("--save-dir", type=Path, default=Path("fuzz-failures"))
    parser.add_argument("--keep-going", action="store_true",
                        help="go on after a crash or a logged internal error")  # fmt: skip
    parser.add_argument("--replay", type=Path, help="feed one saved failing input")
    args = parser.parse_args(argv)
    if args.replay:
        return trio.run(replay, args.replay)
    if args.protocol is None:
        parser.error("a protocol is needed (or --replay FILE)")
    return trio.run(run, args)


if __name__ == "__main__":
    sys.exit(main())
