"""NATS JWTs: decoding operator, account and user claims and checking their signatures.

A NATS JWT is three base64url (unpadded) parts joined by dots: a header
`{"typ":"JWT","alg":"ed25519-nkey"}`, the claims, and the Ed25519 signature of the first two
parts (with their dot) by the claims' issuer, an nkey (`iss`). nats-server reads them with
nats-io/jwt v2; this module reads them the same way, boundedly, since user JWTs come from
anyone who connects:

* a token over MAX_TOKEN_SIZE is refused before anything is decoded (the library's limit);
* the header and claims JSON go through protocol/gojson.py (bounded nesting, Go's types: a
  member of the wrong type fails as json.Unmarshal fails);
* the signature is checked against the issuer key, whose kind must fit the claim (an
  account JWT is issued by an operator key, a user JWT by an account key).

Which issuers are *trusted* (the operator and its signing keys, an account and its signing
keys), expiry against the clock, revocations and limits are the caller's: auth/operator.py.
Version 1 JWTs (`alg: ed25519`) are refused: nats-server still reads them, trionats does not.

Pure code: no trio, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import time

from ..errors import go_quote
from ..protocol import gojson
from ..protocol.gojson import BOOL, INT, STR, STR_LIST, Struct, map_of
from . import nkeys

#: nats-io/jwt's MaxTokenSize: longer tokens are refused unread.
MAX_TOKEN_SIZE = 1024 * 1024
#: nats-io/jwt's NoLimit: a limit that does not apply.
NO_LIMIT = -1
#: The claims version this module reads (nats-io/jwt v2's libVersion).
VERSION = 2
#: nats-server's cap on the subjects a scoped signing key's template may expand to.
MAX_TEMPLATE_EXPANSIONS = 4096


class JWTError(ValueError):
    """A token that does not decode or verify; the text is nats-io/jwt's where it has one."""


# --- the JSON shapes (nats-io/jwt v2 structs, with their json tags) -------------------------

HEADER = Struct({"typ": STR, "alg": STR})

_PERMISSION = Struct({"allow": STR_LIST, "deny": STR_LIST})
_RESPONSE = Struct({"max": INT, "ttl": INT})  # ttl: a Go time.Duration, in nanoseconds
_TIME_RANGE = Struct({"start": STR, "end": STR})


class _CIDRList(gojson.Field):
    """jwt.CIDRList: a list of strings, or one comma-separated string (lower-cased)."""

    nullable = True

    def assign(self, value):
        if type(value) is list:
            return STR_LIST.assign(value)
        if type(value) is str:
            return [item.strip() for item in value.lower().split(",") if item.strip()]
        raise gojson._Mismatch("CIDRList")


#: jwt.UserPermissionLimits: permissions, limits and the connection rules of a user.
_USER_PERMISSION_LIMITS = {
    "pub": _PERMISSION,
    "sub": _PERMISSION,
    "resp": _RESPONSE,
    "src": _CIDRList(),
    "times": gojson.list_of(_TIME_RANGE),
    "times_location": STR,
    "subs": INT,
    "data": INT,
    "payload": INT,
    "bearer_token": BOOL,
    "proxy_required": BOOL,
    "allowed_connection_types": STR_LIST,
}
_GENERIC = {"tags": STR_LIST, "type": STR, "version": INT}

USER = Struct({**_USER_PERMISSION_LIMITS, "issuer_account": STR, **_GENERIC})


