"""The configuration loader end to end: conf/JSON/TOML files -> Options, every problem with
file:line:col, `-t`, flags over the file, serving from a file, and agreement with nats-server."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import RawClient, _Process, free_port, nats_server_binary
from trionats import cli
from trionats.config import load as loader
from trionats.config.load import Problem, load, options_from_conf
from trionats.config.natsconf import parse
from trionats.errors import ConfigError
from trionats.options import (
    Authorization,
    ClusterOptions,
    ClusterPermissions,
    Options,
    Permissions,
    ResponsePermission,
    RouteAuthorization,
    SubjectPermission,
    TLSOptions,
    User,
    WebsocketOptions,
)

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 10.0
DEFAULTS = Options()


def write(tmp_path: Path, text: str, name: str = "node.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, name: str = "node.conf") -> Options:
    return load(write(tmp_path, text, name))


def problems(tmp_path: Path, text: str, name: str = "node.conf") -> list[str]:
    """The loader's error lines for `text` (it must fail)."""
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        load(path)
    return str(info.value).split("\n")


def convert(text: str, filename: str = "node.conf") -> Options:
    """Parse and convert with nothing refused as "not supported yet" (to see what the loader
    builds for options that trionats does not act on yet). Run under `no_refusals`."""
    return options_from_conf(parse(text, filename=filename))


@pytest.fixture
def no_refusals(monkeypatch):
    monkeypatch.setattr(loader, "NOT_YET", frozenset())
    monkeypatch.setattr(loader, "NOT_YET_IN", {})
    # The example tls blocks name files that do not exist: do not load them (tests/auth/test_tls.py
    # checks that real ones are).
    monkeypatch.setattr(loader, "_check_tls", lambda *args: None)


def changed(options: Options) -> dict:
    """The fields that differ from the defaults (config_file aside)."""
    return {
        field.name: value
        for field in attrs.fields(Options)
        if field.name != "config_file"
        and (value := getattr(options, field.name)) != getattr(DEFAULTS, field.name)
    }


# --- every top-level option, alias and unit ----------------------------------------------------

#: (conf text, the Options fields it sets). Options that trionats does not act on yet are
#: refused by the real loader (see test_not_yet_options_are_refused); here their values are
#: checked with the refusal switched off.
OPTION_CASES = [
    # listening and identity
    ("listen: 127.0.0.1:4333", {"host": "127.0.0.1", "port": 4333}),
    ("listen: 4333", {"port": 4333}),
    ('listen: "[::1]:4333"', {"host": "::1", "port": 4333}),
    ('listen: ":4333"', {"port": 4333}),  # empty host = all interfaces, as nats-server
    ("listen: 127.0.0.1:-1", {"host": "127.0.0.1", "port": -1}),
    ("host: 127.0.0.1", {"host": "127.0.0.1"}),
    ("net: 10.1.2.3", {"host": "10.1.2.3"}),
    ("port: 4333", {"port": 4333}),
    ("port = 4333", {"port": 4333}),
    ("port 4333", {"port": 4333}),
    ("PORT: 4333", {"port": 4333}),  # keys are case-insensitive
    ("port: -1", {"port": -1}),
    ("port: 1; port: 4333", {"port": 4333}),  # the last one wins
    ("server_name: node-a", {"server_name": "node-a"}),
    ('server_name: "node-b"', {"server_name": "node-b"}),
    ("client_advertise: example.com:4222", {"client_advertise": "example.com:4222"}),
    ("server_tags: [az:1, rack:2]", {"server_tags": ("az:1", "rack:2")}),
    ("server_tags: single", {"server_tags": ("single",)}),
    # sizes
    ("max_payload: 2MB", {"max_payload": 2 * 1024 * 1024}),
    ("max_payload: 1Gi", {"max_payload": 1024**3}),
    ("max_payload: 1k", {"max_payload": 1000}),
    ("max_payload: 64KB", {"max_payload": 65536}),
    ("max_payload: 2MiB", {"max_payload": 2 * 1024**2}),
    ("max_payload: 1m", {"max_payload": 1_000_000}),
    ("max_payload: 12345", {"max_payload": 12345}),
    ("Max_Payload = 1kb", {"max_payload": 1024}),
    ("max_control_line: 8KB", {"max_control_line": 8192}),
    ("max_control_line: 1k", {"max_control_line": 1000}),
    ("max_pending: 1Gi", {"max_pending": 1024**3}),
    ("max_pending: 100MB", {"max_pending": 100 * 1024**2}),
    ("max_connections: 100", {"max_connections": 100}),
    ("max_conn: 100", {"max_connections": 100}),
    ("max_connections: 0", {"max_connections": 0}),  # refuses every client, as nats-server
    ("max_subscriptions: 10", {"max_subscriptions": 10}),
    ("max_subs: 10", {"max_subscriptions": 10}),
    ("max_sub_tokens: 16", {"max_sub_tokens": 16}),
    ("max_subscription_tokens: 255", {"max_sub_tokens": 255}),
    # durations (plain integers are seconds, with nats-server's warning)
    ('write_deadline: "30s"', {"write_deadline": 30.0}),
    ('write_deadline: "1h30m"', {"write_deadline": 5400.0}),
    ('write_deadline: "500ms"', {"write_deadline": 0.5}),
    ('write_deadline: "1.5s"', {"write_deadline": 1.5}),
    ("write_deadline: 5", {"write_deadline": 5.0}),
    ('ping_interval: "30s"', {"ping_interval": 30.0}),
    ('ping_interval: "1h30m"', {"ping_interval": 5400.0}),
    ('ping_interval: "500ms"', {"ping_interval": 0.5}),
    ("ping_interval: 30", {"ping_interval": 30.0}),
    ("ping_max: 5", {"ping_max": 5}),
    ("write_timeout: close", {"write_timeout": "close"}),
    ('lame_duck_duration: "1m"', {"lame_duck_duration": 60.0}),
    ('lame_duck_grace_period: "5s"', {"lame_duck_grace_period": 5.0}),
    ('lame_duck_grace_period: "0s"', {}),  # 0 means the default (10s), as in nats-server
    ("max_closed_clients: 100", {"max_closed_clients": 100}),
    ("connect_error_reports: 10", {"connect_error_reports": 10}),
    ("reconnect_error_reports: 5", {"reconnect_error_reports": 5}),
    # booleans
    ("no_header_support: true", {"no_header_support": True}),
    ("disable_sublist_cache: yes", {"disable_sublist_cache": True}),
    ("no_sublist_cache: on", {"disable_sublist_cache": True}),
    ("no_fast_producer_stall: true", {"no_fast_producer_stall": True}),
    ("debug: true", {"debug": True}),
    ("debug: yes", {"debug": True}),
    ("debug: on", {"debug": True}),
    ("debug: TRUE", {"debug": True}),
    ("debug: Yes", {"debug": True}),
    ("debug: false", {}),
    ("debug: no", {}),
    ("debug: off", {}),
    ("trace: on", {"trace": True}),
    ("trace_verbose: true", {"trace": True, "trace_verbose": True}),  # implies trace
    ("logtime: off", {"logtime": False}),
    ("logtime: no", {"logtime": False}),
    ("logtime_utc: true", {"logtime_utc": True}),
    # logging and files
    ("log_file: /tmp/n.log", {"log_file": "/tmp/n.log"}),
    ('logfile: "/tmp/n.log"', {"log_file": "/tmp/n.log"}),
    ("log_format: json", {"log_format": "json"}),
    ("log_format: text", {}),
    ("log_size_limit: 1MB", {"log_size_limit": 1024**2}),
    ("logfile_size_limit: 1000", {"log_size_limit": 1000}),
    ("log_max_num: 3", {"log_max_num": 3}),
    ("logfile_max_num: 3", {"log_max_num": 3}),
    ("max_traced_msg_len: 128", {"max_traced_msg_len": 128}),
    ("syslog: true", {"syslog": True}),
    ('remote_syslog: "udp://127.0.0.1:514"', {"remote_syslog": "udp://127.0.0.1:514"}),
    ("pid_file: /tmp/n.pid", {"pid_file": "/tmp/n.pid"}),
    ("pidfile: /tmp/n.pid", {"pid_file": "/tmp/n.pid"}),
    ("ports_file_dir: /tmp", {"ports_file_dir": "/tmp"}),
    # monitoring
    ("http: 8222", {"http_port": 8222}),
    ("http: 127.0.0.1:8222", {"http_host": "127.0.0.1", "http_port": 8222}),
    ("http_port: 8222", {"http_port": 8222}),
    ("monitor_port: 8222", {"http_port": 8222}),
    ("https: 127.0.0.1:8443", {"http_host": "127.0.0.1", "https_port": 8443}),
    ("https_port: 8443", {"https_port": 8443}),
    ("http_base_path: /nats", {"http_base_path": "/nats"}),
    # security and accounts (blocks: see the block tests below)
    ("no_auth_user: alice", {"no_auth_user": "alice"}),
    ("allow_non_tls: true", {"allow_non_tls": True}),
    ("system_account: SYS", {"system_account": "SYS"}),
    ("system: SYS", {"system_account": "SYS"}),
    ("no_system_account: true", {"no_system_account": True}),
    # JetStream (the block's keys: tests/jetstream/test_config.py)
    ("store_dir: /data", {"store_dir": "/data"}),
    ("storedir: /data", {"store_dir": "/data"}),
    ("no_system: true", {"no_system_account": True}),
    ("no_sys_acc: true", {"no_system_account": True}),
]

