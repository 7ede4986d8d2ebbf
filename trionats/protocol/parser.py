"""Sans-I/O parser for the NATS client protocol: bytes in, events out, never a socket.

How it works. `feed(data)` is a generator: it appends `data` to what was left over and yields
one event per complete operation, so the caller can change the parser's settings (headers
allowed, CONNECT still required) between two operations of the same read. A protocol
violation raises `ProtocolError` carrying nats-server's exact -ERR text (or None for its silent
closes); after that the parser is broken and must not be fed again.

The grammar follows nats-server's byte state machine (server/parser.go), including its corners:
op names are case-insensitive; an op with arguments needs one space or tab after its name;
the first byte after the separators starts the argument text, whatever it is; the argument
ends at the next `\n`, dropping one byte before it if a `\r` was seen; PING, PONG and +OK
ignore the rest of their line. Payloads are length-prefixed and must end in `\r\n`.

The hot path is PUB: one `find` for the line end, one `rfind` for the last space, a cache of
decoded line heads (what comes before the size) and a table of size tokens, one slice for
payload plus CRLF. Split reads are handled by keeping the unparsed tail (bounded by
max_control_line) or, for payloads, a list of chunks joined once when complete.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import defaults, errors
from ..errors import ProtocolError, Reason
from .subjects import is_valid_literal_subject
from .events import (
    PING,
    PONG,
    ASub,
    AUnsub,
    Connect,
    Err,
    Info,
    InvalidPublishSubject,
    LMsg,
    LSub,
    LUnsub,
    Pub,
    PubBatch,
    PubRun,
    RMsg,
    RMsgRun,
    RMsgSpan,
    RSub,
    RUnsub,
    Sub,
    Unsub,
)

new_event = tuple.__new__  # builds a NamedTuple event without the cost of its __new__

# Keyword table: upper-case name -> (op, how its arguments start).
#   SEP:  one or more spaces/tabs required, then the argument text
#   OPT:  optional spaces/tabs, then the argument text (CONNECT, INFO)
#   LINE: the rest of the line is ignored (PING, PONG, +OK)
SEP, OPT, LINE = 0, 1, 2

OP_PUB, OP_HPUB, OP_HMSG, OP_SUB, OP_UNSUB = "PUB", "HPUB", "HMSG", "SUB", "UNSUB"
OP_CONNECT, OP_INFO, OP_PING, OP_PONG, OP_OK, OP_ERR = (
    "CONNECT",
    "INFO",
    "PING",
    "PONG",
    "+OK",
    "-ERR",
)

#: Ops both roles share: the handshake, keepalive and error lines.
COMMON_KEYWORDS = {
    b"CONNECT": (OP_CONNECT, OPT),
    b"INFO": (OP_INFO, OPT),
    b"PING": (OP_PING, LINE),
    b"PONG": (OP_PONG, LINE),
    b"+OK": (OP_OK, LINE),
    b"-ERR": (OP_ERR, SEP),
}

CLIENT_KEYWORDS = {
    b"PUB": (OP_PUB, SEP),
    b"HPUB": (OP_HPUB, SEP),
    # A client HMSG is accepted by nats-server as an empty message with no subject.
    b"HMSG": (OP_HMSG, SEP),
    b"SUB": (OP_SUB, SEP),
    b"UNSUB": (OP_UNSUB, SEP),
    **COMMON_KEYWORDS,
}

_SPACE, _TAB, _CR, _LF = 32, 9, 13, 10
_NEED = None  # walker result: more bytes are needed to decide


def _build_trie(keywords: dict[bytes, tuple[str, int]]) -> dict:
    root: dict = {}
    for word, action in keywords.items():
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[None] = action
    return root


def _parse_size(text: bytes) -> int:
    """nats-server's parseSize: 1 to 9 ASCII digits, else -1."""
    if 0 < len(text) <= 9 and text.isdigit():
        return int(text)
    return -1


#: Canonical size tokens (`<digits>\r`, no leading zero) -> size, shared by every parser (a
#: pure function of the bytes; each parser checks its own max_payload). Filled as met.
_SIZES: dict[bytes, int] = {}
_NO_SIZE = 1 << 64  # what a missing size token looks up as: over any max_payload
_NO_HEADS: dict[bytes, tuple] = {}  # what the fast path looks heads up in when it is off


def _learn_size(tok: bytes) -> int:
    """The size a canonical size token stands for (and remember it), else _NO_SIZE."""
    digits = tok[:-1]
    if not (tok.endswith(b"\r") and 0 < len(digits) <= 9 and digits.isdigit()):
        return _NO_SIZE
    size = int(digits)
    if tok != b"%d\r" % size:  # leading zeros: valid, but the line is not canonical
        return _NO_SIZE
    if len(_SIZES) >= defaults.SIZE_TOKEN_CACHE_SIZE:
        _SIZES.clear()
    _SIZES[tok] = size
    return size


