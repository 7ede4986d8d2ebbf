"""One leaf node connection: handshake, account binding, interest both ways, messages.

Either side may have dialed. The side that dialed (a `remote`) is the leaf, the "spoke",
unless its remote says `hub: true`; the side that accepted is the hub, unless the peer's
CONNECT says `is_hub`. Either way the connection is bound to one account on each side:
the remote's `account` here, the account its credentials name on the hub.

The hub sends its INFO at once (with a nonce, `client_id`, `leafnode_urls`, `compression:
off`, `info_on_connect`); the leaf answers with CONNECT and, once the hub's second INFO
(`connect_info`) says it is bound, its interest; the hub sends its interest right after
accepting the CONNECT. From then on each side sends LS+/LS- as interest changes and LMSG
(HMSG) for messages the other side has interest in, naming the queue groups it picked.

A message from the peer goes through this connection's `Dispatcher` like a route's: local
subscribers, one member of each queue group the line names, and on to other servers as
nats-server sends it (the hub side forwards to routes and other leaves; the spoke side to
leaves it is the hub of, never to routes). Loops are detected with each account's `$LDS.`
subject: seeing our own come back closes the connection with nats-server's "Loop detected"
error, and the side that dialed waits 30 s before dialing again.
"""

from __future__ import annotations

import hmac
import math
import random
from typing import TYPE_CHECKING

import trio

from .. import defaults, errors, tls
from ..auth.nkeys import new_nonce
from ..auth.permissions import CompiledPermissions
from ..auth.users import Failure, Identity, PendingPassword
from ..connection import Connection
from ..core.dispatch import Dispatcher
from ..core.sublist import InvalidSubject, Subscription
from ..errors import ProtocolError, Reason
from ..options import Permissions, SubjectPermission
from ..protocol import encode
from ..protocol.events import Connect, Err, Info, Ping, Pong
from ..protocol.gojson import decode_struct
from ..protocol.leaf import (
    LEAF_CONNECT,
    LOOP_DETECTION_PREFIX,
    LeafMsg,
    LeafParser,
    LeafSub,
    LeafUnsub,
    connect_line,
    lmsg_line,
    loop_detected,
    version_at_least,
)
from ..protocol.structs import CLIENT_OPTS, INFO
from ..protocol.subjects import is_valid_subject
from .credentials import CredentialsError
from .interest import LeafInterest

if TYPE_CHECKING:
    from .nodes import Leafnodes, Remote

#: nats-server's close reasons that have no route equivalent.
WRONG_PORT = "Wrong Port"
MIN_VERSION = "Minimum Version Required"
CLUSTER_NAMES_IDENTICAL = "Cluster Names Identical"


