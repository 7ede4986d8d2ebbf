"""NATS JWT decoding and verification (trionats/auth/jwt.py), on tokens made by tests/jwtkit.py
the way nats-io/jwt v2 writes them; hostile tokens get a JWTError, never another exception."""

from __future__ import annotations

import base64
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.jwtkit import (
    KeyPair,
    Operator,
    account_jwt,
    creds,
    encode,
    operator_jwt,
    user_jwt,
)
from trionats.auth import jwt, nkeys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.fixture(scope="module")
def keys():
    return KeyPair("operator"), KeyPair("account"), KeyPair("user")


def test_operator_account_and_user_claims_decode(keys):
    operator, account, user = keys
    op = jwt.decode_operator(operator_jwt(operator, name="O", signing_keys=["OSK"]))
    assert (op.kind, op.subject, op.issuer, op.name) == ("operator", operator.public,
                                                         operator.public, "O")  # fmt: skip
    assert op.signing_keys == ["OSK"]
    acc = jwt.decode_account(account_jwt(account, operator, name="A", limits={"conn": 3}))
    assert acc.issuer == operator.public and acc.limit("conn") == 3 and acc.limit("subs") == -1
    usr = jwt.decode_user(user_jwt(user, account, pub={"allow": ["a.>"]}, bearer_token=True))
    assert usr.account == account.public and usr.bearer_token
    assert usr.nats["pub"] == {"allow": ["a.>"]}


def test_signing_keys_and_scopes_of_an_account(keys):
    operator, account, _ = keys
    plain, scoped = KeyPair("account"), KeyPair("account")
    scope = {"kind": "user_scope", "key": scoped.public, "role": "r",
             "template": {"pub": {"allow": ["x"]}, "subs": 5}}  # fmt: skip
    acc = jwt.decode_account(account_jwt(account, operator, signing_keys=[plain.public, scope]))
    assert acc.signing_keys[plain.public] is None
    template = acc.signing_keys[scoped.public]["template"]
    assert template["subs"] == 5 and template["payload"] == -1  # unlimited unless given
    assert acc.issuers() == {account.public, plain.public, scoped.public}


def test_a_tampered_signature_or_payload_fails(keys):
    _, account, user = keys
    token = user_jwt(user, account)
    head, body, sig = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "==="))
    forged["nats"]["bearer_token"] = True
    forged_body = _b64(json.dumps(forged).encode())
    for bad in (f"{head}.{forged_body}.{sig}", f"{head}.{body}.{_b64(b'x' * 64)}"):
        with pytest.raises(jwt.JWTError, match="claim failed V2 signature verification"):
            jwt.decode(bad)


def test_the_issuer_must_be_of_the_kind_the_claim_needs(keys):
    operator, account, user = keys
    with pytest.raises(jwt.JWTError, match=r"unable to validate expected prefixes - \[account\]"):
        jwt.decode(user_jwt(user, operator))  # a user signed by an operator key
    with pytest.raises(jwt.JWTError, match=r"expected prefixes - \[operator\]"):
        jwt.decode(account_jwt(account, KeyPair("account")))
    with pytest.raises(jwt.JWTError, match="not user claim"):
        jwt.decode_user(account_jwt(account, operator))


@pytest.mark.parametrize(
    "header, error",
    [
        ({"typ": "JOSE", "alg": "ed25519-nkey"}, "not supported type"),
        ({"typ": "jwt", "alg": "HS256"}, "unexpected \"HS256\" algorithm"),
        ({"typ": "JWT", "alg": "ed25519"}, "unexpected"),  # version 1: not in trionats
        ({"typ": 1, "alg": "ed25519-nkey"}, "cannot decode into Go string"),
    ],
)
def test_headers_nats_io_jwt_refuses(keys, header, error):
    operator, account, _ = keys
    with pytest.raises(jwt.JWTError, match=error):
        jwt.decode(encode({"sub": account.public, "nats": {"type": "account", "version": 2}},
                          operator, header=header))  # fmt: skip


@pytest.mark.parametrize(
    "token, error",
    [
        ("a.b", "expected 3 chunks"),
        ("a.b.c.d", "expected 3 chunks"),
        ("eyJ=.e30.AA", "illegal base64"),
        ("e!J.e30.AA", "illegal base64"),
        ("x" * (jwt.MAX_TOKEN_SIZE + 1), "exceeds maximum"),
    ],
)
def test_malformed_tokens(token, error):
    with pytest.raises(jwt.JWTError, match=error):
        jwt.decode(token)


