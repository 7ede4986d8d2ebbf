"""The subscription index (Sublist) and subject syntax, with the match cache on and off."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trionats import defaults
from trionats.core.sublist import InvalidSubject, Sublist, SublistResult, Subscription
from trionats.protocol import subjects


@pytest.fixture(params=[defaults.SUBLIST_CACHE_SIZE, 0], ids=["cache", "nocache"])
def cache_size(request) -> int:
    return request.param


@pytest.fixture
def sl(cache_size) -> Sublist:
    return Sublist(cache_size=cache_size)


_sids = iter(range(1, 10**9))


def sub(subject: str, queue: str | None = None, client: object = "client") -> Subscription:
    return Subscription(
        client, subject.encode(), queue.encode() if queue is not None else None, b"%d" % next(_sids)
    )


def add(sl: Sublist, *subs: Subscription) -> tuple[Subscription, ...]:
    for s in subs:
        sl.insert(s)
    return subs


def plain(result: SublistResult) -> set[Subscription]:
    assert len(set(result.psubs)) == len(result.psubs), "a subscription was returned twice"
    return set(result.psubs)


def groups(result: SublistResult) -> dict[bytes, set[Subscription]]:
    """Queue groups by name; also checks each group holds one queue name only, once."""
    out: dict[bytes, set[Subscription]] = {}
    for members in result.qsubs:
        names = {m.queue for m in members}
        assert len(names) == 1, f"a group mixes queues {names}"
        (name,) = names
        assert name not in out, f"queue {name!r} split over two groups"
        assert len(set(members)) == len(members)
        out[name] = set(members)
    return out


def match(sl: Sublist, subject: str) -> set[Subscription]:
    """Every subscription matched (plain and queue members alike)."""
    result = sl.match(subject.encode())
    return plain(result) | {m for members in groups(result).values() for m in members}


def trie_size(sl: Sublist) -> int:
    """Nodes left in the wildcard trie plus literal entries (white box: the internals)."""

    def count(level) -> int:
        total = 0
        for node in [*level.nodes.values(), level.pwc, level.fwc]:
            if node is not None:
                total += 1 + (count(node.next) if node.next is not None else 0)
        return total

    return count(sl._root) + len(sl._literals)


# --- matching -------------------------------------------------------------------------------


def test_literal_subjects_match_only_themselves(sl):
    foo_bar, foo = add(sl, sub("foo.bar"), sub("foo"))
    assert match(sl, "foo.bar") == {foo_bar}
    assert match(sl, "foo") == {foo}
    assert match(sl, "foo.baz") == set()
    assert match(sl, "foo.bar.baz") == set()
    assert match(sl, "bar") == set()
    assert match(sl, "FOO.bar") == set()  # subjects are case-sensitive


def test_star_matches_exactly_one_token(sl):
    star_bar, foo_star, star_star = add(sl, sub("*.bar"), sub("foo.*"), sub("*.*"))
    assert match(sl, "foo.bar") == {star_bar, foo_star, star_star}
    assert match(sl, "foo.baz") == {foo_star, star_star}
    assert match(sl, "x.bar") == {star_bar, star_star}
    assert match(sl, "foo") == set()
    assert match(sl, "foo.bar.baz") == set()


def test_star_in_the_middle(sl):
    (middle,) = add(sl, sub("a.*.c"))
    assert match(sl, "a.b.c") == {middle}
    assert match(sl, "a.xyz.c") == {middle}
    assert match(sl, "a.c") == set()
    assert match(sl, "a.b.b.c") == set()
    assert match(sl, "a.b.c.d") == set()


def test_full_wildcard_needs_at_least_one_token(sl):
    foo_all, everything = add(sl, sub("foo.>"), sub(">"))
    assert match(sl, "foo") == {everything}
    assert match(sl, "foo.bar") == {foo_all, everything}
    assert match(sl, "foo.bar.baz.qux") == {foo_all, everything}
    assert match(sl, "bar.foo") == {everything}


def test_wildcards_combined(sl):
    s1, s2, s3, s4, s5 = add(sl, sub("a.*.>"), sub("*.b.>"), sub("a.b.*"), sub("*.*.*"), sub("a.b"))
    assert match(sl, "a.b.c") == {s1, s2, s3, s4}
    assert match(sl, "a.b.c.d") == {s1, s2}
    assert match(sl, "a.b") == {s5}
    assert match(sl, "x.b.c") == {s2, s4}


def test_literal_and_wildcard_on_the_same_subject(sl):
    literal, wildcard = add(sl, sub("foo.bar"), sub("foo.*"))
    result = sl.match(b"foo.bar")
    assert plain(result) == {literal, wildcard}
    assert result.qsubs == ()


def test_partial_wildcard_characters_are_literal_tokens(sl):
    # `foo*` and `f>o` are plain tokens: only a whole token is a wildcard.
    star_suffix, gt_inside = add(sl, sub("foo*"), sub("f>o.x"))
    assert match(sl, "foo*") == {star_suffix}
    assert match(sl, "fooo") == set()
    assert match(sl, "f>o.x") == {gt_inside}
    assert match(sl, "f.x") == set()


def test_queue_groups_come_apart_from_plain_subscriptions(sl):
    p1, q1, q2, q3 = add(
        sl,
        sub("foo.bar"),
        sub("foo.bar", "workers"),
        sub("foo.bar", "workers"),
        sub("foo.bar", "other"),
    )
    result = sl.match(b"foo.bar")
    assert plain(result) == {p1}
    assert groups(result) == {b"workers": {q1, q2}, b"other": {q3}}


def test_queue_groups_are_merged_by_name_across_patterns(sl):
    # One message goes to one member per queue *name*, whichever pattern each member used.
    w_literal, w_star, w_full, o_star, p = add(
        sl,
        sub("foo.bar", "workers"),
        sub("foo.*", "workers"),
        sub(">", "workers"),
        sub("*.bar", "other"),
        sub("foo.>"),
    )
    result = sl.match(b"foo.bar")
    assert plain(result) == {p}
    assert groups(result) == {b"workers": {w_literal, w_star, w_full}, b"other": {o_star}}
    assert groups(sl.match(b"foo.baz")) == {b"workers": {w_star, w_full}}


def test_pub_subject_with_a_literal_star_token_matches_a_star_sub(sl):
    # nats-server treats wildcards in a PUB subject literally: the `*` token is just a token,
    # so a SUB on `foo.*` (any one token) gets it, a SUB on `foo.bar` does not.
    foo_star, foo_all, foo_bar = add(sl, sub("foo.*"), sub("foo.>"), sub("foo.bar"))
    assert match(sl, "foo.*") == {foo_star, foo_all}
    assert match(sl, "foo.>") == {foo_star, foo_all}
    assert match(sl, "*") == set()


def test_pub_subject_equal_to_a_wildcard_sub_only_matches_wildcards(sl):
    (star_bar,) = add(sl, sub("*.bar"))
    assert match(sl, "*.bar") == {star_bar}
    assert match(sl, "foo.*") == set()


@pytest.mark.parametrize("subject", ["", ".", "foo.", ".foo", "foo..bar", "..", "a.b."])
def test_subjects_with_empty_tokens_match_nothing(sl, subject):
    add(sl, sub(">"), sub("*"), sub("*.*"), sub("foo.*"), sub("foo.>"), sub("foo", "q"))
    assert match(sl, subject) == set()
    assert not sl.match(subject.encode())


def test_empty_result_is_falsy(sl):
    assert not sl.match(b"nothing")
    add(sl, sub("nothing", "q"))
    assert sl.match(b"nothing")


# --- changes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject", ["", ".", "foo.", ".foo", "foo..bar", "foo.>.bar", ">.foo", "a.>.>"]
)
def test_insert_of_an_invalid_subject_raises(sl, subject):
    before = (sl.generation, sl.count)
    with pytest.raises(InvalidSubject):
        sl.insert(sub(subject))
    assert (sl.generation, sl.count) == before
    assert sl.subscriptions() == []


@pytest.mark.parametrize(
    "subject", ["*", ">", "*.*", "foo.*.>", "foo*", "f>o", ">x", "*x.>", "$SYS.>"]
)
def test_insert_of_odd_but_valid_subjects(sl, subject):
    (s,) = add(sl, sub(subject))
    assert s in sl.subscriptions()


def test_remove_returns_false_for_unknown_subscriptions(sl):
    (known, queued) = add(sl, sub("foo.*"), sub("foo.bar", "q"))
    assert sl.remove(sub("foo.*")) is False  # same subject, another subscription
    assert sl.remove(sub("never.*")) is False  # pattern not in the trie at all
    assert sl.remove(sub("foo.*.baz")) is False  # deeper than anything stored
    assert sl.remove(sub("never")) is False  # literal never seen
    assert sl.remove(sub("foo.bar", "q")) is False  # existing queue, other member
    assert sl.remove(sub("foo.bar", "r")) is False  # unknown queue name
    assert sl.remove(Subscription("client", b"foo.bar", None, queued.sid)) is False  # not queued
    generation = sl.generation
    assert sl.remove(known) is True
    assert sl.remove(known) is False  # twice
    assert sl.generation == generation + 1
    assert sl.count == 1


def test_generation_changes_on_every_change_only(sl):
    generation = sl.generation
    a, b = sub("a"), sub("a.*", "q")
    for change, s in ((sl.insert, a), (sl.insert, b), (sl.remove, a), (sl.remove, b)):
        change(s)
        assert sl.generation > generation
        generation = sl.generation
    # Matches and failed changes leave it alone.
    sl.match(b"a")
    sl.remove(a)
    with pytest.raises(InvalidSubject):
        sl.insert(sub("a..b"))
    assert sl.generation == generation


def test_count_and_subscriptions_listing(sl):
    subs = add(sl, sub("a"), sub("a"), sub("a.*"), sub("a.>", "q"), sub("a.b", "q"), sub(">"))
    assert sl.count == len(subs)
    listed = sl.subscriptions()
    assert len(listed) == len(subs) and set(listed) == set(subs)
    sl.remove(subs[0])
    sl.remove(subs[3])
    assert sl.count == len(subs) - 2
    assert set(sl.subscriptions()) == set(subs) - {subs[0], subs[3]}


# --- the match cache ------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["foo.bar", "foo.*", "*.bar", "foo.>", ">", "*.*"])
@pytest.mark.parametrize("queue", [None, "q"])
def test_insert_and_remove_after_a_cached_match_change_the_next_match(sl, pattern, queue):
    other = add(sl, sub("unrelated.x"))[0]
    assert match(sl, "foo.bar") == set()  # now cached (when the cache is on)
    assert match(sl, "unrelated.x") == {other}
    new = sub(pattern, queue)
    sl.insert(new)
    assert match(sl, "foo.bar") == {new}
    extra = sub(pattern, queue)
    sl.insert(extra)
    assert match(sl, "foo.bar") == {new, extra}
    sl.remove(new)
    assert match(sl, "foo.bar") == {extra}
    sl.remove(extra)
    assert match(sl, "foo.bar") == set()
    assert match(sl, "unrelated.x") == {other}  # other subjects' results unchanged


def test_cache_invalidation_of_a_literal_star_subject(sl):
    # A cached result for the PUB subject `foo.*` must see a new `foo.*` SUB.
    assert match(sl, "foo.*") == set()
    literal = add(sl, sub("foo.bar"))[0]
    assert match(sl, "foo.*") == set()
    wildcard = add(sl, sub("foo.*"))[0]
    assert match(sl, "foo.*") == {wildcard}
    sl.remove(wildcard)
    assert match(sl, "foo.*") == set()
    assert match(sl, "foo.bar") == {literal}


def test_cache_hits_only_with_the_cache_on(sl, cache_size):
    add(sl, sub("foo"))
    sl.match(b"foo")
    sl.match(b"foo")
    assert sl.matches == 2
    assert sl.cache_hits == (1 if cache_size else 0)
    assert sl.cache_count == (1 if cache_size else 0)


def test_cache_stays_bounded_after_many_distinct_matches(sl, cache_size):
    add(sl, sub("subj.*"), sub(">"), sub("subj.7"))
    for i in range(3 * defaults.SUBLIST_CACHE_SIZE + 17):
        assert len(match(sl, f"subj.{i}")) == (3 if i == 7 else 2)
        assert sl.cache_count <= defaults.SUBLIST_CACHE_SIZE
    if cache_size:
        assert sl.cache_count > 0
        assert match(sl, "subj.7") == {s for s in sl.subscriptions()}
    else:
        assert sl.cache_count == 0


def test_small_cache_size_is_respected():
    sl = Sublist(cache_size=8)
    add(sl, sub(">"))
    for i in range(100):
        sl.match(b"s.%d" % i)
        assert sl.cache_count <= 8


# --- the trie is pruned ---------------------------------------------------------------------


def test_trie_is_empty_after_removing_everything(sl):
    patterns = ["a.b.c", "a.b.*", "a.*.c", "a.>", "*.b.>", ">", "a.b.c.d.*", "x.*.y.>", "a.b.c"]
    subs = [sub(p) for p in patterns] + [sub(p, "q") for p in patterns]
    add(sl, *subs)
    assert trie_size(sl) > 0
    random.Random(7).shuffle(subs)
    for s in subs:
        assert sl.remove(s)
    assert trie_size(sl) == 0
    assert sl.count == 0
    assert sl.subscriptions() == []
    assert match(sl, "a.b.c") == set()


def test_removal_prunes_only_the_branch_no_longer_used(sl):
    keep, drop = add(sl, sub("a.b.*"), sub("a.b.c.d.*"))
    with_both = trie_size(sl)
    assert sl.remove(drop)
    # a, b, * are left; c, d and the last * are gone.
    assert trie_size(sl) == with_both - 3 == 3
    assert match(sl, "a.b.x") == {keep}
    # A pattern that is a prefix of another keeps the longer branch alive, and vice versa.
    longer = add(sl, sub("a.b.*.>"))[0]
    assert sl.remove(keep)
    assert match(sl, "a.b.x.y") == {longer}
    assert trie_size(sl) == 4
    assert sl.remove(longer)
    assert trie_size(sl) == 0


def test_failed_removal_does_not_prune(sl):
    add(sl, sub("a.*.c"))
    size = trie_size(sl)
    assert sl.remove(sub("a.*")) is False
    assert sl.remove(sub("a.*.c.d")) is False
    assert trie_size(sl) == size


# --- against a brute-force matcher ----------------------------------------------------------

TOKENS = ["a", "b", "c", "*", ">"]
PATTERN = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4).map(".".join).filter(
    lambda p: subjects.is_valid_subject(p.encode())
)
# PUB subjects: literal tokens, the odd literal `*`/`>` token, now and then an empty token.
SUBJECT = st.lists(st.sampled_from(["a", "b", "c", "d", "*", ">", ""]), min_size=1, max_size=5).map(
    ".".join
)
OPERATION = st.one_of(
    st.tuples(st.just("insert"), PATTERN, st.sampled_from([None, None, "q1", "q2"])),
    st.tuples(st.just("remove"), st.integers(0, 50)),
    st.tuples(st.just("match"), SUBJECT),
)


def brute_force(live: list[Subscription], subject: bytes) -> tuple[set, dict]:
    if b"" in subject.split(b"."):
        return set(), {}
    hits = [s for s in live if subjects.subject_matches(s.subject, subject)]
    queues: dict[bytes, set] = {}
    for s in hits:
        if s.queue is not None:
            queues.setdefault(s.queue, set()).add(s)
    return {s for s in hits if s.queue is None}, queues


@pytest.mark.parametrize(
    "size", [defaults.SUBLIST_CACHE_SIZE, 4, 0], ids=["cache", "tiny_cache", "nocache"]
)
@settings(max_examples=150, deadline=None)
@given(operations=st.lists(OPERATION, max_size=60))
def test_match_agrees_with_brute_force(size, operations):
    # Interleaving changes and matches also checks that cached results are invalidated.
    sl = Sublist(cache_size=size)
    live: list[Subscription] = []
    for op in operations:
        if op[0] == "insert":
            s = sub(op[1], op[2])
            sl.insert(s)
            live.append(s)
        elif op[0] == "remove" and live:
            s = live.pop(op[1] % len(live))
            assert sl.remove(s)
        elif op[0] == "match":
            result = sl.match(op[1].encode())
            assert (plain(result), groups(result)) == brute_force(live, op[1].encode()), op[1]
        assert sl.count == len(live)
    for s in live:
        assert sl.remove(s)
    assert trie_size(sl) == 0


# --- subject syntax (protocol/subjects.py) --------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "valid"),
    [
        ("foo", True),
        ("foo.bar.baz", True),
        ("*", True),
        (">", True),
        ("foo.*.>", True),
        ("foo*.b>r", True),
        ("", False),
        ("foo.", False),
        (".foo", False),
        ("foo..bar", False),
        ("foo.>.bar", False),
        (">.>", False),
    ],
)
def test_is_valid_subject(subject, valid):
    assert subjects.is_valid_subject(subject.encode()) is valid


def test_blanks_are_only_checked_when_asked():
    # SUB arguments cannot hold blanks, so the sublist does not look; config checks do.
    for subject in (b"foo bar", b"foo\tbar", b"a.\r", b"a\n"):
        assert subjects.is_valid_subject(subject)
        assert not subjects.is_valid_subject(subject, check_blanks=True)


@pytest.mark.parametrize(
    ("subject", "literal"),
    [("foo.bar", True), ("foo*", True), ("a>", True), ("foo.*", False), ("foo.>", False),
     ("*", False), ("foo..bar", False), ("", False), ("foo.", False)],
)
def test_is_valid_literal_subject(subject, literal):
    assert subjects.is_valid_literal_subject(subject.encode()) is literal


@pytest.mark.parametrize(
    ("subject", "wild"),
    [("foo", False), ("foo*", False), ("f>o.x", False), ("foo.*", True), ("*", True), ("a.>", True),
     ("*.a", True)],
)
def test_has_wildcard(subject, wild):
    assert subjects.has_wildcard(subject.encode()) is wild


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("foo.bar", "foo.bar", True),
        ("foo.bar", "foo.baz", False),
        ("foo.*", "foo.bar", True),
        ("foo.*", "foo", False),
        ("foo.*", "foo.bar.baz", False),
        ("foo.>", "foo", False),
        ("foo.>", "foo.bar.baz", True),
        (">", "a", True),
        ("*.*", "a.b", True),
        ("foo.bar", "foo.*", False),  # the subject's `*` is a literal token
        ("foo.*", "foo.*", True),
    ],
)
def test_subject_matches(pattern, subject, matches):
    assert subjects.subject_matches(pattern.encode(), subject.encode()) is matches
