"""The JSON bodies of the monitoring endpoints, built from the server's state by pure functions.

Each `*z` function takes the server (read only), the query parameters as a dict of strings, and
a `Clock` (wall time and the matching Trio time, to turn connection times into dates), and
returns a dict in nats-server 2.15.1's field order, or raises `QueryError` carrying the exact
plain-text message nats-server answers with status 400. Nothing here awaits, reads a socket or
looks at the clock by itself, so the tests feed fake servers and fixed clocks.
"""

from __future__ import annotations

import datetime
import platform
import re
import urllib.parse

from .. import defaults
from ..protocol.subjects import subject_matches

#: Default page size of /connz and /subsz (nats-server's DefaultConnListSize / DefaultSubListSize).
DEFAULT_LIST_SIZE = 1024

GLOBAL_ACCOUNT = "$G"

_NS = 1_000_000_000


class QueryError(ValueError):
    """A bad query value; the message is the 400 response body."""


class Clock:
    """One instant in both clocks: `wall_ns` (Unix epoch ns) and `trio_now` (Trio seconds)."""

    __slots__ = ("wall_ns", "trio_now")

    def __init__(self, wall_ns: int, trio_now: float) -> None:
        self.wall_ns = wall_ns
        self.trio_now = trio_now

    def wall(self, trio_time: float) -> int:
        """The epoch nanoseconds of a Trio clock time."""
        return self.wall_ns - round((self.trio_now - trio_time) * _NS)


# --- formats ---------------------------------------------------------------------------


def rfc3339(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC: fraction without trailing zeros, none if zero."""
    secs, nanos = divmod(ns, _NS)
    stamp = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def uptime(ns: int) -> str:
    """nats-server's uptime format: `5s`, `2m5s`, `1h0m5s`, `3d1h0m5s`, `1y3d1h0m5s`."""
    secs = max(ns, 0) // _NS
    mins, hours, days = secs // 60, secs // 3600, secs // 86400
    years = days // 365
    if years:
        return f"{years}y{days % 365}d{hours % 24}h{mins % 60}m{secs % 60}s"
    if days:
        return f"{days}d{hours % 24}h{mins % 60}m{secs % 60}s"
    if hours:
        return f"{hours}h{mins % 60}m{secs % 60}s"
    if mins:
        return f"{mins}m{secs % 60}s"
    return f"{secs}s"


def _fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): `0s`, `250ns`, `1.5µs`, `542µs`, `1.092398ms`, `1h0m5.5s`."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 1000)}µs"
    if ns < _NS:
        return f"{sign}{_fraction(ns, 1_000_000)}ms"
    secs, nanos = divmod(ns, _NS)
    hours, rest = divmod(secs, 3600)
    mins, secs = divmod(rest, 60)
    text = f"{hours}h" if hours else ""
    if hours or mins:
        text += f"{mins}m"
    return f"{sign}{text}{_fraction(secs * _NS + nanos, _NS)}s"


def rtt_string(seconds: float) -> str:
    """A client's RTT as nats-server shows it: truncated to µs between 1µs and 1ms."""
    ns = int(seconds * _NS)
    if 1000 < ns < 1_000_000:
        ns -= ns % 1000
    return go_duration(ns)


# --- query values (Go's strconv, with nats-server's messages) ---------------------------


def parse_bool(query: dict, name: str) -> bool:
    text = query.get(name, "")
    if text == "":
        return False
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise QueryError(
        f"Error decoding boolean for '{name}': strconv.ParseBool: "
        f'parsing "{text}": invalid syntax'
    )


def parse_int(query: dict, name: str, default: int = 0) -> int:
    text = query.get(name, "")
    if text == "":
        return default
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        problem = "invalid syntax"
    elif not -(2**63) <= int(text) < 2**63:
        problem = "value out of range"
    else:
        return int(text)
    raise QueryError(
        f"Error decoding int for '{name}': strconv.Atoi: parsing \"{text}\": {problem}"
    )


def parse_uint(query: dict, name: str) -> int:
    text = query.get(name, "")
    if text == "":
        return 0
    if not re.fullmatch(r"[0-9]+", text):
        problem = "invalid syntax"
    elif int(text) >= 2**64:
        problem = "value out of range"
    else:
        return int(text)
    raise QueryError(
        f"Error decoding uint64 for '{name}': strconv.ParseUint: parsing \"{text}\": {problem}"
    )


def parse_subs(query: dict, name: str = "subs") -> tuple[bool, bool]:
    """`subs=detail` or a boolean: (list subjects, with details)."""
    if query.get(name) == "detail":
        return True, True
    return parse_bool(query, name), False


# --- connections -----------------------------------------------------------------------


