"""Leaf nodes of this server: the leafnode listener, one supervisor per remote, the registry,
and which interest each leaf connection is told about.

Task tree (inside the server nursery):

    Leafnodes.serve                     leaf nursery, cancelled on shutdown
      ├── accept_forever (leaf port)    each accepted LeafConnection.run runs here too
      └── _supervise(remote)            one per remote, in its own cancel scope: dial the
          └── LeafConnection.run        next URL, run the connection inline, wait the
                                        reconnect delay (30 s after a loop), dial again

Interest, as nats-server's smap (leafnode.go): a leaf connection is told about the
subscriptions of its account that its peer may serve. The side that is the hub tells its
leaf everything (clients, routes' and other leaves' interest); the spoke side tells its hub
only its own clients' and its own leaves' interest, and never what its deny_imports forbid.
Each connection's `$LDS.` subject goes both ways so loops are seen.
"""

from __future__ import annotations

import random
import urllib.parse
from typing import TYPE_CHECKING

import attrs
import trio

from .. import defaults, tls
from ..auth import nkeys
from ..auth.users import Failure, Identity, PendingPassword, is_bcrypt
from ..containment import contained
from ..core.accounts import GLOBAL_ACCOUNT
from ..core.dispatch import Bridge
from ..errors import Reason
from ..ids import random_name
from ..listeners import accept_forever
from ..logging import redact_urls
from ..options import LeafnodeOptions, LeafRemote
from ..protocol import encode
from ..protocol.leaf import LOOP_DETECTION_PREFIX
from .connection import LeafConnection, same
from .credentials import signed_jwt, signed_nkey

if TYPE_CHECKING:
    from ..core.sublist import Subscription
    from ..server import Server


#: nats-server's close reason (and -ERR) for a leaf replaced by a newer connection.
DUPLICATE = "Duplicate Remote LeafNode Connection"


@attrs.frozen
class LeafURL:
    """A hub to dial: `nats://[user[:pass]@]host[:port]` (port 7422 by default)."""

    host: str
    port: int
    user: str = ""
    password: str = attrs.field(default="", repr=False)
    has_password: bool = False

    @classmethod
    def parse(cls, text: str) -> LeafURL:
        text = text.strip()
        parts = urllib.parse.urlsplit(text if "://" in text else f"nats://{text}")
        if not parts.hostname:
            raise ValueError(f"leafnode URL {text!r} needs a host")
        return cls(
            parts.hostname,
            parts.port or defaults.LEAF_DEFAULT_PORT,
            urllib.parse.unquote(parts.username or ""),
            urllib.parse.unquote(parts.password or ""),
            parts.password is not None,
        )

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def redacted(self) -> str:
        return redact_urls(f"nats://{self.user + '@' if self.user else ''}{self.hostport}")


class Remote:
    """One `leafnodes.remotes` entry as it is dialed: its URLs (shuffled unless
    no_randomize), which one is next, and the delay before the next dial."""

    def __init__(self, options: LeafRemote, reconnect: float) -> None:
        self.options = options
        self.account = options.account or GLOBAL_ACCOUNT
        self.urls = [LeafURL.parse(url) for url in options.urls]
        if not options.no_randomize:
            random.shuffle(self.urls)
        self.reconnect = reconnect
        #: The delay before the next dial: the reconnect interval, or longer after a loop.
        self.delay = reconnect
        self._next = 0
        self.current: LeafURL | None = None

    def discovered(self, urls) -> None:
        """The hub's `leafnode_urls` (its cluster's leafnode ports, `host:port`): dialed too
        when the connection drops, with the credentials of the URL in use (nats-server's
        updateLeafNodeURLs), unless ignore_discovered_servers."""
        if self.options.ignore_discovered_servers or self.current is None:
            return
        known = {(url.host, url.port) for url in self.urls}
        for text in urls:
            if len(self.urls) >= defaults.LEAF_MAX_URLS:
                return
            try:
                found = LeafURL.parse(text)
            except ValueError:
                continue
            if (found.host, found.port) not in known and found.host.isascii():
                current = self.current
                self.urls.append(attrs.evolve(found, user=current.user, password=current.password,
                                              has_password=current.has_password))  # fmt: skip
                known.add((found.host, found.port))

    def pick(self) -> LeafURL:
        url = self.urls[self._next % len(self.urls)]
        self._next += 1
        self.current = url
        return url


