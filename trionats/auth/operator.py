"""Operator mode: the trusted operators, the accounts of the memory resolver, and user JWT logins.

With `operator` configured, nats-server trusts the operator's key (unless it asks for strict
signing key use) and its signing keys; an account exists if the resolver has a JWT for it
issued by one of those keys; a client logs in with a user JWT issued by the account (or one
of its signing keys, with `issuer_account` naming the account) and the server's nonce signed
by the user's nkey (bearer tokens skip the signature). `OperatorMode.login` makes those
checks in nats-server's order (processClientOrLeafAuthentication); every refusal is the same
"authentication error" to the client and the log, with the reason logged before it (at debug
level, or as an error for a bad source address and connect times, as nats-server).

Only the memory resolver exists (`resolver: MEMORY` and `resolver_preload`): the accounts are
fixed for the server's life (a reload changing them is refused). The accounts' exports and
imports are handed to core/imports.py as an `accounts` block's would be (`account_blocks`).
No trio; the only I/O is the time zone database, for a user's `times_location`.
"""

from __future__ import annotations

import datetime
import ipaddress
import time
import zoneinfo

from .. import defaults
from ..errors import go_quote
from ..options import Permissions, ResponsePermission, SubjectPermission
from . import jwt, nkeys
from .permissions import CompiledPermissions

#: Connection types nats-server knows (jwt.ConnectionType*); others in a JWT are ignored.
KNOWN_CONNECTION_TYPES = frozenset({
    "STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT", "MQTT_WS", "IN_PROCESS",
})  # fmt: skip


#: Account claims trionats does not act on yet: said at startup, then ignored.
IGNORED_ACCOUNT_CLAIMS = ("mappings", "authorization", "trace")
#: JWT export response types -> the `accounts` block's words (core/imports.py).
_RESPONSE_TYPES = {"": "singleton", "Singleton": "singleton", "Stream": "stream",
                   "Chunked": "chunked"}  # fmt: skip


def _go_time(stamp: int) -> str:
    """A Unix time as Go's time.Time prints (`2026-12-08 01:21:28 +0000 UTC`)."""
    when = datetime.datetime.fromtimestamp(stamp).astimezone()
    return when.strftime("%Y-%m-%d %H:%M:%S %z %Z")


class Refused(Exception):
    """A login refused; the message is nats-server's text for why, logged at debug level
    unless `error` (nats-server logs a bad source address and connect times as errors)."""

    def __init__(self, text: str, *, error: bool = False) -> None:
        super().__init__(text)
        self.error = error


class UserLogin:
    """A user JWT that passed: its account, permissions, limits, when it expires, and what
    monitoring shows of it (`monitor`)."""

    __slots__ = ("user", "name", "account", "permissions", "max_subs", "max_payload",
                 "expires_in", "account_expires_in", "monitor")  # fmt: skip

    def __init__(self, user: str, name: str, account: str, permissions: CompiledPermissions | None,
                 max_subs: int, max_payload: int, expires_in: float | None) -> None:  # fmt: skip
        self.user = user  # the user's public key
        self.name = name  # the claim's name
        self.account = account  # the account's public key (and name)
        self.permissions = permissions
        self.max_subs = max_subs  # -1: no limit
        self.max_payload = max_payload
        self.expires_in = expires_in  # seconds until the login ends (None: never)
        #: Seconds until the account's JWT expires (None: never): its clients are closed.
        self.account_expires_in: float | None = None
        self.monitor: JWTDetails | None = None


class JWTDetails:
    """What /connz (auth=1) and `$SYS.REQ.USER.INFO` show of a JWT user, as nats-server: the
    JWT (not a bearer token's), the key that signed it, its tags, the account's name tag and
    the user's (the claims' names)."""

    __slots__ = ("token", "issuer_key", "tags", "name_tag", "user_name")

    def __init__(self, token: str, issuer_key: str, tags: list[str], name_tag: str,
                 user_name: str = "") -> None:  # fmt: skip
        self.token = token
        self.issuer_key = issuer_key
        self.tags = tags
        self.name_tag = name_tag
        self.user_name = user_name