class ConnRecord:
    """What /connz shows of one client connection, open (`stop_ns` None) or closed."""

    __slots__ = (
        "cid", "kind", "ip", "port", "start_ns", "last_ns", "stop_ns", "reason", "rtt",
        "pending", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "subs", "name", "lang",
        "version", "user", "account", "tls_version", "tls_cipher", "tls_first", "type",
        "jwt",
    )  # fmt: skip

    def end_ns(self, now_ns: int) -> int:
        return now_ns if self.stop_ns is None else self.stop_ns


def conn_record(client, clock: Clock, *, reason: str | None = None) -> ConnRecord:
    """A snapshot of `client` (a ClientConnection); with `reason`, as closed now."""
    record = ConnRecord()
    record.cid = client.cid
    record.kind = getattr(client, "kind", "Client")
    record.type = "websocket" if getattr(client, "websocket", None) is not None else "nats"
    record.ip, record.port = client.peer_host, client.peer_port
    record.start_ns = clock.wall(client.start_time)
    record.last_ns = clock.wall(client.last_activity)
    record.stop_ns = None if reason is None else clock.wall_ns
    record.reason = reason
    record.rtt = client.rtt
    record.pending = client.outbound.pending
    record.in_msgs, record.out_msgs = client.in_msgs, client.out_msgs
    record.in_bytes, record.out_bytes = client.in_bytes, client.out_bytes
    #: (subject, queue, sid, delivered, max) per subscription, in SUB order.
    record.subs = [
        (_text(s.subject), _text(s.queue) if s.queue else "", _text(s.sid), s.delivered, s.max_msgs)
        for s in client.subs.values()
    ]
    opts = client.opts
    record.name, record.lang, record.version = opts.name or "", opts.lang or "", opts.version or ""
    record.user = _auth_user(client)
    record.tls_version = getattr(client, "tls_version", "")
    record.tls_cipher = getattr(client, "tls_cipher", "")
    record.tls_first = bool(record.tls_version) and getattr(client, "tls_first", False)
    account = getattr(client, "account", None)
    record.account = account.name if account is not None else GLOBAL_ACCOUNT
    identity = getattr(client, "identity", None)
    record.jwt = getattr(identity, "jwt", None)  # operator mode: auth/operator.py's JWTDetails
    return record


def _trusted_operators(server) -> dict:
    """/varz's operator fields in operator mode (auth/operator.py), else none."""
    operator = getattr(server.auth, "operator", None)
    if operator is None:
        return {}
    return {
        "trusted_operators_jwt": [claims.token for claims in operator.operators],
        "trusted_operators_claim": [claims.go_json() for claims in operator.operators],
    }


def _auth_user(client) -> str:
    """The user the client authenticated as (trionats/auth's Identity), or ""."""
    identity = getattr(client, "identity", None)
    return getattr(identity, "user", "") or ""


def _text(data) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


SORT_ASCENDING = ("cid", "start", "uptime", "reason")
SORT_OPTIONS = (
    "cid", "start", "subs", "pending", "msgs_to", "msgs_from", "bytes_to", "bytes_from",
    "last", "idle", "uptime", "rtt", "stop", "reason",
)  # fmt: skip


def _sort_key(option: str, now_ns: int):
    return {
        "cid": lambda r: r.cid,
        "start": lambda r: r.start_ns,
        "subs": lambda r: len(r.subs),
        "pending": lambda r: r.pending,
        "msgs_to": lambda r: r.out_msgs,
        "msgs_from": lambda r: r.in_msgs,
        "bytes_to": lambda r: r.out_bytes,
        "bytes_from": lambda r: r.in_bytes,
        "last": lambda r: r.last_ns,
        "idle": lambda r: r.end_ns(now_ns) - r.last_ns,
        "uptime": lambda r: r.end_ns(now_ns) - r.start_ns,
        "rtt": lambda r: r.rtt,
        "stop": lambda r: r.stop_ns or 0,
        "reason": lambda r: r.reason or "",
    }[option]


