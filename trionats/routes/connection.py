"""One route connection to another server: handshake, remote interest, routed messages.

The acceptor sends its INFO at once; the solicitor sends CONNECT and its INFO at once (never
waiting for the peer's INFO, which would deadlock against nats-server). The route is
registered with the cluster when the peer's first INFO is processed, not on CONNECT; only
then is remote interest (RS+/RS-) stored and are routed messages delivered. A message from
a route goes to local subscribers only (the one-hop rule). Everything here is synchronous
protocol handling on top of `Connection`'s reader, writer and pinger tasks.

Admission, as nats-server's: on a route the peer dialed, nothing but a CONNECT is read until
one has passed the cluster's authorization (the parser's `require_connect` gate: anything else
is an Authorization Violation). Every CONNECT and INFO is decoded into nats-server's structs
(`gojson`, `structs`) before it is acted on; one Go could not decode closes the route as a
Protocol Violation without -ERR.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import random
from typing import TYPE_CHECKING

import trio

from .. import defaults, errors, tls
from ..auth.certmap import names_route
from ..auth.users import is_bcrypt
from ..core.dispatch import Dispatcher
from ..core.msgtrace import TRACE_PROTO
from ..core.sublist import Subscription
from ..connection import Connection
from ..errors import ProtocolError, Reason
from ..protocol import encode
from ..protocol.events import (
    ASub,
    AUnsub,
    Connect,
    Err,
    Info,
    LMsg,
    LSub,
    LUnsub,
    Ping,
    Pong,
    RMsg,
    RMsgRun,
    RMsgSpan,
    RSub,
    RUnsub,
    Sub,
)
from ..protocol.gojson import decode_struct
from ..protocol.parser import RouteParser
from ..protocol.route_handshake import (
    SAME_NAME,
    SELF,
    check_route_connect,
    check_route_info,
    place_route,
    pool_index,
)
from ..protocol.structs import CLIENT_OPTS, INFO, ROUTE_CONNECT
from ..protocol.subjects import is_valid_subject
from .accounts import RouteAccount

if TYPE_CHECKING:
    from .cluster import Cluster, RouteURL



class RouteConnection(Connection):
    id_label = "rid"
    kind = "Router"
    is_route = True
    pending_bounded = False

    def __init__(
        self,
        cluster: Cluster,
        stream: trio.abc.Stream,
        rid: int,
        peer: tuple[str, int],
        *,
        url: RouteURL | None = None,
        implicit: bool = False,
        pinned_account: str = "",
    ) -> None:
        server = cluster.server
        options = server.options
        super().__init__(
            stream,
            rid,
            peer=peer,
            max_pending=options.max_pending,
            write_deadline=cluster.options.write_deadline or options.write_deadline,
            logger=server.log,
            stats=server.stats,
        )
        self.cluster = cluster
        self.server = server
        # nats-server: routes retry after a write timeout unless `cluster.write_timeout: close`.
        self.write_timeout_policy = "close" if cluster.options.write_timeout == "close" else "retry"
        #: Slow consumer counts: every event (server total), and episodes (slow_consumer_stats).
        self.slow_consumer_events = self.slow_consumer_episodes = 0
        self.sublist = server.sublist
        #: The URL we dialed (None when the peer dialed us) and whether gossip named it.
        self.url = url
        self.solicited = url is not None
        # A peer that dialed us must send CONNECT before anything else (nats-server's
        # expectConnect); one we dialed never sends one.
        self.parser = RouteParser(max_control_line=options.max_control_line,
                                  require_connect=not self.solicited)  # fmt: skip
        self.implicit = implicit
        #: Pooling (nats-server's route pools): the account this connection is pinned to
        #: ("" if none; a route we dial for it knows from the start, one we accept from the
        #: peer's INFO), whether the peer pools at all, and the connection's slot among the
        #: peer's connections once registered (its pool index, or the pinned account).
        self.pinned_account = pinned_account
        self.pooled = False
        self.slot: int | str = 0
        self.remote_id = ""
        self.remote_name = ""
        #: The peer's own INFO, as nats-server's Info struct decodes it.
        self.remote_info: dict = {}
        self.info_received = False
        self.registered = False
        #: A route to ourselves: never dialed again.
        self.to_self = False
        self.headers = False  # the peer takes HMSG
        self.pings_out = 0
        self.rtt = 0.0
        self.rtt_start = 0.0
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        #: The peer's CONNECT as nats-server's ClientOpts decodes it (a later CONNECT is
        #: decoded on top), and its credentials, checked again when a reload changes
        #: cluster.authorization.
        self.connect_opts: dict = {}
        self.connect_user = self.connect_password = ""
        #: The certificate (DER) of a peer that dialed us over TLS.
        self.peer_cert: bytes | None = None
        #: Remote interest by (account, subject, queue): one entry per subject or queue
        #: group; each subscription's client is the route as its account sees it.
        self.remote_subs: dict[tuple[bytes, bytes, bytes | None], Subscription] = {}
        #: The route as each account it has carried sees it (routes/accounts.py), by name.
        self.views: dict[bytes, RouteAccount] = {}
        #: A CONNECT (raw, decoded) waiting for its bcrypt check, and the events of its read
        #: after it.
        self._pending_connect: tuple[bytes, dict] | None = None
        self._paused_events = None
        self._password_ok = False
        #: Counts the messages no account takes (an unknown one, or before the route is
        #: registered); each account's are delivered by its view's dispatcher.
        self.dispatch = Dispatcher(self, self.sublist, server.stats, trio.current_time,
                                   inbound=True, tracer=server.tracing.publish)  # fmt: skip
        #: An accepted route must send its CONNECT within the cluster's auth timeout.
        self.connect_deadline = math.inf if self.solicited else self.start_time + cluster.auth_timeout
        # nats-server's first route PING comes about a second after the route is created.
        first = defaults.FIRST_ROUTE_PING_INTERVAL
        self.next_ping = min(self.start_time + first + random.uniform(0, first / 5),
                             self.connect_deadline)  # fmt: skip

    # --- TLS and greeting -----------------------------------------------------------------

    async def upgrade(self) -> None:
        """Cluster TLS: the handshake comes first, before any route protocol byte (both ways)."""
        cluster = self.cluster
        opts = cluster.options.tls
        if opts is None:
            return
        context = cluster.tls_client if self.solicited else cluster.tls_server
        try:
            self.stream = await tls.handshake(
                self.stream,
                context,
                tls.handshake_timeout(opts),
                server_side=not self.solicited,
                server_hostname=cluster.tls_server_name(self.url) if self.solicited else None,
                pinned_certs=opts.pinned_certs,
            )
        except tls.HandshakeError as error:
            (self.log.debug if error.probe else self.log.error)(
                f"TLS route handshake error: {error}"
            )
            self.close(Reason.TLS_HANDSHAKE, flush=False)
            return
        self.outbound.sock = None  # every byte must now go through the TLS stream
        if not self.solicited:  # for verify_and_map / verify_cert_and_check_known_urls
            self.peer_cert = tls.peer_certificate(self.stream)
        self.log.debug("TLS handshake complete")

    def on_start(self) -> None:
        cluster = self.cluster
        if self.solicited:
            self.log.debug(f"Route connect msg sent to {self.url.redacted}")
            self.outbound.write(b"CONNECT " + json.dumps(cluster.connect_fields(self.url),
                                separators=(",", ":")).encode() + b"\r\n")  # fmt: skip
            if cluster.pool_size > 0 and not self.pinned_account:
                return  # a pool connection we dial: our INFO names its slot, once chosen
        self.outbound.write(encode.info(cluster.info_fields(account=self.pinned_account)))

    # --- reading --------------------------------------------------------------------------

    def process(self, data: bytes) -> None:
        self.last_activity = trio.current_time()
        self._dispatch(iter(self.parser.feed(data)))

    def resume(self) -> None:
        """The bcrypt check of the route's CONNECT is done: judge it, go on with the events."""
        (raw, opts), self._pending_connect = self._pending_connect, None
        if not self._password_ok:
            self._refuse_credentials()
            return
        self._accept_connect(raw, opts)
        if self.closed_reason is None:
            self._dispatch(self._paused_events)

    def _dispatch(self, events) -> None:
        for event in events:
            kind = type(event)
            if kind is RMsgSpan:
                self._on_rmsg_span(event)
            elif kind is RMsgRun:
                self._on_rmsg_run(event)
            elif kind is RMsg:
                self._on_rmsg(event)
            elif kind is RSub:
                self._on_rsub(event)
            elif kind is RUnsub:
                self._on_runsub(event)
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
                self.log.error(f"Route Error {event.text.decode(errors='replace')}")
                self.close(Reason.PARSE_ERROR)  # what was queued before (a PONG) still goes out
            elif kind is LSub or kind is LUnsub or kind is LMsg or kind is ASub or kind is AUnsub:
                pass  # leaf-node and gateway traffic: trionats has neither
            elif kind is Sub:
                pass  # a client's SUB on a route: nats-server reads it and does nothing
            if self.closed_reason is not None:
                return

    def on_protocol_error(self, error: ProtocolError) -> None:
        """As nats-server: anything before CONNECT on an accepted route is an Authorization
        Violation, an unknown op gets -ERR 'Unknown Protocol Operation', a malformed line of a
        known op closes silently; each as a Protocol Violation except the first."""
        if error.reason == Reason.AUTH_VIOLATION:
            self.log.error("authentication error")
        elif error.err == errors.UNKNOWN_PROTOCOL:
            self.log.error(f"Router parser ERROR: {error.err}")
        else:
            self.log.error(f"Router parser ERROR: {error}")
        if error.err is not None:
            self.outbound.write(encode.err(error.err))
        self.close(error.reason)  # what was queued before (and the -ERR) still goes out

    # --- handshake ------------------------------------------------------------------------

    def _on_connect(self, event: Connect) -> None:
        # nats-server decodes a route's CONNECT into ClientOpts first (on top of the previous
        # one), authenticates, then decodes it again into its route connectInfo.
        raw = event.raw
        try:
            opts = decode_struct(raw, CLIENT_OPTS, self.connect_opts)
        except ValueError as error:
            self._undecodable("CONNECT", error)
            return
        self.connect_opts = opts
        credential = self.cluster.options.authorization
        self.connect_user = opts.get("user", "")
        self.connect_password = opts.get("pass", "")
        certified = self._certificate_verdict(credential)
        if certified is not None:  # the certificate decides, not user and password
            if certified:
                self._accept_connect(raw, opts)
            else:
                self._refuse_credentials()
            return
        if credential is not None and credential.user:
            user_ok = _same(self.connect_user, credential.user)
            password = self.connect_password
            if is_bcrypt(credential.password):
                self._pending_connect = raw, opts
                self.awaiting = lambda: self._check_password(user_ok, password, credential.password)
                return
            if not (user_ok and _same(password, credential.password)):
                self._refuse_credentials()
                return
        self._accept_connect(raw, opts)

    def _undecodable(self, what: str, error: ValueError) -> None:
        """A CONNECT or INFO Go's json.Unmarshal refuses: nats-server logs the error and
        closes the route as a Protocol Violation, without -ERR."""
        self.log.error(f"Route {what} JSON: {error}")
        self.close(Reason.PROTOCOL_VIOLATION)

    async def _check_password(self, user_ok: bool, password: str, hashed: str) -> None:
        ok = await self.server.auth.bcrypt_matches(password, hashed)
        self._password_ok = ok and user_ok

    def _refuse_credentials(self) -> None:
        user = self.connect_user
        self.log.error(f'authentication error - User "{user}"' if user else "authentication error")
        self._refuse(errors.AUTH_VIOLATION, Reason.AUTH_VIOLATION)

    def _certificate_verdict(self, credential) -> bool | None:
        """With cluster tls `verify_and_map` or `verify_cert_and_check_known_urls`: whether
        the peer's certificate authorizes it (nats-server checks nothing else then); None
        without them."""
        opts = self.cluster.options.tls
        if opts is None or not (opts.verify_and_map or opts.verify_cert_and_check_known_urls):
            return None
        known = opts.verify_cert_and_check_known_urls
        hosts = [url.host for url in self.cluster.urls] if known else []
        user = credential.user if credential is not None else ""
        return names_route(self.peer_cert, user=user, tls_map=opts.verify_and_map,
                           known_hosts=hosts)  # fmt: skip

    def reauthorize(self, credential) -> None:
        """A reload changed cluster.authorization: as nats-server, a route the peer dialed
        whose CONNECT no longer passes gets -ERR 'Authorization Violation' and is closed.
        Routes this server dialed are left alone (the peer judges what we sent it)."""
        if self.solicited or self.closed_reason is not None or self.awaiting_connect():
            return  # (a CONNECT still to come is checked against the new credential)
        certified = self._certificate_verdict(credential)
        if certified is not None:
            if not certified:
                self._refuse_after_reload()
            return
        if credential is None or not credential.user:
            return  # no credential asked for now
        user_ok = _same(self.connect_user, credential.user)
        if is_bcrypt(credential.password):
            self.start_task(self._recheck_password, user_ok, credential)
        elif not (user_ok and _same(self.connect_password, credential.password)):
            self._refuse_after_reload()

    async def _recheck_password(self, user_ok: bool, credential) -> None:
        ok = await self.server.auth.bcrypt_matches(self.connect_password, credential.password)
        if not (ok and user_ok) and self.cluster.options.authorization is credential:
            self._refuse_after_reload()  # (unless another reload came meanwhile)

    def _refuse_after_reload(self) -> None:
        if self.closed_reason is None:
            self.log.error(f'authentication error - User "{self.connect_user or "N/A"}"')
            self._refuse(errors.AUTH_VIOLATION, Reason.AUTH_VIOLATION)

    def _accept_connect(self, raw: bytes, opts: dict) -> None:
        """The CONNECT passed authentication: nats-server's remaining checks, in its order."""
        if opts.get("account") or opts.get("new_account"):
            self._refuse_credentials()  # (nats-server: an account designation is refused)
            return
        cluster = self.cluster
        if opts.get("lang"):  # a client on the route port, whatever else it sent
            fields = {"lang": opts["lang"]}
        else:
            try:
                fields = decode_struct(raw, ROUTE_CONNECT)
            except ValueError as error:
                self._undecodable("CONNECT", error)
                return
        verdict = check_route_connect(fields, cluster=cluster.name, dynamic=cluster.dynamic,
                                      headers_supported=not self.server.options.no_header_support)
        if verdict.error is not None:
            self.log.error(verdict.error)
            self._refuse(verdict.error, verdict.reason)
            return
        self.parser.headers = verdict.headers  # (HPUB: only with headers agreed on)
        if verdict.adopt_cluster is not None:
            cluster.adopt_name(verdict.adopt_cluster, static=verdict.adopt_static, keep=self)
        self.connect_deadline = math.inf
        self.parser.require_connect = False  # the peer is admitted: its other ops count now

    def _refuse(self, text: str, reason: str) -> None:
        self.outbound.write(encode.err(text))
        self.close(reason)

    def _on_info(self, event: Info) -> None:
        try:
            info = decode_struct(event.raw, INFO)  # (every INFO, gossip too, as nats-server)
        except ValueError as error:
            self._undecodable("INFO", error)
            return
        if not self.info_received:
            self.info_received = True
            self._on_first_info(info)
        elif self.remote_id and info.get("server_id", "") != self.remote_id:
            self.cluster.learn_peer(info)  # gossip: a server this peer just met
        else:
            self._on_info_update(info)

    def _on_first_info(self, info: dict) -> None:
        cluster = self.cluster
        problem = check_route_info(info, server_id=self.server.server_id,
                                   server_name=self.server.options.server_name)  # fmt: skip
        if problem == SELF:
            self.to_self = True
            self.log.debug("Detected route to self, ignoring")
            self.close(Reason.DUPLICATE_ROUTE, flush=False)
            return
        if problem == SAME_NAME:
            self.log.error(f"Remote server has a duplicate name: {info.get('server_name')!r}")
            self.close(Reason.DUPLICATE_SERVER_NAME, flush=False)
            return
        if info.get("cluster"):  # (an INFO without a cluster name is not judged on it)
            theirs = {"cluster": info["cluster"], "cluster_dynamic": info.get("cluster_dynamic")}
            verdict = check_route_connect(theirs, cluster=cluster.name, dynamic=cluster.dynamic)
            if verdict.error is not None:
                self.log.error(verdict.error)
                self.close(verdict.reason, flush=False)
                return
            if verdict.adopt_cluster is not None:
                cluster.adopt_name(verdict.adopt_cluster, static=verdict.adopt_static, keep=self)
        mode = info.get("compression", "")
        if mode not in COMPRESSION_MODES and _negotiates_compression(cluster.options.compression):
            # nats-server (with compression other than off) refuses a mode it does not know;
            # trionats never compresses but says the same.
            text = f"unsupported route compression mode {errors.go_quote(mode)}"
            self.log.error(text)
            self._refuse(text, Reason.PROTOCOL_VIOLATION)
            return
        self.remote_id = info.get("server_id", "")
        self.remote_name = info.get("server_name", "")
        self.remote_info = info
        self.headers = info.get("headers", False) and not self.server.options.no_header_support
        self.parser.headers = self.headers
        if not self._place(info):
            return
        first = cluster.register(self)
        if first is None:
            self.log.debug("Duplicate route, closing")
            self.close(Reason.DUPLICATE_ROUTE, flush=False)
            return
        self.registered = True
        if self.solicited and cluster.pool_size > 0 and not self.pinned_account:
            # our INFO, held back in on_start: with the slot chosen (0 for a peer that does
            # not pool)
            self.outbound.write(encode.info(cluster.info_fields(pool_idx=self.slot)))
        self.log.info("Route connection created")
        dump = [line for line in cluster.interest.dump() if self.carries(_line_account(line))]
        if dump:
            self.outbound.write(b"".join(self._own_lines(dump)))
        if first:
            cluster.registered(self)
        elif self.pinned_account:
            cluster.pinned_registered(self)

    def _place(self, info: dict) -> bool:
        """Pooling, as nats-server's addRoute judges it: whether the peer pools, and which
        account a route it dialed is pinned to (it must be one we pin too). False: refused
        (-ERR, closed as a Protocol Violation or for a missing account)."""
        cluster = self.cluster
        account = self.pinned_account or ("" if self.solicited else info.get("route_account", ""))
        if account and account not in self.server.accounts:
            text = f"Unable to lookup account {errors.go_quote(account)}: account missing"
            self.log.error(text)
            self._refuse(text, Reason.MISSING_ACCOUNT)
            return False
        placement = place_route(info, pool_size=cluster.pool_size, solicited=self.solicited,
                                account=self.pinned_account)  # fmt: skip
        text = placement.error
        if text is None and placement.account and placement.account not in cluster.pinned:
            text = f"No route for account {errors.go_quote(placement.account)}"
        if text is not None:
            self.log.error(text)
            self._refuse(text, Reason.PROTOCOL_VIOLATION)
            return False
        self.pooled = placement.pooled
        self.pool_size = placement.size
        self.slot = placement.account or placement.index
        if placement.account:
            self.pinned_account = placement.account
            self.parser.pin(placement.account.encode())
            self.views.clear()  # (one made before would name the account in its lines)
        return True

    def carries(self, account: str) -> bool:
        """Whether this connection carries `account`'s interest (and so its messages): all
        of them to a peer that does not pool; else the pinned one, or those whose pool
        index is this connection's (accounts we pin take their own route only)."""
        if not self.pooled:
            return True
        if self.pinned_account:
            return account == self.pinned_account
        cluster = self.cluster
        return account not in cluster.pinned and pool_index(cluster.pool_size, account) == self.slot

    def _own_lines(self, lines: list[bytes]) -> list[bytes]:
        """Interest lines as this connection sends them: without the account when pinned."""
        if not self.pinned_account:
            return lines
        cut = len(self.pinned_account.encode()) + 1
        return [line[:4] + line[4 + cut :] for line in lines]

    def _on_info_update(self, info: dict) -> None:
        """An async INFO from the peer itself: new client URLs, or lame duck mode."""
        urls_before = self.client_urls(), self.client_urls("ws_connect_urls")
        self.remote_info = info
        if info.get("ldm"):
            self.log.info("Peer entered lame duck mode")
        if (self.client_urls(), self.client_urls("ws_connect_urls")) != urls_before:
            self.server.cluster_urls_changed()

    def client_urls(self, field: str = "connect_urls") -> list[str]:
        """The peer's client URLs (or `ws_connect_urls`), as its INFO gives them (none while
        it is in lame duck)."""
        if self.remote_info.get("ldm"):
            return []
        return list(self.remote_info.get(field) or ())

    def gossip_info(self) -> dict:
        """The peer's INFO as we tell other routes about it: nats-server re-encodes its Info
        struct (no nonce; Go writes a []byte as base64)."""
        gossip = {}
        for key, value in self.remote_info.items():
            if value is None or key == "nonce":
                continue
            gossip[key] = base64.b64encode(value).decode() if type(value) is bytes else value
        return gossip

    # --- accounts -------------------------------------------------------------------------

    def view(self, account: bytes) -> RouteAccount | None:
        """The route as `account` sees it, or None if this server has no such account
        (nothing is kept for a name a peer made up)."""
        view = self.views.get(account)
        if view is None:
            try:
                found = self.server.accounts.get(account.decode())
            except UnicodeDecodeError:
                found = None
            if found is None:
                return None
            token = b"" if self.pinned_account else account  # (a pinned route's lines name none)
            view = self.views[account] = RouteAccount(self, found, token)
        return view

    # --- remote interest ------------------------------------------------------------------

    def _on_rsub(self, event: RSub) -> None:
        account, subject, queue, weight = event
        view = self.view(account)
        if view is None:  # nats-server (static accounts): an error line, the route stays
            self.log.error(f"Unknown account {errors.go_quote(account)} for remote subject "
                           f"{errors.go_quote(subject)}")  # fmt: skip
            return
        permissions = self.cluster.permissions
        if permissions is not None and not permissions.can_subscribe(subject, b""):
            self.log.debug(f"Can not export {subject.decode(errors='replace')!r}, ignoring")
            return
        if not is_valid_subject(subject):
            # nats-server's sublist refuses it: an error line and -ERR (before the peer's INFO
            # too); the route stays.
            self.log.error("Could not insert subscription: sublist: invalid subject")
            self.outbound.write(encode.err(errors.INVALID_SUBSCRIPTION))
            return
        if not self.registered:
            return
        key = (account, subject, queue)
        sub = self.remote_subs.get(key)
        sublist = view.account.sublist
        if sub is not None:
            if queue is not None and weight != sub.weight:
                sub.weight = max(weight, 1)
                sublist.plans_changed()  # plans spread picks by weight: rebuild them
            return
        sub = Subscription(view, subject, queue, b"", max(weight, 1))
        sublist.insert(sub)
        self.remote_subs[key] = sub

    def _on_runsub(self, event: RUnsub) -> None:
        account, subject, queue = event
        sub = self.remote_subs.pop((account, subject, queue), None)
        if sub is not None:
            sub.closed = True
            sub.client.account.sublist.remove(sub)
        elif account not in self.views and self.view(account) is None:
            self.log.debug(f"Unknown account {errors.go_quote(account)} for subject "
                           f"{errors.go_quote(subject)}")  # fmt: skip

    def _drop_remote_interest(self) -> None:
        for sub in self.remote_subs.values():
            sub.closed = True
            self.closing_step(sub.client.account.sublist.remove, sub)
        self.remote_subs.clear()

    def remove_sub(self, sub: Subscription) -> None:
        """Route subscriptions never auto-unsubscribe (no max_msgs); kept for the interface."""

    # --- routed messages ------------------------------------------------------------------

    def _receiver(self, account: bytes, subject: bytes) -> Dispatcher | None:
        """The dispatcher of the account a routed message names, or None if it goes to
        nobody (the route is not registered yet, or the account is unknown here)."""
        if not self.registered:
            return None
        view = self.views.get(account) or self.view(account)
        if view is None:
            self.log.debug(f"Unknown account {errors.go_quote(account)} for routed message "
                           f"on subject: {errors.go_quote(subject)}")  # fmt: skip
            return None
        return view.dispatch

    def _on_rmsg(self, event: RMsg) -> None:
        account, subject, reply, queues, header_size, data = event
        view = self.views.get(account) if self.registered else None  # (the common case)
        dispatch = view.dispatch if view is not None else self._receiver(account, subject)
        if dispatch is None:
            self.dispatch.received(1, len(data) - 2)  # counted, delivered to nobody
            return
        if header_size > 0:
            trace = dispatch.open_trace(subject, header_size, data)
            if trace is not None:
                if trace.active:
                    dispatch.traced(dispatch.plan(subject), subject, reply, header_size, data,
                                    trace, queues)  # fmt: skip
                    return
                if trace.error:
                    self.log.error(trace.error)
                if trace.denied:
                    self.log.error(f"Publish Violation - Subject {errors.go_quote(trace.dest)}")
                if trace.skip:
                    return
                header_size, data = trace.header_size, trace.data
        dispatch.message(dispatch.plan(subject), subject, reply, header_size, data, queues)

    @property
    def traces(self) -> bool:
        """The peer traces the messages it is forwarded (its route INFO `proto` is 3 or more):
        a traced message goes to it with `Nats-Trace-Hop`, trace-only ones too."""
        return self.remote_info.get("proto", 0) >= TRACE_PROTO

    def _on_rmsg_run(self, run: RMsgRun) -> None:
        """Identical RMSGs (a publisher's run, forwarded as one): the core queues them with
        one join per target, as `_on_rmsg` would one by one."""
        account, subject, reply, queues, parts = run
        dispatch = self._receiver(account, subject)
        if dispatch is None:
            self.dispatch.received(len(parts), sum(len(part) - 2 for part in parts))
            return
        dispatch.run(dispatch.plan(subject), subject, reply, parts, queues)

    def _on_rmsg_span(self, span: RMsgSpan) -> None:
        """RMSGs in canonical form to one subject: the core rewrites the received bytes into
        each local subscriber's MSGs, as a client's span of PUBs is."""
        account, subject, data, size, count = span
        dispatch = self._receiver(account, subject)
        if dispatch is not None:
            line_start = b"RMSG " + account + b" " + subject + b" "
            if dispatch.span(dispatch.plan(subject), data, line_start, count, size) is not None:
                return
        for event in span.expand():
            self._on_rmsg(event)

    def forward_in(
        self, view: RouteAccount, subject: bytes, reply: bytes, queues: list[bytes],
        header_size: int, data: bytes,
    ) -> None:  # fmt: skip
        """Send a local message of `view`'s account to this server (RMSG, or HMSG if it has
        headers), naming the queue groups it is for."""
        if header_size >= 0 and not self.headers:
            data = data[header_size:]  # the peer cannot take headers: the bare payload
            header_size = -1
        size = len(data) - 2
        line = encode.rmsg_line(view.token, subject, reply, queues, header_size, size)
        self.outbound.write_msg(line, b"", data, len(line) + len(data))
        self.out_msgs += 1
        self.out_bytes += size

    def send_interest(self, account: bytes, line: bytes) -> None:
        """Our interest changed in `account` (`line`: its RS+ or RS-), if this connection
        carries that account."""
        if self.registered and self.carries(account.decode()):
            self.outbound.write(self._own_lines([line])[0])

    # --- keepalive and closing ------------------------------------------------------------

    def on_ping_timer(self) -> None:
        now = trio.current_time()
        if now >= self.connect_deadline:
            self.log.error("Route authentication timeout: no CONNECT")
            self._refuse(errors.AUTH_TIMEOUT, Reason.AUTH_TIMEOUT)
            return
        if self.pings_out + 1 > self.cluster.ping_max:
            self.log.debug("Stale Route Connection - Closing")
            self.server.stats.stale_connections += 1
            self._refuse(errors.STALE_CONNECTION, Reason.STALE_CONNECTION)
            return
        self.pings_out += 1
        self.rtt_start = now
        self.outbound.write(encode.PING)
        self.reschedule_ping(now + self.cluster.ping_interval)

    def awaiting_connect(self) -> bool:
        return self.connect_deadline != math.inf  # accepted, its CONNECT not accepted yet

    def count_slow_consumer(self, *, again: bool) -> None:
        # nats-server counts every event in the total, and a route once per episode (until a
        # write completes in time again) in slow_consumer_stats.
        self.server.stats.slow_consumers += 1
        self.slow_consumer_events += 1
        if not again:
            self.slow_consumer_episodes += 1

    def on_close(self, reason: str) -> None:
        self._drop_remote_interest()
        self.dispatch.forget()
        for view in self.views.values():
            view.dispatch.forget()
        if self.registered:
            self.log.info(f"Route connection closed: {reason}", reason=reason)
            self.closing_step(self.cluster.unregister, self)
        else:
            self.log.debug(f"Route connection closed: {reason}", reason=reason)


#: The compression modes a route INFO may name (nats-server's selectCompressionMode).
COMPRESSION_MODES = frozenset(
    {"", "not supported", "off", "accept", "s2_auto", "s2_uncompressed", "s2_fast", "s2_better",
     "s2_best"}
)  # fmt: skip


def _negotiates_compression(configured: str) -> bool:
    """Whether nats-server with this `cluster.compression` looks at a peer's mode at all."""
    return configured.lower() not in ("", "off", "disabled", "false", "not supported",
                                      "not_supported")  # fmt: skip


def _line_account(line: bytes) -> str:
    """The account an `RS+ <account> ...` line names."""
    return line.split(b" ", 2)[1].decode()


def _same(given: str, expected: str) -> bool:
    """Credentials compared in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())
