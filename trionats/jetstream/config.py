"""Stream configurations: a request's JSON read as nats-server's StreamConfig, checked and
completed with its defaults (checkStreamCfg), and written back in its field order."""

from __future__ import annotations

from .. import defaults
from ..protocol import gojson
from ..protocol.subjects import is_valid_subject
from . import errors

_NS = 1_000_000_000

#: nats-server's JSMaxNameLen, JSMaxDescriptionLen, JSMaxMetadataLen.
MAX_NAME_LEN = 255
MAX_DESCRIPTION_LEN = 4 * 1024
MAX_METADATA_LEN = 128 * 1024

_CONSUMER_LIMITS = gojson.Struct({"inactive_threshold": gojson.INT, "max_ack_pending": gojson.INT})

#: The StreamConfig fields trionats reads, with Go's types.
STREAM_CONFIG = gojson.Struct({
    "name": gojson.STR,
    "description": gojson.STR,
    "subjects": gojson.STR_LIST,
    "retention": gojson.STR,
    "max_consumers": gojson.INT,
    "max_msgs": gojson.INT,
    "max_bytes": gojson.INT,
    "max_age": gojson.INT,
    "max_msgs_per_subject": gojson.INT,
    "max_msg_size": gojson.INT32,
    "discard": gojson.STR,
    "storage": gojson.STR,
    "num_replicas": gojson.INT,
    "no_ack": gojson.BOOL,
    "duplicate_window": gojson.INT,
    "placement": gojson.ANY,
    "mirror": gojson.ANY,
    "sources": gojson.ANY,
    "compression": gojson.STR,
    "first_seq": gojson.UINT64,
    "subject_transform": gojson.ANY,
    "republish": gojson.ANY,
    "allow_direct": gojson.BOOL,
    "mirror_direct": gojson.BOOL,
    "discard_new_per_subject": gojson.BOOL,
    "sealed": gojson.BOOL,
    "deny_delete": gojson.BOOL,
    "deny_purge": gojson.BOOL,
    "allow_rollup_hdrs": gojson.BOOL,
    "consumer_limits": _CONSUMER_LIMITS,
    "allow_msg_ttl": gojson.BOOL,
    "subject_delete_marker_ttl": gojson.INT,
    "allow_msg_counter": gojson.BOOL,
    "allow_atomic": gojson.BOOL,
    "allow_msg_schedules": gojson.BOOL,
    "allow_batched": gojson.BOOL,
    "metadata": gojson.map_of(gojson.STR),
})  # fmt: skip

#: Features of StreamConfig trionats does not implement yet: a request using them is refused.
NOT_YET = ("placement", "mirror", "sources", "subject_transform", "republish",
           "allow_msg_counter", "allow_atomic", "allow_msg_schedules", "allow_batched",
           "subject_delete_marker_ttl")  # fmt: skip

_RETENTIONS = ("limits", "interest", "workqueue")
_DISCARDS = ("old", "new")
_STORAGES = ("file", "memory")
_COMPRESSIONS = ("none", "s2")


def decode(payload: bytes) -> dict:
    """A request body as StreamConfig; ApiError 10025 for what Go's decoder refuses."""
    try:
        config = gojson.decode_struct(payload, STREAM_CONFIG)
    except ValueError as error:
        raise errors.invalid_json(str(error)) from None
    # Go reads these enums with their own UnmarshalJSON: another word is a JSON error.
    for key, words in (("retention", _RETENTIONS), ("discard", _DISCARDS),
                       ("storage", _STORAGES), ("compression", _COMPRESSIONS)):  # fmt: skip
        value = config.get(key)
        if value is not None and value not in words and not (key == "compression" and value == ""):
            raise errors.invalid_json(f'can not unmarshal "{value}"')
    return config


def valid_name(name: str) -> bool:
    """nats-server's isValidName: no wildcards, separators, whitespace or path characters."""
    return bool(name) and not any(c in name for c in ".*> \t\r\n\f\\/")