class _SigningKeys(gojson.Field):
    """An account's `signing_keys`: each a public key, or a scope (`kind: user_scope`) with
    the permissions template of the users it signs. Returns {key: template or None}."""

    nullable = True
    _SCOPE = Struct({"kind": STR, "key": STR, "role": STR, "description": STR,
                     "template": Struct(_USER_PERMISSION_LIMITS)})  # fmt: skip

    def assign(self, value):
        if type(value) is not list:
            raise gojson._Mismatch("SigningKeys")
        keys: dict[str, dict | None] = {}
        for item in value:
            if type(item) is str:
                keys[item] = None
            elif isinstance(item, dict):
                if item.get("kind") != "user_scope":
                    raise gojson._Mismatch("SigningKeys (unknown signing key scope)")
                scope = self._SCOPE.assign(item)
                # A scope's template starts unlimited (jwt.NewUserScope), then is read over.
                scope["template"] = _unlimited(scope.get("template") or {})
                keys[scope.get("key", "")] = scope
        return keys


_ACCOUNT_LIMITS = Struct({
    "subs": INT, "data": INT, "payload": INT,
    "imports": INT, "exports": INT, "wildcards": BOOL, "disallow_bearer": BOOL,
    "conn": INT, "leaf": INT,
    "mem_storage": INT, "disk_storage": INT, "streams": INT, "consumer": INT,
    "max_ack_pending": INT, "mem_max_stream_bytes": INT, "disk_max_stream_bytes": INT,
    "max_bytes_required": BOOL, "tiered_limits": gojson.ANY,
})  # fmt: skip

class _ExportType(gojson.Field):
    """jwt.ExportType: "stream" or "service" (anything else is an error, as in Go)."""

    zero = ""

    def assign(self, value):
        if value in ("stream", "service"):
            return value
        raise gojson._Mismatch("ExportType")


_EXPORT = Struct({
    "name": STR, "subject": STR, "type": _ExportType(), "token_req": BOOL,
    "revocations": map_of(INT), "response_type": STR, "response_threshold": INT,
    "service_latency": gojson.ANY, "account_token_position": INT, "advertise": BOOL,
    "allow_trace": BOOL, "description": STR, "info_url": STR,
})  # fmt: skip
_IMPORT = Struct({
    "name": STR, "subject": STR, "account": STR, "token": STR, "to": STR,
    "local_subject": STR, "type": _ExportType(), "share": BOOL, "allow_trace": BOOL,
})  # fmt: skip

ACCOUNT = Struct({
    "imports": gojson.list_of(_IMPORT),
    "exports": gojson.list_of(_EXPORT),
    "limits": _ACCOUNT_LIMITS,
    "signing_keys": _SigningKeys(),
    "revocations": map_of(INT),
    "default_permissions": Struct({"pub": _PERMISSION, "sub": _PERMISSION, "resp": _RESPONSE}),
    "mappings": gojson.ANY,
    "authorization": gojson.ANY,
    "trace": gojson.ANY,
    "cluster_traffic": STR,
    "description": STR,
    "info_url": STR,
    **_GENERIC,
})  # fmt: skip

OPERATOR = Struct({
    "signing_keys": STR_LIST,
    "account_server_url": STR,
    "operator_service_urls": STR_LIST,
    "system_account": STR,
    "assert_server_version": STR,
    "strict_signing_key_usage": BOOL,
    "description": STR,
    "info_url": STR,
    **_GENERIC,
})  # fmt: skip

ACTIVATION = Struct({"subject": STR, "kind": _ExportType(), "issuer_account": STR, **_GENERIC})

_CLAIMS_DATA = {"aud": STR, "exp": INT, "jti": STR, "iat": INT, "iss": STR, "name": STR,
                "nbf": INT, "sub": STR}  # fmt: skip
#: Enough of any claims to know its kind and version (jwt's `identifier`).
_IDENTIFIER = Struct({"type": STR, "nats": Struct(_GENERIC)})
_KINDS = (("operator", OPERATOR), ("account", ACCOUNT), ("user", USER), ("activation", ACTIVATION))
_CLAIMS = {kind: Struct({**_CLAIMS_DATA, "nats": nats}) for kind, nats in _KINDS}
#: The key kind each claim's issuer must have (jwt's ExpectedPrefixes).
_ISSUER_PREFIX = {
    "operator": nkeys.PREFIX_OPERATOR,
    "account": nkeys.PREFIX_OPERATOR,
    "user": nkeys.PREFIX_ACCOUNT,
    "activation": nkeys.PREFIX_ACCOUNT,
}
_PREFIX_NAMES = {nkeys.PREFIX_OPERATOR: "[operator]", nkeys.PREFIX_ACCOUNT: "[account]"}


