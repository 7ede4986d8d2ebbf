"""Shared fixtures: a trionats server in the test's Trio run, and the reference nats-server."""

from __future__ import annotations

import pytest

from tests.helpers import NatsServerProcess, start_trionats


@pytest.fixture
async def server(nursery):
    """A trionats Server with default options on 127.0.0.1 and a random port."""
    srv = await start_trionats(nursery)
    yield srv
    srv.shutdown()


@pytest.fixture
def server_factory(nursery):
    """Start trionats Servers with option overrides: `await server_factory(max_payload=10)`."""
    started = []

    async def start(**overrides):
        srv = await start_trionats(nursery, **overrides)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.shutdown()


@pytest.fixture(scope="session")
def reference_server():
    """One nats-server 2.15.1 for the whole session (default options), for differential tests."""
    with NatsServerProcess() as process:
        yield process
