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

#: The API subjects served (subscribed in each account), with `*` for a stream's name.
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
)


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
        }

    def handle(self, account: JSAccount | None, subject: str, payload: bytes) -> dict | None:
        """The response to one request (None: not an API subject served here)."""
        rest = subject[len(PREFIX):]
        kind, _, name = rest.rpartition(".")
        route = self.routes.get(rest) or self.routes.get(kind)
        if route is None:
            return None
        if rest in self.routes:
            name = ""
        response_type, handler = route
        body: dict = {"type": _TYPE + response_type}
        try:
            if account is None:
                raise errors.not_enabled_for_account()
            account.api_total += 1
            body |= handler(account, name, payload)
        except ApiError as error:
            if account is not None:
                account.api_errors += 1
            body["error"] = error.json()
            if response_type == "stream_info_response":
                body |= {"total": 0, "offset": 0, "limit": 0}
        return body

    # --- account -----------------------------------------------------------------------

    def info(self, account: JSAccount, _name: str, _payload: bytes) -> dict:
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
        _decode(payload, _STREAM_INFO)
        stream = self._stream(account, name)
        body = {"total": 0, "offset": 0, "limit": 0} | self._stream_body(stream)
        body["cluster"] = {"leader": self.service.server.name}
        body["ts"] = go_time(time.time_ns())
        return body

    def stream_names(self, account: JSAccount, _name: str, payload: bytes) -> dict:
        request = _decode(payload, _PAGED)
        names = sorted(self._matching(account, request.get("subject", "")))
        offset = max(request.get("offset", 0), 0)
        page = names[offset: offset + defaults.JS_NAMES_PAGE]
        return {"total": len(names), "offset": offset, "limit": defaults.JS_NAMES_PAGE,
                "streams": page or None}  # fmt: skip

    def stream_list(self, account: JSAccount, _name: str, payload: bytes) -> dict:
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