def _split_blanks(arg: bytes) -> list[bytes]:
    """Split on spaces and tabs only, as nats-server does for PUB and HPUB arguments."""
    if b"\t" in arg:
        arg = arg.replace(b"\t", b" ")
    return [part for part in arg.split(b" ") if part]


def _split_args(arg: bytes) -> list[bytes]:
    """nats-server's splitArg (SUB, UNSUB): spaces, tabs, CR and LF separate."""
    for sep in (b"\t", b"\r", b"\n"):
        if sep in arg:
            arg = arg.replace(sep, b" ")
    return [part for part in arg.split(b" ") if part]


def _silent(detail: str) -> ProtocolError:
    return ProtocolError(None, Reason.PROTOCOL_VIOLATION, detail)


def _invalid_publish_subject(subject: bytes) -> bool:
    """What a pedantic client gets -ERR 'Invalid Publish Subject' for (an empty subject is
    left to the message's own handling)."""
    return bool(subject) and not is_valid_literal_subject(subject)


def _unknown_op() -> ProtocolError:
    # nats-server closes these as "Protocol Violation" (its "Parse Error" is for a client -ERR).
    return ProtocolError(errors.UNKNOWN_PROTOCOL, Reason.PROTOCOL_VIOLATION)


class Parser:
    """Parser of what a client sends to the server.

    Settings the connection may change between events: `max_payload`, `max_control_line`
    (call `set_limits`), `headers` (HPUB allowed), `require_connect` (auth configured and
    CONNECT not yet accepted: any other op is an Authorization Violation) and `pedantic`
    (a message to an invalid publish subject whose payload is not complete in the read, or
    ends badly, is announced first by an `InvalidPublishSubject` event; a complete one is
    the consumer's to check).

    With `batch=True`, consecutive PUBs that share one control line and are all in the
    buffer come out as a single `PubRun` (checked with a few C-level passes over the bytes
    instead of one Python loop turn per message), and other consecutive PUBs as one
    `PubBatch`; their `expand()` gives the same Pubs.
    """

    keywords = CLIENT_KEYWORDS
    #: PUB has a dedicated fast path (clients only).
    pub_fast_path = True

    def __init__(
        self,
        *,
        max_control_line: int = defaults.MAX_CONTROL_LINE,
        max_payload: int = defaults.MAX_PAYLOAD,
        headers: bool = False,
        require_connect: bool = False,
        batch: bool = False,
        pedantic: bool = False,
    ) -> None:
        self._trie = _build_trie(self.keywords)
        self.batch = batch
        self.max_control_line = max_control_line
        self.max_payload = max_payload
        self.headers = headers
        self.require_connect = require_connect
        self.pedantic = pedantic
        self._tail = b""  # unparsed bytes: a partial control line
        self._line_op: str | None = None  # PING/PONG/+OK seen, discarding to end of line
        self._waiting: tuple | None = None  # (event type, fields, size) of a message in transit
        self._chunks: list[bytes] = []  # payload bytes received so far
        self._have = 0
        #: Heads of fast-path lines (`PUB subject [reply]`, what comes before the size)
        #: already decoded and checked: head -> (subject, reply, span lines). A canonical head
        #: (no reply, single spaces) has a dict of its whole lines met in spans, with their
        #: sizes (see _span_line); other heads have None: their lines never form a span.
        self._heads: dict[bytes, tuple] = {}
        self._kept = 0  # heads and span lines kept: together bounded by PUB_LINE_CACHE_SIZE

    def set_limits(self, *, max_control_line: int, max_payload: int) -> None:
        self.max_control_line = max_control_line
        self.max_payload = max_payload
        self._forget()  # which heads may be kept depends on max_control_line

    # --- the main loop --------------------------------------------------------------------

    def feed(self, data: bytes) -> Iterator[object]:
        """Yield every complete event in what has been received, `data` included."""
        pos = 0  # where to read on in `data` (not copied: a read is often 64 KiB)
        if self._waiting is not None:
            pos = self._continue_payload(data)
            if pos < 0:
                return
            yield self._finish_waiting()
        if self._line_op is not None:
            nl = data.find(b"\n", pos)
            if nl < 0:
                return
            op, self._line_op = self._line_op, None
            if op is OP_PING:
                yield PING
            elif op is OP_PONG:
                yield PONG
            pos = nl + 1
        if self._tail:  # a partial control line: nothing was waiting before it
            buf = self._tail + data
            self._tail = b""
        else:
            buf = data
        end = len(buf)
        find = buf.find
        startswith = buf.startswith
        rfind = buf.rfind
        sizes_get = _SIZES.get
        no_size = _NO_SIZE
        # Settings only change in the handlers of events other than PUB (the consumer runs
        # between two yields and nothing else can), so they are re-read after those only.
        fast = self.pub_fast_path and not self.require_connect
        heads_get = self._heads.get if fast else _NO_HEADS.get
        batch = self.batch
        runs = batch or self.runs_only
        max_payload = self.max_payload
        prefix = self.fast_prefix
        skip = len(prefix)
        pending: list[tuple[bytes, bytes, bytes]] = []  # batch mode: PUBs not yet yielded
        try:
            while pos < end:
                nl = find(b"\n", pos)
                if nl < 0:
                    if pending:
                        yield new_event(PubBatch, (pending, None, b"", 0, 0))
                        pending = []
                    self._keep_partial(buf, pos, end)
                    return
                # Fast path: the common shape of PUB (RMSG on routes). The line's head (up to
                # its last space: `PUB subject [reply]`) and its size token are looked up
                # apart, so a subject seen before hits whatever its size; a PUB line that
                # misses either goes through _fast_line, which decodes it exactly.
                # `subject, reply` are a PUB's; a route parser keeps its RMSG fields there.
                sp = rfind(b" ", pos, nl)
                if sp < 0:
                    sp = nl  # no space: all head, no size token (such heads are not kept)
                key = buf[pos:sp]
                tok = buf[sp + 1 : nl]
                line = heads_get(key)
                size = sizes_get(tok, no_size)
                if line is None or size > max_payload:
                    if fast and startswith(prefix, pos) and buf[pos + skip] > _SPACE:
                        line, size = self._fast_line(buf, pos, sp, nl)
                    else:
                        line = None
                if line is not None:
                    subject, reply, span_lines = line
                    stop = nl + 3 + size
                    if stop <= end:
                        if not startswith(b"\r\n", stop - 2):
                            if self.pedantic and _invalid_publish_subject(subject):
                                if pending:
                                    yield new_event(PubBatch, (pending, None, b"", 0, 0))
                                    pending = []
                                yield InvalidPublishSubject(subject, False)
                            raise _unknown_op()
                        # Runs and spans both need the next line to start with this head:
                        # one look at it, so lines to random subjects skip both attempts.
                        if runs and startswith(key, stop):
                            if startswith(tok, stop + sp + 1 - pos) and stop + stop - pos <= end:
                                parts = self._run(buf, pos, nl + 1, stop - pos, end)
                                if parts is not None:
                                    if pending:
                                        yield new_event(PubBatch, (pending, None, b"", 0, 0))
                                        pending = []
                                    yield self._run_event(subject, reply, parts)
                                    pos += len(parts) * (stop - pos)
                                    continue
                            if span_lines is not None:
                                # A canonical line, and the next one names the same subject:
                                # take the canonical lines to it that follow as one span (see
                                # PubBatch.span), in a tight loop.
                                start, count, total = pos, 1, size
                                first_nl, first_stop = nl, stop
                                pos = stop
                                lines_get = span_lines.get
                                while pos < end:
                                    nl = find(b"\n", pos)
                                    if nl < 0:
                                        break
                                    size = lines_get(buf[pos:nl], -1)
                                    stop = nl + 3 + size
                                    if size < 0 or stop > end or not startswith(b"\r\n", stop - 2):
                                        if size >= 0:
                                            break  # the main loop takes it from here
                                        size = self._span_line(buf, pos, nl, key, span_lines)
                                        stop = nl + 3 + size
                                        if size < 0 or stop > end or not startswith(
                                            b"\r\n", stop - 2
                                        ):
                                            break
                                    count += 1
                                    total += size
                                    pos = stop
                                if count > 1:
                                    if pending:
                                        yield new_event(PubBatch, (pending, None, b"", 0, 0))
                                        pending = []
                                    yield self._span_event(subject, buf[start:pos], total, count)
                                    continue
                                nl, stop = first_nl, first_stop
                        if batch:
                            pending.append((subject, reply, buf[nl + 1 : stop]))
                        else:
                            yield self._message_event(subject, reply, buf[nl + 1 : stop])
                        pos = stop
                        continue
                    if pending:
                        yield new_event(PubBatch, (pending, None, b"", 0, 0))
                        pending = []
                    if self.pedantic and _invalid_publish_subject(subject):
                        yield InvalidPublishSubject(subject, True)
                    self._wait_payload(buf, nl + 1, end, *self._waiting_message(subject, reply), size)
                    return
                if pending:
                    yield new_event(PubBatch, (pending, None, b"", 0, 0))
                    pending = []
                op, arg_start = self._walk(buf, pos, nl + 1)
                if arg_start < 0:  # PING, PONG, +OK: the line is done
                    pos = nl + 1
                    if op is OP_PING:
                        yield PING
                    elif op is OP_PONG:
                        yield PONG
                    continue
                if arg_start == nl:
                    # The separator was followed by LF itself: nats-server takes that byte as the
                    # first of the argument, which then runs to the next LF.
                    nl = buf.find(b"\n", arg_start + 1)
                    if nl < 0:
                        self._keep_partial(buf, pos, end)
                        return
                arg = self._arg_text(buf, arg_start, nl)
                pos = nl + 1
                if op in self.message_ops:
                    kind, fields, size = self._decode_message(op, arg)
                    stop = pos + size + 2
                    noticed = (
                        self.pedantic and kind is Pub and _invalid_publish_subject(fields[0])
                    )
                    if stop <= end:
                        if buf[stop - 2] != _CR or buf[stop - 1] != _LF:
                            if noticed:
                                yield InvalidPublishSubject(fields[0], False)
                            raise _unknown_op()
                        yield new_event(kind, fields + (buf[pos:stop],))
                        pos = stop
                        continue
                    if op is OP_HMSG and kind is Pub:
                        # nats-server cannot hold a client HMSG across reads: its CRLF must come
                        # in the same read as the line, else 'Unknown Protocol Operation'.
                        raise _unknown_op()
                    if noticed:
                        yield InvalidPublishSubject(fields[0], True)
                    self._wait_payload(buf, pos, end, kind, fields, size)
                    return
                yield self._decode_other(op, arg)
                fast = self.pub_fast_path and not self.require_connect
                heads_get = self._heads.get if fast else _NO_HEADS.get
                batch = self.batch
                runs = batch or self.runs_only
                max_payload = self.max_payload
        except ProtocolError:
            if pending:  # what came before the error is handled first, as in nats-server
                yield new_event(PubBatch, (pending, None, b"", 0, 0))
            raise
        if pending:
            yield new_event(PubBatch, (pending, None, b"", 0, 0))

    # --- pieces of the loop ---------------------------------------------------------------

    def _walk(self, buf: bytes, pos: int, limit: int) -> tuple[str, int]:
        """Match the op name at `pos`; return (op, index where its argument starts).

        The index is -1 for ops without arguments; `_NEED` is returned as op when `limit`
        came before the op could be decided.
        """
        if self.require_connect and buf[pos] not in b"Cc":
            raise ProtocolError(errors.AUTH_VIOLATION, Reason.AUTH_VIOLATION)
        node = self._trie
        i = pos
        while True:
            if i >= limit:
                return _NEED, -1
            ch = buf[i]
            if 97 <= ch <= 122:
                ch -= 32
            nxt = node.get(ch)
            if nxt is None:
                action = node.get(None)
                if action is None:
                    raise _unknown_op()
                break
            node = nxt
            i += 1
        op, mode = action
        if mode == LINE:
            return op, -1
        if mode == SEP:
            if buf[i] not in (_SPACE, _TAB):
                raise _unknown_op()
            i += 1
        while i < limit and buf[i] in (_SPACE, _TAB):
            i += 1
        if i >= limit:
            return _NEED, -1
        return op, i

    @staticmethod
    def _run(buf: bytes, pos: int, line_end: int, stride: int, end: int) -> list[bytes] | None:
        """Payloads (+CRLF) of the PUBs at `pos` that repeat the control line buf[pos:line_end].

        Every message of a run has the same length (`stride`), so splitting the bytes on the
        control line must give pieces of exactly stride - len(line) bytes, each ending in CRLF.
        A payload that happens to contain the control line gives a piece of another length,
        so it ends the run there, as does a different message. Returns None for fewer than 2.
        """
        line = buf[pos:line_end]
        piece = stride - len(line)
        count = (end - pos) // stride
        parts = buf[pos : pos + count * stride].split(line)
        del parts[0]  # the empty piece before the first control line
        if len(parts) == count and all(len(p) == piece for p in parts):
            crlf = pos + stride - 2
            region_end = pos + count * stride
            if buf[crlf:region_end:stride].count(_CR) == count and buf[
                crlf + 1 : region_end : stride
            ].count(_LF) == count:
                return parts
        # Mixed traffic: keep the leading messages that have the run's shape.
        good = 0
        for p in parts:
            if len(p) != piece or not p.endswith(b"\r\n"):
                break
            good += 1
        if good < 2:
            return None
        del parts[good:]
        return parts

    def _arg_text(self, buf: bytes, arg_start: int, nl: int) -> bytes:
        """The argument bytes between `arg_start` and the LF at `nl`, limit-checked."""
        stop = nl
        # nats-server drops the byte before LF once a CR was seen after the first byte.
        if nl - 1 > arg_start and (buf[nl - 1] == _CR or _CR in buf[arg_start + 1 : nl]):
            stop = nl - 1
        if stop - arg_start > self.max_control_line:
            raise ProtocolError(errors.MAX_CONTROL_LINE, Reason.MAX_CONTROL_LINE)
        return buf[arg_start:stop]

    def _keep_partial(self, buf: bytes, pos: int, end: int) -> None:
        """No LF yet: check what we have so far, then keep it for the next read."""
        op, arg_start = self._walk(buf, pos, end)
        if op is _NEED:
            # A partial op name, maybe followed by separators: keep the name and one
            # separator (more would be skipped anyway), so a stream of blanks costs nothing.
            kept = buf[pos:end].rstrip(b" \t")
            self._tail = kept + buf[end - 1 : end] if len(kept) < end - pos else kept
            return
        if arg_start < 0:  # PING/PONG/+OK without LF yet: drop until it comes
            self._line_op = op
            return
        seen = end - arg_start
        if seen > 1 and _CR in buf[arg_start + 1 : end]:
            seen -= 1
        if seen > self.max_control_line:
            raise ProtocolError(errors.MAX_CONTROL_LINE, Reason.MAX_CONTROL_LINE)
        self._tail = buf[pos:]

    def _wait_payload(
        self, buf: bytes, start: int, end: int, kind: type, fields: tuple, size: int
    ) -> None:
        """The payload of a message is not all here: keep its start and what it will be."""
        self._waiting = (kind, fields, size)
        part = buf[start:end]
        self._chunks = [part] if part else []
        self._have = end - start
        if self._have >= size + 1 and buf[start + size] != _CR:
            raise _unknown_op()

    def _continue_payload(self, data: bytes) -> int:
        """Add `data` to a waited-for payload; once it is complete, return where the rest of
        `data` starts (-1 until then)."""
        need = self._waiting[2] + 2
        have = self._have
        if have + len(data) < need:
            self._chunks.append(data)
            self._have = have + len(data)
            if self._have == need - 1 and data and data[-1] != _CR:
                raise _unknown_op()
            return -1
        used = need - have
        self._chunks.append(data[:used])
        return used

    def _finish_waiting(self) -> object:
        kind, fields, size = self._waiting
        joined = b"".join(self._chunks)
        self._waiting = None
        self._chunks = []
        if joined[size] != _CR or joined[size + 1] != _LF:
            raise _unknown_op()
        return new_event(kind, fields + (joined,))

    # --- argument decoding ----------------------------------------------------------------

    # --- the fast path's message shape (PUB here; RMSG for RouteParser) ---------------------

    #: The op whose common shape takes the fast path, with its separator.
    fast_prefix = b"PUB "
    #: Yield runs of identical lines even without `batch` (RouteParser: runs, never batches).
    runs_only = False

    def _decode_fast_line(self, arg: bytes) -> tuple:
        """(subject, reply, size) of a PUB line, checked against max_payload."""
        args = self._decode_pub(arg)
        if args[2] > self.max_payload:
            raise ProtocolError(errors.MAX_PAYLOAD, Reason.MAX_PAYLOAD)
        return args

    @staticmethod
    def _message_event(subject: bytes, reply: bytes, data: bytes) -> object:
        return new_event(Pub, (subject, reply, -1, data))

    @staticmethod
    def _run_event(subject: bytes, reply: bytes, parts: list) -> object:
        return new_event(PubRun, (subject, reply, parts))

    @staticmethod
    def _waiting_message(subject: bytes, reply: bytes) -> tuple:
        return Pub, (subject, reply, -1)

    @staticmethod
    def _is_canonical(key: bytes, args: tuple) -> bool:
        """`PUB <subject> <size>\r\n`: no reply, single spaces, CRLF."""
        return args[1] == b"" and key == b"%s %d\r" % (args[0], args[2])

    @staticmethod
    def _span_event(subject: bytes, span: bytes, total: int, count: int) -> object:
        return new_event(PubBatch, (None, span, subject, total, count))

    def _fast_line(self, buf: bytes, pos: int, sp: int, nl: int) -> tuple[tuple, int]:
        """((subject, reply, span lines), size) of a fast-path line whose head or size token
        is not known: decoded and checked as any line (raising its exact error). With a
        canonical size token (`<digits>\r` after the last space) the head alone decides the
        rest, so both are remembered."""
        arg_start = pos + len(self.fast_prefix)
        args = self._decode_fast_line(self._arg_text(buf, arg_start, nl))
        subject, reply, size = args
        # Such a head is kept only if any size token fits the control line limit with it
        # (up to 9 digits), so the lines that hit need no limit check.
        if _learn_size(buf[sp + 1 : nl]) != size or sp - arg_start + 10 > self.max_control_line:
            return (subject, reply, None), size  # bare LF, leading zeros, tabs, a long line
        # A canonical head (`PUB <subject>`: no reply, single spaces) gets a dict of its
        # whole lines with their sizes, filled as spans meet them.
        lines = {} if self._is_canonical(buf[arg_start:nl], args) else None
        line = (subject, reply, lines)
        self._keep()
        self._heads[buf[pos:sp]] = line
        return line, size

    def _keep(self) -> None:
        """Count one more head or span line about to be kept, forgetting all kept so far
        first if that would be too many."""
        if self._kept >= defaults.PUB_LINE_CACHE_SIZE:
            self._forget()
        self._kept += 1

    def _forget(self) -> None:
        self._heads.clear()
        self._kept = 0

    def _span_line(self, buf: bytes, pos: int, nl: int, head: bytes, lines: dict) -> int:
        """Size of the line at `pos` if it is `<head> <canonical size>` within max_payload,
        else -1; such a line is remembered in its head's `lines` (up to SPAN_LINES_PER_HEAD
        of them; set_limits forgets them)."""
        end = pos + len(head)
        if not buf.startswith(head, pos) or buf[end] != _SPACE:  # (end <= the line's LF)
            return -1
        tok = buf[end + 1 : nl]
        size = _SIZES.get(tok, _NO_SIZE)
        if size == _NO_SIZE:
            size = _learn_size(tok)
        if size > self.max_payload:
            return -1
        if len(lines) < defaults.SPAN_LINES_PER_HEAD:
            self._keep()
            lines[buf[pos:nl]] = size
        return size

    #: Ops followed by a payload; `_decode_message` reads their arguments.
    message_ops = frozenset({OP_PUB, OP_HPUB, OP_HMSG})

    def _decode_message(self, op: str, arg: bytes) -> tuple[type, tuple, int]:
        """(event type, fields before the payload, payload size) of a message op's line."""
        if op is OP_PUB:
            subject, reply, size = self._decode_pub(arg)
            header_size = -1
        elif op is OP_HPUB:
            subject, reply, header_size, size = self._decode_hpub(arg)
        else:  # a client's HMSG: nats-server takes it as an empty message with no subject
            return Pub, (b"", b"", 0), 0
        if size > self.max_payload:
            raise ProtocolError(errors.MAX_PAYLOAD, Reason.MAX_PAYLOAD)
        return Pub, (subject, reply, header_size), size

    def _decode_pub(self, arg: bytes) -> tuple[bytes, bytes, int]:
        args = arg.split(b" ")
        if b"" in args or b"\t" in arg:
            args = _split_blanks(arg)
        if len(args) == 2:
            subject, reply, size_text = args[0], b"", args[1]
        elif len(args) == 3:
            subject, reply, size_text = args
        else:
            raise _silent(f"PUB arguments: {arg!r}")
        size = _parse_size(size_text)
        if size < 0:
            raise _silent(f"PUB size: {arg!r}")
        return subject, reply, size

    def _decode_hpub(self, arg: bytes) -> tuple[bytes, bytes, int, int]:
        if not self.headers:
            raise _silent("HPUB without headers support")
        args = _split_blanks(arg)
        if len(args) == 3:
            subject, reply, header_text, size_text = args[0], b"", args[1], args[2]
        elif len(args) == 4:
            subject, reply, header_text, size_text = args
        else:
            raise _silent(f"HPUB arguments: {arg!r}")
        header_size = _parse_size(header_text)
        size = _parse_size(size_text)
        if header_size < 0 or size < 0 or header_size > size:
            raise _silent(f"HPUB sizes: {arg!r}")
        return subject, reply, header_size, size

    def _decode_other(self, op: str, arg: bytes) -> object:
        if op is OP_SUB:
            args = _split_args(arg)
            if len(args) == 2:
                return new_event(Sub, (args[0], None, args[1]))
            if len(args) == 3:
                return new_event(Sub, (args[0], args[1], args[2]))
            raise _silent(f"SUB arguments: {arg!r}")
        if op is OP_UNSUB:
            args = _split_args(arg)
            if len(args) == 1:
                return new_event(Unsub, (args[0], -1))
            if len(args) == 2:
                return new_event(Unsub, (args[0], _parse_size(args[1])))
            raise _silent(f"UNSUB arguments: {arg!r}")
        if op is OP_CONNECT:
            return Connect(arg)
        if op is OP_INFO:
            return Info(arg)
        if op is OP_ERR:
            return Err(arg)
        raise AssertionError(op)  # pragma: no cover - every keyword is handled above