def connz(server, query: dict, clock: Clock, closed=()) -> dict:
    """/connz: open and/or closed (`closed`: ConnRecords, oldest first) client connections."""
    sort = query.get("sort", "") or "cid"
    if sort not in SORT_OPTIONS:
        raise QueryError(f"invalid sorting option: {sort}")
    auth = parse_bool(query, "auth")
    subs, detail = parse_subs(query)
    offset = max(parse_int(query, "offset"), 0)
    limit = parse_int(query, "limit")
    if limit <= 0:
        limit = DEFAULT_LIST_SIZE
    cid = parse_uint(query, "cid")
    state = query.get("state", "") or "open"
    if state not in ("open", "closed", "any", "all"):
        raise QueryError(f"Error decoding state for {state}")
    if sort in ("stop", "reason") and state != "closed":
        raise QueryError(f"sort by {sort} only valid on closed connections")
    user, account = query.get("user", ""), query.get("acc", "")
    if account and account not in _registry_names(server):
        # nats-server's answer for an account it does not know: an empty Connz, even
        # without its server id
        return {"server_id": "", "now": rfc3339(clock.wall_ns), "num_connections": 0,
                "total": 0, "offset": offset, "limit": limit, "connections": None}  # fmt: skip

    records: list[ConnRecord] = []
    if state != "closed":
        records.extend(conn_record(c, clock) for c in list(server.clients.values()))
    if state != "open":
        records.extend(closed)
    if user:
        records = [r for r in records if r.user == user]
    if account:
        records = [r for r in records if r.account == account]
    total = len(records)
    if cid:
        limit, offset = 1, 0
        records = [r for r in records if r.cid == cid][:1]
    else:
        now_ns = clock.wall_ns
        descending = sort not in SORT_ASCENDING
        records.sort(key=_sort_key(sort, now_ns), reverse=descending)
        records = records[offset : offset + limit]
    return {
        "server_id": server.server_id,
        "now": rfc3339(clock.wall_ns),
        "num_connections": len(records),
        "total": total,
        "offset": offset,
        "limit": limit,
        "connections": [_conn_info(r, clock.wall_ns, auth, subs, detail) for r in records],
    }


def connz_figures(server) -> dict:
    """/connz's default page (open connections by cid) with its counts and each connection's
    numbers only: what a metrics scrape reads, without dating and formatting every connection.
    """
    clients = sorted(server.clients.values(), key=lambda client: client.cid)
    page = clients[:DEFAULT_LIST_SIZE]
    return {
        "server_id": server.server_id,
        "num_connections": len(page),
        "total": len(clients),
        "offset": 0,
        "limit": DEFAULT_LIST_SIZE,
        "connections": [
            {
                "pending_bytes": client.outbound.pending,
                "in_msgs": client.in_msgs,
                "out_msgs": client.out_msgs,
                "in_bytes": client.in_bytes,
                "out_bytes": client.out_bytes,
                "subscriptions": len(client.subs),
            }
            for client in page
        ],
    }


def _conn_info(r: ConnRecord, now_ns: int, auth: bool, subs: bool, detail: bool) -> dict:
    info = {
        "cid": r.cid,
        "kind": r.kind,
        "type": r.type,
        "ip": r.ip,
        "port": r.port,
        "start": rfc3339(r.start_ns),
        "last_activity": rfc3339(r.last_ns),
    }
    if r.stop_ns is not None:
        info["stop"] = rfc3339(r.stop_ns)
        info["reason"] = r.reason
    end = r.end_ns(now_ns)
    info.update(
        rtt=rtt_string(r.rtt),
        uptime=uptime(end - r.start_ns),
        idle=uptime(end - r.last_ns),
        pending_bytes=r.pending,
        in_msgs=r.in_msgs,
        out_msgs=r.out_msgs,
        in_bytes=r.in_bytes,
        out_bytes=r.out_bytes,
        subscriptions=len(r.subs),
    )
    for key in ("name", "lang", "version"):
        if getattr(r, key):
            info[key] = getattr(r, key)
    if r.tls_version:
        info["tls_version"] = r.tls_version
        info["tls_cipher_suite"] = r.tls_cipher
        if r.tls_first:
            info["tls_first"] = True
    if auth:
        if r.user:
            info["authorized_user"] = r.user
        if r.account != GLOBAL_ACCOUNT:
            info["account"] = r.account
    if subs and r.subs:
        if detail:
            info["subscriptions_list_detail"] = [
                _sub_detail(subject, queue, sid, msgs, max_msgs, r.cid)
                for subject, queue, sid, msgs, max_msgs in r.subs
            ]
        else:
            info["subscriptions_list"] = [subject for subject, *_ in r.subs]
    if auth:
        jwt = r.jwt
        if jwt is not None:  # a JWT user (operator mode), as nats-server shows one
            if jwt.token:
                info["jwt"] = jwt.token
            info["issuer_key"] = jwt.issuer_key
            info["name_tag"] = jwt.name_tag
            if jwt.tags:
                info["tags"] = jwt.tags
        else:
            info["name_tag"] = r.account
    return info


def _sub_detail(subject, queue, sid, msgs, max_msgs, cid, account: str | None = None) -> dict:
    detail = {}
    if account is not None:
        detail["account"] = account
        detail["account_tag"] = account
    detail["subject"] = subject
    if queue:
        detail["qgroup"] = queue
    detail["sid"] = sid
    detail["msgs"] = msgs
    if max_msgs:
        detail["max"] = max_msgs
    detail["cid"] = cid
    return detail


# --- subscriptions ---------------------------------------------------------------------


