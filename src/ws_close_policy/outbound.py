"""Outbound decisions: every message is measured before it is sent.

``decide_outbound(message, policy)`` (see :mod:`ws_close_policy.policy`) serialises the
message exactly once, measures its UTF-8 size and returns ``Send`` (flagged ``large`` above
the soft limit), or, above the hard limit, tries the policy's ``degrade`` hook once and
otherwise returns the profile's ``OUTBOUND_TOO_BIG`` close. A message the codec cannot
serialise gives the profile's ``INTERNAL`` close; the exception text goes to ``detail`` only.

``NaN`` and infinities: the ``json`` codec refuses them (``INTERNAL``); orjson and msgspec
write them as ``null``, as they document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from ._accel import accelerate_outbound
from .actions import Close, Send
from .codecs import Codec, resolve_codec
from .inbound import _positive_int
from .profile import Profile, Violation

__all__ = ["DEFAULT_MAX_OUTBOUND_BYTES", "DEFAULT_WARN_BYTES", "OutboundPolicy"]

#: 32 MiB: the platform hard limit from the review (Cloudflare's WebSocket message limit).
DEFAULT_MAX_OUTBOUND_BYTES: Final = 33_554_432
#: 1 MB: above this a message is flagged ``large`` (the review's mobile-performance warning).
DEFAULT_WARN_BYTES: Final = 1_000_000

#: Returns a smaller (summary-only) form of a message, or ``None`` when there is none.
Degrade = Callable[[Any], Any]

Decider = Callable[[Any], Send | Close]


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """How messages are serialised and measured before sending. Validated (``ValueError``).

    :param max_bytes: largest message sent, in UTF-8 bytes (default 33_554_432, 32 MiB);
        a message of exactly this size is sent.
    :param warn_bytes: above this size ``Send.large`` is true (default 1_000_000).
    :param codec: ``"json"`` (stdlib, default), ``"orjson"``, ``"msgspec"`` or a
        :class:`~ws_close_policy.codecs.Codec`.
    :param degrade: called once with a message over ``max_bytes``; returns a smaller form to
        send instead (e.g. a summary-only payload) or ``None``.
    """

    max_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES
    warn_bytes: int = DEFAULT_WARN_BYTES
    codec: str | Codec = "json"
    degrade: Degrade | None = None
    _codec: Codec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _positive_int(self.max_bytes, "max_bytes")
        _positive_int(self.warn_bytes, "warn_bytes")
        if self.warn_bytes > self.max_bytes:
            raise ValueError(
                f"warn_bytes ({self.warn_bytes}) must not exceed max_bytes ({self.max_bytes})"
            )
        if self.degrade is not None and not callable(self.degrade):
            raise ValueError(f"degrade must be callable or None, got {self.degrade!r}")
        object.__setattr__(self, "_codec", _outbound_codec(self.codec))


def _outbound_codec(codec: str | Codec) -> Codec:
    if codec == "raw":
        raise ValueError("codec 'raw' is inbound-only; send str or bytes directly instead")
    return resolve_codec(codec)


def _utf8_size(text: str) -> int:
    # ASCII (what the stdlib encoder emits by default) is one byte a character.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


_new_send = object.__new__
_SEND_SLOTS = tuple(Send.__dict__[name].__set__ for name in ("data", "size", "text", "large"))
_set_data, _set_size, _set_text, _set_large = _SEND_SLOTS
_set_degraded = Send.__dict__["degraded"].__set__


def _fast_send(data: str | bytes, size: int, large: bool) -> Send:
    # A text Send that is valid by construction: skip the dataclass __init__ (hot path).
    send = _new_send(Send)
    _set_data(send, data)
    _set_size(send, size)
    _set_text(send, True)
    _set_large(send, large)
    _set_degraded(send, False)
    return send


def outbound_decider(
    outbound: OutboundPolicy, profile: Profile, *, accelerate: bool = True
) -> Decider:
    """Build the decision function for one policy (its ``dict`` case in C if ``accelerate``)."""
    close = profile.close_for_violation
    limit = outbound.max_bytes
    warn = outbound.warn_bytes
    encode = outbound._codec.encode
    degrade = outbound.degrade

    def cannot_serialise(exc: Exception) -> Close:
        return close(Violation.INTERNAL, f"cannot serialise: {type(exc).__name__}: {exc}"[:200])

    def serialise(message: Any) -> tuple[str | bytes, int, bool] | Close:
        if isinstance(message, str):
            try:
                return message, _utf8_size(message), True
            except UnicodeEncodeError as exc:
                return close(Violation.INTERNAL, f"text is not valid UTF-8: {exc.reason}")
        if isinstance(message, bytes | bytearray | memoryview):
            data = bytes(message)
            return data, len(data), False  # bytes go as a binary frame, unchanged
        try:
            encoded = encode(message)
        except Exception as exc:  # unknown types, NaN, cycles (RecursionError) ...
            return cannot_serialise(exc)
        if isinstance(encoded, str):
            return encoded, _utf8_size(encoded), True
        return encoded, len(encoded), True  # orjson / msgspec: UTF-8 bytes of JSON text

    def too_big(size: int, note: str = "") -> Close:
        return close(Violation.OUTBOUND_TOO_BIG, f"{size} bytes over the {limit}-byte limit{note}")

    def over_limit(message: Any, size: int) -> Send | Close:
        """``message`` serialised to ``size`` bytes, over the limit: its summary, or a close."""
        if degrade is None:
            return too_big(size)
        try:
            summary = degrade(message)
        except Exception as exc:  # a broken hook must not crash the sender
            return too_big(size, f"; degrade raised {type(exc).__name__}")
        if summary is None:
            return too_big(size, "; no summary")
        smaller = serialise(summary)
        if isinstance(smaller, Close):
            return smaller
        data, summary_size, text = smaller
        if summary_size > limit:
            return too_big(size, f"; summary still {summary_size} bytes")
        return Send(data, summary_size, text, summary_size > warn, degraded=True)

    def decide(message: Any) -> Send | Close:
        if type(message) is dict:  # the common case, kept short: one encode, one measure
            try:
                encoded = encode(message)
            except Exception as exc:
                return cannot_serialise(exc)
            size = _utf8_size(encoded) if type(encoded) is str else len(encoded)
            if size <= limit:
                return _fast_send(encoded, size, size > warn)
            return over_limit(message, size)
        result = serialise(message)
        if isinstance(result, Close):
            return result
        data, size, text = result
        if size <= limit:
            return Send(data, size, text, size > warn)
        return over_limit(message, size)

    if not accelerate:
        return decide
    return accelerate_outbound(
        decide,
        codec=outbound._codec,
        limit=limit,
        warn=warn,
        over_limit=over_limit,
        on_error=cannot_serialise,
    )