#: Block keys, covered by the block tests below.
BLOCK_KEYS = {"authorization", "tls", "cluster", "websocket", "ws", "accounts", "jetstream"}
#: Operator mode's keys (and aliases): tests/config/test_operator_config.py.
BLOCK_KEYS |= {"operator", "operators", "roots", "root", "root_operators", "root_operator",
               "resolver", "account_resolver", "accounts_resolver", "resolver_preload"}
#: (leafnodes, leaf: tests/leaf/test_leaf_config.py)
BLOCK_KEYS |= {"leafnodes", "leaf"}


def key_of(text: str) -> str:
    return re.split(r"[\s:=]", text, maxsplit=1)[0].lower()


def test_option_cases_cover_every_key_the_loader_knows():
    assert set(loader.OPTIONS.fields) - BLOCK_KEYS == {key_of(text) for text, _ in OPTION_CASES}


@pytest.mark.parametrize(("text", "fields"), OPTION_CASES, ids=[t for t, _ in OPTION_CASES])
def test_option_maps_to_field(text, fields, no_refusals):
    assert changed(convert(text)) == fields


SUPPORTED_CASES = [
    (text, fields)
    for text, fields in OPTION_CASES
    if key_of(text) not in loader.NOT_YET
]


@pytest.mark.parametrize(("text", "fields"), SUPPORTED_CASES, ids=[t for t, _ in SUPPORTED_CASES])
def test_supported_option_loads_from_a_file(tmp_path, text, fields):
    options = load_text(tmp_path, text + "\n")
    assert changed(options) == fields
    assert options.config_file == str(tmp_path / "node.conf")


def test_every_option_is_acted_on_or_named_as_out_of_scope():
    # Nothing is parsed and then ignored: every key trionats knows is acted on, refused as out
    # of scope, or (an option naming an account) refused with its reason.
    assert not loader.NOT_YET and not loader.NOT_YET_IN


def test_a_key_listed_as_not_yet_is_refused(tmp_path, monkeypatch):
    """The refusal itself, whichever keys (maybe none) are still listed."""
    monkeypatch.setattr(loader, "NOT_YET", {"max_sub_tokens"})
    assert problems(tmp_path, "port: 4333\nmax_sub_tokens: 4\n") == [
        f'{tmp_path}/node.conf:2:1: "max_sub_tokens" is not supported by trionats yet'
    ]


@pytest.mark.parametrize(
    "key", ["gateway", "mqtt", "trusted_keys",
            "resolver_tls", "mappings", "prof_port", "trace_headers", "server_metadata"],
)  # fmt: skip
def test_out_of_scope_options_are_named(tmp_path, key):
    text = f"{key}: 1\n"
    assert problems(tmp_path, text) == [
        f'{tmp_path}/node.conf:1:1: "{key}" is not supported by trionats'
    ]


def test_cluster_accounts_are_checked_as_nats_server(tmp_path):
    assert load(write(tmp_path, "cluster { port: 6222, accounts: [A, B] }\n")).cluster.accounts == (
        "A", "B")
    for text, error in [
        ("pool_size: -1, accounts: [A]", "pool_size cannot be negative if pinned accounts are "
                                         "specified"),
        ("accounts: [A, B, A]", 'found duplicate account name "A" in pinned accounts list '
                                '["A" "B" "A"]'),
    ]:  # fmt: skip
        with pytest.raises(ConfigError, match=re.escape(error)):
            load(write(tmp_path, f"cluster {{ port: 6222, {text} }}\n")).check()


def test_integer_durations_are_accepted_with_nats_servers_warning(tmp_path):
    path = write(tmp_path, "ping_interval: 30\nwrite_deadline: 5\n")
    warnings: list[Problem] = []
    options = load(path, warnings=warnings)
    assert (options.ping_interval, options.write_deadline) == (30.0, 5.0)
    assert [str(w) for w in warnings] == [
        f'{path}:1:1: invalid use of field "ping_interval": '
        "ping_interval should be converted to a duration",
        f'{path}:2:1: invalid use of field "write_deadline": '
        "write_deadline should be converted to a duration",
    ]
    quiet: list[Problem] = []
    load(write(tmp_path, 'ping_interval: "30s"\n', "b.conf"), warnings=quiet)
    assert quiet == []