def _unlimited(limits: dict) -> dict:
    """Limits as jwt.NewUserClaims / NewUserScope start them: -1 unless given."""
    return {"subs": NO_LIMIT, "data": NO_LIMIT, "payload": NO_LIMIT, **limits}


# --- the claims ---------------------------------------------------------------------------


class Claims:
    """The fields every claim has; `nats` is the kind's own part (a dict, by json tag)."""

    __slots__ = ("kind", "issuer", "subject", "name", "issued_at", "expires", "not_before",
                 "id", "audience", "nats", "token")  # fmt: skip

    def __init__(self, kind: str, data: dict, token: str) -> None:
        self.kind = kind
        self.issuer: str = data.get("iss", "")
        self.subject: str = data.get("sub", "")
        self.name: str = data.get("name", "")
        self.issued_at: int = data.get("iat", 0)
        self.expires: int = data.get("exp", 0)
        self.not_before: int = data.get("nbf", 0)
        self.id: str = data.get("jti", "")
        self.audience: str = data.get("aud", "")
        self.nats: dict = data.get("nats") or {}
        self.token = token

    @property
    def tags(self) -> list[str]:
        return self.nats.get("tags") or []

    def time_issues(self, now: float | None = None) -> list[str]:
        """jwt's ClaimsData.Validate: "claim is expired" / "claim is not yet valid"."""
        now = int(time.time() if now is None else now)
        issues = []
        if self.expires > 0 and now > self.expires:
            issues.append("claim is expired")
        if self.not_before > 0 and self.not_before > now:
            issues.append("claim is not yet valid")
        return issues

    def __repr__(self) -> str:
        return f"<{self.kind} claims {self.subject} by {self.issuer}>"


class OperatorClaims(Claims):
    __slots__ = ()

    def go_json(self) -> dict:
        """The claims as nats-server marshals a jwt.OperatorClaims (/varz
        `trusted_operators_claim`): Go's field order, empty fields left out."""
        data = {"aud": self.audience, "exp": self.expires, "jti": self.id,
                "iat": self.issued_at, "iss": self.issuer, "name": self.name,
                "nbf": self.not_before, "sub": self.subject}  # fmt: skip
        nats = {key: self.nats.get(key) for key in (
            "signing_keys", "account_server_url", "operator_service_urls", "system_account",
            "assert_server_version", "strict_signing_key_usage", "tags", "type", "version",
        )}  # fmt: skip
        out = {key: value for key, value in data.items() if value}
        out["nats"] = {key: value for key, value in nats.items() if value}
        return out

    @property
    def signing_keys(self) -> list[str]:
        return self.nats.get("signing_keys") or []

    @property
    def system_account(self) -> str:
        return self.nats.get("system_account", "")

    @property
    def strict_signing_key_usage(self) -> bool:
        return self.nats.get("strict_signing_key_usage", False)


