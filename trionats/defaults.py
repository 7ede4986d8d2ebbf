"""Every default and limit of the server as a named constant, with the reason for its value.

Values follow nats-server 2.15 (server/const.go) unless a comment says otherwise, so that a client
or operator moving between the two servers sees the same limits.
"""

# --- identity -------------------------------------------------------------------------------

#: The nats-server release whose wire behaviour trionats reproduces. Sent as INFO `version`:
#: clients gate features (headers, no_responders, ...) on this semver, so it must be a 2.x
#: version they know. trionats' own version is `trionats.__version__`.
COMPAT_VERSION = "2.15.1"

#: Protocol level announced to clients (1 = supports async INFO).
CLIENT_PROTO = 1

#: nats-server 2.15.1's feature flags and their defaults, as the ServerInfo of its system
#: messages (message trace events) lists them. They are JetStream's; trionats has none, so
#: they are only reported, and the `feature_flags` option does not change them.
FEATURE_FLAGS = {
    "js_ack_fc_v2": False,
    "js_api_reply_v2": False,
    "js_raft_delete_range": True,
    "js_snapshot_sources": False,
}

# --- listening ------------------------------------------------------------------------------

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 4222
#: A port value asking for a random free port (`-p -1`, `port: -1`).
RANDOM_PORT = -1

# --- limits ---------------------------------------------------------------------------------

#: Largest message (headers + payload) a client may publish; advertised in INFO.
#: Past it: -ERR 'Maximum Payload Violation' and the connection is closed.
MAX_PAYLOAD = 1024 * 1024
#: nats-server warns at startup when max_payload is configured above this.
MAX_PAYLOAD_WARN = 8 * 1024 * 1024

#: Longest argument text of one protocol line (after the op name).
#: Past it: -ERR 'maximum control line exceeded' and the connection is closed.
MAX_CONTROL_LINE = 4096

#: Simultaneous client connections. Past it a new client gets INFO, then
#: -ERR 'maximum connections exceeded' and is closed.
MAX_CONNECTIONS = 64 * 1024

#: Subscriptions per connection; 0 = unlimited. Past it: -ERR 'maximum subscriptions exceeded',
#: the connection stays open.
MAX_SUBSCRIPTIONS = 0

#: Bytes queued for one connection that the peer has not read yet. Past it the connection is a
#: slow consumer: closed at once without -ERR, counted and logged.
MAX_PENDING = 64 * 1024 * 1024

#: Seconds one socket write may take before the peer is a slow consumer (write deadline).
WRITE_DEADLINE = 10.0

#: Seconds between server PINGs on an idle connection.
PING_INTERVAL = 120.0
#: The first PING after CONNECT comes after at most this many seconds (plus up to 20% jitter),
#: which gives an early RTT sample and detects dead peers quickly.
FIRST_CLIENT_PING_INTERVAL = 2.0
#: A PING is sent even after recent client activity when the last RTT sample is older than this.
RTT_MEASUREMENT_INTERVAL = 3600.0
#: Unanswered PINGs tolerated; one more and the connection gets -ERR 'Stale Connection'.
PING_MAX = 2

#: Seconds a closing connection may spend flushing what is queued (an -ERR, the last MSGs)
#: before its tasks are cancelled.
CLOSE_FLUSH_TIMEOUT = 1.0

#: Seconds a graceful shutdown waits for connections to flush before cancelling them.
SHUTDOWN_GRACE = 5.0

# --- internal tuning (not user options) -----------------------------------------------------

#: Bytes asked of the socket per read. Large reads let the parser work through many messages
#: per wake-up; nats-server grows its read buffer up to the same size.
READ_SIZE = 64 * 1024

#: Most bytes the writer joins into one send. Bounds the copy per write and the time one
#: write holds the write deadline.
MAX_WRITE_BATCH = 4 * 1024 * 1024

#: Entries in the sublist's match cache before it sheds the older half (nats-server: 1024;
#: a miss costs more here, so more are kept: publishing to 100k subjects at random).
SUBLIST_CACHE_SIZE = 4096

