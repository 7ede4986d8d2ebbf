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
INVALID_SUBJECT = "Invalid Subject"
INVALID_PUBLISH_SUBJECT = "Invalid Publish Subject"
MAX_SUBSCRIPTIONS = "maximum subscriptions exceeded"


def publish_violation(subject: str) -> str:
    return f'Permissions Violation for Publish to "{subject}"'


def reply_violation(reply: str) -> str:
    return f'Permissions Violation for Publish with Reply of "{reply}"'


def subscribe_violation(subject: str, queue: str | None = None) -> str:
    if queue:
        return f'Permissions Violation for Subscription to "{subject}" using queue "{queue}"'
    return f'Permissions Violation for Subscription to "{subject}"'


def too_many_tokens(subject: str) -> str:
    return f'Permissions Violation for Subscription to "{subject}", too many tokens'


# --- close reasons (as nats-server names them in logs and /connz) -----------------------------


class Reason:
    CLIENT_CLOSED = "Client Closed"
    AUTH_TIMEOUT = "Authentication Timeout"
    AUTH_VIOLATION = "Authentication Failure"
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