def test_empty_file_is_valid_with_a_warning(tmp_path):
    path = write(tmp_path, "# nothing here\n")
    warnings: list[Problem] = []
    assert load(path, warnings=warnings) == attrs.evolve(DEFAULTS, config_file=str(path))
    assert [str(w) for w in warnings] == [f"{path}: config has no values or is empty"]


# --- nested blocks parse into the attrs classes ------------------------------------------------

AUTHORIZATION_CONF = """
authorization {
  timeout: "1.5s"
  default_permissions: { publish: "public.>", subscribe: ["public.>", "_INBOX.>"] }
  users: [
    { user: alice, password: "s3cret"
      permissions: {
        publish: { allow: ["orders.>"], deny: "orders.secret" }
        subscribe: "_INBOX.>"
        allow_responses: { max: 5, expires: "1m" }
      }
    }
    { username: bob, pass: "$2a$11$O5xNYoTRGKP/BUa64IZXfOmnISkCEjLeh9NNRbP8PI0o./eaCtFlq"
      allowed_connection_types: [STANDARD, websocket]
      permission: { pub: "a", sub: "b", allow_responses: true }
    }
    { nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4 }
  ]
}
"""

AUTHORIZATION = Authorization(
    timeout=1.5,
    default_permissions=Permissions(
        publish=SubjectPermission(allow=("public.>",)),
        subscribe=SubjectPermission(allow=("public.>", "_INBOX.>")),
    ),
    users=(
        User(
            user="alice",
            password="s3cret",
            permissions=Permissions(
                publish=SubjectPermission(allow=("orders.>",), deny=("orders.secret",)),
                subscribe=SubjectPermission(allow=("_INBOX.>",)),
                allow_responses=ResponsePermission(max_msgs=5, expires=60.0),
            ),
        ),
        User(
            user="bob",
            password="$2a$11$O5xNYoTRGKP/BUa64IZXfOmnISkCEjLeh9NNRbP8PI0o./eaCtFlq",
            allowed_connection_types=("STANDARD", "WEBSOCKET"),
            permissions=Permissions(
                publish=SubjectPermission(allow=("a",)),
                subscribe=SubjectPermission(allow=("b",)),
                allow_responses=ResponsePermission(),
            ),
        ),
        User(nkey="UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"),
    ),
)

TLS_CONF = """
tls {
  cert_file: "/etc/nats/cert.pem"
  key_file: "/etc/nats/key.pem"
  ca_file: "/etc/nats/ca.pem"
  verify: true
  timeout: 3
  min_version: "1.3"
  handshake_first: auto
  cipher_suites: [TLS_AES_128_GCM_SHA256]
}
"""

TLS = TLSOptions(
    cert_file="/etc/nats/cert.pem",
    key_file="/etc/nats/key.pem",
    ca_file="/etc/nats/ca.pem",
    verify=True,
    timeout=3.0,
    min_version="1.3",
    handshake_first=0.05,
    cipher_suites=("TLS_AES_128_GCM_SHA256",),
)

CLUSTER_CONF = """
cluster {
  name: C1
  listen: 127.0.0.1:6222
  advertise: "10.0.0.1:6222"
  routes: [
    nats-route://route:pw@127.0.0.1:6223
    "nats-route://127.0.0.1:6224"
  ]
  authorization { user: route, password: pw, timeout: 2 }
  permissions { import: "a.>", export: { allow: ["b.>"], deny: "b.secret" } }
  tls { cert_file: c.pem, key_file: k.pem }
  pool_size: -1
  compression: s2_fast
  connect_retries: 3
  no_advertise: true
  ping_interval: "10s"
}
"""

CLUSTER = ClusterOptions(
    name="C1",
    host="127.0.0.1",
    port=6222,
    advertise="10.0.0.1:6222",
    routes=("nats-route://route:pw@127.0.0.1:6223", "nats-route://127.0.0.1:6224"),
    authorization=RouteAuthorization(user="route", password="pw", timeout=2.0),
    permissions=ClusterPermissions(
        import_=SubjectPermission(allow=("a.>",)),
        export=SubjectPermission(allow=("b.>",), deny=("b.secret",)),
    ),
    tls=TLSOptions(cert_file="c.pem", key_file="k.pem"),
    pool_size=-1,
    compression="s2_fast",
    connect_retries=3,
    no_advertise=True,
    ping_interval=10.0,
)

WEBSOCKET_CONF = """
websocket {
  listen: "127.0.0.1:8080"
  no_tls: true
  same_origin: true
  allowed_origins: ["https://a.example", "https://b.example"]
  compression: true
  handshake_timeout: "5s"
  authorization { token: "t0k" }
  jwt_cookie: jwt
}
"""

WEBSOCKET = WebsocketOptions(
    host="127.0.0.1",
    port=8080,
    no_tls=True,
    same_origin=True,
    allowed_origins=("https://a.example", "https://b.example"),
    compression=True,
    handshake_timeout=5.0,
    authorization=Authorization(token="t0k"),
    jwt_cookie="jwt",
)

BLOCKS = [
    pytest.param(AUTHORIZATION_CONF, "authorization", AUTHORIZATION, id="authorization"),
    pytest.param(TLS_CONF, "tls", TLS, id="tls"),
    pytest.param(CLUSTER_CONF, "cluster", CLUSTER, id="cluster"),
    pytest.param(WEBSOCKET_CONF, "websocket", WEBSOCKET, id="websocket"),
    pytest.param(WEBSOCKET_CONF.replace("websocket {", "ws {"), "websocket", WEBSOCKET, id="ws"),
]


@pytest.mark.parametrize(("text", "field", "expected"), BLOCKS)
def test_block_parses_into_attrs_classes(text, field, expected, no_refusals):
    assert changed(convert(text)) == {field: expected}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cluster { compression: true }", "s2_fast"),
        ("cluster { compression: false }", "off"),
        ("cluster { compression: { mode: s2_best, rtt_thresholds: [] } }", "s2_best"),
        ("cluster { compression: ACCEPT }", "accept"),
    ],
)
def test_cluster_compression_forms(text, expected, no_refusals):
    assert convert(text).cluster.compression == expected


def test_errors_inside_blocks_are_all_reported(tmp_path):
    text = (
        "cluster {\n"  # 1
        "  name: C1\n"  # 2
        "  bogus: 1\n"  # 3
        "  tls { verify: maybe, colour: blue }\n"  # 4
        "  authorization { user: r, token: t }\n"  # 5
        "}\n"
        "authorization {\n"  # 7
        "  users: [ { user: a, password: x, permissions: { publish: { allow: a, never: b } } } ]\n"
        "}\n"
        "websocket { port: eight }\n"  # 10
    )
    f = f"{tmp_path}/node.conf"
    assert problems(tmp_path, text) == [
        f'{f}:3:3: unknown field "bogus" in cluster',
        f"{f}:4:9: verify: expected a boolean, got a string",
        f'{f}:4:24: unknown field "colour" in tls',
        f'{f}:5:28: unknown field "token" in authorization',
        # the permission map's problem is placed at its key
        f'{f}:8:51: publish: unknown field "never" in a permission (allow, deny)',
        f"{f}:10:13: port: expected an integer, got a string",
    ]


