"""Who may connect: the credentials table built from the options, and the CONNECT checks.

`Authenticator.check(connect)` decides synchronously for plain passwords and tokens
(`hmac.compare_digest`) and returns a `PendingPassword` when a bcrypt hash must be verified;
`verify()` runs that off the event loop (`trio.to_thread.run_sync`) behind a CapacityLimiter
of `defaults.AUTH_BCRYPT_THREADS`, so a flood of logins cannot take more than those threads.

Better than nats-server:
* an unknown user costs one bcrypt check like a known one whenever bcrypt users exist (the
  given password is checked against a configured hash and the result thrown away), so
  response times do not reveal which user names exist;
* failure log lines are rate limited (`AUTH_FAILURE_LOG_BURST` per
  `AUTH_FAILURE_LOG_WINDOW` seconds, then one line saying how many were suppressed).
"""

from __future__ import annotations

import hmac
import re
import time

import trio

from .. import defaults
from ..core.accounts import GLOBAL_ACCOUNT
from ..options import Options, Permissions
from . import nkeys
from .certmap import map_user
from .operator import OperatorMode, Refused
from .permissions import CompiledPermissions

#: A configured password or token that is a bcrypt hash (nats-server's test).
BCRYPT_PREFIX = re.compile(r"^\$2[abxy]\$\d{2}\$")


def is_bcrypt(secret: str) -> bool:
    return bool(BCRYPT_PREFIX.match(secret))


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class Identity:
    """An authenticated client: its account, log label (`"<account>/user:<name>"`) and
    permissions; for a user JWT also its limits and expiry."""

    __slots__ = ("user", "permissions", "kind", "account", "max_subs", "max_payload",
                 "expires_in", "account_expires_in", "jwt")  # fmt: skip

    def __init__(
        self,
        user: str,
        permissions: CompiledPermissions | None,
        kind: str = "user",
        account: str = GLOBAL_ACCOUNT,
    ) -> None:
        self.user = user  # the user name, or the public key of an nkey or JWT user
        self.permissions = permissions
        self.kind = kind  # "user", "nkey" or "jwt"
        self.account = account  # the account's name: `$G` unless an `accounts` user
        #: A user JWT's limits (-1: none but the server's) and seconds left from the login
        #: (None: no end).
        self.max_subs = -1
        self.max_payload = -1
        self.expires_in: float | None = None
        self.account_expires_in: float | None = None  # (its account JWT's `exp`)
        #: A JWT user's details for monitoring (auth/operator.py JWTDetails), else None.
        self.jwt = None

    @property
    def label(self) -> str:
        return f'"{self.account}/{self.kind}:{self.user}"' if self.user else ""


class PendingPassword:
    """A CONNECT whose verdict needs bcrypt: `identity` if `password` matches `hashed`."""

    __slots__ = ("password", "hashed", "identity", "failure")

    def __init__(self, password: str, hashed: str, identity: Identity | None, failure: str) -> None:
        self.password = password
        self.hashed = hashed
        self.identity = identity  # None: the answer is "no" whatever bcrypt says
        self.failure = failure


class Failure:
    """A refused CONNECT, with nats-server's log text, and the reason logged before it (at
    debug level, or as an error where nats-server logs it so)."""

    __slots__ = ("text", "detail", "detail_is_error")

    def __init__(self, text: str, detail: str = "", *, detail_is_error: bool = False) -> None:
        self.text = text
        self.detail = detail
        self.detail_is_error = detail_is_error


def _compile(permissions: Permissions | None) -> CompiledPermissions | None:
    if permissions is None or (
        permissions.publish is None
        and permissions.subscribe is None
        and permissions.allow_responses is None
    ):
        return None
    return CompiledPermissions(permissions)


def _checkpw(password: str, hashed: str) -> bool:
    import bcrypt

    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # a malformed hash never matches
        return False


