"""Subject syntax: validating subscription and publish subjects, splitting into tokens.

A subject is tokens separated by `.`; no token may be empty and no byte may be whitespace.
`*` (one token) and `>` (one or more trailing tokens) are wildcards only as whole tokens, and
`>` only as the last token.
"""

from __future__ import annotations

import re

PWC = b"*"
FWC = b">"

# Whitespace nats-server refuses inside a subject in configuration and permissions.
_BLANK = re.compile(rb"[ \t\r\n\f]")


def is_valid_subject(subject: bytes, *, check_blanks: bool = False) -> bool:
    """True if `subject` may be subscribed to: no empty token, `>` only last.

    SUB arguments cannot contain blanks, so the sublist (like nats-server's) does not look for
    them; configuration and permissions ask for `check_blanks`.
    """
    if not subject or (check_blanks and _BLANK.search(subject)):
        return False
    tokens = subject.split(b".")
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if not token or (token == FWC and i != last):
            return False
    return True


def is_valid_literal_subject(subject: bytes) -> bool:
    """True if no token is empty or a wildcard (the pedantic PUB check)."""
    for token in subject.split(b"."):
        if not token or token == PWC or token == FWC:
            return False
    return True


def has_wildcard(subject: bytes) -> bool:
    """True if `subject` contains a `*` or `>` token."""
    if b"*" not in subject and b">" not in subject:
        return False
    return any(token == PWC or token == FWC for token in subject.split(b"."))


def subject_matches(pattern: bytes, subject: bytes) -> bool:
    """True if the literal `subject` is matched by the (possibly wildcard) `pattern`."""
    ptokens = pattern.split(b".")
    stokens = subject.split(b".")
    for i, ptoken in enumerate(ptokens):
        if ptoken == FWC:
            return len(stokens) > i
        if i >= len(stokens):
            return False
        if ptoken != PWC and ptoken != stokens[i]:
            return False
    return len(ptokens) == len(stokens)
