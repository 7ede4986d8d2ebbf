"""The cluster: route listener, one supervisor per route URL, the registry of peers, gossip.

Task tree (inside the server nursery):

    Cluster.serve                       routes nursery, cancelled on shutdown
      ├── accept_forever (route port)   each accepted route runs here too
      ├── _supervise(url)               one per configured route URL: dial, run, re-dial
      └── _supervise(url, implicit)     one per server learned by gossip (bounded retries)

A failure stays inside its connection (containment.py): a route whose code raises is closed
by its own `run` (Internal Error) and re-dialed like any dropped route; an accepted socket
whose admission raises is closed; a supervisor that raises starts over.

A supervisor runs its route connection inline, so "reconnect" is a loop and closing a
route is cancelling nothing but that connection's own scope. Routes are keyed by the peer's
server id: the first connection whose INFO is processed carries the route, a later one to
the same server is closed as a duplicate, and its supervisor then waits for the surviving
connection to go before dialing again. Interest sent to peers is our clients' interest
only (`LocalInterest`); what peers tell us never travels further (the one-hop rule).
"""

from __future__ import annotations

import ipaddress
import random
import urllib.parse
from typing import TYPE_CHECKING

import attrs
import trio

from .. import defaults, ids, tls
from ..containment import contained
from ..core.interest import LocalInterest
from ..errors import Reason
from ..auth.permissions import CompiledPermissions
from ..listeners import accept_forever
from ..logging import redact_urls
from ..options import ClusterOptions, Permissions
from ..protocol import encode
from ..protocol.route_handshake import route_connect, route_info
from ..core.imports import Responses, StreamImport
from .connection import RouteConnection

if TYPE_CHECKING:
    from ..core.sublist import Subscription
    from ..server import Server


@attrs.frozen
class RouteURL:
    """A route to dial: `nats-route://[user:pass@]host:port`."""

    host: str
    port: int
    user: str = ""
    password: str = attrs.field(default="", repr=False)

    @classmethod
    def parse(cls, text: str) -> RouteURL:
        parts = urllib.parse.urlsplit(text if "://" in text else f"nats-route://{text}")
        if not parts.hostname or not parts.port:
            raise ValueError(f"route URL {text!r} needs a host and a port")
        return cls(
            parts.hostname,
            parts.port,
            urllib.parse.unquote(parts.username or ""),
            urllib.parse.unquote(parts.password or ""),
        )

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def redacted(self) -> str:
        """The URL as logs show it: never the password (`user:xxxxx@`, as Go's url.Redacted)."""
        userinfo = f"{self.user}:{self.password}@" if self.password else ""
        userinfo = userinfo or (f"{self.user}@" if self.user else "")
        return redact_urls(f"nats-route://{userinfo}{self.hostport}")


@attrs.define
class RouteTotals:
    """What routes did before they closed: their traffic, and how many closed as slow
    consumers or stale. Monitoring adds the open routes' counters to tell route traffic
    from client traffic (/varz in_client_msgs, slow_consumer_stats, ...)."""

    in_msgs: int = 0
    in_bytes: int = 0
    out_msgs: int = 0
    out_bytes: int = 0
    slow_consumers: int = 0  # events, as counted in the server's total
    slow_consumer_routes: int = 0  # episodes, as /varz slow_consumer_stats counts routes
    stale_connections: int = 0

    def retire(self, route: RouteConnection) -> None:
        self.in_msgs += route.in_msgs
        self.in_bytes += route.in_bytes
        self.out_msgs += route.out_msgs
        self.out_bytes += route.out_bytes
        self.slow_consumers += route.slow_consumer_events
        self.slow_consumer_routes += route.slow_consumer_episodes
        if route.closed_reason == Reason.STALE_CONNECTION:
            self.stale_connections += 1


