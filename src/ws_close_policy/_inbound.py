"""Inbound decisions: every received message is accepted or closes the connection.

``decide_inbound(data, policy)`` runs these checks, in this order, and stops at the first
that fails:

1. **size**, before any decoding (``max_bytes``; exactly ``max_bytes`` is accepted);
2. **frame**: binary frames when the endpoint is text-only, then UTF-8;
3. **strict JSON**: the codec decodes (no ``NaN``, finite numbers, no trailing data: see
   :mod:`ws_close_policy.codecs`), the text holds no lone surrogate escape, and no repeated
   key when ``reject_duplicate_keys``;
4. **depth** of the nesting, at most ``max_depth``;
5. **structure**: a JSON object with a non-empty string ``type``;
6. **allowed type**, when ``allowed_types`` is set;
7. **validator** of that type, when there is one.

It never raises for any ``str`` or ``bytes``, whatever the codec: every failure is a
``Close`` carrying the profile's code, a short generic reason and the ``Violation``; the
failure's particulars go to ``Close.detail``, which is never sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ._actions import Accept, Close, utf8_size
from ._arguments import instance
from ._enums import Violation
from ._jsontext import has_lone_surrogate_escape, nests_deeper_than
from .codecs import JsonCodec, MsgspecCodec
from .policy import DEFAULT, InboundPolicy, Policy, Validator


class _Refused(Exception):
    """A check failed: the message closes the connection with ``violation``."""

    def __init__(self, violation: Violation, detail: str | None = None) -> None:
        self.violation = violation
        self.detail = detail


def decide_inbound(data: str | bytes, policy: Policy = DEFAULT) -> Accept | Close:
    """Accept a received message or close the connection; never raises for str or bytes.

    ``data`` is a text frame's ``str`` or a binary frame's ``bytes``; anything else is a
    caller's mistake (``TypeError``). ``Accept.size`` is the size this decision measured.
    """
    if type(policy) is not Policy:
        instance(policy, Policy, "policy")
    rules = policy.inbound
    # Each step's usual outcome is tested in line; the named step runs when it has work.
    try:
        payload: str | bytes
        if type(data) is str and data.isascii() and len(data) <= rules.max_bytes:
            payload, size = data, len(data)  # the usual text frame: a byte a character
        else:
            payload, size = _checked_payload(data, rules)
        if rules.decoder is None:  # the "raw" codec: no decoding
            return Accept(payload, None, size)
        try:
            message = rules.decoder.decode(payload)
        except Exception as exc:  # any codec failure is the peer's bad JSON
            raise _decode_refusal(exc, payload, rules) from None
        # Strict JSON judged on the text, so that no repeated key hides a violation.
        if (type(payload) is not str or "\\" in payload) and has_lone_surrogate_escape(payload):
            raise _Refused(Violation.INVALID_JSON, "lone surrogate escape")
        if rules.reject_duplicate_keys:
            _check_unique_keys(payload)
        max_depth = rules.max_depth
        if len(payload) > 2 * max_depth + 1 and nests_deeper_than(payload, max_depth):
            raise _Refused(Violation.INVALID_JSON, f"nesting deeper than {max_depth}")
        if type(message) is not dict or type(kind := message.get(rules.type_field)) is not str:
            kind = _message_type(message, rules)
        elif not kind:
            raise _Refused(Violation.MISSING_TYPE)
        if rules.allowed_types is not None and kind not in rules.allowed_types:
            raise _Refused(Violation.UNKNOWN_TYPE)
        if rules.validators:
            _check_validator(message, kind, rules.validators)
    except _Refused as refused:
        return policy.profile.close_for_violation(refused.violation, refused.detail)
    return Accept(message, kind, size)


def _checked_payload(data: str | bytes, rules: InboundPolicy) -> tuple[str | bytes, int]:
    """The frame's payload and its size in bytes, if its size, frame type and UTF-8 are
    acceptable.

    Size is decided before any decoding, and text is never copied to be measured when its
    length alone decides. Text must be valid UTF-8; binary frames are refused unless the
    endpoint accepts them, and must be UTF-8 too unless the codec is ``"raw"`` (which passes
    bytes through as they are).
    """
    if type(data) is str:
        # A character is at least one byte: a text longer than the limit is too big
        # without being encoded, and ASCII text is one byte a character.
        size = len(data)
        if size > rules.max_bytes:
            raise _Refused(Violation.TOO_BIG, _over(rules.max_bytes))
        if data.isascii():
            return data, size
        try:
            size = utf8_size(data, strict=True)
        except UnicodeEncodeError:  # a lone surrogate: only a direct caller sends one
            if utf8_size(data) <= rules.max_bytes:
                raise _Refused(Violation.INVALID_UTF8) from None
            size = rules.max_bytes + 1
        if size > rules.max_bytes:
            raise _Refused(Violation.TOO_BIG, _over(rules.max_bytes))
        return data, size
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be str or bytes, not {type(data).__name__}")
    payload = bytes(data)
    if len(payload) > rules.max_bytes:
        raise _Refused(Violation.TOO_BIG)
    if not rules.accept_binary:
        raise _Refused(Violation.BINARY_UNSUPPORTED)
    if rules.decoder is not None and not payload.isascii():
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(Violation.INVALID_UTF8, _detail(exc)) from None
    return payload, len(payload)


_DUPLICATE_KEYS = JsonCodec(reject_duplicate_keys=True)


def _check_unique_keys(payload: str | bytes) -> None:
    try:
        _DUPLICATE_KEYS.decode(payload)
    except ValueError as exc:
        raise _Refused(Violation.INVALID_JSON, _detail(exc)) from None


def _message_type(message: Any, rules: InboundPolicy) -> str:
    """The message's type: a non-empty string in ``type_field`` of a JSON object (or the
    tag of a typed msgspec ``Struct``)."""
    if type(message) is not dict:
        tag = _struct_tag(message, rules)
        if tag is None:
            raise _Refused(Violation.NOT_AN_OBJECT)
        return tag
    kind = message.get(rules.type_field)
    if type(kind) is not str or not kind:
        raise _Refused(Violation.MISSING_TYPE)
    return kind


def _check_allowed(kind: str, allowed: Collection[str]) -> None:
    if kind not in allowed:
        raise _Refused(Violation.UNKNOWN_TYPE)


def _check_validator(message: Any, kind: str, validators: Mapping[str, Validator]) -> None:
    validator = validators.get(kind)
    if validator is None:
        return
    try:
        valid = validator(message)
    except Exception as exc:  # a validator that raises has said "invalid"
        raise _Refused(Violation.INVALID_MESSAGE, _detail(exc)) from None
    if not valid:
        raise _Refused(Violation.INVALID_MESSAGE)


def _over(limit: int) -> str:
    return f"over the {limit}-byte limit"


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


# --- typed msgspec messages ------------------------------------------------------------------


def _struct_tag(message: Any, rules: InboundPolicy) -> str | None:
    """The tag of a ``msgspec.Struct`` decoded by a typed msgspec codec, if it has one."""
    if not isinstance(rules.decoder, MsgspecCodec) or not rules.decoder.typed:
        return None
    tag = getattr(getattr(message, "__struct_config__", None), "tag", None)
    return tag if isinstance(tag, str) and tag else None


def _decode_refusal(exc: Exception, payload: str | bytes, rules: InboundPolicy) -> _Refused:
    """Why the decoder refused: invalid JSON, or (typed msgspec) JSON of the wrong shape."""
    if isinstance(exc, RecursionError):
        return _Refused(Violation.INVALID_JSON, "nesting too deep for the decoder")
    decoder = rules.decoder
    if not isinstance(decoder, MsgspecCodec) or not isinstance(exc, decoder.validation_error):
        return _Refused(Violation.INVALID_JSON, _detail(exc))
    # Valid JSON that does not fit the types: the generic checks say which rule it breaks.
    try:
        message = MsgspecCodec().decode(payload)
        kind = _message_type(message, rules)
        if rules.allowed_types is not None:
            _check_allowed(kind, rules.allowed_types)
    except _Refused as refused:
        return refused
    except Exception as again:  # e.g. a number out of range: not JSON we accept at all
        return _Refused(Violation.INVALID_JSON, _detail(again))
    tags = _union_tags(decoder.type)
    if tags is not None and kind not in tags:
        return _Refused(Violation.UNKNOWN_TYPE, _detail(exc))
    return _Refused(Violation.INVALID_MESSAGE, _detail(exc))


def _union_tags(typ: Any) -> frozenset[str] | None:
    members = getattr(typ, "__args__", None) or (typ,)
    tags = {getattr(getattr(m, "__struct_config__", None), "tag", None) for m in members}
    return frozenset(t for t in tags if isinstance(t, str)) or None
