"""server_tags: informational tags shown in /varz as `tags`, as nats-server 2.15.1 does.

nats-server keeps them in a jwt.TagList: each tag trimmed and lower-cased, empty ones
dropped, duplicates once; a single string is one tag (commas are not split). `tags` is left
out of /varz when there are none. A reload changes them ("Reloaded: tags"). They are not in
INFO or in the route INFO.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import NatsServerProcess, RawClient, TrionatsProcess, free_port
from tests.config.test_config import run_nats_server_check, run_trionats
from tests.monitor.test_monitor import VARZ_TRIONATS_ONLY, get_json
from tests.config.test_reload import start_with_file
from trionats.config.load import load
from trionats.errors import ConfigError
from trionats.options import Options

MIXED = '[a, "B", "a", " c ", "", "x,y"]'


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        (MIXED, ("a", "b", "c", "x,y")),
        ('"Single"', ("single",)),
        ('"p, q"', ("p, q",)),  # one tag: nats-server does not split a string
        ("[]", ()),
        ('["A", "a"]', ("a",)),
    ],
)
def test_tags_are_kept_as_nats_server_keeps_them(tmp_path, value, tags):
    conf = tmp_path / "node.conf"
    conf.write_text(f"server_tags: {value}\n")
    assert load(conf).server_tags == tags


def test_embedding_normalises_too():
    assert Options(server_tags=[" Zone:1 ", "zone:1", "rack"]).server_tags == ("zone:1", "rack")


@pytest.mark.parametrize("value", ["5", "true", "[a, [b]]", "[a, {x: 1}]", "{a: 1}"])
def test_values_nats_server_refuses_are_refused(tmp_path, value):
    conf = tmp_path / "node.conf"
    conf.write_text(f"port: 4222\nserver_tags: {value}\n")
    with pytest.raises(ConfigError) as raised:
        load(conf)
    assert str(raised.value).startswith(f"{conf}:2:1: server_tags: ")


@pytest.mark.interop
@pytest.mark.parametrize("value", [MIXED, '"one"', "5", "[a, [b]]"])
def test_check_agrees_with_nats_server(tmp_path, value):
    conf = tmp_path / "node.conf"
    conf.write_text(f"server_tags: {value}\n")
    theirs = run_nats_server_check(conf)
    ours = run_trionats("-t", "-c", str(conf))
    assert (theirs.returncode == 0) == (ours.returncode == 0), (theirs.stderr, ours.stderr)


async def test_varz_tags_omitted_when_none(server_factory):
    server = await server_factory(http_host="127.0.0.1", http_port=-1)
    varz = await get_json(server.monitor.port, "/varz")
    assert "tags" not in varz


async def test_varz_tags_and_their_place(server_factory):
    server = await server_factory(http_host="127.0.0.1", http_port=-1, server_tags=["Az:1", "b"])
    varz = await get_json(server.monitor.port, "/varz")
    assert varz["tags"] == ["az:1", "b"]
    keys = list(varz)
    assert keys.index("config_digest") + 1 == keys.index("tags")
    assert keys.index("tags") + 1 == keys.index("feature_flags")
    raw = await RawClient.connect(server.port)
    assert "tags" not in json.loads(raw.info[5:])  # not in INFO
    await raw.aclose()


async def test_reload_changes_tags(nursery, tmp_path, capsys):
    conf = tmp_path / "node.conf"
    conf.write_text("server_tags: [a]\nmax_payload: 1000\n")
    server = await start_with_file(nursery, conf, http_host="127.0.0.1", http_port=-1)
    conf.write_text("server_tags: [a, B]\nmax_payload: 2000\n")
    assert server.reload()
    varz = await get_json(server.monitor.port, "/varz")
    assert varz["tags"] == ["a", "b"]
    lines = [line.partition("[INF] ")[2] for line in capsys.readouterr().err.splitlines()]
    # nats-server logs the tags after the other options.
    tags = lines.index("Reloaded: tags")
    assert lines.index("Reloaded: max_payload = 2000") < tags
    assert lines[tags + 1].startswith("Reloaded server configuration (sha256:")
    server.shutdown()


@pytest.mark.interop
async def test_varz_matches_nats_server(tmp_path):
    conf = tmp_path / "node.conf"
    conf.write_text(f"server_tags: {MIXED}\n")
    bodies = []
    for kind in (NatsServerProcess, TrionatsProcess):
        http = free_port()
        with kind("-c", str(conf), "-m", str(http)):
            bodies.append(await get_json(http, "/varz"))
    theirs, ours = bodies
    assert theirs["tags"] == ours["tags"] == ["a", "b", "c", "x,y"]
    ours_shared = [key for key in ours if key not in VARZ_TRIONATS_ONLY]
    assert list(theirs) == ours_shared  # same keys, same order
