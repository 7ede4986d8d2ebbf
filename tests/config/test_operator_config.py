"""Operator mode in the configuration (issue 14, item 4): `operator` (a JWT file, an inline
JWT, or a list), `resolver: MEMORY`, `resolver_preload`, `system_account` from the operator's
JWT; what nats-server refuses beside an operator, refused with the same words (and file:line),
and the resolvers trionats does not have yet refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import free_port, nats_server_binary
from tests.jwtkit import KeyPair, Operator, account_jwt, operator_jwt
from trionats.config.load import Problem, load
from trionats.errors import ConfigError


@pytest.fixture(scope="module")
def operator() -> Operator:
    operator = Operator()
    operator.add_account("A")
    return operator


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "op.conf"
    path.write_text(text)
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(path)
    return str(info.value).split("\n")


def test_operator_file_resolver_and_preloads_load(tmp_path, operator):
    (tmp_path / "op.jwt").write_text(
        f"-----BEGIN NATS OPERATOR JWT-----\n{operator.jwt}\n------END NATS OPERATOR JWT------\n"
    )
    options = load(_write(tmp_path, operator.conf(tmp_path / "op.jwt")))
    assert options.operators == (operator.jwt,)
    assert options.resolver == "MEMORY"
    assert dict(options.resolver_preload) == {
        key.public: token for key, token in operator.accounts.values()
    }
    assert options.system_account == operator.system.public


@pytest.mark.parametrize("resolver", ["MEM", "memory", "{ type: MEMORY }", "{ type: mem }"])
def test_inline_operator_and_memory_resolver_forms(tmp_path, operator, resolver):
    text = operator.conf().replace("resolver: MEMORY", f"resolver: {resolver}")
    text = text.replace(f"system_account: {operator.system.public}\n", "")
    options = load(_write(tmp_path, text))
    assert options.resolver == "MEMORY"
    # (no system_account in the file: the operator's)
    assert options.system_account == operator.system.public


@pytest.mark.parametrize("key", ["operators", "roots", "root", "root_operators", "root_operator"])
@pytest.mark.parametrize("resolver_key", ["account_resolver", "accounts_resolver"])
def test_aliases(tmp_path, operator, key, resolver_key):
    text = operator.conf().replace("operator:", f"{key}:").replace("resolver:", f"{resolver_key}:")
    options = load(_write(tmp_path, text))
    assert options.operators == (operator.jwt,) and options.resolver == "MEMORY"


def test_a_list_of_operators(tmp_path, operator):
    other = KeyPair("operator")
    text = operator.conf().replace(
        f'operator: "{operator.jwt}"', f'operators: ["{operator.jwt}", "{operator_jwt(other)}"]'
    )
    assert len(load(_write(tmp_path, text)).operators) == 2


@pytest.mark.parametrize(
    "resolver, kind",
    [
        ('URL("http://localhost:9090/jwt/v1/accounts/")', "URL"),
        ('{ type: full, dir: "./jwt" }', "FULL"),
        ('{ type: cache, dir: "./jwt", ttl: 2m }', "CACHE"),
    ],
)
def test_other_resolvers_are_refused_for_now(tmp_path, operator, resolver, kind):
    path = _write(tmp_path, operator.conf().replace("resolver: MEMORY", f"resolver: {resolver}"))
    assert _problems(path) == [
        f"{path}:3:1: resolver: the {kind} resolver is not supported by trionats yet: only the "
        "memory resolver (resolver: MEMORY with resolver_preload)"
    ]


# --- what nats-server refuses beside an operator: the same words ---------------------------


def _nats_server_refusal(path: Path) -> str:
    import subprocess

    run = subprocess.run(
        [nats_server_binary(), "-c", str(path), "-a", "127.0.0.1", "-p", str(free_port())],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert run.returncode != 0
    return run.stderr.strip().splitlines()[-1].removeprefix("nats-server: ")


@pytest.mark.parametrize(
    "extra, line, message",
    [
        ("accounts { X { users [{user: a, password: b}] } }", 8,
         "operators do not allow Accounts to be configured directly"),
        ("authorization { users [{user: a, password: b}] }", 8,
         "operators do not allow users to be configured directly"),
    ],
)  # fmt: skip
def test_accounts_and_users_beside_an_operator(tmp_path, operator, extra, line, message):
    path = _write(tmp_path, operator.conf(extra=extra))
    assert _problems(path) == [f"{path}:{line}:1: {message}"]
    assert _nats_server_refusal(path) == message


def test_a_system_account_other_than_the_operators(tmp_path, operator):
    other = KeyPair("account").public
    path = _write(tmp_path, operator.conf().replace(operator.system.public, other, 1))
    message = "system_account in config and operator JWT must be identical"
    assert f"{path}:2:1: {message}" in _problems(path)
    assert _nats_server_refusal(path) == message


def test_an_operator_needs_a_resolver(tmp_path, operator):
    path = _write(tmp_path, f'operator: "{operator.jwt}"\n')
    assert _problems(path) == [
        f"{path}:1:1: operators require an account resolver to be configured",
        # (nats-server's words too, for a system account the resolver does not have)
        "error resolving system account: account missing",
    ]


def test_unreadable_operator_and_bad_preloads(tmp_path, operator):
    account = KeyPair("account")
    forged = account_jwt(account, KeyPair("operator"))[:-4] + "AAAA"
    path = _write(tmp_path, (
        'operator: "/nonexistent/op.jwt"\nresolver: MEMORY\n'
        f"resolver_preload {{\n  {account.public}: {forged}\n}}\n"
    ))  # fmt: skip
    assert _problems(path) == [
        f"{path}:1:1: operator: error parsing operator JWT: open /nonexistent/op.jwt: "
        "No such file or directory",
        f"{path}:3:1: resolver_preload: invalid account JWT (for {account.public})",
    ]


def test_an_operator_that_is_not_an_operator_jwt(tmp_path, operator):
    account_token = operator.accounts["A"][1]
    path = _write(tmp_path, operator.conf().replace(operator.jwt, account_token, 1))
    assert _problems(path)[0] == (
        f"{path}:1:1: operator: error parsing operator JWT: not operator claim"
    )


def test_a_resolver_without_operator_is_a_warning(tmp_path):
    warnings: list[Problem] = []
    options = load(_write(tmp_path, "resolver: MEMORY\n"), warnings=warnings)
    assert options.operators == ()
    assert [str(w) for w in warnings] == [
        f"{tmp_path}/op.conf:1:1: resolver has no effect without an operator"
    ]


def test_a_reload_changing_operator_mode_is_refused_by_keys(tmp_path, operator):
    """Not reloadable yet; the refusal names keys, not whole JWTs."""
    import attrs

    from trionats.config.reload import diff

    old = load(_write(tmp_path, operator.conf()))
    account = KeyPair("account")
    token = account_jwt(account, operator.key)
    new = attrs.evolve(old, resolver_preload=(*old.resolver_preload, (account.public, token)))
    with pytest.raises(ConfigError) as raised:
        diff(old, new)
    keys = " ".join(key for key, _ in old.resolver_preload)
    assert str(raised.value) == (
        f"config reload not supported for ResolverPreloads: old=[{keys}], "
        f"new=[{keys} {account.public}]"
    )
    with pytest.raises(ConfigError, match=rf"TrustedOperators: old=\[{operator.key.public}\], new=\[\]"):
        diff(old, attrs.evolve(old, operators=()))
