"""Hypothesis strategies for testing code that uses ws-close-policy.

Requires hypothesis (``pip install 'ws-close-policy[testing]'``). Property-test your own
handler with the messages your policy accepts and refuses::

    from hypothesis import given
    from ws_close_policy import Accept, Close, InboundPolicy, Policy, decide_inbound
    from ws_close_policy.testing import invalid_messages, valid_messages

    POLICY = Policy(InboundPolicy(allowed_types={"ping", "cancel"}, max_bytes=4096))

    @given(valid_messages(POLICY))
    def test_handler_answers_every_valid_message(text):
        accepted = decide_inbound(text, POLICY)
        assert isinstance(accepted, Accept)
        assert my_handler(accepted.message) is not None

    @given(invalid_messages(POLICY))
    def test_every_bad_message_closes_with_the_profile_code(case):
        data, violation = case
        close = decide_inbound(data, POLICY)
        assert isinstance(close, Close)
        assert close == POLICY.profile.close_for_violation(violation)

Strategies for codes and reasons test the protocol edges.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - the extra is installed wherever tests run
    raise ImportError(
        "ws_close_policy.testing needs hypothesis: pip install 'ws-close-policy[testing]'"
    ) from exc

from ._actions import utf8_size
from ._enums import Violation
from .codes import CloseCode, is_sendable
from .policy import DEFAULT, Policy

__all__ = [
    "close_codes",
    "invalid_messages",
    "outbound_messages",
    "reasons",
    "sendable_codes",
    "valid_messages",
]

_NAMED_SENDABLE = sorted(int(code) for code in CloseCode if is_sendable(code))

# Characters that break naive truncation: multi-byte, combining, emoji parts, surrogates.
_TRICKY = "é€😀\u0301\u200d\ufe0f\U0001f469\U0001f3fd\ud800\udc00\udfff\x00\ufffd"


def close_codes() -> st.SearchStrategy[int]:
    """Any 16-bit integer, weighted towards the interesting edges of every range."""
    edges = [0, 999, 1000, 1004, 1005, 1006, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000]
    return st.one_of(
        st.sampled_from(edges),
        st.sampled_from([int(code) for code in CloseCode]),
        st.integers(min_value=0, max_value=65535),
    )


def sendable_codes() -> st.SearchStrategy[int]:
    """Codes an endpoint may send: 1000-1003, 1007-1014 and 3000-4999."""
    return st.one_of(
        st.sampled_from(_NAMED_SENDABLE),
        st.integers(min_value=3000, max_value=4999),
    )


def reasons(max_size: int = 400) -> st.SearchStrategy[str]:
    """Any text, including lone surrogates, combining marks, emoji and long strings."""
    any_char = st.characters(codec=None, exclude_categories=())
    return st.one_of(
        st.text(any_char, max_size=max_size),
        st.text(st.sampled_from(_TRICKY) | any_char, min_size=100, max_size=max_size),
        st.builds(lambda c, n: c * n, st.sampled_from(_TRICKY), st.integers(30, 130)),
    )


# --- messages ------------------------------------------------------------------------------

# Text that is valid UTF-8 (no surrogates): what a peer can put in a JSON string.
_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)


def _values(depth: int) -> st.SearchStrategy[Any]:
    """JSON values nesting at most ``depth`` levels of arrays and objects."""
    if depth <= 0:
        return _SCALARS
    children = _values(depth - 1)
    return _SCALARS | st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3)


def _valid_for(policy: Policy, text: str) -> bool:
    """Whether ``text`` fits the limits and passes its type's validator, if any."""
    rules = policy.inbound
    if utf8_size(text) > rules.max_bytes:
        return False
    message = json.loads(text)
    validator = rules.validators.get(message[rules.type_field])
    if validator is None:
        return True
    try:
        return bool(validator(message))
    except Exception:
        return False


def valid_messages(
    policy: Policy = DEFAULT, *, fields: st.SearchStrategy[dict[str, Any]] | None = None
) -> st.SearchStrategy[str]:
    """JSON text that ``decide_inbound(text, policy)`` accepts: an object whose type field
    holds an allowed type, nesting within ``max_depth``, within ``max_bytes``, and passing
    its type's validator.

    ``fields`` draws the message's other fields (default: any JSON values). Messages that
    a validator refuses are filtered out, so when your validators expect particular fields,
    pass a ``fields`` strategy that builds them: hypothesis gives up on a strategy whose
    draws are nearly all filtered out. Meant for the JSON codecs (``json``, ``orjson``,
    ``msgspec`` without a ``type``); ``ValueError`` for a policy that accepts no message
    (the ``raw`` codec, or an empty ``allowed_types``).
    """
    rules = policy.inbound
    if rules.decoder is None:
        raise ValueError("policy: with the raw codec every text within the limit is valid")
    if rules.allowed_types is not None and not rules.allowed_types:
        raise ValueError("policy: allowed_types is empty, so no message is valid")
    # Room for the type's value in the smallest message, {"type":""}: a small max_bytes
    # gets short ASCII types, so that few draws are thrown away.
    room = rules.max_bytes - len(json.dumps({rules.type_field: ""}, separators=(",", ":")))
    alphabet = st.characters(codec="utf-8") if room >= 48 else st.characters(codec="ascii")
    types = (
        st.sampled_from(sorted(rules.allowed_types))
        if rules.allowed_types is not None
        else st.text(alphabet, min_size=1, max_size=max(1, min(12, room)))
    )
    if fields is None:
        fields = st.dictionaries(_TEXT, _values(min(rules.max_depth - 1, 3)), max_size=4)

    def fitted(extra: dict[str, Any], kind: str, compact: bool, ensure_ascii: bool) -> str:
        # A message over max_bytes is replaced by the smallest one of its type, so that a
        # small limit does not make hypothesis throw most draws away.
        text = _dumps({**extra, rules.type_field: kind}, compact=compact, ensure_ascii=ensure_ascii)
        if utf8_size(text) <= rules.max_bytes:
            return text
        return _dumps({rules.type_field: kind}, compact=True, ensure_ascii=False)

    texts = st.builds(fitted, fields, types, st.booleans(), st.booleans())
    return texts.filter(lambda text: _valid_for(policy, text))


