"""A client session: INFO, CONNECT, SUB/UNSUB, PING/PONG, and handing each PUB to the core.

The path of one PUB (`_on_pub`, all synchronous): the pedantic subject check, reserved
subjects, +OK if verbose; then the client's `Dispatcher` (core/dispatch.py) looks up its plan
for the subject, queues the message to each target and counts it; then the 503 no-responders
reply if nothing was delivered. The writers of those connections are woken and send
everything queued by this read in one `send_all` each.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import trio

from . import defaults, errors
from .auth import SYS_QUEUE, Failure, Identity, PendingPassword, PublishCheck
from .auth.nkeys import new_nonce
from .connection import Connection
from .core.dispatch import Dispatcher, reserved_reply, reserved_subject
from .core.sublist import InvalidSubject, Subscription
from .errors import ProtocolError, Reason, go_quote
from .logging import LEVELS, quoted_payload, redact_connect
from .protocol import encode
from .protocol.connect import ConnectOptions, Credentials, decode_connect, decode_info
from .protocol.events import (
    Connect, Err, Info, InvalidPublishSubject, Ping, Pong, Pub, PubBatch, PubRun, Sub, Unsub,
)  # fmt: skip
from .protocol.parser import Parser
from .protocol.subjects import has_wildcard, is_valid_literal_subject

if TYPE_CHECKING:
    from .server import Server

class ClientConnection(Connection):
    id_label = "cid"
    kind = "Client"
    #: Credentials its transport supplied (websocket cookies), for the CONNECT fields the
    #: client leaves empty; None for TCP clients.
    credentials: Credentials | None = None

    @property
    def stalls(self) -> bool:
        """Clients wait for slow consumers they fill, unless no_fast_producer_stall."""
        return not self.server.options.no_fast_producer_stall

    def __init__(self, server: Server, stream: trio.abc.Stream, cid: int, peer) -> None:
        options = server.options
        super().__init__(
            stream,
            cid,
            peer=peer,
            max_pending=options.max_pending,
            write_deadline=options.write_deadline,
            logger=server.log,
            stats=server.stats,
        )
        self.server = server
        # nats-server: clients close on a write timeout unless `write_timeout: retry`.
        self.write_timeout_policy = "retry" if options.write_timeout == "retry" else "close"
        #: The account the client is in (core/accounts.py): `$G` until it authenticates
        #: into another. Its subscriptions and messages live in the account's sublist.
        self.account = server.accounts.global_account
        self.sublist = self.account.sublist
        self.parser = Parser(
            max_control_line=options.max_control_line,
            max_payload=options.max_payload,
            batch=True,
            require_connect=self.auth.auth_required,
        )
        self.opts = ConnectOptions()
        self.parser.pedantic = self.opts.pedantic  # nats-server's default until a CONNECT
        #: The message in transit was answered 'Invalid Publish Subject' at its line.
        self._subject_answered = False
        self.headers = False  # both sides agreed on headers
        self.connected = False  # a CONNECT was accepted
        self.first_pong_sent = False
        self.subs: dict[bytes, Subscription] = {}
        self.pings_out = 0
        self.rtt = 0.0
        self.rtt_start = 0.0
        self.last_in = -float("inf")  # last time the client sent messages, subs or a PING
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        #: Where this client's messages go: its plans, its deliveries, their counts.
        self.dispatch = Dispatcher(self, self.sublist, server.stats, trio.current_time,
                                   tracer=server.tracing.publish)  # fmt: skip
        #: (-ERR text, close reason) when the server turns this client away after its INFO.
        self.refusal: tuple[str, str] | None = None
        # TLS (trionats/tls.py), set by `upgrade`: what /connz shows, and the client's
        # certificate for verify_and_map.
        self.info_sent = False
        self.tls_first = False
        self.tls_version = self.tls_cipher = ""
        self.peer_cert: bytes | None = None
        self.next_ping = self.start_time + self.ping_interval
        # Authentication (trionats/auth): the user, its permissions, a paused read.
        self.identity: Identity | None = None
        self.pub_check: PublishCheck | None = None  # with publish permissions
        self.delivery_deny = None  # CompiledPermissions, once a wildcard sub may overlap deny
        self._pending_auth: PendingPassword | None = None
        self._pending_ok = False
        self._paused_events = None
        #: Reload (reauthorize): the bcrypt hash this client's password matched, the
        #: Authenticator its CONNECT was checked by, and a count that voids stale rechecks.
        self._verified_hash = ""
        self._checked_by = None
        self._reauth_generation = 0
        self.auth_deadline = math.inf
        #: INFO `nonce` for nkey and JWT users to sign (only when such users can log in).
        self.nonce = new_nonce() if self.auth.nkeys or self.auth.operator else ""
        #: A user JWT's subscription limit (-1: the server's) and end (trio time; inf: never).
        self.max_subs = -1
        self.expires_at = math.inf
        self.expiry_error = errors.USER_AUTH_EXPIRED
        self.claim_expires_at = math.inf  # the user JWT's own end
        if self.auth.enabled:
            self.auth_deadline = self.start_time + self.auth.timeout
            self.next_ping = min(self.next_ping, self.auth_deadline)
            if self.auth.no_auth_user and not self.auth.auth_required:
                # As nats-server: ops before CONNECT already have no_auth_user's permissions.
                anonymous = self.auth.check("", "", "")
                if type(anonymous) is Identity:
                    self._set_identity(anonymous)

    @property
    def auth(self):
        """The authentication of this client's listener (websocket.py has its own)."""
        return self.server.auth

    @property
    def ping_interval(self) -> float:
        """Seconds between PINGs (the websocket block may set its own)."""
        return self.server.options.ping_interval

    # --- greeting and limits --------------------------------------------------------------

    async def upgrade(self) -> None:
        """The client port's TLS (tls.accept_client_port): INFO in plaintext, then the handshake."""
        server = self.server
        context = server.tls_context
        if context is None or self.refusal is not None:
            return  # a refused client gets its INFO and -ERR in plaintext, as from nats-server
        from . import tls  # only with a tls block, which imported it already

        try:
            result = await tls.accept_client_port(
                self.stream,
                context,
                server.options.tls,
                allow_non_tls=server.options.allow_non_tls,
                send_info=self._info_bytes,
                log=self.log,
            )
        except tls.HandshakeError as error:
            if error.timeout:
                self.log.debug("TLS handshake timeout")
            # nats-server logs probes (timeouts, plaintext) at debug, real failures as errors.
            (self.log.debug if error.probe else self.log.error)(f"TLS handshake error: {error}")
            self.close(Reason.TLS_HANDSHAKE, flush=False)
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self.close(Reason.WRITE_ERROR, flush=False)  # the plaintext INFO could not be sent
            return
        self.stream = result.stream
        self.info_sent = result.info_sent
        self.tls_first = result.first
        if result.tls:
            self.outbound.sock = None  # every byte must now go through the TLS stream
            self.tls_version, self.tls_cipher = tls.describe(result.stream)
            self.peer_cert = tls.peer_certificate(result.stream)
            self.log.debug("TLS handshake complete")
            self.log.debug(f"TLS version {self.tls_version}, cipher suite {self.tls_cipher}")
        if self.auth_deadline != math.inf:  # as nats-server: the auth timer starts after TLS
            self.auth_deadline = trio.current_time() + self.auth.timeout
            self.next_ping = min(self.next_ping, self.auth_deadline)

    def _info_bytes(self, tls_first: bool) -> bytes:
        self.tls_first = tls_first  # INFO says tls_required while TLS comes first
        return encode.info(self.server.client_info(self))

    def on_start(self) -> None:
        if not self.info_sent:
            self.outbound.write(encode.info(self.server.client_info(self)))
        if self.refusal is not None:
            text, reason = self.refusal
            self.send_err(text)
            self.close(reason)

    def send_err(self, text: str) -> None:
        if self.server.trace:
            self.log.trace(f"->> [-ERR {text}]")
        self.outbound.write(encode.err(text))

    # --- reading --------------------------------------------------------------------------

    def process(self, data: bytes) -> None:
        if LEVELS.trace:
            self._process_traced(self.parser.feed(data))
            return
        self._dispatch(self.parser.feed(data))

    def resume(self) -> None:
        """The password check that paused this read is done: apply it, go on with the events."""
        pending, self._pending_auth = self._pending_auth, None
        events, self._paused_events = self._paused_events, None
        if self._pending_ok:
            self._verified_hash = pending.hashed
            self._accept_identity(pending.identity)
            if self._checked_by is not self.auth:  # a reload came while bcrypt ran
                self.reauthorize()
        else:
            self._refuse(pending.failure)
        if self.closed_reason is not None:
            return
        if LEVELS.trace:
            self._process_traced(events)
        else:
            self._dispatch(events)

    def _dispatch(self, events) -> None:
        in_msgs = self.in_msgs
        interest = False
        for event in events:
            kind = type(event)
            if kind is PubBatch:
                self._on_pub_batch(event)
            elif kind is Pub:
                self._on_pub(event)
            elif kind is PubRun:
                self._on_pub_run(event)
            elif kind is Sub:
                self._on_sub(event)
                interest = True
            elif kind is Unsub:
                self._on_unsub(event)
                interest = True
            elif kind is Ping:
                self._on_ping()
            elif kind is Pong:
                self._on_pong()
            elif kind is Connect:
                self._on_connect(event)
                if self.awaiting is not None:  # a bcrypt check: stop here until its verdict
                    self._paused_events = events
                    break
            elif kind is Err:
                self.log.error(f"Client Error {event.text.decode(errors='replace')}")
                self.close(Reason.PARSE_ERROR)  # what was queued before still goes out
            elif kind is Info:
                # Ignored, but like nats-server it must decode into its Info struct.
                if not _is_info(event.raw):
                    self.close(Reason.PROTOCOL_VIOLATION)
            elif kind is InvalidPublishSubject:
                self._on_invalid_publish_subject(event)
            if self.closed_reason is not None:
                return
        if interest or self.in_msgs != in_msgs:
            self.last_in = self.last_activity = trio.current_time()

    def _process_traced(self, events) -> None:
        """`process` with nats-server's protocol trace: every op in, every message out."""
        in_msgs = self.in_msgs
        interest = False
        for event in events:
            kind = type(event)
            items = event.expand() if kind is PubBatch or kind is PubRun else (event,)
            for item in items:
                kind = type(item)
                if kind is Pub:
                    subject, reply, header_size, payload = item
                    size = len(payload) - 2
                    args = [subject, reply] if reply else [subject]
                    op = "PUB" if header_size < 0 else "HPUB"
                    sizes = [b"%d" % size] if header_size < 0 else [b"%d" % header_size, b"%d" % size]
                    self.log.trace(f"<<- [{op} {_text(b' '.join(args + sizes))}]")
                    self.log.trace(f"<<- MSG_PAYLOAD: [{_quoted(payload[:-2])}]")
                    self._on_pub(item)
                elif kind is Ping:
                    self.log.trace("<<- [PING]")
                    self._on_ping()
                elif kind is Pong:
                    self.log.trace("<<- [PONG]")
                    self._on_pong()
                elif kind is Sub:
                    self._on_sub(item)
                    interest = True
                elif kind is Unsub:
                    self._on_unsub(item)
                    interest = True
                elif kind is Connect:
                    self._on_connect(item)
                    if self.awaiting is not None:
                        self._paused_events = events
                        return
                elif kind is Err:
                    self.log.error(f"Client Error {_text(item.text)}")
                    self.close(Reason.PARSE_ERROR)
                elif kind is Info and not _is_info(item.raw):
                    self.close(Reason.PROTOCOL_VIOLATION)
                elif kind is InvalidPublishSubject:
                    self._on_invalid_publish_subject(item)
                if self.closed_reason is not None:
                    return
        if interest or self.in_msgs != in_msgs:  # as in _dispatch: what delays the next PING
            self.last_in = self.last_activity = trio.current_time()

    def on_protocol_error(self, error: ProtocolError) -> None:
        if error.err is not None:
            self.send_err(error.err)
        if error.reason == Reason.MAX_PAYLOAD:
            self.log.error(f"{error.err}")
        elif error.err == errors.UNKNOWN_PROTOCOL:
            self.log.error(f"Client parser ERROR: {error.err}")
        elif error.detail:
            self.log.debug(f"Client protocol error: {error.detail}")
        # nats-server flushes what was queued before the error (+OK, MSGs) even on silent closes.
        self.close(error.reason)

    # --- CONNECT --------------------------------------------------------------------------

    def _on_connect(self, event: Connect) -> None:
        server = self.server
        if server.trace:
            self.log.trace(f"<<- [CONNECT {redact_connect(event.raw.decode(errors='replace'))}]")
        try:
            opts = decode_connect(event.raw, self.opts)
        except ValueError as exc:
            self.log.debug(f"Bad CONNECT: {exc}")
            self.close(Reason.PROTOCOL_VIOLATION)
            return
        if self.credentials is not None:
            opts = self.credentials.fill(opts)
        now = trio.current_time()
        if not self.connected:
            self.rtt = max(now - self.start_time, 1e-9)
        else:
            # As nats-server 2.15 (clearAccountSubs): every CONNECT after the first drops the
            # client's subscriptions, silently, since it may move the client to another account.
            for sub in list(self.subs.values()):
                self.remove_sub(sub)
        self.connected = True
        self.opts = opts
        self.headers = opts.headers and not server.options.no_header_support
        self.parser.headers = self.headers
        self.parser.pedantic = opts.pedantic
        self.dispatch.echo = opts.echo
        self.dispatch.forget()
        if opts.account or opts.new_account:
            self.send_err(errors.AUTH_VIOLATION)
            self.close(Reason.AUTH_VIOLATION)
            return
        if opts.protocol < 0 or opts.protocol > defaults.CLIENT_PROTO:
            self.send_err(errors.BAD_CLIENT_PROTOCOL)
            self.close(Reason.BAD_CLIENT_PROTOCOL)
            return
        if opts.no_responders and not self.headers:
            self.send_err(errors.NO_RESPONDERS_NEEDS_HEADERS)
            self.close(Reason.NO_RESPONDERS_NEEDS_HEADERS)
            return
        if self.auth.enabled:
            verdict = self.auth.check(
                opts.user, opts.password, opts.auth_token, opts.nkey, opts.sig, self.nonce,
                self.peer_cert, opts.jwt, self.peer_host,
            )
            if self.auth.tls_map and opts.user and type(verdict) is Identity:
                server.log.warning(
                    f'User "{opts.user}" found in connect proto, but user required from cert'
                )
            if type(verdict) is PendingPassword:
                self._pending_auth = verdict
                self._checked_by = self.auth
                self.awaiting = self._check_password
                return
            if type(verdict) is Failure:
                if verdict.detail:
                    (self.log.error if verdict.detail_is_error else self.log.debug)(verdict.detail)
                self._refuse(verdict.text)
                return
            self._accept_identity(verdict)
        else:
            self._connect_accepted()

    async def _check_password(self) -> None:
        self._pending_ok = await self.auth.verify(self._pending_auth)

    def _refuse(self, failure: str) -> None:
        """Wrong credentials: nats-server's log line, -ERR and close."""
        self.auth.log_failure(self.log, failure)
        self.send_err(errors.AUTH_VIOLATION)
        self.close(Reason.AUTH_VIOLATION)

    def _accept_identity(self, identity: Identity) -> None:
        self._set_identity(identity)
        self.auth_deadline = math.inf
        self.parser.require_connect = False
        if identity.kind == "jwt" and not self._apply_user_jwt(identity):
            return
        self._connect_accepted()

    def _apply_user_jwt(self, identity: Identity) -> bool:
        """A user JWT's account connection limit, subscription and payload limits, and
        expiry (nats-server's registerWithAccount, applyAccountLimits, setExpiration).
        False if the client was closed."""
        server = self.server
        claims = self.auth.operator.account(identity.account)
        limit = claims.limit("conn") if claims is not None else -1
        if limit != -1:
            others = sum(
                1 for client in server.clients.values()
                if client is not self and client.account is self.account
                and client.identity is not None and client.closed_reason is None
            )  # fmt: skip
            if others >= limit:
                self.log.error(errors.MAX_ACCOUNT_CONNECTIONS)
                self.send_err(errors.MAX_ACCOUNT_CONNECTIONS)
                self.close(Reason.MAX_ACCOUNT_CONNECTIONS)
                return False
        self.max_subs = identity.max_subs
        if self.max_subs == 0:  # at its limit already: told now, closed a little later
            self.log.error(errors.MAX_SUBSCRIPTIONS)
            self.send_err(errors.MAX_SUBSCRIPTIONS)
            self.start_task(self._close_for_no_subscriptions)
        options = server.options
        payload = identity.max_payload
        if payload == -1 or payload > options.max_payload:
            payload = options.max_payload
        self.parser.set_limits(max_control_line=options.max_control_line, max_payload=payload)
        # The user's end or its account's, whichever comes first, each with its own -ERR.
        now = trio.current_time()
        for left, error in ((identity.expires_in, errors.USER_AUTH_EXPIRED),
                            (identity.account_expires_in, errors.ACCOUNT_AUTH_EXPIRED)):  # fmt: skip
            if left is not None and now + left < self.expires_at:
                self.expires_at, self.expiry_error = now + left, error
        if identity.expires_in is not None:  # ($SYS.REQ.USER.INFO's `expires`)
            self.claim_expires_at = now + identity.expires_in
        if self.expires_at != math.inf:
            self.reschedule_ping(min(self.next_ping, self.expires_at))
        return True

    def _set_identity(self, identity: Identity) -> None:
        """Who the client is, its account and its permissions from now on."""
        self.identity = identity
        if identity.account != self.account.name:
            self._join_account(self.server.accounts[identity.account])
        perms = identity.permissions
        # Publish checks replace the PUB handlers of this connection only: connections
        # without permissions run the unchanged methods (no per-message flag).
        if perms is not None and perms.has_publish:
            if self.pub_check is None or self.pub_check.perms is not perms:
                self.pub_check = PublishCheck(perms)
            self._on_pub = self._checked_pub
            self._on_pub_batch = self._checked_pub_batch
            self._on_pub_run = self._checked_pub_run
        else:
            self.pub_check = None
            self.__dict__.pop("_on_pub", None)
            self.__dict__.pop("_on_pub_batch", None)
            self.__dict__.pop("_on_pub_run", None)
        self.dispatch.may_publish = self.pub_check.perms.can_publish if self.pub_check else None
        self.dispatch.forget()

    def _join_account(self, account) -> None:
        """Move to `account`: its sublist is where this client subscribes and publishes.
        (A client has no subscriptions then: a CONNECT after the first drops them.)"""
        for sub in list(self.subs.values()):
            self.remove_sub(sub)
        self.account.client_left(self)  # its figures so far stay with the old account
        self.account = account
        account.client_joined(self)
        self.sublist = self.dispatch.sublist = account.sublist
        self.dispatch.forget()

    async def _close_for_no_subscriptions(self) -> None:
        await trio.sleep(defaults.JWT_NO_SUBS_CLOSE_DELAY)
        self.close(Reason.MAX_SUBSCRIPTIONS)

    # --- reload: authorization changed (server.py, nats-server's reloadAuthorization) ------

    def reauthorize(self) -> None:
        """Check this client again against the authorization now configured.

        As nats-server: a client whose user or nkey is no longer configured is closed
        without an -ERR (reason Client Closed); one whose credentials no longer pass gets
        -ERR 'Authorization Violation' and is closed; otherwise the new permissions apply
        at once and subscriptions they no longer allow are removed, each with an -ERR.
        A changed bcrypt hash is checked in a worker thread; until then nothing changes.
        """
        if self.closed_reason is not None or self._pending_auth is not None:
            return  # a CONNECT being checked: resume() comes back here if need be
        self._reauth_generation += 1
        auth = self.auth
        identity = self.identity
        if not self.connected:
            # Its CONNECT will meet the new settings; until then, the new deadline and rules.
            self.parser.require_connect = auth.auth_required
            if not auth.enabled:
                self.auth_deadline = math.inf
            elif self.auth_deadline == math.inf:
                self.auth_deadline = trio.current_time() + auth.timeout
                self.reschedule_ping(min(self.next_ping, self.auth_deadline))
            if identity is None:
                return
        elif identity is None and not auth.enabled:
            return  # no authentication before or now
        if identity is not None and not auth.knows(identity):
            self.close(Reason.CLIENT_CLOSED)
            return
        opts = self.opts
        verdict = auth.check(
            opts.user, opts.password, opts.auth_token, opts.nkey, opts.sig, self.nonce,
            self.peer_cert, opts.jwt, self.peer_host,
        )
        if type(verdict) is PendingPassword:
            if verdict.identity is None:
                verdict = Failure(verdict.failure)
            elif verdict.hashed == self._verified_hash:
                verdict = verdict.identity  # the hash this password already matched
            else:
                generation = self._reauth_generation
                self.start_task(self._recheck_password, auth, verdict, generation)
                return
        if type(verdict) is Failure:
            if not self.connected:  # ops before CONNECT had no_auth_user's permissions
                self.close(Reason.CLIENT_CLOSED)
                return
            self._refuse(self._reauth_failure())
            return
        self._reapply_identity(verdict)

    async def _recheck_password(self, auth, pending: PendingPassword, generation: int) -> None:
        ok = await auth.verify(pending)
        if generation != self._reauth_generation or self.closed_reason is not None:
            return  # another reload since, or closed meanwhile
        if ok:
            self._verified_hash = pending.hashed
            self._reapply_identity(pending.identity)
        else:
            self._refuse(self._reauth_failure())

    def _reapply_identity(self, identity: Identity) -> None:
        """The same client under its (possibly new) permissions: subscriptions re-checked."""
        self._set_identity(identity)
        self.delivery_deny = None
        if identity.permissions is None:
            return
        for sub in list(self.subs.values()):
            queue = sub.queue or b""
            if self._may_subscribe(sub.subject, queue):
                continue
            self.remove_sub(sub)
            sid = go_quote(sub.sid)
            self.send_err(f"{errors.subscribe_violation(sub.subject, queue)} (sid {sid})")
            where = go_quote(sub.subject)
            if queue:
                where = f"{where} using queue {go_quote(queue)}"
            self.server.log.info(
                f"Removed sub {where} (sid {sid}) for {self._auth_user_text()} - not authorized"
            )

    def _auth_user_text(self) -> str:
        """nats-server's getAuthUser: who the client is, for log lines (a no_auth_user
        client is that user there too)."""
        identity, opts = self.identity, self.opts
        known = identity.user if identity is not None else ""
        nkey = known if identity is not None and identity.kind == "nkey" else opts.nkey
        if nkey:
            return f"Nkey {go_quote(nkey)}"
        user = known if identity is not None and identity.kind == "user" and known else opts.user
        if user:
            return f"User {go_quote(user)}"
        if opts.auth_token:
            return 'Token "[REDACTED]"'
        return 'User "N/A"'

    def _reauth_failure(self) -> str:
        """The log text of a client refused on reload (nats-server's authViolation)."""
        identity, opts = self.identity, self.opts
        if (identity is not None and identity.user) or opts.nkey or opts.user or opts.auth_token:
            return f"authentication error - {self._auth_user_text()}"
        return "authentication error"

    def _connect_accepted(self) -> None:
        """The rest of CONNECT once the client is who it says: +OK, first PING, log label."""
        opts = self.opts
        now = trio.current_time()
        if opts.verbose:
            self.outbound.write(encode.OK)
        interval = self.ping_interval
        first = min(interval, defaults.FIRST_CLIENT_PING_INTERVAL)
        self.reschedule_ping(min(now + first + random.uniform(0, first / 5), self.expires_at))
        self.log = self.log.bind(
            conn=self._conn_label(),
            client_name=opts.name,
            client_lang=opts.lang,
            client_version=opts.version,
        )
        self.server.system.client_connected(self)  # $SYS.ACCOUNT.<account>.CONNECT

    @property
    def auth_user(self) -> str:
        """The authenticated user name or nkey ("" when none), as /connz shows it."""
        return self.identity.user if self.identity is not None else ""

    def _conn_label(self) -> str:
        """The log prefix, with the client's version/lang/name once known (as nats-server)."""
        base = f"{self.peer_host}:{self.peer_port} - {self.id_label}:{self.cid}"
        opts = self.opts
        parts = []
        if opts.version:
            parts.append(f"v{opts.version}")
        if opts.lang:
            parts.append(opts.lang)
        if opts.name:
            parts.append(opts.name)
        if parts:
            base = f'{base} - "{":".join(parts)}"'
        if self.identity is not None and self.identity.user:
            base = f"{base} - {self.identity.label}"
        return base

    # --- PING / PONG ----------------------------------------------------------------------

    def _on_ping(self) -> None:
        if LEVELS.trace:
            self.log.trace("->> [PONG]")
        self.outbound.write(encode.PONG)
        self.last_in = trio.current_time()
        if self.connected and not self.first_pong_sent:
            self.first_pong_sent = True
            if self.opts.protocol >= 1:
                fields = self.server.client_info(self)
                fields.pop("nonce", None)  # as nats-server: only the greeting has it
                fields["connect_info"] = True
                fields["remote_account"] = self.account.name
                self.outbound.write(encode.info(fields))

    def _on_pong(self) -> None:
        self.pings_out = 0
        if self.rtt_start:
            self.rtt = max(trio.current_time() - self.rtt_start, 1e-9)

    def on_ping_timer(self) -> None:
        options = self.server.options
        now = trio.current_time()
        if now >= self.auth_deadline:
            self.send_err(errors.AUTH_TIMEOUT)
            self.close(Reason.AUTH_TIMEOUT)
            return
        if now >= self.expires_at:  # a user or account JWT's end (nats-server's authExpired)
            self.log.debug(self.expiry_error)
            self.send_err(self.expiry_error)
            self.close(Reason.AUTH_EXPIRED)
            return
        interval = self.ping_interval
        # As nats-server: skip the PING after recent client activity, unless an RTT sample is
        # due (no PING sent yet, or the last one is older than the measurement interval).
        need_rtt = (
            not self.rtt
            or not self.rtt_start
            or now - self.rtt_start > defaults.RTT_MEASUREMENT_INTERVAL
        )
        if not need_rtt and now - self.last_in < interval:
            self.log.debug("Delaying PING due to remote client data or ping")
        elif self.pings_out + 1 > options.ping_max:
            self.log.debug("Stale Client Connection - Closing")
            self.server.stats.stale_connections += 1
            self.send_err(errors.STALE_CONNECTION)
            self.close(Reason.STALE_CONNECTION)
            return
        else:
            self.rtt_start = now
            self.pings_out += 1
            self.outbound.write(encode.PING)
        self.reschedule_ping(min(now + interval, self.auth_deadline, self.expires_at))

    # --- SUB / UNSUB ----------------------------------------------------------------------

    def _on_sub(self, event: Sub) -> None:
        subject, queue, sid = event
        if self.server.trace:
            self.log.trace(f"<<- [SUB {b' '.join(p for p in event if p).decode(errors='replace')}]")
        if queue == SYS_QUEUE or (
            self.identity is not None
            and self.identity.permissions is not None
            and not self._may_subscribe(subject, queue)
        ):
            self._sub_violation(subject, queue, sid)
            return
        max_tokens = self.server.options.max_sub_tokens
        if max_tokens and subject.count(b".") >= max_tokens:
            # (nats-server counts the pieces between dots)
            where = f"Subject {go_quote(subject)}, SID {_text(sid)}"
            self.log.error(f"Subscription Violation Too Many Tokens - {where}")
            self.send_err(errors.too_many_tokens(subject))
            return
        limit = self.server.options.max_subscriptions or None
        if self.max_subs != -1:  # a user JWT's, the smaller of the two (0 refuses all)
            limit = self.max_subs if limit is None else min(limit, self.max_subs)
        if limit is not None and len(self.subs) >= limit:
            self.log.error(errors.MAX_SUBSCRIPTIONS)
            self.send_err(errors.MAX_SUBSCRIPTIONS)
            return
        if sid not in self.subs:
            sub = Subscription(self, subject, queue, sid)
            try:
                self.sublist.insert(sub)
            except InvalidSubject:
                self.send_err(errors.INVALID_SUBJECT)
                return
            self.subs[sid] = sub
            if self.server.cluster is not None:
                self.server.cluster.local_sub_added(sub)
            if self.server.leafnodes is not None:
                self.server.leafnodes.local_sub_added(sub)
        if self.opts.verbose:
            self.outbound.write(encode.OK)

    def _may_subscribe(self, subject: bytes, queue: bytes) -> bool:
        perms = self.identity.permissions
        if not perms.has_subscribe:
            return True
        if not perms.can_subscribe(subject, queue):
            return False
        if perms.delivery_deny and self.delivery_deny is None and has_wildcard(subject):
            self.delivery_deny = perms  # messages matching deny skip this connection
        return True

    def _sub_violation(self, subject: bytes, queue: bytes, sid: bytes) -> None:
        where = f"Subject {go_quote(subject)}"
        if queue:
            where = f"{where}, Queue: {go_quote(queue)}"
        self.log.error(f"Subscription Violation - {where}, SID {_text(sid)}")
        self.send_err(errors.subscribe_violation(subject, queue))

    def _on_unsub(self, event: Unsub) -> None:
        sid, max_msgs = event
        if self.server.trace:
            self.log.trace(f"<<- [UNSUB {sid.decode(errors='replace')}]")
        sub = self.subs.get(sid)
        if sub is not None:
            if max_msgs > 0 and max_msgs > sub.delivered:
                sub.max_msgs = max_msgs
                self.sublist.plans_changed()
            else:
                self.remove_sub(sub)
        if self.opts.verbose:
            self.outbound.write(encode.OK)

    def remove_sub(self, sub: Subscription) -> None:
        if sub.closed:
            return
        sub.closed = True
        self.subs.pop(sub.sid, None)
        self.sublist.remove(sub)
        if self.server.cluster is not None:
            self.server.cluster.local_sub_removed(sub)
        if self.server.leafnodes is not None:
            self.server.leafnodes.local_sub_removed(sub)

    # --- PUB: the message path ------------------------------------------------------------

    def _on_invalid_publish_subject(self, event: InvalidPublishSubject) -> None:
        """A pedantic client's invalid subject, answered at its PUB line (its payload is still
        to come, or ends badly), as nats-server does: twice if the payload is still to come."""
        self.send_err(errors.INVALID_PUBLISH_SUBJECT)
        if event.waiting:
            self.send_err(errors.INVALID_PUBLISH_SUBJECT)
            self._subject_answered = True

    def _answer_invalid_subject(self) -> None:
        """A pedantic client's complete message to an invalid subject: -ERR, unless it was
        answered at its line already."""
        if self._subject_answered:
            self._subject_answered = False
        else:
            self.send_err(errors.INVALID_PUBLISH_SUBJECT)

    def _on_pub(self, event: Pub) -> None:
        subject, reply, header_size, data = event
        opts = self.opts
        if opts.pedantic and subject and not is_valid_literal_subject(subject):
            self._answer_invalid_subject()
        trace = None
        if header_size > 0:  # (only a message with headers can ask for a trace)
            trace = self._open_trace(subject, header_size, data)
            if trace is not None and not trace.active:
                if trace.skip:
                    return  # dropped: a trace-only message that cannot be traced
                header_size, data, trace = trace.header_size, trace.data, None  # (maybe rewritten)
        if reserved_subject(subject) or (reply and reserved_reply(reply)):
            self._refuse_reserved(subject, reply, len(data) - 2, trace)
            return
        if opts.verbose:
            self.outbound.write(encode.OK)
        dispatch = self.dispatch
        plan = dispatch.plan(subject)
        if LEVELS.trace and plan.plain:
            self._trace_deliveries(plan, subject, reply, header_size, data)
        if trace is None:
            delivered = dispatch.message(plan, subject, reply, header_size, data)
        else:
            delivered = dispatch.traced(plan, subject, reply, header_size, data, trace)
        if not delivered and reply and opts.no_responders:
            self._no_responders(subject, reply)

    def _open_trace(self, subject: bytes, header_size: int, data: bytes):
        """The message trace a message with headers asks for (core/msgtrace.py), or None.
        One that cannot be traced is answered here as nats-server does before it processes
        the message: a destination this client may not publish to is a publish violation
        (the message is dropped), an invalid one is logged."""
        trace = self.dispatch.open_trace(subject, header_size, data)
        if trace is not None and not trace.active:
            if trace.error:
                self.log.error(trace.error)
            if trace.denied:
                self.log.error(f"Publish Violation - Subject {go_quote(trace.dest)}")
                self.send_err(errors.publish_violation(trace.dest))
        return trace

    @staticmethod
    def _trace_deliveries(plan, subject: bytes, reply: bytes, header_size: int, data) -> None:
        """Trace the MSG each plain subscriber gets (queue group deliveries are not traced)."""
        payload = data[:-2]
        for target in plan.plain:
            sub = target[0]
            args = [subject, sub.sid] + ([reply] if reply else [])
            if header_size > 0 and target[3] is not None:
                line = f"HMSG {_text(b' '.join(args))} {header_size} {len(payload)}"
                body = payload
            else:
                body = payload[header_size:] if header_size > 0 else payload
                line = f"MSG {_text(b' '.join(args))} {len(body)}"
            sub.client.log.trace(f"->> [{line}]")
            sub.client.log.trace(f"->> MSG_PAYLOAD: [{_quoted(body)}]")

    def _on_pub_batch(self, batch: PubBatch) -> None:
        """Consecutive PUBs: a span goes to the core whole when it can; otherwise each PUB
        as `_on_pub` would (verbose and pedantic connections take `_on_pub` itself: their
        replies interleave)."""
        opts = self.opts
        if opts.verbose or opts.pedantic:
            for event in batch.expand():
                self._on_pub(event)
                if self.closed_reason is not None:
                    return
            return
        dispatch = self.dispatch
        if batch.span is not None:
            subject = batch.subject
            line_start = b"PUB " + subject + b" "
            plan = dispatch.plan(subject)
            if dispatch.span(plan, batch.span, line_start, batch.count, batch.payload_bytes) is not None:
                return
        dispatch.batch(batch.items(), self._refuse_aside,
                       self._no_responders if opts.no_responders else None)  # fmt: skip

    def _refuse_aside(self, subject: bytes, reply: bytes, data: bytes) -> None:
        """A message of a batch to a reserved subject or reply: refused by `_on_pub`."""
        self._on_pub(Pub(subject, reply, -1, data))

    def _on_pub_run(self, run: PubRun) -> None:
        """Many PUBs with one control line: the core queues them with one join per target.

        Equivalent to `_on_pub` for each message, which it falls back to whenever the
        client's replies interleave (verbose or pedantic, a refusal, no-responders replies).
        """
        subject, reply, parts = run
        opts = self.opts
        dispatch = self.dispatch
        plan = dispatch.plan(subject)
        if (
            opts.verbose
            or plan.reserved
            or (reply and reserved_reply(reply))
            or (opts.pedantic and not is_valid_literal_subject(subject))
            or (reply and opts.no_responders and plan.empty)
        ):
            for event in run.expand():
                self._on_pub(event)
                if self.closed_reason is not None:
                    return
            return
        dispatch.run(plan, subject, reply, parts)

    # --- PUB with publish permissions (installed per connection by _accept_identity) -------

    def _checked_pub(self, event: Pub) -> None:
        subject = event[0]
        if self.dispatch.plan(subject).permitted or self.pub_check.granted(subject, trio.current_time()):
            ClientConnection._on_pub(self, event)
            return
        if self.opts.pedantic and subject and not is_valid_literal_subject(subject):
            self._answer_invalid_subject()  # nats-server: at the line, before permissions
        trace = None
        if event[2] > 0:
            trace = self._open_trace(subject, event[2], event[3])
            if trace is not None and not trace.active:
                if trace.skip:
                    return
                trace = None
        self._pub_violation(subject, len(event[3]) - 2)
        if trace is not None:
            self.dispatch.refused(trace, errors.publish_violation(subject))

    def _checked_pub_batch(self, batch: PubBatch) -> None:
        plan = self.dispatch.plan
        # (a grant is used up by each message it admits: with grants open, go one by one)
        if not self.pub_check.replies and (
            plan(batch.subject).permitted
            if batch.pubs is None  # a span: one subject
            else all(plan(p[0]).permitted for p in batch.pubs)
        ):
            ClientConnection._on_pub_batch(self, batch)
            return
        for event in batch.expand():
            self._checked_pub(event)
            if self.closed_reason is not None:
                return

    def _checked_pub_run(self, run: PubRun) -> None:
        if not self.pub_check.replies and self.dispatch.plan(run[0]).permitted:
            ClientConnection._on_pub_run(self, run)
            return
        for event in run.expand():
            self._checked_pub(event)
            if self.closed_reason is not None:
                return

    def _refuse_reserved(self, subject: bytes, reply: bytes, size: int, trace=None) -> None:
        """nats-server's reserved subjects: gateway-routed `_GR_.` subjects, and replies that
        look like service-import, JetStream-ack or gateway replies. -ERR, no +OK, dropped
        (a traced message's event says why)."""
        self.dispatch.received(1, size)
        if reserved_subject(subject):
            self.log.error(f"Publish Violation - Subject {go_quote(subject)}")
            text = errors.publish_violation(subject)
        else:
            self.log.error(f"Publish Violation - Reply {go_quote(reply)}")
            text = errors.reply_violation(reply)
        self.send_err(text)
        if trace is not None:
            self.dispatch.refused(trace, text)

    def _pub_violation(self, subject: bytes, size: int) -> None:
        """Refused PUB: counted as received, dropped; -ERR (no +OK) and the connection stays."""
        self.in_msgs += 1
        self.in_bytes += size
        self.log.error(f"Publish Violation - Subject {go_quote(subject)}")
        self.send_err(errors.publish_violation(subject))

    def _no_responders(self, subject: bytes, reply: bytes) -> None:
        """Nobody got a request: tell the requester with a 503 status on its reply subscription."""
        for sub in self.sublist.match(reply).psubs:
            if sub.client is self:
                self.outbound.write(encode.no_responders(reply, sub.sid, subject))
                return

    # --- closing --------------------------------------------------------------------------

    def _on_slow_consumer(self) -> None:
        self.server.stats.slow_consumers += 1
        self.account.slow_consumers += 1
        self.log.info(f"Slow Consumer Detected: MaxPending of {self.outbound.max_pending} Exceeded")
        self.close(Reason.SLOW_CONSUMER_PENDING, flush=False)

    def on_stall(self) -> None:
        self.server.stats.stalled_clients += 1

    def awaiting_connect(self) -> bool:
        return not self.connected and self.auth.auth_required

    def count_slow_consumer(self, *, again: bool) -> None:
        self.server.stats.slow_consumers += 1  # nats-server counts every client event
        self.account.slow_consumers += 1

    def on_close(self, reason: str) -> None:
        # Each step on its own: a failing one cannot leave the others' entries behind.
        self.closing_step(self.server.record_closed, self, reason)  # /connz?state=closed
        self.closing_step(self.server.system.client_disconnected, self, reason)
        self.server.forget(self)
        for sub in list(self.subs.values()):
            self.closing_step(self.remove_sub, sub)
        self.dispatch.forget()
        self.account.client_left(self)
        self.log.debug(f"Client connection closed: {reason}", reason=reason)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _quoted(payload: bytes) -> str:
    """A payload as nats-server's trace shows it: a double-quoted, escaped string (cut past
    max_traced_msg_len)."""
    return quoted_payload(payload)


def _is_info(raw: bytes) -> bool:
    """Whether a client's INFO decodes as nats-server's Info struct (else it is closed)."""
    try:
        decode_info(raw)
    except ValueError:
        return False
    return True