class Cluster:
    def __init__(self, server: Server, options: ClusterOptions) -> None:
        self.server = server
        self.options = options
        self.log = server.log
        #: The cluster name; a random one until a peer's configured name is adopted.
        self.name = options.name or ids.random_name()
        self.dynamic = not options.name
        self.port = 0  # the bound route port, once listening
        #: Registered routes by the peer's server id: one connection per peer (its first,
        #: which gossip, client URLs and "is it connected" go by); `pools` has them all.
        self.routes: dict[str, RouteConnection] = {}
        #: Every registered connection by the peer's server id and slot (pool index, or the
        #: account a connection is pinned to).
        self.pools: dict[str, dict[int | str, RouteConnection]] = {}
        #: Route pooling as nats-server's: `pool_size` connections per peer (<= 0: one, and
        #: no route_pool_size announced), accounts spread over them by a hash of their name;
        #: `pinned` accounts (cluster.accounts, and the system account) get a route each.
        self.pool_size = options.pool_size or defaults.ROUTE_POOL_SIZE
        self.pinned: tuple[str, ...] = ()
        if self.pool_size > 0:
            system = server.accounts.system_account
            self.pinned = tuple(options.accounts) + ((system,) if system and system
                                                     not in options.accounts else ())  # fmt: skip
        #: Our clients' interest (and the server's own, `_announce_internal`), in every
        #: account, as routes are told about it.
        self.interest = LocalInterest()
        self.urls = tuple(RouteURL.parse(url) for url in options.routes)
        server_opts = server.options
        self.ping_interval = min(options.ping_interval or server_opts.ping_interval,
                                 defaults.ROUTE_MAX_PING_INTERVAL)  # fmt: skip
        self.ping_max = options.ping_max or server_opts.ping_max
        auth = options.authorization
        self.auth_timeout = (auth.timeout if auth and auth.timeout else defaults.AUTH_TIMEOUT)
        #: cluster.permissions as nats-server applies them: `import` limits the interest we
        #: announce (what peers may send us), `export` the peer interest we accept.
        self.permissions = None
        if options.permissions is not None:
            self.permissions = CompiledPermissions(Permissions(
                publish=options.permissions.import_, subscribe=options.permissions.export))  # fmt: skip
        #: Cluster TLS is always mutual: we verify the peer whichever side dialed.
        self.tls_server = self.tls_client = None
        if options.tls is not None:
            self.tls_server = tls.server_context(options.tls, verify=True)
            self.tls_client = tls.client_context(options.tls)
        self._gone: dict[str, trio.Event] = {}
        #: Server ids an implicit supervisor dials, and (server id, account) of the pinned
        #: routes learned by gossip being dialed.
        self._implicit: set = set()
        #: The cancel scope of each configured URL's supervisor (reload removes routes).
        self._supervisors: dict[RouteURL, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        #: Counters of registered routes that have closed (for monitoring).
        self.closed_totals = RouteTotals()
        #: Server names this server refuses routes with: a network partition, injected by
        #: chaos tests (trionats.testing); empty otherwise.
        self.partitioned: set[str] = set()
        self._announce_internal()

    # --- the task tree --------------------------------------------------------------------

    async def serve(self, listeners, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for listener in listeners:
                nursery.start_soon(self._accept_routes, listener)
            for url in self.urls:
                nursery.start_soon(self._supervise_configured, url)
            task_status.started()

    async def _accept_routes(self, listener) -> None:
        await accept_forever(listener, self._start_accepted, self.log, "route",
                             stats=self.server.stats)  # fmt: skip

    def close(self) -> None:
        """Shutdown: close every route and stop accepting and dialing."""
        for route in self.connections():
            route.close(Reason.SERVER_SHUTDOWN, flush=False)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _start_accepted(self, stream: trio.SocketStream) -> None:
        try:
            peer = stream.socket.getpeername()[:2]
        except OSError:
            self._nursery.start_soon(stream.aclose)
            return
        route = RouteConnection(self, stream, self.server.next_cid(), peer)
        route.log.debug("Route connection created (accepted)")
        self._nursery.start_soon(route.run)

    async def _supervise_configured(self, url: RouteURL) -> None:
        with trio.CancelScope() as scope:
            self._supervisors[url] = scope
            try:
                await self._supervise(url)
            finally:
                if self._supervisors.get(url) is scope:
                    del self._supervisors[url]

    def update(self, options: ClusterOptions) -> None:
        """A reload: dial routes added to the configuration, drop the ones removed, and check
        the routes peers dialed against a changed authorization."""
        if options.authorization != self.options.authorization:
            auth = options.authorization
            self.auth_timeout = auth.timeout if auth and auth.timeout else defaults.AUTH_TIMEOUT
            for route in self.connections():
                route.reauthorize(auth)
        urls = tuple(RouteURL.parse(url) for url in options.routes)
        for url in set(self.urls) - set(urls):
            self.log.info(f"Removing route {url.redacted}")
            for route in self.connections():
                if route.url == url:
                    route.close(Reason.ROUTE_REMOVED, flush=False)
            scope = self._supervisors.pop(url, None)
            if scope is not None:
                scope.cancel()
        for url in urls:
            if url not in self.urls and self._nursery is not None:
                self.log.info(f"Adding route {url.redacted}")
                self._nursery.start_soon(self._supervise_configured, url)
        self.options = options
        self.urls = urls

    async def _supervise(self, url: RouteURL, implicit: bool = False) -> None:
        """Keep a route to `url` (`_keep_route`). A route that fails is closed by its own
        `run` and dialed again like any dropped route; a failure of the supervisor itself is
        reported (containment.py) and it starts over after the retry delay."""
        failure = f"Internal error supervising route {url.redacted}, starting over"
        while True:
            with contained(self.log, self.server.stats, failure):
                await self._keep_route(url, implicit)
                return
            await trio.sleep(defaults.ROUTE_CONNECT_RETRY_DELAY)

    async def _keep_route(self, url: RouteURL, implicit: bool) -> None:
        """Dial `url`, run the connection, dial again when it drops.

        A configured (explicit) route is dialed forever; one learned by gossip gets
        1 + connect_retries attempts each time it is needed.
        """
        options = self.options
        failures = 0
        connected_before = False  # failures after a route existed use reconnect_error_reports
        while True:
            stream = await self._dial(url, failures + 1, implicit, connected_before)
            if stream is None:
                failures += 1
                if implicit and failures > options.connect_retries:
                    return
                await trio.sleep(self._retry_delay(failures))
                continue
            failures = 0
            connected_before = True
            peer = (url.host, url.port)
            route = RouteConnection(self, stream, self.server.next_cid(), peer,
                                    url=url, implicit=implicit)  # fmt: skip
            await route.run()
            if route.to_self or route.closed_reason == Reason.DUPLICATE_SERVER_NAME:
                return
            remote_id = route.remote_id
            del route  # a closed connection is not kept alive by its idle supervisor
            if remote_id in self.routes:
                # A duplicate: another connection carries this route; dial when it is gone.
                await self._wait_gone(remote_id)
            delay = defaults.ROUTE_CONNECT_RETRY_DELAY if not implicit else 0.0
            await trio.sleep(delay + random.uniform(0, defaults.ROUTE_REDIAL_JITTER))

    async def _dial(
        self, url: RouteURL, attempt: int, implicit: bool, reconnecting: bool = False
    ) -> trio.SocketStream | None:
        kind = "implicit" if implicit else "explicit"
        self.log.debug(f"Trying to connect to {kind} route on {url.hostport}")
        error: object = "timeout"
        with trio.move_on_after(defaults.ROUTE_DIAL_TIMEOUT):
            try:
                return await trio.open_tcp_stream(url.host, url.port)
            except OSError as exc:
                error = exc.strerror or exc
        # nats-server's connect_error_reports / reconnect_error_reports: the first failure and
        # then every Nth is an error, the others debug lines.
        server_options = self.server.options
        reports = (server_options.reconnect_error_reports if reconnecting
                   else server_options.connect_error_reports)  # fmt: skip
        if attempt == 1 or attempt % max(reports, 1) == 0:
            self.log.error(f"Error trying to connect to route (attempt {attempt}): "
                           f"dial tcp {url.hostport}: {error}")  # fmt: skip
        else:
            self.log.debug(f"Error trying to connect to route (attempt {attempt}): {error}")
        return None

    def _retry_delay(self, failures: int) -> float:
        delay = defaults.ROUTE_CONNECT_RETRY_DELAY
        if self.options.connect_backoff:
            delay = min(delay * 2 ** (failures - 1), defaults.ROUTE_CONNECT_MAX_DELAY)
        return delay

    async def _wait_gone(self, remote_id: str) -> None:
        if remote_id in self.routes:
            event = self._gone.setdefault(remote_id, trio.Event())
            await event.wait()

    # --- the registry ---------------------------------------------------------------------

    def register(self, route: RouteConnection) -> bool | None:
        """Give `route` its slot among its server's connections; None if it may not have
        one (partitioned, a duplicate, or a pool we dialed that is full), else whether it
        is the server's first connection (the peer is new: gossip and client URLs).

        The slot: 0 for a peer that does not pool, the pinned account, the pool index the
        peer chose for a connection it dialed, or the first free index of one we dialed
        (nats-server's addRoute). Two servers dialing each other at once may each keep the
        other's connection and drop their own: both then close and re-dial, and can collide
        again. So between a connection we dialed and one the peer dialed for the same slot,
        both sides keep the one dialed by the server with the lower id (nats-server keeps
        whichever came first; with a nats-server peer that may still end in two closes and
        a re-dial, as between nats-servers). A connection that has already carried messages
        is never replaced, though: what was in flight on it would be lost without a gap
        anyone could see. Then the first one stays, as in nats-server, and at worst both
        close and re-dial, a visible outage."""
        if route.remote_name in self.partitioned:
            route.log.debug(f"Route to {route.remote_name!r} refused: partitioned (chaos test)")
            return None
        slots = self.pools.get(route.remote_id, {})
        if route.pooled and not route.pinned_account and route.solicited:
            free = [i for i in range(route.pool_size) if i not in slots]
            if not free:
                route.log.debug(f"Route pool size reached, closing extra connection to "
                                f"{route.remote_id!r}")  # fmt: skip
                return None
            route.slot = free[0]
        existing = slots.get(route.slot)
        if existing is not None:
            if (
                existing.solicited == route.solicited
                or existing.in_msgs
                or existing.out_msgs
                or self._dialer(route) > self._dialer(existing)
            ):
                return None
            slots[route.slot] = route  # before the close: it must not unregister
            if self.routes.get(route.remote_id) is existing:
                self.routes[route.remote_id] = route
            existing.close(Reason.DUPLICATE_ROUTE, flush=False)
            return False
        self.pools[route.remote_id] = slots
        slots[route.slot] = route
        if route.remote_id in self.routes:
            return False
        self.routes[route.remote_id] = route
        if route.solicited and route.pooled and self._nursery is not None:
            self._complete_pool(route)
        return True

    def _dialer(self, route: RouteConnection) -> str:
        return self.server.server_id if route.solicited else route.remote_id

    def connections(self) -> list[RouteConnection]:
        """Every registered route connection (pools and pinned routes included)."""
        return [route for slots in self.pools.values() for route in slots.values()]

    def registered(self, route: RouteConnection) -> None:
        """A new peer: tell the others about it (gossip) and the clients its URLs."""
        self._gossip(route, "")
        self.server.cluster_urls_changed()

    def pinned_registered(self, route: RouteConnection) -> None:
        """A pinned account's route to a known peer: the others are told too (with
        `route_account`), so they open theirs to it, as nats-server does."""
        if sum(1 for slots in self.pools.values() if route.pinned_account in slots) > 1:
            self._gossip(route, route.pinned_account)

    def _gossip(self, route: RouteConnection, account: str) -> None:
        gossip = route.gossip_info()
        if not gossip.get("ip"):
            host = route.peer_host
            host = f"[{host}]" if ":" in host else host
            gossip["ip"] = f"nats-route://{host}:{gossip.get('port', 0)}/"
        for key in ("route_pool_idx", "route_account"):  # (the peer, not this connection)
            gossip.pop(key, None)
        if account:
            gossip["route_account"] = account
        line = encode.info(gossip)
        for other in self.routes.values():
            if other.remote_id != route.remote_id:
                other.outbound.write(line)

    def unregister(self, route: RouteConnection) -> None:
        slots = self.pools.get(route.remote_id)
        if slots is None or slots.get(route.slot) is not route:
            return
        del slots[route.slot]
        if self.routes.get(route.remote_id) is route:
            if slots:  # the peer is still connected: another connection stands for it
                self.routes[route.remote_id] = next(iter(slots.values()))
            else:
                del self.routes[route.remote_id]
        if not slots:
            del self.pools[route.remote_id]
            event = self._gone.pop(route.remote_id, None)
            if event is not None:  # first: a supervisor waits on it to dial again
                event.set()
        self.closed_totals.retire(route)
        if not slots:
            self.server.cluster_urls_changed()

    def _complete_pool(self, first: RouteConnection) -> None:
        """The first connection we dialed to a pooling peer is up: dial the rest of its
        pool and a route for each pinned account, as nats-server does."""
        extra: list[int | str] = [i for i in range(1, first.pool_size)]
        extra += list(self.pinned)
        for slot in extra:
            self._nursery.start_soon(self._supervise_extra, first.url, first.implicit,
                                     first.remote_id, slot)  # fmt: skip

    async def _supervise_extra(self, url: RouteURL, implicit: bool, remote_id: str,
                               slot: int | str) -> None:  # fmt: skip
        """Keep one more connection to a pooling peer (a pool connection, or the route of a
        pinned account) while the peer is connected and `url` is still ours to dial. It
        stops for good when the peer already has that connection (a duplicate, a full
        pool) or refuses it."""
        account = slot if isinstance(slot, str) else ""
        while remote_id in self.routes and (implicit or url in self.urls):
            with contained(self.log, self.server.stats,
                           f"Internal error supervising route {url.redacted}"):  # fmt: skip
                stream = await self._dial(url, 1, implicit)
                if stream is not None:
                    route = RouteConnection(self, stream, self.server.next_cid(), (url.host, url.port),
                                            url=url, implicit=implicit, pinned_account=account)  # fmt: skip
                    await route.run()
                    if route.closed_reason in _FINAL or route.remote_id != remote_id:
                        return
            await trio.sleep(defaults.ROUTE_CONNECT_RETRY_DELAY
                             + random.uniform(0, defaults.ROUTE_REDIAL_JITTER))  # fmt: skip

    def learn_peer(self, info: dict) -> None:
        """Gossip named a server: dial it unless it is us, known, or configured already.

        `info` is decoded as nats-server's Info struct (its values have their Go types), but
        any text may be in it: an address that cannot be dialed is ignored."""
        remote_id = info.get("server_id", "")
        account = info.get("route_account", "")
        if account:
            self._learn_pinned(info, remote_id, account)
            return
        if (
            not remote_id
            or remote_id == self.server.server_id
            or remote_id in self.routes
            or remote_id in self._implicit
            or self._nursery is None
        ):
            return
        host, port = info.get("host", ""), info.get("port", 0)
        try:
            url = RouteURL.parse(info.get("ip") or f"{_bracketed(host)}:{port}")
        except ValueError:
            url = None
        if url is None or not _dialable(url.host):
            self.log.debug(f"Ignoring gossip without a usable route address: {info!r}")
            return
        configured = {(u.host, u.port) for u in self.urls}
        if (url.host, url.port) in configured or (host, port) in configured:
            return  # a supervisor of ours already dials it
        own = self.options.authorization
        if own is not None and own.user:
            url = attrs.evolve(url, user=own.user, password=own.password)
        self._implicit.add(remote_id)
        self._nursery.start_soon(self._supervise_implicit, url, remote_id)

    def _learn_pinned(self, info: dict, remote_id: str, account: str) -> None:
        """Gossip named a pinned account's route of a server: open ours to it unless we do
        not pool, have one, or dial it as configured (nats-server's processImplicitRoute)."""
        if (
            self.pool_size <= 0
            or not remote_id
            or remote_id == self.server.server_id
            or account not in self.pinned
            or account in self.pools.get(remote_id, {})
            or (remote_id, account) in self._implicit
            or self._nursery is None
        ):
            return
        url = self._gossiped_url(info)
        if url is None:
            return
        configured = {(u.host, u.port) for u in self.urls}
        if (url.host, url.port) in configured:
            return
        self._implicit.add((remote_id, account))
        self._nursery.start_soon(self._dial_pinned, url, remote_id, account)

    async def _dial_pinned(self, url: RouteURL, remote_id: str, account: str) -> None:
        """One pinned route learned by gossip: up to 1 + connect_retries dials."""
        try:
            for attempt in range(1, self.options.connect_retries + 2):
                stream = await self._dial(url, attempt, True)
                if stream is not None:
                    route = RouteConnection(self, stream, self.server.next_cid(),
                                            (url.host, url.port), url=url, implicit=True,
                                            pinned_account=account)  # fmt: skip
                    with contained(self.log, self.server.stats,
                                   f"Internal error on route {url.redacted}"):  # fmt: skip
                        await route.run()
                    return
                await trio.sleep(self._retry_delay(attempt))
        finally:
            self._implicit.discard((remote_id, account))

    def _gossiped_url(self, info: dict) -> RouteURL | None:
        host, port = info.get("host", ""), info.get("port", 0)
        try:
            url = RouteURL.parse(info.get("ip") or f"{_bracketed(host)}:{port}")
        except ValueError:
            return None
        if not _dialable(url.host):
            return None
        own = self.options.authorization
        if own is not None and own.user:
            url = attrs.evolve(url, user=own.user, password=own.password)
        return url

    async def _supervise_implicit(self, url: RouteURL, remote_id: str) -> None:
        try:
            await self._supervise(url, implicit=True)
        finally:
            self._implicit.discard(remote_id)

    def adopt_name(self, name: str, *, static: bool, keep: RouteConnection) -> None:
        """Take a peer's cluster name over our generated one, as nats-server does; routes
        formed under the old name are closed (they re-form under the new one)."""
        self.name = name
        self.dynamic = not static
        self.log.info(f"Cluster name updated to {name}")
        for route in self.connections():
            if route is not keep:
                route.close(Reason.CLUSTER_NAME_CONFLICT, flush=False)

    # --- our side of the handshake --------------------------------------------------------

    def info_fields(self, *, pool_idx: int = 0, account: str = "") -> dict:
        """Our route INFO (for a pool connection we dialed: its slot; for a route we dial
        for a pinned account: that account)."""
        server = self.server
        options = self.options
        host, port = options.host, self.port
        if options.advertise:  # `host` or `host:port` (the port defaults to ours)
            parts = urllib.parse.urlsplit(f"nats-route://{options.advertise}")
            host, port = parts.hostname or host, parts.port or port
        auth = options.authorization
        return route_info(
            server_id=server.server_id,
            server_name=server.name,
            host=host,
            port=port,
            cluster=self.name,
            dynamic=self.dynamic,
            connect_urls=[] if options.no_advertise else server.own_connect_urls(),
            max_payload=server.options.max_payload,
            headers=not server.options.no_header_support,
            auth_required=auth is not None and bool(auth.user),
            tls_required=options.tls is not None,
            permissions=options.permissions,
            ws_connect_urls=[] if options.no_advertise else server.own_ws_connect_urls(),
            pool_size=self.pool_size,
            pool_idx=pool_idx,
            account=account,
        )

    def announce_lame_duck(self) -> None:
        """Lame duck mode: peers drop our client URLs from what they tell their clients."""
        line = encode.info(self.info_fields() | {"ldm": True})
        for route in self.routes.values():
            route.outbound.write(line)

    def connect_fields(self, url: RouteURL) -> dict:
        return route_connect(
            server_id=self.server.server_id,
            cluster=self.name,
            dynamic=self.dynamic,
            user=url.user,
            password=url.password,
            tls_required=self.options.tls is not None,
        )

    def tls_server_name(self, url: RouteURL) -> str:
        """The name a dialed peer's certificate must carry: the URL's host, or for an address
        learned by gossip, the first host name among the configured routes (nats-server's
        rule: gossip gives IPs, certificates name hosts)."""
        if url in self.urls or not _is_ip(url.host):
            return url.host
        names = [u.host for u in self.urls if not _is_ip(u.host)]
        return names[0] if names else url.host

    # --- interest and client URLs ---------------------------------------------------------

    def local_sub_added(self, sub: Subscription) -> None:
        self._interest_changed(self.interest.add, sub.client.account.name, sub)

    def local_sub_removed(self, sub: Subscription) -> None:
        self._interest_changed(self.interest.remove, sub.client.account.name, sub)

    def _interest_changed(self, change, account: str, sub: Subscription) -> None:
        if self.permissions is not None and not self.permissions.can_publish(sub.subject):
            return  # not importable: peers are not asked to send it
        name = account.encode()
        line = change(name, sub.subject, sub.queue)
        if line is not None:
            for route in self.connections():
                route.send_interest(name, line)

    def _announce_internal(self) -> None:
        """The server's own subscriptions that peers must send messages to, announced for
        as long as the server runs: the system account's requests (every node answers
        $SYS.REQ.SERVER.PING), each exporter's service replies (`_R_.<token>.>`, where a
        remote responder's answer comes back), and each stream import's subject in the
        exporter (where nats-server announces a shadow subscription per importing
        subscriber, trionats announces the import once: messages then cross even when
        nobody here subscribes to them)."""
        server = self.server
        internal = []
        system = server.system
        if system.account is not None:
            internal += [(system.account.name, sub) for sub in system.announced]
        for bridge in server.imports:
            if isinstance(bridge, StreamImport):
                internal.append((bridge.exporter.name, bridge.subscription))
            elif isinstance(bridge, Responses):
                internal.append((bridge.account.name, bridge.subscription))
        for account, sub in internal:
            self._interest_changed(self.interest.add, account, sub)

    def peer_client_urls(self) -> list[str]:
        urls: list[str] = []
        for route in self.routes.values():
            urls += route.client_urls()
        return urls

    def peer_ws_urls(self) -> list[str]:
        """The peers' websocket URLs (host:port), for websocket clients' connect_urls."""
        urls: list[str] = []
        for route in self.routes.values():
            urls += route.client_urls("ws_connect_urls")
        return urls


#: Why an extra pool or pinned connection is not dialed again.
_FINAL = frozenset({Reason.DUPLICATE_ROUTE, Reason.PROTOCOL_VIOLATION, Reason.MISSING_ACCOUNT,
                    Reason.ROUTE_REMOVED, Reason.SERVER_SHUTDOWN, Reason.DUPLICATE_SERVER_NAME,
                    Reason.CLUSTER_NAME_CONFLICT})  # fmt: skip


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _dialable(host: str) -> bool:
    """Whether a host name can be handed to the resolver: Python's IDNA codec raises
    UnicodeError (not OSError) for some names, and Go would not resolve a non-ASCII one."""
    try:
        return host.isascii() and bool(host.encode("idna"))
    except UnicodeError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