class OperatorMode:
    """The trusted keys and accounts of an operator-mode configuration."""

    def __init__(self, operators: tuple[str, ...], preload: tuple[tuple[str, str], ...]) -> None:
        """`operators`: operator JWTs; `preload`: (account public key, account JWT). The
        loader has decoded them all once already (config/load.py)."""
        self.operators = [jwt.decode_operator(token) for token in operators]
        self.trusted: set[str] = set()
        for operator in self.operators:
            if not operator.strict_signing_key_usage:
                self.trusted.add(operator.subject)
            self.trusted.update(operator.signing_keys)
        #: account public key -> its claims (issued by a trusted key, or not: see `account`)
        self.accounts: dict[str, jwt.AccountClaims] = {}
        for key, token in preload:
            claims = jwt.decode_account(token)
            if claims.subject == key:
                self.accounts[key] = claims
        #: Accounts whose claims have validation errors: nats-server cannot use them
        #: ("account validation failed"), so their users are refused.
        self.invalid = {key for key, claims in self.accounts.items() if claims.issues()}

    # --- what the server logs at startup ------------------------------------------------

    def banner(self) -> list[str]:
        """nats-server's "Trusted Operators" notice lines."""
        lines = ["Trusted Operators"]
        for operator in self.operators:
            lines += [
                f"  System  : {go_quote(operator.audience)}",
                f"  Operator: {go_quote(operator.name)}",
                f"  Issued  : {_go_time(operator.issued_at)}",
                "  Expires : Never" if not operator.expires
                else f"  Expires : {_go_time(operator.expires)}",
            ]
        return lines

    def preload_warnings(self, now: float | None = None) -> list[str]:
        """Preloaded accounts' validation issues (nats-server's checkResolvePreloads), and
        what their claims ask for that trionats does not do yet (ignored, so said)."""
        lines = []
        for key, claims in self.accounts.items():
            issues = claims.time_issues(now) + claims.issues()
            if issues:
                lines.append(f"Account [{key}] has validation issues:")
                lines += [f"  - {issue}" for issue in issues]
            ignored = [name for name in IGNORED_ACCOUNT_CLAIMS if claims.nats.get(name)]
            if any(export.get("service_latency") for export in claims.exports):
                ignored.append("service latency")
            limits = claims.limits
            if any(limits.get(name) for name in ("mem_storage", "disk_storage", "tiered_limits")):
                ignored.append("jetstream limits")
            if ignored:
                lines.append(f"Account [{key}]: {', '.join(ignored)} of its JWT are not "
                             "supported by trionats yet and are ignored")  # fmt: skip
        return lines

    def account(self, key: str) -> jwt.AccountClaims | None:
        """The account `key` if the resolver has it, issued by a trusted operator key."""
        claims = self.accounts.get(key)
        if claims is None or claims.issuer not in self.trusted or key in self.invalid:
            return None
        return claims

    # --- exports and imports ------------------------------------------------------------

    def account_blocks(self, now: float | None = None) -> list[dict]:
        """The trusted accounts' exports and imports as an `accounts` block gives them to the
        loader's checks (config/load.py _check_imports), in nats-server's mapping: a stream
        import's `local_subject` is its `to` (else the old `to` is a prefix), a service
        import's `local_subject` the subject its importers use. A private export (token_req)
        admits the accounts whose import carries a valid activation token (`allowed_by`)."""
        blocks = {}
        for key, claims in self.accounts.items():
            if self.account(key) is None:
                continue
            exports = [
                {"kind": export["type"], "subject": export.get("subject", ""),
                 "accounts": [] if export.get("token_req") else None,
                 "response_type": _RESPONSE_TYPES.get(export.get("response_type", ""),
                                                      "singleton"),
                 "response_threshold": export.get("response_threshold", 0) / 1e9}
                for export in claims.exports if export.get("type")
            ]  # fmt: skip
            blocks[key] = {"name": key, "exports": exports, "imports": []}
        for key in blocks:
            for entry in self.accounts[key].imports:
                spec = self._import_spec(key, entry, blocks, now)
                if spec is not None:
                    blocks[key]["imports"].append(spec)
        return list(blocks.values())

    def _import_spec(self, importer: str, entry: dict, blocks: dict, now) -> dict | None:
        kind, local, exporter = entry.get("type"), entry.get("local_subject", ""), entry.get("account")
        if not kind or exporter not in blocks:
            return None
        spec = {"kind": kind, "account": exporter, "subject": entry.get("subject", "")}
        if kind == "stream" and local:
            spec["to"] = local
        elif kind == "stream":  # (the old `to` of a stream import is a prefix)
            spec["prefix"] = entry.get("to", "")
        elif local:
            spec["to"] = local
        elif entry.get("to"):  # the old form: `to` is the exporter's subject
            spec.update(subject=entry["to"], to=entry.get("subject", ""))
        if entry.get("token"):
            self._admit(importer, spec, entry["token"], blocks[exporter]["exports"], now)
        return spec

    def _admit(self, importer: str, spec: dict, token: str, exports: list[dict], now) -> None:
        """A valid activation token for `spec` admits `importer` to the private export it
        names (nats-server's checkActivation): issued by the exporter or one of its signing
        keys, for this account, this kind, a subject covering the import's, in its time and
        not revoked by the export."""
        from ..core.imports import is_subset

        exporter = self.accounts[spec["account"]]
        try:
            activation = jwt.decode_activation(token)
        except jwt.JWTError:
            return
        issuer_ok = activation.issuer == exporter.subject or (
            activation.issuer_account == exporter.subject
            and activation.issuer in exporter.signing_keys
        )
        if not (issuer_ok and activation.subject == importer
                and activation.import_type == spec["kind"]
                and is_subset(spec["subject"], activation.import_subject)
                and not activation.time_issues(now)):  # fmt: skip
            return
        for export, claims in zip(exports, [e for e in exporter.exports if e.get("type")]):
            if export["accounts"] is None or export["kind"] != spec["kind"]:
                continue
            if not is_subset(spec["subject"], export["subject"]):
                continue
            stamp = (claims.get("revocations") or {}).get(importer)
            if stamp is not None and stamp >= activation.issued_at:
                continue
            export["accounts"].append(importer)

    # --- a client's login ---------------------------------------------------------------

    def login(self, token: str, sig: str, nonce: str, *, connection_type: str = "STANDARD",
              host: str = "", now: float | None = None) -> UserLogin:  # fmt: skip
        """Check a CONNECT's user JWT and nonce signature; Refused says why not."""
        now = time.time() if now is None else now
        if not token:
            raise Refused("Authentication requires a user JWT")
        try:
            user = jwt.decode_user(token)
        except jwt.JWTError as exc:
            raise Refused(f"User JWT not valid: {exc}") from None
        issues = user.time_issues(now) + user.issues()
        if issues:
            raise Refused(f"User JWT no longer valid: {issues}")
        if user.nats.get("proxy_required"):
            raise Refused("Proxy required")  # trionats has no trusted proxies
        account = self.accounts.get(user.account)
        if account is None:
            raise Refused("Account JWT lookup error: account not found")
        if user.account in self.invalid:
            raise Refused("Account JWT lookup error: account validation failed")
        if account.issuer not in self.trusted:
            raise Refused("Account JWT not signed by trusted operator")
        if user.issuer not in account.issuers():
            raise Refused("User JWT issuer is not known")
        limits = user.nats
        scope = account.signing_keys.get(user.issuer)
        if scope is not None:
            if not user.has_empty_permissions():
                raise Refused("User JWT is not valid: scoped users require no permissions or "
                              "limits set")  # fmt: skip
            try:
                limits = {**limits, **jwt.apply_scope(scope["template"], user, account)}
            except jwt.TemplateError:
                raise Refused("User JWT generated invalid permissions") from None
        if account.time_issues(now):
            raise Refused("Account JWT has expired")
        if limits.get("bearer_token") and account.limits.get("disallow_bearer"):
            raise Refused("Account does not allow bearer tokens")
        types = [kind.upper() for kind in limits.get("allowed_connection_types") or []]
        known = [kind for kind in types if kind in KNOWN_CONNECTION_TYPES]
        if types and (not known or connection_type not in known):
            raise Refused("Connection type not allowed")
        if not limits.get("bearer_token"):
            if not sig:
                raise Refused("Signature missing")
            signature = nkeys.signature_bytes(sig)
            if signature is None:
                raise Refused("Signature not valid base64")
            raw = nkeys.decode_public(user.subject)
            if raw is None:
                raise Refused("User nkey not valid")
            if not nkeys.verify_raw(raw, signature, nonce.encode()):
                raise Refused("Signature not verified")
        if account.is_revoked(user.subject, user.issued_at):
            raise Refused("User authentication revoked")
        if not _source_allowed(limits.get("src") or [], host):
            raise Refused(f"Bad src Ip {host}", error=True)
        allowed, window_left = _connect_window(limits, now)
        if not allowed:
            raise Refused("Outside connect times", error=True)
        permissions = _permissions(limits) or _permissions(account.default_permissions)
        login = UserLogin(
            user.subject,
            user.name,
            account.subject,
            CompiledPermissions(permissions) if permissions is not None else None,
            _min_limit(limits.get("subs", 0), account.limit("subs")),
            _min_limit(limits.get("payload", 0), account.limit("payload")),
            _expires_in(user.expires, window_left, now),
        )
        if account.expires:  # (nats-server's account checkExpiration: whole seconds)
            login.account_expires_in = float(max(0, account.expires - int(now)))
        login.monitor = JWTDetails(
            "" if limits.get("bearer_token") else token,
            user.issuer if user.issuer_account else account.subject,
            list(user.tags),
            account.name or account.subject,
            user.name,
        )
        return login