def _dumps(message: dict[str, Any], *, compact: bool, ensure_ascii: bool) -> str:
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(message, separators=separators, ensure_ascii=ensure_ascii)


def _invalid_cases(policy: Policy) -> list[st.SearchStrategy[tuple[str | bytes, Violation]]]:
    rules = policy.inbound
    field = json.dumps(rules.type_field)
    kind = json.dumps(sorted(rules.allowed_types)[0]) if rules.allowed_types else '"ping"'
    obj = "{" + field + ": " + kind + "}"  # a valid message, to break

    def extended(extra: str) -> str:  # the valid message with one more field
        return obj[:-1] + ", " + extra + "}"

    examples: dict[Violation, list[str | bytes]] = {
        Violation.INVALID_JSON: [
            obj[:-1],  # unterminated
            obj + ",",  # trailing data
            "{" + field + ": }",
            "",
            "'a'",
            "[1,]",
            *(extended('"n": ' + number) for number in ("1e400", "-1e999", "NaN", "Infinity")),
            *(extended('"s": "' + escape + '"') for escape in ("\\ud800", "\\udfff", "\\ud83dx")),
            extended('"d": ' + "[" * rules.max_depth + "]" * rules.max_depth),  # one too deep
        ],
        Violation.MISSING_TYPE: [
            "{" + field + ": " + value + "}"
            for value in ("null", "1", '""', *(("{}", "[]") if rules.max_depth > 1 else ()))
        ],
    }
    if rules.accept_binary:
        examples[Violation.INVALID_UTF8] = [b"{" + b"\xff" * 3 + b"}", obj.encode() + b"\xc3"]
    else:
        examples[Violation.BINARY_UNSUPPORTED] = [obj.encode()]
    cases = [
        _paired(st.sampled_from(fitting), violation)
        for violation, candidates in examples.items()
        if (fitting := [d for d in candidates if utf8_size(d) <= rules.max_bytes])
    ]
    not_objects = st.builds(json.dumps, _SCALARS | st.lists(_SCALARS, max_size=3))
    generated = [(not_objects, Violation.NOT_AN_OBJECT)]
    if rules.allowed_types is not None:
        unknown = _TEXT.filter(lambda t: bool(t) and t not in (rules.allowed_types or ()))
        generated.append(
            (
                unknown.map(lambda t: "{" + field + ": " + json.dumps(t) + "}"),
                Violation.UNKNOWN_TYPE,
            )
        )
    for texts, violation in generated:
        fits = texts.filter(lambda text: utf8_size(text) <= rules.max_bytes)
        cases.append(_paired(fits, violation))
    too_big = st.integers(1, 64).map(lambda n: ("x" * (rules.max_bytes + n), Violation.TOO_BIG))
    return [*cases, too_big]


def _paired(
    data: st.SearchStrategy[str] | st.SearchStrategy[str | bytes], violation: Violation
) -> st.SearchStrategy[tuple[str | bytes, Violation]]:
    return st.tuples(data, st.just(violation))


def invalid_messages(
    policy: Policy = DEFAULT,
) -> st.SearchStrategy[tuple[str | bytes, Violation]]:
    """Pairs ``(data, violation)``: a message ``decide_inbound(data, policy)`` refuses, and
    the violation it breaks. The close to expect is
    ``policy.profile.close_for_violation(violation)`` (its code depends on the profile).

    Every rule the policy states is covered: too big, a binary frame on a text-only
    endpoint (or invalid UTF-8 when binary is accepted), malformed JSON, non-finite
    numbers, lone surrogate escapes, nesting one level too deep, not an object, a missing
    type and, with ``allowed_types``, an unknown type. Validators are not: their rules are
    yours. Cases that cannot fit ``max_bytes`` (say, nesting deeper than a tiny limit
    allows) are left out. Meant for the JSON codecs, as ``valid_messages``;
    ``ValueError`` for the ``raw`` codec, which refuses nothing but size and frame type.
    """
    if policy.inbound.decoder is None:
        raise ValueError("policy: the raw codec refuses nothing but size and frame type")
    return st.one_of(_invalid_cases(policy))


def outbound_messages(policy: Policy = DEFAULT) -> st.SearchStrategy[dict[str, Any]]:
    """Messages whose serialised size is just under, at, or just over the outbound policy's
    limits (``max_bytes`` and ``warn_bytes``), as the policy's codec writes them: a message
    at the limit is sent, one byte over is degraded or closes.

    Each is ``{"type": "test", "pad": "xxx..."}``; use a policy with small limits in tests,
    since a default policy's messages weigh up to 32 MiB.
    """
    rules = policy.outbound
    base = {"type": "test", "pad": ""}
    overhead = len(rules.encoder.encode(base))
    targets = sorted(
        {
            size
            for limit in (rules.max_bytes, rules.warn_bytes)
            for size in (limit - 1, limit, limit + 1)
            if size >= overhead
        }
    )
    return st.sampled_from(targets).map(lambda size: {**base, "pad": "x" * (size - overhead)})