class AccountClaims(Claims):
    __slots__ = ()

    @property
    def signing_keys(self) -> dict[str, dict | None]:
        """Signing key -> its user scope (None: an unscoped key)."""
        return self.nats.get("signing_keys") or {}

    @property
    def limits(self) -> dict:
        return self.nats.get("limits") or {}

    @property
    def exports(self) -> list[dict]:
        return [export or {} for export in self.nats.get("exports") or []]

    @property
    def imports(self) -> list[dict]:
        return [entry or {} for entry in self.nats.get("imports") or []]

    @property
    def default_permissions(self) -> dict:
        return self.nats.get("default_permissions") or {}

    def limit(self, name: str) -> int:
        """An account limit (conn, subs, payload, ...); unlimited when absent, as
        jwt.NewAccountClaims writes them (nats-server treats 0 as none for conn too)."""
        return self.limits.get(name, NO_LIMIT)

    def issues(self) -> list[str]:
        """jwt's Account.Validate errors besides time (what makes nats-server refuse the
        account: "account validation failed"): imports (activation tokens included),
        exports, the operator's import/export limits, signing keys, default permissions."""
        issues = []
        services: dict[str, list[str]] = {}
        for entry in self.imports:
            issues += _import_issues(entry, self.subject, services)
        for export in self.exports:
            if export.get("type") not in ("stream", "service"):
                issues.append(f"invalid export type: {go_quote(export.get('type') or 'unknown')}")
            issues += _subject_issues(export.get("subject", ""))
        limits = self.limits
        if limits.get("imports", 0) != NO_LIMIT and len(self.imports) > limits.get("imports", 0):
            issues.append("the account contains more imports than allowed by the operator")
        if limits.get("exports", 0) != NO_LIMIT:
            if len(self.exports) > limits.get("exports", 0):
                issues.append("the account contains more exports than allowed by the operator")
            if not limits.get("wildcards") and any(
                _has_wildcard(export.get("subject", "")) for export in self.exports
            ):
                issues.append("the account contains wildcard exports that are not allowed by "
                              "the operator")  # fmt: skip
        for key, scope in self.signing_keys.items():
            if not nkeys.is_public(key, nkeys.PREFIX_ACCOUNT):
                issues.append(f"{go_quote(key)} is not a valid account signing key" if scope is None
                              else f"{key} is not an account public key")  # fmt: skip
        for which in ("pub", "sub"):
            permission = self.default_permissions.get(which) or {}
            for subject in (permission.get("allow") or []) + (permission.get("deny") or []):
                issues += _permission_issues(subject, permit_queue=which == "sub")
        return issues

    def issuers(self) -> set[str]:
        """Keys that may sign this account's users: its own and its signing keys."""
        return {self.subject, *self.signing_keys}

    def is_revoked(self, user: str, issued_at: int) -> bool:
        """jwt's RevocationList.IsRevoked: the user's, or everyone's (`*`), revocation at
        or after the user JWT's issue time."""
        revocations = self.nats.get("revocations") or {}
        for key in ("*", user):
            stamp = revocations.get(key)
            if stamp is not None and stamp >= issued_at:
                return True
        return False


class UserClaims(Claims):
    __slots__ = ()

    @property
    def issuer_account(self) -> str:
        return self.nats.get("issuer_account", "")

    @property
    def account(self) -> str:
        """The account the user belongs to: `issuer_account` if signed by a signing key."""
        return self.issuer_account or self.issuer

    @property
    def bearer_token(self) -> bool:
        return self.nats.get("bearer_token", False)

    def has_empty_permissions(self) -> bool:
        """jwt's HasEmptyPermissions: no permission, limit or rule at all (what a user
        signed by a scoped key must be)."""
        return not any(self.nats.get(key) for key in _USER_PERMISSION_LIMITS)

    def issues(self) -> list[str]:
        """jwt's UserClaims.Validate errors besides time (permissions, src, times)."""
        issues = []
        for which in ("pub", "sub"):
            permission = self.nats.get(which) or {}
            for subject in (permission.get("allow") or []) + (permission.get("deny") or []):
                issues += _permission_issues(subject, permit_queue=which == "sub")
        for cidr in self.nats.get("src") or []:
            try:
                ipaddress.ip_network(cidr, strict=False)
                if "/" not in cidr:
                    raise ValueError(cidr)
            except ValueError:
                issues.append(f"invalid cidr {go_quote(cidr)} in user src limits")
        for window in self.nats.get("times") or []:
            window = window or {}  # (a null element: Go's zero TimeRange)
            for end in ("start", "end"):
                value = window.get(end, "")
                if not value:
                    issues.append(f"time ranges {end} must contain {'an' if end == 'end' else 'a'} {end}")
                elif not _CLOCK.fullmatch(value):
                    issues.append(f"{end} in time range is invalid {go_quote(value)}")
        location = self.nats.get("times_location", "")
        if location:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(location)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                issues.append(f"could not parse iana time zone by name: {exc}")
        account = self.issuer_account
        if account and not nkeys.is_public(account, nkeys.PREFIX_ACCOUNT):
            issues.append("account_id is not an account public key")
        return issues