# --- every problem at once, sorted, with file:line:col -----------------------------------------


def test_all_problems_reported_together_sorted_by_position(tmp_path):
    text = (
        "port: 4333\n"  # 1
        'debug: "true"\n'  # 2
        "max_payload: 3GB\n"  # 3
        "colour: blue\n"  # 4
        "cluster { name: C1, nope: 1 }\n"  # 5
        'server_name: "my server"\n'  # 6
        "  ping_interval: soon\n"  # 7
        "jetstream: maybe\n"  # 8
        "listen: localhost\n"  # 9
        "UNUSED = 1\n"  # 10
    )
    f = f"{tmp_path}/node.conf"
    assert problems(tmp_path, text) == [
        f"{f}:2:1: debug: expected a boolean, got a string",
        f"{f}:3:1: max_payload: value is too big",
        f'{f}:4:1: unknown field "colour"',
        f'{f}:5:21: unknown field "nope" in cluster',
        f"{f}:6:1: server name cannot contain spaces",
        f"{f}:7:3: ping_interval: invalid duration 'soon'",
        f"{f}:8:1: jetstream: Expected 'enabled' or 'disabled' for string value, got 'maybe'",
        f'{f}:9:1: listen: could not parse address string "localhost"',
        f'{f}:10:1: unknown field "UNUSED"',
    ]


def test_a_refused_block_hides_no_other_problem(tmp_path):
    """Refused blocks, a bad value, an unknown key, and the rules between keys that only the
    loaded options can tell (Options.check): all in one report."""
    text = (
        "jetstream { store_dir: /tmp/js, max_mem: 1G, cipher: aes }\n"  # 1
        "max_payload: 100MB\n"  # 2: over max_pending
        "colour: blue\n"  # 3
        "leafnodes { port: 7422, isolate: true }\n"  # 4
        "ping_interval: soon\n"  # 5
        "websocket { port: 8080 }\n"  # 6: without TLS
        "http_port: 8222\n"  # 7
        "https_port: 8223\n"  # 8
        "accounts { A: { jetstream: sometimes } }\n"  # 9
        'server_name: "a b"\n'  # 10: its rule is reported once, at its line
    )
    f = f"{tmp_path}/node.conf"
    assert problems(tmp_path, text) == [
        f'{f}:1:46: "jetstream.cipher" is not supported by trionats yet',
        f'{f}:3:1: unknown field "colour"',
        f"{f}:4:25: isolate: not supported by trionats yet (interest isolation)",
        f"{f}:5:1: ping_interval: invalid duration 'soon'",
        f"{f}:9:17: jetstream: Expected 'enabled' or 'disabled' for string value, got 'sometimes'",
        f"{f}:10:1: server name cannot contain spaces",
        "can't specify both HTTP (8222) and HTTPs (8223) ports",
        "max_payload (104857600) cannot be higher than max_pending (67108864)",
        "websocket requires TLS configuration",
    ]
    checked = subprocess.run([sys.executable, "-m", "trionats", "-c", f, "-t"],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    assert checked.returncode == 1
    assert checked.stderr.splitlines()[-1] == "websocket requires TLS configuration"


def test_every_problem_line_names_file_line_column(tmp_path):
    text = "a: 1\nb: 2\ncluster { c: 3 }\nport: x\n"
    for line in problems(tmp_path, text):
        assert re.fullmatch(re.escape(str(tmp_path)) + r"/node\.conf:\d+:\d+: \S.*", line), line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus: 1", 'unknown field "bogus"'),
        ("Bogus_Key = yes", 'unknown field "Bogus_Key"'),
        ('"quoted key": 1', 'unknown field "quoted key"'),
        ("portt: 4222", 'unknown field "portt"'),
    ],
)
def test_unknown_top_level_field(tmp_path, text, message):
    assert problems(tmp_path, text) == [f"{tmp_path}/node.conf:1:1: {message}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("authorization { bogus: 1 }", '1:17: unknown field "bogus" in authorization'),
        ("authorization { users: [ { user: a, bogus: 1 } ] }",
         '1:37: unknown field "bogus" in users'),
        ("authorization { users: [ { user: a, permissions: { bogus: 1 } } ] }",
         '1:52: unknown field "bogus" in permissions'),
        ("tls { bogus: 1 }", '1:7: unknown field "bogus" in tls'),
        ("cluster { tls { bogus: 1 } }", '1:17: unknown field "bogus" in tls'),
        ("cluster { authorization { bogus: 1 } }", '1:27: unknown field "bogus" in authorization'),
        ("cluster { permissions { publish: a } }", '1:25: unknown field "publish" in permissions'),
        ("websocket { bogus: 1 }", '1:13: unknown field "bogus" in websocket'),
    ],
)  # fmt: skip
def test_unknown_field_in_a_block(tmp_path, text, message):
    key = text.split()[0]
    f = f"{tmp_path}/node.conf"
    refused = [f'{f}:1:1: "{key}" is not supported by trionats yet'] if key in loader.NOT_YET else []
    inner = text.split()[2]
    if inner in loader.NOT_YET_IN.get(key, ()):
        refused.append(f'{f}:1:11: "{key}.{inner}" is not supported by trionats yet')
    assert problems(tmp_path, text) == [*refused, f"{f}:{message}"]


# --- variables ---------------------------------------------------------------------------------


def test_referenced_variable_is_not_an_unknown_field(tmp_path):
    text = "PORT_VAR = 4333\nSIZE = 64KB\nport: $PORT_VAR\nmax_payload: $SIZE\n"
    options = load_text(tmp_path, text)
    assert (options.port, options.max_payload) == (4333, 65536)


def test_unreferenced_variable_is_an_unknown_field(tmp_path):
    text = "PORT_VAR = 4333\nUNUSED = 1\nport: $PORT_VAR\n"
    assert problems(tmp_path, text) == [f'{tmp_path}/node.conf:2:1: unknown field "UNUSED"']


def test_variables_inside_blocks(tmp_path):
    # Referenced in the block: fine; defined in the block and unused: unknown there.
    text = "cluster {\n  P = 6222\n  port: $P\n  Q = 1\n}\n"
    assert problems(tmp_path, text) == [
        f'{tmp_path}/node.conf:4:3: unknown field "Q" in cluster',
    ]


def test_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TRIONATS_TEST_PORT", "4333")
    monkeypatch.setenv("TRIONATS_TEST_DEBUG", "yes")
    options = load_text(tmp_path, "port: $TRIONATS_TEST_PORT\ndebug: $TRIONATS_TEST_DEBUG\n")
    assert (options.port, options.debug) == (4333, True)


