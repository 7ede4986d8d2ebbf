"""The -ERR texts sent to peers, the reasons a connection closes, and the exception types.

Texts match nats-server 2.15 byte for byte; tests assert them from here.
"""

from __future__ import annotations

# --- -ERR texts (inside the single quotes) ----------------------------------------------------

UNKNOWN_PROTOCOL = "Unknown Protocol Operation"
AUTH_VIOLATION = "Authorization Violation"
AUTH_TIMEOUT = "Authentication Timeout"
MAX_CONTROL_LINE = "maximum control line exceeded"
MAX_PAYLOAD = "Maximum Payload Violation"
BAD_CLIENT_PROTOCOL = "invalid client protocol"
NO_RESPONDERS_NEEDS_HEADERS = "no responders requires headers support"
MAX_CONNECTIONS = "maximum connections exceeded"
STALE_CONNECTION = "Stale Connection"
ROUTE_PORT = "attempted to connect to route port"
#: Leaf node refusals (nats-server's errors.go texts).
LEAF_PORT = "attempted to connect to leaf node port"
LEAF_SAME_CLUSTER = "remote leafnode has same cluster name"
LEAF_MIN_VERSION = "connection rejected since minimum version required is"
CLUSTER_NAME_SPACES = "cluster name cannot contain spaces"
INVALID_SUBJECT = "Invalid Subject"
INVALID_PUBLISH_SUBJECT = "Invalid Publish Subject"
INVALID_SUBSCRIPTION = "Invalid Subscription"  # a route's RS+ the sublist refuses
MAX_SUBSCRIPTIONS = "maximum subscriptions exceeded"
MAX_ACCOUNT_CONNECTIONS = "maximum account active connections exceeded"
USER_AUTH_EXPIRED = "User Authentication Expired"
ACCOUNT_AUTH_EXPIRED = "Account Authentication Expired"


def go_quote(text: bytes | str) -> str:
    """Go's %q of a string or []byte (strconv.Quote): how nats-server quotes the subjects,
    queues and sids its -ERR texts and log lines name.

    Printable characters stay as they are; `"` and `\\` are escaped; control characters
    and invalid UTF-8 bytes become `\\a`-style or `\\xNN` escapes, other non-printable
    characters `\\uNNNN` or `\\UNNNNNNNN`.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")  # invalid bytes -> U+DC80..U+DCFF
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"' or char == "\\":
            out.append("\\" + char)
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable():
            out.append(char)
        elif char in _GO_SHORT_ESCAPES:
            out.append(_GO_SHORT_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_SHORT_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v",
}  # fmt: skip


def publish_violation(subject: bytes | str) -> str:
    return f"Permissions Violation for Publish to {go_quote(subject)}"


def reply_violation(reply: bytes | str) -> str:
    return f"Permissions Violation for Publish with Reply of {go_quote(reply)}"


def subscribe_violation(subject: bytes | str, queue: bytes | str | None = None) -> str:
    if queue:
        return (
            f"Permissions Violation for Subscription to {go_quote(subject)}"
            f" using queue {go_quote(queue)}"
        )
    return f"Permissions Violation for Subscription to {go_quote(subject)}"


def too_many_tokens(subject: bytes | str) -> str:
    return f"Permissions Violation for Subscription to {go_quote(subject)}, too many tokens"


# --- close reasons (as nats-server names them in logs and /connz) -----------------------------


class Reason:
    CLIENT_CLOSED = "Client Closed"
    AUTH_TIMEOUT = "Authentication Timeout"
    AUTH_VIOLATION = "Authentication Failure"
    AUTH_EXPIRED = "Authentication Expired"
    MAX_ACCOUNT_CONNECTIONS = "Maximum Account Connections Exceeded"
    MAX_SUBSCRIPTIONS = "Maximum Subscriptions Exceeded"
    TLS_HANDSHAKE = "TLS Handshake Failure"
    SLOW_CONSUMER_PENDING = "Slow Consumer (Pending Bytes)"
    SLOW_CONSUMER_WRITE = "Slow Consumer (Write Deadline)"
    WRITE_ERROR = "Write Error"
    READ_ERROR = "Read Error"
    PARSE_ERROR = "Parse Error"
    STALE_CONNECTION = "Stale Connection"
    PROTOCOL_VIOLATION = "Protocol Violation"
    BAD_CLIENT_PROTOCOL = "Bad Client Protocol Version"
    MAX_CONNECTIONS = "Maximum Connections Exceeded"
    MAX_PAYLOAD = "Maximum Message Payload Exceeded"
    MAX_CONTROL_LINE = "Maximum Control Line Exceeded"
    NO_RESPONDERS_NEEDS_HEADERS = "No Responders Requires Headers"
    SERVER_SHUTDOWN = "Server Shutdown"
    DUPLICATE_ROUTE = "Duplicate Route"
    DUPLICATE_SERVER_NAME = "Duplicate Server Name"
    CLUSTER_NAME_CONFLICT = "Cluster Name Conflict"
    ROUTE_REMOVED = "Route Removed"
    MISSING_ACCOUNT = "Missing Account"
    #: trionats only: an unexpected exception (a bug) closed the connection (containment.py).
    INTERNAL_ERROR = "Internal Error"


# --- exceptions -------------------------------------------------------------------------------


class ProtocolError(Exception):
    """The peer broke the protocol; the connection must close.

    `err` is the -ERR text to send first, or None for nats-server's silent closes.
    `reason` is the close reason for logs and monitoring.
    """

    def __init__(self, err: str | None, reason: str, detail: str = "") -> None:
        super().__init__(detail or err or reason)
        self.err = err
        self.reason = reason
        self.detail = detail


class ConfigError(Exception):
    """Options that cannot run; the message lists every problem."""


class StartupError(Exception):
    """The server cannot start (JetStream's storage directory, say): logged as fatal, exit 1."""
