"""Route handshake rules: our INFO/CONNECT fields and the acceptor's checks, as nats-server 2.15."""

from __future__ import annotations

import json

import pytest

from trionats.protocol.encode import go_json
from trionats.protocol.route_handshake import (
    CLUSTER_NAME_CONFLICT,
    INCORRECT_PORT,
    ROUTE_PORT_ERROR,
    SAME_NAME,
    SELF,
    WRONG_GATEWAY,
    check_route_connect,
    check_route_info,
    route_connect,
    route_info,
)


def test_route_info_is_the_recipe_that_interoperates_with_nats_server():
    """route-protocol.md section 13: the INFO a Python peer used against 2.15.1."""
    info = route_info(
        server_id="NPY", server_name="py1", host="127.0.0.1", port=17222, cluster="C1",
        dynamic=False, connect_urls=["127.0.0.1:17001"],
    )  # fmt: skip
    assert go_json(info) == (
        '{"server_id":"NPY","server_name":"py1","version":"2.15.1","proto":3,'
        '"host":"127.0.0.1","port":17222,"headers":true,"max_payload":1048576,'
        '"cluster":"C1","connect_urls":["127.0.0.1:17001"]}'
    )
    for forbidden in ("route_pool_size", "route_pool_idx", "compression", "lnoc", "lang"):
        assert forbidden not in info


def test_route_info_optional_fields():
    info = route_info(
        server_id="N", server_name="a", host="0.0.0.0", port=6222, cluster="abc", dynamic=True,
        connect_urls=[], auth_required=True, ip="nats-route://10.0.0.1:6222/",
    )  # fmt: skip
    assert info["auth_required"] is True and info["cluster_dynamic"] is True
    assert info["ip"] == "nats-route://10.0.0.1:6222/"
    assert "connect_urls" not in info


def test_route_connect_matches_the_recipe():
    connect = route_connect(server_id="NPY", cluster="C1", dynamic=False)
    assert go_json(connect) == (
        '{"echo":true,"verbose":false,"pedantic":false,"tls_required":false,'
        '"headers":true,"name":"NPY","cluster":"C1"}'
    )
    with_auth = route_connect(server_id="NPY", cluster="C1", dynamic=True, user="r", password="p")
    assert (with_auth["user"], with_auth["pass"], with_auth["cluster_dynamic"]) == ("r", "p", True)
    assert "lang" not in with_auth


GO_CONNECT = json.loads(
    '{"echo":true,"verbose":false,"pedantic":false,"tls_required":false,"headers":true,'
    '"name":"NGO","cluster":"C1","lnoc":true,"ln":true}'
)


def test_nats_servers_connect_is_accepted():
    verdict = check_route_connect(GO_CONNECT, cluster="C1", dynamic=False)
    assert verdict.error is None and verdict.adopt_cluster is None
    assert (verdict.remote_id, verdict.headers) == ("NGO", True)


@pytest.mark.parametrize(
    ("fields", "error", "reason"),
    [
        ({**GO_CONNECT, "lang": "python"}, ROUTE_PORT_ERROR, INCORRECT_PORT),
        (
            {**GO_CONNECT, "gateway": "G"},
            'Rejecting connection from gateway "G" on the Route port',
            WRONG_GATEWAY,
        ),
        (
            {**GO_CONNECT, "cluster": "C2"},
            'Rejecting connection, cluster name "C2" does not match "C1"',
            CLUSTER_NAME_CONFLICT,
        ),
        (
            {k: v for k, v in GO_CONNECT.items() if k != "cluster"},
            'Rejecting connection, cluster name "" does not match "C1"',
            CLUSTER_NAME_CONFLICT,
        ),
    ],
)
def test_refused_connects(fields, error, reason):
    verdict = check_route_connect(fields, cluster="C1", dynamic=False)
    assert (verdict.error, verdict.reason) == (error, reason)


def test_lang_is_judged_before_the_cluster_name():
    fields = {**GO_CONNECT, "lang": "go", "cluster": "other"}
    assert check_route_connect(fields, cluster="C1", dynamic=False).error == ROUTE_PORT_ERROR


def test_a_dynamic_name_yields_to_a_configured_one():
    verdict = check_route_connect({**GO_CONNECT, "cluster": "PYC"}, cluster="zzz", dynamic=True)
    assert (verdict.error, verdict.adopt_cluster, verdict.adopt_static) == (None, "PYC", True)


def test_two_dynamic_names_keep_the_one_that_sorts_higher():
    theirs = {**GO_CONNECT, "cluster": "bbb", "cluster_dynamic": True}
    higher = check_route_connect(theirs, cluster="aaa", dynamic=True)
    assert (higher.adopt_cluster, higher.adopt_static) == ("bbb", False)
    lower = check_route_connect(theirs, cluster="ccc", dynamic=True)
    assert lower.error == 'Rejecting connection, cluster name "bbb" does not match "ccc"'


def test_no_headers_when_either_side_lacks_them():
    assert not check_route_connect(GO_CONNECT, cluster="C1", dynamic=False,
                                   headers_supported=False).headers  # fmt: skip
    no_headers = {**GO_CONNECT, "headers": False}
    assert not check_route_connect(no_headers, cluster="C1", dynamic=False).headers


def test_route_info_checks():
    assert check_route_info({"server_id": "ME"}, server_id="ME", server_name="a") == SELF
    assert check_route_info(
        {"server_id": "OTHER", "server_name": "a"}, server_id="ME", server_name="a"
    ) == SAME_NAME
    assert check_route_info(
        {"server_id": "OTHER", "server_name": "b"}, server_id="ME", server_name="a"
    ) is None