class LeafConnection(Connection):
    id_label = "lid"
    kind = "Leafnode"
    #: A server target in delivery plans (one copy per message, queue groups named)...
    is_route = True
    #: ... spoken to with LMSG and bound to one account.
    is_leaf = True
    pending_bounded = False
    #: Message tracing stops at leaf connections (the trace notes them as not supporting it).
    traces = False

    def __init__(self, nodes: Leafnodes, stream: trio.abc.Stream, lid: int, peer: tuple[str, int],
                 *, remote: Remote | None = None) -> None:  # fmt: skip
        server = nodes.server
        options = server.options
        super().__init__(
            stream,
            lid,
            peer=peer,
            max_pending=options.max_pending,
            write_deadline=nodes.options.write_deadline or options.write_deadline,
            logger=server.log,
            stats=server.stats,
        )
        self.nodes = nodes
        self.server = server
        self.write_timeout_policy = "close" if nodes.options.write_timeout == "close" else "retry"
        #: The remote we dialed (None: the peer dialed us).
        self.remote = remote
        self.solicited = remote is not None
        #: The spoke (leaf) side of the connection: we dialed it, and are not its hub.
        self.spoke = self.solicited and not remote.options.hub
        self.parser = LeafParser(max_control_line=options.max_control_line,
                                 max_payload=options.max_payload,
                                 require_connect=not self.solicited)  # fmt: skip
        #: The account the connection is bound to (a remote's at once; an accepted leaf's
        #: once its CONNECT passes), its sublist, and the dispatcher of its messages.
        self.account = None
        self.sublist = None
        self.dispatch: Dispatcher | None = None
        self.headers = False  # the peer takes HMSG
        self.remote_id = self.remote_name = self.remote_cluster = ""
        self.remote_version = ""
        #: The account the peer bound its side to (its CONNECT's remote_account).
        self.remote_account = ""
        self.remote_info: dict = {}
        self.connect_opts: dict = {}
        self.info_received = False
        self.registered = False
        self.nonce = "" if self.solicited else new_nonce()
        #: What the peer has been told of our interest, and its own interest by LS+ key.
        self.interest = LeafInterest()
        self.remote_subs: dict[bytes, Subscription] = {}
        #: A remote's deny_imports / deny_exports (None: none).
        self.permissions = _remote_permissions(remote) if remote is not None else None
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        self.pings_out = 0
        self.rtt = 0.0
        self.rtt_start = 0.0
        self.slow_consumer_events = 0
        self._pending_account: str | None = None
        if self.solicited:
            self.account = server.accounts[remote.account]
            self.sublist = self.account.sublist
            self._make_dispatcher()
            # The hub's INFO must come within first_info_timeout.
            self.connect_deadline = self.start_time + remote.options.first_info_timeout
        else:
            self.connect_deadline = self.start_time + nodes.auth_timeout
        first = defaults.FIRST_ROUTE_PING_INTERVAL
        self.next_ping = min(self.start_time + first + random.uniform(0, first / 5),
                             self.connect_deadline)  # fmt: skip

    def _make_dispatcher(self) -> None:
        self.dispatch = Dispatcher(self, self.sublist, self.server.stats, trio.current_time,
                                   inbound=True, tracer=None)  # fmt: skip
        # The hub side passes the leaf's messages on to the hub's cluster; a spoke never
        # sends what its hub gave it over routes.
        self.dispatch.to_routes = not self.spoke

    # --- TLS and greeting -------------------------------------------------------------------

    #: Bytes read before the tasks started: the hub's INFO, read in plaintext before TLS.
    _preread = b""
    _info_sent = False

    async def upgrade(self) -> None:
        """TLS, as nats-server: the hub sends its INFO in plaintext, then both handshake (the
        leaf dials with TLS when its remote has a `tls` block, a `tls://` URL, or the hub's
        INFO says `tls_required`)."""
        if self.solicited:
            await self._upgrade_solicited()
        elif self.nodes.tls_server is not None:
            await self._upgrade_accepted()

    async def _upgrade_accepted(self) -> None:
        info = self.nodes.info_fields(self) | {"nonce": self.nonce}
        try:
            await self.stream.send_all(encode.info(info))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.close(Reason.WRITE_ERROR, flush=False)
            return
        self._info_sent = True
        await self._handshake(self.nodes.tls_server, self.nodes.options.tls, server_side=True)

    async def _upgrade_solicited(self) -> None:
        remote = self.remote
        with trio.move_on_after(remote.options.first_info_timeout):
            try:
                while b"\n" not in self._preread and len(self._preread) < defaults.READ_SIZE:
                    data = await self.stream.receive_some(defaults.READ_SIZE)
                    if not data:
                        break
                    self._preread += data
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                self.close(Reason.READ_ERROR, flush=False)
                return
        line = self._preread.split(b"\n", 1)[0]
        wants_tls = b'"tls_required":true' in line.replace(b" ", b"")
        context = self.nodes.remote_tls_context(remote)
        if context is None and wants_tls:
            context = self.nodes.default_tls_context()
        if context is None:
            return
        if self._preread.count(b"\n") and self._preread.index(b"\n") + 1 < len(self._preread):
            self.log.error("TLS handshake error: plaintext after the hub's INFO")
            self.close(Reason.TLS_HANDSHAKE, flush=False)
            return
        await self._handshake(context, remote.options.tls, server_side=False,
                              server_hostname=remote.current.host)  # fmt: skip

    async def _handshake(self, context, opts, *, server_side: bool, server_hostname=None) -> None:
        timeout = tls.handshake_timeout(opts) if opts is not None else defaults.TLS_TIMEOUT
        try:
            self.stream = await tls.handshake(
                self.stream, context, timeout, server_side=server_side,
                server_hostname=server_hostname,
                pinned_certs=opts.pinned_certs if opts is not None else (),
            )  # fmt: skip
        except tls.HandshakeError as error:
            (self.log.debug if error.probe else self.log.error)(
                f"TLS leafnode handshake error: {error}"
            )
            self.close(Reason.TLS_HANDSHAKE, flush=False)
            return
        self.outbound.sock = None  # every byte must now go through the TLS stream
        self.log.debug("TLS handshake complete")

    def on_start(self) -> None:
        if self.solicited:
            self.log.info(f"Leafnode connection created for account: {self.account.name}")
            preread, self._preread = self._preread, b""
            if preread:
                try:
                    self.process(preread)
                except ProtocolError as error:
                    self.on_protocol_error(error)
            return
        if not self._info_sent:
            self.outbound.write(encode.info(self.nodes.info_fields(self) | {"nonce": self.nonce}))

    # --- reading ----------------------------------------------------------------------------

    def process(self, data: bytes) -> None:
        self.last_activity = trio.current_time()
        self._dispatch(iter(self.parser.feed(data)))

    def resume(self) -> None:
        """A bcrypt check of an accepted leaf's CONNECT is done: bind it, or refuse it."""
        account, self._pending_account = self._pending_account, None
        if account is None:
            self._refuse_credentials()
            return
        self._bind(account)
        if self.closed_reason is None and self._paused_events is not None:
            events, self._paused_events = self._paused_events, None
            self._dispatch(events)

    _paused_events = None

    def _dispatch(self, events) -> None:
        for event in events:
            kind = type(event)
            if kind is LeafMsg:
                self._on_msg(event)
            elif kind is LeafSub:
                self._on_sub(event)
            elif kind is LeafUnsub:
                self._on_unsub(event)
            elif kind is Ping:
                self.outbound.write(encode.PONG)
            elif kind is Pong:
                self.pings_out = 0
                if self.rtt_start:
                    self.rtt = trio.current_time() - self.rtt_start
            elif kind is Info:
                self._on_info(event)
            elif kind is Connect:
                self._on_connect(event)
                if self.awaiting is not None:  # bcrypt: the rest waits for its verdict
                    self._paused_events = events
                    return
            elif kind is Err:
                self._on_err(event)
            if self.closed_reason is not None:
                return

    def on_protocol_error(self, error: ProtocolError) -> None:
        """As nats-server: an unknown op or a limit gets its -ERR; a malformed line of a
        known op closes silently (logged); each as a Protocol Violation."""
        if error.reason == Reason.AUTH_VIOLATION:
            self.log.error("authentication error")
        else:
            self.log.error(f"Leafnode parser ERROR: {error}")
        if error.err is not None:
            self.outbound.write(encode.err(error.err))
        self.close(error.reason)

    def _on_err(self, event: Err) -> None:
        """The peer's -ERR: logged; "Loop detected" also closes and delays the next dial
        (nats-server keeps the connection otherwise; the peer closes it if it must)."""
        text = event.text.decode(errors="replace")
        self.log.error(f"Leafnode Error {text}")
        if "Loop detected" in text:
            self._delay_next_dial()
            self.close(Reason.PROTOCOL_VIOLATION, flush=False)
        elif "remote leafnode has same cluster name" in text or "minimum version" in text:
            self._delay_next_dial()

    # --- the handshake: the side that dialed ------------------------------------------------

    def _on_info(self, event: Info) -> None:
        try:
            info = decode_struct(event.raw, INFO)
        except ValueError as error:
            self._undecodable("INFO", error)
            return
        if not self.solicited:
            return  # an accepting side does not act on a leaf's INFO (no compression here)
        first = not self.info_received
        if first:
            if not info.get("client_id") or "leafnode_urls" not in info:
                self.log.error("attempted to connect to wrong port")
                self.close(WRONG_PORT, flush=False)
                return
            if " " in info.get("cluster", ""):
                self._refuse(errors.CLUSTER_NAME_SPACES, Reason.PROTOCOL_VIOLATION)
                return
            self.info_received = True
            self.connect_deadline = math.inf
            self.remote_id = info.get("server_id", "")
            self.remote_name = info.get("server_name", "") or self.remote_id
            self.remote_cluster = info.get("cluster", "")
            self.remote_version = info.get("version", "")
            self.nonce = info.get("nonce", "")
            self.headers = info.get("headers", False) and not self.server.options.no_header_support
            self.parser.headers = self.headers
            self.remote_info = info
            self.remote.discovered(info.get("leafnode_urls") or ())
            try:
                fields = self.nodes.connect_fields(self)
            except CredentialsError as error:
                self.log.error(str(error))
                self.close(Reason.WRITE_ERROR, flush=False)
                return
            self.outbound.write(connect_line(fields))
            self.log.debug("Remote leafnode connect msg sent")
            if not info.get("info_on_connect"):
                self._register()  # an older hub sends no second INFO
            return
        self.remote_info = info
        self.remote.discovered(info.get("leafnode_urls") or ())
        if info.get("connect_info") and not self.registered:
            self._register()

    # --- the handshake: the side that accepted ----------------------------------------------

    def _on_connect(self, event: Connect) -> None:
        raw = event.raw
        try:
            opts = decode_struct(raw, CLIENT_OPTS)
        except ValueError as error:
            self._undecodable("CONNECT", error)
            return
        if opts.get("lang"):
            self._refuse(errors.LEAF_PORT, WRONG_PORT)
            return
        try:
            fields = decode_struct(raw, LEAF_CONNECT)
        except ValueError as error:
            self._undecodable("CONNECT", error)
            return
        if self.solicited or self.registered:
            return
        cluster = fields.get("cluster", "")
        if " " in cluster:
            self._refuse(errors.CLUSTER_NAME_SPACES, Reason.PROTOCOL_VIOLATION)
            return
        if cluster and cluster == self.nodes.cluster_name():
            self._refuse(errors.LEAF_SAME_CLUSTER, CLUSTER_NAMES_IDENTICAL)
            return
        if fields.get("gateway"):
            text = f"Rejecting connection from gateway {errors.go_quote(fields['gateway'])} on the leafnode port"
            self.log.error(text)
            self._refuse(text, Reason.PROTOCOL_VIOLATION)
            return
        minimum = self.nodes.options.min_version
        if minimum and not version_at_least(fields.get("version", ""), minimum):
            self._refuse(f'{errors.LEAF_MIN_VERSION} "{minimum}"', MIN_VERSION)
            return
        self.connect_opts = fields
        self.remote_id = fields.get("server_id", "")
        self.remote_name = fields.get("name", "") or self.remote_id
        self.remote_cluster = cluster
        self.remote_version = fields.get("version", "")
        self.remote_account = fields.get("remote_account", "")
        self.headers = fields.get("headers", False) and not self.server.options.no_header_support
        self.parser.headers = self.headers
        if fields.get("is_hub"):
            self.spoke = True  # the peer dialed us but is our hub
        verdict = self.nodes.authenticate(opts, self.nonce)
        if type(verdict) is PendingPassword:
            self.awaiting = lambda: self._check_password(verdict)
            return
        if type(verdict) is Failure:
            self.server.auth.log_failure(self.log, verdict.text)
            self._refuse_credentials()
            return
        self._bind(verdict)

    async def _check_password(self, pending: PendingPassword) -> None:
        ok = await self.server.auth.bcrypt_matches(pending.password, pending.hashed)
        self._pending_account = pending.identity.account if ok and pending.identity else None

    def _bind(self, identity_or_account) -> None:
        """The CONNECT passed: bind the leaf to its account, tell it (INFO with
        connect_info), register it and send our interest."""
        name = identity_or_account.account if type(identity_or_account) is Identity else identity_or_account
        account = self.server.accounts.get(name)
        if account is None:
            self.log.error(f"Unable to lookup account {name} for leafnode")
            self.close("Missing Account")
            return
        self.account = account
        self.sublist = account.sublist
        self._make_dispatcher()
        self.connect_deadline = math.inf
        self.parser.require_connect = False
        info = self.nodes.info_fields(self) | {"connect_info": True, "remote_account": account.name}
        self.outbound.write(encode.info(info))
        self._register()

    def _refuse_credentials(self) -> None:
        self._refuse(errors.AUTH_VIOLATION, Reason.AUTH_VIOLATION)

    def _refuse(self, text: str, reason: str) -> None:
        if text != errors.AUTH_VIOLATION:  # (the credentials' failure is logged by its check)
            self.log.error(text)
        self.outbound.write(encode.err(text))
        self.close(reason)

    def _undecodable(self, what: str, error: ValueError) -> None:
        self.log.error(f"Leafnode {what} JSON: {error}")
        self.close(Reason.PROTOCOL_VIOLATION)

    def _register(self) -> None:
        self.registered = True
        self.nodes.register(self)
        where = self.remote_name
        if self.remote_cluster and self.remote_cluster != self.remote_name:
            where = f"{where}/{self.remote_cluster}"
        self.log.info(f"Leafnode connection established with {where} "
                      f"(account {self.account.name}, {'spoke' if self.spoke else 'hub'} side)")  # fmt: skip
        lines = self.nodes.initial_interest(self)
        if lines:
            self.outbound.write(b"".join(lines))

    # --- interest -----------------------------------------------------------------------------

    def may_announce(self, subject: bytes) -> bool:
        """Whether our interest in `subject` may be told to the peer: a remote's
        deny_imports keep the hub from sending us those subjects (loop detection subjects
        always go)."""
        if self.permissions is None or subject.startswith(LOOP_DETECTION_PREFIX):
            return True
        return self.permissions.can_subscribe(subject, b"")

    def interest_changed(self, subject: bytes, queue: bytes | None, delta: int) -> None:
        """A subscription the peer should know about came or went (`delta` its weight)."""
        if not self.registered or (delta > 0 and not self.may_announce(subject)):
            return
        line = self.interest.change(subject, queue, delta)
        if line is not None:
            self.outbound.write(line)

    def _on_sub(self, event: LeafSub) -> None:
        subject, queue, weight, key = event
        if not self.registered:
            self._refuse(errors.AUTH_VIOLATION, Reason.PROTOCOL_VIOLATION)
            return
        if subject.startswith(LOOP_DETECTION_PREFIX) and subject == self.nodes.loop_subject(self.account):
            self._loop_detected()
            return
        if (
            self.permissions is not None
            and not subject.startswith(LOOP_DETECTION_PREFIX)
            and b"*" not in subject and b">" not in subject
            and not self.permissions.can_publish(subject)
        ):
            return  # a spoke quietly ignores interest its deny_exports would never serve
        if not is_valid_subject(subject):
            self.log.error("Could not insert subscription: sublist: invalid subject")
            self.outbound.write(encode.err(errors.INVALID_SUBSCRIPTION))
            return
        weight = max(weight, 1) if queue is not None else 1
        sub = self.remote_subs.get(key)
        if sub is not None:
            if queue is not None and weight != sub.weight:
                delta = weight - sub.weight
                sub.weight = weight
                self.sublist.plans_changed()  # plans spread picks by weight: rebuild them
                self.nodes.remote_interest_changed(self, sub, delta, edge=False)
            return
        sub = Subscription(self, subject, queue, b"", weight)
        try:
            self.sublist.insert(sub)
        except InvalidSubject:
            self.log.error("Could not insert subscription: sublist: invalid subject")
            self.outbound.write(encode.err(errors.INVALID_SUBSCRIPTION))
            return
        self.remote_subs[key] = sub
        self.nodes.remote_interest_changed(self, sub, weight)

    def _on_unsub(self, event: LeafUnsub) -> None:
        if not self.registered:
            self._refuse(errors.AUTH_VIOLATION, Reason.PROTOCOL_VIOLATION)
            return
        sub = self.remote_subs.pop(event.key, None)
        if sub is not None:
            sub.closed = True
            self.sublist.remove(sub)
            self.nodes.remote_interest_changed(self, sub, -sub.weight)

    def _loop_detected(self) -> None:
        text = loop_detected(self.account.name)
        self.log.error(text)
        self._delay_next_dial()
        self.outbound.write(encode.err(text))
        self.close(Reason.PROTOCOL_VIOLATION)

    def _delay_next_dial(self) -> None:
        if self.remote is not None:
            self.remote.delay = defaults.LEAF_LOOP_RECONNECT_DELAY

    def _drop_remote_interest(self) -> None:
        for sub in self.remote_subs.values():
            sub.closed = True
            self.closing_step(self.sublist.remove, sub)
            self.closing_step(self.nodes.remote_interest_changed, self, sub, -sub.weight)
        self.remote_subs.clear()

    def remove_sub(self, sub: Subscription) -> None:
        """Leaf subscriptions never auto-unsubscribe (no max_msgs); kept for the interface."""

    def reachable_from(self, source, subject: bytes) -> bool:
        """Whether a message from `source` to `subject` may go to this peer (nats-server's
        rules): never back where it came from nor to the leaf cluster it came from; from a
        route only if we are this leaf's hub; never what a remote's deny_exports forbid."""
        if source is self or not self.registered:
            return False
        if getattr(source, "is_leaf", False):
            if self.remote_cluster and source.remote_cluster == self.remote_cluster:
                return False
        elif getattr(source, "is_route", False) and self.spoke:
            return False
        return self.permissions is None or self.permissions.can_publish(subject)

    # --- messages -------------------------------------------------------------------------------

    def _on_msg(self, event: LeafMsg) -> None:
        subject, reply, queues, header_size, data = event
        dispatch = self.dispatch
        if not self.registered:
            return  # nats-server drops messages before the account is bound
        if self.permissions is not None and not self.permissions.can_subscribe(subject, b""):
            dispatch.received(1, len(data) - 2)  # deny_imports: counted, delivered to nobody
            return
        dispatch.message(dispatch.plan(subject), subject, reply, header_size, data, queues)

    def heads(self, subject: bytes) -> tuple[bytes, bytes | None]:
        """The start of this peer's message lines for `subject`: LMSG, and HMSG if it takes
        headers (a plain target of a delivery plan)."""
        return b"LMSG " + subject + b" ", (b"HMSG " + subject + b" ") if self.headers else None

    def line(self, subject: bytes, reply: bytes, queues, header_size: int, size: int) -> bytes:
        return lmsg_line(subject, reply, queues, header_size, size)

    def forward(
        self, subject: bytes, reply: bytes, queues: list[bytes], header_size: int, data: bytes
    ) -> None:
        """Send a message to the peer naming the queue groups picked there."""
        if header_size >= 0 and not self.headers:
            data = data[header_size:]
            header_size = -1
        size = len(data) - 2
        line = lmsg_line(subject, reply, queues, header_size, size)
        self.outbound.write_msg(line, b"", data, len(line) + len(data))
        self.out_msgs += 1
        self.out_bytes += size

    # --- keepalive and closing ------------------------------------------------------------------

    def on_ping_timer(self) -> None:
        now = trio.current_time()
        if now >= self.connect_deadline:
            if self.solicited:
                self.log.error("Leafnode connection: no INFO from the remote")
                self.close(Reason.READ_ERROR, flush=False)
            else:
                self.log.error("Leafnode authentication timeout: no CONNECT")
                self._refuse(errors.AUTH_TIMEOUT, Reason.AUTH_TIMEOUT)
            return
        if self.pings_out + 1 > self.nodes.ping_max:
            self.log.debug("Stale Leafnode Connection - Closing")
            self.server.stats.stale_connections += 1
            self._refuse(errors.STALE_CONNECTION, Reason.STALE_CONNECTION)
            return
        self.pings_out += 1
        self.rtt_start = now
        self.outbound.write(encode.PING)
        self.reschedule_ping(now + self.nodes.ping_interval)

    def awaiting_connect(self) -> bool:
        return not self.solicited and self.connect_deadline != math.inf

    def count_slow_consumer(self, *, again: bool) -> None:
        self.server.stats.slow_consumers += 1
        self.slow_consumer_events += 1

    def on_close(self, reason: str) -> None:
        if self.sublist is not None:
            self._drop_remote_interest()
        if self.dispatch is not None:
            self.dispatch.forget()
        if self.registered:
            where = f" - Remote: {self.remote_name}" if self.remote_name else ""
            self.log.info(f"Leafnode connection closed: {reason}{where}", reason=reason)
            self.closing_step(self.nodes.unregister, self)
        else:
            self.log.debug(f"Leafnode connection closed: {reason}", reason=reason)


def _remote_permissions(remote: Remote) -> CompiledPermissions | None:
    """A remote's deny_exports (what we may not send the hub) and deny_imports (what we
    may not take from it), as nats-server's leaf permissions."""
    options = remote.options
    if not options.deny_imports and not options.deny_exports:
        return None
    return CompiledPermissions(Permissions(
        publish=SubjectPermission(deny=options.deny_exports) if options.deny_exports else None,
        subscribe=SubjectPermission(deny=options.deny_imports) if options.deny_imports else None,
    ))  # fmt: skip


def same(given: str, expected: str) -> bool:
    """Credentials compared in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())