def check(config: dict, *, pedantic: bool = False) -> dict:
    """A decoded StreamConfig checked and completed (nats-server's checkStreamCfg): the
    result has every field, in nats-server's order, as a response shows it."""
    name = config.get("name", "")
    if not valid_name(name):
        raise errors.stream_invalid_config(
            "stream name is required and can not contain '.', '*', '>', '\\', '/'"
        )
    if len(name) > MAX_NAME_LEN:
        raise errors.stream_invalid_config(f"stream name is too long, maximum allowed is {MAX_NAME_LEN}")
    if len(config.get("description") or "") > MAX_DESCRIPTION_LEN:
        raise errors.stream_invalid_config(
            f"stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
        )
    metadata = config.get("metadata") or {}
    if sum(len(k) + len(v) for k, v in metadata.items()) > MAX_METADATA_LEN:
        raise errors.stream_invalid_config(
            f"stream metadata exceeds maximum size of {MAX_METADATA_LEN} bytes"
        )
    for key in NOT_YET:
        if config.get(key):
            raise errors.stream_invalid_config(f"{key} is not supported by trionats yet")
    retention = config.get("retention") or "limits"
    if retention not in _RETENTIONS:
        raise errors.stream_invalid_config("invalid retention")
    discard = config.get("discard") or "old"
    if discard not in _DISCARDS:
        raise errors.stream_invalid_config("invalid discard policy")
    compression = config.get("compression") or "none"
    if compression not in _COMPRESSIONS:
        raise errors.stream_invalid_config("invalid compression")
    storage = config.get("storage") or "file"
    if storage not in _STORAGES:
        raise errors.stream_invalid_config("invalid storage type")
    replicas = config.get("num_replicas") or 1
    if replicas > 5:
        raise errors.stream_invalid_config("maximum replicas is 5")
    if replicas < 0:
        raise errors.ApiError(400, 10133, "replicas count cannot be negative")
    if replicas > 1:
        raise errors.replicas_not_supported()

    def unlimited(key: str) -> int:
        value = config.get(key) or 0
        return -1 if value <= 0 else value

    max_age = config.get("max_age") or 0
    if max_age < 0:
        raise errors.stream_invalid_config("max age can not be negative")
    if 0 < max_age < _NS // 10:
        raise errors.stream_invalid_config("max age needs to be >= 100ms")
    window = config.get("duplicate_window") or 0
    if window == 0:
        window = int(defaults.JS_DUPLICATE_WINDOW * _NS)
        if max_age and max_age < window:
            window = max_age
    if window < 0:
        raise errors.stream_invalid_config("duplicates window can not be negative")
    if max_age and window > max_age:
        raise errors.stream_invalid_config("duplicates window can not be larger then max age")
    if 0 < window < _NS // 10:
        raise errors.stream_invalid_config("duplicates window needs to be >= 100ms")
    if config.get("allow_rollup_hdrs") and config.get("deny_purge"):
        raise errors.stream_invalid_config("roll-ups require the purge permission")
    subjects = list(config.get("subjects") or [])
    if not subjects:
        subjects = [name]
    for index, subject in enumerate(subjects):
        if not is_valid_subject(subject.encode(), check_blanks=True):
            raise errors.stream_invalid_config("invalid subject")
        if subjects_collide(subject, "$JS.API.>") and not config.get("no_ack"):
            raise errors.stream_invalid_config(
                "subjects that overlap with jetstream api require no-ack to be true"
            )
        for other in subjects[index + 1:]:
            if subjects_collide(subject, other):
                raise errors.stream_invalid_config(f'subject "{subject}" overlaps with "{other}"')
    if config.get("discard_new_per_subject") and (discard != "new" or unlimited("max_msgs_per_subject") < 0):
        raise errors.stream_invalid_config(
            "discard new per subject requires discard new policy to be set"
        )
    out = {"name": name}
    if config.get("description"):
        out["description"] = config["description"]
    out |= {
        "subjects": subjects,
        "retention": retention,
        "max_consumers": unlimited("max_consumers"),
        "max_msgs": unlimited("max_msgs"),
        "max_bytes": unlimited("max_bytes"),
        "max_age": max_age,
        "max_msgs_per_subject": unlimited("max_msgs_per_subject"),
        "max_msg_size": unlimited("max_msg_size"),
        "discard": discard,
        "storage": storage,
        "num_replicas": replicas,
    }
    if config.get("no_ack"):
        out["no_ack"] = True
    out["duplicate_window"] = window
    out["compression"] = compression
    if config.get("first_seq"):
        out["first_seq"] = config["first_seq"]
    out["allow_direct"] = bool(config.get("allow_direct"))
    out["mirror_direct"] = bool(config.get("mirror_direct"))
    if config.get("discard_new_per_subject"):
        out["discard_new_per_subject"] = True
    for key in ("sealed", "deny_delete", "deny_purge", "allow_rollup_hdrs"):
        out[key] = bool(config.get(key))
    limits = config.get("consumer_limits") or {}
    out["consumer_limits"] = {k: v for k, v in limits.items() if v}
    out["allow_msg_ttl"] = bool(config.get("allow_msg_ttl"))
    metadata = dict(metadata)
    metadata["_nats.req.level"] = "0"
    out["metadata"] = dict(sorted(metadata.items()))  # (Go writes a map's keys sorted)
    return out


def subjects_collide(first: str, second: str) -> bool:
    """Could one subject match both filters (nats-server's SubjectsCollide)?"""
    a, b = first.split("."), second.split(".")
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        if x == ">" or y == ">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != y and x != "*" and y != "*":
            return False
    return True


def with_versions(config: dict) -> dict:
    """The configuration as a create/update/info reply shows it: the server's API level
    and version in its metadata (nats-server's setDynamicStreamMetadata)."""
    metadata = dict(config["metadata"])
    metadata["_nats.level"] = str(defaults.JS_API_LEVEL)
    metadata["_nats.ver"] = defaults.COMPAT_VERSION
    return config | {"metadata": dict(sorted(metadata.items()))}


#: What an update may not change (nats-server's checkStreamUpdate), with its words.
FIXED_ON_UPDATE = {
    "storage": "stream configuration update can not change storage type",
    "retention": "stream configuration update can not change retention policy",
}


def check_update(old: dict, new: dict) -> None:
    for key, text in FIXED_ON_UPDATE.items():
        if old[key] != new[key]:
            raise errors.stream_invalid_config(text)
    if old.get("sealed") and not new.get("sealed"):
        raise errors.stream_invalid_config("stream configuration update can not unseal a sealed stream")
    if old.get("deny_delete") and not new.get("deny_delete"):
        raise errors.stream_invalid_config(
            "stream configuration update can not cancel deny message deletes"
        )
    if old.get("deny_purge") and not new.get("deny_purge"):
        raise errors.stream_invalid_config("stream configuration update can not cancel deny purge")
