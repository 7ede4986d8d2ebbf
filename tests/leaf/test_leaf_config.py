"""`leafnodes {}` as nats-server reads it: every key, the refusals with file:line, the rules
between keys, and the ports file (its `leafnodes` entry, its name after the executable)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import free_port
from trionats.config.load import load
from trionats.errors import ConfigError
from trionats.options import LeafAuthorization, LeafRemote, LeafUser

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leaf.conf"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    return str(info.value).split("\n")


def test_every_key(tmp_path):
    options = load(write(tmp_path, """
accounts { A { users [{user: a, password: a}] } }
leafnodes {
  listen: "127.0.0.1:-1"
  advertise: "leaf.example.com:7422"
  no_advertise: true
  authorization { user: leaf, password: s3cret, account: A, timeout: 3 }
  reconnect: "2s"
  dial_timeout: "500ms"
  compression: off
  min_version: "2.9.0"
  write_deadline: "5s"
  write_timeout: close
  remotes [
    { url: "nats://u:p@127.0.0.1:7422", account: A, deny_imports: ["x.>"], deny_exports: "y.*",
      credentials: "~/a.creds" }
    { urls: ["nats://h1:7422", "h2"], no_randomize: true, hub: true, first_info_timeout: "2s",
      compression: { mode: off }, disabled: false, ignore_discovered_servers: true }
  ]
}
"""))
    leaf = options.leafnodes
    assert (leaf.host, leaf.port, leaf.advertise, leaf.no_advertise) == (
        "127.0.0.1", -1, "leaf.example.com:7422", True)  # fmt: skip
    assert leaf.authorization == LeafAuthorization(user="leaf", password="s3cret", account="A",
                                                   timeout=3.0)  # fmt: skip
    assert (leaf.reconnect, leaf.dial_timeout, leaf.compression, leaf.min_version) == (
        2.0, 0.5, "off", "2.9.0")  # fmt: skip
    assert (leaf.write_deadline, leaf.write_timeout) == (5.0, "close")
    assert leaf.remotes == (
        LeafRemote(urls=("nats://u:p@127.0.0.1:7422",), account="A", deny_imports=("x.>",),
                   deny_exports=("y.*",), credentials=os.path.expanduser("~/a.creds")),
        LeafRemote(urls=("nats://h1:7422", "h2"), no_randomize=True, hub=True,
                   first_info_timeout=2.0, ignore_discovered_servers=True),
    )  # fmt: skip


def test_leaf_users_and_aliases(tmp_path):
    options = load(write(tmp_path, """
accounts { A {}, B {} }
leaf {
  port: 7422
  authorization { users [ {user: x, pass: y, account: A}, {username: z, password: w} ] }
  remotes [ { url: "nats://h", local: B, deny_import: a, deny_export: b, dont_randomize: true } ]
}
"""))
    leaf = options.leafnodes
    assert leaf.authorization.users == (LeafUser(user="x", password="y", account="A"),
                                        LeafUser(user="z", password="w"))  # fmt: skip
    assert leaf.remotes[0].account == "B" and leaf.remotes[0].no_randomize


def test_refusals_with_their_positions(tmp_path):
    f = tmp_path / "leaf.conf"
    assert problems(tmp_path, """leafnodes {
  port: -1
  isolate: true
  compression: s2_fast
  remotes [
    { url: "ws://h:80", nkey: "SUABC", account: NOPE, bogus: 1 }
    { account: A }
  ]
  min_version: "2.1.0"
  authorization { nkey: UABC, proxy_required: true }
}
""") == [
        f'{f}:1:1: cannot find local account "NOPE" specified in leafnode remote',
        f'{f}:1:1: cannot find local account "A" specified in leafnode remote',
        f"{f}:3:3: isolate: not supported by trionats yet (interest isolation)",
        f"{f}:4:3: compression: compression 's2_fast' is not supported by trionats (only off)",
        f"{f}:6:7: url: websocket remote 'ws://h:80' is not supported by trionats",
        f"{f}:6:25: nkey: Remote leafnode nkey is not a valid seed",  # (never the seed itself)
        f'{f}:6:55: unknown field "bogus" in remotes',
        f"{f}:7:7: leafnode remote requires at least one url",
        f"{f}:9:3: min_version: the minimum version should be at least 2.8.0",
        f"{f}:10:19: nkey: Not a valid public nkey for leafnode authorization",
        f"{f}:10:31: proxy_required: not supported by trionats yet (proxies)",
    ]


def test_rules_between_keys(tmp_path):
    f = tmp_path / "leaf.conf"
    assert problems(tmp_path, """leafnodes {
  port: 7422
  authorization { user: a, password: b, users [ {user: c, password: d}, {user: c, password: e} ] }
  remotes [ { url: "nats://h" }, { url: "nats://h" } ]
}
""") == [
        f"{f}:1:1: can not have a single user/pass and a users array",
        f'{f}:1:1: duplicate user "c" detected in leafnode authorization',
        f"{f}:1:1: duplicate remote nats://h",
    ]


@pytest.mark.parametrize("value", ["off", "disabled", "false", "Off"])
def test_compression_off_in_its_spellings(tmp_path, value):
    options = load(write(tmp_path, f"leafnodes {{ port: 7422, compression: {value} }}\n"))
    assert options.leafnodes.compression == "off"


def test_leafnode_port_range(tmp_path):
    options = load(write(tmp_path, "leafnodes { port: 70000 }\n"))
    with pytest.raises(ConfigError, match="^leafnode port 70000 is out of range$"):
        options.check()


def _read_ports(path: Path, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.02)
    raise AssertionError(f"no ports file {path}")


def test_ports_file_is_named_after_the_executable_and_lists_the_leafnode_port(tmp_path):
    # A trionats started as `nats-server` writes `nats-server_<pid>.ports`, as tools expect.
    launcher = tmp_path / "nats-server"
    launcher.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                        "from trionats.cli import main\nsys.exit(main())\n")  # fmt: skip
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    conf = write(tmp_path, 'leafnodes { listen: "127.0.0.1:-1" }\n')
    process = subprocess.Popen([str(launcher), "-a", "127.0.0.1", "-p", str(free_port()), "-c",
                                str(conf), "--ports_file_dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        ports = _read_ports(tmp_path / f"nats-server_{process.pid}.ports")
        [url] = ports["leafnodes"]
        assert url.startswith("nats-leaf://127.0.0.1:") and not url.endswith(":0")
    finally:
        process.terminate()
        process.wait(10)
    assert not os.path.exists(tmp_path / f"nats-server_{process.pid}.ports")


def test_a_reload_changing_leafnodes_is_refused_without_showing_passwords(tmp_path):
    from trionats.config.reload import diff

    old = load(write(tmp_path, 'leafnodes { remotes [ { url: "nats://u:hunter2@h:7422" } ] }\n'))
    new = load(write(tmp_path, 'leafnodes { remotes [ { url: "nats://u:hunter2@h2:7422" } ] }\n'))
    with pytest.raises(ConfigError) as info:
        diff(old, new)
    text = str(info.value)
    assert text.startswith("config reload not supported for LeafNode: old=")
    assert "hunter2" not in text and "h2:7422" in text