def sublist_stats(*sublists) -> dict:
    """nats-server's SublistStats: counts, cache hit rate, and fan-out over cached results;
    of several sublists (every account's), added up as nats-server adds them."""
    count = cached = inserts = removes = matches = hits = max_fanout = 0
    total_fanout = 0.0
    for sublist in sublists:
        count += sublist.count
        cached += sublist.cache_count
        inserts += sublist.inserts
        removes += sublist.removes
        matches += sublist.matches
        hits += sublist.cache_hits
        largest, mean = sublist.cache_fanout()
        max_fanout = max(max_fanout, largest)
        total_fanout += mean * sublist.cache_count
    return {
        "num_subscriptions": count,
        "num_cache": cached,
        "num_inserts": inserts,
        "num_removes": removes,
        "num_matches": matches,
        "cache_hit_rate": go_float(hits / matches if matches else 0),
        "max_fanout": max_fanout,
        "avg_fanout": go_float(total_fanout / cached if cached else 0),
    }


def _accounts(server) -> list:
    """The server's accounts (core/accounts.py), or a stand-in global account for servers
    without a registry (tests' fakes): objects with `name` and `sublist`."""
    registry = getattr(server, "accounts", None)
    if registry is None:
        return [_Global(server.sublist)]
    return list(registry)


class _Global:
    __slots__ = ("name", "sublist")

    def __init__(self, sublist) -> None:
        self.name = GLOBAL_ACCOUNT
        self.sublist = sublist


def _registry_names(server) -> list[str]:
    return [account.name for account in _accounts(server)]


def subsz(server, query: dict, clock: Clock) -> dict:
    """/subsz (/subscriptionsz): sublist statistics, and with `subs=1` a page of subscriptions."""
    subs = parse_bool(query, "subs")
    offset = max(parse_int(query, "offset"), 0)
    limit = parse_int(query, "limit")
    if limit <= 0:
        limit = DEFAULT_LIST_SIZE
    test = query.get("test", "")
    account = query.get("acc", "")
    accounts = [a for a in _accounts(server) if not account or a.name == account]
    body = {"server_id": server.server_id, "now": rfc3339(clock.wall_ns)}
    body.update(sublist_stats(*(a.sublist for a in accounts)))
    found = []
    if subs:
        found = [
            (a.name, s) for a in accounts for s in a.sublist.subscriptions()
            if getattr(s.client, "cid", None) is not None
            and not getattr(s.client, "is_route", False)  # remote interest: counted, not listed
            and (not test or subject_matches(s.subject, test.encode()))
        ]  # fmt: skip
    body.update(total=len(found), offset=offset, limit=limit)
    if subs:
        page = found[offset : offset + limit]
        if page:
            body["subscriptions_list"] = [
                _sub_detail(
                    _text(s.subject), _text(s.queue) if s.queue else "", _text(s.sid),
                    s.delivered, s.max_msgs, s.client.cid, name,
                )  # fmt: skip
                for name, s in page
            ]
    return body


# --- routes ----------------------------------------------------------------------------


def open_routes(server) -> list:
    """The registered route connections by rid: every pool connection and pinned route."""
    cluster = getattr(server, "cluster", None)
    if cluster is None:
        return []
    return sorted(cluster.connections(), key=lambda route: route.cid)


def routez(server, query: dict, clock: Clock) -> dict:
    """/routez: one entry per route connection; `subs` lists each route's remote interest."""
    subs, detail = parse_subs(query)
    routes = open_routes(server)
    return {
        "server_id": server.server_id,
        "server_name": server.name,
        "now": rfc3339(clock.wall_ns),
        "num_routes": len(routes),
        "routes": [_route_info(route, clock, subs, detail) for route in routes],
    }


def _route_info(route, clock: Clock, subs: bool, detail: bool) -> dict:
    start_ns, last_ns = clock.wall(route.start_time), clock.wall(route.last_activity)
    info = {
        "rid": route.cid,
        "remote_id": route.remote_id,
        "remote_name": route.remote_name,
        "did_solicit": route.solicited,
        # nats-server's "explicit" route: one of our configured URLs, not learned by gossip.
        "is_configured": route.solicited and not route.implicit,
        "ip": route.peer_host,
        "port": route.peer_port,
        "start": rfc3339(start_ns),
        "last_activity": rfc3339(last_ns),
        "rtt": rtt_string(route.rtt),
        "uptime": uptime(clock.wall_ns - start_ns),
        "idle": uptime(clock.wall_ns - last_ns),
        "pending_size": route.outbound.pending,
        "in_msgs": route.in_msgs,
        "out_msgs": route.out_msgs,
        "in_bytes": route.in_bytes,
        "out_bytes": route.out_bytes,
        "subscriptions": len(route.remote_subs),
    }
    remote = list(route.remote_subs.values())
    if remote and detail:
        info["subscriptions_list_detail"] = [
            _sub_detail(
                _text(s.subject), _text(s.queue) if s.queue else "", _route_sid(s),
                s.delivered, 0, route.cid,
            )  # fmt: skip
            for s in remote
        ]
    elif remote and subs:
        info["subscriptions_list"] = [_text(s.subject) for s in remote]
    if route.pinned_account:  # a route pinned to one account
        info["account"] = route.pinned_account
    info["compression"] = "off"  # trionats does not compress routes
    return info


