"""The subscription index: which subscriptions match a subject, with a bounded match cache.

How it works. Subscriptions on literal subjects (no `*` or `>` token) live in one dict keyed by
subject; only wildcard subscriptions go into a trie. Each trie level maps literal tokens to
nodes and has one slot for `*` and one for `>`, as in nats-server's sublist.go. A match is a
dict lookup, plus a walk of the (usually small) wildcard trie when it is not empty, and returns
plain subscriptions and queue groups apart. Results are immutable and cached by subject; an
insert or removal drops only the cache entries its subject can match, and bumps `generation`
so callers holding derived data (per-publisher delivery caches) know to rebuild it.

Route interest uses the same index: a route's subscriptions are entries whose `client` is the
route, so one match answers both "which clients" and "which routes". The module is plain
synchronous code: it is never interleaved with itself, so it needs no locks.
"""

from __future__ import annotations

from .. import defaults
from ..protocol.subjects import FWC, PWC, has_wildcard, is_valid_subject, subject_matches


class Subscription:
    """One subscription of a connection: SUB's subject, queue and sid, and its delivery count."""

    __slots__ = ("client", "subject", "queue", "sid", "max_msgs", "delivered", "closed", "weight")

    def __init__(
        self, client: object, subject: bytes, queue: bytes | None, sid: bytes, weight: int = 1
    ) -> None:
        self.client = client
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.max_msgs = 0  # 0 = no auto-unsubscribe
        self.delivered = 0
        self.closed = False
        #: For a route's queue interest: how many members the remote server has.
        self.weight = weight

    def __repr__(self) -> str:
        queue = f" queue={self.queue!r}" if self.queue else ""
        return f"<Subscription {self.subject!r}{queue} sid={self.sid!r}>"


class SublistResult:
    """What a subject matched: plain subscriptions, and one tuple of members per queue group."""

    __slots__ = ("psubs", "qsubs")

    def __init__(self, psubs: tuple, qsubs: tuple) -> None:
        self.psubs = psubs
        self.qsubs = qsubs

    def __bool__(self) -> bool:
        return bool(self.psubs or self.qsubs)


EMPTY_RESULT = SublistResult((), ())


class _Entry:
    """The subscriptions of one exact subject (literal, or one wildcard pattern in the trie)."""

    __slots__ = ("psubs", "qsubs")

    def __init__(self) -> None:
        self.psubs: dict[Subscription, None] = {}
        self.qsubs: dict[bytes, dict[Subscription, None]] | None = None

    def is_empty(self) -> bool:
        return not self.psubs and not self.qsubs


class _Node:
    __slots__ = ("next", "entry")

    def __init__(self) -> None:
        self.next: _Level | None = None
        self.entry: _Entry | None = None


class _Level:
    __slots__ = ("nodes", "pwc", "fwc")

    def __init__(self) -> None:
        self.nodes: dict[bytes, _Node] = {}
        self.pwc: _Node | None = None
        self.fwc: _Node | None = None

    def is_empty(self) -> bool:
        return not self.nodes and self.pwc is None and self.fwc is None


class InvalidSubject(ValueError):
    pass