def test_missing_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("TRIONATS_NO_SUCH_VAR", raising=False)
    assert problems(tmp_path, "port: 4333\nmax_payload: $TRIONATS_NO_SUCH_VAR\n") == [
        f"{tmp_path}/node.conf:2:14: variable reference for 'TRIONATS_NO_SUCH_VAR' on line 2 "
        "can not be found"
    ]


# --- wrong types and bad values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('debug: "true"', "debug: expected a boolean, got a string"),  # quoted: a string
        ("debug: 1", "debug: expected a boolean, got a number"),
        ('port: "4222"', "port: expected an integer, got a string"),
        ("port: 4222.5", "port: expected an integer, got a number"),
        ('max_payload: "2MB"', "max_payload: expected an integer, got a string"),
        ("max_payload: 3GB", "max_payload: value is too big"),
        ("max_control_line: 4Gi", "max_control_line: value is too big"),
        ("server_name: 12", "server_name: expected a string, got a number"),
        ("server_name: [a]", "server_name: expected a string, got a list"),
        ("listen: localhost", 'listen: could not parse address string "localhost"'),
        ("listen: 127.0.0.1", 'listen: could not parse address string "127.0.0.1"'),
        ('listen: "::1:4222"', 'listen: could not parse address string "::1:4222"'),
        ("listen: localhost:http", 'listen: could not parse port "http"'),
        ("listen: true", "listen: expected port or host:port, got a boolean"),
        ("ping_interval: 1.5", "ping_interval: expected a duration, got a number"),
        ('ping_interval: "10 s"', "ping_interval: invalid duration '10 s'"),
        ('write_deadline: "1d"', "write_deadline: invalid duration '1d'"),
        ("write_deadline: yes", "write_deadline: expected a duration, got a boolean"),
        ("ping_max: two", "ping_max: expected an integer, got a string"),
        ("log_file: 1", "log_file: expected a string, got a number"),
    ],
)
def test_wrong_type(tmp_path, text, message):
    assert problems(tmp_path, text + "\n") == [f"{tmp_path}/node.conf:1:1: {message}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_sub_tokens: 0", "max_sub_tokens: value can not be negative"),
        ("max_sub_tokens: 256", "max_sub_tokens: value is too big"),
        ("write_timeout: CLOSE", "write_timeout: must be 'default', 'close' or 'retry'"),
        ('lame_duck_duration: "10s"', "lame_duck_duration: invalid lame_duck_duration of 10s, "
                                      "minimum is 30 seconds"),
        ("lame_duck_duration: 60", 'lame_duck_duration: expected a duration string like "30s", '
                                   "got a number"),
        ('lame_duck_grace_period: "-1s"', "lame_duck_grace_period: invalid lame_duck_grace_period, "
                                          "needs to be positive"),
        ("https: localhost", 'https: could not parse address string "localhost"'),
    ],
)  # fmt: skip
def test_bad_value_of_a_refused_option_is_reported_too(tmp_path, text, message):
    key = text.split(":")[0]
    refused = [f'{tmp_path}/node.conf:1:1: "{key}" is not supported by trionats yet']
    assert problems(tmp_path, text + "\n") == [
        f"{tmp_path}/node.conf:1:1: {message}",
        *(refused if key in loader.NOT_YET else []),
    ]


# --- cross-field rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ("authorization { user: a, password: b, token: t }",
         ["1:1: Cannot have a user/pass and token"]),
        ("authorization { user: a, password: b, users: [ { user: c } ] }",
         ["1:1: Can not have a single user/pass and a users array"]),
        ("authorization { token: t, users: [ { user: c } ] }",
         ["1:1: Can not have a token and a users array"]),
        ("authorization { users: [ { user: a, password: x }, { user: a, password: y } ] }",
         ['1:1: Duplicate user "a" detected']),
        ("authorization { users: [ { nkey: UABC }, { nkey: UABC } ] }",
         ['1:1: Duplicate nkey "UABC" detected']),
        ("authorization { users: [ { password: a }, { password: b } ] }",
         ["1:26: User entry requires a user", "1:43: User entry requires a user"]),
        ("authorization { users: [ { nkey: UABC, user: a } ] }",
         ["1:26: Nkey users do not take usernames or passwords"]),
        ('cluster { name: "my cluster" }', ["1:1: cluster name cannot contain spaces"]),
    ],
)  # fmt: skip
def test_cross_field_rules(tmp_path, text, messages):
    key = text.split()[0]
    f = f"{tmp_path}/node.conf"
    refused = [f'{f}:1:1: "{key}" is not supported by trionats yet'] if key in loader.NOT_YET else []
    # Sorted by position; at the same position, the rule comes before the refusal.
    at_key = [f"{f}:{m}" for m in messages if m.startswith("1:1:")]
    inside = [f"{f}:{m}" for m in messages if not m.startswith("1:1:")]
    assert problems(tmp_path, text) == [*at_key, *refused, *inside]


def test_server_name_with_spaces(tmp_path):
    assert problems(tmp_path, "port: 4333\nserver_name: 'a b'\n") == [
        f"{tmp_path}/node.conf:2:1: server name cannot contain spaces"
    ]


# --- JSON, includes, TOML ----------------------------------------------------------------------


def test_json_config_file(tmp_path):
    document = {
        "listen": "127.0.0.1:4333",
        "server_name": "json-node",
        "max_payload": 65536,
        "max_pending": 1048576,
        "ping_interval": "30s",
        "write_deadline": "2s",
        "debug": True,
        "logtime": False,
    }
    options = load_text(tmp_path, json.dumps(document, indent=2), "node.json")
    assert changed(options) == {
        "host": "127.0.0.1",
        "port": 4333,
        "server_name": "json-node",
        "max_payload": 65536,
        "max_pending": 1048576,
        "ping_interval": 30.0,
        "write_deadline": 2.0,
        "debug": True,
        "logtime": False,
    }


def test_json_config_file_errors_have_positions(tmp_path):
    text = '{\n  "port": 4333,\n  "debug": "yes",\n  "colour": "blue"\n}\n'
    f = f"{tmp_path}/node.json"
    assert problems(tmp_path, text, "node.json") == [
        f"{f}:3:3: debug: expected a boolean, got a string",
        f'{f}:4:3: unknown field "colour"',
    ]


def test_include_files(tmp_path):
    (tmp_path / "conf.d").mkdir()
    write(tmp_path, "max_payload: 64KB\nmax_pending: 1MB\n", "conf.d/limits.conf")
    write(tmp_path, "debug: true\n", "conf.d/logging.conf")
    path = write(
        tmp_path,
        "port: 4333\ninclude ./conf.d/limits.conf\ninclude 'conf.d/logging.conf'\ndebug: false\n",
    )
    options = load(path)
    # included keys are merged in place: the later `debug: false` wins
    assert changed(options) == {"port": 4333, "max_payload": 65536, "max_pending": 1024**2}