def _route_sid(sub) -> str:
    """nats-server's key of a remote subscription: `R <account> <subject>[ <queue>]`."""
    queue = " " + _text(sub.queue) if sub.queue else ""
    return f"R {_text(sub.client.name)} {_text(sub.subject)}{queue}"


class RouteTraffic:
    """All routes' counters, open and closed: what /varz subtracts to get client figures."""

    __slots__ = (
        "in_msgs", "in_bytes", "out_msgs", "out_bytes", "slow_consumers", "slow_consumer_routes",
        "stale_connections",
    )  # fmt: skip

    def __init__(self, server) -> None:
        cluster = getattr(server, "cluster", None)
        closed = getattr(cluster, "closed_totals", None)
        for name in self.__slots__:
            setattr(self, name, getattr(closed, name, 0))
        for route in open_routes(server):
            self.in_msgs += route.in_msgs
            self.in_bytes += route.in_bytes
            self.out_msgs += route.out_msgs
            self.out_bytes += route.out_bytes
            # A route kept after a write timeout (write_timeout: retry) was counted already.
            self.slow_consumers += getattr(route, "slow_consumer_events", 0)
            self.slow_consumer_routes += getattr(route, "slow_consumer_episodes", 0)


def cluster_varz(server) -> dict:
    """The /varz `cluster` block: empty unless clustered (nats-server omits every field)."""
    cluster = getattr(server, "cluster", None)
    if cluster is None:
        return {}
    options = cluster.options
    block = {"name": cluster.name}
    if options.host:
        block["addr"] = options.host
    block["cluster_port"] = cluster.port
    block["auth_timeout"] = go_float(cluster.auth_timeout)
    if cluster.urls:
        block["urls"] = [url.hostport for url in cluster.urls]
    block["tls_timeout"] = go_float(defaults.TLS_TIMEOUT)  # cluster TLS is not supported yet
    block["pool_size"] = cluster.pool_size  # (-1: pooling off)
    if options.write_deadline:
        block["write_deadline"] = round(options.write_deadline * _NS)
    if options.write_timeout in ("close", "retry"):
        block["write_timeout"] = options.write_timeout
    return block


# --- the rest --------------------------------------------------------------------------


def healthz(server, query: dict) -> tuple[int, dict]:
    """/healthz: (status code, body); ok once the client listener accepts connections.

    Bad booleans raise QueryError (plain text, as nats-server); a stream without an account or
    a consumer without a stream is a 400 with a JSON body, as nats-server answers too.
    """
    for name in ("js-enabled-only", "js-server-only", "js-meta-only", "js-enabled", "details"):
        parse_bool(query, name)
    if query.get("stream") and not query.get("account"):
        return 400, _health_error('"account" must not be empty when checking stream health')
    if query.get("consumer") and not query.get("stream"):
        return 400, _health_error('"stream" must not be empty when checking consumer health')
    if not server.ready:
        return 500, _health_error("Client connections not yet accepted")
    js_problem = _jetstream_health(server)
    if js_problem:
        return 503, {"status": "unavailable", "error": js_problem}
    return 200, {"status": "ok"}


def _health_error(text: str) -> dict:
    return {"status": "error", "error": text}


def accountz(server, query: dict, clock: Clock) -> dict:
    """/accountz: the account names; `acc=NAME` one account's details (its connections and
    sublist; trionats has no imports, exports or mappings to show yet)."""
    options = server.options
    system = "" if options.no_system_account else options.system_account
    body = {"server_id": server.server_id, "now": rfc3339(clock.wall_ns)}
    if system:  # left out when there is none, as nats-server does
        body["system_account"] = system
    name = query.get("acc", "")
    if not name:
        registry = getattr(server, "accounts", None)
        if registry is not None:
            body["accounts"] = registry.names()
        else:
            body["accounts"] = [system, GLOBAL_ACCOUNT] if system else [GLOBAL_ACCOUNT]
        return body
    account = next((a for a in _accounts(server) if a.name == name), None)
    if account is None:
        raise QueryError(f"Account {name} does not exist")
    detail = {
        "account_name": name,
        "update_time": rfc3339(getattr(server, "start_ns", clock.wall_ns)),
    }
    if name == system:
        detail["is_system"] = True
    detail.update(
        expired=False,
        complete=True,
        jetstream_enabled=name in getattr(getattr(server, "jetstream", None), "accounts", ()),
        leafnode_connections=0,
        client_connections=sum(
            1 for client in list(server.clients.values()) if _account_name(client) == name
        ),
        subscriptions=account.sublist.count,
        name_tag=name,
        sublist_stats=sublist_stats(account.sublist),
    )
    body["account_detail"] = detail
    return body