# --- the route role ---------------------------------------------------------------------------

OP_RSUB, OP_RUNSUB, OP_RMSG, OP_LSUB, OP_LUNSUB, OP_LMSG, OP_ASUB, OP_AUNSUB = (
    "RS+",
    "RS-",
    "RMSG",
    "LS+",
    "LS-",
    "LMSG",
    "A+",
    "A-",
)

ROUTE_KEYWORDS = {
    b"RS+": (OP_RSUB, SEP),
    b"RS-": (OP_RUNSUB, SEP),
    b"RMSG": (OP_RMSG, SEP),
    b"HMSG": (OP_HMSG, SEP),
    b"LS+": (OP_LSUB, SEP),
    b"LS-": (OP_LUNSUB, SEP),
    b"LMSG": (OP_LMSG, SEP),
    b"A+": (OP_ASUB, SEP),
    b"A-": (OP_AUNSUB, SEP),
    # A client's ops, as nats-server's parser takes them on a route (see RouteParser).
    b"PUB": (OP_PUB, SEP),
    b"HPUB": (OP_HPUB, SEP),
    b"SUB": (OP_SUB, SEP),
    b"UNSUB": (OP_UNSUB, SEP),
    **COMMON_KEYWORDS,
}


def _indicated(args: list[bytes], first: int, sizes: int, arg: bytes) -> tuple[bytes, tuple]:
    """reply and queue names of a routed message with 5+ fields: `+ reply q...` or `| q...`."""
    indicator = args[first]
    if indicator == b"+":
        return args[first + 1], tuple(args[first + 2 : len(args) - sizes])
    if indicator == b"|":
        return b"", tuple(args[first + 1 : len(args) - sizes])
    raise _silent(f"routed message reply indicator: {arg!r}")