class ActivationClaims(Claims):
    """An exporting account's permission for one account (`sub`) to import a private
    export: the subject it may import and the kind (stream or service)."""

    __slots__ = ()

    @property
    def import_subject(self) -> str:
        return self.nats.get("subject", "")

    @property
    def import_type(self) -> str:
        return self.nats.get("kind", "")

    @property
    def issuer_account(self) -> str:
        return self.nats.get("issuer_account", "")


_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d")
_CLASSES = {"operator": OperatorClaims, "account": AccountClaims, "user": UserClaims,
            "activation": ActivationClaims}  # fmt: skip


def _permission_issues(subject: str, permit_queue: bool) -> list[str]:
    parts = subject.split(" ")
    if len(parts) > 2:
        return [f'Permission Subject "{subject}" contains too many spaces']
    issues = [issue for part in parts for issue in _subject_issues(part)]
    if len(parts) == 2 and not permit_queue:
        issues.append(f'Permission Subject "{subject}" is not allowed to contain queue')
    return issues


def _has_wildcard(subject: str) -> bool:
    return any(token in ("*", ">") for token in subject.split("."))


def _contained_in(subject: str, other: str) -> bool:
    """jwt's Subject.IsContainedIn."""
    from ..core.imports import is_subset

    return is_subset(subject, other)


def _import_issues(entry: dict, account: str, services: dict[str, list[str]]) -> list[str]:
    """jwt's Import.Validate (and Imports.Validate's overlap check for services)."""
    issues = []
    kind, source = entry.get("type"), entry.get("account", "")
    subject, local, to = entry.get("subject", ""), entry.get("local_subject", ""), entry.get("to", "")
    if kind == "service":
        own = to or re.sub(r"(?<![^.])\$\d+(?![^.])", "*", local) or subject
        for other in services.get(source, []):
            if other == own:
                issues.append(f"overlapping subject namespace for {go_quote(own)} in account "
                              f"{go_quote(source)}")  # fmt: skip
            elif _contained_in(own, other) or _contained_in(other, own):
                issues.append(f"overlapping subject namespace for {go_quote(own)} and "
                              f"{go_quote(other)} in same account {go_quote(source)}")  # fmt: skip
        services.setdefault(source, []).append(own)
    if kind not in ("stream", "service"):
        issues.append(f"invalid import type: {go_quote(kind or 'unknown')}")
    if kind == "service" and entry.get("allow_trace"):
        issues.append("AllowTrace only valid for stream import")
    if not source:
        issues.append("account to import from is not specified")
    issues += _subject_issues(subject)
    if local and to:
        issues.append("Local Subject replaces To")
    if entry.get("share") and kind != "service":
        issues.append("sharing information (for latency tracking) is only valid for services: "
                      f"{go_quote(subject)}")  # fmt: skip
    token = entry.get("token")
    if token:
        try:
            activation = decode_activation(token)
        except JWTError:
            return [*issues, f"import {go_quote(subject)} contains an invalid activation token"]
        if source not in (activation.issuer, activation.issuer_account):
            issues.append(f"activation token doesn't match account for import {go_quote(subject)}")
        if activation.subject != account:
            issues.append("activation token doesn't match account it is being included in, "
                          f"{go_quote(subject)}")  # fmt: skip
        if activation.import_type != kind:
            issues.append(f"mismatch between token import type {activation.import_type} and "
                          f"type of import {kind}")  # fmt: skip
        wanted = to if kind == "service" and to else subject
        if not _contained_in(wanted, activation.import_subject):
            issues.append(f"activation token import subject {go_quote(activation.import_subject)} "
                          f"doesn't match import {go_quote(subject)}")  # fmt: skip
    return issues