#: Entries in a publisher's per-connection delivery cache (subject -> encoded targets) before
#: it sheds the older half: this many, or as many as there are subscriptions (a publisher
#: spread over every subscribed subject keeps them all: a few hundred bytes each, the size of
#: a subscription, and only for publishers of that many subjects).
DELIVERY_CACHE_SIZE = 8192
DELIVERY_CACHE_MAX = 1 << 20

#: Entries in the parser's cache of decoded PUB line heads (what comes before the size) and
#: of the whole lines its spans met, together (cleared when full; about 150 bytes each, only
#: for connections publishing to that many distinct subject and reply pairs or lines).
PUB_LINE_CACHE_SIZE = 1 << 17

#: Entries in the parsers' shared table of size tokens (cleared when full; about 100 bytes
#: each, one per distinct payload size seen).
SIZE_TOKEN_CACHE_SIZE = 1 << 16

#: Whole lines (`PUB <subject> <size>`) remembered per subject for spans: the sizes a stream
#: to one subject cycles through (about 100 bytes each; more are checked line by line).
SPAN_LINES_PER_HEAD = 64

#: Seconds to back off after accept() fails for lack of file descriptors (Trio's own value).
ACCEPT_BACKOFF = 0.1

# --- later subsystems (options exist already; see options.py) -------------------------------

#: Closed connections remembered for monitoring (/connz?state=closed).
MAX_CLOSED_CLIENTS = 10000

#: Monitoring HTTP: seconds a read (or a response write) may take; an idle keep-alive
#: connection is closed after this long.
HTTP_READ_TIMEOUT = 10.0
#: Monitoring HTTP: largest request head (and body, read and ignored) in bytes; past it the
#: request gets a 4xx and the connection is closed.
HTTP_MAX_REQUEST_SIZE = 16 * 1024

#: Seconds between the system account's `$SYS.SERVER.<id>.STATSZ` heartbeats (nats-server's
#: statsHBInterval); the first comes after STATSZ_FIRST_INTERVAL, each wait then doubles up
#: to this, as nats-server's. Sent only while something subscribes to the subject.
STATSZ_INTERVAL = 10.0
STATSZ_FIRST_INTERVAL = 0.25

#: Seconds lame-duck mode spreads client closes over; nats-server refuses less than 30 s.
LAME_DUCK_DURATION = 120.0
#: Seconds lame-duck mode waits before it starts closing clients.
LAME_DUCK_GRACE_PERIOD = 10.0

#: Route dial errors are logged on the first attempt and then every this many attempts.
CONNECT_ERROR_REPORTS = 3600
#: The same, for re-dials after a connection existed.
RECONNECT_ERROR_REPORTS = 1

#: A route's control line may be this many times max_control_line (nats-server's rule).
ROUTE_CONTROL_LINE_FACTOR = 16

#: Connections per remote server that nats-server opens by default (trionats uses one).
ROUTE_POOL_SIZE = 3
#: Seconds a publisher's reader may wait, per read, for subscribers (or routes) whose queues
#: it filled past three quarters of max_pending (nats-server's fast producer stall: 10 ms).
FAST_PRODUCER_STALL_MAX = 0.010
#: Bytes per send_all when a writer's batch is larger (connection.py): progress is counted.
WRITE_PIECE = 256 * 1024

#: Seconds to wait for a route's TCP connection before counting the attempt as failed.
ROUTE_DIAL_TIMEOUT = 1.0
#: Seconds between attempts to dial a route (doubling up to the maximum with connect_backoff).
ROUTE_CONNECT_RETRY_DELAY = 1.0
ROUTE_CONNECT_MAX_DELAY = 30.0
#: Extra random delay before re-dialing a route that dropped, so two servers that lost
#: each other do not dial at the same instant again.
ROUTE_REDIAL_JITTER = 0.1
#: The first PING on a new route comes this many seconds after it is created (+ <=20%).
FIRST_ROUTE_PING_INTERVAL = 1.0
#: Routes PING at the server's ping_interval but at least this often.
ROUTE_MAX_PING_INTERVAL = 30.0

