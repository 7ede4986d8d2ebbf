"""Start-up imports only what the configuration uses: a guard against eager imports coming back.

A server process started as a user starts it (flags, or `-c` with a file) serves one plain
client, stops, and lists `sys.modules` on its way out. Modules of features the configuration
does not use (TLS, routes, websocket, HTTP monitoring, bcrypt, nkeys, JSON logs) must not be
there, nor the configuration loader's cattrs when no file is loaded. This checks imports, not
timings: `benchmarks/bench.py --scenarios startup` measures.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import trionats
from tests.helpers import _Process, free_port

ROOT = Path(trionats.__file__).resolve().parent.parent

# Run from ROOT with `-c`, so this tree's trionats is the one imported.
DRIVER = """
import atexit, json, sys
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(sorted(sys.modules))))
from trionats.cli import main
sys.exit(main(sys.argv[2:]))
"""

#: Never imported by a server (only tests or tools might).
UNUSED = ("trionats.testing",)
#: Imported only when the configuration asks for what they do.
OPTIONAL = (
    "trionats.tls", "cryptography",  # tls blocks, TLS flags, certificate maps, nkeys
    "trionats.routes", "trionats.protocol.route_handshake",  # a cluster port
    "trionats.websocket", "trionats.protocol.websocket", "trio_websocket", "wsproto",
    # http_port / https_port (monitor.snapshots is not here: it records closed clients)
    "trionats.monitor.http", "trionats.monitor.metrics", "h11",
    "bcrypt",  # bcrypt-hashed passwords
    "ecs_logging",  # log_format: json
    "decimal",  # Go's formatting of tiny or huge floats
)  # fmt: skip
#: The configuration file's parser and loader: only with -c.
CONFIG = ("trionats.config.load", "trionats.config.natsconf", "tomli", "tomllib", "cattrs")

PLAIN_CONF = """
authorization { user: alice, password: secret }
max_payload: 512KB
ping_interval: "2m"
server_name: plain
"""

FEATURES_CONF = """
http_port: -1
cluster { name: c, port: -1 }
"""


def started_modules(tmp_path: Path, *args: str) -> set[str]:
    """The modules a server started with `args` had loaded by the time it exited, after
    serving one client (CONNECT, PING, PONG)."""
    out = tmp_path / "modules.json"
    port = free_port()
    argv = [sys.executable, "-c", DRIVER, str(out), "-a", "127.0.0.1", "-p", str(port), *args]
    with _Process(argv, port, cwd=ROOT) as server:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(5)
            assert sock.recv(4096).startswith(b"INFO ")
            sock.sendall(b'CONNECT {"user":"alice","pass":"secret"}\r\nPING\r\n')
            assert b"PONG\r\n" in sock.recv(4096)
        assert server.stop() == 0, server.log()
    return set(json.loads(out.read_text()))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (a module and its submodules) are in `modules`."""
    return sorted(m for m in modules for name in names if m == name or m.startswith(name + "."))


def test_flags_only_server_imports_no_optional_module(tmp_path):
    modules = started_modules(tmp_path, "--user", "alice", "--pass", "secret")
    assert loaded(modules, UNUSED + OPTIONAL + CONFIG) == []


def test_plain_config_file_imports_no_optional_module(tmp_path):
    conf = tmp_path / "plain.conf"
    conf.write_text(PLAIN_CONF)
    modules = started_modules(tmp_path, "-c", str(conf))
    assert loaded(modules, UNUSED + OPTIONAL) == []
    assert "trionats.config.load" in modules


def test_configured_features_are_imported(tmp_path):
    """The control: the same check sees the modules of what a file does configure."""
    conf = tmp_path / "features.conf"
    conf.write_text(PLAIN_CONF + FEATURES_CONF)
    modules = started_modules(tmp_path, "-c", str(conf))
    assert {"trionats.routes.cluster", "trionats.monitor.http", "h11"} <= modules
    assert loaded(modules, UNUSED) == []