def _subject_issues(subject: str) -> list[str]:
    if not subject:
        return ["subject cannot be empty"]
    issues = []
    if subject[0] == "." or subject[-1] == ".":
        issues.append(f"subject {go_quote(subject)} cannot start or end with a `.`")
    if ".." in subject:
        issues.append(f"subject {go_quote(subject)} cannot contain consecutive `.`")
    return issues


# --- decoding -----------------------------------------------------------------------------


def _b64url(text: str) -> bytes:
    """Go's base64.RawURLEncoding.DecodeString: the URL alphabet, no padding."""
    if "=" in text or len(text) % 4 == 1:
        raise JWTError("illegal base64 data")
    try:
        return base64.b64decode(
            text.translate(_URL_TO_STD) + "=" * (-len(text) % 4), validate=True
        )
    except (binascii.Error, ValueError):
        raise JWTError("illegal base64 data") from None


_URL_TO_STD = str.maketrans("-_", "+/")


def _json(raw: bytes, struct: Struct, previous: dict | None = None) -> dict:
    try:
        return gojson.decode_struct(raw, struct, previous)
    except ValueError as exc:
        raise JWTError(str(exc)) from None


def decode(token: str) -> Claims:
    """Decode and verify a JWT (nats-io/jwt's Decode); JWTError if it is not one, is not
    signed by its issuer, or its issuer is not of the kind the claim needs."""
    if len(token) > MAX_TOKEN_SIZE:
        raise JWTError(f"token size {len(token)} exceeds maximum of {MAX_TOKEN_SIZE} bytes")
    chunks = token.split(".")
    if len(chunks) != 3:
        raise JWTError("expected 3 chunks")
    header = _json(_b64url(chunks[0]), HEADER)
    if header.get("typ", "").upper() != "JWT":
        raise JWTError(f"not supported type {go_quote(header.get('typ', ''))}")
    algorithm = header.get("alg", "").lower()
    if algorithm != "ed25519-nkey":
        # ("ed25519", version 1, is nats-server's too, not trionats')
        raise JWTError(f"unexpected {go_quote(header.get('alg', ''))} algorithm")
    payload = _b64url(chunks[1])
    identifier = _json(payload, _IDENTIFIER)
    generic = identifier.get("nats") or {}
    if identifier.get("type"):
        raise JWTError("version 1 JWTs are not supported")
    version = generic.get("version", 0)
    if version > VERSION:
        raise JWTError("JWT was generated by a newer version ")
    kind = generic.get("type", "")
    if kind not in _CLAIMS:
        raise JWTError(f"{kind or 'generic'} claims are not supported")
    if version < VERSION:
        raise JWTError("version 1 JWTs are not supported")
    data = _json(payload, _CLAIMS[kind])
    claims = _CLASSES[kind](kind, data, token)
    signature = _b64url(chunks[2])
    raw = nkeys.decode_any_public(claims.issuer)
    signed = token[: len(chunks[0]) + len(chunks[1]) + 1].encode()
    if raw is None or not nkeys.verify_raw(raw, signature, signed):
        raise JWTError("claim failed V2 signature verification")
    prefix = _ISSUER_PREFIX[kind]
    if not nkeys.is_public(claims.issuer, prefix):
        raise JWTError(f"unable to validate expected prefixes - {_PREFIX_NAMES[prefix]}")
    return claims


def _decode_kind(token: str, kind: str):
    claims = decode(token)
    if claims.kind != kind:
        raise JWTError(f"not {kind} claim")  # (nats-io/jwt's words)
    return claims


