"""The server's JetStream: which accounts have it, the in-process receivers of the API and
of each stream in those accounts' sublists, the replies, and storage's start and stop.

As the system account's internal client (system.py), every receiver here is a `Bridge` of
the delivery core: a subscription in an account's sublist whose "client" is handed each
message as it is, in the publisher's delivery. A message a stream captures is checked and
given its sequence right there (nothing awaited between reading the PUB and storing it);
its acknowledgement is published once it is stored: at once for memory storage, when the
store worker has committed it for file storage. API requests, pull requests, acks and
direct gets are answered right there too, through a `Dispatcher` of the account's
internal sender (as a bridge delivers into another account), so a reply leaves with the
requester's read, by the reader's direct send. (Deferring them to `run_sync_soon`, as the
system account's services do, costs a trip through the run loop's wakeup socket: about
1 ms a request, measured.) A handler's failure is contained and reported as JetStream's.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from .. import defaults
from ..core.dispatch import Bridge, Dispatcher, pick
from ..core.sublist import Subscription
from ..protocol import encode
from ..protocol.encode import go_json
from ..tracing import InternalSender, _Totals
from . import errors
from .account import JSAccount
from .api import NEXT_PREFIX, SUBJECTS, Api
from .errors import ApiError
from .stream import msg_size

if TYPE_CHECKING:
    from ..server import Server
    from .stream import Stream

_NS = 1_000_000_000
#: How often the periodic work runs (max_age, ack waits, pull expiry, consumer state).
TICK_INTERVAL = 0.25


class _Receiver(Bridge):
    """A subscription's receiver without a socket (the API, or one stream)."""

    cid = None
    headers = True
    pub_check = None

    def __init__(self, on_message) -> None:
        self.on_message = on_message
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0

    def deliver(self, subject: bytes, reply: bytes, header_size: int, data: bytes,
                source) -> int:  # fmt: skip
        if header_size > 0:
            hdr, payload = data[:header_size], data[header_size:-2]
        else:
            hdr, payload = b"", data[:-2]
        self.on_message(subject, reply, hdr, payload)
        return 1

    def remove_sub(self, sub) -> None:
        sub.closed = True