def test_include_inside_a_block(tmp_path, no_refusals):
    write(tmp_path, "user: alice\npassword: s3cret\n", "auth.conf")
    path = write(tmp_path, "authorization {\n  include auth.conf\n  timeout: 3\n}\n")
    options = options_from_conf(loader.parse_file(path))
    assert options.authorization == Authorization(user="alice", password="s3cret", timeout=3.0)


def test_errors_in_an_included_file_name_that_file(tmp_path):
    write(tmp_path, "max_payload: 64KB\nbogus: 1\nmax_pending: lots\n", "limits.conf")
    text = "port: 4333\ninclude limits.conf\ncolour: red\n"
    assert problems(tmp_path, text) == [
        f'{tmp_path}/limits.conf:2:1: unknown field "bogus"',
        f"{tmp_path}/limits.conf:3:1: max_pending: expected an integer, got a string",
        f'{tmp_path}/node.conf:3:1: unknown field "colour"',
    ]


def test_missing_include_file(tmp_path):
    lines = problems(tmp_path, "port: 4333\ninclude nothere.conf\n")
    assert len(lines) == 1
    assert lines[0].startswith(f"{tmp_path}/node.conf:2:"), lines


NODE_CONF = """\
listen: 127.0.0.1:4333
server_name: toml-twin
max_payload: 2MB
max_control_line: 1k
max_pending: 1Gi
max_connections: 100
max_subscriptions: 10
write_deadline: "500ms"
ping_interval: "1h30m"
ping_max: 3
debug: true
trace: false
logtime: off
logtime_utc: yes
log_file: "/tmp/twin.log"
pid_file: "/tmp/twin.pid"
ports_file_dir: "/tmp"
no_header_support: true
"""

NODE_TOML = """\
listen = "127.0.0.1:4333"
server_name = "toml-twin"
max_payload = "2MB"
max_control_line = "1k"
max_pending = "1Gi"
max_connections = 100
max_subscriptions = 10
write_deadline = "500ms"
ping_interval = "1h30m"
ping_max = 3
debug = true
trace = false
logtime = false
logtime_utc = true
log_file = "/tmp/twin.log"
pid_file = "/tmp/twin.pid"
ports_file_dir = "/tmp"
no_header_support = true
"""


def same_options(a: Options, b: Options) -> bool:
    return attrs.evolve(a, config_file="") == attrs.evolve(b, config_file="")


def test_toml_gives_the_same_options_as_conf(tmp_path):
    conf = load_text(tmp_path, NODE_CONF, "node.conf")
    toml = load_text(tmp_path, NODE_TOML, "node.toml")
    assert same_options(conf, toml)
    assert changed(conf)["max_payload"] == 2 * 1024**2
    assert toml.config_file == str(tmp_path / "node.toml")


def test_toml_blocks_give_the_same_options_as_conf(tmp_path, no_refusals):
    conf = (
        "cluster {\n  name: C1\n  listen: 127.0.0.1:6222\n  routes: [nats://127.0.0.1:6223]\n"
        "  authorization { user: r, password: p, timeout: 2 }\n}\n"
        "authorization { users: [ { user: a, password: b, permissions: { publish: x } } ] }\n"
    )
    toml = (
        '[cluster]\nname = "C1"\nlisten = "127.0.0.1:6222"\nroutes = ["nats://127.0.0.1:6223"]\n'
        'authorization = { user = "r", password = "p", timeout = 2 }\n'
        '[[authorization.users]]\nuser = "a"\npassword = "b"\npermissions = { publish = "x" }\n'
    )
    from trionats.config.toml import read_toml

    a = options_from_conf(parse(conf, filename="x.conf"))
    b = options_from_conf(read_toml(write(tmp_path, toml, "x.toml")))
    assert a == b
    assert a.cluster.routes == ("nats://127.0.0.1:6223",)


def test_toml_errors_name_file_and_line(tmp_path):
    text = 'port = 4333\ndebug = "yes"\n\n[cluster]\nname = "C1"\ncolour = "red"\n'
    f = f"{tmp_path}/node.toml"
    assert problems(tmp_path, text, "node.toml") == [
        f"{f}:2:1: debug: expected a boolean, got a string",
        f'{f}:6:1: unknown field "colour" in cluster',
    ]


def test_toml_syntax_error_names_file_line_column(tmp_path):
    lines = problems(tmp_path, "port = 4333\ndebug = \n", "node.toml")
    assert len(lines) == 1
    assert re.fullmatch(re.escape(f"{tmp_path}/node.toml") + r":2:\d+: .+", lines[0]), lines


def test_toml_size_strings_only_for_size_options(tmp_path):
    # "2m" is a name here, not two million.
    options = load_text(tmp_path, 'server_name = "2m"\nmax_pending = "2m"\n', "node.toml")
    assert (options.server_name, options.max_pending) == ("2m", 2_000_000)


def test_conf_syntax_error(tmp_path):
    assert problems(tmp_path, "port: 4333\nmax_payload: [1\n") == [
        f'{tmp_path}/node.conf:3:1: Expected an array value terminator "," or an array '
        "terminator \"]\", but got 'EOF' instead."
    ]


_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_size_units = st.sampled_from(["", "k", "K", "kb", "KB", "Ki", "m", "MB", "Mi", "mib"])
_duration_units = st.sampled_from(["ms", "s", "m", "h"])


@st.composite
def _settings(draw):
    """A random set of supported options as (conf line, TOML line) pairs."""
    lines = []
    if draw(st.booleans()):
        host = draw(st.sampled_from(["127.0.0.1", "0.0.0.0", "10.1.2.3"]))
        port = draw(st.integers(-1, 65535))
        lines.append((f"listen: {host}:{port}", f'listen = "{host}:{port}"'))
    if draw(st.booleans()):
        name = draw(_names)
        lines.append((f'server_name: "{name}"', f'server_name = "{name}"'))
    for key in ("max_payload", "max_control_line", "max_pending"):
        if draw(st.booleans()):
            number, unit = draw(st.integers(1, 1000)), draw(_size_units)
            toml = f'{key} = "{number}{unit}"' if unit else f"{key} = {number}"
            lines.append((f"{key}: {number}{unit}", toml))
    for key in ("max_connections", "max_subscriptions", "ping_max"):
        if draw(st.booleans()):
            number = draw(st.integers(0, 100_000))
            lines.append((f"{key}: {number}", f"{key} = {number}"))
    for key in ("write_deadline", "ping_interval"):
        if draw(st.booleans()):
            text = f"{draw(st.integers(1, 999))}{draw(_duration_units)}"
            lines.append((f'{key}: "{text}"', f'{key} = "{text}"'))
    for key in ("debug", "trace", "logtime", "logtime_utc", "no_header_support"):
        if draw(st.booleans()):
            value = draw(st.booleans())
            word = draw(st.sampled_from(["true", "yes", "on"] if value else ["false", "no", "off"]))
            lines.append((f"{key}: {word}", f"{key} = {str(value).lower()}"))
    for key in ("log_file", "pid_file", "ports_file_dir"):
        if draw(st.booleans()):
            path = "/tmp/" + draw(_names)
            lines.append((f'{key}: "{path}"', f'{key} = "{path}"'))
    return draw(st.permutations(lines))


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(_settings())
def test_property_toml_and_conf_agree(tmp_path, lines):
    conf = write(tmp_path, "\n".join(c for c, _ in lines) + "\n", "p.conf")
    toml = write(tmp_path, "\n".join(t for _, t in lines) + "\n", "p.toml")
    assert same_options(load(conf), load(toml))


