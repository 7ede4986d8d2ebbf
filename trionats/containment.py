"""A failure stays inside its connection: an unexpected exception is reported, ends only that.

An unexpected exception is any `Exception` (a bug: a RecursionError while decoding, a
KeyError in a hook...), bare or inside Trio's exception groups. `trio.Cancelled`,
KeyboardInterrupt and the other BaseExceptions are never caught: they are how the server
stops. Each per-connection task catches what its own code raises (docs/design.md, "a failure
stays inside its connection"), reports it here and closes only its own connection; nothing
reaches the connections nursery, the server's nursery, or another connection.

Reporting is one ERR line with the traceback (in JSON logs, the ECS `error.stack_trace`,
`error.type` and `error.message` fields) and one more in `stats.internal_errors`
(/varz `internal_errors`, /metrics `nats_server_internal_errors_total`).
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator

#: What the ERR line says before the exception (a connection's logger adds its prefix).
CLOSING = "Internal error, closing connection"


def report(log, stats, error: BaseException, what: str = CLOSING) -> None:
    """Log `error` once at ERR with its traceback, and count it in `stats.internal_errors`.

    A group holding a single exception (what a failed Trio nursery raises) is reported as
    that exception, with the frames of the task it came from.
    """
    error = _single(error)
    stats.internal_errors += 1
    trace = "".join(traceback.format_exception(error)).rstrip("\n")
    kind = type(error).__name__
    message = str(error)
    log.error(
        f"{what}: {kind}: {message}" if message else f"{what}: {kind}",
        stack_trace=trace,
        error_type=kind,
        error_message=message,
    )


@contextlib.contextmanager
def contained(log, stats, what: str = CLOSING, on_error: Callable[[], None] | None = None
              ) -> Iterator[None]:  # fmt: skip
    """Run a block whose unexpected exceptions are reported (`report`) instead of raised;
    `on_error` then runs (to close what the block owned). Cancellation passes through."""
    try:
        yield
    except* Exception as group:
        report(log, stats, group, what)
        if on_error is not None:
            on_error()


def _single(error: BaseException) -> BaseException:
    """The one exception inside nested single-member groups, else `error` itself."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