class RouteParser(Parser):
    """Parser of what a route peer (another server) sends: RS+/RS-, RMSG/HMSG, LS+/LS-/LMSG.

    Account names are in the line, except on a route pinned to one account (`pin`): its
    RS+/RS-/RMSG/HMSG lines name none, and are read as naming that one (nats-server puts
    the route's account in front of the line's arguments). The
    control line may be ROUTE_CONTROL_LINE_FACTOR times the client limit; routed messages
    have no payload limit. A malformed line closes the route without -ERR, as in nats-server.
    `origin_unsubs`: the peer sends LS- with the leaf origin (only if we announced `lnocu`).

    A client's ops are read as nats-server's parser reads them on a route: PUB (and HPUB, if
    `headers` were agreed on) as a routed message of no account, which nobody gets, unless
    its payload is still to come at the end of a read: its line is then read again as an
    RMSG (HMSG) line, an unknown op if it is not one; UNSUB as RS-; SUB is read and
    ignored. Other client ops (MSG) are unknown.
    """

    keywords = ROUTE_KEYWORDS
    message_ops = frozenset({OP_RMSG, OP_HMSG, OP_LMSG, OP_PUB, OP_HPUB})
    # The fast path takes RMSG lines (the bulk of route traffic), and yields runs of identical
    # ones as RMsgRun: a sender's run of PUBs crosses the route as such a run.
    fast_prefix = b"RMSG "
    runs_only = True

    def _decode_fast_line(self, arg: bytes) -> tuple:
        """((account, subject, reply, queues), None, size) of an RMSG line."""
        _, fields, size = self._decode_message(OP_RMSG, arg)
        return fields[:4], None, size

    @staticmethod
    def _message_event(fields: tuple, _: None, data: bytes) -> object:
        return new_event(RMsg, fields + (-1, data))

    @staticmethod
    def _run_event(fields: tuple, _: None, parts: list) -> object:
        return new_event(RMsgRun, fields + (parts,))

    @staticmethod
    def _waiting_message(fields: tuple, _: None) -> tuple:
        return RMsg, fields + (-1,)

    @staticmethod
    def _is_canonical(key: bytes, args: tuple) -> bool:
        """`RMSG <account> <subject> <size>\r\n`: no reply or queues, single spaces, CRLF."""
        (account, subject, reply, queues), _, size = args
        return not reply and not queues and key == b"%s %s %d\r" % (account, subject, size)

    @staticmethod
    def _span_event(fields: tuple, span: bytes, total: int, count: int) -> object:
        return new_event(RMsgSpan, (fields[0], fields[1], span, total, count))

    def __init__(
        self,
        *,
        max_control_line: int = defaults.MAX_CONTROL_LINE,
        origin_unsubs: bool = False,
        require_connect: bool = False,
    ) -> None:
        super().__init__(
            max_control_line=max_control_line * defaults.ROUTE_CONTROL_LINE_FACTOR,
            max_payload=2**63,
            require_connect=require_connect,
        )
        self.origin_unsubs = origin_unsubs
        self._client_line = (OP_PUB, b"")  # the last client PUB/HPUB line read
        #: The account of a route pinned to one (its lines name none); b"" otherwise.
        self.account = b""

    def pin(self, account: bytes) -> None:
        """From now on the lines name no account: they are `account`'s."""
        self.account = account
        self._forget()  # (heads decoded so far named their own)

    def _wait_payload(
        self, buf: bytes, start: int, end: int, kind: type, fields: tuple, size: int
    ) -> None:
        if kind is RMsg and not fields[0]:
            # A client's PUB/HPUB whose payload is still to come: nats-server keeps its line
            # for the next read by parsing it again as a route's RMSG/HMSG line. One that is
            # not such a line is an unknown op; one that is names the message's account.
            op, arg = self._client_line
            try:
                _, fields, _ = self._decode_message(OP_RMSG if op is OP_PUB else OP_HMSG, arg)
            except ProtocolError:
                raise _unknown_op() from None
        super()._wait_payload(buf, start, end, kind, fields, size)

    def set_limits(self, *, max_control_line: int, max_payload: int = 2**63) -> None:
        super().set_limits(
            max_control_line=max_control_line * defaults.ROUTE_CONTROL_LINE_FACTOR,
            max_payload=max_payload,
        )

    def _decode_message(self, op: str, arg: bytes) -> tuple[type, tuple, int]:
        if op is OP_PUB or op is OP_HPUB:  # a client's: no account
            _, (subject, reply, header_size), size = super()._decode_message(op, arg)
            self._client_line = (op, arg)  # for _wait_payload
            return RMsg, (b"", subject, reply, (), header_size), size
        args = _split_args(arg)
        if self.account and (op is OP_RMSG or op is OP_HMSG):
            args.insert(0, self.account)
        count = len(args)
        if op is OP_RMSG:
            if count < 3:
                raise _silent(f"RMSG arguments: {arg!r}")
            if count == 3:
                reply, queues = b"", ()
            elif count == 4:
                reply, queues = args[2], ()
            else:
                reply, queues = _indicated(args, 2, 1, arg)
            size = _parse_size(args[-1])
            if size < 0:
                raise _silent(f"RMSG size: {arg!r}")
            return RMsg, (args[0], args[1], reply, queues, -1), size
        if op is OP_HMSG:
            if count < 4:
                raise _silent(f"HMSG arguments: {arg!r}")
            if count == 4:
                reply, queues = b"", ()
            elif count == 5:
                reply, queues = args[2], ()
            else:
                reply, queues = _indicated(args, 2, 2, arg)
            header_size, size = _parse_size(args[-2]), _parse_size(args[-1])
            if header_size < 0 or size < 0 or header_size > size:
                raise _silent(f"HMSG sizes: {arg!r}")
            return RMsg, (args[0], args[1], reply, queues, header_size), size
        # LMSG: origin account subject [reply | + reply q... | | q...] header_size size
        if count < 5:
            raise _silent(f"LMSG arguments: {arg!r}")
        if count == 5:
            reply, queues = b"", ()
        elif count == 6:
            reply, queues = args[3], ()
        else:
            reply, queues = _indicated(args, 3, 2, arg)
        header_size, size = _parse_size(args[-2]), _parse_size(args[-1])
        if header_size < 0 or size < 0 or header_size > size:
            raise _silent(f"LMSG sizes: {arg!r}")
        return LMsg, (args[0], args[1], args[2], reply, queues, header_size), size

    def _decode_other(self, op: str, arg: bytes) -> object:
        if op is OP_SUB:
            return new_event(Sub, (b"", None, b""))  # read, and ignored by routes
        if op is OP_UNSUB:
            op = OP_RUNSUB
        args = _split_args(arg)
        if self.account and (op is OP_RSUB or op is OP_RUNSUB):
            args.insert(0, self.account)
        count = len(args)
        if op is OP_RSUB:
            if count == 2:
                return new_event(RSub, (args[0], args[1], None, 1))
            if count == 4:
                return new_event(RSub, (args[0], args[1], args[2], _parse_size(args[3])))
            raise _silent(f"RS+ arguments: {arg!r}")
        if op is OP_RUNSUB:
            if count in (2, 3):
                return new_event(RUnsub, (args[0], args[1], args[2] if count == 3 else None))
            raise _silent(f"RS- arguments: {arg!r}")
        if op is OP_LSUB:
            if count == 3:
                return new_event(LSub, (args[0], args[1], args[2], None, 1))
            if count == 5:
                return new_event(LSub, (args[0], args[1], args[2], args[3], _parse_size(args[4])))
            raise _silent(f"LS+ arguments: {arg!r}")
        if op is OP_LUNSUB:
            first = 1 if self.origin_unsubs else 0
            origin = args[0] if self.origin_unsubs and args else b""
            if count - first in (2, 3):
                queue = args[first + 2] if count - first == 3 else None
                return new_event(LUnsub, (origin, args[first], args[first + 1], queue))
            raise _silent(f"LS- arguments: {arg!r}")
        if op is OP_ASUB or op is OP_AUNSUB:
            if count != 1:
                raise _silent(f"{op} arguments: {arg!r}")
            return new_event(ASub if op is OP_ASUB else AUnsub, (args[0],))
        return super()._decode_other(op, arg)