def _account_name(client) -> str:
    account = getattr(client, "account", None)
    return account.name if account is not None else GLOBAL_ACCOUNT


def accstatz(server, query: dict, clock: Clock) -> dict:
    """/accstatz: per-account connections and traffic; `unused` lists idle accounts too.

    Every client is in the global account, so its figures are the server's; the system
    account has no connections and no traffic of its own in trionats.
    """
    unused = parse_bool(query, "unused")
    registry = getattr(server, "accounts", None)
    if registry is not None and registry.configured:
        return _accstatz_of_accounts(server, registry, unused, clock)
    options = server.options
    system = "" if options.no_system_account else options.system_account
    accounts = []
    if system and unused:
        none = _account_traffic(0, 0, 0, 0)
        accounts.append(_account_stat(system, 0, 0, none, none, 0))
    if server.clients or unused:
        stats, routed = server.stats, RouteTraffic(server)
        sent = _account_traffic(stats.out_msgs, stats.out_bytes, routed.out_msgs, routed.out_bytes)
        received = _account_traffic(stats.in_msgs, stats.in_bytes, routed.in_msgs, routed.in_bytes)
        slow = max(stats.slow_consumers - routed.slow_consumers, 0)  # clients only
        accounts.append(_account_stat(
            GLOBAL_ACCOUNT, len(server.clients), server.sublist.count, sent, received, slow
        ))  # fmt: skip
    return {"server_id": server.server_id, "now": rfc3339(clock.wall_ns), "account_statz": accounts}


def _accstatz_of_accounts(server, registry, unused: bool, clock: Clock) -> dict:
    """/accstatz with an `accounts` block: each account's figures are its clients' (open
    ones, and what it kept of those gone); the global account has the rest of the server's
    totals, which is where route traffic is counted."""
    clients: dict[str, list] = {account.name: [] for account in registry}
    for client in list(server.clients.values()):
        clients.setdefault(_account_name(client), []).append(client)
    figures = {}
    for account in registry:
        mine = clients[account.name]
        figures[account.name] = (
            account.in_msgs + sum(c.in_msgs for c in mine),
            account.in_bytes + sum(c.in_bytes for c in mine),
            account.out_msgs + sum(c.out_msgs for c in mine),
            account.out_bytes + sum(c.out_bytes for c in mine),
            account.slow_consumers,
        )
    stats, routed = server.stats, RouteTraffic(server)
    others = [f for name, f in figures.items() if name != GLOBAL_ACCOUNT]
    client_slow = max(stats.slow_consumers - routed.slow_consumers, 0)
    figures[GLOBAL_ACCOUNT] = (
        max(stats.in_msgs - sum(f[0] for f in others), 0),
        max(stats.in_bytes - sum(f[1] for f in others), 0),
        max(stats.out_msgs - sum(f[2] for f in others), 0),
        max(stats.out_bytes - sum(f[3] for f in others), 0),
        max(client_slow - sum(f[4] for f in others), 0),
    )
    accounts = []
    for account in registry:
        conns = len(clients[account.name])
        if not conns and not unused:
            continue
        in_msgs, in_bytes, out_msgs, out_bytes, slow = figures[account.name]
        global_ = account.name == GLOBAL_ACCOUNT
        sent = _account_traffic(out_msgs, out_bytes, *(
            (routed.out_msgs, routed.out_bytes) if global_ else (0, 0)))  # fmt: skip
        received = _account_traffic(in_msgs, in_bytes, *(
            (routed.in_msgs, routed.in_bytes) if global_ else (0, 0)))  # fmt: skip
        accounts.append(_account_stat(
            account.name, conns, account.sublist.count, sent, received, slow
        ))  # fmt: skip
    return {"server_id": server.server_id, "now": rfc3339(clock.wall_ns), "account_statz": accounts}


def _account_traffic(msgs: int, nbytes: int, route_msgs: int, route_bytes: int) -> dict:
    """nats-server's DataStats: the totals, then the gateway, route and leaf node shares."""
    return {
        "msgs": msgs,
        "bytes": nbytes,
        "gateways": {"msgs": 0, "bytes": 0},
        "routes": {"msgs": route_msgs, "bytes": route_bytes},
        "leafs": {"msgs": 0, "bytes": 0},
    }


def _account_stat(name: str, conns: int, subs: int, sent: dict, received: dict, slow: int):
    return {
        "acc": name,
        "name": name,
        "conns": conns,
        "leafnodes": 0,
        "total_conns": conns,
        "num_subscriptions": subs,
        "sent": sent,
        "received": received,
        "slow_consumers": slow,
    }