# --- flags win over the file -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "argv", "expected"),
    [
        ("port: 1234", ["-p", "4444"], {"port": 4444}),
        ("port: 1234", ["-p=4444"], {"port": 4444}),
        ("listen: 127.0.0.1:1234", ["-a", "0.0.0.0"], {"host": "0.0.0.0", "port": 1234}),
        ("listen: 127.0.0.1:1234", ["-p", "-1"], {"host": "127.0.0.1", "port": -1}),
        ("debug: false", ["-D"], {"debug": True}),
        ("debug: true\ntrace: false", ["-DV"], {"debug": True, "trace": True}),
        ("logtime: true", ["-T=false"], {"logtime": False}),
        ("server_name: file", ["-n", "flag"], {"server_name": "flag"}),
        ("pid_file: /tmp/a.pid", ["-P", "/tmp/b.pid"], {"pid_file": "/tmp/b.pid"}),
        ("log_file: /tmp/a.log", ["-l", "/tmp/b.log"], {"log_file": "/tmp/b.log"}),
        ("max_payload: 2KB\nport: 1234", ["-p", "4444"], {"max_payload": 2048, "port": 4444}),
    ],
)
def test_flags_win_over_the_file(tmp_path, conf, argv, expected):
    path = write(tmp_path, conf + "\n")
    for args in ([*argv, "-c", str(path)], ["-c", str(path), *argv]):  # wherever -c is
        options = cli.build_options(cli.parse_args(args))
        assert {key: getattr(options, key) for key in expected} == expected


# --- the command line: -t and serving from a file ----------------------------------------------


def run_trionats(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "trionats", *args],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip


def test_check_valid_file_exits_0(tmp_path):
    path = write(tmp_path, NODE_CONF)
    result = run_trionats("-t", "-c", str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"trionats: configuration file {path} is valid (sha256:{digest})\n"


def test_check_valid_toml_exits_0(tmp_path):
    path = write(tmp_path, NODE_TOML, "node.toml")
    result = run_trionats("-t", "-c", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"trionats: configuration file {path} is valid (sha256:")


def test_check_invalid_file_exits_1_with_every_problem(tmp_path):
    path = write(tmp_path, 'port: 4333\ndebug: "true"\nbogus: 1\ncluster { x: 1 }\n')
    result = run_trionats("-t", "-c", str(path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"trionats: {path}:2:1: debug: expected a boolean, got a string\n"
        f'{path}:3:1: unknown field "bogus"\n'
        f'{path}:4:11: unknown field "x" in cluster\n'
    )


def test_check_invalid_toml_exits_1(tmp_path):
    path = write(tmp_path, 'port = 4333\nbogus = 1\n', "node.toml")
    result = run_trionats("-t", "-c", str(path))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f'trionats: {path}:2:1: unknown field "bogus"\n'


def test_check_missing_file_exits_1(tmp_path):
    result = run_trionats("-t", "-c", str(tmp_path / "missing.conf"))
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"trionats: {tmp_path}/missing.conf: No such file or directory\n"


def test_check_applies_flags_and_checks_the_result(tmp_path):
    # The file is fine; -n with a space is not. trionats checks the file with the flags over it
    # (nats-server's -t checks only the file; it refuses such a name when starting).
    path = write(tmp_path, "port: 4333\n")
    assert run_trionats("-t", "-c", str(path), "-p", "4444").returncode == 0
    result = run_trionats("-t", "-c", str(path), "-n", "a b")
    assert result.returncode == 1
    assert result.stderr == "trionats: server name cannot contain spaces\n"


def test_check_refuses_max_payload_over_max_pending(tmp_path):
    # nats-server refuses this when starting (same message), not at -t.
    path = write(tmp_path, "max_pending: 100\nmax_payload: 200\n")
    result = run_trionats("-t", "-c", str(path))
    assert result.returncode == 1
    assert result.stderr == "trionats: max_payload (200) cannot be higher than max_pending (100)\n"


def info_of(client: RawClient) -> dict:
    return json.loads(client.info[len(b"INFO ") :])


class FileServer(_Process):
    """`python -m trionats -c <file> [flags]`, serving on the file's (or the flags') port."""

    def __init__(self, port: int, *args: str) -> None:
        super().__init__([sys.executable, "-m", "trionats", *args], port)


async def test_serves_on_the_files_address_with_the_files_limits(tmp_path):
    port = free_port()
    path = write(
        tmp_path,
        f"listen: 127.0.0.1:{port}\nserver_name: from-file\nmax_payload: 12345\n"
        "max_control_line: 2KB\nmax_subscriptions: 1\n",
    )
    with FileServer(port, "-c", str(path)) as server:
        client = await RawClient.connect(port)
        try:
            info = info_of(client)
            assert (info["port"], info["max_payload"], info["server_name"]) == (
                port, 12345, "from-file",
            )  # fmt: skip
            await client.send(b'CONNECT {"verbose":false}\r\nSUB a 1\r\nSUB b 2\r\n')
            assert await client.ping_pong() == b"-ERR 'maximum subscriptions exceeded'\r\n"
            await client.send(b"PUB x 12346\r\n")
            assert b"-ERR 'Maximum Payload Violation'" in await client.expect_closed()
        finally:
            await client.aclose()
        assert f"Listening for client connections on 127.0.0.1:{port}" in server.log()


async def test_flags_over_the_file_when_serving(tmp_path):
    file_port, flag_port = free_port(), free_port()
    path = write(
        tmp_path,
        f"listen: 127.0.0.1:{file_port}\nserver_name: from-file\nmax_payload: 4KB\ndebug: false\n",
    )
    flags = ["-p", str(flag_port), "-n", "from-flag", "-D"]
    with FileServer(flag_port, "-c", str(path), *flags) as server:
        client = await RawClient.connect(flag_port)
        await client.aclose()
        info = info_of(client)
        assert (info["port"], info["max_payload"], info["server_name"]) == (
            flag_port, 4096, "from-flag",
        )  # fmt: skip
        assert "[DBG]" in server.log()


# --- the sample configuration files ------------------------------------------------------------

SAMPLE_CONF = ROOT / "etc" / "node.conf"
SAMPLE_TOML = ROOT / "etc" / "node.toml"


def uncommented(path: Path, tmp_path: Path) -> Path:
    """The sample with its examples switched on: `#key ...` and `#  indented` lines lose the
    `#` (prose comments are `# text`, one space)."""
    text = re.sub(r"(?m)^#(?=[^\s#]|  )", "", path.read_text())
    return write(tmp_path, text, "uncommented" + path.suffix)


def test_samples_load_to_equal_options():
    conf, toml = load(SAMPLE_CONF), load(SAMPLE_TOML)
    assert same_options(conf, toml)
    assert changed(conf) == {"server_name": "node-1"}  # every other value is the default


def test_samples_examples_load_to_equal_options(tmp_path, no_refusals):
    conf = load(uncommented(SAMPLE_CONF, tmp_path))
    toml = load(uncommented(SAMPLE_TOML, tmp_path))
    assert same_options(conf, toml)
    assert conf.cluster.routes and conf.authorization.users and conf.tls.verify
    assert (conf.log_file, conf.http_port) == ("/var/log/trionats/node-1.log", 8222)


@pytest.mark.parametrize("sample", [SAMPLE_CONF, SAMPLE_TOML], ids=["conf", "toml"])
def test_samples_with_every_example_on_are_accepted(tmp_path, sample, monkeypatch):
    # The sample's tls block names certificate files of a real install: do not load them.
    monkeypatch.setattr(loader, "_check_tls", lambda *args: None)
    options = load(uncommented(sample, tmp_path))
    assert options.websocket.port == 8080 and options.lame_duck_duration == 120


@pytest.mark.parametrize("sample", [SAMPLE_CONF, SAMPLE_TOML], ids=["conf", "toml"])
def test_samples_pass_trionats_check(sample):
    result = run_trionats("-t", "-c", str(sample))
    assert result.returncode == 0, result.stderr
    assert "is valid (sha256:" in result.stdout


def run_nats_server_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(path)],
        capture_output=True, text=True, timeout=DEADLINE, check=False,
    )  # fmt: skip