def test_claims_of_the_wrong_json_type_or_version_fail(keys):
    _, account, user = keys
    for claims, error in (
        ({"sub": user.public, "exp": "soon", "nats": {"type": "user", "version": 2}}, "int"),
        ({"sub": user.public, "nats": {"type": "user", "version": 3}}, "newer version"),
        ({"sub": user.public, "nats": {"type": "user", "version": 2, "subs": 1.5}}, "int"),
        ({"sub": user.public, "nats": {"type": "server", "version": 2}}, "not supported"),
        ({"sub": user.public, "nats": {"type": "user", "version": 2, "pub": []}}, "struct"),
    ):
        with pytest.raises(jwt.JWTError, match=error):
            jwt.decode(encode(claims, account))


def test_deeply_nested_claims_are_an_error_not_a_crash(keys):
    _, account, _ = keys
    head = _b64(b'{"typ":"JWT","alg":"ed25519-nkey"}')
    body = _b64(b'{"nats":{"type":"user","version":2,"tags":' + b"[" * 20000 + b"]" * 20000 + b"}}")
    signature = _b64(account.sign(f"{head}.{body}".encode()))
    with pytest.raises(jwt.JWTError):
        jwt.decode(f"{head}.{body}.{signature}")


def test_expiry_and_not_before():
    now = time.time()
    user, account = KeyPair("user"), KeyPair("account")
    assert jwt.decode(user_jwt(user, account, exp=int(now) - 1)).time_issues(now) == [
        "claim is expired"
    ]
    assert jwt.decode(user_jwt(user, account, nbf=int(now) + 60)).time_issues(now) == [
        "claim is not yet valid"
    ]
    assert jwt.decode(user_jwt(user, account, exp=int(now) + 60)).time_issues(now) == []


def test_revocations_cover_jwts_issued_until_then(keys):
    operator, account, user = keys
    acc = jwt.decode_account(account_jwt(account, operator, revocations={user.public: 1000}))
    assert acc.is_revoked(user.public, 999) and acc.is_revoked(user.public, 1000)
    assert not acc.is_revoked(user.public, 1001)
    assert not acc.is_revoked(KeyPair("user").public, 10)
    everyone = jwt.decode_account(account_jwt(account, operator, revocations={"*": 500}))
    assert everyone.is_revoked(KeyPair("user").public, 500)


def test_account_claim_issues(keys):
    operator, account, _ = keys
    other = KeyPair("account")
    token = encode({"sub": other.public, "nats": {"subject": "x.>", "kind": "stream",
                                                  "type": "activation", "version": 2}}, account)
    claims = jwt.decode_account(account_jwt(
        account, operator,
        limits={"imports": 1, "exports": 5, "wildcards": False},
        imports=[{"subject": "a.*", "account": other.public, "type": "service"},
                 {"subject": "a.b", "account": other.public, "type": "service"},
                 {"subject": "y", "account": other.public, "type": "stream", "token": token}],
        exports=[{"subject": "e.>", "type": "stream"}],
        signing_keys=["OBAD"],
    ))  # fmt: skip
    assert claims.issues() == [
        f'overlapping subject namespace for "a.b" and "a.*" in same account "{other.public}"',
        "activation token doesn't match account for import \"y\"",  # (issued by `account`)
        "activation token doesn't match account it is being included in, \"y\"",
        'activation token import subject "x.>" doesn\'t match import "y"',
        "the account contains more imports than allowed by the operator",
        "the account contains wildcard exports that are not allowed by the operator",
        '"OBAD" is not a valid account signing key',
    ]
    # (no `limits` at all: Go's zeros, so no import is allowed)
    bare = encode({"sub": account.public, "nats": {"type": "account", "version": 2, "imports": [
        {"subject": "a", "account": other.public, "type": "stream"}]}}, operator)
    assert jwt.decode_account(bare).issues() == [
        "the account contains more imports than allowed by the operator"
    ]


def test_user_claim_issues(keys):
    _, account, user = keys
    claims = jwt.decode_user(user_jwt(
        user, account, pub={"allow": ["a..b", "q x"]}, sub={"deny": ["a b c"]},
        src=["10.0.0.0/8", "nonsense"], times=[{"start": "25:00:00", "end": "10:00:00"}],
        issuer_account="not-a-key",
    ))  # fmt: skip
    assert claims.issues() == [
        'subject "a..b" cannot contain consecutive `.`',
        'Permission Subject "q x" is not allowed to contain queue',
        'Permission Subject "a b c" contains too many spaces',
        'invalid cidr "nonsense" in user src limits',
        'start in time range is invalid "25:00:00"',
        "account_id is not an account public key",
    ]
    assert jwt.decode_user(user_jwt(user, account, src="10.0.0.0/8,192.168.0.0/16")).nats[
        "src"
    ] == ["10.0.0.0/8", "192.168.0.0/16"]


