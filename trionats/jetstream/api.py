"""The `$JS.API.>` requests of one account: each subject's handler and nats-server's JSON
shapes (its response types, field order and error codes)."""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING

from .. import defaults
from ..monitor.snapshots import rfc3339
from ..protocol import gojson
from . import config as stream_config
from . import errors
from .errors import ApiError

if TYPE_CHECKING:
    from .account import JSAccount
    from .service import JetStream

PREFIX = "$JS.API."
_TYPE = "io.nats.jetstream.api.v1."

#: The API subjects served (subscribed in each account). CONSUMER.MSG.NEXT is served by
#: the consumer itself (service.py), not answered here.
SUBJECTS = (
    "$JS.API.INFO",
    "$JS.API.STREAM.CREATE.*",
    "$JS.API.STREAM.UPDATE.*",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.STREAM.DELETE.*",
    "$JS.API.STREAM.PURGE.*",
    "$JS.API.STREAM.MSG.DELETE.*",
    "$JS.API.STREAM.MSG.GET.*",
    "$JS.API.CONSUMER.CREATE.*",
    "$JS.API.CONSUMER.CREATE.*.>",
    "$JS.API.CONSUMER.DURABLE.CREATE.*.*",
    "$JS.API.CONSUMER.INFO.*.*",
    "$JS.API.CONSUMER.DELETE.*.*",
    "$JS.API.CONSUMER.NAMES.*",
    "$JS.API.CONSUMER.LIST.*",
    "$JS.API.CONSUMER.PAUSE.*.*",
)
NEXT_PREFIX = "$JS.API.CONSUMER.MSG.NEXT."
#: nats-server's JSMaxSubjectDetails: subjects listed in one STREAM.INFO reply (no paging
#: past it here).
MAX_SUBJECT_DETAILS = 100_000


def parse_time(text: str) -> int:
    """An RFC 3339 time (Go's, nanoseconds allowed) as Unix nanoseconds."""
    import datetime

    head, _, rest = text.partition(".")
    fraction = ""
    zone = rest if rest else head[19:]
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, zone = rest[:digits], rest[digits:]
        head = head[:19]
    else:
        head = head[:19]
    stamp = datetime.datetime.fromisoformat(head + (zone.replace("Z", "+00:00") or "+00:00"))
    return int(stamp.timestamp()) * 1_000_000_000 + int((fraction + "000000000")[:9])


def route(subject: str) -> tuple[str, tuple] | None:
    """An API subject as (operation, its name tokens): ("CONSUMER.INFO", (stream, name))."""
    tokens = subject[len(PREFIX):].split(".")
    head = tokens[0]
    if head == "INFO" and len(tokens) == 1:
        return "INFO", ()
    if head == "STREAM" and len(tokens) >= 2:
        if tokens[1] in ("NAMES", "LIST") and len(tokens) == 2:
            return "STREAM." + tokens[1], ()
        if tokens[1] == "MSG" and len(tokens) == 4:
            return "STREAM.MSG." + tokens[2], (tokens[3],)
        if len(tokens) == 3:
            return "STREAM." + tokens[1], (tokens[2],)
    if head == "CONSUMER" and len(tokens) >= 3:
        operation = tokens[1]
        if operation == "DURABLE" and len(tokens) == 5 and tokens[2] == "CREATE":
            return "CONSUMER.DURABLE.CREATE", (tokens[3], tokens[4])
        if operation == "CREATE":
            name = tokens[3] if len(tokens) > 3 else ""
            return "CONSUMER.CREATE", (tokens[2], name, ".".join(tokens[4:]))
        if operation in ("INFO", "DELETE", "PAUSE") and len(tokens) == 4:
            return "CONSUMER." + operation, (tokens[2], tokens[3])
        if operation in ("NAMES", "LIST") and len(tokens) == 3:
            return "CONSUMER." + operation, (tokens[2],)
    return None


def go_time(ns: int) -> str:
    """A time as Go's JSON writes it; the zero time for 0."""
    return rfc3339(ns) if ns else "0001-01-01T00:00:00Z"


def _decode(payload: bytes, struct: gojson.Struct) -> dict:
    if not payload.strip():
        return {}
    try:
        return gojson.decode_struct(payload, struct)
    except ValueError as error:
        raise errors.invalid_json(str(error)) from None