def websocket_varz(server) -> dict:
    """/varz `websocket`: the block's settings, empty fields left out (as nats-server)."""
    ws = server.options.websocket
    if ws is None or server.websocket is None:
        return {}
    body = {
        "host": ws.host,
        "port": server.websocket.port,
        "advertise": ws.advertise,
        "handshake_timeout": round(ws.handshake_timeout * _NS),
        "no_tls": ws.no_tls,
        "same_origin": ws.same_origin,
        "allowed_origins": list(ws.allowed_origins),
        "compression": ws.compression,
    }
    return {key: value for key, value in body.items() if value}


def varz(server, clock: Clock, *, start_ns: int, process: dict, http_port: int,
         http_req_stats: dict, config_digest: str = "", config_load_ns: int = 0,
         https_port: int | None = None) -> dict:
    """/varz: the server's options, process figures (`process`: mem, cores, cpu) and totals."""
    options = server.options
    stats = server.stats
    routes = open_routes(server)
    # The totals count route traffic too; nats-server's *_client_* figures are clients only.
    routed = RouteTraffic(server)
    host, port = server.info_host_port()  # client_advertise's, as in INFO
    body = {
        "server_id": server.server_id,
        "server_name": server.name,
        "version": defaults.COMPAT_VERSION,
        "proto": defaults.CLIENT_PROTO,
        "git_commit": "",
        "go": f"python{platform.python_version()}",
        "host": host,
        "port": port,
    }
    auth = getattr(server, "auth", None)  # (users of accounts require auth too)
    if options.authorization is not None or (auth is not None and auth.auth_required):
        body["auth_required"] = True
    tls = options.tls
    if tls is not None:
        if not options.allow_non_tls:
            body["tls_required"] = True
        if tls.verify or tls.verify_and_map:
            body["tls_verify"] = True
    connect_urls = getattr(server, "connect_urls", None)
    if connect_urls:
        body["connect_urls"] = list(connect_urls)
    body["max_connections"] = options.max_connections
    if options.max_subscriptions:
        body["max_subscriptions"] = options.max_subscriptions
    body.update(
        ping_interval=round(options.ping_interval * _NS),
        ping_max=options.ping_max,
        http_host=options.http_host or options.host,
        http_port=http_port,
        http_base_path=options.http_base_path,
        https_port=options.https_port if https_port is None else https_port,
        auth_timeout=go_float(server.auth.timeout),
        max_control_line=options.max_control_line,
        max_payload=options.max_payload,
        max_pending=options.max_pending,
    )
    body.update(
        cluster=cluster_varz(server),
        gateway={},
        leaf=_leaf_varz(server),
        mqtt={},
        websocket=websocket_varz(server),
        jetstream=_jetstream_varz(server),
        tls_timeout=go_float(tls.timeout if tls and tls.timeout > 0 else defaults.TLS_TIMEOUT),
        write_deadline=round(options.write_deadline * _NS),
    )
    if options.write_timeout in ("close", "retry"):  # nats-server omits "default"
        body["write_timeout"] = options.write_timeout
    body.update(
        start=rfc3339(start_ns),
        now=rfc3339(clock.wall_ns),
        uptime=uptime(clock.wall_ns - start_ns),
        mem=process["mem"],
        cores=process["cores"],
        gomaxprocs=process["cores"],
        cpu=go_float(process["cpu"]),
        connections=len(server.clients),
        total_connections=stats.total_connections,
        routes=len(routes),
        remotes=len({route.remote_id for route in routes}),
        leafnodes=_leaf_count(server),
        in_msgs=stats.in_msgs,
        in_bytes=stats.in_bytes,
        in_client_msgs=max(stats.in_msgs - routed.in_msgs, 0),
        in_client_bytes=max(stats.in_bytes - routed.in_bytes, 0),
        out_msgs=stats.out_msgs,
        out_bytes=stats.out_bytes,
        out_client_msgs=max(stats.out_msgs - routed.out_msgs, 0),
        out_client_bytes=max(stats.out_bytes - routed.out_bytes, 0),
        slow_consumers=stats.slow_consumers,
        stale_connections=stats.stale_connections,
        stalled_clients=stats.stalled_clients,
        internal_errors=stats.internal_errors,  # trionats only (containment.py)
        subscriptions=sum(account.sublist.count for account in _accounts(server)),
        http_req_stats=dict(sorted(http_req_stats.items())),
        config_load_time=rfc3339(config_load_ns or start_ns),
        config_digest=config_digest,
        **({"tags": list(options.server_tags)} if options.server_tags else {}),
        feature_flags=dict(defaults.FEATURE_FLAGS),
        **_trusted_operators(server),
        system_account="" if options.no_system_account else options.system_account,
        slow_consumer_stats={
            "clients": max(stats.slow_consumers - routed.slow_consumers, 0),
            "routes": routed.slow_consumer_routes, "gateways": 0, "leafs": 0,
        },
        stale_connection_stats={
            "clients": max(stats.stale_connections - routed.stale_connections, 0),
            "routes": routed.stale_connections, "gateways": 0, "leafs": 0,
        },
        disk_io_wait_stats={"waiters": 0, "waits": 0, "wait_time": 0, "max_wait_time": 0},
    )
    if not body["system_account"]:
        del body["system_account"]  # no_system_account: left out, as nats-server does
    return body