class Leafnodes:
    def __init__(self, server: Server, options: LeafnodeOptions) -> None:
        self.server = server
        self.options = options
        self.log = server.log
        self.port = 0  # the bound leafnode port, once listening
        #: Registered leaf connections (bound to their account), by connection id.
        self.connections: dict[int, LeafConnection] = {}
        self.remotes = [Remote(remote, options.reconnect) for remote in options.remotes
                        if not remote.disabled]  # fmt: skip
        auth = options.authorization
        self.auth_timeout = auth.timeout if auth and auth.timeout else defaults.AUTH_TIMEOUT
        server_opts = server.options
        self.ping_interval = min(server_opts.ping_interval, defaults.ROUTE_MAX_PING_INTERVAL)
        self.ping_max = server_opts.ping_max
        #: TLS: the context leaves dialing us handshake with (leafnodes.tls), and the client
        #: contexts of the remotes with a `tls` block (or a tls:// URL), made once.
        self.tls_server = tls.server_context(options.tls) if options.tls is not None else None
        self._remote_contexts: dict[int, object] = {}
        #: Each account's loop detection subject (`$LDS.<unique>`), made when first needed.
        self._loop_subjects: dict[str, bytes] = {}
        self._nursery: trio.Nursery | None = None
        self._listeners: list = []

    # --- the task tree ------------------------------------------------------------------------

    async def open_listeners(self) -> list:
        if not self.options.port:
            return []
        port = 0 if self.options.port == defaults.RANDOM_PORT else self.options.port
        self._listeners = await trio.open_tcp_listeners(port, host=self.options.host or None)
        self.port = self._listeners[0].socket.getsockname()[1]
        return self._listeners

    async def serve(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for listener in self._listeners:
                nursery.start_soon(self._accept_leaves, listener)
            for remote in self.remotes:
                nursery.start_soon(self._supervise, remote)
            task_status.started()

    async def _accept_leaves(self, listener) -> None:
        await accept_forever(listener, self._start_accepted, self.log, "leafnode",
                             stats=self.server.stats)  # fmt: skip

    def _start_accepted(self, stream: trio.SocketStream) -> None:
        try:
            peer = stream.socket.getpeername()[:2]
        except OSError:
            self._nursery.start_soon(stream.aclose)
            return
        leaf = LeafConnection(self, stream, self.server.next_cid(), peer)
        leaf.log.debug("Leafnode connection created (accepted)")
        self._nursery.start_soon(leaf.run)

    def close(self) -> None:
        """Shutdown: close every leaf connection and stop accepting and dialing."""
        for leaf in list(self.connections.values()):
            leaf.close(Reason.SERVER_SHUTDOWN, flush=False)
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def _supervise(self, remote: Remote) -> None:
        """Keep a connection to one of the remote's URLs; a failure of the supervisor itself
        is reported (containment.py) and it starts over after the reconnect delay."""
        while True:
            with contained(self.log, self.server.stats, "Internal error supervising leafnode remote"):
                await self._keep_remote(remote)
            await trio.sleep(remote.reconnect)

    async def _keep_remote(self, remote: Remote) -> None:
        attempts = 0
        while True:
            url = remote.pick()
            stream = await self._dial(remote, url, attempts + 1)
            if stream is None:
                attempts += 1
            else:
                attempts = 0
                leaf = LeafConnection(self, stream, self.server.next_cid(), (url.host, url.port),
                                      remote=remote)  # fmt: skip
                await leaf.run()
                del leaf  # not kept alive by an idle supervisor
            delay, remote.delay = remote.delay, remote.reconnect
            await trio.sleep(delay + random.uniform(0, defaults.ROUTE_REDIAL_JITTER))

    async def _dial(self, remote: Remote, url: LeafURL, attempt: int) -> trio.SocketStream | None:
        self.log.debug(f"Trying to connect as leafnode to remote server on {url.hostport!r}")
        error: object = "i/o timeout"
        with trio.move_on_after(remote.options.dial_timeout):
            try:
                return await trio.open_tcp_stream(url.host, url.port)
            except OSError as exc:
                error = exc.strerror or exc
        reports = self.server.options.connect_error_reports
        if attempt == 1 or attempt % max(reports, 1) == 0:
            self.log.error(f"Error trying to connect as leafnode to remote server {url.hostport!r} "
                           f"(attempt {attempt}): dial tcp {url.hostport}: {error}")  # fmt: skip
        return None

    # --- the handshake ------------------------------------------------------------------------

    def remote_tls_context(self, remote: Remote):
        """The client TLS context of a remote with a `tls` block or a `tls://` URL (None:
        plaintext, unless the hub's INFO asks for TLS)."""
        if id(remote) not in self._remote_contexts:
            context = None
            if remote.options.tls is not None:
                context = tls.client_context(remote.options.tls)
            elif any(url.strip().lower().startswith("tls://") for url in remote.options.urls):
                context = self.default_tls_context()
            self._remote_contexts[id(remote)] = context
        return self._remote_contexts[id(remote)]

    @staticmethod
    def default_tls_context():
        """For a hub that requires TLS of a remote without a `tls` block: the system's CAs
        and the dialed host name, as Go's default tls.Config."""
        import ssl

        return ssl.create_default_context()

    def cluster_name(self) -> str:
        return self.server.cluster.name if self.server.cluster is not None else ""

    def info_fields(self, leaf: LeafConnection) -> dict:
        """The INFO a hub sends its leaves, in nats-server's field order."""
        server = self.server
        options = self.options
        host, port = options.host, self.port
        if options.advertise:
            parts = urllib.parse.urlsplit(f"nats://{options.advertise}")
            host, port = parts.hostname or host, parts.port or port
        info = {
            "server_id": server.server_id,
            "server_name": server.name,
            "version": defaults.COMPAT_VERSION,
            "proto": defaults.CLIENT_PROTO,
            "host": host,
            "port": port,
            "headers": not server.options.no_header_support,
            "auth_required": True,  # a leaf always sends CONNECT
        }
        if options.tls is not None:
            info["tls_required"] = True
            if options.tls.verify or options.tls.verify_and_map:
                info["tls_verify"] = True
        info |= {
            "max_payload": server.options.max_payload,
            "ip": f"{host}:{port}",
            "client_id": leaf.cid,
        }
        cluster = self.cluster_name()
        if cluster:
            info["cluster"] = cluster
        info |= {
            "compression": "off",
            "info_on_connect": True,
            "leafnode_urls": [] if options.no_advertise else [f"{host}:{port}"],
        }
        return info

    def connect_fields(self, leaf: LeafConnection) -> dict:
        """The CONNECT a leaf sends its hub (nats-server's leafConnectInfo; empty fields
        are left out, as Go's omitempty). Raises CredentialsError for an unusable
        credentials file."""
        server = self.server
        remote = leaf.remote
        url = remote.current
        fields: dict = {"version": defaults.COMPAT_VERSION, "server_id": server.server_id,
                        "name": server.name}  # fmt: skip
        if remote.options.hub:
            fields["is_hub"] = True
        fields["cluster"] = self.cluster_name() or server.name
        if leaf.headers:
            fields["headers"] = True
        if remote.options.deny_imports:
            fields["deny_pub"] = list(remote.options.deny_imports)
        fields["compress_mode"] = "off"
        fields["remote_account"] = leaf.account.name
        fields["protocol"] = 1
        if remote.options.credentials:
            fields["jwt"], fields["sig"] = signed_jwt(remote.options.credentials, leaf.nonce)
        elif remote.options.nkey:
            fields["nkey"], fields["sig"] = signed_nkey(remote.options.nkey, leaf.nonce)
        if url is not None and url.user:
            fields["user"] = url.user
            if url.has_password:
                fields["pass"] = url.password
            else:
                fields["auth_token"] = url.user  # a user alone is a token (nats-server)
        return fields

    def authenticate(self, opts: dict, nonce: str):
        """An accepted leaf's CONNECT (as ClientOpts): the account to bind it to (a name or
        an Identity), a Failure, or a PendingPassword. nats-server's isLeafNodeAuthorized:
        the leafnodes user, else its users, else the client users, else anyone."""
        auth = self.options.authorization
        user, password = opts.get("user", ""), opts.get("pass", "")
        failure = f'authentication error - User "{user}"' if user else "authentication error"
        if auth is not None and auth.nkey:
            nkey = opts.get("nkey", "")
            if nkey != auth.nkey or not nkeys.verify(nkey, opts.get("sig", ""), nonce):
                return Failure(f'authentication error - Nkey "{nkey}"' if nkey else "authentication error")
            return auth.account or GLOBAL_ACCOUNT
        if auth is not None and auth.user:
            return self._password(user, password, auth.user, auth.password, auth.account, failure)
        if auth is not None and auth.users:
            for entry in auth.users:
                if entry.user == user:
                    return self._password(user, password, entry.user, entry.password,
                                          entry.account, failure)  # fmt: skip
            return Failure(failure)
        server_auth = self.server.auth
        if server_auth.enabled:
            return server_auth.check(user, password, opts.get("auth_token", ""),
                                     opts.get("nkey", ""), opts.get("sig", ""), nonce)  # fmt: skip
        return (auth.account if auth is not None else "") or GLOBAL_ACCOUNT

    @staticmethod
    def _password(user, password, expected_user, expected, account, failure):
        account = account or GLOBAL_ACCOUNT
        if not same(user, expected_user):
            return Failure(failure)
        if is_bcrypt(expected):
            return PendingPassword(password, expected, Identity(user, None, account=account), failure)
        return account if same(password, expected) else Failure(failure)

    # --- the registry and interest ------------------------------------------------------------

    def register(self, leaf: LeafConnection) -> None:
        """Add a bound connection. An accepted leaf from the same server, cluster and
        accounts as an earlier one replaces it (nats-server's addLeafNodeConnection: the
        leaf dialed again before we saw its old connection break)."""
        if not leaf.solicited and leaf.remote_name and leaf.remote_account:
            for old in list(self.connections.values()):
                if (
                    not old.solicited
                    and old.remote_name == leaf.remote_name
                    and old.remote_cluster == leaf.remote_cluster
                    and old.account is leaf.account
                    and old.remote_account == leaf.remote_account
                ):
                    old.outbound.write(encode.err(DUPLICATE))
                    old.close(DUPLICATE)
                    leaf.log.warning("Replacing connection from same server")
        self.connections[leaf.cid] = leaf

    def unregister(self, leaf: LeafConnection) -> None:
        self.connections.pop(leaf.cid, None)

    def loop_subject(self, account) -> bytes:
        subject = self._loop_subjects.get(account.name)
        if subject is None:
            subject = LOOP_DETECTION_PREFIX + random_name().encode()
            self._loop_subjects[account.name] = subject
        return subject

    def initial_interest(self, leaf: LeafConnection) -> list[bytes]:
        """What a newly bound connection is told: the account's interest it may serve, and
        the account's loop detection subject."""
        counts: dict[tuple[bytes, bytes | None], int] = {}
        for sub in leaf.sublist.subscriptions():
            if sub.closed or not _tells(leaf, sub.client):
                continue
            key = (sub.subject, sub.queue)
            counts[key] = counts.get(key, 0) + (sub.weight if sub.queue is not None else 1)
        for (subject, queue), count in counts.items():
            leaf.interest.change(subject, queue, count) if leaf.may_announce(subject) else None
        leaf.interest.change(self.loop_subject(leaf.account), None, 1)
        return leaf.interest.dump()

    def local_sub_added(self, sub: Subscription) -> None:
        self._tell(sub, 1, sub.client)

    def local_sub_removed(self, sub: Subscription) -> None:
        self._tell(sub, -1, sub.client)

    def remote_interest_changed(self, leaf: LeafConnection, sub: Subscription, delta: int,
                                *, edge: bool = True) -> None:  # fmt: skip
        """A leaf's LS+/LS- (`edge`: the subscription came or went; else a queue weight
        changed by `delta`): the hub side passes it on to the cluster's routes as local
        interest; either side to its other leaves that may serve it."""
        cluster = self.server.cluster
        if edge and not leaf.spoke and cluster is not None:
            if delta > 0:
                cluster.local_sub_added(sub)
            else:
                cluster.local_sub_removed(sub)
        self._tell(sub, delta, leaf)

    def route_interest_changed(self, account, sub: Subscription, delta: int) -> None:
        """A route's RS+/RS- in `account` (for the routes code to call): the leaves we are the
        hub of learn the cluster's interest as it changes, as nats-server's
        updateRouteSubscriptionMap -> updateLeafNodes. (Without the call, they learn it when
        they connect only.)"""
        self._tell(sub, delta, sub.client, account)

    def _tell(self, sub: Subscription, delta: int, source, account=None) -> None:
        if not self.connections:
            return
        account = account if account is not None else getattr(source, "account", None)
        loop = sub.subject.startswith(LOOP_DETECTION_PREFIX)
        for leaf in list(self.connections.values()):
            if leaf is source or leaf.account is not account:
                continue
            if not loop and not _tells(leaf, source):
                continue
            if loop and getattr(source, "remote_cluster", "") == leaf.remote_cluster != "":
                continue
            if sub.queue is None:
                delta = 1 if delta > 0 else -1
            leaf.interest_changed(sub.subject, sub.queue, delta)

    # --- monitoring and the ports file --------------------------------------------------------

    def urls(self) -> list[str]:
        host = self.options.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        return [f"nats-leaf://{host}:{self.port}"]


def _tells(leaf: LeafConnection, client) -> bool:
    """Whether interest of `client`'s subscriptions goes to `leaf` (nats-server's smap
    rules): never a leaf's own; to a spoke connection only clients' (and imports') and
    the interest of leaves we are the hub of; from a leaf of the same leaf cluster, never."""
    if client is leaf:
        return False
    if isinstance(client, Bridge) or not getattr(client, "is_route", False):
        return True  # a local client, an import, the system account's client
    if getattr(client, "is_leaf", False):
        if leaf.remote_cluster and client.remote_cluster == leaf.remote_cluster:
            return False
        return not (leaf.spoke and client.spoke)
    return not leaf.spoke  # a route's interest goes to the leaves we are the hub of
