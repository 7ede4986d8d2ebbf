"""The Go structs nats-server decodes its peers' JSON into, as `gojson` field types.

A CONNECT or INFO is only acted on once it decodes into these the way nats-server's
json.Unmarshal would; a member of the wrong type is an error there (nats-server closes the
connection), so it is one here. Each struct lists the fields nats-server 2.15 declares, with
their `json:` tags; fields trionats does not use are listed too, since their types are checked.
"""

from __future__ import annotations

from .gojson import BOOL, BYTES, INT, INT32, STR, STR_LIST, UINT8, UINT64, Struct

#: auth.go SubjectPermission (a route's or leaf node's import/export).
SUBJECT_PERMISSION = Struct({"allow": STR_LIST, "deny": STR_LIST})

#: client.go ClientOpts: a CONNECT from any connection (routes decode it first, too).
CLIENT_OPTS = Struct(
    {
        "echo": BOOL,
        "verbose": BOOL,
        "pedantic": BOOL,
        "tls_required": BOOL,
        "nkey": STR,
        "jwt": STR,
        "sig": STR,
        "auth_token": STR,
        "user": STR,
        "pass": STR,
        "name": STR,
        "lang": STR,
        "version": STR,
        "protocol": INT,
        "account": STR,
        "new_account": BOOL,
        "headers": BOOL,
        "no_responders": BOOL,
        "import": SUBJECT_PERMISSION,
        "export": SUBJECT_PERMISSION,
        "remote_account": STR,
        "proxy_sig": STR,
    }
)

#: route.go connectInfo: a route's CONNECT, decoded after ClientOpts.
ROUTE_CONNECT = Struct(
    {
        "echo": BOOL,
        "verbose": BOOL,
        "pedantic": BOOL,
        "user": STR,
        "pass": STR,
        "tls_required": BOOL,
        "headers": BOOL,
        "name": STR,
        "cluster": STR,
        "cluster_dynamic": BOOL,
        "lnoc": BOOL,
        "lnocu": BOOL,
        "ln": BOOL,  # 2.15.1 (not in older sources); found by probing the binary
        "gateway": STR,
    }
)

#: server.go Info: an INFO from a client, a route (its own or gossip) or a leaf node.
INFO = Struct(
    {
        "server_id": STR,
        "server_name": STR,
        "version": STR,
        "proto": INT,
        "git_commit": STR,
        "go": STR,
        "host": STR,
        "port": INT,
        "headers": BOOL,
        "auth_required": BOOL,
        "tls_required": BOOL,
        "tls_verify": BOOL,
        "tls_available": BOOL,
        "max_payload": INT32,
        "jetstream": BOOL,
        "ip": STR,
        "client_id": UINT64,
        "client_ip": STR,
        "nonce": STR,
        "cluster": STR,
        "cluster_dynamic": BOOL,
        "domain": STR,
        "connect_urls": STR_LIST,
        "ws_connect_urls": STR_LIST,
        "ldm": BOOL,
        "compression": STR,
        "connect_info": BOOL,
        "remote_account": STR,
        "acc_is_sys": BOOL,
        "api_lvl": INT,
        "import": SUBJECT_PERMISSION,
        "export": SUBJECT_PERMISSION,
        "lnoc": BOOL,
        "lnocu": BOOL,
        "ln": BOOL,  # 2.15.1, as in connectInfo
        "info_on_connect": BOOL,
        "route_pool_size": INT,
        "route_pool_idx": INT,
        "route_account": STR,
        "route_acc_add_reqid": STR,
        "gossip_mode": UINT8,
        "gateway": STR,
        "gateway_urls": STR_LIST,
        "gateway_url": STR,
        "gateway_cmd": UINT8,
        "gateway_cmd_payload": BYTES,
        "gateway_nrp": BOOL,
        "gateway_iom": BOOL,
        "leafnode_urls": STR_LIST,
        "xkey": STR,
    }
)

__all__ = ["CLIENT_OPTS", "INFO", "ROUTE_CONNECT", "SUBJECT_PERMISSION"]
