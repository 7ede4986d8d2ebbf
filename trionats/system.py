"""The system account's services: `$SYS.REQ.SERVER.*` requests answered by the server itself,
and its events (client connect/disconnect, statsz heartbeats, lame duck, shutdown).

nats-server runs an internal client in the system account: its subscriptions sit in that
account's sublist like anyone's, and what they receive goes to handlers that answer with the
server's own messages (`ServerAPIResponse`: `{"server": ServerInfo, "data": ...}`). Here the
same: `SystemClient` is a subscriber with no socket. Its `outbound` is `_Inbox`, which takes
the bytes the delivery core would queue for a connection (the MSG/HMSG lines it renders for
any subscriber, one message or a joined run) and hands each message, as (subject, reply,
headers, payload), to `SystemServices.on_request`. A handler builds its answer from the same
snapshot builders as the HTTP monitor (monitor/snapshots.py) and publishes it at once through
a `Dispatcher` the server owns for its internal sender, as message tracing does (tracing.py).
All of it is synchronous: nothing awaits. The request is handed over inside the requester's
delivery and answered from the run loop just after it (`run_sync_soon`), once that delivery
has been counted, as nats-server answers from its internal receive loop.

As in nats-server, the internal client is no connection (/connz does not list it) and its
deliveries are not counted as sent (only its replies are); unlike nats-server, its
subscriptions are not counted in /subsz and /varz (see `SystemServices`). The cluster
announces these subscriptions to routes (routes/cluster.py), so a request reaches every node
of a cluster and each answers.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING

import trio

from . import defaults
from .core.dispatch import Bridge, Dispatcher
from .core.imports import REQUEST_INFO
from .core.sublist import Subscription
from .ids import random_name
from .monitor import disabled, snapshots
from .monitor.snapshots import Clock, QueryError
from .protocol import gojson
from .protocol.encode import go_json
from .tracing import InternalSender, _Totals

if TYPE_CHECKING:
    from .server import Server

#: The monitoring endpoints served under `$SYS.REQ.SERVER.PING.<name>` and
#: `$SYS.REQ.SERVER.<id>.<name>`; GATEWAYZ, LEAFZ and JSZ as nats-server answers them with
#: those features off (monitor/disabled.py). nats-server's also has PROFILEZ, EXPVARZ,
#: IPQUEUESZ, RAFTZ, RELOAD, KICK and LDM: not served here (no responders).
SERVER_ENDPOINTS = ("VARZ", "CONNZ", "ROUTEZ", "SUBSZ", "HEALTHZ", "ACCOUNTZ", "IDZ", "STATSZ",
                    "GATEWAYZ", "LEAFZ", "JSZ")  # fmt: skip
#: The per-account endpoints under `$SYS.REQ.ACCOUNT.<account>.<name>`.
ACCOUNT_ENDPOINTS = ("CONNZ", "SUBSZ", "STATZ")
#: A user's own details, asked through the system account's import in every account
#: (`$SYS.REQ.USER.INFO`, mapped to this with the account's name; core/imports.py).
USER_INFO = b"$SYS.REQ.USER.*.INFO"

PING = b"$SYS.REQ.SERVER.PING"

#: nats-server's advisory types of the account connection events.
CONNECT_EVENT = "io.nats.server.advisory.v1.client_connect"
DISCONNECT_EVENT = "io.nats.server.advisory.v1.client_disconnect"

#: Request body options (nats-server's *EventOptions JSON) -> the HTTP endpoint's query.
_CONNZ_OPTIONS = {"sort": "sort", "auth": "auth", "subscriptions": "subs", "offset": "offset",
                  "limit": "limit", "cid": "cid", "state": "state", "user": "user",
                  "acc": "acc"}  # fmt: skip
_SUBSZ_OPTIONS = {"offset": "offset", "limit": "limit", "subscriptions": "subs",
                  "account": "acc", "test": "test"}  # fmt: skip
_ROUTEZ_OPTIONS = {"subscriptions": "subs"}
_ACCOUNTZ_OPTIONS = {"account": "acc"}
_CONN_STATES = {0: "open", 1: "closed", 2: "all"}


class SystemClient(Bridge):
    """The internal client's face to the delivery core: a subscriber without a socket. As an
    in-process receiver (a `Bridge`), it is handed each message as it is, nothing rendered."""

    cid = None  # no connection: not listed as one (its subscriptions are counted)
    headers = True
    pub_check = None

    def __init__(self, services: SystemServices) -> None:
        self.services = services
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0

    def deliver(self, subject: bytes, reply: bytes, header_size: int, data: bytes,
                source) -> int:  # fmt: skip
        if header_size > 0:
            headers, payload = data[:header_size], data[header_size:-2]
        else:
            headers, payload = b"", data[:-2]
        self.services.on_request(subject, reply, headers, payload)
        return 1  # the request has a responder (no 503); on_request uncounts it

    def remove_sub(self, sub) -> None:  # (never reached: its subscriptions have no limit)
        sub.closed = True


class SystemServices:
    """The internal client's subscriptions and the handlers answering them."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.client = SystemClient(self)
        self.subscriptions: list[Subscription] = []
        #: Those peers are told of over routes: all but the user info's, which only the
        #: requester's server can answer (nats-server's internal-only subscription).
        self.announced: list[Subscription] = []
        self._handlers: dict[bytes, object] = {}
        #: Set by the shutdown event: nothing is sent afterwards (nats-server's closed send queue).
        self.stopped = False
        self._heartbeats = trio.CancelScope()
        #: cid -> start time, of the clients whose connect event went out (their disconnect
        #: event follows, with the same start).
        self._announced: dict[int, str] = {}
        self._account_handlers = {b"CONNZ": self._account_connz, b"SUBSZ": self._account_subsz,
                                  b"STATZ": self._account_statz}  # fmt: skip
        account = server.accounts.get(server.accounts.system_account)
        self.account = account
        self.dispatch = None
        if account is None:
            return
        self.dispatch = Dispatcher(InternalSender(), account.sublist, _Totals(), trio.current_time)
        server_id = server.server_id
        for name in SERVER_ENDPOINTS:
            handler = getattr(self, "_" + name.lower())
            self._handlers[b"$SYS.REQ.SERVER.PING." + name.encode()] = handler
            self._handlers[f"$SYS.REQ.SERVER.{server_id}.{name}".encode()] = handler
        self._handlers[PING] = self._statsz
        subjects = list(self._handlers)
        subjects += [f"$SYS.REQ.ACCOUNT.*.{name}".encode() for name in ACCOUNT_ENDPOINTS]
        subjects.append(USER_INFO)
        sublist = account.sublist
        for number, subject in enumerate(subjects, 1):
            sub = Subscription(self.client, subject, None, str(number).encode())
            # Not counted (/subsz, /varz, /accountz): nats-server counts its internal client's
            # 57 subscriptions and 4 service imports per account, a set trionats does not
            # reproduce, so its figures stay those of the clients (docs/differences.md).
            sublist.insert_internal(sub)
            self.subscriptions.append(sub)
            if subject != USER_INFO:
                self.announced.append(sub)

    # --- receiving ------------------------------------------------------------------------

    def on_request(self, subject: bytes, reply: bytes, headers: bytes, payload: bytes) -> None:
        """One message to the internal client, in the publisher's delivery: a request is
        answered once that delivery is done (see `_deferred`)."""
        stats = self.server.stats  # nats-server does not count what its internal client gets
        stats.out_msgs -= 1
        stats.out_bytes -= len(headers) + len(payload)
        if not reply:  # (the server's own messages have none: no loops)
            return
        handler = self._handlers.get(subject)
        if handler is not None:
            call = (self._answer, handler, reply, payload, None)
        else:
            tokens = subject.split(b".")
            if len(tokens) != 5 or tokens[:2] != [b"$SYS", b"REQ"]:
                return
            kind, name, endpoint = tokens[2:]
            if kind == b"USER" and endpoint == b"INFO":
                call = (self._user_info, reply, headers)
            elif kind == b"ACCOUNT" and endpoint in self._account_handlers:
                handler = self._account_handlers[endpoint]
                call = (self._answer, handler, reply, payload, name.decode())
            else:
                return
        trio.lowlevel.current_trio_token().run_sync_soon(self._deferred, *call)

    def _deferred(self, handler, *args) -> None:
        """Answer a request from the run loop, right after the publisher's delivery (which
        has then counted the request, as nats-server's figures include it), as nats-server
        answers from its internal receive loop. Synchronous: nothing awaits. A failure is
        contained here (it would otherwise end the run) and reported as an internal error."""
        try:
            handler(*args)
        except Exception as exc:
            from .containment import report

            report(self.server.log, self.server.stats, exc, "Internal error answering a system request")

    def _answer(self, handler, reply: bytes, payload: bytes, account) -> None:
        options: dict = {}
        if payload.strip():
            try:
                options = request_options(payload)
            except ValueError as error:
                self._error(reply, 400, str(error))
                return
            if self._filtered(options):
                return
        clock = Clock(time.time_ns(), trio.current_time())
        try:
            if account is None:
                body = handler(options, clock)
            else:
                body = handler(account, options, clock)
        except QueryError as error:
            self._error(reply, 500, str(error))
            return
        if body is not None:  # (None: this server has nothing to say)
            self.publish(reply, body)

    def _filtered(self, options: dict) -> bool:
        """nats-server's EventFilterOptions: a request may name the servers that answer."""
        server = self.server
        cluster = server.cluster.name if server.cluster is not None else ""
        wanted = [(options.get("server_name", ""), server.name),
                  (options.get("host", ""), server.info_host_port()[0]),
                  (options.get("cluster", ""), cluster)]  # fmt: skip
        exact = options.get("exact_match", False)
        for want, have in wanted:
            if want and (want != have if exact else want not in have):
                return True
        tags = options.get("tags") or []
        if any(tag not in server.options.server_tags for tag in tags):
            return True
        return bool(options.get("domain"))  # no JetStream domain here

    # --- sending --------------------------------------------------------------------------

    def publish(self, subject: bytes, body: dict) -> None:
        """A message from the server, in the system account (counted as sent, not received)."""
        if self.stopped:
            return
        data = go_json(body).encode() + b"\r\n"
        dispatch = self.dispatch
        delivered = dispatch.message(dispatch.plan(subject), subject, b"", -1, data)
        stats = self.server.stats
        stats.out_msgs += delivered
        stats.out_bytes += delivered * (len(data) - 2)

    def _error(self, reply: bytes, code: int, description: str = "") -> None:
        info = self.server.tracing.server_info()
        error = {"code": code, "description": description} if description else {"code": code}
        self.publish(reply, {"server": info, "error": error})

    def _response(self, data: dict) -> dict:
        """nats-server's ServerAPIResponse."""
        return {"server": self.server.tracing.server_info(), "data": data}

    # --- events ---------------------------------------------------------------------------

    def client_connected(self, client) -> None:
        """`$SYS.ACCOUNT.<account>.CONNECT`, nats-server's ConnectEventMsg, once a client's
        CONNECT is accepted (once per connection)."""
        if self.dispatch is None or client.cid in self._announced:
            return
        clock = Clock(time.time_ns(), trio.current_time())
        body = self._event(CONNECT_EVENT, clock.wall_ns)
        body["client"] = info = _client_info(client, clock)
        self._announced[client.cid] = info["start"]
        self.publish(f"$SYS.ACCOUNT.{client.account.name}.CONNECT".encode(), body)

    def client_disconnected(self, client, reason: str) -> None:
        """`$SYS.ACCOUNT.<account>.DISCONNECT`, nats-server's DisconnectEventMsg, for a
        client whose connect event went out. As nats-server: `sent` is what the client
        published, `received` what it was delivered."""
        start = self._announced.pop(client.cid, None)
        if start is None:
            return
        clock = Clock(time.time_ns(), trio.current_time())
        body = self._event(DISCONNECT_EVENT, clock.wall_ns)
        body["client"] = _client_info(client, clock, stop=True) | {"start": start}
        body["sent"] = {"msgs": client.in_msgs, "bytes": client.in_bytes}
        body["received"] = {"msgs": client.out_msgs, "bytes": client.out_bytes}
        body["reason"] = reason
        self.publish(f"$SYS.ACCOUNT.{client.account.name}.DISCONNECT".encode(), body)

    async def serve_heartbeats(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """`$SYS.SERVER.<id>.STATSZ` every STATSZ_INTERVAL (the first waits shorter, as
        nats-server's), while anything subscribes to it. Ends at the shutdown event."""
        with self._heartbeats:
            task_status.started()
            if self.dispatch is None:
                return
            interval = defaults.STATSZ_FIRST_INTERVAL
            while True:
                await trio.sleep(interval)
                interval = min(interval * 2, defaults.STATSZ_INTERVAL)
                self.heartbeat()

    def heartbeat(self) -> None:
        """One statsz heartbeat, if anything subscribes to it (the plan is cached until the
        system account's subscriptions change, so an idle check matches nothing)."""
        subject = f"$SYS.SERVER.{self.server.server_id}.STATSZ".encode()
        if self.stopped or self.dispatch.plan(subject).empty:
            return
        clock = Clock(time.time_ns(), trio.current_time())
        self.publish(subject, self._statsz({}, clock))

    def lame_duck(self) -> None:
        """`$SYS.SERVER.<id>.LAMEDUCK`: this server's ServerInfo (a lame duck hook)."""
        self._server_event("LAMEDUCK")

    def shutdown(self) -> None:
        """`$SYS.SERVER.<id>.SHUTDOWN`: this server's ServerInfo; the last system message
        (as nats-server, the clients closed by the shutdown get no disconnect event)."""
        self._server_event("SHUTDOWN")
        self.stopped = True
        self._heartbeats.cancel()

    def _server_event(self, name: str) -> None:
        if self.dispatch is None or self.stopped:
            return
        subject = f"$SYS.SERVER.{self.server.server_id}.{name}".encode()
        self.publish(subject, self.server.tracing.server_info())

    def _event(self, kind: str, now_ns: int) -> dict:
        """nats-server's TypedEvent and ServerInfo."""
        return {"type": kind, "id": random_name(), "timestamp": snapshots.rfc3339(now_ns),
                "server": self.server.tracing.server_info()}  # fmt: skip

    # --- handlers -------------------------------------------------------------------------

    def _idz(self, options: dict, clock: Clock) -> dict:
        server = self.server
        return {"name": server.name, "host": server.info_host_port()[0], "id": server.server_id}

    def _statsz(self, options: dict, clock: Clock) -> dict:
        """nats-server's ServerStatsMsg: `{"server": ..., "statsz": ...}`."""
        return {"server": self.server.tracing.server_info(), "statsz": statsz(self.server, clock)}

    def _varz(self, options: dict, clock: Clock) -> dict:
        return self._response(varz(self.server, clock))

    def _connz(self, options: dict, clock: Clock) -> dict:
        query = _query(options, _CONNZ_OPTIONS)
        server = self.server
        return self._response(snapshots.connz(server, query, clock, server.closed_clients))

    def _routez(self, options: dict, clock: Clock) -> dict:
        query = _query(options, _ROUTEZ_OPTIONS)
        if options.get("subscriptions_detail"):
            query["subs"] = "detail"
        return self._response(snapshots.routez(self.server, query, clock))

    def _subsz(self, options: dict, clock: Clock) -> dict:
        return self._response(snapshots.subsz(self.server, _query(options, _SUBSZ_OPTIONS), clock))

    def _healthz(self, options: dict, clock: Clock) -> dict:
        status, body = snapshots.healthz(self.server, {})
        body = {"status": body.pop("status"), "status_code": status} | body
        return self._response(body)

    def _accountz(self, options: dict, clock: Clock) -> dict:
        query = _query(options, _ACCOUNTZ_OPTIONS)
        return self._response(snapshots.accountz(self.server, query, clock))

    def _gatewayz(self, options: dict, clock: Clock) -> dict:
        return self._response(disabled.gatewayz(self.server.server_id, {}, clock))

    def _leafz(self, options: dict, clock: Clock) -> dict:
        if self.server.leafnodes is not None:
            from .monitor.leafz import leafz

            return self._response(leafz(self.server, {}, clock))
        return self._response(disabled.leafz(self.server.server_id, {}, clock))

    def _jsz(self, options: dict, clock: Clock) -> dict:
        if self.server.jetstream is not None:
            from .jetstream.figures import jsz

            return self._response(jsz(self.server, {}, clock.wall_ns))
        return self._response(disabled.jsz(self.server.server_id, {}, clock))

    def _account_connz(self, account: str, options: dict, clock: Clock) -> dict:
        query = _query(options, _CONNZ_OPTIONS) | {"acc": account}
        server = self.server
        return self._response(snapshots.connz(server, query, clock, server.closed_clients))

    def _account_subsz(self, account: str, options: dict, clock: Clock) -> dict:
        query = _query(options, _SUBSZ_OPTIONS) | {"acc": account, "subs": "1"}
        return self._response(snapshots.subsz(self.server, query, clock))

    def _account_statz(self, account: str, options: dict, clock: Clock) -> dict | None:
        """nats-server's AccountStatz: one account's (or, asked as `PING` in the system
        account, every account's); nothing when none has a connection, unless
        `include_unused`."""
        unused = options.get("include_unused")
        wanted = options.get("accounts")
        if type(unused) not in (bool, type(None)) or not isinstance(wanted, (list, type(None))):
            raise QueryError("json: cannot unmarshal into Go struct field AccountStatzOptions")
        names = set(wanted or ()) if account == "PING" else {account}
        body = snapshots.accstatz(self.server, {"unused": "1"} if unused else {}, clock)
        if names:
            body["account_statz"] = [a for a in body["account_statz"] if a["acc"] in names]
        if not body["account_statz"] and not unused:
            return None
        return self._response(body)

    def _user_info(self, reply: bytes, headers: bytes) -> None:
        """nats-server's UserInfo of the requester, whom the `Nats-Request-Info` header of
        the system account's shared import names (no header: nobody)."""
        info: dict = {}
        value = header_value(headers, REQUEST_INFO)
        if value is not None:
            try:
                info = gojson.loads(value)
            except ValueError:
                info = None
            if not isinstance(info, dict):
                self._error(reply, 400)
                return
        user, account = info.get("user", ""), info.get("acc", "")
        data = {"user": user if isinstance(user, str) else "",
                "account": account if isinstance(account, str) else ""}  # fmt: skip
        server = self.server
        if data["account"] in server.accounts:
            data["account_name"] = data["account"]
        client = server.clients.get(info.get("id")) if type(info.get("id")) is int else None
        identity = client.identity if client is not None else None
        details = getattr(identity, "jwt", None)  # a JWT user (auth/operator.py JWTDetails)
        if details is not None:
            data["account_name"] = details.name_tag
            if details.user_name:
                data["user_name"] = details.user_name
        if identity is not None and identity.permissions is not None:
            data["permissions"] = identity.permissions.public()
        left = getattr(client, "claim_expires_at", math.inf) - trio.current_time()
        if left != math.inf:  # (nats-server: a Go duration in ns, whole seconds)
            data["expires"] = max(0, int(left)) * 1_000_000_000
        self.publish(reply, self._response(data))


def _query(options: dict, names: dict) -> dict:
    """A request's JSON options as the HTTP endpoint's query parameters."""
    query = {}
    for key, name in names.items():
        value = options.get(key)
        if value in (None, "", False, 0):
            continue
        if type(value) not in (str, int, float, bool):  # (Go's decoder refuses it there)
            raise QueryError(f"json: cannot unmarshal into Go struct field {key}")
        if key == "state":
            value = _CONN_STATES.get(value, str(value))
        query[name] = "1" if value is True else str(value)
    if options.get("subscriptions_detail") and "subscriptions" in names:
        query[names["subscriptions"]] = "detail"
    return query


def varz(server, clock: Clock) -> dict:
    """/varz as the HTTP monitor builds it, or without one as nats-server's (no HTTP port)."""
    if server.monitor is not None:
        return server.monitor.varz(clock)
    return snapshots.varz(server, clock, start_ns=server.start_ns, process=process_figures(),
                          http_port=0, http_req_stats={})  # fmt: skip


def process_figures() -> dict:
    """Memory, cores and CPU percent (the HTTP monitor's sample when it runs)."""
    from .monitor.http import _rss_bytes

    return {"mem": _rss_bytes(), "cores": os.cpu_count() or 1, "cpu": 0}


def statsz(server, clock: Clock) -> dict:
    """nats-server's ServerStats, from the /varz and /routez figures."""
    figures = varz(server, clock)
    body = {
        "start": figures["start"],
        "mem": figures["mem"],
        "cores": figures["cores"],
        "cpu": figures["cpu"],
        "connections": figures["connections"],
        "total_connections": figures["total_connections"],
        "active_accounts": len({snapshots._account_name(c) for c in server.clients.values()}),
        "subscriptions": figures["subscriptions"],
        "sent": {"msgs": figures["out_msgs"], "bytes": figures["out_bytes"]},
        "sent_to_clients": {
            "msgs": figures["out_client_msgs"], "bytes": figures["out_client_bytes"]
        },
        "received": {"msgs": figures["in_msgs"], "bytes": figures["in_bytes"]},
        "received_from_clients": {
            "msgs": figures["in_client_msgs"], "bytes": figures["in_client_bytes"]
        },
        "slow_consumers": figures["slow_consumers"],
    }
    slow = figures.get("slow_consumer_stats")
    if slow and any(slow.values()):
        body["slow_consumer_stats"] = slow
    if figures.get("stale_connections"):
        body["stale_connections"] = figures["stale_connections"]
    stale = figures.get("stale_connection_stats")
    if stale and any(stale.values()):
        body["stale_connection_stats"] = stale
    if figures.get("stalled_clients"):
        body["stalled_clients"] = figures["stalled_clients"]
    routes = snapshots.routez(server, {}, clock)["routes"]
    if routes:
        body["routes"] = [_route_stat(r) for r in routes]
    cluster = server.cluster  # (the servers known: us and our peers, however many routes each)
    body["active_servers"] = 1 + (len(cluster.routes) if cluster is not None else 0)
    body["gomaxprocs"] = figures.get("gomaxprocs", figures["cores"])
    return body


def _client_info(client, clock: Clock, *, stop: bool = False, shared_by=None) -> dict:
    """nats-server's ClientInfo, its empty fields left out: of an event (with the account's
    name tag; at a disconnect with `rtt` and `stop`), or as a shared service import tells
    its exporter who asked (`shared_by`: this server, named with its cluster; with `rtt`)."""
    opts = client.opts
    account = client.account.name
    info = {
        "start": snapshots.rfc3339(clock.wall(client.start_time)),
        "host": client.peer_host,
        "id": client.cid,
        "acc": account,
        "user": client.auth_user,
        "name": opts.name or "",
        "lang": opts.lang or "",
        "ver": opts.version or "",
    }
    if stop or shared_by is not None:
        info["rtt"] = round(client.rtt * 1e9)
    if stop:
        info["stop"] = snapshots.rfc3339(clock.wall_ns)
    if shared_by is not None:
        info["server"] = shared_by.name
        info["cluster"] = shared_by.cluster.name if shared_by.cluster is not None else ""
    else:
        info["name_tag"] = account
    websocket = getattr(client, "websocket", None) is not None
    info |= {"kind": "Client", "client_type": "websocket" if websocket else "nats"}
    return {key: value for key, value in info.items() if value}


def shared_client_info(server):
    """The `describe` of shared service imports (core/imports.py): a requesting client's
    ClientInfo, as the `Nats-Request-Info` header carries it."""

    def describe(client) -> dict:
        return _client_info(client, Clock(time.time_ns(), trio.current_time()), shared_by=server)

    return describe


def header_value(headers: bytes, name: bytes) -> bytes | None:
    """The first value of header `name` in a `NATS/1.0` header block (None: absent)."""
    for line in headers.split(b"\r\n")[1:]:
        key, colon, value = line.partition(b":")
        if colon and key.strip() == name:
            return value.strip()
    return None


def _route_stat(route: dict) -> dict:
    """nats-server's RouteStat, from a /routez entry."""
    return {
        "rid": route["rid"],
        "name": route.get("remote_name", ""),
        "sent": {"msgs": route["out_msgs"], "bytes": route["out_bytes"]},
        "received": {"msgs": route["in_msgs"], "bytes": route["in_bytes"]},
        "pending": route["pending_size"],
    }


#: The request fields nats-server's EventFilterOptions decode, and the type each must have.
_FILTER_TYPES = {"server_name": str, "host": str, "cluster": str, "domain": str,
                 "exact_match": bool, "tags": list}  # fmt: skip


def request_options(payload: bytes) -> dict:
    """A request's JSON body, read as a peer's JSON always is (protocol/gojson.py: bounded
    nesting, Go's rules); ValueError for what Go's decoder would refuse, including a filter
    field of the wrong type."""
    options = gojson.loads(payload)
    if not isinstance(options, dict):
        raise ValueError("json: cannot unmarshal into a Go value of type object")
    for name, kind in _FILTER_TYPES.items():
        value = options.get(name)
        if value is None:
            continue
        if type(value) is not kind or (kind is list and not all(type(t) is str for t in value)):
            raise ValueError(f"json: cannot unmarshal into Go struct field {name}")
    return options