def _min_limit(user: int, account: int) -> int:
    """nats-server's minLimit: the smaller of two limits where -1 means none."""
    if user == jwt.NO_LIMIT:
        return account
    if account == jwt.NO_LIMIT:
        return user
    return min(user, account)


def _expires_in(expires: int, window_left: float, now: float) -> float | None:
    """nats-server's setExpiration: whole seconds to `exp` (from the current whole second),
    or the rest of the connect time window if that ends first; None: never."""
    if not expires:
        return window_left or None
    left = float(max(0, expires - int(now)))
    return window_left if window_left and window_left < left else left


def _connect_window(limits: dict, now: float) -> tuple[bool, float]:
    """validateTimes: whether `now` is inside one of the user's `times` windows (HH:MM:SS
    in `times_location`, or the server's local time), and the most time left in one."""
    windows = limits.get("times") or []
    if not windows:
        return True, 0.0
    location = limits.get("times_location", "")
    try:
        zone = zoneinfo.ZoneInfo(location) if location else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False, 0.0
    moment = datetime.datetime.fromtimestamp(now, zone) if zone else (
        datetime.datetime.fromtimestamp(now).astimezone()
    )  # fmt: skip
    inside, most = False, 0.0
    for window in windows:
        try:
            start, end = (_at_clock(moment, (window or {}).get(edge, "")) for edge in ("start", "end"))
        except ValueError:
            return False, 0.0
        left = _time_left(start, end, moment)
        if left is not None and (not inside or left > most):
            inside, most = True, left
    return inside, most


