"""JetStream test helpers: servers with -js and their own store directory, and nats-py runs."""

from __future__ import annotations

import asyncio
import json
import re

import nats
import pytest

from tests.helpers import NatsServerProcess, TrionatsProcess

TIMEOUT = 5.0


@pytest.fixture
def js_server(tmp_path):
    """A trionats process with JetStream, storing under tmp_path."""
    process = TrionatsProcess("-js", "-sd", str(tmp_path / "store"))
    yield process
    process.stop()


@pytest.fixture
def reference_js(tmp_path):
    """nats-server 2.15.1 with JetStream, storing under tmp_path."""
    process = NatsServerProcess("-js", "-sd", str(tmp_path / "reference"))
    yield process
    process.stop()


def run(coro, timeout: float = 60):
    """Run a nats-py coroutine with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(url: str):
    return await nats.connect(url, allow_reconnect=False, connect_timeout=TIMEOUT)


async def request(nc, subject: str, body=b"", headers=None):
    """One request; the reply's JSON (or None for no responders / no reply)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        msg = await nc.request(subject, data, timeout=TIMEOUT, headers=headers)
    except nats.errors.NoRespondersError:
        return None
    return json.loads(msg.data)


_TIME = re.compile(r'"\d{4}-\d\d-\d\dT[\d:.]+Z"')


def normalise(reply):
    """A reply with what differs between two servers' runs made equal: times, the leader's
    name, Go's JSON syntax error texts (the codes still must agree)."""
    if reply is None:
        return None
    text = _TIME.sub('"<time>"', json.dumps(reply, sort_keys=False))
    reply = json.loads(text)
    if isinstance(reply.get("cluster"), dict):
        reply["cluster"]["leader"] = "<leader>"
    if isinstance(reply.get("api"), dict):
        # nats-server counts some refused requests apart (docs/differences.md): not compared.
        reply["api"] = {"level": reply["api"]["level"]}
    error = reply.get("error")
    if isinstance(error, dict) and error.get("err_code") == 10025:
        error["description"] = "invalid JSON: <reason>"
    return reply
