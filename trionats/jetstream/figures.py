"""JetStream's monitoring figures: /jsz, the `jetstream` section of /varz, and its part of
/healthz, in nats-server's shapes (pure: read from the server's JetStream)."""

from __future__ import annotations

from .. import defaults
from ..monitor.snapshots import rfc3339

_NS = 1_000_000_000


def config_json(js) -> dict:
    """nats-server's JetStreamConfig (its empty omitempty fields left out)."""
    options = js.options
    config = {"max_memory": js.max_memory, "max_storage": js.max_store,
              "store_dir": str(js.store_dir),
              "sync_interval": round(options.sync_interval * _NS)}  # fmt: skip
    if options.sync_always:
        config["sync_always"] = True
    if js.domain:
        config["domain"] = js.domain
    if options.unique_tag:
        config["unique_tag"] = options.unique_tag
    if options.strict:
        config["strict"] = True
    return config


def stats_json(js) -> dict:
    """nats-server's JetStreamStats."""
    totals = js.totals()
    return {"memory": totals["memory"], "storage": totals["storage"], "reserved_memory": 0,
            "reserved_storage": 0, "accounts": len(js.accounts), "ha_assets": 0,
            "api": {"level": defaults.JS_API_LEVEL, "total": totals["api_total"],
                    "errors": totals["api_errors"]}}  # fmt: skip


def varz_section(server) -> dict:
    """/varz `jetstream`: {} when disabled, else config, stats and limits."""
    js = getattr(server, "jetstream", None)
    if js is None:
        return {}
    return {"config": config_json(js), "stats": stats_json(js),
            "limits": {"default_max_consumers": defaults.JS_DEFAULT_MAX_CONSUMERS}}  # fmt: skip


def jsz(server, query: dict, now_ns: int) -> dict:
    """/jsz with JetStream enabled (`accounts=true`: each account's figures)."""
    js = server.jetstream
    totals = js.totals()
    body = stats_json(js) | {"server_id": server.server_id, "now": rfc3339(now_ns),
                             "config": config_json(js),
                             "limits": {"default_max_consumers": defaults.JS_DEFAULT_MAX_CONSUMERS},
                             "streams": totals["streams"], "consumers": totals["consumers"],
                             "messages": totals["messages"], "bytes": totals["bytes"]}  # fmt: skip
    if _true(query.get("accounts")) or query.get("acc"):
        details = []
        for account in js.accounts.values():
            if query.get("acc") and account.name != query["acc"]:
                continue
            memory, storage = account.usage()
            details.append({"name": account.name, "id": account.name, "memory": memory,
                            "storage": storage, "reserved_memory": 0, "reserved_storage": 0,
                            "accounts": 0, "ha_assets": 0,
                            "api": {"level": 0, "total": account.api_total,
                                    "errors": account.api_errors}})  # fmt: skip
        if details:
            body["account_details"] = details
    body["total"] = len(js.accounts)
    return body


def healthz_problem(server) -> str:
    """Why /healthz fails for JetStream ("" when it is fine): configured but not started."""
    js = getattr(server, "jetstream", None)
    if js is not None and not js.started:
        return "JetStream not enabled (10076)"
    return ""


def _true(value) -> bool:
    return str(value).lower() in ("1", "true", "t")
