"""Outbound decisions: every message is serialised once and measured before it is sent.

``decide_outbound(message, policy)`` runs these steps:

1. **serialise**, exactly once: a ``str`` is sent as it is (a text frame), ``bytes`` as a
   binary frame, anything else through the policy's codec (a text frame);
2. **measure** its size in bytes (UTF-8 for text);
3. **limit**: at most ``max_bytes`` is sent, flagged ``large`` above ``warn_bytes``; above
   ``max_bytes`` the policy's ``degrade`` hook is tried once for a smaller form, and
   otherwise the connection closes with the profile's ``OUTBOUND_TOO_BIG`` code.

A message the codec cannot serialise closes with the profile's ``INTERNAL`` code; the
exception text goes to ``Close.detail`` only, never to the peer.

``NaN`` and infinities: the ``json`` codec refuses them (``INTERNAL``); orjson and msgspec
write them as ``null``, as they document.
"""

from __future__ import annotations

from typing import Any

from ._actions import Close, Send, utf8_size
from ._arguments import instance
from ._enums import Violation
from .policy import DEFAULT, OutboundPolicy, Policy


class _Refused(Exception):
    """The message cannot be sent: close the connection with ``violation``."""

    def __init__(self, violation: Violation, detail: str) -> None:
        self.violation = violation
        self.detail = detail[:200]


def decide_outbound(message: Any, policy: Policy = DEFAULT) -> Send | Close:
    """Serialise and measure ``message`` once: ``Send`` it, or ``Close`` (too big, or it
    cannot be serialised). Never raises for any message.

    ``str`` is sent as a text frame and ``bytes`` as a binary frame, measured, not
    re-encoded; anything else goes through the policy's codec.
    """
    if type(policy) is not Policy:
        instance(policy, Policy, "policy")
    rules = policy.outbound
    try:
        if type(message) is dict:  # the usual message: the codec's, in line
            try:
                data = rules.encoder.encode(message)
            except Exception as exc:
                raise _unserialisable(exc) from None
            text = True
            if type(data) is not str and type(data) is not bytes:
                data = _codec_output(data, rules)
        else:
            data, text = _serialised(message, rules)
        # ASCII text (what the json codec writes) and bytes are measured by their length.
        size = len(data) if type(data) is bytes or data.isascii() else _measured(data)
        if size <= rules.max_bytes:
            try:  # in line, as every message takes this step: see _send
                return Send(data, size, text, size > rules.warn_bytes)
            except ValueError as exc:
                raise _Refused(Violation.INTERNAL, f"cannot send: {exc}") from None
        return _degraded(message, size, rules)
    except _Refused as refused:
        return policy.profile.close_for_violation(refused.violation, refused.detail)


def _serialised(message: Any, rules: OutboundPolicy) -> tuple[str | bytes, bool]:
    """What goes on the wire, and whether in a text frame: text as it is, bytes as they
    are (binary), anything else encoded by the codec (text)."""
    if isinstance(message, str):
        return str(message), True
    if isinstance(message, _BINARY):
        return bytes(message), False
    return _encoded(message, rules), True


_BINARY = (bytes, bytearray, memoryview)


def _encoded(message: Any, rules: OutboundPolicy) -> str | bytes:
    """``message`` serialised by the policy's codec."""
    try:
        data = rules.encoder.encode(message)
    except Exception as exc:
        raise _unserialisable(exc) from None
    return data if type(data) is str or type(data) is bytes else _codec_output(data, rules)


def _unserialisable(exc: Exception) -> _Refused:  # unknown types, NaN, cycles ...
    return _Refused(Violation.INTERNAL, f"cannot serialise: {type(exc).__name__}: {exc}")


def _codec_output(data: object, rules: OutboundPolicy) -> str | bytes:
    """A custom codec's ``str`` or ``bytes`` subclass as the plain type; anything else is
    its mistake."""
    if isinstance(data, str | bytes):
        return str(data) if isinstance(data, str) else bytes(data)
    detail = f"codec {rules.encoder.name!r} returned {type(data).__name__}, not str or bytes"
    raise _Refused(Violation.INTERNAL, detail)


def _send(data: str | bytes, size: int, text: bool, large: bool, degraded: bool = False) -> Send:
    try:
        return Send(data, size, text, large, degraded)
    except ValueError as exc:  # a custom codec wrote bytes that are not UTF-8 text
        raise _Refused(Violation.INTERNAL, f"cannot send: {exc}") from None


def _measured(data: str | bytes) -> int:
    try:
        return utf8_size(data, strict=True)
    except UnicodeEncodeError as exc:  # a str with a lone surrogate
        raise _Refused(Violation.INTERNAL, f"text is not valid UTF-8: {exc.reason}") from None


def _degraded(message: Any, size: int, rules: OutboundPolicy) -> Send:
    """The summary form of a message over the limit, sent flagged ``degraded``."""
    limit = rules.max_bytes
    too_big = f"{size} bytes over the {limit}-byte limit"
    if rules.degrade is None:
        raise _Refused(Violation.OUTBOUND_TOO_BIG, too_big)
    try:
        summary = rules.degrade(message)
    except Exception as exc:  # a broken hook must not crash the sender
        raise _Refused(
            Violation.OUTBOUND_TOO_BIG, f"{too_big}; degrade raised {type(exc).__name__}"
        ) from None
    if summary is None:
        raise _Refused(Violation.OUTBOUND_TOO_BIG, f"{too_big}; no summary")
    data, text = _serialised(summary, rules)
    summary_size = _measured(data)
    if summary_size > limit:
        raise _Refused(Violation.OUTBOUND_TOO_BIG, f"{too_big}; summary still {summary_size} bytes")
    return _send(data, summary_size, text, summary_size > rules.warn_bytes, degraded=True)