def decode_operator(token: str) -> OperatorClaims:
    return _decode_kind(token, "operator")


def decode_account(token: str) -> AccountClaims:
    return _decode_kind(token, "account")


def decode_user(token: str) -> UserClaims:
    return _decode_kind(token, "user")


def decode_activation(token: str) -> ActivationClaims:
    return _decode_kind(token, "activation")


_DECORATED = re.compile(r"\s*(?:(?:-{3,}.*-{3,}\r?\n)([\w\-.=]+)(?:\r?\n-{3,}.*-{3,}(\r?\n|\Z)))")


def parse_decorated(text: str) -> str:
    """The JWT of a decorated file (`-----BEGIN NATS OPERATOR JWT-----` ...), or the
    text itself if it has no such block (jwt's ParseDecoratedJWT)."""
    match = _DECORATED.search(text)
    return match.group(1) if match else text


# --- scoped signing keys ------------------------------------------------------------------

_MUSTACHE = re.compile(r"\{\{([^}]+)\}\}")


class TemplateError(ValueError):
    pass


def apply_scope(template: dict, user: UserClaims, account: AccountClaims) -> dict:
    """The user's permissions and limits from its scoped signing key's `template`, with
    `{{name()}}`, `{{subject()}}`, `{{account-name()}}`, `{{account-subject()}}`,
    `{{tag(x)}}` and `{{account-tag(x)}}` filled in (nats-server's
    processUserPermissionsTemplate). TemplateError if the template cannot apply."""
    result = {**template}

    def values_of(operation: str, subject: str, strict: bool) -> tuple[list[str], bool]:
        lowered = operation.lower()
        simple = {
            "name()": user.name,
            "subject()": user.subject,
            "account-name()": account.name,
            "account-subject()": user.issuer_account,
        }
        if lowered in simple:
            return [simple[lowered]], False
        for prefix, tags in (("tag(", user.tags), ("account-tag(", account.tags)):
            if lowered.startswith(prefix) and operation.endswith(")"):
                wanted = operation[len(prefix):-1].lower() + ":"
                found = [tag[len(wanted):] for tag in tags if tag.startswith(wanted)]
                if found:
                    return found, True
                if strict:
                    raise TemplateError(f"generated invalid subject {go_quote(subject)}")
                return [" "], True
        raise TemplateError(
            f"template operation in {go_quote(subject)}: {go_quote(operation)} is not defined"
        )

    def expand(subjects: list[str], strict: bool) -> list[str]:
        if not any(_MUSTACHE.search(subject) for subject in subjects):
            return subjects
        out: list[str] = []
        for subject in subjects:
            found = _MUSTACHE.findall(subject)
            sources = [f"{{{{{op}}}}}" for op in found]
            choices = [values_of(op.strip(), subject, strict)[0] for op in found]
            combinations = [[]]
            for options in choices:
                if len(combinations) * len(options) + len(out) > MAX_TEMPLATE_EXPANSIONS:
                    raise TemplateError("template expands to too many subjects")
                combinations = [done + [value] for done in combinations for value in options]
            for combination in combinations:
                filled = subject
                for source, value in zip(sources, combination):
                    filled = filled.replace(source, value)
                if _is_valid_subject(filled):
                    out.append(filled)
                elif strict:
                    raise TemplateError("generated invalid subject")
        return out

    for which in ("pub", "sub"):
        permission = dict(template.get(which) or {})
        allow = permission.get("allow") or []
        permission["allow"] = expand(allow, strict=False)
        permission["deny"] = expand(permission.get("deny") or [], strict=True)
        if allow and not permission["allow"]:
            permission["deny"] = [*permission["deny"], ">"]
        result[which] = permission
    return result


def _is_valid_subject(subject: str) -> bool:
    from ..protocol.subjects import is_valid_subject

    return bool(subject) and is_valid_subject(subject.encode(), check_blanks=True)
