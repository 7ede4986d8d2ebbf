"""Coverage-guided fuzzing with atheris (optional): `python -m fuzz.coverage_guided PROTO DIR`.

atheris (`pip install atheris`, not a dependency of trionats) instruments trionats' bytecode
and lets libFuzzer mutate towards new branches. Each input it makes is fed, as one read, to a
fresh connection of the same in-process server as the random fuzzer's (harness.py: a server
thread, the same failure checks, the canary every `CHECK_EVERY` inputs). An empty corpus
directory is first filled with valid streams from inputs.py. Arguments after the corpus are
libFuzzer's (`-runs=100000`, `-max_len=65536`, `-jobs=...`); a failing input is written to
`crash-<sha1>` in the current directory, and `--replay FILE` of `python -m fuzz` does not
read it: run this module with the file instead of the corpus to feed it again.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["trionats"]):
    import trionats.server  # noqa: F401 - instruments every trionats module it imports

from .harness import FuzzServerThread  # noqa: E402
from .inputs import PROTOCOLS, valid_stream  # noqa: E402

#: Inputs between two canary rounds.
CHECK_EVERY = 1000
#: Valid streams written to an empty corpus.
SEEDS = 200


def _seed_corpus(directory: Path, protocol: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    rng = random.Random(0)
    for i in range(SEEDS):
        (directory / f"seed-{i}").write_bytes(valid_stream(protocol, rng, "SELF"))


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in PROTOCOLS:
        sys.exit(f"usage: python -m fuzz.coverage_guided {{{','.join(PROTOCOLS)}}} CORPUS "
                 "[libFuzzer options]")  # fmt: skip
    protocol = sys.argv.pop(1)
    target = Path(sys.argv[1])
    if not target.is_file():
        _seed_corpus(target, protocol)
    server = FuzzServerThread().__enter__()
    count = 0

    def one_input(data: bytes) -> None:
        nonlocal count
        server.feed(protocol, [data])  # a Failure propagates: libFuzzer saves the input
        count += 1
        if count % CHECK_EVERY == 0:
            server.check()

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