_PAGED = gojson.Struct({"offset": gojson.INT, "subject": gojson.STR})
_PURGE = gojson.Struct({"filter": gojson.STR, "seq": gojson.UINT64, "keep": gojson.UINT64})
_MSG_DELETE = gojson.Struct({"seq": gojson.UINT64, "no_erase": gojson.BOOL})
_MSG_GET = gojson.Struct({"seq": gojson.UINT64, "last_by_subj": gojson.STR,
                          "next_by_subj": gojson.STR})  # fmt: skip
_PAUSE = gojson.Struct({"pause_until": gojson.STR})
_STREAM_INFO = gojson.Struct({"deleted_details": gojson.BOOL, "subjects_filter": gojson.STR,
                              "offset": gojson.INT})  # fmt: skip


class Api:
    """The handlers: each takes (account, the subject's last token, payload) and returns
    the response body; an ApiError becomes the same response type with its `error`."""

    def __init__(self, service: JetStream) -> None:
        self.service = service
        self.routes = {
            "INFO": ("account_info_response", self.info),
            "STREAM.CREATE": ("stream_create_response", self.stream_create),
            "STREAM.UPDATE": ("stream_update_response", self.stream_update),
            "STREAM.NAMES": ("stream_names_response", self.stream_names),
            "STREAM.LIST": ("stream_list_response", self.stream_list),
            "STREAM.INFO": ("stream_info_response", self.stream_info),
            "STREAM.DELETE": ("stream_delete_response", self.stream_delete),
            "STREAM.PURGE": ("stream_purge_response", self.stream_purge),
            "STREAM.MSG.DELETE": ("stream_msg_delete_response", self.msg_delete),
            "STREAM.MSG.GET": ("stream_msg_get_response", self.msg_get),
            "CONSUMER.CREATE": ("consumer_create_response", self.consumer_create),
            "CONSUMER.DURABLE.CREATE": ("consumer_create_response", self.durable_create),
            "CONSUMER.INFO": ("consumer_info_response", self.consumer_info),
            "CONSUMER.DELETE": ("consumer_delete_response", self.consumer_delete),
            "CONSUMER.NAMES": ("consumer_names_response", self.consumer_names),
            "CONSUMER.LIST": ("consumer_list_response", self.consumer_list),
            "CONSUMER.PAUSE": ("consumer_pause_response", self.consumer_pause),
        }

    def handle(self, account: JSAccount | None, subject: str, payload: bytes) -> dict | None:
        """The response to one request (None: not an API subject served here)."""
        found = route(subject)
        if found is None or found[0] not in self.routes:
            return None
        operation, names = found
        response_type, handler = self.routes[operation]
        body: dict = {"type": _TYPE + response_type}
        try:
            if account is None:
                raise errors.not_enabled_for_account()
            account.api_total += 1
            body |= handler(account, *names, payload)
        except ApiError as error:
            if account is not None:
                account.api_errors += 1
            body["error"] = error.json()
            # (the response's own fields that Go writes even beside an error)
            if response_type == "stream_info_response":
                body |= {"total": 0, "offset": 0, "limit": 0}
            elif response_type == "consumer_pause_response":
                body |= {"paused": False, "pause_until": go_time(0)}
        return body

    # --- account -----------------------------------------------------------------------

    def info(self, account: JSAccount, _payload: bytes) -> dict:
        memory, storage = account.usage()
        body = {"memory": memory, "storage": storage, "reserved_memory": 0,
                "reserved_storage": 0, "streams": len(account.streams),
                "consumers": account.consumer_count(), "limits": account.limits_json()}  # fmt: skip
        domain = self.service.domain
        if domain:
            body["domain"] = domain
        # (nats-server reads the figures before counting this request)
        body["api"] = {"level": defaults.JS_API_LEVEL, "total": account.api_total - 1,
                       "errors": account.api_errors}  # fmt: skip
        return body

    # --- streams -------------------------------------------------------------------------

    def _stream(self, account: JSAccount, name: str):
        stream = account.streams.get(name)
        if stream is None:
            raise errors.stream_not_found()
        return stream

    def _config_request(self, name: str, payload: bytes) -> dict:
        requested = stream_config.decode(payload) if payload.strip() else {}
        if requested.get("name", name) != name or not payload.strip():
            raise errors.stream_mismatch()
        return requested

    def stream_create(self, account: JSAccount, name: str, payload: bytes) -> dict:
        requested = self._config_request(name, payload)
        config = stream_config.check(requested)
        existing = account.streams.get(name)
        if existing is not None:
            if existing.config != config:
                raise errors.stream_name_exists()
            stream = existing
        else:
            account.check_new(config)
            stream = self.service.create_stream(account, config)
        return self._stream_body(stream) | {"ts": go_time(time.time_ns()), "did_create": True}

    def stream_update(self, account: JSAccount, name: str, payload: bytes) -> dict:
        requested = self._config_request(name, payload)
        stream = self._stream(account, name)
        config = stream_config.check(requested)
        stream_config.check_update(stream.config, config)
        account.check_new(config, replacing=stream)
        self.service.update_stream(account, stream, config)
        return self._stream_body(stream) | {"ts": go_time(time.time_ns())}

    def _stream_body(self, stream, *, versions: bool = True) -> dict:
        config = stream_config.with_versions(stream.config) if versions else stream.config
        return {"config": config, "created": go_time(stream.created_ns), "state": stream.state()}

    def stream_info(self, account: JSAccount, name: str, payload: bytes) -> dict:
        request = _decode(payload, _STREAM_INFO)
        stream = self._stream(account, name)
        body = {"total": 0, "offset": 0, "limit": 0} | self._stream_body(stream)
        subjects = request.get("subjects_filter", "")
        body["state"] = stream.state(deleted=request.get("deleted_details", False),
                                     subjects=subjects)  # fmt: skip
        if body["state"].get("subjects"):
            body |= {"total": len(body["state"]["subjects"]),
                     "offset": max(request.get("offset", 0), 0), "limit": MAX_SUBJECT_DETAILS}  # fmt: skip
        body["cluster"] = {"leader": self.service.server.name}
        body["ts"] = go_time(time.time_ns())
        return body

    def stream_names(self, account: JSAccount, payload: bytes) -> dict:
        request = _decode(payload, _PAGED)
        names = sorted(self._matching(account, request.get("subject", "")))
        offset = max(request.get("offset", 0), 0)
        page = names[offset: offset + defaults.JS_NAMES_PAGE]
        return {"total": len(names), "offset": offset, "limit": defaults.JS_NAMES_PAGE,
                "streams": page or None}  # fmt: skip

    def stream_list(self, account: JSAccount, payload: bytes) -> dict:
        request = _decode(payload, _PAGED)
        names = sorted(self._matching(account, request.get("subject", "")))
        offset = max(request.get("offset", 0), 0)
        page = names[offset: offset + defaults.JS_LIST_PAGE]
        now = go_time(time.time_ns())
        infos = [self._stream_body(account.streams[n], versions=False) | {"ts": now} for n in page]
        return {"total": len(names), "offset": offset, "limit": defaults.JS_LIST_PAGE,
                "streams": infos}  # fmt: skip

    def _matching(self, account: JSAccount, subject: str):
        for name, stream in account.streams.items():
            if not subject or any(stream_config.subjects_collide(subject, own)
                                  for own in stream.config["subjects"]):  # fmt: skip
                yield name

    def stream_delete(self, account: JSAccount, name: str, payload: bytes) -> dict:
        stream = self._stream(account, name)
        self.service.delete_stream(account, stream)
        return {"success": True}

    def stream_purge(self, account: JSAccount, name: str, payload: bytes) -> dict:
        request = _decode(payload, _PURGE)
        stream = self._stream(account, name)
        if stream.config["sealed"]:
            raise errors.stream_sealed()
        if stream.config["deny_purge"]:
            raise errors.ApiError(400, 10003, "bad request")
        if request.get("seq") and request.get("keep"):
            raise errors.ApiError(400, 10003, "bad request")
        removed = stream.purge(request.get("filter", ""), request.get("seq", 0),
                               request.get("keep", 0))  # fmt: skip
        self.service.removed(stream, removed)
        return {"success": True, "purged": len(removed)}

    def msg_delete(self, account: JSAccount, name: str, payload: bytes) -> dict:
        request = _decode(payload, _MSG_DELETE)
        stream = self._stream(account, name)
        if stream.config["sealed"]:
            raise errors.stream_sealed()
        if stream.config["deny_delete"]:
            raise errors.ApiError(400, 10003, "bad request")
        seq = request.get("seq", 0)
        if not stream.delete(seq):
            raise errors.msg_delete_failed("no message found")
        self.service.removed(stream, [seq])
        return {"success": True}

    def msg_get(self, account: JSAccount, name: str, payload: bytes) -> dict:
        request = _decode(payload, _MSG_GET)
        stream = self._stream(account, name)
        seq = find_message(stream, request)
        subject, hdr, data, ts = stream.msgs[seq]
        message = {"subject": subject, "seq": seq}
        if hdr:
            message["hdrs"] = base64.b64encode(hdr).decode()
        if data:
            message["data"] = base64.b64encode(data).decode()
        message["time"] = go_time(ts)
        return {"message": message}


    # --- consumers -----------------------------------------------------------------------

    def consumer_create(self, account: JSAccount, stream_name: str, name: str, filter_: str,
                        payload: bytes) -> dict:  # fmt: skip
        request = self._consumer_request(stream_name, payload)
        config = request.get("config") or {}
        if not name and config.get("durable_name"):
            raise errors.ApiError(400, 10020, "consumer expected to be ephemeral but a durable "
                                              "name was set in request")  # fmt: skip
        if name:
            if config.get("name") and config["name"] != name:
                raise errors.ApiError(400, 10017, "consumer name in subject does not match "
                                                  "durable name in request")  # fmt: skip
            if config.get("durable_name") and config["durable_name"] != name:
                raise errors.consumer_durable_mismatch()
            config["name"] = name
        if filter_ and filter_ != config.get("filter_subject", ""):
            raise errors.consumer_filter_mismatch()
        return self._create(account, stream_name, config, request.get("action", ""),
                            durable=bool(config.get("durable_name")))  # fmt: skip

    def durable_create(self, account: JSAccount, stream_name: str, durable: str,
                       payload: bytes) -> dict:  # fmt: skip
        request = self._consumer_request(stream_name, payload)
        config = request.get("config") or {}
        if config.get("durable_name") != durable:
            raise errors.consumer_durable_mismatch()
        return self._create(account, stream_name, config, request.get("action", ""), durable=True)

    def _consumer_request(self, stream_name: str, payload: bytes) -> dict:
        from .consumer import decode_create

        if not payload.strip():
            raise errors.ApiError(400, 10025, "invalid JSON: unexpected end of JSON input")
        request = decode_create(payload)
        if request.get("stream_name", "") != stream_name:
            raise errors.stream_mismatch()
        return request

    def _create(self, account: JSAccount, stream_name: str, config: dict, action: str,
                *, durable: bool) -> dict:  # fmt: skip
        from .consumer import check

        stream = self._stream(account, stream_name)
        checked = check(config, stream, durable=durable)
        existing = stream.consumers.get(checked.get("name", ""))
        if existing is not None:
            if action == "create" and existing.config != checked:
                raise errors.consumer_name_exists()
            if existing.config != checked:
                if action != "update" and checked["deliver_policy"] != existing.config["deliver_policy"]:
                    raise errors.ApiError(400, 10012, "deliver policy can not be updated")
                self.service.update_consumer(existing, checked)
            consumer = existing
        else:
            if action == "update":
                raise errors.ApiError(404, 10149, "consumer does not exist")
            limit = stream.config["max_consumers"]
            if 0 <= limit <= len(stream.consumers):
                raise errors.maximum_consumers()
            if 0 <= account.limits.max_consumers <= account.consumer_count():
                raise errors.maximum_consumers()
            consumer = self.service.create_consumer(account, stream, checked, durable=durable)
        return self.consumer_body(consumer) | {"ts": go_time(time.time_ns())}

    def consumer_body(self, consumer, *, versions: bool = True) -> dict:
        config = stream_config.with_versions(consumer.config) if versions else consumer.config
        delivered = {"consumer_seq": consumer.dseq, "stream_seq": consumer.sseq}
        if consumer.last_delivered_ns:
            delivered["last_active"] = go_time(consumer.last_delivered_ns)
        floor = {"consumer_seq": consumer.floor_dseq, "stream_seq": consumer.floor_sseq}
        if consumer.last_ack_ns:
            floor["last_active"] = go_time(consumer.last_ack_ns)
        body = {"stream_name": consumer.stream.name, "name": consumer.name,
                "created": go_time(consumer.created_ns), "config": config,
                "delivered": delivered, "ack_floor": floor,
                "num_ack_pending": len(consumer.pending),
                "num_redelivered": consumer.num_redelivered(),
                "num_waiting": sum(1 for w in consumer.waiting if w is not consumer.push),
                "num_pending": consumer.num_pending()}  # fmt: skip
        remaining = consumer.paused()
        if remaining:
            body |= {"paused": True, "pause_remaining": remaining}
        return body

    def _consumer(self, account: JSAccount, stream_name: str, name: str):
        stream = self._stream(account, stream_name)
        consumer = stream.consumers.get(name)
        if consumer is None:
            raise errors.consumer_not_found()
        return consumer

    def consumer_info(self, account: JSAccount, stream_name: str, name: str, payload: bytes) -> dict:
        consumer = self._consumer(account, stream_name, name)
        return self.consumer_body(consumer) | {"ts": go_time(time.time_ns())}

    def consumer_delete(self, account: JSAccount, stream_name: str, name: str, payload: bytes) -> dict:
        consumer = self._consumer(account, stream_name, name)
        self.service.delete_consumer(consumer)
        return {"success": True}

    def consumer_pause(self, account: JSAccount, stream_name: str, name: str, payload: bytes) -> dict:
        request = _decode(payload, _PAUSE)
        consumer = self._consumer(account, stream_name, name)
        config = dict(consumer.config)
        config.pop("pause_until", None)
        until = 0
        if request.get("pause_until"):
            try:
                until = parse_time(request["pause_until"])
            except ValueError:
                raise errors.invalid_json(f'parsing time "{request["pause_until"]}"') from None
            config["pause_until"] = go_time(until)
        # A pause needs API level 1 (nats-server's setStaticConsumerMetadata).
        metadata = dict(config["metadata"])
        metadata["_nats.req.level"] = "1" if until else "0"
        config["metadata"] = metadata
        self.service.update_consumer(consumer, config)
        body = {"paused": False, "pause_until": go_time(until)}
        remaining = consumer.paused()
        if remaining:
            body |= {"paused": True, "pause_remaining": remaining}
        return body

    def consumer_names(self, account: JSAccount, stream_name: str, payload: bytes) -> dict:
        request = _decode(payload, _PAGED)
        stream = self._stream(account, stream_name)
        names = sorted(stream.consumers)
        offset = max(request.get("offset", 0), 0)
        page = names[offset: offset + defaults.JS_NAMES_PAGE]
        return {"total": len(names), "offset": offset, "limit": defaults.JS_NAMES_PAGE,
                "consumers": page}  # fmt: skip

    def consumer_list(self, account: JSAccount, stream_name: str, payload: bytes) -> dict:
        request = _decode(payload, _PAGED)
        stream = self._stream(account, stream_name)
        names = sorted(stream.consumers)
        offset = max(request.get("offset", 0), 0)
        page = names[offset: offset + defaults.JS_LIST_PAGE]
        now = go_time(time.time_ns())
        infos = [self.consumer_body(stream.consumers[n], versions=False) | {"ts": now} for n in page]
        return {"total": len(names), "offset": offset, "limit": defaults.JS_LIST_PAGE,
                "consumers": infos}  # fmt: skip


