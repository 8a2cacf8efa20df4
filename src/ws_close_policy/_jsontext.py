"""Strictness rules judged on a message's JSON text, the same for every codec.

A decoded value can hide what its text held: ``{"a": [[[...]]], "a": 0}`` decodes to a
shallow object, and ``{"a": "\\ud800", "a": 0}`` to one without a lone surrogate. Judged on
the text, a repeated key hides nothing, and every codec reaches the same verdict.

Both functions expect text that a strict decoder has accepted (valid JSON), as ``str`` or
UTF-8 ``bytes``.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Final

__all__ = ["has_lone_surrogate_escape", "nests_deeper_than"]

# Brackets become "(" and ")"; everything but quotes and brackets is deleted.
_BRACKETS: Final = bytes.maketrans(b"[{]}", b"(())")
_NOT_SYNTAX: Final = bytes(sorted(set(range(256)) - set(b'[{]}"')))
_COUNT_BELOW: Final = 4096
# Passes that remove the innermost pairs before the running sum takes over.
_PASSES: Final = 6
_STEPS: Final = bytes.maketrans(b"()", b"\x01\xff")  # +1 and -1 as signed bytes


def nests_deeper_than(text: str | bytes, limit: int) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``limit`` levels deep.

    Works on the bracket skeleton of the text with byte operations: escaped backslashes
    and quotes are dropped (so every quote left delimits a string), strings are dropped
    (brackets inside them do not nest), then a few passes remove the innermost ``()`` pairs,
    one level each: enough to settle the usual shallow message. Whatever is left is
    measured in one running sum, so the cost stays linear in the text's size, whatever the
    nesting.
    """
    if len(text) <= 2 * limit + 1:  # too short for limit + 1 pairs of brackets
        return False
    # A short text with at most `limit` opening brackets cannot nest deeper; counting costs
    # less than measuring, but only while the count has a good chance to settle it.
    if len(text) <= _COUNT_BELOW:
        # A pass each; whether a bracket occurs at all is a cheaper search.
        if isinstance(text, str):
            arrays = text.count("[") if "[" in text else 0
            opening = arrays + (text.count("{") if "{" in text else 0)
        else:
            arrays = text.count(b"[") if b"[" in text else 0
            opening = arrays + (text.count(b"{") if b"{" in text else 0)
        if opening <= limit:
            return False
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _outside_strings(raw.translate(_BRACKETS, _NOT_SYNTAX))
    passes = min(limit, _PASSES)
    for done in range(passes):
        if len(brackets) <= 2 * (limit - done):  # too few brackets left to go deeper
            return False
        brackets = brackets.replace(b"()", b"")  # one level less, everywhere
    if not brackets or passes == limit:
        return bool(brackets)
    return _deepest(brackets) > limit - passes


def _deepest(brackets: bytes) -> int:
    """The nesting depth of a balanced string of ``(`` and ``)``: its highest running sum."""
    steps = memoryview(brackets.translate(_STEPS)).cast("b")  # "(" is +1, ")" is -1
    return max(accumulate(steps))


def _outside_strings(skeleton: bytes) -> bytes:
    """The brackets of ``skeleton`` (quotes and brackets) that are not inside a string."""
    # A string without brackets is '""'. Counting '""' from the left pairs each empty
    # string's quotes until the first string holding a bracket, whose opening quote is
    # then left unpaired: so the counts agree exactly when no string holds a bracket.
    brackets = skeleton.translate(None, b'"')
    if skeleton.count(b'""') * 2 == len(skeleton) - len(brackets):  # the quotes, all paired
        return brackets
    return b"".join(skeleton.split(b'"')[::2])  # the parts between strings


# Any escape sequence; \uXXXX captures its code unit.
_ESCAPE: Final = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def has_lone_surrogate_escape(text: str | bytes) -> bool:
    """Whether the JSON ``text`` escapes a lone UTF-16 surrogate (``"\\ud800"``).

    A high surrogate escape (D800-DBFF) must be followed at once by a low one (DC00-DFFF),
    and a low one must follow a high one; anything else cannot become UTF-8.
    """
    # No escapes at all is the common case: one memchr.
    if isinstance(text, bytes):
        if b"\\" not in text:
            return False
        chars = text.decode("utf-8")
    elif "\\" not in text:
        return False
    else:
        chars = text
    if not _SURROGATE_ESCAPE.search(chars):
        return False
    high_ends_at = -1  # where an unpaired high surrogate escape ended, if any
    for escape in _ESCAPE.finditer(chars):
        unit = int(escape[1], 16) if escape[1] else -1
        if high_ends_at >= 0:
            if escape.start() != high_ends_at or not 0xDC00 <= unit <= 0xDFFF:
                return True
            high_ends_at = -1
        elif 0xD800 <= unit <= 0xDBFF:
            high_ends_at = escape.end()
        elif 0xDC00 <= unit <= 0xDFFF:
            return True
    return high_ends_at >= 0