#: Leaf nodes (nats-server's DEFAULT_LEAF_NODE_RECONNECT, DEFAULT_LEAFNODE_INFO_WAIT): seconds
#: between dials of a hub, and to wait for its INFO after the TCP connection is up.
LEAF_RECONNECT_DELAY = 1.0
LEAF_FIRST_INFO_TIMEOUT = 1.0
#: Seconds to wait for a hub's TCP connection before counting the attempt as failed.
LEAF_DIAL_TIMEOUT = 1.0
#: A solicited leaf waits this long before dialing again after its hub said "Loop detected"
#: or refused it for a permission violation or the same cluster name (nats-server's delays).
LEAF_LOOP_RECONNECT_DELAY = 30.0
#: URLs a remote keeps (configured plus learned from the hub's `leafnode_urls`): a hostile hub
#: cannot grow the list without bound.
LEAF_MAX_URLS = 64
#: The port a leaf URL without one dials (nats-server's DEFAULT_LEAFNODE_PORT).
LEAF_DEFAULT_PORT = 7422

#: TLS handshake timeout in seconds.
TLS_TIMEOUT = 2.0
#: Seconds to wait for CONNECT when authentication is required.
AUTH_TIMEOUT = 2.0
#: bcrypt password checks running at once (worker threads). Each takes ~50-300 ms of CPU;
#: more CONNECTs wait their turn in order, so a flood of logins cannot take more CPU than
#: this many cores, and never the event loop's.
AUTH_BCRYPT_THREADS = 2
#: Authentication errors logged per window; the rest are counted in one line at the end of
#: the window, so a flood of bad logins cannot flood the log.
AUTH_FAILURE_LOG_BURST = 10
AUTH_FAILURE_LOG_WINDOW = 10.0
#: A user JWT whose subscription limit is 0 (no `subs` claim: Go's zero) is told so at once
#: and closed this many seconds later, as nats-server's applyAccountLimits does.
JWT_NO_SUBS_CLOSE_DELAY = 0.02
#: Reply subjects one allow_responses connection may hold at once; past it expired ones go,
#: then the oldest.
MAX_RESPONSE_GRANTS = 10000

#: allow_responses defaults: one reply per received request, within two minutes.
ALLOW_RESPONSES_MAX_MSGS = 1
ALLOW_RESPONSES_EXPIRES = 120.0

# --- syslog (trionats/syslog.py) ---------------------------------------------------------------

#: Log lines waiting for the syslog writer thread, in bytes. Past it new lines are dropped (and
#: counted) rather than held in memory or waited for: a syslog daemon that is down or slow
#: must never stall the server or grow it without bound.
SYSLOG_QUEUE_BYTES = 8 * 1024 * 1024
#: Seconds a TCP or unix-stream syslog connection may take to open, and one write may take
#: before the connection is given up (and dialed again).
SYSLOG_CONNECT_TIMEOUT = 5.0
SYSLOG_WRITE_TIMEOUT = 5.0
#: After a failed dial, seconds before the next one; lines keep queueing (within the bound).
SYSLOG_RETRY_INTERVAL = 1.0
#: At exit or when the destination changes, seconds given to send what is still queued.
SYSLOG_CLOSE_TIMEOUT = 2.0


# --- JetStream --------------------------------------------------------------------------------

#: How often the store forces written data to disk (nats-server's default sync_interval, 2m):
#: acknowledged messages are in the OS's page cache at once, so a crash of the process alone
#: loses none; a power loss can lose the last interval unless `sync_interval: always`.
JS_SYNC_INTERVAL = 120.0
#: nats-server's JetStream API queue limit (requests waiting to be served).
JS_REQUEST_QUEUE_LIMIT = 10_000
#: The JetStream API level this implementation reports (nats-server 2.15's).
JS_API_LEVEL = 5
#: Most file storage nats-server reserves by default (1 TB), less when the disk is smaller.
JS_MAX_FILE_STORE = 1 << 40
#: Names listed per STREAM.NAMES / CONSUMER.NAMES page, and infos per LIST page (nats-server's).
JS_NAMES_PAGE = 1024
JS_LIST_PAGE = 256
#: A stream's de-duplication window when none is given (2 minutes, nats-server's).
JS_DUPLICATE_WINDOW = 120.0
#: Default consumer ack wait (30 s) and a pull request's default expiry when none is given.
JS_ACK_WAIT = 30.0
#: nats-server's default limit of consumers per stream shown in /jsz `limits`.
JS_DEFAULT_MAX_CONSUMERS = 1000