_DIRECT_GET = gojson.Struct({"seq": gojson.UINT64, "last_by_subj": gojson.STR,
                             "next_by_subj": gojson.STR, "batch": gojson.INT,
                             "no_hdr": gojson.BOOL})  # fmt: skip


def direct_get(stream, payload: bytes, last_for: str) -> tuple[bytes, bytes]:
    """A DIRECT.GET's reply: (headers, payload). Only single messages (no batches)."""
    from .headers import block, status

    if last_for:
        if payload.strip():
            return status(408, "Bad Request"), b""
        request = {"last_by_subj": last_for}
    else:
        try:
            request = gojson.decode_struct(payload, _DIRECT_GET) if payload.strip() else {}
        except ValueError:
            return status(408, "Bad Request"), b""
        if request.get("batch") or not request:
            return status(408, "Bad Request"), b""
    try:
        seq = find_message(stream, request)
    except ApiError:
        return status(404, "Message Not Found"), b""
    subject, hdr, data, ts = stream.msgs[seq]
    fields = {"Nats-Stream": stream.name, "Nats-Subject": subject, "Nats-Sequence": seq,
              "Nats-Time-Stamp": go_time(ts)}  # fmt: skip
    if request.get("no_hdr"):
        return b"", data
    return block(fields, hdr), data


def find_message(stream, request: dict) -> int:
    """The sequence a message get asks for (by sequence, last or next by subject)."""
    seq = request.get("seq", 0)
    last = request.get("last_by_subj", "")
    following = request.get("next_by_subj", "")
    if last and (seq or following):
        raise errors.bad_request()
    if last:
        found = stream.last_for(last)
    elif following:
        found = stream.next_for(following, seq)
    elif seq:
        found = seq if seq in stream.msgs else 0
    else:
        raise errors.bad_request()
    if not found:
        raise errors.no_message_found()
    return found