def test_sample_conf_is_a_valid_nats_server_config():
    result = run_nats_server_check(SAMPLE_CONF)
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stderr


# --- differential: nats-server -t and trionats -t agree on valid / invalid ---------------------

#: Files using only options both servers act on (or plain mistakes): (name, text).
DIFFERENTIAL = [
    ("limits", "listen: 127.0.0.1:4333\nserver_name: n1\nmax_payload: 64KB\nmax_pending: 1MB\n"
               "max_control_line: 1k\nmax_connections: 10\nmax_subs: 5\nping_max: 3\n"
               'ping_interval: "30s"\nwrite_deadline: "500ms"\n'),
    ("logging", "port: 4333\ndebug: yes\ntrace: off\nlogtime: false\nlogtime_utc: on\n"
                "log_file: /tmp/trionats-diff.log\npid_file: /tmp/trionats-diff.pid\n"),
    ("variables", "P = 4333\nport: $P\n"),
    ("outer-braces", "{\n  port: 4333; debug: on\n}\n"),
    ("listen-port", "listen: 4333\n"),
    ("aliases", "net: 127.0.0.1\nmax_conn: 5\nlogfile: /tmp/trionats-diff.log\n"),
    ("json", '{"port": 4333, "max_payload": 1024, "debug": true}\n'),
    ("quoted-bool", 'debug: "true"\n'),
    ("quoted-port", 'port: "4333"\n'),
    ("unknown", "port: 4333\nbogus: 1\n"),
    ("unused-variable", "X = 1\nport: 4333\n"),
    ("host-only-listen", "listen: 127.0.0.1\n"),
    ("name-with-space", 'server_name: "a b"\n'),
    ("payload-too-big", "max_payload: 3GB\n"),
    ("bad-duration", 'ping_interval: "soon"\n'),
    ("float-duration", "write_deadline: 1.5\n"),
    ("syntax", "port: 4333\nmax_payload: [1\n"),
    ("missing-variable", "port: $TRIONATS_DIFF_NO_SUCH_VAR\n"),
    ("integer-duration", "ping_interval: 30\n"),  # nats-server -t fails on its warnings
    ("empty", "# nothing\n"),
    pytest.param("payload-over-pending", "max_pending: 100\nmax_payload: 200\n",
                 marks=pytest.mark.xfail(strict=True, reason="nats-server checks this at startup, "
                                         "not at -t; trionats checks it at -t")),
]  # fmt: skip


@pytest.mark.interop
@pytest.mark.parametrize(("name", "text"), DIFFERENTIAL, ids=lambda v: v if "\n" not in v else "")
def test_differential_check_agrees_with_nats_server(tmp_path, monkeypatch, name, text):
    monkeypatch.delenv("TRIONATS_DIFF_NO_SUCH_VAR", raising=False)
    path = write(tmp_path, text, f"{name}.conf")
    theirs = run_nats_server_check(path)
    ours = run_trionats("-t", "-c", str(path))
    assert (ours.returncode == 0) == (theirs.returncode == 0), (theirs.stderr, ours.stderr)
    if ours.returncode != 0:
        # The same lines are blamed. nats-server's columns differ (0 for top-level keys), and
        # its syntax errors read "Parse error on line N", its variable errors "on line N".
        where = re.escape(str(path)) + r":(\d+):\d+:"
        theirs_lines = set(re.findall(where, theirs.stderr))
        theirs_lines |= set(re.findall(r"Parse error on line (\d+)", theirs.stderr))
        theirs_lines |= set(re.findall(r"on line (\d+) can not be found", theirs.stderr))
        assert theirs_lines == set(re.findall(where, ours.stderr)), (theirs.stderr, ours.stderr)


# --- docs/configuration.md lists every option the loader knows ----------------------------------


def test_docs_option_table_matches_the_loader():
    text = (ROOT / "docs" / "configuration.md").read_text()
    table = text.split("| key | aliases |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| `")]
    documented = {}
    for key, aliases, _type, _default, acts_on in rows:
        names = re.findall(r"`([a-z_]+)`", key + aliases)
        for name in names:
            documented[name] = acts_on.strip()
    assert set(documented) == set(loader.OPTIONS.fields)
    for name, acts_on in documented.items():
        assert (acts_on == "not yet") == (name in loader.NOT_YET), name


@pytest.mark.parametrize(
    ("text", "where"),
    [("tls { verify_cert_and_check_known_urls: true }", "1:7"),
     ("websocket { port: 8080, tls { verify_cert_and_check_known_urls: true } }", "1:31")],
)  # fmt: skip
def test_check_known_urls_only_in_a_cluster_tls_block(tmp_path, monkeypatch, text, where):
    # nats-server: "... not supported in this context" for client-facing tls blocks.
    monkeypatch.setattr(loader, "_check_tls", lambda *args: None)
    assert problems(tmp_path, text + "\n") == [
        f"{tmp_path}/node.conf:{where}: verify_cert_and_check_known_urls not supported in "
        "this context"
    ]
    ok = "cluster { port: 6222, tls { verify_cert_and_check_known_urls: true } }\n"
    assert load(write(tmp_path, ok)).cluster.tls.verify_cert_and_check_known_urls
