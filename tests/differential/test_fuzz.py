"""Fuzzing in the suite: short Hypothesis-driven runs of every protocol against one live server.

Each protocol gets a few hundred mutated streams (fuzz/inputs.py, fuzz/mutate.py) on fresh
connections of one in-process server (fuzz/harness.py): no exception may escape a connection,
none may hang, none may leave a client, route, subscription or task behind, and the canary
client must be served throughout. Hypothesis draws the random choices, so a failure shrinks
to a small input. The long run is `python -m fuzz` (docs/fuzzing.md); what it found is
replayed below as regression tests.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.harness import Failure, FuzzServerThread
from fuzz.inputs import PROTOCOLS, generate
from fuzz.mutate import mutate, split_points

#: Inputs per protocol and test run (a few seconds each on a loaded 2-core machine).
EXAMPLES = 400


@pytest.fixture(scope="module")
def fuzz_server():
    with FuzzServerThread() as server:
        yield server
        server.check()


def _fuzz(server: FuzzServerThread, protocol: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )
    @given(st.randoms(use_true_random=False))
    def one_input(rng):
        server.feed(protocol, generate(protocol, rng, server.server_id))

    one_input()
    server.check()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mutated_streams_leave_the_server_serving(fuzz_server, protocol):
    _fuzz(fuzz_server, protocol)


def test_the_leak_check_notices_a_client_left_behind(fuzz_server):
    """The harness can fail: a connection still registered after its input is a leak."""
    server = fuzz_server

    async def leave_a_client_behind():
        fuzz = server.fuzz
        client = fuzz.server.admit(None, ("127.0.0.1", 1))
        try:
            with pytest.raises(Failure, match="clients still registered"):
                await fuzz.check_leaks()
        finally:
            fuzz.server.forget(client)

    server._call(leave_a_client_behind)


def test_inputs_are_reproducible_from_seed_and_index():
    def make(index: int) -> list[bytes]:
        return generate("route", random.Random(f"7:{index}"), "SELF")

    assert [make(i) for i in range(50)] == [make(i) for i in range(50)]
    assert len({b"".join(make(i)) for i in range(50)}) > 45


def test_split_points_keep_every_byte():
    rng = random.Random(3)
    for _ in range(200):
        data = mutate(rng, b"CONNECT {}\r\nPUB foo 2\r\nhi\r\nPING\r\n")
        assert b"".join(split_points(rng, data)) == data


# --- what the fuzzer found, replayed ---------------------------------------------------------

_ROUTE_CONNECT = (b'CONNECT {"verbose":false,"pedantic":false,"tls_required":false,"headers":true,'
                  b'"name":"R1","cluster":"FUZZ","dynamic":false}\r\n')  # fmt: skip


def _route_info(extra: bytes = b"", server_id: bytes = b'"R1"') -> bytes:
    return (b'INFO {"server_id":' + server_id + b',"server_name":"r1","version":"2.15.1",'
            b'"proto":2,"host":"127.0.0.1","port":1,"headers":true,"cluster":"FUZZ"'
            + extra + b"}\r\n")  # fmt: skip


REGRESSIONS = {
    # route INFO nested 12,000 deep: json.loads' recursion limit escaped the connection
    "route_info_nested_deep": ("route", _ROUTE_CONNECT + _route_info(b',"x":' + b"[" * 12000
                                                                     + b"]" * 12000)),
    # a lone surrogate as a key, re-encoded for the gossip to other routes
    "route_info_lone_surrogate_key": ("route", _ROUTE_CONNECT + _route_info(b',"\\ud800":true')),
    # gossip naming a server id that is a list (unhashable)
    "route_gossip_server_id_list": ("route", _ROUTE_CONNECT + _route_info()
                                    + _route_info(server_id=b'["x"]')),
    # a lone surrogate in the CONNECT's cluster name, echoed in the -ERR
    "route_connect_cluster_lone_surrogate": (
        "route", _ROUTE_CONNECT.replace(b'"FUZZ"', b'"\\udc00x"') + b"PING\r\n"),
    # ws_connect_urls a number: iterated for the clients' connect_urls
    "route_info_ws_connect_urls_number": ("route", _ROUTE_CONNECT
                                          + _route_info(b',"ws_connect_urls":1'))
}  # fmt: skip


@pytest.mark.parametrize("name", REGRESSIONS)
def test_found_by_the_fuzzer(fuzz_server, name):
    protocol, data = REGRESSIONS[name]
    fuzz_server.feed(protocol, [data])
    fuzz_server.check()