class Authenticator:
    """The server's authentication settings and checks (rebuilt when the options change)."""

    def __init__(self, options: Options, connection_type: str = "STANDARD") -> None:
        """`connection_type`: the listener's kind in allowed_connection_types (STANDARD for
        the client port, WEBSOCKET for websocket.py's listener)."""
        auth = options.authorization
        self.no_auth_user = options.no_auth_user
        self.single: tuple[str, str] | None = None
        self.token = ""
        #: user name -> (password or bcrypt hash, Identity; None if not allowed on this port)
        self.users: dict[str, tuple[str, Identity | None]] = {}
        #: user nkey (public key) -> Identity, or None if not allowed on this port
        self.nkeys: dict[str, Identity | None] = {}
        self.enabled = False
        self.timeout = defaults.AUTH_TIMEOUT
        if options.tls is not None:  # nats-server: the TLS handshake timeout plus a second
            self.timeout = (options.tls.timeout or defaults.TLS_TIMEOUT) + 1.0
        #: verify_and_map: users are named by their client certificate (auth/certmap.py).
        self.tls_map = options.tls is not None and options.tls.verify_and_map
        self.plaintext = False
        self.dummy_hash = ""  # a configured bcrypt hash, for unknown users
        # Users of the `authorization` block land in the global account, those of an
        # `accounts` block in theirs: (users, default permissions, account name).
        user_lists = [(auth.users, auth.default_permissions, GLOBAL_ACCOUNT)] if auth else []
        user_lists += [
            (account.users, account.default_permissions, account.name)
            for account in options.accounts
        ]
        for users, default_permissions, account in user_lists:
            for user in users:
                perms = _compile(user.permissions or default_permissions)
                kind = "nkey" if user.nkey else "user"
                identity = Identity(user.user or user.nkey, perms, kind, account)
                types = user.allowed_connection_types
                if types and connection_type not in types:
                    identity = None  # not on this listener: always refused
                self.enabled = True
                if user.nkey:
                    self.nkeys[user.nkey] = identity
                    continue
                self.users[user.user] = (user.password, identity)
                if is_bcrypt(user.password):
                    self.dummy_hash = self.dummy_hash or user.password
                else:
                    self.plaintext = True
        if auth is not None and auth.timeout is not None and auth.timeout > 0:
            self.timeout = auth.timeout
        # Without users, a token or a single user (the loader refuses them beside users).
        if auth is not None and not self.enabled:
            if auth.token:
                self.token = auth.token
                self.enabled = True
            elif auth.user or auth.password:
                self.single = (auth.user, auth.password)
                self.plaintext = not is_bcrypt(auth.password)
                self.enabled = True
        #: INFO auth_required (false with no_auth_user, where CONNECT may omit credentials).
        self.auth_required = self.enabled and not (self.no_auth_user and self.users)
        #: Operator mode (auth/operator.py): every client logs in with a user JWT.
        self.operator: OperatorMode | None = None
        if options.operators:
            self.operator = OperatorMode(options.operators, options.resolver_preload)
            self.enabled = self.auth_required = True
        self.connection_type = connection_type
        self.limiter = trio.CapacityLimiter(defaults.AUTH_BCRYPT_THREADS)
        self._log_window_start = 0.0
        self._logged = 0
        self._suppressed = 0

    def carry_over(self, old: Authenticator) -> None:
        """A reload replaced `old`: keep its bcrypt threads limit and failure log window, so
        checks still running there and new ones share AUTH_BCRYPT_THREADS."""
        self.limiter = old.limiter
        self._log_window_start = old._log_window_start
        self._logged = old._logged
        self._suppressed = old._suppressed

    def knows(self, identity: Identity) -> bool:
        """Is the user or nkey `identity` names still configured (on any listener)?

        As nats-server on reload, a client whose user is gone is closed without an -ERR;
        one whose user is still there has its credentials checked again."""
        if not identity.user or identity.kind == "jwt":
            return True  # token, no user, or a user JWT: the credentials decide
        if identity.kind == "nkey":
            return identity.user in self.nkeys
        if self.single is not None:
            return self.single[0] == identity.user
        return identity.user in self.users

    # --- the checks -----------------------------------------------------------------------

    def check(self, user: str, password: str, token: str, nkey: str = "", sig: str = "",
              nonce: str = "", cert: bytes | None = None, user_jwt: str = "", host: str = ""):
        """An Identity, a Failure, or a PendingPassword to `verify()`.

        `cert` is the client's TLS certificate (DER), used with verify_and_map; `user_jwt`
        and `host` (the client's address) in operator mode."""
        if self.operator is not None:
            return self._jwt_login(user_jwt, sig, nonce, host)
        if self.nkeys and (nkey or not self.users):
            # nats-server's order: nkey users first, then user/password.
            identity = self.nkeys.get(nkey) if nkey else None
            if identity is None or not nkeys.verify(nkey, sig, nonce):
                if nkey:
                    return Failure(f'authentication error - Nkey "{nkey}"')
                return Failure("authentication error")
            return identity
        if self.users:
            if self.tls_map:
                return self._from_certificate(cert, user)
            if not (user or password or token) and self.no_auth_user:
                entry = self.users.get(self.no_auth_user)
                if entry is not None and entry[1] is not None:
                    return entry[1]
            if user:
                failure = f'authentication error - User "{user}"'
            elif token:
                failure = 'authentication error - Token "[REDACTED]"'
            else:
                failure = "authentication error"
            entry = self.users.get(user) if user else None
            if entry is None:
                if self.dummy_hash:  # cost the same as a known user
                    return PendingPassword(password, self.dummy_hash, None, failure)
                return Failure(failure)
            expected, identity = entry
            if identity is None:
                if is_bcrypt(expected):
                    return PendingPassword(password, expected, None, failure)
                return Failure(failure)
            return self._password(password, expected, identity, failure)
        if self.token:
            failure = "authentication error"
            return self._password(token, self.token, Identity("", None), failure)
        if self.single is not None:
            name, expected = self.single
            failure = f'authentication error - User "{user}"' if user else "authentication error"
            if not _equal(user, name):
                if is_bcrypt(expected):
                    return PendingPassword(password, expected, None, failure)
                _equal(password, expected)
                return Failure(failure)
            return self._password(password, expected, Identity(name, None), failure)
        return Identity("", None)

    def _jwt_login(self, user_jwt: str, sig: str, nonce: str, host: str):
        """Operator mode: the user JWT decides (nats-server logs "authentication error"
        whatever the reason, which goes to the debug log)."""
        try:
            login = self.operator.login(
                user_jwt, sig, nonce, connection_type=self.connection_type, host=host
            )
        except Refused as refused:
            return Failure("authentication error", str(refused), detail_is_error=refused.error)
        identity = Identity(login.user, login.permissions, "jwt", login.account)
        identity.max_subs = login.max_subs
        identity.max_payload = login.max_payload
        identity.expires_in = login.expires_in
        identity.account_expires_in = login.account_expires_in
        identity.jwt = login.monitor
        return identity

    def _from_certificate(self, cert: bytes | None, user: str):
        """verify_and_map: the configured user the certificate names; no password needed."""
        allowed = [name for name, (_, identity) in self.users.items() if identity is not None]

        def lookup(name: str) -> Identity | None:
            entry = self.users.get(name)
            return entry[1] if entry is not None else None

        identity = map_user(cert, lookup, allowed)
        if identity is None:
            text = f'authentication error - User "{user}"' if user else "authentication error"
            return Failure(text)
        return identity

    @staticmethod
    def _password(given: str, expected: str, identity: Identity, failure: str):
        if is_bcrypt(expected):
            return PendingPassword(given, expected, identity, failure)
        return identity if _equal(given, expected) else Failure(failure)

    async def verify(self, pending: PendingPassword) -> bool:
        """bcrypt in a worker thread; AUTH_BCRYPT_THREADS at once, first come first served."""
        ok = await self.bcrypt_matches(pending.password, pending.hashed)
        return ok and pending.identity is not None

    async def bcrypt_matches(self, password: str, hashed: str) -> bool:
        """Does `password` match the bcrypt `hashed`? (In a worker thread, in turn.)"""
        return await trio.to_thread.run_sync(_checkpw, password, hashed, limiter=self.limiter)

    # --- logging failures -----------------------------------------------------------------

    def log_failure(self, log, text: str) -> None:
        """Log an authentication error, at most AUTH_FAILURE_LOG_BURST per window."""
        now = time.monotonic()
        if now - self._log_window_start >= defaults.AUTH_FAILURE_LOG_WINDOW:
            if self._suppressed:
                log.error(
                    f"{self._suppressed} more authentication errors in the last "
                    f"{defaults.AUTH_FAILURE_LOG_WINDOW:g}s were not logged"
                )
            self._log_window_start = now
            self._logged = self._suppressed = 0
        if self._logged < defaults.AUTH_FAILURE_LOG_BURST:
            self._logged += 1
            log.error(text)
        else:
            self._suppressed += 1
