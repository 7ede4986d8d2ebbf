"""Publish/subscribe permissions of one user, compiled for checks and a bounded verdict cache.

Pure code (no trio): a `CompiledPermissions` is built once per user from the options and shared
by that user's connections; each connection keeps its own small verdict cache (`PublishCheck`).

Rules (nats-server 2.15):
* publish: allowed iff (no allow list, or some allow pattern matches) and no deny pattern
  matches; with `allow_responses` and no `publish` block the allow list is empty.
* subscribe: the SUB subject, wildcards taken as literal tokens, must be matched by an allow
  entry and by no deny entry. An entry `"<subject> <queue>"` only concerns queue
  subscriptions of that (wildcard) queue; the queue `_sys_` is always refused.
* delivery: a wildcard subscription may overlap a deny entry; messages whose subject matches a
  plain deny entry are then not delivered to that connection.
"""

from __future__ import annotations

from .. import defaults
from ..options import Permissions, SubjectPermission
from ..protocol.subjects import subject_matches

#: The queue name nats-server reserves for itself; always refused to clients.
SYS_QUEUE = b"_sys_"


def _entries(patterns) -> tuple[tuple[bytes, bytes], ...]:
    """("subject [queue]", ...) -> ((subject, queue or b""), ...)."""
    out = []
    for text in patterns:
        subject, _, queue = text.strip().partition(" ")
        out.append((subject.encode(), queue.strip().encode()))
    return tuple(out)


def _entry_text(entry: tuple[bytes, bytes]) -> str:
    subject, queue = entry
    return (subject + b" " + queue).decode() if queue else subject.decode()


def _any_match(patterns: tuple[bytes, ...], subject: bytes) -> bool:
    for pattern in patterns:
        if subject_matches(pattern, subject):
            return True
    return False


class CompiledPermissions:
    """One user's permissions, ready for the checks below."""

    __slots__ = (
        "pub_allow",
        "pub_deny",
        "has_publish",
        "sub_allow",
        "sub_deny",
        "delivery_deny",
        "has_subscribe",
        "responses",
    )

    def __init__(self, permissions: Permissions) -> None:
        publish: SubjectPermission | None = permissions.publish
        self.responses = permissions.allow_responses
        if publish is None and self.responses is not None:
            publish = SubjectPermission(allow=())
        self.has_publish = publish is not None
        self.pub_allow = None
        self.pub_deny: tuple[bytes, ...] = ()
        if publish is not None:
            if publish.allow is not None:
                self.pub_allow = tuple(s.encode() for s in publish.allow)
            self.pub_deny = tuple(s.encode() for s in publish.deny)
        subscribe = permissions.subscribe
        self.has_subscribe = subscribe is not None
        self.sub_allow = None
        self.sub_deny: tuple[tuple[bytes, bytes], ...] = ()
        if subscribe is not None:
            if subscribe.allow is not None:
                self.sub_allow = _entries(subscribe.allow)
            self.sub_deny = _entries(subscribe.deny)
        self.delivery_deny = tuple(subject for subject, queue in self.sub_deny if not queue)

    def public(self) -> dict:
        """nats-server's publicPermissions, as a user-info request shows them: each list
        present when configured (subscribe entries as "subject [queue]"), sorted."""
        publish: dict = {}
        subscribe: dict = {}
        if self.pub_allow:
            publish["allow"] = sorted(s.decode() for s in self.pub_allow)
        if self.pub_deny:
            publish["deny"] = sorted(s.decode() for s in self.pub_deny)
        if self.sub_allow:
            subscribe["allow"] = sorted(_entry_text(e) for e in self.sub_allow)
        if self.sub_deny:
            subscribe["deny"] = sorted(_entry_text(e) for e in self.sub_deny)
        body = {"publish": publish, "subscribe": subscribe}
        if self.responses is not None:
            body["responses"] = {"max": self.responses.max_msgs,
                                 "ttl": round(self.responses.expires * 1e9)}  # fmt: skip
        return body

    def can_publish(self, subject: bytes) -> bool:
        """The static verdict (without allow_responses)."""
        if self.pub_allow is not None and not _any_match(self.pub_allow, subject):
            return False
        return not _any_match(self.pub_deny, subject)

    def can_subscribe(self, subject: bytes, queue: bytes) -> bool:
        if self.sub_allow is not None:
            for pattern, pqueue in self.sub_allow:
                if subject_matches(pattern, subject) and (
                    not pqueue or (queue and subject_matches(pqueue, queue))
                ):
                    break
            else:
                return False
        for pattern, pqueue in self.sub_deny:
            if subject_matches(pattern, subject) and (
                not pqueue or (queue and subject_matches(pqueue, queue))
            ):
                return False
        return True

    def denies_delivery(self, subject: bytes) -> bool:
        """A message on `subject` must not reach this user's wildcard subscriptions."""
        return _any_match(self.delivery_deny, subject)


class PublishCheck:
    """A connection's publish permissions and the reply subjects allow_responses opened.

    Verdicts per subject are cached in the connection's delivery plans (core/dispatch.py,
    `Plan.permitted`); a refused subject is then looked up in the grants."""

    __slots__ = ("perms", "replies", "max_msgs", "expires")

    def __init__(self, perms: CompiledPermissions) -> None:
        self.perms = perms
        #: allow_responses: reply subject -> [remaining (negative = unlimited), expiry time]
        self.replies: dict[bytes, list] = {}
        responses = perms.responses
        # As nats-server: 0 means the default; a negative max means unlimited.
        self.max_msgs = (responses and responses.max_msgs) or defaults.ALLOW_RESPONSES_MAX_MSGS
        self.expires = (responses and responses.expires) or defaults.ALLOW_RESPONSES_EXPIRES

    def allowed(self, subject: bytes, now: float) -> bool:
        """May the connection publish to `subject` now (uses up a reply grant if needed)."""
        return self.perms.can_publish(subject) or self.granted(subject, now)

    def granted(self, subject: bytes, now: float) -> bool:
        """Is `subject` a reply this connection was granted (and not expired or used up)?
        Uses up one message of the grant."""
        if not self.replies:
            return False
        grant = self.replies.get(subject)
        if grant is None:
            return False
        if grant[1] < now:
            del self.replies[subject]
            return False
        if grant[0] > 0:
            grant[0] -= 1
            if grant[0] == 0:
                del self.replies[subject]
        return True

    def grant(self, reply: bytes, now: float) -> None:
        """A message with `reply` was delivered to this connection: it may answer it."""
        replies = self.replies
        if len(replies) >= defaults.MAX_RESPONSE_GRANTS:
            for key in [k for k, (_, expiry) in replies.items() if expiry < now]:
                del replies[key]
            while len(replies) >= defaults.MAX_RESPONSE_GRANTS:
                del replies[next(iter(replies))]
        replies[reply] = [self.max_msgs, now + self.expires]