class Sublist:
    """Index of subscriptions by subject. `cache_size=0` turns the match cache off."""

    def __init__(self, cache_size: int = defaults.SUBLIST_CACHE_SIZE) -> None:
        self._literals: dict[bytes, _Entry] = {}
        self._root = _Level()
        self._wildcards = 0  # subscriptions stored in the trie
        self._cache: dict[bytes, SublistResult] = {}
        self._cache_size = cache_size
        #: Changes whenever a subscription is added or removed.
        self.generation = 0
        self.count = 0
        self.inserts = 0
        self.removes = 0
        self.matches = 0
        self.cache_hits = 0

    # --- changes --------------------------------------------------------------------------

    def insert(self, sub: Subscription) -> None:
        """Add `sub`; raise InvalidSubject if its subject cannot be subscribed to."""
        subject = sub.subject
        if not is_valid_subject(subject):
            raise InvalidSubject(subject)
        if has_wildcard(subject):
            entry = self._trie_entry(subject, create=True)
            self._wildcards += 1
        else:
            entry = self._literals.get(subject)
            if entry is None:
                entry = self._literals[subject] = _Entry()
        if sub.queue is None:
            entry.psubs[sub] = None
        else:
            if entry.qsubs is None:
                entry.qsubs = {}
            entry.qsubs.setdefault(sub.queue, {})[sub] = None
        self.count += 1
        self.inserts += 1
        self._changed(subject, sub)

    def insert_internal(self, sub: Subscription) -> None:
        """Add a server's own subscription (the system services, imports, JetStream): matched
        as any other, left out of the figures (`count`, `inserts`), which are the clients'."""
        self.insert(sub)
        self.count -= 1
        self.inserts -= 1

    def remove_internal(self, sub: Subscription) -> bool:
        """Remove what `insert_internal` added, leaving the figures as they were."""
        removed = self.remove(sub)
        if removed:
            self.count += 1
            self.removes -= 1
        return removed

    def remove(self, sub: Subscription) -> bool:
        """Remove `sub`; return False if it was not in the index."""
        subject = sub.subject
        wildcard = has_wildcard(subject)
        entry = self._trie_entry(subject, create=False) if wildcard else self._literals.get(subject)
        if entry is None:
            return False
        if sub.queue is None:
            if entry.psubs.pop(sub, 0) is not None:
                return False
        else:
            group = entry.qsubs.get(sub.queue) if entry.qsubs else None
            if group is None or group.pop(sub, 0) is not None:
                return False
            if not group:
                del entry.qsubs[sub.queue]
        if entry.is_empty():
            if wildcard:
                self._prune(subject)
            else:
                del self._literals[subject]
        if wildcard:
            self._wildcards -= 1
        self.count -= 1
        self.removes += 1
        self._changed(subject)
        return True

    def plans_changed(self) -> None:
        """Matches are the same, but delivery plans built from them must be rebuilt: a
        remote queue subscription's weight changed (picks are spread by weight), or a
        subscription got an auto-unsubscribe limit (plans say which targets have one)."""
        self.generation += 1

    def _changed(self, subject: bytes, added: Subscription | None = None) -> None:
        """Update the match cache after a change to `subject`.

        As in nats-server, a removal drops the cached results it matches, while an added
        subscription is appended to them: delivery order then depends on the cache's history
        exactly as it does there (a fresh match would put it in trie order instead).
        """
        self.generation += 1
        cache = self._cache
        if not cache:
            return
        if has_wildcard(subject):
            keys = [key for key in cache if subject_matches(subject, key)]
        else:
            keys = [subject] if subject in cache else []
        for key in keys:
            if added is None or b"" in key.split(b"."):
                del cache[key]  # nats-server never caches subjects with empty tokens
            else:
                cache[key] = _with_sub(cache[key], added)

    def _trie_entry(self, subject: bytes, *, create: bool) -> _Entry | None:
        level = self._root
        node = None
        tokens = subject.split(b".")
        last = len(tokens) - 1
        for i, token in enumerate(tokens):
            if level is None:
                return None
            if token == PWC:
                node = level.pwc
                if node is None and create:
                    node = level.pwc = _Node()
            elif token == FWC:
                node = level.fwc
                if node is None and create:
                    node = level.fwc = _Node()
            else:
                node = level.nodes.get(token)
                if node is None and create:
                    node = level.nodes[token] = _Node()
            if node is None:
                return None
            if node.next is None and create and i < last:
                node.next = _Level()
            level = node.next
        if node.entry is None and create:
            node.entry = _Entry()
        return node.entry

    def _prune(self, subject: bytes) -> None:
        """Drop the trie nodes of `subject` that no longer lead to any subscription."""
        path: list[tuple[_Level, bytes, _Node]] = []
        level = self._root
        for token in subject.split(b"."):
            node = level.pwc if token == PWC else level.fwc if token == FWC else level.nodes[token]
            path.append((level, token, node))
            level = node.next
        for level, token, node in reversed(path):
            if node.entry is not None and node.entry.is_empty():
                node.entry = None
            if node.entry is not None or (node.next is not None and not node.next.is_empty()):
                break
            if token == PWC:
                level.pwc = None
            elif token == FWC:
                level.fwc = None
            else:
                del level.nodes[token]

    # --- matching -------------------------------------------------------------------------

    def match(self, subject: bytes) -> SublistResult:
        """Everything interested in a message published to `subject` (a cached, shared result)."""
        self.matches += 1
        result = self._cache.get(subject)
        if result is not None:
            self.cache_hits += 1
            return result
        entry = self._literals.get(subject)
        if self._wildcards:
            entries = []
            tokens = subject.split(b".")
            if b"" not in tokens:
                # The literal entry goes where nats-server's trie walk would find it.
                _collect(self._root, tokens, 0, entries, entry)
            elif entry is not None:
                entries.append(entry)
            result = _result_of(entries)
        elif entry is None:
            result = EMPTY_RESULT
        else:
            result = _result_of((entry,))
        if self._cache_size:
            cache = self._cache
            if len(cache) >= self._cache_size:
                # Shed the older half: dicts keep insertion order.
                for key in list(cache)[: len(cache) // 2]:
                    del cache[key]
            cache[subject] = result
        return result

    @property
    def cache_count(self) -> int:
        return len(self._cache)

    def cache_fanout(self) -> tuple[int, float]:
        """Largest and mean fan-out of the cached results (plain subs + queue groups)."""
        if not self._cache:
            return 0, 0
        sizes = [len(r.psubs) + len(r.qsubs) for r in self._cache.values()]
        return max(sizes), sum(sizes) / len(sizes)

    def subscriptions(self) -> list[Subscription]:
        """Every subscription in the index (for monitoring and interest dumps)."""
        found: list[Subscription] = []
        for entry in self._literals.values():
            _add_entry(entry, found)
        _walk_all(self._root, found)
        return found


def _collect(
    level: _Level | None,
    tokens: list[bytes],
    start: int,
    out: list[_Entry],
    literal: _Entry | None = None,
) -> None:
    """Add to `out` the entries of every trie pattern matching tokens[start:].

    The order is nats-server's (matchLevel): per level `>` first, then the `*` branch, and at
    the end the literal node, then the last level's `*`. Literal subjects live outside the
    trie, so the top-level call passes their `literal` entry to be placed there.
    """
    node = None
    pwc = None
    for i in range(start, len(tokens)):
        if level is None:
            if literal is not None:
                out.append(literal)
            return
        if level.fwc is not None and level.fwc.entry is not None:
            out.append(level.fwc.entry)
        pwc = level.pwc
        if pwc is not None and i + 1 < len(tokens):
            _collect(pwc.next, tokens, i + 1, out)
        node = level.nodes.get(tokens[i])
        level = node.next if node is not None else None
    if node is not None and node.entry is not None:
        out.append(node.entry)
    if literal is not None:
        out.append(literal)
    if pwc is not None and pwc.entry is not None:
        out.append(pwc.entry)


def _with_sub(result: SublistResult, sub: Subscription) -> SublistResult:
    """A copy of `result` with `sub` last among the plain subs or in its queue group."""
    if sub.queue is None:
        return SublistResult(result.psubs + (sub,), result.qsubs)
    qsubs = list(result.qsubs)
    for i, members in enumerate(qsubs):
        if members[0].queue == sub.queue:
            qsubs[i] = members + (sub,)
            break
    else:
        qsubs.append((sub,))
    return SublistResult(result.psubs, tuple(qsubs))


def _result_of(entries) -> SublistResult:
    psubs: list[Subscription] = []
    groups: dict[bytes, list[Subscription]] = {}
    for entry in entries:
        psubs.extend(entry.psubs)
        if entry.qsubs:
            for name, members in entry.qsubs.items():
                groups.setdefault(name, []).extend(members)
    if not psubs and not groups:
        return EMPTY_RESULT
    return SublistResult(tuple(psubs), tuple(tuple(members) for members in groups.values()))


def _add_entry(entry: _Entry, found: list[Subscription]) -> None:
    found.extend(entry.psubs)
    if entry.qsubs:
        for members in entry.qsubs.values():
            found.extend(members)


def _walk_all(level: _Level, found: list[Subscription]) -> None:
    nodes = list(level.nodes.values())
    nodes.extend(node for node in (level.pwc, level.fwc) if node is not None)
    for node in nodes:
        if node.entry is not None:
            _add_entry(node.entry, found)
        if node.next is not None:
            _walk_all(node.next, found)
