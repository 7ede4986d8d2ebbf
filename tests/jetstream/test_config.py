"""JetStream's configuration: the `jetstream` block (top level and per account), -js/-sd,
and what a clustered configuration gets (a clear refusal)."""

from __future__ import annotations

import pytest

from trionats import cli
from trionats.config.load import load
from trionats.errors import ConfigError
from trionats.options import AccountJetStream, ClusterOptions, JetStreamOptions, Options


def write(tmp_path, text: str):
    path = tmp_path / "js.conf"
    path.write_text(text)
    return path


def problems(tmp_path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text))
    return [line.split(": ", 1)[1] for line in str(info.value).split("\n")]


def test_the_block_with_every_key_and_alias(tmp_path):
    options = load(write(tmp_path, """
        jetstream {
          storedir: /data/js
          max_mem: 1GB
          max_file: 10G
          domain: hub
          sync: 10s
          strict: false
          unique_tag: az
          max_buffered_msgs: 100
          max_buffered_size: 1MB
          request_queue_limit: 50
        }
    """))
    assert options.jetstream == JetStreamOptions(
        store_dir="/data/js", max_memory_store=1 << 30, max_file_store=10 * 1000**3,
        domain="hub", sync_interval=10.0, strict=False, unique_tag="az",
        max_buffered_msgs=100, max_buffered_size=1 << 20, request_queue_limit=50,
    )  # fmt: skip
    assert options.jetstream_enabled


@pytest.mark.parametrize(
    ("text", "enabled"),
    [("jetstream: true", True), ("jetstream: enabled", True), ("jetstream: Enable", True),
     ("jetstream: false", False), ("jetstream: disabled", False),
     ("jetstream { enabled: false }", False), ("jetstream {}", True)],
)  # fmt: skip
def test_switches(tmp_path, text, enabled):
    assert load(write(tmp_path, text + "\n")).jetstream_enabled is enabled


def test_sync_always(tmp_path):
    js = load(write(tmp_path, "jetstream { sync_interval: always }\n")).jetstream
    assert js.sync_always


def test_bad_values_and_unsupported_keys_are_all_reported(tmp_path):
    assert problems(tmp_path, """jetstream {
        max_mem: lots
        cipher: chacha
        bogus: 1
        key: s3cret
    }
    """) == [
        "max_mem: expected an integer, got a string",
        '"jetstream.cipher" is not supported by trionats yet',
        'unknown field "bogus" in jetstream',
        '"jetstream.key" is not supported by trionats yet',
    ]
    assert problems(tmp_path, "jetstream: 5\n") == [
        "jetstream: Expected map, bool or string to define JetStream, got a number"
    ]


def test_account_limits(tmp_path):
    options = load(write(tmp_path, """
        jetstream: enabled
        accounts {
          A: { jetstream: enabled }
          B: { jetstream { max_mem: 1M, disk: 2M, streams: 3, consumers: 4, max_ack_pending: 5,
                           max_bytes_required: true } }
          C: { jetstream: disabled }
          D: {}
        }
    """))
    limits = {account.name: account.jetstream for account in options.accounts}
    assert limits == {
        "A": AccountJetStream(),
        "B": AccountJetStream(max_memory=1000**2, max_store=2 * 1000**2, max_streams=3,
                              max_consumers=4, max_ack_pending=5, max_bytes_required=True),
        "C": None,
        "D": None,
    }  # fmt: skip


def test_top_level_store_dir_and_a_duplicate(tmp_path):
    assert load(write(tmp_path, "store_dir: /a\njetstream: true\n")).store_dir == "/a"
    options = load(write(tmp_path, "store_dir: /a\njetstream { store_dir: /b }\n"))
    with pytest.raises(ConfigError, match="Duplicate 'store_dir' configuration"):
        options.check()


def test_clustered_jetstream_is_refused_clearly():
    options = Options(jetstream=JetStreamOptions(), cluster=ClusterOptions(port=6222))
    with pytest.raises(ConfigError, match="clustered JetStream is not supported by trionats yet"):
        options.check()
    Options(jetstream=JetStreamOptions(enabled=False), cluster=ClusterOptions(port=6222)).check()


def test_the_system_account_cannot_have_jetstream(tmp_path):
    text = "system_account: S\naccounts { S: { jetstream: enabled } }\njetstream: true\n"
    with pytest.raises(ConfigError, match="jetstream can not be enabled on the system account"):
        load(write(tmp_path, text)).check()


def test_flags(tmp_path):
    options = cli.build_options(cli.parse_args(["-js", "-sd", "/data"]))
    assert options.jetstream_enabled and options.store_dir == "/data"
    path = write(tmp_path, "jetstream { enabled: false, domain: hub }\n")
    options = cli.build_options(cli.parse_args(["-c", str(path), "--jetstream"]))
    assert options.jetstream == JetStreamOptions(domain="hub")
    assert not cli.build_options(cli.parse_args(["-sd", "/data"])).jetstream_enabled


def test_an_unusable_storage_directory_stops_the_start(tmp_path):
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = subprocess.run([sys.executable, "-m", "trionats", "-p", "-1", "-js", "-sd", str(blocker)],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 1
    assert "[FTL] could not create storage directory - " in result.stderr
    assert "Server is ready" not in result.stderr
