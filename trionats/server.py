"""The server's task tree: listeners, the connections nursery, and graceful shutdown.

    Server.serve()                      server nursery
      ├── serve_monitor (with -m)       HTTP monitoring (monitor/http.py), cancelled on shutdown
      ├── _serve_connections            connections nursery (one task per connection)
      │     └── ClientConnection.run    that connection's nursery: reader, writer, pinger
      ├── serve_heartbeats              system.py: $SYS.SERVER.<id>.STATSZ while subscribed
      ├── JetStream.serve (with -js)    jetstream/service.py: the store, periodic work
      └── _serve_front                  the front nursery, cancelled first on shutdown
            ├── WebsocketListener.serve (with websocket {}) websocket.py: accepts, upgrades
            ├── _serve_accepts          the accept scope (also cancelled by lame duck mode)
            │     └── _accept_loop (per listener)
            ├── run_lame_duck (SIGUSR2) lameduck.py: notify, wait, close clients, shutdown()
            └── _watch_signals (opt.)   SIGINT/SIGTERM -> shutdown(), SIGHUP -> reload(),
                                        SIGUSR1 -> reopen the log file, SIGUSR2 -> lame duck

Shutdown is a deadline, as in Hypercorn: stop accepting, close every client (each flushes
what is queued), then give the connections nursery `SHUTDOWN_GRACE` seconds before Trio
cancels what is left.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import trio

from . import __version__, defaults, errors, ids
from .protocol import encode
from .auth import Authenticator
from .client import ClientConnection
from .core.accounts import Accounts
from .core.imports import install as install_imports
from .config.reload import check_client_advertise, reload_lines
from .config.reload import diff as reload_diff
from .connection import Connection
from .containment import report
from .errors import ConfigError, Reason
from .lameduck import run_lame_duck
from .listeners import accept_forever
from .logging import LEVELS, LOGGING_OPTIONS, LogFileError, check_log_file, configure_from
from .logging import get_logger, reopen_log_file
from .hostport import parse_host_port
from .options import AccountOptions, Export, Import, Options
from .system import SystemServices, shared_client_info
from .tracing import TracePublisher

if TYPE_CHECKING:
    from .routes.cluster import Cluster
    from .websocket import WebsocketListener

#: Reloaded options after which clients are authorized again (tls: verify_and_map, timeout).
AUTH_OPTIONS = frozenset({"authorization", "no_auth_user", "tls"})


class Stats:
    """Server-wide counters (the /varz totals)."""

    __slots__ = (
        "in_msgs",
        "in_bytes",
        "out_msgs",
        "out_bytes",
        "slow_consumers",
        "stale_connections",
        "total_connections",
        "stalled_clients",  # reads a publisher waited on a full consumer (fast producer stall)
        "internal_errors",  # unexpected exceptions contained, each closing its connection
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)


class Server:
    def __init__(self, options: Options | None = None, *, flag_overrides: dict | None = None) -> None:
        self.options = options = options or Options()
        options.check()
        #: Options given on the command line: re-applied over the file on every reload.
        self.flag_overrides = dict(flag_overrides or {})
        self.server_id = ids.new_server_id()
        self.name = options.server_name or self.server_id
        self.log = get_logger(server_name=self.name, server_id=self.server_id)
        #: The accounts (core/accounts.py), each its own sublist; `sublist` is the global
        #: account's.
        self.accounts = Accounts(
            # (in operator mode: the accounts of the memory resolver, named by public key)
            [account.name for account in options.accounts]
            + [key for key, _ in options.resolver_preload],
            system_account="" if options.no_system_account else options.system_account,
            cache_size=0 if options.disable_sublist_cache else defaults.SUBLIST_CACHE_SIZE,
        )
        self.sublist = self.accounts.global_account.sublist
        self.auth = Authenticator(options)
        #: Exports and imports between accounts (core/imports.py): bridges in the sublists.
        self.imports = install_imports(
            self.accounts, self._with_jwt_accounts(options), trio.current_time,
            describe=shared_client_info(self),
        )  # fmt: skip
        self._load_tls(options)
        self.stats = Stats()
        #: Sends message trace events (tracing.py): every dispatcher's `tracer`.
        self.tracing = TracePublisher(self)
        #: The system account's internal client and request handlers (system.py).
        self.system = SystemServices(self)
        #: JetStream (jetstream/service.py), with a jetstream block or -js.
        self.jetstream = None
        if options.jetstream_enabled:
            from .jetstream.service import JetStream  # its modules: only when enabled

            self.jetstream = JetStream(self)
        self.clients: dict[int, ClientConnection] = {}
        self.port = 0  # the bound client port, once listening
        self.ready = False
        self._last_cid = 0
        self._front_scope: trio.CancelScope | None = None
        self._accept_scope: trio.CancelScope | None = None
        self._front: trio.Nursery | None = None
        #: The websocket listener (websocket.py), with a websocket {} block.
        self.websocket: WebsocketListener | None = None
        #: Lame duck mode (lameduck.py): set once entered; callbacks run when it is announced
        #: (routes send their peers an INFO with "ldm": true from here).
        self.lame_duck = False
        self.lame_duck_hooks: list = []
        self._connections: trio.Nursery | None = None
        #: Routes to other servers (routes/cluster.py), with a cluster {} block.
        # As nats-server, clustering (listening and dialing routes) needs a cluster port.
        clustered = options.cluster is not None and options.cluster.port != 0
        self.cluster: Cluster | None = None
        if clustered:
            from .routes.cluster import Cluster  # the route modules: only with a cluster port

            self.cluster = Cluster(self, options.cluster)
        #: Leaf nodes (leaf/nodes.py), with a leafnodes {} block that listens or dials.
        self.leafnodes = None
        leaf = options.leafnodes
        if leaf is not None and (leaf.port or any(not r.disabled for r in leaf.remotes)):
            from .leaf.nodes import Leafnodes  # the leaf modules: only when configured

            self.leafnodes = Leafnodes(self, leaf)
        self.lame_duck_hooks.append(self.system.lame_duck)  # $SYS.SERVER.<id>.LAMEDUCK
        if self.cluster is not None:
            self.lame_duck_hooks.append(self.cluster.announce_lame_duck)
        #: Client URLs (host:port) of this server and its peers, in client INFO once clustered.
        self.connect_urls: list[str] = []
        #: This server's own entries of connect_urls (client_advertise, else the listener's
        #: addresses), fixed when it starts listening, as nats-server's clientConnectURLs.
        self._own_connect_urls: list[str] | None = None
        #: The same for websocket clients: websocket URLs of this server and its peers.
        self.ws_connect_urls: list[str] = []
        self._stop = trio.Event()
        self._stopped = trio.Event()
        self._ports_file: Path | None = None
        #: Monitoring: wall-clock start, the HTTP monitor once up, closed-connection records.
        self.start_ns = time.time_ns()
        self.monitor = None
        self.closed_clients: deque = deque(maxlen=max(options.max_closed_clients, 0))

    @property
    def trace(self) -> bool:
        return LEVELS.trace

    # --- the task tree --------------------------------------------------------------------

    async def serve(self, *, handle_signals: bool = False, task_status=trio.TASK_STATUS_IGNORED):
        """Run until `shutdown()`; reports the Server through `task_status` once listening."""
        options = self.options
        self._log_banner()
        if self.jetstream is not None:
            await self.jetstream.prepare()  # its storage directory, before any listener
        port = 0 if options.port == defaults.RANDOM_PORT else options.port
        listeners = await trio.open_tcp_listeners(port, host=options.host or None)
        route_listeners: list = []
        leaf_listeners: list = []
        try:
            # Bind errors surface here as a plain OSError, like the client port's.
            # Monitoring and websocket code (h11 and more) is imported only when configured:
            # start-up time is a restarted node's time to rejoin its cluster.
            monitoring = options.http_port or options.https_port
            http_listeners = []
            if monitoring:
                from .monitor import http as http_monitor

                http_listeners = await http_monitor.open_monitor_listeners(options)
            route_listeners += await self._open_route_listeners()
            if self.leafnodes is not None:
                leaf_listeners += await self.leafnodes.open_listeners()
            if options.websocket is not None and options.websocket.port:
                from .websocket import WebsocketListener

                self.websocket = await WebsocketListener.open(self, options.websocket)
            sockname = listeners[0].socket.getsockname()
            self.port = sockname[1]
            self._own_connect_urls = self._client_connect_urls()
            async with trio.open_nursery() as nursery:
                if http_listeners:
                    serve_monitor = http_monitor.serve_monitor
                    self.monitor = await nursery.start(serve_monitor, self, http_listeners)
                await nursery.start(self._serve_connections)
                await nursery.start(self.system.serve_heartbeats)
                if self.jetstream is not None:
                    await nursery.start(self.jetstream.serve)
                if route_listeners:
                    self.log.info(f"Cluster name is {self.cluster.name}")
                    if self.cluster.dynamic:
                        self.log.warning("Cluster name was dynamically generated, consider setting one")
                    await nursery.start(self.cluster.serve, route_listeners)
                    self.log.info("Listening for route connections on "
                                  f"{_hostport(options.cluster.host, self.cluster.port)}")  # fmt: skip
                if self.leafnodes is not None:
                    await nursery.start(self.leafnodes.serve)
                    if self.leafnodes.port:
                        self.log.info("Listening for leafnode connections on "
                                      f"{_hostport(options.leafnodes.host, self.leafnodes.port)}")  # fmt: skip
                await nursery.start(self._serve_front, listeners, handle_signals)
                self._write_files()
                self.log.info(
                    f"Listening for client connections on {_hostport(options.host, self.port)}"
                )
                self._log_tls_mode()
                self.log.info("Server is ready")
                self.ready = True
                task_status.started(self)
                await self._stop.wait()
                self._begin_shutdown(nursery)
        finally:
            self.ready = False
            for listener in listeners + route_listeners + leaf_listeners:
                with trio.CancelScope(shield=True):
                    await listener.aclose()
            self._remove_files()
            self.log.info("Server Exiting..")
            self._stopped.set()

    async def _serve_connections(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as connections:
            self._connections = connections
            task_status.started()
            await self._stop.wait()

    async def _serve_front(
        self, listeners, handle_signals: bool, task_status=trio.TASK_STATUS_IGNORED
    ) -> None:
        """What stops first on shutdown: the accept loops and the signal watcher."""
        async with trio.open_nursery() as front:
            self._front, self._front_scope = front, front.cancel_scope
            if self.websocket is not None:
                await front.start(self.websocket.serve)
            await front.start(self._serve_accepts, listeners)
            if handle_signals:  # trapping before "Server is ready" is logged
                await front.start(self._watch_signals)
            task_status.started()

    async def _serve_accepts(self, listeners, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """The client accept loops; cancelled by shutdown or lame duck, closing the listeners."""
        try:
            with trio.CancelScope() as self._accept_scope:
                async with trio.open_nursery() as accepts:
                    for listener in listeners:
                        accepts.start_soon(self._accept_loop, listener)
                    task_status.started()
        finally:
            for listener in listeners:  # new clients are refused from here on
                with trio.CancelScope(shield=True):
                    await listener.aclose()

    async def _accept_loop(self, listener: trio.SocketListener) -> None:
        """Accept clients until shutdown; each is admitted in accept order."""
        await accept_forever(listener, self._start_client, self.log, "client", stats=self.stats)

    def _start_client(self, stream: trio.SocketStream) -> None:
        try:
            peer = stream.socket.getpeername()[:2]
        except OSError:
            self._connections.start_soon(stream.aclose)
            return
        self._connections.start_soon(self.admit(stream, peer).run)

    def start_connection_task(self, fn, *args) -> None:
        """Run `fn(*args)` in the connections nursery (a websocket upgrade, before there is a
        connection; a connection's own work runs in its nursery: `Connection.start_task`).
        A failure stays inside: an unexpected exception from a connection's method closes
        that connection; from anything else, it is reported and the task ends."""
        name = getattr(fn, "__qualname__", None)
        self._connections.start_soon(self._run_contained, fn, *args, name=name)

    async def _run_contained(self, fn, *args) -> None:
        try:
            await fn(*args)
        except* Exception as group:
            owner = getattr(fn, "__self__", None)
            if isinstance(owner, Connection):
                owner.fail(group)
            else:
                report(self.log, self.stats, group)

    def admit(self, stream: trio.abc.Stream, peer, kind=ClientConnection) -> ClientConnection:
        """Register a new client in accept order (cids and the connection limit follow it).

        A client over max_connections still gets its INFO, then the -ERR, then the close.
        """
        client = kind(self, stream, self.next_cid(), peer)
        self.stats.total_connections += 1
        if len(self.clients) >= self.options.max_connections:
            self.log.error(errors.MAX_CONNECTIONS)
            client.refusal = (errors.MAX_CONNECTIONS, Reason.MAX_CONNECTIONS)
        else:
            self.clients[client.cid] = client
            client.log.debug("Client connection created")
        return client

    def next_cid(self) -> int:
        """Clients and routes share one id sequence, as in nats-server."""
        self._last_cid += 1
        return self._last_cid

    async def _open_route_listeners(self) -> list:
        if self.cluster is None:
            return []
        cluster = self.options.cluster
        port = 0 if cluster.port == defaults.RANDOM_PORT else cluster.port
        return await trio.open_tcp_listeners(port, host=cluster.host or None)

    async def _watch_signals(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        names = {signal.SIGINT: "interrupt", signal.SIGTERM: "terminated", signal.SIGHUP: "hangup",
                 signal.SIGUSR1: "user defined signal 1",
                 signal.SIGUSR2: "user defined signal 2"}  # fmt: skip
        with trio.open_signal_receiver(*names) as signals:
            task_status.started()
            async for signum in signals:
                self.log.info(f'Trapped "{names[signum]}" signal')
                if signum == signal.SIGHUP:
                    self.reload()
                elif signum == signal.SIGUSR1:
                    reopen_log_file(self.log)
                elif signum == signal.SIGUSR2:
                    self.enter_lame_duck()
                elif signum == signal.SIGTERM and self.lame_duck:
                    pass  # as nats-server: a graceful shutdown is already under way
                else:
                    self.shutdown()

    # --- reload ---------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the configuration file and apply what may change live (SIGHUP).

        Flags given on the command line still win. On any problem the reload is refused as a
        whole, the reason is logged, and the server keeps running on its current options.
        """
        path = self.options.config_file
        if not path:
            self.log.error("Failed to reload server configuration: no configuration file")
            return False
        from .config.load import load as load_config  # cattrs and the parser: not at start-up

        try:
            new = attrs.evolve(load_config(path), **self.flag_overrides)
            check_client_advertise(self.options, new)
            new.check()
            changes = reload_diff(self.options, new)
            if "log_file" in changes:  # refused here, where nats-server would exit
                check_log_file(new.log_file)
        except ConfigError as exc:
            self.log.error(f"Failed to reload server configuration: {exc}")
            return False
        old, old_auth = self.options, self.auth
        self.options = new
        self._apply_reload(changes)
        for line in reload_lines(old, new, changes, (old_auth.timeout, self.auth.timeout)):
            self.log.info(line)
        if changes.keys() & AUTH_OPTIONS:  # after the lines, as nats-server
            self._reauthorize_clients()
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        self.log.info(f"Reloaded server configuration (sha256:{digest})")
        return True

    def _apply_reload(self, changes: dict) -> None:
        options = self.options
        if "tls" in changes:  # new connections handshake with the new block
            try:
                self._load_tls(options)
            except ConfigError as exc:  # its files changed again since the reload read them
                self.log.error(f"Failed to reload TLS: {exc}")
        if changes.keys() & AUTH_OPTIONS:  # tls: the timeout and verify_and_map follow it
            auth = Authenticator(options)
            auth.carry_over(self.auth)
            self.auth = auth
        if changes.keys() & LOGGING_OPTIONS:
            try:
                configure_from(options)
            except LogFileError as exc:  # its directory went away since the check: stderr
                self.log.error(str(exc))
        for client in list(self.clients.values()):
            if "max_payload" in changes or "max_control_line" in changes:
                client.parser.set_limits(
                    max_control_line=options.max_control_line, max_payload=options.max_payload
                )
            client.write_deadline = options.write_deadline
        excess = len(self.clients) - options.max_connections
        if excess > 0:
            for client in random.sample(list(self.clients.values()), excess):
                client.send_err(errors.MAX_CONNECTIONS)
                client.close(Reason.MAX_CONNECTIONS)
        if "cluster" in changes and self.cluster is not None:
            self.cluster.update(options.cluster)
        if "pid_file" in changes or "ports_file_dir" in changes:
            self._remove_files()
            self._write_files()

    def _reauthorize_clients(self) -> None:
        """The authorization changed: every client is checked again (client.reauthorize:
        closed, or its new permissions applied and its subscriptions pruned)."""
        for client in list(self.clients.values()):
            client.reauthorize()
        # Delivery plans hold each subscriber's deny list and allow_responses state.
        for account in self.accounts:
            account.sublist.generation += 1

    # --- lame duck mode ---------------------------------------------------------------------

    def enter_lame_duck(self) -> None:
        """Stop accepting, tell clients (and routes), close clients over lame_duck_duration, exit.

        Idempotent; does nothing once shutdown has begun. See lameduck.py.
        """
        if self.lame_duck or self._stop.is_set() or self._front is None:
            return
        self.lame_duck = True
        self.log.info("Entering lame duck mode, stop accepting new clients")
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        if self.websocket is not None:
            self.websocket.close()
        # In the front nursery: a shutdown meanwhile (SIGINT) cancels it with the listeners.
        self._front.start_soon(run_lame_duck, self)

    def _load_tls(self, options: Options) -> None:
        """The ssl contexts of the client port and the HTTPS monitor (None without `tls`)."""
        if options.tls is not None:
            from . import tls  # certificate checks and cipher tables: only with a tls block
        self.tls_context = tls.server_context(options.tls) if options.tls is not None else None
        #: nats-server never asks monitoring clients for a certificate.
        self.https_context = (
            tls.server_context(options.tls, verify=False) if options.tls is not None else None
        )

    def _log_tls_mode(self) -> None:
        options = self.options
        if options.tls is None:
            return
        first_only = options.tls.handshake_first is True  # no fallback: allow_non_tls is moot
        if options.allow_non_tls and not first_only:
            self.log.info("TLS available for client connections")
        else:
            self.log.info("TLS required for client connections")
        if first_only:
            self.log.warning(
                'Clients that are not using "TLS Handshake First" option will fail to connect'
            )

    # --- shutdown -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Ask the server to stop: it stops accepting, flushes and closes clients, and exits."""
        self._stop.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def _begin_shutdown(self, nursery: trio.Nursery) -> None:
        self.log.info("Initiating Shutdown...")
        self.system.shutdown()  # $SYS.SERVER.<id>.SHUTDOWN, before clients close
        if self._front_scope is not None:
            self._front_scope.cancel()
        if self.websocket is not None:
            self.websocket.close()
        if self.monitor is not None:
            self.monitor.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.leafnodes is not None:
            self.leafnodes.close()
        for client in list(self.clients.values()):
            client.close(Reason.SERVER_SHUTDOWN)
        if self.jetstream is not None:
            self.jetstream.close()  # after the clients: what is queued is still written
        deadline = trio.current_time() + defaults.SHUTDOWN_GRACE
        self._connections.cancel_scope.deadline = deadline
        nursery.cancel_scope.deadline = deadline + 1

    def record_closed(self, client: ClientConnection, reason: str) -> None:
        """Keep a /connz snapshot of a closing client (the last max_closed_clients)."""
        if self.closed_clients.maxlen:
            from .monitor.snapshots import Clock, conn_record

            clock = Clock(time.time_ns(), trio.current_time())
            self.closed_clients.append(conn_record(client, clock, reason=reason))

    def forget(self, client: ClientConnection) -> None:
        self.clients.pop(client.cid, None)

    # --- what clients are told ------------------------------------------------------------

    def client_info(self, client: ClientConnection) -> dict:
        """The INFO fields for `client`, in nats-server's order."""
        options = self.options
        host, port = self.info_host_port()
        info = {
            "server_id": self.server_id,
            "server_name": self.name,
            "version": defaults.COMPAT_VERSION,
            "proto": defaults.CLIENT_PROTO,
            "go": f"python{platform.python_version()}",
            "host": host,
            "port": port,
            "headers": not options.no_header_support,
        }
        if getattr(client, "websocket", None) is not None:
            client.websocket.info_fields(info)
        if self.auth.auth_required:
            info["auth_required"] = True
        if options.tls is not None and getattr(client, "websocket", None) is None:
            # tls_required is forced while a client does TLS first (nats-server's INFO).
            required = not options.allow_non_tls or client.tls_first
            if required:
                info["tls_required"] = True
            if options.tls.verify or options.tls.verify_and_map:
                info["tls_verify"] = True
            if not required:
                info["tls_available"] = True
        info["max_payload"] = options.max_payload
        if self.jetstream is not None:
            info["jetstream"] = True
        info |= {
            "client_id": client.cid,
            "client_ip": client.peer_host,
        }
        if client.nonce:
            info["nonce"] = client.nonce
        if self.cluster is not None:
            info["cluster"] = self.cluster.name
            # Websocket clients get the cluster's websocket URLs, as nats-server's.
            websocket = getattr(client, "websocket", None) is not None
            urls = self.ws_connect_urls if websocket else self.connect_urls
            if urls:
                info["connect_urls"] = list(urls)
        return info

    def info_host_port(self) -> tuple[str, int]:
        """INFO's (and /varz's) `host` and `port`: the `client_advertise` address (its port
        defaults to the bound one), else the listener's. Follows a reload, as nats-server."""
        if self.options.client_advertise:
            try:
                return parse_host_port(self.options.client_advertise, self.port)
            except ValueError:  # refused by Options.check before it gets here
                pass
        return self.options.host, self.port

    def own_connect_urls(self) -> list[str]:
        """This server's client URLs as INFO `connect_urls` lists them (host:port).

        As nats-server, they are fixed when the server starts listening: a reload that
        changes `client_advertise` changes INFO's host and port, not connect_urls."""
        if self._own_connect_urls is None:
            return self._client_connect_urls()
        return list(self._own_connect_urls)

    def _client_connect_urls(self) -> list[str]:
        """`client_advertise` if set (nats-server's getClientConnectURLs), else the
        listener's addresses."""
        if self.options.client_advertise:
            host, port = self.info_host_port()
            return [_hostport(host, port)]
        return [url.partition("://")[2] for url in self.client_urls()]

    def own_ws_connect_urls(self) -> list[str]:
        """This server's websocket URLs as INFO lists them (host:port; the block's `advertise`
        if set); none without a websocket listener."""
        if self.websocket is None:
            return []
        if self.options.websocket.advertise:
            return [self.options.websocket.advertise]
        return [_hostport(self._websocket_host(), self.websocket.port)]

    def cluster_urls_changed(self) -> None:
        """Routes came or went: clients that take async INFO hear the new connect_urls.

        As nats-server, the list appears with the first route and keeps this server's own
        URLs when the last route goes.
        """
        if self.cluster is None or (not self.connect_urls and not self.cluster.routes):
            return
        urls = self.own_connect_urls()
        urls += [url for url in self.cluster.peer_client_urls() if url not in urls]
        ws_urls = self.own_ws_connect_urls()
        ws_urls += [url for url in self.cluster.peer_ws_urls() if url not in ws_urls]
        if (urls, ws_urls) == (self.connect_urls, self.ws_connect_urls):
            return
        self.connect_urls, self.ws_connect_urls = urls, ws_urls
        for client in list(self.clients.values()):
            if client.connected and client.opts.protocol >= 1 and client.closed_reason is None:
                client.outbound.write(encode.info(self.client_info(client)))

    # --- files and banner -----------------------------------------------------------------

    def _log_banner(self) -> None:
        log = self.log
        log.info("Starting trionats")
        log.info(f"  Version:  {__version__} (nats-server {defaults.COMPAT_VERSION} protocol)")
        log.debug(f"  Python:   {platform.python_version()}, trio {trio.__version__}")
        if self.cluster is not None:
            log.info(f"  Cluster:  {self.cluster.name}")
        log.info(f"  Name:     {self.name}")
        log.info(f"  ID:       {self.server_id}")
        if self.auth.plaintext:
            log.warning("Plaintext passwords detected, use nkeys or bcrypt")
        if self.options.config_file:
            log.info(f"Using configuration file: {self.options.config_file}")
        if self.auth.operator is not None:
            self._log_operator_mode()

    def _with_jwt_accounts(self, options: Options) -> Options:
        """In operator mode the accounts' exports and imports come from their JWTs, checked
        as an `accounts` block's are; the imports refused are logged at startup."""
        self._jwt_import_problems: list[str] = []
        if self.auth.operator is None:
            return options
        from .config.load import _check_imports  # (the loader's rules and words)

        blocks = self.auth.operator.account_blocks()
        problems: list = []
        _check_imports(blocks, None, problems)
        self._jwt_import_problems = [str(problem) for problem in problems]
        accounts = [
            AccountOptions(
                name=block["name"],
                exports=[Export(**export) for export in block["exports"]],
                imports=[Import(**entry) for entry in block["imports"]],
            )
            for block in blocks
        ]
        return attrs.evolve(options, accounts=accounts)

    def _log_operator_mode(self) -> None:
        """nats-server's operator notices and its preloaded accounts' warnings."""
        for line in self.auth.operator.banner():
            self.log.info(line)
        if self.options.system_account in ("", "$SYS"):  # (none from the file or the JWT)
            self.log.warning("Trusted Operators should utilize a System Account")
        for line in self.auth.operator.preload_warnings() + self._jwt_import_problems:
            self.log.warning(line)

    def client_urls(self) -> list[str]:
        host = self.options.host
        if host in ("", "0.0.0.0", "::"):
            host = _first_non_loopback_ip() or "127.0.0.1"
        return [f"nats://{_hostport(host, self.port)}"]

    def _websocket_host(self) -> str:
        """The websocket listener's host for URLs (an interface address for 0.0.0.0)."""
        host = self.options.websocket.host
        if host in ("", "0.0.0.0", "::"):
            host = _first_non_loopback_ip() or "127.0.0.1"
        return host

    def cluster_urls(self) -> list[str]:
        host = self.options.cluster.host
        if host in ("", "0.0.0.0", "::"):
            host = _first_non_loopback_ip() or "127.0.0.1"
        return [f"nats://{_hostport(host, self.cluster.port)}"]

    def monitor_urls(self) -> list[str]:
        host = self.options.http_host or self.options.host
        if host in ("", "0.0.0.0", "::"):
            host = _first_non_loopback_ip() or "127.0.0.1"
        return self.monitor.urls(host)

    def _write_files(self) -> None:
        options = self.options
        if options.pid_file:
            Path(options.pid_file).write_text(str(os.getpid()))
        if options.ports_file_dir:
            name = f"{program_name()}_{os.getpid()}.ports"
            self._ports_file = Path(options.ports_file_dir) / name
            ports = {"nats": self.client_urls()}
            if self.websocket is not None:
                ports["websocket"] = self.websocket.urls(self._websocket_host())
            if self.monitor is not None:
                ports["monitoring"] = self.monitor_urls()
            if self.cluster is not None and self.cluster.port:
                ports["cluster"] = self.cluster_urls()
            if self.leafnodes is not None and self.leafnodes.port:
                ports["leafnodes"] = self.leafnodes.urls()
            self._ports_file.write_text(json.dumps(ports))

    def _remove_files(self) -> None:
        if self._ports_file is not None:
            self._ports_file.unlink(missing_ok=True)


def program_name() -> str:
    """The executable's name, as nats-server names its ports file (`<program>_<pid>.ports`):
    a trionats started as `nats-server` writes what tools expect; `python -m trionats` is
    "trionats"."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if not name or name in ("-c", "-m", "__main__.py") or name.endswith(".py"):
        return "trionats"
    return name


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _first_non_loopback_ip() -> str | None:
    """An IPv4 address of a local interface other than loopback (for 0.0.0.0 listeners)."""
    try:
        import fcntl
        import struct

        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except (ImportError, OSError):
        return None
    with probe:
        for _, name in socket.if_nameindex():
            try:
                request = struct.pack("256s", name[:15].encode())
                reply = fcntl.ioctl(probe.fileno(), 0x8915, request)  # SIOCGIFADDR
            except OSError:
                continue
            address = socket.inet_ntoa(reply[20:24])
            if not address.startswith("127."):
                return address
    return None
