"""The JetStream API's errors: nats-server's codes, err_codes and descriptions (errors.json)."""

from __future__ import annotations


class ApiError(Exception):
    """An API error reply: `{"error": {"code", "err_code", "description"}}`."""

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.err_code = err_code
        self.description = description

    def json(self) -> dict:
        return {"code": self.code, "err_code": self.err_code, "description": self.description}


def not_enabled() -> ApiError:
    return ApiError(503, 10076, "JetStream not enabled")


def not_enabled_for_account() -> ApiError:
    return ApiError(503, 10039, "JetStream not enabled for account")


def bad_request() -> ApiError:
    return ApiError(400, 10003, "bad request")


def invalid_json(reason: str) -> ApiError:
    return ApiError(400, 10025, f"invalid JSON: {reason}")


def not_empty_request() -> ApiError:
    return ApiError(400, 10038, "expected an empty request payload")


def stream_not_found() -> ApiError:
    return ApiError(404, 10059, "stream not found")


def stream_name_exists() -> ApiError:
    return ApiError(400, 10058, "stream name already in use with a different configuration")


def stream_mismatch() -> ApiError:
    return ApiError(400, 10056, "stream name in subject does not match request")


def stream_invalid_config(reason: str) -> ApiError:
    return ApiError(500, 10052, reason)


def subjects_overlap() -> ApiError:
    return ApiError(400, 10065, "subjects overlap with an existing stream")


def replicas_not_supported() -> ApiError:
    return ApiError(500, 10074, "replicas > 1 not supported in non-clustered mode")


def maximum_streams() -> ApiError:
    return ApiError(400, 10027, "maximum number of streams reached")


def no_message_found() -> ApiError:
    return ApiError(404, 10037, "no message found")


def sequence_not_found(seq: int) -> ApiError:
    return ApiError(400, 10043, f"sequence {seq} not found")


def stream_sealed() -> ApiError:
    return ApiError(400, 10109, "invalid operation on sealed stream")


def stream_update(reason: str) -> ApiError:
    return ApiError(500, 10069, reason)


def msg_delete_failed(reason: str) -> ApiError:
    return ApiError(500, 10057, reason)


def stream_purge_failed(reason: str) -> ApiError:
    return ApiError(500, 10110, reason)


def stream_limits(reason: str) -> ApiError:
    return ApiError(500, 10053, reason)


def store_failed(reason: str) -> ApiError:
    return ApiError(503, 10077, reason)


def max_bytes_required() -> ApiError:
    return ApiError(400, 10113, "account requires a stream config to have max bytes set")


# --- publish acknowledgements (PubAck errors) ----------------------------------------------


def wrong_last_sequence(seq: int) -> ApiError:
    return ApiError(400, 10071, f"wrong last sequence: {seq}")


def wrong_last_msg_id(msg_id: str) -> ApiError:
    return ApiError(400, 10070, f"wrong last msg ID: {msg_id}")


def stream_not_match() -> ApiError:
    return ApiError(400, 10060, "expected stream does not match")


def message_too_big() -> ApiError:
    return ApiError(400, 10054, "message size exceeds maximum allowed")


def header_too_big() -> ApiError:
    return ApiError(400, 10097, "header size exceeds maximum allowed of 64k")


# --- consumers -----------------------------------------------------------------------------


def consumer_not_found() -> ApiError:
    return ApiError(404, 10014, "consumer not found")


def consumer_name_exists() -> ApiError:
    return ApiError(400, 10013, "consumer name already in use")


def consumer_create(reason: str) -> ApiError:
    return ApiError(500, 10012, reason)


def consumer_durable_mismatch() -> ApiError:
    return ApiError(400, 10017, "consumer name in subject does not match durable name in request")


def consumer_filter_mismatch() -> ApiError:
    return ApiError(
        400, 10131, "Consumer create request did not match filtered subject from create subject"
    )


def maximum_consumers() -> ApiError:
    return ApiError(400, 10026, "maximum consumers limit reached")


def invalid_policy(reason: str) -> ApiError:
    return ApiError(400, 10094, reason)