def _at_clock(moment: datetime.datetime, clock: str) -> datetime.datetime:
    hour, minute, second = (int(part) for part in clock.split(":"))
    return moment.replace(hour=hour, minute=minute, second=second, microsecond=0)


def _time_left(start, end, now) -> float | None:
    """validateTimeRangeAt: seconds left in the window, None when outside it."""
    if start < now < end:
        return (end - now).total_seconds()
    if start > end:  # across midnight
        if end > now:
            return (end - now).total_seconds()
        end = end + datetime.timedelta(days=1)
        if start < now < end:
            return (end - now).total_seconds()
    return None


def _source_allowed(networks: list[str], host: str) -> bool:
    """validateSrc: the client's address must be in one of the JWT's CIDR blocks."""
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for network in networks:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            return False
    return False


def _permissions(claims: dict) -> Permissions | None:
    """nats-server's buildPermissionsFromJwt: None when the claims set none."""

    def subject_permission(which: str) -> SubjectPermission | None:
        entry = claims.get(which) or {}
        allow, deny = entry.get("allow") or [], entry.get("deny") or []
        if not allow and not deny:
            return None
        return SubjectPermission(allow=tuple(allow) if allow else None, deny=tuple(deny))

    publish, subscribe = subject_permission("pub"), subject_permission("sub")
    resp = claims.get("resp")
    responses = None
    if resp is not None:  # validateResponsePermissions: 0 means the default
        responses = ResponsePermission(
            max_msgs=resp.get("max") or defaults.ALLOW_RESPONSES_MAX_MSGS,
            expires=(resp.get("ttl") or 0) / 1e9 or defaults.ALLOW_RESPONSES_EXPIRES,
        )
    if publish is None and subscribe is None and responses is None:
        return None
    return Permissions(publish=publish, subscribe=subscribe, allow_responses=responses)