class JetStream:
    """JetStream of one server (`Server.jetstream`, None when not enabled)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        options = server.options
        js = options.jetstream
        self.options = js
        self.domain = js.domain
        base = Path(js.store_dir or options.store_dir or Path(tempfile.gettempdir()) / "nats")
        #: nats-server keeps its files under <store_dir>/jetstream.
        self.store_dir = base / "jetstream"
        self.max_memory = js.max_memory_store if js.max_memory_store >= 0 else _default_memory()
        self.max_store = js.max_file_store if js.max_file_store >= 0 else defaults.JS_MAX_FILE_STORE
        self.api = Api(self)
        self.accounts: dict[str, JSAccount] = {}
        self._dispatchers: dict[str, Dispatcher] = {}
        #: account -> stream name -> its subscriptions.
        self._stream_subs: dict[tuple[str, str], list[Subscription]] = {}
        self.worker = None
        #: Set once the stored streams are loaded (/healthz is ok from then on).
        self.started = False
        self.stopped = False
        self._scope = trio.CancelScope()
        for name, limits in _enabled_accounts(options):
            self.accounts[name] = JSAccount(name, limits, self.store_dir,
                                            sync_always=js.sync_always)  # fmt: skip
        system = server.accounts.system_account
        for account in server.accounts:
            if account.name == system:
                continue
            receiver = _Receiver(lambda s, r, h, p, name=account.name: self._on_api(name, s, r, h, p))
            for number, subject in enumerate(SUBJECTS, 1):
                self._subscribe(account.name, receiver, subject, f"js{number}")
            js_account = self.accounts.get(account.name)
            if js_account is not None:
                on_next = _Receiver(lambda s, r, h, p, a=js_account: self._on_next(a, s, r, p))
                self._subscribe(account.name, on_next, NEXT_PREFIX + "*.*", "jsnext")
                on_ack = _Receiver(lambda s, r, h, p, a=js_account: self._on_ack(a, s, r, p))
                self._subscribe(account.name, on_ack, "$JS.ACK.>", "jsack")

    def _subscribe(self, account: str, receiver, subject: str, sid: str) -> Subscription:
        sublist = self.server.accounts[account].sublist
        sub = Subscription(receiver, subject.encode(), None, sid.encode())
        sublist.insert_internal(sub)  # (not counted in /subsz and /varz)
        return sub

    def _unsubscribe(self, account: str, subs: list[Subscription]) -> None:
        sublist = self.server.accounts[account].sublist
        for sub in subs:
            sublist.remove_internal(sub)

    # --- lifecycle ---------------------------------------------------------------------

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Load the stored streams, then expire messages until cancelled; the store worker
        finishes what is queued before this returns."""
        from .storage import StoreWorker

        log = self.server.log
        log.info("Starting JetStream")
        started = time.monotonic()
        self.worker = StoreWorker(trio.lowlevel.current_trio_token())
        try:
            with self._scope:
                await self._run(started, task_status)
        finally:
            self.stopped = True
            with trio.CancelScope(shield=True):
                await self.worker.aclose()

    async def prepare(self) -> None:
        """The storage directory, made and checked as nats-server does before it starts:
        StartupError with its words if it cannot be used."""
        from ..errors import StartupError

        def check() -> None:
            try:
                self.store_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StartupError(f"could not create storage directory - {error}") from None
            if not self.store_dir.is_dir():
                raise StartupError("storage directory is not a directory")
            if not os.access(self.store_dir, os.W_OK):
                raise StartupError("storage directory is not writable")

        await trio.to_thread.run_sync(check)
        if not (self.options.store_dir or self.server.options.store_dir):
            self.server.log.warning(
                "Temporary storage directory used, data could be lost on system reboot"
            )

    def close(self) -> None:
        """Stop (at shutdown): the store worker commits what is queued, then ends."""
        self._scope.cancel()

    async def _run(self, started: float, task_status) -> None:
        log = self.server.log
        await self._load()
        log.info(f"    Max Memory:      {_size(self.max_memory)}")
        log.info(f"    Max Storage:     {_size(self.max_store)}")
        log.info(f'    Store Directory: "{self.store_dir}"')
        if self.domain:
            log.info(f"    Domain:          {self.domain}")
        log.info(f"    API Level:       {defaults.JS_API_LEVEL}")
        log.info(f"Took {_elapsed(time.monotonic() - started)} to start JetStream")
        self.started = True
        task_status.started()
        interval = self.options.sync_interval
        next_sync = trio.current_time() + interval
        while True:
            await trio.sleep(TICK_INTERVAL)
            self._tick()
            if not self.options.sync_always and trio.current_time() >= next_sync:
                next_sync = trio.current_time() + interval
                self.worker.checkpoint(self._file_dbs())

    def _file_dbs(self):
        return [s.db for a in self.accounts.values() for s in a.streams.values() if s.db]

    async def _load(self) -> None:
        """Every stream found under store_dir, for the accounts with JetStream."""
        from .storage import StreamDB

        for account in self.accounts.values():
            streams = account.store_dir / account.name / "streams"
            if not streams.is_dir():
                continue
            for directory in sorted(streams.iterdir()):
                if not (directory / "stream.db").exists():
                    continue
                db = StreamDB(directory, sync_always=account.sync_always)
                stored = await self.worker.call(db.load)
                meta = stored["meta"]
                if "config" not in meta:
                    continue
                config = meta["config"]
                stream = account.new_stream(config, meta.get("created", 0))
                stream.db = db
                stream.restore(stored["msgs"], meta.get("last_seq", 0))
                for name, record, state in stored["consumers"]:
                    consumer = self.create_consumer(account, stream, record["config"],
                                                    durable=record["durable"], name=name,
                                                    created_ns=record["created"])  # fmt: skip
                    consumer.restore(state, time.monotonic())
                self._capture(account, stream)
                self.server.log.info(f"  Restored {len(stream.msgs)} messages for stream "
                                     f"'{account.name} > {stream.name}'")  # fmt: skip

    # --- streams -----------------------------------------------------------------------

    def create_stream(self, account: JSAccount, config: dict) -> Stream:
        self.reserve(account, config)
        stream = account.new_stream(config, time.time_ns())
        if stream.db is not None:
            db, created = stream.db, stream.created_ns
            self.worker.submit(db, lambda conn: (db.put_meta(conn, "config", config),
                                                 db.put_meta(conn, "created", created)))  # fmt: skip
        self._capture(account, stream)
        return stream

    def update_stream(self, account: JSAccount, stream: Stream, config: dict) -> None:
        stream.config = config
        removed = stream.enforce_limits(time.time_ns())
        if stream.db is not None:
            db = stream.db
            self.worker.submit(db, lambda conn: db.put_meta(conn, "config", config))
        self.removed(stream, removed)
        self._unsubscribe(account.name, self._stream_subs.pop((account.name, stream.name), []))
        self._capture(account, stream)

    def delete_stream(self, account: JSAccount, stream: Stream) -> None:
        del account.streams[stream.name]
        stream.deleted = True
        for consumer in stream.consumers.values():
            consumer.close()
        self._unsubscribe(account.name, self._stream_subs.pop((account.name, stream.name), []))
        if stream.db is not None:
            db = stream.db
            self.worker.submit(None, lambda _conn: db.drop())

    def removed(self, stream: Stream, seqs: list[int]) -> None:
        """Messages the stream dropped (limits, purge, delete): gone from its database too."""
        if not seqs or stream.db is None:
            return
        db, last = stream.db, stream.last_seq
        self.worker.submit(db, lambda conn: (db.delete(conn, seqs),
                                             db.put_meta(conn, "last_seq", last)))  # fmt: skip

    def _capture(self, account: JSAccount, stream: Stream) -> None:
        """The stream's subjects, subscribed in its account by its receiver (and with
        allow_direct, its DIRECT.GET subjects)."""
        receiver = _Receiver(lambda s, r, h, p: self._on_publish(account, stream, s, r, h, p))
        subs = [self._subscribe(account.name, receiver, subject, f"stream:{stream.name}")
                for subject in stream.config["subjects"]]  # fmt: skip
        if stream.config["allow_direct"]:
            direct = _Receiver(lambda s, r, h, p: self._on_direct(account, stream, s, r, p))
            prefix = f"$JS.API.DIRECT.GET.{stream.name}"
            subs += [self._subscribe(account.name, direct, prefix, "jsdirect"),
                     self._subscribe(account.name, direct, prefix + ".>", "jsdirect")]  # fmt: skip
        self._stream_subs[(account.name, stream.name)] = subs

    def _on_direct(self, account: JSAccount, stream: Stream, subject: bytes, reply: bytes,
                   payload: bytes) -> None:  # fmt: skip
        """DIRECT.GET: the message itself in reply, with headers naming the stream, subject,
        sequence and time (nats-server's); `404 Message Not Found` if there is none."""
        self._uncount(len(payload))
        if not reply:
            return
        prefix = len(f"$JS.API.DIRECT.GET.{stream.name}")
        last_for = subject[prefix + 1:].decode("utf-8", "replace")
        self._contained(self._serve_direct, account.name, stream, reply, payload, last_for)

    def _serve_direct(self, account: str, stream: Stream, reply: bytes, payload: bytes,
                      last_for: str) -> None:  # fmt: skip
        from .api import direct_get

        hdr, data = direct_get(stream, payload, last_for)
        self._deliver(account, reply, b"", hdr, data)

    def _tick(self) -> None:
        """The periodic work: max_age, consumers' ack waits and request expiry, inactive
        ephemeral consumers, consumer state written to the store."""
        now = time.time_ns()
        clock = time.monotonic()
        for account in self.accounts.values():
            for stream in list(account.streams.values()):
                if stream.config["max_age"]:
                    self.removed(stream, stream.expire(now))
                for consumer in list(stream.consumers.values()):
                    consumer.tick(clock)
                    if consumer.push is not None:
                        active = consumer.interest(consumer.push.reply)
                    else:
                        active = bool(consumer.waiting)
                    threshold = consumer.config.get("inactive_threshold", 0) / _NS
                    if active:
                        consumer.last_activity = clock
                    elif threshold and clock - consumer.last_activity > threshold:
                        self.delete_consumer(consumer)
                    elif consumer.dirty:
                        self._save_consumer(consumer)

    # --- consumers -----------------------------------------------------------------------

    def create_consumer(self, account: JSAccount, stream: Stream, config: dict, *,
                        durable: bool, created_ns: int = 0, name: str = ""):  # fmt: skip
        from .consumer import Consumer

        owner = account.name
        consumer = Consumer(stream, config, created_ns or time.time_ns(),
                            lambda to, reply, hdr, data, subject=None: self._deliver(
                                owner, to, reply, hdr, data, subject),
                            durable=durable, name=name)  # fmt: skip
        stream.consumers[consumer.name] = consumer
        if stream.config["retention"] != "limits":
            consumer.on_acked = lambda seqs: self._retire(stream, seqs)
        if consumer.push is not None:
            dispatch = self._dispatcher(owner)
            consumer.interest = lambda subject: not dispatch.plan(subject).empty
        if not created_ns:
            consumer.start()
            self._save_consumer(consumer)
            if consumer.push is not None:
                consumer.pump(time.monotonic())
        return consumer

    def update_consumer(self, consumer, config: dict) -> None:
        consumer.config = config
        self._save_consumer(consumer)
        consumer.pump(time.monotonic())  # (a pause lifted, a larger max_ack_pending...)

    def delete_consumer(self, consumer) -> None:
        consumer.close()
        stream = consumer.stream
        stream.consumers.pop(consumer.name, None)
        if stream.db is not None:
            db, name = stream.db, consumer.name
            self.worker.submit(db, lambda conn: db.delete_consumer(conn, name))

    def _retire(self, stream: Stream, seqs: list[int]) -> None:
        """Messages a consumer is done with: gone from a work-queue stream at once, from an
        interest stream once every consumer whose filter takes them is done with them."""
        if stream.config["retention"] == "workqueue":
            gone = [seq for seq in seqs if stream.delete(seq)]
        else:
            gone = []
            for seq in seqs:
                msg = stream.msgs.get(seq)
                if msg is None:
                    continue
                interested = [c for c in stream.consumers.values() if c.matches(msg[0])]
                if all(c.done_with(seq) for c in interested) and stream.delete(seq):
                    gone.append(seq)
        self.removed(stream, gone)

    def _save_consumer(self, consumer) -> None:
        """A consumer's state (and configuration) to the stream's database."""
        consumer.dirty = False
        stream = consumer.stream
        if stream.db is None or consumer.config.get("mem_storage"):
            return
        db, name = stream.db, consumer.name
        record = {"config": consumer.config, "created": consumer.created_ns,
                  "durable": consumer.durable}  # fmt: skip
        state = consumer.state()
        self.worker.submit(db, lambda conn: db.put_consumer(conn, name, record, state))

    def _on_next(self, account: JSAccount, subject: bytes, reply: bytes, payload: bytes) -> None:
        """`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`: a pull request, served by the
        consumer (answered after the requester's delivery, as API requests are)."""
        self._uncount(len(payload))
        if not reply:
            return
        tokens = subject.decode("utf-8", "replace").split(".")
        stream = account.streams.get(tokens[-2])
        consumer = stream.consumers.get(tokens[-1]) if stream is not None else None
        if consumer is None:
            return  # (nats-server: no answer; the client's request times out)
        self._contained(self._serve_next, consumer, reply, payload)

    def _serve_next(self, consumer, reply: bytes, payload: bytes) -> None:
        if not consumer.deleted:
            consumer.next_request(reply, payload, time.monotonic())

    def _on_ack(self, account: JSAccount, subject: bytes, reply: bytes, payload: bytes) -> None:
        """`$JS.ACK.<stream>.<consumer>.<deliveries>.<stream seq>.<consumer seq>.<ts>.<pending>`."""
        self._uncount(len(payload))
        tokens = subject.decode("utf-8", "replace").split(".")
        if len(tokens) == 9:
            stream_name, name, seq = tokens[2], tokens[3], tokens[5]
        elif len(tokens) >= 12:  # the v2 form: domain and account hash first
            stream_name, name, seq = tokens[4], tokens[5], tokens[7]
        else:
            return
        stream = account.streams.get(stream_name)
        consumer = stream.consumers.get(name) if stream is not None else None
        if consumer is None or not seq.isdigit():
            return
        kind = payload.split(b" ", 1)[0].strip() if payload else b""
        self._contained(self._serve_ack, account.name, consumer, int(seq), kind, payload, reply)

    def _serve_ack(self, account: str, consumer, seq: int, kind: bytes, payload: bytes,
                   reply: bytes) -> None:  # fmt: skip
        if consumer.deleted:
            return
        consumer.ack(seq, kind, payload, time.monotonic())
        if kind == b"+NXT" and reply:
            consumer.next_request(reply, payload[4:], time.monotonic())
        elif reply:  # a double acknowledgement (ack_sync) waits for this empty reply
            self._send(account, reply, b"")

    def _deliver(self, account: str, to: bytes, reply: bytes, hdr: bytes, data: bytes,
                 subject: bytes | None = None) -> None:  # fmt: skip
        """A consumer's message (or status) to the subscribers of `to`, its MSG line naming
        `subject` (the stream message's own, as nats-server delivers them)."""
        dispatch = self._dispatcher(account)
        plan = dispatch.plan(to)
        targets = list(plan.plain) + [t for t in map(pick, plan.queues) if t is not None]
        shown = subject or to
        size = len(hdr) + len(data)
        body = hdr + data + b"\r\n"
        delivered = 0
        for sub, outbound, _head, hhead in targets:
            client = sub.client
            if hdr and hhead is not None:
                head = encode.hmsg_head(shown, sub.sid)
                tail = encode.hmsg_tail(reply, len(hdr), size)
                outbound.write_msg(head, tail, body, len(head) + len(tail) + len(body))
            else:
                head = encode.msg_head(shown, sub.sid)
                tail = encode.msg_tail(reply, len(data))
                outbound.write_msg(head, tail, data + b"\r\n", len(head) + len(tail) + len(data) + 2)
            client.out_msgs += 1
            client.out_bytes += size
            sub.delivered += 1
            delivered += 1
            if sub.max_msgs and sub.delivered >= sub.max_msgs:
                client.remove_sub(sub)
        stats = self.server.stats
        stats.out_msgs += delivered
        stats.out_bytes += delivered * size

    def _dispatcher(self, account: str) -> Dispatcher:
        dispatch = self._dispatchers.get(account)
        if dispatch is None:
            sublist = self.server.accounts[account].sublist
            dispatch = Dispatcher(InternalSender(), sublist, _Totals(), trio.current_time)
            self._dispatchers[account] = dispatch
        return dispatch

    # --- messages in -------------------------------------------------------------------

    def _on_publish(self, account: JSAccount, stream: Stream, subject: bytes, reply: bytes,
                    hdr: bytes, payload: bytes) -> None:  # fmt: skip
        """A message the stream captures, in the publisher's delivery: stored now, its
        acknowledgement published once stored (no reply: no acknowledgement)."""
        if not stream.deleted:
            self._contained(self._store, account, stream, subject, reply, hdr, payload)

    def _store(self, account: JSAccount, stream: Stream, subject: bytes, reply: bytes,
               hdr: bytes, payload: bytes) -> None:  # fmt: skip
        name = account.name
        subject_text = subject.decode("utf-8", "replace")
        try:
            msg_id, duplicate = stream.check(subject_text, hdr, payload)
            if duplicate is not None:
                self._ack(name, reply, self._pub_ack(stream, duplicate, duplicate=True))
                return
            self._check_resources(account, stream, msg_size(stream.storage, subject_text, hdr, payload))
            now = time.time_ns()
            seq, removed = stream.store(subject_text, hdr, payload, now, msg_id)
        except ApiError as error:
            self._ack(name, reply, self._pub_error(stream, error))
            return
        if stream.config["retention"] == "interest" and not any(
                c.matches(subject_text) for c in stream.consumers.values()):  # fmt: skip
            stream.delete(seq)  # (nobody to keep it for: it is acknowledged, then gone)
            removed = [*removed, seq]
        if stream.consumers:
            clock = time.monotonic()
            for consumer in list(stream.consumers.values()):
                if consumer.waiting or consumer.push is not None:
                    consumer.pump(clock)
        ack = self._pub_ack(stream, seq) if reply else b""
        if stream.db is None:
            self._ack(name, reply, ack)
            return
        db, last = stream.db, stream.last_seq

        def write(conn):
            db.insert(conn, seq, subject_text, hdr, payload, now)
            if removed:
                db.delete(conn, removed)
                db.put_meta(conn, "last_seq", last)

        def stored(error):
            if error is not None:
                failed = errors.store_failed(str(error))
                self._send(name, reply, self._pub_error(stream, failed))
            else:
                self._send(name, reply, ack)

        self.worker.submit(db, write, stored if reply else None)

    def _check_resources(self, account: JSAccount, stream: Stream, size: int) -> None:
        """The account's and the server's storage limits for one more message of `size`
        (a stream bounded by its own max_bytes with discard old makes room for it)."""
        if stream.config["discard"] == "old" and stream.config["max_bytes"] >= 0:
            return
        memory = stream.storage == "memory"
        limits = account.limits
        account_limit = limits.max_memory if memory else limits.max_store
        used_memory, used_storage = account.usage()
        if account_limit >= 0 and (used_memory if memory else used_storage) + size > account_limit:
            raise errors.ApiError(400, 10002, "resource limits exceeded for account")
        server_limit = self.max_memory if memory else self.max_store
        totals = self.totals()
        if (totals["memory"] if memory else totals["storage"]) + size > server_limit:
            raise errors.ApiError(503, 10023, "insufficient resources")

    def reserve(self, account: JSAccount, config: dict) -> None:
        """A new stream's max_bytes must fit the account's and the server's limits
        (nats-server reserves it)."""
        wanted = config["max_bytes"]
        if wanted <= 0:
            return
        memory = config["storage"] == "memory"
        limits = account.limits
        account_limit = limits.max_memory if memory else limits.max_store
        reserved = sum(s.config["max_bytes"] for a in self.accounts.values()
                       for s in a.streams.values()
                       if s.storage == config["storage"] and s.config["max_bytes"] > 0)  # fmt: skip
        if account_limit >= 0 and wanted > account_limit:
            raise errors.ApiError(400, 10002, "resource limits exceeded for account")
        if reserved + wanted > (self.max_memory if memory else self.max_store):
            if memory:
                raise errors.ApiError(500, 10028, "insufficient memory resources available")
            raise errors.ApiError(500, 10047, "insufficient storage resources available")

    def _pub_ack(self, stream: Stream, seq: int, *, duplicate: bool = False) -> bytes:
        """nats-server's PubAck, written as it writes it (a template, not json.Marshal)."""
        head = f'{{"stream":{_quote(stream.name)},'
        if self.domain:
            head += f'"domain":{_quote(self.domain)},'
        if duplicate:
            return f'{head}"seq":{seq},"duplicate": true}}'.encode()
        return f'{head}"seq":{seq}}}'.encode()

    def _pub_error(self, stream: Stream, error: ApiError) -> bytes:
        body = {"error": error.json(), "stream": stream.name, "seq": 0}
        if self.domain:
            body["domain"] = self.domain
        return go_json(body).encode()

    def _ack(self, account: str, reply: bytes, body: bytes) -> None:
        """An acknowledgement sent at once (nothing without a reply)."""
        if reply:
            self._send(account, reply, body)

    def _uncount(self, size: int) -> None:
        """A request to an internal receiver is not counted as sent (as nats-server, and the
        system account's client here)."""
        stats = self.server.stats
        stats.out_msgs -= 1
        stats.out_bytes -= size

    def _contained(self, handler, *args) -> None:
        """Run a handler inside the publisher's delivery. A failure is reported as an
        internal error of JetStream's and goes no further: not the publisher's fault."""
        try:
            handler(*args)
        except Exception as exc:
            from ..containment import report

            report(self.server.log, self.server.stats, exc, "Internal error in JetStream")

    # --- the API -----------------------------------------------------------------------

    def _on_api(self, account: str, subject: bytes, reply: bytes, hdr: bytes, payload: bytes) -> None:
        self._uncount(len(hdr) + len(payload))
        if not reply:
            return
        self._answer(account, subject.decode("utf-8", "replace"), reply, payload)

    def _answer(self, account: str, subject: str, reply: bytes, payload: bytes) -> None:
        """One API request, answered at once. A failure is contained here and reported as
        an internal error; the requester gets nats-server's 500 shape."""
        try:
            body = self.api.handle(self.accounts.get(account), subject, payload)
        except Exception as exc:
            from ..containment import report

            report(self.server.log, self.server.stats, exc, "Internal error in a JetStream request")
            body = {"error": {"code": 500, "description": "internal error"}}
        if body is not None:
            self._send(account, reply, go_json(body).encode())

    def _send(self, account: str, subject: bytes, body: bytes) -> None:
        """A message from the account's internal client (counted sent, not received)."""
        dispatch = self._dispatcher(account)
        data = body + b"\r\n"
        delivered = dispatch.message(dispatch.plan(subject), subject, b"", -1, data)
        stats = self.server.stats
        stats.out_msgs += delivered
        stats.out_bytes += delivered * len(body)

    # --- figures -----------------------------------------------------------------------

    def varz(self) -> dict:
        from .figures import varz_section

        return varz_section(self.server)

    def health_problem(self) -> str:
        from .figures import healthz_problem

        return healthz_problem(self.server)

    def totals(self) -> dict:
        """Memory and storage used, streams, consumers, messages, bytes; API figures."""
        totals = {"memory": 0, "storage": 0, "streams": 0, "consumers": 0, "messages": 0,
                  "bytes": 0, "api_total": 0, "api_errors": 0}  # fmt: skip
        for account in self.accounts.values():
            memory, storage = account.usage()
            totals["memory"] += memory
            totals["storage"] += storage
            totals["streams"] += len(account.streams)
            totals["consumers"] += account.consumer_count()
            totals["messages"] += sum(len(s.msgs) for s in account.streams.values())
            totals["bytes"] += memory + storage
            totals["api_total"] += account.api_total
            totals["api_errors"] += account.api_errors
        return totals


def _enabled_accounts(options):
    """The accounts with JetStream: those whose `jetstream` is set; with no account
    configured besides the system account, the global account (as nats-server)."""
    from ..options import AccountJetStream

    system = options.system_account
    configured = [a for a in options.accounts if a.name != system]
    if not configured:
        yield "$G", AccountJetStream()
        return
    for account in configured:
        if account.jetstream is not None:
            yield account.name, account.jetstream


def _quote(text: str) -> str:
    return go_json(text)


def _default_memory() -> int:
    """75% of the machine's memory, as nats-server's default max_memory_store."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return pages * size * 3 // 4
    except (ValueError, OSError, AttributeError):
        return 1 << 30


def _size(value: int) -> str:
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return f"{value} B"


def _elapsed(seconds: float) -> str:
    return f"{seconds * 1000:.6f}ms"