def test_scope_templates_fill_in_the_user(keys):
    operator, account, _ = keys
    user = KeyPair("user")
    acc = jwt.decode_account(account_jwt(account, operator, name="ACC", tags=["team:red"]))
    usr = jwt.decode_user(user_jwt(user, account, name="bob", scoped=True,
                                   tags=["site:a", "site:b"]))  # fmt: skip
    template = {
        "pub": {"allow": ["in.{{name()}}.>", "s.{{tag(site)}}", "t.{{account-tag(team)}}"],
                "deny": ["x.{{subject()}}"]},
        "sub": {"allow": ["{{tag(missing)}}"]},
    }  # fmt: skip
    applied = jwt.apply_scope(template, usr, acc)
    assert applied["pub"]["allow"] == ["in.bob.>", "s.a", "s.b", "t.red"]
    assert applied["pub"]["deny"] == [f"x.{user.public}"]
    assert applied["sub"] == {"allow": [], "deny": [">"]}  # nothing left: deny all
    with pytest.raises(jwt.TemplateError):
        jwt.apply_scope({"pub": {"allow": ["{{nope()}}"]}}, usr, acc)


def test_decorated_files_and_creds():
    user, account = KeyPair("user"), KeyPair("account")
    token = user_jwt(user, account)
    assert jwt.parse_decorated(creds(token, user)) == token
    assert jwt.parse_decorated(token) == token


def test_nkeys_of_every_kind_round_trip():
    for kind, prefix in KeyPair.PREFIXES.items():
        key = KeyPair(kind)
        assert nkeys.is_public(key.public, prefix)
        assert nkeys.decode_any_public(key.public) is not None
        assert key.public[0] == kind[0].upper()
    assert nkeys.decode_any_public("A" * 55 + "B") is None  # a bad CRC


# --- hostile tokens: only JWTError comes out -----------------------------------------------

_OPERATOR = Operator()
_USER, _TOKEN = KeyPair("user"), None


def _valid_token() -> str:
    global _TOKEN
    if _TOKEN is None:
        _OPERATOR.add_account("F")
        _TOKEN = _OPERATOR.user("F")[1]
    return _TOKEN


def _decode_or_error(token: str) -> None:
    try:
        jwt.decode(token)
    except jwt.JWTError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_decoded_or_refused(text):
    _decode_or_error(text)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_tokens_are_decoded_or_refused(data):
    token = _valid_token()
    head, body, sig = token.split(".")
    claims = base64.urlsafe_b64decode(body + "===")
    position = data.draw(st.integers(0, len(claims)))
    insert = data.draw(st.binary(max_size=20))
    cut = data.draw(st.integers(0, 5))
    mutated = claims[:position] + insert + claims[position + cut:]
    _decode_or_error(f"{head}.{_b64(mutated)}.{sig}")
    chars = data.draw(st.lists(st.integers(0, len(token) - 1), max_size=4))
    text = list(token)
    for index in chars:
        text[index] = data.draw(st.sampled_from("AZaz09-_.={}"))
    _decode_or_error("".join(text))


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "version", "pub", "sub", "allow", "resp", "max", "ttl", "src",
                         "times", "signing_keys", "kind", "key", "template", "limits", "tags",
                         "revocations", "issuer_account", "imports", "exports", "token",
                         "account", "subject", "local_subject", "x"]), inner, max_size=5),
    max_leaves=20,
))  # fmt: skip
def test_signed_claims_of_any_shape_are_decoded_or_refused(nats):
    account = _OPERATOR.accounts["SYS"][0]
    for kind in ("user", "account", "operator"):
        body = {"sub": _USER.public, "nats": nats}
        if isinstance(nats, dict):
            body["nats"] = {**nats, "type": kind, "version": 2}
        try:
            claims = jwt.decode(encode(body, account if kind == "user" else _OPERATOR.key))
        except jwt.JWTError:
            continue
        if isinstance(claims, jwt.UserClaims):
            claims.issues()
            claims.has_empty_permissions()
        if isinstance(claims, jwt.AccountClaims):  # (preloaded, but checked all the same)
            claims.issues()


@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False))
def test_the_jwt_fuzzer_inputs_only_get_refusals(rng):
    """fuzz/jwt_tokens.py's inputs (the long run: `python -m fuzz.jwt_tokens`): the decoder
    raises JWTError and the login Refused, nothing else."""
    from fuzz.jwt_tokens import World, check, hostile_token

    global _FUZZ_WORLD
    if _FUZZ_WORLD is None:
        _FUZZ_WORLD = World()
    token, user = hostile_token(_FUZZ_WORLD, rng)
    check(_FUZZ_WORLD, token, user)


_FUZZ_WORLD = None