def cpu_percent(cpu_seconds: float, wall_seconds: float) -> float:
    """/varz `cpu`: the CPU used over a window, as nats-server's pse package measures it.

    nats-server counts clock ticks (1/100 s) and keeps per-mille as an integer, then divides
    by 10: the figure has at most one decimal (`0`, `3`, `12.5`, never `12.37`).
    """
    ticks = round(cpu_seconds * 100)
    per_mille = int(ticks * 1000 / 100 / wall_seconds) if wall_seconds > 0 else 0
    return per_mille / 10.0


# --- leaf nodes (/varz `leaf`; /leafz is monitor/leafz.py) ------------------------------


def _leaf_varz(server) -> dict:
    """/varz `leaf`: the listener (host, port, timeouts) and each remote (its account, URLs
    without credentials, its deny rules), empty fields left out as Go's omitempty does."""
    options = server.options.leafnodes
    if options is None:
        return {}
    body: dict = {}
    if options.port:
        nodes = getattr(server, "leafnodes", None)
        auth = options.authorization
        body["host"] = options.host
        body["port"] = nodes.port if nodes is not None and nodes.port else options.port
        body["auth_timeout"] = go_float(auth.timeout if auth and auth.timeout else defaults.AUTH_TIMEOUT)
        tls = options.tls
        body["tls_timeout"] = go_float(tls.timeout if tls and tls.timeout > 0 else defaults.TLS_TIMEOUT)
        if tls is not None:
            body["tls_required"] = True
            if tls.verify or tls.verify_and_map:
                body["tls_verify"] = True
    remotes = []
    for remote in options.remotes:
        entry: dict = {"local_account": remote.account or "$G",
                       "urls": [_host_port(url) for url in remote.urls]}  # fmt: skip
        deny = {}
        if remote.deny_exports:
            deny["exports"] = list(remote.deny_exports)
        if remote.deny_imports:
            deny["imports"] = list(remote.deny_imports)
        if deny:
            entry["deny"] = deny
        remotes.append(entry)
    if remotes:
        body["remotes"] = remotes
    return body


def _host_port(url: str) -> str:
    """A remote URL as /varz shows it: host:port, never the credentials."""
    text = url.strip()
    parts = urllib.parse.urlsplit(text if "://" in text else f"nats://{text}")
    host = parts.hostname or ""
    port = parts.port or defaults.LEAF_DEFAULT_PORT
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _leaf_count(server) -> int:
    nodes = getattr(server, "leafnodes", None)
    return len(nodes.connections) if nodes is not None else 0


def go_float(value: float):
    """A float64 as Go's JSON encoder writes it: no fraction when whole (`2`, not `2.0`)."""
    return int(value) if float(value).is_integer() else float(value)


# --- JetStream (its own figures: jetstream/figures.py, through the server's JetStream) ----


def _jetstream_varz(server) -> dict:
    js = getattr(server, "jetstream", None)
    return js.varz() if js is not None else {}


def _jetstream_health(server) -> str:
    js = getattr(server, "jetstream", None)
    return js.health_problem() if js is not None else ""


# --- the index page --------------------------------------------------------------------

ENDPOINTS = (
    ("varz", "General"),
    ("jsz", "JetStream"),
    ("connz", "Connections"),
    ("accountz", "Accounts"),
    ("accstatz", "Account Stats"),
    ("subsz", "Subscriptions"),
    ("routez", "Routes"),
    ("leafz", "LeafNodes"),
    ("gatewayz", "Gateways"),
    ("raftz", "Raft Groups"),
    ("healthz", "Health Probe"),
    ("debug/vars", "Expvar"),
    ("metrics", "Prometheus metrics"),
)


def index_html() -> str:
    """The `/` page: links to every endpoint, relative so they work under http_base_path."""
    links = "\n".join(
        f'    <a href=./{path}>{title}<span class="endpoint"> /{path}</span></a>'
        for path, title in ENDPOINTS
    )
    return (
        '<html lang="en">\n  <head>\n    <title>trionats monitoring</title>\n'
        "    <style>a { display: block; padding-bottom: 6px }"
        " .endpoint { font-family: monospace; color: #999 }</style>\n  </head>\n"
        f"  <body>\n    <h1>trionats</h1>\n    <p>nats-server {defaults.COMPAT_VERSION}"
        f" compatible</p>\n{links}\n  </body>\n</html>\n"
    )
