"""The process's own state for /stacksz (every task's stack) and /debug/vars (expvar's shape).

nats-server answers /stacksz with the stacks of all its goroutines and /debug/vars with Go's
expvar variables (`cmdline` and the runtime's `memstats`). trionats answers the first with the
stack of every Trio task of this server's run and of every other thread, in the same layout,
and the second with the same two variables: the command line, and `memstats` with Go's keys,
filled where Python has a counterpart (resident memory, allocated blocks, collections) and 0
where it has none.
"""

from __future__ import annotations

import gc
import json
import sys
import threading

import trio

#: Go's runtime.MemStats fields in expvar's order; `PauseNs`, `PauseEnd` hold 256 entries.
_MEMSTATS = (
    "Alloc", "TotalAlloc", "Sys", "Lookups", "Mallocs", "Frees", "HeapAlloc", "HeapSys",
    "HeapIdle", "HeapInuse", "HeapReleased", "HeapObjects", "StackInuse", "StackSys",
    "MSpanInuse", "MSpanSys", "MCacheInuse", "MCacheSys", "BuckHashSys", "GCSys", "OtherSys",
    "NextGC", "LastGC", "PauseTotalNs", "PauseNs", "PauseEnd", "NumGC", "NumForcedGC",
    "GCCPUFraction", "EnableGC", "DebugGC", "BySize",
)  # fmt: skip
_GC_PAUSES = 256


def stacks() -> str:
    """Every Trio task of the current run, then every other thread, as Go prints goroutines."""
    blocks = []
    number = 0
    for task in _tasks(trio.lowlevel.current_root_task()):
        number += 1
        frames = [(frame.f_code.co_name, frame.f_code.co_filename, line)
                  for frame, line in task.iter_await_frames()]  # fmt: skip
        frames.reverse()  # outermost first from Trio; Go prints the innermost call first
        blocks.append(_block(f"task {number} [{task.name}]", frames))
    current = threading.get_ident()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        if ident == current:
            continue  # this thread is the Trio run above
        frames = []
        while frame is not None:
            frames.append((frame.f_code.co_name, frame.f_code.co_filename, frame.f_lineno))
            frame = frame.f_back
        blocks.append(_block(f"thread {ident} [{names.get(ident, '?')}]", frames))
    return "\n".join(blocks)


def _tasks(task):
    yield task
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield from _tasks(child)


def _block(title: str, frames: list) -> str:
    """A goroutine-style block: the title, then each call (innermost first) and its place."""
    lines = [f"{title}:"]
    for function, filename, line in frames:
        lines.append(f"{function}(...)")
        lines.append(f"\t{filename}:{line}")
    return "\n".join(lines) + "\n"


def expvars(rss: int) -> str:
    """/debug/vars: `cmdline` and `memstats`, one variable a line as Go's expvar writes them."""
    collections = sum(generation["collections"] for generation in gc.get_stats())
    known = {
        "Alloc": rss, "Sys": rss, "HeapAlloc": rss, "HeapSys": rss, "HeapInuse": rss,
        "HeapObjects": sys.getallocatedblocks(), "NumGC": collections,
        "PauseNs": [0] * _GC_PAUSES, "PauseEnd": [0] * _GC_PAUSES,
        "EnableGC": gc.isenabled(), "DebugGC": False, "BySize": [],
    }  # fmt: skip
    memstats = {name: known.get(name, 0) for name in _MEMSTATS}
    variables = {"cmdline": list(sys.argv), "memstats": memstats}
    body = ",\n".join(
        f"{json.dumps(name)}: {json.dumps(value, separators=(',', ':'))}"
        for name, value in variables.items()
    )
    return "{\n" + body + "\n}\n"
